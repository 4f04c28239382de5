//! numpy operations that are compositions of IR ops: reductions by `max`/`min`, `mean`, max and
//! average pooling, Concrete's `truncate_bit_pattern` and bit extraction.
//!
//! Each is a [`Builder`] method built from existing ops only, so it needs no interpreter,
//! verifier or lowering of its own, and the compiler sees ordinary ops it already optimizes
//! (the `desugar` pass turns the bit manipulations into one lookup each). The costs below are
//! per result element, on encrypted operands.
//!
//! ```
//! use veil_ir::{Builder, IntType, Tensor};
//! # fn main() -> Result<(), veil_ir::BuildError> {
//! let b = Builder::new();
//! let x = b.input_encrypted("x", &[2, 3], IntType::unsigned(4))?;
//! let m = b.reduce_max(x, &[1], false)?; // np.max(x, axis=1)
//! b.output("m", m)?;
//! let g = b.finish()?;
//! let x = Tensor::new(vec![2, 3], vec![1, 9, 4, 7, 2, 3]).unwrap();
//! let out = veil_ir::run(&g, &[x]).unwrap();
//! assert_eq!(out[0].data, vec![9, 7]);
//! # Ok(())
//! # }
//! ```

use crate::builder::{BuildError, Builder};
use crate::graph::ValueId;
use crate::ops::{BinOp, Op};

type BResult<T = ValueId> = Result<T, BuildError>;

fn invalid(op: &'static str, msg: impl Into<String>) -> BuildError {
    BuildError::Invalid {
        op,
        msg: msg.into(),
    }
}

/// The reduced axes of `rank`: `axes` checked (in range, no duplicates) and sorted; all axes
/// when empty.
fn reduced_axes(op: &'static str, axes: &[usize], rank: usize) -> BResult<Vec<usize>> {
    if axes.is_empty() {
        return Ok((0..rank).collect());
    }
    let mut out = axes.to_vec();
    out.sort_unstable();
    if let Some(&a) = out.iter().find(|&&a| a >= rank) {
        return Err(invalid(
            op,
            format!("axis {a} is out of range for rank {rank}"),
        ));
    }
    if out.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid(op, format!("axes {axes:?} repeat an axis")));
    }
    Ok(out)
}

impl Builder {
    /// `a[..., lo:hi, ...]` on one axis.
    fn slice_axis(&self, a: ValueId, axis: usize, lo: usize, hi: usize) -> BResult {
        let shape = self.shape(a)?;
        let mut starts = vec![0; shape.len()];
        let mut stops = shape.clone();
        starts[axis] = lo;
        stops[axis] = hi;
        self.slice(a, &starts, &stops, &vec![1; shape.len()])
    }

    /// Folds `vals` pairwise with `op` as a balanced tree (depth `ceil(log2 n)`).
    fn fold_balanced(&self, mut vals: Vec<ValueId>, op: &Op) -> BResult {
        while vals.len() > 1 {
            let mut next = Vec::with_capacity(vals.len().div_ceil(2));
            for pair in vals.chunks(2) {
                next.push(match pair {
                    [a, b] => self.pairwise(op, *a, *b)?,
                    [a] => *a,
                    _ => unreachable!("chunks(2) yields one or two values"),
                });
            }
            vals = next;
        }
        vals.pop()
            .ok_or_else(|| invalid(op.name(), "nothing to reduce"))
    }

    fn pairwise(&self, op: &Op, a: ValueId, b: ValueId) -> BResult {
        match op {
            Op::Max => self.max(a, b),
            Op::Min => self.min(a, b),
            Op::Add => self.add(a, b),
            _ => Err(invalid(op.name(), "not a pairwise reduction")),
        }
    }

    /// Reduces one axis with `op` as a tree of halves: `ceil(log2 n)` levels, `n - 1` pairwise
    /// ops per reduced group; the axis stays, with size 1.
    fn reduce_axis(&self, a: ValueId, axis: usize, op: &Op) -> BResult {
        let mut cur = a;
        loop {
            let n = self.shape(cur)?[axis];
            if n == 1 {
                return Ok(cur);
            }
            let h = n / 2;
            let lo = self.slice_axis(cur, axis, 0, h)?;
            let hi = self.slice_axis(cur, axis, h, 2 * h)?;
            let m = self.pairwise(op, lo, hi)?;
            cur = if n % 2 == 1 {
                let last = self.slice_axis(cur, axis, 2 * h, n)?;
                self.concat(&[m, last], axis)?
            } else {
                m
            };
        }
    }

