//! One destination: its encoder per lane, the open batch of each lane, and the lane threads.
//!
//! Runs on the command's thread: metrics are encoded straight into the open batch of the
//! lane their series maps to; a batch is sealed when it holds `--batch` points or has been
//! open for `--linger`, and handed to its lane thread. A lane that cannot take it (no spool,
//! memory budget spent) makes this thread wait: backpressure up the pipe rather than loss.

use super::batch::Batch;
use super::build;
use super::counters::Counters;
use super::lane::{Lane, RetryPolicy};
use super::queue::Queue;
use super::spool::Spool;
use super::target::Target;
use super::{Options, Shutdown};
use crate::encode::Encoder;
use crate::error::{Error, Result};
use crate::log::RateLimit;
use crate::metric::Metric;
use crossbeam_channel::{bounded, SendTimeoutError, Sender};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

struct OpenBatch {
    encoder: Box<dyn Encoder + Send>,
    body: Vec<u8>,
    points: u64,
    opened_ns: i64,
    tx: Option<Sender<Batch>>,
}

pub struct Destination {
    pub label: String,
    pub counters: Arc<Counters>,
    lanes: Vec<OpenBatch>,
    threads: Vec<JoinHandle<()>>,
    batch_points: u64,
    linger_ns: i64,
    /// Each payload stands alone (an HTTP request, a datagram), so per-stream encoder state
    /// such as Prometheus `# TYPE` lines starts afresh in every batch.
    per_message: bool,
    shutdown: Arc<Shutdown>,
    drain: Duration,
    terminating: Arc<AtomicBool>,
    /// When a blocked hand-over gives up during termination.
    handoff_deadline: Option<Instant>,
    unsupported_log: RateLimit,
    _spool_lock: Option<std::fs::File>,
}

impl Destination {
    pub fn start(
        target: &Target,
        opts: &Options,
        terminating: Arc<AtomicBool>,
    ) -> Result<Destination> {
        let label = target.label();
        let counters = Arc::new(Counters::default());
        let shutdown = Arc::new(Shutdown::default());
        let lanes_n = build::option_usize(target, "concurrency", opts.concurrency)?.max(1);
        let (spool_dirs, lock) = match &opts.spool {
            Some(root) if !opts.dry_run => {
                let (dirs, lock) = spool_dirs(root, &label)?;
                (Some(dirs), Some(lock))
            }
            _ => (None, None),
        };
        let policy = RetryPolicy {
            retries: opts.retries,
            backoff_min: opts.backoff_min,
            backoff_max: opts.backoff_max,
        };
        let mut lanes = Vec::with_capacity(lanes_n);
        let mut threads = Vec::with_capacity(lanes_n);
        for k in 0..lanes_n {
            let spool = match &spool_dirs {
                Some(dirs) => Some(open_lane_spool(
                    dirs,
                    k,
                    lanes_n,
                    opts.spool_max / lanes_n as u64,
                )?),
                None => None,
            };
            let (tx, rx) = bounded::<Batch>(2);
            let lane = Lane {
                label: label.clone(),
                rx,
                queue: Queue::new(opts.buffer_bytes / lanes_n, spool),
                transport: build::transport(target, opts, counters.clone())?,
                counters: counters.clone(),
                policy: policy.clone(),
                shutdown: shutdown.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("lane-{k}"))
                .spawn(move || lane.run())
                .map_err(|e| Error::internal(format!("cannot start a lane thread: {e}")))?;
            threads.push(handle);
            lanes.push(OpenBatch {
                encoder: build::encoder(target, opts)?,
                body: Vec::new(),
                points: 0,
                opened_ns: 0,
                tx: Some(tx),
            });
        }
        let linger = build::option_duration(target, "linger", opts.linger)?;
        Ok(Destination {
            label,
            counters,
            lanes,
            threads,
            batch_points: build::option_usize(target, "batch", opts.batch)?.max(1) as u64,
            linger_ns: linger.as_nanos() as i64,
            per_message: build::per_message(target),
            shutdown,
            drain: opts.drain_timeout,
            terminating,
            handoff_deadline: None,
            unsupported_log: RateLimit::default(),
            _spool_lock: lock,
        })
    }

    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Whether metrics can be encoded for this destination on any thread (see
    /// `Encoder::stateless`), and handed over as bytes with `add_encoded`.
    pub fn stateless(&self) -> bool {
        self.lanes.iter().all(|l| l.encoder.stateless())
    }

    /// Encodes `m` into the open batch of lane `hash % lanes`.
    pub fn add(&mut self, m: &Metric, hash: u64, now_ns: i64) -> Result<()> {
        let k = (hash % self.lanes.len() as u64) as usize;
        let lane = &mut self.lanes[k];
        if let Err(e) = lane.encoder.encode(m, &mut lane.body) {
            self.unsupported(m, e.reason);
            return Ok(());
        }
        self.added(k, now_ns)
    }

    /// Appends what a stateless encoder made of one metric on another thread.
    pub fn add_encoded(&mut self, encoded: &[u8], hash: u64, now_ns: i64) -> Result<()> {
        let k = (hash % self.lanes.len() as u64) as usize;
        self.lanes[k].body.extend_from_slice(encoded);
        self.added(k, now_ns)
    }

    /// Counts and logs (rate-limited) a metric this destination's format cannot carry.
    pub fn unsupported(&mut self, m: &Metric, reason: &str) {
        Counters::add(&self.counters.unsupported, 1);
        if let Some(suppressed) = self.unsupported_log.allow() {
            crate::log!(
                Warn,
                "unsupported",
                dest = self.label,
                name = m.name,
                kind = m.kind,
                reason = reason,
                suppressed = suppressed
            );
        }
    }

    fn added(&mut self, k: usize, now_ns: i64) -> Result<()> {
        let lane = &mut self.lanes[k];
        if lane.points == 0 {
            lane.opened_ns = now_ns;
        }
        lane.points += 1;
        if lane.points >= self.batch_points {
            self.seal(k)?;
        }
        Ok(())
    }

    /// Seals every batch open for at least `--linger`.
    pub fn linger(&mut self, now_ns: i64) -> Result<()> {
        for k in 0..self.lanes.len() {
            let lane = &self.lanes[k];
            if lane.points > 0 && now_ns - lane.opened_ns >= self.linger_ns {
                self.seal(k)?;
            }
        }
        Ok(())
    }

    fn seal(&mut self, k: usize) -> Result<()> {
        let lane = &mut self.lanes[k];
        let mut payload = Vec::with_capacity(lane.body.len() + 64);
        lane.encoder.seal(&lane.body, &mut payload);
        if self.per_message {
            let mut trailer = Vec::new();
            lane.encoder.finish(&mut trailer);
            payload.extend_from_slice(&trailer);
        }
        let batch = Batch::new(payload, lane.points);
        lane.body.clear();
        lane.points = 0;
        self.hand_over(k, batch)
    }

    /// Gives `batch` to lane `k`, waiting while the lane is full. During termination the wait
    /// is bounded by the drain timeout, after which the batch is counted as lost.
    fn hand_over(&mut self, k: usize, mut batch: Batch) -> Result<()> {
        let Some(tx) = &self.lanes[k].tx else {
            return Err(Error::internal("batch after the destination closed"));
        };
        loop {
            match tx.send_timeout(batch, Duration::from_millis(100)) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Timeout(b)) => batch = b,
                Err(SendTimeoutError::Disconnected(_)) => {
                    return Err(Error::internal(format!(
                        "the delivery thread for {} ended",
                        self.label
                    )))
                }
            }
            if self.terminating.load(Relaxed) {
                let deadline = *self
                    .handoff_deadline
                    .get_or_insert_with(|| Instant::now() + self.drain);
                if Instant::now() >= deadline {
                    Counters::add(&self.counters.dropped, batch.points);
                    crate::log!(
                        Error,
                        "dropped",
                        dest = self.label,
                        points = batch.points,
                        reason =
                            "the destination stayed full until the drain timeout at termination"
                    );
                    return Ok(());
                }
            }
        }
    }

    /// Seals what is open, lets the lanes deliver until `--drain-timeout`, then waits for them.
    pub fn finish(&mut self) -> Result<()> {
        for k in 0..self.lanes.len() {
            if self.lanes[k].points > 0 {
                self.seal(k)?;
            }
        }
        self.shutdown
            .set_deadline(crate::time::now_ns() + self.drain.as_nanos() as i64);
        for lane in &mut self.lanes {
            lane.tx = None;
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                return Err(Error::internal(format!(
                    "a delivery thread for {} panicked",
                    self.label
                )));
            }
        }
        Ok(())
    }
}

