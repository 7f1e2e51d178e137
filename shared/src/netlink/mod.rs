//! The generic-netlink reader: the main source of IPVS state.
//!
//! [`codec`] (attributes <-> model, request builders) and [`frame`] (`nlmsghdr` framing) are
//! pure and unit-tested with bytes; [`io`] talks to the kernel through `neli`'s netlink socket. [`consts`] holds the uapi numbers.

pub mod codec;
pub mod consts;
pub mod frame;
pub mod io;

pub use io::{Capture, IpvsNetlink};
