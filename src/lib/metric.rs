//! The tlm metric v1 model: one series, one point.
//!
//! Every string-bearing part keeps its text in one growable buffer so a `Metric` can be
//! cleared and refilled line after line without touching the allocator (see `Metric::clear`).

use std::cmp::Ordering;
use std::fmt;

/// The format version this library reads and writes (`docs/format.md`).
pub const FORMAT_VERSION: &str = "tlm metric v1";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Counter,
    #[default]
    Gauge,
    Set,
    Distribution,
    Histogram,
    Summary,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Counter,
        Kind::Gauge,
        Kind::Set,
        Kind::Distribution,
        Kind::Histogram,
        Kind::Summary,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Set => "set",
            Kind::Distribution => "distribution",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }

    pub fn parse(s: &[u8]) -> Option<Kind> {
        // By length first: one compare per line on the decoding path instead of up to six.
        let k = match s.len() {
            3 if s == b"set" => Kind::Set,
            5 if s == b"gauge" => Kind::Gauge,
            7 if s == b"counter" => Kind::Counter,
            7 if s == b"summary" => Kind::Summary,
            9 if s == b"histogram" => Kind::Histogram,
            12 if s == b"distribution" => Kind::Distribution,
            _ => return None,
        };
        Some(k)
    }

    /// Kinds whose lines must say whether they are increments or running totals.
    pub fn needs_temporality(self) -> bool {
        matches!(self, Kind::Counter | Kind::Histogram | Kind::Summary)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Temporality {
    Delta,
    Cumulative,
}

impl Temporality {
    pub fn as_str(self) -> &'static str {
        match self {
            Temporality::Delta => "delta",
            Temporality::Cumulative => "cumulative",
        }
    }

    pub fn parse(s: &[u8]) -> Option<Temporality> {
        match s {
            b"delta" => Some(Temporality::Delta),
            b"cumulative" => Some(Temporality::Cumulative),
            _ => None,
        }
    }
}

/// A scalar that keeps integers exact: non-negative integers are `U64` (SNMP Counter64
/// round-trips), negative integers `I64`, everything else `F64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Default for Value {
    fn default() -> Self {
        Value::U64(0)
    }
}

impl Value {
    pub fn as_f64(self) -> f64 {
        match self {
            Value::U64(v) => v as f64,
            Value::I64(v) => v as f64,
            Value::F64(v) => v,
        }
    }

    /// The exact integer, when there is one.
    pub fn as_i128(self) -> Option<i128> {
        match self {
            Value::U64(v) => Some(v as i128),
            Value::I64(v) => Some(v as i128),
            Value::F64(_) => None,
        }
    }

    /// Canonical form of an exact integer; outside the u64/i64 range it becomes a float.
    pub fn from_i128(v: i128) -> Value {
        if v >= 0 {
            u64::try_from(v).map_or(Value::F64(v as f64), Value::U64)
        } else {
            i64::try_from(v).map_or(Value::F64(v as f64), Value::I64)
        }
    }

    pub fn is_integer(self) -> bool {
        !matches!(self, Value::F64(_))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
        }
    }
}

/// An ordered list of strings stored in one buffer (set members).
#[derive(Clone, Debug, Default)]
pub struct StrList {
    buf: String,
    ends: Vec<u32>,
}

impl StrList {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    pub fn push(&mut self, s: &str) {
        self.buf.push_str(s);
        self.ends.push(self.buf.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.ends.iter().enumerate().map(move |(i, &end)| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
            &self.buf[start..end as usize]
        })
    }
}

impl PartialEq for StrList {
    fn eq(&self, other: &Self) -> bool {
        self.buf == other.buf && self.ends == other.ends
    }
}

/// A tag in `Tags::buf`: the key from `key_start` to `key_end`, a 0 byte, the value up to
/// `value_end`, another 0 byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TagSpan {
    key_start: u32,
    key_end: u32,
    value_end: u32,
    /// The key's first eight bytes, big-endian and zero-padded: comparing these orders
    /// most keys without a `memcmp` call (see `Tags::cmp_keys`).
    prefix: u64,
}

