//! Per-kind window state: what one series accumulates inside one window.

use super::counter::Step;
use super::hll::Hll;
use super::sketch::QuantileSketch;
use crate::metric::{Kind, Metric, Temporality, Value};
use hashbrown::HashSet;
use smallvec::SmallVec;
use std::hash::BuildHasher;

/// A sum that stays an exact integer until a float joins it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sum {
    /// The integer part as two halves of an i128: an `i128` field would align every
    /// window state to 16 bytes, and window tables move millions of them.
    int: [u64; 2],
    float: f64,
    has_float: bool,
}

impl Sum {
    fn int(&self) -> i128 {
        (u128::from(self.int[1]) << 64 | u128::from(self.int[0])) as i128
    }

    fn set_int(&mut self, v: i128) {
        self.int = [v as u64, ((v as u128) >> 64) as u64];
    }

    pub fn add(&mut self, v: Value) {
        match v.as_i128() {
            Some(i) => self.set_int(self.int().saturating_add(i)),
            None => {
                self.float += v.as_f64();
                self.has_float = true;
            }
        }
    }

    pub fn merge(&mut self, o: &Sum) {
        self.set_int(self.int().saturating_add(o.int()));
        self.float += o.float;
        self.has_float |= o.has_float;
    }

    pub fn value(&self) -> Value {
        if self.has_float {
            Value::F64(self.int() as f64 + self.float)
        } else {
            Value::from_i128(self.int())
        }
    }
}

/// Count, sum, extremes and the latest value of a gauge inside a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaugeState {
    pub count: u64,
    pub sum: f64,
    /// Extremes keep the observed values, so integer gauges stay integers.
    pub min: Value,
    pub max: Value,
    pub last: Value,
    pub last_ts: i64,
}

fn smaller(a: Value, b: Value) -> Value {
    if b.as_f64() < a.as_f64() {
        b
    } else {
        a
    }
}

fn larger(a: Value, b: Value) -> Value {
    if b.as_f64() > a.as_f64() {
        b
    } else {
        a
    }
}

impl GaugeState {
    fn new(v: Value, ts: i64) -> GaugeState {
        let f = v.as_f64();
        GaugeState {
            count: 1,
            sum: f,
            min: v,
            max: v,
            last: v,
            last_ts: ts,
        }
    }

    fn observe(&mut self, v: Value, ts: i64) {
        self.count += 1;
        self.sum += v.as_f64();
        self.min = smaller(self.min, v);
        self.max = larger(self.max, v);
        // Equal timestamps: the later line wins, as a later write does in a time-series store.
        if ts >= self.last_ts {
            self.last = v;
            self.last_ts = ts;
        }
    }

    fn merge(&mut self, o: &GaugeState) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = smaller(self.min, o.min);
        self.max = larger(self.max, o.max);
        if o.last_ts >= self.last_ts {
            self.last = o.last;
            self.last_ts = o.last_ts;
        }
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            return self.last.as_f64();
        }
        self.sum / self.count as f64
    }
}

/// Where exact state gives way to a bounded estimate, and how distributions are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Observations per distribution and window kept exactly; beyond, a quantile sketch.
    pub exact: usize,
    /// Members per set and window counted exactly; beyond, HyperLogLog.
    pub set: usize,
    /// The sketch's relative error bound.
    pub alpha: f64,
    /// `--buckets`: distributions count observations per bucket (upper bounds, strictly
    /// increasing, +Inf implied) instead of keeping values for quantiles.
    pub buckets: Option<std::sync::Arc<[f64]>>,
}

impl Limits {
    /// From `--exact-limit`, `--set-limit`, `--sketch-error` and `--buckets`.
    pub fn new(exact: usize, set: usize, alpha: f64, buckets: Option<&[f64]>) -> Limits {
        Limits {
            exact,
            set,
            alpha,
            buckets: buckets.map(Into::into),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            exact: 2048,
            set: 100_000,
            alpha: QuantileSketch::DEFAULT_ALPHA,
            buckets: None,
        }
    }
}

