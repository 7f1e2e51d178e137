//! The kernel route backend: announce a VIP by installing it in the kernel, where the local
//! routing daemon (BIRD, FRR) picks it up and redistributes it into OSPF (or its own BGP).
//!
//! Two modes ([`KernelMode`]):
//!
//! * `address` (default): the VIP becomes an address on a dummy interface (`herald0`, created
//!   and set up if missing). The daemon redistributes the interface's connected prefixes
//!   (BIRD `protocol direct`, FRR `redistribute connected route-map …`). IPv6 addresses are added
//!   with `nodad` so they are usable at once.
//! * `route`: the VIP becomes a route `VIP dev lo table 100 proto 72` (device, table and protocol
//!   configurable). The daemon learns that table (BIRD `protocol kernel { kernel table 100;
//!   learn; }`, FRR `ip import-table 100` + `redistribute table 100`; FRR 8 cannot import IPv6
//!   tables, so IPv6 VIP routes go to the main table there, `table = 254`, with
//!   `redistribute kernel`). The route's metric is the VIP group's `med` for its current state;
//!   the shipped BIRD configurations turn it into the OSPF external metric / BGP MED, so a
//!   draining director can be de-preferred before it withdraws.
//!
//! # What is ours
//!
//! Everything the backend installs is marked, and [`KernelBackend::reconcile`] removes only
//! marked objects it no longer wants (stale state of a previous run):
//!
//! * routes: route protocol number [`KernelConfig::protocol`] (default [`DEFAULT_PROTOCOL`](super::config::DEFAULT_PROTOCOL), 72,
//!   shown as `proto 72` by `ip route`; add `72 herald` to `/etc/iproute2/rt_protos` for a name);
//! * addresses: address protocol `IFA_PROTO` = the same number (Linux ≥ 6.1; iproute2 6.1
//!   does not display it, later versions show `proto 72`); in addition IPv4 addresses carry
//!   the label `<interface>:vip` (e.g. `herald0:vip`), and only on kernels without `IFA_PROTO`
//!   an IPv6 /128 with the `nodad` flag on the backend's interface counts as ours. An address
//!   that is present but not marked is *foreign*: announcing treats it as already announced,
//!   withdrawing refuses to remove it
//!   ([`KernelError::Foreign`]).
//!
//! # Lifecycle
//!
//! What the backend installs lives in the kernel, not in the process: unlike a BGP session,
//! nothing withdraws a VIP when ipvs-herald dies. Therefore:
//!
//! * at start-up call [`KernelBackend::reconcile`] with the VIPs that may stay (normally none:
//!   the control loop announces again after `rise` good checks), which removes what a crashed
//!   or killed predecessor left behind;
//! * on a clean stop the control loop withdraws everything (its shutdown drain);
//! * for the case where the daemon dies and is not restarted, the service manager can flush our
//!   objects, e.g. in the systemd unit (defaults shown; route mode, then address mode):
//!
//!   ```text
//!   ExecStopPost=-/sbin/ip -4 route flush table 100 proto 72
//!   ExecStopPost=-/sbin/ip -6 route flush table 100 proto 72
//!   ExecStopPost=-/sbin/ip -4 addr flush dev herald0 label herald0:vip
//!   ExecStopPost=-/sbin/ip -6 addr flush dev herald0 scope global
//!   ```
//!
//! # Kernel without dummy interfaces
//!
//! Creating `herald0` needs the `dummy` driver. Without it creation fails with EOPNOTSUPP and
//! says so; use an existing interface instead (`create_interface = false`, e.g. `lo`, or an
//! `ifb` device the administrator created), where the same ownership marks apply.
//!
//! # Network namespaces
//!
//! IPVS state is per network namespace, so the backend works in the namespace named by
//! [`KernelConfig::netns`] (a path like `/run/netns/director`): its netlink socket is created
//! there once, and everything it adds lives there.
//!
//! # Why `neli`
//!
//! The workspace already speaks generic netlink to IPVS through `neli`, whose `rtnl` module has
//! the rtnetlink message types (`Ifinfomsg`, `Ifaddrmsg`, `Rtmsg`) and a plain blocking socket.
//! Using it adds no dependency tree (the `rtnetlink` crate would pull in `netlink-proto`,
//! `netlink-packet-*` and `futures` channels with a fast-moving API), and a blocking socket
//! makes "create the socket inside a namespace" a simple thread + `setns(2)`. The few calls run
//! on tokio's blocking pool, serialised by a mutex, so every check-then-change step is atomic
//! with respect to the other calls on the same backend.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use tracing::{info, info_span, Instrument};

