//! Packing a file system tree into a NAR, byte for byte as `nix-store --dump` does, streamed
//! into any `io::Write`: file contents are copied through a fixed buffer, never held whole.
//!
//! What Nix does, and so do we (NixOS/nix `src/libutil/archive.cc`): the root and every entry are
//! `lstat`ed, never followed, so a symlink is stored as its target string; directory entries are
//! sorted bytewise by name; of the permission bits only the owner's execute bit survives (as the
//! `executable` marker, on regular files only); times, owners and other modes are dropped.
//! Sockets, FIFOs and device nodes cannot be stored and are refused, naming the path.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{MAGIC, MAX_DEPTH, padding};
use crate::error::{Error, Result};

/// Output buffer between the tree walk and the writer. Tokens are a few bytes each, so unbuffered
/// they would cost a write call apiece; file contents are read straight into this buffer by
/// `io::copy`, and 128 KiB makes the per-read system call cost negligible (under 1 % at page-cache
/// speed) while staying inside L2.
const BUFFER: usize = 128 * 1024;

/// What a packed tree held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PackStats {
    /// Bytes of NAR written.
    pub nar_size: u64,
    pub regular_files: u64,
    pub executables: u64,
    pub symlinks: u64,
    pub directories: u64,
    /// Bytes of file contents (the NAR without its framing).
    pub content_bytes: u64,
}

/// Writes the NAR of `path` (a directory, regular file or symlink; not followed) to `out`.
///
/// Errors name the file that could not be read or stored; a failure to write `out` is reported
/// against "NAR output".
pub fn dump_path<W: Write>(path: &Path, out: W) -> Result<PackStats> {
    let mut p = Packer {
        out: BufWriter::with_capacity(BUFFER, out),
        stats: PackStats::default(),
    };
    p.str(MAGIC)?;
    let mut path = path.to_path_buf();
    p.node(&mut path, 0)?;
    p.out.flush().map_err(output_error)?;
    Ok(p.stats)
}

fn output_error(e: io::Error) -> Error {
    Error::io("NAR output", e)
}

struct Packer<W: Write> {
    out: BufWriter<W>,
    stats: PackStats,
}

impl<W: Write> Packer<W> {
    fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(output_error)?;
        self.stats.nar_size += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self, len: u64) -> Result<()> {
        self.raw(&[0u8; 8][..padding(len)])
    }

    fn str(&mut self, s: &[u8]) -> Result<()> {
        self.raw(&(s.len() as u64).to_le_bytes())?;
        self.raw(s)?;
        self.pad(s.len() as u64)
    }

    fn strs(&mut self, tokens: &[&[u8]]) -> Result<()> {
        tokens.iter().try_for_each(|t| self.str(t))
    }

    /// One node; `path` is borrowed mutably so that the walk pushes and pops one buffer instead
    /// of allocating a path per entry.
    fn node(&mut self, path: &mut PathBuf, depth: usize) -> Result<()> {
        let meta = fs::symlink_metadata(&*path).map_err(|e| Error::io(&*path, e))?;
        let ft = meta.file_type();
        self.str(b"(")?;
        if ft.is_file() {
            self.stats.regular_files += 1;
            self.str(b"type")?;
            self.str(b"regular")?;
            if meta.permissions().mode() & 0o100 != 0 {
                self.stats.executables += 1;
                self.strs(&[b"executable", b""])?;
            }
            self.str(b"contents")?;
            self.contents(path, meta.len())?;
        } else if ft.is_symlink() {
            self.stats.symlinks += 1;
            let target = fs::read_link(&*path).map_err(|e| Error::io(&*path, e))?;
            self.strs(&[b"type", b"symlink", b"target"])?;
            self.str(target.as_os_str().as_bytes())?;
        } else if ft.is_dir() {
            self.stats.directories += 1;
            self.strs(&[b"type", b"directory"])?;
            let mut names: Vec<OsString> = fs::read_dir(&*path)
                .and_then(|rd| rd.map(|e| e.map(|e| e.file_name())).collect())
                .map_err(|e| Error::io(&*path, e))?;
            // The entries' nodes would be at depth + 1, which Nix refuses from MAX_DEPTH on.
            if !names.is_empty() && depth + 1 >= MAX_DEPTH {
                return Err(Error::refused(
                    path.display().to_string(),
                    format!(
                        "holds entries {MAX_DEPTH} directories below the root, past Nix's \
                         maximum NAR depth, which Nix neither packs nor reads back"
                    ),
                ));
            }
            names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for name in names {
                self.strs(&[b"entry", b"(", b"name"])?;
                self.str(name.as_bytes())?;
                self.str(b"node")?;
                path.push(&name);
                let r = self.node(path, depth + 1);
                path.pop();
                r?;
                self.str(b")")?;
            }
        } else {
            let kind = if ft.is_socket() {
                "a socket"
            } else if ft.is_fifo() {
                "a FIFO"
            } else if ft.is_block_device() || ft.is_char_device() {
                "a device node"
            } else {
                "of an unknown type"
            };
            return Err(Error::refused(
                path.display().to_string(),
                format!("is {kind}; a NAR holds only regular files, directories and symlinks"),
            ));
        }
        self.str(b")")
    }

    /// The length prefix comes from `lstat`, before the copy, as in Nix; a file that changes
    /// size while it is read would make the length lie, so that is an error.
    fn contents(&mut self, path: &Path, len: u64) -> Result<()> {
        self.raw(&len.to_le_bytes())?;
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let copied = io::copy(&mut file.take(len), &mut self.out).map_err(|e| {
            // io::copy does not say which side failed; the file is the likelier culprit.
            Error::io(path, e)
        })?;
        if copied != len {
            return Err(Error::corrupt(
                path.display().to_string(),
                format!("changed size while being packed ({len} bytes expected, {copied} read)"),
            ));
        }
        self.stats.nar_size += len;
        self.stats.content_bytes += len;
        self.pad(len)
    }
}
