//! Varbinds as tlm metrics. An agent's varbinds are kept until its poll ends, so rows can be
//! joined by index before anything is written:
//! - Counter32/Counter64 → `counter`, cumulative, exact integers, `start_ts` = the agent's
//!   boot (poll time − sysUpTime), kept steady from poll to poll so tlm-agg sees a reboot
//!   and not the poll's jitter;
//! - Integer32/Gauge32/TimeTicks → `gauge`;
//! - OCTET STRING/OID/IpAddress → an info gauge `NAME_info 1` with the text as tag `NAME`
//!   (the OpenMetrics info convention), or, for `--label` columns, a tag on every metric of
//!   the same row (also across tables sharing the index, such as ifTable and ifXTable).
//!
//! Names come from the MIB (`ifHCInOctets`); table indexes become tags named for the INDEX
//! objects (`ifIndex=3`); OIDs the MIB does not know keep their numeric name. Every agent
//! also gets `snmp.up` (0/1), `snmp.poll_seconds` and `snmp.varbinds`, tagged `agent`.

use super::mib::{IndexValue, Mib, Node, NodeKind};
use super::pdu::{Value as SnmpValue, VarBind};
use super::poller::{Outcome, Sink, Target};
use crate::error::Result;
use crate::io::Output;
use crate::metric::{Metric, Temporality, Value};

/// A varbind kept until its agent's poll ends.
#[derive(Clone, Debug, PartialEq)]
enum Kept {
    Signed(i64),
    Gauge(u64),
    Ticks(u32),
    Counter(u64),
    Text(Vec<u8>),
    Oid(String),
}

/// Each row's tags by (column's entry OID, index suffix): a table's rows are decoded and
/// labelled once, not once per column.
type RowCache = std::collections::HashMap<(Vec<u32>, Vec<u32>), Vec<(String, String)>>;

/// A `--label` column: its node's OID and name.
struct Label {
    column: Vec<u32>,
    name: String,
}

pub struct MetricSink<'a> {
    mib: &'a Mib,
    targets: &'a [Target],
    labels: Vec<Label>,
    kept: Vec<Vec<(Vec<u32>, Kept)>>,
    /// Each agent's boot time as last reported.
    boots: Vec<Option<i64>>,
    out: &'a mut Output,
    batch: Vec<Metric>,
}

/// sysUpTime.0
const SYS_UPTIME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];
/// A boot time that moved less than this is the same boot (poll latency, rounding).
const SAME_BOOT_NS: i64 = 500_000_000;

