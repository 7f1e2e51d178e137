//! Reading the small files an operator controls (the configuration, the maintenance file, the
//! drain state file) without ever blocking on them.
//!
//! A plain `open` + `read` of a FIFO waits until something writes into it, and a character device
//! such as `/dev/zero` never ends: either would wedge whatever loop reads it (the signal loop on
//! SIGHUP, the health loop on every tick). So the file is opened with `O_NONBLOCK`, checked with
//! `fstat` on the open descriptor (no race with a rename in between) and refused unless it is a
//! regular file no larger than the caller's bound.

use std::fs::{File, FileType};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What kind of file `t` is, for error messages ("a FIFO, not a regular file").
pub fn file_kind(t: &FileType) -> &'static str {
    if t.is_file() {
        "regular file"
    } else if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symbolic link"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

fn not_regular(t: &FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is a {}, not a regular file", file_kind(t)),
    )
}

/// Open `path` for reading without blocking and check that it is a regular file.
fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        // A Unix socket cannot be opened at all (ENXIO, "No such device or address"): say what
        // is there instead.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(match std::fs::metadata(path) {
                Ok(m) if !m.is_file() => not_regular(&m.file_type()),
                _ => e,
            })
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta.file_type()));
    }
    Ok((file, meta.len()))
}

/// Read the whole of `path`, which must be a regular file of at most `max` bytes. Never blocks
/// on a FIFO or a device: those are refused with an error naming what they are
/// (`it is a FIFO, not a regular file`).
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let (file, len) = open_regular(path)?;
    let too_large = |len: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is {len} bytes long, more than the {max} bytes allowed"),
        )
    };
    if len > max {
        return Err(too_large(len));
    }
    // The file may grow between fstat and read: read at most one byte past the bound to notice.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("herald-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn regular_files_are_read_and_everything_else_refused_at_once() {
        let dir = tmpdir("kinds");
        let f = dir.join("ok");
        std::fs::write(&f, "hello").unwrap();
        assert_eq!(read_regular(&f, 100).unwrap(), b"hello");

        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let t0 = Instant::now();
        let cases = [
            (fifo.as_path(), "FIFO"),
            (dir.as_path(), "directory"),
            (Path::new("/dev/zero"), "character device"),
        ];
        for (path, kind) in cases {
            let e = read_regular(path, 100).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("it is a {kind}, not a regular file"),
                "{}",
                path.display()
            );
        }
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());

        let sock = dir.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = read_regular(&sock, 100).unwrap_err().to_string();
        assert_eq!(e, "it is a socket, not a regular file");

        let big = dir.join("big");
        std::fs::write(&big, vec![b'x'; 101]).unwrap();
        let e = read_regular(&big, 100).unwrap_err().to_string();
        assert!(e.contains("101 bytes long, more than the 100"), "{e}");
        assert_eq!(
            read_regular(&dir.join("missing"), 100).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
