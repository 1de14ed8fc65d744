//! `tlm-statsd` with real peers: the Python `statsd` client (PyPI), Node's `hot-shots` (npm),
//! and Etsy statsd itself (npm `statsd`, via `etsy.rs`), every total compared exactly.
//!
//! The client packages are installed once into the target directory (pip `--target`, npm in
//! a private folder), staged and renamed into place so an interrupted install is never taken
//! for a finished one. Without python3/pip or node/npm the tests fail, saying so, rather than
//! pass without having run the peer.

use super::etsy::{self, Sample, Sink, Statsd};
use super::harness;
use super::statsd::{counter, dump, gauge, lines_of, num, summary, Daemon};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const PY_STATSD: &str = "4.0.1";
const HOT_SHOTS: &str = "11.2.0";

pub fn peers() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("peers")
}

fn need(tool: &str, args: &[&str], how: &str) {
    match Command::new(tool).args(args).output() {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "tlm-statsd's peer tests need `{tool} {}`: {how}",
            args.join(" ")
        ),
    }
}

/// Installs into `root` by running `install` in a staging directory renamed into place;
/// `done` tells a finished install.
fn install_once(root: &Path, done: &dyn Fn(&Path) -> bool, install: &dyn Fn(&Path)) {
    if done(root) {
        return;
    }
    let staging = root.with_file_name(format!(
        "{}.staging-{}",
        root.file_name().expect("name").to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).expect("create the staging directory");
    install(&staging);
    let _ = fs::remove_dir_all(root);
    if fs::rename(&staging, root).is_err() {
        // Another test process finished the same install first.
        let _ = fs::remove_dir_all(&staging);
    }
    assert!(done(root), "install into {} failed", root.display());
}

/// Installs `package==version` from PyPI into its own directory under the target directory
/// (once, binary wheels only when `binary`), and returns that directory, for PYTHONPATH.
pub fn pip_package(package: &str, version: &str, binary: bool) -> PathBuf {
    let how = "install python3 and pip (Debian: apt-get install python3 python3-pip)";
    need("python3", &["--version"], how);
    let root = peers().join(format!("py-{package}-{version}"));
    let done = |r: &Path| r.join(format!("{package}-{version}.dist-info")).exists();
    install_once(&root, &done, &|staging| {
        need("python3", &["-m", "pip", "--version"], how);
        let out = Command::new("python3")
            .args(["-m", "pip", "install", "--no-deps", "--no-input", "-q"])
            .args(["--disable-pip-version-check"])
            .args(if binary {
                &["--only-binary", ":all:"][..]
            } else {
                &[]
            })
            .arg("--target")
            .arg(staging)
            .arg(format!("{package}=={version}"))
            .env("PIP_ROOT_USER_ACTION", "ignore")
            // Debian's python refuses pip installs (PEP 668) unless told; `--target`
            // writes only into the target directory, never the system's packages.
            .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
            .output()
            .expect("python3 -m pip");
        assert!(
            out.status.success(),
            "pip install {package}=={version} failed:\n{}",
            harness::text(&out.stderr)
        );
    });
    root
}

/// The directory holding the `statsd` Python package, for PYTHONPATH.
fn py_statsd() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| pip_package("statsd", PY_STATSD, false))
}

/// The `node_modules` directory holding `hot-shots`, for NODE_PATH.
fn hot_shots() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let how = "install Node.js and npm (Debian: apt-get install nodejs npm)";
        need("node", &["--version"], how);
        let root = peers().join(format!("hot-shots-{HOT_SHOTS}"));
        let done = |r: &Path| {
            fs::read_to_string(r.join("node_modules/hot-shots/package.json"))
                .is_ok_and(|p| p.contains(&format!(r#""version": "{HOT_SHOTS}""#)))
        };
        install_once(&root, &done, &|staging| {
            need("npm", &["--version"], how);
            fs::write(
                staging.join("package.json"),
                r#"{"name":"tlm-hot-shots-peer","version":"0.0.0","private":true}"#,
            )
            .expect("write package.json");
            // The optional unix-dgram dependency needs node-gyp; UDP needs nothing.
            let out = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--ignore-scripts"])
                .args(["--omit=optional", "--loglevel=error"])
                .arg(format!("hot-shots@{HOT_SHOTS}"))
                .current_dir(staging)
                .output()
                .expect("npm");
            assert!(
                out.status.success(),
                "npm install hot-shots@{HOT_SHOTS} failed:\n{}",
                harness::text(&out.stderr)
            );
        });
        root.join("node_modules")
    })
}

// ---------------------------------------------------------------------------------------------

