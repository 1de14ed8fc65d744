//! Delivery of a metric stream to backends (`tlm-publish`), or in one format to stdout.
//!
//! Each destination URL (`target`) gets an encoder and one or more lanes (`lane`): threads
//! that send batches in order over a transport (`transport`: TCP with a replay window, UDP,
//! HTTP, file), retry with backoff (`backoff`), keep what waits in a memory-then-disk queue
//! (`queue`, `spool`) and count every point's fate (`counters`). Destinations are
//! independent: each has its own queues, so a slow one does not hold back the others until
//! its own memory budget is spent. `docs/delivery.md` states what is promised.

pub mod backoff;
pub mod batch;
pub mod build;
pub mod counters;
pub mod destination;
pub mod expose;
pub mod lane;
pub mod progress;
pub mod queue;
pub mod spool;
pub mod target;
pub mod transport;

use crate::encode::Unsupported;
use crate::encode::{encoder, Encoder, Format};
use crate::error::{Error, Result};
use crate::io::Output;
use crate::log::RateLimit;
use crate::metric::Metric;
use crate::stream::{Hooks, Prepare, Prepared, StreamSink};
use destination::Destination;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use target::Target;

/// Delivery settings shared by every destination (some can be overridden per destination
/// in its URL: `batch`, `linger`, `concurrency`, `timeout`).
#[derive(Clone, Debug)]
pub struct Options {
    /// Points per batch.
    pub batch: usize,
    /// Longest a batch stays open before it is sent.
    pub linger: Duration,
    /// Lanes per destination.
    pub concurrency: usize,
    pub timeout: Duration,
    pub retries: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Memory budget of a destination's queue, split over its lanes.
    pub buffer_bytes: usize,
    pub spool: Option<PathBuf>,
    pub spool_max: u64,
    pub drain_timeout: Duration,
    pub replay_window: Duration,
    pub replay_bytes: usize,
    /// Extra headers for generic HTTP destinations.
    pub headers: Vec<(String, String)>,
    pub token_file: Option<PathBuf>,
    pub hmac_key_file: Option<PathBuf>,
    pub dry_run: bool,
    /// Format for stdout and for `file:` destinations without `?format=`.
    pub format: Format,
    /// Address of the scrape endpoint (`--serve`).
    pub serve: Option<String>,
    /// How long a series stays on the scrape endpoint without a new value.
    pub serve_ttl: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch: 5000,
            linger: Duration::from_secs(1),
            concurrency: 1,
            timeout: Duration::from_secs(10),
            retries: 5,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            buffer_bytes: 256 << 20,
            spool: None,
            spool_max: 1 << 30,
            drain_timeout: Duration::from_secs(30),
            replay_window: Duration::from_secs(30),
            replay_bytes: 64 << 20,
            headers: Vec::new(),
            token_file: None,
            hmac_key_file: None,
            dry_run: false,
            format: Format::Ndjson,
            serve: None,
            serve_ttl: Duration::from_secs(300),
        }
    }
}

/// When the lanes must stop trying: zero until the command is finishing.
#[derive(Debug, Default)]
pub struct Shutdown {
    deadline_ns: AtomicI64,
}

impl Shutdown {
    pub fn set_deadline(&self, ns: i64) {
        self.deadline_ns.store(ns.max(1), Relaxed);
    }

    pub fn due(&self) -> bool {
        let d = self.deadline_ns.load(Relaxed);
        d != 0 && crate::time::now_ns() >= d
    }
}

/// The stream sink of `tlm-publish`: every metric to every destination, and to stdout in
/// `--format` when there are no destinations.
pub struct Publisher {
    destinations: Vec<Destination>,
    /// Per destination: its metrics arrive encoded by `ParallelEncode`.
    encoded_elsewhere: Vec<bool>,
    targets: Vec<Target>,
    opts: Options,
    stdout: Option<FormatWriter>,
    exposition: Option<Arc<expose::Exposition>>,
    unsupported_log: RateLimit,
    /// Whether some destination has several lanes, so series must be hashed.
    hashing: bool,
}

