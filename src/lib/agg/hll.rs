//! HyperLogLog (Flajolet et al., 2007) for counting distinct values once a set outgrows exact
//! storage.
//!
//! Each of the `m = 2^p` registers keeps the largest rank (position of the first 1 bit) seen
//! among the hashes routed to it; ranks are at most `65 - p`, so 6 bits of each byte are used.
//!
//! # Estimator
//!
//! The classic raw estimate `alpha_m m^2 / sum 2^-M[j]` is biased upwards below about `5m`
//! distinct values (+31% at `n = m`, +2.5% at `n = 2.5m`, measured at p = 14). HLL++ (Heule,
//! Nunkesser and Hall, EDBT 2013) switches to linear counting below an empirical threshold,
//! but its thresholds (`0.7m` at p = 14) assume its bias-correction tables take over above
//! them: without the tables, the raw estimate just past the threshold is off by +47%, and the
//! original paper's switch at `2.5m` still leaves +2.5% (3 standard errors at p = 14).
//!
//! Instead this uses Ertl's improved raw estimator ("New cardinality estimation algorithms for
//! HyperLogLog sketches", 2017, algorithm 6). It works on the histogram of register values,
//! folds linear counting in through the count of empty registers, and is unbiased to within a
//! fraction of a standard error across the whole range, with no tables and no thresholds; for
//! small sets it agrees with linear counting. Hashes are 64-bit, so no large-range correction
//! is needed beyond the (never reached in practice) term for saturated registers.

/// Distinct-value counter with a standard error of `1.04 / sqrt(2^precision)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hll {
    precision: u8,
    registers: Box<[u8]>,
}

impl Hll {
    /// Standard error 1.04 / sqrt(2^14) ≈ 0.81%, for 16 KiB of registers.
    pub const DEFAULT_PRECISION: u8 = 14;
    pub const MIN_PRECISION: u8 = 4;
    pub const MAX_PRECISION: u8 = 16;

    /// An empty counter with `2^precision` registers; `precision` is clamped to 4..=16.
    pub fn new(precision: u8) -> Hll {
        let precision = precision.clamp(Self::MIN_PRECISION, Self::MAX_PRECISION);
        Hll {
            precision,
            registers: vec![0; 1 << precision].into_boxed_slice(),
        }
    }

    pub fn precision(&self) -> u8 {
        self.precision
    }

    /// Adds a value by its 64-bit hash.
    ///
    /// The hash goes through splitmix64's finaliser first: HLL reads the top bits as a register
    /// index and the rest as a geometric rank, so it needs every bit well mixed, which hashes
    /// tuned for hash tables (or identity hashes of integers) do not promise. The finaliser is a
    /// bijection, so distinct hashes stay distinct.
    pub fn insert_hash(&mut self, h: u64) {
        let x = mix(h);
        let p = u32::from(self.precision);
        let index = (x >> (64 - p)) as usize;
        // The low `p` bits of `rest` are zero, so cap the count to the `64 - p` real bits.
        let rest = x << p;
        let rank = (rest.leading_zeros().min(64 - p) + 1) as u8;
        if let Some(r) = self.registers.get_mut(index) {
            *r = (*r).max(rank);
        }
    }

    /// Adds every value of `other`. Fails, changing nothing, if the precisions differ.
    pub fn merge(&mut self, other: &Hll) -> Result<(), &'static str> {
        if self.precision != other.precision {
            return Err("cannot merge HyperLogLogs with different precision");
        }
        for (r, &o) in self.registers.iter_mut().zip(other.registers.iter()) {
            *r = (*r).max(o);
        }
        Ok(())
    }

    /// Estimated number of distinct values: exactly 0 when empty.
    ///
    /// Ertl's improved raw estimator (see the module documentation), from the histogram of
    /// register values.
    pub fn estimate(&self) -> f64 {
        let m = self.registers.len() as f64;
        let q = 64 - usize::from(self.precision);
        // Ranks are at most `q + 1 <= 61`.
        let mut hist = [0u32; 64];
        for &r in self.registers.iter() {
            if let Some(c) = hist.get_mut(usize::from(r)) {
                *c += 1;
            }
        }
        let mut z = m * tau(1.0 - f64::from(hist[q + 1]) / m);
        for &c in hist[1..=q].iter().rev() {
            z = 0.5 * (z + f64::from(c));
        }
        z += m * sigma(f64::from(hist[0]) / m);
        // An empty sketch gives `z = inf` and so exactly 0.
        m * m / (2.0 * std::f64::consts::LN_2 * z)
    }

    /// Standard error of [`Hll::estimate`] relative to the true count: `1.04 / sqrt(m)`.
    pub fn relative_error(&self) -> f64 {
        1.04 / (self.registers.len() as f64).sqrt()
    }

    /// Bytes allocated on the heap, beyond `size_of::<Hll>()`.
    pub fn heap_bytes(&self) -> usize {
        self.registers.len()
    }
}

/// Ertl's `sigma(x) = x + sum_{k>=1} 2^(k-1) x^(2^k)`: the term for registers still at 0,
/// which carries the linear-counting information. Summed until it stops changing, which takes
/// about ten rounds since `x^(2^k)` falls doubly exponentially.
fn sigma(x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut x, mut y, mut z) = (x, 1.0, x);
    // The bound only guards against a float surprise; convergence takes far fewer rounds.
    for _ in 0..200 {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if z == prev {
            break;
        }
    }
    z
}

