//! A numpy-like builder for writing veil programs in Rust.
//!
//! Every method infers its result type with [`crate::infer::infer`] (so widths are sound by
//! construction), checks its arguments and returns a clear [`BuildError`] naming the op and the
//! offending shapes or types. Methods take `&self` (the graph sits in a `RefCell`), so calls
//! nest:
//!
//! ```
//! use veil_ir::builder::Builder;
//! use veil_ir::IntType;
//! # fn main() -> Result<(), veil_ir::builder::BuildError> {
//! let b = Builder::new();
//! let x = b.input_encrypted("x", &[4], IntType::unsigned(6))?;
//! let y = b.tlu(b.add(x, b.constant_scalar(3)?)?, |v| v * v)?;
//! b.output("y", y)?;
//! let g = b.finish()?;
//! assert_eq!(g.outputs().len(), 1);
//! # Ok(())
//! # }
//! ```

use crate::graph::{Graph, ValueId};
use crate::infer::{checked_numel, infer, TypeError};
use crate::ops::{BinOp, CmpOp, Constant, Conv2dAttrs, Op, Table, UnOp};
use crate::types::{IntType, TensorType};
use crate::verify::{verify, VerifyError};
use std::cell::RefCell;

/// Largest table a closure-built [`Builder::tlu`] may enumerate (`2^16` entries).
pub const MAX_TLU_DOMAIN_BITS: u8 = 16;

