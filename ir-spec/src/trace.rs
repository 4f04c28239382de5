//! A tracing frontend: write ordinary Rust over [`Traced`] values with numpy's operators, and
//! the [`Tracer`] records the graph.
//!
//! `+ - * / % & | ^ << >>`, unary `-` and `!` (bitwise not) work between traced values and
//! with `i64` constants (`/` is numpy's `//`, floor division; `%` numpy's remainder);
//! comparisons, `pow`, `tlu` (and `tlu_float`, `lookup`), `sum`/`mean`/`max`/`min` along axes,
//! `maximum`/`minimum`, `relu`, `abs`, `clip`, `matmul`, reshaping and indexing, pooling, bit
//! patterns and [`Traced::select`] (numpy `where`) are methods. `veil_compiler::compile_fn`
//! traces and compiles in one call. Nothing panics: an op that cannot be built (shape mismatch, a
//! value too wide, a zero divisor) is recorded with the caller's source location
//! (`#[track_caller]`), later ops on its result are skipped, and [`Tracer::finish`] reports
//! every recorded error, one line each.
//!
//! ```
//! use veil_ir::trace::Tracer;
//! use veil_ir::IntType;
//! let t = Tracer::new();
//! let x = t.input("x", &[4], IntType::unsigned(5));
//! let y = x.gt(10).select(x * 2, x / 2);
//! t.output("y", y);
//! t.output("z", (x + 1).pow(2) % 17);
//! let g = t.finish().unwrap();
//! assert_eq!(g.outputs().len(), 2);
//! ```

use crate::builder::{BuildError, Builder};
use crate::graph::{Graph, ValueId};
use crate::ops::{BinOp, CmpOp};
use crate::types::IntType;
use std::cell::RefCell;
use std::fmt;
use std::ops;
use std::panic::Location;

/// One error of a trace: what failed and the caller's source location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    /// `file:line:col` of the Rust code that built the op.
    pub location: String,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every error of a trace, one line each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TraceErrors(pub Vec<TraceError>);

impl fmt::Display for TraceErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

/// Records a graph from operations on [`Traced`] values.
#[derive(Debug, Default)]
pub struct Tracer {
    b: Builder,
    errors: RefCell<Vec<TraceError>>,
}

/// A value of a trace: a handle into its [`Tracer`] (`Copy`, so it can be used many times).
/// A value whose op failed is *poisoned*: ops on it are skipped (the first error is reported).
#[derive(Clone, Copy, Debug)]
pub struct Traced<'t> {
    t: &'t Tracer,
    v: Option<ValueId>,
}

impl Tracer {
    /// An empty trace.
    pub fn new() -> Self {
        Tracer::default()
    }

    fn record(&self, loc: &'static Location<'static>, e: impl fmt::Display) {
        self.errors.borrow_mut().push(TraceError {
            location: format!("{}:{}:{}", loc.file(), loc.line(), loc.column()),
            message: e.to_string(),
        });
    }

