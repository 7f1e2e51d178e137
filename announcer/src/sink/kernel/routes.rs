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
//! * routes: route protocol number [`KernelConfig::protocol`] (default [`DEFAULT_PROTOCOL`], 72,
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
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use ipnet::IpNet;
use serde::Deserialize;
use tracing::{debug, info, info_span, warn, Instrument};

use super::rtnl::{
    Addr, AddrSpec, IpFamily, Link, Route, RouteSpec, Rtnl, IFA_F_DADFAILED, IFA_F_NODAD,
    IFA_F_NOPREFIXROUTE, TABLE_MAIN,
};

/// Default route protocol number (and address protocol) that marks what ipvs-herald installs.
/// Not used by the kernel, iproute2, BIRD (12), FRR (11, 186–198) or keepalived (18).
pub const DEFAULT_PROTOCOL: u8 = 72;
/// Default dummy interface for `address` mode.
pub const DEFAULT_INTERFACE: &str = "herald0";
/// Default routing table for `route` mode.
pub const DEFAULT_TABLE: u32 = 100;
/// Suffix of the IPv4 address label: `herald0` → `herald0:vip`.
pub const LABEL_SUFFIX: &str = "vip";
/// Longest interface name or label the kernel accepts (IFNAMSIZ - 1).
const IFNAMSIZ_MAX: usize = 15;

/// How the kernel backend installs a VIP.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KernelMode {
    /// VIP as an address on a dummy interface.
    #[default]
    Address,
    /// VIP as a route in a routing table.
    Route,
}

/// Configuration of the kernel backend (e.g. an `[announcer.kernel]` table). Every field has a
/// default; a typical route-mode setup:
///
/// ```toml
/// mode = "route"          # or "address" (default): VIPs on the dummy interface herald0
/// table = 100             # route mode: kernel table the routing daemon learns
/// route_device = "lo"
/// protocol = 72           # marks our routes/addresses (`ip route show proto 72`)
/// # netns = "/run/netns/lb"   # when IPVS runs in another network namespace
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct KernelConfig {
    /// `address` (default) or `route`.
    pub mode: KernelMode,
    /// `address` mode: the interface that carries the VIPs. Default `herald0`.
    pub interface: String,
    /// `address` mode: create the interface as a dummy (and set it up) when missing.
    /// Default true.
    pub create_interface: bool,
    /// `address` mode: also set `noprefixroute` on the VIP addresses. Default false (some
    /// routing daemons do not redistribute `noprefixroute` addresses as connected routes).
    pub noprefixroute: bool,
    /// `route` mode: the routing table. Default 100.
    pub table: u32,
    /// `route` mode: the routes' output device. Default `lo`.
    pub route_device: String,
    /// Route protocol / address protocol number marking our objects. Default 72.
    pub protocol: u8,
    /// Network namespace to work in (`/run/netns/NAME`, `/proc/PID/ns/net`); default: ours.
    pub netns: Option<PathBuf>,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            mode: KernelMode::Address,
            interface: DEFAULT_INTERFACE.into(),
            create_interface: true,
            noprefixroute: false,
            table: DEFAULT_TABLE,
            route_device: "lo".into(),
            protocol: DEFAULT_PROTOCOL,
            netns: None,
        }
    }
}

impl KernelConfig {
    /// Checks the configuration; the error names the bad field.
    pub fn validate(&self) -> Result<(), KernelError> {
        let bad = |m: String| Err(KernelError::Config(m));
        check_ifname("interface", &self.interface)?;
        check_ifname("route_device", &self.route_device)?;
        if self.protocol <= 4 {
            return bad(format!(
                "protocol = {} is reserved by the kernel (0 unspec, 1 redirect, 2 kernel, 3 boot, \
                 4 static); pick an unused number such as {DEFAULT_PROTOCOL}",
                self.protocol
            ));
        }
        // 253 default, 254 main and 255 local are real tables but the local table is the
        // kernel's own: never write VIP routes there.
        if self.table == 0 || self.table == 255 {
            return bad(format!(
                "table = {} is not usable (0 is unspec, 255 is the kernel's local table)",
                self.table
            ));
        }
        Ok(())
    }
}

