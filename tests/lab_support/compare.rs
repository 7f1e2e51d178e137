//! Field-by-field comparison of one scenario's ipvsadm views against the dump taken at the same
//! moment. Every difference becomes one line naming the service, destination and field.

use super::dump::Dump;
use super::ipvsadm::{
    self, ConnKey, DestAddr, Header, ListDest, NumbersDest, ServiceInfo, ViewService,
};
use herald_shared::model::{
    AddressFamily, Counters, Destination, Rates, Service, ServiceKey, SyncRole, TunnelType,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

/// Everything one scenario's directory holds, parsed.
#[derive(Debug)]
pub struct Views {
    pub header: Header,
    pub list: Vec<ViewService<ListDest>>,
    pub stats: Vec<ViewService<NumbersDest>>,
    pub rate: Vec<ViewService<NumbersDest>>,
    pub thresholds: Vec<ViewService<ipvsadm::ThresholdDest>>,
    pub pconn: Vec<ViewService<ipvsadm::PersistDest>>,
    pub tun: Vec<ViewService<ipvsadm::TunDest>>,
    pub timeouts: herald_shared::model::Timeouts,
    pub daemons: Vec<ipvsadm::Daemon>,
    pub conns: BTreeMap<ConnKey, u64>,
    pub global: ipvsadm::GlobalStats,
}

fn read(dir: &Path, name: &str) -> Result<String, String> {
    std::fs::read_to_string(dir.join(name))
        .map_err(|e| format!("{}: {e}", dir.join(name).display()))
}

fn ctx<T>(name: &str, r: Result<T, ipvsadm::ParseError>) -> Result<T, String> {
    r.map_err(|e| format!("{name}: {e}"))
}

/// Parse every ipvsadm view a scenario collected.
pub fn load_views(dir: &Path) -> Result<Views, String> {
    let (header, list) = ctx("list.txt", ipvsadm::parse_list(&read(dir, "list.txt")?))?;
    let (_, stats) = ctx("stats.txt", ipvsadm::parse_stats(&read(dir, "stats.txt")?))?;
    let (_, rate) = ctx("rate.txt", ipvsadm::parse_rate(&read(dir, "rate.txt")?))?;
    let (_, thresholds) = ctx(
        "thresholds.txt",
        ipvsadm::parse_thresholds(&read(dir, "thresholds.txt")?),
    )?;
    let (_, pconn) = ctx("pconn.txt", ipvsadm::parse_pconn(&read(dir, "pconn.txt")?))?;
    let (_, tun) = ctx("tun.txt", ipvsadm::parse_tun(&read(dir, "tun.txt")?))?;
    Ok(Views {
        header,
        list,
        stats,
        rate,
        thresholds,
        pconn,
        tun,
        timeouts: ctx(
            "timeout.txt",
            ipvsadm::parse_timeout(&read(dir, "timeout.txt")?),
        )?,
        daemons: ctx(
            "daemon.txt",
            ipvsadm::parse_daemons(&read(dir, "daemon.txt")?),
        )?,
        conns: ctx("conns.txt", ipvsadm::parse_conns(&read(dir, "conns.txt")?))?,
        global: ctx(
            "global.txt",
            ipvsadm::parse_global(&read(dir, "global.txt")?),
        )?,
    })
}

/// Collected differences and how many fields were compared.
#[derive(Debug, Default)]
pub struct Outcome {
    pub mismatches: Vec<String>,
    pub fields_checked: usize,
}

impl Outcome {
    pub fn eq<T: PartialEq + Debug>(&mut self, what: impl AsRef<str>, ipvsadm: T, dump: T) {
        self.fields_checked += 1;
        if ipvsadm != dump {
            self.mismatches.push(format!(
                "{}: ipvsadm {ipvsadm:?} != dump {dump:?}",
                what.as_ref()
            ));
        }
    }

    pub fn fail(&mut self, msg: String) {
        self.fields_checked += 1;
        self.mismatches.push(msg);
    }
}

fn counters_of(n: [u64; 5]) -> Counters {
    Counters {
        conns: n[0],
        in_packets: n[1],
        out_packets: n[2],
        in_bytes: n[3],
        out_bytes: n[4],
    }
}

fn rates_of(n: [u64; 5]) -> Rates {
    Rates {
        conns_per_second: n[0],
        in_packets_per_second: n[1],
        out_packets_per_second: n[2],
        in_bytes_per_second: n[3],
        out_bytes_per_second: n[4],
    }
}

fn dest_in<'a, D: DestAddr>(
    m: &BTreeMap<ServiceKey, &'a ViewService<D>>,
    key: &ServiceKey,
    addr: SocketAddr,
) -> Option<&'a D> {
    m.get(key)
        .and_then(|s| s.dests.iter().find(|d| d.addr() == addr))
}

