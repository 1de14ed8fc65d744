//! The shared read → transform → write loop of the stream commands.
//!
//! A reader thread cuts the input into blocks of whole lines; decoder threads turn blocks into
//! batches of metrics in parallel (reusing every buffer), optionally preparing per-line work
//! such as series keys; the command's thread takes the batches back in input order, so output
//! is the same whatever the thread count. Signals and a wall-clock tick are served on the same
//! loop, so SIGINT/SIGTERM flush what is buffered before the command exits.

use crate::error::{Error, Exit, Result};
use crate::io::{Input, Output};
use crate::log::RateLimit;
use crate::metric::Metric;
use crate::ndjson::decode::Spans;
use crate::ndjson::{Decoder, LineBuf, LineError, LineReader};
use crate::signals::Signals;
use crate::time::now_ns;
use crossbeam_channel::{bounded, select, tick, Receiver, Sender};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// What a stream command does with the metrics it reads.
pub trait StreamSink {
    /// Handles one batch, in input order; `prepared` holds what the `Prepare` hook built for
    /// each metric (empty without one). `out` is flushed when no further batch is waiting.
    fn batch(&mut self, metrics: &[Metric], prepared: &Prepared, out: &mut Output) -> Result<()>;
    /// Merges the partial result a `Combine` hook built from one block, in input order.
    fn combined(&mut self, _part: &mut (dyn Any + Send), _out: &mut Output) -> Result<()> {
        Err(Error::internal("this command has no combine hook"))
    }
    /// Called on every tick of the wall clock (see `StreamOptions::tick`); `idle` is true
    /// when no input arrived since the previous tick.
    fn tick(&mut self, _now: i64, _idle: bool, _out: &mut Output) -> Result<()> {
        Ok(())
    }
    /// End of input or a termination signal: emit everything still held.
    fn finish(&mut self, out: &mut Output) -> Result<()>;
    /// Asked once the first block is handled: the block size for the rest of the input,
    /// when what that block showed calls for another (see `StreamOptions::size_after_first`).
    fn block_bytes_after_first(&self) -> Option<usize> {
        None
    }
}

/// Per-metric work done on the decoder threads: builds a key and returns its hash.
pub trait Prepare: Send {
    fn prepare(&mut self, m: &Metric, key: &mut Vec<u8>) -> u64;
}

/// Makes one `Prepare` per decoder thread.
pub type PrepareFactory = Arc<dyn Fn() -> Box<dyn Prepare> + Send + Sync>;

/// A partial result built from one block on a decoder thread.
pub type Part = Box<dyn Any + Send>;

/// Whole-block work on the decoder threads: folds the metrics of a block into a partial
/// result (such as per-window aggregates) that the command's thread merges in input order
/// with `StreamSink::combined`, so the per-metric work runs on every core.
pub trait Combine: Send {
    /// Starts a block; `recycled` is an earlier partial result, to reuse its buffers.
    fn begin(&mut self, recycled: Option<Part>);
    /// Folds one metric in; false when this block must go to `StreamSink::batch` instead.
    fn add(&mut self, m: &Metric) -> bool;
    /// How many lines ahead of `add_line` each line is shown to `look_ahead`.
    fn lines_ahead(&self) -> usize {
        0
    }
    /// Shows the next line of the block not shown yet (empty for an over-long one).
    fn look_ahead(&mut self, _line: &[u8]) {}
    /// Folds the next line of the block in without decoding it, when the combiner knows
    /// what it means (empty for an over-long one); false when it must be decoded and given
    /// to `add`.
    fn add_line(&mut self, _line: &[u8]) -> bool {
        false
    }
    /// Tells that `add` took the metric decoded from `line`, which held its value and ts
    /// where `spans` says.
    fn added_line(&mut self, _line: &[u8], _spans: &Spans) {}
    /// Ends the block and hands over its partial result.
    fn end(&mut self) -> Part;
}

/// Makes one `Combine` per decoder thread.
pub type CombineFactory = Arc<dyn Fn() -> Box<dyn Combine> + Send + Sync>;

/// Per-metric and per-block work a command runs on the decoder threads.
#[derive(Clone, Default)]
pub struct Hooks {
    pub prepare: Option<PrepareFactory>,
    pub combine: Option<CombineFactory>,
}