    fn reduce(
        &self,
        name: &'static str,
        a: ValueId,
        axes: &[usize],
        keepdims: bool,
        op: &Op,
    ) -> BResult {
        let shape = self.shape(a)?;
        let axes = reduced_axes(name, axes, shape.len())?;
        let mut cur = a;
        for &ax in &axes {
            cur = self.reduce_axis(cur, ax, op)?;
        }
        let kept: Vec<usize> = if keepdims {
            shape
                .iter()
                .enumerate()
                .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
                .collect()
        } else {
            shape
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect()
        };
        if self.shape(cur)? == kept {
            Ok(cur)
        } else {
            self.reshape(cur, &kept)
        }
    }

    /// numpy `max(a, axis=axes, keepdims=...)` (all axes when `axes` is empty): a tree of
    /// pairwise `max` over slices, `n - 1` maxima (one bootstrap each on encrypted values) per
    /// group of `n` reduced elements, `ceil(log2 n)` deep.
    pub fn reduce_max(&self, a: ValueId, axes: &[usize], keepdims: bool) -> BResult {
        self.reduce("reduce_max", a, axes, keepdims, &Op::Max)
    }

    /// numpy `min(a, axis=axes, keepdims=...)`: like [`Builder::reduce_max`] with `min`.
    pub fn reduce_min(&self, a: ValueId, axes: &[usize], keepdims: bool) -> BResult {
        self.reduce("reduce_min", a, axes, keepdims, &Op::Min)
    }

    /// numpy `mean(a, axis=axes)` on integers, rounded toward negative infinity: the levelled
    /// `sum`, then one floor division by the element count (one lookup).
    pub fn mean(&self, a: ValueId, axes: &[usize], keepdims: bool) -> BResult {
        let shape = self.shape(a)?;
        let axes = reduced_axes("mean", axes, shape.len())?;
        let count: usize = axes.iter().map(|&i| shape[i]).product();
        let s = self.sum(a, &axes, keepdims)?;
        if count == 1 {
            return Ok(s);
        }
        self.floor_div(s, count as i64)
    }

