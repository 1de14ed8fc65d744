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
use super::direct;
use super::ranges::{KeyRanges, UNKNOWN};
use super::series::{append_series_key, prefetch, same_key, Index, KeyHasher};
use super::shapes::{Found, Probe, Shapes, AHEAD};
use super::state::{Sample, State};
use crate::append::append;
use crate::metric::{Kind, Metric, Temporality};
use crate::ndjson::decode::{number_f64, number_ts, number_value, Spans};
use crate::prefetch::{prefetch_bytes, prefetch_value};
use crate::stream::{Combine, Part};
use crate::time::align_down;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// One (window, group) of a block.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub start: i64,
    pub hash: u64,
    key_start: u32,
    key_end: u32,
    unit: u16,
    /// Its window had closed before these points arrived within the block.
    pub late: bool,
    /// Points added to this window.
    pub placed: u32,
    /// Points whose first window this is (each point counts once per series).
    pub first: u32,
    /// The key range (shard) of its key, or `ranges::UNKNOWN`.
    pub shard: u16,
    /// Its state is a gauge's (whose last value the merge records).
    pub gauge: bool,
}

/// What one block contributed: entries in order of first appearance, with their states.
#[derive(Default)]
pub struct Partial {
    index: Index,
    keys: Vec<u8>,
    entries: Vec<Entry>,
    /// `None` for points that were late and are dropped (`--late drop`).
    states: Vec<Option<State>>,
    units: Vec<Box<str>>,
    /// The key ranges of the aggregation state, once chosen: each entry records its own.
    ranges: Option<Arc<OnceLock<KeyRanges>>>,
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

    /// The key of entry `e` (a copy of one of this block's entries).
    pub fn key_of(&self, e: &Entry) -> &[u8] {
        &self.keys[e.key_start as usize..e.key_end as usize]
    }

    pub fn unit(&self, i: usize) -> &str {
        self.unit_of(&self.entries[i])
    }

    /// The unit of entry `e`.
    pub fn unit_of(&self, e: &Entry) -> &str {
        &self.units[e.unit as usize]
    }

    /// Starts loading the key bytes of entry `e`.
    #[inline]
    pub fn prefetch_key_of(&self, e: &Entry) {
        let key = self.keys.as_ptr().wrapping_add(e.key_start as usize);
        prefetch_bytes(key, (e.key_end - e.key_start) as usize);
    }

    /// Starts loading entry `i` (not its key or state).
    #[inline]
    pub fn prefetch_entry(&self, i: usize) {
        if let Some(e) = self.entries.get(i) {
            prefetch_value(e);
        }
    }

    /// Starts loading entry `i`'s key bytes (reading the entry).
    #[inline]
    pub fn prefetch_key(&self, i: usize) {
        if let Some(e) = self.entries.get(i) {
            self.prefetch_key_of(e);
        }
    }

    pub fn take_state(&mut self, i: usize) -> Option<State> {
        self.states[i].take()
    }

    /// All the states, by entry, for threads that each take their own; given back with
    /// `restore_states` so that their room is reused.
    pub fn take_states(&mut self) -> Vec<Option<State>> {
        std::mem::take(&mut self.states)
    }

    pub fn restore_states(&mut self, states: Vec<Option<State>>) {
        self.states = states;
    }

    fn unit_id(&mut self, unit: &[u8]) -> u16 {
        super::series::unit_index(&mut self.units, unit)
    }

    /// The entry of `key` (hashed `hash`) for the window at `start` and lateness `late`,
    /// and whether it is new: a new one gets the unit `unit` and the state `make` gives.
    fn entry_for(
        &mut self,
        (start, late): (i64, bool),
        (hash, key): (u64, &[u8]),
        unit: &[u8],
        make: impl FnOnce() -> Option<State>,
    ) -> (usize, bool) {
        let slot = slot_hash(hash, start, late);
        let (entries, keys) = (&self.entries, &self.keys);
        let found = self.index.find(slot, |i| {
            let e = &entries[i as usize];
            e.start == start && e.late == late && same_key(key_of(entries, keys, i as usize), key)
        });
        if let Some(i) = found {
            return (i as usize, false);
        }
        let i = self.push_entry((start, late), (hash, key), unit, make);
        let entries = &self.entries;
        self.index.insert(slot, i as u32, |j| {
            let e = &entries[j as usize];
            slot_hash(e.hash, e.start, e.late)
        });
        (i, true)
    }

