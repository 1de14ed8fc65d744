//! `tlm-statsd` end to end: listeners (IPv6, unix datagram, stdin, concurrent TCP,
//! `--workers`), the HTTP API and the SIGUSR2 dump. The harness is in `statsd.rs`.

use super::statsd::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Listeners.

#[test]
fn ipv6_udp_listener() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("NOTE: ::1 is unavailable here; the IPv6 listener test did not run");
        return;
    }
    let d = Daemon::start(&[
        "--listen",
        "udp://[::1]:0",
        "--listen",
        "tcp://[::1]:0",
        "--http",
        HTTP,
        "--flush",
        "1h",
    ]);
    let to = d.addr("udp");
    assert!(to.is_ipv6(), "{to}");
    udp_send(to, b"v6.c:4|c\nv6.c:5|c");
    udp_send(to, b"v6.g:-2.5|g");
    let tcp = d.addr("tcp");
    let mut s = TcpStream::connect(tcp).expect("connect over IPv6");
    s.write_all(b"v6.c:10|c\n").expect("write");
    drop(s);
    d.wait_lines(&format!("udp://{to}"), 3);
    d.wait_lines(&format!("tcp://{tcp}"), 1);
    let ms = d.stop().ok();
    assert_eq!(counter(&ms, "v6.c", &[]), 19.0);
    assert_eq!(gauge(&ms, "v6.g", &[]), -2.5);
}

#[test]
fn unix_datagram_listener() {
    use std::os::unix::net::UnixDatagram;
    let dir = TempDir::new("unix");
    let path = dir.0.join("statsd.sock");
    let url = format!("unix://{}", path.display());
    let mut d = Daemon::start(&["--listen", &url, "--http", HTTP, "--flush", "1h"]);
    let sock = UnixDatagram::unbound().expect("unix socket");
    for i in 1..=10 {
        sock.send_to(format!("ux.c:{i}|c\nux.t:{i}|ms").as_bytes(), &path)
            .expect("send to the unix socket");
    }
    d.wait_lines(&url, 20);
    // SIGINT flushes and exits 0 as SIGTERM does.
    d.signal(libc::SIGINT);
    let ms = d.wait_exit().ok();
    assert_eq!(counter(&ms, "ux.c", &[]), 55.0);
    assert_eq!(summary(&ms, "ux.t", &[]), (10.0, 55.0, 1.0, 10.0));
}

#[test]
fn stdin_end_of_input_flushes_and_exits() {
    let (mut d, mut stdin) = Daemon::start_stdin(&["--stdin", "--flush", "1h"]);
    let mut input = String::new();
    for i in 0..1000 {
        input.push_str(&format!("in.c:{}|c\n", i % 3));
    }
    input.push_str("in.g:5|g\nin.g:+1|g\nin.s:x|s\nin.s:y|s\nnot a line\nin.last:1|c");
    stdin.write_all(input.as_bytes()).expect("write");
    drop(stdin);
    let fin = d.wait_exit();
    let ms = fin.ok();
    // 0+1+2 repeating: 333 full cycles (999 lines) and one more 0.
    assert_eq!(counter(&ms, "in.c", &[]), 999.0);
    assert_eq!(gauge(&ms, "in.g", &[]), 6.0);
    assert_eq!(gauge(&ms, "in.s", &[]), 2.0);
    assert_eq!(
        counter(&ms, "in.last", &[]),
        1.0,
        "a last line without newline"
    );
    assert_eq!(fin.summary("bad_lines"), 1);
}

#[test]
fn tcp_concurrent_connections_and_split_lines() {
    let d = Daemon::start(&[
        "--listen",
        "tcp://127.0.0.1:0",
        "--http",
        HTTP,
        "--flush",
        "1h",
    ]);
    let to = d.addr("tcp");
    let conns: Vec<_> = (0..8)
        .map(|c| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(to).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                for i in 0..100 {
                    // Every line in two writes, split inside the value.
                    write!(s, "tcp.c:{}", i % 2).expect("write");
                    s.flush().expect("flush");
                    if i % 25 == 0 {
                        thread::sleep(Duration::from_millis(5));
                    }
                    writeln!(s, "1|c|#conn:c{c}").expect("write");
                }
                write!(s, "tcp.last:{c}|c").expect("no final newline");
            })
        })
        .collect();
    for c in conns {
        c.join().expect("client");
    }
    d.wait_lines(&format!("tcp://{to}"), 8 * 101);
    let ms = d.stop().ok();
    for c in 0..8 {
        // Values 01 and 11: 50 × 1 + 50 × 11.
        let tag = format!("c{c}");
        assert_eq!(counter(&ms, "tcp.c", &[("conn", &tag)]), 600.0);
    }
    assert_eq!(counter(&ms, "tcp.last", &[]), 28.0);
}

// ---------------------------------------------------------------------------------------------
// HTTP API and the dump.

