//! # veil-ir: the veil intermediate representation
//!
//! A veil program is a dataflow [`Graph`] of integer tensor operations. Values are encrypted or
//! clear integer tensors ([`TensorType`]); operations ([`Op`]) each carry their attributes and
//! take operands by typed handle ([`ValueId`]). Tables and constants live once in per-graph
//! pools and are referenced by [`TableId`] / [`ConstId`].
//!
//! The IR has two levels (see [`Level`]): the **tensor level** the frontend produces and the
//! optimizer rewrites, and the **TFHE level** that the runtime executes, where encrypted values
//! carry an [`Encoding`] (key and message width), parameter sets ([`ParamSet`]) are fixed, and
//! the only non-levelled ops are `keyswitch` and `pbs`.
//!
//! `SPEC.md` in this crate is the reference: types, every op's exact integer semantics, the text
//! grammar and the invariants the verifier enforces. The doc comments of [`ops::Op`] are the
//! same semantics, next to the code.
//!
//! Module map:
//! - [`types`]: element types, tensor types, encodings, shapes.
//! - [`ops`]: the op enum, tables and constants.
//! - [`graph`]: the arena graph with typed handles.
//! - [`params`]: TFHE parameter sets as data.
//! - [`tensor`]: generic tensors and levelled kernels shared by the interpreter and the runtime.
//! - [`infer`](mod@infer): result-type inference, the typing rules of every op (interval arithmetic).
//! - [`verify`](mod@verify): the verifier of every graph invariant.
//! - [`interp`]: the reference interpreter (exact `i128` semantics, overflow checks).
//! - [`builder`]: a numpy-like builder for Rust users.
//! - [`numpy`]: builder methods that compose IR ops (max/min reductions, mean, pooling, bit
//!   patterns and bit extraction).
//! - [`trace`]: a tracing frontend: Rust operators on traced values record a graph.

pub mod builder;
pub mod domain;
pub mod dot;
pub mod graph;
pub mod infer;
pub mod interp;
pub mod numpy;
pub mod ops;
pub mod params;
pub mod serial;
pub mod tensor;
pub mod text;
pub mod trace;
pub mod types;
pub mod verify;

pub use builder::{BuildError, Builder};
pub use domain::{Domain, DomainChecker, DomainError, DomainViolation};
pub use graph::{Graph, Level, Node, ValueId};
pub use infer::{infer, Interval, TypeError};
pub use interp::{eval_op, run, run_traced, InterpError, Prepared};
pub use ops::{
    is_constant_table, BinOp, CmpOp, ConstId, Constant, Conv2dAttrs, Op, Table, TableId, UnOp,
};
pub use params::{KsModulus, ModulusSwitch, NoiseDistribution, ParamSet};
pub use tensor::{Element, Tensor};
pub use types::{Encoding, IntType, KeyId, Shape, TensorType, Visibility};
pub use verify::{verify, VerifyError};

/// Version of the text and serialized formats. Bumped on any incompatible change; loaders
/// reject other versions with a clear error.
pub const FORMAT_VERSION: u32 = 1;
