//! Keyswitch and programmable bootstrap on single ciphertexts and on tensors, including the
//! many-LUT bootstrap (several tables of one input from one blind rotation).
//!
//! Test polynomial: a `w_in`-bit message `i` sits at torus position `i * 2^(63 - w_in)`, which
//! the modulus switch maps to rotation `i * N / 2^w_in` of the negacyclic accumulator (the
//! padding bit selects the negated half). So the accumulator holds `2^w_in` boxes of
//! `N / 2^w_in` coefficients, box `i` filled with `table[i] * delta_out`; the first half box is
//! negated and the whole rotated left by half a box so that noise in either direction stays in
//! the box. With `f` tables (many-LUT) each box is split into `f` sub-boxes, table `j` in
//! sub-box `j`, and output `j` is extracted at coefficient `j * N / (2^w_in f)`; the input then
//! needs the noise margin of a `w_in + log2 f`-bit message.
//!
//! Every tensor operation runs its elements in parallel on the current rayon pool; FFT plans and
//! scratch memory are cached per thread.

use crate::ciphertext::{encode, CtTensor, Lwe};
use crate::error::{Result, RuntimeError};
use crate::keys::{Ksk, ServerKeys};
use crate::params::modulus;
use rayon::prelude::*;
use std::cell::RefCell;
use tfhe::core_crypto::fft_impl::fft64::math::fft::Fft;
use tfhe::core_crypto::prelude::*;
use veil_ir::{Encoding, KeyId, ModulusSwitch, Tensor};

/// A test polynomial for one parameter set: `fn_count` tables of a `w_in`-bit input, outputs
/// encoded with width `w_out`.
#[derive(Clone, Debug)]
pub struct Accumulator {
    glwe: GlweCiphertextOwned<u64>,
    param: u32,
    w_in: u8,
    w_out: u8,
    fn_count: usize,
    /// Added to every output body (the sign accumulator's constant; 0 otherwise).
    post: u64,
}

/// Which bits of its operand a keyswitch reads (the TFHE-level `keyswitch`, `keyswitch.shr`
/// and `keyswitch.bit`; see [`veil_ir::Op::keyswitch_window`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KsRead {
    /// The message itself (narrowing multiplies by `2^(w - w_to)`).
    #[default]
    Message,
    /// `m >> k` of a message whose `k` low bits are zero (multiplies by `2^(w - k - w_to)`).
    Shr(u8),
    /// Bit `j` of a message whose bits below `j` are zero, placed on the padding bit plus a
    /// quarter torus: a sign for [`ServerKeys::sign_accumulator`] (multiplies by `2^(w - j)`).
    Bit(u8),
}

impl Accumulator {
    /// Parameter set whose bootstrap key this accumulator is for.
    pub fn param(&self) -> u32 {
        self.param
    }
    /// Input message width.
    pub fn input_width(&self) -> u8 {
        self.w_in
    }
    /// Output message width.
    pub fn output_width(&self) -> u8 {
        self.w_out
    }
    /// Number of tables (outputs per bootstrap).
    pub fn fn_count(&self) -> usize {
        self.fn_count
    }
}

struct Scratch {
    poly: usize,
    glwe_size: usize,
    fft: Fft,
    buf: ComputationBuffers,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's FFT plan and scratch memory for `(poly, glwe_size)`.
fn with_scratch<R>(
    poly: PolynomialSize,
    glwe_size: GlweSize,
    f: impl FnOnce(FftView<'_>, &mut PodStack) -> R,
) -> R {
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fresh = !matches!(&*slot, Some(s) if s.poly == poly.0 && s.glwe_size == glwe_size.0);
        if fresh {
            let fft = Fft::new(poly);
            let req = programmable_bootstrap_lwe_ciphertext_mem_optimized_requirement::<u64>(
                glwe_size,
                poly,
                fft.as_view(),
            )
            .unaligned_bytes_required()
            .max(
                blind_rotate_assign_mem_optimized_requirement::<u64>(
                    glwe_size,
                    poly,
                    fft.as_view(),
                )
                .unaligned_bytes_required(),
            );
            let mut buf = ComputationBuffers::new();
            buf.resize(req);
            *slot = Some(Scratch {
                poly: poly.0,
                glwe_size: glwe_size.0,
                fft,
                buf,
            });
        }
        let s = slot.as_mut().expect("scratch initialised above");
        let fft = s.fft.as_view();
        f(fft, s.buf.stack())
    })
}

