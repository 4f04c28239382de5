//! Operations. Each operation is one [`Op`] variant carrying its attributes; operands are graph
//! edges (see [`crate::Graph`]). The doc comment of each variant is its exact semantics, mirrored
//! by `SPEC.md` and implemented by the reference interpreter ([`crate::interp`]).
//!
//! General rules (all ops):
//! - Arithmetic is exact integer arithmetic on mathematical integers; the result must fit the
//!   result's declared [`crate::IntType`], otherwise evaluation fails with an overflow error
//!   naming the value (no silent wrap-around).
//! - Elementwise binary ops (`add`, `sub`, `mul`, comparisons, `min`, `max`) broadcast their
//!   operands numpy-style ([`crate::types::broadcast_shapes`]).
//! - A result is encrypted iff at least one operand is encrypted (inputs and constants state it).
//! - Ops marked **levelled** cost no bootstrap when applied to encrypted values; ops marked
//!   **PBS** need programmable bootstraps once lowered (`tlu`, comparisons, `min`, `max`, `relu`,
//!   `abs`, `round`, `clip`, and `mul`/`matmul`/`conv2d` when *both* operands are encrypted).

use serde::{Deserialize, Serialize};

/// Handle of a table stored once in a graph's table pool ([`crate::Graph::tables`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableId(pub u32);

/// Handle of a constant tensor stored in a graph's constant pool ([`crate::Graph::consts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConstId(pub u32);

/// Comparison predicates; result is `1` when the predicate holds, else `0`, typed `u1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CmpOp {
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
    /// `a == b`
    Eq,
    /// `a != b`
    Ne,
}

impl CmpOp {
    /// All predicates, in text-form order.
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Eq,
        CmpOp::Ne,
    ];

    /// Mnemonic in the text form.
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
        }
    }

    /// Evaluates the predicate.
    pub fn eval(self, a: i128, b: i128) -> bool {
        match self {
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }
}

/// Elementwise binary integer ops of numpy beyond `add`/`sub`/`mul` (the [`Op::Binary`]
/// family), with broadcasting. All work on mathematical integers (two's complement of
/// unbounded width for the bitwise ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinOp {
    /// `floordiv`: `a // b`, the quotient rounded toward negative infinity (numpy
    /// `floor_divide`); `b = 0` is an evaluation error.
    FloorDiv,
    /// `mod`: `a % b = a - b * (a // b)`: the remainder has the sign of the divisor (numpy
    /// `remainder`); `b = 0` is an evaluation error.
    Mod,
    /// `pow`: `a ** b` for `b >= 0` (`0 ** 0 = 1`); a negative exponent is an evaluation error.
    Pow,
    /// `bitand`: `a & b` (two's complement).
    BitAnd,
    /// `bitor`: `a | b` (two's complement).
    BitOr,
    /// `bitxor`: `a ^ b` (two's complement).
    BitXor,
    /// `shl`: `a << b = a * 2^b` for `b >= 0`; a negative shift is an evaluation error.
    Shl,
    /// `shr`: `a >> b = floor(a / 2^b)` (arithmetic shift) for `b >= 0`; a negative shift is
    /// an evaluation error.
    Shr,
    /// `and`: logical and, `1` when `a != 0` and `b != 0`, else `0` (numpy `logical_and`).
    And,
    /// `or`: logical or, `1` when `a != 0` or `b != 0`, else `0` (numpy `logical_or`).
    Or,
    /// `xor`: logical exclusive or, `1` when exactly one of `a`, `b` is nonzero (numpy
    /// `logical_xor`).
    Xor,
}

impl BinOp {
    /// All binary ops, in text-form order.
    pub const ALL: [BinOp; 11] = [
        BinOp::FloorDiv,
        BinOp::Mod,
        BinOp::Pow,
        BinOp::BitAnd,
        BinOp::BitOr,
        BinOp::BitXor,
        BinOp::Shl,
        BinOp::Shr,
        BinOp::And,
        BinOp::Or,
        BinOp::Xor,
    ];

