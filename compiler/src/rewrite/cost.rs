//! The cost model that extraction minimizes, and PBS counts of whole graphs.
//!
//! A program's cost is the sum over its bootstraps of [`CostModel::pbs_cost`] at the precision
//! the PBS sees, plus a small cost per levelled element operation ([`LEVELLED_COST`]).
//!
//! The precision of a bootstrap is exactly what the lowering ([`crate::lower`]) gives it: the
//! lowering bootstraps `keyswitch(x - min(type x))` with a table over the *full* bit width of
//! `x`'s type (it divides out no known-zero low bits, and `round` is an exact full-width
//! lookup). So the precision of a bootstrap on `x` is the bit width of `x`'s type (the type
//! the value is emitted with: declared for values of the input graph, else the narrowest type
//! holding its range), see [`pbs_bits`]. Per op:
//! - `tlu`, `tlu.multi`, `relu`, `abs`, `clip`, `round`: one PBS per element at the
//!   operand's precision;
//! - comparisons, `min`, `max`: one PBS per element at the precision of `a - b` (typed from
//!   the operand types, as the lowering does);
//! - encrypted x encrypted `mul`: per element one PBS at the precision of `a + b` and one at
//!   that of `a - b`; encrypted x encrypted `matmul`: the same per multiply;
//! - everything else on encrypted data is levelled; clear computations are free.
//!
//! The price of one bootstrap is the parameter optimizer's ([`crate::optimizer`]): one PBS
//! plus one keyswitch with the parameter set it picks for a single partition at that
//! precision, `norm2 = 1` and the program's error target, in units of `2^20` elementary
//! operations. Prices are memoized per precision and target; when the optimizer finds no
//! parameters the model falls back to [`fallback_pbs_cost`] and says so
//! ([`OpCost::fallback`]).

use crate::optimizer::{optimize_cached, ErrorTarget, Problem};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use veil_ir::Interval;
use veil_ir::{Graph, IntType, Op};

/// Cost of one levelled operation on one ciphertext element (about `n` torus additions), in
/// the units of [`CostModel::pbs_cost`].
pub const LEVELLED_COST: f64 = 0.002;

/// The optimizer's cost units per unit of this model (`2^20`, as Concrete reports costs).
const UNIT: f64 = (1u64 << 20) as f64;

pub use crate::optimizer::DEFAULT_P_ERROR;

/// The fallback price of one bootstrap (keyswitch included) on `bits` bits, used only where
/// the optimizer finds no parameters: Concrete's optimizer's reference costs (its reference table,
/// 128-bit security, `p_error = 2^-13.9`, `norm2 = 1`) for 1..=8 bits, extrapolated
/// above 8 bits by a factor 3.5 per bit (the polynomial size doubles, the decomposition
/// deepens).
pub fn fallback_pbs_cost(bits: u32) -> f64 {
    const TABLE: [f64; 8] = [30.0, 34.0, 46.0, 76.0, 102.0, 236.0, 546.0, 1761.0];
    match bits {
        0 => TABLE[0],
        1..=8 => TABLE[bits as usize - 1],
        _ => TABLE[7] * 3.5f64.powi(bits.min(64) as i32 - 8),
    }
}

/// The price of one bootstrap and where it comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PbsPrice {
    /// Cost of one PBS and its keyswitch, in units of `2^20` elementary operations.
    pub cost: f64,
    /// Whether the optimizer found no parameters and [`fallback_pbs_cost`] was used.
    pub fallback: bool,
}

type PriceMemo = HashMap<(u32, u32, u64), PbsPrice>;

/// Memo of prices by `(bits, log4 norm2, p_error bits)`, shared by all compilations of the
/// process.
fn price_memo() -> &'static Mutex<PriceMemo> {
    static MEMO: OnceLock<Mutex<PriceMemo>> = OnceLock::new();
    MEMO.get_or_init(Default::default)
}

/// The cost model of one compilation: bootstrap prices at one error target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostModel {
    /// Per-bootstrap error probability the prices are computed for.
    pub p_error: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            p_error: DEFAULT_P_ERROR,
        }
    }
}

