//! `tlm-statsd` flags.

use super::common::{LogArgs, Tool};
use crate::agg::config::Style;
use crate::agg::etsy;
use crate::agg::{AggConfig, Idle, Limits};
use crate::error::{Error, Result};
use crate::statsd::listen::Endpoint;
use crate::statsd::server::Config;
use crate::statsd::Sanitize;
use crate::time::duration_arg;
use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  # A statsd server on the default port, flushing every 10 s to Graphite
  tlm-statsd | tlm-publish --format graphite

  # UDP on IPv4 and IPv6, TCP, and the local datagram socket; 4 receive threads
  tlm-statsd --listen udp://0.0.0.0:8125 --listen udp://[::]:8125 \\
             --listen tcp://127.0.0.1:8125 --listen unix:///run/tlm-statsd.sock --workers 4

  # What Etsy statsd sends Graphite, under the same names (dashboards keep working)
  tlm-statsd --style statsd --percent-threshold 90,99 | tlm-publish --format graphite

  # Signed packets (Brubeck statsd-secure) with the key in a file, plus the operator API
  tlm-statsd --secure-listen udp://127.0.0.1:9126 --hmac-key-file /etc/tlm/statsd.key \\
             --http 127.0.0.1:8126

  # statsd lines from a log pipe; flushes the rest at end of input
  tail -F app.log | grep -o 'app\\.[a-z.]*:[0-9]*|ms' | tlm-statsd --stdin --flush 1s";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SanitizeArg {
    /// Etsy statsd's rule: whitespace becomes `_`, `/` becomes `-`, other bytes than
    /// letters, digits, `_`, `-`, `.` are dropped
    Etsy,
    /// Keep names as sent (they must be UTF-8)
    None,
}

/// A statsd server: UDP, TCP, unix datagram and stdin listeners, signed packets, an
/// operator's HTTP API; flushes tlm metric v1 on stdout.
///
/// Accepts Etsy statsd, Brubeck and DogStatsD lines: NAME:VALUE|TYPE[|@RATE][|#TAGS][|TUNIX]
/// with c, ms, h, d, g (+N/-N change a gauge, =N sets it, so =-5 sets a negative value),
/// s and C (monotonic counter). Every --flush interval, aligned to the wall clock, writes
/// the interval's aggregate: counters as delta sums with NAME.rate, timers and
/// distributions as summaries with --quantiles, gauges, set sizes; or Etsy's own stat set
/// with --style statsd. SIGTERM and SIGINT flush what was received, then exit 0; SIGUSR2
/// writes every known series to --dump-file.
#[derive(Parser, Debug, Clone)]
#[command(name = "tlm-statsd", version, after_help = EXAMPLES, after_long_help = format!("{EXAMPLES}\n\n{}", super::exit_status_help()))]
pub struct StatsdArgs {
    /// Where to listen: udp://HOST:PORT, tcp://HOST:PORT, unix://PATH (repeatable; IPv6 as
    /// udp://[::1]:8125). Default udp://127.0.0.1:8125 unless --stdin or --secure-listen
    #[arg(
        long,
        env = "TLM_STATSD_LISTEN",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub listen: Vec<String>,

    /// Read statsd lines from standard input; end of input flushes and exits
    #[arg(long, env = "TLM_STATSD_STDIN")]
    pub stdin: bool,

    /// Receive threads per UDP listener, each with its own SO_REUSEPORT socket
    #[arg(long, env = "TLM_STATSD_WORKERS", value_name = "N")]
    pub workers: Option<usize>,

    /// Receive buffer to ask for per socket, in bytes (K, M, G suffixes); what the kernel
    /// grants is logged
    #[arg(long, env = "TLM_STATSD_RCVBUF", default_value = "32M", value_parser = size_arg, value_name = "BYTES")]
    pub rcvbuf: usize,

    /// Flush interval (and aggregation window), aligned to the wall clock
    #[arg(long, env = "TLM_STATSD_FLUSH", default_value = "10s", value_parser = duration_arg, value_name = "DURATION")]
    pub flush: i64,

    /// Name sanitizing
    #[arg(long, env = "TLM_STATSD_SANITIZE", value_enum, default_value = "etsy")]
    pub sanitize: SanitizeArg,