impl Publisher {
    pub fn start(targets: &[Target], opts: &Options) -> Result<Publisher> {
        let terminating = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, terminating.clone())
                .map_err(|e| Error::internal(format!("cannot watch signals: {e}")))?;
        }
        let destinations = targets
            .iter()
            .map(|t| Destination::start(t, opts, terminating.clone()))
            .collect::<Result<Vec<_>>>()?;
        report_on_sigusr1(&destinations)?;
        let exposition = opts
            .serve
            .as_deref()
            .map(|addr| serve(addr, opts.serve_ttl))
            .transpose()?;
        let stdout = (destinations.is_empty() && exposition.is_none())
            .then(|| FormatWriter::new(opts.format));
        let hashing = destinations.iter().any(|d| d.lanes() > 1);
        Ok(Publisher {
            encoded_elsewhere: vec![false; destinations.len()],
            targets: targets.to_vec(),
            opts: opts.clone(),
            destinations,
            stdout,
            exposition,
            unsupported_log: RateLimit::default(),
            hashing,
        })
    }

    /// Work for the decoder threads: encoding for every destination whose encoder is
    /// stateless, and hashing series to lanes, so the command's thread only copies bytes.
    pub fn hooks(&mut self) -> Hooks {
        let stateless: Vec<bool> = self
            .destinations
            .iter()
            .map(Destination::stateless)
            .collect();
        if !stateless.iter().any(|&s| s) && !self.hashing {
            return Hooks::default();
        }
        self.encoded_elsewhere = stateless.clone();
        let (targets, opts, hashing) = (self.targets.clone(), self.opts.clone(), self.hashing);
        let factory = move || -> Box<dyn Prepare> {
            let encoders = targets
                .iter()
                .zip(&stateless)
                .map(|(t, &s)| {
                    s.then(|| build::encoder(t, &opts).unwrap_or_else(|_| Box::new(Refuse)))
                })
                .collect();
            Box::new(ParallelEncode { encoders, hashing })
        };
        Hooks {
            prepare: Some(Arc::new(factory)),
            combine: None,
        }
    }

    fn add_prepared(&mut self, m: &Metric, mut encoded: &[u8], hash: u64, now: i64) -> Result<()> {
        for (d, &elsewhere) in self.destinations.iter_mut().zip(&self.encoded_elsewhere) {
            if !elsewhere {
                d.add(m, hash, now)?;
                continue;
            }
            match take_encoded(&mut encoded) {
                Ok(bytes) => d.add_encoded(bytes, hash, now)?,
                Err(reason) => d.unsupported(m, reason),
            }
        }
        Ok(())
    }

    /// Updates the scrape endpoint's store with a batch, under one lock.
    fn expose(&mut self, metrics: &[Metric], now: i64) {
        let Some(exposition) = &self.exposition else {
            return;
        };
        let Ok(mut latest) = exposition.latest.lock() else {
            return;
        };
        for m in metrics {
            if let Err(e) = latest.update(m, now) {
                if let Some(suppressed) = self.unsupported_log.allow() {
                    crate::log!(
                        Warn,
                        "unsupported",
                        dest = "--serve",
                        name = m.name,
                        kind = m.kind,
                        reason = e.reason,
                        suppressed = suppressed
                    );
                }
            }
        }
    }

    /// Whether every destination delivered or kept (spooled) every point.
    fn check_losses(&self) -> Result<()> {
        let lost: u64 = self
            .destinations
            .iter()
            .map(|d| d.counters.snapshot().dropped)
            .sum();
        if lost > 0 {
            return Err(Error::unavailable(format!(
                "{lost} points were not delivered (see the dropped= counts above)"
            )));
        }
        Ok(())
    }
}

/// Starts the scrape endpoint on `addr`.
fn serve(addr: &str, ttl: Duration) -> Result<Arc<expose::Exposition>> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| Error::unavailable(format!("--serve {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::unavailable(format!("--serve {addr}: {e}")))?;
    let exposition = expose::Exposition::new(ttl.as_nanos() as i64);
    let stop = Arc::new(AtomicBool::new(false));
    crate::httpd::spawn(listener, exposition.clone(), stop)
        .map_err(|e| Error::internal(format!("cannot start the --serve thread: {e}")))?;
    crate::log!(Info, "serving", url = format!("http://{bound}/metrics"));
    Ok(exposition)
}

/// Logs every destination's counters on SIGUSR1, from a thread of its own.
fn report_on_sigusr1(destinations: &[Destination]) -> Result<()> {
    let watched: Vec<(String, Arc<counters::Counters>)> = destinations
        .iter()
        .map(|d| (d.label.clone(), d.counters.clone()))
        .collect();
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1])
        .map_err(|e| Error::internal(format!("cannot watch SIGUSR1: {e}")))?;
    std::thread::Builder::new()
        .name("sigusr1".into())
        .spawn(move || {
            for _ in signals.forever() {
                for (label, c) in &watched {
                    c.log("stats", label);
                }
            }
        })
        .map_err(|e| Error::internal(format!("cannot start the SIGUSR1 thread: {e}")))?;
    Ok(())
}

/// A hash of the series (name and tags) that picks a metric's lane.
pub fn series_hash(m: &Metric) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x0074_6c6d_2d70_7562).build_hasher();
    h.write(m.name.as_bytes());
    for (k, v) in m.tags.iter() {
        h.write_u8(0);
        h.write(k.as_bytes());
        h.write_u8(0);
        h.write(v.as_bytes());
    }
    h.finish()
}

/// Marks a metric a stateless encoder refused, followed by the reason's length (u16) and text.
const REFUSED: u32 = u32::MAX;

/// Encodes a metric for each stateless destination into the prepared key, each encoding
/// behind its length (or `REFUSED` and the reason), and hashes its series.
struct ParallelEncode {
    encoders: Vec<Option<Box<dyn Encoder + Send>>>,
    hashing: bool,
}

