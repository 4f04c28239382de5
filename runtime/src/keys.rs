//! Keys: secret [`ClientKeys`], evaluation [`ServerKeys`] and their seeded transport form
//! [`CompressedServerKeys`], generated deterministically from a seed.
//!
//! Every parameter set `@pK` owns a small LWE secret key (dimension `n`) and a GLWE secret key
//! (`k`, `N`) whose flattening is the big LWE key (dimension `k * N`). The server gets a Fourier
//! bootstrap key per set that bootstraps and a keyswitch key per `(from, to)` key pair a
//! program's `keyswitch` ops use ([`KeyRequirements::of`]). A keyswitch key uses the
//! decomposition of the *destination* key's set and that key's noise. A keyswitch key into the
//! small key of a KS32 set (`ks_modulus=2^32`) lives modulo `2^32` in `u32` words ([`Ksk::Q32`]):
//! tfhe-rs's KS32 atomic pattern.
//!
//! Seeds are domain-separated per key (`sha256(seed, purpose, indices)`), so the key of one set
//! does not depend on which other sets are generated.

use crate::error::{Result, RuntimeError};
use crate::params::{check_all, fingerprint_all, modulus, Tfhe};
use crate::wopbs::{CompressedWopKeys, WopKeys, WopParams};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use tfhe::core_crypto::commons::generators::DeterministicSeeder;
use tfhe::core_crypto::commons::math::random::Seed;
use tfhe::core_crypto::prelude::*;
use veil_ir::{Graph, KeyId, KsModulus, Level, Op, ParamSet};

/// Whether keyswitch keys into `to` are KS32 keys (`u32`, modulo `2^32`): `to` is the small key
/// of a set with `ks_modulus=2^32`. Keys into a big key stay 64-bit.
pub(crate) fn ks32_target(params: &[ParamSet], to: KeyId) -> bool {
    matches!(to, KeyId::Small(p) if params.get(p as usize).is_some_and(|s| s.ks_modulus == KsModulus::Q32))
}

/// A keyswitch key in seeded form: `u64` words, or `u32` words for a KS32 destination.
#[derive(Clone, Debug, PartialEq)]
pub enum SeededKsk {
    /// Modulo `2^64`.
    Q64(SeededLweKeyswitchKeyOwned<u64>),
    /// Modulo `2^32` (KS32).
    Q32(SeededLweKeyswitchKeyOwned<u32>),
}

/// An expanded keyswitch key: `u64` words, or `u32` words for a KS32 destination.
#[derive(Clone, Debug, PartialEq)]
pub enum Ksk {
    /// Modulo `2^64`.
    Q64(LweKeyswitchKeyOwned<u64>),
    /// Modulo `2^32` (KS32): [`crate::ServerKeys::keyswitch`] runs tfhe's
    /// `keyswitch_lwe_ciphertext_with_scalar_change` and returns the result on the 64-bit torus
    /// (the `u32` words in the top half), which the bootstrap's modulus switch reads exactly.
    Q32(LweKeyswitchKeyOwned<u32>),
}

impl SeededKsk {
    /// Input LWE dimension.
    pub fn input_key_lwe_dimension(&self) -> LweDimension {
        match self {
            SeededKsk::Q64(k) => k.input_key_lwe_dimension(),
            SeededKsk::Q32(k) => k.input_key_lwe_dimension(),
        }
    }

    /// Bytes stored (the bodies: one word per input coefficient and level).
    pub fn stored_bytes(&self) -> u64 {
        match self {
            SeededKsk::Q64(k) => 8 * k.as_ref().len() as u64,
            SeededKsk::Q32(k) => 4 * k.as_ref().len() as u64,
        }
    }

    /// Bytes of the expanded key.
    pub fn expanded_bytes(&self) -> u64 {
        let (word, lvl, size) = match self {
            SeededKsk::Q64(k) => (8, k.decomposition_level_count().0, k.output_lwe_size().0),
            SeededKsk::Q32(k) => (4, k.decomposition_level_count().0, k.output_lwe_size().0),
        };
        word * self.input_key_lwe_dimension().0 as u64 * lvl as u64 * size as u64
    }

    /// Expands the seed (parallel).
    pub fn decompress(&self) -> Ksk {
        match self {
            SeededKsk::Q64(k) => Ksk::Q64(k.clone().par_decompress_into_lwe_keyswitch_key()),
            SeededKsk::Q32(k) => Ksk::Q32(k.clone().par_decompress_into_lwe_keyswitch_key()),
        }
    }
}

