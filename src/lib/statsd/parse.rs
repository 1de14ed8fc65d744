//! statsd lines (Etsy, Brubeck and DogStatsD) as tlm metrics.
//!
//! `NAME:VALUE|TYPE[|@RATE][|#TAG,…][|TUNIX]`, with several value groups per name
//! (Etsy's `k:1|c:2|c`) and several values per group (DogStatsD's `k:1:2:3|d`). Types: `c`
//! counter, `ms`/`h`/`d` timer and distribution, `g` gauge (`+N`/`-N` change it, `=N` sets
//! it, so `=-5` sets a negative value, which plain `-5` cannot), `s` set, `C` Brubeck's
//! monotonic absolute counter. Unknown `|…` sections (DogStatsD container ids) are skipped.

use crate::agg::state::Sample;
use crate::metric::{Kind, Metric, Temporality, Value};

/// What happens to the bytes of a name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sanitize {
    /// Etsy statsd's rule: whitespace runs become `_`, `/` becomes `-`, any byte other than
    /// letters, digits, `_`, `-` and `.` is dropped.
    #[default]
    Etsy,
    /// Names are kept as sent (valid UTF-8 required).
    None,
}

/// Why a line was refused; counted per reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadLine {
    NoValue,
    EmptyName,
    BadType,
    BadValue,
    BadRate,
    BadTimestamp,
    BadTags,
    NegativeTimer,
}

impl BadLine {
    pub fn reason(self) -> &'static str {
        match self {
            BadLine::NoValue => "no ':' and value after the name",
            BadLine::EmptyName => "empty name",
            BadLine::BadType => "unknown type (c, ms, h, d, g, s or C)",
            BadLine::BadValue => "value is not a finite number",
            BadLine::BadRate => "sample rate is not in (0, 1]",
            BadLine::BadTimestamp => "timestamp is not Unix seconds",
            BadLine::BadTags => "tags are not UTF-8",
            BadLine::NegativeTimer => "a timer (ms) cannot be negative",
        }
    }
}

/// One line's common parts.
struct Group<'a> {
    values: Vec<&'a [u8]>,
    kind: &'a [u8],
    rate: Option<f64>,
    ts: Option<i64>,
    tags: Option<&'a [u8]>,
}

/// Kinds the ingest fast path (`statsd::cache`) handles: one value that only adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastKind {
    Counter,
    /// `ms`: never negative.
    Millis,
    /// `h`, `d`.
    Timer,
}

/// Parses statsd lines, reusing its buffers.
#[derive(Default)]
pub struct Parser {
    pub sanitize: Sanitize,
    name: String,
    metric: Metric,
    /// Set by `parse` when the line was one counter or timer value without a timestamp.
    shape: Option<(FastKind, f64)>,
}

impl Parser {
    pub fn new(sanitize: Sanitize) -> Parser {
        Parser {
            sanitize,
            ..Parser::default()
        }
    }

    /// Parses one line (without its newline; a trailing `\r` is ignored) and hands each
    /// metric to `each`; `now` stamps metrics without `|T`. Nothing is handed over for a bad
    /// line.
    pub fn parse(
        &mut self,
        line: &[u8],
        now: i64,
        mut each: impl FnMut(&Metric),
    ) -> Result<(), BadLine> {
        self.shape = None;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = memchr::memchr(b':', line).ok_or(BadLine::NoValue)?;
        self.set_name(&line[..colon])?;
        let mut groups = Vec::new();
        let mut rest = &line[colon + 1..];
        while !rest.is_empty() {
            let (group, after) = group(rest)?;
            groups.push(group);
            rest = after;
        }
        if groups.is_empty() {
            return Err(BadLine::NoValue);
        }
        self.shape = single_shape(&groups);
        // Check everything before handing anything over, so a bad line counts once and
        // delivers nothing.
        for g in &groups {
            for v in &g.values {
                sample(g.kind, v)?;
            }
        }
        for g in &groups {
            for v in &g.values {
                self.fill(g, v, now)?;
                each(&self.metric);
            }
        }
        Ok(())
    }

