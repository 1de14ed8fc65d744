//! The `prometheus` source: a scrape of any endpoint serving the Prometheus text exposition
//! format 0.0.4 (node_exporter, exporters, `/metrics` of Go services), mapped to tlm metrics.
//!
//! `parse` takes the page's text (so tests feed fixture strings) and the scrape time, and
//! returns the metrics with the lines it skipped and why; `PromCollector` fetches the page
//! and tags the metrics with the scraped instance.
//!
//! # Mapping
//!
//! - `counter` → `counter`, cumulative, named **without** a trailing `_total`
//!   (`node_cpu_seconds_total` → `node_cpu_seconds`): the `prometheus` encoder of
//!   `tlm-publish` appends `_total` to cumulative counters, so a scrape published back to
//!   Prometheus keeps its name, and graphite/influx names do not carry Prometheus's suffix.
//!   A counter whose name is not `…_total` keeps its name. OpenMetrics-style families
//!   (`# TYPE foo counter` over samples `foo_total`) are recognised too.
//! - `gauge`, `untyped` (and samples of no `# TYPE` family) → `gauge`.
//! - `histogram` → one `histogram` per label set (the labels other than `le`), cumulative:
//!   `bounds` are the `le` values but `+Inf`, `counts` the per-bucket (not cumulative)
//!   counts, the `+Inf` bucket giving the last one; `count` is the `+Inf` bucket's total (so
//!   that it equals the sum of `counts`; a valid exposition's `_count` says the same), `sum`
//!   from `_sum`. A family without a `+Inf` bucket, with a repeated `le`, a falling
//!   cumulative count or a count that is not a whole number is skipped and reported.
//! - `summary` → one `summary` per label set (the labels other than `quantile`),
//!   cumulative: `quantiles`, `count` from `_count` (required, as the format contract
//!   requires a summary's count), `sum` from `_sum`.
//! - Labels become tags; `start_ts` stays absent (the exposition has no start time, and a
//!   counter that goes down is a restart, which `tlm-agg` treats as a reset).
//! - `ts` is the sample's own timestamp (milliseconds in the text) when it has one, else the
//!   scrape time. A histogram or summary takes the latest timestamp among its samples.
//! - Values keep integers exact: `18446744073709551615` is a `U64`, `-3` an `I64`; anything
//!   with a fraction or exponent (`1.2345e+06`, as Go clients write large values) is an F64,
//!   and `NaN`, `+Inf`, `-Inf` are accepted.
//!
//! Families may be interleaved and `# TYPE` lines may come after their samples: the text is
//! read whole before samples are classified. A bad line (bad syntax, an unknown escape in a
//! label value, a repeated label) is skipped and reported with its line number; the rest of
//! the page is still used. `# HELP` and other comments are ignored. A series repeated in one
//! page is not detected: both samples are emitted (for histograms and summaries the last
//! `_sum`/`_count` wins).

use std::collections::HashMap;
use std::time::Duration;

use super::http::{fetch, http_agent, server_of};
use crate::metric::{Kind, Metric, Temporality, Value};
use crate::Error;

/// node_exporter pages are a few hundred KiB; a big Go service's can reach several MiB.
const MAX_PAGE_BYTES: u64 = 64 * 1024 * 1024;

/// Asks for the text format, so that servers able to speak protobuf or OpenMetrics do not.
const ACCEPT: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

/// A skipped line: its 1-based number and the reason.
pub type BadLine = (usize, String);

/// The result of parsing one page.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// In the order their first sample appears in the text.
    pub metrics: Vec<Metric>,
    /// Skipped lines, by line number. A histogram or summary that cannot be built is
    /// reported once, at the line of its first sample.
    pub bad: Vec<BadLine>,
}

/// What a `# TYPE` line says a family is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

/// One sample line, its label values unescaped.
#[derive(Debug)]
struct Sample<'a> {
    line: usize,
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: Value,
    /// Unix nanoseconds, when the line carries a timestamp.
    ts: Option<i64>,
}

/// Parses a whole page. `scrape_ns` stamps the samples that carry no timestamp.
pub fn parse(text: &str, scrape_ns: i64) -> Parsed {
    let mut bad = Vec::new();
    let mut types: HashMap<&str, Type> = HashMap::new();
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim_matches([' ', '\t', '\r']);
        if line.is_empty() {
            continue;
        }
        let read = if let Some(comment) = line.strip_prefix('#') {
            parse_comment(comment).and_then(|t| note_type(&mut types, t))
        } else {
            parse_sample(line, line_no).map(|s| samples.push(s))
        };
        if let Err(why) = read {
            bad.push((line_no, why));
        }
    }
    let mut b = Builder::new(&types, scrape_ns);
    for s in samples {
        if let Err(why) = b.add(s.line, &s) {
            bad.push((s.line, why));
        }
    }
    let metrics = b.finish(&mut bad);
    bad.sort_by_key(|&(line, _)| line);
    Parsed { metrics, bad }
}

/// Records a `# TYPE`; a second one naming another type for the same family is bad.
fn note_type<'a>(
    types: &mut HashMap<&'a str, Type>,
    found: Option<(&'a str, Type)>,
) -> Result<(), String> {
    let Some((name, t)) = found else {
        return Ok(());
    };
    match types.insert(name, t) {
        Some(before) if before != t => {
            types.insert(name, before);
            Err(format!(
                "second `# TYPE` for `{name}`, the first one is kept"
            ))
        }
        _ => Ok(()),
    }
}

