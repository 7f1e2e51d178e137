//! Booting the QEMU lab from a test harness: the one place that runs `tests/lab/lab.sh MODE`
//! with the binary under test, finds the target directory, and reads result files. Used by `tests/lab.rs`, `tests/lab_exporter.rs`,
//! `tests/lab_e2e.rs` and `tests/lab_cluster.rs`.
//!
//! The kernel is Debian's 6.1 cloud kernel unless `IPVS_HERALD_LAB_KERNEL` names another of
//! [`KERNELS`] (passed to lab.sh as `LAB_KERNEL`; its results are under
//! `target/lab/kernel-<version>/`). Which kernel actually ran is read from the guest
//! ([`kernel_release`]), never taken from the variable alone.

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

/// The kernels the lab boots: Debian bullseye's, bookworm's and trixie's cloud kernels.
pub const KERNELS: &[&str] = &["5.10", "6.1", "6.12"];

/// The kernel asked for (`IPVS_HERALD_LAB_KERNEL`, default 6.1); panics on anything else than
/// one of [`KERNELS`].
pub fn lab_kernel() -> &'static str {
    static K: OnceLock<&'static str> = OnceLock::new();
    K.get_or_init(|| {
        let want = std::env::var("IPVS_HERALD_LAB_KERNEL").unwrap_or_else(|_| "6.1".into());
        KERNELS
            .iter()
            .copied()
            .find(|k| *k == want)
            .unwrap_or_else(|| panic!("IPVS_HERALD_LAB_KERNEL={want}: not one of {KERNELS:?}"))
    })
}

/// `target/lab` for 6.1, `target/lab/kernel-<version>` for the others (lab.sh's `LAB_OUT`).
pub fn lab_out(target: &Path) -> PathBuf {
    match lab_kernel() {
        "6.1" => target.join("lab"),
        k => target.join("lab").join(format!("kernel-{k}")),
    }
}

/// The guest's `uname -r`, recorded by the VM next to the scenario results (`results` is
/// `…/results/scenarios`; the file is `…/results/kernel-release.txt`). Panics when it is
/// missing or does not belong to the kernel asked for.
pub fn kernel_release(results: &Path) -> String {
    let top = results.parent().unwrap_or(results);
    let release = read(top, "kernel-release.txt").trim().to_string();
    let want = lab_kernel();
    assert!(
        release.starts_with(&format!("{want}.")),
        "the guest ran kernel {release}, but IPVS_HERALD_LAB_KERNEL asks for {want} ({})",
        top.display()
    );
    release
}

/// The guest kernel's (major, minor), from [`kernel_release`].
pub fn kernel_version(results: &Path) -> (u32, u32) {
    let release = kernel_release(results);
    let mut it = release.split(['.', '-', '+']).map(|p| p.parse::<u32>());
    match (it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b))) => (a, b),
        _ => panic!("cannot read a version from the guest's uname -r {release:?}"),
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

/// Boot the lab once in `mode` (`run`, `e2e`, …) on [`lab_kernel`] and return
/// `<lab_out>/<results>`, or, when the environment variable `reuse_env` names a directory,
/// return that without booting (for iterating on the assertions over an existing run).
/// `console` is the console log, relative to [`lab_out`], named in the error.
pub fn boot(mode: &str, reuse_env: &str, results: &str, console: &str) -> Result<PathBuf, String> {
    boot_with(
        mode,
        reuse_env,
        results,
        console,
        Path::new(env!("CARGO_BIN_EXE_ipvs-herald")),
    )
}

/// [`boot`] with `herald` as the binary in the guest instead of the one this test was built with
/// (`tests/lab_cluster.rs` boots the release build it measures).
pub fn boot_with(
    mode: &str,
    reuse_env: &str,
    results: &str,
    console: &str,
    herald: &Path,
) -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var(reuse_env) {
        eprintln!("lab: {reuse_env} set, checking existing results in {dir} (no boot)");
        return Ok(PathBuf::from(dir));
    }
    let target = target_dir()?;
    let script = repo().join("tests/lab/lab.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(mode)
        .env("LAB_HERALD_BIN", herald)
        .env("LAB_TARGET", &target)
        .env("LAB_KERNEL", lab_kernel())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!(
            "{} {mode} failed ({status}); see its messages above and {}",
            script.display(),
            lab_out(&target).join(console).display()
        ));
    }
    Ok(lab_out(&target).join(results))
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