/// The Python client: counters (incr, decr, a seeded @0.5 sample), timings, absolute, negative
/// and delta gauges, sets, pipelines (several lines per datagram) over UDP, and the TCP client
/// with its own pipeline. The script prints how many @0.5 lines the client really sent.
const PY_CLIENT: &str = r#"
import random, sys, statsd
udp, tcp = int(sys.argv[1]), int(sys.argv[2])
c = statsd.StatsClient('127.0.0.1', udp, prefix='py')
for _ in range(100):
    c.incr('hits')
c.incr('hits', 5)
c.decr('hits', 3)
for v in (10, 20, 30, 40):
    c.timing('lat', v)
c.gauge('temp', 50)
c.gauge('temp', 5, delta=True)
c.gauge('temp', -8, delta=True)
c.gauge('neg', -5)
for u in ('a', 'b', 'a', 'c'):
    c.set('users', u)
with c.pipeline() as p:
    for _ in range(50):
        p.incr('piped')
    p.timing('plat', 7)
    p.gauge('pg', 3)
random.seed(7)
kept = sum(1 for _ in range(200) if not random.random() > 0.5)
random.seed(7)
for _ in range(200):
    c.incr('sampled', 1, rate=0.5)
t = statsd.TCPStatsClient('127.0.0.1', tcp, prefix='py')
for _ in range(30):
    t.incr('tcp_hits', 2)
t.timing('tcp_lat', 12.5)
with t.pipeline() as p:
    for _ in range(10):
        p.incr('tcp_piped')
t.close()
print(kept)
"#;

#[test]
fn python_statsd_client_totals_are_exact() {
    let path = py_statsd();
    let d = Daemon::start(&[
        "--listen",
        "udp://127.0.0.1:0",
        "--listen",
        "tcp://127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--flush",
        "1h",
    ]);
    let (udp, tcp) = (d.addr("udp"), d.addr("tcp"));
    let out = Command::new("python3")
        .args(["-c", PY_CLIENT])
        .arg(udp.port().to_string())
        .arg(tcp.port().to_string())
        .env("PYTHONPATH", path)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", harness::text(&out.stderr));
    let kept: u64 = harness::text(&out.stdout)
        .trim()
        .parse()
        .expect("the count of sampled lines sent");
    assert!((50..150).contains(&kept), "{kept} of 200 at @0.5");
    // 102 counter lines, 4 timings, 3 + 2 gauge lines, 4 set lines, 52 pipelined, sampled.
    d.wait_lines(&format!("udp://{udp}"), 167 + kept);
    d.wait_lines(&format!("tcp://{tcp}"), 41);
    let udp_stats = d.listener_stats(&format!("udp://{udp}"));
    assert!(
        num(&udp_stats["datagrams"]) < (167 + kept) as f64,
        "pipelines pack lines: {udp_stats}"
    );
    assert_eq!(num(&udp_stats["bad"]), 0.0, "{udp_stats}");
    let ms = d.stop().ok();
    assert_eq!(counter(&ms, "py.hits", &[]), 102.0);
    assert_eq!(summary(&ms, "py.lat", &[]), (4.0, 100.0, 10.0, 40.0));
    assert_eq!(gauge(&ms, "py.temp", &[]), 47.0);
    assert_eq!(gauge(&ms, "py.neg", &[]), -5.0);
    assert_eq!(gauge(&ms, "py.users", &[]), 3.0);
    assert_eq!(counter(&ms, "py.piped", &[]), 50.0);
    assert_eq!(summary(&ms, "py.plat", &[]), (1.0, 7.0, 7.0, 7.0));
    assert_eq!(gauge(&ms, "py.pg", &[]), 3.0);
    assert_eq!(counter(&ms, "py.sampled", &[]), 2.0 * kept as f64);
    assert_eq!(counter(&ms, "py.tcp_hits", &[]), 60.0);
    assert_eq!(summary(&ms, "py.tcp_lat", &[]), (1.0, 12.5, 12.5, 12.5));
    assert_eq!(counter(&ms, "py.tcp_piped", &[]), 10.0);
}

/// hot-shots with global and per-call tags (DogStatsD `|#k:v`), histograms and distributions,
/// and `maxBufferSize` batching several lines into one datagram.
const HOT_SHOTS_CLIENT: &str = r#"
const StatsD = require('hot-shots');
const c = new StatsD({
  host: '127.0.0.1', port: Number(process.argv[1]), globalTags: { env: 'test' },
  maxBufferSize: 1000, bufferFlushInterval: 50,
  errorHandler: e => { console.error(e); process.exit(1); },
});
for (let i = 0; i < 40; i++) c.increment('hs.hits', 1, { route: 'a' });
c.increment('hs.hits', 5, ['route:b']);
c.decrement('hs.hits', 2, { route: 'a' });
for (const v of [5, 15, 25]) c.timing('hs.lat', v, { op: 'get' });
c.histogram('hs.size', 100);
c.histogram('hs.size', 300);
for (const v of [2, 4, 9]) c.distribution('hs.dist', v, ['shard:1']);
c.gauge('hs.temp', 21.5);
c.gauge('hs.temp', 22.5);
for (const m of ['x', 'y', 'x']) c.set('hs.uniq', m);
c.close(err => { if (err) { console.error(err); process.exit(1); } });
"#;

