//! Prometheus remote_write 1.0: a snappy-compressed protobuf `WriteRequest` of one
//! `TimeSeries` per sample.
//!
//! The protobuf is written by hand; only these messages are needed:
//! `WriteRequest { repeated TimeSeries timeseries = 1; }`,
//! `TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }`,
//! `Label { string name = 1; string value = 2; }`,
//! `Sample { double value = 1; int64 timestamp = 2; }` (milliseconds).

use super::prometheus::{write_label_float, Shape};
use super::{all_or_nothing, Encoder, Unsupported};
use crate::metric::{Metric, Value};

/// Field 1 (`timeseries`, `labels`, `Label.name`), length-delimited.
const TAG_1_BYTES: u8 = 0x0a;
/// Field 2 (`samples`, `Label.value`), length-delimited.
const TAG_2_BYTES: u8 = 0x12;
/// `Sample.value`, fixed64.
const TAG_VALUE: u8 = 0x09;
/// `Sample.timestamp`, varint.
const TAG_TIMESTAMP: u8 = 0x10;

/// Encoder for Prometheus remote_write 1.0 (`Content-Encoding: snappy`,
/// `X-Prometheus-Remote-Write-Version: 0.1.0`).
///
/// Metrics map to series exactly as in `PrometheusEncoder` (same names, `_total`, `le` and
/// `quantile` spelling, same `Unsupported` cases), each sample becoming one `TimeSeries`
/// whose labels are `__name__` and the tags, sorted by name as the protocol requires (so
/// `__name__` comes first unless a label name sorts before it, as `Host` or `_0zone` do).
/// A tag whose label name is `__name__` is `LABEL_CLASH`. Labels with an empty value are
/// left out: Prometheus treats them as absent and some receivers reject them. Values are
/// doubles (integers above 2^53 round); a NaN value is sent as the ordinary NaN, never as
/// Prometheus' staleness marker.
///
/// The body is the concatenated `WriteRequest` fields; `seal` compresses it with snappy's
/// block format. A body over snappy's limit (about 4 GiB) seals to nothing.
#[derive(Debug, Default)]
pub struct RemoteWriteEncoder {
    shape: Shape,
    /// Label indexes of the metric in hand, sorted by label name.
    order: Vec<usize>,
    /// `__name__` of the sample in hand.
    name: String,
    /// The `le` / `quantile` value of the sample in hand.
    extra: Vec<u8>,
    /// The `TimeSeries` message being built, whose length prefixes it.
    series: Vec<u8>,
    snappy: Snappy,
}

/// `snap::raw::Encoder` keeps its hash table between calls; it does not implement `Debug`.
struct Snappy(snap::raw::Encoder);

impl Default for Snappy {
    fn default() -> Self {
        Snappy(snap::raw::Encoder::new())
    }
}

impl std::fmt::Debug for Snappy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snappy")
    }
}

impl Encoder for RemoteWriteEncoder {
    fn stateless(&self) -> bool {
        true
    }

    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        all_or_nothing(out, |out| self.write(m, out))
    }

    fn seal(&mut self, body: &[u8], out: &mut Vec<u8>) {
        let max = snap::raw::max_compress_len(body.len());
        let start = out.len();
        out.resize(start + max, 0);
        match self.snappy.0.compress(body, &mut out[start..]) {
            Ok(n) => out.truncate(start + n),
            Err(_) => out.truncate(start),
        }
    }

    fn content_type(&self) -> &'static str {
        "application/x-protobuf"
    }
}

impl RemoteWriteEncoder {
    fn write(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        self.shape.fill(m)?;
        let RemoteWriteEncoder {
            shape,
            order,
            name,
            extra,
            series,
            ..
        } = self;
        if shape.labels().any(|(k, _)| k == "__name__") {
            return Err(Unsupported::LABEL_CLASH);
        }
        order.clear();
        order.extend(0..shape.label_count());
        order.sort_unstable_by_key(|&i| shape.label(i).map(|(k, _)| k));
        let ts_ms = m.ts.div_euclid(1_000_000);
        shape.samples(m, |suffix, label, v| {
            name.clear();
            name.push_str(&shape.name);
            name.push_str(suffix);
            extra.clear();
            let label = label.map(|(k, bound)| {
                write_label_float(extra, bound);
                (k, &extra[..])
            });
            series.clear();
            write_labels(series, shape, order, name, label);
            write_sample(series, value(v), ts_ms);
            out.push(TAG_1_BYTES);
            write_varint(out, series.len() as u64);
            out.extend_from_slice(series);
        });
        Ok(())
    }
}

