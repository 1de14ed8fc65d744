//! OpenTSDB: the telnet-style `put` lines (`put name ts value k=v …\n`, also read by
//! VictoriaMetrics and InfluxDB's OpenTSDB listeners) and the HTTP `/api/put` JSON array.
//!
//! OpenTSDB stores one number per series, so summaries and histograms are flattened like
//! Graphite's (`name.count`, `name.p99`, `name.le_0_5`, see `flatten`).

use super::flatten::Flattener;
use super::{all_or_nothing, Encoder, Unsupported};
use crate::metric::{Metric, Tags, Value};
use crate::ndjson::encode::{write_f64, write_int};

/// Encoder for OpenTSDB `put` lines.
///
/// Rules shared with `OpenTsdbJsonEncoder`: names, tag keys and tag values keep
/// `a-zA-Z0-9-_./` and Unicode letters, every other character becoming `_`. Tags with an
/// empty key or value are skipped; OpenTSDB needs at least one tag, so a metric left with
/// none is `OPENTSDB_NO_TAGS`, and one whose tag keys clash after rewriting is
/// `OPENTSDB_TAG_CLASH`. The timestamp is in milliseconds when `ts` has a sub-second part
/// (rounded towards the past), else in seconds. Integers are exact up to `i64::MAX`; larger
/// `U64` values are written as doubles, since OpenTSDB parses integers as Java longs. NaN and
/// infinities are `Unsupported` as in the Graphite encoder.
#[derive(Debug, Default)]
pub struct OpenTsdbTelnetEncoder {
    series: Series,
}

/// Encoder for the OpenTSDB HTTP API (`POST /api/put`): each point is an object
/// `{"metric":…,"timestamp":…,"value":…,"tags":{…}}`; the body holds them each preceded by a
/// comma, and `seal` turns the body into the JSON array. Naming and values as for
/// `OpenTsdbTelnetEncoder`.
#[derive(Debug, Default)]
pub struct OpenTsdbJsonEncoder {
    series: Series,
}

impl Encoder for OpenTsdbTelnetEncoder {
    fn stateless(&self) -> bool {
        true
    }

    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        all_or_nothing(out, |out| {
            let ts = timestamp(m.ts);
            self.series.points(m, |name, tags, v| {
                out.extend_from_slice(b"put ");
                out.extend_from_slice(name);
                out.push(b' ');
                write_int(out, ts);
                out.push(b' ');
                write_value(out, v);
                for (k, v) in tags {
                    out.push(b' ');
                    out.extend_from_slice(k);
                    out.push(b'=');
                    out.extend_from_slice(v);
                }
                out.push(b'\n');
            })
        })
    }
}

impl Encoder for OpenTsdbJsonEncoder {
    fn stateless(&self) -> bool {
        true
    }

    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        // Cleaned names hold only letters, digits and `-_./`, so they are JSON strings
        // needing no escapes.
        all_or_nothing(out, |out| {
            let ts = timestamp(m.ts);
            self.series.points(m, |name, tags, v| {
                out.extend_from_slice(b",{\"metric\":\"");
                out.extend_from_slice(name);
                out.extend_from_slice(b"\",\"timestamp\":");
                write_int(out, ts);
                out.extend_from_slice(b",\"value\":");
                write_value(out, v);
                out.extend_from_slice(b",\"tags\":{");
                for (i, (k, v)) in tags.enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.push(b'"');
                    out.extend_from_slice(k);
                    out.extend_from_slice(b"\":\"");
                    out.extend_from_slice(v);
                    out.push(b'"');
                }
                out.extend_from_slice(b"}}");
            })
        })
    }

    fn seal(&mut self, body: &[u8], out: &mut Vec<u8>) {
        out.push(b'[');
        out.extend_from_slice(body.strip_prefix(b",").unwrap_or(body));
        out.push(b']');
    }

    fn content_type(&self) -> &'static str {
        "application/json"
    }
}

/// The cleaned name and tags of the metric in hand, shared by both encoders.
#[derive(Debug, Default)]
struct Series {
    flat: Flattener,
    name: Vec<u8>,
    /// Cleaned tag keys and values, back to back; `spans` says where each ends.
    tags: Vec<u8>,
    /// Per tag: end of the key, end of the value, in `tags`.
    spans: Vec<(usize, usize)>,
}

