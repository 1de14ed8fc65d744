//! A small HTTP/1.1 server on `std::net` for the commands' HTTP endpoints (`tlm-statsd
//! --http`, `tlm-publish --serve`): a thread per connection, bounded in number and time.
//!
//! One request per connection, answered with `Connection: close`; bodies only by
//! `Content-Length` (no chunked encoding). `HEAD` is answered wherever `GET` is. What each
//! path means is up to the command's `Handler`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Answers requests; called on the connection's own thread.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Reply;
}

/// Request line and headers together.
pub const HEAD_LIMIT: usize = 16 * 1024;
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;
/// The longest wait for one read or write.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole request, so a client trickling a byte per read cannot hold a thread for long.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Connections served at once; more are answered 503 at once rather than queued.
const MAX_CONNECTIONS: usize = 64;
/// How often the accept loop looks at `stop`.
const POLL: Duration = Duration::from_millis(20);
/// After an accept error such as EMFILE, which would repeat at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long, and how much, unread input is drained before closing (see `linger`).
const LINGER: Duration = Duration::from_secs(1);
const LINGER_LIMIT: usize = 1024 * 1024;

/// Serves until `stop` is set (seen within `POLL`). Connections in progress finish on their
/// own threads, bounded by `REQUEST_DEADLINE` and `IO_TIMEOUT`.
pub fn spawn(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    thread::Builder::new()
        .name("http".into())
        .spawn(move || accept_loop(&listener, &handler, &stop))
}

fn accept_loop(listener: &TcpListener, api: &Arc<dyn Handler>, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => admit(stream, peer, api, &active),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                crate::log!(Warn, "http_accept_failed", reason = e);
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Counts a connection in `active` while it lives, however its thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn admit(stream: TcpStream, peer: SocketAddr, api: &Arc<dyn Handler>, active: &Arc<AtomicUsize>) {
    let slot = Slot(Arc::clone(active));
    if active.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
        crate::log!(Warn, "http_busy", peer = peer, limit = MAX_CONNECTIONS);
        refuse_busy(stream);
        return;
    }
    let api = Arc::clone(api);
    let spawned = thread::Builder::new()
        .name("http-conn".into())
        .spawn(move || {
            let _slot = slot;
            serve(stream, peer, &*api);
        });
    if let Err(e) = spawned {
        crate::log!(Warn, "http_thread_failed", peer = peer, reason = e);
    }
}

/// Answers 503 without blocking the accept loop: a fresh socket's send buffer is empty, so
/// a short reply fits, and if it does not the client loses only the explanation.
fn refuse_busy(mut stream: TcpStream) {
    let reply = error(503, "too many connections");
    let _ = stream.set_nonblocking(true);
    let _ = stream.write(&reply.bytes(false));
}

/// Why a connection produced no request to route.
enum Fail {
    /// The client went away or the socket failed: nothing to answer.
    Io(io::Error),
    /// The request was bad: answer this.
    Reply(Reply),
}

impl From<Reply> for Fail {
    fn from(r: Reply) -> Fail {
        Fail::Reply(r)
    }
}

pub struct Request {
    pub method: String,
    /// The target without its query.
    pub path: String,
    pub body: Vec<u8>,
}

/// One response; always `Connection: close`.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub allow: Option<&'static str>,
}

impl Reply {
    pub fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body,
            allow: None,
        }
    }

    fn bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            out.push_str("Allow: ");
            out.push_str(allow);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        if !head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

