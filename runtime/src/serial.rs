//! Serialization of parameter sets, keys and ciphertext tensors.
//!
//! Every artifact uses the envelope of `veil_ir::serial` (magic `VEIL`, format version, kind,
//! payload length, SHA-256 checksum, bincode payload), so truncated, bit-flipped or
//! wrong-kind data is rejected before decoding. Payloads also carry the fingerprint of their
//! parameter sets and the key generation id, and every dimension is checked against the
//! parameters on load: wrong keys or parameters give errors, never panics or garbage.
//!
//! Kinds: [`KIND_PARAMS`], [`KIND_CLIENT_KEYS`] (secret!), [`KIND_SERVER_KEYS`],
//! [`KIND_COMPRESSED_SERVER_KEYS`], [`KIND_CIPHERTEXT`]. Large integer arrays are stored as
//! little-endian bytes; the `u32` words of KS32 keyswitch keys two to a 64-bit word (low half
//! first, a zero half padding an odd count), so the files keep their layout and such a key
//! takes half the bytes.

use crate::ciphertext::{CtTensor, Lwe};
use crate::error::{Result, RuntimeError};
use crate::keys::{
    key_id_of, ks32_target, ClientKeys, CompressedServerKeys, Ksk, SecretPair, SeededKsk,
    ServerKeys,
};
use crate::params::{check_all, fingerprint_all, modulus, Tfhe};
use crate::wopbs::CompressedWopKeys;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tfhe::core_crypto::commons::math::random::CompressionSeed;
use tfhe::core_crypto::prelude::*;
use veil_ir::serial::{decode_binary, encode_binary};
use veil_ir::{Encoding, KeyId, ParamSet, Tensor};

/// Kind of a serialized [`ParamSet`].
pub const KIND_PARAMS: &str = "veil-params";
/// Kind of serialized [`ClientKeys`]: contains secret keys.
pub const KIND_CLIENT_KEYS: &str = "veil-client-keys";
/// Kind of serialized [`ServerKeys`] (Fourier bootstrap keys, expanded keyswitch keys).
pub const KIND_SERVER_KEYS: &str = "veil-server-keys";
/// Kind of serialized [`CompressedServerKeys`] (seeded).
pub const KIND_COMPRESSED_SERVER_KEYS: &str = "veil-server-keys-seeded";
/// Kind of a serialized [`CtTensor`].
pub const KIND_CIPHERTEXT: &str = "veil-ciphertext";

/// `Vec<u64>` stored as little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Words(pub(crate) Vec<u64>);

impl Serialize for Words {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut b = Vec::with_capacity(self.0.len() * 8);
        for x in &self.0 {
            b.extend_from_slice(&x.to_le_bytes());
        }
        s.serialize_bytes(&b)
    }
}

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Words;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a byte string of 64-bit words")
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> std::result::Result<Words, E> {
                if !b.len().is_multiple_of(8) {
                    return Err(E::custom(format!(
                        "{} bytes is not a whole number of words",
                        b.len()
                    )));
                }
                Ok(Words(
                    b.chunks_exact(8)
                        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect(),
                ))
            }
            fn visit_byte_buf<E: serde::de::Error>(
                self,
                b: Vec<u8>,
            ) -> std::result::Result<Words, E> {
                self.visit_bytes(&b)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

fn invalid(what: &'static str, why: impl Into<String>) -> RuntimeError {
    RuntimeError::Invalid {
        what,
        why: why.into(),
    }
}

pub(crate) fn check_len(what: &'static str, item: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(invalid(
            what,
            format!("{item} holds {got} words, its parameters need {want}"),
        ));
    }
    Ok(())
}

pub(crate) fn check_fingerprint(
    what: &'static str,
    params: &[ParamSet],
    fp: u64,
) -> Result<Vec<Tfhe>> {
    if fingerprint_all(params) != fp {
        return Err(invalid(
            what,
            "parameter fingerprint does not match the parameters",
        ));
    }
    let tfhe = check_all(params, true)?;
    // Key sizes are products of these dimensions (computed with `size_of`); the sums and
    // products tfhe's own size helpers compute (`k + 1`, `k * N`, dimension + 1) must not
    // overflow either.
    for (i, t) in tfhe.iter().enumerate() {
        let big = t.k.0.checked_mul(t.poly.0);
        let ok = t.k.0.checked_add(1).is_some()
            && big.and_then(|b| b.checked_add(1)).is_some()
            && t.n.0.checked_add(1).is_some();
        if !ok {
            return Err(invalid(
                what,
                format!(
                    "parameter set @p{i} has dimensions (n={}, k={}, N={}) too large for this machine",
                    t.n.0, t.k.0, t.poly.0
                ),
            ));
        }
    }
    Ok(tfhe)
}

