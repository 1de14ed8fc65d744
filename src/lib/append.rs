//! Appending short byte strings without a `memcpy` call per piece.
//!
//! Names, tags, units and number texts are mostly 1 to 128 bytes, and a `memcpy` call sized
//! to each costs more than the copy: instead two fixed-size blocks, the first and the last
//! bytes of the piece, overlapping in the middle, the second written over the end of the
//! first.

/// Appends `b` to `out`.
#[inline(always)]
pub fn append(out: &mut Vec<u8>, b: &[u8]) {
    match b.len() {
        64..=128 => overlapping::<64>(out, b),
        32..=63 => overlapping::<32>(out, b),
        16..=31 => overlapping::<16>(out, b),
        8..=15 => overlapping::<8>(out, b),
        4..=7 => overlapping::<4>(out, b),
        2..=3 => overlapping::<2>(out, b),
        1 => out.push(b[0]),
        0 => {}
        _ => out.extend_from_slice(b),
    }
}

/// Appends `src[range]`. When `src` holds at least 16 bytes from the range's start, as
/// the pieces of a line or key mostly do, a fixed 16-byte block is copied and the excess
/// cut off: no branch on the length, which varies from piece to piece and mispredicts.
#[inline(always)]
pub fn append_within(out: &mut Vec<u8>, src: &[u8], range: std::ops::Range<usize>) {
    let len = range.end.saturating_sub(range.start);
    match src.get(range.start..).and_then(<[u8]>::first_chunk::<16>) {
        Some(block) if len <= 16 => {
            let end = out.len() + len;
            out.extend_from_slice(block);
            out.truncate(end);
        }
        _ => append(out, src.get(range).unwrap_or_default()),
    }
}

/// `append` for `b` of `N` to `2 * N` bytes.
#[inline(always)]
fn overlapping<const N: usize>(out: &mut Vec<u8>, b: &[u8]) {
    let (Some(first), Some(last)) = (b.first_chunk::<N>(), b.last_chunk::<N>()) else {
        return out.extend_from_slice(b);
    };
    let end = out.len() + b.len();
    out.extend_from_slice(first);
    out.truncate(end - N);
    out.extend_from_slice(last);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_appends_its_bytes() {
        let src: Vec<u8> = (0..40u8).collect();
        for start in 0..=src.len() {
            for end in start..=src.len() {
                let mut got = vec![9; 3];
                append_within(&mut got, &src, start..end);
                let mut want = vec![9; 3];
                want.extend_from_slice(&src[start..end]);
                assert_eq!(got, want, "{start}..{end}");
            }
        }
    }

    #[test]
    fn every_length_appends_the_same_bytes_as_extend() {
        let src: Vec<u8> = (0..=200u8).collect();
        for prefix in [0, 1, 7] {
            for len in 0..=src.len() {
                let mut got = vec![9; prefix];
                append(&mut got, &src[..len]);
                let mut want = vec![9; prefix];
                want.extend_from_slice(&src[..len]);
                assert_eq!(got, want, "prefix {prefix}, length {len}");
            }
        }
    }
}
