//! `vmstat`: paging, swapping, page faults and OOM kills.
//!
//! Counters cumulative since boot, untagged:
//!
//! | name | unit | from |
//! |---|---|---|
//! | `system.vm.paged_in` | `By` | `pgpgin` × 1024 (the kernel reports KiB read from block devices) |
//! | `system.vm.paged_out` | `By` | `pgpgout` × 1024 |
//! | `system.vm.swapped_in` | `{page}` | `pswpin` |
//! | `system.vm.swapped_out` | `{page}` | `pswpout` |
//! | `system.vm.page_faults` | `{fault}` | `pgfault` (minor and major) |
//! | `system.vm.major_page_faults` | `{fault}` | `pgmajfault` |
//! | `system.vm.oom_kills` | `{kill}` | `oom_kill`, only when the kernel has it (4.13+) |

use super::{parse_u64, Stamp};
use crate::metric::{Metric, Value};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmStat {
    pub pgpgin_kib: u64,
    pub pgpgout_kib: u64,
    pub pswpin: u64,
    pub pswpout: u64,
    pub pgfault: u64,
    pub pgmajfault: u64,
    pub oom_kill: Option<u64>,
}

pub fn parse(text: &str) -> Result<VmStat, String> {
    let mut v = VmStat::default();
    let mut seen = [false; 6];
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        let slot = match key {
            "pgpgin" => 0,
            "pgpgout" => 1,
            "pswpin" => 2,
            "pswpout" => 3,
            "pgfault" => 4,
            "pgmajfault" => 5,
            "oom_kill" => 6,
            _ => continue,
        };
        let field = fields
            .next()
            .ok_or_else(|| format!("`{key}` line has no value"))?;
        let n = parse_u64(field).map_err(|e| format!("`{key}`: {e}"))?;
        let target = match slot {
            0 => &mut v.pgpgin_kib,
            1 => &mut v.pgpgout_kib,
            2 => &mut v.pswpin,
            3 => &mut v.pswpout,
            4 => &mut v.pgfault,
            5 => &mut v.pgmajfault,
            _ => {
                v.oom_kill = Some(n);
                continue;
            }
        };
        *target = n;
        seen[slot] = true;
    }
    const REQUIRED: [&str; 6] = [
        "pgpgin",
        "pgpgout",
        "pswpin",
        "pswpout",
        "pgfault",
        "pgmajfault",
    ];
    if let Some(i) = seen.iter().position(|&s| !s) {
        return Err(format!("no `{}` line", REQUIRED[i]));
    }
    Ok(v)
}

pub fn emit(v: &VmStat, at: Stamp, out: &mut Vec<Metric>) {
    let kib = |n: u64| n.saturating_mul(1024);
    let counters = [
        ("system.vm.paged_in", "By", kib(v.pgpgin_kib)),
        ("system.vm.paged_out", "By", kib(v.pgpgout_kib)),
        ("system.vm.swapped_in", "{page}", v.pswpin),
        ("system.vm.swapped_out", "{page}", v.pswpout),
        ("system.vm.page_faults", "{fault}", v.pgfault),
        ("system.vm.major_page_faults", "{fault}", v.pgmajfault),
    ];
    for (name, unit, n) in counters {
        out.push(at.since_boot(name, Value::U64(n)).with_unit(unit));
    }
    if let Some(n) = v.oom_kill {
        out.push(
            at.since_boot("system.vm.oom_kills", Value::U64(n))
                .with_unit("{kill}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Kind, Temporality};

    /// Lines of this machine's `/proc/vmstat`, trimmed, with swap and OOM numbers set.
    const VMSTAT: &str = "\
nr_free_pages 2151836
nr_zone_inactive_anon 3165
nr_dirty 37002
pgpgin 90298077
pgpgout 80712764
pswpin 17
pswpout 23
pgalloc_normal 489949739
pgfault 431616340
pgmajfault 103878
pgrefill 0
oom_kill 2
compact_stall 0
";

    const AT: Stamp = Stamp { ts: 8, boot_ns: 2 };

    #[test]
    fn parses_and_emits() {
        let v = parse(VMSTAT).unwrap();
        assert_eq!(
            v,
            VmStat {
                pgpgin_kib: 90298077,
                pgpgout_kib: 80712764,
                pswpin: 17,
                pswpout: 23,
                pgfault: 431616340,
                pgmajfault: 103878,
                oom_kill: Some(2),
            }
        );
        let mut out = Vec::new();
        emit(&v, AT, &mut out);
        let got: Vec<_> = out
            .iter()
            .map(|m| (m.name.as_str(), m.unit.as_str(), m.value))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "system.vm.paged_in",
                    "By",
                    Some(Value::U64(90298077 * 1024))
                ),
                (
                    "system.vm.paged_out",
                    "By",
                    Some(Value::U64(80712764 * 1024))
                ),
                ("system.vm.swapped_in", "{page}", Some(Value::U64(17))),
                ("system.vm.swapped_out", "{page}", Some(Value::U64(23))),
                (
                    "system.vm.page_faults",
                    "{fault}",
                    Some(Value::U64(431616340))
                ),
                (
                    "system.vm.major_page_faults",
                    "{fault}",
                    Some(Value::U64(103878))
                ),
                ("system.vm.oom_kills", "{kill}", Some(Value::U64(2))),
            ]
        );
        assert!(out.iter().all(|m| m.kind == Kind::Counter
            && m.temporality == Some(Temporality::Cumulative)
            && m.start_ts == Some(2)
            && m.validate().is_ok()));
    }

    #[test]
    fn oom_kill_is_optional() {
        let v = parse(&VMSTAT.replace("oom_kill 2\n", "")).unwrap();
        assert_eq!(v.oom_kill, None);
        let mut out = Vec::new();
        emit(&v, AT, &mut out);
        assert_eq!(out.len(), 6);
    }

    #[test]
    fn malformed_vmstat_gives_reasons() {
        assert!(parse("").unwrap_err().contains("`pgpgin`"));
        let no_maj = VMSTAT.replace("pgmajfault 103878\n", "");
        assert!(parse(&no_maj).unwrap_err().contains("`pgmajfault`"));
        assert!(parse(&VMSTAT.replace("pswpin 17", "pswpin x"))
            .unwrap_err()
            .contains("`x`"));
        assert!(parse("pgfault\n").unwrap_err().contains("no value"));
    }
}