    /// Refuse new series beyond this many (counted and logged), bounding memory
    #[arg(long, env = "TLM_STATSD_MAX_SERIES", value_name = "N")]
    pub max_series: Option<usize>,

    /// Quantiles of timers and distributions, comma-separated, each in [0, 1]
    #[arg(
        long,
        env = "TLM_STATSD_QUANTILES",
        value_delimiter = ',',
        default_value = "0.5,0.9,0.99"
    )]
    pub quantiles: Vec<f64>,

    /// Write timers as histograms with these bucket upper bounds instead of summaries
    #[arg(
        long,
        env = "TLM_STATSD_BUCKETS",
        value_delimiter = ',',
        allow_negative_numbers = true,
        value_name = "BOUND,…"
    )]
    pub buckets: Option<Vec<f64>>,

    /// Timer values per series and flush kept for exact quantiles; beyond, a sketch with
    /// --sketch-error relative error (lines marked "estimated":true)
    #[arg(
        long,
        env = "TLM_STATSD_EXACT_LIMIT",
        default_value_t = 2048,
        value_name = "N"
    )]
    pub exact_limit: usize,

    /// Relative error bound of the quantile sketch
    #[arg(
        long,
        env = "TLM_STATSD_SKETCH_ERROR",
        default_value_t = 0.01,
        value_name = "FRACTION"
    )]
    pub sketch_error: f64,

    /// Set members per series and flush counted exactly; beyond, HyperLogLog
    #[arg(
        long,
        env = "TLM_STATSD_SET_LIMIT",
        default_value_t = 100_000,
        value_name = "N"
    )]
    pub set_limit: usize,

    /// Output style: tlm metrics, or Etsy statsd's names and values (stats.X, stats_counts.X,
    /// stats.timers.X.upper_90, stats.gauges.X, stats.sets.X.count)
    #[arg(long, env = "TLM_STATSD_STYLE", value_enum, default_value = "tlm")]
    pub style: Style,

    /// statsd style: Etsy's percentThreshold, comma-separated, each in [-100, 100]
    #[arg(
        long,
        env = "TLM_STATSD_PERCENT_THRESHOLD",
        value_delimiter = ',',
        default_value = "90",
        allow_negative_numbers = true,
        value_name = "P,…"
    )]
    pub percent_threshold: Vec<f64>,

    /// statsd style: Etsy's graphite.legacyNamespace (false: stats.counters.X.rate|count)
    #[arg(long, env = "TLM_STATSD_LEGACY_NAMESPACE", default_value = "true", value_name = "BOOL", action = clap::ArgAction::Set, value_parser = clap::value_parser!(bool))]
    pub legacy_namespace: bool,

    /// Write a series only in flushes in which it got data (Etsy's deleteIdleStats). By
    /// default, as Etsy does, a series seen before is written every flush: counters 0,
    /// timers count 0, gauges their last value, sets 0
    #[arg(long, env = "TLM_STATSD_DELETE_IDLE")]
    pub delete_idle: bool,

    /// Forget a series after this long without data (Brubeck's expire): it is no longer
    /// written, and a later +N gauge starts from 0
    #[arg(long, env = "TLM_STATSD_EXPIRE", value_parser = duration_arg, value_name = "DURATION", conflicts_with = "delete_idle")]
    pub expire: Option<i64>,

    /// Listen for Brubeck statsd-secure signed datagrams (HMAC-SHA256) here (repeatable)
    #[arg(
        long,
        env = "TLM_STATSD_SECURE_LISTEN",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub secure_listen: Vec<String>,

    /// The HMAC key for signed datagrams: the file's bytes as they are (a trailing newline
    /// is part of the key)
    #[arg(long, env = "TLM_STATSD_HMAC_KEY_FILE", value_name = "FILE")]
    pub hmac_key_file: Option<PathBuf>,

    /// Signed datagrams older than this are refused (and newer than now)
    #[arg(long, env = "TLM_STATSD_MAX_DRIFT", default_value = "3s", value_parser = duration_arg, value_name = "DURATION")]
    pub max_drift: i64,

    /// Serve the operator's HTTP API here: GET /ping, /stats, /metric/NAME;
    /// POST /expire/NAME, /metrics (Funnel agent JSON)
    #[arg(long, env = "TLM_STATSD_HTTP", value_name = "HOST:PORT")]
    pub http: Option<SocketAddr>,

    /// Where SIGUSR2 writes every known series with its kind, as NDJSON
    #[arg(long, env = "TLM_STATSD_DUMP_FILE", value_name = "FILE")]
    pub dump_file: Option<PathBuf>,

    /// Also write tlm-statsd's own counts each flush (statsd.lines, statsd.bad_lines by
    /// reason, statsd.kernel_drops, statsd.flush_seconds, statsd.series)
    #[arg(long, env = "TLM_STATSD_SELF_METRICS")]
    pub self_metrics: bool,

    #[command(flatten)]
    pub log: LogArgs,
}