/// Loads the first and last bytes of short keys in two overlapping reads rather than byte by
/// byte: a loop whose trip count follows the key's length mispredicts its exit.
fn key_prefix(key: &[u8]) -> u64 {
    let n = key.len();
    let be4 = |b: Option<&[u8; 4]>| b.map_or(0, |b| u32::from_be_bytes(*b) as u64);
    match n {
        8.. => key.first_chunk().map_or(0, |b| u64::from_be_bytes(*b)),
        4.. => be4(key.first_chunk()) << 32 | be4(key.last_chunk()) << (8 * (8 - n)),
        1.. => {
            let at = |i: usize| (key[i] as u64) << (56 - 8 * i);
            at(0) | at(n / 2) | at(n - 1)
        }
        0 => 0,
    }
}

/// Text of under 16 bytes with no byte below 0x20 or above 0x7F, zero-padded to 16: the
/// pieces of most tags, which `Tags::push_short` appends whole.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Short {
    /// Printable ASCII up to `len`, zeros after (so always one zero at least).
    bytes: [u8; 16],
    len: usize,
}

impl Short {
    /// `text`, when it fits.
    pub(crate) fn new(text: &str) -> Option<Short> {
        let b = text.as_bytes();
        let mut block = [0u8; 16];
        block.get_mut(..b.len())?.copy_from_slice(b);
        Short::ascii(&block, 0, b.len())
    }

    /// The `len` bytes at `b[at]`, when they fit and are printable ASCII. Reads 16 bytes at
    /// once: from `at` on, or near the end of `b` those that end with the piece.
    #[inline(always)]
    pub(crate) fn ascii(b: &[u8], at: usize, len: usize) -> Option<Short> {
        const LO: u128 = u128::MAX / 0xFF;
        let keep = 1u128.checked_shl(8 * len as u32)?.wrapping_sub(1);
        let w = match b.get(at..at + 16) {
            Some(chunk) => u128::from_le_bytes(chunk.try_into().ok()?) & keep,
            None => Short::ending(b, at + len, len)?,
        };
        // A byte below 0x20 borrows from 0x20 subtracted (the Hacker's Delight test);
        // the padding is raised to 0x20 first so that it passes.
        let raised = w | ((0x20 * LO) & !keep);
        let control = raised.wrapping_sub(0x20 * LO) & !raised & (0x80 * LO);
        (len < 16 && (control | w & (0x80 * LO)) == 0).then_some(Short {
            bytes: w.to_le_bytes(),
            len,
        })
    }

    /// The `len` bytes before `b[end]`, zero-padded, read with the 16 bytes ending there.
    #[cold]
    fn ending(b: &[u8], end: usize, len: usize) -> Option<u128> {
        let chunk: [u8; 16] = b.get(end.checked_sub(16)?..end)?.try_into().ok()?;
        u128::from_le_bytes(chunk).checked_shr(8 * (16 - len) as u32)
    }

    fn first_eight(&self) -> [u8; 8] {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&self.bytes[..8]);
        eight
    }
}

/// Appends `s` and the zero after it to `buf`.
#[inline(always)]
fn push_block(buf: &mut String, s: &Short) {
    let end = buf.len() + s.len + 1;
    // SAFETY: `s.bytes` is ASCII up to `len` and zeros after, all of it valid UTF-8, so the
    // String holds valid UTF-8 after each step, ending with `s` and one zero.
    let v = unsafe { buf.as_mut_vec() };
    v.extend_from_slice(&s.bytes);
    v.truncate(end);
}

/// Whether `b` holds a byte 0x00 or 0x01. Names and tags are short and almost never hold
/// one, so the test reads whole words, overlapping at the ends, with no loop for short text.
#[inline]
pub(crate) fn has_0_or_1(b: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    // High bit set for some byte below 2 exactly when there is one (Hacker's Delight).
    let below_2 = |w: u64| w.wrapping_sub(2 * LO) & !w & (0x80 * LO);
    let le8 = |b: Option<&[u8; 8]>| b.map_or(0, |b| below_2(u64::from_le_bytes(*b)));
    let le4 = |b: Option<&[u8; 4]>| b.map_or(0, |b| u32::from_le_bytes(*b) as u64);
    let n = b.len();
    match n {
        8.. => {
            let last = le8(b.last_chunk());
            let words = b.chunks_exact(8).map(|c| le8(c.first_chunk()));
            words.fold(last, |found, w| found | w) != 0
        }
        4.. => below_2(le4(b.first_chunk()) | le4(b.last_chunk()) << 32) != 0,
        1.. => b[0] < 2 || b[n / 2] < 2 || b[n - 1] < 2,
        0 => false,
    }
}

