//! Writing one series' window state as tlm metric lines (the rules of docs/aggregation.md).

use super::config::{AggConfig, GaugeStat, Style};
use super::etsy::{self, Path, Stat, Unit};
use super::state::{CumState, DistState, State, Sum};
use crate::error::Result;
use crate::metric::{Kind, Metric, Temporality, Value};
use crate::ndjson::encode::{encode_cached, LineCache};

/// A running total per group for `--cumulative`: the total and when it started.
pub type Totals = Vec<Option<(Sum, i64)>>;

/// Where a window's lines go, and the per-group memory they need.
pub struct Emitter<'a> {
    pub cfg: &'a AggConfig,
    pub totals: &'a mut Totals,
    pub buf: &'a mut Vec<u8>,
    /// The tags of the series being written, and the window's timestamps, encoded once.
    pub cache: &'a mut LineCache,
    pub lines: u64,
}

impl Emitter<'_> {
    /// Writes `m` with the tags in `self.cache` (`m.tags` is not read).
    fn line(&mut self, m: &Metric) -> Result<()> {
        encode_cached(m, self.cache, self.buf);
        self.lines += 1;
        Ok(())
    }

    /// Writes the lines of group `gid`'s state; `m` holds its name, kind, unit and tags.
    pub fn emit(
        &mut self,
        gid: usize,
        st: &mut State,
        m: &mut Metric,
        start: i64,
        end: i64,
    ) -> Result<()> {
        m.ts = end;
        m.start_ts = Some(start);
        // Etsy has no histograms or summaries: those keep their tlm lines in either style.
        if self.cfg.style == Style::Statsd && !matches!(st, State::Buckets(_)) {
            return self.statsd(st, m, start, end);
        }
        match st {
            State::Delta(sum) => self.delta(gid, *sum, m, start, end),
            State::Cumulative(c) => self.cumulative(c, m, start),
            State::Gauge(g) => {
                let base_len = m.name.len();
                for &stat in &self.cfg.gauge {
                    m.name.truncate(base_len);
                    (m.kind, m.temporality, m.start_ts) = (Kind::Gauge, None, None);
                    m.value = Some(match stat {
                        GaugeStat::Last | GaugeStat::All => g.last,
                        GaugeStat::Min => g.min,
                        GaugeStat::Max => g.max,
                        GaugeStat::Mean => Value::F64(g.mean()),
                        GaugeStat::Sum => Value::F64(g.sum),
                        GaugeStat::Count => {
                            (m.kind, m.temporality, m.start_ts) =
                                (Kind::Counter, Some(Temporality::Delta), Some(start));
                            Value::U64(g.count)
                        }
                    });
                    if !matches!(stat, GaugeStat::Last | GaugeStat::All) {
                        m.name.push('.');
                        m.name.push_str(stat.suffix());
                    }
                    self.line(m)?;
                }
                m.name.truncate(base_len);
                Ok(())
            }
            State::Dist(d) if !d.hist().is_empty() => {
                (m.kind, m.temporality) = (Kind::Histogram, Some(Temporality::Delta));
                let bounds = self.cfg.limits.buckets.as_deref().unwrap_or_default();
                m.bounds.clear();
                m.bounds.extend_from_slice(bounds);
                m.counts.clear();
                m.counts.extend(d.hist().iter().map(|&w| w.round() as u64));
                m.count = Some(d.weight.round() as u64);
                m.sum = Some(d.sum);
                (m.min, m.max) = (Some(d.min), Some(d.max));
                self.line(m)
            }
            State::Dist(d) => {
                m.kind = Kind::Summary;
                m.temporality = Some(Temporality::Delta);
                m.quantiles.clear();
                d.settle_totals();
                d.quantiles_into(&self.cfg.quantiles, &mut m.quantiles);
                m.count = Some(d.weight.round() as u64);
                m.sum = Some(d.sum);
                (m.min, m.max) = if d.n == 0 {
                    (None, None)
                } else {
                    (Some(d.min), Some(d.max))
                };
                if d.estimated() {
                    mark_estimated(m);
                }
                self.line(m)
            }
            State::Set(s) => {
                (m.kind, m.temporality, m.start_ts) = (Kind::Gauge, None, None);
                let (count, estimated) = s.count();
                m.value = Some(Value::U64(count));
                if estimated {
                    mark_estimated(m);
                }
                self.line(m)
            }
            State::Buckets(b) => {
                m.bounds = std::mem::take(&mut b.bounds);
                m.counts = std::mem::take(&mut b.counts);
                (m.count, m.sum, m.min, m.max) = (Some(b.count), Some(b.sum), b.min, b.max);
                self.line(m)
            }
        }
    }

    fn delta(&mut self, gid: usize, sum: Sum, m: &mut Metric, start: i64, end: i64) -> Result<()> {
        if self.cfg.cumulative {
            if self.totals.len() <= gid {
                self.totals.resize(gid + 1, None);
            }
            let (total, since) = self.totals[gid].get_or_insert((Sum::default(), start));
            total.merge(&sum);
            m.temporality = Some(Temporality::Cumulative);
            m.value = Some(total.value());
            m.start_ts = Some(*since);
        } else {
            m.value = Some(sum.value());
        }
        self.line(m)?;
        if self.cfg.rate {
            self.rate(m, sum.value(), (end - start) as f64 / 1e9)?;
        }
        Ok(())
    }

    fn cumulative(&mut self, c: &CumState, m: &mut Metric, start: i64) -> Result<()> {
        if self.cfg.cumulative {
            m.value = Some(c.last);
            m.start_ts = c.start_ts;
            return self.line(m);
        }
        // The first reading of a series is only a baseline: no increase, no rate yet.
        let Some(span_start) = c.span_start else {
            return Ok(());
        };
        m.temporality = Some(Temporality::Delta);
        m.value = Some(c.increase.value());
        m.start_ts = Some(start);
        self.line(m)?;
        let span = if self.cfg.rate_per_window {
            self.cfg.window
        } else {
            c.last_ts - span_start
        };
        self.rate(m, c.increase.value(), span as f64 / 1e9)
    }

    /// Writes `NAME.rate`, a gauge per second with the source's tags.
    fn rate(&mut self, m: &mut Metric, amount: Value, seconds: f64) -> Result<()> {
        if seconds <= 0.0 {
            return Ok(());
        }
        let (name_len, unit_len) = (m.name.len(), m.unit.len());
        m.name.push_str(".rate");
        if !m.unit.is_empty() {
            m.unit.push_str("/s");
        }
        (m.kind, m.temporality, m.start_ts) = (Kind::Gauge, None, None);
        m.value = Some(Value::F64(amount.as_f64() / seconds));
        self.line(m)?;
        m.name.truncate(name_len);
        m.unit.truncate(unit_len);
        Ok(())
    }
}

