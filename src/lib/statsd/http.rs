//! The operator's HTTP API of `tlm-statsd` (`--http ADDR`): a small HTTP/1.1 server on
//! `std::net`, because no HTTP crate is a dependency.
//!
//! One request per connection, answered with `Connection: close`; bodies only by
//! `Content-Length` (no chunked encoding). Routes:
//!
//! | route                | answer                                                      |
//! |----------------------|-------------------------------------------------------------|
//! | `GET /ping`          | `pong`                                                      |
//! | `GET /stats`         | `Api::stats_json`                                           |
//! | `GET /metric/NAME`   | `Api::metric_json`, 404 when there is no such series        |
//! | `POST /expire/NAME`  | `{"expired":N}` from `Api::expire`, 404 when N is 0          |
//! | `POST /metrics`      | a Funnel body (`statsd::funnel`) handed to `Api::ingest`     |
//!
//! `NAME` is percent-decoded. `HEAD` is answered wherever `GET` is.

use super::funnel;
use crate::metric::Metric;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What the daemon exposes to the server; implemented over the aggregator's state.
pub trait Api: Send + Sync + 'static {
    fn stats_json(&self) -> String;
    fn metric_json(&self, name: &str) -> Option<String>;
    /// Removes the series of `name`; the number removed.
    fn expire(&self, name: &str) -> usize;
    /// The number of metrics accepted.
    fn ingest(&self, metrics: Vec<Metric>) -> usize;
}

/// Request line and headers together.
const HEAD_LIMIT: usize = 16 * 1024;
const BODY_LIMIT: usize = 8 * 1024 * 1024;
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
    api: Arc<dyn Api>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    thread::Builder::new()
        .name("statsd-http".into())
        .spawn(move || accept_loop(&listener, &api, &stop))
}

fn accept_loop(listener: &TcpListener, api: &Arc<dyn Api>, stop: &AtomicBool) {
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

fn admit(stream: TcpStream, peer: SocketAddr, api: &Arc<dyn Api>, active: &Arc<AtomicUsize>) {
    let slot = Slot(Arc::clone(active));
    if active.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
        crate::log!(Warn, "http_busy", peer = peer, limit = MAX_CONNECTIONS);
        refuse_busy(stream);
        return;
    }
    let api = Arc::clone(api);
    let spawned = thread::Builder::new()
        .name("statsd-http-conn".into())
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

struct Request {
    method: String,
    /// The target without its query.
    path: String,
    body: Vec<u8>,
}

/// One response; always `Connection: close`.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    allow: Option<&'static str>,
}