/// The product of `factors` (a key size in words), or an error naming `item` when it
/// overflows. Callers pass factors that were themselves bounded (see [`check_fingerprint`]).
pub(crate) fn size_of(what: &'static str, item: &str, factors: &[usize]) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |a, &f| a.checked_mul(f))
        .ok_or_else(|| {
            invalid(
                what,
                format!("{item} needs keys larger than this machine can address (dimensions {factors:?})"),
            )
        })
}

/// `u32` words packed two per `u64` (low half first; an odd count pads with a zero half).
fn pack32(v: &[u32]) -> Words {
    Words(
        v.chunks(2)
            .map(|c| c[0] as u64 | (c.get(1).copied().unwrap_or(0) as u64) << 32)
            .collect(),
    )
}

/// The inverse of [`pack32`] for `len` words: an error unless exactly `ceil(len / 2)` words
/// come with a zero padding half.
fn unpack32(what: &'static str, item: &str, w: Words, len: usize) -> Result<Vec<u32>> {
    check_len(
        what,
        &format!("{item} (32-bit words in pairs)"),
        w.0.len(),
        len.div_ceil(2),
    )?;
    if len % 2 == 1 && w.0.last().is_some_and(|x| x >> 32 != 0) {
        return Err(invalid(
            what,
            format!("{item} has a non-zero padding half word"),
        ));
    }
    let mut out: Vec<u32> =
        w.0.iter()
            .flat_map(|&x| [x as u32, (x >> 32) as u32])
            .collect();
    out.truncate(len);
    Ok(out)
}

fn param_of<'a>(what: &'static str, t: &'a [Tfhe], k: KeyId) -> Result<&'a Tfhe> {
    t.get(k.param() as usize).ok_or_else(|| {
        invalid(
            what,
            format!("key {k} names a parameter set that is not stored"),
        )
    })
}

fn key_dim(t: &Tfhe, k: KeyId) -> usize {
    match k {
        KeyId::Big(_) => t.big_dim().0,
        KeyId::Small(_) => t.n.0,
    }
}

// ---------------------------------------------------------------- parameter sets

#[derive(Serialize, Deserialize)]
struct ParamsFile {
    fingerprint: u64,
    params: ParamSet,
}

/// Serializes a parameter set.
pub fn params_to_bytes(p: &ParamSet) -> Result<Vec<u8>> {
    Ok(encode_binary(
        KIND_PARAMS,
        &ParamsFile {
            fingerprint: p.fingerprint(),
            params: p.clone(),
        },
    )?)
}

/// Loads a parameter set, checking its fingerprint.
pub fn params_from_bytes(data: &[u8]) -> Result<ParamSet> {
    let f: ParamsFile = decode_binary(KIND_PARAMS, data)?;
    if f.params.fingerprint() != f.fingerprint {
        return Err(invalid(
            "parameter set",
            "fingerprint does not match the parameters",
        ));
    }
    Ok(f.params)
}

// ---------------------------------------------------------------- client keys

#[derive(Serialize, Deserialize)]
struct SecretFile {
    small: Words,
    glwe: Words,
}

#[derive(Serialize, Deserialize)]
struct ClientKeysFile {
    key_id: u64,
    fingerprint: u64,
    params: Vec<ParamSet>,
    master_seed: Option<u128>,
    secrets: Vec<SecretFile>,
}

impl ClientKeys {
    /// Serializes the client keys. **The result contains the secret keys**: store it like a
    /// password, never send it to a server.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(encode_binary(
            KIND_CLIENT_KEYS,
            &ClientKeysFile {
                key_id: self.key_id,
                fingerprint: fingerprint_all(&self.params),
                params: self.params.clone(),
                master_seed: self.master_seed,
                secrets: self
                    .secrets
                    .iter()
                    .map(|s| SecretFile {
                        small: Words(s.small.as_ref().to_vec()),
                        glwe: Words(s.glwe.as_ref().to_vec()),
                    })
                    .collect(),
            },
        )?)
    }

    /// Loads client keys (encryption randomness is freshly seeded from the OS).
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        const W: &str = "client keys";
        let f: ClientKeysFile = decode_binary(KIND_CLIENT_KEYS, data)?;
        let tfhe = check_fingerprint(W, &f.params, f.fingerprint)?;
        if f.secrets.len() != tfhe.len() {
            return Err(invalid(
                W,
                format!(
                    "{} secret pairs for {} parameter sets",
                    f.secrets.len(),
                    tfhe.len()
                ),
            ));
        }
        let mut secrets = Vec::with_capacity(tfhe.len());
        for (i, (s, t)) in f.secrets.into_iter().zip(&tfhe).enumerate() {
            check_len(W, &format!("small key of @p{i}"), s.small.0.len(), t.n.0)?;
            check_len(
                W,
                &format!("GLWE key of @p{i}"),
                s.glwe.0.len(),
                t.big_dim().0,
            )?;
            if s.small.0.iter().chain(&s.glwe.0).any(|&x| x > 1) {
                return Err(invalid(W, format!("keys of @p{i} are not binary")));
            }
            secrets.push(SecretPair {
                small: LweSecretKey::from_container(s.small.0),
                glwe: GlweSecretKey::from_container(s.glwe.0, t.poly),
            });
        }
        if key_id_of(&f.params, &secrets) != f.key_id {
            return Err(invalid(W, "key id does not match the keys"));
        }
        let mut os = tfhe::core_crypto::seeders::new_seeder();
        ClientKeys::assemble(f.params, tfhe, secrets, f.master_seed, os.seed())
    }
}

