//! Etsy statsd's flush arithmetic and its Graphite backend's names (`tlm-agg --style statsd`).
//!
//! Everything here follows statsd 0.9.0: `lib/process_metrics.js` for the numbers and
//! `backends/graphite.js` for the names, with that backend's default prefixes (`stats`,
//! `counters`, `timers`, `gauges`, `sets`) and no global suffix. Where the JavaScript has a
//! quirk, the quirk is kept, because the point of this style is that a dashboard built on
//! Etsy's output reads the same numbers; the quirks are listed in docs/aggregation.md.

use crate::error::{Error, Result};

/// What `--style statsd` is asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Etsy's `percentThreshold`, in the order given.
    pub thresholds: Vec<Threshold>,
    /// Etsy's `graphite.legacyNamespace`: counters as `stats.X` and `stats_counts.X`.
    pub legacy_namespace: bool,
}

impl Options {
    /// From `--percent-threshold` and `--legacy-namespace`.
    pub fn new(percent_thresholds: &[f64], legacy_namespace: bool) -> Result<Options> {
        Ok(Options {
            thresholds: percent_thresholds
                .iter()
                .map(|&p| Threshold::new(p))
                .collect::<Result<_>>()?,
            legacy_namespace,
        })
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            thresholds: vec![Threshold {
                pct: 90.0,
                name: "90".into(),
            }],
            legacy_namespace: true,
        }
    }
}

/// One `percentThreshold` entry and the name part Etsy derives from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub pct: f64,
    /// `90`, `99_9`, `top10` for -10.
    pub name: String,
}

impl Threshold {
    /// Refuses what Etsy would turn into garbage: a threshold beyond ±100 reads past the end
    /// of the sorted values (`undefined` and NaN in every statistic), and one closer to zero
    /// than 1e-6 is printed by JavaScript in exponent form, which has no faithful name here.
    pub fn new(pct: f64) -> Result<Threshold> {
        if !pct.is_finite() || pct.abs() > 100.0 {
            return Err(Error::usage(format!(
                "--percent-threshold: {pct} is not in [-100, 100]"
            )));
        }
        if pct != 0.0 && pct.abs() < 1e-6 {
            return Err(Error::usage(format!(
                "--percent-threshold: {pct} is closer to 0 than 1e-6"
            )));
        }
        // JavaScript prints -0 as "0"; Rust would print "-0".
        let pct = if pct == 0.0 { 0.0 } else { pct };
        // `'' + pct` prints the shortest round-trip digits in plain notation in this range,
        // as Rust's Display does; Etsy then replaces the first '.' and the first '-' only.
        let name = format!("{pct}")
            .replacen('.', "_", 1)
            .replacen('-', "top", 1);
        Ok(Threshold { pct, name })
    }

    /// `upper_P` for a positive threshold (the largest of the lowest P%), `lower_P` otherwise
    /// (the smallest of the highest |P|%).
    pub fn boundary_stat(&self) -> &'static str {
        if self.pct > 0.0 {
            "upper_"
        } else {
            "lower_"
        }
    }
}

/// Which name a statistic is written under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path<'a> {
    CounterRate,
    CounterCount,
    /// A timer statistic: `prefix` followed by `threshold` when there is one (`upper_99_9`).
    Timer {
        prefix: &'static str,
        threshold: Option<&'a str>,
    },
    Gauge,
    SetCount,
}

/// Writes the Graphite name of `key`'s statistic into `out`, as Etsy's `format()` does with
/// the default prefixes.
pub fn write_name(out: &mut String, legacy: bool, key: &str, path: Path<'_>) {
    let (head, tail): (&str, &str) = match (path, legacy) {
        (Path::CounterRate, true) => ("stats.", ""),
        (Path::CounterCount, true) => ("stats_counts.", ""),
        (Path::CounterRate, false) => ("stats.counters.", ".rate"),
        (Path::CounterCount, false) => ("stats.counters.", ".count"),
        (Path::Timer { .. }, _) => ("stats.timers.", "."),
        (Path::Gauge, _) => ("stats.gauges.", ""),
        (Path::SetCount, _) => ("stats.sets.", ".count"),
    };
    out.push_str(head);
    out.push_str(key);
    out.push_str(tail);
    if let Path::Timer { prefix, threshold } = path {
        out.push_str(prefix);
        out.push_str(threshold.unwrap_or(""));
    }
}

