//! RFC 2579 DISPLAY-HINT rendering, byte for byte as net-snmp 5.9 prints it
//! (`snmplib/mib.c`: the hinted branch of `sprint_realloc_octet_string` and
//! `sprint_realloc_hinted_integer`).
//!
//! net-snmp's quirks are kept on purpose so walks diff cleanly against `snmpbulkwalk`: hex is
//! lower case and not zero-padded (`1x:` gives `0:1a:…`), a separator is written only when more
//! octets follow, the last octet-format is reused once the hint is exhausted. Where the C code
//! reads past the value or the hint (undefined behaviour), we stop at the end instead.

/// Hint and value text come from agents and MIB files: cap what a hint can ask for so a hostile
/// `4294967295a` or `d-999999` cannot make us loop or allocate without bound.
const MAX_WIDTH: usize = 1 << 16;
const MAX_SHIFT: usize = 255;

/// One octet-format of an OCTET STRING hint.
struct Spec {
    /// Leading `*`: the next value octet is a repeat count.
    star: bool,
    width: usize,
    code: u8,
    separ: Option<u8>,
    term: Option<u8>,
}

/// Appends `bytes` formatted by the OCTET STRING display hint `hint`. Returns false, leaving
/// `out` as it was, when the hint uses a format code other than `x d o a t` (net-snmp then
/// prints "(Bad hint ignored: …) " and the value without the hint).
pub fn format_display_hint(hint: &str, bytes: &[u8], out: &mut String) -> bool {
    // Octets go to a byte buffer first: `a`/`t` copy raw octets and a UTF-8 sequence may span
    // two octet-formats.
    let mut text: Vec<u8> = Vec::with_capacity(bytes.len() * 3);
    let h = hint.as_bytes();
    let mut hpos = 0;
    let mut spec = Spec {
        star: false,
        width: 1,
        code: b'd',
        separ: None,
        term: None,
    };
    let mut pos = 0;
    while pos < bytes.len() {
        let mut repeat = 1usize;
        if hpos < h.len() {
            spec = parse_spec(h, &mut hpos);
            if spec.star {
                repeat = usize::from(bytes[pos]);
                pos += 1;
            }
        }
        while repeat > 0 && pos < bytes.len() {
            if !format_one(&spec, bytes, &mut pos, &mut text) {
                return false;
            }
            if let Some(sep) = spec.separ.filter(|_| pos < bytes.len()) {
                text.push(sep);
            }
            repeat -= 1;
        }
        if let Some(term) = spec.term.filter(|_| pos < bytes.len()) {
            text.push(term);
        }
    }
    out.push_str(&String::from_utf8_lossy(&text));
    true
}

/// Parses one octet-format at `h[*pos..]` the way net-snmp does: a separator or terminator is
/// any character that is not `*` or a digit, except that after a zero width `x d o` are taken as
/// the next format's code.
fn parse_spec(h: &[u8], pos: &mut usize) -> Spec {
    let at = |i: usize| h.get(i).copied().unwrap_or(0);
    let star = at(*pos) == b'*';
    if star {
        *pos += 1;
    }
    let mut width = 0usize;
    while at(*pos).is_ascii_digit() {
        width = (width * 10 + usize::from(at(*pos) - b'0')).min(MAX_WIDTH);
        *pos += 1;
    }
    let code = at(*pos);
    *pos += 1;
    let delimiter = |pos: &mut usize| {
        let ch = at(*pos);
        let is_delim = ch != 0
            && ch != b'*'
            && !ch.is_ascii_digit()
            && (width != 0 || !matches!(ch, b'x' | b'd' | b'o'));
        if is_delim {
            *pos += 1;
        }
        is_delim.then_some(ch)
    };
    let separ = delimiter(pos);
    let term = delimiter(pos);
    Spec {
        star,
        width: width.max(1),
        code,
        separ,
        term,
    }
}

/// Formats one repetition of `spec` from `bytes[*pos..]`; false for an unknown format code.
fn format_one(spec: &Spec, bytes: &[u8], pos: &mut usize, text: &mut Vec<u8>) -> bool {
    let end = pos.saturating_add(spec.width).min(bytes.len());
    let chunk = &bytes[*pos..end];
    // C `long` arithmetic: wide fields wrap rather than fail.
    let value = chunk
        .iter()
        .fold(0i64, |v, &b| v.wrapping_mul(256).wrapping_add(i64::from(b)));
    let rendered = match spec.code {
        b'x' => format!("{:x}", value as u64),
        b'd' => value.to_string(),
        b'o' => format!("{:o}", value as u64),
        b'a' | b't' => {
            text.extend_from_slice(chunk);
            *pos = end;
            return true;
        }
        _ => return false,
    };
    text.extend_from_slice(rendered.as_bytes());
    *pos = end;
    true
}

/// Appends an integer formatted by an INTEGER display hint (`d`, `d-N`, `x`, `o`, `b`), as
/// net-snmp does for INTEGER, Gauge32 and Unsigned32 (Counter and TimeTicks ignore hints).
/// Returns false, leaving `out` untouched, for any other hint.
pub fn format_integer_hint(hint: &str, value: i64, out: &mut String) -> bool {
    let h = hint.as_bytes();
    let digits = match h.first() {
        Some(b'd') => {
            let Some(shift) = decimal_shift(&h[1..]) else {
                return false;
            };
            let digits = value.unsigned_abs().to_string();
            if value < 0 {
                out.push('-');
            }
            out.push_str(&shift_point(&digits, shift));
            return true;
        }
        Some(b'x') => format!("{:x}", value as u64),
        Some(b'o') => format!("{:o}", value as u64),
        // net-snmp prints the low 32 bits, always 32 digits.
        Some(b'b') => format!("{:032b}", value as u32),
        _ => return false,
    };
    out.push_str(&digits);
    true
}

