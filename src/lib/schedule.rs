//! Runs a job on an interval aligned to the wall clock, until a count or a signal.

use crate::error::Result;
use crate::signals::Signals;
use crate::time::{align_down, now_ns};
use crossbeam_channel::{after, select, Receiver};
use std::time::Duration;

/// Calls `job(now)` now and then at every multiple of `interval` (Unix ns), `count` times
/// (0 = forever). A run that overruns skips the ticks it missed rather than piling up.
/// SIGINT/SIGTERM end the loop between runs; the run in progress always completes.
pub fn every(interval: i64, count: u64, job: impl FnMut(i64) -> Result<()>) -> Result<()> {
    let signals = Signals::termination()?;
    every_until(interval, count, signals.receiver(), job)
}

/// `every`, ending between runs when `stop` delivers a signal number or is disconnected
/// (how one thread ends many schedules).
pub fn every_until(
    interval: i64,
    count: u64,
    stop: &Receiver<i32>,
    mut job: impl FnMut(i64) -> Result<()>,
) -> Result<()> {
    let mut runs = 0u64;
    loop {
        job(now_ns())?;
        runs += 1;
        if count > 0 && runs >= count {
            return Ok(());
        }
        let now = now_ns();
        let wait = align_down(now, interval) + interval - now;
        select! {
            recv(stop) -> sig => {
                if let Ok(sig) = sig {
                    crate::log!(Info, "signal", signal = crate::signals::name(sig), action = "exit");
                }
                return Ok(());
            },
            recv(after(Duration::from_nanos(wait.max(0) as u64))) -> _ => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_count_times_on_the_grid() {
        let mut seen = Vec::new();
        every(20_000_000, 3, |now| {
            seen.push(now);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 3);
        // The second and third runs start just after a 20 ms boundary.
        for t in &seen[1..] {
            assert!(t.rem_euclid(20_000_000) < 15_000_000, "{t}");
        }
    }
}
