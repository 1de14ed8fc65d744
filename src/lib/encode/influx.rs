//! InfluxDB line protocol: `measurement[,tag=value…] field=value[,…] unix_nanoseconds\n`.

use super::decimal::write_suffix;
use super::{all_or_nothing, histogram_total, mean, Encoder, Unsupported};
use crate::metric::{Kind, Metric, Tags, Value};
use crate::ndjson::encode::{write_f64, write_int};

/// Encoder for InfluxDB line protocol.
///
/// Counters and gauges split the name at its last `.`: `cpu.load1` becomes measurement
/// `cpu`, field `load1`; a name without an inner dot is the measurement, with field
/// `value`. Summaries and histograms keep the full name as measurement and write one field
/// per statistic (`count`, `sum`, `min`, `max`, `mean`, `p99_9`; `le_0_5`, `le_inf` holding
/// cumulative bucket counts).
///
/// Integers stay exact: `I64` and `U64` up to `i64::MAX` are written `123i`, larger `U64`
/// as `123u`. InfluxDB 1.x rejects the `u` suffix unless built with unsigned support;
/// InfluxDB 2.x/3.x and VictoriaMetrics accept it. A NaN or infinite scalar is
/// `Unsupported` (line protocol has no spelling for it); in summaries and histograms a
/// non-finite statistic only drops its own field.
///
/// Tags with an empty key or value are skipped (InfluxDB rejects them). Escaping follows
/// the line-protocol spec; a backslash is doubled only where it would otherwise escape the
/// next character, so Windows paths read back the same in 1.x and 2.x. Newlines cannot be
/// escaped in line protocol and are written as an escaped space, and a leading `#` in the
/// measurement becomes `_` because the line would otherwise be a comment. Units are not
/// written.
#[derive(Debug)]
pub struct InfluxEncoder {
    /// `measurement,tags` for the metric in hand.
    series: Vec<u8>,
    /// Nanoseconds per unit of the written timestamp (1 for `ns`, 1e9 for `s`).
    unit_ns: i64,
}

impl Default for InfluxEncoder {
    fn default() -> Self {
        InfluxEncoder {
            series: Vec::new(),
            unit_ns: 1,
        }
    }
}

impl InfluxEncoder {
    /// Timestamps in `precision` (`ns`, `us`, `ms`, `s`: InfluxDB's `precision=` values),
    /// rounded towards the past; `None` for another name.
    pub fn with_precision(precision: &str) -> Option<InfluxEncoder> {
        let unit_ns = match precision {
            "ns" | "n" => 1,
            "us" | "u" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            _ => return None,
        };
        Some(InfluxEncoder {
            unit_ns,
            ..InfluxEncoder::default()
        })
    }
}

impl Encoder for InfluxEncoder {
    fn stateless(&self) -> bool {
        true
    }

    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        all_or_nothing(out, |out| self.write(m, out))
    }
}

const MEASUREMENT_SPECIALS: &[u8] = b", ";
const KEY_SPECIALS: &[u8] = b",= ";

impl InfluxEncoder {
    fn write(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        if matches!(m.kind, Kind::Set | Kind::Distribution) {
            return Err(Unsupported::RAW_SET_OR_DISTRIBUTION);
        }
        if m.name.is_empty() {
            return Err(Unsupported::EMPTY_NAME);
        }
        self.series.clear();
        match m.kind {
            Kind::Counter | Kind::Gauge => {
                let v = m.value.ok_or(Unsupported::MISSING_VALUE)?;
                if matches!(v, Value::F64(f) if !f.is_finite()) {
                    return Err(Unsupported::NON_FINITE);
                }
                let (measurement, field) = split_name(&m.name);
                write_measurement(&mut self.series, measurement);
                write_tags(&mut self.series, &m.tags);
                out.extend_from_slice(&self.series);
                out.push(b' ');
                write_escaped(out, field, KEY_SPECIALS);
                out.push(b'=');
                match v {
                    Value::U64(u) => write_uint_field(out, u),
                    Value::I64(i) => {
                        write_int(out, i);
                        out.push(b'i');
                    }
                    Value::F64(f) => write_f64(out, f),
                }
            }
            Kind::Summary | Kind::Histogram => {
                write_measurement(&mut self.series, &m.name);
                write_tags(&mut self.series, &m.tags);
                out.extend_from_slice(&self.series);
                let mut fields = Fields { out, any: false };
                if m.kind == Kind::Summary {
                    summary(&mut fields, m);
                } else {
                    histogram(&mut fields, m)?;
                }
                if !fields.any {
                    return Err(Unsupported::NOTHING_TO_WRITE);
                }
            }
            Kind::Set | Kind::Distribution => return Err(Unsupported::RAW_SET_OR_DISTRIBUTION),
        }
        out.push(b' ');
        write_int(out, m.ts.div_euclid(self.unit_ns));
        out.push(b'\n');
        Ok(())
    }
}

