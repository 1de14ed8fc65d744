//! Windowed aggregation: the core that tlm-agg runs on NDJSON and tlm-statsd runs on flushes.
//!
//! Points are grouped by series and by tumbling window of event time (`ts`), aligned to the
//! Unix epoch. A window is written once the newest event time seen passes its end plus the
//! allowed lateness, when the input has been idle past that point on the wall clock, or at the
//! end of input. Output is ordered by window, then series name and tags, so runs diff cleanly.

pub mod series;
pub mod state;

use crate::error::Result;
use crate::io::Output;
use crate::log::RateLimit;
use crate::metric::{Kind, Metric, Temporality, Value};
use crate::ndjson::encode;
use crate::stream::StreamSink;
use crate::time::align_down;
use hashbrown::HashMap;
use series::{SeriesId, SeriesTable};
use state::State;
use std::collections::BTreeMap;

/// A statistic written for gauges (`--gauge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GaugeStat {
    /// The value with the newest `ts`, under the series' own name.
    Last,
    Min,
    Max,
    Mean,
    /// Number of points, as a delta counter `NAME.count`.
    Count,
    Sum,
    /// Every statistic above.
    All,
}

impl GaugeStat {
    pub const EACH: [GaugeStat; 6] = [
        GaugeStat::Last,
        GaugeStat::Min,
        GaugeStat::Max,
        GaugeStat::Mean,
        GaugeStat::Count,
        GaugeStat::Sum,
    ];

    /// Expands `all` and removes repeats, keeping the order given.
    pub fn expand(list: &[GaugeStat]) -> Vec<GaugeStat> {
        let mut out: Vec<GaugeStat> = Vec::new();
        for &s in list {
            let items: &[GaugeStat] = if s == GaugeStat::All {
                &GaugeStat::EACH
            } else {
                std::slice::from_ref(&s)
            };
            for &i in items {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out
    }
}

#[derive(Clone, Debug)]
pub struct AggConfig {
    /// Window length in ns.
    pub window: i64,
    /// How long after a window's end points for it are still accepted, in ns.
    pub lateness: i64,
    pub gauge: Vec<GaugeStat>,
    pub quantiles: Vec<f64>,
    pub max_series: usize,
}

impl Default for AggConfig {
    fn default() -> Self {
        AggConfig {
            window: 10 * crate::time::NS_PER_SEC,
            lateness: 0,
            gauge: vec![GaugeStat::Last],
            quantiles: vec![0.5, 0.9, 0.99],
            max_series: usize::MAX,
        }
    }
}

/// Counts of one aggregation run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggStats {
    pub points: u64,
    pub late: u64,
    pub refused: u64,
    pub rejected: u64,
    pub windows: u64,
    pub emitted: u64,
}

pub struct Aggregator {
    cfg: AggConfig,
    series: SeriesTable,
    windows: BTreeMap<i64, HashMap<SeriesId, State>>,
    gauge_last: Vec<Option<Value>>,
    /// Newest event time seen.
    watermark: i64,
    /// Windows starting before this instant have been written; their points are late.
    closed_before: i64,
    stats: AggStats,
    limit: RateLimit,
    scratch: Metric,
}

fn keep_all(_: &str) -> bool {
    true
}

impl Aggregator {
    pub fn new(cfg: AggConfig) -> Aggregator {
        Aggregator {
            cfg,
            series: SeriesTable::default(),
            windows: BTreeMap::new(),
            gauge_last: Vec::new(),
            watermark: i64::MIN,
            closed_before: i64::MIN,
            stats: AggStats::default(),
            limit: RateLimit::default(),
            scratch: Metric::default(),
        }
    }