/// Observations of a distribution: raw values (weights appear only once a sample rate below
/// 1 does) up to `Limits::exact`, then a quantile sketch with a relative error bound.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DistState {
    /// Raw values while exact. One is held inline: in a stream of many series most windows
    /// of a series hold a single observation, and an allocation each would cost more than
    /// the rest of its aggregation.
    pub values: SmallVec<[f64; 1]>,
    /// Weights, sketch and histogram, which most distributions never need: boxed, so the
    /// common state (and every window state, as large as the largest kind) stays small.
    rare: Option<Box<DistRare>>,
    pub n: u64,
    pub weight: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// The parts of a distribution's state that only sample rates, many observations or
/// `--buckets` bring.
#[derive(Clone, Debug, Default, PartialEq)]
struct DistRare {
    weights: Vec<f64>,
    sketch: Option<QuantileSketch>,
    /// With `Limits::buckets`: the weighted count per bucket (one more than bounds).
    hist: Vec<f64>,
}

impl DistState {
    /// Weights of the values, empty while every sample rate was 1.
    pub fn weights(&self) -> &[f64] {
        self.rare.as_ref().map_or(&[], |r| &r.weights)
    }

    pub fn sketch(&self) -> Option<&QuantileSketch> {
        self.rare.as_ref().and_then(|r| r.sketch.as_ref())
    }

    /// With `Limits::buckets`: the weighted count per bucket (one more than bounds).
    pub fn hist(&self) -> &[f64] {
        self.rare.as_ref().map_or(&[], |r| &r.hist)
    }

    /// Forgets the weights (Etsy's timer arithmetic ignores them).
    pub fn drop_weights(&mut self) {
        if let Some(r) = &mut self.rare {
            r.weights = Vec::new();
        }
    }

    fn rare_mut(&mut self) -> &mut DistRare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn weights_mut(&mut self) -> &mut Vec<f64> {
        &mut self.rare_mut().weights
    }

    pub(crate) fn observe(&mut self, values: &[f64], rate: f64, limits: &Limits) {
        let w = 1.0 / rate;
        if w != 1.0 && self.weights().len() < self.values.len() {
            let n = self.values.len();
            self.weights_mut().resize(n, 1.0);
        }
        for &v in values {
            if v.is_nan() {
                continue;
            }
            self.note(v, w, 1);
            if let Some(bounds) = &limits.buckets {
                self.count_in_bucket(bounds, v, w);
                continue;
            }
            if let Some(sk) = self.rare.as_mut().and_then(|r| r.sketch.as_mut()) {
                sk.add(v, w);
                continue;
            }
            if self.values.len() == 1 && !self.values.spilled() {
                // Past the inline value, room for a few: growing by one, then doubling
                // from two, would reallocate once more for every small window.
                self.values.reserve_exact(3);
            }
            self.values.push(v);
            if w != 1.0 || !self.weights().is_empty() {
                self.weights_mut().push(w);
            }
            if self.values.len() > limits.exact {
                self.spill(limits.alpha);
            }
        }
    }

    /// Bucket i holds values in (bounds[i-1], bounds[i]], the last one the rest.
    fn count_in_bucket(&mut self, bounds: &[f64], v: f64, w: f64) {
        let hist = &mut self.rare_mut().hist;
        if hist.len() != bounds.len() + 1 {
            hist.resize(bounds.len() + 1, 0.0);
        }
        hist[bounds.partition_point(|&b| b < v)] += w;
    }

