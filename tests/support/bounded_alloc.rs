//! A global allocator for fuzz harnesses: it refuses (returns null for) any single allocation
//! over `LIMIT` bytes, so a reader that trusts a size from its input aborts the test binary
//! ("memory allocation of N bytes failed") instead of passing, and records the largest
//! request so a harness can report it. Included with `#[path]` by the fuzz tests of several
//! crates (`ir-spec/tests/fuzz.rs`, `runtime/tests/hostile_files.rs`, `ml/tests/onnx_fuzz.rs`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static LARGEST: AtomicUsize = AtomicUsize::new(0);

/// The largest single allocation requested so far, in bytes.
pub fn largest() -> usize {
    LARGEST.load(Ordering::Relaxed)
}

/// The system allocator, refusing single allocations over `LIMIT` bytes.
pub struct Bounded<const LIMIT: usize>;

impl<const LIMIT: usize> Bounded<LIMIT> {
    fn admit(size: usize) -> bool {
        LARGEST.fetch_max(size, Ordering::Relaxed);
        size <= LIMIT
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, or returns
// null, which `GlobalAlloc` allows to signal an allocation failure.
unsafe impl<const LIMIT: usize> GlobalAlloc for Bounded<LIMIT> {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if !Self::admit(l.size()) {
            return std::ptr::null_mut();
        }
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if !Self::admit(l.size()) {
            return std::ptr::null_mut();
        }
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if !Self::admit(new) {
            return std::ptr::null_mut();
        }
        System.realloc(p, l, new)
    }
}
