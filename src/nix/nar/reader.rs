//! Reading and validating a NAR from any `io::Read`, as strictly as Nix's parser
//! (NixOS/nix `src/libutil/archive.cc`, `parseDump`) and a little stricter where Nix is lax
//! (padding must be zero, nothing may follow the root node).
//!
//! The first problem is reported as [`Error::Nar`] with the byte offset where it starts: a wrong
//! magic, an unknown or misplaced token, an unsorted or duplicate entry, a bad name (empty, `.`,
//! `..`, containing `/` or NUL), non-zero padding, truncation, a node [`MAX_DEPTH`] or more
//! directories deep (Nix's own bound), trailing bytes. Memory stays bounded whatever the input claims: contents are
//! streamed through a fixed buffer, other strings are capped at [`MAX_NAME`] bytes.

use std::io::{self, Read};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{MAGIC, MAX_DEPTH, MAX_NAME, NarHash, padding};
use crate::error::{Error, Result};

/// File contents pass through a buffer of this size: big enough that a read call per chunk is
/// cheap next to hashing it, small enough to stay in cache.
const CHUNK: usize = 64 * 1024;

/// The longest token we expect ("directory", "executable"); anything longer where a token
/// belongs is reported as an unknown token without reading it whole.
const MAX_TOKEN: u64 = 16;

/// What a valid NAR holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NarSummary {
    pub nar_size: u64,
    pub nar_hash: NarHash,
    pub regular_files: u64,
    pub executables: u64,
    pub symlinks: u64,
    pub directories: u64,
    /// Bytes of file contents (the NAR without its framing).
    pub content_bytes: u64,
    /// Directories below the root of the deepest node (0: the root only).
    pub max_depth: usize,
}

/// Reads one NAR from `r` to its end, checks it, and returns its size, hash and counts.
/// Errors carry the offset and name the NAR as "NAR"; callers rename it with [`Error::in_nar`].
pub fn validate<R: Read>(r: R) -> Result<NarSummary> {
    let mut p = Parser {
        r,
        pos: 0,
        hasher: Sha256::new(),
        buf: vec![0; CHUNK],
        s: NarSummary {
            nar_size: 0,
            nar_hash: NarHash([0; 32]),
            regular_files: 0,
            executables: 0,
            symlinks: 0,
            directories: 0,
            content_bytes: 0,
            max_depth: 0,
        },
    };
    let at = p.pos;
    let magic = p.string(MAGIC.len() as u64).map_err(|e| match e {
        // Whatever went wrong in the first token, the message that helps is this one.
        Error::Nar { .. } => bad(at, "not a NAR: it does not start with 'nix-archive-1'"),
        other => other,
    })?;
    if magic != MAGIC {
        return Err(bad(at, "not a NAR: it does not start with 'nix-archive-1'"));
    }
    p.node(0)?;
    let end = p.pos;
    let mut one = [0u8; 1];
    if read_full(&mut p.r, &mut one).map_err(|e| io_at(end, e))? != 0 {
        return Err(bad(end, "trailing bytes after the end of the archive"));
    }
    p.s.nar_size = p.pos;
    p.s.nar_hash = NarHash(p.hasher.finalize().into());
    Ok(p.s)
}

fn bad(offset: u64, reason: impl Into<String>) -> Error {
    Error::Nar {
        what: "NAR".into(),
        offset,
        reason: reason.into(),
    }
}

fn io_at(offset: u64, e: io::Error) -> Error {
    bad(offset, format!("read failed: {e}"))
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A token shown in an error: printable, and short even when the input is not.
fn show(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]);
    let s: String = s.chars().flat_map(char::escape_default).collect();
    if bytes.len() > 64 { s + "…" } else { s }
}

struct Parser<R> {
    r: R,
    pos: u64,
    hasher: Sha256,
    buf: Vec<u8>,
    s: NarSummary,
}

impl<R: Read> Parser<R> {
    /// Fills `self.buf[..n]` (n ≤ CHUNK) from the input, hashing it; truncation is reported at
    /// the offset where the input ended.
    fn fill(&mut self, n: usize) -> Result<()> {
        let got = read_full(&mut self.r, &mut self.buf[..n]).map_err(|e| io_at(self.pos, e))?;
        self.hasher.update(&self.buf[..got]);
        self.pos += got as u64;
        if got < n {
            return Err(bad(
                self.pos,
                format!("truncated: the input ends {} bytes early", n - got),
            ));
        }
        Ok(())
    }

    fn u64(&mut self) -> Result<u64> {
        self.fill(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[..8]);
        Ok(u64::from_le_bytes(b))
    }