/// Below this many tags, an insertion sort beats the general sort's set-up.
const SMALL_SORT: usize = 16;

/// Sorts a few tags by key prefix alone, the common case needing no byte comparison of
/// keys. Returns false if two prefixes tie, when only the whole keys can order those two:
/// the order is then by prefix and otherwise as pushed, which a stable sort by key keeps.
/// (Insertion stops right after the greatest smaller-or-equal prefix, so a tie is always
/// met.) Distinct prefixes mean distinct keys, so there is nothing to deduplicate.
fn sort_by_prefix(spans: &mut [TagSpan]) -> bool {
    let mut tie = false;
    for i in 1..spans.len() {
        let x = spans[i];
        let mut j = i;
        while j > 0 && spans[j - 1].prefix > x.prefix {
            spans[j] = spans[j - 1];
            j -= 1;
        }
        tie |= j > 0 && spans[j - 1].prefix == x.prefix;
        spans[j] = x;
    }
    !tie
}

/// Tags: string keys and values, kept sorted by key with unique keys once `normalize` ran.
///
/// Each key and value is stored followed by a 0 byte, the form they take in series keys
/// (`agg::series`), so that a tag goes into one with a single copy (see `terminated`).
#[derive(Clone, Debug, Default)]
pub struct Tags {
    buf: String,
    spans: Vec<TagSpan>,
    /// Some key or value holds a byte 0x00 or 0x01, which series keys escape.
    low_bytes: bool,
}

impl Tags {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
        self.low_bytes = false;
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Bytes of all keys and values together, each counted with a terminating byte (of the
    /// tags kept, and any since dropped).
    pub(crate) fn text_len(&self) -> usize {
        self.buf.len()
    }

    /// Appends without sorting; call `normalize` after a run of pushes.
    pub fn push(&mut self, key: &str, value: &str) {
        self.low_bytes |= has_0_or_1(key.as_bytes()) || has_0_or_1(value.as_bytes());
        self.push_unchecked(key, value);
    }

    /// Replaces the tags with `text`: keys and values each followed by a 0 byte, sorted by
    /// key and unique, holding no 0x01 byte (the tag part of a series key without escapes):
    /// one copy instead of a push per tag.
    pub(crate) fn set_terminated(&mut self, text: &str) {
        self.clear();
        self.buf.push_str(text);
        let bytes = self.buf.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let Some(k) = memchr::memchr(0, &bytes[at..]) else {
                break;
            };
            let key_end = at + k;
            let Some(v) = memchr::memchr(0, &bytes[key_end + 1..]) else {
                break;
            };
            let value_end = key_end + 1 + v;
            self.spans.push(TagSpan {
                key_start: at as u32,
                key_end: key_end as u32,
                value_end: value_end as u32,
                prefix: key_prefix(&bytes[at..key_end]),
            });
            at = value_end + 1;
        }
    }

    /// Like `push`, for a key and value known to hold no byte below 0x20, as JSON strings
    /// without escapes cannot: spares the check for 0x00 and 0x01.
    pub(crate) fn push_plain(&mut self, key: &str, value: &str) {
        debug_assert!(!has_0_or_1(key.as_bytes()) && !has_0_or_1(value.as_bytes()));
        self.push_unchecked(key, value);
    }

    /// Like `push`, for short tags: each piece is appended as one 16-byte block and cut
    /// back, not copied by a `memcpy` call sized to it, which costs more than a short copy.
    /// (`Short` text holds no control byte, so no 0x00 or 0x01 to note in `low_bytes`.)
    #[inline]
    pub(crate) fn push_short(&mut self, key: Short, value: Short) {
        let key_start = self.buf.len();
        push_block(&mut self.buf, &key);
        push_block(&mut self.buf, &value);
        let key_end = key_start + key.len;
        self.spans.push(TagSpan {
            key_start: key_start as u32,
            key_end: key_end as u32,
            value_end: (key_end + 1 + value.len) as u32,
            // The zero padding past the key is what `key_prefix` pads with.
            prefix: u64::from_be_bytes(key.first_eight()),
        });
    }

