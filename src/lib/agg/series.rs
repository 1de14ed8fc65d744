//! The series table: each distinct (kind, temporality, name, tags) gets a small integer id.
//!
//! The identity is stored once as a compact key; name and tags are decoded from it only when
//! a window is written out. Separators 0xFE/0xFF never occur in UTF-8, so keys are unambiguous.

use crate::metric::{Kind, Metric, Tags, Temporality};
use hashbrown::{DefaultHashBuilder, HashTable};
use std::cmp::Ordering;
use std::hash::BuildHasher;

const END: u8 = 0xFF;
const KV: u8 = 0xFE;

pub type SeriesId = u32;

#[derive(Default)]
pub struct SeriesTable {
    index: HashTable<SeriesId>,
    keys: Vec<Box<[u8]>>,
    units: Vec<u16>,
    unit_names: Vec<Box<str>>,
    hasher: DefaultHashBuilder,
    scratch: Vec<u8>,
}

fn kind_byte(kind: Kind, t: Option<Temporality>) -> [u8; 2] {
    let t = match t {
        None => 0,
        Some(Temporality::Delta) => 1,
        Some(Temporality::Cumulative) => 2,
    };
    [kind as u8, t]
}

fn kind_from(b: u8) -> Kind {
    Kind::ALL.get(b as usize).copied().unwrap_or(Kind::Gauge)
}

/// Builds the identity key of `m`'s series, keeping only tags `keep` accepts.
pub fn series_key(m: &Metric, keep: &dyn Fn(&str) -> bool, key: &mut Vec<u8>) {
    key.clear();
    key.extend_from_slice(&kind_byte(m.kind, m.temporality));
    key.extend_from_slice(m.name.as_bytes());
    key.push(END);
    for (k, v) in m.tags.iter() {
        if keep(k) {
            key.extend_from_slice(k.as_bytes());
            key.push(KV);
            key.extend_from_slice(v.as_bytes());
            key.push(END);
        }
    }
}

impl SeriesTable {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The id of `m`'s series, creating it unless the table already holds `max` series.
    pub fn intern(
        &mut self,
        m: &Metric,
        keep: &dyn Fn(&str) -> bool,
        max: usize,
    ) -> Option<SeriesId> {
        let mut key = std::mem::take(&mut self.scratch);
        series_key(m, keep, &mut key);
        let hash = self.hasher.hash_one(&key[..]);
        let keys = &self.keys;
        let found = self
            .index
            .find(hash, |&id| *keys[id as usize] == key[..])
            .copied();
        let id = match found {
            Some(id) => Some(id),
            None if self.keys.len() >= max => None,
            None => {
                let id = self.keys.len() as SeriesId;
                self.keys.push(key.as_slice().into());
                let unit = self.unit_id(&m.unit);
                self.units.push(unit);
                let (keys, hasher) = (&self.keys, &self.hasher);
                self.index
                    .insert_unique(hash, id, |&i| hasher.hash_one(&keys[i as usize][..]));
                Some(id)
            }
        };
        self.scratch = key;
        id
    }

    fn unit_id(&mut self, unit: &str) -> u16 {
        if let Some(i) = self.unit_names.iter().position(|u| &**u == unit) {
            return i as u16;
        }
        if self.unit_names.len() >= u16::MAX as usize {
            return 0;
        }
        self.unit_names.push(unit.into());
        (self.unit_names.len() - 1) as u16
    }

    /// Fills name, kind, temporality, unit and tags of `m` from series `id`.
    pub fn describe(&self, id: SeriesId, m: &mut Metric) {
        let key = &self.keys[id as usize];
        m.kind = kind_from(key[0]);
        m.temporality = match key[1] {
            1 => Some(Temporality::Delta),
            2 => Some(Temporality::Cumulative),
            _ => None,
        };
        let mut parts = key[2..].split(|&b| b == END);
        m.name.clear();
        m.name.push_str(utf8(parts.next().unwrap_or_default()));
        m.unit.clear();
        m.unit.push_str(
            self.unit_names
                .get(self.units[id as usize] as usize)
                .map_or("", |u| u),
        );
        fill_tags(parts, &mut m.tags);
    }

    /// Orders series by name, then tags, then kind: the order output is written in.
    pub fn cmp(&self, a: SeriesId, b: SeriesId) -> Ordering {
        let (ka, kb) = (&self.keys[a as usize], &self.keys[b as usize]);
        let parts_a = ka[2..].split(|&x| x == END).map(|p| p.split(|&x| x == KV));
        let parts_b = kb[2..].split(|&x| x == END).map(|p| p.split(|&x| x == KV));
        // Comparing piece by piece (rather than raw bytes) sorts `a` before `a.b`.
        parts_a
            .flatten()
            .cmp(parts_b.flatten())
            .then_with(|| ka[..2].cmp(&kb[..2]))
    }

    /// Approximate heap bytes held, for the bytes-per-series report.
    pub fn heap_bytes(&self) -> usize {
        self.keys.iter().map(|k| k.len() + 16).sum::<usize>()
            + self.index.capacity() * (std::mem::size_of::<SeriesId>() + 1)
            + self.units.capacity() * 2
    }
}

fn utf8(b: &[u8]) -> &str {
    // Keys are built from `&str` pieces split at bytes that never occur in UTF-8.
    std::str::from_utf8(b).unwrap_or_default()
}

fn fill_tags<'a>(parts: impl Iterator<Item = &'a [u8]>, tags: &mut Tags) {
    tags.clear();
    for part in parts {
        if part.is_empty() {
            continue;
        }
        let mut kv = part.splitn(2, |&b| b == KV);
        let k = utf8(kv.next().unwrap_or_default());
        let v = utf8(kv.next().unwrap_or_default());
        tags.push(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Value;

    fn all(_: &str) -> bool {
        true
    }

    #[test]
    fn same_series_same_id_and_describe_round_trips() {
        let mut t = SeriesTable::default();
        let m = Metric::gauge("cpu.load", Value::U64(1), 0)
            .with_tag("host", "a")
            .with_tag("dc", "x")
            .with_unit("1");
        let a = t.intern(&m, &all, 10).unwrap();
        let b = t.intern(&m, &all, 10).unwrap();
        assert_eq!(a, b);
        let mut out = Metric::default();
        t.describe(a, &mut out);
        assert_eq!(out.name, "cpu.load");
        assert_eq!(out.unit, "1");
        assert_eq!(out.tags, m.tags);
    }

    #[test]
    fn kind_and_tags_separate_series_and_max_refuses() {
        let mut t = SeriesTable::default();
        let g = Metric::gauge("x", Value::U64(1), 0);
        let c = Metric::counter("x", Temporality::Delta, Value::U64(1), 0);
        let a = t.intern(&g, &all, 2).unwrap();
        let b = t.intern(&c, &all, 2).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.intern(&g.clone().with_tag("k", "v"), &all, 2), None);
        assert_eq!(
            t.intern(&g.clone().with_tag("k", "v"), &|k| k != "k", 2),
            Some(a)
        );
    }

    #[test]
    fn order_is_by_name_then_tags() {
        let mut t = SeriesTable::default();
        let ids: Vec<_> = ["a.b", "a", "b"]
            .iter()
            .map(|n| {
                t.intern(&Metric::gauge(n, Value::U64(1), 0), &all, 10)
                    .unwrap()
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_by(|&x, &y| t.cmp(x, y));
        assert_eq!(sorted, vec![ids[1], ids[0], ids[2]]);
    }
}