    /// Mnemonic in the text form.
    pub fn name(self) -> &'static str {
        match self {
            BinOp::FloorDiv => "floordiv",
            BinOp::Mod => "mod",
            BinOp::Pow => "pow",
            BinOp::BitAnd => "bitand",
            BinOp::BitOr => "bitor",
            BinOp::BitXor => "bitxor",
            BinOp::Shl => "shl",
            BinOp::Shr => "shr",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Xor => "xor",
        }
    }

    /// Whether the result is a truth value (`0` or `1`).
    pub fn is_logical(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Xor)
    }

    /// Evaluates `a op b` exactly; an error says why it is undefined (division by zero, a
    /// negative exponent or shift, `i128` overflow).
    pub fn eval(self, a: i128, b: i128) -> Result<i128, String> {
        let ovf = || {
            format!(
                "{} of {a} and {b} overflows 128-bit arithmetic",
                self.name()
            )
        };
        match self {
            BinOp::FloorDiv | BinOp::Mod => {
                if b == 0 {
                    return Err(format!("{} by zero ({a} {} 0)", self.name(), self.symbol()));
                }
                let q = a.checked_div(b).ok_or_else(ovf)?;
                let r = a - q * b;
                let adjust = r != 0 && ((r < 0) != (b < 0));
                if self == BinOp::FloorDiv {
                    Ok(if adjust { q - 1 } else { q })
                } else {
                    Ok(if adjust { r + b } else { r })
                }
            }
            BinOp::Pow => {
                if b < 0 {
                    return Err(format!("negative exponent ({a} ** {b})"));
                }
                match a {
                    0 => Ok(if b == 0 { 1 } else { 0 }),
                    1 => Ok(1),
                    -1 => Ok(if b % 2 == 0 { 1 } else { -1 }),
                    _ => u32::try_from(b)
                        .ok()
                        .and_then(|e| a.checked_pow(e))
                        .ok_or_else(ovf),
                }
            }
            BinOp::BitAnd => Ok(a & b),
            BinOp::BitOr => Ok(a | b),
            BinOp::BitXor => Ok(a ^ b),
            BinOp::Shl => {
                if b < 0 {
                    return Err(format!("negative shift ({a} << {b})"));
                }
                if a == 0 {
                    return Ok(0);
                }
                if b >= 126 {
                    return Err(ovf());
                }
                a.checked_mul(1i128 << b).ok_or_else(ovf)
            }
            BinOp::Shr => {
                if b < 0 {
                    return Err(format!("negative shift ({a} >> {b})"));
                }
                Ok(a >> b.min(127))
            }
            BinOp::And => Ok(((a != 0) && (b != 0)) as i128),
            BinOp::Or => Ok(((a != 0) || (b != 0)) as i128),
            BinOp::Xor => Ok(((a != 0) != (b != 0)) as i128),
        }
    }

    /// The numpy / Python operator or function it implements, for messages and docs.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::And => "logical_and",
            BinOp::Or => "logical_or",
            BinOp::Xor => "logical_xor",
        }
    }
}

/// Elementwise unary integer ops of numpy beyond `neg`/`abs`/`relu` (the [`Op::Unary`] family).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnOp {
    /// `sign`: `-1`, `0` or `1` as `a` is negative, zero or positive (numpy `sign`).
    Sign,
    /// `not`: logical not, `1` when `a == 0`, else `0` (numpy `logical_not`).
    Not,
    /// `bitnot`: `~a = -a - 1` (two's complement, numpy `invert` on signed integers).
    BitNot,
}

impl UnOp {
    /// All unary ops, in text-form order.
    pub const ALL: [UnOp; 3] = [UnOp::Sign, UnOp::Not, UnOp::BitNot];

    /// Mnemonic in the text form.
    pub fn name(self) -> &'static str {
        match self {
            UnOp::Sign => "sign",
            UnOp::Not => "not",
            UnOp::BitNot => "bitnot",
        }
    }

    /// Evaluates the op exactly (`bitnot` of `i128::MIN` cannot overflow: `-MIN - 1 = MAX`).
    pub fn eval(self, a: i128) -> i128 {
        match self {
            UnOp::Sign => a.signum(),
            UnOp::Not => (a == 0) as i128,
            UnOp::BitNot => !a,
        }
    }
}

