//! Decimal layouts of floats that ryu does not offer directly: plain digits for path and
//! field-name suffixes (`le_0_5`, `p99_9`) and Go's `%g` for Prometheus `le`/`quantile`.
//!
//! Everything starts from ryu's shortest round-trip digits, so scaling by a power of ten
//! (quantile 0.999 → `99.9`) is a shift of the decimal point, exact, instead of a float
//! multiplication that would print `99.89999999999999`.

/// A finite float as `0.d1d2…dn × 10^dp`, digits without leading or trailing zeros.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decimal {
    neg: bool,
    digits: [u8; 24],
    nd: usize,
    dp: i32,
}

impl Decimal {
    /// `None` for NaN and infinities, which have no digits.
    pub(crate) fn new(v: f64) -> Option<Decimal> {
        if !v.is_finite() {
            return None;
        }
        let mut buf = ryu::Buffer::new();
        let s = buf.format_finite(v).as_bytes();
        let mut d = Decimal {
            neg: false,
            digits: [0; 24],
            nd: 0,
            dp: 0,
        };
        let mut i = 0;
        if s.first() == Some(&b'-') {
            d.neg = true;
            i = 1;
        }
        let mut seen_point = false;
        while i < s.len() {
            match s[i] {
                // Leading zeros are not digits; after the point each one scales down.
                b'0' if d.nd == 0 && seen_point => d.dp -= 1,
                b'0' if d.nd == 0 => {}
                c @ b'0'..=b'9' => {
                    // ryu emits at most 17 significant digits; the guard only keeps the
                    // array access total.
                    if d.nd < d.digits.len() {
                        d.digits[d.nd] = c;
                        d.nd += 1;
                    }
                    if !seen_point {
                        d.dp += 1;
                    }
                }
                b'.' => seen_point = true,
                b'e' | b'E' => {
                    d.dp += parse_exp(&s[i + 1..]);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        while d.nd > 0 && d.digits[d.nd - 1] == b'0' {
            d.nd -= 1;
        }
        if d.nd == 0 {
            // Zero prints without a sign everywhere: `-0` as a bucket or label is noise.
            d.neg = false;
            d.dp = 0;
        }
        Some(d)
    }

    pub(crate) fn is_negative(&self) -> bool {
        self.neg
    }

    fn digit(&self, i: i32) -> u8 {
        if i >= 0 && (i as usize) < self.nd {
            self.digits[i as usize]
        } else {
            b'0'
        }
    }

    /// Writes `|v| × 10^shift` without exponent and without trailing fraction zeros, using
    /// `point` as the decimal separator. The sign is left to the caller.
    pub(crate) fn write_fixed(&self, out: &mut Vec<u8>, shift: i32, point: u8) {
        if self.nd == 0 {
            out.push(b'0');
            return;
        }
        let dp = self.dp + shift;
        let nd = self.nd as i32;
        if dp <= 0 {
            out.push(b'0');
        } else {
            for i in 0..dp {
                out.push(self.digit(i));
            }
        }
        if dp < nd {
            out.push(point);
            for i in dp..nd {
                out.push(self.digit(i));
            }
        }
    }

    /// Writes the value as Go's `strconv.FormatFloat(v, 'g', -1, 64)` does, which is how
    /// the Prometheus client libraries spell `le` and `quantile` label values.
    pub(crate) fn write_go_g(&self, out: &mut Vec<u8>) {
        if self.neg {
            out.push(b'-');
        }
        let exp = if self.nd == 0 { 0 } else { self.dp - 1 };
        if self.nd > 0 && !(-4..6).contains(&exp) {
            out.push(self.digits[0]);
            if self.nd > 1 {
                out.push(b'.');
                out.extend_from_slice(&self.digits[1..self.nd]);
            }
            out.push(b'e');
            out.push(if exp < 0 { b'-' } else { b'+' });
            let e = exp.unsigned_abs();
            if e < 10 {
                out.push(b'0');
            }
            crate::ndjson::encode::write_int(out, e);
        } else {
            self.write_fixed(out, 0, b'.');
        }
    }
}

fn parse_exp(s: &[u8]) -> i32 {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut e: i32 = 0;
    for &c in digits {
        if c.is_ascii_digit() {
            e = e.saturating_mul(10).saturating_add(i32::from(c - b'0'));
        }
    }
    if neg {
        -e
    } else {
        e
    }
}

/// Appends a float as a name suffix: `0.5` → `0_5`, `-1` → `neg1`, scaled by `10^shift`
/// (quantile 0.999 with shift 2 → `99_9`). Infinities become `inf` / `neginf`; the caller
/// filters NaN, which has no sensible name.
pub(crate) fn write_suffix(out: &mut Vec<u8>, v: f64, shift: i32) {
    match Decimal::new(v) {
        Some(d) => {
            if d.is_negative() {
                out.extend_from_slice(b"neg");
            }
            d.write_fixed(out, shift, b'_');
        }
        None if v == f64::INFINITY => out.extend_from_slice(b"inf"),
        None if v == f64::NEG_INFINITY => out.extend_from_slice(b"neginf"),
        None => out.extend_from_slice(b"nan"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(v: f64, shift: i32) -> String {
        let mut out = Vec::new();
        write_suffix(&mut out, v, shift);
        String::from_utf8(out).unwrap()
    }

    fn go_g(v: f64) -> String {
        let mut out = Vec::new();
        Decimal::new(v).unwrap().write_go_g(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn suffixes() {
        assert_eq!(fixed(0.5, 0), "0_5");
        assert_eq!(fixed(1.0, 0), "1");
        assert_eq!(fixed(-1.0, 0), "neg1");
        assert_eq!(fixed(-0.25, 0), "neg0_25");
        assert_eq!(fixed(0.0, 0), "0");
        assert_eq!(fixed(-0.0, 0), "0");
        assert_eq!(fixed(120.0, 0), "120");
        assert_eq!(fixed(1e16, 0), "10000000000000000");
        assert_eq!(fixed(1.5e-7, 0), "0_00000015");
        assert_eq!(fixed(f64::INFINITY, 0), "inf");
        assert_eq!(fixed(f64::NEG_INFINITY, 0), "neginf");
    }

    #[test]
    fn quantile_shift_is_exact() {
        assert_eq!(fixed(0.5, 2), "50");
        assert_eq!(fixed(0.99, 2), "99");
        assert_eq!(fixed(0.999, 2), "99_9");
        assert_eq!(fixed(0.9999, 2), "99_99");
        assert_eq!(fixed(1.0, 2), "100");
        assert_eq!(fixed(0.0, 2), "0");
        assert_eq!(fixed(0.001, 2), "0_1");
        assert_eq!(fixed(0.00001, 2), "0_001");
        assert_eq!(fixed(0.125, 2), "12_5");
    }

    #[test]
    fn go_g_matches_strconv() {
        // Expected strings are strconv.FormatFloat(v, 'g', -1, 64).
        assert_eq!(go_g(0.5), "0.5");
        assert_eq!(go_g(1.0), "1");
        assert_eq!(go_g(0.0), "0");
        assert_eq!(go_g(-2.5), "-2.5");
        assert_eq!(go_g(999999.0), "999999");
        assert_eq!(go_g(1e6), "1e+06");
        assert_eq!(go_g(1234567.0), "1.234567e+06");
        assert_eq!(go_g(0.0001), "0.0001");
        assert_eq!(go_g(0.00001), "1e-05");
        assert_eq!(go_g(2.5e-7), "2.5e-07");
        assert_eq!(go_g(1e21), "1e+21");
        assert_eq!(go_g(1e100), "1e+100");
        assert_eq!(go_g(-1e-300), "-1e-300");
        assert_eq!(go_g(100000.0), "100000");
        assert_eq!(go_g(0.005), "0.005");
    }
}
