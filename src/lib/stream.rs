//! The shared read → transform → write loop of the stream commands.
//!
//! A reader thread cuts the input into blocks of whole lines; decoder threads turn blocks into
//! batches of metrics in parallel (reusing every buffer), optionally preparing per-line work
//! such as series keys; the command's thread takes the batches back in input order, so output
//! is the same whatever the thread count. Signals and a wall-clock tick are served on the same
//! loop, so SIGINT/SIGTERM flush what is buffered before the command exits.

use crate::error::{Error, Exit, Result};
use crate::io::mapped::Mapping;
use crate::io::{Input, Output};
use crate::log::RateLimit;
use crate::metric::Metric;
use crate::ndjson::decode::Spans;
use crate::ndjson::{Decoder, LineBuf, LineError, LineReader};
use crate::signals::Signals;
use crate::time::now_ns;
use crossbeam_channel::{bounded, select, tick, Receiver, Sender};
use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
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
    /// The most bytes a block read into a buffer (from a pipe, a socket) holds, whatever
    /// `block_bytes` and the sink ask for: such a block's size is memory held, which a
    /// block of a mapped file's is not (its pages are mapped while they are decoded).
    pub max_buffered_block: usize,
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
    /// With `size_after_first`: how long the first block may wait, in all, when longer
    /// than `linger`. What the sink learns from the first block decides how the rest is
    /// read, so it should not be cut short while the producer starts.
    pub first_linger: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_line_bytes: crate::ndjson::lines::DEFAULT_MAX_LINE_BYTES,
            strict: false,
            tick: None,
            threads: default_threads(),
            block_bytes: 0,
            max_buffered_block: usize::MAX,
            bytes_read: None,
            size_after_first: false,
            linger: Duration::ZERO,
            first_linger: Duration::ZERO,
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

/// Whole lines of one input: read into `data` and split by the reader into `lines`
/// (`(line number, start, end)`, end `u32::MAX` for a line over the length limit), or a
/// range of a mapped file, which the decoder splits itself (`Block::lines`).
#[derive(Default)]
struct Block {
    seq: u64,
    label: Arc<str>,
    data: LineBuf,
    lines: Vec<(u64, u32, u32)>,
    /// The line length limit, for the reason given for over-long lines.
    limit: usize,
    mapped: Option<MappedRange>,
}

/// Bytes `from..to` of input number `input`, mapped; they end with a newline, or at the
/// end of the file.
struct MappedRange {
    map: Arc<Mapping>,
    from: u64,
    to: u64,
    input: usize,
}

const TOO_LONG: u32 = u32::MAX;

impl Block {
    /// The bytes the block's lines are ranges of.
    fn text(&self) -> &[u8] {
        match &self.mapped {
            Some(r) => r.map.bytes(r.from, r.to),
            None => self.data.text(),
        }
    }

    /// The block's lines in order. Those of a mapped range are numbered from 1 within it.
    fn lines(&self) -> Lines<'_> {
        match &self.mapped {
            Some(range) => Lines::Split(Splitter {
                text: self.text(),
                at: 0,
                no: 0,
                max_line: self.limit,
                pages: Pages {
                    range,
                    mapped_to: 0,
                    released_to: 0,
                },
            }),
            None => Lines::Listed(self.lines.iter()),
        }
    }
}

/// A block's lines: as the reader listed them, or split from a mapped range here.
enum Lines<'b> {
    Listed(std::slice::Iter<'b, (u64, u32, u32)>),
    Split(Splitter<'b>),
}

impl Lines<'_> {
    /// How many line numbers the lines given so far took (empty lines included): what a
    /// mapped block adds to the line numbers of the blocks after it.
    fn numbered(&self) -> u64 {
        match self {
            Lines::Listed(_) => 0,
            Lines::Split(s) => s.no,
        }
    }
}

impl Iterator for Lines<'_> {
    type Item = (u64, u32, u32);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Lines::Listed(it) => it.next().copied(),
            Lines::Split(s) => s.next(),
        }
    }
}