impl Series {
    /// Calls `point(name, tags, value)` per flattened point.
    fn points(
        &mut self,
        m: &Metric,
        mut point: impl FnMut(&[u8], CleanTags<'_>, Value),
    ) -> Result<(), Unsupported> {
        self.clean_tags(&m.tags)?;
        self.name.clear();
        write_clean(&mut self.name, &m.name);
        let Series {
            flat,
            name,
            tags,
            spans,
        } = self;
        let base = name.len();
        flat.points(m, |suffix, v| {
            name.truncate(base);
            // Suffixes are made of `.`, `_`, letters and digits, all allowed as they are.
            name.extend_from_slice(suffix);
            point(
                name,
                CleanTags {
                    text: tags,
                    spans,
                    at: 0,
                },
                v,
            );
        })
    }

    fn clean_tags(&mut self, tags: &Tags) -> Result<(), Unsupported> {
        self.tags.clear();
        self.spans.clear();
        let mut renamed = false;
        for (k, v) in tags.iter() {
            if k.is_empty() || v.is_empty() {
                continue;
            }
            renamed |= write_clean(&mut self.tags, k);
            let key_end = self.tags.len();
            write_clean(&mut self.tags, v);
            self.spans.push((key_end, self.tags.len()));
        }
        if self.spans.is_empty() {
            return Err(Unsupported::OPENTSDB_NO_TAGS);
        }
        // Tag keys are unique, so only a rewrite can produce a duplicate.
        if renamed && self.has_duplicate_key() {
            return Err(Unsupported::OPENTSDB_TAG_CLASH);
        }
        Ok(())
    }

    fn has_duplicate_key(&self) -> bool {
        let tags = CleanTags {
            text: &self.tags,
            spans: &self.spans,
            at: 0,
        };
        let mut rest = tags;
        while let Some((a, _)) = rest.next() {
            if rest.any(|(b, _)| a == b) {
                return true;
            }
        }
        false
    }
}

/// The cleaned tags as `(key, value)` byte strings.
#[derive(Clone, Copy)]
struct CleanTags<'a> {
    text: &'a [u8],
    spans: &'a [(usize, usize)],
    at: usize,
}

impl<'a> Iterator for CleanTags<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (first, rest) = self.spans.split_first()?;
        let &(key_end, value_end) = first;
        let item = (
            self.text.get(self.at..key_end)?,
            self.text.get(key_end..value_end)?,
        );
        self.spans = rest;
        self.at = value_end;
        Some(item)
    }
}

/// Milliseconds when `ts` has a sub-second part, whole seconds otherwise: OpenTSDB tells
/// them apart by their number of digits.
fn timestamp(ts: i64) -> i64 {
    if ts.rem_euclid(1_000_000_000) == 0 {
        ts / 1_000_000_000
    } else {
        ts.div_euclid(1_000_000)
    }
}

fn write_value(out: &mut Vec<u8>, v: Value) {
    match v {
        Value::U64(u) if u > i64::MAX as u64 => write_f64(out, u as f64),
        Value::U64(u) => write_int(out, u),
        Value::I64(i) => write_int(out, i),
        Value::F64(f) => write_f64(out, f),
    }
}

