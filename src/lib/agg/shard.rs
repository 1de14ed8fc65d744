//! One key range of the aggregation state: its series, open windows and per-series memory.
//!
//! Shards split the series by ranges of the series key, whose byte order is the output
//! order, so each shard can merge, sort and encode on its own thread and the shards' output
//! concatenated is the output of one. Window timing (the watermark, what is closed) stays
//! with the `Aggregator`, which hands each shard the instant up to which windows are closed.

use super::config::{AggConfig, Idle, Late};
use super::counter::{self, Reading};
use super::emit::Totals;
use super::partial::{Entry, Partial};
use super::series::{prefetch, Lookup, SeriesId, SeriesTable};
use super::state::{IdleKind, State};
use super::AggStats;
use crate::log::RateLimit;
use crate::metric::{Kind, Metric, Temporality, Value};
use std::collections::BTreeMap;

/// One window's states: a small index from group to slot, and the states in the order
/// their groups arrived. With a million series the index stays cache-sized and new states
/// are appended in order, instead of being scattered over a table of 136-byte entries.
#[derive(Default)]
pub struct Window {
    slots: Slots,
    states: Vec<(SeriesId, State)>,
}

impl Window {
    pub fn with_capacity(n: usize) -> Window {
        Window {
            slots: Slots::with_capacity(n),
            states: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub fn get(&self, gid: SeriesId) -> Option<&State> {
        let i = self.slots.get(gid)?;
        Some(&self.states[i as usize].1)
    }

    /// The state of `gid`, made by `make` when the window has none yet (then `true`).
    pub fn entry(&mut self, gid: SeriesId, make: impl FnOnce() -> State) -> (&mut State, bool) {
        let next = self.states.len() as u32;
        let i = self.slots.get_or_insert(gid, next);
        let fresh = i == next;
        if fresh {
            self.states.push((gid, make()));
        }
        (&mut self.states[i as usize].1, fresh)
    }

    pub fn remove(&mut self, gid: SeriesId) -> Option<State> {
        let i = self.slots.remove(gid)? as usize;
        let (_, st) = self.states.swap_remove(i);
        if let Some(&(moved, _)) = self.states.get(i) {
            self.slots.set(moved, i as u32);
        }
        Some(st)
    }

    /// Starts loading the index slot where `gid` is looked up.
    #[inline]
    pub fn prefetch(&self, gid: SeriesId) {
        self.slots.prefetch(gid);
    }

    pub fn ids(&self) -> impl Iterator<Item = SeriesId> + '_ {
        self.states.iter().map(|(gid, _)| *gid)
    }

    /// The states in the order their groups arrived.
    pub fn states_mut(&mut self) -> &mut [(SeriesId, State)] {
        &mut self.states
    }

    /// Empties the window, keeping its room for the next one.
    fn clear(&mut self) {
        self.slots.clear();
        self.states.clear();
    }

    /// The window with every group renumbered by `map` (see `SeriesTable::retain`).
    fn remap(self, map: &[SeriesId]) -> Window {
        let mut w = Window::with_capacity(self.states.len());
        for (gid, st) in self.states {
            let new = map[gid as usize];
            w.slots.get_or_insert(new, w.states.len() as u32);
            w.states.push((new, st));
        }
        w
    }
}

/// A window's index from group to slot: open addressing with linear probing on the group
/// id, at most three quarters full, each cell the id and the slot + 1 (0: empty). Unlike a
/// library table, the cell for a group is known before the lookup, so the merge can ask
/// the CPU to load it a few entries ahead, as it does the series table's slots.
#[derive(Default)]
struct Slots {
    cells: Vec<u64>,
    len: usize,
}

impl Slots {
    fn with_capacity(n: usize) -> Slots {
        Slots {
            cells: vec![0; (n * 4 / 3 + 1).next_power_of_two().max(16)],
            len: 0,
        }
    }

    /// Where the probe for `gid` starts: the high bits of a multiplicative hash, since
    /// group ids are dense and their low bits alone would cluster.
    #[inline]
    fn home(&self, gid: SeriesId) -> usize {
        let mixed = u64::from(gid).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        mixed as usize & (self.cells.len().wrapping_sub(1))
    }

    #[inline]
    fn cell(gid: SeriesId, slot: u32) -> u64 {
        (u64::from(gid) << 32) | u64::from(slot + 1)
    }

