//! Ingestion from PostgreSQL: the steps of the sample at `--scale 10` (about a million rows)
//! decoded into a polars frame, side by side with the same COPY read and discarded (the rate
//! no reader can beat). Target (design.md): ingestion ≥ 70 % of the raw rate.
//!
//! `cargo bench --bench ingest` starts its own throwaway PostgreSQL (or uses
//! `HYDRA_TEST_DATABASE_URL`); `HB_BENCH_SCALE` changes the sample scale.

// A benchmark's setup that fails should stop it: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{StreamExt, pin_mut};
use hydra_bottleneck::dataset::STEPS;
use hydra_bottleneck::progress::Progress;
use hydra_bottleneck::sample::{SampleSpec, generate};
use hydra_bottleneck::source::into::{Ddl, load_into};
use hydra_bottleneck::source::postgres::{connect, copy_frame, inspect, queries};
use hydra_bottleneck::window::Window;

#[path = "../tests/support/pg.rs"]
#[allow(dead_code)] // the benchmark uses a few of its helpers
mod pg;
use pg::TestPg;

fn ingest(c: &mut Criterion) {
    let scale: f64 = std::env::var("HB_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let pg = TestPg::start();
    let db = pg.database();
    let params = hydra_bottleneck::conninfo::resolve(&db, &|_| None).unwrap();
    // The runtime every database read runs on.
    let rt = hydra_bottleneck::source::postgres::runtime().unwrap();
    let ds = generate(&SampleSpec {
        scale,
        ..SampleSpec::default()
    })
    .unwrap();
    let rows = ds.steps.height();
    rt.block_on(load_into(&params, &ds, Ddl::V87)).unwrap();
    drop(ds);
    pg.psql(db.rsplit('=').next().unwrap(), "VACUUM ANALYZE");
    let session = rt
        .block_on(connect(&params, true, Duration::from_secs(3600)))
        .unwrap();
    let info = rt.block_on(inspect(&session)).unwrap();
    let (_, select) = queries(&info, &Window::default(), &[])
        .into_iter()
        .find(|(def, _)| def.name == "steps")
        .unwrap();
    let copy = format!("COPY ({select}) TO STDOUT (FORMAT binary)");

    let mut group = c.benchmark_group(format!("ingest_steps_{rows}"));
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("raw_copy_discard", |b| {
        b.iter(|| {
            rt.block_on(async {
                let stream = session.client.copy_out(copy.as_str()).await.unwrap();
                pin_mut!(stream);
                let mut bytes = 0usize;
                while let Some(chunk) = stream.next().await {
                    bytes += chunk.unwrap().len();
                }
                bytes
            })
        })
    });
    group.bench_function("copy_into_frame", |b| {
        b.iter(|| {
            let df = rt
                .block_on(copy_frame(
                    &session,
                    &STEPS,
                    &select,
                    &Progress::hidden(),
                    &[],
                ))
                .unwrap();
            assert_eq!(df.height(), rows);
            df
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
