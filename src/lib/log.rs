//! Structured logs on stderr: `key=value` lines (or JSON objects with `--log-format json`).
//!
//! `ts=2026-01-01T00:00:00.000Z level=warn tool=tlm-agg event=bad_line line=42 reason="…"`

use crate::time::{format_rfc3339_ms, now_ns};
use std::fmt::{Display, Write as _};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0 | 1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            _ => Level::Trace,
        }
    }

    /// The level after `-v` (more) and `-q` (less) adjustments of a base level.
    pub fn adjusted(self, verbose: u8, quiet: u8) -> Level {
        Level::from_u8(
            (self as u8)
                .saturating_add(verbose)
                .saturating_sub(quiet)
                .max(1),
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Kv,
    Json,
}

static TOOL: OnceLock<&'static str> = OnceLock::new();
static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static FORMAT: AtomicU8 = AtomicU8::new(0);

/// Sets the tool name, level and format once at start-up.
pub fn init(tool: &'static str, level: Level, format: Format) {
    let _ = TOOL.set(tool);
    LEVEL.store(level as u8, Ordering::Relaxed);
    FORMAT.store(matches!(format, Format::Json) as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

fn tool() -> &'static str {
    TOOL.get().copied().unwrap_or("tlm")
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.bytes()
            .any(|b| b <= b' ' || b == b'"' || b == b'=' || b == b'\\' || b >= 0x7f)
}

fn push_kv_value(line: &mut String, v: &str) {
    if !needs_quotes(v) {
        line.push_str(v);
        return;
    }
    line.push('"');
    for c in v.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

fn push_json_value(line: &mut String, v: &str) {
    let numeric =
        !v.is_empty() && v.parse::<f64>().is_ok_and(f64::is_finite) && !v.starts_with('+');
    if numeric {
        line.push_str(v);
        return;
    }
    push_json_string(line, v);
}

fn push_json_string(line: &mut String, v: &str) {
    let mut buf = Vec::with_capacity(v.len() + 2);
    crate::ndjson::encode::write_str(&mut buf, v);
    line.push_str(&String::from_utf8_lossy(&buf));
}

/// Renders one log line (without the newline).
pub fn render(level: Level, event: &str, fields: &[(&str, &dyn Display)]) -> String {
    let ts = format_rfc3339_ms(now_ns());
    render_with(Some(&ts), level, event, fields)
}

/// Renders a log line written later from a signal handler, where the time cannot be
/// read and formatted: it has no `ts`.
pub fn render_untimed(level: Level, event: &str, fields: &[(&str, &dyn Display)]) -> String {
    render_with(None, level, event, fields)
}

fn render_with(
    ts: Option<&str>,
    level: Level,
    event: &str,
    fields: &[(&str, &dyn Display)],
) -> String {
    let json = FORMAT.load(Ordering::Relaxed) == 1;
    let ts = ts.unwrap_or_default();
    let base: [(&str, &dyn Display); 4] = [
        ("ts", &ts),
        ("level", &level.as_str()),
        ("tool", &tool()),
        ("event", &event),
    ];
    let skip = usize::from(ts.is_empty());
    let base = &base[skip..];
    let mut line = String::with_capacity(128);
    if json {
        line.push('{');
    }
    for (i, (k, v)) in base.iter().chain(fields.iter()).enumerate() {
        let text = v.to_string();
        if json {
            if i > 0 {
                line.push(',');
            }
            push_json_string(&mut line, k);
            line.push(':');
            if i < base.len() {
                push_json_string(&mut line, &text);
            } else {
                push_json_value(&mut line, &text);
            }
        } else {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(k);
            line.push('=');
            push_kv_value(&mut line, &text);
        }
    }
    if json {
        line.push('}');
    }
    line
}

/// Writes one log line if `level` is enabled. Errors writing stderr are ignored on purpose:
/// a closed stderr must never stop the data path.
pub fn emit(level: Level, event: &str, fields: &[(&str, &dyn Display)]) {
    if !enabled(level) {
        return;
    }
    let mut line = render(level, event, fields);
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `log!(Warn, "bad_line", line = 42, reason = "x")`
#[macro_export]
macro_rules! log {
    ($level:ident, $event:expr $(, $key:ident = $val:expr)* $(,)?) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::emit(
                $crate::log::Level::$level,
                $event,
                &[$((stringify!($key), &$val as &dyn ::std::fmt::Display)),*],
            );
        }
    };
}

/// A token bucket that lets a burst of log lines through, then one per interval, and counts
/// what it held back so the next line it lets through can say `suppressed=N`.
#[derive(Debug)]
pub struct RateLimit {
    burst: u32,
    tokens: u32,
    interval_ns: i64,
    last_refill: i64,
    suppressed: u64,
}

impl RateLimit {
    pub fn new(burst: u32, interval_ns: i64) -> RateLimit {
        RateLimit {
            burst,
            tokens: burst,
            interval_ns,
            last_refill: now_ns(),
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be written (n = lines held back since the last one).
    pub fn allow_at(&mut self, now: i64) -> Option<u64> {
        let earned = (now - self.last_refill) / self.interval_ns;
        if earned > 0 {
            self.tokens = self.burst.min(self.tokens.saturating_add(earned as u32));
            self.last_refill += earned * self.interval_ns;
        }
        if self.tokens == 0 {
            self.suppressed += 1;
            return None;
        }
        self.tokens -= 1;
        Some(std::mem::take(&mut self.suppressed))
    }

    pub fn allow(&mut self) -> Option<u64> {
        self.allow_at(now_ns())
    }

    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new(10, crate::time::NS_PER_SEC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_quotes_only_when_needed() {
        let line = render(
            Level::Warn,
            "bad_line",
            &[("line", &42), ("reason", &"bad \"x\"")],
        );
        assert!(line.contains("level=warn"), "{line}");
        assert!(
            line.contains("event=bad_line line=42 reason=\"bad \\\"x\\\"\""),
            "{line}"
        );
    }

    #[test]
    fn rate_limit_bursts_then_counts() {
        let mut r = RateLimit::new(2, 1000);
        let t0 = r.last_refill;
        assert_eq!(r.allow_at(t0), Some(0));
        assert_eq!(r.allow_at(t0), Some(0));
        assert_eq!(r.allow_at(t0), None);
        assert_eq!(r.allow_at(t0), None);
        assert_eq!(r.allow_at(t0 + 1000), Some(2));
    }

    #[test]
    fn levels_adjust() {
        assert_eq!(Level::Info.adjusted(1, 0), Level::Debug);
        assert_eq!(Level::Info.adjusted(0, 5), Level::Error);
    }
}
