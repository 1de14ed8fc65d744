//! `tlm-agg` flags.

use super::common::{InputArgs, LogArgs, Tool};
use crate::agg::config::Style;
use crate::agg::etsy;
use crate::agg::{AggConfig, Clock, GaugeStat, Grouping, Late, Limits, NameFilter};
use crate::error::Result;
use crate::time::{duration_arg, parse_duration};
use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  # 10-second summaries of host metrics, as Graphite plaintext
  tlm-collect system --interval 1s --count 30 | tlm-agg --window 10s | tlm-publish --format graphite

  # Min, max and mean of every gauge per minute, from yesterday's files
  tlm-agg --window 1m --gauge last,min,max,mean 'archive/2026-11-20-*.ndjson'

  # Timer percentiles per window
  tlm-agg --window 10s --quantiles 0.5,0.9,0.99 < timings.ndjson

  # Latency histograms (exact bucket counts) that add up across hosts downstream
  tlm-agg --window 1m --buckets 5,10,25,50,100,250,500,1000 < timings.ndjson

  # Interface octets per second from SNMP counters (wraps and reboots handled), per minute
  tlm-agg --window 1m --match 'if.*octets' < poll.ndjson

  # Requests per data centre: merge hosts, keep the dc tag
  tlm-agg --window 10s --by dc --rate --match 'http.requests'

  # What Etsy statsd would send Graphite, with its default 10-second flush interval
  tlm-agg --window 10s --style statsd --percent-threshold 90,99 | tlm-publish --format graphite";

