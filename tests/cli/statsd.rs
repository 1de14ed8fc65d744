//! `tlm-statsd` end to end: the real daemon on loopback ports, fed over UDP, TCP, unix
//! datagram sockets, stdin, signed datagrams and its HTTP API, stopped by SIGTERM (which
//! flushes everything received). This file holds the shared harness (`Daemon`, the HTTP
//! client, output sums) and the aggregation tests; `statsd_input.rs` has bad input and
//! signed datagrams, `statsd_listen.rs` the listeners, HTTP API and dump, and
//! `statsd_peers.rs` the real client libraries and Etsy statsd.
//!
//! Most tests run with `--flush 1h` and stop the daemon with SIGTERM, so everything sent lands
//! in one window; sums are still taken over every flush written, so a window boundary in the
//! middle of a test cannot change a counter total. Before SIGTERM a test waits until `/stats`
//! has counted every line it sent, so nothing is still in a socket buffer.

use super::harness::{bin, text};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// A running `tlm-statsd`, its stdout and stderr collected by threads. Dropping it without
/// `stop` kills it (by its PID, through `Child`).
pub(crate) struct Daemon {
    child: Option<Child>,
    /// `event=listening listener=URL` in the order logged.
    pub listeners: Vec<String>,
    pub http: Option<SocketAddr>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// A stopped daemon.
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn metrics(&self) -> Vec<Value> {
        parse_lines(&self.stdout)
    }

    /// Asserts exit 0 and returns the metric lines.
    pub fn ok(&self) -> Vec<Value> {
        assert_eq!(self.status.code(), Some(0), "stderr:\n{}", self.stderr);
        self.metrics()
    }

    /// `key=N` of the `event=summary` log line.
    pub fn summary(&self, key: &str) -> u64 {
        let line = self
            .stderr
            .lines()
            .find(|l| l.contains("event=summary"))
            .unwrap_or_else(|| panic!("no event=summary in:\n{}", self.stderr));
        log_field(line, key)
            .unwrap_or_else(|| panic!("no {key}= in {line}"))
            .parse()
            .unwrap_or_else(|e| panic!("{key}= in {line}: {e}"))
    }
}

pub(crate) fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
}

