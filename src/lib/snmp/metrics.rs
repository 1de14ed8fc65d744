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
//!
//! This is the poller's hot path (thousands of varbinds per agent): varbinds are kept in one
//! arena per agent, each row's tags are encoded once, and lines are written straight into
//! the output buffer in the layout `ndjson::encode` gives, without a `Metric` per varbind.

use super::mib::{IndexValue, Mib, Node, NodeKind};
use super::pdu::{Value as SnmpValue, VarBind};
use super::poller::{Outcome, Sink, Target};
use crate::error::Result;
use crate::io::Output;
use crate::metric::{Metric, Value};
use crate::ndjson::encode::{write_int, write_str};
use std::collections::HashMap;

/// What kind of value a kept varbind holds; numbers inline, text in the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Signed,
    Gauge,
    Ticks,
    Counter,
    Text,
    Oid,
}

/// One kept varbind: its OID and text live in the agent's arena.
#[derive(Clone, Copy, Debug)]
struct Item {
    oid: (u32, u32),
    kind: Kind,
    num: u64,
    text: (u32, u32),
}

/// An agent's varbinds until its poll ends.
#[derive(Default)]
struct Arena {
    arcs: Vec<u32>,
    bytes: Vec<u8>,
    items: Vec<Item>,
}

impl Arena {
    fn oid(&self, it: &Item) -> &[u32] {
        &self.arcs[it.oid.0 as usize..(it.oid.0 + it.oid.1) as usize]
    }

    fn text(&self, it: &Item) -> &[u8] {
        &self.bytes[it.text.0 as usize..(it.text.0 + it.text.1) as usize]
    }

    fn clear(&mut self) {
        self.arcs.clear();
        self.bytes.clear();
        self.items.clear();
    }
}

/// A `--label` column: its node's OID and name.
struct Label {
    column: Vec<u32>,
    name: String,
}

pub struct MetricSink<'a> {
    mib: &'a Mib,
    targets: &'a [Target],
    labels: Vec<Label>,
    kept: Vec<Arena>,
    /// Each agent's boot time as last reported.
    boots: Vec<Option<i64>>,
    out: &'a mut Output,
    /// Arenas of finished agents, reused by the next ones.
    spare: Vec<Arena>,
}

/// sysUpTime.0
const SYS_UPTIME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];
/// A boot time that moved less than this is the same boot (poll latency, rounding).
const SAME_BOOT_NS: i64 = 500_000_000;

/// One agent's emission: its time, boot and the encoded tags of each row seen.
struct Emit<'e> {
    now: i64,
    start: Option<i64>,
    base_tags: &'e [(String, String)],
    /// (entry OID ++ index suffix) → encoded `{"k":"v",…}`.
    rows: HashMap<Vec<u32>, Vec<u8>>,
    /// Per label column: index suffix → text.
    labels: Vec<HashMap<Vec<u32>, String>>,
    key: Vec<u32>,
    /// The agent's own tags alone, encoded.
    plain: Vec<u8>,
}

