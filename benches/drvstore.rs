//! The derivation graph (`cargo bench --bench drvstore`): reading the steps' `.drv` files from
//! a directory (`source::drvstore::read_graph`, parallel, in the page cache) and joining the
//! graph with the steps (`analysis::graph::join`). The files are the built-in sample's
//! derivations at scale 0.5 (~55,000 steps, ~50,000 `.drv` files of 0.5–1 KiB with 0–20 input
//! derivations), written once into a temporary directory; the join is also measured on the
//! sample at scale 10 (~1.08 million steps) from its graph in memory.

// A benchmark's setup that fails should stop it: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hydra_bottleneck::analysis::{Steps, graph, quality};
use hydra_bottleneck::sample::{self, SampleSpec};
use hydra_bottleneck::source::{self, drvstore};

fn dataset(scale: f64) -> hydra_bottleneck::dataset::Dataset {
    let spec = SampleSpec {
        scale,
        ..SampleSpec::default()
    };
    source::normalize(sample::generate(&spec).unwrap()).unwrap()
}

fn bench(c: &mut Criterion) {
    let ds = dataset(0.5);
    let tmp = tempfile::tempdir().unwrap();
    let files = drvstore::write(&ds, tmp.path()).unwrap();
    let steps = Steps::from_frame(&ds.steps).unwrap();
    let paths = drvstore::distinct_drv_paths(&steps);
    let (_, usable) = quality::check(&ds, &steps).unwrap();

    let mut g = c.benchmark_group("drvstore");
    g.sample_size(10);
    g.throughput(Throughput::Elements(files as u64));
    g.bench_function("read_graph (files)", |b| {
        b.iter(|| drvstore::read_graph(tmp.path(), &paths, "bench").unwrap())
    });
    let read = drvstore::read_graph(tmp.path(), &paths, "bench").unwrap();
    assert_eq!(read.found, files);
    g.throughput(Throughput::Elements(steps.len() as u64));
    g.bench_function("join (steps, scale 0.5)", |b| {
        b.iter(|| graph::join(&read, &ds.meta, &steps, &usable))
    });
    g.finish();

    let big = dataset(10.0);
    let steps = Steps::from_frame(&big.steps).unwrap();
    let (_, usable) = quality::check(&big, &steps).unwrap();
    let g10 = big.drv_graph.as_ref().unwrap();
    let mut g = c.benchmark_group("drvstore");
    g.sample_size(10);
    g.throughput(Throughput::Elements(steps.len() as u64));
    g.bench_function("join (steps, scale 10)", |b| {
        b.iter(|| graph::join(g10, &big.meta, &steps, &usable))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
