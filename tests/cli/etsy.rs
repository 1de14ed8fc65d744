//! `tlm-agg --style statsd` against Etsy statsd itself.
//!
//! The same samples go to a real Etsy statsd (the npm `statsd` package, its Graphite backend
//! pointed at a listener in this test) as statsd datagrams, and through `tlm-agg --style
//! statsd | tlm-publish --format graphite` as tlm metric lines. Every value Etsy writes for
//! them must come out of tlm under the same Graphite name, and tlm must write nothing more.
//!
//! Needs `node` and `npm` (CI has both, and the npm registry); the package is installed once
//! into the target directory. Without them the test fails, saying so, rather than passing
//! without having compared anything.

use super::harness;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The Etsy release whose arithmetic `src/lib/agg/etsy.rs` follows.
const STATSD_VERSION: &str = "0.9.0";
pub(crate) const THRESHOLDS: &str = "90,99.9,-50";
/// Event time of every sample: inside the one-second window [1767225600 s, 1767225601 s).
const TS: i64 = 1_767_225_600_500_000_000;
const DEADLINE: Duration = Duration::from_secs(15);

/// One statsd sample, written both as a datagram line and as a tlm metric line.
pub(crate) struct Sample {
    name: &'static str,
    value: &'static str,
    /// statsd type: `c`, `ms`, `g` or `s`.
    kind: &'static str,
    rate: Option<f64>,
    tags: &'static [(&'static str, &'static str)],
}

const fn s(name: &'static str, value: &'static str, kind: &'static str) -> Sample {
    Sample {
        name,
        value,
        kind,
        rate: None,
        tags: &[],
    }
}

const fn sampled(name: &'static str, value: &'static str, kind: &'static str, rate: f64) -> Sample {
    Sample {
        name,
        value,
        kind,
        rate: Some(rate),
        tags: &[],
    }
}

const fn tagged(
    name: &'static str,
    value: &'static str,
    kind: &'static str,
    tags: &'static [(&'static str, &'static str)],
) -> Sample {
    Sample {
        name,
        value,
        kind,
        rate: None,
        tags,
    }
}

/// Sample rates, thresholds where Math.round matters, one-value and even-count timers,
/// absolute and delta gauges, sets, DogStatsD tags. Order matters for the gauges. Delta gauges
/// on absolute ones and set members repeated across lines are in `MIXED_GAUGES` and
/// `REPEATED_MEMBERS`.
pub(crate) const SAMPLES: &[Sample] = &[
    s("tlmtest.c.plain", "1", "c"),
    s("tlmtest.c.plain", "1", "c"),
    s("tlmtest.c.plain", "1", "c"),
    sampled("tlmtest.c.sampled", "3", "c", 0.5),
    sampled("tlmtest.c.sampled", "1", "c", 0.1),
    sampled("tlmtest.c.third", "1", "c", 0.3),
    s("tlmtest.c.float", "0.25", "c"),
    s("tlmtest.c.float", "-2", "c"),
    tagged("tlmtest.c.tagged", "5", "c", &[("env", "prod")]),
    s("tlmtest.t.one", "42", "ms"),
    s("tlmtest.t.four", "300", "ms"),
    s("tlmtest.t.four", "100", "ms"),
    s("tlmtest.t.four", "400", "ms"),
    s("tlmtest.t.four", "200", "ms"),
    // 90% of 5 is 4.5 values, which Math.round makes 5; -50 takes round(2.5) = 3.
    s("tlmtest.t.five", "5", "ms"),
    s("tlmtest.t.five", "3", "ms"),
    s("tlmtest.t.five", "1", "ms"),
    s("tlmtest.t.five", "4", "ms"),
    s("tlmtest.t.five", "2", "ms"),
    sampled("tlmtest.t.many", "3.5", "ms", 0.5),
    s("tlmtest.t.many", "1.25", "ms"),
    sampled("tlmtest.t.many", "9", "ms", 0.25),
    s("tlmtest.t.many", "7.75", "ms"),
    s("tlmtest.t.many", "2", "ms"),
    sampled("tlmtest.t.many", "8.5", "ms", 0.5),
    s("tlmtest.t.many", "4", "ms"),
    s("tlmtest.t.many", "6.25", "ms"),
    s("tlmtest.t.many", "5", "ms"),
    s("tlmtest.t.many", "10.125", "ms"),
    s("tlmtest.t.many", "0.001", "ms"),
    s("tlmtest.t.many", "1234.5", "ms"),
    sampled("tlmtest.t.third", "10", "ms", 0.3),
    sampled("tlmtest.t.third", "20", "ms", 0.3),
    sampled("tlmtest.t.third", "35", "ms", 0.3),
    tagged(
        "tlmtest.t.tagged",
        "5",
        "ms",
        &[("env", "prod"), ("host", "a")],
    ),
    tagged(
        "tlmtest.t.tagged",
        "7",
        "ms",
        &[("env", "prod"), ("host", "a")],
    ),
    s("tlmtest.g.delta", "+5", "g"),
    s("tlmtest.g.delta", "-3", "g"),
    s("tlmtest.g.neg", "-3", "g"),
    s("tlmtest.g.reset", "7", "g"),
    s("tlmtest.g.reset", "2.5", "g"),
    s("tlmtest.s.users", "a", "s"),
    s("tlmtest.s.users", "b", "s"),
    s("tlmtest.s.users", "c", "s"),
    s("tlmtest.s.ids", "1", "s"),
    s("tlmtest.s.ids", "01", "s"),
];

