//! Polls many agents at once from one thread over a few shared UDP sockets (mio), routing
//! each reply to its agent by request id. At most `concurrency` agents are in flight; each
//! has one request out at a time (agents are small CPUs: asking one several things at once
//! only queues them), its own retry timer, and a hard deadline for its whole poll, so a dead
//! or slow agent costs a slot and never delays the others.

use super::oid::Oid;
use super::pdu::{self, PduType, Request, VarBind, Version};
use super::session::{Opened, Security, Session};
use super::walk::{Ask, Next, Op, Walk};
use crate::error::{Error, Result};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One agent to poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// As given (`sw1`, `10.0.0.1:1161`), the `agent` tag.
    pub name: String,
    pub addr: SocketAddr,
    /// Tags copied onto every metric of this agent.
    pub tags: Vec<(String, String)>,
}

/// What a poll asks of every agent.
#[derive(Clone, Debug)]
pub struct Config {
    pub op: Op,
    /// Subtrees to walk (or, for `Op::Get`, nothing).
    pub roots: Arc<[Oid]>,
    /// OIDs fetched first in one GET (`Op::Get`'s OIDs, sysUpTime.0).
    pub gets: Vec<Oid>,
    pub timeout: Duration,
    pub retries: u32,
    /// The whole poll of one agent, retries included.
    pub deadline: Duration,
    pub max_repetitions: i32,
    pub max_varbinds: u64,
    pub concurrency: usize,
}

/// How one agent's poll ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// `None`: every subtree was walked.
    pub error: Option<String>,
    pub seconds: f64,
    pub varbinds: u64,
    pub requests: u64,
    pub retries: u64,
}

/// Receives varbinds as they arrive, and each agent's outcome when it is done.
pub trait Sink {
    fn varbind(&mut self, target: usize, vb: &VarBind);
    /// An error here (output closed) ends the poll.
    fn finished(&mut self, target: usize, outcome: &Outcome) -> Result<()>;
}

/// Totals of one round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub ok: u64,
    pub failed: u64,
    pub varbinds: u64,
    pub requests: u64,
    pub retries: u64,
    /// Datagrams that matched no outstanding request (late answers to a retried request).
    pub stray: u64,
}

struct Job {
    target: usize,
    walk: Walk,
    ask: Ask,
    id: i32,
    serial: u64,
    datagram: Vec<u8>,
    tries: u32,
    /// Bumped by every send, so only the newest send's retry timer acts.
    sends: u64,
    started: Instant,
    requests: u64,
    retries: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Retry,
    Deadline,
}

/// Sockets and every agent's session, kept from one round to the next (v3 engine clocks).
pub struct Poller {
    poll: Poll,
    v4: Vec<UdpSocket>,
    v6: Vec<UdpSocket>,
    sessions: Vec<Session>,
    next_id: i32,
    serial: u64,
}

/// Agents per socket; more sockets spread the kernel's receive work.
const AGENTS_PER_SOCKET: usize = 256;
const MAX_SOCKETS: usize = 16;
const RECV_BUFFER: usize = 4 << 20;

impl Poller {
    /// `security(i)` gives target i's credentials.
    pub fn new(
        targets: &[Target],
        concurrency: usize,
        security: impl Fn(usize) -> Security,
    ) -> Result<Poller> {
        let poll = Poll::new().map_err(|e| Error::internal(format!("mio: {e}")))?;
        let n = concurrency
            .div_ceil(AGENTS_PER_SOCKET)
            .clamp(1, MAX_SOCKETS);
        let want_v4 = targets.iter().any(|t| t.addr.is_ipv4());
        let want_v6 = targets.iter().any(|t| t.addr.is_ipv6());
        let mut p = Poller {
            poll,
            v4: Vec::new(),
            v6: Vec::new(),
            sessions: Vec::with_capacity(targets.len()),
            next_id: (crate::rng::XorShift::seeded().next_u64() as i32 & 0x3fff_ffff).max(1),
            serial: 0,
        };
        for i in 0..n {
            if want_v4 {
                let s = p.socket("0.0.0.0:0", i)?;
                p.v4.push(s);
            }
            if want_v6 {
                let s = p.socket("[::]:0", MAX_SOCKETS + i)?;
                p.v6.push(s);
            }
        }
        let mut rng = crate::rng::XorShift::seeded();
        for i in 0..targets.len() {
            p.sessions.push(Session::new(security(i), rng.next_u64()));
        }
        Ok(p)
    }

    fn socket(&self, bind: &str, token: usize) -> Result<UdpSocket> {
        let addr: SocketAddr = bind
            .parse()
            .map_err(|e| Error::internal(format!("{bind}: {e}")))?;
        let mut s = UdpSocket::bind(addr)
            .map_err(|e| Error::unavailable(format!("cannot open a UDP socket: {e}")))?;
        {
            use std::os::fd::AsRawFd;
            crate::statsd::listen::set_rcvbuf(s.as_raw_fd(), RECV_BUFFER);
        }
        self.poll
            .registry()
            .register(&mut s, Token(token), Interest::READABLE)
            .map_err(|e| Error::internal(format!("mio register: {e}")))?;
        Ok(s)
    }

