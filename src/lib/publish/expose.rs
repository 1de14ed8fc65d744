//! The latest value of every series as a Prometheus exposition: what `--serve` answers a
//! scrape with, and what a `pushgateway://` destination pushes.
//!
//! Both want state, not a stream: one sample set per series, each family under one
//! `# TYPE` line, no timestamps (the scraper or the gateway stamps them). Series that stop
//! arriving are dropped after `--serve-ttl`, so a scrape shows staleness instead of freezing
//! the last value forever.

use crate::encode::{Encoder, PrometheusEncoder, Unsupported};
use crate::httpd::{error, only_get, Handler, Reply, Request};
use crate::metric::Metric;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

struct Series {
    /// The sample lines, each ending in a newline.
    lines: Vec<u8>,
    seen_ns: i64,
}

struct Family {
    kind: String,
    series: BTreeMap<Vec<u8>, Series>,
}

/// The latest samples per series, grouped by family.
pub struct Latest {
    encoder: PrometheusEncoder,
    scratch: Vec<u8>,
    key: Vec<u8>,
    families: BTreeMap<String, Family>,
}

impl Default for Latest {
    fn default() -> Self {
        Latest {
            encoder: PrometheusEncoder::untimed(),
            scratch: Vec::new(),
            key: Vec::new(),
            families: BTreeMap::new(),
        }
    }
}

impl Latest {
    /// Replaces the samples of `m`'s series.
    pub fn update(&mut self, m: &Metric, now_ns: i64) -> Result<(), Unsupported> {
        self.scratch.clear();
        // A fresh exposition per metric: its first line is always the family's TYPE line.
        self.encoder.finish(&mut self.scratch);
        self.scratch.clear();
        self.encoder.encode(m, &mut self.scratch)?;
        let text = &self.scratch;
        let Some(first_end) = text.iter().position(|&b| b == b'\n') else {
            return Ok(());
        };
        let type_line = String::from_utf8_lossy(&text[..first_end]);
        let Some((family, kind)) = type_line
            .strip_prefix("# TYPE ")
            .and_then(|t| t.split_once(' '))
        else {
            return Ok(());
        };
        self.key.clear();
        self.key.extend_from_slice(m.name.as_bytes());
        for (k, v) in m.tags.iter() {
            self.key.push(0);
            self.key.extend_from_slice(k.as_bytes());
            self.key.push(0);
            self.key.extend_from_slice(v.as_bytes());
        }
        let fam = self
            .families
            .entry(family.to_string())
            .or_insert_with(|| Family {
                kind: kind.to_string(),
                series: BTreeMap::new(),
            });
        fam.kind = kind.to_string();
        let lines = text[first_end + 1..].to_vec();
        fam.series.insert(
            self.key.clone(),
            Series {
                lines,
                seen_ns: now_ns,
            },
        );
        Ok(())
    }

    /// Forgets series not updated for `ttl_ns`.
    pub fn expire(&mut self, now_ns: i64, ttl_ns: i64) {
        for fam in self.families.values_mut() {
            fam.series.retain(|_, s| now_ns - s.seen_ns < ttl_ns);
        }
        self.families.retain(|_, f| !f.series.is_empty());
    }

    pub fn series(&self) -> usize {
        self.families.values().map(|f| f.series.len()).sum()
    }

    /// The exposition text: each family's TYPE line, then its series in key order.
    pub fn render(&self, out: &mut Vec<u8>) {
        for (name, fam) in &self.families {
            out.extend_from_slice(format!("# TYPE {name} {}\n", fam.kind).as_bytes());
            for s in fam.series.values() {
                out.extend_from_slice(&s.lines);
            }
        }
    }

    pub fn clear(&mut self) {
        self.families.clear();
    }
}

/// The encoder of a `pushgateway://` destination: a batch is the latest sample set of each
/// series seen since the previous push, rendered as one exposition.
#[derive(Default)]
pub struct PushEncoder {
    latest: Latest,
}

impl Encoder for PushEncoder {
    fn encode(&mut self, m: &Metric, _body: &mut Vec<u8>) -> Result<(), Unsupported> {
        self.latest.update(m, 0)
    }

    fn seal(&mut self, _body: &[u8], out: &mut Vec<u8>) {
        self.latest.render(out);
        self.latest.clear();
    }

    fn content_type(&self) -> &'static str {
        "text/plain; version=0.0.4; charset=utf-8"
    }
}

/// `--serve`: the store shared between the publishing thread and the HTTP threads.
pub struct Exposition {
    pub latest: Mutex<Latest>,
    pub ttl_ns: i64,
}

impl Exposition {
    pub fn new(ttl_ns: i64) -> Arc<Exposition> {
        Arc::new(Exposition {
            latest: Mutex::new(Latest::default()),
            ttl_ns,
        })
    }
}

impl Handler for Exposition {
    fn handle(&self, req: &Request) -> Reply {
        if let Some(r) = only_get(req) {
            return r;
        }
        match req.path.as_str() {
            "/metrics" => {
                let mut text = Vec::new();
                if let Ok(mut latest) = self.latest.lock() {
                    latest.expire(crate::time::now_ns(), self.ttl_ns);
                    latest.render(&mut text);
                }
                Reply {
                    status: 200,
                    content_type: "text/plain; version=0.0.4; charset=utf-8",
                    body: String::from_utf8_lossy(&text).into_owned(),
                    allow: None,
                }
            }
            "/" => Reply {
                status: 200,
                content_type: "text/plain; charset=utf-8",
                body: "tlm-publish: metrics at /metrics\n".into(),
                allow: None,
            },
            _ => error(404, "no such path; try /metrics"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Temporality, Value};

    fn render(l: &Latest) -> String {
        let mut out = Vec::new();
        l.render(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keeps_the_latest_per_series_grouped_by_family() {
        let mut l = Latest::default();
        let c = |v, host| {
            Metric::counter("http.requests", Temporality::Cumulative, Value::U64(v), 5)
                .with_tag("host", host)
        };
        l.update(&c(1, "a"), 1).unwrap();
        l.update(&Metric::gauge("load", Value::F64(0.5), 5), 1)
            .unwrap();
        l.update(&c(2, "b"), 1).unwrap();
        l.update(&c(7, "a"), 2).unwrap();
        assert_eq!(
            render(&l),
            "# TYPE http_requests_total counter\n\
             http_requests_total{host=\"a\"} 7\n\
             http_requests_total{host=\"b\"} 2\n\
             # TYPE load gauge\n\
             load 0.5\n"
        );
        l.expire(10, 9);
        assert_eq!(
            l.series(),
            1,
            "only the series updated at 2 is within 9 ns of 10"
        );
        l.expire(100, 9);
        assert_eq!(render(&l), "");
    }

    #[test]
    fn unsupported_metrics_are_refused_and_leave_the_store_alone() {
        let mut l = Latest::default();
        let delta = Metric::counter("d", Temporality::Delta, Value::U64(1), 5);
        assert_eq!(l.update(&delta, 1), Err(Unsupported::DELTA_COUNTER));
        assert_eq!(l.series(), 0);
    }

    #[test]
    fn a_push_holds_each_series_once() {
        let mut e = PushEncoder::default();
        let mut body = Vec::new();
        for v in [1, 2, 3] {
            e.encode(&Metric::gauge("g", Value::U64(v), 5), &mut body)
                .unwrap();
        }
        let mut out = Vec::new();
        e.seal(&body, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "# TYPE g gauge\ng 3\n");
        let mut again = Vec::new();
        e.seal(&[], &mut again);
        assert!(again.is_empty(), "a push starts empty");
    }
}
