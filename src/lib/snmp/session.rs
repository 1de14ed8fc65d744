//! One agent's security: a community (v1, v2c) or a USM user (v3) with the agent's engine ID,
//! boots and time, kept in step from every authenticated reply. Turns requests into datagrams
//! and datagrams back into PDUs, so the poller never sees security.

use super::oid::Oid;
use super::pdu::{
    self, Message, Pdu, PduType, Request, Scoped, ScopedOut, UsmOut, Version, FLAG_AUTH, FLAG_PRIV,
    FLAG_REPORTABLE,
};
use super::usm::{self, AuthProtocol, Keys, MasterKeys, PrivProtocol};
use std::sync::Arc;
use std::time::Instant;

/// The largest message we accept, and say so to v3 agents.
pub const MAX_MESSAGE: i32 = 65507;

/// v3 security level (net-snmp `-l`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    #[value(name = "noAuthNoPriv", alias = "noauthnopriv", alias = "nanp")]
    NoAuthNoPriv,
    #[value(name = "authNoPriv", alias = "authnopriv", alias = "anp")]
    AuthNoPriv,
    #[value(name = "authPriv", alias = "authpriv", alias = "ap")]
    AuthPriv,
}

/// A v3 user as configured: name, level, context and master keys (derived once per run).
#[derive(Debug)]
pub struct User {
    pub name: Vec<u8>,
    pub level: Level,
    pub context: Vec<u8>,
    pub master: Option<MasterKeys>,
}

impl User {
    /// Checks the level against what was given and runs the passphrase expansion.
    pub fn new(
        name: &str,
        level: Level,
        context: &str,
        auth: Option<(AuthProtocol, &[u8])>,
        privacy: Option<(PrivProtocol, &[u8])>,
    ) -> Result<User, String> {
        if name.is_empty() {
            return Err("SNMPv3 needs a user name (-u)".into());
        }
        let master = match (level, auth, privacy) {
            (Level::NoAuthNoPriv, _, _) => None,
            (Level::AuthNoPriv, Some((a, pass)), _) => Some(MasterKeys::new(a, check(pass)?, None)),
            (Level::AuthPriv, Some((a, pass)), Some((p, ppass))) => {
                Some(MasterKeys::new(a, check(pass)?, Some((p, check(ppass)?))))
            }
            (Level::AuthNoPriv, None, _) | (Level::AuthPriv, None, _) => {
                return Err("this security level needs an authentication passphrase (-A)".into())
            }
            (Level::AuthPriv, Some(_), None) => {
                return Err("authPriv needs a privacy passphrase (-X)".into())
            }
        };
        Ok(User {
            name: name.as_bytes().to_vec(),
            level,
            context: context.as_bytes().to_vec(),
            master,
        })
    }
}

fn check(pass: &[u8]) -> Result<&[u8], String> {
    if pass.len() < usm::MIN_PASSWORD_LEN {
        return Err(format!(
            "passphrases must be at least {} characters (RFC 3414)",
            usm::MIN_PASSWORD_LEN
        ));
    }
    Ok(pass)
}

/// How a poll authenticates.
#[derive(Clone, Debug)]
pub enum Security {
    Community {
        version: Version,
        community: Vec<u8>,
    },
    Usm(Arc<User>),
}

/// What the agent's authoritative engine told us.
#[derive(Debug)]
struct Engine {
    id: Vec<u8>,
    boots: u32,
    time: u32,
    at: Instant,
    keys: Option<Keys>,
}

impl Engine {
    fn time_now(&self) -> u32 {
        self.time
            .saturating_add(self.at.elapsed().as_secs().min(u32::MAX as u64) as u32)
    }
}

/// A datagram opened: a PDU to act on, or what the security layer needs first.
pub enum Opened<'a> {
    Pdu(Pdu<'a>),
    /// The engine ID and clock are known now (discovery, or a clock resynchronisation): send
    /// the request again.
    Resend,
}

/// One agent's security state.
#[derive(Debug)]
pub struct Session {
    security: Security,
    engine: Option<Engine>,
    salt: u64,
    scratch: Vec<u8>,
}

/// RFC 3414 usmStats report OIDs (1.3.6.1.6.3.15.1.1.N.0) and what they mean.
const USM_STATS: [u32; 9] = [1, 3, 6, 1, 6, 3, 15, 1, 1];

impl Session {
    pub fn new(security: Security, salt: u64) -> Session {
        Session {
            security,
            engine: None,
            salt,
            scratch: Vec::new(),
        }
    }

    /// The community version, `None` for v3.
    pub fn version(&self) -> Option<Version> {
        match &self.security {
            Security::Community { version, .. } => Some(*version),
            Security::Usm(_) => None,
        }
    }

    /// Whether a v3 discovery must come first.
    pub fn needs_discovery(&self) -> bool {
        matches!(self.security, Security::Usm(_)) && self.engine.is_none()
    }

