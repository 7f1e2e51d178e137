//! Running a helper command to completion, and the error every helper of this crate returns.
//! A leaf: the other modules import it, it imports none of them.

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