impl Ksk {
    /// Input LWE dimension.
    pub fn input_key_lwe_dimension(&self) -> LweDimension {
        match self {
            Ksk::Q64(k) => k.input_key_lwe_dimension(),
            Ksk::Q32(k) => k.input_key_lwe_dimension(),
        }
    }

    /// Output LWE size (dimension + 1).
    pub fn output_lwe_size(&self) -> LweSize {
        match self {
            Ksk::Q64(k) => k.output_lwe_size(),
            Ksk::Q32(k) => k.output_lwe_size(),
        }
    }
}

/// The key material a program needs on the server.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyRequirements {
    /// Parameter sets whose bootstrap key is needed (sets with a `pbs`).
    pub bsk: BTreeSet<u32>,
    /// Keyswitch keys `(from, to)` needed by `keyswitch` ops.
    pub ksk: BTreeSet<(KeyId, KeyId)>,
    /// WoP-PBS keys per parameter set with a `wop.pbs` (its parameters: the set and the
    /// op's decompositions).
    pub wop: BTreeMap<u32, WopParams>,
}

/// The WoP-PBS parameters a `wop.pbs` op states for its set `@p{param}` of `program`.
pub fn wop_params_of(program: &Graph, param: u32, op: &Op) -> Result<Option<WopParams>> {
    let Op::WopPbs {
        pfks_base_log,
        pfks_level,
        cbs_base_log,
        cbs_level,
        out_bits,
        ..
    } = op
    else {
        return Ok(None);
    };
    let set = program.params.get(param as usize).ok_or_else(|| {
        RuntimeError::Program(format!(
            "a wop.pbs uses @p{param} but the program declares {} parameter set(s)",
            program.params.len()
        ))
    })?;
    Ok(Some(WopParams {
        set: set.clone(),
        pfks_base_log: *pfks_base_log as usize,
        pfks_level: *pfks_level as usize,
        cbs_base_log: *cbs_base_log as usize,
        cbs_level: *cbs_level as usize,
        out_bits: *out_bits,
    }))
}

impl KeyRequirements {
    /// What a TFHE-level program needs.
    pub fn of(program: &Graph) -> Result<Self> {
        if program.level != Level::Tfhe {
            return Err(RuntimeError::Program(
                "keys are generated for TFHE-level programs; lower the program first".into(),
            ));
        }
        let mut r = KeyRequirements::default();
        let key_of = |v| {
            program.ty(v).encoding.map(|e| e.key).ok_or_else(|| {
                RuntimeError::Program(format!("value {v} has no encoding at the TFHE level"))
            })
        };
        for v in program.values() {
            match program.op(v) {
                Op::Pbs { .. } => {
                    r.bsk.insert(key_of(v)?.param());
                }
                op @ Op::WopPbs { .. } => {
                    let p = key_of(v)?.param();
                    let w = wop_params_of(program, p, op)?.expect("a wop.pbs");
                    match r.wop.get(&p) {
                        Some(old) if *old != w => {
                            return Err(RuntimeError::Program(format!(
                                "wop.pbs {v} states other decompositions for @p{p} than an earlier wop.pbs; all lookups of one set share its WoP-PBS keys"
                            )))
                        }
                        _ => {
                            r.wop.insert(p, w);
                        }
                    }
                }
                Op::KeySwitch
                | Op::KeySwitchShr { .. }
                | Op::KeySwitchBit { .. }
                | Op::KeySwitchRound { .. } => {
                    let a = program.operands(v);
                    let from = key_of(*a.first().ok_or_else(|| {
                        RuntimeError::Program(format!("keyswitch {v} has no operand"))
                    })?)?;
                    let to = key_of(v)?;
                    if from != to {
                        r.ksk.insert((from, to));
                    }
                }
                // no key of their own: levelled ops use none, tensor-level ops are lowered
                // first (the verifier refuses them at the TFHE level)
                Op::Input { .. }
                | Op::Const { .. }
                | Op::Add
                | Op::Sub
                | Op::Neg
                | Op::Mul
                | Op::MatMul
                | Op::Conv2d(_)
                | Op::Sum { .. }
                | Op::Reshape
                | Op::Transpose { .. }
                | Op::Broadcast
                | Op::Concat { .. }
                | Op::Slice { .. }
                | Op::Tlu { .. }
                | Op::TluMulti { .. }
                | Op::Cmp(_)
                | Op::Min
                | Op::Max
                | Op::Relu
                | Op::Binary(_)
                | Op::Unary(_)
                | Op::Where
                | Op::Abs
                | Op::Round { .. }
                | Op::Clip { .. }
                | Op::Output { .. } => {}
            }
        }
        for k in r
            .bsk
            .iter()
            .copied()
            .chain(r.ksk.iter().flat_map(|(a, b)| [a.param(), b.param()]))
        {
            if k as usize >= program.params.len() {
                return Err(RuntimeError::Program(format!(
                    "the program uses @p{k} but declares {} parameter set(s)",
                    program.params.len()
                )));
            }
        }
        Ok(r)
    }
}

