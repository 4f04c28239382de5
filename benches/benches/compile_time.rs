//! Compile time against program size: the whole `veil_compiler::program::compile` pipeline
//! (bit widths, rewrite, dead-code elimination, lowering and the parameter search) on programs
//! of growing size from five families:
//!
//! - `neg-chain`: `x` negated `n` times (levelled only);
//! - `mixed-chain`: levelled ops and table lookups interleaved (`tlu`, `+ c`, `neg`, `- c`),
//!   which the rewrite fuses;
//! - `dot`: a wide dot product of an encrypted vector with clear weights, one element at a
//!   time, summed by groups of 32 (pairwise), each group sum through a lookup, the group
//!   results summed one after the other;
//! - `tree`: a balanced binary tree over the elements of an encrypted vector, alternating
//!   `tlu(a + b)` and `max(a, b)` levels (deep and wide);
//! - `cnn`: a stack of small convolutions, each followed by a quantizing lookup, then a dense
//!   layer.
//!
//! Programs are built node by node with the value ranges as declared types (as a quantizer or
//! the text form gives them; type inference alone would widen a long chain by a bit per op).
//! For every family and size the table gives the program's node count, the compile time and
//! its split (bit-width passes, rewrite, lowering and the rest), the e-graph size and why
//! saturation stopped; then, per family, the fitted growth exponent (the least-squares slope
//! of log time against log nodes, over the sizes that took at least 20 ms).
//!
//! Run with `cargo bench -p veil-benches --bench compile_time` (add `--profile dev` to skip
//! the bench profile's fat LTO). `VEIL_BENCH_MAX_OPS=N` (default 50000) caps the sizes,
//! `VEIL_BENCH_FAMILIES=neg-chain,dot` selects families, `VEIL_BENCH_BUDGET_S=S` (default 120)
//! skips a family's larger sizes once one compilation took longer than `S` seconds.

use std::time::Instant;
use veil_compiler::program::{compile, CompileConfig};
use veil_ir::{Constant, Conv2dAttrs, Graph, IntType, Op, Table, Tensor, TensorType, ValueId};
use veil_tests::corpus::random_inputs;

/// Program sizes (approximate node counts) measured, smallest first.
const SIZES: &[usize] = &[100, 320, 640, 1280, 2560, 5000, 10_000, 20_000, 50_000];

/// Calibration samples per program.
const SAMPLES: usize = 4;

type BuildFn = fn(usize) -> Graph;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A graph under construction, every value typed by the range it is declared to hold.
struct Prog {
    g: Graph,
}

impl Prog {
    fn new() -> Self {
        Prog { g: Graph::new() }
    }

    fn input(&mut self, shape: &[usize], bits: u8) -> ValueId {
        let ty = TensorType::encrypted(IntType::unsigned(bits), shape.to_vec());
        self.g.add_node(Op::Input { name: "x".into() }, ty, &[])
    }

    fn constant(&mut self, shape: &[usize], values: Vec<i64>) -> ValueId {
        let (lo, hi) = (values.iter().min(), values.iter().max());
        let int = IntType::fitting(*lo.expect("values") as i128, *hi.expect("values") as i128)
            .expect("a 64-bit constant");
        let id = self.g.add_const(Constant {
            shape: shape.to_vec(),
            values,
        });
        let ty = TensorType::clear(int, shape.to_vec());
        self.g.add_node(Op::Const { value: id }, ty, &[])
    }

    /// `op` on `operands`, declared to hold `lo..=hi`, of shape `shape`.
    fn op(&mut self, op: Op, operands: &[ValueId], lo: i128, hi: i128, shape: &[usize]) -> ValueId {
        let int = IntType::fitting(lo, hi).expect("a 64-bit range");
        let enc = operands.iter().any(|o| self.g.ty(*o).is_encrypted());
        let ty = if enc {
            TensorType::encrypted(int, shape.to_vec())
        } else {
            TensorType::clear(int, shape.to_vec())
        };
        self.g.add_node(op, ty, operands)
    }

    /// A lookup of `f` over the whole domain of `x`'s type.
    fn tlu(&mut self, x: ValueId, f: impl Fn(i64) -> i64) -> ValueId {
        let t = self.g.ty(x).clone();
        let entries: Vec<i64> = (t.int.min()..=t.int.max()).map(|v| f(v as i64)).collect();
        let lo = *entries.iter().min().expect("entries") as i128;
        let hi = *entries.iter().max().expect("entries") as i128;
        let table = self.g.add_table(Table { entries });
        self.op(Op::Tlu { table }, &[x], lo, hi, &t.shape)
    }

