//! The `tail` source (Logster-style): follows a log file like `tail -F` and turns the lines
//! that match a regular expression into metrics.
//!
//! Each collection reads the whole lines appended since the last one (a partial last line is
//! kept for the next), matches each against `--match REGEX`, and appends:
//!
//! - for each `--count NAME`, a delta counter `NAME` with the number of matching lines over
//!   `[previous collection, now)` (0 when none matched; the first collection has no
//!   `start_ts`);
//! - for each `--observe NAME=capture`, a `distribution` `NAME` with the captured values
//!   parsed as numbers (only when there were some); a capture that is not a finite number is
//!   counted as bad and logged, rate-limited. A capture that did not take part in the match
//!   is skipped.
//!
//! Named captures listed in `tags` become tags: one metric per distinct combination (a
//! capture that did not take part is left out of the tags). A tagged counter combination is
//! reported until one interval after its last match, then forgotten, so memory follows the
//! recent combinations.
//!
//! The file is followed across rotation by rename (the path names a new inode: the old file
//! descriptor is read to its end, its unterminated last line taken as a line, then the new
//! file is read from its start) and by truncation (`copytruncate`: a size below our offset
//! starts over from 0). The first open starts at the end of the file unless `from_start`;
//! a file missing at start is waited for (logged once) and read from its start once it
//! appears. Lines longer than 1 MiB are skipped. Lines written to the old file after the
//! rotation was seen are lost, as with `tail -F`.

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use regex::Regex;

use crate::error::{Error, Result};
use crate::log::RateLimit;
use crate::metric::{Kind, Metric, Temporality, Value};

/// Bytes read per `read` call.
const CHUNK_BYTES: usize = 64 * 1024;
/// A line longer than this is skipped up to its newline.
const MAX_LINE_BYTES: usize = 1 << 20;

/// `--observe NAME=capture`: a distribution `NAME` of the named capture `capture`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observe {
    pub name: String,
    pub capture: String,
}

impl FromStr for Observe {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Observe, String> {
        match s.split_once('=') {
            Some((name, capture)) if !name.is_empty() && !capture.is_empty() => Ok(Observe {
                name: name.to_owned(),
                capture: capture.to_owned(),
            }),
            _ => Err(format!("expected NAME=capture, got {s:?}")),
        }
    }
}

/// What to follow and what to make of its lines.
#[derive(Clone, Debug, Default)]
pub struct TailConfig {
    /// The log file.
    pub path: PathBuf,
    /// `--match`: a regular expression (Rust `regex` syntax) with named captures.
    pub pattern: String,
    /// `--count NAME`: delta counters of matching lines.
    pub counts: Vec<String>,
    /// `--observe NAME=capture`: distributions of captured numbers.
    pub observes: Vec<Observe>,
    /// Named captures that become tags (of the same name).
    pub tags: Vec<String>,
    /// Read the file from its start on the first open instead of from its end.
    pub from_start: bool,
}

pub struct TailCollector {
    follower: Follower,
    matcher: Matcher,
    prev_ns: Option<i64>,
}

impl TailCollector {
    /// Checks the pattern and that every observed and tag capture is named in it (usage
    /// errors); the file itself is opened on the first collection.
    pub fn new(config: TailConfig) -> Result<TailCollector> {
        let matcher = Matcher::new(&config)?;
        Ok(TailCollector {
            follower: Follower::new(config.path, config.from_start),
            matcher,
            prev_ns: None,
        })
    }

    /// Reads what was appended since the last call and appends this interval's metrics; a
    /// read error is `unavailable`, and the lines read so far count in the next collection.
    pub fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<()> {
        let TailCollector {
            follower, matcher, ..
        } = self;
        follower
            .poll(&mut |line| matcher.take(line, now_ns))
            .map_err(|e| Error::unavailable(format!("tail {}: {e}", follower.path.display())))?;
        self.matcher.emit(now_ns, self.prev_ns, out);
        self.prev_ns = Some(now_ns);
        Ok(())
    }

    /// Captures that were not finite numbers, since start.
    pub fn bad_values(&self) -> u64 {
        self.matcher.bad_total
    }
}

/// The index of the named capture `name` in `regex`.
fn capture_index(regex: &Regex, name: &str) -> Result<usize> {
    regex
        .capture_names()
        .position(|n| n == Some(name))
        .ok_or_else(|| Error::usage(format!("--match has no named capture {name:?}")))
}

