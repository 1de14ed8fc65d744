//! Graphite plaintext protocol: `path[;tag=value…] value unix_seconds\n`, as carbon reads it.
//!
//! Summaries and histograms are flattened into one line per statistic the way statsd's
//! Graphite backend does (`name.count`, `name.p99`, `name.le_0_5`), with the tags after the
//! full path of each line.

use super::decimal::write_suffix;
use super::{all_or_nothing, histogram_total, mean, Encoder, Unsupported};
use crate::metric::{Kind, Metric, Tags, Value};
use crate::ndjson::encode::{write_f64, write_int, write_value};

/// Encoder for Graphite plaintext (carbon's line receiver, tagged series).
///
/// Carbon's rules for tagged series are enforced by rewriting rather than rejecting:
/// - whitespace and control characters anywhere, and `;` in the path, become `_`
///   (carbon splits lines on whitespace and treats `;` as the start of the tags);
/// - tag keys: `;`, `!`, `^` and `=` become `_`;
/// - tag values: `;` becomes `_`, and so does a leading `~` (carbon forbids only a leading
///   one, so `a~b` is kept);
/// - tags with an empty key or an empty value are skipped, since carbon rejects the whole
///   line otherwise.
///
/// Scalars that are NaN or infinite are `Unsupported` (carbon does not parse them
/// reliably); in summaries and histograms a non-finite statistic only drops its own line.
/// The timestamp is whole seconds, rounded towards the past; units are not written.
#[derive(Debug, Default)]
pub struct GraphiteEncoder {
    path: Vec<u8>,
    tags: Vec<u8>,
}

impl Encoder for GraphiteEncoder {
    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        all_or_nothing(out, |out| self.write(m, out))
    }
}

impl GraphiteEncoder {
    fn write(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        if matches!(m.kind, Kind::Set | Kind::Distribution) {
            return Err(Unsupported::RAW_SET_OR_DISTRIBUTION);
        }
        if m.name.is_empty() {
            return Err(Unsupported::EMPTY_NAME);
        }
        self.path.clear();
        write_clean(&mut self.path, &m.name, b";");
        self.tags.clear();
        write_tags(&mut self.tags, &m.tags);
        let line = Line {
            path: &self.path,
            tags: &self.tags,
            secs: m.ts.div_euclid(1_000_000_000),
        };
        match m.kind {
            Kind::Counter | Kind::Gauge => {
                let v = m.value.ok_or(Unsupported::MISSING_VALUE)?;
                if matches!(v, Value::F64(f) if !f.is_finite()) {
                    return Err(Unsupported::NON_FINITE);
                }
                line.write(out, |_| {}, |o| write_value(o, v));
                Ok(())
            }
            Kind::Summary => summary(&line, m, out),
            Kind::Histogram => histogram(&line, m, out),
            Kind::Set | Kind::Distribution => Err(Unsupported::RAW_SET_OR_DISTRIBUTION),
        }
    }
}

struct Line<'a> {
    path: &'a [u8],
    tags: &'a [u8],
    secs: i64,
}

impl Line<'_> {
    fn write(
        &self,
        out: &mut Vec<u8>,
        suffix: impl FnOnce(&mut Vec<u8>),
        value: impl FnOnce(&mut Vec<u8>),
    ) {
        out.extend_from_slice(self.path);
        suffix(out);
        out.extend_from_slice(self.tags);
        out.push(b' ');
        value(out);
        out.push(b' ');
        write_int(out, self.secs);
        out.push(b'\n');
    }

    fn stat(&self, out: &mut Vec<u8>, name: &str, v: f64) -> bool {
        if !v.is_finite() {
            return false;
        }
        self.write(
            out,
            |o| {
                o.push(b'.');
                o.extend_from_slice(name.as_bytes());
            },
            |o| write_f64(o, v),
        );
        true
    }

    fn count(&self, out: &mut Vec<u8>, name: &str, v: u64) {
        self.write(
            out,
            |o| {
                o.push(b'.');
                o.extend_from_slice(name.as_bytes());
            },
            |o| write_int(o, v),
        );
    }
}

fn summary(line: &Line, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
    let mut wrote = false;
    if let Some(c) = m.count {
        line.count(out, "count", c);
        wrote = true;
    }
    for (name, v) in [
        ("sum", m.sum),
        ("min", m.min),
        ("max", m.max),
        ("mean", mean(m)),
    ] {
        if let Some(v) = v {
            wrote |= line.stat(out, name, v);
        }
    }
    for &(q, v) in &m.quantiles {
        if !q.is_finite() || !v.is_finite() {
            continue;
        }
        line.write(
            out,
            |o| {
                o.extend_from_slice(b".p");
                write_suffix(o, q, 2);
            },
            |o| write_f64(o, v),
        );
        wrote = true;
    }
    if wrote {
        Ok(())
    } else {
        Err(Unsupported::NOTHING_TO_WRITE)
    }
}