/// Derives an independent seed for one purpose from the master seed.
pub(crate) fn derive_seed(master: u128, purpose: &str, a: u64, b: u64) -> Seed {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"veil-keygen-v1");
    h.update(master.to_le_bytes());
    h.update((purpose.len() as u64).to_le_bytes());
    h.update(purpose.as_bytes());
    h.update(a.to_le_bytes());
    h.update(b.to_le_bytes());
    let d = h.finalize();
    Seed(u128::from_le_bytes(d[..16].try_into().expect("16 bytes")))
}

fn key_code(k: KeyId) -> u64 {
    match k {
        KeyId::Big(p) => (p as u64) << 1,
        KeyId::Small(p) => ((p as u64) << 1) | 1,
    }
}

/// The secret keys of one parameter set.
#[derive(Clone, Debug)]
pub(crate) struct SecretPair {
    pub small: LweSecretKeyOwned<u64>,
    pub glwe: GlweSecretKeyOwned<u64>,
}

/// The client's secret keys for every parameter set of a program. Never send these to a
/// server: they decrypt everything.
pub struct ClientKeys {
    pub(crate) params: Vec<ParamSet>,
    pub(crate) tfhe: Vec<Tfhe>,
    pub(crate) secrets: Vec<SecretPair>,
    pub(crate) key_id: u64,
    pub(crate) master_seed: Option<u128>,
    pub(crate) rng: Mutex<EncryptionRandomGenerator<DefaultRandomGenerator>>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secret keys.
        f.debug_struct("ClientKeys")
            .field("params", &self.params.len())
            .field("key_id", &format_args!("{:016x}", self.key_id))
            .finish_non_exhaustive()
    }
}

/// Options of key generation.
#[derive(Clone, Debug, Default)]
pub struct KeygenOptions {
    /// Master seed: equal seeds and parameters give equal keys.
    pub seed: u128,
    /// Accept parameter sets below the 128-bit floor. For tests of the runtime only.
    pub allow_insecure_for_tests: bool,
}

