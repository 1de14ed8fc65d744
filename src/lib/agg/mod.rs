//! Windowed aggregation: the core that tlm-agg runs on NDJSON and tlm-statsd runs on flushes.
//!
//! Points are grouped by series (or by `--by`/`--without` tag sets) and by window of event
//! time (`ts`), tumbling or sliding, aligned to the Unix epoch. A window is written once the
//! newest event time seen passes its end plus the allowed lateness, when the input has been
//! idle past that point on the wall clock, or at the end of input. Output is ordered by
//! window, then series name and tags, so runs diff cleanly. The rules per kind are in
//! docs/aggregation.md.

pub mod config;
pub mod counter;
pub mod direct;
pub mod emit;
pub mod etsy;
pub mod fork;
pub mod hll;
pub mod inspect;
pub mod partial;
pub mod ranges;
pub mod series;
pub mod shapes;
pub mod shard;
pub mod sketch;
pub mod state;

pub use config::{AggConfig, Clock, GaugeStat, Grouping, Idle, Late, NameFilter};
pub use state::Limits;

use crate::error::{Error, Result};
use crate::io::Output;
use crate::metric::Metric;
use crate::ndjson::encode::LineCache;
use crate::stream::{Combine, Hooks, Prepare, PrepareFactory, Prepared, StreamSink};
use crate::time::{align_down, now_ns};
use emit::{Emitter, Totals};
use partial::Partial;
use ranges::KeyRanges;
use series::{KeyHasher, SeriesId, SeriesTable};
use shard::{Shard, Window};
use state::State;
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Input block size for tlm-agg: large enough that a block's partial aggregate is much
/// smaller than its lines (fewer entries to merge), small enough to keep memory modest.
pub const BLOCK_BYTES: usize = 8 << 20;

/// The block size once the first block showed few series for its lines: each block's
/// partial aggregate then holds about one entry per series and window whatever its size,
/// so larger blocks mean fewer entries for the decoders to make and the command's thread
/// to merge. With many series it would only hold more memory.
pub const FEW_SERIES_BLOCK_BYTES: usize = 48 << 20;

/// The most a block read into a buffer (from a pipe) holds: four such buffers are in
/// flight, while a mapped file's blocks hold only the pages being decoded.
pub const MAX_BUFFERED_BLOCK_BYTES: usize = 16 << 20;

/// How long tlm-agg lets a block of a live input wait for more lines: windows last
/// seconds, so a few milliseconds cost nothing in latency and let a fast producer's
/// lines arrive in blocks worth combining. `cat` fills a pipe at about 1 GB/s here: in
/// 20 ms, a buffered block's 16 MiB (with 5 ms, blocks of a 10K-series stream averaged
/// 4 MiB and it took 10% longer).
pub const BLOCK_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// How long the first block of a live input may wait, in all, for more lines: the first
/// block decides the block size and whether entries are looked up for the rest of the
/// stream, so it should hold what the producer writes at full speed, not its first
/// milliseconds. Once, at the start, and shorter than any window.
pub const FIRST_BLOCK_LINGER: std::time::Duration = std::time::Duration::from_millis(250);

/// Counts of one aggregation run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggStats {
    pub points: u64,
    pub late: u64,
    pub filtered: u64,
    pub refused: u64,
    pub rejected: u64,
    pub resets: u64,
    pub wraps: u64,
    pub windows: u64,
    pub emitted: u64,
}

impl AggStats {
    fn add(&mut self, o: &AggStats) {
        self.points += o.points;
        self.late += o.late;
        self.filtered += o.filtered;
        self.refused += o.refused;
        self.rejected += o.rejected;
        self.resets += o.resets;
        self.wraps += o.wraps;
        self.windows += o.windows;
        self.emitted += o.emitted;
    }
}

pub struct Aggregator {
    cfg: AggConfig,
    /// The state, split by ranges of the series key (one shard unless `set_threads`).
    shards: Vec<Shard>,
    /// The key range of each shard, chosen from the first keys seen; shared with the
    /// decoder threads, which find the range of each entry they make.
    ranges: Arc<OnceLock<KeyRanges>>,
    /// Newest event time seen.
    watermark: i64,
    /// Windows starting at or before this instant have been written.
    closed_through: i64,
    /// Points, filtered points, windows and lines written (the rest is counted per shard).
    stats: AggStats,
    scratch: Metric,
    key: Vec<u8>,
    hasher: KeyHasher,
    /// Threads that merge and encode.
    threads: usize,
    /// Below these sizes, merging and encoding stay on the command's thread.
    parallel_merge_min: usize,
    encode_chunk: usize,
    /// Buffers kept from block to block and window to window: fresh large allocations
    /// cost page faults every time.
    encode_bufs: Vec<Vec<u8>>,
    /// Windows close only on `advance` (a daemon's flush clock), not as event time moves.
    held: bool,
    /// Points and entries of the first block's partial aggregate.
    first_block: Option<(u64, usize)>,
    /// Blocks handled so far, whole or point by point.
    blocks_seen: u64,
    /// Set when the stream's first block showed that looking up entries within a block
    /// does not pay (`partial::Combiner::skip_lookups_after_first`).
    skip_lookups: Arc<AtomicBool>,
}

/// A block whose entries are at least this share of its points (in tenths) has series that
/// rarely come twice in it.
const MANY_SERIES_TENTHS: u64 = 9;

/// Whether a first block of `points` and `entries` came from a stream of many series.
fn many_series(points: u64, entries: u64) -> bool {
    points >= partial::LOOKED_FIRST && entries * 10 >= points * MANY_SERIES_TENTHS
}

/// Partial aggregates with fewer entries than this are merged without helper threads.
const PARALLEL_MERGE_MIN: usize = 16384;
/// How far ahead of the entry being merged each step of a series lookup is prefetched:
/// the slot first, then the key's location, then its bytes, each step reading the last.
const MERGE_LOOKAHEAD: [(usize, series::Lookup); 3] = [
    (12, series::Lookup::Slot),
    (8, series::Lookup::Span),
    (4, series::Lookup::Bytes),
];
/// Series per encoding job when a large window is written on several threads.
const ENCODE_CHUNK: usize = 8192;
/// Room reserved per group in an encoding job's buffer: about a summary line.
const LINE_BYTES_GUESS: usize = 256;
/// Key ranges per merging thread: threads take ranges in turn until none is left, so one
/// that starts late or has a slow range makes the others wait for at most about one range.
const SHARDS_PER_THREAD: usize = 8;