fn check_ifname(field: &str, name: &str) -> Result<(), KernelError> {
    if name.is_empty()
        || name.len() > IFNAMSIZ_MAX
        || name == "."
        || name == ".."
        || name.contains(['/', ':', '\0'])
        || name.chars().any(char::is_whitespace)
    {
        return Err(KernelError::Config(format!(
            "{field} = {name:?} is not a valid interface name (1–15 bytes, no '/', ':' or spaces)"
        )));
    }
    Ok(())
}

/// Errors of the kernel backend. Each names the object and, for kernel refusals, what the errno
/// means in this context.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The configuration is unusable.
    #[error("kernel backend configuration: {0}")]
    Config(String),
    /// The network namespace could not be entered.
    #[error("cannot enter network namespace {}: {reason}", path.display())]
    Netns {
        /// The namespace file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The netlink socket failed (open, send, receive).
    #[error("rtnetlink socket: {0}")]
    Socket(String),
    /// The kernel refused a request.
    #[error("{op} {target}: {meaning} (errno {errno}){}", ext_ack.as_ref().map(|m| format!("; kernel says: {m}")).unwrap_or_default())]
    Kernel {
        /// What was attempted, e.g. `add address`.
        op: &'static str,
        /// On what, e.g. `203.0.113.10/32 on herald0`.
        target: String,
        /// The positive errno.
        errno: i32,
        /// What the errno means here (`EPERM` → CAP_NET_ADMIN needed).
        meaning: String,
        /// The kernel's extended-ACK message, when it sent one.
        ext_ack: Option<String>,
    },
    /// A reply could not be decoded.
    #[error("{op}: malformed rtnetlink reply: {detail}")]
    Protocol {
        /// What was attempted.
        op: &'static str,
        /// What was wrong with the reply.
        detail: String,
    },
    /// The interface does not exist (and may not be created).
    #[error("interface {0} does not exist{1}")]
    NoSuchInterface(String, &'static str),
    /// The interface exists but is not one the backend may put VIPs on.
    #[error("interface {name} exists but is a {kind} interface, not a dummy; refusing to use it (set create_interface = false to use an existing interface on purpose)")]
    NotDummy {
        /// Interface name.
        name: String,
        /// Its link kind.
        kind: String,
    },
    /// The object exists but was not installed by ipvs-herald, so it will not be removed.
    #[error("{0} exists but was not installed by ipvs-herald (no protocol {1} mark); refusing to remove it")]
    Foreign(String, u8),
    /// The blocking worker died.
    #[error("kernel backend worker failed: {0}")]
    Worker(String),
}

impl KernelError {
    pub(crate) fn kernel(
        op: &'static str,
        target: &str,
        errno: i32,
        ext_ack: Option<String>,
    ) -> Self {
        KernelError::Kernel {
            op,
            target: target.to_string(),
            errno,
            meaning: errno_meaning(errno),
            ext_ack,
        }
    }

    /// The errno of a kernel refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            KernelError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// What an errno means for route/address operations, with the fix when there is an obvious one.
pub fn errno_meaning(errno: i32) -> String {
    let name = nix::errno::Errno::from_raw(errno);
    let hint = match errno {
        libc::EPERM => "operation not permitted: CAP_NET_ADMIN needed (run as root or grant the capability)",
        libc::EACCES => "permission denied: CAP_NET_ADMIN needed, or IPv6 is disabled on the interface (net.ipv6.conf.<if>.disable_ipv6)",
        libc::EEXIST => "already exists",
        libc::ENODEV => "no such interface",
        libc::ENOENT => "no such object (or table)",
        libc::ESRCH => "no such route",
        libc::EADDRNOTAVAIL => "address not present on the interface",
        libc::EAFNOSUPPORT => "address family not supported (IPv6 disabled in this kernel?)",
        libc::EINVAL => "invalid request",
        libc::ENETUNREACH => "network unreachable (interface down or without carrier?)",
        libc::ENOBUFS | libc::ENOMEM => "kernel out of memory",
        libc::EOPNOTSUPP => "operation not supported (dummy interfaces need the `dummy` module)",
        libc::EBUSY => "resource busy",
        _ => "",
    };
    if hint.is_empty() {
        format!("{} ({name})", name.desc())
    } else {
        format!("{hint} ({name})")
    }
}

/// What an operation changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Installed now.
    Added,
    /// Was already installed by us: nothing done.
    AlreadyPresent,
    /// Present but not ours (e.g. configured by the administrator): nothing done. It is
    /// advertised anyway, since the daemon redistributes it too.
    Foreign,
    /// Removed now.
    Removed,
    /// Was not there: nothing done.
    Absent,
}

type Shared = Arc<Mutex<Rtnl>>;

/// Runs `f` with the socket on tokio's blocking pool.
async fn blocking<T, F>(rtnl: &Shared, f: F) -> Result<T, KernelError>
where
    T: Send + 'static,
    F: FnOnce(&mut Rtnl) -> Result<T, KernelError> + Send + 'static,
{
    let rtnl = Arc::clone(rtnl);
    // Keep the caller's span (backend, VIP) on the log lines of the blocking part.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let mut guard = rtnl.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    })
    .await
    .map_err(|e| KernelError::Worker(e.to_string()))?
}

/// The IPv4 label ipvs-herald gives its addresses on `ifname`, when it fits in IFNAMSIZ.
pub fn vip_label(ifname: &str) -> Option<String> {
    let l = format!("{ifname}:{LABEL_SUFFIX}");
    (l.len() <= IFNAMSIZ_MAX).then_some(l)
}

/// Whether this kernel records the address protocol (`IFA_PROTO`, Linux >= 6.1).
fn kernel_has_ifa_proto() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| release_at_least(&r, 6, 1))
            // Unknown: assume a modern kernel, so the weaker IPv6 mark is never trusted.
            .unwrap_or(true)
    })
}

