//! Nix archives (NARs): the serialisation Nix hashes, signs and compresses for binary caches.
//!
//! This module owns the format and nothing else: [`writer`] packs a file system tree into NAR
//! bytes exactly as `nix-store --dump` does, streaming into any `io::Write`; [`reader`] validates
//! a NAR from any `io::Read`, as strictly as Nix's own parser, and reports the first problem with
//! its byte offset; [`hash`] holds the NarHash (SHA-256 in Nix's base32). Nothing here holds a
//! whole NAR in memory.
//!
//! The format (NixOS/nix `src/libutil/archive.cc`, `doc/manual/src/protocols/nix-archive.md`):
//! every token is `str(s)` = `s.len()` as u64 little-endian, the bytes, zero padding to a
//! multiple of 8. A NAR is `str("nix-archive-1")` and one node:
//! `( type regular [executable ""] contents <data> )`, `( type symlink target <t> )` or
//! `( type directory { entry ( name <n> node <node> ) } )`, entries sorted bytewise by name.

pub mod hash;
pub mod reader;
pub mod writer;

pub use hash::{NarHash, nix_base32, parse_nix_base32};
pub use reader::{NarSummary, validate};
pub use writer::{PackStats, dump_path};

/// The first token of every NAR.
pub const MAGIC: &[u8] = b"nix-archive-1";

/// How many directories deep a NAR may nest below its root. Current Nix refuses deeper archives
/// (it bounds the recursion of its parser); we refuse the same, both when reading and when
/// packing, so that everything we write can be read back by Nix and by us.
pub const MAX_DEPTH: usize = 64;

/// The longest file name or symlink target we accept. Linux limits paths to 4096 bytes
/// (PATH_MAX), so no real tree has a longer name or target; the limit keeps a hostile length
/// prefix from making the reader allocate gigabytes.
pub const MAX_NAME: u64 = 4096;

/// Bytes of zero padding after a string of `len` bytes.
pub(crate) fn padding(len: u64) -> usize {
    ((8 - len % 8) % 8) as usize
}
