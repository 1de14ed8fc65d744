//! Real pipelines of the real binaries.

use super::harness::{bin, run, run_in_pieces, sh, text};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn collect_agg_publish_prints_valid_graphite() {
    let out = sh("tlm-collect system --interval 1s --count 3 | tlm-agg --window 10s | tlm-publish --format graphite");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 20, "too few lines:\n{stdout}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for line in &lines {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 3, "not `name value ts`: {line}");
        assert!(!parts[0].is_empty());
        assert!(
            parts[1].parse::<f64>().is_ok_and(f64::is_finite),
            "value: {line}"
        );
        let ts: i64 = parts[2].parse().expect("integer seconds");
        assert!(
            (now - 60..=now + 20).contains(&ts),
            "ts {ts} not near now {now}"
        );
    }
    for name in [
        "system.memory.total;",
        "system.load.1m;",
        "system.cpu.time;cpu=total;",
    ] {
        assert!(stdout.contains(name), "missing {name}");
    }
}

#[test]
fn counter64_passes_through_digit_for_digit() {
    let line = r#"{"name":"if.hc_in_octets","kind":"counter","temporality":"cumulative","value":12345678901234567890,"ts":1767225600123456789}"#;
    for format in ["ndjson", "graphite", "influx"] {
        let out = run("tlm-publish", &["--format", format], &format!("{line}\n"));
        assert!(out.status.success());
        assert!(
            text(&out.stdout).contains("12345678901234567890"),
            "{format}: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn broken_pipe_ends_quietly() {
    let out = sh("tlm-collect system --interval 0.01s --count 100000 | head -1; echo \"status=${PIPESTATUS[0]}\" >&2");
    let stderr = text(&out.stderr);
    assert_eq!(text(&out.stdout).lines().count(), 1);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("status=0") || stderr.contains("status=141"),
        "{stderr}"
    );
    let out = sh("yes '{\"name\":\"x\",\"kind\":\"gauge\",\"value\":1}' | head -200000 | tlm-publish --format graphite | head -2; echo \"status=${PIPESTATUS[2]}\" >&2");
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("panicked") && stderr.contains("status=0"),
        "{stderr}"
    );
}

