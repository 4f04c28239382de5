//! The program corpus: realistic tensor programs in `tests/corpus/*.veil`, shared by the corpus
//! harness (`tests/tests/corpus.rs`) and the cost benchmark (`benches/benches/corpus_cost.rs`).
//!
//! A corpus file is a golden file (header comment saying what it computes, hand-checked
//! `; run:` lines, see the crate docs). Its file name starts with its category (`arith_`,
//! `cmp_`, `pw_`, `poly_`, `dot_`, `mlp_`, `bits_`, `sort4_`, `hamming_`, `dtree_`, and `np_`
//! for numpy-style programs, which state their optimum bootstrap count: [`Entry::stated_pbs`]).
//!
//! Inputsets are derived from the declared input types, deterministically:
//! - when the input space (every combination of every input element) has at most
//!   [`EXHAUSTIVE_LIMIT`] points, the inputset is the whole space, so calibration is exact and
//!   every input of the declared types is covered;
//! - otherwise the inputset is empty and the bit-width pass propagates the declared input
//!   ranges (sound intervals), so that any input of the declared types, in particular the
//!   seeded random test inputs, stays inside the compiled ranges.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use veil_compiler::passes::DEFAULT_PIPELINE;
use veil_compiler::program::CompileConfig;
use veil_ir::text::parse;
use veil_ir::{Graph, IntType, Tensor};

/// Largest input space enumerated exhaustively (calibration and simulation tests).
pub const EXHAUSTIVE_LIMIT: u128 = 4096;

/// The pipeline without the rewrite pass: every non-levelled op is lowered as it is (one
/// lookup per element, two for an encrypted product).
pub const NAIVE_PIPELINE: &[&str] = &["bitwidth", "desugar", "dce"];

/// One corpus program.
#[derive(Clone, Debug)]
pub struct Entry {
    /// File name without `.veil`.
    pub name: String,
    /// Path of the file.
    pub path: PathBuf,
    /// The file's text.
    pub src: String,
    /// The parsed, verified program.
    pub graph: Graph,
}

impl Entry {
    /// The category: the file name up to its first `_`.
    pub fn category(&self) -> &str {
        self.name.split('_').next().unwrap_or(&self.name)
    }

    /// The bootstrap count stated by the file's `; KEY: N pbs (why)` line, if it has one:
    /// `optimum` (the fewest bootstraps the program needs, argued in the line) or `veil` (what
    /// veil compiles it to where it misses the optimum).
    pub fn stated_pbs(&self, key: &str) -> Option<Result<u64, String>> {
        stated_pbs(&self.src, key)
    }
}

/// The bootstrap count a `; KEY: N pbs (...)` line of `src` states, if any.
pub fn stated_pbs(src: &str, key: &str) -> Option<Result<u64, String>> {
    let prefix = format!("; {key}:");
    let line = src.lines().find(|l| l.starts_with(&prefix))?;
    let rest = line[prefix.len()..].trim_start();
    let n = rest.split_whitespace().next().unwrap_or_default();
    Some(
        match (n.parse(), rest[n.len()..].trim_start().starts_with("pbs")) {
            (Ok(n), true) => Ok(n),
            _ => Err(format!("bad line {line:?}: want '{prefix} N pbs (why)'")),
        },
    )
}

/// The corpus directory.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Every corpus program, sorted by name. Panics with the file and the parse error if one
/// does not parse: the corpus is fixed input.
pub fn load() -> Vec<Entry> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/corpus exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "veil"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let src = std::fs::read_to_string(&path).expect("readable corpus file");
            let name = path
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let graph = parse(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
            Entry {
                name,
                path,
                src,
                graph,
            }
        })
        .collect()
}

/// Declared types of the inputs of `g`, in input order.
fn input_types(g: &Graph) -> Vec<veil_ir::TensorType> {
    g.inputs().iter().map(|v| g.ty(*v).clone()).collect()
}

/// Number of points of the input space of `g` (saturating at `u128::MAX`).
pub fn input_space(g: &Graph) -> u128 {
    input_types(g).iter().fold(1u128, |acc, t| {
        (0..t.numel()).fold(acc, |a, _| a.saturating_mul(t.int.domain_size()))
    })
}

/// Every input of `g`'s declared types, if there are at most [`EXHAUSTIVE_LIMIT`].
pub fn all_inputs(g: &Graph) -> Option<Vec<Vec<Tensor<i64>>>> {
    if input_space(g) > EXHAUSTIVE_LIMIT {
        return None;
    }
    let types = input_types(g);
    // one digit per element of every input, mixed radix
    let digits: Vec<IntType> = types
        .iter()
        .flat_map(|t| std::iter::repeat_n(t.int, t.numel()))
        .collect();
    let total = input_space(g);
    let mut out = Vec::with_capacity(total as usize);
    for mut code in 0..total {
        let mut values = digits.iter().map(|int| {
            let d = int.domain_size();
            let v = IntType::min(*int) + (code % d) as i128;
            code /= d;
            v as i64
        });
        let sample = types
            .iter()
            .map(|t| {
                let data: Vec<i64> = values.by_ref().take(t.numel()).collect();
                Tensor::new(t.shape.clone(), data).expect("shape matches numel")
            })
            .collect();
        out.push(sample);
    }
    Some(out)
}

/// A uniform value of `t`'s range (capped at `i64::MAX`, the largest sample element).
pub fn random_value(rng: &mut impl Rng, t: IntType) -> i64 {
    let hi = t.max().min(i64::MAX as i128) as i64;
    rng.gen_range(t.min() as i64..=hi)
}

/// One sample of `g`'s declared input types, uniform, drawn from `rng`.
pub fn random_sample(g: &Graph, rng: &mut impl Rng) -> Vec<Tensor<i64>> {
    input_types(g)
        .iter()
        .map(|t| {
            let data = (0..t.numel()).map(|_| random_value(rng, t.int)).collect();
            Tensor::new(t.shape.clone(), data).expect("shape matches numel")
        })
        .collect()
}

/// `n` inputs of `g`'s declared types, uniform, from `seed` (ChaCha8: the same on every
/// platform and release of `rand_chacha` 0.3).
pub fn random_inputs(g: &Graph, n: usize, seed: u64) -> Vec<Vec<Tensor<i64>>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| random_sample(g, &mut rng)).collect()
}

/// The calibration inputset of `g` (see the module docs): the whole input space when it is
/// small, else empty (declared input ranges).
pub fn inputset(g: &Graph) -> Vec<Vec<Tensor<i64>>> {
    all_inputs(g).unwrap_or_default()
}

/// Test inputs: the whole input space when it is small, else `n` seeded random inputs.
pub fn test_inputs(g: &Graph, n: usize, seed: u64) -> Vec<Vec<Tensor<i64>>> {
    all_inputs(g).unwrap_or_else(|| random_inputs(g, n, seed))
}

/// The default compilation (the default pass pipeline, rewriting included).
pub fn default_config() -> CompileConfig {
    CompileConfig {
        pipeline: DEFAULT_PIPELINE.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// The naive compilation: [`NAIVE_PIPELINE`], no rewriting.
pub fn naive_config() -> CompileConfig {
    CompileConfig {
        pipeline: NAIVE_PIPELINE.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}
