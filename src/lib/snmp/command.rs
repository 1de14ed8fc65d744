//! `tlm-snmpwalk`: flags to a poll. Resolves agents, OIDs and credentials, then runs one
//! round or one per interval, with metrics or text as the output.

use super::mib::Mib;
use super::oid::Oid;
use super::pdu::{VarBind, Version};
use super::poller::{Config, Outcome, Poller, Round, Sink, Target};
use super::session::{Security, User};
use super::usm::{AuthProtocol, PrivProtocol};
use super::walk::{sys_uptime, Op};
use crate::cli::snmpwalk::{Format, Progress, SnmpwalkArgs};
use crate::error::{Error, Result};
use crate::io::Output;
use std::sync::Arc;
use std::time::Duration;

/// mib-2, what a walk without OIDs covers (as net-snmp's).
const MIB2: [u32; 6] = [1, 3, 6, 1, 2, 1];

pub fn run(args: &SnmpwalkArgs) -> Result<()> {
    let use_mibs = args.use_mibs()?;
    let loaded = if use_mibs { load_mibs(args)? } else { None };
    let mib: Option<&Mib> = match &loaded {
        Some(m) => Some(m),
        None if !use_mibs => None,
        None => Some(Mib::builtin()),
    };
    let (mut targets, names) = agents_and_oids(args)?;
    let tags = args.tag_pairs()?;
    for t in &mut targets {
        t.tags.extend(tags.iter().cloned());
    }
    let mut oids = names
        .iter()
        .map(|n| resolve(mib, n))
        .collect::<Result<Vec<Oid>>>()?;
    if oids.is_empty() {
        oids.push(Oid::from(&MIB2[..]));
    }
    let security = security(args)?;
    let mut out = Output::stdout();
    let numeric = args.numeric()?;
    let mut cfg = config(args, oids)?;
    let mut poller = Poller::new(&targets, cfg.concurrency, |_| security.clone())?;
    match args.format {
        Format::Text => {
            let mut sink = super::print::TextSink::new(mib, numeric, &targets, &mut out);
            rounds(args, &mut poller, &targets, &cfg, &mut sink)
        }
        Format::Ndjson => {
            let empty = Mib::empty();
            let names_from = mib.unwrap_or(&empty);
            let mut sink =
                super::metrics::MetricSink::new(names_from, &targets, &args.labels, &mut out)
                    .map_err(Error::usage)?;
            add_label_roots(&mut cfg, sink.label_columns());
            if cfg.op != Op::Get {
                cfg.gets = vec![sys_uptime()];
            } else if !cfg.gets.contains(&sys_uptime()) {
                cfg.gets.insert(0, sys_uptime());
            }
            rounds(args, &mut poller, &targets, &cfg, &mut sink)
        }
    }
}

fn load_mibs(args: &SnmpwalkArgs) -> Result<Option<Mib>> {
    if args.mib_dirs.is_empty() {
        return Ok(None);
    }
    let mib = Mib::load(&args.mib_dirs).map_err(|e| Error::no_input(e.to_string()))?;
    for w in mib.warnings() {
        crate::log!(Warn, "mib_warning", reason = w);
    }
    Ok(Some(mib))
}

fn resolve(mib: Option<&Mib>, name: &str) -> Result<Oid> {
    match mib {
        Some(m) => m
            .resolve(name)
            .map(Oid::from)
            .map_err(|e| Error::usage(e.to_string())),
        None => Oid::parse(name)
            .or_else(|_| Mib::builtin().resolve(name).map(Oid::from))
            .map_err(|e| Error::usage(e.to_string())),
    }
}

/// The agents (from --targets or the first operand) and the OID operands.
fn agents_and_oids(args: &SnmpwalkArgs) -> Result<(Vec<Target>, Vec<String>)> {
    if let Some(file) = &args.targets {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::no_input(format!("{}: {e}", file.display())))?;
        let targets = super::target::parse_file(&text, &file.display().to_string())?;
        return Ok((targets, args.operands.clone()));
    }
    let Some((agents, oids)) = args.operands.split_first() else {
        return Err(Error::usage("no agent: give HOST[:PORT] or --targets FILE"));
    };
    let targets = agents
        .split(',')
        .filter(|s| !s.is_empty())
        .map(super::target::parse_host)
        .collect::<Result<Vec<_>>>()?;
    Ok((targets, oids.to_vec()))
}

fn security(args: &SnmpwalkArgs) -> Result<Security> {
    let version = match args.snmp_version.as_str() {
        "1" => Version::V1,
        "2c" => Version::V2c,
        _ => Version::V3,
    };
    if version != Version::V3 {
        return Ok(Security::Community {
            version,
            community: args.community()?.into_bytes(),
        });
    }
    let auth = AuthProtocol::parse(&args.auth_protocol)
        .ok_or_else(|| Error::usage(format!("-a {}: unknown protocol", args.auth_protocol)))?;
    let privp = PrivProtocol::parse(&args.priv_protocol)
        .ok_or_else(|| Error::usage(format!("-x {}: unknown protocol", args.priv_protocol)))?;
    let auth_pass = args.auth_pass()?;
    let priv_pass = args.priv_pass()?;
    let user = User::new(
        args.user.as_deref().unwrap_or(""),
        args.level,
        &args.context,
        auth_pass.as_deref().map(|p| (auth, p.as_bytes())),
        priv_pass.as_deref().map(|p| (privp, p.as_bytes())),
    )
    .map_err(Error::usage)?;
    Ok(Security::Usm(Arc::new(user)))
}

