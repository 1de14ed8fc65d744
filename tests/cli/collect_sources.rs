//! `tlm-collect nginx|prometheus|exec` against real peers: nginx with stub_status (requests
//! driven through it), Prometheus' node_exporter, and plugin scripts.

use super::harness::{bin, text};
use super::statsd::TempDir;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process this test started, stopped by PID when dropped: SIGTERM first, so that nginx's
/// master stops its workers (SIGKILL would leave them running), SIGKILL after 5 s.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_http(port: u16, path: &str) {
    let start = Instant::now();
    while get(port, path).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing answers on {port}{path}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One GET on a connection of its own; the body, or None when nothing answers.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

fn collect(args: &[&str]) -> (Vec<Value>, String) {
    let out = Command::new(bin("tlm-collect"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("tlm-collect");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    let metrics = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    (metrics, stderr)
}

fn value_of(ms: &[Value], name: &str) -> u64 {
    ms.iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["value"].as_u64())
        .unwrap_or_else(|| panic!("no {name} in {ms:?}"))
}

/// A real nginx on a free loopback port with stub_status at /nginx_status, `extra` server
/// directives, and `location /` answering "ok".
fn start_nginx(extra: &str) -> (TempDir, Started, u16) {
    let dir = TempDir::new(&format!("nginx-{}", free_port()));
    let port = free_port();
    let conf = dir.0.join("nginx.conf");
    std::fs::create_dir_all(dir.0.join("logs")).expect("logs");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/logs/error.log warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               server {{ listen 127.0.0.1:{port}; location = /nginx_status {{ stub_status; }}\n\
                        {extra}\n\
                        location / {{ return 200 \"ok\\n\"; }} }} }}\n",
            d = dir.0.display()
        ),
    )
    .expect("nginx.conf");
    let d = dir.0.display().to_string();
    let nginx = Command::new("nginx")
        .args([
            "-p",
            &d,
            "-c",
            &conf.display().to_string(),
            "-e",
            &format!("{d}/logs/error.log"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (apt-get install nginx-light)");
    let started = Started(nginx);
    wait_http(port, "/");
    (dir, started, port)
}

/// Requests driven through a real nginx move its counters by exactly that many (plus the
/// status request itself).
#[test]
fn nginx_stub_status_counts_requests_exactly() {
    let (_dir, _nginx, port) = start_nginx("");
    let url = format!("http://127.0.0.1:{port}/nginx_status");
    let (first, _) = collect(&["nginx", &url, "--count", "1", "--tag", "role=edge"]);
    for _ in 0..5 {
        assert_eq!(get(port, "/").as_deref(), Some("ok\n"));
    }
    let (second, _) = collect(&["nginx", &url, "--count", "1"]);
    // Five requests and the second status request, each on a connection of its own.
    assert_eq!(
        value_of(&second, "nginx.requests") - value_of(&first, "nginx.requests"),
        6
    );
    assert_eq!(
        value_of(&second, "nginx.connections.accepted")
            - value_of(&first, "nginx.connections.accepted"),
        6
    );
    let requests = first
        .iter()
        .find(|m| m["name"] == "nginx.requests")
        .expect("requests");
    assert_eq!(requests["kind"], "counter");
    assert_eq!(requests["temporality"], "cumulative");
    assert_eq!(requests["tags"]["server"], format!("127.0.0.1:{port}"));
    assert_eq!(requests["tags"]["role"], "edge");
    assert_eq!(
        value_of(&first, "nginx.connections.active"),
        1,
        "the status request itself"
    );
    assert_eq!(value_of(&first, "collect.up"), 1);
}

/// A real node_exporter scraped: counters lose `_total` and stay cumulative with their labels
/// as tags, one CPU series per core and mode, summaries stay summaries.
#[test]
fn node_exporter_is_scraped_into_tlm_kinds() {
    let port = free_port();
    let exporter = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-node-exporter (apt-get install prometheus-node-exporter)");
    let _exporter = Started(exporter);
    wait_http(port, "/metrics");
    let (ms, stderr) = collect(&[
        "prometheus",
        &format!("http://127.0.0.1:{port}/metrics"),
        "--count",
        "1",
    ]);
    assert!(!stderr.contains("event=bad_line"), "{stderr}");
    let cpu: Vec<&Value> = ms
        .iter()
        .filter(|m| m["name"] == "node_cpu_seconds")
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let idle = cpu.iter().filter(|m| m["tags"]["mode"] == "idle").count();
    assert_eq!(idle, cores, "one idle series per core");
    assert!(cpu
        .iter()
        .all(|m| m["kind"] == "counter" && m["temporality"] == "cumulative"));
    assert!(cpu
        .iter()
        .all(|m| m["tags"]["instance"] == format!("127.0.0.1:{port}")));
    let gc = ms
        .iter()
        .find(|m| m["name"] == "go_gc_duration_seconds")
        .expect("a summary");
    assert_eq!(gc["kind"], "summary");
    assert!(
        gc["quantiles"].as_array().is_some_and(|q| q.len() == 5),
        "{gc}"
    );
    let load = ms
        .iter()
        .find(|m| m["name"] == "node_load1")
        .expect("node_load1");
    assert_eq!(load["kind"], "gauge");
    assert_eq!(value_of(&ms, "collect.up"), 1);
}

/// Plugins in each format; a failing or hanging plugin reports collect.up 0 and the
/// schedule goes on; its stderr is logged.
#[test]
fn exec_plugins_in_each_format_and_their_failures() {
    let (ms, _) = collect(&[
        "exec",
        "--count",
        "1",
        "--",
        "sh",
        "-c",
        "echo 'q.depth;queue=a 3 1700000000'",
    ]);
    assert_eq!(ms[0]["name"], "q.depth");
    assert_eq!(ms[0]["tags"]["queue"], "a");
    assert_eq!(ms[0]["ts"], 1_700_000_000_000_000_000u64);
    let (ms, _) = collect(&[
        "exec",
        "--count",
        "1",
        "--",
        "sh",
        "-c",
        "echo 'ups,unit=1 charge=97i,load=0.25'",
    ]);
    let names: Vec<&str> = ms.iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "ups.charge",
            "ups.load",
            "collect.up",
            "collect.duration_seconds"
        ]
    );
    let (ms, _) = collect(&[
        "exec",
        "--count",
        "1",
        "--input-format",
        "ndjson",
        "--",
        "sh",
        "-c",
        r#"echo '{"name":"n","kind":"counter","temporality":"delta","value":18446744073709551615}'"#,
    ]);
    assert_eq!(ms[0]["value"].as_u64(), Some(u64::MAX));

    let (ms, stderr) = collect(&[
        "exec",
        "--count",
        "2",
        "--interval",
        "100ms",
        "--",
        "sh",
        "-c",
        "echo oops >&2; exit 3",
    ]);
    let ups: Vec<u64> = ms
        .iter()
        .filter(|m| m["name"] == "collect.up")
        .filter_map(|m| m["value"].as_u64())
        .collect();
    assert_eq!(ups, [0, 0], "two collections, both reported down");
    assert!(
        stderr.contains("event=plugin_stderr") && stderr.contains("line=oops"),
        "{stderr}"
    );
    assert!(
        stderr.contains("event=collect_failed") && stderr.contains("exit status: 3"),
        "{stderr}"
    );

    let started = Instant::now();
    let (ms, stderr) = collect(&[
        "exec",
        "--count",
        "1",
        "--timeout",
        "300ms",
        "--",
        "sh",
        "-c",
        "sleep 30",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the plugin and its child were killed"
    );
    assert_eq!(value_of(&ms, "collect.up"), 0);
    assert!(stderr.contains("timeout"), "{stderr}");
}

/// A JSON status page served by nginx: numbers picked by path, exact; a missing path is
/// logged and the others kept.
#[test]
fn http_json_fields_from_a_real_server() {
    let body = r#"{\"queue\":{\"depth\":5},\"pool\":{\"workers\":[{\"busy\":2},{\"busy\":7}]},\"a.b\":18446744073709551615}"#;
    let (_dir, _nginx, port) = start_nginx(&format!(
        "location = /status.json {{ default_type application/json; return 200 '{body}'; }}"
    ));
    let url = format!("http://127.0.0.1:{port}/status.json");
    let (ms, stderr) = collect(&[
        "http",
        &url,
        "--count",
        "1",
        "--field",
        "q=queue.depth",
        "--field",
        "busy=pool.workers[1].busy",
        "--field",
        r#"big=["a.b"]"#,
        "--field",
        "gone=queue.missing",
    ]);
    assert_eq!(value_of(&ms, "q"), 5);
    assert_eq!(value_of(&ms, "busy"), 7);
    assert_eq!(value_of(&ms, "big"), u64::MAX);
    assert!(ms.iter().all(|m| m["name"] != "gone"));
    assert!(stderr.contains("event=field_failed"), "{stderr}");
    assert_eq!(value_of(&ms, "collect.up"), 1);
}

/// tail across rotation by rename and by truncation: every matching line counted once.
#[test]
fn tail_follows_rename_and_truncation() {
    let dir = TempDir::new("tail");
    let log = dir.0.join("app.log");
    std::fs::write(&log, "old line before the start ms=1\n").expect("log");
    let mut child = Command::new(bin("tlm-collect"))
        .args([
            "tail",
            &log.display().to_string(),
            "--interval",
            "200ms",
            "--count",
            "0",
            "--match",
            r"ms=(?P<ms>\d+)",
            "--counter",
            "lines",
            "--observe",
            "latency=ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tlm-collect tail");
    let append = |text: &str| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open");
        f.write_all(text.as_bytes()).expect("append");
    };
    // Each step waits until the collector has counted the lines before it, so a slow
    // machine cannot make a rotation or truncation overtake an unread line.
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().expect("stdout");
    let sink = out.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let counted = || -> u64 {
        let text = out.lock().expect("lock").clone();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["name"] == "lines")
            .filter_map(|m| m["value"].as_u64())
            .sum()
    };
    let wait_for = |n: u64| {
        let start = Instant::now();
        while counted() < n {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "counted {} of {n}",
                counted()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    std::thread::sleep(Duration::from_millis(400));
    append("a ms=10\nb ms=20\n");
    wait_for(2);
    std::fs::rename(&log, dir.0.join("app.log.1")).expect("rotate");
    append("c ms=30\n");
    wait_for(3);
    std::fs::write(&log, "").expect("truncate");
    append("d ms=40\npartial ms=5");
    wait_for(4);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(status.success());
    reader.join().expect("reader");
    let stdout = out.lock().expect("lock").clone();
    let ms: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let lines: u64 = ms
        .iter()
        .filter(|m| m["name"] == "lines")
        .filter_map(|m| m["value"].as_u64())
        .sum();
    assert_eq!(
        lines, 4,
        "a, b, c, d: not the line before the start, not the partial one"
    );
    let mut seen: Vec<f64> = ms
        .iter()
        .filter(|m| m["name"] == "latency")
        .flat_map(|m| m["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_f64())
        .collect();
    seen.sort_by(f64::total_cmp);
    assert_eq!(seen, [10.0, 20.0, 30.0, 40.0]);
}

/// statsd lines are a plugin format too; a persistent plugin answers one newline per
/// collection, and the same program keeps its state across collections.
#[test]
fn exec_statsd_and_a_persistent_plugin() {
    let (ms, _) = collect(&[
        "exec",
        "--count",
        "1",
        "--",
        "sh",
        "-c",
        "echo 'jobs.done:3|c|@0.5'; echo 'queue.depth:7|g'; echo 'job.ms:12|ms|#env:ci'",
    ]);
    let kinds: Vec<(&str, &str)> = ms
        .iter()
        .take(3)
        .map(|m| (m["name"].as_str().unwrap(), m["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("jobs.done", "counter"),
            ("queue.depth", "gauge"),
            ("job.ms", "distribution")
        ]
    );
    assert_eq!(ms[0]["value"].as_f64(), Some(6.0), "3 sampled at 0.5");
    assert_eq!(ms[2]["tags"]["env"], "ci");

    let (ms, stderr) = collect(&[
        "exec",
        "--persistent",
        "--signal",
        "stdin",
        "--count",
        "3",
        "--interval",
        "200ms",
        "--",
        "sh",
        "-c",
        "echo started >&2; n=0; while read x; do n=$((n+1)); echo \"polls:$n|g\"; done",
    ]);
    let polls: Vec<f64> = ms
        .iter()
        .filter(|m| m["name"] == "polls")
        .filter_map(|m| m["value"].as_f64())
        .collect();
    assert_eq!(
        polls,
        [1.0, 2.0, 3.0],
        "one answer per collection, one process"
    );
    assert_eq!(stderr.matches("line=started").count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("event=plugin_started").count(),
        1,
        "{stderr}"
    );
}

/// One task file: a real nginx, a plugin, a broken plugin and the host, at their own
/// intervals. The broken source reports itself down and the others are unaffected.
#[test]
fn a_task_runs_isolated_sources_at_their_own_intervals() {
    let (dir, _nginx, port) = start_nginx("");
    let task = dir.0.join("task.toml");
    std::fs::write(
        &task,
        format!(
            r#"
interval = "200ms"
tag = {{ dc = "lab" }}

[[source]]
type = "nginx"
url = "http://127.0.0.1:{port}/nginx_status"
count = 2

[[source]]
type = "exec"
name = "queue"
interval = "100ms"
count = 4
command = "echo 'queue.depth 5'"

[[source]]
type = "exec"
name = "broken"
count = 2
timeout = "300ms"
command = ["sh", "-c", "sleep 10"]

[[source]]
type = "system"
count = 1
"#
        ),
    )
    .expect("task file");
    let started = Instant::now();
    let (ms, stderr) = collect(&["task", &task.display().to_string()]);
    assert!(started.elapsed() < Duration::from_secs(8), "{stderr}");
    let ups = |source: &str| -> Vec<u64> {
        ms.iter()
            .filter(|m| m["name"] == "collect.up" && m["tags"]["source"] == source)
            .filter_map(|m| m["value"].as_u64())
            .collect()
    };
    assert_eq!(ups("nginx"), [1, 1]);
    assert_eq!(ups("queue"), [1, 1, 1, 1]);
    assert_eq!(ups("broken"), [0, 0]);
    assert_eq!(ups("system"), [1]);
    let depths = ms.iter().filter(|m| m["name"] == "queue.depth").count();
    assert_eq!(depths, 4);
    assert!(ms.iter().any(|m| m["name"] == "nginx.requests"));
    assert!(ms.iter().any(|m| m["name"] == "system.load.1m"));
    assert!(
        ms.iter().all(|m| m["tags"]["dc"] == "lab"),
        "the task's tag"
    );
    assert!(stderr.contains("source=broken"), "{stderr}");

    std::fs::write(&task, "[[source]]\ntype = \"nginx\"\nmount = \"/\"\n").expect("task");
    let out = Command::new(bin("tlm-collect"))
        .args(["task", &task.display().to_string()])
        .output()
        .expect("tlm-collect");
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out.stderr).contains("--mount"),
        "{}",
        text(&out.stderr)
    );
}

/// SIGTERM ends a task after its sources' current collections, exit 0.
#[test]
fn a_task_ends_on_sigterm() {
    let dir = TempDir::new("task-term");
    let task = dir.0.join("task.toml");
    std::fs::write(
        &task,
        "interval = \"100ms\"\n[[source]]\ntype = \"exec\"\ncommand = \"echo a.b 1\"\n[[source]]\ntype = \"system\"\n",
    )
    .expect("task");
    let mut child = Command::new(bin("tlm-collect"))
        .args(["task", &task.display().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tlm-collect");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).expect("read");
        out
    });
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill(2) on the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    let status = child.wait().expect("wait");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    let out = reader.join().expect("reader");
    assert!(
        out.lines().filter(|l| l.contains("\"a.b\"")).count() >= 3,
        "{out}"
    );
    assert!(out.ends_with('\n'), "whole lines only");
}
