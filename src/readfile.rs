//! Reading a whole file named by someone else (an option, an environment variable, a snapshot's
//! manifest): only a regular file, and never more than a cap that fits its purpose.
//!
//! A path may name `/dev/zero` (endless: read whole, it fills memory until the kernel kills
//! the process), a FIFO (blocks for ever, on open or on read) or just a file far larger than
//! anything of its kind. So the file is checked before it is opened (no device is even
//! opened), opened with `O_NONBLOCK` (a FIFO that slipped in between cannot block the open),
//! checked again on the opened handle (what is read is what was checked), and read through a
//! limit of its cap plus one byte (a file that grows while it is read is caught too). Each
//! caller names its cap as a constant beside it, with the reason for its size.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// What kind of file `meta` describes, for messages.
fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// `cap` bytes as people write them (`16 MiB`, `64 KiB`).
pub fn human(cap: u64) -> String {
    const MIB: u64 = 1 << 20;
    const KIB: u64 = 1 << 10;
    if cap >= MIB && cap.is_multiple_of(MIB) {
        format!("{} MiB", cap / MIB)
    } else if cap >= KIB && cap.is_multiple_of(KIB) {
        format!("{} KiB", cap / KIB)
    } else {
        format!("{cap} bytes")
    }
}

fn not_regular(what: &str, path: &Path, meta: &Metadata) -> Error {
    Error::Unreadable {
        what: what.into(),
        path: path.into(),
        reason: format!("is {}, not a regular file", kind(meta)),
    }
}

fn too_large(what: &str, path: &Path, cap: u64) -> Error {
    Error::Unreadable {
        what: what.into(),
        path: path.into(),
        reason: format!("is larger than {}, the most read for a {what}", human(cap)),
    }
}

/// Opens `path` for reading if it is a regular file (symbolic links followed), without ever
/// blocking; `what` names the file's purpose in errors (`machines file`). Also returns the
/// handle's metadata.
pub fn open_regular(path: &Path, what: &str) -> Result<(File, Metadata)> {
    // Checked before opening, so that no device is opened at all ...
    let before = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !before.is_file() {
        return Err(not_regular(what, path, &before));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        // ... and opened so that a FIFO swapped in meanwhile cannot block (O_NONBLOCK changes
        // nothing for a regular file), and checked again on the handle, which is what is read.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(what, path, &meta));
    }
    Ok((file, meta))
}

/// Reads the regular file `path` whole, refusing it (naming `what` and `cap`) if it holds more
/// than `cap` bytes.
pub fn read_capped(path: &Path, what: &str, cap: u64) -> Result<Vec<u8>> {
    let (file, meta) = open_regular(path, what)?;
    read_opened(file, &meta, path, what, cap)
}

/// [`read_capped`] on a file already opened with [`open_regular`].
pub fn read_opened(
    file: File,
    meta: &Metadata,
    path: &Path,
    what: &str,
    cap: u64,
) -> Result<Vec<u8>> {
    if meta.len() > cap {
        return Err(too_large(what, path, cap));
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    if buf.len() as u64 > cap {
        return Err(too_large(what, path, cap));
    }
    Ok(buf)
}

/// [`read_capped`], as UTF-8 text.
pub fn read_capped_string(path: &Path, what: &str, cap: u64) -> Result<String> {
    String::from_utf8(read_capped(path, what, cap)?).map_err(|_| Error::Unreadable {
        what: what.into(),
        path: path.into(),
        reason: "is not UTF-8 text".into(),
    })
}

/// Reads at most `cap` bytes of `r` (stdin, say), refusing more; `name` names it in errors.
pub fn read_stream_capped(r: &mut dyn Read, name: &str, what: &str, cap: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(name, e))?;
    if buf.len() as u64 > cap {
        return Err(too_large(what, Path::new(name), cap));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_directories_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (p, kind) in [
            (Path::new("/dev/zero"), "a character device"),
            (fifo.as_path(), "a FIFO"),
            (dir.path(), "a directory"),
        ] {
            let e = read_capped(p, "machines file", 1 << 20)
                .unwrap_err()
                .to_string();
            assert!(e.contains(kind) && e.contains("not a regular file"), "{e}");
        }
    }

    #[test]
    fn a_file_over_its_cap_is_refused_naming_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![b'x'; 2048]).unwrap();
        let e = read_capped(&p, "scenario", 1024).unwrap_err().to_string();
        assert!(
            e.contains("larger than 1 KiB, the most read for a scenario"),
            "{e}"
        );
        assert_eq!(read_capped(&p, "scenario", 2048).unwrap().len(), 2048);
        let e = read_stream_capped(&mut &[0u8; 10][..], "stdin", "list", 9).unwrap_err();
        assert!(e.to_string().contains("larger than 9 bytes"), "{e}");
    }
}