// ---------------------------------------------------------------- compressed server keys

#[derive(Serialize, Deserialize)]
struct SeededBskFile {
    param: u32,
    seed: CompressionSeed,
    data: Words,
}

#[derive(Serialize, Deserialize)]
struct KskFile<S> {
    from: KeyId,
    to: KeyId,
    seed: S,
    data: Words,
}

#[derive(Serialize, Deserialize)]
struct CompressedServerKeysFile {
    key_id: u64,
    fingerprint: u64,
    params: Vec<ParamSet>,
    bsks: Vec<SeededBskFile>,
    ksks: Vec<KskFile<CompressionSeed>>,
    /// Per set with a `wop.pbs`: its WoP-PBS keys as a `veil-wop-keys-seeded` file (binary
    /// format 4 and later).
    wops: Vec<(u32, Vec<u8>)>,
}

impl CompressedServerKeys {
    /// Serializes the seeded evaluation keys (no secret material).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(encode_binary(
            KIND_COMPRESSED_SERVER_KEYS,
            &CompressedServerKeysFile {
                key_id: self.key_id,
                fingerprint: fingerprint_all(&self.params),
                params: self.params.clone(),
                bsks: self
                    .bsks
                    .iter()
                    .map(|(&param, b)| SeededBskFile {
                        param,
                        seed: b.compression_seed(),
                        data: Words(b.as_ref().to_vec()),
                    })
                    .collect(),
                ksks: self
                    .ksks
                    .iter()
                    .map(|(&(from, to), k)| match k {
                        SeededKsk::Q64(k) => KskFile {
                            from,
                            to,
                            seed: k.compression_seed(),
                            data: Words(k.as_ref().to_vec()),
                        },
                        SeededKsk::Q32(k) => KskFile {
                            from,
                            to,
                            seed: k.compression_seed(),
                            data: pack32(k.as_ref()),
                        },
                    })
                    .collect(),
                wops: self
                    .wops
                    .iter()
                    .map(|(&p, w)| Ok((p, w.to_bytes()?)))
                    .collect::<Result<Vec<_>>>()?,
            },
        )?)
    }

    /// Loads seeded evaluation keys, checking every size against the parameters.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        const W: &str = "compressed server keys";
        let f: CompressedServerKeysFile = decode_binary(KIND_COMPRESSED_SERVER_KEYS, data)?;
        let tfhe = check_fingerprint(W, &f.params, f.fingerprint)?;
        let mut bsks = BTreeMap::new();
        for b in f.bsks {
            let t = param_of(W, &tfhe, KeyId::Big(b.param))?;
            let item = format!("bootstrap key of @p{}", b.param);
            let want = size_of(
                W,
                &item,
                &[t.n.0, t.pbs_level.0, t.k.to_glwe_size().0, t.poly.0],
            )?;
            check_len(W, &item, b.data.0.len(), want)?;
            let k = SeededLweBootstrapKey::from_container(
                b.data.0,
                t.k.to_glwe_size(),
                t.poly,
                t.pbs_base_log,
                t.pbs_level,
                b.seed,
                modulus(),
            );
            bsks.insert(b.param, k);
        }
        let mut ksks = BTreeMap::new();
        for k in f.ksks {
            let t_in = param_of(W, &tfhe, k.from)?;
            let t = param_of(W, &tfhe, k.to)?;
            let item = format!("keyswitch key {} -> {}", k.from, k.to);
            let want = size_of(W, &item, &[key_dim(t_in, k.from), t.ks_level.0])?;
            let size = LweSize(key_dim(t, k.to) + 1);
            let key = if ks32_target(&f.params, k.to) {
                let data = unpack32(W, &item, k.data, want)?;
                SeededKsk::Q32(SeededLweKeyswitchKey::from_container(
                    data,
                    t.ks_base_log,
                    t.ks_level,
                    size,
                    k.seed,
                    CiphertextModulus::<u32>::new_native(),
                ))
            } else {
                check_len(W, &item, k.data.0.len(), want)?;
                SeededKsk::Q64(SeededLweKeyswitchKey::from_container(
                    k.data.0,
                    t.ks_base_log,
                    t.ks_level,
                    size,
                    k.seed,
                    modulus(),
                ))
            };
            ksks.insert((k.from, k.to), key);
        }
        let mut wops = BTreeMap::new();
        for (p, bytes) in f.wops {
            let w = CompressedWopKeys::from_bytes(&bytes)?;
            if f.params.get(p as usize) != Some(&w.params().set) {
                return Err(invalid(
                    W,
                    format!("the WoP-PBS keys of @p{p} are not for the keys' set @p{p}"),
                ));
            }
            if w.key_id() != f.key_id {
                return Err(invalid(
                    W,
                    format!("the WoP-PBS keys of @p{p} come from another key generation"),
                ));
            }
            wops.insert(p, w);
        }
        Ok(CompressedServerKeys {
            params: f.params,
            key_id: f.key_id,
            bsks,
            ksks,
            wops,
        })
    }
}

