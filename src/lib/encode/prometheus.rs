//! Prometheus text exposition format 0.0.4, written as a stream of samples with
//! millisecond timestamps (or none, for a scrape endpoint).
//!
//! `Shape` holds what a metric is in Prometheus terms (checks, names, labels, the samples a
//! summary or histogram expands into); the remote_write encoder shares it, so both spell a
//! series the same way.

use super::decimal::Decimal;
use super::{all_or_nothing, histogram_total, Encoder, Unsupported};
use crate::metric::{Kind, Metric, Tags, Temporality, Value};
use crate::ndjson::encode::write_int;

/// Encoder for the Prometheus text exposition format 0.0.4.
///
/// Names are rewritten to what Prometheus accepts: metric names to
/// `[a-zA-Z_:][a-zA-Z0-9_:]*` and label names to `[a-zA-Z_][a-zA-Z0-9_]*`, every other
/// character becoming `_` and a leading digit getting a `_` prefix (`http.requests` →
/// `http_requests`). Cumulative counters get the `_total` suffix unless they already end
/// in it. Tags with an empty key are skipped; if two tags end up with the same label name,
/// or a histogram has a tag `le` / a summary a tag `quantile`, the metric is `Unsupported`,
/// because the duplicate label would make Prometheus reject the whole exposition.
///
/// A `# TYPE` line is written whenever the family (name and type) differs from the
/// previous metric's, so input grouped by name gives one per family. The format wants each
/// family in one block; interleaved input repeats `# TYPE` lines, which push receivers such
/// as VictoriaMetrics accept but a Prometheus scrape does not.
///
/// Delta counters and delta histograms are `Unsupported` (Prometheus needs running totals);
/// summaries pass through whatever their temporality. `le` and `quantile` values are
/// spelled as the Go client libraries spell them (`0.5`, `1e+06`, `+Inf`). NaN and
/// infinities are written as `NaN`, `+Inf`, `-Inf`. Units are not written.
#[derive(Debug, Default)]
pub struct PrometheusEncoder {
    shape: Shape,
    /// `k="v",…` for the metric in hand, without braces.
    labels: Vec<u8>,
    /// The family of the last `# TYPE` line written.
    family: String,
    family_type: &'static str,
    /// Samples carry no timestamp: the scrape time stands for all of them.
    untimed: bool,
}

impl Encoder for PrometheusEncoder {
    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        all_or_nothing(out, |out| self.write(m, out))
    }

    fn finish(&mut self, _out: &mut Vec<u8>) {
        // A next stream through the same encoder is a new exposition and needs its own
        // TYPE lines.
        self.family.clear();
        self.family_type = "";
    }

    fn content_type(&self) -> &'static str {
        "text/plain; version=0.0.4; charset=utf-8"
    }
}

impl PrometheusEncoder {
    /// Samples without timestamps, for a scrape endpoint: Prometheus then stamps them with
    /// the scrape time and keeps staleness handling. The default writes timestamps, which a
    /// stream of past points needs.
    pub fn untimed() -> PrometheusEncoder {
        PrometheusEncoder {
            untimed: true,
            ..PrometheusEncoder::default()
        }
    }

    fn write(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        // Everything that can fail is checked before the first byte and before the TYPE
        // state changes, so a rejected metric does not disturb the next one's TYPE line.
        self.shape.fill(m)?;
        let shape = &self.shape;
        self.labels.clear();
        for (k, v) in shape.labels() {
            if !self.labels.is_empty() {
                self.labels.push(b',');
            }
            self.labels.extend_from_slice(k.as_bytes());
            self.labels.extend_from_slice(b"=\"");
            write_label_value(&mut self.labels, v);
            self.labels.push(b'"');
        }
        if self.family != shape.name || self.family_type != shape.ty {
            out.extend_from_slice(b"# TYPE ");
            out.extend_from_slice(shape.name.as_bytes());
            out.push(b' ');
            out.extend_from_slice(shape.ty.as_bytes());
            out.push(b'\n');
            self.family.clear();
            self.family.push_str(&shape.name);
            self.family_type = shape.ty;
        }
        let s = Series {
            name: &shape.name,
            labels: &self.labels,
            ts_ms: (!self.untimed).then(|| m.ts.div_euclid(1_000_000)),
        };
        shape.samples(m, |suffix, extra, v| {
            s.sample(out, suffix, extra, |o| write_value(o, v));
        });
        Ok(())
    }
}

