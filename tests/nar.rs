//! The NAR writer and reader against the reference: `nix-store --dump` and `nix-hash` (Debian
//! package nix-bin, installed by .ci/run) on trees made here, and every malformed-NAR case the
//! reader must refuse, with the byte offset it names. A randomized test mutates valid NARs and
//! checks the reader never panics.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use hydra_bottleneck::Error;
use hydra_bottleneck::nix::nar::{self, MAX_DEPTH, NarHash};
use proptest::prelude::*;

fn nix(tool: &str, args: &[&str], path: &Path) -> Vec<u8> {
    let out = Command::new(tool)
        .args(args)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("running {tool} (apt-get install nix-bin): {e}"));
    assert!(
        out.status.success(),
        "{tool} failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Packs `path` with us and with Nix and checks bytes, hash and the reader's summary agree.
fn compare_with_nix(path: &Path) -> Vec<u8> {
    let mut ours = Vec::new();
    let stats = nar::dump_path(path, &mut ours).unwrap();
    let theirs = nix("nix-store", &["--dump"], path);
    assert_eq!(stats.nar_size, ours.len() as u64);
    if ours != theirs {
        let at = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        panic!(
            "NAR of {} differs from nix-store --dump (lengths {} vs {}, first difference at {at:?})",
            path.display(),
            ours.len(),
            theirs.len()
        );
    }
    let hash = String::from_utf8(nix("nix-hash", &["--type", "sha256", "--base32"], path)).unwrap();
    assert_eq!(NarHash::of(&ours).base32(), hash.trim());
    let summary = nar::validate(&ours[..]).unwrap();
    assert_eq!(summary.nar_size, ours.len() as u64);
    assert_eq!(summary.nar_hash, NarHash::of(&ours));
    assert_eq!(summary.regular_files, stats.regular_files);
    assert_eq!(summary.executables, stats.executables);
    assert_eq!(summary.symlinks, stats.symlinks);
    assert_eq!(summary.directories, stats.directories);
    assert_eq!(summary.content_bytes, stats.content_bytes);
    ours
}

fn write(path: &Path, bytes: &[u8], mode: u32) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Bytes that do not compress to nothing and differ per seed (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn packs_like_nix_store_dump() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    // Names that sort differently bytewise, case-insensitively and by locale.
    for (name, len) in [
        ("a", 1),
        ("a.b", 7),
        ("a-b", 8),
        ("B", 9),
        ("a0", 0),
        ("_", 15),
        ("é", 16),
        ("~", 17),
    ] {
        write(&root.join(name), &noise(len, len as u64 + 1), 0o644);
    }
    write(&root.join("big"), &noise(300_000, 7), 0o644);
    write(&root.join("run"), b"#!/bin/sh\necho hi\n", 0o755);
    // Only the owner's execute bit counts.
    write(&root.join("group-x"), b"x", 0o654);
    write(&root.join("owner-x-only"), b"x", 0o744);
    write(&root.join("empty"), b"", 0o644);
    write(&root.join("empty-exec"), b"", 0o700);
    fs::create_dir(root.join("empty-dir")).unwrap();
    symlink("a.b", root.join("link")).unwrap();
    symlink("/nonexistent/target", root.join("dangling")).unwrap();
    symlink("empty-dir", root.join("dir-link")).unwrap();
    let mut deep = root.join("deep");
    for i in 0..40 {
        deep.push(format!("d{i}"));
    }
    fs::create_dir_all(&deep).unwrap();
    write(&deep.join("leaf"), b"bottom", 0o600);
    let ours = compare_with_nix(&root);
    let s = nar::validate(&ours[..]).unwrap();
    assert_eq!(s.max_depth, 42);
    assert_eq!(s.symlinks, 3);

    // Roots that are not directories.
    compare_with_nix(&root.join("big"));
    compare_with_nix(&root.join("run"));
    compare_with_nix(&root.join("empty"));
    compare_with_nix(&root.join("link"));
    compare_with_nix(&root.join("empty-dir"));
}

#[test]
fn nesting_limit_matches_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let mut p = root.clone();
    for i in 0..MAX_DEPTH - 1 {
        p.push(i.to_string());
    }
    fs::create_dir_all(&p).unwrap();
    // A node 63 directories below the root, the deepest current Nix (archive.cc, narMaxDepth =
    // 64) packs and reads: the Nix here (2.8, without a bound) and we write the same bytes.
    let ours = compare_with_nix(&root);
    assert_eq!(nar::validate(&ours[..]).unwrap().max_depth, MAX_DEPTH - 1);
    // One more, a node at depth 64: refused when packing, and when reading what Nix 2.8 packs.
    write(&p.join("f"), b"", 0o644);
    let err = nar::dump_path(&root, std::io::sink()).unwrap_err();
    assert!(err.to_string().contains("64 directories below"), "{err}");
    let out = Command::new("nix-store")
        .arg("--dump")
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = nar::validate(&out.stdout[..]).unwrap_err().to_string();
    assert!(err.contains("nested 64 deep"), "{err}");
}

