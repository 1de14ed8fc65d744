//! A mergeable quantile sketch with relative-error guarantees, after DDSketch (Masson, Rim and
//! Lee, VLDB 2019).
//!
//! Values are mapped to logarithmic bins: with `gamma = (1 + alpha) / (1 - alpha)`, a value `v > 0`
//! falls in bin `i = ceil(ln(v) / ln(gamma))`, which covers `(gamma^(i-1), gamma^i]` and is reported
//! as `2 * gamma^i / (gamma + 1)`; every value of the bin is within a relative error `alpha` of
//! that. Negative values are binned by magnitude in a store of their own, and values whose
//! magnitude is below [`f64::MIN_POSITIVE`] count as zero. `±Inf` are counted apart so that one of
//! them cannot stretch a store across the whole `f64` range.
//!
//! # Guarantee
//!
//! For any `q` in `[0, 1]`, [`QuantileSketch::quantile`] returns a value within a relative error
//! `alpha` of the exact value at rank `⌊q·(n−1)⌋` or `⌈q·(n−1)⌉` of the weighted sample (`n` being
//! the total weight), as long as no collapsing happened; `q = 0` and `q = 1` give the exact minimum
//! and maximum. Add a few ulps of floating-point rounding at bin boundaries.
//!
//! # Collapsing
//!
//! Each store holds at most [`MAX_BINS`] bins: the 2048 bins ending at its largest value, a span
//! of a factor `gamma^2048` (about `6e17` at the default `alpha` of 1%, but only `3.6e3` at 0.2%
//! and `60` at 0.1%). As in DDSketch's collapsing-lowest store, smaller values are folded into
//! the lowest kept bin and so over-reported, which only affects the quantiles whose exact value
//! lies below that bin: with data of one sign, the lowest quantiles. The negative store is keyed
//! so that its lowest bins hold the most negative values; with mixed signs, collapsing in the
//! positive store affects the positive values closest to zero. A single huge outlier can thus
//! fold the bulk of the data into one bin if it lies more than the span above it; the minimum
//! and maximum stay exact regardless.
//!
//! Merging is exact: merging sketches of two samples gives the same bins as sketching both, in
//! either order, collapsed or not (up to the rounding of summing non-integer weights).

/// Most bins one store keeps. This bounds a sketch to about 2 × 16 KiB of bins however wide
/// the data, while spanning, at the default `alpha`, more orders of magnitude than telemetry
/// values do.
pub const MAX_BINS: usize = 2048;

/// Quantiles within a relative error `alpha` of the exact value (rank-based).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileSketch {
    alpha: f64,
    ln_gamma: f64,
    /// Keys are bin indices of the values.
    pos: Store,
    /// Keys are negated bin indices of the magnitudes, so that keys and values share an order
    /// and one collapsing rule serves both stores.
    neg: Store,
    zero: f64,
    pos_inf: f64,
    neg_inf: f64,
    count: f64,
    /// `+Inf` while empty; [`QuantileSketch::min`] hides that.
    min: f64,
    /// `-Inf` while empty.
    max: f64,
}

impl QuantileSketch {
    pub const DEFAULT_ALPHA: f64 = 0.01;
    /// Smallest accepted `alpha`: it keeps bin keys of the whole `f64` range inside `i32`.
    pub const MIN_ALPHA: f64 = 1e-6;
    /// Largest accepted `alpha`.
    pub const MAX_ALPHA: f64 = 0.999;

