//! Termination signals delivered as channel messages, so loops can finish a window and flush.

use crate::error::{Error, Result};
use crossbeam_channel::{unbounded, Receiver};
use signal_hook::consts::{SIGINT, SIGTERM};

pub struct Signals {
    rx: Receiver<i32>,
}

impl Signals {
    /// Listens for SIGINT and SIGTERM from now on.
    pub fn termination() -> Result<Signals> {
        Signals::listen(&[SIGINT, SIGTERM])
    }

    pub fn listen(sigs: &[i32]) -> Result<Signals> {
        let mut it = signal_hook::iterator::Signals::new(sigs)
            .map_err(|e| Error::internal(format!("cannot install signal handlers: {e}")))?;
        let (tx, rx) = unbounded();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in it.forever() {
                    if tx.send(sig).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::internal(format!("cannot start signal thread: {e}")))?;
        Ok(Signals { rx })
    }

    pub fn receiver(&self) -> &Receiver<i32> {
        &self.rx
    }
}

pub fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}
