//! The `http` JSON source: GET a JSON document and pick numbers out of it by path, one gauge
//! per `--field name=path`, each tagged `server=<host:port>` of the URL.
//!
//! # Paths
//!
//! A path walks from the document's root to one value:
//!
//! ```text
//! path    = first step*
//! first   = key | index | quoted
//! step    = "." key | index | quoted
//! key     = one or more characters other than `.`, `[`, `]`, `"`
//! index   = "[" digits "]"            array element, from 0
//! quoted  = "[" '"' chars '"' "]"     a key that holds `.`, `[`, `]` or `"`;
//!                                     `\"` and `\\` escape inside the quotes
//! ```
//!
//! So `connections.active`, `pools[0].size`, `[2]`, `stats["cache.hits"]` and
//! `a["x\"y"].b` are paths; the empty path, `a..b`, `a.`, `.a`, `a[]`, `a[-1]` and `a[x]` are
//! not. A key is matched exactly (case and all), and only against objects; an index only
//! against arrays.
//!
//! # Values
//!
//! - a JSON number stays exact: one that fits `u64` is an unsigned integer, else one that fits
//!   `i64` a signed one, else (fractions, exponents, integers out of range) a float;
//! - `true`/`false` are 1/0;
//! - a string holding a number (`"42"`, `" -7 "`, `"0.25"`) is read the same way, surrounding
//!   spaces allowed; `"NaN"`, `"inf"` and other non-finite spellings are refused;
//! - anything else (null, objects, arrays, other strings) is not a number.
//!
//! A path that leads nowhere or to a non-number fails that field only: it is logged
//! (`field_failed`, rate-limited) and its gauge left out. A collection in which no field
//! resolves is an error, so `collect.up` shows 0 for a document that is not the expected one.

use std::fmt;
use std::time::Duration;

use serde_json::Value as Json;

use super::http::{fetch, http_agent, server_of};
use crate::log::RateLimit;
use crate::metric::{Metric, Value};
use crate::Error;

/// Documents bigger than this are refused: a status endpoint is not a data dump.
const MAX_DOC_BYTES: u64 = 8 * 1024 * 1024;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// An object member.
    Key(String),
    /// An array element, from 0.
    Index(usize),
}

/// A parsed path (see the module docs for the grammar).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses `text`; the error says where and why it is not a path.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let bad = |at: usize, why: &str| format!("path `{text}`: {why} at byte {at}");
        let bytes = text.as_bytes();
        let mut steps = Vec::new();
        let mut i = 0;
        if text.is_empty() {
            return Err(format!("path `{text}`: empty"));
        }
        while i < bytes.len() {
            match bytes[i] {
                b'[' => {
                    let (step, next) = parse_bracket(text, i).map_err(|why| bad(i, &why))?;
                    steps.push(step);
                    i = next;
                }
                b'.' if i == 0 => return Err(bad(i, "a path cannot start with `.`")),
                b'.' => i = read_key(text, i + 1, &mut steps).map_err(|(at, why)| bad(at, why))?,
                _ if i == 0 => {
                    i = read_key(text, 0, &mut steps).map_err(|(at, why)| bad(at, why))?
                }
                _ => return Err(bad(i, "expected `.` or `[` between steps")),
            }
        }
        Ok(JsonPath(steps))
    }

    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    /// The value the path leads to in `doc`, or why there is none (naming the part of the
    /// path that was found).
    pub fn lookup<'a>(&self, doc: &'a Json) -> Result<&'a Json, String> {
        let mut at = doc;
        for (n, step) in self.0.iter().enumerate() {
            let here = || {
                if n == 0 {
                    "the document".to_owned()
                } else {
                    format!("`{}`", JsonPath(self.0[..n].to_vec()))
                }
            };
            at = match (step, at) {
                (Step::Key(k), Json::Object(map)) => map
                    .get(k)
                    .ok_or_else(|| format!("{} has no key `{k}`", here()))?,
                (Step::Index(i), Json::Array(items)) => items
                    .get(*i)
                    .ok_or_else(|| format!("{} has {} elements, no [{i}]", here(), items.len()))?,
                (Step::Key(k), other) => {
                    return Err(format!(
                        "{} is {}, not an object with key `{k}`",
                        here(),
                        kind_of(other)
                    ))
                }
                (Step::Index(i), other) => {
                    return Err(format!(
                        "{} is {}, not an array with element [{i}]",
                        here(),
                        kind_of(other)
                    ))
                }
            };
        }
        Ok(at)
    }
}

