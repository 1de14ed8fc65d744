//! The series table: each distinct (name, tags, kind, temporality) gets a small integer id.
//!
//! The identity is stored once as a compact key whose byte order is the output order (name,
//! then tag pairs, then kind): pieces end in 0x00, and the bytes 0x00/0x01 inside names and
//! tags are escaped as 0x01 0x01 / 0x01 0x02, which keeps both the order and unambiguity.
//! Name and tags are decoded from the key only when a window is written out.

use crate::append::{append, append_within};
use crate::metric::{has_0_or_1, Kind, Metric, Temporality};
use crate::ndjson::encode::LineCache;
use crate::ndjson::scan::{bytes_below, find_zero, word, zero_bytes, LO};
use foldhash::fast::FixedState;
use std::hash::BuildHasher;

pub type SeriesId = u32;

/// Hashes series keys. Decoder threads hash keys for the table, so every copy of a hasher
/// must agree: the seed is chosen once per run (random, so crafted names cannot force
/// collisions) and copied.
#[derive(Clone, Debug)]
pub struct KeyHasher(FixedState);

impl KeyHasher {
    pub fn random() -> KeyHasher {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x0074_6c6d_u64);
        KeyHasher(FixedState::with_seed(seed))
    }

    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.0.hash_one(key)
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher::random()
    }
}

/// Series keys stored back to back in 4 MiB chunks: no allocation per key, and chunks large
/// enough for huge pages (`crate::alloc`), which matters when a million keys are read in
/// random order.
#[derive(Default)]
struct Keys {
    chunks: Vec<Vec<u8>>,
    /// Per key: chunk, start, length.
    spans: Vec<[u32; 3]>,
    bytes: usize,
}

const KEY_CHUNK: usize = 4 << 20;

impl Keys {
    fn len(&self) -> usize {
        self.spans.len()
    }

    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn push(&mut self, key: &[u8]) {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= key.len());
        if !fits {
            self.chunks
                .push(Vec::with_capacity(KEY_CHUNK.max(key.len())));
        }
        let chunk = self.chunks.len() - 1;
        let c = &mut self.chunks[chunk];
        self.spans
            .push([chunk as u32, c.len() as u32, key.len() as u32]);
        c.extend_from_slice(key);
        self.bytes += key.len();
    }

    fn heap_bytes(&self) -> usize {
        self.bytes + self.spans.capacity() * 12
    }
}

impl Keys {
    /// Asks the CPU to start loading key `i`'s location (`Stage::Span`), or its bytes once
    /// the location is likely loaded (`Stage::Bytes`).
    #[inline]
    fn prefetch(&self, i: usize, stage: Stage) {
        let Some(span) = self.spans.get(i) else {
            return;
        };
        match stage {
            Stage::Span => crate::prefetch::prefetch_value(span),
            Stage::Bytes => {
                let [chunk, start, len] = *span;
                if let Some(c) = self.chunks.get(chunk as usize) {
                    prefetch_bytes(c.as_ptr().wrapping_add(start as usize), len as usize);
                }
            }
        }
    }
}

/// Key equality without a library call: keys are tens of bytes, where the call and its
/// length dispatch cost as much as the comparison. Reads 16 bytes at a time, the last
/// block overlapping the one before.
#[inline]
pub fn same_key(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 16 {
        return same_short(a, b);
    }
    let block =
        |s: &[u8], at: usize| u128::from_ne_bytes(s[at..at + 16].try_into().unwrap_or([0; 16]));
    let mut at = 0;
    while at + 16 <= n {
        if block(a, at) != block(b, at) {
            return false;
        }
        at += 16;
    }
    at == n || block(a, n - 16) == block(b, n - 16)
}

/// `same_key` for two slices of one length below 16, also without a library call (units
/// are compared for every entry of a block, and are mostly empty or a few bytes): the
/// first and the last 8 or 4 bytes, overlapping, or byte by byte below 4.
#[inline]
fn same_short(a: &[u8], b: &[u8]) -> bool {
    fn ends<const N: usize>(s: &[u8]) -> Option<(&[u8; N], &[u8; N])> {
        Some((s.first_chunk::<N>()?, s.last_chunk::<N>()?))
    }
    if let (Some(x), Some(y)) = (ends::<8>(a), ends::<8>(b)) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (ends::<4>(a), ends::<4>(b)) {
        return x == y;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// The steps of `SeriesTable::prefetch_lookup`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Slot,
    Span,
    Bytes,
}

/// Which part of a key to prefetch.
#[derive(Clone, Copy)]
pub enum Stage {
    Span,
    Bytes,
}

pub(crate) use crate::prefetch::{prefetch, prefetch_bytes};

impl std::ops::Index<usize> for Keys {
    type Output = [u8];

    #[inline]
    fn index(&self, i: usize) -> &[u8] {
        let [chunk, start, len] = self.spans[i];
        let (start, len) = (start as usize, len as usize);
        &self.chunks[chunk as usize][start..start + len]
    }
}

/// Open addressing with linear probing, at most three quarters full: per slot the high half
/// of a hash and an id + 1 (0: empty). Unlike a library table, its slot for a hash is known
/// before the lookup, so a caller can ask the CPU to load it a few entries ahead. Used for
/// the series table and for the partial aggregates of blocks.
pub(crate) struct Index {
    slots: Vec<u64>,
    len: usize,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            slots: vec![0; 64],
            len: 0,
        }
    }
}

