//! NarHash: SHA-256 of the NAR bytes, printed as Nix prints it (`sha256:` and Nix's base32).
//!
//! Nix's base32 is not RFC 4648: its alphabet omits `e`, `o`, `u` and `t`, and it encodes the
//! hash starting from the *last* 5-bit group, so the first character holds the top bits of the
//! last byte (NixOS/nix `src/libutil/hash.cc`, `printHash32`).

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Nix base32 of `bytes` (52 characters for a SHA-256).
pub fn nix_base32(bytes: &[u8]) -> String {
    let len = (bytes.len() * 8).div_ceil(5);
    let mut s = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let (i, j) = (b / 8, b % 8);
        let lo = u16::from(bytes[i]) >> j;
        let hi = bytes.get(i + 1).map_or(0, |&x| u16::from(x) << (8 - j));
        s.push(char::from(ALPHABET[usize::from((lo | hi) & 0x1f)]));
    }
    s
}

/// Decodes Nix base32 into `size` bytes; `None` when a character is not in the alphabet, the
/// length is wrong, or bits beyond `size` bytes are set.
pub fn parse_nix_base32(s: &str, size: usize) -> Option<Vec<u8>> {
    if s.len() != (size * 8).div_ceil(5) {
        return None;
    }
    let mut out = vec![0u8; size];
    for (n, c) in s.bytes().rev().enumerate() {
        let digit = ALPHABET.iter().position(|&a| a == c)? as u16;
        let b = n * 5;
        let (i, j) = (b / 8, b % 8);
        let v = digit << j;
        out[i] |= (v & 0xff) as u8;
        let carry = (v >> 8) as u8;
        if i + 1 < size {
            out[i + 1] |= carry;
        } else if carry != 0 {
            return None;
        }
    }
    Some(out)
}

/// A SHA-256 NarHash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NarHash(pub [u8; 32]);

impl NarHash {
    pub fn of(bytes: &[u8]) -> Self {
        NarHash(Sha256::digest(bytes).into())
    }

    /// Nix base32, as `nix-hash --type sha256 --base32` prints it.
    pub fn base32(&self) -> String {
        nix_base32(&self.0)
    }
}

impl fmt::Display for NarHash {
    /// The narinfo form: `sha256:<base32>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.base32())
    }
}

impl fmt::Debug for NarHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for NarHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for NarHash {
    type Err = String;

    /// Accepts `sha256:` followed by Nix base32 (52 characters) or hex (64), as narinfo files
    /// and `nix-hash` write them.
    fn from_str(s: &str) -> Result<Self, String> {
        let body = s
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("hash '{s}' is not a sha256 hash"))?;
        let bytes = match body.len() {
            52 => parse_nix_base32(body, 32),
            64 => (0..32)
                .map(|i| {
                    body.get(2 * i..2 * i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect(),
            _ => None,
        }
        .ok_or_else(|| format!("hash '{s}' is neither Nix base32 nor hex SHA-256"))?;
        let mut a = [0u8; 32];
        a.copy_from_slice(&bytes);
        Ok(NarHash(a))
    }
}

/// A writer that hashes and counts everything passed through it to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The hash and byte count of everything written, and the inner writer.
    pub fn finish(self) -> (NarHash, u64, W) {
        (
            NarHash(self.hasher.finalize().into()),
            self.count,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_nix() {
        // `nix-hash --type sha256 --base32 --flat` of an empty file, and of "hello\n".
        assert_eq!(
            NarHash::of(b"").base32(),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        assert_eq!(
            NarHash::of(b"hello\n").base32(),
            "00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq"
        );
    }

    #[test]
    fn base32_roundtrips() {
        for n in [0usize, 1, 5, 16, 20, 32] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let s = nix_base32(&bytes);
            assert_eq!(parse_nix_base32(&s, n).unwrap(), bytes);
        }
        assert!(parse_nix_base32("e", 1).is_none());
        let h = NarHash::of(b"x");
        assert_eq!(h.to_string().parse::<NarHash>().unwrap(), h);
        let hex: String = h.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(format!("sha256:{hex}").parse::<NarHash>().unwrap(), h);
    }
}
