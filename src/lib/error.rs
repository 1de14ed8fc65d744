//! Errors that end a command, each with its sysexits code.

use std::fmt;
use std::io;

/// Exit codes (sysexits.h), the same table in every man page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Usage = 64,
    Data = 65,
    NoInput = 66,
    Unavailable = 69,
    Internal = 70,
    Io = 74,
}

impl Exit {
    pub const TABLE: [(Exit, &'static str); 7] = [
        (
            Exit::Ok,
            "success (also when a downstream reader closed the pipe)",
        ),
        (Exit::Usage, "usage error: unknown flag, bad flag value"),
        (Exit::Data, "bad input data under --strict"),
        (
            Exit::NoInput,
            "an input file does not exist or cannot be read; a glob matches nothing",
        ),
        (Exit::Unavailable, "a service or source is unavailable"),
        (Exit::Internal, "internal error (a bug: please report it)"),
        (Exit::Io, "I/O error writing output or reading input"),
    ];
}

#[derive(Debug)]
pub struct Error {
    pub exit: Exit,
    pub msg: String,
}

impl Error {
    pub fn new(exit: Exit, msg: impl Into<String>) -> Error {
        Error {
            exit,
            msg: msg.into(),
        }
    }
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::new(Exit::Usage, msg)
    }
    pub fn data(msg: impl Into<String>) -> Error {
        Error::new(Exit::Data, msg)
    }
    pub fn no_input(msg: impl Into<String>) -> Error {
        Error::new(Exit::NoInput, msg)
    }
    pub fn unavailable(msg: impl Into<String>) -> Error {
        Error::new(Exit::Unavailable, msg)
    }
    pub fn internal(msg: impl Into<String>) -> Error {
        Error::new(Exit::Internal, msg)
    }
    /// The reader downstream went away: end quietly with success.
    pub fn broken_pipe() -> Error {
        Error::new(Exit::Ok, "broken pipe")
    }
    pub fn is_broken_pipe(&self) -> bool {
        self.exit == Exit::Ok
    }
    /// An I/O error while writing the output stream.
    pub fn output(e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Error::broken_pipe()
        } else {
            Error::new(Exit::Io, format!("writing output: {e}"))
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
