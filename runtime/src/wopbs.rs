//! Wide table lookups (up to [`MAX_WOP_BITS`] input bits) by the WoP-PBS ("without padding"
//! programmable bootstrap) of Carpov, Izabachène and Mollimard and of Bergerat et al.
//! ("Parameter Optimization and Larger Precision for (T)FHE", J. Cryptology 2023), the
//! construction Concrete uses above 8 bits. A classic bootstrap of a `w`-bit input needs a test
//! polynomial of `2^(w+1)` coefficients or more; this one decomposes the lookup into small
//! operations whose count grows linearly in `w`:
//!
//! 1. **bit extraction**: `w` keyswitches and `w - 1` one-bit bootstraps peel the message
//!    bits off one at a time, least significant first, each into an LWE ciphertext of `q/2 * b`
//!    under the small key;
//! 2. **circuit bootstrap**: each bit becomes a GGSW ciphertext through `cbs_level` bootstraps
//!    and `cbs_level * (k + 1)` private functional packing keyswitches (PFPKS);
//! 3. **vertical packing**: a CMux tree over the `2^w / N` polynomials of the table selects one
//!    by the high bits, and a blind rotation by the low `log2 N` bits reads the entry; the result
//!    is sample-extracted under the big key.
//!
//! The building blocks are tfhe-rs's (`core_crypto::algorithms::lwe_wopbs`:
//! `extract_bits_from_lwe_ciphertext_mem_optimized`,
//! `circuit_bootstrap_boolean_vertical_packing_lwe_ciphertext_list_mem_optimized`,
//! `par_allocate_and_generate_new_circuit_bootstrap_lwe_pfpksk_list`).
//!
//! **Encodings.** Input and output are ordinary veil ciphertexts under the *big* key `@pK` of
//! the lookup's parameter set ([`WopParams::set`]): a `w`-bit message at `delta = 2^(63 - w)`
//! with one padding bit on top. The lookup reads the low `w` bits (the padding bit is ignored,
//! so the index is the message modulo `2^w`); its input noise must fit a `w`-bit message
//! (variance at most [`WopParams::input_variance_fraction`] of Concrete's `V_safe(w)`, which a
//! fresh encryption or a levelled sum of a few fresh ciphertexts meets). Table entries are
//! encoded with the output width; the output's noise (all CMuxes of the vertical packing) fits
//! messages of up to [`WopParams::out_bits`] bits, so wider results are read as several
//! ciphertexts, one per radix digit ([`WopKeys::lookup_digits`]). Since `V_safe(w - 1) =
//! 4 V_safe(w)`, an output fitting `out_bits` bits may feed lookups of up to `out_bits - 1`
//! input bits within the prediction (7 for the tabulated sets), not wider ones.
//!
//! **Keys.** A lookup set is an ordinary [`ParamSet`] (the client's secret keys come from
//! [`ClientKeys::generate`]) plus the PFPKS and circuit-bootstrap decompositions. The server
//! needs the set's bootstrap key, a keyswitch key from the big to the small key and the
//! circuit-bootstrap PFPKS key list (`k + 1` keys from the big LWE key to the GLWE key, the
//! largest part: `(k+1) (kN+1) l_pfks (k+1) N` words). [`CompressedWopKeys`] is the transport
//! form (seeded bootstrap and keyswitch keys), serialized like [`crate::keys`]' keys.

use crate::ciphertext::{encode, CtTensor, Lwe};
use crate::error::{Result, RuntimeError};
use crate::keys::{derive_seed, ClientKeys};
use crate::params::{fingerprint_all, modulus, tfhe, Tfhe};
use crate::serial::{check_fingerprint, check_len, size_of, Words};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tfhe::core_crypto::commons::generators::DeterministicSeeder;
use tfhe::core_crypto::commons::math::random::{CompressionSeed, Seed};
use tfhe::core_crypto::fft_impl::fft64::math::fft::Fft;
use tfhe::core_crypto::prelude::*;
use veil_ir::params::min_secure_noise_log2;
use veil_ir::serial::{decode_binary, encode_binary};
use veil_ir::{Encoding, KeyId, ModulusSwitch, NoiseDistribution, ParamSet, Tensor};

/// Widest lookup input this module evaluates (Concrete's cap on table-lookup inputs).
pub const MAX_WOP_BITS: u8 = 16;

/// Kind of serialized [`CompressedWopKeys`].
pub const KIND_WOP_KEYS: &str = "veil-wop-keys-seeded";

