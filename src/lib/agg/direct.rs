//! Reading a simple point's line straight into its series key, without filling a `Metric`.
//!
//! At high cardinality the shape cache rests (few lines repeat a shape it holds), and every
//! line was decoded in full: its name and tags copied into a `Metric`, the tags sorted
//! there, and the key then built from that copy. Lines as tlm commands write them (no
//! whitespace, no escapes, only the fields of gauges, delta counters and one-value
//! distributions) are read here in one pass, and their key is built from the line's own
//! bytes. Anything else is declined and goes to the general decoder, so a line read here
//! means exactly what the decoder would have made of it (a differential test below holds
//! the two together).

use super::series::push_key_piece;
use super::state::Sample;
use crate::append::append_within;
use crate::metric::{Kind, Temporality};
use crate::ndjson::decode::{number_f64, number_ts, number_value, Field};
use crate::ndjson::scan::{leading_digits, scan, word, POW10_U64};

/// More tags than this and the line is declined (and decoded in full).
const MAX_TAGS: usize = 16;

/// A simple point read from its line: every text borrowed from it, as bytes that are
/// UTF-8 and hold no escape or control character. Its tags are in the `Tags` it was read
/// with.
pub struct Direct<'l> {
    pub name: &'l [u8],
    pub kind: Kind,
    pub temporality: Option<Temporality>,
    pub unit: &'l [u8],
    pub sample: Sample,
    pub at: i64,
}

/// A tag read from a line: the first eight bytes of its key as a big-endian number (zeros
/// after a shorter key), which orders most keys without comparing their bytes, and where
/// in the line its key and value are.
#[derive(Clone, Copy, Default)]
struct Tag {
    prefix: u64,
    key: (u32, u32),
    value: (u32, u32),
}

/// Room for a line's tags, kept by the caller from line to line.
#[derive(Default)]
pub struct Tags {
    tags: [Tag; MAX_TAGS],
    len: usize,
}

impl Tags {
    /// Appends the series key `series::append_series_key` builds for `point`, read from
    /// `line` with these tags, keeping the tags `keep` accepts.
    pub fn append_key(
        &self,
        line: &[u8],
        point: &Direct,
        keep: impl Fn(&[u8]) -> bool,
        key: &mut Vec<u8>,
    ) {
        key.reserve(line.len());
        // No piece holds the bytes 0 or 1 a key escapes: they are control characters.
        push_key_piece(key, point.name);
        for t in &self.tags[..self.len] {
            if keep(text(line, t.key)) {
                for (start, end) in [t.key, t.value] {
                    append_within(key, line, start as usize..end as usize);
                    key.push(0);
                }
            }
        }
        key.extend_from_slice(&super::series::trailer(point.kind, point.temporality));
    }
}

fn text(line: &[u8], (start, end): (u32, u32)) -> &[u8] {
    line.get(start as usize..end as usize).unwrap_or_default()
}

/// A field's key with its quotes and the `:` after it, and the byte its value opens with
/// when that is fixed (`"`, `[`, `{`), as eight bytes: one compare finds the field.
const fn key_word(text: &[u8; 8]) -> u64 {
    u64::from_le_bytes(*text)
}

const NAME: u64 = key_word(b"\"name\":\"");
const KIND: u64 = key_word(b"\"kind\":\"");
const UNIT: u64 = key_word(b"\"unit\":\"");
const VALUE: u64 = key_word(b"\"value\":");
const TAGS: u64 = key_word(b"\"tags\":{");
/// Keys longer than a word: their first eight bytes, and the rest.
const VALUES: (u64, &[u8]) = (key_word(b"\"values\""), b":[");
const TEMPORALITY: (u64, &[u8]) = (key_word(b"\"tempora"), b"lity\":\"");
/// `"ts":`, five bytes, under a mask.
const TS: u64 = key_word(b"\"ts\":\0\0\0");
const TS_MASK: u64 = 0xFF_FFFF_FFFF;