impl Aggregator {
    pub fn new(cfg: AggConfig) -> Aggregator {
        let hasher = KeyHasher::random();
        Aggregator {
            shards: vec![Shard::new(&cfg, &hasher)],
            cfg,
            ranges: Arc::new(OnceLock::new()),
            hasher,
            watermark: i64::MIN,
            closed_through: i64::MIN,
            stats: AggStats::default(),
            scratch: Metric::default(),
            key: Vec::new(),
            threads: 1,
            parallel_merge_min: PARALLEL_MERGE_MIN,
            encode_chunk: ENCODE_CHUNK,
            encode_bufs: Vec::new(),
            held: false,
            first_block: None,
            blocks_seen: 0,
            skip_lookups: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Lets only `advance` close windows. A daemon merging what several sockets received
    /// has no order across them, so the newest point seen says nothing about whether the
    /// others have delivered theirs; its flush clock does.
    pub fn hold_windows(&mut self) {
        self.held = true;
    }

    /// Writes every window that ends at or before `until` minus the lateness, then the
    /// corrections late points made.
    pub fn advance(&mut self, until: i64, out: &mut Output) -> Result<()> {
        self.watermark = self.watermark.max(until);
        // Idle series are reported even for a window in which nothing arrived at all.
        let ended = align_down(until.saturating_sub(self.cfg.window), self.cfg.step());
        if self.cfg.idle != Idle::Skip && ended > self.closed_through {
            for shard in &mut self.shards {
                shard.windows.entry(ended).or_default();
            }
        }
        self.close_until(until.saturating_sub(self.cfg.lateness), out)?;
        self.write_corrections(out)?;
        for shard in &mut self.shards {
            shard.compact();
        }
        Ok(())
    }

    /// Merges and encodes on `n` threads, the state split in `SHARDS_PER_THREAD * n` key
    /// ranges that the threads take in turn (one range when
    /// `--max-series` is set: which series it refuses depends on the order they arrive).
    /// Output is the same for any `n`. Call before the first point.
    pub fn set_threads(&mut self, n: usize) {
        self.threads = n.max(1);
        let shards = if self.cfg.max_series == usize::MAX && self.threads > 1 {
            SHARDS_PER_THREAD * self.threads
        } else {
            1
        };
        self.shards = (0..shards)
            .map(|_| Shard::new(&self.cfg, &self.hasher))
            .collect();
    }

    pub fn stats(&self) -> AggStats {
        let mut s = self.stats;
        for shard in &self.shards {
            s.add(&shard.stats);
        }
        s
    }

    pub fn series_count(&self) -> usize {
        self.shards.iter().map(|s| s.groups.len()).sum()
    }

    /// The shard of `key` (`KeyRanges::of`).
    #[inline]
    fn shard_of(&self, key: &[u8]) -> usize {
        self.ranges.get().map_or(0, |r| r.of(key))
    }

    /// The shard of entry `i` of a block: as its decoder thread found it, or found now.
    #[inline]
    fn entry_shard(&self, p: &Partial, i: usize) -> usize {
        match p.entry(i).shard {
            ranges::UNKNOWN => self.shard_of(p.key(i)),
            s => usize::from(s),
        }
    }

    /// Picks the key ranges of the shards from a sample of keys (the first ones seen).
    fn choose_splitters<'k>(&mut self, keys: impl Iterator<Item = &'k [u8]>) {
        if self.ranges.get().is_some() || self.shards.len() < 2 {
            return;
        }
        if let Some(ranges) = KeyRanges::choose(keys, self.shards.len()) {
            let _ = self.ranges.set(ranges);
        }
    }

    /// Adds one point placed at `at` (its `ts`, or the wall clock with `--clock wall`);
    /// `key` is its group key and hash when a decoder thread built them (`preparer`).
    /// Closes windows the newest event time has moved past.
    pub fn observe_at(
        &mut self,
        m: &Metric,
        at: i64,
        key: Option<(u64, &[u8])>,
        out: &mut Output,
    ) -> Result<()> {
        self.stats.points += 1;
        if !self.cfg.names.selects(&m.name) {
            self.stats.filtered += 1;
            return Ok(());
        }
        let mut own = std::mem::take(&mut self.key);
        let (hash, key) = match key {
            Some(k) => k,
            None => {
                let grouping = &self.cfg.grouping;
                series::series_key(m, &|k| grouping.keeps(k), &mut own);
                (self.hasher.hash(&own), &own[..])
            }
        };
        self.choose_splitters(std::iter::once(key));
        let s = self.shard_of(key);
        self.shards[s].observe(&self.cfg, m, at, (hash, key), self.closed_through);
        self.key = own;
        // A refused point still shows that event time has moved on.
        if at > self.watermark && !self.held {
            self.watermark = at;
            self.close_until(at.saturating_sub(self.cfg.lateness), out)?;
        }
        Ok(())
    }

    pub fn observe(&mut self, m: &Metric, out: &mut Output) -> Result<()> {
        self.observe_at(m, m.ts, None, out)
    }

    /// A folder of points into partial aggregates this aggregator can merge (one per
    /// ingest thread of a daemon).
    pub fn combiner(&self) -> partial::Combiner {
        partial::Combiner::new(self.cfg.clone(), self.hasher.clone())
    }

    /// Builds group keys on the decoder threads, with this aggregator's hasher.
    pub fn preparer(&self) -> PrepareFactory {
        let (grouping, hasher) = (self.cfg.grouping.clone(), self.hasher.clone());
        Arc::new(move || {
            Box::new(GroupKeys {
                grouping: grouping.clone(),
                hasher: hasher.clone(),
            }) as Box<dyn Prepare>
        })
    }

    /// The work the stream runs on its decoder threads: group keys for every point, and
    /// (with event time) per-block partial aggregates, merged here in input order.
    pub fn hooks(&self) -> Hooks {
        let combine = (self.cfg.clock == Clock::Event).then(|| {
            let (cfg, hasher) = (self.cfg.clone(), self.hasher.clone());
            let skip = self.skip_lookups.clone();
            let ranges = self.ranges.clone();
            Arc::new(move || {
                let c = partial::Combiner::pipelined(cfg.clone(), hasher.clone())
                    .skip_lookups_after_first(skip.clone())
                    .with_key_ranges(ranges.clone());
                Box::new(c) as Box<dyn Combine>
            }) as crate::stream::CombineFactory
        });
        Hooks {
            prepare: Some(self.preparer()),
            combine,
        }
    }

    /// Merges one block's partial aggregate, as if its points had been observed one by one.
    pub fn merge_partial(&mut self, p: &mut Partial, out: &mut Output) -> Result<()> {
        self.stats.points += p.points;
        self.stats.filtered += p.filtered;
        self.choose_splitters((0..p.len()).map(|i| p.key(i)));
        let closed = self.closed_through;
        if self.shards.len() == 1 || p.len() < self.parallel_merge_min {
            for i in 0..p.len() {
                self.prefetch_merge(p, i);
                let st = p.take_state(i);
                let s = self.entry_shard(p, i);
                let e = *p.entry(i);
                self.shards[s].merge_entry(&self.cfg, p, &e, st, closed);
            }
        } else {
            self.merge_in_parallel(p, closed)?;
        }
        if p.max_at > self.watermark && !self.held {
            self.watermark = p.max_at;
            self.close_until(p.max_at.saturating_sub(self.cfg.lateness), out)?;
        }
        Ok(())
    }

    /// Starts loading, a few entries ahead, the series-table slots and keys that merging
    /// entry `i` and its successors will read (a new block's series are random in memory).
    #[inline]
    fn prefetch_merge(&self, p: &Partial, i: usize) {
        for (ahead, step) in MERGE_LOOKAHEAD {
            if i + ahead < p.len() {
                let s = self.entry_shard(p, i + ahead);
                let e = p.entry(i + ahead);
                self.shards[s].prefetch_merge(e.hash, e.start, step, e.gauge);
            }
        }
    }

    /// Every shard merges its entries of the partial aggregate on its own thread, taking
    /// each state from where the decoder left it.
    fn merge_in_parallel(&mut self, p: &mut Partial, closed: i64) -> Result<()> {
        let mut states = p.take_states();
        let share = p.len() / self.shards.len() + 64;
        // What the lookahead reads is copied here, in one pass in block order: a shard's
        // entries are every sixteenth or so of the block, too far apart for the CPU to
        // load ahead by itself.
        let mut per_shard: Vec<Vec<Queued>> = (0..self.shards.len())
            .map(|_| Vec::with_capacity(share))
            .collect();
        for (i, state) in states.iter_mut().enumerate() {
            let e = p.entry(i);
            per_shard[self.entry_shard(p, i)].push(Queued { entry: *e, state });
        }
        let (p_shared, cfg) = (&*p, &self.cfg);
        let jobs = self
            .shards
            .iter_mut()
            .zip(per_shard)
            .map(|(shard, mut entries)| {
                move || {
                    for j in 0..entries.len() {
                        prefetch_queued(shard, p_shared, &entries, j);
                        let e = entries[j].entry;
                        let st = entries[j].state.take();
                        shard.merge_entry(cfg, p_shared, &e, st, closed);
                    }
                }
            });
        let merged = fork::share(jobs.collect(), self.threads)
            .into_iter()
            .all(|r| r.is_ok());
        p.restore_states(states);
        if !merged {
            return Err(Error::internal("a merging thread panicked"));
        }
        Ok(())
    }

    /// The first open window (or correction) start over all shards.
    fn first_start(&self, corrections: bool) -> Option<i64> {
        self.shards
            .iter()
            .filter_map(|s| {
                let map = if corrections {
                    &s.corrections
                } else {
                    &s.windows
                };
                map.first_key_value().map(|(k, _)| *k)
            })
            .min()
    }

    /// Writes every window that ends at or before `until`.
    fn close_until(&mut self, until: i64, out: &mut Output) -> Result<()> {
        let window = self.cfg.window;
        while let Some(start) = self.first_start(false) {
            if start.saturating_add(window) > until {
                break;
            }
            self.write_first(start, out)?;
        }
        let last_ended = align_down(until.saturating_sub(window), self.cfg.step());
        self.closed_through = self.closed_through.max(last_ended);
        Ok(())
    }

    fn write_first(&mut self, start: i64, out: &mut Output) -> Result<()> {
        self.write_window(start, false, out)?;
        self.stats.windows += 1;
        self.closed_through = self.closed_through.max(start);
        Ok(())
    }

    /// Writes the window (or correction) at `start` of every shard, in shard order.
    fn write_window(&mut self, start: i64, correction: bool, out: &mut Output) -> Result<()> {
        let cfg = &self.cfg;
        let mut windows: Vec<Window> = self
            .shards
            .iter_mut()
            .map(|shard| shard.take_window(cfg, start, correction))
            .collect();
        let span = (start, start + self.cfg.window, correction);
        let written = self.write_windows(&mut windows, span, out);
        for (shard, w) in self.shards.iter_mut().zip(windows) {
            shard.recycle(w);
        }
        written
    }

    /// Writes every shard's part of a window, each in output order.
    fn write_windows(
        &mut self,
        windows: &mut [Window],
        span: (i64, i64, bool),
        out: &mut Output,
    ) -> Result<()> {
        let parts = sort_windows(&mut self.shards, windows, self.threads)?;
        let total: usize = parts.iter().map(Vec::len).sum();
        // Running totals (--cumulative) carry state from window to window, so only windows
        // without them are encoded on several threads.
        if self.cfg.cumulative || self.threads <= 1 || total < 2 * self.encode_chunk {
            return self.encode_in_order(parts, span, out);
        }
        // Jobs of up to ENCODE_CHUNK groups, each within one shard, taken in turn by the
        // threads; this thread writes the finished ones in order between its own jobs.
        let mut parts = parts;
        let chunks: Vec<(usize, &mut [Sorted])> = parts
            .iter_mut()
            .enumerate()
            .flat_map(|(s, part)| part.chunks_mut(self.encode_chunk).map(move |c| (s, c)))
            .collect();
        let tables: Vec<&SeriesTable> = self.shards.iter().map(|s| &s.groups).collect();
        let cfg = &self.cfg;
        let done = Finished::new(chunks.len(), std::mem::take(&mut self.encode_bufs));
        let jobs: Vec<_> = chunks
            .into_iter()
            .enumerate()
            .map(|(i, (s, chunk))| {
                let (table, done) = (tables[s], &done);
                move || {
                    let mut buf = done.spare(chunk.len() * LINE_BYTES_GUESS);
                    let lines = encode_chunk(table, cfg, chunk, span, &mut buf);
                    done.put(i, buf);
                    lines
                }
            })
            .collect();
        let mut written = Ok(());
        let outcomes = fork::share_between(jobs, self.threads, || {
            if written.is_ok() {
                written = done.write_ready(out);
            }
        });
        written?;
        done.write_ready(out)?;
        for lines in outcomes {
            self.stats.emitted +=
                lines.map_err(|_| Error::internal("an encoder thread panicked"))??;
        }
        self.encode_bufs = done.into_spares();
        self.encode_bufs.truncate(2 * self.threads);
        Ok(())
    }

    fn encode_in_order(
        &mut self,
        parts: Vec<Vec<Sorted>>,
        span: (i64, i64, bool),
        out: &mut Output,
    ) -> Result<()> {
        let mut cache = LineCache::default();
        for (shard, mut part) in self.shards.iter_mut().zip(parts) {
            for i in 0..part.len() {
                prefetch_ahead(&shard.groups, &part, i);
                let (id, st) = (part[i].0, &mut *part[i].1);
                let mut emitter = Emitter {
                    cfg: &self.cfg,
                    totals: &mut shard.totals,
                    buf: out.buf(),
                    cache: &mut cache,
                    lines: 0,
                };
                encode_group(&shard.groups, &mut emitter, id, st, &mut self.scratch, span)?;
                self.stats.emitted += emitter.lines;
                out.maybe_write()?;
            }
        }
        Ok(())
    }

    /// Writes the corrections gathered from late points (`--late emit`).
    fn write_corrections(&mut self, out: &mut Output) -> Result<()> {
        while let Some(start) = self.first_start(true) {
            self.write_window(start, true, out)?;
        }
        Ok(())
    }

    /// Writes all open windows (end of input, termination signal).
    pub fn flush_all(&mut self, out: &mut Output) -> Result<()> {
        self.write_corrections(out)?;
        while let Some(start) = self.first_start(false) {
            self.write_first(start, out)?;
        }
        Ok(())
    }

    fn log_summary(&self) {
        let s = self.stats();
        let series = self.series_count();
        let table_bytes: usize = self.shards.iter().map(|s| s.groups.heap_bytes()).sum();
        let peak_rss = crate::runtime::peak_rss_bytes();
        // Without series there is nothing to divide by: 0, not the empty tables' size.
        let per_series = |bytes: u64| bytes.checked_div(series as u64).unwrap_or(0);
        crate::log!(
            Info,
            "summary",
            points = s.points,
            series = series,
            windows = s.windows,
            emitted = s.emitted,
            late = s.late,
            filtered = s.filtered,
            refused = s.refused,
            rejected = s.rejected,
            resets = s.resets,
            wraps = s.wraps,
            series_table_bytes_per_series = per_series(table_bytes as u64),
            peak_rss_mib = peak_rss >> 20,
            peak_rss_bytes_per_series = per_series(peak_rss)
        );
    }
}

/// Moves an encoder thread's lines to `out`, leaving `buf` empty. A chunk is usually larger
/// than `out` buffers before writing: then it is written from where it is, not copied.
fn write_encoded(out: &mut Output, buf: &mut Vec<u8>) -> Result<()> {
    if out.buf().is_empty() {
        // The buffers are swapped back after the write, so each keeps its own capacity.
        std::mem::swap(out.buf(), buf);
        let written = out.maybe_write();
        std::mem::swap(out.buf(), buf);
        written?;
        if buf.is_empty() {
            return Ok(());
        }
    }
    out.buf().extend_from_slice(buf);
    buf.clear();
    out.maybe_write()
}

/// Encoded chunks of a window, written in order as soon as every chunk before them is;
/// written chunks' buffers are reused by later ones.
struct Finished {
    state: std::sync::Mutex<FinishedState>,
}

struct FinishedState {
    chunks: Vec<Option<Vec<u8>>>,
    next: usize,
    spares: Vec<Vec<u8>>,
}

impl Finished {
    fn new(chunks: usize, spares: Vec<Vec<u8>>) -> Finished {
        Finished {
            state: std::sync::Mutex::new(FinishedState {
                chunks: (0..chunks).map(|_| None).collect(),
                next: 0,
                spares,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FinishedState> {
        // A panicking encoder is reported by its job's outcome; its buffer is only missing.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An empty buffer with room for `bytes`, a written chunk's when there is one: grown
    /// line by line, a fresh one would be copied at every doubling.
    fn spare(&self, bytes: usize) -> Vec<u8> {
        let mut buf = self.lock().spares.pop().unwrap_or_default();
        buf.reserve(bytes);
        buf
    }

    fn put(&self, i: usize, buf: Vec<u8>) {
        self.lock().chunks[i] = Some(buf);
    }

    /// Writes the finished chunks that follow the last written one.
    fn write_ready(&self, out: &mut Output) -> Result<()> {
        loop {
            let mut buf = {
                let mut st = self.lock();
                let next = st.next;
                match st.chunks.get_mut(next).and_then(Option::take) {
                    Some(buf) => {
                        st.next += 1;
                        buf
                    }
                    None => return Ok(()),
                }
            };
            let written = write_encoded(out, &mut buf);
            self.lock().spares.push(buf);
            written?;
        }
    }

    fn into_spares(self) -> Vec<Vec<u8>> {
        let st = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        st.spares
    }
}

/// Writes one group's lines for the window `span` (start, end, correction).
fn encode_group(
    groups: &SeriesTable,
    emitter: &mut Emitter,
    id: SeriesId,
    st: &mut State,
    scratch: &mut Metric,
    (start, end, correction): (i64, i64, bool),
) -> Result<()> {
    scratch.clear();
    groups.describe_json(id, scratch, emitter.cache);
    if correction {
        scratch.extra.push_str("\"correction\":true");
    }
    emitter.emit(id as usize, st, scratch, start, end)
}

/// A group of a window being written and its state, which stays in the window's table.
type Sorted<'w> = (SeriesId, &'w mut State);

/// Every shard's groups of a window, each in output order, sorted at once.
fn sort_windows<'w>(
    shards: &mut [Shard],
    windows: &'w mut [Window],
    threads: usize,
) -> Result<Vec<Vec<Sorted<'w>>>> {
    let jobs = shards
        .iter_mut()
        .zip(windows)
        .map(|(shard, w): (_, &'w mut Window)| {
            move || {
                let w = w; // moved in, so the sorted references live as long as the window
                shard.groups.sorted_by_rank(w.states_mut())
            }
        });
    fork::share(jobs.collect(), threads)
        .into_iter()
        .map(|sorted| sorted.map_err(|_| Error::internal("a sorting thread panicked")))
        .collect()
}

/// Encodes a slice of one shard's groups of a window on an encoder thread into `buf`
/// (prefetching keys and states ahead: even ten thousand series' keys and states outgrow a
/// core's own caches, which two decoder threads share); returns the line count.
fn encode_chunk(
    table: &SeriesTable,
    cfg: &AggConfig,
    chunk: &mut [Sorted],
    span: (i64, i64, bool),
    buf: &mut Vec<u8>,
) -> Result<u64> {
    let mut totals = Totals::new();
    let mut cache = LineCache::default();
    let mut emitter = Emitter {
        cfg,
        totals: &mut totals,
        buf,
        cache: &mut cache,
        lines: 0,
    };
    let mut scratch = Metric::default();
    for i in 0..chunk.len() {
        prefetch_ahead(table, chunk, i);
        let (id, st) = &mut chunk[i];
        encode_group(table, &mut emitter, *id, st, &mut scratch, span)?;
    }
    Ok(emitter.lines)
}

/// While group `i` of a sorted window is encoded, the state and key location of the group 8
/// ahead and the key bytes of the group 4 ahead are loaded: output order is random in
/// memory.
#[inline]
fn prefetch_ahead(table: &SeriesTable, groups: &[Sorted], i: usize) {
    if let Some((id, st)) = groups.get(i + 8) {
        table.prefetch(*id, series::Stage::Span);
        crate::prefetch::prefetch_value(*st);
    }
    if let Some((id, _)) = groups.get(i + 4) {
        table.prefetch(*id, series::Stage::Bytes);
    }
}

/// An entry of a block's partial aggregate queued for its shard, copied in block order
/// (a shard's entries are about every sixteenth of the block, each a cache line or two
/// the merge would otherwise load at random), and its state.
struct Queued<'p> {
    entry: partial::Entry,
    state: &'p mut Option<State>,
}

/// Starts loading, ahead of merging queued entry `j`, the series-table slots and keys of
/// the entries after it (`MERGE_LOOKAHEAD`), and their own entry, state and key bytes.
#[inline]
fn prefetch_queued(shard: &Shard, p: &Partial, queued: &[Queued], j: usize) {
    for (ahead, step) in MERGE_LOOKAHEAD {
        if let Some(q) = queued.get(j + ahead) {
            let e = &q.entry;
            shard.prefetch_merge(e.hash, e.start, step, e.gauge);
        }
    }
    if let Some(q) = queued.get(j + PARTIAL_AHEAD) {
        // By address only: reading whether it holds a state would wait for the load.
        crate::prefetch::prefetch_value(&*q.state as *const Option<State>);
    }
    if let Some(q) = queued.get(j + PARTIAL_AHEAD / 2) {
        p.prefetch_key_of(&q.entry);
    }
}

/// How many queued entries ahead a block entry and its state are loaded (its key bytes
/// half as many), before its merge reads them.
const PARTIAL_AHEAD: usize = 8;

/// The group key of a metric, built on a decoder thread.
struct GroupKeys {
    grouping: Grouping,
    hasher: KeyHasher,
}

impl Prepare for GroupKeys {
    fn prepare(&mut self, m: &Metric, key: &mut Vec<u8>) -> u64 {
        let start = key.len();
        let grouping = &self.grouping;
        series::append_series_key(m, &|k| grouping.keeps(k), key);
        self.hasher.hash(&key[start..])
    }
}

impl StreamSink for Aggregator {
    fn batch(&mut self, metrics: &[Metric], prepared: &Prepared, out: &mut Output) -> Result<()> {
        self.blocks_seen += 1;
        let wall = (self.cfg.clock == Clock::Wall).then(now_ns);
        if !prepared.is_empty() {
            self.choose_splitters((0..metrics.len()).map(|i| prepared.key(i)));
        }
        for (i, m) in metrics.iter().enumerate() {
            let key = (!prepared.is_empty()).then(|| (prepared.hash(i), prepared.key(i)));
            self.observe_at(m, wall.unwrap_or(m.ts), key, out)?;
        }
        self.write_corrections(out)
    }