/// `"6.18.44-fc"` >= 6.1?
fn release_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let got = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    got >= (major, minor)
}

fn is_ours(a: &Addr, link: &Link, protocol: u8) -> bool {
    is_ours_with(a, link, protocol, kernel_has_ifa_proto())
}

/// Ownership of an address: `IFA_PROTO` = ours; else an IPv4 label `<if>:vip`; else, only on
/// kernels without `IFA_PROTO`, an IPv6 /128 with `nodad` (what we add).
fn is_ours_with(a: &Addr, link: &Link, protocol: u8, has_ifa_proto: bool) -> bool {
    if a.index != link.index {
        return false;
    }
    match a.proto {
        Some(p) => p == protocol,
        None => match a.addr {
            IpAddr::V4(_) => a.label.is_some() && a.label == vip_label(&link.name),
            IpAddr::V6(_) => !has_ifa_proto && a.prefix_len == 128 && a.flags & IFA_F_NODAD != 0,
        },
    }
}

fn net_of(addr: IpAddr, len: u8) -> Option<IpNet> {
    IpNet::new(addr, len).ok()
}

/// Adds, removes and lists ipvs-herald's VIP addresses on interfaces.
///
/// These are the primitives for the ordering rule in [`crate::sink::kernel`]: when the daemon
/// manages the VIP address itself, add the address *before* announcing the route and remove it
/// only *after* withdrawing it.
#[derive(Debug, Clone)]
pub struct VipAddresses {
    rtnl: Shared,
    protocol: u8,
    noprefixroute: bool,
}

impl VipAddresses {
    /// Opens an rtnetlink socket in `netns` (or the current namespace).
    pub async fn open(netns: Option<PathBuf>, protocol: u8) -> Result<Self, KernelError> {
        let rtnl = tokio::task::spawn_blocking(move || Rtnl::open(netns.as_deref()))
            .await
            .map_err(|e| KernelError::Worker(e.to_string()))??;
        Ok(VipAddresses {
            rtnl: Arc::new(Mutex::new(rtnl)),
            protocol,
            noprefixroute: false,
        })
    }

    fn with_socket(rtnl: Shared, protocol: u8, noprefixroute: bool) -> Self {
        VipAddresses {
            rtnl,
            protocol,
            noprefixroute,
        }
    }

    /// Makes sure the interface `name` exists, creating it as a dummy (and setting it up) when
    /// it is missing and `create` is set. An existing interface of any kind is used as it is
    /// (a down dummy is set up). Returns its index.
    pub async fn ensure_interface(&self, name: &str, create: bool) -> Result<u32, KernelError> {
        let name = name.to_string();
        blocking(&self.rtnl, move |r| {
            ensure_link(r, &name, create, false).map(|l| l.index)
        })
        .await
    }

