//! Finding the bytes that matter inside JSON strings (`"`, `\`, control characters), and
//! the digits of numbers, sixteen or eight bytes at a time. Metric names, tags and numbers
//! are short, where SSE2 and word-at-a-time scans beat both a byte loop and SIMD searches
//! with their set-up cost.

pub const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in the lowest byte of `w` that is `"`, `\` or below 0x20 (bits above the
/// first hit may be spurious, so only the lowest one is meaningful).
#[inline(always)]
fn special_mask(w: u64) -> u64 {
    let quote = w ^ (LO * b'"' as u64);
    let slash = w ^ (LO * b'\\' as u64);
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    zero(quote) | zero(slash) | (w.wrapping_sub(LO * 0x20) & !w & HI)
}

#[inline(always)]
fn is_special(c: u8) -> bool {
    matches!(c, b'"' | b'\\') || c < 0x20
}

/// The index of the first `"`, `\` or control byte in `b[from..]`, as an index into `b`.
#[inline]
pub fn find_special(b: &[u8], from: usize) -> Option<usize> {
    scan(b, from).map(|hit| hit.at)
}

/// Where `scan` stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Index into the scanned bytes of the first `"`, `\` or control byte.
    pub at: usize,
    /// That byte.
    pub byte: u8,
    /// Whether a byte 0x80 or above came before it: without one the text is ASCII, so
    /// valid UTF-8, and the caller can skip a second pass to validate it.
    pub high: bool,
}

/// Finds the first `"`, `\` or control byte in `b[from..]`: sixteen bytes at a time where
/// there are sixteen (a name is often longer than eight), then eight, then one by one.
#[inline(always)]
pub fn scan(b: &[u8], from: usize) -> Option<Hit> {
    let mut i = from;
    let mut high = 0u64;
    #[cfg(target_arch = "x86_64")]
    while let Some(chunk) = b.get(i..i + 16).and_then(|c| c.first_chunk::<16>()) {
        let (special, high16) = sse2::special_and_high(chunk);
        if special != 0 {
            let k = special.trailing_zeros();
            return Some(Hit {
                at: i + k as usize,
                byte: chunk[k as usize],
                high: high != 0 || high16 & ((1 << k) - 1) != 0,
            });
        }
        high |= u64::from(high16);
        i += 16;
    }
    while let Some(chunk) = b.get(i..i + 8) {
        let w = word(chunk);
        let m = special_mask(w);
        if m != 0 {
            return Some(hit(w, m, i, high));
        }
        high |= w & HI;
        i += 8;
    }
    let mut high = high != 0;
    for (j, &byte) in b.get(i..).unwrap_or_default().iter().enumerate() {
        if is_special(byte) {
            return Some(Hit {
                at: i + j,
                byte,
                high,
            });
        }
        high |= byte >= 0x80;
    }
    None
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// Bit `k` set in the first mask when byte `k` is `"`, `\` or below 0x20, in the
    /// second when it is 0x80 or above.
    #[inline(always)]
    pub fn special_and_high(chunk: &[u8; 16]) -> (u32, u32) {
        // SAFETY: SSE2 is part of x86_64; the load reads the sixteen bytes of `chunk`.
        unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // Unsigned `v <= 0x1f`: the smaller of the two is `v` itself.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
            let special = _mm_or_si128(_mm_or_si128(quote, slash), control);
            (
                _mm_movemask_epi8(special) as u32,
                _mm_movemask_epi8(v) as u32,
            )
        }
    }
}

/// The first special byte in word `w` (whose `special_mask` is `m`), which starts at `at`.
#[inline(always)]
fn hit(w: u64, m: u64, at: usize, high: u64) -> Hit {
    let k = m.trailing_zeros() / 8;
    // Only the bytes before the hit belong to the string.
    let before = (1u64 << (8 * k)) - 1;
    Hit {
        at: at + k as usize,
        byte: (w >> (8 * k)) as u8,
        high: (high | w & HI & before) != 0,
    }
}