fn by_key<D>(v: &[ViewService<D>]) -> BTreeMap<ServiceKey, &ViewService<D>> {
    v.iter().map(|s| (s.key, s)).collect()
}

/// The netmask the kernel holds for what ipvsadm printed (`mask` appears only when it differs
/// from the full mask).
fn expected_netmask(key: &ServiceKey, info: &ServiceInfo) -> Result<u32, String> {
    match (key.family(), &info.mask) {
        (AddressFamily::Inet, None) => Ok(u32::MAX),
        (AddressFamily::Inet6, None) => Ok(128),
        (AddressFamily::Inet, Some(m)) => m
            .parse::<Ipv4Addr>()
            .map(u32::from)
            .map_err(|e| format!("mask {m:?}: {e}")),
        (AddressFamily::Inet6, Some(m)) => m.parse().map_err(|e| format!("mask {m:?}: {e}")),
    }
}

fn tunnel_name(t: TunnelType) -> &'static str {
    t.as_str()
}

/// Compare one scenario's views with its dump.
pub fn compare(v: &Views, d: &Dump) -> Outcome {
    let mut o = Outcome::default();
    let snap = &d.snapshot;

    o.eq(
        "info.version",
        v.header.version.clone(),
        snap.info.version_string(),
    );
    o.eq(
        "info.conn_table_size",
        v.header.conn_table_size,
        snap.info.conn_table_size,
    );

    // The six -Ln views must agree among themselves on the set of services (same moment).
    let list_keys: BTreeSet<ServiceKey> = v.list.iter().map(|s| s.key).collect();
    for (name, keys) in [
        (
            "stats",
            v.stats.iter().map(|s| s.key).collect::<BTreeSet<_>>(),
        ),
        ("rate", v.rate.iter().map(|s| s.key).collect()),
        ("thresholds", v.thresholds.iter().map(|s| s.key).collect()),
        ("pconn", v.pconn.iter().map(|s| s.key).collect()),
        ("tun", v.tun.iter().map(|s| s.key).collect()),
    ] {
        if keys != list_keys {
            o.fail(format!(
                "ipvsadm views disagree: -Ln and --{name} list different services"
            ));
        }
    }

    let dump_svcs: BTreeMap<ServiceKey, &Service> =
        snap.services.iter().map(|s| (s.key, s)).collect();
    if dump_svcs.len() != snap.services.len() {
        o.fail(format!(
            "dump lists a service key more than once ({} services, {} distinct keys)",
            snap.services.len(),
            dump_svcs.len()
        ));
    }
    let dump_keys: BTreeSet<ServiceKey> = dump_svcs.keys().copied().collect();
    o.eq("service count", list_keys.len(), snap.services.len());
    for k in list_keys.difference(&dump_keys) {
        o.fail(format!("service {k}: in ipvsadm, missing from dump"));
    }
    for k in dump_keys.difference(&list_keys) {
        o.fail(format!("service {k}: in dump, not in ipvsadm"));
    }

    let stats = by_key(&v.stats);
    let rate = by_key(&v.rate);
    let thr = by_key(&v.thresholds);
    let pconn = by_key(&v.pconn);
    let tun = by_key(&v.tun);
    for ls in &v.list {
        let Some(ds) = dump_svcs.get(&ls.key) else {
            continue;
        };
        compare_service(&mut o, ls, ds);
        let s = format!("service {}", ls.key);
        if let Some(st) = stats.get(&ls.key) {
            if let Some(n) = st.info.numbers {
                o.eq(format!("{s}: counters"), counters_of(n), ds.stats.counters);
            }
        }
        if let Some(rt) = rate.get(&ls.key) {
            if let Some(n) = rt.info.numbers {
                o.eq(format!("{s}: rates"), rates_of(n), ds.stats.rates);
            }
        }
        let dump_dests: BTreeMap<SocketAddr, &Destination> = ds
            .destinations
            .iter()
            .map(|d| (SocketAddr::new(d.address, d.port), d))
            .collect();
        let list_dests: BTreeSet<SocketAddr> = ls.dests.iter().map(|d| d.addr).collect();
        let dd_keys: BTreeSet<SocketAddr> = dump_dests.keys().copied().collect();
        o.eq(
            format!("{s}: destination count"),
            ls.dests.len(),
            ds.destinations.len(),
        );
        for a in list_dests.difference(&dd_keys) {
            o.fail(format!(
                "{s}: destination {a} in ipvsadm, missing from dump"
            ));
        }
        for a in dd_keys.difference(&list_dests) {
            o.fail(format!("{s}: destination {a} in dump, not in ipvsadm"));
        }
        for ld in &ls.dests {
            let Some(dd) = dump_dests.get(&ld.addr) else {
                continue;
            };
            let p = format!("{s} dest {}", ld.addr);
            o.eq(
                format!("{p}: family"),
                AddressFamily::of(&ld.addr.ip()),
                dd.family,
            );
            o.eq(
                format!("{p}: forward"),
                ld.forward.as_str(),
                dd.forward.ipvsadm_name(),
            );
            o.eq(format!("{p}: weight"), ld.weight, dd.weight);
            o.eq(format!("{p}: active_conns"), ld.active, dd.active_conns);
            o.eq(
                format!("{p}: inactive_conns"),
                ld.inactive,
                dd.inactive_conns,
            );
            if let Some(t) = dest_in(&thr, &ls.key, ld.addr) {
                o.eq(format!("{p}: upper_threshold"), t.upper, dd.upper_threshold);
                o.eq(format!("{p}: lower_threshold"), t.lower, dd.lower_threshold);
            } else {
                o.fail(format!("{p}: missing from --thresholds"));
            }
            if let Some(t) = dest_in(&pconn, &ls.key, ld.addr) {
                o.eq(
                    format!("{p}: persistent_conns"),
                    t.persistent,
                    dd.persistent_conns,
                );
            } else {
                o.fail(format!("{p}: missing from --persistent-conn"));
            }
            if let Some(t) = dest_in(&tun, &ls.key, ld.addr) {
                match ipvsadm::parse_tun_info(0, &t.tun_info) {
                    Err(e) => o.fail(format!("{p}: tun-info: {e}")),
                    Ok(None) => {
                        if dd.forward.ipvsadm_name() == "Tunnel" {
                            o.fail(format!(
                                "{p}: tunnel destination without tunnel info in ipvsadm"
                            ));
                        }
                    }
                    Ok(Some(ti)) => match dd.tunnel {
                        None => o.fail(format!(
                            "{p}: tunnel: ipvsadm {} but dump has none",
                            t.tun_info
                        )),
                        Some(dt) => {
                            o.eq(format!("{p}: tunnel.kind"), ti.kind, tunnel_name(dt.kind));
                            o.eq(format!("{p}: tunnel.port"), ti.port, dt.port);
                            o.eq(format!("{p}: tunnel.flags"), ti.flags, dt.flags);
                        }
                    },
                }
            } else {
                o.fail(format!("{p}: missing from --tun-info"));
            }
            if let Some(n) = dest_in(&stats, &ls.key, ld.addr).map(|x| x.numbers) {
                o.eq(format!("{p}: counters"), counters_of(n), dd.stats.counters);
            } else {
                o.fail(format!("{p}: missing from --stats"));
            }
            if let Some(n) = dest_in(&rate, &ls.key, ld.addr).map(|x| x.numbers) {
                o.eq(format!("{p}: rates"), rates_of(n), dd.stats.rates);
            } else {
                o.fail(format!("{p}: missing from --rate"));
            }
        }
    }

    match snap.timeouts {
        Some(t) => o.eq("timeouts", v.timeouts, t),
        None => o.fail("timeouts: ipvsadm shows them, dump has none".to_string()),
    }

    compare_daemons(&mut o, v, snap);

    match snap.global {
        Some(g) => {
            o.eq(
                "global counters",
                counters_of(v.global.counters),
                g.counters,
            );
            o.eq("global rates", rates_of(v.global.rates), g.rates);
        }
        None => o.fail("global stats: /proc/net/ip_vs_stats exists, dump has none".to_string()),
    }

    compare_conns(&mut o, v, d);
    o
}

