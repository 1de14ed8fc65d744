//! `tlm-snmpwalk` flags: net-snmp's short options, as there, plus long options and
//! `TLM_SNMP_*` variables (and files) for every secret.

use super::common::{LogArgs, Tool};
use crate::error::{Error, Result};
use crate::snmp::session::Level;
use crate::snmp::walk::Op;
use crate::time::duration_arg;
use clap::{Parser, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  # As snmpbulkwalk prints it
  tlm-snmpwalk -v2c -c public --format text -On 127.0.0.1:1161 1.3.6.1.2.1.1

  # Interface counters with their names as tags, rated per minute, as InfluxDB lines
  tlm-snmpwalk -v2c -c public 127.0.0.1:1161 IF-MIB::ifXTable --label ifName \\
    | tlm-agg --window 60s --rate | tlm-publish --format influx

  # SNMPv3 authPriv, secrets from the environment, not the command line
  TLM_SNMP_AUTH_PASS=... TLM_SNMP_PRIV_PASS=... \\
    tlm-snmpwalk -v3 -l authPriv -u monitor -a SHA-256 -x AES 10.0.0.1 IF-MIB::ifXTable

  # A thousand switches every minute, 200 at a time
  tlm-snmpwalk -v2c --community-file /etc/tlm/community --targets switches.txt \\
    --interval 60s --concurrency 200 IF-MIB::ifXTable --label ifName,ifAlias";

/// Poll SNMP agents (v1, v2c, v3) and write what they hold as tlm metrics, or as net-snmp's
/// text.
///
/// The first operand is the agent (HOST[:PORT], several separated by commas), unless
/// --targets gives them; the others are OIDs or MIB names to walk (default: mib-2,
/// 1.3.6.1.2.1). Counters are cumulative exact integers with start_ts at the agent's boot;
/// table rows get their index as tags and, with --label, the values of other columns of the
/// same row. Every agent also reports snmp.up, snmp.poll_seconds and snmp.varbinds. One
/// process polls thousands of agents over a few sockets; a slow or dead agent only costs its
/// own timeout. Without --interval each agent is polled once.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "tlm-snmpwalk",
    version,
    mut_arg("verbose", |a| a.short(None)),
    after_help = EXAMPLES,
    after_long_help = format!("{EXAMPLES}\n\n{}", super::exit_status_help())
)]
pub struct SnmpwalkArgs {
    /// SNMP version: 1, 2c or 3
    #[arg(short = 'v', long = "snmp-version", env = "TLM_SNMP_VERSION", default_value = "2c", value_parser = ["1", "2c", "3"])]
    pub snmp_version: String,

    /// Community (v1, v2c); prefer --community-file or TLM_SNMP_COMMUNITY
    #[arg(short = 'c', long, env = "TLM_SNMP_COMMUNITY", hide_env_values = true)]
    pub community: Option<String>,

    /// Read the community from FILE (a trailing newline is ignored)
    #[arg(long, env = "TLM_SNMP_COMMUNITY_FILE", value_name = "FILE")]
    pub community_file: Option<std::path::PathBuf>,

    /// v3 user name
    #[arg(short = 'u', long, env = "TLM_SNMP_USER")]
    pub user: Option<String>,

