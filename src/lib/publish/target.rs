//! Destination URLs: `graphite://host:2003`, `influx://host:8086/db?rp=week`, `file:PATH`, …
//!
//! Parsed by hand rather than with a URL crate: the grammar is small, and the errors name the
//! destination and the options it accepts, which is what a user at a shell prompt needs.

use crate::error::{Error, Result};
use std::fmt;

/// The wire protocol a destination speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Graphite plaintext over TCP.
    Graphite,
    /// Graphite pickle over TCP (carbon's port 2004).
    GraphitePickle,
    /// Graphite plaintext datagrams.
    GraphiteUdp,
    /// InfluxDB 1.x `/write`.
    Influx,
    /// InfluxDB 2.x `/api/v2/write` (org, bucket, token).
    Influx2,
    /// Prometheus remote_write 1.0 (protobuf + snappy).
    RemoteWrite,
    /// A Prometheus Pushgateway group (`/metrics/job/NAME`), the latest value per series.
    Pushgateway,
    /// OpenTSDB HTTP `/api/put`.
    OpenTsdb,
    /// OpenTSDB telnet `put` lines over TCP.
    OpenTsdbTelnet,
    /// statsd lines over UDP, optionally signed (Brubeck statsd-secure).
    Statsd,
    /// A JSON batch POSTed to any HTTP(S) endpoint.
    Http,
    /// Lines appended to a file, rotated by size or age.
    File,
}

impl Protocol {
    const SCHEMES: [(&'static str, Protocol); 14] = [
        ("graphite", Protocol::Graphite),
        ("graphite+tcp", Protocol::Graphite),
        ("graphite+pickle", Protocol::GraphitePickle),
        ("graphite+udp", Protocol::GraphiteUdp),
        ("influx", Protocol::Influx),
        ("influx2", Protocol::Influx2),
        ("prometheus", Protocol::RemoteWrite),
        ("pushgateway", Protocol::Pushgateway),
        ("opentsdb", Protocol::OpenTsdb),
        ("opentsdb+telnet", Protocol::OpenTsdbTelnet),
        ("statsd", Protocol::Statsd),
        ("http", Protocol::Http),
        ("https", Protocol::Http),
        ("file", Protocol::File),
    ];

    fn default_port(self, scheme: &str) -> u16 {
        match self {
            Protocol::Graphite | Protocol::GraphiteUdp => 2003,
            Protocol::GraphitePickle => 2004,
            Protocol::Influx | Protocol::Influx2 => 8086,
            Protocol::RemoteWrite => 9090,
            Protocol::Pushgateway => 9091,
            Protocol::OpenTsdb | Protocol::OpenTsdbTelnet => 4242,
            Protocol::Statsd => 8125,
            Protocol::Http if scheme == "https" => 443,
            Protocol::Http | Protocol::File => 80,
        }
    }

    /// Options a destination of this protocol takes in its query string, besides the ones
    /// every destination takes (`COMMON_OPTIONS`).
    fn options(self) -> &'static [&'static str] {
        match self {
            Protocol::Graphite | Protocol::GraphitePickle => &["tags"],
            Protocol::GraphiteUdp => &["tags", "mtu"],
            Protocol::Influx => &["rp", "user", "password-file", "create", "precision"],
            Protocol::Influx2 => &["org", "bucket", "token-file", "precision"],
            Protocol::RemoteWrite | Protocol::OpenTsdb => &["token-file"],
            Protocol::Pushgateway => &["token-file", "method"],
            Protocol::OpenTsdbTelnet => &[],
            Protocol::Statsd => &["hmac-key-file", "mtu", "timer", "tags"],
            Protocol::Http => &["format", "token-file", "method"],
            Protocol::File => &["format", "rotate-size", "rotate-every"],
        }
    }
}

/// Options every destination takes.
const COMMON_OPTIONS: [&str; 5] = ["batch", "linger", "concurrency", "timeout", "name"];

/// One destination as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The scheme as written (`https`, `graphite+udp`, …).
    pub scheme: String,
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    /// The path, from its leading `/` (empty when none); for `file:` the file path.
    pub path: String,
    pub options: Vec<(String, String)>,
    /// For `http(s)://`: query parameters that are not tlm options, kept for the request URL
    /// (`http://h/write?db=x&format=influx` sends `?db=x`).
    pub query: Vec<(String, String)>,
}

