//! A JSON decoder specialised for tlm metric v1 lines.
//!
//! It walks the bytes once, fills a reusable `Metric` in place (no per-line allocation once
//! buffers have grown), validates unknown fields fully and keeps them verbatim.

use super::scan;
use super::scan::POW10_U64;
use crate::metric::{Kind, Metric, Short, Temporality, Value};
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

/// Errors travel boxed inside the decoder: a one-word error keeps the `Result`s of the hot
/// path small enough to stay in registers.
type Result<T> = std::result::Result<T, Box<DecodeError>>;

#[cold]
fn syntax<T>(reason: &str, at: usize) -> Result<T> {
    Err(Box::new(DecodeError {
        reason: format!("invalid JSON: {reason}"),
        offset: Some(at),
    }))
}

#[cold]
fn field<T>(name: &str, reason: &str) -> Result<T> {
    Err(Box::new(DecodeError {
        reason: format!("field `{name}`: {reason}"),
        offset: None,
    }))
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

/// A number as scanned: its digits folded into `mant`, which is exact while `digits` <= 19.
struct NumText {
    start: usize,
    negative: bool,
    mant: u64,
    /// Integer and fraction digits.
    digits: usize,
    int_digits: usize,
    /// Power of ten to scale `mant` by, saturated far beyond the f64 range.
    exp: i64,
    float: bool,
}

/// Powers of ten that an f64 holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Keeps an absurd exponent from overflowing while it is read.
const EXP_CAP: i64 = 1 << 20;

impl NumText {
    /// Clinger's fast path: with both the mantissa and the power of ten exact in an f64, one
    /// correctly rounded multiply or divide gives the correctly rounded value, the same one
    /// `str::parse` finds the long way.
    #[inline]
    fn fast_f64(&self) -> Option<f64> {
        if self.digits > 19 || self.mant > 1 << 53 {
            return None;
        }
        let m = self.mant as f64;
        let f = if self.exp < 0 {
            m / POW10.get(self.exp.unsigned_abs() as usize)?
        } else {
            m * POW10.get(self.exp as usize)?
        };
        Some(if self.negative { -f } else { f })
    }
}

/// Reusable decoder state: buffers for strings with escapes, and keys of earlier lines.
#[derive(Default)]
pub struct Decoder {
    key: String,
    value: String,
    /// For each field, `WAYS` keys that followed it (the first keys of lines at `START`).
    next_keys: Vec<Guess>,
    /// The keys of `tags` last met at each place.
    tag_keys: Vec<Guess>,
    /// Where the last line decoded held its `value`, `values` and `ts`.
    spans: Spans,
}

/// Where a line holds the JSON text of its top-level `value`, `values` and `ts` fields, as
/// byte ranges (`start..end`; `0..0` when absent), so that a caller can tell which bytes of
/// the line a later line may differ in (see `super::shape`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spans {
    pub value: (u32, u32),
    pub values: (u32, u32),
    pub ts: (u32, u32),
}

/// The number `text` is, all of it, as the decoder reads a `value` field written as a number.
pub fn number_value(text: &[u8]) -> Option<Value> {
    whole_number(text).map(Num::value)
}

/// The float `text` is, all of it, as the decoder reads an element of `values`.
pub fn number_f64(text: &[u8]) -> Option<f64> {
    whole_number(text).map(Num::f64)
}

/// The Unix nanoseconds `text` is, all of it, as the decoder reads a `ts` written as a number.
pub fn number_ts(text: &[u8]) -> Option<i64> {
    if let Some(v) = scan::long_digits(text) {
        return i64::try_from(v).ok();
    }
    match whole_number(text)? {
        Num::Int(Value::U64(v)) if v <= i64::MAX as u64 => Some(v as i64),
        Num::Int(Value::I64(v)) => Some(v),
        _ => None,
    }
}

#[inline]
fn whole_number(text: &[u8]) -> Option<Num> {
    match plain_number(text) {
        Some(n) => Some(n),
        None => scanned_number(text),
    }
}

#[inline(never)]
fn scanned_number(text: &[u8]) -> Option<Num> {
    if !matches!(text.first(), Some(b'-' | b'0'..=b'9')) {
        return None;
    }
    let mut c = Cursor { b: text, i: 0 };
    let n = c.number().ok()?;
    (c.i == text.len()).then_some(n)
}

/// `text` read as `Cursor::number` reads it, when it is an integer of at most 19 digits
/// or a decimal fraction without exponent whose digits fold exactly (the usual numbers);
/// `None` for anything else, valid or not. Folding here, not through `NumText`, keeps
/// the number in registers.
#[inline(always)]
fn plain_number(text: &[u8]) -> Option<Num> {
    let negative = text.first() == Some(&b'-');
    let from = negative as usize;
    let (i, mant) = digits(text, from, 0);
    let int_digits = i - from;
    if int_digits == 0 || int_digits > 19 || (int_digits > 1 && text[from] == b'0') {
        return None;
    }
    if i == text.len() {
        return signed(mant, negative).map(Num::Int);
    }
    if text[i] != b'.' {
        return None;
    }
    let (end, mant) = digits(text, i + 1, mant);
    let frac = end - (i + 1);
    if end != text.len() || frac == 0 || int_digits + frac > 19 || mant > 1 << 53 {
        return None;
    }
    let f = mant as f64 / POW10[frac];
    Some(Num::Float(if negative { -f } else { f }))
}

