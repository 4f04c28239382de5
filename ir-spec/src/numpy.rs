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
        self.pool_windows_dilated(name, x, kernel, strides, [1, 1])
    }

    /// The `kh * kw` strided window views with dilations `[dh, dw]`.
    fn pool_windows_dilated(
        &self,
        name: &'static str,
        x: ValueId,
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
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
        let [dh, dw] = dilations;
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 || dh == 0 || dw == 0 {
            return Err(invalid(
                name,
                format!(
                    "kernel {kernel:?}, strides {strides:?} and dilations {dilations:?} must be at least 1"
                ),
            ));
        }
        let (eh, ew) = ((kh - 1) * dh + 1, (kw - 1) * dw + 1);
        if eh > h || ew > w {
            return Err(invalid(
                name,
                if dilations == [1, 1] {
                    format!("kernel {kernel:?} is larger than the image {h}x{w}")
                } else {
                    format!(
                        "kernel {kernel:?} dilated by {dilations:?} spans {eh}x{ew}, larger than the image {h}x{w}"
                    )
                },
            ));
        }
        let (oh, ow) = ((h - eh) / sh + 1, (w - ew) / sw + 1);
        let mut views = Vec::with_capacity(kh * kw);
        for ky in 0..kh {
            for kx in 0..kw {
                let (y0, x0) = (ky * dh, kx * dw);
                views.push(self.slice(
                    x,
                    &[0, 0, y0, x0],
                    &[n, c, y0 + (oh - 1) * sh + 1, x0 + (ow - 1) * sw + 1],
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
    /// `(a >> lsbs) << lsbs` (toward negative infinity for negative values). `lsbs = 0` is `a`
    /// itself.
    ///
    /// An encrypted `a` is truncated as an exact `round` of `a - 2^(lsbs-1)`
    /// (`floor(a / 2^k) * 2^k = round(a - 2^(k-1), k)`), which lowers as Concrete lowers
    /// `truncate_bit_pattern` (one `lsb` extraction per cleared bit, subtracted): one 1-bit
    /// bootstrap per cleared bit, reading the bit at the top of the operand's encoding, instead
    /// of one lookup of the whole operand (for a `u6` and `lsbs = 2`, two 1-bit bootstraps
    /// cost a quarter of one 6-bit lookup in Concrete's cost model). The result's low bits are
    /// known zero, so a lookup of it reads only the kept high bits. The rewrite may still fuse
    /// it into a lookup that reads it, where that is cheaper. A clear `a`, or `lsbs` not below
    /// the operand's width, is the plain shift pair.
    pub fn truncate_bit_pattern(&self, a: ValueId, lsbs: u32) -> BResult {
        if lsbs == 0 {
            return Ok(a);
        }
        let ty = self.ty(a)?;
        let bits = u32::from(ty.int.bits);
        if lsbs >= 63 {
            return Err(invalid(
                "truncate_bit_pattern",
                format!("lsbs={lsbs} is not below 63 (the operand has {bits} bits)"),
            ));
        }
        if ty.is_encrypted() && lsbs < bits {
            let half = self.constant_scalar(1i64 << (lsbs - 1))?;
            let shifted = self.sub(a, half)?;
            return self.round(shifted, lsbs as u8);
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

/// Most bits the encrypted arguments of [`Builder::multivariate`] may hold together: the
/// packed lookup input, as wide as the compiler's own packing (`desugar::MAX_PACKED_BITS`).
pub const MAX_MULTIVARIATE_BITS: u32 = 8;

/// Python's index rules for one axis of size `n`: a negative index counts from the end.
fn norm_index(op: &'static str, i: i64, n: usize) -> BResult<usize> {
    let j = if i < 0 { i + n as i64 } else { i };
    if j < 0 || j >= n as i64 {
        return Err(invalid(
            op,
            format!("index {i} is out of range for an axis of size {n}"),
        ));
    }
    Ok(j as usize)
}

/// The positions Python's `start:stop:step` selects on an axis of size `n` (`None` for an
/// omitted bound), in order.
pub fn python_slice_indices(
    n: usize,
    start: Option<i64>,
    stop: Option<i64>,
    step: i64,
) -> Result<Vec<usize>, String> {
    if step == 0 {
        return Err("slice step cannot be zero".into());
    }
    let n = n as i64;
    let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
    let adj = |v: i64| if v < 0 { v + n } else { v };
    let mut out = vec![];
    if step > 0 {
        let s = start.map_or(0, |v| clamp(adj(v), 0, n));
        let e = stop.map_or(n, |v| clamp(adj(v), 0, n));
        let mut i = s;
        while i < e {
            out.push(i as usize);
            i += step;
        }
    } else {
        let s = start.map_or(n - 1, |v| clamp(adj(v), -1, n - 1));
        let e = stop.map_or(-1, |v| clamp(adj(v), -1, n - 1));
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i += step;
        }
    }
    Ok(out)
}

impl Builder {
    fn check_axis(&self, op: &'static str, a: ValueId, axis: usize) -> BResult<Vec<usize>> {
        let shape = self.shape(a)?;
        if axis >= shape.len() {
            return Err(invalid(
                op,
                format!("axis {axis} is out of range for shape {shape:?}"),
            ));
        }
        Ok(shape)
    }

    /// Concatenates `pieces` (`(value, start, len)`: `len` consecutive positions of `value`
    /// along `axis` from `start`) along `axis`, merging adjacent runs of one value.
    fn gather_runs(&self, axis: usize, pieces: &[(ValueId, usize)]) -> BResult {
        let mut runs: Vec<(ValueId, usize, usize)> = vec![];
        for &(v, i) in pieces {
            match runs.last_mut() {
                Some((rv, s, len)) if *rv == v && *s + *len == i => *len += 1,
                _ => runs.push((v, i, 1)),
            }
        }
        let mut parts = Vec::with_capacity(runs.len());
        for (v, s, len) in runs {
            let n = self.shape(v)?[axis];
            parts.push(if s == 0 && len == n {
                v
            } else {
                self.slice_axis(v, axis, s, s + len)?
            });
        }
        if parts.len() == 1 {
            return Ok(parts[0]);
        }
        self.concat(&parts, axis)
    }

    /// numpy `take(a, indices, axis)` with clear indices (fancy indexing `a[..., [i, j, ...]]`):
    /// the positions `indices` of `axis`, in order, repeats allowed, negative ones counting
    /// from the end. Slices and one `concat` (consecutive positions stay one slice): no
    /// bootstrap.
    pub fn take(&self, a: ValueId, indices: &[i64], axis: usize) -> BResult {
        let shape = self.check_axis("take", a, axis)?;
        if indices.is_empty() {
            return Err(invalid("take", "no indices: the result would be empty"));
        }
        let pieces = indices
            .iter()
            .map(|&i| Ok((a, norm_index("take", i, shape[axis])?)))
            .collect::<BResult<Vec<_>>>()?;
        self.gather_runs(axis, &pieces)
    }

    /// numpy `a[..., i, ...]` with `i` on `axis`, Python's rules: a negative `i` counts from
    /// the end. The axis is removed.
    pub fn index_signed(&self, a: ValueId, axis: usize, i: i64) -> BResult {
        let shape = self.check_axis("index", a, axis)?;
        let j = norm_index("index", i, shape[axis])?;
        self.index(a, axis, j)
    }

    /// numpy `a[..., start:stop:step, ...]` on `axis` with Python's rules: negative bounds
    /// count from the end, a negative step walks backwards (`a[::-1]`), `None` is an omitted
    /// bound. A `slice` when the step is positive, else the selected positions gathered (see
    /// [`Builder::take`]); no bootstrap.
    pub fn slice_signed(
        &self,
        a: ValueId,
        axis: usize,
        start: Option<i64>,
        stop: Option<i64>,
        step: i64,
    ) -> BResult {
        let shape = self.check_axis("slice", a, axis)?;
        let idx = python_slice_indices(shape[axis], start, stop, step)
            .map_err(|m| invalid("slice", m))?;
        if idx.is_empty() {
            return Err(invalid(
                "slice",
                format!(
                    "{}:{}:{step} selects nothing on an axis of size {}",
                    start.map_or(String::new(), |v| v.to_string()),
                    stop.map_or(String::new(), |v| v.to_string()),
                    shape[axis]
                ),
            ));
        }
        if step > 0 {
            let (lo, hi) = (idx[0], idx[idx.len() - 1] + 1);
            let mut starts = vec![0; shape.len()];
            let mut stops = shape.clone();
            let mut steps = vec![1; shape.len()];
            starts[axis] = lo;
            stops[axis] = hi;
            steps[axis] = step as usize;
            return self.slice(a, &starts, &stops, &steps);
        }
        let pieces: Vec<(ValueId, usize)> = idx.iter().map(|&i| (a, i)).collect();
        self.gather_runs(axis, &pieces)
    }

    /// numpy `a[..., indices, ...] = values` on `axis` as a functional update (`__setitem__`):
    /// a new value equal to `a` except at the positions `indices` of `axis` (negative ones
    /// counting from the end; a repeated index takes the last write, as numpy does), which
    /// hold `values` (broadcast to `a`'s shape with `axis` of size `indices.len()`). Slices and
    /// one `concat`: no bootstrap.
    pub fn put(&self, a: ValueId, axis: usize, indices: &[i64], values: ValueId) -> BResult {
        let shape = self.check_axis("put", a, axis)?;
        if indices.is_empty() {
            return Ok(a);
        }
        let mut vshape = shape.clone();
        vshape[axis] = indices.len();
        let vs = if self.shape(values)? == vshape {
            values
        } else {
            self.broadcast(values, &vshape).map_err(|e| {
                invalid(
                    "put",
                    format!("the values do not broadcast to the updated part {vshape:?}: {e}"),
                )
            })?
        };
        let mut pieces: Vec<(ValueId, usize)> = (0..shape[axis]).map(|i| (a, i)).collect();
        for (k, &i) in indices.iter().enumerate() {
            pieces[norm_index("put", i, shape[axis])?] = (vs, k);
        }
        self.gather_runs(axis, &pieces)
    }

    /// Concrete's `fhe.multivariate`: `f` of several small encrypted values, elementwise with
    /// broadcasting, as **one** table lookup: the arguments are packed into one integer
    /// `p = sum_i (args[i] - min_i) * 2^(bits of the arguments after i)` (levelled) and `p` is
    /// looked up in the table of `f` over every combination. `f` receives the values in the
    /// order of `args`. The arguments must be encrypted and hold at most
    /// [`MAX_MULTIVARIATE_BITS`] bits together (their types' widths); narrow them first
    /// (`round`, `clip`, a `tlu`) otherwise. One argument is an ordinary [`Builder::tlu`].
    pub fn multivariate(&self, args: &[ValueId], f: impl Fn(&[i64]) -> i64) -> BResult {
        match args {
            [] => Err(invalid("multivariate", "no arguments")),
            [a] => self.tlu(*a, |v| f(&[v])),
            _ => {
                let mut ints = Vec::with_capacity(args.len());
                for (i, &a) in args.iter().enumerate() {
                    let ty = self.ty(a)?;
                    if !ty.is_encrypted() {
                        return Err(invalid(
                            "multivariate",
                            format!(
                                "argument {i} is clear; only encrypted values are packed (use a clear value inside the function instead)"
                            ),
                        ));
                    }
                    ints.push(ty.int);
                }
                let total: u32 = ints.iter().map(|t| u32::from(t.bits)).sum();
                if total > MAX_MULTIVARIATE_BITS {
                    let widths: Vec<String> = ints.iter().map(|t| t.to_string()).collect();
                    return Err(invalid(
                        "multivariate",
                        format!(
                            "the arguments ({}) hold {total} bits together, over the limit of {MAX_MULTIVARIATE_BITS} for one lookup; narrow them first (round, clip or a tlu to fewer bits)",
                            widths.join(", ")
                        ),
                    ));
                }
                let mut packed: Option<ValueId> = None;
                let mut shift = total;
                for (&a, &int) in args.iter().zip(&ints) {
                    shift -= u32::from(int.bits);
                    let mut d = a;
                    if int.min() != 0 {
                        let m = self.constant_scalar(int.min() as i64)?;
                        d = self.sub(d, m)?;
                    }
                    if shift > 0 {
                        let s = self.constant_scalar(1i64 << shift)?;
                        d = self.mul(d, s)?;
                    }
                    packed = Some(match packed {
                        None => d,
                        Some(p) => self.add(p, d)?,
                    });
                }
                let p = packed.expect("two or more arguments");
                let pint = self.ty(p)?.int;
                let mut vals = vec![0i64; args.len()];
                let entries = (pint.min()..=pint.max())
                    .map(|p| {
                        if p < 0 || p >= 1i128 << total {
                            return 0; // not a packed value: never read
                        }
                        let mut rest = total;
                        for (k, &int) in ints.iter().enumerate() {
                            rest -= u32::from(int.bits);
                            let digit = (p >> rest) & ((1i128 << int.bits) - 1);
                            vals[k] = (digit + int.min()) as i64;
                        }
                        f(&vals)
                    })
                    .collect();
                self.tlu_table(p, entries)
            }
        }
    }

    /// Concrete's `fhe.refresh(a)` (and `fhe.identity`): a bootstrap of the identity, a
    /// `tlu` whose table maps every value to itself. The compiler keeps it as one bootstrap
    /// per element (its output noise is fresh); the rewrite may move it onto a narrower value
    /// the same ciphertext is computed from (`refresh(3 * x)` becomes a lookup of `x`).
    pub fn refresh(&self, a: ValueId) -> BResult {
        self.tlu(a, |v| v)
    }

    /// numpy `fmod(a, d)` by a clear non-zero `d`: the remainder with the sign of the dividend
    /// (C's `%`, where `%`/`np.remainder` takes the divisor's sign); one lookup.
    pub fn fmod(&self, a: ValueId, d: i64) -> BResult {
        if d == 0 {
            return Err(invalid("fmod", "division by zero"));
        }
        self.tlu(a, |v| v.wrapping_rem(d))
    }

    /// numpy `matmul` of any ranks: ranks 1 and 2 are the `matmul` op; with more, the leading
    /// (batch) axes broadcast and each batch is one `matmul` of its matrices (a rank-1 operand
    /// is a row or column vector whose axis is dropped from the result, as in numpy). The
    /// batches are concatenated: levelled like `matmul` itself.
    pub fn batch_matmul(&self, a: ValueId, b: ValueId) -> BResult {
        let (sa, sb) = (self.shape(a)?, self.shape(b)?);
        if sa.len() <= 2 && sb.len() <= 2 {
            return self.matmul(a, b);
        }
        let (mut a2, mut b2) = (a, b);
        let (mut sa2, mut sb2) = (sa.clone(), sb.clone());
        if sa.len() == 1 {
            sa2 = vec![1, sa[0]];
            a2 = self.reshape(a, &sa2)?;
        }
        if sb.len() == 1 {
            sb2 = vec![sb[0], 1];
            b2 = self.reshape(b, &sb2)?;
        }
        let (ra, rb) = (sa2.len(), sb2.len());
        let (m, k) = (sa2[ra - 2], sa2[ra - 1]);
        let (k2, n) = (sb2[rb - 2], sb2[rb - 1]);
        if k != k2 {
            return Err(invalid(
                "matmul",
                format!("inner dimensions differ: {sa:?} @ {sb:?}"),
            ));
        }
        let (ba, bb) = (&sa2[..ra - 2], &sb2[..rb - 2]);
        let rank = ba.len().max(bb.len());
        let mut batch = vec![0; rank];
        for i in 0..rank {
            let da = if i + ba.len() >= rank {
                ba[i + ba.len() - rank]
            } else {
                1
            };
            let db = if i + bb.len() >= rank {
                bb[i + bb.len() - rank]
            } else {
                1
            };
            batch[i] = match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => {
                    return Err(invalid(
                        "matmul",
                        format!("batch axes of {sa:?} and {sb:?} do not broadcast"),
                    ))
                }
            };
        }
        let count: usize = batch.iter().product();
        let flat = |v: ValueId, rows: usize, cols: usize| -> BResult {
            let mut full = batch.clone();
            full.extend([rows, cols]);
            let v = if self.shape(v)? == full {
                v
            } else {
                self.broadcast(v, &full)?
            };
            self.reshape(v, &[count, rows, cols])
        };
        let (af, bf) = (flat(a2, m, k)?, flat(b2, k, n)?);
        let mut parts = Vec::with_capacity(count);
        for i in 0..count {
            let x = self.index(af, 0, i)?;
            let y = self.index(bf, 0, i)?;
            let p = self.matmul(x, y)?;
            parts.push(self.reshape(p, &[1, m, n])?);
        }
        let all = if parts.len() == 1 {
            parts[0]
        } else {
            self.concat(&parts, 0)?
        };
        let mut out = batch;
        if sa.len() != 1 {
            out.push(m);
        }
        if sb.len() != 1 {
            out.push(n);
        }
        self.reshape(all, &out)
    }

    /// Concrete's `fhe.conv` in one dimension: `x [N,C,W]` with `w [O,C/group,K]` and an
    /// optional bias `[O]`, `stride`, zero padding `[left, right]`, `dilation`; output
    /// `[N,O,(W + left + right - dilation*(K-1) - 1)/stride + 1]`. The `conv2d` op on a height
    /// of 1: levelled.
    #[allow(clippy::too_many_arguments)]
    pub fn conv1d(
        &self,
        x: ValueId,
        w: ValueId,
        bias: Option<ValueId>,
        stride: usize,
        pads: [usize; 2],
        dilation: usize,
        group: usize,
    ) -> BResult {
        let (sx, sw) = (self.shape(x)?, self.shape(w)?);
        let (&[n, c, wd], &[o, cg, k]) = (&sx[..], &sw[..]) else {
            return Err(invalid(
                "conv1d",
                format!(
                    "the input must be [N,C,W] and the kernel [O,C/group,K], got {sx:?} and {sw:?}"
                ),
            ));
        };
        let x4 = self.reshape(x, &[n, c, 1, wd])?;
        let w4 = self.reshape(w, &[o, cg, 1, k])?;
        let attrs = crate::ops::Conv2dAttrs {
            strides: [1, stride],
            pads: [0, pads[0], 0, pads[1]],
            dilations: [1, dilation],
            group,
        };
        let y = self.conv2d(x4, w4, bias, attrs)?;
        let ys = self.shape(y)?;
        self.reshape(y, &[ys[0], ys[1], ys[3]])
    }

    /// Concrete's `fhe.conv` in three dimensions: `x [N,C,D,H,W]` with `w [O,C/group,KD,KH,KW]`
    /// and an optional bias `[O]`; `strides [sd,sh,sw]`, zero padding
    /// `[front,top,left,back,bottom,right]`, `dilations [dd,dh,dw]`. Each output depth is the
    /// sum of one `conv2d` per kernel depth over the input depth slice it reads (padded depths
    /// read zeros and are skipped); the depths are concatenated. Levelled.
    #[allow(clippy::too_many_arguments)]
    pub fn conv3d(
        &self,
        x: ValueId,
        w: ValueId,
        bias: Option<ValueId>,
        strides: [usize; 3],
        pads: [usize; 6],
        dilations: [usize; 3],
        group: usize,
    ) -> BResult {
        let (sx, sw) = (self.shape(x)?, self.shape(w)?);
        let (&[n, c, d, h, wd], &[o, cg, kd, kh, kw]) = (&sx[..], &sw[..]) else {
            return Err(invalid(
                "conv3d",
                format!("the input must be [N,C,D,H,W] and the kernel [O,C/group,KD,KH,KW], got {sx:?} and {sw:?}"),
            ));
        };
        if strides.contains(&0) || dilations.contains(&0) {
            return Err(invalid(
                "conv3d",
                format!("strides {strides:?} and dilations {dilations:?} must be at least 1"),
            ));
        }
        let span = dilations[0] * (kd - 1) + 1;
        let padded = d + pads[0] + pads[3];
        if span > padded {
            return Err(invalid(
                "conv3d",
                format!(
                    "the kernel depth {kd} (dilated to {span}) exceeds the padded depth {padded}"
                ),
            ));
        }
        let od = (padded - span) / strides[0] + 1;
        let attrs = crate::ops::Conv2dAttrs {
            strides: [strides[1], strides[2]],
            pads: [pads[1], pads[2], pads[4], pads[5]],
            dilations: [dilations[1], dilations[2]],
            group,
        };
        let wslice = |z: usize| -> BResult {
            let s = self.slice(w, &[0, 0, z, 0, 0], &[o, cg, z + 1, kh, kw], &[1; 5])?;
            self.reshape(s, &[o, cg, kh, kw])
        };
        let xslice = |z: usize| -> BResult {
            let s = self.slice(x, &[0, 0, z, 0, 0], &[n, c, z + 1, h, wd], &[1; 5])?;
            self.reshape(s, &[n, c, h, wd])
        };
        let mut depths = Vec::with_capacity(od);
        for out_z in 0..od {
            let mut acc: Option<ValueId> = None;
            for z in 0..kd {
                let iz = (out_z * strides[0] + z * dilations[0]) as i64 - pads[0] as i64;
                if iz < 0 || iz >= d as i64 {
                    continue;
                }
                let b = if acc.is_none() { bias } else { None };
                let t = self.conv2d(xslice(iz as usize)?, wslice(z)?, b, attrs.clone())?;
                acc = Some(match acc {
                    None => t,
                    Some(a) => self.add(a, t)?,
                });
            }
            let y = match acc {
                Some(y) => y,
                None => {
                    // Every kernel depth reads padding: zero weights on depth 0 (plus the bias).
                    let zeros = self.constant(&[o, cg, kh, kw], &vec![0; o * cg * kh * kw])?;
                    self.conv2d(xslice(0)?, zeros, bias, attrs.clone())?
                }
            };
            let ys = self.shape(y)?;
            depths.push(self.reshape(y, &[ys[0], ys[1], 1, ys[2], ys[3]])?);
        }
        if depths.len() == 1 {
            return Ok(depths[0]);
        }
        self.concat(&depths, 2)
    }

    /// [`Builder::max_pool2d`] with `dilations [dh, dw]` (window element `(ky, kx)` reads
    /// `(y*sh + ky*dh, x*sw + kx*dw)`, as ONNX `MaxPool`).
    pub fn max_pool2d_dilated(
        &self,
        x: ValueId,
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
    ) -> BResult {
        let views = self.pool_windows_dilated("max_pool2d", x, kernel, strides, dilations)?;
        self.fold_balanced(views, &Op::Max)
    }

    /// [`Builder::avg_pool2d`] with `dilations [dh, dw]`.
    pub fn avg_pool2d_dilated(
        &self,
        x: ValueId,
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
    ) -> BResult {
        let views = self.pool_windows_dilated("avg_pool2d", x, kernel, strides, dilations)?;
        let s = self.fold_balanced(views, &Op::Add)?;
        let count = (kernel[0] * kernel[1]) as i64;
        if count == 1 {
            return Ok(s);
        }
        self.floor_div(s, count)
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

    fn gcd(a: i64, b: i64) -> i64 {
        if b == 0 {
            a.abs()
        } else {
            gcd(b, a % b)
        }
    }

    #[test]
    fn multivariate_is_one_lookup_of_every_combination() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[1], IntType::signed(2)).unwrap();
        let y = b.input_encrypted("y", &[1], IntType::unsigned(3)).unwrap();
        let z = b.input_encrypted("z", &[1], IntType::unsigned(2)).unwrap();
        let g2 = b.multivariate(&[x, y], |v| gcd(v[0], v[1])).unwrap();
        let f3 = b
            .multivariate(&[x, y, z], |v| v[0] * 7 - v[1] * v[2] + v[2])
            .unwrap();
        b.output("g", g2).unwrap();
        b.output("f", f3).unwrap();
        let g = b.finish().unwrap();
        let lookups = g
            .values()
            .into_iter()
            .filter(|&v| matches!(g.op(v), Op::Tlu { .. }))
            .count();
        assert_eq!(lookups, 2, "one lookup per multivariate");
        for xv in -2..2 {
            for yv in 0..8 {
                for zv in 0..4 {
                    let ins = [xv, yv, zv].map(|v| Tensor::new(vec![1], vec![v]).unwrap());
                    let out = crate::run(&g, &ins).unwrap();
                    assert_eq!(out[0].data, vec![gcd(xv, yv)], "gcd({xv}, {yv})");
                    assert_eq!(out[1].data, vec![xv * 7 - yv * zv + zv]);
                }
            }
        }
    }

    #[test]
    fn multivariate_refuses_what_does_not_fit() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[2], IntType::unsigned(5)).unwrap();
        let y = b.input_encrypted("y", &[2], IntType::signed(4)).unwrap();
        let c = b.input_clear("c", &[2], IntType::unsigned(2)).unwrap();
        let e = |r: BResult| r.unwrap_err().to_string();
        assert_eq!(
            e(b.multivariate(&[x, y], |v| v[0] + v[1])),
            "multivariate: the arguments (u5, i4) hold 9 bits together, over the limit of 8 for \
             one lookup; narrow them first (round, clip or a tlu to fewer bits)"
        );
        assert_eq!(
            e(b.multivariate(&[x, c], |v| v[0] + v[1])),
            "multivariate: argument 1 is clear; only encrypted values are packed (use a clear \
             value inside the function instead)"
        );
        assert_eq!(e(b.multivariate(&[], |_| 0)), "multivariate: no arguments");
    }

    #[test]
    fn fmod_takes_the_sign_of_the_dividend() {
        let b = Builder::new();
        let x = b.input_encrypted("x", &[8], IntType::signed(4)).unwrap();
        let f = b.fmod(x, 3).unwrap();
        let fneg = b.fmod(x, -3).unwrap();
        b.output("f", f).unwrap();
        b.output("g", fneg).unwrap();
        let xs = vec![-8i64, -7, -4, -3, -1, 0, 5, 7];
        let out = run_all(b, vec![Tensor::new(vec![8], xs.clone()).unwrap()]);
        // C's fmod: the sign of the dividend (numpy: fmod(-7, 3) == -1, remainder == 2).
        assert_eq!(out[0].data, vec![-2, -1, -1, 0, -1, 0, 2, 1]);
        let want: Vec<i64> = xs.iter().map(|&v| v - (v / -3) * -3).collect();
        assert_eq!(out[1].data, want);
        let b2 = Builder::new();
        let x = b2.input_encrypted("x", &[1], IntType::signed(4)).unwrap();
        assert_eq!(
            b2.fmod(x, 0).unwrap_err().to_string(),
            "fmod: division by zero"
        );
    }

    fn run_all(b: Builder, xs: Vec<Tensor<i64>>) -> Vec<Tensor<i64>> {
        let g = b.finish().unwrap();
        crate::run(&g, &xs).unwrap()
    }

    #[test]
    fn python_indexing_matches_python() {
        let n = 7;
        let idx = |a, b, c| python_slice_indices(n, a, b, c).unwrap();
        assert_eq!(idx(None, None, -1), vec![6, 5, 4, 3, 2, 1, 0]);
        assert_eq!(idx(Some(-2), None, 1), vec![5, 6]);
        assert_eq!(idx(Some(5), Some(1), -2), vec![5, 3]);
        assert_eq!(idx(Some(-1), Some(-7), -3), vec![6, 3]);
        assert_eq!(idx(Some(10), Some(-10), -4), vec![6, 2]);
        assert_eq!(idx(Some(1), Some(100), 3), vec![1, 4]);
        assert_eq!(idx(Some(3), Some(3), 1), Vec::<usize>::new());
        assert!(python_slice_indices(n, None, None, 0).is_err());

        let data: Vec<i64> = (0..21).map(|v| v * 3 - 10).collect();
        let x_t = Tensor::new(vec![3, 7], data.clone()).unwrap();
        let b = Builder::new();
        let x = b.input_encrypted("x", &[3, 7], IntType::signed(7)).unwrap();
        let rev = b.slice_signed(x, 1, None, None, -1).unwrap();
        let back2 = b.slice_signed(x, 1, Some(5), Some(1), -2).unwrap();
        let fwd = b.slice_signed(x, 1, Some(-5), None, 2).unwrap();
        let last_row = b.index_signed(x, 0, -1).unwrap();
        let fancy = b.take(x, &[-1, 0, 0, 2, 3], 1).unwrap();
        let y = b.input_encrypted("y", &[3, 2], IntType::signed(7)).unwrap();
        let set = b.put(x, 1, &[-1, 2], y).unwrap();
        let nine = b.constant_scalar(9).unwrap();
        let set_scalar = b.put(x, 0, &[1, 1], nine).unwrap();
        for (i, v) in [rev, back2, fwd, last_row, fancy, set, set_scalar]
            .into_iter()
            .enumerate()
        {
            b.output(&format!("o{i}"), v).unwrap();
        }
        let ydata = vec![50, 51, 52, 53, 54, 55];
        let out = run_all(
            b,
            vec![x_t, Tensor::new(vec![3, 2], ydata.clone()).unwrap()],
        );
        let at = |r: usize, c: usize| data[r * 7 + c];
        let cols = |cs: &[usize]| -> Vec<i64> {
            (0..3)
                .flat_map(|r| cs.iter().map(move |&c| at(r, c)))
                .collect()
        };
        assert_eq!(out[0].data, cols(&[6, 5, 4, 3, 2, 1, 0]));
        assert_eq!(out[1].data, cols(&[5, 3]));
        assert_eq!(out[2].data, cols(&[2, 4, 6]));
        assert_eq!(
            (out[3].shape.clone(), out[3].data.clone()),
            (vec![7], data[14..].to_vec())
        );
        assert_eq!(out[4].data, cols(&[6, 0, 0, 2, 3]));
        let mut want = data.clone();
        for r in 0..3 {
            want[r * 7 + 6] = ydata[r * 2];
            want[r * 7 + 2] = ydata[r * 2 + 1];
        }
        assert_eq!(out[5].data, want);
        let mut want = data.clone();
        want[7..14].fill(9);
        assert_eq!(out[6].data, want);

        let b = Builder::new();
        let x = b.input_encrypted("x", &[3, 7], IntType::signed(7)).unwrap();
        let e = |r: BResult| r.unwrap_err().to_string();
        assert_eq!(
            e(b.take(x, &[7], 1)),
            "take: index 7 is out of range for an axis of size 7"
        );
        assert_eq!(
            e(b.index_signed(x, 0, -4)),
            "index: index -4 is out of range for an axis of size 3"
        );
        assert_eq!(
            e(b.slice_signed(x, 1, Some(2), Some(2), -1)),
            "slice: 2:2:-1 selects nothing on an axis of size 7"
        );
        assert_eq!(
            e(b.slice_signed(x, 2, None, None, 1)),
            "slice: axis 2 is out of range for shape [3, 7]"
        );
    }

    #[test]
    fn batched_matmul_matches_a_direct_loop() {
        // [2,3,2,4] @ [4,3] (broadcast) and [2,1,2,3] @ [3,3,2] (batch broadcast) and a vector.
        let av: Vec<i64> = (0..48).map(|v| (v * 5) % 7 - 3).collect();
        let bv: Vec<i64> = (0..12).map(|v| (v * 3) % 5 - 2).collect();
        let b = Builder::new();
        let a = b
            .input_encrypted("a", &[2, 3, 2, 4], IntType::signed(3))
            .unwrap();
        let w = b.constant(&[4, 3], &bv).unwrap();
        let p = b.batch_matmul(a, w).unwrap();
        let a2 = b.reshape(a, &[2, 1, 8, 3]).unwrap();
        let w2 = b
            .constant(&[3, 3, 2], &(0..18).map(|v| v % 4 - 1).collect::<Vec<_>>())
            .unwrap();
        let p2 = b.batch_matmul(a2, w2).unwrap();
        let vecw = b.constant(&[4], &[1, -2, 3, 0]).unwrap();
        let p3 = b.batch_matmul(a, vecw).unwrap();
        b.output("p", p).unwrap();
        b.output("p2", p2).unwrap();
        b.output("p3", p3).unwrap();
        let out = run_all(b, vec![Tensor::new(vec![2, 3, 2, 4], av.clone()).unwrap()]);
        let mut want = vec![];
        for bt in 0..6 {
            for i in 0..2 {
                for j in 0..3 {
                    want.push(
                        (0..4)
                            .map(|k| av[bt * 8 + i * 4 + k] * bv[k * 3 + j])
                            .sum::<i64>(),
                    );
                }
            }
        }
        assert_eq!(
            (out[0].shape.clone(), out[0].data.clone()),
            (vec![2, 3, 2, 3], want)
        );
        let w2v: Vec<i64> = (0..18).map(|v| v % 4 - 1).collect();
        let mut want = vec![];
        for b0 in 0..2 {
            for b1 in 0..3 {
                for i in 0..8 {
                    for j in 0..2 {
                        want.push(
                            (0..3)
                                .map(|k| av[b0 * 24 + i * 3 + k] * w2v[b1 * 6 + k * 2 + j])
                                .sum::<i64>(),
                        );
                    }
                }
            }
        }
        assert_eq!(
            (out[1].shape.clone(), out[1].data.clone()),
            (vec![2, 3, 8, 2], want)
        );
        let v = [1, -2, 3, 0];
        let want: Vec<i64> = (0..12)
            .map(|r| (0..4).map(|k| av[r * 4 + k] * v[k]).sum())
            .collect();
        assert_eq!(
            (out[2].shape.clone(), out[2].data.clone()),
            (vec![2, 3, 2], want)
        );
        let b = Builder::new();
        let a = b
            .input_encrypted("a", &[2, 3, 2, 4], IntType::signed(3))
            .unwrap();
        let w = b.constant(&[3, 3, 2], &[0; 18]).unwrap();
        assert_eq!(
            b.batch_matmul(a, w).unwrap_err().to_string(),
            "matmul: inner dimensions differ: [2, 3, 2, 4] @ [3, 3, 2]"
        );
    }

    #[test]
    fn conv1d_and_conv3d_match_a_direct_loop() {
        // conv1d: [1,2,9] with [3,2,3], stride 2, pads [1,2], dilation 2.
        let xv: Vec<i64> = (0..18).map(|v| (v * 7) % 9 - 4).collect();
        let wv: Vec<i64> = (0..18).map(|v| (v * 5) % 7 - 3).collect();
        let b = Builder::new();
        let x = b
            .input_encrypted("x", &[1, 2, 9], IntType::signed(4))
            .unwrap();
        let w = b.constant(&[3, 2, 3], &wv).unwrap();
        let y = b.conv1d(x, w, None, 2, [1, 2], 2, 1).unwrap();
        b.output("y", y).unwrap();
        let out = run_all(b, vec![Tensor::new(vec![1, 2, 9], xv.clone()).unwrap()]);
        let ow = (9 + 3 - 2 * 2 - 1) / 2 + 1;
        let mut want = vec![];
        for o in 0..3 {
            for p in 0..ow {
                let mut acc = 0;
                for c in 0..2 {
                    for k in 0..3 {
                        let i = (p * 2 + k * 2) as i64 - 1;
                        if (0..9).contains(&i) {
                            acc += xv[c * 9 + i as usize] * wv[o * 6 + c * 3 + k];
                        }
                    }
                }
                want.push(acc);
            }
        }
        assert_eq!(
            (out[0].shape.clone(), out[0].data.clone()),
            (vec![1, 3, ow], want)
        );

        // conv3d: [1,2,4,3,3] with [2,2,2,2,2], strides [2,1,1], pads depth 1/0, hw 1 each
        // side, dilations [2,1,1], a bias.
        let (d, h, w_) = (4usize, 3usize, 3usize);
        let xv: Vec<i64> = (0..(2 * d * h * w_) as i64)
            .map(|v| (v * 7) % 5 - 2)
            .collect();
        let wv: Vec<i64> = (0..32).map(|v| (v * 3) % 5 - 2).collect();
        let b = Builder::new();
        let x = b
            .input_encrypted("x", &[1, 2, d, h, w_], IntType::signed(3))
            .unwrap();
        let w = b.constant(&[2, 2, 2, 2, 2], &wv).unwrap();
        let bias = b.constant(&[2], &[5, -1]).unwrap();
        let y = b
            .conv3d(
                x,
                w,
                Some(bias),
                [2, 1, 1],
                [1, 1, 1, 0, 1, 1],
                [2, 1, 1],
                1,
            )
            .unwrap();
        b.output("y", y).unwrap();
        let out = run_all(
            b,
            vec![Tensor::new(vec![1, 2, d, h, w_], xv.clone()).unwrap()],
        );
        let od = (d + 1 - 2 - 1) / 2 + 1;
        let (oh, ow) = (h + 2 - 2 + 1, w_ + 2 - 2 + 1);
        let mut want = vec![];
        for o in 0..2 {
            for z in 0..od {
                for yy in 0..oh {
                    for xx in 0..ow {
                        let mut acc = [5, -1][o];
                        for c in 0..2 {
                            for kz in 0..2 {
                                for ky in 0..2 {
                                    for kx in 0..2 {
                                        let iz = (z * 2 + kz * 2) as i64 - 1;
                                        let iy = (yy + ky) as i64 - 1;
                                        let ix = (xx + kx) as i64 - 1;
                                        if (0..d as i64).contains(&iz)
                                            && (0..h as i64).contains(&iy)
                                            && (0..w_ as i64).contains(&ix)
                                        {
                                            let xi = ((c * d + iz as usize) * h + iy as usize) * w_
                                                + ix as usize;
                                            let wi = (((o * 2 + c) * 2 + kz) * 2 + ky) * 2 + kx;
                                            acc += xv[xi] * wv[wi];
                                        }
                                    }
                                }
                            }
                        }
                        want.push(acc);
                    }
                }
            }
        }
        assert_eq!(out[0].shape, vec![1, 2, od, oh, ow]);
        assert_eq!(out[0].data, want);
    }

    #[test]
    fn dilated_pooling_matches_a_direct_loop() {
        let (h, w) = (7usize, 6usize);
        let data: Vec<i64> = (0..(h * w) as i64).map(|v| (v * 7) % 13).collect();
        let (k, s, dl) = ([2, 3], [2, 1], [3, 2]);
        let b = Builder::new();
        let x = b
            .input_encrypted("x", &[1, 1, h, w], IntType::unsigned(4))
            .unwrap();
        let mp = b.max_pool2d_dilated(x, k, s, dl).unwrap();
        let ap = b.avg_pool2d_dilated(x, k, s, dl).unwrap();
        b.output("mp", mp).unwrap();
        b.output("ap", ap).unwrap();
        let out = run_all(
            b,
            vec![Tensor::new(vec![1, 1, h, w], data.clone()).unwrap()],
        );
        let (eh, ew) = ((k[0] - 1) * dl[0] + 1, (k[1] - 1) * dl[1] + 1);
        let (oh, ow) = ((h - eh) / s[0] + 1, (w - ew) / s[1] + 1);
        let (mut mx, mut av) = (vec![], vec![]);
        for y in 0..oh {
            for xx in 0..ow {
                let win: Vec<i64> = (0..k[0])
                    .flat_map(|ky| (0..k[1]).map(move |kx| (ky, kx)))
                    .map(|(ky, kx)| data[(y * s[0] + ky * dl[0]) * w + xx * s[1] + kx * dl[1]])
                    .collect();
                mx.push(*win.iter().max().unwrap());
                av.push(win.iter().sum::<i64>().div_euclid(6));
            }
        }
        assert_eq!(out[0].shape, vec![1, 1, oh, ow]);
        assert_eq!(out[0].data, mx);
        assert_eq!(out[1].data, av);
        let b = Builder::new();
        let x = b
            .input_encrypted("x", &[1, 1, 4, 4], IntType::unsigned(4))
            .unwrap();
        assert_eq!(
            b.max_pool2d_dilated(x, [2, 2], [1, 1], [4, 1])
                .unwrap_err()
                .to_string(),
            "max_pool2d: kernel [2, 2] dilated by [4, 1] spans 5x2, larger than the image 4x4"
        );
    }
}