/// A captured number: any finite number `f64` reads, spaces around it allowed.
fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Tag values of one line, in the order of `Matcher::tags`; "" for a capture that did not
/// take part.
type TagKey = Vec<String>;

/// Matches lines and accumulates one interval.
struct Matcher {
    regex: Regex,
    counts: Vec<String>,
    /// Metric name and capture index.
    observes: Vec<(String, usize)>,
    /// Tag key and capture index.
    tags: Vec<(String, usize)>,
    matched: BTreeMap<TagKey, u64>,
    /// Keyed by the index in `observes` and the tag values.
    observed: BTreeMap<(usize, TagKey), Vec<f64>>,
    bad_log: RateLimit,
    bad_total: u64,
}

impl Matcher {
    fn new(config: &TailConfig) -> Result<Matcher> {
        let regex =
            Regex::new(&config.pattern).map_err(|e| Error::usage(format!("--match: {e}")))?;
        let observes = config
            .observes
            .iter()
            .map(|o| Ok((o.name.clone(), capture_index(&regex, &o.capture)?)))
            .collect::<Result<Vec<_>>>()?;
        let tags = config
            .tags
            .iter()
            .map(|t| Ok((t.clone(), capture_index(&regex, t)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut matched = BTreeMap::new();
        if tags.is_empty() {
            matched.insert(Vec::new(), 0);
        }
        Ok(Matcher {
            regex,
            counts: config.counts.clone(),
            observes,
            tags,
            matched,
            observed: BTreeMap::new(),
            bad_log: RateLimit::default(),
            bad_total: 0,
        })
    }

    /// Counts and observes one line (without its `\n`).
    fn take(&mut self, line: &[u8], now_ns: i64) {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let Some(caps) = self.regex.captures(text) else {
            return;
        };
        let key: TagKey = self
            .tags
            .iter()
            .map(|&(_, i)| caps.get(i).map_or("", |m| m.as_str()).to_owned())
            .collect();
        for slot in 0..self.observes.len() {
            let Some(m) = caps.get(self.observes[slot].1) else {
                continue;
            };
            match parse_number(m.as_str()) {
                Some(v) => self
                    .observed
                    .entry((slot, key.clone()))
                    .or_default()
                    .push(v),
                None => self.note_bad(slot, m.as_str(), now_ns),
            }
        }
        *self.matched.entry(key).or_insert(0) += 1;
    }

    fn note_bad(&mut self, slot: usize, text: &str, now_ns: i64) {
        self.bad_total += 1;
        if let Some(suppressed) = self.bad_log.allow_at(now_ns) {
            let name = self.observes.get(slot).map_or("", |o| o.0.as_str());
            crate::log!(
                Warn,
                "bad_value",
                source = "tail",
                metric = name,
                value = text,
                reason = "not a finite number",
                suppressed = suppressed
            );
        }
    }

    /// Appends the interval's metrics and starts the next interval.
    fn emit(&mut self, now_ns: i64, prev_ns: Option<i64>, out: &mut Vec<Metric>) {
        for (key, &n) in &self.matched {
            for name in &self.counts {
                let mut m = Metric::counter(name, Temporality::Delta, Value::U64(n), now_ns);
                m.start_ts = prev_ns;
                self.add_tags(&mut m, key);
                out.push(m);
            }
        }
        let untagged = self.tags.is_empty();
        self.matched.retain(|_, n| {
            let keep = untagged || *n > 0;
            *n = 0;
            keep
        });
        for ((slot, key), values) in std::mem::take(&mut self.observed) {
            let name = self.observes.get(slot).map_or("", |o| o.0.as_str());
            let mut m = Metric {
                name: name.to_owned(),
                kind: Kind::Distribution,
                values,
                ts: now_ns,
                ..Metric::default()
            };
            self.add_tags(&mut m, &key);
            out.push(m);
        }
    }

    fn add_tags(&self, m: &mut Metric, key: &TagKey) {
        for ((tag, _), value) in self.tags.iter().zip(key) {
            if !value.is_empty() {
                m.tags.push(tag, value);
            }
        }
        m.tags.normalize();
    }
}

/// Whole lines out of a byte stream; the unterminated rest waits for more.
#[derive(Default)]
struct LineBuf {
    pending: Vec<u8>,
    /// Dropping bytes up to the next newline (an over-long line, or the partial line the
    /// first open landed in).
    skipping: bool,
}

impl LineBuf {
    fn feed(&mut self, mut bytes: &[u8], on_line: &mut dyn FnMut(&[u8])) {
        while let Some(i) = memchr::memchr(b'\n', bytes) {
            let head = &bytes[..i];
            if std::mem::take(&mut self.skipping) {
                self.pending.clear();
            } else if self.pending.is_empty() {
                on_line(head);
            } else {
                self.pending.extend_from_slice(head);
                on_line(&self.pending);
                self.pending.clear();
            }
            bytes = &bytes[i + 1..];
        }
        if !self.skipping {
            self.pending.extend_from_slice(bytes);
        }
        if self.pending.len() > MAX_LINE_BYTES {
            self.pending.clear();
            self.skipping = true;
        }
    }

    /// The file ended for good: its unterminated last line is a line.
    fn finish(&mut self, on_line: &mut dyn FnMut(&[u8])) {
        if !self.pending.is_empty() && !self.skipping {
            on_line(&self.pending);
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.pending.clear();
        self.skipping = false;
    }
}

/// The file we read and how far.
struct Open {
    file: File,
    id: (u64, u64),
    offset: u64,
    /// The file's first bytes as read (up to `HEAD`): if they change, the file was truncated
    /// and written again past our offset between two polls.
    head: Vec<u8>,
}

const HEAD: usize = 64;

fn file_id(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// The identity of the file `path` names now; `None` when there is none.
fn id_at(path: &Path) -> io::Result<Option<(u64, u64)>> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(file_id(&meta))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Follows one path across rotation and truncation.
struct Follower {
    path: PathBuf,
    open: Option<Open>,
    /// The next open starts at the end of the file (only the first, and only when the file
    /// was there at start).
    seek_end: bool,
    waiting_logged: bool,
    lines: LineBuf,
    chunk: Vec<u8>,
}

impl Follower {
    fn new(path: PathBuf, from_start: bool) -> Follower {
        Follower {
            path,
            open: None,
            seek_end: !from_start,
            waiting_logged: false,
            lines: LineBuf::default(),
            chunk: vec![0; CHUNK_BYTES],
        }
    }

    /// Passes every whole line appended since the last poll to `on_line`.
    fn poll(&mut self, on_line: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        if self.open.is_none() && !self.try_open()? {
            return Ok(());
        }
        // Look at the path before draining, so that what the writer put in the old file
        // before moving on is read.
        let now_at_path = id_at(&self.path)?;
        let moved = matches!((&self.open, now_at_path), (Some(o), Some(id)) if o.id != id);
        self.drain(on_line)?;
        if moved {
            self.lines.finish(on_line);
            self.open = None;
            self.seek_end = false;
            crate::log!(Info, "rotated", source = "tail", path = self.path.display());
            if self.try_open()? {
                self.drain(on_line)?;
            }
        }
        Ok(())
    }

    /// Opens the path; `false` when it does not exist (yet).
    fn try_open(&mut self) -> io::Result<bool> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.note_missing();
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let offset = if self.seek_end { meta.len() } else { 0 };
        if offset > 0 {
            self.lines.skipping = !ends_line(&file, offset)?;
        }
        self.seek_end = false;
        self.waiting_logged = false;
        self.open = Some(Open {
            file,
            id: file_id(&meta),
            offset,
            head: Vec::new(),
        });
        Ok(true)
    }

    fn note_missing(&mut self) {
        // A file that appears later is new content: read it whole.
        self.seek_end = false;
        if !self.waiting_logged {
            self.waiting_logged = true;
            crate::log!(Info, "waiting", source = "tail", path = self.path.display());
        }
    }

    /// Reads the open file from our offset to its end (from 0 when it was truncated).
    fn drain(&mut self, on_line: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        if open.file.metadata()?.len() < open.offset || !same_head(open)? {
            crate::log!(
                Info,
                "truncated",
                source = "tail",
                path = self.path.display()
            );
            open.offset = 0;
            open.head.clear();
            self.lines.reset();
        }
        open.file.seek(SeekFrom::Start(open.offset))?;
        loop {
            let n = match open.file.read(&mut self.chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            open.offset += n as u64;
            self.lines.feed(&self.chunk[..n], on_line);
            if open.head.len() < HEAD {
                open.head = read_head(&open.file, open.offset)?;
            }
        }
    }
}

/// The first bytes of `file`, as many as `HEAD` and `upto` allow.
fn read_head(file: &File, upto: u64) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; upto.min(HEAD as u64) as usize];
    file.read_exact_at(&mut head, 0)?;
    Ok(head)
}

/// Whether the file still starts with the bytes it started with when we read them.
fn same_head(open: &Open) -> io::Result<bool> {
    if open.head.is_empty() {
        return Ok(true);
    }
    let now = read_head(&open.file, open.head.len() as u64);
    Ok(now.is_ok_and(|h| h == open.head))
}

/// Whether the byte before `offset` is a newline (so `offset` starts a line).
fn ends_line(file: &File, offset: u64) -> io::Result<bool> {
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, offset - 1)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("tlm-tail-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("temp dir");
            Dir(d)
        }

        fn log(&self) -> PathBuf {
            self.0.join("app.log")
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open for append");
        f.write_all(text.as_bytes()).expect("append");
    }

    fn config(path: PathBuf, from_start: bool) -> TailConfig {
        TailConfig {
            path,
            pattern: r"^(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d+) (?P<ms>\S+)$".into(),
            counts: vec!["req".into()],
            observes: vec!["req.ms=ms".parse().expect("observe")],
            tags: vec![],
            from_start,
        }
    }

    fn collector(path: PathBuf, from_start: bool) -> TailCollector {
        TailCollector::new(config(path, from_start)).expect("collector")
    }

    /// The `req` count of one collection at `now`.
    fn count(c: &mut TailCollector, now: i64) -> u64 {
        let mut out = Vec::new();
        c.collect(now, &mut out).expect("collect");
        let counters = out.iter().filter(|m| m.kind == Kind::Counter);
        counters
            .filter_map(|m| m.value)
            .map(|v| v.as_f64() as u64)
            .sum()
    }

    #[test]
    fn appended_lines_are_counted_once_with_the_window() {
        let d = Dir::new("append");
        append(&d.log(), "GET / 200 1\n");
        let mut c = collector(d.log(), true);
        assert_eq!(count(&mut c, 10), 1);
        append(&d.log(), "GET /a 200 2\nnoise\nPUT /b 500 3\n");
        let mut out = Vec::new();
        c.collect(20, &mut out).expect("collect");
        assert_eq!(out[0].name, "req");
        assert_eq!(out[0].value, Some(Value::U64(2)));
        assert_eq!((out[0].ts, out[0].start_ts), (20, Some(10)));
        assert_eq!(count(&mut c, 30), 0, "nothing new: a zero, nothing twice");
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let d = Dir::new("partial");
        append(&d.log(), "");
        let mut c = collector(d.log(), false);
        assert_eq!(count(&mut c, 1), 0);
        append(&d.log(), "GET / 200 1\nGET / 2");
        assert_eq!(count(&mut c, 2), 1);
        append(&d.log(), "00 7\r\n");
        let mut out = Vec::new();
        c.collect(3, &mut out).expect("collect");
        assert_eq!(out[0].value, Some(Value::U64(1)));
        assert_eq!(out[1].values, vec![7.0]);
    }

    #[test]
    fn starts_at_the_end_unless_from_start() {
        let d = Dir::new("seek");
        append(&d.log(), "GET / 200 1\nGET / 200 1\nGET / 2");
        let mut tail = collector(d.log(), false);
        let mut whole = collector(d.log(), true);
        assert_eq!(count(&mut tail, 1), 0);
        assert_eq!(count(&mut whole, 1), 2);
        append(&d.log(), "00 1\nGET / 200 1\n");
        assert_eq!(
            count(&mut tail, 2),
            1,
            "the line it started inside is skipped"
        );
        assert_eq!(count(&mut whole, 2), 2);
    }

    #[test]
    fn a_missing_file_is_waited_for_and_read_whole() {
        let d = Dir::new("missing");
        let mut c = collector(d.log(), false);
        assert_eq!(count(&mut c, 1), 0);
        append(&d.log(), "GET / 200 1\n");
        assert_eq!(count(&mut c, 2), 1);
    }

    #[test]
    fn rotation_by_rename_loses_and_repeats_nothing() {
        let d = Dir::new("rename");
        append(&d.log(), "");
        let mut c = collector(d.log(), false);
        assert_eq!(count(&mut c, 1), 0);
        append(&d.log(), "GET / 200 1\nGET / 200 1\n");
        assert_eq!(count(&mut c, 2), 2);
        append(&d.log(), "GET / 200 1\nGET / 200 1\nGET / 200 1");
        std::fs::rename(d.log(), d.0.join("app.log.1")).expect("rename");
        append(&d.log(), "GET / 200 1\n");
        assert_eq!(
            count(&mut c, 3),
            4,
            "old rest, its last line, then the new file"
        );
        append(&d.log(), "GET / 200 1\n");
        assert_eq!(count(&mut c, 4), 1);
    }

    #[test]
    fn copytruncate_starts_over() {
        let d = Dir::new("truncate");
        append(&d.log(), "");
        let mut c = collector(d.log(), false);
        assert_eq!(count(&mut c, 1), 0);
        append(&d.log(), "GET / 200 1\nGET / 200 1\nGET / 200 1\n");
        assert_eq!(count(&mut c, 2), 3);
        std::fs::copy(d.log(), d.0.join("app.log.1")).expect("copy");
        std::fs::File::create(d.log()).expect("truncate");
        append(&d.log(), "GET / 200 1\n");
        assert_eq!(count(&mut c, 3), 1);
        assert_eq!(count(&mut c, 4), 0);
    }

    #[test]
    fn observed_captures_are_distributions_and_bad_ones_counted() {
        let d = Dir::new("observe");
        append(
            &d.log(),
            "GET / 200 1.5\nGET / 200 x\nGET / 200 2\nGET / 200 inf\n",
        );
        let mut c = collector(d.log(), true);
        let mut out = Vec::new();
        c.collect(5, &mut out).expect("collect");
        let dist: Vec<_> = out
            .iter()
            .filter(|m| m.kind == Kind::Distribution)
            .collect();
        assert_eq!(dist.len(), 1);
        assert_eq!((dist[0].name.as_str(), dist[0].ts), ("req.ms", 5));
        assert_eq!(dist[0].values, vec![1.5, 2.0]);
        assert_eq!(c.bad_values(), 2);
        out.clear();
        c.collect(6, &mut out).expect("collect");
        assert_eq!(out.len(), 1, "no distribution without values");
    }

    #[test]
    fn tag_captures_split_series() {
        let d = Dir::new("tags");
        append(
            &d.log(),
            "GET / 200 1\nGET / 500 3\nPUT / 200 5\nGET /x 200 2\n",
        );
        let mut cfg = config(d.log(), true);
        cfg.tags = vec!["method".into(), "status".into()];
        let mut c = TailCollector::new(cfg).expect("collector");
        let mut out = Vec::new();
        c.collect(1, &mut out).expect("collect");
        let series: Vec<_> = out
            .iter()
            .map(|m| {
                let tags: Vec<_> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let n = m.value.map_or(m.values.len() as f64, |v| v.as_f64());
                format!("{} {} {n}", m.name, tags.join(","))
            })
            .collect();
        assert_eq!(
            series,
            [
                "req method=GET,status=200 2",
                "req method=GET,status=500 1",
                "req method=PUT,status=200 1",
                "req.ms method=GET,status=200 2",
                "req.ms method=GET,status=500 1",
                "req.ms method=PUT,status=200 1",
            ]
        );
        append(&d.log(), "GET / 500 1\n");
        out.clear();
        c.collect(2, &mut out).expect("collect");
        let counters = out.iter().filter(|m| m.kind == Kind::Counter).count();
        assert_eq!(
            counters, 3,
            "a combination gets one zero after its last match"
        );
        out.clear();
        c.collect(3, &mut out).expect("collect");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].tags.get("status"), Some("500"));
    }

    #[test]
    fn bad_config_is_a_usage_error() {
        let mut cfg = config(PathBuf::from("x"), true);
        cfg.tags = vec!["nope".into()];
        let err = TailCollector::new(cfg).err().map(|e| e.exit);
        assert_eq!(err, Some(crate::error::Exit::Usage));
        let mut cfg = config(PathBuf::from("x"), true);
        cfg.pattern = "(".into();
        assert!(TailCollector::new(cfg).is_err());
        assert!("x".parse::<Observe>().is_err());
        assert!("=x".parse::<Observe>().is_err());
    }
}