impl ClientKeys {
    /// Generates the secret keys of every set of `params` from `opts.seed`. Refuses sets that
    /// miss the 128-bit floor unless `opts.allow_insecure_for_tests`.
    pub fn generate(params: &[ParamSet], opts: &KeygenOptions) -> Result<Self> {
        let tfhe = check_all(params, opts.allow_insecure_for_tests)?;
        let secrets = tfhe
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut g = SecretRandomGenerator::<DefaultRandomGenerator>::new(derive_seed(
                    opts.seed, "secret", i as u64, 0,
                ));
                let small = LweSecretKey::generate_new_binary(t.n, &mut g);
                let glwe = GlweSecretKey::generate_new_binary(t.k, t.poly, &mut g);
                SecretPair { small, glwe }
            })
            .collect();
        Self::assemble(
            params.to_vec(),
            tfhe,
            secrets,
            Some(opts.seed),
            derive_seed(opts.seed, "encrypt", 0, 0),
        )
    }

    pub(crate) fn assemble(
        params: Vec<ParamSet>,
        tfhe: Vec<Tfhe>,
        secrets: Vec<SecretPair>,
        master_seed: Option<u128>,
        enc_seed: Seed,
    ) -> Result<Self> {
        let key_id = key_id_of(&params, &secrets);
        let mut seeder = DeterministicSeeder::<DefaultRandomGenerator>::new(enc_seed);
        let rng = EncryptionRandomGenerator::new(seeder.seed(), &mut seeder);
        Ok(ClientKeys {
            params,
            tfhe,
            secrets,
            key_id,
            master_seed,
            rng: Mutex::new(rng),
        })
    }

    /// Parameter sets, `@p0` first.
    pub fn params(&self) -> &[ParamSet] {
        &self.params
    }

    /// Identifier of this key generation (a hash of the secret keys); ciphertexts and server
    /// keys carry it so that mixing keys is an error.
    pub fn key_id(&self) -> u64 {
        self.key_id
    }

    /// Restarts the encryption randomness from `seed` (for reproducible tests and benches).
    pub fn reseed_encryption(&self, seed: u128) {
        let mut seeder =
            DeterministicSeeder::<DefaultRandomGenerator>::new(derive_seed(seed, "encrypt", 1, 0));
        let rng = EncryptionRandomGenerator::new(seeder.seed(), &mut seeder);
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = rng;
    }

    /// The secret LWE key of `key` (the flattened GLWE key for a big key).
    pub(crate) fn lwe_key(&self, key: KeyId) -> Result<LweSecretKeyView<'_, u64>> {
        let s = self.secrets.get(key.param() as usize).ok_or_else(|| {
            RuntimeError::MissingKey(format!(
                "secret key {key}: these client keys cover {} parameter set(s)",
                self.secrets.len()
            ))
        })?;
        Ok(match key {
            KeyId::Big(_) => s.glwe.as_lwe_secret_key(),
            KeyId::Small(_) => s.small.as_view(),
        })
    }

    /// Noise of fresh encryptions under `key`.
    pub(crate) fn noise(&self, key: KeyId) -> DynamicDistribution<u64> {
        let t = &self.tfhe[key.param() as usize];
        match key {
            KeyId::Big(_) => t.glwe_noise,
            KeyId::Small(_) => t.lwe_noise,
        }
    }

    /// Generates the (seeded, compressed) server keys for `req`. Deterministic in the master
    /// seed when the client keys were generated (not loaded); loaded keys need a `seed` here.
    pub fn server_keys(
        &self,
        req: &KeyRequirements,
        seed: Option<u128>,
    ) -> Result<CompressedServerKeys> {
        let master = seed.or(self.master_seed).ok_or_else(|| {
            RuntimeError::BadInput(
                "these client keys were loaded, not generated: pass a seed for the server keys"
                    .into(),
            )
        })?;
        let mut bsks = BTreeMap::new();
        for &p in &req.bsk {
            let t = *self.tfhe.get(p as usize).ok_or_else(|| {
                RuntimeError::MissingKey(format!("parameter set @p{p} for a bootstrap key"))
            })?;
            let s = &self.secrets[p as usize];
            let mut seeder = DeterministicSeeder::<DefaultRandomGenerator>::new(derive_seed(
                master, "bsk", p as u64, 0,
            ));
            let bsk = par_allocate_and_generate_new_seeded_lwe_bootstrap_key(
                &s.small,
                &s.glwe,
                t.pbs_base_log,
                t.pbs_level,
                t.glwe_noise,
                modulus(),
                &mut seeder,
            );
            bsks.insert(p, bsk);
        }
        let mut ksks = BTreeMap::new();
        for &(from, to) in &req.ksk {
            let input = self.lwe_key(from)?;
            let output = self.lwe_key(to)?;
            let t = &self.tfhe[to.param() as usize];
            let mut seeder = DeterministicSeeder::<DefaultRandomGenerator>::new(derive_seed(
                master,
                "ksk",
                key_code(from),
                key_code(to),
            ));
            let ksk = match t.ks32_noise {
                Some(noise) if ks32_target(&self.params, to) => {
                    let out32 = LweSecretKey::from_container(
                        output
                            .as_ref()
                            .iter()
                            .map(|&x| x as u32)
                            .collect::<Vec<u32>>(),
                    );
                    SeededKsk::Q32(allocate_and_generate_new_seeded_lwe_keyswitch_key(
                        &input,
                        &out32,
                        t.ks_base_log,
                        t.ks_level,
                        noise,
                        CiphertextModulus::<u32>::new_native(),
                        &mut seeder,
                    ))
                }
                _ => SeededKsk::Q64(allocate_and_generate_new_seeded_lwe_keyswitch_key(
                    &input,
                    &output,
                    t.ks_base_log,
                    t.ks_level,
                    self.noise(to),
                    modulus(),
                    &mut seeder,
                )),
            };
            ksks.insert((from, to), ksk);
        }
        let mut wops = BTreeMap::new();
        for (&p, w) in &req.wop {
            wops.insert(p, self.wop_keys(p, w, Some(master))?);
        }
        Ok(CompressedServerKeys {
            params: self.params.clone(),
            key_id: self.key_id,
            bsks,
            ksks,
            wops,
        })
    }
}

