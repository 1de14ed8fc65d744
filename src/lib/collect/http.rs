//! What the sources that read a page over HTTP share (`nginx`, `prometheus`, `http`): one
//! agent per source, GET with a size limit, errors an operator can act on, and the
//! `host:port` that tags their metrics.

use crate::error::Error;
use std::time::Duration;

/// An agent that answers non-2xx statuses as responses (so the error can name the status)
/// and gives up on a whole request after `timeout`.
pub(crate) fn http_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("tlm-collect/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// GETs `url` and returns the body as text, reading at most `limit` bytes. Every failure is
/// `Error::unavailable` saying what went wrong: the status of a non-2xx answer, a refused
/// connection, a timeout.
pub(crate) fn fetch(
    agent: &ureq::Agent,
    url: &str,
    accept: &str,
    limit: u64,
) -> Result<String, Error> {
    let mut resp = agent
        .get(url)
        .header("Accept", accept)
        .call()
        .map_err(|e| Error::unavailable(format!("GET {url}: {}", describe(&e))))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Error::unavailable(format!("GET {url}: HTTP {status}")));
    }
    resp.body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
        .map_err(|e| Error::unavailable(format!("GET {url}: reading the body: {}", describe(&e))))
}

/// A transport error in words an operator acts on; ureq's own text otherwise.
fn describe(e: &ureq::Error) -> String {
    use std::io::ErrorKind;
    match e {
        ureq::Error::Io(io) if io.kind() == ErrorKind::ConnectionRefused => {
            "connection refused (nothing listening there?)".to_owned()
        }
        ureq::Error::Timeout(_) => format!("timed out ({e})"),
        _ => e.to_string(),
    }
}

/// `host:port` of an http(s) URL, the port defaulting to the scheme's, so a tag names the
/// same server however the URL spells it. A URL that is not http(s) is a usage error.
pub(crate) fn server_of(url: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::usage(format!("URL `{url}`: {why}"));
    let uri: ureq::http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err(bad("the scheme must be http or https")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    let port = uri.port_u16().unwrap_or(default_port);
    Ok(format!("{host}:{port}"))
}