    pub fn stats(&self) -> AggStats {
        self.stats
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Adds one point; closes windows the newest event time has moved past.
    pub fn observe(&mut self, m: &Metric, out: &mut Output) -> Result<()> {
        self.stats.points += 1;
        let start = align_down(m.ts, self.cfg.window);
        if start < self.closed_before {
            self.stats.late += 1;
            self.warn(
                "late_point",
                m,
                "its window was already written (raise --lateness)",
            );
            return Ok(());
        }
        let Some(id) = self.series.intern(m, &keep_all, self.cfg.max_series) else {
            self.stats.refused += 1;
            self.warn("series_refused", m, "--max-series reached");
            return Ok(());
        };
        self.add(start, id, m);
        if m.ts > self.watermark {
            self.watermark = m.ts;
            self.close_until(self.watermark.saturating_sub(self.cfg.lateness), out)?;
        }
        Ok(())
    }

    fn add(&mut self, start: i64, id: SeriesId, m: &Metric) {
        let table = self.windows.entry(start).or_default();
        let idx = id as usize;
        let base = self.gauge_last.get(idx).copied().flatten();
        let outcome = match table.get_mut(&id) {
            Some(st) => st.observe(m),
            None => {
                table.insert(id, State::new(m, base));
                Ok(())
            }
        };
        if let Err(reason) = outcome {
            self.stats.rejected += 1;
            self.warn("point_rejected", m, reason);
            return;
        }
        if m.kind == Kind::Gauge {
            if self.gauge_last.len() <= idx {
                self.gauge_last.resize(idx + 1, None);
            }
            self.gauge_last[idx] = self
                .windows
                .get(&start)
                .and_then(|t| t.get(&id))
                .and_then(State::gauge_last);
        }
    }

    fn warn(&mut self, event: &str, m: &Metric, reason: &str) {
        if let Some(suppressed) = self.limit.allow() {
            crate::log!(
                Warn,
                event,
                name = m.name,
                ts = m.ts,
                reason = reason,
                suppressed = suppressed
            );
        }
    }

    /// Writes every window that ends at or before `until`.
    fn close_until(&mut self, until: i64, out: &mut Output) -> Result<()> {
        while let Some((&start, _)) = self.windows.first_key_value() {
            if start.saturating_add(self.cfg.window) > until {
                break;
            }
            self.write_first(out)?;
        }
        let boundary = align_down(until, self.cfg.window);
        self.closed_before = self.closed_before.max(boundary);
        Ok(())
    }

    fn write_first(&mut self, out: &mut Output) -> Result<()> {
        let Some((start, table)) = self.windows.pop_first() else {
            return Ok(());
        };
        let mut ids: Vec<SeriesId> = table.keys().copied().collect();
        let series = &self.series;
        ids.sort_unstable_by(|&a, &b| series.cmp(a, b));
        let end = start + self.cfg.window;
        let mut table = table;
        for id in ids {
            if let Some(mut st) = table.remove(&id) {
                self.scratch.clear();
                self.series.describe(id, &mut self.scratch);
                self.stats.emitted += emit(&self.cfg, &mut st, &mut self.scratch, start, end, out)?;
            }
        }
        self.stats.windows += 1;
        self.closed_before = self.closed_before.max(end);
        Ok(())
    }

    /// Writes all open windows (end of input, termination signal).
    pub fn flush_all(&mut self, out: &mut Output) -> Result<()> {
        while !self.windows.is_empty() {
            self.write_first(out)?;
        }
        Ok(())
    }

    fn log_summary(&self) {
        let s = self.stats;
        let per_series = if self.series.is_empty() {
            0
        } else {
            self.series.heap_bytes() / self.series.len()
        };
        crate::log!(
            Info,
            "summary",
            points = s.points,
            series = self.series.len(),
            windows = s.windows,
            emitted = s.emitted,
            late = s.late,
            refused = s.refused,
            rejected = s.rejected,
            series_table_bytes_per_series = per_series
        );
    }
}

impl StreamSink for Aggregator {
    fn batch(&mut self, metrics: &[Metric], out: &mut Output) -> Result<()> {
        for m in metrics {
            self.observe(m, out)?;
        }
        Ok(())
    }

