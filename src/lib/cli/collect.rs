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
    /// GET a JSON status page and pick numbers by path (--field NAME=PATH)
    Http(HttpArgs),
    /// Follow a log file across rotation; count and measure the lines a regex matches
    Tail(TailArgs),
    /// Run several sources at their own intervals from a TOML task file
    Task(TaskArgs),
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  # /etc/tlm/host.toml
  #   tag = { dc = \"fra1\" }
  #   [[source]]
  #   type = \"system\"
  #   interval = \"10s\"
  #   [[source]]
  #   type = \"nginx\"
  #   url = \"http://127.0.0.1:8080/nginx_status\"
  #   interval = \"5s\"
  #   [[source]]
  #   type = \"exec\"
  #   name = \"queue\"
  #   interval = \"1m\"
  #   command = \"echo queue.depth $(ls /var/spool/q | wc -l)\"
  tlm-collect task /etc/tlm/host.toml | tlm-publish graphite://127.0.0.1:2003

Each [[source]] holds the flags of one subcommand as keys (`type` names it; url, file and
command are its operands); top-level interval, jitter, timeout and tag are defaults.")]
pub struct TaskArgs {
    /// The task file (TOML)
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
}

/// One source's flags, parsed alone: how a task file's `[[source]]` tables are checked.
#[derive(Parser, Debug, Clone)]
#[command(name = "tlm-collect")]
struct OneSource {
    #[command(subcommand)]
    source: Source,
}

impl Source {
    /// The source a task file's `[[source]]` describes, checked as its command line would be.
    pub fn from_task(src: &crate::collect::task::TaskSource) -> Result<Source> {
        let argv = std::iter::once("tlm-collect".to_string()).chain(src.argv.iter().cloned());
        OneSource::try_parse_from(argv)
            .map(|one| one.source)
            .map_err(|e| {
                let text = e.render().to_string();
                let first = text
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ");
                Error::usage(format!("source `{}`: {first}", src.name))
            })
    }

    /// The collector these flags describe, and when to run it.
    pub fn build(&self) -> Result<(Box<dyn crate::collect::Source + Send>, crate::collect::Plan)> {
        use crate::collect::{self as c};
        Ok(match self {
            Source::System(sys) => {
                let mut collector = c::system::SystemCollector::new(&sys.proc_root)?;
                collector.set_mounts(glob_set("--mount", &sys.mounts)?);
                collector.set_interfaces(glob_set("--interface", &sys.interfaces)?);
                (Box::new(collector), sys.schedule.plan()?)
            }
            Source::Exec(exec) => {
                let mut collector = c::exec::ExecCollector::new(
                    exec.command.clone(),
                    exec.timeout.duration(),
                    exec.input_format,
                )?;
                if exec.persistent {
                    collector = collector.persistent(exec.signal);
                } else if exec.signal != c::execd::Signal::None {
                    return Err(Error::usage("--signal needs --persistent"));
                }
                (Box::new(collector), exec.schedule.plan()?)
            }
            Source::Nginx(page) => {
                let collector = c::nginx::NginxCollector::new(&page.url, page.timeout.duration())?;
                (Box::new(collector), page.schedule.plan()?)
            }
            Source::Prometheus(page) => {
                let collector =
                    c::prom_text::PromCollector::new(&page.url, page.timeout.duration())?;
                (Box::new(collector), page.schedule.plan()?)
            }
            Source::Http(page) => {
                let fields = page
                    .fields
                    .iter()
                    .map(|f| c::http_json::parse_field_arg(f))
                    .collect::<Result<Vec<_>>>()?;
                let collector = c::http_json::HttpJsonCollector::new(
                    &page.url,
                    page.timeout.duration(),
                    fields,
                )?;
                (Box::new(collector), page.schedule.plan()?)
            }
            Source::Tail(t) => {
                let collector = c::tail::TailCollector::new(c::tail::TailConfig {
                    path: t.file.clone(),
                    pattern: t.pattern.clone(),
                    counts: t.counts.clone(),
                    observes: t.observes.clone(),
                    tags: t.tag_captures.clone(),
                    from_start: t.from_start,
                })?;
                (Box::new(collector), t.schedule.plan()?)
            }
            Source::Task(_) => return Err(Error::usage("a task cannot hold a task")),
        })
    }
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  # Two numbers from a JSON status page
  tlm-collect http http://127.0.0.1:8080/status --field 'app.queue=queue.depth' --field 'app.workers=pool.workers[0].busy'")]
pub struct HttpArgs {
    #[command(flatten)]
    pub schedule: Schedule,

    #[command(flatten)]
    pub timeout: Timeout,