    fn combined(&mut self, part: &mut (dyn Any + Send), out: &mut Output) -> Result<()> {
        let Some(p) = part.downcast_mut::<Partial>() else {
            return Err(Error::internal("partial aggregate of another kind"));
        };
        self.first_block.get_or_insert((p.points, p.len()));
        if self.blocks_seen == 0 {
            // Before the stream reads the second block (it waits for the block size), so
            // every later block is combined alike whichever thread takes it.
            let many = many_series(p.points, p.len() as u64);
            self.skip_lookups.store(many, Ordering::Release);
        }
        self.blocks_seen += 1;
        self.merge_partial(p, out)?;
        self.write_corrections(out)
    }

    /// With the input idle, windows whose end (plus lateness) has passed on the wall clock
    /// are written, so a quiet stream still delivers its last window promptly.
    fn tick(&mut self, now: i64, idle: bool, out: &mut Output) -> Result<()> {
        if idle && self.first_start(false).is_some() {
            self.close_until(now.saturating_sub(self.cfg.lateness), out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        self.flush_all(out)?;
        self.log_summary();
        Ok(())
    }

    /// Larger blocks when the first one held at least 1.5 points per entry.
    fn block_bytes_after_first(&self) -> Option<usize> {
        let (points, entries) = self.first_block?;
        (2 * points >= 3 * entries as u64).then_some(FEW_SERIES_BLOCK_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::output::Captured;
    use crate::ndjson::Decoder;

    fn run(cfg: AggConfig, lines: &[&str]) -> Vec<String> {
        let shared = Captured::default();
        let mut out = Output::to(Box::new(shared.clone()));
        let mut agg = Aggregator::new(cfg);
        let mut dec = Decoder::default();
        let mut m = Metric::default();
        for l in lines {
            dec.decode(l.as_bytes(), &mut m, || 0).unwrap();
            agg.observe(&m, &mut out).unwrap();
        }
        agg.finish(&mut out).unwrap();
        out.flush().unwrap();
        let text = shared.text();
        text.lines().map(str::to_owned).collect()
    }

    const S: i64 = 1_000_000_000;

    #[test]
    fn delta_counters_sum_per_window_in_order() {
        let lines = [
            format!(
                r#"{{"name":"b","kind":"counter","temporality":"delta","value":1,"ts":{}}}"#,
                S
            ),
            format!(
                r#"{{"name":"a","kind":"counter","temporality":"delta","value":2,"ts":{}}}"#,
                2 * S
            ),
            format!(
                r#"{{"name":"b","kind":"counter","temporality":"delta","value":3,"ts":{}}}"#,
                9 * S
            ),
            format!(
                r#"{{"name":"b","kind":"counter","temporality":"delta","value":5,"ts":{}}}"#,
                10 * S
            ),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let out = run(AggConfig::default(), &refs);
        assert_eq!(
            out,
            vec![
                format!(
                    r#"{{"name":"a","kind":"counter","temporality":"delta","value":2,"ts":{},"start_ts":0}}"#,
                    10 * S
                ),
                format!(
                    r#"{{"name":"b","kind":"counter","temporality":"delta","value":4,"ts":{},"start_ts":0}}"#,
                    10 * S
                ),
                format!(
                    r#"{{"name":"b","kind":"counter","temporality":"delta","value":5,"ts":{},"start_ts":{}}}"#,
                    20 * S,
                    10 * S
                ),
            ]
        );
    }

    #[test]
    fn gauge_statistics() {
        let cfg = AggConfig {
            gauge: GaugeStat::expand(&[GaugeStat::All]),
            ..AggConfig::default()
        };
        let out = run(
            cfg,
            &[
                r#"{"name":"g","kind":"gauge","value":4,"ts":2}"#,
                r#"{"name":"g","kind":"gauge","value":1,"ts":1}"#,
            ],
        );
        let names: Vec<String> = out
            .iter()
            .map(|l| l[9..l.find("\",").unwrap()].to_owned())
            .collect();
        assert_eq!(
            names,
            vec!["g", "g.min", "g.max", "g.mean", "g.count", "g.sum"]
        );
        assert!(
            out[0].contains(r#""value":4,"#),
            "last is the newest ts: {}",
            out[0]
        );
        assert!(out[3].contains(r#""value":2.5,"#));
        assert!(out[4].contains(r#""kind":"counter","temporality":"delta","value":2,"#));
    }

    #[test]
    fn late_points_are_counted_not_mixed_in() {
        let shared = Captured::default();
        let mut out = Output::to(Box::new(shared));
        let mut agg = Aggregator::new(AggConfig::default());
        let mut dec = Decoder::default();
        let mut m = Metric::default();
        for l in [
            format!(r#"{{"name":"g","kind":"gauge","value":1,"ts":{}}}"#, S),
            format!(r#"{{"name":"g","kind":"gauge","value":1,"ts":{}}}"#, 15 * S),
            format!(r#"{{"name":"g","kind":"gauge","value":1,"ts":{}}}"#, 2 * S),
        ] {
            dec.decode(l.as_bytes(), &mut m, || 0).unwrap();
            agg.observe(&m, &mut out).unwrap();
        }
        assert_eq!(agg.stats().late, 1);
        assert_eq!(agg.stats().windows, 1);
    }

    #[test]
    fn distributions_become_summaries() {
        let out = run(
            AggConfig {
                quantiles: vec![0.5],
                ..AggConfig::default()
            },
            &[r#"{"name":"d","kind":"distribution","unit":"ms","values":[1,2,3,4],"ts":1}"#],
        );
        assert_eq!(
            out,
            vec![
                r#"{"name":"d","kind":"summary","temporality":"delta","unit":"ms","quantiles":[[0.5,2.5]],"count":4,"sum":10.0,"min":1.0,"max":4.0,"ts":10000000000,"start_ts":0}"#
            ]
        );
    }

    fn lines_for(cfg: AggConfig, points: &[(&str, &str, i64)]) -> Vec<String> {
        // (name, json fields after kind, ts in seconds)
        let owned: Vec<String> = points
            .iter()
            .map(|(name, rest, ts)| format!(r#"{{"name":"{name}",{rest},"ts":{}}}"#, ts * S))
            .collect();
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        run(cfg, &refs)
    }

    fn value_of(line: &str) -> f64 {
        let v = &line[line.find("\"value\":").unwrap() + 8..];
        v[..v.find(',').unwrap()].parse().unwrap()
    }

    /// One point per 10-s window (at 5 s, 15 s, …) of series `name`.
    fn one_per_window(name: &str, points: &[String]) -> Vec<String> {
        let input: Vec<(&str, &str, i64)> = points
            .iter()
            .enumerate()
            .map(|(i, p)| (name, p.as_str(), 10 * i as i64 + 5))
            .collect();
        lines_for(AggConfig::default(), &input)
    }

    fn values_where(out: &[String], needle: &str) -> Vec<f64> {
        out.iter()
            .filter(|l| l.contains(needle))
            .map(|l| value_of(l))
            .collect()
    }

    #[test]
    fn counter32_wrap_gives_a_continuous_rate() {
        let c = |v: u64| format!(r#""kind":"counter","temporality":"cumulative","value":{v}"#);
        let pts = [c(4_294_966_296), c(4_294_967_096), c(600), c(1400)];
        let out = one_per_window("if.in", &pts);
        assert_eq!(
            values_where(&out, "if.in.rate"),
            vec![80.0, 80.0, 80.0],
            "{out:#?}"
        );
        let incs = values_where(&out, r#""name":"if.in","#);
        assert_eq!(incs, vec![800.0, 800.0, 800.0]);
    }

    #[test]
    fn start_ts_change_resets_without_a_spike() {
        let c = |v: u64, st: i64| {
            format!(r#""kind":"counter","temporality":"cumulative","value":{v},"start_ts":{st}"#)
        };
        let pts = [c(1000, 1), c(2000, 1), c(50, 2)];
        let incs = values_where(&one_per_window("c", &pts), r#""name":"c","#);
        assert_eq!(incs, vec![1000.0, 50.0]);
    }

    #[test]
    fn counter64_increase_near_2_pow_64_is_exact() {
        let c = |v: u64| format!(r#""kind":"counter","temporality":"cumulative","value":{v}"#);
        let out = one_per_window("c", &[c(u64::MAX - 1000), c(u64::MAX - 1)]);
        assert!(out[0].contains(r#""value":999,"#), "{out:?}");
    }

    #[test]
    fn grouping_by_tag_merges_series_but_follows_counters_per_series() {
        let cfg = AggConfig {
            grouping: Grouping::By(vec!["dc".into()]),
            ..AggConfig::default()
        };
        let c = |host: &str, v: u64| {
            format!(
                r#""kind":"counter","temporality":"cumulative","value":{v},"tags":{{"dc":"ams","host":"{host}"}}"#
            )
        };
        let (a1, b1, a2, b2) = (c("a", 100), c("b", 5000), c("a", 150), c("b", 5010));
        let out = lines_for(
            cfg,
            &[
                ("req", &a1, 1),
                ("req", &b1, 2),
                ("req", &a2, 11),
                ("req", &b2, 12),
            ],
        );
        assert_eq!(out.len(), 2, "{out:#?}");
        assert!(
            out[0].contains(r#""value":60,"#) && out[0].contains(r#""tags":{"dc":"ams"}"#),
            "{out:#?}"
        );
    }

    #[test]
    fn sliding_windows_count_each_point_in_every_window_it_falls_in() {
        let cfg = AggConfig {
            window: 20 * S,
            every: Some(10 * S),
            ..AggConfig::default()
        };
        let d = r#""kind":"counter","temporality":"delta","value":1"#;
        let out = lines_for(cfg, &[("n", d, 5), ("n", d, 15), ("n", d, 25)]);
        let sums: Vec<f64> = out.iter().map(|l| value_of(l)).collect();
        // windows [-10,10) [0,20) [10,30) [20,40)
        assert_eq!(sums, vec![1.0, 2.0, 2.0, 1.0], "{out:#?}");
    }

    #[test]
    fn late_points_can_be_emitted_as_corrections() {
        let cfg = AggConfig {
            late: Late::Emit,
            ..AggConfig::default()
        };
        let d = r#""kind":"counter","temporality":"delta","value":2"#;
        let out = lines_for(cfg, &[("n", d, 5), ("n", d, 15), ("n", d, 6)]);
        assert_eq!(out.len(), 3, "{out:#?}");
        assert!(
            out[1].contains(r#""start_ts":0,"correction":true"#),
            "{out:#?}"
        );
    }

    #[test]
    fn cumulative_output_keeps_running_totals_and_rates() {
        let cfg = AggConfig {
            cumulative: true,
            rate: true,
            ..AggConfig::default()
        };
        let d = |v: u64| format!(r#""kind":"counter","temporality":"delta","value":{v}"#);
        let (a, b) = (d(10), d(30));
        let out = lines_for(cfg, &[("n", &a, 5), ("n", &b, 15)]);
        assert!(
            out[0]
                .contains(r#""temporality":"cumulative","value":10,"ts":10000000000,"start_ts":0"#),
            "{out:#?}"
        );
        assert!(
            out[1].contains(r#""name":"n.rate","kind":"gauge","value":1.0"#),
            "{out:#?}"
        );
        assert!(
            out[2].contains(r#""value":40,"ts":20000000000,"start_ts":0"#),
            "{out:#?}"
        );
        assert!(out[3].contains(r#""value":3.0"#), "{out:#?}");
    }

    #[test]
    fn match_and_exclude_select_by_name() {
        let cfg = AggConfig {
            names: NameFilter::new(&["cpu.*".into()], &["cpu.idle".into()]).unwrap(),
            ..AggConfig::default()
        };
        let g = r#""kind":"gauge","value":1"#;
        let out = lines_for(
            cfg,
            &[("cpu.user", g, 1), ("cpu.idle", g, 1), ("mem.free", g, 1)],
        );
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("cpu.user"));
    }

    #[test]
    fn max_series_refuses_new_series() {
        let cfg = AggConfig {
            max_series: 1,
            ..AggConfig::default()
        };
        let g = r#""kind":"gauge","value":1"#;
        let out = lines_for(cfg, &[("a", g, 1), ("b", g, 1), ("a", g, 2)]);
        assert_eq!(out.len(), 1);
    }

    /// One stream, cut into blocks: every block either observed line by line (as
    /// `StreamSink::batch` does) or, with `combine`, folded into a partial and merged.
    fn run_blocks(
        cfg: AggConfig,
        blocks: &[Vec<String>],
        combine: bool,
    ) -> (Vec<String>, AggStats) {
        run_blocks_on(cfg, blocks, combine, 1)
    }

    #[test]
    fn the_first_block_sets_block_size_and_lookups() {
        let line =
            |s: u32, i: u32| format!(r#"{{"name":"s{s}","kind":"gauge","value":{i},"ts":{i}}}"#);
        let points = partial::LOOKED_FIRST as u32;
        for (series, grows, skips) in [
            (10, true, false),
            (points * 3 / 4, false, false),
            (points, false, true),
        ] {
            let cfg = AggConfig::default();
            let mut agg = Aggregator::new(cfg.clone());
            let mut combiner = partial::Combiner::pipelined(cfg, agg.hasher.clone());
            combiner.begin(None);
            let (mut dec, mut m) = (Decoder::default(), Metric::default());
            for i in 0..points {
                dec.decode(line(i % series, i).as_bytes(), &mut m, || 0)
                    .unwrap();
                assert!(combiner.add(&m));
            }
            let mut part = combiner.end();
            let mut out = Output::to(Box::new(std::io::sink()));
            assert_eq!(agg.block_bytes_after_first(), None);
            agg.combined(&mut *part, &mut out).unwrap();
            let want = grows.then_some(FEW_SERIES_BLOCK_BYTES);
            assert_eq!(agg.block_bytes_after_first(), want, "{series} series");
            assert_eq!(
                agg.skip_lookups.load(Ordering::Acquire),
                skips,
                "{series} series"
            );
        }
    }

    /// `run_blocks` with the state in `threads` shards, merged and encoded in parallel
    /// however small the blocks and windows.
    fn run_blocks_on(
        cfg: AggConfig,
        blocks: &[Vec<String>],
        combine: bool,
        threads: usize,
    ) -> (Vec<String>, AggStats) {
        let shared = Captured::default();
        let mut out = Output::to(Box::new(shared.clone()));
        let mut agg = Aggregator::new(cfg.clone());
        agg.set_threads(threads);
        (agg.parallel_merge_min, agg.encode_chunk) = (0, 1);
        let mut dec = Decoder::default();
        let mut m = Metric::default();
        // Entries record their shard once the first block chose the key ranges.
        let mut combiner =
            partial::Combiner::new(cfg, agg.hasher.clone()).with_key_ranges(agg.ranges.clone());
        for block in blocks {
            let mut folded = combine;
            if combine {
                combiner.begin(None);
                for l in block {
                    dec.decode(l.as_bytes(), &mut m, || 0).unwrap();
                    if !combiner.add(&m) {
                        folded = false;
                        break;
                    }
                }
            }
            if folded {
                let mut part = combiner.end();
                agg.combined(&mut *part, &mut out).unwrap();
            } else {
                for l in block {
                    dec.decode(l.as_bytes(), &mut m, || 0).unwrap();
                    agg.observe(&m, &mut out).unwrap();
                }
                agg.write_corrections(&mut out).unwrap();
            }
        }
        agg.finish(&mut out).unwrap();
        out.flush().unwrap();
        let text = shared.text();
        (text.lines().map(str::to_owned).collect(), agg.stats())
    }

    /// `run_blocks_on` with a combiner as it runs on streams of many series
    /// (`Combiner::high_cardinality`), fed lines as the stream's decoder threads feed them:
    /// each offered whole first, and decoded when it declines.
    fn run_blocks_high_cardinality(cfg: AggConfig, blocks: &[Vec<String>]) -> Vec<String> {
        let shared = Captured::default();
        let mut out = Output::to(Box::new(shared.clone()));
        let mut agg = Aggregator::new(cfg.clone());
        agg.set_threads(2);
        agg.parallel_merge_min = 0;
        let mut dec = Decoder::default();
        let mut m = Metric::default();
        let mut combiner = partial::Combiner::high_cardinality(cfg, agg.hasher.clone())
            .with_key_ranges(agg.ranges.clone());
        for block in blocks {
            combiner.begin(None);
            let mut folded = true;
            for l in block {
                if combiner.add_line(l.as_bytes()) {
                    continue;
                }
                // Gauges are written plainly here: the path under test takes them.
                assert!(!l.contains(r#""kind":"gauge""#), "declined: {l}");
                dec.decode(l.as_bytes(), &mut m, || 0).unwrap();
                if !combiner.add(&m) {
                    folded = false;
                    break;
                }
            }
            let mut part = combiner.end();
            if folded {
                agg.combined(&mut *part, &mut out).unwrap();
            } else {
                for l in block {
                    dec.decode(l.as_bytes(), &mut m, || 0).unwrap();
                    agg.observe(&m, &mut out).unwrap();
                }
                agg.write_corrections(&mut out).unwrap();
            }
        }
        agg.finish(&mut out).unwrap();
        out.flush().unwrap();
        let text = shared.text();
        text.lines().map(str::to_owned).collect()
    }

    fn point_line(kind: u8, name: u8, host: u8, v: i64, secs: i64) -> String {
        let name = ["a", "b", "c"][name as usize % 3];
        let tags = ["", r#","tags":{"host":"x"}"#, r#","tags":{"host":"y"}"#][host as usize % 3];
        let body = match kind % 5 {
            0 => format!(r#""kind":"counter","temporality":"delta","value":{v}"#),
            1 => format!(r#""kind":"gauge","value":{v}"#),
            2 => format!(r#""kind":"distribution","values":[{v},{}]"#, v * 3),
            3 => format!(r#""kind":"set","values":["m{}"]"#, v % 4),
            _ => format!(
                r#""kind":"counter","temporality":"cumulative","value":{}"#,
                v.abs() * secs.max(1)
            ),
        };
        format!(r#"{{"name":"{name}",{body},"ts":{}{tags}}}"#, secs * S)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]
        #[test]
        fn merging_block_partials_equals_observing_every_point(
            points in proptest::collection::vec((0u8..9, 0u8..3, 0u8..3, -50i64..50, 0i64..90), 1..60),
            cuts in proptest::collection::vec(1usize..20, 1..8),
            sliding: bool,
            lateness in 0i64..8,
            emit: bool,
            max_series in proptest::option::of(1usize..6),
        ) {
            let cfg = AggConfig {
                every: sliding.then_some(5 * S),
                lateness: lateness * S,
                late: if emit { Late::Emit } else { Late::Drop },
                max_series: max_series.unwrap_or(usize::MAX),
                gauge: vec![GaugeStat::Last, GaugeStat::Min, GaugeStat::Max, GaugeStat::Mean],
                ..AggConfig::default()
            };
            // Kinds 5..9 fold to the order-free kinds, so most blocks combine.
            let lines: Vec<String> = points
                .iter()
                .map(|&(k, n, h, v, t)| point_line(if k >= 5 { k % 4 } else { k }, n, h, v, t))
                .collect();
            let mut blocks = Vec::new();
            let (mut at, mut c) = (0, 0);
            while at < lines.len() {
                let end = (at + cuts[c % cuts.len()]).min(lines.len());
                blocks.push(lines[at..end].to_vec());
                (at, c) = (end, c + 1);
            }
            let sequential = run_blocks(cfg.clone(), &blocks, false);
            let combined = run_blocks(cfg.clone(), &blocks, true);
            proptest::prop_assert_eq!(&sequential, &combined);
            let sharded = run_blocks_on(cfg.clone(), &blocks, true, 3);
            proptest::prop_assert_eq!(&sequential, &sharded);
            if !sliding {
                let many = run_blocks_high_cardinality(cfg, &blocks);
                proptest::prop_assert_eq!(&sequential.0, &many);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]
        #[test]
        fn counts_out_add_up_to_points_in(
            points in proptest::collection::vec((proptest::bool::ANY, 0u8..4, 0i64..120), 1..80),
            cut in 1usize..30,
            lateness in 0i64..15,
            emit: bool,
            combine: bool,
        ) {
            let cfg = AggConfig {
                lateness: lateness * S,
                late: if emit { Late::Emit } else { Late::Drop },
                ..AggConfig::default()
            };
            let lines: Vec<String> = points
                .iter()
                .map(|&(dist, name, secs)| {
                    let body = if dist {
                        r#""kind":"distribution","values":[2.5]"#
                    } else {
                        r#""kind":"counter","temporality":"delta","value":1"#
                    };
                    format!(r#"{{"name":"m{name}",{body},"ts":{}}}"#, secs * S)
                })
                .collect();
            let blocks: Vec<Vec<String>> = lines.chunks(cut).map(<[String]>::to_vec).collect();
            let (out, stats) = run_blocks(cfg, &blocks, combine);
            let counted: u64 = out
                .iter()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    let n = if v["kind"] == "summary" { &v["count"] } else { &v["value"] };
                    n.as_u64().unwrap()
                })
                .sum();
            proptest::prop_assert_eq!(counted + stats.late * u64::from(!emit), points.len() as u64);
            proptest::prop_assert_eq!(stats.points, points.len() as u64);
        }
    }
}