/// What a statistic's unit is, given the unit of its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// The source's unit (lower, upper, mean, sums).
    Same,
    /// Per second of the source's unit (a counter's rate).
    PerSecond,
    /// None: counts, counts per second, sums of squares.
    Dimensionless,
}

/// One timer statistic as Etsy computes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat<'a> {
    pub path: Path<'a>,
    pub value: f64,
    pub unit: Unit,
    /// A count that stays an integer when its value is one (`count`, `count_90`).
    pub count: bool,
    /// The value comes from the quantile sketch or assumes a uniform sample rate.
    pub estimated: bool,
}

impl<'a> Stat<'a> {
    fn timer(prefix: &'static str, threshold: Option<&'a str>, value: f64, unit: Unit) -> Self {
        Stat {
            path: Path::Timer { prefix, threshold },
            value,
            unit,
            count: false,
            estimated: false,
        }
    }

    fn counting(mut self) -> Self {
        self.count = true;
        self
    }

    fn estimate(mut self, estimated: bool) -> Self {
        self.estimated = estimated;
        self
    }
}

/// JavaScript's `Math.round`: halves go towards +∞ (`Math.round(4.5)` is 5, `-4.5` gives -4).
pub fn js_round(x: f64) -> f64 {
    let f = x.floor();
    // `x - floor(x)` is exact for every finite double, so the comparison is too.
    if x - f >= 0.5 {
        f + 1.0
    } else {
        f
    }
}

/// Etsy's divisor for per-second figures: `flushInterval / 1000`, with the interval in ms.
pub fn flush_seconds(window_ns: i64) -> f64 {
    (window_ns as f64 / 1e6) / 1000.0
}

/// Etsy's timer statistics, in the order its Graphite backend writes them.
///
/// `values` are the raw received values (Etsy ignores the sample rate for everything but
/// the count); they are sorted here. `count` is the sample-rate-scaled count
/// (`timer_counters`: the sum of 1 / rate over the values). An empty timer gives only
/// `count` and `count_ps`, as Etsy writes for a timer that saw nothing in the interval.
pub fn timer<'t>(
    values: &mut [f64],
    count: f64,
    seconds: f64,
    thresholds: &'t [Threshold],
    out: &mut Vec<Stat<'t>>,
) {
    let n = values.len();
    if n == 0 {
        out.push(Stat::timer("count", None, count, Unit::Dimensionless).counting());
        out.push(Stat::timer(
            "count_ps",
            None,
            count / seconds,
            Unit::Dimensionless,
        ));
        return;
    }
    values.sort_unstable_by(f64::total_cmp);
    let (min, max) = (values[0], values[n - 1]);
    // Running sums in sorted order, as Etsy accumulates them: the last bits of a float sum
    // depend on the order.
    let mut cumulative = Vec::with_capacity(n);
    let mut cumulative_squares = Vec::with_capacity(n);
    let (mut s, mut sq) = (0.0, 0.0);
    for (i, &v) in values.iter().enumerate() {
        (s, sq) = if i == 0 {
            (v, v * v)
        } else {
            (s + v, sq + v * v)
        };
        cumulative.push(s);
        cumulative_squares.push(sq);
    }
    // Etsy reads `cumulative[-1]` (undefined, so NaN) when a negative threshold takes every
    // value; the same NaN comes out here.
    let before = |c: &[f64], i: usize| -> f64 { i.checked_sub(1).map_or(f64::NAN, |j| c[j]) };
    for t in thresholds {
        let (k, boundary, sum, squares, mean) = if n > 1 {
            let k = js_round(t.pct.abs() / 100.0 * n as f64) as usize;
            if k == 0 {
                continue;
            }
            let (boundary, sum, squares) = if t.pct > 0.0 {
                (values[k - 1], cumulative[k - 1], cumulative_squares[k - 1])
            } else {
                (
                    values[n - k],
                    cumulative[n - 1] - before(&cumulative, n - k),
                    cumulative_squares[n - 1] - before(&cumulative_squares, n - k),
                )
            };
            (k, boundary, sum, squares, sum / k as f64)
        } else {
            (n, max, min, min * min, min)
        };
        let p = Some(t.name.as_str());
        out.push(Stat::timer("count_", p, k as f64, Unit::Dimensionless).counting());
        out.push(Stat::timer("mean_", p, mean, Unit::Same));
        out.push(Stat::timer(t.boundary_stat(), p, boundary, Unit::Same));
        out.push(Stat::timer("sum_", p, sum, Unit::Same));
        out.push(Stat::timer("sum_squares_", p, squares, Unit::Dimensionless));
    }
    let (sum, squares) = (cumulative[n - 1], cumulative_squares[n - 1]);
    let mean = sum / n as f64;
    let diffs = values
        .iter()
        .fold(0.0, |acc, &v| acc + (v - mean) * (v - mean));
    let mid = n / 2;
    let median = if n % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    };
    out.push(Stat::timer(
        "std",
        None,
        (diffs / n as f64).sqrt(),
        Unit::Same,
    ));
    out.push(Stat::timer("upper", None, max, Unit::Same));
    out.push(Stat::timer("lower", None, min, Unit::Same));
    out.push(Stat::timer("count", None, count, Unit::Dimensionless).counting());
    out.push(Stat::timer(
        "count_ps",
        None,
        count / seconds,
        Unit::Dimensionless,
    ));
    out.push(Stat::timer("sum", None, sum, Unit::Same));
    out.push(Stat::timer(
        "sum_squares",
        None,
        squares,
        Unit::Dimensionless,
    ));
    out.push(Stat::timer("mean", None, mean, Unit::Same));
    out.push(Stat::timer("median", None, median, Unit::Same));
}