/// A bare key from `start` to the next `.` or `[`; pushes it, returns where it ends.
fn read_key(
    text: &str,
    start: usize,
    steps: &mut Vec<Step>,
) -> Result<usize, (usize, &'static str)> {
    let end = text[start..]
        .find(['.', '[', ']', '"'])
        .map_or(text.len(), |n| start + n);
    if end == start {
        return Err((start, "empty key"));
    }
    if matches!(text.as_bytes().get(end), Some(b']' | b'"')) {
        return Err((end, "`]` or `\"` in a key (quote it: `[\"...\"]`)"));
    }
    steps.push(Step::Key(text[start..end].to_owned()));
    Ok(end)
}

/// `[N]` or `["key"]` starting at `text[open] == '['`; the step and the index after `]`.
fn parse_bracket(text: &str, open: usize) -> Result<(Step, usize), String> {
    let rest = &text[open + 1..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = quoted.char_indices();
        while let Some((n, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => key.push(e),
                    _ => return Err("only `\\\"` and `\\\\` escape in a quoted key".into()),
                },
                '"' => {
                    let after = open + 2 + n + 1;
                    return if text[after..].starts_with(']') {
                        Ok((Step::Key(key), after + 1))
                    } else {
                        Err("a quoted key must be followed by `]`".into())
                    };
                }
                c => key.push(c),
            }
        }
        return Err("unterminated quoted key".into());
    }
    let close = rest.find(']').ok_or("unterminated `[`")?;
    let digits = &rest[..close];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`[{digits}]` is not an array index (a key goes in quotes: `[\"{digits}\"]`)"
        ));
    }
    let index = digits
        .parse()
        .map_err(|_| format!("index `{digits}` is out of range"))?;
    Ok((Step::Index(index), open + 1 + close + 1))
}

/// Writes the path back in the grammar, keys quoted only when they must be.
impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, step) in self.0.iter().enumerate() {
            match step {
                Step::Index(i) => write!(f, "[{i}]")?,
                Step::Key(k) if !k.is_empty() && !k.contains(['.', '[', ']', '"']) => {
                    if n > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Step::Key(k) => {
                    f.write_str("[\"")?;
                    for c in k.chars() {
                        if matches!(c, '"' | '\\') {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    f.write_str("\"]")?;
                }
            }
        }
        Ok(())
    }
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The metric value of a JSON value (see the module docs), or why it is not a number.
pub fn number_of(v: &Json) -> Result<Value, String> {
    match v {
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(Value::U64(u))
            } else if let Some(i) = n.as_i64() {
                Ok(Value::I64(i))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() => Ok(Value::F64(f)),
                    _ => Err(format!("the number {n} is out of range")),
                }
            }
        }
        Json::Bool(b) => Ok(Value::U64(u64::from(*b))),
        Json::String(s) => {
            let t = s.trim();
            if let Ok(u) = t.parse::<u64>() {
                Ok(Value::U64(u))
            } else if let Ok(i) = t.parse::<i64>() {
                Ok(Value::I64(i))
            } else {
                match t.parse::<f64>() {
                    Ok(f) if f.is_finite() && looks_numeric(t) => Ok(Value::F64(f)),
                    _ => Err(format!("the string {v} is not a number")),
                }
            }
        }
        other => Err(format!("{} is not a number", kind_of(other))),
    }
}

/// Rust's float parser also takes `inf`, `NaN` and `infinity`; JSON-ish numbers only.
fn looks_numeric(t: &str) -> bool {
    t.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
}

/// One `--field`: the gauge's name and where its value is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub path: JsonPath,
}

/// Splits a `--field` argument `name=path` at its first `=`.
pub fn parse_field_arg(arg: &str) -> Result<(String, String), Error> {
    match arg.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_owned(), path.to_owned()))
        }
        _ => Err(Error::usage(format!(
            "--field `{arg}`: expected `name=json.path`"
        ))),
    }
}

/// Appends a gauge stamped `ts` for each field that resolves in `doc`; returns the fields
/// that did not, each with the reason.
pub fn extract<'f>(
    doc: &Json,
    fields: &'f [Field],
    ts: i64,
    out: &mut Vec<Metric>,
) -> Vec<(&'f Field, String)> {
    let mut failed = Vec::new();
    for field in fields {
        match field.path.lookup(doc).and_then(number_of) {
            Ok(v) => out.push(Metric::gauge(&field.name, v, ts)),
            Err(why) => failed.push((field, why)),
        }
    }
    failed
}