    /// A sketch with relative accuracy `alpha`, which should lie in `(0, 1)`.
    ///
    /// `alpha` is clamped to [`Self::MIN_ALPHA`, `Self::MAX_ALPHA`]; NaN gives
    /// [`Self::DEFAULT_ALPHA`]. The sketch allocates nothing until values arrive.
    pub fn new(alpha: f64) -> QuantileSketch {
        let alpha = if alpha.is_nan() {
            Self::DEFAULT_ALPHA
        } else {
            alpha.clamp(Self::MIN_ALPHA, Self::MAX_ALPHA)
        };
        QuantileSketch {
            alpha,
            // ln((1 + a) / (1 - a)) without the cancellation of forming the ratio for tiny `a`.
            ln_gamma: 2.0 * alpha.atanh(),
            pos: Store::default(),
            neg: Store::default(),
            zero: 0.0,
            pos_inf: 0.0,
            neg_inf: 0.0,
            count: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Adds `v` with `weight` (1 / sample rate).
    ///
    /// NaN values and weights that are not finite and positive are ignored: neither has a rank.
    pub fn add(&mut self, v: f64, weight: f64) {
        if v.is_nan() || !(weight > 0.0 && weight.is_finite()) {
            return;
        }
        self.count += weight;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if v == f64::INFINITY {
            self.pos_inf += weight;
        } else if v == f64::NEG_INFINITY {
            self.neg_inf += weight;
        } else if v.abs() < f64::MIN_POSITIVE {
            self.zero += weight;
        } else if v > 0.0 {
            self.pos.add(self.key(v), weight);
        } else {
            self.neg.add(-self.key(-v), weight);
        }
    }

    /// Adds everything `other` holds. Fails, changing nothing, if the alphas differ: bins of
    /// different widths cannot be combined without losing the error bound.
    pub fn merge(&mut self, other: &QuantileSketch) -> Result<(), &'static str> {
        if self.alpha != other.alpha {
            return Err("cannot merge quantile sketches with different alpha");
        }
        if other.count == 0.0 {
            return Ok(());
        }
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zero += other.zero;
        self.pos_inf += other.pos_inf;
        self.neg_inf += other.neg_inf;
        self.pos.merge(&other.pos);
        self.neg.merge(&other.neg);
        Ok(())
    }

    /// Total weight added.
    pub fn count(&self) -> f64 {
        self.count
    }

    /// Smallest value added, exactly; NaN when empty.
    pub fn min(&self) -> f64 {
        if self.count > 0.0 {
            self.min
        } else {
            f64::NAN
        }
    }

    /// Largest value added, exactly; NaN when empty.
    pub fn max(&self) -> f64 {
        if self.count > 0.0 {
            self.max
        } else {
            f64::NAN
        }
    }

    /// The `q`-quantile, `q` in `[0, 1]`; `None` when empty or when `q` is outside `[0, 1]`.
    ///
    /// Ranks are weighted and 0-based: the answer is the value of the first bin, from the most
    /// negative up, whose cumulative weight exceeds `q·(count − 1)`, clamped to the exact
    /// extremes (which only moves it closer to the truth).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if !(self.count > 0.0 && (0.0..=1.0).contains(&q)) {
            return None;
        }
        if q == 0.0 {
            return Some(self.min);
        }
        if q == 1.0 {
            return Some(self.max);
        }
        let rank = (q * (self.count - 1.0)).max(0.0);
        let clamp = |v: f64| v.max(self.min).min(self.max);
        let mut cum = self.neg_inf;
        if cum > rank {
            return Some(f64::NEG_INFINITY);
        }
        for (j, &w) in self.neg.bins.iter().enumerate() {
            cum += w;
            if cum > rank {
                return Some(clamp(-self.bin_value(-self.neg.key_at(j))));
            }
        }
        cum += self.zero;
        if cum > rank {
            return Some(clamp(0.0));
        }
        for (j, &w) in self.pos.bins.iter().enumerate() {
            cum += w;
            if cum > rank {
                return Some(clamp(self.bin_value(self.pos.key_at(j))));
            }
        }
        // Only `+Inf` values are left, or rounding made the bins sum to slightly less than
        // `count`; either way the top is the answer.
        Some(self.max)
    }

    /// Bytes allocated on the heap, beyond `size_of::<QuantileSketch>()`.
    pub fn heap_bytes(&self) -> usize {
        (self.pos.bins.capacity() + self.neg.bins.capacity()) * size_of::<f64>()
    }

    /// Bin of a magnitude `m >= f64::MIN_POSITIVE`.
    fn key(&self, m: f64) -> i32 {
        // `MIN_ALPHA` keeps the quotient within about ±3.6e8 for all finite `m`.
        (m.ln() / self.ln_gamma).ceil() as i32
    }

    /// `2 * gamma^i / (gamma + 1)`, written as `(1 - alpha) * gamma^i`, which is the same.
    fn bin_value(&self, i: i32) -> f64 {
        (1.0 - self.alpha) * (f64::from(i) * self.ln_gamma).exp()
    }
}