/// Windowed aggregation of tlm metrics: sums, gauge statistics, summaries, set sizes.
///
/// Reads tlm metric v1 lines (files, quoted globs or stdin) and writes one aggregate per series
/// and tumbling window of event time, aligned to the clock: delta counters are summed,
/// cumulative counters keep their latest total, gauges give --gauge statistics, distributions
/// become summaries with --quantiles (or histograms with --buckets), sets their distinct count, histograms merge bucket-wise.
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

    /// Sliding windows: start a window of --window length every DURATION (must divide it)
    #[arg(long, env = "TLM_AGG_EVERY", value_parser = duration_arg, value_name = "DURATION")]
    pub every: Option<i64>,

    /// How long after a window's end its points are still accepted (event time)
    #[arg(long, env = "TLM_AGG_LATENESS", default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub lateness: i64,

    /// Points for a window already written: drop them, or write a correction line
    #[arg(long, env = "TLM_AGG_LATE", value_enum, default_value = "drop")]
    pub late: Late,

    /// Place points by their own `ts` (event) or by the time they are read (wall)
    #[arg(long, env = "TLM_AGG_CLOCK", value_enum, default_value = "event")]
    pub clock: Clock,

    /// Group by name and only these tags, merging series that differ in others
    #[arg(
        long,
        env = "TLM_AGG_BY",
        value_delimiter = ',',
        value_name = "TAG,…",
        conflicts_with = "without"
    )]
    pub by: Option<Vec<String>>,

    /// Group by name and all tags but these
    #[arg(
        long,
        env = "TLM_AGG_WITHOUT",
        value_delimiter = ',',
        value_name = "TAG,…"
    )]
    pub without: Option<Vec<String>>,

    /// Aggregate only series whose name matches one of these globs (others are dropped)
    #[arg(
        long = "match",
        env = "TLM_AGG_MATCH",
        value_delimiter = ',',
        value_name = "GLOB,…"
    )]
    pub matches: Vec<String>,

    /// Drop series whose name matches one of these globs
    #[arg(
        long,
        env = "TLM_AGG_EXCLUDE",
        value_delimiter = ',',
        value_name = "GLOB,…"
    )]
    pub exclude: Vec<String>,

    /// Also write NAME.rate (per second) for delta counters; cumulative counters always get one
    #[arg(long, env = "TLM_AGG_RATE")]
    pub rate: bool,

    /// Write counters as running totals per series (what Prometheus needs)
    #[arg(long, env = "TLM_AGG_CUMULATIVE")]
    pub cumulative: bool,

    /// Highest plausible counter rate per second: a drop whose wrap would imply more is a reset
    #[arg(long, env = "TLM_AGG_MAX_RATE", value_name = "PER_SECOND")]
    pub max_rate: Option<f64>,

    /// Refuse new series beyond this many (counted and logged), bounding memory
    #[arg(long, env = "TLM_AGG_MAX_SERIES", value_name = "N")]
    pub max_series: Option<usize>,

    /// Observations per distribution and window kept for exact quantiles; beyond, a sketch
    /// with --sketch-error relative error (lines marked "estimated":true)
    #[arg(
        long,
        env = "TLM_AGG_EXACT_LIMIT",
        default_value_t = 2048,
        value_name = "N"
    )]
    pub exact_limit: usize,

    /// Relative error bound of the quantile sketch
    #[arg(
        long,
        env = "TLM_AGG_SKETCH_ERROR",
        default_value_t = 0.01,
        value_name = "FRACTION"
    )]
    pub sketch_error: f64,

    /// Members per set and window counted exactly; beyond, HyperLogLog (≈0.8% error,
    /// lines marked "estimated":true)
    #[arg(
        long,
        env = "TLM_AGG_SET_LIMIT",
        default_value_t = 100_000,
        value_name = "N"
    )]
    pub set_limit: usize,

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

    /// Write distributions as histograms with these bucket upper bounds (comma-separated,
    /// increasing; +Inf is implied) instead of summaries: counts are exact at any volume
    #[arg(
        long,
        env = "TLM_AGG_BUCKETS",
        value_delimiter = ',',
        allow_negative_numbers = true,
        value_name = "BOUND,…"
    )]
    pub buckets: Option<Vec<f64>>,

    /// Output style: tlm metrics, or Etsy statsd's stat set as gauges with its arithmetic and
    /// the names its Graphite backend gives them (stats.X and stats_counts.X for counters,
    /// stats.timers.X.mean …, stats.gauges.X, stats.sets.X.count), --window being the flush
    /// interval. statsd style ignores --gauge, --quantiles and --rate, refuses --cumulative, and
    /// keeps up to --exact-limit values per timer: past it, statistics that need every value
    /// are left out and estimates are marked "estimated":true (docs/aggregation.md)
    #[arg(long, env = "TLM_AGG_STYLE", value_enum, default_value = "tlm")]
    pub style: Style,

    /// statsd style: Etsy's percentThreshold, comma-separated, each in [-100, 100]: P writes
    /// count_P, mean_P, upper_P, sum_P, sum_squares_P over the lowest P% of a timer's values
    /// (99.9 is named 99_9); -P writes count_topP, lower_topP … over the highest P%
    #[arg(
        long,
        env = "TLM_AGG_PERCENT_THRESHOLD",
        value_delimiter = ',',
        default_value = "90",
        allow_negative_numbers = true,
        value_name = "P,…"
    )]
    pub percent_threshold: Vec<f64>,

    /// statsd style: Etsy's graphite.legacyNamespace. true writes counters as stats.X (per
    /// second) and stats_counts.X; false as stats.counters.X.rate and stats.counters.X.count
    #[arg(
        long,
        env = "TLM_AGG_LEGACY_NAMESPACE",
        default_value = "true",
        value_name = "BOOL",
        action = clap::ArgAction::Set,
        value_parser = clap::value_parser!(bool)
    )]
    pub legacy_namespace: bool,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

impl AggArgs {
    pub fn config(&self) -> Result<AggConfig> {
        let grouping = match (&self.by, &self.without) {
            (Some(by), _) => Grouping::By(by.clone()),
            (None, Some(without)) => Grouping::Without(without.clone()),
            (None, None) => Grouping::Series,
        };
        let cfg = AggConfig {
            window: self.window,
            every: self.every,
            lateness: self.lateness,
            late: self.late,
            clock: self.clock,
            grouping,
            names: NameFilter::new(&self.matches, &self.exclude)?,
            gauge: GaugeStat::expand(&self.gauge),
            quantiles: self.quantiles.clone(),
            rate: self.rate,
            cumulative: self.cumulative,
            max_rate: self.max_rate,
            max_series: self.max_series.unwrap_or(usize::MAX),
            limits: Limits::new(
                self.exact_limit,
                self.set_limit,
                self.sketch_error,
                self.buckets.as_deref(),
            ),
            style: self.style,
            statsd: etsy::Options::new(&self.percent_threshold, self.legacy_namespace)?,
            idle: crate::agg::Idle::Skip,
            rate_per_window: false,
        };
        cfg.check()?;
        Ok(cfg)
    }
}

impl Tool for AggArgs {
    const NAME: &'static str = "tlm-agg";
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}
