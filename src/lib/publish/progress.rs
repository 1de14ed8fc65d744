//! Progress bars on stderr, only when it is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// A bar counting `len` points, or none when stderr is not a terminal or there is nothing to
/// count. Colour only when `NO_COLOR` is unset.
pub fn bar(len: u64, msg: &str) -> Option<ProgressBar> {
    if len == 0 || !std::io::stderr().is_terminal() {
        return None;
    }
    let template = if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        "{msg} [{bar:30}] {pos}/{len} points ({per_sec}, {eta} left)"
    } else {
        "{msg} [{bar:30.cyan/blue}] {pos}/{len} points ({per_sec}, {eta} left)"
    };
    let style = ProgressStyle::with_template(template)
        .ok()?
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_message(msg.to_string());
    Some(bar)
}

/// A bar over the bytes of the input files, fed from the reader's counter by a thread of its
/// own; cleared when dropped.
pub struct FileProgress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileProgress {
    /// A watcher when stderr is a terminal and every input is a regular file.
    pub fn start(inputs: &[crate::io::Input], read: Arc<AtomicU64>) -> Option<FileProgress> {
        let total = inputs.iter().try_fold(0u64, |sum, input| match input {
            crate::io::Input::File(p) => std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| sum + m.len()),
            crate::io::Input::Stdin => None,
        })?;
        let bar = bar(total, "publishing")?;
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            )
            .ok()?
            .progress_chars("=> "),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let done = stop.clone();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                while !done.load(Relaxed) {
                    bar.set_position(read.load(Relaxed));
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                bar.finish_and_clear();
            })
            .ok()?;
        Some(FileProgress {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for FileProgress {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
