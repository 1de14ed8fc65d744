//! Properties of the NDJSON codec: any metric → line → metric is the identity, integers
//! beyond 2^53 stay exact, and lines agree with an independent JSON parser.

use proptest::prelude::*;
use tlm::metric::{Kind, Metric, Temporality, Value};
use tlm::ndjson::{encode, Decoder};

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        Just(0.5),
        Just(-0.0),
        Just(1e300)
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::U64),
        (i64::MIN..0i64).prop_map(Value::I64),
        finite().prop_map(Value::F64),
        Just(Value::F64(f64::INFINITY)),
        Just(Value::U64(u64::MAX)),
        Just(Value::U64((1 << 53) + 1)),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z._]{1,12}",
        "\\PC{0,8}",
        Just("q\"\\\n\t\u{1}é😀".to_owned())
    ]
}

fn metric() -> impl Strategy<Value = Metric> {
    let kind = prop::sample::select(Kind::ALL.to_vec());
    let tags = prop::collection::btree_map(text(), text(), 0..4);
    (
        kind,
        text().prop_filter("non-empty", |s| !s.is_empty()),
        value(),
        any::<i64>(),
        tags,
        prop::collection::vec(finite(), 0..4),
        "[a-zA-Z{}/]{0,4}",
    )
        .prop_map(|(kind, name, value, ts, tags, floats, unit)| {
            let mut m = Metric {
                name,
                kind,
                ts,
                unit,
                ..Metric::default()
            };
            for (k, v) in &tags {
                m.tags.push(k, v);
            }
            m.tags.normalize();
            match kind {
                Kind::Counter | Kind::Gauge => {
                    m.value = Some(value);
                    if kind == Kind::Counter {
                        m.temporality = Some(if ts % 2 == 0 {
                            Temporality::Delta
                        } else {
                            Temporality::Cumulative
                        });
                        m.start_ts = Some(ts / 2);
                    }
                }
                Kind::Distribution => {
                    m.values = floats;
                    m.sample_rate = Some(0.25);
                }
                Kind::Set => tags.keys().for_each(|k| m.members.push(k)),
                Kind::Histogram => {
                    m.temporality = Some(Temporality::Delta);
                    m.bounds = vec![1.0, 2.5];
                    m.counts = vec![1, 0, u64::MAX];
                    m.sum = floats.first().copied();
                }
                Kind::Summary => {
                    m.temporality = Some(Temporality::Cumulative);
                    m.count = Some(7);
                    m.quantiles = floats.iter().map(|&v| (0.5, v)).collect();
                    (m.min, m.max) = (Some(-1.0), Some(f64::INFINITY));
                }
            }
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_then_decode_is_identity(m in metric()) {
        let mut line = Vec::new();
        encode(&m, &mut line);
        prop_assert_eq!(line.last(), Some(&b'\n'));
        let mut back = Metric::default();
        Decoder::default().decode(&line[..line.len() - 1], &mut back, || 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &m);
    }

    #[test]
    fn lines_are_json_an_independent_parser_accepts(m in metric()) {
        let mut line = Vec::new();
        encode(&m, &mut line);
        let v: serde_json::Value = serde_json::from_slice(&line).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(v["name"].as_str(), Some(m.name.as_str()));
        if let Some(Value::U64(u)) = m.value {
            prop_assert_eq!(v["value"].to_string(), u.to_string());
        }
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut m = Metric::default();
        let _ = Decoder::default().decode(&bytes, &mut m, || 0);
    }

    #[test]
    fn decoder_never_panics_on_mutated_lines(m in metric(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut line = Vec::new();
        encode(&m, &mut line);
        let i = at.index(line.len());
        line[i] = byte;
        let mut out = Metric::default();
        let _ = Decoder::default().decode(&line, &mut out, || 0);
    }

    #[test]
    fn unknown_fields_survive_a_round_trip(extra in "[a-z]{1,6}", n in any::<i32>()) {
        prop_assume!(!["name","kind","temporality","unit","value","values","sample_rate","bounds","counts","quantiles","count","sum","min","max","ts","start_ts","tags"].contains(&extra.as_str()));
        let line = format!(r#"{{"name":"x","kind":"gauge","value":1,"ts":5,"{extra}":[{n},{{"a":null}}]}}"#);
        let mut m = Metric::default();
        Decoder::default().decode(line.as_bytes(), &mut m, || 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut out = Vec::new();
        encode(&m, &mut out);
        prop_assert_eq!(String::from_utf8(out).unwrap(), format!("{line}\n"));
    }
}

#[test]
fn integers_above_2_pow_53_stay_exact() {
    for v in [(1u64 << 53) + 1, 12345678901234567890, u64::MAX] {
        let line = format!(
            r#"{{"name":"c","kind":"counter","temporality":"cumulative","value":{v},"ts":1}}"#
        );
        let mut m = Metric::default();
        Decoder::default()
            .decode(line.as_bytes(), &mut m, || 0)
            .unwrap();
        assert_eq!(m.value, Some(Value::U64(v)));
        let mut out = Vec::new();
        encode(&m, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), format!("{line}\n"));
    }
}
