//! The parameter optimizer: secure TFHE parameters chosen per program.
//!
//! Input: the program's *partitions* (groups of table lookups sharing a TLU input precision),
//! each with the largest dot-product `norm2` reaching one of its bootstraps and its TLU count,
//! plus an error target. Output: one [`ParamSet`] per group of partitions (one group unless
//! splitting is cheaper), the model's cost and the predicted error probabilities.
//!
//! The models are Concrete's (Bergerat et al., "Parameter Optimization and Larger Precision for (T)FHE", J. Cryptology 2023, ePrint 2022/704; concrete-optimizer): [`noise`] (keyswitch, modulus switch, external
//! product with FFT noise, dot products), [`error`] (erfc, kappa, `V_safe`), [`cost`],
//! [`security`] (noise at the 128-bit floor). [`search`] finds the cheapest set for a list of
//! constraints; [`multi`] decides which partitions share a set; [`keys`] sizes the keys;
//! [`cache`] memoises whole problems for repeated compiles.
//!
//! ```
//! use veil_compiler::optimizer::{optimize, ErrorTarget, Problem};
//! let sol = optimize(&Problem::single(4, 1.0, 1, ErrorTarget::p_error(2f64.powi(-14)))).unwrap();
//! assert!(sol.sets[0].params.is_secure());
//! assert!(sol.p_error <= 2f64.powi(-14));
//! ```

pub mod cache;
pub mod cost;
pub mod error;
pub mod keys;
pub mod multi;
pub mod noise;
pub mod search;
pub mod security;
pub mod space;
pub mod wop;

pub use cache::{optimize_cached, OptimizerCache};
pub use multi::optimize;

use serde::{Deserialize, Serialize};
use veil_ir::{KsModulus, ModulusSwitch, NoiseDistribution, ParamSet};

/// Which noise patterns the optimizer may choose from; `None` leaves the choice to cost.
///
/// The noise distribution and the modulus switch are chosen by dominance, which is exact: at
/// equal dimensions and decompositions every such pattern costs the same, Gaussian noise at its
/// floor is below TUniform's at every dimension (so every key noise term is smaller) and the
/// centered modulus switch is below the standard one. Left free they resolve to Gaussian and
/// centered; the other candidates could never be strictly cheaper
/// (`search::tests::free_patterns_resolve_by_dominance`).
///
/// The keyswitch modulus (the KS32 atomic pattern) is a real trade-off: KS32 is never less
/// noisy than the 64-bit keyswitch, costs the same in Concrete's model and less in latency and
/// key bytes. Left free, [`Objective::Model`] therefore keeps `2^64` (dominance), and the other
/// objectives search both and keep the better (`2^64` on ties).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NoiseOptions {
    /// Force this noise distribution for every set.
    pub distribution: Option<NoiseDistribution>,
    /// Force this modulus switch for every set.
    pub modulus_switch: Option<ModulusSwitch>,
    /// Force this keyswitch modulus (KS32 or 64-bit) for every set.
    #[serde(default)]
    pub ks_modulus: Option<KsModulus>,
}

impl NoiseOptions {
    /// The distribution searched: the forced one, else the dominant Gaussian.
    pub fn distribution(&self) -> NoiseDistribution {
        self.distribution.unwrap_or(NoiseDistribution::Gaussian)
    }

    /// The modulus switch searched: the forced one, else the dominant centered switch.
    pub fn modulus_switch(&self) -> ModulusSwitch {
        self.modulus_switch.unwrap_or(ModulusSwitch::Centered)
    }

    /// The keyswitch moduli searched under objective `o`: the forced one, else `2^64` alone
    /// under [`Objective::Model`] (it dominates) and both otherwise, `2^64` first.
    pub fn ks_moduli(&self, o: Objective) -> &'static [KsModulus] {
        match (self.ks_modulus, o) {
            (Some(KsModulus::Q64), _) | (None, Objective::Model) => &[KsModulus::Q64],
            (Some(KsModulus::Q32), _) => &[KsModulus::Q32],
            (None, _) => &[KsModulus::Q64, KsModulus::Q32],
        }
    }
}

/// What the optimizer minimises among the sets that meet the error target and the security
/// floor. Whatever the objective, [`Solution::cost`] and [`ChosenSet::cost`] are reported in
/// Concrete's cost model (comparable with Concrete's optimizer) and
/// [`Solution::estimated_latency_s`] in the calibrated latency model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Concrete's complexity model ([`cost::pbs_cost`], [`cost::ks_cost`]): the default of
    /// `veil params` and of [`Problem`] (where veil is compared with Concrete's optimizer);
    /// compiles use it with `--objective model`.
    #[default]
    Model,
    /// Measured single-thread latency ([`cost::pbs_latency_ns`], [`cost::ks_latency_ns`]):
    /// the model's terms weighted as this runtime's bootstraps and keyswitches really take.
    /// The default of compiles (`CompileConfig::objective`, `veil compile --objective`).
    Latency,
    /// Evaluation key bytes (bootstrap and keyswitch keys, [`keys`]), whatever the number of
    /// bootstraps: for a client that sends one sample per key, keygen time and key upload
    /// dominate.
    Keys,
}

