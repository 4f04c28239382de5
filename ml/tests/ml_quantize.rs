//! Quantization: quantizers against their definition, and the quantized Gemm with its fused
//! activation table run by the interpreter against a float reference.

use veil_ir::builder::Builder;
use veil_ir::{Op, Tensor};
use veil_ml::quantize::emit_activation;
use veil_ml::rng::Mt19937;
use veil_ml::{Granularity, QuantOptions, QuantizedGemm, Rounding, UniformQuantizer};

fn uniform(rng: &mut Mt19937, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| lo + (hi - lo) * rng.next_f64()).collect()
}

/// Quantizes and dequantizes `values`; checks the integer range and that in-range values come
/// back within half a step.
fn check_roundtrip(values: &[f64], channels: usize, opts: QuantOptions) -> UniformQuantizer {
    let q = UniformQuantizer::calibrate(values, channels, opts).unwrap();
    let (lo, hi) = q.qrange();
    let int = q.int_type();
    for (i, &v) in values.iter().enumerate() {
        let c = i % channels;
        let x = q.quantize(v, c);
        assert!(
            lo <= x && x <= hi && int.contains(x as i128),
            "{x} outside [{lo}, {hi}]"
        );
        let back = q.dequantize(x, c);
        let step = q.scale[c % q.channels()];
        assert!(
            (back - v).abs() <= step / 2.0 + 1e-9,
            "{v} -> {x} -> {back} (step {step})"
        );
    }
    q
}

#[test]
fn quantizers_follow_their_definition() {
    let mut rng = Mt19937::new(1);
    let v = uniform(&mut rng, 300, -3.0, 7.0);
    let q = check_roundtrip(&v, 1, QuantOptions::unsigned(8, Granularity::PerTensor));
    assert_eq!(q.qrange(), (0, 255));
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(q.quantize(lo, 0), 0);
    let q = check_roundtrip(
        &v,
        1,
        QuantOptions {
            n_bits: 5,
            signed: true,
            symmetric: false,
            granularity: Granularity::PerTensor,
        },
    );
    assert_eq!(q.qrange(), (-16, 15));
    let q = check_roundtrip(&v, 1, QuantOptions::symmetric(4, Granularity::PerTensor));
    assert_eq!((q.qrange(), q.zero_point[0]), ((-7, 7), 0));
    // Per channel: 3 channels of very different ranges get their own scales.
    let v: Vec<f64> = (0..300)
        .map(|i| [1e-3, 1.0, 1e3][i % 3] * rng.next_f64())
        .collect();
    let q = check_roundtrip(&v, 3, QuantOptions::unsigned(6, Granularity::PerChannel));
    assert_eq!(q.channels(), 3);
    assert!(q.scale[2] / q.scale[0] > 1e5);
    // Out-of-range values clip; a constant channel still round-trips.
    assert_eq!(q.quantize(1e9, 2), 63);
    check_roundtrip(
        &[2.5; 4],
        1,
        QuantOptions::unsigned(3, Granularity::PerTensor),
    );
    // Serializable for the client.
    let json = serde_json::to_string(&q).unwrap();
    assert_eq!(serde_json::from_str::<UniformQuantizer>(&json).unwrap(), q);
}

#[test]
fn bad_quantizer_options_are_rejected() {
    let e = |opts, v: &[f64]| {
        UniformQuantizer::calibrate(v, 1, opts)
            .unwrap_err()
            .to_string()
    };
    assert!(e(QuantOptions::unsigned(0, Granularity::PerTensor), &[1.0]).contains("n_bits = 0"));
    let unsigned_symmetric = QuantOptions {
        n_bits: 4,
        signed: false,
        symmetric: true,
        granularity: Granularity::PerTensor,
    };
    assert!(e(unsigned_symmetric, &[1.0]).contains("must be signed"));
    assert!(e(
        QuantOptions::unsigned(4, Granularity::PerTensor),
        &[f64::NAN]
    )
    .contains("not finite"));
    assert!(e(QuantOptions::unsigned(4, Granularity::PerTensor), &[]).contains("non-empty"));
}

