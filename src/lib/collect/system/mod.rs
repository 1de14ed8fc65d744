//! The `system` source: host-wide CPU, memory, load, uptime, disks, network, sockets, paging,
//! file handles, entropy and file systems from Linux `/proc`.
//!
//! One file per `/proc` file: `cpu` reads `stat`, `memory` reads `meminfo`, `load` reads
//! `loadavg`, `uptime` reads `uptime`, `diskstats` reads `diskstats`, `netdev` reads
//! `net/dev`, `sockstat` reads `net/sockstat`, `vmstat` reads `vmstat`, `files` reads
//! `sys/fs/file-nr` and `sys/kernel/random/entropy_avail`, `filesystems` reads `self/mounts`
//! and calls `statvfs` on each mount point. Each has a `parse` that takes the file's text (so
//! tests feed fixture strings) and returns a sample or the reason the text is malformed, and an
//! `emit` that appends the sample's metrics; each module's doc lists its metric names.
//! `SystemCollector` reads the files, keeps what must outlive one collection (boot time, the
//! previous CPU sample, the filters) and tags every metric with the host.
//!
//! The process counts (`system.processes.running`, `.blocked`, `.total`) and forks
//! (`system.forks`) come from `stat` and `loadavg`, in `cpu` and `load`.
//!
//! `stat`, `meminfo`, `loadavg` and `uptime` are required: without one, `collect` fails. The
//! others are optional: a file that is missing or unreadable for lack of permission (as in
//! some containers) is skipped with a debug log; a file that is there but malformed still
//! fails the collection.

mod cpu;
mod diskstats;
mod files;
mod filesystems;
mod load;
mod memory;
mod netdev;
mod sockstat;
mod uptime;
mod vmstat;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use globset::GlobSet;

use crate::metric::{Metric, Temporality, Value};
use crate::Error;

/// Collects the `system` metrics of one host, one call to `collect` per interval.
#[derive(Debug)]
pub struct SystemCollector {
    proc_root: PathBuf,
    host: String,
    boot_ns: i64,
    clk_tck: u64,
    /// The CPU sample of the previous collection: percentages need two.
    prev_cpu: Vec<cpu::CpuTimes>,
    /// Only the mount points these match are measured; all when `None`.
    mounts: Option<GlobSet>,
    /// Only the network interfaces these match are emitted; all when `None`.
    interfaces: Option<GlobSet>,
}

impl SystemCollector {
    /// `proc_root` is normally "/proc" (tests point it at a fixture dir).
    pub fn new(proc_root: impl Into<PathBuf>) -> Result<SystemCollector, Error> {
        let proc_root = proc_root.into();
        let stat = read_source(&proc_root, "stat", cpu::parse)?;
        Ok(SystemCollector {
            host: hostname(&proc_root),
            boot_ns: stat.boot_ns,
            clk_tck: clock_ticks(),
            prev_cpu: Vec::new(),
            mounts: None,
            interfaces: None,
            proc_root,
        })
    }

    /// Limits `system.filesystem.*` to mount points (`/`, `/var/lib/*`) that `mounts` matches;
    /// `None` measures all. Excluded mounts are not even `statvfs`ed.
    pub fn set_mounts(&mut self, mounts: Option<GlobSet>) {
        self.mounts = mounts;
    }

    /// Limits `system.network.*` to interface names (`eth*`, `lo`) that `interfaces` matches;
    /// `None` emits all.
    pub fn set_interfaces(&mut self, interfaces: Option<GlobSet>) {
        self.interfaces = interfaces;
    }

