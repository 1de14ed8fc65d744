//! What one ingest thread does with the lines it receives: parse them and fold them into its
//! own partial aggregate, so the hot path shares nothing with other threads. The flush
//! merges every thread's part with the aggregation core (`crate::agg`).

use super::cache::{self, LineCache};
use super::parse::{BadLine, Parser, Sanitize};
use crate::agg::partial::Combiner;
use crate::log::RateLimit;
use crate::metric::{Kind, Metric, Temporality};
use crate::stream::{Combine, Part};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why lines or datagrams were refused, in the order of `Counters::bad`.
pub const BAD_REASONS: [&str; 11] = [
    "no_value",
    "empty_name",
    "bad_type",
    "bad_value",
    "bad_rate",
    "bad_timestamp",
    "bad_tags",
    "future_timestamp",
    "truncated",
    "too_long",
    "negative_timer",
];

fn reason_index(b: BadLine) -> usize {
    match b {
        BadLine::NoValue => 0,
        BadLine::EmptyName => 1,
        BadLine::BadType => 2,
        BadLine::BadValue => 3,
        BadLine::BadRate => 4,
        BadLine::BadTimestamp => 5,
        BadLine::BadTags => 6,
        BadLine::NegativeTimer => 10,
    }
}
pub const FUTURE: usize = 7;
pub const TRUNCATED: usize = 8;
pub const TOO_LONG: usize = 9;

/// Live counts of one listener, written by its threads and read by the flush, the HTTP
/// API and the process title (relaxed atomics: each is a plain tally).
#[derive(Debug, Default)]
pub struct Counters {
    pub datagrams: AtomicU64,
    pub lines: AtomicU64,
    pub metrics: AtomicU64,
    pub bytes: AtomicU64,
    pub bad: [AtomicU64; BAD_REASONS.len()],
    /// Signed-packet rejections by reason (`secure::Reject::ALL` order).
    pub rejected: [AtomicU64; 5],
    pub connections: AtomicU64,
}

impl Counters {
    pub fn bad_total(&self) -> u64 {
        self.bad.iter().map(|b| b.load(Relaxed)).sum()
    }
}

/// Tallies kept locally on the hot path and published to `Counters` once per batch.
#[derive(Default)]
pub struct Tally {
    pub datagrams: u64,
    pub lines: u64,
    pub metrics: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn publish(&mut self, c: &Counters) {
        if self.datagrams | self.lines | self.bytes != 0 {
            c.datagrams.fetch_add(self.datagrams, Relaxed);
            c.lines.fetch_add(self.lines, Relaxed);
            c.metrics.fetch_add(self.metrics, Relaxed);
            c.bytes.fetch_add(self.bytes, Relaxed);
            *self = Tally::default();
        }
    }
}

/// Series (and windows) a thread folds before it hands its part over unasked.
pub const EARLY_HANDOFF: usize = 1 << 16;

/// One thread's share of the current flush interval.
pub struct Handoff {
    /// Order-free points, folded (`agg::partial::Partial`).
    pub part: Part,
    /// Gauges and monotonic counters in arrival order: their result depends on order.
    pub ordered: Vec<Metric>,
    pub ordered_len: usize,
}

/// Parses lines and folds them; owned by one ingest thread.
pub struct Fold {
    parser: Parser,
    combiner: Combiner,
    cache: LineCache,
    ordered: Vec<Metric>,
    ordered_len: usize,
    /// Points stamped later than this past the receive time are refused (a client's `|T`
    /// far in the future would keep a window open forever).
    max_future: i64,
    pub tally: Tally,
    limit: RateLimit,
    window_at: (i64, Option<i64>),
    /// The arrival time given to the last order-dependent point.
    last_ordered: i64,
}

impl Fold {
    pub fn new(sanitize: Sanitize, combiner: Combiner, max_future: i64) -> Fold {
        let mut combiner = combiner;
        combiner.begin(None);
        Fold {
            parser: Parser::new(sanitize),
            combiner,
            cache: LineCache::default(),
            ordered: Vec::new(),
            ordered_len: 0,
            max_future,
            tally: Tally::default(),
            limit: RateLimit::default(),
            window_at: (i64::MIN, None),
            last_ordered: i64::MIN,
        }
    }