/// Compare a `--source procfs` dump with ipvsadm, on what `/proc/net/ip_vs*` carries: service
/// keys, scheduler, persistence, destinations (forwarding method, weight, active and inactive
/// connections), global totals and the connection table. Per-service counters, rates,
/// thresholds, tunnels, timeouts and daemons are not in procfs and are not compared.
///
/// `/proc/net/ip_vs` prints fwmark services as `FWM  <mark>` whatever their family, so fwmark
/// keys are compared by mark only.
pub fn compare_procfs(v: &Views, d: &Dump) -> Outcome {
    let mut o = Outcome::default();
    let snap = &d.snapshot;
    let norm = |k: ServiceKey| match k {
        ServiceKey::Fwmark { mark, .. } => ServiceKey::Fwmark {
            family: AddressFamily::Inet,
            mark,
        },
        other => other,
    };
    let dump_svcs: BTreeMap<ServiceKey, &Service> =
        snap.services.iter().map(|s| (norm(s.key), s)).collect();
    let list_keys: BTreeSet<ServiceKey> = v.list.iter().map(|s| norm(s.key)).collect();
    let dump_keys: BTreeSet<ServiceKey> = dump_svcs.keys().copied().collect();
    o.eq("procfs service count", list_keys.len(), snap.services.len());
    for k in list_keys.difference(&dump_keys) {
        o.fail(format!(
            "procfs: service {k}: in ipvsadm, missing from dump"
        ));
    }
    for k in dump_keys.difference(&list_keys) {
        o.fail(format!("procfs: service {k}: in dump, not in ipvsadm"));
    }
    for ls in &v.list {
        let Some(ds) = dump_svcs.get(&norm(ls.key)) else {
            continue;
        };
        let s = format!("procfs: service {}", ls.key);
        o.eq(
            format!("{s}: scheduler"),
            ls.info.scheduler.as_str(),
            ds.scheduler.as_str(),
        );
        o.eq(
            format!("{s}: persistent"),
            ls.info.persistent.is_some(),
            ds.flags.persistent,
        );
        if let Some(p) = ls.info.persistent {
            o.eq(
                format!("{s}: persistence_timeout"),
                p,
                ds.persistence_timeout,
            );
            match expected_netmask(&ls.key, &ls.info) {
                Ok(m) => o.eq(format!("{s}: netmask"), m, ds.netmask),
                Err(e) => o.fail(format!("{s}: {e}")),
            }
        }
        let dd: BTreeMap<SocketAddr, &Destination> = ds
            .destinations
            .iter()
            .map(|d| (SocketAddr::new(d.address, d.port), d))
            .collect();
        o.eq(
            format!("{s}: destination count"),
            ls.dests.len(),
            ds.destinations.len(),
        );
        for ld in &ls.dests {
            let p = format!("{s} dest {}", ld.addr);
            let Some(d) = dd.get(&ld.addr) else {
                o.fail(format!("{p}: in ipvsadm, missing from dump"));
                continue;
            };
            o.eq(
                format!("{p}: forward"),
                ld.forward.as_str(),
                d.forward.ipvsadm_name(),
            );
            o.eq(format!("{p}: weight"), ld.weight, d.weight);
            o.eq(format!("{p}: active_conns"), ld.active, d.active_conns);
            o.eq(
                format!("{p}: inactive_conns"),
                ld.inactive,
                d.inactive_conns,
            );
        }
    }
    match snap.global {
        Some(g) => {
            o.eq(
                "procfs: global counters",
                counters_of(v.global.counters),
                g.counters,
            );
            o.eq("procfs: global rates", rates_of(v.global.rates), g.rates);
        }
        None => o.fail("procfs: global stats missing from dump".to_string()),
    }
    compare_conns(&mut o, v, d);
    o
}