/// The test polynomial `body` as a trivial GLWE ciphertext for bootstrap key `bsk`.
fn trivial_glwe(bsk: &FourierLweBootstrapKeyOwned, body: Vec<u64>) -> GlweCiphertextOwned<u64> {
    allocate_and_trivially_encrypt_new_glwe_ciphertext(
        bsk.glwe_size(),
        &PlaintextList::from_container(body),
        modulus(),
    )
}

impl ServerKeys {
    fn bsk(&self, param: u32) -> Result<&FourierLweBootstrapKeyOwned> {
        self.bsks
            .get(&param)
            .ok_or_else(|| RuntimeError::MissingKey(format!("bootstrap key of @p{param}")))
    }

    /// Builds the test polynomial of `tables` (all of length `2^w_in`) for set `param`.
    /// Entries are encoded with width `w_out` (negative entries wrap modulo 2^64).
    pub fn accumulator(
        &self,
        param: u32,
        w_in: u8,
        tables: &[&[i64]],
        w_out: u8,
    ) -> Result<Accumulator> {
        let bsk = self.bsk(param)?;
        let poly = bsk.polynomial_size();
        let f = tables.len();
        if f == 0 || !f.is_power_of_two() {
            return Err(RuntimeError::BadInput(format!(
                "a bootstrap takes a power-of-two number of tables, got {f}"
            )));
        }
        if !(1..=62).contains(&w_in) || !(1..=62).contains(&w_out) {
            return Err(RuntimeError::BadInput(format!(
                "bootstrap widths {w_in} -> {w_out} must be within 1..=62"
            )));
        }
        let slots = (1usize << w_in.min(40)) * f;
        if w_in >= 40 || slots * 2 > poly.0 {
            return Err(RuntimeError::BadInput(format!(
                "{f} table(s) of a {w_in}-bit input need 2 * {f} * 2^{w_in} <= N, but N = {} for @p{param}",
                poly.0
            )));
        }
        let entries = 1usize << w_in;
        if let Some(t) = tables.iter().find(|t| t.len() != entries) {
            return Err(RuntimeError::BadInput(format!(
                "a table of a {w_in}-bit input needs {entries} entries, got {}",
                t.len()
            )));
        }
        let sub = poly.0 / slots;
        let mut body = vec![0u64; poly.0];
        for i in 0..entries {
            for (j, t) in tables.iter().enumerate() {
                let start = (i * f + j) * sub;
                body[start..start + sub].fill(encode(t[i], w_out));
            }
        }
        let half = sub / 2;
        body[..half].iter_mut().for_each(|a| *a = a.wrapping_neg());
        body.rotate_left(half);
        let glwe = trivial_glwe(bsk, body);
        Ok(Accumulator {
            glwe,
            param,
            w_in,
            w_out,
            fn_count: f,
            post: 0,
        })
    }

    /// The test polynomial of a 2-entry `table` read by a [`KsRead::Bit`] ciphertext (phase
    /// `1/4` for bit 0, `3/4` for bit 1): a constant polynomial `(t0 - t1) * delta_out / 2`,
    /// whose negacyclic rotation gives `+` on the first half of the torus and `-` on the
    /// second, plus `(t0 + t1) * delta_out / 2` added afterwards. The phase may move by a
    /// quarter torus either way, twice the margin of a 1-bit message.
    pub fn sign_accumulator(&self, param: u32, table: &[i64], w_out: u8) -> Result<Accumulator> {
        let bsk = self.bsk(param)?;
        let [t0, t1] = table else {
            return Err(RuntimeError::BadInput(format!(
                "a bit bootstrap takes a 2-entry table, got {} entries",
                table.len()
            )));
        };
        if !(1..=61).contains(&w_out) {
            return Err(RuntimeError::BadInput(format!(
                "bit bootstrap output width {w_out} must be within 1..=61"
            )));
        }
        let half = |t: i64| (t as u64).wrapping_mul(1u64 << (62 - w_out as u32));
        let body = vec![half(*t0).wrapping_sub(half(*t1)); bsk.polynomial_size().0];
        let glwe = trivial_glwe(bsk, body);
        Ok(Accumulator {
            glwe,
            param,
            w_in: 1,
            w_out,
            fn_count: 1,
            post: half(*t0).wrapping_add(half(*t1)),
        })
    }