    /// A gauge NAME from the number at PATH (keys by `.`, `[N]` indexes, `[\"a.b\"]` quoted keys); repeatable
    #[arg(
        long = "field",
        env = "TLM_COLLECT_FIELDS",
        value_name = "NAME=PATH",
        required = true,
        value_delimiter = ','
    )]
    pub fields: Vec<String>,

    /// The JSON document to read (http:// or https://)
    #[arg(value_name = "URL")]
    pub url: String,
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  # nginx access log: requests and 5xx per interval, response times as a distribution
  tlm-collect tail /var/log/nginx/access.log --interval 10s \\
    --match '\" (?P<status>\\d{3}) \\d+ (?P<rt>[0-9.]+)$' --counter http.requests --observe http.response_time=rt \\
    --tag-capture status")]
pub struct TailArgs {
    #[command(flatten)]
    pub schedule: Schedule,

    /// Regular expression (Rust syntax) with named captures, e.g. (?P<ms>\\d+)
    #[arg(long = "match", env = "TLM_COLLECT_MATCH", value_name = "REGEX")]
    pub pattern: String,

    /// A delta counter NAME of the matching lines per interval (repeatable; --count is the
    /// number of collections, as for every source)
    #[arg(
        long = "counter",
        env = "TLM_COLLECT_COUNTERS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub counts: Vec<String>,

    /// A distribution NAME of the numbers a capture matched (repeatable)
    #[arg(
        long = "observe",
        env = "TLM_COLLECT_OBSERVE",
        value_name = "NAME=CAPTURE",
        value_delimiter = ','
    )]
    pub observes: Vec<crate::collect::tail::Observe>,

    /// A capture whose text becomes a tag of the same name (repeatable)
    #[arg(
        long = "tag-capture",
        env = "TLM_COLLECT_TAG_CAPTURES",
        value_name = "CAPTURE",
        value_delimiter = ','
    )]
    pub tag_captures: Vec<String>,

    /// Read the file from its start instead of its end
    #[arg(long, env = "TLM_COLLECT_FROM_START")]
    pub from_start: bool,

    /// The log file to follow
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  tlm-collect nginx http://127.0.0.1:8080/nginx_status --count 1
  tlm-collect prometheus http://127.0.0.1:9100/metrics --interval 15s | tlm-agg --window 1m --rate")]
pub struct UrlArgs {
    #[command(flatten)]
    pub schedule: Schedule,

    #[command(flatten)]
    pub timeout: Timeout,

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

    /// Start each collection up to this long after its tick, at random (spreads a fleet's load)
    #[arg(long, env = "TLM_COLLECT_JITTER", default_value = "0s", value_parser = crate::time::parse_duration)]
    pub jitter: i64,

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

/// How long one collection may take: a request, or a plugin run and what it started.
#[derive(Args, Debug, Clone)]
pub struct Timeout {
    /// Give up on a collection after this long; it reports collect.up 0
    #[arg(long = "timeout", env = "TLM_COLLECT_TIMEOUT", default_value = "10s", value_parser = duration_arg)]
    pub ns: i64,
}

impl Timeout {
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.ns.max(0) as u64)
    }
}

impl Schedule {
    /// The collection plan these flags describe, checked.
    pub fn plan(&self) -> Result<crate::collect::Plan> {
        if self.jitter < 0 || self.jitter >= self.interval {
            return Err(Error::usage(
                "--jitter must be at least 0 and shorter than --interval",
            ));
        }
        Ok(crate::collect::Plan {
            interval: self.interval,
            count: self.count,
            jitter: self.jitter,
            tags: self.tag_pairs()?,
        })
    }

    /// The `--tag` pairs, checked.
    pub fn tag_pairs(&self) -> Result<Vec<(String, String)>> {
        super::common::tag_pairs(&self.tags)
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
  tlm-collect exec --input-format influx --timeout 5s -- /usr/lib/tlm/plugins/ups.sh

  # One long-running plugin, asked for a report by a newline on its stdin every 10 s
  tlm-collect exec --persistent --signal stdin --interval 10s -- /usr/lib/tlm/plugins/poller")]
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

    #[command(flatten)]
    pub timeout: Timeout,

    /// Keep one instance running and read what it printed since the last collection; it is
    /// restarted when it exits
    #[arg(long, env = "TLM_COLLECT_PERSISTENT")]
    pub persistent: bool,

    /// With --persistent: ask it for a report at every collection and wait (up to --timeout)
    /// for the answer to go quiet
    #[arg(long, env = "TLM_COLLECT_SIGNAL", value_enum, default_value = "none")]
    pub signal: crate::collect::execd::Signal,

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