/// Splits a mapped range into lines as `LineReader` does a stream: every newline ends a
/// numbered line, empty lines (and a lone `\r`) are skipped, a line over `max_line` bytes
/// is given as over-long, and a last line may lack its newline.
struct Splitter<'b> {
    text: &'b [u8],
    at: usize,
    no: u64,
    max_line: usize,
    pages: Pages<'b>,
}

/// The pages of a mapped range that are mapped into the process: a window that moves with
/// the splitter, so a block of any size holds a few MiB of memory while it is decoded.
struct Pages<'b> {
    range: &'b MappedRange,
    /// Offsets into the range up to which pages were asked for, and from which they are
    /// still mapped.
    mapped_to: usize,
    released_to: usize,
}

/// Pages are mapped in steps of this many bytes, one step ahead of the splitter, and
/// unmapped a step behind it (lines shown ahead to a combiner are a few KiB at most).
const PAGE_STEP: usize = 1 << 20;

impl Pages<'_> {
    #[inline]
    fn follow(&mut self, at: usize, len: usize) {
        if at + PAGE_STEP / 2 <= self.mapped_to || self.mapped_to >= len {
            return;
        }
        let from = self.range.from;
        let to = (self.mapped_to + PAGE_STEP).min(len);
        self.range
            .map
            .populate(from + self.mapped_to as u64, from + to as u64);
        self.mapped_to = to;
        let behind = at.saturating_sub(PAGE_STEP);
        if behind > self.released_to {
            self.range
                .map
                .release(from + self.released_to as u64, from + behind as u64);
            self.released_to = behind;
        }
    }
}

impl Iterator for Splitter<'_> {
    type Item = (u64, u32, u32);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        while self.at < self.text.len() {
            let start = self.at;
            let end =
                memchr::memchr(b'\n', &self.text[start..]).map_or(self.text.len(), |p| start + p);
            self.at = end + 1;
            self.no += 1;
            self.pages.follow(self.at, self.text.len());
            // Lines are read in order, from pages the hardware prefetcher does not cross:
            // the bytes as far ahead as this line is long are asked for now.
            let ahead = self.text.as_ptr().wrapping_add(end + PREFETCH_AHEAD);
            for at in (0..end - start + 64).step_by(64) {
                crate::prefetch::prefetch(ahead.wrapping_add(at));
            }
            let line = &self.text[start..end];
            if line.len() > self.max_line || end > u32::MAX as usize {
                return Some((self.no, 0, TOO_LONG));
            }
            if !line.is_empty() && line != b"\r" {
                return Some((self.no, start as u32, end as u32));
            }
        }
        None
    }
}

/// How far ahead of the line just found the splitter has the bytes loaded.
const PREFETCH_AHEAD: usize = 2048;

/// The bytes of a line of a block's `text`; `None` for an over-long one.
#[inline]
fn line_of(text: &[u8], (_, start, end): (u64, u32, u32)) -> Option<&[u8]> {
    (end != TOO_LONG).then(|| &text[start as usize..end as usize])
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
    /// For a mapped block: its input and how many line numbers it took. Its line numbers
    /// (in `errors`) count from the start of the block, and the command's thread, which
    /// sees the blocks in order, adds the lines of the blocks before it.
    numbering: Option<(usize, u64)>,
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
        max_buffered: opts.max_buffered_block,
        read: opts.bytes_read.clone(),
        after_first: opts.size_after_first.then_some(size_rx),
        linger: opts.linger,
        first_linger: opts.first_linger,
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
        line_numbers: LineNumbers::new(),
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
    line_numbers: LineNumbers,
}

/// Where the line numbers of a mapped block start: after the lines of the blocks of its
/// input before it, which the command's thread sees in order.
struct LineNumbers {
    input: usize,
    taken: u64,
}

impl LineNumbers {
    fn new() -> LineNumbers {
        LineNumbers {
            input: usize::MAX,
            taken: 0,
        }
    }

