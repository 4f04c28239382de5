//! `veil opt FILE.veil [--inputset S] --passes a,b,c [--print-after P | --print-after-all]
//! [--rules domain,...]`: run registered passes on a text program and print the result in the
//! text form, the way MLIR's `mlir-opt` and Cranelift's `clif-util` do.
//!
//! The passes are those of the compiler's registry ([`veil_compiler::passes::REGISTRY`]), `lower`
//! included (the tensor-level program to the TFHE level, with the parameter optimizer's sets,
//! as `veil compile` lowers it), plus one driver stage: `verify` (the veil-ir verifier on its
//! own). The veil-ir verifier runs after every pass, so a pass that leaves an invalid program
//! is named. `--print-after-all` and `--print-after P` print the program after those passes,
//! each under a `; after P (i/n)` line, as they run (a later failure still shows what went
//! into the failing pass); the final program is printed last unless it was just printed.
//! Nothing is written to disk. `veil opt --list` (or `--passes list`) prints the passes and
//! the rewrite's rule domains.

use super::io;
use super::CliError;
use std::path::PathBuf;
use veil_compiler::optimizer::ErrorTarget;
use veil_compiler::passes::{
    Pass, PassContext, PassError, PassManager, PassStats, PipelineReport, REGISTRY,
};
use veil_compiler::rewrite::rules::DOMAINS;
use veil_ir::{Graph, Level};

/// Arguments of `veil opt`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  veil opt --list
  veil opt tests/corpus/pw_relu6.veil --passes bitwidth,rewrite,dce
  veil opt prog.veil --passes bitwidth,desugar,rewrite,bitwidth,dce,lower --print-after-all
  veil opt prog.veil --inputset samples.csv --passes bitwidth,rewrite --rules fusion,comparisons

The inputset has the layout `veil compile --inputset` reads: one row per sample, every input \
flattened (row-major) in declaration order, CSV or NPY.")]
pub struct OptArgs {
    /// The `.veil` text program to transform (not needed with `--list`).
    pub file: Option<PathBuf>,
    /// The passes to run, in order, comma-separated (`list`: print the registered passes).
    #[arg(long, value_delimiter = ',')]
    pub passes: Vec<String>,
    /// Print the registered passes and rule domains with one line each, and exit.
    #[arg(long)]
    pub list: bool,
    /// Calibration samples for `bitwidth` (`.csv` or `.npy`, one row per sample); without
    /// it, ranges come from the inputs' declared types.
    #[arg(long)]
    pub inputset: Option<PathBuf>,
    /// Print the program after every pass.
    #[arg(long, conflicts_with = "print_after")]
    pub print_after_all: bool,
    /// Print the program after every run of this pass (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub print_after: Vec<String>,
    /// Restrict `rewrite` to these rule domains (comma-separated; default: all).
    #[arg(long, value_delimiter = ',')]
    pub rules: Vec<String>,
    /// Per-bootstrap error probability (`1e-12` or `2^-40`; default 2^-40): the rewrite's
    /// cost model and `lower`'s parameters.
    #[arg(long, value_parser = crate::params::parse_probability)]
    pub p_error: Option<f64>,
    /// Print every pass's statistics (counters, time) on stderr.
    #[arg(long)]
    pub stats: bool,
}

/// A stage `veil opt` runs besides the compiler's registered passes (which all take a
/// tensor-level program).
struct Stage {
    name: &'static str,
    summary: &'static str,
}

/// The driver stages, after the registry's passes in `--list`; they run at any level.
const STAGES: &[Stage] = &[Stage {
    name: "verify",
    summary: "run the veil-ir verifier (it also runs after every pass)",
}];

/// The text of `veil opt --list`.
pub fn list_text() -> String {
    let mut s = String::from("passes:\n");
    for p in REGISTRY {
        s += &format!("  {:<12} {}\n", p.name, p.summary);
    }
    for p in STAGES {
        s += &format!("  {:<12} {}\n", p.name, p.summary);
    }
    s += "rule domains (--rules, for `rewrite`):\n";
    for d in DOMAINS {
        s += &format!("  {:<12} {}\n", d.name, d.doc);
    }
    s += &format!(
        "default pipeline (veil compile): {}\n",
        veil_compiler::passes::DEFAULT_PIPELINE.join(",")
    );
    s
}

