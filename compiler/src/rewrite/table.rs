//! Tables as functions on an integer interval, the form rules compose them in.
//!
//! A graph table is indexed by `a - min(type(a))`; a [`FnTable`] instead stores its first
//! argument `lo`, so it does not depend on the operand's declared type and survives merges of
//! e-classes with different types. Arguments outside `lo..lo+len` never occur on a sample
//! inside the program's domain (`veil_ir::Domain`): every class's range is derived from the
//! domain by sound transfer functions, and tables are tabulated over the whole range of the
//! class they apply to. Lookups there clamp to the nearest entry so that every function is
//! total; the client's domain check refuses the samples that would reach those entries
//! (`ir-spec/SPEC.md`, "Domain").

use veil_ir::infer::round_value;
use veil_ir::Interval;
use veil_ir::{CmpOp, IntType, Table};

/// A function on `lo ..= lo + entries.len() - 1`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FnTable {
    /// First argument.
    pub lo: i128,
    /// Image of `lo + i` at index `i`; never empty.
    pub entries: Vec<i64>,
}

impl FnTable {
    /// Tabulates `f` on `r`; `None` when `f` overflows `i64` somewhere or `r` is empty.
    pub fn tabulate(r: Interval, f: impl Fn(i128) -> i128) -> Option<FnTable> {
        if r.lo > r.hi {
            return None;
        }
        let entries = (r.lo..=r.hi)
            .map(|v| i64::try_from(f(v)).ok())
            .collect::<Option<Vec<i64>>>()?;
        Some(FnTable { lo: r.lo, entries })
    }

    /// A graph table on operand type `int` as a function.
    pub fn from_graph(t: &Table, int: IntType) -> Option<FnTable> {
        if t.entries.is_empty() {
            return None;
        }
        Some(FnTable {
            lo: int.min(),
            entries: t.entries.clone(),
        })
    }

    /// Last argument of the domain.
    pub fn hi(&self) -> i128 {
        self.lo + self.entries.len() as i128 - 1
    }

    /// Image of `v` (clamped into the domain).
    pub fn eval(&self, v: i128) -> i128 {
        let i = (v - self.lo).clamp(0, self.entries.len() as i128 - 1);
        self.entries[i as usize] as i128
    }

    /// Range of images of the arguments in `r` (clamped into the domain).
    pub fn image(&self, r: Interval) -> Interval {
        let a = (r.lo.max(self.lo) - self.lo).min(self.entries.len() as i128 - 1);
        let b = (r.hi.min(self.hi()) - self.lo).max(a);
        let s = &self.entries[a as usize..=b as usize];
        Interval::of_values(s.iter().map(|&v| v as i128)).unwrap_or(Interval::point(0))
    }

    /// The graph table for an operand of type `int` with results in type `out`: arguments
    /// outside this function's domain (unreachable) take the nearest entry, and every entry is
    /// clamped into `out` (only unreachable entries can be out of it).
    pub fn to_graph(&self, int: IntType, out: IntType) -> Table {
        let n = 1i128 << int.bits;
        Table {
            entries: (0..n)
                .map(|i| self.eval(int.min() + i).clamp(out.min(), out.max()) as i64)
                .collect(),
        }
    }
}

/// A univariate elementwise function of the rules, evaluated on one integer.
#[derive(Clone, Debug, PartialEq)]
pub enum Unary<'a> {
    /// A table.
    Table(&'a FnTable),
    /// `-x`
    Neg,
    /// `x + c`
    AddConst(i128),
    /// `c - x`
    RSubConst(i128),
    /// `x * c`
    MulConst(i128),
    /// `max(x, 0)`
    Relu,
    /// `|x|`
    Abs,
    /// `clip(x, lo, hi)`
    Clip(i128, i128),
    /// `round(x)` dropping `k` lsbs.
    Round(u8),
    /// `x (pred) c` as 0/1.
    CmpConst(CmpOp, i128),
    /// `c (pred) x` as 0/1.
    ConstCmp(CmpOp, i128),
    /// `min(x, c)`
    MinConst(i128),
    /// `max(x, c)`
    MaxConst(i128),
    /// `floor(x^2 / 4)`, half of the quarter-square multiplication.
    QuarterSquare,
    /// `x * x`
    Square,
}

impl Unary<'_> {
    /// Image of `v`.
    pub fn eval(&self, v: i128) -> i128 {
        match self {
            Unary::Table(t) => t.eval(v),
            Unary::Neg => -v,
            Unary::AddConst(c) => v + c,
            Unary::RSubConst(c) => c - v,
            Unary::MulConst(c) => v.saturating_mul(*c),
            Unary::Relu => v.max(0),
            Unary::Abs => v.abs(),
            Unary::Clip(lo, hi) => v.clamp(*lo, (*hi).max(*lo)),
            // `None` only past `i128` (rounding attributes are below 64 bits)
            Unary::Round(k) => round_value(v, *k).unwrap_or(v),
            Unary::CmpConst(p, c) => p.eval(v, *c) as i128,
            Unary::ConstCmp(p, c) => p.eval(*c, v) as i128,
            Unary::MinConst(c) => v.min(*c),
            Unary::MaxConst(c) => v.max(*c),
            Unary::QuarterSquare => v.saturating_mul(v).div_euclid(4),
            Unary::Square => v.saturating_mul(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_round_trip_and_clamping() {
        let t = Table {
            entries: vec![5, 6, 7, 8],
        };
        let f = FnTable::from_graph(&t, IntType::signed(2)).unwrap();
        assert_eq!((f.lo, f.hi()), (-2, 1));
        assert_eq!(f.eval(-2), 5);
        assert_eq!(f.eval(9), 8);
        assert_eq!(f.image(Interval::new(-1, 0)), Interval::new(6, 7));
        // re-tabulated on a wider operand type: unreachable arguments take the nearest entry
        let g = f.to_graph(IntType::signed(3), IntType::unsigned(3));
        assert_eq!(g.entries, vec![5, 5, 5, 6, 7, 7, 7, 7]);
    }

    #[test]
    fn quarter_squares_multiply() {
        for a in -9i128..9 {
            for b in -9i128..9 {
                let q = |v| Unary::QuarterSquare.eval(v);
                assert_eq!(q(a + b) - q(a - b), a * b, "{a} * {b}");
            }
        }
    }
}
