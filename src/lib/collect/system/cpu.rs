//! `stat`: CPU time per mode, CPU count, runnable/blocked processes, context switches, forks.

use super::{parse_u64, Stamp};
use crate::metric::{Metric, Value};
use crate::time::NS_PER_SEC;

/// The modes emitted, in `/proc/stat` column order. The next two columns, guest and
/// guest_nice, are already counted in user and nice, so they are not emitted.
pub const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// One `cpu` or `cpuN` line.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuTimes {
    /// The `cpu` tag: "total" for the `cpu` line, else the line's name (`cpu0`, ...).
    pub cpu: String,
    /// Clock ticks spent in each of `MODES`.
    pub jiffies: [u64; 8],
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stat {
    /// The `cpu` line first, then the `cpuN` lines in file order.
    pub cpus: Vec<CpuTimes>,
    /// `btime` in Unix nanoseconds.
    pub boot_ns: i64,
    pub context_switches: u64,
    pub forks: u64,
    pub procs_running: u64,
    pub procs_blocked: u64,
}

#[derive(Default)]
struct Totals {
    btime: Option<u64>,
    ctxt: Option<u64>,
    processes: Option<u64>,
    procs_running: Option<u64>,
    procs_blocked: Option<u64>,
}

pub fn parse(text: &str) -> Result<Stat, String> {
    let mut cpus = Vec::new();
    let mut t = Totals::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        let slot = match key {
            "btime" => &mut t.btime,
            "ctxt" => &mut t.ctxt,
            "processes" => &mut t.processes,
            "procs_running" => &mut t.procs_running,
            "procs_blocked" => &mut t.procs_blocked,
            _ => {
                if let Some(cpu) = cpu_tag(key) {
                    cpus.push(parse_cpu(key, cpu, fields)?);
                }
                continue;
            }
        };
        let field = fields
            .next()
            .ok_or_else(|| format!("`{key}` line has no value"))?;
        *slot = Some(parse_u64(field).map_err(|e| format!("`{key}` line: {e}"))?);
    }
    if cpus.first().map(|c| c.cpu.as_str()) != Some("total") {
        return Err("the first cpu line is not `cpu`".into());
    }
    let btime = required(t.btime, "btime")?;
    Ok(Stat {
        cpus,
        boot_ns: i64::try_from(btime)
            .ok()
            .and_then(|s| s.checked_mul(NS_PER_SEC))
            .ok_or_else(|| format!("`btime` {btime} is out of range"))?,
        context_switches: required(t.ctxt, "ctxt")?,
        forks: required(t.processes, "processes")?,
        procs_running: required(t.procs_running, "procs_running")?,
        procs_blocked: required(t.procs_blocked, "procs_blocked")?,
    })
}

/// "total" for `cpu`, the name itself for `cpuN`, `None` for other lines.
fn cpu_tag(key: &str) -> Option<&str> {
    match key.strip_prefix("cpu")? {
        "" => Some("total"),
        n if n.bytes().all(|b| b.is_ascii_digit()) => Some(key),
        _ => None,
    }
}

fn parse_cpu<'a>(
    key: &str,
    cpu: &str,
    mut fields: impl Iterator<Item = &'a str>,
) -> Result<CpuTimes, String> {
    let mut jiffies = [0; MODES.len()];
    for (slot, mode) in jiffies.iter_mut().zip(MODES) {
        let field = fields
            .next()
            .ok_or_else(|| format!("`{key}` line has no {mode} column"))?;
        *slot = parse_u64(field).map_err(|e| format!("`{key}` line, {mode}: {e}"))?;
    }
    Ok(CpuTimes {
        cpu: cpu.to_owned(),
        jiffies,
    })
}

fn required(v: Option<u64>, key: &str) -> Result<u64, String> {
    v.ok_or_else(|| format!("no `{key}` line"))
}

/// Appends the metrics of `stat`; percentages only for CPUs also present in `prev`.
pub fn emit(stat: &Stat, prev: &[CpuTimes], clk_tck: u64, at: Stamp, out: &mut Vec<Metric>) {
    for cpu in &stat.cpus {
        emit_times(cpu, clk_tck, at, out);
    }
    for (i, cpu) in stat.cpus.iter().enumerate() {
        // CPUs go offline and come back, so match by name; the same index is the usual case.
        let before = prev
            .get(i)
            .filter(|p| p.cpu == cpu.cpu)
            .or_else(|| prev.iter().find(|p| p.cpu == cpu.cpu));
        if let Some(before) = before {
            emit_percents(before, cpu, at, out);
        }
    }
    let count = stat.cpus.len().saturating_sub(1) as u64;
    out.push(at.gauge("system.cpu.count", Value::U64(count)));
    out.push(at.gauge("system.processes.running", Value::U64(stat.procs_running)));
    out.push(at.gauge("system.processes.blocked", Value::U64(stat.procs_blocked)));
    out.push(at.since_boot("system.context_switches", Value::U64(stat.context_switches)));
    out.push(at.since_boot("system.forks", Value::U64(stat.forks)));
}