/// A metric as Prometheus sees it, shared by the text and remote_write encoders: checked,
/// with its family name, type and labels, ready to expand into samples.
#[derive(Debug, Default)]
pub(crate) struct Shape {
    /// The sanitized family name, `_total` included.
    pub(crate) name: String,
    pub(crate) ty: &'static str,
    /// Sanitized label names and raw tag values, back to back.
    text: String,
    /// Per label: end of its name, end of its value, in `text`.
    spans: Vec<(usize, usize)>,
    /// Where the extra label of the samples (`le` or `quantile`) goes, if any.
    reserved: Option<&'static str>,
}

impl Shape {
    /// Checks that `m` has a Prometheus form and takes its name and labels; on `Err`
    /// nothing of `m` is usable.
    pub(crate) fn fill(&mut self, m: &Metric) -> Result<(), Unsupported> {
        let (ty, reserved) = match (m.kind, m.temporality) {
            (Kind::Set | Kind::Distribution, _) => {
                return Err(Unsupported::RAW_SET_OR_DISTRIBUTION)
            }
            (Kind::Gauge, _) => ("gauge", None),
            (Kind::Counter, Some(Temporality::Cumulative)) => ("counter", None),
            (Kind::Counter, Some(Temporality::Delta)) => return Err(Unsupported::DELTA_COUNTER),
            (Kind::Histogram, Some(Temporality::Cumulative)) => ("histogram", Some("le")),
            (Kind::Histogram, Some(Temporality::Delta)) => {
                return Err(Unsupported::DELTA_HISTOGRAM)
            }
            (Kind::Counter | Kind::Histogram, None) => return Err(Unsupported::NO_TEMPORALITY),
            (Kind::Summary, _) => ("summary", Some("quantile")),
        };
        if m.name.is_empty() {
            return Err(Unsupported::EMPTY_NAME);
        }
        check_values(m)?;
        self.ty = ty;
        self.reserved = reserved;
        self.name.clear();
        write_metric_name(&mut self.name, &m.name);
        if m.kind == Kind::Counter && !self.name.ends_with("_total") {
            self.name.push_str("_total");
        }
        self.fill_labels(&m.tags, reserved)
    }

    fn fill_labels(&mut self, tags: &Tags, reserved: Option<&str>) -> Result<(), Unsupported> {
        self.text.clear();
        self.spans.clear();
        let mut renamed = false;
        for (k, v) in tags.iter() {
            if k.is_empty() {
                continue;
            }
            let start = self.text.len();
            renamed |= write_label_name(&mut self.text, k);
            if reserved.is_some_and(|r| r == &self.text[start..]) {
                return Err(Unsupported::RESERVED_LABEL);
            }
            let name_end = self.text.len();
            self.text.push_str(v);
            self.spans.push((name_end, self.text.len()));
        }
        // Tag keys are unique, so only a rewrite can produce a duplicate label name.
        if renamed {
            let mut rest = self.labels();
            while let Some((a, _)) = rest.next() {
                if rest.any(|(b, _)| a == b) {
                    return Err(Unsupported::LABEL_CLASH);
                }
            }
        }
        Ok(())
    }