/// The raw texts of a line's fields, before their meaning is checked.
#[derive(Default)]
struct Texts<'l> {
    name: Option<&'l [u8]>,
    kind: Option<&'l [u8]>,
    temporality: Option<&'l [u8]>,
    unit: Option<&'l [u8]>,
    value: Option<&'l [u8]>,
    values: Option<&'l [u8]>,
    at: Option<i64>,
}

/// Reads `line` when it is a simple point written plainly, its tags into `tags`; `None`
/// declines it.
pub fn read<'l>(line: &'l [u8], tags: &mut Tags) -> Option<Direct<'l>> {
    let mut r = Reader { b: line, i: 0 };
    let mut texts = Texts::default();
    tags.len = 0;
    let mut seen = 0u32;
    r.byte(b'{')?;
    loop {
        let field = r.field()?;
        // A repeated field is left to the decoder, whose rule for it this need not copy.
        let bit = 1u32 << field as u32;
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        match field {
            Field::Name => texts.name = Some(r.string_body()?),
            Field::Kind => texts.kind = Some(r.string_body()?),
            Field::Temporality => texts.temporality = Some(r.string_body()?),
            Field::Unit => texts.unit = Some(r.string_body()?),
            Field::Value => texts.value = Some(r.number()?),
            Field::Values => {
                texts.values = Some(r.number()?);
                r.byte(b']')?;
            }
            Field::Ts => texts.at = Some(r.ts()?),
            Field::Tags => tags.len = r.tags(&mut tags.tags)?,
            // `Reader::field` finds only the fields of simple points.
            _ => return None,
        }
        if !r.comma_or_end()? {
            break;
        }
    }
    if r.i != line.len() || !sort_unique(line, &mut tags.tags[..tags.len]) {
        return None;
    }
    meaning(&texts).map(|(kind, temporality, sample, at)| Direct {
        name: texts.name.unwrap_or_default(),
        kind,
        temporality,
        unit: texts.unit.unwrap_or_default(),
        sample,
        at,
    })
}

/// Kind, temporality, sample and event time of a line's fields, when they make a simple
/// point the decoder accepts (`Metric::validate`) and the aggregator takes as one
/// (`partial::simple_sample`, `partial::order_free`).
fn meaning(t: &Texts<'_>) -> Option<(Kind, Option<Temporality>, Sample, i64)> {
    if t.name.is_none_or(<[u8]>::is_empty) {
        return None;
    }
    let kind = Kind::parse(t.kind?)?;
    let temporality = match t.temporality {
        Some(text) => Some(Temporality::parse(text)?),
        None => None,
    };
    let at = t.at?;
    let sample = match (kind, temporality, t.value, t.values) {
        (Kind::Counter, Some(Temporality::Delta), Some(v), None) => Sample::Count(number_value(v)?),
        (Kind::Gauge, None, Some(v), None) => Sample::Gauge(number_value(v)?, at),
        (Kind::Distribution, _, None, Some(v)) => Sample::Timing(number_f64(v)?, 1.0),
        _ => return None,
    };
    Some((kind, temporality, sample, at))
}

/// Sorts tags by key (the order `metric::Tags::normalize` gives); false when a key
/// repeats.
fn sort_unique(line: &[u8], tags: &mut [Tag]) -> bool {
    let key = |t: &Tag| text(line, t.key);
    let before =
        |a: &Tag, b: &Tag| a.prefix < b.prefix || (a.prefix == b.prefix && key(a) < key(b));
    for i in 1..tags.len() {
        let x = tags[i];
        let mut j = i;
        while j > 0 && before(&x, &tags[j - 1]) {
            tags[j] = tags[j - 1];
            j -= 1;
        }
        tags[j] = x;
    }
    tags.windows(2)
        .all(|w| w[0].prefix != w[1].prefix || key(&w[0]) != key(&w[1]))
}

fn span(start: usize, len: usize) -> (u32, u32) {
    (start as u32, (start + len) as u32)
}