impl<'a> MetricSink<'a> {
    /// `labels` are column names (`ifName`, `IF-MIB::ifAlias`) known to the MIB; an unknown
    /// one is an error for the caller to report.
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
            kept: (0..targets.len()).map(|_| Arena::default()).collect(),
            boots: vec![None; targets.len()],
            out,
            spare: Vec::new(),
        })
    }

    pub fn output(&mut self) -> &mut Output {
        self.out
    }

    /// The OIDs of the `--label` columns, to walk when no root covers them.
    pub fn label_columns(&self) -> Vec<Vec<u32>> {
        self.labels.iter().map(|l| l.column.clone()).collect()
    }

    fn boot_time(&mut self, arena: &Arena, target: usize, now: i64) -> Option<i64> {
        let ticks = arena
            .items
            .iter()
            .find(|it| it.kind == Kind::Ticks && arena.oid(it) == SYS_UPTIME)?
            .num;
        let boot = now - ticks as i64 * 10_000_000;
        let kept = match self.boots[target] {
            Some(prev) if (prev - boot).abs() < SAME_BOOT_NS => prev,
            _ => boot,
        };
        self.boots[target] = Some(kept);
        Some(kept)
    }

    fn emit_agent(&mut self, target: usize, outcome: &Outcome) -> Result<()> {
        let now = crate::time::now_ns();
        let mut arena = std::mem::take(&mut self.kept[target]);
        let start = self.boot_time(&arena, target, now);
        let t = &self.targets[target];
        let mut base_tags = vec![("agent".to_owned(), t.name.clone())];
        base_tags.extend(t.tags.iter().cloned());
        let mut e = Emit {
            now,
            start,
            base_tags: &base_tags,
            rows: HashMap::new(),
            labels: self.label_rows(&arena),
            key: Vec::with_capacity(32),
            plain: Vec::new(),
        };
        encode_tags(&mut e.plain, base_tags.clone());
        let mut uptime_seen = false;
        for it in &arena.items {
            let oid = arena.oid(it);
            if self.labels.iter().any(|l| oid.starts_with(&l.column)) {
                continue;
            }
            // Fetched before the walk, and again when the walk covers the system group.
            if oid == SYS_UPTIME && std::mem::replace(&mut uptime_seen, true) {
                continue;
            }
            self.write_varbind(&arena, it, &mut e);
            self.out.maybe_write()?;
        }
        let up = u64::from(outcome.error.is_none());
        for (name, v) in [
            ("snmp.up", Value::U64(up)),
            ("snmp.poll_seconds", Value::F64(outcome.seconds)),
            ("snmp.varbinds", Value::U64(outcome.varbinds)),
        ] {
            let mut m = Metric::gauge(name, v, now);
            base_tags.iter().for_each(|(k, v)| m.tags.insert(k, v));
            crate::ndjson::encode(&m, self.out.buf());
        }
        arena.clear();
        self.spare.push(arena);
        self.out.maybe_write()
    }

    /// Per label column: index suffix → text.
    fn label_rows(&self, arena: &Arena) -> Vec<HashMap<Vec<u32>, String>> {
        self.labels
            .iter()
            .map(|l| {
                arena
                    .items
                    .iter()
                    .filter_map(|it| {
                        let oid = arena.oid(it);
                        let suffix = oid.strip_prefix(&l.column[..]).filter(|s| !s.is_empty())?;
                        Some((suffix.to_vec(), self.text_of(oid, arena, it)))
                    })
                    .collect()
            })
            .collect()
    }

    /// Writes one varbind's line.
    fn write_varbind(&mut self, arena: &Arena, it: &Item, e: &mut Emit) {
        let oid = arena.oid(it);
        let mib = self.mib;
        let (name, row): (std::borrow::Cow<str>, Option<usize>) = match scalar(mib, oid) {
            Some(node) => (node.name.as_str().into(), None),
            None => match mib.lookup(oid) {
                Some((node, len)) if node.kind == NodeKind::Column && len < oid.len() => {
                    (node.name.as_str().into(), Some(len))
                }
                _ => (dotted(oid).into(), None),
            },
        };
        if matches!(it.kind, Kind::Text | Kind::Oid) {
            let text = self.text_of(oid, arena, it);
            let mut tags = self.tag_pairs(oid, row, e);
            tags.push((name.to_string(), text));
            let mut encoded = Vec::new();
            encode_tags(&mut encoded, tags);
            let info = format!("{name}_info");
            line(
                self.out.buf(),
                &info,
                "gauge",
                None,
                "",
                it.num_value(),
                e.now,
                &encoded,
            );
            return;
        }
        if let Some(len) = row {
            self.ensure_row(oid, len, e);
        }
        let tags: &[u8] = match row {
            Some(_) => e.rows.get(&e.key[..]).map_or(&[][..], |v| &v[..]),
            None => &e.plain,
        };
        let (kind, temporality, unit) = match it.kind {
            Kind::Counter => ("counter", Some(e.start), ""),
            Kind::Ticks => ("gauge", None, "cs"),
            _ => ("gauge", None, ""),
        };
        line(
            self.out.buf(),
            &name,
            kind,
            temporality,
            unit,
            it.num_value(),
            e.now,
            tags,
        );
    }

    /// Sets `e.key` to the row `oid` (a column instance, the column `len` arcs long) is in,
    /// and encodes that row's tags the first time it is seen.
    fn ensure_row(&self, oid: &[u32], len: usize, e: &mut Emit) {
        e.key.clear();
        e.key.extend_from_slice(&oid[..len - 1]);
        e.key.push(u32::MAX);
        e.key.extend_from_slice(&oid[len..]);
        if !e.rows.contains_key(&e.key[..]) {
            let tags = self.tag_pairs(oid, Some(len), e);
            let mut encoded = Vec::with_capacity(64);
            encode_tags(&mut encoded, tags);
            e.rows.insert(e.key.clone(), encoded);
        }
    }

    /// The agent's tags, and for a column instance its index tags and `--label` values.
    fn tag_pairs(&self, oid: &[u32], row: Option<usize>, e: &Emit) -> Vec<(String, String)> {
        let mut tags = e.base_tags.to_vec();
        let Some(len) = row else {
            return tags;
        };
        let suffix = &oid[len..];
        let entry = self.mib.node_at(&oid[..len - 1]);
        match entry.and_then(|en| self.mib.decode_index(en, suffix)) {
            Some(parts) => tags.extend(parts.into_iter().map(|(k, v)| (k, index_text(&v)))),
            None => tags.push(("index".to_owned(), dotted(suffix))),
        }
        for (label, rows) in self.labels.iter().zip(&e.labels) {
            if let Some(text) = rows.get(suffix) {
                tags.push((label.name.clone(), text.clone()));
            }
        }
        tags
    }

    /// A text value as a tag: the MIB's DISPLAY-HINT when it has one that applies, UTF-8
    /// when printable, else hex octets joined by `:`.
    fn text_of(&self, oid: &[u32], arena: &Arena, it: &Item) -> String {
        match it.kind {
            Kind::Text => {
                let hint = self
                    .mib
                    .lookup(oid)
                    .and_then(|(n, _)| n.display_hint.as_deref());
                octets_text(hint, arena.text(it))
            }
            Kind::Oid => String::from_utf8_lossy(arena.text(it)).into_owned(),
            Kind::Signed => (it.num as i64).to_string(),
            _ => it.num.to_string(),
        }
    }
}