/// Dense weights of consecutive keys.
#[derive(Clone, Debug, Default, PartialEq)]
struct Store {
    /// `bins[j]` is the weight of key `offset + j`. The range only ever grows to keys that
    /// received weight, so the end bins are never zero and two stores of the same data compare
    /// equal however the data arrived.
    bins: Vec<f64>,
    offset: i32,
}

impl Store {
    fn key_at(&self, j: usize) -> i32 {
        // `j < MAX_BINS`, so the cast is lossless.
        self.offset + j as i32
    }

    /// Highest key; meaningless while empty.
    fn hi(&self) -> i32 {
        self.offset + self.bins.len() as i32 - 1
    }

    fn add(&mut self, key: i32, w: f64) {
        if self.bins.is_empty() || key < self.offset || key > self.hi() {
            self.cover(key, key);
        }
        // After `cover`, a key below the range was collapsed into the lowest bin.
        let j = (key.max(self.offset) - self.offset) as usize;
        self.bins[j] += w;
    }

    fn merge(&mut self, other: &Store) {
        if other.bins.is_empty() {
            return;
        }
        self.cover(other.offset, other.hi());
        for (j, &w) in other.bins.iter().enumerate() {
            let key = other.key_at(j).max(self.offset);
            self.bins[(key - self.offset) as usize] += w;
        }
    }

    /// Extends the range to include `[lo, hi]`, keeping the highest `MAX_BINS` keys and
    /// folding the weight of any lower ones into the lowest kept bin.
    fn cover(&mut self, lo: i32, hi: i32) {
        let (lo, hi) = if self.bins.is_empty() {
            (lo, hi)
        } else {
            (lo.min(self.offset), hi.max(self.hi()))
        };
        // i64: the requested span may exceed i32 when the keys lie at both ends of the range.
        let lo = i64::from(lo).max(i64::from(hi) - MAX_BINS as i64 + 1) as i32;
        let len = (i64::from(hi) - i64::from(lo) + 1) as usize;
        if self.bins.is_empty() {
            self.reserve(len);
            self.bins.resize(len, 0.0);
        } else if lo > self.offset {
            let k = ((i64::from(lo) - i64::from(self.offset)) as usize).min(self.bins.len());
            let collapsed: f64 = self.bins.drain(..k).sum();
            self.reserve(len);
            self.bins.resize(len, 0.0);
            self.bins[0] += collapsed;
        } else {
            let old = self.bins.len();
            let front = (self.offset - lo) as usize;
            self.reserve(len);
            self.bins.resize(len, 0.0);
            self.bins.copy_within(..old, front);
            self.bins[..front].fill(0.0);
        }
        self.offset = lo;
    }

