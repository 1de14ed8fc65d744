//! `tlm-statsd` end to end: bad input (noise, a 64 KiB datagram, names that are not UTF-8,
//! bad lines by reason, overlong TCP lines, `--max-series`) and signed datagrams. The
//! harness is in `statsd.rs`.

use super::harness::text;
use super::statsd::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Signed datagrams (Brubeck statsd-secure), sent by the reference sender in ../shared.

const KEY: &str = "tlm-test-key";

fn secure_send(port: u16, payload: &str, extra: &[&str]) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/statsd-bench/secure-send.py");
    assert!(
        script.exists(),
        "{} is missing: the signed-packet test needs shared/ beside the repo",
        script.display()
    );
    let out = Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .arg(KEY)
        .arg(payload)
        .args(extra)
        .output()
        .expect("python3 secure-send.py");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn signed_datagrams_are_accepted_or_rejected_by_reason() {
    let dir = TempDir::new("secure");
    let key = dir.0.join("key");
    std::fs::write(&key, KEY).expect("write the key");
    let key = key.to_str().expect("utf-8 path");
    let d = Daemon::start(&[
        "--secure-listen",
        "udp://127.0.0.1:0",
        "--hmac-key-file",
        key,
        "--max-drift",
        "3s",
        "--http",
        HTTP,
        "--flush",
        "1h",
        "--self-metrics",
    ]);
    let to = d.addr("secure+udp");
    let label = format!("secure+udp://{to}");
    let port = to.port();
    secure_send(port, "sec.ok:3|c\nsec.ok:4|c\nsec.t:5|ms", &[]);
    secure_send(port, "sec.ok:10|c", &[]);
    secure_send(port, "sec.rep:1|c", &["--repeat", "3"]);
    secure_send(port, "sec.bad:1|c", &["--bad-mac"]);
    secure_send(port, "sec.old:1|c", &["--ts-offset=-10"]);
    secure_send(port, "sec.future:1|c", &["--ts-offset=10"]);
    udp_send(to, b"sec.short:1|c");
    udp_send(to, &[0u8; 44]);
    udp_send(to, &[7u8; 43]);
    for (reason, n) in [
        ("short", 3),
        ("tampered", 1),
        ("replayed", 2),
        ("future", 1),
        ("delayed", 1),
    ] {
        d.wait_stat(&label, &["rejected", reason], n);
    }
    let l = d.listener_stats(&label);
    let rejected = &l["rejected"];
    let got: Vec<u64> = ["short", "tampered", "replayed", "future", "delayed"]
        .iter()
        .map(|r| num(&rejected[*r]) as u64)
        .collect();
    assert_eq!(
        got,
        [3, 1, 2, 1, 1],
        "short, tampered, replayed, future, delayed: {l}"
    );
    let ms = d.stop().ok();
    assert_eq!(counter(&ms, "sec.ok", &[]), 17.0);
    assert_eq!(counter(&ms, "sec.rep", &[]), 1.0);
    assert_eq!(summary(&ms, "sec.t", &[]), (1.0, 5.0, 5.0, 5.0));
    let sent = names(&ms);
    for refused in ["sec.bad", "sec.old", "sec.future", "sec.short"] {
        assert!(!sent.contains(refused), "{refused} in:\n{}", dump(&ms));
    }
    for (reason, n) in [
        ("short", 3.0),
        ("tampered", 1.0),
        ("replayed", 2.0),
        ("future", 1.0),
        ("delayed", 1.0),
    ] {
        let total: f64 = ms
            .iter()
            .filter(|m| m["name"] == "statsd.signed_rejected" && m["tags"]["reason"] == reason)
            .map(|m| num(&m["value"]))
            .sum();
        assert_eq!(
            total,
            n,
            "statsd.signed_rejected reason={reason}:\n{}",
            dump(&ms)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input.

/// Deterministic pseudo-random bytes (xorshift).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn random_bytes_and_a_64k_datagram() {
    let d = Daemon::udp_with_api(&["--flush", "1h"]);
    let to = d.addr("udp");
    let label = format!("udp://{to}");
    // One line each: no newline and no ':' so each is exactly one `no_value` bad line.
    for seed in 0..20 {
        let mut b = noise(seed + 1, 300);
        b.retain(|&c| c != b'\n' && c != b':' && c != b'\r');
        b.insert(0, b'x');
        udp_send(to, &b);
    }
    // Anything at all: the daemon must survive it.
    for seed in 100..120 {
        udp_send(to, &noise(seed, 1000));
    }
    // A datagram near the UDP maximum: many lines, all counted.
    let mut big = String::new();
    let mut n = 0u64;
    while big.len() < 65_000 {
        big.push_str(&format!("big.k{}:1|c\n", n % 50));
        n += 1;
    }
    big.pop();
    assert!(big.len() <= 65_507);
    udp_send(to, big.as_bytes());
    udp_send(to, b"after.noise:5|c");
    let l = d.wait_stat(&label, &["datagrams"], 42);
    assert_eq!(num(&l["datagrams"]), 42.0, "{l}");
    assert!(
        num(&l["bad_by_reason"]["no_value"]) >= 20.0,
        "the 20 colon-free datagrams are no_value lines: {l}"
    );
    let (status, body) = d.get("/ping");
    assert_eq!((status, body.as_str()), (200, "pong\n"));
    let fin = d.stop();
    let ms = fin.ok();
    let total: f64 = (0..50)
        .map(|k| counter(&ms, &format!("big.k{k}"), &[]))
        .sum();
    assert_eq!(total, n as f64, "lines of the 64 KiB datagram");
    assert_eq!(counter(&ms, "after.noise", &[]), 5.0);
    assert!(fin.summary("bad_lines") >= 20, "{}", fin.stderr);
    assert!(
        fin.stderr.contains("event=bad_line from=127.0.0.1:"),
        "{}",
        fin.stderr
    );
}

#[test]
fn invalid_utf8_names_by_sanitize_mode() {
    let payload: &[u8] = b"na\xffme:1|c\nok.name:2|c";
    // Default (Etsy) sanitizing drops the bytes that are not letters, digits, _ - .
    let d = Daemon::udp_with_api(&["--flush", "1h"]);
    let to = d.addr("udp");
    udp_send(to, payload);
    d.wait_lines(&format!("udp://{to}"), 2);
    let fin = d.stop();
    let ms = fin.ok();
    assert_eq!(counter(&ms, "name", &[]), 1.0, "{}", dump(&ms));
    assert_eq!(counter(&ms, "ok.name", &[]), 2.0);
    assert_eq!(fin.summary("bad_lines"), 0);
    // --sanitize none keeps names as sent, so a name that is not UTF-8 is a bad line.
    let d = Daemon::udp_with_api(&["--flush", "1h", "--sanitize", "none"]);
    let to = d.addr("udp");
    udp_send(to, payload);
    let label = format!("udp://{to}");
    d.wait_lines(&label, 2);
    let l = d.listener_stats(&label);
    assert_eq!(num(&l["bad"]), 1.0, "{l}");
    assert_eq!(num(&l["metrics"]), 1.0, "{l}");
    let fin = d.stop();
    let ms = fin.ok();
    assert_eq!(counter(&ms, "ok.name", &[]), 2.0);
    assert_eq!(
        names(&ms).len(),
        2,
        "ok.name and ok.name.rate only:\n{}",
        dump(&ms)
    );
    assert_eq!(fin.summary("bad_lines"), 1);
}

#[test]
fn max_series_refuses_new_series_beyond_the_limit() {
    let d = Daemon::udp_with_api(&["--flush", "1h", "--max-series", "1000"]);
    let to = d.addr("udp");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut sent = 0u64;
    for chunk in 0..400 {
        let lines: Vec<String> = (0..50)
            .map(|i| format!("ms.n{}:1|c", chunk * 50 + i))
            .collect();
        sock.send_to(lines.join("\n").as_bytes(), to).expect("send");
        sent += 50;
        if chunk % 50 == 49 {
            // Paced so that no datagram is lost to a full socket buffer.
            thread::sleep(Duration::from_millis(5));
        }
    }
    d.wait_lines(&format!("udp://{to}"), sent);
    let (status, _) = d.get("/ping");
    assert_eq!(status, 200, "the daemon keeps running");
    let fin = d.stop();
    let ms = fin.ok();
    let counters: BTreeSet<&str> = ms
        .iter()
        .filter(|m| m["kind"] == "counter")
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    assert_eq!(counters.len(), 1000, "series written");
    let total: f64 = ms
        .iter()
        .filter(|m| m["kind"] == "counter")
        .map(|m| num(&m["value"]))
        .sum();
    assert_eq!(total, 1000.0);
    assert_eq!(fin.summary("refused"), 19_000, "{}", fin.stderr);
    assert!(fin.stderr.contains("refused"), "{}", fin.stderr);
}

/// Each kind of bad line under its own reason in `/stats`, the log and the summary; the good
/// lines beside them still count.
#[test]
fn bad_lines_are_counted_by_reason() {
    let d = Daemon::udp_with_api(&["--flush", "1h", "--self-metrics"]);
    let to = d.addr("udp");
    let label = format!("udp://{to}");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let from = sock.local_addr().expect("address");
    let bad = [
        ("nocolon", "no_value"),
        (":1|c", "empty_name"),
        ("r.type:1|q", "bad_type"),
        ("r.value:x|c", "bad_value"),
        ("r.nan:nan|ms", "bad_value"),
        ("r.rate:1|c|@2", "bad_rate"),
        ("r.rate0:1|c|@0", "bad_rate"),
        ("r.ts:1|c|Tabc", "bad_timestamp"),
    ];
    let mut lines: Vec<&str> = bad.iter().map(|(l, _)| *l).collect();
    lines.push("r.good:3|c");
    sock.send_to(lines.join("\n").as_bytes(), to).expect("send");
    d.wait_lines(&label, lines.len() as u64);
    let l = d.listener_stats(&label);
    let mut want: BTreeMap<&str, f64> = BTreeMap::new();
    for (_, reason) in bad {
        *want.entry(reason).or_default() += 1.0;
    }
    let by = l["bad_by_reason"].as_object().expect("bad_by_reason");
    let got: BTreeMap<&str, f64> = by.iter().map(|(k, v)| (k.as_str(), num(v))).collect();
    assert_eq!(got, want, "{l}");
    assert_eq!(num(&l["bad"]), bad.len() as f64);
    assert_eq!(num(&l["metrics"]), 1.0);
    let fin = d.stop();
    let ms = fin.ok();
    assert_eq!(counter(&ms, "r.good", &[]), 3.0);
    let own: Vec<&Value> = ms
        .iter()
        .filter(|m| m["name"].as_str().is_some_and(|n| n.starts_with("statsd.")))
        .collect();
    let mut self_bad: BTreeMap<&str, f64> = BTreeMap::new();
    for m in &own {
        if m["name"] == "statsd.bad_lines" {
            assert_eq!(m["tags"]["listener"], label.as_str(), "{m}");
            let reason = m["tags"]["reason"].as_str().expect("reason");
            *self_bad.entry(reason).or_default() += num(&m["value"]);
        }
    }
    assert_eq!(self_bad, want, "statsd.bad_lines{{reason}}");
    let lines: f64 = own
        .iter()
        .filter(|m| m["name"] == "statsd.lines")
        .map(|m| num(&m["value"]))
        .sum();
    assert_eq!(lines, (bad.len() + 1) as f64, "statsd.lines");
    let user: BTreeSet<String> = names(&ms)
        .into_iter()
        .filter(|n| !n.starts_with("statsd."))
        .collect();
    assert_eq!(user.len(), 2, "r.good and r.good.rate:\n{}", dump(&ms));
    assert_eq!(fin.summary("bad_lines"), bad.len() as u64);
    let needle = format!("event=bad_line from={from} reason=bad_type");
    assert!(fin.stderr.contains(&needle), "{needle} in:\n{}", fin.stderr);
}

/// A TCP line past the 64 KiB limit is one `too_long` bad line; the connection goes on.
#[test]
fn tcp_overlong_line_is_bad_and_the_connection_goes_on() {
    let d = Daemon::start(&[
        "--listen",
        "tcp://127.0.0.1:0",
        "--http",
        HTTP,
        "--flush",
        "1h",
    ]);
    let to = d.addr("tcp");
    let mut s = TcpStream::connect(to).expect("connect");
    let mut data = b"long.before:1|c\n".to_vec();
    data.extend(std::iter::repeat_n(b'a', 200_000));
    data.extend_from_slice(b":1|c\nlong.after:2|c\n");
    for _ in 0..50_000 {
        data.extend_from_slice(b"long.many:1|c\n");
    }
    s.write_all(&data).expect("write");
    drop(s);
    let label = format!("tcp://{to}");
    d.wait_lines(&label, 50_002);
    let l = d.listener_stats(&label);
    assert_eq!(num(&l["bad_by_reason"]["too_long"]), 1.0, "{l}");
    assert_eq!(num(&l["bad"]), 1.0, "{l}");
    assert_eq!(num(&l["connections"]), 1.0, "{l}");
    let ms = d.stop().ok();
    assert_eq!(counter(&ms, "long.before", &[]), 1.0);
    assert_eq!(counter(&ms, "long.after", &[]), 2.0);
    assert_eq!(counter(&ms, "long.many", &[]), 50_000.0);
}

/// A cardinality explosion: a million distinct names against `--max-series 1000`. Exactly
/// 1000 series are written, every other point is counted as refused, and the ingest thread
/// hands its part over early instead of holding a million series until the flush.
#[test]
fn a_million_names_against_max_series() {
    const NAMES: u64 = 1_000_000;
    let (mut d, mut stdin) = Daemon::start_stdin(&[
        "--stdin",
        "--flush",
        "1h",
        "--max-series",
        "1000",
        "--delete-idle",
    ]);
    let writer = thread::spawn(move || {
        let mut buf = Vec::with_capacity(1 << 20);
        for i in 0..NAMES {
            writeln!(buf, "boom.n{i}:1|c").expect("format");
            if buf.len() > (1 << 20) - 64 {
                stdin.write_all(&buf).expect("write");
                buf.clear();
            }
        }
        stdin.write_all(&buf).expect("write");
    });
    writer.join().expect("writer");
    let fin = d.wait_exit();
    let ms = fin.ok();
    let series: BTreeSet<&str> = ms
        .iter()
        .filter(|m| m["kind"] == "counter")
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    assert_eq!(series.len(), 1000, "series written");
    assert_eq!(fin.summary("refused"), NAMES - 1000);
    assert_eq!(fin.summary("points"), NAMES);
}