    /// Adds `vip` (address and prefix length) to `ifname`, marked as ours. A missing interface
    /// is created as a dummy (and set up); an existing one of any kind is used as it is.
    pub async fn add(&self, ifname: &str, vip: IpNet) -> Result<Outcome, KernelError> {
        let ifname = ifname.to_string();
        let (protocol, npr) = (self.protocol, self.noprefixroute);
        blocking(&self.rtnl, move |r| {
            let link = ensure_link(r, &ifname, true, false)?;
            add_addr(r, &link, vip, protocol, npr)
        })
        .await
    }

    /// Removes `vip` from `ifname` if it is ours; absent is fine, foreign is an error.
    pub async fn remove(&self, ifname: &str, vip: IpNet) -> Result<Outcome, KernelError> {
        let ifname = ifname.to_string();
        let protocol = self.protocol;
        blocking(&self.rtnl, move |r| {
            let Some(link) = r.link_by_name(&ifname)? else {
                return Ok(Outcome::Absent);
            };
            del_addr(r, &link, vip.addr(), protocol)
        })
        .await
    }

    /// Every usable address in the namespace (not those that failed IPv6 DAD). Blocking: call
    /// it from a blocking context.
    pub fn local_addresses_blocking(&self) -> Result<Vec<IpAddr>, KernelError> {
        let mut r = self.rtnl.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(r.addresses(None)?
            .into_iter()
            .filter(|a| a.flags & IFA_F_DADFAILED == 0)
            .map(|a| a.addr)
            .collect())
    }

    /// Our addresses on `ifname` (empty when the interface does not exist).
    pub async fn owned(&self, ifname: &str) -> Result<Vec<IpNet>, KernelError> {
        let ifname = ifname.to_string();
        let protocol = self.protocol;
        blocking(&self.rtnl, move |r| {
            let Some(link) = r.link_by_name(&ifname)? else {
                return Ok(Vec::new());
            };
            Ok(owned_addrs(r, &link, protocol)?
                .into_iter()
                .filter_map(|a| net_of(a.addr, a.prefix_len))
                .collect())
        })
        .await
    }

    /// Removes our addresses on `ifname` that are not in `keep`; returns what it removed.
    pub async fn reconcile(&self, ifname: &str, keep: &[IpNet]) -> Result<Vec<IpNet>, KernelError> {
        let ifname = ifname.to_string();
        let keep: BTreeSet<IpNet> = keep.iter().copied().collect();
        let protocol = self.protocol;
        blocking(&self.rtnl, move |r| {
            let Some(link) = r.link_by_name(&ifname)? else {
                return Ok(Vec::new());
            };
            let mut removed = Vec::new();
            for a in owned_addrs(r, &link, protocol)? {
                let Some(net) = net_of(a.addr, a.prefix_len) else {
                    continue;
                };
                if keep.contains(&net) {
                    continue;
                }
                match r.del_address(&a, &link.name) {
                    Ok(()) => {}
                    Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => {}
                    Err(e) => return Err(e),
                }
                info!(vip = %net, interface = %link.name, "removed stale VIP address");
                removed.push(net);
            }
            Ok(removed)
        })
        .await
    }
}

fn find_link(r: &mut Rtnl, name: &str) -> Result<Link, KernelError> {
    r.link_by_name(name)?
        .ok_or_else(|| KernelError::NoSuchInterface(name.to_string(), ""))
}

