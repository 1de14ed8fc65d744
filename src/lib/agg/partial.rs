//! Parallel aggregation: each decoder thread folds its block of input into per-window partial
//! states (`Partial`), which the command's thread merges in input order.
//!
//! The result is the one sequential aggregation gives. Lateness depends on the newest event
//! time seen before each point; a thread knows that only within its own block, so it marks
//! points its block already made late, and the merge treats every other entry of a window
//! that earlier blocks had closed as late too. Kinds whose aggregate depends on the order
//! across blocks (cumulative counters, delta gauges, histogram and summary inputs) make the
//! thread hand its block over line by line instead.

use super::config::{AggConfig, Late};
use super::series::{append_series_key, KeyHasher};
use super::state::{Sample, State};
use crate::metric::{Kind, Metric, Temporality};
use crate::stream::{Combine, Part};
use crate::time::align_down;
use hashbrown::HashTable;

/// One (window, group) of a block.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub start: i64,
    pub hash: u64,
    key_end: u32,
    unit: u16,
    /// Its window had closed before these points arrived within the block.
    pub late: bool,
    /// Points added to this window.
    pub placed: u32,
    /// Points whose first window this is (each point counts once per series).
    pub first: u32,
}

/// What one block contributed: entries in order of first appearance, with their states.
#[derive(Default)]
pub struct Partial {
    index: HashTable<u32>,
    keys: Vec<u8>,
    entries: Vec<Entry>,
    /// `None` for points that were late and are dropped (`--late drop`).
    states: Vec<Option<State>>,
    units: Vec<Box<str>>,
    /// Newest event time in the block (`i64::MIN` when none).
    pub max_at: i64,
    pub points: u64,
    pub filtered: u64,
}

impl Partial {
    fn clear(&mut self) {
        self.index.clear();
        self.keys.clear();
        self.entries.clear();
        self.states.clear();
        self.max_at = i64::MIN;
        self.points = 0;
        self.filtered = 0;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entry(&self, i: usize) -> &Entry {
        &self.entries[i]
    }

    pub fn key(&self, i: usize) -> &[u8] {
        key_of(&self.entries, &self.keys, i)
    }

    pub fn unit(&self, i: usize) -> &str {
        &self.units[self.entries[i].unit as usize]
    }

    pub fn take_state(&mut self, i: usize) -> Option<State> {
        self.states[i].take()
    }

    fn unit_id(&mut self, unit: &str) -> u16 {
        super::series::unit_index(&mut self.units, unit)
    }
}

/// Where the table looks for a (window, lateness, group) entry.
fn slot_hash(hash: u64, start: i64, late: bool) -> u64 {
    hash ^ (start as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ late as u64
}

/// Entry `i`'s key: keys are stored back to back, each ending where its entry says.
fn key_of<'k>(entries: &[Entry], keys: &'k [u8], i: usize) -> &'k [u8] {
    let start = if i == 0 {
        0
    } else {
        entries[i - 1].key_end as usize
    };
    &keys[start..entries[i].key_end as usize]
}

/// True for points whose window aggregate does not depend on what other blocks hold.
pub fn order_free(m: &Metric) -> bool {
    match m.kind {
        Kind::Counter => m.temporality != Some(Temporality::Cumulative),
        Kind::Gauge => m.temporality != Some(Temporality::Delta),
        Kind::Distribution | Kind::Set => true,
        Kind::Histogram | Kind::Summary => false,
    }
}

/// The start of the newest window that the event times up to `newest` have closed.
pub fn closed_by(newest: i64, cfg: &AggConfig) -> i64 {
    if newest == i64::MIN {
        return i64::MIN;
    }
    let until = newest.saturating_sub(cfg.lateness);
    align_down(until.saturating_sub(cfg.window), cfg.step())
}

/// Folds blocks into `Partial`s on a decoder thread.
pub struct Combiner {
    cfg: AggConfig,
    hasher: KeyHasher,
    part: Box<Partial>,
    key: Vec<u8>,
    /// The entry the last point added went to (its only one with tumbling windows).
    last: Option<usize>,
}

