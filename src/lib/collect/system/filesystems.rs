//! `self/mounts` and `statvfs(3)`: space and inodes per mounted file system.
//!
//! Gauges, each tagged `mount` (the mount point), `device` (the mounts file's source field,
//! `/dev/sda1`, `tmpfs`, `server:/export`) and `fstype`:
//!
//! | name | unit | from `statvfs` |
//! |---|---|---|
//! | `system.filesystem.size` | `By` | `f_blocks × f_frsize` |
//! | `system.filesystem.free` | `By` | `f_bfree × f_frsize` (includes blocks reserved for root) |
//! | `system.filesystem.available` | `By` | `f_bavail × f_frsize` (free to unprivileged users) |
//! | `system.filesystem.used` | `By` | size − free |
//! | `system.filesystem.inodes.total` | `{inode}` | `f_files` |
//! | `system.filesystem.inodes.free` | `{inode}` | `f_ffree` |
//! | `system.filesystem.inodes.used` | `{inode}` | total − free |
//!
//! These are the numbers of `df -P -B1` (1-blocks, Used, Available) and `df -i`.
//!
//! Which file systems, following `df` without `-a`:
//! - pseudo file systems are skipped by type (`PSEUDO`: proc, sysfs, cgroup, cgroup2, devpts,
//!   mqueue, debugfs, tracefs, ...); `tmpfs` and `devtmpfs` are kept, as `df` shows them;
//! - a file system reporting 0 blocks is skipped (`df` hides those too);
//! - a file system mounted more than once (bind mounts, the same tmpfs listed twice) is
//!   reported once, by `st_dev` of the mount point: a device name with a `/` wins over one
//!   without, then the shorter mount point, then the first listed — `df`'s preference, less
//!   its check of the mount's root within the device;
//! - with a mount filter (`SystemCollector::set_mounts`), only mount points it matches are
//!   looked at, before `statvfs` is called, so an excluded hung NFS mount is never touched.
//!
//! `statvfs` on a network file system (NFS, CIFS, sshfs, …) blocks while its server is away,
//! so those are measured on a helper thread and given up after `REMOTE_WAIT` with a warning;
//! that mount is skipped until its call returns, so hung calls never pile up.
//!
//! Inode gauges are left out for file systems reporting 0 inodes (btrfs, vfat), where `df -i`
//! shows `-`. A mount point that cannot be examined (gone, permission denied) is skipped with
//! a debug log.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use globset::GlobSet;

use super::Stamp;
use crate::metric::{Metric, Value};

/// File system types that hold no data of their own. `df` hides them unless `-a`.
pub const PSEUDO: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devfs",
    "devpts",
    "efivarfs",
    "fuse.portal",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "sysfs",
    "tracefs",
];

/// One line of the mounts file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount: String,
    pub fstype: String,
}

/// What `statvfs` says of one mount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub size: u64,
    pub free: u64,
    pub available: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filesystem {
    pub mount: Mount,
    /// `st_dev` of the mount point, which tells bind mounts apart from distinct file systems.
    pub dev: u64,
    pub usage: Usage,
}

/// The mounts of `mounts` (the `/proc/self/mounts` format, `fstab(5)` fields with octal
/// escapes), less the pseudo file systems, in file order.
pub fn parse(text: &str) -> Result<Vec<Mount>, String> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (device, mount, fstype) = match (fields.next(), fields.next(), fields.next()) {
            (Some(d), Some(m), Some(t)) => (d, m, t),
            (None, _, _) => continue,
            _ => {
                return Err(format!(
                    "`{}`: expected device, mount point and type",
                    line.trim()
                ))
            }
        };
        if is_pseudo(fstype) {
            continue;
        }
        mounts.push(Mount {
            device: unescape(device),
            mount: unescape(mount),
            fstype: unescape(fstype),
        });
    }
    Ok(mounts)
}

pub fn is_pseudo(fstype: &str) -> bool {
    PSEUDO.contains(&fstype)
}