    fn note(&mut self, v: f64, w: f64, n: u64) {
        if self.n == 0 {
            (self.min, self.max) = (v, v);
        }
        self.n += n;
        self.weight += w;
        self.sum += v * w;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Moves the raw values into a sketch and frees them.
    fn spill(&mut self, alpha: f64) {
        let mut sk = QuantileSketch::new(alpha);
        for (i, &v) in self.values.iter().enumerate() {
            sk.add(v, self.weights().get(i).copied().unwrap_or(1.0));
        }
        self.values = SmallVec::new();
        let rare = self.rare_mut();
        rare.weights = Vec::new();
        rare.sketch = Some(sk);
    }

    fn merge(&mut self, o: &DistState, limits: &Limits) {
        if o.n == 0 {
            return;
        }
        let (n, weight, sum, min, max) = (self.n, self.weight, self.sum, self.min, self.max);
        if !o.hist().is_empty() {
            let hist = &mut self.rare_mut().hist;
            if hist.len() < o.hist().len() {
                hist.resize(o.hist().len(), 0.0);
            }
            for (a, b) in hist.iter_mut().zip(o.hist()) {
                *a += b;
            }
        }
        if self.sketch().is_none()
            && (o.sketch().is_some() || self.values.len() + o.values.len() > limits.exact)
        {
            self.spill(o.sketch().map_or(limits.alpha, |s| s.alpha()));
        }
        match self.rare.as_mut().and_then(|r| r.sketch.as_mut()) {
            Some(sk) => {
                for (i, &v) in o.values.iter().enumerate() {
                    sk.add(v, o.weights().get(i).copied().unwrap_or(1.0));
                }
                if let Some(other) = o.sketch() {
                    // Sketches built under one --sketch-alpha always share it.
                    let _ = sk.merge(other);
                }
            }
            None => {
                if !o.weights().is_empty() || !self.weights().is_empty() {
                    let len = self.values.len();
                    let weights = self.weights_mut();
                    weights.resize(len, 1.0);
                    let pad = o.values.len() - o.weights().len();
                    weights.extend(
                        o.weights()
                            .iter()
                            .copied()
                            .chain(std::iter::repeat_n(1.0, pad)),
                    );
                }
                self.values.extend_from_slice(&o.values);
            }
        }
        (self.n, self.weight, self.sum) = (n + o.n, weight + o.weight, sum + o.sum);
        (self.min, self.max) = if n == 0 {
            (o.min, o.max)
        } else {
            (min.min(o.min), max.max(o.max))
        };
    }

    /// Recomputes the weight and the weighted sum from the raw values, in sorted order, while
    /// they are exact. Float addition in arrival order rounds differently depending on where
    /// the input was cut into blocks, and a pipe's reads decide that: the same input would
    /// give sums that differ in the last digit from run to run.
    pub fn settle_totals(&mut self) {
        if self.sketch().is_some() || self.values.is_empty() {
            return;
        }
        if self.weights().is_empty() {
            self.values.sort_unstable_by(f64::total_cmp);
            self.sum = self.values.iter().fold(0.0, |sum, v| sum + v);
            return;
        }
        let weight = |i: usize| self.weights().get(i).copied().unwrap_or(1.0);
        let mut pairs: Vec<(f64, f64)> = (0..self.values.len())
            .map(|i| (self.values[i], weight(i)))
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        self.sum = pairs.iter().fold(0.0, |sum, (v, w)| sum + v * w);
        self.weight = pairs.iter().fold(0.0, |sum, (_, w)| sum + w);
    }

    /// True once the quantiles come from the sketch.
    pub fn estimated(&self) -> bool {
        self.sketch().is_some()
    }

    /// Quantiles: exact ones interpolate linearly between closest ranks (numpy's default,
    /// DuckDB's `quantile_cont`), each observation standing for `1/sample_rate` copies of
    /// itself; past the exact limit they come from the sketch, within its relative error.
    pub fn quantiles(&mut self, qs: &[f64]) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(qs.len());
        self.quantiles_into(qs, &mut out);
        out
    }

    /// `quantiles` appended to `out`, so a caller writing many summaries reuses one vector.
    pub fn quantiles_into(&mut self, qs: &[f64], out: &mut Vec<(f64, f64)>) {
        if let Some(sk) = self.sketch() {
            out.extend(qs.iter().filter_map(|&q| Some((q, sk.quantile(q)?))));
            return;
        }
        if self.values.is_empty() {
            return;
        }
        if self.weights().is_empty() {
            self.values.sort_unstable_by(f64::total_cmp);
            out.extend(qs.iter().map(|&q| (q, interpolate(&self.values, q))));
            return;
        }
        let mut pairs: Vec<(f64, f64)> = self
            .values
            .iter()
            .copied()
            .zip(self.weights().iter().copied())
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        out.extend(qs.iter().map(|&q| (q, weighted(&pairs, self.weight, q))));
    }
}

