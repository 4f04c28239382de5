//! The pass manager and the bit-width pass.

mod rewrite_util;
use rewrite_util::*;
use veil_compiler::passes::bitwidth::{calibrate, propagate_ranges, simulate_checked, RangeError};
use veil_compiler::passes::{
    pass_names, Pass, PassContext, PassError, PassManager, PassStats, DEFAULT_PIPELINE,
};
use veil_ir::{Graph, Interval, Op, Tensor};

const PROG: &str = r#"veil 1
%0 = input "x" : enc<i8>[2]
%1 = const 3 : clear<u2>
%2 = mul %0, %1 : enc<i16>[2]
%3 = relu %2 : enc<u16>[2]
%4 = neg %3 : enc<i17>[2]
output "y", %4
"#;

fn ctx(lo: i64, hi: i64) -> PassContext {
    let mut cx = PassContext::default();
    cx.input_ranges.insert("x".into(), (lo, hi));
    cx
}

#[test]
fn unknown_pass_names_the_registered_ones() {
    let e = PassManager::from_names(&["dce", "nope"]).err().unwrap();
    assert_eq!(
        e.to_string(),
        "unknown pass `nope`; registered passes: bitwidth, desugar, dce, rewrite, lower"
    );
    assert_eq!(
        pass_names(),
        vec!["bitwidth", "desugar", "dce", "rewrite", "lower"]
    );
}

#[test]
fn default_pipeline_narrows_rewrites_and_reports() {
    let mut g = parse(PROG);
    let orig = g.clone();
    let mut pm = PassManager::from_names(DEFAULT_PIPELINE).unwrap();
    pm.print_after("rewrite");
    let mut cx = ctx(-5, 5);
    let report = pm.run(&mut g, &mut cx).unwrap();
    assert_eq!(
        report
            .passes
            .iter()
            .map(|p| p.pass.as_str())
            .collect::<Vec<_>>(),
        DEFAULT_PIPELINE
    );
    assert_eq!(report.dumps.len(), 1);
    assert!(report.dumps[0].1.starts_with("veil 1"));
    let bw = &report.passes[0].stats;
    assert_eq!(bw.counters["max_encrypted_bits"], 5); // 3x in -15..=15: i5
    let rw = &report
        .passes
        .iter()
        .find(|p| p.pass == "rewrite")
        .expect("rewrite ran")
        .stats;
    assert_eq!(
        (rw.counters["pbs_before"], rw.counters["pbs_after"]),
        (2, 2)
    );
    assert!(rw.metrics["cost_after"] < rw.metrics["cost_before"]);
    // the narrowed, rewritten program computes the same on the declared range
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"pass\":\"rewrite\""));
    for v in -5..=5 {
        let x = Tensor::new(vec![2], vec![v, -v]).unwrap();
        assert_eq!(
            veil_ir::interp::run(&orig, std::slice::from_ref(&x)).unwrap(),
            veil_ir::interp::run(&g, &[x]).unwrap()
        );
    }
    assert_eq!(g.ty(g.inputs()[0]).int, veil_ir::IntType::signed(4));
}

struct Breaker;

impl Pass for Breaker {
    fn name(&self) -> &'static str {
        "breaker"
    }
    fn doc(&self) -> &'static str {
        "Test pass that retypes the output so that the graph no longer verifies."
    }
    fn run(&mut self, g: &mut Graph, _: &mut PassContext) -> Result<PassStats, PassError> {
        let o = g.outputs()[0];
        g.node_mut(o).ty.int = veil_ir::IntType::unsigned(1);
        Ok(PassStats::default())
    }
}

#[test]
fn verifier_runs_after_every_pass_and_names_it() {
    let mut g = parse(PROG);
    let mut pm = PassManager::from_names(&["dce"]).unwrap();
    pm.add(Box::new(Breaker));
    let e = pm.run(&mut g, &mut PassContext::default()).err().unwrap();
    match &e {
        PassError::Verify { pass, .. } => assert_eq!(pass, "breaker"),
        other => panic!("{other}"),
    }
    assert!(e
        .to_string()
        .starts_with("the graph is invalid after pass `breaker`"));
}

