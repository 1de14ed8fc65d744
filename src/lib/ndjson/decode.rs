//! A JSON decoder specialised for tlm metric v1 lines.
//!
//! It walks the bytes once, fills a reusable `Metric` in place (no per-line allocation once
//! buffers have grown), validates unknown fields fully and keeps them verbatim.

use crate::metric::{Kind, Metric, Temporality, Value};
use crate::time::parse_rfc3339;
use std::fmt;

/// Why a line is not a valid metric, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeError {
    pub reason: String,
    /// Byte offset within the line, when the JSON itself is at fault.
    pub offset: Option<usize>,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(at) => write!(f, "{} at byte {}", self.reason, at + 1),
            None => f.write_str(&self.reason),
        }
    }
}

type Result<T> = std::result::Result<T, DecodeError>;

fn syntax<T>(reason: &str, at: usize) -> Result<T> {
    Err(DecodeError {
        reason: format!("invalid JSON: {reason}"),
        offset: Some(at),
    })
}

fn field<T>(name: &str, reason: &str) -> Result<T> {
    Err(DecodeError {
        reason: format!("field `{name}`: {reason}"),
        offset: None,
    })
}

/// A JSON number as written: exact integer when it has no fraction or exponent.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Num {
    Int(Value),
    Float(f64),
}

impl Num {
    fn value(self) -> Value {
        match self {
            Num::Int(v) => v,
            Num::Float(f) => Value::F64(f),
        }
    }
    fn f64(self) -> f64 {
        self.value().as_f64()
    }
}

/// Reusable decoder state (a scratch buffer for strings with escapes).
#[derive(Default)]
pub struct Decoder {
    scratch: String,
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                break;
            }
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline]
    fn expect(&mut self, c: u8, what: &str) -> Result<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            syntax(what, self.i)
        }
    }

    /// Returns the raw bytes between the quotes and whether they hold escapes.
    #[inline]
    fn raw_string(&mut self) -> Result<(&'a [u8], bool)> {
        if self.peek() != Some(b'"') {
            return syntax("expected a string", self.i);
        }
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            let Some(at) = super::scan::find_special(self.b, i) else {
                return syntax("unterminated string", start - 1);
            };
            match self.b[at] {
                b'"' => {
                    i = at;
                    break;
                }
                b'\\' => {
                    escaped = true;
                    i = at + 2;
                }
                _ => return syntax("control character in string", at),
            }
        }
        let raw = &self.b[start..i];
        self.i = i + 1;
        Ok((raw, escaped))
    }

    /// Decodes a string into `out` (cleared first).
    fn string_into(&mut self, out: &mut String) -> Result<()> {
        let at = self.i;
        let (raw, escaped) = self.raw_string()?;
        out.clear();
        if !escaped {
            out.push_str(utf8(raw)?);
            return Ok(());
        }
        unescape(raw, out, at)
    }

    fn number(&mut self) -> Result<Num> {
        self.ws();
        let start = self.i;
        let b = self.b;
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        let int_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let int_digits = &b[int_start..i];
        if int_digits.is_empty() || (int_digits.len() > 1 && int_digits[0] == b'0') {
            return syntax("invalid number", start);
        }
        let mut is_float = false;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let frac_start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == frac_start {
                return syntax("invalid number", start);
            }
            is_float = true;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp_start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == exp_start {
                return syntax("invalid number", start);
            }
            is_float = true;
        }
        self.i = i;
        let text = &b[start..i];
        if !is_float {
            if let Some(v) = exact_integer(int_digits, negative) {
                return Ok(Num::Int(v));
            }
        }
        // The bytes are ASCII digits and signs, so this cannot fail.
        let s = std::str::from_utf8(text).unwrap_or("0");
        s.parse::<f64>()
            .map(Num::Float)
            .or_else(|_| syntax("invalid number", start))
    }

    /// Skips one JSON value of any type, validating it.
    fn skip_value(&mut self, depth: usize) -> Result<()> {
        if depth > 128 {
            return syntax("nesting too deep", self.i);
        }
        match self.peek() {
            Some(b'"') => {
                let at = self.i;
                let (raw, escaped) = self.raw_string()?;
                if escaped {
                    let mut tmp = String::new();
                    unescape(raw, &mut tmp, at)
                } else {
                    utf8(raw).map(|_| ())
                }
            }
            Some(b'{') => {
                self.i += 1;
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.skip_string()?;
                    self.expect(b':', "expected `:`")?;
                    self.skip_value(depth + 1)?;
                    if !self.comma_or_end(b'}')? {
                        return Ok(());
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if !self.comma_or_end(b']')? {
                        return Ok(());
                    }
                }
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(_) => self.number().map(|_| ()),
            None => syntax("unexpected end of line", self.i),
        }
    }

    fn skip_string(&mut self) -> Result<()> {
        if self.peek() != Some(b'"') {
            return syntax("expected a string", self.i);
        }
        self.skip_value(0)
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            syntax("invalid literal", self.i)
        }
    }

    fn null(&mut self) -> bool {
        if self.peek() == Some(b'n') && self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return true;
        }
        false
    }

    /// After an element: true if a comma follows (more to come), false at the closing byte.
    #[inline]
    fn comma_or_end(&mut self, close: u8) -> Result<bool> {
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => syntax("expected `,` or a closing bracket", self.i),
        }
    }

    /// Iterates over array elements, calling `each` positioned at each one.
    fn array(&mut self, mut each: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.expect(b'[', "expected an array")?;
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            each(self)?;
            if !self.comma_or_end(b']')? {
                return Ok(());
            }
        }
    }
}

