//! `veil params --precision P [--norm2 X] (--p-error E | --global-p-error E --tlus N |
//! --security-profile S) [--noise D] [--modulus-switch M] [--ks-modulus 64|32] [--objective O]
//! [--json]`: run the
//! parameter optimizer on one partition and print the chosen TFHE parameters, their model cost,
//! estimated latency, predicted error and key sizes. `--objective` picks what the search
//! minimises: `model` (Concrete's cost model, the default), `latency` (the calibrated latency
//! model) or `keys` (evaluation key bytes).
//!
//! `veil params --bits B [--json]` explains a table lookup of a `B`-bit input (1..=16) by
//! WoP-PBS, the decomposition veil's runtime uses beyond what one classic bootstrap serves:
//! `B` bit extractions, `B` circuit bootstraps, a vertical packing of `2^B / N` polynomials;
//! the tabulated parameters, predicted error, output width, security check, model cost,
//! estimated time and key sizes (`veil_compiler::optimizer::wop`).
//!
//! Also home of what the error flags of `veil params`, `veil compile` and `veil eval` share:
//! [`parse_probability`] (`1e-5`, `2^-128`) and [`SecurityProfile`].

use super::CliError;
use veil_compiler::optimizer::keys::{human_bytes, key_sizes, KeySizes};
use veil_compiler::optimizer::{optimize, ErrorTarget, NoiseOptions, Objective, Problem, Solution};
use veil_ir::{KsModulus, ModulusSwitch, NoiseDistribution};

/// Parses a probability written as a decimal (`6.1e-5`) or a power of two (`2^-128`,
/// `2^-13.9`); the range is checked with the flag's name by [`check_probability`].
pub fn parse_probability(s: &str) -> Result<f64, String> {
    let t = s.trim();
    if let Some(e) = t.strip_prefix("2^").or_else(|| t.strip_prefix("2**")) {
        e.parse::<f64>()
            .map(f64::exp2)
            .map_err(|_| format!("{s:?}: expected 2^x with a number x, e.g. 2^-128"))
    } else {
        t.parse::<f64>()
            .map_err(|_| format!("{s:?}: expected a probability like 6.1e-5 or 2^-128"))
    }
}

/// `p` when it lies strictly between 0 and 1, else an error naming `flag`.
pub fn check_probability(flag: &str, p: f64) -> Result<f64, CliError> {
    if p > 0.0 && p < 1.0 {
        Ok(p)
    } else {
        Err(CliError(format!(
            "{flag} {p}: give a probability between 0 and 1 (exclusive), e.g. 6.1e-5 or 2^-128"
        )))
    }
}

/// Named error targets (see `docs/noise.md` for the threat model).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProfile {
    /// p_error 2^-40 per bootstrap (veil's default): enough for correctness when decrypted
    /// results never go back to the server; IND-CPA security.
    IndCpa,
    /// p_error 2^-128 per bootstrap: decryption failures are as unlikely as breaking the keys,
    /// so a server that learns which results decrypted correctly learns nothing (IND-CPA-D).
    IndCpaD,
}

impl SecurityProfile {
    /// The per-bootstrap error probability of the profile.
    pub fn p_error(self) -> f64 {
        match self {
            SecurityProfile::IndCpa => (-40f64).exp2(),
            SecurityProfile::IndCpaD => (-128f64).exp2(),
        }
    }
}

/// `--noise` of `veil params`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoiseArg {
    /// The cheapest.
    #[default]
    Auto,
    /// Gaussian noise.
    Gaussian,
    /// TUniform noise (tfhe-rs's default distribution).
    Tuniform,
}

/// `--modulus-switch` of `veil params`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModulusSwitchArg {
    /// The cheapest.
    #[default]
    Auto,
    /// Coefficient-wise rounding.
    Standard,
    /// Mean-compensated rounding (tfhe-rs's CenteredMeanNoiseReduction).
    Centered,
}

