//! A decoder thread's cache of line shapes (`crate::ndjson::shape`): the lines of simple
//! points it decoded before, each with what it meant, so that a later line of the same
//! shape is placed without being decoded.
//!
//! A few thousand shapes do not fit in a core's own cache, and a lookup reads an index
//! slot, a record and the remembered line, each known only once the one before is loaded.
//! So lines are announced `AHEAD` lines before they are looked up (`look_ahead`), and each
//! of those loads is started a few lines apart, while other lines are placed.

use super::series::{prefetch, prefetch_bytes, same_key, Index};
use crate::ndjson::decode::Spans;
use crate::ndjson::shape::{HoleFinder, Holes};
use foldhash::fast::FixedState;
use std::collections::VecDeque;
use std::hash::BuildHasher;

/// How many lines before its lookup a line is announced, when its index slot is loaded.
pub const AHEAD: usize = 8;

/// How many lines before its lookup its record is loaded, then its bytes.
const RECORD_AT: usize = 5;
const BYTES_AT: usize = 2;

/// A remembered line: its holes, where its bytes and its owner's extra bytes are, and what
/// its owner made of it. One cache line, which a lookup loads ahead.
#[repr(align(64))]
struct Record<T> {
    holes: Holes,
    start: u32,
    line_len: u16,
    extra_len: u16,
    data: T,
}

/// An announced line: its holes and shape hash (`None`: not a line to look up).
type Announced = Option<(Holes, u64)>;

/// What `Shapes::look_up` found.
pub enum Found<'s, T> {
    /// A known shape: its record, what was learned, and the texts of the line's value
    /// and ts.
    Known(u32, &'s T, &'s [u8], &'s [u8]),
    /// A line with holes but an unknown shape: decode it, then `learn` from it.
    New(Probe),
    /// Not a line to look up.
    Skip,
}

/// A line's holes and shape hash, for `Shapes::learn`.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    holes: Holes,
    hash: u64,
}

/// How many blocks the cache rests at most after a block where it did not pay.
const MAX_REST: u32 = 64;

/// Fewer lines than this in a block say nothing about whether the cache pays.
const MIN_LINES: u64 = 256;

/// Bounded: once `capacity` shapes are known it learns no more. A block that misses more
/// lines than it hits (high cardinality, or series that changed) clears it, and it then
/// rests for a number of blocks that doubles each time in a row.
pub struct Shapes<T> {
    finder: HoleFinder,
    hasher: FixedState,
    index: Index,
    records: Vec<Record<T>>,
    bytes: Vec<u8>,
    ahead: VecDeque<Announced>,
    capacity: usize,
    /// This block's lines: with a known shape, whose shape was learned, and the others.
    hits: u64,
    learned: u64,
    misses: u64,
    /// Blocks left to rest, and how long the next rest is.
    resting: u32,
    rest: u32,
}

impl<T: Copy> Shapes<T> {
    pub fn new(capacity: usize) -> Shapes<T> {
        Shapes {
            finder: HoleFinder::default(),
            hasher: FixedState::with_seed(0x0073_6861_7065),
            index: Index::default(),
            records: Vec::new(),
            bytes: Vec::new(),
            ahead: VecDeque::with_capacity(AHEAD + 1),
            capacity,
            hits: 0,
            learned: 0,
            misses: 0,
            resting: 0,
            rest: 1,
        }
    }

    /// Whether the cache sits this block out (see `end_block`): its lines are neither
    /// announced nor looked up.
    pub fn resting(&self) -> bool {
        self.resting > 0
    }

    /// Starts a block: nothing is announced yet.
    pub fn begin(&mut self) {
        self.ahead.clear();
    }

    /// Announces the next line of the block not yet announced, and starts loading what the
    /// lookups of the lines announced before it will read.
    #[inline]
    pub fn look_ahead(&mut self, line: &[u8]) {
        let announced = self.announce(line);
        if let Some((_, hash)) = announced {
            prefetch((self.index.first_slot(hash) as *const u64).cast());
        }
        self.ahead.push_back(announced);
        if let Some(id) = self.likely(RECORD_AT) {
            prefetch((&self.records[id] as *const Record<T>).cast());
        }
        if let Some(id) = self.likely(BYTES_AT) {
            let r = &self.records[id];
            let len = r.line_len as usize + r.extra_len as usize;
            prefetch_bytes(self.bytes.as_ptr().wrapping_add(r.start as usize), len);
        }
    }

    #[inline]
    fn announce(&self, line: &[u8]) -> Announced {
        if self.resting > 0 {
            return None;
        }
        let holes = self.finder.holes(line)?;
        Some((holes, self.hasher.hash_one(holes.around(line))))
    }

    /// The record the line announced `lines` before its lookup probably has (for
    /// prefetching only).
    #[inline]
    fn likely(&self, lines: usize) -> Option<usize> {
        let at = self.ahead.len().checked_sub(AHEAD + 1 - lines)?;
        let (_, hash) = (*self.ahead.get(at)?)?;
        let id = self.index.likely(hash)? as usize;
        (id < self.records.len()).then_some(id)
    }