/// `--style statsd`: what each statsd line of a series derives its own name, unit and extra
/// fields from.
struct StatsdKey {
    name: String,
    unit: String,
    extra_len: usize,
}

impl Emitter<'_> {
    /// Writes Etsy statsd's statistics of one series and window as gauges under the names
    /// Etsy's Graphite backend gives them (docs/aggregation.md, "statsd style").
    fn statsd(&mut self, st: &mut State, m: &mut Metric, start: i64, end: i64) -> Result<()> {
        let cfg = self.cfg;
        let seconds = etsy::flush_seconds(end - start);
        let key = StatsdKey {
            name: std::mem::take(&mut m.name),
            unit: std::mem::take(&mut m.unit),
            extra_len: m.extra.len(),
        };
        (m.kind, m.temporality, m.start_ts) = (Kind::Gauge, None, None);
        match st {
            State::Delta(sum) => self.statsd_counter(m, &key, sum.value(), seconds),
            // A running total's increase in the window is what a statsd counter would have
            // counted; the first reading is only a baseline, as in the tlm style.
            State::Cumulative(c) if c.span_start.is_some() => {
                self.statsd_counter(m, &key, c.increase.value(), seconds)
            }
            State::Cumulative(_) => Ok(()),
            State::Gauge(g) => self.statsd_line(m, &key, Path::Gauge, g.last, Unit::Same, false),
            State::Set(s) => {
                let (count, estimated) = s.count();
                let v = Value::U64(count);
                self.statsd_line(m, &key, Path::SetCount, v, Unit::Dimensionless, estimated)
            }
            State::Dist(d) => {
                let mut stats = Vec::new();
                timer_stats(d, seconds, &cfg.statsd.thresholds, &mut stats);
                for s in &stats {
                    let v = stat_value(s);
                    self.statsd_line(m, &key, s.path, v, s.unit, s.estimated)?;
                }
                Ok(())
            }
            // Written as tlm lines by `emit`.
            State::Buckets(_) => Ok(()),
        }
    }

    fn statsd_counter(
        &mut self,
        m: &mut Metric,
        key: &StatsdKey,
        count: Value,
        seconds: f64,
    ) -> Result<()> {
        let rate = Value::F64(count.as_f64() / seconds);
        self.statsd_line(m, key, Path::CounterRate, rate, Unit::PerSecond, false)?;
        self.statsd_line(m, key, Path::CounterCount, count, Unit::Same, false)
    }

    fn statsd_line(
        &mut self,
        m: &mut Metric,
        key: &StatsdKey,
        path: Path<'_>,
        value: Value,
        unit: Unit,
        estimated: bool,
    ) -> Result<()> {
        m.name.clear();
        etsy::write_name(
            &mut m.name,
            self.cfg.statsd.legacy_namespace,
            &key.name,
            path,
        );
        m.unit.clear();
        if unit != Unit::Dimensionless {
            m.unit.push_str(&key.unit);
        }
        if unit == Unit::PerSecond && !key.unit.is_empty() {
            m.unit.push_str("/s");
        }
        m.value = Some(value);
        m.extra.truncate(key.extra_len);
        if estimated {
            mark_estimated(m);
        }
        self.line(m)
    }
}

