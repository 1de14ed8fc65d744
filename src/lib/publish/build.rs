//! From a destination URL to its encoder and transport.

use super::counters::Counters;
use super::target::{Protocol, Target};
use super::transport::dry::DryRun;
use super::transport::file::FileTransport;
use super::transport::http::{HttpTransport, Method, Request};
use super::transport::tcp::{ReplayWindow, TcpTransport};
use super::transport::udp::UdpTransport;
use super::transport::Transport;
use super::Options;
use crate::encode::graphite::TagMode;
use crate::encode::{self, Encoder, Format, TimerSuffix};
use crate::error::{Error, Result};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Datagram size for statsd and Graphite over UDP: fits an Ethernet frame with IP and UDP
/// headers, so nothing is fragmented on the way.
pub const DEFAULT_MTU: usize = 1432;

/// The encoder a destination's payloads are written with.
pub fn encoder(target: &Target, opts: &Options) -> Result<Box<dyn Encoder + Send>> {
    let e: Box<dyn Encoder + Send> = match target.protocol {
        Protocol::Graphite | Protocol::GraphiteUdp => {
            Box::new(encode::GraphiteEncoder::with_tags(tag_mode(target)?))
        }
        Protocol::GraphitePickle => Box::new(encode::PickleEncoder::with_tags(tag_mode(target)?)),
        Protocol::Influx | Protocol::Influx2 => {
            let p = precision(target);
            Box::new(encode::InfluxEncoder::with_precision(p).ok_or_else(|| {
                bad(
                    target,
                    &format!("precision `{p}`: expected ns, us, ms or s"),
                )
            })?)
        }
        Protocol::RemoteWrite => Box::new(encode::RemoteWriteEncoder::default()),
        Protocol::Pushgateway => Box::new(super::expose::PushEncoder::default()),
        Protocol::OpenTsdb => Box::new(encode::OpenTsdbJsonEncoder::default()),
        Protocol::OpenTsdbTelnet => Box::new(encode::OpenTsdbTelnetEncoder::default()),
        Protocol::Statsd => {
            let timer = match target.option("timer") {
                None | Some("ms") => TimerSuffix::Ms,
                Some("h") => TimerSuffix::Histogram,
                Some("d") => TimerSuffix::Distribution,
                Some(t) => return Err(bad(target, &format!("timer `{t}`: expected ms, h or d"))),
            };
            let tags = match target.option("tags") {
                None | Some("true") => true,
                Some("false") => false,
                Some(t) => return Err(bad(target, &format!("tags `{t}`: expected true or false"))),
            };
            Box::new(encode::StatsdEncoder::new(timer).with_tags(tags))
        }
        Protocol::Http | Protocol::File => return format_encoder(target, opts),
    };
    Ok(e)
}

/// `?precision=` (default `ns`), checked when the encoder is built.
fn precision(target: &Target) -> &str {
    target.option("precision").unwrap_or("ns")
}

fn tag_mode(target: &Target) -> Result<TagMode> {
    match target.option("tags") {
        None => Ok(TagMode::Tagged),
        Some(t) => TagMode::parse(t).ok_or_else(|| {
            bad(
                target,
                &format!("tags `{t}`: expected tagged, path or drop"),
            )
        }),
    }
}

fn format_encoder(target: &Target, opts: &Options) -> Result<Box<dyn Encoder + Send>> {
    let name = target.option("format").unwrap_or(match target.protocol {
        Protocol::File => opts.format.as_str(),
        _ => "ndjson",
    });
    if name == "json" {
        return Ok(Box::new(encode::JsonArrayEncoder));
    }
    let format: Format = name
        .parse()
        .map_err(|e: String| Error::usage(format!("destination `{target}`: {e} (or json)")))?;
    Ok(encode::encoder(format))
}

/// Whether each payload must stand alone (message protocols) rather than continue a stream.
pub fn per_message(target: &Target) -> bool {
    !matches!(
        target.protocol,
        Protocol::Graphite | Protocol::GraphitePickle | Protocol::OpenTsdbTelnet | Protocol::File
    )
}