/// `--ks-modulus` of `veil params`: the keyswitch keys' modulus.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KsModulusArg {
    /// The better under the objective (64-bit under the cost model, where KS32 never wins).
    #[default]
    Auto,
    /// 64-bit keyswitch keys (tfhe-rs's classic atomic pattern).
    #[value(name = "64")]
    Q64,
    /// 32-bit keyswitch keys (tfhe-rs's KS32 atomic pattern).
    #[value(name = "32")]
    Q32,
}

/// `--objective` of `veil params`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ObjectiveArg {
    /// Concrete's cost model (compare with Concrete's optimizer).
    #[default]
    Model,
    /// Calibrated single-thread latency.
    Latency,
    /// Evaluation key bytes (bootstrap + keyswitch keys).
    Keys,
}

impl From<ObjectiveArg> for Objective {
    fn from(o: ObjectiveArg) -> Self {
        match o {
            ObjectiveArg::Model => Objective::Model,
            ObjectiveArg::Latency => Objective::Latency,
            ObjectiveArg::Keys => Objective::Keys,
        }
    }
}

/// Arguments of `veil params`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ParamsArgs {
    /// TLU input precision in bits, sign included (1..=24).
    #[arg(long, required_unless_present = "bits")]
    pub precision: Option<u8>,
    /// Explain a table lookup of a BITS-bit input (1..=16) by WoP-PBS: its decomposition into
    /// bit extractions, circuit bootstraps and a vertical packing, parameters, error and cost.
    #[arg(long, conflicts_with_all = ["precision", "norm2", "global_p_error", "p_error", "security_profile", "noise", "modulus_switch", "ks_modulus", "objective", "tlus"])]
    pub bits: Option<u8>,
    /// Largest sum of squared weights of a dot product feeding a TLU (1 = TLU after TLU).
    #[arg(long, default_value_t = 1.0)]
    pub norm2: f64,
    /// Largest probability that one TLU decodes wrongly (e.g. 6.1e-5 or 2^-40).
    #[arg(long, value_parser = parse_probability)]
    pub p_error: Option<f64>,
    /// Largest probability that any of the `--tlus` TLUs decodes wrongly (e.g. 1e-5).
    #[arg(long, value_parser = parse_probability)]
    pub global_p_error: Option<f64>,
    /// A named per-TLU target: ind-cpa (2^-40) or ind-cpa-d (2^-128).
    #[arg(long, value_enum, conflicts_with_all = ["p_error", "global_p_error"])]
    pub security_profile: Option<SecurityProfile>,
    /// Noise distribution of keys and encryptions.
    #[arg(long, value_enum, default_value_t = NoiseArg::Auto)]
    pub noise: NoiseArg,
    /// Modulus switch of the bootstraps.
    #[arg(long, value_enum, default_value_t = ModulusSwitchArg::Auto)]
    pub modulus_switch: ModulusSwitchArg,
    /// Keyswitch key modulus: 64, 32 (the KS32 atomic pattern) or auto.
    #[arg(long, value_enum, default_value_t = KsModulusArg::Auto)]
    pub ks_modulus: KsModulusArg,
    /// What the search minimises: model (Concrete's cost model), latency (calibrated single-
    /// thread latency) or keys (evaluation key bytes).
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Model)]
    pub objective: ObjectiveArg,
    /// Number of TLUs in the program (splits `--global-p-error`; scales the total cost).
    #[arg(long, default_value_t = 1)]
    pub tlus: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The optimizer's answer for `args`.