use super::addresses::{
    add_addr, blocking, del_addr, ensure_link, find_link, net_of, Outcome, Shared, VipAddresses,
};
use super::config::{KernelConfig, KernelMode};
use super::error::KernelError;
use super::rtnl::{IpFamily, Route, RouteSpec, Rtnl, TABLE_MAIN};

/// The kernel route backend (see the module documentation).
#[derive(Debug, Clone)]
pub struct KernelBackend {
    cfg: Arc<KernelConfig>,
    rtnl: Shared,
    addrs: VipAddresses,
}

impl KernelBackend {
    /// Validates `cfg`, opens the rtnetlink socket in its namespace and, in `address` mode,
    /// makes sure the interface exists and is up; in `route` mode, that the route device
    /// exists.
    pub async fn new(cfg: KernelConfig) -> Result<Self, KernelError> {
        cfg.validate()?;
        let netns = cfg.netns.clone();
        let rtnl = tokio::task::spawn_blocking(move || Rtnl::open(netns.as_deref()))
            .await
            .map_err(|e| KernelError::Worker(e.to_string()))??;
        let rtnl = Arc::new(Mutex::new(rtnl));
        let addrs = VipAddresses::with_socket(Arc::clone(&rtnl), cfg.protocol, cfg.noprefixroute);
        let backend = KernelBackend {
            cfg: Arc::new(cfg),
            rtnl,
            addrs,
        };
        match backend.cfg.mode {
            KernelMode::Address => {
                // With create_interface the interface is ours: it must be a dummy.
                let (name, create) = (backend.cfg.interface.clone(), backend.cfg.create_interface);
                blocking(&backend.rtnl, move |r| {
                    ensure_link(r, &name, create, create).map(drop)
                })
                .await?;
            }
            KernelMode::Route => {
                let dev = backend.cfg.route_device.clone();
                blocking(&backend.rtnl, move |r| find_link(r, &dev).map(drop)).await?;
            }
        }
        Ok(backend)
    }

    /// The configuration in use.
    pub fn config(&self) -> &KernelConfig {
        &self.cfg
    }

    /// The address primitives on this backend's socket and namespace (for the ordering rule).
    pub fn addresses(&self) -> &VipAddresses {
        &self.addrs
    }

    /// Installs `prefix`. In `address` mode the interface is re-created / set up if someone
    /// removed it or took it down. In `route` mode `metric` is the route's priority (changing it
    /// replaces the route, make-before-break); `address` mode ignores it.
    pub async fn announce_vip(
        &self,
        prefix: IpNet,
        metric: Option<u32>,
    ) -> Result<Outcome, KernelError> {
        let cfg = Arc::clone(&self.cfg);
        let span = info_span!("kernel_announce", vip = %prefix, mode = ?cfg.mode);
        blocking(&self.rtnl, move |r| match cfg.mode {
            KernelMode::Address => {
                let link = ensure_link(
                    r,
                    &cfg.interface,
                    cfg.create_interface,
                    cfg.create_interface,
                )?;
                add_addr(r, &link, prefix, cfg.protocol, cfg.noprefixroute)
            }
            KernelMode::Route => add_route(r, &cfg, prefix, metric),
        })
        .instrument(span)
        .await
    }

    /// Removes `prefix`; absent is fine.
    pub async fn withdraw_vip(&self, prefix: IpNet) -> Result<Outcome, KernelError> {
        let cfg = Arc::clone(&self.cfg);
        let span = info_span!("kernel_withdraw", vip = %prefix, mode = ?cfg.mode);
        blocking(&self.rtnl, move |r| match cfg.mode {
            KernelMode::Address => {
                let Some(link) = r.link_by_name(&cfg.interface)? else {
                    return Ok(Outcome::Absent);
                };
                del_addr(r, &link, prefix.addr(), cfg.protocol)
            }
            KernelMode::Route => del_routes(r, &cfg, prefix),
        })
        .instrument(span)
        .await
    }

    /// What is installed now, as ours.
    pub async fn announced(&self) -> Result<Vec<IpNet>, KernelError> {
        match self.cfg.mode {
            KernelMode::Address => self.addrs.owned(&self.cfg.interface).await,
            KernelMode::Route => {
                let cfg = Arc::clone(&self.cfg);
                blocking(&self.rtnl, move |r| {
                    Ok(owned_routes(r, &cfg)?
                        .iter()
                        .filter_map(|rt| net_of(rt.dst, rt.dst_len))
                        .collect())
                })
                .await
            }
        }
    }

