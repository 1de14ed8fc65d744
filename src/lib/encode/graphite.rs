//! Graphite plaintext protocol: `path[;tag=value…] value unix_seconds\n`, as carbon reads it.
//!
//! Summaries and histograms are flattened into one line per statistic the way statsd's
//! Graphite backend does (`name.count`, `name.p99`, `name.le_0_5`, see `flatten`), with the
//! tags after the full path of each line. The path rules here are shared with the pickle
//! encoder.

use super::flatten::Flattener;
use super::{all_or_nothing, Encoder, Unsupported};
use crate::metric::{Metric, Tags, Value};
use crate::ndjson::encode::{write_int, write_value};

/// Encoder for Graphite plaintext (carbon's line receiver, tagged series).
///
/// Carbon's rules for tagged series are enforced by rewriting rather than rejecting:
/// - whitespace and control characters anywhere, and `;` in the path, become `_`
///   (carbon splits lines on whitespace and treats `;` as the start of the tags);
/// - tag keys: `;`, `!`, `^` and `=` become `_`;
/// - tag values: `;` becomes `_`, and so does a leading `~` (carbon forbids only a leading
///   one, so `a~b` is kept);
/// - tags with an empty key or an empty value are skipped, since carbon rejects the whole
///   line otherwise.
///
/// Scalars that are NaN or infinite are `Unsupported` (carbon does not parse them
/// reliably); in summaries and histograms a non-finite statistic only drops its own line.
/// The timestamp is whole seconds, rounded towards the past; units are not written.
#[derive(Debug, Default)]
pub struct GraphiteEncoder {
    paths: Paths,
}

/// Where tags go in a Graphite path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TagMode {
    /// Carbon 1.1 tagged series: `name;k=v`.
    #[default]
    Tagged,
    /// Values folded into the path in key order, for carbon without tag support:
    /// `name.v1.v2` (then any statistic suffix); `.` in a value becomes `_`.
    Path,
    /// Tags left out.
    Drop,
}

impl TagMode {
    pub fn parse(s: &str) -> Option<TagMode> {
        match s {
            "tagged" => Some(TagMode::Tagged),
            "path" => Some(TagMode::Path),
            "drop" => Some(TagMode::Drop),
            _ => None,
        }
    }
}

impl GraphiteEncoder {
    pub fn with_tags(mode: TagMode) -> GraphiteEncoder {
        GraphiteEncoder {
            paths: Paths::with_tags(mode),
        }
    }
}

impl Encoder for GraphiteEncoder {
    fn stateless(&self) -> bool {
        true
    }

    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        all_or_nothing(out, |out| {
            let secs = m.ts.div_euclid(1_000_000_000);
            self.paths.points(m, |path, v| {
                out.extend_from_slice(path);
                out.push(b' ');
                write_value(out, v);
                out.push(b' ');
                write_int(out, secs);
                out.push(b'\n');
            })
        })
    }
}

/// The carbon series of a metric: each flattened point with its full tagged path
/// (`name.suffix;k=v`), shared by the plaintext and pickle encoders so both name series
/// alike.
#[derive(Debug, Default)]
pub(crate) struct Paths {
    flat: Flattener,
    name: Vec<u8>,
    tags: Vec<u8>,
    path: Vec<u8>,
    mode: TagMode,
}

impl Paths {
    pub(crate) fn with_tags(mode: TagMode) -> Paths {
        Paths {
            mode,
            ..Paths::default()
        }
    }

    /// Calls `point(path, value)` per point; errors as `Flattener::points`.
    pub(crate) fn points(
        &mut self,
        m: &Metric,
        mut point: impl FnMut(&[u8], Value),
    ) -> Result<(), Unsupported> {
        self.name.clear();
        write_clean(&mut self.name, &m.name, &PATH);
        self.tags.clear();
        match self.mode {
            TagMode::Tagged => write_tags(&mut self.tags, &m.tags),
            TagMode::Path => fold_tags(&mut self.name, &m.tags),
            TagMode::Drop => {}
        }
        let Paths {
            flat,
            name,
            tags,
            path,
            ..
        } = self;
        flat.points(m, |suffix, v| {
            path.clear();
            path.extend_from_slice(name);
            path.extend_from_slice(suffix);
            path.extend_from_slice(tags);
            point(path, v);
        })
    }
}

fn fold_tags(out: &mut Vec<u8>, tags: &Tags) {
    for (_, v) in tags.iter() {
        if !v.is_empty() {
            out.push(b'.');
            write_clean(out, v, &PATH_SEGMENT);
        }
    }
}

