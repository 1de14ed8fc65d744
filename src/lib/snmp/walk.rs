//! What to ask one agent next: the GET, GETNEXT and GETBULK walk as a state machine that
//! knows nothing of sockets, so every agent misbehaviour is testable without one.
//!
//! A walk of a subtree ends at the first OID outside it or at endOfMibView (v1: noSuchName).
//! An agent that answers with an OID not after the one asked for (a loop, gosnmp#401) or
//! more varbinds than `max_varbinds` ends that agent's poll with an error. tooBig halves
//! max-repetitions and asks again. A subtree with nothing below it is asked for with a GET,
//! as net-snmp's walk does, so walking `sysName.0` prints the scalar.

use super::oid::Oid;
use super::pdu::{Pdu, PduType, Value, VarBind};

/// The operation (`--op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    /// GET the OIDs given
    Get,
    /// GETNEXT through each subtree (what snmpwalk does)
    Walk,
    /// GETBULK through each subtree (what snmpbulkwalk does); v1 agents are walked
    Bulkwalk,
}

/// The request to send next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    pub kind: PduType,
    pub oids: Vec<Oid>,
    pub max_repetitions: i32,
}

/// What follows a reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Send(Ask),
    Done,
    Failed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The first GET: `gets` (and sysUpTime.0 when asked for).
    Get,
    /// Walking `roots[root]` from `cur`.
    Walk,
    /// The GET of a root that had nothing below it.
    RootGet,
}

/// One agent's walk over the roots.
#[derive(Debug)]
pub struct Walk {
    op: Op,
    gets: Vec<Oid>,
    roots: std::sync::Arc<[Oid]>,
    root: usize,
    cur: Oid,
    found: u64,
    phase: Phase,
    max_repetitions: i32,
    varbinds: u64,
    max_varbinds: u64,
}

/// sysUpTime.0
pub fn sys_uptime() -> Oid {
    Oid::from(&[1u32, 3, 6, 1, 2, 1, 1, 3, 0][..])
}

impl Walk {
    /// `gets` are fetched first in one GET (for `Op::Get`, the OIDs; otherwise sysUpTime.0
    /// when wanted); then each of `roots` is walked unless `op` is `Get`.
    pub fn new(
        op: Op,
        gets: Vec<Oid>,
        roots: std::sync::Arc<[Oid]>,
        max_repetitions: i32,
        max_varbinds: u64,
    ) -> Walk {
        Walk {
            op,
            gets,
            roots,
            root: 0,
            cur: Oid::default(),
            found: 0,
            phase: Phase::Get,
            max_repetitions: max_repetitions.max(1),
            varbinds: 0,
            max_varbinds,
        }
    }

    pub fn varbinds(&self) -> u64 {
        self.varbinds
    }

    /// The first request, or `Done` when there is nothing to ask.
    pub fn first(&mut self) -> Next {
        if !self.gets.is_empty() {
            self.phase = Phase::Get;
            return Next::Send(self.ask(PduType::Get, self.gets.clone()));
        }
        self.next_root(0)
    }

    fn ask(&self, kind: PduType, oids: Vec<Oid>) -> Ask {
        Ask {
            kind,
            oids,
            max_repetitions: self.max_repetitions,
        }
    }

    fn next_root(&mut self, root: usize) -> Next {
        if self.op == Op::Get || root >= self.roots.len() {
            return Next::Done;
        }
        self.root = root;
        self.cur = self.roots[root].clone();
        self.found = 0;
        self.phase = Phase::Walk;
        self.walk_request()
    }

    fn walk_request(&self) -> Next {
        let kind = match self.op {
            Op::Bulkwalk => PduType::GetBulk,
            _ => PduType::GetNext,
        };
        Next::Send(self.ask(kind, vec![self.cur.clone()]))
    }

    /// Whether the agent speaks only v1, so GETBULK becomes GETNEXT.
    pub fn v1_only(&mut self) {
        if self.op == Op::Bulkwalk {
            self.op = Op::Walk;
        }
    }