    /// The cell index holding `gid`, or the empty cell where it would go.
    #[inline]
    fn find(&self, gid: SeriesId) -> usize {
        let mask = self.cells.len() - 1;
        let mut at = self.home(gid);
        loop {
            let c = self.cells[at];
            if c == 0 || (c >> 32) as u32 == gid {
                return at;
            }
            at = (at + 1) & mask;
        }
    }

    fn get(&self, gid: SeriesId) -> Option<u32> {
        if self.cells.is_empty() {
            return None;
        }
        let c = self.cells[self.find(gid)];
        (c != 0).then(|| (c as u32) - 1)
    }

    /// The slot of `gid`, which becomes `slot` if it had none.
    fn get_or_insert(&mut self, gid: SeriesId, slot: u32) -> u32 {
        if 4 * (self.len + 1) > 3 * self.cells.len() {
            self.grow();
        }
        let at = self.find(gid);
        match self.cells[at] {
            0 => {
                self.cells[at] = Self::cell(gid, slot);
                self.len += 1;
                slot
            }
            c => (c as u32) - 1,
        }
    }

    /// Moves `gid`, which must be present, to `slot`.
    fn set(&mut self, gid: SeriesId, slot: u32) {
        let at = self.find(gid);
        self.cells[at] = Self::cell(gid, slot);
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.cells);
        self.cells = vec![0; (old.len() * 2).max(16)];
        for c in old.into_iter().filter(|&c| c != 0) {
            let at = self.find((c >> 32) as u32);
            self.cells[at] = c;
        }
    }

    /// Removes `gid`, returning its slot. The cells after it in its run move back where
    /// their probes can still reach them (no tombstones to skip later).
    fn remove(&mut self, gid: SeriesId) -> Option<u32> {
        let slot = self.get(gid)?;
        let mask = self.cells.len() - 1;
        let mut hole = self.find(gid);
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let c = self.cells[at];
            if c == 0 {
                break;
            }
            // The cell may fill the hole unless its home lies after the hole, up to it.
            let home = self.home((c >> 32) as u32);
            if (at.wrapping_sub(home) & mask) >= (at.wrapping_sub(hole) & mask) {
                self.cells[hole] = c;
                hole = at;
            }
        }
        self.cells[hole] = 0;
        self.len -= 1;
        Some(slot)
    }

    fn clear(&mut self) {
        self.cells.fill(0);
        self.len = 0;
    }

    #[inline]
    fn prefetch(&self, gid: SeriesId) {
        if let Some(c) = self.cells.get(self.home(gid)) {
            prefetch((c as *const u64).cast());
        }
    }
}

#[derive(Default)]
pub struct Shard {
    /// Groups: the identity output is written under.
    pub groups: SeriesTable,
    /// Whole series, kept apart from groups only when `--by`/`--without` merge series, so
    /// counter readings are still followed per series.
    series: Option<SeriesTable>,
    pub windows: BTreeMap<i64, Window>,
    pub corrections: BTreeMap<i64, Window>,
    /// Per series: the last cumulative counter reading.
    readings: Vec<Option<Reading>>,
    /// Per group: the last absolute gauge value, which a delta gauge adds to.
    gauge_last: Vec<Option<Value>>,
    pub totals: Totals,
    /// Groups in the last window written: new windows start with room for as many.
    pub last_window_len: usize,
    /// A written window's emptied tables, for the next window: fresh tables of a million
    /// series' states would be faulted in anew every window.
    spare: Option<Window>,
    /// Late, refused, rejected points, resets and wraps seen here.
    pub stats: AggStats,
    limit: RateLimit,
    /// Per group, when idle series are reported: its kind and the start of the last window
    /// it got points in.
    activity: Vec<(IdleKind, i64)>,
    /// Groups expired since the table was last compacted.
    expired: usize,
}

impl Shard {
    pub fn new(cfg: &AggConfig, hasher: &super::series::KeyHasher) -> Shard {
        Shard {
            groups: SeriesTable::with_hasher(hasher.clone()),
            series: (!cfg.grouping.is_series()).then(SeriesTable::default),
            ..Shard::default()
        }
    }

