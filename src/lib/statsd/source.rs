//! The ingest threads: UDP workers (`recvmmsg` batches on their own `SO_REUSEPORT` socket),
//! signed-packet workers, one event loop for all TCP connections (mio), a unix datagram
//! socket, and standard input. Each folds into its own `Fold` and hands it over when the
//! flush asks (`Station`), so receiving takes no lock shared with other threads.

use super::fold::{Counters, Fold, Handoff, TOO_LONG, TRUNCATED};
use super::secure::{Reject, Verifier};
use crate::time::{now_ns, NS_PER_SEC};
use crossbeam_channel::{Receiver, Sender};
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often an idle thread looks whether the flush wants its part.
pub const POLL: Duration = Duration::from_millis(20);
/// Datagrams per `recvmmsg` call.
const SLOTS: usize = 256;
/// Room for the largest UDP payload, so no datagram is cut.
const SLOT_BYTES: usize = 65536;
/// The longest line a TCP connection or standard input may send.
pub const MAX_LINE: usize = 65536;

/// A thread's part sent to the flush: who sent it, for which request, and whether the
/// thread has ended (end of input).
pub struct Delivery {
    pub source: usize,
    pub epoch: u64,
    pub handoff: Handoff,
    pub last: bool,
}

/// What connects an ingest thread to the flush.
pub struct Station {
    pub id: usize,
    pub epoch: Arc<AtomicU64>,
    pub stop: Arc<AtomicBool>,
    pub deliveries: Sender<Delivery>,
    pub recycle: Receiver<Handoff>,
    pub counters: Arc<Counters>,
    pub seen: u64,
}

impl Station {
    /// Hands the fold over when the flush has asked since the last time; true when the
    /// thread must end (the final handoff is then already sent).
    pub fn check(&mut self, fold: &mut Fold) -> bool {
        fold.tally.publish(&self.counters);
        let epoch = self.epoch.load(Ordering::Acquire);
        let stop = self.stop.load(Ordering::Acquire);
        if epoch != self.seen || stop {
            self.seen = epoch;
            self.deliver(fold, stop);
        } else if fold.is_full() {
            // Delivered under the epoch already answered: the flush merges it without
            // counting it as this thread's answer to a later request.
            self.deliver(fold, false);
        }
        stop
    }

    pub fn deliver(&mut self, fold: &mut Fold, last: bool) {
        let handoff = fold.handoff(self.recycle.try_recv().ok());
        let _ = self.deliveries.send(Delivery {
            source: self.id,
            epoch: self.seen,
            handoff,
            last,
        });
    }
}

/// Buffers and headers for one `recvmmsg` call, reused call after call.
struct Batch {
    bufs: Vec<u8>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new() -> Batch {
        let mut bufs = vec![0u8; SLOTS * SLOT_BYTES];
        let iovs: Vec<libc::iovec> = bufs
            .chunks_mut(SLOT_BYTES)
            .map(|c| libc::iovec {
                iov_base: c.as_mut_ptr().cast(),
                iov_len: c.len(),
            })
            .collect();
        // SAFETY: all-zero sockaddr_storage and mmsghdr are valid values.
        let addrs = vec![unsafe { std::mem::zeroed::<libc::sockaddr_storage>() }; SLOTS];
        let hdrs = vec![unsafe { std::mem::zeroed::<libc::mmsghdr>() }; SLOTS];
        Batch {
            bufs,
            iovs,
            addrs,
            hdrs,
        }
    }

