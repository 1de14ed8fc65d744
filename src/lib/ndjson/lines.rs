//! Splits a byte stream into lines in place, with a hard line-length limit: each read lands
//! in the caller's buffer where its lines stay, and only a line still incomplete when the
//! buffer is handed on is moved, to the front of the next one.

use std::io::{self, Read};

pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// The least room a read is given, so that a buffer close to full still reads in bulk.
const MIN_READ: usize = 64 << 10;
/// The most one read asks for: a larger one saves no measurable time.
const MAX_READ: usize = 4 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineError {
    /// The line (without its newline) was longer than the limit; it was skipped whole.
    TooLong { limit: usize },
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::TooLong { limit } => {
                write!(f, "line longer than {limit} bytes (--max-line-bytes)")
            }
        }
    }
}

/// A buffer that lines are read into: `bytes[..filled]` was read and every line in it ends
/// before `start`; what follows is a line still being read. The bytes past `filled` stay
/// allocated and initialised, so a reused buffer is never zeroed again.
#[derive(Default)]
pub struct LineBuf {
    bytes: Vec<u8>,
    filled: usize,
    start: usize,
}

impl LineBuf {
    /// The bytes of the whole lines read into this buffer (lines are given as ranges of it).
    #[inline]
    pub fn text(&self) -> &[u8] {
        &self.bytes[..self.start]
    }

    /// Bytes read into this buffer, a line still incomplete included.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Makes room for a read of `want` bytes (within `MIN_READ..=MAX_READ`) after `filled`.
    fn room(&mut self, want: usize) -> &mut [u8] {
        let end = self.filled + want.clamp(MIN_READ, MAX_READ);
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        &mut self.bytes[self.filled..end]
    }
}

/// Reads lines into `LineBuf`s one after another; line numbers run on across buffers.
pub struct LineReader<R> {
    src: R,
    /// The start of a line that the last buffer ended in, for the next one.
    carry: Vec<u8>,
    max_line: usize,
    line_no: u64,
    /// Inside a line that already exceeded the limit: drop bytes up to its newline.
    discarding: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(src: R, max_line: usize) -> Self {
        LineReader {
            src,
            carry: Vec::new(),
            max_line,
            line_no: 0,
            discarding: false,
        }
    }

    /// Empties `buf` and starts it with the incomplete line the previous buffer ended in.
    pub fn begin(&mut self, buf: &mut LineBuf) {
        (buf.filled, buf.start) = (0, 0);
        let n = self.carry.len();
        buf.room(n)[..n].copy_from_slice(&self.carry);
        buf.filled = n;
        self.carry.clear();
    }

    /// Takes the incomplete line at the end of `buf` out of it, for the next `begin`.
    pub fn end(&mut self, buf: &mut LineBuf) {
        self.carry
            .extend_from_slice(&buf.bytes[buf.start..buf.filled]);
        buf.filled = buf.start;
    }

    /// Reads once into `buf` (up to `want` bytes, within `MIN_READ..=MAX_READ`) and hands every line
    /// completed to `each`: its 1-based number and its range in `buf`. Empty lines are
    /// skipped. Returns `Ok(false)` at end of input, after delivering a last line that had
    /// no newline.
    pub fn read_chunk(
        &mut self,
        buf: &mut LineBuf,
        want: usize,
        mut each: impl FnMut(u64, Result<(usize, usize), LineError>),
    ) -> io::Result<bool> {
        let n = loop {
            match self.src.read(buf.room(want)) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.finish(buf, &mut each);
            return Ok(false);
        }
        let scan_from = buf.filled;
        buf.filled += n;
        self.split(buf, scan_from, &mut each);
        Ok(true)
    }

    fn split(
        &mut self,
        buf: &mut LineBuf,
        mut scan_from: usize,
        each: &mut impl FnMut(u64, Result<(usize, usize), LineError>),
    ) {
        while let Some(pos) = memchr::memchr(b'\n', &buf.bytes[scan_from..buf.filled]) {
            let nl = scan_from + pos;
            self.line_no += 1;
            let line = &buf.bytes[buf.start..nl];
            if self.discarding || line.len() > self.max_line {
                self.discarding = false;
                each(self.line_no, Err(self.too_long()));
            } else if !line.is_empty() && line != b"\r" {
                each(self.line_no, Ok((buf.start, nl)));
            }
            buf.start = nl + 1;
            scan_from = buf.start;
        }
        if buf.filled - buf.start > self.max_line {
            // No newline yet and already too long: drop what we hold, remember to skip the rest.
            self.discarding = true;
            buf.filled = buf.start;
        }
    }

