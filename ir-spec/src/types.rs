//! Value types: integer element types, tensor types, ciphertext encodings and shapes.
//!
//! Every value in a veil graph is a tensor (a scalar is a tensor of shape `[]`) of integers of one
//! [`IntType`]. A tensor is either **encrypted** (only the client can read it) or **clear**
//! (known to the server: constants, weights, clear inputs). At the TFHE level an encrypted value
//! additionally carries an [`Encoding`]: which secret key it is encrypted under and with which
//! message width (scaling factor `delta = 2^(63 - width)`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest supported bit width of an integer element (inclusive).
pub const MAX_BITS: u8 = 64;

/// An integer element type: signedness and bit width (1..=64).
///
/// Unsigned `uB` holds `0 ..= 2^B - 1`; signed `iB` holds `-2^(B-1) ..= 2^(B-1) - 1` (two's
/// complement). `i1` holds `-1..=0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct IntType {
    /// Whether values are signed (two's complement).
    pub signed: bool,
    /// Number of bits, 1..=64.
    pub bits: u8,
}

impl IntType {
    /// Unsigned type of `bits` bits.
    pub const fn unsigned(bits: u8) -> Self {
        IntType {
            signed: false,
            bits,
        }
    }

    /// Signed type of `bits` bits.
    pub const fn signed(bits: u8) -> Self {
        IntType { signed: true, bits }
    }

    /// Smallest representable value.
    pub fn min(self) -> i128 {
        if self.signed {
            -(1i128 << (self.bits - 1))
        } else {
            0
        }
    }

    /// Largest representable value.
    pub fn max(self) -> i128 {
        if self.signed {
            (1i128 << (self.bits - 1)) - 1
        } else {
            (1i128 << self.bits) - 1
        }
    }

    /// Whether `v` is representable.
    pub fn contains(self, v: i128) -> bool {
        v >= self.min() && v <= self.max()
    }

    /// Number of distinct values (`2^bits`), saturating at `u128::MAX` is never needed for 64 bits.
    pub fn domain_size(self) -> u128 {
        1u128 << self.bits
    }

    /// The narrowest type that holds every value of `lo..=hi` (signed iff `lo < 0`).
    ///
    /// Returns `None` if the range needs more than [`MAX_BITS`] bits.
    pub fn fitting(lo: i128, hi: i128) -> Option<IntType> {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        if lo < 0 {
            (1..=MAX_BITS)
                .map(IntType::signed)
                .find(|t| t.contains(lo) && t.contains(hi))
        } else {
            (1..=MAX_BITS)
                .map(IntType::unsigned)
                .find(|t| t.contains(hi))
        }
    }

    /// Whether bit width is within `1..=MAX_BITS`.
    pub fn is_valid(self) -> bool {
        (1..=MAX_BITS).contains(&self.bits)
    }
}

impl fmt::Display for IntType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", if self.signed { 'i' } else { 'u' }, self.bits)
    }
}

/// A tensor shape: the size of each axis, outermost first. `[]` is a scalar.
pub type Shape = Vec<usize>;

/// Number of elements of a shape (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Numpy broadcasting of two shapes: align trailing axes; sizes must be equal or one of them 1.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Which secret key a ciphertext is encrypted under, at the TFHE level.
///
/// Each parameter set `pK` owns two keys: the *big* LWE key (the flattened GLWE key, dimension
/// `k * N`) under which bootstrap outputs and client inputs live, and the *small* LWE key
/// (dimension `n`) that a keyswitch produces and a bootstrap consumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum KeyId {
    /// The big (GLWE-derived) LWE key of parameter set `.0`.
    Big(u32),
    /// The small LWE key of parameter set `.0`.
    Small(u32),
}

impl KeyId {
    /// The parameter set this key belongs to.
    pub fn param(self) -> u32 {
        match self {
            KeyId::Big(p) | KeyId::Small(p) => p,
        }
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyId::Big(p) => write!(f, "@p{p}"),
            KeyId::Small(p) => write!(f, "@p{p}.small"),
        }
    }
}

/// How an encrypted value is stored at the TFHE level: key and message width.
///
/// A message `m` (the integer value, two's complement modulo `2^(width+1)`) is stored as the
/// torus element `m * delta` with `delta = 2^(63 - width)`: `width` message bits below one
/// padding bit. Levelled operations are exact while results stay inside `width` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Encoding {
    /// Secret key the ciphertexts are encrypted under.
    pub key: KeyId,
    /// Message width in bits (1..=62), padding bit not included.
    pub width: u8,
}

