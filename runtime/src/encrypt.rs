//! Encoding, encryption and decryption of integer tensors, and ndarray conversions.
//!
//! A message `m` (signed or unsigned) of width `w` is the torus element `m * 2^(63 - w)`
//! (two's complement modulo `2^(w + 1)`: `w` message bits under one padding bit). Decryption
//! rounds the phase to the nearest multiple of `delta` with tfhe's `SignedDecomposer` (base log
//! `w + 1`, one level) and reads the top `w + 1` bits, sign-extended for signed types.

use crate::ciphertext::{encode, CtTensor, Lwe, Value};
use crate::error::{Result, RuntimeError};
use crate::keys::ClientKeys;
use crate::params::modulus;
use tfhe::core_crypto::prelude::*;
use veil_ir::interp::format_index;
use veil_ir::{Encoding, Graph, IntType, Op, Tensor};

/// Whether `v` of type `int` survives encoding with `width` message bits.
fn representable(v: i64, int: IntType, width: u8) -> bool {
    let w = width as u32;
    if int.signed {
        let lim = 1i128 << w;
        (-lim..lim).contains(&(v as i128))
    } else {
        (0..(1i128 << (w + 1))).contains(&(v as i128))
    }
}

/// Decodes a phase to the message (`width + 1` top bits, rounded), sign-extended when `signed`.
pub fn decode(phase: u64, width: u8, signed: bool) -> i64 {
    let w = width as usize;
    let d = SignedDecomposer::<u64>::new(DecompositionBaseLog(w + 1), DecompositionLevelCount(1));
    let m = d.closest_representable(phase) >> (63 - w);
    if signed && m >= (1u64 << w) {
        m as i64 - (1i64 << (w + 1))
    } else {
        m as i64
    }
}

fn check_width(enc: Encoding) -> Result<()> {
    if !(1..=62).contains(&enc.width) {
        return Err(RuntimeError::OutOfRange(format!(
            "encoding width {} is outside 1..=62",
            enc.width
        )));
    }
    Ok(())
}

impl ClientKeys {
    /// Encrypts a tensor of integers of type `int` under `enc`. Every value must be in `int`
    /// and survive the encoding's width.
    pub fn encrypt(&self, values: &Tensor<i64>, int: IntType, enc: Encoding) -> Result<CtTensor> {
        check_width(enc)?;
        if values.data.len() != values.shape.iter().product::<usize>() {
            return Err(RuntimeError::BadInput(format!(
                "tensor of shape {:?} holds {} values",
                values.shape,
                values.data.len()
            )));
        }
        for (i, &v) in values.data.iter().enumerate() {
            if !int.contains(v as i128) || !representable(v, int, enc.width) {
                return Err(RuntimeError::OutOfRange(format!(
                    "element {} = {v} does not fit {int} encoded with width {}",
                    format_index(&values.shape, i),
                    enc.width
                )));
            }
        }
        let key = self.lwe_key(enc.key)?;
        let noise = self.noise(enc.key);
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let data = values
            .data
            .iter()
            .map(|&v| {
                let mut ct = LweCiphertext::new(0u64, key.lwe_dimension().to_lwe_size(), modulus());
                encrypt_lwe_ciphertext(
                    &key,
                    &mut ct,
                    Plaintext(encode(v, enc.width)),
                    noise,
                    &mut rng,
                );
                Lwe::from_raw(ct.into_container(), enc.width)
            })
            .collect();
        let fp = self.params[enc.key.param() as usize].fingerprint();
        CtTensor::new(
            enc,
            self.key_id,
            fp,
            Tensor::new(values.shape.clone(), data)
                .map_err(|e| RuntimeError::shape("encrypt", e))?,
        )
    }

    /// Encrypts one integer.
    pub fn encrypt_scalar(&self, v: i64, int: IntType, enc: Encoding) -> Result<CtTensor> {
        self.encrypt(&Tensor::scalar(v), int, enc)
    }

