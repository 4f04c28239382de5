//! Generic dense tensors and the shape/linear kernels of the levelled ops.
//!
//! The same kernels serve the reference interpreter (elements are `i128`) and the runtime
//! (elements are LWE ciphertexts), so the clear and the encrypted semantics of every levelled op
//! are one piece of code. An element type only has to implement [`Element`]: addition,
//! negation and multiplication by a clear integer.
//!
//! Architecture invariant: tensors have no zero-sized axes (the verifier rejects them), so every
//! reduction has at least one element to start from.

use crate::ops::Conv2dAttrs;
use crate::types::{broadcast_shapes, numel, strides, Shape};

/// What levelled kernels need from an element: a ring-module over the integers.
pub trait Element: Clone + Send + Sync {
    /// `self + other`.
    fn add(&self, other: &Self) -> Self;
    /// `self - other`.
    fn sub(&self, other: &Self) -> Self;
    /// `-self`.
    fn neg(&self) -> Self;
    /// `self * k` for a clear integer `k`.
    fn mul_int(&self, k: i64) -> Self;
    /// `self + k` for a clear integer `k` (in message units).
    fn add_int(&self, k: i64) -> Self;
    /// `self += other * k`; the hot path of matmul and convolution.
    fn mul_add_assign(&mut self, other: &Self, k: i64) {
        *self = self.add(&other.mul_int(k));
    }
    /// An element equal to zero, shaped like `self` (same key/dimension for ciphertexts).
    fn zero_like(&self) -> Self {
        self.sub(self)
    }
}

impl Element for i128 {
    fn add(&self, o: &Self) -> Self {
        self + o
    }
    fn sub(&self, o: &Self) -> Self {
        self - o
    }
    fn neg(&self) -> Self {
        -self
    }
    fn mul_int(&self, k: i64) -> Self {
        self * k as i128
    }
    fn add_int(&self, k: i64) -> Self {
        self + k as i128
    }
    fn mul_add_assign(&mut self, o: &Self, k: i64) {
        *self += o * k as i128
    }
    fn zero_like(&self) -> Self {
        0
    }
}

/// Errors of the kernels: shape mismatches that the verifier would normally have caught.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

type KResult<T> = Result<T, ShapeError>;

fn err<T>(msg: impl Into<String>) -> KResult<T> {
    Err(ShapeError(msg.into()))
}

/// A dense row-major tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor<T> {
    /// Shape; `[]` for a scalar.
    pub shape: Shape,
    /// Elements in row-major order; `len == numel(shape)`.
    pub data: Vec<T>,
}

impl<T: Clone> Tensor<T> {
    /// A tensor from a shape and row-major data.
    pub fn new(shape: Shape, data: Vec<T>) -> KResult<Self> {
        if numel(&shape) != data.len() {
            return err(format!(
                "shape {:?} needs {} elements, got {}",
                shape,
                numel(&shape),
                data.len()
            ));
        }
        Ok(Tensor { shape, data })
    }

    /// A scalar.
    pub fn scalar(v: T) -> Self {
        Tensor {
            shape: vec![],
            data: vec![v],
        }
    }

