//! The tlm-statsd daemon: ingest threads fold what they receive; on every flush boundary of
//! the wall clock the flush thread collects their parts, merges them with the aggregation
//! core and writes the window that just ended as tlm metric v1.

use super::fold::{Counters, Fold, Handoff, BAD_REASONS};
use super::listen::{self, Endpoint};
use super::parse::Sanitize;
use super::secure::{Reject, Verifier};
use super::source::{self, Delivery, Station};
use crate::agg::{AggConfig, Aggregator};
use crate::error::{Error, Result};
use crate::io::Output;
use crate::metric::{Metric, Temporality, Value};
use crate::time::{align_down, now_ns, NS_PER_SEC};
use crossbeam_channel::{bounded, select, tick, unbounded, Receiver, Sender};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::Release};
use std::sync::Arc;
use std::time::Duration;

pub struct Config {
    pub listen: Vec<Endpoint>,
    pub secure_listen: Vec<SocketAddr>,
    pub hmac_key: Option<Vec<u8>>,
    pub max_drift_secs: u64,
    pub stdin: bool,
    pub workers: usize,
    pub rcvbuf: usize,
    /// Flush interval in ns (also the aggregation window).
    pub flush: i64,
    pub agg: AggConfig,
    pub sanitize: Sanitize,
    pub http: Option<SocketAddr>,
    pub dump_file: Option<PathBuf>,
    pub self_metrics: bool,
}

/// One listener as reported in stats and self-metrics.
pub struct Listener {
    pub label: String,
    pub counters: Arc<Counters>,
    fds: Vec<RawFd>,
}

impl Listener {
    /// Datagrams the kernel dropped for want of buffer room on this listener's sockets.
    pub fn kernel_drops(&self) -> u64 {
        listen::kernel_drops(&self.fds)
    }
}

/// What the HTTP API and the process title read while the daemon runs.
pub struct Shared {
    pub listeners: Vec<Listener>,
    pub series: AtomicU64,
    pub flushes: AtomicU64,
    pub last_flush_ns: AtomicU64,
    pub started: i64,
}

/// Requests the flush thread serves for the HTTP API.
pub enum Command {
    Metric(String, Sender<Option<String>>),
    Expire(String, Sender<usize>),
    Ingest(Vec<Metric>, Sender<usize>),
}

struct Sources {
    epoch: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    deliveries: Receiver<Delivery>,
    recycle: Vec<Sender<Handoff>>,
    live: HashSet<usize>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The standard input's thread: its end of input ends the daemon.
    stdin: Option<usize>,
}

pub fn run(cfg: Config) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR2};
    // Before any socket is bound: once a listener is logged, SIGTERM must flush, not kill.
    let signals = crate::signals::Signals::listen(&[SIGINT, SIGTERM, SIGUSR2])?;
    let mut agg_cfg = cfg.agg.clone();
    agg_cfg.window = cfg.flush;
    agg_cfg.every = None;
    agg_cfg.check()?;
    let mut agg = Aggregator::new(agg_cfg);
    agg.hold_windows();
    let (mut sources, shared) = start_sources(&cfg, &agg)?;
    let shared = Arc::new(shared);
    let stop_http = Arc::new(AtomicBool::new(false));
    let (cmd_tx, cmd_rx) = unbounded::<Command>();
    if let Some(addr) = cfg.http {
        start_http(addr, &shared, cmd_tx, &stop_http)?;
    }
    let mut daemon = Daemon {
        cfg: &cfg,
        agg,
        out: Output::stdout(),
        shared: shared.clone(),
        last_counts: Vec::new(),
        title: Title::default(),
    };
    let result = daemon.serve(&mut sources, &cmd_rx, &signals);
    stop_http.store(true, Release);
    sources.stop.store(true, Release);
    for t in sources.threads.drain(..) {
        let _ = t.join();
    }
    result
}