impl CostModel {
    /// The model at per-bootstrap error probability `p_error` (in `(0, 1)`).
    pub fn new(p_error: f64) -> Self {
        CostModel { p_error }
    }

    /// The price of one bootstrap whose input has `bits` bits (0 is priced as 1): the
    /// optimizer's PBS + keyswitch cost for a single partition at that precision, memoized;
    /// where it finds no parameters, the larger of [`fallback_pbs_cost`] and the price of
    /// `bits - 1`.
    pub fn pbs_price(&self, bits: u32) -> PbsPrice {
        self.pbs_price_norm2(bits, 0)
    }

    /// [`CostModel::pbs_price`] of a bootstrap whose input noise is `4^log4_norm2` times a
    /// fresh ciphertext's (one step of an exact `round`: a bit read `w - 1 - j` bits above
    /// the message).
    pub fn pbs_price_norm2(&self, bits: u32, log4_norm2: u32) -> PbsPrice {
        let bits = bits.max(1);
        let key = (bits, log4_norm2, self.p_error.to_bits());
        let memo = price_memo();
        if let Some(p) = memo.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return *p;
        }
        let price = u8::try_from(bits)
            .ok()
            .filter(|b| *b <= crate::optimizer::MAX_PRECISION)
            .and_then(|b| {
                let norm2 = 4f64.powi(log4_norm2.min(60) as i32);
                let problem = Problem::single(b, norm2, 1, ErrorTarget::p_error(self.p_error));
                optimize_cached(&problem).ok()
            })
            .and_then(|sol| {
                let set = sol.sets.get(*sol.partition_sets.first()?)?;
                let c = (set.pbs_cost + set.ks_cost) / UNIT;
                (c.is_finite() && c > 0.0).then_some(c)
            });
        let price = match price {
            Some(cost) => PbsPrice {
                cost,
                fallback: false,
            },
            // never cheaper than one bit less, so that prices grow with precision
            None => PbsPrice {
                cost: match (bits, log4_norm2) {
                    (1, 0) => fallback_pbs_cost(1),
                    (_, 0) => fallback_pbs_cost(bits).max(self.pbs_cost(bits - 1)),
                    // as if the amplified noise were message bits
                    _ => self.pbs_cost(bits + log4_norm2),
                },
                fallback: true,
            },
        };
        memo.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, price);
        price
    }

    /// Cost of one bootstrap (keyswitch included) whose input has `bits` bits.
    pub fn pbs_cost(&self, bits: u32) -> f64 {
        self.pbs_price(bits).cost
    }

    fn pbs(&self, n: f64, bits: u32) -> OpCost {
        self.pbs_at(n, self.pbs_price(bits), bits)
    }

    fn pbs_at(&self, n: f64, p: PbsPrice, bits: u32) -> OpCost {
        OpCost {
            pbs: n as u64,
            cost: n * p.cost,
            pbs_cost: n * p.cost,
            fallback: if p.fallback { bit_mask(bits) } else { 0 },
        }
    }

    /// The cost of applying `op` to operands described by `ops`, producing `result`.
    pub fn op_cost(&self, op: &Op, ops: &[Fact<'_>], result: &Fact<'_>) -> OpCost {
        let enc = ops.iter().filter(|o| o.encrypted).count();
        if enc == 0 || matches!(op, Op::Input { .. } | Op::Output { .. } | Op::Const { .. }) {
            return OpCost::default();
        }
        let n = result.numel();
        let first = &ops[0];
        match op {
            // an aligned operand's bootstraps read only its high bits (`keyswitch.shr`)
            Op::Tlu { .. } | Op::TluMulti { .. } | Op::Relu | Op::Abs | Op::Clip { .. } => {
                self.pbs(first.numel(), read_bits(first))
            }
            Op::Round {
                lsbs,
                approx: false,
                ..
            } => self.round_cost(first, *lsbs),
            // one bootstrap of the kept bits when its value is needed; none when only lookups
            // read it ([`CostModel::graph_cost`] knows the users)
            Op::Round {
                lsbs,
                approx: true,
                rescale,
            } => {
                let kept = if *rescale {
                    pbs_bits(result.int)
                } else {
                    pbs_bits(result.int).saturating_sub(*lsbs as u32).max(1)
                };
                self.pbs(first.numel(), kept)
            }
            Op::Cmp(_) | Op::Min | Op::Max if ops.len() == 2 => {
                let d = diff(type_range(ops[0].int), type_range(ops[1].int));
                self.pbs(n, d.bits()).plus(OpCost::levelled(2.0 * n))
            }
            Op::Mul if enc == 2 && ops.len() == 2 => self
                .quarter_squares(n, &ops[0], &ops[1])
                .plus(OpCost::levelled(3.0 * n)),
            Op::MatMul | Op::Conv2d(_) if ops.len() >= 2 => {
                // multiplies per output element: the reduced size
                let k = match op {
                    Op::MatMul => *ops[0].shape.last().unwrap_or(&1) as f64,
                    _ => ops[1].shape.iter().skip(1).product::<usize>() as f64,
                };
                if ops[0].encrypted && ops[1].encrypted {
                    self.quarter_squares(n * k, &ops[0], &ops[1])
                } else {
                    OpCost::levelled(n * k)
                }
            }
            Op::Sum { .. } => OpCost::levelled(first.numel()),
            Op::Reshape
            | Op::Transpose { .. }
            | Op::Broadcast
            | Op::Concat { .. }
            | Op::Slice { .. } => OpCost::default(),
            // levelled arithmetic; a product with one encrypted factor; the guarded forms above
            // with the wrong operand count (the verifier refuses those)
            Op::Add
            | Op::Sub
            | Op::Neg
            | Op::Mul
            | Op::MatMul
            | Op::Conv2d(_)
            | Op::Cmp(_)
            | Op::Min
            | Op::Max => OpCost::levelled(n),
            // the numpy ops (`desugar` turns them into lookups before the rewrite): one lookup
            // of the encrypted operand, or of the packed pair of encrypted operands
            Op::Unary(_) => self.pbs(first.numel(), read_bits(first)),
            Op::Binary(_) | Op::Where => {
                let bits = ops
                    .iter()
                    .filter(|o| o.encrypted)
                    .map(read_bits)
                    .sum::<u32>();
                self.pbs(n, bits)
            }
            // TFHE-level ops (never in a tensor-level graph): a keyswitch's price is part of
            // the bootstrap that reads it
            Op::KeySwitch
            | Op::KeySwitchShr { .. }
            | Op::KeySwitchBit { .. }
            | Op::KeySwitchRound { .. } => OpCost::default(),
            Op::Pbs { .. } | Op::WopPbs { .. } => self.pbs(first.numel(), read_bits(first)),
            // no cost (returned above)
            Op::Input { .. } | Op::Output { .. } | Op::Const { .. } => OpCost::default(),
        }
    }

    /// Exact `round` as the lowering executes it: one bit extraction per dropped bit not
    /// already zero, bit `j` read `w - 1 - j` bits above a 1-bit message (`w` the width of
    /// the operand plus half a step), plus levelled glue.
    fn round_cost(&self, x: &Fact<'_>, lsbs: u8) -> OpCost {
        let n = x.numel();
        // the bits are read from `x + 2^(lsbs - 1)`
        let half = 1i128 << lsbs.saturating_sub(1);
        let w = IntType::fitting(x.int.min() + half, x.int.max() + half)
            .map_or(pbs_bits(x.int), pbs_bits);
        (x.align..lsbs).fold(OpCost::default(), |acc, j| {
            let log4 = w.saturating_sub(1 + j as u32);
            acc.plus(self.pbs_at(n, self.pbs_price_norm2(1, log4), w))
                .plus(OpCost::levelled(n))
        })
    }

    /// `n` products `a * b` as the lowering computes them: `n` PBS on `a + b` and `n` on
    /// `a - b`, each at its own precision (typed from the operand types).
    fn quarter_squares(&self, n: f64, a: &Fact<'_>, b: &Fact<'_>) -> OpCost {
        let (ra, rb) = (type_range(a.int), type_range(b.int));
        let s = Interval {
            lo: ra.lo.saturating_add(rb.lo),
            hi: ra.hi.saturating_add(rb.hi),
        };
        self.pbs(n, s.bits()).plus(self.pbs(n, diff(ra, rb).bits()))
    }

    /// Bootstrap count and cost of a whole tensor-level graph, with declared types (run the
    /// bit-width pass first so that they are tight): what the lowering of `g` executes.
    pub fn graph_cost(&self, g: &Graph) -> OpCost {
        let mut total = OpCost::default();
        let order = g.topo_order().unwrap_or_else(|_| g.values());
        let align = crate::lower::alignments(g);
        let fact = |u: veil_ir::ValueId| {
            let t = g.ty(u);
            Fact {
                encrypted: t.is_encrypted(),
                int: t.int,
                shape: &t.shape,
                align: align.get(&u).copied().unwrap_or(0),
            }
        };
        for v in order {
            if crate::lower::is_virtual_round(g, v) {
                continue;
            }
            let facts: Vec<Fact> = g.operands(v).iter().map(|u| fact(*u)).collect();
            total = total.plus(self.op_cost(g.op(v), &facts, &fact(v)));
        }
        total
    }
}