/// The transport for one lane of `target`.
pub fn transport(
    target: &Target,
    opts: &Options,
    counters: Arc<Counters>,
) -> Result<Box<dyn Transport>> {
    let timeout = option_duration(target, "timeout", opts.timeout)?;
    if opts.dry_run {
        return Ok(Box::new(dry_run(target, opts)?));
    }
    let t: Box<dyn Transport> = match target.protocol {
        Protocol::Graphite | Protocol::GraphitePickle | Protocol::OpenTsdbTelnet => {
            let window = ReplayWindow::new(opts.replay_window, opts.replay_bytes);
            Box::new(TcpTransport::new(
                target.authority(),
                timeout,
                window,
                counters,
            ))
        }
        Protocol::GraphiteUdp | Protocol::Statsd => {
            let mtu = option_usize(target, "mtu", DEFAULT_MTU)?;
            let key = match target
                .option("hmac-key-file")
                .map(Path::new)
                .or(opts.hmac_key_file.as_deref())
            {
                Some(path) if target.protocol == Protocol::Statsd => {
                    Some(crate::statsd::secure::read_key_file(path)?)
                }
                _ => None,
            };
            Box::new(UdpTransport::new(target.authority(), mtu, key, timeout))
        }
        Protocol::File => {
            let size = target
                .option("rotate-size")
                .map(parse_size)
                .transpose()
                .map_err(|e| bad(target, &e))?;
            let every = target
                .option("rotate-every")
                .map(crate::time::parse_duration)
                .transpose()
                .map_err(|e| bad(target, &e))?
                .map(|ns| Duration::from_nanos(ns.max(0) as u64));
            Box::new(FileTransport::new(target.path.clone().into(), size, every))
        }
        _ => {
            let (request, setup) = http_request(target, opts)?;
            Box::new(HttpTransport::new(request, setup, timeout))
        }
    };
    Ok(t)
}

fn dry_run(target: &Target, opts: &Options) -> Result<DryRun> {
    let binary = matches!(
        target.protocol,
        Protocol::GraphitePickle | Protocol::RemoteWrite
    );
    let describe = match target.protocol {
        Protocol::Influx
        | Protocol::Influx2
        | Protocol::RemoteWrite
        | Protocol::OpenTsdb
        | Protocol::Http => {
            let (req, _) = http_request(target, opts)?;
            let headers: Vec<String> = req
                .headers
                .iter()
                .map(|(k, v)| {
                    let secret = k.eq_ignore_ascii_case("authorization");
                    format!("{k}: {}", if secret { "<redacted>" } else { v })
                })
                .collect();
            format!(
                "{} {} {}",
                req.method.as_str(),
                req.url,
                headers.join(" | ")
            )
        }
        _ => target.label(),
    };
    Ok(DryRun { describe, binary })
}

/// A request to make once before the first batch, with its body.
type Setup = Option<(Request, Vec<u8>)>;