impl Reply {
    fn json(status: u16, body: String) -> Reply {
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

fn error(status: u16, why: &str) -> Reply {
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

fn serve(stream: TcpStream, peer: SocketAddr, api: &dyn Api) {
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
            let reply = route(&req, api);
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

fn route(req: &Request, api: &dyn Api) -> Reply {
    let path = req.path.as_str();
    if path == "/ping" {
        return only_get(req).unwrap_or_else(|| Reply {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: "pong\n".into(),
            allow: None,
        });
    }
    if path == "/stats" {
        return only_get(req).unwrap_or_else(|| Reply::json(200, api.stats_json()));
    }
    if path == "/metrics" {
        return only_post(req).unwrap_or_else(|| ingest(&req.body, api));
    }
    if let Some(raw) = path.strip_prefix("/metric/") {
        return only_get(req).unwrap_or_else(|| with_name(raw, |n| metric(n, api)));
    }
    if let Some(raw) = path.strip_prefix("/expire/") {
        return only_post(req).unwrap_or_else(|| with_name(raw, |n| expire(n, api)));
    }
    error(404, "no such path")
}

/// The 405 for a method other than GET or HEAD.
fn only_get(req: &Request) -> Option<Reply> {
    (req.method != "GET" && req.method != "HEAD").then(|| Reply {
        allow: Some("GET, HEAD"),
        ..error(405, "method not allowed")
    })
}

fn only_post(req: &Request) -> Option<Reply> {
    (req.method != "POST").then(|| Reply {
        allow: Some("POST"),
        ..error(405, "method not allowed")
    })
}

fn with_name(raw: &str, then: impl FnOnce(&str) -> Reply) -> Reply {
    match percent_decode(raw) {
        Some(name) if !name.is_empty() => then(&name),
        Some(_) => error(400, "empty series name"),
        None => error(400, "series name is not valid percent-encoded UTF-8"),
    }
}

fn metric(name: &str, api: &dyn Api) -> Reply {
    match api.metric_json(name) {
        Some(json) => Reply::json(200, json),
        None => error(404, "no such series"),
    }
}

fn expire(name: &str, api: &dyn Api) -> Reply {
    let n = api.expire(name);
    let body = serde_json::json!({ "expired": n }).to_string();
    Reply::json(if n == 0 { 404 } else { 200 }, body)
}

fn ingest(body: &[u8], api: &dyn Api) -> Reply {
    let parsed = match funnel::parse(body, crate::time::now_ns()) {
        Ok(p) => p,
        Err(why) => return error(400, &why),
    };
    let refused: Vec<_> = parsed
        .refused
        .iter()
        .map(|(i, why)| serde_json::json!({ "index": i, "reason": why }))
        .collect();
    let accepted = api.ingest(parsed.metrics);
    let body = serde_json::json!({ "accepted": accepted, "refused": refused });
    Reply::json(200, body.to_string())
}

/// `%XX` escapes to bytes; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records every call; knows one series, `a/b c`, which `expire` removes twice over.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<String>>,
        ingested: Mutex<Vec<Metric>>,
    }

    impl Fake {
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        fn note(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    impl Api for Fake {
        fn stats_json(&self) -> String {
            self.note("stats".into());
            r#"{"series":3}"#.into()
        }

        fn metric_json(&self, name: &str) -> Option<String> {
            self.note(format!("metric {name}"));
            (name == "a/b c").then(|| r#"{"name":"a/b c"}"#.into())
        }

        fn expire(&self, name: &str) -> usize {
            self.note(format!("expire {name}"));
            if name == "a/b c" {
                2
            } else {
                0
            }
        }

        fn ingest(&self, metrics: Vec<Metric>) -> usize {
            self.note(format!("ingest {}", metrics.len()));
            let n = metrics.len();
            self.ingested.lock().unwrap().extend(metrics);
            n
        }
    }

    struct Server {
        addr: SocketAddr,
        api: Arc<Fake>,
        stop: Arc<AtomicBool>,
        handle: Option<JoinHandle<()>>,
    }

    impl Server {
        fn start() -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let api = Arc::new(Fake::default());
            let stop = Arc::new(AtomicBool::new(false));
            let handle = spawn(listener, api.clone(), stop.clone()).unwrap();
            Server {
                addr,
                api,
                stop,
                handle: Some(handle),
            }
        }

        fn connect(&self) -> TcpStream {
            let s = TcpStream::connect(self.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        }

        fn send(&self, raw: &[u8]) -> Response {
            let mut s = self.connect();
            s.write_all(raw).unwrap();
            read_response(&mut s)
        }

        fn get(&self, path: &str) -> Response {
            self.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        }

        fn post(&self, path: &str, body: &str) -> Response {
            let req = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            );
            self.send(req.as_bytes())
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(h) = self.handle.take() {
                let _ = h.join();
            }
        }
    }

    #[derive(Debug)]
    struct Response {
        status: u16,
        head: String,
        body: String,
    }

    impl Response {
        fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().skip(1).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim())
            })
        }

        fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body).unwrap()
        }
    }

    /// Reads to EOF, which also checks that the server closes the connection.
    fn read_response(s: &mut TcpStream) -> Response {
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let r = Response {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        };
        assert_eq!(r.header("connection"), Some("close"));
        assert!(r.header("content-type").is_some(), "{r:?}");
        r
    }

    fn assert_length_matches(r: &Response) {
        let n: usize = r.header("content-length").unwrap().parse().unwrap();
        assert_eq!(n, r.body.len(), "{r:?}");
    }

    #[test]
    fn ping_answers_pong() {
        let srv = Server::start();
        let r = srv.get("/ping");
        assert_eq!((r.status, r.body.as_str()), (200, "pong\n"));
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        assert_length_matches(&r);
        let r = srv.get("/ping?verbose=1");
        assert_eq!(r.status, 200, "queries are ignored");
    }

    #[test]
    fn head_gets_headers_only() {
        let srv = Server::start();
        let r = srv.send(b"HEAD /ping HTTP/1.1\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("5"));
        assert_eq!(r.body, "");
    }

    #[test]
    fn stats_come_from_the_api() {
        let srv = Server::start();
        let r = srv.get("/stats");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json()["series"], 3);
        assert_length_matches(&r);
        assert_eq!(srv.api.calls(), ["stats"]);
    }

    #[test]
    fn metric_known_and_unknown() {
        let srv = Server::start();
        let r = srv.get("/metric/a%2Fb%20c");
        assert_eq!((r.status, r.json()["name"].as_str()), (200, Some("a/b c")));
        let r = srv.get("/metric/nope");
        assert_eq!(r.status, 404);
        assert_eq!(r.json()["error"], "no such series");
        assert_eq!(srv.api.calls(), ["metric a/b c", "metric nope"]);
    }

    #[test]
    fn names_are_percent_decoded() {
        let srv = Server::start();
        assert_eq!(srv.get("/metric/a/b%20c").status, 200, "a raw / stays");
        assert_eq!(srv.get("/metric/%E2%9C%93+x").status, 404);
        assert_eq!(srv.api.calls()[1], "metric \u{2713}+x", "+ is not a space");
        for bad in ["/metric/%zz", "/metric/%2", "/metric/%ff", "/metric/"] {
            let r = srv.get(bad);
            assert_eq!(r.status, 400, "{bad}");
            assert!(r.json()["error"].is_string());
        }
        assert_eq!(srv.api.calls().len(), 2, "bad names never reach the api");
    }

    #[test]
    fn expire_counts_and_404s_when_nothing_went() {
        let srv = Server::start();
        let r = srv.post("/expire/a%2Fb%20c", "");
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["expired"], 2);
        let r = srv.post("/expire/other", "");
        assert_eq!(r.status, 404);
        assert_eq!(r.json()["expired"], 0);
        assert_eq!(srv.api.calls(), ["expire a/b c", "expire other"]);
    }

    #[test]
    fn metrics_are_ingested_and_refusals_reported() {
        let srv = Server::start();
        let body = r#"{"cluster":"web","metrics":[
            {"name":"req","kind":"counter","value":"3"},
            {"name":"mood","kind":"gauge-string","value":"happy"},
            {"name":"lat","kind":"timer","value":"20 milliseconds"}]}"#;
        let r = srv.post("/metrics", body);
        assert_eq!(r.status, 200, "{r:?}");
        let j = r.json();
        assert_eq!(j["accepted"], 2);
        assert_eq!(j["refused"][0]["index"], 1);
        assert!(j["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("happy"));
        let got = srv.api.ingested.lock().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].values, [20.0]);
        assert_eq!(got[1].tags.get("cluster"), Some("web"));
    }

    #[test]
    fn bad_json_is_400_and_not_ingested() {
        let srv = Server::start();
        for body in ["{not json", r#"{"metrics":{}}"#, ""] {
            let r = srv.post("/metrics", body);
            assert_eq!(r.status, 400, "{body}");
            assert!(r.json()["error"].is_string());
        }
        assert!(srv.api.calls().is_empty());
    }

    #[test]
    fn unknown_paths_404() {
        let srv = Server::start();
        for path in ["/", "/pingx", "/metric", "/metrics/x", "/nope"] {
            assert_eq!(srv.get(path).status, 404, "{path}");
        }
    }

    #[test]
    fn wrong_methods_405_with_allow() {
        let srv = Server::start();
        let r = srv.post("/ping", "");
        assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
        let r = srv.get("/metrics");
        assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
        assert_eq!(srv.get("/expire/a").status, 405);
        assert_eq!(srv.post("/metric/a", "").status, 405);
        assert_eq!(srv.send(b"DELETE /stats HTTP/1.1\r\n\r\n").status, 405);
        assert!(srv.api.calls().is_empty());
    }

    #[test]
    fn malformed_requests_400() {
        let srv = Server::start();
        for raw in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /ping\r\n\r\n",
            b"GET ping HTTP/1.1\r\n\r\n",
            b"get /ping HTTP/1.1\r\n\r\n",
            b"GET  /ping HTTP/1.1\r\n\r\n",
            b"GET /ping FTP/1.0\r\n\r\n",
            b"GET /ping HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET /ping HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET /ping HTTP/1.1\r\n folded: x\r\n\r\n",
            b"POST /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
            b"GET /p\xffing HTTP/1.1\r\n\r\n",
            b"GET /ping HTTP/1.1\r\nHost: x",
        ] {
            let mut s = srv.connect();
            s.write_all(raw).unwrap();
            // A request cut short only shows as such once the client stops sending.
            s.shutdown(Shutdown::Write).unwrap();
            let r = read_response(&mut s);
            assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(raw));
            assert_length_matches(&r);
        }
        assert_eq!(srv.send(b"GET /ping HTTP/2.0\r\n\r\n").status, 505);
        assert!(srv.api.calls().is_empty());
    }

    #[test]
    fn bare_newlines_are_accepted() {
        let srv = Server::start();
        assert_eq!(srv.send(b"GET /ping HTTP/1.0\nHost: x\n\n").status, 200);
    }

    #[test]
    fn oversize_headers_431() {
        let srv = Server::start();
        let mut raw = b"GET /ping HTTP/1.1\r\n".to_vec();
        while raw.len() <= HEAD_LIMIT + 100 {
            raw.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(srv.send(&raw).status, 431);
    }

    #[test]
    fn oversize_body_413_without_reading_it() {
        let srv = Server::start();
        let raw = format!(
            "POST /metrics HTTP/1.1\r\nContent-Length: {}\r\n\r\n{{",
            BODY_LIMIT + 1
        );
        assert_eq!(srv.send(raw.as_bytes()).status, 413);
        let huge = b"POST /metrics HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(srv.send(huge).status, 413);
        assert!(srv.api.calls().is_empty());
    }

    #[test]
    fn chunked_bodies_501() {
        let srv = Server::start();
        let raw = b"POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(srv.send(raw).status, 501);
    }

    #[test]
    fn bodies_split_across_writes_are_reassembled() {
        let srv = Server::start();
        let body = br#"{"metrics":[{"name":"a","kind":"counter","value":1},{"name":"b","kind":"counter","value":2}]}"#;
        let head = format!(
            "POST /metrics HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut s = srv.connect();
        s.set_nodelay(true).unwrap();
        let (h1, h2) = head.as_bytes().split_at(10);
        // The split inside "\r\n\r\n" checks the terminator search across reads.
        let (h2a, h2b) = h2.split_at(h2.len() - 2);
        for piece in [h1, h2a, h2b, &body[..5], &body[5..40], &body[40..]] {
            s.write_all(piece).unwrap();
            thread::sleep(Duration::from_millis(30));
        }
        let r = read_response(&mut s);
        assert_eq!((r.status, r.json()["accepted"].as_u64()), (200, Some(2)));
    }

    #[test]
    fn expect_continue_gets_an_interim_response() {
        let srv = Server::start();
        let body = br#"{"metrics":[]}"#;
        let mut s = srv.connect();
        let head = format!(
            "POST /metrics HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
        let mut got = vec![0u8; interim.len()];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got, interim);
        s.write_all(body).unwrap();
        assert_eq!(read_response(&mut s).status, 200);
    }

    #[test]
    fn keep_alive_clients_are_closed_after_one_response() {
        let srv = Server::start();
        let mut s = srv.connect();
        let two =
            b"GET /ping HTTP/1.1\r\nConnection: keep-alive\r\n\r\nGET /stats HTTP/1.1\r\n\r\n";
        s.write_all(two).unwrap();
        let r = read_response(&mut s);
        assert_eq!((r.status, r.body.as_str()), (200, "pong\n"));
        assert!(
            srv.api.calls().is_empty(),
            "the second request is not served"
        );
    }

    #[test]
    fn silent_and_garbage_clients_do_not_hurt() {
        let srv = Server::start();
        drop(srv.connect());
        let mut seed = 0x2545_f491_u64;
        for _ in 0..30 {
            let raw: Vec<u8> = (0..(seed % 300))
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b"GET POST /metric/%: \r\n\xffHTTP/1.1 0a"[(seed % 32) as usize]
                })
                .collect();
            let mut s = srv.connect();
            let _ = s.write_all(&raw);
            let _ = s.shutdown(Shutdown::Write);
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
        assert_eq!(srv.get("/ping").status, 200);
    }

    #[test]
    fn stop_ends_the_thread() {
        let mut srv = Server::start();
        assert_eq!(srv.get("/ping").status, 200);
        srv.stop.store(true, Ordering::Relaxed);
        let handle = srv.handle.take().unwrap();
        let t0 = Instant::now();
        while !handle.is_finished() {
            assert!(t0.elapsed() < Duration::from_millis(500), "still serving");
            thread::sleep(Duration::from_millis(5));
        }
        handle.join().unwrap();
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%20c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("%e2%9c%93").as_deref(), Some("\u{2713}"));
        assert_eq!(percent_decode("plain+x").as_deref(), Some("plain+x"));
        for bad in ["%", "%4", "%g0", "%ff", "%+1"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }
}