/// Cost of one bootstrap on `bits` bits with the default model (`p_error = 2^-40`).
pub fn pbs_cost(bits: u32) -> f64 {
    CostModel::default().pbs_cost(bits)
}

/// [`CostModel::graph_cost`] with the default model (`p_error = 2^-40`).
pub fn graph_cost(g: &Graph) -> OpCost {
    CostModel::default().graph_cost(g)
}

/// What the cost model needs to know about one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact<'a> {
    /// Whether it is encrypted.
    pub encrypted: bool,
    /// The integer type it is emitted (and lowered) with.
    pub int: IntType,
    /// Its shape.
    pub shape: &'a [usize],
    /// Low bits known to be zero (bootstraps read only the bits above).
    pub align: u8,
}

impl Fact<'_> {
    fn numel(&self) -> f64 {
        self.shape.iter().product::<usize>() as f64
    }
}

/// Bits a PBS on a value of type `int` sees: the full width of the type (at least 1), as in
/// the lowering.
pub fn pbs_bits(int: IntType) -> u32 {
    (int.bits as u32).max(1)
}

/// The bits a bootstrap of `x` reads: its width less its known-zero low bits.
pub fn read_bits(x: &Fact<'_>) -> u32 {
    pbs_bits(x.int).saturating_sub(x.align as u32).max(1)
}

