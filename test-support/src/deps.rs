//! The tools a test needs, installed when missing by `tests/deps.sh`: the one table that maps a
//! command to its Debian package, shared by `tests/all.sh` and every test. A tool that stays
//! missing is an error: tests fail, they never skip.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// `tests/deps.sh` of this workspace.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/deps.sh")
}

/// Makes sure every tool in `names` is installed (a command of `tests/deps.sh`'s table, or
/// `yaml` for the python3 module), installing the missing ones with apt-get (which needs root).
/// The error quotes what `tests/deps.sh` said.
pub fn ensure(names: &[&str]) -> Result<(), crate::command::Error> {
    // Tests of one binary run on parallel threads: one apt-get at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    crate::command::run(Command::new("bash").arg(script()).args(names)).map(drop)
}

/// [`ensure`], panicking with its error.
pub fn require(names: &[&str]) {
    if let Err(e) = ensure(names) {
        panic!("required tools {names:?}: {e}");
    }
}
