//! Time: Unix nanoseconds, RFC 3339 in and out, human durations (`10s`, `0.01s`, `1m30s`).

use std::time::{SystemTime, UNIX_EPOCH};

pub const NS_PER_SEC: i64 = 1_000_000_000;

/// Wall-clock time as Unix nanoseconds.
pub fn now_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        Err(e) => -(e.duration().as_nanos() as i64),
    }
}

/// The start of the interval of length `len` that holds `ts`, aligned to the Unix epoch.
pub fn align_down(ts: i64, len: i64) -> i64 {
    ts.div_euclid(len) * len
}

/// Parses `10s`, `500ms`, `0.01s`, `1m30s`, `2h`, `1d`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return secs_to_ns(secs, text);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration `{text}`: missing unit"))?;
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(format!(
                "duration `{text}`: expected a number and a unit, e.g. 10s, 500ms, 1m30s"
            ));
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("duration `{text}`: bad number `{num}`"))?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => {
                return Err(format!(
                    "duration `{text}`: unknown unit `{unit}` (ns, us, ms, s, m, h, d)"
                ))
            }
        };
        total += n * scale;
        rest = next;
    }
    secs_to_ns(total, text)
}

fn secs_to_ns(secs: f64, text: &str) -> Result<i64, String> {
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("duration `{text}` is out of range"));
    }
    Ok((secs * 1e9).round() as i64)
}

/// clap value parser for durations, in nanoseconds.
pub fn duration_arg(text: &str) -> Result<i64, String> {
    let ns = parse_duration(text)?;
    if ns <= 0 {
        return Err(format!("duration `{text}` must be greater than zero"));
    }
    Ok(ns)
}

// Days from civil date, after Howard Hinnant's algorithm (proleptic Gregorian, UTC).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |acc, &c| acc * 10 + (c - b'0') as i64))
}

/// Parses an RFC 3339 timestamp (`2026-01-01T00:00:00.123Z`, `…+02:00`) to Unix nanoseconds.
pub fn parse_rfc3339(s: &[u8]) -> Option<i64> {
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let (hour, min, sec) = (
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if s[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return None;
        }
        for (n, &c) in frac.iter().take(9).enumerate() {
            frac_ns += (c - b'0') as i64 * 10i64.pow(8 - n as u32);
        }
    }
    let offset_secs = match s.get(i..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let off = digits(&[*h1, *h2])? * 3600 + digits(&[*m1, *m2])? * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86400 + hour * 3600 + min * 60 + sec - offset_secs;
    secs.checked_mul(NS_PER_SEC)?.checked_add(frac_ns)
}

/// Formats Unix nanoseconds as RFC 3339 UTC with millisecond precision (log lines).
pub fn format_rfc3339_ms(ns: i64) -> String {
    let secs = ns.div_euclid(NS_PER_SEC);
    let ms = ns.rem_euclid(NS_PER_SEC) / 1_000_000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86400));
    let sod = secs.rem_euclid(86400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(10 * NS_PER_SEC));
        assert_eq!(parse_duration("0.01s"), Ok(10_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90 * NS_PER_SEC));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("2"), Ok(2 * NS_PER_SEC));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("").is_err());
        assert!(duration_arg("0s").is_err());
    }

    #[test]
    fn rfc3339_round_trip_known_instants() {
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339(b"2026-01-01T00:00:00.123456789Z"),
            Some(1_767_225_600_123_456_789)
        );
        assert_eq!(
            parse_rfc3339(b"2026-01-01T02:00:00+02:00"),
            Some(1_767_225_600 * NS_PER_SEC)
        );
        assert_eq!(parse_rfc3339(b"2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339(b"2026-01-01T00:00:00"), None);
        assert_eq!(
            format_rfc3339_ms(1_767_225_600_123_456_789),
            "2026-01-01T00:00:00.123Z"
        );
    }

    #[test]
    fn civil_conversions_agree() {
        for days in [-800_000i64, -1, 0, 1, 19_000, 20_454, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn align_down_handles_negative() {
        assert_eq!(align_down(15, 10), 10);
        assert_eq!(align_down(-5, 10), -10);
    }
}