/// Collects the fields of one JSON URL, one call to `collect` per interval.
#[derive(Debug)]
pub struct HttpJsonCollector {
    url: String,
    /// `host:port` of the URL, the `server` tag.
    server: String,
    fields: Vec<Field>,
    agent: ureq::Agent,
    field_log: RateLimit,
}

impl HttpJsonCollector {
    /// `fields` are `(gauge name, path)` pairs; at least one, names distinct, paths valid,
    /// else `Error::usage`. Each request gives up after `timeout`.
    pub fn new(
        url: &str,
        timeout: Duration,
        fields: Vec<(String, String)>,
    ) -> Result<HttpJsonCollector, Error> {
        let server = server_of(url)?;
        if fields.is_empty() {
            return Err(Error::usage("no --field name=json.path given"));
        }
        let mut parsed: Vec<Field> = Vec::with_capacity(fields.len());
        for (name, path) in fields {
            if name.is_empty() {
                return Err(Error::usage(format!("field `={path}`: empty metric name")));
            }
            if parsed.iter().any(|f| f.name == name) {
                return Err(Error::usage(format!("field name `{name}` given twice")));
            }
            let path = JsonPath::parse(&path)
                .map_err(|why| Error::usage(format!("field `{name}`: {why}")))?;
            parsed.push(Field { name, path });
        }
        Ok(HttpJsonCollector {
            url: url.to_owned(),
            server,
            fields: parsed,
            agent: http_agent(timeout),
            field_log: RateLimit::default(),
        })
    }

