//! Buffered output to stdout (or any writer): encoders append to `buf()`, the command
//! flushes per batch or window so slow streams reach `tail -f` promptly.

use crate::error::{Error, Result};
use std::io::Write;

const FLUSH_AT: usize = 256 << 10;

pub struct Output {
    buf: Vec<u8>,
    sink: Box<dyn Write + Send>,
}

impl Output {
    pub fn stdout() -> Output {
        Output::to(Box::new(std::io::stdout()))
    }

    pub fn to(sink: Box<dyn Write + Send>) -> Output {
        Output {
            buf: Vec::with_capacity(FLUSH_AT + (64 << 10)),
            sink,
        }
    }

    /// The buffer encoders append complete lines to.
    #[inline]
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Writes the buffer out once it is large; call after each line or group of lines.
    #[inline]
    pub fn maybe_write(&mut self) -> Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.write_buffer()?;
        }
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.sink.write_all(&self.buf).map_err(Error::output)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Appends metrics as tlm metric v1 lines.
    pub fn write_ndjson(&mut self, metrics: &[crate::metric::Metric]) -> Result<()> {
        for m in metrics {
            crate::ndjson::encode(m, &mut self.buf);
            self.maybe_write()?;
        }
        Ok(())
    }

    /// Writes everything held and flushes the underlying writer.
    pub fn flush(&mut self) -> Result<()> {
        self.write_buffer()?;
        self.sink.flush().map_err(Error::output)
    }
}

/// A writer that keeps what it is given, for tests that read back what was written.
#[cfg(test)]
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl Captured {
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

#[cfg(test)]
impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buf) = self.0.lock() {
            buf.extend_from_slice(b);
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