/// A key met before. Producers write keys in a fixed order, so checking whether the next key
/// is the one that came at that point last time, two word compares, usually finds where it
/// ends, which field it names and the `:` after it, where scanning its bytes and matching
/// names cost several times that. Only plain ASCII keys are remembered, so a match reads the
/// very key that scanning would.
#[derive(Clone, Debug)]
struct Guess {
    /// What follows the key's opening quote: the key, its closing quote and the `:` (and
    /// for tags the value's opening quote), zero-padded, as two little-endian words.
    words: [u64; 2],
    /// All ones over the bytes of `words` that count.
    masks: [u64; 2],
    /// How many bytes of `words` count.
    skip: usize,
    field: Option<Field>,
    /// The key, for tags.
    text: String,
    short: Option<Short>,
}

impl Default for Guess {
    /// One that matches nothing.
    fn default() -> Self {
        Guess {
            words: [u64::MAX; 2],
            masks: [0; 2],
            skip: 0,
            field: None,
            text: String::new(),
            short: None,
        }
    }
}

/// The place in `Decoder::next_keys` of the line's first key; the others follow a field.
const START: usize = 0;

/// How many keys are remembered after each field: lines of different kinds differ there
/// (a counter's `kind` is followed by `temporality`, a gauge's by `value`).
const WAYS: usize = 3;

/// How many tag keys are remembered.
const TAG_GUESSES: usize = 16;

impl Guess {
    /// Whether the key whose opening quote is `b[quote]` is this one.
    #[inline(always)]
    fn matches(&self, b: &[u8], quote: usize) -> bool {
        let Some(chunk) = b.get(quote + 1..quote + 17) else {
            return false;
        };
        let (lo, hi) = (scan::word(&chunk[..8]), scan::word(&chunk[8..]));
        lo & self.masks[0] == self.words[0] && hi & self.masks[1] == self.words[1]
    }

    fn is_empty(&self) -> bool {
        self.masks == [0; 2]
    }

    /// The guess at `at` among `limit`, made room for (all at once, so that a group of
    /// ways is there whole).
    fn slot(guesses: &mut Vec<Guess>, at: usize, limit: usize) -> Option<&mut Guess> {
        if guesses.len() < limit {
            guesses.resize_with(limit, Guess::default);
        }
        guesses.get_mut(at)
    }

    /// Remembers `raw` followed by `tail` (from its closing quote on), when `raw` is plain
    /// ASCII and both fit in two words.
    #[cold]
    fn learn(&mut self, raw: Raw<'_>, tail: &[u8], field: Option<Field>, with_text: bool) {
        let skip = raw.bytes.len() + tail.len();
        if raw.form != Form::Ascii || skip > 16 {
            return;
        }
        let mut bytes = [0u8; 16];
        bytes[..raw.bytes.len()].copy_from_slice(raw.bytes);
        bytes[raw.bytes.len()..skip].copy_from_slice(tail);
        let mut ones = [0u8; 16];
        ones[..skip].fill(0xFF);
        let pair = |b: [u8; 16]| [scan::word(&b[..8]), scan::word(&b[8..])];
        (self.words, self.masks, self.skip, self.field) = (pair(bytes), pair(ones), skip, field);
        self.text.clear();
        self.short = None;
        if with_text {
            self.text.push_str(raw.text().unwrap_or_default());
            self.short = Short::new(&self.text);
        }
    }
}

/// What a string's bytes need before they are text. A word, not a byte or two `bool`s:
/// copies of `Raw` through the stack then load what was stored whole, where narrower stores
/// read back in one wider load stall the pipeline.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum Form {
    /// Valid UTF-8 as it stands.
    Ascii,
    /// Needs a UTF-8 check.
    Bytes,
    /// Needs unescaping.
    Escaped,
}

/// The bytes between a string's quotes.
#[derive(Clone, Copy)]
struct Raw<'a> {
    bytes: &'a [u8],
    form: Form,
}

impl Raw<'_> {
    fn escaped(self) -> bool {
        self.form == Form::Escaped
    }
}

