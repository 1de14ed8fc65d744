//! Flags every tool shares: logging, inputs, bad-line policy.

use crate::log::{Format, Level};
use crate::ndjson::lines::DEFAULT_MAX_LINE_BYTES;
use crate::stream::StreamOptions;
use clap::{ArgAction, Args, ValueEnum};

/// Implemented by each tool's argument struct so the shared `main` can set up logging.
pub trait Tool: clap::Parser {
    const NAME: &'static str;
    fn log_args(&self) -> &LogArgs;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// key=value pairs, one event per line
    Kv,
    /// one JSON object per line
    Json,
}

#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Log more (repeat for more detail); adjusts --log-level upwards
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log less (repeat to log errors only); adjusts --log-level downwards
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub quiet: u8,
    /// Base log level for stderr
    #[arg(
        long,
        env = "TLM_LOG_LEVEL",
        value_enum,
        default_value = "info",
        global = true
    )]
    pub log_level: LevelArg,
    /// Log line format on stderr
    #[arg(
        long,
        env = "TLM_LOG_FORMAT",
        value_enum,
        default_value = "kv",
        global = true
    )]
    pub log_format: LogFormatArg,
}

impl LogArgs {
    pub fn level(&self) -> Level {
        let base = match self.log_level {
            LevelArg::Error => Level::Error,
            LevelArg::Warn => Level::Warn,
            LevelArg::Info => Level::Info,
            LevelArg::Debug => Level::Debug,
            LevelArg::Trace => Level::Trace,
        };
        base.adjusted(self.verbose, self.quiet)
    }

    pub fn format(&self) -> Format {
        match self.log_format {
            LogFormatArg::Kv => Format::Kv,
            LogFormatArg::Json => Format::Json,
        }
    }
}

#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Input")]
pub struct InputArgs {
    /// Skip lines longer than this many bytes (counted and logged as bad lines)
    #[arg(long, env = "TLM_MAX_LINE_BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES, value_name = "BYTES")]
    pub max_line_bytes: usize,
    /// Exit with status 65 at the first bad input line instead of skipping it
    #[arg(long, env = "TLM_STRICT")]
    pub strict: bool,
    /// Threads decoding input (default: one per core); output order never depends on it
    #[arg(long, env = "TLM_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

impl InputArgs {
    pub fn stream_options(&self, tick: Option<std::time::Duration>) -> StreamOptions {
        StreamOptions {
            max_line_bytes: self.max_line_bytes,
            strict: self.strict,
            tick,
            threads: self
                .threads
                .map_or_else(crate::stream::default_threads, usize::from),
            ..StreamOptions::default()
        }
    }
}

/// `--tag KEY=VALUE` values as pairs, checked.
pub fn tag_pairs(tags: &[String]) -> crate::error::Result<Vec<(String, String)>> {
    tags.iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(crate::error::Error::usage(format!(
                "--tag `{t}`: expected KEY=VALUE"
            ))),
        })
        .collect()
}