// ---------------------------------------------------------------- server keys

#[derive(Serialize, Deserialize)]
struct FourierBskFile {
    param: u32,
    /// Real and imaginary parts, interleaved, as f64 bit patterns.
    data: Words,
}

#[derive(Serialize, Deserialize)]
struct ServerKeysFile {
    key_id: u64,
    fingerprint: u64,
    params: Vec<ParamSet>,
    bsks: Vec<FourierBskFile>,
    ksks: Vec<KskFile<()>>,
}

impl ServerKeys {
    /// Serializes the expanded evaluation keys (no secret material). About twice the size of
    /// [`CompressedServerKeys::to_bytes`] but loads without expansion.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        if !self.wops.is_empty() {
            return Err(RuntimeError::BadInput(
                "expanded evaluation keys with WoP-PBS keys are not serialized; save the seeded (compressed) keys instead".into(),
            ));
        }
        Ok(encode_binary(
            KIND_SERVER_KEYS,
            &ServerKeysFile {
                key_id: self.key_id,
                fingerprint: fingerprint_all(&self.params),
                params: self.params.clone(),
                bsks: self
                    .bsks
                    .iter()
                    .map(|(&param, b)| FourierBskFile {
                        param,
                        data: Words(
                            b.as_view()
                                .data()
                                .iter()
                                .flat_map(|c| [c.re.to_bits(), c.im.to_bits()])
                                .collect(),
                        ),
                    })
                    .collect(),
                ksks: self
                    .ksks
                    .iter()
                    .map(|(&(from, to), k)| KskFile {
                        from,
                        to,
                        seed: (),
                        data: match k {
                            Ksk::Q64(k) => Words(k.as_ref().to_vec()),
                            Ksk::Q32(k) => pack32(k.as_ref()),
                        },
                    })
                    .collect(),
            },
        )?)
    }

    /// Loads expanded evaluation keys, checking every size against the parameters.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        const W: &str = "server keys";
        let f: ServerKeysFile = decode_binary(KIND_SERVER_KEYS, data)?;
        let tfhe = check_fingerprint(W, &f.params, f.fingerprint)?;
        let mut bsks = BTreeMap::new();
        for b in f.bsks {
            let t = param_of(W, &tfhe, KeyId::Big(b.param))?;
            let g = t.k.to_glwe_size().0;
            let item = format!("bootstrap key of @p{}", b.param);
            let want = size_of(W, &item, &[2, t.n.0, g, g, t.pbs_level.0, t.poly.0 / 2])?;
            check_len(W, &item, b.data.0.len(), want)?;
            let mut key = FourierLweBootstrapKey::new(
                t.n,
                t.k.to_glwe_size(),
                t.poly,
                t.pbs_base_log,
                t.pbs_level,
            );
            let dst = key.as_mut_view().data();
            if dst.len() * 2 != want {
                return Err(invalid(
                    W,
                    "Fourier key layout differs from the expected size",
                ));
            }
            for (c, w) in dst.iter_mut().zip(b.data.0.chunks_exact(2)) {
                c.re = f64::from_bits(w[0]);
                c.im = f64::from_bits(w[1]);
                if !c.re.is_finite() || !c.im.is_finite() {
                    return Err(invalid(
                        W,
                        format!("bootstrap key of @p{} holds non-finite values", b.param),
                    ));
                }
            }
            bsks.insert(b.param, key);
        }
        let mut ksks = BTreeMap::new();
        for k in f.ksks {
            let t_in = param_of(W, &tfhe, k.from)?;
            let t = param_of(W, &tfhe, k.to)?;
            let out = key_dim(t, k.to) + 1;
            let item = format!("keyswitch key {} -> {}", k.from, k.to);
            let want = size_of(W, &item, &[key_dim(t_in, k.from), t.ks_level.0, out])?;
            let key = if ks32_target(&f.params, k.to) {
                Ksk::Q32(LweKeyswitchKey::from_container(
                    unpack32(W, &item, k.data, want)?,
                    t.ks_base_log,
                    t.ks_level,
                    LweSize(out),
                    CiphertextModulus::<u32>::new_native(),
                ))
            } else {
                check_len(W, &item, k.data.0.len(), want)?;
                Ksk::Q64(LweKeyswitchKey::from_container(
                    k.data.0,
                    t.ks_base_log,
                    t.ks_level,
                    LweSize(out),
                    modulus(),
                ))
            };
            ksks.insert((k.from, k.to), key);
        }
        Ok(ServerKeys {
            params: f.params,
            key_id: f.key_id,
            bsks,
            ksks,
            wops: BTreeMap::new(),
        })
    }
}

