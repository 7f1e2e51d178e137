//! The generic-netlink reader: the main source of IPVS state.
//!
//! [`attr`] (attribute walking), [`codec`] (attributes -> model), [`request`] (request builders)
//! and [`frame`] (`nlmsghdr` framing) are pure and unit-tested with bytes; [`io`] talks to the
//! kernel through `neli`'s netlink socket and owns the I/O error, [`NetlinkError`]. [`consts`]
//! holds the uapi numbers.

pub mod attr;
pub mod codec;
pub mod consts;
pub mod frame;
pub mod io;
pub mod request;

pub use io::{Capture, IpvsNetlink, NetlinkError};
