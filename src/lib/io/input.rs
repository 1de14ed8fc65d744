//! Inputs: stdin when none or `-` is given, else files and quoted globs, in order.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    /// The name used in log lines (`file=`).
    pub fn label(&self) -> String {
        match self {
            Input::Stdin => "-".into(),
            Input::File(p) => p.display().to_string(),
        }
    }

    /// Opens the input together with a way to ask whether a read would return at once.
    pub fn open_polled(&self) -> Result<(Box<dyn Read + Send>, Readiness)> {
        let fd = match self {
            Input::Stdin => std::io::stdin().as_raw_fd(),
            Input::File(p) => {
                let f = File::open(p)
                    .map_err(|e| Error::no_input(format!("cannot open {}: {e}", p.display())))?;
                let ready = Readiness::of(f.as_raw_fd());
                widen_pipe(f.as_raw_fd());
                // A file is read once from start to end: the kernel may read ahead further
                // for pages not yet cached. Only advice, so its failure changes nothing.
                // SAFETY: fadvise reads nothing from memory; the descriptor is open.
                unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
                return Ok((Box::new(f), ready));
            }
        };
        widen_pipe(fd);
        Ok((Box::new(std::io::stdin()), Readiness::of(fd)))
    }

    /// Opens the input for the stream reader: a regular file with bytes in it comes back
    /// whole, to be mapped, anything else as `open_polled` gives it.
    /// Standard input redirected from a file comes back the same way, from its current
    /// offset; the reader leaves that offset where its reading ended, as reads would.
    pub fn open_for_blocks(&self) -> Result<Opened> {
        let regular = match self {
            Input::File(p) if std::fs::metadata(p).is_ok_and(|m| m.is_file()) => Some(
                File::open(p)
                    .map_err(|e| Error::no_input(format!("cannot open {}: {e}", p.display())))?,
            ),
            Input::File(_) => None,
            Input::Stdin => stdin_file(),
        };
        if let Some(f) = regular {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let mut offset = &f;
            let from = std::io::Seek::stream_position(&mut offset).unwrap_or(len);
            if f.metadata().is_ok_and(|m| m.is_file()) && len > from {
                // SAFETY: fadvise reads nothing from memory; the descriptor is open.
                unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
                return Ok(Opened::Regular(f, from, len));
            }
        }
        let (src, ready) = self.open_polled()?;
        Ok(Opened::Stream(src, ready))
    }

    pub fn open(&self) -> Result<Box<dyn Read + Send>> {
        match self {
            Input::Stdin => Ok(Box::new(std::io::stdin())),
            Input::File(p) => File::open(p)
                .map(|f| Box::new(f) as Box<dyn Read + Send>)
                .map_err(|e| Error::no_input(format!("cannot open {}: {e}", p.display()))),
        }
    }
}

/// The pipe buffer asked for on a pipe that is read: a producer writing at full speed
/// then fills 1 MiB before it waits for the reader, not 64 KiB, so both switch far less
/// often and the reader's blocks fill before it stops waiting for more
/// (`StreamOptions::linger`). 1 MiB is Linux's default `fs.pipe-max-size`.
const PIPE_BYTES: libc::c_int = 1 << 20;

/// Asks for a `PIPE_BYTES` buffer when `fd` is a pipe: only advice, as a user past the
/// system's pipe memory quota is refused and keeps the buffer it had.
fn widen_pipe(fd: std::os::fd::RawFd) {
    if is_of_type(fd, libc::S_IFIFO) {
        // SAFETY: F_SETPIPE_SZ takes an int and changes nothing but the pipe's capacity.
        unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_BYTES) };
    }
}

/// Whether `fd` is open on a file of type `kind` (`libc::S_IFREG`, `S_IFIFO`, ...).
fn is_of_type(fd: std::os::fd::RawFd, kind: libc::mode_t) -> bool {
    // SAFETY: fstat only writes into the zeroed struct it is given.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == kind
    }
}

