//! A rich, hand-written IPVS snapshot and connection table for tests, examples and the lab.
//!
//! It covers every shape the exporter must handle: TCP, UDP and SCTP services over IPv4 and
//! IPv6, IPv4 and IPv6 fwmark services with the same mark, persistent services with a netmask
//! and a persistence engine, every forwarding method, a GUE tunnel destination, a drained
//! (weight 0) destination, a service without destinations, both sync daemons, global totals,
//! counters beyond 2^32 and connection-table groups including templates. Addresses are from the
//! documentation ranges.

use herald_shared::conntable::{ConnGroup, ConnProtocol, ConnTableSummary};
use herald_shared::model::*;
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

fn stats(seed: u64) -> Stats {
    Stats {
        counters: Counters {
            conns: 1_000 * seed,
            in_packets: 10_000 * seed,
            out_packets: 9_000 * seed,
            // Beyond 32 bits on purpose.
            in_bytes: 5_000_000_000 + seed,
            out_bytes: 7_000_000_000 + seed,
        },
        rates: Rates {
            conns_per_second: seed,
            in_packets_per_second: 10 * seed,
            out_packets_per_second: 9 * seed,
            in_bytes_per_second: 1_000 * seed,
            out_bytes_per_second: 2_000 * seed,
        },
        is_64bit: true,
    }
}

/// A destination with the given address, port, weight and connection counts.
pub fn dest(addr: &str, port: u16, weight: i32, active: u32, inactive: u32) -> Destination {
    Destination {
        weight,
        active_conns: active,
        inactive_conns: inactive,
        stats: stats(u64::from(active) + 1),
        ..Destination::new(ip(addr), port)
    }
}

/// A service with the given key, scheduler and destinations.
pub fn service(key: ServiceKey, scheduler: &str, destinations: Vec<Destination>) -> Service {
    Service {
        key,
        scheduler: scheduler.to_string(),
        flags: ServiceFlags::from_raw(ServiceFlags::HASHED),
        persistence_timeout: 0,
        netmask: 0xffff_ffff,
        pe_name: None,
        stats: stats(destinations.len() as u64 + 3),
        destinations,
    }
}

/// An address service key.
pub fn addr_key(protocol: Protocol, addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol,
        address: ip(addr),
        port,
    }
}

/// The rich snapshot described in the module documentation.
pub fn rich_snapshot() -> Snapshot {
    let mut web = service(
        addr_key(Protocol::Tcp, "192.0.2.10", 80),
        "wlc",
        vec![
            dest("198.51.100.1", 80, 100, 40, 10),
            dest("198.51.100.2", 80, 100, 35, 12),
            dest("198.51.100.3", 80, 0, 2, 1),
        ],
    );
    web.destinations[0].upper_threshold = 5000;
    web.destinations[0].lower_threshold = 4000;

    let mut https6 = service(
        addr_key(Protocol::Tcp, "2001:db8::10", 443),
        "mh",
        vec![
            dest("2001:db8:1::1", 443, 1, 10, 0),
            dest("2001:db8:1::2", 443, 1, 30, 0),
        ],
    );
    https6.flags = ServiceFlags::from_raw(ServiceFlags::HASHED | ServiceFlags::SCHED1);

    let mut dns = service(
        addr_key(Protocol::Udp, "192.0.2.53", 53),
        "rr",
        vec![
            dest("198.51.100.53", 53, 1, 0, 100),
            dest("198.51.100.54", 53, 1, 0, 90),
        ],
    );
    dns.flags = ServiceFlags::from_raw(ServiceFlags::HASHED | ServiceFlags::ONEPACKET);
    for d in &mut dns.destinations {
        d.forward = ForwardMethod::Masq;
    }

    let mut sctp = service(
        addr_key(Protocol::Sctp, "192.0.2.20", 3868),
        "sh",
        vec![dest("198.51.100.20", 3868, 1, 4, 0)],
    );
    sctp.destinations[0].forward = ForwardMethod::Tunnel;
    sctp.destinations[0].tunnel = Some(Tunnel {
        kind: TunnelType::Gue,
        port: 6080,
        flags: 1,
    });

    let mut sip = service(
        addr_key(Protocol::Udp, "192.0.2.60", 5060),
        "wrr",
        vec![
            dest("198.51.100.60", 5060, 3, 0, 30),
            dest("198.51.100.61", 5060, 1, 0, 10),
        ],
    );
    sip.flags = ServiceFlags::from_raw(ServiceFlags::HASHED | ServiceFlags::PERSISTENT);
    sip.persistence_timeout = 360;
    sip.netmask = 0xffff_ff00;
    sip.pe_name = Some("sip".to_string());
    sip.destinations[0].persistent_conns = 7;

    let mut fwm4 = service(
        ServiceKey::Fwmark {
            family: AddressFamily::Inet,
            mark: 7,
        },
        "fo",
        vec![
            dest("198.51.100.70", 0, 100, 50, 0),
            dest("198.51.100.71", 0, 50, 0, 0),
        ],
    );
    fwm4.destinations[1].forward = ForwardMethod::Local;
    let mut fwm6 = service(
        ServiceKey::Fwmark {
            family: AddressFamily::Inet6,
            mark: 7,
        },
        "ovf",
        vec![dest("2001:db8:2::1", 0, 10, 3, 0)],
    );
    fwm6.flags = ServiceFlags::from_raw(ServiceFlags::HASHED | ServiceFlags::PERSISTENT);
    fwm6.persistence_timeout = 60;
    fwm6.netmask = 64;
    fwm6.destinations[0].forward = ForwardMethod::Bypass;

    let empty = service(addr_key(Protocol::Tcp, "203.0.113.5", 8080), "rr", vec![]);

    Snapshot {
        source: SnapshotSource::Netlink,
        info: Info {
            version: 0x010201,
            conn_table_size: 4096,
        },
        services: vec![web, https6, dns, sctp, sip, fwm4, fwm6, empty],
        timeouts: Some(Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }),
        daemons: vec![
            SyncDaemon {
                role: SyncRole::Master,
                interface: "eth1".to_string(),
                sync_id: 51,
                max_len: 1472,
                mcast_group: Some(ip("224.0.0.81")),
                mcast_port: 8848,
                mcast_ttl: 1,
            },
            SyncDaemon {
                role: SyncRole::Backup,
                interface: "eth1".to_string(),
                sync_id: 51,
                max_len: 0,
                mcast_group: None,
                mcast_port: 0,
                mcast_ttl: 0,
            },
        ],
        global: Some(GlobalStats {
            counters: Counters {
                conns: 123_456,
                in_packets: 9_876_543_210,
                out_packets: 8_765_432_109,
                in_bytes: 1 << 40,
                out_bytes: (1 << 41) + 5,
            },
            rates: Rates {
                conns_per_second: 12,
                in_packets_per_second: 3400,
                out_packets_per_second: 3000,
                in_bytes_per_second: 1_250_000,
                out_bytes_per_second: 9_000_000,
            },
        }),
    }
}