    /// Decrypts a tensor, reading messages as `int` values (signed ones sign-extended).
    /// Fails on ciphertexts of another key generation.
    pub fn decrypt(&self, ct: &CtTensor, int: IntType) -> Result<Tensor<i64>> {
        if ct.key_id != self.key_id {
            return Err(RuntimeError::KeyMismatch(format!(
                "ciphertexts of key generation {:016x} cannot be decrypted with client keys {:016x}",
                ct.key_id, self.key_id
            )));
        }
        check_width(ct.encoding)?;
        let key = self.lwe_key(ct.encoding.key)?;
        let fp = self.params[ct.encoding.key.param() as usize].fingerprint();
        if ct.param_fingerprint != fp {
            return Err(RuntimeError::KeyMismatch(format!(
                "ciphertexts under {} were made with other parameters (fingerprint {:016x}, keys have {fp:016x})",
                ct.encoding.key, ct.param_fingerprint
            )));
        }
        let dim = key.lwe_dimension().0;
        let data = ct
            .tensor
            .data
            .iter()
            .map(|c| {
                if c.data.len() != dim + 1 {
                    return Err(RuntimeError::KeyMismatch(format!(
                        "ciphertext of dimension {} under {} whose key has dimension {dim}",
                        c.dimension(),
                        ct.encoding.key
                    )));
                }
                let view = LweCiphertext::from_container(&c.data[..], modulus());
                let p = decrypt_lwe_ciphertext(&key, &view);
                Ok(decode(p.0, ct.encoding.width, int.signed))
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::new(ct.tensor.shape.clone(), data).map_err(|e| RuntimeError::shape("decrypt", e))
    }

    /// Decrypts one integer (the first element).
    pub fn decrypt_scalar(&self, ct: &CtTensor, int: IntType) -> Result<i64> {
        Ok(self.decrypt(ct, int)?.data[0])
    }

    /// Turns clear program inputs into [`Value`]s: encrypted inputs are encrypted with their
    /// declared encoding, clear inputs pass through. Checks count and shapes.
    pub fn encrypt_inputs(&self, program: &Graph, inputs: &[Tensor<i64>]) -> Result<Vec<Value>> {
        let ins = program.inputs();
        if ins.len() != inputs.len() {
            return Err(RuntimeError::BadInput(format!(
                "the program takes {} input(s), got {}",
                ins.len(),
                inputs.len()
            )));
        }
        ins.iter()
            .zip(inputs)
            .map(|(&v, t)| {
                let ty = program.ty(v);
                let name = input_name(program.op(v));
                if t.shape != ty.shape {
                    return Err(RuntimeError::BadInput(format!(
                        "input \"{name}\" has shape {:?}, expected {:?}",
                        t.shape, ty.shape
                    )));
                }
                if let Some(i) = t.data.iter().position(|&x| !ty.int.contains(x as i128)) {
                    return Err(RuntimeError::OutOfRange(format!(
                        "input \"{name}\" element {} = {} does not fit {}",
                        format_index(&t.shape, i),
                        t.data[i],
                        ty.int
                    )));
                }
                match (ty.is_encrypted(), ty.encoding) {
                    (false, _) => Ok(Value::Clear(t.clone())),
                    (true, Some(enc)) => Ok(Value::Encrypted(self.encrypt(t, ty.int, enc)?)),
                    (true, None) => Err(RuntimeError::Program(format!(
                        "encrypted input \"{name}\" has no encoding; lower the program to the TFHE level"
                    ))),
                }
            })
            .collect()
    }

    /// Decrypts program outputs (clear outputs pass through) using the declared output types.
    pub fn decrypt_outputs(&self, program: &Graph, outputs: &[Value]) -> Result<Vec<Tensor<i64>>> {
        let outs = program.outputs();
        if outs.len() != outputs.len() {
            return Err(RuntimeError::BadInput(format!(
                "the program has {} output(s), got {} value(s)",
                outs.len(),
                outputs.len()
            )));
        }
        outs.iter()
            .zip(outputs)
            .map(|(&o, v)| match v {
                Value::Clear(t) => Ok(t.clone()),
                Value::Encrypted(c) => self.decrypt(c, program.ty(o).int),
            })
            .collect()
    }
}

fn input_name(op: &Op) -> &str {
    match op {
        Op::Input { name } | Op::Output { name } => name,
        _ => "?",
    }
}

/// A veil tensor from an ndarray (row-major copy).
pub fn tensor_from_ndarray(a: &ndarray::ArrayD<i64>) -> Tensor<i64> {
    Tensor {
        shape: a.shape().to_vec(),
        data: a.iter().copied().collect(),
    }
}

/// An ndarray from a veil tensor.
pub fn tensor_to_ndarray(t: &Tensor<i64>) -> Result<ndarray::ArrayD<i64>> {
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&t.shape), t.data.clone())
        .map_err(|e| RuntimeError::BadInput(format!("tensor of shape {:?}: {e}", t.shape)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rounds_and_sign_extends() {
        let w = 3;
        let delta = 1u64 << 60;
        assert_eq!(decode(5 * delta + delta / 3, w, false), 5);
        assert_eq!(decode(5 * delta - delta / 3, w, false), 5);
        assert_eq!(decode(encode(-3, w), w, true), -3);
        assert_eq!(decode(encode(-3, w).wrapping_sub(delta / 4), w, true), -3);
        assert_eq!(decode(encode(12, w), w, false), 12);
        assert!(representable(-8, IntType::signed(4), 3));
        assert!(!representable(8, IntType::signed(5), 3));
        assert!(!representable(16, IntType::unsigned(5), 3));
    }

    #[test]
    fn ndarray_round_trip() {
        let t = Tensor::new(vec![2, 3], vec![1, 2, 3, 4, 5, 6]).unwrap();
        let a = tensor_to_ndarray(&t).unwrap();
        assert_eq!(a[[1, 0]], 4);
        assert_eq!(tensor_from_ndarray(&a), t);
    }
}