    /// The kind and sample rate of the last line parsed, when it held one counter or timer
    /// value and no timestamp (lines of the same name and sections can take the fast path).
    pub fn last_shape(&self) -> Option<(FastKind, f64)> {
        self.shape
    }

    fn set_name(&mut self, raw: &[u8]) -> Result<(), BadLine> {
        self.name.clear();
        match self.sanitize {
            Sanitize::None => {
                self.name
                    .push_str(std::str::from_utf8(raw).map_err(|_| BadLine::EmptyName)?);
            }
            Sanitize::Etsy => etsy_name(raw, &mut self.name),
        }
        if self.name.is_empty() {
            return Err(BadLine::EmptyName);
        }
        Ok(())
    }

    fn fill(&mut self, g: &Group, v: &[u8], now: i64) -> Result<(), BadLine> {
        let m = &mut self.metric;
        m.clear();
        m.name.push_str(&self.name);
        m.ts = g.ts.unwrap_or(now);
        match sample(g.kind, v)? {
            Parsed::Counter(x) => {
                (m.kind, m.temporality) = (Kind::Counter, Some(Temporality::Delta));
                m.value = Some(match g.rate {
                    Some(r) if r < 1.0 => Value::F64(x.as_f64() / r),
                    _ => x,
                });
            }
            Parsed::Monotonic(x) => {
                (m.kind, m.temporality) = (Kind::Counter, Some(Temporality::Cumulative));
                m.value = Some(x);
            }
            Parsed::Gauge(x, delta) => {
                m.kind = Kind::Gauge;
                m.temporality = delta.then_some(Temporality::Delta);
                m.value = Some(x);
            }
            Parsed::Timer(x, unit) => {
                m.kind = Kind::Distribution;
                m.values.push(x);
                m.unit.push_str(unit);
                m.sample_rate = g.rate.filter(|&r| r < 1.0);
            }
            Parsed::Member(text) => {
                m.kind = Kind::Set;
                m.members.push(text);
            }
        }
        if let Some(tags) = g.tags {
            let tags = std::str::from_utf8(tags).map_err(|_| BadLine::BadTags)?;
            for tag in tags.split(',').filter(|t| !t.is_empty()) {
                let (k, v) = tag.split_once(':').unwrap_or((tag, ""));
                m.tags.push(k, v);
            }
            m.tags.normalize();
        }
        Ok(())
    }
}

fn single_shape(groups: &[Group]) -> Option<(FastKind, f64)> {
    let [g] = groups else { return None };
    if g.values.len() != 1 || g.ts.is_some() {
        return None;
    }
    let kind = match g.kind {
        b"c" => FastKind::Counter,
        b"ms" => FastKind::Millis,
        b"h" | b"d" => FastKind::Timer,
        _ => return None,
    };
    Some((kind, g.rate.unwrap_or(1.0)))
}

/// The sample a fast-path line's value gives, by the rules `parse` applies (`None` when it
/// is not a number: the full parser then reports it).
pub fn fast_sample(kind: FastKind, rate: f64, v: &[u8]) -> Option<Sample> {
    let x = number(v).ok()?;
    Some(match kind {
        FastKind::Counter if rate < 1.0 => Sample::Count(Value::F64(x.as_f64() / rate)),
        FastKind::Counter => Sample::Count(x),
        FastKind::Millis if x.as_f64() < 0.0 => return None,
        FastKind::Millis | FastKind::Timer => Sample::Timing(x.as_f64(), rate),
    })
}

