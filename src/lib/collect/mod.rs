//! Collectors behind `tlm-collect`: read a source, turn it into tlm metrics.
//!
//! Each source appends the metrics of one collection to a caller-owned `Vec<Metric>`, so the
//! caller decides when and how to write them and can reuse the vector from one interval to
//! the next. `run` drives any source on the schedule and reports each collection's own
//! outcome as metrics (`collect.up`, `collect.duration_seconds`), so a failing source shows
//! up in the stream instead of ending it.

pub mod exec;
pub mod execd;
mod http;
pub mod http_json;
pub mod nginx;
pub mod prom_text;
pub mod system;
pub mod tail;
pub mod task;

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
        // One line per collection however broken the page: the first bad line and a count.
        if let Some((line, why)) = self.bad_lines().first() {
            let count = self.bad_lines().len();
            crate::log!(
                Warn,
                "bad_lines",
                source = "prometheus",
                count = count,
                first_line = line,
                reason = why
            );
        }
        Ok(())
    }
}

impl Source for tail::TailCollector {
    fn name(&self) -> &str {
        "tail"
    }

    fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<()> {
        tail::TailCollector::collect(self, now_ns, out)
    }
}

impl Source for http_json::HttpJsonCollector {
    fn name(&self) -> &str {
        "http"
    }

    fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<()> {
        http_json::HttpJsonCollector::collect(self, now_ns, out)
    }
}

/// When and how a source is collected.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Nanoseconds between collections, on the wall-clock grid.
    pub interval: i64,
    /// Collections before the end (0: until a signal).
    pub count: u64,
    /// Each collection starts up to this many nanoseconds after its tick, at random, so a
    /// fleet on the same grid does not hit a shared server in the same millisecond.
    pub jitter: i64,
    /// Static tags for every metric.
    pub tags: Vec<(String, String)>,
}

/// Collects from `source` as `plan` says, writing each collection to `out`, until the count
/// or SIGINT/SIGTERM; a failed collection is logged and reported as `collect.up 0`, and the
/// schedule goes on.
pub fn run(source: &mut dyn Source, plan: &Plan, out: &mut Output) -> Result<()> {
    let signals = crate::signals::Signals::termination()?;
    run_until(source, plan, signals.receiver(), &mut |batch| {
        out.write_ndjson(batch)?;
        out.flush()
    })
}

/// `run`, handing each collection to `sink` and ending when `stop` delivers or disconnects.
/// A source that panics is reported like one that failed, so it cannot end the others.
pub fn run_until(
    source: &mut dyn Source,
    plan: &Plan,
    stop: &crossbeam_channel::Receiver<i32>,
    sink: &mut dyn FnMut(&[Metric]) -> Result<()>,
) -> Result<()> {
    let mut batch: Vec<Metric> = Vec::new();
    let mut rng = crate::rng::XorShift::seeded();
    crate::schedule::every_until(plan.interval, plan.count, stop, |tick| {
        let now = if plan.jitter > 0 {
            let offset = rng.next_u64() % plan.jitter as u64;
            std::thread::sleep(std::time::Duration::from_nanos(offset));
            crate::time::now_ns()
        } else {
            tick
        };
        batch.clear();
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            source.collect(now, &mut batch)
        }))
        .unwrap_or_else(|_| Err(crate::error::Error::internal("the source panicked (a bug)")));
        let up = match outcome {
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
            plan.tags.iter().for_each(|(k, v)| m.tags.insert(k, v));
        }
        sink(&batch)
    })
}
