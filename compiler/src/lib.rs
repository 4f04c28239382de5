//! # veil-compiler
//!
//! The frontend, the passes, the parameter optimizer, ML model import and the `veil` CLI.

pub mod cli;
