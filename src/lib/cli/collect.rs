//! `tlm-collect` flags.

use super::common::{LogArgs, Tool};
use crate::error::{Error, Result};
use crate::time::duration_arg;
use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  # Three collections one second apart, as tlm metrics
  tlm-collect system --interval 1s --count 3

  # Every 10 s forever, aggregated per minute, as Graphite plaintext
  tlm-collect system --interval 10s | tlm-agg --window 1m | tlm-publish --format graphite

  # One collection for a cron job, with a static tag
  tlm-collect system --count 1 --tag role=edge >> /var/lib/tlm/host.ndjson";

/// Gather host, nginx, Prometheus and plugin metrics on an interval, as tlm metrics on stdout.
///
/// Collections run on a schedule aligned to the wall clock (a 10 s interval fires at :00,
/// :10, …); a slow collection skips the ticks it missed instead of piling up. SIGINT and
/// SIGTERM end the run after the current collection has been written. Every collection also
/// reports collect.up (1 or 0) and collect.duration_seconds for its source; a failing source
/// is logged and reported, and the schedule goes on.
#[derive(Parser, Debug, Clone)]
#[command(name = "tlm-collect", version, after_help = EXAMPLES, after_long_help = format!("{EXAMPLES}\n\n{}", super::exit_status_help()))]
pub struct CollectArgs {
    #[command(subcommand)]
    pub source: Source,

    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Source {
    /// CPU, memory and swap, load, uptime, processes, disks, file systems, network, sockets, vm from /proc
    System(SystemArgs),
    /// Run a program every interval and read what it prints as metrics (a plugin)
    Exec(ExecArgs),
    /// nginx stub_status: connections by state, accepts, handled, requests
    Nginx(UrlArgs),
    /// Scrape a Prometheus text exposition (node_exporter, any /metrics)
    Prometheus(UrlArgs),
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  tlm-collect nginx http://127.0.0.1:8080/nginx_status --count 1
  tlm-collect prometheus http://127.0.0.1:9100/metrics --interval 15s | tlm-agg --window 1m --rate")]
pub struct UrlArgs {
    #[command(flatten)]
    pub schedule: Schedule,

    /// Give up on a request after this long; the collection reports collect.up 0
    #[arg(long, env = "TLM_COLLECT_TIMEOUT", default_value = "10s", value_parser = duration_arg)]
    pub timeout: i64,

    /// The page to read (http:// or https://)
    #[arg(value_name = "URL")]
    pub url: String,
}

#[derive(Args, Debug, Clone)]
pub struct Schedule {
    /// Time between collections, aligned to the wall clock
    #[arg(short, long, env = "TLM_COLLECT_INTERVAL", default_value = "10s", value_parser = duration_arg)]
    pub interval: i64,

    /// Stop after this many collections (0: run until SIGINT/SIGTERM)
    #[arg(short = 'n', long, env = "TLM_COLLECT_COUNT", default_value_t = 0)]
    pub count: u64,

    /// Static tag added to every metric (repeatable), e.g. --tag role=edge
    #[arg(
        short,
        long = "tag",
        env = "TLM_COLLECT_TAGS",
        value_name = "KEY=VALUE",
        value_delimiter = ','
    )]
    pub tags: Vec<String>,
}

impl Schedule {
    /// The `--tag` pairs, checked.
    pub fn tag_pairs(&self) -> Result<Vec<(String, String)>> {
        self.tags
            .iter()
            .map(|t| match t.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
                _ => Err(Error::usage(format!("--tag `{t}`: expected KEY=VALUE"))),
            })
            .collect()
    }
}

#[derive(Args, Debug, Clone)]
pub struct SystemArgs {
    #[command(flatten)]
    pub schedule: Schedule,

    /// Where procfs is mounted (a container may bind the host's elsewhere)
    #[arg(
        long,
        env = "TLM_COLLECT_PROC",
        default_value = "/proc",
        value_name = "DIR"
    )]
    pub proc_root: std::path::PathBuf,

    /// Only file systems mounted at paths matching this glob (repeatable)
    #[arg(
        long = "mount",
        env = "TLM_COLLECT_MOUNT",
        value_name = "GLOB",
        value_delimiter = ','
    )]
    pub mounts: Vec<String>,

    /// Only network interfaces matching this glob (repeatable), e.g. --interface 'eth*'
    #[arg(
        long = "interface",
        env = "TLM_COLLECT_INTERFACE",
        value_name = "GLOB",
        value_delimiter = ','
    )]
    pub interfaces: Vec<String>,
}

/// A glob set from `--mount`/`--interface` values; `None` when none were given.
pub fn glob_set(flag: &str, globs: &[String]) -> Result<Option<globset::GlobSet>> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut b = globset::GlobSetBuilder::new();
    for g in globs {
        let glob = globset::Glob::new(g).map_err(|e| Error::usage(format!("{flag} `{g}`: {e}")))?;
        b.add(glob);
    }
    b.build()
        .map(Some)
        .map_err(|e| Error::usage(format!("{flag}: {e}")))
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  # A shell one-liner as a plugin: Graphite lines, detected
  tlm-collect exec --interval 10s -- sh -c 'echo \"queue.depth $(wc -l < /var/spool/q) $(date +%s)\"'

  # A Telegraf-style plugin printing InfluxDB line protocol, at most 5 s per run
  tlm-collect exec --input-format influx --timeout 5s -- /usr/lib/tlm/plugins/ups.sh")]
pub struct ExecArgs {
    #[command(flatten)]
    pub schedule: Schedule,

    /// What the program prints: detected from its first line by default
    #[arg(
        long,
        env = "TLM_COLLECT_INPUT_FORMAT",
        value_enum,
        default_value = "auto"
    )]
    pub input_format: crate::lineproto::detect::InputFormat,

    /// Kill a run (and what it started) after this long; the collection reports collect.up 0
    #[arg(long, env = "TLM_COLLECT_TIMEOUT", default_value = "10s", value_parser = duration_arg)]
    pub timeout: i64,

    /// The program and its arguments (after `--`)
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

impl Tool for CollectArgs {
    const NAME: &'static str = "tlm-collect";
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}
