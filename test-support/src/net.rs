//! Loopback ports for servers a test starts.

use std::net::{Ipv4Addr, TcpListener};

/// A loopback TCP port nobody listens on right now (bound once, then released).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