/// Distinct set members: exact (64-bit hashes) up to `Limits::set`, then HyperLogLog.
#[derive(Clone, Debug, PartialEq)]
pub enum SetState {
    Exact(HashSet<u64>),
    Estimated(Box<Hll>),
}

impl SetState {
    fn insert(&mut self, h: u64, limits: &Limits) {
        match self {
            SetState::Exact(s) => {
                s.insert(h);
                if s.len() > limits.set {
                    let mut hll = Hll::new(Hll::DEFAULT_PRECISION);
                    s.iter().for_each(|&x| hll.insert_hash(x));
                    *self = SetState::Estimated(Box::new(hll));
                }
            }
            SetState::Estimated(hll) => hll.insert_hash(h),
        }
    }

    fn merge(&mut self, o: &SetState, limits: &Limits) {
        match o {
            SetState::Exact(s) => s.iter().for_each(|&h| self.insert(h, limits)),
            SetState::Estimated(other) => {
                if let SetState::Exact(s) = self {
                    let mut hll = Hll::new(other.precision());
                    s.iter().for_each(|&x| hll.insert_hash(x));
                    *self = SetState::Estimated(Box::new(hll));
                }
                if let SetState::Estimated(hll) = self {
                    let _ = hll.merge(other);
                }
            }
        }
    }

    /// The distinct count and whether it is an estimate.
    pub fn count(&self) -> (u64, bool) {
        match self {
            SetState::Exact(s) => (s.len() as u64, false),
            SetState::Estimated(h) => (h.estimate().round() as u64, true),
        }
    }
}

fn interpolate(sorted: &[f64], q: f64) -> f64 {
    let h = q * (sorted.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The same rule on the expanded sample: observation i fills positions [C(i-1), C(i)).
fn weighted(pairs: &[(f64, f64)], total: f64, q: f64) -> f64 {
    let h = q * (total - 1.0).max(0.0);
    let at = |pos: f64| {
        let mut cum = 0.0;
        for &(v, w) in pairs {
            cum += w;
            if pos < cum {
                return v;
            }
        }
        pairs[pairs.len() - 1].0
    };
    let lo = h.floor();
    let (a, b) = (at(lo), at(lo + 1.0));
    a + (h - lo) * (b - a)
}

/// Bucket-wise histogram merge; summaries keep count/sum/min/max (quantiles cannot merge).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BucketState {
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl BucketState {
    fn from_metric(m: &Metric) -> BucketState {
        BucketState {
            bounds: m.bounds.clone(),
            counts: m.counts.clone(),
            count: m.count.unwrap_or_else(|| m.counts.iter().sum()),
            sum: m.sum.unwrap_or(0.0),
            min: m.min,
            max: m.max,
        }
    }

    fn merge(&mut self, o: &BucketState) -> Result<(), &'static str> {
        if self.bounds != o.bounds {
            return Err("histogram bounds differ from earlier points of the series");
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.count += o.count;
        self.sum += o.sum;
        self.min = opt(self.min, o.min, f64::min);
        self.max = opt(self.max, o.max, f64::max);
        Ok(())
    }
}

fn opt(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, y) => x.or(y),
    }
}

/// A cumulative counter inside a window: the exact increase since the reading before the
/// window's first increment, and the latest reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CumState {
    pub increase: Sum,
    /// Time of the reading the first increment started from; `None` until an increment.
    pub span_start: Option<i64>,
    pub last: Value,
    pub last_ts: i64,
    pub start_ts: Option<i64>,
    pub resets: u32,
    pub wraps: u32,
}

impl CumState {
    fn new(m: &Metric) -> CumState {
        CumState {
            increase: Sum::default(),
            span_start: None,
            last: m.value.unwrap_or_default(),
            last_ts: m.ts,
            start_ts: m.start_ts,
            resets: 0,
            wraps: 0,
        }
    }

