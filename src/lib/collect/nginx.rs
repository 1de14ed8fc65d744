//! The `nginx` source: the connection and request counts of nginx's `stub_status` page
//! (`ngx_http_stub_status_module`), the set the Funnel agent collects.
//!
//! `parse` takes the page's text (so tests feed fixture strings) and returns a sample or the
//! reason the text is malformed; `emit` appends the sample's metrics; `NginxCollector` fetches
//! the page over HTTP and tags every metric with the server it asked.
//!
//! The three totals (`accepted`, `handled`, `requests`) are cumulative counters without a
//! `start_ts`: nginx does not say when it started counting. They restart from zero when the
//! master process restarts (a `reload` keeps them, as the counters live in shared memory
//! unless it is re-created); a total that goes down is such a restart, which `tlm-agg`
//! detects as a counter reset, so no start time is needed to compute rates.
//!
//! The fetch helpers here (`http_agent`, `fetch`, `server_of`) are shared with the
//! `prom_text` source, which scrapes a URL the same way.

use std::time::Duration;

use super::http::{fetch, http_agent, server_of};
use crate::metric::{Metric, Temporality, Value};
use crate::Error;

/// The page is four short lines; anything much bigger is not a `stub_status` page.
const MAX_PAGE_BYTES: u64 = 64 * 1024;

/// One reading of the `stub_status` page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StubStatus {
    /// Open client connections, `Waiting` ones included.
    pub active: u64,
    /// Client connections accepted since start.
    pub accepted: u64,
    /// Client connections handled since start: fewer than `accepted` only when a resource
    /// limit (`worker_connections`) was reached.
    pub handled: u64,
    /// Client requests since start.
    pub requests: u64,
    /// Connections whose request header nginx is reading.
    pub reading: u64,
    /// Connections nginx is writing a response to.
    pub writing: u64,
    /// Idle keep-alive connections.
    pub waiting: u64,
}

/// Parses the page:
///
/// ```text
/// Active connections: 291
/// server accepts handled requests
///  16630948 16630948 31070465
/// Reading: 6 Writing: 179 Waiting: 106
/// ```
///
/// Spaces around and between fields, blank lines and CRLF line ends are tolerated (proxies
/// and nginx versions differ in them); a missing line or field is an error naming it.
pub fn parse(text: &str) -> Result<StubStatus, String> {
    let mut active = None;
    let mut totals = None;
    let mut states = None;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("Active connections:") {
            active = Some(parse_u64("Active connections", rest.trim())?);
        } else if is_totals_header(line) {
            let numbers = lines
                .next()
                .ok_or("no line of totals after `server accepts handled requests`")?;
            totals = Some(parse_totals(numbers)?);
        } else if line.starts_with("Reading:") {
            states = Some(parse_states(line)?);
        }
    }
    let active = active.ok_or("no `Active connections:` line")?;
    let [accepted, handled, requests] =
        totals.ok_or("no `server accepts handled requests` line")?;
    let [reading, writing, waiting] = states.ok_or("no `Reading: Writing: Waiting:` line")?;
    Ok(StubStatus {
        active,
        accepted,
        handled,
        requests,
        reading,
        writing,
        waiting,
    })
}

fn is_totals_header(line: &str) -> bool {
    line.split_ascii_whitespace()
        .eq(["server", "accepts", "handled", "requests"])
}

/// The line under the header: accepts, handled, requests.
fn parse_totals(line: &str) -> Result<[u64; 3], String> {
    let mut fields = line.split_ascii_whitespace();
    let mut next = |what: &str| {
        let field = fields.next().ok_or_else(|| format!("no `{what}` total"))?;
        parse_u64(what, field)
    };
    Ok([next("accepts")?, next("handled")?, next("requests")?])
}

/// `Reading: R Writing: W Waiting: I`, in that order as nginx writes it.
fn parse_states(line: &str) -> Result<[u64; 3], String> {
    let mut fields = line.split_ascii_whitespace();
    let mut next = |key: &str| {
        match fields.next() {
            Some(k) if k.strip_suffix(':') == Some(key) => {}
            _ => return Err(format!("no `{key}:` field")),
        }
        let field = fields
            .next()
            .ok_or_else(|| format!("`{key}:` has no value"))?;
        parse_u64(key, field)
    };
    Ok([next("Reading")?, next("Writing")?, next("Waiting")?])
}

fn parse_u64(what: &str, field: &str) -> Result<u64, String> {
    field
        .parse()
        .map_err(|_| format!("`{what}`: `{field}` is not a whole number"))
}