impl Daemon {
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::spawn(args, Stdio::null()).0
    }

    /// A daemon on a UDP port of its choosing, with the HTTP API, plus `more` flags.
    pub fn udp_with_api(more: &[&str]) -> Daemon {
        let mut args = vec!["--listen", "udp://127.0.0.1:0", "--http", HTTP];
        args.extend_from_slice(more);
        Daemon::start(&args)
    }

    pub fn start_stdin(args: &[&str]) -> (Daemon, ChildStdin) {
        let (d, stdin) = Daemon::spawn(args, Stdio::piped());
        (d, stdin.expect("stdin"))
    }

    fn spawn(args: &[&str], stdin: Stdio) -> (Daemon, Option<ChildStdin>) {
        let mut child = Command::new(bin("tlm-statsd"))
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tlm-statsd");
        let stdin = child.stdin.take();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut out = child.stdout.take().expect("stdout");
        let o = stdout.clone();
        let t1 = thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().expect("stdout lock").extend_from_slice(&buf[..n]);
            }
        });
        let err = child.stderr.take().expect("stderr");
        let e = stderr.clone();
        let t2 = thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = e.lock().expect("stderr lock");
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut d = Daemon {
            child: Some(child),
            listeners: Vec::new(),
            http: None,
            stdout,
            stderr,
            readers: vec![t1, t2],
        };
        let want = args
            .iter()
            .filter(|a| **a == "--listen" || **a == "--secure-listen")
            .count();
        let want_http = args.contains(&"--http");
        d.wait_ready(want, want_http);
        (d, stdin)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    pub fn stdout(&self) -> String {
        text(&self.stdout.lock().expect("stdout lock"))
    }

    /// Waits for the listening lines, then for the SIGTERM handler: the daemon logs
    /// `event=listening` before it installs its signal handlers, and a SIGTERM in between
    /// kills it without a flush (reported as a bug; see `sigterm_right_after_listening_flushes`).
    fn wait_ready(&mut self, listeners: usize, http: bool) {
        let start = Instant::now();
        loop {
            let err = self.stderr();
            self.listeners = err
                .lines()
                .filter(|l| l.contains("event=listening "))
                .filter_map(|l| log_field(l, "listener").map(str::to_owned))
                .collect();
            self.http = err
                .lines()
                .find(|l| l.contains("event=http_listening "))
                .and_then(|l| log_field(l, "address"))
                .map(|a| a.parse().expect("http address"));
            let handler = sigterm_caught(self.pid());
            if self.listeners.len() >= listeners && (!http || self.http.is_some()) && handler {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .expect("child")
                .try_wait()
                .expect("wait")
            {
                panic!("tlm-statsd exited ({status}) before listening:\n{err}");
            }
            assert!(
                start.elapsed() < DEADLINE,
                "tlm-statsd not ready within {DEADLINE:?}:\n{err}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// `host:port` of the first listener with this scheme (`udp`, `tcp`).
    pub fn addr(&self, scheme: &str) -> SocketAddr {
        let prefix = format!("{scheme}://");
        self.listeners
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {scheme} listener in {:?}", self.listeners))
            .parse()
            .expect("listener address")
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the PID of the child this test started and has not reaped.
        let r = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(r, 0, "kill {sig}");
    }

    /// SIGTERM, then waits (at most `DEADLINE`) for the exit and the output.
    pub fn stop(mut self) -> Finished {
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }

    /// Waits (at most `DEADLINE`) for an exit the test caused (SIGTERM, end of stdin).
    pub fn wait_exit(&mut self) -> Finished {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tlm-statsd did not exit within {DEADLINE:?}:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        for t in self.readers.drain(..) {
            t.join().expect("reader");
        }
        Finished {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.http.expect("--http"), "GET", path, "")
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        http(self.http.expect("--http"), "POST", path, body)
    }

    pub fn stats(&self) -> Value {
        let (status, body) = self.get("/stats");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/stats {body}: {e}"))
    }

    /// The `/stats` entry of the listener labelled `label`.
    pub fn listener_stats(&self, label: &str) -> Value {
        let stats = self.stats();
        stats["listeners"]
            .as_array()
            .expect("listeners")
            .iter()
            .find(|l| l["listener"] == label)
            .unwrap_or_else(|| panic!("no {label} in {stats}"))
            .clone()
    }

    /// Polls `/stats` until listener `label` has counted `lines` lines.
    pub fn wait_lines(&self, label: &str, lines: u64) {
        let start = Instant::now();
        loop {
            let l = self.listener_stats(label);
            let got = num(&l["lines"]) as u64;
            if got == lines {
                return;
            }
            assert!(
                got < lines && start.elapsed() < DEADLINE,
                "{label}: {got} lines counted, {lines} sent: {l}\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls `/stats` until `field` (a number or an object path like `rejected.short`) of
    /// listener `label` reaches `want`.
    pub fn wait_stat(&self, label: &str, path: &[&str], want: u64) -> Value {
        let start = Instant::now();
        loop {
            let l = self.listener_stats(label);
            let mut v = &l;
            for p in path {
                v = &v[*p];
            }
            let got = v.as_f64().unwrap_or(0.0) as u64;
            if got >= want {
                return l;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{label}: {path:?} is {got}, want {want}: {l}\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether `pid` has a handler for SIGTERM (Linux: bit 15 of SigCgt in /proc/PID/status).
pub(crate) fn sigterm_caught(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
}

/// A minimal HTTP/1.1 client: one request per connection.
pub(crate) fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the HTTP API");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write the request");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read the reply");
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {reply:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line of {head:?}"));
    (status, body.to_owned())
}

pub(crate) fn parse_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

pub(crate) fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

pub(crate) fn tags_of(m: &Value) -> BTreeMap<String, String> {
    m["tags"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The lines of series `name` with exactly `tags`.
pub(crate) fn lines_of<'a>(ms: &'a [Value], name: &str, tags: &[(&str, &str)]) -> Vec<&'a Value> {
    let want: BTreeMap<String, String> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ms.iter()
        .filter(|m| m["name"] == name && tags_of(m) == want)
        .collect()
}

/// A counter's total over every flush.
pub(crate) fn counter(ms: &[Value], name: &str, tags: &[(&str, &str)]) -> f64 {
    let lines = lines_of(ms, name, tags);
    assert!(
        !lines.is_empty(),
        "no counter {name} {tags:?} in:\n{}",
        dump(ms)
    );
    lines
        .iter()
        .map(|m| {
            assert_eq!(m["kind"], "counter", "{m}");
            assert_eq!(m["temporality"], "delta", "{m}");
            num(&m["value"])
        })
        .sum()
}

/// A gauge's value in the last flush that wrote it.
pub(crate) fn gauge(ms: &[Value], name: &str, tags: &[(&str, &str)]) -> f64 {
    let lines = lines_of(ms, name, tags);
    let last = lines
        .last()
        .unwrap_or_else(|| panic!("no gauge {name} {tags:?} in:\n{}", dump(ms)));
    assert_eq!(last["kind"], "gauge", "{last}");
    num(&last["value"])
}

/// A timer summary over every flush: (count, sum, min, max).
pub(crate) fn summary(ms: &[Value], name: &str, tags: &[(&str, &str)]) -> (f64, f64, f64, f64) {
    let lines = lines_of(ms, name, tags);
    assert!(
        !lines.is_empty(),
        "no summary {name} {tags:?} in:\n{}",
        dump(ms)
    );
    let mut acc = (0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY);
    for m in lines {
        assert_eq!(m["kind"], "summary", "{m}");
        if num(&m["count"]) == 0.0 {
            // An idle flush (statsd's default: a timer seen before is written with count 0).
            continue;
        }
        acc.0 += num(&m["count"]);
        acc.1 += num(&m["sum"]);
        acc.2 = f64::min(acc.2, num(&m["min"]));
        acc.3 = f64::max(acc.3, num(&m["max"]));
    }
    acc
}

pub(crate) fn names(ms: &[Value]) -> BTreeSet<String> {
    ms.iter()
        .map(|m| m["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub(crate) fn dump(ms: &[Value]) -> String {
    ms.iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn udp_send(to: SocketAddr, payload: &[u8]) {
    let any = if to.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let sock = UdpSocket::bind(any).expect("bind a UDP socket");
    let n = sock.send_to(payload, to).expect("send a datagram");
    assert_eq!(n, payload.len());
}

/// A fresh directory under the target's temp dir, removed when dropped.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("statsd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create a temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) const HTTP: &str = "127.0.0.1:0";

// ---------------------------------------------------------------------------------------------

/// Plain datagrams: counters (with `@rate` scaled by 1/rate), timers, gauges (absolute, delta,
/// `=`), sets, DogStatsD tags, several lines per datagram; exact values in the output.
#[test]
fn udp_datagrams_fold_to_exact_values() {
    let d = Daemon::udp_with_api(&["--flush", "1h"]);
    let to = d.addr("udp");
    let lines = [
        "u.c:1|c",
        "u.c:2|c\nu.c:3|c",
        "u.half:1|c|@0.5\nu.half:2|c|@0.5",
        "u.tenth:1|c|@0.1",
        "u.t:10|ms\nu.t:30|ms\nu.t:20|ms|@0.5",
        "u.h:4|h\nu.d:6|d",
        "u.g:10|g\nu.g:+5|g\nu.g:-3|g",
        "u.neg:=-5|g",
        "u.s:a|s\nu.s:b|s\nu.s:a|s",
        "u.tag:7|c|#env:prod,host:a\nu.tag:1|c|#host:a,env:prod\nu.tag:2|c|#env:dev",
    ];
    let total: u64 = lines.iter().map(|l| l.lines().count() as u64).sum();
    for l in lines {
        udp_send(to, l.as_bytes());
    }
    d.wait_lines(&format!("udp://{to}"), total);
    let ms = d.stop().ok();
    assert_eq!(counter(&ms, "u.c", &[]), 6.0);
    assert_eq!(counter(&ms, "u.half", &[]), 6.0);
    assert_eq!(counter(&ms, "u.tenth", &[]), 10.0);
    let (count, sum, min, max) = summary(&ms, "u.t", &[]);
    // The @0.5 value stands for two, in count and sum alike (docs/aggregation.md).
    assert_eq!((count, sum, min, max), (4.0, 80.0, 10.0, 30.0));
    assert_eq!(summary(&ms, "u.h", &[]), (1.0, 4.0, 4.0, 4.0));
    assert_eq!(summary(&ms, "u.d", &[]), (1.0, 6.0, 6.0, 6.0));
    assert_eq!(gauge(&ms, "u.g", &[]), 12.0);
    assert_eq!(gauge(&ms, "u.neg", &[]), -5.0);
    assert_eq!(gauge(&ms, "u.s", &[]), 2.0);
    assert_eq!(
        counter(&ms, "u.tag", &[("env", "prod"), ("host", "a")]),
        8.0
    );
    assert_eq!(counter(&ms, "u.tag", &[("env", "dev")]), 2.0);
    let ms_unit = lines_of(&ms, "u.t", &[]);
    assert_eq!(ms_unit[0]["unit"], "ms", "{}", ms_unit[0]);
}

/// A gauge's `+N` adds to the value of an earlier flush (Etsy keeps gauges across flushes).
#[test]
fn delta_gauge_adds_to_the_previous_flush() {
    let d = Daemon::start(&["--listen", "udp://127.0.0.1:0", "--flush", "1s"]);
    let to = d.addr("udp");
    udp_send(to, b"dg.g:10|g\ndg.c:1|c");
    let start = Instant::now();
    while !d.stdout().contains("\"dg.g\"") {
        assert!(start.elapsed() < DEADLINE, "no flush:\n{}", d.stderr());
        thread::sleep(Duration::from_millis(20));
    }
    udp_send(to, b"dg.g:+5|g\ndg.c:2|c");
    thread::sleep(Duration::from_millis(100));
    let ms = d.stop().ok();
    assert_eq!(gauge(&ms, "dg.g", &[]), 15.0, "{}", dump(&ms));
    assert_eq!(counter(&ms, "dg.c", &[]), 3.0);
}

/// `tlm-statsd | tlm-publish --format graphite` as a real pipe: the client's counts arrive as
/// Graphite plaintext after SIGTERM ends the daemon and so the pipe.
#[test]
fn pipeline_to_graphite_shows_exact_counts() {
    let mut statsd = Command::new(bin("tlm-statsd"))
        .args(["--listen", "udp://127.0.0.1:0", "--flush", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tlm-statsd");
    let publish = Command::new(bin("tlm-publish"))
        .args(["--format", "graphite"])
        .stdin(Stdio::from(statsd.stdout.take().expect("stdout")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tlm-publish");
    let mut err = BufReader::new(statsd.stderr.take().expect("stderr"));
    let mut port = None;
    let mut log = String::new();
    while port.is_none() {
        let mut line = String::new();
        assert!(err.read_line(&mut line).expect("stderr") > 0, "{log}");
        log.push_str(&line);
        port = log_field(line.trim_end(), "listener")
            .filter(|_| line.contains("event=listening"))
            .and_then(|l| l.strip_prefix("udp://"))
            .map(|a| a.parse::<SocketAddr>().expect("address"));
    }
    let drain = thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
        rest
    });
    let pid = statsd.id() as i32;
    let start = Instant::now();
    while !sigterm_caught(pid) {
        assert!(start.elapsed() < DEADLINE);
        thread::sleep(Duration::from_millis(10));
    }
    let to = port.expect("port");
    for i in 0..200 {
        udp_send(to, format!("pipe.req:1|c\npipe.bytes:{i}|c").as_bytes());
    }
    udp_send(to, b"pipe.temp:21|g");
    // Everything sent is in the socket buffer; give the reader a moment, then SIGTERM.
    thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the PID of the child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = statsd.wait().expect("wait");
    let log = drain.join().expect("stderr");
    assert_eq!(status.code(), Some(0), "{log}");
    let out = publish.wait_with_output().expect("publish");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let graphite = text(&out.stdout);
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    for line in graphite.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 3, "not `name value ts`: {line}");
        let v: f64 = f[1].parse().expect("value");
        *sums.entry(f[0].to_owned()).or_default() += v;
        last.insert(f[0].to_owned(), v);
    }
    assert_eq!(sums.get("pipe.req"), Some(&200.0), "{graphite}");
    assert_eq!(sums.get("pipe.bytes"), Some(&19900.0), "{graphite}");
    assert_eq!(last.get("pipe.temp"), Some(&21.0), "{graphite}");
}

/// A SIGTERM as soon as `event=listening` is logged must still flush and exit 0.
#[test]
fn sigterm_right_after_listening_flushes() {
    for _ in 0..20 {
        let mut child = Command::new(bin("tlm-statsd"))
            .args(["--listen", "udp://127.0.0.1:0", "--flush", "1h"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        while !line.contains("event=listening") {
            line.clear();
            assert!(err.read_line(&mut line).expect("read") > 0);
        }
        // SAFETY: kill(2) on the PID of the child this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let status = child.wait().expect("wait");
        assert_eq!(
            status.code(),
            Some(0),
            "SIGTERM just after `event=listening` must flush and exit 0, not kill ({status})"
        );
    }
}

/// Brubeck monotonic counters (`|C`): each reading after the first is a step from the one
/// before (docs/aggregation.md, "Cumulative counter"), also when several arrive in one read
/// and one flush interval: 1, 5, 12 give 11, as tlm-agg gives.
#[test]
fn monotonic_counter_readings_in_one_interval() {
    let (mut d, mut stdin) = Daemon::start_stdin(&["--stdin", "--flush", "1h"]);
    stdin
        .write_all(b"mono.n:1|C\nmono.n:5|C\nmono.n:12|C\nmono.x:1|c\n")
        .expect("write");
    drop(stdin);
    let ms = d.wait_exit().ok();
    assert_eq!(counter(&ms, "mono.x", &[]), 1.0);
    assert_eq!(
        lines_of(&ms, "mono.n", &[])
            .iter()
            .map(|m| num(&m["value"]))
            .sum::<f64>(),
        11.0,
        "steps between |C readings in one interval:\n{}",
        dump(&ms)
    );
}

/// `--flush 1s` over about 2.5 s: every flush is stamped on a whole second with a one-second
/// `start_ts`, its rate is its count per second, and the flushes add up to what was sent.
#[test]
fn one_second_flushes_are_aligned_and_add_up() {
    let d = Daemon::udp_with_api(&["--flush", "1s"]);
    let to = d.addr("udp");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for _ in 0..25 {
        sock.send_to(["fl.c:2|c"; 10].join("\n").as_bytes(), to)
            .expect("send");
        thread::sleep(Duration::from_millis(100));
    }
    d.wait_lines(&format!("udp://{to}"), 250);
    let ms = d.stop().ok();
    let flushes = lines_of(&ms, "fl.c", &[]);
    assert!(flushes.len() >= 2, "{}", dump(&ms));
    let mut stamps = BTreeSet::new();
    for m in &flushes {
        let ts = m["ts"].as_i64().expect("ts");
        assert_eq!(ts % 1_000_000_000, 0, "{m}");
        assert_eq!(m["start_ts"].as_i64(), Some(ts - 1_000_000_000), "{m}");
        assert!(stamps.insert(ts), "two flushes stamped {ts}");
        let rate = ms
            .iter()
            .find(|r| r["name"] == "fl.c.rate" && r["ts"].as_i64() == Some(ts))
            .unwrap_or_else(|| panic!("no fl.c.rate at {ts}"));
        assert_eq!(num(&rate["value"]), num(&m["value"]), "{rate} for {m}");
    }
    assert_eq!(counter(&ms, "fl.c", &[]), 500.0);
}

/// Past `--exact-limit` timer values a series' quantiles come from the sketch
/// (`"estimated":true`), within `--sketch-error`; count, sum, min and max stay exact.
#[test]
fn many_timer_values_switch_to_the_sketch() {
    let (mut d, mut stdin) = Daemon::start_stdin(&["--stdin", "--flush", "1h"]);
    let mut input = String::new();
    for v in 1..=5000 {
        input.push_str(&format!("sk.t:{v}|ms\n"));
    }
    input.push_str("sk.small:1|ms\nsk.small:3|ms\n");
    stdin.write_all(input.as_bytes()).expect("write");
    drop(stdin);
    let ms = d.wait_exit().ok();
    assert_eq!(
        summary(&ms, "sk.t", &[]),
        (5000.0, 12_502_500.0, 1.0, 5000.0)
    );
    let t = lines_of(&ms, "sk.t", &[]);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0]["estimated"], true, "{}", t[0]);
    for q in t[0]["quantiles"].as_array().expect("quantiles") {
        let (p, v) = (num(&q[0]), num(&q[1]));
        // The exact value at rank p·(n−1), within 1 % (plus the neighbouring rank).
        let exact = 1.0 + p * 4999.0;
        assert!(
            (v - exact).abs() <= 0.01 * exact + 1.0,
            "quantile {p}: {v}, exact {exact}"
        );
    }
    let small = lines_of(&ms, "sk.small", &[]);
    assert!(small[0].get("estimated").is_none(), "{}", small[0]);
    assert_eq!(
        small[0]["quantiles"],
        serde_json::json!([[0.5, 2.0], [0.9, 2.8], [0.99, 2.98]])
    );
}

/// A `|T` timestamp an interval or more in the past: the point is either written once in the
/// window its timestamp falls in, or counted late (`late=` in the summary) and not written;
/// exactly one of the two. A warning about it must not send the operator to `--lateness` or
/// `--late`, flags tlm-statsd does not have. A timestamp past the flush interval ahead is a
/// `future_timestamp` bad line.
#[test]
fn old_client_timestamps_are_written_once_or_counted_late() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let (mut d, mut stdin) = Daemon::start_stdin(&["--stdin", "--flush", "10s", "--delete-idle"]);
    write!(
        stdin,
        "late.old:1|c|T{}\nlate.future:1|c|T{}\nlate.now:2|c\n",
        now - 60,
        now + 60
    )
    .expect("write");
    drop(stdin);
    let fin = d.wait_exit();
    let ms = fin.ok();
    assert_eq!(counter(&ms, "late.now", &[]), 2.0);
    let old = lines_of(&ms, "late.old", &[]);
    let late = fin.summary("late");
    assert_eq!(old.len() as u64 + late, 1, "{}\n{}", dump(&ms), fin.stderr);
    if let Some(m) = old.first() {
        assert_eq!(num(&m["value"]), 1.0, "{m}");
        let start = m["start_ts"].as_i64().expect("start_ts");
        let at = (now - 60) * 1_000_000_000;
        assert!(start <= at && at < start + 10_000_000_000, "{m}");
    }
    assert!(lines_of(&ms, "late.future", &[]).is_empty());
    assert_eq!(fin.summary("bad_lines"), 1, "the future one");
    if let Some(w) = fin.stderr.lines().find(|l| l.contains("event=late_point")) {
        assert!(
            !w.contains("--lateness") && !w.contains("--late"),
            "the warning names flags tlm-statsd lacks: {w}"
        );
    }
}

/// Waits until `/stats` has counted `n` flushes.
fn wait_flushes(d: &Daemon, n: u64) {
    let start = Instant::now();
    while (num(&d.stats()["flushes"]) as u64) < n {
        assert!(start.elapsed() < DEADLINE, "{n} flushes:\n{}", d.stderr());
        thread::sleep(Duration::from_millis(20));
    }
}

/// By default, as Etsy statsd, a series seen before is written every flush: counters 0,
/// gauges their last value, sets 0, timers count 0. `--delete-idle` (Etsy's deleteIdleStats)
/// writes a series only in flushes in which it got data.
#[test]
fn idle_series_are_written_unless_delete_idle() {
    let payload = b"id.c:3|c\nid.g:7|g\nid.g:+1|g\nid.s:a|s\nid.t:5|ms";
    let etsy = Daemon::udp_with_api(&["--flush", "1s"]);
    let del = Daemon::udp_with_api(&["--flush", "1s", "--delete-idle"]);
    for d in [&etsy, &del] {
        let to = d.addr("udp");
        udp_send(to, payload);
        d.wait_lines(&format!("udp://{to}"), 5);
    }
    // Two flushes after the data was counted: the one holding it and at least one idle one.
    let after = [&etsy, &del].map(|d| num(&d.stats()["flushes"]) as u64 + 2);
    wait_flushes(&etsy, after[0]);
    wait_flushes(&del, after[1]);
    let ms = etsy.stop().ok();
    let values = |name: &str, field: &str| -> Vec<f64> {
        lines_of(&ms, name, &[])
            .iter()
            .map(|m| num(&m[field]))
            .collect()
    };
    let c = values("id.c", "value");
    assert!(c.len() >= 2, "{}", dump(&ms));
    assert_eq!(c[0], 3.0);
    assert!(c[1..].iter().all(|&v| v == 0.0), "{c:?}");
    let g = values("id.g", "value");
    assert_eq!(g.len(), c.len(), "{}", dump(&ms));
    assert!(g.iter().all(|&v| v == 8.0), "{g:?}");
    let s = values("id.s", "value");
    assert_eq!(s[0], 1.0);
    assert!(s[1..].iter().all(|&v| v == 0.0), "{s:?}");
    let t = values("id.t", "count");
    assert_eq!(t[0], 1.0);
    assert!(t[1..].iter().all(|&v| v == 0.0), "{t:?}");
    let ms = del.stop().ok();
    for name in ["id.c", "id.g", "id.s", "id.t"] {
        assert_eq!(lines_of(&ms, name, &[]).len(), 1, "{name}:\n{}", dump(&ms));
    }
    assert_eq!(counter(&ms, "id.c", &[]), 3.0);
    assert_eq!(gauge(&ms, "id.g", &[]), 8.0);
}

/// `--buckets` writes timers as histograms (a sampled value counts 1/rate times), and
/// `--quantiles` picks the summary's quantiles (linear between closest ranks).
#[test]
fn buckets_and_quantiles_flags() {
    let input = "hb.t:0.5|ms\nhb.t:3|ms\nhb.t:7|ms\nhb.t:12|ms|@0.5\n";
    let (mut d, mut stdin) =
        Daemon::start_stdin(&["--stdin", "--flush", "1h", "--buckets", "1,5,10"]);
    stdin.write_all(input.as_bytes()).expect("write");
    drop(stdin);
    let ms = d.wait_exit().ok();
    let h = lines_of(&ms, "hb.t", &[]);
    assert_eq!(h.len(), 1, "{}", dump(&ms));
    assert_eq!(h[0]["kind"], "histogram");
    assert_eq!(h[0]["counts"], serde_json::json!([1, 1, 1, 2]), "{}", h[0]);
    assert_eq!((num(&h[0]["count"]), num(&h[0]["sum"])), (5.0, 34.5));
    let (mut d, mut stdin) =
        Daemon::start_stdin(&["--stdin", "--flush", "1h", "--quantiles", "0,0.25,1"]);
    stdin
        .write_all(b"qq.t:1|ms\nqq.t:2|ms\nqq.t:3|ms\nqq.t:4|ms\n")
        .expect("write");
    drop(stdin);
    let ms = d.wait_exit().ok();
    let q = lines_of(&ms, "qq.t", &[]);
    assert_eq!(
        q[0]["quantiles"],
        serde_json::json!([[0.0, 1.0], [0.25, 1.75], [1.0, 4.0]]),
        "{}",
        q[0]
    );
}