    /// A new entry, not looked up first nor indexed: a block may then hold one series
    /// and window more than once, which the merge adds up in order as it would one.
    fn push_entry(
        &mut self,
        window: (i64, bool),
        (hash, key): (u64, &[u8]),
        unit: &[u8],
        make: impl FnOnce() -> Option<State>,
    ) -> usize {
        let key_start = self.keys.len();
        append(&mut self.keys, key);
        self.add_entry(window, (hash, key_start), unit, make)
    }

    /// `push_entry` of a key that `build` writes in place, hashed here.
    fn push_entry_built(
        &mut self,
        window: (i64, bool),
        (hasher, build): (&KeyHasher, impl FnOnce(&mut Vec<u8>)),
        unit: &[u8],
        make: impl FnOnce() -> Option<State>,
    ) -> usize {
        let key_start = self.keys.len();
        build(&mut self.keys);
        let hash = hasher.hash(&self.keys[key_start..]);
        self.add_entry(window, (hash, key_start), unit, make)
    }

    /// The entry whose key is the end of `keys` from `key_start` on.
    fn add_entry(
        &mut self,
        (start, late): (i64, bool),
        (hash, key_start): (u64, usize),
        unit: &[u8],
        make: impl FnOnce() -> Option<State>,
    ) -> usize {
        let i = self.entries.len();
        let unit = self.unit_id(unit);
        let shard = self
            .ranges
            .as_ref()
            .and_then(|r| r.get())
            .map_or(UNKNOWN, |r| r.tag(&self.keys[key_start..]));
        let state = make();
        self.entries.push(Entry {
            start,
            hash,
            key_start: key_start as u32,
            key_end: self.keys.len() as u32,
            unit,
            late,
            placed: 0,
            first: 0,
            shard,
            gauge: matches!(state, Some(State::Gauge(_))),
        });
        self.states.push(state);
        i
    }

    /// Counts a point placed in entry `i` (`first`: the first of its windows).
    fn count(&mut self, i: usize, first: bool) {
        let e = &mut self.entries[i];
        e.placed += 1;
        e.first += first as u32;
    }
}

/// Where the table looks for a (window, lateness, group) entry.
fn slot_hash(hash: u64, start: i64, late: bool) -> u64 {
    hash ^ (start as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ late as u64
}

/// Starts loading entry `i` and its state.
#[inline]
fn prefetch_entry(p: &Partial, i: usize) {
    if let (Some(e), Some(st)) = (p.entries.get(i), p.states.get(i)) {
        prefetch_value(e);
        prefetch_value(st);
    }
}

/// Entry `i`'s key: keys are stored back to back, where its entry says.
fn key_of<'k>(entries: &[Entry], keys: &'k [u8], i: usize) -> &'k [u8] {
    let e = &entries[i];
    &keys[e.key_start as usize..e.key_end as usize]
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
    /// Whether simple points wait `LAG` lines for their lookup (see `pipelined`).
    pipelined: bool,
    /// Points waiting for their lookup, oldest first.
    pending: VecDeque<Pending>,
    /// Key buffers of points already placed, for reuse.
    spare_keys: Vec<Vec<u8>>,
    /// Lines of simple points met before, by shape, with what they mean.
    shapes: Shapes<KnownLine>,
    /// The shape of the line being decoded, when it is new.
    probe: Option<Probe>,
    /// What `add` did with its point, when a line of that shape may skip decoding.
    added: Option<Added>,
    /// Which block this is, for the entries that shape records remember.
    block: u32,
    /// The tags of the line read last by `direct::read`.
    tags: direct::Tags,
    /// Whether this block's simple points get entries of their own, not looked up, and
    /// the stream's verdict on that (see `skip_lookups_after_first`).
    unlooked: bool,
    skip_lookups: Arc<AtomicBool>,
    /// The aggregator's key ranges, which entries record once they are chosen.
    ranges: Option<Arc<OnceLock<KeyRanges>>>,
}

/// Fewer points than this in a first block say nothing about whether looking up pays:
/// a block of `n` points is 90% distinct series only with some 5n series or more, and a
/// small block is that with few. (A pipe's first block, cut short while its producer
/// started, held 1,817 points of a 10,000-series stream, 91% of them distinct; skipping
/// lookups for all that followed made it 1.7 times slower.)
pub const LOOKED_FIRST: u64 = 16 << 10;