fn start_sources(cfg: &Config, agg: &Aggregator) -> Result<(Sources, Shared)> {
    let (tx, rx) = unbounded::<Delivery>();
    let epoch = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut listeners = Vec::new();
    let mut recycle = Vec::new();
    let mut threads = Vec::new();
    let max_future = cfg.flush;
    let mut spawn = |label: &str,
                     counters: &Arc<Counters>,
                     work: Box<dyn FnOnce(Fold, Station) + Send>|
     -> Result<()> {
        let (rtx, rrx) = bounded::<Handoff>(1);
        let station = Station {
            id: recycle.len(),
            epoch: epoch.clone(),
            stop: stop.clone(),
            deliveries: tx.clone(),
            recycle: rrx,
            counters: counters.clone(),
            seen: 0,
        };
        recycle.push(rtx);
        let fold = Fold::new(cfg.sanitize, agg.combiner(), max_future);
        let t = std::thread::Builder::new()
            .name(format!("ingest {label}"))
            .spawn(move || work(fold, station))
            .map_err(|e| Error::internal(format!("cannot start a thread: {e}")))?;
        threads.push(t);
        Ok(())
    };
    for ep in &cfg.listen {
        let counters = Arc::new(Counters::default());
        let (label, fds) = match ep {
            Endpoint::Udp(addr) => {
                let socks = listen::udp_sockets(*addr, cfg.workers)?;
                let label = local_label("udp", &socks[0]);
                let fds: Vec<RawFd> = socks.iter().map(AsRawFd::as_raw_fd).collect();
                log_rcvbuf(&label, &fds, cfg.rcvbuf);
                for s in socks {
                    spawn(
                        &label,
                        &counters,
                        Box::new(move |f, st| source::udp_worker(s, f, st, None)),
                    )?;
                }
                (label, fds)
            }
            Endpoint::Tcp(addr) => {
                let l = listen::tcp_listener(*addr)?;
                let label = l
                    .local_addr()
                    .map_or_else(|_| ep.label(), |a| format!("tcp://{a}"));
                spawn(
                    &label,
                    &counters,
                    Box::new(move |f, st| source::tcp_worker(l, f, st)),
                )?;
                (label, Vec::new())
            }
            Endpoint::Unix(path) => {
                let s = listen::unix_socket(path)?;
                let fds = vec![s.as_raw_fd()];
                log_rcvbuf(&ep.label(), &fds, cfg.rcvbuf);
                spawn(
                    &ep.label(),
                    &counters,
                    Box::new(move |f, st| source::unix_worker(s, f, st)),
                )?;
                (ep.label(), fds)
            }
        };
        crate::log!(Info, "listening", listener = label);
        listeners.push(Listener {
            label,
            counters,
            fds,
        });
    }
    for addr in &cfg.secure_listen {
        let key = cfg
            .hmac_key
            .clone()
            .ok_or_else(|| Error::usage("--secure-listen needs --hmac-key-file"))?;
        let counters = Arc::new(Counters::default());
        // One socket and thread per signed endpoint: replays must meet the same memory of
        // what was already accepted, whichever source port they come from.
        let s = listen::udp_socket(*addr)?;
        let label = format!("secure+{}", local_label("udp", &s));
        let fds = vec![s.as_raw_fd()];
        log_rcvbuf(&label, &fds, cfg.rcvbuf);
        let v = Verifier::new(&key, cfg.max_drift_secs);
        spawn(
            &label,
            &counters,
            Box::new(move |f, st| source::udp_worker(s, f, st, Some(v))),
        )?;
        crate::log!(
            Info,
            "listening",
            listener = label,
            max_drift_s = cfg.max_drift_secs
        );
        listeners.push(Listener {
            label,
            counters,
            fds,
        });
    }
    if cfg.stdin {
        let counters = Arc::new(Counters::default());
        spawn("stdin", &counters, Box::new(source::stdin_worker))?;
        listeners.push(Listener {
            label: "stdin".into(),
            counters,
            fds: Vec::new(),
        });
    }
    // Standard input is started last.
    let stdin = cfg.stdin.then(|| recycle.len() - 1);
    let live = (0..recycle.len()).collect();
    let sources = Sources {
        epoch,
        stop,
        deliveries: rx,
        recycle,
        live,
        threads,
        stdin,
    };
    let shared = Shared {
        listeners,
        series: AtomicU64::new(0),
        flushes: AtomicU64::new(0),
        last_flush_ns: AtomicU64::new(0),
        started: now_ns(),
    };
    Ok((sources, shared))
}

fn local_label(scheme: &str, s: &std::net::UdpSocket) -> String {
    s.local_addr()
        .map_or_else(|_| format!("{scheme}://?"), |a| format!("{scheme}://{a}"))
}

