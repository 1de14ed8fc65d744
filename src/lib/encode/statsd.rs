//! statsd lines for a relay or aggregator: `name:value|type[|@rate][|#k:v,…]\n`, with
//! DogStatsD tags.
//!
//! statsd carries raw observations and leaves the aggregation to the server, so summaries
//! and histograms, which are already aggregates, have no statsd form.

use super::graphite::{write_clean, Clean};
use super::{all_or_nothing, Encoder, Unsupported};
use crate::metric::{Kind, Metric, Tags, Temporality, Value};
use crate::ndjson::encode::{write_f64, write_value};

/// The type written for each value of a distribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimerSuffix {
    /// `|ms`, the timer every statsd understands.
    #[default]
    Ms,
    /// `|d`, the DogStatsD distribution (aggregated server side across hosts).
    Distribution,
    /// `|h`, the DogStatsD histogram.
    Histogram,
}

impl TimerSuffix {
    fn as_bytes(self) -> &'static [u8] {
        match self {
            TimerSuffix::Ms => b"ms",
            TimerSuffix::Distribution => b"d",
            TimerSuffix::Histogram => b"h",
        }
    }
}

/// Encoder for statsd relay lines.
///
/// - A delta counter is `name:V|c`. A cumulative counter is written as a gauge `name:V|g`:
///   statsd has no running totals, and a counter line would add the whole total again at
///   every flush.
/// - A gauge is `name:V|g`. statsd reads a leading sign as a change of the current value,
///   so a negative absolute gauge is two lines, `name:0|g` then `name:-5|g`; a gauge with
///   delta temporality (a statsd `+N|g` change) is written with an explicit sign, `+N` /
///   `-N`.
/// - A distribution is one `name:V|ms` line per value (`|d` or `|h` by `TimerSuffix`), with
///   `|@rate` when its sample rate is below 1; a set one `name:member|s` line per member.
/// - Summaries and histograms are `Unsupported` (`STATSD_AGGREGATE`), as are NaN and
///   infinities (statsd servers do not parse them).
///
/// Names and set members have `:`, `|`, `@`, `#`, whitespace and control characters
/// replaced by `_`, since each would end the name or value early; tag keys also `,`; tag
/// values the same except `:`, since DogStatsD splits a tag at its first colon. A tag with an
/// empty value is a bare key (`#canary`); one with an empty key is skipped. Timestamps and
/// units are not written: statsd stamps values when it flushes them.
#[derive(Debug)]
pub struct StatsdEncoder {
    timer: TimerSuffix,
    tags_on: bool,
    /// The sanitized name of the metric in hand.
    name: Vec<u8>,
    /// `|#k:v,…` for the metric in hand, or nothing.
    tags: Vec<u8>,
}

impl Default for StatsdEncoder {
    fn default() -> Self {
        StatsdEncoder::new(TimerSuffix::Ms)
    }
}

impl Encoder for StatsdEncoder {
    fn stateless(&self) -> bool {
        true
    }

    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        all_or_nothing(out, |out| self.write(m, out))
    }
}

const NAME_SPECIALS: Clean = Clean::new(b":|@#");
const TAG_KEY_SPECIALS: Clean = Clean::new(b":|@#,");
const TAG_VALUE_SPECIALS: Clean = Clean::new(b"|@#,");

