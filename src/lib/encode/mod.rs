//! Encoders from the tlm metric model to the formats of other systems: NDJSON (our own, also
//! framed as one JSON array), Graphite plaintext and pickle, InfluxDB line protocol,
//! Prometheus text exposition 0.0.4 and remote_write, statsd, CSV and OpenTSDB.
//!
//! An encoder appends the lines for one `Metric` to a caller-owned buffer, the batch *body*.
//! It keeps its scratch buffers between calls, so after a warm-up encoding does not allocate
//! beyond the growth of `out`. When a metric cannot be expressed in a format the encoder says
//! why and leaves `out` exactly as it was, so the caller can count, log and carry on. A full
//! body is then *sealed* into the payload sent as one unit: as it is for line formats, framed
//! or compressed for the others.

pub mod csv;
mod decimal;
mod flatten;
pub mod graphite;
pub mod influx;
pub mod opentsdb;
pub mod pickle;
pub mod prometheus;
pub mod remote_write;
pub mod statsd;

use crate::metric::Metric;
use std::fmt;
use std::str::FromStr;

pub use csv::CsvEncoder;
pub use graphite::GraphiteEncoder;
pub use influx::InfluxEncoder;
pub use opentsdb::{OpenTsdbJsonEncoder, OpenTsdbTelnetEncoder};
pub use pickle::PickleEncoder;
pub use prometheus::PrometheusEncoder;
pub use remote_write::RemoteWriteEncoder;
pub use statsd::{StatsdEncoder, TimerSuffix};

/// An output format for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    /// tlm metric v1, one JSON object per line
    #[default]
    Ndjson,
    /// Graphite plaintext protocol (carbon), tagged series
    Graphite,
    /// InfluxDB line protocol, nanosecond timestamps
    Influx,
    /// Prometheus text exposition format 0.0.4
    Prometheus,
    /// statsd lines (DogStatsD tags)
    Statsd,
    /// CSV with a header row: ts,name,kind,value,tags
    Csv,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Ndjson,
        Format::Graphite,
        Format::Influx,
        Format::Prometheus,
        Format::Statsd,
        Format::Csv,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Graphite => "graphite",
            Format::Influx => "influx",
            Format::Prometheus => "prometheus",
            Format::Statsd => "statsd",
            Format::Csv => "csv",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Format::parse(s).ok_or_else(|| {
            format!(
                "unknown format `{s}` (expected ndjson, graphite, influx, prometheus, statsd or csv)"
            )
        })
    }
}

/// Why a metric could not be written in a format (the caller counts and logs it, rate-limited).
///
/// Reasons are fixed strings so callers can count per reason without allocating; the
/// associated constants name every reason the encoders in this module return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Unsupported {
    pub reason: &'static str,
}

impl Unsupported {
    pub const RAW_SET_OR_DISTRIBUTION: Unsupported = Unsupported {
        reason: "raw sets and distributions need aggregation first (tlm-agg)",
    };
    pub const NON_FINITE: Unsupported = Unsupported {
        reason: "non-finite value",
    };
    pub const MISSING_VALUE: Unsupported = Unsupported {
        reason: "counter or gauge without a value",
    };
    pub const EMPTY_NAME: Unsupported = Unsupported {
        reason: "empty metric name",
    };
    pub const BAD_HISTOGRAM: Unsupported = Unsupported {
        reason: "histogram needs `counts` with one more entry than `bounds`",
    };
    pub const NAN_BOUND: Unsupported = Unsupported {
        reason: "histogram bound is NaN",
    };
    pub const NOTHING_TO_WRITE: Unsupported = Unsupported {
        reason: "no finite values to write",
    };
    pub const DELTA_COUNTER: Unsupported = Unsupported {
        reason: "delta counters need `tlm-agg --cumulative` before Prometheus",
    };
    pub const DELTA_HISTOGRAM: Unsupported = Unsupported {
        reason: "delta histograms need `tlm-agg --cumulative` before Prometheus",
    };
    pub const NO_TEMPORALITY: Unsupported = Unsupported {
        reason: "counter or histogram without temporality",
    };
    pub const LABEL_CLASH: Unsupported = Unsupported {
        reason: "two tags map to the same Prometheus label name",
    };
    pub const RESERVED_LABEL: Unsupported = Unsupported {
        reason: "tag `le` (histogram) or `quantile` (summary) clashes with the Prometheus label",
    };
    pub const STATSD_AGGREGATE: Unsupported = Unsupported {
        reason: "statsd carries raw samples, not aggregates: send distributions before tlm-agg",
    };
    pub const OPENTSDB_NO_TAGS: Unsupported = Unsupported {
        reason: "OpenTSDB needs at least one tag",
    };
    pub const OPENTSDB_TAG_CLASH: Unsupported = Unsupported {
        reason: "two tags map to the same OpenTSDB tag key",
    };
    pub const PICKLE_TOO_LARGE: Unsupported = Unsupported {
        reason: "metric path too long for one carbon pickle frame (1 MiB)",
    };
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for Unsupported {}

/// Turns metrics into lines of one output format.
pub trait Encoder {
    /// Appends the lines for `m` to `out`. On `Err`, `out` is left as it was.
    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported>;