fn emit_times(cpu: &CpuTimes, clk_tck: u64, at: Stamp, out: &mut Vec<Metric>) {
    for (mode, jiffies) in MODES.into_iter().zip(cpu.jiffies) {
        let ms = Value::U64(jiffies_to_ms(jiffies, clk_tck));
        let m = at.since_boot("system.cpu.time", ms).with_unit("ms");
        out.push(m.with_tag("cpu", &cpu.cpu).with_tag("mode", mode));
    }
}

/// `100 * Δmode / Δtotal` per mode; nothing when no time passed. A mode counter that went
/// backwards (iowait can) counts as zero.
fn emit_percents(before: &CpuTimes, now: &CpuTimes, at: Stamp, out: &mut Vec<Metric>) {
    let deltas: [u64; 8] =
        std::array::from_fn(|i| now.jiffies[i].saturating_sub(before.jiffies[i]));
    let total = deltas.iter().fold(0u64, |a, &d| a.saturating_add(d));
    if total == 0 {
        return;
    }
    for (mode, delta) in MODES.into_iter().zip(deltas) {
        let pct = Value::F64(100.0 * delta as f64 / total as f64);
        let m = at.gauge("system.cpu.percent", pct).with_unit("%");
        out.push(m.with_tag("cpu", &now.cpu).with_tag("mode", mode));
    }
}

