//! The ingest fast path: a line whose name and sections (`|c|@0.1|#tags`) were seen before
//! in the current flush goes straight to its series' partial state, without building a
//! metric, its series key or its hash again. Only the value is parsed, by the same rules as
//! the full parser; anything unusual takes the full path.

use super::parse::{self, FastKind};
use crate::agg::series::same_key;
use crate::agg::state::Sample;
use std::hash::BuildHasher;

/// A remembered line shape and where its points go.
struct Shape {
    hash: u64,
    start: u32,
    name_len: u32,
    suffix_len: u32,
    kind: FastKind,
    rate: f64,
    /// The partial entry, valid for this window and generation only.
    entry: u32,
    window: i64,
    generation: u32,
}

/// A line taken apart for the fast path: name, value and everything after the value.
pub struct Parts<'l> {
    pub name: &'l [u8],
    pub value: &'l [u8],
    pub suffix: &'l [u8],
}

/// Splits `name:value|rest` when the line has one value. Lines are short, so one plain
/// pass beats a vectorised search per delimiter.
pub fn split(line: &[u8]) -> Option<Parts<'_>> {
    let colon = line.iter().position(|&b| b == b':')?;
    let rest = &line[colon + 1..];
    let bar = rest.iter().position(|&b| b == b'|' || b == b':')?;
    if rest[bar] != b'|' {
        return None;
    }
    Some(Parts {
        name: &line[..colon],
        value: &rest[..bar],
        suffix: &rest[bar..],
    })
}

/// Calls `f` with every non-empty line of `data` (a trailing `\r` removed) and its parts
/// as `split` would find them, in one pass over the delimiters (`\n`, `:`, `|`), which
/// are found 16 bytes at a time.
pub fn for_each_line<'d>(data: &'d [u8], mut f: impl FnMut(&'d [u8], Option<Parts<'d>>)) {
    let mut start = 0;
    let (mut colon, mut bar, mut multi) = (None, None, false);
    let mut emit = |s: usize, e: usize, colon: Option<usize>, bar: Option<usize>, multi: bool| {
        let e = if e > s && data[e - 1] == b'\r' {
            e - 1
        } else {
            e
        };
        if e == s {
            return;
        }
        let parts = match (colon, bar) {
            (Some(c), Some(b)) if !multi && b < e => Some(Parts {
                name: &data[s..c],
                value: &data[c + 1..b],
                suffix: &data[b..e],
            }),
            _ => None,
        };
        f(&data[s..e], parts);
    };
    delimiters(data, |pos| match data[pos] {
        b'\n' => {
            emit(start, pos, colon, bar, multi);
            start = pos + 1;
            (colon, bar, multi) = (None, None, false);
        }
        b':' if colon.is_none() => colon = Some(pos),
        b':' => multi |= bar.is_none(),
        _ if colon.is_some() && bar.is_none() => bar = Some(pos),
        _ => {}
    });
    if start < data.len() {
        emit(start, data.len(), colon, bar, multi);
    }
}

/// Calls `f` with the position of every `\n`, `:` and `|` in `data`, in order.
fn delimiters(data: &[u8], mut f: impl FnMut(usize)) {
    let mut at = 0;
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of x86_64; loads are unaligned and stay within `data`.
        unsafe {
            use std::arch::x86_64::*;
            let (nl, colon, bar) = (
                _mm_set1_epi8(b'\n' as i8),
                _mm_set1_epi8(b':' as i8),
                _mm_set1_epi8(b'|' as i8),
            );
            while at + 16 <= data.len() {
                let v = _mm_loadu_si128(data.as_ptr().add(at).cast());
                let hits = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, nl), _mm_cmpeq_epi8(v, colon)),
                    _mm_cmpeq_epi8(v, bar),
                );
                let mut mask = _mm_movemask_epi8(hits) as u32;
                while mask != 0 {
                    f(at + mask.trailing_zeros() as usize);
                    mask &= mask - 1;
                }
                at += 16;
            }
        }
    }
    for (i, &b) in data[at..].iter().enumerate() {
        if matches!(b, b'\n' | b':' | b'|') {
            f(at + i);
        }
    }
}

