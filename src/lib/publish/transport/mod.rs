//! How batches reach a backend: a TCP stream, datagrams, HTTP requests or a file.
//!
//! A transport is owned by one lane thread and used sequentially. Connections are made
//! lazily and remade after errors; the lane decides when to retry.

pub mod dry;
pub mod file;
pub mod http;
pub mod tcp;
pub mod udp;

use super::batch::Batch;
use std::fmt;

/// Why a send did not deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Worth trying again: the backend is down, slow or overloaded.
    Retry(String),
    /// The backend refused the data itself (an HTTP 4xx): sending it again cannot help.
    Reject(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Retry(why) | SendError::Reject(why) => f.write_str(why),
        }
    }
}

pub type SendResult = std::result::Result<(), SendError>;

pub trait Transport: Send {
    /// Delivers one batch whole, or reports why not.
    fn send(&mut self, batch: &Batch) -> SendResult;

    /// Takes a delivered batch back, for transports that keep recent batches to send again
    /// after a reconnect.
    fn keep(&mut self, _batch: Batch) {}

    /// Ends the session, confirming where the protocol allows that the backend received
    /// everything; an error means the lane should retry the close.
    fn close(&mut self) -> SendResult {
        Ok(())
    }
}

/// The text of an I/O error for logs, without the OS error number noise.
pub(crate) fn io_reason(what: &str, e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    format!("{what}: {text}")
}