fn group(
    protocol: ConnProtocol,
    vaddr: &str,
    vport: u16,
    daddr: &str,
    dport: u16,
    state: &str,
) -> ConnGroup {
    ConnGroup {
        protocol,
        virtual_address: ip(vaddr),
        virtual_port: vport,
        dest_address: ip(daddr),
        dest_port: dport,
        state: state.to_string(),
    }
}

/// A connection-table summary matching [`rich_snapshot`].
pub fn rich_conn_table() -> ConnTableSummary {
    let mut s = ConnTableSummary::default();
    let entries = [
        (
            group(
                ConnProtocol::Tcp,
                "192.0.2.10",
                80,
                "198.51.100.1",
                80,
                "ESTABLISHED",
            ),
            40,
        ),
        (
            group(
                ConnProtocol::Tcp,
                "192.0.2.10",
                80,
                "198.51.100.1",
                80,
                "TIME_WAIT",
            ),
            9,
        ),
        (
            group(
                ConnProtocol::Tcp,
                "192.0.2.10",
                80,
                "198.51.100.1",
                80,
                "SYN_RECV",
            ),
            1,
        ),
        (
            group(
                ConnProtocol::Tcp,
                "192.0.2.10",
                80,
                "198.51.100.2",
                80,
                "ESTABLISHED",
            ),
            35,
        ),
        (
            group(
                ConnProtocol::Tcp,
                "192.0.2.10",
                80,
                "198.51.100.2",
                80,
                "FIN_WAIT",
            ),
            12,
        ),
        (
            group(
                ConnProtocol::Tcp,
                "2001:db8::10",
                443,
                "2001:db8:1::1",
                443,
                "ESTABLISHED",
            ),
            10,
        ),
        (
            group(
                ConnProtocol::Udp,
                "192.0.2.53",
                53,
                "198.51.100.53",
                53,
                "UDP",
            ),
            100,
        ),
        (
            group(
                ConnProtocol::Sctp,
                "192.0.2.20",
                3868,
                "198.51.100.20",
                3868,
                "ESTABLISHED",
            ),
            4,
        ),
        (
            group(
                ConnProtocol::Udp,
                "192.0.2.60",
                5060,
                "198.51.100.60",
                5060,
                "UDP",
            ),
            30,
        ),
        (
            group(
                ConnProtocol::Template,
                "192.0.2.60",
                5060,
                "198.51.100.60",
                5060,
                "NONE",
            ),
            7,
        ),
        // A connection to a fwmark service: the virtual address is the packet's destination.
        (
            group(
                ConnProtocol::Tcp,
                "192.0.2.70",
                25,
                "198.51.100.70",
                25,
                "ESTABLISHED",
            ),
            50,
        ),
    ];
    for (g, n) in entries {
        s.entries += n;
        s.groups.insert(g, n);
    }
    s
}