    fn finish(
        &mut self,
        buf: &mut LineBuf,
        each: &mut impl FnMut(u64, Result<(usize, usize), LineError>),
    ) {
        if self.discarding {
            self.line_no += 1;
            self.discarding = false;
            each(self.line_no, Err(self.too_long()));
        } else if buf.filled > buf.start {
            self.line_no += 1;
            each(self.line_no, Ok((buf.start, buf.filled)));
        }
        buf.start = buf.filled;
    }

    fn too_long(&self) -> LineError {
        LineError::TooLong {
            limit: self.max_line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read, like a slow pipe.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    type Got = Vec<(u64, Result<String, LineError>)>;

    /// Reads `data` `step` bytes at a time, handing a buffer on once it holds `per_buf` bytes,
    /// as the stream reader does with blocks; also checks every buffer holds whole lines only.
    fn collect_in(data: &[u8], step: usize, max: usize, per_buf: usize) -> Got {
        let mut r = LineReader::new(Trickle(data, step), max);
        let mut got = Vec::new();
        let mut more = true;
        while more {
            let mut buf = LineBuf::default();
            r.begin(&mut buf);
            let mut ranges = Vec::new();
            while more && (buf.filled() < per_buf || ranges.is_empty()) {
                let want = per_buf.saturating_sub(buf.filled());
                more = r
                    .read_chunk(&mut buf, want, |n, l| ranges.push((n, l)))
                    .unwrap();
            }
            r.end(&mut buf);
            let text = buf.text();
            assert!(text.is_empty() || text.ends_with(b"\n") || !more);
            for (n, l) in ranges {
                let line = l.map(|(s, e)| String::from_utf8_lossy(&text[s..e]).into_owned());
                got.push((n, line));
            }
        }
        got
    }

    fn collect(data: &[u8], step: usize, max: usize) -> Got {
        let whole = collect_in(data, step, max, 1 << 30);
        for per_buf in [1, 2, 5, 64] {
            assert_eq!(
                collect_in(data, step, max, per_buf),
                whole,
                "{per_buf} per buffer"
            );
        }
        whole
    }

    #[test]
    fn splits_across_reads_and_keeps_numbers() {
        for step in [1, 3, 7, 1000] {
            let got = collect(b"a\n\nbb\r\nccc", step, 100);
            assert_eq!(
                got,
                vec![
                    (1, Ok("a".into())),
                    (3, Ok("bb\r".into())),
                    (4, Ok("ccc".into()))
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn over_long_lines_are_reported_once_and_skipped() {
        for step in [1, 4, 5000] {
            let mut data = b"ok\n".to_vec();
            data.extend(std::iter::repeat_n(b'x', 5000));
            data.extend_from_slice(b"\nfine\n");
            data.extend(std::iter::repeat_n(b'y', 50));
            let got = collect(&data, step, 10);
            assert_eq!(
                got,
                vec![
                    (1, Ok("ok".into())),
                    (2, Err(LineError::TooLong { limit: 10 })),
                    (3, Ok("fine".into())),
                    (4, Err(LineError::TooLong { limit: 10 })),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn long_lines_within_the_limit_grow_the_buffer() {
        let long = "z".repeat(600_000);
        let data = format!("{long}\nq\n");
        let got = collect(data.as_bytes(), 1 << 16, 1 << 20);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1.as_ref().map(String::len), Ok(600_000));
    }

    #[test]
    fn a_reused_buffer_keeps_its_room_and_only_its_new_lines() {
        let mut r = LineReader::new(&b"one\ntwo\nthree\nfour"[..], 100);
        let mut buf = LineBuf::default();
        let mut lines = Vec::new();
        for _ in 0..2 {
            r.begin(&mut buf);
            let mut ranges = Vec::new();
            r.read_chunk(&mut buf, 9, |n, l| ranges.push((n, l.unwrap())))
                .unwrap();
            r.end(&mut buf);
            let text = buf.text();
            lines.extend(ranges.iter().map(|&(n, (s, e))| (n, text[s..e].to_vec())));
        }
        assert_eq!(
            lines.len(),
            4,
            "the small source is read whole by the first read"
        );
        assert_eq!(lines[3], (4, b"four".to_vec()));
        assert!(buf.bytes.len() >= MIN_READ);
    }
}
