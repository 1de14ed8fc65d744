//! A TCP stream of lines or frames (Graphite plaintext and pickle, OpenTSDB telnet), with a
//! replay window.
//!
//! These protocols never acknowledge: a write succeeds once the kernel has the bytes, and
//! what a backend held when it died is gone without an error. So the transport keeps the
//! batches sent in the last `--replay-window` and sends them again after a reconnect. Graphite
//! and OpenTSDB store one value per series and timestamp, so the repeats are harmless.

use super::{io_reason, SendError, SendResult, Transport};
use crate::publish::batch::Batch;
use crate::publish::counters::Counters;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Recently delivered batches, oldest first, bounded by age and bytes.
#[derive(Debug)]
pub struct ReplayWindow {
    batches: VecDeque<(Instant, Batch)>,
    bytes: usize,
    max_age: Duration,
    max_bytes: usize,
}

impl ReplayWindow {
    pub fn new(max_age: Duration, max_bytes: usize) -> ReplayWindow {
        ReplayWindow {
            batches: VecDeque::new(),
            bytes: 0,
            max_age,
            max_bytes,
        }
    }

    /// Adds a batch just delivered and forgets what fell out of the window. Ages are
    /// measured from the newest delivery, so during an outage (no deliveries) the window
    /// keeps what was sent just before it.
    pub fn push(&mut self, now: Instant, batch: Batch) {
        if self.max_age.is_zero() || self.max_bytes == 0 {
            return;
        }
        self.bytes += batch.bytes();
        self.batches.push_back((now, batch));
        while let Some((at, b)) = self.batches.front() {
            let old = now.duration_since(*at) > self.max_age;
            if !(old || self.bytes > self.max_bytes) || self.batches.len() == 1 {
                break;
            }
            self.bytes -= b.bytes();
            self.batches.pop_front();
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Batch> {
        self.batches.iter().map(|(_, b)| b)
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

pub struct TcpTransport {
    addr: String,
    timeout: Duration,
    conn: Option<TcpStream>,
    window: ReplayWindow,
    counters: Arc<Counters>,
}

impl TcpTransport {
    pub fn new(
        addr: String,
        timeout: Duration,
        window: ReplayWindow,
        counters: Arc<Counters>,
    ) -> TcpTransport {
        TcpTransport {
            addr,
            timeout,
            conn: None,
            window,
            counters,
        }
    }

    fn connect(&self) -> Result<TcpStream, SendError> {
        let addrs = self
            .addr
            .to_socket_addrs()
            .map_err(|e| SendError::Retry(io_reason(&format!("resolving {}", self.addr), &e)))?;
        let mut last = SendError::Retry(format!("{} resolves to no address", self.addr));
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    let _ = s.set_write_timeout(Some(self.timeout));
                    let _ = s.set_read_timeout(Some(self.timeout));
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = SendError::Retry(io_reason(&format!("connecting to {a}"), &e)),
            }
        }
        Err(last)
    }

    /// A connection that is still open, or a new one after sending the replay window over
    /// it.
    fn connection(&mut self) -> Result<&mut TcpStream, SendError> {
        if self.conn.as_ref().is_some_and(|c| !peer_open(c)) {
            crate::log!(
                Warn,
                "connection_lost",
                dest = self.addr,
                reason = "closed by the peer"
            );
            self.conn = None;
        }
        if self.conn.is_none() {
            let mut conn = self.connect()?;
            let mut points = 0;
            for b in self.window.iter() {
                conn.write_all(&b.payload)
                    .map_err(|e| SendError::Retry(io_reason("resending the replay window", &e)))?;
                points += b.points;
            }
            if points > 0 {
                Counters::add(&self.counters.resent, points);
                crate::log!(
                    Info,
                    "replay_window_resent",
                    dest = self.addr,
                    points = points
                );
            }
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| SendError::Retry("no connection".into()))
    }
}

impl Transport for TcpTransport {
    fn send(&mut self, batch: &Batch) -> SendResult {
        let conn = self.connection()?;
        if let Err(e) = conn.write_all(&batch.payload) {
            self.conn = None;
            return Err(SendError::Retry(io_reason("writing", &e)));
        }
        Ok(())
    }

    fn keep(&mut self, batch: Batch) {
        self.window.push(Instant::now(), batch);
    }

    /// Half-closes and waits for the backend to close its side: it has then read everything
    /// (carbon and OpenTSDB close when they see the end of the stream).
    fn close(&mut self) -> SendResult {
        if self.conn.is_none() && self.window.is_empty() {
            return Ok(());
        }
        let conn = self.connection()?;
        let confirmed = conn.shutdown(Shutdown::Write).and_then(|()| {
            let mut sink = [0u8; 512];
            while conn.read(&mut sink)? > 0 {}
            Ok(())
        });
        self.conn = None;
        match confirmed {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                crate::log!(
                    Warn,
                    "close_unconfirmed",
                    dest = self.addr,
                    reason = "the backend did not close its side in time"
                );
                Ok(())
            }
            Err(e) => Err(SendError::Retry(io_reason("closing", &e))),
        }
    }
}

/// Whether the peer has not closed or reset the connection, asked without blocking and
/// without consuming anything.
fn peer_open(conn: &TcpStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: a one-byte buffer we own, on a socket descriptor `conn` keeps open.
    let n = unsafe {
        libc::recv(
            conn.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => false,
        n if n > 0 => true,
        _ => {
            let e = std::io::Error::last_os_error();
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn b(text: &str) -> Batch {
        Batch::new(text.as_bytes().to_vec(), 1)
    }

    #[test]
    fn window_bounds() {
        let t0 = Instant::now();
        let mut w = ReplayWindow::new(Duration::from_secs(10), 10);
        w.push(t0, b("aaaa"));
        w.push(t0 + Duration::from_secs(5), b("bbbb"));
        w.push(t0 + Duration::from_secs(12), b("cc"));
        let kept: Vec<_> = w.iter().map(|b| b.payload.clone()).collect();
        assert_eq!(kept, [b"bbbb".to_vec(), b"cc".to_vec()]);
        w.push(t0 + Duration::from_secs(13), b("dddddddddd"));
        assert_eq!(
            w.iter().count(),
            1,
            "over the byte bound only the newest stays"
        );
        let mut off = ReplayWindow::new(Duration::ZERO, 10);
        off.push(t0, b("x"));
        assert!(off.is_empty());
    }

    fn read_all(listener: &TcpListener) -> String {
        let (mut s, _) = listener.accept().unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn reconnect_resends_the_window_and_close_confirms() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let counters = Arc::new(Counters::default());
        let window = ReplayWindow::new(Duration::from_secs(60), 1 << 20);
        let mut t = TcpTransport::new(addr, Duration::from_secs(5), window, counters.clone());
        t.send(&b("one\n")).unwrap();
        t.keep(b("one\n"));
        // The backend goes away after reading the first line.
        let (mut first, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        first.read_exact(&mut buf).unwrap();
        drop(first);
        std::thread::sleep(Duration::from_millis(50));
        t.send(&b("two\n")).unwrap();
        t.keep(b("two\n"));
        let reader = std::thread::spawn(move || read_all(&listener));
        t.close().unwrap();
        assert_eq!(reader.join().unwrap(), "one\ntwo\n");
        assert_eq!(counters.snapshot().resent, 1);
    }

    #[test]
    fn nothing_listening_is_a_retry() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut t = TcpTransport::new(
            format!("127.0.0.1:{port}"),
            Duration::from_secs(1),
            ReplayWindow::new(Duration::ZERO, 0),
            Arc::new(Counters::default()),
        );
        match t.send(&b("x\n")) {
            Err(SendError::Retry(why)) => assert!(why.contains("connecting"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