    /// Adds one point of group `key` (hashed `hash`) at `at`; windows starting at or before
    /// `closed` were already written.
    pub fn observe(
        &mut self,
        cfg: &AggConfig,
        m: &Metric,
        at: i64,
        (hash, key): (u64, &[u8]),
        closed: i64,
    ) {
        let Some(gid) = self
            .groups
            .intern_hashed(hash, key, &m.unit, cfg.max_series)
        else {
            self.stats.refused += 1;
            warn(&mut self.limit, "series_refused", m, "--max-series reached");
            return;
        };
        let step = self.counter_step(cfg, gid, m);
        let (window, stride) = (cfg.window, cfg.step());
        let mut start = crate::time::align_down(at, stride);
        while start + window > at {
            self.place(cfg, start, gid, m, step, closed);
            start -= stride;
        }
    }

    /// For a cumulative counter: the step from the series' previous reading, if any.
    fn counter_step(
        &mut self,
        cfg: &AggConfig,
        gid: SeriesId,
        m: &Metric,
    ) -> Option<(counter::Step, i64)> {
        if m.kind != Kind::Counter || m.temporality != Some(Temporality::Cumulative) {
            return None;
        }
        let sid = match &mut self.series {
            Some(t) => t.intern(m, &|_| true, usize::MAX)?,
            None => gid,
        } as usize;
        if self.readings.len() <= sid {
            self.readings.resize(sid + 1, None);
        }
        let cur = Reading {
            value: m.value.unwrap_or_default(),
            ts: m.ts,
            start_ts: m.start_ts,
        };
        let prev = self.readings[sid];
        match prev {
            Some(p) if cur.ts <= p.ts => None,
            Some(p) => {
                self.readings[sid] = Some(cur);
                let step = counter::step(&p, &cur, cfg.max_rate)?;
                match step {
                    counter::Step::Reset(_) => self.stats.resets += 1,
                    counter::Step::Wrap { .. } => self.stats.wraps += 1,
                    counter::Step::Increase(_) => {}
                }
                Some((step, p.ts))
            }
            None => {
                self.readings[sid] = Some(cur);
                None
            }
        }
    }

    /// The table a point or entry for the window at `start` goes to.
    fn table(&mut self, start: i64, late: bool) -> &mut Window {
        if late {
            return self.corrections.entry(start).or_default();
        }
        let size = self.last_window_len;
        let spare = &mut self.spare;
        self.windows
            .entry(start)
            .or_insert_with(|| spare.take().unwrap_or_else(|| Window::with_capacity(size)))
    }

    /// Adds the point to the window starting at `start`, or handles it as late.
    fn place(
        &mut self,
        cfg: &AggConfig,
        start: i64,
        gid: SeriesId,
        m: &Metric,
        step: Option<(counter::Step, i64)>,
        closed: i64,
    ) {
        let late = start <= closed;
        if late {
            self.stats.late += 1;
            warn(&mut self.limit, "late_point", m, LATE);
            if cfg.late == Late::Drop {
                return;
            }
        }
        let base = self.gauge_last.get(gid as usize).copied().flatten();
        let table = self.table(start, late);
        let (st, fresh) = table.entry(gid, || State::new(m, base, &cfg.limits));
        if !fresh {
            if let Err(reason) = st.observe(m, &cfg.limits) {
                self.stats.rejected += 1;
                warn(&mut self.limit, "point_rejected", m, reason);
                return;
            }
        }
        if let (State::Cumulative(c), Some((step, from))) = (&mut *st, step) {
            c.add_step(step, from);
        }
        let (last, kind) = (st.gauge_last(), st.idle_kind());
        self.note_gauge(gid, last);
        self.note_activity(cfg, gid, kind, start);
    }

    fn note_activity(&mut self, cfg: &AggConfig, gid: SeriesId, kind: IdleKind, start: i64) {
        if cfg.idle == Idle::Skip {
            return;
        }
        let idx = gid as usize;
        if self.activity.len() <= idx {
            self.activity.resize(idx + 1, (IdleKind::Nothing, i64::MIN));
        }
        let a = &mut self.activity[idx];
        *a = (kind, a.1.max(start));
    }

    /// Adds the idle state of every group that got no points in the window at `start` and
    /// has not been idle past `--expire` (which forgets it).
    fn add_idle(&mut self, cfg: &AggConfig, start: i64, table: &mut Window) {
        let Idle::Report { expire } = cfg.idle else {
            return;
        };
        let end = start.saturating_add(cfg.window);
        for (gid, a) in self.activity.iter_mut().enumerate() {
            if a.0 == IdleKind::Expired || a.1 == i64::MIN || a.1 >= start {
                continue;
            }
            if expire.is_some_and(|e| end.saturating_sub(a.1.saturating_add(cfg.window)) >= e) {
                a.0 = IdleKind::Expired;
                self.expired += 1;
                if let Some(g) = self.gauge_last.get_mut(gid) {
                    *g = None;
                }
                continue;
            }
            let gauge = self.gauge_last.get(gid).copied().flatten();
            if let Some(st) = a.0.state(gauge, end, &cfg.limits) {
                table.entry(gid as SeriesId, || st);
            }
        }
    }