    /// Folds every line of `data` (newline separated, `\r\n` tolerated, empty lines
    /// skipped) received at `now` from `from`.
    pub fn datagram(&mut self, data: &[u8], now: i64, from: &dyn Fn() -> String, c: &Counters) {
        self.tally.datagrams += 1;
        self.tally.bytes += data.len() as u64;
        cache::for_each_line(data, |line, parts| {
            self.line_in_parts(line, parts, now, from, c)
        });
    }

    /// Folds one line.
    pub fn line(&mut self, line: &[u8], now: i64, from: &dyn Fn() -> String, c: &Counters) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.line_in_parts(line, cache::split(line), now, from, c);
    }

    fn line_in_parts(
        &mut self,
        line: &[u8],
        parts: Option<cache::Parts>,
        now: i64,
        from: &dyn Fn() -> String,
        c: &Counters,
    ) {
        self.tally.lines += 1;
        let window = self.window_of(now);
        if let (Some(p), Some(w)) = (&parts, window) {
            if let Some((entry, Some(sample))) = self.cache.lookup(p, w) {
                if self.combiner.add_again(entry, now, sample) {
                    self.tally.metrics += 1;
                    return;
                }
            }
        }
        self.combiner.clear_last();
        self.full_line(line, now, from, c);
        if let (Some(p), Some(w), Some((kind, rate)), Some(entry)) = (
            parts,
            window,
            self.parser.last_shape(),
            self.combiner.last_entry(),
        ) {
            self.cache.remember(&p, kind, rate, entry, w);
        }
    }

    /// The window of `now`, computed once per receive batch (all its lines share `now`).
    fn window_of(&mut self, now: i64) -> Option<i64> {
        if self.window_at.0 != now {
            self.window_at = (now, self.combiner.tumbling_start(now));
        }
        self.window_at.1
    }

    fn full_line(&mut self, line: &[u8], now: i64, from: &dyn Fn() -> String, c: &Counters) {
        let limit = now.saturating_add(self.max_future);
        let mut future = false;
        let (combiner, ordered, ordered_len, tally, last_ordered) = (
            &mut self.combiner,
            &mut self.ordered,
            &mut self.ordered_len,
            &mut self.tally,
            &mut self.last_ordered,
        );
        let parsed = self.parser.parse(line, now, |m| {
            if m.ts > limit {
                future = true;
                return;
            }
            tally.metrics += 1;
            if needs_order(m) || !combiner.add(m) {
                if *ordered_len == ordered.len() {
                    ordered.push(Metric::default());
                }
                let o = &mut ordered[*ordered_len];
                o.clone_from(m);
                // Lines of one read share its arrival time; a nanosecond apiece keeps
                // their order, so each monotonic counter reading is a step of its own.
                if o.ts == now {
                    o.ts = now.max(last_ordered.saturating_add(1));
                    *last_ordered = o.ts;
                }
                *ordered_len += 1;
            }
        });
        match parsed {
            Err(bad) => self.bad(reason_index(bad), bad.reason(), line, from, c),
            Ok(()) if future => self.bad(
                FUTURE,
                "timestamp is later than the flush interval allows",
                line,
                from,
                c,
            ),
            Ok(()) => {}
        }
    }

    /// Counts and logs (rate-limited) one refused line or datagram.
    pub fn bad(
        &mut self,
        reason: usize,
        why: &str,
        line: &[u8],
        from: &dyn Fn() -> String,
        c: &Counters,
    ) {
        c.bad[reason].fetch_add(1, Relaxed);
        if let Some(suppressed) = self.limit.allow() {
            let shown = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
            crate::log!(
                Warn,
                "bad_line",
                from = from(),
                reason = BAD_REASONS[reason],
                detail = why,
                line = format!("{shown:?}"),
                suppressed = suppressed
            );
        }
    }

    /// True when the partial aggregate has grown enough to be handed over before the flush
    /// asks: a burst of new names (a cardinality explosion) then reaches `--max-series` in
    /// the aggregation instead of piling up in the ingest thread.
    pub fn is_full(&self) -> bool {
        self.combiner.entries() >= EARLY_HANDOFF
    }

    /// Hands over what was folded since the last handoff; `recycled` is an earlier
    /// handoff the flush is done with, whose buffers are reused.
    pub fn handoff(&mut self, recycled: Option<Handoff>) -> Handoff {
        let part = self.combiner.end();
        self.cache.new_generation();
        let (old_part, old_ordered) = match recycled {
            Some(h) => (Some(h.part), h.ordered),
            None => (None, Vec::new()),
        };
        self.combiner.begin(old_part);
        let ordered = std::mem::replace(&mut self.ordered, old_ordered);
        Handoff {
            part,
            ordered,
            ordered_len: std::mem::take(&mut self.ordered_len),
        }
    }
}

