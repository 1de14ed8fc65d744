//! `tlm-collect task FILE`: several sources at their own intervals in one process, from a
//! small TOML file (Snap's task manifest, without the RPC). Each `[[source]]` table is the
//! command line of one source written as keys: `type` names the subcommand, `url`, `file`
//! and `command` are its operands, and every other key is a long flag (`interval = "5s"` is
//! `--interval 5s`, an array repeats the flag, `true` sets a switch, a table gives `KEY=VALUE`
//! pairs). So a task file accepts exactly what the command line accepts, checked the same
//! way. Top-level `interval`, `jitter`, `timeout` and `tag` are defaults for every source.
//!
//! Each source runs on its own thread: a slow or hung source delays nobody, and a failing
//! one reports `collect.up 0` under its own `source` tag while the others go on.

use super::{Plan, Source};
use crate::error::{Error, Result};
use crate::io::Output;
use crate::metric::Metric;
use crossbeam_channel::{bounded, select, Receiver, Sender};
use std::time::{Duration, Instant};
use toml::{Table, Value};

/// One source of a task: its name (the `source` tag of its `collect.*` metrics) and the
/// arguments of `tlm-collect` that describe it, subcommand first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSource {
    pub name: String,
    pub argv: Vec<String>,
}

/// Operands, in the order the subcommand takes them.
const OPERANDS: [&str; 3] = ["url", "file", "command"];
/// Top-level keys that are defaults for every source.
const DEFAULTS: [&str; 4] = ["interval", "jitter", "timeout", "tag"];
/// Sources whose collections make a request that can time out.
const TAKES_TIMEOUT: [&str; 4] = ["exec", "nginx", "prometheus", "http"];

/// Reads a task file.
pub fn load(path: &std::path::Path) -> Result<Vec<TaskSource>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::no_input(format!("task {}: {e}", path.display())))?;
    parse(&text).map_err(|e| Error::usage(format!("task {}: {}", path.display(), e.msg)))
}

/// The sources a task file describes.
pub fn parse(text: &str) -> Result<Vec<TaskSource>> {
    let table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::usage(e.to_string().trim_end().to_owned()))?;
    let mut defaults = Table::new();
    let mut sources = Vec::new();
    for (key, value) in table {
        match (key.as_str(), value) {
            ("source", Value::Array(list)) => sources = list,
            (k, v) if DEFAULTS.contains(&k) => {
                defaults.insert(key, v);
            }
            (k, _) => {
                return Err(Error::usage(format!(
                    "unknown top-level key `{k}` (expected [[source]] tables and {})",
                    DEFAULTS.join(", ")
                )))
            }
        }
    }
    if sources.is_empty() {
        return Err(Error::usage("no [[source]] tables"));
    }
    let mut out: Vec<TaskSource> = Vec::new();
    for (i, s) in sources.into_iter().enumerate() {
        let Value::Table(t) = s else {
            return Err(Error::usage(format!("source {}: not a table", i + 1)));
        };
        let src = source_argv(t, &defaults)
            .map_err(|e| Error::usage(format!("source {}: {}", i + 1, e.msg)))?;
        if out.iter().any(|o| o.name == src.name) {
            return Err(Error::usage(format!(
                "source {}: a second source named `{}`; give one a `name`",
                i + 1,
                src.name
            )));
        }
        out.push(src);
    }
    Ok(out)
}

fn source_argv(mut t: Table, defaults: &Table) -> Result<TaskSource> {
    let kind = match t.remove("type") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(Error::usage(
                "needs `type = \"system\"` (or exec, nginx, …)",
            ))
        }
    };
    if kind == "task" {
        return Err(Error::usage("a task cannot hold a task"));
    }
    let name = match t.remove("name") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(Error::usage("`name` must be a string")),
        None => kind.clone(),
    };
    for (k, v) in defaults {
        if k == "timeout" && !TAKES_TIMEOUT.contains(&kind.as_str()) {
            continue;
        }
        t.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let mut argv = vec![kind];
    let mut operands = Vec::new();
    for (key, value) in t {
        if OPERANDS.contains(&key.as_str()) {
            operands.push((key, value));
            continue;
        }
        flag_args(&key, value, &mut argv)?;
    }
    operands.sort_by_key(|(k, _)| OPERANDS.iter().position(|o| o == k));
    for (key, value) in operands {
        operand_args(&key, value, &mut argv)?;
    }
    Ok(TaskSource { name, argv })
}

fn flag_args(key: &str, value: Value, argv: &mut Vec<String>) -> Result<()> {
    let flag = format!("--{}", key.replace('_', "-"));
    match value {
        Value::Boolean(true) => argv.push(flag),
        Value::Boolean(false) => {}
        Value::Array(items) => {
            for item in items {
                argv.push(flag.clone());
                argv.push(scalar(key, item)?);
            }
        }
        Value::Table(pairs) => {
            for (k, v) in pairs {
                argv.push(flag.clone());
                argv.push(format!("{k}={}", scalar(key, v)?));
            }
        }
        other => {
            argv.push(flag);
            argv.push(scalar(key, other)?);
        }
    }
    Ok(())
}

/// `command` may be an array (the program and its arguments) or a string (run by `sh -c`).
fn operand_args(key: &str, value: Value, argv: &mut Vec<String>) -> Result<()> {
    match (key, value) {
        ("command", Value::String(line)) => {
            argv.extend(["--".into(), "sh".into(), "-c".into(), line]);
        }
        ("command", Value::Array(items)) => {
            argv.push("--".into());
            for item in items {
                argv.push(scalar(key, item)?);
            }
        }
        (_, value) => argv.push(scalar(key, value)?),
    }
    Ok(())
}

