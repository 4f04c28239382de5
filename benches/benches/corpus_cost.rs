//! The corpus (`tests/corpus/*.veil`, see `veil_tests::corpus`) compiled twice: naively (the
//! pipeline without the rewrite pass, one table lookup per non-levelled op and two per
//! encrypted product) and with the default pipeline. Prints per program the PBS count and the
//! weighted cost of both (`CompileStats::cost`, the parameter optimizer's cost of one run, and
//! the rewrite cost model's `graph_cost` of the optimized tensor-level program), their ratio
//! and the compile time, then the totals and the total ratio. Programs that state their optimum
//! bootstrap count (`; optimum: N pbs`, the numpy-style `np_` programs) show it beside the
//! compiled count, and get their own subtotal: summed cost against the naive lowering, and how
//! many compile at their optimum.
//!
//! Beside Concrete (issue 16's comparison): every program is compiled twice more at Concrete's
//! default error target (`global_p_error = 1e-5`, [`CONCRETE_GLOBAL_P_ERROR`]): with veil's
//! default pipeline and objective, and *Concrete-style*, one lookup per op (the naive
//! pipeline) with Concrete's defaults: its cost model as the objective and one parameter set
//! per precision partition (its `MULTI` strategy). The Concrete-style figure stands in for
//! Concrete's own compilation, which is not run here: it is a lower bound of Concrete's
//! bootstraps (the naive pipeline's `desugar` already folds a numpy cone of one input into one
//! lookup, and Concrete lowers some ops, e.g. wide comparisons, in several). Both columns are
//! summed in Concrete's cost model (`CompileStats::cost`).
//!
//! Run with `cargo bench --workspace --bench corpus_cost` (add `--profile dev` to skip the
//! bench profile's fat LTO); `VEIL_BENCH_REPS=N` averages compile times over `N` compilations.

use std::time::Instant;
use veil_compiler::optimizer::{ErrorTarget, Objective};
use veil_compiler::program::{compile, CompileConfig, Program};
use veil_compiler::rewrite::cost::graph_cost;
use veil_tests::corpus;

/// Concrete's default error target: `global_p_error = 1 / 100_000`, `p_error` unset
/// (`concrete.fhe.Configuration`).
const CONCRETE_GLOBAL_P_ERROR: f64 = 1e-5;

/// `cfg` at Concrete's default error target.
fn at_concrete_target(cfg: CompileConfig) -> CompileConfig {
    CompileConfig {
        error: ErrorTarget::global(CONCRETE_GLOBAL_P_ERROR),
        ..cfg
    }
}

/// Concrete-style: one lookup per op, Concrete's error target, cost model and one set per
/// precision partition.
fn concrete_style() -> CompileConfig {
    CompileConfig {
        objective: Objective::Model,
        single_parameter_set: false,
        ..at_concrete_target(corpus::naive_config())
    }
}

/// One compilation: the program and its best compile time in milliseconds.
fn timed(
    g: &veil_ir::Graph,
    set: &[Vec<veil_ir::Tensor<i64>>],
    cfg: &CompileConfig,
    reps: usize,
) -> (Program, f64) {
    let mut best = f64::INFINITY;
    let mut program = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let p = compile(g, set, cfg).unwrap_or_else(|e| panic!("compile: {e}"));
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        program = Some(p);
    }
    (program.expect("at least one compilation"), best)
}