/// Parameters of a WoP-PBS lookup: a TFHE parameter set plus the circuit bootstrap's
/// decompositions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WopParams {
    /// The TFHE set: `n`, `k`, `N`, noise (Gaussian, standard modulus switch as tfhe-rs's bit
    /// extraction uses), the one-bit bootstraps' decomposition (`pbs_*`), the big-to-small
    /// keyswitch (`ks_*`); `message_bits` is the widest lookup input the set serves and
    /// `p_error` the predicted probability that one lookup of that width fails.
    pub set: ParamSet,
    /// Base log of the PFPKS keys (from the big LWE key to the GLWE key).
    pub pfks_base_log: usize,
    /// Levels of the PFPKS keys.
    pub pfks_level: usize,
    /// Base log of the GGSW ciphertexts the circuit bootstrap builds.
    pub cbs_base_log: usize,
    /// Levels of those GGSW ciphertexts (bootstraps per extracted bit).
    pub cbs_level: usize,
    /// Widest output message one lookup ciphertext carries at `p_error` (its noise is the
    /// vertical packing's).
    pub out_bits: u8,
}

impl WopParams {
    /// The noise budget fraction of `V_safe(w)` (Concrete's safe variance of a `w`-bit message
    /// at `p_error`) the input may use; the keyswitch and modulus switch of bit extraction
    /// take the rest. Predictions assume an input at this bound.
    pub fn input_variance_fraction() -> f64 {
        0.25
    }

    /// The tabulated set for lookups of `bits` input bits (1 to [`MAX_WOP_BITS`]), chosen by
    /// the compiler's search (`veil_compiler::optimizer::wop`, which re-derives and checks
    /// them): 128-bit secure, predicted `p_error <= 2^-40` per lookup, outputs of
    /// `min(bits, 8)` bits or more.
    pub fn for_bits(bits: u8) -> Result<WopParams> {
        if !(1..=MAX_WOP_BITS).contains(&bits) {
            return Err(RuntimeError::BadInput(format!(
                "WoP-PBS lookups take 1 to {MAX_WOP_BITS} input bits, got {bits}"
            )));
        }
        let (n, k, big_n, pbs, ks, pfks, cbs, out_bits, p_log2) = WOP_TABLE[bits as usize - 1];
        Ok(WopParams {
            set: ParamSet {
                lwe_dimension: n,
                glwe_dimension: k,
                polynomial_size: big_n,
                lwe_noise_log2: min_secure_noise_log2(n),
                glwe_noise_log2: min_secure_noise_log2(k * big_n),
                pbs_base_log: pbs.0,
                pbs_level: pbs.1,
                ks_base_log: ks.0,
                ks_level: ks.1,
                message_bits: bits,
                p_error: p_log2.exp2(),
                noise_distribution: NoiseDistribution::Gaussian,
                modulus_switch: ModulusSwitch::Standard,
                ks_modulus: Default::default(),
            },
            pfks_base_log: pfks.0,
            pfks_level: pfks.1,
            cbs_base_log: cbs.0,
            cbs_level: cbs.1,
            out_bits,
        })
    }

    /// Checks that the runtime can use these parameters (dimensions, decompositions, widths);
    /// security is checked where keys are generated.
    pub fn check(&self) -> Result<()> {
        let bad = |why: String| RuntimeError::BadParams { index: 0, why };
        tfhe(0, &self.set)?;
        if self.set.modulus_switch != ModulusSwitch::Standard {
            return Err(bad(
                "WoP-PBS bit extraction uses the standard modulus switch; set ms=standard".into(),
            ));
        }
        if self.set.ks_modulus != veil_ir::KsModulus::Q64 {
            return Err(bad(
                "WoP-PBS keyswitches with 64-bit keys; drop ks_modulus=2^32 from its set".into(),
            ));
        }
        if !(1..=MAX_WOP_BITS).contains(&self.set.message_bits) {
            return Err(bad(format!(
                "WoP-PBS sets serve 1 to {MAX_WOP_BITS} input bits, this one {}",
                self.set.message_bits
            )));
        }
        if !(1..=62).contains(&self.out_bits) {
            return Err(bad(format!(
                "output bits {} must be in 1..=62",
                self.out_bits
            )));
        }
        for (what, b, l) in [
            ("PFPKS", self.pfks_base_log, self.pfks_level),
            ("circuit bootstrap", self.cbs_base_log, self.cbs_level),
        ] {
            if b == 0 || l == 0 || b.saturating_mul(l) > 64 {
                return Err(bad(format!(
                    "{what} decomposition {b}x{l} needs base_log >= 1, levels >= 1 and base_log * levels <= 64"
                )));
            }
        }
        Ok(())
    }