#[test]
fn refuses_sockets_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let err = nar::dump_path(dir.path(), std::io::sink()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("s.sock") && msg.contains("socket"), "{msg}");
    let missing = nar::dump_path(&dir.path().join("nope"), std::io::sink()).unwrap_err();
    assert!(missing.to_string().contains("nope"), "{missing}");
}

// ---- malformed NARs -------------------------------------------------------------------------

fn s(x: &[u8]) -> Vec<u8> {
    let mut v = (x.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(x);
    v.resize(v.len() + (8 - x.len() % 8) % 8, 0);
    v
}

fn nar_of(tokens: &[&[u8]]) -> Vec<u8> {
    tokens.iter().flat_map(|t| s(t)).collect()
}

fn file(contents: &[u8]) -> Vec<&[u8]> {
    vec![b"(", b"type", b"regular", b"contents", contents, b")"]
}

fn dir_with(names: &[&'static [u8]]) -> Vec<u8> {
    let mut t: Vec<&[u8]> = vec![b"nix-archive-1", b"(", b"type", b"directory"];
    for n in names {
        t.extend_from_slice(&[b"entry", b"(", b"name", n, b"node"]);
        t.extend(file(b"x"));
        t.push(b")");
    }
    t.push(b")");
    nar_of(&t)
}

/// Validates and returns (offset, message) of the error.
fn reject(bytes: &[u8]) -> (u64, String) {
    match nar::validate(bytes) {
        Err(Error::Nar { offset, reason, .. }) => (offset, reason),
        other => panic!("expected a NAR error, got {other:?}"),
    }
}

#[test]
fn accepts_a_minimal_nar() {
    let mut t: Vec<&[u8]> = vec![b"nix-archive-1"];
    t.extend(file(b"hello"));
    let bytes = nar_of(&t);
    let sum = nar::validate(&bytes[..]).unwrap();
    assert_eq!(sum.content_bytes, 5);
    assert!(nar::validate(&dir_with(&[b"A", b"a", b"a-b", b"a.b", b"b"])[..]).is_ok());
}

#[test]
fn rejects_wrong_magic() {
    let (at, msg) = reject(&nar_of(&[b"nix-archive-2", b"("]));
    assert_eq!(at, 0);
    assert!(msg.contains("nix-archive-1"), "{msg}");
    let (at, _) = reject(b"");
    assert_eq!(at, 0);
    // A huge length prefix where the magic belongs.
    let (at, _) = reject(&u64::MAX.to_le_bytes());
    assert_eq!(at, 0);
}

#[test]
fn rejects_unsorted_and_duplicate_entries() {
    // magic 24 bytes, "(" 16, "type" 16, "directory" 24 → first entry at 80; an entry with
    // a one-byte name and a one-byte file is 16*4 + 16 + file(16*5 + 16) + 16 = 192 bytes, and
    // its name sits 48 bytes in.
    let (at, msg) = reject(&dir_with(&[b"b", b"a"]));
    assert_eq!(at, 80 + 192 + 48);
    assert!(msg.contains("sorted"), "{msg}");
    let (at, msg) = reject(&dir_with(&[b"a", b"a"]));
    assert_eq!(at, 80 + 192 + 48);
    assert!(msg.contains("duplicate"), "{msg}");
    // Bytewise, not case-insensitive: "B" (0x42) sorts before "a" (0x61).
    let (_, msg) = reject(&dir_with(&[b"a", b"B"]));
    assert!(msg.contains("sorted"), "{msg}");
}

#[test]
fn rejects_bad_names() {
    for name in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
        let (at, msg) = reject(&dir_with(&[name]));
        assert_eq!(at, 80 + 48, "{name:?}");
        assert!(msg.contains("invalid file name"), "{msg}");
    }
}

#[test]
fn rejects_non_zero_padding() {
    let mut t: Vec<&[u8]> = vec![b"nix-archive-1"];
    t.extend(file(b"abc"));
    let mut bytes = nar_of(&t);
    // contents: magic 24 + "(" 16 + "type" 16 + "regular" 16 + "contents" 16 = 88, length 8,
    // data 3 bytes at 96, padding from 99.
    bytes[101] = 1;
    let (at, msg) = reject(&bytes);
    assert_eq!(at, 101);
    assert!(msg.contains("padding"), "{msg}");
    // Padding of the magic itself.
    let mut bytes = nar_of(&t);
    bytes[23] = 0xff;
    assert_eq!(reject(&bytes).0, 0);
}

#[test]
fn rejects_truncation_at_every_length() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("f"), &noise(100, 3), 0o755);
    symlink("f", dir.path().join("l")).unwrap();
    let mut full = Vec::new();
    nar::dump_path(dir.path(), &mut full).unwrap();
    for len in 0..full.len() {
        let (at, msg) = reject(&full[..len]);
        assert!(at <= len as u64, "offset {at} beyond the {len} bytes given");
        assert!(
            len == 0 || msg.contains("truncated") || at == 0,
            "{len}: {msg}"
        );
    }
    let mut longer = full.clone();
    longer.extend_from_slice(&[0; 8]);
    let (at, msg) = reject(&longer);
    assert_eq!(at, full.len() as u64);
    assert!(msg.contains("trailing"), "{msg}");
}