fn main() {
    // `cargo bench` passes `--bench`; this binary takes no other arguments
    let reps: usize = std::env::var("VEIL_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let programs = corpus::load();
    println!(
        "| program | PBS naive | PBS rewritten | PBS optimum | cost naive | cost rewritten | ratio | model naive | model rewritten | ms naive | ms rewritten | PBS Concrete-style @1e-5 | PBS veil @1e-5 | cost Concrete-style @1e-5 | cost veil @1e-5 | ratio @1e-5 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // programs stating their optimum: count, at optimum, PBS naive/rewritten/optimum, costs
    let (mut opt_n, mut opt_at) = (0usize, 0usize);
    let (mut opt_pbs_n, mut opt_pbs_r, mut opt_pbs_o) = (0u64, 0u64, 0u64);
    let (mut opt_cost_n, mut opt_cost_r) = (0.0f64, 0.0f64);
    let (mut opt_cost_c, mut opt_cost_v) = (0.0f64, 0.0f64);
    // at Concrete's error target: Concrete-style and veil, PBS and model cost
    let (mut pbs_c, mut pbs_v) = (0u64, 0u64);
    let (mut cost_c, mut cost_v) = (0.0f64, 0.0f64);
    let (mut pbs_n, mut pbs_r) = (0u64, 0u64);
    let (mut cost_n, mut cost_r) = (0.0f64, 0.0f64);
    let (mut model_n, mut model_r) = (0.0f64, 0.0f64);
    let (mut max_ms, mut costlier) = (0.0f64, Vec::new());
    for e in &programs {
        let set = corpus::inputset(&e.graph);
        let (naive, ms_n) = timed(&e.graph, &set, &corpus::naive_config(), reps);
        let (rewritten, ms_r) = timed(&e.graph, &set, &corpus::default_config(), reps);
        let (conc, _) = timed(&e.graph, &set, &concrete_style(), 1);
        let (veil_c, _) = timed(
            &e.graph,
            &set,
            &at_concrete_target(corpus::default_config()),
            1,
        );
        let (c, v) = (&conc.stats, &veil_c.stats);
        pbs_c += c.pbs;
        pbs_v += v.pbs;
        cost_c += c.cost;
        cost_v += v.cost;
        let ratio_c = if c.cost > 0.0 { v.cost / c.cost } else { 1.0 };
        let (n, r) = (&naive.stats, &rewritten.stats);
        let (mn, mr) = (
            graph_cost(&naive.optimized).cost,
            graph_cost(&rewritten.optimized).cost,
        );
        let ratio = if n.cost > 0.0 { r.cost / n.cost } else { 1.0 };
        let optimum = e
            .stated_pbs("optimum")
            .map(|o| o.unwrap_or_else(|err| panic!("{}: {err}", e.name)));
        if let Some(o) = optimum {
            opt_n += 1;
            opt_at += usize::from(r.pbs == o);
            opt_pbs_n += n.pbs;
            opt_pbs_r += r.pbs;
            opt_pbs_o += o;
            opt_cost_n += n.cost;
            opt_cost_r += r.cost;
            opt_cost_c += c.cost;
            opt_cost_v += v.cost;
        }
        let optimum = optimum.map_or(String::new(), |o| o.to_string());
        println!(
            "| {} | {} | {} | {optimum} | {:.3e} | {:.3e} | {:.2} | {:.1} | {:.1} | {:.0} | {:.0} | {} | {} | {:.3e} | {:.3e} | {:.2} |",
            e.name,
            n.pbs,
            r.pbs,
            n.cost,
            r.cost,
            ratio,
            mn,
            mr,
            ms_n,
            ms_r,
            c.pbs,
            v.pbs,
            c.cost,
            v.cost,
            ratio_c
        );
        pbs_n += n.pbs;
        pbs_r += r.pbs;
        cost_n += n.cost;
        cost_r += r.cost;
        model_n += mn;
        model_r += mr;
        max_ms = max_ms.max(ms_n).max(ms_r);
        if r.cost > n.cost {
            costlier.push(e.name.clone());
        }
    }
    println!(
        "| **total ({} programs)** | {pbs_n} | {pbs_r} | | {cost_n:.3e} | {cost_r:.3e} | {:.2} | {model_n:.1} | {model_r:.1} | | | {pbs_c} | {pbs_v} | {cost_c:.3e} | {cost_v:.3e} | {:.2} |",
        programs.len(),
        cost_r / cost_n,
        cost_v / cost_c
    );
    println!();
    println!(
        "total cost ratio (rewritten / naive): {:.1}% (bound 60%); PBS {pbs_n} -> {pbs_r}; model cost ratio {:.1}%",
        100.0 * cost_r / cost_n,
        100.0 * model_r / model_n
    );
    if opt_n > 0 {
        println!(
            "programs stating their optimum: {opt_n}, {opt_at} compiled at it; PBS naive {opt_pbs_n} -> rewritten {opt_pbs_r} (optimum {opt_pbs_o}); cost {opt_cost_n:.3e} -> {opt_cost_r:.3e} ({:.1}% of the naive lowering)",
            100.0 * opt_cost_r / opt_cost_n
        );
        println!(
            "programs stating their optimum, at Concrete's global_p_error {CONCRETE_GLOBAL_P_ERROR:e}: cost Concrete-style {opt_cost_c:.3e} -> veil {opt_cost_v:.3e} ({:.1}% of Concrete-style; target at most 50%)",
            100.0 * opt_cost_v / opt_cost_c
        );
    }
    println!(
        "at Concrete's global_p_error {CONCRETE_GLOBAL_P_ERROR:e} (model cost): Concrete-style {cost_c:.3e} ({pbs_c} PBS) -> veil {cost_v:.3e} ({pbs_v} PBS), {:.1}% of Concrete-style",
        100.0 * cost_v / cost_c
    );
    println!("slowest compilation: {max_ms:.0} ms (bound 1000 ms)");
    if costlier.is_empty() {
        println!("no program gets more expensive");
    } else {
        println!("MORE EXPENSIVE after rewriting: {}", costlier.join(", "));
    }
}
