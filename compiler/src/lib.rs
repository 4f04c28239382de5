//! # veil-compiler
//!
//! The frontend, the passes, the parameter optimizer, ML model import and the `veil` CLI.

pub mod artifact;
pub mod backend;
pub mod cli;
pub mod lower;
pub mod ml;
pub mod onnx;
pub mod optimizer;
pub mod passes;
pub mod program;
pub mod rewrite;
