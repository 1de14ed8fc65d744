//! Real metric backends on loopback for the end-to-end tests: Graphite carbon, InfluxDB 1.6,
//! Prometheus 2.42 (+ pushgateway) and VictoriaMetrics 1.79, each started by its script in
//! `../shared/sinks/` (beside the repo) and read back exactly.
//!
//! `carbon()`, `influx()`, `prometheus()` and `victoria()` start one instance per test binary,
//! shared by the tests that ask for it: give each test its own names ([`unique`]: a metric
//! prefix, an Influx database). `X::start_private()` starts an instance a test owns, for fault
//! tests: [`Sink::stop`], [`Sink::kill_hard`] (a crash) and [`Sink::restart`] (same ports, same
//! data). Dropping a private instance stops it and removes its directory (kept, and named on
//! stderr, when the test is panicking, or with `TLM_KEEP_SINKS=1`).
//!
//! How the processes are handled (traps found on this machine):
//! - A script starts its backend as a background child, waits until it answers, prints its
//!   ports and PIDs and exits. The script's stdout and stderr go to files (no pipe, so nothing
//!   can wait on a pipe the backend inherited) and its stdin is /dev/null.
//! - PID 1 here reaps orphans only lazily (seconds later): a killed backend stays a zombie, and
//!   carbon's `start` takes a zombie named by its stale pidfile for a live server and refuses to
//!   start. So the test process makes itself a child subreaper (`PR_SET_CHILD_SUBREAPER`): the
//!   backends, orphaned when their script exits, become its children; stop and kill reap them
//!   with `waitpid`, which also means a PID is never signalled after it could have been reused.
//! - Shared instances live in statics, which are never dropped: every live PID and directory is
//!   in a process-wide registry that an `atexit` handler empties (SIGTERM, SIGKILL after 5 s,
//!   reap, remove the directories). libtest leaves through `exit` on success and failure alike;
//!   a SIGKILLed test process leaves its backends behind.
//! - A busy default port is replaced by a free one by the script, but the check and the bind
//!   race with other processes, and a script's readiness probe cannot tell our backend from a
//!   stranger on that port. Starts are serialized within the process, and after every start
//!   each port must be a listening socket held by one of the new PIDs (`/proc/net/tcp` inodes
//!   against `/proc/PID/fd`); a first start that fails this is retried with fresh ports.

#![allow(dead_code)] // a support module: not every helper is used by every test yet

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// `shared/sinks` beside the repository (`../shared/sinks`), or beside the nearest ancestor
/// that has one (a git worktree in `/work/wt/NAME` finds `/work/shared`).
pub fn scripts() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    repo.ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/sinks"))
        .find(|dir| dir.join("_lib.sh").is_file())
        .unwrap_or_else(|| {
            panic!(
                "no shared/sinks beside {} or an ancestor: the sink tests need the scripts \
                 (../shared/sinks, with graphite.sh, influxdb.sh, ...)",
                repo.display()
            )
        })
}

/// A name no other test in any test process uses: `{tag}_{pid}_{n}` (a valid Graphite node,
/// Influx database and Prometheus metric name when `tag` is one).
pub fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Seconds since the epoch.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------------
// Processes: registry, atexit, reaping.

struct Live {
    pids: Vec<u32>,
    base: PathBuf,
}

static LIVE: Mutex<BTreeMap<u64, Live>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
/// One start at a time within this process (the scripts' free-port choice is check-then-bind).
static STARTING: Mutex<()> = Mutex::new(());

/// PIDs this process has reaped: never signalled again, even if /proc shows the PID reused.
static REAPED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn live() -> std::sync::MutexGuard<'static, BTreeMap<u64, Live>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn reaped() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    REAPED.lock().unwrap_or_else(|e| e.into_inner())
}

fn keep_dirs() -> bool {
    std::env::var_os("TLM_KEEP_SINKS").is_some_and(|v| !v.is_empty() && v != "0")
}

