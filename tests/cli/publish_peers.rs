//! `tlm-publish` against real peers, every value read back from the peer and compared
//! exactly: Prometheus remote_write, InfluxDB 2 write API (into VictoriaMetrics), OpenTSDB
//! HTTP and telnet (InfluxDB's and VictoriaMetrics' listeners), a statsd relay into a real
//! `tlm-statsd` (plain and signed), Graphite over UDP (VictoriaMetrics), rotated files, the
//! generic HTTP destination carrying line protocol and Prometheus text, and parallel lanes.

use super::publish::{gauges, table, Done, Publish};
use super::sinks::{self, now_s, unique, Victoria};
use super::statsd::{counter, dump, gauge, num, summary, Daemon, TempDir, HTTP};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

const NS: i64 = 1_000_000_000;
/// A u64 above i64::MAX that a double holds exactly.
const BIG: u64 = 10_000_000_000_000_000_000;

/// One NDJSON line from a JSON object.
fn line(v: Value) -> String {
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// Runs `tlm-publish args` on `input` to the end and returns its outcome.
fn publish(args: &[&str], input: &str) -> Done {
    let mut run = Publish::start(args);
    run.send(input);
    run.finish(Duration::from_secs(20))
}

/// The `event=unsupported` lines of a run.
fn unsupported_lines(done: &Done) -> Vec<&str> {
    done.stderr
        .lines()
        .filter(|l| l.contains("event=unsupported"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Prometheus remote_write.

type Labels = BTreeMap<String, String>;

/// `data.result` of a Prometheus answer as (labels, [(ms, value)]), sorted by labels; an
/// instant vector's single value and a range vector's values alike.
fn prom_result(v: &Value) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let mut out: Vec<_> = v["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let labels: Labels = r["metric"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let points: Vec<Value> = match r["values"].as_array() {
                Some(vs) => vs.clone(),
                None => vec![r["value"].clone()],
            };
            let points = points
                .iter()
                .map(|p| {
                    let t = (p[0].as_f64().expect("time") * 1000.0).round() as i64;
                    let v: f64 = p[1].as_str().expect("value").parse().expect("number");
                    (t, v)
                })
                .collect();
            (labels, points)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Cumulative counters (`x.y` → `x_y_total`), tagged gauges and a cumulative histogram
/// (`_bucket{le}` cumulative, `_sum`, `_count`) arrive in Prometheus with exact values and
/// millisecond timestamps; a delta counter is counted as unsupported, logged and not sent.
#[test]
fn remote_write_into_prometheus() {
    let prom = sinks::prometheus();
    let p = unique("rw");
    // Prometheus refuses samples older than its head block (~1 h): stay recent.
    let t = now_s() - 60;
    let ms = |s: i64| s * 1000;
    let mut input = String::new();
    for (i, v) in [5u64, 12, 30].iter().enumerate() {
        input += &line(json!({"name": format!("{p}.req"), "kind": "counter",
            "temporality": "cumulative", "value": v, "ts": (t - 20 + 10 * i as i64) * NS + 250_000_000,
            "tags": {"route": "/login"}}));
    }
    input += &line(
        json!({"name": format!("{p}.temp"), "kind": "gauge", "value": 1.5,
        "ts": t * NS, "tags": {"host": "h1", "Zone": "eu-1"}}),
    );
    input += &line(
        json!({"name": format!("{p}.temp"), "kind": "gauge", "value": -2.25,
        "ts": t * NS, "tags": {"host": "h2"}}),
    );
    input += &line(json!({"name": format!("{p}.rtt"), "kind": "histogram",
        "temporality": "cumulative", "bounds": [0.1, 1, 10], "counts": [1, 2, 3, 4],
        "count": 10, "sum": 55.5, "ts": t * NS}));
    input += &line(json!({"name": format!("{p}.delta"), "kind": "counter",
        "temporality": "delta", "value": 3, "ts": t * NS}));
    let dest = format!("prometheus://127.0.0.1:{}/api/v1/write", prom.http_port());
    let done = publish(&["--linger", "50ms", &dest], &input);
    done.assert_ok();
    assert_eq!(done.count(&dest, "sent"), 6, "{}", done.stderr);
    assert_eq!(done.count(&dest, "unsupported"), 1, "{}", done.stderr);
    assert_eq!(done.count(&dest, "rejected"), 0, "{}", done.stderr);
    let unsupported = unsupported_lines(&done);
    assert_eq!(unsupported.len(), 1, "{}", done.stderr);
    assert!(
        unsupported[0].contains("delta counters need"),
        "{}",
        unsupported[0]
    );

    // Range selectors give the samples' own timestamps; the last counter sample is at t+0.25.
    let at = Some((t + 1) as f64);
    let range = |q: &str| prom_result(&prom.query(&format!("{q}[1m]"), at));
    assert_eq!(
        range(&format!("{p}_req_total")),
        vec![(
            labels(&[("__name__", &format!("{p}_req_total")), ("route", "/login")]),
            vec![
                (ms(t - 20) + 250, 5.0),
                (ms(t - 10) + 250, 12.0),
                (ms(t) + 250, 30.0)
            ]
        )]
    );
    assert_eq!(
        range(&format!("{p}_temp")),
        vec![
            (
                labels(&[
                    ("Zone", "eu-1"),
                    ("__name__", &format!("{p}_temp")),
                    ("host", "h1")
                ]),
                vec![(ms(t), 1.5)]
            ),
            (
                labels(&[("__name__", &format!("{p}_temp")), ("host", "h2")]),
                vec![(ms(t), -2.25)]
            ),
        ]
    );
    let bucket = format!("{p}_rtt_bucket");
    assert_eq!(
        range(&bucket),
        [("+Inf", 10.0), ("0.1", 1.0), ("1", 3.0), ("10", 6.0)]
            .iter()
            .map(|(le, v)| (
                labels(&[("__name__", &bucket), ("le", le)]),
                vec![(ms(t), *v)]
            ))
            .collect::<Vec<_>>()
    );
    let q = prom_result(&prom.query(&format!("histogram_quantile(0.5, {bucket})"), at));
    // Rank 5 of 10 falls in (1, 10], which holds observations 4 to 6: 1 + 9 * (5-3)/3.
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].1[0].1, 7.0, "{q:?}");
    for (suffix, v) in [("_sum", 55.5), ("_count", 10.0)] {
        let name = format!("{p}_rtt{suffix}");
        assert_eq!(
            range(&name),
            vec![(labels(&[("__name__", &name)]), vec![(ms(t), v)])]
        );
    }
    let delta = prom.series(&format!("{{__name__=~\"{p}_delta.*\"}}"));
    assert_eq!(delta["data"], json!([]), "the delta counter was not sent");
}

// ---------------------------------------------------------------------------------------------
// VictoriaMetrics helpers.

/// Every raw sample of the series matching `matcher`, by their label set (JSON), polled
/// (with a force_flush each time) until `series` series hold `points` samples in all.
fn vm_samples(
    vm: &Victoria,
    matcher: &str,
    series: usize,
    points: usize,
) -> BTreeMap<String, Vec<(i64, f64)>> {
    let t0 = Instant::now();
    loop {
        vm.flush();
        let rows = vm.export(matcher);
        let got: BTreeMap<String, Vec<(i64, f64)>> = rows
            .iter()
            .map(|r| {
                let ts = r["timestamps"].as_array().cloned().unwrap_or_default();
                let vs = r["values"].as_array().cloned().unwrap_or_default();
                let pts = ts
                    .iter()
                    .zip(&vs)
                    .map(|(t, v)| (t.as_i64().expect("ms"), num(v)))
                    .collect();
                (r["metric"].to_string(), pts)
            })
            .collect();
        let n: usize = got.values().map(Vec::len).sum();
        if (got.len() >= series && n >= points) || t0.elapsed() > Duration::from_secs(10) {
            return got;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn vm_key(name: &str, tags: &[(&str, &str)]) -> String {
    let mut m = serde_json::Map::new();
    m.insert("__name__".into(), json!(name));
    for (k, v) in tags {
        m.insert(k.to_string(), json!(v));
    }
    Value::Object(m).to_string()
}

// ---------------------------------------------------------------------------------------------
// InfluxDB 2 write API (VictoriaMetrics).

/// `influx2://` posts to `/api/v2/write` with `Authorization: Token …` from the token file;
/// VictoriaMetrics takes it, ignores org and bucket (no label from either), and names each
/// series `measurement_field`: the split at the last dot shows as `a.b.c` → `a.b_c`, a
/// dotless name gets field `value`, and summaries one series per statistic. Integers and
/// a u64 above i64::MAX (`u` suffix) arrive exact (as doubles).
#[test]
fn influx2_into_victoriametrics() {
    let vm = sinks::victoria();
    let p = unique("iv2");
    let dir = TempDir::new("influx2");
    let token = dir.0.join("token");
    fs::write(&token, "s3cret-token\n").expect("token file");
    let t = now_s() - 120;
    let mut input = String::new();
    input += &line(
        json!({"name": format!("{p}.cpu.load"), "kind": "gauge", "value": 0.5,
        "ts": t * NS, "tags": {"host": "h1", "empty": ""}}),
    );
    input += &line(
        json!({"name": format!("{p}.cpu.load"), "kind": "gauge", "value": 0.75,
        "ts": (t + 1) * NS + 500_000_000, "tags": {"host": "h1", "empty": ""}}),
    );
    input += &line(json!({"name": format!("{p}.req"), "kind": "counter",
        "temporality": "delta", "value": 7, "ts": t * NS}));
    input += &line(json!({"name": p, "kind": "gauge", "value": -3, "ts": t * NS}));
    // Above i64::MAX, so written `10000000000000000000u`. (VictoriaMetrics keeps about 15
    // significant digits: u64::MAX came back as 1.8446744073709548e19.)
    input += &line(json!({"name": format!("{p}.big"), "kind": "counter",
        "temporality": "cumulative", "value": BIG, "ts": t * NS}));
    input += &line(
        json!({"name": format!("{p}.lat"), "kind": "summary", "temporality": "delta",
        "quantiles": [[0.5, 2.5], [0.99, 4.0]], "count": 4, "sum": 10.0, "min": 1.0,
        "max": 4.0, "ts": t * NS}),
    );
    // Raw distributions have no line-protocol form.
    input += &line(json!({"name": format!("{p}.raw"), "kind": "distribution",
        "values": [1.0], "ts": t * NS}));
    let dest = format!(
        "influx2://127.0.0.1:{}?org=o&bucket=b&token-file={}",
        vm.http_port(),
        token.display()
    );
    let label = format!("influx2://127.0.0.1:{}", vm.http_port());
    let done = publish(&["--linger", "50ms", &dest], &input);
    done.assert_ok();
    assert_eq!(done.count(&label, "sent"), 6, "{}", done.stderr);
    assert_eq!(done.count(&label, "unsupported"), 1, "{}", done.stderr);

    let got = vm_samples(vm, &format!("{{__name__=~\"{p}([._].*)?\"}}"), 11, 12);
    let ms = t * 1000;
    let want: BTreeMap<String, Vec<(i64, f64)>> = [
        (
            vm_key(&format!("{p}.cpu_load"), &[("host", "h1")]),
            vec![(ms, 0.5), (ms + 1500, 0.75)],
        ),
        (vm_key(&format!("{p}_req"), &[]), vec![(ms, 7.0)]),
        (vm_key(&format!("{p}_value"), &[]), vec![(ms, -3.0)]),
        (vm_key(&format!("{p}_big"), &[]), vec![(ms, BIG as f64)]),
        (vm_key(&format!("{p}.lat_count"), &[]), vec![(ms, 4.0)]),
        (vm_key(&format!("{p}.lat_sum"), &[]), vec![(ms, 10.0)]),
        (vm_key(&format!("{p}.lat_min"), &[]), vec![(ms, 1.0)]),
        (vm_key(&format!("{p}.lat_max"), &[]), vec![(ms, 4.0)]),
        (vm_key(&format!("{p}.lat_mean"), &[]), vec![(ms, 2.5)]),
        (vm_key(&format!("{p}.lat_p50"), &[]), vec![(ms, 2.5)]),
        (vm_key(&format!("{p}.lat_p99"), &[]), vec![(ms, 4.0)]),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------------------------
// OpenTSDB.

/// The OpenTSDB input of the tests: whole-second and sub-second points (seconds vs ms on the
/// wire), an integer and a float, a name and tag needing cleaning, and one metric without
/// tags (unsupported).
fn opentsdb_input(p: &str, t: i64) -> String {
    let mut s = String::new();
    s += &line(
        json!({"name": format!("{p}.v"), "kind": "gauge", "value": 42,
        "ts": t * NS, "tags": {"host": "h1", "dc": "eu west"}}),
    );
    s += &line(
        json!({"name": format!("{p}.v"), "kind": "gauge", "value": 1.25,
        "ts": (t + 1) * NS + 250_000_000, "tags": {"host": "h1", "dc": "eu west"}}),
    );
    s += &line(
        json!({"name": format!("{p}.v"), "kind": "gauge", "value": -7,
        "ts": t * NS, "tags": {"host": "h2"}}),
    );
    s += &line(
        json!({"name": format!("{p}.c"), "kind": "counter", "temporality": "delta",
        "value": 9, "ts": t * NS, "tags": {"host": "h1"}}),
    );
    s += &line(
        json!({"name": format!("{p}.untagged"), "kind": "gauge", "value": 1,
        "ts": t * NS}),
    );
    s
}

/// Rows of `measurement` in InfluxDB's `opentsdb` database, polled until there are `n`:
/// (time ns, tags, value).
fn influx_otsdb_rows(measurement: &str, n: usize) -> Vec<(i64, String, f64)> {
    let db = sinks::influx();
    let t0 = Instant::now();
    loop {
        let rows = table(db, "opentsdb", &format!("SELECT * FROM \"{measurement}\""));
        if rows.len() >= n || t0.elapsed() > Duration::from_secs(10) {
            return rows
                .iter()
                .map(|r| {
                    let tags = ["dc", "host"]
                        .iter()
                        .filter_map(|k| {
                            r.get(*k)
                                .and_then(Value::as_str)
                                .map(|v| format!("{k}={v}"))
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    (r["time"].as_i64().expect("time"), tags, num(&r["value"]))
                })
                .collect();
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn check_otsdb_summary(done: &Done, label: &str) {
    done.assert_ok();
    assert_eq!(done.count(label, "sent"), 4, "{}", done.stderr);
    assert_eq!(done.count(label, "unsupported"), 1, "{}", done.stderr);
    let u = unsupported_lines(done);
    assert!(
        u.len() == 1 && u[0].contains("at least one tag"),
        "{}",
        done.stderr
    );
}

/// `opentsdb://` (HTTP `/api/put` JSON) and `opentsdb+telnet://` into InfluxDB's OpenTSDB
/// listener, which serves both on one port: exact values, second and millisecond
/// timestamps, cleaned names and tags (`eu west` → `eu_west`).
#[test]
fn opentsdb_http_and_telnet_into_influxdb() {
    let db = sinks::influx();
    // The listener creates its database on the first telnet batch only; an HTTP put before
    // that gets 500 "database not found". Creating it is a no-op when it exists.
    db.create_db("opentsdb");
    let t = now_s() - 200;
    for scheme in ["opentsdb", "opentsdb+telnet"] {
        let p = unique("otsdb");
        let dest = format!("{scheme}://127.0.0.1:{}", db.opentsdb_port());
        let done = publish(&["--linger", "50ms", &dest], &opentsdb_input(&p, t));
        check_otsdb_summary(&done, &dest);
        let mut v = influx_otsdb_rows(&format!("{p}.v"), 3);
        v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        // The sub-second point goes out as 13-digit milliseconds (t+1)*1000+250. InfluxDB
        // 1.6's OpenTSDB listener (telnet and HTTP alike) turns a 13-digit time into
        // `time.Unix(ms/1000, (ms%1000)*1000)`: 250 ms become 250 µs. Its bug, not ours:
        // the stored value shows the millisecond stamp arrived exactly.
        assert_eq!(
            v,
            vec![
                (t * NS, "dc=eu_west,host=h1".into(), 42.0),
                (t * NS, "host=h2".into(), -7.0),
                ((t + 1) * NS + 250_000, "dc=eu_west,host=h1".into(), 1.25),
            ],
            "{scheme}"
        );
        let c = influx_otsdb_rows(&format!("{p}.c"), 1);
        assert_eq!(c, vec![(t * NS, "host=h1".into(), 9.0)], "{scheme}");
        let none = table(db, "opentsdb", &format!("SELECT * FROM \"{p}.untagged\""));
        assert!(none.is_empty(), "{scheme}: {none:?}");
    }
}

/// The same into VictoriaMetrics' OpenTSDB listeners: HTTP `/api/put` on its own port,
/// telnet `put` lines on another.
#[test]
fn opentsdb_http_and_telnet_into_victoriametrics() {
    let vm = sinks::victoria();
    let t = now_s() - 200;
    for (scheme, port) in [
        ("opentsdb", vm.port("opentsdb_http")),
        ("opentsdb+telnet", vm.opentsdb_port()),
    ] {
        let p = unique("votsdb");
        let dest = format!("{scheme}://127.0.0.1:{port}");
        let done = publish(&["--linger", "50ms", &dest], &opentsdb_input(&p, t));
        check_otsdb_summary(&done, &dest);
        // VictoriaMetrics 1.79 reads every telnet `put` time as seconds (and multiplies by
        // 1000), so the millisecond stamp of the sub-second point is refused as "too big
        // timestamp" (vm.log); its HTTP /api/put takes milliseconds.
        let telnet = scheme == "opentsdb+telnet";
        let n = if telnet { 3 } else { 4 };
        let got = vm_samples(vm, &format!("{{__name__=~\"{p}[.].*\"}}"), 3, n);
        let ms = t * 1000;
        let h1 = if telnet {
            vec![(ms, 42.0)]
        } else {
            vec![(ms, 42.0), (ms + 1250, 1.25)]
        };
        let want: BTreeMap<String, Vec<(i64, f64)>> = [
            (
                vm_key(&format!("{p}.v"), &[("dc", "eu_west"), ("host", "h1")]),
                h1,
            ),
            (
                vm_key(&format!("{p}.v"), &[("host", "h2")]),
                vec![(ms, -7.0)],
            ),
            (
                vm_key(&format!("{p}.c"), &[("host", "h1")]),
                vec![(ms, 9.0)],
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want, "{scheme}");
    }
}

// ---------------------------------------------------------------------------------------------
// statsd relay into tlm-statsd.

/// NDJSON for the relay tests and the number of statsd lines it becomes.
fn statsd_input(p: &str) -> (String, u64) {
    let ts = now_s() * NS;
    let mut s = String::new();
    let mut add = |v: Value| s += &line(v);
    for v in [json!(3), json!(4), json!(5.5)] {
        add(
            json!({"name": format!("{p}.hits"), "kind": "counter", "temporality": "delta",
            "value": v, "ts": ts, "tags": {"env": "prod"}}),
        );
    }
    add(
        json!({"name": format!("{p}.hits"), "kind": "counter", "temporality": "delta",
        "value": 2, "ts": ts}),
    );
    // Absolute gauges: the last one wins; a negative one is `0|g` then `-N|g`.
    for v in [10, 7] {
        add(json!({"name": format!("{p}.temp"), "kind": "gauge", "value": v, "ts": ts}));
    }
    for v in [json!(3), json!(-5), json!(-2.5)] {
        add(json!({"name": format!("{p}.neg"), "kind": "gauge", "value": v, "ts": ts}));
    }
    // A statsd `+N|g` change on top of an absolute value.
    add(json!({"name": format!("{p}.level"), "kind": "gauge", "value": 10, "ts": ts}));
    add(
        json!({"name": format!("{p}.level"), "kind": "gauge", "temporality": "delta",
        "value": 5, "ts": ts}),
    );
    add(
        json!({"name": format!("{p}.level"), "kind": "gauge", "temporality": "delta",
        "value": -1, "ts": ts}),
    );
    // A cumulative counter travels as a gauge.
    add(
        json!({"name": format!("{p}.total"), "kind": "counter", "temporality": "cumulative",
        "value": 100, "ts": ts}),
    );
    add(
        json!({"name": format!("{p}.lat"), "kind": "distribution", "unit": "ms",
        "values": [10.0, 20.0, 30.0], "ts": ts}),
    );
    // Each value at rate 0.5 stands for two.
    add(
        json!({"name": format!("{p}.lat"), "kind": "distribution", "unit": "ms",
        "values": [40.0], "sample_rate": 0.5, "ts": ts}),
    );
    add(json!({"name": format!("{p}.users"), "kind": "set", "values": ["a", "b"], "ts": ts}));
    add(json!({"name": format!("{p}.users"), "kind": "set", "values": ["b", "c", 7], "ts": ts}));
    // Aggregates have no statsd form.
    add(
        json!({"name": format!("{p}.agg"), "kind": "summary", "temporality": "delta",
        "count": 1, "ts": ts}),
    );
    // hits 4, temp 2, neg 1 + 2 + 2, level 3, total 1, lat 4, users 5.
    (s, 4 + 2 + 5 + 3 + 1 + 4 + 5)
}

fn check_statsd_output(ms: &[Value], p: &str) {
    assert_eq!(counter(ms, &format!("{p}.hits"), &[("env", "prod")]), 12.5);
    assert_eq!(counter(ms, &format!("{p}.hits"), &[]), 2.0);
    assert_eq!(gauge(ms, &format!("{p}.temp"), &[]), 7.0);
    assert_eq!(gauge(ms, &format!("{p}.neg"), &[]), -2.5);
    assert_eq!(gauge(ms, &format!("{p}.level"), &[]), 14.0);
    assert_eq!(gauge(ms, &format!("{p}.total"), &[]), 100.0);
    assert_eq!(
        summary(ms, &format!("{p}.lat"), &[]),
        (5.0, 140.0, 10.0, 40.0),
        "{}",
        dump(ms)
    );
    assert_eq!(gauge(ms, &format!("{p}.users"), &[]), 4.0);
    assert!(
        !ms.iter().any(|m| m["name"] == format!("{p}.agg")),
        "{}",
        dump(ms)
    );
}

/// Asserts a listener saw `lines` lines, none bad, no datagram rejected.
fn check_listener(d: &Daemon, label: &str, lines: u64) {
    d.wait_lines(label, lines);
    let l = d.listener_stats(label);
    assert_eq!(num(&l["bad"]), 0.0, "{l}");
    for (reason, n) in l["rejected"].as_object().expect("rejected") {
        assert_eq!(num(n), 0.0, "rejected {reason}: {l}");
    }
}

/// `statsd://` into a real `tlm-statsd`: delta counters (tagged and not), absolute gauges
/// (negative ones via `0|g`), gauge changes, a cumulative counter as a gauge, raw
/// distributions (with a sample rate) and sets come out of its flush with exact sums, last
/// values, timer counts and set sizes; a summary is unsupported and not sent.
#[test]
fn statsd_relay_into_tlm_statsd() {
    let d = Daemon::udp_with_api(&["--flush", "1h"]);
    let to = d.addr("udp");
    let p = unique("relay");
    let (input, lines) = statsd_input(&p);
    let dest = format!("statsd://{to}");
    let done = publish(&["--linger", "50ms", &dest], &input);
    done.assert_ok();
    assert_eq!(done.count(&dest, "sent"), 17, "{}", done.stderr);
    assert_eq!(done.count(&dest, "unsupported"), 1, "{}", done.stderr);
    check_listener(&d, &format!("udp://{to}"), lines);
    let fin = d.stop();
    let ms = fin.ok();
    assert_eq!(fin.summary("bad_lines"), 0, "{}", fin.stderr);
    check_statsd_output(&ms, &p);
}

/// The same, signed: `--hmac-key-file` on both sides, tlm-statsd listening with
/// `--secure-listen`; every datagram verifies (none short, tampered, replayed or delayed).
/// A second run signs with the destination's `?hmac-key-file=` option instead; a third, with
/// the wrong key, has every datagram refused as tampered.
#[test]
fn signed_statsd_relay_into_tlm_statsd() {
    let dir = TempDir::new("signedrelay");
    let key = dir.0.join("key");
    fs::write(&key, "relay-key\n").expect("key file");
    let wrong = dir.0.join("wrong");
    fs::write(&wrong, "relay-key").expect("key file");
    let key = key.to_str().expect("utf-8");
    let d = Daemon::start(&[
        "--secure-listen",
        "udp://127.0.0.1:0",
        "--hmac-key-file",
        key,
        "--http",
        HTTP,
        "--flush",
        "1h",
    ]);
    let to = d.addr("secure+udp");
    let label = format!("secure+udp://{to}");
    let dest = format!("statsd://{to}");
    let (p1, p2) = (unique("signed"), unique("signed"));
    let (input, lines) = statsd_input(&p1);
    let done = publish(&["--linger", "50ms", "--hmac-key-file", key, &dest], &input);
    done.assert_ok();
    assert_eq!(done.count(&dest, "sent"), 17, "{}", done.stderr);
    check_listener(&d, &label, lines);

    let (input, more) = statsd_input(&p2);
    let with_option = format!("{dest}?hmac-key-file={key}");
    let done = publish(&["--linger", "50ms", &with_option], &input);
    done.assert_ok();
    check_listener(&d, &label, lines + more);

    let p3 = unique("signed");
    let (input, _) = statsd_input(&p3);
    let done = publish(
        &[
            "--linger",
            "50ms",
            "--hmac-key-file",
            wrong.to_str().expect("utf-8"),
            &dest,
        ],
        &input,
    );
    done.assert_ok();
    d.wait_stat(&label, &["rejected", "tampered"], 1);

    let fin = d.stop();
    let ms = fin.ok();
    assert_eq!(fin.summary("bad_lines"), 0, "{}", fin.stderr);
    check_statsd_output(&ms, &p1);
    check_statsd_output(&ms, &p2);
    assert!(
        !ms.iter()
            .any(|m| m["name"].as_str().is_some_and(|n| n.starts_with(&p3))),
        "{}",
        dump(&ms)
    );
}

// ---------------------------------------------------------------------------------------------
// Graphite over UDP (VictoriaMetrics' graphite listener takes TCP and UDP on one port).

/// `graphite+udp://` into VictoriaMetrics: tagged plaintext lines in datagrams of a few
/// lines each, every point back with its exact value and second.
#[test]
fn graphite_udp_into_victoriametrics() {
    let vm = sinks::victoria();
    let p = unique("gudp");
    let t0 = now_s() - 300;
    let mut input = String::new();
    for i in 0..40 {
        input += &line(
            json!({"name": format!("{p}.v"), "kind": "gauge", "value": i * 3,
            "ts": (t0 + i) * NS, "tags": {"host": if i % 2 == 0 { "even" } else { "odd" }}}),
        );
    }
    let dest = format!("graphite+udp://127.0.0.1:{}?mtu=200", vm.graphite_port());
    let label = format!("graphite+udp://127.0.0.1:{}", vm.graphite_port());
    let done = publish(&["--batch", "7", "--linger", "20ms", &dest], &input);
    done.assert_ok();
    assert_eq!(done.count(&label, "sent"), 40, "{}", done.stderr);
    let got = vm_samples(vm, &format!("{{__name__=\"{p}.v\"}}"), 2, 40);
    let pts = |parity: i64| -> Vec<(i64, f64)> {
        (0..40)
            .filter(|i| i % 2 == parity)
            .map(|i| ((t0 + i) * 1000, (i * 3) as f64))
            .collect()
    };
    let want: BTreeMap<String, Vec<(i64, f64)>> = [
        (vm_key(&format!("{p}.v"), &[("host", "even")]), pts(0)),
        (vm_key(&format!("{p}.v"), &[("host", "odd")]), pts(1)),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------------------------
// Files.

/// The files of a `file:` destination at `path`, oldest first: rotated ones
/// (`PATH.STAMP` then `PATH.STAMP.N`, N counting up) by stamp and N as a number, the live
/// file last.
fn rotated_in_order(path: &Path) -> Vec<std::path::PathBuf> {
    let dir = path.parent().expect("dir");
    let base = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    let mut rotated: Vec<(String, u64, std::path::PathBuf)> = fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let rest = name.strip_prefix(&format!("{base}."))?.to_string();
            let (stamp, n) = match rest.split_once('.') {
                Some((s, n)) => (s.to_string(), n.parse().expect("counter")),
                None => (rest, 0),
            };
            Some((stamp, n, e.path()))
        })
        .collect();
    rotated.sort();
    let mut out: Vec<_> = rotated.into_iter().map(|(_, _, p)| p).collect();
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

/// `file:PATH?format=graphite&rotate-size=…`: many rotations (several within one second, so
/// names get counters); the files, oldest first, hold every line exactly once and in input
/// order, each within the size limit.
#[test]
fn file_rotation_keeps_every_line_once_in_order() {
    let dir = TempDir::new("rotate");
    let path = dir.0.join("out.graphite");
    let t0 = 1_700_000_000;
    let input = gauges("rot.v", t0, 0..300);
    let dest = format!("file:{}?format=graphite&rotate-size=400", path.display());
    let done = publish(&["--batch", "5", "--linger", "10ms", &dest], &input);
    done.assert_ok();
    assert_eq!(
        done.count(&format!("file:{}", path.display()), "sent"),
        300,
        "{}",
        done.stderr
    );
    let files = rotated_in_order(&path);
    assert!(files.len() >= 10, "{files:?}");
    let mut all = String::new();
    for f in &files {
        let text = fs::read_to_string(f).expect("read");
        assert!(text.len() <= 400, "{}: {} bytes", f.display(), text.len());
        assert!(text.ends_with('\n'), "{} ends mid-line", f.display());
        all += &text;
    }
    let want: String = (0..300)
        .map(|i| format!("rot.v {i} {}\n", t0 + i))
        .collect();
    assert_eq!(all, want);
}

/// The transport's promise that `ls` lists rotated files in order: it does not once ten
/// files rotate within one second (`PATH.STAMP.10` sorts before `PATH.STAMP.2`).
#[test]
fn rotated_file_names_sort_in_order() {
    let dir = TempDir::new("rotate-ls");
    let path = dir.0.join("out.graphite");
    let input = gauges("ls.v", 1_700_000_000, 0..300);
    let dest = format!("file:{}?format=graphite&rotate-size=400", path.display());
    publish(&["--batch", "5", "--linger", "10ms", &dest], &input).assert_ok();
    let mut by_name: Vec<_> = fs::read_dir(&dir.0)
        .expect("read dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != &path)
        .collect();
    by_name.sort();
    let mut by_age = rotated_in_order(&path);
    by_age.retain(|p| p != &path);
    assert_eq!(by_name, by_age);
}

// ---------------------------------------------------------------------------------------------
// Generic HTTP.

/// `http://…?format=influx` is line protocol POSTed to any URL: into VictoriaMetrics'
/// `/write`; and `?format=prometheus` (text exposition with timestamps, TYPE lines) into its
/// `/api/v1/import/prometheus`, histogram buckets included.
#[test]
fn generic_http_carries_line_protocol_and_prometheus_text_into_victoriametrics() {
    let vm = sinks::victoria();
    let t = now_s() - 100;
    let p = unique("hinf");
    let mut input = String::new();
    for i in 0..5 {
        input += &line(json!({"name": format!("{p}.disk.used"), "kind": "gauge",
            "value": 100 + i, "ts": (t + i) * NS, "tags": {"dev": "sda"}}));
    }
    let dest = format!("http://127.0.0.1:{}/write?format=influx", vm.http_port());
    let label = format!("http://127.0.0.1:{}/write", vm.http_port());
    let done = publish(&["--batch", "2", "--linger", "20ms", &dest], &input);
    done.assert_ok();
    assert_eq!(done.count(&label, "sent"), 5, "{}", done.stderr);
    let got = vm_samples(vm, &format!("{{__name__=~\"{p}([._].*)?\"}}"), 1, 5);
    let want: BTreeMap<String, Vec<(i64, f64)>> = [(
        vm_key(&format!("{p}.disk_used"), &[("dev", "sda")]),
        (0..5).map(|i| ((t + i) * 1000, (100 + i) as f64)).collect(),
    )]
    .into_iter()
    .collect();
    assert_eq!(got, want);

    let p = unique("hprom");
    let mut input = String::new();
    input += &line(json!({"name": format!("{p}.req"), "kind": "counter",
        "temporality": "cumulative", "value": 41, "ts": t * NS, "tags": {"code": "200"}}));
    input += &line(json!({"name": format!("{p}.rtt"), "kind": "histogram",
        "temporality": "cumulative", "bounds": [0.5, 2], "counts": [2, 0, 1], "sum": 3.5,
        "ts": t * NS}));
    let dest = format!(
        "http://127.0.0.1:{}/api/v1/import/prometheus?format=prometheus",
        vm.http_port()
    );
    let label = format!(
        "http://127.0.0.1:{}/api/v1/import/prometheus",
        vm.http_port()
    );
    let done = publish(&["--linger", "20ms", &dest], &input);
    done.assert_ok();
    assert_eq!(done.count(&label, "sent"), 2, "{}", done.stderr);
    let got = vm_samples(vm, &format!("{{__name__=~\"{p}([._].*)?\"}}"), 6, 6);
    let ms = t * 1000;
    let rtt = format!("{p}_rtt");
    let want: BTreeMap<String, Vec<(i64, f64)>> = [
        (vm_key(&format!("{p}_req_total"), &[("code", "200")]), 41.0),
        (vm_key(&format!("{rtt}_bucket"), &[("le", "0.5")]), 2.0),
        (vm_key(&format!("{rtt}_bucket"), &[("le", "2")]), 2.0),
        (vm_key(&format!("{rtt}_bucket"), &[("le", "+Inf")]), 3.0),
        (vm_key(&format!("{rtt}_sum"), &[]), 3.5),
        (vm_key(&format!("{rtt}_count"), &[]), 3.0),
    ]
    .into_iter()
    .map(|(k, v)| (k, vec![(ms, v)]))
    .collect();
    assert_eq!(got, want);
}

/// A generic HTTP destination cannot carry the receiver's own query parameters: every
/// `?key=value` is taken as a tlm-publish option, so InfluxDB 1.x's `/write?db=…` cannot be
/// addressed (unknown option `db`), and without `db` InfluxDB answers 400.
#[test]
fn generic_http_into_influxdb_write_with_db() {
    let db = sinks::influx();
    let name = unique("hdb");
    db.create_db(&name);
    let t = now_s() - 100;
    let dest = format!(
        "http://127.0.0.1:{}/write?db={name}&precision=ns&format=influx",
        db.http_port()
    );
    let done = publish(&["--linger", "20ms", &dest], &gauges("m.v", t, 0..3));
    done.assert_ok();
    let rows = table(db, &name, "SELECT v FROM m");
    let values: Vec<i64> = rows.iter().map(|r| r["v"].as_i64().expect("v")).collect();
    assert_eq!(values, [0, 1, 2]);
}

// ---------------------------------------------------------------------------------------------
// Parallel lanes.

/// `--concurrency 3` with 60 series of 50 points into InfluxDB: every point arrives once,
/// counted per series; the summary says all were sent.
#[test]
fn three_lanes_deliver_every_point_to_influxdb() {
    let db = sinks::influx();
    let p = unique("lanes");
    let t0 = now_s() - 600;
    let (series, points) = (60i64, 50i64);
    let mut input = String::new();
    for j in 0..points {
        for s in 0..series {
            input += &line(
                json!({"name": format!("{p}.v"), "kind": "gauge", "value": s * 1000 + j,
                "ts": (t0 + j) * NS, "tags": {"series": format!("s{s:02}")}}),
            );
        }
    }
    let dest = format!("influx://127.0.0.1:{}/{p}", db.http_port());
    let done = publish(
        &[
            "--concurrency",
            "3",
            "--batch",
            "100",
            "--linger",
            "20ms",
            &dest,
        ],
        &input,
    );
    done.assert_ok();
    assert_eq!(
        done.count(&dest, "sent"),
        (series * points) as u64,
        "{}",
        done.stderr
    );
    assert_eq!(done.count(&dest, "retried"), 0, "{}", done.stderr);
    let v = db.query(
        &p,
        &format!("SELECT count(v), sum(v), first(v), last(v) FROM \"{p}\" GROUP BY \"series\""),
    );
    let groups = v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(groups.len(), series as usize, "{v}");
    for g in &groups {
        let s: i64 = g["tags"]["series"].as_str().expect("tag")[1..]
            .parse()
            .expect("number");
        let row = &g["values"][0];
        let sum = s * 1000 * points + points * (points - 1) / 2;
        assert_eq!(row[1], points, "count of s{s}: {g}");
        assert_eq!(row[2], sum, "sum of s{s}: {g}");
        assert_eq!(row[3], s * 1000, "first of s{s}: {g}");
        assert_eq!(row[4], s * 1000 + points - 1, "last of s{s}: {g}");
    }
}