/// One value group `V[:V…]|TYPE[|SECTION…]` and what follows it (after a `:`).
fn group(text: &[u8]) -> Result<(Group<'_>, &[u8]), BadLine> {
    let bar = memchr::memchr(b'|', text).ok_or(BadLine::BadType)?;
    let values: Vec<&[u8]> = text[..bar].split(|&b| b == b':').collect();
    let mut rest = &text[bar + 1..];
    let kind_end = rest
        .iter()
        .position(|&b| b == b'|' || b == b':')
        .unwrap_or(rest.len());
    let mut g = Group {
        values,
        kind: &rest[..kind_end],
        rate: None,
        ts: None,
        tags: None,
    };
    rest = &rest[kind_end..];
    while let Some(section) = rest.strip_prefix(b"|") {
        // Tags and other sections (a DogStatsD container id `c:…`) may hold ':', so they
        // run to the next '|'; a rate or timestamp also ends at ':' (the next value group).
        let end = match section.first() {
            Some(b'@' | b'T') => section
                .iter()
                .position(|&b| b == b'|' || b == b':')
                .unwrap_or(section.len()),
            _ => memchr::memchr(b'|', section).unwrap_or(section.len()),
        };
        let body = &section[..end];
        match body.split_first() {
            Some((b'@', r)) => g.rate = Some(rate(r)?),
            Some((b'#', t)) => g.tags = Some(t),
            Some((b'T', t)) => g.ts = Some(timestamp(t)?),
            _ => {}
        }
        rest = &section[end..];
    }
    Ok((g, rest.strip_prefix(b":").unwrap_or(rest)))
}

fn rate(text: &[u8]) -> Result<f64, BadLine> {
    let r: f64 = ascii(text)
        .and_then(|s| s.parse().ok())
        .ok_or(BadLine::BadRate)?;
    if r > 0.0 && r <= 1.0 {
        Ok(r)
    } else {
        Err(BadLine::BadRate)
    }
}

fn timestamp(text: &[u8]) -> Result<i64, BadLine> {
    ascii(text)
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| s.checked_mul(1_000_000_000))
        .ok_or(BadLine::BadTimestamp)
}

fn ascii(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

enum Parsed<'a> {
    Counter(Value),
    Monotonic(Value),
    /// The value and whether it changes the gauge rather than setting it.
    Gauge(Value, bool),
    Timer(f64, &'static str),
    Member(&'a str),
}

fn sample<'a>(kind: &[u8], v: &'a [u8]) -> Result<Parsed<'a>, BadLine> {
    Ok(match kind {
        b"c" => Parsed::Counter(number(v)?),
        b"C" => Parsed::Monotonic(number(v)?),
        b"g" => match v.first() {
            Some(b'+') => Parsed::Gauge(number(&v[1..])?, true),
            Some(b'-') => Parsed::Gauge(number(v)?, true),
            Some(b'=') => Parsed::Gauge(number(&v[1..])?, false),
            _ => Parsed::Gauge(number(v)?, false),
        },
        // A duration cannot be negative (Etsy refuses it too); `h` and `d` may be.
        b"ms" => match number(v)?.as_f64() {
            x if x < 0.0 => return Err(BadLine::NegativeTimer),
            x => Parsed::Timer(x, "ms"),
        },
        b"h" | b"d" => Parsed::Timer(number(v)?.as_f64(), ""),
        b"s" => Parsed::Member(std::str::from_utf8(v).map_err(|_| BadLine::BadValue)?),
        _ => return Err(BadLine::BadType),
    })
}

/// An integer stays exact (u64/i64); anything else must be a finite float.
fn number(v: &[u8]) -> Result<Value, BadLine> {
    // Most values are a few plain digits: read them without the UTF-8 check and the
    // general parser (18 digits cannot overflow an i64).
    if !v.is_empty() && v.len() <= 18 && v.iter().all(u8::is_ascii_digit) {
        let n = v.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        return Ok(Value::I64(n));
    }
    let s = ascii(v).ok_or(BadLine::BadValue)?;
    if let Ok(i) = s.parse::<i64>() {
        return Ok(Value::I64(i));
    }
    if let Ok(u) = s.parse::<u64>() {
        return Ok(Value::U64(u));
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && !s.is_empty() => Ok(Value::F64(f)),
        _ => Err(BadLine::BadValue),
    }
}