#[test]
fn http_api_ping_stats_metric_funnel_expire() {
    let d = Daemon::udp_with_api(&["--flush", "1h"]);
    let to = d.addr("udp");
    let label = format!("udp://{to}");
    assert_eq!(d.get("/ping"), (200, "pong\n".to_owned()));
    udp_send(to, b"api.c:2|c\napi.c:3|c\napi.bad\napi.exp:4|c\napi.g:7|g");
    udp_send(to, b"api.c:1|c|@0.25");
    d.wait_lines(&label, 6);
    let l = d.listener_stats(&label);
    for (field, want) in [
        ("datagrams", 2.0),
        ("lines", 6.0),
        ("metrics", 5.0),
        ("bad", 1.0),
    ] {
        assert_eq!(num(&l[field]), want, "{field}: {l}");
    }
    assert_eq!(num(&l["bad_by_reason"]["no_value"]), 1.0, "{l}");
    // The open window, before any flush.
    let (status, body) = d.get("/metric/api.c");
    assert_eq!(status, 200, "{body}");
    let m: Value = serde_json::from_str(&body).expect("JSON");
    let open = m["open"].as_array().expect("open");
    let c = open.iter().find(|x| x["name"] == "api.c").expect("api.c");
    assert_eq!(num(&c["value"]), 9.0, "{body}");
    assert_eq!(d.get("/metric/api.none").0, 404);
    let (status, body) = d.get("/metric/api%2Ec");
    assert_eq!(status, 200, "percent-encoded name: {body}");
    assert!(body.contains(r#""name":"api.c""#), "{body}");
    assert_eq!(d.post("/ping", "").0, 405);
    assert_eq!(d.get("/metrics").0, 405);
    assert_eq!(d.get("/expire/api.c").0, 405);
    assert_eq!(d.get("/nope").0, 404);
    // Malformed requests get their status and leave the API serving.
    let big_header = format!("GET /ping HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100_000));
    for (raw, want) in [
        ("\u{1}garbage\r\n\r\n", 400),
        (big_header.as_str(), 431),
        (
            "POST /metrics HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n{}",
            413,
        ),
        ("GET /ping HTTP/9.9\r\n\r\n", 505),
    ] {
        let mut s = TcpStream::connect(d.http.expect("http")).expect("connect");
        s.write_all(raw.as_bytes()).expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut reply = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut reply);
        let status = reply.split(' ').nth(1).unwrap_or_default();
        assert_eq!(status, want.to_string(), "{raw:.40}: {reply:.200}");
    }
    assert_eq!(d.get("/ping"), (200, "pong\n".to_owned()));
    // Funnel agent JSON.
    let (status, body) = d.post(
        "/metrics",
        r#"{"cluster":"c1","metrics":[{"name":"fn.c","kind":"counter","value":"20"},{"name":"fn.t","kind":"timer","value":"20 milliseconds"},{"name":"fn.t","kind":"timer","value":"1.5s"},{"name":"fn.g","kind":"gauge-double","value":2.5},{"name":"fn.x","kind":"nope","value":"1"}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let r: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(num(&r["accepted"]), 4.0, "{body}");
    assert_eq!(r["refused"][0]["index"], 4, "{body}");
    assert_eq!(d.post("/metrics", "not json").0, 400);
    // Expire forgets the open window's value; what comes after counts anew.
    let (status, body) = d.post("/expire/api.exp", "");
    assert_eq!(status, 200, "{body}");
    assert!(num(&serde_json::from_str::<Value>(&body).expect("JSON")["expired"]) >= 1.0);
    assert_eq!(d.post("/expire/api.none", "").0, 404);
    udp_send(to, b"api.exp:6|c\nfn.c:5|c|#cluster:c1");
    d.wait_lines(&label, 8);
    assert_eq!(d.get("/stats").0, 200);
    let ms = d.stop().ok();
    assert_eq!(counter(&ms, "api.c", &[]), 9.0);
    assert_eq!(
        counter(&ms, "api.exp", &[]),
        6.0,
        "only what came after the expire"
    );
    assert_eq!(gauge(&ms, "api.g", &[]), 7.0);
    // The Funnel counter and the statsd line with the same tag are one series.
    assert_eq!(counter(&ms, "fn.c", &[("cluster", "c1")]), 25.0);
    assert_eq!(
        summary(&ms, "fn.t", &[("cluster", "c1")]),
        (2.0, 1520.0, 20.0, 1500.0)
    );
    assert_eq!(gauge(&ms, "fn.g", &[("cluster", "c1")]), 2.5);
}

#[test]
fn sigusr2_dumps_every_known_series() {
    let dir = TempDir::new("dump");
    let file = dir.0.join("series.ndjson");
    let d = Daemon::udp_with_api(&[
        "--flush",
        "1h",
        "--dump-file",
        file.to_str().expect("utf-8 path"),
    ]);
    let to = d.addr("udp");
    udp_send(
        to,
        b"dump.c:1|c\ndump.t:3|ms\ndump.g:2|g\ndump.s:a|s\ndump.tag:1|c|#k:v",
    );
    d.wait_lines(&format!("udp://{to}"), 5);
    d.signal(libc::SIGUSR2);
    let start = Instant::now();
    while !file.exists() {
        assert!(start.elapsed() < DEADLINE, "no dump:\n{}", d.stderr());
        thread::sleep(Duration::from_millis(10));
    }
    let dumped = parse_lines(&std::fs::read_to_string(&file).expect("read the dump"));
    let fin = d.stop();
    let ms = fin.ok();
    assert_eq!(counter(&ms, "dump.c", &[]), 1.0, "SIGUSR2 does not flush");
    let mut got: Vec<(String, String, BTreeMap<String, String>)> = dumped
        .iter()
        .map(|m| {
            (
                m["name"].as_str().expect("name").to_owned(),
                m["kind"].as_str().expect("kind").to_owned(),
                tags_of(m),
            )
        })
        .collect();
    got.sort();
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|(n, k, _)| (n.as_str(), k.as_str()))
        .collect();
    let want_names = ["dump.c", "dump.g", "dump.s", "dump.t", "dump.tag"];
    let dumped_names: Vec<&str> = kinds.iter().map(|(n, _)| *n).collect();
    assert_eq!(dumped_names, want_names, "{kinds:?}");
    let tag = got
        .iter()
        .find(|(n, _, _)| n == "dump.tag")
        .expect("dump.tag");
    assert_eq!(tag.2.get("k").map(String::as_str), Some("v"));
    assert!(fin.stderr.contains("event=dumped"), "{}", fin.stderr);
    assert_eq!(
        log_field(
            fin.stderr
                .lines()
                .find(|l| l.contains("event=dumped"))
                .expect("dumped"),
            "series"
        ),
        Some("5")
    );
}

/// `--workers 4`: four SO_REUSEPORT sockets on one port; no datagram lost or counted twice.
#[test]
fn workers_share_one_port_exactly() {
    let d = Daemon::start(&[
        "--listen",
        "udp://127.0.0.1:0",
        "--workers",
        "4",
        "--http",
        HTTP,
        "--flush",
        "1h",
    ]);
    let to = d.addr("udp");
    // Datagrams from many source ports, so the kernel spreads them over the workers.
    for s in 0..40 {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        for i in 0..50 {
            sock.send_to(format!("wk.c:{}|c\nwk.t:{i}|ms", s + 1).as_bytes(), to)
                .expect("send");
        }
        thread::sleep(Duration::from_millis(1));
    }
    d.wait_lines(&format!("udp://{to}"), 4000);
    let ms = d.stop().ok();
    // 50 × (1 + 2 + … + 40)
    assert_eq!(counter(&ms, "wk.c", &[]), 41_000.0);
    assert_eq!(summary(&ms, "wk.t", &[]), (2000.0, 49_000.0, 0.0, 49.0));
}

/// `ps` shows live throughput in the process title, as Brubeck's proclines do, and the
/// series count as of the last flush.
#[test]
fn process_title_shows_throughput_and_series() {
    let d = Daemon::start(&[
        "--listen",
        "udp://127.0.0.1:0",
        "--flush",
        "1s",
        "--log-level",
        "info",
        "--sanitize",
        "etsy",
    ]);
    let to = d.addr("udp");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let deadline = Instant::now() + DEADLINE;
    loop {
        sock.send_to(b"title.a:1|c\ntitle.b:1|c", to).expect("send");
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", d.pid())).expect("cmdline");
        let title = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let port = format!("[udp:{} ", to.port());
        if title.starts_with("tlm-statsd ") && title.contains(&port) && title.contains("/s]") {
            let rate: f64 = title
                .split(&port)
                .nth(1)
                .and_then(|r| r.split("/s]").next())
                .and_then(|r| r.parse().ok())
                .expect("a rate");
            if rate > 0.0 && title.contains("[series 2]") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "process title: {title:?}");
        thread::sleep(Duration::from_millis(50));
    }
    d.stop();
}

/// `--expire`: names that stop arriving are forgotten and leave the series table, so a
/// daemon whose names keep changing does not grow without bound; live ones stay.
#[test]
fn expired_names_leave_the_series_table() {
    let d = Daemon::udp_with_api(&["--flush", "1s", "--expire", "2s"]);
    let to = d.addr("udp");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for chunk in 0..20 {
        let lines: Vec<String> = (0..50)
            .map(|i| format!("churn.n{}:1|c", chunk * 50 + i))
            .collect();
        sock.send_to(lines.join("\n").as_bytes(), to).expect("send");
    }
    let deadline = Instant::now() + DEADLINE;
    let mut peak = 0;
    loop {
        sock.send_to(b"live.c:1|c", to).expect("send");
        let series = num(&d.stats()["series"]) as u64;
        peak = peak.max(series);
        if peak == 1001 && series == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "series {series} (peak {peak}):\n{}",
            d.stderr()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let fin = d.stop();
    let ms = fin.ok();
    assert!(counter(&ms, "live.c", &[]) > 0.0);
}