impl Target {
    /// Parses `text`, checking that every option is one this protocol takes.
    pub fn parse(text: &str) -> Result<Target> {
        let bad = |why: &str| Error::usage(format!("destination `{text}`: {why}"));
        let (scheme, rest) = split_scheme(text).ok_or_else(|| {
            bad("expected SCHEME://HOST[:PORT][/PATH][?OPTIONS] or file:PATH (schemes: graphite, graphite+pickle, graphite+udp, influx, influx2, prometheus, pushgateway, opentsdb, opentsdb+telnet, statsd, http, https, file)")
        })?;
        let protocol = Protocol::SCHEMES
            .iter()
            .find(|(s, _)| *s == scheme)
            .map(|&(_, p)| p)
            .ok_or_else(|| bad(&format!("unknown scheme `{scheme}`")))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (options, query): (Vec<_>, Vec<_>) = parse_options(query)
            .map_err(|e| bad(&e))?
            .into_iter()
            .partition(|(k, _)| {
                protocol != Protocol::Http
                    || COMMON_OPTIONS.contains(&k.as_str())
                    || protocol.options().contains(&k.as_str())
            });
        for (k, _) in &options {
            if !COMMON_OPTIONS.contains(&k.as_str()) && !protocol.options().contains(&k.as_str()) {
                let mut known: Vec<&str> = COMMON_OPTIONS.to_vec();
                known.extend_from_slice(protocol.options());
                return Err(bad(&format!(
                    "unknown option `{k}` (this destination takes: {})",
                    known.join(", ")
                )));
            }
        }
        if protocol == Protocol::File {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(bad("file: needs a path"));
            }
            return Ok(Target {
                scheme: scheme.into(),
                protocol,
                host: String::new(),
                port: 0,
                path: path.into(),
                options,
                query,
            });
        }
        let rest = rest
            .strip_prefix("//")
            .ok_or_else(|| bad("expected `//` after the scheme"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(authority).map_err(|e| bad(&e))?;
        Ok(Target {
            scheme: scheme.into(),
            protocol,
            host,
            port: port.unwrap_or_else(|| protocol.default_port(scheme)),
            path: path.into(),
            options,
            query,
        })
    }

    /// The value of option `key`, if given.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A short stable name for logs, metrics and the spool directory.
    pub fn label(&self) -> String {
        if let Some(name) = self.option("name") {
            return name.to_string();
        }
        match self.protocol {
            Protocol::File => format!("file:{}", self.path),
            _ => format!("{}://{}{}", self.scheme, self.authority(), self.path),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let i = text.find(':')?;
    let scheme = &text[..i];
    let valid = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'+');
    valid.then(|| (scheme, &text[i + 1..]))
}

fn split_host_port(authority: &str) -> std::result::Result<(String, Option<u16>), String> {
    if authority.contains('@') {
        return Err(
            "credentials in the URL would show in `ps`; use an option such as token-file or password-file"
                .into(),
        );
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("unclosed `[` in an IPv6 address")?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("expected `:PORT` after `]`")?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or(format!("bad port `{p}`"))
        })
        .transpose()?;
    Ok((host.to_string(), port))
}

fn parse_options(query: &str) -> std::result::Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or(format!("option `{pair}` needs a value (`{pair}=…`)"))?;
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    crate::httpd::percent_decode(s)
        .ok_or(format!("bad escape in `{s}`, or not UTF-8 once unescaped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_paths() {
        let t = Target::parse("graphite://127.0.0.1").unwrap();
        assert_eq!(
            (t.protocol, t.port, t.path.as_str()),
            (Protocol::Graphite, 2003, "")
        );
        let t = Target::parse("influx://db.local:18086/tlm?rp=week&create=false").unwrap();
        assert_eq!(t.protocol, Protocol::Influx);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("db.local", 18086, "/tlm")
        );
        assert_eq!(t.option("rp"), Some("week"));
        assert_eq!(t.option("create"), Some("false"));
        assert_eq!(t.label(), "influx://db.local:18086/tlm");
        let t = Target::parse("https://example.org/ingest?format=json").unwrap();
        assert_eq!((t.port, t.scheme.as_str()), (443, "https"));
    }

    #[test]
    fn ipv6_and_files() {
        let t = Target::parse("statsd://[::1]:8125").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8125));
        assert_eq!(t.authority(), "[::1]:8125");
        let t = Target::parse("file:/var/tmp/m.ndjson?rotate-size=10MiB").unwrap();
        assert_eq!(t.path, "/var/tmp/m.ndjson");
        assert_eq!(t.label(), "file:/var/tmp/m.ndjson");
        let t = Target::parse("file:///abs/x").unwrap();
        assert_eq!(t.path, "/abs/x");
        let t = Target::parse("file:rel.txt").unwrap();
        assert_eq!(t.path, "rel.txt");
    }

    #[test]
    fn options_are_checked_per_protocol() {
        let e = Target::parse("graphite://h?rp=x").unwrap_err();
        assert!(e.to_string().contains("unknown option `rp`"), "{e}");
        assert!(e.to_string().contains("tags"), "{e}");
        let e = Target::parse("graphite://h?tags").unwrap_err();
        assert!(e.to_string().contains("needs a value"), "{e}");
        let t = Target::parse("http://h/p?name=ingest&format=json").unwrap();
        assert_eq!(t.label(), "ingest");
        let t = Target::parse("http://h/p?token-file=%2Ftmp%2Ft").unwrap();
        assert_eq!(t.option("token-file"), Some("/tmp/t"));
        let t = Target::parse("http://h/write?db=x%20y&format=influx&rp=a").unwrap();
        assert_eq!(t.option("format"), Some("influx"));
        let rest = [
            ("db".to_string(), "x y".to_string()),
            ("rp".into(), "a".into()),
        ];
        assert_eq!(t.query, rest, "other parameters belong to the receiver");
    }

    #[test]
    fn bad_destinations_say_why() {
        for (text, why) in [
            ("localhost:2003", "unknown scheme"),
            ("carbon://h", "unknown scheme"),
            ("graphite:h", "expected `//`"),
            ("graphite://h:0", "bad port"),
            ("graphite://h:99999", "bad port"),
            ("graphite://", "no host"),
            ("influx://u:p@h/db", "credentials"),
            ("statsd://[::1", "unclosed"),
            ("file:", "needs a path"),
            ("http://h/?x=%zz", "bad escape"),
            ("nothing", "expected SCHEME"),
        ] {
            let e = Target::parse(text).unwrap_err();
            assert!(e.to_string().contains(why), "{text}: {e}");
            assert_eq!(e.exit, crate::Exit::Usage);
        }
    }
}