fn etsy_name(raw: &[u8], out: &mut String) {
    let mut in_space = false;
    for &b in raw {
        if b.is_ascii_whitespace() {
            if !in_space {
                out.push('_');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        match b {
            b'/' => out.push('-'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => out.push(b as char),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Vec<Metric>, BadLine> {
        let mut p = Parser::new(Sanitize::Etsy);
        let mut got = Vec::new();
        p.parse(line.as_bytes(), 7, |m| got.push(m.clone()))?;
        for m in &got {
            assert_eq!(m.validate(), Ok(()), "{m:?}");
        }
        Ok(got)
    }

    #[test]
    fn counters_scale_by_sample_rate() {
        let m = parse("hits:3|c|@0.5").unwrap();
        assert_eq!(m[0].kind, Kind::Counter);
        assert_eq!(m[0].temporality, Some(Temporality::Delta));
        assert_eq!(m[0].value, Some(Value::F64(6.0)));
        assert_eq!(parse("hits:3|c").unwrap()[0].value, Some(Value::I64(3)));
    }

    #[test]
    fn several_groups_and_several_values() {
        let m = parse("k:1|c:2|c").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].value, Some(Value::I64(2)));
        let m = parse("lat:1:2.5:3|d|@0.1|#env:prod").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].values, vec![2.5]);
        assert_eq!(m[1].sample_rate, Some(0.1));
        assert_eq!(m[2].tags.get("env"), Some("prod"));
    }

    #[test]
    fn gauges_set_change_and_set_negative() {
        let g = |l: &str| {
            let m = parse(l).unwrap().remove(0);
            (m.value, m.temporality)
        };
        assert_eq!(g("t:5|g"), (Some(Value::I64(5)), None));
        assert_eq!(g("t:+5|g"), (Some(Value::I64(5)), Some(Temporality::Delta)));
        assert_eq!(
            g("t:-5|g"),
            (Some(Value::I64(-5)), Some(Temporality::Delta))
        );
        assert_eq!(g("t:=-5|g"), (Some(Value::I64(-5)), None));
    }

    #[test]
    fn timers_sets_monotonic_tags_and_timestamps() {
        let m = parse("db:12.5|ms|#host:a,canary|T1700000000\r")
            .unwrap()
            .remove(0);
        assert_eq!((m.kind, m.unit.as_str()), (Kind::Distribution, "ms"));
        assert_eq!(m.ts, 1_700_000_000_000_000_000);
        assert_eq!(m.tags.get("canary"), Some(""));
        let s = parse("users:alice|s").unwrap().remove(0);
        assert_eq!(s.members.iter().collect::<Vec<_>>(), vec!["alice"]);
        let c = parse("bytes:18446744073709551615|C").unwrap().remove(0);
        assert_eq!(c.value, Some(Value::U64(u64::MAX)));
        assert_eq!(c.temporality, Some(Temporality::Cumulative));
        assert_eq!(
            parse("x:1|c|c:abc").unwrap()[0].ts,
            7,
            "unknown sections are skipped"
        );
    }

    #[test]
    fn etsy_names_are_cleaned() {
        let m = parse("my  app/req*s:1|c").unwrap();
        assert_eq!(m[0].name, "my_app-reqs");
    }

    #[test]
    fn bad_lines_say_why_and_deliver_nothing() {
        for (line, why) in [
            ("nocolon", BadLine::NoValue),
            (":1|c", BadLine::EmptyName),
            ("k:1|x", BadLine::BadType),
            ("k:1", BadLine::BadType),
            ("k:abc|c", BadLine::BadValue),
            ("k:nan|ms", BadLine::BadValue),
            ("k:1|c|@2", BadLine::BadRate),
            ("k:1|c|Tsoon", BadLine::BadTimestamp),
            ("k:1|c:zz|c", BadLine::BadValue),
        ] {
            assert_eq!(parse(line).err(), Some(why), "{line}");
        }
    }

    const ALPHABET: &[u8] = b":|@#Tcgms+-=.,0123456789ab\xff";

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut p = Parser::new(Sanitize::None);
        let mut seed = 0x9e37_79b9_u64;
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            let line: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ALPHABET[(seed % ALPHABET.len() as u64) as usize]
                })
                .collect();
            let _ = p.parse(&line, 0, |m| assert_eq!(m.validate(), Ok(())));
        }
    }
}
