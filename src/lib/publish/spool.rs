//! The disk spool: a FIFO of batches in a directory, one file per batch.
//!
//! A file per batch keeps every operation a single `rename` or `unlink`: a batch is written
//! to a temporary name and renamed into place, so a crash leaves either the whole batch or
//! none of it, and a later run finds exactly the batches that were not delivered. Names are
//! zero-padded sequence numbers, so the directory's sorted listing is the queue's order.

use super::batch::Batch;
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"TLMSPL1\n";
const HEADER: usize = 8 + 8 + 8;
const SUFFIX: &str = ".batch";
/// A fresh spool's first sequence number: room below it for batches put back in front.
const FIRST_SEQ: u64 = 1 << 62;

/// Why a batch could not be spooled.
#[derive(Debug)]
pub enum SpoolError {
    /// `--spool-max` reached, or the disk is full.
    Full,
    Io(io::Error),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    seq: u64,
    bytes: u64,
    points: u64,
}

/// A directory of batch files, oldest first.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    entries: VecDeque<Entry>,
    bytes: u64,
    max_bytes: u64,
}

impl Spool {
    /// Opens (creating) `dir` and lists the batches a previous run left there; files that
    /// are not whole batches are moved to `dir/corrupt` and reported.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool> {
        fs::create_dir_all(dir).map_err(|e| spool_error(dir, "cannot create", &e))?;
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            entries: VecDeque::new(),
            bytes: 0,
            max_bytes,
        };
        for (seq, path) in list(dir)? {
            match read_header(&path) {
                Ok((points, bytes)) => spool.entries.push_back(Entry { seq, bytes, points }),
                Err(why) => spool.quarantine(&path, &why),
            }
        }
        spool.bytes = spool.entries.iter().map(|e| e.bytes).sum();
        Ok(spool)
    }

    /// Moves every batch of `other` (a spool directory of an earlier run) in front of this
    /// spool's batches, keeping their order, and removes `other`.
    pub fn adopt(&mut self, other: &Path) -> Result<usize> {
        let found = Spool::open(other, u64::MAX)?;
        let n = found.entries.len();
        let first = self.front_seq() - n as u64;
        for (seq, e) in (first..).zip(&found.entries) {
            let from = found.path_of(e.seq);
            fs::rename(&from, self.path_of(seq))
                .map_err(|err| spool_error(&from, "cannot adopt", &err))?;
            self.entries.push_front(Entry { seq, ..*e });
        }
        // The batches were prepended in order from the lowest new number up.
        self.entries.make_contiguous().sort_by_key(|e| e.seq);
        self.bytes += found.bytes;
        let _ = fs::remove_dir_all(other);
        Ok(n)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn points(&self) -> u64 {
        self.entries.iter().map(|e| e.points).sum()
    }

    /// Appends `batch` after the newest.
    pub fn push_back(&mut self, batch: &Batch) -> std::result::Result<(), SpoolError> {
        let seq = self.entries.back().map_or(FIRST_SEQ, |e| e.seq + 1);
        let entry = self.write(seq, batch)?;
        self.bytes += entry.bytes;
        self.entries.push_back(entry);
        Ok(())
    }

    /// Puts `batch` before the oldest: a batch taken out to send goes back in front.
    pub fn push_front(&mut self, batch: &Batch) -> std::result::Result<(), SpoolError> {
        let entry = self.write(self.front_seq() - 1, batch)?;
        self.bytes += entry.bytes;
        self.entries.push_front(entry);
        Ok(())
    }

    /// Reads the oldest batch without removing it.
    pub fn front(&self) -> Result<Option<Batch>> {
        let Some(e) = self.entries.front() else {
            return Ok(None);
        };
        let path = self.path_of(e.seq);
        let data = fs::read(&path).map_err(|err| spool_error(&path, "cannot read", &err))?;
        let (points, len) = parse_header(&data).map_err(|why| {
            Error::new(
                crate::Exit::Io,
                format!("spool file {}: {why}", path.display()),
            )
        })?;
        Ok(Some(Batch::new(
            data[HEADER..HEADER + len].to_vec(),
            points,
        )))
    }

    /// Removes the oldest batch.
    pub fn pop_front(&mut self) -> Result<()> {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.bytes;
            let path = self.path_of(e.seq);
            fs::remove_file(&path).map_err(|err| spool_error(&path, "cannot remove", &err))?;
        }
        Ok(())
    }

    fn front_seq(&self) -> u64 {
        self.entries.front().map_or(FIRST_SEQ, |e| e.seq)
    }

    fn write(&self, seq: u64, batch: &Batch) -> std::result::Result<Entry, SpoolError> {
        let bytes = (HEADER + batch.bytes()) as u64;
        if self.bytes + bytes > self.max_bytes {
            return Err(SpoolError::Full);
        }
        let tmp = self.dir.join(format!(".{seq:020}.tmp"));
        let written = write_file(&tmp, batch).and_then(|()| fs::rename(&tmp, self.path_of(seq)));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(match e.raw_os_error() {
                Some(libc::ENOSPC) | Some(libc::EDQUOT) => SpoolError::Full,
                _ => SpoolError::Io(e),
            });
        }
        Ok(Entry {
            seq,
            bytes,
            points: batch.points,
        })
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}{SUFFIX}"))
    }

    fn quarantine(&self, path: &Path, why: &str) {
        let corrupt = self.dir.join("corrupt");
        let moved = fs::create_dir_all(&corrupt).and_then(|()| {
            let name = path.file_name().unwrap_or_default();
            fs::rename(path, corrupt.join(name))
        });
        crate::log!(
            Error,
            "spool_corrupt",
            file = path.display(),
            reason = why,
            moved_to = corrupt.display(),
            moved = moved.is_ok()
        );
    }
}