fn known_names() -> String {
    REGISTRY
        .iter()
        .map(|p| p.name)
        .chain(STAGES.iter().map(|s| s.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `verify` as a pass: nothing but the verification the manager runs after every pass.
struct VerifyPass;

impl Pass for VerifyPass {
    fn name(&self) -> &'static str {
        "verify"
    }

    fn doc(&self) -> &'static str {
        STAGES[0].summary
    }

    fn run(&mut self, _: &mut Graph, _: &mut PassContext) -> Result<PassStats, PassError> {
        Ok(PassStats::default())
    }
}

fn make(name: &str) -> Option<Box<dyn Pass>> {
    match name {
        "verify" => Some(Box::new(VerifyPass)),
        _ => veil_compiler::passes::make_pass(name).ok(),
    }
}

/// Checks the pass names, the rule domains and the pass order before anything runs.
fn check_pipeline(args: &OptArgs, g: &Graph) -> Result<(), CliError> {
    if args.passes.is_empty() {
        return Err(CliError(format!(
            "give the passes to run with --passes a,b,c; passes: {}",
            known_names()
        )));
    }
    for n in args.passes.iter().chain(&args.print_after) {
        if make(n).is_none() {
            return Err(CliError(format!(
                "unknown pass `{n}`; passes: {} (veil opt --list describes them)",
                known_names()
            )));
        }
    }
    if let Some(p) = args.print_after.iter().find(|p| !args.passes.contains(p)) {
        return Err(CliError(format!(
            "--print-after {p}: `{p}` is not in --passes {}",
            args.passes.join(",")
        )));
    }
    if let Some(bad) = args
        .rules
        .iter()
        .find(|r| !DOMAINS.iter().any(|d| d.name == r.as_str()))
    {
        let names: Vec<&str> = DOMAINS.iter().map(|d| d.name).collect();
        return Err(CliError(format!(
            "unknown rule domain `{bad}`; rule domains: {}",
            names.join(", ")
        )));
    }
    if !args.rules.is_empty() && !args.passes.iter().any(|p| p == "rewrite") {
        return Err(CliError(
            "--rules restricts the `rewrite` pass, which --passes does not run".into(),
        ));
    }
    if let Some(p) = args.p_error.filter(|p| !(*p > 0.0 && *p < 1.0)) {
        return Err(CliError(format!(
            "--p-error {p} is not a probability in (0, 1), e.g. 2^-40"
        )));
    }
    // Tensor-level passes cannot follow lowering (or run on a TFHE-level file).
    let mut tensor = g.level == Level::Tensor;
    for p in &args.passes {
        let needs_tensor = !STAGES.iter().any(|s| s.name == p.as_str());
        if needs_tensor && !tensor {
            return Err(CliError(format!(
                "pass `{p}` takes a tensor-level program, but the program is at the TFHE level{}",
                if g.level == Level::Tensor {
                    " after `lower`: put `lower` last"
                } else {
                    ""
                }
            )));
        }
        if p == "lower" {
            tensor = false;
        }
    }
    Ok(())
}

/// Runs the pipeline of `args` on its file, appending what `veil opt` prints on stdout to
/// `out` (the dumps so far even when a pass fails: they show what went into it); returns the
/// reports of the passes run.
pub fn opt(args: &OptArgs, out: &mut String) -> Result<Vec<PipelineReport>, CliError> {
    let path = args
        .file
        .as_ref()
        .ok_or_else(|| CliError("give a .veil file to transform (or --list)".into()))?;
    let name = path.display().to_string();
    let mut g = super::fmt::parse_file(path)?;
    check_pipeline(args, &g)?;
    let mut cx = PassContext::default();
    let p_error = args
        .p_error
        .unwrap_or(veil_compiler::program::DEFAULT_P_ERROR);
    cx.error = ErrorTarget::p_error(p_error);
    cx.rewrite.p_error = p_error;
    cx.rewrite.rule_domains = args.rules.clone();
    if let Some(s) = &args.inputset {
        let table = io::read_ints(s)?;
        cx.inputset = Some(io::int_samples(
            &table,
            &veil_runtime::artifact::input_specs(&g),
        )?);
    }
    let mut reports = Vec::new();
    let n = args.passes.len();
    let mut last_printed = false;
    for (i, p) in args.passes.iter().enumerate() {
        let mut pm = PassManager::new();
        pm.add(make(p).expect("checked by check_pipeline"));
        let dump = args.print_after_all || args.print_after.contains(p);
        pm.print_after_all(dump);
        let report = pm
            .run(&mut g, &mut cx)
            .map_err(|e| CliError(format!("{name}: {e}")))?;
        for (_, text) in &report.dumps {
            *out += &format!("; after {p} ({}/{n})\n{text}", i + 1);
        }
        last_printed = dump;
        reports.push(report);
    }
    if !last_printed {
        *out += &veil_ir::text::print(&g);
    }
    for d in &cx.diagnostics {
        eprintln!("warning: {}: {}", d.pass, d.message);
    }
    Ok(reports)
}

/// One line per pass: its name, time and counters (for `--stats`).
pub fn stats_text(reports: &[PipelineReport]) -> String {
    let mut s = String::new();
    for r in reports.iter().flat_map(|r| &r.passes) {
        let counters: Vec<String> = r
            .stats
            .counters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        s += &format!(
            "{:<10} {:>9.1} ms  nodes {} -> {}  {}\n",
            r.pass,
            r.time_ms,
            r.nodes_before,
            r.nodes_after,
            counters.join(" ")
        );
    }
    s
}

/// Runs `veil opt`.
pub fn run(args: &OptArgs) -> Result<(), CliError> {
    if args.list || args.passes.iter().any(|p| p == "list") {
        print!("{}", list_text());
        return Ok(());
    }
    let mut out = String::new();
    let r = opt(args, &mut out);
    print!("{out}");
    let reports = r?;
    if args.stats {
        eprint!("{}", stats_text(&reports));
    }
    Ok(())
}