pub fn solve(args: &ParamsArgs) -> Result<Solution, CliError> {
    let precision = args.precision.ok_or_else(|| {
        CliError("params: give --precision P (or --bits B for a wide lookup)".into())
    })?;
    if let Some(p) = args.p_error {
        check_probability("--p-error", p).map_err(|e| CliError(format!("params: {}", e.0)))?;
    }
    if let Some(p) = args.global_p_error {
        check_probability("--global-p-error", p)
            .map_err(|e| CliError(format!("params: {}", e.0)))?;
    }
    let p_error = args
        .p_error
        .or(args.security_profile.map(SecurityProfile::p_error));
    if p_error.is_none() && args.global_p_error.is_none() {
        return Err(CliError(
            "params: give an error target: --p-error E (per TLU), --global-p-error E with --tlus N \
             or --security-profile ind-cpa|ind-cpa-d"
                .into(),
        ));
    }
    let target = ErrorTarget {
        p_error,
        global_p_error: args.global_p_error,
    };
    let mut problem = Problem::single(precision, args.norm2, args.tlus, target);
    problem.noise = NoiseOptions {
        distribution: match args.noise {
            NoiseArg::Auto => None,
            NoiseArg::Gaussian => Some(NoiseDistribution::Gaussian),
            NoiseArg::Tuniform => Some(NoiseDistribution::TUniform),
        },
        modulus_switch: match args.modulus_switch {
            ModulusSwitchArg::Auto => None,
            ModulusSwitchArg::Standard => Some(ModulusSwitch::Standard),
            ModulusSwitchArg::Centered => Some(ModulusSwitch::Centered),
        },
        ks_modulus: match args.ks_modulus {
            KsModulusArg::Auto => None,
            KsModulusArg::Q64 => Some(KsModulus::Q64),
            KsModulusArg::Q32 => Some(KsModulus::Q32),
        },
    };
    problem.objective = args.objective.into();
    optimize(&problem).map_err(|e| CliError(format!("params: {e}")))
}

fn log2s(v: f64) -> String {
    format!("2^{:.2}", v.log2())
}