/// Keys and hashes prepared for the metrics of one batch, by index.
#[derive(Default)]
pub struct Prepared {
    keys: Vec<u8>,
    ends: Vec<u32>,
    hashes: Vec<u64>,
}

impl Prepared {
    fn clear(&mut self) {
        self.keys.clear();
        self.ends.clear();
        self.hashes.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    pub fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.keys[start..self.ends[i] as usize]
    }

    pub fn hash(&self, i: usize) -> u64 {
        self.hashes[i]
    }
}

#[derive(Clone, Debug)]
pub struct StreamOptions {
    pub max_line_bytes: usize,
    pub strict: bool,
    pub tick: Option<Duration>,
    /// Decoder threads.
    pub threads: usize,
    /// Lines are handed to the decoders in blocks of about this many bytes (at least one
    /// read), fewer when a live input has nothing more to read yet.
    pub block_bytes: usize,
    /// Bytes read so far, for a progress bar.
    pub bytes_read: Option<Arc<AtomicU64>>,
    /// The reader waits after the first block until the sink has seen it and named the
    /// block size for the rest (`StreamSink::block_bytes_after_first`). Block boundaries
    /// stay a function of the input alone, so the output does not depend on thread timing.
    pub size_after_first: bool,
    /// How long a block may wait, in all, for more of a live input (a pipe, a socket)
    /// before it is handed on short. A producer writing at full speed through a pipe is
    /// often a moment behind the reader; without a wait its blocks would be a pipe buffer
    /// each, and per-block work would dominate. Zero: never wait.
    pub linger: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_line_bytes: crate::ndjson::lines::DEFAULT_MAX_LINE_BYTES,
            strict: false,
            tick: None,
            threads: default_threads(),
            block_bytes: 0,
            bytes_read: None,
            size_after_first: false,
            linger: Duration::ZERO,
        }
    }
}

/// One decoder per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Counts of one run's input, logged at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub lines: u64,
    pub metrics: u64,
    pub bad_lines: u64,
}

/// Whole lines of one input, as read: `(line number, start, end)`, end `u32::MAX` for a line
/// over the length limit.
#[derive(Default)]
struct Block {
    seq: u64,
    label: Arc<str>,
    data: LineBuf,
    lines: Vec<(u64, u32, u32)>,
    /// The line length limit, for the reason given for over-long lines.
    limit: usize,
}

const TOO_LONG: u32 = u32::MAX;

impl Block {
    /// The bytes of a line of this block; `None` for an over-long one.
    fn line(&self, (_, start, end): (u64, u32, u32)) -> Option<&[u8]> {
        (end != TOO_LONG).then(|| &self.data.text()[start as usize..end as usize])
    }
}

#[derive(Default)]
struct Batch {
    seq: u64,
    label: Arc<str>,
    metrics: Vec<Metric>,
    len: usize,
    prepared: Prepared,
    /// Bad lines: (line number, reason).
    errors: Vec<(u64, String)>,
    lines: u64,
    /// The block's partial result when a `Combine` hook folded it (then `len` is 0).
    part: Option<Part>,
    combined: bool,
}

enum Msg {
    Batch(Batch),
    /// The reader is done after `blocks` blocks, or failed.
    ReaderDone {
        blocks: u64,
        result: Result<()>,
    },
}

/// Reads all `inputs` through `sink` and writes to `out`; returns the input counts.
pub fn run(
    inputs: Vec<Input>,
    opts: &StreamOptions,
    sink: &mut dyn StreamSink,
    out: &mut Output,
) -> Result<ReadStats> {
    run_with(inputs, opts, Hooks::default(), sink, out)
}