impl<'a> MetricSink<'a> {
    /// `labels` are column names or OIDs (`ifName`, `IF-MIB::ifAlias`) already known to the
    /// MIB; an unknown one is an error for the caller to report.
    pub fn new(
        mib: &'a Mib,
        targets: &'a [Target],
        labels: &[String],
        out: &'a mut Output,
    ) -> std::result::Result<MetricSink<'a>, String> {
        let mut ls = Vec::new();
        for l in labels {
            let node = mib
                .node_by_name(l)
                .filter(|n| n.kind == NodeKind::Column)
                .ok_or_else(|| format!("--label {l}: not a table column of a loaded MIB"))?;
            ls.push(Label {
                column: node.oid.clone(),
                name: node.name.clone(),
            });
        }
        Ok(MetricSink {
            mib,
            targets,
            labels: ls,
            kept: vec![Vec::new(); targets.len()],
            boots: vec![None; targets.len()],
            out,
            batch: Vec::new(),
        })
    }

    pub fn output(&mut self) -> &mut Output {
        self.out
    }

    /// The OIDs of the `--label` columns, to walk when no root covers them.
    pub fn label_columns(&self) -> Vec<Vec<u32>> {
        self.labels.iter().map(|l| l.column.clone()).collect()
    }

    fn boot_time(&mut self, target: usize, now: i64) -> Option<i64> {
        let ticks = self.kept[target].iter().find_map(|(oid, v)| match v {
            Kept::Ticks(t) if oid[..] == SYS_UPTIME => Some(*t),
            _ => None,
        })?;
        let boot = now - i64::from(ticks) * 10_000_000;
        let kept = match self.boots[target] {
            Some(prev) if (prev - boot).abs() < SAME_BOOT_NS => prev,
            _ => boot,
        };
        self.boots[target] = Some(kept);
        Some(kept)
    }

    fn emit_agent(&mut self, target: usize, outcome: &Outcome) {
        let now = crate::time::now_ns();
        let start = self.boot_time(target, now);
        let kept = std::mem::take(&mut self.kept[target]);
        let rows = self.label_rows(&kept);
        let mut index_cache = RowCache::new();
        let mut uptime_seen = false;
        for (oid, v) in &kept {
            if self.labels.iter().any(|l| oid.starts_with(&l.column)) {
                continue;
            }
            // Fetched before the walk, and again when the walk covers the system group.
            if oid[..] == SYS_UPTIME && std::mem::replace(&mut uptime_seen, true) {
                continue;
            }
            if let Some(m) = self.metric(oid, v, now, start, &rows, &mut index_cache) {
                self.batch.push(m);
            }
        }
        let up = u64::from(outcome.error.is_none());
        for (name, v) in [
            ("snmp.up", Value::U64(up)),
            ("snmp.poll_seconds", Value::F64(outcome.seconds)),
            ("snmp.varbinds", Value::U64(outcome.varbinds)),
        ] {
            self.batch.push(Metric::gauge(name, v, now));
        }
        let t = &self.targets[target];
        for m in &mut self.batch {
            m.tags.insert("agent", &t.name);
            t.tags.iter().for_each(|(k, v)| m.tags.insert(k, v));
        }
    }

    /// Per label column: index suffix → text.
    fn label_rows(&self, kept: &[(Vec<u32>, Kept)]) -> Vec<Vec<(Vec<u32>, String)>> {
        self.labels
            .iter()
            .map(|l| {
                kept.iter()
                    .filter(|(oid, _)| oid.len() > l.column.len() && oid.starts_with(&l.column))
                    .map(|(oid, v)| (oid[l.column.len()..].to_vec(), self.text_of(&l.column, v)))
                    .collect()
            })
            .collect()
    }

    fn metric(
        &self,
        oid: &[u32],
        v: &Kept,
        now: i64,
        start: Option<i64>,
        rows: &[Vec<(Vec<u32>, String)>],
        index_cache: &mut RowCache,
    ) -> Option<Metric> {
        if let Some(scalar) = self.scalar(oid) {
            return self.value_metric(scalar.name.clone(), Vec::new(), oid, v, now, start);
        }
        let found = self.mib.lookup(oid);
        let (name, tags) = match found {
            Some((node, len)) if node.kind == NodeKind::Column && len < oid.len() => {
                let suffix = &oid[len..];
                let tags = self.row_tags(node, suffix, rows, index_cache);
                (node.name.clone(), tags)
            }
            _ => (dotted(oid), Vec::new()),
        };
        self.value_metric(name, tags, oid, v, now, start)
    }

    /// The scalar whose instance `oid` is (`sysUpTime` for sysUpTime.0, even where another
    /// MIB names the instance itself, as DISMAN-EXPRESSION-MIB does).
    fn scalar(&self, oid: &[u32]) -> Option<&Node> {
        let (last, object) = oid.split_last()?;
        (*last == 0)
            .then(|| self.mib.node_at(object))
            .flatten()
            .filter(|n| n.kind == NodeKind::Scalar)
    }

    fn value_metric(
        &self,
        name: String,
        tags: Vec<(String, String)>,
        oid: &[u32],
        v: &Kept,
        now: i64,
        start: Option<i64>,
    ) -> Option<Metric> {
        let mut m = match v {
            Kept::Counter(c) => {
                let mut m = Metric::counter(&name, Temporality::Cumulative, Value::U64(*c), now);
                m.start_ts = start;
                m
            }
            Kept::Gauge(g) => Metric::gauge(&name, Value::U64(*g), now),
            Kept::Ticks(t) => Metric::gauge(&name, Value::U64(u64::from(*t)), now).with_unit("cs"),
            Kept::Signed(i) => Metric::gauge(&name, Value::I64(*i), now),
            Kept::Text(_) | Kept::Oid(_) => {
                let mut m = Metric::gauge(&format!("{name}_info"), Value::U64(1), now);
                m.tags.insert(&name, &self.text_of(oid, v));
                m
            }
        };
        for (k, v) in &tags {
            m.tags.insert(k, v);
        }
        Some(m)
    }

    /// Index tags of a table column instance, and the `--label` values of its row.
    fn row_tags(
        &self,
        column: &Node,
        suffix: &[u32],
        rows: &[Vec<(Vec<u32>, String)>],
        cache: &mut RowCache,
    ) -> Vec<(String, String)> {
        let entry_oid = column.oid.split_last().map_or(&[][..], |(_, p)| p);
        let key = (entry_oid.to_vec(), suffix.to_vec());
        if let Some(tags) = cache.get(&key) {
            return tags.clone();
        }
        let entry = column
            .oid
            .split_last()
            .and_then(|(_, parent)| self.mib.node_at(parent));
        let mut tags = match entry.and_then(|e| self.mib.decode_index(e, suffix)) {
            Some(parts) => parts
                .into_iter()
                .map(|(k, v)| (k, index_text(&v)))
                .collect(),
            None => vec![("index".to_owned(), dotted(suffix))],
        };
        for (label, rows) in self.labels.iter().zip(rows) {
            if let Some((_, text)) = rows.iter().find(|(s, _)| s[..] == *suffix) {
                tags.push((label.name.clone(), text.clone()));
            }
        }
        cache.insert(key, tags.clone());
        tags
    }

    /// A text value as a tag: the MIB's DISPLAY-HINT when it has one that applies, UTF-8
    /// when printable, else hex octets joined by `:`.
    fn text_of(&self, oid: &[u32], v: &Kept) -> String {
        match v {
            Kept::Text(bytes) => {
                let hint = self
                    .mib
                    .lookup(oid)
                    .and_then(|(n, _)| n.display_hint.as_deref());
                octets_text(hint, bytes)
            }
            Kept::Oid(s) => s.clone(),
            Kept::Signed(i) => i.to_string(),
            Kept::Gauge(g) | Kept::Counter(g) => g.to_string(),
            Kept::Ticks(t) => t.to_string(),
        }
    }
}

