//! The codecs on a fixed corpus (`cargo bench --bench codecs`): a deterministic 8 MiB NAR of
//! text- and binary-like content, compressed and decompressed by each family at a few levels.
//! Throughput is NAR bytes, so compression and decompression MB/s read directly.

// A benchmark's setup that fails should stop it: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hydra_bottleneck::compress::CodecSpec;

/// Half text-like (words from a small vocabulary), half binary-like (small integers with
/// structure), as a package output mixes them; seeded, so every run measures the same bytes.
fn corpus(len: usize) -> Vec<u8> {
    let words: [&[u8]; 8] = [
        b"nix ",
        b"store ",
        b"hydra ",
        b"build ",
        b"/nix/store/",
        b"-linux ",
        b"\n",
        b"0123 ",
    ];
    let mut x: u64 = 42;
    let mut v = Vec::with_capacity(len + 16);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (v.len() / 65536) % 2 == 0 {
            v.extend_from_slice(words[(x % 8) as usize]);
        } else {
            v.extend_from_slice(&((x % 1024) as u32).to_le_bytes());
        }
    }
    v.truncate(len);
    v
}

fn bench(c: &mut Criterion) {
    let data = corpus(8 << 20);
    for name in ["xz-1", "xz-6", "zstd-1", "zstd-3", "zstd-19", "zstd-19-nix"] {
        let codec: CodecSpec = name.parse().unwrap();
        let (compressed, _) = codec.compress(&data).unwrap();
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(data.len() as u64));
        // Slow levels take seconds per iteration; ten samples keep the run in minutes.
        g.sample_size(10);
        g.bench_function("compress", |b| b.iter(|| codec.compress(&data).unwrap()));
        let mut out = Vec::with_capacity(data.len());
        g.bench_function("decompress", |b| {
            b.iter(|| codec.decompress(&compressed, data.len(), &mut out).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
