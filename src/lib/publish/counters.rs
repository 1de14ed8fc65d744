//! Per-destination delivery counters, shared by its lanes and read for logs and SIGUSR1.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Points (input metrics) by what happened to them, and retried sends.
#[derive(Debug, Default)]
pub struct Counters {
    /// Delivered: acknowledged by the backend, or accepted by the kernel where the protocol
    /// has no acknowledgement.
    pub sent: AtomicU64,
    /// Sends that failed and were tried again.
    pub retried: AtomicU64,
    /// Points written to the disk spool.
    pub spooled: AtomicU64,
    /// Points delivered from the disk spool.
    pub replayed: AtomicU64,
    /// Points sent again from the replay window after a reconnect (duplicates by design).
    pub resent: AtomicU64,
    /// Points the backend refused as invalid (an HTTP 4xx): retrying cannot help.
    pub rejected: AtomicU64,
    /// Points lost: the spool was full, or no spool and the drain timeout ran out.
    pub dropped: AtomicU64,
    /// Metrics the destination's format cannot carry.
    pub unsupported: AtomicU64,
    /// Points waiting in memory or in the spool (a level, not a total).
    pub queued: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub sent: u64,
    pub retried: u64,
    pub spooled: u64,
    pub replayed: u64,
    pub resent: u64,
    pub rejected: u64,
    pub dropped: u64,
    pub unsupported: u64,
    pub queued: u64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            sent: self.sent.load(Relaxed),
            retried: self.retried.load(Relaxed),
            spooled: self.spooled.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            resent: self.resent.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            unsupported: self.unsupported.load(Relaxed),
            queued: self.queued.load(Relaxed),
        }
    }

    /// Logs one line for destination `dest` under `event`; at warn level when anything was
    /// lost or refused, so a quiet run stays quiet.
    pub fn log(&self, event: &str, dest: &str) {
        let s = self.snapshot();
        let fields: [(&str, &dyn std::fmt::Display); 10] = [
            ("dest", &dest),
            ("sent", &s.sent),
            ("retried", &s.retried),
            ("spooled", &s.spooled),
            ("replayed", &s.replayed),
            ("resent", &s.resent),
            ("rejected", &s.rejected),
            ("dropped", &s.dropped),
            ("unsupported", &s.unsupported),
            ("queued", &s.queued),
        ];
        let level = if s.dropped + s.rejected > 0 {
            crate::log::Level::Error
        } else {
            crate::log::Level::Info
        };
        if crate::log::enabled(level) {
            crate::log::emit(level, event, &fields);
        }
    }
}
