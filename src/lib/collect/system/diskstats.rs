//! `diskstats`: I/O per block device (whole disks and partitions; `loop*` and `ram*` skipped).
//!
//! Metrics, each tagged `device` (the kernel name, `sda`, `sda1`, `nvme0n1`, `dm-0`); all are
//! counters cumulative since boot except the gauge `pending_operations`. The names follow the
//! OpenTelemetry host metrics, with `direction` = `read` | `write`:
//!
//! | name | unit | from |
//! |---|---|---|
//! | `system.disk.operations` | `{operation}` | reads / writes completed |
//! | `system.disk.merged` | `{operation}` | reads / writes merged |
//! | `system.disk.io` | `By` | sectors read / written × 512 (the kernel's sector is always 512 bytes) |
//! | `system.disk.operation_time` | `ms` | time spent reading / writing |
//! | `system.disk.pending_operations` | `{operation}` | I/Os in progress (gauge, no direction) |
//! | `system.disk.io_time` | `ms` | time spent doing I/O (no direction) |
//! | `system.disk.weighted_io_time` | `ms` | weighted time doing I/O (no direction) |
//!
//! The discard and flush columns of newer kernels are not emitted.

use super::{parse_u64, Stamp};
use crate::metric::{Metric, Value};

/// The size `/proc/diskstats` counts sectors in, whatever the device's own sector size.
const SECTOR_BYTES: u64 = 512;

/// The first 11 statistics columns of one device line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskStats {
    pub device: String,
    pub reads: u64,
    pub reads_merged: u64,
    pub sectors_read: u64,
    pub read_ms: u64,
    pub writes: u64,
    pub writes_merged: u64,
    pub sectors_written: u64,
    pub write_ms: u64,
    pub in_progress: u64,
    pub io_ms: u64,
    pub weighted_io_ms: u64,
}

/// Whether a device's lines are skipped: loop devices and RAM disks.
fn skipped(device: &str) -> bool {
    device.starts_with("loop") || device.starts_with("ram")
}

pub fn parse(text: &str) -> Result<Vec<DiskStats>, String> {
    let mut disks = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        // major, minor, name
        let (Some(_), Some(_), Some(device)) = (fields.next(), fields.next(), fields.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(format!("`{}`: expected major, minor and name", line.trim()));
        };
        if skipped(device) {
            continue;
        }
        let mut col = [0u64; 11];
        for (i, slot) in col.iter_mut().enumerate() {
            let field = fields
                .next()
                .ok_or_else(|| format!("`{device}` line has {i} statistics, expected 11"))?;
            *slot = parse_u64(field).map_err(|e| format!("`{device}` line: {e}"))?;
        }
        disks.push(DiskStats {
            device: device.to_owned(),
            reads: col[0],
            reads_merged: col[1],
            sectors_read: col[2],
            read_ms: col[3],
            writes: col[4],
            writes_merged: col[5],
            sectors_written: col[6],
            write_ms: col[7],
            in_progress: col[8],
            io_ms: col[9],
            weighted_io_ms: col[10],
        });
    }
    Ok(disks)
}