fn compare_service(o: &mut Outcome, ls: &ViewService<ListDest>, ds: &Service) {
    let s = format!("service {}", ls.key);
    let i = &ls.info;
    o.eq(
        format!("{s}: scheduler"),
        i.scheduler.as_str(),
        ds.scheduler.as_str(),
    );
    o.eq(
        format!("{s}: persistent"),
        i.persistent.is_some(),
        ds.flags.persistent,
    );
    o.eq(
        format!("{s}: one_packet"),
        i.one_packet,
        ds.flags.one_packet,
    );
    let bits = u32::from(ds.flags.sched_flag_1)
        | (u32::from(ds.flags.sched_flag_2) << 1)
        | (u32::from(ds.flags.sched_flag_3) << 2);
    o.eq(format!("{s}: scheduler flags"), i.sched_flags, bits);
    o.eq(
        format!("{s}: flags.raw vs decoded"),
        herald_shared::model::ServiceFlags::from_raw(ds.flags.raw),
        ds.flags,
    );
    if let Some(p) = i.persistent {
        o.eq(
            format!("{s}: persistence_timeout"),
            p,
            ds.persistence_timeout,
        );
        match expected_netmask(&ls.key, i) {
            Ok(m) => o.eq(format!("{s}: netmask"), m, ds.netmask),
            Err(e) => o.fail(format!("{s}: {e}")),
        }
        o.eq(format!("{s}: pe_name"), i.pe.clone(), ds.pe_name.clone());
    }
}

