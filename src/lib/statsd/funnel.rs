//! The Funnel agent's JSON metrics body, as accepted by `POST /metrics` on the statsd HTTP API.
//!
//! `{"cluster":"web","metrics":[{"name":"req","kind":"counter","value":"3"}]}`
//!
//! Kinds map onto what a statsd line of the same meaning would give, so the aggregator folds
//! both sources into one series: `counter` is a delta counter (`|c`), `timer` a distribution in
//! milliseconds (`|ms`), `gauge-double` and `gauge-string` a gauge that is set (`|g`). Values
//! arrive as strings or JSON numbers. Names are kept as sent. A metric that cannot be used is
//! refused alone, with its index and a reason; only a body of the wrong shape fails as a whole.

use crate::metric::{Kind, Metric, Temporality, Value};
use serde_json::Value as Json;

/// The usable metrics of one body and why the others were not.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub metrics: Vec<Metric>,
    /// The index in `metrics` of the body, and the reason.
    pub refused: Vec<(usize, String)>,
}

/// Parses one body; `now_ns` stamps every metric (the format carries no timestamps).
/// `Err` only when the body is not a JSON object with a `metrics` array.
pub fn parse(body: &[u8], now_ns: i64) -> Result<Parsed, String> {
    let doc: Json = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let obj = doc.as_object().ok_or("body is not a JSON object")?;
    let cluster = match obj.get("cluster") {
        None | Some(Json::Null) => "",
        Some(Json::String(s)) => s.as_str(),
        Some(_) => return Err("`cluster` is not a string".into()),
    };
    let items = match obj.get("metrics") {
        Some(Json::Array(items)) => items,
        Some(_) => return Err("`metrics` is not an array".into()),
        None => return Err("no `metrics` array".into()),
    };
    let mut parsed = Parsed::default();
    for (i, item) in items.iter().enumerate() {
        match metric(item, now_ns) {
            Ok(m) if cluster.is_empty() => parsed.metrics.push(m),
            Ok(m) => parsed.metrics.push(m.with_tag("cluster", cluster)),
            Err(why) => parsed.refused.push((i, why)),
        }
    }
    Ok(parsed)
}

/// One entry of `metrics`.
fn metric(item: &Json, now_ns: i64) -> Result<Metric, String> {
    let obj = item.as_object().ok_or("metric is not a JSON object")?;
    let name = match obj.get("name") {
        Some(Json::String(s)) if !s.is_empty() => s.as_str(),
        Some(Json::String(_)) => return Err("empty name".into()),
        Some(_) => return Err("`name` is not a string".into()),
        None => return Err("no `name`".into()),
    };
    let kind = match obj.get("kind") {
        Some(Json::String(s)) => s.as_str(),
        Some(_) => return Err("`kind` is not a string".into()),
        None => return Err("no `kind`".into()),
    };
    let text = value_text(obj.get("value"))?;
    match kind {
        "counter" => Ok(Metric::counter(
            name,
            Temporality::Delta,
            number(&text)?,
            now_ns,
        )),
        "timer" => Ok(timer(name, millis(&text)?, now_ns)),
        "gauge-double" | "gauge-string" => Ok(Metric::gauge(name, number(&text)?, now_ns)),
        _ => Err(format!(
            "unknown kind {kind:?} (counter, timer, gauge-double or gauge-string)"
        )),
    }
}

/// Built field by field as `statsd::parse` builds a `|ms` sample, so both land in one series.
fn timer(name: &str, ms: f64, now_ns: i64) -> Metric {
    Metric {
        name: name.to_owned(),
        kind: Kind::Distribution,
        values: vec![ms],
        ts: now_ns,
        ..Metric::default()
    }
    .with_unit("ms")
}

/// The value as text: senders differ on quoting numbers, so both forms go through one parser.
fn value_text(v: Option<&Json>) -> Result<String, String> {
    match v {
        Some(Json::String(s)) => Ok(s.trim().to_owned()),
        Some(Json::Number(n)) => Ok(n.to_string()),
        Some(_) => Err("`value` is not a string or number".into()),
        None => Err("no `value`".into()),
    }
}

