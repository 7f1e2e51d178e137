//! Booting the QEMU lab from a test harness: the one place that runs `tests/lab/lab.sh MODE`
//! with the binary under test, finds the target directory, and reads result files. Used by `tests/lab.rs`, `tests/lab_exporter.rs` and
//! `tests/lab_e2e.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Held while a VM boots, so that two boots of one test binary (the scenario run and a serve
/// boot) never run at the same time on the shared cores.
pub static VM: Mutex<()> = Mutex::new(());

/// The scenario run's results (`lab.sh run`, or `IPVS_HERALD_LAB_RESULTS`), booted once per test
/// binary; panics with the reason when the run failed.
pub fn scenario_results() -> &'static Path {
    static RUN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        let _vm = VM.lock().unwrap_or_else(|p| p.into_inner());
        boot(
            "run",
            "IPVS_HERALD_LAB_RESULTS",
            "results/scenarios",
            "console.log",
        )
    });
    match run {
        Ok(p) => p,
        Err(e) => panic!("the lab VM run failed: {e}"),
    }
}

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo target directory the binary under test was built into (the lab caches its kernel,
/// initramfs and results below it).
pub fn target_dir() -> Result<PathBuf, String> {
    let bin = Path::new(env!("CARGO_BIN_EXE_ipvs-herald"));
    bin.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("cannot derive the target directory from {}", bin.display()))
}

/// Boot the lab once in `mode` (`run`, `e2e`, …) and return `target/lab/<results>`, or, when
/// the environment variable `reuse_env` names a directory, return that without booting (for
/// iterating on the assertions over an existing run). `console` is the console log, relative to
/// `target/lab`, named in the error.
pub fn boot(mode: &str, reuse_env: &str, results: &str, console: &str) -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var(reuse_env) {
        eprintln!("lab: {reuse_env} set, checking existing results in {dir} (no boot)");
        return Ok(PathBuf::from(dir));
    }
    let target = target_dir()?;
    let script = repo().join("tests/lab/lab.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(mode)
        .env("LAB_HERALD_BIN", env!("CARGO_BIN_EXE_ipvs-herald"))
        .env("LAB_TARGET", &target)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!(
            "{} {mode} failed ({status}); see its messages above and {}",
            script.display(),
            target.join("lab").join(console).display()
        ));
    }
    Ok(target.join("lab").join(results))
}

/// A result file's text; panics naming the file when it is missing.
pub fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
}

/// The result folder of scenario `name` under `results`, after checking that the scenario ran
/// and reported `ok` in the VM (panics with the end of its setup log otherwise).
pub fn scenario_ok(results: &Path, name: &str) -> std::path::PathBuf {
    let dir = results.join(name);
    assert!(
        dir.is_dir(),
        "scenario {name} did not run (no {})",
        dir.display()
    );
    assert_eq!(
        read(&dir, "status").trim(),
        "ok",
        "scenario {name} failed in the VM ({}/setup.log); it ends with:\n{}",
        dir.display(),
        tail(&read(&dir, "setup.log"), 25)
    );
    dir
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