    /// Appends the datagram for `req` (with id `req.request_id`, also the v3 msgID).
    pub fn encode(&mut self, req: &Request, out: &mut Vec<u8>) -> Result<(), String> {
        match &self.security {
            Security::Community { version, community } => {
                pdu::encode_community(out, *version, community, req);
                Ok(())
            }
            Security::Usm(user) => {
                let user = Arc::clone(user);
                match self.engine.as_ref() {
                    None => {
                        encode_discovery(req.request_id, out);
                        Ok(())
                    }
                    Some(_) => self.encode_v3(&user, req, out),
                }
            }
        }
    }

    fn encode_v3(&mut self, user: &User, req: &Request, out: &mut Vec<u8>) -> Result<(), String> {
        let engine = self.engine.as_ref().ok_or("no engine")?;
        let (boots, time) = (engine.boots, engine.time_now());
        self.scratch.clear();
        pdu::encode_scoped_pdu(&mut self.scratch, &engine.id, &user.context, req);
        let mut flags = FLAG_REPORTABLE;
        let mut cipher = Vec::new();
        let mut priv_params = [0u8; 8];
        let mut priv_len = 0;
        let keys = engine.keys.as_ref();
        if let Some((privp, key)) = keys.and_then(|k| k.privacy.as_ref()) {
            self.salt = self.salt.wrapping_add(1);
            priv_params = usm::encrypt(
                *privp,
                key,
                boots,
                time,
                self.salt,
                &self.scratch,
                &mut cipher,
            )
            .map_err(|e| e.to_string())?;
            priv_len = 8;
            flags |= FLAG_PRIV;
        }
        let auth_len = keys.map_or(0, |k| k.auth.mac_len());
        if auth_len > 0 {
            flags |= FLAG_AUTH;
        }
        let usm_out = UsmOut {
            engine_id: &engine.id,
            engine_boots: boots,
            engine_time: time,
            user: &user.name,
            auth_len,
            priv_params: &priv_params[..priv_len],
        };
        let scoped = if priv_len > 0 {
            ScopedOut::Encrypted(&cipher)
        } else {
            ScopedOut::Plain(&self.scratch)
        };
        let start = out.len();
        let auth_at = pdu::encode_v3(out, req.request_id, MAX_MESSAGE, flags, &usm_out, scoped);
        if let Some(k) = keys {
            usm::sign(k.auth, &k.auth_key, &mut out[start..], auth_at - start)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Opens a reply: checks its authentication and decrypts it; `plain` holds decrypted
    /// bytes the returned PDU may borrow.
    pub fn open<'a>(
        &mut self,
        buf: &'a [u8],
        plain: &'a mut Vec<u8>,
    ) -> Result<Opened<'a>, String> {
        let msg = pdu::decode(buf).map_err(|e| format!("undecodable reply: {e}"))?;
        match (msg, &self.security) {
            (Message::Community { pdu, .. }, Security::Community { .. }) => Ok(Opened::Pdu(pdu)),
            (Message::V3(m), Security::Usm(user)) => {
                let user = Arc::clone(user);
                self.open_v3(&user, buf, m, plain)
            }
            _ => Err("reply in another SNMP version".into()),
        }
    }

    fn open_v3<'a>(
        &mut self,
        user: &User,
        buf: &'a [u8],
        m: pdu::MessageV3<'a>,
        plain: &'a mut Vec<u8>,
    ) -> Result<Opened<'a>, String> {
        let authenticated = m.flags & FLAG_AUTH != 0;
        if authenticated {
            let keys = self
                .keys()
                .ok_or("an authenticated reply before discovery")?;
            if !usm::verify(keys.auth, &keys.auth_key, buf, m.usm.auth_params_offset) {
                return Err(
                    "reply failed authentication (wrong -A passphrase or -a protocol?)".into(),
                );
            }
        }
        let scoped = match m.scoped {
            Scoped::Plain(s) => s,
            Scoped::Encrypted(cipher) => {
                let Some((privp, key)) = self.keys().and_then(|k| k.privacy.clone()) else {
                    return Err("an encrypted reply without privacy keys".into());
                };
                plain.clear();
                usm::decrypt(
                    privp,
                    &key,
                    m.usm.engine_boots,
                    m.usm.engine_time,
                    m.usm.priv_params,
                    cipher,
                    plain,
                )
                .map_err(|e| e.to_string())?;
                pdu::decode_scoped_pdu(plain)
                    .map_err(|_| "reply failed decryption (wrong -X passphrase or -x protocol?)")?
            }
        };
        let usm = m.usm;
        if scoped.pdu.kind == PduType::Report {
            return self.report(
                user,
                &scoped.pdu,
                usm.engine_id,
                usm.engine_boots,
                usm.engine_time,
                authenticated,
            );
        }
        if authenticated {
            self.sync_clock(usm.engine_boots, usm.engine_time);
        }
        Ok(Opened::Pdu(scoped.pdu))
    }

    fn keys(&self) -> Option<&Keys> {
        self.engine.as_ref().and_then(|e| e.keys.as_ref())
    }

    fn sync_clock(&mut self, boots: u32, time: u32) {
        if let Some(e) = self.engine.as_mut() {
            if (boots, time) >= (e.boots, e.time_now()) {
                (e.boots, e.time, e.at) = (boots, time, Instant::now());
            }
        }
    }

    /// usmStats reports: discovery answers and clock resynchronisation lead to a resend;
    /// the others are errors that name their cause.
    fn report<'a>(
        &mut self,
        user: &User,
        pdu: &Pdu<'a>,
        engine_id: &[u8],
        boots: u32,
        time: u32,
        authenticated: bool,
    ) -> Result<Opened<'a>, String> {
        let which = pdu
            .varbinds()
            .next()
            .and_then(|vb| vb.ok())
            .map(|vb| vb.oid.to_oid());
        let stat = which.as_ref().and_then(|o| {
            let a = o.arcs();
            (a.len() == 11 && a[..9] == USM_STATS).then(|| a[9])
        });
        match stat {
            Some(4) if self.engine.is_none() => {
                if engine_id.is_empty() {
                    return Err("discovery reply without an engine ID".into());
                }
                let keys = user.master.as_ref().map(|m| m.localize(engine_id));
                self.engine = Some(Engine {
                    id: engine_id.to_vec(),
                    boots,
                    time,
                    at: Instant::now(),
                    keys,
                });
                Ok(Opened::Resend)
            }
            Some(2) if authenticated || self.keys().is_none() => {
                if let Some(e) = self.engine.as_mut() {
                    (e.boots, e.time, e.at) = (boots, time, Instant::now());
                }
                Ok(Opened::Resend)
            }
            Some(n) => Err(usm_error(n).into()),
            None => Err(format!(
                "agent report {}",
                which.map_or("without a varbind".into(), |o| o.to_string())
            )),
        }
    }
}