    /// The labels from tags, `(name, value)`, in tag order.
    pub(crate) fn labels(&self) -> Labels<'_> {
        Labels {
            text: &self.text,
            spans: &self.spans,
            at: 0,
        }
    }

    pub(crate) fn label_count(&self) -> usize {
        self.spans.len()
    }

    /// Label `i` in tag order, `(name, value)`.
    pub(crate) fn label(&self, i: usize) -> Option<(&str, &str)> {
        let start = match i.checked_sub(1) {
            Some(prev) => self.spans.get(prev)?.1,
            None => 0,
        };
        let &(name_end, value_end) = self.spans.get(i)?;
        Some((
            self.text.get(start..name_end)?,
            self.text.get(name_end..value_end)?,
        ))
    }

    /// Calls `sample(suffix, extra_label, value)` for each sample of the metric `fill` took:
    /// `suffix` goes after the family name (`_bucket`, `_sum`), `extra_label` is `le` or
    /// `quantile` with its bound.
    pub(crate) fn samples(
        &self,
        m: &Metric,
        mut sample: impl FnMut(&str, Option<(&'static str, f64)>, Value),
    ) {
        match m.kind {
            Kind::Counter | Kind::Gauge => {
                if let Some(v) = m.value {
                    sample("", None, v);
                }
            }
            Kind::Summary => {
                for &(q, v) in &m.quantiles {
                    if q.is_finite() {
                        sample("", Some(("quantile", q)), Value::F64(v));
                    }
                }
                if let Some(sum) = m.sum {
                    sample("_sum", None, Value::F64(sum));
                }
                if let Some(c) = m.count {
                    sample("_count", None, Value::U64(c));
                }
            }
            Kind::Histogram => histogram_samples(m, sample),
            Kind::Set | Kind::Distribution => {}
        }
    }
}

/// Checks the values a kind needs, the part of `Shape::fill` after the name.
fn check_values(m: &Metric) -> Result<(), Unsupported> {
    match m.kind {
        Kind::Counter | Kind::Gauge if m.value.is_none() => Err(Unsupported::MISSING_VALUE),
        Kind::Histogram => histogram_total(m).map(|_| ()),
        Kind::Summary
            if m.count.is_none()
                && m.sum.is_none()
                && !m.quantiles.iter().any(|(q, _)| q.is_finite()) =>
        {
            Err(Unsupported::NOTHING_TO_WRITE)
        }
        _ => Ok(()),
    }
}

fn histogram_samples(m: &Metric, mut sample: impl FnMut(&str, Option<(&'static str, f64)>, Value)) {
    let total = m.counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
    let mut cumulative = 0u64;
    for (&b, &c) in m.bounds.iter().zip(&m.counts) {
        cumulative = cumulative.saturating_add(c);
        // An explicit +Inf bound would duplicate the `le="+Inf"` bucket below.
        if b != f64::INFINITY {
            sample("_bucket", Some(("le", b)), Value::U64(cumulative));
        }
    }
    sample("_bucket", Some(("le", f64::INFINITY)), Value::U64(total));
    if let Some(sum) = m.sum {
        sample("_sum", None, Value::F64(sum));
    }
    sample("_count", None, Value::U64(total));
}

/// The labels of a `Shape`, `(name, value)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Labels<'a> {
    text: &'a str,
    spans: &'a [(usize, usize)],
    at: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let (&(name_end, value_end), rest) = self.spans.split_first()?;
        let item = (
            self.text.get(self.at..name_end)?,
            self.text.get(name_end..value_end)?,
        );
        self.spans = rest;
        self.at = value_end;
        Some(item)
    }
}

struct Series<'a> {
    name: &'a str,
    labels: &'a [u8],
    ts_ms: Option<i64>,
}

impl Series<'_> {
    fn sample(
        &self,
        out: &mut Vec<u8>,
        suffix: &str,
        extra: Option<(&str, f64)>,
        value: impl FnOnce(&mut Vec<u8>),
    ) {
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(suffix.as_bytes());
        if !self.labels.is_empty() || extra.is_some() {
            out.push(b'{');
            out.extend_from_slice(self.labels);
            if let Some((k, v)) = extra {
                if !self.labels.is_empty() {
                    out.push(b',');
                }
                out.extend_from_slice(k.as_bytes());
                out.extend_from_slice(b"=\"");
                write_label_float(out, v);
                out.push(b'"');
            }
            out.push(b'}');
        }
        out.push(b' ');
        value(out);
        if let Some(ts) = self.ts_ms {
            out.push(b' ');
            write_int(out, ts);
        }
        out.push(b'\n');
    }
}

fn write_value(out: &mut Vec<u8>, v: Value) {
    match v {
        Value::U64(u) => write_int(out, u),
        Value::I64(i) => write_int(out, i),
        Value::F64(f) => write_f64(out, f),
    }
}

/// A sample value; unlike JSON, the exposition format spells out NaN and infinities bare.
fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        crate::ndjson::encode::write_f64(out, v);
    } else if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v > 0.0 {
        out.extend_from_slice(b"+Inf");
    } else {
        out.extend_from_slice(b"-Inf");
    }
}