    /// What to add to the line numbers of the next block, given its `Batch::numbering`.
    fn base(&mut self, numbering: Option<(usize, u64)>) -> u64 {
        let Some((input, numbered)) = numbering else {
            return 0;
        };
        if self.input != input {
            (self.input, self.taken) = (input, 0);
        }
        let base = self.taken;
        self.taken += numbered;
        base
    }
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
        let base = self.line_numbers.base(b.numbering);
        for (line_no, reason) in &b.errors {
            self.stats.bad_lines += 1;
            bad_line(
                &b.label,
                base + *line_no,
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
    /// The most a buffered block is filled to (`StreamOptions::max_buffered_block`).
    max_buffered: usize,
    read: Option<Arc<AtomicU64>>,
    /// Where the block size for the blocks after the first arrives, if it is awaited.
    after_first: Option<Receiver<usize>>,
    linger: Duration,
    /// `StreamOptions::first_linger`.
    first_linger: Duration,
}

/// Cuts every input into blocks of whole lines; returns how many blocks were sent.
fn read_blocks(
    inputs: &[Input],
    sizes: BlockSizes,
    to_workers: &Sender<Block>,
    free: &Receiver<Block>,
) -> (u64, Result<()>) {
    let mut reader = Reader {
        sizes,
        to_workers,
        free,
        seq: 0,
        spare: None,
    };
    let result = inputs
        .iter()
        .enumerate()
        .try_for_each(|(i, input)| reader.read_input(i, input));
    let result = match result {
        Err(Stop::Error(e)) => Err(e),
        Ok(()) | Err(Stop::Closed) => Ok(()),
    };
    (reader.seq, result)
}

/// Why the reader stopped early.
enum Stop {
    Error(Error),
    /// Nobody takes blocks any more (the command is ending).
    Closed,
}

/// The reader thread's state across inputs.
struct Reader<'a> {
    sizes: BlockSizes,
    to_workers: &'a Sender<Block>,
    free: &'a Receiver<Block>,
    seq: u64,
    /// A block that received no whole line is refilled rather than sent, so none leaves
    /// the pool.
    spare: Option<Block>,
}

impl Reader<'_> {
    fn read_input(&mut self, index: usize, input: &Input) -> std::result::Result<(), Stop> {
        let label: Arc<str> = input.label().into();
        match input.open_for_blocks().map_err(Stop::Error)? {
            crate::io::Opened::Regular(file, from, len) => {
                match Mapping::of(&file, from, len, &label) {
                    Some(map) => self.read_mapped(index, &label, &file, from, map),
                    None => {
                        self.read_stream(&label, Box::new(file), crate::io::Readiness::always())
                    }
                }
            }
            crate::io::Opened::Stream(src, ready) => self.read_stream(&label, src, ready),
        }
    }

    fn take_block(&mut self, label: &Arc<str>) -> std::result::Result<Block, Stop> {
        let mut block = match self.spare.take() {
            Some(b) => b,
            None => self.free.recv().map_err(|_| Stop::Closed)?,
        };
        (block.seq, block.label, block.limit) = (self.seq, label.clone(), self.sizes.max_line);
        block.mapped = None;
        block.lines.clear();
        Ok(block)
    }

    /// How long the next block may wait for more of a live input: longer for a first block
    /// whose size the sink learns from (`StreamOptions::first_linger`).
    fn linger(&self) -> Duration {
        let sizes = &self.sizes;
        match (self.seq, &sizes.after_first) {
            (0, Some(_)) => sizes.linger.max(sizes.first_linger),
            _ => sizes.linger,
        }
    }

    fn send(&mut self, block: Block, bytes: usize) -> std::result::Result<(), Stop> {
        if let Some(read) = &self.sizes.read {
            read.fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
        }
        self.to_workers.send(block).map_err(|_| Stop::Closed)?;
        self.seq += 1;
        if self.seq == 1 {
            if let Some(size) = self.sizes.after_first.as_ref().and_then(|r| r.recv().ok()) {
                self.sizes.target = size;
            }
        }
        Ok(())
    }