impl StatsdEncoder {
    /// Tags on, distributions written with `timer`.
    pub fn new(timer: TimerSuffix) -> StatsdEncoder {
        StatsdEncoder {
            timer,
            tags_on: true,
            name: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// Whether to write DogStatsD `|#` tags; plain statsd (Etsy) reads them as part of the
    /// line's type and rejects it.
    pub fn with_tags(mut self, on: bool) -> StatsdEncoder {
        self.tags_on = on;
        self
    }

    fn write(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        if matches!(m.kind, Kind::Summary | Kind::Histogram) {
            return Err(Unsupported::STATSD_AGGREGATE);
        }
        if m.name.is_empty() {
            return Err(Unsupported::EMPTY_NAME);
        }
        self.name.clear();
        write_clean(&mut self.name, &m.name, &NAME_SPECIALS);
        self.tags.clear();
        if self.tags_on {
            write_tags(&mut self.tags, &m.tags);
        }
        let line = Line {
            name: &self.name,
            tags: &self.tags,
        };
        match m.kind {
            Kind::Counter => match m.temporality {
                Some(Temporality::Delta) => line.number(out, finite(m.value)?, b"c"),
                Some(Temporality::Cumulative) => line.absolute(out, finite(m.value)?),
                None => return Err(Unsupported::NO_TEMPORALITY),
            },
            Kind::Gauge => match m.temporality {
                Some(Temporality::Delta) => line.change(out, finite(m.value)?),
                _ => line.absolute(out, finite(m.value)?),
            },
            Kind::Distribution => line.distribution(out, m, self.timer)?,
            Kind::Set => line.set(out, m)?,
            Kind::Summary | Kind::Histogram => return Err(Unsupported::STATSD_AGGREGATE),
        }
        Ok(())
    }
}

fn finite(v: Option<Value>) -> Result<Value, Unsupported> {
    match v {
        None => Err(Unsupported::MISSING_VALUE),
        Some(Value::F64(f)) if !f.is_finite() => Err(Unsupported::NON_FINITE),
        Some(v) => Ok(v),
    }
}

fn is_negative(v: Value) -> bool {
    match v {
        Value::U64(_) => false,
        Value::I64(i) => i < 0,
        Value::F64(f) => f < 0.0,
    }
}

/// A number without a sign of its own unless negative; `-0.0` would read as a change.
fn write_number(out: &mut Vec<u8>, v: Value) {
    match v {
        Value::F64(0.0) => write_f64(out, 0.0),
        v => write_value(out, v),
    }
}

struct Line<'a> {
    name: &'a [u8],
    tags: &'a [u8],
}

impl Line<'_> {
    fn write(&self, out: &mut Vec<u8>, value: impl FnOnce(&mut Vec<u8>), ty: &[u8]) {
        self.write_sampled(out, value, ty, None);
    }

    fn write_sampled(
        &self,
        out: &mut Vec<u8>,
        value: impl FnOnce(&mut Vec<u8>),
        ty: &[u8],
        rate: Option<f64>,
    ) {
        out.extend_from_slice(self.name);
        out.push(b':');
        value(out);
        out.push(b'|');
        out.extend_from_slice(ty);
        if let Some(r) = rate {
            out.extend_from_slice(b"|@");
            write_f64(out, r);
        }
        out.extend_from_slice(self.tags);
        out.push(b'\n');
    }

    fn number(&self, out: &mut Vec<u8>, v: Value, ty: &[u8]) {
        self.write(out, |o| write_number(o, v), ty);
    }

    fn absolute(&self, out: &mut Vec<u8>, v: Value) {
        if is_negative(v) {
            // Setting 0 first turns the signed value that follows into the absolute one.
            self.number(out, Value::U64(0), b"g");
        }
        self.number(out, v, b"g");
    }

    fn change(&self, out: &mut Vec<u8>, v: Value) {
        self.write(
            out,
            |o| {
                if !is_negative(v) {
                    o.push(b'+');
                }
                write_number(o, v);
            },
            b"g",
        );
    }

    fn distribution(
        &self,
        out: &mut Vec<u8>,
        m: &Metric,
        timer: TimerSuffix,
    ) -> Result<(), Unsupported> {
        if m.values.is_empty() {
            return Err(Unsupported::NOTHING_TO_WRITE);
        }
        if m.values.iter().any(|v| !v.is_finite()) {
            return Err(Unsupported::NON_FINITE);
        }
        // Rates outside (0, 1) are not valid statsd rates; 1 is the default anyway.
        let rate = m.sample_rate.filter(|&r| r > 0.0 && r < 1.0);
        for &v in &m.values {
            let value = |o: &mut Vec<u8>| write_number(o, Value::F64(v));
            self.write_sampled(out, value, timer.as_bytes(), rate);
        }
        Ok(())
    }