/// A comment line (after the `#`): `TYPE name type` gives a family, anything else
/// (`HELP`, free text) is ignored.
fn parse_comment(comment: &str) -> Result<Option<(&str, Type)>, String> {
    let mut words = comment.split_ascii_whitespace();
    if words.next() != Some("TYPE") {
        return Ok(None);
    }
    let name = words.next().ok_or("`# TYPE` without a metric name")?;
    if !is_metric_name(name) {
        return Err(format!("`# TYPE`: `{name}` is not a metric name"));
    }
    let t = match words.next().ok_or("`# TYPE` without a type")? {
        "counter" => Type::Counter,
        // Untyped samples are values of the moment, as good as gauges; `unknown` is
        // OpenMetrics's spelling.
        "gauge" | "untyped" | "unknown" => Type::Gauge,
        "histogram" => Type::Histogram,
        "summary" => Type::Summary,
        other => return Err(format!("`# TYPE`: unknown type `{other}`")),
    };
    match words.next() {
        Some(extra) => Err(format!("`# TYPE`: unexpected `{extra}` after the type")),
        None => Ok(Some((name, t))),
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// `name{label="value",…} value [timestamp_ms]`, blanks allowed between the parts.
fn parse_sample(line: &str, line_no: usize) -> Result<Sample<'_>, String> {
    let mut c = Cursor { s: line, at: 0 };
    let name = c.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    if !is_metric_name(name) {
        return Err(format!(
            "`{}` does not start with a metric name",
            clip(line)
        ));
    }
    c.skip_blanks();
    let labels = if c.eat(b'{') { c.labels()? } else { Vec::new() };
    let mut fields = c.rest().split_ascii_whitespace();
    let value = parse_value(fields.next().ok_or("no value")?)?;
    let ts = fields.next().map(parse_timestamp).transpose()?;
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected `{}` after the timestamp", clip(extra)));
    }
    Ok(Sample {
        line: line_no,
        name,
        labels,
        value,
        ts,
    })
}

/// A value, kept exact when written as an integer (no fraction, no exponent) that fits
/// u64 or i64; otherwise a double, `NaN`, `+Inf` and `-Inf` included.
fn parse_value(tok: &str) -> Result<Value, String> {
    if is_integer_literal(tok) {
        if let Ok(v) = tok.parse::<i128>() {
            return Ok(Value::from_i128(v));
        }
    }
    tok.parse::<f64>()
        .map(Value::F64)
        .map_err(|_| format!("value `{}` is not a number", clip(tok)))
}

fn is_integer_literal(tok: &str) -> bool {
    let digits = tok.strip_prefix(['+', '-']).unwrap_or(tok);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Milliseconds since the epoch, as nanoseconds.
fn parse_timestamp(tok: &str) -> Result<i64, String> {
    let ms: i64 = tok
        .parse()
        .ok()
        .filter(|_| is_integer_literal(tok))
        .ok_or_else(|| format!("timestamp `{}` is not whole milliseconds", clip(tok)))?;
    ms.checked_mul(1_000_000)
        .ok_or_else(|| format!("timestamp `{tok}` is out of range"))
}

/// At most 40 characters of `s`, for a reason that stays one short log line.
fn clip(s: &str) -> &str {
    s.char_indices().nth(40).map_or(s, |(i, _)| &s[..i])
}

/// A position in a sample line. Every delimiter is ASCII, so slicing at a byte found by
/// scanning bytes always lands on a character boundary.
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        self.s.get(self.at..).unwrap_or("")
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn skip_blanks(&mut self) {
        self.take_while(|b| b == b' ' || b == b'\t');
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let rest = self.rest();
        let n = rest.bytes().position(|b| !keep(b)).unwrap_or(rest.len());
        self.at += n;
        &rest[..n]
    }

    /// The label pairs after `{`, through the closing `}`; a trailing comma is allowed.
    fn labels(&mut self) -> Result<Vec<(&'a str, String)>, String> {
        let mut labels: Vec<(&'a str, String)> = Vec::new();
        loop {
            self.skip_blanks();
            if self.eat(b'}') {
                return Ok(labels);
            }
            let name = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
            if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
                return Err(format!("bad label name at `{}`", clip(self.rest())));
            }
            self.skip_blanks();
            if !self.eat(b'=') {
                return Err(format!("label `{name}` has no `=`"));
            }
            self.skip_blanks();
            if !self.eat(b'"') {
                return Err(format!("label `{name}`: the value is not quoted"));
            }
            let value = self.label_value(name)?;
            if labels.iter().any(|(n, _)| *n == name) {
                return Err(format!("label `{name}` appears twice"));
            }
            labels.push((name, value));
            self.skip_blanks();
            if !self.eat(b',') && self.peek() != Some(b'}') {
                return Err(format!("expected `,` or `}}` after label `{name}`"));
            }
        }
    }

    /// A label value after its opening quote, through the closing one, unescaping `\\`,
    /// `\"` and `\n`; any other escape is bad, as in the reference parser.
    fn label_value(&mut self, name: &str) -> Result<String, String> {
        let mut value = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '"' => {
                    self.at += i + 1;
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => {
                        return Err(format!("label `{name}`: unknown escape `\\{other}`"))
                    }
                    None => break,
                },
                ch => value.push(ch),
            }
        }
        Err(format!("label `{name}`: unterminated value"))
    }
}