fn usm_error(stat: u32) -> &'static str {
    match stat {
        1 => "usmStatsUnsupportedSecLevels: the user cannot use this security level (-l)",
        2 => "usmStatsNotInTimeWindows: the agent's clock moved again",
        3 => "usmStatsUnknownUserNames: the agent does not know this user (-u)",
        4 => "usmStatsUnknownEngineIDs: the engine ID changed",
        5 => "usmStatsWrongDigests: wrong authentication passphrase or protocol (-A, -a)",
        6 => "usmStatsDecryptionErrors: wrong privacy passphrase or protocol (-X, -x)",
        _ => "unknown usmStats report",
    }
}

/// The RFC 3414 4 discovery probe: noAuthNoPriv, empty user and engine ID, an empty GET.
fn encode_discovery(msg_id: i32, out: &mut Vec<u8>) {
    let mut scoped = Vec::with_capacity(32);
    let empty: [Oid; 0] = [];
    let req = Request {
        kind: PduType::Get,
        request_id: msg_id,
        non_repeaters: 0,
        max_repetitions: 0,
        oids: &empty,
    };
    pdu::encode_scoped_pdu(&mut scoped, &[], &[], &req);
    let usm_out = UsmOut {
        engine_id: &[],
        engine_boots: 0,
        engine_time: 0,
        user: &[],
        auth_len: 0,
        priv_params: &[],
    };
    pdu::encode_v3(
        out,
        msg_id,
        MAX_MESSAGE,
        FLAG_REPORTABLE,
        &usm_out,
        ScopedOut::Plain(&scoped),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_need_their_passphrases() {
        let a = Some((AuthProtocol::Sha1, &b"authpass1"[..]));
        let p = Some((PrivProtocol::Aes128, &b"privpass1"[..]));
        assert!(User::new("u", Level::AuthPriv, "", a, None).is_err());
        assert!(User::new("u", Level::AuthNoPriv, "", None, None).is_err());
        assert!(User::new("", Level::NoAuthNoPriv, "", None, None).is_err());
        let short = Some((AuthProtocol::Sha1, &b"short"[..]));
        assert!(User::new("u", Level::AuthNoPriv, "", short, None)
            .unwrap_err()
            .contains("at least 8"));
        assert!(User::new("u", Level::AuthPriv, "", a, p).is_ok());
    }

    #[test]
    fn a_community_round_trips_its_request() {
        let mut s = Session::new(
            Security::Community {
                version: Version::V2c,
                community: b"public".to_vec(),
            },
            1,
        );
        let oids = [Oid::parse("1.3.6.1.2.1.1.5.0").unwrap()];
        let req = Request {
            kind: PduType::Get,
            request_id: 77,
            non_repeaters: 0,
            max_repetitions: 0,
            oids: &oids,
        };
        let mut out = Vec::new();
        s.encode(&req, &mut out).unwrap();
        assert_eq!(pdu::peek_id(&out), Some(77));
        let mut plain = Vec::new();
        let Ok(Opened::Pdu(p)) = s.open(&out, &mut plain) else {
            panic!("opens")
        };
        assert_eq!((p.kind, p.request_id), (PduType::Get, 77));
    }
}