/// Hash of the secret keys: identifies a key generation without revealing it.
pub(crate) fn key_id_of(params: &[ParamSet], secrets: &[SecretPair]) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"veil-key-id-v1");
    h.update(fingerprint_all(params).to_le_bytes());
    for s in secrets {
        for &x in s.small.as_ref().iter().chain(s.glwe.as_ref()) {
            h.update([x as u8]);
        }
    }
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Evaluation keys in seeded form: the masks are replaced by a seed, about half the size (for
/// `k = 1`) of the expanded keys. This is what a client sends; the server calls
/// [`CompressedServerKeys::decompress`].
#[derive(Clone, Debug, PartialEq)]
pub struct CompressedServerKeys {
    pub(crate) params: Vec<ParamSet>,
    pub(crate) key_id: u64,
    pub(crate) bsks: BTreeMap<u32, SeededLweBootstrapKeyOwned<u64>>,
    pub(crate) ksks: BTreeMap<(KeyId, KeyId), SeededKsk>,
    pub(crate) wops: BTreeMap<u32, CompressedWopKeys>,
}

/// Sizes of evaluation keys in bytes (64-bit words times eight, KS32 keyswitch keys' 32-bit
/// words times four).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeySizes {
    /// Seeded (compressed) bootstrap keys.
    pub bsk_compressed: u64,
    /// Expanded bootstrap keys (standard domain; the Fourier form has the same size).
    pub bsk: u64,
    /// Seeded keyswitch keys.
    pub ksk_compressed: u64,
    /// Expanded keyswitch keys.
    pub ksk: u64,
    /// Seeded WoP-PBS keys (their bootstrap and keyswitch keys seeded, the PFPKS list not).
    pub wop_compressed: u64,
    /// Expanded WoP-PBS keys.
    pub wop: u64,
}

impl KeySizes {
    /// Total compressed size.
    pub fn compressed(&self) -> u64 {
        self.bsk_compressed + self.ksk_compressed + self.wop_compressed
    }
    /// Total expanded size.
    pub fn expanded(&self) -> u64 {
        self.bsk + self.ksk + self.wop
    }
}

impl std::fmt::Display for KeySizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: u64| b as f64 / 1e6;
        write!(
            f,
            "BSK {:.2} MB -> {:.2} MB seeded, KSK {:.2} MB -> {:.2} MB seeded, total {:.2} MB -> {:.2} MB",
            mb(self.bsk),
            mb(self.bsk_compressed),
            mb(self.ksk),
            mb(self.ksk_compressed),
            mb(self.expanded()),
            mb(self.compressed())
        )?;
        if self.wop > 0 {
            write!(
                f,
                " (of which WoP-PBS {:.2} MB -> {:.2} MB seeded)",
                mb(self.wop),
                mb(self.wop_compressed)
            )?;
        }
        Ok(())
    }
}

impl CompressedServerKeys {
    /// Parameter sets.
    pub fn params(&self) -> &[ParamSet] {
        &self.params
    }

    /// Identifier of the key generation.
    pub fn key_id(&self) -> u64 {
        self.key_id
    }

    /// Sizes before and after compression.
    pub fn sizes(&self) -> KeySizes {
        let mut s = KeySizes::default();
        for b in self.bsks.values() {
            s.bsk_compressed += 8 * b.as_ref().len() as u64;
            let n = b.input_lwe_dimension().0 as u64;
            let g = b.glwe_size().0 as u64;
            s.bsk += 8
                * n
                * g
                * g
                * b.polynomial_size().0 as u64
                * b.decomposition_level_count().0 as u64;
        }
        for k in self.ksks.values() {
            s.ksk_compressed += k.stored_bytes();
            s.ksk += k.expanded_bytes();
        }
        for w in self.wops.values() {
            let ws = w.sizes();
            s.wop_compressed += ws.compressed();
            s.wop += ws.expanded();
        }
        s
    }

    /// The WoP-PBS keys, per parameter set.
    pub fn wop_keys(&self) -> &BTreeMap<u32, CompressedWopKeys> {
        &self.wops
    }