    /// The `server` tag: `host:port` of the URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Appends one gauge per resolved field, stamped `now_ns` and tagged `server`. A field
    /// that does not resolve is logged and left out; when none resolves, or the fetch or the
    /// JSON fails, it is `Error::unavailable` and `out` is unchanged.
    pub fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<(), Error> {
        let text = fetch(&self.agent, &self.url, "application/json", MAX_DOC_BYTES)?;
        let doc: Json = serde_json::from_str(&text)
            .map_err(|e| Error::unavailable(format!("{}: not JSON: {e}", self.url)))?;
        let start = out.len();
        let failed = extract(&doc, &self.fields, now_ns, out);
        if failed.len() == self.fields.len() {
            out.truncate(start);
            let (field, why) = &failed[0];
            return Err(Error::unavailable(format!(
                "{}: none of the {} fields resolved (`{}`: {why})",
                self.url,
                self.fields.len(),
                field.name
            )));
        }
        for (field, why) in &failed {
            if let Some(suppressed) = self.field_log.allow_at(now_ns) {
                crate::log!(
                    Warn,
                    "field_failed",
                    source = "http",
                    url = self.url,
                    field = field.name,
                    path = field.path,
                    reason = why,
                    suppressed = suppressed
                );
            }
        }
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
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn key(k: &str) -> Step {
        Step::Key(k.to_owned())
    }

    fn path(p: &str) -> JsonPath {
        JsonPath::parse(p).unwrap()
    }

    #[test]
    fn parses_the_grammar() {
        assert_eq!(path("a").steps(), [key("a")]);
        assert_eq!(path("a.b.c").steps(), [key("a"), key("b"), key("c")]);
        assert_eq!(
            path("pools[0].size").steps(),
            [key("pools"), Step::Index(0), key("size")]
        );
        assert_eq!(path("[2]").steps(), [Step::Index(2)]);
        assert_eq!(path("[1][10]").steps(), [Step::Index(1), Step::Index(10)]);
        assert_eq!(
            path(r#"stats["cache.hits"]"#).steps(),
            [key("stats"), key("cache.hits")]
        );
        assert_eq!(path(r#"["a.b"].c"#).steps(), [key("a.b"), key("c")]);
        assert_eq!(
            path(r#"a["x\"y\\z"].b"#).steps(),
            [key("a"), key(r#"x"y\z"#), key("b")]
        );
        assert_eq!(path(r#"[""]"#).steps(), [key("")]);
        assert_eq!(
            path("a-b.c_d.0").steps(),
            [key("a-b"), key("c_d"), key("0")]
        );
        assert_eq!(path("ünï.ç").steps(), [key("ünï"), key("ç")]);
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a[]",
            "a[-1]",
            "a[x]",
            "a[1",
            "a]",
            r#"a"b"#,
            r#"a["b"#,
            r#"a["b"x]"#,
            r#"a["\n"]"#,
            "a[0]b",
            "a[99999999999999999999999]",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad:?} parsed");
        }
        let e = JsonPath::parse("a[x]").unwrap_err();
        assert!(e.contains(r#"["x"]"#), "{e}");
    }

    #[test]
    fn displays_back_to_an_equal_path() {
        for p in [
            "a.b[0].c",
            "[3]",
            r#"stats["cache.hits"].n"#,
            r#"["x\"y\\z"]"#,
            r#"[""]"#,
        ] {
            assert_eq!(path(p).to_string(), p);
            assert_eq!(path(&path(p).to_string()), path(p));
        }
    }

    const DOC: &str = r#"{
        "uptime": 12345,
        "load": 0.25,
        "delta": -3,
        "big": 18446744073709551615,
        "min": -9223372036854775808,
        "huge": 1e300,
        "beyond": 123456789012345678901234567890,
        "ok": true,
        "down": false,
        "text": "42",
        "neg_text": " -7 ",
        "frac_text": "0.5",
        "nan_text": "NaN",
        "inf_text": "inf",
        "word": "hello",
        "nothing": null,
        "pools": [{"size": 8, "busy": 3}, {"size": 16}],
        "stats": {"cache.hits": 99, "a": {"b": 1}},
        "matrix": [[1, 2], [3, 4]]
    }"#;

    fn doc() -> Json {
        serde_json::from_str(DOC).unwrap()
    }

    fn get(p: &str) -> Result<Value, String> {
        path(p).lookup(&doc()).and_then(number_of)
    }

    #[test]
    fn numbers_stay_exact() {
        assert_eq!(get("uptime"), Ok(Value::U64(12345)));
        assert_eq!(get("load"), Ok(Value::F64(0.25)));
        assert_eq!(get("delta"), Ok(Value::I64(-3)));
        assert_eq!(get("big"), Ok(Value::U64(u64::MAX)));
        assert_eq!(get("min"), Ok(Value::I64(i64::MIN)));
        assert_eq!(get("huge"), Ok(Value::F64(1e300)));
        assert_eq!(get("beyond"), Ok(Value::F64(1.2345678901234568e29)));
        assert_eq!(get("ok"), Ok(Value::U64(1)));
        assert_eq!(get("down"), Ok(Value::U64(0)));
        assert_eq!(get("text"), Ok(Value::U64(42)));
        assert_eq!(get("neg_text"), Ok(Value::I64(-7)));
        assert_eq!(get("frac_text"), Ok(Value::F64(0.5)));
        assert_eq!(get("pools[0].size"), Ok(Value::U64(8)));
        assert_eq!(get("pools[1].size"), Ok(Value::U64(16)));
        assert_eq!(get(r#"stats["cache.hits"]"#), Ok(Value::U64(99)));
        assert_eq!(get("stats.a.b"), Ok(Value::U64(1)));
        assert_eq!(get("matrix[1][0]"), Ok(Value::U64(3)));
    }

    #[test]
    fn missing_and_non_numbers_say_why() {
        let err = |p: &str| get(p).unwrap_err();
        assert!(err("nope").contains("the document has no key `nope`"));
        assert!(err("pools[2].size").contains("`pools` has 2 elements, no [2]"));
        assert!(err("pools[1].busy").contains("`pools[1]` has no key `busy`"));
        assert!(err("stats.cache.hits").contains("`stats` has no key `cache`"));
        assert!(err("uptime.x").contains("`uptime` is a number, not an object"));
        assert!(err("stats[0]").contains("`stats` is an object, not an array"));
        assert!(err("[0]").contains("the document is an object"));
        assert!(err("word").contains(r#"the string "hello" is not a number"#));
        assert!(err("nan_text").contains("not a number"));
        assert!(err("inf_text").contains("not a number"));
        assert!(err("nothing").contains("null is not a number"));
        assert!(err("pools").contains("an array is not a number"));
        assert!(err("stats").contains("an object is not a number"));
    }

    fn fields(specs: &[(&str, &str)]) -> Vec<Field> {
        specs
            .iter()
            .map(|(n, p)| Field {
                name: (*n).to_owned(),
                path: path(p),
            })
            .collect()
    }

    #[test]
    fn extract_skips_failed_fields() {
        let fs = fields(&[
            ("a.up", "uptime"),
            ("a.bad", "word"),
            ("a.hits", r#"stats["cache.hits"]"#),
        ]);
        let mut out = vec![Metric::gauge("before", Value::U64(1), 0)];
        let failed = extract(&doc(), &fs, 7, &mut out);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0.name, "a.bad");
        let got: Vec<_> = out[1..]
            .iter()
            .map(|m| (m.name.as_str(), m.value, m.ts))
            .collect();
        assert_eq!(
            got,
            [
                ("a.up", Some(Value::U64(12345)), 7),
                ("a.hits", Some(Value::U64(99)), 7)
            ]
        );
        assert!(out.iter().all(|m| m.validate().is_ok()));
    }

    #[test]
    fn field_args_and_constructor_checks() {
        assert_eq!(
            parse_field_arg("x.y=a.b=c").unwrap(),
            ("x.y".to_owned(), "a.b=c".to_owned())
        );
        for bad in ["x", "=a", "x="] {
            assert_eq!(parse_field_arg(bad).unwrap_err().exit, Exit::Usage);
        }
        let t = Duration::from_secs(1);
        let f = |specs: &[(&str, &str)]| -> Vec<(String, String)> {
            specs
                .iter()
                .map(|(n, p)| ((*n).to_owned(), (*p).to_owned()))
                .collect()
        };
        let e = |url: &str, specs: &[(&str, &str)]| {
            HttpJsonCollector::new(url, t, f(specs)).unwrap_err()
        };
        assert_eq!(e("ftp://x/", &[("a", "b")]).exit, Exit::Usage);
        assert!(e("http://x/", &[]).msg.contains("--field"));
        assert!(e("http://x/", &[("a", "b"), ("a", "c")])
            .msg
            .contains("twice"));
        assert!(e("http://x/", &[("a", "b..c")]).msg.contains("`a`"));
        let c = HttpJsonCollector::new("http://x/s", t, f(&[("a", "b[0]")])).unwrap();
        assert_eq!(c.server(), "x:80");
        assert_eq!(c.fields()[0].path.steps(), [key("b"), Step::Index(0)]);
    }

    /// Serves `body` with `status` to one request on a local port; returns the URL.
    fn serve_once(status: &str, body: &str) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/status.json", listener.local_addr().unwrap());
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let h = std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        (url, h)
    }

    fn specs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(n, p)| ((*n).to_owned(), (*p).to_owned()))
            .collect()
    }

    #[test]
    fn collects_over_http_with_server_tag() {
        let (url, h) = serve_once("200 OK", DOC);
        let mut c = HttpJsonCollector::new(
            &url,
            Duration::from_secs(5),
            specs(&[("app.big", "big"), ("app.missing", "x.y"), ("app.ok", "ok")]),
        )
        .unwrap();
        let mut out = Vec::new();
        c.collect(42, &mut out).unwrap();
        h.join().unwrap();
        let server = c.server().to_owned();
        assert!(server.starts_with("127.0.0.1:"));
        let got: Vec<_> = out
            .iter()
            .map(|m| (m.name.as_str(), m.value, m.tags.get("server")))
            .collect();
        assert_eq!(
            got,
            [
                ("app.big", Some(Value::U64(u64::MAX)), Some(server.as_str())),
                ("app.ok", Some(Value::U64(1)), Some(server.as_str())),
            ]
        );
        assert!(out.iter().all(|m| m.ts == 42));
    }

    #[test]
    fn no_resolved_field_bad_json_or_status_is_unavailable() {
        let one = |status: &str, body: &str, fs: &[(&str, &str)]| {
            let (url, h) = serve_once(status, body);
            let mut c = HttpJsonCollector::new(&url, Duration::from_secs(5), specs(fs)).unwrap();
            let mut out = vec![Metric::gauge("before", Value::U64(1), 0)];
            let e = c.collect(1, &mut out).unwrap_err();
            h.join().unwrap();
            assert_eq!(out.len(), 1, "out changed on error");
            assert_eq!(e.exit, Exit::Unavailable);
            e.msg
        };
        let msg = one("200 OK", DOC, &[("a", "word"), ("b", "nope")]);
        assert!(msg.contains("none of the 2 fields"), "{msg}");
        assert!(msg.contains("not a number"), "{msg}");
        let msg = one("200 OK", "<html>", &[("a", "b")]);
        assert!(msg.contains("not JSON"), "{msg}");
        let msg = one("503 Service Unavailable", "{}", &[("a", "b")]);
        assert!(msg.contains("503"), "{msg}");
    }
}