/// Gauges keep the order of their updates (`+N` adds to whatever came before it), and
/// monotonic counters are rated from one reading to the next.
fn needs_order(m: &Metric) -> bool {
    m.kind == Kind::Gauge
        || (m.kind == Kind::Counter && m.temporality == Some(Temporality::Cumulative))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::{AggConfig, Aggregator};
    use crate::stream::Combine;

    fn fold() -> Fold {
        let agg = Aggregator::new(AggConfig::default());
        Fold::new(Sanitize::Etsy, agg.combiner(), 60_000_000_000)
    }

    #[test]
    fn counts_lines_and_routes_gauges_in_order() {
        let c = Counters::default();
        let mut f = fold();
        let from = || "test".to_string();
        f.datagram(b"a:1|c\nb:2|g\r\nc:+1|g\n\nbad\n", 1_000, &from, &c);
        assert_eq!(f.tally.lines, 4);
        assert_eq!(f.tally.metrics, 3);
        assert_eq!(c.bad[0].load(Relaxed), 1);
        let h = f.handoff(None);
        assert_eq!(h.ordered_len, 2);
        assert_eq!(h.ordered[0].name, "b");
        assert_eq!(h.ordered[1].name, "c");
        let p = h
            .part
            .downcast::<crate::agg::partial::Partial>()
            .ok()
            .unwrap();
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn far_future_timestamps_are_refused() {
        let c = Counters::default();
        let mut f = fold();
        let from = || "test".to_string();
        f.line(b"a:1|c|T4000000000", 1_000_000_000, &from, &c);
        assert_eq!(c.bad[FUTURE].load(Relaxed), 1);
        assert_eq!(f.tally.metrics, 0);
    }

    #[test]
    fn handoff_reuses_buffers() {
        let c = Counters::default();
        let mut f = fold();
        let from = || "x".to_string();
        f.line(b"g:1|g", 0, &from, &c);
        let h = f.handoff(None);
        f.line(b"g:2|g", 0, &from, &c);
        let h2 = f.handoff(Some(h));
        assert_eq!(h2.ordered_len, 1);
        assert_eq!(h2.ordered[0].value, Some(crate::Value::I64(2)));
        let _ = Combine::end(&mut f.combiner);
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::agg::{AggConfig, Aggregator};

    /// `TLM_FOLD_BENCH=1 cargo test --release --lib fold_bench -- --ignored --nocapture`:
    /// CPU per line of the ingest fold alone (no sockets), on statsd-blast's line shape.
    #[test]
    #[ignore]
    fn fold_bench() {
        let agg = Aggregator::new(AggConfig::default());
        let mut f = Fold::new(Sanitize::Etsy, agg.combiner(), 60_000_000_000);
        let c = Counters::default();
        let mut datagrams = Vec::new();
        let mut k = 12345u64;
        for _ in 0..1000 {
            let mut d = Vec::new();
            for _ in 0..20 {
                k = k
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                d.extend_from_slice(format!("bench.c.{}:1|c\n", (k >> 33) % 100).as_bytes());
            }
            datagrams.push(d);
        }
        let from = || String::new();
        let now = crate::time::now_ns();
        let t = std::time::Instant::now();
        let rounds = 500;
        for _ in 0..rounds {
            for d in &datagrams {
                f.datagram(d, now, &from, &c);
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / (rounds * 1000 * 20) as f64;
        let _ = writeln!(std::io::stderr(), "fold: {ns:.1} ns per line");
    }
    use std::io::Write;
}