    /// Acts on a reply: hands the varbinds that belong to the poll to `emit` and says what
    /// to do next.
    pub fn on_reply(&mut self, pdu: &Pdu, emit: &mut dyn FnMut(&VarBind)) -> Next {
        if pdu.error_status != 0 {
            return self.on_error(pdu);
        }
        match self.phase {
            Phase::Get | Phase::RootGet => {
                for vb in pdu.varbinds() {
                    match vb {
                        Ok(vb) => {
                            self.varbinds += 1;
                            emit(&vb);
                        }
                        Err(e) => return Next::Failed(format!("bad varbind: {e}")),
                    }
                }
                let next = if self.phase == Phase::Get {
                    0
                } else {
                    self.root + 1
                };
                self.next_root(next)
            }
            Phase::Walk => self.on_walk_reply(pdu, emit),
        }
    }

    fn on_walk_reply(&mut self, pdu: &Pdu, emit: &mut dyn FnMut(&VarBind)) -> Next {
        let root = &self.roots[self.root];
        let mut seen = 0;
        let mut subtree_done = false;
        for vb in pdu.varbinds() {
            let vb = match vb {
                Ok(vb) => vb,
                Err(e) => return Next::Failed(format!("bad varbind: {e}")),
            };
            seen += 1;
            if matches!(vb.value, Value::EndOfMibView) || !vb.oid.starts_with(root) {
                subtree_done = true;
                break;
            }
            if vb.oid.cmp_oid(&self.cur).is_le() {
                return Next::Failed(format!(
                    "agent returned OID {} after {}, not increasing; walk stopped",
                    vb.oid, self.cur
                ));
            }
            self.varbinds += 1;
            if self.varbinds > self.max_varbinds {
                return Next::Failed(format!(
                    "more than {} varbinds; walk stopped (raise --max-varbinds)",
                    self.max_varbinds
                ));
            }
            self.found += 1;
            self.cur.clear();
            vb.oid.write_arcs(self.cur.as_vec_mut());
            emit(&vb);
        }
        if subtree_done {
            return self.root_done();
        }
        if seen == 0 {
            return Next::Failed("empty reply to a walk request".into());
        }
        self.walk_request()
    }

    fn root_done(&mut self) -> Next {
        if self.found == 0 {
            self.phase = Phase::RootGet;
            let root = self.roots[self.root].clone();
            return Next::Send(self.ask(PduType::Get, vec![root]));
        }
        self.next_root(self.root + 1)
    }

    fn on_error(&mut self, pdu: &Pdu) -> Next {
        match pdu.error_status {
            // tooBig
            1 if self.phase == Phase::Walk
                && self.max_repetitions > 1
                && self.op == Op::Bulkwalk =>
            {
                self.max_repetitions /= 2;
                self.walk_request()
            }
            // noSuchName: v1's end of a walk, or a v1 GET of something absent.
            2 if self.phase == Phase::Walk => self.root_done(),
            2 if self.phase == Phase::RootGet => self.next_root(self.root + 1),
            2 if self.phase == Phase::Get && self.op != Op::Get => self.next_root(0),
            status => Next::Failed(format!(
                "agent error {} ({status}) at varbind {}",
                error_name(status),
                pdu.error_index
            )),
        }
    }

    /// The current max-repetitions (after tooBig halvings).
    pub fn max_repetitions(&self) -> i32 {
        self.max_repetitions
    }
}