    /// Growth with 1/8 headroom rather than doubling: sketches live in per-series state, where
    /// slack costs more than the occasional copy of at most `MAX_BINS` weights.
    fn reserve(&mut self, len: usize) {
        if len > self.bins.capacity() {
            let target = (len + len / 8).min(MAX_BINS).max(len);
            self.bins.reserve_exact(target - self.bins.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const QS: [f64; 8] = [0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0];
    /// Slack for rounding at bin boundaries and in `exp`/`ln`, relative to the value.
    const EPS: f64 = 1e-9;

    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// Uniform in `(0, 1)`, never 0 so that `ln` is finite.
        fn unit(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u, v) = (self.unit(), self.unit());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    fn sketch_of(xs: &[f64], alpha: f64) -> QuantileSketch {
        let mut s = QuantileSketch::new(alpha);
        for &x in xs {
            s.add(x, 1.0);
        }
        s
    }

    /// Relative distance of `est` from the interval between the neighbours of rank
    /// `q·(n−1)` in the sorted `xs`: 0 inside it.
    fn rel_err(sorted: &[f64], q: f64, est: f64) -> f64 {
        let rank = q * (sorted.len() - 1) as f64;
        let lo = sorted[rank.floor() as usize];
        let hi = sorted[rank.ceil() as usize];
        if est < lo {
            (lo - est) / lo.abs()
        } else if est > hi {
            (est - hi) / hi.abs()
        } else {
            0.0
        }
    }

    /// Worst relative error over `QS`, failing if any exceeds `alpha`.
    fn check(xs: &[f64], alpha: f64) -> f64 {
        let s = sketch_of(xs, alpha);
        let mut sorted = xs.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut worst: f64 = 0.0;
        for q in QS {
            let est = s.quantile(q).expect("nonempty");
            let e = rel_err(&sorted, q, est);
            assert!(
                e <= alpha + EPS,
                "q={q} est={est} rel_err={e} n={}",
                xs.len()
            );
            worst = worst.max(e);
        }
        assert_eq!(s.quantile(0.0), Some(sorted[0]));
        assert_eq!(s.quantile(1.0), sorted.last().copied());
        worst
    }

    fn datasets() -> Vec<(&'static str, Vec<f64>)> {
        let mut r = Rng(42);
        let n = 20_000;
        vec![
            ("uniform", (0..n).map(|_| r.unit() * 1000.0).collect()),
            (
                "narrow uniform",
                (0..n).map(|_| r.unit() * 900.0 + 100.0).collect(),
            ),
            (
                "exponential",
                (0..n).map(|_| -r.unit().ln() * 50.0).collect(),
            ),
            (
                "lognormal",
                (0..n).map(|_| (2.0 * r.normal()).exp()).collect(),
            ),
            (
                "negative",
                (0..n).map(|_| -(1.5 * r.normal() + 3.0).exp()).collect(),
            ),
            (
                "mixed",
                (0..n)
                    .map(|_| match r.next_u64() % 10 {
                        0 => 0.0,
                        1..=4 => -r.unit() * 1e4,
                        _ => r.normal().exp() * 1e-3,
                    })
                    .collect(),
            ),
            (
                "duplicates",
                (0..n).map(|_| (r.next_u64() % 7) as f64 - 2.0).collect(),
            ),
            ("single", vec![std::f64::consts::PI]),
            ("one repeated", vec![-0.125; 1000]),
            (
                "wide",
                (0..n).map(|_| 10f64.powf(r.unit() * 9.0 - 3.0)).collect(),
            ),
            (
                "small counts",
                (0..n).map(|_| (r.next_u64() % 1000) as f64).collect(),
            ),
        ]
    }

    /// Whether each sign's magnitudes fit in `MAX_BINS` bins, so that nothing collapses.
    fn fits(xs: &[f64], alpha: f64) -> bool {
        let s = sketch_of(xs, alpha);
        let span = |pos: bool| {
            let mags = xs
                .iter()
                .filter(|&&x| x != 0.0 && (x > 0.0) == pos)
                .map(|x| x.abs());
            let (lo, hi) = mags.fold((f64::INFINITY, 0.0f64), |(l, h), m| (l.min(m), h.max(m)));
            if hi == 0.0 {
                0
            } else {
                (s.key(hi) - s.key(lo) + 1) as usize
            }
        };
        span(true) <= MAX_BINS && span(false) <= MAX_BINS
    }

    #[test]
    fn quantiles_within_alpha() {
        for alpha in [QuantileSketch::DEFAULT_ALPHA, 0.05, 0.002, 0.001] {
            for (name, xs) in datasets() {
                if !fits(&xs, alpha) {
                    continue;
                }
                let e = check(&xs, alpha);
                assert!(
                    e <= alpha + 1e-12,
                    "alpha={alpha} {name}: worst relative error {e}"
                );
            }
        }
    }

    #[test]
    fn weighted_ranks() {
        let mut r = Rng(7);
        let mut s = QuantileSketch::new(0.02);
        let mut expanded = Vec::new();
        for _ in 0..3000 {
            let v = r.normal().exp() * 100.0;
            let w = 1 + r.next_u64() % 10;
            s.add(v, w as f64);
            expanded.extend(std::iter::repeat_n(v, w as usize));
        }
        expanded.sort_by(f64::total_cmp);
        assert_eq!(s.count(), expanded.len() as f64);
        for q in QS {
            let est = s.quantile(q).expect("nonempty");
            assert!(rel_err(&expanded, q, est) <= 0.02 + EPS, "q={q}");
        }
    }

    #[test]
    fn weight_four_equals_four_adds() {
        let mut a = QuantileSketch::new(0.01);
        let mut b = QuantileSketch::new(0.01);
        for v in [3.5, -2.0, 0.0, 1e9] {
            a.add(v, 4.0);
            for _ in 0..4 {
                b.add(v, 1.0);
            }
        }
        assert_eq!(a, b);
    }

    #[test]
    fn merge_equals_whole() {
        let xs = &datasets()[4].1;
        let whole = sketch_of(xs, 0.01);
        let (l, r) = xs.split_at(xs.len() / 3);
        let mut a = sketch_of(l, 0.01);
        let b = sketch_of(r, 0.01);
        let mut b2 = b.clone();
        a.merge(&b).expect("same alpha");
        assert_eq!(a, whole);
        b2.merge(&sketch_of(l, 0.01)).expect("same alpha");
        assert_eq!(b2, whole);
        let mut e = QuantileSketch::new(0.01);
        e.merge(&whole).expect("same alpha");
        assert_eq!(e, whole);
    }

    #[test]
    fn merge_rejects_other_alpha() {
        let mut a = sketch_of(&[1.0, 2.0], 0.01);
        let before = a.clone();
        assert!(a.merge(&sketch_of(&[3.0], 0.02)).is_err());
        assert_eq!(a, before);
    }

    #[test]
    fn empty_and_invalid() {
        let mut s = QuantileSketch::new(0.01);
        assert_eq!(s.quantile(0.5), None);
        assert!(s.min().is_nan() && s.max().is_nan());
        assert_eq!(s.heap_bytes(), 0);
        s.add(f64::NAN, 1.0);
        s.add(1.0, 0.0);
        s.add(1.0, -1.0);
        s.add(1.0, f64::NAN);
        s.add(1.0, f64::INFINITY);
        assert_eq!(s, QuantileSketch::new(0.01));
        s.add(1.0, 1.0);
        assert_eq!(s.quantile(-0.1), None);
        assert_eq!(s.quantile(1.1), None);
        assert_eq!(s.quantile(f64::NAN), None);
        assert_eq!(QuantileSketch::new(f64::NAN).alpha(), 0.01);
        assert_eq!(QuantileSketch::new(0.0).alpha(), QuantileSketch::MIN_ALPHA);
        assert_eq!(QuantileSketch::new(1.0).alpha(), QuantileSketch::MAX_ALPHA);
    }

    #[test]
    fn infinities_stay_apart() {
        let mut s = QuantileSketch::new(0.01);
        for i in 1..=100 {
            s.add(f64::from(i), 1.0);
        }
        s.add(f64::INFINITY, 2.0);
        s.add(f64::NEG_INFINITY, 1.0);
        assert_eq!(s.quantile(0.0), Some(f64::NEG_INFINITY));
        assert_eq!(s.quantile(1.0), Some(f64::INFINITY));
        assert_eq!(s.quantile(0.001), Some(f64::NEG_INFINITY));
        assert_eq!(s.quantile(0.999), Some(f64::INFINITY));
        let mid = s.quantile(0.5).expect("nonempty");
        // Rank 0.5 · 102 = 51 is the value 51, after the one -Inf.
        assert!((mid - 51.0).abs() <= 0.01 * 51.0, "{mid}");
        // Infinities must not widen the stores.
        assert!(s.heap_bytes() < 2048);
    }

    #[test]
    fn extremes_of_f64() {
        let xs = [
            f64::MAX,
            -f64::MAX,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            -0.0,
            1.0,
        ];
        let s = sketch_of(&xs, 0.01);
        assert_eq!(s.quantile(0.0), Some(-f64::MAX));
        assert_eq!(s.quantile(1.0), Some(f64::MAX));
        for q in [0.2, 0.5, 0.8] {
            assert!(s.quantile(q).expect("nonempty").is_finite());
        }
    }

    #[test]
    fn collapsing_keeps_high_quantiles() {
        let mut r = Rng(3);
        let mut xs: Vec<f64> = (0..10_000).map(|_| r.unit() * 1000.0 + 1.0).collect();
        // 1e-300 is ~34,000 bins below 1 at alpha = 1%: the store must collapse.
        xs.extend([1e-300; 10]);
        let s = sketch_of(&xs, 0.01);
        assert!(s.pos.bins.len() <= MAX_BINS);
        assert!(s.heap_bytes() <= MAX_BINS * 8);
        assert_eq!(s.quantile(0.0), Some(1e-300));
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.01, 0.25, 0.5, 0.9, 0.99, 1.0] {
            let est = s.quantile(q).expect("nonempty");
            assert!(rel_err(&sorted, q, est) <= 0.01 + EPS, "q={q}");
        }
        // Collapsing depends only on the data, so merging still matches.
        let (a, b) = xs.split_at(5003);
        let mut m = sketch_of(b, 0.01);
        m.merge(&sketch_of(a, 0.01)).expect("same alpha");
        assert_eq!(m, s);
        // The negative store collapses its most negative values.
        let mut neg: Vec<f64> = xs[..10_000].iter().map(|x| -x).collect();
        neg.extend([-1e300; 10]);
        let s = sketch_of(&neg, 0.01);
        assert!(s.neg.bins.len() <= MAX_BINS);
        assert_eq!(s.quantile(0.0), Some(-1e300));
        sorted = neg;
        sorted.sort_by(f64::total_cmp);
        for q in [0.01, 0.5, 0.9, 0.99, 1.0] {
            let est = s.quantile(q).expect("nonempty");
            assert!(rel_err(&sorted, q, est) <= 0.01 + EPS, "q={q}");
        }
        // A high outlier folds the whole bulk into the lowest kept bin: the documented cost.
        let mut high = xs[..10_000].to_vec();
        high.push(1e300);
        let s = sketch_of(&high, 0.01);
        assert_eq!(s.quantile(1.0), Some(1e300));
        assert!(s.quantile(0.5).expect("nonempty") > 1e250);
    }

    #[test]
    fn memory_is_small() {
        let mut r = Rng(11);
        let mut s = QuantileSketch::new(QuantileSketch::DEFAULT_ALPHA);
        for _ in 0..100_000 {
            s.add(10f64.powf(r.unit() * 9.0 - 3.0), 1.0);
        }
        assert!(s.pos.bins.len() <= MAX_BINS);
        let bytes = s.heap_bytes();
        assert!(bytes <= 10 * 1024, "{bytes}");
        assert!(size_of::<QuantileSketch>() <= 128);
        let mut small = QuantileSketch::new(QuantileSketch::DEFAULT_ALPHA);
        for _ in 0..1000 {
            small.add(42.0, 1.0);
        }
        assert_eq!(small.heap_bytes(), 8);
    }

    fn values() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => -1e6..1e6f64,
            2 => (-6.0..6.0f64).prop_map(|e| 10f64.powf(e)),
            1 => (-6.0..6.0f64).prop_map(|e| -(10f64.powf(e))),
            1 => Just(0.0),
            1 => (0..5i32).prop_map(f64::from),
        ]
    }