/// An integer stays exact (i64, then u64) as in statsd lines; anything else must be a finite
/// float.
fn number(s: &str) -> Result<Value, String> {
    if let Ok(i) = s.parse::<i64>() {
        return Ok(Value::I64(i));
    }
    if let Ok(u) = s.parse::<u64>() {
        return Ok(Value::U64(u));
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Value::F64(f)),
        _ => Err(format!("value {s:?} is not a finite number")),
    }
}

/// A duration such as `20 milliseconds`, `1.5s` or `250` (milliseconds) in milliseconds.
fn millis(s: &str) -> Result<f64, String> {
    // The unit is the trailing run of letters; an exponent (`1e3`) ends in digits, so it
    // stays with the number.
    let split = s
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphabetic())
        .last()
        .map_or(s.len(), |(i, _)| i);
    let (num, unit) = (s[..split].trim_end(), &s[split..]);
    let per_unit = ms_per(&unit.to_lowercase())
        .ok_or_else(|| format!("unknown duration unit {unit:?} in {s:?}"))?;
    let n: f64 = num
        .parse()
        .map_err(|_| format!("duration {s:?} is not a number and unit"))?;
    let ms = n * per_unit;
    if !ms.is_finite() || ms < 0.0 {
        return Err(format!("duration {s:?} is negative or not finite"));
    }
    Ok(ms)
}

