//! `veil params --precision P [--norm2 X] (--p-error E | --global-p-error E --tlus N) [--json]`:
//! run the parameter optimizer on one partition and print the chosen TFHE parameters, their
//! model cost, predicted error and key sizes.

use super::CliError;
use veil_compiler::optimizer::keys::{human_bytes, key_sizes, KeySizes};
use veil_compiler::optimizer::{optimize, ErrorTarget, Problem, Solution};

/// Arguments of `veil params`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ParamsArgs {
    /// TLU input precision in bits, sign included (1..=24).
    #[arg(long)]
    pub precision: u8,
    /// Largest sum of squared weights of a dot product feeding a TLU (1 = TLU after TLU).
    #[arg(long, default_value_t = 1.0)]
    pub norm2: f64,
    /// Largest probability that one TLU decodes wrongly (e.g. 6.1e-5).
    #[arg(long)]
    pub p_error: Option<f64>,
    /// Largest probability that any of the `--tlus` TLUs decodes wrongly (e.g. 1e-5).
    #[arg(long)]
    pub global_p_error: Option<f64>,
    /// Number of TLUs in the program (splits `--global-p-error`; scales the total cost).
    #[arg(long, default_value_t = 1)]
    pub tlus: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The optimizer's answer for `args`.
pub fn solve(args: &ParamsArgs) -> Result<Solution, CliError> {
    if args.p_error.is_none() && args.global_p_error.is_none() {
        return Err(CliError(
            "params: give an error target: --p-error E (per TLU) or --global-p-error E with --tlus N"
                .into(),
        ));
    }
    let target = ErrorTarget {
        p_error: args.p_error,
        global_p_error: args.global_p_error,
    };
    optimize(&Problem::single(
        args.precision,
        args.norm2,
        args.tlus,
        target,
    ))
    .map_err(|e| CliError(format!("params: {e}")))
}

fn log2s(v: f64) -> String {
    format!("2^{:.2}", v.log2())
}

/// Text report of `sol` for `args`.
pub fn render_text(args: &ParamsArgs, sol: &Solution) -> String {
    let set = &sol.sets[0];
    let p = &set.params;
    let keys = key_sizes(p);
    let m = 1048576.0;
    let input = set.br_variance * args.norm2 + set.ks_variance + set.ms_variance;
    let v_safe = veil_compiler::optimizer::error::safe_variance(args.precision, sol.p_error_target);
    format!(
        "veil params: {bits} bits, norm2 {norm2}, per-TLU p_error target {target:.3e}\n\
         parameters  {p}\n\
         dimensions  n={n} k={k} N={big_n} (big key k*N={kn})\n\
         noise       lwe 2^{ln:.3}  glwe 2^{gn:.3}  (128-bit floor of each dimension)\n\
         bootstrap   base_log {pb} x {pl} level(s)\n\
         keyswitch   base_log {kb} x {kl} level(s)\n\
         cost        {tlu:.1} x 2^20 per TLU (PBS {pbs:.1}, KS {ks:.1}); total {total:.1} x 2^20 for {tlus} TLU(s)\n\
         error       p_error {pe:.3e} per TLU, global {ge:.3e} over {tlus} TLU(s)\n\
         variances   PBS out {br}, KS {ksv}, MS {ms}; PBS input {inp} <= V_safe {vs}\n\
         keys        BSK {bsk} ({bsk_b} B as u64; Fourier form N/2 complex f64 per polynomial: {fbsk}), KSK {ksk} ({ksk_b} B as u64)\n",
        bits = args.precision,
        norm2 = args.norm2,
        target = sol.p_error_target,
        n = p.lwe_dimension,
        k = p.glwe_dimension,
        big_n = p.polynomial_size,
        kn = p.big_lwe_dimension(),
        ln = p.lwe_noise_log2,
        gn = p.glwe_noise_log2,
        pb = p.pbs_base_log,
        pl = p.pbs_level,
        kb = p.ks_base_log,
        kl = p.ks_level,
        tlu = (set.pbs_cost + set.ks_cost) / m,
        pbs = set.pbs_cost / m,
        ks = set.ks_cost / m,
        total = sol.cost / m,
        tlus = args.tlus,
        pe = sol.p_error,
        ge = sol.global_p_error,
        br = log2s(set.br_variance),
        ksv = log2s(set.ks_variance),
        ms = log2s(set.ms_variance),
        inp = log2s(input),
        vs = log2s(v_safe),
        bsk = human_bytes(keys.bsk_bytes),
        bsk_b = keys.bsk_bytes,
        fbsk = human_bytes(keys.fourier_bsk_bytes),
        ksk = human_bytes(keys.ksk_bytes),
        ksk_b = keys.ksk_bytes,
    )
}

/// JSON report: `{ "solution": ..., "key_sizes": [...] }` (one key-size entry per set).
pub fn render_json(sol: &Solution) -> Result<String, CliError> {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        solution: &'a Solution,
        key_sizes: Vec<KeySizes>,
    }
    let out = Out {
        solution: sol,
        key_sizes: sol.sets.iter().map(|s| key_sizes(&s.params)).collect(),
    };
    serde_json::to_string_pretty(&out)
        .map_err(|e| CliError(format!("params: cannot write JSON: {e}")))
}

/// Runs `veil params`.
pub fn run(args: &ParamsArgs) -> Result<(), CliError> {
    let sol = solve(args)?;
    if args.json {
        println!("{}", render_json(&sol)?);
    } else {
        print!("{}", render_text(args, &sol));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ParamsArgs,
    }

    fn args(line: &str) -> ParamsArgs {
        T::try_parse_from(std::iter::once("params").chain(line.split_whitespace()))
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .a
    }

    #[test]
    fn text_report() {
        let a = args("--precision 4 --norm2 1 --p-error 6.5416e-5");
        let out = render_text(&a, &solve(&a).unwrap());
        for want in [
            "n=801 k=2 N=1024 (big key k*N=2048)",
            "base_log 23 x 1 level",
            "base_log 4 x 3 level",
            "68.1 x 2^20 per TLU",
            // 801 * 3^2 * 1 * 1024 * 8 bytes; 2048 * 3 * 802 * 8 bytes.
            "BSK 59.1 MB (59056128 B",
            "KSK 39.4 MB (39419904 B",
        ] {
            assert!(out.contains(want), "missing {want:?} in\n{out}");
        }
    }

    #[test]
    fn global_target_and_json() {
        let a = args("--precision 3 --global-p-error 1e-5 --tlus 100 --json");
        let sol = solve(&a).unwrap();
        assert!(sol.global_p_error <= 1e-5 * (1.0 + 1e-9));
        let v: serde_json::Value = serde_json::from_str(&render_json(&sol).unwrap()).unwrap();
        assert_eq!(v["solution"]["sets"][0]["params"]["message_bits"], 3);
        assert!(v["key_sizes"][0]["bsk_bytes"].as_u64().unwrap() > 0);
    }

    #[test]
    fn errors() {
        let e = solve(&args("--precision 4")).unwrap_err().0;
        assert!(e.contains("--p-error"), "{e}");
        let e = solve(&args("--precision 14 --p-error 1e-9")).unwrap_err().0;
        assert!(e.contains("no secure parameters for 14 bits"), "{e}");
        let e = solve(&args("--precision 4 --p-error 2")).unwrap_err().0;
        assert!(e.contains("between 0 and 1"), "{e}");
    }
}