impl Index {
    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline]
    fn tag(hash: u64) -> u64 {
        hash & 0xffff_ffff_0000_0000
    }

    /// Empties the index, keeping its size.
    pub(crate) fn clear(&mut self) {
        self.slots.fill(0);
        self.len = 0;
    }

    /// The id whose slot matches `hash` and for which `same` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, same: impl Fn(SeriesId) -> bool) -> Option<SeriesId> {
        let mask = self.mask();
        let mut at = hash as usize & mask;
        loop {
            let v = self.slots[at];
            if v == 0 {
                return None;
            }
            if v & 0xffff_ffff_0000_0000 == Self::tag(hash) {
                let id = (v as u32).wrapping_sub(1);
                if same(id) {
                    return Some(id);
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds `id`; `rehash` gives the hash of every smaller id when the index must grow.
    pub(crate) fn insert(&mut self, hash: u64, id: SeriesId, rehash: impl Fn(SeriesId) -> u64) {
        if 4 * (self.len + 1) > 3 * self.slots.len() {
            let mut bigger = Index {
                slots: vec![0; self.slots.len() * 2],
                len: 0,
            };
            for i in 0..id {
                bigger.place(rehash(i), i);
            }
            *self = bigger;
        }
        self.place(hash, id);
    }

    fn place(&mut self, hash: u64, id: SeriesId) {
        let mask = self.mask();
        let mut at = hash as usize & mask;
        while self.slots[at] != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = Self::tag(hash) | u64::from(id + 1);
        self.len += 1;
    }

    /// The first slot a lookup of `hash` reads, for prefetching.
    #[inline]
    pub(crate) fn first_slot(&self, hash: u64) -> &u64 {
        &self.slots[hash as usize & self.mask()]
    }

    /// The id `hash` probably has, from the first few slots its lookup reads, which are
    /// usually in the cache line of its first (for prefetching only).
    #[inline]
    pub(crate) fn likely(&self, hash: u64) -> Option<SeriesId> {
        let mask = self.mask();
        let first = hash as usize & mask;
        for step in 0..4 {
            let v = self.slots[(first + step) & mask];
            if v == 0 {
                return None;
            }
            if v & 0xffff_ffff_0000_0000 == Self::tag(hash) {
                return Some((v as u32).wrapping_sub(1));
            }
        }
        None
    }

    fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[derive(Default)]
pub struct SeriesTable {
    index: Index,
    keys: Keys,
    /// Each key's hash, so growing the index never reads the keys again.
    hashes: Vec<u64>,
    units: Vec<u16>,
    /// One bit per series: set when its key holds no byte JSON escapes (`json_plain`), so
    /// writing it needs no check (a bit per series stays in the CPU's caches).
    plain: Vec<u64>,
    unit_names: Vec<Box<str>>,
    hasher: KeyHasher,
    scratch: Vec<u8>,
    /// Position of each series in output order; recomputed when series were added.
    rank: Vec<u32>,
    /// Series ids in output order (the inverse of `rank`), each with its key's prefix.
    order: Vec<Ranked>,
    ranked: usize,
}

#[inline(always)]
fn push_escaped(key: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    if has_0_or_1(b) {
        push_escaped_slow(key, b);
    } else {
        append(key, b);
        key.push(0);
    }
}

#[cold]
fn push_escaped_slow(key: &mut Vec<u8>, b: &[u8]) {
    for &c in b {
        match c {
            0 => key.extend_from_slice(&[1, 1]),
            1 => key.extend_from_slice(&[1, 2]),
            c => key.push(c),
        }
    }
    key.push(0);
}

fn unescape(piece: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < piece.len() {
        if piece[i] == 1 {
            out.push(piece.get(i + 1).map_or(0, |&c| c - 1));
            i += 2;
        } else {
            out.push(piece[i]);
            i += 1;
        }
    }
}

pub fn trailer(kind: Kind, t: Option<Temporality>) -> [u8; 2] {
    // A delta gauge (statsd `+N|g`) changes the same series as absolute values do.
    let t = if kind == Kind::Gauge { None } else { t };
    let t = match t {
        None => 0,
        Some(Temporality::Delta) => 1,
        Some(Temporality::Cumulative) => 2,
    };
    // Offset by 2 so the trailer never looks like a separator or an escape.
    [kind as u8 + 2, t + 2]
}

/// Builds the identity key of `m`'s series, keeping only tags `keep` accepts.
pub fn series_key(m: &Metric, keep: &dyn Fn(&str) -> bool, key: &mut Vec<u8>) {
    key.clear();
    append_series_key(m, keep, key);
}

/// Appends the identity key of `m`'s series to `key`.
pub fn append_series_key(m: &Metric, keep: &dyn Fn(&str) -> bool, key: &mut Vec<u8>) {
    // Room for every piece unescaped, so the appends below do not grow the buffer one by one.
    key.reserve(m.name.len() + m.tags.text_len() + 3);
    push_escaped(key, &m.name);
    if let Some(tags) = m.tags.terminated() {
        for (k, piece) in tags {
            if keep(k) {
                append(key, piece);
            }
        }
    } else {
        for (k, v) in m.tags.iter() {
            if keep(k) {
                push_escaped(key, k);
                push_escaped(key, v);
            }
        }
    }
    key.extend_from_slice(&trailer(m.kind, m.temporality));
}

/// Appends one piece of a key (a name, a tag's key or value) that holds no byte 0 or 1,
/// which would need escaping, and its terminator.
#[inline(always)]
pub fn push_key_piece(key: &mut Vec<u8>, piece: &[u8]) {
    debug_assert!(!has_0_or_1(piece));
    append(key, piece);
    key.push(0);
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
        let id = self.intern_key(&key, &m.unit, max);
        self.scratch = key;
        id
    }

    /// Keeps only the series `keep` accepts, renumbered in their order; returns each old
    /// id's new id (`SeriesId::MAX` for a removed one).
    pub fn retain(&mut self, keep: impl Fn(SeriesId) -> bool) -> Vec<SeriesId> {
        let mut map = vec![SeriesId::MAX; self.len()];
        let mut t = SeriesTable::with_hasher(self.hasher.clone());
        t.unit_names = std::mem::take(&mut self.unit_names);
        for (id, new_id) in map.iter_mut().enumerate() {
            if !keep(id as SeriesId) {
                continue;
            }
            let new = t.keys.len() as SeriesId;
            let hash = self.hashes[id];
            t.keys.push(&self.keys[id]);
            t.hashes.push(hash);
            t.units.push(self.units[id]);
            t.push_plain(self.is_plain(id as SeriesId));
            let hashes = &t.hashes;
            t.index.insert(hash, new, |i| hashes[i as usize]);
            *new_id = new;
        }
        *self = t;
        map
    }

    pub fn with_hasher(hasher: KeyHasher) -> SeriesTable {
        SeriesTable {
            hasher,
            ..SeriesTable::default()
        }
    }

    /// The id of an already built key.
    pub fn intern_key(&mut self, key: &[u8], unit: &str, max: usize) -> Option<SeriesId> {
        self.intern_hashed(self.hasher.hash(key), key, unit, max)
    }

    /// The id of a key whose hash (by this table's `KeyHasher`) is known.
    pub fn intern_hashed(
        &mut self,
        hash: u64,
        key: &[u8],
        unit: &str,
        max: usize,
    ) -> Option<SeriesId> {
        let keys = &self.keys;
        if let Some(id) = self
            .index
            .find(hash, |id| same_key(&keys[id as usize], key))
        {
            return Some(id);
        }
        if self.keys.len() >= max {
            return None;
        }
        let id = self.keys.len() as SeriesId;
        self.keys.push(key);
        self.hashes.push(hash);
        let unit = self.unit_id(unit);
        self.units.push(unit);
        self.push_plain(json_plain(&key[..key.len().saturating_sub(2)]));
        let hashes = &self.hashes;
        self.index.insert(hash, id, |i| hashes[i as usize]);
        Some(id)
    }

    fn unit_id(&mut self, unit: &str) -> u16 {
        unit_index(&mut self.unit_names, unit.as_bytes())
    }

    /// Records whether the series just added (the last) has a plain key.
    fn push_plain(&mut self, plain: bool) {
        let id = self.units.len() - 1;
        if id % 64 == 0 {
            self.plain.push(0);
        }
        if let Some(word) = self.plain.last_mut() {
            *word |= u64::from(plain) << (id % 64);
        }
    }

    fn is_plain(&self, id: SeriesId) -> bool {
        let id = id as usize;
        self.plain
            .get(id / 64)
            .is_some_and(|w| w >> (id % 64) & 1 == 1)
    }

    /// Starts loading what `describe(id)` will read: keys are read in output order, which
    /// is random in memory, so the encoder asks a few series ahead.
    #[inline]
    pub fn prefetch(&self, id: SeriesId, stage: Stage) {
        self.keys.prefetch(id as usize, stage);
        // The unit index is read with the key; `wrapping_add` keeps an id out of range (no
        // series) a harmless hint.
        if let Stage::Span = stage {
            prefetch(self.units.as_ptr().wrapping_add(id as usize).cast());
        }
    }

    /// Starts loading what looking up a key hashed `hash` will read, one step per call, a
    /// few entries apart: its slot, then the location of the key found there, then its
    /// bytes (each step reads what the one before asked for).
    #[inline]
    pub fn prefetch_lookup(&self, hash: u64, step: Lookup) {
        if step == Lookup::Slot {
            return prefetch(self.index.first_slot(hash) as *const u64 as *const u8);
        }
        let Some(id) = self.index.likely(hash) else {
            return;
        };
        let id = id as usize;
        let stage = if step == Lookup::Span {
            Stage::Span
        } else {
            Stage::Bytes
        };
        self.keys.prefetch(id, stage);
    }

    /// The id the first slot for `hash` probably names, for prefetching what belongs to it.
    #[inline]
    pub fn likely_id(&self, hash: u64) -> Option<SeriesId> {
        self.index.likely(hash)
    }

    /// Fills name, kind, temporality, unit and tags of `m` from series `id`.
    pub fn describe(&self, id: SeriesId, m: &mut Metric) {
        let body = self.describe_kind_and_unit(id, m);
        m.name.clear();
        // Without escapes, the tag part of a key is already in the form `Tags` stores.
        if memchr::memchr(1, body).is_none() {
            if let Ok(text) = std::str::from_utf8(body) {
                let name_end = text.find('\0').unwrap_or(text.len());
                m.name.push_str(&text[..name_end]);
                m.tags
                    .set_terminated(text.get(name_end + 1..).unwrap_or_default());
                return;
            }
        }
        let mut pieces = body[..body.len().saturating_sub(1)].split(|&b| b == 0);
        with_piece(pieces.next().unwrap_or_default(), |s| m.name.push_str(s));
        m.tags.clear();
        while let (Some(k), Some(v)) = (pieces.next(), pieces.next()) {
            with_piece(k, |k| with_piece(v, |v| m.tags.push(k, v)));
        }
    }

    /// Fills kind, temporality and unit of `m` from series `id`; returns the key without
    /// its kind trailer (the name and tag pieces).
    fn describe_kind_and_unit(&self, id: SeriesId, m: &mut Metric) -> &[u8] {
        let key = &self.keys[id as usize];
        let (body, tail) = key.split_at(key.len() - 2);
        m.kind = Kind::ALL
            .get(tail[0] as usize - 2)
            .copied()
            .unwrap_or(Kind::Gauge);
        m.temporality = match tail[1] {
            3 => Some(Temporality::Delta),
            4 => Some(Temporality::Cumulative),
            _ => None,
        };
        m.unit.clear();
        m.unit.push_str(
            self.unit_names
                .get(self.units[id as usize] as usize)
                .map_or("", |u| u),
        );
        body
    }

    /// Like `describe`, except that the tags go to `cache.tags` as the JSON object
    /// `encode::write_tags` writes (nothing without tags) and `m.tags` is left empty: the
    /// encoder of a window writes them from the key, without building `Tags`. Sets
    /// `cache.name_plain` when the name holds no byte JSON escapes.
    ///
    /// Series written one after another often share their tags (in key order, the series
    /// of one host whose name starts with it): when a plain key's tags are the bytes the
    /// cached JSON was made from, it is kept as it is.
    pub fn describe_json(&self, id: SeriesId, m: &mut Metric, cache: &mut LineCache) {
        m.tags.clear();
        let body = self.describe_kind_and_unit(id, m);
        // Most keys hold nothing JSON escapes and no key escapes: their pieces are the JSON
        // strings' contents as they are.
        if self.is_plain(id) {
            let name_end = find_zero(body).unwrap_or(body.len());
            if let Ok(name) = std::str::from_utf8(&body[..name_end]) {
                m.name.clear();
                m.name.push_str(name);
                let tags = body.get(name_end + 1..).unwrap_or_default();
                if !same_key(tags, &cache.tags_source) || cache.tags_source.is_empty() {
                    cache.tags.clear();
                    write_plain_tags(body, name_end + 1, &mut cache.tags);
                    cache.tags_source.clear();
                    cache.tags_source.extend_from_slice(tags);
                }
                cache.name_plain = true;
                return;
            }
        }
        self.describe(id, m);
        cache.tags.clear();
        cache.tags_source.clear();
        if !m.tags.is_empty() {
            crate::ndjson::encode::write_tags(&mut cache.tags, m.tags.iter());
        }
        m.tags.clear();
        cache.name_plain = false;
    }

    /// Sorts `ids` into output order: name, then tags, then kind.
    pub fn sort(&mut self, ids: &mut [SeriesId]) {
        self.rank_new_series();
        let rank = &self.rank;
        ids.sort_unstable_by_key(|&id| rank[id as usize]);
    }

    /// `items` in output order by their series, as references: a window's states stay
    /// where they are (moving 80-byte states twice cost more than sorting), and only the
    /// ranks with the items' positions (8 bytes each) are sorted.
    pub fn sorted_by_rank<'a, T>(
        &mut self,
        items: &'a mut [(SeriesId, T)],
    ) -> Vec<(SeriesId, &'a mut T)> {
        self.rank_new_series();
        let rank = &self.rank;
        let mut order: Vec<u64> = items
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (u64::from(rank[*id as usize]) << 32) | i as u64)
            .collect();
        sort_by_rank(&mut order, usize::BITS - self.keys.len().leading_zeros());
        let mut slots: Vec<Option<(SeriesId, &'a mut T)>> =
            items.iter_mut().map(|(id, t)| Some((*id, t))).collect();
        let mut sorted = Vec::with_capacity(order.len());
        sorted.extend(
            order
                .iter()
                .filter_map(|&o| slots[o as u32 as usize].take()),
        );
        sorted
    }

    /// Brings the output-order ranks up to date: series added since the last call are sorted
    /// among themselves and merged into the existing order, so a stream whose series keep
    /// appearing pays for a merge per window, not a full sort.
    fn rank_new_series(&mut self) {
        if self.ranked == self.keys.len() {
            return;
        }
        let keys = &self.keys;
        let cmp = |a: &Ranked, b: &Ranked| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| keys[a.2 as usize].cmp(&keys[b.2 as usize]))
        };
        // New keys were stored one after another, so reading their prefixes is sequential.
        let mut fresh: Vec<Ranked> = (self.ranked..keys.len())
            .map(|id| {
                let (prefix, tail) = key_prefix(&keys[id]);
                (prefix, tail, id as SeriesId)
            })
            .collect();
        fresh.sort_unstable_by(cmp);
        let moved = merge_into(&mut self.order, &fresh, |a, b| cmp(a, b).is_le());
        self.rank.resize(keys.len(), 0);
        for (pos, &(_, _, id)) in self.order.iter().enumerate().skip(moved) {
            self.rank[id as usize] = pos as u32;
        }
        self.ranked = keys.len();
    }

    /// Approximate heap bytes held, for the bytes-per-series report.
    pub fn heap_bytes(&self) -> usize {
        self.keys.heap_bytes()
            + self.index.capacity() * 8
            + self.units.capacity() * 2
            + self.plain.capacity() * 8
            + self.hashes.capacity() * 8
            + self.rank.capacity() * 4
            + self.order.capacity() * std::mem::size_of::<Ranked>()
    }
}