    /// A regular file, mapped: blocks are ranges of it that end with a newline, and the
    /// decoders split them into lines. A file that grew while it was read is mapped again
    /// from where the last block ended, as a read would go on to its new end.
    fn read_mapped(
        &mut self,
        index: usize,
        label: &Arc<str>,
        file: &std::fs::File,
        mut pos: u64,
        mut map: Arc<Mapping>,
    ) -> std::result::Result<(), Stop> {
        loop {
            let target = self.sizes.target.clamp(1, 1 << 30) as u64;
            let to = match cut_after(&map, pos, target) {
                Some(to) => to,
                None => {
                    let now = file.metadata().map(|m| m.len()).unwrap_or(0);
                    if now > map.end() {
                        if let Some(grown) = Mapping::of(file, pos, now, label) {
                            map = grown;
                            continue;
                        }
                    }
                    if pos >= map.end() {
                        // Where reads would have left the offset: standard input may be
                        // read on by the next command.
                        let mut offset = file;
                        let _ = std::io::Seek::seek(&mut offset, std::io::SeekFrom::Start(pos));
                        return Ok(());
                    }
                    map.end()
                }
            };
            let mut block = self.take_block(label)?;
            block.mapped = Some(MappedRange {
                map: map.clone(),
                from: pos,
                to,
                input: index,
            });
            self.send(block, (to - pos) as usize)?;
            pos = to;
        }
    }

    fn read_stream(
        &mut self,
        label: &Arc<str>,
        src: Box<dyn std::io::Read + Send>,
        ready: crate::io::Readiness,
    ) -> std::result::Result<(), Stop> {
        let mut lines = LineReader::new(src, self.sizes.max_line);
        loop {
            let mut block = self.take_block(label)?;
            lines.begin(&mut block.data);
            let filled = fill_block(&mut lines, &mut block, &self.sizes, (&ready, self.linger()));
            lines.end(&mut block.data);
            let more = filled
                .map_err(|e| Stop::Error(Error::new(Exit::Io, format!("reading {label}: {e}"))))?;
            if block.lines.is_empty() {
                self.spare = Some(block);
            } else {
                let bytes = block.data.text().len();
                self.send(block, bytes)?;
            }
            if !more {
                return Ok(());
            }
        }
    }
}

/// Where a block of about `target` bytes from `pos` ends: just past the last newline
/// within `target` bytes, or past the first one after that when a line is longer. `None`
/// when no newline follows `pos` in the mapping.
fn cut_after(map: &Mapping, pos: u64, target: u64) -> Option<u64> {
    let limit = pos.saturating_add(target).min(map.end());
    if let Some(i) = memchr::memrchr(b'\n', map.bytes(pos, limit)) {
        return Some(pos + i as u64 + 1);
    }
    memchr::memchr(b'\n', map.bytes(limit, map.end())).map(|i| limit + i as u64 + 1)
}

/// Reads into `block` until it holds `target` bytes, the input ends (false), or a live
/// input has nothing more to read right now, so a quiet stream is never held back.
fn fill_block<R: std::io::Read>(
    lines: &mut LineReader<R>,
    block: &mut Block,
    sizes: &BlockSizes,
    (ready, linger): (&crate::io::Readiness, Duration),
) -> std::io::Result<bool> {
    let target = sizes.target.min(sizes.max_buffered);
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
            let until = *deadline.get_or_insert(now + linger);
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
        (batch.seq, batch.label, batch.len) = (block.seq, block.label.clone(), 0);
        batch.combined = false;
        let lines = match work.combine_block(&block, &mut batch) {
            Some(lines) => lines,
            None => work.decode_block(&block, &mut batch),
        };
        (batch.lines, batch.numbering) = lines;
        if let Some(r) = &block.mapped {
            r.map.release(r.from, r.to);
        }
        let _ = return_block.send(block);
        if to_main.send(Msg::Batch(batch)).is_err() {
            return;
        }
    }
}

/// Lines of a block, and for a mapped one its input and the line numbers it took.
type Counted = (u64, Option<(usize, u64)>);

fn counted(block: &Block, lines: u64, split: &Lines) -> Counted {
    let numbering = block.mapped.as_ref().map(|r| (r.input, split.numbered()));
    (lines, numbering)
}

