//! All analytics (`analysis::analyze`: data quality, utilization, dependency estimate, capacity
//! ledger, queue waits, waste, overhead fit) over the sample at `--scale 10`, about a million
//! steps. Target (issue 4): ≤ 10 s on 2 cores. `HB_BENCH_SCALE` changes the scale.
//!
//! Beside it, the same with the runner's series the sample carries ignored: what measuring held
//! slots and dispatch loss from the series (with the derivation graph) adds. Target (issue 16):
//! ≤ 20 %.

// A benchmark's setup that fails should stop it: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hydra_bottleneck::analysis::{Options, analyze};
use hydra_bottleneck::sample::{SampleSpec, generate};

fn analytics(c: &mut Criterion) {
    let scale: f64 = std::env::var("HB_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let ds = generate(&SampleSpec {
        scale,
        ..SampleSpec::default()
    })
    .unwrap();
    let machines = ds.machines.as_ref().map(|b| b.machines.clone());
    let opts = Options {
        machines,
        ..Options::default()
    };
    let rows = ds.steps.height();
    let mut group = c.benchmark_group(format!("analyze_{rows}_steps"));
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    assert!(
        ds.timeline.is_some(),
        "the sample carries its runner's series"
    );
    group.bench_function("all_findings", |b| b.iter(|| analyze(&ds, &opts).unwrap()));
    let without = Options {
        ignore_series: true,
        ..opts.clone()
    };
    group.bench_function("all_findings_without_series", |b| {
        b.iter(|| analyze(&ds, &without).unwrap())
    });
    group.finish();
}

criterion_group!(benches, analytics);
criterion_main!(benches);