    /// With the input idle, windows whose end (plus lateness) has passed on the wall clock
    /// are written, so a quiet stream still delivers its last window promptly.
    fn tick(&mut self, now: i64, idle: bool, out: &mut Output) -> Result<()> {
        if idle && !self.windows.is_empty() {
            self.close_until(now.saturating_sub(self.cfg.lateness), out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        self.flush_all(out)?;
        self.log_summary();
        Ok(())
    }
}

/// Writes the lines of one series' window state; returns how many.
fn emit(
    cfg: &AggConfig,
    st: &mut State,
    m: &mut Metric,
    start: i64,
    end: i64,
    out: &mut Output,
) -> Result<u64> {
    m.ts = end;
    m.start_ts = Some(start);
    let mut lines = 0;
    let mut line = |m: &Metric, out: &mut Output| -> Result<()> {
        encode(m, out.buf());
        lines += 1;
        out.maybe_write()
    };
    match st {
        State::Delta(sum) => {
            m.value = Some(sum.value());
            line(m, out)?;
        }
        State::Cumulative { last, start_ts, .. } => {
            m.value = Some(*last);
            m.start_ts = *start_ts;
            line(m, out)?;
        }
        State::Gauge(g) => {
            let base_len = m.name.len();
            for &stat in &cfg.gauge {
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
                    m.name.push_str(stat_suffix(stat));
                }
                line(m, out)?;
            }
            m.name.truncate(base_len);
        }
        State::Dist(d) => {
            m.kind = Kind::Summary;
            m.temporality = Some(Temporality::Delta);
            m.quantiles = d.quantiles(&cfg.quantiles);
            m.count = Some(d.weight.round() as u64);
            m.sum = Some(d.sum);
            (m.min, m.max) = if d.values.is_empty() {
                (None, None)
            } else {
                (Some(d.min), Some(d.max))
            };
            line(m, out)?;
        }
        State::Set(s) => {
            (m.kind, m.temporality, m.start_ts) = (Kind::Gauge, None, None);
            m.value = Some(Value::U64(s.len() as u64));
            line(m, out)?;
        }
        State::Buckets(b) => {
            m.bounds = std::mem::take(&mut b.bounds);
            m.counts = std::mem::take(&mut b.counts);
            (m.count, m.sum, m.min, m.max) = (Some(b.count), Some(b.sum), b.min, b.max);
            line(m, out)?;
        }
    }
    Ok(lines)
}

fn stat_suffix(s: GaugeStat) -> &'static str {
    match s {
        GaugeStat::Min => "min",
        GaugeStat::Max => "max",
        GaugeStat::Mean => "mean",
        GaugeStat::Count => "count",
        GaugeStat::Sum => "sum",
        GaugeStat::Last | GaugeStat::All => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ndjson::Decoder;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn run(cfg: AggConfig, lines: &[&str]) -> Vec<String> {
        let shared = Shared::default();
        let mut out = Output::to(Box::new(shared.clone()));
        let mut agg = Aggregator::new(cfg);
        let mut dec = Decoder::default();
        let mut m = Metric::default();
        for l in lines {
            dec.decode(l.as_bytes(), &mut m, || 0).unwrap();
            agg.observe(&m, &mut out).unwrap();
        }
        agg.finish(&mut out).unwrap();
        out.flush().unwrap();
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    const S: i64 = 1_000_000_000;

    #[test]
    fn delta_counters_sum_per_window_in_order() {
        let lines = [
            format!(
                r#"{{"name":"b","kind":"counter","temporality":"delta","value":1,"ts":{}}}"#,
                S
            ),
            format!(
                r#"{{"name":"a","kind":"counter","temporality":"delta","value":2,"ts":{}}}"#,
                2 * S
            ),
            format!(
                r#"{{"name":"b","kind":"counter","temporality":"delta","value":3,"ts":{}}}"#,
                9 * S
            ),
            format!(
                r#"{{"name":"b","kind":"counter","temporality":"delta","value":5,"ts":{}}}"#,
                10 * S
            ),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let out = run(AggConfig::default(), &refs);
        assert_eq!(
            out,
            vec![
                format!(
                    r#"{{"name":"a","kind":"counter","temporality":"delta","value":2,"ts":{},"start_ts":0}}"#,
                    10 * S
                ),
                format!(
                    r#"{{"name":"b","kind":"counter","temporality":"delta","value":4,"ts":{},"start_ts":0}}"#,
                    10 * S
                ),
                format!(
                    r#"{{"name":"b","kind":"counter","temporality":"delta","value":5,"ts":{},"start_ts":{}}}"#,
                    20 * S,
                    10 * S
                ),
            ]
        );
    }

    #[test]
    fn gauge_statistics() {
        let cfg = AggConfig {
            gauge: GaugeStat::expand(&[GaugeStat::All]),
            ..AggConfig::default()
        };
        let out = run(
            cfg,
            &[
                r#"{"name":"g","kind":"gauge","value":4,"ts":2}"#,
                r#"{"name":"g","kind":"gauge","value":1,"ts":1}"#,
            ],
        );
        let names: Vec<String> = out
            .iter()
            .map(|l| l[9..l.find("\",").unwrap()].to_owned())
            .collect();
        assert_eq!(
            names,
            vec!["g", "g.min", "g.max", "g.mean", "g.count", "g.sum"]
        );
        assert!(
            out[0].contains(r#""value":4,"#),
            "last is the newest ts: {}",
            out[0]
        );
        assert!(out[3].contains(r#""value":2.5,"#));
        assert!(out[4].contains(r#""kind":"counter","temporality":"delta","value":2,"#));
    }

    #[test]
    fn late_points_are_counted_not_mixed_in() {
        let shared = Shared::default();
        let mut out = Output::to(Box::new(shared));
        let mut agg = Aggregator::new(AggConfig::default());
        let mut dec = Decoder::default();
        let mut m = Metric::default();
        for l in [
            format!(r#"{{"name":"g","kind":"gauge","value":1,"ts":{}}}"#, S),
            format!(r#"{{"name":"g","kind":"gauge","value":1,"ts":{}}}"#, 15 * S),
            format!(r#"{{"name":"g","kind":"gauge","value":1,"ts":{}}}"#, 2 * S),
        ] {
            dec.decode(l.as_bytes(), &mut m, || 0).unwrap();
            agg.observe(&m, &mut out).unwrap();
        }
        assert_eq!(agg.stats().late, 1);
        assert_eq!(agg.stats().windows, 1);
    }

    #[test]
    fn distributions_become_summaries() {
        let out = run(
            AggConfig {
                quantiles: vec![0.5],
                ..AggConfig::default()
            },
            &[r#"{"name":"d","kind":"distribution","unit":"ms","values":[1,2,3,4],"ts":1}"#],
        );
        assert_eq!(
            out,
            vec![
                r#"{"name":"d","kind":"summary","temporality":"delta","unit":"ms","quantiles":[[0.5,2.5]],"count":4,"sum":10.0,"min":1.0,"max":4.0,"ts":10000000000,"start_ts":0}"#
            ]
        );
    }
}
