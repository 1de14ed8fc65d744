//! `--dry-run`: each payload is printed exactly as it would be sent, after a comment line
//! naming the destination and request; binary payloads (pickle, remote_write) as a hex dump.

use super::{SendResult, Transport};
use crate::publish::batch::Batch;
use std::io::Write;

pub struct DryRun {
    /// What a send would be: `graphite://127.0.0.1:2003`, `POST http://…/write`, headers.
    pub describe: String,
    pub binary: bool,
}

impl Transport for DryRun {
    fn send(&mut self, batch: &Batch) -> SendResult {
        let mut text = format!(
            "# dry-run {} points={} bytes={}\n",
            self.describe,
            batch.points,
            batch.bytes()
        )
        .into_bytes();
        if self.binary {
            hex_dump(&batch.payload, &mut text);
        } else {
            text.extend_from_slice(&batch.payload);
            if !batch.payload.ends_with(b"\n") {
                text.push(b'\n');
            }
        }
        // A closed stdout (`| head`) ends the dry run like any output error.
        let mut out = std::io::stdout().lock();
        out.write_all(&text)
            .and_then(|()| out.flush())
            .map_err(|e| super::SendError::Reject(super::io_reason("stdout", &e)))
    }
}

/// `xxd`-style lines: offset, 16 bytes in hex, printable ASCII.
pub fn hex_dump(data: &[u8], out: &mut Vec<u8>) {
    for (i, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}:", i * 16);
        for pair in chunk.chunks(2) {
            out.push(b' ');
            for b in pair {
                let _ = write!(out, "{b:02x}");
            }
        }
        let pad = (16 - chunk.len()) * 2 + (8 - chunk.len().div_ceil(2));
        out.extend(std::iter::repeat_n(b' ', pad + 2));
        out.extend(
            chunk
                .iter()
                .map(|&b| if (0x20..0x7f).contains(&b) { b } else { b'.' }),
        );
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_dump_matches_xxd() {
        let mut out = Vec::new();
        hex_dump(b"\x80\x02]q\x00(X\x03\x00\x00\x00a.bq\x01J", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "00000000: 8002 5d71 0028 5803 0000 0061 2e62 7101  ..]q.(X....a.bq.\n\
             00000010: 4a                                       J\n"
        );
    }
}
