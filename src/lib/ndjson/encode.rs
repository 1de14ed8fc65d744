//! Writes a `Metric` as one tlm metric v1 line, fields in the contract's order.

use crate::append::append;
use crate::metric::{Metric, Value};

/// Appends `s` as a JSON string (with quotes) to `out`.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let plain = super::scan::find_special(bytes, 0).is_none();
    if plain {
        out.extend_from_slice(bytes);
    } else {
        for &b in bytes {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                c if c < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(c >> 4) as usize]);
                    out.push(HEX[(c & 15) as usize]);
                }
                c => out.push(c),
            }
        }
    }
    out.push(b'"');
}

/// Appends a float; NaN and infinities become the strings the contract names.
#[inline]
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        if !write_short_decimal(out, v) {
            let mut buf = ryu::Buffer::new();
            out.extend_from_slice(buf.format_finite(v).as_bytes());
        }
    } else if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if v > 0.0 {
        out.extend_from_slice(b"\"+Inf\"");
    } else {
        out.extend_from_slice(b"\"-Inf\"");
    }
}

/// Writes `v` as `ryu` writes it when it is a decimal of at most three fractional digits
/// below 10^12 in magnitude, as most measured values are; false (nothing written) for any
/// other float. Found with a multiply and a division per digit count rather than ryu's
/// search: the decimal `n / 10^k` with the fewest digits `k` that reads back as `v` (IEEE
/// division rounds correctly, so `n / 10^k == v` is exactly "reads back"). Below 10^12 the
/// floats are less than 10^-3 apart, so no other decimal of `k` digits reads back as `v`
/// and none of fewer does: that is ryu's shortest, which it writes in this notation from
/// 10^-5 to 10^16.
#[inline]
fn write_short_decimal(out: &mut Vec<u8>, v: f64) -> bool {
    const SCALES: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];
    let a = v.abs();
    if !(a < 1e12 && a > 0.0) {
        return false;
    }
    let Some((k, n)) = SCALES.iter().enumerate().find_map(|(k, &scale)| {
        // Below 10^15 the cast is exact, and rounds without a libm call as `round` would.
        let x = a * scale;
        let whole = x as i64;
        let n = whole + i64::from(x - whole as f64 >= 0.5);
        (n as f64 / scale == a).then_some((k, n.unsigned_abs()))
    }) else {
        return false;
    };
    if v < 0.0 {
        out.push(b'-');
    }
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n).as_bytes();
    if k == 0 {
        out.extend_from_slice(digits);
        out.extend_from_slice(b".0");
    } else if digits.len() > k {
        let (whole, fraction) = digits.split_at(digits.len() - k);
        out.extend_from_slice(whole);
        out.push(b'.');
        out.extend_from_slice(fraction);
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', k - digits.len()));
        out.extend_from_slice(digits);
    }
    true
}

/// The floats written on one line, to copy rather than format again: a summary of a single
/// value writes that value as every quantile and as sum, min and max.
#[derive(Default)]
struct Floats {
    bits: [u64; 4],
    texts: [[u8; 24]; 4],
    lens: [u8; 4],
    used: usize,
}

impl Floats {
    /// `write_f64`, from a copy when the same float was written before.
    #[inline]
    fn write(&mut self, out: &mut Vec<u8>, v: f64) {
        if !v.is_finite() {
            return write_f64(out, v);
        }
        let bits = v.to_bits();
        if let Some(i) = self.bits[..self.used].iter().position(|&b| b == bits) {
            append(out, &self.texts[i][..self.lens[i] as usize]);
            return;
        }
        let from = out.len();
        write_f64(out, v);
        let text = &out[from..];
        // ryu writes at most 24 bytes.
        if self.used < self.bits.len() && text.len() <= 24 {
            let i = self.used;
            self.texts[i][..text.len()].copy_from_slice(text);
            (self.bits[i], self.lens[i], self.used) = (bits, text.len() as u8, i + 1);
        }
    }
}

#[inline]
pub fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