/// Writes `__name__`, `extra` and the shape's labels, merged in label-name order.
fn write_labels(
    series: &mut Vec<u8>,
    shape: &Shape,
    order: &[usize],
    name: &str,
    extra: Option<(&str, &[u8])>,
) {
    let mut special = [Some(("__name__", name.as_bytes())), extra];
    if let [Some(a), Some(b)] = special {
        if b.0 < a.0 {
            special = [Some(b), Some(a)];
        }
    }
    let mut special = special.into_iter().flatten().peekable();
    for &i in order {
        let Some((k, v)) = shape.label(i) else {
            continue;
        };
        while let Some(s) = special.next_if(|&(sk, _)| sk < k) {
            write_label(series, s.0.as_bytes(), s.1);
        }
        if !v.is_empty() {
            write_label(series, k.as_bytes(), v.as_bytes());
        }
    }
    for (k, v) in special {
        write_label(series, k.as_bytes(), v);
    }
}

fn write_label(series: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let len = field_len(name.len()) + field_len(value.len());
    series.push(TAG_1_BYTES);
    write_varint(series, len as u64);
    write_bytes_field(series, TAG_1_BYTES, name);
    write_bytes_field(series, TAG_2_BYTES, value);
}

fn write_sample(series: &mut Vec<u8>, v: f64, ts_ms: i64) {
    let ts = ts_ms as u64;
    series.push(TAG_2_BYTES);
    write_varint(series, (1 + 8 + 1 + varint_len(ts)) as u64);
    series.push(TAG_VALUE);
    series.extend_from_slice(&v.to_le_bytes());
    series.push(TAG_TIMESTAMP);
    // int64 is a varint of the two's complement, so a negative time takes ten bytes.
    write_varint(series, ts);
}

/// A sample value as the double remote_write carries.
fn value(v: Value) -> f64 {
    let f = v.as_f64();
    // Only the one NaN bit pattern Prometheus reserves marks a series stale; any other NaN
    // is a value, so every NaN is sent as the ordinary one.
    if f.is_nan() {
        f64::NAN
    } else {
        f
    }
}