/// Like `run`, with per-metric and per-block work on the decoder threads.
pub fn run_with(
    inputs: Vec<Input>,
    opts: &StreamOptions,
    hooks: Hooks,
    sink: &mut dyn StreamSink,
    out: &mut Output,
) -> Result<ReadStats> {
    let threads = opts.threads.max(1);
    // Blocks and batches in flight: one per decoder, one being read and one queued. Each
    // block's buffer is as large as the sink's block size (16 MiB for tlm-agg on few
    // series), so more would only add memory to fault in and zero.
    let pool = threads + 2;
    let (to_main, from_workers) = bounded::<Msg>(pool);
    let (to_workers, blocks) = bounded::<Block>(pool);
    let (return_block, free_blocks) = bounded::<Block>(pool);
    let (return_batch, free_batches) = bounded::<Batch>(pool);
    for _ in 0..pool {
        let _ = return_block.send(Block::default());
        let _ = return_batch.send(Batch::default());
    }
    for i in 0..threads {
        let (blocks, free_batches, return_block, to_main) = (
            blocks.clone(),
            free_batches.clone(),
            return_block.clone(),
            to_main.clone(),
        );
        let work = Work {
            decoder: Decoder::default(),
            prepare: hooks.prepare.as_ref().map(|f| f()),
            combine: hooks.combine.as_ref().map(|f| f()),
        };
        spawn(&format!("decoder-{i}"), move || {
            decode_blocks(&blocks, &free_batches, &return_block, &to_main, work)
        })?;
    }
    drop((blocks, free_batches));
    let (size_tx, size_rx) = bounded::<usize>(1);
    let sizes = BlockSizes {
        max_line: opts.max_line_bytes,
        target: opts.block_bytes,
        read: opts.bytes_read.clone(),
        after_first: opts.size_after_first.then_some(size_rx),
        linger: opts.linger,
    };
    spawn("reader", move || {
        let (blocks, result) = read_blocks(&inputs, sizes, &to_workers, &free_blocks);
        let _ = to_main.send(Msg::ReaderDone { blocks, result });
    })?;
    let mut state = MainLoop {
        size_tx: opts.size_after_first.then_some(size_tx),
        opts,
        stats: ReadStats::default(),
        limit: RateLimit::default(),
        pending: BTreeMap::new(),
        next: 0,
        total: None,
    };
    let outcome = state.serve(&from_workers, &return_batch, sink, out);
    if let Err(e) = outcome {
        // Under --strict, what was already produced still reaches the reader.
        out.flush()?;
        return Err(e);
    }
    state.log_bad_lines();
    sink.finish(out)?;
    out.flush()?;
    Ok(state.stats)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| Error::internal(format!("cannot start thread {name}: {e}")))
}

struct MainLoop<'a> {
    /// Tells the reader the block size after the first block (`size_after_first`).
    size_tx: Option<Sender<usize>>,
    opts: &'a StreamOptions,
    stats: ReadStats,
    limit: RateLimit,
    /// Batches that arrived ahead of their turn.
    pending: BTreeMap<u64, Batch>,
    next: u64,
    total: Option<u64>,
}

impl MainLoop<'_> {
    fn serve(
        &mut self,
        from_workers: &Receiver<Msg>,
        return_batch: &Sender<Batch>,
        sink: &mut dyn StreamSink,
        out: &mut Output,
    ) -> Result<()> {
        let signals = Signals::termination()?;
        let ticker = self.opts.tick.map_or_else(crossbeam_channel::never, tick);
        let mut busy = false;
        while self.total != Some(self.next) {
            select! {
                recv(from_workers) -> msg => match msg {
                    Ok(Msg::Batch(b)) => {
                        busy = true;
                        self.pending.insert(b.seq, b);
                        while let Some(mut b) = self.pending.remove(&self.next) {
                            self.next += 1;
                            let handled = self.handle(&mut b, sink, out);
                            if let Some(tx) = self.size_tx.take() {
                                let size = sink.block_bytes_after_first();
                                let _ = tx.send(size.unwrap_or(self.opts.block_bytes));
                            }
                            handled?;
                            let _ = return_batch.send(b);
                        }
                        if from_workers.is_empty() {
                            out.flush()?;
                        }
                    }
                    Ok(Msg::ReaderDone { blocks, result }) => {
                        result?;
                        self.total = Some(blocks);
                    }
                    Err(_) => return Err(Error::internal("decoder threads ended early")),
                },
                recv(signals.receiver()) -> sig => {
                    crate::log!(Info, "signal", signal = sig.map_or("?", crate::signals::name), action = "flush_and_exit");
                    return Ok(());
                },
                recv(ticker) -> _ => {
                    sink.tick(now_ns(), !busy, out)?;
                    busy = false;
                    out.flush()?;
                },
            }
        }
        Ok(())
    }

    fn handle(&mut self, b: &mut Batch, sink: &mut dyn StreamSink, out: &mut Output) -> Result<()> {
        self.stats.lines += b.lines;
        self.stats.metrics += b.len as u64;
        for (line_no, reason) in &b.errors {
            self.stats.bad_lines += 1;
            bad_line(
                &b.label,
                *line_no,
                reason,
                self.opts.strict,
                &mut self.limit,
            )?;
        }
        match (&mut b.part, b.combined) {
            (Some(part), true) => sink.combined(&mut **part, out),
            _ => sink.batch(&b.metrics[..b.len], &b.prepared, out),
        }
    }

    fn log_bad_lines(&self) {
        if self.stats.bad_lines > 0 {
            crate::log!(
                Warn,
                "bad_lines_total",
                count = self.stats.bad_lines,
                suppressed = self.limit.suppressed(),
                lines = self.stats.lines
            );
        }
    }
}