extern "C" fn stop_all_at_exit() {
    // Tests are over; a lock still held would be a stuck thread: give up on it after 1 s.
    let t0 = Instant::now();
    let entries = loop {
        match LIVE.try_lock() {
            Ok(mut l) => break std::mem::take(&mut *l),
            Err(std::sync::TryLockError::Poisoned(e)) => {
                break std::mem::take(&mut *e.into_inner())
            }
            Err(std::sync::TryLockError::WouldBlock) if t0.elapsed() < Duration::from_secs(1) => {
                thread::sleep(Duration::from_millis(10))
            }
            Err(std::sync::TryLockError::WouldBlock) => return,
        }
    };
    let pids: Vec<u32> = entries.values().flat_map(|l| l.pids.clone()).collect();
    terminate(&pids, Duration::from_secs(5));
    if !keep_dirs() {
        for l in entries.values() {
            let _ = fs::remove_dir_all(&l.base);
        }
    }
}

fn setup_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with integer arguments; atexit with a plain extern "C" fn that does
        // not unwind (it only locks, signals, waits and removes files, ignoring errors).
        unsafe {
            let r = libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            assert_eq!(r, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
            assert_eq!(libc::atexit(stop_all_at_exit), 0, "atexit");
        }
    });
}

/// Whether `pid` has ended: reaped now if it is our child, else gone or a zombie in /proc.
fn ended(pid: u32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid on one PID with WNOHANG.
    let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
    if r == pid as i32 {
        reaped().insert(pid);
        return true;
    }
    if r == 0 {
        return false; // our child, still running
    }
    if reaped().contains(&pid) {
        return true;
    }
    // Not our child (ECHILD): judge by /proc.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

fn signal(pids: &[u32], sig: i32) {
    for &p in pids {
        if !ended(p) {
            // SAFETY: kill(2) on a PID that is our unreaped child (or, failing the subreaper,
            // one seen alive just now).
            unsafe { libc::kill(p as i32, sig) };
        }
    }
}

fn wait_ended(pids: &[u32], timeout: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        if pids.iter().all(|&p| ended(p)) {
            return true;
        }
        if t0.elapsed() > timeout {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, SIGKILL after `grace`, reaped.
fn terminate(pids: &[u32], grace: Duration) {
    signal(pids, libc::SIGTERM);
    if !wait_ended(pids, grace) {
        signal(pids, libc::SIGKILL);
        wait_ended(pids, Duration::from_secs(5));
    }
}

/// Inodes of TCP sockets listening on 127.0.0.1/0.0.0.0/:: `port`.
fn listen_inodes(port: u16) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let p = f[1].rsplit_once(':').map(|(_, p)| p).unwrap_or("");
            if u16::from_str_radix(p, 16) == Ok(port) {
                if let Ok(inode) = f[9].parse() {
                    out.insert(inode);
                }
            }
        }
    }
    out
}