    /// Applies `f` to each element.
    pub fn map<U>(&self, f: impl Fn(&T) -> U) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(f).collect(),
        }
    }

    /// Applies a fallible `f` to each element.
    pub fn try_map<U, E>(&self, f: impl Fn(&T) -> Result<U, E>) -> Result<Tensor<U>, E> {
        Ok(Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(f).collect::<Result<_, _>>()?,
        })
    }

    /// Elements picked by flat index: `out.data[i] = self.data[idx[i]]`.
    pub fn gather(&self, shape: Shape, idx: &[usize]) -> Tensor<T> {
        Tensor {
            shape,
            data: idx.iter().map(|&i| self.data[i].clone()).collect(),
        }
    }

    /// Same elements, new shape.
    pub fn reshape(&self, shape: &[usize]) -> KResult<Self> {
        if numel(shape) != self.data.len() {
            return err(format!("cannot reshape {:?} to {:?}", self.shape, shape));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data: self.data.clone(),
        })
    }

    /// numpy `broadcast_to`.
    pub fn broadcast_to(&self, shape: &[usize]) -> KResult<Self> {
        let idx = broadcast_index(&self.shape, shape)?;
        Ok(self.gather(shape.to_vec(), &idx))
    }

    /// Permutes axes: result axis `i` is axis `perm[i]`.
    pub fn transpose(&self, perm: &[usize]) -> KResult<Self> {
        let r = self.shape.len();
        let mut seen = vec![false; r];
        if perm.len() != r
            || perm
                .iter()
                .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
        {
            return err(format!(
                "perm {perm:?} is not a permutation of 0..{r} for shape {:?}",
                self.shape
            ));
        }
        let out_shape: Shape = perm.iter().map(|&p| self.shape[p]).collect();
        let in_strides = strides(&self.shape);
        let idx = for_each_index(&out_shape, |oi| {
            oi.iter().zip(perm).map(|(&i, &p)| i * in_strides[p]).sum()
        });
        Ok(self.gather(out_shape, &idx))
    }

    /// Python-style slicing with non-negative bounds and positive steps.
    pub fn slice(&self, starts: &[usize], stops: &[usize], steps: &[usize]) -> KResult<Self> {
        let r = self.shape.len();
        if starts.len() != r || stops.len() != r || steps.len() != r {
            return err(format!(
                "slice needs {r} starts/stops/steps for shape {:?}",
                self.shape
            ));
        }
        let mut out_shape = Vec::with_capacity(r);
        for a in 0..r {
            if steps[a] == 0 || starts[a] >= stops[a] || stops[a] > self.shape[a] {
                return err(format!(
                    "axis {a}: slice {}:{}:{} is empty or out of bounds for size {}",
                    starts[a], stops[a], steps[a], self.shape[a]
                ));
            }
            out_shape.push((stops[a] - starts[a]).div_ceil(steps[a]));
        }
        let in_strides = strides(&self.shape);
        let idx = for_each_index(&out_shape, |oi| {
            (0..r)
                .map(|a| (starts[a] + oi[a] * steps[a]) * in_strides[a])
                .sum()
        });
        Ok(self.gather(out_shape, &idx))
    }

    /// Concatenation along `axis`.
    pub fn concat(parts: &[&Tensor<T>], axis: usize) -> KResult<Self> {
        let first = match parts.first() {
            Some(f) => f,
            None => return err("concat of no tensors"),
        };
        let r = first.shape.len();
        if axis >= r {
            return err(format!("concat axis {axis} out of range for rank {r}"));
        }
        for p in parts {
            if p.shape.len() != r || (0..r).any(|a| a != axis && p.shape[a] != first.shape[a]) {
                return err(format!(
                    "concat along axis {axis}: shapes {:?} and {:?} differ off that axis",
                    first.shape, p.shape
                ));
            }
        }
        let mut out_shape = first.shape.clone();
        out_shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
        let outer: usize = first.shape[..axis].iter().product();
        let mut data = Vec::with_capacity(numel(&out_shape));
        for o in 0..outer {
            for p in parts {
                let chunk: usize = p.shape[axis..].iter().product();
                data.extend_from_slice(&p.data[o * chunk..(o + 1) * chunk]);
            }
        }
        Ok(Tensor {
            shape: out_shape,
            data,
        })
    }
}