    /// The modulus switch of set `param`'s bootstraps.
    fn modulus_switch(&self, param: u32) -> ModulusSwitch {
        self.params
            .get(param as usize)
            .map_or(ModulusSwitch::Standard, |p| p.modulus_switch)
    }

    /// Modulus switch (the set's kind) and blind rotation of `ct` through `acc`'s test
    /// polynomial. The centered switch is tfhe's mean-compensated one
    /// (`lwe_ciphertext_centered_binary_modulus_switch`, shortint's `CenteredMeanNoiseReduction`):
    /// the body absorbs the expected key-dependent rounding error and half a step of `2N`, so
    /// the phase lands centred in the test polynomial's boxes.
    fn blind_rotate(
        &self,
        ct: &Lwe,
        acc: &Accumulator,
        bsk: &FourierLweBootstrapKeyOwned,
    ) -> GlweCiphertextOwned<u64> {
        let mut glwe = acc.glwe.clone();
        let input = LweCiphertext::from_container(&ct.data[..], modulus());
        let log = bsk.polynomial_size().to_blind_rotation_input_modulus_log();
        with_scratch(
            bsk.polynomial_size(),
            bsk.glwe_size(),
            |fft, stack| match self.modulus_switch(acc.param) {
                ModulusSwitch::Standard => {
                    let ms = lwe_ciphertext_modulus_switch(input, log);
                    blind_rotate_assign_mem_optimized(&ms, &mut glwe, bsk, fft, stack)
                }
                ModulusSwitch::Centered => {
                    let ms = lwe_ciphertext_centered_binary_modulus_switch(input, log);
                    blind_rotate_assign_mem_optimized(&ms, &mut glwe, bsk, fft, stack)
                }
            },
        );
        glwe
    }

    fn check_pbs_input(&self, ct: &Lwe, acc: &Accumulator) -> Result<&FourierLweBootstrapKeyOwned> {
        let bsk = self.bsk(acc.param)?;
        if ct.dimension() != bsk.input_lwe_dimension().0 {
            return Err(RuntimeError::KeyMismatch(format!(
                "bootstrap of @p{} takes ciphertexts of dimension {} (under @p{}.small), got {}",
                acc.param,
                bsk.input_lwe_dimension().0,
                acc.param,
                ct.dimension()
            )));
        }
        if ct.width != acc.w_in {
            return Err(RuntimeError::BadInput(format!(
                "ciphertext of width {} given to a bootstrap built for width {}",
                ct.width, acc.w_in
            )));
        }
        Ok(bsk)
    }

    /// Programmable bootstrap of one ciphertext through a one-table accumulator: the result is
    /// under `@pK` with the accumulator's output width.
    pub fn bootstrap(&self, ct: &Lwe, acc: &Accumulator) -> Result<Lwe> {
        if acc.fn_count != 1 {
            return Err(RuntimeError::BadInput(format!(
                "accumulator has {} tables: use bootstrap_many",
                acc.fn_count
            )));
        }
        let bsk = self.check_pbs_input(ct, acc)?;
        let out_size = bsk.output_lwe_dimension().to_lwe_size();
        let mut out = LweCiphertext::new(0u64, out_size, modulus());
        let input = LweCiphertext::from_container(&ct.data[..], modulus());
        match self.modulus_switch(acc.param) {
            ModulusSwitch::Standard => {
                with_scratch(bsk.polynomial_size(), bsk.glwe_size(), |fft, stack| {
                    programmable_bootstrap_lwe_ciphertext_mem_optimized(
                        &input, &mut out, &acc.glwe, bsk, fft, stack,
                    )
                })
            }
            ModulusSwitch::Centered => {
                let glwe = self.blind_rotate(ct, acc, bsk);
                extract_lwe_sample_from_glwe_ciphertext(&glwe, &mut out, MonomialDegree(0));
            }
        }
        if acc.post != 0 {
            let b = out.get_mut_body();
            *b.data = b.data.wrapping_add(acc.post);
        }
        Ok(Lwe::from_raw(out.into_container(), acc.w_out))
    }

