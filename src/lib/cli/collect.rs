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

/// Gather host metrics on an interval, as tlm metrics on stdout.
///
/// Collections run on a schedule aligned to the wall clock (a 10 s interval fires at :00,
/// :10, …); a slow collection skips the ticks it missed instead of piling up. SIGINT and
/// SIGTERM end the run after the current collection has been written.
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
    /// CPU time and utilisation, memory and swap, load, uptime and process counts from /proc
    System(SystemArgs),
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
}

impl Tool for CollectArgs {
    const NAME: &'static str = "tlm-collect";
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}
