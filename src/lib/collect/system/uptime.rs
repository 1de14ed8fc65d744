//! `uptime`: seconds since boot.

use super::{parse_f64, Stamp};
use crate::metric::{Metric, Value};

/// Seconds since boot: the first field.
pub fn parse(text: &str) -> Result<f64, String> {
    let field = text
        .split_ascii_whitespace()
        .next()
        .ok_or("the file is empty")?;
    parse_f64(field)
}

pub fn emit(seconds: f64, at: Stamp, out: &mut Vec<Metric>) {
    out.push(
        at.gauge("system.uptime", Value::F64(seconds))
            .with_unit("s"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_emits() {
        let up = parse("300.42 454.57\n").unwrap();
        assert_eq!(up, 300.42);
        let mut out = Vec::new();
        emit(up, Stamp { ts: 9, boot_ns: 0 }, &mut out);
        assert_eq!(out.len(), 1);
        let m = &out[0];
        assert_eq!(
            (m.name.as_str(), m.value, m.unit.as_str(), m.ts),
            ("system.uptime", Some(Value::F64(300.42)), "s", 9)
        );
    }

    #[test]
    fn malformed_uptime_gives_reasons() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("up 1\n").unwrap_err().contains("`up`"));
    }
}