/// Ertl's `tau(x)`: the term for registers at the maximum rank `65 - p`, whose hashes ran out
/// of bits. It stays 0 until the count nears `2^(64 - p)`. Summed until it stops changing,
/// which takes about 60 rounds as `1 - x^(2^-k)` halves each round.
fn tau(x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut x, mut y, mut z) = (x, 1.0, 1.0 - x);
    for _ in 0..200 {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == prev {
            break;
        }
    }
    z / 3.0
}

/// splitmix64's output step, with `h` as the state: the added constant keeps hash 0 from being
/// a fixed point (it would land in register 0 with the largest rank).
fn mix(h: u64) -> u64 {
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The callers' side: splitmix64 of the integer.
    fn hash(i: u64) -> u64 {
        mix(i)
    }

    fn hll_of(range: std::ops::Range<u64>, p: u8) -> Hll {
        let mut h = Hll::new(p);
        for i in range {
            h.insert_hash(hash(i));
        }
        h
    }

    #[test]
    fn estimates_within_three_standard_errors() {
        let p = Hll::DEFAULT_PRECISION;
        let mut h = Hll::new(p);
        assert_eq!(h.estimate(), 0.0);
        let se = h.relative_error();
        assert!((se - 0.008125).abs() < 1e-6);
        let mut worst: f64 = 0.0;
        let mut inserted = 0u64;
        for n in [1u64, 10, 1000, 100_000, 1_000_000] {
            for i in inserted..n {
                h.insert_hash(hash(i));
            }
            inserted = n;
            let est = h.estimate();
            let err = (est - n as f64) / n as f64;
            if n <= 10 {
                assert!((est - n as f64).abs() <= 1.0, "n={n} est={est}");
            } else {
                assert!(err.abs() <= 3.0 * se, "n={n} est={est}");
                worst = worst.max(err.abs());
            }
        }
    }

    #[test]
    fn other_precisions() {
        for p in [4u8, 8, 12, 16] {
            let se = Hll::new(p).relative_error();
            for n in [50_000u64, 300_000] {
                let est = hll_of(0..n, p).estimate();
                let err = (est - n as f64) / n as f64;
                assert!(err.abs() <= 3.0 * se, "p={p} n={n} est={est}");
            }
        }
        assert_eq!(Hll::new(0).precision(), 4);
        assert_eq!(Hll::new(200).precision(), 16);
    }

    #[test]
    fn weak_hashes_are_fine() {
        let mut h = Hll::new(Hll::DEFAULT_PRECISION);
        for i in 0..100_000u64 {
            // Identity hashes of small integers have all-zero top bits.
            h.insert_hash(i);
        }
        let err = (h.estimate() - 100_000.0) / 100_000.0;
        assert!(err.abs() <= 3.0 * h.relative_error(), "{err}");
    }

    #[test]
    fn duplicates_do_not_count() {
        let once = hll_of(0..5000, 12);
        let mut twice = once.clone();
        for i in (0..5000).rev() {
            twice.insert_hash(hash(i));
        }
        assert_eq!(twice, once);
        assert_eq!(twice.estimate(), once.estimate());
    }

    #[test]
    fn merge_of_halves() {
        let all = hll_of(0..200_000, 14);
        let a = hll_of(0..90_000, 14);
        let b = hll_of(90_000..200_000, 14);
        let mut ab = a.clone();
        ab.merge(&b).expect("same precision");
        let mut ba = b.clone();
        ba.merge(&a).expect("same precision");
        assert_eq!(ab, all);
        assert_eq!(ba, all);
        let mut c = a.clone();
        assert!(c.merge(&Hll::new(12)).is_err());
        assert_eq!(c, a);
    }

    #[test]
    fn memory() {
        assert_eq!(Hll::new(14).heap_bytes(), 16_384);
        assert_eq!(Hll::new(4).heap_bytes(), 16);
        assert!(hll_of(0..100_000, 16).registers.iter().all(|&r| r < 64));
    }

    proptest! {
        // No regression files: a failing case is printed, and these modules own no other files.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn prop_merge_commutes_and_matches_union(
            a in prop::collection::vec(any::<u64>(), 0..500),
            b in prop::collection::vec(any::<u64>(), 0..500),
        ) {
            let build = |xs: &[u64]| {
                let mut h = Hll::new(8);
                for &x in xs {
                    h.insert_hash(x);
                }
                h
            };
            let (ha, hb) = (build(&a), build(&b));
            let mut ab = ha.clone();
            ab.merge(&hb).expect("same precision");
            let mut ba = hb.clone();
            ba.merge(&ha).expect("same precision");
            prop_assert_eq!(&ab, &ba);
            prop_assert_eq!(&ab, &build(&[a.as_slice(), b.as_slice()].concat()));
        }

        #[test]
        fn prop_duplicates_do_not_count(xs in prop::collection::vec(any::<u64>(), 1..300)) {
            let mut h = Hll::new(10);
            for &x in &xs {
                h.insert_hash(x);
            }
            let before = h.clone();
            for &x in xs.iter().rev() {
                h.insert_hash(x);
            }
            prop_assert_eq!(h, before);
        }
    }
}