    /// Appends one collection's metrics, all stamped `ts = now_ns`, each tagged host=<hostname>.
    ///
    /// Every file is read and parsed before anything is appended, so on error `out` is
    /// unchanged.
    pub fn collect(&mut self, now_ns: i64, out: &mut Vec<Metric>) -> Result<(), Error> {
        let stat = read_source(&self.proc_root, "stat", cpu::parse)?;
        let mem = read_source(&self.proc_root, "meminfo", memory::parse)?;
        let loadavg = read_source(&self.proc_root, "loadavg", load::parse)?;
        let up = read_source(&self.proc_root, "uptime", uptime::parse)?;
        let root = &self.proc_root;
        let disks = read_optional(root, "diskstats", diskstats::parse)?;
        let net = read_optional(root, "net/dev", netdev::parse)?;
        let sockets = read_optional(root, "net/sockstat", sockstat::parse)?;
        let vm = read_optional(root, "vmstat", vmstat::parse)?;
        let file_nr = read_optional(root, "sys/fs/file-nr", files::parse_file_nr)?;
        let entropy = read_optional(
            root,
            "sys/kernel/random/entropy_avail",
            files::parse_entropy,
        )?;
        let mounts = read_optional(root, "self/mounts", filesystems::parse)?;
        let filesystems = mounts
            .map(|m| filesystems::measure(m, self.mounts.as_ref()))
            .unwrap_or_default();

        let start = out.len();
        let at = Stamp {
            ts: now_ns,
            boot_ns: self.boot_ns,
        };
        cpu::emit(&stat, &self.prev_cpu, self.clk_tck, at, out);
        memory::emit(&mem, at, out);
        load::emit(&loadavg, at, out);
        uptime::emit(up, at, out);
        if let Some(disks) = &disks {
            diskstats::emit(disks, at, out);
        }
        if let Some(net) = &net {
            netdev::emit(net, self.interfaces.as_ref(), at, out);
        }
        if let Some(s) = &sockets {
            sockstat::emit(s, at, out);
        }
        if let Some(vm) = &vm {
            vmstat::emit(vm, at, out);
        }
        if let Some(f) = &file_nr {
            files::emit_file_nr(f, at, out);
        }
        if let Some(bits) = entropy {
            files::emit_entropy(bits, at, out);
        }
        filesystems::emit(&filesystems, at, out);
        for m in &mut out[start..] {
            m.tags.insert("host", &self.host);
        }
        self.prev_cpu = stat.cpus;
        Ok(())
    }
}

/// What the metrics of one collection share.
#[derive(Clone, Copy, Debug)]
struct Stamp {
    ts: i64,
    boot_ns: i64,
}

impl Stamp {
    fn gauge(self, name: &str, value: Value) -> Metric {
        Metric::gauge(name, value, self.ts)
    }

    /// A running total since boot.
    fn since_boot(self, name: &str, value: Value) -> Metric {
        let mut m = Metric::counter(name, Temporality::Cumulative, value, self.ts);
        m.start_ts = Some(self.boot_ns);
        m
    }
}

/// Reads `<proc_root>/<name>` and parses it; either failure is `Error::unavailable` naming
/// the file.
fn read_source<T>(
    proc_root: &Path,
    name: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, Error> {
    let path = proc_root.join(name);
    parsed(&path, fs::read_to_string(&path), parse)
}

/// Like `read_source`, for a file a host may lack: `None`, with a debug log, when it is
/// missing or not readable for lack of permission.
fn read_optional<T>(
    proc_root: &Path,
    name: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, Error> {
    let path = proc_root.join(name);
    match fs::read_to_string(&path) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
            ) =>
        {
            crate::log!(Debug, "source_skipped", file = path.display(), error = e);
            Ok(None)
        }
        read => parsed(&path, read, parse).map(Some),
    }
}