fn log_rcvbuf(label: &str, fds: &[RawFd], want: usize) {
    let granted: Vec<usize> = fds.iter().map(|&fd| listen::set_rcvbuf(fd, want)).collect();
    let least = granted.iter().copied().min().unwrap_or(0);
    let level_low = least < want;
    if level_low {
        crate::log!(
            Warn,
            "receive_buffer",
            listener = label,
            requested = want,
            granted = least,
            hint = "raise net.core.rmem_max or run with CAP_NET_ADMIN for a larger buffer"
        );
    } else {
        crate::log!(
            Info,
            "receive_buffer",
            listener = label,
            requested = want,
            granted = least
        );
    }
}

fn start_http(
    addr: SocketAddr,
    shared: &Arc<Shared>,
    cmds: Sender<Command>,
    stop: &Arc<AtomicBool>,
) -> Result<()> {
    let l = std::net::TcpListener::bind(addr)
        .map_err(|e| Error::unavailable(format!("--http {addr}: {e}")))?;
    let bound = l
        .local_addr()
        .map_or_else(|_| addr.to_string(), |a| a.to_string());
    let api = Arc::new(super::api::DaemonApi::new(shared.clone(), cmds));
    super::http::spawn(l, api, stop.clone())
        .map_err(|e| Error::internal(format!("cannot start the HTTP API: {e}")))?;
    crate::log!(Info, "http_listening", address = bound);
    Ok(())
}

struct Daemon<'c> {
    cfg: &'c Config,
    agg: Aggregator,
    out: Output,
    shared: Arc<Shared>,
    /// Per listener: counts at the last flush, for per-interval self-metrics.
    last_counts: Vec<Snapshot>,
    title: Title,
}

/// A listener's counts at one instant.
#[derive(Clone, Default)]
struct Snapshot {
    datagrams: u64,
    lines: u64,
    metrics: u64,
    bad: Vec<u64>,
    rejected: Vec<u64>,
    kernel_drops: u64,
}

impl Snapshot {
    fn of(l: &Listener) -> Snapshot {
        let c = &l.counters;
        Snapshot {
            datagrams: c.datagrams.load(Relaxed),
            lines: c.lines.load(Relaxed),
            metrics: c.metrics.load(Relaxed),
            bad: c.bad.iter().map(|b| b.load(Relaxed)).collect(),
            rejected: c.rejected.iter().map(|b| b.load(Relaxed)).collect(),
            kernel_drops: listen::kernel_drops(&l.fds),
        }
    }
}

