//! NAR packing and reading (`cargo bench --bench nar`): a deterministic tree generated here
//! (mixed file sizes, executables, symlinks, nested directories; about 13 MB) packed to a
//! sink, and its NAR validated from memory; beside them `nix-store --dump` on the same tree
//! (when installed), the reference packing must match. Throughput is NAR bytes.

// A benchmark's setup that fails should stop it: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hydra_bottleneck::nix::nar;

/// A tree shaped like a package output: a few big binaries, many small files.
pub fn make_tree(root: &Path) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for d in 0..8 {
        let dir = root.join(format!("lib{d}/sub{}/deeper", d % 3));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..40 {
            let size = if f == 0 {
                1 << 20
            } else {
                (next() % 30_000) as usize
            };
            let bytes: Vec<u8> = (0..size)
                .map(|i| (i as u64 ^ (next() & 0x0f)) as u8)
                .collect();
            let p = dir.join(format!("file-{f}.so"));
            fs::write(&p, bytes).unwrap();
            if f % 7 == 0 {
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        symlink("file-1.so", dir.join("link")).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    let mut bytes = Vec::new();
    let stats = nar::dump_path(dir.path(), &mut bytes).unwrap();
    let mut g = c.benchmark_group("nar");
    g.throughput(Throughput::Bytes(stats.nar_size));
    g.bench_function("pack", |b| {
        b.iter(|| nar::dump_path(dir.path(), std::io::sink()).unwrap())
    });
    g.bench_function("validate", |b| {
        b.iter(|| nar::validate(&bytes[..]).unwrap())
    });
    // The reference on the same tree, process start included (that is what it costs Hydra).
    if Command::new("nix-store").arg("--version").output().is_ok() {
        g.bench_function("nix-store --dump", |b| {
            b.iter(|| {
                let st = Command::new("nix-store")
                    .arg("--dump")
                    .arg(dir.path())
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(st.success());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
