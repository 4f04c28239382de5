//! `veil encrypt --client CLIENT_ARTIFACT --keys SECRET --input FILE.csv|.npy --out CT_FILE`:
//! encrypt samples, one program run per row (ML models: the rows are float features,
//! quantized with the client artifact's quantizers first; `.veil` programs: integers, every
//! input flattened in declaration order).

use super::io;
use super::CliError;
use std::path::PathBuf;
use veil_ml::artifact::{ClientArtifact, ClientModel, OutOfDomain};

use veil_runtime::artifact::{Direction, KIND_CLIENT_ARTIFACT};
use veil_runtime::serial::KIND_CLIENT_KEYS;
use veil_runtime::ClientKeys;

/// Arguments of `veil encrypt`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Input layout: one row per sample, as for `veil compile --inputset` \
(`veil inspect CLIENT_ARTIFACT` lists the inputs and their types).

Examples:
  veil encrypt --client build/client.veil-artifact --keys keys/secret.veil-keys --input x.csv --out x.veil-ct
  veil encrypt --client build/client.veil-artifact --keys keys/secret.veil-keys --input x.npy --out x.veil-ct"
)]
pub struct EncryptArgs {
    /// The client artifact from `veil compile`.
    #[arg(long)]
    pub client: PathBuf,
    /// The secret keys from `veil keygen`.
    #[arg(long)]
    pub keys: PathBuf,
    /// Samples to encrypt (`.csv` or `.npy`, one row per sample).
    #[arg(long)]
    pub input: PathBuf,
    /// The encrypted batch to write (send it to the server).
    #[arg(long)]
    pub out: PathBuf,
    /// ML models: the input column that holds labels (`last`, `first`, a 1-based column
    /// number or a header name); it is not encrypted.
    #[arg(long)]
    pub label_column: Option<String>,
    /// What to do with a sample outside the domain the program was compiled for (a value
    /// outside its calibrated interval, or an ML feature outside its calibrated range):
    /// `error` refuses it and encrypts nothing; `clamp-inputs` clamps the inputs into range
    /// (values computed from them must still be in range); `allow` encrypts it anyway, and
    /// its results MAY BE WRONG.
    #[arg(long, value_enum, default_value = "error")]
    pub out_of_domain: DomainPolicy,
}

/// `--out-of-domain`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainPolicy {
    /// Refuse the sample.
    Error,
    /// Clamp the inputs into range, then check again.
    ClampInputs,
    /// Encrypt anyway (results may be wrong).
    Allow,
}

impl From<DomainPolicy> for OutOfDomain {
    fn from(p: DomainPolicy) -> Self {
        match p {
            DomainPolicy::Error => OutOfDomain::Error,
            DomainPolicy::ClampInputs => OutOfDomain::ClampInputs,
            DomainPolicy::Allow => OutOfDomain::Allow,
        }
    }
}

/// Runs `veil encrypt`.
pub fn run(args: &EncryptArgs) -> Result<(), CliError> {
    let client = io::load(
        &args.client,
        KIND_CLIENT_ARTIFACT,
        ClientArtifact::from_bytes,
    )?;
    let keys = io::load_runtime(&args.keys, KIND_CLIENT_KEYS, ClientKeys::from_bytes)?;
    client
        .check_keys(&keys)
        .map_err(|e| io::artifact_error(&args.keys, &e))?;
    let (runs, samples) = match &client.model {
        ClientModel::Integers => {
            if args.label_column.is_some() {
                return Err(CliError(
                    "--label-column applies to ML models; this program takes integer inputs".into(),
                ));
            }
            let table = io::read_ints(&args.input)?;
            let runs = io::int_samples(&table, &client.inputs)?;
            let n = runs.len();
            (runs, n)
        }
        ClientModel::Quantized { spec, .. } => {
            let (x, _) = super::compile::read_features(
                &args.input,
                spec.n_features,
                &format!("the model's {} features", spec.n_features),
                args.label_column.as_deref(),
            )?;
            let runs = client
                .quantize_with(&x, args.out_of_domain.into())
                .map_err(|e| io::artifact_error(&args.input, &e))?;
            (runs, x.rows())
        }
    };
    let spin = io::spinner("encrypting");
    let batch = client
        .encrypt_with(&keys, &runs, samples, args.out_of_domain.into())
        .map_err(|e| io::artifact_error(&args.input, &e))?;
    spin.finish_and_clear();
    let bytes = batch
        .to_bytes(Direction::Inputs)
        .map_err(|e| io::artifact_error(&args.out, &e))?;
    io::write(&args.out, &bytes, false)?;
    println!(
        "encrypted {samples} sample(s) in {} run(s): wrote {} ({})",
        runs.len(),
        args.out.display(),
        io::size(bytes.len())
    );
    Ok(())
}