impl Daemon<'_> {
    fn serve(
        &mut self,
        sources: &mut Sources,
        cmds: &Receiver<Command>,
        signals: &crate::signals::Signals,
    ) -> Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR2};
        let flush = self.cfg.flush;
        let title_tick = tick(Duration::from_secs(1));
        self.last_counts = self.shared.listeners.iter().map(Snapshot::of).collect();
        let mut next = align_down(now_ns(), flush) + flush;
        loop {
            let wait = Duration::from_nanos((next - now_ns()).max(0) as u64);
            select! {
                recv(signals.receiver()) -> sig => {
                    let sig = sig.unwrap_or(SIGTERM);
                    if sig == SIGUSR2 {
                        self.collect(sources)?;
                        self.dump();
                        continue;
                    }
                    debug_assert!(sig == SIGINT || sig == SIGTERM);
                    crate::log!(Info, "signal", signal = crate::signals::name(sig), action = "flush and exit");
                    return self.finish(sources);
                }
                recv(sources.deliveries) -> d => {
                    let Ok(d) = d else { return self.finish(sources) };
                    let ended = d.last && Some(d.source) == sources.stdin;
                    self.take(sources, d)?;
                    if ended || sources.live.is_empty() {
                        crate::log!(Info, "end_of_input", action = "flush and exit");
                        return self.finish(sources);
                    }
                }
                recv(cmds) -> cmd => {
                    if let Ok(cmd) = cmd {
                        self.command(sources, cmd)?;
                    }
                }
                recv(title_tick) -> _ => self.title.update(&self.shared),
                default(wait) => {
                    self.flush(sources, next)?;
                    next += flush;
                    // A flush that overran the next boundary (a stalled machine) skips the
                    // boundaries it missed rather than writing empty windows in a burst.
                    let now = now_ns();
                    if next <= now {
                        next = align_down(now, flush) + flush;
                    }
                }
            }
        }
    }

    /// Asks every ingest thread for its part and merges them all.
    fn collect(&mut self, sources: &mut Sources) -> Result<()> {
        let epoch = sources.epoch.fetch_add(1, Release) + 1;
        let mut waiting: HashSet<usize> = sources.live.clone();
        let deadline = crossbeam_channel::after(Duration::from_secs(2));
        while !waiting.is_empty() {
            select! {
                recv(sources.deliveries) -> d => {
                    let Ok(d) = d else { break };
                    if d.epoch >= epoch || d.last {
                        waiting.remove(&d.source);
                    }
                    self.take(sources, d)?;
                }
                recv(deadline) -> _ => {
                    crate::log!(Warn, "slow_ingest_thread", waiting = waiting.len(), detail = "its points join the next flush");
                    break;
                }
            }
        }
        self.shared
            .series
            .store(self.agg.series_count() as u64, Relaxed);
        Ok(())
    }

    /// Merges one thread's part into the aggregation.
    fn take(&mut self, sources: &mut Sources, d: Delivery) -> Result<()> {
        let mut h = d.handoff;
        if let Some(p) = h.part.downcast_mut::<crate::agg::partial::Partial>() {
            self.agg.merge_partial(p, &mut self.out)?;
        }
        for m in &h.ordered[..h.ordered_len] {
            self.agg.observe(m, &mut self.out)?;
        }
        h.ordered_len = 0;
        if d.last {
            sources.live.remove(&d.source);
        } else if let Some(r) = sources.recycle.get(d.source) {
            let _ = r.try_send(h);
        }
        Ok(())
    }

    /// Writes the window that ends at `boundary`.
    fn flush(&mut self, sources: &mut Sources, boundary: i64) -> Result<()> {
        let began = now_ns();
        self.collect(sources)?;
        self.agg.advance(boundary, &mut self.out)?;
        self.after_flush(began, boundary)
    }

    fn after_flush(&mut self, began: i64, at: i64) -> Result<()> {
        let took = (now_ns() - began).max(0) as u64;
        self.shared.last_flush_ns.store(took, Relaxed);
        self.shared.flushes.fetch_add(1, Relaxed);
        self.shared
            .series
            .store(self.agg.series_count() as u64, Relaxed);
        if self.cfg.self_metrics {
            self.write_self_metrics(at, took)?;
        }
        self.out.flush()
    }

    /// SIGTERM, SIGINT or end of input: everything received is merged and every open
    /// window written.
    fn finish(&mut self, sources: &mut Sources) -> Result<()> {
        let began = now_ns();
        sources.stop.store(true, Release);
        self.collect(sources)?;
        // Threads that ended deliver once more; take what is already queued.
        while let Ok(d) = sources.deliveries.try_recv() {
            self.take(sources, d)?;
        }
        self.agg.flush_all(&mut self.out)?;
        let end = align_down(now_ns(), self.cfg.flush) + self.cfg.flush;
        self.after_flush(began, end)?;
        let s = self.agg.stats();
        crate::log!(
            Info,
            "summary",
            points = s.points,
            series = self.agg.series_count(),
            windows = s.windows,
            emitted = s.emitted,
            late = s.late,
            refused = s.refused,
            bad_lines = self
                .shared
                .listeners
                .iter()
                .map(|l| l.counters.bad_total())
                .sum::<u64>()
        );
        Ok(())
    }

    fn command(&mut self, sources: &mut Sources, cmd: Command) -> Result<()> {
        match cmd {
            Command::Metric(name, reply) => {
                self.collect(sources)?;
                let lines = self.agg.peek(&name);
                let _ = reply.send((!lines.is_empty()).then(|| metric_json(&name, &lines)));
            }
            Command::Expire(name, reply) => {
                self.collect(sources)?;
                let _ = reply.send(self.agg.expire(&name));
            }
            Command::Ingest(metrics, reply) => {
                for m in &metrics {
                    self.agg.observe(m, &mut self.out)?;
                }
                let _ = reply.send(metrics.len());
            }
        }
        Ok(())
    }

    /// Writes every known series to `--dump-file` (SIGUSR2).
    fn dump(&mut self) {
        let Some(path) = &self.cfg.dump_file else {
            crate::log!(Warn, "dump_skipped", reason = "no --dump-file");
            return;
        };
        let mut buf = Vec::new();
        let n = self.agg.dump(&mut buf);
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, &buf).and_then(|_| std::fs::rename(&tmp, path));
        match written {
            Ok(()) => crate::log!(Info, "dumped", file = path.display(), series = n),
            Err(e) => crate::log!(Error, "dump_failed", file = path.display(), error = e),
        }
    }

    fn write_self_metrics(&mut self, at: i64, took: u64) -> Result<()> {
        let mut lines = Vec::new();
        let start = at - self.cfg.flush;
        let delta = |name: &str, v: u64| {
            let mut m = Metric::counter(name, Temporality::Delta, Value::U64(v), at);
            m.start_ts = Some(start);
            m
        };
        for (i, l) in self.shared.listeners.iter().enumerate() {
            let now = Snapshot::of(l);
            let before = self.last_counts.get(i).cloned().unwrap_or_default();
            let tag = |m: Metric| m.with_tag("listener", &l.label);
            lines.push(tag(delta(
                "statsd.datagrams",
                now.datagrams - before.datagrams,
            )));
            lines.push(tag(delta("statsd.lines", now.lines - before.lines)));
            lines.push(tag(delta("statsd.metrics", now.metrics - before.metrics)));
            for (r, reason) in BAD_REASONS.iter().enumerate() {
                let d = now.bad[r] - before.bad.get(r).copied().unwrap_or(0);
                if d > 0 {
                    lines.push(tag(delta("statsd.bad_lines", d)).with_tag("reason", reason));
                }
            }
            for (r, reason) in Reject::ALL.iter().enumerate() {
                let d = now.rejected[r] - before.rejected.get(r).copied().unwrap_or(0);
                if d > 0 {
                    lines.push(
                        tag(delta("statsd.signed_rejected", d)).with_tag("reason", reason.reason()),
                    );
                }
            }
            if !l.fds.is_empty() {
                lines.push(tag(delta(
                    "statsd.kernel_drops",
                    now.kernel_drops.saturating_sub(before.kernel_drops),
                )));
            }
            if i < self.last_counts.len() {
                self.last_counts[i] = now;
            }
        }
        lines.push(
            Metric::gauge("statsd.flush_seconds", Value::F64(took as f64 / 1e9), at).with_unit("s"),
        );
        lines.push(Metric::gauge(
            "statsd.series",
            Value::U64(self.agg.series_count() as u64),
            at,
        ));
        self.out.write_ndjson(&lines)
    }
}

