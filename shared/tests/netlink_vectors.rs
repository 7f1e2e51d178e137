//! Test vectors for the netlink codec: every file in `tests/vectors/` (captured from a kernel as
//! `.bin`, or hand-built as annotated `.hex`) must have a `.expected.json` and decode to exactly
//! it. The expected values come from outside the code under test: the independent Python decoder
//! `tests/vectors/oracle.py` (written from the kernel UAPI, cross-checked against the lab's
//! procfs captures and scenario scripts), ipvsadm's own output, or a hand-written value. See
//! `tests/vectors/README.md`.
//!
//! The same holds for the captures of every other kernel the lab boots,
//! `tests/data/kernel-<version>/netlink/` (Debian's 5.10 and 6.12; the 6.1 captures are in
//! `tests/vectors/`), each of which must be there.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_shared::model::AddressFamily;
use herald_shared::netlink::codec;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// The kernels besides 6.1 whose captures must be present, and the fewest vectors each holds
/// (what the lab's capture scenarios made: fewer means vectors were lost).
const OTHER_KERNELS: &[(&str, usize)] = &[("5.10", MIN_OTHER), ("6.12", MIN_OTHER)];
const MIN_OTHER: usize = 60;

/// Every vector directory with the fewest vectors it must hold: `tests/vectors` (the 9
/// hand-built vectors and the 68 captured from Debian's 6.1 kernel), then each other kernel's.
fn vector_dirs() -> Vec<(PathBuf, usize)> {
    let mut dirs = vec![(vectors_dir(), 77)];
    for (k, min) in OTHER_KERNELS {
        let d =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/kernel-{k}/netlink"));
        assert!(
            d.is_dir(),
            "{}: missing (tests/lab/lab.sh vectors with LAB_KERNEL={k})",
            d.display()
        );
        dirs.push((d, *min));
    }
    dirs
}

/// Hex bytes separated by whitespace, `#` comments to end of line.
fn parse_hex(text: &str, path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        for tok in code.split_ascii_whitespace() {
            let b = u8::from_str_radix(tok, 16).unwrap_or_else(|_| {
                panic!("{}:{}: {tok:?} is not a hex byte", path.display(), n + 1)
            });
            out.push(b);
        }
    }
    out
}

/// Decode one reply by its command name, as JSON.
fn decode(command: &str, payload: &[u8]) -> Result<Value, String> {
    let (_, _, attrs) = codec::split_genl(payload).map_err(|e| e.to_string())?;
    let v = match command {
        "get_service" => {
            serde_json::to_value(codec::decode_service_msg(attrs).map_err(|e| e.to_string())?)
        }
        "get_dest" => serde_json::to_value(
            codec::decode_dest_msg(attrs, AddressFamily::Inet)
                .or_else(|_| codec::decode_dest_msg(attrs, AddressFamily::Inet6))
                .map_err(|e| e.to_string())?,
        ),
        "get_info" => serde_json::to_value(codec::decode_info(attrs).map_err(|e| e.to_string())?),
        "get_config" => {
            serde_json::to_value(codec::decode_config(attrs).map_err(|e| e.to_string())?)
        }
        "get_daemon" => {
            serde_json::to_value(codec::decode_daemon_msg(attrs).map_err(|e| e.to_string())?)
        }
        "ctrl_getfamily" => {
            serde_json::to_value(codec::decode_family_id(attrs).map_err(|e| e.to_string())?)
        }
        other => return Err(format!("unknown command {other:?} in vector name")),
    };
    v.map_err(|e| e.to_string())
}

#[test]
fn every_vector_decodes_to_its_expected_value() {
    for (dir, min) in vector_dirs() {
        check_dir(&dir, min);
    }
}

fn check_dir(dir: &Path, min: usize) {
    let mut seen = 0;
    let mut compared = 0;
    let mut missing = Vec::new();
    let mut printed = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let bytes = if name.ends_with(".bin") {
            std::fs::read(&path).expect("read vector")
        } else if name.ends_with(".hex") {
            parse_hex(&std::fs::read_to_string(&path).expect("read vector"), &path)
        } else {
            continue;
        };
        let command = name.split('-').next().unwrap_or_default();
        let got = decode(command, &bytes)
            .unwrap_or_else(|e| panic!("{}: does not decode: {e}", path.display()));
        seen += 1;
        printed.push((name.clone(), got.clone()));
        let base = name.rsplit_once('.').map(|(b, _)| b).unwrap_or(&name);
        let expected_path = dir.join(format!("{base}.expected.json"));
        if expected_path.exists() {
            let want: Value = serde_json::from_str(
                &std::fs::read_to_string(&expected_path).expect("read expected"),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            assert_eq!(got, want, "{}", path.display());
            compared += 1;
        } else {
            missing.push(name.clone());
        }
        // Every decoder must also survive every truncation of a real message.
        for cut in 0..bytes.len() {
            let _ = decode(command, bytes.get(..cut).unwrap_or(&[]));
        }
    }
    eprintln!(
        "{}: {seen} vector(s) decoded, {compared} compared with an expected value",
        dir.display()
    );
    if std::env::var_os("HERALD_PRINT_VECTORS").is_some() {
        for (name, v) in &printed {
            eprintln!("{name}: {v}");
        }
    }
    assert!(
        missing.is_empty(),
        "{}: {} vector(s) without an expected value (write them with \
         `python3 shared/tests/vectors/oracle.py`, see tests/vectors/README.md): {}",
        dir.display(),
        missing.len(),
        missing.join(", ")
    );
    // Fewer means vectors were lost, not that there is less to check.
    assert!(
        seen >= min,
        "{}: expected at least {min} vectors, found {seen}",
        dir.display()
    );
    assert_eq!(compared, seen);
}

/// An expected file whose vector is gone would be a check that silently stopped running.
#[test]
fn every_expected_file_has_its_vector() {
    for (dir, _) in vector_dirs() {
        expected_files_have_vectors(&dir);
    }
}

fn expected_files_have_vectors(dir: &Path) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let orphans: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.strip_suffix(".expected.json").is_some_and(|base| {
                !names.contains(&format!("{base}.bin")) && !names.contains(&format!("{base}.hex"))
            })
        })
        .collect();
    assert!(
        orphans.is_empty(),
        "{}: expected file(s) without a vector: {orphans:?}",
        dir.display()
    );
}