/// Etsy's timer statistics from the exact values, or what survives of them in the sketch.
fn timer_stats<'t>(
    d: &mut DistState,
    seconds: f64,
    thresholds: &'t [etsy::Threshold],
    out: &mut Vec<Stat<'t>>,
) {
    match d.sketch() {
        None => {
            // `etsy::timer` sorts the values in place, which unpairs them from their weights;
            // Etsy's arithmetic has no use for the weights, and the state is dropped after.
            d.drop_weights();
            etsy::timer(&mut d.values, d.weight, seconds, thresholds, out);
        }
        Some(sk) => {
            let spilled = etsy::Spilled {
                n: d.n,
                count: d.weight,
                weighted_sum: d.sum,
                min: d.min,
                max: d.max,
            };
            etsy::timer_spilled(&spilled, |q| sk.quantile(q), seconds, thresholds, out);
        }
    }
}

/// Counts stay integers when they are whole (a sampled count such as 1/0.3 is not).
fn stat_value(s: &Stat<'_>) -> Value {
    const EXACT: f64 = (1u64 << 53) as f64;
    if s.count && s.value.fract() == 0.0 && (0.0..=EXACT).contains(&s.value) {
        Value::U64(s.value as u64)
    } else {
        Value::F64(s.value)
    }
}

/// Marks a line whose value comes from a sketch (quantile sketch, HyperLogLog).
fn mark_estimated(m: &mut Metric) {
    if !m.extra.is_empty() {
        m.extra.push(',');
    }
    m.extra.push_str("\"estimated\":true");
}
