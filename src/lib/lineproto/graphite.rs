//! Graphite plaintext lines (`path[;tag=value…] value [timestamp]`) into tlm metrics.
//!
//! Graphite has no kinds: every point becomes a gauge, as carbon stores it. A value keeps
//! its exactness when it is an integer; the timestamp is Unix seconds (a fraction is kept to
//! the nanosecond), and `-1` or a missing timestamp means "now", as carbon reads it.

use super::number;
use crate::metric::Metric;

/// Parses one line (without its newline) into `out`; `now_ns` stamps lines without a time.
pub fn parse(line: &str, now_ns: i64, out: &mut Vec<Metric>) -> Result<(), String> {
    let mut parts = line.split_ascii_whitespace();
    let path = parts.next().ok_or("empty line")?;
    let value = parts.next().ok_or("no value after the path")?;
    let ts = match parts.next() {
        None | Some("-1") => now_ns,
        Some(t) => seconds_to_ns(t).ok_or_else(|| format!("bad timestamp `{t}`"))?,
    };
    if parts.next().is_some() {
        return Err("more than three fields".into());
    }
    let value = number(value).ok_or_else(|| format!("bad value `{value}`"))?;
    let mut pieces = path.split(';');
    let name = pieces.next().unwrap_or_default();
    if name.is_empty() {
        return Err("empty path".into());
    }
    let mut m = Metric::gauge(name, value, ts);
    for tag in pieces {
        let (k, v) = tag
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| format!("bad tag `{tag}` (expected key=value)"))?;
        m.tags.push(k, v);
    }
    m.tags.normalize();
    out.push(m);
    Ok(())
}

/// `1700000000` or `1700000000.25` seconds as nanoseconds.
fn seconds_to_ns(t: &str) -> Option<i64> {
    if let Ok(s) = t.parse::<i64>() {
        return s.checked_mul(1_000_000_000);
    }
    let f: f64 = t.parse().ok()?;
    let ns = (f * 1e9).round();
    (ns.is_finite() && ns.abs() < 9.2e18).then_some(ns as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Value;

    fn one(line: &str) -> Result<Metric, String> {
        let mut out = Vec::new();
        parse(line, 7, &mut out)?;
        Ok(out.remove(0))
    }

    #[test]
    fn plain_and_tagged_lines() {
        let m = one("servers.web1.load 0.5 1700000000").unwrap();
        assert_eq!(
            (m.name.as_str(), m.value, m.ts),
            (
                "servers.web1.load",
                Some(Value::F64(0.5)),
                1_700_000_000_000_000_000
            )
        );
        let m =
            one("if.octets;ifName=xe-0/0/1;agent=sw1 18446744073709551615 1700000000.5").unwrap();
        assert_eq!(m.value, Some(Value::U64(u64::MAX)));
        assert_eq!(m.ts, 1_700_000_000_500_000_000);
        let tags: Vec<(&str, &str)> = m.tags.iter().collect();
        assert_eq!(tags, [("agent", "sw1"), ("ifName", "xe-0/0/1")]);
    }

    #[test]
    fn missing_or_minus_one_timestamp_is_now() {
        assert_eq!(one("a 1").unwrap().ts, 7);
        assert_eq!(one("a -3 -1").unwrap().value, Some(Value::I64(-3)));
        assert_eq!(one("a 1 -1").unwrap().ts, 7);
    }

    #[test]
    fn bad_lines_say_why() {
        for (line, why) in [
            ("", "empty"),
            ("a", "no value"),
            ("a x 1", "bad value"),
            ("a 1 soon", "bad timestamp"),
            ("a 1 2 3", "more than three"),
            (";k=v 1 2", "empty path"),
            ("a;k 1 2", "bad tag"),
            ("a;k= 1 2", "bad tag"),
        ] {
            let e = one(line).unwrap_err();
            assert!(e.contains(why), "{line:?}: {e}");
        }
    }
}