impl Prepare for ParallelEncode {
    fn prepare(&mut self, m: &Metric, key: &mut Vec<u8>) -> u64 {
        for enc in self.encoders.iter_mut().flatten() {
            let at = key.len();
            key.extend_from_slice(&[0; 4]);
            match enc.encode(m, key) {
                Ok(()) => {
                    let n = (key.len() - at - 4) as u32;
                    key[at..at + 4].copy_from_slice(&n.to_le_bytes());
                }
                Err(e) => {
                    key[at..at + 4].copy_from_slice(&REFUSED.to_le_bytes());
                    key.extend_from_slice(&(e.reason.len() as u16).to_le_bytes());
                    key.extend_from_slice(e.reason.as_bytes());
                }
            }
        }
        if self.hashing {
            series_hash(m)
        } else {
            0
        }
    }
}

/// Takes one destination's part off the front of a prepared key: its bytes, or the reason
/// its encoder refused the metric.
fn take_encoded<'a>(rest: &mut &'a [u8]) -> std::result::Result<&'a [u8], &'a str> {
    let word = |b: &[u8], n: usize| {
        b.get(..n)
            .map(|w| w.iter().rev().fold(0usize, |a, &x| a << 8 | x as usize))
    };
    let len = word(rest, 4).ok_or("internal: short prepared key")?;
    if len == REFUSED as usize {
        let n = word(&rest[4..], 2).ok_or("internal: short prepared key")?;
        let reason = rest.get(6..6 + n).ok_or("internal: short prepared key")?;
        *rest = &rest[6 + n..];
        return Err(std::str::from_utf8(reason).unwrap_or("unsupported"));
    }
    let bytes = rest.get(4..4 + len).ok_or("internal: short prepared key")?;
    *rest = &rest[4 + len..];
    Ok(bytes)
}

/// Stands in for an encoder that could not be built on a decoder thread (it was built once
/// already, so this does not happen): refuses every metric, visibly.
struct Refuse;

impl Encoder for Refuse {
    fn encode(&mut self, _m: &Metric, _out: &mut Vec<u8>) -> std::result::Result<(), Unsupported> {
        Err(Unsupported {
            reason: "internal: no encoder on this thread",
        })
    }
}

impl StreamSink for Publisher {
    fn batch(&mut self, metrics: &[Metric], prepared: &Prepared, out: &mut Output) -> Result<()> {
        let now = crate::time::now_ns();
        for (i, m) in metrics.iter().enumerate() {
            if prepared.is_empty() {
                let hash = if self.hashing { series_hash(m) } else { 0 };
                for d in &mut self.destinations {
                    d.add(m, hash, now)?;
                }
            } else {
                self.add_prepared(m, prepared.key(i), prepared.hash(i), now)?;
            }
            if let Some(w) = &mut self.stdout {
                w.write(m, out)?;
            }
        }
        self.expose(metrics, now);
        Ok(())
    }

    fn tick(&mut self, now: i64, _idle: bool, _out: &mut Output) -> Result<()> {
        self.destinations.iter_mut().try_for_each(|d| d.linger(now))
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        if let Some(w) = &mut self.stdout {
            w.finish(out)?;
        }
        for d in &mut self.destinations {
            d.finish()?;
            d.counters.log("summary", &d.label);
        }
        self.check_losses()
    }
}

/// Counts of one publishing run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishStats {
    pub written: u64,
    pub unsupported: u64,
}

/// Encodes every metric in one format onto the output stream.
pub struct FormatWriter {
    encoder: Box<dyn Encoder + Send>,
    stats: PublishStats,
    limit: RateLimit,
}

impl FormatWriter {
    pub fn new(format: Format) -> FormatWriter {
        FormatWriter {
            encoder: encoder(format),
            stats: PublishStats::default(),
            limit: RateLimit::default(),
        }
    }

    pub fn stats(&self) -> PublishStats {
        self.stats
    }

    pub fn write(&mut self, m: &Metric, out: &mut Output) -> Result<()> {
        match self.encoder.encode(m, out.buf()) {
            Ok(()) => self.stats.written += 1,
            Err(e) => {
                self.stats.unsupported += 1;
                if let Some(suppressed) = self.limit.allow() {
                    crate::log!(
                        Warn,
                        "unsupported",
                        name = m.name,
                        kind = m.kind,
                        reason = e.reason,
                        suppressed = suppressed
                    );
                }
            }
        }
        out.maybe_write()
    }
}

impl StreamSink for FormatWriter {
    fn batch(&mut self, metrics: &[Metric], _prepared: &Prepared, out: &mut Output) -> Result<()> {
        metrics.iter().try_for_each(|m| self.write(m, out))
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        self.encoder.finish(out.buf());
        let s = self.stats;
        if s.unsupported > 0 {
            crate::log!(
                Warn,
                "summary",
                written = s.written,
                unsupported = s.unsupported
            );
        } else {
            crate::log!(
                Debug,
                "summary",
                written = s.written,
                unsupported = s.unsupported
            );
        }
        Ok(())
    }
}
