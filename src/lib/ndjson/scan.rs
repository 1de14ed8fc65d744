//! Finding the bytes that matter inside JSON strings (`"`, `\`, control characters), eight
//! bytes at a time. Metric names and tags are short, where a word-at-a-time scan beats both
//! a byte loop and SIMD searches with their set-up cost.

const LO: u64 = 0x0101_0101_0101_0101;
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

/// The index of the first `"`, `\` or control byte in `b[from..]`, as an index into `b`.
#[inline]
pub fn find_special(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 8 <= b.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&b[i..i + 8]);
        let mask = special_mask(u64::from_le_bytes(word));
        if mask != 0 {
            return Some(i + (mask.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    (i..b.len()).find(|&j| matches!(b[j], b'"' | b'\\') || b[j] < 0x20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_a_byte_loop() {
        let slow = |b: &[u8], from: usize| {
            (from..b.len()).find(|&j| matches!(b[j], b'"' | b'\\') || b[j] < 0x20)
        };
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..40 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly plain bytes, sometimes a special one or a high byte.
                        match seed % 16 {
                            0 => b'"',
                            1 => b'\\',
                            2 => (seed >> 8) as u8 % 0x20,
                            3 => 0x80 | (seed >> 8) as u8,
                            _ => b'a' + (seed >> 8) as u8 % 26,
                        }
                    })
                    .collect();
                for from in 0..=len {
                    assert_eq!(
                        find_special(&bytes, from),
                        slow(&bytes, from),
                        "{bytes:?} from {from}"
                    );
                }
            }
        }
    }
}