/// High bit set in each byte of `w` that is zero, exactly (no borrow between bytes).
#[inline(always)]
pub fn zero_bytes(w: u64) -> u64 {
    !(((w & !HI) + !HI) | w) & HI
}

/// High bit set in each byte of `w` below `n` (`n` at most 0x80), exactly.
#[inline(always)]
pub fn bytes_below(w: u64, n: u8) -> u64 {
    !(((w & !HI) + LO * (0x80 - n as u64)) | w) & HI
}

/// The index of the first 0x00 in `b`. Pieces are short, where a call to `memchr` costs
/// more than this word-at-a-time loop.
#[inline]
pub fn find_zero(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(w) = b.get(at..at + 8) {
        let z = zero_bytes(word(w));
        if z != 0 {
            return Some(at + z.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    b[at..].iter().position(|&c| c == 0).map(|i| at + i)
}

/// 10^n for the 0 to 8 digits `scan::leading_digits` reads at once.
pub const POW10_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Eight bytes as a little-endian word.
#[inline(always)]
pub fn word(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

/// The run of ASCII digits that starts the eight bytes at `b[i]`: how many (up to eight)
/// and their value, with no branch per digit (short numbers of varying length would
/// mispredict one). `None` when fewer than eight bytes remain.
#[inline(always)]
pub fn leading_digits(b: &[u8], i: usize) -> Option<(usize, u64)> {
    let w = word(b.get(i..i + 8)?);
    let n = digit_count(w);
    // The digits move to the top, zeros shifting in below them as leading zero digits.
    // (Borrows only run from the bytes after the digits upwards, and are shifted out.)
    let digits = w
        .wrapping_sub(ZEROS)
        .checked_shl(8 * (8 - n) as u32)
        .unwrap_or(0);
    Some((n, eight_value(digits)))
}

/// The value of `text` when it is 8 to 19 ASCII digits without a leading zero (event
/// times in nanoseconds have 19), read eight at a time, the last eight overlapping the
/// ones before; `None` for anything else.
#[inline]
pub fn long_digits(text: &[u8]) -> Option<u64> {
    let len = text.len();
    if !(8..=19).contains(&len) || text[0] == b'0' {
        return None;
    }
    let mut value = 0u64;
    let mut i = 0;
    while len - i > 8 {
        let w = word(&text[i..i + 8]);
        if digit_count(w) != 8 {
            return None;
        }
        value = value * 100_000_000 + eight_value(w.wrapping_sub(ZEROS));
        i += 8;
    }
    let w = word(&text[len - 8..]);
    if digit_count(w) != 8 {
        return None;
    }
    // The bytes already read become leading zero digits.
    let fresh = len - i;
    let kept = u64::MAX.checked_shl(8 * (8 - fresh) as u32).unwrap_or(0);
    let tail = eight_value(w.wrapping_sub(ZEROS) & kept);
    Some(value * POW10_U64[fresh] + tail)
}

/// How many of the eight bytes at `b[i]` are ASCII digits before the first that is not;
/// `None` when fewer than eight bytes remain.
#[inline(always)]
pub fn leading_digit_count(b: &[u8], i: usize) -> Option<usize> {
    Some(digit_count(word(b.get(i..i + 8)?)))
}

/// How many bytes of `w`, from the lowest, are ASCII digits before the first that is not.
#[inline(always)]
fn digit_count(w: u64) -> usize {
    const NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    // A digit has high nibble 3, and adding 6 keeps it 3. (A carry out of a byte can only
    // spoil the bytes after a non-digit, which are not looked at.)
    let not_digit =
        ((w & NIBBLES) ^ ZEROS) | ((w.wrapping_add(0x0606_0606_0606_0606) & NIBBLES) ^ ZEROS);
    (not_digit.trailing_zeros() / 8) as usize
}

const ZEROS: u64 = 0x3030_3030_3030_3030;

/// The value of eight decimal digits, one a byte, the first in the lowest byte: pairs, then
/// quads, then the whole.
#[inline(always)]
fn eight_value(d: u64) -> u64 {
    let d = d.wrapping_mul(10).wrapping_add(d >> 8);
    let lo = (d & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let hi = ((d >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    lo.wrapping_add(hi) >> 32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_bytes(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                // Mostly plain bytes, sometimes a special one or a high byte.
                match *seed % 16 {
                    0 => b'"',
                    1 => b'\\',
                    2 => (*seed >> 8) as u8 % 0x20,
                    3 => 0x80 | (*seed >> 8) as u8,
                    _ => b'a' + (*seed >> 8) as u8 % 26,
                }
            })
            .collect()
    }

    #[test]
    fn long_digits_read_as_the_standard_library_does() {
        let mut rng = crate::rng::XorShift::with_seed(0x2545_F491_4F6C_DD1D);
        let mut next = |n: u64| rng.below(n);
        let mut read = 0;
        for _ in 0..100_000 {
            let len = 1 + next(22) as usize;
            let mut text: Vec<u8> = (0..len).map(|_| b'0' + next(10) as u8).collect();
            if next(4) == 0 {
                let at = next(len as u64) as usize;
                text[at] = b".-e9x"[next(5) as usize];
            }
            let plain = std::str::from_utf8(&text).unwrap_or_default();
            let want = ((8..=19).contains(&len) && text[0] != b'0')
                .then(|| plain.parse::<u64>().ok())
                .flatten();
            assert_eq!(long_digits(&text), want, "{plain}");
            read += usize::from(want.is_some());
        }
        assert!(read > 10_000, "{read}");
        assert_eq!(
            long_digits(b"1700000000000000000"),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            long_digits(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
    }

    #[test]
    fn agrees_with_a_byte_loop() {
        let slow = |b: &[u8], from: usize| (from..b.len()).find(|&j| is_special(b[j]));
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..40 {
            for _ in 0..200 {
                let bytes = random_bytes(&mut seed, len);
                for from in 0..=len + 1 {
                    let at = slow(&bytes, from);
                    let hit = at.map(|at| Hit {
                        at,
                        byte: bytes[at],
                        high: !bytes[from..at].is_ascii(),
                    });
                    assert_eq!(scan(&bytes, from), hit, "{bytes:?} from {from}");
                    assert_eq!(find_special(&bytes, from), at);
                }
            }
        }
    }

    #[test]
    fn leading_digits_agrees_with_a_byte_loop() {
        let slow = |b: &[u8]| {
            let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
            let v = b[..n].iter().fold(0u64, |v, &d| v * 10 + (d - b'0') as u64);
            (n, v)
        };
        let mut seed = 0x1234_5678_9ABC_DEF1u64;
        for _ in 0..50_000 {
            let b: Vec<u8> = (0..8)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    match seed % 8 {
                        0 => (seed >> 8) as u8,
                        1 => [b'/', b':', b'.', b',', b'e', 0xFA, 0xFF, b' ']
                            [(seed >> 8) as usize % 8],
                        _ => b'0' + (seed >> 8) as u8 % 10,
                    }
                })
                .collect();
            assert_eq!(leading_digits(&b, 0), Some(slow(&b)), "{b:?}");
        }
        assert_eq!(leading_digits(b"1234567", 0), None);
        assert_eq!(leading_digits(b"0000000000", 2), Some((8, 0)));
        assert_eq!(leading_digits(b"99999999", 0), Some((8, 99_999_999)));
        assert_eq!(leading_digits(b"x12345678", 1), Some((8, 12_345_678)));
        assert_eq!(leading_digits(b"1700000000000000000", 16), None);
        assert_eq!(
            leading_digits(b"17000000,\"tags\"", 0),
            Some((8, 17_000_000))
        );
        assert_eq!(leading_digits(b"25,\"ts\":1", 0), Some((2, 25)));
    }
}