    /// Many-LUT bootstrap: one blind rotation, one output per table of the accumulator (in
    /// table order). The input's noise must fit a `w_in + log2(tables)`-bit message, which
    /// holds when that sum is at most the set's `message_bits`.
    pub fn bootstrap_many(&self, ct: &Lwe, acc: &Accumulator) -> Result<Vec<Lwe>> {
        let bsk = self.check_pbs_input(ct, acc)?;
        let glwe = self.blind_rotate(ct, acc, bsk);
        let sub = bsk.polynomial_size().0 / ((1usize << acc.w_in) * acc.fn_count);
        let out_size = bsk.output_lwe_dimension().to_lwe_size();
        Ok((0..acc.fn_count)
            .map(|j| {
                let mut out = LweCiphertext::new(0u64, out_size, modulus());
                extract_lwe_sample_from_glwe_ciphertext(&glwe, &mut out, MonomialDegree(j * sub));
                Lwe::from_raw(out.into_container(), acc.w_out)
            })
            .collect())
    }

    /// Keyswitches one ciphertext from `from` to `to`. Narrowing the width (`to_width <
    /// width`) multiplies the message's scale first (exact when the message fits `to_width`
    /// bits); widening is impossible without a bootstrap and is an error.
    pub fn keyswitch(&self, ct: &Lwe, from: KeyId, to: KeyId, to_width: u8) -> Result<Lwe> {
        self.keyswitch_read(ct, from, to, to_width, KsRead::Message)
    }

    /// [`ServerKeys::keyswitch`] reading the operand bits `read` selects: the ciphertext is
    /// multiplied by `2^(w - lsb - to_width)` (message and shift) or `2^(w - j)` plus a quarter
    /// torus (a bit for [`ServerKeys::sign_accumulator`]) before the key changes.
    pub fn keyswitch_read(
        &self,
        ct: &Lwe,
        from: KeyId,
        to: KeyId,
        to_width: u8,
        read: KsRead,
    ) -> Result<Lwe> {
        if from == to && ct.width == to_width && read == KsRead::Message {
            return Ok(ct.clone());
        }
        let (top, sign) = match read {
            KsRead::Message => (to_width as u32, false),
            KsRead::Shr(k) => (to_width as u32 + k as u32, false),
            KsRead::Bit(j) => (j as u32, true),
        };
        if top > ct.width as u32 || (sign && to_width != 1) {
            return Err(RuntimeError::BadInput(format!(
                "keyswitch {from} -> {to} ({read:?}) cannot read a {to_width}-bit message from a {}-bit encoding",
                ct.width
            )));
        }
        let shift = ct.width as u32 - top;
        let scaled;
        let src = if shift > 0 || sign {
            let mut d = ct.data.iter().map(|x| x << shift).collect::<Vec<u64>>();
            if sign {
                let body = d.last_mut().expect("an LWE ciphertext has a body");
                *body = body.wrapping_add(1u64 << 62);
            }
            scaled = d;
            &scaled[..]
        } else {
            &ct.data[..]
        };
        if from == to {
            return Ok(Lwe::from_raw(src.to_vec(), to_width));
        }
        let ksk = self
            .ksks
            .get(&(from, to))
            .ok_or_else(|| RuntimeError::MissingKey(format!("keyswitch key {from} -> {to}")))?;
        if ksk.input_key_lwe_dimension().0 != ct.dimension() {
            return Err(RuntimeError::KeyMismatch(format!(
                "keyswitch key {from} -> {to} takes dimension {}, the ciphertext has {}",
                ksk.input_key_lwe_dimension().0,
                ct.dimension()
            )));
        }
        let input = LweCiphertext::from_container(src, modulus());
        match ksk {
            Ksk::Q64(ksk) => {
                let mut out = LweCiphertext::new(0u64, ksk.output_lwe_size(), modulus());
                keyswitch_lwe_ciphertext(ksk, &input, &mut out);
                Ok(Lwe::from_raw(out.into_container(), to_width))
            }
            Ksk::Q32(ksk) => {
                // KS32: the body is rounded to 32 bits and the u64 mask decomposed straight
                // into the u32 key; the result modulo 2^32 is put back on the 64-bit torus
                // (top half), where the bootstrap's modulus switch to 2N reads it exactly.
                let mut out = LweCiphertext::new(
                    0u32,
                    ksk.output_lwe_size(),
                    CiphertextModulus::<u32>::new_native(),
                );
                keyswitch_lwe_ciphertext_with_scalar_change(ksk, &input, &mut out);
                let data = out.as_ref().iter().map(|&x| (x as u64) << 32).collect();
                Ok(Lwe::from_raw(data, to_width))
            }
        }
    }

