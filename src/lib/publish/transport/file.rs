//! Appends batches to a file, rotating it by size or age (`file:PATH?rotate-size=…`).
//!
//! A rotated file is renamed to `PATH.YYYYMMDDTHHMMSSmmmZ` (with `-0001`, `-0002`… when
//! several rotate within a millisecond), so `ls` lists them in order and a shipper can pick
//! up closed files.

use super::{io_reason, SendError, SendResult, Transport};
use crate::publish::batch::Batch;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct FileTransport {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    opened: Instant,
    rotate_size: Option<u64>,
    rotate_every: Option<Duration>,
}

impl FileTransport {
    pub fn new(
        path: PathBuf,
        rotate_size: Option<u64>,
        rotate_every: Option<Duration>,
    ) -> FileTransport {
        FileTransport {
            path,
            file: None,
            size: 0,
            opened: Instant::now(),
            rotate_size,
            rotate_every,
        }
    }

    fn open(&mut self) -> Result<&mut File, SendError> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| {
                    SendError::Retry(io_reason(&format!("opening {}", self.path.display()), &e))
                })?;
            self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
            self.opened = Instant::now();
            self.file = Some(f);
        }
        self.file
            .as_mut()
            .ok_or_else(|| SendError::Retry("no file".into()))
    }

    fn due(&self, adding: u64) -> bool {
        let full = self
            .rotate_size
            .is_some_and(|max| self.size > 0 && self.size + adding > max);
        let old = self
            .rotate_every
            .is_some_and(|every| self.opened.elapsed() >= every);
        self.file.is_some() && (full || old)
    }

    fn rotate(&mut self) -> SendResult {
        self.file = None;
        // 2026-11-22T02:09:58.479Z -> 20261122T020958479Z, then -0001, -0002… within one
        // millisecond: fixed width, so names sort in rotation order.
        let stamp = crate::time::format_rfc3339_ms(crate::time::now_ns());
        let compact: String = stamp
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let base = format!("{}.{compact}", self.path.display());
        let mut target = PathBuf::from(&base);
        let mut n = 1;
        while target.exists() {
            target = PathBuf::from(format!("{base}-{n:04}"));
            n += 1;
        }
        std::fs::rename(&self.path, &target).map_err(|e| {
            SendError::Retry(io_reason(&format!("rotating {}", self.path.display()), &e))
        })?;
        crate::log!(
            Info,
            "rotated",
            file = self.path.display(),
            to = target.display()
        );
        Ok(())
    }
}

impl Transport for FileTransport {
    fn send(&mut self, batch: &Batch) -> SendResult {
        if self.due(batch.bytes() as u64) {
            self.rotate()?;
        }
        let f = self.open()?;
        if let Err(e) = f.write_all(&batch.payload) {
            self.file = None;
            return Err(SendError::Retry(io_reason("writing", &e)));
        }
        self.size += batch.bytes() as u64;
        Ok(())
    }

    fn close(&mut self) -> SendResult {
        if let Some(f) = self.file.take() {
            match f.sync_data() {
                // Devices and pipes (`file:/dev/stderr`) have nothing to sync.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                other => other.map_err(|e| SendError::Retry(io_reason("syncing", &e)))?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_keeping_every_byte() {
        let dir = std::env::temp_dir().join(format!("tlm-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.txt");
        let mut t = FileTransport::new(path.clone(), Some(10), None);
        for text in ["aaaa\n", "bbbb\n", "cccc\n", "dddd\n"] {
            t.send(&Batch::new(text.as_bytes().to_vec(), 1)).unwrap();
        }
        t.close().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "cccc\ndddd\n");
        let rotated = dir.join(names.iter().find(|n| n.as_str() != "out.txt").unwrap());
        assert_eq!(std::fs::read_to_string(rotated).unwrap(), "aaaa\nbbbb\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