/// Sorts `order` by its high 32 bits, ranks below `2^bits` that are all different: in radix
/// passes of 11 bits when there are many, each two sequential reads and a scatter, where a
/// comparison sort of a large window cost several times more.
fn sort_by_rank(order: &mut Vec<u64>, bits: u32) {
    const DIGIT: u32 = 11;
    const MASK: u64 = (1 << DIGIT) - 1;
    if order.len() < 4096 {
        order.sort_unstable();
        return;
    }
    let mut other = vec![0u64; order.len()];
    for shift in (32..32 + bits).step_by(DIGIT as usize) {
        let digit = |x: u64| ((x >> shift) & MASK) as usize;
        let mut at = [0usize; 1 << DIGIT];
        for &x in order.iter() {
            at[digit(x)] += 1;
        }
        let mut sum = 0;
        for slot in at.iter_mut() {
            (*slot, sum) = (sum, sum + *slot);
        }
        for &x in order.iter() {
            let d = digit(x);
            other[at[d]] = x;
            at[d] += 1;
        }
        std::mem::swap(order, &mut other);
    }
}

/// A series in output order: its key's first 20 bytes (see `key_prefix`) and its id, in
/// 24 bytes.
type Ranked = ([u64; 2], u32, SeriesId);

/// A key's first eight bytes as a big-endian number, zero-padded: keys of different
/// prefixes order as their prefixes do (a zero pad sorts like the end of a shorter key,
/// so equal prefixes decide nothing).
#[inline]
pub(crate) fn prefix8(key: &[u8]) -> u64 {
    match key.first_chunk::<8>() {
        Some(first) => u64::from_be_bytes(*first),
        None => key_prefix(key).0[0],
    }
}

