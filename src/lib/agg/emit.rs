//! Writing one series' window state as tlm metric lines (the rules of docs/aggregation.md).

use super::config::{AggConfig, GaugeStat};
use super::state::{CumState, State, Sum};
use crate::error::Result;
use crate::io::Output;
use crate::metric::{Kind, Metric, Temporality, Value};
use crate::ndjson::encode;

/// A running total per group for `--cumulative`: the total and when it started.
pub type Totals = Vec<Option<(Sum, i64)>>;

/// Where a window's lines go, and the per-group memory they need.
pub struct Emitter<'a> {
    pub cfg: &'a AggConfig,
    pub totals: &'a mut Totals,
    pub out: &'a mut Output,
    pub lines: u64,
}

impl Emitter<'_> {
    fn line(&mut self, m: &Metric) -> Result<()> {
        encode(m, self.out.buf());
        self.lines += 1;
        self.out.maybe_write()
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
            State::Dist(d) => {
                m.kind = Kind::Summary;
                m.temporality = Some(Temporality::Delta);
                m.quantiles = d.quantiles(&self.cfg.quantiles);
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
        self.rate(m, c.increase.value(), (c.last_ts - span_start) as f64 / 1e9)
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

/// Marks a line whose value comes from a sketch (quantile sketch, HyperLogLog).
fn mark_estimated(m: &mut Metric) {
    if !m.extra.is_empty() {
        m.extra.push(',');
    }
    m.extra.push_str("\"estimated\":true");
}