impl<T: Element> Tensor<T> {
    /// Sum over `axes` (all axes if empty).
    pub fn sum(&self, axes: &[usize], keepdims: bool) -> KResult<Self> {
        let r = self.shape.len();
        let axes: Vec<usize> = if axes.is_empty() {
            (0..r).collect()
        } else {
            axes.to_vec()
        };
        if axes.iter().any(|&a| a >= r) {
            return err(format!("sum axes {axes:?} out of range for rank {r}"));
        }
        let out_full: Shape = (0..r)
            .map(|a| if axes.contains(&a) { 1 } else { self.shape[a] })
            .collect();
        let out_strides = strides(&out_full);
        let mut acc: Vec<Option<T>> = vec![None; numel(&out_full)];
        let in_pos = for_each_index(&self.shape, |ii| {
            (0..r)
                .map(|a| {
                    if axes.contains(&a) {
                        0
                    } else {
                        ii[a] * out_strides[a]
                    }
                })
                .sum::<usize>()
        });
        for (x, o) in self.data.iter().zip(in_pos) {
            acc[o] = Some(match acc[o].take() {
                None => x.clone(),
                Some(s) => s.add(x),
            });
        }
        let shape = if keepdims {
            out_full
        } else {
            (0..r)
                .filter(|a| !axes.contains(a))
                .map(|a| self.shape[a])
                .collect()
        };
        Ok(Tensor {
            shape,
            data: acc
                .into_iter()
                .map(|x| x.expect("no zero-sized axes"))
                .collect(),
        })
    }

    /// `self @ w` (numpy matmul, ranks 1-2) with a clear right-hand side.
    pub fn matmul_clear_rhs(&self, w: &Tensor<i64>) -> KResult<Self> {
        self.matmul_sparse_rhs(&SparseWeights::rhs(w)?)
    }

    /// `self @ w` with `w` prepared by [`SparseWeights::rhs`]: only the nonzero weights of each
    /// column are visited. Clear matrices of tree programs (one-hot selections, path
    /// matrices) are almost all zeros, and adding `x * 0` changes nothing, in clear or
    /// encrypted (the sum is the same bits), so this is [`Tensor::matmul_clear_rhs`] in
    /// `O(m * nonzeros)`.
    pub fn matmul_sparse_rhs(&self, w: &SparseWeights) -> KResult<Self> {
        if !w.rhs {
            return err("matmul weights prepared as a left-hand side used on the right");
        }
        let (m, k, n, out_shape) = matmul_dims(&self.shape, &w.shape)?;
        let mut data = Vec::with_capacity(m * n);
        for i in 0..m {
            let row = &self.data[i * k..(i + 1) * k];
            for j in 0..n {
                data.push(sparse_dot(row, w.lines.line(j), 1, 0));
            }
        }
        Ok(Tensor {
            shape: out_shape,
            data,
        })
    }

    /// `w @ self` (numpy matmul, ranks 1-2) with a clear left-hand side.
    pub fn matmul_clear_lhs(w: &Tensor<i64>, x: &Self) -> KResult<Self> {
        Self::matmul_sparse_lhs(&SparseWeights::lhs(w)?, x)
    }

    /// `w @ x` with `w` prepared by [`SparseWeights::lhs`] (nonzero weights only, as in
    /// [`Tensor::matmul_sparse_rhs`]).
    pub fn matmul_sparse_lhs(w: &SparseWeights, x: &Self) -> KResult<Self> {
        if w.rhs {
            return err("matmul weights prepared as a right-hand side used on the left");
        }
        let (m, _, n, out_shape) = matmul_dims(&w.shape, &x.shape)?;
        let mut data = Vec::with_capacity(m * n);
        for i in 0..m {
            for j in 0..n {
                data.push(sparse_dot(&x.data, w.lines.line(i), n, j));
            }
        }
        Ok(Tensor {
            shape: out_shape,
            data,
        })
    }