/// What a sample is within its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Counter,
    Gauge,
    Bucket,
    Quantile,
    Sum,
    Count,
    /// A sample named like a histogram family itself, which is none of its parts.
    Stray,
}

/// The role of sample `name` and the name of the metric it goes into (the family name for
/// histogram and summary parts).
fn classify<'a>(name: &'a str, types: &HashMap<&str, Type>) -> (Role, Kind, &'a str) {
    match types.get(name) {
        Some(Type::Counter) => return (Role::Counter, Kind::Counter, name),
        Some(Type::Gauge) => return (Role::Gauge, Kind::Gauge, name),
        Some(Type::Summary) => return (Role::Quantile, Kind::Summary, name),
        Some(Type::Histogram) => return (Role::Stray, Kind::Histogram, name),
        None => {}
    }
    let parts = [
        ("_bucket", Role::Bucket),
        ("_sum", Role::Sum),
        ("_count", Role::Count),
        ("_total", Role::Counter),
    ];
    for (suffix, role) in parts {
        let Some(base) = name.strip_suffix(suffix) else {
            continue;
        };
        match (types.get(base), role) {
            (Some(Type::Histogram), Role::Bucket | Role::Sum | Role::Count) => {
                return (role, Kind::Histogram, base)
            }
            (Some(Type::Summary), Role::Sum | Role::Count) => return (role, Kind::Summary, base),
            (Some(Type::Counter), Role::Counter) => return (role, Kind::Counter, name),
            _ => {}
        }
    }
    (Role::Gauge, Kind::Gauge, name)
}

/// The samples of one histogram or summary with one label set.
#[derive(Debug)]
struct Group {
    kind: Kind,
    name: String,
    /// Line of the first sample, where a failure to build is reported.
    line: usize,
    labels: Vec<(String, String)>,
    /// `le` and the cumulative count.
    buckets: Vec<(f64, Value)>,
    quantiles: Vec<(f64, f64)>,
    sum: Option<f64>,
    count: Option<Value>,
    ts: Option<i64>,
}

/// A metric in output order: a built one (an index into `Builder::done`), or a group
/// finished at the end.
enum Slot {
    Done(usize),
    Group(usize),
}

/// Turns classified samples into metrics, collecting the parts of histograms and summaries.
struct Builder<'t> {
    types: &'t HashMap<&'t str, Type>,
    scrape_ns: i64,
    slots: Vec<Slot>,
    done: Vec<Metric>,
    groups: Vec<Group>,
    /// Group index by family, kind and the other labels.
    index: HashMap<String, usize>,
}

impl<'t> Builder<'t> {
    fn new(types: &'t HashMap<&'t str, Type>, scrape_ns: i64) -> Builder<'t> {
        Builder {
            types,
            scrape_ns,
            slots: Vec::new(),
            done: Vec::new(),
            groups: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn add(&mut self, line: usize, s: &Sample<'_>) -> Result<(), String> {
        let (role, kind, name) = classify(s.name, self.types);
        let ts = s.ts.unwrap_or(self.scrape_ns);
        let m = match (role, kind) {
            (Role::Counter, _) => {
                let short = s.name.strip_suffix("_total").filter(|b| !b.is_empty());
                Metric::counter(
                    short.unwrap_or(s.name),
                    Temporality::Cumulative,
                    s.value,
                    ts,
                )
            }
            (Role::Gauge, _) => Metric::gauge(name, s.value, ts),
            (Role::Stray, _) => {
                return Err(format!(
                    "`{name}` is a histogram: its samples are `_bucket`, `_sum` or `_count`"
                ))
            }
            _ => return self.add_part(line, s, role, kind, name),
        };
        self.slots.push(Slot::Done(self.done.len()));
        self.done.push(with_tags(m, &s.labels));
        Ok(())
    }

    /// Files a `_bucket`, quantile, `_sum` or `_count` sample under its group.
    fn add_part(
        &mut self,
        line: usize,
        s: &Sample<'_>,
        role: Role,
        kind: Kind,
        name: &str,
    ) -> Result<(), String> {
        let key_label = if kind == Kind::Histogram {
            "le"
        } else {
            "quantile"
        };
        let at = match role {
            Role::Bucket | Role::Quantile => {
                let (_, text) = s
                    .labels
                    .iter()
                    .find(|(n, _)| *n == key_label)
                    .ok_or_else(|| format!("`{}` has no `{key_label}` label", s.name))?;
                Some(parse_bound(key_label, text)?)
            }
            _ => None,
        };
        let g = self.group(line, kind, name, &s.labels, key_label);
        if let Some(t) = s.ts {
            g.ts = Some(g.ts.map_or(t, |before| before.max(t)));
        }
        match (role, at) {
            (Role::Bucket, Some(le)) => g.buckets.push((le, s.value)),
            (Role::Quantile, Some(q)) => g.quantiles.push((q, s.value.as_f64())),
            (Role::Sum, _) => g.sum = Some(s.value.as_f64()),
            _ => g.count = Some(s.value),
        }
        Ok(())
    }

    /// The group of family `name` with the labels but `skip`, made on first sight.
    fn group(
        &mut self,
        line: usize,
        kind: Kind,
        name: &str,
        labels: &[(&str, String)],
        skip: &str,
    ) -> &mut Group {
        let mut rest: Vec<(String, String)> = labels
            .iter()
            .filter(|(n, _)| *n != skip)
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        rest.sort();
        let mut key = format!("{name}\0{kind}");
        for (n, v) in &rest {
            key.push_str(&format!("\0{n}\0{v}"));
        }
        let next = self.groups.len();
        let i = *self.index.entry(key).or_insert(next);
        if i == next {
            self.slots.push(Slot::Group(i));
            self.groups.push(Group {
                kind,
                name: name.to_owned(),
                line,
                labels: rest,
                buckets: Vec::new(),
                quantiles: Vec::new(),
                sum: None,
                count: None,
                ts: None,
            });
        }
        &mut self.groups[i]
    }

    /// The metrics in order; groups that cannot be built are reported in `bad`.
    fn finish(self, bad: &mut Vec<BadLine>) -> Vec<Metric> {
        let Builder {
            slots,
            mut done,
            groups,
            scrape_ns,
            ..
        } = self;
        let mut groups: Vec<Option<Group>> = groups.into_iter().map(Some).collect();
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            let g = match slot {
                Slot::Done(i) => {
                    out.extend(done.get_mut(i).map(std::mem::take));
                    continue;
                }
                Slot::Group(i) => groups.get_mut(i).and_then(Option::take),
            };
            let Some(g) = g else { continue };
            match build_group(&g, scrape_ns) {
                Ok(m) => out.push(m),
                Err(why) => bad.push((g.line, why)),
            }
        }
        out
    }
}