fn jiffies_to_ms(jiffies: u64, clk_tck: u64) -> u64 {
    let ms = u128::from(jiffies) * 1000 / u128::from(clk_tck.max(1));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Kind, Temporality};

    /// Two CPUs, guest columns non-zero (they must not change anything), plus the lines
    /// that are skipped.
    const STAT_1: &str = "\
cpu  10765 3 3070 45457 307 1 37 133 50 2
cpu0 5177 1 1365 23225 41 0 7 61 20 1
cpu1 5588 2 1705 22232 266 1 30 72 30 1
intr 133819 0 0 0 0 0 0 0 0 0 0
ctxt 218515
btime 1795291430
processes 5853
procs_running 3
procs_blocked 1
softirq 96330 0 27096 1 1108 0 0 4 37543 0 30578
";

    const STAT_2: &str = "\
cpu  10865 3 3120 45807 307 1 37 133 60 2
cpu0 5177 1 1365 23425 41 0 7 61 20 1
cpu1 5688 2 1755 22382 266 1 30 72 40 1
ctxt 220000
btime 1795291430
processes 5900
procs_running 1
procs_blocked 0
";

    const AT: Stamp = Stamp {
        ts: 1_795_291_730_000_000_000,
        boot_ns: 1_795_291_430_000_000_000,
    };

    fn find<'a>(out: &'a [Metric], name: &str, tags: &[(&str, &str)]) -> &'a Metric {
        out.iter()
            .find(|m| m.name == name && tags.iter().all(|&(k, v)| m.tags.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} {tags:?}"))
    }

    #[test]
    fn parses_stat() {
        let s = parse(STAT_1).unwrap();
        assert_eq!(s.boot_ns, 1_795_291_430 * NS_PER_SEC);
        assert_eq!(
            (
                s.context_switches,
                s.forks,
                s.procs_running,
                s.procs_blocked
            ),
            (218515, 5853, 3, 1)
        );
        let names: Vec<_> = s.cpus.iter().map(|c| c.cpu.as_str()).collect();
        assert_eq!(names, ["total", "cpu0", "cpu1"]);
        assert_eq!(s.cpus[2].jiffies, [5588, 2, 1705, 22232, 266, 1, 30, 72]);
    }

    #[test]
    fn first_sample_has_exact_ms_and_no_percent() {
        let s = parse(STAT_1).unwrap();
        let mut out = Vec::new();
        emit(&s, &[], 100, AT, &mut out);
        let m = find(
            &out,
            "system.cpu.time",
            &[("cpu", "cpu1"), ("mode", "user")],
        );
        assert_eq!(m.value, Some(Value::U64(55_880)));
        assert_eq!(
            (m.kind, m.temporality),
            (Kind::Counter, Some(Temporality::Cumulative))
        );
        assert_eq!(
            (m.unit.as_str(), m.start_ts, m.ts),
            ("ms", Some(AT.boot_ns), AT.ts)
        );
        let m = find(
            &out,
            "system.cpu.time",
            &[("cpu", "total"), ("mode", "steal")],
        );
        assert_eq!(m.value, Some(Value::U64(1_330)));
        assert_eq!(
            out.iter().filter(|m| m.name == "system.cpu.time").count(),
            3 * 8
        );
        assert!(!out.iter().any(|m| m.name == "system.cpu.percent"));
        assert!(!out.iter().any(|m| m.tags.get("mode") == Some("guest")));
        assert_eq!(
            find(&out, "system.cpu.count", &[]).value,
            Some(Value::U64(2))
        );
        assert_eq!(
            find(&out, "system.processes.running", &[]).value,
            Some(Value::U64(3))
        );
        assert_eq!(
            find(&out, "system.processes.blocked", &[]).value,
            Some(Value::U64(1))
        );
        let ctxt = find(&out, "system.context_switches", &[]);
        assert_eq!(
            (ctxt.value, ctxt.start_ts),
            (Some(Value::U64(218515)), Some(AT.boot_ns))
        );
        assert_eq!(
            find(&out, "system.forks", &[]).value,
            Some(Value::U64(5853))
        );
        assert!(out.iter().all(|m| m.validate().is_ok()));
    }

    #[test]
    fn ms_with_other_clock_rates_is_floored() {
        assert_eq!(jiffies_to_ms(7, 1000), 7);
        assert_eq!(jiffies_to_ms(7, 300), 23);
        assert_eq!(jiffies_to_ms(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn second_sample_has_percent_from_deltas() {
        let first = parse(STAT_1).unwrap();
        let second = parse(STAT_2).unwrap();
        let mut out = Vec::new();
        emit(&second, &first.cpus, 100, AT, &mut out);
        let pct = |cpu, mode| {
            let m = find(&out, "system.cpu.percent", &[("cpu", cpu), ("mode", mode)]);
            assert_eq!((m.kind, m.unit.as_str()), (Kind::Gauge, "%"));
            m.value
        };
        // total: Δ user 100, system 50, idle 350 → Δtotal 500 (guest's +10 is inside user).
        assert_eq!(pct("total", "user"), Some(Value::F64(20.0)));
        assert_eq!(pct("total", "system"), Some(Value::F64(10.0)));
        assert_eq!(pct("total", "idle"), Some(Value::F64(70.0)));
        assert_eq!(pct("total", "iowait"), Some(Value::F64(0.0)));
        // cpu0: only idle moved.
        assert_eq!(pct("cpu0", "idle"), Some(Value::F64(100.0)));
        assert_eq!(pct("cpu0", "user"), Some(Value::F64(0.0)));
        // cpu1: Δ user 100, system 50, idle 150 → Δtotal 300.
        let user = pct("cpu1", "user").map(Value::as_f64).unwrap();
        assert!((user - 100.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            pct("cpu1", "system").map(Value::as_f64).unwrap(),
            50.0 / 3.0
        );
        assert_eq!(
            out.iter()
                .filter(|m| m.name == "system.cpu.percent")
                .count(),
            3 * 8
        );
    }

    #[test]
    fn no_percent_when_no_time_passed() {
        let s = parse(STAT_1).unwrap();
        let mut out = Vec::new();
        emit(&s, &s.cpus, 100, AT, &mut out);
        assert!(!out.iter().any(|m| m.name == "system.cpu.percent"));
    }

    #[test]
    fn backwards_counter_counts_as_zero() {
        let before = CpuTimes {
            cpu: "cpu0".into(),
            jiffies: [0, 0, 0, 0, 10, 0, 0, 0],
        };
        let now = CpuTimes {
            cpu: "cpu0".into(),
            jiffies: [0, 0, 0, 4, 5, 0, 0, 0],
        };
        let mut out = Vec::new();
        emit_percents(&before, &now, AT, &mut out);
        assert_eq!(
            find(&out, "system.cpu.percent", &[("mode", "idle")]).value,
            Some(Value::F64(100.0))
        );
        assert_eq!(
            find(&out, "system.cpu.percent", &[("mode", "iowait")]).value,
            Some(Value::F64(0.0))
        );
    }

    #[test]
    fn malformed_stat_gives_reasons() {
        let err = |text: &str| parse(text).unwrap_err();
        assert!(err("").contains("`cpu`"));
        assert!(err("cpu  1 2 3 4 5 6 7\nbtime 1\n").contains("steal"));
        assert!(err("cpu  1 2 3 -4 5 6 7 8\n").contains("`-4`"));
        let no_ctxt =
            "cpu  1 2 3 4 5 6 7 8\nbtime 1\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n";
        assert!(err(no_ctxt).contains("`ctxt`"));
        assert!(err("cpu  1 2 3 4 5 6 7 8\nbtime\n").contains("`btime` line has no value"));
        let huge = "cpu  1 2 3 4 5 6 7 8\nbtime 18446744073709551615\nctxt 1\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n";
        assert!(err(huge).contains("out of range"));
    }

    #[test]
    fn cpu_tag_recognises_only_cpu_lines() {
        assert_eq!(cpu_tag("cpu"), Some("total"));
        assert_eq!(cpu_tag("cpu12"), Some("cpu12"));
        assert_eq!(cpu_tag("cpufreq"), None);
        assert_eq!(cpu_tag("ctxt"), None);
    }
}