    /// 2-D convolution (NCHW) with clear weights `[O, C/group, KH, KW]` and optional clear
    /// bias `[O]`.
    pub fn conv2d_clear(
        &self,
        w: &Tensor<i64>,
        bias: Option<&Tensor<i64>>,
        attrs: &Conv2dAttrs,
    ) -> KResult<Self> {
        let out_shape = conv2d_shape(&self.shape, &w.shape, attrs)?;
        let (nb, c, h, wd) = (self.shape[0], self.shape[1], self.shape[2], self.shape[3]);
        let (o, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3]);
        if let Some(b) = bias {
            if b.shape != [o] {
                return err(format!("conv2d bias shape {:?}, expected [{o}]", b.shape));
            }
        }
        let (oh, ow) = (out_shape[2], out_shape[3]);
        let og = o / attrs.group;
        let zero = self.data[0].zero_like();
        let mut data = Vec::with_capacity(numel(&out_shape));
        for n in 0..nb {
            for oc in 0..o {
                let g = oc / og;
                for y in 0..oh {
                    for x in 0..ow {
                        let mut acc = zero.clone();
                        for ci in 0..cg {
                            let cin = g * cg + ci;
                            for ky in 0..kh {
                                let iy = (y * attrs.strides[0] + ky * attrs.dilations[0]) as isize
                                    - attrs.pads[0] as isize;
                                if iy < 0 || iy >= h as isize {
                                    continue;
                                }
                                for kx in 0..kw {
                                    let ix = (x * attrs.strides[1] + kx * attrs.dilations[1])
                                        as isize
                                        - attrs.pads[1] as isize;
                                    if ix < 0 || ix >= wd as isize {
                                        continue;
                                    }
                                    let wv = w.data[((oc * cg + ci) * kh + ky) * kw + kx];
                                    if wv != 0 {
                                        let xi =
                                            ((n * c + cin) * h + iy as usize) * wd + ix as usize;
                                        acc.mul_add_assign(&self.data[xi], wv);
                                    }
                                }
                            }
                        }
                        if let Some(b) = bias {
                            acc = acc.add_int(b.data[oc]);
                        }
                        data.push(acc);
                    }
                }
            }
        }
        Ok(Tensor {
            shape: out_shape,
            data,
        })
    }
}

/// Elementwise binary op with numpy broadcasting.
pub fn zip_broadcast<A: Clone, B: Clone, C>(
    a: &Tensor<A>,
    b: &Tensor<B>,
    f: impl Fn(&A, &B) -> C,
) -> KResult<Tensor<C>> {
    let shape = match broadcast_shapes(&a.shape, &b.shape) {
        Some(s) => s,
        None => {
            return err(format!(
                "shapes {:?} and {:?} do not broadcast",
                a.shape, b.shape
            ))
        }
    };
    let ia = broadcast_index(&a.shape, &shape)?;
    let ib = broadcast_index(&b.shape, &shape)?;
    Ok(Tensor {
        data: ia
            .iter()
            .zip(&ib)
            .map(|(&i, &j)| f(&a.data[i], &b.data[j]))
            .collect(),
        shape,
    })
}

/// Fallible elementwise binary op with numpy broadcasting.
pub fn try_zip_broadcast<A: Clone, B: Clone, C, E: From<ShapeError>>(
    a: &Tensor<A>,
    b: &Tensor<B>,
    f: impl Fn(&A, &B) -> Result<C, E>,
) -> Result<Tensor<C>, E> {
    let t = zip_broadcast(a, b, |x, y| f(x, y))?;
    Ok(Tensor {
        shape: t.shape,
        data: t.data.into_iter().collect::<Result<_, _>>()?,
    })
}

/// For broadcasting `from` to `to`: the flat source index of every target element.
pub fn broadcast_index(from: &[usize], to: &[usize]) -> KResult<Vec<usize>> {
    if from.len() > to.len() {
        return err(format!("cannot broadcast {from:?} to {to:?}"));
    }
    let off = to.len() - from.len();
    for (a, &d) in from.iter().enumerate() {
        if d != 1 && d != to[a + off] {
            return err(format!("cannot broadcast {from:?} to {to:?}"));
        }
    }
    let fs = strides(from);
    Ok(for_each_index(to, |ti| {
        from.iter()
            .enumerate()
            .map(|(a, &d)| if d == 1 { 0 } else { ti[a + off] * fs[a] })
            .sum()
    }))
}

