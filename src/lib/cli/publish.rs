//! `tlm-publish` flags.

use super::common::{InputArgs, LogArgs, Tool};
use crate::encode::Format;
use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  # Host metrics, aggregated per 10 s, as Graphite plaintext on stdout
  tlm-collect system --interval 1s --count 30 | tlm-agg --window 10s | tlm-publish --format graphite

  # InfluxDB line protocol from a file
  tlm-publish --format influx --input metrics.ndjson

  # Check that a stream is valid tlm metric v1 (exit 65 at the first bad line)
  tlm-publish --strict < metrics.ndjson > /dev/null";

/// Deliver tlm metrics in a backend's format.
///
/// Reads tlm metric v1 lines (stdin, or --input files and quoted globs) and writes them as
/// NDJSON, Graphite plaintext, InfluxDB line protocol or Prometheus text exposition to stdout.
/// Integers are written digit for digit (SNMP Counter64 stays exact). A metric the format
/// cannot carry (a delta counter for Prometheus, a raw distribution for Graphite) is counted
/// and logged, never silently dropped.
#[derive(Parser, Debug, Clone)]
#[command(name = "tlm-publish", version, after_help = EXAMPLES, after_long_help = format!("{EXAMPLES}\n\n{}", super::exit_status_help()))]
pub struct PublishArgs {
    /// Output format on stdout
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

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

impl Tool for PublishArgs {
    const NAME: &'static str = "tlm-publish";
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}
