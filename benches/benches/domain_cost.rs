//! The price of `--domain types` ([`DomainPolicy::Types`]) against `--domain calibrated` on
//! the corpus (`tests/corpus/*.veil`, see `veil_tests::corpus`): per program the bootstraps,
//! the widest bootstrap input (bits), the model cost and the estimated latency of both, and
//! their ratios; then the two programs of issue 13 on the narrow inputsets it describes (not
//! counted in the totals), then the corpus totals.
//!
//! `calibrated` is calibrated on every input of the declared types when there are at most
//! `veil_tests::corpus::EXHAUSTIVE_LIMIT` (then the intervals are the exact reachable ones and
//! `types` shows only what sound interval propagation loses), else on 256 seeded random
//! inputs of the declared types (what a user with a sample inputset gets: narrower intervals,
//! and samples outside them are refused at encrypt). `types` ignores the inputset.
//!
//! Run with `cargo bench -p veil-benches --bench domain_cost` (add `--profile dev` to skip the
//! bench profile's fat LTO).

use veil_compiler::program::{compile, CompileConfig, CompileStats, DomainPolicy};
use veil_tests::corpus;

/// `y = (a + b)^2` through one table, the first case of issue 13.
const SQUARE_OF_SUM: &str = "veil 1
%a = input \"a\" : enc<u4>
%b = input \"b\" : enc<u4>
%s = add %a, %b : enc<u5>
table @sq = [0,1,4,9,16,25,36,49,64,81,100,121,144,169,196,225,256,289,324,361,400,441,484,529,576,625,676,729,784,841,900,961]
%y = tlu %s table=@sq : enc<u10>
output \"y\", %y
";

/// Its inputset: `a <= 3`, `b <= 1`, `a + b <= 3`.
const SQUARE_SET: &[&[i64]] = &[&[0, 0], &[3, 0], &[2, 1], &[1, 1], &[0, 1], &[1, 0]];

/// A 4x4 dense layer with a relu on u4 inputs, the second case of issue 13.
const DENSE_RELU: &str = "veil 1
%x = input \"x\" : enc<u4>[4]
%w = const [[1,-1,2,0],[1,1,-2,-1],[2,0,1,-1],[-1,2,1,-2]] : clear<i3>[4,4]
%acc = matmul %x, %w : enc<i8>[4]
%y = relu %acc : enc<u7>[4]
output \"y\", %y
";

/// Its inputset: each input alone over its range, and one mixed sample.
const DENSE_SET: &[&[i64]] = &[
    &[0, 0, 0, 0],
    &[5, 0, 0, 0],
    &[15, 0, 0, 0],
    &[0, 10, 0, 0],
    &[0, 15, 0, 0],
    &[0, 0, 10, 0],
    &[0, 0, 15, 0],
    &[0, 0, 0, 10],
    &[0, 0, 0, 15],
    &[3, 4, 5, 6],
];

/// Widest bootstrap input of a compiled program, in bits (0 without bootstraps).
fn max_bits(s: &CompileStats) -> u8 {
    s.pbs_by_precision.keys().copied().max().unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; this binary takes no other arguments
    let programs = corpus::load();
    println!(
        "| program | inputset | PBS calibrated | PBS types | bits calibrated | bits types | cost ratio | ms calibrated | ms types |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let (mut pbs_c, mut pbs_t) = (0u64, 0u64);
    let (mut cost_c, mut cost_t) = (0.0f64, 0.0f64);
    let (mut ms_c, mut ms_t) = (0.0f64, 0.0f64);
    let mut wider = 0;
    for e in &programs {
        let exhaustive = corpus::all_inputs(&e.graph).is_some();
        let set = corpus::test_inputs(&e.graph, 256, 7);
        let config = |domain| CompileConfig {
            domain,
            ..corpus::default_config()
        };
        let compiled = |domain| {
            compile(&e.graph, &set, &config(domain))
                .unwrap_or_else(|err| panic!("{} ({domain}): {err}", e.name))
                .stats
        };
        let (c, t) = (
            compiled(DomainPolicy::Calibrated),
            compiled(DomainPolicy::Types),
        );
        let ratio = if c.cost > 0.0 { t.cost / c.cost } else { 1.0 };
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} |",
            e.name,
            if exhaustive { "all" } else { "256 random" },
            c.pbs,
            t.pbs,
            max_bits(&c),
            max_bits(&t),
            ratio,
            c.estimated_latency_ms,
            t.estimated_latency_ms
        );
        pbs_c += c.pbs;
        pbs_t += t.pbs;
        cost_c += c.cost;
        cost_t += t.cost;
        ms_c += c.estimated_latency_ms;
        ms_t += t.estimated_latency_ms;
        wider += usize::from(max_bits(&t) > max_bits(&c));
    }
    // the two programs of issue 13, calibrated on the inputsets it describes
    for (name, src, set) in [
        ("issue13_square_of_sum", SQUARE_OF_SUM, SQUARE_SET),
        ("issue13_dense_relu", DENSE_RELU, DENSE_SET),
    ] {
        let g = veil_ir::text::parse(src).expect("valid program");
        let set: Vec<Vec<veil_ir::Tensor<i64>>> = set
            .iter()
            .map(|row| {
                let mut it = row.iter().copied();
                g.inputs()
                    .into_iter()
                    .map(|v| {
                        let t = g.ty(v);
                        let data: Vec<i64> = it.by_ref().take(t.numel()).collect();
                        veil_ir::Tensor::new(t.shape.clone(), data).expect("row fits")
                    })
                    .collect()
            })
            .collect();
        let stats = |domain| {
            let cfg = CompileConfig {
                domain,
                ..corpus::default_config()
            };
            compile(&g, &set, &cfg)
                .unwrap_or_else(|err| panic!("{name}: {err}"))
                .stats
        };
        let (c, t) = (stats(DomainPolicy::Calibrated), stats(DomainPolicy::Types));
        println!(
            "| {name} | issue | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} |",
            c.pbs,
            t.pbs,
            max_bits(&c),
            max_bits(&t),
            t.cost / c.cost.max(f64::MIN_POSITIVE),
            c.estimated_latency_ms,
            t.estimated_latency_ms
        );
    }
    println!(
        "| **total ({} programs)** | | {pbs_c} | {pbs_t} | | | {:.2} | {ms_c:.1} | {ms_t:.1} |",
        programs.len(),
        if cost_c > 0.0 { cost_t / cost_c } else { 1.0 }
    );
    println!();
    println!(
        "types / calibrated: PBS {pbs_c} -> {pbs_t}, model cost x{:.2}, estimated latency x{:.2}; {wider} of {} programs bootstrap wider",
        cost_t / cost_c.max(f64::MIN_POSITIVE),
        ms_t / ms_c.max(f64::MIN_POSITIVE),
        programs.len()
    );
}
