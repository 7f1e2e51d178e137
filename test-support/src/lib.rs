//! Helpers the integration tests of every crate share, so that each exists once: the Debian
//! packages a test needs (through `tests/deps.sh`, the one table of tools and packages), a free
//! loopback port, self-signed certificates made with `openssl`, a network namespace deleted on
//! drop, FRR routing daemons in such a namespace, a long-running process with its log, and guards that kill a child process (or its
//! whole process group) on drop.
//!
//! Only `[dev-dependencies]` name this crate (`publish = false`): nothing here reaches a
//! release binary, and `tests/package.sh` checks that it does not.

// Test code: an unwrap that fails, fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod command;
pub mod deps;
pub mod frr;
pub mod net;
pub mod netns;
pub mod process;
pub mod tls;

pub use command::{run, Error};
pub use deps::{ensure, require};
pub use frr::Frr;
pub use net::free_port;
pub use netns::Netns;
pub use nix::sys::signal::Signal;
pub use process::{Daemon, KillOnDrop, ProcessGroup};