/// Whether one of `pids` holds a socket listening on `port`.
fn owns_listener(pids: &[u32], port: u16) -> bool {
    let inodes = listen_inodes(port);
    pids.iter().any(|pid| {
        fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|dir| {
            dir.flatten().any(|fd| {
                fs::read_link(fd.path()).is_ok_and(|l| {
                    l.to_str()
                        .and_then(|s| s.strip_prefix("socket:["))
                        .and_then(|s| s.strip_suffix(']'))
                        .and_then(|s| s.parse().ok())
                        .is_some_and(|i: u64| inodes.contains(&i))
                })
            })
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Sink: one started script.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Graphite,
    Influx,
    Prom,
    Victoria,
}

impl Kind {
    fn script(self) -> &'static str {
        match self {
            Kind::Graphite => "graphite.sh",
            Kind::Influx => "influxdb.sh",
            Kind::Prom => "prometheus.sh",
            Kind::Victoria => "victoriametrics.sh",
        }
    }
}

/// One backend started by its script.
pub struct Sink {
    /// The script's name for it: `graphite`, `influxdb`, `prometheus`, `victoriametrics`.
    pub name: &'static str,
    /// Its directory (BASE): configuration, data, logs, pid files, the script's output.
    pub base: PathBuf,
    /// The backend processes (empty while stopped).
    pub pids: Vec<u32>,
    /// Every port it listens on, by role (`plaintext`, `pickle`, `query`, `http`, `rpc`,
    /// `opentsdb`, `opentsdb_http`, `graphite`, `pushgateway`), as the script printed or wrote.
    pub ports: BTreeMap<&'static str, u16>,
    /// The last start's stdout.
    pub output: String,
    /// How long the last start took (script run, readiness and port checks).
    pub ready_in: Duration,
    kind: Kind,
    /// The start's own settings (PUSHGW, SCRAPE), kept for restarts.
    env: Vec<(String, String)>,
    id: u64,
    starts: u32,
}

impl Sink {
    fn start(kind: Kind, env: &[(&str, &str)]) -> Sink {
        setup_process();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut errors = String::new();
        for _attempt in 0..3 {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let base = std::env::temp_dir().join(format!(
                "tlm-sink-{}-{}-{id}",
                kind.script().trim_end_matches(".sh"),
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&base);
            fs::create_dir_all(&base).expect("create the sink directory");
            let mut sink = Sink {
                name: match kind {
                    Kind::Graphite => "graphite",
                    Kind::Influx => "influxdb",
                    Kind::Prom => "prometheus",
                    Kind::Victoria => "victoriametrics",
                },
                base: base.clone(),
                pids: Vec::new(),
                ports: BTreeMap::new(),
                output: String::new(),
                ready_in: Duration::ZERO,
                kind,
                env: env.clone(),
                id,
                starts: 0,
            };
            live().insert(
                id,
                Live {
                    pids: Vec::new(),
                    base: base.clone(),
                },
            );
            match sink.launch(&[]) {
                Ok(()) => {
                    // Captured by libtest: shown with the output of a failing test.
                    eprintln!(
                        "sinks: {} ready in {:.2?}: ports {:?}, pids {:?}, {}",
                        sink.name,
                        sink.ready_in,
                        sink.ports,
                        sink.pids,
                        sink.base.display()
                    );
                    return sink;
                }
                Err(e) => {
                    errors.push_str(&e);
                    errors.push('\n');
                    // Drop stops whatever started and removes the directory.
                }
            }
        }
        panic!("{} did not start (3 attempts):\n{errors}", kind.script());
    }

    /// Runs the script with BASE and `extra` settings; on success fills pids, ports, output.
    fn launch(&mut self, extra: &[(String, String)]) -> Result<(), String> {
        let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        self.starts += 1;
        let out_path = self.base.join(format!("start-{}.out", self.starts));
        let err_path = self.base.join(format!("start-{}.err", self.starts));
        let t0 = Instant::now();
        let mut child = Command::new("bash")
            .arg(scripts().join(self.kind.script()))
            .env("BASE", &self.base)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(extra.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.base)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).expect("script stdout file"))
            .stderr(fs::File::create(&err_path).expect("script stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("bash {}: {e}", self.kind.script()));
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for the script") {
                break Some(s);
            }
            if t0.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(10));
        };
        self.output = fs::read_to_string(&out_path).unwrap_or_default();
        // Whatever the outcome, the processes the script started are ours to stop.
        let mut pids = self.pid_files();
        if status.is_some_and(|s| s.success()) {
            for p in parse_pids(&self.output) {
                if !pids.contains(&p) {
                    pids.push(p);
                }
            }
        }
        self.set_pids(pids);
        let fail = |this: &mut Sink, why: String| {
            let msg = format!(
                "{} in {}: {why}\nstdout:\n{}stderr:\n{}{}",
                this.kind.script(),
                this.base.display(),
                this.output,
                fs::read_to_string(&err_path).unwrap_or_default(),
                log_tails(&this.base)
            );
            this.stop();
            Err(msg)
        };
        match status {
            None => return fail(self, "the script ran over 60 s".into()),
            Some(s) if !s.success() => return fail(self, format!("the script failed ({s})")),
            Some(_) => {}
        }
        let ports = match self.parse_ports() {
            Ok(p) => p,
            Err(e) => return fail(self, e),
        };
        if let Some(p) = self.pids.iter().find(|&&p| ended(p)) {
            return fail(self, format!("PID {p} exited after the script said ready"));
        }
        // Our processes must hold the ports, not a stranger that answered the probe.
        for (role, &port) in &ports {
            let t = Instant::now();
            while !owns_listener(&self.pids, port) {
                if t.elapsed() > Duration::from_secs(5) {
                    return fail(
                        self,
                        format!("no PID of {:?} listens on {role} port {port}", self.pids),
                    );
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        self.ports = ports;
        self.ready_in = t0.elapsed();
        Ok(())
    }

    /// PIDs in `BASE/*.pid` (the files the scripts write for each backend).
    fn pid_files(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for e in fs::read_dir(&self.base).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "pid") {
                if let Some(p) = fs::read_to_string(e.path())
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    pids.push(p);
                }
            }
        }
        pids
    }

    fn set_pids(&mut self, pids: Vec<u32>) {
        {
            let mut r = reaped();
            for p in &pids {
                r.remove(p); // a new process of ours under a reaped PID
            }
        }
        self.pids = pids;
        if let Some(l) = live().get_mut(&self.id) {
            l.pids = self.pids.clone();
        }
    }

    fn parse_ports(&self) -> Result<BTreeMap<&'static str, u16>, String> {
        let out = &self.output;
        let mut ports = BTreeMap::new();
        match self.kind {
            Kind::Graphite => {
                let conf = fs::read_to_string(self.base.join("conf/carbon.conf"))
                    .map_err(|e| format!("carbon.conf: {e}"))?;
                let setting = |key: &str| -> Result<u16, String> {
                    conf.lines()
                        .find_map(|l| {
                            l.strip_prefix(key)?
                                .trim()
                                .strip_prefix('=')?
                                .trim()
                                .parse()
                                .ok()
                        })
                        .ok_or_else(|| format!("no {key} in carbon.conf"))
                };
                let plaintext = port_in(out, "send:", "127.0.0.1 ")?;
                if setting("LINE_RECEIVER_PORT")? != plaintext {
                    return Err("printed plaintext port differs from carbon.conf".into());
                }
                ports.insert("plaintext", plaintext);
                ports.insert("pickle", setting("PICKLE_RECEIVER_PORT")?);
                ports.insert("query", setting("CACHE_QUERY_PORT")?);
            }
            Kind::Influx => {
                ports.insert("http", port_in(out, "create:", "127.0.0.1:")?);
                ports.insert("opentsdb", port_in(out, "opentsdb:", "127.0.0.1 ")?);
                let conf = fs::read_to_string(self.base.join("influxdb.conf"))
                    .map_err(|e| format!("influxdb.conf: {e}"))?;
                // The first bind-address is the top-level one: the RPC (backup) service.
                ports.insert("rpc", port_in(&conf, "bind-address", "127.0.0.1:")?);
            }
            Kind::Prom => {
                ports.insert("http", port_in(out, "remote_write:", "127.0.0.1:")?);
                if self.env.iter().any(|(k, v)| k == "PUSHGW" && v == "1") {
                    ports.insert("pushgateway", port_in(out, "push:", "127.0.0.1:")?);
                }
            }
            Kind::Victoria => {
                ports.insert("http", port_in(out, "influx:", "127.0.0.1:")?);
                ports.insert("graphite", port_in(out, "graphite:", "127.0.0.1 ")?);
                ports.insert("opentsdb", port_in(out, "opentsdb:", "127.0.0.1 ")?);
                // Not printed: the command line the script ran says it.
                let pid = self.pids.first().ok_or("no PID")?;
                let cmd = fs::read(format!("/proc/{pid}/cmdline"))
                    .map_err(|e| format!("cmdline of {pid}: {e}"))?;
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', "\n");
                ports.insert(
                    "opentsdb_http",
                    port_in(&cmd, "-opentsdbHTTPListenAddr=", "127.0.0.1:")?,
                );
            }
        }
        Ok(ports)
    }

    /// The port for `role` (see [`Sink::ports`]).
    pub fn port(&self, role: &str) -> u16 {
        *self
            .ports
            .get(role)
            .unwrap_or_else(|| panic!("{} has no {role} port: {:?}", self.name, self.ports))
    }

    /// `http://127.0.0.1:PORT` of the `http` port.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port("http"))
    }

    /// SIGTERM, SIGKILL after 5 s, reaped. The directory stays (see `restart`).
    pub fn stop(&mut self) {
        let t0 = Instant::now();
        terminate(&self.pids, Duration::from_secs(5));
        if !self.pids.is_empty() {
            eprintln!("sinks: {} stopped in {:.2?}", self.name, t0.elapsed());
        }
        self.set_pids(Vec::new());
    }

    /// SIGKILL, reaped: a crash. Nothing is flushed.
    pub fn kill_hard(&mut self) {
        signal(&self.pids, libc::SIGKILL);
        wait_ended(&self.pids, Duration::from_secs(5));
        self.set_pids(Vec::new());
    }

    /// Starts the same backend again on the same ports with the same data directory (stopping
    /// it first if it runs) and waits until it is ready. Panics if a port was taken meanwhile.
    pub fn restart(&mut self) {
        if !self.pids.is_empty() {
            self.stop();
        }
        let port = |role: &str| self.port(role).to_string();
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: String| env.push((k.to_string(), v));
        match self.kind {
            Kind::Graphite => {
                // The dead cache's pidfile: carbon refuses to start while the PID in it runs,
                // and the PID may have been reused since.
                for e in fs::read_dir(self.base.join("run"))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let _ = fs::remove_file(e.path());
                }
                set("OFF", (self.port("plaintext") - 2003).to_string());
            }
            Kind::Influx => {
                set("PORT", port("http"));
                set("RPC_PORT", port("rpc"));
                set("OTSDB_PORT", port("opentsdb"));
            }
            Kind::Prom => {
                set("PORT", port("http"));
                if self.ports.contains_key("pushgateway") {
                    set("PGW_PORT", port("pushgateway"));
                }
            }
            Kind::Victoria => {
                set("PORT", port("http"));
                set("GRAPHITE_PORT", port("graphite"));
                set("OTSDB_PORT", port("opentsdb"));
                set("OTSDB_HTTP_PORT", port("opentsdb_http"));
            }
        }
        for e in fs::read_dir(&self.base).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "pid") {
                let _ = fs::remove_file(e.path());
            }
        }
        let before = self.ports.clone();
        if let Err(e) = self.launch(&env) {
            panic!("restart failed: {e}");
        }
        eprintln!(
            "sinks: {} restarted in {:.2?}: pids {:?}",
            self.name, self.ready_in, self.pids
        );
        assert_eq!(self.ports, before, "{} restarted on other ports", self.name);
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
        live().remove(&self.id);
        if thread::panicking() || keep_dirs() {
            eprintln!("{} kept in {}", self.name, self.base.display());
        } else {
            let _ = fs::remove_dir_all(&self.base);
        }
    }
}