/// A float layer `act(x @ w + b)` against its quantized program (Gemm, optional rounding, one
/// fused table) run by the interpreter: every output is within the analytic error bound.
/// Returns the worst error as a fraction of its bound, and the graph.
fn check_layer(
    bits: u8,
    per_channel: bool,
    rounding: Option<Rounding>,
    act: &dyn Fn(f64) -> f64,
) -> (f64, veil_ir::Graph) {
    let (n, k, o) = (16, 8, 3);
    let mut rng = Mt19937::new(7);
    let x = uniform(&mut rng, n * k, -1.0, 2.0);
    let w = uniform(&mut rng, k * o, -1.0, 1.0);
    let bias = uniform(&mut rng, o, -0.5, 0.5);
    let float: Vec<f64> = (0..n * o)
        .map(|e| {
            let (i, j) = (e / o, e % o);
            act(bias[j] + (0..k).map(|kk| x[i * k + kk] * w[kk * o + j]).sum::<f64>())
        })
        .collect();
    let xq_quant =
        UniformQuantizer::calibrate(&x, k, QuantOptions::unsigned(bits, Granularity::PerChannel))
            .unwrap();
    let wg = if per_channel {
        Granularity::PerChannel
    } else {
        Granularity::PerTensor
    };
    let gemm = QuantizedGemm::new(&xq_quant, &w, k, o, Some(&bias), bits, wg).unwrap();
    let out_q =
        UniformQuantizer::calibrate(&float, o, QuantOptions::unsigned(7, Granularity::PerTensor))
            .unwrap();
    let b = Builder::new();
    let xin = b
        .input_encrypted("x", &[n, k], xq_quant.int_type())
        .unwrap();
    let acc = gemm.emit(&b, xin).unwrap();
    let y = emit_activation(&b, acc, &gemm.scales, act, &out_q, rounding).unwrap();
    b.output("y", y).unwrap();
    b.output("acc", acc).unwrap();
    let g = b.finish().unwrap();
    let xq = xq_quant.quantize_all(&x, k);
    let xq_in = xq.clone();
    // The emitted accumulator equals the direct integer computation.
    let acc_direct: Vec<i128> = (0..n)
        .flat_map(|i| gemm.accumulate(&xq[i * k..(i + 1) * k]))
        .collect();
    let got = veil_ir::interp::run(&g, &[Tensor::new(vec![n, k], xq_in).unwrap()]).unwrap();
    let lsbs = g
        .values()
        .into_iter()
        .find_map(|v| match g.op(v) {
            Op::Round { lsbs, .. } => Some(*lsbs),
            _ => None,
        })
        .unwrap_or(0);
    // Error bound: input rounding through the weights, weight rounding through the inputs,
    // bias rounding, accumulator rounding (all through a 1-Lipschitz activation), then half
    // an output step.
    let mut worst: f64 = 0.0;
    for (e, &q) in got[0].data.iter().enumerate() {
        let (i, j) = (e / o, e % o);
        let sw = gemm.scales[j];
        let bound = (0..k)
            .map(|kk| {
                let xc = (xq[i * k + kk] - xq_quant.zero_point[kk]) as f64;
                w[kk * o + j].abs() * xq_quant.scale[kk] / 2.0 + sw / 2.0 * xc.abs()
            })
            .sum::<f64>()
            + sw / 2.0
            + if lsbs > 0 {
                sw * (1u64 << (lsbs - 1)) as f64
            } else {
                0.0
            }
            + out_q.scale[0] / 2.0
            + 1e-9;
        let err = (out_q.dequantize(q, 0) - float[e]).abs();
        assert!(
            err <= bound,
            "element {e}: error {err} above the bound {bound}"
        );
        worst = worst.max(err / bound);
    }
    let acc_got: Vec<i128> = got[1].data.iter().map(|&v| v as i128).collect();
    assert_eq!(
        acc_got, acc_direct,
        "emitted accumulator differs from the direct computation"
    );
    (worst, g)
}

#[test]
fn quantized_layer_matches_float() {
    let relu = |v: f64| v.max(0.0);
    let (e1, g) = check_layer(6, true, None, &relu);
    assert_eq!(
        g.values()
            .iter()
            .filter(|v| matches!(g.op(**v), Op::TluMulti { .. }))
            .count(),
        1
    );
    let (e2, _) = check_layer(6, false, None, &|v: f64| 1.0 / (1.0 + (-v).exp()));
    eprintln!("relu per-channel: {e1:.3} of bound, sigmoid per-tensor: {e2:.3} of bound");
}

#[test]
fn rounding_drops_accumulator_bits() {
    let relu = |v: f64| v.max(0.0);
    let (e, g) = check_layer(6, true, Some(Rounding { keep_bits: 8 }), &relu);
    let rounds: Vec<_> = g
        .values()
        .into_iter()
        .filter_map(|v| match g.op(v) {
            Op::Round { lsbs, .. } => Some(*lsbs),
            _ => None,
        })
        .collect();
    assert_eq!(rounds.len(), 1, "one round op before the table");
    assert!(rounds[0] >= 1);
    eprintln!("rounded to 8 bits (lsbs {}): {e:.3} of bound", rounds[0]);
    assert_eq!(Rounding { keep_bits: 6 }.lsbs(14), 8);
    assert_eq!(Rounding { keep_bits: 16 }.lsbs(14), 0);
}

#[test]
fn gemm_folds_zero_points_and_bias() {
    // y = 2*x0 - x1 + 0.5 with x quantized per feature: the accumulator dequantizes to y.
    let xs: Vec<f64> = vec![0.0, -1.0, 1.0, 3.0, 0.5, 1.0];
    let inq =
        UniformQuantizer::calibrate(&xs, 2, QuantOptions::unsigned(8, Granularity::PerChannel))
            .unwrap();
    let g = QuantizedGemm::new(
        &inq,
        &[2.0, -1.0],
        2,
        1,
        Some(&[0.5]),
        8,
        Granularity::PerTensor,
    )
    .unwrap();
    for row in xs.chunks(2) {
        let xq = inq.quantize_all(row, 2);
        let y = g.scales[0] * g.accumulate(&xq)[0] as f64;
        let want = 2.0 * row[0] - row[1] + 0.5;
        assert!((y - want).abs() < 0.03, "{y} vs {want}");
    }
    let e = QuantizedGemm::new(&inq, &[1.0; 3], 2, 1, None, 8, Granularity::PerTensor).unwrap_err();
    assert!(e.to_string().contains("[k=2, o=1]"), "{e}");
}
