//! `Conv`, `AveragePool`, `MaxPool` and `BatchNormalization` (2-D, NCHW).
//!
//! A convolution subtracts the input's integer zero point first (so that zero padding pads
//! with the float 0), folds the per-channel input scales into the weights and quantizes them
//! symmetrically per output channel. Average pooling is a grouped convolution with a kernel of
//! ones; max pooling takes elementwise `max` over the strided windows of a plainly quantized
//! input; batch normalization is an affine map per channel that folds into the encoding.

use super::super::error::OnnxResult;
use super::super::graph::{FNode, FOp, FTensor, Pool};
use super::super::qval::{Ctx, QVal, Val};
use super::arg;
use crate::quantize::{QuantOptions, UniformQuantizer};
use crate::Granularity;
use veil_ir::Conv2dAttrs;

fn dims4(n: &FNode, t: &FTensor, what: &str) -> OnnxResult<[usize; 4]> {
    match t.shape.as_slice() {
        [a, b, c, d] => Ok([*a, *b, *c, *d]),
        s => Err(n.unsupported(format!(
            "{what} of shape {s:?}: only 2-D (NCHW, rank 4) operations are supported"
        ))),
    }
}

fn out_dim(
    n: &FNode,
    size: usize,
    pad: usize,
    k: usize,
    stride: usize,
    dil: usize,
) -> OnnxResult<usize> {
    let span = dil * (k - 1) + 1;
    if size + pad < span || stride == 0 {
        return Err(n.err(format!(
            "window {k} (dilation {dil}) does not fit an axis of {size} with padding {pad}"
        )));
    }
    Ok((size + pad - span) / stride + 1)
}

