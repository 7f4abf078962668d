//! The throughput model (`model::simulate`) over the sample at `--scale 10`, about a million
//! steps: one run of the C++ runner's configuration with its true dependencies, and the workload
//! built from the dataset. Target (issue 5): ≥ 1 M steps simulated in ≤ 10 s on 2 cores.
//! `HB_BENCH_SCALE` changes the scale.

// A benchmark's setup that fails should stop it: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hydra_bottleneck::model::workload::{DepsFrom, from_dataset};
use hydra_bottleneck::model::{
    Codec, CompressOn, Config, MachineSort, NOISE_SIGMA, StepSort, simulate,
};
use hydra_bottleneck::sample::{SampleSpec, generate, local_worker_slots};

fn model(c: &mut Criterion) {
    let scale: f64 = std::env::var("HB_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let ds = generate(&SampleSpec {
        scale,
        ..SampleSpec::default()
    })
    .unwrap();
    let machines = ds.machines.as_ref().unwrap().machines.clone();
    let xz = Codec::reference("xz-6").unwrap();
    let w = from_dataset(&ds, Some(&machines), DepsFrom::Best, xz.clone()).unwrap();
    let cfg = Config {
        ordering: StepSort::Cpp,
        machine_sort: MachineSort::Cpp,
        local_workers: local_worker_slots(scale),
        compress_on: CompressOn::QueueRunner,
        send_lock: true,
        runner: hydra_bottleneck::dataset::Runner::Cpp,
        free_fn: hydra_bottleneck::model::FreeFn::Static,
        dispatch_timer_ms: None,
        codec: xz.clone(),
        load: 1.0,
        noise_sigma: NOISE_SIGMA,
        seed: 1,
    };
    let steps = w.tasks.len();
    let mut group = c.benchmark_group(format!("model_{steps}_steps"));
    group.throughput(Throughput::Elements(steps as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(40));
    group.bench_function("simulate_cpp", |b| b.iter(|| simulate(&w, &cfg).unwrap()));
    group.bench_function("workload_from_dataset", |b| {
        b.iter(|| from_dataset(&ds, Some(&machines), DepsFrom::Best, xz.clone()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, model);
criterion_main!(benches);