    fn check_tensor(&self, ct: &CtTensor) -> Result<()> {
        if ct.key_id != self.key_id {
            return Err(RuntimeError::KeyMismatch(format!(
                "ciphertexts of key generation {:016x} given to server keys {:016x}",
                ct.key_id, self.key_id
            )));
        }
        let p = ct.encoding.key.param() as usize;
        match self.params.get(p) {
            Some(ps) if ps.fingerprint() == ct.param_fingerprint => Ok(()),
            _ => Err(RuntimeError::KeyMismatch(format!(
                "ciphertexts under {} do not belong to these keys' parameter sets",
                ct.encoding.key
            ))),
        }
    }

    fn out_tensor(&self, enc: Encoding, shape: Vec<usize>, data: Vec<Lwe>) -> Result<CtTensor> {
        let fp = self
            .params
            .get(enc.key.param() as usize)
            .ok_or_else(|| RuntimeError::MissingKey(format!("parameter set of {}", enc.key)))?
            .fingerprint();
        Ok(CtTensor {
            encoding: enc,
            key_id: self.key_id,
            param_fingerprint: fp,
            tensor: Tensor { shape, data },
        })
    }

    /// Keyswitches every ciphertext of a tensor to encoding `to` (in parallel).
    pub fn keyswitch_tensor(&self, ct: &CtTensor, to: Encoding) -> Result<CtTensor> {
        self.keyswitch_tensor_read(ct, to, KsRead::Message)
    }

    /// [`ServerKeys::keyswitch_tensor`] reading the operand bits `read` selects.
    pub fn keyswitch_tensor_read(
        &self,
        ct: &CtTensor,
        to: Encoding,
        read: KsRead,
    ) -> Result<CtTensor> {
        self.keyswitch_tensor_masked(ct, to, read, None)
    }

    /// [`ServerKeys::keyswitch_tensor_read`] of the elements `needed` marks (all when `None`);
    /// the others are trivial encryptions of zero (for elements that no bootstrap reads:
    /// [`veil_ir::Graph::elements_read`]).
    pub fn keyswitch_tensor_masked(
        &self,
        ct: &CtTensor,
        to: Encoding,
        read: KsRead,
        needed: Option<&[bool]>,
    ) -> Result<CtTensor> {
        self.check_tensor(ct)?;
        let from = ct.encoding.key;
        if needed.is_some_and(|m| m.len() != ct.tensor.data.len()) {
            return Err(RuntimeError::BadInput(format!(
                "a keyswitch mask of {} entries for {} elements",
                needed.map_or(0, |m| m.len()),
                ct.tensor.data.len()
            )));
        }
        let zero_dim = self
            .params
            .get(to.key.param() as usize)
            .map(|p| match to.key {
                KeyId::Big(_) => p.big_lwe_dimension(),
                KeyId::Small(_) => p.lwe_dimension,
            });
        let data = ct
            .tensor
            .data
            .par_iter()
            .enumerate()
            .map(|(j, c)| match (needed.map(|m| m[j]), zero_dim) {
                (Some(false), Some(d)) => Ok(Lwe::trivial(d, to.width, 0)),
                _ => self.keyswitch_read(c, from, to.key, to.width, read),
            })
            .collect::<Result<Vec<_>>>()?;
        self.out_tensor(to, ct.tensor.shape.clone(), data)
    }

    /// Bootstraps every ciphertext of a tensor (under `@pK.small`) through `tables[map[j]]`
    /// (`map` empty: one table for all), producing encoding `out` (under `@pK`). In parallel.
    pub fn pbs_tensor(
        &self,
        ct: &CtTensor,
        tables: &[&[i64]],
        map: &[u32],
        out: Encoding,
    ) -> Result<CtTensor> {
        self.pbs_tensor_read(ct, tables, map, out, KsRead::Message)
    }