/// A mask of the low `n` bytes of a word (all of it from eight on).
#[inline(always)]
fn low_bytes(n: usize) -> u64 {
    u64::MAX.checked_shr(8 * (8 - n.min(8)) as u32).unwrap_or(0)
}

/// The up to eight bytes `b` starts with, zeros after them, as `word` reads eight.
#[cold]
fn padded_word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

/// A position in a line, moving forward.
struct Reader<'l> {
    b: &'l [u8],
    i: usize,
}

impl<'l> Reader<'l> {
    #[inline(always)]
    fn byte(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// `,` (true) or `}` (false) after a member.
    #[inline(always)]
    fn comma_or_end(&mut self) -> Option<bool> {
        let more = match self.b.get(self.i)? {
            b',' => true,
            b'}' => false,
            _ => return None,
        };
        self.i += 1;
        Some(more)
    }

    /// The field whose key comes next, one a simple point's line may carry, read with the
    /// `:` after it and the byte its value opens with, where that is fixed.
    #[inline(always)]
    fn field(&mut self) -> Option<Field> {
        let w = match self.b.get(self.i..self.i + 8) {
            Some(chunk) => word(chunk),
            None => padded_word(&self.b[self.i..]),
        };
        let (field, len) = match w {
            NAME => (Field::Name, 8),
            KIND => (Field::Kind, 8),
            VALUE => (Field::Value, 8),
            TAGS => (Field::Tags, 8),
            UNIT => (Field::Unit, 8),
            _ if w & TS_MASK == TS => (Field::Ts, 5),
            _ if w == VALUES.0 && self.follows(8, VALUES.1) => (Field::Values, 10),
            _ if w == TEMPORALITY.0 && self.follows(8, TEMPORALITY.1) => (Field::Temporality, 15),
            _ => return None,
        };
        self.i += len;
        Some(field)
    }

    fn follows(&self, at: usize, text: &[u8]) -> bool {
        self.b
            .get(self.i + at..)
            .is_some_and(|b| b.starts_with(text))
    }

    /// The rest of a string whose opening quote was read: its bytes, when they hold no
    /// escape or control character and are UTF-8.
    #[inline(always)]
    fn string_body(&mut self) -> Option<&'l [u8]> {
        let hit = scan(self.b, self.i)?;
        if hit.byte != b'"' {
            return None;
        }
        let raw = &self.b[self.i..hit.at];
        // Without a byte of 0x80 or above the text is ASCII, so UTF-8.
        if hit.high && std::str::from_utf8(raw).is_err() {
            return None;
        }
        self.i = hit.at + 1;
        Some(raw)
    }

    /// The text of a number: the bytes a JSON number may hold (whether they make one is
    /// checked by the caller's conversion).
    #[inline(always)]
    fn number(&mut self) -> Option<&'l [u8]> {
        let start = self.i;
        let len = self.b[start..]
            .iter()
            .position(|&c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(self.b.len() - start);
        self.i += len;
        (len > 0).then(|| &self.b[start..self.i])
    }

    /// A `ts` as `number_ts` reads it. Event times are plain runs of digits, read eight
    /// at a time; anything else is left to `number_ts`.
    #[inline(always)]
    fn ts(&mut self) -> Option<i64> {
        let start = self.i;
        let (mut value, mut digits) = (0u64, 0usize);
        while let Some((n, v)) = leading_digits(self.b, start + digits) {
            // At most 19 digits, which a u64 holds.
            if digits + n > 19 {
                break;
            }
            value = value * POW10_U64[n] + v;
            digits += n;
            if n < 8 {
                let plain = matches!(self.b.get(start + digits), Some(b',' | b'}'))
                    && (digits == 1 || self.b[start] != b'0');
                if plain && digits > 0 {
                    self.i = start + digits;
                    return i64::try_from(value).ok();
                }
                break;
            }
        }
        number_ts(self.number()?)
    }