/// Standard input as a file of its own (sharing its offset) when it is a regular file.
fn stdin_file() -> Option<File> {
    if !is_of_type(0, libc::S_IFREG) {
        return None;
    }
    // SAFETY: dup returns a new descriptor that the File then owns alone.
    let fd = unsafe { libc::dup(0) };
    // SAFETY: as above; -1 is not owned.
    (fd >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// An input opened by `Input::open_for_blocks`.
pub enum Opened {
    /// A regular file, the offset to read it from and its size when opened.
    Regular(File, u64, u64),
    /// Anything else (or an empty file), to be read as it comes.
    Stream(Box<dyn Read + Send>, Readiness),
}

/// Whether an input has data to read right now: regular files always do; pipes, sockets
/// and terminals are polled.
#[derive(Clone, Copy, Debug)]
pub struct Readiness {
    poll_fd: Option<RawFd>,
}

impl Readiness {
    fn of(fd: RawFd) -> Readiness {
        Readiness {
            poll_fd: (!is_of_type(fd, libc::S_IFREG)).then_some(fd),
        }
    }

    /// A regular file's: always readable.
    pub fn always() -> Readiness {
        Readiness { poll_fd: None }
    }

    pub fn readable_now(&self) -> bool {
        self.readable_within(std::time::Duration::ZERO)
    }

    /// Whether a read would return within `wait` (at millisecond resolution).
    pub fn readable_within(&self, wait: std::time::Duration) -> bool {
        let Some(fd) = self.poll_fd else {
            return true;
        };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd. End of input (POLLHUP) also counts as ready: the next
        // read returns it at once.
        unsafe { libc::poll(&mut p, 1, ms) > 0 }
    }
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands arguments to inputs; every named file must exist and every glob must match.
pub fn expand_inputs(args: &[String]) -> Result<Vec<Input>> {
    if args.is_empty() {
        return Ok(vec![Input::Stdin]);
    }
    let mut inputs = Vec::new();
    for arg in args {
        if arg == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let path = PathBuf::from(arg);
        if path.exists() || !is_glob(arg) {
            if !path.is_file() && !is_fifo_or_device(&path) {
                return Err(Error::no_input(format!("no such file: {arg}")));
            }
            inputs.push(Input::File(path));
            continue;
        }
        let matches =
            glob::glob(arg).map_err(|e| Error::usage(format!("bad glob `{arg}`: {e}")))?;
        let mut found: Vec<PathBuf> = matches
            .filter_map(|m| m.ok())
            .filter(|p| p.is_file())
            .collect();
        if found.is_empty() {
            return Err(Error::no_input(format!("no file matches `{arg}`")));
        }
        found.sort();
        inputs.extend(found.into_iter().map(Input::File));
    }
    Ok(inputs)
}

fn is_fifo_or_device(p: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_char_device())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_by_default_and_dash() {
        assert_eq!(expand_inputs(&[]).unwrap(), vec![Input::Stdin]);
        assert_eq!(expand_inputs(&["-".into()]).unwrap(), vec![Input::Stdin]);
    }

    #[test]
    fn globs_expand_sorted_and_missing_is_no_input() {
        let dir = std::env::temp_dir().join(format!("tlm-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["b.ndjson", "a.ndjson"] {
            std::fs::write(dir.join(n), "").unwrap();
        }
        let pattern = format!("{}/*.ndjson", dir.display());
        let got = expand_inputs(&[pattern]).unwrap();
        assert_eq!(
            got,
            vec![
                Input::File(dir.join("a.ndjson")),
                Input::File(dir.join("b.ndjson"))
            ]
        );
        let err = expand_inputs(&[format!("{}/none-*.x", dir.display())]).unwrap_err();
        assert_eq!(err.exit, crate::error::Exit::NoInput);
        let err = expand_inputs(&[format!("{}/missing", dir.display())]).unwrap_err();
        assert_eq!(err.exit, crate::error::Exit::NoInput);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