    /// Removes everything of ours that is not in `keep` (stale state of an earlier run);
    /// returns what it removed. Call at start-up, with the VIPs that should stay announced
    /// (often none until the first health evaluation).
    pub async fn reconcile(&self, keep: &[IpNet]) -> Result<Vec<IpNet>, KernelError> {
        match self.cfg.mode {
            KernelMode::Address => self.addrs.reconcile(&self.cfg.interface, keep).await,
            KernelMode::Route => {
                let cfg = Arc::clone(&self.cfg);
                let keep: BTreeSet<IpNet> = keep.iter().map(IpNet::trunc).collect();
                blocking(&self.rtnl, move |r| {
                    let mut removed = Vec::new();
                    for rt in owned_routes(r, &cfg)? {
                        let Some(net) = net_of(rt.dst, rt.dst_len) else {
                            continue;
                        };
                        if keep.contains(&net) {
                            continue;
                        }
                        match r.del_route(&rt) {
                            Ok(()) => {}
                            Err(e) if matches!(e.errno(), Some(libc::ESRCH | libc::ENOENT)) => {}
                            Err(e) => return Err(e),
                        }
                        info!(vip = %net, table = cfg.table, "removed stale VIP route");
                        removed.push(net);
                    }
                    Ok(removed)
                })
                .await
            }
        }
    }
}

fn owned_routes(r: &mut Rtnl, cfg: &KernelConfig) -> Result<Vec<Route>, KernelError> {
    let mut all = r.routes(IpFamily::V4, cfg.table, cfg.protocol)?;
    all.extend(r.routes(IpFamily::V6, cfg.table, cfg.protocol)?);
    Ok(all)
}

/// The priority the kernel reports for a route added with `metric` (IPv6 defaults to 1024).
fn effective_priority(family: IpFamily, metric: Option<u32>) -> u32 {
    match (family, metric) {
        (_, Some(m)) if m != 0 => m,
        (IpFamily::V6, _) => 1024,
        (IpFamily::V4, _) => 0,
    }
}

fn add_route(
    r: &mut Rtnl,
    cfg: &KernelConfig,
    prefix: IpNet,
    metric: Option<u32>,
) -> Result<Outcome, KernelError> {
    let prefix = prefix.trunc();
    let family = IpFamily::of(prefix.addr());
    let dev = find_link(r, &cfg.route_device)?;
    let want_prio = effective_priority(family, metric);
    let same_prefix: Vec<Route> = r
        .routes(family, cfg.table, cfg.protocol)?
        .into_iter()
        .filter(|rt| rt.dst == prefix.addr() && rt.dst_len == prefix.prefix_len())
        .collect();
    let matches = |rt: &Route| rt.oif == Some(dev.index) && rt.priority.unwrap_or(0) == want_prio;
    if same_prefix.iter().any(matches) {
        return Ok(Outcome::AlreadyPresent);
    }
    let spec = RouteSpec {
        dst: prefix.addr(),
        dst_len: prefix.prefix_len(),
        table: cfg.table,
        protocol: cfg.protocol,
        oif: Some(dev.index),
        priority: metric.filter(|m| *m != 0),
    };
    // Make before break: add the new route, then drop our old variants of it. A v4 route that
    // differs only in device has the same key, so that one must go first.
    match r.add_route(&spec, &dev.name) {
        Ok(()) => {}
        Err(e) if e.errno() == Some(libc::EEXIST) && !same_prefix.is_empty() => {
            for old in &same_prefix {
                r.del_route(old)?;
            }
            r.add_route(&spec, &dev.name)?;
        }
        Err(e) if e.errno() == Some(libc::EEXIST) => {
            return Err(KernelError::Foreign(
                format!("a route to {prefix} in table {}", cfg.table),
                cfg.protocol,
            ))
        }
        Err(e) => return Err(e),
    }
    for old in same_prefix.iter().filter(|rt| !matches(rt)) {
        match r.del_route(old) {
            Ok(()) => {}
            Err(e) if matches!(e.errno(), Some(libc::ESRCH | libc::ENOENT)) => {}
            Err(e) => return Err(e),
        }
    }
    info!(vip = %prefix, table = cfg.table, device = %dev.name, "VIP route added");
    Ok(Outcome::Added)
}

fn del_routes(r: &mut Rtnl, cfg: &KernelConfig, prefix: IpNet) -> Result<Outcome, KernelError> {
    let prefix = prefix.trunc();
    let family = IpFamily::of(prefix.addr());
    let mut outcome = Outcome::Absent;
    for rt in r
        .routes(family, cfg.table, cfg.protocol)?
        .into_iter()
        .filter(|rt| rt.dst == prefix.addr() && rt.dst_len == prefix.prefix_len())
    {
        match r.del_route(&rt) {
            Ok(()) => {
                info!(vip = %prefix, table = cfg.table, "VIP route removed");
                outcome = Outcome::Removed;
            }
            Err(e) if matches!(e.errno(), Some(libc::ESRCH | libc::ENOENT)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(outcome)
}

/// The main table's number, for configurations that want `table = 254`.
pub const MAIN_TABLE: u32 = TABLE_MAIN;