fn compare_daemons(o: &mut Outcome, v: &Views, snap: &herald_shared::model::Snapshot) {
    o.eq("sync daemon count", v.daemons.len(), snap.daemons.len());
    for role in [SyncRole::Master, SyncRole::Backup] {
        let a = v.daemons.iter().find(|d| d.role == role);
        let b = snap.daemons.iter().find(|d| d.role == role);
        match (a, b) {
            (None, None) => {}
            (Some(_), None) => o.fail(format!(
                "sync daemon {role:?}: in ipvsadm, missing from dump"
            )),
            (None, Some(_)) => o.fail(format!("sync daemon {role:?}: in dump, not in ipvsadm")),
            (Some(a), Some(b)) => {
                let p = format!("sync daemon {role:?}");
                o.eq(
                    format!("{p}: interface"),
                    a.interface.as_str(),
                    b.interface.as_str(),
                );
                o.eq(format!("{p}: sync_id"), a.sync_id, b.sync_id);
                if let Some(m) = a.max_len {
                    o.eq(format!("{p}: max_len"), m, b.max_len);
                }
                if let Some(g) = a.group {
                    o.eq(format!("{p}: mcast_group"), Some(g), b.mcast_group);
                }
                if let Some(x) = a.port {
                    o.eq(format!("{p}: mcast_port"), x, b.mcast_port);
                }
                if let Some(x) = a.ttl {
                    o.eq(format!("{p}: mcast_ttl"), x, b.mcast_ttl);
                }
            }
        }
    }
}

fn compare_conns(o: &mut Outcome, v: &Views, d: &Dump) {
    match &d.conns {
        None => o.fail("connection table: dump --conns carried none".to_string()),
        Some(ct) => {
            o.eq("conn table truncated", false, ct.truncated);
            o.eq("conn table malformed lines", 0, ct.malformed_lines);
            let total: u64 = v.conns.values().sum();
            o.eq("conn table entries", total, ct.entries);
            let keys: BTreeSet<&ConnKey> = v.conns.keys().chain(ct.groups.keys()).collect();
            for k in keys {
                o.eq(
                    format!(
                        "conns {} {} -> {} {}",
                        k.protocol, k.virtual_addr, k.dest_addr, k.state
                    ),
                    v.conns.get(k).copied().unwrap_or(0),
                    ct.groups.get(k).copied().unwrap_or(0),
                );
            }
        }
    }
}
