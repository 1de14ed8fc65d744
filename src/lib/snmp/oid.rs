//! Owned numeric object identifiers.
//!
//! Arcs are `u32` because SNMP (RFC 2578) caps sub-identifiers at 2^32-1, and the derived
//! lexicographic order of the arc vector is exactly SNMP's OID order, so `Oid` can key ordered
//! maps and drive walk termination checks directly.

use std::fmt;

/// An owned OID such as `.1.3.6.1.2.1.1.5.0`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(Vec<u32>);

/// Why a textual OID was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseOidError(&'static str);

impl fmt::Display for ParseOidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ParseOidError {}

impl Oid {
    /// Parses dotted numeric text, with or without the leading dot. MIB names are not resolved
    /// here; that belongs to a MIB layer. The first two arcs must be BER-encodable (first arc
    /// 0..=2, second arc < 40 unless the first is 2) so every parsed OID round-trips on the wire.
    pub fn parse(text: &str) -> Result<Oid, ParseOidError> {
        let body = text.strip_prefix('.').unwrap_or(text);
        if body.is_empty() {
            return Err(ParseOidError("empty OID"));
        }
        let mut arcs = Vec::with_capacity(body.len() / 2 + 1);
        for part in body.split('.') {
            arcs.push(parse_arc(part)?);
        }
        check_head(&arcs)?;
        Ok(Oid(arcs))
    }

    pub fn arcs(&self) -> &[u32] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, arc: u32) {
        self.0.push(arc);
    }

    /// True when `prefix` is an ancestor of (or equal to) `self`: the walk-scope test.
    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// Reuses the allocation, so a poller can refill one `Oid` per varbind.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn as_vec_mut(&mut self) -> &mut Vec<u32> {
        &mut self.0
    }
}

fn parse_arc(part: &str) -> Result<u32, ParseOidError> {
    // u32::from_str accepts a leading '+', which is not OID syntax.
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseOidError("OID arcs must be decimal numbers"));
    }
    part.parse::<u32>()
        .map_err(|_| ParseOidError("OID arc exceeds 4294967295"))
}

fn check_head(arcs: &[u32]) -> Result<(), ParseOidError> {
    match arcs {
        [first, ..] if *first > 2 => Err(ParseOidError("first OID arc must be 0, 1 or 2")),
        [first, second, ..] if *first < 2 && *second >= 40 => Err(ParseOidError(
            "second OID arc must be below 40 under 0 and 1",
        )),
        // BER packs the first two arcs into one sub-identifier (40*x+y), which must fit u32
        // for agents that, like net-snmp, decode it into a 32-bit word.
        [2, second, ..] if *second > u32::MAX - 80 => {
            Err(ParseOidError("second OID arc too large"))
        }
        _ => Ok(()),
    }
}

impl From<&[u32]> for Oid {
    fn from(arcs: &[u32]) -> Oid {
        Oid(arcs.to_vec())
    }
}

impl From<Vec<u32>> for Oid {
    fn from(arcs: Vec<u32>) -> Oid {
        Oid(arcs)
    }
}

impl std::str::FromStr for Oid {
    type Err = ParseOidError;
    fn from_str(s: &str) -> Result<Oid, ParseOidError> {
        Oid::parse(s)
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_dotted(f, self.0.iter().copied())
    }
}

/// Shared by `Oid` and the borrowed wire form so both print identically (net-snmp `-On`).
pub(crate) fn write_dotted(
    f: &mut impl fmt::Write,
    arcs: impl Iterator<Item = u32>,
) -> fmt::Result {
    let mut buf = itoa::Buffer::new();
    for arc in arcs {
        f.write_char('.')?;
        f.write_str(buf.format(arc))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_with_and_without_dot() {
        let a = Oid::parse(".1.3.6.1.2").unwrap();
        let b = Oid::parse("1.3.6.1.2").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.arcs(), &[1, 3, 6, 1, 2]);
        assert_eq!(a.to_string(), ".1.3.6.1.2");
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in [
            "",
            ".",
            "1..3",
            "1.3.",
            "a.b",
            "1.3.+6",
            "1.3.-6",
            "iso.3",
            "3.1",
            "1.40",
            "1.3.4294967296",
            " 1.3",
        ] {
            assert!(Oid::parse(bad).is_err(), "{bad:?} should fail");
        }
        assert!(Oid::parse("2.999.1").is_ok());
        assert!(Oid::parse("1.3.4294967295").is_ok());
        assert!(Oid::parse("1").is_ok());
    }

    #[test]
    fn order_is_snmp_order() {
        let mut v: Vec<Oid> = [
            "1.3.6.1.2.1.2",
            "1.3.6.1.2.1.10",
            "1.3.6.1.2.1",
            "1.3.6.1.2.1.2.1",
        ]
        .iter()
        .map(|s| Oid::parse(s).unwrap())
        .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(|o| o.to_string()).collect();
        assert_eq!(
            s,
            [
                ".1.3.6.1.2.1",
                ".1.3.6.1.2.1.2",
                ".1.3.6.1.2.1.2.1",
                ".1.3.6.1.2.1.10"
            ]
        );
    }

    #[test]
    fn starts_with_and_push() {
        let mut o = Oid::from(&[1u32, 3, 6][..]);
        o.push(1);
        assert!(o.starts_with(&Oid::parse("1.3.6").unwrap()));
        assert!(o.starts_with(&o.clone()));
        assert!(!o.starts_with(&Oid::parse("1.3.7").unwrap()));
    }
}