    fn wrap(&self, loc: &'static Location<'static>, r: Result<ValueId, BuildError>) -> Traced<'_> {
        match r {
            Ok(v) => Traced {
                t: self,
                v: Some(v),
            },
            Err(e) => {
                self.record(loc, e);
                Traced { t: self, v: None }
            }
        }
    }

    /// An encrypted input.
    #[track_caller]
    pub fn input(&self, name: &str, shape: &[usize], int: IntType) -> Traced<'_> {
        let loc = Location::caller();
        self.wrap(loc, self.b.input_encrypted(name, shape, int))
    }

    /// A clear constant tensor (row-major values).
    #[track_caller]
    pub fn constant(&self, shape: &[usize], values: &[i64]) -> Traced<'_> {
        let loc = Location::caller();
        self.wrap(loc, self.b.constant(shape, values))
    }

    /// A clear input (known to the server).
    #[track_caller]
    pub fn input_clear(&self, name: &str, shape: &[usize], int: IntType) -> Traced<'_> {
        let loc = Location::caller();
        self.wrap(loc, self.b.input_clear(name, shape, int))
    }

    /// numpy `concatenate(parts, axis)`.
    #[track_caller]
    pub fn concat(&self, parts: &[Traced<'_>], axis: usize) -> Traced<'_> {
        let loc = Location::caller();
        let mut vs = Vec::with_capacity(parts.len());
        for p in parts {
            match p.v {
                Some(v) => vs.push(v),
                None => return Traced { t: self, v: None },
            }
        }
        self.wrap(loc, self.b.concat(&vs, axis))
    }

    /// numpy `stack(parts, axis)`: each part gets a new axis of size 1 at `axis`, then they
    /// are concatenated along it.
    #[track_caller]
    pub fn stack(&self, parts: &[Traced<'_>], axis: usize) -> Traced<'_> {
        let loc = Location::caller();
        let mut vs = Vec::with_capacity(parts.len());
        for p in parts {
            let Some(v) = p.v else {
                return Traced { t: self, v: None };
            };
            let r = self.b.shape(v).and_then(|mut s| {
                if axis > s.len() {
                    return Err(crate::builder::BuildError::Invalid {
                        op: "stack",
                        msg: format!("axis {axis} is out of range for shape {s:?}"),
                    });
                }
                s.insert(axis, 1);
                self.b.reshape(v, &s)
            });
            match r {
                Ok(v) => vs.push(v),
                Err(e) => {
                    self.record(loc, e);
                    return Traced { t: self, v: None };
                }
            }
        }
        self.wrap(loc, self.b.concat(&vs, axis))
    }

    /// Concrete's `fhe.multivariate`: `f` of several small encrypted values as one table
    /// lookup of the values packed into one integer ([`Builder::multivariate`]): at most
    /// [`crate::numpy::MAX_MULTIVARIATE_BITS`] bits together, else an error at the caller's
    /// line. `t.multivariate(&[x, y], |v| gcd(v[0], v[1]))` is `np.gcd(x, y)`.
    #[track_caller]
    pub fn multivariate(&self, args: &[Traced<'_>], f: impl Fn(&[i64]) -> i64) -> Traced<'_> {
        let loc = Location::caller();
        let mut vs = Vec::with_capacity(args.len());
        for a in args {
            match a.v {
                Some(v) => vs.push(v),
                None => return Traced { t: self, v: None },
            }
        }
        self.wrap(loc, self.b.multivariate(&vs, f))
    }

    /// Declares the next program output.
    #[track_caller]
    pub fn output(&self, name: &str, x: Traced<'_>) {
        let loc = Location::caller();
        if let Some(v) = x.v {
            if let Err(e) = self.b.output(name, v) {
                self.record(loc, e);
            }
        }
    }

    /// The traced graph, verified, or every error recorded, each with its source location.
    pub fn finish(self) -> Result<Graph, TraceErrors> {
        let errors = self.errors.into_inner();
        if !errors.is_empty() {
            return Err(TraceErrors(errors));
        }
        self.b.finish().map_err(|e| {
            TraceErrors(vec![TraceError {
                location: "finish".into(),
                message: e.to_string(),
            }])
        })
    }
}

/// Something usable as an operand: a traced value or an `i64` constant.
pub trait IntoTraced<'t> {
    /// The value, in the trace of `like`.
    fn into_traced(self, like: Traced<'t>, loc: &'static Location<'static>) -> Traced<'t>;
}

impl<'t> IntoTraced<'t> for Traced<'t> {
    fn into_traced(self, _: Traced<'t>, _: &'static Location<'static>) -> Traced<'t> {
        self
    }
}

macro_rules! int_operands {
    ($($t:ty),*) => {$(
        impl<'t> IntoTraced<'t> for $t {
            fn into_traced(self, like: Traced<'t>, loc: &'static Location<'static>) -> Traced<'t> {
                like.t.wrap(loc, like.t.b.constant_scalar(i64::from(self)))
            }
        }
    )*};
}

// `i32` too, so that integer literals (`x * 2`) need no suffix.
int_operands!(i64, i32, u32, i16, u16, i8, u8);

impl<'t> Traced<'t> {
    /// The node of this value in the trace's graph (`None` when poisoned).
    pub fn value(self) -> Option<ValueId> {
        self.v
    }

    fn unary(
        self,
        loc: &'static Location<'static>,
        f: impl FnOnce(&Builder, ValueId) -> Result<ValueId, BuildError>,
    ) -> Self {
        match self.v {
            Some(v) => self.t.wrap(loc, f(&self.t.b, v)),
            None => self,
        }
    }

    fn binary(
        self,
        other: impl IntoTraced<'t>,
        loc: &'static Location<'static>,
        f: impl FnOnce(&Builder, ValueId, ValueId) -> Result<ValueId, BuildError>,
    ) -> Self {
        let o = other.into_traced(self, loc);
        match (self.v, o.v) {
            (Some(a), Some(b)) => self.t.wrap(loc, f(&self.t.b, a, b)),
            (None, _) => self,
            (_, None) => o,
        }
    }

    fn cmp(self, other: impl IntoTraced<'t>, op: CmpOp, loc: &'static Location<'static>) -> Self {
        self.binary(other, loc, |b, x, y| b.cmp(x, y, op))
    }

    /// `self < other` (`u1`).
    #[track_caller]
    pub fn lt(self, other: impl IntoTraced<'t>) -> Self {
        self.cmp(other, CmpOp::Lt, Location::caller())
    }

    /// `self <= other` (`u1`).
    #[track_caller]
    pub fn le(self, other: impl IntoTraced<'t>) -> Self {
        self.cmp(other, CmpOp::Le, Location::caller())
    }

    /// `self > other` (`u1`).
    #[track_caller]
    pub fn gt(self, other: impl IntoTraced<'t>) -> Self {
        self.cmp(other, CmpOp::Gt, Location::caller())
    }

    /// `self >= other` (`u1`).
    #[track_caller]
    pub fn ge(self, other: impl IntoTraced<'t>) -> Self {
        self.cmp(other, CmpOp::Ge, Location::caller())
    }

    /// `self == other` (`u1`).
    #[track_caller]
    pub fn eq(self, other: impl IntoTraced<'t>) -> Self {
        self.cmp(other, CmpOp::Eq, Location::caller())
    }

    /// `self != other` (`u1`).
    #[track_caller]
    pub fn ne(self, other: impl IntoTraced<'t>) -> Self {
        self.cmp(other, CmpOp::Ne, Location::caller())
    }

    /// `self ** e` for a clear exponent.
    #[track_caller]
    pub fn pow(self, e: u32) -> Self {
        self.unary(Location::caller(), |b, v| b.pow(v, e))
    }

    /// numpy `where(self, a, b)`: `a` where `self != 0`, else `b`.
    #[track_caller]
    pub fn select(self, a: impl IntoTraced<'t>, b: impl IntoTraced<'t>) -> Self {
        let loc = Location::caller();
        let (a, b) = (a.into_traced(self, loc), b.into_traced(self, loc));
        match (self.v, a.v, b.v) {
            (Some(c), Some(x), Some(y)) => self.t.wrap(loc, self.t.b.where_(c, x, y)),
            (None, _, _) => self,
            (_, None, _) => a,
            (_, _, None) => b,
        }
    }

    /// A univariate function by table lookup (`f` runs on every value of the type).
    #[track_caller]
    pub fn tlu(self, f: impl Fn(i64) -> i64) -> Self {
        self.unary(Location::caller(), |b, v| b.tlu(v, f))
    }

    /// Sum over `axes` (all when empty).
    #[track_caller]
    pub fn sum(self, axes: &[usize]) -> Self {
        self.unary(Location::caller(), |b, v| b.sum(v, axes, false))
    }

    /// Elementwise maximum.
    #[track_caller]
    pub fn maximum(self, other: impl IntoTraced<'t>) -> Self {
        self.binary(other, Location::caller(), |b, x, y| b.max(x, y))
    }

    /// Elementwise minimum.
    #[track_caller]
    pub fn minimum(self, other: impl IntoTraced<'t>) -> Self {
        self.binary(other, Location::caller(), |b, x, y| b.min(x, y))
    }

    /// `max(self, 0)`.
    #[track_caller]
    pub fn relu(self) -> Self {
        self.unary(Location::caller(), |b, v| b.relu(v))
    }

    /// `|self|`.
    #[track_caller]
    pub fn abs(self) -> Self {
        self.unary(Location::caller(), |b, v| b.abs(v))
    }

    /// numpy `sign`.
    #[track_caller]
    pub fn sign(self) -> Self {
        self.unary(Location::caller(), |b, v| b.sign(v))
    }

    /// A univariate function computed in floating point that must end in an integer
    /// (`|v| (v as f64).sqrt().floor()`): every image must be a finite whole number in the
    /// `i64` range, else the trace records "a float where an integer is needed" naming the
    /// first bad value. Round or floor inside `f` to make one.
    #[track_caller]
    pub fn tlu_float(self, f: impl Fn(i64) -> f64) -> Self {
        self.unary(Location::caller(), |b, v| {
            let int = b.ty(v)?.int;
            if int.bits > crate::builder::MAX_TLU_DOMAIN_BITS {
                return b.tlu(v, |x| x); // the builder's own error about the width
            }
            let mut entries = Vec::with_capacity(1usize << int.bits);
            for x in int.min()..=int.max() {
                let y = f(x as i64);
                if !y.is_finite() || y.fract() != 0.0 || y.abs() >= 9.2e18 {
                    return Err(BuildError::Invalid {
                        op: "tlu",
                        msg: format!(
                            "a float where an integer is needed: f({x}) = {y}; end the function in an integer (round, floor or ceil it)"
                        ),
                    });
                }
                entries.push(y as i64);
            }
            b.tlu_table(v, entries)
        })
    }

    /// A table lookup with explicit entries (Concrete's `fhe.LookupTable`): entry `i` is the
    /// image of the `i`-th smallest value of the operand's type, so exactly `2^bits` entries.
    #[track_caller]
    pub fn lookup(self, entries: &[i64]) -> Self {
        self.unary(Location::caller(), |b, v| {
            let int = b.ty(v)?.int;
            let want = 1u128 << int.bits.min(100);
            if entries.len() as u128 != want {
                return Err(BuildError::Invalid {
                    op: "tlu",
                    msg: format!(
                        "a table of {} entries for a {int} operand, which needs exactly {want}",
                        entries.len()
                    ),
                });
            }
            b.tlu_table(v, entries.to_vec())
        })
    }

    /// numpy `max(self, axis=axes)` (all axes when empty): a tree of pairwise maxima.
    #[track_caller]
    pub fn max(self, axes: &[usize]) -> Self {
        self.unary(Location::caller(), |b, v| b.reduce_max(v, axes, false))
    }

    /// numpy `min(self, axis=axes)` (all axes when empty): a tree of pairwise minima.
    #[track_caller]
    pub fn min(self, axes: &[usize]) -> Self {
        self.unary(Location::caller(), |b, v| b.reduce_min(v, axes, false))
    }

    /// numpy `mean(self, axis=axes)` on integers, floored.
    #[track_caller]
    pub fn mean(self, axes: &[usize]) -> Self {
        self.unary(Location::caller(), |b, v| b.mean(v, axes, false))
    }

    /// `min(max(self, lo), hi)`.
    #[track_caller]
    pub fn clip(self, lo: i64, hi: i64) -> Self {
        self.unary(Location::caller(), |b, v| b.clip(v, lo, hi))
    }

    /// `self @ other` (numpy `matmul`: ranks 1 and 2, and batched for higher ranks, see
    /// [`Builder::batch_matmul`]).
    #[track_caller]
    pub fn matmul(self, other: Traced<'t>) -> Self {
        self.binary(other, Location::caller(), |b, x, y| b.batch_matmul(x, y))
    }

    /// numpy `reshape`.
    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Self {
        self.unary(Location::caller(), |b, v| b.reshape(v, shape))
    }

    /// numpy `transpose` with axes `perm` (`.t()` for a matrix).
    #[track_caller]
    pub fn transpose(self, perm: &[usize]) -> Self {
        self.unary(Location::caller(), |b, v| b.transpose(v, perm))
    }

    /// numpy `self[..., i, ...]` with `i` on `axis` (the axis is removed).
    #[track_caller]
    pub fn at(self, axis: usize, i: usize) -> Self {
        self.unary(Location::caller(), |b, v| b.index(v, axis, i))
    }

    /// numpy `self[starts[0]:stops[0]:steps[0], ...]`.
    #[track_caller]
    pub fn slice(self, starts: &[usize], stops: &[usize], steps: &[usize]) -> Self {
        self.unary(Location::caller(), |b, v| b.slice(v, starts, stops, steps))
    }

    /// numpy `self[..., i, ...]` with Python's rules (a negative `i` counts from the end).
    #[track_caller]
    pub fn at_signed(self, axis: usize, i: i64) -> Self {
        self.unary(Location::caller(), |b, v| b.index_signed(v, axis, i))
    }

    /// numpy `self[..., start:stop:step, ...]` on `axis` with Python's rules: negative bounds,
    /// negative steps (`x.slice_signed(0, None, None, -1)` is `x[::-1]`), `None` for an omitted
    /// bound.
    #[track_caller]
    pub fn slice_signed(
        self,
        axis: usize,
        start: Option<i64>,
        stop: Option<i64>,
        step: i64,
    ) -> Self {
        self.unary(Location::caller(), |b, v| {
            b.slice_signed(v, axis, start, stop, step)
        })
    }

    /// Fancy indexing with clear indices, numpy `take(self, indices, axis)`
    /// (`self[..., [i, j, ...]]`; negative indices count from the end).
    #[track_caller]
    pub fn take(self, indices: &[i64], axis: usize) -> Self {
        self.unary(Location::caller(), |b, v| b.take(v, indices, axis))
    }

    /// `self[..., indices, ...] = values` (numpy `__setitem__`) as a functional update: the
    /// updated value is returned, `self` is unchanged. `values` broadcasts to the updated part.
    #[track_caller]
    pub fn put(self, axis: usize, indices: &[i64], values: impl IntoTraced<'t>) -> Self {
        self.binary(values, Location::caller(), |b, x, y| {
            b.put(x, axis, indices, y)
        })
    }

    /// Concrete's `fhe.refresh`/`fhe.identity`: a bootstrap of the identity
    /// ([`Builder::refresh`]).
    #[track_caller]
    pub fn refresh(self) -> Self {
        self.unary(Location::caller(), |b, v| b.refresh(v))
    }

    /// numpy `fmod(self, d)`: the remainder with the sign of the dividend (one lookup).
    #[track_caller]
    pub fn fmod(self, d: i64) -> Self {
        self.unary(Location::caller(), |b, v| b.fmod(v, d))
    }

    /// Concrete's `fhe.conv` 1-D: `[N,C,W]` with a kernel `[O,C/group,K]` (see
    /// [`Builder::conv1d`]).
    #[track_caller]
    pub fn conv1d(self, w: Traced<'t>, stride: usize, pads: [usize; 2], dilation: usize) -> Self {
        self.binary(w, Location::caller(), |b, x, w| {
            b.conv1d(x, w, None, stride, pads, dilation, 1)
        })
    }

    /// 2-D convolution `[N,C,H,W]` with a kernel `[O,C,KH,KW]` (the `conv2d` op).
    #[track_caller]
    pub fn conv2d(self, w: Traced<'t>, attrs: crate::ops::Conv2dAttrs) -> Self {
        self.binary(w, Location::caller(), move |b, x, w| {
            b.conv2d(x, w, None, attrs)
        })
    }

    /// Concrete's `fhe.conv` 3-D: `[N,C,D,H,W]` with a kernel `[O,C/group,KD,KH,KW]` (see
    /// [`Builder::conv3d`]).
    #[track_caller]
    pub fn conv3d(
        self,
        w: Traced<'t>,
        strides: [usize; 3],
        pads: [usize; 6],
        dilations: [usize; 3],
    ) -> Self {
        self.binary(w, Location::caller(), |b, x, w| {
            b.conv3d(x, w, None, strides, pads, dilations, 1)
        })
    }

    /// 2-D max pooling of `[N,C,H,W]` with dilations (no padding).
    #[track_caller]
    pub fn max_pool2d_dilated(
        self,
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
    ) -> Self {
        self.unary(Location::caller(), |b, v| {
            b.max_pool2d_dilated(v, kernel, strides, dilations)
        })
    }

    /// 2-D average pooling of `[N,C,H,W]` with dilations (no padding), floored.
    #[track_caller]
    pub fn avg_pool2d_dilated(
        self,
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
    ) -> Self {
        self.unary(Location::caller(), |b, v| {
            b.avg_pool2d_dilated(v, kernel, strides, dilations)
        })
    }

    /// 2-D max pooling of `[N,C,H,W]` (no padding).
    #[track_caller]
    pub fn max_pool2d(self, kernel: [usize; 2], strides: [usize; 2]) -> Self {
        self.unary(Location::caller(), |b, v| b.max_pool2d(v, kernel, strides))
    }

    /// 2-D average pooling of `[N,C,H,W]` (no padding), floored.
    #[track_caller]
    pub fn avg_pool2d(self, kernel: [usize; 2], strides: [usize; 2]) -> Self {
        self.unary(Location::caller(), |b, v| b.avg_pool2d(v, kernel, strides))
    }

    /// Concrete's `fhe.round_bit_pattern`: the nearest multiple of `2^lsbs` (ties upward).
    #[track_caller]
    pub fn round_bit_pattern(self, lsbs: u8) -> Self {
        self.unary(Location::caller(), |b, v| b.round(v, lsbs))
    }

    /// Concrete's `fhe.truncate_bit_pattern`: the `lsbs` low bits cleared.
    #[track_caller]
    pub fn truncate_bit_pattern(self, lsbs: u32) -> Self {
        self.unary(Location::caller(), |b, v| b.truncate_bit_pattern(v, lsbs))
    }

    /// Concrete's `fhe.bits(self)[i]`: bit `i` (two's complement).
    #[track_caller]
    pub fn bit(self, i: u32) -> Self {
        self.unary(Location::caller(), |b, v| b.bit(v, i))
    }

    /// Concrete's `fhe.bits(self)[lo:hi]`: bits `lo..hi` as an unsigned integer.
    #[track_caller]
    pub fn bits(self, lo: u32, hi: u32) -> Self {
        self.unary(Location::caller(), |b, v| b.bits(v, lo, hi))
    }

    /// numpy `logical_and`.
    #[track_caller]
    pub fn logical_and(self, other: impl IntoTraced<'t>) -> Self {
        self.binary(other, Location::caller(), |b, x, y| b.logical_and(x, y))
    }

    /// numpy `logical_or`.
    #[track_caller]
    pub fn logical_or(self, other: impl IntoTraced<'t>) -> Self {
        self.binary(other, Location::caller(), |b, x, y| b.logical_or(x, y))
    }

    /// numpy `logical_not`.
    #[track_caller]
    pub fn logical_not(self) -> Self {
        self.unary(Location::caller(), |b, v| b.logical_not(v))
    }
}

macro_rules! bin_ops {
    ($($tr:ident $m:ident => $f:expr;)*) => {$(
        impl<'t, R: IntoTraced<'t>> ops::$tr<R> for Traced<'t> {
            type Output = Traced<'t>;
            #[track_caller]
            fn $m(self, rhs: R) -> Traced<'t> {
                let f: fn(&Builder, ValueId, ValueId) -> Result<ValueId, BuildError> = $f;
                self.binary(rhs, Location::caller(), f)
            }
        }
    )*};
}

bin_ops! {
    Add add => |b, x, y| b.add(x, y);
    Sub sub => |b, x, y| b.sub(x, y);
    Mul mul => |b, x, y| b.mul(x, y);
    Div div => |b, x, y| b.binary(x, y, BinOp::FloorDiv);
    Rem rem => |b, x, y| b.binary(x, y, BinOp::Mod);
    BitAnd bitand => |b, x, y| b.binary(x, y, BinOp::BitAnd);
    BitOr bitor => |b, x, y| b.binary(x, y, BinOp::BitOr);
    BitXor bitxor => |b, x, y| b.binary(x, y, BinOp::BitXor);
    Shl shl => |b, x, y| b.binary(x, y, BinOp::Shl);
    Shr shr => |b, x, y| b.binary(x, y, BinOp::Shr);
}

impl<'t> ops::Neg for Traced<'t> {
    type Output = Traced<'t>;
    #[track_caller]
    fn neg(self) -> Traced<'t> {
        self.unary(Location::caller(), |b, v| b.neg(v))
    }
}

impl<'t> ops::Not for Traced<'t> {
    type Output = Traced<'t>;
    /// Bitwise not, `~x` ([`Traced::logical_not`] is numpy's `logical_not`).
    #[track_caller]
    fn not(self) -> Traced<'t> {
        self.unary(Location::caller(), |b, v| b.bit_not(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    #[test]
    fn operators_build_numpy_semantics() {
        let t = Tracer::new();
        let x = t.input("x", &[4], IntType::signed(4));
        t.output("a", (x + 1).pow(2) % 5);
        t.output("b", x / 2 - (x & 3) + (x ^ 5) * (x | 1));
        t.output("c", (x << 1) + (x >> 1) + !x + -x);
        t.output("d", x.gt(2).select(x * 2, x / 2));
        let g = t.finish().unwrap();
        let xs = [-7i64, -1, 0, 5];
        let out = crate::run(&g, &[Tensor::new(vec![4], xs.to_vec()).unwrap()]).unwrap();
        let py = |f: fn(i64) -> i64| xs.iter().map(|&v| f(v)).collect::<Vec<_>>();
        assert_eq!(out[0].data, py(|v| ((v + 1) * (v + 1)).rem_euclid(5)));
        assert_eq!(
            out[1].data,
            py(|v| v.div_euclid(2) - (v & 3) + (v ^ 5) * (v | 1))
        );
        assert_eq!(out[2].data, py(|v| (v << 1) + (v >> 1) + !v - v));
        assert_eq!(
            out[3].data,
            py(|v| if v > 2 { v * 2 } else { v.div_euclid(2) })
        );
    }

    #[test]
    fn errors_carry_the_caller_location() {
        let t = Tracer::new();
        let x = t.input("x", &[4], IntType::unsigned(3));
        let y = t.input("y", &[3], IntType::unsigned(3));
        let line = line!() + 1;
        let bad = x + y;
        t.output("z", bad * 2);
        let e = t.finish().unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert!(
            e.0[0].location.ends_with(&format!("trace.rs:{line}:19")),
            "{e}"
        );
        assert!(e.0[0].message.contains("do not broadcast"), "{e}");
    }
}
