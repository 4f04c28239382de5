//! Random corpus-like programs, for the property tests of issue 13 (`tests/tests/domain_*.rs`):
//! small tensor graphs built from the ops the corpus uses (add, sub, neg, products by clear
//! constants and of two encrypted values, clear matmuls, sums, lookups of random tables,
//! comparisons, min/max, relu, abs, clip, rounding, `where`) on one or two small encrypted
//! inputs.
//!
//! Every program is built with [`veil_ir::Builder`], so its types are the builder's sound
//! inferred types (no value can overflow its declared type), and its values stay at most
//! [`MAX_VALUE_BITS`] wide so that every bootstrap has secure parameters.

use rand::seq::SliceRandom;
use rand::Rng;
use veil_ir::{Builder, CmpOp, Graph, IntType, ValueId};

/// Widest value a random program keeps (an op whose result is wider is dropped).
pub const MAX_VALUE_BITS: u8 = 8;

/// Widest operand of a lookup of a random table or of an encrypted product.
const MAX_LOOKUP_BITS: u8 = 5;

/// A random program (see the module docs) drawn from `rng`, with `ops` operations at most.
pub fn random_program(rng: &mut impl Rng, ops: usize) -> Graph {
    loop {
        if let Some(g) = try_program(rng, ops) {
            return g;
        }
    }
}

/// A random small input type: unsigned of 2 to 4 bits or signed of 3 or 4.
fn input_type(rng: &mut impl Rng) -> IntType {
    if rng.gen_bool(0.7) {
        IntType::unsigned(rng.gen_range(2..=4))
    } else {
        IntType::signed(rng.gen_range(3..=4))
    }
}

/// One attempt; `None` when no op could be added or the graph does not verify.
fn try_program(rng: &mut impl Rng, ops: usize) -> Option<Graph> {
    let b = Builder::new();
    let n = rng.gen_range(1..=3);
    let mut pool: Vec<ValueId> = Vec::new();
    for i in 0..rng.gen_range(1..=2) {
        let shape: &[usize] = if rng.gen_bool(0.25) { &[] } else { &[n] };
        pool.push(
            b.input_encrypted(&format!("x{i}"), shape, input_type(rng))
                .ok()?,
        );
    }
    let inputs = pool.len();
    let mut made = 0;
    for _ in 0..4 * ops {
        if made == ops {
            break;
        }
        let a = *pool.choose(rng)?;
        let c = *pool.choose(rng)?;
        let Some(v) = random_op(&b, rng, a, c) else {
            continue;
        };
        if b.ty(v).ok()?.int.bits > MAX_VALUE_BITS {
            continue;
        }
        pool.push(v);
        made += 1;
    }
    if made == 0 {
        return None;
    }
    // the last value, and sometimes another computed one
    b.output("y", *pool.last()?).ok()?;
    if pool.len() > inputs + 1 && rng.gen_bool(0.5) {
        let other = pool[rng.gen_range(inputs..pool.len() - 1)];
        b.output("z", other).ok()?;
    }
    b.finish().ok()
}

/// One random op on `a` (and `c`); `None` when the op does not apply to these operands.
fn random_op(b: &Builder, rng: &mut impl Rng, a: ValueId, c: ValueId) -> Option<ValueId> {
    let ta = b.ty(a).ok()?;
    let tc = b.ty(c).ok()?;
    let r = match rng.gen_range(0..15) {
        0 => b.add(a, c),
        1 => b.sub(a, c),
        2 => b.neg(a),
        3 => {
            let k = b.constant_scalar(rng.gen_range(-3..=3)).ok()?;
            b.mul(a, k)
        }
        4 => {
            // clear weights, as a dense layer
            let [k] = ta.shape[..] else { return None };
            let m = rng.gen_range(1..=3);
            let w: Vec<i64> = (0..k * m).map(|_| rng.gen_range(-2..=2)).collect();
            let w = b.constant(&[k, m], &w).ok()?;
            b.matmul(a, w)
        }
        5 => {
            if ta.shape.is_empty() {
                return None;
            }
            b.sum(a, &[0], false)
        }
        6 => {
            // a lookup of a random table over the operand's whole type
            if ta.int.bits > MAX_LOOKUP_BITS {
                return None;
            }
            let entries = (0..ta.int.domain_size())
                .map(|_| rng.gen_range(-4..=12))
                .collect();
            b.tlu_table(a, entries)
        }
        7 => {
            let op = *[
                CmpOp::Lt,
                CmpOp::Le,
                CmpOp::Gt,
                CmpOp::Ge,
                CmpOp::Eq,
                CmpOp::Ne,
            ]
            .choose(rng)?;
            if rng.gen_bool(0.5) {
                b.cmp(a, c, op)
            } else {
                let k = b.constant_scalar(rng.gen_range(-2..=6)).ok()?;
                b.cmp(a, k, op)
            }
        }
        8 => b.min(a, c),
        9 => b.max(a, c),
        10 => b.relu(a),
        11 => {
            if ta.int.bits < 3 {
                return None;
            }
            b.round(a, rng.gen_range(1..ta.int.bits - 1))
        }
        12 => {
            let cond = b.gt(a, c).ok()?;
            let other = b.constant_scalar(rng.gen_range(-2..=5)).ok()?;
            b.where_(cond, c, other)
        }
        13 => {
            let lo = rng.gen_range(-3..=3);
            b.clip(a, lo, lo + rng.gen_range(0..=8))
        }
        _ => {
            // a product of two encrypted values (two bootstraps per element)
            if ta.int.bits > MAX_LOOKUP_BITS || tc.int.bits > MAX_LOOKUP_BITS {
                return None;
            }
            b.mul(a, c)
        }
    };
    r.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeSet;
    use veil_ir::Op;

    #[test]
    fn random_programs_verify_and_use_many_ops() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            let g = random_program(&mut rng, 4);
            veil_ir::verify(&g).unwrap();
            for v in g.topo_order().unwrap() {
                if !matches!(
                    g.op(v),
                    Op::Input { .. } | Op::Output { .. } | Op::Const { .. }
                ) {
                    seen.insert(g.op(v).name());
                }
            }
        }
        for op in [
            "add", "sub", "neg", "mul", "matmul", "sum", "tlu", "lt", "ne", "min", "max", "relu",
            "round", "where", "clip",
        ] {
            assert!(seen.contains(op), "{op} never drawn: {seen:?}");
        }
    }
}
