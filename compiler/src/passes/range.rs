//! Interval transfer functions: for each op, a range `lo..=hi` that contains every element of
//! the result given ranges of the operands (and the values of clear constant operands).
//!
//! Shared by the bit-width pass (interval propagation from declared input ranges) and the
//! e-graph analysis of [`crate::rewrite`]. Ranges are `i128` so that sums of 64-bit products
//! do not overflow; results saturate at the `i128` bounds.

use veil_ir::{Constant, IntType, Op, Table};

/// An inclusive range `lo..=hi` of integers.
pub type Interval = (i128, i128);

/// What a transfer function may know about one operand.
#[derive(Clone, Copy, Debug)]
pub struct OperandInfo<'a> {
    /// Range of its elements.
    pub range: Interval,
    /// Its declared element type.
    pub int: IntType,
    /// Its shape.
    pub shape: &'a [usize],
    /// Its values when it is a clear constant.
    pub constant: Option<&'a Constant>,
}

/// Smallest interval containing both.
pub fn hull(a: Interval, b: Interval) -> Interval {
    (a.0.min(b.0), a.1.max(b.1))
}

/// Intersection; `None` when empty.
pub fn intersect(a: Interval, b: Interval) -> Option<Interval> {
    let r = (a.0.max(b.0), a.1.min(b.1));
    (r.0 <= r.1).then_some(r)
}

/// Range of the values of a constant (`(0, 0)` for an empty one).
pub fn const_range(c: &Constant) -> Interval {
    let lo = c.values.iter().copied().min().unwrap_or(0) as i128;
    let hi = c.values.iter().copied().max().unwrap_or(0) as i128;
    (lo, hi)
}

/// Range of `table[v - min(int)]` for `v` in `r` (entries beyond the table are ignored).
pub fn table_range(t: &Table, int: IntType, r: Interval) -> Interval {
    let base = int.min();
    let first = (r.0 - base).max(0);
    let last = (r.1 - base).min(t.entries.len() as i128 - 1);
    if first > last {
        return (0, 0);
    }
    let s = &t.entries[first as usize..=last as usize];
    let lo = s.iter().copied().min().unwrap_or(0) as i128;
    let hi = s.iter().copied().max().unwrap_or(0) as i128;
    (lo, hi)
}

fn mul_iv(a: Interval, b: Interval) -> Interval {
    let c = [
        a.0.saturating_mul(b.0),
        a.0.saturating_mul(b.1),
        a.1.saturating_mul(b.0),
        a.1.saturating_mul(b.1),
    ];
    (*c.iter().min().unwrap_or(&0), *c.iter().max().unwrap_or(&0))
}

fn scale(a: Interval, n: usize) -> Interval {
    let n = n as i128;
    (a.0.saturating_mul(n), a.1.saturating_mul(n))
}

/// `((x + 2^(k-1)) >> k) << k` (floor shift), the `round` op on one value.
pub fn round_value(x: i128, lsbs: u8) -> i128 {
    if lsbs == 0 {
        return x;
    }
    let k = lsbs as u32;
    ((x + (1i128 << (k - 1))) >> k) << k
}

/// Per output unit `j` of a linear map with clear weights `w_j`, the range of
/// `sum_i w_ij * x_i` with every `x_i` in `x`: sum of per-weight extremes.
fn weighted_range<'w>(groups: impl Iterator<Item = Vec<i64>> + 'w, x: Interval) -> Interval {
    let mut out: Option<Interval> = None;
    for ws in groups {
        let mut lo = 0i128;
        let mut hi = 0i128;
        for w in ws {
            let (a, b) = mul_iv((w as i128, w as i128), x);
            lo = lo.saturating_add(a);
            hi = hi.saturating_add(b);
        }
        out = Some(match out {
            None => (lo, hi),
            Some(o) => hull(o, (lo, hi)),
        });
    }
    out.unwrap_or((0, 0))
}