#[derive(Clone)]
struct BlockSizes {
    max_line: usize,
    /// Bytes a block is filled to while the input has more to read at once.
    target: usize,
    read: Option<Arc<AtomicU64>>,
    /// Where the block size for the blocks after the first arrives, if it is awaited.
    after_first: Option<Receiver<usize>>,
    linger: Duration,
}

/// Cuts every input into blocks of whole lines; returns how many blocks were sent.
fn read_blocks(
    inputs: &[Input],
    mut sizes: BlockSizes,
    to_workers: &Sender<Block>,
    free: &Receiver<Block>,
) -> (u64, Result<()>) {
    let mut seq = 0;
    // A block that received no whole line is refilled rather than sent, so none leaves the pool.
    let mut spare: Option<Block> = None;
    for input in inputs {
        let label: Arc<str> = input.label().into();
        let (src, ready) = match input.open_polled() {
            Ok(opened) => opened,
            Err(e) => return (seq, Err(e)),
        };
        let mut lines = LineReader::new(src, sizes.max_line);
        loop {
            let mut block = match spare.take() {
                Some(b) => b,
                None => match free.recv() {
                    Ok(b) => b,
                    Err(_) => return (seq, Ok(())),
                },
            };
            (block.seq, block.label, block.limit) = (seq, label.clone(), sizes.max_line);
            lines.begin(&mut block.data);
            block.lines.clear();
            let filled = fill_block(&mut lines, &mut block, &sizes, &ready);
            lines.end(&mut block.data);
            let more = match filled {
                Ok(more) => more,
                Err(e) => {
                    return (
                        seq,
                        Err(Error::new(Exit::Io, format!("reading {label}: {e}"))),
                    )
                }
            };
            if let Some(read) = &sizes.read {
                read.fetch_add(
                    block.data.text().len() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            if block.lines.is_empty() {
                spare = Some(block);
            } else {
                if to_workers.send(block).is_err() {
                    return (seq, Ok(()));
                }
                seq += 1;
                if seq == 1 {
                    if let Some(size) = sizes.after_first.as_ref().and_then(|r| r.recv().ok()) {
                        sizes.target = size;
                    }
                }
            }
            if !more {
                break;
            }
        }
    }
    (seq, Ok(()))
}

/// Reads into `block` until it holds `target` bytes, the input ends (false), or a live
/// input has nothing more to read right now, so a quiet stream is never held back.
fn fill_block<R: std::io::Read>(
    lines: &mut LineReader<R>,
    block: &mut Block,
    sizes: &BlockSizes,
    ready: &crate::io::Readiness,
) -> std::io::Result<bool> {
    let target = sizes.target;
    let mut deadline: Option<std::time::Instant> = None;
    loop {
        // Offsets are u32: a block stays well below 4 GiB whatever the target.
        let target = target.min(1 << 30);
        let want = target.saturating_sub(block.data.filled());
        let more = lines.read_chunk(&mut block.data, want, |no, line| match line {
            Ok((start, end)) => block.lines.push((no, start as u32, end as u32)),
            Err(_) => block.lines.push((no, 0, TOO_LONG)),
        })?;
        let full = block.data.filled() >= target && !block.lines.is_empty();
        if !more || full {
            return Ok(more);
        }
        if !ready.readable_now() {
            let now = std::time::Instant::now();
            let until = *deadline.get_or_insert(now + sizes.linger);
            if now >= until || !ready.readable_within(until - now) {
                return Ok(more);
            }
        }
    }
}

/// What one decoder thread runs on each block.
struct Work {
    decoder: Decoder,
    prepare: Option<Box<dyn Prepare>>,
    combine: Option<Box<dyn Combine>>,
}

fn decode_blocks(
    blocks: &Receiver<Block>,
    free_batches: &Receiver<Batch>,
    return_block: &Sender<Block>,
    to_main: &Sender<Msg>,
    mut work: Work,
) {
    // A batch is taken before a block: the decoder holding the block that the command's
    // thread waits for must never wait for a batch parked in the reorder buffer.
    while let Ok(mut batch) = free_batches.recv() {
        let Ok(block) = blocks.recv() else {
            return;
        };
        (batch.seq, batch.label, batch.len, batch.lines) =
            (block.seq, block.label.clone(), 0, block.lines.len() as u64);
        batch.combined = false;
        if !work.combine_block(&block, &mut batch) {
            work.decode_block(&block, &mut batch);
        }
        let _ = return_block.send(block);
        if to_main.send(Msg::Batch(batch)).is_err() {
            return;
        }
    }
}

impl Work {
    /// Folds the block with the `Combine` hook; false when there is none or it declined.
    fn combine_block(&mut self, block: &Block, batch: &mut Batch) -> bool {
        let Some(combine) = self.combine.as_mut() else {
            return false;
        };
        batch.errors.clear();
        combine.begin(batch.part.take());
        if batch.metrics.is_empty() {
            batch.metrics.push(Metric::default());
        }
        let m = &mut batch.metrics[0];
        let mut folded = true;
        let ahead = combine.lines_ahead();
        let text = |i: usize| {
            let line = *block.lines.get(i)?;
            Some(block.line(line).unwrap_or_default())
        };
        for next in (0..ahead).filter_map(text) {
            combine.look_ahead(next);
        }
        for (i, &line) in block.lines.iter().enumerate() {
            if let Some(next) = text(i + ahead).filter(|_| ahead > 0) {
                combine.look_ahead(next);
            }
            if !fold_line(
                &mut self.decoder,
                combine.as_mut(),
                block,
                line,
                m,
                &mut batch.errors,
            ) {
                folded = false;
                break;
            }
        }
        batch.part = Some(combine.end());
        batch.combined = folded;
        folded
    }

    fn decode_block(&mut self, block: &Block, batch: &mut Batch) {
        batch.errors.clear();
        batch.prepared.clear();
        for &line in &block.lines {
            if batch.len == batch.metrics.len() {
                batch.metrics.push(Metric::default());
            }
            let m = &mut batch.metrics[batch.len];
            if !decode_line(&mut self.decoder, block, line, m, &mut batch.errors) {
                continue;
            }
            if let Some(p) = self.prepare.as_mut() {
                let hash = p.prepare(m, &mut batch.prepared.keys);
                batch.prepared.ends.push(batch.prepared.keys.len() as u32);
                batch.prepared.hashes.push(hash);
            }
            batch.len += 1;
        }
    }
}

/// Folds one line of `block` in: placed by the combiner as it stands when it knows the line,
/// else decoded into `m` (a bad line goes to `errors`) and added. False when the combiner
/// declined the block.
fn fold_line(
    decoder: &mut Decoder,
    combine: &mut dyn Combine,
    block: &Block,
    line: (u64, u32, u32),
    m: &mut Metric,
    errors: &mut Vec<(u64, String)>,
) -> bool {
    let bytes = block.line(line).unwrap_or_default();
    if combine.add_line(bytes) || !decode_line(decoder, block, line, m, errors) {
        return true;
    }
    if !combine.add(m) {
        return false;
    }
    if !bytes.is_empty() {
        combine.added_line(bytes, &decoder.spans());
    }
    true
}

/// Decodes one line of `block` into `m`; a bad or over-long line goes to `errors` (false).
fn decode_line(
    decoder: &mut Decoder,
    block: &Block,
    line: (u64, u32, u32),
    m: &mut Metric,
    errors: &mut Vec<(u64, String)>,
) -> bool {
    let no = line.0;
    let Some(bytes) = block.line(line) else {
        errors.push((no, LineError::TooLong { limit: block.limit }.to_string()));
        return false;
    };
    match decoder.decode(bytes, m, now_ns) {
        Ok(()) => true,
        Err(e) => {
            errors.push((no, e.to_string()));
            false
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the blocks it is handed and names a block size after the first.
    struct Blocks {
        seen: usize,
        after_first: Option<usize>,
    }

    impl StreamSink for Blocks {
        fn batch(&mut self, _: &[Metric], _: &Prepared, _: &mut Output) -> Result<()> {
            self.seen += 1;
            Ok(())
        }

        fn finish(&mut self, _: &mut Output) -> Result<()> {
            Ok(())
        }

        fn block_bytes_after_first(&self) -> Option<usize> {
            self.after_first
        }
    }

    fn blocks_seen(lines: usize, after_first: Option<usize>) -> usize {
        let dir = std::env::temp_dir().join(format!("tlm-stream-{}-{lines}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("in-{after_first:?}.ndjson"));
        let line = r#"{"name":"a","kind":"gauge","value":1,"ts":1}"#;
        std::fs::write(&path, format!("{line}\n").repeat(lines)).unwrap();
        let opts = StreamOptions {
            threads: 2,
            block_bytes: 4096,
            size_after_first: true,
            ..StreamOptions::default()
        };
        let mut sink = Blocks {
            seen: 0,
            after_first,
        };
        let mut out = Output::to(Box::new(std::io::sink()));
        let stats = run(vec![Input::File(path)], &opts, &mut sink, &mut out).unwrap();
        assert_eq!(stats.lines, lines as u64);
        std::fs::remove_dir_all(&dir).unwrap();
        sink.seen
    }

    #[test]
    fn the_sink_sizes_the_blocks_after_the_first() {
        // 46 bytes a line, 10 MB: blocks of one read each (4 KiB asked), or one such block
        // and then blocks of 4 MiB.
        let small = blocks_seen(220_000, None);
        let large = blocks_seen(220_000, Some(4 << 20));
        assert!(small >= 16, "{small}");
        assert!(large <= 5, "{large} against {small}");
    }

    /// Blocks made of a FIFO written in 40 pieces, 5 ms apart, read with `linger`.
    fn blocks_from_a_slow_pipe(linger: Duration) -> usize {
        let dir = std::env::temp_dir().join(format!(
            "tlm-stream-fifo-{}-{}",
            std::process::id(),
            linger.as_millis()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in");
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let writer_path = path.clone();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(writer_path)
                .unwrap();
            let line = r#"{"name":"a","kind":"gauge","value":1,"ts":1}"#;
            // Pauses long enough for a loaded machine's reader to find the pipe empty.
            for _ in 0..40 {
                f.write_all(format!("{line}\n").repeat(50).as_bytes())
                    .unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let opts = StreamOptions {
            threads: 1,
            block_bytes: 16 << 20,
            linger,
            ..StreamOptions::default()
        };
        let mut sink = Blocks {
            seen: 0,
            after_first: None,
        };
        let mut out = Output::to(Box::new(std::io::sink()));
        let stats = run(vec![Input::File(path)], &opts, &mut sink, &mut out).unwrap();
        writer.join().unwrap();
        assert_eq!(stats.lines, 2000);
        std::fs::remove_dir_all(&dir).unwrap();
        sink.seen
    }

    #[test]
    fn a_live_input_fills_blocks_while_lingering() {
        let eager = blocks_from_a_slow_pipe(Duration::ZERO);
        let patient = blocks_from_a_slow_pipe(Duration::from_secs(5));
        assert!(eager >= 5, "{eager}");
        assert!(patient <= 2, "{patient}");
    }

    #[test]
    fn a_single_block_input_ends_without_waiting() {
        assert_eq!(blocks_seen(3, Some(1 << 20)), 1);
        assert_eq!(blocks_seen(3, None), 1);
    }
}
