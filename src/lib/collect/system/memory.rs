//! `meminfo`: memory and swap sizes in bytes.

use super::{parse_u64, Stamp};
use crate::metric::{Metric, Value};

/// The `meminfo` fields used, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    pub cached: u64,
    pub s_reclaimable: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

pub fn parse(text: &str) -> Result<MemInfo, String> {
    let bytes = |key| field_bytes(text, key);
    Ok(MemInfo {
        total: bytes("MemTotal")?,
        free: bytes("MemFree")?,
        available: bytes("MemAvailable")?,
        buffers: bytes("Buffers")?,
        cached: bytes("Cached")?,
        s_reclaimable: bytes("SReclaimable")?,
        swap_total: bytes("SwapTotal")?,
        swap_free: bytes("SwapFree")?,
    })
}

/// The value of a `Key:   123 kB` line, in bytes.
fn field_bytes(text: &str, key: &str) -> Result<u64, String> {
    let rest = text
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .ok_or_else(|| format!("no `{key}` line"))?;
    let mut fields = rest.split_ascii_whitespace();
    match (fields.next(), fields.next(), fields.next()) {
        (Some(n), Some("kB"), None) => parse_u64(n)
            .map_err(|e| format!("`{key}`: {e}"))?
            .checked_mul(1024)
            .ok_or_else(|| format!("`{key}`: {n} kB is out of range")),
        _ => Err(format!(
            "`{key}`: expected `<number> kB`, found `{}`",
            rest.trim()
        )),
    }
}

/// Appends the memory and swap gauges. `used` is total − available and `cached` is
/// Cached + SReclaimable, as procps-ng 4 `free` reports them.
pub fn emit(m: &MemInfo, at: Stamp, out: &mut Vec<Metric>) {
    let gauges = [
        ("system.memory.total", m.total),
        ("system.memory.free", m.free),
        ("system.memory.available", m.available),
        ("system.memory.buffers", m.buffers),
        (
            "system.memory.cached",
            m.cached.saturating_add(m.s_reclaimable),
        ),
        ("system.memory.used", m.total.saturating_sub(m.available)),
        ("system.swap.total", m.swap_total),
        ("system.swap.free", m.swap_free),
        ("system.swap.used", m.swap_total.saturating_sub(m.swap_free)),
    ];
    for (name, bytes) in gauges {
        out.push(at.gauge(name, Value::U64(bytes)).with_unit("By"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Kind;

    const MEMINFO: &str = "\
MemTotal:       24682416 kB
MemFree:        23777868 kB
MemAvailable:   24356624 kB
Buffers:            4008 kB
Cached:           777140 kB
SwapCached:            0 kB
Active:           249488 kB
Inactive:         524028 kB
SwapTotal:       2097148 kB
SwapFree:        2096124 kB
Dirty:            148008 kB
Shmem:             12776 kB
KReclaimable:      36080 kB
Slab:              58284 kB
SReclaimable:      36084 kB
SUnreclaim:        22200 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
";

    const AT: Stamp = Stamp { ts: 5, boot_ns: 1 };

    fn value(out: &[Metric], name: &str) -> Option<Value> {
        out.iter().find(|m| m.name == name).and_then(|m| m.value)
    }

    #[test]
    fn emits_exact_bytes() {
        let mut out = Vec::new();
        emit(&parse(MEMINFO).unwrap(), AT, &mut out);
        let b = |kb: u64| Some(Value::U64(kb * 1024));
        assert_eq!(value(&out, "system.memory.total"), b(24682416));
        assert_eq!(value(&out, "system.memory.free"), b(23777868));
        assert_eq!(value(&out, "system.memory.available"), b(24356624));
        assert_eq!(value(&out, "system.memory.buffers"), b(4008));
        assert_eq!(value(&out, "system.memory.cached"), b(777140 + 36084));
        assert_eq!(value(&out, "system.memory.used"), b(24682416 - 24356624));
        assert_eq!(value(&out, "system.swap.total"), b(2097148));
        assert_eq!(value(&out, "system.swap.free"), b(2096124));
        assert_eq!(value(&out, "system.swap.used"), b(1024));
        assert_eq!(out.len(), 9);
        assert!(out
            .iter()
            .all(|m| m.kind == Kind::Gauge && m.unit == "By" && m.ts == 5 && m.tags.is_empty()));
    }

    #[test]
    fn used_saturates() {
        let text = MEMINFO.replace("MemAvailable:   24356624", "MemAvailable:   99999999");
        let mut out = Vec::new();
        emit(&parse(&text).unwrap(), AT, &mut out);
        assert_eq!(value(&out, "system.memory.used"), Some(Value::U64(0)));
    }

    #[test]
    fn malformed_meminfo_gives_reasons() {
        let err = |text: String| parse(&text).unwrap_err();
        assert!(err(MEMINFO.replace("MemAvailable", "MemAvail")).contains("no `MemAvailable` line"));
        assert!(err(MEMINFO.replace("4008 kB", "4008 MB")).contains("expected `<number> kB`"));
        assert!(err(MEMINFO.replace("4008 kB", "4x08 kB")).contains("`4x08`"));
        let huge = MEMINFO.replace("4008 kB", "18446744073709551615 kB");
        assert!(err(huge).contains("out of range"));
    }
}