#[test]
fn interval_propagation_uses_declared_input_ranges() {
    let g = parse(PROG);
    let mut cx = ctx(-5, 5);
    cx.input_ranges.clear();
    let r = propagate_ranges(&g, &ctx(-5, 5).input_ranges).unwrap();
    let vals = g.topo_order().unwrap();
    assert_eq!(r.get(vals[0]), Some(Interval::new(-5, 5)));
    assert_eq!(r.get(vals[2]), Some(Interval::new(-15, 15)));
    assert_eq!(r.get(vals[3]), Some(Interval::new(0, 15)));
    assert_eq!(r.get(vals[4]), Some(Interval::new(-15, 0)));
    let bad = propagate_ranges(&g, &ctx(3, 1).input_ranges).unwrap_err();
    assert!(
        matches!(bad, RangeError::EmptyInputRange { lo: 3, hi: 1, .. }),
        "{bad}"
    );
}

#[test]
fn interval_propagation_keeps_declared_types() {
    // x + x may reach 14 by intervals, but a result outside its declared u3 is an overflow
    // error: runs that produce outputs keep it in 0..=7, and so do its users
    let g = parse(
        "veil 1\n%0 = input \"x\" : enc<u3>\n%1 = add %0, %0 : enc<u3>\n\
         %2 = const 1 : clear<u1>\n%3 = add %1, %2 : enc<u4>\noutput \"y\", %3\n",
    );
    let r = propagate_ranges(&g, &Default::default()).unwrap();
    let vals = g.topo_order().unwrap();
    assert_eq!(r.get(vals[1]), Some(Interval::new(0, 7)));
    assert_eq!(r.get(vals[3]), Some(Interval::new(1, 8)));
}

#[test]
fn calibration_and_overflow_check() {
    let g = parse(PROG);
    let set: Vec<Vec<Tensor<i64>>> = (0..4)
        .map(|v| vec![Tensor::new(vec![2], vec![v, -v]).unwrap()])
        .collect();
    let r = calibrate(&g, &set).unwrap();
    let vals = g.topo_order().unwrap();
    assert_eq!(r.get(vals[2]), Some(Interval::new(-9, 9)));
    assert_eq!(r.get(vals[3]), Some(Interval::new(0, 9)));
    // a sample outside the calibration leaves the ranges: reported with the op
    let (_, bad) = simulate_checked(&g, &r, &[Tensor::new(vec![2], vec![5, 0]).unwrap()]).unwrap();
    let labels: Vec<_> = bad.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(
        labels,
        vec!["%0 = input", "%2 = mul", "%3 = relu", "%4 = neg"]
    );
    let (_, ok) = simulate_checked(&g, &r, &set[2]).unwrap();
    assert!(ok.is_empty());
    assert!(matches!(calibrate(&g, &[]), Err(RangeError::EmptyInputset)));
}

#[test]
fn bitwidth_pass_with_an_inputset_narrows_to_the_calibration() {
    let mut g = parse(PROG);
    let mut cx = PassContext {
        inputset: Some(
            (0..4)
                .map(|v| vec![Tensor::new(vec![2], vec![v, -v]).unwrap()])
                .collect(),
        ),
        ..Default::default()
    };
    PassManager::from_names(&["bitwidth"])
        .unwrap()
        .run(&mut g, &mut cx)
        .unwrap();
    let t: Vec<String> = g
        .topo_order()
        .unwrap()
        .iter()
        .map(|v| g.ty(*v).int.to_string())
        .collect();
    assert_eq!(t, vec!["i3", "u2", "i5", "u4", "i5", "i5"]);
}

#[test]
fn too_wide_bootstrap_inputs_are_errors_naming_both_ops() {
    let mut g = parse(PROG);
    let mut cx = PassContext::default(); // x over all of i8: 3x needs 10 bits
    cx.bitwidth.max_pbs_bits = 8;
    let e = PassManager::from_names(&["bitwidth"])
        .unwrap()
        .run(&mut g, &mut cx)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("%2 = mul has range [-384, 381] (10 bits) at the bootstrap of %3 = relu"),
        "{e}"
    );
    cx.bitwidth.error_on_wide_pbs = false;
    PassManager::from_names(&["bitwidth"])
        .unwrap()
        .run(&mut g, &mut cx)
        .unwrap();
    assert_eq!(cx.diagnostics.len(), 1);
}