/// Text report of `sol` for `args`.
pub fn render_text(args: &ParamsArgs, sol: &Solution) -> String {
    let precision = args.precision.unwrap_or(sol.sets[0].params.message_bits);
    let set = &sol.sets[0];
    let p = &set.params;
    let keys = key_sizes(p);
    let m = 1048576.0;
    let input = set.br_variance * args.norm2 + set.ks_variance + set.ms_variance;
    let v_safe = veil_compiler::optimizer::error::safe_variance(precision, sol.p_error_target);
    format!(
        "veil params: {bits} bits, norm2 {norm2}, per-TLU p_error target {target:.3e}\n\
         parameters  {p}\n\
         dimensions  n={n} k={k} N={big_n} (big key k*N={kn})\n\
         noise       {dist:?} lwe 2^{ln:.3}  glwe 2^{gn:.3}  (128-bit floor of each dimension{bound}); {ms:?} modulus switch\n\
         bootstrap   base_log {pb} x {pl} level(s)\n\
         keyswitch   base_log {kb} x {kl} level(s), keys modulo 2^{ksq}{ks32}\n\
         cost        {tlu:.1} x 2^20 per TLU (PBS {pbs:.1}, KS {ks:.1}); total {total:.1} x 2^20 for {tlus} TLU(s); chosen by {objective}\n\
         latency     {lat:.2} ms for {tlus} KS + PBS on one thread (calibrated model)\n\
         error       p_error {pe:.3e} per TLU, global {ge:.3e} over {tlus} TLU(s)\n\
         variances   PBS out {br}, KS {ksv}, MS {msv}; PBS input {inp} <= V_safe {vs}\n\
         keys        BSK {bsk} ({bsk_b} B as u64; Fourier form N/2 complex f64 per polynomial: {fbsk}), KSK {ksk} ({ksk_b} B as u{ksq})\n",
        bits = precision,
        norm2 = args.norm2,
        target = sol.p_error_target,
        n = p.lwe_dimension,
        k = p.glwe_dimension,
        big_n = p.polynomial_size,
        kn = p.big_lwe_dimension(),
        dist = p.noise_distribution,
        bound = if p.noise_distribution == NoiseDistribution::TUniform {
            "; TUniform bounds, 2^(64+x) on the 64-bit modulus"
        } else {
            ""
        },
        ms = p.modulus_switch,
        ln = p.lwe_noise_log2,
        gn = p.glwe_noise_log2,
        pb = p.pbs_base_log,
        pl = p.pbs_level,
        kb = p.ks_base_log,
        kl = p.ks_level,
        ksq = p.ks_modulus.log2(),
        ks32 = if p.ks_modulus == KsModulus::Q32 {
            " (KS32 atomic pattern)"
        } else {
            ""
        },
        tlu = (set.pbs_cost + set.ks_cost) / m,
        pbs = set.pbs_cost / m,
        ks = set.ks_cost / m,
        total = sol.cost / m,
        objective = match sol.objective {
            Objective::Model => "Concrete's cost model",
            Objective::Latency => "calibrated latency",
            Objective::Keys => "key bytes",
        },
        lat = sol.estimated_latency_s * 1e3,
        tlus = args.tlus,
        pe = sol.p_error,
        ge = sol.global_p_error,
        br = log2s(set.br_variance),
        ksv = log2s(set.ks_variance),
        msv = log2s(set.ms_variance),
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

/// The WoP-PBS explanation of a `bits`-bit lookup: text, or JSON with `json`.
pub fn wide_lookup(bits: u8, json: bool) -> Result<String, CliError> {
    use veil_compiler::optimizer::wop::{estimate, WOP_P_ERROR};
    use veil_runtime::wopbs::{WopParams, MAX_WOP_BITS};
    if !(1..=MAX_WOP_BITS).contains(&bits) {
        return Err(CliError(format!(
            "params: --bits {bits}: WoP-PBS lookups take 1 to {MAX_WOP_BITS} input bits"
        )));
    }
    let wop = WopParams::for_bits(bits).map_err(|e| CliError(format!("params: {e}")))?;
    let e = estimate(&wop, bits, WOP_P_ERROR);
    let p = &wop.set;
    let keys = key_sizes(p);
    let pfpksk = wop.pfpksk_bytes();
    let secure = match p.insecurity() {
        None => "meets the 128-bit floor".to_string(),
        Some(why) => format!("INSECURE: {why}"),
    };
    let seconds = e.cost * veil_compiler::optimizer::wop::SECONDS_PER_COST_UNIT;
    // A classic bootstrap of a `bits`-bit input needs N >= 2^(bits + 1).
    let classic = Problem::single(bits, 1.0, 1, ErrorTarget::p_error(WOP_P_ERROR));
    let classic = match optimize(&classic) {
        Ok(sol) => format!(
            "one KS + PBS at N={} costs {:.1} x 2^20",
            sol.sets[0].params.polynomial_size,
            sol.cost / 1048576.0
        ),
        Err(_) => format!(
            "none: a single bootstrap of {bits} bits needs N >= 2^{}, beyond every secure set",
            bits + 1
        ),
    };
    if json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            bits: u8,
            params: &'a WopParams,
            estimate: &'a veil_compiler::optimizer::wop::WopEstimate,
            secure: bool,
            estimated_seconds: f64,
            key_bytes: u64,
        }
        return serde_json::to_string_pretty(&Out {
            bits,
            params: &wop,
            estimate: &e,
            secure: p.is_secure(),
            estimated_seconds: seconds,
            key_bytes: keys.bsk_bytes + keys.ksk_bytes + pfpksk,
        })
        .map_err(|e| CliError(format!("params: cannot write JSON: {e}")));
    }
    let c = &e.counts;
    let n = p.polynomial_size;
    let depth = c.table_polys.trailing_zeros();
    let m = 1048576.0;
    Ok(format!(
        "veil params: {bits}-bit table lookup by WoP-PBS (bit extraction, circuit bootstrap, vertical packing), p_error target 2^-40\n\
         parameters  {wop}\n\
         1. extract  {ks} keyswitches (k*N={kn} -> n={small}, ks {kb}x{kl}) and {xp} one-bit bootstraps (pbs {pb}x{pl}): the {bits} message bits, lowest first\n\
         2. cbs      {bits} circuit bootstraps: {cp} bootstraps and {pf} PFPKS (pfks {fb}x{fl}) -> {bits} GGSW ciphertexts (cbs {cb}x{cl})\n\
         3. packing  the 2^{bits}-entry table in {tp} polynomial(s) of N={n}: CMux tree of {ct} CMux(es) (depth {depth}), then a blind rotation on {br} bits\n\
         error       p_error 2^{pe:.2} per lookup (input variance up to V_safe({bits})/4); output variance 2^{ov:.2}: outputs of up to {ob} bits, wider results as digits (one vertical packing each)\n\
         security    {secure} (Gaussian, lwe 2^{ln:.3} at n={small}, glwe 2^{gn:.3} at k*N={kn}); PFPKS keys use the GLWE noise\n\
         cost        {cost:.1} x 2^20 (model: KS {kscost:.1}, PBS {pbscost:.1}, PFPKS {pfcost:.1}, packing {vpcost:.1}); estimated {seconds:.1} s on one core\n\
         keys        BSK {bsk}, KSK {ksk}, PFPKS {pfpksk_h}: {total} expanded\n\
         classic     {classic}\n",
        ks = c.keyswitches,
        kn = p.big_lwe_dimension(),
        small = p.lwe_dimension,
        kb = p.ks_base_log,
        kl = p.ks_level,
        xp = c.extraction_pbs,
        pb = p.pbs_base_log,
        pl = p.pbs_level,
        cp = c.cbs_pbs,
        pf = c.pfpks,
        fb = wop.pfks_base_log,
        fl = wop.pfks_level,
        cb = wop.cbs_base_log,
        cl = wop.cbs_level,
        tp = c.table_polys,
        ct = c.cmux_tree,
        br = c.blind_rotation,
        pe = e.p_error.log2(),
        ov = e.out_variance.log2(),
        ob = e.out_bits,
        ln = p.lwe_noise_log2,
        gn = p.glwe_noise_log2,
        cost = e.cost / m,
        kscost = e.cost_ks / m,
        pbscost = e.cost_pbs / m,
        pfcost = e.cost_pfpks / m,
        vpcost = e.cost_packing / m,
        bsk = human_bytes(keys.bsk_bytes),
        ksk = human_bytes(keys.ksk_bytes),
        pfpksk_h = human_bytes(pfpksk),
        total = human_bytes(keys.bsk_bytes + keys.ksk_bytes + pfpksk),
    ))
}

