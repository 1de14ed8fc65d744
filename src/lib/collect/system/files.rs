//! `sys/fs/file-nr` and `sys/kernel/random/entropy_avail`: file handles and entropy.
//!
//! Gauges, untagged:
//!
//! | name | unit | from |
//! |---|---|---|
//! | `system.files.open` | `{file}` | `file-nr`, first field: file handles allocated (in use) |
//! | `system.files.max` | `{file}` | `file-nr`, third field: the limit (`fs.file-max`) |
//! | `system.entropy.available` | `bit` | `entropy_avail` (a constant 256 since Linux 5.18) |
//!
//! The second `file-nr` field (allocated but unused handles) has been 0 since Linux 2.6 and is
//! not emitted.

use super::{parse_u64, Stamp};
use crate::metric::{Metric, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileNr {
    pub open: u64,
    pub max: u64,
}

/// `file-nr`: `allocated unused max`.
pub fn parse_file_nr(text: &str) -> Result<FileNr, String> {
    let mut fields = text.split_ascii_whitespace();
    let mut next = |what: &str| fields.next().ok_or_else(|| format!("no {what} field"));
    let open = parse_u64(next("allocated")?)?;
    parse_u64(next("unused")?)?;
    let max = parse_u64(next("maximum")?)?;
    Ok(FileNr { open, max })
}

/// `entropy_avail`: one number of bits.
pub fn parse_entropy(text: &str) -> Result<u64, String> {
    let field = text
        .split_ascii_whitespace()
        .next()
        .ok_or("the file is empty")?;
    parse_u64(field)
}

pub fn emit_file_nr(f: &FileNr, at: Stamp, out: &mut Vec<Metric>) {
    out.push(
        at.gauge("system.files.open", Value::U64(f.open))
            .with_unit("{file}"),
    );
    out.push(
        at.gauge("system.files.max", Value::U64(f.max))
            .with_unit("{file}"),
    );
}

pub fn emit_entropy(bits: u64, at: Stamp, out: &mut Vec<Metric>) {
    out.push(
        at.gauge("system.entropy.available", Value::U64(bits))
            .with_unit("bit"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Kind;

    const AT: Stamp = Stamp { ts: 6, boot_ns: 0 };

    #[test]
    fn parses_and_emits_file_nr() {
        // This machine's `/proc/sys/fs/file-nr` (tab-separated).
        let f = parse_file_nr("377\t0\t2465610\n").unwrap();
        assert_eq!(
            f,
            FileNr {
                open: 377,
                max: 2465610
            }
        );
        let mut out = Vec::new();
        emit_file_nr(&f, AT, &mut out);
        let got: Vec<_> = out.iter().map(|m| (m.name.as_str(), m.value)).collect();
        assert_eq!(
            got,
            [
                ("system.files.open", Some(Value::U64(377))),
                ("system.files.max", Some(Value::U64(2465610))),
            ]
        );
        assert!(out
            .iter()
            .all(|m| m.kind == Kind::Gauge && m.unit == "{file}" && m.ts == 6));
    }

    #[test]
    fn max_may_be_huge() {
        let f = parse_file_nr("1024\t0\t9223372036854775807\n").unwrap();
        assert_eq!(f.max, 9223372036854775807);
    }

    #[test]
    fn parses_and_emits_entropy() {
        let bits = parse_entropy("256\n").unwrap();
        let mut out = Vec::new();
        emit_entropy(bits, AT, &mut out);
        let m = &out[0];
        assert_eq!(
            (m.name.as_str(), m.unit.as_str(), m.value, m.kind),
            (
                "system.entropy.available",
                "bit",
                Some(Value::U64(256)),
                Kind::Gauge
            )
        );
    }

    #[test]
    fn malformed_files_give_reasons() {
        assert!(parse_file_nr("").unwrap_err().contains("allocated"));
        assert!(parse_file_nr("1 0\n").unwrap_err().contains("maximum"));
        assert!(parse_file_nr("1 x 3\n").unwrap_err().contains("`x`"));
        assert!(parse_entropy("").unwrap_err().contains("empty"));
        assert!(parse_entropy("-1\n").unwrap_err().contains("`-1`"));
    }
}
