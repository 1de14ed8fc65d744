//! Progress bars on stderr, only when it is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

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
