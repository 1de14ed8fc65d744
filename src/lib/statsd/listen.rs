//! Where tlm-statsd listens: `udp://`, `tcp://` and `unix://` endpoints, and the sockets
//! behind them (one `SO_REUSEPORT` UDP socket per worker, a large receive buffer).

use crate::error::{Error, Result};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Udp(SocketAddr),
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Endpoint {
    /// `udp://HOST:PORT`, `tcp://HOST:PORT`, `unix://PATH`; IPv6 hosts in brackets
    /// (`udp://[::1]:8125`). Without a scheme, UDP.
    pub fn parse(s: &str) -> Result<Endpoint> {
        let (scheme, rest) = s.split_once("://").unwrap_or(("udp", s));
        match scheme {
            "udp" => Ok(Endpoint::Udp(resolve(rest, s)?)),
            "tcp" => Ok(Endpoint::Tcp(resolve(rest, s)?)),
            "unix" if !rest.is_empty() => Ok(Endpoint::Unix(PathBuf::from(rest))),
            "unix" => Err(Error::usage(format!("{s}: unix:// needs a path"))),
            _ => Err(Error::usage(format!(
                "{s}: unknown scheme {scheme:?} (udp://, tcp:// or unix://)"
            ))),
        }
    }

    /// The endpoint as given back in logs and stats, with the port actually bound.
    pub fn label(&self) -> String {
        match self {
            Endpoint::Udp(a) => format!("udp://{a}"),
            Endpoint::Tcp(a) => format!("tcp://{a}"),
            Endpoint::Unix(p) => format!("unix://{}", p.display()),
        }
    }
}

fn resolve(hostport: &str, whole: &str) -> Result<SocketAddr> {
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Error::usage(format!("{whole}: not HOST:PORT")))
}

fn os_error(what: &str, addr: &str) -> Error {
    let e = std::io::Error::last_os_error();
    let exit =
        if e.kind() == std::io::ErrorKind::AddrInUse || e.raw_os_error() == Some(libc::EACCES) {
            crate::error::Exit::Unavailable
        } else {
            crate::error::Exit::Io
        };
    Error::new(exit, format!("{addr}: {what}: {e}"))
}

fn set_int(fd: RawFd, level: i32, opt: i32, v: i32) -> bool {
    // SAFETY: `v` lives for the call and its size is passed.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        ) == 0
    }
}

fn get_int(fd: RawFd, level: i32, opt: i32) -> i32 {
    let mut v: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for writes of their sizes.
    unsafe { libc::getsockopt(fd, level, opt, (&mut v as *mut i32).cast(), &mut len) };
    v
}

/// Asks for a receive buffer of `bytes`: privileged processes may exceed
/// `net.core.rmem_max` (SO_RCVBUFFORCE), others get what it allows. Returns what the kernel
/// granted (it reports twice the usable size; this is the usable size).
pub fn set_rcvbuf(fd: RawFd, bytes: usize) -> usize {
    let want = bytes.min(i32::MAX as usize / 2) as i32;
    if !set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, want) {
        set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, want);
    }
    (get_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF) / 2).max(0) as usize
}

/// A UDP socket bound to `addr` with `SO_REUSEPORT`, so every worker can bind its own and
/// the kernel spreads datagrams over them.
pub fn udp_socket(addr: SocketAddr) -> Result<UdpSocket> {
    let label = format!("udp://{addr}");
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the descriptor is owned by the UdpSocket below.
    let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_error("socket", &label));
    }
    // SAFETY: `fd` is a fresh socket owned by nobody else.
    let sock = unsafe { UdpSocket::from_raw_fd(fd) };
    if !set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1) {
        return Err(os_error("SO_REUSEPORT", &label));
    }
    if addr.is_ipv6() {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1);
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a sockaddr of `len` bytes.
    if unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) } != 0 {
        return Err(os_error("bind", &label));
    }
    Ok(sock)
}

/// `n` UDP sockets on the same address (the port of the first when `addr` asks for port 0).
pub fn udp_sockets(addr: SocketAddr, n: usize) -> Result<Vec<UdpSocket>> {
    let first = udp_socket(addr)?;
    let bound = first
        .local_addr()
        .map_err(|e| Error::new(crate::error::Exit::Io, format!("udp://{addr}: {e}")))?;
    let mut all = vec![first];
    for _ in 1..n.max(1) {
        all.push(udp_socket(bound)?);
    }
    Ok(all)
}