/// The first 20 bytes of a key, zero-padded, as big-endian words. Keys whose prefixes
/// differ compare as their prefixes do, so sorting reads a key's bytes only on a tie: a
/// million keys in random memory would otherwise cost a cache miss per comparison. 20
/// bytes fill what an id leaves of 24, and reach past a host and the start of a metric
/// name (`api0167.http.request_…`): at a million series, 10% of neighbours in output
/// order tie on them, where 29% tied on 16.
fn key_prefix(key: &[u8]) -> ([u64; 2], u32) {
    let mut b = [0u8; 20];
    let n = key.len().min(20);
    b[..n].copy_from_slice(&key[..n]);
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_be_bytes(w)
    };
    let tail = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
    ([word(0), word(8)], tail)
}

/// Whether the key pieces `body` hold no byte JSON escapes (`"`, `\`, below 0x20) other
/// than the 0x00 piece ends; with no 0x01 either, they hold no key escapes.
#[inline]
fn json_plain(body: &[u8]) -> bool {
    let special = |w: u64| {
        (bytes_below(w, 0x20) & !zero_bytes(w))
            | zero_bytes(w ^ (LO * b'"' as u64))
            | zero_bytes(w ^ (LO * b'\\' as u64))
    };
    let mut words = body.chunks_exact(8);
    let mut found = 0;
    for w in &mut words {
        found |= special(word(w));
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    found |= special(word(&last));
    found == 0
}

/// Writes the tag pieces of a key that `json_plain` accepts (`k\0v\0…`, in `key` from
/// `at`) as a JSON object, or nothing when there are none.
fn write_plain_tags(key: &[u8], mut at: usize, out: &mut Vec<u8>) {
    if at >= key.len() {
        return;
    }
    // Each 0x00 becomes at most three bytes (`":"` or `","`), and a piece's copy may write
    // 16 bytes before it is cut to length.
    out.reserve((key.len() - at) * 3 + 18);
    out.extend_from_slice(b"{\"");
    let mut value = false;
    while let Some(len) = key.get(at..).and_then(find_zero) {
        append_within(out, key, at..at + len);
        out.extend_from_slice(if value { b"\",\"" } else { b"\":\"" });
        value = !value;
        at += len + 1;
    }
    // The last value's `","` becomes `"}`.
    out.truncate(out.len() - 2);
    out.push(b'}');
}

/// Calls `f` with a key piece as text, unescaping only when the piece holds an escape.
/// The index of `unit` in a small list of distinct units, added if new (the few units of a
/// stream are stored once, not per series; past 65535 distinct units, the first is used).
pub fn unit_index(units: &mut Vec<Box<str>>, unit: &[u8]) -> u16 {
    if let Some(i) = units.iter().position(|u| same_key(u.as_bytes(), unit)) {
        return i as u16;
    }
    if units.len() >= u16::MAX as usize {
        return 0;
    }
    // Units come from decoded text: their bytes are UTF-8.
    units.push(String::from_utf8_lossy(unit).into());
    (units.len() - 1) as u16
}

/// Merges the sorted `fresh` into the sorted `all` in place, from the back, and returns
/// the first position that changed (ranks before it stay). In place, so the order is not
/// held twice while it grows. Each new item's place is found by galloping down from the
/// last one's: a few new series among a million old ones would otherwise cost a binary
/// search of cache misses each, and many new ones find their places a few items apart.
fn merge_into<T: Copy>(all: &mut Vec<T>, fresh: &[T], le: impl Fn(&T, &T) -> bool) -> usize {
    if fresh.is_empty() {
        return all.len();
    }
    // Room grows by at least an eighth, so a stream whose series keep arriving does not
    // copy the whole order at every window; pages of the room not yet used cost nothing.
    all.reserve_exact(fresh.len().max(all.len() / 8));
    let mut end = all.len();
    all.extend_from_slice(fresh);
    for (k, f) in fresh.iter().enumerate().rev() {
        let at = gallop_back(&all[..end], |o| le(o, f));
        all.copy_within(at..end, at + k + 1);
        all[at + k] = *f;
        end = at;
    }
    end
}

/// The number of leading items of `items` for which `before` holds (they are a prefix),
/// searched from the end in doubling steps, then by bisection.
fn gallop_back<T>(items: &[T], before: impl Fn(&T) -> bool) -> usize {
    let mut hi = items.len();
    let mut step = 1;
    loop {
        let Some(probe) = hi.checked_sub(step) else {
            return items[..hi].partition_point(&before);
        };
        if before(&items[probe]) {
            return probe + 1 + items[probe + 1..hi].partition_point(&before);
        }
        hi = probe;
        step *= 2;
    }
}

fn with_piece(piece: &[u8], f: impl FnOnce(&str)) {
    if piece.contains(&1) {
        let mut buf = Vec::with_capacity(piece.len());
        unescape(piece, &mut buf);
        f(utf8(&buf));
    } else {
        f(utf8(piece));
    }
}

fn utf8(b: &[u8]) -> &str {
    // Keys are built from `&str` pieces; escaping and separators never split a character.
    std::str::from_utf8(b).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Value;

    #[test]
    fn radix_order_is_the_comparison_order() {
        let mut rng = crate::rng::XorShift::seeded();
        for (n, bits) in [(10, 4), (5000, 13), (20_000, 20), (70_000, 23), (9000, 32)] {
            let mut ranks: Vec<u64> = (0..n as u64)
                .map(|r| r * ((1u64 << bits) / n as u64))
                .collect();
            for i in (1..ranks.len()).rev() {
                ranks.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            let mut order: Vec<u64> = ranks
                .iter()
                .enumerate()
                .map(|(i, r)| r << 32 | i as u64)
                .collect();
            let mut want = order.clone();
            want.sort_unstable();
            sort_by_rank(&mut order, bits);
            assert_eq!(order, want, "{n} ranks of {bits} bits");
        }
    }

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
    fn described_tags_work_like_pushed_ones() {
        let mut t = SeriesTable::default();
        for m in [
            Metric::gauge("bare", Value::U64(1), 0),
            Metric::gauge("n", Value::U64(1), 0)
                .with_tag("empty", "")
                .with_tag("a_rather_long_key", "v")
                .with_tag("b", "ü"),
        ] {
            let id = t.intern(&m, &all, 10).unwrap();
            let mut out = Metric::default().with_tag("stale", "x");
            t.describe(id, &mut out);
            assert_eq!(out.name, m.name);
            assert_eq!(out.tags, m.tags);
            let pairs: Vec<_> = out.tags.iter().collect();
            assert_eq!(pairs, m.tags.iter().collect::<Vec<_>>());
            for (k, v) in m.tags.iter() {
                assert_eq!(out.tags.get(k), Some(v));
            }
            assert_eq!(out.tags.get("stale"), None);
        }
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
    fn keys_are_the_same_however_tags_were_stored() {
        // Tags pushed with 0x00 or 0x01 somewhere are escaped piece by piece; the others
        // go in as stored. Either way each piece must come out as if escaped alone.
        for low in ["", "\u{0}", "\u{1}"] {
            let m = Metric::gauge("n", Value::U64(1), 0)
                .with_tag("host", "abcdefghijklmnopqrstuvwxyz0123456789")
                .with_tag("dc", &format!("a{low}"))
                .with_tag("e", "");
            let mut key = Vec::new();
            series_key(&m, &|k| k != "e", &mut key);
            let mut want = b"n\0".to_vec();
            want.extend_from_slice(b"dc\0a");
            want.extend_from_slice(match low {
                "" => &[][..],
                "\u{0}" => &[1, 1],
                _ => &[1, 2],
            });
            want.extend_from_slice(b"\0host\0abcdefghijklmnopqrstuvwxyz0123456789\0");
            want.extend_from_slice(&trailer(Kind::Gauge, None));
            assert_eq!(key, want, "{low:?}");
        }
    }

    #[test]
    fn pieces_are_escaped_and_ended_at_every_length() {
        for n in 0..40 {
            let text: String = (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            for with in ["", "\u{0}", "\u{1}"] {
                let s = format!("{text}{with}");
                let mut key = vec![7];
                push_escaped(&mut key, &s);
                let mut want = vec![7];
                want.extend_from_slice(text.as_bytes());
                want.extend_from_slice(match with {
                    "" => &[][..],
                    "\u{0}" => &[1, 1],
                    _ => &[1, 2],
                });
                want.push(0);
                assert_eq!(key, want, "{s:?}");
            }
        }
    }

    #[test]
    fn control_bytes_round_trip_and_keep_order() {
        let mut t = SeriesTable::default();
        let m = Metric::gauge("a\u{0}b\u{1}", Value::U64(1), 0).with_tag("k\u{0}", "\u{1}v");
        let id = t.intern(&m, &all, 10).unwrap();
        let other = t
            .intern(
                &Metric::gauge("a", Value::U64(1), 0).with_tag("k", "v"),
                &all,
                10,
            )
            .unwrap();
        assert_ne!(id, other);
        let mut out = Metric::default();
        t.describe(id, &mut out);
        assert_eq!(
            (out.name.as_str(), out.tags.clone()),
            (m.name.as_str(), m.tags.clone())
        );
    }

    /// Name, kind, temporality, unit and tags JSON by `describe` then `write_tags`.
    fn described_json(t: &SeriesTable, id: SeriesId) -> (Metric, Vec<u8>) {
        let mut m = Metric::default();
        t.describe(id, &mut m);
        let mut tags = Vec::new();
        if !m.tags.is_empty() {
            crate::ndjson::encode::write_tags(&mut tags, m.tags.iter());
        }
        m.tags.clear();
        (m, tags)
    }

    #[test]
    fn json_from_the_key_is_what_describe_then_encode_write() {
        let long = "x".repeat(40);
        let tricky = [
            ("plain.name", vec![("host", "a"), ("dc", "fra")]),
            ("plain.same", vec![("host", "a"), ("dc", "fra")]),
            ("plain.other", vec![("host", "b"), ("dc", "fra")]),
            ("no.tags", vec![]),
            ("q\"uote", vec![("k\"", "v\\")]),
            ("tab\tname", vec![("nl", "a\nb"), ("cr", "\r")]),
            ("uni\u{e9}\u{4e2d}", vec![("h\u{e9}", "\u{4e2d}\u{6587}")]),
            ("c\u{1}one", vec![("a\u{1}b", "c\u{0}d"), ("z", "\u{2}")]),
            ("d\u{7f}el", vec![("", ""), ("e", "")]),
            (
                long.as_str(),
                vec![(long.as_str(), long.as_str()), ("ab", "c")],
            ),
        ];
        let mut t = SeriesTable::default();
        // One cache for the series in turn, as a window's encoder has: consecutive series
        // with the same tags keep their JSON, others must not.
        let mut shared = LineCache::default();
        for (name, tags) in &tricky {
            for kind in [Kind::Counter, Kind::Gauge] {
                let mut m = Metric::gauge(name, Value::U64(1), 0).with_unit("m\"s");
                m.kind = kind;
                m.temporality = Some(Temporality::Delta);
                for (k, v) in tags {
                    m = m.with_tag(k, v);
                }
                let id = t.intern(&m, &all, 100).unwrap();
                let (want, want_tags) = described_json(&t, id);
                let mut got = Metric::default();
                got.tags.push("stale", "tag");
                let mut stale = LineCache::default();
                (stale.tags, stale.tags_source) = (b"stale".to_vec(), b"stale".to_vec());
                t.describe_json(id, &mut got, &mut stale);
                assert_eq!(stale.tags, want_tags, "{name:?}");
                assert_eq!(got, want, "{name:?}");
                t.describe_json(id, &mut got, &mut shared);
                assert_eq!(shared.tags, want_tags, "{name:?}, after the series before");
                assert_eq!(shared.name_plain, stale.name_plain);
            }
        }
    }

    #[test]
    fn plain_keys_hold_no_json_or_key_escapes() {
        assert!(json_plain(b"cpu.load\0host\0a\0"));
        assert!(json_plain("h\u{e9}\0\u{4e2d}\0".as_bytes()));
        for bad in [
            &b"a\"b\0"[..],
            b"a\\\0",
            b"a\x01\x01\0",
            b"\0\0\0\0\0\0\0\0\x1f",
        ] {
            assert!(!json_plain(bad), "{bad:?}");
        }
        assert!(json_plain(b"\x20\x7f\x80\xff\0\0\0\0\0\0\0\0\0"));
    }

    #[test]
    fn zeros_are_found_at_every_offset() {
        for len in 0..20 {
            for at in 0..=len {
                let mut b = vec![b'a'; len];
                if at < len {
                    b[at] = 0;
                }
                assert_eq!(find_zero(&b), (at < len).then_some(at));
            }
        }
    }

    #[test]
    fn ranks_stay_right_as_series_keep_arriving() {
        let mut t = SeriesTable::default();
        let mut all = Vec::new();
        for round in 0..5u64 {
            for i in 0..50u64 {
                let name = format!("m{}", (i * 7919 + round * 104_729) % 1000);
                all.push(
                    t.intern(
                        &Metric::gauge(&name, Value::U64(1), 0),
                        &|_| true,
                        usize::MAX,
                    )
                    .unwrap(),
                );
            }
            let mut ids = all.clone();
            ids.sort_unstable();
            ids.dedup();
            t.sort(&mut ids);
            let mut expected = ids.clone();
            expected.sort_by(|&a, &b| t.keys[a as usize].cmp(&t.keys[b as usize]));
            assert_eq!(ids, expected, "round {round}");
        }
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
        t.sort(&mut sorted);
        assert_eq!(sorted, vec![ids[1], ids[0], ids[2]]);
    }

    #[test]
    fn merging_new_ids_in_place_gives_one_order() {
        let le = |a: &SeriesId, b: &SeriesId| a <= b;
        let old: Vec<SeriesId> = (0..1000).map(|i| i * 2 + 10).collect();
        for fresh in [
            vec![1, 3, 999, 1999, 2001, 5000],
            (0..900).map(|i| i * 2 + 1).collect(),
            vec![0],
            vec![4000],
            (3000..3100).collect(),
        ] {
            let mut want = [old.clone(), fresh.clone()].concat();
            want.sort_unstable();
            let mut all = old.clone();
            let moved = merge_into(&mut all, &fresh, le);
            assert_eq!(all, want);
            assert_eq!(all[..moved], old[..moved], "items before {moved} stay");
            assert_eq!(moved, old.partition_point(|&o| o <= fresh[0]));
        }
        let mut all = Vec::new();
        assert_eq!(merge_into(&mut all, &[4, 5], le), 0);
        assert_eq!(all, vec![4, 5]);
        assert_eq!(merge_into(&mut all, &[], le), 2);
        assert_eq!(all, vec![4, 5]);
    }

    #[test]
    fn keys_compare_equal_exactly_when_equal_at_every_length() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).collect();
            assert!(same_key(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x80;
                assert!(!same_key(&a, &b), "{n} {at}");
            }
            assert!(!same_key(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    #[test]
    fn units_are_listed_once() {
        let mut units = Vec::new();
        for (u, want) in [("", 0), ("ms", 1), ("", 0), ("bytes/s", 2), ("ms", 1)] {
            assert_eq!(unit_index(&mut units, u.as_bytes()), want, "{u:?}");
        }
    }

    #[test]
    fn galloping_finds_every_split() {
        let items: Vec<u32> = (0..100).collect();
        for split in 0..=100 {
            assert_eq!(gallop_back(&items, |&i| i < split), split as usize);
        }
        assert_eq!(gallop_back(&[] as &[u32], |_| true), 0);
    }

    #[test]
    fn window_items_come_out_in_key_order_by_reference() {
        let mut t = SeriesTable::default();
        let mut items: Vec<(SeriesId, String)> = ["c", "a", "b", "a.b"]
            .iter()
            .map(|n| {
                let id = t
                    .intern(&Metric::gauge(n, Value::U64(1), 0), &all, 10)
                    .unwrap();
                (id, n.to_string())
            })
            .collect();
        let sorted = t.sorted_by_rank(&mut items);
        let names: Vec<&str> = sorted.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["a", "a.b", "b", "c"]);
        assert!(sorted.iter().all(|(id, n)| items_name(&t, *id) == **n));
    }

    fn items_name(t: &SeriesTable, id: SeriesId) -> String {
        let mut m = Metric::default();
        t.describe(id, &mut m);
        m.name
    }

    #[test]
    fn eight_byte_prefixes_order_as_keys_do_or_tie() {
        let keys: [&[u8]; 10] = [
            b"",
            b"a",
            b"a\0",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefghi",
            b"abcdefgi",
            b"abc\xff",
            b"b",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ];
        for a in keys {
            for b in keys {
                let by_prefix = prefix8(a).cmp(&prefix8(b));
                assert!(by_prefix.is_eq() || by_prefix == a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn a_ranked_series_takes_24_bytes() {
        assert_eq!(std::mem::size_of::<Ranked>(), 24);
    }

    #[test]
    fn key_prefixes_order_as_keys_do() {
        let keys: [&[u8]; 13] = [
            b"",
            b"a",
            b"a\0",
            b"a\0b",
            b"abcdefghijklmnop",
            b"abcdefghijklmnopq",
            b"abcdefghijklmnoq",
            b"abcdefghijklmnopqrst",
            b"abcdefghijklmnopqrsu",
            b"abcdefghijklmnopqrstu",
            b"abcdefghijklmnopqrt",
            b"b\0\x01",
            b"\xff",
        ];
        for a in keys {
            for b in keys {
                let (pa, pb) = (key_prefix(a), key_prefix(b));
                if pa != pb {
                    assert_eq!(pa.cmp(&pb), a.cmp(b), "{a:?} {b:?}");
                }
            }
        }
    }
}