fn config(args: &SnmpwalkArgs, oids: Vec<Oid>) -> Result<Config> {
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(Error::usage("-t must be a positive number of seconds"));
    }
    if args.concurrency == 0 {
        return Err(Error::usage("--concurrency must be at least 1"));
    }
    let (gets, roots) = match args.op {
        Op::Get => (oids, Vec::new()),
        _ => (Vec::new(), oids),
    };
    Ok(Config {
        op: args.op,
        roots: roots.into(),
        gets,
        timeout: Duration::from_secs_f64(args.timeout),
        retries: args.retries,
        deadline: Duration::from_nanos(args.deadline.max(1) as u64),
        max_repetitions: args.max_repetitions()?,
        max_varbinds: args.max_varbinds,
        concurrency: args.concurrency,
    })
}

/// Walks the `--label` columns too when no root covers them.
fn add_label_roots(cfg: &mut Config, columns: Vec<Vec<u32>>) {
    if cfg.op == Op::Get {
        return;
    }
    let mut roots: Vec<Oid> = cfg.roots.to_vec();
    for c in columns {
        if !roots.iter().any(|r| c.starts_with(r.arcs())) {
            roots.push(Oid::from(c));
        }
    }
    cfg.roots = roots.into();
}

fn rounds(
    args: &SnmpwalkArgs,
    poller: &mut Poller,
    targets: &[Target],
    cfg: &Config,
    sink: &mut dyn FlushSink,
) -> Result<()> {
    let Some(interval) = args.interval else {
        let round = one_round(args, poller, targets, cfg, sink)?;
        if round.ok == 0 && round.failed > 0 {
            return Err(Error::unavailable(format!(
                "no agent answered ({} failed)",
                round.failed
            )));
        }
        return Ok(());
    };
    if interval <= 0 {
        return Err(Error::usage("--interval must be positive"));
    }
    crate::schedule::every(interval, args.count, |_| {
        one_round(args, poller, targets, cfg, sink).map(|_| ())
    })
}

fn one_round(
    args: &SnmpwalkArgs,
    poller: &mut Poller,
    targets: &[Target],
    cfg: &Config,
    sink: &mut dyn FlushSink,
) -> Result<Round> {
    let started = std::time::Instant::now();
    let bar = match args.progress {
        Progress::Auto => crate::publish::progress::bar(targets.len() as u64, "agents"),
        Progress::Never => None,
    };
    let round = {
        let mut with_bar = Counting {
            inner: &mut *sink,
            targets,
            bar: bar.as_ref(),
            failed: 0,
            varbinds: 0,
        };
        poller.round(targets, cfg, &mut with_bar)?
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    sink.flush()?;
    crate::log!(
        Info,
        "poll_done",
        agents = targets.len(),
        ok = round.ok,
        failed = round.failed,
        varbinds = round.varbinds,
        requests = round.requests,
        retries = round.retries,
        stray = round.stray,
        seconds = format!("{:.3}", started.elapsed().as_secs_f64())
    );
    Ok(round)
}

/// A sink whose output can be flushed at the end of a round.
pub trait FlushSink: Sink {
    fn flush(&mut self) -> Result<()>;
}

impl FlushSink for super::metrics::MetricSink<'_> {
    fn flush(&mut self) -> Result<()> {
        self.output().flush()
    }
}

impl FlushSink for super::print::TextSink<'_> {
    fn flush(&mut self) -> Result<()> {
        self.out.flush()
    }
}

/// Logs each failed agent and advances the progress bar (done/total, errors, varbinds/s),
/// whatever the output.
struct Counting<'s, 'b> {
    inner: &'s mut dyn FlushSink,
    targets: &'s [Target],
    bar: Option<&'b indicatif::ProgressBar>,
    failed: u64,
    varbinds: u64,
}

impl Sink for Counting<'_, '_> {
    fn varbind(&mut self, target: usize, vb: &VarBind) {
        self.varbinds += 1;
        self.inner.varbind(target, vb);
    }

    fn finished(&mut self, target: usize, outcome: &Outcome) -> Result<()> {
        if let Some(e) = &outcome.error {
            self.failed += 1;
            crate::log!(
                Warn,
                "poll_failed",
                agent = self.targets[target].name,
                seconds = format!("{:.3}", outcome.seconds),
                varbinds = outcome.varbinds,
                reason = e
            );
        }
        if let Some(b) = self.bar {
            b.inc(1);
            let per_sec = self.varbinds as f64 / b.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!(
                "agents, {} errors, {:.0} varbinds/s",
                self.failed, per_sec
            ));
        }
        self.inner.finished(target, outcome)
    }
}
