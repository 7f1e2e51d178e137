//! The kernel sink (routes or addresses for a local BIRD/FRR to redistribute), and the
//! VIP-address primitives.
//!
//! The control loop ([`crate::control`]) turns health and drains into ordered
//! [`RouteAction`]s and hands them to a [`RouteSink`]. This module provides ([`config`],
//! [`error`], [`addresses`] and [`routes`] hold the pieces; `rtnl` is the socket):
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
//!    `RouteAction::RemoveAddress`) after the routers have had time to act on the withdrawal:
//!    the group's `address_linger` (default 1 s). Without it the address can go a few tens of
//!    milliseconds *before* a router has processed the UPDATE (measured in the e2e lab), and
//!    the packets it still forwards are dropped.
//!
//! [`crate::group`] emits the actions in that order; [`WithVipAddresses`] carries out the
//! removal `linger` later, cancels it when the prefix is announced again meanwhile, and
//! [`RouteSink::settle`] waits for the removals still pending (at shutdown).
//! In the kernel backend's `address` mode the address *is* the announcement, so there is nothing
//! to order (and withdrawing removes the local VIP too: keep the VIP on `lo` as well, e.g. from
//! keepalived, if IPVS must keep serving established connections after a withdrawal).

pub mod addresses;
pub mod config;
pub mod error;
pub mod routes;
mod rtnl;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

use super::traits::{BoxFuture, LocalAddrs, LocalAddrsError, RouteSink, SinkError};
use crate::group::RouteAction;

pub use addresses::{Outcome, VipAddresses};
pub use config::{KernelConfig, KernelMode};
pub use error::KernelError;
pub use routes::KernelBackend;

impl RouteSink for KernelBackend {
    /// `Announce`/`Withdraw` install/remove the VIP per [`KernelMode`] (`attrs.med` becomes the
    /// route's metric in `route` mode; communities and the other BGP attributes have no kernel
    /// equivalent and are ignored). `AddAddress`/`RemoveAddress` manage the VIP address on the
    /// named interface, creating a dummy interface when it is missing.
    fn apply<'a>(&'a self, action: &'a RouteAction) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            match action {
                RouteAction::Announce { prefix, attrs } => {
                    self.announce_vip(*prefix, attrs.med).await.map(drop)
                }
                RouteAction::Withdraw { prefix } => self.withdraw_vip(*prefix).await.map(drop),
                RouteAction::AddAddress { prefix, interface } => {
                    self.addresses().add(interface, *prefix).await.map(drop)
                }
                RouteAction::RemoveAddress {
                    prefix, interface, ..
                } => remove_managed(self.addresses(), interface, *prefix).await,
            }
            .map_err(SinkError::from)
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
/// interface addresses). Removals wait out their `linger` in a task of their own, so one
/// group's linger never holds up the control loop.
#[derive(Clone)]
pub struct WithVipAddresses {
    inner: Arc<dyn RouteSink>,
    addrs: VipAddresses,
    pending: Arc<Pending>,
}

/// Address removals waiting out their linger: (interface, prefix) → generation. A removal is
/// carried out only if its generation is still the current one when the linger ends.
#[derive(Default)]
struct Pending {
    by_addr: Mutex<HashMap<(String, IpNet), u64>>,
    next: AtomicU64,
    changed: tokio::sync::Notify,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, IpNet), u64>> {
        self.by_addr.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a removal of `key`; returns its generation.
    fn start(&self, key: (String, IpNet)) -> u64 {
        let g = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(key, g);
        g
    }

    /// Cancels a pending removal of `key` (it is being added again). True if one was pending.
    fn cancel(&self, key: &(String, IpNet)) -> bool {
        let was = self.lock().remove(key).is_some();
        if was {
            self.changed.notify_waiters();
        }
        was
    }

    /// True (and forgets it) when generation `g` is still the pending removal of `key`.
    fn take_if_current(&self, key: &(String, IpNet), g: u64) -> bool {
        let mut m = self.lock();
        if m.get(key) == Some(&g) {
            m.remove(key);
            true
        } else {
            false
        }
    }

    fn done(&self) {
        self.changed.notify_waiters();
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl std::fmt::Debug for WithVipAddresses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithVipAddresses")
            .field("addrs", &self.addrs)
            .field("pending_removals", &self.pending.lock().len())
            .finish_non_exhaustive()
    }
}

impl WithVipAddresses {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn RouteSink>, addrs: VipAddresses) -> Self {
        WithVipAddresses {
            inner,
            addrs,
            pending: Arc::default(),
        }
    }

    /// The number of address removals still waiting out their linger.
    pub fn pending_removals(&self) -> usize {
        self.pending.lock().len()
    }
}

impl RouteSink for WithVipAddresses {
    fn apply<'a>(&'a self, action: &'a RouteAction) -> BoxFuture<'a, Result<(), SinkError>> {
        match action {
            RouteAction::AddAddress { prefix, interface } => Box::pin(async move {
                if self.pending.cancel(&(interface.clone(), *prefix)) {
                    tracing::debug!(vip = %prefix, interface, "announced again within its linger: address kept");
                }
                self.addrs
                    .add(interface, *prefix)
                    .await
                    .map(drop)
                    .map_err(SinkError::from)
            }),
            RouteAction::RemoveAddress {
                prefix,
                interface,
                linger,
            } => {
                let key = (interface.clone(), *prefix);
                if linger.is_zero() {
                    self.pending.cancel(&key);
                    return Box::pin(async move {
                        remove_managed(&self.addrs, interface, *prefix)
                            .await
                            .map_err(SinkError::from)
                    });
                }
                Box::pin(async move {
                    let g = self.pending.start(key.clone());
                    let (addrs, pending, linger) =
                        (self.addrs.clone(), self.pending.clone(), *linger);
                    tokio::spawn(async move {
                        tokio::time::sleep(linger).await;
                        if pending.take_if_current(&key, g) {
                            let (interface, prefix) = key;
                            match remove_managed(&addrs, &interface, prefix).await {
                                Err(e) => {
                                    tracing::warn!(vip = %prefix, interface, error = %e, "cannot remove the managed VIP address")
                                }
                                Ok(()) => {
                                    tracing::info!(vip = %prefix, interface, ?linger, "managed VIP address removed after its linger")
                                }
                            }
                        }
                        pending.done();
                    });
                    Ok(())
                })
            }
            RouteAction::Announce { .. } | RouteAction::Withdraw { .. } => self.inner.apply(action),
        }
    }

    fn settle(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let changed = self.pending.changed.notified();
                if self.pending.is_empty() {
                    break;
                }
                changed.await;
            }
            self.inner.settle().await;
        })
    }
}

impl LocalAddrs for VipAddresses {
    /// Every address configured in the backend's network namespace (one rtnetlink dump; the
    /// control loop calls this on its blocking pool). Addresses that failed IPv6 duplicate
    /// address detection are left out: they do not receive traffic.
    fn local_addrs(&self) -> Result<Vec<IpAddr>, LocalAddrsError> {
        Ok(self.local_addresses_blocking()?)
    }
}
