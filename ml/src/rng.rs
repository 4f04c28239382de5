//! A Mersenne Twister (MT19937) with numpy's legacy `RandomState` conventions, so that splits
//! and bootstrap samples are reproducible *and* equal to what numpy / scikit-learn produce for
//! the same integer seed (`RandomState(seed).permutation(n)`).

/// MT19937 seeded like `numpy.random.RandomState(seed)` (`init_genrand(seed)`).
#[derive(Clone, Debug)]
pub struct Mt19937 {
    state: [u32; 624],
    pos: usize,
}

impl Mt19937 {
    /// A generator seeded with `seed` (numpy's `RandomState(seed)` for a 32-bit seed).
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            state[i] = 1_812_433_253u32
                .wrapping_mul(state[i - 1] ^ (state[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, pos: 624 }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mut v = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            self.state[i] = v;
        }
        self.pos = 0;
    }

    /// Next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= 624 {
            self.twist();
        }
        let mut y = self.state[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A double in `[0, 1)` with 53 random bits (numpy's `random_sample`).
    pub fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// A uniform integer in `0..=max` by masked rejection (numpy's legacy `random_interval`).
    pub fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for s in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> s;
        }
        loop {
            let v = if max <= 0xffff_ffff {
                (self.next_u32() as u64) & mask
            } else {
                (((self.next_u32() as u64) << 32) | self.next_u32() as u64) & mask
            };
            if v <= max {
                return v;
            }
        }
    }

    /// A random permutation of `0..n` (numpy's legacy `permutation(n)`: Fisher-Yates from the
    /// end).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u64) as usize;
            p.swap(i, j);
        }
        p
    }

    /// `n` integers uniform in `0..high` (numpy's legacy `randint(0, high, n)` for
    /// `high <= 2^32`), e.g. bootstrap sample indices.
    pub fn integers(&mut self, high: usize, n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| self.interval(high.saturating_sub(1) as u64) as usize)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_random_state() {
        // numpy.random.RandomState(0).random_sample(2)
        let mut r = Mt19937::new(0);
        assert_eq!(r.next_f64(), 0.548_813_503_927_324_8);
        assert_eq!(r.next_f64(), 0.715_189_366_372_419_5);
        // The reference MT19937 output for init_genrand(5489).
        let mut r = Mt19937::new(5489);
        assert_eq!(r.next_u32(), 3_499_211_612);
        // numpy.random.RandomState(0).permutation(10)
        assert_eq!(
            Mt19937::new(0).permutation(10),
            vec![2, 8, 4, 9, 1, 6, 7, 3, 0, 5]
        );
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = Mt19937::new(7).permutation(100);
        p.sort();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
        assert!(Mt19937::new(1).integers(10, 1000).iter().all(|&i| i < 10));
    }
}