fn histogram(line: &Line, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
    let total = histogram_total(m)?;
    line.count(out, "count", total);
    if let Some(s) = m.sum {
        line.stat(out, "sum", s);
    }
    let mut cumulative = 0u64;
    for (&b, &c) in m.bounds.iter().zip(&m.counts) {
        cumulative = cumulative.saturating_add(c);
        // An explicit +Inf bound would repeat the `le_inf` line written below.
        if b == f64::INFINITY {
            continue;
        }
        line.write(
            out,
            |o| {
                o.extend_from_slice(b".le_");
                write_suffix(o, b, 0);
            },
            |o| write_int(o, cumulative),
        );
    }
    line.count(out, "le_inf", total);
    Ok(())
}

fn write_tags(out: &mut Vec<u8>, tags: &Tags) {
    for (k, v) in tags.iter() {
        if k.is_empty() || v.is_empty() {
            continue;
        }
        out.push(b';');
        write_clean(out, k, b";!^=");
        out.push(b'=');
        let v = match v.strip_prefix('~') {
            Some(rest) => {
                out.push(b'_');
                rest
            }
            None => v,
        };
        write_clean(out, v, b";");
    }
}

/// Appends `s` with whitespace, control characters and the ASCII bytes in `forbidden`
/// replaced by `_`, one `_` per character.
fn write_clean(out: &mut Vec<u8>, s: &str, forbidden: &[u8]) {
    let plain = |b: u8| b > b' ' && b < 0x7f && !forbidden.contains(&b);
    if s.bytes().all(plain) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for c in s.chars() {
        let bad =
            c.is_whitespace() || c.is_control() || (c.is_ascii() && forbidden.contains(&(c as u8)));
        if bad {
            out.push(b'_');
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Temporality;

    fn enc(m: &Metric) -> Result<String, Unsupported> {
        let mut out = Vec::new();
        GraphiteEncoder::default().encode(m, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    const TS: i64 = 1_700_000_000_123_456_789;

    #[test]
    fn gauge_and_counter() {
        let m = Metric::gauge("cpu.load1", Value::F64(0.25), TS);
        assert_eq!(enc(&m).unwrap(), "cpu.load1 0.25 1700000000\n");
        let m = Metric::gauge("g", Value::F64(5.0), TS);
        assert_eq!(enc(&m).unwrap(), "g 5.0 1700000000\n");
        let m = Metric::gauge("g", Value::I64(-5), TS);
        assert_eq!(enc(&m).unwrap(), "g -5 1700000000\n");
        let m = Metric::counter("c", Temporality::Delta, Value::U64(3), TS);
        assert_eq!(enc(&m).unwrap(), "c 3 1700000000\n");
        let m = Metric::counter("c", Temporality::Cumulative, Value::F64(1e20), TS);
        assert_eq!(enc(&m).unwrap(), "c 1e20 1700000000\n");
    }

    #[test]
    fn u64_max_is_exact() {
        let m = Metric::counter("c", Temporality::Cumulative, Value::U64(u64::MAX), TS);
        assert_eq!(enc(&m).unwrap(), "c 18446744073709551615 1700000000\n");
        let m = Metric::gauge("g", Value::I64(i64::MIN), TS);
        assert_eq!(enc(&m).unwrap(), "g -9223372036854775808 1700000000\n");
    }

    #[test]
    fn seconds_round_towards_the_past() {
        let m = Metric::gauge("g", Value::U64(1), -1);
        assert_eq!(enc(&m).unwrap(), "g 1 -1\n");
        let m = Metric::gauge("g", Value::U64(1), 999_999_999);
        assert_eq!(enc(&m).unwrap(), "g 1 0\n");
    }

    #[test]
    fn non_finite_scalars_are_unsupported() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let m = Metric::gauge("g", Value::F64(v), TS);
            assert_eq!(enc(&m), Err(Unsupported::NON_FINITE));
        }
        let mut m = Metric::gauge("g", Value::U64(1), TS);
        m.value = None;
        assert_eq!(enc(&m), Err(Unsupported::MISSING_VALUE));
        m.name.clear();
        assert_eq!(enc(&m), Err(Unsupported::EMPTY_NAME));
    }

    #[test]
    fn tags_are_sorted_and_cleaned() {
        let m = Metric::gauge("disk free", Value::U64(7), TS)
            .with_tag("mount", "/var log")
            .with_tag("a;b!c^d=e", "x;y=z~w")
            .with_tag("empty", "")
            .with_tag("tilde", "~home")
            .with_tag("host", "web\t1");
        assert_eq!(
            enc(&m).unwrap(),
            "disk_free;a_b_c_d_e=x_y=z~w;host=web_1;mount=/var_log;tilde=_home 7 1700000000\n"
        );
    }

    #[test]
    fn path_cleaning() {
        let m = Metric::gauge("a;b c\nd\u{a0}é", Value::U64(1), TS);
        assert_eq!(enc(&m).unwrap(), "a_b_c_d_é 1 1700000000\n");
    }

    fn summary() -> Metric {
        Metric {
            name: "db.query".into(),
            kind: Kind::Summary,
            temporality: Some(Temporality::Delta),
            quantiles: vec![(0.5, 13.0), (0.99, 80.0), (0.999, 80.2)],
            count: Some(4),
            sum: Some(200.0),
            min: Some(12.5),
            max: Some(80.2),
            ts: TS,
            ..Metric::default()
        }
        .with_tag("env", "prod")
    }

    #[test]
    fn summary_is_flattened() {
        assert_eq!(
            enc(&summary()).unwrap(),
            "db.query.count;env=prod 4 1700000000\n\
             db.query.sum;env=prod 200.0 1700000000\n\
             db.query.min;env=prod 12.5 1700000000\n\
             db.query.max;env=prod 80.2 1700000000\n\
             db.query.mean;env=prod 50.0 1700000000\n\
             db.query.p50;env=prod 13.0 1700000000\n\
             db.query.p99;env=prod 80.0 1700000000\n\
             db.query.p99_9;env=prod 80.2 1700000000\n"
        );
    }

    #[test]
    fn summary_skips_absent_and_non_finite_statistics() {
        let mut m = summary();
        m.tags.clear();
        m.count = Some(0);
        m.sum = None;
        m.min = Some(f64::NAN);
        m.max = None;
        m.quantiles = vec![(0.5, f64::NAN), (f64::NAN, 1.0)];
        assert_eq!(enc(&m).unwrap(), "db.query.count 0 1700000000\n");
        m.count = None;
        assert_eq!(enc(&m), Err(Unsupported::NOTHING_TO_WRITE));
    }

    fn histogram() -> Metric {
        Metric {
            name: "http.latency".into(),
            kind: Kind::Histogram,
            temporality: Some(Temporality::Cumulative),
            bounds: vec![-1.0, 0.5, 10.0],
            counts: vec![1, 2, 3, 4],
            sum: Some(42.5),
            ts: TS,
            ..Metric::default()
        }
        .with_tag("host", "a")
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        assert_eq!(
            enc(&histogram()).unwrap(),
            "http.latency.count;host=a 10 1700000000\n\
             http.latency.sum;host=a 42.5 1700000000\n\
             http.latency.le_neg1;host=a 1 1700000000\n\
             http.latency.le_0_5;host=a 3 1700000000\n\
             http.latency.le_10;host=a 6 1700000000\n\
             http.latency.le_inf;host=a 10 1700000000\n"
        );
    }

    #[test]
    fn histogram_edge_cases() {
        let mut m = histogram();
        m.tags.clear();
        m.sum = None;
        m.bounds = vec![1.0, f64::INFINITY];
        m.counts = vec![u64::MAX, 1, 0];
        assert_eq!(
            enc(&m).unwrap(),
            "http.latency.count 18446744073709551615 1700000000\n\
             http.latency.le_1 18446744073709551615 1700000000\n\
             http.latency.le_inf 18446744073709551615 1700000000\n"
        );
        m.counts.pop();
        assert_eq!(enc(&m), Err(Unsupported::BAD_HISTOGRAM));
        m.bounds = vec![f64::NAN];
        assert_eq!(enc(&m), Err(Unsupported::NAN_BOUND));
    }

    #[test]
    fn raw_sets_and_distributions_are_unsupported() {
        for kind in [Kind::Set, Kind::Distribution] {
            let m = Metric {
                name: "x".into(),
                kind,
                values: vec![1.0],
                ..Metric::default()
            };
            assert_eq!(enc(&m), Err(Unsupported::RAW_SET_OR_DISTRIBUTION));
        }
    }
}
