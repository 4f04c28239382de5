//! Cost model of Concrete's optimizer (arbitrary units; concrete-optimizer's complexity model).
//!
//! `FFT(N) = N log2 N + N`, `CMUX = (k+1) l FFT(N) + (k+1) IFFT(N) + (k+1)^2 l N`,
//! `PBS = n * CMUX`, `KS = 2 n_in l (n_out + 1)`, levelled = `size * dimension`.
//! Concrete reports these divided by `2^20`.

/// Cost of one FFT (or inverse FFT) of size `N`: `N log2 N + N`.
pub fn fft_cost(polynomial_size: usize) -> f64 {
    let n = polynomial_size as f64;
    n * n.log2() + n
}

/// Cost of one CMUX (external product) on GLWE `(k, N)` with `level` decomposition levels:
/// `(k+1) l FFT(N) + (k+1) IFFT(N) + (k+1)^2 l N`.
pub fn cmux_cost(glwe_dimension: usize, polynomial_size: usize, level: usize) -> f64 {
    let k1 = glwe_dimension as f64 + 1.0;
    let l = level as f64;
    let f = fft_cost(polynomial_size);
    k1 * l * f + k1 * f + k1 * k1 * l * polynomial_size as f64
}

/// Cost of one PBS over an LWE of dimension `n`: `n` CMUXes.
pub fn pbs_cost(n: usize, glwe_dimension: usize, polynomial_size: usize, level: usize) -> f64 {
    n as f64 * cmux_cost(glwe_dimension, polynomial_size, level)
}

/// Cost of one keyswitch from dimension `n_in` to `n_out` with `level` levels:
/// `2 n_in l (n_out + 1)`.
pub fn ks_cost(n_in: usize, n_out: usize, level: usize) -> f64 {
    2.0 * n_in as f64 * level as f64 * (n_out as f64 + 1.0)
}

/// Cost of levelled operations touching `size` ciphertexts of LWE dimension `dimension`
/// (additions, clear multiplications, dot-product terms): `size * dimension`.
pub fn levelled_cost(size: u64, dimension: usize) -> f64 {
    size as f64 * dimension as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_values() {
        assert_eq!(fft_cost(1024), 1024.0 * 10.0 + 1024.0);
        // k = 2, N = 1024, l = 1: 3*11264 + 3*11264 + 9*1024.
        assert_eq!(cmux_cost(2, 1024, 1), 76_800.0);
        assert_eq!(pbs_cost(801, 2, 1024, 1), 801.0 * 76_800.0);
        assert_eq!(ks_cost(2048, 801, 3), 2.0 * 2048.0 * 3.0 * 802.0);
        assert_eq!(levelled_cost(10, 2048), 20_480.0);
    }
}
