//! Where the control loop's [`RouteAction`](crate::group::RouteAction)s go: the [`RouteSink`]
//! trait and its two implementations, the BGP speaker ([`bgp`]) and kernel routes for OSPF sites
//! ([`kernel`], which also manages VIP addresses for either), plus how the loop learns the host's
//! addresses ([`LocalAddrs`]). The traits and their errors are defined in [`traits`] and
//! re-exported here.
//!
//! The loop emits actions already in the safe order (address before announce, withdraw before
//! address removal); a sink carries each out and reports failures, it never reorders.

pub mod bgp;
pub mod kernel;
pub mod traits;

pub use bgp::{bgp_attrs, BgpSink, InterfaceAddrs};
pub use traits::{BoxFuture, LocalAddrs, LocalAddrsError, RouteSink, SinkError};