/// An `le` or `quantile` value, spelled as the Go clients do so the series match theirs.
pub(crate) fn write_label_float(out: &mut Vec<u8>, v: f64) {
    match Decimal::new(v) {
        Some(d) => d.write_go_g(out),
        None => write_f64(out, v),
    }
}

fn write_metric_name(out: &mut String, name: &str) {
    let inner = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    if name.bytes().all(inner) && !name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push_str(name);
        return;
    }
    for (i, c) in name.chars().enumerate() {
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
        }
        out.push(if c.is_ascii() && inner(c as u8) {
            c
        } else {
            '_'
        });
    }
}

/// Returns whether the name had to be rewritten.
fn write_label_name(out: &mut String, name: &str) -> bool {
    let inner = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if name.bytes().all(inner) && !name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push_str(name);
        return false;
    }
    for (i, c) in name.chars().enumerate() {
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
        }
        out.push(if c.is_ascii() && inner(c as u8) {
            c
        } else {
            '_'
        });
    }
    true
}

fn write_label_value(out: &mut Vec<u8>, v: &str) {
    let b = v.as_bytes();
    if !b.iter().any(|&c| matches!(c, b'\\' | b'"' | b'\n')) {
        out.extend_from_slice(b);
        return;
    }
    for &c in b {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: i64 = 1_700_000_000_123_456_789;

    fn enc_with(e: &mut PrometheusEncoder, m: &Metric) -> Result<String, Unsupported> {
        let mut out = Vec::new();
        e.encode(m, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn enc(m: &Metric) -> Result<String, Unsupported> {
        enc_with(&mut PrometheusEncoder::default(), m)
    }

    #[test]
    fn gauge_with_labels() {
        let m = Metric::gauge("node.load1", Value::F64(0.25), TS)
            .with_tag("host", "web-1")
            .with_tag("dc", "eu");
        assert_eq!(
            enc(&m).unwrap(),
            "# TYPE node_load1 gauge\nnode_load1{dc=\"eu\",host=\"web-1\"} 0.25 1700000000123\n"
        );
    }

    #[test]
    fn gauge_values() {
        let cases = [
            (Value::F64(f64::NAN), "NaN"),
            (Value::F64(f64::INFINITY), "+Inf"),
            (Value::F64(f64::NEG_INFINITY), "-Inf"),
            (Value::F64(5.0), "5.0"),
            (Value::U64(u64::MAX), "18446744073709551615"),
            (Value::I64(-7), "-7"),
        ];
        for (v, text) in cases {
            let m = Metric::gauge("g", v, 1_000_000);
            assert_eq!(enc(&m).unwrap(), format!("# TYPE g gauge\ng {text} 1\n"));
        }
    }

    #[test]
    fn timestamps_are_milliseconds_towards_the_past() {
        let m = Metric::gauge("g", Value::U64(1), -1);
        assert_eq!(enc(&m).unwrap(), "# TYPE g gauge\ng 1 -1\n");
    }

    #[test]
    fn counters_get_total_once() {
        let m = Metric::counter("http.requests", Temporality::Cumulative, Value::U64(10), TS);
        assert_eq!(
            enc(&m).unwrap(),
            "# TYPE http_requests_total counter\nhttp_requests_total 10 1700000000123\n"
        );
        let m = Metric::counter("bytes_total", Temporality::Cumulative, Value::U64(1), TS);
        assert_eq!(
            enc(&m).unwrap(),
            "# TYPE bytes_total counter\nbytes_total 1 1700000000123\n"
        );
        let m = Metric::counter("bytes.total", Temporality::Cumulative, Value::U64(1), TS);
        assert_eq!(
            enc(&m).unwrap(),
            "# TYPE bytes_total counter\nbytes_total 1 1700000000123\n"
        );
    }

    #[test]
    fn unsupported_kinds_and_temporalities() {
        let m = Metric::counter("c", Temporality::Delta, Value::U64(1), TS);
        assert_eq!(enc(&m), Err(Unsupported::DELTA_COUNTER));
        let mut m = Metric::counter("c", Temporality::Delta, Value::U64(1), TS);
        m.temporality = None;
        assert_eq!(enc(&m), Err(Unsupported::NO_TEMPORALITY));
        let mut h = histogram();
        h.temporality = Some(Temporality::Delta);
        assert_eq!(enc(&h), Err(Unsupported::DELTA_HISTOGRAM));
        for kind in [Kind::Set, Kind::Distribution] {
            let m = Metric {
                name: "x".into(),
                kind,
                ..Metric::default()
            };
            assert_eq!(enc(&m), Err(Unsupported::RAW_SET_OR_DISTRIBUTION));
        }
        let mut m = Metric::gauge("g", Value::U64(1), 1);
        m.value = None;
        assert_eq!(enc(&m), Err(Unsupported::MISSING_VALUE));
        m.name.clear();
        assert_eq!(enc(&m), Err(Unsupported::EMPTY_NAME));
    }

    #[test]
    fn names_are_sanitized() {
        let m = Metric::gauge("9lives.é-x:y", Value::U64(1), 0)
            .with_tag("0zone", "a")
            .with_tag("k8s.pod-name", "b")
            .with_tag("ns:x", "c")
            .with_tag("", "dropped");
        assert_eq!(
            enc(&m).unwrap(),
            "# TYPE _9lives___x:y gauge\n_9lives___x:y{_0zone=\"a\",k8s_pod_name=\"b\",ns_x=\"c\"} 1 0\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metric::gauge("g", Value::U64(1), 0).with_tag("path", "C:\\a \"b\"\nc\té");
        assert_eq!(
            enc(&m).unwrap(),
            "# TYPE g gauge\ng{path=\"C:\\\\a \\\"b\\\"\\nc\té\"} 1 0\n"
        );
    }

    #[test]
    fn clashing_and_reserved_labels_are_unsupported() {
        let m = Metric::gauge("g", Value::U64(1), 0)
            .with_tag("a.b", "1")
            .with_tag("a_b", "2");
        assert_eq!(enc(&m), Err(Unsupported::LABEL_CLASH));
        let mut h = histogram();
        h.tags.insert("le", "x");
        assert_eq!(enc(&h), Err(Unsupported::RESERVED_LABEL));
        let mut s = summary();
        s.tags.insert("quantile", "x");
        assert_eq!(enc(&s), Err(Unsupported::RESERVED_LABEL));
        // `le` means nothing special outside histograms.
        let m = Metric::gauge("g", Value::U64(1), 0).with_tag("le", "x");
        assert_eq!(enc(&m).unwrap(), "# TYPE g gauge\ng{le=\"x\"} 1 0\n");
    }

    fn summary() -> Metric {
        Metric {
            name: "db.query".into(),
            kind: Kind::Summary,
            temporality: Some(Temporality::Delta),
            quantiles: vec![(0.5, 13.0), (0.999, f64::NAN), (f64::NAN, 1.0)],
            count: Some(6),
            sum: Some(211.4),
            min: Some(12.5),
            max: Some(80.2),
            ts: TS,
            ..Metric::default()
        }
        .with_tag("env", "prod")
    }

    #[test]
    fn summary_layout() {
        assert_eq!(
            enc(&summary()).unwrap(),
            "# TYPE db_query summary\n\
             db_query{env=\"prod\",quantile=\"0.5\"} 13.0 1700000000123\n\
             db_query{env=\"prod\",quantile=\"0.999\"} NaN 1700000000123\n\
             db_query_sum{env=\"prod\"} 211.4 1700000000123\n\
             db_query_count{env=\"prod\"} 6 1700000000123\n"
        );
        let mut m = summary();
        m.tags.clear();
        m.quantiles.clear();
        m.sum = None;
        assert_eq!(
            enc(&m).unwrap(),
            "# TYPE db_query summary\ndb_query_count 6 1700000000123\n"
        );
        m.count = None;
        assert_eq!(enc(&m), Err(Unsupported::NOTHING_TO_WRITE));
    }

    fn histogram() -> Metric {
        Metric {
            name: "http.latency".into(),
            kind: Kind::Histogram,
            temporality: Some(Temporality::Cumulative),
            bounds: vec![-1.0, 0.5, 1.0, 1e6, f64::INFINITY],
            counts: vec![1, 2, 3, 4, 5, 0],
            sum: Some(42.5),
            ts: TS,
            ..Metric::default()
        }
    }

    #[test]
    fn histogram_layout() {
        assert_eq!(
            enc(&histogram()).unwrap(),
            "# TYPE http_latency histogram\n\
             http_latency_bucket{le=\"-1\"} 1 1700000000123\n\
             http_latency_bucket{le=\"0.5\"} 3 1700000000123\n\
             http_latency_bucket{le=\"1\"} 6 1700000000123\n\
             http_latency_bucket{le=\"1e+06\"} 10 1700000000123\n\
             http_latency_bucket{le=\"+Inf\"} 15 1700000000123\n\
             http_latency_sum 42.5 1700000000123\n\
             http_latency_count 15 1700000000123\n"
        );
        let mut m = histogram();
        m.bounds = vec![2.0];
        m.counts = vec![u64::MAX, 1];
        m.sum = None;
        m = m.with_tag("h", "a");
        assert_eq!(
            enc(&m).unwrap(),
            "# TYPE http_latency histogram\n\
             http_latency_bucket{h=\"a\",le=\"2\"} 18446744073709551615 1700000000123\n\
             http_latency_bucket{h=\"a\",le=\"+Inf\"} 18446744073709551615 1700000000123\n\
             http_latency_count{h=\"a\"} 18446744073709551615 1700000000123\n"
        );
        m.counts.pop();
        assert_eq!(enc(&m), Err(Unsupported::BAD_HISTOGRAM));
        m.bounds = vec![f64::NAN];
        m.counts = vec![1, 2];
        assert_eq!(enc(&m), Err(Unsupported::NAN_BOUND));
    }

    #[test]
    fn type_line_only_when_the_family_changes() {
        let mut e = PrometheusEncoder::default();
        let a1 = Metric::gauge("a", Value::U64(1), 0).with_tag("h", "x");
        let a2 = Metric::gauge("a", Value::U64(2), 0).with_tag("h", "y");
        let b = Metric::gauge("b", Value::U64(3), 0);
        let a_counter = Metric::counter("a", Temporality::Cumulative, Value::U64(4), 0);
        let a_summary = Metric {
            name: "a".into(),
            kind: Kind::Summary,
            temporality: Some(Temporality::Cumulative),
            count: Some(1),
            ..Metric::default()
        };
        let delta = Metric::counter("z", Temporality::Delta, Value::U64(1), 0);
        let mut out = Vec::new();
        for m in [&a1, &a2, &b, &delta, &b, &a_counter, &a_summary, &a1] {
            let _ = e.encode(m, &mut out);
        }
        e.finish(&mut out);
        e.encode(&a1, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# TYPE a gauge\na{h=\"x\"} 1 0\na{h=\"y\"} 2 0\n\
             # TYPE b gauge\nb 3 0\nb 3 0\n\
             # TYPE a_total counter\na_total 4 0\n\
             # TYPE a summary\na_count 1 0\n\
             # TYPE a gauge\na{h=\"x\"} 1 0\n\
             # TYPE a gauge\na{h=\"x\"} 1 0\n"
        );
    }

    #[test]
    fn untimed_samples_have_no_timestamp() {
        let mut h = histogram();
        h.bounds = vec![1.0];
        h.counts = vec![1, 2];
        let mut e = PrometheusEncoder::untimed();
        assert_eq!(
            enc_with(&mut e, &h).unwrap(),
            "# TYPE http_latency histogram\n\
             http_latency_bucket{le=\"1\"} 1\n\
             http_latency_bucket{le=\"+Inf\"} 3\n\
             http_latency_sum 42.5\n\
             http_latency_count 3\n"
        );
        assert_eq!(e.content_type(), "text/plain; version=0.0.4; charset=utf-8");
    }

    #[test]
    fn boxed_encoder_is_prometheus() {
        let mut e = super::super::encoder(super::super::Format::Prometheus);
        let mut out = Vec::new();
        e.encode(&Metric::gauge("g", Value::U64(1), 0), &mut out)
            .unwrap();
        assert_eq!(out, b"# TYPE g gauge\ng 1 0\n");
    }
}