    /// Receives up to SLOTS datagrams without waiting (WouldBlock when there are none).
    /// The kernel rewrites name lengths, so every header is set again before each call.
    fn receive(&mut self, fd: i32) -> std::io::Result<usize> {
        for i in 0..SLOTS {
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: every header points into buffers owned by `self` that outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                SLOTS as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Datagram `i` of the last call: only the received count is ever read, each slot
    /// only as long as its own datagram.
    fn datagram(&self, i: usize) -> (&[u8], bool, &libc::sockaddr_storage) {
        let len = (self.hdrs[i].msg_len as usize).min(SLOT_BYTES);
        let truncated = self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        (
            &self.bufs[i * SLOT_BYTES..i * SLOT_BYTES + len],
            truncated,
            &self.addrs[i],
        )
    }
}

fn transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

/// How long a worker that found fewer datagrams than a full batch waits before it asks
/// again. Waking up for every datagram costs more CPU than reading it; the receive buffer
/// holds what arrives meanwhile, and a flush interval is seconds long.
const COALESCE: Duration = Duration::from_millis(1);

/// One UDP worker; with `verifier`, every datagram must be a valid signed packet.
pub fn udp_worker(
    sock: UdpSocket,
    mut fold: Fold,
    mut station: Station,
    mut verifier: Option<Verifier>,
) {
    let fd = sock.as_raw_fd();
    let mut batch = Batch::new();
    loop {
        match batch.receive(fd) {
            Ok(n) => {
                let now = now_ns();
                for i in 0..n {
                    let (data, truncated, addr) = batch.datagram(i);
                    let from = || peer(addr);
                    if truncated {
                        fold.bad(
                            TRUNCATED,
                            "datagram larger than 64 KiB",
                            data,
                            &from,
                            &station.counters,
                        );
                        continue;
                    }
                    let payload = match verifier.as_mut() {
                        None => data,
                        Some(v) => match v.verify(data, (now / NS_PER_SEC) as u64) {
                            Ok(p) => p,
                            Err(r) => {
                                rejected(&station.counters, r, &from);
                                fold.tally.datagrams += 1;
                                continue;
                            }
                        },
                    };
                    fold.datagram(payload, now, &from, &station.counters);
                }
                if n < SLOTS {
                    std::thread::sleep(COALESCE);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                readable(fd, POLL);
            }
            Err(e) if transient(&e) => {}
            Err(e) => {
                crate::log!(Error, "receive_failed", error = e);
                std::thread::sleep(POLL);
            }
        }
        if station.check(&mut fold) {
            return;
        }
    }
}

fn peer(addr: &libc::sockaddr_storage) -> String {
    super::listen::peer_addr(addr).map_or_else(|| "?".to_string(), |a| a.to_string())
}

fn rejected(c: &Counters, r: Reject, from: &dyn Fn() -> String) {
    if let Some(i) = Reject::ALL.iter().position(|&x| x == r) {
        c.rejected[i].fetch_add(1, Ordering::Relaxed);
    }
    crate::log!(
        Debug,
        "signed_packet_rejected",
        from = from(),
        reason = r.reason()
    );
}

/// The unix datagram socket's thread.
pub fn unix_worker(sock: UnixDatagram, mut fold: Fold, mut station: Station) {
    let _ = sock.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; 4 * SLOT_BYTES];
    loop {
        // MSG_TRUNC makes recv report a datagram's full length even when it did not fit.
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        if n >= 0 {
            let now = now_ns();
            let n = n as usize;
            let from = || "unix".to_string();
            if n > buf.len() {
                fold.bad(
                    TRUNCATED,
                    "datagram larger than 256 KiB",
                    &buf,
                    &from,
                    &station.counters,
                );
            } else {
                fold.datagram(&buf[..n], now, &from, &station.counters);
            }
        } else {
            let e = std::io::Error::last_os_error();
            if !transient(&e) {
                crate::log!(Error, "receive_failed", error = e);
                std::thread::sleep(POLL);
            }
        }
        if station.check(&mut fold) {
            return;
        }
    }
}

/// Splits a byte stream into lines across reads: keeps the unfinished tail, refuses lines
/// longer than MAX_LINE (the rest of such a line is skipped up to its newline).
#[derive(Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
    skipping: bool,
}

impl LineBuffer {
    /// Hands every complete line in `data` to `line`, and each overlong one to `too_long`.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        line: &mut dyn FnMut(&[u8]),
        too_long: &mut dyn FnMut(&[u8]),
    ) {
        while let Some(nl) = memchr::memchr(b'\n', data) {
            let (head, rest) = (&data[..nl], &data[nl + 1..]);
            if self.skipping {
                self.skipping = false;
            } else if self.pending.is_empty() {
                if head.len() > MAX_LINE {
                    too_long(&head[..128]);
                } else {
                    line(head);
                }
            } else {
                self.pending.extend_from_slice(head);
                if self.pending.len() > MAX_LINE {
                    too_long(&self.pending[..128]);
                } else {
                    line(&self.pending);
                }
                self.pending.clear();
            }
            data = rest;
        }
        if self.skipping {
            return;
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() > MAX_LINE {
            too_long(&self.pending[..128]);
            self.pending.clear();
            self.skipping = true;
        }
    }

    /// The last line of a stream that did not end in a newline.
    pub fn finish(&mut self, line: &mut dyn FnMut(&[u8])) {
        if !self.skipping && !self.pending.is_empty() {
            line(&self.pending);
        }
        self.pending.clear();
        self.skipping = false;
    }
}

/// Feeds bytes of a stream (TCP connection, stdin) into the fold, line by line.
fn feed_stream(
    lines: &mut LineBuffer,
    fold: &mut Fold,
    data: &[u8],
    from: &dyn Fn() -> String,
    c: &Counters,
) {
    let now = now_ns();
    fold.tally.bytes += data.len() as u64;
    let mut long = Vec::new();
    lines.feed(
        data,
        &mut |l: &[u8]| {
            if !l.is_empty() && l != b"\r" {
                fold.line(l, now, from, c)
            }
        },
        &mut |l: &[u8]| long.push(l.to_vec()),
    );
    for l in long {
        fold.bad(TOO_LONG, "line longer than 64 KiB", &l, from, c);
    }
}

/// Standard input's thread: statsd lines until end of input, which ends the daemon.
pub fn stdin_worker(mut fold: Fold, mut station: Station) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; 1 << 16];
    let mut lines = LineBuffer::default();
    let from = || "stdin".to_string();
    loop {
        if readable(0, POLL) {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => feed_stream(&mut lines, &mut fold, &buf[..n], &from, &station.counters),
                Err(e) if transient(&e) => {}
                Err(e) => {
                    crate::log!(Error, "read_failed", input = "stdin", error = e);
                    break;
                }
            }
        }
        if station.check(&mut fold) {
            return;
        }
    }
    let now = now_ns();
    let c = station.counters.clone();
    lines.finish(&mut |l: &[u8]| fold.line(l, now, &from, &c));
    fold.tally.publish(&station.counters);
    station.deliver(&mut fold, true);
}