/// A seeded hash of a line's name and sections: 8-byte words folded with a 128-bit
/// multiply (foldhash's mixing, without the streaming `Hasher` interface).
fn shape_hash(seed: u64, name: &[u8], suffix: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |h: u64, w: u64| {
        let x = u128::from(h ^ w) * u128::from(K);
        (x as u64) ^ ((x >> 64) as u64)
    };
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let mut h = seed;
    for part in [name, suffix] {
        let mut words = part.chunks_exact(8);
        for w in words.by_ref() {
            h = mix(h, word(w));
        }
        // The last partial word is read in place (overlapping the previous one when the
        // part is long enough): a copy into a buffer costs a store-forwarding stall.
        let rest = words.remainder().len();
        let tail = if rest == 0 {
            0
        } else if part.len() >= 8 {
            word(&part[part.len() - 8..])
        } else {
            part.iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b))
        };
        h = mix(h, tail ^ ((part.len() as u64) << 56));
    }
    h
}

/// Shapes seen since the cache was last cleared.
pub struct LineCache {
    /// Open addressing, linear probing: shape index + 1, 0 for an empty slot. Kept at most
    /// half full; one probe is the rule for the few hundred shapes a flush usually has.
    slots: Vec<u32>,
    shapes: Vec<Shape>,
    bytes: Vec<u8>,
    /// Random per process, so crafted names cannot aim at one bucket.
    seed: u64,
    generation: u32,
}

/// Shapes kept at most; beyond, the cache starts over at the next handoff.
const MAX_SHAPES: usize = 1 << 18;

impl Default for LineCache {
    fn default() -> Self {
        LineCache {
            slots: vec![0; 1024],
            shapes: Vec::new(),
            bytes: Vec::new(),
            seed: foldhash::fast::RandomState::default().hash_one(0u64),
            generation: 1,
        }
    }
}

impl LineCache {
    fn hash(&self, p: &Parts) -> u64 {
        shape_hash(self.seed, p.name, p.suffix)
    }