fn metric_json(name: &str, lines: &[u8]) -> String {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"name\":");
    crate::ndjson::encode::write_str(&mut out, name);
    out.extend_from_slice(b",\"open\":[");
    let body: Vec<&[u8]> = lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    out.extend_from_slice(&body.join(&b","[..]));
    out.extend_from_slice(b"]}\n");
    String::from_utf8_lossy(&out).into_owned()
}

/// Live throughput in the process title, like Brubeck's proclines.
#[derive(Default)]
struct Title {
    last: Option<(i64, Vec<u64>)>,
}

impl Title {
    fn update(&mut self, shared: &Shared) {
        let now = now_ns();
        let counts: Vec<u64> = shared
            .listeners
            .iter()
            .map(|l| l.counters.metrics.load(Relaxed))
            .collect();
        let Some((then, before)) = self.last.replace((now, counts.clone())) else {
            return;
        };
        let secs = ((now - then) as f64 / NS_PER_SEC as f64).max(1e-3);
        let mut text = String::from("tlm-statsd");
        for (l, (c, b)) in shared.listeners.iter().zip(counts.iter().zip(&before)) {
            let short = l.label.rsplit(':').next().unwrap_or("");
            let scheme = l.label.split("://").next().unwrap_or("");
            text.push_str(&format!(
                " [{scheme}:{short} {:.0}/s]",
                (c - b) as f64 / secs
            ));
        }
        text.push_str(&format!(" [series {}]", shared.series.load(Relaxed)));
        crate::runtime::set_process_title(&text);
    }
}