/// Undoes the kernel's `\ooo` escapes of space, tab, newline and backslash.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    if !b.contains(&b'\\') {
        return field.to_owned();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| {
            b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Calls `stat` and `statvfs` on each mount that `only` matches (all when `None`), then keeps
/// the file systems `df` would show. Mount points that fail are skipped with a debug log.
pub fn measure(mounts: Vec<Mount>, only: Option<&GlobSet>) -> Vec<Filesystem> {
    let mut measured = Vec::with_capacity(mounts.len());
    for mount in mounts {
        if only.is_some_and(|set| !set.is_match(&mount.mount)) {
            continue;
        }
        let probe = if REMOTE.contains(&mount.fstype.as_str()) {
            probe_remote(&mount.mount)
        } else {
            probe(Path::new(&mount.mount))
        };
        match probe {
            Ok((dev, usage)) => measured.push(Filesystem { mount, dev, usage }),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                crate::log!(Warn, "filesystem_skipped", mount = mount.mount, error = e)
            }
            Err(e) => crate::log!(Debug, "filesystem_skipped", mount = mount.mount, error = e),
        }
    }
    select(measured)
}

/// File system types whose calls wait on a server.
const REMOTE: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "fuse.sshfs",
    "9p",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
    "afs",
    "lustre",
    "davfs",
    "fuse.s3fs",
];

/// How long a network file system may take to answer.
const REMOTE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Mount points whose call is still out.
static OUTSTANDING: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn probe(path: &Path) -> io::Result<(u64, Usage)> {
    let dev = std::fs::metadata(path)?.dev();
    Ok((dev, statvfs(path)?))
}

/// `probe` on a helper thread, given up after `REMOTE_WAIT`.
fn probe_remote(mount: &str) -> io::Result<(u64, Usage)> {
    let hung = || io::Error::new(io::ErrorKind::TimedOut, "no answer within 1 s");
    {
        let mut out = OUTSTANDING.lock().map_err(|_| hung())?;
        if out.iter().any(|m| m == mount) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "an earlier call has not returned",
            ));
        }
        out.push(mount.to_owned());
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let owned = mount.to_owned();
    let spawned = std::thread::Builder::new()
        .name("statvfs".into())
        .spawn(move || {
            let result = probe(Path::new(&owned));
            if let Ok(mut out) = OUTSTANDING.lock() {
                out.retain(|m| *m != owned);
            }
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        if let Ok(mut out) = OUTSTANDING.lock() {
            out.retain(|m| m != mount);
        }
        return Err(e);
    }
    rx.recv_timeout(REMOTE_WAIT).map_err(|_| hung())?
}

/// Drops file systems of 0 blocks and all but one mount of each `dev` (see the module doc),
/// keeping file order otherwise.
pub fn select(measured: Vec<Filesystem>) -> Vec<Filesystem> {
    let mut kept: Vec<Filesystem> = Vec::with_capacity(measured.len());
    for fs in measured {
        if fs.usage.size == 0 {
            continue;
        }
        match kept.iter_mut().find(|k| k.dev == fs.dev) {
            Some(k) if preferred(&fs.mount, &k.mount) => *k = fs,
            Some(_) => {}
            None => kept.push(fs),
        }
    }
    kept
}

/// Whether `new` should replace `seen`, a mount of the same device.
fn preferred(new: &Mount, seen: &Mount) -> bool {
    let real = |m: &Mount| m.device.contains('/');
    match (real(new), real(seen)) {
        (true, false) => true,
        (false, true) => false,
        _ => new.mount.len() < seen.mount.len(),
    }
}

/// `statvfs(3)` of `path`, in bytes and inodes.
#[allow(clippy::unnecessary_cast)] // the field types differ between targets
pub fn statvfs(path: &Path) -> io::Result<Usage> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is NUL-terminated and `st` is valid for writes of one `statvfs`.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    let frsize = if st.f_frsize > 0 {
        st.f_frsize as u64
    } else {
        st.f_bsize as u64
    };
    let bytes = |blocks: u64| blocks.saturating_mul(frsize);
    Ok(Usage {
        size: bytes(st.f_blocks as u64),
        free: bytes(st.f_bfree as u64),
        available: bytes(st.f_bavail as u64),
        inodes: st.f_files as u64,
        inodes_free: st.f_ffree as u64,
    })
}

