//! The BGP speaker: announces the binary's route table to every configured peer.
//!
//! # Design choice
//! Wire format: `netgauze-bgp-pkt` 0.13 (messages, attributes, capabilities, NOTIFICATION
//! mapping of its parse errors). Session: our own FSM ([`fsm`]) rather than
//! `netgauze-bgp-speaker` 0.13. Reading its source (0.13.0): it has a full RFC 4271 FSM with
//! collision detection and jittered timers, but it is built around *receiving* (each peer
//! hands received UPDATEs to the application) and has no Adj-RIB-Out, no UPDATE packing, no
//! End-of-RIB or ROUTE-REFRESH re-send; its idle-hold is a fixed number of seconds (no
//! exponential backoff); its Cease / Administrative Shutdown carries no RFC 9003 message; and
//! its default connector is a plain `TcpStream::connect` (TCP-MD5 and GTSM would need our own
//! `ActiveConnect` and listener code anyway). The missing parts are the bulk of this issue and
//! would have to be built around its peer/connection tasks. Our FSM is pure (`State`/`Event`/`Timer`,
//! `step(event) -> actions`), tested without sockets, and driven
//! by one tokio task per peer ([`session`]). Messages on the wire are in [`packet`]; sockets
//! (connect, listener, TCP-MD5, GTSM) in [`network`].
//!
//! # Modules
//! - [`speaker`]: the speaker and its handle: starts, stops and reconfigures the
//!   sessions and the listener; the route table; peer status.
//! - [`tasks`]: where the tasks are spawned, with the diagram of what flows between them.
//! - [`session`]: one peer's session task: the I/O that carries out the FSM's actions.
//! - [`fsm`]: the pure RFC 4271 state machine; every decision of a session.
//! - [`packet`]: messages on the wire; [`network`]: sockets; [`rib`]: the route table and
//!   Adj-RIB-Out; [`ext_community`]: route target / route origin communities;
//!   [`nexthop`]: next-hop choice; [`reconfig`]: the pure reconfiguration diff;
//!   [`config`]: the configuration and its validation; [`metrics`].
//!
//! # Use
//! ```no_run
//! # async fn f(cfg: herald_announcer::bgp::BgpConfig) -> Result<(), herald_announcer::bgp::BgpError> {
//! use herald_announcer::bgp::{RouteAttrs, Speaker};
//! let mut registry = prometheus_client::registry::Registry::default();
//! let speaker = Speaker::start(cfg, &mut registry)?;
//! speaker.announce("192.0.2.80/32".parse().unwrap(), RouteAttrs::default());
//! speaker.withdraw("192.0.2.80/32".parse().unwrap());
//! speaker.shutdown("maintenance", std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! Every session keeps an Adj-RIB-Out and sends only the difference to the route table; the
//! table may change at any rate, sessions coalesce intermediate states.
//!
//! # Behaviour
//! - OPEN: MP-BGP for the configured families, ROUTE-REFRESH, 4-octet AS, optionally graceful
//!   restart (the peer may keep our routes for `restart_time` while we are away; see
//!   [`PeerConfig::graceful_restart`] for the trade-off). R=0, F=0 on a normal start; after a
//!   stop for restart ([`SpeakerHandle::stop_for_restart`], started again with
//!   [`Speaker::start_with`] within the restart time) R=1 and F=1 for every family, and the
//!   initial UPDATEs and End-of-RIB wait for [`SpeakerHandle::release_routes`]. No RFC 8538 N
//!   bit: every NOTIFICATION makes the peer flush. A capability the peer refuses with
//!   an Unsupported Capability NOTIFICATION is left out of the next OPEN (RFC 5492).
//! - UPDATEs: withdrawals first, then announcements grouped by attribute set, each message
//!   packed with as many NLRI as fit in 4096 bytes; End-of-RIB per family after the initial
//!   table; ROUTE-REFRESH re-sends the requested family.
//! - Received UPDATEs are validated and ignored (RFC 7606: attribute-value errors are
//!   treat-as-withdraw and counted; framing, NLRI and MP_REACH/MP_UNREACH errors reset).
//! - Shutdown withdraws everything, then sends Cease / Administrative Shutdown with the
//!   RFC 9003 message, bounded in time.
//! - BFD (`bfd` per peer, [`crate::bfd`]): one BFD session per peer, started with its BGP
//!   session; a BFD Down closes the session with Cease / BFD Down (RFC 9384) and it reconnects
//!   with the usual backoff; an Established session announces nothing until its BFD is Up; a
//!   peer's BFD AdminDown keeps the session (RFC 5882 §4.3.2).
//! - Metrics: see [`metrics`]; tracing: one `bgp_peer` span per session.
//! - Live reconfiguration: [`SpeakerHandle::reconfigure`] applies a new [`BgpConfig`] peer by
//!   peer (unchanged sessions untouched, removed peers closed with Cease / Peer De-configured,
//!   session-key changes reset with Cease / Other Configuration Change, next-hop changes re-sent
//!   as UPDATEs); the pure diff and its rules are in [`reconfig`]. Removed peers' metric series
//!   are removed.
//! - KeepaliveTimer and ConnectRetryTimer are jittered by a factor in [0.75, 1.0] (RFC 4271
//!   §10); the IdleHold backoff by [0.5, 1.0].
//!
//! # Limitations
//! - Connection collisions (RFC 4271 §6.8) are only possible, and resolved, for active peers
//!   with `accept_incoming`; otherwise an active peer is only connected to (its incoming
//!   connections are refused), a passive peer is only accepted from.
//! - No extended messages (RFC 8654), ADD-PATH or enhanced route refresh.
//! - ConnectRetry is 30 s ([`session::CONNECT_RETRY`], jittered); failures back off
//!   exponentially (configurable `connect_retry`).
//! - A peer reset by reconfiguration starts a fresh session task: capabilities the peer had
//!   refused (RFC 5492) are offered again once.

pub mod config;
mod duration;
pub mod error;
pub mod ext_community;
pub mod fsm;
pub mod metrics;
pub mod network;
pub mod nexthop;
pub mod packet;
pub mod reconfig;
pub mod rib;
pub mod session;
pub(crate) mod sockopt;
pub mod speaker;
pub mod tasks;
#[cfg(any(test, feature = "testing"))]
pub mod testutil;

pub use config::{Backoff, BgpConfig, Family, GracefulRestart, NextHop, PeerConfig};
pub use error::BgpError;
pub use ext_community::{ExtAdmin, ExtCommunityError, ExtKind, ExtendedCommunity};
pub use fsm::State;
pub use reconfig::{PeerChange, Plan};
pub use rib::{Origin, RouteAttrs, RouteTable};
pub use session::InitialHold;
pub use speaker::{
    GracefulStart, ListenerChange, PeerStatus, ReconfigureReport, Speaker, SpeakerHandle,
    RECONFIGURE_STOP_TIMEOUT,
};
