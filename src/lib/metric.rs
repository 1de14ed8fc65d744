//! The tlm metric v1 model: one series, one point.
//!
//! Every string-bearing part keeps its text in one growable buffer so a `Metric` can be
//! cleared and refilled line after line without touching the allocator (see `Metric::clear`).

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
        Kind::ALL.into_iter().find(|k| k.as_str().as_bytes() == s)
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TagSpan {
    key_start: u32,
    key_end: u32,
    value_end: u32,
}

/// Tags: string keys and values, kept sorted by key with unique keys once `normalize` ran.
#[derive(Clone, Debug, Default)]
pub struct Tags {
    buf: String,
    spans: Vec<TagSpan>,
}

impl Tags {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Appends without sorting; call `normalize` after a run of pushes.
    pub fn push(&mut self, key: &str, value: &str) {
        let key_start = self.buf.len() as u32;
        self.buf.push_str(key);
        let key_end = self.buf.len() as u32;
        self.buf.push_str(value);
        self.spans.push(TagSpan {
            key_start,
            key_end,
            value_end: self.buf.len() as u32,
        });
    }

    fn key_of(&self, s: TagSpan) -> &str {
        &self.buf[s.key_start as usize..s.key_end as usize]
    }

    fn value_of(&self, s: TagSpan) -> &str {
        &self.buf[s.key_end as usize..s.value_end as usize]
    }

    /// Sorts by key; of duplicate keys the one pushed last wins (as in a JSON object).
    pub fn normalize(&mut self) {
        if self.is_sorted_unique() {
            return;
        }
        let mut spans = std::mem::take(&mut self.spans);
        // Stable sort keeps push order among equal keys, so the last of a run is the newest.
        spans.sort_by(|a, b| self.key_of(*a).cmp(self.key_of(*b)));
        let mut kept = 0;
        for i in 0..spans.len() {
            if kept > 0 && self.key_of(spans[kept - 1]) == self.key_of(spans[i]) {
                spans[kept - 1] = spans[i];
            } else {
                spans[kept] = spans[i];
                kept += 1;
            }
        }
        spans.truncate(kept);
        self.spans = spans;
    }

    fn is_sorted_unique(&self) -> bool {
        self.spans
            .windows(2)
            .all(|w| self.key_of(w[0]) < self.key_of(w[1]))
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
        let spans = std::mem::take(&mut self.spans);
        self.spans = spans
            .into_iter()
            .filter(|&s| keep(self.key_of(s), self.value_of(s)))
            .collect();
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
