//! CSV (RFC 4180) for spreadsheets and ad-hoc analysis: one row per scalar,
//! `ts,name,kind,value,tags`, under a header row.

use super::flatten::Flattener;
use super::{all_or_nothing, Encoder, Unsupported};
use crate::metric::{Metric, Tags};
use crate::ndjson::encode::{write_int, write_value};

const HEADER: &[u8] = b"ts,name,kind,value,tags\n";

/// Encoder for CSV with the header `ts,name,kind,value,tags`.
///
/// The header is written before the first row of a stream; `finish` ends the stream, so the
/// next row starts a new file with its own header. `ts` is in nanoseconds; `name` is the
/// metric name as it is, summaries and histograms flattened like Graphite's (`name.count`,
/// `name.p99`, `name.le_0_5`, with `kind` still `summary` / `histogram`); `tags` is
/// `k=v;k2=v2` in key order (a `=` or `;` inside a key or value is not escaped). Fields
/// holding a comma, a double quote or a line break are quoted, quotes doubled. Raw sets and
/// distributions, and NaN or infinite scalars, are `Unsupported` as in the Graphite encoder.
#[derive(Debug, Default)]
pub struct CsvEncoder {
    flat: Flattener,
    header_written: bool,
    /// The quoted name field and tags field of the metric in hand.
    name: Vec<u8>,
    tags: Vec<u8>,
    /// Unquoted text being built, before `write_field` quotes it.
    raw: Vec<u8>,
}

impl Encoder for CsvEncoder {
    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        let header = !self.header_written;
        all_or_nothing(out, |out| {
            if header {
                out.extend_from_slice(HEADER);
            }
            self.write(m, out)
        })?;
        self.header_written = true;
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) {
        self.header_written = false;
    }

    fn content_type(&self) -> &'static str {
        "text/csv; charset=utf-8"
    }
}

impl CsvEncoder {
    fn write(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        self.raw.clear();
        write_tags(&mut self.raw, &m.tags);
        self.tags.clear();
        write_field(&mut self.tags, &self.raw);
        let CsvEncoder {
            flat,
            name,
            raw,
            tags,
            ..
        } = self;
        flat.points(m, |suffix, v| {
            raw.clear();
            raw.extend_from_slice(m.name.as_bytes());
            raw.extend_from_slice(suffix);
            name.clear();
            write_field(name, raw);
            write_int(out, m.ts);
            out.push(b',');
            out.extend_from_slice(name);
            out.push(b',');
            out.extend_from_slice(m.kind.as_str().as_bytes());
            out.push(b',');
            write_value(out, v);
            out.push(b',');
            out.extend_from_slice(tags);
            out.push(b'\n');
        })
    }
}

fn write_tags(out: &mut Vec<u8>, tags: &Tags) {
    for (i, (k, v)) in tags.iter().enumerate() {
        if i > 0 {
            out.push(b';');
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
    }
}

/// Appends `text` as one CSV field, quoted when RFC 4180 requires it.
fn write_field(out: &mut Vec<u8>, text: &[u8]) {
    if !text
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.extend_from_slice(text);
        return;
    }
    out.push(b'"');
    for &b in text {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Kind, Temporality, Value};

    fn enc_all(e: &mut CsvEncoder, ms: &[&Metric]) -> String {
        let mut out = Vec::new();
        for m in ms {
            let _ = e.encode(m, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    /// Reads RFC 4180 text back into rows of fields.
    fn parse(text: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut row = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut field)),
                (false, '\n') => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (false, c) => field.push(c),
            }
        }
        rows
    }

    #[test]
    fn header_once_per_stream() {
        let mut e = CsvEncoder::default();
        let g = Metric::gauge("cpu.load1", Value::F64(0.25), 5).with_tag("host", "a");
        let c = Metric::counter("c", Temporality::Delta, Value::U64(u64::MAX), -1);
        assert_eq!(
            enc_all(&mut e, &[&g, &c]),
            "ts,name,kind,value,tags\n\
             5,cpu.load1,gauge,0.25,host=a\n\
             -1,c,counter,18446744073709551615,\n"
        );
        assert_eq!(enc_all(&mut e, &[&g]), "5,cpu.load1,gauge,0.25,host=a\n");
        e.finish(&mut Vec::new());
        assert_eq!(
            enc_all(&mut e, &[&g]),
            "ts,name,kind,value,tags\n5,cpu.load1,gauge,0.25,host=a\n"
        );
    }

    #[test]
    fn a_rejected_first_metric_writes_no_header() {
        let mut e = CsvEncoder::default();
        let nan = Metric::gauge("g", Value::F64(f64::NAN), 0);
        let mut out = b"keep".to_vec();
        assert_eq!(e.encode(&nan, &mut out), Err(Unsupported::NON_FINITE));
        assert_eq!(out, b"keep");
        let set = Metric {
            name: "s".into(),
            kind: Kind::Set,
            ..Metric::default()
        };
        assert_eq!(
            e.encode(&set, &mut out),
            Err(Unsupported::RAW_SET_OR_DISTRIBUTION)
        );
        let g = Metric::gauge("g", Value::I64(-3), 0);
        assert_eq!(
            enc_all(&mut e, &[&g]),
            "ts,name,kind,value,tags\n0,g,gauge,-3,\n"
        );
    }

    #[test]
    fn fields_are_quoted_when_needed() {
        let m = Metric::gauge("a,\"b\"\nc", Value::U64(1), 0)
            .with_tag("k", "x,y")
            .with_tag("q", "say \"hi\"");
        let text = enc_all(&mut CsvEncoder::default(), &[&m]);
        assert_eq!(
            text,
            "ts,name,kind,value,tags\n\
             0,\"a,\"\"b\"\"\nc\",gauge,1,\"k=x,y;q=say \"\"hi\"\"\"\n"
        );
        let rows = parse(&text);
        assert_eq!(
            rows[1],
            ["0", "a,\"b\"\nc", "gauge", "1", "k=x,y;q=say \"hi\""]
        );
    }

    #[test]
    fn summaries_and_histograms_are_flattened() {
        let s = Metric {
            name: "db.query".into(),
            kind: Kind::Summary,
            temporality: Some(Temporality::Delta),
            quantiles: vec![(0.999, 80.2)],
            count: Some(4),
            sum: Some(200.0),
            ts: 7,
            ..Metric::default()
        }
        .with_tag("env", "prod");
        let h = Metric {
            name: "h".into(),
            kind: Kind::Histogram,
            temporality: Some(Temporality::Cumulative),
            bounds: vec![0.5],
            counts: vec![1, 2],
            ts: 8,
            ..Metric::default()
        };
        assert_eq!(
            enc_all(&mut CsvEncoder::default(), &[&s, &h]),
            "ts,name,kind,value,tags\n\
             7,db.query.count,summary,4,env=prod\n\
             7,db.query.sum,summary,200.0,env=prod\n\
             7,db.query.mean,summary,50.0,env=prod\n\
             7,db.query.p99_9,summary,80.2,env=prod\n\
             8,h.count,histogram,3,\n\
             8,h.le_0_5,histogram,1,\n\
             8,h.le_inf,histogram,3,\n"
        );
    }
}
