//! `tlm-publish` end to end against real backends (`sinks.rs`): Graphite plaintext and pickle
//! into carbon-cache, InfluxDB, and faults: a backend killed mid-stream and restarted 10 s
//! later, a disk spool replayed by the next run, a full spool, a backend that never answers.
//! Every point is counted back from the backend, never assumed.

use super::harness::{bin, sh, text};
use super::sinks::{self, now_s, unique, Carbon, Influx};
use super::statsd::{log_field, TempDir};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running `tlm-publish` with stdin open, so a test can pace its input.
pub(crate) struct Publish {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    err: thread::JoinHandle<String>,
    out: thread::JoinHandle<String>,
}

pub(crate) struct Done {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Done {
    /// `key=N` from the summary line of destination `dest`.
    pub(crate) fn count(&self, dest: &str, key: &str) -> u64 {
        let line = self
            .stderr
            .lines()
            .find(|l| l.contains("event=summary") && l.contains(&format!("dest={dest}")))
            .unwrap_or_else(|| panic!("no summary for {dest} in:\n{}", self.stderr));
        log_field(line, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {line}"))
    }

    pub(crate) fn assert_ok(&self) {
        assert_eq!(self.status.code(), Some(0), "stderr:\n{}", self.stderr);
    }
}

impl Publish {
    pub(crate) fn start(args: &[&str]) -> Publish {
        let mut child = Command::new(bin("tlm-publish"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tlm-publish");
        let stdin = child.stdin.take();
        let mut e = child.stderr.take().expect("stderr");
        let mut o = child.stdout.take().expect("stdout");
        let err = thread::spawn(move || {
            let mut s = String::new();
            let _ = e.read_to_string(&mut s);
            s
        });
        let out = thread::spawn(move || {
            let mut s = String::new();
            let _ = o.read_to_string(&mut s);
            s
        });
        Publish {
            child,
            stdin,
            err,
            out,
        }
    }

    pub(crate) fn send(&mut self, lines: &str) {
        let w = self.stdin.as_mut().expect("stdin open");
        w.write_all(lines.as_bytes()).expect("write to tlm-publish");
        w.flush().expect("flush");
    }

    /// Closes stdin and waits (at most `limit`) for the exit.
    pub(crate) fn finish(mut self, limit: Duration) -> Done {
        drop(self.stdin.take());
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "tlm-publish did not exit within {limit:?}:\n{}",
                    self.err.join().unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        Done {
            status,
            stdout: self.out.join().expect("stdout"),
            stderr: self.err.join().expect("stderr"),
        }
    }
}

/// Gauge `name` with value `i` at second `t0 + i`, one line each.
pub(crate) fn gauges(name: &str, t0: i64, range: std::ops::Range<i64>) -> String {
    range
        .map(|i| {
            format!(
                "{{\"name\":\"{name}\",\"kind\":\"gauge\",\"value\":{i},\"ts\":{}}}\n",
                (t0 + i) * 1_000_000_000
            )
        })
        .collect()
}

/// The rows of an InfluxQL answer as column → value maps.
pub(crate) fn table(
    db: &Influx,
    name: &str,
    q: &str,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let v = db.query(name, q);
    let series = &v["results"][0]["series"][0];
    let columns: Vec<String> = series["columns"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    series["values"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    columns
                        .iter()
                        .cloned()
                        .zip(r.as_array().cloned().unwrap_or_default())
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn expected(t0: i64, range: std::ops::Range<i64>) -> Vec<(i64, f64)> {
    range.map(|i| (t0 + i, i as f64)).collect()
}

/// The "done when": `tlm-agg … | tlm-publish graphite:// influx://` delivers to both,
/// tagged series included, with the exact aggregated values.
#[test]
fn aggregated_stream_reaches_graphite_and_influx() {
    let (c, i) = (sinks::carbon(), sinks::influx());
    let p = unique("fanout");
    let t0 = (now_s() - 120) / 10 * 10;
    let mut input = String::new();
    for k in 0..10 {
        input.push_str(&format!(
            "{{\"name\":\"{p}.req\",\"kind\":\"counter\",\"temporality\":\"delta\",\"value\":{},\"ts\":{},\"tags\":{{\"host\":\"h1\"}}}}\n",
            k + 1,
            (t0 + k) * 1_000_000_000
        ));
    }
    let dir = TempDir::new("fanout");
    let file = dir.0.join("in.ndjson");
    std::fs::write(&file, input).expect("write input");
    let out = sh(&format!(
        "tlm-agg --window 10s < {} | tlm-publish graphite://127.0.0.1:{} 'influx://127.0.0.1:{}/{p}?precision=s'",
        file.display(),
        c.plaintext_port(),
        i.http_port()
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = c.wait_points(
        &format!("{p}.req;host=h1"),
        t0 - 10,
        1,
        Duration::from_secs(10),
    );
    assert_eq!(
        got,
        vec![(t0 + 10, 55.0)],
        "the window's sum, stamped at its end"
    );
    let rows = table(i, &p, &format!("SELECT * FROM \"{p}\""));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["req"], 55, "{rows:?}");
    assert_eq!(rows[0]["host"], "h1", "{rows:?}");
    assert_eq!(
        rows[0]["time"],
        (t0 + 10) * 1_000_000_000,
        "written in seconds: {rows:?}"
    );
}

#[test]
fn pickle_reaches_carbon() {
    let c = sinks::carbon();
    let p = unique("pickle");
    let t0 = now_s() - 100;
    let mut run = Publish::start(&[
        "--batch",
        "7",
        &format!("graphite+pickle://127.0.0.1:{}", c.pickle_port()),
    ]);
    run.send(&gauges(&format!("{p}.v"), t0, 0..30));
    let done = run.finish(Duration::from_secs(20));
    done.assert_ok();
    let got = c.wait_points(&format!("{p}.v"), t0 - 1, 30, Duration::from_secs(10));
    assert_eq!(got, expected(t0, 0..30));
}

/// Args that make a run retry quickly, for the fault tests.
const QUICK_RETRY: [&str; 6] = [
    "--linger",
    "100ms",
    "--backoff",
    "100ms",
    "--max-backoff",
    "1s",
];

/// carbon-cache SIGKILLed mid-stream (losing what it had received but not written) and started
/// again 10 s later: the replay window and the retried batches bring every point.
#[test]
fn graphite_killed_mid_stream_and_restarted_loses_nothing() {
    let mut c = Carbon::start_private();
    let p = unique("kill");
    let n = 160;
    let t0 = now_s() - 300;
    let dest = format!("graphite://127.0.0.1:{}", c.plaintext_port());
    let mut run = Publish::start(&[&QUICK_RETRY[..], &[dest.as_str()]].concat());
    let lines: Vec<String> = (0..n)
        .map(|i| gauges(&format!("{p}.v"), t0, i..i + 1))
        .collect();
    let started = Instant::now();
    for (i, line) in lines.iter().enumerate() {
        run.send(line);
        thread::sleep(Duration::from_millis(50));
        if i == 40 {
            c.kill_hard();
            let killed = Instant::now();
            // Points keep flowing while carbon is down; it comes back 10 s later.
            let restart = thread::spawn(move || {
                thread::sleep(Duration::from_secs(10).saturating_sub(killed.elapsed()));
                c.restart();
                c
            });
            for line in &lines[41..120] {
                run.send(line);
                thread::sleep(Duration::from_millis(50));
            }
            c = restart.join().expect("restart");
            for line in &lines[120..] {
                run.send(line);
                thread::sleep(Duration::from_millis(20));
            }
            break;
        }
    }
    assert!(started.elapsed() >= Duration::from_secs(10));
    let done = run.finish(Duration::from_secs(40));
    done.assert_ok();
    assert_eq!(done.count(&dest, "sent"), n as u64);
    assert_eq!(done.count(&dest, "dropped"), 0);
    assert!(done.count(&dest, "retried") > 0, "{}", done.stderr);
    let got = c.wait_points(
        &format!("{p}.v"),
        t0 - 1,
        n as usize,
        Duration::from_secs(15),
    );
    assert_eq!(got, expected(t0, 0..n), "every point, once per timestamp");
}

/// InfluxDB acknowledges writes, so a killed and restarted server gets every point exactly
/// once: counted back with `count(*)`.
#[test]
fn influx_killed_mid_stream_and_restarted_gets_every_point_once() {
    let mut db = Influx::start_private();
    let p = unique("ikill");
    let n = 120;
    let t0 = now_s() - 300;
    let dest = format!("influx://127.0.0.1:{}/{p}", db.http_port());
    let mut run = Publish::start(&[&QUICK_RETRY[..], &[dest.as_str()]].concat());
    for i in 0..n {
        run.send(&gauges(&format!("{p}.v"), t0, i..i + 1));
        thread::sleep(Duration::from_millis(30));
        if i == 30 {
            db.kill_hard();
            thread::sleep(Duration::from_secs(10));
            db.restart();
        }
    }
    let done = run.finish(Duration::from_secs(40));
    done.assert_ok();
    assert_eq!(done.count(&dest, "sent"), n as u64);
    assert!(done.count(&dest, "retried") > 0, "{}", done.stderr);
    let rows = table(&db, &p, &format!("SELECT count(v), sum(v) FROM \"{p}\""));
    assert_eq!(rows[0]["count"], n, "{rows:?}");
    assert_eq!(rows[0]["sum"], n * (n - 1) / 2, "{rows:?}");
}

/// With the backend down, a run spools what it cannot deliver and exits 0; the next run with
/// the same `--spool` replays it, in order, once the backend is up.
#[test]
fn spool_outlives_the_run_and_is_replayed_by_the_next() {
    let mut db = Influx::start_private();
    let p = unique("spool");
    let dest = format!("influx://127.0.0.1:{}/{p}", db.http_port());
    db.stop();
    let dir = TempDir::new("spool");
    let spool = dir.0.join("spool");
    let spool_arg = spool.to_str().expect("utf-8 path");
    let t0 = now_s() - 100;
    let common = [
        "--batch",
        "10",
        "--retries",
        "2",
        "--backoff",
        "50ms",
        "--drain-timeout",
        "2s",
        "--spool",
        spool_arg,
    ];
    let mut run = Publish::start(&[&common[..], &[dest.as_str()]].concat());
    run.send(&gauges(&format!("{p}.v"), t0, 0..95));
    let done = run.finish(Duration::from_secs(30));
    done.assert_ok();
    assert_eq!(done.count(&dest, "sent"), 0);
    assert_eq!(done.count(&dest, "dropped"), 0);
    assert_eq!(done.count(&dest, "queued"), 95, "{}", done.stderr);
    assert!(
        done.stderr.contains("event=spooled_at_exit"),
        "{}",
        done.stderr
    );

    db.restart();
    let run = Publish::start(&[&common[..], &[dest.as_str()]].concat());
    let done = run.finish(Duration::from_secs(30));
    done.assert_ok();
    assert_eq!(done.count(&dest, "replayed"), 95, "{}", done.stderr);
    assert_eq!(done.count(&dest, "sent"), 95);
    let rows = table(&db, &p, &format!("SELECT v FROM \"{p}\""));
    let values: Vec<i64> = rows.iter().map(|r| r["v"].as_i64().expect("v")).collect();
    assert_eq!(values, (0..95).collect::<Vec<_>>());
    let left = std::fs::read_dir(
        spool
            .join(format!("influx___127.0.0.1_{}_{p}", db.http_port()))
            .join("lane-0"),
    )
    .expect("lane dir")
    .count();
    assert_eq!(left, 0, "the spool is empty after the replay");
}

/// A spool that fills up drops what does not fit, says so, and the run exits 69; every point
/// is accounted for as spooled or dropped.
#[test]
fn a_full_spool_drops_loudly_and_fails_the_run() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dir = TempDir::new("spoolfull");
    let spool = dir.0.join("spool");
    let dest = format!("influx://127.0.0.1:{port}/db");
    let mut run = Publish::start(&[
        "--batch",
        "10",
        "--retries",
        "1",
        "--backoff",
        "20ms",
        "--drain-timeout",
        "1s",
        "--buffer",
        "0",
        "--spool",
        spool.to_str().expect("utf-8"),
        "--spool-max",
        "2KiB",
        &dest,
    ]);
    run.send(&gauges("full.v", now_s() - 100, 0..100));
    let done = run.finish(Duration::from_secs(30));
    assert_eq!(done.status.code(), Some(69), "{}", done.stderr);
    let (spooled, dropped) = (done.count(&dest, "spooled"), done.count(&dest, "dropped"));
    assert!(spooled > 0 && dropped > 0, "{}", done.stderr);
    assert_eq!(spooled + dropped, 100, "{}", done.stderr);
    assert!(done.stderr.contains("level=error") && done.stderr.contains("event=dropped"));
}

/// A backend that accepts connections and never answers: requests time out and are retried;
/// without a spool the drain timeout ends the run with exit 69 and every point counted lost,
/// with one the points are kept for the next run.
#[test]
fn a_backend_that_never_answers_is_timed_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let dest = format!("http://127.0.0.1:{port}/ingest");
    let args = [
        "--timeout",
        "300ms",
        "--backoff",
        "50ms",
        "--max-backoff",
        "200ms",
        "--drain-timeout",
        "2s",
    ];
    let mut run = Publish::start(&[&args[..], &[dest.as_str()]].concat());
    run.send(&gauges("silent.v", now_s(), 0..20));
    let started = Instant::now();
    let done = run.finish(Duration::from_secs(20));
    assert_eq!(done.status.code(), Some(69), "{}", done.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "bounded by the drain timeout"
    );
    assert_eq!(done.count(&dest, "dropped"), 20);
    assert!(done.count(&dest, "retried") >= 2);

    let dir = TempDir::new("silent");
    let spool = dir.0.join("spool");
    let mut run = Publish::start(
        &[
            &args[..],
            &["--spool", spool.to_str().expect("utf-8"), dest.as_str()],
        ]
        .concat(),
    );
    run.send(&gauges("silent.v", now_s(), 0..20));
    let done = run.finish(Duration::from_secs(20));
    done.assert_ok();
    assert_eq!(done.count(&dest, "dropped"), 0);
    assert_eq!(done.count(&dest, "queued"), 20);
}

/// `--dry-run` prints each payload as it would go out and sends nothing.
#[test]
fn dry_run_prints_exact_payloads() {
    let run = {
        let mut r = Publish::start(&[
            "--dry-run",
            "--batch",
            "2",
            "graphite://127.0.0.1:9",
            "influx://127.0.0.1:9/db",
        ]);
        r.send(&gauges("dry.v", 1_700_000_000, 0..3));
        r
    };
    let done = run.finish(Duration::from_secs(20));
    done.assert_ok();
    let graphite: Vec<&str> = done
        .stdout
        .lines()
        .filter(|l| l.starts_with("dry.v "))
        .collect();
    assert_eq!(
        graphite,
        [
            "dry.v 0 1700000000",
            "dry.v 1 1700000001",
            "dry.v 2 1700000002"
        ]
    );
    assert!(
        done.stdout
            .contains("# dry-run graphite://127.0.0.1:9 points=2 bytes="),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout
            .contains("# dry-run POST http://127.0.0.1:9/write?db=db&precision=ns"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains("dry v=2i 1700000002000000000"),
        "{}",
        done.stdout
    );
}

/// `--serve` answers a real Prometheus scrape with the latest value per series, and a
/// `pushgateway://` destination pushes to a real Pushgateway that the same Prometheus scrapes.
#[test]
fn prometheus_scrapes_serve_and_the_pushgateway() {
    use super::sinks::Prom;
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let serve = format!("127.0.0.1:{port}");
    let prom = Prom::start_private(Some(&serve), true);
    let pg = prom.pushgateway_port().expect("pushgateway");
    let p = unique("expo");
    let now_ns = now_s() * 1_000_000_000;
    let line = |name: &str, v: u64, host: &str| {
        format!(
            "{{\"name\":\"{p}.{name}\",\"kind\":\"counter\",\"temporality\":\"cumulative\",\"value\":{v},\"ts\":{now_ns},\"tags\":{{\"host\":\"{host}\"}}}}\n"
        )
    };
    let mut run = Publish::start(&[
        "--serve",
        &serve,
        "--linger",
        "100ms",
        &format!("pushgateway://127.0.0.1:{pg}/job/tlm/site/lab"),
    ]);
    run.send(&(line("req", 5, "a") + &line("req", 9, "a") + &line("req", 4, "b")));
    assert!(
        prom.wait_targets_up(Duration::from_secs(20)),
        "scrape targets up"
    );
    let want = |job: &str| {
        let q = format!("{p}_req_total{{job=\"{job}\"}}");
        let start = Instant::now();
        loop {
            let v = prom.query(&q, None);
            let mut got: Vec<(String, String)> = v["data"]["result"]
                .as_array()
                .expect("result")
                .iter()
                .map(|r| {
                    (
                        r["metric"]["host"].as_str().unwrap_or("").to_string(),
                        r["value"][1].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            got.sort();
            if got.len() == 2 || start.elapsed() > Duration::from_secs(15) {
                return (got, v);
            }
            thread::sleep(Duration::from_millis(200));
        }
    };
    let expect = vec![
        ("a".to_string(), "9".to_string()),
        ("b".to_string(), "4".to_string()),
    ];
    let (got, v) = want("scrape");
    assert_eq!(got, expect, "--serve: {v}");
    // Prometheus scrapes the gateway with honor_labels: the pushed job name is kept.
    let (got, v) = want("tlm");
    assert_eq!(got, expect, "pushgateway: {v}");
    assert_eq!(
        v["data"]["result"][0]["metric"]["site"], "lab",
        "grouping label: {v}"
    );
    let done = run.finish(Duration::from_secs(20));
    done.assert_ok();
}

/// SIGUSR1 logs the counters; SIGTERM with input still open delivers what was read, then
/// exits 0.
#[test]
fn sigusr1_reports_and_sigterm_delivers_then_exits_0() {
    let db = sinks::influx();
    let p = unique("term");
    let dest = format!("influx://127.0.0.1:{}/{p}", db.http_port());
    let mut run = Publish::start(&["--linger", "10s", &dest]);
    run.send(&gauges(&format!("{p}.v"), now_s() - 100, 0..50));
    thread::sleep(Duration::from_millis(500));
    let pid = run.child.id() as i32;
    // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let done = run.finish(Duration::from_secs(20));
    done.assert_ok();
    let stats = done
        .stderr
        .lines()
        .find(|l| l.contains("event=stats"))
        .expect("a stats line");
    assert!(
        stats.contains(&format!("dest={dest}")) && stats.contains("queued=0"),
        "{stats}"
    );
    assert_eq!(done.count(&dest, "sent"), 50, "{}", done.stderr);
    let rows = table(db, &p, &format!("SELECT count(v) FROM \"{p}\""));
    assert_eq!(rows[0]["count"], 50, "{rows:?}");
}

/// A spool on a disk that fills up (a 64 KiB tmpfs in a user and mount namespace): what does
/// not fit is dropped, logged at error level, and the run exits 69.
#[test]
fn a_full_spool_disk_drops_loudly() {
    if Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        panic!("this test needs `unshare -rm` (user and mount namespaces)");
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dir = TempDir::new("diskfull");
    let input = dir.0.join("in.ndjson");
    std::fs::write(
        &input,
        gauges("diskfull.value.with.a.longer.name", now_s() - 100, 0..3000),
    )
    .expect("input");
    let spool = dir.0.join("spool");
    std::fs::create_dir_all(&spool).expect("spool dir");
    let script = format!(
        "mount -t tmpfs -o size=64k tmpfs {spool} && {bin} --batch 100 --retries 1 --backoff 20ms --drain-timeout 1s --buffer 0 --spool {spool} influx://127.0.0.1:{port}/db < {input}",
        spool = spool.display(),
        bin = bin("tlm-publish").display(),
        input = input.display()
    );
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.contains("event=summary"))
        .expect("summary");
    let field = |k: &str| {
        log_field(summary, k)
            .and_then(|v| v.parse::<u64>().ok())
            .expect(k)
    };
    assert!(field("spooled") > 0 && field("dropped") > 0, "{summary}");
    assert_eq!(field("spooled") + field("dropped"), 3000, "{summary}");
    assert!(
        stderr.contains("level=error") && stderr.contains("event=dropped"),
        "{stderr}"
    );
}
