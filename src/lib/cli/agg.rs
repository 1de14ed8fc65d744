//! `tlm-agg` flags.

use super::common::{InputArgs, LogArgs, Tool};
use crate::agg::{AggConfig, GaugeStat};
use crate::error::{Error, Result};
use crate::time::{duration_arg, parse_duration};
use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  # 10-second summaries of host metrics, as Graphite plaintext
  tlm-collect system --interval 1s --count 30 | tlm-agg --window 10s | tlm-publish --format graphite

  # Min, max and mean of every gauge per minute, from yesterday's files
  tlm-agg --window 1m --gauge last,min,max,mean 'archive/2026-11-20-*.ndjson'

  # Timer percentiles per window
  tlm-agg --window 10s --quantiles 0.5,0.9,0.99 < timings.ndjson";

/// Windowed aggregation of tlm metrics: sums, gauge statistics, summaries, set sizes.
///
/// Reads tlm metric v1 lines (files, quoted globs or stdin) and writes one aggregate per series
/// and tumbling window of event time, aligned to the clock: delta counters are summed,
/// cumulative counters keep their latest total, gauges give --gauge statistics, distributions
/// become summaries with --quantiles, sets their distinct count, histograms merge bucket-wise.
/// Windows are written when the stream's event time passes their end (plus --lateness), when
/// the input is idle past that time on the wall clock, and at end of input or SIGINT/SIGTERM.
#[derive(Parser, Debug, Clone)]
#[command(name = "tlm-agg", version, after_help = EXAMPLES, after_long_help = format!("{EXAMPLES}\n\n{}", super::exit_status_help()))]
pub struct AggArgs {
    /// Input files or quoted globs, read in order; stdin when none or `-`
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,

    /// Window length (e.g. 10s, 1m, 500ms), aligned to the Unix epoch
    #[arg(short, long, env = "TLM_AGG_WINDOW", default_value = "10s", value_parser = duration_arg)]
    pub window: i64,

    /// How long after a window's end its points are still accepted (event time)
    #[arg(long, env = "TLM_AGG_LATENESS", default_value = "0s", value_parser = parse_duration)]
    pub lateness: i64,

    /// Gauge statistics to write, comma-separated: last (under the series' name), min, max,
    /// mean, count, sum (as NAME.min, …) or all
    #[arg(
        long,
        env = "TLM_AGG_GAUGE",
        value_enum,
        value_delimiter = ',',
        default_value = "last"
    )]
    pub gauge: Vec<GaugeStat>,

    /// Quantiles of distributions, comma-separated, each in [0, 1]
    #[arg(
        long,
        env = "TLM_AGG_QUANTILES",
        value_delimiter = ',',
        default_value = "0.5,0.9,0.99"
    )]
    pub quantiles: Vec<f64>,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

impl AggArgs {
    pub fn config(&self) -> Result<AggConfig> {
        if let Some(q) = self.quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            return Err(Error::usage(format!("--quantiles: {q} is not in [0, 1]")));
        }
        Ok(AggConfig {
            window: self.window,
            lateness: self.lateness,
            gauge: GaugeStat::expand(&self.gauge),
            quantiles: self.quantiles.clone(),
            ..AggConfig::default()
        })
    }
}

impl Tool for AggArgs {
    const NAME: &'static str = "tlm-agg";
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}
