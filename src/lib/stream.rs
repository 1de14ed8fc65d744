//! The shared read → transform → write loop of the stream commands.
//!
//! A reader thread splits and decodes input into batches of metrics (reusing their buffers),
//! while the command's thread transforms and writes them. Signals and a wall-clock tick are
//! served on the same loop, so SIGINT/SIGTERM flush what is buffered before the command exits.

use crate::error::{Error, Result};
use crate::io::{Input, Output};
use crate::log::RateLimit;
use crate::metric::Metric;
use crate::ndjson::{Decoder, LineReader};
use crate::signals::Signals;
use crate::time::now_ns;
use crossbeam_channel::{bounded, select, tick, Receiver, Sender};
use std::time::Duration;

/// What a stream command does with the metrics it reads.
pub trait StreamSink {
    /// Handles one batch; `out` is flushed by the loop when no further batch is waiting.
    fn batch(&mut self, metrics: &[Metric], out: &mut Output) -> Result<()>;
    /// Called on every tick of the wall clock (see `StreamOptions::tick`); `idle` is true
    /// when no input arrived since the previous tick.
    fn tick(&mut self, _now: i64, _idle: bool, _out: &mut Output) -> Result<()> {
        Ok(())
    }
    /// End of input or a termination signal: emit everything still held.
    fn finish(&mut self, out: &mut Output) -> Result<()>;
}

#[derive(Clone, Debug)]
pub struct StreamOptions {
    pub max_line_bytes: usize,
    pub strict: bool,
    pub tick: Option<Duration>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_line_bytes: crate::ndjson::lines::DEFAULT_MAX_LINE_BYTES,
            strict: false,
            tick: None,
        }
    }
}

/// Counts of one run's input, logged at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub lines: u64,
    pub metrics: u64,
    pub bad_lines: u64,
}

struct Batch {
    metrics: Vec<Metric>,
    len: usize,
}

enum Msg {
    Batch(Batch),
    Done(Result<ReadStats>),
}

const BATCH_POOL: usize = 4;

/// Reads all `inputs` through `sink` and writes to `out`; returns the input counts.
pub fn run(
    inputs: Vec<Input>,
    opts: &StreamOptions,
    sink: &mut dyn StreamSink,
    out: &mut Output,
) -> Result<ReadStats> {
    let (to_main, from_reader) = bounded::<Msg>(BATCH_POOL);
    let (recycle, recycled) = bounded::<Batch>(BATCH_POOL + 1);
    for _ in 0..BATCH_POOL {
        let _ = recycle.send(Batch {
            metrics: Vec::new(),
            len: 0,
        });
    }
    let reader_opts = opts.clone();
    std::thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            let result = read_all(&inputs, &reader_opts, &to_main, &recycled);
            let _ = to_main.send(Msg::Done(result));
        })
        .map_err(|e| Error::internal(format!("cannot start reader thread: {e}")))?;

    let signals = Signals::termination()?;
    let ticker = opts.tick.map_or_else(crossbeam_channel::never, tick);
    let mut busy = false;
    let stats = loop {
        select! {
            recv(from_reader) -> msg => match msg {
                Ok(Msg::Batch(b)) => {
                    busy = true;
                    sink.batch(&b.metrics[..b.len], out)?;
                    let _ = recycle.send(b);
                    if from_reader.is_empty() {
                        out.flush()?;
                    }
                }
                Ok(Msg::Done(Ok(stats))) => break stats,
                Ok(Msg::Done(Err(e))) => {
                    // Under --strict, what was already produced still reaches the reader.
                    out.flush()?;
                    return Err(e);
                }
                Err(_) => return Err(Error::internal("reader thread ended without a result")),
            },
            recv(signals.receiver()) -> sig => {
                crate::log!(Info, "signal", signal = sig.map_or("?", crate::signals::name), action = "flush_and_exit");
                break ReadStats::default();
            },
            recv(ticker) -> _ => {
                sink.tick(now_ns(), !busy, out)?;
                busy = false;
                out.flush()?;
            },
        }
    };
    sink.finish(out)?;
    out.flush()?;
    Ok(stats)
}

fn read_all(
    inputs: &[Input],
    opts: &StreamOptions,
    to_main: &Sender<Msg>,
    recycled: &Receiver<Batch>,
) -> Result<ReadStats> {
    let mut stats = ReadStats::default();
    let mut decoder = Decoder::default();
    let mut limit = RateLimit::default();
    for input in inputs {
        let label = input.label();
        let mut lines = LineReader::new(input.open()?, opts.max_line_bytes);
        loop {
            let Ok(mut batch) = recycled.recv() else {
                return Ok(stats);
            };
            batch.len = 0;
            let mut failure: Option<Error> = None;
            let more = lines
                .read_chunk(|line_no, line| {
                    if failure.is_some() {
                        return;
                    }
                    stats.lines += 1;
                    if batch.len == batch.metrics.len() {
                        batch.metrics.push(Metric::default());
                    }
                    let m = &mut batch.metrics[batch.len];
                    let outcome = match line {
                        Ok(bytes) => decoder.decode(bytes, m, now_ns).map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match outcome {
                        Ok(()) => batch.len += 1,
                        Err(reason) => {
                            stats.bad_lines += 1;
                            failure =
                                bad_line(&label, line_no, &reason, opts.strict, &mut limit).err();
                        }
                    }
                })
                .map_err(|e| Error::new(crate::error::Exit::Io, format!("reading {label}: {e}")))?;
            stats.metrics += batch.len as u64;
            if let Some(err) = failure {
                return Err(err);
            }
            if to_main.send(Msg::Batch(batch)).is_err() || !more {
                break;
            }
        }
    }
    if stats.bad_lines > 0 {
        crate::log!(
            Warn,
            "bad_lines_total",
            count = stats.bad_lines,
            suppressed = limit.suppressed(),
            lines = stats.lines
        );
    }
    Ok(stats)
}

/// Logs (rate-limited) and counts one bad line; under `--strict` it ends the run with 65.
pub fn bad_line(
    source: &str,
    line_no: u64,
    reason: &str,
    strict: bool,
    limit: &mut RateLimit,
) -> Result<()> {
    if strict {
        crate::log!(
            Error,
            "bad_line",
            file = source,
            line = line_no,
            reason = reason
        );
        return Err(Error::data(format!(
            "bad input at {source}:{line_no} (--strict)"
        )));
    }
    if let Some(suppressed) = limit.allow() {
        if suppressed > 0 {
            crate::log!(
                Warn,
                "bad_line",
                file = source,
                line = line_no,
                reason = reason,
                suppressed = suppressed
            );
        } else {
            crate::log!(
                Warn,
                "bad_line",
                file = source,
                line = line_no,
                reason = reason
            );
        }
    }
    Ok(())
}