fn write_bytes_field(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    write_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The size of a length-delimited field holding `len` bytes, tag included.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Kind, Temporality};

    type Labels = Vec<(String, String)>;
    type Series = (Labels, Vec<(f64, i64)>);

    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                break;
            }
        }
        v
    }

    /// Reads one length-delimited field with the expected tag.
    fn bytes<'a>(b: &mut &'a [u8], tag: u8) -> &'a [u8] {
        assert_eq!(b[0], tag);
        *b = &b[1..];
        let len = varint(b) as usize;
        let (field, rest) = b.split_at(len);
        *b = rest;
        field
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    /// Decodes a `WriteRequest`, accepting only the fields this encoder writes.
    fn decode(mut req: &[u8]) -> Vec<Series> {
        let mut all = Vec::new();
        while !req.is_empty() {
            let mut ts = bytes(&mut req, 0x0a);
            let (mut labels, mut samples) = (Vec::new(), Vec::new());
            while !ts.is_empty() {
                if ts[0] == 0x0a {
                    let mut l = bytes(&mut ts, 0x0a);
                    let name = text(bytes(&mut l, 0x0a));
                    let value = text(bytes(&mut l, 0x12));
                    assert!(l.is_empty());
                    labels.push((name, value));
                } else {
                    let mut s = bytes(&mut ts, 0x12);
                    assert_eq!(s[0], 0x09);
                    let v = f64::from_le_bytes(s[1..9].try_into().unwrap());
                    s = &s[9..];
                    assert_eq!(s[0], 0x10);
                    s = &s[1..];
                    let t = varint(&mut s) as i64;
                    assert!(s.is_empty());
                    samples.push((v, t));
                }
            }
            all.push((labels, samples));
        }
        all
    }

    fn body(ms: &[Metric]) -> Result<Vec<u8>, Unsupported> {
        let mut e = RemoteWriteEncoder::default();
        let mut out = Vec::new();
        for m in ms {
            e.encode(m, &mut out)?;
        }
        Ok(out)
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    const TS: i64 = 1_700_000_000_123_456_789;

    #[test]
    fn exact_bytes_of_one_gauge() {
        let m = Metric::gauge("g", Value::F64(1.5), 2_000_000);
        let mut want = vec![0x0a, 28, 0x0a, 13, 0x0a, 8];
        want.extend_from_slice(b"__name__");
        want.extend_from_slice(&[0x12, 1, b'g', 0x12, 11, 0x09]);
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 2]);
        assert_eq!(body(&[m]).unwrap(), want);
    }

    #[test]
    fn labels_are_sorted_with_the_name() {
        let m = Metric::counter("http.requests", Temporality::Cumulative, Value::U64(7), TS)
            .with_tag("zone", "b")
            .with_tag("Host", "web-1")
            .with_tag("a.b", "x")
            .with_tag("a_a", "y")
            .with_tag("empty", "");
        assert_eq!(
            decode(&body(&[m]).unwrap()),
            [(
                labels(&[
                    ("Host", "web-1"),
                    ("__name__", "http_requests_total"),
                    ("a_a", "y"),
                    ("a_b", "x"),
                    ("zone", "b"),
                ]),
                vec![(7.0, 1_700_000_000_123)]
            )]
        );
    }

    #[test]
    fn histograms_expand_like_the_text_format() {
        let m = Metric {
            name: "lat".into(),
            kind: Kind::Histogram,
            temporality: Some(Temporality::Cumulative),
            bounds: vec![0.5, 1e6],
            counts: vec![1, 2, 3],
            sum: Some(f64::NAN),
            ts: -1,
            ..Metric::default()
        }
        .with_tag("host", "a");
        let got = decode(&body(&[m]).unwrap());
        let names: Vec<Labels> = got.iter().map(|(l, _)| l.clone()).collect();
        let bucket = |le| labels(&[("__name__", "lat_bucket"), ("host", "a"), ("le", le)]);
        assert_eq!(
            names,
            [
                bucket("0.5"),
                bucket("1e+06"),
                bucket("+Inf"),
                labels(&[("__name__", "lat_sum"), ("host", "a")]),
                labels(&[("__name__", "lat_count"), ("host", "a")]),
            ]
        );
        let values: Vec<f64> = got.iter().map(|(_, s)| s[0].0).collect();
        assert_eq!(values[..3], [1.0, 3.0, 6.0]);
        assert!(values[3].is_nan());
        assert_eq!(got[0].1[0].1, -1);
    }

    #[test]
    fn summaries_carry_quantile_labels() {
        let m = Metric {
            name: "q".into(),
            kind: Kind::Summary,
            temporality: Some(Temporality::Delta),
            quantiles: vec![(0.99, 2.0)],
            count: Some(u64::MAX),
            ts: 0,
            ..Metric::default()
        };
        let got = decode(&body(&[m]).unwrap());
        assert_eq!(
            got,
            [
                (
                    labels(&[("__name__", "q"), ("quantile", "0.99")]),
                    vec![(2.0, 0)]
                ),
                (
                    labels(&[("__name__", "q_count")]),
                    vec![(u64::MAX as f64, 0)]
                ),
            ]
        );
    }

    #[test]
    fn unsupported_like_prometheus() {
        let delta = Metric::counter("c", Temporality::Delta, Value::U64(1), 0);
        assert_eq!(body(&[delta]), Err(Unsupported::DELTA_COUNTER));
        let named = Metric::gauge("g", Value::U64(1), 0).with_tag("__name__", "x");
        assert_eq!(body(&[named]), Err(Unsupported::LABEL_CLASH));
        let mut e = RemoteWriteEncoder::default();
        let mut out = b"keep".to_vec();
        let set = Metric {
            name: "s".into(),
            kind: Kind::Set,
            ..Metric::default()
        };
        assert_eq!(
            e.encode(&set, &mut out),
            Err(Unsupported::RAW_SET_OR_DISTRIBUTION)
        );
        assert_eq!(out, b"keep");
    }

    #[test]
    fn stale_nan_is_never_sent() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let got = decode(&body(&[Metric::gauge("g", Value::F64(stale), 0)]).unwrap());
        assert_eq!(got[0].1[0].0.to_bits(), f64::NAN.to_bits());
    }

    #[test]
    fn seal_is_snappy_block_format() {
        let ms: Vec<Metric> = (0..100)
            .map(|i| Metric::gauge("node.load1", Value::U64(i), TS).with_tag("host", "web"))
            .collect();
        let b = body(&ms).unwrap();
        let mut e = RemoteWriteEncoder::default();
        let mut sealed = b"prefix".to_vec();
        e.seal(&b, &mut sealed);
        assert!(sealed.len() < b.len());
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&sealed[6..])
            .unwrap();
        assert_eq!(raw, b);
        assert_eq!(decode(&raw).len(), 100);
        let mut empty = Vec::new();
        e.seal(&[], &mut empty);
        assert_eq!(
            snap::raw::Decoder::new().decompress_vec(&empty).unwrap(),
            b""
        );
        assert_eq!(e.content_type(), "application/x-protobuf");
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(varint(&mut &out[..]), v);
        }
    }
}