#[inline]
pub fn write_value(out: &mut Vec<u8>, v: Value) {
    match v {
        Value::U64(v) => write_int(out, v),
        Value::I64(v) => write_int(out, v),
        Value::F64(v) => write_f64(out, v),
    }
}

#[inline]
fn key(out: &mut Vec<u8>, k: &str) {
    out.extend_from_slice(b",\"");
    append(out, k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn f64_array(out: &mut Vec<u8>, name: &str, vs: &[f64], floats: &mut Floats) {
    key(out, name);
    out.push(b'[');
    for (i, &v) in vs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        floats.write(out, v);
    }
    out.push(b']');
}

/// Appends one line (with its trailing newline) to `out`.
/// `{"k":"v",…}` in the order given (tags are sorted by key in the format).
pub fn write_tags<'t>(out: &mut Vec<u8>, tags: impl Iterator<Item = (&'t str, &'t str)>) {
    out.push(b'{');
    for (i, (k, v)) in tags.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_str(out, v);
    }
    out.push(b'}');
}

pub fn encode(m: &Metric, out: &mut Vec<u8>) {
    encode_fields(m, out);
    key(out, "ts");
    write_int(out, m.ts);
    if let Some(s) = m.start_ts {
        key(out, "start_ts");
        write_int(out, s);
    }
    if !m.tags.is_empty() {
        key(out, "tags");
        write_tags(out, m.tags.iter());
    }
    encode_extra(m, out);
}

/// What consecutive lines of one writer share, encoded once: the tags of the series being
/// written (lines of one series repeat them) and the last timestamps (lines of one window
/// repeat them).
#[derive(Default)]
pub struct LineCache {
    /// The tags as a JSON object (`{"k":"v",…}` as `write_tags` writes it), or empty for
    /// none; `encode_cached` writes these instead of the metric's own tags.
    pub tags: Vec<u8>,
    /// Set by a caller that knows the metric's name holds no byte JSON escapes (`"`, `\`,
    /// below 0x20): it is then copied as it is, without the check `write_str` makes.
    pub name_plain: bool,
    /// What `tags` was made from, for a caller that makes it from other bytes and keeps it
    /// while they repeat (empty when unknown).
    pub tags_source: Vec<u8>,
    ts: IntText,
    start_ts: IntText,
}

/// The digits of the integer last written, kept while the next one is the same.
#[derive(Default)]
struct IntText {
    value: Option<i64>,
    len: usize,
    text: [u8; 20],
}

impl IntText {
    #[inline]
    fn write(&mut self, out: &mut Vec<u8>, v: i64) {
        if self.value != Some(v) {
            let mut buf = itoa::Buffer::new();
            let digits = buf.format(v).as_bytes();
            // An i64 has at most 20 characters ("-9223372036854775808").
            self.len = digits.len().min(self.text.len());
            self.text[..self.len].copy_from_slice(&digits[..self.len]);
            self.value = Some(v);
        }
        append(out, &self.text[..self.len]);
    }
}

/// A line with most of a line's bytes: growing the buffer once per line is cheaper than
/// checking the capacity in every small append.
const LINE_GUESS: usize = 256;

/// `encode` with `m`'s tags replaced by `p.tags` (`m.tags` is not read): the same bytes as
/// `encode` of `m` carrying those tags.
pub fn encode_cached(m: &Metric, p: &mut LineCache, out: &mut Vec<u8>) {
    out.reserve(LINE_GUESS + p.tags.len());
    if p.name_plain {
        debug_assert!(super::scan::find_special(m.name.as_bytes(), 0).is_none());
        out.extend_from_slice(b"{\"name\":\"");
        append(out, m.name.as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(b"{\"name\":");
        write_str(out, &m.name);
    }
    encode_after_name(m, out);
    out.extend_from_slice(b",\"ts\":");
    p.ts.write(out, m.ts);
    if let Some(s) = m.start_ts {
        out.extend_from_slice(b",\"start_ts\":");
        p.start_ts.write(out, s);
    }
    if !p.tags.is_empty() {
        out.extend_from_slice(b",\"tags\":");
        append(out, &p.tags);
    }
    encode_extra(m, out);
}

/// Every field before `ts`.
#[inline]
fn encode_fields(m: &Metric, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"name\":");
    write_str(out, &m.name);
    encode_after_name(m, out);
}