pub fn error(status: u16, why: &str) -> Reply {
    Reply::json(status, serde_json::json!({ "error": why }).to_string())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

fn serve(stream: TcpStream, peer: SocketAddr, api: &dyn Handler) {
    let mut conn = Conn {
        stream,
        deadline: Instant::now() + REQUEST_DEADLINE,
        buf: Vec::new(),
    };
    // Accepted sockets may inherit the listener's non-blocking mode on some platforms.
    if let Err(e) = conn.stream.set_nonblocking(false) {
        crate::log!(Debug, "http_socket_failed", peer = peer, reason = e);
        return;
    }
    let (reply, head_only) = match conn.read_request() {
        Ok(Some(req)) => {
            let reply = api.handle(&req);
            crate::log!(
                Debug,
                "http_request",
                peer = peer,
                method = req.method,
                path = req.path,
                status = reply.status
            );
            (reply, req.method == "HEAD")
        }
        Ok(None) => return,
        Err(Fail::Io(e)) => {
            crate::log!(Debug, "http_read_failed", peer = peer, reason = e);
            return;
        }
        Err(Fail::Reply(reply)) => {
            crate::log!(
                Debug,
                "http_bad_request",
                peer = peer,
                status = reply.status,
                reason = reply.body
            );
            (reply, false)
        }
    };
    if let Err(e) = conn.send(&reply.bytes(head_only)) {
        crate::log!(Debug, "http_write_failed", peer = peer, reason = e);
        return;
    }
    conn.linger();
}

/// A connection and what has been read from it.
struct Conn {
    stream: TcpStream,
    deadline: Instant,
    buf: Vec<u8>,
}

impl Conn {
    /// `None` when the client closed without sending anything (a port probe).
    fn read_request(&mut self) -> Result<Option<Request>, Fail> {
        let Some(head_end) = self.read_head()? else {
            return Ok(None);
        };
        let head = parse_head(&self.buf[..head_end])?;
        if head.length > BODY_LIMIT {
            return Err(error(413, "body larger than 8 MiB").into());
        }
        let body_start = head_end;
        let have = self.buf.len() - body_start;
        if head.expect_continue && have < head.length {
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(Fail::Io)?;
        }
        self.fill(body_start + head.length)?;
        // Moved out rather than copied: a body may be 8 MiB.
        let mut body = self.buf.split_off(body_start);
        body.truncate(head.length);
        Ok(Some(Request {
            method: head.method,
            path: head.path,
            body,
        }))
    }

    /// Reads until the blank line after the headers; where the body starts.
    fn read_head(&mut self) -> Result<Option<usize>, Fail> {
        let mut searched = 0;
        loop {
            // Checked on what was found as well as on what was read: a whole oversized
            // head can arrive before the limit is looked at.
            let found = head_end(&self.buf, searched);
            if found.unwrap_or(self.buf.len()) > HEAD_LIMIT {
                return Err(error(431, "request line and headers exceed 16 KiB").into());
            }
            if found.is_some() {
                return Ok(found);
            }
            // A terminator may straddle two reads.
            searched = self.buf.len().saturating_sub(3);
            if self.read_more()? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(error(400, "connection closed inside the headers").into());
            }
        }
    }

    /// Reads until `buf` holds `len` bytes.
    fn fill(&mut self, len: usize) -> Result<(), Fail> {
        while self.buf.len() < len {
            if self.read_more()? == 0 {
                return Err(error(400, "connection closed inside the body").into());
            }
        }
        Ok(())
    }

    fn read_more(&mut self) -> Result<usize, Fail> {
        let mut chunk = [0u8; 8192];
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(error(408, "request not received in time").into());
            }
            self.stream
                .set_read_timeout(Some(left.min(IO_TIMEOUT)))
                .map_err(Fail::Io)?;
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    return Err(error(408, "request not received in time").into())
                }
                Err(e) => return Err(Fail::Io(e)),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.set_write_timeout(Some(IO_TIMEOUT))?;
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Closing a socket with unread input makes the kernel send a reset, which can destroy
    /// the response before the client reads it (after a 413, or from a keep-alive client's
    /// next request). So: half-close, then read and drop input for a bounded while.
    fn linger(&mut self) {
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let until = Instant::now() + LINGER;
        let mut drained = 0;
        let mut chunk = [0u8; 8192];
        while drained < LINGER_LIMIT {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The end of the head (after its blank line) in `buf`, looking from `from` on. A bare `\n`
/// line end is accepted as well as `\r\n`, as most servers do.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr::memchr(b'\n', buf.get(at..)?) {
        let nl = at + i;
        let rest = &buf[nl + 1..];
        if rest.starts_with(b"\n") {
            return Some(nl + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        at = nl + 1;
    }
    None
}

/// What routing and body reading need from the head.
struct Head {
    method: String,
    path: String,
    length: usize,
    expect_continue: bool,
}

fn parse_head(raw: &[u8]) -> Result<Head, Reply> {
    let text = std::str::from_utf8(raw).map_err(|_| error(400, "headers are not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let (method, path) = request_line(lines.next().unwrap_or(""))?;
    let mut head = Head {
        method,
        path,
        length: 0,
        expect_continue: false,
    };
    let mut length: Option<usize> = None;
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = header(line)?;
        if name.eq_ignore_ascii_case("content-length") {
            let n = content_length(value)?;
            if length.is_some_and(|l| l != n) {
                return Err(error(400, "conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(error(
                501,
                "Transfer-Encoding is not supported; send Content-Length",
            ));
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    head.length = length.unwrap_or(0);
    Ok(head)
}

/// `METHOD /path[?query] HTTP/1.x`: the method and the path without its query.
fn request_line(line: &str) -> Result<(String, String), Reply> {
    let bad = || error(400, "malformed request line");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad());
    }
    if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control()) {
        return Err(bad());
    }
    if !version.starts_with("HTTP/1.") {
        if version.starts_with("HTTP/") {
            return Err(error(505, "only HTTP/1.x is supported"));
        }
        return Err(bad());
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    Ok((method.to_owned(), path.to_owned()))
}

fn header(line: &str) -> Result<(&str, &str), Reply> {
    let bad = || error(400, "malformed header line");
    let (name, value) = line.split_once(':').ok_or_else(bad)?;
    // A name with spaces (or a folded continuation line) is refused, as RFC 9112 asks.
    if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(bad());
    }
    Ok((name, value.trim()))
}

fn content_length(value: &str) -> Result<usize, Reply> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(400, "Content-Length is not a number"));
    }
    // Too large for usize is too large for the limit too.
    Ok(value.parse().unwrap_or(usize::MAX))
}

/// `%XX` escapes to bytes; `None` for a broken escape or bytes that are not UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            out.push(hex_digit(hex[0])? << 4 | hex_digit(hex[1])?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Not `u8::from_str_radix`, which would take `%+1` as an escape.
fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The 405 for a method other than GET or HEAD.
pub fn only_get(req: &Request) -> Option<Reply> {
    (req.method != "GET" && req.method != "HEAD").then(|| Reply {
        allow: Some("GET, HEAD"),
        ..error(405, "method not allowed")
    })
}

pub fn only_post(req: &Request) -> Option<Reply> {
    (req.method != "POST").then(|| Reply {
        allow: Some("POST"),
        ..error(405, "method not allowed")
    })
}

pub fn with_name(raw: &str, then: impl FnOnce(&str) -> Reply) -> Reply {
    match percent_decode(raw) {
        Some(name) if !name.is_empty() => then(&name),
        Some(_) => error(400, "empty series name"),
        None => error(400, "series name is not valid percent-encoded UTF-8"),
    }
}
