//! Collectors behind `tlm-collect`: read a source, turn it into tlm metrics.
//!
//! Each source appends the metrics of one collection to a caller-owned `Vec<Metric>`, so the
//! caller decides when and how to write them and can reuse the vector from one interval to
//! the next. `run` drives any source on the schedule and reports each collection's own
//! outcome as metrics (`collect.up`, `collect.duration_seconds`), so a failing source shows
//! up in the stream instead of ending it.

pub mod exec;
pub mod nginx;
pub mod prom_text;
pub mod system;

use crate::error::Result;
use crate::io::Output;
use crate::metric::{Metric, Value};

/// One collection of a source.
pub trait Source {
    /// The `source` tag of its `collect.*` metrics (`system`, `exec`, …).
    fn name(&self) -> &str;
    /// Appends one collection; on error nothing is appended.
    fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<()>;
}

impl Source for system::SystemCollector {
    fn name(&self) -> &str {
        "system"
    }

    fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<()> {
        system::SystemCollector::collect(self, now_ns, out)
    }
}

impl Source for exec::ExecCollector {
    fn name(&self) -> &str {
        "exec"
    }

    fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<()> {
        exec::ExecCollector::collect(self, now_ns, out).map(|_| ())
    }
}

impl Source for nginx::NginxCollector {
    fn name(&self) -> &str {
        "nginx"
    }

    fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<()> {
        nginx::NginxCollector::collect(self, now_ns, out)
    }
}

impl Source for prom_text::PromCollector {
    fn name(&self) -> &str {
        "prometheus"
    }

    fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<()> {
        prom_text::PromCollector::collect(self, now_ns, out)?;
        for (line, why) in self.bad_lines() {
            crate::log!(
                Warn,
                "bad_line",
                source = "prometheus",
                line = line,
                reason = why
            );
        }
        Ok(())
    }
}

/// Collects from `source` on the wall-clock grid of `interval`, `count` times (0: until a
/// signal), adding `tags` to every metric; a failed collection is logged and reported as
/// `collect.up 0`, and the schedule goes on.
pub fn run(
    source: &mut dyn Source,
    interval: i64,
    count: u64,
    tags: &[(String, String)],
    out: &mut Output,
) -> Result<()> {
    let mut batch: Vec<Metric> = Vec::new();
    crate::schedule::every(interval, count, |now| {
        batch.clear();
        let started = std::time::Instant::now();
        let up = match source.collect(now, &mut batch) {
            Ok(()) => 1,
            Err(e) => {
                batch.clear();
                crate::log!(
                    Error,
                    "collect_failed",
                    source = source.name(),
                    reason = e.msg
                );
                0
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        for (name, v) in [
            ("collect.up", Value::U64(up)),
            ("collect.duration_seconds", Value::F64(seconds)),
        ] {
            let mut m = Metric::gauge(name, v, now);
            m.tags.insert("source", source.name());
            batch.push(m);
        }
        for m in &mut batch {
            tags.iter().for_each(|(k, v)| m.tags.insert(k, v));
        }
        out.write_ndjson(&batch)?;
        out.flush()
    })
}