/// The last lines of the backends' logs (`*.log`, `*.out` in BASE and BASE/log).
fn log_tails(base: &Path) -> String {
    let mut out = String::new();
    for dir in [base.to_path_buf(), base.join("log")] {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = e.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if (name.ends_with(".log") || name.ends_with(".out")) && !name.starts_with("start-") {
                let text = fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                out += &format!("--- {}:\n", path.display());
                for l in &lines[lines.len().saturating_sub(15)..] {
                    out += l;
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// PIDs from the script's first line: `...; pid N` or `...; pids: N M `.
fn parse_pids(out: &str) -> Vec<u32> {
    let first = out.lines().next().unwrap_or("");
    let rest = first
        .rsplit_once("; pids:")
        .or_else(|| first.rsplit_once("; pid "))
        .map(|(_, r)| r)
        .unwrap_or("");
    rest.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// The number after `marker` on the first line that starts (after blanks) with `prefix`.
fn port_in(text: &str, prefix: &str, marker: &str) -> Result<u16, String> {
    text.lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .and_then(|l| {
            let after = &l[l.find(marker)? + marker.len()..];
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .ok_or_else(|| format!("no port after {marker:?} on a {prefix:?} line"))
}

// ---------------------------------------------------------------------------------------------
// HTTP through curl (no HTTP crate in the dependencies).

/// Runs curl with `args`; returns the HTTP status and the body.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let code = code.trim().parse().unwrap_or_else(|_| {
        panic!(
            "curl {args:?}: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, body.to_string())
}

/// GET `url` with urlencoded `params`; the JSON body of a 2xx answer.
fn get_json(url: &str, params: &[(&str, &str)]) -> Value {
    let pairs: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut args = vec!["-G", url];
    for p in &pairs {
        args.push("--data-urlencode");
        args.push(p);
    }
    let (code, body) = curl(&args);
    assert!(
        (200..300).contains(&code),
        "GET {url} {params:?}: {code} {body}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
}

macro_rules! sink_wrapper {
    ($t:ident) => {
        impl std::ops::Deref for $t {
            type Target = Sink;
            fn deref(&self) -> &Sink {
                &self.sink
            }
        }
        impl std::ops::DerefMut for $t {
            fn deref_mut(&mut self) -> &mut Sink {
                &mut self.sink
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Carbon.

/// carbon-cache 1.1.7, 1 s whisper resolution for an hour (`graphite.sh`).
pub struct Carbon {
    pub sink: Sink,
}
sink_wrapper!(Carbon);

/// The carbon shared by this test binary.
pub fn carbon() -> &'static Carbon {
    static S: OnceLock<Carbon> = OnceLock::new();
    S.get_or_init(Carbon::start_private)
}

impl Carbon {
    pub fn start_private() -> Carbon {
        Carbon {
            sink: Sink::start(Kind::Graphite, &[]),
        }
    }

    pub fn plaintext_port(&self) -> u16 {
        self.port("plaintext")
    }

    pub fn pickle_port(&self) -> u16 {
        self.port("pickle")
    }

    /// The whisper file carbon writes `metric` to.
    ///
    /// `a.b.c` -> `whisper/a/b/c.wsp`. A tagged name `a.b;k=v` is NOT stored literally, even
    /// with ENABLE_TAGS = False (that setting only stops the TagDB updates): carbon 1.1.7
    /// normalizes it (`name` + the `;k=v` pairs sorted as strings, a repeated key keeps its
    /// last value, leading `~` stripped from the name) and, TAG_HASH_FILENAMES being on by
    /// default, stores it as `whisper/_tagged/<h[0..3]>/<h[3..6]>/<h>.wsp` with
    /// h = hex sha256 of the normalized name. (Seen: `a.b;z=1;k=v` -> `_tagged/df4/875/df48...`
    /// = sha256(`a.b;k=v;z=1`).)
    pub fn whisper_file(&self, metric: &str) -> PathBuf {
        let dir = self.base.join("whisper");
        match tagged_normal_form(metric) {
            None => dir.join(format!(
                "{}.wsp",
                metric.replace('.', "/").trim_start_matches('/')
            )),
            Some(normal) => {
                use sha2::Digest;
                let h: String = sha2::Sha256::digest(normal.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                dir.join("_tagged")
                    .join(&h[0..3])
                    .join(&h[3..6])
                    .join(format!("{h}.wsp"))
            }
        }
    }

    /// The points (timestamp, value) of `metric` from `from_s` to now, `None` buckets skipped,
    /// read with `whisper-fetch` (empty if carbon has not created the file yet).
    pub fn points(&self, metric: &str, from_s: i64) -> Vec<(i64, f64)> {
        let file = self.whisper_file(metric);
        if !file.exists() {
            return Vec::new();
        }
        let out = Command::new("whisper-fetch")
            .arg(format!("--from={from_s}"))
            .arg(&file)
            .output()
            .expect("whisper-fetch (Debian: python3-whisper)");
        assert!(
            out.status.success(),
            "whisper-fetch {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (t, v) = l.split_once('\t')?;
                if v == "None" {
                    return None;
                }
                Some((t.parse().ok()?, v.parse().ok()?))
            })
            .collect()
    }

    /// Polls `points` until it holds at least `count` points or `timeout` passes (carbon
    /// writes within ~1-2 s); returns the last read either way.
    pub fn wait_points(
        &self,
        metric: &str,
        from_s: i64,
        count: usize,
        timeout: Duration,
    ) -> Vec<(i64, f64)> {
        let t0 = Instant::now();
        loop {
            let p = self.points(metric, from_s);
            if p.len() >= count || t0.elapsed() > timeout {
                return p;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Carbon's normal form of a tagged name (`TaggedSeries.parse(...).path`), None if untagged.
fn tagged_normal_form(metric: &str) -> Option<String> {
    let mut parts = metric.split(';');
    let name = parts.next()?.trim_start_matches('~');
    let mut tags: BTreeMap<&str, &str> = BTreeMap::new();
    let mut any = false;
    for seg in parts {
        any = true;
        let (k, v) = seg.split_once('=').unwrap_or((seg, ""));
        tags.insert(k, v);
    }
    if !any {
        return None;
    }
    // Python sorts the formatted ";k=v" strings, not the keys ("a-b" sorts before "a").
    let mut pairs: Vec<String> = tags.iter().map(|(k, v)| format!(";{k}={v}")).collect();
    pairs.sort();
    Some(format!("{name}{}", pairs.concat()))
}

// ---------------------------------------------------------------------------------------------
// InfluxDB.

/// InfluxDB 1.6.7 with its OpenTSDB listener (database `opentsdb`) (`influxdb.sh`).
pub struct Influx {
    pub sink: Sink,
}
sink_wrapper!(Influx);

/// The InfluxDB shared by this test binary.
pub fn influx() -> &'static Influx {
    static S: OnceLock<Influx> = OnceLock::new();
    S.get_or_init(Influx::start_private)
}

impl Influx {
    pub fn start_private() -> Influx {
        Influx {
            sink: Sink::start(Kind::Influx, &[]),
        }
    }

    pub fn http_port(&self) -> u16 {
        self.port("http")
    }

    pub fn opentsdb_port(&self) -> u16 {
        self.port("opentsdb")
    }

    /// CREATE DATABASE (a no-op if it exists). Writes to a missing database get 404.
    pub fn create_db(&self, db: &str) {
        let q = format!("q=CREATE DATABASE \"{db}\"");
        let (code, body) = curl(&[
            "-XPOST",
            &format!("{}/query", self.url()),
            "--data-urlencode",
            &q,
        ]);
        assert!(
            code == 200 && !body.contains("\"error\""),
            "create {db}: {code} {body}"
        );
    }

    /// POST line protocol to /write with `precision` (`s`, `ms`, `u`, `ns`); the HTTP status
    /// (204 = stored).
    pub fn write(&self, db: &str, precision: &str, lines: &str) -> u16 {
        let url = format!("{}/write?db={db}&precision={precision}", self.url());
        curl(&["-XPOST", &url, "--data-binary", lines]).0
    }

    /// GET /query: the JSON answer, times as integer nanoseconds (`epoch=ns`).
    pub fn query(&self, db: &str, q: &str) -> Value {
        get_json(
            &format!("{}/query", self.url()),
            &[("db", db), ("q", q), ("epoch", "ns")],
        )
    }

    /// The `values` rows of the first series of the first statement (empty if none).
    pub fn rows(&self, db: &str, q: &str) -> Vec<Value> {
        let v = self.query(db, q);
        assert!(
            v["results"][0]["error"].is_null(),
            "{q}: {}",
            v["results"][0]["error"]
        );
        v["results"][0]["series"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus.

/// Prometheus 2.42 with the remote-write receiver, 1 s scrapes; with a pushgateway (scraped
/// with honor_labels) and/or one scrape target when private (`prometheus.sh`).
pub struct Prom {
    pub sink: Sink,
}
sink_wrapper!(Prom);

/// The Prometheus shared by this test binary: remote-write receiver only.
pub fn prometheus() -> &'static Prom {
    static S: OnceLock<Prom> = OnceLock::new();
    S.get_or_init(|| Prom::start_private(None, false))
}

impl Prom {
    /// `scrape`: a `host:port` serving /metrics, scraped every second (job `scrape`);
    /// `pushgateway`: also start one, scraped every second (job `pushgateway`). The
    /// pushgateway keeps its groups in memory only: a restart loses them.
    pub fn start_private(scrape: Option<&str>, pushgateway: bool) -> Prom {
        let mut env = Vec::new();
        if pushgateway {
            env.push(("PUSHGW", "1"));
        }
        if let Some(s) = scrape {
            env.push(("SCRAPE", s));
        }
        Prom {
            sink: Sink::start(Kind::Prom, &env),
        }
    }

    pub fn http_port(&self) -> u16 {
        self.port("http")
    }

    /// The pushgateway's port, if started with one.
    pub fn pushgateway_port(&self) -> Option<u16> {
        self.ports.get("pushgateway").copied()
    }

    /// The remote-write receiver's URL.
    pub fn remote_write_url(&self) -> String {
        format!("{}/api/v1/write", self.url())
    }

    /// Instant query at `at` (seconds; default now, which looks back 5 min). Asserts success.
    pub fn query(&self, promql: &str, at: Option<f64>) -> Value {
        let at = at.map(|t| t.to_string());
        let mut params = vec![("query", promql)];
        if let Some(t) = &at {
            params.push(("time", t.as_str()));
        }
        let v = get_json(&format!("{}/api/v1/query", self.url()), &params);
        assert_eq!(v["status"], "success", "{promql}: {v}");
        v
    }

    /// Waits until every scrape target is up (false on timeout). A fresh Prometheus scrapes
    /// its first targets only ~5 s after it starts (the discovery manager hands out target
    /// updates every 5 s), whatever the 1 s scrape interval.
    pub fn wait_targets_up(&self, timeout: Duration) -> bool {
        let t0 = Instant::now();
        loop {
            let v = get_json(
                &format!("{}/api/v1/targets", self.url()),
                &[("state", "active")],
            );
            let targets = v["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !targets.is_empty() && targets.iter().all(|t| t["health"] == "up") {
                return true;
            }
            if t0.elapsed() > timeout {
                return false;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `/api/v1/series?match[]=…`: the label sets of matching series (last 5 min by default).
    pub fn series(&self, matcher: &str) -> Value {
        let v = get_json(
            &format!("{}/api/v1/series", self.url()),
            &[("match[]", matcher)],
        );
        assert_eq!(v["status"], "success", "{matcher}: {v}");
        v
    }
}

// ---------------------------------------------------------------------------------------------
// VictoriaMetrics.

/// VictoriaMetrics 1.79.5: Influx /write, Graphite, OpenTSDB, remote_write in; PromQL out
/// (`victoriametrics.sh`).
pub struct Victoria {
    pub sink: Sink,
}
sink_wrapper!(Victoria);

/// The VictoriaMetrics shared by this test binary.
pub fn victoria() -> &'static Victoria {
    static S: OnceLock<Victoria> = OnceLock::new();
    S.get_or_init(Victoria::start_private)
}

impl Victoria {
    pub fn start_private() -> Victoria {
        Victoria {
            sink: Sink::start(Kind::Victoria, &[]),
        }
    }

    pub fn http_port(&self) -> u16 {
        self.port("http")
    }

    pub fn graphite_port(&self) -> u16 {
        self.port("graphite")
    }

    pub fn opentsdb_port(&self) -> u16 {
        self.port("opentsdb")
    }

    /// `/internal/force_flush`: what was received is then searchable at once (1.79 has it).
    pub fn flush(&self) {
        let (code, body) = curl(&[&format!("{}/internal/force_flush", self.url())]);
        assert_eq!(code, 200, "force_flush: {body}");
    }

    /// Instant PromQL query (asserts success). Sent with `nocache=1`: right after a
    /// force_flush, 1.79's rollup-result cache answered a brand-new series with an empty
    /// result (5 of 5 tries), while `nocache=1` found it (5 of 5).
    pub fn query(&self, promql: &str) -> Value {
        let v = get_json(
            &format!("{}/api/v1/query", self.url()),
            &[("query", promql), ("nocache", "1")],
        );
        assert_eq!(v["status"], "success", "{promql}: {v}");
        v
    }

    /// `/api/v1/export?match[]=…`: every raw sample of the matching series, one JSON object
    /// per series (`metric`, `values`, `timestamps` in ms), sorted by their labels.
    pub fn export(&self, matcher: &str) -> Vec<Value> {
        let (code, body) = curl(&[
            "-G",
            &format!("{}/api/v1/export", self.url()),
            "--data-urlencode",
            &format!("match[]={matcher}"),
        ]);
        assert_eq!(code, 200, "export {matcher}: {body}");
        let mut rows: Vec<Value> = body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("export line"))
            .collect();
        rows.sort_by_key(|r| r["metric"].to_string());
        rows
    }
}

/// Registers processes started by another harness (tests/cli/snmp.rs) so the exit handler
/// stops them by PID and removes `base`, as it does for the sinks.
pub(crate) fn stop_at_exit(pids: Vec<u32>, base: PathBuf) {
    setup_process();
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    live().insert(id, Live { pids, base });
}