    /// Removes expired groups from the series table once they are at least half of it (and
    /// a few hundred), renumbering the rest, so a daemon whose names keep changing does not
    /// grow without bound.
    pub fn compact(&mut self) {
        if self.expired < 256 || 2 * self.expired < self.groups.len() || self.series.is_some() {
            return;
        }
        let mut keep = vec![true; self.groups.len()];
        for (gid, a) in self.activity.iter().enumerate() {
            if a.0 == IdleKind::Expired {
                keep[gid] = false;
            }
        }
        for w in self.windows.values().chain(self.corrections.values()) {
            for gid in w.ids() {
                keep[gid as usize] = true;
            }
        }
        let map = self.groups.retain(|id| keep[id as usize]);
        for w in self
            .windows
            .values_mut()
            .chain(self.corrections.values_mut())
        {
            *w = std::mem::take(w).remap(&map);
        }
        remap(&mut self.activity, &map);
        remap(&mut self.gauge_last, &map);
        remap(&mut self.totals, &map);
        remap(&mut self.readings, &map);
        self.expired = 0;
    }

    /// Drops the last gauge value of group `gid` (a later `+N` starts from nothing).
    pub fn forget_gauge(&mut self, gid: SeriesId) {
        if let Some(g) = self.gauge_last.get_mut(gid as usize) {
            *g = None;
        }
    }

    fn note_gauge(&mut self, gid: SeriesId, last: Option<Value>) {
        if let Some(last) = last {
            let idx = gid as usize;
            if self.gauge_last.len() <= idx {
                self.gauge_last.resize(idx + 1, None);
            }
            self.gauge_last[idx] = Some(last);
        }
    }

    /// Starts loading what merging an entry hashed `hash` will read, one step per call
    /// (`SeriesTable::prefetch_lookup`); once its id is known, also the group's slot in
    /// the window at `start` and, for a `gauge`, its last value, which the merge writes
    /// and reads at random places of tables as large as the series and the window.
    #[inline]
    pub fn prefetch_merge(&self, hash: u64, start: i64, step: Lookup, gauge: bool) {
        self.groups.prefetch_lookup(hash, step);
        if step != Lookup::Bytes {
            return;
        }
        let Some(id) = self.groups.likely_id(hash) else {
            return;
        };
        if let Some(last) = self.gauge_last.get(id as usize).filter(|_| gauge) {
            crate::prefetch::prefetch_value(last);
        }
        if let Some(w) = self.windows.get(&start) {
            w.prefetch(id);
        }
    }

    /// Merges entry `i` of a block's partial aggregate, whose state was taken out as `st`.
    pub fn merge_entry(
        &mut self,
        cfg: &AggConfig,
        p: &Partial,
        e: &Entry,
        st: Option<State>,
        closed: i64,
    ) {
        let key = p.key_of(e);
        let gid = self
            .groups
            .intern_hashed(e.hash, key, p.unit_of(e), cfg.max_series);
        let Some(gid) = gid else {
            self.stats.refused += u64::from(e.first);
            if e.first > 0 {
                warn_key(&mut self.limit, "series_refused", key, e.start, REFUSED);
            }
            return;
        };
        let late = e.late || e.start <= closed;
        if late {
            self.stats.late += u64::from(e.placed);
            warn_key(&mut self.limit, "late_point", key, e.start, LATE);
            if cfg.late == Late::Drop {
                return;
            }
        }
        let Some(st) = st else {
            return;
        };
        let mut incoming = Some(st);
        let (cur, fresh) = self.table(e.start, late).entry(gid, || {
            incoming
                .take()
                .unwrap_or_else(|| State::Delta(Default::default()))
        });
        if !fresh {
            if let Some(st) = &incoming {
                if cur.merge(st, &cfg.limits).is_err() {
                    self.stats.rejected += u64::from(e.placed);
                    return;
                }
            }
        }
        let (last, kind) = (cur.gauge_last(), cur.idle_kind());
        self.note_gauge(gid, last);
        if !late {
            self.note_activity(cfg, gid, kind, e.start);
        }
    }

