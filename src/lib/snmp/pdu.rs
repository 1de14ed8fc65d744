//! SNMP messages and PDUs (RFC 1157, RFC 3416, RFC 3412/3414 framing) over [`super::ber`].
//!
//! Decoding borrows from the datagram: varbinds are decoded lazily by [`VarBinds`], values that
//! are strings or OIDs stay slices of the input, so a poller allocates nothing per varbind.
//! Security (HMAC, encryption) is out of scope here; v3 decoding exposes exactly the pieces a
//! USM layer needs (auth-params offset, encrypted payload) and v3 encoding leaves an
//! auth-params placeholder to fill in.
//!
//! All `encode_*` functions APPEND to `out` (they never clear it), so several messages or a
//! header can share one buffer; offsets they return are indices into `out`.

use std::cmp::Ordering;
use std::fmt;

pub use super::ber::DecodeError;
use super::ber::{self, OidArcs, Reader, Result};
use super::oid::{self, Oid};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2c,
    V3,
}

impl Version {
    pub fn wire(self) -> i64 {
        match self {
            Version::V1 => 0,
            Version::V2c => 1,
            Version::V3 => 3,
        }
    }

    fn from_wire(v: i64) -> Result<Version> {
        match v {
            0 => Ok(Version::V1),
            1 => Ok(Version::V2c),
            3 => Ok(Version::V3),
            _ => Err(DecodeError::UnsupportedVersion(v)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PduType {
    Get,
    GetNext,
    Response,
    Set,
    GetBulk,
    Inform,
    TrapV2,
    Report,
    /// The RFC 1157 Trap-PDU (tag 0xA4), whose layout differs from every other PDU.
    TrapV1,
}

impl PduType {
    pub fn tag(self) -> u8 {
        match self {
            PduType::Get => 0xA0,
            PduType::GetNext => 0xA1,
            PduType::Response => 0xA2,
            PduType::Set => 0xA3,
            PduType::TrapV1 => 0xA4,
            PduType::GetBulk => 0xA5,
            PduType::Inform => 0xA6,
            PduType::TrapV2 => 0xA7,
            PduType::Report => 0xA8,
        }
    }

    pub fn from_tag(tag: u8) -> Option<PduType> {
        Some(match tag {
            0xA0 => PduType::Get,
            0xA1 => PduType::GetNext,
            0xA2 => PduType::Response,
            0xA3 => PduType::Set,
            0xA4 => PduType::TrapV1,
            0xA5 => PduType::GetBulk,
            0xA6 => PduType::Inform,
            0xA7 => PduType::TrapV2,
            0xA8 => PduType::Report,
            _ => return None,
        })
    }
}

/// The BER content octets of an OBJECT IDENTIFIER, validated on construction so that reading
/// arcs cannot fail later. Comparisons work on arcs without allocating.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OidRef<'a>(&'a [u8]);

impl<'a> OidRef<'a> {
    /// Validates `content` (terminated sub-identifiers, arcs within u32).
    pub fn new(content: &'a [u8]) -> Result<OidRef<'a>> {
        ber::validate_oid(content)?;
        Ok(OidRef(content))
    }

    /// The raw content octets, e.g. for hashing or re-encoding without decoding.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    pub fn arcs(&self) -> impl Iterator<Item = u32> + 'a {
        // Validated in `new`, so the error arm is unreachable; it maps to 0 rather than panic.
        OidArcs::new(self.0).map(|r| r.unwrap_or(0))
    }

    /// Appends the arcs to `out` (which is not cleared), reusing its allocation.
    pub fn write_arcs(&self, out: &mut Vec<u32>) {
        out.extend(self.arcs());
    }

    pub fn to_oid(&self) -> Oid {
        let mut v = Vec::with_capacity(self.0.len() + 1);
        self.write_arcs(&mut v);
        Oid::from(v)
    }

    /// SNMP (lexicographic) order against an owned OID.
    pub fn cmp_oid(&self, other: &Oid) -> Ordering {
        self.arcs().cmp(other.arcs().iter().copied())
    }

    pub fn starts_with(&self, prefix: &Oid) -> bool {
        let mut mine = self.arcs();
        prefix.arcs().iter().all(|&p| mine.next() == Some(p))
    }
}

impl fmt::Display for OidRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        oid::write_dotted(f, self.arcs())
    }
}

impl fmt::Debug for OidRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OidRef({self})")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Integer(i64),
    OctetString(&'a [u8]),
    Null,
    ObjectId(OidRef<'a>),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(&'a [u8]),
    Counter64(u64),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl<'a> Value<'a> {
    fn decode(tag: u8, c: &'a [u8]) -> Result<Value<'a>> {
        Ok(match tag {
            ber::TAG_INTEGER => Value::Integer(ber::decode_i64(c)?),
            ber::TAG_OCTET_STRING => Value::OctetString(c),
            ber::TAG_NULL => Value::Null,
            ber::TAG_OID => Value::ObjectId(OidRef::new(c)?),
            ber::TAG_IP_ADDRESS => Value::IpAddress(
                c.try_into()
                    .map_err(|_| DecodeError::BadValue("IpAddress is not 4 octets"))?,
            ),
            ber::TAG_COUNTER32 => Value::Counter32(ber::decode_u32(c)?),
            ber::TAG_GAUGE32 => Value::Gauge32(ber::decode_u32(c)?),
            ber::TAG_TIMETICKS => Value::TimeTicks(ber::decode_u32(c)?),
            ber::TAG_OPAQUE => Value::Opaque(c),
            ber::TAG_COUNTER64 => Value::Counter64(ber::decode_u64(c)?),
            ber::TAG_NO_SUCH_OBJECT => Value::NoSuchObject,
            ber::TAG_NO_SUCH_INSTANCE => Value::NoSuchInstance,
            ber::TAG_END_OF_MIB_VIEW => Value::EndOfMibView,
            other => return Err(DecodeError::UnexpectedTag(other)),
        })
    }

    /// True for the v2 exception values that end or skip a walk column.
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarBind<'a> {
    pub oid: OidRef<'a>,
    pub value: Value<'a>,
}

/// The extra header of an RFC 1157 Trap-PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapV1Header<'a> {
    pub enterprise: OidRef<'a>,
    pub agent_addr: [u8; 4],
    pub generic_trap: i64,
    pub specific_trap: i64,
    pub time_stamp: u32,
}

/// A decoded PDU header plus its still-encoded varbind list. For GetBulk, `error_status` and
/// `error_index` hold non-repeaters and max-repetitions (same wire positions). For TrapV1 the
/// three integers are 0 and `trap_v1` carries the trap header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pdu<'a> {
    pub kind: PduType,
    pub request_id: i32,
    pub error_status: i32,
    pub error_index: i32,
    pub trap_v1: Option<TrapV1Header<'a>>,
    varbinds: &'a [u8],
}

impl<'a> Pdu<'a> {
    pub fn varbinds(&self) -> VarBinds<'a> {
        VarBinds {
            reader: Reader::new(self.varbinds),
        }
    }

    /// The encoded VarBindList content, e.g. to count or forward without decoding.
    pub fn raw_varbinds(&self) -> &'a [u8] {
        self.varbinds
    }