/// 2-D convolution attributes (ONNX `Conv` semantics, NCHW layout).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conv2dAttrs {
    /// Strides `[sh, sw]`.
    pub strides: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Dilations `[dh, dw]`.
    pub dilations: [usize; 2],
    /// Number of groups; `C` and `O` must both be divisible by it.
    pub group: usize,
}

impl Default for Conv2dAttrs {
    fn default() -> Self {
        Conv2dAttrs {
            strides: [1, 1],
            pads: [0, 0, 0, 0],
            dilations: [1, 1],
            group: 1,
        }
    }
}

/// An operation. Operands are listed as `(operand names)`; attributes are fields.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `input "name"`: program input number *k* (inputs are numbered in declaration order).
    /// Encrypted or clear per its type. No operands.
    Input {
        /// Name, unique among inputs.
        name: String,
    },
    /// `const`: a clear constant tensor from the constant pool. No operands.
    Const {
        /// Pool entry; its shape and values must match the result type.
        value: ConstId,
    },
    /// `add (a, b)`: `a + b` elementwise with broadcasting. Levelled.
    Add,
    /// `sub (a, b)`: `a - b` elementwise with broadcasting. Levelled.
    Sub,
    /// `neg (a)`: `-a`. Levelled.
    Neg,
    /// `mul (a, b)`: `a * b` elementwise with broadcasting. Levelled when at most one operand is
    /// encrypted; encrypted x encrypted costs two PBS (`((a+b)^2 - (a-b)^2) / 4`).
    Mul,
    /// `matmul (a, b)`: numpy `matmul` for ranks 1 and 2: `[m,k]x[k,n] -> [m,n]`,
    /// `[k]x[k,n] -> [n]`, `[m,k]x[k] -> [m]`, `[k]x[k] -> []`. Levelled when one side is clear.
    MatMul,
    /// `conv2d (x, w)` or `conv2d (x, w, bias)`: x `[N,C,H,W]`, w `[O,C/group,KH,KW]`, bias
    /// `[O]`; output `[N,O,OH,OW]` with `OH = (H + pt + pb - dh*(KH-1) - 1) / sh + 1`
    /// (likewise OW); zero padding. Levelled when `w` and `bias` are clear.
    Conv2d(Conv2dAttrs),
    /// `sum (a)`: sum over `axes` (all axes if empty); `keepdims` keeps them with size 1.
    /// Levelled.
    Sum {
        /// Axes to reduce, ascending, no duplicates; empty means all axes.
        axes: Vec<usize>,
        /// Keep reduced axes with size 1.
        keepdims: bool,
    },
    /// `reshape (a)`: same elements in row-major order, result shape from the result type
    /// (element counts must match). Levelled (free).
    Reshape,
    /// `transpose (a)`: result axis `i` is operand axis `perm[i]`. Levelled (free).
    Transpose {
        /// A permutation of `0..rank`.
        perm: Vec<usize>,
    },
    /// `broadcast (a)`: numpy `broadcast_to` the result type's shape. Levelled (free).
    Broadcast,
    /// `concat (a, b, ...)`: concatenation along `axis`; all other axes equal. Levelled (free).
    Concat {
        /// Axis to concatenate along.
        axis: usize,
    },
    /// `slice (a)`: per axis `i`, elements `starts[i], starts[i]+steps[i], ...` strictly below
    /// `stops[i]` (python `a[start:stop:step]`, non-negative bounds, `step >= 1`); result axis
    /// length `ceil((stop - start) / step)`. Indexing one element is a slice of length 1
    /// followed by `reshape`. Levelled (free).
    Slice {
        /// First index per axis.
        starts: Vec<usize>,
        /// End (exclusive) per axis, `start <= stop <= dim`.
        stops: Vec<usize>,
        /// Step per axis, `>= 1`.
        steps: Vec<usize>,
    },
    /// `tlu (a)`: table lookup, `table[a - min(type(a))]` elementwise: entry `i` of the table is
    /// the image of the `i`-th smallest value of the operand's type, so a table on a `uB` or `iB`
    /// operand has exactly `2^B` entries. One PBS per element.
    Tlu {
        /// The table.
        table: TableId,
    },
    /// `tlu.multi (a)`: one table per element: element `j` (row-major) is looked up in
    /// `tables[map[j]]`. `map.len()` equals the operand's element count. One PBS per element.
    TluMulti {
        /// Candidate tables.
        tables: Vec<TableId>,
        /// Per-element index into `tables`.
        map: Vec<u32>,
    },
    /// `lt`/`le`/`gt`/`ge`/`eq`/`ne (a, b)`: comparison with broadcasting, result `u1`
    /// (1 when true). One PBS per element on the difference when an operand is encrypted.
    Cmp(CmpOp),
    /// `min (a, b)`: elementwise minimum with broadcasting. PBS.
    Min,
    /// `max (a, b)`: elementwise maximum with broadcasting. PBS.
    Max,
    /// `relu (a)`: `max(a, 0)`. PBS.
    Relu,
    /// `floordiv`/`mod`/`pow`/`bitand`/`bitor`/`bitxor`/`shl`/`shr`/`and`/`or`/`xor (a, b)`:
    /// the elementwise integer op [`BinOp`] with broadcasting (see each variant for its exact
    /// semantics). PBS: with one operand clear it is a univariate function of the other (one
    /// lookup per element); with both encrypted, one lookup of the packed pair per element when
    /// the two widths fit one bootstrap.
    Binary(BinOp),
    /// `sign`/`not`/`bitnot (a)`: the elementwise unary op [`UnOp`]. PBS (one lookup per
    /// element).
    Unary(UnOp),
    /// `where (c, a, b)`: numpy `where`: `a` where `c != 0`, else `b`, elementwise with
    /// three-way broadcasting. PBS when `c` is encrypted (one lookup of the packed triple per
    /// element when it fits one bootstrap); levelled when `c` is clear.
    Where,
    /// `abs (a)`: `|a|`. PBS.
    Abs,
    /// `round (a) lsbs=k`: round to the nearest multiple of `2^k`, ties upward:
    /// `((a + 2^(k-1)) >> k) << k` with an arithmetic shift (floor); `k = 0` is the identity.
    /// The result keeps the operand's scale, so it may need one more bit. Lowered to cheap
    /// PBS that only see the kept high bits.
    ///
    /// `round (a) lsbs=k approx=true` is *approximate* rounding (Concrete's
    /// `Exactness.APPROXIMATE`): the encrypted result is `floor(a / 2^k) * 2^k` or
    /// `ceil(a / 2^k) * 2^k` — the nearest multiple except, near a tie, possibly the other
    /// neighbour, as the bootstrap's noise decides. The reference interpreter computes the
    /// exact rounding (one of the two); the result type must hold both neighbours of every
    /// operand value. It costs no bootstrap of its own when only lookups read it (their
    /// keyswitch reads the kept high bits with `keyswitch.round`), else one at the kept width.
    ///
    /// `rescale=true` (approximate rounding only) returns the rounded *quotient*
    /// `round(a / 2^k)` instead of the multiple: the value a lookup reads when it only depends
    /// on the kept high bits, so that its table has one entry per kept value (the operand may
    /// be much wider than a table could enumerate).
    Round {
        /// Number of low bits dropped, `1 <= k < bits(a)`.
        lsbs: u8,
        /// Approximate rounding (off by one step near ties) instead of exact.
        approx: bool,
        /// Divide by `2^k`: the result is the rounded quotient (needs `approx`).
        rescale: bool,
    },
    /// `clip (a) lo=L hi=H`: `min(max(a, L), H)`, `L <= H`. PBS.
    Clip {
        /// Lower bound.
        lo: i64,
        /// Upper bound.
        hi: i64,
    },
    /// `output "name" (a)`: program output number *k* (in order of appearance). Produces no
    /// value usable by other ops; its type equals the operand's.
    Output {
        /// Name, unique among outputs.
        name: String,
    },
    /// `keyswitch (a)` (TFHE level only): re-encrypts every ciphertext of `a` from the operand's
    /// encoding key to the result's encoding key, keeping the message. The width may change
    /// only when going to a small key whose parameter set bootstraps it. (Like every
    /// keyswitch op, an element that only constant `pbs` tables read need not be computed:
    /// [`crate::Graph::elements_read`].)
    KeySwitch,
    /// `pbs (a)` (TFHE level only): programmable bootstrap of each ciphertext of `a` (under a
    /// small key `@pK.small` with width `w_in`) through a raw table: with `m` the `w_in`-bit
    /// message (the padding bit must be zero), the result holds `table[m]` (per element
    /// `tables[map[j]]` when several), encoded with the result type's width under `@pK`.
    /// Entry `i` is the image of message `i` (no signed offset at this level). An element whose
    /// table is constant is not bootstrapped: its result is the trivial (noiseless) encryption
    /// of that constant ([`crate::Graph::bootstraps`] counts the others).
    Pbs {
        /// Candidate tables (one, or several with a per-element map).
        tables: Vec<TableId>,
        /// Per-element index into `tables`; empty when there is exactly one table.
        map: Vec<u32>,
    },
    /// `keyswitch.shr (a) shift=K` (TFHE level only): a keyswitch to a small key whose result
    /// message is `a >> K`; the operand's `K` low bits must be zero (a value rounded by exact
    /// `round` lowering). The ciphertext is not divided: the operand's `w`-bit encoding of
    /// `m * 2^K` is the `(w - K)`-bit encoding of `m`, so the narrowing multiplies by
    /// `2^(w - K - w_in)` only. The result type is the operand's with `K` fewer bits.
    KeySwitchShr {
        /// Known-zero low bits dropped, `1 <= K < bits(a)`.
        shift: u8,
    },
    /// `keyswitch.bit (a) bit=J` (TFHE level only): bit `J` of every element of `a` (two's
    /// complement), whose bits below `J` must be zero, as a `u1` under a small key with width
    /// 1; the `pbs` reading it looks the bit up in a 2-entry table. The ciphertext is scaled by
    /// `2^(w - J)` so that bit `J` lands on the padding bit, plus a quarter of the torus: the
    /// bootstrap reads it as a sign (one step of exact rounding, after tfhe-rs's bit
    /// extraction). Its noise must fit a `(J + 1)`-bit message of the operand's encoding.
    KeySwitchBit {
        /// The bit to extract, `J < w` (the operand encoding's width).
        bit: u8,
    },
    /// `keyswitch.round (a) shift=K` (TFHE level only): a keyswitch to a small key whose
    /// result message is `a / 2^K` rounded to an integer *approximately* (lowering of
    /// approximate `round`): the ciphertext is read like `keyswitch.shr`, but the `K` low bits
    /// need not be zero; they shift the phase inside the bootstrap's box, so the bootstrap
    /// reads `floor(a / 2^K)` or `ceil(a / 2^K)` (the nearest one unless `a` is within the
    /// noise of a tie). The reference interpreter computes `(a + 2^(K-1)) >> K`. The operand
    /// is non-negative; the result is unsigned with the width the consumer's table needs
    /// (every in-domain result must fit it), and the window `K + bits` must fit the
    /// operand's encoding.
    KeySwitchRound {
        /// Low bits rounded away, `K >= 1`.
        shift: u8,
    },
    /// `wop.pbs (a) tables=[..] map=[..] pfks_base_log=B pfks_level=L cbs_base_log=B
    /// cbs_level=L out_bits=O` (TFHE level only): a table lookup by WoP-PBS (bit extraction,
    /// circuit bootstrap, vertical packing; Bergerat et al., J. Cryptology 2023) for inputs of
    /// up to 16 bits. The operand is under a *big* key `@pK` with width `w` (at most
    /// `@pK`'s `message_bits`, at most 16); with `m` its `w`-bit message (the padding bit must be
    /// zero), the result holds `table[m]` (per element `tables[map[j]]` when several), under the
    /// same big key `@pK` with the result type's width, which is at most `out_bits`. Tables
    /// have `2^w` entries; entry `i` is the image of message `i`. The attributes are the
    /// lookup's decompositions beside `@pK`: the PFPKS keys' (`pfks_*`), the circuit
    /// bootstrap's GGSW (`cbs_*`), and `out_bits`, the widest output its noise allows. All
    /// `wop.pbs` under one set state the same attributes (one set of WoP keys per set).
    WopPbs {
        /// Candidate tables (one, or several with a per-element map).
        tables: Vec<TableId>,
        /// Per-element index into `tables`; empty when there is exactly one table.
        map: Vec<u32>,
        /// Base log of the PFPKS keys.
        pfks_base_log: u8,
        /// Levels of the PFPKS keys.
        pfks_level: u8,
        /// Base log of the circuit bootstrap's GGSW ciphertexts.
        cbs_base_log: u8,
        /// Levels of those GGSW ciphertexts.
        cbs_level: u8,
        /// Widest output message one lookup ciphertext carries.
        out_bits: u8,
    },
}