    fn observe(&mut self, m: &Metric) {
        if m.ts >= self.last_ts {
            (self.last, self.last_ts, self.start_ts) =
                (m.value.unwrap_or_default(), m.ts, m.start_ts);
        }
    }

    /// Adds one step that started from the reading at `from_ts`.
    pub fn add_step(&mut self, step: Step, from_ts: i64) {
        self.increase.add(step.increase());
        self.span_start = Some(self.span_start.map_or(from_ts, |s| s.min(from_ts)));
        match step {
            Step::Reset(_) => self.resets += 1,
            Step::Wrap { .. } => self.wraps += 1,
            Step::Increase(_) => {}
        }
    }

    fn merge(&mut self, o: &CumState) {
        self.increase.merge(&o.increase);
        self.span_start = match (self.span_start, o.span_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if o.last_ts >= self.last_ts {
            (self.last, self.last_ts, self.start_ts) = (o.last, o.last_ts, o.start_ts);
        }
        self.resets += o.resets;
        self.wraps += o.wraps;
    }
}

/// What a series reports for a window in which it got no points, when idle series are
/// reported: delta counters 0, gauges their last value, distributions count 0, sets 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdleKind {
    #[default]
    Nothing,
    Delta,
    Gauge,
    Dist,
    Set,
    /// Idle past `--expire`: forgotten, and removed from the series table when enough are.
    Expired,
}

impl IdleKind {
    /// The idle state; `gauge` is the series' last gauge value.
    pub fn state(self, gauge: Option<Value>, ts: i64, limits: &Limits) -> Option<State> {
        Some(match self {
            IdleKind::Nothing | IdleKind::Expired => return None,
            IdleKind::Delta => State::Delta(Sum::default()),
            IdleKind::Gauge => {
                let v = gauge?;
                State::Gauge(GaugeState {
                    count: 0,
                    sum: 0.0,
                    min: v,
                    max: v,
                    last: v,
                    last_ts: ts,
                })
            }
            IdleKind::Dist => {
                let mut d = DistState::default();
                if let Some(b) = &limits.buckets {
                    d.rare_mut().hist = vec![0.0; b.len() + 1];
                }
                State::Dist(d)
            }
            IdleKind::Set => State::Set(SetState::Exact(HashSet::new())),
        })
    }
}

/// One value for `State::add_sample`.
#[derive(Clone, Copy, Debug)]
pub enum Sample {
    /// A delta counter's increment (already scaled by its sample rate).
    Count(Value),
    /// A distribution value and its sample rate.
    Timing(f64, f64),
    /// An absolute gauge value and its event time.
    Gauge(Value, i64),
}

/// What one series holds within one window.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    /// Delta counters: the exact sum.
    Delta(Sum),
    /// Cumulative counters: the increase, and the latest running total with its start.
    Cumulative(Box<CumState>),
    Gauge(GaugeState),
    Dist(DistState),
    Set(SetState),
    /// Boxed, as cumulative counters are: both are larger than the common kinds and every
    /// state is as large as the largest.
    Buckets(Box<BucketState>),
}

impl State {
    /// The state holding just `m`. `gauge_base` is the series' last absolute gauge value,
    /// which a delta gauge (statsd `+N|g`) adds to.
    pub fn new(m: &Metric, gauge_base: Option<Value>, limits: &Limits) -> State {
        let v = m.value.unwrap_or_default();
        match (m.kind, m.temporality) {
            (Kind::Counter, Some(Temporality::Cumulative)) => {
                State::Cumulative(Box::new(CumState::new(m)))
            }
            (Kind::Counter, _) => {
                let mut s = Sum::default();
                s.add(v);
                State::Delta(s)
            }
            (Kind::Gauge, t) => State::Gauge(GaugeState::new(gauge_value(v, t, gauge_base), m.ts)),
            (Kind::Distribution, _) => {
                let mut d = DistState::default();
                d.observe(&m.values, m.sample_rate.unwrap_or(1.0), limits);
                State::Dist(d)
            }
            (Kind::Set, _) => {
                let mut s = SetState::Exact(HashSet::new());
                add_members(&mut s, m, limits);
                State::Set(s)
            }
            (Kind::Histogram | Kind::Summary, _) => {
                State::Buckets(Box::new(BucketState::from_metric(m)))
            }
        }
    }