fn bit_mask(bits: u32) -> u64 {
    1u64 << bits.min(63)
}

/// Bootstraps and cost of one op application (or a sum of them).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OpCost {
    /// Number of PBS.
    pub pbs: u64,
    /// Total cost, PBS and levelled.
    pub cost: f64,
    /// The share of [`OpCost::cost`] spent in bootstraps (keyswitches included).
    pub pbs_cost: f64,
    /// Precisions (bit `b` set for `b` bits, 63 and above on bit 63) whose bootstraps were
    /// priced by [`fallback_pbs_cost`] because the optimizer found no parameters.
    pub fallback: u64,
}

impl OpCost {
    fn levelled(n: f64) -> OpCost {
        OpCost {
            cost: n * LEVELLED_COST,
            ..OpCost::default()
        }
    }

    /// The sum of two costs.
    pub fn plus(self, o: OpCost) -> OpCost {
        OpCost {
            pbs: self.pbs + o.pbs,
            cost: self.cost + o.cost,
            pbs_cost: self.pbs_cost + o.pbs_cost,
            fallback: self.fallback | o.fallback,
        }
    }

    /// The precisions priced by the fallback table, ascending.
    pub fn fallback_bits(&self) -> Vec<u32> {
        (0..64)
            .filter(|b| self.fallback & (1u64 << b) != 0)
            .collect()
    }
}

fn diff(a: Interval, b: Interval) -> Interval {
    Interval {
        lo: a.lo.saturating_sub(b.hi),
        hi: a.hi.saturating_sub(b.lo),
    }
}

