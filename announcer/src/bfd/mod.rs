//! BFD (RFC 5880 asynchronous mode, RFC 5881 single hop) for the BGP speaker: fast detection
//! of a dead peer or path, so a frozen director's routes leave the router in under a second
//! instead of a hold time.
//!
//! # Modules
//! - [`packet`]: the Control packet codec, independent of sessions (fuzzed in
//!   `announcer/fuzz`).
//! - [`fsm`]: the pure state machine, `step(event) -> actions`, like the BGP FSM.

pub mod fsm;
pub mod network;
pub mod packet;