fn write_tags(out: &mut Vec<u8>, tags: &Tags) {
    for (k, v) in tags.iter() {
        if k.is_empty() || v.is_empty() {
            continue;
        }
        out.push(b';');
        write_clean(out, k, &TAG_KEY);
        out.push(b'=');
        let v = match v.strip_prefix('~') {
            Some(rest) => {
                out.push(b'_');
                rest
            }
            None => v,
        };
        write_clean(out, v, &PATH);
    }
}

/// The bytes a piece of text may keep as they are: printable ASCII except a set of
/// separators. A table rather than a search of the separators per byte, since every name and
/// tag of every point passes through it.
pub(crate) struct Clean {
    plain: [bool; 256],
    forbidden: &'static [u8],
}

impl Clean {
    pub(crate) const fn new(forbidden: &'static [u8]) -> Clean {
        let mut plain = [false; 256];
        let mut b = b' ' + 1;
        while b < 0x7f {
            plain[b as usize] = true;
            b += 1;
        }
        let mut i = 0;
        while i < forbidden.len() {
            plain[forbidden[i] as usize] = false;
            i += 1;
        }
        Clean { plain, forbidden }
    }
}

pub(crate) const PATH: Clean = Clean::new(b";");
const PATH_SEGMENT: Clean = Clean::new(b";.");
const TAG_KEY: Clean = Clean::new(b";!^=");

