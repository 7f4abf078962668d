//! The `/metrics` text (`cargo bench --bench metrics`): a body of the Rust queue runner for
//! hydra.nixos.org's size (40 builders, 10 systems, 800 jobsets in the queue: 2,433 samples,
//! 195 KiB, written by `tests/support/metrics.rs`) parsed, and parsed and read into a `Status`.
//! Throughput is samples; the figures are in `src/status/metrics.rs`'s module doc.

// A benchmark's setup that fails should stop it: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/metrics.rs"]
mod body;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hydra_bottleneck::status::{self, metrics};

fn bench(c: &mut Criterion) {
    let text = body::Farm::LARGE.body(0);
    let samples = metrics::parse(&text).unwrap().samples() as u64;
    let mut g = c.benchmark_group("metrics");
    g.throughput(Throughput::Elements(samples));
    g.bench_function("parse", |b| b.iter(|| metrics::parse(&text).unwrap()));
    g.bench_function("parse and read into a status", |b| {
        b.iter(|| status::parse_metrics(&text, "bench").unwrap())
    });
    g.finish();
    eprintln!("metrics: {samples} samples, {} bytes per body", text.len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
