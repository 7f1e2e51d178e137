//! Route backends: how an announced VIP reaches the upstream routers.
//!
//! The health policy ([`crate::health`]) decides *whether* a VIP is announced; a
//! [`RouteBackend`] makes it so. Two implementations exist:
//!
//! * the BGP speaker (default, elsewhere in this crate), which sends UPDATEs itself;
//! * the [`kernel::KernelBackend`] for sites where a local routing daemon (BIRD, FRR) runs OSPF or
//!   BGP: announcing installs the VIP in the kernel — as an address on a dummy interface or as a
//!   route in a dedicated routing table, both marked as ours — and the daemon redistributes it.
//!   Working daemon snippets are in `config/bird-ospf.conf` and `config/frr-ospf.conf`.
//!
//! The trait is deliberately small and knows nothing of BGP types, so the daemon can hold a
//! `Box<dyn RouteBackend>` chosen from configuration.
//!
//! # Ordering rule when the daemon also manages the VIP address
//!
//! IPVS only accepts traffic for a VIP that is a local address. When ipvs-herald itself puts the
//! VIP on an interface (with [`kernel::VipAddresses`]) *and* announces it through a route
//! (the BGP backend, or the kernel backend in `route` mode), the caller must keep the address
//! present whenever the route is out there, or routers send traffic into a black hole:
//!
//! 1. **announce**: add the address first ([`kernel::VipAddresses::add`]), then
//!    [`RouteBackend::announce`];
//! 2. **withdraw**: [`RouteBackend::withdraw`] first, then remove the address
//!    ([`kernel::VipAddresses::remove`]) — ideally after the routers have converged.
//!
//! In the kernel backend's `address` mode the address *is* the announcement, so there is nothing
//! to order.

use std::future::Future;
use std::pin::Pin;

use ipnet::IpNet;

pub mod kernel;
mod rtnl;

pub use kernel::{KernelBackend, KernelConfig, KernelError, KernelMode, Outcome, VipAddresses};

/// Attributes of one announcement. Each backend uses what it can and ignores the rest
/// (documented per field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteAttrs {
    /// BGP: MULTI_EXIT_DISC. Kernel backend (`route` mode): the route's priority (`metric`),
    /// which a routing daemon may map to its own metric.
    pub metric: Option<u32>,
    /// BGP: RFC 1997 communities, as `(asn << 16) | value`. Ignored by the kernel backend (tag
    /// the routes in the routing daemon's export filter instead).
    pub communities: Vec<u32>,
}

/// Error of a route backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The kernel backend failed.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// Another backend (e.g. BGP) failed; `backend` names it.
    #[error("{backend} backend: {source}")]
    Other {
        /// Name of the backend, e.g. `bgp`.
        backend: &'static str,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Future returned by [`RouteBackend`] methods (boxed so the trait stays object-safe).
pub type BackendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send + 'a>>;

/// How a VIP is advertised to, and withdrawn from, the upstream routers.
///
/// Contract for implementations: both methods are idempotent (announcing twice equals once;
/// withdrawing what is not announced succeeds), and safe to call concurrently for different
/// prefixes.
pub trait RouteBackend: Send + Sync + std::fmt::Debug {
    /// Short name for logs and metrics (`bgp`, `kernel`).
    fn name(&self) -> &'static str;

    /// Starts advertising `prefix` (usually a /32 or /128 VIP).
    fn announce<'a>(&'a self, prefix: IpNet, attrs: &'a RouteAttrs) -> BackendFuture<'a>;

    /// Stops advertising `prefix`.
    fn withdraw(&self, prefix: IpNet) -> BackendFuture<'_>;
}