impl Combiner {
    pub fn new(cfg: AggConfig, hasher: KeyHasher) -> Combiner {
        Combiner {
            cfg,
            hasher,
            part: Box::default(),
            key: Vec::new(),
            last: None,
        }
    }

    /// The entry the last `add` put its point in, when that was its only window and the
    /// point was kept: a caller that recognises the same series again may then use
    /// `add_again` until the block ends or the window changes.
    pub fn last_entry(&self) -> Option<usize> {
        self.last
    }

    /// Entries in the block so far.
    pub fn entries(&self) -> usize {
        self.part.len()
    }

    /// Forgets the last entry, so `last_entry` speaks only of points added after this.
    pub fn clear_last(&mut self) {
        self.last = None;
    }

    /// Adds one more point of the series and window of entry `i`, received at `at` (in
    /// that window), as `add` would with a metric holding just `sample`. False when the
    /// entry's state cannot take it; nothing is counted then.
    pub fn add_again(&mut self, i: usize, at: i64, sample: Sample) -> bool {
        let p = &mut *self.part;
        let Some(Some(st)) = p.states.get_mut(i) else {
            return false;
        };
        if !st.add_sample(sample, &self.cfg.limits) {
            return false;
        }
        p.points += 1;
        let e = &mut p.entries[i];
        e.placed += 1;
        e.first += 1;
        p.max_at = p.max_at.max(at);
        true
    }

    /// The start of the window a point at `at` lands in, for tumbling windows only.
    pub fn tumbling_start(&self, at: i64) -> Option<i64> {
        self.cfg
            .every
            .is_none()
            .then(|| align_down(at, self.cfg.window))
    }

    fn place(&mut self, m: &Metric, start: i64, hash: u64, late: bool, first: bool) {
        let p = &mut *self.part;
        let slot = slot_hash(hash, start, late);
        let (entries, keys, key) = (&p.entries, &p.keys, &self.key);
        let found = p.index.find(slot, |&i| {
            let e = &entries[i as usize];
            e.start == start
                && e.late == late
                && super::series::same_key(key_of(entries, keys, i as usize), key)
        });
        let limits = &self.cfg.limits;
        let keep = !(late && self.cfg.late == Late::Drop);
        let i = match found {
            Some(&i) => {
                if let Some(st) = &mut p.states[i as usize] {
                    // Only histogram inputs can be refused, and they never get here.
                    let _ = st.observe(m, limits);
                }
                i as usize
            }
            None => {
                let i = p.entries.len();
                p.keys.extend_from_slice(key);
                let unit = p.unit_id(&m.unit);
                p.entries.push(Entry {
                    start,
                    hash,
                    key_end: p.keys.len() as u32,
                    unit,
                    late,
                    placed: 0,
                    first: 0,
                });
                p.states.push(keep.then(|| State::new(m, None, limits)));
                let entries = &p.entries;
                p.index.insert_unique(slot, i as u32, |&j| {
                    let e = &entries[j as usize];
                    slot_hash(e.hash, e.start, e.late)
                });
                i
            }
        };
        let e = &mut p.entries[i];
        e.placed += 1;
        e.first += first as u32;
        let alone = first && self.cfg.every.is_none() && !late && keep;
        self.last = alone.then_some(i);
    }
}

impl Combine for Combiner {
    fn begin(&mut self, recycled: Option<Part>) {
        if let Some(part) = recycled.and_then(|p| p.downcast::<Partial>().ok()) {
            self.part = part;
        }
        self.part.clear();
        self.last = None;
    }