    /// Size in bytes of the PFPKS key list: `(k+1) (kN+1) l_pfks (k+1) N` words.
    pub fn pfpksk_bytes(&self) -> u64 {
        let k1 = self.set.glwe_dimension as u64 + 1;
        let kn = self.set.big_lwe_dimension() as u64;
        8 * k1 * (kn + 1) * self.pfks_level as u64 * k1 * self.set.polynomial_size as u64
    }
}

impl std::fmt::Display for WopParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} + pfks={}x{}, cbs={}x{}, out_bits={}",
            self.set,
            self.pfks_base_log,
            self.pfks_level,
            self.cbs_base_log,
            self.cbs_level,
            self.out_bits
        )
    }
}

/// One tabulated set: `(n, k, N, pbs, ks, pfks, cbs, out_bits, log2 p_error rounded up)`,
/// decompositions as `(base_log, levels)`.
type WopRow = (
    usize,
    usize,
    usize,
    (usize, usize),
    (usize, usize),
    (usize, usize),
    (usize, usize),
    u8,
    f64,
);

/// The tabulated sets, inputs of 1 to 16 bits (see [`WopParams::for_bits`]).
const WOP_TABLE: [WopRow; 16] = [
    (580, 2, 1024, (16, 2), (2, 5), (25, 1), (10, 1), 1, -45.8),
    (580, 2, 1024, (16, 2), (2, 5), (17, 2), (11, 1), 2, -44.8),
    (580, 2, 1024, (12, 3), (2, 5), (17, 2), (13, 1), 3, -44.8),
    (580, 2, 1024, (9, 4), (2, 5), (17, 2), (13, 1), 4, -44.8),
    (580, 2, 1024, (12, 3), (2, 5), (17, 2), (8, 2), 7, -44.2),
    (580, 2, 1024, (12, 3), (2, 5), (17, 2), (8, 2), 6, -44.2),
    (580, 2, 1024, (9, 4), (2, 5), (17, 2), (9, 2), 8, -44.2),
    (580, 2, 1024, (9, 4), (2, 5), (17, 2), (9, 2), 8, -44.2),
    (580, 2, 1024, (9, 4), (2, 5), (12, 3), (9, 2), 8, -44.2),
    (580, 2, 1024, (9, 4), (2, 5), (12, 3), (9, 2), 8, -44.2),
    (580, 2, 1024, (9, 4), (2, 5), (12, 3), (9, 2), 8, -44.2),
    (580, 2, 1024, (12, 3), (2, 5), (17, 2), (6, 3), 8, -43.8),
    (580, 2, 1024, (12, 3), (2, 5), (17, 2), (6, 3), 8, -43.8),
    (580, 2, 1024, (12, 3), (2, 5), (17, 2), (6, 3), 8, -43.8),
    (580, 2, 1024, (12, 3), (2, 5), (17, 2), (6, 3), 8, -43.8),
    (580, 2, 1024, (12, 3), (2, 5), (17, 2), (6, 3), 8, -43.8),
];

/// The server's WoP-PBS keys in seeded (transport) form: what a client sends.
#[derive(Clone, Debug, PartialEq)]
pub struct CompressedWopKeys {
    params: WopParams,
    key_id: u64,
    bsk: SeededLweBootstrapKeyOwned<u64>,
    ksk: SeededLweKeyswitchKeyOwned<u64>,
    pfpksk: LwePrivateFunctionalPackingKeyswitchKeyListOwned<u64>,
}

/// The server's WoP-PBS keys ready for computation (Fourier bootstrap key, expanded keyswitch
/// key, PFPKS key list). Contains no secret key material.
pub struct WopKeys {
    params: WopParams,
    key_id: u64,
    fingerprint: u64,
    bsk: FourierLweBootstrapKeyOwned,
    ksk: LweKeyswitchKeyOwned<u64>,
    pfpksk: LwePrivateFunctionalPackingKeyswitchKeyListOwned<u64>,
}

impl std::fmt::Debug for WopKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WopKeys")
            .field("params", &self.params)
            .field("key_id", &format_args!("{:016x}", self.key_id))
            .finish_non_exhaustive()
    }
}

/// Sizes of WoP-PBS server keys in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WopKeySizes {
    /// Seeded bootstrap key.
    pub bsk_compressed: u64,
    /// Expanded bootstrap key (standard domain; the Fourier form has the same size).
    pub bsk: u64,
    /// Seeded keyswitch key (big to small).
    pub ksk_compressed: u64,
    /// Expanded keyswitch key.
    pub ksk: u64,
    /// PFPKS key list (not seeded).
    pub pfpksk: u64,
}