/// The request a batch is sent with, and a set-up request to make first if any.
fn http_request(target: &Target, opts: &Options) -> Result<(Request, Setup)> {
    let base = format!("http://{}", target.authority());
    let mut headers = Vec::new();
    let mut setup = None;
    let url = match target.protocol {
        Protocol::Influx => {
            let db = target.path.trim_start_matches('/');
            if db.is_empty() || db.contains('/') {
                return Err(bad(target, "expected influx://HOST:PORT/DATABASE"));
            }
            if let Some(user) = target.option("user") {
                let password = match target.option("password-file") {
                    Some(p) => crate::io::read_secret(Path::new(p))?,
                    None => String::new(),
                };
                headers.push(("Authorization".into(), basic_auth(user, &password)));
            }
            if target.option("create") != Some("false") {
                let q = format!("CREATE DATABASE \"{}\"", db.replace('"', "\\\""));
                let req = Request {
                    method: Method::Post,
                    url: format!("{base}/query?q={}", percent_encode(&q)),
                    headers: headers.clone(),
                };
                setup = Some((req, Vec::new()));
            }
            let mut url = format!(
                "{base}/write?db={}&precision={}",
                percent_encode(db),
                // InfluxDB 1.x spells microseconds `u`, 2.x `us`.
                match precision(target) {
                    "us" => "u",
                    p => p,
                }
            );
            if let Some(rp) = target.option("rp") {
                url.push_str(&format!("&rp={}", percent_encode(rp)));
            }
            url
        }
        Protocol::Influx2 => {
            let (org, bucket) = target
                .option("org")
                .zip(target.option("bucket"))
                .ok_or_else(|| bad(target, "influx2 needs ?org=ORG&bucket=BUCKET"))?;
            if let Some(token) = token(target, opts)? {
                headers.push(("Authorization".into(), format!("Token {token}")));
            }
            format!(
                "{base}/api/v2/write?org={}&bucket={}&precision={}",
                percent_encode(org),
                percent_encode(bucket),
                match precision(target) {
                    "u" => "us",
                    p => p,
                }
            )
        }
        Protocol::RemoteWrite => {
            headers.push(("Content-Encoding".into(), "snappy".into()));
            headers.push(("X-Prometheus-Remote-Write-Version".into(), "0.1.0".into()));
            let path = if target.path.is_empty() {
                "/api/v1/write"
            } else {
                &target.path
            };
            format!("{base}{path}")
        }
        Protocol::Pushgateway => {
            if !target.path.starts_with("/job/") && !target.path.starts_with("/metrics/job/") {
                return Err(bad(
                    target,
                    "expected pushgateway://HOST:PORT/job/NAME[/LABEL/VALUE…]",
                ));
            }
            let path = target.path.strip_prefix("/metrics").unwrap_or(&target.path);
            format!("{base}/metrics{path}")
        }
        Protocol::OpenTsdb => format!(
            "{base}{}",
            if target.path.is_empty() {
                "/api/put"
            } else {
                &target.path
            }
        ),
        _ => {
            headers.extend(opts.headers.iter().cloned());
            let mut url = format!("{}://{}{}", target.scheme, target.authority(), target.path);
            for (i, (k, v)) in target.query.iter().enumerate() {
                url.push(if i == 0 { '?' } else { '&' });
                url.push_str(&format!("{}={}", percent_encode(k), percent_encode(v)));
            }
            url
        }
    };
    if matches!(
        target.protocol,
        Protocol::RemoteWrite | Protocol::OpenTsdb | Protocol::Http
    ) {
        if let Some(token) = token(target, opts)? {
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
    }
    let content_type = encoder(target, opts)?.content_type();
    headers.push(("Content-Type".into(), content_type.into()));
    let method = match target.option("method") {
        None | Some("POST") | Some("post") => Method::Post,
        Some("PUT") | Some("put") => Method::Put,
        Some(m) => return Err(bad(target, &format!("method `{m}`: expected POST or PUT"))),
    };
    Ok((
        Request {
            method,
            url,
            headers,
        },
        setup,
    ))
}

fn token(target: &Target, opts: &Options) -> Result<Option<String>> {
    match target
        .option("token-file")
        .map(Path::new)
        .or(opts.token_file.as_deref())
    {
        Some(path) => crate::io::read_secret(path).map(Some),
        None => Ok(None),
    }
}

fn basic_auth(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{user}:{password}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in raw.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn bad(target: &Target, why: &str) -> Error {
    Error::usage(format!("destination `{target}`: {why}"))
}

pub fn option_usize(target: &Target, key: &str, default: usize) -> Result<usize> {
    match target.option(key) {
        Some(v) => v.parse().map_err(|_| {
            bad(
                target,
                &format!("option `{key}`: expected a whole number, got `{v}`"),
            )
        }),
        None => Ok(default),
    }
}

pub fn option_duration(target: &Target, key: &str, default: Duration) -> Result<Duration> {
    match target.option(key) {
        Some(v) => crate::time::parse_duration(v)
            .map(|ns| Duration::from_nanos(ns.max(0) as u64))
            .map_err(|e| bad(target, &format!("option `{key}`: {e}"))),
        None => Ok(default),
    }
}

/// `512`, `64KiB`, `10MiB`, `1GiB` (also `KB`/`MB`/`GB` as powers of ten).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad size `{text}`"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        u => {
            return Err(format!(
                "bad size unit `{u}` in `{text}` (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or(format!("size `{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("10 MB"), Ok(10_000_000));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("1PB").unwrap_err().contains("unit"));
        assert!(parse_size("99999999999TiB")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn basic_auth_is_rfc7617() {
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic_auth("a", ""), "Basic YTo=");
    }

    #[test]
    fn influx_requests() {
        let opts = Options::default();
        let t = Target::parse("influx://127.0.0.1:8086/my db?rp=week").unwrap();
        let (req, setup) = http_request(&t, &opts).unwrap();
        assert_eq!(
            req.url,
            "http://127.0.0.1:8086/write?db=my%20db&precision=ns&rp=week"
        );
        let (setup, _) = setup.unwrap();
        assert_eq!(
            setup.url,
            "http://127.0.0.1:8086/query?q=CREATE%20DATABASE%20%22my%20db%22"
        );
        let t = Target::parse("influx://h/db?precision=s").unwrap();
        assert!(http_request(&t, &opts)
            .unwrap()
            .0
            .url
            .ends_with("precision=s"));
        assert!(encoder(&Target::parse("influx://h/db?precision=h").unwrap(), &opts).is_err());
        let t = Target::parse("influx://h/db?create=false").unwrap();
        assert!(http_request(&t, &opts).unwrap().1.is_none());
        let t = Target::parse("influx://h").unwrap();
        assert!(http_request(&t, &opts).is_err());
    }

    #[test]
    fn secrets_come_from_files() {
        let path = std::env::temp_dir().join(format!("tlm-token-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        let t = Target::parse(&format!("http://h/in?token-file={}", path.display())).unwrap();
        let (req, _) = http_request(&t, &Options::default()).unwrap();
        assert!(req
            .headers
            .contains(&("Authorization".into(), "Bearer s3cret".into())));
        let t = Target::parse("influx2://h?org=o").unwrap();
        assert!(http_request(&t, &Options::default()).is_err());
        std::fs::remove_file(path).unwrap();
    }
}
