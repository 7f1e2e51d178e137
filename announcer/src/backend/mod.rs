//! Route backends other than the BGP speaker, and the VIP-address primitives.
//!
//! The control loop ([`crate::runtime`]) turns health and drains into ordered
//! [`RouteAction`]s and hands them to a
//! [`RouteSink`]. This module provides:
//!
//! * [`KernelBackend`]: for sites where a local routing daemon (BIRD, FRR) runs OSPF — or BGP
//!   itself. Announcing installs the VIP in the kernel — as an address on a dummy interface or
//!   as a route in a dedicated routing table, both marked as ours — and the daemon
//!   redistributes it. Working daemon configurations: `config/bird-ospf.conf`,
//!   `config/frr-ospf.conf`, `config/bird-bgp-redistribute.conf`,
//!   `config/frr-bgp-redistribute.conf` (all exercised by `announcer/tests/ospf.rs`).
//! * [`VipAddresses`]: add/remove ipvs-herald's VIP addresses on an interface
//!   (`vip_address = "manage"`), and list the host's addresses
//!   ([`LocalAddrs`], for `vip_address = "require"`).
//! * [`WithVipAddresses`]: wraps any backend (the BGP speaker) so that the address actions go to
//!   a [`VipAddresses`] and the route actions to the wrapped backend.
//!
//! # Ordering rule when the daemon also manages the VIP address
//!
//! IPVS only accepts traffic for a VIP that is a local address. When ipvs-herald itself puts the
//! VIP on an interface *and* announces it through a route (the BGP speaker, or the kernel
//! backend in `route` mode), the address must be present whenever the route is out there, or
//! routers send traffic into a black hole:
//!
//! 1. **announce**: add the address first ([`VipAddresses::add`] /
//!    `RouteAction::AddAddress`), then announce;
//! 2. **withdraw**: withdraw first, then remove the address ([`VipAddresses::remove`] /
//!    `RouteAction::RemoveAddress`) — ideally after the routers have converged.
//!
//! [`crate::group`] emits the actions in that order; the backends here carry each out as told.
//! In the kernel backend's `address` mode the address *is* the announcement, so there is nothing
//! to order (and withdrawing removes the local VIP too: keep the VIP on `lo` as well, e.g. from
//! keepalived, if IPVS must keep serving established connections after a withdrawal).

pub mod kernel;
mod rtnl;

use std::net::IpAddr;
use std::sync::Arc;

use crate::group::RouteAction;
use crate::runtime::{BoxFuture, LocalAddrs, RouteSink};

pub use kernel::{KernelBackend, KernelConfig, KernelError, KernelMode, Outcome, VipAddresses};

impl RouteSink for KernelBackend {
    /// `Announce`/`Withdraw` install/remove the VIP per [`KernelMode`] (`attrs.med` becomes the
    /// route's metric in `route` mode; communities and the other BGP attributes have no kernel
    /// equivalent and are ignored). `AddAddress`/`RemoveAddress` manage the VIP address on the
    /// named interface, creating a dummy interface when it is missing.
    fn apply<'a>(&'a self, action: &'a RouteAction) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            match action {
                RouteAction::Announce { prefix, attrs } => {
                    self.announce_vip(*prefix, attrs.med).await.map(drop)
                }
                RouteAction::Withdraw { prefix } => self.withdraw_vip(*prefix).await.map(drop),
                RouteAction::AddAddress { prefix, interface } => {
                    self.addresses().add(interface, *prefix).await.map(drop)
                }
                RouteAction::RemoveAddress { prefix, interface } => {
                    remove_managed(self.addresses(), interface, *prefix).await
                }
            }
            .map_err(|e| e.to_string())
        })
    }
}

/// `RemoveAddress` for `vip_address = "manage"`: the route is already withdrawn, so an address
/// that someone else configured (not ours) is left in place with a warning, not an error.
async fn remove_managed(
    addrs: &VipAddresses,
    interface: &str,
    prefix: ipnet::IpNet,
) -> Result<(), KernelError> {
    match addrs.remove(interface, prefix).await {
        Ok(_) => Ok(()),
        Err(KernelError::Foreign(what, _)) => {
            tracing::warn!(
                vip = %prefix,
                interface,
                "{what} was configured by someone else; leaving it in place"
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A backend whose address actions are carried out by a [`VipAddresses`], and whose route
/// actions go to the wrapped backend (e.g. the BGP speaker, which has no business with
/// interface addresses).
#[derive(Clone)]
pub struct WithVipAddresses {
    inner: Arc<dyn RouteSink>,
    addrs: VipAddresses,
}

impl std::fmt::Debug for WithVipAddresses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithVipAddresses")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl WithVipAddresses {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn RouteSink>, addrs: VipAddresses) -> Self {
        WithVipAddresses { inner, addrs }
    }
}

impl RouteSink for WithVipAddresses {
    fn apply<'a>(&'a self, action: &'a RouteAction) -> BoxFuture<'a, Result<(), String>> {
        match action {
            RouteAction::AddAddress { prefix, interface } => Box::pin(async move {
                self.addrs
                    .add(interface, *prefix)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            RouteAction::RemoveAddress { prefix, interface } => Box::pin(async move {
                remove_managed(&self.addrs, interface, *prefix)
                    .await
                    .map_err(|e| e.to_string())
            }),
            RouteAction::Announce { .. } | RouteAction::Withdraw { .. } => self.inner.apply(action),
        }
    }
}

impl LocalAddrs for VipAddresses {
    /// Every address configured in the backend's network namespace (one rtnetlink dump; the
    /// control loop calls this on its blocking pool). Addresses that failed IPv6 duplicate
    /// address detection are left out: they do not receive traffic.
    fn local_addrs(&self) -> Result<Vec<IpAddr>, String> {
        self.local_addresses_blocking().map_err(|e| e.to_string())
    }
}
