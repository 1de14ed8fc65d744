//! `exec --persistent`: one long-running plugin instead of one run per collection (Telegraf's
//! execd). A reader thread keeps what the program prints; each collection takes the complete
//! lines printed since the last one. With `--signal` the program is asked for a report at
//! every collection (a newline on its stdin, or SIGHUP/SIGUSR1) and the collection waits for
//! its answer to go quiet (HUP and USR1 are not sent in the collection that starts the program:
//! they would end it before it sets its handlers). A program that exits is logged and restarted at the next
//! collection, which reports `collect.up 0`.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How a persistent plugin is asked for a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Signal {
    /// Never: it prints on its own schedule
    #[default]
    None,
    /// A newline on its stdin
    Stdin,
    /// SIGHUP
    Hup,
    /// SIGUSR1
    Usr1,
}

/// After an answer starts, the collection ends once the program has been quiet this long.
const QUIET: Duration = Duration::from_millis(100);

/// Bytes printed and not yet collected, shared with the reader thread.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Bumped on every read, so a collection can tell new output from old.
    reads: u64,
    closed: bool,
}

struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    pending: Arc<(Mutex<Pending>, Condvar)>,
}

pub struct Persistent {
    argv: Vec<String>,
    signal: Signal,
    timeout: Duration,
    running: Option<Running>,
}

impl Persistent {
    pub fn new(argv: Vec<String>, signal: Signal, timeout: Duration) -> Persistent {
        Persistent {
            argv,
            signal,
            timeout,
            running: None,
        }
    }

    /// The complete lines printed since the last call, starting the program if it is not
    /// running; an error when it could not start or has exited (it is started again next
    /// time).
    pub fn read(&mut self) -> Result<Vec<u8>> {
        let just_started = self.running.is_none();
        if just_started {
            self.running = Some(self.start()?);
        }
        let Some(run) = self.running.as_mut() else {
            return Err(Error::internal("exec: no running program"));
        };
        // A program started this instant has not set its signal handlers yet, and HUP or USR1
        // would end it; a newline waits in the pipe until it reads.
        let asked = (!just_started || self.signal == Signal::Stdin) && ask(run, self.signal);
        if asked {
            wait_for_answer(&run.pending, self.timeout);
        }
        let (bytes, closed) = take_lines(&run.pending);
        if closed {
            let status = self.reap();
            // What it printed before it ended is kept; a collection with nothing is a failure.
            if bytes.is_empty() {
                return Err(Error::unavailable(format!(
                    "exec {}: exited ({status}); restarting",
                    self.name()
                )));
            }
            crate::log!(
                Warn,
                "plugin_exited",
                command = self.name(),
                status = status,
                action = "restart"
            );
        }
        Ok(bytes)
    }

    fn start(&self) -> Result<Running> {
        let stdin = match self.signal {
            Signal::Stdin => Stdio::piped(),
            _ => Stdio::null(),
        };
        let mut child = super::exec::spawn(&self.argv, stdin)?;
        let name = self.argv.first().cloned().unwrap_or_default();
        crate::log!(Info, "plugin_started", command = name, pid = child.id());
        let pending = Arc::new((Mutex::new(Pending::default()), Condvar::new()));
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::internal("exec: no stdout pipe"))?;
        let shared = Arc::clone(&pending);
        std::thread::spawn(move || keep_output(stdout, &shared));
        let _ = super::exec::log_stderr(&mut child, &name);
        Ok(Running {
            stdin: child.stdin.take(),
            child,
            pending,
        })
    }

    fn name(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    /// Reaps an exited program, so the next collection starts it again; its exit status.
    fn reap(&mut self) -> String {
        match self.running.take() {
            Some(mut run) => run
                .child
                .wait()
                .map_or_else(|e| e.to_string(), |s| s.to_string()),
            None => "not running".into(),
        }
    }
}

impl Drop for Persistent {
    fn drop(&mut self) {
        if let Some(mut run) = self.running.take() {
            drop(run.stdin.take());
            super::exec::kill_group(&mut run.child);
        }
    }
}

