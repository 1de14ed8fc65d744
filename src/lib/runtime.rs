//! The shared `main`: argument parsing with sysexits codes, logging set-up, panic and
//! broken-pipe handling, and the mapping of errors to exit codes.

use crate::cli::Tool;
use crate::error::{Error, Exit};
use std::process::ExitCode;

/// Parses `T`'s flags, runs `run`, and turns the outcome into an exit code.
pub fn main<T: Tool>(run: fn(T) -> Result<(), Error>) -> ExitCode {
    install_panic_hook(T::NAME);
    let args = match T::try_parse() {
        Ok(args) => args,
        Err(e) => return usage_error(e),
    };
    crate::log::init(T::NAME, args.log_args().level(), args.log_args().format());
    exit_code(run(args))
}

fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitCode::SUCCESS,
        _ => ExitCode::from(Exit::Usage as u8),
    }
}

/// Maps a run's outcome to its exit code, logging errors (a closed pipe is success).
pub fn exit_code(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            crate::log!(Error, "exit", status = e.exit as u8, reason = e.msg);
            ExitCode::from(e.exit as u8)
        }
    }
}

/// A panic is a bug: log it as one line and exit 70 instead of printing a backtrace.
fn install_panic_hook(tool: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let reason = match info.payload().downcast_ref::<&str>() {
            Some(s) => (*s).to_string(),
            None => info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default(),
        };
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        crate::log!(Error, "panic", tool = tool, reason = reason, at = place);
        std::process::exit(Exit::Internal as i32);
    }));
}

/// The process's peak resident memory so far, in bytes (0 if the kernel will not say).
pub fn peak_rss_bytes() -> u64 {
    // SAFETY: getrusage only writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_SELF, &mut u) == 0).then_some(u)
    };
    // Linux reports ru_maxrss in KiB.
    usage.map_or(0, |u| u.ru_maxrss.max(0) as u64 * 1024)
}