impl Op {
    /// Mnemonic in the text form.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Const { .. } => "const",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Neg => "neg",
            Op::Mul => "mul",
            Op::MatMul => "matmul",
            Op::Conv2d(_) => "conv2d",
            Op::Sum { .. } => "sum",
            Op::Reshape => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Broadcast => "broadcast",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::Tlu { .. } => "tlu",
            Op::TluMulti { .. } => "tlu.multi",
            Op::Cmp(c) => c.name(),
            Op::Min => "min",
            Op::Max => "max",
            Op::Relu => "relu",
            Op::Binary(b) => b.name(),
            Op::Unary(u) => u.name(),
            Op::Where => "where",
            Op::Abs => "abs",
            Op::Round { .. } => "round",
            Op::Clip { .. } => "clip",
            Op::Output { .. } => "output",
            Op::KeySwitch => "keyswitch",
            Op::Pbs { .. } => "pbs",
            Op::KeySwitchShr { .. } => "keyswitch.shr",
            Op::KeySwitchBit { .. } => "keyswitch.bit",
            Op::KeySwitchRound { .. } => "keyswitch.round",
            Op::WopPbs { .. } => "wop.pbs",
        }
    }

    /// Allowed operand counts `(min, max)`; `max = usize::MAX` means variadic.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Op::Input { .. } | Op::Const { .. } => (0, 0),
            Op::Add
            | Op::Sub
            | Op::Mul
            | Op::MatMul
            | Op::Cmp(_)
            | Op::Min
            | Op::Max
            | Op::Binary(_) => (2, 2),
            Op::Where => (3, 3),
            Op::Conv2d(_) => (2, 3),
            Op::Concat { .. } => (1, usize::MAX),
            Op::Neg
            | Op::Sum { .. }
            | Op::Reshape
            | Op::Transpose { .. }
            | Op::Broadcast
            | Op::Slice { .. }
            | Op::Tlu { .. }
            | Op::TluMulti { .. }
            | Op::Relu
            | Op::Abs
            | Op::Unary(_)
            | Op::Round { .. }
            | Op::Clip { .. }
            | Op::Output { .. }
            | Op::KeySwitch
            | Op::KeySwitchShr { .. }
            | Op::KeySwitchBit { .. }
            | Op::KeySwitchRound { .. }
            | Op::Pbs { .. }
            | Op::WopPbs { .. } => (1, 1),
        }
    }

    /// Whether the op only exists at the TFHE level.
    pub fn is_tfhe_only(&self) -> bool {
        match self {
            Op::KeySwitch
            | Op::KeySwitchShr { .. }
            | Op::KeySwitchBit { .. }
            | Op::KeySwitchRound { .. }
            | Op::Pbs { .. }
            | Op::WopPbs { .. } => true,
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
            | Op::Output { .. } => false,
        }
    }

    /// Whether the op is one of the keyswitches (`keyswitch`, `keyswitch.shr`,
    /// `keyswitch.bit`, `keyswitch.round`): an op with a [`Op::keyswitch_window`].
    pub fn is_keyswitch(&self) -> bool {
        self.keyswitch_window(1).is_some()
    }

    /// The operand bits a keyswitch reads, as `(lsb, bits)`: bits `lsb .. lsb + bits` of the
    /// operand become the result's message (`bits` is the result type's width, so a plain
    /// keyswitch is `(0, bits)`, `keyswitch.shr` and `keyswitch.round` `(K, bits)` and
    /// `keyswitch.bit` `(J, 1)`).
    /// The operand's encoding must hold at least `lsb + bits` bits, and narrowing it to the
    /// result multiplies its noise by `2^(w - lsb - bits)`. `None` for other ops.
    pub fn keyswitch_window(&self, result_bits: u8) -> Option<(u8, u8)> {
        match self {
            Op::KeySwitch => Some((0, result_bits)),
            Op::KeySwitchShr { shift } => Some((*shift, result_bits)),
            Op::KeySwitchBit { bit } => Some((*bit, 1)),
            Op::KeySwitchRound { shift } => Some((*shift, result_bits)),
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
            | Op::Output { .. }
            | Op::Pbs { .. }
            | Op::WopPbs { .. } => None,
        }
    }

    /// Whether the op is a univariate function of its single operand applied elementwise
    /// (so it can be folded into a table lookup). Approximate `round` is not: folding it
    /// would make the lookup read the operand's full width, which is what it exists to avoid.
    pub fn is_elementwise_unary(&self) -> bool {
        match self {
            Op::Neg
            | Op::Tlu { .. }
            | Op::Relu
            | Op::Abs
            | Op::Round { approx: false, .. }
            | Op::Clip { .. }
            | Op::Unary(_) => true,
            // a keyswitch or a bootstrap is unary and elementwise too, but TFHE-level only: it
            // is never folded into a tensor-level lookup
            Op::Round { approx: true, .. }
            | Op::Input { .. }
            | Op::Const { .. }
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::MatMul
            | Op::Conv2d(_)
            | Op::Sum { .. }
            | Op::Reshape
            | Op::Transpose { .. }
            | Op::Broadcast
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::TluMulti { .. }
            | Op::Cmp(_)
            | Op::Min
            | Op::Max
            | Op::Binary(_)
            | Op::Where
            | Op::Output { .. }
            | Op::KeySwitch
            | Op::KeySwitchShr { .. }
            | Op::KeySwitchBit { .. }
            | Op::KeySwitchRound { .. }
            | Op::Pbs { .. }
            | Op::WopPbs { .. } => false,
        }
    }

    /// Whether applying the op to encrypted operands needs bootstraps, given how many of its
    /// operands are encrypted.
    pub fn needs_pbs(&self, encrypted_operands: usize) -> bool {
        match self {
            Op::Tlu { .. }
            | Op::TluMulti { .. }
            | Op::Cmp(_)
            | Op::Min
            | Op::Max
            | Op::Relu
            | Op::Abs
            | Op::Round { .. }
            | Op::Clip { .. }
            | Op::Unary(_)
            | Op::Pbs { .. }
            | Op::WopPbs { .. } => encrypted_operands > 0,
            // A lookup of the encrypted operand, or of the packed pair.
            Op::Binary(_) => encrypted_operands > 0,
            // Conservative: levelled only when the condition is clear, which the count of
            // encrypted operands cannot tell.
            Op::Where => encrypted_operands > 0,
            Op::Mul | Op::MatMul | Op::Conv2d(_) => encrypted_operands > 1,
            // levelled, or not computing at all (keyswitches only change the key)
            Op::Input { .. }
            | Op::Const { .. }
            | Op::Add
            | Op::Sub
            | Op::Neg
            | Op::Sum { .. }
            | Op::Reshape
            | Op::Transpose { .. }
            | Op::Broadcast
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Output { .. }
            | Op::KeySwitch
            | Op::KeySwitchShr { .. }
            | Op::KeySwitchBit { .. }
            | Op::KeySwitchRound { .. } => false,
        }
    }
}

/// A table of a table lookup: entry `i` is the image of the `i`-th input value (see
/// [`Op::Tlu`] and [`Op::Pbs`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Table {
    /// Entries; length `2^B` for a `B`-bit input.
    pub entries: Vec<i64>,
}

impl Table {
    /// Whether every entry is the same ([`is_constant_table`]).
    pub fn is_constant(&self) -> bool {
        is_constant_table(&self.entries)
    }
}

/// Whether every entry of a table is the same: a `pbs` element reading it needs no bootstrap
/// (its result is the trivial, noiseless encryption of that entry).
pub fn is_constant_table(entries: &[i64]) -> bool {
    entries.windows(2).all(|w| w[0] == w[1])
}

/// A constant tensor: clear integers in row-major order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Constant {
    /// Shape of the tensor.
    pub shape: Vec<usize>,
    /// Row-major values; `len == numel(shape)`.
    pub values: Vec<i64>,
}