    /// Adds `m` (of the same series) to this state.
    pub fn observe(&mut self, m: &Metric, limits: &Limits) -> Result<(), &'static str> {
        let v = m.value.unwrap_or_default();
        match self {
            State::Delta(s) => s.add(v),
            State::Cumulative(c) => c.observe(m),
            State::Gauge(g) => {
                let base = Some(g.last);
                g.observe(gauge_value(v, m.temporality, base), m.ts);
            }
            State::Dist(d) => d.observe(&m.values, m.sample_rate.unwrap_or(1.0), limits),
            State::Set(s) => add_members(s, m, limits),
            State::Buckets(b) => b.merge(&BucketState::from_metric(m))?,
        }
        Ok(())
    }

    /// Adds one more sample to a delta counter or distribution state: what `observe` does
    /// with a metric holding just that value (statsd's fast path, which skips building one).
    /// False for other kinds, which the caller then observes as a metric.
    pub fn add_sample(&mut self, s: Sample, limits: &Limits) -> bool {
        match (self, s) {
            (State::Delta(sum), Sample::Count(v)) => sum.add(v),
            (State::Dist(d), Sample::Timing(x, rate)) => d.observe(&[x], rate, limits),
            (State::Gauge(g), Sample::Gauge(v, ts)) => g.observe(v, ts),
            _ => return false,
        }
        true
    }

    /// The state `new` makes from a metric holding just `s` (no delta gauge base).
    pub fn from_sample(s: Sample, limits: &Limits) -> State {
        match s {
            Sample::Count(v) => {
                let mut sum = Sum::default();
                sum.add(v);
                State::Delta(sum)
            }
            Sample::Timing(x, rate) => {
                let mut d = DistState::default();
                d.observe(&[x], rate, limits);
                State::Dist(d)
            }
            Sample::Gauge(v, ts) => State::Gauge(GaugeState::new(v, ts)),
        }
    }

    /// Merges a partial state of the same series and window (parallel aggregation).
    pub fn merge(&mut self, o: &State, limits: &Limits) -> Result<(), &'static str> {
        match (self, o) {
            (State::Delta(a), State::Delta(b)) => a.merge(b),
            (State::Cumulative(a), State::Cumulative(b)) => a.merge(b),
            (State::Gauge(a), State::Gauge(b)) => a.merge(b),
            (State::Dist(a), State::Dist(b)) => a.merge(b, limits),
            (State::Set(a), State::Set(b)) => a.merge(b, limits),
            (State::Buckets(a), State::Buckets(b)) => a.merge(b)?,
            _ => return Err("states of different kinds"),
        }
        Ok(())
    }

    /// What this kind of state reports in windows without points (statsd's idle flush).
    pub fn idle_kind(&self) -> IdleKind {
        match self {
            State::Delta(_) => IdleKind::Delta,
            State::Gauge(_) => IdleKind::Gauge,
            State::Dist(_) => IdleKind::Dist,
            State::Set(_) => IdleKind::Set,
            State::Cumulative(_) | State::Buckets(_) => IdleKind::Nothing,
        }
    }

    /// The last absolute gauge value, carried to the next window for delta gauges.
    pub fn gauge_last(&self) -> Option<Value> {
        match self {
            State::Gauge(g) => Some(g.last),
            _ => None,
        }
    }
}

fn gauge_value(v: Value, t: Option<Temporality>, base: Option<Value>) -> Value {
    match (t, base) {
        (Some(Temporality::Delta), Some(b)) => match (b.as_i128(), v.as_i128()) {
            (Some(x), Some(y)) => Value::from_i128(x.saturating_add(y)),
            _ => Value::F64(b.as_f64() + v.as_f64()),
        },
        _ => v,
    }
}

