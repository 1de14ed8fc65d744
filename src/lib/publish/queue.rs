//! A lane's queue: batches in memory up to a byte budget, then on disk behind them.
//!
//! The order is one FIFO: the memory part holds the oldest batches and the spool the newer
//! ones, and once anything is on disk every new batch goes to disk too, so nothing overtakes.
//! Batches leave from the front, memory first, then the spool's oldest.

use super::batch::Batch;
use super::spool::{Spool, SpoolError};
use crate::error::Result;
use std::collections::VecDeque;

/// Where `Queue::push` put a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Memory,
    Spooled,
    /// The spool is full: the batch is lost (the caller counts and logs it).
    Dropped,
}

pub struct Queue {
    memory: VecDeque<Batch>,
    memory_bytes: usize,
    memory_max: usize,
    spool: Option<Spool>,
    /// The spool's oldest batch, read once and kept while it is being sent.
    loaded: Option<Batch>,
}

impl Queue {
    pub fn new(memory_max: usize, spool: Option<Spool>) -> Queue {
        Queue {
            memory: VecDeque::new(),
            memory_bytes: 0,
            memory_max,
            spool,
            loaded: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.memory.is_empty() && self.spool.as_ref().is_none_or(Spool::is_empty)
    }

    pub fn has_spool(&self) -> bool {
        self.spool.is_some()
    }

    /// Points waiting, in memory and on disk.
    pub fn points(&self) -> u64 {
        let mem: u64 = self.memory.iter().map(|b| b.points).sum();
        mem + self.spool.as_ref().map_or(0, Spool::points)
    }

    /// Whether `push` would have to hold a batch of `bytes` in memory beyond the budget
    /// (only without a spool: the caller then waits instead of pushing).
    pub fn would_overflow(&self, bytes: usize) -> bool {
        self.spool.is_none()
            && !self.memory.is_empty()
            && self.memory_bytes + bytes > self.memory_max
    }

    /// Adds `batch` at the back: in memory within the budget (and while nothing is spooled),
    /// else to the spool; without a spool, in memory regardless (see `would_overflow`). A
    /// spool that fails for another reason than space (permissions, I/O) is logged and the
    /// batch kept in memory: held beyond the budget rather than lost.
    pub fn push(&mut self, batch: Batch) -> Pushed {
        let spooled = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        let fits = self.memory_bytes + batch.bytes() <= self.memory_max;
        if let Some(spool) = self.spool.as_mut().filter(|_| spooled || !fits) {
            match spool.push_back(&batch) {
                Ok(()) => return Pushed::Spooled,
                Err(SpoolError::Full) => return Pushed::Dropped,
                Err(SpoolError::Io(e)) => {
                    crate::log!(Error, "spool_failed", reason = e, kept = "in memory");
                }
            }
        }
        self.memory_bytes += batch.bytes();
        self.memory.push_back(batch);
        Pushed::Memory
    }

    /// The oldest batch and whether it comes from the spool.
    pub fn front(&mut self) -> Result<Option<(&Batch, bool)>> {
        if !self.memory.is_empty() {
            return Ok(self.memory.front().map(|b| (b, false)));
        }
        if self.loaded.is_none() {
            self.loaded = match &self.spool {
                Some(s) => s.front()?,
                None => None,
            };
        }
        Ok(self.loaded.as_ref().map(|b| (b, true)))
    }

    /// Removes the oldest batch (the one `front` returned) and hands it back.
    pub fn pop(&mut self) -> Result<Option<Batch>> {
        if let Some(b) = self.memory.pop_front() {
            self.memory_bytes -= b.bytes();
            return Ok(Some(b));
        }
        let loaded = self.loaded.take();
        match &mut self.spool {
            Some(s) => s.pop_front().map(|()| loaded),
            None => Ok(None),
        }
    }

    /// Moves every batch held in memory to the front of the spool, keeping the order, so a
    /// long outage or a shutdown leaves them on disk. Returns the points moved and the points
    /// dropped because the spool was full.
    pub fn persist(&mut self) -> std::result::Result<(u64, u64), SpoolError> {
        let Some(spool) = &mut self.spool else {
            return Ok((0, 0));
        };
        let (mut moved, mut dropped) = (0, 0);
        while let Some(b) = self.memory.pop_back() {
            self.memory_bytes -= b.bytes();
            match spool.push_front(&b) {
                Ok(()) => moved += b.points,
                Err(SpoolError::Full) => dropped += b.points,
                Err(e) => {
                    self.memory_bytes += b.bytes();
                    self.memory.push_back(b);
                    return Err(e);
                }
            }
        }
        Ok((moved, dropped))
    }

    /// Empties the memory part, returning its points (lost: the caller counts them).
    pub fn discard_memory(&mut self) -> u64 {
        self.memory_bytes = 0;
        self.memory.drain(..).map(|b| b.points).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn b(text: &str) -> Batch {
        Batch::new(text.as_bytes().to_vec(), 1)
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tlm-queue-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn drain(q: &mut Queue) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        while let Some((b, spooled)) = q.front().unwrap() {
            out.push((String::from_utf8(b.payload.clone()).unwrap(), spooled));
            q.pop().unwrap();
        }
        out
    }

    #[test]
    fn overflow_goes_to_disk_and_nothing_overtakes() {
        let dir = tmp("overflow");
        let mut q = Queue::new(4, Some(Spool::open(&dir, u64::MAX).unwrap()));
        assert_eq!(q.push(b("aa")), Pushed::Memory);
        assert_eq!(q.push(b("bb")), Pushed::Memory);
        assert_eq!(q.push(b("cc")), Pushed::Spooled);
        // Memory has room again after a pop, but the spool is not empty: still to disk.
        q.pop().unwrap();
        assert_eq!(q.push(b("d")), Pushed::Spooled);
        assert_eq!(q.points(), 3);
        assert_eq!(
            drain(&mut q),
            [
                ("bb".into(), false),
                ("cc".into(), true),
                ("d".into(), true)
            ]
        );
        assert!(q.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn persist_keeps_order_in_front_of_the_spool() {
        let dir = tmp("persist");
        let mut q = Queue::new(4, Some(Spool::open(&dir, u64::MAX).unwrap()));
        for t in ["a", "b", "c", "dd", "e"] {
            q.push(b(t));
        }
        assert_eq!(q.persist().unwrap(), (3, 0));
        let order: Vec<String> = drain(&mut q).into_iter().map(|(t, _)| t).collect();
        assert_eq!(order, ["a", "b", "c", "dd", "e"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_spool_memory_is_the_limit() {
        let mut q = Queue::new(4, None);
        assert!(!q.would_overflow(100), "an empty queue takes any batch");
        q.push(b("abc"));
        assert!(q.would_overflow(2));
        assert!(!q.would_overflow(1));
        assert_eq!(q.persist().unwrap(), (0, 0));
        assert_eq!(q.discard_memory(), 1);
        assert!(q.is_empty());
    }

    #[test]
    fn a_full_spool_drops_and_says_so() {
        let dir = tmp("full");
        let mut q = Queue::new(0, Some(Spool::open(&dir, 30).unwrap()));
        assert_eq!(q.push(b("x")), Pushed::Spooled);
        assert_eq!(q.push(b("yyyyyyyyyy")), Pushed::Dropped);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
