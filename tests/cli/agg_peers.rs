//! `tlm-agg` against DuckDB on the shared generator's stream: `tlm-gen … | tlm-agg --window
//! 10s --quantiles …` must give, for every series and window, the count, sum, min, max, mean
//! and exact quantiles DuckDB computes from the same lines (`../shared/agg-bench`, whose
//! `peer_duckdb.py` is the benchmark's peer query).
//!
//! The generator is built once into the target directory and DuckDB pip-installed there
//! (`--target`), like the statsd client peers.

use super::harness;
use super::statsd::TempDir;
use super::statsd_peers::{peers, pip_package};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const DUCKDB: &str = "2.0.1";
const WINDOW_NS: i64 = 10_000_000_000;

/// `shared/agg-bench` beside the repository or an ancestor of it.
fn agg_bench() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    repo.ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/agg-bench"))
        .find(|dir| dir.join("peer_duckdb.py").is_file())
        .unwrap_or_else(|| panic!("no shared/agg-bench beside {}", repo.display()))
}

/// The shared generator, built once.
fn tlm_gen() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = peers().join("tlm-gen-target");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(agg_bench().join("gen/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("cargo");
        assert!(
            out.status.success(),
            "building tlm-gen failed:\n{}",
            harness::text(&out.stderr)
        );
        target.join("release/tlm-gen")
    })
}

/// The directory holding the `duckdb` Python package, for PYTHONPATH.
fn py_duckdb() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| pip_package("duckdb", DUCKDB, true))
}

/// A series and window: name, tags (sorted JSON), window start.
type Group = (String, String, i64);

fn sorted_tags(tags: &Value) -> String {
    let map: BTreeMap<&String, &Value> = tags
        .as_object()
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    serde_json::to_string(&map).expect("tags")
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(what: &str, got: f64, want: f64) {
    let tolerance = 1e-9 * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: tlm-agg {got}, DuckDB {want}"
    );
}

/// tlm-agg's output lines by (name, kind, tags, window start).
fn by_group(lines: &[Value]) -> HashMap<(String, String, String, i64), &Value> {
    let mut out = HashMap::new();
    for l in lines {
        let ts = l["ts"].as_i64().expect("ts");
        let key = (
            l["name"].as_str().expect("name").to_owned(),
            l["kind"].as_str().expect("kind").to_owned(),
            sorted_tags(&l["tags"]),
            ts - WINDOW_NS,
        );
        assert!(out.insert(key, l).is_none(), "a line written twice: {l}");
    }
    out
}

/// Each input series' kind, by name and sorted tags.
fn kinds(input: &str) -> HashMap<(String, String), String> {
    json_lines(input)
        .iter()
        .map(|m| {
            let name = m["name"].as_str().expect("name").to_owned();
            let kind = m["kind"].as_str().expect("kind").to_owned();
            ((name, sorted_tags(&m["tags"])), kind)
        })
        .collect()
}

#[test]
fn generated_stream_summaries_match_duckdb() {
    let (gen, duckdb) = (tlm_gen(), py_duckdb());
    let dir = TempDir::new("agg-duckdb");
    let file = dir.0.join("gen.ndjson");
    let args = "--lines 60000 --series 100";
    let agg = harness::sh(&format!(
        "{gen} {args} | tlm-agg --window 10s --quantiles 0.5,0.9,0.99 --gauge all",
        gen = gen.display()
    ));
    assert!(agg.status.success(), "{}", harness::text(&agg.stderr));
    let made = harness::sh(&format!("{} {args} > {}", gen.display(), file.display()));
    assert!(made.status.success(), "{}", harness::text(&made.stderr));
    let peer = Command::new("python3")
        .arg(agg_bench().join("peer_duckdb.py"))
        .args([file.to_str().expect("path"), "exact", "2"])
        .env("PYTHONPATH", duckdb)
        .output()
        .expect("python3");
    assert!(peer.status.success(), "{}", harness::text(&peer.stderr));

    let input = std::fs::read_to_string(&file).expect("read the generated file");
    let kinds = kinds(&input);
    let tlm_lines = json_lines(&harness::text(&agg.stdout));
    let tlm = by_group(&tlm_lines);
    let rows = json_lines(&harness::text(&peer.stdout));
    let (mut lines_wanted, mut quantiles_checked) = (0, 0);
    for row in &rows {
        let tags: Value =
            serde_json::from_str(row["tags"].as_str().expect("tags text")).expect("tags JSON");
        let (name, tags) = (row["name"].as_str().expect("name"), sorted_tags(&tags));
        let start = row["window_start"].as_i64().expect("window_start");
        let group: Group = (name.to_owned(), tags.clone(), start);
        let line = |suffix: &str, kind: &str| {
            let key = (
                format!("{name}{suffix}"),
                kind.to_owned(),
                tags.clone(),
                start,
            );
            *tlm.get(&key)
                .unwrap_or_else(|| panic!("tlm-agg wrote no {kind} {name}{suffix} for {group:?}"))
        };
        let what = |field: &str| format!("{field} of {group:?}");
        let count = f(&row["count"]);
        match kinds[&(name.to_owned(), tags.clone())].as_str() {
            "counter" => {
                close(
                    &what("sum"),
                    f(&line("", "counter")["value"]),
                    f(&row["sum"]),
                );
                lines_wanted += 1;
            }
            "gauge" => {
                for (suffix, field) in [(".min", "min"), (".max", "max"), (".mean", "mean")] {
                    close(
                        &what(field),
                        f(&line(suffix, "gauge")["value"]),
                        f(&row[field]),
                    );
                }
                close(
                    &what("sum"),
                    f(&line(".sum", "gauge")["value"]),
                    f(&row["sum"]),
                );
                close(
                    &what("count"),
                    f(&line(".count", "counter")["value"]),
                    count,
                );
                lines_wanted += 6;
            }
            "distribution" => {
                let s = line("", "summary");
                for field in ["count", "sum", "min", "max"] {
                    close(&what(field), f(&s[field]), f(&row[field]));
                }
                close(
                    &what("mean"),
                    f(&s["sum"]) / f(&s["count"]),
                    f(&row["mean"]),
                );
                let qs = s["quantiles"].as_array().expect("quantiles");
                let pct = row["pct"].as_array().expect("pct");
                assert_eq!(qs.len(), pct.len(), "{group:?}");
                for (q, p) in qs.iter().zip(pct) {
                    close(&what(&format!("quantile {}", q[0])), f(&q[1]), f(p));
                }
                quantiles_checked += usize::from(count >= 10.0);
                lines_wanted += 1;
            }
            other => panic!("the generator wrote a {other}"),
        }
    }
    assert_eq!(
        tlm_lines.len(),
        lines_wanted,
        "tlm-agg wrote lines DuckDB has no group for"
    );
    assert!(rows.len() > 1000, "only {} groups", rows.len());
    assert!(
        quantiles_checked > 100,
        "only {quantiles_checked} windows of 10+ values"
    );
}