pub fn tcp_listener(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        let exit = if e.kind() == std::io::ErrorKind::AddrInUse {
            crate::error::Exit::Unavailable
        } else {
            crate::error::Exit::Io
        };
        Error::new(exit, format!("tcp://{addr}: bind: {e}"))
    })
}

/// A unix datagram socket at `path`; a stale socket file left by an earlier run is
/// replaced, anything else at that path is an error.
pub fn unix_socket(path: &std::path::Path) -> Result<UnixDatagram> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(Error::usage(format!(
                "unix://{}: exists and is not a socket",
                path.display()
            )));
        }
        let _ = std::fs::remove_file(path);
    }
    UnixDatagram::bind(path).map_err(|e| {
        Error::new(
            crate::error::Exit::Io,
            format!("unix://{}: bind: {e}", path.display()),
        )
    })
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The address in a `sockaddr_storage` filled by the kernel, if it is IPv4 or IPv6.
pub fn peer_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says this is a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this is a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::from((ip, u16::from_be(sin6.sin6_port))))
        }
        _ => None,
    }
}

/// Datagrams the kernel dropped on these sockets because their receive buffers were full,
/// from the `drops` column of /proc/net/udp and udp6 (matched by socket inode).
pub fn kernel_drops(fds: &[RawFd]) -> u64 {
    let inodes: Vec<u64> = fds.iter().filter_map(|&fd| inode(fd)).collect();
    if inodes.is_empty() {
        return 0;
    }
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| drops_for(&text, &inodes))
        .sum()
}

fn inode(fd: RawFd) -> Option<u64> {
    // SAFETY: `st` is valid for writes; fstat only reads `fd`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st.st_ino)
}

/// Sums the last column (`drops`) of the rows whose inode (column 10) is listed.
fn drops_for(table: &str, inodes: &[u64]) -> u64 {
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let cols: Vec<&str> = row.split_whitespace().collect();
            let inode: u64 = cols.get(9)?.parse().ok()?;
            inodes
                .contains(&inode)
                .then(|| cols.last()?.parse::<u64>().ok())
                .flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_and_without_scheme() {
        assert_eq!(
            Endpoint::parse("udp://127.0.0.1:8125").unwrap(),
            Endpoint::Udp("127.0.0.1:8125".parse().unwrap())
        );
        assert_eq!(
            Endpoint::parse("127.0.0.1:9").unwrap(),
            Endpoint::Udp("127.0.0.1:9".parse().unwrap())
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:8125").unwrap(),
            Endpoint::Tcp("[::1]:8125".parse().unwrap())
        );
        assert_eq!(
            Endpoint::parse("unix:///run/x.sock").unwrap(),
            Endpoint::Unix("/run/x.sock".into())
        );
        for bad in [
            "http://x:1",
            "udp://nohost",
            "unix://",
            "udp://1.2.3.4:99999",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reuseport_sockets_share_one_port() {
        use std::os::fd::AsRawFd;
        let socks = udp_sockets("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let ports: Vec<u16> = socks
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        assert!(ports.iter().all(|&p| p == ports[0] && p != 0));
        let granted = set_rcvbuf(socks[0].as_raw_fd(), 1 << 20);
        assert!(granted > 0);
    }

    #[test]
    fn drops_are_read_by_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
            1: 0100007F:1FBD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
            2: 0100007F:1FBE 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0000000000000000 5\n";
        assert_eq!(drops_for(table, &[4242]), 17);
        assert_eq!(drops_for(table, &[4242, 99]), 22);
        assert_eq!(drops_for(table, &[1]), 0);
    }

    #[test]
    fn a_stale_unix_socket_is_replaced_but_a_file_is_not() {
        let dir = std::env::temp_dir().join(format!("tlm-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        drop(unix_socket(&path).unwrap());
        assert!(unix_socket(&path).is_ok());
        let file = dir.join("plain");
        std::fs::write(&file, b"x").unwrap();
        assert!(unix_socket(&file).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