/// Octets as text for a tag.
pub fn octets_text(hint: Option<&str>, bytes: &[u8]) -> String {
    if let Some(h) = hint {
        let mut s = String::new();
        if super::hint::format_display_hint(h, bytes, &mut s) {
            return s;
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(s) if s.chars().all(|c| !c.is_control() || c == '\t') => s.to_owned(),
        _ => bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

fn index_text(v: &IndexValue) -> String {
    match v {
        IndexValue::Integer(i) => i.to_string(),
        IndexValue::String(b) => octets_text(None, b),
        IndexValue::Oid(arcs) => dotted(arcs),
        IndexValue::Ip([a, b, c, d]) => format!("{a}.{b}.{c}.{d}"),
    }
}

fn dotted(arcs: &[u32]) -> String {
    let mut s = String::with_capacity(arcs.len() * 3);
    for (i, a) in arcs.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(itoa::Buffer::new().format(*a));
    }
    s
}

fn keep(v: &SnmpValue) -> Option<Kept> {
    Some(match *v {
        SnmpValue::Integer(i) => Kept::Signed(i),
        SnmpValue::Counter32(c) => Kept::Counter(u64::from(c)),
        SnmpValue::Counter64(c) => Kept::Counter(c),
        SnmpValue::Gauge32(g) => Kept::Gauge(u64::from(g)),
        SnmpValue::TimeTicks(t) => Kept::Ticks(t),
        SnmpValue::OctetString(s) => Kept::Text(s.to_vec()),
        SnmpValue::IpAddress([a, b, c, d]) => Kept::Text(format!("{a}.{b}.{c}.{d}").into_bytes()),
        SnmpValue::ObjectId(ref o) => Kept::Oid(dotted(o.to_oid().arcs())),
        SnmpValue::Opaque(_)
        | SnmpValue::Null
        | SnmpValue::NoSuchObject
        | SnmpValue::NoSuchInstance
        | SnmpValue::EndOfMibView => return None,
    })
}

impl Sink for MetricSink<'_> {
    fn varbind(&mut self, target: usize, vb: &VarBind) {
        if let Some(k) = keep(&vb.value) {
            let mut oid = Vec::with_capacity(16);
            vb.oid.write_arcs(&mut oid);
            self.kept[target].push((oid, k));
        }
    }

    fn finished(&mut self, target: usize, outcome: &Outcome) -> Result<()> {
        if let Some(e) = &outcome.error {
            crate::log!(
                Warn,
                "poll_failed",
                agent = self.targets[target].name,
                seconds = format!("{:.3}", outcome.seconds),
                varbinds = outcome.varbinds,
                reason = e
            );
        }
        self.emit_agent(target, outcome);
        self.out.write_ndjson(&self.batch)?;
        self.batch.clear();
        Ok(())
    }
}
