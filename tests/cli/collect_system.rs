//! `tlm-collect system --count 1` cross-checked against the standard tools reading the same
//! kernel: `free -b`, `df -P -B1`, `/proc/loadavg` and `nproc`.
//!
//! Sizes that do not move (memory and swap totals, file system sizes) must be equal. Values
//! that move while the tools run (memory used/available, space used/available, load) are
//! read by the tool right before and right after the collector, and the collector's value
//! must lie between the two readings, widened by a small tolerance; a comparison that fails
//! is retried a few times, so only a value that is wrong every time fails the test.

use super::harness::{bin, text};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

const MIB: u64 = 1024 * 1024;
const ATTEMPTS: usize = 3;

/// One collection's metrics.
fn collect_system() -> Vec<Value> {
    let out = Command::new(bin("tlm-collect"))
        .args(["system", "--count", "1"])
        .stdin(Stdio::null())
        .output()
        .expect("tlm-collect");
    assert!(
        out.status.success(),
        "tlm-collect system: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// stdout of a tool, which must exist (and, when `strict`, succeed).
fn tool(cmd: &str, args: &[&str], strict: bool) -> String {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        !strict || out.status.success(),
        "{cmd} {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The value of the only metric `name` whose tags include `tags`.
fn value(ms: &[Value], name: &str, tags: &[(&str, &str)]) -> Value {
    let found: Vec<&Value> = ms
        .iter()
        .filter(|m| m["name"] == name && tags.iter().all(|(k, v)| m["tags"][*k] == *v))
        .map(|m| &m["value"])
        .collect();
    assert_eq!(found.len(), 1, "{name} {tags:?}: {found:?}");
    found[0].clone()
}

fn u64_of(ms: &[Value], name: &str, tags: &[(&str, &str)]) -> u64 {
    let v = value(ms, name, tags);
    v.as_u64()
        .unwrap_or_else(|| panic!("{name} {tags:?}: {v} is not a u64"))
}

/// `got` within `[min(a, b) - tol, max(a, b) + tol]`, else why not.
fn between(what: &str, got: u64, a: u64, b: u64, tol: u64) -> Result<(), String> {
    let (lo, hi) = (a.min(b).saturating_sub(tol), a.max(b).saturating_add(tol));
    if (lo..=hi).contains(&got) {
        Ok(())
    } else {
        Err(format!(
            "{what}: collector {got}, tool {a} before and {b} after (tolerance {tol})"
        ))
    }
}

fn exact(what: &str, got: u64, want: u64) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: collector {got}, tool {want}"))
    }
}

/// Runs `check` until it passes, at most `ATTEMPTS` times; panics with every failure.
fn retried(mut check: impl FnMut() -> Result<(), String>) {
    let mut failures = Vec::new();
    for _ in 0..ATTEMPTS {
        match check() {
            Ok(()) => return,
            Err(e) => failures.push(e),
        }
    }
    panic!("failed {ATTEMPTS} times:\n{}", failures.join("\n"));
}

/// `free -b`: the numbers of the `Mem:` and `Swap:` rows by column name.
struct Free {
    mem_total: u64,
    mem_used: u64,
    mem_available: u64,
    swap_total: u64,
    swap_used: u64,
}

fn free() -> Free {
    let out = tool("free", &["-b"], true);
    let row = |label: &str| -> Vec<u64> {
        out.lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} row in\n{out}"))
            .split_ascii_whitespace()
            .map(|n| n.parse().unwrap_or_else(|_| panic!("`{n}` in\n{out}")))
            .collect()
    };
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no `{name}` column in\n{out}"))
    };
    let (mem, swap) = (row("Mem:"), row("Swap:"));
    let mem_total = mem[col("total")];
    let mem_available = mem[col("available")];
    // procps-ng 4 prints used = total - available, the collector's definition; older `free`
    // subtracts free, buffers and cache instead, so derive it from its own columns there.
    let mem_used = if procps_major() >= 4 {
        mem[col("used")]
    } else {
        mem_total - mem_available
    };
    Free {
        mem_total,
        mem_used,
        mem_available,
        swap_total: swap[col("total")],
        swap_used: swap[col("used")],
    }
}