/// Calls `f` on every multi-index of `shape` in row-major order, collecting the results.
pub fn for_each_index<R>(shape: &[usize], mut f: impl FnMut(&[usize]) -> R) -> Vec<R> {
    let n = numel(shape);
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        out.push(f(&idx));
        for a in (0..shape.len()).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    out
}

/// `(m, k, n, result shape)` of a numpy matmul of ranks 1-2.
pub fn matmul_dims(a: &[usize], b: &[usize]) -> KResult<(usize, usize, usize, Shape)> {
    let (m, ka, a_vec) = match a {
        [k] => (1, *k, true),
        [m, k] => (*m, *k, false),
        _ => {
            return err(format!(
                "matmul operand of rank {} (1 or 2 supported)",
                a.len()
            ))
        }
    };
    let (kb, n, b_vec) = match b {
        [k] => (*k, 1, true),
        [k, n] => (*k, *n, false),
        _ => {
            return err(format!(
                "matmul operand of rank {} (1 or 2 supported)",
                b.len()
            ))
        }
    };
    if ka != kb {
        return err(format!(
            "matmul inner dimensions differ: {a:?} x {b:?} ({ka} != {kb})"
        ));
    }
    let shape = match (a_vec, b_vec) {
        (true, true) => vec![],
        (true, false) => vec![n],
        (false, true) => vec![m],
        (false, false) => vec![m, n],
    };
    Ok((m, ka, n, shape))
}

/// Output shape of a 2-D convolution.
pub fn conv2d_shape(x: &[usize], w: &[usize], at: &Conv2dAttrs) -> KResult<Shape> {
    if x.len() != 4 || w.len() != 4 {
        return err(format!(
            "conv2d needs x [N,C,H,W] and w [O,C/group,KH,KW], got {x:?} and {w:?}"
        ));
    }
    if x.contains(&0) || w.contains(&0) {
        return err(format!(
            "conv2d operands have a zero-sized axis: x {x:?}, w {w:?}"
        ));
    }
    let g = at.group;
    if g == 0 || !x[1].is_multiple_of(g) || !w[0].is_multiple_of(g) || w[1] * g != x[1] {
        return err(format!(
            "conv2d group {g}: input channels {} and weight {w:?} are inconsistent",
            x[1]
        ));
    }
    if at.strides.contains(&0) || at.dilations.contains(&0) {
        return err("conv2d strides and dilations must be >= 1");
    }
    let mut out = vec![x[0], w[0]];
    for d in 0..2 {
        let span = at.dilations[d] * (w[2 + d] - 1) + 1;
        let padded = x[2 + d] + at.pads[d] + at.pads[d + 2];
        if padded < span {
            return err(format!(
                "conv2d kernel {:?} larger than padded input {:?}",
                &w[2..],
                &x[2..]
            ));
        }
        out.push((padded - span) / at.strides[d] + 1);
    }
    Ok(out)
}

/// The nonzero entries of the lines (rows or columns) of a clear `i64` matrix, in compressed
/// form: line `l` holds `(index, weight)` pairs `entries[starts[l]..starts[l + 1]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sparse {
    starts: Vec<usize>,
    entries: Vec<(usize, i64)>,
}

impl Sparse {
    /// Columns of a row-major `[k, n]` matrix (index = row).
    fn columns(w: &[i64], k: usize, n: usize) -> Self {
        let mut starts = vec![0usize; n + 1];
        for (idx, &x) in w.iter().enumerate() {
            if x != 0 {
                starts[idx % n + 1] += 1;
            }
        }
        for j in 0..n {
            starts[j + 1] += starts[j];
        }
        let mut fill = starts.clone();
        let mut entries = vec![(0, 0); starts[n]];
        for kk in 0..k {
            for j in 0..n {
                let x = w[kk * n + j];
                if x != 0 {
                    entries[fill[j]] = (kk, x);
                    fill[j] += 1;
                }
            }
        }
        Sparse { starts, entries }
    }

