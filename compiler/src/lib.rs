//! # veil-compiler
//!
//! The passes, the egg rewrites, the parameter optimizer, lowering, and ML model import. The
//! `veil` command line is the `veil-cli` crate.

pub mod artifact;
pub mod backend;
pub mod lower;
pub mod ml;
pub mod onnx;
pub mod optimizer;
pub mod passes;
pub mod program;
pub mod rewrite;