fn procps_major() -> u32 {
    let v = tool("free", &["-V"], false);
    v.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

#[test]
fn memory_and_swap_match_free() {
    retried(|| {
        let before = free();
        let ms = collect_system();
        let after = free();
        let got = |name| u64_of(&ms, name, &[]);
        exact("MemTotal", got("system.memory.total"), before.mem_total)?;
        exact("MemTotal", got("system.memory.total"), after.mem_total)?;
        exact("SwapTotal", got("system.swap.total"), before.swap_total)?;
        exact("SwapTotal", got("system.swap.total"), after.swap_total)?;
        let tol = 64 * MIB;
        between(
            "memory used",
            got("system.memory.used"),
            before.mem_used,
            after.mem_used,
            tol,
        )?;
        between(
            "memory available",
            got("system.memory.available"),
            before.mem_available,
            after.mem_available,
            tol,
        )?;
        between(
            "swap used",
            got("system.swap.used"),
            before.swap_used,
            after.swap_used,
            tol,
        )
    });
}

/// `df -P -B1`: mount point → (size, used, available), in bytes.
fn df() -> BTreeMap<String, [u64; 3]> {
    // Not strict: df exits 1 when one mount cannot be read, and still prints the others.
    let out = tool("df", &["-P", "-B1"], false);
    let mut mounts = BTreeMap::new();
    for line in out.lines().skip(1) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let n = |i: usize| -> u64 {
            f[i].parse()
                .unwrap_or_else(|_| panic!("`{}` in `{line}`", f[i]))
        };
        // The mount point is last and may hold spaces.
        mounts.insert(f[5..].join(" "), [n(1), n(2), n(3)]);
    }
    assert!(!mounts.is_empty(), "no mounts in\n{out}");
    mounts
}

#[test]
fn filesystems_match_df() {
    retried(|| {
        let before = df();
        let ms = collect_system();
        let after = df();
        let ours: BTreeSet<String> = ms
            .iter()
            .filter(|m| m["name"] == "system.filesystem.size")
            .map(|m| m["tags"]["mount"].as_str().expect("mount tag").to_owned())
            .collect();
        let theirs: BTreeSet<String> = before.keys().cloned().collect();
        if ours != theirs {
            return Err(format!("mounts: collector {ours:?}, df {theirs:?}"));
        }
        let tol = 64 * MIB;
        for (mount, [size, used, avail]) in &before {
            let [size2, used2, avail2] = after
                .get(mount)
                .ok_or_else(|| format!("{mount} gone from df"))?;
            let tags = [("mount", mount.as_str())];
            let got = |name| u64_of(&ms, name, &tags);
            exact(
                &format!("{mount} size"),
                got("system.filesystem.size"),
                *size,
            )?;
            exact(
                &format!("{mount} size"),
                got("system.filesystem.size"),
                *size2,
            )?;
            between(
                &format!("{mount} used"),
                got("system.filesystem.used"),
                *used,
                *used2,
                tol,
            )?;
            between(
                &format!("{mount} available"),
                got("system.filesystem.available"),
                *avail,
                *avail2,
                tol,
            )?;
        }
        Ok(())
    });
}

fn load1() -> f64 {
    let text = std::fs::read_to_string("/proc/loadavg").expect("/proc/loadavg");
    text.split_ascii_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("/proc/loadavg: {text}"))
}

#[test]
fn load_matches_proc_loadavg() {
    retried(|| {
        let before = load1();
        let ms = collect_system();
        let after = load1();
        let v = value(&ms, "system.load.1m", &[]);
        let got = v.as_f64().ok_or_else(|| format!("load {v} not a number"))?;
        let (lo, hi) = (before.min(after) - 0.2, before.max(after) + 0.2);
        if (lo..=hi).contains(&got) {
            Ok(())
        } else {
            Err(format!(
                "load1: collector {got}, /proc/loadavg {before} before and {after} after"
            ))
        }
    });
}

#[test]
fn per_core_cpu_series_match_nproc() {
    let ms = collect_system();
    let mut modes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in ms.iter().filter(|m| m["name"] == "system.cpu.time") {
        let cpu = m["tags"]["cpu"].as_str().expect("cpu tag");
        if cpu == "total" {
            continue;
        }
        assert!(
            cpu.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
            "cpu tag `{cpu}`"
        );
        let mode = m["tags"]["mode"].as_str().expect("mode tag").to_owned();
        modes.entry(cpu.to_owned()).or_default().insert(mode);
    }
    let count = |out: String| -> usize {
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a count: {out}"))
    };
    let nproc = count(tool("nproc", &[], true));
    let online = count(tool("getconf", &["_NPROCESSORS_ONLN"], true));
    // nproc counts the CPUs this process may run on; /proc/stat lists every online CPU.
    // They differ only under a restricted affinity (taskset, a cpuset), where the online
    // count is the one to compare.
    let want = if nproc == online { nproc } else { online };
    assert_eq!(
        modes.len(),
        want,
        "per-core cpu tags {:?}; nproc {nproc}, online {online}",
        modes.keys()
    );
    assert!(
        modes.values().all(|m| m.len() == 8),
        "each core has the 8 modes: {modes:?}"
    );
    assert_eq!(u64_of(&ms, "system.cpu.count", &[]), want as u64);
}