/// The objective of compiles (`CompileConfig::objective`'s default): the calibrated latency.
/// [`Problem`], `veil params` and the `lower` pass of pass-pipeline tests keep
/// [`Objective::Model`].
pub const COMPILE_OBJECTIVE: Objective = Objective::Latency;

impl Objective {
    /// `model`, `latency` or `keys`, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Model => "model",
            Objective::Latency => "latency",
            Objective::Keys => "keys",
        }
    }

    /// Parses [`Objective::name`].
    pub fn parse(s: &str) -> Option<Self> {
        [Objective::Model, Objective::Latency, Objective::Keys]
            .into_iter()
            .find(|o| o.name() == s)
    }
}

/// Largest TLU input precision the optimizer accepts (Concrete caps TLU inputs at 16 bits; the
/// search space runs out of noise budget well before).
pub const MAX_PRECISION: u8 = 24;

/// Table lookups sharing one input precision (a partition of the program).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// TLU input precision in bits, sign included (the padding bit comes on top).
    pub precision: u8,
    /// Largest `sum w_i^2` of a levelled dot product feeding one of the partition's TLUs
    /// (1 when TLU inputs come straight from a TLU or an encryption).
    pub norm2: f64,
    /// Number of TLUs (bootstraps) in the partition.
    pub tlus: u64,
    /// Levelled work on the partition's ciphertexts (sum of operand sizes; cost `size * k N`).
    pub levelled: u64,
    /// Program outputs decoded under this partition's big key (their noise caps the
    /// partition's bootstrap output variance).
    #[serde(default)]
    pub outputs: Vec<OutputNoise>,
}

/// An output decoded by the client under a partition's big key: `norm2` units of that
/// partition's bootstrap output variance must decode `precision` bits.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputNoise {
    /// Message width of the output's encoding in bits.
    pub precision: u8,
    /// Largest norm2 of an output element.
    pub norm2: f64,
}

/// `count` ciphertexts living under partition `from`'s big key (its bootstrap outputs, or
/// inputs encrypted under it) and keyswitched into the small key of partition `to`. When the
/// two partitions get different sets that keyswitch starts from `from`'s big key: its noise and
/// cost scale with `from`'s dimension `k N` instead of `to`'s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crossing {
    /// Producing partition index.
    pub from: usize,
    /// Consuming partition index.
    pub to: usize,
    /// Number of ciphertexts crossing.
    pub count: u64,
}

/// Concrete ML's default per-bootstrap error probability, `2^-40`: the target of a compilation
/// that names none (`CompileConfig::default`, `veil compile` without `--p-error`). (An
/// [`ErrorTarget::default`] names no probability: the optimizer refuses it.)
pub const DEFAULT_P_ERROR: f64 = 9.094947017729282e-13;

/// How wrong the program may be: per-TLU and/or whole-circuit error probability; when both are
/// given the stricter per-TLU requirement wins. Every compilation reads it through
/// [`ErrorTarget::validate`] and [`ErrorTarget::per_bootstrap`], the one conversion of a
/// global target into a per-bootstrap one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorTarget {
    /// Largest probability that one TLU decodes wrongly.
    pub p_error: Option<f64>,
    /// Largest probability that any TLU of the program decodes wrongly.
    pub global_p_error: Option<f64>,
}

impl ErrorTarget {
    /// A per-TLU target.
    pub fn p_error(p: f64) -> Self {
        ErrorTarget {
            p_error: Some(p),
            global_p_error: None,
        }
    }

    /// A whole-program target.
    pub fn global(p: f64) -> Self {
        ErrorTarget {
            p_error: None,
            global_p_error: Some(p),
        }
    }

    /// Checks that at least one probability is given and that each lies strictly between 0
    /// and 1.
    pub fn validate(&self) -> Result<(), OptimizeError> {
        for (name, v) in [
            ("p_error", self.p_error),
            ("global_p_error", self.global_p_error),
        ] {
            if let Some(x) = v.filter(|x| !(*x > 0.0 && *x < 1.0)) {
                return Err(OptimizeError::InvalidInput(format!(
                    "{name} {x} must lie strictly between 0 and 1 (e.g. 6.1e-5 or 1e-5)"
                )));
            }
        }
        if self.p_error.is_none() && self.global_p_error.is_none() {
            return Err(OptimizeError::InvalidInput(
                "no error target: give p_error and/or global_p_error".into(),
            ));
        }
        Ok(())
    }

    /// The per-bootstrap error probability of a program of `tlus` bootstraps (validated): the
    /// per-bootstrap target, the global one spread over the bootstraps
    /// ([`error::p_error_from_global`]), or the stricter of both. `tlus = 0` stands for a
    /// count not known yet (the rewrite pricing one bootstrap) or a program without
    /// bootstraps: the global target then applies as it is.
    pub fn per_bootstrap(&self, tlus: u64) -> Result<f64, OptimizeError> {
        self.validate()?;
        let from_global = self
            .global_p_error
            .map(|g| error::p_error_from_global(g, tlus));
        Ok(self
            .p_error
            .into_iter()
            .chain(from_global)
            .fold(1.0, f64::min))
    }
}