/// Shapes a decoder thread remembers: enough for the series of a block several times over.
/// Each costs its line, key and some 60 bytes.
const SHAPES: usize = 32 << 10;

/// What a line of a known shape means: its series (whose key and unit bytes are kept
/// beside it, as in `Pending`), kind and whether it is selected; and the entry its series
/// last went to, so that the next point of the same window skips the lookup.
#[derive(Clone, Copy)]
struct KnownLine {
    hash: u64,
    simple: Simple,
    key_len: u16,
    selected: bool,
    /// Entry `entry` of block `block` is this series' latest window there.
    block: u32,
    entry: u32,
}

impl KnownLine {
    fn new(simple: Simple, selected: bool, key_len: u16, hash: u64) -> KnownLine {
        KnownLine {
            hash,
            simple,
            key_len,
            selected,
            block: 0,
            entry: NO_ENTRY,
        }
    }
}

/// No shape record, or no entry known.
const NO_SHAPE: u32 = u32::MAX;
const NO_ENTRY: u32 = u32::MAX;

/// The kind of a simple point, from which its value and ts make its sample.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Simple {
    Count,
    Gauge,
    /// A one-value distribution, with its sample rate.
    Timing(f64),
}

impl Simple {
    fn of(sample: &Sample) -> Simple {
        match *sample {
            Sample::Count(_) => Simple::Count,
            Sample::Gauge(..) => Simple::Gauge,
            Sample::Timing(_, rate) => Simple::Timing(rate),
        }
    }

    /// The sample of a line with this meaning and these value and ts texts.
    fn sample(self, value: &[u8], at: i64) -> Option<Sample> {
        Some(match self {
            Simple::Count => Sample::Count(number_value(value)?),
            Simple::Gauge => Sample::Gauge(number_value(value)?, at),
            Simple::Timing(rate) => Sample::Timing(number_f64(value)?, rate),
        })
    }
}

/// What `add` did with a simple point.
#[derive(Clone, Copy)]
enum Added {
    /// Left out by `--match`/`--exclude`.
    Filtered(Simple),
    /// Waiting in `pending` (the newest).
    Pending(Simple),
}

/// How many later lines a simple point waits for before it is placed: its table slot, then
/// its entry and state, then its key bytes are loaded while those lines are decoded, instead
/// of each stalling the thread in turn. A block's table of thousands of series does not fit
/// in a core's own cache, so those loads are the largest cost of combining a line.
const LAG: usize = 3;

/// A point waiting for its lookup: all that placing it needs, taken from its metric.
struct Pending {
    /// The series key, then the unit's bytes: the unit is looked up only for a new entry.
    /// Empty for a line of a known shape, whose record has them.
    key: Vec<u8>,
    key_len: usize,
    hash: u64,
    /// The shape record of its line (`NO_SHAPE`), and the entry that record says this
    /// series has for this window in this block (`NO_ENTRY`).
    shape: u32,
    entry: u32,
    start: i64,
    at: i64,
    sample: Sample,
}

/// The one value of a delta counter, absolute gauge or one-value distribution: points whose
/// state `State::from_sample` makes and `State::add_sample` adds to.
pub(crate) fn simple_sample(m: &Metric) -> Option<Sample> {
    let v = m.value.unwrap_or_default();
    match (m.kind, m.temporality) {
        (Kind::Counter, t) if t != Some(Temporality::Cumulative) => Some(Sample::Count(v)),
        (Kind::Gauge, t) if t != Some(Temporality::Delta) => Some(Sample::Gauge(v, m.ts)),
        (Kind::Distribution, _) if m.values.len() == 1 => {
            Some(Sample::Timing(m.values[0], m.sample_rate.unwrap_or(1.0)))
        }
        _ => None,
    }
}

impl Combiner {
    pub fn new(cfg: AggConfig, hasher: KeyHasher) -> Combiner {
        Combiner {
            cfg,
            hasher,
            part: Box::default(),
            key: Vec::new(),
            last: None,
            pipelined: false,
            pending: VecDeque::with_capacity(LAG + 1),
            spare_keys: Vec::new(),
            shapes: Shapes::new(SHAPES),
            probe: None,
            added: None,
            block: 0,
            tags: direct::Tags::default(),
            unlooked: false,
            skip_lookups: Arc::new(AtomicBool::new(false)),
            ranges: None,
        }
    }