#[test]
fn hot_shots_client_tags_and_batching() {
    let modules = hot_shots();
    let d = Daemon::start(&[
        "--listen",
        "udp://127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--flush",
        "1h",
    ]);
    let udp = d.addr("udp");
    let out = Command::new("node")
        .args(["-e", HOT_SHOTS_CLIENT])
        .arg(udp.port().to_string())
        .env("NODE_PATH", modules)
        .output()
        .expect("node");
    assert!(out.status.success(), "{}", harness::text(&out.stderr));
    let label = format!("udp://{udp}");
    d.wait_lines(&label, 55);
    let l = d.listener_stats(&label);
    assert!(num(&l["datagrams"]) < 10.0, "maxBufferSize batches: {l}");
    assert_eq!(num(&l["bad"]), 0.0, "{l}");
    let ms = d.stop().ok();
    let env = ("env", "test");
    assert_eq!(counter(&ms, "hs.hits", &[env, ("route", "a")]), 38.0);
    assert_eq!(counter(&ms, "hs.hits", &[env, ("route", "b")]), 5.0);
    assert_eq!(
        summary(&ms, "hs.lat", &[env, ("op", "get")]),
        (3.0, 45.0, 5.0, 25.0)
    );
    assert_eq!(summary(&ms, "hs.size", &[env]), (2.0, 400.0, 100.0, 300.0));
    assert_eq!(
        summary(&ms, "hs.dist", &[env, ("shard", "1")]),
        (3.0, 15.0, 2.0, 9.0)
    );
    assert_eq!(gauge(&ms, "hs.temp", &[env]), 22.5);
    assert_eq!(gauge(&ms, "hs.uniq", &[env]), 2.0);
    let rate = lines_of(&ms, "hs.hits.rate", &[env, ("route", "b")]);
    assert_eq!(rate.len(), 1, "{}", dump(&ms));
}

// ---------------------------------------------------------------------------------------------
// Etsy conformance: the same datagram to Etsy statsd and to `tlm-statsd --style statsd`.

/// Every sample of etsy.rs (sample rates, thresholds, delta and mixed gauges, sets with
/// repeated members, tags) plus the lines Etsy counts as bad, as ONE datagram: one datagram
/// is read and folded whole by both servers, so it lands in one flush interval of each
/// however their (differently aligned) flush clocks fall, and no retry is needed.
fn payload() -> String {
    let mut lines: Vec<String> = etsy::SAMPLES
        .iter()
        .chain(etsy::MIXED_GAUGES)
        .chain(etsy::REPEATED_MEMBERS)
        .map(Sample::statsd)
        .collect();
    lines.extend(EXTRA.iter().map(|l| l.to_string()));
    lines.extend(etsy::BAD_STATSD.iter().map(|l| l.to_string()));
    lines.join("\n")
}

/// statsd syntax beyond etsy.rs's samples: several values per name (Etsy's `k:1|c:2|c`),
/// names Etsy sanitizes (spaces, slashes, other bytes), rates on gauges and sets (ignored),
/// negative and fractional counters, a gauge set to 0 and changed.
const EXTRA: &[&str] = &[
    "tlmtest.multi:1|c:2|c:3|c",
    "tlmtest.multit:4|ms:6|ms",
    "tlmtest.san itize/x:1|c",
    "tlmtest.odd!@chars:2|c",
    "tlmtest.g.rated:5|g|@0.5",
    "tlmtest.s.rated:q|s|@0.5",
    "tlmtest.c.neg:-4|c",
    "tlmtest.c.frac:0.1|c|@0.1",
    "tlmtest.g.zero:0|g",
    "tlmtest.g.zero:-2|g",
    "tlmtest.t.zero:0|ms",
];

