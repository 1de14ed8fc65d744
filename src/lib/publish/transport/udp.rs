//! Datagrams of whole lines (statsd, Graphite over UDP), optionally signed with Brubeck's
//! statsd-secure HMAC.
//!
//! UDP carries no acknowledgement and no reliable error: a send succeeds once the kernel has
//! the datagram. A refused port (an ICMP error reported on a later send) is logged, not
//! retried, since the datagram it refers to cannot be known and statsd counters must not be
//! counted twice.

use super::{io_reason, SendError, SendResult, Transport};
use crate::publish::batch::Batch;
use crate::statsd::secure;
use std::net::{ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

pub struct UdpTransport {
    addr: String,
    socket: Option<UdpSocket>,
    /// Largest datagram, signature included.
    mtu: usize,
    key: Option<Vec<u8>>,
    timeout: Duration,
    nonces: crate::rng::XorShift,
    refused: crate::log::RateLimit,
}

impl UdpTransport {
    pub fn new(addr: String, mtu: usize, key: Option<Vec<u8>>, timeout: Duration) -> UdpTransport {
        UdpTransport {
            addr,
            socket: None,
            mtu,
            key,
            timeout,
            nonces: crate::rng::XorShift::seeded(),
            refused: crate::log::RateLimit::default(),
        }
    }

    fn socket(&mut self) -> Result<&UdpSocket, SendError> {
        if self.socket.is_none() {
            let target = self
                .addr
                .to_socket_addrs()
                .map_err(|e| SendError::Retry(io_reason(&format!("resolving {}", self.addr), &e)))?
                .next()
                .ok_or_else(|| SendError::Retry(format!("{} resolves to no address", self.addr)))?;
            let local = if target.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let s = UdpSocket::bind(local)
                .and_then(|s| s.connect(target).map(|()| s))
                .map_err(|e| SendError::Retry(io_reason("opening a UDP socket", &e)))?;
            self.socket = Some(s);
        }
        self.socket
            .as_ref()
            .ok_or_else(|| SendError::Retry("no socket".into()))
    }

    fn send_datagram(&mut self, payload: &[u8]) -> SendResult {
        let datagram = match &self.key {
            Some(key) => {
                let nonce = self.nonces.next_u64() as u32;
                let now = crate::time::now_ns().max(0) as u64 / 1_000_000_000;
                std::borrow::Cow::Owned(secure::sign(key, now, nonce, payload))
            }
            None => std::borrow::Cow::Borrowed(payload),
        };
        let deadline = Instant::now() + self.timeout;
        loop {
            let result = self.socket()?.send(&datagram);
            match result {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    if let Some(suppressed) = self.refused.allow() {
                        crate::log!(
                            Warn,
                            "udp_refused",
                            dest = self.addr,
                            reason =
                                "nothing listening (ICMP port unreachable for an earlier datagram)",
                            suppressed = suppressed
                        );
                    }
                    return Ok(());
                }
                // A full socket buffer: wait for the kernel rather than lose the datagram.
                Err(e)
                    if Instant::now() < deadline
                        && matches!(e.raw_os_error(), Some(libc::ENOBUFS) | Some(libc::EAGAIN)) =>
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(SendError::Retry(io_reason("sending a datagram", &e))),
            }
        }
    }
}

/// Cuts `payload` into runs of whole lines of at most `max` bytes each; a longer line is a
/// run of its own (the kernel or the receiver decides its fate, as with any statsd client).
pub fn datagrams(payload: &[u8], max: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = payload;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        for line in rest.split_inclusive(|&b| b == b'\n') {
            if end > 0 && end + line.len() > max {
                break;
            }
            end += line.len();
        }
        let (run, tail) = rest.split_at(end);
        rest = tail;
        // statsd servers accept a final line without a newline; spare the byte.
        Some(run.strip_suffix(b"\n").unwrap_or(run))
    })
}

impl Transport for UdpTransport {
    fn send(&mut self, batch: &Batch) -> SendResult {
        let max = self
            .mtu
            .saturating_sub(if self.key.is_some() {
                secure::HEADER_LEN
            } else {
                0
            })
            .max(1);
        for d in datagrams(&batch.payload, max) {
            self.send_datagram(d)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_packed_whole() {
        let runs: Vec<&[u8]> = datagrams(b"a:1|c\nbb:2|c\ncc:3|c\n", 13).collect();
        assert_eq!(runs, [b"a:1|c\nbb:2|c".as_slice(), b"cc:3|c"]);
        let runs: Vec<&[u8]> = datagrams(b"toolongline\nx\n", 4).collect();
        assert_eq!(runs, [b"toolongline".as_slice(), b"x"]);
        assert_eq!(datagrams(b"", 10).count(), 0);
    }

    #[test]
    fn signed_datagrams_verify() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let mut t = UdpTransport::new(addr, 64, Some(b"key".to_vec()), Duration::from_secs(1));
        t.send(&Batch::new(b"a:1|c\nb:2|c\n".to_vec(), 2)).unwrap();
        let mut v = secure::Verifier::new(b"key", 10);
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let now = crate::time::now_ns() as u64 / 1_000_000_000;
        assert_eq!(v.verify(&buf[..n], now).unwrap(), b"a:1|c\nb:2|c");
    }
}
