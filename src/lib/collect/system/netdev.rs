//! `net/dev`: traffic per network interface, of the collector's network namespace.
//!
//! Metrics, each tagged `interface` and `direction` = `receive` | `transmit`, all counters
//! cumulative since boot (an interface created later restarts from 0, as in the file):
//!
//! | name | unit | column |
//! |---|---|---|
//! | `system.network.io` | `By` | bytes |
//! | `system.network.packets` | `{packet}` | packets |
//! | `system.network.errors` | `{error}` | errs |
//! | `system.network.dropped` | `{packet}` | drop |
//!
//! With an interface filter set (`SystemCollector::set_interfaces`), only interfaces whose
//! name matches are emitted.

use globset::GlobSet;

use super::{parse_u64, Stamp};
use crate::metric::{Metric, Value};

/// The counters used of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub bytes: u64,
    pub packets: u64,
    pub errors: u64,
    pub dropped: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub receive: Traffic,
    pub transmit: Traffic,
}

/// Receive and transmit have 8 columns each; bytes, packets, errs and drop come first in both.
const COLUMNS: usize = 16;

pub fn parse(text: &str) -> Result<Vec<Interface>, String> {
    let mut interfaces = Vec::new();
    for line in text.lines() {
        // The two header lines hold `|`; interface lines `name: numbers`. Names hold no `:`
        // (the kernel refuses them), while counters may follow the colon without a space.
        if line.contains('|') || line.trim().is_empty() {
            continue;
        }
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| format!("`{}`: expected `interface: counters`", line.trim()))?;
        let name = name.trim();
        let mut col = [0u64; COLUMNS];
        let mut fields = rest.split_ascii_whitespace();
        for (i, slot) in col.iter_mut().enumerate() {
            let field = fields
                .next()
                .ok_or_else(|| format!("`{name}` line has {i} columns, expected {COLUMNS}"))?;
            *slot = parse_u64(field).map_err(|e| format!("`{name}` line: {e}"))?;
        }
        interfaces.push(Interface {
            name: name.to_owned(),
            receive: Traffic {
                bytes: col[0],
                packets: col[1],
                errors: col[2],
                dropped: col[3],
            },
            transmit: Traffic {
                bytes: col[8],
                packets: col[9],
                errors: col[10],
                dropped: col[11],
            },
        });
    }
    Ok(interfaces)
}

/// Appends the metrics of the interfaces that `only` matches (all when `None`).
pub fn emit(interfaces: &[Interface], only: Option<&GlobSet>, at: Stamp, out: &mut Vec<Metric>) {
    for i in interfaces {
        if only.is_some_and(|set| !set.is_match(&i.name)) {
            continue;
        }
        for (direction, t) in [("receive", i.receive), ("transmit", i.transmit)] {
            let counters = [
                ("system.network.io", "By", t.bytes),
                ("system.network.packets", "{packet}", t.packets),
                ("system.network.errors", "{error}", t.errors),
                ("system.network.dropped", "{packet}", t.dropped),
            ];
            for (name, unit, v) in counters {
                let m = at.since_boot(name, Value::U64(v)).with_unit(unit);
                out.push(
                    m.with_tag("interface", &i.name)
                        .with_tag("direction", direction),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Kind, Temporality};

    /// From this machine, with non-zero errors and drops put into `eth0`, and a `veth` line
    /// whose byte counter runs into the colon, as wide counters do.
    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 59224396768 83795194    0    0    0     0          0         0 59224396768 83795194    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 238784596   10992    3    4    0     0          0         0   837279    7461    5    6    0     0       0          0
veth1a2b3c:123456789012 7 0 0 0 0 0 0 9 8 0 0 0 0 0 0
";

    const AT: Stamp = Stamp { ts: 9, boot_ns: 3 };

    fn value(out: &[Metric], name: &str, interface: &str, direction: &str) -> Option<Value> {
        out.iter()
            .find(|m| {
                m.name == name
                    && m.tags.get("interface") == Some(interface)
                    && m.tags.get("direction") == Some(direction)
            })
            .and_then(|m| m.value)
    }

    #[test]
    fn parses_interfaces() {
        let ifs = parse(NET_DEV).unwrap();
        let names: Vec<_> = ifs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["lo", "ifb0", "eth0", "veth1a2b3c"]);
        assert_eq!(
            ifs[2].receive,
            Traffic {
                bytes: 238784596,
                packets: 10992,
                errors: 3,
                dropped: 4
            }
        );
        assert_eq!(
            ifs[2].transmit,
            Traffic {
                bytes: 837279,
                packets: 7461,
                errors: 5,
                dropped: 6
            }
        );
        assert_eq!(ifs[3].receive.bytes, 123456789012);
        assert_eq!(ifs[3].transmit.bytes, 9);
    }

    #[test]
    fn emits_counters_per_interface_and_direction() {
        let mut out = Vec::new();
        emit(&parse(NET_DEV).unwrap(), None, AT, &mut out);
        assert_eq!(out.len(), 4 * 2 * 4);
        assert!(out.iter().all(|m| m.validate().is_ok()
            && m.kind == Kind::Counter
            && m.temporality == Some(Temporality::Cumulative)
            && m.start_ts == Some(3)));
        let v = |name, i, d| value(&out, name, i, d);
        assert_eq!(
            v("system.network.io", "lo", "receive"),
            Some(Value::U64(59224396768))
        );
        assert_eq!(
            v("system.network.packets", "eth0", "transmit"),
            Some(Value::U64(7461))
        );
        assert_eq!(
            v("system.network.errors", "eth0", "receive"),
            Some(Value::U64(3))
        );
        assert_eq!(
            v("system.network.dropped", "eth0", "transmit"),
            Some(Value::U64(6))
        );
        let io = out.iter().find(|m| m.name == "system.network.io").unwrap();
        assert_eq!(io.unit, "By");
    }

    #[test]
    fn filter_keeps_matching_interfaces() {
        let mut b = globset::GlobSetBuilder::new();
        b.add(globset::Glob::new("eth*").unwrap());
        b.add(globset::Glob::new("lo").unwrap());
        let set = b.build().unwrap();
        let mut out = Vec::new();
        emit(&parse(NET_DEV).unwrap(), Some(&set), AT, &mut out);
        let mut names: Vec<_> = out.iter().filter_map(|m| m.tags.get("interface")).collect();
        names.dedup();
        assert_eq!(names, ["lo", "eth0"]);
    }

    #[test]
    fn malformed_net_dev_gives_reasons() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("eth0 1 2 3\n").unwrap_err().contains("expected"));
        let short = parse("eth0: 1 2 3\n").unwrap_err();
        assert!(short.contains("3 columns"), "{short}");
        let bad = parse("eth0: 1 2 3 4 5 6 7 8 9 10 -1 12 13 14 15 16\n").unwrap_err();
        assert!(bad.contains("`-1`"), "{bad}");
    }
}