    /// A combiner for whole blocks: simple points are placed `LAG` lines after they are
    /// added (in order, so the result is the same), and `last_entry` is not kept.
    pub fn pipelined(cfg: AggConfig, hasher: KeyHasher) -> Combiner {
        Combiner {
            pipelined: cfg.every.is_none(),
            ..Combiner::new(cfg, hasher)
        }
    }

    /// A pipelined combiner as it runs on a stream of many series: lines read straight
    /// into their keys and entries not looked up, from the first block on.
    #[cfg(test)]
    pub fn high_cardinality(cfg: AggConfig, hasher: KeyHasher) -> Combiner {
        Combiner::pipelined(cfg, hasher).skip_lookups_after_first(Arc::new(AtomicBool::new(true)))
    }

    /// A combiner whose blocks skip looking up entries, and leave the shape cache aside,
    /// once `skip` is set. When nearly every simple point of a stream's first block got an
    /// entry of its own (many series, each rarely twice in a block), looking entries up
    /// costs more than the merge saves: each point then gets its own entry, and the merge
    /// adds up a series and window met twice in a block in order, as it would the one
    /// entry. The verdict comes before the second block is read, so a file's blocks are
    /// combined alike on any thread.
    pub fn skip_lookups_after_first(self, skip: Arc<AtomicBool>) -> Combiner {
        Combiner {
            skip_lookups: skip,
            ..self
        }
    }

    /// A combiner whose entries record their key range once `ranges` are chosen, so the
    /// merge need not read every key to split a block among the shards.
    pub fn with_key_ranges(self, ranges: Arc<OnceLock<KeyRanges>>) -> Combiner {
        Combiner {
            ranges: Some(ranges),
            ..self
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
        let limits = &self.cfg.limits;
        let keep = !(late && self.cfg.late == Late::Drop);
        let p = &mut *self.part;
        let (i, fresh) = p.entry_for((start, late), (hash, &self.key), m.unit.as_bytes(), || {
            keep.then(|| State::new(m, None, limits))
        });
        if let (false, Some(st)) = (fresh, &mut p.states[i]) {
            // Only histogram inputs can be refused, and they never get here.
            let _ = st.observe(m, limits);
        }
        p.count(i, first);
        let alone = first && self.cfg.every.is_none() && !late && keep;
        self.last = alone.then_some(i);
    }
}

impl Combiner {
    /// Adds a simple point to the pipeline.
    fn defer(&mut self, m: &Metric, sample: Sample) {
        let mut key = self.spare_key();
        let grouping = &self.cfg.grouping;
        append_series_key(m, &|k| grouping.keeps(k), &mut key);
        let hash = self.hasher.hash(&key);
        let key_len = key.len();
        key.extend_from_slice(m.unit.as_bytes());
        let at = m.ts;
        let start = align_down(at, self.cfg.window);
        self.push_pending(Pending {
            key,
            key_len,
            hash,
            shape: NO_SHAPE,
            entry: NO_ENTRY,
            start,
            at,
            sample,
        });
    }

    /// Keeps a placed point's key buffer for reuse: lines of known shapes have none, and
    /// at most the pipeline's worth are kept.
    fn keep_spare(&mut self, key: Vec<u8>) {
        if key.capacity() > 0 && self.spare_keys.len() <= LAG {
            self.spare_keys.push(key);
        }
    }

    fn spare_key(&mut self) -> Vec<u8> {
        let mut key = self.spare_keys.pop().unwrap_or_default();
        key.clear();
        key
    }

    /// Adds a simple point to the pipeline and moves it on by one line.
    fn push_pending(&mut self, w: Pending) {
        let p = &*self.part;
        match w.entry {
            NO_ENTRY if self.unlooked => {}
            NO_ENTRY => {
                let slot = p.index.first_slot(slot_hash(w.hash, w.start, false));
                prefetch((slot as *const u64).cast());
            }
            i => prefetch_entry(p, i as usize),
        }
        self.pending.push_back(w);
        // Skipping lookups, there is nothing to load ahead: every point is placed at once.
        if self.pending.len() > LAG || self.unlooked {
            self.place_oldest();
        }
        if self.unlooked {
            return;
        }
        let p = &*self.part;
        let likely = |w: &Pending| {
            if w.entry != NO_ENTRY {
                return None;
            }
            let id = p.index.likely(slot_hash(w.hash, w.start, false))?;
            Some(id as usize)
        };
        if let Some(i) = self.pending.get(LAG - 2).and_then(likely) {
            p.prefetch_key(i);
        }
        if let Some(i) = self.pending.get(LAG - 1).and_then(likely) {
            prefetch_entry(p, i);
        }
    }