    fn decode(tag: u8, content: &'a [u8]) -> Result<Pdu<'a>> {
        let kind = PduType::from_tag(tag).ok_or(DecodeError::UnexpectedTag(tag))?;
        let mut r = Reader::new(content);
        if kind == PduType::TrapV1 {
            return Self::decode_trap_v1(r);
        }
        let request_id = r.read_i32()?;
        let error_status = r.read_i32()?;
        let error_index = r.read_i32()?;
        let varbinds = r.expect(ber::TAG_SEQUENCE)?;
        Ok(Pdu {
            kind,
            request_id,
            error_status,
            error_index,
            trap_v1: None,
            varbinds,
        })
    }

    fn decode_trap_v1(mut r: Reader<'a>) -> Result<Pdu<'a>> {
        let enterprise = OidRef::new(r.expect(ber::TAG_OID)?)?;
        let agent_addr = r
            .expect(ber::TAG_IP_ADDRESS)?
            .try_into()
            .map_err(|_| DecodeError::BadValue("IpAddress is not 4 octets"))?;
        let generic_trap = r.read_i64()?;
        let specific_trap = r.read_i64()?;
        let time_stamp = ber::decode_u32(r.expect(ber::TAG_TIMETICKS)?)?;
        let varbinds = r.expect(ber::TAG_SEQUENCE)?;
        Ok(Pdu {
            kind: PduType::TrapV1,
            request_id: 0,
            error_status: 0,
            error_index: 0,
            trap_v1: Some(TrapV1Header {
                enterprise,
                agent_addr,
                generic_trap,
                specific_trap,
                time_stamp,
            }),
            varbinds,
        })
    }
}

/// Lazily decodes a VarBindList. A varbind whose content is bad (say an unknown value type)
/// yields an error and the iterator moves on, because its SEQUENCE framing still locates the
/// next one; broken framing yields one error and ends the iteration.
#[derive(Clone, Debug)]
pub struct VarBinds<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for VarBinds<'a> {
    type Item = Result<VarBind<'a>>;

    fn next(&mut self) -> Option<Result<VarBind<'a>>> {
        if self.reader.is_empty() {
            return None;
        }
        match self.reader.expect(ber::TAG_SEQUENCE) {
            Ok(content) => Some(decode_varbind(content)),
            Err(e) => {
                self.reader = Reader::new(&[]);
                Some(Err(e))
            }
        }
    }
}

fn decode_varbind(content: &[u8]) -> Result<VarBind<'_>> {
    let mut vb = Reader::new(content);
    let oid = OidRef::new(vb.expect(ber::TAG_OID)?)?;
    let (tag, content) = vb.read()?;
    let value = Value::decode(tag, content)?;
    Ok(VarBind { oid, value })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Community {
        version: Version,
        community: &'a [u8],
        pdu: Pdu<'a>,
    },
    V3(MessageV3<'a>),
}

pub const FLAG_AUTH: u8 = 1;
pub const FLAG_PRIV: u8 = 2;
pub const FLAG_REPORTABLE: u8 = 4;

