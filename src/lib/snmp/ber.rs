//! Minimal BER (X.690) for SNMP: definite lengths, single-byte tags, no allocation on decode.
//!
//! Decoding hands out sub-slices of the input so a response can be walked without copying;
//! every length is checked against the bytes actually present, so malformed datagrams become
//! `DecodeError`s rather than panics. Encoding appends to one caller-owned `Vec<u8>` and patches
//! lengths after the content is written, keeping length octets minimal.

use std::fmt;

pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_NULL: u8 = 0x05;
pub const TAG_OID: u8 = 0x06;
pub const TAG_SEQUENCE: u8 = 0x30;
pub const TAG_IP_ADDRESS: u8 = 0x40;
pub const TAG_COUNTER32: u8 = 0x41;
pub const TAG_GAUGE32: u8 = 0x42;
pub const TAG_TIMETICKS: u8 = 0x43;
pub const TAG_OPAQUE: u8 = 0x44;
pub const TAG_COUNTER64: u8 = 0x46;
pub const TAG_NO_SUCH_OBJECT: u8 = 0x80;
pub const TAG_NO_SUCH_INSTANCE: u8 = 0x81;
pub const TAG_END_OF_MIB_VIEW: u8 = 0x82;

/// Why bytes could not be decoded. Kept `Copy` and allocation-free because a poller may see
/// many garbage datagrams and only logs the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    Truncated,
    BadLength,
    UnexpectedTag(u8),
    UnsupportedTag(u8),
    BadInteger,
    IntegerRange,
    BadOid,
    BadValue(&'static str),
    UnsupportedVersion(i64),
    UnsupportedSecurityModel(i64),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("truncated"),
            DecodeError::BadLength => f.write_str("bad length"),
            DecodeError::UnexpectedTag(t) => write!(f, "unexpected tag 0x{t:02x}"),
            DecodeError::UnsupportedTag(t) => write!(f, "unsupported tag 0x{t:02x}"),
            DecodeError::BadInteger => f.write_str("bad integer encoding"),
            DecodeError::IntegerRange => f.write_str("integer out of range"),
            DecodeError::BadOid => f.write_str("bad object identifier"),
            DecodeError::BadValue(why) => f.write_str(why),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported SNMP version {v}"),
            DecodeError::UnsupportedSecurityModel(m) => {
                write!(f, "unsupported security model {m}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

pub type Result<T> = std::result::Result<T, DecodeError>;

/// Sequential TLV reader over a byte slice.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not yet consumed.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Reads one TLV and returns its tag and content.
    pub fn read(&mut self) -> Result<(u8, &'a [u8])> {
        let (&tag, after_tag) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
        // High-tag-number form never appears in SNMP PDUs; refusing it keeps tags one byte.
        if tag & 0x1f == 0x1f {
            return Err(DecodeError::UnsupportedTag(tag));
        }
        let (len, after_len) = read_length(after_tag)?;
        if len > after_len.len() {
            return Err(DecodeError::Truncated);
        }
        let (content, rest) = after_len.split_at(len);
        self.buf = rest;
        Ok((tag, content))
    }

    /// Reads one TLV that must carry `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<&'a [u8]> {
        let (got, content) = self.read()?;
        if got != tag {
            return Err(DecodeError::UnexpectedTag(got));
        }
        Ok(content)
    }

    pub fn read_i64(&mut self) -> Result<i64> {
        decode_i64(self.expect(TAG_INTEGER)?)
    }

    /// An INTEGER that must fit in `i32` (request-id, error-status, msgID...).
    pub fn read_i32(&mut self) -> Result<i32> {
        i32::try_from(self.read_i64()?).map_err(|_| DecodeError::IntegerRange)
    }

    pub fn read_octets(&mut self) -> Result<&'a [u8]> {
        self.expect(TAG_OCTET_STRING)
    }
}

/// Decodes a length field, returning the length and the bytes after it.
fn read_length(buf: &[u8]) -> Result<(usize, &[u8])> {
    let (&first, rest) = buf.split_first().ok_or(DecodeError::Truncated)?;
    if first < 0x80 {
        return Ok((usize::from(first), rest));
    }
    let n = usize::from(first & 0x7f);
    // 0x80 is the indefinite form (not allowed in SNMP); more than 4 octets cannot describe a
    // UDP datagram. Non-minimal long forms are accepted because some agents emit 0x82 00 xx.
    if n == 0 || n > 4 {
        return Err(DecodeError::BadLength);
    }
    if rest.len() < n {
        return Err(DecodeError::Truncated);
    }
    let (octets, rest) = rest.split_at(n);
    let len = octets
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok((len, rest))
}

