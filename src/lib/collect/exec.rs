//! The `exec` source: any program is a collector plugin. It runs once per interval, and what
//! it prints on stdout is read as metrics (tlm NDJSON, Graphite plaintext, InfluxDB line
//! protocol; the format is detected from the first line unless given). Its stderr is logged
//! line by line; a run that outlives `--timeout` is killed. Lines that do not parse are
//! counted and logged, never silently lost.

use crate::error::{Error, Result};
use crate::lineproto::detect::{detect, InputFormat};
use crate::lineproto::{graphite, influx};
use crate::log::RateLimit;
use crate::metric::Metric;
use crate::ndjson::Decoder;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of the plugin produced besides its metrics.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// Lines that did not parse.
    pub bad_lines: u64,
}

pub struct ExecCollector {
    argv: Vec<String>,
    timeout: Duration,
    format: InputFormat,
    decoder: Decoder,
    statsd: crate::statsd::parse::Parser,
    bad_log: RateLimit,
    /// `--persistent`: one long-running program read between collections.
    persistent: Option<super::execd::Persistent>,
}

impl ExecCollector {
    pub fn new(argv: Vec<String>, timeout: Duration, format: InputFormat) -> Result<ExecCollector> {
        if argv.is_empty() {
            return Err(Error::usage("exec needs a command"));
        }
        Ok(ExecCollector {
            argv,
            timeout,
            format,
            decoder: Decoder::default(),
            statsd: crate::statsd::parse::Parser::default(),
            bad_log: RateLimit::default(),
            persistent: None,
        })
    }

    /// Keeps one program running instead of one run per collection; each collection reads
    /// the complete lines it printed since the last one, after sending it `signal`.
    pub fn persistent(mut self, signal: super::execd::Signal) -> ExecCollector {
        let argv = self.argv.clone();
        self.persistent = Some(super::execd::Persistent::new(argv, signal, self.timeout));
        self
    }

    /// Runs the program once and appends what it printed; an error (it could not start, it
    /// timed out, it exited non-zero) leaves `out` as it was.
    pub fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<Run> {
        let stdout = match self.persistent.as_mut() {
            Some(p) => p.read()?,
            None => self.run_program()?,
        };
        self.parse_output(&stdout, now_ns, out)
    }

    /// Reads what the program printed; lines without a timestamp get `now_ns`.
    fn parse_output(&mut self, stdout: &[u8], now_ns: i64, out: &mut Vec<Metric>) -> Result<Run> {
        let text = String::from_utf8_lossy(stdout);
        let format = match self.format {
            InputFormat::Auto => text
                .lines()
                .find(|l| !l.trim().is_empty())
                .map_or(InputFormat::Ndjson, detect),
            given => given,
        };
        let mut run = Run::default();
        if format == InputFormat::Prometheus {
            let parsed = super::prom_text::parse(&text, now_ns);
            out.extend(parsed.metrics);
            for (line, why) in parsed.bad {
                self.bad_line(&mut run, line, &why);
            }
            return Ok(run);
        }
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            if let Err(why) = self.parse_line(format, line, now_ns, out) {
                self.bad_line(&mut run, i + 1, &why);
            }
        }
        Ok(run)
    }

    fn bad_line(&mut self, run: &mut Run, line: usize, why: &str) {
        run.bad_lines += 1;
        if let Some(suppressed) = self.bad_log.allow() {
            crate::log!(
                Warn,
                "bad_line",
                source = "exec",
                line = line,
                reason = why,
                suppressed = suppressed
            );
        }
    }

    fn parse_line(
        &mut self,
        format: InputFormat,
        line: &str,
        now_ns: i64,
        out: &mut Vec<Metric>,
    ) -> std::result::Result<(), String> {
        match format {
            InputFormat::Ndjson | InputFormat::Auto => {
                let mut m = Metric::default();
                self.decoder
                    .decode(line.as_bytes(), &mut m, || now_ns)
                    .map_err(|e| e.to_string())?;
                out.push(m);
                Ok(())
            }
            InputFormat::Graphite => graphite::parse(line, now_ns, out),
            InputFormat::Influx => influx::parse(line, now_ns, 1, out),
            InputFormat::Statsd => self
                .statsd
                .parse(line.as_bytes(), now_ns, |m| out.push(m.clone()))
                .map_err(|bad| bad.reason().to_string()),
            // Read as a whole page by `parse_output`.
            InputFormat::Prometheus => Err("a Prometheus line out of its page".into()),
        }
    }

    /// Runs the program to its end or the timeout; its stdout, or why there is none.
    fn run_program(&self) -> Result<Vec<u8>> {
        let name = &self.argv[0];
        let mut child = spawn(&self.argv, Stdio::null())?;
        let mut stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        });
        let logger = log_stderr(&mut child, name);
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    kill_group(&mut child);
                    let _ = logger.join();
                    return Err(Error::unavailable(format!(
                        "exec {name}: killed after the {:?} timeout",
                        self.timeout
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(Error::unavailable(format!("exec {name}: {e}"))),
            }
        };
        let out = reader.join().unwrap_or_default();
        let _ = logger.join();
        if !status.success() {
            return Err(Error::unavailable(format!("exec {name}: {status}")));
        }
        Ok(out)
    }
}

/// Starts the program in its own process group, so a timeout also ends what it started.
pub(super) fn spawn(argv: &[String], stdin: Stdio) -> Result<std::process::Child> {
    let name = argv.first().map_or("", String::as_str);
    Command::new(name)
        .args(argv.get(1..).unwrap_or_default())
        .process_group(0)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::unavailable(format!("exec {name}: cannot start: {e}")))
}