    /// Element `i` of the vector `x` (`u<bits>`) as a scalar.
    fn element(&mut self, x: ValueId, i: usize, bits: u8) -> ValueId {
        let hi = (1i128 << bits) - 1;
        let s = Op::Slice {
            starts: vec![i],
            stops: vec![i + 1],
            steps: vec![1],
        };
        let s = self.op(s, &[x], 0, hi, &[1]);
        self.op(Op::Reshape, &[s], 0, hi, &[])
    }

    fn finish(mut self, y: ValueId) -> Graph {
        let ty = self.g.ty(y).clone();
        self.g.add_node(Op::Output { name: "y".into() }, ty, &[y]);
        self.g
    }
}

/// `x` (`u4`) negated about `n` times (`i5`).
fn neg_chain(n: usize) -> Graph {
    let mut p = Prog::new();
    let mut v = p.input(&[], 4);
    for _ in 0..n.saturating_sub(2) {
        v = p.op(Op::Neg, &[v], -15, 15, &[]);
    }
    p.finish(v)
}

/// Levelled ops and lookups interleaved, about `n` nodes: per step of four, a lookup onto
/// `u4`, `+ 3`, `neg` and `- 3`.
fn mixed_chain(n: usize) -> Graph {
    let mut p = Prog::new();
    let mut v = p.input(&[], 4);
    let c = p.constant(&[], vec![3]);
    for i in 0..(n.saturating_sub(3) / 4).max(1) {
        let k = (i % 7) as i64 + 2;
        v = p.tlu(v, move |a| (a * k + 1).rem_euclid(16));
        v = p.op(Op::Add, &[v, c], 3, 18, &[]);
        v = p.op(Op::Neg, &[v], -18, -3, &[]);
        v = p.op(Op::Sub, &[v, c], -21, -6, &[]);
    }
    p.finish(v)
}

/// A wide dot product, about `n` nodes: `x[i] * w[i]` (`x` in `u2`, `w` in `-2..=2`) summed
/// pairwise in groups of 32, every group sum through a lookup onto `u4`, the group results
/// summed one after the other.
fn dot(n: usize) -> Graph {
    let k = (n / 5).max(2);
    let mut p = Prog::new();
    let x = p.input(&[k], 2);
    let w: Vec<ValueId> = [-2, -1, 1, 2]
        .iter()
        .map(|&c| p.constant(&[], vec![c]))
        .collect();
    let groups = k.div_ceil(32);
    let mut total: Option<ValueId> = None;
    for (gi, g) in (0..k).step_by(32).enumerate() {
        let mut terms: Vec<ValueId> = (g..(g + 32).min(k))
            .map(|i| {
                let e = p.element(x, i, 2);
                p.op(Op::Mul, &[e, w[i % 4]], -6, 6, &[])
            })
            .collect();
        while terms.len() > 1 {
            terms = terms
                .chunks(2)
                .map(|c| match c {
                    [a, b] => p.op(Op::Add, &[*a, *b], -192, 192, &[]),
                    [a] => *a,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
        }
        let q = p.tlu(terms[0], |v| (v / 8).clamp(0, 15));
        total = Some(match total {
            None => q,
            Some(t) => p.op(Op::Add, &[t, q], 0, 15 * (gi as i128 + 1), &[]),
        });
    }
    debug_assert!(groups >= 1);
    p.finish(total.expect("a group"))
}

/// A balanced binary tree over the elements of `x` (`u4`), about `n` nodes: levels alternate
/// `tlu(a + b)` (back onto `u4`) and `max(a, b)`.
fn tree(n: usize) -> Graph {
    let leaves = (n / 5).max(2);
    let mut p = Prog::new();
    let x = p.input(&[leaves], 4);
    let mut level: Vec<ValueId> = (0..leaves).map(|i| p.element(x, i, 4)).collect();
    let mut depth = 0;
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] if depth % 2 == 0 => {
                    let s = p.op(Op::Add, &[*a, *b], 0, 30, &[]);
                    p.tlu(s, |v| (v + 1) / 2)
                }
                [a, b] => p.op(Op::Max, &[*a, *b], 0, 15, &[]),
                [a] => *a,
                _ => unreachable!("chunks of two"),
            })
            .collect();
        depth += 1;
    }
    p.finish(level[0])
}

