//! Cost consistency between the rewrite engine and the lowering: for every program of the
//! corpus (and every rule case), the bootstraps and bootstrap cost that extraction predicts
//! from the e-graph are exactly those of the lowered program, where each `pbs` is priced at
//! the width of its keyswitched input.

mod rewrite_util;
use rewrite_util::*;
use veil_compiler::lower::{lower, PartitionRequest};
use veil_compiler::passes::{PassContext, PassManager, DEFAULT_PIPELINE};
use veil_compiler::rewrite::cost::{CostModel, OpCost};
use veil_compiler::rewrite::{convert, extract, rewrite_graph, saturate, RewriteConfig};
use veil_ir::params::min_secure_noise_log2;
use veil_ir::types::numel;
use veil_ir::{Graph, Op, ParamSet};

/// A fixed parameter set of the requested width (counts do not depend on parameters).
fn chooser(req: &PartitionRequest) -> Result<ParamSet, String> {
    Ok(ParamSet {
        lwe_dimension: 801,
        glwe_dimension: 2,
        polynomial_size: 1024,
        lwe_noise_log2: min_secure_noise_log2(801),
        glwe_noise_log2: min_secure_noise_log2(2048),
        pbs_base_log: 23,
        pbs_level: 1,
        ks_base_log: 4,
        ks_level: 3,
        message_bits: req.precision,
        p_error: 1e-9,
        noise_distribution: Default::default(),
        modulus_switch: Default::default(),
        ks_modulus: Default::default(),
    })
}

/// Bootstraps of the lowered `g` and their cost, each priced by `model` at the width of the
/// keyswitch feeding it.
fn lowered(g: &Graph, model: &CostModel) -> (u64, f64) {
    let l = lower(g, &chooser).unwrap_or_else(|e| panic!("{e}\n{}", veil_ir::text::print(g)));
    let p = &l.program;
    let (mut n, mut cost) = (0u64, 0.0);
    for v in p.values() {
        if let Op::Pbs { .. } = p.op(v) {
            let ks = p.operands(v)[0];
            let count = numel(&p.ty(v).shape) as u64;
            n += count;
            let price = match p.op(ks) {
                Op::KeySwitch | Op::KeySwitchShr { .. } => model.pbs_cost(p.ty(ks).int.bits as u32),
                // bit j of the rounded `t0 = x + 2^(k-1)`, read w - 1 - j bits above
                &Op::KeySwitchBit { bit } => {
                    let w = round_input_bits(p, p.operands(ks)[0]);
                    model.pbs_price_norm2(1, w - 1 - bit as u32).cost
                }
                other => panic!("a bootstrap fed by {}", other.name()),
            };
            cost += count as f64 * price;
        }
    }
    assert_eq!(n, l.stats.pbs);
    (n, cost)
}

