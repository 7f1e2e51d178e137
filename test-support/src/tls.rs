//! TLS material for the web-config tests, made with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `openssl ARGS` in `dir`; panics quoting its stderr when it fails.
pub fn openssl(args: &[&str], dir: &Path) {
    crate::deps::require(&["openssl"]);
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl {args:?}: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 certificate for `CN=localhost`, valid two days, written to
/// `dir/NAME.crt` with its unencrypted key in `dir/NAME.key`; `san` adds a subjectAltName
/// (`IP:127.0.0.1,DNS:localhost`). Returns the certificate's and the key's paths.
pub fn self_signed(dir: &Path, name: &str, san: Option<&str>) -> (PathBuf, PathBuf) {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    let san = san.map(|s| format!("subjectAltName={s}"));
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
    ];
    if let Some(san) = &san {
        args.extend(["-addext", san]);
    }
    args.extend(["-keyout", &key, "-out", &crt]);
    openssl(&args, dir);
    (dir.join(crt), dir.join(key))
}

/// A CA (`dir/ca.crt`, key `ca.key`) and, for each `(name, san)`, a client certificate
/// `dir/NAME.crt` with key `NAME.key` (`CN=NAME`, clientAuth), signed by that CA; `san` adds a
/// subjectAltName (`DNS:prometheus.example`).
pub fn ca_and_clients(dir: &Path, clients: &[(&str, Option<&str>)]) {
    const EC: [&str; 5] = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(EC);
    a.extend([
        "-days",
        "2",
        "-subj",
        "/CN=herald-test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(&a, dir);
    for (name, san) in clients {
        let (key, csr, crt, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        let subj = format!("/CN={name}");
        let mut a = vec!["req"];
        a.extend(EC);
        a.extend(["-subj", &subj, "-keyout", &key, "-out", &csr]);
        openssl(&a, dir);
        let mut extensions =
            String::from("extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
        if let Some(san) = san {
            extensions.push_str(&format!("subjectAltName={san}\n"));
        }
        std::fs::write(dir.join(&ext), extensions)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(&ext).display()));
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &crt,
            ],
            dir,
        );
    }
}