/// Splits at the last `.` unless that leaves an empty measurement or field.
fn split_name(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() => (&name[..i], &name[i + 1..]),
        _ => (name, "value"),
    }
}

/// The field set of one line; field names here are ASCII identifiers needing no escapes.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    any: bool,
}

impl Fields<'_> {
    fn key(&mut self, name: &[u8]) {
        self.out.push(if self.any { b',' } else { b' ' });
        self.any = true;
        self.out.extend_from_slice(name);
        self.out.push(b'=');
    }

    fn uint(&mut self, name: &str, v: u64) {
        self.key(name.as_bytes());
        write_uint_field(self.out, v);
    }

    fn float(&mut self, name: &str, v: f64) {
        if v.is_finite() {
            self.key(name.as_bytes());
            write_f64(self.out, v);
        }
    }
}

fn summary(f: &mut Fields, m: &Metric) {
    if let Some(c) = m.count {
        f.uint("count", c);
    }
    for (name, v) in [
        ("sum", m.sum),
        ("min", m.min),
        ("max", m.max),
        ("mean", mean(m)),
    ] {
        if let Some(v) = v {
            f.float(name, v);
        }
    }
    for &(q, v) in &m.quantiles {
        if !q.is_finite() || !v.is_finite() {
            continue;
        }
        f.out.push(if f.any { b',' } else { b' ' });
        f.any = true;
        f.out.push(b'p');
        write_suffix(f.out, q, 2);
        f.out.push(b'=');
        write_f64(f.out, v);
    }
}

fn histogram(f: &mut Fields, m: &Metric) -> Result<(), Unsupported> {
    let total = histogram_total(m)?;
    f.uint("count", total);
    if let Some(s) = m.sum {
        f.float("sum", s);
    }
    let mut cumulative = 0u64;
    for (&b, &c) in m.bounds.iter().zip(&m.counts) {
        cumulative = cumulative.saturating_add(c);
        // An explicit +Inf bound would repeat the `le_inf` field, which InfluxDB rejects.
        if b == f64::INFINITY {
            continue;
        }
        f.out.extend_from_slice(b",le_");
        write_suffix(f.out, b, 0);
        f.out.push(b'=');
        write_uint_field(f.out, cumulative);
    }
    f.uint("le_inf", total);
    Ok(())
}

fn write_uint_field(out: &mut Vec<u8>, v: u64) {
    write_int(out, v);
    out.push(if v <= i64::MAX as u64 { b'i' } else { b'u' });
}

fn write_measurement(out: &mut Vec<u8>, name: &str) {
    let name = match name.strip_prefix('#') {
        Some(rest) => {
            out.push(b'_');
            rest
        }
        None => name,
    };
    write_escaped(out, name, MEASUREMENT_SPECIALS);
}

fn write_tags(out: &mut Vec<u8>, tags: &Tags) {
    for (k, v) in tags.iter() {
        if k.is_empty() || v.is_empty() {
            continue;
        }
        out.push(b',');
        write_escaped(out, k, KEY_SPECIALS);
        out.push(b'=');
        write_escaped(out, v, KEY_SPECIALS);
    }
}

