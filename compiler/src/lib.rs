//! # veil-compiler
//!
//! The middle of the pipeline: the passes over tensor-level graphs (bit widths from an
//! inputset, egg rewrites), the noise model and parameter optimizer, and lowering to
//! TFHE-level operations; [`program`] ties them together (`compile`, then keygen, encrypt,
//! run, decrypt for tests and embedders), and [`compile_fn`] traces a Rust function over
//! `veil_ir::trace::Traced` values and compiles it. ML frontends are `veil-ml`, the command line is
//! `veil-cli`.

pub mod lower;
pub mod optimizer;
pub mod passes;
pub mod program;
pub mod rewrite;
pub mod trace;

pub use trace::{compile_fn, trace_fn, TracedCompileError};
