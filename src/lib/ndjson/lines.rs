//! Splits a byte stream into lines with one reusable buffer and a hard line-length limit.

use std::io::{self, Read};

pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
const INITIAL_BUFFER: usize = 256 << 10;

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

pub struct LineReader<R> {
    src: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_line: usize,
    line_no: u64,
    /// Inside a line that already exceeded the limit: drop bytes up to its newline.
    discarding: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(src: R, max_line: usize) -> Self {
        LineReader {
            src,
            buf: vec![0; INITIAL_BUFFER.min(max_line.saturating_add(1)).max(4096)],
            start: 0,
            end: 0,
            max_line,
            line_no: 0,
            discarding: false,
        }
    }

    /// Lines delivered so far (1-based number of the last one).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Reads once from the source and hands every complete line now buffered to `each`,
    /// with its 1-based number. Empty lines are skipped. Returns `Ok(false)` at end of input,
    /// after delivering a last line that had no newline.
    pub fn read_chunk(
        &mut self,
        mut each: impl FnMut(u64, Result<&[u8], LineError>),
    ) -> io::Result<bool> {
        self.make_room();
        let n = loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.finish(&mut each);
            return Ok(false);
        }
        let scan_from = self.end;
        self.end += n;
        self.split(scan_from, &mut each);
        Ok(true)
    }

    fn split(
        &mut self,
        mut scan_from: usize,
        each: &mut impl FnMut(u64, Result<&[u8], LineError>),
    ) {
        while let Some(pos) = memchr::memchr(b'\n', &self.buf[scan_from..self.end]) {
            let nl = scan_from + pos;
            self.line_no += 1;
            let line = &self.buf[self.start..nl];
            if self.discarding || line.len() > self.max_line {
                self.discarding = false;
                each(
                    self.line_no,
                    Err(LineError::TooLong {
                        limit: self.max_line,
                    }),
                );
            } else if !line.is_empty() && line != b"\r" {
                each(self.line_no, Ok(line));
            }
            self.start = nl + 1;
            scan_from = self.start;
        }
        if self.end - self.start > self.max_line {
            // No newline yet and already too long: drop what we hold, remember to skip the rest.
            self.discarding = true;
            self.start = 0;
            self.end = 0;
        }
    }

    fn finish(&mut self, each: &mut impl FnMut(u64, Result<&[u8], LineError>)) {
        if self.discarding {
            self.line_no += 1;
            self.discarding = false;
            each(
                self.line_no,
                Err(LineError::TooLong {
                    limit: self.max_line,
                }),
            );
        } else if self.end > self.start {
            self.line_no += 1;
            each(self.line_no, Ok(&self.buf[self.start..self.end]));
        }
        self.start = 0;
        self.end = 0;
    }

    /// Moves a partial line to the front, growing the buffer only when one line needs it.
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end < self.buf.len() {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        } else {
            let grown = (self.buf.len() * 2)
                .min(self.max_line.saturating_add(2))
                .max(self.buf.len() + 1);
            self.buf.resize(grown, 0);
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

    fn collect(data: &[u8], step: usize, max: usize) -> Vec<(u64, Result<String, LineError>)> {
        let mut r = LineReader::new(Trickle(data, step), max);
        let mut got = Vec::new();
        while r
            .read_chunk(|n, l| got.push((n, l.map(|b| String::from_utf8_lossy(b).into_owned()))))
            .unwrap()
        {}
        got
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
}