    fn set(&self, out: &mut Vec<u8>, m: &Metric) -> Result<(), Unsupported> {
        let mut wrote = false;
        // An empty member would be a line without a value, which statsd rejects.
        for member in m.members.iter().filter(|s| !s.is_empty()) {
            self.write(out, |o| write_clean(o, member, &NAME_SPECIALS), b"s");
            wrote = true;
        }
        if wrote {
            Ok(())
        } else {
            Err(Unsupported::NOTHING_TO_WRITE)
        }
    }
}

fn write_tags(out: &mut Vec<u8>, tags: &Tags) {
    for (k, v) in tags.iter().filter(|(k, _)| !k.is_empty()) {
        out.extend_from_slice(if out.is_empty() { b"|#" } else { b"," });
        write_clean(out, k, &TAG_KEY_SPECIALS);
        if !v.is_empty() {
            out.push(b':');
            write_clean(out, v, &TAG_VALUE_SPECIALS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc_with(e: &mut StatsdEncoder, m: &Metric) -> Result<String, Unsupported> {
        let mut out = Vec::new();
        e.encode(m, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn enc(m: &Metric) -> Result<String, Unsupported> {
        enc_with(&mut StatsdEncoder::default(), m)
    }

    fn gauge(v: Value, temporality: Option<Temporality>) -> Metric {
        let mut m = Metric::gauge("g", v, 1);
        m.temporality = temporality;
        m
    }

    fn distribution(values: Vec<f64>, rate: Option<f64>) -> Metric {
        Metric {
            name: "db.query".into(),
            kind: Kind::Distribution,
            values,
            sample_rate: rate,
            ts: 1,
            ..Metric::default()
        }
    }

    #[test]
    fn counters() {
        let m = Metric::counter("api.hits", Temporality::Delta, Value::U64(u64::MAX), 1);
        assert_eq!(enc(&m).unwrap(), "api.hits:18446744073709551615|c\n");
        let m = Metric::counter("c", Temporality::Delta, Value::I64(-2), 1);
        assert_eq!(enc(&m).unwrap(), "c:-2|c\n");
        let m = Metric::counter("c", Temporality::Delta, Value::F64(0.1), 1);
        assert_eq!(enc(&m).unwrap(), "c:0.1|c\n");
        let m = Metric::counter("c", Temporality::Cumulative, Value::U64(7), 1);
        assert_eq!(enc(&m).unwrap(), "c:7|g\n");
        let m = Metric::counter("c", Temporality::Cumulative, Value::I64(-7), 1);
        assert_eq!(enc(&m).unwrap(), "c:0|g\nc:-7|g\n");
        let mut m = Metric::counter("c", Temporality::Delta, Value::U64(1), 1);
        m.temporality = None;
        assert_eq!(enc(&m), Err(Unsupported::NO_TEMPORALITY));
    }

    #[test]
    fn absolute_gauges_never_start_with_a_sign() {
        let cases = [
            (Value::U64(5), "g:5|g\n"),
            (Value::F64(2.5), "g:2.5|g\n"),
            (Value::F64(-0.0), "g:0.0|g\n"),
            (Value::I64(-5), "g:0|g\ng:-5|g\n"),
            (Value::F64(-0.5), "g:0|g\ng:-0.5|g\n"),
            (Value::I64(i64::MIN), "g:0|g\ng:-9223372036854775808|g\n"),
        ];
        for (v, want) in cases {
            assert_eq!(enc(&gauge(v, None)).unwrap(), want);
            let cumulative = gauge(v, Some(Temporality::Cumulative));
            assert_eq!(enc(&cumulative).unwrap(), want);
        }
    }

    #[test]
    fn delta_gauges_always_carry_a_sign() {
        let cases = [
            (Value::U64(5), "g:+5|g\n"),
            (Value::U64(0), "g:+0|g\n"),
            (Value::I64(-5), "g:-5|g\n"),
            (Value::F64(1e20), "g:+1e20|g\n"),
            (Value::F64(-0.0), "g:+0.0|g\n"),
        ];
        for (v, want) in cases {
            assert_eq!(enc(&gauge(v, Some(Temporality::Delta))).unwrap(), want);
        }
    }

    #[test]
    fn non_finite_and_missing_values_are_unsupported() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                enc(&gauge(Value::F64(v), None)),
                Err(Unsupported::NON_FINITE)
            );
            let d = distribution(vec![1.0, v], None);
            assert_eq!(enc(&d), Err(Unsupported::NON_FINITE));
        }
        let mut m = gauge(Value::U64(1), None);
        m.value = None;
        assert_eq!(enc(&m), Err(Unsupported::MISSING_VALUE));
        m.name.clear();
        assert_eq!(enc(&m), Err(Unsupported::EMPTY_NAME));
        assert_eq!(
            enc(&distribution(vec![], None)),
            Err(Unsupported::NOTHING_TO_WRITE)
        );
    }

    #[test]
    fn distributions_are_one_line_per_value() {
        let d = distribution(vec![12.5, 13.0, -1.0], Some(0.25)).with_tag("db", "users");
        assert_eq!(
            enc(&d).unwrap(),
            "db.query:12.5|ms|@0.25|#db:users\n\
             db.query:13.0|ms|@0.25|#db:users\n\
             db.query:-1.0|ms|@0.25|#db:users\n"
        );
        for rate in [None, Some(1.0), Some(0.0), Some(f64::NAN)] {
            assert_eq!(
                enc(&distribution(vec![1.0], rate)).unwrap(),
                "db.query:1.0|ms\n"
            );
        }
        let mut e = StatsdEncoder::new(TimerSuffix::Distribution);
        let d = distribution(vec![1.0], Some(0.5));
        assert_eq!(enc_with(&mut e, &d).unwrap(), "db.query:1.0|d|@0.5\n");
        let mut e = StatsdEncoder::new(TimerSuffix::Histogram);
        assert_eq!(enc_with(&mut e, &d).unwrap(), "db.query:1.0|h|@0.5\n");
    }

    #[test]
    fn sets_are_one_line_per_member() {
        let mut m = Metric {
            name: "users".into(),
            kind: Kind::Set,
            ts: 1,
            ..Metric::default()
        };
        assert_eq!(enc(&m), Err(Unsupported::NOTHING_TO_WRITE));
        for member in ["alice", "", "b:o|b\n@#"] {
            m.members.push(member);
        }
        assert_eq!(enc(&m).unwrap(), "users:alice|s\nusers:b_o_b___|s\n");
    }

    #[test]
    fn aggregates_are_unsupported() {
        for kind in [Kind::Summary, Kind::Histogram] {
            let m = Metric {
                name: "x".into(),
                kind,
                count: Some(1),
                ..Metric::default()
            };
            assert_eq!(enc(&m), Err(Unsupported::STATSD_AGGREGATE));
        }
    }

    #[test]
    fn names_and_tags_are_cleaned() {
        let m = Metric::gauge("a:b|c@d#e f\ng", Value::U64(1), 1)
            .with_tag("canary", "")
            .with_tag("", "dropped")
            .with_tag("k:e,y", "v:a,l|u@e#")
            .with_tag("url", "http://x y");
        assert_eq!(
            enc(&m).unwrap(),
            "a_b_c_d_e_f_g:1|g|#canary,k_e_y:v:a_l_u_e_,url:http://x_y\n"
        );
        let mut e = StatsdEncoder::default().with_tags(false);
        assert_eq!(enc_with(&mut e, &m).unwrap(), "a_b_c_d_e_f_g:1|g\n");
    }

    #[test]
    fn output_parses_back_with_tlm_statsd() {
        let d = distribution(vec![12.5, 80.0], Some(0.5)).with_tag("db", "users");
        let mut out = Vec::new();
        StatsdEncoder::default().encode(&d, &mut out).unwrap();
        let mut parser = crate::statsd::parse::Parser::default();
        let mut got = Vec::new();
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            parser
                .parse(line, 1, |m| {
                    got.push((m.name.clone(), m.values.clone(), m.sample_rate));
                    assert_eq!(m.tags.get("db"), Some("users"));
                })
                .unwrap();
        }
        assert_eq!(
            got,
            [
                ("db.query".to_owned(), vec![12.5], Some(0.5)),
                ("db.query".to_owned(), vec![80.0], Some(0.5)),
            ]
        );
    }
}