/// The range of the result of `op` given its operands, or `None` for ops without a tensor-level
/// meaning here (`input`, TFHE-level ops): the caller supplies those.
pub fn transfer(op: &Op, ops: &[OperandInfo<'_>], tables: &[Table]) -> Option<Interval> {
    let r = |i: usize| ops.get(i).map(|o| o.range);
    Some(match op {
        Op::Input { .. } | Op::Pbs { .. } => return None,
        Op::Const { .. } => return None,
        Op::Add => {
            let (a, b) = (r(0)?, r(1)?);
            (a.0.saturating_add(b.0), a.1.saturating_add(b.1))
        }
        Op::Sub => {
            let (a, b) = (r(0)?, r(1)?);
            (a.0.saturating_sub(b.1), a.1.saturating_sub(b.0))
        }
        Op::Neg => {
            let a = r(0)?;
            (-a.1, -a.0)
        }
        Op::Mul => mul_iv(r(0)?, r(1)?),
        Op::MatMul => {
            let (a, b) = (ops.first()?, ops.get(1)?);
            let k = *a.shape.last()?;
            match (a.constant, b.constant) {
                (_, Some(w)) if b.shape.len() == 2 => {
                    let (kk, n) = (b.shape[0], b.shape[1]);
                    let cols = (0..n).map(move |j| (0..kk).map(|i| w.values[i * n + j]).collect());
                    weighted_range(cols, a.range)
                }
                (_, Some(w)) => weighted_range(std::iter::once(w.values.clone()), a.range),
                (Some(w), _) => {
                    let rows = w.values.chunks(k).map(|c| c.to_vec()).collect::<Vec<_>>();
                    weighted_range(rows.into_iter(), b.range)
                }
                _ => scale(mul_iv(a.range, b.range), k),
            }
        }
        Op::Conv2d(at) => {
            let (x, w) = (ops.first()?, ops.get(1)?);
            let mut xr = x.range;
            if at.pads.iter().any(|&p| p > 0) {
                xr = hull(xr, (0, 0));
            }
            let per_out = w.shape.iter().skip(1).product::<usize>();
            let base = match w.constant {
                Some(wc) if per_out > 0 => {
                    let outs: Vec<Interval> = wc
                        .values
                        .chunks(per_out)
                        .map(|c| weighted_range(std::iter::once(c.to_vec()), xr))
                        .collect();
                    match ops.get(2) {
                        Some(b) => match b.constant {
                            Some(bc) => outs
                                .iter()
                                .zip(&bc.values)
                                .map(|(o, &bv)| (o.0 + bv as i128, o.1 + bv as i128))
                                .reduce(hull)
                                .unwrap_or((0, 0)),
                            None => {
                                let o = outs.into_iter().reduce(hull).unwrap_or((0, 0));
                                (o.0 + b.range.0, o.1 + b.range.1)
                            }
                        },
                        None => outs.into_iter().reduce(hull).unwrap_or((0, 0)),
                    }
                }
                _ => {
                    let o = scale(mul_iv(xr, w.range), per_out);
                    match ops.get(2) {
                        Some(b) => (o.0 + b.range.0, o.1 + b.range.1),
                        None => o,
                    }
                }
            };
            base
        }
        Op::Sum { axes, .. } => {
            let a = ops.first()?;
            let n: usize = if axes.is_empty() {
                a.shape.iter().product()
            } else {
                axes.iter().filter_map(|&ax| a.shape.get(ax)).product()
            };
            scale(a.range, n)
        }
        Op::Reshape
        | Op::Transpose { .. }
        | Op::Broadcast
        | Op::Slice { .. }
        | Op::Output { .. }
        | Op::KeySwitch => r(0)?,
        Op::KeySwitchShr { shift } => {
            let a = r(0)?;
            (a.0 >> *shift, a.1 >> *shift)
        }
        Op::KeySwitchBit { .. } => (0, 1),
        Op::KeySwitchRound { shift } => {
            let a = r(0)?;
            (a.0 >> *shift, (a.1 + (1i128 << *shift) - 1) >> *shift)
        }
        Op::Concat { .. } => ops.iter().map(|o| o.range).reduce(hull)?,
        Op::Tlu { table } => {
            let a = ops.first()?;
            table_range(tables.get(table.0 as usize)?, a.int, a.range)
        }
        Op::TluMulti { tables: ts, .. } => {
            let a = ops.first()?;
            ts.iter()
                .filter_map(|t| tables.get(t.0 as usize))
                .map(|t| table_range(t, a.int, a.range))
                .reduce(hull)?
        }
        Op::Cmp(_) => (0, 1),
        Op::Min => {
            let (a, b) = (r(0)?, r(1)?);
            (a.0.min(b.0), a.1.min(b.1))
        }
        Op::Max => {
            let (a, b) = (r(0)?, r(1)?);
            (a.0.max(b.0), a.1.max(b.1))
        }
        Op::Relu => {
            let a = r(0)?;
            (a.0.max(0), a.1.max(0))
        }
        Op::Abs => {
            let a = r(0)?;
            if a.0 >= 0 {
                a
            } else if a.1 <= 0 {
                (-a.1, -a.0)
            } else {
                (0, (-a.0).max(a.1))
            }
        }
        Op::Round {
            lsbs,
            approx: false,
            ..
        } => {
            let a = r(0)?;
            (round_value(a.0, *lsbs), round_value(a.1, *lsbs))
        }
        // floor or ceil: both neighbours of the operand's extremes
        Op::Round {
            lsbs,
            approx: true,
            rescale,
        } => {
            let a = r(0)?;
            let (lo, hi) = veil_ir::infer::round_approx_range(a.0, a.1, *lsbs)?;
            if *rescale {
                (lo >> *lsbs, hi >> *lsbs)
            } else {
                (lo, hi)
            }
        }
        Op::Clip { lo, hi } => {
            let a = r(0)?;
            let c = |v: i128| v.clamp(*lo as i128, (*hi as i128).max(*lo as i128));
            (c(a.0), c(a.1))
        }
        // The IR's own rules (exact by enumeration on small ranges), saturating on overflow.
        Op::Binary(b) => {
            let (a, c) = (r(0)?, r(1)?);
            let iv = |x: Interval| veil_ir::Interval::new(x.0, x.1);
            veil_ir::infer::binary_range(*b, iv(a), iv(c))
                .map_or((i128::MIN, i128::MAX), |x| (x.lo, x.hi))
        }
        Op::Unary(u) => {
            let a = r(0)?;
            let x = veil_ir::infer::unary_range(*u, veil_ir::Interval::new(a.0, a.1));
            (x.lo, x.hi)
        }
        Op::Where => {
            let (c, a, b) = (r(0)?, r(1)?, r(2)?);
            if c == (0, 0) {
                b
            } else if c.0 > 0 || c.1 < 0 {
                a
            } else {
                hull(a, b)
            }
        }
    })
}

/// Bits of the narrowest type holding `r` (saturating at 128).
pub fn bits_of(r: Interval) -> u32 {
    IntType::fitting(r.0, r.1)
        .map(|t| t.bits as u32)
        .unwrap_or(128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(range: Interval) -> OperandInfo<'static> {
        OperandInfo {
            range,
            int: IntType::signed(16),
            shape: &[],
            constant: None,
        }
    }

    #[test]
    fn arithmetic() {
        let a = info((-2, 3));
        let b = info((1, 5));
        assert_eq!(transfer(&Op::Add, &[a, b], &[]), Some((-1, 8)));
        assert_eq!(transfer(&Op::Sub, &[a, b], &[]), Some((-7, 2)));
        assert_eq!(transfer(&Op::Mul, &[a, b], &[]), Some((-10, 15)));
        assert_eq!(transfer(&Op::Abs, &[a], &[]), Some((0, 3)));
        let (two, x5) = (info((2, 2)), info((0, 31)));
        let fd = Op::Binary(veil_ir::BinOp::FloorDiv);
        assert_eq!(transfer(&fd, &[x5, two], &[]), Some((0, 15)));
        let md = Op::Binary(veil_ir::BinOp::Mod);
        assert_eq!(transfer(&md, &[a, info((17, 17))], &[]), Some((0, 16)));
        let sign = Op::Unary(veil_ir::UnOp::Sign);
        assert_eq!(transfer(&sign, &[a], &[]), Some((-1, 1)));
        let c = info((0, 1));
        assert_eq!(transfer(&Op::Where, &[c, a, x5], &[]), Some((-2, 31)));
        assert_eq!(transfer(&Op::Relu, &[a], &[]), Some((0, 3)));
        assert_eq!(
            transfer(&Op::Clip { lo: 0, hi: 2 }, &[a], &[]),
            Some((0, 2))
        );
        assert_eq!(round_value(5, 2), 4);
        assert_eq!(round_value(6, 2), 8);
        assert_eq!(round_value(-6, 2), -4);
    }

    #[test]
    fn matmul_with_clear_weights_is_per_column() {
        let w = Constant {
            shape: vec![2, 2],
            values: vec![1, -1, 1, 2],
        };
        let x = OperandInfo {
            range: (0, 3),
            int: IntType::unsigned(2),
            shape: &[1, 2],
            constant: None,
        };
        let wi = OperandInfo {
            range: (-1, 2),
            int: IntType::signed(3),
            shape: &[2, 2],
            constant: Some(&w),
        };
        // column 0: x0 + x1 in 0..=6; column 1: -x0 + 2 x1 in -3..=6
        assert_eq!(transfer(&Op::MatMul, &[x, wi], &[]), Some((-3, 6)));
    }
}
