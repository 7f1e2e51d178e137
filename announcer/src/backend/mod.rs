//! The kernel route backend and the VIP-address primitives.
//!
//! The control loop ([`crate::runtime`]) turns health and drains into ordered
//! [`RouteAction`](crate::group::RouteAction)s and hands them to a
//! [`RouteSink`](crate::runtime::RouteSink) ([`crate::sinks`]): the BGP speaker, or this
//! module's [`KernelBackend`]. This module provides:
//!
//! * [`KernelBackend`]: for sites where a local routing daemon (BIRD, FRR) runs OSPF — or BGP
//!   itself. Announcing installs the VIP in the kernel — as an address on a dummy interface or
//!   as a route in a dedicated routing table, both marked as ours — and the daemon
//!   redistributes it. Working daemon configurations: `config/bird-ospf.conf`,
//!   `config/frr-ospf.conf`, `config/bird-bgp-redistribute.conf`,
//!   `config/frr-bgp-redistribute.conf` (all exercised by `announcer/tests/ospf.rs`).
//! * [`VipAddresses`]: add/remove ipvs-herald's VIP addresses on an interface
//!   (`vip_address = "manage"`), with either route sink.
//!
//! # Ordering rule when the daemon also manages the VIP address
//!
//! IPVS only accepts traffic for a VIP that is a local address. When ipvs-herald itself puts the
//! VIP on an interface *and* announces it through a route (the BGP speaker, or the kernel
//! backend in `route` mode), the address must be present whenever the route is out there, or
//! routers send traffic into a black hole:
//!
//! 1. **announce**: add the address first ([`VipAddresses::add`], `RouteAction::AddAddress`),
//!    then announce;
//! 2. **withdraw**: withdraw first, then remove the address ([`VipAddresses::remove`],
//!    `RouteAction::RemoveAddress`) — ideally after the routers have converged.
//!
//! [`crate::group`] emits the actions in that order and the sinks carry each out as told. In the
//! kernel backend's `address` mode the address *is* the announcement, so there is nothing to
//! order (and withdrawing removes the local VIP too: keep the VIP on `lo` as well, e.g. from
//! keepalived, if IPVS must keep serving established connections after a withdrawal).

pub mod kernel;
mod rtnl;

pub use kernel::{KernelBackend, KernelConfig, KernelError, KernelMode, Outcome, VipAddresses};

/// Attributes of one kernel announcement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteAttrs {
    /// `route` mode: the route's priority (`ip route … metric N`), from the VIP group's `med` for
    /// its current state. The shipped BIRD configurations turn it into the OSPF external metric
    /// and the BGP MED (a high one while draining de-prefers this director). `address` mode
    /// ignores it.
    pub metric: Option<u32>,
    /// RFC 1997 communities of the state. The kernel has no place for them, so they are ignored
    /// (tag routes in the routing daemon's export filter instead).
    pub communities: Vec<u32>,
}