    fn padding(&mut self, len: u64) -> Result<()> {
        let n = padding(len);
        let start = self.pos;
        self.fill(n)?;
        if let Some(i) = self.buf[..n].iter().position(|&b| b != 0) {
            return Err(bad(start + i as u64, "non-zero padding byte"));
        }
        Ok(())
    }

    /// A string of at most `limit` bytes (longer ones are an error at their length prefix).
    fn string(&mut self, limit: u64) -> Result<Vec<u8>> {
        let at = self.pos;
        let len = self.u64()?;
        if len > limit {
            return Err(bad(
                at,
                format!("string of {len} bytes where at most {limit} are allowed"),
            ));
        }
        // len ≤ MAX_NAME < CHUNK
        self.fill(len as usize)?;
        let s = self.buf[..len as usize].to_vec();
        self.padding(len)?;
        Ok(s)
    }

    /// Reads a token and returns it with its offset; an over-long one is reported as unknown.
    fn token(&mut self, expected: &str) -> Result<(u64, Vec<u8>)> {
        let at = self.pos;
        match self.string(MAX_TOKEN) {
            Ok(t) => Ok((at, t)),
            Err(Error::Nar { offset, reason, .. })
                if offset == at && reason.starts_with("string of") =>
            {
                Err(bad(
                    at,
                    format!("expected '{expected}', got an over-long string"),
                ))
            }
            Err(e) => Err(e),
        }
    }

    fn expect(&mut self, tok: &str) -> Result<()> {
        let (at, t) = self.token(tok)?;
        if t != tok.as_bytes() {
            return Err(bad(at, format!("expected '{tok}', got '{}'", show(&t))));
        }
        Ok(())
    }

    fn node(&mut self, depth: usize) -> Result<()> {
        self.s.max_depth = self.s.max_depth.max(depth);
        self.expect("(")?;
        self.expect("type")?;
        let (at, kind) = self.token("regular', 'directory' or 'symlink")?;
        match kind.as_slice() {
            b"regular" => self.regular(),
            b"symlink" => {
                self.s.symlinks += 1;
                self.expect("target")?;
                self.string(MAX_NAME)?;
                self.expect(")")
            }
            b"directory" => self.directory(depth),
            other => Err(bad(at, format!("unknown file type '{}'", show(other)))),
        }
    }

    fn regular(&mut self) -> Result<()> {
        self.s.regular_files += 1;
        let (mut at, mut tag) = self.token("contents")?;
        if tag == b"executable" {
            self.s.executables += 1;
            let marker_at = self.pos;
            if !self.string(MAX_NAME)?.is_empty() {
                return Err(bad(marker_at, "the executable marker must be empty"));
            }
            (at, tag) = self.token("contents")?;
        }
        if tag != b"contents" {
            return Err(bad(
                at,
                format!("expected 'executable' or 'contents', got '{}'", show(&tag)),
            ));
        }
        let len = self.u64()?;
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            self.fill(n)?;
            left -= n as u64;
        }
        self.s.content_bytes += len;
        self.padding(len)?;
        self.expect(")")
    }

    fn directory(&mut self, depth: usize) -> Result<()> {
        self.s.directories += 1;
        let mut prev: Option<Vec<u8>> = None;
        loop {
            let (at, tag) = self.token("entry' or ')")?;
            match tag.as_slice() {
                b")" => return Ok(()),
                b"entry" => {}
                other => {
                    return Err(bad(
                        at,
                        format!("expected 'entry' or ')', got '{}'", show(other)),
                    ));
                }
            }
            // The entry's node would be at depth + 1; Nix refuses a node at depth 64.
            if depth + 1 >= MAX_DEPTH {
                return Err(bad(
                    at,
                    format!(
                        "directories nested {MAX_DEPTH} deep, past Nix's maximum NAR depth \
                         (archive.cc, narMaxDepth)"
                    ),
                ));
            }
            self.expect("(")?;
            self.expect("name")?;
            let name_at = self.pos;
            let name = self.string(MAX_NAME)?;
            if name.is_empty()
                || name == b"."
                || name == b".."
                || name.contains(&b'/')
                || name.contains(&0)
            {
                return Err(bad(name_at, format!("invalid file name '{}'", show(&name))));
            }
            if let Some(p) = &prev {
                if name == *p {
                    return Err(bad(name_at, format!("duplicate entry '{}'", show(&name))));
                }
                if name < *p {
                    return Err(bad(
                        name_at,
                        format!(
                            "entry '{}' comes after '{}': entries must be sorted bytewise",
                            show(&name),
                            show(p)
                        ),
                    ));
                }
            }
            self.expect("node")?;
            self.node(depth + 1)?;
            self.expect(")")?;
            prev = Some(name);
        }
    }
}