/// Two's-complement big-endian INTEGER content, at most 8 octets.
pub fn decode_i64(content: &[u8]) -> Result<i64> {
    let (&first, _) = content.split_first().ok_or(DecodeError::BadInteger)?;
    if content.len() > 8 {
        return Err(DecodeError::IntegerRange);
    }
    let init: i64 = if first & 0x80 != 0 { -1 } else { 0 };
    Ok(content
        .iter()
        .fold(init, |acc, &b| (acc << 8) | i64::from(b)))
}

/// Unsigned content of up to `max_octets` octets. An extra leading 0x00 (needed when the top
/// bit is set) is what makes `max_octets` one more than the value width. A leading 1 bit is
/// read as two's complement and truncated, as net-snmp does for agents that encode e.g.
/// 0xFFFFFFFF in 4 octets.
fn decode_unsigned(content: &[u8], max_octets: usize) -> Result<u64> {
    let (&first, _) = content.split_first().ok_or(DecodeError::BadInteger)?;
    if content.len() > max_octets || (content.len() == max_octets && first != 0) {
        return Err(DecodeError::IntegerRange);
    }
    let init: u64 = if first & 0x80 != 0 { u64::MAX } else { 0 };
    Ok(content
        .iter()
        .fold(init, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Counter32 / Gauge32 / TimeTicks content (up to 5 octets with a leading zero).
pub fn decode_u32(content: &[u8]) -> Result<u32> {
    // Truncation is the intended wrap for negatively encoded values (see decode_unsigned).
    Ok(decode_unsigned(content, 5)? as u32)
}

/// Counter64 content (up to 9 octets with a leading zero).
pub fn decode_u64(content: &[u8]) -> Result<u64> {
    decode_unsigned(content, 9)
}

/// Checks OID content: every sub-identifier terminated, and every arc fits in `u32`.
pub fn validate_oid(content: &[u8]) -> Result<()> {
    let mut arcs = OidArcs::new(content);
    for arc in &mut arcs {
        arc?;
    }
    Ok(())
}

/// Iterator over the arcs of BER OID content, splitting the first sub-identifier by the
/// 40*x+y rule. Empty content yields the single arc `0`, which is how net-snmp 5.9 prints a
/// zero-length OID value (`OID: .0`).
#[derive(Clone, Debug)]
pub struct OidArcs<'a> {
    rest: &'a [u8],
    /// The second arc, once the first sub-identifier has been split.
    pending: Option<u32>,
    started: bool,
}

impl<'a> OidArcs<'a> {
    pub fn new(content: &'a [u8]) -> OidArcs<'a> {
        OidArcs {
            rest: content,
            pending: None,
            started: false,
        }
    }

    /// The first sub-identifier may reach 2^32-1 + 80, so it is read as u64.
    fn read_subid(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        loop {
            let (&b, rest) = self.rest.split_first().ok_or(DecodeError::BadOid)?;
            self.rest = rest;
            value = (value << 7) | u64::from(b & 0x7f);
            if value > u64::from(u32::MAX) + 80 {
                return Err(DecodeError::BadOid);
            }
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
    }

    fn first_two(&mut self) -> Result<u32> {
        if self.rest.is_empty() {
            return Ok(0);
        }
        let v = self.read_subid()?;
        let (x, y) = match v {
            0..=39 => (0, v),
            40..=79 => (1, v - 40),
            _ => (2, v - 80),
        };
        self.pending = Some(u32::try_from(y).map_err(|_| DecodeError::BadOid)?);
        Ok(x)
    }
}

impl Iterator for OidArcs<'_> {
    type Item = Result<u32>;

    fn next(&mut self) -> Option<Result<u32>> {
        if !self.started {
            self.started = true;
            let r = self.first_two();
            if r.is_err() {
                self.rest = &[];
            }
            return Some(r);
        }
        if let Some(y) = self.pending.take() {
            return Some(Ok(y));
        }
        if self.rest.is_empty() {
            return None;
        }
        let r = self
            .read_subid()
            .and_then(|v| u32::try_from(v).map_err(|_| DecodeError::BadOid));
        if r.is_err() {
            // Fuse: after a malformed sub-identifier the remaining bytes mean nothing.
            self.rest = &[];
        }
        Some(r)
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Appends a complete TLV whose content is already known.
pub fn write_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    write_length(out, content.len());
    out.extend_from_slice(content);
}

fn length_octets(len: usize) -> usize {
    match len {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xff_ffff => 4,
        _ => 5,
    }
}

pub fn write_length(out: &mut Vec<u8>, len: usize) {
    let n = length_octets(len);
    if n == 1 {
        out.push(len as u8);
        return;
    }
    out.push(0x80 | (n - 1) as u8);
    for i in (0..n - 1).rev() {
        out.push((len >> (8 * i)) as u8);
    }
}

/// Start of a constructed element whose length is patched by [`end`].
#[must_use = "pass the mark to ber::end"]
#[derive(Clone, Copy, Debug)]
pub struct Mark(usize);

/// Writes `tag` and a one-octet length placeholder. Most SNMP elements are short, so only long
/// ones pay for moving their content when [`end`] widens the length.
pub fn begin(out: &mut Vec<u8>, tag: u8) -> Mark {
    out.push(tag);
    out.push(0);
    Mark(out.len() - 1)
}

/// Patches the length written by [`begin`]. Returns how many octets were inserted before the
/// content, so callers holding offsets into that content can adjust them.
pub fn end(out: &mut Vec<u8>, mark: Mark) -> usize {
    let len_pos = mark.0;
    let len = out.len() - len_pos - 1;
    let n = length_octets(len);
    if n == 1 {
        out[len_pos] = len as u8;
        return 0;
    }
    let mut hdr = [0u8; 5];
    hdr[0] = 0x80 | (n - 1) as u8;
    for (k, slot) in hdr[1..n].iter_mut().enumerate() {
        *slot = (len >> (8 * (n - 2 - k))) as u8;
    }
    out.splice(len_pos..=len_pos, hdr[..n].iter().copied());
    n - 1
}

/// Minimal two's-complement INTEGER.
pub fn write_i64(out: &mut Vec<u8>, tag: u8, v: i64) {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    // Drop a leading octet while the next one still carries the same sign.
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    write_tlv(out, tag, &bytes[start..]);
}

/// Minimal unsigned INTEGER-like value (Counter32, Counter64, ...), with a leading zero octet
/// when the top bit would otherwise read as a sign.
pub fn write_u64(out: &mut Vec<u8>, tag: u8, v: u64) {
    let mut buf = [0u8; 9];
    buf[1..].copy_from_slice(&v.to_be_bytes());
    let mut start = 0;
    while start < 8 && buf[start] == 0 && buf[start + 1] & 0x80 == 0 {
        start += 1;
    }
    write_tlv(out, tag, &buf[start..]);
}

fn write_subid(out: &mut Vec<u8>, v: u64) {
    let mut groups = 1;
    while groups < 10 && v >> (7 * groups) != 0 {
        groups += 1;
    }
    for i in (0..groups).rev() {
        let cont = if i == 0 { 0 } else { 0x80 };
        out.push(((v >> (7 * i)) & 0x7f) as u8 | cont);
    }
}

/// OID content for `arcs`. Fewer than two arcs are padded with zeros (as net-snmp does), so
/// `.1` goes out as `1.0`; arcs that break the 40*x+y rule are packed anyway, which is why
/// `Oid::parse` rejects them up front.
pub fn write_oid_content(out: &mut Vec<u8>, arcs: &[u32]) {
    let x = u64::from(arcs.first().copied().unwrap_or(0));
    let y = u64::from(arcs.get(1).copied().unwrap_or(0));
    write_subid(out, x * 40 + y);
    for &arc in arcs.iter().skip(2) {
        write_subid(out, u64::from(arc));
    }
}

pub fn write_oid(out: &mut Vec<u8>, arcs: &[u32]) {
    let m = begin(out, TAG_OID);
    write_oid_content(out, arcs);
    end(out, m);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arcs_of(content: &[u8]) -> Result<Vec<u32>> {
        OidArcs::new(content).collect()
    }

    fn enc_oid(arcs: &[u32]) -> Vec<u8> {
        let mut v = Vec::new();
        write_oid_content(&mut v, arcs);
        v
    }

    #[test]
    fn lengths_short_and_long() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 300_000] {
            let mut out = Vec::new();
            out.push(TAG_OCTET_STRING);
            write_length(&mut out, len);
            out.resize(out.len() + len, 0xAB);
            let mut r = Reader::new(&out);
            let (tag, content) = r.read().unwrap();
            assert_eq!((tag, content.len()), (TAG_OCTET_STRING, len));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn reader_rejects_bad_lengths() {
        assert_eq!(Reader::new(&[]).read(), Err(DecodeError::Truncated));
        assert_eq!(Reader::new(&[0x04]).read(), Err(DecodeError::Truncated));
        assert_eq!(
            Reader::new(&[0x04, 0x02, 1]).read(),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0x04, 0x80]).read(),
            Err(DecodeError::BadLength)
        );
        assert_eq!(
            Reader::new(&[0x04, 0x85, 0, 0, 0, 0, 1]).read(),
            Err(DecodeError::BadLength)
        );
        assert_eq!(
            Reader::new(&[0x04, 0x82, 0x01]).read(),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0x1f, 0x01, 0]).read(),
            Err(DecodeError::UnsupportedTag(0x1f))
        );
        // Non-minimal long form is tolerated.
        assert_eq!(
            Reader::new(&[0x04, 0x82, 0, 1, 7]).read(),
            Ok((0x04, &[7u8][..]))
        );
    }

    #[test]
    fn integers() {
        for v in [
            0i64,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            write_i64(&mut out, TAG_INTEGER, v);
            assert_eq!(Reader::new(&out).read_i64(), Ok(v), "{v}");
        }
        let mut out = Vec::new();
        write_i64(&mut out, TAG_INTEGER, 128);
        assert_eq!(out, [0x02, 0x02, 0x00, 0x80]);
        out.clear();
        write_i64(&mut out, TAG_INTEGER, -129);
        assert_eq!(out, [0x02, 0x02, 0xff, 0x7f]);
        assert_eq!(decode_i64(&[]), Err(DecodeError::BadInteger));
        assert_eq!(decode_i64(&[0; 9]), Err(DecodeError::IntegerRange));
    }

    #[test]
    fn unsigned_widths() {
        assert_eq!(decode_u32(&[0x00, 0xff, 0xff, 0xff, 0xff]), Ok(u32::MAX));
        assert_eq!(decode_u32(&[0xff, 0xff, 0xff, 0xff]), Ok(u32::MAX));
        assert_eq!(decode_u32(&[0x80]), Ok(0xffff_ff80));
        assert_eq!(
            decode_u32(&[0x01, 0, 0, 0, 0]),
            Err(DecodeError::IntegerRange)
        );
        assert_eq!(decode_u32(&[0; 6]), Err(DecodeError::IntegerRange));
        assert_eq!(decode_u32(&[]), Err(DecodeError::BadInteger));
        assert_eq!(
            decode_u64(&[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Ok(u64::MAX)
        );
        assert_eq!(
            decode_u64(&[1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::IntegerRange)
        );
        for v in [
            0u64,
            127,
            128,
            255,
            256,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
            1 << 63,
        ] {
            let mut out = Vec::new();
            write_u64(&mut out, TAG_COUNTER64, v);
            assert_eq!(decode_u64(&out[2..]), Ok(v), "{v}");
        }
        let mut out = Vec::new();
        write_u64(&mut out, TAG_COUNTER32, u32::MAX as u64);
        assert_eq!(out, [0x41, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn oid_arc_edges() {
        for arcs in [
            vec![1, 3, 0],
            vec![1, 3, 127],
            vec![1, 3, 128],
            vec![1, 3, 16383],
            vec![1, 3, 16384],
            vec![1, 3, u32::MAX],
            vec![0, 0],
            vec![0, 39],
            vec![1, 39, 5],
            vec![2, 40],
            vec![2, 999, 3],
            vec![2, u32::MAX - 80],
        ] {
            let c = enc_oid(&arcs);
            assert_eq!(arcs_of(&c).unwrap(), arcs, "{arcs:?} -> {c:02x?}");
        }
        assert_eq!(enc_oid(&[1, 3, 128]), [0x2b, 0x81, 0x00]);
        assert_eq!(enc_oid(&[1, 3, 16384]), [0x2b, 0x81, 0x80, 0x00]);
        assert_eq!(enc_oid(&[2, 999, 3]), [0x88, 0x37, 0x03]);
        assert_eq!(
            enc_oid(&[1, 3, u32::MAX]),
            [0x2b, 0x8f, 0xff, 0xff, 0xff, 0x7f]
        );
        // One past u32::MAX in a later arc is rejected, as is an unterminated sub-identifier.
        assert_eq!(
            arcs_of(&[0x2b, 0x90, 0x80, 0x80, 0x80, 0x00]),
            Err(DecodeError::BadOid)
        );
        assert_eq!(arcs_of(&[0x2b, 0x81]), Err(DecodeError::BadOid));
        assert_eq!(arcs_of(&[0x88]), Err(DecodeError::BadOid));
        assert_eq!(arcs_of(&[]).unwrap(), [0]);
        // 2.(2^32-1-80+1) would make y > u32::MAX - 80 still fine; y itself must fit u32.
        let huge = enc_oid(&[2, u32::MAX]);
        assert_eq!(arcs_of(&huge).unwrap(), [2, u32::MAX]);
    }

    #[test]
    fn begin_end_patches_long_lengths() {
        for n in [0usize, 5, 127, 128, 200, 255, 256, 70_000] {
            let mut out = vec![0xEE];
            let m = begin(&mut out, TAG_SEQUENCE);
            out.resize(out.len() + n, 0x11);
            let inserted = end(&mut out, m);
            assert_eq!(inserted, length_octets(n) - 1);
            let mut r = Reader::new(&out[1..]);
            let (tag, c) = r.read().unwrap();
            assert_eq!((tag, c.len()), (TAG_SEQUENCE, n));
            assert!(c.iter().all(|&b| b == 0x11));
        }
    }
}