/// The spool directory of each lane under `root/<label>/`, after taking the destination's
/// lock so that two runs never share a spool.
fn spool_dirs(root: &Path, label: &str) -> Result<(PathBuf, std::fs::File)> {
    let dir = root.join(safe_name(label));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::new(crate::Exit::Io, format!("spool {}: {e}", dir.display())))?;
    let lock_path = dir.join(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            Error::new(
                crate::Exit::Io,
                format!("spool lock {}: {e}", lock_path.display()),
            )
        })?;
    // SAFETY: flock on a descriptor we own; the lock lives as long as the File.
    let locked = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    if locked != 0 {
        return Err(Error::unavailable(format!(
            "spool {} is in use by another tlm-publish",
            dir.display()
        )));
    }
    Ok((dir, lock))
}

/// Lane `k`'s spool, taking over the spools of lanes an earlier run had and this one does
/// not (`lane-j` for `j >= lanes`, adopted by lane `j % lanes`), so nothing is left behind
/// when `--concurrency` shrinks.
fn open_lane_spool(dir: &Path, k: usize, lanes: usize, max: u64) -> Result<Spool> {
    let mut spool = Spool::open(&dir.join(format!("lane-{k}")), max)?;
    let mut j = k + lanes;
    loop {
        let old = dir.join(format!("lane-{j}"));
        if !old.exists() {
            break;
        }
        let n = spool.adopt(&old)?;
        crate::log!(Info, "spool_adopted", from = old.display(), batches = n);
        j += lanes;
    }
    Ok(spool)
}

/// `label` with every byte other than `[A-Za-z0-9._-]` as `_`: one path component.
fn safe_name(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_names_are_one_component() {
        assert_eq!(
            safe_name("graphite://127.0.0.1:2003"),
            "graphite___127.0.0.1_2003"
        );
        assert_eq!(safe_name("file:/a/b"), "file__a_b");
    }
}