/// The width of `t0 = x + 2^(k-1)`, the start of the exact round whose step reads `t`
/// (each step subtracts an extracted bit: `t_{j+1} = t_j - pbs(keyswitch.bit t_j)`).
fn round_input_bits(p: &Graph, mut t: veil_ir::ValueId) -> u32 {
    loop {
        let ops = p.operands(t);
        let step = matches!(p.op(t), Op::Sub)
            && matches!(p.op(ops[1]), Op::Pbs { .. })
            && matches!(p.op(p.operands(ops[1])[0]), Op::KeySwitchBit { .. });
        if !step {
            return p.ty(t).int.bits as u32;
        }
        t = ops[0];
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The program extraction picks for `g`, with its predicted cost.
fn extracted(g: &Graph, cfg: &RewriteConfig) -> (Graph, OpCost) {
    let model = cfg.cost_model();
    let sat = saturate(g, None, cfg).unwrap();
    let roots: Vec<_> = sat
        .loaded
        .inputs
        .iter()
        .chain(&sat.loaded.outputs)
        .copied()
        .collect();
    let eg = &sat.loaded.egraph;
    let mut choice = extract::dag_extract(eg, &model, &roots).unwrap();
    convert::pin_inputs(&sat.loaded, &mut choice);
    let predicted = extract::choice_op_cost(eg, &model, &choice, &roots).unwrap();
    (
        convert::from_choice(&sat.loaded, &choice, g).unwrap(),
        predicted,
    )
}

/// Extraction's prediction, the emitted graph's cost and the lowering agree on `src`, for the
/// input program, the extracted one and the rewrite's result.
fn check_consistent(name: &str, src: &str) -> (u64, u64) {
    let cfg = RewriteConfig::default();
    let model = cfg.cost_model();
    let g = parse(src);
    // the input program
    let before = model.graph_cost(&g);
    let (n, c) = lowered(&g, &model);
    assert_eq!(before.pbs, n, "{name}: input");
    assert!(close(before.pbs_cost, c), "{name}: input {before:?} vs {c}");
    // the extracted program: predicted from the e-graph, then emitted and lowered
    let (out, predicted) = extracted(&g, &cfg);
    assert_equivalent(&g, &out, 11);
    let emitted = model.graph_cost(&out);
    let (n, c) = lowered(&out, &model);
    let printed = veil_ir::text::print(&out);
    assert_eq!(predicted.pbs, n, "{name}: extracted\n{printed}");
    assert_eq!(emitted.pbs, n, "{name}: emitted\n{printed}");
    assert!(
        close(predicted.pbs_cost, c),
        "{name}: predicted {predicted:?} vs lowered {c}\n{printed}"
    );
    assert!(close(emitted.pbs_cost, c), "{name}: {emitted:?} vs {c}");
    // the rewrite's result and report
    let (res, r) = rewrite_graph(&g, None, &cfg).unwrap();
    let (n, _) = lowered(&res, &model);
    assert_eq!(r.pbs_after, n, "{name}: {r:?}");
    assert!(r.cost_fallback_bits.is_empty(), "{name}: {r:?}");
    if r.changed {
        assert_eq!((r.pbs_extracted, r.pbs_after), (predicted.pbs, n), "{name}");
        assert!(close(r.cost_extracted, r.cost_after), "{name}: {r:?}");
    }
    (r.pbs_before, r.pbs_after)
}

#[test]
fn predicted_bootstraps_are_the_lowered_ones_on_the_corpus() {
    for (name, src) in CORPUS {
        check_consistent(name, src);
    }
}

#[test]
fn predicted_bootstraps_are_the_lowered_ones_after_the_pipeline() {
    let model = CostModel::default();
    for (name, src) in CORPUS {
        let mut g = parse(src);
        let report = PassManager::from_names(DEFAULT_PIPELINE)
            .unwrap()
            .run(&mut g, &mut PassContext::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let rw = report
            .passes
            .iter()
            .find(|p| p.pass == "rewrite")
            .expect("rewrite ran");
        let (n, c) = lowered(&g, &model);
        assert_eq!(rw.stats.counters["pbs_after"] as u64, n, "{name}");
        // the second bit-width pass can only narrow: never costlier than predicted
        assert!(c <= rw.stats.metrics["cost_after"] + 1e-9, "{name}");
    }
}

/// Round is lowered as one 1-bit bootstrap per dropped bit, priced by how far above its
/// message each bit is read.
#[test]
fn round_costs_one_bit_bootstrap_per_dropped_bit() {
    let src = r#"veil 1
%0 = input "x" : enc<u6>
%1 = round %0 lsbs=4 : enc<u7>
output "y", %1
"#;
    let model = CostModel::default();
    let g = parse(src);
    let c = model.graph_cost(&g);
    // bits 0..3 of x + 8 (u7): read 6, 5, 4, 3 bits above a 1-bit message
    let steps: f64 = (3..=6).map(|l| model.pbs_price_norm2(1, l).cost).sum();
    assert_eq!(c.pbs, 4);
    assert!(close(c.pbs_cost, steps), "{c:?} vs {steps}");
    let (n, lc) = lowered(&g, &model);
    assert_eq!(n, 4);
    assert!(close(lc, steps), "{lc} vs {steps}");
    assert!(steps < 4.0 * model.pbs_cost(6));
    check_consistent("round", src);
}