/// One member hasher for the whole process: members of one set arrive on many lines (and
/// threads), so every hash must come from the same seed; the seed is random per process.
fn member_hasher() -> &'static foldhash::fast::FixedState {
    static HASHER: std::sync::OnceLock<foldhash::fast::FixedState> = std::sync::OnceLock::new();
    HASHER.get_or_init(|| {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x0073_6574_u64);
        foldhash::fast::FixedState::with_seed(seed)
    })
}

fn add_members(s: &mut SetState, m: &Metric, limits: &Limits) {
    let h = member_hasher();
    for member in m.members.iter() {
        s.insert(h.hash_one(member), limits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_states_stay_small() {
        // Window tables hold millions of states and move them when merging and sorting.
        assert!(
            std::mem::size_of::<State>() <= 80,
            "{}",
            std::mem::size_of::<State>()
        );
        assert_eq!(std::mem::align_of::<State>(), 8);
    }

    #[test]
    fn exact_sums_do_not_depend_on_how_points_were_split() {
        let limits = Limits::default();
        let values = [0.1, 1e16, 0.7, -1e16, 0.2, 3.3, 1e-3, 2.5e15, 0.3, 7.77];
        let observe = |vals: &[f64], rate: f64| {
            let mut d = DistState::default();
            d.observe(vals, rate, &limits);
            d
        };
        for rate in [1.0, 0.3] {
            let mut whole = observe(&values, rate);
            whole.settle_totals();
            let mut reversed: Vec<f64> = values.to_vec();
            reversed.reverse();
            for cut in 1..values.len() {
                let (a, b) = reversed.split_at(cut);
                let mut d = observe(a, rate);
                d.merge(&observe(b, rate), &limits);
                d.settle_totals();
                assert_eq!(
                    d.sum.to_bits(),
                    whole.sum.to_bits(),
                    "cut {cut} rate {rate}"
                );
                assert_eq!(d.weight.to_bits(), whole.weight.to_bits(), "cut {cut}");
            }
        }
        // In arrival order the same points do round differently: the case is a real one.
        let (a, b) = values.split_at(8);
        let mut d = observe(b, 1.0);
        d.merge(&observe(a, 1.0), &limits);
        assert_ne!(d.sum.to_bits(), observe(&values, 1.0).sum.to_bits());
    }

    #[test]
    fn sum_stays_exact_past_2_pow_53() {
        let mut s = Sum::default();
        s.add(Value::U64(u64::MAX - 1));
        s.add(Value::U64(1));
        assert_eq!(s.value(), Value::U64(u64::MAX));
        s.add(Value::F64(0.5));
        assert!(matches!(s.value(), Value::F64(_)));
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let mut d = DistState::default();
        d.observe(&[4.0, 1.0, 3.0, 2.0], 1.0, &Limits::default());
        let q = d.quantiles(&[0.0, 0.5, 0.9, 1.0]);
        assert_eq!(q, vec![(0.0, 1.0), (0.5, 2.5), (0.9, 3.7), (1.0, 4.0)]);
    }

    #[test]
    fn weighted_quantiles_expand_samples() {
        // 1 sampled at 0.5 stands for two 1s: the sample is {1,1,2,3}.
        let mut d = DistState::default();
        d.observe(&[1.0], 0.5, &Limits::default());
        d.observe(&[2.0, 3.0], 1.0, &Limits::default());
        assert_eq!(d.weight, 4.0);
        let q = d.quantiles(&[0.5]);
        assert_eq!(q, vec![(0.5, 1.5)]);
    }

    #[test]
    fn delta_gauges_add_to_the_last_value() {
        let mut m = Metric::gauge("g", Value::U64(10), 1);
        let mut st = State::new(&m, None, &Limits::default());
        m.temporality = Some(Temporality::Delta);
        m.value = Some(Value::I64(-15));
        m.ts = 2;
        st.observe(&m, &Limits::default()).unwrap();
        assert_eq!(st.gauge_last(), Some(Value::I64(-5)));
    }

    #[test]
    fn merge_equals_observing_everything() {
        let l = Limits::default();
        let mut whole = DistState::default();
        let (mut a, mut b) = (DistState::default(), DistState::default());
        whole.observe(&[1.0, 5.0], 1.0, &l);
        whole.observe(&[3.0], 0.25, &l);
        a.observe(&[1.0, 5.0], 1.0, &l);
        b.observe(&[3.0], 0.25, &l);
        a.merge(&b, &l);
        assert_eq!(
            a.quantiles(&[0.1, 0.5, 0.9]),
            whole.quantiles(&[0.1, 0.5, 0.9])
        );
        assert_eq!(
            (a.weight, a.sum, a.min, a.max),
            (whole.weight, whole.sum, whole.min, whole.max)
        );
    }

    /// Deterministic spread-out values (xorshift), the same on every run.
    fn data(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 11) as f64 / (1u64 << 53) as f64 * 12.0).exp()
            })
            .collect()
    }

    #[test]
    fn quantiles_are_exact_below_the_limit_and_within_alpha_above() {
        let limits = Limits {
            exact: 500,
            ..Limits::default()
        };
        for n in [10, 500, 501, 20_000] {
            let vals = data(n, 7 + n as u64);
            let mut d = DistState::default();
            for chunk in vals.chunks(7) {
                d.observe(chunk, 1.0, &limits);
            }
            assert_eq!(d.estimated(), n > 500, "n={n}");
            let mut sorted = vals.clone();
            sorted.sort_by(f64::total_cmp);
            for (q, got) in d.quantiles(&[0.0, 0.1, 0.5, 0.9, 0.99, 1.0]) {
                let h = q * (n - 1) as f64;
                let (lo, hi) = (sorted[h.floor() as usize], sorted[h.ceil() as usize]);
                if n <= 500 {
                    assert_eq!(got, interpolate(&sorted, q), "exact n={n} q={q}");
                } else {
                    let a = limits.alpha;
                    assert!(
                        got >= lo * (1.0 - a) - 1e-9 && got <= hi * (1.0 + a) + 1e-9,
                        "n={n} q={q}: {got} not within {a} of [{lo}, {hi}]"
                    );
                }
            }
            assert_eq!(d.n, n as u64);
            assert_eq!((d.min, d.max), (sorted[0], sorted[n - 1]));
        }
    }

    #[test]
    fn merging_past_the_limit_spills_into_a_sketch() {
        let limits = Limits {
            exact: 100,
            ..Limits::default()
        };
        let (mut a, mut b) = (DistState::default(), DistState::default());
        a.observe(&data(80, 1), 1.0, &limits);
        b.observe(&data(80, 2), 1.0, &limits);
        a.merge(&b, &limits);
        assert!(a.estimated());
        assert_eq!(a.n, 160);
        assert!(a.values.is_empty());
    }

    #[test]
    fn sets_switch_to_hyperloglog_past_the_limit() {
        let limits = Limits {
            set: 1000,
            ..Limits::default()
        };
        let mut s = SetState::Exact(HashSet::new());
        for i in 0..1000u64 {
            s.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), &limits);
        }
        assert_eq!(s.count(), (1000, false));
        for i in 1000..50_000u64 {
            s.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), &limits);
        }
        let (n, estimated) = s.count();
        assert!(estimated);
        assert!((n as f64 - 50_000.0).abs() < 50_000.0 * 0.03, "{n}");
    }

    #[test]
    fn buckets_count_weighted_observations_by_upper_bound() {
        let limits = Limits {
            buckets: Some(vec![1.0, 5.0, 10.0].into()),
            ..Limits::default()
        };
        let (mut a, mut b) = (DistState::default(), DistState::default());
        a.observe(&[0.5, 1.0, 1.5, 5.0], 1.0, &limits);
        b.observe(&[10.0, 11.0], 0.5, &limits);
        a.merge(&b, &limits);
        assert_eq!(a.hist(), [2.0, 2.0, 2.0, 2.0]);
        assert!(a.values.is_empty(), "no values are kept for quantiles");
        assert_eq!((a.n, a.weight, a.min, a.max), (6, 8.0, 0.5, 11.0));
    }
}
