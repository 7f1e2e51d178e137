//! ipvs-herald's VIP addresses on an interface: adding, removing and listing them
//! ([`VipAddresses`]), and the marks that say an address is ours (address protocol, IPv4 label,
//! and on old kernels the IPv6 `nodad` /128). The kernel backend's `address` mode and
//! `vip_address = "manage"` both use these primitives; the socket calls run on tokio's blocking
//! pool, one at a time per socket.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use ipnet::IpNet;
use tracing::{debug, info, warn};

use super::config::IFNAMSIZ_MAX;
use super::error::KernelError;
use super::rtnl::{
    Addr, AddrSpec, IpFamily, Link, Rtnl, IFA_F_DADFAILED, IFA_F_NODAD, IFA_F_NOPREFIXROUTE,
};

/// Suffix of the IPv4 address label: `herald0` → `herald0:vip`.
pub const LABEL_SUFFIX: &str = "vip";

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

/// One rtnetlink socket, shared by the backend and its address primitives.
pub(super) type Shared = Arc<Mutex<Rtnl>>;

/// Runs `f` with the socket on tokio's blocking pool.
pub(super) async fn blocking<T, F>(rtnl: &Shared, f: F) -> Result<T, KernelError>
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

pub(super) fn net_of(addr: IpAddr, len: u8) -> Option<IpNet> {
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

    pub(super) fn with_socket(rtnl: Shared, protocol: u8, noprefixroute: bool) -> Self {
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

pub(super) fn find_link(r: &mut Rtnl, name: &str) -> Result<Link, KernelError> {
    r.link_by_name(name)?
        .ok_or_else(|| KernelError::NoSuchInterface(name.to_string(), ""))
}

/// Finds (or, with `create`, creates) the interface and makes sure an owned dummy is up.
/// `require_dummy`: an existing interface of another kind is refused (it was meant to be ours).
pub(super) fn ensure_link(
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

pub(super) fn add_addr(
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

pub(super) fn del_addr(
    r: &mut Rtnl,
    link: &Link,
    addr: IpAddr,
    protocol: u8,
) -> Result<Outcome, KernelError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