    /// Places every waiting point, in order.
    fn drain(&mut self) {
        while !self.pending.is_empty() {
            self.place_oldest();
        }
    }

    /// Places the oldest waiting point as `add` would have placed it then.
    fn place_oldest(&mut self) {
        let Some(w) = self.pending.pop_front() else {
            return;
        };
        let limits = &self.cfg.limits;
        let p = &mut *self.part;
        let late = w.start <= closed_by(p.max_at, &self.cfg);
        let keep = !(late && self.cfg.late == Late::Drop);
        // An entry a shape record names is this series' own; only its window and lateness
        // may differ. Not looking up, every point gets its own entry: which lines the
        // shape cache knows depends on the blocks its thread saw before.
        let known = !self.unlooked
            && p.entries
                .get(w.entry as usize)
                .is_some_and(|e| e.start == w.start && e.late == late);
        let (i, fresh) = if known {
            (w.entry as usize, false)
        } else {
            let bytes = match w.shape {
                NO_SHAPE => &w.key[..],
                id => self.shapes.extra(id),
            };
            let (key, unit) = bytes.split_at(w.key_len);
            let make = || keep.then(|| State::from_sample(w.sample, limits));
            if self.unlooked {
                (
                    p.push_entry((w.start, late), (w.hash, key), unit, make),
                    true,
                )
            } else {
                p.entry_for((w.start, late), (w.hash, key), unit, make)
            }
        };
        if w.shape != NO_SHAPE {
            let line = self.shapes.data_mut(w.shape);
            (line.block, line.entry) = (self.block, i as u32);
        }
        if let (false, Some(st)) = (fresh, &mut p.states[i]) {
            // The key holds the kind, so the state always takes the sample.
            let taken = st.add_sample(w.sample, limits);
            debug_assert!(taken);
        }
        p.count(i, true);
        p.max_at = p.max_at.max(w.at);
        self.keep_spare(w.key);
    }

    /// Places a point read straight from its line in an entry of its own, its key built
    /// in the block's key bytes: with lookups skipped, nothing is gained by waiting (the
    /// pipeline is empty, `push_pending`), and the key is written once.
    fn place_direct(&mut self, line: &[u8], d: &direct::Direct) {
        debug_assert!(self.pending.is_empty());
        let start = align_down(d.at, self.cfg.window);
        let (cfg, tags, p) = (&self.cfg, &self.tags, &mut *self.part);
        let late = start <= closed_by(p.max_at, cfg);
        let keep = !(late && cfg.late == Late::Drop);
        let build = |keys: &mut Vec<u8>| {
            tags.append_key(line, d, |k| cfg.grouping.keeps_bytes(k), keys);
        };
        let make = || keep.then(|| State::from_sample(d.sample, &cfg.limits));
        let i = p.push_entry_built((start, late), (&self.hasher, build), d.unit, make);
        p.count(i, true);
        p.max_at = p.max_at.max(d.at);
    }

    /// `add` of a simple point read straight from its line (`direct::read`); false when
    /// the line is not one it reads, and nothing was added.
    fn add_direct(&mut self, line: &[u8]) -> bool {
        let Some(d) = direct::read(line, &mut self.tags) else {
            return false;
        };
        (self.last, self.added) = (None, None);
        self.part.points += 1;
        let names = &self.cfg.names;
        // The reader found the name's bytes UTF-8.
        if !names.selects_all() && !names.selects(std::str::from_utf8(d.name).unwrap_or_default()) {
            self.part.filtered += 1;
            return true;
        }
        if self.unlooked {
            self.place_direct(line, &d);
            return true;
        }
        let mut key = self.spare_key();
        let grouping = &self.cfg.grouping;
        self.tags
            .append_key(line, &d, |k| grouping.keeps_bytes(k), &mut key);
        let hash = self.hasher.hash(&key);
        let key_len = key.len();
        key.extend_from_slice(d.unit);
        self.push_pending(Pending {
            key,
            key_len,
            hash,
            shape: NO_SHAPE,
            entry: NO_ENTRY,
            start: align_down(d.at, self.cfg.window),
            at: d.at,
            sample: d.sample,
        });
        true
    }

