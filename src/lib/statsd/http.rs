//! The operator's HTTP API of `tlm-statsd` (`--http ADDR`), served by `crate::httpd`.
//!
//! | route                | answer                                                      |
//! |----------------------|-------------------------------------------------------------|
//! | `GET /ping`          | `pong`                                                      |
//! | `GET /stats`         | `Api::stats_json`                                           |
//! | `GET /metric/NAME`   | `Api::metric_json`, 404 when there is no such series        |
//! | `POST /expire/NAME`  | `{"expired":N}` from `Api::expire`, 404 when N is 0          |
//! | `POST /metrics`      | a Funnel body (`statsd::funnel`) handed to `Api::ingest`     |
//!
//! `NAME` is percent-decoded.

use super::funnel;
use crate::httpd::{error, only_get, only_post, with_name, Handler, Reply, Request};
use crate::metric::Metric;
use std::io;
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

/// What the daemon exposes to the server; implemented over the aggregator's state.
pub trait Api: Send + Sync + 'static {
    fn stats_json(&self) -> String;
    fn metric_json(&self, name: &str) -> Option<String>;
    /// Removes the series of `name`; the number removed.
    fn expire(&self, name: &str) -> usize;
    /// The number of metrics accepted.
    fn ingest(&self, metrics: Vec<Metric>) -> usize;
}

/// Serves the API until `stop` is set.
pub fn spawn(
    listener: TcpListener,
    api: Arc<dyn Api>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    crate::httpd::spawn(listener, Arc::new(Routes(api)), stop)
}

struct Routes(Arc<dyn Api>);

impl Handler for Routes {
    fn handle(&self, req: &Request) -> Reply {
        route(req, &*self.0)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::httpd::{percent_decode, BODY_LIMIT, HEAD_LIMIT};
    use std::io::{Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpStream};
    use std::sync::atomic::Ordering;
    use std::sync::Mutex;
    use std::thread;
    use std::time::{Duration, Instant};

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
