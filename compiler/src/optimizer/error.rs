//! Error probabilities: `erfc`, its inverse, and the link between a noise variance, a message
//! precision and the probability that a bootstrap decodes wrongly.
//!
//! A bootstrap input with `p` message bits plus one padding bit decodes correctly when its
//! centred Gaussian noise stays below half a message step, `2^(64 - p - 2)` on the 64-bit torus
//! (`2^(-p-2)` torus-normalised). With standard deviation `sigma` that fails with probability
//! `erfc(2^(-p-2) / (sqrt(2) * sigma))`; conversely a target `p_error` allows
//! `sigma <= 2^(-p-2) / kappa` with `kappa = sqrt(2) * erfcinv(p_error)` (Bergerat et al., ePrint 2022/704).
//!
//! `erfc` is computed to about 1e-15 relative accuracy: a Taylor series for `|x| < 2` and a
//! continued fraction (Lentz) beyond, with a log form ([`ln_erfc`]) that never underflows so the
//! inverse works down to the smallest positive `f64`.

use std::f64::consts::PI;

/// `2 / sqrt(pi)`.
const TWO_OVER_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

/// `erf(x)` by its Maclaurin series; accurate for `|x| < 2` (the largest term is about 10, so at
/// most one digit is lost to cancellation).
fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x; // (-1)^n x^(2n+1) / n!
    let mut sum = x;
    let mut n = 0.0;
    loop {
        n += 1.0;
        term *= -x2 / n;
        let add = term / (2.0 * n + 1.0);
        sum += add;
        if add.abs() <= 1e-17 * sum.abs() {
            break;
        }
    }
    TWO_OVER_SQRT_PI * sum
}

/// `ln(sqrt(pi) * exp(x^2) * erfc(x))` for `x >= 2`, i.e. minus the log of the continued fraction
/// `x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))`, evaluated by the modified Lentz method.
fn ln_erfc_cf_factor(x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for j in 1..1000 {
        let a = j as f64 / 2.0;
        d = x + a * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = x + a / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    -f.ln()
}

/// The complementary error function `erfc(x) = 1 - erf(x)`, accurate to about 1e-15 relative
/// error over the whole real line (it underflows to 0 only past `x ~ 27.2`).
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 0.5 {
        1.0 - erf_series(x)
    } else if x < 2.0 {
        // 1 - erf loses relative accuracy as erfc shrinks; at x = 2 erfc ~ 4.7e-3 so the loss is
        // below 2 digits. The continued fraction converges too slowly below 2.
        1.0 - erf_series(x)
    } else {
        (ln_erfc_cf_factor(x) - x * x).exp() / PI.sqrt()
    }
}

/// `ln(erfc(x))`, finite for every finite `x` (no underflow for large `x`).
pub fn ln_erfc(x: f64) -> f64 {
    if x < 2.0 {
        erfc(x).ln()
    } else {
        ln_erfc_cf_factor(x) - x * x - 0.5 * PI.ln()
    }
}

/// The inverse of [`erfc`]: the `x` with `erfc(x) = y`, for `0 < y < 2`. Returns `NaN` outside
/// that open interval (`erfcinv(0)` would be `+inf`).
///
/// Newton's method on `ln erfc(x) - ln y` (or on `erfc` itself for `y > 0.5`), started from the
/// asymptotic inverse; converges to full precision in a handful of steps.
pub fn erfcinv(y: f64) -> f64 {
    if y.is_nan() || y <= 0.0 || y >= 2.0 {
        return f64::NAN;
    }
    if y > 1.0 {
        return -erfcinv(2.0 - y);
    }
    if y == 1.0 {
        return 0.0;
    }
    if y > 0.5 {
        // erfc(x) = y with x in (0, 0.477): Newton on erfc directly.
        let mut x = (1.0 - y) * PI.sqrt() / 2.0;
        for _ in 0..50 {
            let step = (erfc(x) - y) / (-TWO_OVER_SQRT_PI * (-x * x).exp());
            x -= step;
            if step.abs() <= 1e-16 * x.abs().max(1e-300) {
                break;
            }
        }
        return x;
    }
    // Asymptotic start: erfc(x) ~ exp(-x^2) / (x sqrt(pi)).
    let ly = y.ln();
    let mut x = (-ly).sqrt().max(0.5);
    for _ in 0..4 {
        x = (-ly - (x * PI.sqrt()).ln()).max(0.25).sqrt();
    }
    for _ in 0..100 {
        let g = ln_erfc(x) - ly;
        // d/dx ln erfc(x) = -2/sqrt(pi) exp(-x^2) / erfc(x) = -2/sqrt(pi) exp(-x^2 - ln erfc x)
        let dg = -TWO_OVER_SQRT_PI * (-x * x - ln_erfc(x)).exp();
        let step = g / dg;
        x -= step;
        if step.abs() <= 1e-15 * x.abs() {
            break;
        }
    }
    x
}

/// `kappa = sqrt(2) * erfcinv(p_error)`: how many standard deviations of noise a decoding may
/// tolerate so that it fails with probability `p_error` (two-sided Gaussian tail).
pub fn kappa(p_error: f64) -> f64 {
    std::f64::consts::SQRT_2 * erfcinv(p_error)
}

/// The largest torus-normalised noise variance a bootstrap input of `precision` message bits (one
/// padding bit on top) may carry so that it decodes wrongly with probability at most `p_error`:
/// `V_safe = (2^(-precision - 2) / kappa)^2`.
pub fn safe_variance(precision: u8, p_error: f64) -> f64 {
    let half_step = (-(precision as f64) - 2.0).exp2();
    let s = half_step / kappa(p_error);
    s * s
}