/// Appends `s` with `specials` backslash-escaped, and newlines (which no escape can carry)
/// as an escaped space.
fn write_escaped(out: &mut Vec<u8>, s: &str, specials: &[u8]) {
    let needs_escape = |c: u8| c == b'\\' || c == b'\n' || c == b'\r' || specials.contains(&c);
    let b = s.as_bytes();
    if !b.iter().any(|&c| needs_escape(c)) {
        out.extend_from_slice(b);
        return;
    }
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'\n' | b'\r' => out.extend_from_slice(b"\\ "),
            b'\\' => {
                // A lone backslash before an ordinary character is literal to every
                // parser; before another escapable character or at the end of the token it
                // would swallow what follows, so it is escaped itself.
                if b.get(i + 1).is_none_or(|&n| needs_escape(n)) {
                    out.extend_from_slice(b"\\\\");
                } else {
                    out.push(b'\\');
                }
            }
            c if specials.contains(&c) => {
                out.push(b'\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Temporality;

    fn enc(m: &Metric) -> Result<String, Unsupported> {
        let mut out = Vec::new();
        InfluxEncoder::default().encode(m, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    const TS: i64 = 1_700_000_000_123_456_789;

    #[test]
    fn measurement_and_field_split_at_last_dot() {
        let m = Metric::gauge("system.cpu.load1", Value::F64(0.25), TS);
        assert_eq!(
            enc(&m).unwrap(),
            "system.cpu load1=0.25 1700000000123456789\n"
        );
        let m = Metric::gauge("uptime", Value::U64(5), TS);
        assert_eq!(enc(&m).unwrap(), "uptime value=5i 1700000000123456789\n");
        let m = Metric::gauge("trailing.", Value::U64(5), 1);
        assert_eq!(enc(&m).unwrap(), "trailing. value=5i 1\n");
        let m = Metric::gauge(".leading", Value::U64(5), 1);
        assert_eq!(enc(&m).unwrap(), ".leading value=5i 1\n");
    }

    #[test]
    fn precision_rounds_towards_the_past() {
        let m = Metric::gauge("cpu.load", Value::U64(1), -1_500_000_001);
        let enc = |p| {
            let mut out = Vec::new();
            InfluxEncoder::with_precision(p)
                .unwrap()
                .encode(&m, &mut out)
                .unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(enc("s"), "cpu load=1i -2\n");
        assert_eq!(enc("ms"), "cpu load=1i -1501\n");
        assert_eq!(enc("ns"), "cpu load=1i -1500000001\n");
        assert!(InfluxEncoder::with_precision("h").is_none());
    }

    #[test]
    fn integers_are_exact() {
        let m = Metric::counter("c", Temporality::Cumulative, Value::U64(u64::MAX), 1);
        assert_eq!(enc(&m).unwrap(), "c value=18446744073709551615u 1\n");
        let m = Metric::counter("c", Temporality::Cumulative, Value::U64(i64::MAX as u64), 1);
        assert_eq!(enc(&m).unwrap(), "c value=9223372036854775807i 1\n");
        let m = Metric::counter("c", Temporality::Delta, Value::U64(i64::MAX as u64 + 1), 1);
        assert_eq!(enc(&m).unwrap(), "c value=9223372036854775808u 1\n");
        let m = Metric::gauge("g", Value::I64(-5), -3);
        assert_eq!(enc(&m).unwrap(), "g value=-5i -3\n");
        let m = Metric::gauge("g", Value::F64(5.0), 1);
        assert_eq!(enc(&m).unwrap(), "g value=5.0 1\n");
        let m = Metric::gauge("g", Value::F64(-1.5e-7), 1);
        assert_eq!(enc(&m).unwrap(), "g value=-1.5e-7 1\n");
    }

    #[test]
    fn non_finite_scalars_are_unsupported() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let m = Metric::gauge("g", Value::F64(v), 1);
            assert_eq!(enc(&m), Err(Unsupported::NON_FINITE));
        }
        let mut m = Metric::gauge("g", Value::U64(1), 1);
        m.value = None;
        assert_eq!(enc(&m), Err(Unsupported::MISSING_VALUE));
        m.name.clear();
        assert_eq!(enc(&m), Err(Unsupported::EMPTY_NAME));
    }

    #[test]
    fn tags_sorted_escaped_and_empty_values_skipped() {
        let m = Metric::gauge("disk,io rate.bytes=in", Value::U64(1), 1)
            .with_tag("path", "C:\\temp dir")
            .with_tag("a=b", "x,y=z")
            .with_tag("empty", "")
            .with_tag("line", "one\ntwo");
        assert_eq!(
            enc(&m).unwrap(),
            "disk\\,io\\ rate,a\\=b=x\\,y\\=z,line=one\\ two,path=C:\\temp\\ dir bytes\\=in=1i 1\n"
        );
    }

    #[test]
    fn backslashes_escaped_only_where_they_would_escape() {
        let m = Metric::gauge("m", Value::U64(1), 1)
            .with_tag("end", "a\\")
            .with_tag("pair", "a\\\\b")
            .with_tag("sep", "a\\,b");
        assert_eq!(
            enc(&m).unwrap(),
            "m,end=a\\\\,pair=a\\\\\\b,sep=a\\\\\\,b value=1i 1\n"
        );
    }

    #[test]
    fn leading_hash_is_not_a_comment() {
        let m = Metric::gauge("#x", Value::U64(1), 1);
        assert_eq!(enc(&m).unwrap(), "_x value=1i 1\n");
    }

    fn summary() -> Metric {
        Metric {
            name: "db.query".into(),
            kind: Kind::Summary,
            temporality: Some(Temporality::Delta),
            quantiles: vec![(0.5, 13.0), (0.99, 80.0), (0.999, 80.2)],
            count: Some(6),
            sum: Some(211.5),
            min: Some(12.5),
            max: Some(80.2),
            ts: TS,
            ..Metric::default()
        }
        .with_tag("host", "a b")
    }

    #[test]
    fn summary_fields() {
        assert_eq!(
            enc(&summary()).unwrap(),
            "db.query,host=a\\ b count=6i,sum=211.5,min=12.5,max=80.2,mean=35.25,p50=13.0,p99=80.0,p99_9=80.2 1700000000123456789\n"
        );
    }

    #[test]
    fn summary_skips_non_finite_fields() {
        let mut m = summary();
        m.tags.clear();
        m.count = None;
        m.sum = Some(f64::NAN);
        m.min = None;
        m.max = Some(f64::INFINITY);
        m.quantiles = vec![(0.5, f64::NAN), (0.9, 3.0)];
        assert_eq!(enc(&m).unwrap(), "db.query p90=3.0 1700000000123456789\n");
        m.quantiles.clear();
        assert_eq!(enc(&m), Err(Unsupported::NOTHING_TO_WRITE));
    }

    fn histogram() -> Metric {
        Metric {
            name: "http.latency".into(),
            kind: Kind::Histogram,
            temporality: Some(Temporality::Delta),
            bounds: vec![-1.0, 0.5, 10.0],
            counts: vec![1, 2, 3, 4],
            sum: Some(42.5),
            ts: 7,
            ..Metric::default()
        }
    }

    #[test]
    fn histogram_fields_are_cumulative() {
        assert_eq!(
            enc(&histogram()).unwrap(),
            "http.latency count=10i,sum=42.5,le_neg1=1i,le_0_5=3i,le_10=6i,le_inf=10i 7\n"
        );
    }

    #[test]
    fn histogram_edge_cases() {
        let mut m = histogram();
        m.sum = Some(f64::NAN);
        m.bounds = vec![1.0, f64::INFINITY];
        m.counts = vec![u64::MAX, 0, 0];
        assert_eq!(
            enc(&m).unwrap(),
            "http.latency count=18446744073709551615u,le_1=18446744073709551615u,le_inf=18446744073709551615u 7\n"
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
                ..Metric::default()
            };
            assert_eq!(enc(&m), Err(Unsupported::RAW_SET_OR_DISTRIBUTION));
        }
    }
}
