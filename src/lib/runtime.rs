//! The shared `main`: argument parsing with sysexits codes, logging set-up, panic and
//! broken-pipe handling, and the mapping of errors to exit codes.

use crate::cli::Tool;
use crate::error::{Error, Exit};
use std::process::ExitCode;

/// Parses `T`'s flags, runs `run`, and turns the outcome into an exit code.
pub fn main<T: Tool>(run: fn(T) -> Result<(), Error>) -> ExitCode {
    install_panic_hook(T::NAME);
    crate::alloc::tune_malloc();
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

/// Where the kernel placed the command line (`/proc/PID/cmdline`, what `ps` shows): its
/// first byte and length, recorded before `main` runs.
static ARGV_AREA: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static ARGV_LEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// glibc calls `.init_array` entries with (argc, argv, envp); std does the same for its own
/// copy of the arguments, which it has read before `set_process_title` can run.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[link_section = ".init_array"]
static RECORD_ARGV: extern "C" fn(i32, *const *const libc::c_char, *const *const libc::c_char) =
    record_argv;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn record_argv(
    argc: i32,
    argv: *const *const libc::c_char,
    _envp: *const *const libc::c_char,
) {
    if argc < 1 || argv.is_null() {
        return;
    }
    // SAFETY: glibc hands over argc valid, NUL-terminated argument strings, laid out back
    // to back by the kernel.
    unsafe {
        let first = *argv;
        let last = *argv.add(argc as usize - 1);
        if first.is_null() || last.is_null() {
            return;
        }
        let end = last.add(libc::strlen(last) + 1);
        let len = end.offset_from(first);
        if len > 0 {
            ARGV_AREA.store(first as usize, std::sync::atomic::Ordering::Relaxed);
            ARGV_LEN.store(len as usize, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Shows `title` as the process's command line in `ps` and `top` (cut to the length of the
/// original command line, which is all the room there is).
pub fn set_process_title(title: &str) {
    use std::sync::atomic::Ordering::Relaxed;
    let (area, len) = (ARGV_AREA.load(Relaxed), ARGV_LEN.load(Relaxed));
    if area == 0 || len < 2 {
        return;
    }
    let n = title.len().min(len - 1);
    // SAFETY: [area, area + len) is the process's own argument area (see record_argv);
    // nothing reads the arguments after flags are parsed.
    unsafe {
        let dst = area as *mut u8;
        std::ptr::copy_nonoverlapping(title.as_ptr(), dst, n);
        std::ptr::write_bytes(dst.add(n), 0, len - n);
    }
}