/// Probability that a bootstrap whose input has `precision` message bits and torus-normalised
/// noise `variance` decodes wrongly: `erfc(2^(-precision - 2) / sqrt(2 * variance))`.
pub fn p_error_of_variance(precision: u8, variance: f64) -> f64 {
    if variance <= 0.0 {
        return 0.0;
    }
    let half_step = (-(precision as f64) - 2.0).exp2();
    erfc(half_step / (2.0 * variance).sqrt())
}

/// Circuit error of `tlus` independent bootstraps each failing with `p_error`:
/// `1 - (1 - p_error)^tlus`, computed without cancellation.
pub fn global_p_error(p_error: f64, tlus: u64) -> f64 {
    -(tlus as f64 * (-p_error).ln_1p()).exp_m1()
}

/// The per-bootstrap error that gives `global` over `tlus` bootstraps (inverse of
/// [`global_p_error`]); `tlus = 0` imposes nothing and returns `global` itself.
pub fn p_error_from_global(global: f64, tlus: u64) -> f64 {
    if tlus == 0 {
        return global;
    }
    -((-global).ln_1p() / tlus as f64).exp_m1()
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // reference values printed by mpmath at 17 digits
mod tests {
    use super::*;

    fn check_rel(got: f64, want: f64, tol: f64, what: &str) {
        let rel = if want == 0.0 {
            got.abs()
        } else {
            ((got - want) / want).abs()
        };
        assert!(
            rel <= tol,
            "{what}: got {got:e}, want {want:e} (rel err {rel:e})"
        );
    }

    /// Reference values from mpmath at 30 digits.
    #[test]
    fn erfc_known_values() {
        let table = [
            (0.0, 1.0),
            (0.1, 0.887_537_083_981_715_1),
            (0.5, 0.479_500_122_186_953_46),
            (1.0, 0.157_299_207_050_285_13),
            (1.5, 0.033_894_853_524_689_273),
            (2.0, 0.004_677_734_981_047_265_8),
            (2.5, 0.000_406_952_017_444_958_94),
            (3.0, 2.209_049_699_858_544_1e-5),
            (4.0, 1.541_725_790_028_002e-8),
            (5.0, 1.537_459_794_428_034_9e-12),
            (7.0, 4.183_825_607_779_414_4e-23),
            (10.0, 2.088_487_583_762_544_8e-45),
            (20.0, 5.395_865_611_607_901e-176),
        ];
        for (x, want) in table {
            check_rel(erfc(x), want, 5e-14, &format!("erfc({x})"));
            check_rel(erfc(-x), 2.0 - want, 1e-15, &format!("erfc(-{x})"));
        }
        // ln erfc stays finite where erfc underflows (erfc(27) ~ 5.2e-319 is subnormal).
        check_rel(ln_erfc(27.0), -732.868_886_507_897_4, 1e-14, "ln_erfc(27)");
        check_rel(
            ln_erfc(40.0),
            -1_604.261_556_653_273_6,
            1e-14,
            "ln_erfc(40)",
        );
    }

    #[test]
    fn erfcinv_known_values() {
        let table = [
            (1.9, -1.163_087_153_676_673_8),
            (1.5, -0.476_936_276_204_469_87),
            (1.0, 0.0),
            (0.5, 0.476_936_276_204_469_87),
            (1e-2, 1.821_386_367_718_449_7),
            ((-13.9f64).exp2(), 2.823_032_761_235_709_4),
            (1e-5, 3.123_413_274_340_875),
            (1e-9, 4.320_005_384_913_445_3),
            ((-40f64).exp2(), 5.051_254_085_249_39),
            ((-64f64).exp2(), 6.473_770_310_421_292),
            ((-128f64).exp2(), 9.269_198_460_014_406),
            (1e-300, 26.209_469_960_516_124),
        ];
        for (y, want) in table {
            check_rel(erfcinv(y), want, 1e-13, &format!("erfcinv({y:e})"));
        }
        assert!(erfcinv(0.0).is_nan() && erfcinv(2.0).is_nan() && erfcinv(-1.0).is_nan());
    }

    #[test]
    fn round_trips() {
        for i in 1..200 {
            let x = i as f64 * 0.1 - 3.0;
            check_rel(
                erfc(erfcinv(erfc(x))),
                erfc(x),
                1e-13,
                &format!("round trip at {x}"),
            );
        }
    }

    #[test]
    fn variance_and_error_are_inverse() {
        for p in 1..=8u8 {
            for pe in [1e-2, 6.5e-5, 1e-9, 2f64.powi(-40)] {
                let v = safe_variance(p, pe);
                check_rel(
                    p_error_of_variance(p, v),
                    pe,
                    1e-12,
                    "p_error(V_safe(p_error))",
                );
            }
        }
        // kappa for 2^-13.9 is sqrt(2) * 2.8230 = 3.9924.
        check_rel(
            kappa((-13.9f64).exp2()),
            3.992_371_217_963_108,
            1e-12,
            "kappa",
        );
        assert_eq!(p_error_of_variance(3, 0.0), 0.0);
    }

    #[test]
    fn global_error() {
        check_rel(global_p_error(1e-3, 1), 1e-3, 1e-14, "one tlu");
        check_rel(
            global_p_error(1e-3, 2),
            1.0 - 0.999f64 * 0.999,
            1e-12,
            "two tlus",
        );
        // Tiny errors do not vanish in 1 - (1 - p)^n.
        check_rel(global_p_error(1e-20, 1000), 1e-17, 1e-9, "tiny");
        check_rel(
            p_error_from_global(global_p_error(1e-7, 500), 500),
            1e-7,
            1e-9,
            "inverse",
        );
        assert_eq!(p_error_from_global(0.1, 0), 0.1);
    }
}