#[test]
fn rejects_unknown_tokens() {
    let cases: Vec<(Vec<&[u8]>, u64, &str)> = vec![
        (
            vec![b"nix-archive-1", b"(", b"type", b"fifo", b")"],
            56,
            "unknown file type",
        ),
        (vec![b"nix-archive-1", b"[", b"type"], 24, "expected '('"),
        (vec![b"nix-archive-1", b"(", b"kind"], 40, "expected 'type'"),
        (
            vec![b"nix-archive-1", b"(", b"type", b"regular", b"mode", b""],
            72,
            "expected 'executable' or 'contents'",
        ),
        (
            vec![
                b"nix-archive-1",
                b"(",
                b"type",
                b"regular",
                b"executable",
                b"x",
            ],
            96,
            "executable marker",
        ),
        (
            vec![
                b"nix-archive-1",
                b"(",
                b"type",
                b"directory",
                b"entry",
                b"(",
                b"nom",
            ],
            112,
            "expected 'name'",
        ),
        (
            vec![b"nix-archive-1", b"(", b"type", b"directory", b"file"],
            80,
            "expected 'entry' or ')'",
        ),
        (
            vec![b"nix-archive-1", b"(", b"type", b"symlink", b"link"],
            72,
            "expected 'target'",
        ),
    ];
    for (tokens, offset, text) in cases {
        let (at, msg) = reject(&nar_of(&tokens));
        assert_eq!(at, offset, "{msg}");
        assert!(msg.contains(text), "{msg} lacks {text}");
    }
    // A huge token length is refused without reading (or allocating) it.
    let mut bytes = nar_of(&[b"nix-archive-1", b"("]);
    bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
    let (at, _) = reject(&bytes);
    assert_eq!(at, 40);
}