impl Item {
    /// The metric value: the number, or 1 for an info gauge.
    fn num_value(&self) -> Value {
        match self.kind {
            Kind::Signed => Value::I64(self.num as i64),
            Kind::Text | Kind::Oid => Value::U64(1),
            _ => Value::U64(self.num),
        }
    }
}

/// The scalar whose instance `oid` is (`sysUpTime` for sysUpTime.0, even where another MIB
/// names the instance itself, as DISMAN-EXPRESSION-MIB does).
fn scalar<'m>(mib: &'m Mib, oid: &[u32]) -> Option<&'m Node> {
    let (last, object) = oid.split_last()?;
    (*last == 0)
        .then(|| mib.node_at(object))
        .flatten()
        .filter(|n| n.kind == NodeKind::Scalar)
}

/// `{"k":"v",…}` sorted by key, a later duplicate key replacing an earlier one (the row's own
/// tags over the agent's).
fn encode_tags(out: &mut Vec<u8>, mut tags: Vec<(String, String)>) {
    tags.reverse();
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    tags.dedup_by(|later, earlier| later.0 == earlier.0);
    crate::ndjson::encode::write_tags(out, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
}

/// One tlm metric v1 line, laid out as `ndjson::encode` lays it out.
#[allow(clippy::too_many_arguments)]
fn line(
    out: &mut Vec<u8>,
    name: &str,
    kind: &str,
    start: Option<Option<i64>>,
    unit: &str,
    value: Value,
    now: i64,
    tags: &[u8],
) {
    out.extend_from_slice(b"{\"name\":");
    write_str(out, name);
    out.extend_from_slice(b",\"kind\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'"');
    if start.is_some() {
        out.extend_from_slice(b",\"temporality\":\"cumulative\"");
    }
    if !unit.is_empty() {
        out.extend_from_slice(b",\"unit\":");
        write_str(out, unit);
    }
    out.extend_from_slice(b",\"value\":");
    crate::ndjson::encode::write_value(out, value);
    out.extend_from_slice(b",\"ts\":");
    write_int(out, now);
    if let Some(Some(s)) = start {
        out.extend_from_slice(b",\"start_ts\":");
        write_int(out, s);
    }
    out.extend_from_slice(b",\"tags\":");
    out.extend_from_slice(tags);
    out.extend_from_slice(b"}\n");
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
    let mut s = Vec::with_capacity(arcs.len() * 3);
    write_dotted(&mut s, arcs.iter().copied());
    String::from_utf8(s).unwrap_or_default()
}

/// Arcs as `1.3.6.1…` (no leading dot: a metric name or a tag, not net-snmp's `-On`).
fn write_dotted(out: &mut Vec<u8>, arcs: impl Iterator<Item = u32>) {
    let mut num = itoa::Buffer::new();
    for (i, a) in arcs.enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(num.format(a).as_bytes());
    }
}

impl Sink for MetricSink<'_> {
    fn varbind(&mut self, target: usize, vb: &VarBind) {
        let arena = &mut self.kept[target];
        if arena.items.capacity() == 0 {
            if let Some(spare) = self.spare.pop() {
                *arena = spare;
            }
        }
        let (kind, num) = match vb.value {
            SnmpValue::Integer(i) => (Kind::Signed, i as u64),
            SnmpValue::Counter32(c) => (Kind::Counter, u64::from(c)),
            SnmpValue::Counter64(c) => (Kind::Counter, c),
            SnmpValue::Gauge32(g) => (Kind::Gauge, u64::from(g)),
            SnmpValue::TimeTicks(t) => (Kind::Ticks, u64::from(t)),
            SnmpValue::OctetString(_) | SnmpValue::IpAddress(_) => (Kind::Text, 0),
            SnmpValue::ObjectId(_) => (Kind::Oid, 0),
            _ => return,
        };
        let text_start = arena.bytes.len();
        match vb.value {
            SnmpValue::OctetString(s) => arena.bytes.extend_from_slice(s),
            SnmpValue::IpAddress([a, b, c, d]) => arena
                .bytes
                .extend_from_slice(format!("{a}.{b}.{c}.{d}").as_bytes()),
            SnmpValue::ObjectId(ref o) => write_dotted(&mut arena.bytes, o.arcs()),
            _ => {}
        }
        let oid_start = arena.arcs.len();
        vb.oid.write_arcs(&mut arena.arcs);
        arena.items.push(Item {
            oid: (oid_start as u32, (arena.arcs.len() - oid_start) as u32),
            kind,
            num,
            text: (text_start as u32, (arena.bytes.len() - text_start) as u32),
        });
    }

    fn finished(&mut self, target: usize, outcome: &Outcome) -> Result<()> {
        self.emit_agent(target, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::output::Captured;
    use crate::snmp::ber;
    use crate::snmp::oid::Oid;
    use crate::snmp::pdu::{self, Message, PduType};

    /// A Response PDU holding `vbs` as (OID, BER tag, content).
    fn response(vbs: &[(&str, u8, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        let msg = ber::begin(&mut out, ber::TAG_SEQUENCE);
        ber::write_i64(&mut out, ber::TAG_INTEGER, 1);
        ber::write_tlv(&mut out, ber::TAG_OCTET_STRING, b"public");
        let p = ber::begin(&mut out, PduType::Response.tag());
        for v in [1, 0, 0] {
            ber::write_i64(&mut out, ber::TAG_INTEGER, v);
        }
        let list = ber::begin(&mut out, ber::TAG_SEQUENCE);
        for (oid, tag, content) in vbs {
            let vb = ber::begin(&mut out, ber::TAG_SEQUENCE);
            ber::write_oid(&mut out, Oid::parse(oid).unwrap().arcs());
            ber::write_tlv(&mut out, *tag, content);
            ber::end(&mut out, vb);
        }
        ber::end(&mut out, list);
        ber::end(&mut out, p);
        ber::end(&mut out, msg);
        out
    }

    #[test]
    fn rows_are_tagged_labelled_and_encoded_as_ndjson_does() {
        let bytes = response(&[
            ("1.3.6.1.2.1.1.3.0", 0x43, vec![0x01, 0x00]),
            ("1.3.6.1.2.1.1.5.0", 0x04, b"sw1".to_vec()),
            (
                "1.3.6.1.2.1.2.2.1.10.3",
                0x41,
                vec![0x00, 0xff, 0xff, 0xff, 0xff],
            ),
            ("1.3.6.1.2.1.2.2.1.8.3", 0x02, vec![0x01]),
            ("1.3.6.1.2.1.31.1.1.1.1.3", 0x04, b"Gi0/3".to_vec()),
            ("1.3.6.1.2.1.31.1.1.1.6.3", 0x46, vec![0x01; 8]),
            ("1.3.6.1.4.1.99.1", 0x42, vec![0x07]),
        ]);
        let targets = [Target {
            name: "sw1:161".into(),
            addr: "127.0.0.1:161".parse().unwrap(),
            tags: vec![("site".into(), "fra1".into())],
        }];
        let shared = Captured::default();
        let mut out = Output::to(Box::new(shared.clone()));
        {
            let mut sink =
                MetricSink::new(Mib::builtin(), &targets, &["ifName".into()], &mut out).unwrap();
            let Ok(Message::Community { pdu, .. }) = pdu::decode(&bytes) else {
                panic!("decodes")
            };
            for vb in pdu.varbinds() {
                sink.varbind(0, &vb.unwrap());
            }
            sink.finished(0, &Outcome::default()).unwrap();
            sink.output().flush().unwrap();
        }
        let text = shared.text();
        let mut decoder = crate::ndjson::Decoder::default();
        let mut by_name = std::collections::BTreeMap::new();
        for line in text.lines() {
            let mut m = Metric::default();
            decoder.decode(line.as_bytes(), &mut m, || 0).unwrap();
            let mut again = Vec::new();
            crate::ndjson::encode(&m, &mut again);
            assert_eq!(
                String::from_utf8(again).unwrap().trim_end(),
                line,
                "ndjson::encode layout"
            );
            by_name.insert(m.name.clone(), m);
        }
        let names: Vec<&str> = by_name.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "1.3.6.1.4.1.99.1",
                "ifHCInOctets",
                "ifInOctets",
                "ifOperStatus",
                "snmp.poll_seconds",
                "snmp.up",
                "snmp.varbinds",
                "sysName_info",
                "sysUpTime"
            ]
        );
        let octets = &by_name["ifInOctets"];
        assert_eq!(octets.value, Some(Value::U64(u32::MAX as u64)));
        assert_eq!(octets.tags.get("ifIndex"), Some("3"));
        assert_eq!(
            octets.tags.get("ifName"),
            Some("Gi0/3"),
            "joined from ifXTable"
        );
        assert_eq!(octets.tags.get("site"), Some("fra1"));
        assert_eq!(octets.tags.get("agent"), Some("sw1:161"));
        let up = octets.ts - octets.start_ts.unwrap();
        assert_eq!(up, 256 * 10_000_000, "start_ts = poll time - sysUpTime");
        assert_eq!(
            by_name["ifHCInOctets"].value,
            Some(Value::U64(0x0101_0101_0101_0101))
        );
        assert_eq!(by_name["sysName_info"].tags.get("sysName"), Some("sw1"));
        assert_eq!(by_name["ifOperStatus"].value.map(|v| v.as_f64()), Some(1.0));
        assert_eq!(by_name["1.3.6.1.4.1.99.1"].tags.get("index"), None);
    }
}
