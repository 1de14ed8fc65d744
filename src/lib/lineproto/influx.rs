//! InfluxDB line protocol (`measurement[,k=v…] field=value[,…] [timestamp]`) into tlm
//! metrics: one gauge per numeric field, named `measurement.field` (the inverse of the
//! encoder's split at the last dot), with the line's tags.
//!
//! Integers (`5i`, `5u`) stay exact; booleans become 1 or 0; string fields carry text, which
//! tlm never puts in a value, so they are left out (and a line with nothing else is an
//! error, so it is counted). The timestamp is in `precision` units, nanoseconds by default.

use super::number;
use crate::metric::{Metric, Value};

/// Parses one line (without its newline) into `out`; `now_ns` stamps lines without a time;
/// `unit_ns` is the timestamp's unit in nanoseconds (1 for `ns`).
pub fn parse(line: &str, now_ns: i64, unit_ns: i64, out: &mut Vec<Metric>) -> Result<(), String> {
    let (series, rest) = split_unescaped(line, b' ').ok_or("no fields")?;
    let rest = rest.trim_start_matches(' ');
    let (fields, ts) = match split_fields_end(rest) {
        (fields, Some(ts)) => {
            let t: i64 = ts
                .trim()
                .parse()
                .map_err(|_| format!("bad timestamp `{ts}`"))?;
            (
                fields,
                t.checked_mul(unit_ns).ok_or("timestamp out of range")?,
            )
        }
        (fields, None) => (fields, now_ns),
    };
    let (measurement, tags) = match split_unescaped(series, b',') {
        Some((m, tags)) => (m, Some(tags)),
        None => (series, None),
    };
    let measurement = unescape(measurement);
    if measurement.is_empty() {
        return Err("empty measurement".into());
    }
    let start = out.len();
    let mut rest = fields;
    while !rest.is_empty() {
        let (field, tail) = split_field(rest)?;
        rest = tail;
        let (key, value) =
            split_unescaped(field, b'=').ok_or_else(|| format!("field `{field}` has no `=`"))?;
        let Some(value) = field_value(value)? else {
            continue;
        };
        let name = format!("{measurement}.{}", unescape(key));
        out.push(Metric::gauge(&name, value, ts));
    }
    if out.len() == start {
        return Err("no numeric field".into());
    }
    if let Some(tags) = tags {
        let mut pairs = Vec::new();
        let mut rest = tags;
        loop {
            let (pair, tail) = split_unescaped(rest, b',').unwrap_or((rest, ""));
            let (k, v) =
                split_unescaped(pair, b'=').ok_or_else(|| format!("tag `{pair}` has no `=`"))?;
            pairs.push((unescape(k), unescape(v)));
            if tail.is_empty() {
                break;
            }
            rest = tail;
        }
        for m in &mut out[start..] {
            for (k, v) in &pairs {
                m.tags.push(k, v);
            }
            m.tags.normalize();
        }
    }
    Ok(())
}

/// A field value: `Some` number, `None` for a string (skipped), or why it is malformed.
fn field_value(v: &str) -> Result<Option<Value>, String> {
    let bad = || format!("bad field value `{v}`");
    if v.starts_with('"') {
        return Ok(None);
    }
    let value = match v {
        "t" | "T" | "true" | "True" | "TRUE" => Value::U64(1),
        "f" | "F" | "false" | "False" | "FALSE" => Value::U64(0),
        _ if v.ends_with('i') || v.ends_with('u') => {
            let digits = &v[..v.len() - 1];
            match number(digits) {
                Some(n @ (Value::U64(_) | Value::I64(_))) => n,
                _ => return Err(bad()),
            }
        }
        _ => Value::F64(v.parse::<f64>().map_err(|_| bad())?),
    };
    Ok(Some(value))
}

/// Splits at the first `sep` that is not escaped by a backslash.
fn split_unescaped(s: &str, sep: u8) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == sep => return Some((&s[..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Takes the first field off `rest` (up to a `,` outside quotes) and returns it with the rest.
fn split_field(rest: &str) -> Result<(&str, &str), String> {
    let b = rest.as_bytes();
    let (mut i, mut quoted) = (0, false);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' => quoted = !quoted,
            b',' if !quoted => return Ok((&rest[..i], &rest[i + 1..])),
            _ => {}
        }
        i += 1;
    }
    if quoted {
        return Err("unclosed string field".into());
    }
    Ok((rest, ""))
}

/// The fields and the timestamp after them, if any: the last space outside quotes.
fn split_fields_end(rest: &str) -> (&str, Option<&str>) {
    let b = rest.as_bytes();
    let (mut i, mut quoted, mut last_space) = (0, false, None);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' => quoted = !quoted,
            b' ' if !quoted => last_space = Some(i),
            _ => {}
        }
        i += 1;
    }
    match last_space {
        Some(at) => (rest[..at].trim_end(), Some(&rest[at + 1..])),
        None => (rest, None),
    }
}

fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(n @ (',' | '=' | ' ' | '\\' | '"'))) => {
                out.push(n);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(line: &str) -> Result<Vec<Metric>, String> {
        let mut out = Vec::new();
        parse(line, 7, 1, &mut out)?;
        Ok(out)
    }

    #[test]
    fn fields_become_gauges_with_the_line_tags() {
        let ms = all("cpu,host=h1,region=eu\\ west usage_idle=92.5,count=3i,big=18446744073709551615u,up=t 1700000000000000000").unwrap();
        let got: Vec<(String, Option<Value>)> =
            ms.iter().map(|m| (m.name.clone(), m.value)).collect();
        assert_eq!(
            got,
            [
                ("cpu.usage_idle".to_string(), Some(Value::F64(92.5))),
                ("cpu.count".to_string(), Some(Value::U64(3))),
                ("cpu.big".to_string(), Some(Value::U64(u64::MAX))),
                ("cpu.up".to_string(), Some(Value::U64(1))),
            ]
        );
        let tags: Vec<(&str, &str)> = ms[0].tags.iter().collect();
        assert_eq!(tags, [("host", "h1"), ("region", "eu west")]);
        assert!(ms.iter().all(|m| m.ts == 1_700_000_000_000_000_000));
    }

    #[test]
    fn strings_are_left_out_and_precision_scales() {
        let mut out = Vec::new();
        parse(
            "svc,a=b msg=\"a, b=c \\\"x\\\"\",v=-2i 1700000000",
            7,
            1_000_000_000,
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].name.as_str(), out[0].value),
            ("svc.v", Some(Value::I64(-2)))
        );
        assert_eq!(out[0].ts, 1_700_000_000_000_000_000);
        let m = &all("m\\,x v=1").unwrap()[0];
        assert_eq!((m.name.as_str(), m.ts), ("m,x.v", 7));
    }

    #[test]
    fn bad_lines_say_why() {
        for (line, why) in [
            ("cpu", "no fields"),
            ("cpu v", "no `=`"),
            ("cpu v=abc", "bad field value"),
            ("cpu v=1.5i", "bad field value"),
            ("cpu msg=\"only text\"", "no numeric field"),
            ("cpu v=1 soon", "bad timestamp"),
            (",a=b v=1", "empty measurement"),
            ("cpu,a v=1", "tag `a` has no `=`"),
            ("cpu s=\"open", "unclosed"),
        ] {
            let e = all(line).unwrap_err();
            assert!(e.contains(why), "{line:?}: {e}");
        }
    }
}