fn write_file(path: &Path, batch: &Batch) -> io::Result<()> {
    let mut f = fs::File::create(path)?;
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..16].copy_from_slice(&batch.points.to_le_bytes());
    header[16..24].copy_from_slice(&(batch.bytes() as u64).to_le_bytes());
    f.write_all(&header)?;
    f.write_all(&batch.payload)?;
    f.flush()
}

fn parse_header(data: &[u8]) -> std::result::Result<(u64, usize), String> {
    let word = |at: usize| {
        data.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if data.get(..8) != Some(MAGIC.as_slice()) {
        return Err("not a tlm spool batch".into());
    }
    let (points, len) = word(8).zip(word(16)).ok_or("truncated header")?;
    if data.len() as u64 != HEADER as u64 + len {
        return Err(format!(
            "length {} does not match the header's {}",
            data.len() - HEADER,
            len
        ));
    }
    Ok((points, len as usize))
}

fn read_header(path: &Path) -> std::result::Result<(u64, u64), String> {
    let data = fs::read(path).map_err(|e| e.to_string())?;
    parse_header(&data).map(|(points, _)| (points, data.len() as u64))
}

/// The batch files in `dir`, by sequence number.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let rd = fs::read_dir(dir).map_err(|e| spool_error(dir, "cannot list", &e))?;
    let mut found = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = name
            .strip_suffix(SUFFIX)
            .and_then(|s| s.parse::<u64>().ok())
        {
            found.push((seq, entry.path()));
        } else if name.ends_with(".tmp") {
            // A write that a crash interrupted: its batch was never acknowledged as spooled.
            let _ = fs::remove_file(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

fn spool_error(path: &Path, what: &str, e: &io::Error) -> Error {
    Error::new(
        crate::Exit::Io,
        format!("spool {}: {what}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tlm-spool-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn batch(text: &str, points: u64) -> Batch {
        Batch::new(text.as_bytes().to_vec(), points)
    }

    fn drain(s: &mut Spool) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(b) = s.front().unwrap() {
            out.push(String::from_utf8(b.payload).unwrap());
            s.pop_front().unwrap();
        }
        out
    }

    #[test]
    fn fifo_order_survives_reopening() {
        let dir = tmp("reopen");
        let mut s = Spool::open(&dir, u64::MAX).unwrap();
        s.push_back(&batch("b", 1)).unwrap();
        s.push_back(&batch("c", 2)).unwrap();
        s.push_front(&batch("a", 3)).unwrap();
        assert_eq!(s.points(), 6);
        drop(s);
        let mut s = Spool::open(&dir, u64::MAX).unwrap();
        assert_eq!(s.bytes(), 3 * (HEADER as u64 + 1));
        assert_eq!(drain(&mut s), ["a", "b", "c"]);
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn full_at_the_byte_limit() {
        let dir = tmp("full");
        let mut s = Spool::open(&dir, 2 * (HEADER as u64 + 4)).unwrap();
        s.push_back(&batch("1234", 1)).unwrap();
        s.push_back(&batch("5678", 1)).unwrap();
        assert!(matches!(s.push_back(&batch("9", 1)), Err(SpoolError::Full)));
        s.pop_front().unwrap();
        s.push_back(&batch("9", 1)).unwrap();
        assert_eq!(drain(&mut s), ["5678", "9"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_files_are_set_aside_and_temporaries_removed() {
        let dir = tmp("corrupt");
        let mut s = Spool::open(&dir, u64::MAX).unwrap();
        s.push_back(&batch("good", 1)).unwrap();
        fs::write(dir.join("00000000000000000001.batch"), b"TLMSPL1\nshort").unwrap();
        fs::write(dir.join(".00000000000000000002.tmp"), b"partial").unwrap();
        drop(s);
        let mut s = Spool::open(&dir, u64::MAX).unwrap();
        assert_eq!(drain(&mut s), ["good"]);
        assert!(dir.join("corrupt/00000000000000000001.batch").exists());
        assert!(!dir.join(".00000000000000000002.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn adopting_an_old_lane_puts_its_batches_first() {
        let (a, b) = (tmp("adopt-a"), tmp("adopt-b"));
        let mut old = Spool::open(&b, u64::MAX).unwrap();
        old.push_back(&batch("old1", 1)).unwrap();
        old.push_back(&batch("old2", 1)).unwrap();
        drop(old);
        let mut s = Spool::open(&a, u64::MAX).unwrap();
        s.push_back(&batch("mine", 1)).unwrap();
        assert_eq!(s.adopt(&b).unwrap(), 2);
        assert!(!b.exists());
        assert_eq!(drain(&mut s), ["old1", "old2", "mine"]);
        fs::remove_dir_all(&a).unwrap();
    }
}