/// Appends `s` with every character OpenTSDB does not allow replaced by `_`; returns whether
/// anything was replaced.
fn write_clean(out: &mut Vec<u8>, s: &str) -> bool {
    let ascii_ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/');
    if s.bytes().all(ascii_ok) {
        out.extend_from_slice(s.as_bytes());
        return false;
    }
    let mut replaced = false;
    for c in s.chars() {
        if (c.is_ascii() && ascii_ok(c as u8)) || (!c.is_ascii() && c.is_alphabetic()) {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        } else {
            out.push(b'_');
            replaced = true;
        }
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Kind, Temporality};

    const TS: i64 = 1_700_000_000_123_456_789;

    fn telnet(m: &Metric) -> Result<String, Unsupported> {
        let mut out = Vec::new();
        OpenTsdbTelnetEncoder::default().encode(m, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn json(ms: &[Metric]) -> String {
        let mut e = OpenTsdbJsonEncoder::default();
        let mut body = Vec::new();
        for m in ms {
            let _ = e.encode(m, &mut body);
        }
        let mut out = Vec::new();
        e.seal(&body, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn put_lines() {
        let m = Metric::gauge("sys.cpu.user", Value::F64(42.5), 1_700_000_000_000_000_000)
            .with_tag("host", "web01")
            .with_tag("cpu", "0");
        assert_eq!(
            telnet(&m).unwrap(),
            "put sys.cpu.user 1700000000 42.5 cpu=0 host=web01\n"
        );
        let m =
            Metric::counter("c", Temporality::Delta, Value::U64(u64::MAX), TS).with_tag("h", "a");
        assert_eq!(
            telnet(&m).unwrap(),
            "put c 1700000000123 1.8446744073709552e19 h=a\n"
        );
        let m = Metric::gauge("g", Value::U64(i64::MAX as u64), TS).with_tag("h", "a");
        assert_eq!(
            telnet(&m).unwrap(),
            "put g 1700000000123 9223372036854775807 h=a\n"
        );
        let m = Metric::gauge("g", Value::I64(-5), -1).with_tag("h", "a");
        assert_eq!(telnet(&m).unwrap(), "put g -1 -5 h=a\n");
    }

    #[test]
    fn tags_are_required() {
        let m = Metric::gauge("g", Value::U64(1), TS);
        assert_eq!(telnet(&m), Err(Unsupported::OPENTSDB_NO_TAGS));
        let m = m.with_tag("empty", "").with_tag("", "v");
        assert_eq!(telnet(&m), Err(Unsupported::OPENTSDB_NO_TAGS));
        let m = m.with_tag("a b", "1").with_tag("a_b", "2");
        assert_eq!(telnet(&m), Err(Unsupported::OPENTSDB_TAG_CLASH));
        let m = Metric::gauge("g", Value::F64(f64::NAN), TS).with_tag("h", "a");
        assert_eq!(telnet(&m), Err(Unsupported::NON_FINITE));
    }

    #[test]
    fn names_and_tags_are_cleaned() {
        let m = Metric::gauge("disk free:/var é", Value::U64(7), TS)
            .with_tag("mount point", "/var/log")
            .with_tag("ü", "a=b\"c");
        assert_eq!(
            telnet(&m).unwrap(),
            "put disk_free_/var_é 1700000000123 7 mount_point=/var/log ü=a_b_c\n"
        );
    }

    fn summary() -> Metric {
        Metric {
            name: "db.query".into(),
            kind: Kind::Summary,
            temporality: Some(Temporality::Delta),
            quantiles: vec![(0.99, 80.0)],
            count: Some(4),
            ts: 1_700_000_000_000_000_000,
            ..Metric::default()
        }
        .with_tag("env", "prod")
    }

    #[test]
    fn summaries_are_flattened() {
        assert_eq!(
            telnet(&summary()).unwrap(),
            "put db.query.count 1700000000 4 env=prod\n\
             put db.query.p99 1700000000 80.0 env=prod\n"
        );
    }

    #[test]
    fn json_array() {
        let g = Metric::gauge("g", Value::F64(0.5), TS)
            .with_tag("a", "1")
            .with_tag("b", "2");
        let text = json(&[g, Metric::gauge("untagged", Value::U64(1), 0), summary()]);
        assert_eq!(
            text,
            "[{\"metric\":\"g\",\"timestamp\":1700000000123,\"value\":0.5,\"tags\":{\"a\":\"1\",\"b\":\"2\"}},\
             {\"metric\":\"db.query.count\",\"timestamp\":1700000000,\"value\":4,\"tags\":{\"env\":\"prod\"}},\
             {\"metric\":\"db.query.p99\",\"timestamp\":1700000000,\"value\":80.0,\"tags\":{\"env\":\"prod\"}}]"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.as_array().map(Vec::len), Some(3));
        assert_eq!(json(&[]), "[]");
        assert_eq!(
            OpenTsdbJsonEncoder::default().content_type(),
            "application/json"
        );
    }
}