/// What the aggregator still knows of a timer whose values went into the quantile sketch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spilled {
    /// Values received.
    pub n: u64,
    /// Sample-rate-scaled count (sum of 1 / rate).
    pub count: f64,
    /// Sum of value / rate.
    pub weighted_sum: f64,
    pub min: f64,
    pub max: f64,
}

/// The statistics that survive a spill into the sketch: `count`, `count_ps`, `lower`,
/// `upper` and `count_P` exactly; `sum` and `mean` exactly when nothing was sampled (else
/// scaled from the weighted sum, exact only for a uniform sample rate, and marked);
/// `median` and `upper_P`/`lower_P` from `quantile` (the sketch, weighted by sample rate),
/// marked. `std`, `sum_squares` and the per-threshold mean, sum and sum of squares need every
/// value and are left out.
pub fn timer_spilled<'t>(
    s: &Spilled,
    quantile: impl Fn(f64) -> Option<f64>,
    seconds: f64,
    thresholds: &'t [Threshold],
    out: &mut Vec<Stat<'t>>,
) {
    let n = s.n as f64;
    // Each weight is 1 / rate >= 1, so the weights sum to n only when every rate was 1.
    let sampled = s.count != n;
    let sum = if sampled {
        s.weighted_sum / s.count * n
    } else {
        s.weighted_sum
    };
    // The sketch ranks run over the weighted sample; `at(i)` is the i-th smallest of n.
    let at = |i: f64| quantile(if s.n > 1 { i / (n - 1.0) } else { 0.0 });
    for t in thresholds {
        let k = if s.n > 1 {
            js_round(t.pct.abs() / 100.0 * n)
        } else {
            n
        };
        if k == 0.0 {
            continue;
        }
        let p = Some(t.name.as_str());
        out.push(Stat::timer("count_", p, k, Unit::Dimensionless).counting());
        let boundary = if s.n <= 1 {
            Some(s.max)
        } else if t.pct > 0.0 {
            at(k - 1.0)
        } else {
            at(n - k)
        };
        if let Some(b) = boundary {
            out.push(Stat::timer(t.boundary_stat(), p, b, Unit::Same).estimate(s.n > 1));
        }
    }
    out.push(Stat::timer("upper", None, s.max, Unit::Same));
    out.push(Stat::timer("lower", None, s.min, Unit::Same));
    out.push(Stat::timer("count", None, s.count, Unit::Dimensionless).counting());
    out.push(Stat::timer(
        "count_ps",
        None,
        s.count / seconds,
        Unit::Dimensionless,
    ));
    out.push(Stat::timer("sum", None, sum, Unit::Same).estimate(sampled));
    out.push(Stat::timer("mean", None, sum / n, Unit::Same).estimate(sampled));
    // Etsy averages the two middle values of an even count; the sketch's 0.5-quantile is
    // within its error of either.
    if let Some(median) = quantile(0.5) {
        out.push(Stat::timer("median", None, median, Unit::Same).estimate(true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds(p: &[f64]) -> Vec<Threshold> {
        p.iter().map(|&p| Threshold::new(p).unwrap()).collect()
    }

    /// The statistics as `name -> value`, names as Graphite gets them for key `t`.
    fn named(stats: &[Stat<'_>]) -> Vec<(String, f64)> {
        stats
            .iter()
            .map(|s| {
                let mut name = String::new();
                write_name(&mut name, true, "t", s.path);
                (name, s.value)
            })
            .collect()
    }

    fn get(stats: &[(String, f64)], stat: &str) -> f64 {
        let name = format!("stats.timers.t.{stat}");
        stats
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} missing from {stats:?}"))
            .1
    }

    fn has(stats: &[(String, f64)], stat: &str) -> bool {
        let name = format!("stats.timers.t.{stat}");
        stats.iter().any(|(n, _)| *n == name)
    }

    fn run(values: &[f64], count: f64, seconds: f64, p: &[f64]) -> Vec<(String, f64)> {
        let th = thresholds(p);
        let mut v = values.to_vec();
        let mut out = Vec::new();
        timer(&mut v, count, seconds, &th, &mut out);
        named(&out)
    }

    #[test]
    fn threshold_names_follow_javascript_number_printing() {
        let names: Vec<String> = thresholds(&[90.0, 99.9, -10.0, 0.5, 100.0, -0.0, -99.95])
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(
            names,
            ["90", "99_9", "top10", "0_5", "100", "0", "top99_95"]
        );
        assert!(Threshold::new(100.5).is_err());
        assert!(Threshold::new(f64::NAN).is_err());
        assert!(Threshold::new(1e-7).is_err());
        assert_eq!(Threshold::new(-10.0).unwrap().boundary_stat(), "lower_");
        assert_eq!(Threshold::new(0.0).unwrap().boundary_stat(), "lower_");
    }

    #[test]
    fn names_with_and_without_the_legacy_namespace() {
        let name = |legacy, path| {
            let mut s = String::new();
            write_name(&mut s, legacy, "api.hits", path);
            s
        };
        assert_eq!(name(true, Path::CounterRate), "stats.api.hits");
        assert_eq!(name(true, Path::CounterCount), "stats_counts.api.hits");
        assert_eq!(
            name(false, Path::CounterRate),
            "stats.counters.api.hits.rate"
        );
        assert_eq!(
            name(false, Path::CounterCount),
            "stats.counters.api.hits.count"
        );
        let upper = Path::Timer {
            prefix: "upper_",
            threshold: Some("99_9"),
        };
        assert_eq!(name(true, upper), "stats.timers.api.hits.upper_99_9");
        assert_eq!(name(false, upper), "stats.timers.api.hits.upper_99_9");
        assert_eq!(name(false, Path::Gauge), "stats.gauges.api.hits");
        assert_eq!(name(true, Path::SetCount), "stats.sets.api.hits.count");
    }

    #[test]
    fn javascript_rounding_sends_halves_up() {
        assert_eq!(js_round(4.5), 5.0);
        assert_eq!(js_round(2.5), 3.0);
        assert_eq!(js_round(-4.5), -4.0);
        assert_eq!(js_round(4.499_999_999_999_999), 4.0);
        assert_eq!(js_round(0.49999999999999994), 0.0);
        assert_eq!(flush_seconds(1_000_000_000), 1.0);
        assert_eq!(flush_seconds(10_000_000_000), 10.0);
        assert_eq!(flush_seconds(1_500_000_000), 1.5);
    }

    #[test]
    fn four_values_by_hand() {
        // Sorted 100 200 300 400; sum 1000, mean 250, squares 10000+40000+90000+160000.
        // Deviations ±150, ±50: (22500·2 + 2500·2) / 4 = 12500, std = √12500.
        // 90%: round(0.9·4 = 3.6) = 4 values, so the threshold covers everything.
        let s = run(&[300.0, 100.0, 400.0, 200.0], 4.0, 10.0, &[90.0]);
        assert_eq!(get(&s, "median"), 250.0);
        assert_eq!(get(&s, "mean"), 250.0);
        assert_eq!(get(&s, "sum"), 1000.0);
        assert_eq!(get(&s, "sum_squares"), 300_000.0);
        assert_eq!(get(&s, "std"), 12_500f64.sqrt());
        assert_eq!(get(&s, "lower"), 100.0);
        assert_eq!(get(&s, "upper"), 400.0);
        assert_eq!(get(&s, "count"), 4.0);
        assert_eq!(get(&s, "count_ps"), 0.4);
        assert_eq!(get(&s, "count_90"), 4.0);
        assert_eq!(get(&s, "upper_90"), 400.0);
        assert_eq!(get(&s, "sum_90"), 1000.0);
        assert_eq!(get(&s, "mean_90"), 250.0);
        assert_eq!(get(&s, "sum_squares_90"), 300_000.0);
    }

    #[test]
    fn math_round_decides_how_many_values_a_threshold_takes() {
        // Five values, 90%: 0.9·5 = 4.5, which Math.round takes up to 5 (floor or
        // round-half-even would say 4 and give upper_90 = 4).
        // 50%: 2.5 → 3 values 1,2,3. -50: the top 3 → 3,4,5, lower_top50 = 3.
        // 10%: 0.5 → 1 value. -10: the top 1 → 5.
        let s = run(
            &[5.0, 3.0, 1.0, 4.0, 2.0],
            5.0,
            1.0,
            &[90.0, 50.0, -50.0, 10.0, -10.0],
        );
        assert_eq!(get(&s, "count_90"), 5.0);
        assert_eq!(get(&s, "upper_90"), 5.0);
        assert_eq!(get(&s, "sum_90"), 15.0);
        assert_eq!(get(&s, "mean_90"), 3.0);
        assert_eq!(get(&s, "count_50"), 3.0);
        assert_eq!(get(&s, "upper_50"), 3.0);
        assert_eq!(get(&s, "sum_50"), 6.0);
        assert_eq!(get(&s, "sum_squares_50"), 14.0);
        assert_eq!(get(&s, "mean_50"), 2.0);
        assert_eq!(get(&s, "count_top50"), 3.0);
        assert_eq!(get(&s, "lower_top50"), 3.0);
        assert_eq!(get(&s, "sum_top50"), 12.0);
        assert_eq!(get(&s, "sum_squares_top50"), 50.0);
        assert_eq!(get(&s, "mean_top50"), 4.0);
        assert_eq!(get(&s, "count_10"), 1.0);
        assert_eq!(get(&s, "upper_10"), 1.0);
        assert_eq!(get(&s, "lower_top10"), 5.0);
        assert_eq!(get(&s, "sum_top10"), 5.0);
        assert!(!has(&s, "upper_top50") && !has(&s, "lower_50"));
        assert_eq!(get(&s, "median"), 3.0);
    }

    #[test]
    fn a_threshold_that_rounds_to_nothing_is_skipped() {
        // 1% of 10 values: round(0.1) = 0, so Etsy writes no *_1 line at all.
        let s = run(
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
            10.0,
            1.0,
            &[1.0],
        );
        assert!(!has(&s, "count_1") && !has(&s, "upper_1"));
        assert_eq!(s.len(), 9);
    }

    #[test]
    fn one_value_ignores_the_threshold_arithmetic() {
        // With one value Etsy skips the rounding: every threshold covers that value, and even
        // a 1% threshold (which would round to 0 values) is written.
        let s = run(&[42.0], 2.0, 10.0, &[90.0, 1.0, -50.0]);
        for p in ["90", "1"] {
            assert_eq!(get(&s, &format!("count_{p}")), 1.0);
            assert_eq!(get(&s, &format!("upper_{p}")), 42.0);
            assert_eq!(get(&s, &format!("mean_{p}")), 42.0);
            assert_eq!(get(&s, &format!("sum_{p}")), 42.0);
            assert_eq!(get(&s, &format!("sum_squares_{p}")), 1764.0);
        }
        assert_eq!(get(&s, "lower_top50"), 42.0);
        assert_eq!(get(&s, "std"), 0.0);
        assert_eq!(get(&s, "median"), 42.0);
        // The count is the sample-rate-scaled one (one value at @0.5), the sum is not.
        assert_eq!(get(&s, "count"), 2.0);
        assert_eq!(get(&s, "count_ps"), 0.2);
        assert_eq!(get(&s, "sum"), 42.0);
        assert_eq!(get(&s, "mean"), 42.0);
    }

    #[test]
    fn sampled_timers_scale_only_the_count() {
        // 10 and 20 at @0.25: Etsy counts 8 but averages the two received values.
        let s = run(&[20.0, 10.0], 8.0, 2.0, &[]);
        assert_eq!(get(&s, "count"), 8.0);
        assert_eq!(get(&s, "count_ps"), 4.0);
        assert_eq!(get(&s, "sum"), 30.0);
        assert_eq!(get(&s, "mean"), 15.0);
        assert_eq!(get(&s, "median"), 15.0);
        assert_eq!(get(&s, "std"), 5.0);
    }

    #[test]
    fn a_negative_threshold_taking_every_value_is_nan_as_in_etsy() {
        // -99.9 of 10 values: round(9.99) = 10, and Etsy subtracts cumulativeValues[-1].
        let s = run(
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
            10.0,
            1.0,
            &[-99.9],
        );
        assert_eq!(get(&s, "count_top99_9"), 10.0);
        assert_eq!(get(&s, "lower_top99_9"), 1.0);
        assert!(get(&s, "sum_top99_9").is_nan());
        assert!(get(&s, "mean_top99_9").is_nan());
        assert!(get(&s, "sum_squares_top99_9").is_nan());
        // -90 of 5: round(4.5) = 5, every value again; of 6: round(5.4) = 5 of 6 is fine.
        let s = run(&[1.0, 2.0, 3.0, 4.0, 5.0], 5.0, 1.0, &[-90.0]);
        assert!(get(&s, "sum_top90").is_nan());
        let s = run(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 6.0, 1.0, &[-90.0]);
        assert_eq!(get(&s, "sum_top90"), 20.0);
        assert_eq!(get(&s, "lower_top90"), 2.0);
    }

    #[test]
    fn statistics_come_in_etsy_order() {
        let s = run(&[1.0, 2.0], 2.0, 1.0, &[90.0]);
        let order: Vec<&str> = s
            .iter()
            .map(|(n, _)| n.strip_prefix("stats.timers.t.").unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "count_90",
                "mean_90",
                "upper_90",
                "sum_90",
                "sum_squares_90",
                "std",
                "upper",
                "lower",
                "count",
                "count_ps",
                "sum",
                "sum_squares",
                "mean",
                "median"
            ]
        );
    }

    #[test]
    fn an_empty_timer_writes_only_its_counts() {
        let s = run(&[], 0.0, 1.0, &[90.0]);
        assert_eq!(
            s,
            [
                ("stats.timers.t.count".to_owned(), 0.0),
                ("stats.timers.t.count_ps".to_owned(), 0.0)
            ]
        );
    }

    #[test]
    fn a_spilled_timer_keeps_what_can_be_known() {
        // 1000 values 1..=1000, unsampled: the counts, extremes, sum and mean stay exact;
        // the quantile stand-in returns the value at the nearest rank, so what is checked is
        // which ranks are asked for (the median's rank 499.5 rounds to 500, value 501).
        let s = Spilled {
            n: 1000,
            count: 1000.0,
            weighted_sum: 500_500.0,
            min: 1.0,
            max: 1000.0,
        };
        let th = thresholds(&[90.0, -10.0]);
        let mut out = Vec::new();
        timer_spilled(&s, |q| Some((q * 999.0).round() + 1.0), 10.0, &th, &mut out);
        let estimated: Vec<String> = out
            .iter()
            .filter(|s| s.estimated)
            .map(|s| {
                let mut n = String::new();
                write_name(&mut n, true, "t", s.path);
                n
            })
            .collect();
        let s = named(&out);
        assert_eq!(get(&s, "count_90"), 900.0);
        assert_eq!(get(&s, "upper_90"), 900.0);
        assert_eq!(get(&s, "count_top10"), 100.0);
        assert_eq!(get(&s, "lower_top10"), 901.0);
        assert_eq!(get(&s, "sum"), 500_500.0);
        assert_eq!(get(&s, "mean"), 500.5);
        assert_eq!(get(&s, "count_ps"), 100.0);
        assert_eq!(get(&s, "median"), 501.0);
        assert!(!has(&s, "std") && !has(&s, "sum_squares") && !has(&s, "sum_90"));
        assert_eq!(
            estimated,
            [
                "stats.timers.t.upper_90",
                "stats.timers.t.lower_top10",
                "stats.timers.t.median"
            ]
        );
    }

    #[test]
    fn a_sampled_spilled_timer_marks_its_sum_and_mean() {
        // Uniform @0.5: weights 2, weighted sum twice the raw sum.
        let s = Spilled {
            n: 4,
            count: 8.0,
            weighted_sum: 20.0,
            min: 1.0,
            max: 4.0,
        };
        let mut out = Vec::new();
        timer_spilled(&s, |_| None, 1.0, &[], &mut out);
        let sum = out
            .iter()
            .find(|s| {
                s.path
                    == Path::Timer {
                        prefix: "sum",
                        threshold: None,
                    }
            })
            .unwrap();
        assert_eq!((sum.value, sum.estimated), (10.0, true));
        let count = out
            .iter()
            .find(|s| {
                s.path
                    == Path::Timer {
                        prefix: "count",
                        threshold: None,
                    }
            })
            .unwrap();
        assert_eq!((count.value, count.estimated), (8.0, false));
    }
}
