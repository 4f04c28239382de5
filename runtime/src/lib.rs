//! # veil-runtime: keys, encryption and execution of TFHE-level veil programs
//!
//! The runtime takes a lowered program (a `veil_ir::Graph` at `Level::Tfhe`) and runs it on
//! ciphertexts with `tfhe::core_crypto`:
//!
//! - [`keys`]: [`ClientKeys`] (secret), [`CompressedServerKeys`] (seeded transport form) and
//!   [`ServerKeys`] (Fourier bootstrap keys and keyswitch keys), generated from a seed;
//!   [`cache`]: an opt-in on-disk key cache (stores secrets).
//! - [`encrypt`]: encoding, encryption and decryption of integer tensors.
//! - [`ciphertext`]: LWE ciphertexts as elements of the shared levelled kernels.
//! - [`pbs`]: keyswitch and (many-LUT) programmable bootstrap on ciphertexts and tensors.
//! - [`exec`]: the executor (parallel, sized thread pool, progress); [`sim`]: the same program
//!   on clear integers with injected bootstrap errors.
//! - [`artifact`]: the server artifact (lowered program, statistics, program id), the
//!   encrypted batches client and server exchange, and the artifact envelope.
//! - [`serial`]: versioned, checksummed serialization of parameters, keys and ciphertexts.
//! - [`wopbs`]: lookups of up to 16-bit inputs by WoP-PBS (bit extraction, circuit bootstrap,
//!   vertical packing), their parameters and keys.
//! - [`reference`](mod@reference): Concrete's reference parameter sets for tests and benchmarks.
//!
//! Typical flow:
//!
//! ```text
//! client: let (ck, csk) = keygen(&program, &KeygenOptions { seed, ..Default::default() })?;
//!         send csk.to_bytes()?; let inputs = ck.encrypt_inputs(&program, &clear)?;
//! server: let sk = CompressedServerKeys::from_bytes(&bytes)?.decompress();
//!         let outputs = Executor::new(threads)?.run(&program, &sk, inputs)?;
//! client: let clear_outputs = ck.decrypt_outputs(&program, &outputs)?;
//! ```
//!
//! Server-side artifacts never contain secret key material.

pub mod artifact;
pub mod cache;
pub mod ciphertext;
pub mod encrypt;
pub mod error;
pub mod exec;
pub mod keys;
pub mod params;
pub mod pbs;
pub mod reference;
pub mod serial;
pub mod sim;
pub mod wopbs;

pub use cache::KeyCache;
pub use ciphertext::{CtTensor, Lwe, Value};
pub use error::{Result, RuntimeError};
pub use exec::{run, Executor, Progress, ProgressFn};
pub use keys::{
    keygen, ClientKeys, CompressedServerKeys, KeyRequirements, KeySizes, KeygenOptions, ServerKeys,
};
pub use pbs::Accumulator;
pub use reference::reference_params;
pub use sim::{simulate, SimOptions, SimReport};
pub use wopbs::{wop_lookup, CompressedWopKeys, WopKeys, WopParams};
