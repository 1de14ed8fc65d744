//! A lane: one thread that delivers a destination's batches in order, retrying with
//! backoff, overflowing to the spool, and draining or spooling at shutdown.
//!
//! Every series maps to one lane, so order per series holds whatever the concurrency. The
//! head batch is retried until it is delivered or rejected; batches behind it wait in the
//! lane's queue (memory, then spool). After `retries` failed attempts the memory part goes to
//! disk, so a long outage holds nothing that a crash could lose.

use super::backoff::Backoff;
use super::batch::Batch;
use super::counters::Counters;
use super::queue::{Pushed, Queue};
use super::transport::{SendError, Transport};
use super::Shutdown;
use crate::error::Result;
use crate::log::RateLimit;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a lane retries.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts before the queue's memory part moves to the spool.
    pub retries: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

pub struct Lane {
    pub label: String,
    pub rx: Receiver<Batch>,
    pub queue: Queue,
    pub transport: Box<dyn Transport>,
    pub counters: Arc<Counters>,
    pub policy: RetryPolicy,
    pub shutdown: Arc<Shutdown>,
}

struct State {
    /// A batch taken from the channel that the queue cannot hold yet (no spool, memory full).
    held: Option<Batch>,
    /// The channel is closed: no more batches will come.
    closed: bool,
    attempts: u32,
    warn: RateLimit,
    backoff: Backoff,
    progress: Option<indicatif::ProgressBar>,
}

impl Lane {
    /// Delivers until the channel closes and the queue is empty, or the shutdown deadline.
    pub fn run(mut self) {
        let initial = self.queue.points();
        Counters::add(&self.counters.queued, initial);
        let mut st = State {
            held: None,
            closed: false,
            attempts: 0,
            warn: RateLimit::default(),
            backoff: Backoff::new(self.policy.backoff_min, self.policy.backoff_max),
            progress: super::progress::bar(initial, &format!("replaying spool for {}", self.label)),
        };
        if initial > 0 {
            crate::log!(Info, "spool_found", dest = self.label, points = initial);
        }
        if let Err(e) = self.deliver_all(&mut st) {
            crate::log!(Error, "lane_failed", dest = self.label, reason = e);
            self.give_up(&mut st);
        }
        if let Some(bar) = st.progress.take() {
            bar.finish_and_clear();
        }
    }

    fn deliver_all(&mut self, st: &mut State) -> Result<()> {
        loop {
            self.intake(st, Duration::ZERO);
            if self.queue.is_empty() && st.held.is_none() {
                if st.closed {
                    self.close_transport(st);
                    return Ok(());
                }
                self.intake(st, Duration::from_millis(250));
                continue;
            }
            if !self.send_front(st)? {
                if self.shutdown.due() {
                    self.give_up(st);
                    return Ok(());
                }
                let wait = st.backoff.delay(st.attempts);
                self.intake(st, wait);
            }
        }
    }

    /// Sends the oldest batch; false when it must be retried.
    fn send_front(&mut self, st: &mut State) -> Result<bool> {
        let Some((batch, from_spool)) = self.queue.front()? else {
            // Only a held batch is left: room has been made for it by now.
            if let Some(b) = st.held.take() {
                self.accept(b);
            }
            return Ok(true);
        };
        let points = batch.points;
        let outcome = self.transport.send(batch);
        match outcome {
            Ok(()) => {
                let kept = self.queue.pop()?;
                self.delivered(st, points, from_spool);
                if let Some(b) = kept {
                    self.transport.keep(b);
                }
                Ok(true)
            }
            Err(SendError::Reject(why)) => {
                self.queue.pop()?;
                Counters::add(&self.counters.rejected, points);
                self.counters.queued.fetch_sub(points, Relaxed);
                crate::log!(
                    Error,
                    "rejected",
                    dest = self.label,
                    points = points,
                    reason = why
                );
                Ok(true)
            }
            Err(SendError::Retry(why)) => {
                self.failed(st, &why)?;
                Ok(false)
            }
        }
    }

    fn delivered(&mut self, st: &mut State, points: u64, from_spool: bool) {
        Counters::add(&self.counters.sent, points);
        self.counters.queued.fetch_sub(points, Relaxed);
        if from_spool {
            Counters::add(&self.counters.replayed, points);
            if let Some(bar) = &st.progress {
                bar.inc(points);
            }
        }
        if st.attempts > 0 {
            crate::log!(
                Info,
                "recovered",
                dest = self.label,
                after_attempts = st.attempts
            );
        }
        st.attempts = 0;
    }