#[test]
fn narrowing_reindexes_tables() {
    let mut g = parse(
        r#"veil 1
table @t0 = [9,9,9,9,9,9,9,9,1,2,3,4,5,6,7,8]
%0 = input "x" : enc<i4>
%1 = tlu %0 table=@t0 : enc<u4>
output "y", %1
"#,
    );
    let orig = g.clone();
    let mut cx = ctx(0, 3);
    PassManager::from_names(&["bitwidth"])
        .unwrap()
        .run(&mut g, &mut cx)
        .unwrap();
    let t = g.topo_order().unwrap()[1];
    assert!(matches!(g.op(t), Op::Tlu { .. }));
    assert_eq!(g.tables[0].entries, vec![1, 2, 3, 4]);
    for v in 0..4 {
        assert_eq!(
            veil_ir::interp::run(&orig, &[Tensor::scalar(v)]).unwrap(),
            veil_ir::interp::run(&g, &[Tensor::scalar(v)]).unwrap()
        );
    }
}

#[test]
fn rewrite_reports_bootstraps_the_optimizer_cannot_price() {
    // 12-bit bootstraps have no parameters at the default 2^-40: priced by the fallback table
    // and reported; at 2^-14 the optimizer serves 11 bits, still not 12
    let src = r#"veil 1
%0 = input "x" : enc<u12>
%1 = const 100 : clear<u7>
%2 = sub %0, %1 : enc<i13>
%3 = relu %2 : enc<u12>
output "y", %3
"#;
    for p_error in [9.094947017729282e-13, 2f64.powi(-14)] {
        let mut g = parse(src);
        let mut cx = PassContext::default();
        cx.rewrite.p_error = p_error;
        let report = PassManager::from_names(&["rewrite"])
            .unwrap()
            .run(&mut g, &mut cx)
            .unwrap();
        let rw = &report.passes[0].stats;
        assert!(rw.counters["cost_fallback_precisions"] >= 1, "{rw:?}");
        assert_eq!(cx.diagnostics.len(), 1, "{:?}", cx.diagnostics);
        assert_eq!(cx.diagnostics[0].pass, "rewrite");
        let m = &cx.diagnostics[0].message;
        assert!(m.contains("bootstraps on 12, 13 bits"), "{m}");
    }
    // a narrow program needs no fallback
    let mut g = parse(PROG);
    let mut cx = ctx(-5, 5);
    PassManager::from_names(DEFAULT_PIPELINE)
        .unwrap()
        .run(&mut g, &mut cx)
        .unwrap();
    assert!(cx.diagnostics.is_empty(), "{:?}", cx.diagnostics);
}

#[test]
fn rewrite_rejects_an_error_target_that_is_not_a_probability() {
    for p_error in [0.0, 1.0, -1e-3, f64::NAN] {
        let mut g = parse(PROG);
        let mut cx = PassContext::default();
        cx.rewrite.p_error = p_error;
        let e = PassManager::from_names(&["rewrite"])
            .unwrap()
            .run(&mut g, &mut cx)
            .unwrap_err();
        assert!(e.to_string().contains("p_error"), "{e}");
    }
}

/// The Rust API door of the domain check: `Program::encrypt` refuses (before any key is
/// touched) a sample whose values leave the intervals the program was compiled for, naming the
/// value; `check_domain` says the same, and a sample inside passes.
#[test]
fn program_encrypt_refuses_samples_outside_the_domain() {
    use veil_compiler::program::{compile, CompileConfig, DomainCheck, ProgramError};
    let g = veil_ir::text::parse(
        "veil 1
%a = input \"a\" : enc<u4>
%b = input \"b\" : enc<u4>
%s = add %a, %b : enc<u5>
table @sq = [0,1,4,9,16,25,36,49,64,81,100,121,144,169,196,225,256,289,324,361,400,441,484,529,576,625,676,729,784,841,900,961]
%y = tlu %s table=@sq : enc<u10>
output \"y\", %y
",
    )
    .unwrap();
    let t = |v: i64| veil_ir::Tensor::new(vec![], vec![v]).unwrap();
    let set: Vec<Vec<veil_ir::Tensor<i64>>> = [(0, 0), (3, 0), (2, 1), (1, 1), (0, 1), (1, 0)]
        .iter()
        .map(|&(a, b)| vec![t(a), t(b)])
        .collect();
    let p = compile(&g, &set, &CompileConfig::default()).unwrap();
    p.check_domain(&[t(2), t(1)], DomainCheck::Calibrated)
        .expect("inside the domain");
    let e = p
        .check_domain(&[t(3), t(1)], DomainCheck::Calibrated)
        .unwrap_err();
    match &e {
        ProgramError::OutOfDomain(v) => {
            assert_eq!(v.value, 4);
            assert_eq!(v.interval, (0, 3));
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("= add") && msg.contains("nothing was encrypted"),
        "{msg}"
    );
}