/// `le` or `quantile`: a number, not NaN; a quantile within [0, 1].
fn parse_bound(label: &str, text: &str) -> Result<f64, String> {
    let v = text
        .parse::<f64>()
        .ok()
        .filter(|v| !v.is_nan())
        .ok_or_else(|| format!("`{label}=\"{}\"` is not a number", clip(text)))?;
    if label == "quantile" && !(0.0..=1.0).contains(&v) {
        return Err(format!("`quantile=\"{text}\"` is not within [0, 1]"));
    }
    Ok(v)
}

fn build_group(g: &Group, scrape_ns: i64) -> Result<Metric, String> {
    let mut m = Metric {
        name: g.name.clone(),
        kind: g.kind,
        temporality: Some(Temporality::Cumulative),
        sum: g.sum,
        ts: g.ts.unwrap_or(scrape_ns),
        ..Metric::default()
    };
    let what = || describe(g);
    if g.kind == Kind::Histogram {
        let (bounds, counts) = buckets(&g.buckets).map_err(|why| format!("{}: {why}", what()))?;
        m.count = Some(counts.iter().fold(0u64, |a, &c| a.saturating_add(c)));
        m.bounds = bounds;
        m.counts = counts;
    } else {
        let count = g.count.ok_or_else(|| format!("{}: no `_count`", what()))?;
        m.count = Some(whole(count).map_err(|why| format!("{}: `_count` {why}", what()))?);
        m.quantiles = g.quantiles.clone();
        m.quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let labels: Vec<(&str, String)> = g
        .labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    Ok(with_tags(m, &labels))
}

/// `family{labels}` for a reason.
fn describe(g: &Group) -> String {
    let labels: Vec<String> = g.labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{} `{}{{{}}}`", g.kind, g.name, labels.join(","))
}

/// Bounds and per-bucket counts from cumulative `(le, count)` buckets in any order.
fn buckets(cumulative: &[(f64, Value)]) -> Result<(Vec<f64>, Vec<u64>), String> {
    let mut sorted = cumulative.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    match sorted.last() {
        Some(&(le, _)) if le == f64::INFINITY => {}
        _ => return Err("no `le=\"+Inf\"` bucket".to_owned()),
    }
    let mut bounds = Vec::with_capacity(sorted.len().saturating_sub(1));
    let mut counts = Vec::with_capacity(sorted.len());
    let mut below = 0u64;
    for (i, &(le, v)) in sorted.iter().enumerate() {
        if i > 0 && sorted[i - 1].0 == le {
            return Err(format!("`le=\"{le}\"` appears twice"));
        }
        let total = whole(v).map_err(|why| format!("bucket `le=\"{le}\"` {why}"))?;
        let n = total
            .checked_sub(below)
            .ok_or_else(|| format!("bucket `le=\"{le}\"` counts fewer than the one below"))?;
        counts.push(n);
        below = total;
        if le != f64::INFINITY {
            bounds.push(le);
        }
    }
    Ok((bounds, counts))
}

/// A count: a non-negative whole number, also when written as a float (`1e+06`).
fn whole(v: Value) -> Result<u64, String> {
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    match v {
        Value::U64(n) => Ok(n),
        Value::F64(f) if f >= 0.0 && f.fract() == 0.0 && f < TWO_64 => Ok(f as u64),
        other => Err(format!("`{other}` is not a whole count")),
    }
}

fn with_tags(mut m: Metric, labels: &[(&str, String)]) -> Metric {
    for (n, v) in labels {
        m.tags.push(n, v);
    }
    m.tags.normalize();
    m
}

/// Scrapes one Prometheus endpoint, one call to `collect` per interval.
#[derive(Debug)]
pub struct PromCollector {
    url: String,
    /// `host:port` of the URL, the `instance` tag of samples that lack one.
    instance: String,
    agent: ureq::Agent,
    /// The lines the last collection skipped.
    bad: Vec<BadLine>,
}

impl PromCollector {
    /// `url` is the metrics page (`http://127.0.0.1:9100/metrics`); each request gives up
    /// after `timeout`, so a hung exporter cannot stall the collection loop.
    pub fn new(url: &str, timeout: Duration) -> Result<PromCollector, Error> {
        Ok(PromCollector {
            instance: server_of(url)?,
            url: url.to_owned(),
            agent: http_agent(timeout),
            bad: Vec::new(),
        })
    }

    /// The `instance` tag given to samples without one: `host:port` of the URL.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The lines the last `collect` skipped, with reasons, for the caller to log.
    pub fn bad_lines(&self) -> &[BadLine] {
        &self.bad
    }

    /// Appends one scrape's metrics, stamped with their own timestamps or `now_ns`, each
    /// tagged `instance=<host:port>` unless its sample has an `instance` label (a
    /// federation or pushgateway page names its own instances). Bad lines are skipped and
    /// kept for `bad_lines`. A failed fetch, or a page of nothing but bad lines (an HTML
    /// error page), is `Error::unavailable` and leaves `out` unchanged.
    pub fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<(), Error> {
        self.bad.clear();
        let text = fetch(&self.agent, &self.url, ACCEPT, MAX_PAGE_BYTES)?;
        let Parsed { mut metrics, bad } = parse(&text, now_ns);
        if metrics.is_empty() {
            if let Some((line, why)) = bad.first() {
                let n = bad.len();
                return Err(Error::unavailable(format!(
                    "{}: not a Prometheus text page ({n} bad lines; line {line}: {why})",
                    self.url
                )));
            }
        }
        for m in &mut metrics {
            if m.tags.get("instance").is_none() {
                m.tags.insert("instance", &self.instance);
            }
        }
        out.append(&mut metrics);
        self.bad = bad;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Exit;

    const SCRAPE: i64 = 1_767_225_600_000_000_000;

    /// A slice of a real node_exporter page, plus a Prometheus server histogram.
    const NODE: &str = r#"# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.4541e-05
go_gc_duration_seconds{quantile="0.25"} 3.3012e-05
go_gc_duration_seconds{quantile="0.5"} 4.1183e-05
go_gc_duration_seconds{quantile="0.75"} 5.8003e-05
go_gc_duration_seconds{quantile="1"} 0.000411872
go_gc_duration_seconds_sum 0.0171233
go_gc_duration_seconds_count 312
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 12345.67
node_cpu_seconds_total{cpu="0",mode="user"} 1.2345e+06
node_cpu_seconds_total{cpu="1",mode="idle"} 12001
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.42
# HELP node_network_receive_bytes_total Network device statistic receive_bytes.
# TYPE node_network_receive_bytes_total counter
node_network_receive_bytes_total{device="eth0"} 18446744073709551615
# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 4.1183232e+10
# HELP prometheus_http_request_duration_seconds Histogram of latencies for HTTP requests.
# TYPE prometheus_http_request_duration_seconds histogram
prometheus_http_request_duration_seconds_bucket{handler="/metrics",le="0.1"} 1002
prometheus_http_request_duration_seconds_bucket{handler="/metrics",le="0.2"} 1010
prometheus_http_request_duration_seconds_bucket{handler="/metrics",le="0.4"} 1010
prometheus_http_request_duration_seconds_bucket{handler="/metrics",le="1"} 1011
prometheus_http_request_duration_seconds_bucket{handler="/metrics",le="+Inf"} 1011
prometheus_http_request_duration_seconds_sum{handler="/metrics"} 12.75
prometheus_http_request_duration_seconds_count{handler="/metrics"} 1011
# HELP node_scrape_collector_success node_exporter: Whether a collector succeeded.
node_scrape_collector_success{collector="cpu"} 1
"#;

    fn find<'a>(p: &'a Parsed, name: &str, tags: &[(&str, &str)]) -> &'a Metric {
        p.metrics
            .iter()
            .find(|m| m.name == name && tags.iter().all(|&(k, v)| m.tags.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} {tags:?} in {:#?}", p.metrics))
    }

    #[test]
    fn maps_a_node_exporter_page() {
        let p = parse(NODE, SCRAPE);
        assert_eq!(p.bad, []);
        let names: Vec<_> = p.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "go_gc_duration_seconds",
                "node_cpu_seconds",
                "node_cpu_seconds",
                "node_cpu_seconds",
                "node_load1",
                "node_network_receive_bytes",
                "node_filesystem_avail_bytes",
                "prometheus_http_request_duration_seconds",
                "node_scrape_collector_success",
            ]
        );
        assert!(p
            .metrics
            .iter()
            .all(|m| m.ts == SCRAPE && m.start_ts.is_none() && m.validate().is_ok()));

        let idle = find(&p, "node_cpu_seconds", &[("cpu", "0"), ("mode", "idle")]);
        assert_eq!(
            (idle.kind, idle.temporality),
            (Kind::Counter, Some(Temporality::Cumulative))
        );
        assert_eq!(idle.value, Some(Value::F64(12345.67)));
        let user = find(&p, "node_cpu_seconds", &[("mode", "user")]);
        assert_eq!(user.value, Some(Value::F64(1_234_500.0)));
        let cpu1 = find(&p, "node_cpu_seconds", &[("cpu", "1")]);
        assert_eq!(cpu1.value, Some(Value::U64(12001)));
        let rx = find(&p, "node_network_receive_bytes", &[("device", "eth0")]);
        assert_eq!(rx.value, Some(Value::U64(u64::MAX)));
        let load = find(&p, "node_load1", &[]);
        assert_eq!(
            (load.kind, load.value),
            (Kind::Gauge, Some(Value::F64(0.42)))
        );
        assert!(load.tags.is_empty());
        let fs = find(&p, "node_filesystem_avail_bytes", &[("mountpoint", "/")]);
        assert_eq!(fs.tags.len(), 3);
        let untyped = find(&p, "node_scrape_collector_success", &[("collector", "cpu")]);
        assert_eq!(
            (untyped.kind, untyped.value),
            (Kind::Gauge, Some(Value::U64(1)))
        );
    }

    #[test]
    fn histogram_buckets_become_per_bucket_counts() {
        let p = parse(NODE, SCRAPE);
        let h = find(&p, "prometheus_http_request_duration_seconds", &[]);
        assert_eq!(h.kind, Kind::Histogram);
        assert_eq!(h.temporality, Some(Temporality::Cumulative));
        assert_eq!(h.bounds, [0.1, 0.2, 0.4, 1.0]);
        assert_eq!(h.counts, [1002, 8, 0, 1, 0]);
        assert_eq!((h.count, h.sum), (Some(1011), Some(12.75)));
        assert_eq!(h.tags.iter().collect::<Vec<_>>(), [("handler", "/metrics")]);
    }

    #[test]
    fn summary_has_quantiles_count_and_sum() {
        let p = parse(NODE, SCRAPE);
        let s = find(&p, "go_gc_duration_seconds", &[]);
        assert_eq!(
            (s.kind, s.temporality),
            (Kind::Summary, Some(Temporality::Cumulative))
        );
        assert_eq!(
            s.quantiles,
            [
                (0.0, 2.4541e-05),
                (0.25, 3.3012e-05),
                (0.5, 4.1183e-05),
                (0.75, 5.8003e-05),
                (1.0, 0.000411872)
            ]
        );
        assert_eq!((s.count, s.sum), (Some(312), Some(0.0171233)));
        assert!(s.tags.is_empty());
    }

    #[test]
    fn interleaved_and_out_of_order_lines_are_grouped() {
        let text = r#"
rpc_seconds_count{svc="b"} 3 1700000000500
rpc_seconds_bucket{svc="a",le="+Inf"} 5
rpc_seconds_bucket{svc="b",le="+Inf"} 3 1700000000000
x_total 4
rpc_seconds_bucket{svc="a",le="0.5"} 2
rpc_seconds_sum{svc="a"} 1.5
rpc_seconds_bucket{svc="b",le="0.5"} 3
# TYPE rpc_seconds histogram
# TYPE x_total counter
"#;
        let p = parse(text, SCRAPE);
        assert_eq!(p.bad, []);
        let names: Vec<_> = p.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["rpc_seconds", "rpc_seconds", "x"]);
        let b = find(&p, "rpc_seconds", &[("svc", "b")]);
        assert_eq!(
            (b.bounds.as_slice(), b.counts.as_slice()),
            (&[0.5][..], &[3, 0][..])
        );
        assert_eq!(b.ts, 1_700_000_000_500_000_000, "latest sample timestamp");
        assert_eq!(b.sum, None);
        let a = find(&p, "rpc_seconds", &[("svc", "a")]);
        assert_eq!(
            (a.counts.as_slice(), a.count, a.sum),
            (&[2, 3][..], Some(5), Some(1.5))
        );
        assert_eq!(a.ts, SCRAPE);
        assert!(p.metrics.iter().all(|m| m.validate().is_ok()));
    }

    #[test]
    fn broken_histograms_are_reported_once_and_skipped() {
        let text = r#"# TYPE h histogram
h_bucket{le="1"} 2
h_bucket{le="2"} 3
h_sum 4
h_count 3
# TYPE d histogram
d_bucket{le="1"} 5
d_bucket{le="+Inf"} 4
# TYPE e histogram
e_bucket{le="1"} 1
e_bucket{le="1.0"} 1
e_bucket{le="+Inf"} 1.5
e_bucket{le="nope"} 1
e_bucket 1
e 7
g 1
"#;
        let p = parse(text, SCRAPE);
        let names: Vec<_> = p.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["g"]);
        let lines: Vec<_> = p.bad.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 7, 10, 13, 14, 15]);
        assert!(
            p.bad[0]
                .1
                .contains("histogram `h{}`: no `le=\"+Inf\"` bucket"),
            "{:?}",
            p.bad
        );
        assert!(
            p.bad[1].1.contains("fewer than the one below"),
            "{:?}",
            p.bad
        );
        assert!(p.bad[2].1.contains("appears twice"), "{:?}", p.bad);
        assert!(
            p.bad[3].1.contains("`le=\"nope\"` is not a number"),
            "{:?}",
            p.bad
        );
        assert!(p.bad[4].1.contains("no `le` label"), "{:?}", p.bad);
        assert!(p.bad[5].1.contains("is a histogram"), "{:?}", p.bad);
    }

    #[test]
    fn float_bucket_counts_must_be_whole() {
        let text = "# TYPE h histogram\nh_bucket{le=\"1\"} 1e+06\nh_bucket{le=\"+Inf\"} 1.5e+06\n\
                    # TYPE f histogram\nf_bucket{le=\"+Inf\"} 2.5\n";
        let p = parse(text, SCRAPE);
        assert_eq!(p.metrics.len(), 1);
        assert_eq!(p.metrics[0].counts, [1_000_000, 500_000]);
        assert_eq!(p.bad.len(), 1);
        assert!(
            p.bad[0].1.contains("`2.5` is not a whole count"),
            "{:?}",
            p.bad
        );
    }

    #[test]
    fn summary_without_count_is_bad() {
        let text = "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns{quantile=\"1.5\"} 1\ns_count{x=\"y\"} -1\n";
        let p = parse(text, SCRAPE);
        assert!(p.metrics.is_empty());
        let reasons: Vec<_> = p.bad.iter().map(|(l, r)| (*l, r.as_str())).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert_eq!(reasons[0], (2, "summary `s{}`: no `_count`"));
        assert!(reasons[1].1.contains("[0, 1]"));
        assert!(
            reasons[2].1.contains("`_count` `-1` is not a whole count"),
            "{reasons:?}"
        );
    }

    #[test]
    fn label_escapes_are_undone() {
        let text = r#"m{path="C:\\dir",q="say \"hi\"",nl="a\nb",utf="é✓",empty=""} 1"#;
        let p = parse(text, SCRAPE);
        assert_eq!(p.bad, []);
        let m = &p.metrics[0];
        assert_eq!(m.tags.get("path"), Some(r"C:\dir"));
        assert_eq!(m.tags.get("q"), Some(r#"say "hi""#));
        assert_eq!(m.tags.get("nl"), Some("a\nb"));
        assert_eq!(m.tags.get("utf"), Some("é✓"));
        assert_eq!(m.tags.get("empty"), Some(""));
    }

    #[test]
    fn special_and_exact_values() {
        let text = "a NaN\nb +Inf\nc -Inf\nd -42\ne 1e3\nf 18446744073709551616\ng -9223372036854775808\nh 5.0\ni +7\nj Inf\n";
        let p = parse(text, SCRAPE);
        assert_eq!(p.bad, []);
        let v: Vec<_> = p.metrics.iter().filter_map(|m| m.value).collect();
        assert!(matches!(v[0], Value::F64(x) if x.is_nan()));
        assert_eq!(
            v[1..],
            [
                Value::F64(f64::INFINITY),
                Value::F64(f64::NEG_INFINITY),
                Value::I64(-42),
                Value::F64(1000.0),
                Value::F64(18446744073709551616.0),
                Value::I64(i64::MIN),
                Value::F64(5.0),
                Value::U64(7),
                Value::F64(f64::INFINITY),
            ]
        );
    }

    #[test]
    fn timestamps_are_milliseconds() {
        let p = parse("a 1 1700000000123\nb 2\nc 3 -1000\n", SCRAPE);
        let ts: Vec<_> = p.metrics.iter().map(|m| m.ts).collect();
        assert_eq!(ts, [1_700_000_000_123_000_000, SCRAPE, -1_000_000_000]);
        let p = parse("a 1 1.5\nb 1 9223372036854775807\nc 1 2 3\n", SCRAPE);
        assert!(p.metrics.is_empty());
        let reasons: Vec<_> = p.bad.iter().map(|(_, r)| r.as_str()).collect();
        assert!(reasons[0].contains("not whole milliseconds"), "{reasons:?}");
        assert!(reasons[1].contains("out of range"), "{reasons:?}");
        assert!(reasons[2].contains("unexpected `3`"), "{reasons:?}");
    }

    #[test]
    fn bad_lines_are_skipped_with_reasons() {
        let text = "ok 1\n\
                    {a=\"b\"} 1\n\
                    m{a=\"b} 1\n\
                    m{a=\"\\t\"} 1\n\
                    m{a=\"1\",a=\"2\"} 1\n\
                    m{1a=\"x\"} 1\n\
                    m{a \"x\"} 1\n\
                    m{a=x} 1\n\
                    m{a=\"x\" b=\"y\"} 1\n\
                    m\n\
                    m abc\n\
                    # TYPE m bogus\n\
                    # TYPE\n\
                    # TYPE 9m gauge\n\
                    # TYPE m gauge extra\n\
                    # TYPE ok gauge\n\
                    # TYPE ok counter\n\
                    m{ a = \"x\" , } 2\n";
        let p = parse(text, SCRAPE);
        let reasons: Vec<_> = p.bad.iter().map(|(l, r)| (*l, r.as_str())).collect();
        let want = [
            (2, "does not start with a metric name"),
            (3, "unterminated value"),
            (4, "unknown escape `\\t`"),
            (5, "appears twice"),
            (6, "bad label name"),
            (7, "has no `=`"),
            (8, "not quoted"),
            (9, "expected `,` or `}` after label `a`"),
            (10, "no value"),
            (11, "`abc` is not a number"),
            (12, "unknown type `bogus`"),
            (13, "without a metric name"),
            (14, "`9m` is not a metric name"),
            (15, "unexpected `extra`"),
            (17, "second `# TYPE` for `ok`"),
        ];
        assert_eq!(reasons.len(), want.len(), "{reasons:#?}");
        for ((line, reason), (want_line, want_reason)) in reasons.iter().zip(want) {
            assert_eq!(*line, want_line);
            assert!(reason.contains(want_reason), "line {line}: {reason}");
        }
        let names: Vec<_> = p
            .metrics
            .iter()
            .map(|m| (m.name.as_str(), m.kind))
            .collect();
        assert_eq!(names, [("ok", Kind::Gauge), ("m", Kind::Gauge)]);
        assert_eq!(p.metrics[1].tags.get("a"), Some("x"));
    }

    #[test]
    fn counter_names_lose_total_only_as_a_suffix() {
        let text = "# TYPE a_total counter\na_total 1\n# TYPE b counter\nb 2\n\
                    # TYPE c counter\nc_total 3\n# TYPE _total counter\n_total 4\nd_total 5\n";
        let p = parse(text, SCRAPE);
        let got: Vec<_> = p
            .metrics
            .iter()
            .map(|m| (m.name.as_str(), m.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("a", Kind::Counter),
                ("b", Kind::Counter),
                ("c", Kind::Counter),
                ("_total", Kind::Counter),
                ("d_total", Kind::Gauge),
            ]
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        let odd = [
            "",
            "#",
            "{",
            "}",
            "m{",
            "m{a",
            "m{a=",
            "m{a=\"",
            "m{a=\"\\",
            "m{a=\"x\"",
            "m{}",
            "m{} ",
            "m 1 ",
            "é 1",
            "m{é=\"x\"} 1",
            "\u{0} 1",
            "m\u{0} 1",
            "m{a=\"\u{0}\"} 1",
            "# TYPE m histogram\nm_bucket{le=\"+Inf\"} 18446744073709551615\nm_bucket{le=\"1\"} 1",
            "# TYPE m summary\nm_count 1e300",
            "m -",
            "m +",
            "m 1 +",
        ];
        for text in odd {
            let p = parse(text, 0);
            assert!(p.metrics.iter().all(|m| m.validate().is_ok()), "{text:?}");
        }
        // Every prefix of a real page.
        for end in (0..NODE.len()).filter(|&i| NODE.is_char_boundary(i)) {
            let _ = parse(&NODE[..end], 0);
        }
    }

    /// Serves `body` to one request on a local port; returns the URL.
    fn serve_once(status: &str, body: &str) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let h = std::thread::spawn(move || {
            let Ok((mut conn, _)) = listener.accept() else {
                return String::new();
            };
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            let _ = conn.write_all(answer.as_bytes());
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (url, h)
    }

    #[test]
    fn collects_with_instance_unless_the_sample_has_one() {
        let page = "up{instance=\"db:9104\"} 1\nnode_load1 0.5\nbad line\n";
        let (url, h) = serve_once("200 OK", page);
        let mut c = PromCollector::new(&url, Duration::from_secs(5)).unwrap();
        let mut out = Vec::new();
        c.collect(SCRAPE, &mut out).unwrap();
        let request = h.join().unwrap();
        assert!(
            request
                .to_ascii_lowercase()
                .contains("accept: text/plain;version=0.0.4"),
            "{request}"
        );
        let instances: Vec<_> = out.iter().map(|m| m.tags.get("instance")).collect();
        assert_eq!(instances, [Some("db:9104"), Some(c.instance())]);
        assert_eq!(c.bad_lines().len(), 1);
        assert_eq!(c.bad_lines()[0].0, 3);
    }

    #[test]
    fn error_pages_are_unavailable() {
        let (url, h) = serve_once("503 Service Unavailable", "busy");
        let mut c = PromCollector::new(&url, Duration::from_secs(5)).unwrap();
        let mut out = Vec::new();
        let e = c.collect(SCRAPE, &mut out).unwrap_err();
        h.join().unwrap();
        assert_eq!(e.exit, Exit::Unavailable);
        assert!(e.msg.contains("503"), "{}", e.msg);

        let (url, h) = serve_once("200 OK", "<html>\n<body>hello</body>\n</html>\n");
        let mut c = PromCollector::new(&url, Duration::from_secs(5)).unwrap();
        let e = c.collect(SCRAPE, &mut out).unwrap_err();
        h.join().unwrap();
        assert!(
            e.msg.contains("not a Prometheus text page (3 bad lines"),
            "{}",
            e.msg
        );
        assert!(out.is_empty());

        let (url, h) = serve_once("200 OK", "");
        let mut c = PromCollector::new(&url, Duration::from_secs(5)).unwrap();
        c.collect(SCRAPE, &mut out).unwrap();
        h.join().unwrap();
        assert!(out.is_empty());
        assert!(PromCollector::new("gopher://x/", Duration::from_secs(1)).is_err());
    }
}
