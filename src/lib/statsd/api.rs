//! The daemon behind tlm-statsd's HTTP API: counters are read where they live, anything
//! touching series state is asked of the flush thread, which owns it.

use super::fold::BAD_REASONS;
use super::secure::Reject;
use super::server::{Command, Shared};
use crate::metric::Metric;
use crate::ndjson::encode::write_str;
use crate::time::{now_ns, NS_PER_SEC};
use crossbeam_channel::{bounded, Sender};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// How long an API request waits for the flush thread.
const REPLY_WAIT: Duration = Duration::from_secs(5);

pub struct DaemonApi {
    shared: Arc<Shared>,
    cmds: Sender<Command>,
}

impl DaemonApi {
    pub fn new(shared: Arc<Shared>, cmds: Sender<Command>) -> DaemonApi {
        DaemonApi { shared, cmds }
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = bounded(1);
        self.cmds.send(make(tx)).ok()?;
        rx.recv_timeout(REPLY_WAIT).ok()
    }
}

impl super::http::Api for DaemonApi {
    fn stats_json(&self) -> String {
        stats_json(&self.shared)
    }

    fn metric_json(&self, name: &str) -> Option<String> {
        self.ask(|tx| Command::Metric(name.to_string(), tx))
            .flatten()
    }

    fn expire(&self, name: &str) -> usize {
        self.ask(|tx| Command::Expire(name.to_string(), tx))
            .unwrap_or(0)
    }

    fn ingest(&self, metrics: Vec<Metric>) -> usize {
        self.ask(|tx| Command::Ingest(metrics, tx)).unwrap_or(0)
    }
}

/// `GET /stats`: per listener received, bad and rejected counts and the rate since start;
/// series count; the last flush's duration.
pub fn stats_json(s: &Shared) -> String {
    let up = ((now_ns() - s.started) as f64 / NS_PER_SEC as f64).max(1e-3);
    let mut o = Vec::new();
    o.extend_from_slice(b"{\"listeners\":[");
    for (i, l) in s.listeners.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        let c = &l.counters;
        let metrics = c.metrics.load(Relaxed);
        o.extend_from_slice(b"{\"listener\":");
        write_str(&mut o, &l.label);
        let fields = [
            ("datagrams", c.datagrams.load(Relaxed)),
            ("lines", c.lines.load(Relaxed)),
            ("metrics", metrics),
            ("bytes", c.bytes.load(Relaxed)),
            ("bad", c.bad_total()),
            ("connections", c.connections.load(Relaxed)),
            ("kernel_drops", l.kernel_drops()),
        ];
        for (k, v) in fields {
            o.extend_from_slice(format!(",\"{k}\":{v}").as_bytes());
        }
        o.extend_from_slice(
            format!(",\"metrics_per_second\":{:.1}", metrics as f64 / up).as_bytes(),
        );
        o.extend_from_slice(b",\"bad_by_reason\":{");
        let mut first = true;
        for (r, reason) in BAD_REASONS.iter().enumerate() {
            let n = c.bad[r].load(Relaxed);
            if n > 0 {
                if !first {
                    o.push(b',');
                }
                first = false;
                o.extend_from_slice(format!("\"{reason}\":{n}").as_bytes());
            }
        }
        o.extend_from_slice(b"},\"rejected\":{");
        for (r, reason) in Reject::ALL.iter().enumerate() {
            if r > 0 {
                o.push(b',');
            }
            o.extend_from_slice(
                format!("\"{}\":{}", reason.reason(), c.rejected[r].load(Relaxed)).as_bytes(),
            );
        }
        o.extend_from_slice(b"}}");
    }
    o.extend_from_slice(
        format!(
            "],\"series\":{},\"flushes\":{},\"last_flush_seconds\":{},\"uptime_seconds\":{:.3}}}\n",
            s.series.load(Relaxed),
            s.flushes.load(Relaxed),
            s.last_flush_ns.load(Relaxed) as f64 / 1e9,
            up
        )
        .as_bytes(),
    );
    String::from_utf8_lossy(&o).into_owned()
}