fn scalar(key: &str, value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Integer(n) => Ok(n.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(Error::usage(format!(
            "`{key}`: expected a string or a number"
        ))),
    }
}

/// A source under the name its task gave it.
pub struct Named {
    pub name: String,
    pub inner: Box<dyn Source + Send>,
}

impl Source for Named {
    fn name(&self) -> &str {
        &self.name
    }

    fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<()> {
        self.inner.collect(now_ns, out)
    }
}

/// How long, after SIGINT/SIGTERM, the sources' last collections may take before the task
/// ends without them.
const FINISH_GRACE: Duration = Duration::from_secs(15);

/// Runs every source on its own thread until each has reached its count or a signal came;
/// collections are written to `out` as they complete, one batch at a time.
pub fn run(sources: Vec<(Named, Plan)>, out: &mut Output) -> Result<()> {
    let signals = crate::signals::Signals::termination()?;
    let (stop_tx, stop_rx) = bounded::<i32>(0);
    let (batch_tx, batch_rx) = bounded::<Vec<Metric>>(64);
    for (source, plan) in sources {
        spawn_source(source, plan, stop_rx.clone(), batch_tx.clone())?;
    }
    drop(batch_tx);
    let mut stop_tx = Some(stop_tx);
    let mut deadline: Option<Instant> = None;
    loop {
        let wait = deadline.map_or(Duration::from_secs(3600), |d| {
            d.saturating_duration_since(Instant::now())
        });
        select! {
            recv(batch_rx) -> batch => match batch {
                Ok(batch) => {
                    out.write_ndjson(&batch)?;
                    out.flush()?;
                }
                Err(_) => return Ok(()),
            },
            recv(signals.receiver()) -> sig => {
                if let Ok(sig) = sig {
                    crate::log!(Info, "signal", signal = crate::signals::name(sig), action = "finish");
                }
                // Disconnecting `stop` ends every schedule after its current collection.
                stop_tx.take();
                deadline.get_or_insert_with(|| Instant::now() + FINISH_GRACE);
            },
            recv(crossbeam_channel::after(wait)) -> _ => {
                if deadline.is_some() {
                    crate::log!(Warn, "sources_unfinished", action = "exit", reason = "still collecting after the grace period");
                    return Ok(());
                }
            },
        }
    }
}

fn spawn_source(
    mut source: Named,
    plan: Plan,
    stop: Receiver<i32>,
    batches: Sender<Vec<Metric>>,
) -> Result<()> {
    let thread = format!("source-{}", source.name);
    std::thread::Builder::new()
        .name(thread)
        .spawn(move || {
            let sent = super::run_until(&mut source, &plan, &stop, &mut |batch| {
                batches
                    .send(batch.to_vec())
                    .map_err(|_| Error::internal("the writer has ended"))
            });
            if let Err(e) = sent {
                crate::log!(Debug, "source_ended", source = source.name, reason = e.msg);
            }
        })
        .map(|_| ())
        .map_err(|e| Error::internal(format!("cannot start a source thread: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(text: &str) -> Vec<(String, Vec<String>)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|s| (s.name, s.argv))
            .collect()
    }

    #[test]
    fn sources_become_command_lines() {
        let got = argvs(
            r#"
interval = "10s"
timeout = "3s"
tag = { role = "edge" }

[[source]]
type = "system"
mount = ["/", "/var*"]

[[source]]
type = "nginx"
name = "front"
url = "http://127.0.0.1:8080/status"
interval = "5s"

[[source]]
type = "exec"
input_format = "influx"
persistent = true
command = ["/usr/lib/tlm/ups.sh", "--all"]

[[source]]
type = "exec"
name = "queue"
command = "echo queue.depth $(wc -l < /tmp/q)"
"#,
        );
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                (
                    "system".into(),
                    s(&[
                        "system",
                        "--interval",
                        "10s",
                        "--mount",
                        "/",
                        "--mount",
                        "/var*",
                        "--tag",
                        "role=edge"
                    ])
                ),
                (
                    "front".into(),
                    s(&[
                        "nginx",
                        "--interval",
                        "5s",
                        "--tag",
                        "role=edge",
                        "--timeout",
                        "3s",
                        "http://127.0.0.1:8080/status"
                    ])
                ),
                (
                    "exec".into(),
                    s(&[
                        "exec",
                        "--input-format",
                        "influx",
                        "--interval",
                        "10s",
                        "--persistent",
                        "--tag",
                        "role=edge",
                        "--timeout",
                        "3s",
                        "--",
                        "/usr/lib/tlm/ups.sh",
                        "--all"
                    ])
                ),
                (
                    "queue".into(),
                    s(&[
                        "exec",
                        "--interval",
                        "10s",
                        "--tag",
                        "role=edge",
                        "--timeout",
                        "3s",
                        "--",
                        "sh",
                        "-c",
                        "echo queue.depth $(wc -l < /tmp/q)"
                    ])
                ),
            ]
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (text, want) in [
            ("", "no [[source]]"),
            (
                "interval = \"1s\"\nfoo = 1\n[[source]]\ntype=\"system\"",
                "unknown top-level key `foo`",
            ),
            ("[[source]]\nmount = \"/\"", "source 1: needs `type"),
            (
                "[[source]]\ntype = \"system\"\n[[source]]\ntype = \"system\"",
                "a second source named `system`",
            ),
            ("[[source]]\ntype = \"task\"", "a task cannot hold a task"),
            (
                "[[source]]\ntype = \"system\"\nmount = [{a=1}]",
                "`mount`: expected a string",
            ),
            ("[[source]\ntype = \"system\"", "TOML parse error"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.msg.contains(want), "{text:?}: {}", e.msg);
        }
    }
}
