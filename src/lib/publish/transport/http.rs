//! HTTP(S) requests with a batch as the body (InfluxDB, remote_write, OpenTSDB, any JSON
//! endpoint), through one kept-alive `ureq` agent per lane.
//!
//! A batch counts as delivered only on a 2xx answer. 408, 425, 429 and 5xx answers and
//! connection errors are retried; any other 4xx means the backend refused the data itself
//! (a parse error, an out-of-order sample), so the batch is rejected with the backend's words.

use super::{SendError, SendResult, Transport};
use crate::publish::batch::Batch;
use std::time::Duration;

/// One request shape: where, how, with which headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

pub struct HttpTransport {
    agent: ureq::Agent,
    request: Request,
    /// A request that must succeed once before the first batch (InfluxDB's
    /// `CREATE DATABASE`), sent again after a 404.
    setup: Option<(Request, Vec<u8>)>,
    setup_done: bool,
}

impl HttpTransport {
    pub fn new(
        request: Request,
        setup: Option<(Request, Vec<u8>)>,
        timeout: Duration,
    ) -> HttpTransport {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("tlm-publish/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        HttpTransport {
            agent,
            request,
            setup,
            setup_done: false,
        }
    }

    fn execute(&self, req: &Request, body: &[u8]) -> SendResult {
        let builder = match req.method {
            Method::Post => self.agent.post(&req.url),
            Method::Put => self.agent.put(&req.url),
        };
        let builder = req
            .headers
            .iter()
            .fold(builder, |b, (k, v)| b.header(k.as_str(), v.as_str()));
        match builder.send(body) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    return Ok(());
                }
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(4096)
                    .read_to_string()
                    .unwrap_or_default();
                Err(classify(status, &text))
            }
            Err(e) => Err(SendError::Retry(format!(
                "{} {}: {e}",
                req.method.as_str(),
                req.url
            ))),
        }
    }
}

/// Whether an error status is worth retrying, with the backend's message trimmed for a log line.
pub fn classify(status: u16, body: &str) -> SendError {
    let body: String = body.trim().chars().take(300).collect();
    let why = format!("HTTP {status}: {body}");
    match status {
        408 | 425 | 429 | 500.. => SendError::Retry(why),
        _ => SendError::Reject(why),
    }
}

impl Transport for HttpTransport {
    fn send(&mut self, batch: &Batch) -> SendResult {
        if !self.setup_done {
            if let Some((req, body)) = &self.setup {
                self.execute(req, body)?;
            }
            self.setup_done = true;
        }
        match self.execute(&self.request, &batch.payload) {
            // The database went away (dropped, or a backend reset): create it again.
            Err(SendError::Reject(why)) if why.starts_with("HTTP 404") && self.setup.is_some() => {
                self.setup_done = false;
                Err(SendError::Retry(why))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(classify(500, ""), SendError::Retry(_)));
        assert!(matches!(classify(503, ""), SendError::Retry(_)));
        assert!(matches!(classify(429, ""), SendError::Retry(_)));
        assert!(matches!(classify(408, ""), SendError::Retry(_)));
        let e = classify(400, "  {\"error\":\"unable to parse 'x'\"}\n");
        assert_eq!(
            e,
            SendError::Reject("HTTP 400: {\"error\":\"unable to parse 'x'\"}".into())
        );
        assert!(matches!(
            classify(404, "database not found"),
            SendError::Reject(_)
        ));
    }

    #[test]
    fn a_server_that_never_answers_times_out_as_a_retry() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/write", listener.local_addr().unwrap());
        let hold = std::thread::spawn(move || {
            let conn = listener.accept();
            std::thread::sleep(Duration::from_millis(1500));
            drop(conn);
        });
        let req = Request {
            method: Method::Post,
            url,
            headers: vec![],
        };
        let mut t = HttpTransport::new(req, None, Duration::from_millis(300));
        let started = std::time::Instant::now();
        assert!(matches!(
            t.send(&Batch::new(b"x".to_vec(), 1)),
            Err(SendError::Retry(_))
        ));
        assert!(started.elapsed() < Duration::from_millis(1400));
        hold.join().unwrap();
    }
}