fn ms_per(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" | "nanosecond" | "nanoseconds" => 1e-6,
        "us" | "µs" | "μs" | "microsecond" | "microseconds" => 1e-3,
        "" | "ms" | "millisecond" | "milliseconds" => 1.0,
        "s" | "second" | "seconds" => 1e3,
        "m" | "minute" | "minutes" => 60e3,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statsd::{Parser, Sanitize};

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn one(kind: &str, value: &str) -> Result<Metric, String> {
        let body = format!(r#"{{"metrics":[{{"name":"m","kind":"{kind}","value":{value}}}]}}"#);
        let mut p = parse(body.as_bytes(), NOW).unwrap();
        match p.refused.pop() {
            Some((_, why)) => Err(why),
            None => Ok(p.metrics.remove(0)),
        }
    }

    fn timer_ms(value: &str) -> Result<f64, String> {
        one("timer", value).map(|m| m.values[0])
    }

    #[test]
    fn counter_is_a_delta_counter() {
        let m = one("counter", r#""3""#).unwrap();
        assert_eq!(m.kind, Kind::Counter);
        assert_eq!(m.temporality, Some(Temporality::Delta));
        assert_eq!(m.value, Some(Value::I64(3)));
        assert_eq!(m.ts, NOW);
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(
            one("counter", r#""18446744073709551615""#).unwrap().value,
            Some(Value::U64(u64::MAX))
        );
        assert_eq!(
            one("counter", r#""0.5""#).unwrap().value,
            Some(Value::F64(0.5))
        );
    }

    #[test]
    fn timer_matches_a_statsd_ms_line() {
        let mut from_line = Vec::new();
        Parser::new(Sanitize::None)
            .parse(b"m:20|ms", NOW, |m| from_line.push(m.clone()))
            .unwrap();
        let m = one("timer", r#""20 milliseconds""#).unwrap();
        assert_eq!(m, from_line[0]);
        assert_eq!((m.kind, m.unit.as_str()), (Kind::Distribution, "ms"));
    }

    #[test]
    fn timer_units_convert_to_milliseconds() {
        for (value, ms) in [
            (r#""20 milliseconds""#, 20.0),
            (r#""1 millisecond""#, 1.0),
            (r#""20ms""#, 20.0),
            (r#""250""#, 250.0),
            ("250", 250.0),
            ("2.5", 2.5),
            (r#""1500000 ns""#, 1.5),
            (r#""3 nanoseconds""#, 3e-6),
            (r#""1500us""#, 1.5),
            (r#""1500 µs""#, 1.5),
            (r#""1500 microseconds""#, 1.5),
            (r#""2 s""#, 2000.0),
            (r#""1 second""#, 1000.0),
            (r#""0.5 seconds""#, 500.0),
            (r#""2m""#, 120_000.0),
            (r#""1 minute""#, 60_000.0),
            (r#""3 Minutes""#, 180_000.0),
            (r#""1e3 ms""#, 1000.0),
            (r#"" 7 ms ""#, 7.0),
        ] {
            assert_eq!(timer_ms(value), Ok(ms), "{value}");
        }
    }

    #[test]
    fn bad_timers_are_refused() {
        for value in [
            r#""20 fortnights""#,
            r#""ms""#,
            r#""""#,
            r#""-5 ms""#,
            r#""1e400 s""#,
            r#""1.2.3 ms""#,
            "true",
        ] {
            assert!(timer_ms(value).is_err(), "{value}");
        }
    }

    #[test]
    fn gauges_are_set_gauges() {
        let m = one("gauge-double", r#""1.25""#).unwrap();
        assert_eq!((m.kind, m.temporality), (Kind::Gauge, None));
        assert_eq!(m.value, Some(Value::F64(1.25)));
        assert_eq!(
            one("gauge-double", "-4").unwrap().value,
            Some(Value::I64(-4))
        );
        assert_eq!(
            one("gauge-string", r#""42""#).unwrap().value,
            Some(Value::I64(42))
        );
        let why = one("gauge-string", r#""green""#).unwrap_err();
        assert!(why.contains("not a finite number"), "{why}");
        assert!(one("gauge-double", r#""NaN""#).is_err());
        assert!(one("gauge-double", r#""inf""#).is_err());
    }

    #[test]
    fn numbers_and_strings_agree() {
        for (string, number) in [(r#""3""#, "3"), (r#""2.5""#, "2.5"), (r#""-1""#, "-1")] {
            assert_eq!(one("counter", string), one("counter", number));
            assert_eq!(one("gauge-double", string), one("gauge-double", number));
        }
    }

    #[test]
    fn cluster_becomes_a_tag() {
        let body = br#"{"cluster":"web","metrics":[{"name":"a","kind":"counter","value":1}]}"#;
        let p = parse(body, NOW).unwrap();
        assert_eq!(p.metrics[0].tags.get("cluster"), Some("web"));
        for body in [
            &br#"{"cluster":"","metrics":[{"name":"a","kind":"counter","value":1}]}"#[..],
            br#"{"cluster":null,"metrics":[{"name":"a","kind":"counter","value":1}]}"#,
            br#"{"metrics":[{"name":"a","kind":"counter","value":1}]}"#,
        ] {
            assert!(parse(body, NOW).unwrap().metrics[0].tags.is_empty());
        }
    }

    #[test]
    fn bad_entries_are_refused_by_index() {
        let body = br#"{"metrics":[
            {"name":"ok","kind":"counter","value":"1"},
            {"name":"","kind":"counter","value":"1"},
            {"kind":"counter","value":"1"},
            {"name":"x","kind":"histogram","value":"1"},
            {"name":"x","kind":"counter"},
            {"name":"x","kind":"counter","value":[1]},
            {"name":"x","value":"1"},
            {"name":7,"kind":"counter","value":"1"},
            "not an object",
            {"name":"ok2","kind":"gauge-double","value":2}
        ]}"#;
        let p = parse(body, NOW).unwrap();
        let names: Vec<_> = p.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["ok", "ok2"]);
        let idx: Vec<_> = p.refused.iter().map(|(i, _)| *i).collect();
        assert_eq!(idx, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(p.refused[0].1, "empty name");
        assert!(
            p.refused[2].1.contains("unknown kind"),
            "{:?}",
            p.refused[2]
        );
    }

    #[test]
    fn names_are_kept_as_sent() {
        let body = br#"{"metrics":[{"name":"my app/req*s","kind":"counter","value":1}]}"#;
        assert_eq!(parse(body, NOW).unwrap().metrics[0].name, "my app/req*s");
    }

    #[test]
    fn bad_shapes_fail_the_whole_body() {
        for body in [
            &b""[..],
            b"not json",
            b"[]",
            b"42",
            b"{}",
            br#"{"metrics":{}}"#,
            br#"{"metrics":"x"}"#,
            br#"{"cluster":5,"metrics":[]}"#,
            br#"{"metrics":[]"#,
            b"\xff\xfe",
        ] {
            assert!(
                parse(body, NOW).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(parse(br#"{"metrics":[]}"#, NOW), Ok(Parsed::default()));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let body = format!(
            r#"{{"metrics":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(parse(body.as_bytes(), NOW).is_err());
    }
}