/// Runs `veil params`.
pub fn run(args: &ParamsArgs) -> Result<(), CliError> {
    if let Some(bits) = args.bits {
        print!("{}", wide_lookup(bits, args.json)?);
        if args.json {
            println!();
        }
        return Ok(());
    }
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
        // Concrete's 4-bit set under the standard modulus switch (its published choice).
        let a = args("--precision 4 --norm2 1 --p-error 6.5416e-5 --modulus-switch standard");
        let out = render_text(&a, &solve(&a).unwrap());
        for want in [
            "n=801 k=2 N=1024 (big key k*N=2048)",
            "base_log 23 x 1 level",
            "base_log 4 x 3 level",
            "68.1 x 2^20 per TLU",
            // 801 * 3^2 * 1 * 1024 * 8 bytes; 2048 * 3 * 802 * 8 bytes.
            "BSK 59.1 MB (59056128 B",
            "KSK 39.4 MB (39419904 B",
            "Gaussian lwe",
            "Standard modulus switch",
        ] {
            assert!(out.contains(want), "missing {want:?} in\n{out}");
        }
    }

    #[test]
    fn objective_flag() {
        let m = solve(&args("--precision 3 --p-error 2^-40 --tlus 13")).unwrap();
        let l = solve(&args(
            "--precision 3 --p-error 2^-40 --tlus 13 --objective latency",
        ))
        .unwrap();
        let k = solve(&args(
            "--precision 3 --p-error 2^-40 --tlus 13 --objective keys",
        ))
        .unwrap();
        assert_eq!(
            (m.objective, l.objective, k.objective),
            (Objective::Model, Objective::Latency, Objective::Keys)
        );
        assert!(l.estimated_latency_s <= m.estimated_latency_s);
        let bytes = |s: &Solution| {
            let z = key_sizes(&s.sets[0].params);
            z.bsk_bytes + z.ksk_bytes
        };
        assert!(bytes(&k) <= bytes(&m) && bytes(&k) <= bytes(&l));
        let a = args("--precision 3 --p-error 2^-40 --objective latency");
        let out = render_text(&a, &solve(&a).unwrap());
        assert!(out.contains("chosen by calibrated latency"), "{out}");
        assert!(T::try_parse_from(["params", "--precision", "3", "--objective", "speed"]).is_err());
    }

    #[test]
    fn two_to_the_minus_128_and_profiles() {
        assert_eq!(parse_probability("2^-128"), Ok((-128f64).exp2()));
        assert_eq!(parse_probability("2**-40"), Ok((-40f64).exp2()));
        assert_eq!(parse_probability("6.1e-5"), Ok(6.1e-5));
        for bad in ["2^x", "nope", ""] {
            assert!(parse_probability(bad).is_err(), "{bad}");
        }
        for out_of_range in [0.0, 1.0, 1.5] {
            assert!(check_probability("--p-error", out_of_range).is_err());
        }
        let a = args("--precision 4 --norm2 5 --p-error 2^-128");
        let b = args("--precision 4 --norm2 5 --security-profile ind-cpa-d");
        let (sa, sb) = (solve(&a).unwrap(), solve(&b).unwrap());
        assert_eq!(sa, sb);
        assert!(sa.p_error <= (-128f64).exp2());
        // No dearer than tfhe-rs's default 2M128 set (n 918, k 1, N 2048, PBS 1, KS 4 levels):
        // 107.6 x 2^20 in the same model.
        assert!(sa.cost / 1048576.0 < 107.6, "{}", sa.cost / 1048576.0);
        let t = args("--precision 4 --norm2 5 --security-profile ind-cpa-d --noise tuniform");
        let out = render_text(&t, &solve(&t).unwrap());
        assert!(out.contains("n=918 k=1 N=2048"), "{out}");
        assert!(out.contains("TUniform lwe 2^-19.000"), "{out}");
        assert!(out.contains("Centered modulus switch"), "{out}");
        // KS32 forced: tfhe-rs's KS32 default set, its keyswitch key in u32 words (half).
        let t32 = args(
            "--precision 4 --norm2 5 --security-profile ind-cpa-d --noise tuniform --ks-modulus 32",
        );
        let out32 = render_text(&t32, &solve(&t32).unwrap());
        for want in [
            "n=918 k=1 N=2048",
            "base_log 4 x 4 level(s), keys modulo 2^32 (KS32 atomic pattern)",
            "B as u32)",
        ] {
            assert!(out32.contains(want), "missing {want:?} in\n{out32}");
        }
        assert!(out.contains("keys modulo 2^64\n"), "{out}");
        assert!(T::try_parse_from(["params", "--precision", "4", "--ks-modulus", "16"]).is_err());
        let c = args("--precision 4 --security-profile ind-cpa");
        assert_eq!(solve(&c).unwrap().p_error_target, (-40f64).exp2());
        assert!(T::try_parse_from([
            "params",
            "--precision",
            "4",
            "--p-error",
            "1e-5",
            "--security-profile",
            "ind-cpa"
        ])
        .is_err());
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
        assert!(
            e.contains("--p-error 2: give a probability between 0 and 1"),
            "{e}"
        );
        let e = T::try_parse_from(["params", "--precision", "4", "--p-error", "2^x"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("expected 2^x"), "{e}");
    }
}