    /// Appends whatever the format needs after the last metric of a stream.
    fn finish(&mut self, _out: &mut Vec<u8>) {}

    /// Turns the body built by `encode` calls since the previous `seal` into the payload sent
    /// as one unit (framing, compression); line formats send the body as it is.
    fn seal(&mut self, body: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(body)
    }

    /// The HTTP `Content-Type` of a sealed payload.
    fn content_type(&self) -> &'static str {
        "text/plain; charset=utf-8"
    }

    /// Whether `encode`'s output depends on the metric alone (no state carried from one
    /// metric to the next), so that metrics can be encoded on any thread by any instance
    /// and the bytes concatenated in order.
    fn stateless(&self) -> bool {
        false
    }
}

/// The encoder for `format`, ready for a stream of metrics.
pub fn encoder(format: Format) -> Box<dyn Encoder + Send> {
    match format {
        Format::Ndjson => Box::new(NdjsonEncoder),
        Format::Graphite => Box::new(GraphiteEncoder::default()),
        Format::Influx => Box::new(InfluxEncoder::default()),
        Format::Prometheus => Box::new(PrometheusEncoder::default()),
        Format::Statsd => Box::new(StatsdEncoder::default()),
        Format::Csv => Box::new(CsvEncoder::default()),
    }
}

/// tlm metric v1 itself; every valid metric is expressible.
#[derive(Clone, Copy, Debug, Default)]
pub struct NdjsonEncoder;

impl Encoder for NdjsonEncoder {
    fn stateless(&self) -> bool {
        true
    }

    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        crate::ndjson::encode::encode(m, out);
        Ok(())
    }

    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }
}

/// tlm metric v1 as one JSON array per payload, for receivers that take a JSON document
/// rather than a stream: the body holds NDJSON lines and `seal` joins them with commas.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonArrayEncoder;

impl Encoder for JsonArrayEncoder {
    fn stateless(&self) -> bool {
        true
    }

    fn encode(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<(), Unsupported> {
        NdjsonEncoder.encode(m, out)
    }

    fn seal(&mut self, body: &[u8], out: &mut Vec<u8>) {
        out.push(b'[');
        // JSON text never holds a raw newline, so newlines are exactly the line ends.
        let lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        for (i, line) in lines.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(line);
        }
        out.push(b']');
    }

    fn content_type(&self) -> &'static str {
        "application/json"
    }
}

