//! Agents to poll, from arguments (`HOST[:PORT]`, `[v6]:PORT`, comma-separated) or a
//! targets file: one agent per line, or an NDJSON resource per line whose tags are copied
//! onto every metric of that agent (Panoptes resources):
//! `{"host":"10.0.0.1","port":1161,"name":"sw1","tags":{"site":"fra1"}}`.

use super::poller::Target;
use crate::error::{Error, Result};
use std::net::{SocketAddr, ToSocketAddrs};

/// SNMP's port.
pub const DEFAULT_PORT: u16 = 161;

/// `HOST[:PORT]` as an agent; names are resolved once, here.
pub fn parse_host(spec: &str) -> Result<Target> {
    let spec = spec.trim();
    let spec = spec
        .strip_prefix("udp:")
        .or_else(|| spec.strip_prefix("udp6:"))
        .unwrap_or(spec);
    let addr = resolve(spec)?;
    Ok(Target {
        name: spec.to_owned(),
        addr,
        tags: Vec::new(),
    })
}

fn resolve(spec: &str) -> Result<SocketAddr> {
    if let Ok(a) = spec.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = spec.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    let with_port = if spec
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        spec.to_owned()
    } else {
        format!("{spec}:{DEFAULT_PORT}")
    };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| {
            Error::usage(format!(
                "agent `{spec}`: not an address or a known host name"
            ))
        })
}

/// Agents from a targets file's text; `source` names it in errors.
pub fn parse_file(text: &str, source: &str) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let t = if line.starts_with('{') {
            resource(line)
        } else {
            parse_host(line)
        };
        out.push(t.map_err(|e| Error::usage(format!("{source}:{}: {}", i + 1, e.msg)))?);
    }
    if out.is_empty() {
        return Err(Error::no_input(format!("{source}: no agents")));
    }
    Ok(out)
}

fn resource(line: &str) -> Result<Target> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| Error::usage(format!("bad JSON: {e}")))?;
    let host = v["host"]
        .as_str()
        .or_else(|| v["address"].as_str())
        .ok_or_else(|| Error::usage("a resource needs \"host\""))?;
    let spec = match v["port"].as_u64() {
        Some(p) if host.contains(':') && !host.starts_with('[') => format!("[{host}]:{p}"),
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let mut t = parse_host(&spec)?;
    if let Some(name) = v["name"].as_str() {
        t.name = name.to_owned();
    }
    if let Some(tags) = v["tags"].as_object() {
        for (k, val) in tags {
            let text = match val {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            t.tags.push((k.clone(), text));
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports() {
        assert_eq!(
            parse_host("127.0.0.1").unwrap().addr,
            "127.0.0.1:161".parse().unwrap()
        );
        assert_eq!(
            parse_host("127.0.0.1:1161").unwrap().addr,
            "127.0.0.1:1161".parse().unwrap()
        );
        assert_eq!(
            parse_host("udp:127.0.0.1:1161").unwrap().name,
            "127.0.0.1:1161"
        );
        assert_eq!(
            parse_host("[::1]:1161").unwrap().addr,
            "[::1]:1161".parse().unwrap()
        );
        assert_eq!(
            parse_host("::1").unwrap().addr,
            "[::1]:161".parse().unwrap()
        );
        assert_eq!(parse_host("localhost:1161").unwrap().addr.port(), 1161);
        assert!(parse_host("no such host.invalid").is_err());
    }

    #[test]
    fn files_with_lines_and_resources() {
        let ts = parse_file(
            "# agents\n127.0.0.1:1161\n\n{\"host\":\"127.0.0.2\",\"port\":1161,\"name\":\"sw2\",\"tags\":{\"site\":\"fra1\",\"rack\":7}}\n",
            "t.txt",
        )
        .unwrap();
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[1].name, "sw2");
        assert_eq!(
            ts[1].tags,
            [("rack".into(), "7".into()), ("site".into(), "fra1".into())]
        );
        let e = parse_file("127.0.0.1\n{\"port\":1}\n", "t.txt").unwrap_err();
        assert!(e.msg.starts_with("t.txt:2:"), "{}", e.msg);
        assert!(parse_file("# nothing\n", "t.txt").is_err());
    }
}