/// A set member sent again in a later datagram line.
pub(crate) const REPEATED_MEMBERS: &[Sample] = &[
    s("tlmtest.s.users", "a", "s"),
    s("tlmtest.s.users", "b", "s"),
    s("tlmtest.s.users", "a", "s"),
    s("tlmtest.s.ids", "1", "s"),
    s("tlmtest.s.ids", "01", "s"),
    s("tlmtest.s.ids", "1", "s"),
];

/// Delta gauges on top of an absolute value in the same window.
pub(crate) const MIXED_GAUGES: &[Sample] = &[
    s("tlmtest.g.abs", "10", "g"),
    s("tlmtest.g.abs", "+5", "g"),
    s("tlmtest.g.abs", "-3", "g"),
    s("tlmtest.g.other", "-1.5", "g"),
    s("tlmtest.g.other", "4", "g"),
    s("tlmtest.g.other", "+0.5", "g"),
];

/// Lines Etsy counts as bad (no value, negative timer, no type, bad rate, text gauge).
pub(crate) const BAD_STATSD: &[&str] = &[
    "tlmtest.bad.value:abc|c",
    "tlmtest.bad.negtimer:-5|ms",
    "tlmtest.bad.notype:5",
    "tlmtest.bad.rate:1|c|@x",
    "tlmtest.bad.gauge:x|g",
];

/// Lines tlm counts as bad.
const BAD_NDJSON: &[&str] = &[
    r#"{"name":"tlmtest.bad.value","kind":"counter","temporality":"delta","value":"abc"}"#,
    "tlmtest.bad.notjson",
];

impl Sample {
    pub(crate) fn statsd(&self) -> String {
        let mut line = format!("{}:{}|{}", self.name, self.value, self.kind);
        if let Some(r) = self.rate {
            line.push_str(&format!("|@{r}"));
        }
        if !self.tags.is_empty() {
            let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            line.push_str(&format!("|#{}", tags.join(",")));
        }
        line
    }