/// RFC 3416 error-status names.
pub fn error_name(status: i32) -> &'static str {
    const NAMES: [&str; 19] = [
        "noError",
        "tooBig",
        "noSuchName",
        "badValue",
        "readOnly",
        "genErr",
        "noAccess",
        "wrongType",
        "wrongLength",
        "wrongEncoding",
        "wrongValue",
        "noCreation",
        "inconsistentValue",
        "resourceUnavailable",
        "commitFailed",
        "undoFailed",
        "authorizationError",
        "notWritable",
        "inconsistentName",
    ];
    usize::try_from(status)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::ber;
    use crate::snmp::pdu::{self, Message};

    fn oid(s: &str) -> Oid {
        Oid::parse(s).unwrap()
    }

    /// A v2c Response carrying `vbs` (OID, Counter32 or a tag byte for exceptions).
    fn response(status: i32, vbs: &[(&str, Option<u32>)]) -> Vec<u8> {
        let mut out = Vec::new();
        let msg = ber::begin(&mut out, ber::TAG_SEQUENCE);
        ber::write_i64(&mut out, ber::TAG_INTEGER, 1);
        ber::write_tlv(&mut out, ber::TAG_OCTET_STRING, b"public");
        let p = ber::begin(&mut out, PduType::Response.tag());
        ber::write_i64(&mut out, ber::TAG_INTEGER, 1);
        ber::write_i64(&mut out, ber::TAG_INTEGER, status.into());
        ber::write_i64(&mut out, ber::TAG_INTEGER, 0);
        let list = ber::begin(&mut out, ber::TAG_SEQUENCE);
        for (o, v) in vbs {
            let vb = ber::begin(&mut out, ber::TAG_SEQUENCE);
            ber::write_oid(&mut out, oid(o).arcs());
            match v {
                Some(n) => ber::write_i64(&mut out, 0x41, (*n).into()),
                None => out.extend_from_slice(&[0x82, 0]),
            }
            ber::end(&mut out, vb);
        }
        ber::end(&mut out, list);
        ber::end(&mut out, p);
        ber::end(&mut out, msg);
        out
    }

    fn feed(w: &mut Walk, bytes: &[u8], seen: &mut Vec<String>) -> Next {
        let Ok(Message::Community { pdu, .. }) = pdu::decode(bytes) else {
            panic!("decodes")
        };
        w.on_reply(&pdu, &mut |vb| seen.push(vb.oid.to_string()))
    }

    fn walk(op: Op, roots: &[&str], gets: &[&str]) -> Walk {
        let roots: Vec<Oid> = roots.iter().map(|r| oid(r)).collect();
        Walk::new(
            op,
            gets.iter().map(|g| oid(g)).collect(),
            roots.into(),
            4,
            1000,
        )
    }

    #[test]
    fn walks_each_root_and_stops_at_its_end() {
        let mut w = walk(
            Op::Bulkwalk,
            &["1.3.6.1.2.1.2.2.1.10"],
            &["1.3.6.1.2.1.1.3.0"],
        );
        let mut seen = Vec::new();
        assert!(matches!(
            w.first(),
            Next::Send(Ask {
                kind: PduType::Get,
                ..
            })
        ));
        let n = feed(
            &mut w,
            &response(0, &[("1.3.6.1.2.1.1.3.0", Some(5))]),
            &mut seen,
        );
        assert_eq!(
            n,
            Next::Send(Ask {
                kind: PduType::GetBulk,
                oids: vec![oid("1.3.6.1.2.1.2.2.1.10")],
                max_repetitions: 4
            })
        );
        let n = feed(
            &mut w,
            &response(
                0,
                &[
                    ("1.3.6.1.2.1.2.2.1.10.1", Some(1)),
                    ("1.3.6.1.2.1.2.2.1.10.2", Some(2)),
                ],
            ),
            &mut seen,
        );
        assert!(matches!(n, Next::Send(ref a) if a.oids == [oid("1.3.6.1.2.1.2.2.1.10.2")]));
        let n = feed(
            &mut w,
            &response(
                0,
                &[
                    ("1.3.6.1.2.1.2.2.1.10.3", Some(3)),
                    ("1.3.6.1.2.1.2.2.1.11.1", Some(9)),
                ],
            ),
            &mut seen,
        );
        assert_eq!(n, Next::Done);
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(w.varbinds(), 4);
    }

    #[test]
    fn a_non_increasing_oid_ends_the_walk() {
        let mut w = walk(Op::Bulkwalk, &["1.3.6.1.2.1.2"], &[]);
        let mut seen = Vec::new();
        w.first();
        feed(
            &mut w,
            &response(0, &[("1.3.6.1.2.1.2.2.1.1.5", Some(1))]),
            &mut seen,
        );
        let n = feed(
            &mut w,
            &response(0, &[("1.3.6.1.2.1.2.2.1.1.5", Some(1))]),
            &mut seen,
        );
        assert!(
            matches!(n, Next::Failed(ref m) if m.contains("not increasing")),
            "{n:?}"
        );
        let n = feed(
            &mut w,
            &response(0, &[("1.3.6.1.2.1.2.2.1.1.4", Some(1))]),
            &mut seen,
        );
        assert!(matches!(n, Next::Failed(_)));
    }

    #[test]
    fn too_big_halves_then_fails_at_one() {
        let mut w = walk(Op::Bulkwalk, &["1.3.6.1"], &[]);
        w.first();
        let mut seen = Vec::new();
        for want in [2, 1] {
            let n = feed(&mut w, &response(1, &[]), &mut seen);
            assert!(
                matches!(n, Next::Send(ref a) if a.max_repetitions == want),
                "{n:?}"
            );
        }
        let n = feed(&mut w, &response(1, &[]), &mut seen);
        assert!(
            matches!(n, Next::Failed(ref m) if m.contains("tooBig")),
            "{n:?}"
        );
    }

    #[test]
    fn an_empty_subtree_is_asked_for_with_get_and_v1_no_such_name_ends_it() {
        let mut w = walk(Op::Walk, &["1.3.6.1.2.1.1.5.0", "1.3.6.1.9"], &[]);
        let mut seen = Vec::new();
        w.first();
        let n = feed(
            &mut w,
            &response(0, &[("1.3.6.1.2.1.1.6.0", Some(1))]),
            &mut seen,
        );
        assert!(
            matches!(n, Next::Send(ref a) if a.kind == PduType::Get),
            "{n:?}"
        );
        let n = feed(
            &mut w,
            &response(0, &[("1.3.6.1.2.1.1.5.0", Some(7))]),
            &mut seen,
        );
        assert!(
            matches!(n, Next::Send(ref a) if a.kind == PduType::GetNext),
            "{n:?}"
        );
        // v1 end of MIB: noSuchName, then the root GET fails the same way.
        let n = feed(&mut w, &response(2, &[("1.3.6.1.9", None)]), &mut seen);
        assert!(matches!(n, Next::Send(ref a) if a.kind == PduType::Get));
        assert_eq!(feed(&mut w, &response(2, &[]), &mut seen), Next::Done);
        assert_eq!(seen, [".1.3.6.1.2.1.1.5.0"]);
    }

    #[test]
    fn end_of_mib_view_and_runaway_agents() {
        let mut w = walk(Op::Bulkwalk, &["1.3"], &[]);
        let mut seen = Vec::new();
        w.first();
        let n = feed(
            &mut w,
            &response(0, &[("1.3.6.1.1", Some(1)), ("1.3.6.1.2", None)]),
            &mut seen,
        );
        assert_eq!(n, Next::Done);
        let roots: Vec<Oid> = vec![oid("1.3")];
        let mut w = Walk::new(Op::Bulkwalk, vec![], roots.into(), 4, 2);
        w.first();
        let n = feed(
            &mut w,
            &response(
                0,
                &[("1.3.1", Some(1)), ("1.3.2", Some(1)), ("1.3.3", Some(1))],
            ),
            &mut seen,
        );
        assert!(
            matches!(n, Next::Failed(ref m) if m.contains("more than 2")),
            "{n:?}"
        );
    }

    #[test]
    fn agent_errors_are_named() {
        let mut w = walk(Op::Get, &[], &["1.3.6.1.2.1.1.5.0"]);
        w.first();
        let n = feed(&mut w, &response(5, &[]), &mut Vec::new());
        assert!(
            matches!(n, Next::Failed(ref m) if m.contains("genErr")),
            "{n:?}"
        );
    }
}