/// Logs the program's stderr line by line until it closes.
pub(super) fn log_stderr(
    child: &mut std::process::Child,
    name: &str,
) -> std::thread::JoinHandle<()> {
    let stderr = child.stderr.take();
    let program = name.to_owned();
    std::thread::spawn(move || {
        for line in stderr
            .into_iter()
            .flat_map(|s| BufReader::new(s).lines().map_while(|l| l.ok()))
        {
            crate::log!(Warn, "plugin_stderr", command = program, line = line);
        }
    })
}

/// Ends the child's whole process group and reaps the child.
pub(super) fn kill_group(child: &mut std::process::Child) {
    // SAFETY: kill(2) on the process group of a child we started and have not reaped, so
    // the group id is still ours.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Value;

    fn sh(script: &str, format: InputFormat) -> Result<(Vec<Metric>, Run)> {
        let argv = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        let mut c = ExecCollector::new(argv, Duration::from_secs(5), format)?;
        let mut out = Vec::new();
        let run = c.collect(42, &mut out)?;
        Ok((out, run))
    }

    #[test]
    fn each_format_is_read_and_detected() {
        let (ms, run) = sh("echo 'a.b 5 1700000000'; echo 'a.c 1.5'", InputFormat::Auto).unwrap();
        assert_eq!(run.bad_lines, 0);
        assert_eq!(ms.len(), 2);
        assert_eq!(
            (ms[0].name.as_str(), ms[0].value, ms[1].ts),
            ("a.b", Some(Value::U64(5)), 42)
        );
        let (ms, run) = sh(
            "printf '# TYPE jobs_total counter\\njobs_total 7\\n'",
            InputFormat::Auto,
        )
        .unwrap();
        assert_eq!(run.bad_lines, 0);
        assert_eq!(
            (ms[0].name.as_str(), ms[0].value),
            ("jobs", Some(Value::U64(7)))
        );
        let (ms, _) = sh("echo 'cpu,host=x idle=3i'", InputFormat::Auto).unwrap();
        assert_eq!(
            (ms[0].name.as_str(), ms[0].value),
            ("cpu.idle", Some(Value::U64(3)))
        );
        let (ms, _) = sh(
            r#"echo '{"name":"n","kind":"gauge","value":2}'"#,
            InputFormat::Auto,
        )
        .unwrap();
        assert_eq!((ms[0].name.as_str(), ms[0].ts), ("n", 42));
    }

    #[test]
    fn statsd_lines_are_read() {
        let (ms, run) = sh(
            "echo 'jobs.done:3|c|@0.5'; echo 'queue.depth:7|g'; echo 'job.ms:12|ms'; echo 'bad'",
            InputFormat::Auto,
        )
        .unwrap();
        assert_eq!(run.bad_lines, 1);
        let got: Vec<_> = ms.iter().map(|m| (m.name.as_str(), m.kind)).collect();
        assert_eq!(
            got,
            [
                ("jobs.done", crate::metric::Kind::Counter),
                ("queue.depth", crate::metric::Kind::Gauge),
                ("job.ms", crate::metric::Kind::Distribution)
            ]
        );
        // A sampled counter counts what it stands for.
        assert_eq!(ms[0].value.map(|v| v.as_f64()), Some(6.0));
    }

    #[test]
    fn a_persistent_plugin_answers_every_collection() {
        let argv = vec![
            "sh".to_string(),
            "-c".to_string(),
            "n=0; while read x; do n=$((n+1)); echo \"polls:$n|g\"; done".to_string(),
        ];
        let mut c = ExecCollector::new(argv, Duration::from_secs(5), InputFormat::Auto)
            .unwrap()
            .persistent(crate::collect::execd::Signal::Stdin);
        for want in 1..=3 {
            let mut out = Vec::new();
            c.collect(7, &mut out).unwrap();
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].value.map(|v| v.as_f64()), Some(want as f64));
        }
    }

    #[test]
    fn bad_lines_are_counted_and_the_rest_kept() {
        let (ms, run) = sh(
            "echo 'a 1 1700000000'; echo 'garbage here x y'; echo 'b 2 1700000000'",
            InputFormat::Graphite,
        )
        .unwrap();
        assert_eq!((ms.len(), run.bad_lines), (2, 1));
    }

    #[test]
    fn failures_are_errors() {
        let e = sh("echo 'a 1'; exit 3", InputFormat::Auto).unwrap_err();
        assert!(e.msg.contains("exit status: 3"), "{}", e.msg);
        let argv = vec!["sh".into(), "-c".into(), "sleep 5".into()];
        let mut c =
            ExecCollector::new(argv, Duration::from_millis(100), InputFormat::Auto).unwrap();
        let t0 = Instant::now();
        let e = c.collect(0, &mut Vec::new()).unwrap_err();
        assert!(
            e.msg.contains("timeout") && t0.elapsed() < Duration::from_secs(2),
            "{}",
            e.msg
        );
        let argv = vec!["/nonexistent/plugin".to_string()];
        let e = ExecCollector::new(argv, Duration::from_secs(1), InputFormat::Auto)
            .unwrap()
            .collect(0, &mut Vec::new())
            .unwrap_err();
        assert!(e.msg.contains("cannot start"), "{}", e.msg);
    }
}