    /// Looks up the oldest announced line, `line`.
    #[inline]
    pub fn look_up<'s>(&'s mut self, line: &'s [u8]) -> Found<'s, T> {
        let Some(announced) = self.ahead.pop_front() else {
            return Found::Skip;
        };
        if self.resting > 0 {
            return Found::Skip;
        }
        let Some((holes, hash)) = announced else {
            self.misses += 1;
            return Found::Skip;
        };
        let around = holes.around(line);
        let (records, bytes) = (&self.records, &self.bytes);
        let found = self.index.find(hash, |id| {
            let r = &records[id as usize];
            let seen = &bytes[r.start as usize..r.start as usize + r.line_len as usize];
            let [a, b, c] = r.holes.around(seen);
            same_key(a, around[0]) && same_key(b, around[1]) && same_key(c, around[2])
        });
        let Some(id) = found else {
            self.misses += 1;
            return Found::New(Probe { holes, hash });
        };
        self.hits += 1;
        let text = |hole| Holes::text(line, hole);
        Found::Known(
            id,
            &self.records[id as usize].data,
            text(holes.value),
            text(holes.ts),
        )
    }

    /// The extra bytes learned with record `id`.
    #[inline]
    pub fn extra(&self, id: u32) -> &[u8] {
        let r = &self.records[id as usize];
        let start = r.start as usize + r.line_len as usize;
        &self.bytes[start..start + r.extra_len as usize]
    }

    /// What record `id` holds, to change.
    #[inline]
    pub fn data_mut(&mut self, id: u32) -> &mut T {
        &mut self.records[id as usize].data
    }

    /// Learns `line`, decoded with `spans`, as meaning `data` and `extra` (when its holes
    /// are where the decoder found the fields, and there is room): its record.
    pub fn learn(
        &mut self,
        line: &[u8],
        probe: Probe,
        spans: &Spans,
        data: T,
        extra: &[u8],
    ) -> Option<u32> {
        let room = self.records.len() < self.capacity && self.bytes.len() < u32::MAX as usize / 2;
        let (Ok(line_len), Ok(extra_len)) = (u16::try_from(line.len()), u16::try_from(extra.len()))
        else {
            return None;
        };
        if !room || !probe.holes.agree(spans) {
            return None;
        }
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(line);
        self.bytes.extend_from_slice(extra);
        let id = self.records.len() as u32;
        self.records.push(Record {
            holes: probe.holes,
            start,
            line_len,
            extra_len,
            data,
        });
        self.misses = self.misses.saturating_sub(1);
        self.learned += 1;
        let (records, bytes, hasher) = (&self.records, &self.bytes, &self.hasher);
        self.index.insert(probe.hash, id, |i| {
            let r = &records[i as usize];
            let line = &bytes[r.start as usize..r.start as usize + r.line_len as usize];
            hasher.hash_one(r.holes.around(line))
        });
        Some(id)
    }

    /// Ends a block. A block that missed more lines than it hit clears the cache, which then
    /// rests, each rest twice the last; one that hit more than it learned ends that series.
    pub fn end_block(&mut self) {
        let (hits, learned, misses) = (self.hits, self.learned, self.misses);
        (self.hits, self.learned, self.misses) = (0, 0, 0);
        if self.resting > 0 {
            self.resting -= 1;
            return;
        }
        if hits + learned + misses < MIN_LINES {
            return;
        }
        if misses > hits {
            self.clear();
            self.resting = self.rest;
            self.rest = (self.rest * 2).min(MAX_REST);
        } else if hits > learned {
            self.rest = 1;
        }
    }

    fn clear(&mut self) {
        self.index.clear();
        self.records.clear();
        self.bytes.clear();
    }

    /// Shapes known.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Metric;
    use crate::ndjson::Decoder;

    fn line(series: usize, v: u32) -> String {
        format!(r#"{{"name":"s{series}","kind":"gauge","value":{v},"ts":{v}}}"#)
    }

    /// Looks up each line (shown just before), learning the new ones as meaning their series.
    fn run_block(shapes: &mut Shapes<usize>, lines: &[(usize, String)]) -> (usize, usize) {
        let mut decoder = Decoder::default();
        let (mut known, mut new) = (0, 0);
        shapes.begin();
        for (series, l) in lines {
            shapes.look_ahead(l.as_bytes());
            match shapes.look_up(l.as_bytes()) {
                Found::Known(_, &s, value, ts) => {
                    assert_eq!(s, *series);
                    assert_eq!(value, ts);
                    known += 1;
                }
                Found::New(probe) => {
                    let mut m = Metric::default();
                    decoder.decode(l.as_bytes(), &mut m, || 0).unwrap();
                    shapes.learn(l.as_bytes(), probe, &decoder.spans(), *series, b"");
                    new += 1;
                }
                Found::Skip => {}
            }
        }
        shapes.end_block();
        (known, new)
    }

    #[test]
    fn a_record_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Record<[u64; 5]>>(), 64);
    }

    #[test]
    fn known_shapes_are_found_with_their_meaning() {
        let mut shapes = Shapes::new(100);
        let block: Vec<_> = (0..600).map(|i| (i % 50, line(i % 50, i as u32))).collect();
        assert_eq!(run_block(&mut shapes, &block), (550, 50));
        assert_eq!(run_block(&mut shapes, &block), (600, 0));
    }

    #[test]
    fn a_cache_that_does_not_pay_rests_longer_each_time() {
        let mut shapes = Shapes::new(10);
        let mut series = 0;
        let mut next_block = || {
            let block: Vec<_> = (0..300)
                .map(|i| (series + i, line(series + i, 1)))
                .collect();
            series += 300;
            block
        };
        let mut rested = Vec::new();
        for _ in 0..12 {
            let (known, new) = run_block(&mut shapes, &next_block());
            assert_eq!(known, 0);
            rested.push(new == 0);
        }
        // Learns 10 and misses 290: cleared, then rests 1, 2 and 4 blocks in turn.
        let want = [
            false, true, false, true, true, false, true, true, true, true, false, true,
        ];
        assert_eq!(rested, want);
    }
}