impl WopKeySizes {
    /// Total size of the transport form.
    pub fn compressed(&self) -> u64 {
        self.bsk_compressed + self.ksk_compressed + self.pfpksk
    }
    /// Total size of the expanded form.
    pub fn expanded(&self) -> u64 {
        self.bsk + self.ksk + self.pfpksk
    }
}

impl ClientKeys {
    /// Generates WoP-PBS server keys for parameter set `@p{param}` of these client keys, which
    /// must equal `wop.set`. Deterministic in the master seed (or `seed` for loaded keys);
    /// refuses sets below the 128-bit floor.
    pub fn wop_keys(
        &self,
        param: u32,
        wop: &WopParams,
        seed: Option<u128>,
    ) -> Result<CompressedWopKeys> {
        wop.check()?;
        if let Some(why) = wop.set.insecurity() {
            return Err(RuntimeError::Insecure {
                index: param as usize,
                why,
            });
        }
        if self.params.get(param as usize) != Some(&wop.set) {
            return Err(RuntimeError::KeyMismatch(format!(
                "the client keys' @p{param} is not the WoP-PBS set {}",
                wop.set
            )));
        }
        let master = seed.or(self.master_seed).ok_or_else(|| {
            RuntimeError::BadInput(
                "these client keys were loaded, not generated: pass a seed for the WoP-PBS keys"
                    .into(),
            )
        })?;
        let p = param as u64;
        Ok(generate(self, param, wop, &|what| {
            derive_seed(master, what, p, 0)
        }))
    }
}

/// The WoP-PBS keys of `wop` for set `param` of `ck` (no checks), each key from its own
/// seeder (`seed_of("wop-bsk" | "wop-ksk" | "wop-pfpksk")`).
fn generate(
    ck: &ClientKeys,
    param: u32,
    wop: &WopParams,
    seed_of: &dyn Fn(&str) -> Seed,
) -> CompressedWopKeys {
    let t: Tfhe = ck.tfhe[param as usize];
    let s = &ck.secrets[param as usize];
    let big = s.glwe.as_lwe_secret_key();
    let seeder = |what: &str| DeterministicSeeder::<DefaultRandomGenerator>::new(seed_of(what));
    let bsk = par_allocate_and_generate_new_seeded_lwe_bootstrap_key(
        &s.small,
        &s.glwe,
        t.pbs_base_log,
        t.pbs_level,
        t.glwe_noise,
        modulus(),
        &mut seeder("wop-bsk"),
    );
    let ksk = allocate_and_generate_new_seeded_lwe_keyswitch_key(
        &big,
        &s.small,
        t.ks_base_log,
        t.ks_level,
        t.lwe_noise,
        modulus(),
        &mut seeder("wop-ksk"),
    );
    let mut pf = seeder("wop-pfpksk");
    let mut rng = EncryptionRandomGenerator::<DefaultRandomGenerator>::new(pf.seed(), &mut pf);
    let pfpksk = par_allocate_and_generate_new_circuit_bootstrap_lwe_pfpksk_list(
        &big,
        &s.glwe,
        DecompositionBaseLog(wop.pfks_base_log),
        DecompositionLevelCount(wop.pfks_level),
        t.glwe_noise,
        modulus(),
        &mut rng,
    );
    CompressedWopKeys {
        params: wop.clone(),
        key_id: ck.key_id,
        bsk,
        ksk,
        pfpksk,
    }
}

impl CompressedWopKeys {
    /// The lookup parameters.
    pub fn params(&self) -> &WopParams {
        &self.params
    }

    /// Identifier of the key generation.
    pub fn key_id(&self) -> u64 {
        self.key_id
    }

    /// Sizes before and after expansion.
    pub fn sizes(&self) -> WopKeySizes {
        let p = &self.params.set;
        let g = p.glwe_dimension as u64 + 1;
        WopKeySizes {
            bsk_compressed: 8 * self.bsk.as_ref().len() as u64,
            bsk: 8 * p.lwe_dimension as u64 * g * g * p.polynomial_size as u64 * p.pbs_level as u64,
            ksk_compressed: 8 * self.ksk.as_ref().len() as u64,
            ksk: 8
                * p.big_lwe_dimension() as u64
                * p.ks_level as u64
                * (p.lwe_dimension as u64 + 1),
            pfpksk: 8 * self.pfpksk.as_ref().len() as u64,
        }
    }