    /// Rows of a row-major `[m, k]` matrix (index = column).
    fn rows(w: &[i64], k: usize, m: usize) -> Self {
        let mut starts = Vec::with_capacity(m + 1);
        let mut entries = Vec::new();
        starts.push(0);
        for i in 0..m {
            entries.extend(
                w[i * k..(i + 1) * k]
                    .iter()
                    .enumerate()
                    .filter(|(_, &x)| x != 0)
                    .map(|(kk, &x)| (kk, x)),
            );
            starts.push(entries.len());
        }
        Sparse { starts, entries }
    }

    fn line(&self, l: usize) -> &[(usize, i64)] {
        &self.entries[self.starts[l]..self.starts[l + 1]]
    }
}

/// A clear matmul operand (rank 1 or 2) stored by its nonzero weights, prepared once and
/// multiplied many times ([`Tensor::matmul_sparse_rhs`], [`Tensor::matmul_sparse_lhs`]): the
/// interpreter prepares the constant weights of a program once per inputset, and a server
/// once per program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseWeights {
    shape: Shape,
    rhs: bool,
    lines: Sparse,
}

impl SparseWeights {
    /// `w` as the right-hand side of `x @ w` (`[k]` or `[k, n]`).
    pub fn rhs(w: &Tensor<i64>) -> KResult<Self> {
        let (k, n) = match w.shape[..] {
            [k] => (k, 1),
            [k, n] => (k, n),
            _ => {
                return err(format!(
                    "matmul operand of rank {} (1 or 2 supported)",
                    w.shape.len()
                ))
            }
        };
        Ok(SparseWeights {
            shape: w.shape.clone(),
            rhs: true,
            lines: Sparse::columns(&w.data, k, n),
        })
    }

    /// `w` as the left-hand side of `w @ x` (`[k]` or `[m, k]`).
    pub fn lhs(w: &Tensor<i64>) -> KResult<Self> {
        let (m, k) = match w.shape[..] {
            [k] => (1, k),
            [m, k] => (m, k),
            _ => {
                return err(format!(
                    "matmul operand of rank {} (1 or 2 supported)",
                    w.shape.len()
                ))
            }
        };
        Ok(SparseWeights {
            shape: w.shape.clone(),
            rhs: false,
            lines: Sparse::rows(&w.data, k, m),
        })
    }

    /// The dense shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of nonzero weights.
    pub fn nonzeros(&self) -> usize {
        self.lines.entries.len()
    }
}