/// A CNN-like stack, about `n` nodes: convolutions (2 channels, 3x3, padded, weights in
/// `-1..=1`) of a 6x6 `u3` image, each followed by a lookup back onto `u3`, then a dense
/// layer.
fn cnn(n: usize) -> Graph {
    let layers = (n.saturating_sub(8) / 3).max(1);
    let mut p = Prog::new();
    let shape = [1, 2, 6, 6];
    let mut v = p.input(&shape, 3);
    let attrs = Conv2dAttrs {
        pads: [1, 1, 1, 1],
        ..Default::default()
    };
    for l in 0..layers {
        let s = (l % 4) as i64;
        let w = p.constant(
            &[2, 2, 3, 3],
            (0..36i64).map(|i| ((i * 7 + s * 3) % 3) - 1).collect(),
        );
        let c = p.op(Op::Conv2d(attrs.clone()), &[v, w], -126, 126, &shape);
        v = p.tlu(c, |a| (a / 4).clamp(0, 7));
    }
    let flat = p.op(Op::Reshape, &[v], 0, 7, &[1, 72]);
    let dense = p.constant(&[72, 4], (0..72 * 4).map(|i| (i % 3) as i64 - 1).collect());
    let y = p.op(Op::MatMul, &[flat, dense], -504, 504, &[1, 4]);
    p.finish(y)
}

/// One measurement.
struct Row {
    nodes: usize,
    ms: f64,
}

fn slope(rows: &[Row]) -> Option<f64> {
    let pts: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.ms >= 20.0)
        .map(|r| ((r.nodes as f64).ln(), r.ms.ln()))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

fn main() {
    let max_ops = env_usize("VEIL_BENCH_MAX_OPS", 50_000);
    let budget_s = env_usize("VEIL_BENCH_BUDGET_S", 120) as f64;
    let families: Vec<(&str, BuildFn)> = vec![
        ("neg-chain", neg_chain),
        ("mixed-chain", mixed_chain),
        ("dot", dot),
        ("tree", tree),
        ("cnn", cnn),
    ];
    let selected: Option<Vec<String>> = std::env::var("VEIL_BENCH_FAMILIES")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let cfg = CompileConfig::default();
    println!(
        "| family | size | nodes | compile ms | bitwidth ms | rewrite ms | lower+rest ms | e-graph nodes | stop | PBS |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    let mut slopes = Vec::new();
    for (name, build) in families {
        if selected
            .as_ref()
            .is_some_and(|s| !s.iter().any(|x| x == name))
        {
            continue;
        }
        let mut rows = Vec::new();
        for &size in SIZES.iter().filter(|&&s| s <= max_ops) {
            let g = build(size);
            let set: Vec<Vec<Tensor<i64>>> = random_inputs(&g, SAMPLES, size as u64);
            let t = Instant::now();
            let p = compile(&g, &set, &cfg).unwrap_or_else(|e| panic!("{name} {size}: {e}"));
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let pass_ms = |n: &str| -> f64 {
                p.report
                    .passes
                    .iter()
                    .filter(|r| r.pass == n)
                    .map(|r| r.time_ms)
                    .sum()
            };
            let rw = p.report.passes.iter().find(|r| r.pass == "rewrite");
            let egraph = rw
                .and_then(|r| r.stats.counters.get("egraph_nodes"))
                .copied()
                .unwrap_or(0);
            let stop = rw
                .and_then(|r| {
                    r.stats
                        .counters
                        .keys()
                        .find_map(|k| k.strip_prefix("stop_").map(str::to_string))
                })
                .unwrap_or_default();
            let (bw, rwms) = (pass_ms("bitwidth"), pass_ms("rewrite"));
            println!(
                "| {name} | {size} | {} | {ms:.0} | {bw:.0} | {rwms:.0} | {:.0} | {egraph} | {stop} | {} |",
                g.len(),
                ms - bw - rwms,
                p.stats.pbs
            );
            rows.push(Row { nodes: g.len(), ms });
            if ms > budget_s * 1e3 {
                println!("| {name} | (larger sizes skipped: over {budget_s} s) | | | | | | | | |");
                break;
            }
        }
        slopes.push((name, slope(&rows)));
    }
    println!();
    println!("| family | growth exponent (log-log slope, sizes >= 20 ms) |");
    println!("|---|---:|");
    for (name, s) in slopes {
        match s {
            Some(s) => println!("| {name} | {s:.2} |"),
            None => println!("| {name} | n/a |"),
        }
    }
}
