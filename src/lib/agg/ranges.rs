//! The key ranges the aggregation state is split into (one shard each), chosen from the
//! first keys seen. Decoder threads find each new entry's range while its key is still in
//! their cache, so the command's thread does not read every key again to split a block.

use super::series::prefix8;

/// Keys where range i + 1 begins, and apart from them their first eight bytes, which
/// place most keys with a few vector compares.
#[derive(Clone, Debug, Default)]
pub struct KeyRanges {
    splitters: Vec<Box<[u8]>>,
    prefixes: Vec<u64>,
}

/// An entry whose range was not found on the decoder thread (the ranges were not chosen
/// yet when its block was combined).
pub const UNKNOWN: u16 = u16::MAX;

impl KeyRanges {
    /// `n` ranges of about as many keys each of a sample of keys; `None` without keys.
    pub fn choose<'k>(keys: impl Iterator<Item = &'k [u8]>, n: usize) -> Option<KeyRanges> {
        let mut sample: Vec<&[u8]> = keys.take(1 << 14).collect();
        if sample.is_empty() {
            return None;
        }
        sample.sort_unstable();
        sample.dedup();
        let mut splitters: Vec<Box<[u8]>> = (1..n)
            .map(|i| sample[i * sample.len() / n].into())
            .collect();
        splitters.dedup();
        let prefixes = splitters.iter().map(|s| prefix8(s)).collect();
        Some(KeyRanges {
            splitters,
            prefixes,
        })
    }

    /// The range of `key`: the number of splitters at or below it, each compared by its
    /// first eight bytes, and by all of them only when those are equal.
    #[inline]
    pub fn of(&self, key: &[u8]) -> usize {
        // Counted rather than searched: a binary search's branches mispredict at random.
        let prefix = prefix8(key);
        let (below, same) = self.prefixes.iter().fold((0, 0), |(below, same), &p| {
            (
                below + usize::from(p < prefix),
                same + usize::from(p == prefix),
            )
        });
        if same == 0 {
            return below;
        }
        // The splitters sharing the key's first eight bytes follow those below them.
        below
            + self.splitters[below..below + same]
                .iter()
                .filter(|s| ***s <= *key)
                .count()
    }

    /// `of`, as an entry records it.
    #[inline]
    pub fn tag(&self, key: &[u8]) -> u16 {
        u16::try_from(self.of(key)).unwrap_or(UNKNOWN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_keys_in_order_and_evenly() {
        let keys: Vec<Vec<u8>> = (0..4000u32)
            .map(|i| format!("host{:05}.cpu\0dc\0x", (i * 7919) % 4000).into_bytes())
            .collect();
        let ranges = KeyRanges::choose(keys.iter().map(Vec::as_slice), 8).unwrap();
        let mut sorted = keys.clone();
        sorted.sort();
        let found: Vec<usize> = sorted.iter().map(|k| ranges.of(k)).collect();
        assert!(
            found.windows(2).all(|w| w[0] <= w[1]),
            "ranges follow key order"
        );
        for r in 0..8 {
            let n = found.iter().filter(|&&f| f == r).count();
            assert!((400..=600).contains(&n), "range {r}: {n} keys");
        }
        // A splitter begins its range; a key just below it, with the same first eight
        // bytes, is placed by comparing whole keys.
        for (i, s) in ranges.splitters.iter().enumerate() {
            assert_eq!(ranges.of(s), i + 1);
            let mut below = s.to_vec();
            *below.last_mut().unwrap() -= 1;
            assert_eq!(ranges.of(&below), i);
        }
        assert!(KeyRanges::choose(std::iter::empty(), 8).is_none());
    }
}