    /// v3 security level
    #[arg(
        short = 'l',
        long,
        env = "TLM_SNMP_LEVEL",
        value_enum,
        ignore_case = true,
        default_value = "noAuthNoPriv"
    )]
    pub level: Level,

    /// v3 authentication protocol: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512
    #[arg(
        short = 'a',
        long,
        env = "TLM_SNMP_AUTH_PROTOCOL",
        default_value = "MD5",
        value_name = "PROTOCOL"
    )]
    pub auth_protocol: String,

    /// v3 authentication passphrase; prefer --auth-pass-file or TLM_SNMP_AUTH_PASS
    #[arg(
        short = 'A',
        long,
        env = "TLM_SNMP_AUTH_PASS",
        hide_env_values = true,
        value_name = "PASSPHRASE"
    )]
    pub auth_pass: Option<String>,

    /// Read the authentication passphrase from FILE (a trailing newline is ignored)
    #[arg(long, env = "TLM_SNMP_AUTH_PASS_FILE", value_name = "FILE")]
    pub auth_pass_file: Option<std::path::PathBuf>,

    /// v3 privacy protocol: DES, AES (AES-128), AES-192, AES-256, AES-192-C, AES-256-C
    #[arg(
        short = 'x',
        long,
        env = "TLM_SNMP_PRIV_PROTOCOL",
        default_value = "DES",
        value_name = "PROTOCOL"
    )]
    pub priv_protocol: String,

    /// v3 privacy passphrase; prefer --priv-pass-file or TLM_SNMP_PRIV_PASS
    #[arg(
        short = 'X',
        long,
        env = "TLM_SNMP_PRIV_PASS",
        hide_env_values = true,
        value_name = "PASSPHRASE"
    )]
    pub priv_pass: Option<String>,

    /// Read the privacy passphrase from FILE (a trailing newline is ignored)
    #[arg(long, env = "TLM_SNMP_PRIV_PASS_FILE", value_name = "FILE")]
    pub priv_pass_file: Option<std::path::PathBuf>,

    /// v3 context name
    #[arg(short = 'n', long, env = "TLM_SNMP_CONTEXT", default_value = "")]
    pub context: String,

    /// Output options as net-snmp's -O: n prints numeric OIDs (with --format text)
    #[arg(
        short = 'O',
        long = "output-options",
        env = "TLM_SNMP_OUTPUT_OPTIONS",
        value_name = "FLAGS",
        default_value = ""
    )]
    pub output_options: String,

    /// Application options as net-snmp's -C: rN sets max-repetitions
    #[arg(
        short = 'C',
        long = "app-options",
        env = "TLM_SNMP_APP_OPTIONS",
        value_name = "FLAGS",
        default_value = ""
    )]
    pub app_options: String,

    /// GETBULK max-repetitions (halved automatically on tooBig)
    #[arg(long, env = "TLM_SNMP_MAX_REPETITIONS", default_value_t = 25)]
    pub max_repetitions: i32,

    /// Seconds to wait for each reply (net-snmp's -t)
    #[arg(
        short = 't',
        long,
        env = "TLM_SNMP_TIMEOUT",
        default_value_t = 1.0,
        value_name = "SECONDS"
    )]
    pub timeout: f64,

    /// Retries of each request (net-snmp's -r)
    #[arg(short = 'r', long, env = "TLM_SNMP_RETRIES", default_value_t = 2)]
    pub retries: u32,

    /// The whole poll of one agent may take at most this long
    #[arg(long, env = "TLM_SNMP_DEADLINE", default_value = "60s", value_parser = duration_arg)]
    pub deadline: i64,

    /// Operation: get, walk (GETNEXT) or bulkwalk (GETBULK; v1 agents are walked)
    #[arg(
        long = "op",
        env = "TLM_SNMP_OP",
        value_enum,
        default_value = "bulkwalk"
    )]
    pub op: Op,

    /// MIB modules to load, as net-snmp's -m: ALL (built-in and --mib-dir) or '' for none
    /// (numeric names; text as with no MIBs). Default ALL, except that --format text -On
    /// prints as Debian's snmpbulkwalk -On does, with no MIBs
    #[arg(short = 'm', long = "mibs", env = "TLM_SNMP_MIBS", value_name = "LIST")]
    pub mibs: Option<String>,

    /// More MIB modules (SMIv1/v2 text files) to load, as net-snmp's -M; repeatable
    #[arg(
        short = 'M',
        long = "mib-dir",
        env = "TLM_SNMP_MIB_DIRS",
        value_name = "DIR",
        value_delimiter = ','
    )]
    pub mib_dirs: Vec<std::path::PathBuf>,

    /// Agents from FILE: HOST[:PORT] per line, or NDJSON {"host","port","name","tags"}
    #[arg(long, env = "TLM_SNMP_TARGETS", value_name = "FILE")]
    pub targets: Option<std::path::PathBuf>,

    /// Columns whose values become tags of their row (same table or one sharing its index)
    #[arg(
        long = "label",
        env = "TLM_SNMP_LABELS",
        value_name = "COLUMN",
        value_delimiter = ','
    )]
    pub labels: Vec<String>,

    /// Agents in flight at once
    #[arg(long, env = "TLM_SNMP_CONCURRENCY", default_value_t = 100)]
    pub concurrency: usize,

    /// Stop an agent's walk after this many varbinds (runaway agents)
    #[arg(long, env = "TLM_SNMP_MAX_VARBINDS", default_value_t = 1_000_000)]
    pub max_varbinds: u64,

    /// Poll every interval, aligned to the clock, until SIGINT/SIGTERM (default: once)
    #[arg(long, env = "TLM_SNMP_INTERVAL", value_parser = duration_arg)]
    pub interval: Option<i64>,

    /// With --interval: stop after this many polls (0: until a signal)
    #[arg(long, env = "TLM_SNMP_COUNT", default_value_t = 0)]
    pub count: u64,

    /// Output: tlm metrics, or net-snmp's text
    #[arg(long, env = "TLM_SNMP_FORMAT", value_enum, default_value = "ndjson")]
    pub format: Format,

    /// Static tag on every metric (repeatable), e.g. --tag site=fra1
    #[arg(
        long = "tag",
        env = "TLM_SNMP_TAGS",
        value_name = "KEY=VALUE",
        value_delimiter = ','
    )]
    pub tags: Vec<String>,

    /// Progress bar on stderr: auto (when stderr is a terminal), never
    #[arg(long, env = "TLM_SNMP_PROGRESS", value_enum, default_value = "auto")]
    pub progress: Progress,

    /// HOST[:PORT][,HOST…] (unless --targets), then OIDs or names
    #[arg(value_name = "AGENT_AND_OIDS")]
    pub operands: Vec<String>,

    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// tlm metric v1
    Ndjson,
    /// net-snmp's `OID = TYPE: value` lines
    Text,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    Auto,
    Never,
}