fn readable(fd: i32, wait: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, wait.as_millis() as i32) > 0 }
}

/// One connection of the TCP event loop.
struct Conn {
    stream: mio::net::TcpStream,
    peer: SocketAddr,
    lines: LineBuffer,
}

/// The TCP listener's event loop: newline-delimited statsd lines on many connections.
pub fn tcp_worker(listener: std::net::TcpListener, mut fold: Fold, mut station: Station) {
    use mio::{Events, Interest, Poll, Token};
    const LISTENER: Token = Token(usize::MAX);
    let started = (|| -> std::io::Result<(Poll, mio::net::TcpListener)> {
        listener.set_nonblocking(true)?;
        let poll = Poll::new()?;
        let mut l = mio::net::TcpListener::from_std(listener);
        poll.registry()
            .register(&mut l, LISTENER, Interest::READABLE)?;
        Ok((poll, l))
    })();
    let (mut poll, listener) = match started {
        Ok(x) => x,
        Err(e) => {
            crate::log!(Error, "tcp_failed", error = e);
            station.deliver(&mut fold, true);
            return;
        }
    };
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if let Err(e) = poll.poll(&mut events, Some(POLL)) {
            if !transient(&e) {
                crate::log!(Error, "tcp_poll_failed", error = e);
            }
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                accept_all(&listener, &poll, &mut conns, &station.counters);
                continue;
            }
            let id = ev.token().0;
            let done = match conns.get_mut(id).and_then(Option::as_mut) {
                Some(conn) => read_conn(conn, &mut fold, &mut buf, &station.counters),
                None => false,
            };
            if done {
                if let Some(mut conn) = conns[id].take() {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
            }
        }
        if station.check(&mut fold) {
            return;
        }
    }
}

fn accept_all(
    listener: &mio::net::TcpListener,
    poll: &mio::Poll,
    conns: &mut Vec<Option<Conn>>,
    c: &Counters,
) {
    loop {
        match listener.accept() {
            Ok((mut stream, peer)) => {
                let id = conns
                    .iter()
                    .position(Option::is_none)
                    .unwrap_or(conns.len());
                if id == conns.len() {
                    conns.push(None);
                }
                let token = mio::Token(id);
                if poll
                    .registry()
                    .register(&mut stream, token, mio::Interest::READABLE)
                    .is_ok()
                {
                    c.connections.fetch_add(1, Ordering::Relaxed);
                    conns[id] = Some(Conn {
                        stream,
                        peer,
                        lines: LineBuffer::default(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) => {
                crate::log!(Warn, "tcp_accept_failed", error = e);
                return;
            }
        }
    }
}

/// Reads what a connection has; true when it has closed.
fn read_conn(conn: &mut Conn, fold: &mut Fold, buf: &mut [u8], c: &Counters) -> bool {
    let peer = conn.peer;
    let from = move || peer.to_string();
    loop {
        match conn.stream.read(buf) {
            Ok(0) => {
                let now = now_ns();
                conn.lines
                    .finish(&mut |l: &[u8]| fold.line(l, now, &from, c));
                return true;
            }
            Ok(n) => feed_stream(&mut conn.lines, fold, &buf[..n], &from, c),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                crate::log!(Debug, "tcp_connection_error", from = from(), error = e);
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(lb: &mut LineBuffer, chunks: &[&[u8]]) -> (Vec<String>, usize) {
        let mut got = Vec::new();
        let mut long = 0;
        for c in chunks {
            lb.feed(
                c,
                &mut |l: &[u8]| got.push(String::from_utf8_lossy(l).into_owned()),
                &mut |_: &[u8]| long += 1,
            );
        }
        lb.finish(&mut |l: &[u8]| got.push(String::from_utf8_lossy(l).into_owned()));
        (got, long)
    }

    #[test]
    fn lines_are_joined_across_reads() {
        let mut lb = LineBuffer::default();
        let (got, long) = collect(&mut lb, &[b"a:1|c\nb:", b"2|c\n", b"c:3|c"]);
        assert_eq!(got, ["a:1|c", "b:2|c", "c:3|c"]);
        assert_eq!(long, 0);
    }

    #[test]
    fn overlong_lines_are_refused_once_and_skipped() {
        let mut lb = LineBuffer::default();
        let big = vec![b'x'; MAX_LINE + 10];
        let (got, long) = collect(&mut lb, &[b"ok:1|c\n", &big, &big, b"tail\nnext:1|c\n"]);
        assert_eq!(got, ["ok:1|c", "next:1|c"]);
        assert_eq!(long, 1);
        let mut one = big.clone();
        one.extend_from_slice(b"\nafter:1|c\n");
        let (got, long) = collect(&mut lb, &[&one]);
        assert_eq!((got, long), (vec!["after:1|c".to_string()], 1));
    }
}
