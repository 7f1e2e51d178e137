//! BFD (RFC 5880 asynchronous mode; RFC 5881 single hop, RFC 5883 multihop) for the BGP speaker: fast detection
//! of a dead peer or path, so a frozen director's routes leave the router in under a second
//! instead of a hold time.
//!
//! # Design
//! Modelled on holo (holo-bfd): the packet codec is independent of sessions, the state machine
//! is pure (`State`/`Event`/`Timer`, `step(event) -> actions`, like our BGP FSM in
//! `crate::bgp::fsm`), sockets are in their own module, and each session is a tokio task.
//!
//! # Modules
//! - [`packet`]: the Control packet codec, independent of sessions (fuzzed in
//!   `announcer/fuzz`, target `bfd`).
//! - [`fsm`]: the pure state machine.
//! - [`network`]: sockets (single hop: port 3784, TTL 255 sent and required; multihop: port
//!   4784, TTL 255 sent, a configured minimum required).
//! - [`session`]: one session's task around the FSM.
//! - [`service`]: the shared receive sockets and the sessions ([`Bfd`]).
//! - [`metrics`].
//!
//! # Limitations
//! - No authentication (packets with the A bit are dropped), no Echo function, no Demand mode
//!   on our side.
//! - The receive sockets bind ports 3784 and 4784 on all addresses (each when its first
//!   session starts): a BFD daemon on the same host (BIRD, FRR `bfdd`) cannot run beside it.
//! - Sessions are keyed by the peer's address, multihop ones too: one session per BGP peer,
//!   and a multihop peer is one address (RFC 5883 §3 demultiplexes by the address pair).
//! - The C bit is never set: BFD lives in the BGP speaker's process (RFC 5882 §4.3).

pub mod fsm;
pub mod metrics;
pub mod network;
pub mod packet;
pub mod service;
pub mod session;

pub use fsm::Params;
pub use network::{Hop, DEFAULT_MIN_TTL, MULTIHOP_PORT};
pub use packet::State;
pub use service::{Bfd, BfdError, SessionHandle};
pub use session::{Snapshot, Status};