    /// Polls every target once; returns when each has finished or failed.
    pub fn round(
        &mut self,
        targets: &[Target],
        cfg: &Config,
        sink: &mut dyn Sink,
    ) -> Result<Round> {
        let mut run = RoundRun::new(cfg.concurrency.max(1));
        let mut events = Events::with_capacity(256);
        let mut buf = vec![0u8; 65536];
        let mut plain = Vec::new();
        let mut next_target = 0;
        loop {
            while run.active < run.slots.len() && next_target < targets.len() {
                self.start(next_target, targets, cfg, &mut run, sink)?;
                next_target += 1;
            }
            if run.active == 0 && next_target >= targets.len() {
                return Ok(run.round);
            }
            let wait = run
                .timers
                .peek()
                .map(|Reverse((when, ..))| when.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, wait) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(Error::internal(format!("poll: {e}")));
                }
            }
            for ev in events.iter() {
                self.drain(
                    ev.token(),
                    targets,
                    cfg,
                    &mut run,
                    &mut buf,
                    &mut plain,
                    sink,
                )?;
            }
            self.expire(targets, cfg, &mut run, sink)?;
        }
    }

    fn start(
        &mut self,
        target: usize,
        targets: &[Target],
        cfg: &Config,
        run: &mut RoundRun,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        let mut walk = Walk::new(
            cfg.op,
            cfg.gets.clone(),
            Arc::clone(&cfg.roots),
            cfg.max_repetitions,
            cfg.max_varbinds,
        );
        if self.sessions[target].version() == Some(Version::V1) {
            walk.v1_only();
        }
        let ask = match walk.first() {
            Next::Send(ask) => ask,
            Next::Done => return report(target, Outcome::default(), run, sink),
            Next::Failed(e) => {
                let outcome = Outcome {
                    error: Some(e),
                    ..Outcome::default()
                };
                return report(target, outcome, run, sink);
            }
        };
        self.serial += 1;
        let slot = run.free.pop().unwrap_or_default();
        let job = Job {
            target,
            walk,
            ask,
            id: 0,
            serial: self.serial,
            datagram: Vec::with_capacity(128),
            tries: 0,
            sends: 0,
            started: Instant::now(),
            requests: 0,
            retries: 0,
        };
        run.slots[slot] = Some(job);
        run.active += 1;
        run.timers.push(Reverse((
            Instant::now() + cfg.deadline,
            slot,
            self.serial,
            0,
            Timer::Deadline,
        )));
        self.send_new(slot, targets, cfg, run, sink)
    }

    /// Encodes the job's current ask under a new id and sends it.
    fn send_new(
        &mut self,
        slot: usize,
        targets: &[Target],
        cfg: &Config,
        run: &mut RoundRun,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        let Some(job) = run.slots[slot].as_mut() else {
            return Ok(());
        };
        run.ids.remove(&job.id);
        self.next_id = if self.next_id >= i32::MAX - 1 {
            1
        } else {
            self.next_id + 1
        };
        job.id = self.next_id;
        job.tries = 0;
        job.datagram.clear();
        let req = Request {
            kind: job.ask.kind,
            request_id: job.id,
            non_repeaters: 0,
            max_repetitions: job.ask.max_repetitions,
            oids: &job.ask.oids,
        };
        if let Err(e) = self.sessions[job.target].encode(&req, &mut job.datagram) {
            return self.fail(slot, e, run, sink);
        }
        run.ids.insert(job.id, slot);
        self.transmit(slot, targets, cfg, run);
        Ok(())
    }

    /// Sends (or resends) the job's datagram and arms its retry timer.
    fn transmit(&mut self, slot: usize, targets: &[Target], cfg: &Config, run: &mut RoundRun) {
        let Some(job) = run.slots[slot].as_mut() else {
            return;
        };
        let addr = targets[job.target].addr;
        let sockets = if addr.is_ipv4() { &self.v4 } else { &self.v6 };
        if let Some(s) = sockets.get(job.target % sockets.len().max(1)) {
            // A full send buffer is a lost datagram: the retry timer covers it.
            let _ = s.send_to(&job.datagram, addr);
        }
        job.tries += 1;
        job.sends += 1;
        job.requests += 1;
        run.round.requests += 1;
        run.timers.push(Reverse((
            Instant::now() + cfg.timeout,
            slot,
            job.serial,
            job.sends,
            Timer::Retry,
        )));
    }

    #[allow(clippy::too_many_arguments)]
    fn drain(
        &mut self,
        token: Token,
        targets: &[Target],
        cfg: &Config,
        run: &mut RoundRun,
        buf: &mut [u8],
        plain: &mut Vec<u8>,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        loop {
            let received = {
                let i = token.0;
                let s = if i >= MAX_SOCKETS {
                    self.v6.get(i - MAX_SOCKETS)
                } else {
                    self.v4.get(i)
                };
                match s {
                    Some(s) => s.recv_from(buf),
                    None => return Ok(()),
                }
            };
            let (n, from) = match received {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // ICMP port unreachable and the like: the retry timer handles the agent.
                Err(_) => continue,
            };
            let datagram = &buf[..n];
            let slot = pdu::peek_id(datagram).and_then(|id| run.ids.get(&id).copied());
            let Some(slot) = slot.filter(|&s| {
                run.slots[s]
                    .as_ref()
                    .is_some_and(|j| same_agent(targets[j.target].addr, from))
            }) else {
                run.round.stray += 1;
                continue;
            };
            self.on_datagram(slot, datagram, targets, cfg, run, plain, sink)?;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_datagram(
        &mut self,
        slot: usize,
        datagram: &[u8],
        targets: &[Target],
        cfg: &Config,
        run: &mut RoundRun,
        plain: &mut Vec<u8>,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        let Some(job) = run.slots[slot].as_mut() else {
            return Ok(());
        };
        let target = job.target;
        let next = match self.sessions[target].open(datagram, plain) {
            Err(e) => Next::Failed(e),
            Ok(Opened::Resend) => {
                return self.send_new(slot, targets, cfg, run, sink);
            }
            Ok(Opened::Pdu(p)) if p.request_id != job.id || p.kind != PduType::Response => {
                run.round.stray += 1;
                return Ok(());
            }
            Ok(Opened::Pdu(p)) => {
                let before = job.walk.varbinds();
                let next = job.walk.on_reply(&p, &mut |vb| sink.varbind(target, vb));
                run.round.varbinds += job.walk.varbinds() - before;
                next
            }
        };
        match next {
            Next::Send(ask) => {
                job.ask = ask;
                self.send_new(slot, targets, cfg, run, sink)
            }
            Next::Done => self.finish(slot, None, run, sink),
            Next::Failed(e) => self.fail(slot, e, run, sink),
        }
    }

    fn expire(
        &mut self,
        targets: &[Target],
        cfg: &Config,
        run: &mut RoundRun,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        let now = Instant::now();
        while let Some(&Reverse((when, slot, serial, sends, kind))) = run.timers.peek() {
            if when > now {
                break;
            }
            run.timers.pop();
            let Some(job) = run.slots[slot].as_ref().filter(|j| j.serial == serial) else {
                continue;
            };
            match kind {
                Timer::Deadline => {
                    let e = format!("no complete answer within the {:?} deadline", cfg.deadline);
                    self.fail(slot, e, run, sink)?;
                }
                Timer::Retry => {
                    if job.sends != sends {
                        continue;
                    }
                    if job.tries > cfg.retries {
                        let e = format!(
                            "timeout: no reply after {} tries of {:?}",
                            job.tries, cfg.timeout
                        );
                        self.fail(slot, e, run, sink)?;
                    } else {
                        if let Some(j) = run.slots[slot].as_mut() {
                            j.retries += 1;
                        }
                        run.round.retries += 1;
                        self.transmit(slot, targets, cfg, run);
                    }
                }
            }
        }
        Ok(())
    }

    fn fail(
        &mut self,
        slot: usize,
        e: String,
        run: &mut RoundRun,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        self.finish(slot, Some(e), run, sink)
    }

    fn finish(
        &mut self,
        slot: usize,
        error: Option<String>,
        run: &mut RoundRun,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        let Some(job) = run.slots[slot].take() else {
            return Ok(());
        };
        run.ids.remove(&job.id);
        run.free.push(slot);
        run.active -= 1;
        let outcome = Outcome {
            error,
            seconds: job.started.elapsed().as_secs_f64(),
            varbinds: job.walk.varbinds(),
            requests: job.requests,
            retries: job.retries,
        };
        report(job.target, outcome, run, sink)
    }
}

/// Counts an agent's outcome in the round's totals and hands it to the sink.
fn report(target: usize, outcome: Outcome, run: &mut RoundRun, sink: &mut dyn Sink) -> Result<()> {
    if outcome.error.is_some() {
        run.round.failed += 1;
    } else {
        run.round.ok += 1;
    }
    sink.finished(target, &outcome)
}

/// Replies must come from the agent asked (port included), as net-snmp requires.
fn same_agent(asked: SocketAddr, from: SocketAddr) -> bool {
    asked == from
        || (asked.port() == from.port() && asked.ip().to_canonical() == from.ip().to_canonical())
}

/// (when, slot, job serial, send number, kind).
type TimerEntry = (Instant, usize, u64, u64, Timer);

struct RoundRun {
    slots: Vec<Option<Job>>,
    free: Vec<usize>,
    active: usize,
    ids: HashMap<i32, usize, foldhash::fast::FixedState>,
    timers: BinaryHeap<Reverse<TimerEntry>>,
    round: Round,
}

impl RoundRun {
    fn new(concurrency: usize) -> RoundRun {
        RoundRun {
            slots: (0..concurrency).map(|_| None).collect(),
            free: (0..concurrency).rev().collect(),
            active: 0,
            ids: HashMap::default(),
            timers: BinaryHeap::new(),
            round: Round::default(),
        }
    }
}