pub fn emit(disks: &[DiskStats], at: Stamp, out: &mut Vec<Metric>) {
    let bytes = |sectors: u64| Value::U64(sectors.saturating_mul(SECTOR_BYTES));
    for d in disks {
        let per_direction = [
            ("system.disk.operations", "{operation}", d.reads, d.writes),
            (
                "system.disk.merged",
                "{operation}",
                d.reads_merged,
                d.writes_merged,
            ),
            ("system.disk.operation_time", "ms", d.read_ms, d.write_ms),
        ];
        for (name, unit, read, write) in per_direction {
            for (direction, v) in [("read", read), ("write", write)] {
                let m = at.since_boot(name, Value::U64(v)).with_unit(unit);
                out.push(
                    m.with_tag("device", &d.device)
                        .with_tag("direction", direction),
                );
            }
        }
        for (direction, v) in [
            ("read", bytes(d.sectors_read)),
            ("write", bytes(d.sectors_written)),
        ] {
            let m = at.since_boot("system.disk.io", v).with_unit("By");
            out.push(
                m.with_tag("device", &d.device)
                    .with_tag("direction", direction),
            );
        }
        let pending = at
            .gauge("system.disk.pending_operations", Value::U64(d.in_progress))
            .with_unit("{operation}");
        out.push(pending.with_tag("device", &d.device));
        for (name, v) in [
            ("system.disk.io_time", d.io_ms),
            ("system.disk.weighted_io_time", d.weighted_io_ms),
        ] {
            let m = at.since_boot(name, Value::U64(v)).with_unit("ms");
            out.push(m.with_tag("device", &d.device));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Kind, Temporality};

    /// From this machine (kernel 6.18: 17 statistics columns), plus a partition line and an
    /// old-style 11-column line.
    const DISKSTATS: &str = "\
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       1 loop1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 3238898 50829 180596154 5414345 162372 179921 161425528 535058 0 270060 5987503 155302 52 120906568 36851 11837 1247
 254       1 vda1 1200 3 52000 800 10 0 80 5 2 700 805 0 0 0 0 0 0
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   8       0 sda 10 1 20 30 40 2 50 60 1 70 90
";

    const AT: Stamp = Stamp { ts: 9, boot_ns: 3 };

    fn find<'a>(out: &'a [Metric], name: &str, tags: &[(&str, &str)]) -> &'a Metric {
        out.iter()
            .find(|m| m.name == name && tags.iter().all(|&(k, v)| m.tags.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} {tags:?}"))
    }

    #[test]
    fn parses_disks_and_partitions_skipping_loop_and_ram() {
        let disks = parse(DISKSTATS).unwrap();
        let names: Vec<_> = disks.iter().map(|d| d.device.as_str()).collect();
        assert_eq!(names, ["vda", "vda1", "zram0", "sda"]);
        assert_eq!(
            disks[0],
            DiskStats {
                device: "vda".into(),
                reads: 3238898,
                reads_merged: 50829,
                sectors_read: 180596154,
                read_ms: 5414345,
                writes: 162372,
                writes_merged: 179921,
                sectors_written: 161425528,
                write_ms: 535058,
                in_progress: 0,
                io_ms: 270060,
                weighted_io_ms: 5987503,
            }
        );
        assert_eq!(disks[3].weighted_io_ms, 90);
    }

    #[test]
    fn emits_bytes_times_and_pending() {
        let mut out = Vec::new();
        emit(&parse(DISKSTATS).unwrap(), AT, &mut out);
        assert_eq!(out.len(), 4 * 11);
        assert!(out.iter().all(|m| m.validate().is_ok() && m.ts == 9));
        let io = find(
            &out,
            "system.disk.io",
            &[("device", "vda"), ("direction", "read")],
        );
        assert_eq!(io.value, Some(Value::U64(180596154 * 512)));
        assert_eq!(
            (io.kind, io.temporality, io.start_ts, io.unit.as_str()),
            (Kind::Counter, Some(Temporality::Cumulative), Some(3), "By")
        );
        let w = find(
            &out,
            "system.disk.io",
            &[("device", "vda"), ("direction", "write")],
        );
        assert_eq!(w.value, Some(Value::U64(161425528 * 512)));
        let ops = find(
            &out,
            "system.disk.operations",
            &[("device", "sda"), ("direction", "write")],
        );
        assert_eq!(
            (ops.value, ops.unit.as_str()),
            (Some(Value::U64(40)), "{operation}")
        );
        let t = find(
            &out,
            "system.disk.operation_time",
            &[("device", "vda"), ("direction", "read")],
        );
        assert_eq!(
            (t.value, t.unit.as_str()),
            (Some(Value::U64(5414345)), "ms")
        );
        let merged = find(
            &out,
            "system.disk.merged",
            &[("device", "sda"), ("direction", "read")],
        );
        assert_eq!(merged.value, Some(Value::U64(1)));
        let p = find(
            &out,
            "system.disk.pending_operations",
            &[("device", "vda1")],
        );
        assert_eq!((p.kind, p.value), (Kind::Gauge, Some(Value::U64(2))));
        assert_eq!(p.tags.len(), 1);
        let io_time = find(&out, "system.disk.io_time", &[("device", "vda")]);
        assert_eq!(io_time.value, Some(Value::U64(270060)));
        let weighted = find(&out, "system.disk.weighted_io_time", &[("device", "vda")]);
        assert_eq!(weighted.value, Some(Value::U64(5987503)));
    }

    #[test]
    fn malformed_diskstats_gives_reasons() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("   8 0\n")
            .unwrap_err()
            .contains("major, minor and name"));
        let short = parse("   8 0 sda 1 2 3\n").unwrap_err();
        assert!(
            short.contains("`sda`") && short.contains("3 statistics"),
            "{short}"
        );
        let bad = parse("   8 0 sda 1 2 3 4 5 6 7 x 9 10 11\n").unwrap_err();
        assert!(bad.contains("`x`"), "{bad}");
    }
}