    fn find(&self, hash: u64, p: &Parts) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let id = self.slots[at];
            if id == 0 {
                return None;
            }
            let s = &self.shapes[id as usize - 1];
            if s.hash == hash {
                let start = s.start as usize;
                let name_end = start + s.name_len as usize;
                let end = name_end + s.suffix_len as usize;
                if same_key(&self.bytes[start..name_end], p.name)
                    && same_key(&self.bytes[name_end..end], p.suffix)
                {
                    return Some(id as usize - 1);
                }
            }
            at = (at + 1) & mask;
        }
    }

    fn insert_slot(slots: &mut [u32], hash: u64, id: u32) {
        let mask = slots.len() - 1;
        let mut at = hash as usize & mask;
        while slots[at] != 0 {
            at = (at + 1) & mask;
        }
        slots[at] = id + 1;
    }

    /// The partial entry and sample for a line whose shape is known for `window`.
    pub fn lookup(&self, p: &Parts, window: i64) -> Option<(usize, Option<Sample>)> {
        let i = self.find(self.hash(p), p)?;
        let s = &self.shapes[i];
        if s.generation != self.generation || s.window != window {
            return None;
        }
        Some((
            s.entry as usize,
            parse::fast_sample(s.kind, s.rate, p.value),
        ))
    }

    /// Remembers that lines shaped like `p` go to partial entry `entry` in `window`.
    pub fn remember(&mut self, p: &Parts, kind: FastKind, rate: f64, entry: usize, window: i64) {
        let hash = self.hash(p);
        if let Some(i) = self.find(hash, p) {
            let s = &mut self.shapes[i];
            (s.entry, s.window, s.generation, s.kind, s.rate) =
                (entry as u32, window, self.generation, kind, rate);
            return;
        }
        if self.shapes.len() >= MAX_SHAPES {
            return;
        }
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(p.name);
        self.bytes.extend_from_slice(p.suffix);
        let i = self.shapes.len() as u32;
        self.shapes.push(Shape {
            hash,
            start,
            name_len: p.name.len() as u32,
            suffix_len: p.suffix.len() as u32,
            kind,
            rate,
            entry: entry as u32,
            window,
            generation: self.generation,
        });
        if 2 * self.shapes.len() > self.slots.len() {
            let mut slots = vec![0u32; self.slots.len() * 2];
            for (j, s) in self.shapes.iter().enumerate() {
                Self::insert_slot(&mut slots, s.hash, j as u32);
            }
            self.slots = slots;
        } else {
            Self::insert_slot(&mut self.slots, hash, i);
        }
    }

    /// The partial aggregate was handed over: every remembered entry is stale. A cache
    /// grown past its bound starts over.
    pub fn new_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.shapes.len() >= MAX_SHAPES || self.bytes.len() > (64 << 20) {
            self.slots = vec![0; 1024];
            self.shapes.clear();
            self.bytes.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_takes_one_value_lines_only() {
        let p = split(b"a.b:12|c|@0.5").unwrap();
        assert_eq!(
            (p.name, p.value, p.suffix),
            (&b"a.b"[..], &b"12"[..], &b"|c|@0.5"[..])
        );
        assert!(split(b"a:1:2|d").is_none());
        assert!(split(b"a:1").is_none());
        assert!(split(b"novalue").is_none());
    }

    #[test]
    fn one_pass_lines_agree_with_split() {
        let data = b"a:1|c\nb.x:2.5|ms|@0.5|#k:v\r\n\nmulti:1:2|d\nnobar:3\nname|odd:4|c\ngroups:1|c:2|c\n\r\nlast:9|g";
        let mut got = Vec::new();
        for_each_line(data, |line, parts| {
            let expect = split(line).map(|p| (p.name, p.value, p.suffix));
            let seen = parts.map(|p| (p.name, p.value, p.suffix));
            assert_eq!(seen, expect, "{}", String::from_utf8_lossy(line));
            got.push(String::from_utf8_lossy(line).into_owned());
        });
        assert_eq!(
            got,
            [
                "a:1|c",
                "b.x:2.5|ms|@0.5|#k:v",
                "multi:1:2|d",
                "nobar:3",
                "name|odd:4|c",
                "groups:1|c:2|c",
                "last:9|g"
            ]
        );
    }

    #[test]
    fn shapes_are_valid_for_their_window_and_generation() {
        let mut c = LineCache::default();
        let p = split(b"k:1|c").unwrap();
        assert!(c.lookup(&p, 0).is_none());
        c.remember(&p, FastKind::Counter, 1.0, 7, 0);
        let q = split(b"k:5|c").unwrap();
        let (entry, sample) = c.lookup(&q, 0).unwrap();
        assert_eq!(entry, 7);
        assert!(matches!(sample, Some(Sample::Count(crate::Value::I64(5)))));
        assert!(c.lookup(&q, 10).is_none(), "another window");
        assert!(
            c.lookup(&split(b"k:5|ms").unwrap(), 0).is_none(),
            "another type"
        );
        assert!(c.lookup(&split(b"kk:5|c").unwrap(), 0).is_none());
        c.new_generation();
        assert!(c.lookup(&q, 0).is_none(), "after a handoff");
        c.remember(&q, FastKind::Counter, 1.0, 3, 0);
        assert_eq!(c.lookup(&p, 0).unwrap().0, 3);
    }

    #[test]
    fn bad_values_on_a_known_shape_are_not_samples() {
        let mut c = LineCache::default();
        let p = split(b"t:1.5|ms|@0.5").unwrap();
        c.remember(&p, FastKind::Timer, 0.5, 0, 0);
        let (_, s) = c.lookup(&split(b"t:abc|ms|@0.5").unwrap(), 0).unwrap();
        assert!(s.is_none());
        let (_, s) = c.lookup(&split(b"t:2|ms|@0.5").unwrap(), 0).unwrap();
        assert!(matches!(s, Some(Sample::Timing(x, r)) if x == 2.0 && r == 0.5));
    }
}