/// The User-based Security Model's security model number (RFC 3414).
pub const SECURITY_MODEL_USM: i32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageV3<'a> {
    pub msg_id: i32,
    pub max_size: i32,
    pub flags: u8,
    pub security_model: i32,
    pub usm: UsmParams<'a>,
    pub scoped: Scoped<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsmParams<'a> {
    pub engine_id: &'a [u8],
    pub engine_boots: u32,
    pub engine_time: u32,
    pub user: &'a [u8],
    pub auth_params: &'a [u8],
    /// Byte offset of `auth_params` content within the decoded buffer, so the caller can copy
    /// the message, zero these bytes and recompute the HMAC.
    pub auth_params_offset: usize,
    pub priv_params: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scoped<'a> {
    Plain(ScopedPdu<'a>),
    /// The encryptedPDU OCTET STRING content; decrypt, then use [`decode_scoped_pdu`].
    Encrypted(&'a [u8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopedPdu<'a> {
    pub context_engine_id: &'a [u8],
    pub context_name: &'a [u8],
    pub pdu: Pdu<'a>,
}

/// Decodes a whole datagram. Bytes after the outer SEQUENCE are ignored.
pub fn decode(buf: &[u8]) -> Result<Message<'_>> {
    let mut msg = Reader::new(Reader::new(buf).expect(ber::TAG_SEQUENCE)?);
    let version = Version::from_wire(msg.read_i64()?)?;
    if version == Version::V3 {
        return decode_v3(buf, msg).map(Message::V3);
    }
    let community = msg.read_octets()?;
    let (tag, content) = msg.read()?;
    Ok(Message::Community {
        version,
        community,
        pdu: Pdu::decode(tag, content)?,
    })
}

fn decode_v3<'a>(buf: &'a [u8], mut msg: Reader<'a>) -> Result<MessageV3<'a>> {
    let mut global = Reader::new(msg.expect(ber::TAG_SEQUENCE)?);
    let msg_id = global.read_i32()?;
    let max_size = global.read_i32()?;
    let flags = match global.read_octets()? {
        [f] => *f,
        _ => return Err(DecodeError::BadValue("msgFlags is not one octet")),
    };
    let security_model = global.read_i32()?;
    if security_model != SECURITY_MODEL_USM {
        return Err(DecodeError::UnsupportedSecurityModel(security_model.into()));
    }
    let usm = decode_usm(buf, msg.read_octets()?)?;
    let (tag, content) = msg.read()?;
    let scoped = match tag {
        ber::TAG_SEQUENCE => Scoped::Plain(decode_scoped_content(content)?),
        ber::TAG_OCTET_STRING => Scoped::Encrypted(content),
        other => return Err(DecodeError::UnexpectedTag(other)),
    };
    Ok(MessageV3 {
        msg_id,
        max_size,
        flags,
        security_model,
        usm,
        scoped,
    })
}

fn decode_usm<'a>(buf: &'a [u8], wrapped: &'a [u8]) -> Result<UsmParams<'a>> {
    let mut r = Reader::new(Reader::new(wrapped).expect(ber::TAG_SEQUENCE)?);
    let engine_id = r.read_octets()?;
    let engine_boots = non_negative_u32(r.read_i64()?)?;
    let engine_time = non_negative_u32(r.read_i64()?)?;
    let user = r.read_octets()?;
    let auth_params = r.read_octets()?;
    let priv_params = r.read_octets()?;
    Ok(UsmParams {
        engine_id,
        engine_boots,
        engine_time,
        user,
        auth_params,
        auth_params_offset: offset_in(buf, auth_params)?,
        priv_params,
    })
}

/// msgAuthoritativeEngineBoots/Time are INTEGER (0..2147483647).
fn non_negative_u32(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| DecodeError::IntegerRange)
}

/// Where `part` (a sub-slice handed out by the reader) starts within `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> Result<usize> {
    let off = (part.as_ptr() as usize)
        .checked_sub(whole.as_ptr() as usize)
        .ok_or(DecodeError::BadLength)?;
    if off + part.len() > whole.len() {
        return Err(DecodeError::BadLength);
    }
    Ok(off)
}

/// Decodes a (decrypted) ScopedPDU. Trailing bytes such as DES padding are ignored.
pub fn decode_scoped_pdu(plain: &[u8]) -> Result<ScopedPdu<'_>> {
    decode_scoped_content(Reader::new(plain).expect(ber::TAG_SEQUENCE)?)
}

fn decode_scoped_content(content: &[u8]) -> Result<ScopedPdu<'_>> {
    let mut r = Reader::new(content);
    let context_engine_id = r.read_octets()?;
    let context_name = r.read_octets()?;
    let (tag, pdu) = r.read()?;
    Ok(ScopedPdu {
        context_engine_id,
        context_name,
        pdu: Pdu::decode(tag, pdu)?,
    })
}