/// Every field after the name and before `ts`.
#[inline]
fn encode_after_name(m: &Metric, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"kind\":\"");
    append(out, m.kind.as_str().as_bytes());
    out.push(b'"');
    if let Some(t) = m.temporality {
        key(out, "temporality");
        out.push(b'"');
        append(out, t.as_str().as_bytes());
        out.push(b'"');
    }
    if !m.unit.is_empty() {
        key(out, "unit");
        write_str(out, &m.unit);
    }
    if let Some(v) = m.value {
        key(out, "value");
        write_value(out, v);
    }
    let mut floats = Floats::default();
    encode_arrays(m, out, &mut floats);
    for (name, v) in [("sum", m.sum), ("min", m.min), ("max", m.max)] {
        if let Some(v) = v {
            key(out, name);
            floats.write(out, v);
        }
    }
}

/// The extra fields and the end of the line.
#[inline]
fn encode_extra(m: &Metric, out: &mut Vec<u8>) {
    if !m.extra.is_empty() {
        out.push(b',');
        out.extend_from_slice(m.extra.as_bytes());
    }
    out.extend_from_slice(b"}\n");
}

fn encode_arrays(m: &Metric, out: &mut Vec<u8>, floats: &mut Floats) {
    if !m.members.is_empty() {
        key(out, "values");
        out.push(b'[');
        for (i, s) in m.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, s);
        }
        out.push(b']');
    } else if !m.values.is_empty() || m.kind == crate::metric::Kind::Distribution {
        f64_array(out, "values", &m.values, floats);
    }
    if let Some(r) = m.sample_rate {
        key(out, "sample_rate");
        write_f64(out, r);
    }
    if !m.bounds.is_empty() || !m.counts.is_empty() {
        f64_array(out, "bounds", &m.bounds, floats);
        key(out, "counts");
        out.push(b'[');
        for (i, &c) in m.counts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_int(out, c);
        }
        out.push(b']');
    }
    if !m.quantiles.is_empty() {
        key(out, "quantiles");
        out.push(b'[');
        for (i, &(q, v)) in m.quantiles.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            floats.write(out, q);
            out.push(b',');
            floats.write(out, v);
            out.push(b']');
        }
        out.push(b']');
    }
    if let Some(c) = m.count {
        key(out, "count");
        write_int(out, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Kind, Temporality};

    fn line(m: &Metric) -> String {
        let mut out = Vec::new();
        encode(m, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn field_order_follows_the_contract() {
        let m = Metric::counter("api.requests", Temporality::Delta, Value::U64(10), 20)
            .with_tag("route", "/login")
            .with_tag("env", "prod");
        let m = Metric {
            start_ts: Some(10),
            ..m
        };
        assert_eq!(
            line(&m),
            "{\"name\":\"api.requests\",\"kind\":\"counter\",\"temporality\":\"delta\",\"value\":10,\"ts\":20,\"start_ts\":10,\"tags\":{\"env\":\"prod\",\"route\":\"/login\"}}\n"
        );
    }

    #[test]
    fn specials_and_escapes() {
        let mut m = Metric::gauge("a\"b\n", Value::F64(f64::NAN), 1);
        m.unit = "ms".into();
        assert_eq!(
            line(&m),
            "{\"name\":\"a\\\"b\\n\",\"kind\":\"gauge\",\"unit\":\"ms\",\"value\":\"NaN\",\"ts\":1}\n"
        );
    }

    #[test]
    fn prepared_lines_match_plain_ones() {
        let mut m = Metric::counter("a\"b", Temporality::Delta, Value::U64(10), 20)
            .with_tag("route", "/lo\\gin")
            .with_tag("env", "prod");
        m.start_ts = Some(-10);
        m.extra = "\"estimated\":true".into();
        let mut p = LineCache::default();
        write_tags(&mut p.tags, m.tags.iter());
        let mut bare = m.clone();
        bare.tags.clear();
        for ts in [20, 20, i64::MIN, 7] {
            (m.ts, bare.ts) = (ts, ts);
            let mut out = Vec::new();
            encode_cached(&bare, &mut p, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), line(&m));
        }
        p.tags.clear();
        m.tags.clear();
        m.start_ts = None;
        let mut out = Vec::new();
        encode_cached(&m, &mut p, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), line(&m));
    }

    #[test]
    fn short_decimals_are_written_as_ryu_writes_them() {
        let ryu_text = |v: f64| ryu::Buffer::new().format_finite(v).to_owned();
        let mut rng = crate::rng::XorShift::seeded();
        let mut short = 0;
        let mut check = |v: f64| {
            let mut out = Vec::new();
            if write_short_decimal(&mut out, v) {
                short += 1;
                assert_eq!(String::from_utf8(out).unwrap(), ryu_text(v), "{v:e}");
            }
        };
        for _ in 0..300_000 {
            let r = rng.next_u64();
            // Decimals of 0 to 5 fractional digits over many magnitudes, and any bits.
            let digits = (r >> 8) % 10u64.pow(1 + (r % 13) as u32);
            let scale = 10f64.powi(((r >> 4) % 6) as i32);
            let sign = if r & 1 == 0 { 1.0 } else { -1.0 };
            check(sign * digits as f64 / scale);
            check(f64::from_bits(rng.next_u64()));
            check((digits as f64 / scale).next_up());
        }
        for v in [
            0.001,
            0.01,
            0.1,
            0.5,
            1.0,
            18.61,
            132.289,
            1e12,
            999_999_999_999.999,
            999_999_999_999.99,
            1e12 - 0.001,
            4503599627370496.0,
            123.0,
            1e-3,
            0.0015,
            2.675,
            1.005,
            0.3,
            0.1 + 0.2,
            100.0,
            1200.0,
            7e11,
            f64::MIN_POSITIVE,
        ] {
            check(v);
            check(-v);
        }
        assert!(short > 100_000, "only {short} short decimals met");
        let mut out = Vec::new();
        for v in [0.0, -0.0, 1e12, 0.0001, 0.1 + 0.2, 1e-7] {
            assert!(!write_short_decimal(&mut out, v), "{v}");
        }
        assert!(out.is_empty());
    }

    #[test]
    fn repeated_floats_are_written_as_formatted() {
        let mut rng = crate::rng::XorShift::seeded();
        let pool: Vec<f64> = (0..6)
            .map(|i| f64::from_bits(rng.next_u64()) * if i % 2 == 0 { 1.0 } else { 0.0 })
            .chain([0.5, -0.0, 1e-300, f64::NAN, f64::INFINITY, 123456.789])
            .collect();
        for round in 0..200usize {
            let pick = |k: usize| pool[(round * 7 + k * 13 + k * k) % pool.len()];
            let mut floats = Floats::default();
            let (mut memo, mut plain) = (Vec::new(), Vec::new());
            for k in 0..9 {
                floats.write(&mut memo, pick(k));
                write_f64(&mut plain, pick(k));
                memo.push(b' ');
                plain.push(b' ');
            }
            assert_eq!(
                String::from_utf8(memo).unwrap(),
                String::from_utf8(plain).unwrap()
            );
        }
    }

    #[test]
    fn summary_layout() {
        let m = Metric {
            name: "db.query".into(),
            kind: Kind::Summary,
            temporality: Some(Temporality::Delta),
            quantiles: vec![(0.5, 13.0)],
            count: Some(6),
            sum: Some(211.4),
            min: Some(12.5),
            max: Some(80.2),
            ts: 2,
            start_ts: Some(1),
            ..Metric::default()
        };
        assert_eq!(
            line(&m),
            "{\"name\":\"db.query\",\"kind\":\"summary\",\"temporality\":\"delta\",\"quantiles\":[[0.5,13.0]],\"count\":6,\"sum\":211.4,\"min\":12.5,\"max\":80.2,\"ts\":2,\"start_ts\":1}\n"
        );
    }
}