    fn failed(&mut self, st: &mut State, why: &str) -> Result<()> {
        st.attempts += 1;
        Counters::add(&self.counters.retried, 1);
        if let Some(suppressed) = st.warn.allow() {
            crate::log!(
                Warn,
                "send_failed",
                dest = self.label,
                attempt = st.attempts,
                reason = why,
                suppressed = suppressed
            );
        }
        if st.attempts == self.policy.retries && self.queue.has_spool() {
            let (moved, dropped) = self.queue.persist().map_err(|e| {
                crate::Error::new(
                    crate::Exit::Io,
                    format!("spooling for {}: {e:?}", self.label),
                )
            })?;
            self.spooled(moved, dropped);
            if moved > 0 {
                crate::log!(
                    Warn,
                    "spooling",
                    dest = self.label,
                    points = moved,
                    reason = "retries exhausted: the queue moves to disk until the backend is back"
                );
            }
        }
        Ok(())
    }

    /// Moves batches from the channel into the queue, waiting up to `wait` for them (and
    /// sleeping out the rest of `wait` when no more can be taken).
    fn intake(&mut self, st: &mut State, wait: Duration) {
        let until = Instant::now() + wait;
        loop {
            if let Some(b) = st.held.take() {
                if self.queue.would_overflow(b.bytes()) {
                    st.held = Some(b);
                    sleep_until(until);
                    return;
                }
                self.accept(b);
            }
            if st.closed {
                sleep_until(until);
                return;
            }
            match self.rx.recv_deadline(until) {
                Ok(b) if self.queue.would_overflow(b.bytes()) => st.held = Some(b),
                Ok(b) => self.accept(b),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => st.closed = true,
            }
        }
    }

    fn accept(&mut self, b: Batch) {
        let points = b.points;
        match self.queue.push(b) {
            Pushed::Memory => Counters::add(&self.counters.queued, points),
            Pushed::Spooled => {
                Counters::add(&self.counters.queued, points);
                Counters::add(&self.counters.spooled, points);
            }
            Pushed::Dropped => self.spooled(0, points),
        }
    }

    fn spooled(&self, moved: u64, dropped: u64) {
        Counters::add(&self.counters.spooled, moved);
        if dropped > 0 {
            Counters::add(&self.counters.dropped, dropped);
            crate::log!(
                Error,
                "dropped",
                dest = self.label,
                points = dropped,
                reason = "the spool is full (--spool-max or the disk)"
            );
        }
    }

    /// At the deadline: whatever is still held goes to the spool, or is counted as lost.
    fn give_up(&mut self, st: &mut State) {
        if let Some(b) = st.held.take() {
            self.accept(b);
        }
        if self.queue.has_spool() {
            match self.queue.persist() {
                Ok((moved, dropped)) => {
                    self.spooled(moved, dropped);
                    let left = self.queue.points();
                    crate::log!(Warn, "spooled_at_exit", dest = self.label, points = left, reason = "not delivered before the drain timeout; the next run with this --spool replays them");
                    return;
                }
                Err(e) => crate::log!(
                    Error,
                    "spool_failed",
                    dest = self.label,
                    reason = format!("{e:?}")
                ),
            }
        }
        let lost = self.queue.discard_memory();
        if lost > 0 {
            Counters::add(&self.counters.dropped, lost);
            self.counters.queued.fetch_sub(lost, Relaxed);
            crate::log!(
                Error,
                "dropped",
                dest = self.label,
                points = lost,
                reason = "not delivered before the drain timeout and no --spool to keep them"
            );
        }
    }

    /// Ends the session, retrying while the deadline allows (a TCP close that fails resends
    /// the replay window over a new connection).
    fn close_transport(&mut self, st: &mut State) {
        loop {
            match self.transport.close() {
                Ok(()) => return,
                Err(e) => {
                    st.attempts += 1;
                    if self.shutdown.due() {
                        crate::log!(Warn, "close_failed", dest = self.label, reason = e);
                        return;
                    }
                    crate::log!(
                        Warn,
                        "close_failed",
                        dest = self.label,
                        attempt = st.attempts,
                        reason = e
                    );
                    std::thread::sleep(st.backoff.delay(st.attempts));
                }
            }
        }
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}