    #[inline]
    fn push_unchecked(&mut self, key: &str, value: &str) {
        let key_start = self.buf.len() as u32;
        self.buf.push_str(key);
        let key_end = self.buf.len() as u32;
        self.buf.push('\0');
        self.buf.push_str(value);
        let value_end = self.buf.len() as u32;
        self.buf.push('\0');
        self.spans.push(TagSpan {
            key_start,
            key_end,
            value_end,
            prefix: key_prefix(key.as_bytes()),
        });
    }

    fn key_of(&self, s: TagSpan) -> &str {
        &self.buf[s.key_start as usize..s.key_end as usize]
    }

    fn value_of(&self, s: TagSpan) -> &str {
        &self.buf[s.key_end as usize + 1..s.value_end as usize]
    }

    /// Each tag as its key, and its key and value each followed by a 0 byte; `None` when
    /// some key or value holds a byte 0x00 or 0x01, which would make that form ambiguous.
    pub(crate) fn terminated(&self) -> Option<impl Iterator<Item = (&str, &[u8])> + '_> {
        let buf = self.buf.as_bytes();
        let pair = move |s: TagSpan| &buf[s.key_start as usize..s.value_end as usize + 1];
        (!self.low_bytes).then(|| self.spans.iter().map(move |&s| (self.key_of(s), pair(s))))
    }

    /// Byte order of two keys. Differing prefixes decide it alone: they are the keys' first
    /// bytes, and a zero pad sorts below any byte, like a shorter key.
    #[inline]
    fn cmp_keys(&self, a: TagSpan, b: TagSpan) -> Ordering {
        a.prefix.cmp(&b.prefix).then_with(|| {
            let buf = self.buf.as_bytes();
            let key = |s: TagSpan| &buf[s.key_start as usize..s.key_end as usize];
            key(a).cmp(key(b))
        })
    }

    /// Sorts by key; of duplicate keys the one pushed last wins (as in a JSON object).
    pub fn normalize(&mut self) {
        if self.spans.len() <= SMALL_SORT && sort_by_prefix(&mut self.spans) {
            return;
        }
        if self.is_sorted_unique() {
            return;
        }
        let mut spans = std::mem::take(&mut self.spans);
        // Both sorts are stable, keeping push order among equal keys, so the last of a run
        // is the newest.
        if spans.len() <= SMALL_SORT {
            self.insertion_sort(&mut spans);
        } else {
            spans.sort_by(|a, b| self.cmp_keys(*a, *b));
        }
        let mut kept = 0;
        for i in 0..spans.len() {
            if kept > 0 && self.cmp_keys(spans[kept - 1], spans[i]) == Ordering::Equal {
                spans[kept - 1] = spans[i];
            } else {
                spans[kept] = spans[i];
                kept += 1;
            }
        }
        spans.truncate(kept);
        self.spans = spans;
    }

    fn insertion_sort(&self, spans: &mut [TagSpan]) {
        for i in 1..spans.len() {
            let mut j = i;
            while j > 0 && self.cmp_keys(spans[j - 1], spans[j]) == Ordering::Greater {
                spans.swap(j - 1, j);
                j -= 1;
            }
        }
    }

    fn is_sorted_unique(&self) -> bool {
        self.spans
            .windows(2)
            .all(|w| self.cmp_keys(w[0], w[1]) == Ordering::Less)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.spans
            .iter()
            .map(|&s| (self.key_of(s), self.value_of(s)))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Sets one tag, replacing an existing value, and keeps the order.
    pub fn insert(&mut self, key: &str, value: &str) {
        self.push(key, value);
        self.normalize();
    }

    /// Keeps only the tags for which `keep` says yes.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        let mut spans = std::mem::take(&mut self.spans);
        spans.retain(|&s| keep(self.key_of(s), self.value_of(s)));
        self.spans = spans;
    }
}

