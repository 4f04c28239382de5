//! The price of `--domain types` ([`DomainPolicy::Types`]) against `--domain calibrated` on
//! the corpus (`tests/corpus/*.veil`, see `veil_tests::corpus`): per program the bootstraps,
//! the widest bootstrap input (bits), the model cost and the estimated latency of both, and
//! their ratios; then the totals.
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