fn parsed<T>(
    path: &Path,
    read: io::Result<String>,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, Error> {
    let text =
        read.map_err(|e| Error::unavailable(format!("cannot read {}: {e}", path.display())))?;
    parse(&text).map_err(|reason| Error::unavailable(format!("{}: {reason}", path.display())))
}

fn parse_u64(field: &str) -> Result<u64, String> {
    field
        .parse()
        .map_err(|_| format!("`{field}` is not a whole number"))
}

fn parse_f64(field: &str) -> Result<f64, String> {
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{field}` is not a number")),
    }
}

/// The kernel's host name; else `<proc_root>/sys/kernel/hostname`; else "localhost".
fn hostname(proc_root: &Path) -> String {
    hostname_or_fallback(os_hostname(), proc_root)
}

fn hostname_or_fallback(os: Option<String>, proc_root: &Path) -> String {
    os.or_else(|| {
        let text = fs::read_to_string(proc_root.join("sys/kernel/hostname")).ok()?;
        non_empty(text.trim())
    })
    .unwrap_or_else(|| "localhost".to_owned())
}

fn os_hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes, the most gethostname writes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    non_empty(String::from_utf8_lossy(&buf[..len]).trim())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Jiffies per second (`USER_HZ`), 100 when sysconf cannot tell.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Exit;
    use crate::metric::Kind;

    const STAT: &str = "\
cpu  100 0 50 850 0 0 0 0 0 0
cpu0 60 0 20 420 0 0 0 0 0 0
cpu1 40 0 30 430 0 0 0 0 0 0
ctxt 1000
btime 1700000000
processes 42
procs_running 2
procs_blocked 0
";

    const MEMINFO: &str = "\
MemTotal:        1000 kB
MemFree:          200 kB
MemAvailable:     600 kB
Buffers:           10 kB
Cached:           300 kB
SReclaimable:      20 kB
SwapTotal:        100 kB
SwapFree:         100 kB
";

    /// A fixture `/proc` in a fresh temporary directory, removed on drop.
    struct Fixture(PathBuf);

    impl Fixture {
        fn new(name: &str, files: &[(&str, &str)]) -> Fixture {
            let dir = std::env::temp_dir()
                .join(format!("tlm-collect-system-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            for (file, text) in files {
                let path = dir.join(file);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
            Fixture(dir)
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn full_fixture(name: &str) -> Fixture {
        Fixture::new(
            name,
            &[
                ("stat", STAT),
                ("meminfo", MEMINFO),
                ("loadavg", "0.50 0.25 0.10 2/300 4242\n"),
                ("uptime", "12.5 20.0\n"),
            ],
        )
    }

    #[test]
    fn collects_fixture_with_host_tag_and_timestamp() {
        let fx = full_fixture("ok");
        let mut c = SystemCollector::new(&fx.0).unwrap();
        assert_eq!(c.boot_ns, 1_700_000_000 * 1_000_000_000);
        let mut out = Vec::new();
        c.collect(7, &mut out).unwrap();
        assert!(out
            .iter()
            .all(|m| m.ts == 7 && m.tags.get("host") == Some(c.host.as_str())));
        assert!(out.iter().all(|m| m.validate().is_ok()));
        assert!(!out.iter().any(|m| m.name == "system.cpu.percent"));
        let up = out.iter().find(|m| m.name == "system.uptime").unwrap();
        assert_eq!((up.value, up.unit.as_str()), (Some(Value::F64(12.5)), "s"));
        let ctxt = out
            .iter()
            .find(|m| m.name == "system.context_switches")
            .unwrap();
        assert_eq!(ctxt.kind, Kind::Counter);
        assert_eq!(ctxt.start_ts, Some(c.boot_ns));

        fs::write(
            fx.0.join("stat"),
            STAT.replace("cpu  100 0 50 850", "cpu  110 0 50 940"),
        )
        .unwrap();
        out.clear();
        c.collect(8, &mut out).unwrap();
        let pct = |mode: &str| {
            out.iter()
                .find(|m| {
                    m.name == "system.cpu.percent"
                        && m.tags.get("cpu") == Some("total")
                        && m.tags.get("mode") == Some(mode)
                })
                .and_then(|m| m.value)
        };
        assert_eq!(pct("user"), Some(Value::F64(10.0)));
        assert_eq!(pct("idle"), Some(Value::F64(90.0)));
    }

    /// The optional files, one line or device each.
    const OPTIONAL: [(&str, &str); 7] = [
        ("diskstats", " 254 0 vda 1 0 8 2 3 0 16 4 0 5 6\n   7 0 loop0 1 0 8 2 3 0 16 4 0 5 6\n"),
        (
            "net/dev",
            "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n  eth0: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n",
        ),
        (
            "net/sockstat",
            "sockets: used 11\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 0\nUDP: inuse 0 mem 0\n",
        ),
        (
            "vmstat",
            "pgpgin 1\npgpgout 2\npswpin 0\npswpout 0\npgfault 9\npgmajfault 1\n",
        ),
        ("sys/fs/file-nr", "377\t0\t2465610\n"),
        ("sys/kernel/random/entropy_avail", "256\n"),
        ("self/mounts", "proc /proc proc rw 0 0\n/dev/root / ext4 rw 0 0\n"),
    ];

    #[test]
    fn collects_optional_files_with_filters() {
        let mut files = vec![
            ("stat", STAT),
            ("meminfo", MEMINFO),
            ("loadavg", "0.50 0.25 0.10 2/300 4242\n"),
            ("uptime", "12.5 20.0\n"),
        ];
        files.extend(OPTIONAL);
        let fx = Fixture::new("optional", &files);
        let mut c = SystemCollector::new(&fx.0).unwrap();
        let glob = |g: &str| {
            let mut b = globset::GlobSetBuilder::new();
            b.add(globset::Glob::new(g).unwrap());
            Some(b.build().unwrap())
        };
        c.set_interfaces(glob("eth*"));
        let mut out = Vec::new();
        c.collect(7, &mut out).unwrap();
        assert!(out.iter().all(|m| m.validate().is_ok()
            && m.ts == 7
            && m.tags.get("host") == Some(c.host.as_str())));
        let has = |name: &str| out.iter().any(|m| m.name == name);
        for name in [
            "system.disk.io",
            "system.network.io",
            "system.sockets.used",
            "system.vm.page_faults",
            "system.files.open",
            "system.entropy.available",
            "system.filesystem.size",
        ] {
            assert!(has(name), "no {name}");
        }
        assert!(!out.iter().any(|m| m.tags.get("device") == Some("loop0")));
        assert!(!out.iter().any(|m| m.tags.get("interface") == Some("lo")));
        let root = out
            .iter()
            .find(|m| m.name == "system.filesystem.size")
            .unwrap();
        assert_eq!(
            (root.tags.get("mount"), root.tags.get("device")),
            (Some("/"), Some("/dev/root"))
        );

        c.set_interfaces(None);
        c.set_mounts(glob("/nowhere"));
        out.clear();
        c.collect(8, &mut out).unwrap();
        assert!(out.iter().any(|m| m.tags.get("interface") == Some("lo")));
        assert!(!out.iter().any(|m| m.name.starts_with("system.filesystem.")));
    }

    #[test]
    fn malformed_optional_file_fails_and_leaves_out_unchanged() {
        let fx = full_fixture("bad-optional");
        fs::create_dir_all(fx.0.join("net")).unwrap();
        fs::write(fx.0.join("net/sockstat"), "sockets: used many\n").unwrap();
        let mut c = SystemCollector::new(&fx.0).unwrap();
        let mut out = vec![Metric::gauge("before", Value::U64(1), 0)];
        let e = c.collect(1, &mut out).unwrap_err();
        assert_eq!(e.exit, Exit::Unavailable);
        assert!(
            e.msg.contains("sockstat") && e.msg.contains("`many`"),
            "{}",
            e.msg
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn missing_file_is_unavailable_and_names_it() {
        let fx = Fixture::new("missing", &[("stat", STAT)]);
        let mut c = SystemCollector::new(&fx.0).unwrap();
        let mut out = Vec::new();
        let e = c.collect(1, &mut out).unwrap_err();
        assert_eq!(e.exit, Exit::Unavailable);
        assert!(e.msg.contains("meminfo"), "{}", e.msg);
        assert!(out.is_empty());
    }

    #[test]
    fn malformed_file_is_unavailable_with_reason() {
        let fx = Fixture::new("malformed", &[("stat", "cpu  1 2 x\n")]);
        let e = SystemCollector::new(&fx.0).unwrap_err();
        assert_eq!(e.exit, Exit::Unavailable);
        assert!(e.msg.contains("stat") && e.msg.contains("`x`"), "{}", e.msg);
    }

    #[test]
    fn hostname_falls_back_to_proc_file() {
        let fx = Fixture::new("host", &[]);
        fs::create_dir_all(fx.0.join("sys/kernel")).unwrap();
        fs::write(fx.0.join("sys/kernel/hostname"), "box\n").unwrap();
        assert_eq!(hostname_or_fallback(Some("os".into()), &fx.0), "os");
        assert_eq!(hostname_or_fallback(None, &fx.0), "box");
        assert_eq!(
            hostname_or_fallback(None, &fx.0.join("nowhere")),
            "localhost"
        );
        assert!(!hostname(Path::new("/proc")).is_empty());
    }

    /// Runs against this machine's `/proc`.
    #[test]
    fn real_proc() {
        let mut c = SystemCollector::new("/proc").unwrap();
        let mut out = Vec::new();
        c.collect(crate::time::now_ns(), &mut out).unwrap();

        let meminfo = fs::read_to_string("/proc/meminfo").unwrap();
        let total_kb: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap();
        let total = out
            .iter()
            .find(|m| m.name == "system.memory.total")
            .unwrap();
        assert_eq!(total.value, Some(Value::U64(total_kb * 1024)));

        // Percentages need the total jiffies to move between the two samples.
        let mut sum = None;
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            out.clear();
            c.collect(crate::time::now_ns(), &mut out).unwrap();
            let pcts: Vec<f64> = out
                .iter()
                .filter(|m| m.name == "system.cpu.percent" && m.tags.get("cpu") == Some("total"))
                .filter_map(|m| m.value.map(Value::as_f64))
                .collect();
            if !pcts.is_empty() {
                assert_eq!(pcts.len(), cpu::MODES.len());
                sum = Some(pcts.iter().sum::<f64>());
                break;
            }
        }
        let sum = sum.expect("cpu=total jiffies never moved in 5 s");
        assert!((sum - 100.0).abs() < 1e-6, "sum {sum}");
    }

    /// The optional sources on this machine's `/proc`: each file there yields its metrics.
    #[test]
    fn real_proc_optional_sources() {
        let mut c = SystemCollector::new("/proc").unwrap();
        let mut out = Vec::new();
        c.collect(crate::time::now_ns(), &mut out).unwrap();
        assert!(out.iter().all(|m| m.validate().is_ok()));
        let has = |name: &str| out.iter().any(|m| m.name == name);
        let sources = [
            ("net/dev", "system.network.io"),
            ("net/sockstat", "system.sockets.tcp.in_use"),
            ("vmstat", "system.vm.page_faults"),
            ("sys/fs/file-nr", "system.files.max"),
            (
                "sys/kernel/random/entropy_avail",
                "system.entropy.available",
            ),
        ];
        for (file, name) in sources {
            if Path::new("/proc").join(file).exists() {
                assert!(has(name), "no {name} though /proc/{file} exists");
            }
        }
        let disks = fs::read_to_string("/proc/diskstats").unwrap_or_default();
        if diskstats::parse(&disks).is_ok_and(|d| !d.is_empty()) {
            assert!(has("system.disk.io") && has("system.disk.pending_operations"));
        }
        // `/` is always mounted and never a pseudo file system.
        let root_size = out
            .iter()
            .find(|m| m.name == "system.filesystem.size" && m.tags.get("mount") == Some("/"));
        assert!(root_size.is_some(), "no system.filesystem.size for /");
        for name in ["used", "available", "free", "inodes.used"] {
            let name = format!("system.filesystem.{name}");
            assert!(
                out.iter()
                    .any(|m| m.name == name && m.tags.get("mount") == Some("/")),
                "no {name} for /"
            );
        }
    }
}