/// Why a builder call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The op is ill-typed (shapes, attributes, result wider than 64 bits, ...).
    #[error(transparent)]
    Type(#[from] TypeError),
    /// A bad argument that is not about typing (names, handles, constant data, tables).
    #[error("{op}: {msg}")]
    Invalid {
        /// Op (or builder method) concerned.
        op: &'static str,
        /// What is wrong and how to fix it.
        msg: String,
    },
    /// The finished graph does not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

fn invalid(op: &'static str, msg: impl Into<String>) -> BuildError {
    BuildError::Invalid {
        op,
        msg: msg.into(),
    }
}

type BResult<T = ValueId> = Result<T, BuildError>;

/// Builds a tensor-level [`Graph`] op by op.
#[derive(Debug, Default)]
pub struct Builder {
    g: RefCell<Graph>,
}

impl Builder {
    /// An empty builder.
    pub fn new() -> Self {
        Builder::default()
    }

    /// The type of a value built so far.
    pub fn ty(&self, v: ValueId) -> BResult<TensorType> {
        self.check_handle("ty", v)?;
        Ok(self.g.borrow().ty(v).clone())
    }

    /// The shape of a value built so far.
    pub fn shape(&self, v: ValueId) -> BResult<Vec<usize>> {
        Ok(self.ty(v)?.shape)
    }

    /// A copy of the graph built so far (not verified).
    pub fn graph(&self) -> Graph {
        self.g.borrow().clone()
    }

    /// Verifies the graph and returns it.
    pub fn finish(self) -> Result<Graph, BuildError> {
        let g = self.g.into_inner();
        verify(&g)?;
        Ok(g)
    }

    fn check_handle(&self, op: &'static str, v: ValueId) -> BResult<()> {
        let g = self.g.borrow();
        if !g.contains(v) {
            return Err(invalid(
                op,
                format!("value {v} does not belong to this builder"),
            ));
        }
        if let Op::Output { name } = g.op(v) {
            return Err(invalid(
                op,
                format!("output \"{name}\" produces no usable value; use its operand instead"),
            ));
        }
        Ok(())
    }

    /// Infers the type of `op(operands)` and adds the node.
    fn push(&self, op: Op, operands: &[ValueId], target: Option<&[usize]>) -> BResult {
        for &o in operands {
            self.check_handle(op.name(), o)?;
        }
        let ty = infer(&self.g.borrow(), &op, operands, target)?;
        if ty.shape.contains(&0) {
            return Err(invalid(
                op.name(),
                format!("result shape {:?} has a zero-sized axis", ty.shape),
            ));
        }
        Ok(self.g.borrow_mut().add_node(op, ty, operands))
    }

    fn input(&self, name: &str, shape: &[usize], int: IntType, encrypted: bool) -> BResult {
        if !int.is_valid() {
            return Err(invalid(
                "input",
                format!(
                    "\"{name}\": element type has {} bits; widths must be 1..=64",
                    int.bits
                ),
            ));
        }
        if shape.contains(&0) {
            return Err(invalid(
                "input",
                format!("\"{name}\": shape {shape:?} has a zero-sized axis"),
            ));
        }
        checked_numel(shape).map_err(|m| invalid("input", format!("\"{name}\": {m}")))?;
        let mut g = self.g.borrow_mut();
        if g.inputs()
            .iter()
            .any(|&v| matches!(g.op(v), Op::Input { name: n } if n == name))
        {
            return Err(invalid(
                "input",
                format!("duplicate input name \"{name}\"; input names must be unique"),
            ));
        }
        let ty = if encrypted {
            TensorType::encrypted(int, shape.to_vec())
        } else {
            TensorType::clear(int, shape.to_vec())
        };
        Ok(g.add_node(Op::Input { name: name.into() }, ty, &[]))
    }

    /// A new encrypted input (inputs are numbered in creation order).
    pub fn input_encrypted(&self, name: &str, shape: &[usize], int: IntType) -> BResult {
        self.input(name, shape, int, true)
    }

    /// A new clear input (known to the server, e.g. public parameters).
    pub fn input_clear(&self, name: &str, shape: &[usize], int: IntType) -> BResult {
        self.input(name, shape, int, false)
    }

    /// A clear constant tensor of the narrowest type holding its values.
    pub fn constant(&self, shape: &[usize], values: &[i64]) -> BResult {
        let n = checked_numel(shape).map_err(|m| invalid("const", m))?;
        if values.len() != n {
            return Err(invalid(
                "const",
                format!("shape {shape:?} needs {n} values, got {}", values.len()),
            ));
        }
        if shape.contains(&0) {
            return Err(invalid(
                "const",
                format!("shape {shape:?} has a zero-sized axis"),
            ));
        }
        let mut g = self.g.borrow_mut();
        let id = g.add_const(Constant {
            shape: shape.to_vec(),
            values: values.to_vec(),
        });
        let op = Op::Const { value: id };
        let ty = infer(&g, &op, &[], None)?;
        Ok(g.add_node(op, ty, &[]))
    }

    /// A clear scalar constant.
    pub fn constant_scalar(&self, v: i64) -> BResult {
        self.constant(&[], &[v])
    }

    /// `a + b` with broadcasting.
    pub fn add(&self, a: ValueId, b: ValueId) -> BResult {
        self.push(Op::Add, &[a, b], None)
    }

    /// `a - b` with broadcasting.
    pub fn sub(&self, a: ValueId, b: ValueId) -> BResult {
        self.push(Op::Sub, &[a, b], None)
    }

    /// `-a`.
    pub fn neg(&self, a: ValueId) -> BResult {
        self.push(Op::Neg, &[a], None)
    }

    /// `a * b` with broadcasting.
    pub fn mul(&self, a: ValueId, b: ValueId) -> BResult {
        self.push(Op::Mul, &[a, b], None)
    }

    /// numpy `a @ b` for ranks 1 and 2.
    pub fn matmul(&self, a: ValueId, b: ValueId) -> BResult {
        self.push(Op::MatMul, &[a, b], None)
    }

    /// 2-D convolution of `x [N,C,H,W]` with `w [O,C/group,KH,KW]` and an optional bias `[O]`.
    pub fn conv2d(
        &self,
        x: ValueId,
        w: ValueId,
        bias: Option<ValueId>,
        attrs: Conv2dAttrs,
    ) -> BResult {
        let mut ops = vec![x, w];
        ops.extend(bias);
        self.push(Op::Conv2d(attrs), &ops, None)
    }

    /// Sum over `axes` (any order; all axes if empty), keeping them with size 1 if `keepdims`.
    pub fn sum(&self, a: ValueId, axes: &[usize], keepdims: bool) -> BResult {
        let mut axes = axes.to_vec();
        axes.sort_unstable();
        self.push(Op::Sum { axes, keepdims }, &[a], None)
    }

    /// Same elements in row-major order, new shape.
    pub fn reshape(&self, a: ValueId, shape: &[usize]) -> BResult {
        self.push(Op::Reshape, &[a], Some(shape))
    }

    /// Permutes axes: result axis `i` is axis `perm[i]` of `a`.
    pub fn transpose(&self, a: ValueId, perm: &[usize]) -> BResult {
        self.push(
            Op::Transpose {
                perm: perm.to_vec(),
            },
            &[a],
            None,
        )
    }

    /// numpy `broadcast_to(a, shape)`.
    pub fn broadcast(&self, a: ValueId, shape: &[usize]) -> BResult {
        self.push(Op::Broadcast, &[a], Some(shape))
    }

    /// Concatenation along `axis`.
    pub fn concat(&self, parts: &[ValueId], axis: usize) -> BResult {
        self.push(Op::Concat { axis }, parts, None)
    }

    /// `a[starts[0]:stops[0]:steps[0], ...]` (non-negative bounds, steps `>= 1`).
    pub fn slice(&self, a: ValueId, starts: &[usize], stops: &[usize], steps: &[usize]) -> BResult {
        self.push(
            Op::Slice {
                starts: starts.to_vec(),
                stops: stops.to_vec(),
                steps: steps.to_vec(),
            },
            &[a],
            None,
        )
    }

    /// numpy `a[..., i, ...]` with `i` on `axis`: the axis is removed (a slice of length 1
    /// followed by a reshape).
    pub fn index(&self, a: ValueId, axis: usize, i: usize) -> BResult {
        let shape = self.shape(a)?;
        if axis >= shape.len() {
            return Err(invalid(
                "index",
                format!("axis {axis} is out of range for shape {shape:?}"),
            ));
        }
        if i >= shape[axis] {
            return Err(invalid(
                "index",
                format!(
                    "index {i} is out of range for axis {axis} of size {} (shape {shape:?})",
                    shape[axis]
                ),
            ));
        }
        let mut starts = vec![0; shape.len()];
        let mut stops = shape.clone();
        starts[axis] = i;
        stops[axis] = i + 1;
        let s = self.slice(a, &starts, &stops, &vec![1; shape.len()])?;
        let mut out = shape;
        out.remove(axis);
        self.reshape(s, &out)
    }

    /// Table lookup of `f` over the operand's whole domain (`f` is called once per value of
    /// the operand type, smallest first). Domains above `2^16` values are refused.
    pub fn tlu(&self, a: ValueId, f: impl Fn(i64) -> i64) -> BResult {
        let int = self.ty(a)?.int;
        if int.bits > MAX_TLU_DOMAIN_BITS {
            return Err(invalid(
                "tlu",
                format!(
                    "the operand type {int} has 2^{} values; a table lookup enumerates at most 2^{MAX_TLU_DOMAIN_BITS}: narrow the operand first (e.g. round or clip it)",
                    int.bits
                ),
            ));
        }
        let entries = (int.min()..=int.max()).map(|v| f(v as i64)).collect();
        self.tlu_table(a, entries)
    }

    /// Table lookup with explicit entries: entry `i` is the image of the `i`-th smallest value
    /// of the operand type (`2^bits` entries).
    pub fn tlu_table(&self, a: ValueId, entries: Vec<i64>) -> BResult {
        self.check_handle("tlu", a)?;
        let table = self.g.borrow_mut().add_table(Table { entries });
        self.push(Op::Tlu { table }, &[a], None)
    }

    /// One table per element: element `j` (row-major) is looked up in `tables[map[j]]`.
    pub fn tlu_multi(&self, a: ValueId, tables: Vec<Vec<i64>>, map: Vec<u32>) -> BResult {
        self.check_handle("tlu.multi", a)?;
        let ids = {
            let mut g = self.g.borrow_mut();
            tables
                .into_iter()
                .map(|entries| g.add_table(Table { entries }))
                .collect()
        };
        self.push(Op::TluMulti { tables: ids, map }, &[a], None)
    }

    /// Comparison with broadcasting; `1` where the predicate holds, typed `u1`.
    pub fn cmp(&self, a: ValueId, b: ValueId, op: CmpOp) -> BResult {
        self.push(Op::Cmp(op), &[a, b], None)
    }

    /// `a < b`.
    pub fn lt(&self, a: ValueId, b: ValueId) -> BResult {
        self.cmp(a, b, CmpOp::Lt)
    }

    /// `a <= b`.
    pub fn le(&self, a: ValueId, b: ValueId) -> BResult {
        self.cmp(a, b, CmpOp::Le)
    }

    /// `a > b`.
    pub fn gt(&self, a: ValueId, b: ValueId) -> BResult {
        self.cmp(a, b, CmpOp::Gt)
    }

    /// `a >= b`.
    pub fn ge(&self, a: ValueId, b: ValueId) -> BResult {
        self.cmp(a, b, CmpOp::Ge)
    }

    /// `a == b`.
    pub fn eq(&self, a: ValueId, b: ValueId) -> BResult {
        self.cmp(a, b, CmpOp::Eq)
    }

    /// `a != b`.
    pub fn ne(&self, a: ValueId, b: ValueId) -> BResult {
        self.cmp(a, b, CmpOp::Ne)
    }

    /// Elementwise minimum with broadcasting.
    pub fn min(&self, a: ValueId, b: ValueId) -> BResult {
        self.push(Op::Min, &[a, b], None)
    }

    /// Elementwise maximum with broadcasting.
    pub fn max(&self, a: ValueId, b: ValueId) -> BResult {
        self.push(Op::Max, &[a, b], None)
    }

    /// `max(a, 0)`.
    pub fn relu(&self, a: ValueId) -> BResult {
        self.push(Op::Relu, &[a], None)
    }

    /// `|a|`.
    pub fn abs(&self, a: ValueId) -> BResult {
        self.push(Op::Abs, &[a], None)
    }

    /// Rounds to the nearest multiple of `2^lsbs` (ties upward), `1 <= lsbs < bits(a)`.
    pub fn round(&self, a: ValueId, lsbs: u8) -> BResult {
        self.push(
            Op::Round {
                lsbs,
                approx: false,
                rescale: false,
            },
            &[a],
            None,
        )
    }

    /// Rounds approximately to a multiple of `2^lsbs` (`floor` or `ceil`, the nearest one
    /// unless `a` is within the noise of a tie; see [`Op::Round`]): the lookups reading the
    /// result cost a bootstrap of the kept bits only, with no extraction of the dropped ones.
    pub fn round_approx(&self, a: ValueId, lsbs: u8) -> BResult {
        self.push(
            Op::Round {
                lsbs,
                approx: true,
                rescale: false,
            },
            &[a],
            None,
        )
    }

    /// The rounded quotient `round(a / 2^lsbs)`, approximately (see
    /// [`Builder::round_approx`]): what a lookup of the kept high bits reads, with a table of
    /// one entry per kept value however wide `a` is.
    pub fn round_approx_quotient(&self, a: ValueId, lsbs: u8) -> BResult {
        self.push(
            Op::Round {
                lsbs,
                approx: true,
                rescale: true,
            },
            &[a],
            None,
        )
    }

    /// `min(max(a, lo), hi)`, `lo <= hi`.
    pub fn clip(&self, a: ValueId, lo: i64, hi: i64) -> BResult {
        self.push(Op::Clip { lo, hi }, &[a], None)
    }

    /// The elementwise integer op `a op b` with broadcasting ([`BinOp`]: `//`, `%`, `**`,
    /// bitwise and shifts, logical and/or/xor); either operand may be encrypted.
    pub fn binary(&self, a: ValueId, b: ValueId, op: BinOp) -> BResult {
        self.push(Op::Binary(op), &[a, b], None)
    }

    /// `op(a, c)` with a clear scalar constant `c`.
    fn binary_const(&self, a: ValueId, c: i64, op: BinOp) -> BResult {
        let c = self.constant_scalar(c)?;
        self.binary(a, c, op)
    }

    /// `a // d`: floor division by a clear constant (numpy `floor_divide`, toward -inf).
    pub fn floor_div(&self, a: ValueId, d: i64) -> BResult {
        if d == 0 {
            return Err(invalid("floordiv", "division by zero"));
        }
        self.binary_const(a, d, BinOp::FloorDiv)
    }

    /// `a % d`: remainder by a clear constant, with the sign of `d` (numpy `remainder`).
    pub fn modulo(&self, a: ValueId, d: i64) -> BResult {
        if d == 0 {
            return Err(invalid("mod", "modulo by zero"));
        }
        self.binary_const(a, d, BinOp::Mod)
    }

    /// `a ** e` for a clear exponent `e >= 0`.
    pub fn pow(&self, a: ValueId, e: u32) -> BResult {
        self.binary_const(a, i64::from(e), BinOp::Pow)
    }

    /// `a << k` for a clear shift `k` (`a * 2^k`).
    pub fn shl(&self, a: ValueId, k: u32) -> BResult {
        self.binary_const(a, i64::from(k), BinOp::Shl)
    }

    /// `a >> k` for a clear shift `k` (arithmetic: `floor(a / 2^k)`).
    pub fn shr(&self, a: ValueId, k: u32) -> BResult {
        self.binary_const(a, i64::from(k), BinOp::Shr)
    }

    /// `a & b` (two's complement), with broadcasting.
    pub fn bit_and(&self, a: ValueId, b: ValueId) -> BResult {
        self.binary(a, b, BinOp::BitAnd)
    }

    /// `a | b` (two's complement), with broadcasting.
    pub fn bit_or(&self, a: ValueId, b: ValueId) -> BResult {
        self.binary(a, b, BinOp::BitOr)
    }

    /// `a ^ b` (two's complement), with broadcasting.
    pub fn bit_xor(&self, a: ValueId, b: ValueId) -> BResult {
        self.binary(a, b, BinOp::BitXor)
    }

    /// `~a = -a - 1`.
    pub fn bit_not(&self, a: ValueId) -> BResult {
        self.push(Op::Unary(UnOp::BitNot), &[a], None)
    }

    /// numpy `logical_and`: `1` where both are nonzero.
    pub fn logical_and(&self, a: ValueId, b: ValueId) -> BResult {
        self.binary(a, b, BinOp::And)
    }

    /// numpy `logical_or`: `1` where either is nonzero.
    pub fn logical_or(&self, a: ValueId, b: ValueId) -> BResult {
        self.binary(a, b, BinOp::Or)
    }

    /// numpy `logical_xor`: `1` where exactly one is nonzero.
    pub fn logical_xor(&self, a: ValueId, b: ValueId) -> BResult {
        self.binary(a, b, BinOp::Xor)
    }

    /// numpy `logical_not`: `1` where `a == 0`.
    pub fn logical_not(&self, a: ValueId) -> BResult {
        self.push(Op::Unary(UnOp::Not), &[a], None)
    }

    /// numpy `sign`: `-1`, `0` or `1`.
    pub fn sign(&self, a: ValueId) -> BResult {
        self.push(Op::Unary(UnOp::Sign), &[a], None)
    }

    /// numpy `where(c, a, b)`: `a` where `c != 0`, else `b`, with broadcasting.
    pub fn where_(&self, c: ValueId, a: ValueId, b: ValueId) -> BResult {
        self.push(Op::Where, &[c, a, b], None)
    }

    /// Declares `a` as the next program output named `name`. Returns the output node (which
    /// cannot be used as an operand).
    pub fn output(&self, name: &str, a: ValueId) -> BResult {
        self.check_handle("output", a)?;
        {
            let g = self.g.borrow();
            if g.outputs()
                .iter()
                .any(|&v| matches!(g.op(v), Op::Output { name: n } if n == name))
            {
                return Err(invalid(
                    "output",
                    format!("duplicate output name \"{name}\"; output names must be unique"),
                ));
            }
        }
        self.push(Op::Output { name: name.into() }, &[a], None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(b: u8) -> IntType {
        IntType::unsigned(b)
    }

    /// Compares a builder result with the expected type text or error message.
    fn check(b: &Builder, r: BResult, expect: &str) {
        let got = match r {
            Ok(v) => b.ty(v).unwrap().to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn doc_example_and_types() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[4], u(6)).unwrap();
        let s = b.add(x, b.constant_scalar(3).unwrap()).unwrap();
        check(&b, Ok(s), "enc<u7>[4]");
        let y = b.tlu(s, |v| v * v).unwrap();
        check(&b, Ok(y), "enc<u14>[4]"); // 66^2 = 4356
        b.output("y", y).unwrap();
        let g = b.finish().unwrap();
        assert_eq!(g.tables.len(), 1);
        assert_eq!(g.tables[0].entries.len(), 128);
    }

    #[test]
    fn errors_name_the_op_and_shapes() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[2, 3], u(4)).unwrap();
        let y = b.input_clear("y", &[4], u(4)).unwrap();
        check(
            &b,
            b.add(x, y),
            "error: add: operand shapes [2, 3] and [4] do not broadcast",
        );
        check(
            &b,
            b.input_encrypted("x", &[1], u(2)),
            "error: input: duplicate input name \"x\"; input names must be unique",
        );
        check(
            &b,
            b.input_encrypted("z", &[2, 0], u(2)),
            "error: input: \"z\": shape [2, 0] has a zero-sized axis",
        );
        check(
            &b,
            b.input_encrypted("z", &[2], u(65)),
            "error: input: \"z\": element type has 65 bits; widths must be 1..=64",
        );
        check(
            &b,
            b.matmul(x, y),
            "error: matmul: matmul inner dimensions differ: [2, 3] x [4] (3 != 4)",
        );
        check(
            &b,
            b.constant(&[2], &[1]),
            "error: const: shape [2] needs 2 values, got 1",
        );
        check(&b, b.reshape(x, &[3, 2]), "enc<u4>[3,2]");
        check(
            &b,
            b.index(x, 1, 3),
            "error: index: index 3 is out of range for axis 1 of size 3 (shape [2, 3])",
        );
        check(&b, b.index(x, 1, 2), "enc<u4>[2]");
        check(
            &b,
            b.tlu_table(x, vec![0; 8]),
            "error: tlu: table #0 has 8 entries, but an operand of type u4 needs exactly 16",
        );
        let o = b.output("o", x).unwrap();
        check(
            &b,
            b.output("o", y),
            "error: output: duplicate output name \"o\"; output names must be unique",
        );
        check(
            &b,
            b.neg(o),
            "error: neg: output \"o\" produces no usable value; use its operand instead",
        );
        assert!(b.finish().is_ok());
    }

    #[test]
    fn width_overflow_and_big_tables() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[2], u(40)).unwrap();
        check(
            &b,
            b.mul(x, x),
            "error: mul: result range [0, 1208925819612430151450625] needs more than 64 bits; narrow the operands first",
        );
        check(
            &b,
            b.tlu(x, |v| v),
            "error: tlu: the operand type u40 has 2^40 values; a table lookup enumerates at most 2^16: narrow the operand first (e.g. round or clip it)",
        );
        let mut v = x;
        let mut err = None;
        for _ in 0..30 {
            match b.add(v, v) {
                Ok(n) => v = n,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert_eq!(b.ty(v).unwrap().int, u(64));
        assert_eq!(
            err.unwrap().to_string(),
            "add: result range [0, 36893488147419103230] needs more than 64 bits; narrow the operands first"
        );
    }

    #[test]
    fn finish_verifies() {
        let b = Builder::new();
        b.input_encrypted("x", &[2], u(3)).unwrap();
        assert_eq!(
            b.finish().unwrap_err().to_string(),
            "invalid graph: the graph has no output; add at least one `output`"
        );
    }

    #[test]
    fn tables_are_shared() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[2], u(2)).unwrap();
        let a = b.tlu(x, |v| 3 - v).unwrap();
        let c = b.tlu_table(x, vec![3, 2, 1, 0]).unwrap();
        let m = b
            .tlu_multi(x, vec![vec![3, 2, 1, 0], vec![0; 4]], vec![1, 0])
            .unwrap();
        b.output("a", a).unwrap();
        b.output("c", c).unwrap();
        b.output("m", m).unwrap();
        let g = b.finish().unwrap();
        assert_eq!(g.tables.len(), 2);
    }
}
