//! Looking into a running aggregation from outside the stream: what a series' open windows
//! would write now, forgetting series, and listing every series known (tlm-statsd's HTTP
//! API and SIGUSR2 dump).

use super::emit::{Emitter, Totals};
use super::series::SeriesId;
use super::Aggregator;
use crate::metric::Metric;
use crate::ndjson::encode::{write_str, LineCache};

impl Aggregator {
    /// The lines every open window would write for the series named `name` if it closed
    /// now, as NDJSON; nothing is changed.
    pub fn peek(&self, name: &str) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut m = Metric::default();
        for shard in &self.shards {
            let ids = ids_named(&shard.groups, name, &mut m);
            for (&start, window) in &shard.windows {
                for &id in &ids {
                    let Some(st) = window.get(id) else { continue };
                    let mut st = st.clone();
                    let mut totals = Totals::new();
                    let mut cache = LineCache::default();
                    let mut emitter = Emitter {
                        cfg: &self.cfg,
                        totals: &mut totals,
                        buf: &mut buf,
                        cache: &mut cache,
                        lines: 0,
                    };
                    m.clear();
                    shard.groups.describe_json(id, &mut m, emitter.cache);
                    let _ =
                        emitter.emit(id as usize, &mut st, &mut m, start, start + self.cfg.window);
                }
            }
        }
        buf
    }

    /// Forgets the series named `name`: what their open windows hold and the last gauge
    /// value a `+N` would add to. Returns how many series there were.
    pub fn expire(&mut self, name: &str) -> usize {
        let mut m = Metric::default();
        let mut n = 0;
        for shard in &mut self.shards {
            let ids = ids_named(&shard.groups, name, &mut m);
            for &id in &ids {
                for window in shard.windows.values_mut() {
                    window.remove(id);
                }
                shard.forget_gauge(id);
            }
            n += ids.len();
        }
        n
    }

    /// One JSON line per known series: name, kind, temporality, unit and tags.
    pub fn dump(&mut self, out: &mut Vec<u8>) -> usize {
        let mut m = Metric::default();
        let mut n = 0;
        for shard in &mut self.shards {
            let mut ids: Vec<SeriesId> = (0..shard.groups.len() as SeriesId).collect();
            shard.groups.sort(&mut ids);
            for id in ids {
                m.clear();
                shard.groups.describe(id, &mut m);
                series_line(&m, out);
                n += 1;
            }
        }
        n
    }
}

fn ids_named(groups: &super::series::SeriesTable, name: &str, m: &mut Metric) -> Vec<SeriesId> {
    (0..groups.len() as SeriesId)
        .filter(|&id| {
            m.clear();
            groups.describe(id, m);
            m.name == name
        })
        .collect()
}

fn series_line(m: &Metric, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"name\":");
    write_str(out, &m.name);
    out.extend_from_slice(b",\"kind\":");
    write_str(out, m.kind.as_str());
    if let Some(t) = m.temporality {
        out.extend_from_slice(b",\"temporality\":");
        write_str(out, t.as_str());
    }
    if !m.unit.is_empty() {
        out.extend_from_slice(b",\"unit\":");
        write_str(out, &m.unit);
    }
    if !m.tags.is_empty() {
        out.extend_from_slice(b",\"tags\":{");
        for (i, (k, v)) in m.tags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, k);
            out.push(b':');
            write_str(out, v);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::AggConfig;
    use crate::io::Output;
    use crate::metric::{Temporality, Value};

    #[test]
    fn peek_expire_and_dump_see_open_windows() {
        let mut agg = Aggregator::new(AggConfig::default());
        agg.hold_windows();
        let mut out = Output::to(Box::new(std::io::sink()));
        let c = Metric::counter("hits", Temporality::Delta, Value::U64(3), 1_000_000_000)
            .with_tag("host", "a");
        agg.observe(&c, &mut out).unwrap();
        agg.observe(&c, &mut out).unwrap();
        agg.observe(
            &Metric::gauge("temp", Value::I64(-4), 1_000_000_000),
            &mut out,
        )
        .unwrap();
        let peeked = String::from_utf8(agg.peek("hits")).unwrap();
        assert!(peeked.contains("\"value\":6"), "{peeked}");
        assert!(agg.peek("nothing").is_empty());
        let mut dump = Vec::new();
        assert_eq!(agg.dump(&mut dump), 2);
        let dump = String::from_utf8(dump).unwrap();
        assert!(
            dump.contains(
                r#"{"name":"hits","kind":"counter","temporality":"delta","tags":{"host":"a"}}"#
            ),
            "{dump}"
        );
        assert_eq!(agg.expire("hits"), 1);
        assert!(agg.peek("hits").is_empty());
        assert!(!agg.peek("temp").is_empty());
    }
}

#[cfg(test)]
mod expire_tests {
    use crate::agg::{AggConfig, Aggregator, Idle};
    use crate::io::output::Captured;
    use crate::io::Output;
    use crate::metric::{Metric, Temporality, Value};

    const S: i64 = 1_000_000_000;

    #[test]
    fn expired_series_leave_the_table_and_the_rest_keep_their_state() {
        let cfg = AggConfig {
            window: S,
            idle: Idle::Report {
                expire: Some(2 * S),
            },
            ..AggConfig::default()
        };
        let mut agg = Aggregator::new(cfg);
        agg.hold_windows();
        let buf = Captured::default();
        let mut out = Output::to(Box::new(buf.clone()));
        let counter = |name: &str, v: u64, ts: i64| {
            Metric::counter(name, Temporality::Delta, Value::U64(v), ts)
        };
        for i in 0..1000 {
            agg.observe(&counter(&format!("gone.{i}"), 1, S / 2), &mut out)
                .unwrap();
        }
        agg.observe(&Metric::gauge("kept.g", Value::I64(7), S / 2), &mut out)
            .unwrap();
        agg.observe(&counter("kept.c", 2, S / 2), &mut out).unwrap();
        agg.advance(S, &mut out).unwrap();
        assert_eq!(agg.series_count(), 1002);
        agg.observe(&counter("kept.c", 3, S + S / 2), &mut out)
            .unwrap();
        agg.observe(&Metric::gauge("kept.g", Value::I64(8), S + S / 2), &mut out)
            .unwrap();
        agg.advance(2 * S, &mut out).unwrap();
        assert_eq!(
            agg.series_count(),
            1002,
            "idle for one second: reported as idle"
        );
        agg.observe(&counter("kept.c", 5, 2 * S + S / 2), &mut out)
            .unwrap();
        agg.advance(3 * S, &mut out).unwrap();
        assert_eq!(agg.series_count(), 2, "idle for two: expired and removed");
        out.flush().unwrap();
        let text = buf.text();
        let last: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(&format!("\"ts\":{}", 3 * S)))
            .collect();
        assert!(
            last.iter()
                .any(|l| l.contains(r#""name":"kept.c","#) && l.contains(r#""value":5"#)),
            "{last:?}"
        );
        assert!(
            last.iter()
                .any(|l| l.contains(r#""name":"kept.g","#) && l.contains(r#""value":8"#)),
            "{last:?}"
        );
        let gone_at = |ts: i64| {
            text.lines()
                .filter(|l| l.contains("gone.") && l.contains(&format!("\"ts\":{ts},")))
                .count()
        };
        assert_eq!(gone_at(2 * S), 1000, "1000 idle counters at 0");
        assert_eq!(gone_at(3 * S), 0);
    }
}