    /// The tlm metric a statsd server writes for this sample (docs/format.md): counters
    /// scaled by 1 / rate as Etsy scales them, timers as distributions keeping the rate,
    /// `+N`/`-N` gauges as delta gauges, set members as strings.
    fn ndjson(&self) -> String {
        let body = match self.kind {
            "c" => {
                let value = match self.rate {
                    Some(r) => format!("{:?}", parse(self.value) * (1.0 / r)),
                    None => self.value.to_owned(),
                };
                format!(r#""kind":"counter","temporality":"delta","value":{value}"#)
            }
            "ms" => {
                let rate = self
                    .rate
                    .map(|r| format!(r#","sample_rate":{r}"#))
                    .unwrap_or_default();
                format!(r#""kind":"distribution","values":[{}]{rate}"#, self.value)
            }
            "g" if self.value.starts_with(['+', '-']) => format!(
                r#""kind":"gauge","temporality":"delta","value":{}"#,
                self.value.trim_start_matches('+')
            ),
            "g" => format!(r#""kind":"gauge","value":{}"#, self.value),
            "s" => format!(r#""kind":"set","values":["{}"]"#, self.value),
            other => panic!("sample type {other}"),
        };
        let tags: Vec<String> = self
            .tags
            .iter()
            .map(|(k, v)| format!(r#""{k}":"{v}""#))
            .collect();
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!(r#","tags":{{{}}}"#, tags.join(","))
        };
        format!(r#"{{"name":"{}",{body},"ts":{TS}{tags}}}"#, self.name)
    }
}

fn parse(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|e| panic!("sample value {s}: {e}"))
}

fn fail_without(tool: &str) -> ! {
    panic!(
        "the Etsy statsd comparison needs `{tool}` on PATH: install Node.js and npm \
         (Debian: apt-get install nodejs npm); it cannot pass without running Etsy statsd"
    )
}

fn require(tool: &str) {
    match Command::new(tool).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => fail_without(tool),
    }
}

/// The installed `statsd` package directory, installing it on first use.
fn etsy_statsd() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require("node");
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("peers/etsy-statsd");
        let pkg = root.join("node_modules/statsd");
        let installed = |pkg: &Path| {
            fs::read_to_string(pkg.join("package.json"))
                .is_ok_and(|p| p.contains(&format!(r#""version": "{STATSD_VERSION}""#)))
                && pkg.join("stats.js").exists()
        };
        if installed(&pkg) {
            return pkg;
        }
        require("npm");
        // Installed beside the cache and renamed into place, so an interrupted install is
        // never mistaken for a finished one.
        let staging = root.with_file_name(format!("etsy-statsd.staging-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging).expect("create the npm staging directory");
        fs::write(
            staging.join("package.json"),
            r#"{"name":"tlm-etsy-peer","version":"0.0.0","private":true}"#,
        )
        .expect("write package.json");
        // Optional dependencies (syslog, the proxy's hashring, Windows service) are unused
        // here, and skipping install scripts keeps node-gyp out of the test.
        let out = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--omit=optional",
                "--loglevel=error",
                &format!("statsd@{STATSD_VERSION}"),
            ])
            .current_dir(&staging)
            .output()
            .unwrap_or_else(|_| fail_without("npm"));
        assert!(
            out.status.success(),
            "npm install statsd@{STATSD_VERSION} failed:\n{}",
            harness::text(&out.stderr)
        );
        let _ = fs::remove_dir_all(&root);
        if fs::rename(&staging, &root).is_err() {
            // Another test process finished the same install first.
            let _ = fs::remove_dir_all(&staging);
        }
        assert!(installed(&pkg), "statsd missing from {}", pkg.display());
        pkg
    })
}

/// A Graphite plaintext receiver: each connection is one Etsy flush.
pub(crate) struct Sink {
    port: u16,
    flushes: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    pub(crate) fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Graphite sink");
        listener.set_nonblocking(true).expect("nonblocking sink");
        let port = listener.local_addr().expect("sink address").port();
        let flushes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, st) = (flushes.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        if let Some(text) = read_flush(conn) {
                            f.lock().expect("sink lock").push(text);
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Sink {
            port,
            flushes,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.flushes.lock().expect("sink lock").len()
    }

    /// The first flush after the first `skip` that contains `needle`.
    fn find(&self, skip: usize, needle: &str) -> Option<String> {
        let flushes = self.flushes.lock().expect("sink lock");
        flushes
            .iter()
            .skip(skip)
            .find(|f| f.contains(needle))
            .cloned()
    }
}

fn read_flush(mut conn: TcpStream) -> Option<String> {
    conn.set_nonblocking(false).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    Some(text)
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A running Etsy statsd, killed (by its PID, through `Child`) when dropped.
pub(crate) struct Statsd {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Statsd {
    fn start(sink: &Sink, legacy: bool, tag: &str) -> Statsd {
        let pkg = etsy_statsd();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("etsy-run-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the statsd run directory");
        let port = free_udp_port();
        let mgmt = free_tcp_port();
        let config = format!(
            "{{\n  port: {port}, address: \"127.0.0.1\",\n  mgmt_port: {mgmt}, mgmt_address: \"127.0.0.1\",\n  \
             graphiteHost: \"127.0.0.1\", graphitePort: {},\n  flushInterval: 1000,\n  \
             backends: [\"./backends/graphite\"],\n  percentThreshold: [{THRESHOLDS}],\n  \
             deleteIdleStats: true,\n  automaticConfigReload: false,\n  \
             graphite: {{ legacyNamespace: {legacy} }}\n}}\n",
            sink.port
        );
        let config_path = dir.join("config.js");
        fs::write(&config_path, config).expect("write the statsd config");
        let log = fs::File::create(dir.join("statsd.log")).expect("create the statsd log");
        let err = log.try_clone().expect("clone the log handle");
        let child = Command::new("node")
            .arg("stats.js")
            .arg(&config_path)
            .current_dir(pkg)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|_| fail_without("node"));
        Statsd { child, port, dir }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("statsd.log")).unwrap_or_default()
    }

    pub(crate) fn send(&self, payload: &str) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        sock.send_to(payload.as_bytes(), ("127.0.0.1", self.port))
            .expect("send a datagram to statsd");
    }

    /// Starts statsd and waits until a probe counter comes back through a flush, which
    /// shows it has bound its port and reaches the sink. A port taken between choosing it
    /// and statsd binding it makes statsd exit; then it is started again on other ports.
    pub(crate) fn start_ready(sink: &Sink, legacy: bool, tag: &str) -> Statsd {
        let mut last_log = String::new();
        for attempt in 0..3 {
            let mut statsd = Statsd::start(sink, legacy, &format!("{tag}-{attempt}"));
            match statsd.wait_for(sink, 0, "tlmprobe", Some("tlmprobe:1|c")) {
                Ok(_) => return statsd,
                Err(log) => last_log = log,
            }
        }
        panic!("Etsy statsd did not start in 3 attempts; its last log:\n{last_log}");
    }

    /// Waits for a flush after the first `skip` containing `needle`, probing with `probe`
    /// meanwhile when given. `Err` with statsd's log when it has exited.
    pub(crate) fn wait_for(
        &mut self,
        sink: &Sink,
        skip: usize,
        needle: &str,
        probe: Option<&str>,
    ) -> Result<String, String> {
        let start = Instant::now();
        loop {
            if let Some(flush) = sink.find(skip, needle) {
                return Ok(flush);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited ({status}):\n{}", self.log()));
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no flush with {needle} from Etsy statsd within {DEADLINE:?} ({} flushes seen); \
                 its log:\n{}",
                sink.count(),
                self.log()
            );
            if let Some(p) = probe {
                self.send(p);
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Statsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind UDP :0");
    s.local_addr().expect("UDP address").port()
}

fn free_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind TCP :0");
    l.local_addr().expect("TCP address").port()
}

/// `path[;tags] value` pairs of Graphite plaintext, for the names this test sent.
pub(crate) fn graphite_values(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split(' ');
        let (Some(name), Some(value)) = (f.next(), f.next()) else {
            continue;
        };
        if !name.contains(".tlmtest.") {
            continue;
        }
        let v: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("value of `{line}`: {e}"));
        assert!(
            out.insert(name.to_owned(), v).is_none(),
            "{name} written twice:\n{text}"
        );
    }
    out
}

/// What Etsy statsd writes to Graphite for `samples`.
fn etsy_output(samples: &[Sample], legacy: bool, tag: &str) -> BTreeMap<String, f64> {
    let sink = Sink::start();
    let mut statsd = Statsd::start_ready(&sink, legacy, tag);
    let seen = sink.count();
    // One datagram, so that one flush holds every sample.
    let mut lines: Vec<String> = samples.iter().map(Sample::statsd).collect();
    lines.extend(BAD_STATSD.iter().map(|l| l.to_string()));
    statsd.send(&lines.join("\n"));
    let flush = statsd
        .wait_for(&sink, seen, ".tlmtest.", None)
        .unwrap_or_else(|log| panic!("Etsy statsd {log}"));
    drop(statsd);
    graphite_values(&flush)
}

/// What `tlm-agg --style statsd | tlm-publish --format graphite` writes for `samples`.
fn tlm_output(samples: &[Sample], legacy: bool) -> BTreeMap<String, f64> {
    let mut input: Vec<String> = samples.iter().map(Sample::ndjson).collect();
    input.extend(BAD_NDJSON.iter().map(|l| l.to_string()));
    let legacy = legacy.to_string();
    let agg = harness::run(
        "tlm-agg",
        &[
            "--style",
            "statsd",
            "--window",
            "1s",
            "--percent-threshold",
            THRESHOLDS,
            "--legacy-namespace",
            &legacy,
            "-q",
        ],
        &(input.join("\n") + "\n"),
    );
    assert!(agg.status.success(), "{}", harness::text(&agg.stderr));
    let publish = harness::run(
        "tlm-publish",
        &["--format", "graphite"],
        &harness::text(&agg.stdout),
    );
    assert!(
        publish.status.success(),
        "{}",
        harness::text(&publish.stderr)
    );
    graphite_values(&harness::text(&publish.stdout))
}

pub(crate) fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Compares name for name and value for value, checks `expect` (values worked out by hand,
/// so that a vacuous match such as both sides empty cannot pass), and returns how many
/// values matched.
fn compare(samples: &[Sample], legacy: bool, tag: &str, expect: &[(String, f64)]) -> usize {
    let etsy = etsy_output(samples, legacy, tag);
    let tlm = tlm_output(samples, legacy);
    let mut problems = Vec::new();
    for (name, &e) in &etsy {
        match tlm.get(name) {
            None => problems.push(format!("{name}: Etsy {e}, missing from tlm")),
            Some(&t) if !close(e, t) => problems.push(format!("{name}: Etsy {e}, tlm {t}")),
            Some(_) => {}
        }
    }
    for (name, t) in &tlm {
        if !etsy.contains_key(name) {
            problems.push(format!("{name}: tlm {t}, not written by Etsy"));
        }
    }
    assert!(
        problems.is_empty(),
        "legacyNamespace {legacy}: {} of {} Etsy values differ:\n{}",
        problems.len(),
        etsy.len(),
        problems.join("\n")
    );
    for (name, want) in expect {
        assert_eq!(etsy.get(name), Some(want), "{name} in {etsy:#?}");
    }
    let identical = etsy.iter().filter(|(n, e)| tlm.get(*n) == Some(e)).count();
    eprintln!(
        "etsy statsd {STATSD_VERSION}, legacyNamespace {legacy}: {} values compared, all \
         equal ({identical} bit for bit)",
        etsy.len()
    );
    etsy.len()
}

pub(crate) fn expected(legacy: bool) -> Vec<(String, f64)> {
    let (prefix, rate) = if legacy {
        ("stats.", "")
    } else {
        ("stats.counters.", ".rate")
    };
    let count = |name: &str| {
        if legacy {
            format!("stats_counts.{name}")
        } else {
            format!("stats.counters.{name}.count")
        }
    };
    vec![
        ("stats.timers.tlmtest.t.four.median".into(), 250.0),
        ("stats.timers.tlmtest.t.five.upper_90".into(), 5.0),
        ("stats.timers.tlmtest.t.five.lower_top50".into(), 3.0),
        ("stats.timers.tlmtest.t.one.count_99_9".into(), 1.0),
        ("stats.gauges.tlmtest.g.delta".into(), 2.0),
        ("stats.sets.tlmtest.s.ids.count".into(), 2.0),
        (format!("{prefix}tlmtest.c.sampled{rate}"), 16.0),
        (count("tlmtest.c.plain"), 3.0),
        (format!("{prefix}tlmtest.c.tagged{rate};env=prod"), 5.0),
    ]
}

#[test]
fn statsd_style_matches_etsy_statsd_legacy_namespace() {
    assert!(compare(SAMPLES, true, "legacy", &expected(true)) >= 150);
}

#[test]
fn statsd_style_matches_etsy_statsd_without_legacy_namespace() {
    assert!(compare(SAMPLES, false, "modern", &expected(false)) >= 150);
}

/// Etsy adds `+N|g` to the gauge's value, and so does tlm-agg (docs/aggregation.md).
#[test]
fn statsd_style_matches_etsy_statsd_for_delta_gauges_on_absolute_ones() {
    let expect = [
        ("stats.gauges.tlmtest.g.abs".to_owned(), 12.0),
        ("stats.gauges.tlmtest.g.other".to_owned(), 4.5),
    ];
    assert_eq!(compare(MIXED_GAUGES, true, "mixed", &expect), 2);
}

/// Etsy counts distinct members across lines, and so does tlm-agg.
#[test]
fn statsd_style_matches_etsy_statsd_for_repeated_set_members() {
    let expect = [
        ("stats.sets.tlmtest.s.users.count".to_owned(), 2.0),
        ("stats.sets.tlmtest.s.ids.count".to_owned(), 2.0),
    ];
    assert_eq!(compare(REPEATED_MEMBERS, true, "members", &expect), 2);
}