/// Appends the gauges of the moment and the totals since nginx started, all stamped `ts`.
pub fn emit(s: &StubStatus, ts: i64, out: &mut Vec<Metric>) {
    let gauge = |name: &str, v: u64| Metric::gauge(name, Value::U64(v), ts);
    out.push(gauge("nginx.connections.active", s.active).with_unit("{connection}"));
    out.push(gauge("nginx.connections.reading", s.reading).with_unit("{connection}"));
    out.push(gauge("nginx.connections.writing", s.writing).with_unit("{connection}"));
    out.push(gauge("nginx.connections.waiting", s.waiting).with_unit("{connection}"));
    // No start_ts: nginx does not tell when it started counting (see the module docs).
    let total =
        |name: &str, v: u64| Metric::counter(name, Temporality::Cumulative, Value::U64(v), ts);
    out.push(total("nginx.connections.accepted", s.accepted).with_unit("{connection}"));
    out.push(total("nginx.connections.handled", s.handled).with_unit("{connection}"));
    out.push(total("nginx.requests", s.requests).with_unit("{request}"));
}

/// Collects one nginx's `stub_status`, one call to `collect` per interval.
#[derive(Debug)]
pub struct NginxCollector {
    url: String,
    /// `host:port` of the URL, the `server` tag.
    server: String,
    agent: ureq::Agent,
}

impl NginxCollector {
    /// `url` is the `stub_status` location (`http://127.0.0.1/nginx_status`); each request
    /// gives up after `timeout`, so a hung nginx cannot stall the collection loop.
    pub fn new(url: &str, timeout: Duration) -> Result<NginxCollector, Error> {
        Ok(NginxCollector {
            server: server_of(url)?,
            url: url.to_owned(),
            agent: http_agent(timeout),
        })
    }