// ---------------------------------------------------------------- ciphertexts

#[derive(Serialize, Deserialize)]
struct CiphertextFile {
    key_id: u64,
    param_fingerprint: u64,
    encoding: Encoding,
    shape: Vec<usize>,
    lwe_size: u64,
    data: Words,
}

impl CtTensor {
    /// Serializes the ciphertexts with their encoding, key generation id and parameter
    /// fingerprint.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let lwe_size = self.tensor.data.first().map_or(0, |c| c.data.len()) as u64;
        Ok(encode_binary(
            KIND_CIPHERTEXT,
            &CiphertextFile {
                key_id: self.key_id,
                param_fingerprint: self.param_fingerprint,
                encoding: self.encoding,
                shape: self.tensor.shape.clone(),
                lwe_size,
                data: Words(
                    self.tensor
                        .data
                        .iter()
                        .flat_map(|c| c.data.iter().copied())
                        .collect(),
                ),
            },
        )?)
    }

    /// Loads ciphertexts, checking sizes. Whether they fit a key is checked where they are
    /// used (decryption, execution).
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        const W: &str = "ciphertext tensor";
        let f: CiphertextFile = decode_binary(KIND_CIPHERTEXT, data)?;
        if !(1..=62).contains(&f.encoding.width) {
            return Err(invalid(
                W,
                format!("width {} is outside 1..=62", f.encoding.width),
            ));
        }
        let n = f
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n > 0)
            .ok_or_else(|| invalid(W, format!("shape {:?} is empty or too large", f.shape)))?;
        if f.lwe_size < 2 || n.checked_mul(f.lwe_size as usize) != Some(f.data.0.len()) {
            return Err(invalid(
                W,
                format!(
                    "{} words for {n} ciphertexts of size {}",
                    f.data.0.len(),
                    f.lwe_size
                ),
            ));
        }
        let items = f
            .data
            .0
            .chunks_exact(f.lwe_size as usize)
            .map(|c| Lwe::from_raw(c.to_vec(), f.encoding.width))
            .collect();
        let tensor =
            Tensor::new(f.shape, items).map_err(|e| RuntimeError::shape("ciphertext", e))?;
        CtTensor::new(f.encoding, f.key_id, f.param_fingerprint, tensor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KS32 key words pack two to a 64-bit word and come back exactly; a wrong count or a
    /// non-zero padding half is refused.
    #[test]
    fn u32_words_pack_and_refuse_bad_padding() {
        for v in [vec![], vec![7u32], vec![1, 2, 3], vec![u32::MAX; 4]] {
            let w = pack32(&v);
            assert_eq!(w.0.len(), v.len().div_ceil(2));
            assert_eq!(unpack32("k", "key", w, v.len()).unwrap(), v);
        }
        let e = unpack32("k", "key", Words(vec![1 | 5 << 32]), 1).unwrap_err();
        assert!(e.to_string().contains("non-zero padding"), "{e}");
        let e = unpack32("k", "key", Words(vec![1, 2]), 5).unwrap_err();
        assert!(e.to_string().contains("need 3"), "{e}");
    }
}
