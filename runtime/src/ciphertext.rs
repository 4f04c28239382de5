//! Ciphertexts: one LWE ciphertext ([`Lwe`], the element type the shared levelled kernels run
//! on), tensors of them ([`CtTensor`]) and program values ([`Value`]).

use crate::error::{Result, RuntimeError};
use veil_ir::{Element, Encoding, Tensor};

/// One LWE ciphertext over the native 64-bit torus: mask coefficients followed by the body,
/// plus the message width of its encoding (`delta = 2^(63 - width)`), which clear additions
/// need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lwe {
    pub(crate) data: Vec<u64>,
    pub(crate) width: u8,
}

impl Lwe {
    /// A ciphertext from its raw coefficients (mask then body) and message width.
    pub fn from_raw(data: Vec<u64>, width: u8) -> Self {
        Lwe { data, width }
    }

    /// The raw coefficients: the LWE mask followed by the body.
    pub fn raw(&self) -> &[u64] {
        &self.data
    }

    /// Message width of the encoding.
    pub fn width(&self) -> u8 {
        self.width
    }

    /// LWE dimension (mask length).
    pub fn dimension(&self) -> usize {
        self.data.len() - 1
    }

    /// The trivial (noiseless, key-independent) encryption of message `m` in dimension `dim`.
    pub fn trivial(dim: usize, width: u8, m: i64) -> Self {
        let mut data = vec![0u64; dim + 1];
        data[dim] = encode(m, width);
        Lwe { data, width }
    }

    fn body_mut(&mut self) -> &mut u64 {
        self.data.last_mut().expect("an LWE ciphertext has a body")
    }
}

/// The plaintext `m * delta` of a message (two's complement, wrapping mod 2^64).
pub fn encode(m: i64, width: u8) -> u64 {
    (m as u64).wrapping_mul(1u64 << (63 - width as u32))
}

impl Element for Lwe {
    fn add(&self, o: &Self) -> Self {
        let mut r = self.clone();
        r.data
            .iter_mut()
            .zip(&o.data)
            .for_each(|(a, b)| *a = a.wrapping_add(*b));
        r
    }
    fn sub(&self, o: &Self) -> Self {
        let mut r = self.clone();
        r.data
            .iter_mut()
            .zip(&o.data)
            .for_each(|(a, b)| *a = a.wrapping_sub(*b));
        r
    }
    fn neg(&self) -> Self {
        let mut r = self.clone();
        r.data.iter_mut().for_each(|a| *a = a.wrapping_neg());
        r
    }
    fn mul_int(&self, k: i64) -> Self {
        let mut r = self.clone();
        let k = k as u64;
        r.data.iter_mut().for_each(|a| *a = a.wrapping_mul(k));
        r
    }
    fn add_int(&self, k: i64) -> Self {
        let mut r = self.clone();
        let d = encode(k, self.width);
        let b = r.body_mut();
        *b = b.wrapping_add(d);
        r
    }
    fn mul_add_assign(&mut self, o: &Self, k: i64) {
        let k = k as u64;
        self.data
            .iter_mut()
            .zip(&o.data)
            .for_each(|(a, b)| *a = a.wrapping_add(b.wrapping_mul(k)));
    }
    fn zero_like(&self) -> Self {
        Lwe {
            data: vec![0; self.data.len()],
            width: self.width,
        }
    }
}

/// A tensor of ciphertexts sharing one encoding, tagged with the key generation it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtTensor {
    pub(crate) encoding: Encoding,
    pub(crate) key_id: u64,
    pub(crate) param_fingerprint: u64,
    pub(crate) tensor: Tensor<Lwe>,
}

impl CtTensor {
    /// Assembles a ciphertext tensor, checking that every element has the encoding's width and
    /// one LWE dimension.
    pub fn new(
        encoding: Encoding,
        key_id: u64,
        param_fingerprint: u64,
        tensor: Tensor<Lwe>,
    ) -> Result<Self> {
        let dim = tensor.data.first().map(|c| c.data.len());
        for (i, c) in tensor.data.iter().enumerate() {
            if c.width != encoding.width || Some(c.data.len()) != dim || c.data.len() < 2 {
                return Err(RuntimeError::Invalid {
                    what: "ciphertext tensor",
                    why: format!(
                        "element {i} has width {} and size {} but the tensor has encoding {encoding} and size {:?}",
                        c.width,
                        c.data.len(),
                        dim
                    ),
                });
            }
        }
        Ok(CtTensor {
            encoding,
            key_id,
            param_fingerprint,
            tensor,
        })
    }

    /// Encoding (key and message width).
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Identifier of the key generation the ciphertexts belong to.
    pub fn key_id(&self) -> u64 {
        self.key_id
    }

    /// Fingerprint of the parameter set of the encoding's key.
    pub fn param_fingerprint(&self) -> u64 {
        self.param_fingerprint
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        &self.tensor.shape
    }

    /// The ciphertexts.
    pub fn tensor(&self) -> &Tensor<Lwe> {
        &self.tensor
    }

    /// LWE dimension of the elements.
    pub fn lwe_dimension(&self) -> usize {
        self.tensor.data.first().map_or(0, |c| c.dimension())
    }
}

/// A program value: a clear tensor or a tensor of ciphertexts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Plain integers known to the server.
    Clear(Tensor<i64>),
    /// Ciphertexts.
    Encrypted(CtTensor),
}

impl Value {
    /// Shape of the value.
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::Clear(t) => &t.shape,
            Value::Encrypted(c) => c.shape(),
        }
    }

    /// The ciphertexts, or `None` for a clear value.
    pub fn as_encrypted(&self) -> Option<&CtTensor> {
        match self {
            Value::Encrypted(c) => Some(c),
            Value::Clear(_) => None,
        }
    }

    /// The clear tensor, or `None` for ciphertexts.
    pub fn as_clear(&self) -> Option<&Tensor<i64>> {
        match self {
            Value::Clear(t) => Some(t),
            Value::Encrypted(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(c: &Lwe) -> u64 {
        // Trivial ciphertexts: the mask is zero, the body is the plaintext.
        *c.data.last().unwrap()
    }

    #[test]
    fn element_ops_on_trivial_ciphertexts() {
        let a = Lwe::trivial(4, 3, 2);
        let b = Lwe::trivial(4, 3, -3);
        assert_eq!(phase(&a.add(&b)), encode(-1, 3));
        assert_eq!(phase(&a.sub(&b)), encode(5, 3));
        assert_eq!(phase(&b.neg()), encode(3, 3));
        assert_eq!(phase(&a.mul_int(-2)), encode(-4, 3));
        assert_eq!(phase(&a.add_int(4)), encode(6, 3));
        let mut c = a.clone();
        c.mul_add_assign(&b, 2);
        assert_eq!(phase(&c), encode(-4, 3));
        assert_eq!(phase(&a.zero_like()), 0);
    }
}