/// Float 2-D convolution.
pub fn conv2d(
    n: &FNode,
    x: &FTensor,
    w: &FTensor,
    b: Option<&[f64]>,
    at: &Conv2dAttrs,
) -> OnnxResult<FTensor> {
    let [nb, c, h, wd] = dims4(n, x, "input")?;
    let [o, cg, kh, kw] = dims4(n, w, "weight")?;
    if at.group == 0 || c % at.group != 0 || o % at.group != 0 || cg * at.group != c {
        return Err(n.err(format!(
            "input channels {c}, weight {:?} and group {} do not match",
            w.shape, at.group
        )));
    }
    let oh = out_dim(
        n,
        h,
        at.pads[0] + at.pads[2],
        kh,
        at.strides[0],
        at.dilations[0],
    )?;
    let ow = out_dim(
        n,
        wd,
        at.pads[1] + at.pads[3],
        kw,
        at.strides[1],
        at.dilations[1],
    )?;
    let og = o / at.group;
    let mut out = Vec::with_capacity(nb * o * oh * ow);
    for bi in 0..nb {
        for oc in 0..o {
            let g = oc / og;
            for y in 0..oh {
                for xx in 0..ow {
                    let mut acc = b.map_or(0.0, |b| b[oc]);
                    for ci in 0..cg {
                        let cin = g * cg + ci;
                        for ky in 0..kh {
                            let iy = (y * at.strides[0] + ky * at.dilations[0]) as isize
                                - at.pads[0] as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (xx * at.strides[1] + kx * at.dilations[1]) as isize
                                    - at.pads[1] as isize;
                                if ix < 0 || ix >= wd as isize {
                                    continue;
                                }
                                acc += w.data[((oc * cg + ci) * kh + ky) * kw + kx]
                                    * x.data[((bi * c + cin) * h + iy as usize) * wd + ix as usize];
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    Ok(FTensor::new(vec![nb, o, oh, ow], out).expect("consistent"))
}

fn pool_attrs(p: &Pool, group: usize) -> Conv2dAttrs {
    Conv2dAttrs {
        strides: p.strides,
        pads: p.pads,
        dilations: [1, 1],
        group,
    }
}

fn bn_affine(n: &FNode, eps: f64, ins: &[Option<&FTensor>]) -> OnnxResult<(Vec<f64>, Vec<f64>)> {
    let p: Vec<&FTensor> = (1..5).map(|i| arg(n, ins, i)).collect::<OnnxResult<_>>()?;
    let c = p[0].data.len();
    if p.iter().any(|t| t.data.len() != c) {
        return Err(n.err("scale, B, mean and var must have one value per channel"));
    }
    let mul: Vec<f64> = (0..c)
        .map(|i| p[0].data[i] / (p[3].data[i] + eps).sqrt())
        .collect();
    let add = (0..c)
        .map(|i| p[1].data[i] - p[2].data[i] * mul[i])
        .collect();
    Ok((mul, add))
}

/// Float evaluation of the ops of this family.
pub fn eval(n: &FNode, ins: &[Option<&FTensor>]) -> OnnxResult<Vec<FTensor>> {
    let x = arg(n, ins, 0)?;
    Ok(vec![match &n.op {
        FOp::Conv { kernel, attrs } => {
            let w = arg(n, ins, 1)?;
            check_kernel(n, w, *kernel)?;
            let b = ins.get(2).copied().flatten().map(|b| b.data.as_slice());
            conv2d(n, x, w, b, attrs)?
        }
        FOp::AvgPool(p) => {
            let [_, c, h, wd] = dims4(n, x, "input")?;
            let ones = FTensor::new(
                vec![c, 1, p.kernel[0], p.kernel[1]],
                vec![1.0; c * p.kernel[0] * p.kernel[1]],
            )
            .expect("ok");
            let sum = conv2d(n, x, &ones, None, &pool_attrs(p, c))?;
            // Divisor: the window size, or the number of cells inside the input.
            let cnt_in = FTensor::new(vec![1, 1, h, wd], vec![1.0; h * wd]).expect("ok");
            let ones1 = FTensor::new(
                vec![1, 1, p.kernel[0], p.kernel[1]],
                vec![1.0; p.kernel[0] * p.kernel[1]],
            )
            .expect("ok");
            let cnt = conv2d(n, &cnt_in, &ones1, None, &pool_attrs(p, 1))?;
            let full = (p.kernel[0] * p.kernel[1]) as f64;
            let per = cnt.data.len();
            let mut y = sum;
            for (i, v) in y.data.iter_mut().enumerate() {
                *v /= if p.count_include_pad {
                    full
                } else {
                    cnt.data[i % per]
                };
            }
            y
        }
        FOp::MaxPool(p) => {
            let [nb, c, h, wd] = dims4(n, x, "input")?;
            let oh = out_dim(n, h, p.pads[0] + p.pads[2], p.kernel[0], p.strides[0], 1)?;
            let ow = out_dim(n, wd, p.pads[1] + p.pads[3], p.kernel[1], p.strides[1], 1)?;
            let mut out = Vec::with_capacity(nb * c * oh * ow);
            for plane in 0..nb * c {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut m = f64::NEG_INFINITY;
                        for ky in 0..p.kernel[0] {
                            for kx in 0..p.kernel[1] {
                                let iy = (y * p.strides[0] + ky) as isize - p.pads[0] as isize;
                                let ix = (xx * p.strides[1] + kx) as isize - p.pads[1] as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    m = m.max(x.data[(plane * h + iy as usize) * wd + ix as usize]);
                                }
                            }
                        }
                        out.push(m);
                    }
                }
            }
            FTensor::new(vec![nb, c, oh, ow], out).expect("consistent")
        }
        FOp::BatchNorm { eps } => {
            let (mul, add) = bn_affine(n, *eps, ins)?;
            if x.shape.len() < 2 || x.shape[1] != mul.len() {
                return Err(n.err(format!(
                    "input shape {:?} does not have {} channels on axis 1",
                    x.shape,
                    mul.len()
                )));
            }
            let inner: usize = x.shape[2..].iter().product();
            let mut y = x.clone();
            for (i, v) in y.data.iter_mut().enumerate() {
                let c = (i / inner) % mul.len();
                *v = *v * mul[c] + add[c];
            }
            y
        }
        _ => unreachable!("not a conv op"),
    }])
}

fn check_kernel(n: &FNode, w: &FTensor, kernel: Option<[usize; 2]>) -> OnnxResult<()> {
    if let Some(k) = kernel {
        if w.shape.len() == 4 && w.shape[2..] != k {
            return Err(n.err(format!(
                "kernel_shape {k:?} does not match the weight shape {:?}",
                w.shape
            )));
        }
    }
    Ok(())
}

/// `x` plain, per tensor or per channel (axis 1), with integral zero points; its integer
/// tensor shifted by the zero points so that integer 0 stands for 0.0.
fn centered(ctx: &Ctx, x: QVal, name: &str) -> OnnxResult<(QVal, veil_ir::ValueId)> {
    let mut x = ctx.narrow(x, name)?;
    if !(x.axis.is_none() || x.axis == Some(1))
        || !x.integral_zero()
        || x.scale.iter().any(|&s| s <= 0.0)
    {
        x = ctx.materialize(&x, name)?;
    }
    let zr: Vec<i64> = x.zero.iter().map(|z| z.round() as i64).collect();
    if zr.iter().all(|&z| z == 0) {
        return Ok((x.clone(), x.id));
    }
    let k = if zr.len() == 1 {
        ctx.b.constant(&[], &zr)?
    } else {
        ctx.b.constant(&[1, zr.len(), 1, 1], &zr)?
    };
    Ok((x.clone(), ctx.b.sub(x.id, k)?))
}

/// Emits the ops of this family on an encrypted input.
pub fn emit(ctx: &Ctx, n: &FNode, ins: &[Option<Val>]) -> OnnxResult<Vec<Val>> {
    let name = n.input(0)?;
    let Some(Some(Val::Enc(x))) = ins.first() else {
        return Err(n.unsupported(
            "encrypted weights or parameters are not supported; they must be initializers",
        ));
    };
    if x.shape.len() != 4 {
        return Err(n.unsupported(format!(
            "input of shape {:?}: only 2-D (NCHW, rank 4) operations are supported",
            x.shape
        )));
    }
    let consts: Vec<Option<&FTensor>> = ins
        .iter()
        .map(|v| match v {
            Some(Val::Const(t)) => Some(t),
            _ => None,
        })
        .collect();
    for (i, v) in ins.iter().enumerate().skip(1) {
        if matches!(v, Some(Val::Enc(_))) {
            return Err(n.unsupported(format!(
                "operand {i} is encrypted; weights and parameters must be initializers"
            )));
        }
    }
    let out = match &n.op {
        FOp::Conv { kernel, attrs } => {
            let w = arg(n, &consts, 1)?;
            check_kernel(n, w, *kernel)?;
            let (x, xs) = centered(ctx, x.clone(), name)?;
            let [o, cg, kh, kw] = dims4(n, w, "weight")?;
            let c = x.shape[1];
            if cg * attrs.group != c || o % attrs.group != 0 {
                return Err(n.err(format!(
                    "input channels {c}, weight {:?} and group {} do not match",
                    w.shape, attrs.group
                )));
            }
            let per = cg * kh * kw;
            let og = o / attrs.group;
            // Fold the input scales into the weights.
            let folded: Vec<f64> = (0..o * per)
                .map(|i| {
                    let (oc, ci) = (i / per, (i % per) / (kh * kw));
                    let cin = (oc / og) * cg + ci;
                    w.data[i] * x.scale[cin % x.scale.len()]
                })
                .collect();
            let lo: Vec<f64> = (0..o)
                .map(|oc| {
                    folded[oc * per..(oc + 1) * per]
                        .iter()
                        .cloned()
                        .fold(0.0, f64::min)
                })
                .collect();
            let hi: Vec<f64> = (0..o)
                .map(|oc| {
                    folded[oc * per..(oc + 1) * per]
                        .iter()
                        .cloned()
                        .fold(0.0, f64::max)
                })
                .collect();
            let bias = consts
                .get(2)
                .copied()
                .flatten()
                .map(|b| b.data.clone())
                .unwrap_or_else(|| vec![0.0; o]);
            if bias.len() != o {
                return Err(n.err(format!(
                    "bias has {} values for {o} output channels",
                    bias.len()
                )));
            }
            let (qmin, qmax) = ctx.int_range(xs)?;
            let m = qmin.abs().max(qmax.abs());
            let mut chosen = None;
            for bits in (2..=ctx.n_bits.weights.max(2)).rev() {
                let q = UniformQuantizer::from_ranges(
                    &lo,
                    &hi,
                    QuantOptions::symmetric(bits, Granularity::PerChannel),
                )?;
                let wq: Vec<i64> = (0..o * per)
                    .map(|i| q.quantize(folded[i], i / per))
                    .collect();
                let bq: Vec<i64> = (0..o)
                    .map(|oc| (bias[oc] / q.scale[oc]).round() as i64)
                    .collect();
                let smax = (0..o)
                    .map(|oc| {
                        wq[oc * per..(oc + 1) * per]
                            .iter()
                            .map(|&v| (v as i128).abs())
                            .sum::<i128>()
                    })
                    .max()
                    .unwrap_or(0);
                let fits = smax * m <= ctx.max_acc;
                chosen = Some((q, wq, bq));
                if fits {
                    break;
                }
            }
            let (q, wq, bq) = chosen.expect("one width tried");
            let wc = ctx.b.constant(&[o, cg, kh, kw], &wq)?;
            // The bias becomes the accumulator's zero points (absorbed by the next lookup).
            let id = ctx.b.conv2d(xs, wc, None, attrs.clone())?;
            let shape = ctx.b.shape(id)?;
            QVal::new(
                id,
                shape,
                Some(1),
                q.scale.clone(),
                bq.iter().map(|&v| -(v as f64)).collect(),
            )
        }
        FOp::AvgPool(p) => {
            let has_pad = p.pads.iter().any(|&v| v > 0);
            if has_pad && !p.count_include_pad {
                return Err(n.unsupported("padded AveragePool with count_include_pad = 0 is not supported (the divisor varies at the borders): use count_include_pad = 1 or no padding"));
            }
            let (x, xs) = centered(ctx, x.clone(), name)?;
            let c = x.shape[1];
            let k = p.kernel[0] * p.kernel[1];
            let ones = ctx
                .b
                .constant(&[c, 1, p.kernel[0], p.kernel[1]], &vec![1; c * k])?;
            let id = ctx.b.conv2d(xs, ones, None, pool_attrs(p, c))?;
            let shape = ctx.b.shape(id)?;
            let scale = x.scale.iter().map(|s| s / k as f64).collect::<Vec<_>>();
            let zeros = vec![0.0; scale.len()];
            QVal::new(id, shape, x.axis, scale, zeros)
        }
        FOp::MaxPool(p) => {
            if p.pads.iter().any(|&v| v > 0) {
                return Err(
                    n.unsupported("padded MaxPool is not supported: export without padding")
                );
            }
            let mut x = ctx.plain(x.clone(), name)?;
            if x.scale.iter().any(|&s| s <= 0.0) {
                x = ctx.materialize(&x, name)?;
            }
            let [nb, c, h, wd] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
            let oh = out_dim(n, h, 0, p.kernel[0], p.strides[0], 1)?;
            let ow = out_dim(n, wd, 0, p.kernel[1], p.strides[1], 1)?;
            let mut acc = None;
            for ky in 0..p.kernel[0] {
                for kx in 0..p.kernel[1] {
                    let s = ctx.b.slice(
                        x.id,
                        &[0, 0, ky, kx],
                        &[
                            nb,
                            c,
                            ky + (oh - 1) * p.strides[0] + 1,
                            kx + (ow - 1) * p.strides[1] + 1,
                        ],
                        &[1, 1, p.strides[0], p.strides[1]],
                    )?;
                    acc = Some(match acc {
                        None => s,
                        Some(a) => ctx.b.max(a, s)?,
                    });
                }
            }
            QVal {
                id: acc.expect("non-empty window"),
                shape: vec![nb, c, oh, ow],
                ..x
            }
        }
        FOp::BatchNorm { eps } => {
            let (mul, add) = bn_affine(n, *eps, &consts)?;
            if x.shape[1] != mul.len() {
                return Err(n.err(format!(
                    "input shape {:?} does not have {} channels on axis 1",
                    x.shape,
                    mul.len()
                )));
            }
            ctx.affine(x.clone(), name, Some(1), mul, add)?
        }
        _ => unreachable!("not a conv op"),
    };
    Ok(vec![Val::Enc(out)])
}
