//! Where the control loop's [`RouteAction`]s go: the [`RouteSink`] trait and its two
//! implementations, the BGP speaker ([`bgp`]) and kernel routes for OSPF sites ([`kernel`], which
//! also manages VIP addresses for either), plus how the loop learns the host's addresses
//! ([`LocalAddrs`]).
//!
//! The loop emits actions already in the safe order (address before announce, withdraw before
//! address removal); a sink carries each out and reports failures, it never reorders.

pub mod bgp;
pub mod kernel;

use crate::group::RouteAction;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

pub use bgp::{bgp_attrs, BgpSink, InterfaceAddrs};

/// A boxed future, for object-safe async traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where route actions go: the BGP speaker's route table, kernel routes for OSPF, or both.
pub trait RouteSink: Send + Sync {
    /// Carry out one action. An error is logged and counted; the loop goes on (the next change
    /// is applied afresh).
    fn apply<'a>(&'a self, action: &'a RouteAction) -> BoxFuture<'a, Result<(), String>>;

    /// Wait until the work that `apply` left running in the background (a managed address
    /// removal waiting out its linger) is done. The loop calls it once everything is withdrawn
    /// at shutdown; the caller bounds it in time.
    fn settle(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// The addresses configured on this host (for `vip_address = "require"`).
pub trait LocalAddrs: Send + Sync {
    fn local_addrs(&self) -> Result<Vec<IpAddr>, String>;
}