/// SIGTERM while windows are open: they are written out, then the command exits 0.
#[test]
fn sigterm_flushes_open_windows() {
    let mut child = Command::new(bin("tlm-agg"))
        .args(["--window", "1h"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for v in [1, 2, 3] {
        writeln!(
            stdin,
            r#"{{"name":"req","kind":"counter","temporality":"delta","value":{v}}}"#
        )
        .unwrap();
    }
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(r#""name":"req","kind":"counter","temporality":"delta","value":6,"#),
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("signal=SIGTERM"));
}

/// A slow live stream reaches the reader as soon as a window closes, without EOF.
#[test]
fn idle_stream_windows_reach_the_reader_promptly() {
    let mut child = Command::new(bin("tlm-agg"))
        .args(["--window", "100ms"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, r#"{{"name":"live","kind":"gauge","value":7}}"#).unwrap();
    stdin.flush().unwrap();
    let started = Instant::now();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains(r#""name":"live""#), "{line}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn bad_lines_are_rate_limited() {
    let mut input = String::new();
    for _ in 0..1000 {
        input.push_str("not json\n");
    }
    input.push_str(r#"{"name":"x","kind":"gauge","value":1,"ts":1767225600000000000}"#);
    input.push('\n');
    let out = run("tlm-agg", &[], &input);
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    let warnings = stderr
        .lines()
        .filter(|l| l.contains("event=bad_line "))
        .count();
    assert!((1..=20).contains(&warnings), "{warnings} warnings");
    assert!(
        stderr.contains("event=bad_lines_total count=1000"),
        "{stderr}"
    );
    assert_eq!(text(&out.stdout).lines().count(), 1);
}

#[test]
fn env_vars_set_flags() {
    let out = sh("printf '%s\\n' '{\"name\":\"x\",\"kind\":\"gauge\",\"value\":1,\"ts\":1767225600000000000}' '{\"name\":\"x\",\"kind\":\"gauge\",\"value\":3,\"ts\":1767225630000000000}' | TLM_AGG_WINDOW=1m TLM_AGG_GAUGE=mean TLM_PUBLISH_FORMAT=graphite tlm-agg | TLM_PUBLISH_FORMAT=graphite tlm-publish");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "x.mean 2.0 1767225660\n");
}

#[test]
fn globs_and_files_are_read_in_order() {
    let dir = std::env::temp_dir().join(format!("tlm-cli-glob-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, v) in [("b.ndjson", 2), ("a.ndjson", 1)] {
        let line = format!("{{\"name\":\"n\",\"kind\":\"gauge\",\"value\":{v},\"ts\":{v}}}\n");
        std::fs::write(dir.join(name), line).unwrap();
    }
    let pattern = format!("{}/*.ndjson", dir.display());
    let out = run(
        "tlm-publish",
        &["--format", "graphite", "--input", &pattern],
        "",
    );
    assert_eq!(text(&out.stdout), "n 1 0\nn 2 0\n");
    let out = run(
        "tlm-publish",
        &["--input", &format!("{}/none-*.x", dir.display())],
        "",
    );
    assert_eq!(out.status.code(), Some(66));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `tlm-agg ARGS` and fails (instead of hanging) if it takes longer than `limit`.
fn agg_with_deadline(args: &[&str], limit: Duration) -> String {
    let mut child = Command::new(bin("tlm-agg"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("tlm-agg {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().unwrap()
}

/// Many decoder threads on a file that reads faster than it decodes: the output is the same
/// as with one thread, every time, and the run never stalls.
#[test]
fn decoder_threads_never_change_the_output() {
    let dir = std::env::temp_dir().join(format!("tlm-cli-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("in.ndjson");
    let mut data = String::new();
    for i in 0..200_000u64 {
        let host = i % 997;
        data.push_str(&format!(
            "{{\"name\":\"m{}\",\"kind\":\"counter\",\"temporality\":\"delta\",\"value\":{},\"ts\":{},\"tags\":{{\"host\":\"h{host}\"}}}}\n",
            i % 7,
            i % 13,
            1_767_225_600_000_000_000u64 + i * 1_000_000
        ));
    }
    std::fs::write(&file, data).unwrap();
    let path = file.to_str().unwrap();
    let one = agg_with_deadline(&["--threads", "1", "-q", path], Duration::from_secs(60));
    assert!(one.lines().count() > 1000);
    for threads in ["2", "4", "8"] {
        for _ in 0..3 {
            let many =
                agg_with_deadline(&["--threads", threads, "-q", path], Duration::from_secs(60));
            assert!(many == one, "--threads {threads} changed the output");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same input gives the same bytes however a pipe happens to deliver it: sums of float
/// values do not depend on where the reads, and so the blocks, ended.
#[test]
fn summaries_do_not_depend_on_how_a_pipe_delivers_the_input() {
    let mut data = String::new();
    for i in 0..20_000u64 {
        let v = (i % 97) as f64 * 0.1 + (i % 13) as f64 * 1e-3 + if i % 5 == 0 { 1e6 } else { 0.0 };
        data.push_str(&format!(
            "{{\"name\":\"lat\",\"kind\":\"distribution\",\"values\":[{v}],\"ts\":{},\"tags\":{{\"host\":\"h{}\"}}}}\n",
            1_767_225_600_000_000_000u64 + i * 10_000_000,
            i % 4
        ));
    }
    let args = ["--window", "10s", "-q"];
    let whole = run("tlm-agg", &args, &data);
    assert!(whole.status.success());
    assert!(text(&whole.stdout).lines().count() > 40);
    for chunk in [4093, 17_011] {
        let trickled = run_in_pieces(
            "tlm-agg",
            &args,
            data.as_bytes(),
            chunk,
            Duration::from_millis(2),
        );
        assert!(trickled.status.success());
        assert!(
            trickled.stdout == whole.stdout,
            "{chunk}-byte pieces changed the output"
        );
    }
}

/// A file is read mapped, in blocks its decoders split into lines; a pipe is read as it
/// comes. Bad lines are reported with the same line numbers either way, across blocks.
#[test]
fn bad_lines_keep_their_numbers_in_files_and_pipes() {
    let dir = std::env::temp_dir().join(format!("tlm-cli-lineno-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("in.ndjson");
    let good = r#"{"name":"x","kind":"gauge","value":1,"ts":1767225600000000000}"#;
    // About 8 MB: several of tlm-agg's 4 MiB blocks.
    let bad_at = [2usize, 40_001, 70_000, 100_003];
    let mut data = String::new();
    for no in 1..=120_000usize {
        if bad_at.contains(&no) {
            data.push_str("not json\n");
        } else if no % 1000 == 0 {
            data.push('\n');
        } else {
            data.push_str(good);
            data.push('\n');
        }
    }
    data.push_str("{\"name\":");
    std::fs::write(&path, &data).unwrap();
    let numbers = |out: &std::process::Output| -> Vec<usize> {
        text(&out.stderr)
            .lines()
            .filter(|l| l.contains("event=bad_line "))
            .filter_map(|l| l.split(" line=").nth(1)?.split(' ').next()?.parse().ok())
            .collect()
    };
    let mapped = run("tlm-agg", &[path.to_str().unwrap()], "");
    let piped = run("tlm-agg", &[], &data);
    assert!(mapped.status.success(), "{}", text(&mapped.stderr));
    let mut want = bad_at.to_vec();
    want.push(120_001);
    assert_eq!(numbers(&mapped), want, "{}", text(&mapped.stderr));
    assert_eq!(numbers(&piped), want, "{}", text(&piped.stderr));
    assert_eq!(text(&mapped.stdout), text(&piped.stdout));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file cut short while tlm-agg reads it ends the run with a clear error and exit 74,
/// not a crash by SIGBUS.
#[test]
fn a_file_truncated_while_it_is_read_is_an_io_error() {
    let dir = std::env::temp_dir().join(format!("tlm-cli-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("in.ndjson");
    // 40 MB of points, one second apart: each 10-s window closes early and is written.
    let mut data = String::with_capacity(41 << 20);
    let mut i = 0u64;
    while data.len() < 40 << 20 {
        let ts = 1_767_225_600_000_000_000u64 + i * 1_000_000_000;
        data.push_str(&format!(
            "{{\"name\":\"n{}\",\"kind\":\"gauge\",\"value\":{i},\"ts\":{ts}}}\n",
            i % 5000
        ));
        i += 1;
    }
    std::fs::write(&path, &data).unwrap();
    let child = Command::new(bin("tlm-agg"))
        .args(["--threads", "1", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads stdout yet: once the pipe is full, tlm-agg waits, and with it the
    // reader, a few blocks into the file.
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{stderr}");
    assert!(stderr.contains("event=input_truncated"), "{stderr}");
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Standard input redirected from a file is read from where the shell left its offset, and
/// left at its end, as reads leave it, for whatever reads on.
#[test]
fn standard_input_from_a_file_is_read_from_its_offset_to_its_end() {
    let dir = std::env::temp_dir().join(format!("tlm-cli-stdin-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("in.ndjson");
    let lines: String = ["a", "b", "c"]
        .iter()
        .map(|n| {
            format!(
                "{{\"name\":\"{n}\",\"kind\":\"gauge\",\"value\":1,\"ts\":1767225600000000000}}\n"
            )
        })
        .collect();
    std::fs::write(&path, lines).unwrap();
    let out = sh(&format!(
        "{{ read -r first; tlm-agg --window 10s; echo \"rest=[$(cat)]\" >&2; }} < '{}'",
        path.display()
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.split('"').nth(3).unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["b", "c"]);
    assert!(
        text(&out.stderr).contains("rest=[]"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