/// Checks UTF-8, with a fast path for ASCII, by far the common case in metric names and tags.
#[inline]
fn utf8(raw: &[u8]) -> Result<&str> {
    if raw.is_ascii() {
        // SAFETY: every byte is ASCII, and ASCII is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(raw) });
    }
    std::str::from_utf8(raw).or_else(|_| invalid_utf8())
}

fn invalid_utf8<T>() -> Result<T> {
    Err(DecodeError {
        reason: "invalid UTF-8 in string".into(),
        offset: None,
    })
}

fn exact_integer(digits: &[u8], negative: bool) -> Option<Value> {
    if digits.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    if !negative || v == 0 {
        return Some(Value::U64(v));
    }
    if v <= i64::MAX as u64 + 1 {
        return Some(Value::I64((v as i64).wrapping_neg()));
    }
    None
}

fn hex4(b: &[u8], at: usize) -> Result<u32> {
    let h = b
        .get(..4)
        .ok_or(())
        .or_else(|_| syntax("bad \\u escape", at))?;
    let mut v = 0u32;
    for &c in h {
        let d = (c as char)
            .to_digit(16)
            .ok_or(())
            .or_else(|_| syntax("bad \\u escape", at))?;
        v = v * 16 + d;
    }
    Ok(v)
}

fn unescape(raw: &[u8], out: &mut String, at: usize) -> Result<()> {
    out.clear();
    let mut bytes: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            bytes.push(c);
            i += 1;
            continue;
        }
        let e = *raw
            .get(i + 1)
            .ok_or(())
            .or_else(|_| syntax("bad escape", at))?;
        i += 2;
        let simple = match e {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            _ => return syntax("bad escape", at),
        };
        if let Some(s) = simple {
            bytes.push(s);
            continue;
        }
        let mut cp = hex4(&raw[i..], at)?;
        i += 4;
        if (0xD800..0xDC00).contains(&cp) && raw[i..].starts_with(b"\\u") {
            let lo = hex4(&raw[i + 2..], at)?;
            if (0xDC00..0xE000).contains(&lo) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
        }
        let ch = char::from_u32(cp)
            .ok_or(())
            .or_else(|_| syntax("lone surrogate in \\u escape", at))?;
        let mut tmp = [0u8; 4];
        bytes.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
    }
    match String::from_utf8(bytes) {
        Ok(s) => {
            out.push_str(&s);
            Ok(())
        }
        Err(_) => invalid_utf8(),
    }
}