    fn add(&mut self, m: &Metric) -> bool {
        self.last = None;
        if !order_free(m) {
            return false;
        }
        self.part.points += 1;
        if !self.cfg.names.selects(&m.name) {
            self.part.filtered += 1;
            return true;
        }
        self.key.clear();
        let grouping = &self.cfg.grouping;
        append_series_key(m, &|k| grouping.keeps(k), &mut self.key);
        let hash = self.hasher.hash(&self.key);
        let at = m.ts;
        let closed = closed_by(self.part.max_at, &self.cfg);
        let (window, stride) = (self.cfg.window, self.cfg.step());
        let mut start = align_down(at, stride);
        let mut first = true;
        while start + window > at {
            self.place(m, start, hash, start <= closed, first);
            first = false;
            start -= stride;
        }
        self.part.max_at = self.part.max_at.max(at);
        true
    }

    fn end(&mut self) -> Part {
        std::mem::take(&mut self.part) as Part
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ndjson::Decoder;

    fn metric(line: &str) -> Metric {
        let mut m = Metric::default();
        Decoder::default()
            .decode(line.as_bytes(), &mut m, || 0)
            .unwrap();
        m
    }

    fn combine(cfg: AggConfig, lines: &[&str]) -> Box<Partial> {
        let mut c = Combiner::new(cfg, KeyHasher::random());
        c.begin(None);
        for l in lines {
            assert!(c.add(&metric(l)));
        }
        c.end().downcast::<Partial>().unwrap()
    }

    #[test]
    fn one_entry_per_series_and_window_in_order_of_appearance() {
        let p = combine(
            AggConfig::default(),
            &[
                r#"{"name":"b","kind":"counter","temporality":"delta","value":1,"ts":1000000000}"#,
                r#"{"name":"a","kind":"counter","temporality":"delta","value":2,"ts":2000000000}"#,
                r#"{"name":"b","kind":"counter","temporality":"delta","value":3,"ts":3000000000}"#,
                r#"{"name":"b","kind":"counter","temporality":"delta","value":4,"ts":12000000000}"#,
            ],
        );
        assert_eq!(p.len(), 3);
        assert_eq!(p.points, 4);
        assert!(p.key(0).starts_with(b"b\0"));
        assert!(p.key(1).starts_with(b"a\0"));
        assert_eq!((p.entry(0).start, p.entry(0).placed), (0, 2));
        assert_eq!(p.entry(2).start, 10_000_000_000);
        assert_eq!(p.max_at, 12_000_000_000);
    }

    #[test]
    fn points_behind_the_blocks_own_watermark_are_marked_late() {
        let p = combine(
            AggConfig::default(),
            &[
                r#"{"name":"a","kind":"counter","temporality":"delta","value":1,"ts":25000000000}"#,
                r#"{"name":"a","kind":"counter","temporality":"delta","value":2,"ts":1000000000}"#,
            ],
        );
        assert!(!p.entry(0).late);
        assert!(p.entry(1).late);
        let mut p = p;
        assert!(
            p.take_state(1).is_none(),
            "dropped late points keep no state"
        );
    }

    #[test]
    fn sliding_windows_count_each_point_once_as_first() {
        let cfg = AggConfig {
            every: Some(5_000_000_000),
            ..AggConfig::default()
        };
        let p = combine(
            cfg,
            &[r#"{"name":"a","kind":"counter","temporality":"delta","value":1,"ts":7000000000}"#],
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p.entry(0).first + p.entry(1).first, 1);
        assert_eq!(p.entry(0).placed + p.entry(1).placed, 2);
    }

    #[test]
    fn order_dependent_kinds_decline_the_block() {
        let mut c = Combiner::new(AggConfig::default(), KeyHasher::random());
        c.begin(None);
        let cum = r#"{"name":"a","kind":"counter","temporality":"cumulative","value":1,"ts":1}"#;
        assert!(!c.add(&metric(cum)));
        assert!(!c.add(&metric(
            r#"{"name":"g","kind":"gauge","temporality":"delta","value":1,"ts":1}"#
        )));
        assert!(c.add(&metric(r#"{"name":"g","kind":"gauge","value":1,"ts":1}"#)));
    }
}