pub fn emit(filesystems: &[Filesystem], at: Stamp, out: &mut Vec<Metric>) {
    for fs in filesystems {
        let u = fs.usage;
        let mut gauges = vec![
            ("system.filesystem.size", "By", u.size),
            ("system.filesystem.free", "By", u.free),
            ("system.filesystem.available", "By", u.available),
            (
                "system.filesystem.used",
                "By",
                u.size.saturating_sub(u.free),
            ),
        ];
        if u.inodes > 0 {
            gauges.extend([
                ("system.filesystem.inodes.total", "{inode}", u.inodes),
                ("system.filesystem.inodes.free", "{inode}", u.inodes_free),
                (
                    "system.filesystem.inodes.used",
                    "{inode}",
                    u.inodes.saturating_sub(u.inodes_free),
                ),
            ]);
        }
        for (name, unit, v) in gauges {
            let m = at.gauge(name, Value::U64(v)).with_unit(unit);
            out.push(
                m.with_tag("mount", &fs.mount.mount)
                    .with_tag("device", &fs.mount.device)
                    .with_tag("fstype", &fs.mount.fstype),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Kind;

    /// This machine's `/proc/self/mounts` (cgroup lines trimmed), plus a bind mount, a mount
    /// point with a space and an NFS mount.
    const MOUNTS: &str = "\
proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=12331664k,nr_inodes=3082916,mode=755 0 0
tmpfs /dev/shm tmpfs rw,relatime,size=24682416k 0 0
devpts /dev/pts devpts rw,relatime,mode=600,ptmxmode=000 0 0
/dev/vda / ext4 rw,relatime,discard,resv_strict,resuid=65534,resgid=65534 0 0
devpts /dev/pts devpts rw,relatime,mode=600,ptmxmode=000 0 0
tmpfs /dev/shm tmpfs rw,relatime,size=24682416k 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
/dev/vda /srv/data ext4 rw,relatime 0 0
/dev/vdb1 /mnt/My\\040Disk xfs rw,relatime 0 0
nas:/export /mnt/nas nfs4 rw,relatime,vers=4.2 0 0
";

    fn mount(device: &str, mount: &str, fstype: &str) -> Mount {
        Mount {
            device: device.into(),
            mount: mount.into(),
            fstype: fstype.into(),
        }
    }

    fn fs(m: Mount, dev: u64, size: u64) -> Filesystem {
        Filesystem {
            mount: m,
            dev,
            usage: Usage {
                size,
                free: size / 4,
                available: size / 8,
                inodes: 100,
                inodes_free: 60,
            },
        }
    }

    #[test]
    fn parses_mounts_skipping_pseudo_file_systems() {
        let got = parse(MOUNTS).unwrap();
        let want = [
            mount("devtmpfs", "/dev", "devtmpfs"),
            mount("tmpfs", "/dev/shm", "tmpfs"),
            mount("/dev/vda", "/", "ext4"),
            mount("tmpfs", "/dev/shm", "tmpfs"),
            mount("tmpfs", "/sys/fs/cgroup", "tmpfs"),
            mount("/dev/vda", "/srv/data", "ext4"),
            mount("/dev/vdb1", "/mnt/My Disk", "xfs"),
            mount("nas:/export", "/mnt/nas", "nfs4"),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn unescapes_octal_only() {
        assert_eq!(unescape(r"/a\040b\011c\012d\134e"), "/a b\tc\nd\\e");
        assert_eq!(unescape(r"/a\9b\04"), r"/a\9b\04");
        assert_eq!(unescape(r"\400"), r"\400");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn malformed_mounts_give_reasons() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("/dev/sda1 /\n")
            .unwrap_err()
            .contains("expected device"));
    }

    #[test]
    fn select_drops_empty_and_duplicate_devices() {
        let got = select(vec![
            fs(mount("devtmpfs", "/dev", "devtmpfs"), 6, 100),
            fs(mount("tmpfs", "/dev/shm", "tmpfs"), 27, 200),
            fs(mount("/dev/vda", "/srv/data", "ext4"), 65024, 300),
            fs(mount("tmpfs", "/dev/shm", "tmpfs"), 27, 200),
            fs(mount("/dev/vda", "/", "ext4"), 65024, 300),
            fs(mount("/dev/vda", "/home", "ext4"), 65024, 300),
            fs(mount("overlay", "/x", "overlay"), 65024, 300),
            fs(mount("none", "/empty", "fuse.x"), 99, 0),
        ]);
        let kept: Vec<_> = got.iter().map(|f| f.mount.mount.as_str()).collect();
        assert_eq!(kept, ["/dev", "/dev/shm", "/"]);
        // A real device name wins over a shorter mount point.
        let got = select(vec![
            fs(mount("overlay", "/", "overlay"), 1, 10),
            fs(mount("/dev/sdb", "/data", "ext4"), 1, 10),
        ]);
        assert_eq!(got[0].mount.device, "/dev/sdb");
    }

    #[test]
    fn emits_df_numbers_with_tags() {
        let mut out = Vec::new();
        let f = fs(mount("/dev/vdb1", "/mnt/My Disk", "xfs"), 1, 4096 * 1000);
        let mut no_inodes = fs(mount("/dev/sdc1", "/boot/efi", "vfat"), 2, 512);
        no_inodes.usage.inodes = 0;
        emit(&[f, no_inodes], Stamp { ts: 5, boot_ns: 0 }, &mut out);
        assert_eq!(out.len(), 7 + 4);
        let v = |name: &str| {
            out.iter()
                .find(|m| m.name == name && m.tags.get("mount") == Some("/mnt/My Disk"))
                .and_then(|m| m.value)
        };
        assert_eq!(v("system.filesystem.size"), Some(Value::U64(4_096_000)));
        assert_eq!(v("system.filesystem.free"), Some(Value::U64(1_024_000)));
        assert_eq!(v("system.filesystem.available"), Some(Value::U64(512_000)));
        assert_eq!(v("system.filesystem.used"), Some(Value::U64(3_072_000)));
        assert_eq!(v("system.filesystem.inodes.total"), Some(Value::U64(100)));
        assert_eq!(v("system.filesystem.inodes.free"), Some(Value::U64(60)));
        assert_eq!(v("system.filesystem.inodes.used"), Some(Value::U64(40)));
        let m = &out[0];
        assert_eq!(m.tags.get("device"), Some("/dev/vdb1"));
        assert_eq!(m.tags.get("fstype"), Some("xfs"));
        assert_eq!((m.kind, m.unit.as_str()), (Kind::Gauge, "By"));
        assert!(!out.iter().any(|m| m.tags.get("mount") == Some("/boot/efi")
            && m.name.starts_with("system.filesystem.inodes")));
    }

    #[test]
    fn mount_filter_is_applied_before_statvfs() {
        let mut b = globset::GlobSetBuilder::new();
        b.add(globset::Glob::new("/").unwrap());
        let only = b.build().unwrap();
        let mounts = vec![
            mount("/dev/x", "/", "ext4"),
            mount("/dev/y", "/nonexistent/tlm-test", "ext4"),
        ];
        let got = measure(mounts, Some(&only));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].mount.mount, "/");
    }

    /// `statvfs` of this machine's `/` against `df -P -B1 /` (skipped where `df` is missing).
    /// Used and Available move as files are written meanwhile, so they get some slack.
    #[test]
    fn statvfs_of_root_agrees_with_df() {
        let u = statvfs(Path::new("/")).unwrap();
        assert!(u.size > 0 && u.free <= u.size && u.available <= u.free);
        let Ok(df) = std::process::Command::new("df")
            .args(["-P", "-B1", "/"])
            .output()
        else {
            return;
        };
        let text = String::from_utf8_lossy(&df.stdout);
        let Some(row) = text.lines().nth(1) else {
            return;
        };
        let cols: Vec<u64> = row
            .split_ascii_whitespace()
            .skip(1)
            .take(3)
            .map(|c| c.parse().unwrap())
            .collect();
        let slack = 256 << 20;
        assert_eq!(cols[0], u.size, "{row}");
        assert!(cols[1].abs_diff(u.size - u.free) < slack, "{row} vs {u:?}");
        assert!(cols[2].abs_diff(u.available) < slack, "{row} vs {u:?}");
    }
}
