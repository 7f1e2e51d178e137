//! The crate's only `unsafe` code: socket options that neither socket2 nor nix expose.
//!
//! - `TCP_MD5SIG` (RFC 2385 TCP MD5 signatures): Linux takes a `struct tcp_md5sig` holding the
//!   peer address and the key; libc has the constant but not the struct, so it is declared
//!   here with the kernel's layout (include/uapi/linux/tcp.h).
//! - `IP_MINTTL` / `IPV6_MINHOPCOUNT` (RFC 5082 GTSM): an `int`.
//! - `IP_RECVTTL` (the TTL of each received datagram, for BFD's RFC 5881 §5 check): an `int`.
//!
//! Every `unsafe` block is one `setsockopt(2)` call on a file descriptor borrowed from a live
//! socket, with a pointer to a fully initialised value on the stack and its exact size.
#![allow(unsafe_code)]

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

/// Linux `TCP_MD5SIG_MAXKEYLEN`.
pub const MD5_MAX_KEY_LEN: usize = 80;

/// `struct __kernel_sockaddr_storage`: 128 bytes, pointer-aligned.
#[repr(C, align(8))]
struct KernelSockaddrStorage([u8; 128]);

/// `struct tcp_md5sig` from include/uapi/linux/tcp.h.
#[repr(C)]
struct TcpMd5Sig {
    tcpm_addr: KernelSockaddrStorage,
    tcpm_flags: u8,
    tcpm_prefixlen: u8,
    tcpm_keylen: u16,
    tcpm_ifindex: libc::c_int,
    tcpm_key: [u8; MD5_MAX_KEY_LEN],
}

/// Encode `addr` as a `sockaddr_in` / `sockaddr_in6` (port 0) into kernel storage, in safe code.
fn sockaddr_bytes(addr: IpAddr, scope_id: u32) -> KernelSockaddrStorage {
    let mut s = [0u8; 128];
    match addr {
        IpAddr::V4(a) => {
            s[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            // sin_port = 0 (bytes 2..4), sin_addr at 4..8 (network order).
            s[4..8].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            s[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            // sin6_port 2..4, sin6_flowinfo 4..8, sin6_addr 8..24, sin6_scope_id 24..28.
            s[8..24].copy_from_slice(&a.octets());
            s[24..28].copy_from_slice(&scope_id.to_ne_bytes());
        }
    }
    KernelSockaddrStorage(s)
}

fn setsockopt<T>(
    fd: &impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let fd = fd.as_fd().as_raw_fd();
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `fd` is borrowed from a live socket for the duration of the call; `value` points to
    // an initialised `T` of exactly `len` bytes that outlives the call; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Install (or, with an empty key, remove) the TCP MD5 key for `peer` on `sock`.
pub fn set_tcp_md5(sock: &impl AsFd, peer: IpAddr, scope_id: u32, key: &[u8]) -> io::Result<()> {
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "TCP MD5 key of {} bytes exceeds {MD5_MAX_KEY_LEN}",
                key.len()
            ),
        ));
    }
    let mut k = [0u8; MD5_MAX_KEY_LEN];
    k[..key.len()].copy_from_slice(key);
    let sig = TcpMd5Sig {
        tcpm_addr: sockaddr_bytes(peer, scope_id),
        tcpm_flags: 0,
        tcpm_prefixlen: 0,
        tcpm_keylen: key.len() as u16,
        tcpm_ifindex: 0,
        tcpm_key: k,
    };
    setsockopt(sock, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
}

/// GTSM receive check: drop packets whose TTL / hop limit is below `min`.
pub fn set_min_ttl(sock: &impl AsFd, ipv6: bool, min: u8) -> io::Result<()> {
    let v: libc::c_int = libc::c_int::from(min);
    if ipv6 {
        setsockopt(sock, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &v)
    } else {
        setsockopt(sock, libc::IPPROTO_IP, libc::IP_MINTTL, &v)
    }
}

/// Ask for each received datagram's TTL as an `IP_TTL` control message (BFD, RFC 5881 §5).
pub fn set_recv_ttl(sock: &impl AsFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    setsockopt(sock, libc::IPPROTO_IP, libc::IP_RECVTTL, &on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_kernel() {
        // sizeof(struct tcp_md5sig) on Linux is 216.
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn options_apply_to_a_real_socket() {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        set_tcp_md5(&s, "127.0.0.1".parse().unwrap(), 0, b"secret").expect("md5");
        set_min_ttl(&s, false, 254).expect("minttl");
        assert!(set_tcp_md5(&s, "127.0.0.1".parse().unwrap(), 0, &[0; 81]).is_err());
        let s6 = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)
            .expect("socket6");
        set_tcp_md5(&s6, "::1".parse().unwrap(), 0, b"secret").expect("md5 v6");
        set_min_ttl(&s6, true, 255).expect("minhop");
    }
}
