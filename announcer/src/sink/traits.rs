//! What the control loop needs from a sink, and what a sink can fail with: the [`RouteSink`] and
//! [`LocalAddrs`] traits and their errors ([`SinkError`], [`LocalAddrsError`]). A leaf module,
//! so the sinks ([`super::bgp`], [`super::kernel`]) implement the traits without importing the
//! module that re-exports them.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use herald_shared::netns::NetnsError;

use super::kernel::error::KernelError;
use crate::group::RouteAction;

/// A boxed future, for object-safe async traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a sink could not carry out a [`RouteAction`].
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The kernel refused or failed a route or address change.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// An address action reached a sink that does not manage addresses.
    #[error("the BGP sink does not manage addresses (wrap it in WithVipAddresses)")]
    AddressesNotManaged,
}

/// Why the host's addresses could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum LocalAddrsError {
    /// `getifaddrs(3)` failed (it reads the addresses over rtnetlink).
    #[error("netlink error: getifaddrs: {0}")]
    Getifaddrs(nix::errno::Errno),
    /// The listing could not run in its network namespace, or did not answer in time.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The kernel backend's rtnetlink dump failed.
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

/// Where route actions go: the BGP speaker's route table, kernel routes for OSPF, or both.
pub trait RouteSink: Send + Sync {
    /// Carry out one action. An error is logged and counted; the loop goes on (the next change
    /// is applied afresh).
    fn apply<'a>(&'a self, action: &'a RouteAction) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Wait until the work that `apply` left running in the background (a managed address
    /// removal waiting out its linger) is done. The loop calls it once everything is withdrawn
    /// at shutdown; the caller bounds it in time.
    fn settle(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// The addresses configured on this host (for `vip_address = "require"`).
pub trait LocalAddrs: Send + Sync {
    fn local_addrs(&self) -> Result<Vec<IpAddr>, LocalAddrsError>;
}