impl Encoding {
    /// `log2(delta)`: the bit position of the message's least significant bit in a 64-bit torus
    /// element.
    pub fn delta_log(self) -> u32 {
        63 - self.width as u32
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.key, self.width)
    }
}

/// Whether a tensor is encrypted, or clear (visible to the server).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Visibility {
    /// Ciphertexts: only the client can read the values.
    Encrypted,
    /// Plain integers known to whoever runs the program.
    Clear,
}

/// The type of a value: visibility, element type, shape, and (TFHE level only) encoding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorType {
    /// Encrypted or clear.
    pub vis: Visibility,
    /// Element type.
    pub int: IntType,
    /// Shape; `[]` for a scalar.
    pub shape: Shape,
    /// Ciphertext encoding; `Some` exactly for encrypted values of a TFHE-level graph.
    pub encoding: Option<Encoding>,
}

impl TensorType {
    /// An encrypted tensor type without encoding (tensor level).
    pub fn encrypted(int: IntType, shape: impl Into<Shape>) -> Self {
        TensorType {
            vis: Visibility::Encrypted,
            int,
            shape: shape.into(),
            encoding: None,
        }
    }

    /// A clear tensor type.
    pub fn clear(int: IntType, shape: impl Into<Shape>) -> Self {
        TensorType {
            vis: Visibility::Clear,
            int,
            shape: shape.into(),
            encoding: None,
        }
    }

    /// Whether the value is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.vis == Visibility::Encrypted
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// The same type with another element type.
    pub fn with_int(&self, int: IntType) -> Self {
        TensorType {
            int,
            ..self.clone()
        }
    }

    /// The same type with another shape.
    pub fn with_shape(&self, shape: impl Into<Shape>) -> Self {
        TensorType {
            shape: shape.into(),
            ..self.clone()
        }
    }
}

/// Text form: `enc<u6>[2,3]`, `clear<i8>[4]`, `enc<u3>` (scalar), `enc<u3>[4] @p0/6` (TFHE level).
impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vis = match self.vis {
            Visibility::Encrypted => "enc",
            Visibility::Clear => "clear",
        };
        write!(f, "{vis}<{}>", self.int)?;
        if !self.shape.is_empty() {
            write!(f, "[")?;
            for (i, d) in self.shape.iter().enumerate() {
                if i > 0 {
                    write!(f, ",")?;
                }
                write!(f, "{d}")?;
            }
            write!(f, "]")?;
        }
        if let Some(e) = self.encoding {
            write!(f, " {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(IntType::unsigned(3).max(), 7);
        assert_eq!(IntType::signed(3).min(), -4);
        assert_eq!(IntType::signed(3).max(), 3);
        assert_eq!(IntType::signed(64).min(), i64::MIN as i128);
        assert_eq!(IntType::unsigned(64).max(), u64::MAX as i128);
        assert_eq!(IntType::fitting(0, 7), Some(IntType::unsigned(3)));
        assert_eq!(IntType::fitting(0, 8), Some(IntType::unsigned(4)));
        assert_eq!(IntType::fitting(-1, 0), Some(IntType::signed(1)));
        assert_eq!(IntType::fitting(-5, 3), Some(IntType::signed(4)));
        assert_eq!(IntType::fitting(0, 0), Some(IntType::unsigned(1)));
    }

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shapes(&[2, 3], &[3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shapes(&[2, 1], &[1, 4]), Some(vec![2, 4]));
        assert_eq!(broadcast_shapes(&[], &[5]), Some(vec![5]));
        assert_eq!(broadcast_shapes(&[2], &[3]), None);
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
    }

    #[test]
    fn display() {
        let t = TensorType::encrypted(IntType::unsigned(6), vec![2, 3]);
        assert_eq!(t.to_string(), "enc<u6>[2,3]");
        let s = TensorType::clear(IntType::signed(8), vec![]);
        assert_eq!(s.to_string(), "clear<i8>");
        let mut e = TensorType::encrypted(IntType::unsigned(3), vec![4]);
        e.encoding = Some(Encoding {
            key: KeyId::Small(1),
            width: 6,
        });
        assert_eq!(e.to_string(), "enc<u3>[4] @p1.small/6");
    }
}
