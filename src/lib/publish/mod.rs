//! Delivery of a metric stream. This version writes one format to stdout; destinations
//! (Graphite, InfluxDB, Prometheus, … over the network) plug in beside it as sinks.

use crate::encode::{encoder, Encoder, Format};
use crate::error::Result;
use crate::io::Output;
use crate::log::RateLimit;
use crate::metric::Metric;
use crate::stream::{Prepared, StreamSink};

/// Counts of one publishing run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishStats {
    pub written: u64,
    pub unsupported: u64,
}

/// Encodes every metric in one format onto the output stream.
pub struct FormatWriter {
    encoder: Box<dyn Encoder + Send>,
    stats: PublishStats,
    limit: RateLimit,
}

impl FormatWriter {
    pub fn new(format: Format) -> FormatWriter {
        FormatWriter {
            encoder: encoder(format),
            stats: PublishStats::default(),
            limit: RateLimit::default(),
        }
    }

    pub fn stats(&self) -> PublishStats {
        self.stats
    }

    pub fn write(&mut self, m: &Metric, out: &mut Output) -> Result<()> {
        match self.encoder.encode(m, out.buf()) {
            Ok(()) => self.stats.written += 1,
            Err(e) => {
                self.stats.unsupported += 1;
                if let Some(suppressed) = self.limit.allow() {
                    crate::log!(
                        Warn,
                        "unsupported",
                        name = m.name,
                        kind = m.kind,
                        reason = e.reason,
                        suppressed = suppressed
                    );
                }
            }
        }
        out.maybe_write()
    }
}

impl StreamSink for FormatWriter {
    fn batch(&mut self, metrics: &[Metric], _prepared: &Prepared, out: &mut Output) -> Result<()> {
        metrics.iter().try_for_each(|m| self.write(m, out))
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        self.encoder.finish(out.buf());
        let s = self.stats;
        if s.unsupported > 0 {
            crate::log!(
                Warn,
                "summary",
                written = s.written,
                unsupported = s.unsupported
            );
        } else {
            crate::log!(
                Debug,
                "summary",
                written = s.written,
                unsupported = s.unsupported
            );
        }
        Ok(())
    }
}
