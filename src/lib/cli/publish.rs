//! `tlm-publish` flags.

use super::common::{InputArgs, LogArgs, Tool};
use crate::encode::Format;
use crate::error::{Error, Result};
use crate::publish::target::Target;
use crate::publish::Options;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  # Aggregate per 10 s and deliver to Graphite and InfluxDB at once
  tlm-collect system --interval 1s | tlm-agg --window 10s \\
    | tlm-publish graphite://127.0.0.1:2003 influx://127.0.0.1:8086/tlm

  # Ride out backend outages on disk; replay in order when it is back
  tlm-publish --spool /var/spool/tlm --spool-max 1GiB graphite://carbon:2003 < metrics.ndjson

  # Prometheus remote_write (delta counters need `tlm-agg --cumulative` first)
  tlm-agg --window 15s --cumulative | tlm-publish prometheus://127.0.0.1:9090/api/v1/write

  # Relay to a statsd server with signed datagrams (Brubeck statsd-secure)
  tlm-publish --hmac-key-file /etc/tlm/statsd.key statsd://10.0.0.5:8125 < raw.ndjson

  # A scrape endpoint for Prometheus, and a Pushgateway group
  tlm-agg --window 10s --cumulative | tlm-publish --serve 127.0.0.1:9102 pushgateway://127.0.0.1:9091/job/edge

  # Show the exact payloads without sending anything
  tlm-publish --dry-run influx://127.0.0.1:8086/tlm < metrics.ndjson

  # No destination: write a format to stdout
  tlm-publish --format graphite < metrics.ndjson";

/// Deliver tlm metrics to Graphite, InfluxDB, Prometheus, OpenTSDB, statsd, HTTP and files.
///
/// Reads tlm metric v1 lines (stdin, or --input files and quoted globs) and delivers every
/// metric to every DESTINATION, each with its own batches, queue and retries: batches are
/// retried with exponential backoff and jitter, held in memory up to --buffer and on disk in
/// --spool beyond it (replayed in order when the backend returns, also by the next run), and
/// at end of input or SIGTERM delivered within --drain-timeout or spooled. TCP protocols
/// without acknowledgements (Graphite, OpenTSDB telnet) resend a replay window after a
/// reconnect. Counters sent, retried, spooled, replayed, resent, rejected, dropped per
/// destination are logged at the end and on SIGUSR1. Exit status 69 if any point was lost.
///
/// Destinations: graphite://HOST[:2003] (plaintext, `?tags=`), graphite+pickle://HOST[:2004],
/// graphite+udp://HOST[:2003], influx://HOST[:8086]/DB (`?rp=&user=&password-file=&create=&precision=`),
/// influx2://HOST[:8086]?org=O&bucket=B&token-file=F, prometheus://HOST[:9090][/api/v1/write],
/// pushgateway://HOST[:9091]/job/NAME[/LABEL/VALUE] (latest value per series, each --linger),
/// opentsdb://HOST[:4242] (HTTP /api/put), opentsdb+telnet://HOST[:4242],
/// statsd://HOST[:8125] (`?hmac-key-file=&mtu=&timer=ms|h|d&tags=`), http(s)://HOST/PATH
/// (`?format=ndjson|json|…&method=&token-file=`), file:PATH (`?format=&rotate-size=&rotate-every=`).
/// Every destination also takes `?batch=&linger=&concurrency=&timeout=&name=`.
/// With no destination (and no --serve), metrics go to stdout in --format. --serve ADDR
/// answers Prometheus scrapes with the latest value of every series.
#[derive(Parser, Debug, Clone)]
#[command(name = "tlm-publish", version, after_help = EXAMPLES, after_long_help = format!("{EXAMPLES}\n\n{}", super::exit_status_help()))]
pub struct PublishArgs {
    /// Where to deliver (see above); none: stdout in --format
    #[arg(value_name = "DESTINATION")]
    pub destinations: Vec<String>,

