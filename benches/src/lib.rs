//! Benchmarks for veil live in `benches/` as bench binaries.