/// Runs `write`, undoing any partial output when it fails, so `Encoder::encode` keeps its
/// all-or-nothing promise even if a problem is found midway through a multi-line metric.
fn all_or_nothing(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), Unsupported>,
) -> Result<(), Unsupported> {
    let start = out.len();
    let r = write(out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// `sum / count` when both say something.
fn mean(m: &Metric) -> Option<f64> {
    match (m.count, m.sum) {
        (Some(c), Some(s)) if c > 0 => Some(s / c as f64),
        _ => None,
    }
}

/// Checks the histogram layout every encoder relies on and returns the total count.
fn histogram_total(m: &Metric) -> Result<u64, Unsupported> {
    if m.counts.len() != m.bounds.len() + 1 {
        return Err(Unsupported::BAD_HISTOGRAM);
    }
    if m.bounds.iter().any(|b| b.is_nan()) {
        return Err(Unsupported::NAN_BOUND);
    }
    Ok(m.counts.iter().fold(0u64, |a, &c| a.saturating_add(c)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Kind, Temporality, Value};

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
            assert_eq!(f.to_string(), f.as_str());
            let pv = clap::ValueEnum::to_possible_value(&f).unwrap();
            assert_eq!(pv.get_name(), f.as_str());
        }
        assert_eq!(Format::parse("json"), None);
        assert!("json".parse::<Format>().unwrap_err().contains("`json`"));
    }

    #[test]
    fn ndjson_encoder_writes_the_contract_line() {
        let m = Metric::gauge("x", Value::U64(1), 5);
        let mut out = Vec::new();
        encoder(Format::Ndjson).encode(&m, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"name\":\"x\",\"kind\":\"gauge\",\"value\":1,\"ts\":5}\n"
        );
    }

    #[test]
    fn every_encoder_leaves_out_untouched_on_error() {
        let set = Metric {
            name: "s".into(),
            kind: Kind::Set,
            ts: 1,
            ..Metric::default()
        };
        let delta = Metric::counter("c", Temporality::Delta, Value::U64(1), 1);
        for f in [Format::Graphite, Format::Influx, Format::Prometheus] {
            let mut enc = encoder(f);
            let mut out = b"keep\n".to_vec();
            assert_eq!(
                enc.encode(&set, &mut out),
                Err(Unsupported::RAW_SET_OR_DISTRIBUTION)
            );
            assert_eq!(out, b"keep\n");
            let _ = enc.encode(&delta, &mut out);
            enc.finish(&mut out);
            assert!(out.starts_with(b"keep\n"));
        }
    }

    #[test]
    fn new_stdout_formats() {
        let m = Metric::gauge("a b", Value::I64(-2), 5).with_tag("k", "v");
        let mut out = Vec::new();
        let mut statsd = encoder(Format::Statsd);
        statsd.encode(&m, &mut out).unwrap();
        assert_eq!(out, b"a_b:0|g|#k:v\na_b:-2|g|#k:v\n");
        out.clear();
        let mut csv = encoder(Format::Csv);
        csv.encode(&m, &mut out).unwrap();
        assert_eq!(out, b"ts,name,kind,value,tags\n5,a b,gauge,-2,k=v\n");
        assert!("x"
            .parse::<Format>()
            .unwrap_err()
            .contains("prometheus, statsd or csv"));
    }

    #[test]
    fn line_formats_seal_the_body_as_it_is() {
        for f in Format::ALL {
            let mut enc = encoder(f);
            let mut out = b"head".to_vec();
            enc.seal(b"a 1 2\n", &mut out);
            assert_eq!(out, b"heada 1 2\n");
        }
        assert_eq!(
            encoder(Format::Graphite).content_type(),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            encoder(Format::Ndjson).content_type(),
            "application/x-ndjson"
        );
    }

    #[test]
    fn json_array_joins_the_lines() {
        let mut e = JsonArrayEncoder;
        let mut body = Vec::new();
        e.encode(&Metric::gauge("x", Value::U64(1), 5), &mut body)
            .unwrap();
        e.encode(&Metric::gauge("y", Value::F64(0.5), 6), &mut body)
            .unwrap();
        let mut out = Vec::new();
        e.seal(&body, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[{\"name\":\"x\",\"kind\":\"gauge\",\"value\":1,\"ts\":5},\
             {\"name\":\"y\",\"kind\":\"gauge\",\"value\":0.5,\"ts\":6}]"
        );
        let mut out = Vec::new();
        e.seal(b"", &mut out);
        assert_eq!(out, b"[]");
        assert_eq!(e.content_type(), "application/json");
    }

    #[test]
    fn unsupported_displays_its_reason() {
        assert_eq!(Unsupported::NON_FINITE.to_string(), "non-finite value");
    }
}