impl PartialEq for Tags {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// One point of one series. Fields that a kind does not use stay empty / `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metric {
    pub name: String,
    pub kind: Kind,
    pub temporality: Option<Temporality>,
    /// UCUM unit; empty when absent.
    pub unit: String,
    pub value: Option<Value>,
    /// Distribution observations.
    pub values: Vec<f64>,
    /// Set members.
    pub members: StrList,
    pub sample_rate: Option<f64>,
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    pub quantiles: Vec<(f64, f64)>,
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Unix epoch nanoseconds, UTC.
    pub ts: i64,
    pub start_ts: Option<i64>,
    pub tags: Tags,
    /// Unknown fields, kept verbatim as `"key":value` pairs joined by commas.
    pub extra: String,
}

impl Metric {
    /// Empties every field while keeping allocated capacity for the next line.
    pub fn clear(&mut self) {
        self.name.clear();
        self.kind = Kind::Gauge;
        self.temporality = None;
        self.unit.clear();
        self.value = None;
        self.values.clear();
        self.members.clear();
        self.sample_rate = None;
        self.bounds.clear();
        self.counts.clear();
        self.quantiles.clear();
        self.count = None;
        self.sum = None;
        self.min = None;
        self.max = None;
        self.ts = 0;
        self.start_ts = None;
        self.tags.clear();
        self.extra.clear();
    }

    pub fn gauge(name: &str, value: Value, ts: i64) -> Metric {
        Metric {
            name: name.to_owned(),
            kind: Kind::Gauge,
            value: Some(value),
            ts,
            ..Metric::default()
        }
    }

    pub fn counter(name: &str, temporality: Temporality, value: Value, ts: i64) -> Metric {
        Metric {
            name: name.to_owned(),
            kind: Kind::Counter,
            temporality: Some(temporality),
            value: Some(value),
            ts,
            ..Metric::default()
        }
    }

    pub fn with_unit(mut self, unit: &str) -> Metric {
        self.unit = unit.to_owned();
        self
    }

    pub fn with_tag(mut self, key: &str, value: &str) -> Metric {
        self.tags.insert(key, value);
        self
    }