    /// Adds `m` now: each of its windows looked up in turn.
    fn add_now(&mut self, m: &Metric) {
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
    }
}

impl Combine for Combiner {
    fn begin(&mut self, recycled: Option<Part>) {
        if let Some(part) = recycled.and_then(|p| p.downcast::<Partial>().ok()) {
            self.part = part;
        }
        self.part.clear();
        self.part.ranges.clone_from(&self.ranges);
        self.last = None;
        (self.probe, self.added) = (None, None);
        self.shapes.begin();
        self.block = self.block.wrapping_add(1);
        self.unlooked = self.skip_lookups.load(Ordering::Acquire);
        while let Some(w) = self.pending.pop_front() {
            self.keep_spare(w.key);
        }
    }

    fn add(&mut self, m: &Metric) -> bool {
        self.last = None;
        self.added = None;
        if !order_free(m) {
            self.drain();
            return false;
        }
        self.part.points += 1;
        let simple = simple_sample(m).filter(|_| self.pipelined);
        if !self.cfg.names.selects(&m.name) {
            self.part.filtered += 1;
            self.added = simple.as_ref().map(Simple::of).map(Added::Filtered);
            return true;
        }
        match simple {
            Some(sample) => {
                self.added = Some(Added::Pending(Simple::of(&sample)));
                self.defer(m, sample);
            }
            None => {
                self.drain();
                self.add_now(m);
            }
        }
        true
    }

    fn lines_ahead(&self) -> usize {
        if self.pipelined && !self.shapes.resting() && !self.unlooked {
            AHEAD
        } else {
            0
        }
    }

    fn look_ahead(&mut self, line: &[u8]) {
        self.shapes.look_ahead(line);
    }

    /// Places a line whose shape is known without decoding it, or a simple point written
    /// plainly by reading it straight into its key, as `add` would place it.
    fn add_line(&mut self, line: &[u8]) -> bool {
        self.probe = None;
        if !self.pipelined {
            return false;
        }
        // A stream of many series (`unlooked`) has far more than the cache holds: its
        // lines would only be decoded in full to be learned, for blocks that hit no more.
        if self.shapes.resting() || self.unlooked {
            return self.add_direct(line);
        }
        let (shape, known, value, ts) = match self.shapes.look_up(line) {
            Found::Known(shape, known, value, ts) => (shape, *known, value, ts),
            Found::New(probe) => {
                // Decoded in full, so that its shape is learned.
                self.probe = Some(probe);
                return false;
            }
            Found::Skip => return self.add_direct(line),
        };
        let Some(at) = number_ts(ts) else {
            return false;
        };
        let Some(sample) = known.simple.sample(value, at) else {
            return false;
        };
        self.last = None;
        self.part.points += 1;
        if !known.selected {
            self.part.filtered += 1;
            return true;
        }
        self.push_pending(Pending {
            key: Vec::new(),
            key_len: known.key_len.into(),
            hash: known.hash,
            shape,
            entry: if known.block == self.block {
                known.entry
            } else {
                NO_ENTRY
            },
            start: align_down(at, self.cfg.window),
            at,
            sample,
        });
        true
    }

    fn added_line(&mut self, line: &[u8], spans: &Spans) {
        let (Some(probe), Some(added)) = (self.probe.take(), self.added.take()) else {
            return;
        };
        let (known, key) = match added {
            Added::Filtered(simple) => (KnownLine::new(simple, false, 0, 0), &[][..]),
            Added::Pending(simple) => {
                let Some(w) = self.pending.back() else {
                    return;
                };
                let Ok(key_len) = u16::try_from(w.key_len) else {
                    return;
                };
                (KnownLine::new(simple, true, key_len, w.hash), &w.key[..])
            }
        };
        let shape = self.shapes.learn(line, probe, spans, known, key);
        if let (Some(shape), Added::Pending(_)) = (shape, added) {
            if let Some(w) = self.pending.back_mut() {
                w.shape = shape;
            }
        }
    }