/// Appends `s` with whitespace, control characters and the separators of `clean` replaced
/// by `_`, one `_` per character.
pub(crate) fn write_clean(out: &mut Vec<u8>, s: &str, clean: &Clean) {
    if s.bytes().all(|b| clean.plain[b as usize]) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for c in s.chars() {
        let bad = c.is_whitespace()
            || c.is_control()
            || (c.is_ascii() && clean.forbidden.contains(&(c as u8)));
        if bad {
            out.push(b'_');
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Kind, Temporality};

    fn enc(m: &Metric) -> Result<String, Unsupported> {
        let mut out = Vec::new();
        GraphiteEncoder::default().encode(m, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    const TS: i64 = 1_700_000_000_123_456_789;

    #[test]
    fn gauge_and_counter() {
        let m = Metric::gauge("cpu.load1", Value::F64(0.25), TS);
        assert_eq!(enc(&m).unwrap(), "cpu.load1 0.25 1700000000\n");
        let m = Metric::gauge("g", Value::F64(5.0), TS);
        assert_eq!(enc(&m).unwrap(), "g 5.0 1700000000\n");
        let m = Metric::gauge("g", Value::I64(-5), TS);
        assert_eq!(enc(&m).unwrap(), "g -5 1700000000\n");
        let m = Metric::counter("c", Temporality::Delta, Value::U64(3), TS);
        assert_eq!(enc(&m).unwrap(), "c 3 1700000000\n");
        let m = Metric::counter("c", Temporality::Cumulative, Value::F64(1e20), TS);
        assert_eq!(enc(&m).unwrap(), "c 1e20 1700000000\n");
    }

    #[test]
    fn u64_max_is_exact() {
        let m = Metric::counter("c", Temporality::Cumulative, Value::U64(u64::MAX), TS);
        assert_eq!(enc(&m).unwrap(), "c 18446744073709551615 1700000000\n");
        let m = Metric::gauge("g", Value::I64(i64::MIN), TS);
        assert_eq!(enc(&m).unwrap(), "g -9223372036854775808 1700000000\n");
    }

    #[test]
    fn seconds_round_towards_the_past() {
        let m = Metric::gauge("g", Value::U64(1), -1);
        assert_eq!(enc(&m).unwrap(), "g 1 -1\n");
        let m = Metric::gauge("g", Value::U64(1), 999_999_999);
        assert_eq!(enc(&m).unwrap(), "g 1 0\n");
    }

    #[test]
    fn non_finite_scalars_are_unsupported() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let m = Metric::gauge("g", Value::F64(v), TS);
            assert_eq!(enc(&m), Err(Unsupported::NON_FINITE));
        }
        let mut m = Metric::gauge("g", Value::U64(1), TS);
        m.value = None;
        assert_eq!(enc(&m), Err(Unsupported::MISSING_VALUE));
        m.name.clear();
        assert_eq!(enc(&m), Err(Unsupported::EMPTY_NAME));
    }

    #[test]
    fn tags_are_sorted_and_cleaned() {
        let m = Metric::gauge("disk free", Value::U64(7), TS)
            .with_tag("mount", "/var log")
            .with_tag("a;b!c^d=e", "x;y=z~w")
            .with_tag("empty", "")
            .with_tag("tilde", "~home")
            .with_tag("host", "web\t1");
        assert_eq!(
            enc(&m).unwrap(),
            "disk_free;a_b_c_d_e=x_y=z~w;host=web_1;mount=/var_log;tilde=_home 7 1700000000\n"
        );
    }

    #[test]
    fn tags_folded_into_the_path_or_dropped() {
        let m = Metric::gauge("if.octets", Value::U64(7), TS)
            .with_tag("ifName", "xe-0/0/1.5")
            .with_tag("agent", "sw1")
            .with_tag("empty", "");
        let mut out = Vec::new();
        GraphiteEncoder::with_tags(TagMode::Path)
            .encode(&m, &mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "if.octets.sw1.xe-0/0/1_5 7 1700000000\n"
        );
        let mut out = Vec::new();
        GraphiteEncoder::with_tags(TagMode::Drop)
            .encode(&m, &mut out)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "if.octets 7 1700000000\n");
        assert_eq!(TagMode::parse("path"), Some(TagMode::Path));
        assert_eq!(TagMode::parse("folded"), None);
    }

    #[test]
    fn path_cleaning() {
        let m = Metric::gauge("a;b c\nd\u{a0}é", Value::U64(1), TS);
        assert_eq!(enc(&m).unwrap(), "a_b_c_d_é 1 1700000000\n");
    }

    fn summary() -> Metric {
        Metric {
            name: "db.query".into(),
            kind: Kind::Summary,
            temporality: Some(Temporality::Delta),
            quantiles: vec![(0.5, 13.0), (0.99, 80.0), (0.999, 80.2)],
            count: Some(4),
            sum: Some(200.0),
            min: Some(12.5),
            max: Some(80.2),
            ts: TS,
            ..Metric::default()
        }
        .with_tag("env", "prod")
    }

    #[test]
    fn summary_is_flattened() {
        assert_eq!(
            enc(&summary()).unwrap(),
            "db.query.count;env=prod 4 1700000000\n\
             db.query.sum;env=prod 200.0 1700000000\n\
             db.query.min;env=prod 12.5 1700000000\n\
             db.query.max;env=prod 80.2 1700000000\n\
             db.query.mean;env=prod 50.0 1700000000\n\
             db.query.p50;env=prod 13.0 1700000000\n\
             db.query.p99;env=prod 80.0 1700000000\n\
             db.query.p99_9;env=prod 80.2 1700000000\n"
        );
    }

    #[test]
    fn summary_skips_absent_and_non_finite_statistics() {
        let mut m = summary();
        m.tags.clear();
        m.count = Some(0);
        m.sum = None;
        m.min = Some(f64::NAN);
        m.max = None;
        m.quantiles = vec![(0.5, f64::NAN), (f64::NAN, 1.0)];
        assert_eq!(enc(&m).unwrap(), "db.query.count 0 1700000000\n");
        m.count = None;
        assert_eq!(enc(&m), Err(Unsupported::NOTHING_TO_WRITE));
    }

    fn histogram() -> Metric {
        Metric {
            name: "http.latency".into(),
            kind: Kind::Histogram,
            temporality: Some(Temporality::Cumulative),
            bounds: vec![-1.0, 0.5, 10.0],
            counts: vec![1, 2, 3, 4],
            sum: Some(42.5),
            ts: TS,
            ..Metric::default()
        }
        .with_tag("host", "a")
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        assert_eq!(
            enc(&histogram()).unwrap(),
            "http.latency.count;host=a 10 1700000000\n\
             http.latency.sum;host=a 42.5 1700000000\n\
             http.latency.le_neg1;host=a 1 1700000000\n\
             http.latency.le_0_5;host=a 3 1700000000\n\
             http.latency.le_10;host=a 6 1700000000\n\
             http.latency.le_inf;host=a 10 1700000000\n"
        );
    }

    #[test]
    fn histogram_edge_cases() {
        let mut m = histogram();
        m.tags.clear();
        m.sum = None;
        m.bounds = vec![1.0, f64::INFINITY];
        m.counts = vec![u64::MAX, 1, 0];
        assert_eq!(
            enc(&m).unwrap(),
            "http.latency.count 18446744073709551615 1700000000\n\
             http.latency.le_1 18446744073709551615 1700000000\n\
             http.latency.le_inf 18446744073709551615 1700000000\n"
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
                values: vec![1.0],
                ..Metric::default()
            };
            assert_eq!(enc(&m), Err(Unsupported::RAW_SET_OR_DISTRIBUTION));
        }
    }
}
