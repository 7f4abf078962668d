//! The runner's series read from Prometheus (`cargo bench --bench prometheus`): a month every
//! 30 s (86,400 points, eight pieces of at most 11,000) of a farm of hydra.nixos.org's size, 10
//! machine types and 40 machines, under the Rust runner's names (seven families: runnable,
//! running, current jobs, four stage counters; 56 range queries), from the loopback server of
//! `tests/support/prometheus.rs`, which evaluates each query over the raw samples it holds. The
//! time includes the server's own evaluation and JSON writing on the same two cores, so it
//! bounds the client's from above. Target (issue 16): at most 10 s. Figures in
//! benches/README.md.

// A benchmark's setup that fails should stop it: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// `tests/support/prometheus.rs` finds the server as `super::http`: both sit at the root here.
#[path = "../tests/support/prometheus.rs"]
mod fake;
#[allow(dead_code)]
#[path = "../tests/support/http.rs"]
mod http;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hydra_bottleneck::status::exporters::Exporter;
use hydra_bottleneck::status::prometheus::{self, Options};
use hydra_bottleneck::status::timeline::{Stage, Timeline};

/// Points in a 30-day month every 30 s.
const POINTS: usize = 30 * 86_400 / 30;

/// A month of a farm of `types` machine types and `machines` machines; values vary with the
/// point and the series so that no two answers are alike.
fn month(types: usize, machines: usize) -> Timeline {
    let t0 = 1_764_892_800; // a multiple of 30
    let f = |a: usize, b: usize| -> Vec<f64> {
        (0..POINTS).map(|i| ((i * a + b) % 13) as f64).collect()
    };
    let mut tl = Timeline {
        source: "bench".into(),
        step_s: 30,
        times: (0..POINTS).map(|i| t0 + 30 * i as i64).collect(),
        ..Timeline::default()
    };
    for k in 0..types {
        tl.runnable.insert(format!("system-{k}"), f(k + 1, k));
        tl.running.insert(format!("system-{k}"), f(k + 2, k));
    }
    for m in 0..machines {
        tl.current_jobs
            .insert(format!("builder-{m:02}"), f(m + 3, m));
    }
    for (k, s) in Stage::ALL.into_iter().enumerate() {
        tl.stages.insert(s, f(k + 5, k));
    }
    tl
}

fn bench(c: &mut Criterion) {
    let tl = month(10, 40);
    let prom = Arc::new(fake::Prom::of_timeline(
        &tl,
        Exporter::RustRunner,
        &["queue-runner:8080"],
    ));
    let p = prom.clone();
    let server = http::serve(move |r| p.answer(r));
    let mut opts = Options::new(server.url(), tl.span().unwrap());
    opts.timeout = Duration::from_secs(120);
    let first = prometheus::fetch(&opts).unwrap();
    assert_eq!(first.timeline.len(), POINTS);
    assert_eq!(first.timeline.current_jobs.len(), 40);
    assert_eq!(first.timeline.runnable.len(), 10);
    let series = (first.timeline.runnable.len()
        + first.timeline.current_jobs.len()
        + first.timeline.stages.len()) as u64;
    eprintln!(
        "prometheus: {} points × {series} series read, {} requests",
        POINTS, first.requests
    );
    let mut g = c.benchmark_group("prometheus");
    g.sample_size(10);
    g.throughput(Throughput::Elements(POINTS as u64 * series));
    g.bench_function("a month every 30 s, 10 types, 40 machines", |b| {
        b.iter(|| prometheus::fetch(&opts).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