impl<'a> Raw<'a> {
    /// The text of a string without escapes.
    #[inline]
    fn text(self) -> Result<&'a str> {
        if self.form == Form::Ascii {
            debug_assert!(self.bytes.is_ascii());
            // SAFETY: the scan that found the closing quote saw every byte of the string and
            // none above 0x7F; ASCII is valid UTF-8. This saves a second pass per string.
            return Ok(unsafe { std::str::from_utf8_unchecked(self.bytes) });
        }
        std::str::from_utf8(self.bytes).or_else(|_| invalid_utf8())
    }

    /// The decoded text: borrowed from the line, or unescaped into `buf` when it must be.
    /// `at` is where errors in escapes are reported.
    #[inline]
    fn decode_in<'s>(self, buf: &'s mut String, at: usize) -> Result<&'s str>
    where
        'a: 's,
    {
        if self.escaped() {
            unescape(self.bytes, buf, at)?;
            return Ok(buf);
        }
        self.text()
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn ws(&mut self) {
        self.peek();
    }

    /// The next byte after any whitespace. Lines rarely hold whitespace, so one compare
    /// settles it before the loop that skips some.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        if c > b' ' {
            return Some(c);
        }
        self.skip_ws()
    }

    fn skip_ws(&mut self) -> Option<u8> {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                return Some(c);
            }
            self.i += 1;
        }
        None
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

    /// Reads a string up to its closing quote, without decoding it.
    #[inline(always)]
    fn raw_string(&mut self) -> Result<Raw<'a>> {
        if self.peek() != Some(b'"') {
            return syntax("expected a string", self.i);
        }
        self.string_body(self.i + 1)
    }

    /// `raw_string` for a string whose opening quote is `b[start - 1]`.
    #[inline(always)]
    fn string_body(&mut self, start: usize) -> Result<Raw<'a>> {
        let mut from = start;
        let mut escaped = false;
        loop {
            let Some(scan::Hit { at, byte, high }) = scan::scan(self.b, from) else {
                return syntax("unterminated string", start - 1);
            };
            match byte {
                b'"' => {
                    self.i = at + 1;
                    let form = match (escaped, high) {
                        (true, _) => Form::Escaped,
                        (false, true) => Form::Bytes,
                        (false, false) => Form::Ascii,
                    };
                    return Ok(Raw {
                        bytes: &self.b[start..at],
                        form,
                    });
                }
                b'\\' => {
                    escaped = true;
                    from = at + 2;
                }
                _ => return syntax("control character in string", at),
            }
        }
    }

    /// Decodes a string into `out` (cleared first).
    #[inline(always)]
    fn string_into(&mut self, out: &mut String) -> Result<()> {
        let at = self.i;
        let raw = self.raw_string()?;
        if raw.escaped() {
            return unescape(raw.bytes, out, at);
        }
        out.clear();
        out.push_str(raw.text()?);
        Ok(())
    }

    /// Checks a number's syntax and folds its digits, without converting it.
    #[inline(always)]
    fn scan_number(&mut self) -> Result<NumText> {
        self.ws();
        let (b, start) = (self.b, self.i);
        let negative = b.get(start) == Some(&b'-');
        let int_start = start + negative as usize;
        let (mut i, mut mant) = digits(b, int_start, 0);
        let int_digits = i - int_start;
        if int_digits == 0 || (int_digits > 1 && b[int_start] == b'0') {
            return syntax("invalid number", start);
        }
        let mut frac = 0;
        let mut float = false;
        if b.get(i) == Some(&b'.') {
            let (end, m) = digits(b, i + 1, mant);
            frac = end - (i + 1);
            if frac == 0 {
                return syntax("invalid number", start);
            }
            (i, mant, float) = (end, m, true);
        }
        let mut exp = 0;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            (i, exp) = exponent(b, i + 1).map_or_else(|| syntax("invalid number", start), Ok)?;
            float = true;
        }
        self.i = i;
        Ok(NumText {
            start,
            negative,
            mant,
            digits: int_digits + frac,
            int_digits,
            exp: exp - frac as i64,
            float,
        })
    }

    /// Integers of up to 19 digits, the usual ones, are ready here; the rest are converted
    /// out of line, keeping this small enough to inline.
    #[inline(always)]
    fn number(&mut self) -> Result<Num> {
        let n = self.scan_number()?;
        if !n.float && n.int_digits <= 19 {
            if let Some(v) = signed(n.mant, n.negative) {
                return Ok(Num::Int(v));
            }
        }
        self.convert(n)
    }

    /// A float, or an integer too long or too negative to have been folded exactly.
    fn convert(&self, n: NumText) -> Result<Num> {
        if !n.float && n.int_digits > 19 {
            let from = n.start + n.negative as usize;
            if let Some(v) = exact_integer(&self.b[from..from + n.int_digits], n.negative) {
                return Ok(Num::Int(v));
            }
        }
        if let Some(f) = n.fast_f64() {
            return Ok(Num::Float(f));
        }
        // The bytes are ASCII digits and signs, so this cannot fail.
        let s = std::str::from_utf8(&self.b[n.start..self.i]).unwrap_or("0");
        s.parse::<f64>()
            .map(Num::Float)
            .or_else(|_| syntax("invalid number", n.start))
    }

    /// Skips one JSON value of any type, validating it.
    fn skip_value(&mut self, depth: usize) -> Result<()> {
        if depth > 128 {
            return syntax("nesting too deep", self.i);
        }
        match self.peek() {
            Some(b'"') => {
                let at = self.i;
                let raw = self.raw_string()?;
                raw.decode_in(&mut String::new(), at).map(|_| ())
            }
            Some(b'{') => self.skip_object(depth),
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
            Some(_) => self.scan_number().map(|_| ()),
            None => syntax("unexpected end of line", self.i),
        }
    }

    fn skip_object(&mut self, depth: usize) -> Result<()> {
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

    #[inline]
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
    #[inline]
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

/// Folds the ASCII digits from `b[i]` on into `mant`, returning where they end. The fold
/// wraps: callers only trust it for up to 19 digits.
#[inline(always)]
fn digits(b: &[u8], mut i: usize, mut mant: u64) -> (usize, u64) {
    while let Some((n, v)) = scan::leading_digits(b, i) {
        mant = mant.wrapping_mul(POW10_U64[n]).wrapping_add(v);
        i += n;
        if n < 8 {
            return (i, mant);
        }
    }
    while let Some(&c) = b.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        mant = mant.wrapping_mul(10).wrapping_add(d as u64);
        i += 1;
    }
    (i, mant)
}

