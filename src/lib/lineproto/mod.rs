//! Parsers of other systems' line formats into tlm metrics, for sources that read them
//! (`tlm-collect exec`): Graphite plaintext and InfluxDB line protocol; statsd lines are
//! `statsd::parse`, Prometheus text `collect::prom_text`.

pub mod detect;
pub mod graphite;
pub mod influx;

use crate::metric::Value;

/// A number as text into a `Value`, integers exact: `5` → U64, `-5` → I64, else F64
/// (`NaN`, `inf` included); `None` when it is not a number.
pub fn number(text: &str) -> Option<Value> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if text.starts_with('-') {
            if let Ok(i) = text.parse::<i64>() {
                return Some(Value::I64(i));
            }
        } else if let Ok(u) = text.parse::<u64>() {
            return Some(Value::U64(u));
        }
    }
    text.parse::<f64>().ok().map(Value::F64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_integers_exact() {
        assert_eq!(number("18446744073709551615"), Some(Value::U64(u64::MAX)));
        assert_eq!(number("-9223372036854775808"), Some(Value::I64(i64::MIN)));
        assert_eq!(number("-0"), Some(Value::I64(0)));
        assert_eq!(
            number("18446744073709551616"),
            Some(Value::F64(18446744073709551616.0))
        );
        assert_eq!(number("1.5e3"), Some(Value::F64(1500.0)));
        assert!(matches!(number("NaN"), Some(Value::F64(f)) if f.is_nan()));
        assert_eq!(number("1,5"), None);
        assert_eq!(number(""), None);
    }
}