/// Sends the report request; false when there is none to wait for.
fn ask(run: &mut Running, signal: Signal) -> bool {
    let sig = match signal {
        Signal::None => return false,
        Signal::Stdin => {
            let sent = run
                .stdin
                .as_mut()
                .is_some_and(|s| s.write_all(b"\n").and_then(|_| s.flush()).is_ok());
            return sent;
        }
        Signal::Hup => libc::SIGHUP,
        Signal::Usr1 => libc::SIGUSR1,
    };
    // SAFETY: kill(2) on a child we started and have not reaped.
    unsafe { libc::kill(run.child.id() as i32, sig) == 0 }
}

/// Waits until output has started and then been quiet for `QUIET`, or `timeout` passed.
fn wait_for_answer(pending: &(Mutex<Pending>, Condvar), timeout: Duration) {
    let (lock, cond) = pending;
    let deadline = Instant::now() + timeout;
    let Ok(mut p) = lock.lock() else { return };
    let start_reads = p.reads;
    let mut last = p.reads;
    loop {
        let now = Instant::now();
        if now >= deadline || p.closed {
            return;
        }
        let wait = if p.reads == start_reads {
            deadline - now
        } else {
            QUIET.min(deadline - now)
        };
        let Ok((guard, timed_out)) = cond.wait_timeout(p, wait) else {
            return;
        };
        p = guard;
        if timed_out.timed_out() && p.reads != start_reads && p.reads == last {
            return;
        }
        last = p.reads;
    }
}

/// The complete lines collected so far (a partial last line waits for its newline, unless
/// the program has closed its output) and whether it has.
fn take_lines(pending: &(Mutex<Pending>, Condvar)) -> (Vec<u8>, bool) {
    let Ok(mut p) = pending.0.lock() else {
        return (Vec::new(), true);
    };
    let end = if p.closed {
        p.bytes.len()
    } else {
        p.bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
    };
    let rest = p.bytes.split_off(end);
    let lines = std::mem::replace(&mut p.bytes, rest);
    (lines, p.closed)
}

fn keep_output(mut stdout: impl Read, pending: &(Mutex<Pending>, Condvar)) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stdout.read(&mut buf).unwrap_or(0);
        let Ok(mut p) = pending.0.lock() else { return };
        if n == 0 {
            p.closed = true;
        } else {
            p.bytes.extend_from_slice(&buf[..n]);
            p.reads += 1;
        }
        pending.1.notify_all();
        if n == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, signal: Signal) -> Persistent {
        let argv = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        Persistent::new(argv, signal, Duration::from_secs(5))
    }

    #[test]
    fn answers_each_newline_on_stdin() {
        let mut p = sh(
            "n=0; while read x; do n=$((n+1)); echo \"a.b $n\"; echo \"a.c $n\"; done",
            Signal::Stdin,
        );
        for want in 1..=3 {
            let text = String::from_utf8(p.read().unwrap()).unwrap();
            assert_eq!(text, format!("a.b {want}\na.c {want}\n"));
        }
    }

    #[test]
    fn keeps_what_it_prints_on_its_own_and_restarts_after_exit() {
        let mut p = sh(
            "echo 'x 1'; sleep 0.3; echo 'x 2'; printf 'y'",
            Signal::None,
        );
        let mut first = Vec::new();
        for _ in 0..50 {
            first = p.read().unwrap();
            if !first.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(first, b"x 1\n");
        std::thread::sleep(Duration::from_millis(600));
        // It exited: what it printed last is kept, with its partial last line.
        assert_eq!(p.read().unwrap(), b"x 2\ny");
        // The next read starts it again (and has nothing yet).
        assert_eq!(p.read().unwrap(), b"");
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(p.read().unwrap(), b"x 1\n");
    }

    #[test]
    fn signal_hup_asks_for_a_report() {
        let mut p = sh(
            "trap 'echo hup.count 1' HUP; echo ready; while :; do sleep 0.05; done",
            Signal::Hup,
        );
        // The first collection starts it without a signal.
        let _ = p.read();
        std::thread::sleep(Duration::from_millis(200));
        let text = String::from_utf8(p.read().unwrap()).unwrap();
        assert!(text.contains("hup.count 1"), "{text:?}");
    }
}