/// Reads an exponent's sign and digits from `b[i]` on: where it ends, and its value.
fn exponent(b: &[u8], mut i: usize) -> Option<(usize, i64)> {
    let negative = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let start = i;
    let mut exp = 0i64;
    while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
        exp = (exp * 10 + (c - b'0') as i64).min(EXP_CAP);
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((i, if negative { -exp } else { exp }))
}

#[cold]
fn invalid_utf8<T>() -> Result<T> {
    Err(Box::new(DecodeError {
        reason: "invalid UTF-8 in string".into(),
        offset: None,
    }))
}

/// An integer's canonical value: non-negative as `U64`, negative as `I64`, else none.
#[inline]
fn signed(v: u64, negative: bool) -> Option<Value> {
    if !negative || v == 0 {
        return Some(Value::U64(v));
    }
    if v <= i64::MAX as u64 + 1 {
        return Some(Value::I64((v as i64).wrapping_neg()));
    }
    None
}

/// Like `signed`, for digit runs too long to fold without overflowing.
fn exact_integer(digits: &[u8], negative: bool) -> Option<Value> {
    if digits.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    signed(v, negative)
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

/// Decodes a string's raw bytes into `out` (cleared first).
fn unescape(raw: &[u8], out: &mut String, at: usize) -> Result<()> {
    out.clear();
    let mut valid = true;
    let mut i = 0;
    loop {
        let end = memchr::memchr(b'\\', &raw[i..]).map_or(raw.len(), |n| i + n);
        // Escapes decode to whole characters, so the text is valid UTF-8 exactly when every
        // run between them is. Reporting waits, so that a bad escape later is named first.
        match std::str::from_utf8(&raw[i..end]) {
            Ok(s) => out.push_str(s),
            Err(_) => valid = false,
        }
        if end == raw.len() {
            break;
        }
        i = escape(raw, end + 1, out, at)?;
    }
    if valid {
        Ok(())
    } else {
        invalid_utf8()
    }
}

/// Decodes the escape whose backslash is at `raw[i - 1]`; returns where the text resumes.
fn escape(raw: &[u8], i: usize, out: &mut String, at: usize) -> Result<usize> {
    let e = *raw.get(i).ok_or(()).or_else(|_| syntax("bad escape", at))?;
    let c = match e {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unicode_escape(raw, i + 1, out, at),
        _ => return syntax("bad escape", at),
    };
    out.push(c);
    Ok(i + 1)
}

/// Decodes the four hex digits at `raw[i]`, joining a surrogate pair when one follows.
fn unicode_escape(raw: &[u8], mut i: usize, out: &mut String, at: usize) -> Result<usize> {
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
    out.push(ch);
    Ok(i)
}

/// A float field: a number, or `"NaN"`, `"+Inf"`, `"-Inf"` (also `"Inf"`, `"Infinity"`).
#[inline]
fn float_or_special(c: &mut Cursor<'_>, name: &str) -> Result<f64> {
    match c.peek() {
        Some(b'"') => {
            let raw = c.raw_string()?;
            special_float(raw.bytes)
                .map_or_else(|| field(name, "expected a number, NaN or ±Inf"), Ok)
        }
        Some(b'-' | b'0'..=b'9') => Ok(c.number()?.f64()),
        _ => field(name, "expected a number"),
    }
}

/// A line's offsets fit in u32: lines are limited far below 4 GiB.
fn span(start: usize, end: usize) -> (u32, u32) {
    (start as u32, end as u32)
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
            let raw = c.raw_string()?;
            parse_rfc3339(raw.bytes).map_or_else(|| field(name, "expected an RFC 3339 time"), Ok)
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

/// The fields of a metric line.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Field {
    Name,
    Kind,
    Temporality,
    Unit,
    Value,
    Values,
    SampleRate,
    Bounds,
    Counts,
    Quantiles,
    Count,
    Sum,
    Min,
    Max,
    Ts,
    StartTs,
    Tags,
}

impl Field {
    const COUNT: usize = Field::Tags as usize + 1;

    /// Dispatches on the length first: a jump, then one or two fixed-size compares, where a
    /// plain match would compare against each name in turn.
    #[inline]
    fn of(key: &[u8]) -> Option<Field> {
        let f = match key.len() {
            2 if key == b"ts" => Field::Ts,
            3 => match key {
                b"sum" => Field::Sum,
                b"min" => Field::Min,
                b"max" => Field::Max,
                _ => return None,
            },
            4 => match key {
                b"name" => Field::Name,
                b"kind" => Field::Kind,
                b"unit" => Field::Unit,
                b"tags" => Field::Tags,
                _ => return None,
            },
            5 => match key {
                b"value" => Field::Value,
                b"count" => Field::Count,
                _ => return None,
            },
            6 => match key {
                b"values" => Field::Values,
                b"bounds" => Field::Bounds,
                b"counts" => Field::Counts,
                _ => return None,
            },
            8 if key == b"start_ts" => Field::StartTs,
            9 if key == b"quantiles" => Field::Quantiles,
            11 => match key {
                b"temporality" => Field::Temporality,
                b"sample_rate" => Field::SampleRate,
                _ => return None,
            },
            _ => return None,
        };
        Some(f)
    }
}

/// What the fields read so far have settled.
#[derive(Default)]
struct Seen {
    name: bool,
    kind: bool,
    ts: bool,
    values_at: Option<usize>,
}

impl Decoder {
    /// Decodes one line into `m` (cleared first). `now` stamps lines that carry no `ts`.
    pub fn decode(
        &mut self,
        line: &[u8],
        m: &mut Metric,
        now: impl Fn() -> i64,
    ) -> std::result::Result<(), DecodeError> {
        self.fill(line, m, now).map_err(|e| *e)
    }

    /// Where the last line decoded without error held its `value`, `values` and `ts`.
    pub fn spans(&self) -> Spans {
        self.spans
    }

    fn fill(&mut self, line: &[u8], m: &mut Metric, now: impl Fn() -> i64) -> Result<()> {
        m.clear();
        self.spans = Spans::default();
        let mut c = Cursor { b: line, i: 0 };
        let mut seen = Seen::default();
        c.expect(b'{', "expected `{` at the start of the line")?;
        if c.peek() == Some(b'}') {
            c.i += 1;
        } else {
            let mut after = Some(START);
            loop {
                let key_start = c.i;
                let field = self.key(&mut c, after)?;
                match field {
                    Some(f) => self.field(f, &mut c, m, &mut seen)?,
                    None => self.unknown(&mut c, key_start, m)?,
                }
                after = field.map(|f| f as usize + 1);
                if !c.comma_or_end(b'}')? {
                    break;
                }
            }
        }
        if c.peek().is_some() {
            return syntax("trailing characters after the object", c.i);
        }
        if !seen.name {
            return field("name", "missing");
        }
        if !seen.kind {
            return field("kind", "missing");
        }
        if let Some(at) = seen.values_at {
            self.values(&mut Cursor { b: line, i: at }, m)?;
        }
        if !seen.ts {
            m.ts = now();
        }
        m.validate().map_err(|r| {
            Box::new(DecodeError {
                reason: r.to_string(),
                offset: None,
            })
        })
    }

    /// Reads a key of the line's object, the one `after` some field (see `next_keys`), and
    /// the `:` after it: the field it names, or `None` for one to keep as written (unknown,
    /// or with escapes, which no field name has).
    #[inline(always)]
    fn key(&mut self, c: &mut Cursor<'_>, after: Option<usize>) -> Result<Option<Field>> {
        let ways = after.and_then(|at| self.next_keys.get(at * WAYS..at * WAYS + WAYS));
        if c.peek() == Some(b'"') {
            for guess in ways.unwrap_or_default() {
                if guess.matches(c.b, c.i) {
                    c.i += 1 + guess.skip;
                    return Ok(guess.field);
                }
            }
        }
        let key = c.raw_string()?;
        let field = Field::of(key.bytes).filter(|_| !key.escaped());
        c.expect(b':', "expected `:`")?;
        if let (Some(_), Some(after)) = (field, after) {
            self.learn_next_key(after, key, field);
        }
        Ok(field)
    }

    /// Remembers `key` as one that follows field `after`, in a free way or else the last.
    #[cold]
    fn learn_next_key(&mut self, after: usize, key: Raw<'_>, field: Option<Field>) {
        let ways = after * WAYS..after * WAYS + WAYS;
        let free = ways
            .clone()
            .find(|&i| self.next_keys.get(i).is_none_or(Guess::is_empty));
        let at = free.unwrap_or(ways.end - 1);
        if let Some(guess) = Guess::slot(&mut self.next_keys, at, (Field::COUNT + 1) * WAYS) {
            guess.learn(key, b"\":", field, false);
        }
    }

    #[inline(always)]
    fn field(
        &mut self,
        f: Field,
        c: &mut Cursor<'_>,
        m: &mut Metric,
        seen: &mut Seen,
    ) -> Result<()> {
        match f {
            Field::Name => {
                c.string_into(&mut m.name).or_else(|e| retag(e, "name"))?;
                seen.name = true;
            }
            Field::Kind => {
                let raw = c.raw_string().or_else(|e| retag(e, "kind"))?;
                m.kind = Kind::parse(raw.bytes).map_or_else(
                    || {
                        field(
                            "kind",
                            "expected counter, gauge, set, distribution, histogram or summary",
                        )
                    },
                    Ok,
                )?;
                seen.kind = true;
            }
            Field::Temporality => {
                if !c.null() {
                    let raw = c.raw_string().or_else(|e| retag(e, "temporality"))?;
                    m.temporality = Some(Temporality::parse(raw.bytes).map_or_else(
                        || field("temporality", "expected delta or cumulative"),
                        Ok,
                    )?);
                }
            }
            Field::Unit => {
                if !c.null() {
                    c.string_into(&mut m.unit).or_else(|e| retag(e, "unit"))?;
                }
            }
            Field::Value => {
                c.ws();
                let start = c.i;
                m.value = Some(value(c)?);
                self.spans.value = span(start, c.i);
            }
            Field::Values => {
                // Read once `kind` is known, which may come later in the line.
                c.ws();
                let start = c.i;
                seen.values_at = Some(start);
                c.skip_value(0)?;
                self.spans.values = span(start, c.i);
            }
            Field::SampleRate => {
                let r = c.number().or_else(|e| retag(e, "sample_rate"))?.f64();
                if !(r > 0.0 && r <= 1.0) {
                    return field("sample_rate", "must be in (0, 1]");
                }
                m.sample_rate = Some(r);
            }
            Field::Bounds => floats(c, &mut m.bounds, "bounds")?,
            Field::Counts => {
                let counts = &mut m.counts;
                c.array(|c| {
                    counts.push(unsigned(c, "counts")?);
                    Ok(())
                })?;
            }
            Field::Quantiles => quantiles(c, &mut m.quantiles)?,
            Field::Count => m.count = Some(unsigned(c, "count")?),
            Field::Sum => m.sum = Some(float_or_special(c, "sum")?),
            Field::Min => m.min = Some(float_or_special(c, "min")?),
            Field::Max => m.max = Some(float_or_special(c, "max")?),
            Field::Ts => {
                c.ws();
                let start = c.i;
                m.ts = timestamp(c, "ts")?;
                self.spans.ts = span(start, c.i);
                seen.ts = true;
            }
            Field::StartTs => {
                if !c.null() {
                    m.start_ts = Some(timestamp(c, "start_ts")?);
                }
            }
            Field::Tags => {
                if !c.null() {
                    self.tags(c, m)?;
                }
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn tags(&mut self, c: &mut Cursor<'_>, m: &mut Metric) -> Result<()> {
        c.expect(b'{', "expected an object for `tags`")?;
        if c.peek() == Some(b'}') {
            c.i += 1;
            return Ok(());
        }
        for n in 0.. {
            self.tag(c, m, n)?;
            if !c.comma_or_end(b'}')? {
                break;
            }
        }
        m.tags.normalize();
        Ok(())
    }

    /// The `n`th `"key":"value"` pair, copied straight from the line unless it has escapes.
    #[inline(always)]
    fn tag(&mut self, c: &mut Cursor<'_>, m: &mut Metric, n: usize) -> Result<()> {
        // Errors in escapes point before any whitespace.
        let at = c.i;
        if let Some(guess) = self.tag_keys.get(n) {
            if c.peek() == Some(b'"') && guess.matches(c.b, c.i) {
                // Past the key, the `:` and the value's opening quote.
                c.i += 1 + guess.skip;
                let key = Key {
                    text: &guess.text,
                    short: guess.short,
                    escaped: false,
                };
                return tag_value(c, m, key, c.i - 1, &mut self.value);
            }
        }
        let raw = c.raw_string()?;
        let start = c.i - 1 - raw.bytes.len();
        let key = Key {
            text: raw.decode_in(&mut self.key, at)?,
            short: (raw.form == Form::Ascii)
                .then(|| Short::ascii(c.b, start, raw.bytes.len()))
                .flatten(),
            escaped: raw.escaped(),
        };
        c.expect(b':', "expected `:`")?;
        if c.peek() != Some(b'"') {
            return field("tags", &format!("tag `{}` must be a string", key.text));
        }
        if let Some(guess) = Guess::slot(&mut self.tag_keys, n, TAG_GUESSES) {
            guess.learn(raw, b"\":\"", None, true);
        }
        c.i += 1;
        tag_value(c, m, key, c.i - 1, &mut self.value)
    }

    /// `values` is read once `kind` is known: numbers for distributions, members for sets.
    fn values(&mut self, c: &mut Cursor<'_>, m: &mut Metric) -> Result<()> {
        if c.null() {
            return Ok(());
        }
        match m.kind {
            Kind::Set => {
                let members = &mut m.members;
                let buf = &mut self.value;
                c.array(|c| {
                    match c.peek() {
                        Some(b'"') => {
                            let at = c.i;
                            members.push(c.raw_string()?.decode_in(buf, at)?);
                        }
                        Some(b'-' | b'0'..=b'9') => {
                            let start = c.i;
                            c.scan_number()?;
                            members.push(std::str::from_utf8(&c.b[start..c.i]).unwrap_or_default());
                        }
                        _ => return field("values", "set members must be strings or numbers"),
                    }
                    Ok(())
                })
            }
            Kind::Distribution => floats(c, &mut m.values, "values"),
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

/// A tag's key as read.
struct Key<'k> {
    text: &'k str,
    /// The key as a block, when it makes one.
    short: Option<Short>,
    escaped: bool,
}

/// The rest of a tag, from the value's opening quote at `b[at]`: the value, then the pair
/// goes into `m`.
#[inline(always)]
fn tag_value(
    c: &mut Cursor<'_>,
    m: &mut Metric,
    key: Key<'_>,
    at: usize,
    buf: &mut String,
) -> Result<()> {
    let value = c.string_body(at + 1)?;
    if let (Some(k), Form::Ascii) = (key.short, value.form) {
        if let Some(v) = Short::ascii(c.b, at + 1, value.bytes.len()) {
            m.tags.push_short(k, v);
            return Ok(());
        }
    }
    let plain = !key.escaped && !value.escaped();
    let value = value.decode_in(buf, at)?;
    if plain {
        m.tags.push_plain(key.text, value);
    } else {
        m.tags.push(key.text, value);
    }
    Ok(())
}

fn value(c: &mut Cursor<'_>) -> Result<Value> {
    match c.peek() {
        Some(b'"') => {
            let raw = c.raw_string()?;
            special_float(raw.bytes).map(Value::F64).map_or_else(
                || field("value", "expected a number (text values travel as tags)"),
                Ok,
            )
        }
        Some(b'-' | b'0'..=b'9') => Ok(c.number()?.value()),
        _ => field("value", "expected a number"),
    }
}

/// An array of float fields into `out`.
#[inline]
fn floats(c: &mut Cursor<'_>, out: &mut Vec<f64>, name: &str) -> Result<()> {
    c.array(|c| {
        out.push(float_or_special(c, name)?);
        Ok(())
    })
}

fn quantiles(c: &mut Cursor<'_>, qs: &mut Vec<(f64, f64)>) -> Result<()> {
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
    })
}

fn unsigned(c: &mut Cursor<'_>, name: &str) -> Result<u64> {
    match c.number()? {
        Num::Int(Value::U64(v)) => Ok(v),
        _ => field(name, "expected a non-negative integer"),
    }
}

#[cold]
fn retag<T>(mut e: Box<DecodeError>, name: &str) -> Result<T> {
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

    fn decode(line: &str) -> std::result::Result<Metric, DecodeError> {
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

    /// A decoder remembers keys from line to line; what it decodes must not depend on that.
    #[test]
    fn reused_decoder_agrees_with_a_fresh_one() {
        let lines = [
            r#"{"name":"a","kind":"counter","temporality":"delta","value":1,"ts":5,"tags":{"host":"h1","dc":"x","env":"p"}}"#,
            r#"{"name":"b","kind":"gauge","value":2.5,"ts":6,"tags":{"host":"h2","dc":"y","env":"q"}}"#,
            r#"{"name":"c","kind":"distribution","unit":"ms","values":[1,2],"ts":7,"tags":{"host":"h3","dc":"z"}}"#,
            r#"{"name":"a","kind":"counter","temporality":"delta","value":1,"ts":5,"tags":{"host":"h1","dc":"x","env":"p"}}"#,
            r#"{ "name" : "d" , "kind" : "gauge" , "value" : 3 , "tags" : { "host" : "h" , "dc" : "d" } }"#,
            r#"{"name":"e","kind":"gauge","value":4,"tags":{"host":"h\u0041","d\u0063":"v","env":"é"}}"#,
            r#"{"name":"f","kind":"gauge","value":5,"tags":{"host":1}}"#,
            r#"{"name":"g","kind":"gauge","value":6,"tags":{"host":"h","dc":"x\q"}}"#,
            r#"{"name":"h","kind":"gauge","value":7,"tags":{"host":"h", "d\xc":"x"}}"#,
            r#"{"name":"i","kind":"gauge","value":8,"tags":{"hos":"h","dcc":"x","env":"abcdefghijklmnopqrstuvwxyz"}}"#,
            r#"{"name":"j","kind":"gauge","value":9,"tags":{"host":"h","dc":"x"},"name":"k"}"#,
            r#"{"kind":"gauge","name":"l","value":10,"meta":{"x":[1]},"tags":{"host":"h","dc":"x"}}"#,
            r#"{"name":"m","kind":"gauge","value":11,"tags":{"host":"h","dc":"x","env":"p"}"#,
            r#"{"name":"n","kind":"gauge","valu":12}"#,
        ];
        let mut reused = Decoder::default();
        for round in 0..3 {
            for line in lines {
                let mut a = Metric::default();
                let fresh = Decoder::default().decode(line.as_bytes(), &mut a, || 42);
                let mut b = Metric::default();
                let again = reused.decode(line.as_bytes(), &mut b, || 42);
                assert_eq!(fresh, again, "round {round}: {line}");
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "round {round}: {line}");
            }
        }
    }

    #[test]
    fn plain_numbers_read_as_scanned_ones() {
        let mut rng = crate::rng::XorShift::with_seed(0x0F1E_2D3C_4B5A_6978);
        let mut next = |n: u64| rng.below(n);
        let alphabet = b"0123456789-.eE+x 0";
        let (mut plain, mut declined) = (0, 0);
        for _ in 0..200_000 {
            let len = 1 + next(24) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| match next(4) {
                    0 => alphabet[next(alphabet.len() as u64) as usize],
                    _ => b'0' + next(10) as u8,
                })
                .collect();
            let scanned = scanned_number(&text).map(|n| format!("{:?}", n.value()));
            match plain_number(&text) {
                Some(n) => {
                    plain += 1;
                    let got = Some(format!("{:?}", n.value()));
                    assert_eq!(got, scanned, "{}", String::from_utf8_lossy(&text));
                }
                None => declined += 1,
            }
        }
        assert!(plain > 10_000 && declined > 10_000, "{plain} {declined}");
    }

    #[test]
    fn numbers_parse_as_the_standard_library_does() {
        let mut seed = 0x0123_4567_89AB_CDEFu64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut decoder = Decoder::default();
        for _ in 0..50_000 {
            let mut num = String::new();
            if next(3) == 0 {
                num.push('-');
            }
            let long = next(4) == 0;
            let int_len = 1 + next(if long { 24 } else { 8 });
            (0..int_len).for_each(|_| num.push((b'1' + next(9) as u8) as char));
            if next(2) == 0 {
                num.push('.');
                let long = next(4) == 0;
                let frac_len = 1 + next(if long { 24 } else { 6 });
                (0..frac_len).for_each(|_| num.push((b'0' + next(10) as u8) as char));
            }
            if next(4) == 0 {
                num.push_str(["e", "E-", "e+"][next(3) as usize]);
                (0..1 + next(3)).for_each(|_| num.push((b'0' + next(10) as u8) as char));
            }
            let line = format!(r#"{{"name":"x","kind":"gauge","value":{num}}}"#);
            let mut m = Metric::default();
            decoder.decode(line.as_bytes(), &mut m, || 0).unwrap();
            let want = match (num.parse::<u64>(), num.parse::<i64>()) {
                (Ok(u), _) => Value::U64(u),
                (_, Ok(i)) => Value::I64(i),
                _ => Value::F64(num.parse().unwrap()),
            };
            let got = m.value.unwrap();
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{num}");
            if let (Value::F64(a), Value::F64(b)) = (got, want) {
                assert_eq!(a.to_bits(), b.to_bits(), "{num}");
            }
        }
    }

    #[test]
    fn histogram_and_summary() {
        let h = decode(r#"{"name":"h","kind":"histogram","temporality":"delta","bounds":[1,5],"counts":[1,2,3],"count":6,"sum":20.5}"#).unwrap();
        assert_eq!(h.counts, vec![1, 2, 3]);
        let s = decode(r#"{"name":"s","kind":"summary","temporality":"delta","quantiles":[[0.5,13.0],[0.99,"+Inf"]],"count":6}"#).unwrap();
        assert_eq!(s.quantiles[1].1, f64::INFINITY);
    }

    /// This thread's CPU time: under load from other processes it stays close to the work
    /// done, where wall time does not.
    fn thread_cpu_ns() -> u128 {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid, writable timespec for the duration of the call.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
    }

    /// Decode + series-key cost per line over the file named by `TLM_DECODE_BENCH`
    /// (`TLM_DECODE_BENCH_PASSES` passes, 10 by default, the best counting), and of
    /// decoding alone in as many passes in between.
    #[test]
    #[ignore]
    fn decode_bench() {
        use std::io::Write;
        let Ok(path) = std::env::var("TLM_DECODE_BENCH") else {
            let _ = writeln!(std::io::stderr(), "set TLM_DECODE_BENCH to an NDJSON file");
            return;
        };
        let data = std::fs::read(&path).unwrap();
        let passes: usize =
            std::env::var("TLM_DECODE_BENCH_PASSES").map_or(10, |p| p.parse().unwrap());
        let lines: Vec<&[u8]> = data
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let n = lines.len() as f64;
        let mut decoder = Decoder::default();
        let mut m = Metric::default();
        let mut key = Vec::new();
        let mut best = [(f64::INFINITY, f64::INFINITY); 2];
        for pass in 0..2 * passes {
            let with_key = pass % 2 == 0;
            let (mut ok, mut key_bytes) = (0usize, 0usize);
            let (wall, cpu) = (std::time::Instant::now(), thread_cpu_ns());
            for line in &lines {
                if decoder.decode(line, &mut m, || 0).is_ok() {
                    if with_key {
                        crate::agg::series::series_key(&m, &|_| true, &mut key);
                        key_bytes += key.len();
                    }
                    ok += 1;
                }
            }
            let cpu = (thread_cpu_ns() - cpu) as f64 / n;
            let wall = wall.elapsed().as_nanos() as f64 / n;
            let b = &mut best[pass % 2];
            *b = (b.0.min(cpu), b.1.min(wall));
            let _ = writeln!(
                std::io::stderr(),
                "{n} lines, {ok} ok, {key_bytes} key bytes: {cpu:.1} ns/line CPU, {wall:.1} wall"
            );
        }
        let [(cpu, wall), (decode_cpu, decode_wall)] = best;
        let _ = writeln!(std::io::stderr(), "best: {cpu:.1} ns/line CPU, {wall:.1} wall; decoding alone {decode_cpu:.1} CPU, {decode_wall:.1} wall; keys alone {:.1} CPU", keys_alone(&lines, passes));
    }

    /// Best CPU ns per key over metrics decoded beforehand (a sample that fits in cache).
    fn keys_alone(lines: &[&[u8]], passes: usize) -> f64 {
        let mut decoder = Decoder::default();
        let metrics: Vec<Metric> = lines
            .iter()
            .take(20_000)
            .filter_map(|line| {
                let mut m = Metric::default();
                decoder.decode(line, &mut m, || 0).ok().map(|_| m)
            })
            .collect();
        let mut key = Vec::new();
        let mut best = f64::INFINITY;
        for _ in 0..passes * 5 {
            let cpu = thread_cpu_ns();
            for m in &metrics {
                crate::agg::series::series_key(m, &|_| true, &mut key);
                std::hint::black_box(&key);
            }
            best = best.min((thread_cpu_ns() - cpu) as f64 / metrics.len() as f64);
        }
        best
    }
}