/// An optimization request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// The partitions (at least one).
    pub partitions: Vec<Partition>,
    /// Data flowing between partitions.
    pub crossings: Vec<Crossing>,
    /// The error target.
    pub target: ErrorTarget,
    /// Serve every partition with one set (Concrete's mono-parameter strategy); otherwise
    /// partitions get their own sets whenever that is cheaper.
    #[serde(default)]
    pub single_set: bool,
    /// Noise patterns allowed (all by default: the cheapest wins).
    #[serde(default)]
    pub noise: NoiseOptions,
    /// What the search minimises (Concrete's cost model by default).
    #[serde(default)]
    pub objective: Objective,
}

impl Problem {
    /// One partition of `tlus` TLUs at `precision` bits fed by dot products of `norm2`.
    pub fn single(precision: u8, norm2: f64, tlus: u64, target: ErrorTarget) -> Self {
        Problem {
            partitions: vec![Partition {
                precision,
                norm2,
                tlus,
                levelled: 0,
                outputs: Vec::new(),
            }],
            crossings: Vec::new(),
            target,
            single_set: false,
            noise: NoiseOptions::default(),
            objective: Objective::default(),
        }
    }
}

/// One chosen parameter set with the model's view of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChosenSet {
    /// The parameters (noise at the 128-bit floor of each dimension; `message_bits` is the
    /// widest precision it serves, `p_error` the worst predicted per-TLU error among them).
    pub params: ParamSet,
    /// Partitions using this set.
    pub partitions: Vec<usize>,
    /// PBS output variance (torus-normalised).
    pub br_variance: f64,
    /// Keyswitch variance.
    pub ks_variance: f64,
    /// Modulus-switch variance.
    pub ms_variance: f64,
    /// Model cost of one PBS.
    pub pbs_cost: f64,
    /// Model cost of one keyswitch.
    pub ks_cost: f64,
    /// Model cost of everything executed under the set (TLUs and levelled work).
    pub cost: f64,
}

/// The keyswitches of a crossing between two sets: from the producer set's big key straight
/// into the consumer set's small key, with the consumer's keyswitch decomposition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversion {
    /// Index into [`Problem::crossings`].
    pub crossing: usize,
    /// Set of the producing partition.
    pub from_set: usize,
    /// Set of the consuming partition.
    pub to_set: usize,
    /// Decomposition base log (the consumer set's keyswitch base log).
    pub base_log: usize,
    /// Decomposition levels (the consumer set's keyswitch levels).
    pub level: usize,
    /// Keyswitch variance of one such keyswitch (replacing the consumer's own).
    pub variance: f64,
    /// Model cost of the crossing's keyswitches beyond what the consumer set's own keyswitches
    /// would cost (negative when the producer's big key is smaller).
    pub cost: f64,
}

/// The optimizer's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    /// The chosen sets.
    pub sets: Vec<ChosenSet>,
    /// For each partition, the index of its set in [`Solution::sets`].
    pub partition_sets: Vec<usize>,
    /// Conversion keyswitches between sets.
    pub conversions: Vec<Conversion>,
    /// Total model cost (sets and conversions), in Concrete's cost model whatever the
    /// objective.
    pub cost: f64,
    /// The objective the solution minimises.
    #[serde(default)]
    pub objective: Objective,
    /// Single-thread latency of every bootstrap, keyswitch and conversion of the program
    /// under the calibrated latency model, in seconds.
    #[serde(default)]
    pub estimated_latency_s: f64,
    /// Cost of the best single set for all partitions (`None` when no single set fits).
    pub single_set_cost: Option<f64>,
    /// The per-TLU error target the search used.
    pub p_error_target: f64,
    /// Predicted per-TLU error of each partition.
    pub partition_p_errors: Vec<f64>,
    /// Worst predicted per-TLU error.
    pub p_error: f64,
    /// Predicted probability that any TLU of the program fails.
    pub global_p_error: f64,
}

/// Why no parameters were produced.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OptimizeError {
    /// The request itself is malformed.
    #[error("invalid optimizer input: {0}")]
    InvalidInput(String),
    /// No point of the search space meets a partition's requirement.
    #[error(
        "no secure parameters for {precision} bits at norm2 {norm2} and p_error {p_error:.3e} \
         (partition {partition}); {relaxation}"
    )]
    Infeasible {
        /// Index of the partition that cannot be served.
        partition: usize,
        /// Its precision.
        precision: u8,
        /// Its norm2.
        norm2: f64,
        /// The per-TLU error target.
        p_error: f64,
        /// The nearest feasible relaxations, in words.
        relaxation: String,
    },
    /// Every partition fits alone but no assignment of sets satisfies the crossings.
    #[error(
        "no parameter assignment satisfies the noise of the crossings between partitions: {0}"
    )]
    InfeasibleCrossings(String),
}