    /// Output format on stdout, and for file: destinations without ?format=
    #[arg(
        short,
        long,
        env = "TLM_PUBLISH_FORMAT",
        value_enum,
        default_value = "ndjson"
    )]
    pub format: Format,

    /// Input file or quoted glob (repeatable, read in order); stdin when none or `-`
    #[arg(
        short,
        long = "input",
        env = "TLM_PUBLISH_INPUT",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub inputs: Vec<String>,

    /// Points per batch (one request, frame or write)
    #[arg(long, env = "TLM_PUBLISH_BATCH", default_value_t = 5000, value_name = "N", help_heading = "Delivery", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,

    /// Longest a batch waits to fill before it is sent
    #[arg(long, env = "TLM_PUBLISH_LINGER", default_value = "1s", value_name = "DURATION", help_heading = "Delivery", value_parser = crate::time::duration_arg)]
    pub linger: i64,

    /// Lanes per destination sending in parallel; each series stays on one lane, in order
    #[arg(long, env = "TLM_PUBLISH_CONCURRENCY", default_value_t = 1, value_name = "N", help_heading = "Delivery", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Connect, write and request timeout
    #[arg(long, env = "TLM_PUBLISH_TIMEOUT", default_value = "10s", value_name = "DURATION", help_heading = "Delivery", value_parser = crate::time::duration_arg)]
    pub timeout: i64,

    /// Failed attempts before a destination's queue moves from memory to --spool
    #[arg(
        long,
        env = "TLM_PUBLISH_RETRIES",
        default_value_t = 5,
        value_name = "N",
        help_heading = "Delivery"
    )]
    pub retries: u32,

    /// First retry delay; it doubles per attempt (with jitter) up to --max-backoff
    #[arg(long, env = "TLM_PUBLISH_BACKOFF", default_value = "200ms", value_name = "DURATION", help_heading = "Delivery", value_parser = crate::time::duration_arg)]
    pub backoff: i64,

    /// Longest delay between retries
    #[arg(long, env = "TLM_PUBLISH_MAX_BACKOFF", default_value = "30s", value_name = "DURATION", help_heading = "Delivery", value_parser = crate::time::duration_arg)]
    pub max_backoff: i64,

    /// Memory for batches waiting per destination; without --spool, input waits when full
    #[arg(long, env = "TLM_PUBLISH_BUFFER", default_value = "256MiB", value_name = "SIZE", help_heading = "Delivery", value_parser = size_arg)]
    pub buffer: u64,

    /// Directory for batches that do not fit in memory or outlast --retries; replayed in order
    #[arg(
        long,
        env = "TLM_PUBLISH_SPOOL",
        value_name = "DIR",
        help_heading = "Delivery"
    )]
    pub spool: Option<PathBuf>,

    /// Disk budget per destination; beyond it batches are dropped and logged as errors
    #[arg(long, env = "TLM_PUBLISH_SPOOL_MAX", default_value = "1GiB", value_name = "SIZE", help_heading = "Delivery", value_parser = size_arg)]
    pub spool_max: u64,

    /// At end of input or SIGTERM, how long to keep delivering before spooling (or losing) the rest
    #[arg(long, env = "TLM_PUBLISH_DRAIN_TIMEOUT", default_value = "30s", value_name = "DURATION", help_heading = "Delivery", value_parser = crate::time::duration_arg)]
    pub drain_timeout: i64,

    /// How much recently sent data TCP destinations resend after a reconnect (0s: none)
    #[arg(long, env = "TLM_PUBLISH_REPLAY_WINDOW", default_value = "30s", value_name = "DURATION", help_heading = "Delivery", value_parser = crate::time::parse_duration)]
    pub replay_window: i64,

    /// Upper bound on the replay window's memory per lane
    #[arg(long, env = "TLM_PUBLISH_REPLAY_MAX", default_value = "64MiB", value_name = "SIZE", help_heading = "Delivery", value_parser = size_arg)]
    pub replay_max: u64,

    /// Serve the latest value of every series for Prometheus to scrape at http://ADDR/metrics
    #[arg(
        long,
        env = "TLM_PUBLISH_SERVE",
        value_name = "ADDR",
        help_heading = "Delivery"
    )]
    pub serve: Option<String>,

    /// Drop a series from --serve when no new value came for this long
    #[arg(long, env = "TLM_PUBLISH_SERVE_TTL", default_value = "5m", value_name = "DURATION", help_heading = "Delivery", value_parser = crate::time::duration_arg)]
    pub serve_ttl: i64,

    /// Print each payload exactly as it would be sent, to stdout, and send nothing
    #[arg(long, env = "TLM_PUBLISH_DRY_RUN", help_heading = "Delivery")]
    pub dry_run: bool,

    /// Extra header for http(s):// destinations, `NAME: VALUE` (repeatable)
    #[arg(long = "header", short = 'H', env = "TLM_PUBLISH_HEADER", value_name = "NAME: VALUE", help_heading = "Credentials", value_parser = header_arg)]
    pub headers: Vec<(String, String)>,

    /// File holding a bearer token (InfluxDB 2: its API token) for HTTP destinations
    #[arg(
        long,
        env = "TLM_PUBLISH_TOKEN_FILE",
        value_name = "FILE",
        help_heading = "Credentials"
    )]
    pub token_file: Option<PathBuf>,

    /// Key file for signing statsd:// datagrams (Brubeck statsd-secure HMAC-SHA256)
    #[arg(
        long,
        env = "TLM_PUBLISH_HMAC_KEY_FILE",
        value_name = "FILE",
        help_heading = "Credentials"
    )]
    pub hmac_key_file: Option<PathBuf>,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

fn size_arg(text: &str) -> std::result::Result<u64, String> {
    crate::publish::build::parse_size(text)
}

fn header_arg(text: &str) -> std::result::Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or(format!("header `{text}`: expected `NAME: VALUE`"))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(format!("header `{text}`: bad name"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

fn duration(ns: i64) -> Duration {
    Duration::from_nanos(ns.max(0) as u64)
}

impl PublishArgs {
    /// The destinations, parsed and checked.
    pub fn targets(&self) -> Result<Vec<Target>> {
        self.destinations.iter().map(|d| Target::parse(d)).collect()
    }

    pub fn options(&self) -> Result<Options> {
        if self.backoff > self.max_backoff {
            return Err(Error::usage("--backoff must not exceed --max-backoff"));
        }
        Ok(Options {
            batch: self.batch as usize,
            linger: duration(self.linger),
            concurrency: self.concurrency as usize,
            timeout: duration(self.timeout),
            retries: self.retries,
            backoff_min: duration(self.backoff),
            backoff_max: duration(self.max_backoff),
            buffer_bytes: self.buffer as usize,
            spool: self.spool.clone(),
            spool_max: self.spool_max,
            drain_timeout: duration(self.drain_timeout),
            replay_window: duration(self.replay_window),
            replay_bytes: self.replay_max as usize,
            headers: self.headers.clone(),
            token_file: self.token_file.clone(),
            hmac_key_file: self.hmac_key_file.clone(),
            dry_run: self.dry_run,
            format: self.format,
            serve: self.serve.clone(),
            serve_ttl: duration(self.serve_ttl),
        })
    }
}

impl Tool for PublishArgs {
    const NAME: &'static str = "tlm-publish";
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}
