//! The sink harness itself (`sinks.rs`): each backend takes a few points through its own
//! documented input and gives them back exactly through the helpers; a crashed carbon
//! restarts on its ports with its data.

use super::sinks::{self, now_s, unique, Carbon};
use serde_json::{json, Value};
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

fn send_tcp(port: u16, text: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(text.as_bytes()).expect("send");
    s.shutdown(Shutdown::Write).expect("shutdown");
}

/// The PromQL answer as sorted (labels, value) pairs.
fn vector(v: &Value) -> Vec<(Value, String)> {
    let mut out: Vec<(Value, String)> = v["data"]["result"]
        .as_array()
        .expect("result")
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().expect("value").to_string(),
            )
        })
        .collect();
    out.sort_by_key(|(m, _)| m.to_string());
    out
}

#[test]
fn carbon_plaintext_points_and_tagged_names() {
    let c = sinks::carbon();
    let p = unique("smoke");
    let t = now_s();
    send_tcp(
        c.plaintext_port(),
        &format!(
            "{p}.a.b 1.5 {}\n{p}.a.b 2.25 {}\n{p}.t;z=1;k=v 7 {}\n",
            t - 3,
            t - 2,
            t - 1
        ),
    );
    let from = t - 60;
    let got = c.wait_points(&format!("{p}.a.b"), from, 2, Duration::from_secs(8));
    assert_eq!(got, vec![(t - 3, 1.5), (t - 2, 2.25)]);
    assert!(c
        .whisper_file(&format!("{p}.a.b"))
        .ends_with(format!("whisper/{p}/a/b.wsp")));
    // The tag order does not matter: carbon normalizes before hashing.
    let tagged = c.wait_points(&format!("{p}.t;k=v;z=1"), from, 1, Duration::from_secs(8));
    assert_eq!(tagged, vec![(t - 1, 7.0)]);
    assert!(c
        .whisper_file(&format!("{p}.t;k=v"))
        .to_string_lossy()
        .contains("/whisper/_tagged/"));
    assert_ne!(c.pickle_port(), c.plaintext_port());
}

#[test]
fn influx_line_protocol_round_trip() {
    let i = sinks::influx();
    let db = unique("smoke");
    i.create_db(&db);
    let t = now_s();
    assert_eq!(i.write(&db, "s", "nodb value=1 1"), 204);
    assert_eq!(i.write(&format!("{db}_missing"), "s", "x value=1 1"), 404);
    let lines = format!(
        "cpu,host=h1 value=0.5 {}\ncpu,host=h2 value=2.75 {t}\n",
        t - 1
    );
    let (code, body) = sinks::curl(&[
        "-XPOST",
        &format!("{}/write?db={db}&precision=s", i.url()),
        "--data-binary",
        &lines,
    ]);
    assert_eq!(code, 204, "{body}");
    let rows = i.rows(&db, "SELECT host, value FROM cpu ORDER BY time");
    let ns = |s: i64| json!(s as i128 * 1_000_000_000);
    assert_eq!(
        rows,
        vec![json!([ns(t - 1), "h1", 0.5]), json!([ns(t), "h2", 2.75])]
    );
    assert_ne!(i.opentsdb_port(), i.http_port());
}

#[test]
fn prometheus_remote_write_round_trip() {
    let p = sinks::prometheus();
    let out = Command::new("python3")
        .arg(sinks::scripts().join("prom_remote_write.py"))
        .arg(p.http_port().to_string())
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "status 204");
    // The script writes tlm_rw_test{host="h1"|"h2"}: 1.5*h two seconds ago, 2.5*h now.
    let last = vector(&p.query("tlm_rw_test", None));
    assert_eq!(
        last,
        vec![
            (
                json!({"__name__": "tlm_rw_test", "host": "h1"}),
                "2.5".into()
            ),
            (json!({"__name__": "tlm_rw_test", "host": "h2"}), "5".into()),
        ]
    );
    let both = p.query("count_over_time(tlm_rw_test[1m])", None);
    assert_eq!(
        vector(&both)
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>(),
        ["2", "2"]
    );
    assert_eq!(
        p.series("tlm_rw_test")["data"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn prometheus_scrapes_a_private_pushgateway() {
    let p = sinks::Prom::start_private(None, true);
    let pgw = p.pushgateway_port().expect("pushgateway");
    let name = unique("smoke");
    let (code, body) = sinks::curl(&[
        "--data-binary",
        &format!("{name}{{host=\"h1\"}} 42\n"),
        &format!("http://127.0.0.1:{pgw}/metrics/job/tlm/instance/i1"),
    ]);
    assert_eq!(code, 200, "{body}");
    let t0 = Instant::now();
    assert!(
        p.wait_targets_up(Duration::from_secs(8)),
        "pushgateway not scraped"
    );
    eprintln!("first scrape after {:.2?}", t0.elapsed());
    loop {
        let got = vector(&p.query(&name, None));
        if !got.is_empty() {
            assert_eq!(
                got,
                vec![(
                    json!({"__name__": name, "host": "h1", "job": "tlm", "instance": "i1"}),
                    "42".into()
                )]
            );
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(8), "not scraped");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn victoria_influx_write_round_trip() {
    let v = sinks::victoria();
    let m = unique("smoke");
    let t = now_s();
    let lines = format!(
        "{m},host=h1 value=0.5 {}\n{m},host=h2 value=2.75 {t}\n",
        t - 1
    );
    let (code, body) = sinks::curl(&[
        "-XPOST",
        &format!("{}/write?precision=s", v.url()),
        "--data-binary",
        &lines,
    ]);
    assert_eq!(code, 204, "{body}");
    v.flush();
    let name = format!("{m}_value");
    assert_eq!(
        vector(&v.query(&name)),
        vec![
            (json!({"__name__": name, "host": "h1"}), "0.5".into()),
            (json!({"__name__": name, "host": "h2"}), "2.75".into()),
        ]
    );
    let raw = v.export(&name);
    assert_eq!(raw.len(), 2);
    assert_eq!(raw[0]["values"], json!([0.5]));
    assert_eq!(raw[0]["timestamps"], json!([(t - 1) * 1000]));
    assert_ne!(v.graphite_port(), v.opentsdb_port());
}

#[test]
fn carbon_kill_hard_then_restart_keeps_data_and_ports() {
    let mut c = Carbon::start_private();
    let ports = c.ports.clone();
    let p = unique("crash");
    let t = now_s();
    send_tcp(
        c.plaintext_port(),
        &format!("{p}.x 1 {}\n{p}.x 2 {}\n", t - 4, t - 3),
    );
    let metric = format!("{p}.x");
    assert_eq!(
        c.wait_points(&metric, t - 60, 2, Duration::from_secs(8)),
        vec![(t - 4, 1.0), (t - 3, 2.0)]
    );
    let old = c.pids.clone();
    c.kill_hard();
    assert!(c.pids.is_empty());
    for pid in &old {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} not reaped"
        );
    }
    assert!(TcpStream::connect(("127.0.0.1", c.plaintext_port())).is_err());
    c.restart();
    assert_eq!(c.ports, ports);
    assert_ne!(c.pids, old);
    send_tcp(c.plaintext_port(), &format!("{p}.x 3 {}\n", t - 2));
    assert_eq!(
        c.wait_points(&metric, t - 60, 3, Duration::from_secs(8)),
        vec![(t - 4, 1.0), (t - 3, 2.0), (t - 2, 3.0)]
    );
}