    /// Takes the window (or correction) table starting at `start`, idle groups added.
    pub fn take_window(&mut self, cfg: &AggConfig, start: i64, correction: bool) -> Window {
        if correction {
            return self.corrections.remove(&start).unwrap_or_default();
        }
        let Some(mut table) = self.windows.remove(&start) else {
            return Window::default();
        };
        self.add_idle(cfg, start, &mut table);
        self.last_window_len = table.len();
        table
    }

    /// Keeps a written window's tables for the next window (the larger, if one is kept).
    pub fn recycle(&mut self, mut w: Window) {
        if self
            .spare
            .as_ref()
            .is_some_and(|s| s.states.capacity() >= w.states.capacity())
        {
            return;
        }
        w.clear();
        self.spare = Some(w);
    }
}

/// Moves each kept entry of a per-group vector to its new id.
fn remap<T: Default>(v: &mut Vec<T>, map: &[SeriesId]) {
    let kept = map.iter().filter(|&&m| m != SeriesId::MAX).count();
    let mut out: Vec<T> = Vec::with_capacity(kept.min(v.len()));
    for (old, item) in std::mem::take(v).into_iter().enumerate() {
        let new = map.get(old).copied().unwrap_or(SeriesId::MAX);
        if new == SeriesId::MAX {
            continue;
        }
        let new = new as usize;
        if out.len() <= new {
            out.resize_with(new + 1, T::default);
        }
        out[new] = item;
    }
    *v = out;
}

const LATE: &str = "its window was already written";
const REFUSED: &str = "--max-series reached";

/// Logs one dropped or refused point, rate-limited.
pub fn warn(limit: &mut RateLimit, event: &str, m: &Metric, reason: &str) {
    if let Some(suppressed) = limit.allow() {
        crate::log!(
            Warn,
            event,
            name = m.name,
            ts = m.ts,
            reason = reason,
            suppressed = suppressed
        );
    }
}

/// Logs one dropped or refused entry of a partial aggregate, rate-limited.
fn warn_key(limit: &mut RateLimit, event: &str, key: &[u8], window_start: i64, reason: &str) {
    if let Some(suppressed) = limit.allow() {
        let name = key.split(|&b| b == 0).next().unwrap_or_default();
        crate::log!(
            Warn,
            event,
            name = String::from_utf8_lossy(name),
            window_start = window_start,
            reason = reason,
            suppressed = suppressed
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(v: i64) -> State {
        let mut s = super::super::state::Sum::default();
        s.add(Value::I64(v));
        State::Delta(s)
    }

    #[test]
    fn slots_agree_with_a_map_through_inserts_and_removals() {
        let mut slots = Slots::default();
        let mut model = std::collections::HashMap::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct ids, so removals often find what they remove and runs collide.
            let gid = (x % 3000) as SeriesId;
            if x % 3 == 0 {
                assert_eq!(slots.remove(gid), model.remove(&gid), "step {step}");
            } else {
                let want = *model.entry(gid).or_insert(step);
                assert_eq!(slots.get_or_insert(gid, step), want, "step {step}");
            }
            assert_eq!(slots.len, model.len());
        }
        for gid in 0..3000 {
            assert_eq!(slots.get(gid), model.get(&gid).copied(), "{gid}");
        }
        slots.clear();
        assert_eq!(slots.get(7), None);
    }

    #[test]
    fn window_entries_survive_removals_in_any_order() {
        let mut w = Window::default();
        for gid in 0..10 {
            let (_, fresh) = w.entry(gid, || counter(gid as i64));
            assert!(fresh);
        }
        let (_, fresh) = w.entry(3, || counter(99));
        assert!(!fresh, "an existing state is returned, not made again");
        assert_eq!(w.remove(0), Some(counter(0)));
        assert_eq!(w.remove(5), Some(counter(5)));
        assert_eq!(w.remove(5), None);
        assert_eq!(w.len(), 8);
        for gid in [1, 2, 3, 4, 6, 7, 8, 9] {
            assert_eq!(w.get(gid), Some(&counter(gid as i64)), "{gid}");
        }
        let mut ids: Vec<SeriesId> = w.ids().collect();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2, 3, 4, 6, 7, 8, 9]);
        let w = w.remap(&[SeriesId::MAX, 0, 1, 2, 3, SeriesId::MAX, 4, 5, 6, 7]);
        assert_eq!(w.get(7), Some(&counter(9)));
        assert_eq!(w.get(0), Some(&counter(1)));
    }
}