    /// The `kh * kw` strided window views of an `[N,C,H,W]` tensor, each `[N,C,OH,OW]`.
    fn pool_windows(
        &self,
        name: &'static str,
        x: ValueId,
        kernel: [usize; 2],
        strides: [usize; 2],
    ) -> BResult<Vec<ValueId>> {
        let shape = self.shape(x)?;
        let [n, c, h, w] = shape[..] else {
            return Err(invalid(
                name,
                format!("the input must be [N,C,H,W], got shape {shape:?}"),
            ));
        };
        let [kh, kw] = kernel;
        let [sh, sw] = strides;
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
            return Err(invalid(
                name,
                format!("kernel {kernel:?} and strides {strides:?} must be at least 1"),
            ));
        }
        if kh > h || kw > w {
            return Err(invalid(
                name,
                format!("kernel {kernel:?} is larger than the image {h}x{w}"),
            ));
        }
        let (oh, ow) = ((h - kh) / sh + 1, (w - kw) / sw + 1);
        let mut views = Vec::with_capacity(kh * kw);
        for ky in 0..kh {
            for kx in 0..kw {
                views.push(self.slice(
                    x,
                    &[0, 0, ky, kx],
                    &[n, c, ky + (oh - 1) * sh + 1, kx + (ow - 1) * sw + 1],
                    &[1, 1, sh, sw],
                )?);
            }
        }
        Ok(views)
    }

    /// 2-D max pooling of an `[N,C,H,W]` tensor without padding (ONNX `MaxPool`, Concrete's
    /// `fhe.maxpool`): output `[N,C,(H-kh)/sh+1,(W-kw)/sw+1]`, each element the maximum of its
    /// window. A balanced tree of `kh*kw - 1` pairwise maxima per output element (one bootstrap
    /// each on encrypted values).
    pub fn max_pool2d(&self, x: ValueId, kernel: [usize; 2], strides: [usize; 2]) -> BResult {
        let views = self.pool_windows("max_pool2d", x, kernel, strides)?;
        self.fold_balanced(views, &Op::Max)
    }

    /// 2-D average pooling of an `[N,C,H,W]` tensor without padding (ONNX `AveragePool`),
    /// rounded toward negative infinity: the levelled sum of each window, then one floor
    /// division by `kh*kw` (one lookup per output element).
    pub fn avg_pool2d(&self, x: ValueId, kernel: [usize; 2], strides: [usize; 2]) -> BResult {
        let views = self.pool_windows("avg_pool2d", x, kernel, strides)?;
        let s = self.fold_balanced(views, &Op::Add)?;
        let count = (kernel[0] * kernel[1]) as i64;
        if count == 1 {
            return Ok(s);
        }
        self.floor_div(s, count)
    }

    /// Concrete's `fhe.truncate_bit_pattern(a, lsbs)`: `a` with its `lsbs` low bits cleared,
    /// `(a >> lsbs) << lsbs` (toward negative infinity for negative values); one lookup after
    /// `desugar`. `lsbs = 0` is `a` itself.
    pub fn truncate_bit_pattern(&self, a: ValueId, lsbs: u32) -> BResult {
        if lsbs == 0 {
            return Ok(a);
        }
        let bits = u32::from(self.ty(a)?.int.bits);
        if lsbs >= 63 {
            return Err(invalid(
                "truncate_bit_pattern",
                format!("lsbs={lsbs} is not below 63 (the operand has {bits} bits)"),
            ));
        }
        let q = self.shr(a, lsbs)?;
        self.shl(q, lsbs)
    }

    /// Concrete's `fhe.bits(a)[i]`: bit `i` of `a` in two's complement (`(a >> i) & 1`, a `u1`
    /// per element); one lookup after `desugar`.
    pub fn bit(&self, a: ValueId, i: u32) -> BResult {
        self.bits(a, i, i + 1)
    }

    /// Concrete's `fhe.bits(a)[lo:hi]`: bits `lo..hi` of `a` in two's complement as an
    /// unsigned integer, `(a >> lo) & (2^(hi-lo) - 1)`; one lookup after `desugar`.
    pub fn bits(&self, a: ValueId, lo: u32, hi: u32) -> BResult {
        if lo >= hi || hi > 62 {
            return Err(invalid(
                "bits",
                format!("bit range {lo}..{hi} must be non-empty and below bit 62"),
            ));
        }
        let shifted = if lo == 0 { a } else { self.shr(a, lo)? };
        let mask = self.constant_scalar((1i64 << (hi - lo)) - 1)?;
        self.binary(shifted, mask, BinOp::BitAnd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IntType, Tensor};

    fn run1(b: Builder, x: Tensor<i64>) -> Tensor<i64> {
        let g = b.finish().unwrap();
        crate::run(&g, &[x]).unwrap().remove(0)
    }

    #[test]
    fn reductions_match_numpy() {
        let data: &[i64] = &[3, -1, 7, 0, 5, -8, 2, 2, -3, 6, 1, 4, -2, 0, 7];
        let x_t = Tensor::new(vec![3, 5], data.to_vec()).unwrap();
        let row = |r: usize| &data[r * 5..r * 5 + 5];
        let col = |c: usize| (0..3).map(move |r| data[r * 5 + c]);
        for (axes, keep, want_shape, want) in [
            (
                vec![1],
                false,
                vec![3],
                (0..3)
                    .map(|r| *row(r).iter().max().unwrap())
                    .collect::<Vec<_>>(),
            ),
            (
                vec![0],
                true,
                vec![1, 5],
                (0..5).map(|c| col(c).max().unwrap()).collect(),
            ),
            (vec![], false, vec![], vec![*data.iter().max().unwrap()]),
        ] {
            let b = Builder::new();
            let x = b.input_encrypted("x", &[3, 5], IntType::signed(4)).unwrap();
            let m = b.reduce_max(x, &axes, keep).unwrap();
            b.output("m", m).unwrap();
            let out = run1(b, x_t.clone());
            assert_eq!((out.shape, out.data), (want_shape, want), "axes {axes:?}");
        }
        let b = Builder::new();
        let x = b.input_encrypted("x", &[3, 5], IntType::signed(4)).unwrap();
        let m = b.reduce_min(x, &[1], false).unwrap();
        let mean = b.mean(x, &[1], false).unwrap();
        b.output("m", m).unwrap();
        b.output("mean", mean).unwrap();
        let g = b.finish().unwrap();
        let out = crate::run(&g, &[x_t]).unwrap();
        let mins: Vec<i64> = (0..3).map(|r| *row(r).iter().min().unwrap()).collect();
        let means: Vec<i64> = (0..3)
            .map(|r| row(r).iter().sum::<i64>().div_euclid(5))
            .collect();
        assert_eq!(out[0].data, mins);
        assert_eq!(out[1].data, means);
    }

    #[test]
    fn pooling_matches_a_direct_loop() {
        let (h, w) = (5usize, 4usize);
        let data: Vec<i64> = (0..(2 * h * w) as i64).map(|v| (v * 7) % 11).collect();
        for (k, s) in [([2, 2], [2, 2]), ([3, 2], [1, 2]), ([1, 1], [1, 1])] {
            let b = Builder::new();
            let x = b
                .input_encrypted("x", &[1, 2, h, w], IntType::unsigned(4))
                .unwrap();
            let mp = b.max_pool2d(x, k, s).unwrap();
            let ap = b.avg_pool2d(x, k, s).unwrap();
            b.output("mp", mp).unwrap();
            b.output("ap", ap).unwrap();
            let g = b.finish().unwrap();
            let out =
                crate::run(&g, &[Tensor::new(vec![1, 2, h, w], data.clone()).unwrap()]).unwrap();
            let (oh, ow) = ((h - k[0]) / s[0] + 1, (w - k[1]) / s[1] + 1);
            let (mut mx, mut av) = (Vec::new(), Vec::new());
            for c in 0..2 {
                for y in 0..oh {
                    for xx in 0..ow {
                        let win: Vec<i64> = (0..k[0])
                            .flat_map(|ky| (0..k[1]).map(move |kx| (ky, kx)))
                            .map(|(ky, kx)| data[c * h * w + (y * s[0] + ky) * w + xx * s[1] + kx])
                            .collect();
                        mx.push(*win.iter().max().unwrap());
                        av.push(win.iter().sum::<i64>().div_euclid(win.len() as i64));
                    }
                }
            }
            assert_eq!(out[0].shape, vec![1, 2, oh, ow]);
            assert_eq!(out[0].data, mx, "max pool {k:?} {s:?}");
            assert_eq!(out[1].data, av, "avg pool {k:?} {s:?}");
        }
    }

    #[test]
    fn bit_patterns_match_concrete() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[6], IntType::signed(5)).unwrap();
        let t = b.truncate_bit_pattern(x, 2).unwrap();
        let b1 = b.bit(x, 1).unwrap();
        let hi = b.bits(x, 2, 5).unwrap();
        b.output("t", t).unwrap();
        b.output("b1", b1).unwrap();
        b.output("hi", hi).unwrap();
        let g = b.finish().unwrap();
        let xs = vec![-16i64, -5, -1, 0, 6, 15];
        let out = crate::run(&g, &[Tensor::new(vec![6], xs.clone()).unwrap()]).unwrap();
        let f = |g: fn(i64) -> i64| xs.iter().map(|&v| g(v)).collect::<Vec<_>>();
        assert_eq!(out[0].data, f(|v| v - v.rem_euclid(4)));
        assert_eq!(out[1].data, f(|v| (v >> 1) & 1));
        assert_eq!(out[2].data, f(|v| (v >> 2) & 7));
    }

    #[test]
    fn bad_arguments_are_errors() {
        let b = Builder::new();
        let x = b
            .input_encrypted("x", &[2, 3], IntType::unsigned(4))
            .unwrap();
        let e = |r: BResult| r.unwrap_err().to_string();
        assert_eq!(
            e(b.reduce_max(x, &[2], false)),
            "reduce_max: axis 2 is out of range for rank 2"
        );
        assert_eq!(
            e(b.reduce_min(x, &[1, 1], false)),
            "reduce_min: axes [1, 1] repeat an axis"
        );
        assert_eq!(
            e(b.max_pool2d(x, [2, 2], [1, 1])),
            "max_pool2d: the input must be [N,C,H,W], got shape [2, 3]"
        );
        let img = b
            .input_encrypted("img", &[1, 1, 2, 2], IntType::unsigned(4))
            .unwrap();
        assert_eq!(
            e(b.avg_pool2d(img, [3, 1], [1, 1])),
            "avg_pool2d: kernel [3, 1] is larger than the image 2x2"
        );
        assert_eq!(
            e(b.bits(x, 3, 3)),
            "bits: bit range 3..3 must be non-empty and below bit 62"
        );
    }
}