#[test]
fn rejects_nesting_deeper_than_the_limit() {
    fn nested(levels: usize) -> Vec<u8> {
        let mut t: Vec<&[u8]> = vec![b"nix-archive-1"];
        for _ in 0..levels {
            t.extend_from_slice(&[
                b"(",
                b"type",
                b"directory",
                b"entry",
                b"(",
                b"name",
                b"d",
                b"node",
            ]);
        }
        t.extend(file(b""));
        for _ in 0..levels {
            t.extend_from_slice(&[b")", b")"]);
        }
        nar_of(&t)
    }
    assert_eq!(
        nar::validate(&nested(MAX_DEPTH - 1)[..]).unwrap().max_depth,
        MAX_DEPTH - 1
    );
    let (at, msg) = reject(&nested(MAX_DEPTH));
    // The entry token of the 64th directory, whose node would be at depth 64: each level is 7
    // tokens of 16 bytes and "directory" of 24, and the entry follows "(", "type", "directory"
    // (56 bytes).
    assert_eq!(at, 24 + (MAX_DEPTH as u64 - 1) * 136 + 56);
    assert!(msg.contains("nested"), "{msg}");
    // Far deeper input fails the same way, without exhausting the stack.
    assert!(nar::validate(&nested(100_000)[..]).is_err());
}

// ---- randomized: mutated NARs never panic ---------------------------------------------------

fn sample_nar() -> Vec<u8> {
    let mut t: Vec<&[u8]> = vec![b"nix-archive-1", b"(", b"type", b"directory"];
    let names: [&[u8]; 3] = [b"a", b"b.sh", b"c"];
    t.extend_from_slice(&[b"entry", b"(", b"name", names[0], b"node"]);
    t.extend(file(b"some contents"));
    t.push(b")");
    t.extend_from_slice(&[b"entry", b"(", b"name", names[1], b"node"]);
    t.extend_from_slice(&[
        b"(",
        b"type",
        b"regular",
        b"executable",
        b"",
        b"contents",
        b"#!",
        b")",
    ]);
    t.push(b")");
    t.extend_from_slice(&[b"entry", b"(", b"name", names[2], b"node"]);
    t.extend_from_slice(&[b"(", b"type", b"symlink", b"target", b"a", b")"]);
    t.push(b")");
    t.push(b")");
    nar_of(&t)
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Length(usize, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..24))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..32).prop_map(|(i, n)| Mutation::Remove(i, n)),
        // Overwrite an aligned word: length prefixes are where parsers go wrong.
        (any::<usize>(), any::<u64>()).prop_map(|(i, v)| Mutation::Length(i, v)),
    ]
}

fn apply(mut nar: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = nar.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                if let Some(x) = nar.get_mut(i % n) {
                    *x ^= b | 1;
                }
            }
            Mutation::Truncate(i) => nar.truncate(i % n),
            Mutation::Insert(i, v) => {
                let at = (i % n).min(nar.len());
                nar.splice(at..at, v.iter().copied());
            }
            Mutation::Remove(i, k) => {
                let at = (i % n).min(nar.len());
                let end = (at + k).min(nar.len());
                nar.drain(at..end);
            }
            Mutation::Length(i, v) => {
                let at = (i % n) / 8 * 8;
                if at + 8 <= nar.len() {
                    nar[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
    nar
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_nars_never_panic(muts in prop::collection::vec(mutation(), 1..4)) {
        let original = sample_nar();
        let bytes = apply(original.clone(), &muts);
        match nar::validate(&bytes[..]) {
            Ok(s) => {
                // Whatever it accepts is a consistent NAR.
                prop_assert_eq!(s.nar_size, bytes.len() as u64);
                prop_assert_eq!(s.nar_hash, NarHash::of(&bytes));
            }
            Err(Error::Nar { offset, .. }) => prop_assert!(offset <= bytes.len() as u64),
            Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = nar::validate(&bytes[..]);
    }
}
