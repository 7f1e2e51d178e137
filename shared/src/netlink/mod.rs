//! The generic-netlink reader: the main source of IPVS state.
//!
//! [`codec`] is pure (bytes <-> model, request builders) and unit-tested with bytes; [`io`]
//! talks to the kernel through a `neli` socket. [`consts`] holds the uapi numbers.

pub mod codec;
pub mod consts;
pub mod io;

pub use io::{Capture, IpvsNetlink};