/// `-N` after `d`: N implied decimal places (C `atoi`, so trailing junk is ignored).
fn decimal_shift(rest: &[u8]) -> Option<usize> {
    let Some(after) = rest.strip_prefix(b"-") else {
        return Some(0);
    };
    let mut shift = 0usize;
    for &c in after.iter().take_while(|c| c.is_ascii_digit()) {
        shift = shift * 10 + usize::from(c - b'0');
        if shift > MAX_SHIFT {
            return None;
        }
    }
    Some(shift)
}

/// Inserts the decimal point `shift` places from the right, padding with zeros as net-snmp
/// does (`.05` for 5 with `d-2`: no leading 0 before the point).
fn shift_point(digits: &str, shift: usize) -> String {
    if shift == 0 {
        return digits.to_owned();
    }
    if shift <= digits.len() {
        let (int, frac) = digits.split_at(digits.len() - shift);
        format!("{int}.{frac}")
    } else {
        format!(".{}{digits}", "0".repeat(shift - digits.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oct(hint: &str, bytes: &[u8]) -> Option<String> {
        let mut s = String::from("pre");
        let ok = format_display_hint(hint, bytes, &mut s);
        if !ok {
            assert_eq!(s, "pre", "output must be untouched on failure");
            return None;
        }
        Some(s["pre".len()..].to_owned())
    }

    fn int(hint: &str, v: i64) -> Option<String> {
        let mut s = String::new();
        format_integer_hint(hint, v, &mut s).then_some(s)
    }

    #[test]
    fn octet_hints() {
        assert_eq!(oct("255a", b"Linux box").as_deref(), Some("Linux box"));
        assert_eq!(oct("255a", b"").as_deref(), Some(""));
        assert_eq!(
            oct("1x:", &[0x62, 0x08, 0x3e, 0xf0, 0xb1, 0xd4]).as_deref(),
            Some("62:8:3e:f0:b1:d4")
        );
        // DateAndTime, with and without the time zone
        let date = [0x07, 0xea, 11, 22, 5, 53, 22, 0, b'+', 0, 0];
        assert_eq!(
            oct("2d-1d-1d,1d:1d:1d.1d,1a1d:1d", &date).as_deref(),
            Some("2026-11-22,5:53:22.0,+0:0")
        );
        assert_eq!(
            oct("2d-1d-1d,1d:1d:1d.1d,1a1d:1d", &[0, 0, 1, 1, 0, 0, 0, 0]).as_deref(),
            Some("0-1-1,0:0:0.0")
        );
        assert_eq!(
            oct("1d.1d.1d.1d", &[192, 0, 2, 1]).as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(oct("255t", "grüß".as_bytes()).as_deref(), Some("grüß"));
        // octal, two-octet decimal, the last format reused
        assert_eq!(oct("1o", &[8, 9]).as_deref(), Some("1011"));
        assert_eq!(oct("2d", &[1, 0, 0, 5]).as_deref(), Some("2565"));
        assert_eq!(oct("1d.", &[1, 2, 3]).as_deref(), Some("1.2.3"));
    }

    #[test]
    fn octet_repeat_and_terminator() {
        // `*`: the first octet counts the repetitions; the separator still follows the last
        // one when octets remain, then `/` terminates the group and `1a` is reused
        assert_eq!(
            oct("*1d./1a", &[3, 10, 20, 30, b'x', b'y']).as_deref(),
            Some("10.20.30./xy")
        );
        // InetAddressIPv6z-like: 16 hex octets then a zone index
        assert_eq!(oct("1x", &[0xab, 0x01]).as_deref(), Some("ab1"));
        assert_eq!(oct("*1x:", &[0]).as_deref(), Some(""));
    }

    #[test]
    fn octet_bad_or_hostile_hints() {
        assert_eq!(oct("1q", b"ab"), None);
        assert_eq!(oct("255", b"ab"), None);
        assert_eq!(oct("", b"ab"), Some("9798".into()));
        assert_eq!(oct("4294967295999a", b"ab").as_deref(), Some("ab"));
        assert_eq!(oct("9d", &[1, 2]).as_deref(), Some("258"));
        assert_eq!(oct("9x", &[0xff; 9]).as_deref(), Some("ffffffffffffffff"));
        assert_eq!(oct("*", &[200]).as_deref(), Some(""));
        assert_eq!(oct("1a", &[0xff, b'a']).as_deref(), Some("\u{fffd}a"));
    }

    #[test]
    fn integer_hints() {
        assert_eq!(int("d-2", 1234).as_deref(), Some("12.34"));
        assert_eq!(int("d-2", 5).as_deref(), Some(".05"));
        assert_eq!(int("d-2", 12).as_deref(), Some(".12"));
        assert_eq!(int("d-2", -1234).as_deref(), Some("-12.34"));
        assert_eq!(int("d-2", -5).as_deref(), Some("-.05"));
        assert_eq!(int("d", -7).as_deref(), Some("-7"));
        assert_eq!(int("d-0", 7).as_deref(), Some("7"));
        assert_eq!(int("x", 255).as_deref(), Some("ff"));
        assert_eq!(int("x", -1).as_deref(), Some("ffffffffffffffff"));
        assert_eq!(int("o", 8).as_deref(), Some("10"));
        assert_eq!(
            int("b", 5).as_deref(),
            Some("00000000000000000000000000000101")
        );
        assert_eq!(int("d-3", 4_294_967_295).as_deref(), Some("4294967.295"));
        assert_eq!(int("255a", 1), None);
        assert_eq!(int("", 1), None);
        assert_eq!(int("d-99999999999", 1), None);
        assert_eq!(int("d", i64::MIN).as_deref(), Some("-9223372036854775808"));
    }
}
