//! Round-trip test vectors for the netlink codec: every file in `tests/vectors/` (captured from
//! a kernel as `.bin`, or hand-built as annotated `.hex`) must decode without error, and decode
//! to its `.expected.json` when there is one. See `tests/vectors/README.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: an unwrap that fails, fails the test

use herald_shared::model::AddressFamily;
use herald_shared::netlink::codec;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
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
    let dir = vectors_dir();
    let mut seen = 0;
    let mut compared = 0;
    let mut printed = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
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
        let bytes = if let Some(stem) = name.strip_suffix(".bin") {
            let _ = stem;
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
        }
        // Every decoder must also survive every truncation of a real message.
        for cut in 0..bytes.len() {
            let _ = decode(command, bytes.get(..cut).unwrap_or(&[]));
        }
    }
    eprintln!("{seen} vector(s) decoded, {compared} compared with an expected value");
    if std::env::var_os("HERALD_PRINT_VECTORS").is_some() {
        for (name, v) in &printed {
            eprintln!("{name}: {v}");
        }
    }
    assert!(
        seen >= 6,
        "expected at least the 6 hand-built vectors, found {seen}"
    );
    assert!(compared >= 6, "expected values compared: {compared}");
}
