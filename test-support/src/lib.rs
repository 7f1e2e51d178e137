//! Helpers the integration tests of every crate share, so that each exists once: the Debian
//! packages a test needs (through `tests/deps.sh`, the one table of tools and packages), a free
//! loopback port, self-signed certificates made with `openssl`, a network namespace deleted on
//! drop, a long-running process with its log, and guards that kill a child process (or its
//! whole process group) on drop.
//!
//! Only `[dev-dependencies]` name this crate (`publish = false`): nothing here reaches a
//! release binary, and `tests/package.sh` checks that it does not.

// Test code: an unwrap that fails, fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod deps;
pub mod net;
pub mod netns;
pub mod process;
pub mod tls;

pub use deps::{ensure, require};
pub use net::free_port;
pub use netns::Netns;
pub use nix::sys::signal::Signal;
pub use process::{Daemon, KillOnDrop, ProcessGroup};

use std::process::{Command, ExitStatus, Stdio};

/// Why a helper command failed; the text names the command and quotes its output.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program could not be started (not installed, not executable).
    #[error("cannot run {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// It ran and exited unsuccessfully.
    #[error("{command} failed ({status}): {output}")]
    Failed {
        command: String,
        status: ExitStatus,
        /// Its stderr, then its stdout, trimmed.
        output: String,
    },
    /// A system call failed (`setns`, `kill`).
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::errno::Errno,
    },
    /// A file could not be opened.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A process of the test is not in the state asked for.
    #[error("{name} {what}")]
    Process { name: String, what: String },
}

/// Runs `cmd` to completion with stdin closed and returns its stdout; a non-zero exit is an
/// [`Error::Failed`] quoting stderr and stdout.
pub fn run(cmd: &mut Command) -> Result<String, Error> {
    let command = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(Error::Failed {
            command,
            status: out.status,
            output: format!(
                "{} {}",
                String::from_utf8_lossy(&out.stderr).trim(),
                stdout.trim()
            )
            .trim()
            .to_string(),
        });
    }
    Ok(stdout)
}