    /// Expands the seeds and converts bootstrap keys to the Fourier domain (parallel on the
    /// current rayon pool).
    pub fn decompress(&self) -> ServerKeys {
        let bsks = self
            .bsks
            .iter()
            .map(|(&p, b)| {
                let std = b.clone().par_decompress_into_lwe_bootstrap_key();
                let mut f = FourierLweBootstrapKey::new(
                    std.input_lwe_dimension(),
                    std.glwe_size(),
                    std.polynomial_size(),
                    std.decomposition_base_log(),
                    std.decomposition_level_count(),
                );
                par_convert_standard_lwe_bootstrap_key_to_fourier(&std, &mut f);
                (p, f)
            })
            .collect();
        let ksks = self
            .ksks
            .iter()
            .map(|(&k, v)| (k, v.decompress()))
            .collect();
        let wops = self
            .wops
            .iter()
            .map(|(&p, w)| (p, w.decompress()))
            .collect();
        ServerKeys {
            params: self.params.clone(),
            key_id: self.key_id,
            bsks,
            ksks,
            wops,
        }
    }
}

/// Evaluation keys ready for computation: Fourier bootstrap keys and expanded keyswitch keys.
/// Contains no secret key material.
#[derive(Debug)]
pub struct ServerKeys {
    pub(crate) params: Vec<ParamSet>,
    pub(crate) key_id: u64,
    pub(crate) bsks: BTreeMap<u32, FourierLweBootstrapKeyOwned>,
    pub(crate) ksks: BTreeMap<(KeyId, KeyId), Ksk>,
    pub(crate) wops: BTreeMap<u32, WopKeys>,
}

impl ServerKeys {
    /// Parameter sets.
    pub fn params(&self) -> &[ParamSet] {
        &self.params
    }

    /// Identifier of the key generation.
    pub fn key_id(&self) -> u64 {
        self.key_id
    }

    /// Which keys these are (to compare with [`KeyRequirements::of`]).
    pub fn provides(&self) -> KeyRequirements {
        KeyRequirements {
            bsk: self.bsks.keys().copied().collect(),
            ksk: self.ksks.keys().copied().collect(),
            wop: self
                .wops
                .iter()
                .map(|(&p, w)| (p, w.params().clone()))
                .collect(),
        }
    }

    /// The WoP-PBS keys of set `@p{param}`, if these keys have them.
    pub fn wop(&self, param: u32) -> Option<&WopKeys> {
        self.wops.get(&param)
    }

    /// Checks that these keys serve `program`: same parameter sets and every needed key.
    pub fn check_serves(&self, program: &Graph) -> Result<()> {
        if fingerprint_all(&program.params) != fingerprint_all(&self.params) {
            return Err(RuntimeError::KeyMismatch(format!(
                "the server keys were generated for {} other parameter set(s) than the program's {}; regenerate keys for this program",
                self.params.len(),
                program.params.len()
            )));
        }
        let req = KeyRequirements::of(program)?;
        if let Some(p) = req.bsk.iter().find(|p| !self.bsks.contains_key(p)) {
            return Err(RuntimeError::MissingKey(format!("bootstrap key of @p{p}")));
        }
        if let Some((a, b)) = req.ksk.iter().find(|k| !self.ksks.contains_key(k)) {
            return Err(RuntimeError::MissingKey(format!(
                "keyswitch key {a} -> {b}"
            )));
        }
        for (p, w) in &req.wop {
            match self.wops.get(p) {
                None => {
                    return Err(RuntimeError::MissingKey(format!(
                        "WoP-PBS keys of @p{p}"
                    )))
                }
                Some(k) if k.params() != w => {
                    return Err(RuntimeError::KeyMismatch(format!(
                        "the WoP-PBS keys of @p{p} were generated for other decompositions than the program's"
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Generates client keys and compressed server keys for `program` in one go.
pub fn keygen(program: &Graph, opts: &KeygenOptions) -> Result<(ClientKeys, CompressedServerKeys)> {
    let req = KeyRequirements::of(program)?;
    let ck = ClientKeys::generate(&program.params, opts)?;
    let sk = ck.server_keys(&req, None)?;
    Ok((ck, sk))
}
/// `bytes` in human units (`48.6 MB`, decimal).
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.2} GB", b / 1e9),
    }
}