    fn end(&mut self) -> Part {
        self.drain();
        self.shapes.end_block();
        std::mem::take(&mut self.part) as Part
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::config::NameFilter;
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

    /// Lines of several kinds and series, some late, some repeated, in a fixed order.
    fn mixed_lines() -> Vec<String> {
        let mut lines = Vec::new();
        for i in 0..400u64 {
            let series = i * 7 % 13;
            let ts = (i * 37 % 50 + if i % 9 == 0 { 0 } else { 30 }) * 1_000_000_000;
            lines.push(match series % 4 {
                0 => format!(
                    r#"{{"name":"c{series}","kind":"counter","temporality":"delta","value":{i},"ts":{ts}}}"#
                ),
                1 => format!(r#"{{"name":"g{series}","kind":"gauge","value":{}.5,"ts":{ts}}}"#, i % 11),
                2 => format!(
                    r#"{{"name":"d{series}","kind":"distribution","values":[{i}],"sample_rate":0.5,"ts":{ts},"tags":{{"h":"x{}"}}}}"#,
                    i % 3
                ),
                _ => format!(
                    r#"{{"name":"s{series}","kind":"set","values":["m{}"],"ts":{ts}}}"#,
                    i % 5
                ),
            });
        }
        lines
    }

    #[test]
    fn pipelined_combining_builds_the_same_partial() {
        for late in [Late::Drop, Late::Emit] {
            let cfg = AggConfig {
                late,
                ..AggConfig::default()
            };
            let hasher = KeyHasher::random();
            let run = |mut c: Combiner| {
                c.begin(None);
                for l in mixed_lines() {
                    assert!(c.add(&metric(&l)));
                }
                c.end().downcast::<Partial>().unwrap()
            };
            let plain = run(Combiner::new(cfg.clone(), hasher.clone()));
            let mut piped = run(Combiner::pipelined(cfg, hasher));
            let mut plain = plain;
            assert!(
                plain.entries.iter().any(|e| e.late),
                "the lines hold late points"
            );
            assert_eq!(plain.len(), piped.len());
            assert_eq!((plain.points, plain.max_at), (piped.points, piped.max_at));
            for i in 0..plain.len() {
                let (a, b) = (plain.entries[i], piped.entries[i]);
                assert_eq!(plain.key(i), piped.key(i));
                assert_eq!(
                    (a.start, a.late, a.placed, a.first, a.hash),
                    (b.start, b.late, b.placed, b.first, b.hash)
                );
                assert_eq!(plain.take_state(i), piped.take_state(i));
            }
        }
    }

    /// Line templates with `{v}` and `{t}` for value and ts texts: plain shapes, and ones
    /// whose `"value`/`"ts":` bytes also occur where they are not the fields.
    const SHAPED: &[&str] = &[
        r#"{"name":"c","kind":"counter","temporality":"delta","value":{v},"ts":{t},"tags":{"k":"\"ts\":9"}}"#,
        r#"{"name":"g","kind":"gauge","value":{v},"ts":{t},"tags":{"a\"ts":"1","b":"\"value\":2"}}"#,
        r#"{"ts":{t},"name":"g2","value":{v},"kind":"gauge"}"#,
        r#"{"name":"g3","kind":"gauge","value":{v},"value":7,"ts":{t}}"#,
        r#"{"name":"g4","kind":"gauge","value": {v},"ts":{t}}"#,
        r#"{"name":"g5","kind":"gauge","value":{v},"ts":{t},"ts":{t}}"#,
        r#"{"name":"d","kind":"distribution","values":[{v}],"sample_rate":0.1,"ts":{t}}"#,
        r#"{"name":"d2","kind":"distribution","values":[{v},{v}],"ts":{t}}"#,
        r#"{"name":"d3","kind":"distribution","value":3,"values":[{v}],"ts":{t}}"#,
        r#"{"name":"skipped","kind":"counter","temporality":"delta","value":{v},"ts":{t}}"#,
        r#"{"name":"cum","kind":"gauge","unit":"ms","value":{v},"ts":{t},"tags":{"value":"ts"}}"#,
    ];

    /// Value texts, some of which are not plain numbers.
    const VALUES: &[&str] = &[
        "1",
        "-5",
        "2.5",
        "1e3",
        "1.5E-2",
        "-0",
        "18446744073709551615",
        "-9223372036854775808",
        "0.1",
        "\"NaN\"",
        "01",
        "1.",
        "1e",
        "--1",
        "7",
    ];

    fn shaped_lines(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let t = (i as u64 * 997 % 40 + if i % 7 == 0 { 0 } else { 25 }) * 1_000_000_000;
                let t = if i % 31 == 5 {
                    format!("\"{t}\"")
                } else {
                    t.to_string()
                };
                SHAPED[i % SHAPED.len()]
                    .replace("{v}", VALUES[i * 5 % VALUES.len()])
                    .replace("{t}", &t)
            })
            .collect()
    }