    proptest! {
        // No regression files: a failing case is printed, and these modules own no other files.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn prop_quantiles_within_alpha(
            xs in prop::collection::vec(values(), 1..400),
            alpha in prop_oneof![Just(0.01), 0.001..0.2f64],
        ) {
            // Small alphas collapse on these spans; collapsing has its own test.
            prop_assume!(fits(&xs, alpha));
            check(&xs, alpha);
        }

        #[test]
        fn prop_quantile_monotone(xs in prop::collection::vec(values(), 1..200)) {
            let s = sketch_of(&xs, 0.01);
            let mut prev = f64::NEG_INFINITY;
            for i in 0..=100 {
                let v = s.quantile(f64::from(i) / 100.0).expect("nonempty");
                prop_assert!(v >= prev);
                prev = v;
            }
        }

        #[test]
        fn prop_merge_equals_whole(
            xs in prop::collection::vec(values(), 0..300),
            cut in 0usize..300,
        ) {
            let cut = cut.min(xs.len());
            let whole = sketch_of(&xs, 0.01);
            let mut a = sketch_of(&xs[..cut], 0.01);
            let mut b = sketch_of(&xs[cut..], 0.01);
            let a0 = a.clone();
            a.merge(&b).expect("same alpha");
            b.merge(&a0).expect("same alpha");
            prop_assert_eq!(&a, &whole);
            prop_assert_eq!(&b, &whole);
        }

        #[test]
        fn prop_weight_equals_repeats(
            xs in prop::collection::vec((values(), 1u32..6), 0..100),
        ) {
            let mut a = QuantileSketch::new(0.01);
            let mut b = QuantileSketch::new(0.01);
            for &(v, w) in &xs {
                a.add(v, f64::from(w));
                for _ in 0..w {
                    b.add(v, 1.0);
                }
            }
            prop_assert_eq!(a, b);
        }
    }
}