/// Etsy's values for the test's names, and how many bad lines it counted.
fn etsy_graphite(payload: &str, legacy: bool, tag: &str) -> (BTreeMap<String, f64>, f64) {
    let sink = Sink::start();
    let mut statsd = Statsd::start_ready(&sink, legacy, tag);
    let seen = sink.count();
    statsd.send(payload);
    let flush = statsd
        .wait_for(&sink, seen, ".tlmtest.", None)
        .unwrap_or_else(|log| panic!("Etsy statsd {log}"));
    drop(statsd);
    let bad = if legacy {
        "stats_counts.statsd.bad_lines_seen "
    } else {
        "stats.counters.statsd.bad_lines_seen.count "
    };
    let bad = flush
        .lines()
        .find_map(|l| l.strip_prefix(bad))
        .and_then(|v| v.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {bad}in Etsy's flush:\n{flush}"));
    (etsy::graphite_values(&flush), bad)
}

/// `tlm-statsd --style statsd` fed `payload`, through `tlm-publish --format graphite`: the
/// values of the one flush that holds the test's names (sum per name over flushes would hide
/// a second, spurious flush, so any other flush with those names fails the test).
fn tlm_graphite(payload: &str, legacy: bool) -> (BTreeMap<String, f64>, u64) {
    let legacy = legacy.to_string();
    let d = Daemon::start(&[
        "--listen",
        "udp://127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--flush",
        "1s",
        "--style",
        "statsd",
        "--percent-threshold",
        etsy::THRESHOLDS,
        "--legacy-namespace",
        &legacy,
        // Etsy runs with deleteIdleStats: true.
        "--delete-idle",
    ]);
    let to = d.addr("udp");
    super::statsd::udp_send(to, payload.as_bytes());
    d.wait_lines(&format!("udp://{to}"), payload.lines().count() as u64);
    let fin = d.stop();
    fin.ok();
    let bad = fin.summary("bad_lines");
    let publish = harness::run("tlm-publish", &["--format", "graphite"], &fin.stdout);
    assert!(
        publish.status.success(),
        "{}",
        harness::text(&publish.stderr)
    );
    let graphite = harness::text(&publish.stdout);
    let mut by_ts: BTreeMap<&str, String> = BTreeMap::new();
    for line in graphite.lines() {
        let ts = line.rsplit(' ').next().expect("ts");
        let flush = by_ts.entry(ts).or_default();
        flush.push_str(line);
        flush.push('\n');
    }
    let with: Vec<&String> = by_ts.values().filter(|f| f.contains(".tlmtest.")).collect();
    assert_eq!(
        with.len(),
        1,
        "one datagram, so one flush with its names (deleteIdleStats):\n{graphite}"
    );
    (etsy::graphite_values(with[0]), bad)
}

fn conformance(legacy: bool, tag: &str) {
    let payload = payload();
    let (etsy_values, etsy_bad) = etsy_graphite(&payload, legacy, tag);
    let (tlm, tlm_bad) = tlm_graphite(&payload, legacy);
    // Both refuse the same lines, a negative timer among them.
    assert_eq!(
        etsy_bad,
        etsy::BAD_STATSD.len() as f64,
        "Etsy's bad_lines_seen"
    );
    assert_eq!(
        tlm_bad,
        etsy::BAD_STATSD.len() as u64,
        "tlm-statsd's bad_lines"
    );
    let (tlm, etsy_values) = (tlm, etsy_values);
    let mut problems = Vec::new();
    for (name, &e) in &etsy_values {
        match tlm.get(name) {
            None => problems.push(format!("{name}: Etsy {e}, missing from tlm-statsd")),
            Some(&t) if !etsy::close(e, t) => {
                problems.push(format!("{name}: Etsy {e}, tlm-statsd {t}"))
            }
            Some(_) => {}
        }
    }
    for (name, t) in &tlm {
        if !etsy_values.contains_key(name) {
            problems.push(format!("{name}: tlm-statsd {t}, not written by Etsy"));
        }
    }
    assert!(
        problems.is_empty(),
        "legacyNamespace {legacy}: {} of {} values differ:\n{}",
        problems.len(),
        etsy_values.len(),
        problems.join("\n")
    );
    let mut expect = etsy::expected(legacy);
    expect.push(("stats.gauges.tlmtest.g.abs".into(), 12.0));
    expect.push(("stats.gauges.tlmtest.g.other".into(), 4.5));
    expect.push(("stats.sets.tlmtest.s.users.count".into(), 3.0));
    expect.push(("stats.gauges.tlmtest.g.zero".into(), -2.0));
    expect.push(("stats.gauges.tlmtest.g.rated".into(), 5.0));
    expect.push(("stats.timers.tlmtest.multit.sum".into(), 10.0));
    for (name, v) in [
        ("tlmtest.multi", 6.0),
        ("tlmtest.san_itize-x", 1.0),
        ("tlmtest.oddchars", 2.0),
        ("tlmtest.c.frac", 1.0),
    ] {
        let count = if legacy {
            format!("stats_counts.{name}")
        } else {
            format!("stats.counters.{name}.count")
        };
        expect.push((count, v));
    }
    for (name, want) in &expect {
        assert_eq!(
            etsy_values.get(name),
            Some(want),
            "{name} in {etsy_values:#?}"
        );
    }
    assert!(etsy_values.len() >= 130, "{} values", etsy_values.len());
}

#[test]
fn statsd_style_matches_etsy_statsd_over_udp() {
    conformance(true, "daemon-legacy");
}

#[test]
fn statsd_style_matches_etsy_statsd_over_udp_without_legacy_namespace() {
    conformance(false, "daemon-modern");
}