    /// Checks the per-kind rules of the contract; the reason names the field at fault.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.name.is_empty() {
            return Err("field `name` is empty");
        }
        if self.kind.needs_temporality() && self.temporality.is_none() {
            return Err("field `temporality` is required for counter, histogram and summary");
        }
        match self.kind {
            Kind::Counter | Kind::Gauge if self.value.is_none() => {
                Err("field `value` is required for counter and gauge")
            }
            Kind::Histogram if self.counts.len() != self.bounds.len() + 1 => {
                Err("histogram needs `counts` with one more entry than `bounds`")
            }
            Kind::Histogram if self.bounds.windows(2).any(|w| w[0] >= w[1]) => {
                Err("histogram `bounds` must be strictly increasing")
            }
            Kind::Summary if self.count.is_none() => Err("field `count` is required for summary"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_sort_and_last_duplicate_wins() {
        let mut t = Tags::default();
        t.push("b", "1");
        t.push("a", "2");
        t.push("b", "3");
        t.normalize();
        let got: Vec<_> = t.iter().collect();
        assert_eq!(got, vec![("a", "2"), ("b", "3")]);
    }

    /// A few keys from a small alphabet, so that prefixes and whole keys often tie.
    fn random_tags(seed: &mut u64) -> Vec<(String, String)> {
        let mut next = || {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed
        };
        let n = (next() % 20) as usize;
        (0..n)
            .map(|i| {
                let len = (next() % 11) as usize;
                let key = (0..len)
                    .map(|_| ['a', 'b', '\0', 'é'][(next() % 4) as usize])
                    .collect();
                (key, i.to_string())
            })
            .collect()
    }

    #[test]
    fn normalize_is_a_stable_sort_where_the_last_duplicate_wins() {
        let mut seed = 0x5DEE_CE66_D1CE_5EEDu64;
        for _ in 0..20_000 {
            let pairs = random_tags(&mut seed);
            let mut want = pairs.clone();
            want.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let mut unique: Vec<(String, String)> = Vec::new();
            for (k, v) in want {
                match unique.last_mut() {
                    Some(last) if last.0 == k => last.1 = v,
                    _ => unique.push((k, v)),
                }
            }
            let mut t = Tags::default();
            for (k, v) in &pairs {
                t.push(k, v);
            }
            t.normalize();
            let got: Vec<_> = t
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(got, unique, "{pairs:?}");
        }
    }

    #[test]
    fn short_pieces_take_printable_ascii_under_16_bytes() {
        let line = b"0123456789abcdef\"x\x01y\"\xc3\xa9\"";
        assert_eq!(Short::ascii(line, 0, 15).map(|s| s.len), Some(15));
        assert!(Short::ascii(line, 0, 16).is_none());
        assert_eq!(Short::ascii(line, 3, 0).map(|s| s.bytes), Some([0; 16]));
        // Control and high bytes are refused, also when fewer than 16 bytes follow.
        assert!(Short::ascii(line, 17, 3).is_none());
        assert!(Short::ascii(line, 22, 2).is_none());
        let s = Short::ascii(line, 10, 6).map(|s| s.bytes);
        assert_eq!(s.map(|b| b[..7].to_vec()), Some(b"abcdef\0".to_vec()));
        let near_end = Short::ascii(line, 17, 1).map(|s| s.bytes);
        assert_eq!(near_end.map(|b| b[..2].to_vec()), Some(b"x\0".to_vec()));
        assert!(Short::new("0123456789abcde").is_some());
        assert!(Short::new("0123456789abcdef").is_none());
    }

    #[test]
    fn short_and_plain_pushes_store_what_push_does() {
        let (mut a, mut b) = (Tags::default(), Tags::default());
        for (k, v) in [("service", "billing"), ("dc", ""), ("host", "lb0040")] {
            a.push(k, v);
            match (Short::new(k), Short::new(v)) {
                (Some(k), Some(v)) => b.push_short(k, v),
                _ => b.push_plain(k, v),
            }
        }
        b.push_plain("region", "abcdefghijklmnopqrstuvwxyz");
        a.push("region", "abcdefghijklmnopqrstuvwxyz");
        a.normalize();
        b.normalize();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let pieces: Vec<_> = b.terminated().map(|t| t.collect()).unwrap_or_default();
        assert_eq!(pieces[0], ("dc", &b"dc\0\0"[..]));
        a.push("k", "\u{1}");
        assert!(a.terminated().is_none());
    }

    #[test]
    fn finds_0_and_1_at_every_place_and_length() {
        for n in 0..40 {
            for at in 0..n {
                for low in [0u8, 1] {
                    let mut b = vec![b'a'; n];
                    b[at] = low;
                    assert!(has_0_or_1(&b), "{b:?}");
                    b[at] = 2;
                    assert!(!has_0_or_1(&b), "{b:?}");
                    b[at] = 0xFF;
                    assert!(!has_0_or_1(&b), "{b:?}");
                }
            }
            assert!(!has_0_or_1(&vec![b'z'; n]));
        }
    }

    #[test]
    fn kinds_parse_from_their_names_only() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str().as_bytes()), Some(k));
        }
        for bad in ["", "gaug", "gauges", "Gauge", "summarx", "counter "] {
            assert_eq!(Kind::parse(bad.as_bytes()), None);
        }
    }

    #[test]
    fn tags_insert_replaces_and_retain_filters() {
        let mut t = Tags::default();
        t.insert("host", "a");
        t.insert("dc", "x");
        t.insert("host", "b");
        assert_eq!(t.get("host"), Some("b"));
        t.retain(|k, _| k != "dc");
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![("host", "b")]);
    }

    #[test]
    fn value_from_i128_is_canonical() {
        assert_eq!(Value::from_i128(5), Value::U64(5));
        assert_eq!(Value::from_i128(-5), Value::I64(-5));
        assert_eq!(Value::from_i128(u64::MAX as i128), Value::U64(u64::MAX));
        assert!(matches!(
            Value::from_i128(u64::MAX as i128 + 1),
            Value::F64(_)
        ));
    }

    #[test]
    fn strlist_keeps_order() {
        let mut l = StrList::default();
        l.push("x");
        l.push("");
        l.push("yz");
        assert_eq!(l.iter().collect::<Vec<_>>(), vec!["x", "", "yz"]);
    }

    #[test]
    fn validate_names_the_missing_field() {
        let mut m = Metric::gauge("x", Value::U64(1), 0);
        assert!(m.validate().is_ok());
        m.kind = Kind::Counter;
        assert!(m.validate().unwrap_err().contains("temporality"));
        m.temporality = Some(Temporality::Delta);
        m.value = None;
        assert!(m.validate().unwrap_err().contains("value"));
    }
}