impl SnmpwalkArgs {
    /// Whether MIBs are loaded (`-m ALL`, the default) or not (`-m ''`).
    pub fn use_mibs(&self) -> Result<bool> {
        match self.mibs.as_deref() {
            Some("") => Ok(false),
            Some(m) if m.eq_ignore_ascii_case("all") => Ok(true),
            Some(m) => Err(Error::usage(format!(
                "-m {m}: only ALL (every loaded MIB) or '' (none) is supported"
            ))),
            None => Ok(!(self.format == Format::Text && self.numeric()?)),
        }
    }

    /// `-On`.
    pub fn numeric(&self) -> Result<bool> {
        let mut numeric = false;
        for c in self.output_options.chars() {
            match c {
                'n' => numeric = true,
                other => {
                    return Err(Error::usage(format!(
                        "-O{other}: only -On (numeric OIDs) is supported"
                    )))
                }
            }
        }
        Ok(numeric)
    }

    /// Max-repetitions from -Cr or --max-repetitions.
    pub fn max_repetitions(&self) -> Result<i32> {
        let c = self.app_options.as_str();
        if c.is_empty() {
            return Ok(self.max_repetitions);
        }
        c.strip_prefix('r')
            .and_then(|n| n.parse::<i32>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::usage(format!("-C{c}: only -CrN (max-repetitions) is supported")))
    }

    /// The community, from the flag, the variable or the file (default `public`).
    pub fn community(&self) -> Result<String> {
        if let Some(f) = &self.community_file {
            return crate::io::read_secret(f);
        }
        Ok(self.community.clone().unwrap_or_else(|| "public".into()))
    }

    pub fn auth_pass(&self) -> Result<Option<String>> {
        secret(&self.auth_pass, &self.auth_pass_file)
    }

    pub fn priv_pass(&self) -> Result<Option<String>> {
        secret(&self.priv_pass, &self.priv_pass_file)
    }

    /// The `--tag` pairs, checked.
    pub fn tag_pairs(&self) -> Result<Vec<(String, String)>> {
        super::common::tag_pairs(&self.tags)
    }
}

fn secret(value: &Option<String>, file: &Option<std::path::PathBuf>) -> Result<Option<String>> {
    match file {
        Some(f) => crate::io::read_secret(f).map(Some),
        None => Ok(value.clone()),
    }
}

impl Tool for SnmpwalkArgs {
    const NAME: &'static str = "tlm-snmpwalk";
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}