    /// A `tags` object of string values, its `{` read, into `tags`; how many there are.
    #[inline(always)]
    fn tags(&mut self, tags: &mut [Tag; MAX_TAGS]) -> Option<usize> {
        if self.byte(b'}').is_some() {
            return Some(0);
        }
        let mut n = 0;
        loop {
            self.byte(b'"')?;
            let key_at = self.i;
            let key = self.string_body()?;
            self.byte(b':')?;
            self.byte(b'"')?;
            let value_at = self.i;
            let value = self.string_body()?;
            // The key's closing quote, `:` and the value's quote follow it: eight bytes
            // from its start are there.
            let prefix = match self.b.get(key_at..key_at + 8) {
                Some(chunk) => word(chunk),
                None => padded_word(&self.b[key_at..]),
            };
            let prefix = (prefix & low_bytes(key.len())).swap_bytes();
            *tags.get_mut(n)? = Tag {
                prefix,
                key: span(key_at, key.len()),
                value: span(value_at, value.len()),
            };
            n += 1;
            if !self.comma_or_end()? {
                return Some(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::partial::{order_free, simple_sample};
    use crate::agg::series::series_key;
    use crate::metric::Metric;
    use crate::ndjson::Decoder;

    const TYPICAL: &[&str] = &[
        r#"{"name":"db4043.tcp.time_wait","kind":"gauge","value":18.61,"ts":1700000000000000000,"tags":{"host":"db4043","dc":"ams","env":"prod","service":"frontend"}}"#,
        r#"{"name":"web6834.cache.evictions","kind":"counter","temporality":"delta","value":18,"ts":1700000000000300000,"tags":{"host":"web6834","dc":"syd","env":"prod","service":"ingest","region":"us-east"}}"#,
        r#"{"name":"db6292.http.request_duration_ms","kind":"distribution","unit":"ms","values":[132.289],"ts":1700000000000180000,"tags":{"host":"db6292","dc":"gru","env":"prod","service":"billing"}}"#,
        r#"{"name":"a","kind":"gauge","value":-3,"ts":5}"#,
        r#"{"name":"é.temp","kind":"gauge","value":1e3,"ts":5,"tags":{}}"#,
        r#"{"ts":7,"tags":{"b":"2","a":"1"},"value":2,"kind":"counter","name":"x","temporality":"delta"}"#,
    ];

    /// What the general decoder and the aggregator's rules make of `line`, when they take
    /// it as a simple point: key, unit, sample and event time.
    fn general(line: &str, keep: &dyn Fn(&str) -> bool) -> Option<(Vec<u8>, String, String, i64)> {
        let mut m = Metric::default();
        Decoder::default()
            .decode(line.as_bytes(), &mut m, || 0)
            .ok()?;
        if !order_free(&m) {
            return None;
        }
        let sample = simple_sample(&m)?;
        let mut key = Vec::new();
        series_key(&m, keep, &mut key);
        Some((key, m.unit.clone(), format!("{sample:?}"), m.ts))
    }

    fn direct(line: &str, keep: &dyn Fn(&str) -> bool) -> Option<(Vec<u8>, String, String, i64)> {
        let mut tags = Tags::default();
        let d = read(line.as_bytes(), &mut tags)?;
        let mut key = Vec::new();
        let keep = |k: &[u8]| keep(std::str::from_utf8(k).unwrap_or_default());
        tags.append_key(line.as_bytes(), &d, keep, &mut key);
        let unit = std::str::from_utf8(d.unit).unwrap_or_default();
        Some((key, unit.to_string(), format!("{:?}", d.sample), d.at))
    }

    #[test]
    fn lines_as_tlm_writes_them_are_read_as_the_decoder_reads_them() {
        for line in TYPICAL {
            let got = direct(line, &|_| true);
            assert!(got.is_some(), "declined: {line}");
            assert_eq!(got, general(line, &|_| true), "{line}");
        }
    }

    /// Pieces lines are made of: ordinary ones and every kind of oddity the reader must
    /// decline or read exactly as the decoder does.
    const NAMES: &[&str] = &[
        r#""cpu.user""#,
        r#""a""#,
        r#""""#,
        r#""é.x""#,
        r#""a\"b""#,
        r#""a\u0041""#,
        "\"a\u{1}b\"",
        r#""a b""#,
        "7",
        "null",
    ];
    const KINDS: &[&str] = &[
        r#""gauge""#,
        r#""counter""#,
        r#""distribution""#,
        r#""set""#,
        r#""summary""#,
        r#""histogram""#,
        r#""Gauge""#,
        "1",
    ];
    const TEMPORALITIES: &[&str] = &[r#""delta""#, r#""cumulative""#, "null", r#""x""#];
    const UNITS: &[&str] = &[r#""ms""#, r#""""#, "null", r#""µs""#, r#""m\ns""#];
    const NUMBERS: &[&str] = &[
        "0",
        "-0",
        "12",
        "-5",
        "18.61",
        "1e3",
        "1E-2",
        "-1.5e+2",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775809",
        "01",
        "1.",
        ".5",
        "1e",
        "--1",
        "+1",
        "1.2.3",
        r#""NaN""#,
        r#""1""#,
        "null",
        "true",
    ];
    const TSES: &[&str] = &[
        "1700000000000000000",
        "5",
        "-7",
        "0",
        "9223372036854775807",
        "9223372036854775808",
        "1.7e18",
        r#""2023-11-14T22:13:20Z""#,
        "null",
    ];
    const TAG_KEYS: &[&str] = &[
        "host", "dc", "env", "a", "ab", "", "é", "a\\u0062", "h\\\"x",
    ];
    const TAG_VALUES: &[&str] = &[
        r#""web1""#,
        r#""""#,
        r#""x y""#,
        r#""é""#,
        r#""a\nb""#,
        "1",
        "null",
    ];

    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }

        /// Mostly the first (ordinary) entries, sometimes any.
        fn mostly<'a>(&mut self, from: &[&'a str], ordinary: usize) -> &'a str {
            if self.below(4) == 0 {
                self.pick(from)
            } else {
                from[self.below(ordinary.min(from.len()))]
            }
        }
    }

    fn tags_text(rng: &mut Rng) -> String {
        match rng.below(12) {
            0 => "null".into(),
            1 => "{}".into(),
            2 => "[]".into(),
            _ => {
                let n = if rng.below(8) == 0 {
                    rng.below(MAX_TAGS + 3)
                } else {
                    rng.below(6)
                };
                let pairs: Vec<String> = (0..n)
                    .map(|i| {
                        let key = match rng.below(10) {
                            0 => rng.pick(TAG_KEYS).to_string(),
                            1 => format!("k{}", rng.below(4)),
                            _ => format!("k{}", (i * 7) % 11),
                        };
                        format!("\"{key}\":{}", rng.mostly(TAG_VALUES, 4))
                    })
                    .collect();
                format!("{{{}}}", pairs.join(","))
            }
        }
    }

    /// Adds `"key":value` to `fields`, except now and then (a field left out).
    fn put(rng: &mut Rng, fields: &mut Vec<String>, key: &str, value: String) {
        if rng.below(20) != 0 {
            fields.push(format!("\"{key}\":{value}"));
        }
    }

    /// A line of random fields; half of them hold together as a simple point would (the
    /// kind's own fields), so both the reader's paths are taken often.
    fn random_line(rng: &mut Rng) -> String {
        let mut fields: Vec<String> = Vec::new();
        let coherent = rng.below(2) == 0;
        let v = rng_mostly(rng, NAMES, 4);
        put(rng, &mut fields, "name", v);
        let kind = rng_mostly(rng, KINDS, 3);
        put(rng, &mut fields, "kind", kind.clone());
        if (coherent && kind == r#""counter""#) || (!coherent && rng.below(2) == 0) {
            let v = rng_mostly(rng, TEMPORALITIES, 1);
            put(rng, &mut fields, "temporality", v);
        }
        if rng.below(3) == 0 {
            let v = rng_mostly(rng, UNITS, 1);
            put(rng, &mut fields, "unit", v);
        }
        let one_value = kind != r#""distribution""#;
        let with_value = if coherent {
            one_value
        } else {
            rng.below(3) != 1
        };
        let with_values = if coherent {
            !one_value
        } else {
            rng.below(3) != 0
        };
        if with_value {
            let v = rng_mostly(rng, NUMBERS, 8);
            put(rng, &mut fields, "value", v);
        }
        if with_values {
            let n = if rng.below(4) == 0 { rng.below(3) } else { 1 };
            let vs: Vec<&str> = (0..n).map(|_| rng.mostly(NUMBERS, 8)).collect();
            put(rng, &mut fields, "values", format!("[{}]", vs.join(",")));
        }
        let v = rng_mostly(rng, TSES, 3);
        put(rng, &mut fields, "ts", v);
        let v = tags_text(rng);
        put(rng, &mut fields, "tags", v);
        match rng.below(16) {
            0 => fields.push(r#""sample_rate":0.5"#.into()),
            1 => fields.push(r#""start_ts":3"#.into()),
            2 => fields.push(r#""v":1"#.into()),
            3 => fields.push(r#""value":4"#.into()),
            4 => fields.push(r#""name":"again""#.into()),
            _ => {}
        }
        if rng.below(3) == 0 {
            for i in (1..fields.len()).rev() {
                fields.swap(i, rng.below(i + 1));
            }
        }
        let mut line = format!("{{{}}}", fields.join(","));
        match rng.below(24) {
            0 => line.insert(1, ' '),
            1 => line.push(' '),
            2 => line.push('x'),
            3 => line = line.replacen(':', " :", 1),
            4 => {
                line.pop();
            }
            _ => {}
        }
        line
    }

    fn rng_mostly(rng: &mut Rng, from: &[&str], ordinary: usize) -> String {
        rng.mostly(from, ordinary).to_string()
    }

    #[test]
    fn every_line_read_means_what_the_decoder_makes_of_it() {
        let mut rng = Rng(0x5eed_1e55);
        let keeps: [&dyn Fn(&str) -> bool; 2] = [&|_| true, &|k| k != "dc" && k != "k3"];
        let (mut read, mut declined, mut simple_declined) = (0, 0, 0);
        for _ in 0..200_000 {
            let line = random_line(&mut rng);
            for keep in keeps {
                let want = general(&line, keep);
                match direct(&line, keep) {
                    Some(got) => {
                        assert_eq!(Some(got), want, "{line}");
                        read += 1;
                    }
                    None if want.is_some() => simple_declined += 1,
                    None => declined += 1,
                }
            }
        }
        // The random lines reach both sides, so the comparison above is not empty.
        assert!(read > 10_000, "read {read}");
        assert!(declined > 100_000, "declined {declined}");
        assert!(
            simple_declined > 10_000,
            "simple but declined {simple_declined}"
        );
    }

    #[test]
    fn tags_past_the_limit_or_repeated_are_declined() {
        let many: Vec<String> = (0..=MAX_TAGS)
            .map(|i| format!("\"t{i:02}\":\"v\""))
            .collect();
        let line = format!(
            r#"{{"name":"a","kind":"gauge","value":1,"ts":1,"tags":{{{}}}}}"#,
            many.join(",")
        );
        assert!(read(line.as_bytes(), &mut Tags::default()).is_none());
        let twice = r#"{"name":"a","kind":"gauge","value":1,"ts":1,"tags":{"a":"1","a":"2"}}"#;
        assert!(read(twice.as_bytes(), &mut Tags::default()).is_none());
        assert!(general(twice, &|_| true).is_some());
    }
}
