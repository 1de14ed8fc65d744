//! `net/sockstat`: sockets in use, of the collector's network namespace (`used` is global).
//!
//! Gauges, untagged:
//!
//! | name | unit | from |
//! |---|---|---|
//! | `system.sockets.used` | `{socket}` | `sockets: used` |
//! | `system.sockets.tcp.in_use` | `{socket}` | `TCP: inuse` |
//! | `system.sockets.tcp.orphan` | `{socket}` | `TCP: orphan` |
//! | `system.sockets.tcp.time_wait` | `{socket}` | `TCP: tw` |
//! | `system.sockets.tcp.allocated` | `{socket}` | `TCP: alloc` |
//! | `system.sockets.tcp.memory` | `{page}` | `TCP: mem` (pages, as the kernel counts them) |
//! | `system.sockets.udp.in_use` | `{socket}` | `UDP: inuse` |

use super::{parse_u64, Stamp};
use crate::metric::{Metric, Value};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockStat {
    pub used: u64,
    pub tcp_in_use: u64,
    pub tcp_orphan: u64,
    pub tcp_time_wait: u64,
    pub tcp_allocated: u64,
    pub tcp_memory_pages: u64,
    pub udp_in_use: u64,
}

pub fn parse(text: &str) -> Result<SockStat, String> {
    Ok(SockStat {
        used: field(text, "sockets", "used")?,
        tcp_in_use: field(text, "TCP", "inuse")?,
        tcp_orphan: field(text, "TCP", "orphan")?,
        tcp_time_wait: field(text, "TCP", "tw")?,
        tcp_allocated: field(text, "TCP", "alloc")?,
        tcp_memory_pages: field(text, "TCP", "mem")?,
        udp_in_use: field(text, "UDP", "inuse")?,
    })
}

/// The number after `key` on the `proto: key value key value ...` line.
fn field(text: &str, proto: &str, key: &str) -> Result<u64, String> {
    let rest = text
        .lines()
        .find_map(|line| line.strip_prefix(proto)?.strip_prefix(':'))
        .ok_or_else(|| format!("no `{proto}:` line"))?;
    let mut fields = rest.split_ascii_whitespace();
    while let Some(k) = fields.next() {
        let v = fields.next();
        if k == key {
            let v = v.ok_or_else(|| format!("`{proto}: {key}` has no value"))?;
            return parse_u64(v).map_err(|e| format!("`{proto}: {key}`: {e}"));
        }
    }
    Err(format!("no `{key}` on the `{proto}:` line"))
}

pub fn emit(s: &SockStat, at: Stamp, out: &mut Vec<Metric>) {
    let gauges = [
        ("system.sockets.used", "{socket}", s.used),
        ("system.sockets.tcp.in_use", "{socket}", s.tcp_in_use),
        ("system.sockets.tcp.orphan", "{socket}", s.tcp_orphan),
        ("system.sockets.tcp.time_wait", "{socket}", s.tcp_time_wait),
        ("system.sockets.tcp.allocated", "{socket}", s.tcp_allocated),
        ("system.sockets.tcp.memory", "{page}", s.tcp_memory_pages),
        ("system.sockets.udp.in_use", "{socket}", s.udp_in_use),
    ];
    for (name, unit, v) in gauges {
        out.push(at.gauge(name, Value::U64(v)).with_unit(unit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Kind;

    /// From this machine, with busier TCP numbers.
    const SOCKSTAT: &str = "\
sockets: used 11
TCP: inuse 7 orphan 1 tw 12 alloc 9 mem 3
UDP: inuse 2 mem 0
UDPLITE: inuse 0
RAW: inuse 0
FRAG: inuse 0 memory 0
";

    #[test]
    fn parses_and_emits() {
        let s = parse(SOCKSTAT).unwrap();
        assert_eq!(
            s,
            SockStat {
                used: 11,
                tcp_in_use: 7,
                tcp_orphan: 1,
                tcp_time_wait: 12,
                tcp_allocated: 9,
                tcp_memory_pages: 3,
                udp_in_use: 2,
            }
        );
        let mut out = Vec::new();
        emit(&s, Stamp { ts: 4, boot_ns: 0 }, &mut out);
        let got: Vec<_> = out
            .iter()
            .map(|m| (m.name.as_str(), m.unit.as_str(), m.value))
            .collect();
        assert_eq!(
            got[0],
            ("system.sockets.used", "{socket}", Some(Value::U64(11)))
        );
        assert_eq!(
            got[3],
            (
                "system.sockets.tcp.time_wait",
                "{socket}",
                Some(Value::U64(12))
            )
        );
        assert_eq!(
            got[5],
            ("system.sockets.tcp.memory", "{page}", Some(Value::U64(3)))
        );
        assert_eq!(
            got[6],
            ("system.sockets.udp.in_use", "{socket}", Some(Value::U64(2)))
        );
        assert_eq!(out.len(), 7);
        assert!(out
            .iter()
            .all(|m| m.kind == Kind::Gauge && m.ts == 4 && m.validate().is_ok()));
    }

    #[test]
    fn udplite_is_not_udp() {
        // `UDPLITE: inuse` must not be read as `UDP: inuse`.
        let text = "sockets: used 1\nTCP: inuse 0 orphan 0 tw 0 alloc 0 mem 0\nUDPLITE: inuse 5\nUDP: inuse 2 mem 0\n";
        assert_eq!(parse(text).unwrap().udp_in_use, 2);
    }

    #[test]
    fn malformed_sockstat_gives_reasons() {
        assert!(parse("").unwrap_err().contains("`sockets:`"));
        let no_tw = SOCKSTAT.replace(" tw 12", "");
        assert!(parse(&no_tw).unwrap_err().contains("no `tw`"));
        let bad = SOCKSTAT.replace("alloc 9", "alloc z");
        assert!(parse(&bad).unwrap_err().contains("`z`"));
        let cut = "sockets: used 1\nTCP: inuse 0 orphan 0 tw 0 alloc 0 mem\n";
        assert!(parse(cut).unwrap_err().contains("no value"));
    }
}