/// `sum_e x[e.0 * stride + offset] * e.1` over the nonzero entries `line`; an element equal to
/// zero (shaped like `x[offset]`) when there are none.
fn sparse_dot<T: Element>(x: &[T], line: &[(usize, i64)], stride: usize, offset: usize) -> T {
    match line.split_first() {
        None => x[offset].zero_like(),
        Some((&(k0, w0), rest)) => {
            let mut acc = x[k0 * stride + offset].mul_int(w0);
            for &(kk, wk) in rest {
                acc.mul_add_assign(&x[kk * stride + offset], wk);
            }
            acc
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], d: &[i128]) -> Tensor<i128> {
        Tensor::new(shape.to_vec(), d.to_vec()).unwrap()
    }

    proptest::proptest! {
        /// The sparse matmul kernels (nonzero weights only) equal the dense definition, on
        /// either side, for matrices with many zeros, vectors and all-zero columns included.
        #[test]
        fn sparse_matmul_is_dense_matmul(
            m in 1usize..4, k in 1usize..6, n in 1usize..5,
            xs in proptest::collection::vec(-9i64..10, 24),
            ws in proptest::collection::vec(proptest::prop_oneof![3 => proptest::strategy::Just(0i64), 1 => -5i64..6], 30),
        ) {
            use proptest::prelude::*;
            let x = Tensor::new(vec![m, k], xs[..m * k].iter().map(|&v| v as i128).collect()).unwrap();
            let w = Tensor::new(vec![k, n], ws[..k * n].to_vec()).unwrap();
            let dense = |i: usize, j: usize| (0..k).map(|kk| x.data[i * k + kk] * w.data[kk * n + j] as i128).sum::<i128>();
            let got = x.matmul_clear_rhs(&w).unwrap();
            prop_assert_eq!(&got.shape, &vec![m, n]);
            for i in 0..m {
                for j in 0..n {
                    prop_assert_eq!(got.data[i * n + j], dense(i, j));
                }
            }
            // w^T @ x^T = (x @ w)^T: the left-hand kernel
            let wt = Tensor::new(vec![n, k], (0..n * k).map(|e| w.data[(e % k) * n + e / k]).collect()).unwrap();
            let xt = x.transpose(&[1, 0]).unwrap();
            let lhs = Tensor::matmul_clear_lhs(&wt, &xt).unwrap();
            prop_assert_eq!(lhs, got.transpose(&[1, 0]).unwrap());
            // a vector on the right
            let v = Tensor::new(vec![k], ws[..k].to_vec()).unwrap();
            let mv = x.matmul_clear_rhs(&v).unwrap();
            prop_assert_eq!(mv.shape.len(), 1);
            for i in 0..m {
                prop_assert_eq!(mv.data[i], (0..k).map(|kk| x.data[i * k + kk] * v.data[kk] as i128).sum::<i128>());
            }
        }
    }

    #[test]
    fn movement() {
        let a = t(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(a.transpose(&[1, 0]).unwrap().data, vec![1, 4, 2, 5, 3, 6]);
        assert_eq!(
            a.slice(&[0, 1], &[2, 3], &[1, 2]).unwrap(),
            t(&[2, 1], &[2, 5])
        );
        let b = t(&[1, 3], &[7, 8, 9]);
        assert_eq!(
            Tensor::concat(&[&a, &b], 0).unwrap().data,
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9]
        );
        let c = t(&[2, 1], &[10, 20]);
        assert_eq!(
            Tensor::concat(&[&a, &c], 1).unwrap().data,
            vec![1, 2, 3, 10, 4, 5, 6, 20]
        );
        assert_eq!(
            t(&[3], &[1, 2, 3]).broadcast_to(&[2, 3]).unwrap().data,
            vec![1, 2, 3, 1, 2, 3]
        );
        assert_eq!(a.sum(&[1], false).unwrap(), t(&[2], &[6, 15]));
        assert_eq!(a.sum(&[0], true).unwrap(), t(&[1, 3], &[5, 7, 9]));
        assert_eq!(a.sum(&[], false).unwrap(), t(&[], &[21]));
    }

    #[test]
    fn linear() {
        let a = t(&[2, 2], &[1, 2, 3, 4]);
        let w = Tensor::new(vec![2], vec![5i64, 6]).unwrap();
        assert_eq!(a.matmul_clear_rhs(&w).unwrap(), t(&[2], &[17, 39]));
        assert_eq!(
            Tensor::matmul_clear_lhs(&w, &a).unwrap(),
            t(&[2], &[23, 34])
        );
        // 1x1x3x3 input, 1x1x2x2 kernel of ones, bias 1.
        let x = t(&[1, 1, 3, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let k = Tensor::new(vec![1, 1, 2, 2], vec![1i64; 4]).unwrap();
        let b = Tensor::new(vec![1], vec![1i64]).unwrap();
        let y = x
            .conv2d_clear(&k, Some(&b), &Conv2dAttrs::default())
            .unwrap();
        assert_eq!(y, t(&[1, 1, 2, 2], &[13, 17, 25, 29]));
        let at = Conv2dAttrs {
            pads: [1, 1, 1, 1],
            strides: [2, 2],
            ..Default::default()
        };
        let y = x.conv2d_clear(&k, None, &at).unwrap();
        assert_eq!(y, t(&[1, 1, 2, 2], &[1, 5, 11, 28]));
    }
}