    /// Expands the seeds and converts the bootstrap key to the Fourier domain.
    pub fn decompress(&self) -> WopKeys {
        let std = self.bsk.clone().par_decompress_into_lwe_bootstrap_key();
        let mut bsk = FourierLweBootstrapKey::new(
            std.input_lwe_dimension(),
            std.glwe_size(),
            std.polynomial_size(),
            std.decomposition_base_log(),
            std.decomposition_level_count(),
        );
        par_convert_standard_lwe_bootstrap_key_to_fourier(&std, &mut bsk);
        WopKeys {
            params: self.params.clone(),
            key_id: self.key_id,
            fingerprint: self.params.set.fingerprint(),
            bsk,
            ksk: self.ksk.clone().par_decompress_into_lwe_keyswitch_key(),
            pfpksk: self.pfpksk.clone(),
        }
    }

    /// Serializes the keys (no secret material) in veil's checksummed envelope.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(encode_binary(
            KIND_WOP_KEYS,
            &WopKeysFile {
                key_id: self.key_id,
                fingerprint: fingerprint_all(std::slice::from_ref(&self.params.set)),
                params: self.params.clone(),
                bsk_seed: self.bsk.compression_seed(),
                bsk: Words(self.bsk.as_ref().to_vec()),
                ksk_seed: self.ksk.compression_seed(),
                ksk: Words(self.ksk.as_ref().to_vec()),
                pfpksk: Words(self.pfpksk.as_ref().to_vec()),
            },
        )?)
    }

    /// Loads keys written by [`CompressedWopKeys::to_bytes`]: the envelope's checksum, the
    /// parameters' fingerprint and usability, and every key's size (computed from the
    /// parameters with overflow checks) are verified before any key is built.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        const W: &str = "WoP-PBS keys";
        let f: WopKeysFile = decode_binary(KIND_WOP_KEYS, data)?;
        let tfhe = check_fingerprint(W, std::slice::from_ref(&f.params.set), f.fingerprint)?;
        f.params.check()?;
        let t = tfhe[0];
        let g = t.k.to_glwe_size().0;
        let big = t.k.0 * t.poly.0; // bounded by check_fingerprint
        let want = size_of(W, "bootstrap key", &[t.n.0, t.pbs_level.0, g, t.poly.0])?;
        check_len(W, "bootstrap key", f.bsk.0.len(), want)?;
        let want = size_of(W, "keyswitch key", &[big, t.ks_level.0])?;
        check_len(W, "keyswitch key", f.ksk.0.len(), want)?;
        let want = size_of(
            W,
            "PFPKS key list",
            &[g, big + 1, f.params.pfks_level, g, t.poly.0],
        )?;
        check_len(W, "PFPKS key list", f.pfpksk.0.len(), want)?;
        let bsk = SeededLweBootstrapKey::from_container(
            f.bsk.0,
            t.k.to_glwe_size(),
            t.poly,
            t.pbs_base_log,
            t.pbs_level,
            f.bsk_seed,
            modulus(),
        );
        let ksk = SeededLweKeyswitchKey::from_container(
            f.ksk.0,
            t.ks_base_log,
            t.ks_level,
            LweSize(t.n.0 + 1),
            f.ksk_seed,
            modulus(),
        );
        let pfpksk = LwePrivateFunctionalPackingKeyswitchKeyList::from_container(
            f.pfpksk.0,
            DecompositionBaseLog(f.params.pfks_base_log),
            DecompositionLevelCount(f.params.pfks_level),
            LweSize(big + 1),
            t.k.to_glwe_size(),
            t.poly,
            modulus(),
        );
        Ok(CompressedWopKeys {
            params: f.params,
            key_id: f.key_id,
            bsk,
            ksk,
            pfpksk,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WopKeysFile {
    key_id: u64,
    fingerprint: u64,
    params: WopParams,
    bsk_seed: CompressionSeed,
    bsk: Words,
    ksk_seed: CompressionSeed,
    ksk: Words,
    pfpksk: Words,
}

impl WopKeys {
    /// The lookup parameters.
    pub fn params(&self) -> &WopParams {
        &self.params
    }

    /// Identifier of the key generation.
    pub fn key_id(&self) -> u64 {
        self.key_id
    }

    fn check_tables(&self, tables: &[&[i64]], in_bits: u8, out_width: u8) -> Result<()> {
        let p = &self.params;
        if !(1..=p.set.message_bits).contains(&in_bits) {
            return Err(RuntimeError::BadInput(format!(
                "these WoP-PBS keys serve lookups of 1 to {} input bits, got {in_bits}",
                p.set.message_bits
            )));
        }
        if !(1..=p.out_bits).contains(&out_width) {
            return Err(RuntimeError::BadInput(format!(
                "a WoP-PBS output carries 1 to {} bits under these parameters (its noise), got width {out_width}; read wider results as digits (lookup_digits)",
                p.out_bits
            )));
        }
        if tables.is_empty() {
            return Err(RuntimeError::BadInput("a lookup needs a table".into()));
        }
        let entries = 1usize << in_bits;
        let lo = -(1i64 << out_width);
        let hi = 1i64 << (out_width + 1);
        for t in tables {
            if t.len() != entries {
                return Err(RuntimeError::BadInput(format!(
                    "a table of a {in_bits}-bit input needs {entries} entries, got {}",
                    t.len()
                )));
            }
            if let Some((i, v)) = t.iter().enumerate().find(|(_, v)| !(lo..hi).contains(*v)) {
                return Err(RuntimeError::OutOfRange(format!(
                    "table entry {i} = {v} does not fit an output of width {out_width} ({lo}..{hi})"
                )));
            }
        }
        Ok(())
    }

    /// Evaluates `table` (`2^in_bits` entries) on the `in_bits`-bit message of `ct` (under the
    /// set's big key, width `in_bits`): an encryption of `table[m mod 2^in_bits]` under the big
    /// key with width `out_width` (at most [`WopParams::out_bits`]). A bare [`Lwe`] carries no
    /// key-generation tag: its dimension and width are checked, its key is the caller's
    /// responsibility ([`WopKeys::lookup_tensor`] checks both).
    pub fn lookup(&self, ct: &Lwe, table: &[i64], in_bits: u8, out_width: u8) -> Result<Lwe> {
        let mut out = self.lookup_many(ct, &[table], in_bits, out_width)?;
        Ok(out.pop().expect("one table, one output"))
    }

    /// Several tables of one input: the bit extraction and circuit bootstraps are shared, each
    /// table costs one vertical packing. Outputs in table order.
    pub fn lookup_many(
        &self,
        ct: &Lwe,
        tables: &[&[i64]],
        in_bits: u8,
        out_width: u8,
    ) -> Result<Vec<Lwe>> {
        self.check_tables(tables, in_bits, out_width)?;
        let big = self.bsk.output_lwe_dimension().0;
        if ct.dimension() != big {
            return Err(RuntimeError::KeyMismatch(format!(
                "WoP-PBS lookups take ciphertexts under the big key (dimension {big}), got dimension {}",
                ct.dimension()
            )));
        }
        if ct.width() != in_bits {
            return Err(RuntimeError::BadInput(format!(
                "a {}-bit ciphertext given to a {in_bits}-bit lookup",
                ct.width()
            )));
        }
        let poly = self.bsk.polynomial_size();
        let glwe_size = self.bsk.glwe_size();
        let small = self.ksk.output_key_lwe_dimension();
        let bits = in_bits as usize;
        let polys = (1usize << bits).div_ceil(poly.0);
        let mut lut = vec![0u64; tables.len() * polys * poly.0];
        for (chunk, t) in lut.chunks_exact_mut(polys * poly.0).zip(tables) {
            for (c, &v) in chunk.iter_mut().zip(t.iter()) {
                *c = encode(v, out_width);
            }
        }
        let lut = PolynomialList::from_container(lut, poly);
        let fft = Fft::new(poly);
        let fft = fft.as_view();
        let cbs_level = DecompositionLevelCount(self.params.cbs_level);
        let req = extract_bits_from_lwe_ciphertext_mem_optimized_requirement::<u64>(
            small,
            small,
            glwe_size,
            poly,
            fft,
        )
        .unaligned_bytes_required()
        .max(
            circuit_bootstrap_boolean_vertical_packing_lwe_ciphertext_list_mem_optimized_requirement::<u64>(
                LweCiphertextCount(bits),
                LweCiphertextCount(tables.len()),
                small.to_lwe_size(),
                PolynomialCount(lut.polynomial_count().0),
                self.bsk.output_lwe_dimension().to_lwe_size(),
                glwe_size,
                poly,
                cbs_level,
                fft,
            )
            .unaligned_bytes_required(),
        );
        let mut buf = ComputationBuffers::new();
        buf.resize(req);
        let input = LweCiphertext::from_container(&ct.data[..], modulus());
        let mut bit_cts = LweCiphertextList::new(
            0u64,
            small.to_lwe_size(),
            LweCiphertextCount(bits),
            modulus(),
        );
        extract_bits_from_lwe_ciphertext_mem_optimized(
            &input,
            &mut bit_cts,
            &self.bsk,
            &self.ksk,
            DeltaLog(63 - bits),
            ExtractedBitsCount(bits),
            fft,
            buf.stack(),
        );
        let mut out = LweCiphertextList::new(
            0u64,
            LweSize(big + 1),
            LweCiphertextCount(tables.len()),
            modulus(),
        );
        circuit_bootstrap_boolean_vertical_packing_lwe_ciphertext_list_mem_optimized(
            &bit_cts,
            &mut out,
            &lut,
            &self.bsk,
            &self.pfpksk,
            DecompositionBaseLog(self.params.cbs_base_log),
            cbs_level,
            fft,
            buf.stack(),
        );
        Ok(out
            .iter()
            .map(|c| Lwe::from_raw(c.as_ref().to_vec(), out_width))
            .collect())
    }

    /// A table whose results are wider than one output ciphertext carries, read as radix
    /// digits of `digit_bits` bits (least significant first, `ceil(result_bits / digit_bits)`
    /// of them): digit `j` encrypts `(table[m] >> (j * digit_bits)) mod 2^digit_bits`.
    /// Entries must be in `0..2^result_bits`.
    pub fn lookup_digits(
        &self,
        ct: &Lwe,
        table: &[i64],
        in_bits: u8,
        result_bits: u8,
        digit_bits: u8,
    ) -> Result<Vec<Lwe>> {
        if !(1..=62).contains(&result_bits) || digit_bits == 0 {
            return Err(RuntimeError::BadInput(format!(
                "digits of {digit_bits} bits of a {result_bits}-bit result"
            )));
        }
        if let Some((i, v)) = table
            .iter()
            .enumerate()
            .find(|(_, v)| !(0..(1i64 << result_bits)).contains(*v))
        {
            return Err(RuntimeError::OutOfRange(format!(
                "table entry {i} = {v} is not a {result_bits}-bit unsigned result"
            )));
        }
        let count = result_bits.div_ceil(digit_bits) as u32;
        let mask = (1i64 << digit_bits.min(62)) - 1;
        let digits: Vec<Vec<i64>> = (0..count)
            .map(|j| {
                let shift = (j * digit_bits as u32).min(63);
                table.iter().map(|&v| (v >> shift) & mask).collect()
            })
            .collect();
        let refs: Vec<&[i64]> = digits.iter().map(|d| &d[..]).collect();
        self.lookup_many(ct, &refs, in_bits, digit_bits)
    }

    /// [`WopKeys::lookup`] on every element of a tensor (in parallel on the current rayon
    /// pool): `ct` must be under this set's big key with width `in_bits`, from the same key
    /// generation; the result has encoding `(big key, out_width)`.
    pub fn lookup_tensor(&self, ct: &CtTensor, table: &[i64], out_width: u8) -> Result<CtTensor> {
        self.lookup_tensor_map(ct, &[table], &[], out_width)
    }

    /// [`WopKeys::lookup_tensor`] with one table per element: element `j` (row-major) is
    /// looked up in `tables[map[j]]` (`map` empty: every element in `tables[0]`, which must
    /// then be the only table). What `wop.pbs` executes.
    pub fn lookup_tensor_map(
        &self,
        ct: &CtTensor,
        tables: &[&[i64]],
        map: &[u32],
        out_width: u8,
    ) -> Result<CtTensor> {
        let n = ct.tensor.data.len();
        if map.is_empty() {
            if tables.len() != 1 {
                return Err(RuntimeError::BadInput(format!(
                    "{} tables without a map",
                    tables.len()
                )));
            }
        } else if map.len() != n {
            return Err(RuntimeError::BadInput(format!(
                "a map of {} entries for {n} ciphertexts",
                map.len()
            )));
        } else if let Some(m) = map.iter().find(|&&m| m as usize >= tables.len()) {
            return Err(RuntimeError::BadInput(format!(
                "map entry {m} names no table ({} given)",
                tables.len()
            )));
        }
        if ct.key_id != self.key_id {
            return Err(RuntimeError::KeyMismatch(format!(
                "ciphertexts of key generation {:016x} given to WoP-PBS keys {:016x}",
                ct.key_id, self.key_id
            )));
        }
        let KeyId::Big(p) = ct.encoding.key else {
            return Err(RuntimeError::BadInput(format!(
                "WoP-PBS lookups take ciphertexts under a big key, got {}",
                ct.encoding.key
            )));
        };
        if ct.param_fingerprint != self.fingerprint {
            return Err(RuntimeError::KeyMismatch(format!(
                "ciphertexts under {} were not made with this WoP-PBS set",
                ct.encoding.key
            )));
        }
        let in_bits = ct.encoding.width;
        self.check_tables(tables, in_bits, out_width)?;
        let data = ct
            .tensor
            .data
            .par_iter()
            .enumerate()
            .map(|(j, c)| {
                let t = tables[map.get(j).map_or(0, |&m| m as usize)];
                self.lookup(c, t, in_bits, out_width)
            })
            .collect::<Result<Vec<_>>>()?;
        CtTensor::new(
            Encoding {
                key: KeyId::Big(p),
                width: out_width,
            },
            self.key_id,
            self.fingerprint,
            Tensor::new(ct.tensor.shape.clone(), data)
                .map_err(|e| RuntimeError::shape("wop lookup", e))?,
        )
    }
}

/// Evaluates `table` on `ct` with `keys` ([`WopKeys::lookup`]).
pub fn wop_lookup(
    keys: &WopKeys,
    ct: &Lwe,
    table: &[i64],
    in_bits: u8,
    out_width: u8,
) -> Result<Lwe> {
    keys.lookup(ct, table, in_bits, out_width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeygenOptions;

    /// A tiny (insecure) set so that unit tests of the format run in milliseconds.
    fn tiny() -> WopParams {
        let mut p = WopParams::for_bits(4).unwrap();
        p.set.lwe_dimension = 16;
        p.set.polynomial_size = 64;
        p.set.glwe_dimension = 1;
        p
    }

    #[test]
    fn table_is_usable_and_secure() {
        for b in 1..=MAX_WOP_BITS {
            let p = WopParams::for_bits(b).unwrap();
            p.check().unwrap();
            assert!(p.set.is_secure(), "{b}: {:?}", p.set.insecurity());
            assert_eq!(p.set.message_bits, b);
            assert!(p.out_bits >= b.min(8));
        }
        assert!(WopParams::for_bits(0).is_err());
        assert!(WopParams::for_bits(17).is_err());
    }

    #[test]
    fn insecure_sets_are_refused() {
        let p = tiny();
        let opts = KeygenOptions {
            seed: 1,
            allow_insecure_for_tests: true,
        };
        let ck = ClientKeys::generate(std::slice::from_ref(&p.set), &opts).unwrap();
        let e = ck.wop_keys(0, &p, None).unwrap_err();
        assert!(matches!(e, RuntimeError::Insecure { .. }), "{e}");
    }

    #[test]
    fn format_checks_every_size() {
        let p = tiny();
        let opts = KeygenOptions {
            seed: 1,
            allow_insecure_for_tests: true,
        };
        let ck = ClientKeys::generate(std::slice::from_ref(&p.set), &opts).unwrap();
        // Bypass the security check: the format is what is tested here.
        let keys = wop_keys_unchecked(&ck, &p);
        let bytes = keys.to_bytes().unwrap();
        let back = CompressedWopKeys::from_bytes(&bytes).unwrap();
        assert_eq!(back, keys);
        // A PFPKS list one word short, re-enveloped with a valid checksum.
        let mut f: WopKeysFile = decode_binary(KIND_WOP_KEYS, &bytes).unwrap();
        f.pfpksk.0.pop();
        let e = CompressedWopKeys::from_bytes(&encode_binary(KIND_WOP_KEYS, &f).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("PFPKS key list holds"), "{e}");
        // Levels so large that the size overflows: an error, no allocation.
        let mut f: WopKeysFile = decode_binary(KIND_WOP_KEYS, &bytes).unwrap();
        f.params.pfks_level = usize::MAX / 2;
        f.params.pfks_base_log = 0;
        let e = CompressedWopKeys::from_bytes(&encode_binary(KIND_WOP_KEYS, &f).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("PFPKS"), "{e}");
        // Parameters changed under the same fingerprint.
        let mut f: WopKeysFile = decode_binary(KIND_WOP_KEYS, &bytes).unwrap();
        f.params.set.lwe_dimension += 1;
        let e = CompressedWopKeys::from_bytes(&encode_binary(KIND_WOP_KEYS, &f).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("fingerprint"), "{e}");
    }

    /// [`ClientKeys::wop_keys`] without the security check (format tests on tiny sets).
    fn wop_keys_unchecked(ck: &ClientKeys, p: &WopParams) -> CompressedWopKeys {
        generate(ck, 0, p, &|_| Seed(7))
    }
}