impl Work {
    /// Folds the block with the `Combine` hook; `None` when there is none or it declined.
    fn combine_block(&mut self, block: &Block, batch: &mut Batch) -> Option<Counted> {
        let combine = self.combine.as_mut()?;
        batch.errors.clear();
        combine.begin(batch.part.take());
        if batch.metrics.is_empty() {
            batch.metrics.push(Metric::default());
        }
        let m = &mut batch.metrics[0];
        let (text, limit) = (block.text(), block.limit);
        let mut lines = block.lines();
        // Each line is shown to `look_ahead` this many lines before it is folded.
        let ahead = combine.lines_ahead();
        let mut upcoming: VecDeque<(u64, u32, u32)> = VecDeque::with_capacity(ahead + 1);
        for line in lines.by_ref().take(ahead) {
            combine.look_ahead(line_of(text, line).unwrap_or_default());
            upcoming.push_back(line);
        }
        let mut folded = true;
        let mut count = 0;
        loop {
            let line = match upcoming.pop_front() {
                Some(line) => {
                    if let Some(next) = lines.next() {
                        combine.look_ahead(line_of(text, next).unwrap_or_default());
                        upcoming.push_back(next);
                    }
                    line
                }
                None if ahead == 0 => match lines.next() {
                    Some(line) => line,
                    None => break,
                },
                None => break,
            };
            count += 1;
            if !fold_line(
                &mut self.decoder,
                combine.as_mut(),
                text,
                limit,
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
        folded.then(|| counted(block, count, &lines))
    }

    fn decode_block(&mut self, block: &Block, batch: &mut Batch) -> Counted {
        batch.errors.clear();
        batch.prepared.clear();
        let (text, limit) = (block.text(), block.limit);
        let mut lines = block.lines();
        let mut count = 0;
        for line in lines.by_ref() {
            count += 1;
            if batch.len == batch.metrics.len() {
                batch.metrics.push(Metric::default());
            }
            let m = &mut batch.metrics[batch.len];
            if !decode_line(&mut self.decoder, text, limit, line, m, &mut batch.errors) {
                continue;
            }
            if let Some(p) = self.prepare.as_mut() {
                let hash = p.prepare(m, &mut batch.prepared.keys);
                batch.prepared.ends.push(batch.prepared.keys.len() as u32);
                batch.prepared.hashes.push(hash);
            }
            batch.len += 1;
        }
        counted(block, count, &lines)
    }
}

/// Folds one line of a block's `text` in: placed by the combiner as it stands when it knows
/// the line, else decoded into `m` (a bad line goes to `errors`) and added. False when the
/// combiner declined the block.
fn fold_line(
    decoder: &mut Decoder,
    combine: &mut dyn Combine,
    text: &[u8],
    limit: usize,
    line: (u64, u32, u32),
    m: &mut Metric,
    errors: &mut Vec<(u64, String)>,
) -> bool {
    let bytes = line_of(text, line).unwrap_or_default();
    if combine.add_line(bytes) || !decode_line(decoder, text, limit, line, m, errors) {
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

/// Decodes one line of a block's `text` into `m`; a bad or over-long line goes to `errors`
/// (false).
fn decode_line(
    decoder: &mut Decoder,
    text: &[u8],
    limit: usize,
    line: (u64, u32, u32),
    m: &mut Metric,
    errors: &mut Vec<(u64, String)>,
) -> bool {
    let no = line.0;
    let Some(bytes) = line_of(text, line) else {
        errors.push((no, LineError::TooLong { limit }.to_string()));
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

    /// Blocks made of a FIFO written in 40 pieces, 5 ms apart, read with `linger`, and
    /// with `first_linger` for a first block that names the size of the rest.
    fn blocks_from_a_slow_pipe(linger: Duration, first_linger: Option<Duration>) -> usize {
        let dir = std::env::temp_dir().join(format!(
            "tlm-stream-fifo-{}-{}-{:?}",
            std::process::id(),
            linger.as_millis(),
            first_linger.map(|d| d.as_millis())
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
            size_after_first: first_linger.is_some(),
            first_linger: first_linger.unwrap_or_default(),
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
        let eager = blocks_from_a_slow_pipe(Duration::ZERO, None);
        let patient = blocks_from_a_slow_pipe(Duration::from_secs(5), None);
        assert!(eager >= 5, "{eager}");
        assert!(patient <= 2, "{patient}");
    }

    #[test]
    fn a_first_block_that_names_the_size_lingers_longer() {
        // Everything arrives within the first block's wait; later blocks would not wait.
        let first = blocks_from_a_slow_pipe(Duration::ZERO, Some(Duration::from_secs(5)));
        assert_eq!(first, 1);
    }

    /// Every line of `inputs` as the reader and the decoders see it, in blocks of about
    /// `target` bytes: (input, line number, text or `None` when over-long), numbers made
    /// absolute as the command's thread makes them.
    fn lines_read(
        inputs: &[Input],
        target: usize,
        max_line: usize,
    ) -> Vec<(usize, u64, Option<Vec<u8>>)> {
        let (to_workers, blocks) = bounded::<Block>(64);
        let (return_block, free) = bounded::<Block>(4);
        for _ in 0..4 {
            return_block.send(Block::default()).unwrap();
        }
        let sizes = BlockSizes {
            max_line,
            target,
            max_buffered: usize::MAX,
            read: None,
            after_first: None,
            linger: Duration::ZERO,
            first_linger: Duration::ZERO,
        };
        let inputs = inputs.to_vec();
        let reader = std::thread::spawn(move || read_blocks(&inputs, sizes, &to_workers, &free));
        let mut got = Vec::new();
        let mut numbers = LineNumbers::new();
        for block in blocks.iter() {
            let mut lines = block.lines();
            let text = block.text();
            let mut here = Vec::new();
            for line in lines.by_ref() {
                here.push((line.0, line_of(text, line).map(<[u8]>::to_vec)));
            }
            let numbering = block.mapped.as_ref().map(|r| (r.input, lines.numbered()));
            let input = numbering.map_or(0, |(i, _)| i);
            let base = numbers.base(numbering);
            got.extend(here.into_iter().map(|(no, l)| (input, base + no, l)));
            if let Some(r) = &block.mapped {
                r.map.release(r.from, r.to);
            }
            let _ = return_block.send(block);
        }
        let (_, result) = reader.join().unwrap();
        result.unwrap();
        got
    }

    /// The lines `LineReader` gives for `data`, numbered as the stream does.
    fn lines_of_stream(data: &[u8], max_line: usize) -> Vec<(u64, Option<Vec<u8>>)> {
        let mut r = LineReader::new(data, max_line);
        let mut buf = LineBuf::default();
        r.begin(&mut buf);
        let mut ranges = Vec::new();
        while r
            .read_chunk(&mut buf, 1 << 20, |n, l| ranges.push((n, l)))
            .unwrap()
        {}
        let text = buf.text();
        ranges
            .into_iter()
            .map(|(n, l)| (n, l.ok().map(|(s, e)| text[s..e].to_vec())))
            .collect()
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tlm-stream-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn a_mapped_file_gives_the_lines_a_read_one_does() {
        let mut rng = crate::rng::XorShift::with_seed(7);
        for case in 0..40 {
            let mut data = Vec::new();
            for _ in 0..rng.below(400) {
                match rng.below(10) {
                    0 => data.push(b'\n'),
                    1 => data.extend_from_slice(b"\r\n"),
                    2 => data.extend_from_slice(&vec![b'L'; 60 + rng.below(60) as usize]),
                    _ => data.extend_from_slice(&vec![
                        b'a' + rng.below(26) as u8;
                        rng.below(30) as usize
                    ]),
                }
                if rng.below(8) > 0 {
                    data.push(b'\n');
                }
            }
            let path = temp_path(&format!("case-{case}"));
            std::fs::write(&path, &data).unwrap();
            let want: Vec<_> = lines_of_stream(&data, 64)
                .into_iter()
                .map(|(n, l)| (0, n, l))
                .collect();
            for target in [1, 7, 64, 500, 1 << 20] {
                let got = lines_read(&[Input::File(path.clone())], target, 64);
                assert_eq!(got, want, "case {case}, blocks of {target}");
            }
            // Two inputs: numbers start again with the second.
            let twice = lines_read(
                &[Input::File(path.clone()), Input::File(path.clone())],
                50,
                64,
            );
            let mut want2 = want.clone();
            want2.extend(want.iter().map(|(_, n, l)| (1, *n, l.clone())));
            assert_eq!(twice, want2, "case {case}, twice");
            std::fs::remove_file(&path).unwrap();
        }
    }

    /// Blocks larger than a few steps of mapped pages: pages are mapped ahead of the
    /// splitter and unmapped behind it, and every line still reads as written.
    #[test]
    fn lines_of_large_mapped_blocks_survive_their_pages_coming_and_going() {
        let mut data = Vec::new();
        let mut no = 0u64;
        while data.len() < 12 * PAGE_STEP + 12_345 {
            no += 1;
            data.extend_from_slice(
                format!("line {no} {}\n", "x".repeat((no % 300) as usize)).as_bytes(),
            );
        }
        let path = temp_path("large");
        std::fs::write(&path, &data).unwrap();
        let want: Vec<_> = lines_of_stream(&data, 1 << 20)
            .into_iter()
            .map(|(n, l)| (0, n, l))
            .collect();
        assert_eq!(want.len() as u64, no);
        for target in [3 * PAGE_STEP + 1, 64 << 20] {
            assert_eq!(
                lines_read(&[Input::File(path.clone())], target, 1 << 20),
                want
            );
        }
        // One block of the whole file: while it is split, at most a few steps of its pages
        // count as the process's memory (the kernel may map a file's pages 2 MiB at a time).
        let file = std::fs::File::open(&path).unwrap();
        let map = Mapping::of(&file, 0, data.len() as u64, "t").unwrap();
        let block = Block {
            limit: 1 << 20,
            mapped: Some(MappedRange {
                map,
                from: 0,
                to: data.len() as u64,
                input: 0,
            }),
            ..Block::default()
        };
        let start = block.text().as_ptr() as usize;
        let mut most = 0;
        for (i, _) in block.lines().enumerate() {
            if i % 1000 == 0 {
                most = most.max(resident_kib(start));
            }
        }
        assert!(
            most > 0 && most <= 6 * PAGE_STEP as u64 / 1024,
            "{most} KiB"
        );
        std::fs::remove_file(&path).unwrap();
    }

    /// The resident KiB of the mapping that starts at `start`, from /proc/self/smaps.
    fn resident_kib(start: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut ours = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((from, _)) = range.split_once('-') {
                    if let Ok(from) = usize::from_str_radix(from, 16) {
                        ours = from == start;
                        continue;
                    }
                }
            }
            if let (true, Some(kib)) = (ours, line.strip_prefix("Rss:")) {
                return kib.trim().trim_end_matches(" kB").trim().parse().unwrap();
            }
        }
        panic!("no mapping at {start:x}")
    }

    #[test]
    fn a_file_that_grows_while_it_is_read_is_read_to_its_new_end() {
        let path = temp_path("grows");
        let line = b"0123456789abcdef\n";
        std::fs::write(&path, line.repeat(1000)).unwrap();
        let (to_workers, blocks) = bounded::<Block>(1);
        let (return_block, free) = bounded::<Block>(2);
        for _ in 0..2 {
            return_block.send(Block::default()).unwrap();
        }
        let sizes = BlockSizes {
            max_line: 100,
            target: 1000,
            max_buffered: usize::MAX,
            read: None,
            after_first: None,
            linger: Duration::ZERO,
            first_linger: Duration::ZERO,
        };
        let inputs = vec![Input::File(path.clone())];
        let reader = std::thread::spawn(move || read_blocks(&inputs, sizes, &to_workers, &free));
        let mut lines = 0;
        let mut first = true;
        for block in blocks.iter() {
            if first {
                // The reader holds at most a few blocks of 1000 bytes: it has not reached
                // the end of the 17000 bytes yet. A line is appended in two pieces, the
                // first one unfinished at the old end.
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                std::io::Write::write_all(&mut f, b"tail-").unwrap();
                std::io::Write::write_all(&mut f, b"line\nlast").unwrap();
                first = false;
            }
            let text = block.text();
            for l in block.lines() {
                let bytes = line_of(text, l).unwrap();
                assert!(
                    bytes == &line[..16] || bytes == b"tail-line" || bytes == b"last",
                    "{bytes:?}"
                );
                lines += 1;
            }
            let _ = return_block.send(block);
        }
        reader.join().unwrap().1.unwrap();
        assert_eq!(lines, 1002);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_single_block_input_ends_without_waiting() {
        assert_eq!(blocks_seen(3, Some(1 << 20)), 1);
        assert_eq!(blocks_seen(3, None), 1);
    }
}
