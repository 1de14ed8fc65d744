//! Running the real binaries.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub fn bin(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "tlm-agg" => env!("CARGO_BIN_EXE_tlm-agg"),
        "tlm-collect" => env!("CARGO_BIN_EXE_tlm-collect"),
        "tlm-publish" => env!("CARGO_BIN_EXE_tlm-publish"),
        "tlm-snmpwalk" => env!("CARGO_BIN_EXE_tlm-snmpwalk"),
        "tlm-statsd" => env!("CARGO_BIN_EXE_tlm-statsd"),
        other => panic!("unknown binary {other}"),
    })
}

/// Runs `name args` with `stdin`, returning its output.
pub fn run(name: &str, args: &[&str], stdin: &str) -> Output {
    run_in_pieces(name, args, stdin.as_bytes(), usize::MAX, Duration::ZERO)
}

/// Like `run`, with `stdin` written in pieces of `piece` bytes, `pause` apart: a reader that
/// keeps up finds the pipe empty between pieces.
pub fn run_in_pieces(
    name: &str,
    args: &[&str],
    stdin: &[u8],
    piece: usize,
    pause: Duration,
) -> Output {
    let mut child = Command::new(bin(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        for (i, chunk) in data.chunks(piece).enumerate() {
            if i > 0 {
                std::thread::sleep(pause);
            }
            if input.write_all(chunk).is_err() {
                return;
            }
        }
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    out
}

/// Runs a shell pipeline with the binaries' directory first on PATH.
pub fn sh(script: &str) -> Output {
    let dir = bin("tlm-agg").parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .env("PATH", path)
        .output()
        .expect("bash")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