/// The request-id of a v1/v2c message or the msgID of a v3 message, read without decoding
/// the rest, for routing replies that share one socket.
pub fn peek_id(buf: &[u8]) -> Option<i32> {
    let mut msg = Reader::new(Reader::new(buf).expect(ber::TAG_SEQUENCE).ok()?);
    match msg.read_i64().ok()? {
        0 | 1 => {
            msg.read_octets().ok()?;
            let (_, pdu) = msg.read().ok()?;
            Reader::new(pdu).read_i32().ok()
        }
        3 => Reader::new(msg.expect(ber::TAG_SEQUENCE).ok()?)
            .read_i32()
            .ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// A request PDU whose varbinds all carry NULL values.
#[derive(Clone, Copy, Debug)]
pub struct Request<'o> {
    pub kind: PduType,
    pub request_id: i32,
    /// GetBulk only; other kinds send error-status 0.
    pub non_repeaters: i32,
    /// GetBulk only; other kinds send error-index 0.
    pub max_repetitions: i32,
    pub oids: &'o [Oid],
}

fn write_request_pdu(out: &mut Vec<u8>, req: &Request) {
    let (second, third) = if req.kind == PduType::GetBulk {
        (req.non_repeaters, req.max_repetitions)
    } else {
        (0, 0)
    };
    let pdu = ber::begin(out, req.kind.tag());
    ber::write_i64(out, ber::TAG_INTEGER, req.request_id.into());
    ber::write_i64(out, ber::TAG_INTEGER, second.into());
    ber::write_i64(out, ber::TAG_INTEGER, third.into());
    let list = ber::begin(out, ber::TAG_SEQUENCE);
    for oid in req.oids {
        let vb = ber::begin(out, ber::TAG_SEQUENCE);
        ber::write_oid(out, oid.arcs());
        out.extend_from_slice(&[ber::TAG_NULL, 0]);
        ber::end(out, vb);
    }
    ber::end(out, list);
    ber::end(out, pdu);
}

/// Appends a v1/v2c message. (A v3 `version` is written as given but makes no sense here.)
pub fn encode_community(out: &mut Vec<u8>, version: Version, community: &[u8], req: &Request) {
    let msg = ber::begin(out, ber::TAG_SEQUENCE);
    ber::write_i64(out, ber::TAG_INTEGER, version.wire());
    ber::write_tlv(out, ber::TAG_OCTET_STRING, community);
    write_request_pdu(out, req);
    ber::end(out, msg);
}

/// Appends a ScopedPDU SEQUENCE (the plaintext that v3 privacy encrypts).
pub fn encode_scoped_pdu(
    out: &mut Vec<u8>,
    context_engine_id: &[u8],
    context_name: &[u8],
    req: &Request,
) {
    let seq = ber::begin(out, ber::TAG_SEQUENCE);
    ber::write_tlv(out, ber::TAG_OCTET_STRING, context_engine_id);
    ber::write_tlv(out, ber::TAG_OCTET_STRING, context_name);
    write_request_pdu(out, req);
    ber::end(out, seq);
}

/// USM security parameters to send.
#[derive(Clone, Copy, Debug)]
pub struct UsmOut<'a> {
    pub engine_id: &'a [u8],
    pub engine_boots: u32,
    pub engine_time: u32,
    pub user: &'a [u8],
    /// Length of the zero-filled msgAuthenticationParameters placeholder; 0 sends it empty.
    pub auth_len: usize,
    pub priv_params: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub enum ScopedOut<'a> {
    /// An already encoded ScopedPDU SEQUENCE (from [`encode_scoped_pdu`]).
    Plain(&'a [u8]),
    /// Ciphertext, sent as the encryptedPDU OCTET STRING.
    Encrypted(&'a [u8]),
}

/// Appends a v3 message with security model USM and returns the index in `out` of the
/// `auth_len` zero octets, where the caller writes the HMAC computed over the whole message
/// (which starts at `out.len()` as it was before the call).
pub fn encode_v3(
    out: &mut Vec<u8>,
    msg_id: i32,
    max_size: i32,
    flags: u8,
    usm: &UsmOut,
    scoped: ScopedOut,
) -> usize {
    let msg = ber::begin(out, ber::TAG_SEQUENCE);
    ber::write_i64(out, ber::TAG_INTEGER, Version::V3.wire());
    let global = ber::begin(out, ber::TAG_SEQUENCE);
    ber::write_i64(out, ber::TAG_INTEGER, msg_id.into());
    ber::write_i64(out, ber::TAG_INTEGER, max_size.into());
    ber::write_tlv(out, ber::TAG_OCTET_STRING, &[flags]);
    ber::write_i64(out, ber::TAG_INTEGER, SECURITY_MODEL_USM.into());
    ber::end(out, global);

    let wrapper = ber::begin(out, ber::TAG_OCTET_STRING);
    let seq = ber::begin(out, ber::TAG_SEQUENCE);
    ber::write_tlv(out, ber::TAG_OCTET_STRING, usm.engine_id);
    ber::write_i64(out, ber::TAG_INTEGER, usm.engine_boots.into());
    ber::write_i64(out, ber::TAG_INTEGER, usm.engine_time.into());
    ber::write_tlv(out, ber::TAG_OCTET_STRING, usm.user);
    out.push(ber::TAG_OCTET_STRING);
    ber::write_length(out, usm.auth_len);
    let mut auth_at = out.len();
    out.resize(auth_at + usm.auth_len, 0);
    ber::write_tlv(out, ber::TAG_OCTET_STRING, usm.priv_params);
    // Widening an enclosing length inserts octets before the placeholder and shifts it.
    auth_at += ber::end(out, seq);
    auth_at += ber::end(out, wrapper);

    match scoped {
        ScopedOut::Plain(bytes) => out.extend_from_slice(bytes),
        ScopedOut::Encrypted(bytes) => ber::write_tlv(out, ber::TAG_OCTET_STRING, bytes),
    }
    auth_at += ber::end(out, msg);
    auth_at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::text;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn oids(list: &[&str]) -> Vec<Oid> {
        list.iter().map(|s| Oid::parse(s).unwrap()).collect()
    }

    // Captured from net-snmp 5.9.3: what `snmpget`/`snmpbulkget` sent, and what snmpd answered.
    const NETSNMP_GET: &str = "303702010104067075626c6963a02a020470b06ac3020100020100301c300c06082b060102010105000500300c06082b060102010102000500";
    const NETSNMP_BULK: &str = "303702010104067075626c6963a52a02044933e3cb020101020107301c300b06072b0601020101050500300d06092b060102010202010a0500";
    const REPLY_GET: &str = "304a02010104067075626c6963a23d020470b06ac3020100020100302f301506082b0601020101050004096c61622d736e6d7064301606082b06010201010200060a2b06010401bf0803020a";
    const REPLY_BULK: &str = "3081b502010104067075626c6963a281a702044933e3cb020100020100308198301506082b0601020101050004096c61622d736e6d70643013060a2b060102010202010a01410500cd55c720300f060a2b060102010202010a02410100300f060a2b060102010202010a034101003012060a2b060102010202010a0441041229558f3012060a2b060102010202010b0141040500dfed300f060a2b060102010202010b02410100300f060a2b060102010202010b03410100";

    fn lines(buf: &[u8]) -> Vec<String> {
        let Message::Community { pdu, .. } = decode(buf).unwrap() else {
            panic!("not a community message")
        };
        pdu.varbinds()
            .map(|vb| {
                let mut s = String::new();
                text::write_varbind(&mut s, &vb.unwrap());
                s
            })
            .collect()
    }

    #[test]
    fn encodes_like_netsnmp() {
        let get = oids(&["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.2.0"]);
        let mut out = vec![];
        let req = Request {
            kind: PduType::Get,
            request_id: 0x70b06ac3,
            non_repeaters: 9, // ignored for Get
            max_repetitions: 9,
            oids: &get,
        };
        encode_community(&mut out, Version::V2c, b"public", &req);
        assert_eq!(out, hex(NETSNMP_GET));

        let bulk = oids(&["1.3.6.1.2.1.1.5", "1.3.6.1.2.1.2.2.1.10"]);
        out.clear();
        let req = Request {
            kind: PduType::GetBulk,
            request_id: 0x4933e3cb,
            non_repeaters: 1,
            max_repetitions: 7,
            oids: &bulk,
        };
        encode_community(&mut out, Version::V2c, b"public", &req);
        assert_eq!(out, hex(NETSNMP_BULK));
    }

    #[test]
    fn decodes_real_get_response() {
        let buf = hex(REPLY_GET);
        let Message::Community {
            version,
            community,
            pdu,
        } = decode(&buf).unwrap()
        else {
            panic!()
        };
        assert_eq!((version, community), (Version::V2c, &b"public"[..]));
        assert_eq!(pdu.kind, PduType::Response);
        assert_eq!(
            (pdu.request_id, pdu.error_status, pdu.error_index),
            (0x70b06ac3, 0, 0)
        );
        assert_eq!(
            lines(&buf),
            [
                ".1.3.6.1.2.1.1.5.0 = STRING: \"lab-snmpd\"",
                ".1.3.6.1.2.1.1.2.0 = OID: .1.3.6.1.4.1.8072.3.2.10",
            ]
        );
        assert_eq!(peek_id(&buf), Some(0x70b06ac3));
    }

    #[test]
    fn decodes_real_bulk_response() {
        let buf = hex(REPLY_BULK);
        assert_eq!(
            lines(&buf),
            [
                ".1.3.6.1.2.1.1.5.0 = STRING: \"lab-snmpd\"",
                ".1.3.6.1.2.1.2.2.1.10.1 = Counter32: 3444950816",
                ".1.3.6.1.2.1.2.2.1.10.2 = Counter32: 0",
                ".1.3.6.1.2.1.2.2.1.10.3 = Counter32: 0",
                ".1.3.6.1.2.1.2.2.1.10.4 = Counter32: 304698767",
                ".1.3.6.1.2.1.2.2.1.11.1 = Counter32: 83943405",
                ".1.3.6.1.2.1.2.2.1.11.2 = Counter32: 0",
                ".1.3.6.1.2.1.2.2.1.11.3 = Counter32: 0",
            ]
        );
        assert_eq!(peek_id(&buf), Some(0x4933e3cb));
    }

    // net-snmp 5.9.3 `snmpget -v3` engine-discovery probe, and snmpd's Report in reply.
    const V3_PROBE: &str = "303e020103301102047bab5be2020300ffe30401040201030410300e0400020100020100040004000400301404000400a00e0204246763bf0201000201003000";
    const V3_REPORT: &str = "3072020103301102047bab5be2020300ffe304010002010304223020041180001f8880882787085f77026b00000000020101020202660400040004003036041180001f8880882787085f77026b000000000400a81f0204246763bf0201000201003011300f060a2b060106030f01010400410101";

    #[test]
    fn v3_discovery_matches_netsnmp() {
        let req = Request {
            kind: PduType::Get,
            request_id: 0x246763bf,
            non_repeaters: 0,
            max_repetitions: 0,
            oids: &[],
        };
        let mut scoped = vec![];
        encode_scoped_pdu(&mut scoped, b"", b"", &req);
        let usm = UsmOut {
            engine_id: b"",
            engine_boots: 0,
            engine_time: 0,
            user: b"",
            auth_len: 0,
            priv_params: b"",
        };
        let mut out = vec![];
        encode_v3(
            &mut out,
            0x7bab5be2,
            65507,
            FLAG_REPORTABLE,
            &usm,
            ScopedOut::Plain(&scoped),
        );
        assert_eq!(out, hex(V3_PROBE));

        let buf = hex(V3_REPORT);
        assert_eq!(peek_id(&buf), Some(0x7bab5be2));
        let Message::V3(m) = decode(&buf).unwrap() else {
            panic!()
        };
        assert_eq!((m.msg_id, m.max_size, m.flags), (0x7bab5be2, 65507, 0));
        assert_eq!(
            m.usm.engine_id,
            hex("80001f8880882787085f77026b00000000").as_slice()
        );
        assert_eq!((m.usm.engine_boots, m.usm.engine_time), (1, 614));
        assert_eq!((m.usm.user, m.usm.auth_params), (&b""[..], &b""[..]));
        let Scoped::Plain(sp) = m.scoped else {
            panic!()
        };
        assert_eq!(sp.context_engine_id, m.usm.engine_id);
        assert_eq!(
            (sp.pdu.kind, sp.pdu.request_id),
            (PduType::Report, 0x246763bf)
        );
        let mut line = String::new();
        text::write_varbind(&mut line, &sp.pdu.varbinds().next().unwrap().unwrap());
        assert_eq!(line, ".1.3.6.1.6.3.15.1.1.4.0 = Counter32: 1");
    }

    /// A Response PDU with arbitrary values, built with the BER writer.
    fn response_with(values: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = vec![];
        let msg = ber::begin(&mut out, ber::TAG_SEQUENCE);
        ber::write_i64(&mut out, ber::TAG_INTEGER, 1);
        ber::write_tlv(&mut out, ber::TAG_OCTET_STRING, b"public");
        let pdu = ber::begin(&mut out, PduType::Response.tag());
        for v in [-7i64, 0, 0] {
            ber::write_i64(&mut out, ber::TAG_INTEGER, v);
        }
        let list = ber::begin(&mut out, ber::TAG_SEQUENCE);
        for (i, (tag, content)) in values.iter().enumerate() {
            let vb = ber::begin(&mut out, ber::TAG_SEQUENCE);
            ber::write_oid(&mut out, &[1, 3, 6, 1, 4, 1, 99, i as u32]);
            ber::write_tlv(&mut out, *tag, content);
            ber::end(&mut out, vb);
        }
        ber::end(&mut out, list);
        ber::end(&mut out, pdu);
        ber::end(&mut out, msg);
        out
    }

    fn values(buf: &[u8]) -> Vec<Value<'_>> {
        let Message::Community { pdu, .. } = decode(buf).unwrap() else {
            panic!()
        };
        pdu.varbinds().map(|vb| vb.unwrap().value).collect()
    }

    #[test]
    fn counters_at_the_edges() {
        let buf = response_with(&[
            (
                0x46,
                &[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            (
                0x46,
                &[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
            ),
            (0x46, &[0x00, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            (0x41, &[0x00, 0xff, 0xff, 0xff, 0xff]),
            (0x42, &[0x00]),
            (0x43, &[0x7f]),
            (0x02, &[0x80, 0, 0, 0]),
            (0x40, &[10, 0, 0, 1]),
            (0x80, &[]),
            (0x81, &[]),
            (0x82, &[]),
            (0x44, &[1, 2]),
            (0x05, &[]),
        ]);
        assert_eq!(
            values(&buf),
            [
                Value::Counter64(u64::MAX),
                Value::Counter64(u64::MAX - 1),
                Value::Counter64(1 << 63),
                Value::Counter32(u32::MAX),
                Value::Gauge32(0),
                Value::TimeTicks(127),
                Value::Integer(i32::MIN.into()),
                Value::IpAddress([10, 0, 0, 1]),
                Value::NoSuchObject,
                Value::NoSuchInstance,
                Value::EndOfMibView,
                Value::Opaque(&[1, 2]),
                Value::Null,
            ]
        );
        assert_eq!(peek_id(&buf), Some(-7));
        let too_big = response_with(&[(0x46, &[0x01, 0, 0, 0, 0, 0, 0, 0, 0])]);
        let Message::Community { pdu, .. } = decode(&too_big).unwrap() else {
            panic!()
        };
        assert_eq!(pdu.varbinds().next(), Some(Err(DecodeError::IntegerRange)));
        let bad_ip = response_with(&[(0x40, &[1, 2, 3])]);
        let Message::Community { pdu, .. } = decode(&bad_ip).unwrap() else {
            panic!()
        };
        assert!(matches!(pdu.varbinds().next(), Some(Err(_))));
        // An unknown value type spoils only its own varbind.
        let odd = response_with(&[(0x47, &[1]), (0x42, &[2])]);
        let Message::Community { pdu, .. } = decode(&odd).unwrap() else {
            panic!()
        };
        let got: Vec<_> = pdu.varbinds().map(|r| r.map(|vb| vb.value)).collect();
        assert_eq!(
            got,
            [Err(DecodeError::UnexpectedTag(0x47)), Ok(Value::Gauge32(2))]
        );
    }

    fn v3_message(scoped: ScopedOut, auth_len: usize) -> (Vec<u8>, usize) {
        let mut out = vec![0xEE, 0xEE]; // unrelated prefix: offsets must index `out`
        let usm = UsmOut {
            engine_id: &[0x80, 0, 0x1f, 0x88, 0x80, 1, 2, 3],
            engine_boots: 7,
            engine_time: 123_456,
            user: b"tlmv3",
            auth_len,
            priv_params: &[1, 2, 3, 4, 5, 6, 7, 8],
        };
        let at = encode_v3(
            &mut out,
            0x1234_5678,
            65507,
            FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE,
            &usm,
            scoped,
        );
        (out, at)
    }

    #[test]
    fn v3_round_trip_plain_and_long() {
        // Enough OIDs to push every enclosing length past one and two octets.
        let many: Vec<Oid> = (0..40)
            .map(|i| Oid::from(&[1u32, 3, 6, 1, 2, 1, 2, 2, 1, 10, i][..]))
            .collect();
        for n in [1usize, 5, 40] {
            let req = Request {
                kind: PduType::GetNext,
                request_id: -42,
                non_repeaters: 0,
                max_repetitions: 0,
                oids: &many[..n],
            };
            let mut scoped = vec![];
            encode_scoped_pdu(&mut scoped, b"ctx-engine", b"", &req);
            for auth_len in [0usize, 12, 24] {
                let (buf, at) = v3_message(ScopedOut::Plain(&scoped), auth_len);
                let body = &buf[2..];
                let Message::V3(m) = decode(body).unwrap() else {
                    panic!()
                };
                assert_eq!(
                    (m.msg_id, m.max_size, m.flags, m.security_model),
                    (0x1234_5678, 65507, 7, 3)
                );
                assert_eq!(m.usm.engine_boots, 7);
                assert_eq!(m.usm.engine_time, 123_456);
                assert_eq!(m.usm.user, b"tlmv3");
                assert_eq!(m.usm.auth_params, vec![0u8; auth_len].as_slice());
                assert_eq!(m.usm.auth_params_offset + 2, at);
                assert_eq!(m.usm.priv_params, &[1, 2, 3, 4, 5, 6, 7, 8]);
                let Scoped::Plain(sp) = m.scoped else {
                    panic!()
                };
                assert_eq!(
                    (sp.context_engine_id, sp.context_name),
                    (&b"ctx-engine"[..], &b""[..])
                );
                assert_eq!((sp.pdu.kind, sp.pdu.request_id), (PduType::GetNext, -42));
                let got: Vec<Oid> = sp.pdu.varbinds().map(|v| v.unwrap().oid.to_oid()).collect();
                assert_eq!(got, &many[..n]);
                assert_eq!(peek_id(body), Some(0x1234_5678));
                // The caller patches the HMAC in place; the offsets must line up.
                let mut patched = buf.clone();
                patched[at..at + auth_len].fill(0xAB);
                let Message::V3(m) = decode(&patched[2..]).unwrap() else {
                    panic!()
                };
                assert!(m.usm.auth_params.iter().all(|&b| b == 0xAB));
            }
        }
    }

    #[test]
    fn v3_encrypted_and_padded_plaintext() {
        let cipher = [0x5Au8; 300];
        let (buf, _) = v3_message(ScopedOut::Encrypted(&cipher), 12);
        let Message::V3(m) = decode(&buf[2..]).unwrap() else {
            panic!()
        };
        assert_eq!(m.scoped, Scoped::Encrypted(&cipher[..]));

        let list = oids(&["1.3.6.1.2.1.1.1.0"]);
        let req = Request {
            kind: PduType::Get,
            request_id: 9,
            non_repeaters: 0,
            max_repetitions: 0,
            oids: &list,
        };
        let mut plain = vec![];
        encode_scoped_pdu(&mut plain, b"e", b"c", &req);
        plain.extend_from_slice(&[0, 0, 0, 5]); // DES-style padding
        let sp = decode_scoped_pdu(&plain).unwrap();
        assert_eq!(sp.pdu.request_id, 9);
        assert_eq!(sp.context_name, b"c");
    }

    #[test]
    fn trap_v1_decodes() {
        let mut out = vec![];
        let msg = ber::begin(&mut out, ber::TAG_SEQUENCE);
        ber::write_i64(&mut out, ber::TAG_INTEGER, 0);
        ber::write_tlv(&mut out, ber::TAG_OCTET_STRING, b"public");
        let pdu = ber::begin(&mut out, 0xA4);
        ber::write_oid(&mut out, &[1, 3, 6, 1, 4, 1, 8072]);
        ber::write_tlv(&mut out, ber::TAG_IP_ADDRESS, &[192, 0, 2, 1]);
        ber::write_i64(&mut out, ber::TAG_INTEGER, 6);
        ber::write_i64(&mut out, ber::TAG_INTEGER, 17);
        ber::write_u64(&mut out, ber::TAG_TIMETICKS, 4321);
        let list = ber::begin(&mut out, ber::TAG_SEQUENCE);
        ber::end(&mut out, list);
        ber::end(&mut out, pdu);
        ber::end(&mut out, msg);
        let Message::Community { version, pdu, .. } = decode(&out).unwrap() else {
            panic!()
        };
        assert_eq!((version, pdu.kind), (Version::V1, PduType::TrapV1));
        let t = pdu.trap_v1.unwrap();
        assert_eq!(t.enterprise.to_string(), ".1.3.6.1.4.1.8072");
        assert_eq!(
            (t.agent_addr, t.generic_trap, t.specific_trap, t.time_stamp),
            ([192, 0, 2, 1], 6, 17, 4321)
        );
        assert_eq!(pdu.varbinds().count(), 0);
    }

    #[test]
    fn oid_ref_helpers() {
        let buf = hex(REPLY_GET);
        let Message::Community { pdu, .. } = decode(&buf).unwrap() else {
            panic!()
        };
        let vb = pdu.varbinds().next().unwrap().unwrap();
        let sys = Oid::parse("1.3.6.1.2.1.1").unwrap();
        assert!(vb.oid.starts_with(&sys));
        assert!(!vb.oid.starts_with(&Oid::parse("1.3.6.1.2.1.2").unwrap()));
        assert_eq!(vb.oid.cmp_oid(&sys), Ordering::Greater);
        assert_eq!(
            vb.oid.cmp_oid(&Oid::parse("1.3.6.1.2.1.1.5.0").unwrap()),
            Ordering::Equal
        );
        assert_eq!(
            vb.oid.cmp_oid(&Oid::parse("1.3.6.1.2.1.1.5.0.0").unwrap()),
            Ordering::Less
        );
        assert_eq!(
            vb.oid.cmp_oid(&Oid::parse("1.3.6.1.2.1.2").unwrap()),
            Ordering::Less
        );
        let mut arcs = vec![99];
        vb.oid.write_arcs(&mut arcs);
        assert_eq!(arcs, [99, 1, 3, 6, 1, 2, 1, 1, 5, 0]);
        assert_eq!(vb.oid.to_string(), ".1.3.6.1.2.1.1.5.0");
    }

    #[test]
    fn rejects_non_snmp() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[0x30, 0x00]).is_err());
        assert_eq!(
            decode(&hex("3003020102")),
            Err(DecodeError::UnsupportedVersion(2))
        );
        assert_eq!(peek_id(&[0x30, 0x03, 0x02, 0x01, 0x02]), None);
        assert_eq!(peek_id(b"hello"), None);
    }

    /// Decodes and renders everything reachable; used to exercise malformed input.
    fn consume(buf: &[u8]) {
        let _ = peek_id(buf);
        let pdu = match decode(buf) {
            Ok(Message::Community { pdu, .. }) => pdu,
            Ok(Message::V3(m)) => match m.scoped {
                Scoped::Plain(sp) => sp.pdu,
                Scoped::Encrypted(c) => match decode_scoped_pdu(c) {
                    Ok(sp) => sp.pdu,
                    Err(_) => return,
                },
            },
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        };
        let mut s = String::new();
        for vb in pdu.varbinds() {
            match vb {
                Ok(vb) => {
                    text::write_varbind(&mut s, &vb);
                    let _ = vb.oid.to_oid();
                }
                Err(e) => s.push_str(&e.to_string()),
            }
        }
    }

    #[test]
    fn malformed_input_never_panics() {
        let list = oids(&["1.3.6.1.2.1.1.1.0", "1.3.6.1.4.1.2021.10.1.6.1"]);
        let req = Request {
            kind: PduType::Get,
            request_id: 9,
            non_repeaters: 0,
            max_repetitions: 0,
            oids: &list,
        };
        let mut scoped = vec![];
        encode_scoped_pdu(&mut scoped, b"e", b"c", &req);
        let (v3, _) = v3_message(ScopedOut::Plain(&scoped), 12);
        let samples = [
            hex(REPLY_GET),
            hex(REPLY_BULK),
            v3[2..].to_vec(),
            response_with(&[
                (0x44, &[0x9f, 0x78, 0x04, 1, 2, 3, 4]),
                (0x06, &[0x2b, 0x06]),
                (0x46, &[0xff; 3]),
            ]),
        ];
        let mut rng = crate::rng::XorShift::seeded();
        for sample in &samples {
            for len in 0..=sample.len() {
                consume(&sample[..len]);
            }
            for i in 0..sample.len() {
                for x in [0x00u8, 0xff, 0x80, 0x7f, 0x01] {
                    let mut m = sample.clone();
                    m[i] ^= x;
                    consume(&m);
                    m[i] = x;
                    consume(&m);
                }
            }
            for _ in 0..2000 {
                let mut m = sample.clone();
                for _ in 0..3 {
                    let r = rng.next_u64();
                    let i = (r % m.len() as u64) as usize;
                    m[i] = (r >> 32) as u8;
                }
                consume(&m);
            }
        }
    }

    proptest! {
        #[test]
        fn encode_decode_preserves_oids(
            head in 0u32..3,
            second in any::<u32>(),
            tail in proptest::collection::vec(any::<u32>(), 0..20),
        ) {
            let second = if head < 2 { second % 40 } else { second % (u32::MAX - 79) };
            let mut arcs = vec![head, second];
            arcs.extend(tail);
            let list = vec![Oid::from(arcs)];
            let req = Request { kind: PduType::Get, request_id: 1, non_repeaters: 0, max_repetitions: 0, oids: &list };
            let mut out = vec![];
            encode_community(&mut out, Version::V1, b"c", &req);
            let Message::Community { pdu, .. } = decode(&out).unwrap() else { panic!() };
            let got: Vec<Oid> = pdu.varbinds().map(|v| v.unwrap().oid.to_oid()).collect();
            prop_assert_eq!(&got, &list);
            let text = Oid::parse(&list[0].to_string()).unwrap();
            prop_assert_eq!(&text, &list[0]);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            consume(&bytes);
            let mut framed = vec![0x30, bytes.len().min(127) as u8];
            framed.extend_from_slice(&bytes);
            consume(&framed);
        }
    }
}