/// `32M`, `512K`, `1G` or plain bytes.
pub fn size_arg(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim().trim_end_matches(['B', 'b']).trim_end_matches('i');
    let (digits, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1usize << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size (e.g. 4194304, 512K, 32M)"))
}

impl StatsdArgs {
    pub fn config(&self) -> Result<Config> {
        let mut listen = self
            .listen
            .iter()
            .map(|s| Endpoint::parse(s))
            .collect::<Result<Vec<_>>>()?;
        if listen.is_empty() && !self.stdin && self.secure_listen.is_empty() {
            listen.push(Endpoint::parse("udp://127.0.0.1:8125")?);
        }
        let secure_listen = self
            .secure_listen
            .iter()
            .map(|s| match Endpoint::parse(s)? {
                Endpoint::Udp(a) => Ok(a),
                _ => Err(Error::usage(format!(
                    "--secure-listen {s}: signed packets come over udp://"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        let hmac_key = match (&self.hmac_key_file, secure_listen.is_empty()) {
            (Some(f), _) => Some(crate::statsd::secure::read_key_file(f)?),
            (None, false) => return Err(Error::usage("--secure-listen needs --hmac-key-file")),
            (None, true) => None,
        };
        if self.flush < crate::time::NS_PER_SEC / 10 {
            return Err(Error::usage("--flush must be at least 100ms"));
        }
        let workers = self
            .workers
            .unwrap_or_else(crate::stream::default_threads)
            .clamp(1, 64);
        Ok(Config {
            listen,
            secure_listen,
            hmac_key,
            max_drift_secs: (self.max_drift / crate::time::NS_PER_SEC).max(0) as u64,
            stdin: self.stdin,
            workers,
            rcvbuf: self.rcvbuf,
            flush: self.flush,
            agg: self.agg_config()?,
            sanitize: match self.sanitize {
                SanitizeArg::Etsy => Sanitize::Etsy,
                SanitizeArg::None => Sanitize::None,
            },
            http: self.http,
            dump_file: self.dump_file.clone(),
            self_metrics: self.self_metrics,
        })
    }

    fn agg_config(&self) -> Result<AggConfig> {
        let cfg = AggConfig {
            window: self.flush,
            quantiles: self.quantiles.clone(),
            rate: true,
            max_series: self.max_series.unwrap_or(usize::MAX),
            limits: Limits::new(
                self.exact_limit,
                self.set_limit,
                self.sketch_error,
                self.buckets.as_deref(),
            ),
            style: self.style,
            statsd: etsy::Options::new(&self.percent_threshold, self.legacy_namespace)?,
            idle: if self.delete_idle {
                Idle::Skip
            } else {
                Idle::Report {
                    expire: self.expire,
                }
            },
            rate_per_window: true,
            ..AggConfig::default()
        };
        cfg.check()?;
        Ok(cfg)
    }
}

impl Tool for StatsdArgs {
    const NAME: &'static str = "tlm-statsd";
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(size_arg("32M"), Ok(32 << 20));
        assert_eq!(size_arg("512KiB"), Ok(512 << 10));
        assert_eq!(size_arg("4096"), Ok(4096));
        assert!(size_arg("lots").is_err());
    }

    #[test]
    fn default_listener_unless_stdin() {
        let a = StatsdArgs::try_parse_from(["tlm-statsd"]).unwrap();
        assert_eq!(a.config().unwrap().listen.len(), 1);
        let a = StatsdArgs::try_parse_from(["tlm-statsd", "--stdin"]).unwrap();
        assert!(a.config().unwrap().listen.is_empty());
        let a = StatsdArgs::try_parse_from(["tlm-statsd", "--secure-listen", "udp://127.0.0.1:1"])
            .unwrap();
        assert!(a.config().is_err(), "a signed listener needs a key");
    }
}