    /// The `server` tag: `host:port` of the URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Appends one collection's metrics, all stamped `ts = now_ns` and tagged
    /// `server=<host:port>`. On error (`Error::unavailable`: unreachable, a non-2xx status, a
    /// page that is not `stub_status`) `out` is unchanged.
    pub fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<(), Error> {
        let text = fetch(&self.agent, &self.url, "text/plain", MAX_PAGE_BYTES)?;
        let status =
            parse(&text).map_err(|why| Error::unavailable(format!("{}: {why}", self.url)))?;
        let start = out.len();
        emit(&status, now_ns, out);
        for m in &mut out[start..] {
            m.tags.insert("server", &self.server);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Exit;
    use crate::metric::Kind;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    const PAGE: &str = "Active connections: 291 \n\
server accepts handled requests\n \
16630948 16630948 31070465 \n\
Reading: 6 Writing: 179 Waiting: 106 \n";

    const STATUS: StubStatus = StubStatus {
        active: 291,
        accepted: 16630948,
        handled: 16630948,
        requests: 31070465,
        reading: 6,
        writing: 179,
        waiting: 106,
    };

    #[test]
    fn parses_the_page() {
        assert_eq!(parse(PAGE), Ok(STATUS));
    }

    #[test]
    fn tolerates_crlf_extra_spaces_and_blank_lines() {
        let text = "\r\n  Active connections:   291\r\n\r\nserver  accepts handled   requests\r\n\
                    16630948\t16630948   31070465\r\nReading:  6   Writing: 179 Waiting:   106\r\n";
        assert_eq!(parse(text), Ok(STATUS));
        let no_final_newline = PAGE.trim_end();
        assert_eq!(parse(no_final_newline), Ok(STATUS));
    }

    #[test]
    fn malformed_pages_give_reasons() {
        let err = |text: &str| parse(text).unwrap_err();
        assert!(err("").contains("Active connections"));
        assert!(err("<html>404</html>").contains("Active connections"));
        let without = |line: usize| {
            let lines: Vec<_> = PAGE.lines().collect();
            let mut kept = lines.clone();
            kept.remove(line);
            kept.join("\n")
        };
        assert!(err(&without(0)).contains("`Active connections:`"));
        assert!(err(&without(1)).contains("`server accepts handled requests`"));
        assert!(err(&without(3)).contains("`Reading: Writing: Waiting:`"));
        let cut = "Active connections: 1\nserver accepts handled requests\n";
        assert!(err(cut).contains("no line of totals"));
        let short = PAGE.replace(" 31070465", "");
        assert!(err(&short).contains("`requests`"));
        assert!(err(&PAGE.replace("291", "-1")).contains("`-1`"));
        assert!(err(&PAGE.replace("179", "x")).contains("`Writing`: `x`"));
        assert!(err(&PAGE.replace("Waiting: 106", "Waiting:")).contains("`Waiting:` has no value"));
        assert!(err(&PAGE.replace("Writing:", "Sending:")).contains("`Writing:`"));
    }

    #[test]
    fn emits_gauges_and_cumulative_totals() {
        let mut out = Vec::new();
        let huge = StubStatus {
            requests: u64::MAX,
            ..STATUS
        };
        emit(&huge, 9, &mut out);
        let got: Vec<_> = out
            .iter()
            .map(|m| (m.name.as_str(), m.kind, m.temporality, m.value))
            .collect();
        let cumulative = Some(Temporality::Cumulative);
        assert_eq!(
            got,
            [
                (
                    "nginx.connections.active",
                    Kind::Gauge,
                    None,
                    Some(Value::U64(291))
                ),
                (
                    "nginx.connections.reading",
                    Kind::Gauge,
                    None,
                    Some(Value::U64(6))
                ),
                (
                    "nginx.connections.writing",
                    Kind::Gauge,
                    None,
                    Some(Value::U64(179))
                ),
                (
                    "nginx.connections.waiting",
                    Kind::Gauge,
                    None,
                    Some(Value::U64(106))
                ),
                (
                    "nginx.connections.accepted",
                    Kind::Counter,
                    cumulative,
                    Some(Value::U64(16630948))
                ),
                (
                    "nginx.connections.handled",
                    Kind::Counter,
                    cumulative,
                    Some(Value::U64(16630948))
                ),
                (
                    "nginx.requests",
                    Kind::Counter,
                    cumulative,
                    Some(Value::U64(u64::MAX))
                ),
            ]
        );
        assert!(out
            .iter()
            .all(|m| m.ts == 9 && m.start_ts.is_none() && m.validate().is_ok()));
    }

    #[test]
    fn server_is_host_and_port() {
        let s = |url: &str| server_of(url).map_err(|e| e.msg);
        assert_eq!(
            s("http://127.0.0.1:8080/nginx_status").as_deref(),
            Ok("127.0.0.1:8080")
        );
        assert_eq!(s("http://web1/status").as_deref(), Ok("web1:80"));
        assert_eq!(s("https://web1/status").as_deref(), Ok("web1:443"));
        assert_eq!(s("http://[::1]:81/").as_deref(), Ok("[::1]:81"));
        assert!(s("ftp://web1/").unwrap_err().contains("http or https"));
        assert!(s("/nginx_status").is_err());
        assert!(s("not a url").is_err());
        assert_eq!(server_of("").map_err(|e| e.exit).err(), Some(Exit::Usage));
    }

    /// Serves `answer` to one request on a local port; returns the URL.
    fn serve_once(answer: String) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/nginx_status", listener.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        (url, h)
    }

    fn http_answer(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn collects_over_http_with_server_tag() {
        let (url, h) = serve_once(http_answer("200 OK", PAGE));
        let mut c = NginxCollector::new(&url, Duration::from_secs(5)).unwrap();
        let server = c.server().to_owned();
        assert!(server.starts_with("127.0.0.1:"));
        let mut out = vec![Metric::gauge("before", Value::U64(1), 0)];
        c.collect(42, &mut out).unwrap();
        h.join().unwrap();
        assert_eq!(out.len(), 8);
        assert!(out[0].tags.is_empty());
        assert!(out[1..]
            .iter()
            .all(|m| m.ts == 42 && m.tags.get("server") == Some(server.as_str())));
    }

    #[test]
    fn http_errors_are_unavailable_and_say_why() {
        let (url, h) = serve_once(http_answer("404 Not Found", "nope"));
        let mut c = NginxCollector::new(&url, Duration::from_secs(5)).unwrap();
        let mut out = Vec::new();
        let e = c.collect(1, &mut out).unwrap_err();
        h.join().unwrap();
        assert_eq!(e.exit, Exit::Unavailable);
        assert!(e.msg.contains("404"), "{}", e.msg);
        assert!(out.is_empty());

        let (url, h) = serve_once(http_answer("200 OK", "<html>welcome</html>"));
        let mut c = NginxCollector::new(&url, Duration::from_secs(5)).unwrap();
        let e = c.collect(1, &mut out).unwrap_err();
        h.join().unwrap();
        assert!(e.msg.contains("Active connections"), "{}", e.msg);
        assert!(out.is_empty());
    }

    #[test]
    fn refused_connection_is_unavailable() {
        // Bind, learn the port, close: nothing listens there now.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/nginx_status");
        let mut c = NginxCollector::new(&url, Duration::from_secs(5)).unwrap();
        let e = c.collect(1, &mut Vec::new()).unwrap_err();
        assert_eq!(e.exit, Exit::Unavailable);
        assert!(e.msg.contains("refused"), "{}", e.msg);
    }

    #[test]
    fn a_hung_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let hold = std::thread::spawn(move || {
            let conn = listener.accept();
            std::thread::sleep(Duration::from_millis(1500));
            drop(conn);
        });
        let mut c = NginxCollector::new(&url, Duration::from_millis(300)).unwrap();
        let started = std::time::Instant::now();
        let e = c.collect(1, &mut Vec::new()).unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(1400));
        assert!(e.msg.contains("timed out"), "{}", e.msg);
        hold.join().unwrap();
    }
}