    /// [`ServerKeys::pbs_tensor`] of ciphertexts that a keyswitch produced with `read`: a
    /// [`KsRead::Bit`] input is bootstrapped through sign accumulators.
    pub fn pbs_tensor_read(
        &self,
        ct: &CtTensor,
        tables: &[&[i64]],
        map: &[u32],
        out: Encoding,
        read: KsRead,
    ) -> Result<CtTensor> {
        self.check_tensor(ct)?;
        let KeyId::Small(p) = ct.encoding.key else {
            return Err(RuntimeError::BadInput(format!(
                "bootstrap input must be under a small key, got {}",
                ct.encoding.key
            )));
        };
        if out.key != KeyId::Big(p) {
            return Err(RuntimeError::BadInput(format!(
                "bootstrap of {} produces ciphertexts under @p{p}, not {}",
                ct.encoding.key, out.key
            )));
        }
        let n = ct.tensor.data.len();
        if tables.is_empty()
            || (map.is_empty() && tables.len() != 1)
            || (!map.is_empty() && map.len() != n)
        {
            return Err(RuntimeError::BadInput(format!(
                "{} table(s) with a map of {} entries for {n} elements",
                tables.len(),
                map.len()
            )));
        }
        if let Some(&m) = map.iter().find(|&&m| m as usize >= tables.len()) {
            return Err(RuntimeError::BadInput(format!(
                "map entry {m} is out of range for {} tables",
                tables.len()
            )));
        }
        // A constant table needs no bootstrap: its elements are the trivial (noiseless)
        // encryption of the constant (`veil_ir::Op::Pbs`).
        let accs = tables
            .iter()
            .map(|t| {
                let entries = match read {
                    KsRead::Bit(_) => 2,
                    _ => 1usize << ct.encoding.width.min(40),
                };
                if t.len() == entries && veil_ir::is_constant_table(t) {
                    return Ok(None);
                }
                match read {
                    KsRead::Bit(_) => self.sign_accumulator(p, t, out.width),
                    _ => self.accumulator(p, ct.encoding.width, &[t], out.width),
                }
                .map(Some)
            })
            .collect::<Result<Vec<_>>>()?;
        let dim = self.params[p as usize].big_lwe_dimension();
        let table_of = |j: usize| map.get(j).copied().unwrap_or(0) as usize;
        // Only the bootstrapped elements go to the pool, one per task, so that the threads
        // share them evenly wherever the trivial ones sit.
        let live: Vec<usize> = (0..n).filter(|&j| accs[table_of(j)].is_some()).collect();
        let mut booted = live
            .par_iter()
            .with_max_len(1)
            .map(|&j| {
                let acc = accs[table_of(j)].as_ref().expect("live elements have one");
                self.bootstrap(&ct.tensor.data[j], acc)
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let data = (0..n)
            .map(|j| {
                let t = table_of(j);
                match &accs[t] {
                    Some(_) => booted.next().expect("one per live element"),
                    None => Lwe::trivial(dim, out.width, tables[t].first().copied().unwrap_or(0)),
                }
            })
            .collect();
        self.out_tensor(out, ct.tensor.shape.clone(), data)
    }

    /// Many-LUT bootstrap of a tensor: one blind rotation per element, one output tensor per
    /// table (see [`ServerKeys::bootstrap_many`] for the noise condition, checked here against
    /// the set's `message_bits`).
    pub fn many_lut_tensor(
        &self,
        ct: &CtTensor,
        tables: &[&[i64]],
        out: Encoding,
    ) -> Result<Vec<CtTensor>> {
        self.check_tensor(ct)?;
        let KeyId::Small(p) = ct.encoding.key else {
            return Err(RuntimeError::BadInput(format!(
                "bootstrap input must be under a small key, got {}",
                ct.encoding.key
            )));
        };
        if out.key != KeyId::Big(p) {
            return Err(RuntimeError::BadInput(format!(
                "bootstrap of {} produces ciphertexts under @p{p}, not {}",
                ct.encoding.key, out.key
            )));
        }
        let bits = self.params[p as usize].message_bits as u32;
        let extra = tables.len().max(1).trailing_zeros();
        if ct.encoding.width as u32 + extra > bits {
            return Err(RuntimeError::BadInput(format!(
                "{} tables of a {}-bit input need the noise margin of {} bits, but @p{p} is built for {bits}",
                tables.len(),
                ct.encoding.width,
                ct.encoding.width as u32 + extra
            )));
        }
        let acc = self.accumulator(p, ct.encoding.width, tables, out.width)?;
        let per = ct
            .tensor
            .data
            .par_iter()
            .map(|c| self.bootstrap_many(c, &acc))
            .collect::<Result<Vec<_>>>()?;
        let mut outs: Vec<Vec<Lwe>> = (0..tables.len())
            .map(|_| Vec::with_capacity(per.len()))
            .collect();
        for v in per {
            for (j, c) in v.into_iter().enumerate() {
                outs[j].push(c);
            }
        }
        outs.into_iter()
            .map(|d| self.out_tensor(out, ct.tensor.shape.clone(), d))
            .collect()
    }
}
