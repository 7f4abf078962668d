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

/// Nodes of a NAR lie at most `MAX_DEPTH - 1` directories below its root: a node at depth 64 is
/// refused. This is Nix's own bound: NixOS/nix `src/libutil/archive.cc` (since commit
/// 77db3d45cd, "libutil: Bound NAR directory depth and guard coroutine stacks", April 2026)
/// declares `static constexpr size_t narMaxDepth = 64;` "to bound stack usage so deep trees
/// cannot overflow the (possibly coroutine) stack", and both `dumpPath` and `parse` throw when
/// `depth >= narMaxDepth`, the root being depth 0 ("NAR directory nesting exceeds maximum depth
/// of 64"). Older Nix (2.8 here) had no bound at all. We refuse the same nodes, when reading and
/// when packing, so that everything we write current Nix reads back; a bound this small also
/// keeps our own recursion to 64 frames.
pub const MAX_DEPTH: usize = 64;

/// The longest file name or symlink target we accept. Linux limits paths to 4096 bytes
/// (PATH_MAX), so no real tree has a longer name or target; the limit keeps a hostile length
/// prefix from making the reader allocate gigabytes.
pub const MAX_NAME: u64 = 4096;

/// Bytes of zero padding after a string of `len` bytes.
pub(crate) fn padding(len: u64) -> usize {
    ((8 - len % 8) % 8) as usize
}