/// Finds (or, with `create`, creates) the interface and makes sure an owned dummy is up.
/// `require_dummy`: an existing interface of another kind is refused (it was meant to be ours).
fn ensure_link(
    r: &mut Rtnl,
    name: &str,
    create: bool,
    require_dummy: bool,
) -> Result<Link, KernelError> {
    let link = match r.link_by_name(name)? {
        Some(l) => {
            if require_dummy {
                if let Some(kind) = l.kind.as_deref().filter(|k| *k != "dummy") {
                    return Err(KernelError::NotDummy {
                        name: name.to_string(),
                        kind: kind.to_string(),
                    });
                }
            }
            l
        }
        None if create => {
            match r.create_dummy(name) {
                Ok(()) => info!(interface = name, "created dummy interface for VIPs"),
                // Created concurrently by someone else: fine, use it.
                Err(e) if e.errno() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
            r.link_by_name(name)?.ok_or_else(|| {
                KernelError::NoSuchInterface(name.to_string(), " (vanished right after creation)")
            })?
        }
        None => {
            return Err(KernelError::NoSuchInterface(
                name.to_string(),
                " and create_interface is off",
            ))
        }
    };
    if !link.up {
        if create && (require_dummy || link.kind.as_deref() == Some("dummy")) {
            // Our own dummy: bring it (back) up.
            r.set_up(&link)?;
            debug!(interface = name, "set interface up");
        } else {
            // Not ours to manage: say so, the daemon will not redistribute its addresses.
            warn!(
                interface = name,
                "VIP interface is administratively down; its VIPs will not be redistributed"
            );
        }
    }
    Ok(link)
}

fn owned_addrs(r: &mut Rtnl, link: &Link, protocol: u8) -> Result<Vec<Addr>, KernelError> {
    Ok(r.addresses(None)?
        .into_iter()
        .filter(|a| is_ours(a, link, protocol))
        .collect())
}

fn add_addr(
    r: &mut Rtnl,
    link: &Link,
    vip: IpNet,
    protocol: u8,
    noprefixroute: bool,
) -> Result<Outcome, KernelError> {
    let family = IpFamily::of(vip.addr());
    let existing: Vec<Addr> = r
        .addresses(Some(family))?
        .into_iter()
        .filter(|a| a.index == link.index && a.addr == vip.addr())
        .collect();
    let mut outcome = Outcome::Added;
    for a in &existing {
        if !is_ours(a, link, protocol) {
            warn!(vip = %vip, interface = %link.name, "VIP address already configured by someone else; leaving it alone");
            return Ok(Outcome::Foreign);
        }
        if a.prefix_len == vip.prefix_len() {
            outcome = Outcome::AlreadyPresent;
        } else {
            // Ours with another prefix length (configuration changed): replace it.
            r.del_address(a, &link.name)?;
        }
    }
    if outcome == Outcome::AlreadyPresent {
        return Ok(outcome);
    }
    let mut flags = 0;
    if family == IpFamily::V6 {
        flags |= IFA_F_NODAD;
    }
    if noprefixroute {
        flags |= IFA_F_NOPREFIXROUTE;
    }
    let spec = AddrSpec {
        index: link.index,
        addr: vip.addr(),
        prefix_len: vip.prefix_len(),
        label: vip_label(&link.name),
        flags,
        proto: protocol,
    };
    match r.add_address(&spec, &link.name) {
        Ok(()) => {
            info!(vip = %vip, interface = %link.name, "VIP address added");
            Ok(Outcome::Added)
        }
        Err(e) if e.errno() == Some(libc::EEXIST) => Ok(Outcome::AlreadyPresent),
        Err(e) => Err(e),
    }
}

fn del_addr(r: &mut Rtnl, link: &Link, addr: IpAddr, protocol: u8) -> Result<Outcome, KernelError> {
    let family = IpFamily::of(addr);
    let existing: Vec<Addr> = r
        .addresses(Some(family))?
        .into_iter()
        .filter(|a| a.index == link.index && a.addr == addr)
        .collect();
    let mut outcome = Outcome::Absent;
    for a in &existing {
        if !is_ours(a, link, protocol) {
            return Err(KernelError::Foreign(
                format!("address {}/{} on {}", a.addr, a.prefix_len, link.name),
                protocol,
            ));
        }
        match r.del_address(a, &link.name) {
            Ok(()) => {
                info!(vip = %addr, interface = %link.name, "VIP address removed");
                outcome = Outcome::Removed;
            }
            Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(outcome)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_meanings_name_the_fix() {
        assert!(errno_meaning(libc::EPERM).contains("CAP_NET_ADMIN needed"));
        assert!(errno_meaning(libc::EPERM).contains("EPERM"));
        assert!(errno_meaning(libc::ENODEV).contains("no such interface"));
        // Unknown errnos still say something.
        assert!(!errno_meaning(libc::EXDEV).is_empty());
        let e = KernelError::kernel(
            "add address",
            "203.0.113.10/32 on herald0",
            libc::EPERM,
            Some("nope".into()),
        );
        let s = e.to_string();
        assert!(s.starts_with("add address 203.0.113.10/32 on herald0: operation not permitted: CAP_NET_ADMIN needed"), "{s}");
        assert!(s.contains("kernel says: nope"), "{s}");
        assert_eq!(e.errno(), Some(libc::EPERM));
    }

    #[test]
    fn config_validation_names_the_field() {
        assert!(KernelConfig::default().validate().is_ok());
        let c = KernelConfig {
            interface: "a-very-long-interface".into(),
            ..KernelConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("interface = \"a-very-long-interface\""));
        let c = KernelConfig {
            protocol: 2,
            ..KernelConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("protocol = 2"));
        let c = KernelConfig {
            table: 255,
            ..KernelConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("table = 255"));
        let c = KernelConfig {
            route_device: "eth0:1".into(),
            ..KernelConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("route_device"));
    }

    #[test]
    fn labels_fit_ifnamsiz() {
        assert_eq!(vip_label("herald0").as_deref(), Some("herald0:vip"));
        assert_eq!(vip_label("abcdefghijk").as_deref(), Some("abcdefghijk:vip"));
        assert_eq!(vip_label("abcdefghijkl"), None);
    }

    #[test]
    fn ownership_marks() {
        let link = Link {
            index: 7,
            name: "herald0".into(),
            up: true,
            kind: Some("dummy".into()),
        };
        let base = Addr {
            index: 7,
            addr: IpAddr::from([203, 0, 113, 10]),
            prefix_len: 32,
            label: None,
            flags: 0,
            proto: None,
        };
        assert!(!is_ours_with(&base, &link, 72, false));
        assert!(is_ours_with(
            &Addr {
                proto: Some(72),
                ..base.clone()
            },
            &link,
            72,
            false
        ));
        assert!(!is_ours_with(
            &Addr {
                proto: Some(3),
                label: Some("herald0:vip".into()),
                ..base.clone()
            },
            &link,
            72,
            false
        ));
        assert!(is_ours_with(
            &Addr {
                label: Some("herald0:vip".into()),
                ..base.clone()
            },
            &link,
            72,
            false
        ));
        assert!(!is_ours_with(
            &Addr {
                index: 8,
                proto: Some(72),
                ..base.clone()
            },
            &link,
            72,
            false
        ));
        let v6 = Addr {
            addr: "2001:db8::10".parse().unwrap_or(IpAddr::from([0u8; 16])),
            prefix_len: 128,
            ..base.clone()
        };
        assert!(!is_ours_with(&v6, &link, 72, false));
        assert!(is_ours_with(
            &Addr {
                flags: IFA_F_NODAD,
                ..v6.clone()
            },
            &link,
            72,
            false
        ));
        assert!(!is_ours_with(
            &Addr {
                flags: IFA_F_NODAD,
                prefix_len: 64,
                ..v6
            },
            &link,
            72,
            false
        ));
        // On a kernel with IFA_PROTO only the protocol (or the IPv4 label) counts: an
        // administrator's `nodad` /128 is not ours.
        let admin_v6 = Addr {
            addr: IpAddr::from([
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            ]),
            prefix_len: 128,
            flags: IFA_F_NODAD,
            ..base.clone()
        };
        assert!(!is_ours_with(&admin_v6, &link, 72, true));
        assert!(is_ours_with(
            &Addr {
                proto: Some(72),
                ..admin_v6
            },
            &link,
            72,
            true
        ));
        assert!(release_at_least("6.18.44-fc-v509", 6, 1));
        assert!(release_at_least("6.1.0-21-amd64", 6, 1));
        assert!(!release_at_least("5.10.0-30-amd64", 6, 1));
        assert!(!release_at_least("garbage", 6, 1));
    }

    #[test]
    fn config_parses_from_toml() {
        let c: KernelConfig = toml::from_str(
            "mode = \"route\"\ntable = 100\nroute_device = \"lo\"\nprotocol = 72\nnetns = \"/run/netns/lb\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.mode, KernelMode::Route);
        assert_eq!(
            c.netns.as_deref(),
            Some(std::path::Path::new("/run/netns/lb"))
        );
        assert_eq!(c.interface, DEFAULT_INTERFACE);
        assert!(c.validate().is_ok());
        let d: KernelConfig = toml::from_str("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d, KernelConfig::default());
        let e = toml::from_str::<KernelConfig>("tabel = 100")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `tabel`"), "{e}");
        let e = toml::from_str::<KernelConfig>("mode = \"bgp\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `bgp`"), "{e}");
    }
}