    /// Feeds `lines` in blocks of `block` as the stream's decoder threads do: each line
    /// shown ahead, placed by its shape when known, else decoded and added.
    fn feed(c: &mut Combiner, lines: &[String], block: usize) -> Vec<Partial> {
        let mut decoder = Decoder::default();
        let mut parts = Vec::new();
        for chunk in lines.chunks(block) {
            c.begin(None);
            let ahead = c.lines_ahead();
            for l in chunk.iter().take(ahead) {
                c.look_ahead(l.as_bytes());
            }
            for (i, l) in chunk.iter().enumerate() {
                if let Some(next) = chunk.get(i + ahead).filter(|_| ahead > 0) {
                    c.look_ahead(next.as_bytes());
                }
                if c.add_line(l.as_bytes()) {
                    continue;
                }
                let mut m = Metric::default();
                if decoder.decode(l.as_bytes(), &mut m, || 0).is_ok() {
                    assert!(c.add(&m));
                    c.added_line(l.as_bytes(), &decoder.spans());
                }
            }
            parts.push(*c.end().downcast::<Partial>().unwrap());
        }
        parts
    }

    fn same_partials(mut a: Vec<Partial>, mut b: Vec<Partial>) {
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter_mut().zip(b.iter_mut()) {
            assert_eq!(a.len(), b.len());
            assert_eq!(
                (a.points, a.filtered, a.max_at),
                (b.points, b.filtered, b.max_at)
            );
            for i in 0..a.len() {
                let (x, y) = (a.entries[i], b.entries[i]);
                assert_eq!(a.key(i), b.key(i));
                assert_eq!(a.unit(i), b.unit(i));
                assert_eq!(
                    (x.start, x.late, x.placed, x.first, x.hash),
                    (y.start, y.late, y.placed, y.first, y.hash)
                );
                assert_eq!(a.take_state(i), b.take_state(i));
            }
        }
    }

    #[test]
    fn lines_of_known_shapes_build_the_same_partials() {
        let lines = shaped_lines(3000);
        for late in [Late::Drop, Late::Emit] {
            let cfg = AggConfig {
                late,
                names: NameFilter::new(&[], &["skipped".into()]).unwrap(),
                ..AggConfig::default()
            };
            let hasher = KeyHasher::random();
            let mut plain = Combiner::new(cfg.clone(), hasher.clone());
            let mut shaped = Combiner::pipelined(cfg, hasher);
            let want = feed(&mut plain, &lines, 700);
            let got = feed(&mut shaped, &lines, 700);
            assert!(want.iter().any(|p| p.entries.iter().any(|e| e.late)));
            assert!(want.iter().any(|p| p.filtered > 0));
            assert!(
                shaped.shapes.len() >= 5,
                "shapes learned: {}",
                shaped.shapes.len()
            );
            assert!(shaped.spare_keys.len() <= LAG + 1, "spare keys stay few");
            same_partials(want, got);
        }
    }

    #[test]
    fn shapes_are_learned_only_where_the_decoder_found_the_fields() {
        let mut c = Combiner::pipelined(AggConfig::default(), KeyHasher::random());
        let lines: Vec<String> = (0..SHAPED.len() * 40)
            .map(|i| {
                SHAPED[i % SHAPED.len()]
                    .replace("{v}", "4")
                    .replace("{t}", &(i * 1000).to_string())
            })
            .collect();
        feed(&mut c, &lines, 10_000);
        // Learned: c, g, g2, d, skipped, cum. Not: a second value or ts field (g3, g5),
        // whitespace (g4), two values (d2), or both value and values (d3).
        assert_eq!(c.shapes.len(), 6);
    }

    #[test]
    fn a_stream_of_many_series_leaves_the_shape_cache_aside() {
        let line = br#"{"name":"g","kind":"gauge","value":1,"ts":1,"tags":{"h":"a"}}"#;
        let skip = Arc::new(AtomicBool::new(false));
        let mut c = Combiner::pipelined(AggConfig::default(), KeyHasher::random())
            .skip_lookups_after_first(skip.clone());
        c.begin(None);
        // A line the cache has not seen is decoded in full, to be learned.
        assert_eq!(c.lines_ahead(), AHEAD);
        c.look_ahead(line);
        assert!(!c.add_line(line));
        c.end();
        skip.store(true, Ordering::Release);
        c.begin(None);
        assert_eq!(c.lines_ahead(), 0);
        assert!(c.add_line(line), "read straight into its key");
        assert_eq!(c.end().downcast::<Partial>().map(|p| p.len()).ok(), Some(1));
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