/// The range of a type.
pub fn type_range(t: IntType) -> Interval {
    Interval::of_type(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_ir::TableId;

    #[test]
    fn optimizer_prices_grow_with_precision() {
        let m = CostModel::default();
        // at 2^-40 the optimizer serves up to 10 bits
        for b in 1..=10 {
            assert!(!m.pbs_price(b).fallback, "{b} bits: no parameters at 2^-40");
        }
        assert!(m.pbs_price(11).fallback);
        for b in 1..24 {
            let (p, q) = (m.pbs_price(b), m.pbs_price(b + 1));
            assert!(q.cost > p.cost, "{b}: {p:?} then {q:?}");
        }
        assert!(m.pbs_cost(8) > 2.0 * m.pbs_cost(4));
        // a looser target is never costlier
        let loose = CostModel::new(2f64.powi(-14));
        for b in 1..=10 {
            assert!(loose.pbs_cost(b) <= m.pbs_cost(b), "{b}");
        }
        assert_eq!(m.pbs_cost(0), m.pbs_cost(1));
    }

    #[test]
    fn fallback_is_reported() {
        let m = CostModel::default();
        let p = m.pbs_price(40);
        assert!(p.fallback);
        assert_eq!(p.cost, fallback_pbs_cost(40).max(m.pbs_cost(39)));
        let c = m.pbs(2.0, 40).plus(m.pbs(1.0, 3));
        assert_eq!(c.fallback_bits(), vec![40]);
        assert_eq!(fallback_pbs_cost(4), 76.0);
    }

    #[test]
    fn precision_is_the_full_type_width() {
        assert_eq!(pbs_bits(IntType::unsigned(6)), 6);
        assert_eq!(pbs_bits(IntType::signed(4)), 4);
        let m = CostModel::default();
        let s: &[usize] = &[3];
        let f = |int| Fact {
            encrypted: true,
            int,
            shape: s,
            align: 0,
        };
        // round on u6 dropping 4 bits: 4 bit extractions per element on x + 8 (u7), each a
        // 1-bit bootstrap read 6, 5, 4, 3 bits above its message
        let r = m.op_cost(
            &Op::Round {
                lsbs: 4,
                approx: false,
                rescale: false,
            },
            &[f(IntType::unsigned(6))],
            &f(IntType::unsigned(7)),
        );
        let steps: f64 = (3..=6).map(|l| m.pbs_price_norm2(1, l).cost).sum();
        assert_eq!((r.pbs, r.pbs_cost), (12, 3.0 * steps));
        // a lookup of the rounded value reads its 3 high bits
        let rounded = Fact {
            align: 4,
            ..f(IntType::unsigned(7))
        };
        let t = m.op_cost(
            &Op::Tlu { table: TableId(0) },
            &[rounded],
            &f(IntType::unsigned(3)),
        );
        assert_eq!(t.pbs_cost, 3.0 * m.pbs_cost(3));
        // u3 x u3: a + b is u4, a - b is i4
        let mul = m.op_cost(
            &Op::Mul,
            &[f(IntType::unsigned(3)), f(IntType::unsigned(3))],
            &f(IntType::unsigned(6)),
        );
        assert_eq!((mul.pbs, mul.pbs_cost), (6, 6.0 * m.pbs_cost(4)));
        // u2 x i3: a + b in [-4, 6] (i4), a - b in [-3, 7] (i4)
        let mul = m.op_cost(
            &Op::Mul,
            &[f(IntType::unsigned(2)), f(IntType::signed(3))],
            &f(IntType::signed(5)),
        );
        assert_eq!(mul.pbs_cost, 6.0 * m.pbs_cost(4));
        // u4 x u1: a + b is u5, a - b in [-1, 15] is i5
        let cmp = m.op_cost(
            &Op::Cmp(veil_ir::CmpOp::Lt),
            &[f(IntType::unsigned(4)), f(IntType::unsigned(1))],
            &f(IntType::unsigned(1)),
        );
        assert_eq!(cmp.pbs_cost, 3.0 * m.pbs_cost(5));
    }
}