/// A float field: a number, or `"NaN"`, `"+Inf"`, `"-Inf"` (also `"Inf"`, `"Infinity"`).
fn float_or_special(c: &mut Cursor<'_>, name: &str) -> Result<f64> {
    match c.peek() {
        Some(b'"') => {
            let (raw, _) = c.raw_string()?;
            special_float(raw).map_or_else(|| field(name, "expected a number, NaN or ±Inf"), Ok)
        }
        Some(b'-' | b'0'..=b'9') => Ok(c.number()?.f64()),
        _ => field(name, "expected a number"),
    }
}

fn special_float(raw: &[u8]) -> Option<f64> {
    match raw {
        b"NaN" | b"nan" => Some(f64::NAN),
        b"+Inf" | b"Inf" | b"inf" | b"+inf" | b"Infinity" | b"+Infinity" => Some(f64::INFINITY),
        b"-Inf" | b"-inf" | b"-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

fn timestamp(c: &mut Cursor<'_>, name: &str) -> Result<i64> {
    match c.peek() {
        Some(b'"') => {
            let (raw, _) = c.raw_string()?;
            parse_rfc3339(raw).map_or_else(|| field(name, "expected an RFC 3339 time"), Ok)
        }
        Some(b'-' | b'0'..=b'9') => match c.number()? {
            Num::Int(Value::U64(v)) if v <= i64::MAX as u64 => Ok(v as i64),
            Num::Int(Value::I64(v)) => Ok(v),
            _ => field(
                name,
                "expected integer Unix nanoseconds or an RFC 3339 string",
            ),
        },
        _ => field(
            name,
            "expected integer Unix nanoseconds or an RFC 3339 string",
        ),
    }
}

impl Decoder {
    /// Decodes one line into `m` (cleared first). `now` stamps lines that carry no `ts`.
    pub fn decode(&mut self, line: &[u8], m: &mut Metric, now: impl Fn() -> i64) -> Result<()> {
        m.clear();
        let mut c = Cursor { b: line, i: 0 };
        let mut seen_name = false;
        let mut seen_kind = false;
        let mut seen_ts = false;
        let mut values_at: Option<usize> = None;
        c.expect(b'{', "expected `{` at the start of the line")?;
        if c.peek() == Some(b'}') {
            c.i += 1;
        } else {
            loop {
                let key_start = c.i;
                let (key, escaped) = c.raw_string()?;
                c.expect(b':', "expected `:`")?;
                if escaped {
                    self.unknown(&mut c, key_start, m)?;
                } else {
                    match key {
                        b"name" => {
                            c.string_into(&mut m.name).or_else(|e| retag(e, "name"))?;
                            seen_name = true;
                        }
                        b"kind" => {
                            let (raw, _) = c.raw_string().or_else(|e| retag(e, "kind"))?;
                            m.kind = Kind::parse(raw).map_or_else(
                                || field("kind", "expected counter, gauge, set, distribution, histogram or summary"),
                                Ok,
                            )?;
                            seen_kind = true;
                        }
                        b"temporality" => {
                            if !c.null() {
                                let (raw, _) =
                                    c.raw_string().or_else(|e| retag(e, "temporality"))?;
                                m.temporality = Some(Temporality::parse(raw).map_or_else(
                                    || field("temporality", "expected delta or cumulative"),
                                    Ok,
                                )?);
                            }
                        }
                        b"unit" => {
                            if !c.null() {
                                c.string_into(&mut m.unit).or_else(|e| retag(e, "unit"))?;
                            }
                        }
                        b"value" => m.value = Some(self.value(&mut c)?),
                        b"values" => {
                            c.ws();
                            values_at = Some(c.i);
                            c.skip_value(0)?;
                        }
                        b"sample_rate" => {
                            let r = c.number().or_else(|e| retag(e, "sample_rate"))?.f64();
                            if !(r > 0.0 && r <= 1.0) {
                                return field("sample_rate", "must be in (0, 1]");
                            }
                            m.sample_rate = Some(r);
                        }
                        b"bounds" => {
                            let bounds = &mut m.bounds;
                            c.array(|c| {
                                bounds.push(float_or_special(c, "bounds")?);
                                Ok(())
                            })?;
                        }
                        b"counts" => {
                            let counts = &mut m.counts;
                            c.array(|c| {
                                counts.push(unsigned(c, "counts")?);
                                Ok(())
                            })?;
                        }
                        b"quantiles" => {
                            let qs = &mut m.quantiles;
                            c.array(|c| {
                                c.expect(b'[', "expected a [q, v] pair in `quantiles`")?;
                                let q = c.number()?.f64();
                                c.expect(b',', "expected a [q, v] pair in `quantiles`")?;
                                let v = float_or_special(c, "quantiles")?;
                                c.expect(b']', "expected a [q, v] pair in `quantiles`")?;
                                if !(0.0..=1.0).contains(&q) {
                                    return field("quantiles", "q must be in [0, 1]");
                                }
                                qs.push((q, v));
                                Ok(())
                            })?;
                        }
                        b"count" => m.count = Some(unsigned(&mut c, "count")?),
                        b"sum" => m.sum = Some(float_or_special(&mut c, "sum")?),
                        b"min" => m.min = Some(float_or_special(&mut c, "min")?),
                        b"max" => m.max = Some(float_or_special(&mut c, "max")?),
                        b"ts" => {
                            m.ts = timestamp(&mut c, "ts")?;
                            seen_ts = true;
                        }
                        b"start_ts" => {
                            if !c.null() {
                                m.start_ts = Some(timestamp(&mut c, "start_ts")?);
                            }
                        }
                        b"tags" => {
                            if !c.null() {
                                self.tags(&mut c, m)?;
                            }
                        }
                        _ => self.unknown(&mut c, key_start, m)?,
                    }
                }
                if !c.comma_or_end(b'}')? {
                    break;
                }
            }
        }
        if c.peek().is_some() {
            return syntax("trailing characters after the object", c.i);
        }
        if !seen_name {
            return field("name", "missing");
        }
        if !seen_kind {
            return field("kind", "missing");
        }
        if let Some(at) = values_at {
            self.values(&mut Cursor { b: line, i: at }, m)?;
        }
        if !seen_ts {
            m.ts = now();
        }
        m.validate().map_err(|r| DecodeError {
            reason: r.to_string(),
            offset: None,
        })
    }

    fn value(&mut self, c: &mut Cursor<'_>) -> Result<Value> {
        match c.peek() {
            Some(b'"') => {
                let (raw, _) = c.raw_string()?;
                special_float(raw).map(Value::F64).map_or_else(
                    || field("value", "expected a number (text values travel as tags)"),
                    Ok,
                )
            }
            Some(b'-' | b'0'..=b'9') => Ok(c.number()?.value()),
            _ => field("value", "expected a number"),
        }
    }

    fn tags(&mut self, c: &mut Cursor<'_>, m: &mut Metric) -> Result<()> {
        c.expect(b'{', "expected an object for `tags`")?;
        if c.peek() == Some(b'}') {
            c.i += 1;
            return Ok(());
        }
        let mut key = String::new();
        std::mem::swap(&mut key, &mut self.scratch);
        let result = (|| loop {
            c.string_into(&mut key)?;
            c.expect(b':', "expected `:`")?;
            if c.peek() != Some(b'"') {
                return field("tags", &format!("tag `{key}` must be a string"));
            }
            let at = c.i;
            let (raw, escaped) = c.raw_string()?;
            if escaped {
                let mut v = String::new();
                unescape(raw, &mut v, at)?;
                m.tags.push(&key, &v);
            } else {
                m.tags.push(&key, utf8(raw)?);
            }
            if !c.comma_or_end(b'}')? {
                return Ok(());
            }
        })();
        std::mem::swap(&mut key, &mut self.scratch);
        result?;
        m.tags.normalize();
        Ok(())
    }

    /// `values` is read once `kind` is known: numbers for distributions, members for sets.
    fn values(&mut self, c: &mut Cursor<'_>, m: &mut Metric) -> Result<()> {
        if c.null() {
            return Ok(());
        }
        match m.kind {
            Kind::Set => {
                let members = &mut m.members;
                let scratch = &mut self.scratch;
                c.array(|c| {
                    match c.peek() {
                        Some(b'"') => c.string_into(scratch)?,
                        Some(b'-' | b'0'..=b'9') => {
                            let start = c.i;
                            c.number()?;
                            scratch.clear();
                            scratch.push_str(
                                std::str::from_utf8(&c.b[start..c.i]).unwrap_or_default(),
                            );
                        }
                        _ => return field("values", "set members must be strings or numbers"),
                    }
                    members.push(scratch);
                    Ok(())
                })
            }
            Kind::Distribution => {
                let values = &mut m.values;
                c.array(|c| {
                    values.push(float_or_special(c, "values")?);
                    Ok(())
                })
            }
            _ => field("values", "only sets and distributions carry `values`"),
        }
    }

    fn unknown(&mut self, c: &mut Cursor<'_>, key_start: usize, m: &mut Metric) -> Result<()> {
        c.skip_value(0)?;
        // The bytes were validated above; a key with escapes is kept as written.
        let raw = std::str::from_utf8(&c.b[key_start..c.i]).or_else(|_| invalid_utf8())?;
        if !m.extra.is_empty() {
            m.extra.push(',');
        }
        m.extra.push_str(raw.trim());
        Ok(())
    }
}

fn unsigned(c: &mut Cursor<'_>, name: &str) -> Result<u64> {
    match c.number()? {
        Num::Int(Value::U64(v)) => Ok(v),
        _ => field(name, "expected a non-negative integer"),
    }
}

fn retag<T>(mut e: DecodeError, name: &str) -> Result<T> {
    if e.offset.is_some() {
        e.reason = format!(
            "field `{name}`: {}",
            e.reason.trim_start_matches("invalid JSON: ")
        );
    }
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(line: &str) -> Result<Metric> {
        let mut m = Metric::default();
        Decoder::default()
            .decode(line.as_bytes(), &mut m, || 42)
            .map(|_| m)
    }

    #[test]
    fn counter64_stays_exact() {
        let m = decode(r#"{"name":"if.hc_in_octets","kind":"counter","temporality":"cumulative","value":18446744073709551615,"ts":1}"#).unwrap();
        assert_eq!(m.value, Some(Value::U64(u64::MAX)));
        assert_eq!(m.temporality, Some(Temporality::Cumulative));
    }

    #[test]
    fn negative_and_float_values() {
        assert_eq!(
            decode(r#"{"name":"x","kind":"gauge","value":-9223372036854775808}"#)
                .unwrap()
                .value,
            Some(Value::I64(i64::MIN))
        );
        assert_eq!(
            decode(r#"{"name":"x","kind":"gauge","value":0.5}"#)
                .unwrap()
                .value,
            Some(Value::F64(0.5))
        );
        assert_eq!(
            decode(r#"{"name":"x","kind":"gauge","value":1e3}"#)
                .unwrap()
                .value,
            Some(Value::F64(1000.0))
        );
        assert!(decode(r#"{"name":"x","kind":"gauge","value":"NaN"}"#)
            .unwrap()
            .value
            .unwrap()
            .as_f64()
            .is_nan());
    }

    #[test]
    fn missing_ts_is_stamped_and_rfc3339_accepted() {
        assert_eq!(
            decode(r#"{"name":"x","kind":"gauge","value":1}"#)
                .unwrap()
                .ts,
            42
        );
        let m =
            decode(r#"{"name":"x","kind":"gauge","value":1,"ts":"2026-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(m.ts, 1_767_225_600_000_000_000);
    }

    #[test]
    fn tags_are_sorted_and_unescaped() {
        let m = decode(
            r#"{"tags":{"z":"1","a":"b\"c","canary":""},"name":"x","kind":"gauge","value":1}"#,
        )
        .unwrap();
        let tags: Vec<_> = m.tags.iter().collect();
        assert_eq!(tags, vec![("a", "b\"c"), ("canary", ""), ("z", "1")]);
    }

    #[test]
    fn values_before_kind_still_typed() {
        let m = decode(r#"{"values":[1,2.5],"name":"d","kind":"distribution","sample_rate":0.5}"#)
            .unwrap();
        assert_eq!(m.values, vec![1.0, 2.5]);
        let s = decode(r#"{"values":["a",7],"name":"s","kind":"set"}"#).unwrap();
        assert_eq!(s.members.iter().collect::<Vec<_>>(), vec!["a", "7"]);
    }

    #[test]
    fn unknown_fields_are_kept_verbatim() {
        let m = decode(
            r#"{"name":"x","kind":"gauge","value":1,"meta":{"a":[1,true,null]}, "n\u0041":"q"}"#,
        )
        .unwrap();
        assert_eq!(m.extra, r#""meta":{"a":[1,true,null]},"n\u0041":"q""#);
    }

    #[test]
    fn bad_lines_say_why() {
        let cases = [
            ("garbage", "invalid JSON"),
            (r#"{"kind":"gauge","value":1}"#, "`name`: missing"),
            (r#"{"name":"x","value":1}"#, "`kind`: missing"),
            (
                r#"{"name":"x","kind":"gauge","value":"12"}"#,
                "field `value`",
            ),
            (r#"{"name":"x","kind":"counter","value":1}"#, "temporality"),
            (r#"{"name":"x","kind":"gauge","value":1} x"#, "trailing"),
            (
                r#"{"name":"x","kind":"gauge","value":01}"#,
                "invalid number",
            ),
            (
                r#"{"name":"x","kind":"gauge","value":1,"ts":1.5}"#,
                "field `ts`",
            ),
            (
                r#"{"name":"x","kind":"gauge","value":1,"tags":{"a":1}}"#,
                "must be a string",
            ),
            (
                r#"{"name":"x","kind":"histogram","temporality":"delta","bounds":[1],"counts":[1]}"#,
                "one more",
            ),
            (r#"{"name":"x","kind":"gauge","value":1"#, "invalid JSON"),
        ];
        for (line, want) in cases {
            let err = decode(line).unwrap_err().to_string();
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn invalid_utf8_is_reported() {
        let mut m = Metric::default();
        let line = b"{\"name\":\"\xff\",\"kind\":\"gauge\",\"value\":1}";
        let err = Decoder::default().decode(line, &mut m, || 0).unwrap_err();
        assert!(err.reason.contains("UTF-8"));
    }

    #[test]
    fn histogram_and_summary() {
        let h = decode(r#"{"name":"h","kind":"histogram","temporality":"delta","bounds":[1,5],"counts":[1,2,3],"count":6,"sum":20.5}"#).unwrap();
        assert_eq!(h.counts, vec![1, 2, 3]);
        let s = decode(r#"{"name":"s","kind":"summary","temporality":"delta","quantiles":[[0.5,13.0],[0.99,"+Inf"]],"count":6}"#).unwrap();
        assert_eq!(s.quantiles[1].1, f64::INFINITY);
    }
}
