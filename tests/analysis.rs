//! Findings checked against answers computed by hand on small handcrafted datasets.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hydra_bottleneck::analysis::{Steps, quality, utilization, waiting, waste};
use hydra_bottleneck::dataset::{
    BUILDS, Dataset, DatasetMeta, EVALS, JOBSETS, Origin, Runner, STEP_OUTPUTS, STEPS, TableBuilder,
};
use hydra_bottleneck::window::Window;

/// One step: (build, stepnr, status, start, stop, machine, overhead_ms, drv, times_built).
type S = (
    i32,
    i32,
    Option<i32>,
    Option<i64>,
    Option<i64>,
    &'static str,
    Option<i64>,
    &'static str,
    i32,
);
/// One build: (id, jobset, job, system, queued, stop, cached).
type B = (
    i32,
    &'static str,
    &'static str,
    &'static str,
    i64,
    Option<i64>,
    bool,
);

fn dataset(steps: &[S], builds: &[B], window: Window) -> Dataset {
    let mut t = TableBuilder::new(&STEPS, 1024);
    for &(b, n, st, start, stop, m, o, drv, tb) in steps {
        t.i32(0, Some(b));
        t.i32(1, Some(n));
        t.i32(2, Some(0));
        t.str(3, Some(drv));
        t.i32(4, Some(if st.is_some() { 0 } else { 30 }));
        t.i32(5, st);
        t.i64(6, start);
        t.i64(7, stop);
        t.str(8, Some(m));
        t.str(9, Some("x86_64-linux"));
        t.i32(10, None);
        t.i64(11, o);
        t.i32(12, Some(tb));
        t.bool(13, Some(false));
        t.end_row();
    }
    let mut bt = TableBuilder::new(&BUILDS, 1024);
    for &(id, js, job, sys, q, stop, cached) in builds {
        bt.i32(0, Some(id));
        bt.i32(1, Some(1));
        bt.str(2, Some("proj"));
        bt.str(3, Some(js));
        bt.str(4, Some(job));
        bt.str(5, Some(sys));
        bt.str(6, Some(job));
        bt.i64(7, Some(q));
        bt.i64(8, stop.map(|_| q));
        bt.i64(9, stop);
        bt.bool(10, Some(stop.is_some()));
        bt.i32(11, stop.map(|_| 0));
        bt.bool(12, Some(cached));
        bt.i32(13, Some(0));
        bt.i32(14, Some(0));
        bt.i64(15, None);
        bt.i64(16, None);
        bt.str(17, Some("/nix/store/top.drv"));
        bt.end_row();
    }
    Dataset {
        meta: DatasetMeta {
            origin: Origin::Sample {
                preset: "handmade".into(),
                seed: 0,
                scale: 1.0,
                weeks: 1,
            },
            schema_version: None,
            runner: Runner::Cpp,
            runner_basis: "test".into(),
            runner_switch: None,
            window_note: None,
            queue_runner: None,
            window,
        },
        steps: t.finish().unwrap(),
        builds: bt.finish().unwrap(),
        step_outputs: STEP_OUTPUTS.empty(),
        jobsets: JOBSETS.empty(),
        evals: EVALS.empty(),
        truth: None,
        machines: None,
        timeline: None,
        drv_graph: None,
    }
}

const M1: &str = "ssh://b1";
const M2: &str = "ssh://b2";

fn handmade() -> Dataset {
    let steps: Vec<S> = vec![
        // build 1: two steps on b1, overlapping; the second starts 100 s after queueing.
        (
            1,
            1,
            Some(0),
            Some(1000),
            Some(1600),
            M1,
            Some(1000),
            "/nix/store/a.drv",
            1,
        ),
        (
            1,
            2,
            Some(0),
            Some(1100),
            Some(1400),
            M1,
            Some(2000),
            "/nix/store/b.drv",
            1,
        ),
        // build 2: failed after 300 s on b2, then retried and rebuilt successfully.
        (
            2,
            1,
            Some(1),
            Some(1200),
            Some(1500),
            M2,
            Some(0),
            "/nix/store/c.drv",
            1,
        ),
        (
            2,
            2,
            Some(0),
            Some(1500),
            Some(1800),
            M2,
            None,
            "/nix/store/c.drv",
            1,
        ),
        (
            2,
            3,
            Some(0),
            Some(1900),
            Some(2000),
            M2,
            None,
            "/nix/store/c.drv",
            1,
        ),
        // build 3: a determinism check, built 3 times in 900 s.
        (
            3,
            1,
            Some(0),
            Some(2000),
            Some(2900),
            M1,
            None,
            "/nix/store/d.drv",
            3,
        ),
        // odd rows: stop before start; running without start; absurd overhead.
        (
            4,
            1,
            Some(0),
            Some(5000),
            Some(4000),
            M1,
            None,
            "/nix/store/e.drv",
            1,
        ),
        (4, 2, None, None, None, "", None, "/nix/store/f.drv", 1),
        (
            4,
            3,
            Some(0),
            Some(3000),
            Some(3010),
            M2,
            Some(200_000_000),
            "/nix/store/g.drv",
            1,
        ),
        // clock skew: starts 500 s before its build was queued.
        (
            5,
            1,
            Some(3),
            Some(500),
            Some(700),
            M2,
            Some(0),
            "/nix/store/h.drv",
            1,
        ),
    ];
    let builds: Vec<B> = vec![
        (1, "trunk", "hello", "x86_64-linux", 1000, Some(1600), false),
        (2, "trunk", "curl", "x86_64-linux", 1100, Some(2000), false),
        (
            3,
            "staging",
            "gcc",
            "aarch64-linux",
            1900,
            Some(2900),
            false,
        ),
        (4, "staging", "odd", "x86_64-linux", 1000, None, false),
        (
            5,
            "staging",
            "skewed",
            "x86_64-linux",
            1000,
            Some(3000),
            false,
        ),
        (6, "trunk", "cached", "x86_64-linux", 1000, Some(1000), true),
    ];
    dataset(
        &steps,
        &builds,
        Window {
            since: Some(0),
            until: Some(3600),
        },
    )
}

fn prepared() -> (Dataset, Steps, Vec<bool>, quality::Quality) {
    let ds = handmade();
    let steps = Steps::from_frame(&ds.steps).unwrap();
    let (q, usable) = quality::check(&ds, &steps).unwrap();
    (ds, steps, usable, q)
}

#[test]
fn quality_counts_and_excludes_odd_rows() {
    let (_, _, usable, q) = prepared();
    let count = |name: &str| q.checks.iter().find(|c| c.name == name).unwrap().count;
    assert_eq!(count("stop_before_start"), 1);
    assert_eq!(count("running_without_start"), 1);
    assert_eq!(count("absurd_overhead"), 1);
    assert_eq!(count("negative_overhead"), 0);
    assert_eq!(count("started_before_queued"), 1);
    assert_eq!(q.excluded_steps, 3);
    assert_eq!(usable.iter().filter(|u| !**u).count(), 3);
    assert_eq!(q.clock_skew.len(), 1);
    assert_eq!(q.clock_skew[0].machine, M2);
    assert_eq!(q.clock_skew[0].median_s, 500);
    let ex = &q
        .checks
        .iter()
        .find(|c| c.name == "stop_before_start")
        .unwrap()
        .examples;
    assert_eq!(ex, &vec!["4/1".to_string()]);
}

/// The checks run in blocks of rows on several threads: counts over many blocks add up, and the
/// examples are still the first rows in order, wherever the blocks end.
#[test]
fn quality_examples_are_the_first_rows_whatever_the_blocks() {
    const N: i32 = 200_000;
    // Stop before start at rows 150,000, 3 and 70,000 (by build order) and every 1,000th row
    // after 100,000: 103 in all, over more than two blocks of 65,536 rows.
    let bad = |b: i32| b == 3 || b == 70_000 || b == 150_000 || (b > 100_000 && b % 1000 == 0);
    let steps: Vec<S> = (0..N)
        .map(|b| {
            let (start, stop) = if bad(b) { (5000, 4000) } else { (1000, 2000) };
            (
                b,
                1,
                Some(0),
                Some(start),
                Some(stop),
                M1,
                Some(0),
                "/nix/store/a.drv",
                1,
            )
        })
        .collect();
    let builds: Vec<B> = (0..N)
        .map(|b| (b, "trunk", "job", "x86_64-linux", 900, Some(2000), false))
        .collect();
    let ds = dataset(
        &steps,
        &builds,
        Window {
            since: Some(0),
            until: Some(6000),
        },
    );
    let steps = Steps::from_frame(&ds.steps).unwrap();
    let (q, usable) = quality::check(&ds, &steps).unwrap();
    let check = q
        .checks
        .iter()
        .find(|c| c.name == "stop_before_start")
        .unwrap();
    let want = (0..N).filter(|&b| bad(b)).count();
    assert_eq!((check.count, q.excluded_steps), (want, want));
    assert_eq!(check.examples, ["3/1", "70000/1", "101000/1"]);
    assert!(!usable[150_000] && usable[149_999] && !usable[3]);
}

#[test]
fn queue_waits_by_hand() {
    let (ds, steps, usable, _) = prepared();
    let w = waiting::waiting(&ds, &steps, &usable).unwrap();
    // to_start: build 1: 0; build 2: 100; build 3: 100; build 4 has no usable step (all three
    // are odd rows); build 5 is skewed and counts as 0; build 6 is cached.
    assert_eq!(w.cached_builds, 1);
    assert_eq!(w.overall.to_start.count, 4);
    assert_eq!(w.overall.to_start.max, 100.0);
    assert_eq!(w.overall.to_start.p50, 0.0);
    // to_finish: 600, 900, 1000, 2000 and the cached build's 0; build 4 is unfinished.
    assert_eq!(w.overall.to_finish.count, 5);
    assert_eq!(w.overall.to_finish.max, 2000.0);
    let aarch = w
        .by_system
        .iter()
        .find(|g| g.key == "aarch64-linux")
        .unwrap();
    assert_eq!(aarch.to_start.count, 1);
    assert_eq!(aarch.to_finish.p50, 1000.0);
    let staging = w
        .by_jobset
        .iter()
        .find(|g| g.key == "proj:staging")
        .unwrap();
    assert_eq!(staging.to_finish.count, 2);
    // Backlog: by 1020 builds 1, 4, 5 are queued (6 finished at once); 2 joins at 1100; by 2940
    // builds 1, 2, 3 have finished; 5 finishes at 3000, leaving the unfinished build 4.
    assert_eq!(w.backlog_resolution_s, 60);
    let at = |t: i64| w.backlog.iter().find(|p| p.time == t).unwrap().queued;
    assert_eq!(at(960), 0);
    assert_eq!(at(1020), 3);
    assert_eq!(at(1140), 4);
    assert_eq!(at(2940), 2);
    assert_eq!(at(3000), 1);
}

#[test]
fn utilization_by_hand() {
    let (_, steps, usable, _) = prepared();
    let u = utilization::utilization(&steps, &usable, 0, 3600);
    assert_eq!(u.by_machine.resolution_s, 60);
    // On b1, 1100–1400 has two steps building: peak 2.
    assert_eq!(u.peak_by_machine[M1], 2);
    assert_eq!(u.peak_by_machine[M2], 1);
    let b1 = &u.by_machine.series[M1];
    // Bucket 1080–1140: step 1 the whole minute, step 2 from 1100: 1 + 40/60.
    assert!((b1[18] - (1.0 + 40.0 / 60.0)).abs() < 1e-9);
    // Total building seconds on b1 = 600 + 300 + 900.
    let total: f64 = b1.iter().sum::<f64>() * 60.0;
    assert!((total - 1800.0).abs() < 1e-6);
    let frame = u.by_system.frame().unwrap();
    assert_eq!(frame.height(), 60);
}

#[test]
fn waste_by_hand() {
    let (ds, steps, usable, _) = prepared();
    let w = waste::waste(&ds, &steps, &usable).unwrap();
    let cat = |n: &str| w.categories.iter().find(|c| c.name == n).unwrap().clone();
    // Failed: build 2 step 1, 300 s + 0 overhead.
    assert!((cat("failed").slot_hours - 300.0 / 3600.0).abs() < 1e-9);
    // Aborted: build 5's skewed step, 200 s.
    assert!((cat("aborted").slot_hours - 200.0 / 3600.0).abs() < 1e-9);
    // Rebuilt: c.drv succeeded at 1500–1800, then again 1900–2000: 100 s wasted.
    assert_eq!(cat("rebuilt").steps, 1);
    assert!((cat("rebuilt").slot_hours - 100.0 / 3600.0).abs() < 1e-9);
    // Determinism: 900 s for 3 rounds, 600 s extra.
    assert!((cat("determinism rounds").slot_hours - 600.0 / 3600.0).abs() < 1e-9);
    let wasted = (300.0 + 200.0 + 100.0 + 600.0) / 3600.0;
    assert!((w.wasted_slot_hours - wasted).abs() < 1e-9);
    assert_eq!(w.top_jobs[0].job, "gcc");
    assert_eq!(w.most_rebuilt[0].0, "/nix/store/c.drv");
    assert_eq!(w.most_rebuilt[0].1, 3);
}

/// The build of a derivation that counts as rebuilt is the later one in time, whatever the
/// order of build ids: build 10 built d.drv after build 11 had (a build queued earlier can
/// reach a shared derivation later).
#[test]
fn the_later_build_in_time_is_the_rebuilt_one() {
    let d = "/nix/store/d.drv";
    let ds = dataset(
        &[
            (10, 1, Some(0), Some(5000), Some(5200), M1, Some(0), d, 1),
            (11, 1, Some(0), Some(3000), Some(3100), M2, Some(0), d, 1),
        ],
        &[
            (10, "trunk", "d", "x86_64-linux", 100, Some(5300), false),
            (11, "trunk", "d2", "x86_64-linux", 200, Some(3200), false),
        ],
        Window::default(),
    );
    let steps = Steps::from_frame(&ds.steps).unwrap();
    let (_, usable) = quality::check(&ds, &steps).unwrap();
    let w = waste::waste(&ds, &steps, &usable).unwrap();
    let rebuilt = w.categories.iter().find(|c| c.name == "rebuilt").unwrap();
    assert_eq!(rebuilt.steps, 1);
    assert!(
        (rebuilt.slot_hours - 200.0 / 3600.0).abs() < 1e-9,
        "{}",
        rebuilt.slot_hours * 3600.0
    );
    assert_eq!(w.top_jobs[0].job, "d", "{:?}", w.top_jobs);
}

#[test]
fn empty_windows_give_empty_findings() {
    let ds = dataset(&[], &[], Window::default());
    let steps = Steps::from_frame(&ds.steps).unwrap();
    let (q, usable) = quality::check(&ds, &steps).unwrap();
    assert_eq!(q.steps, 0);
    let w = waiting::waiting(&ds, &steps, &usable).unwrap();
    assert_eq!(w.overall.to_start.count, 0);
    assert!(w.backlog.is_empty());
    let u = utilization::utilization(&steps, &usable, 0, 0);
    assert!(u.by_machine.series.is_empty());
    let x = waste::waste(&ds, &steps, &usable).unwrap();
    assert_eq!(x.wasted_slot_hours, 0.0);
}

#[test]
fn the_ledger_buckets_sum_to_the_slots_available() {
    use hydra_bottleneck::analysis::{deps, ledger};
    let (ds, steps, usable, _) = prepared();
    let u = utilization::utilization(&steps, &usable, 0, 3600);
    let edges = deps::estimate(&steps, &usable, deps::DEFAULT_GAP_S);
    let machines = hydra_bottleneck::nix::machines::parse(
        "ssh://b1 x86_64-linux - 4 1 - - -\nssh://b2 x86_64-linux,aarch64-linux - 2 1 - - -\n",
    )
    .unwrap();
    for m in [None, Some(&machines[..])] {
        let l = ledger::ledger(&ledger::Inputs {
            ds: &ds,
            steps: &steps,
            usable: &usable,
            machines: m,
            peaks: &u.peak_by_machine,
            edges: &edges,
            runnable: ledger::Runnable::Estimate,
            timeline: None,
            lo: 0,
            hi: 3600,
        })
        .unwrap();
        // Without series or graph, dispatch loss is an interval from 0.
        assert!(l.dispatch_basis.starts_with("an interval"));
        assert_eq!(l.total.dispatch_loss_h, 0.0);
        assert!(l.total.dispatch_loss_high_h.is_some());
        for r in l.machines.iter().chain(&l.by_system).chain([&l.total]) {
            let sum: f64 = r.buckets().iter().sum();
            assert!(
                (sum - r.available_h).abs() < 1e-9,
                "{}: {sum} vs {}",
                r.key,
                r.available_h
            );
            assert!(r.buckets().iter().all(|b| *b >= 0.0), "{r:?}");
        }
        let b1 = l.machines.iter().find(|r| r.key == M1).unwrap();
        // Building on b1: 600 + 300 + 900 s (the backwards row is excluded).
        assert!((b1.building_h - 1800.0 / 3600.0).abs() < 1e-9);
        // Overhead on b1: 1 s + 2 s.
        assert!((b1.overhead_h - 3.0 / 3600.0).abs() < 1e-9);
        match m {
            None => {
                assert_eq!(b1.slots, 2, "inferred from the peak");
                assert!(l.slots_basis.contains("inferred"));
            }
            Some(_) => {
                assert_eq!(b1.slots, 4);
                assert!((l.total.available_h - 6.0).abs() < 1e-9);
            }
        }
        assert!(l.notes.iter().any(|n| n.contains("not recorded")));
    }
}

#[test]
fn the_dependency_estimate_follows_the_gap_rule() {
    use hydra_bottleneck::analysis::deps::{Edge, estimate};
    let steps: Vec<S> = vec![
        (
            9,
            1,
            Some(0),
            Some(0),
            Some(100),
            M1,
            None,
            "/nix/store/a.drv",
            1,
        ),
        (
            9,
            2,
            Some(0),
            Some(0),
            Some(50),
            M1,
            None,
            "/nix/store/b.drv",
            1,
        ),
        (
            9,
            3,
            Some(0),
            Some(130),
            Some(200),
            M1,
            None,
            "/nix/store/c.drv",
            1,
        ),
        // Starts long after everything: only the latest-finishing step is taken.
        (
            9,
            4,
            Some(0),
            Some(1000),
            Some(1100),
            M1,
            None,
            "/nix/store/d.drv",
            1,
        ),
        // A failed step may wait for others but is never a dependency itself.
        (
            9,
            5,
            Some(1),
            Some(1100),
            Some(1150),
            M1,
            None,
            "/nix/store/e.drv",
            1,
        ),
        (
            9,
            6,
            Some(0),
            Some(1160),
            Some(1200),
            M1,
            None,
            "/nix/store/f.drv",
            1,
        ),
    ];
    let builds: Vec<B> = vec![(9, "trunk", "x", "x86_64-linux", 0, Some(1200), false)];
    let ds = dataset(&steps, &builds, Window::default());
    let s = Steps::from_frame(&ds.steps).unwrap();
    let usable = vec![true; s.len()];
    let e = |stepnr, dep_stepnr| Edge {
        build: 9,
        stepnr,
        dep_build: 9,
        dep_stepnr,
    };
    assert_eq!(
        estimate(&s, &usable, 60),
        vec![e(3, 1), e(4, 3), e(5, 4), e(6, 4)]
    );
    assert_eq!(
        estimate(&s, &usable, 120),
        vec![e(3, 1), e(3, 2), e(4, 3), e(5, 4), e(6, 4)]
    );
}

#[test]
fn findings_on_the_sample_against_its_ground_truth() {
    use hydra_bottleneck::analysis::{Options, analyze};
    use hydra_bottleneck::sample::{SampleSpec, generate};
    let ds = generate(&SampleSpec {
        scale: 0.3,
        ..SampleSpec::default()
    })
    .unwrap();
    let machines = ds.machines.as_ref().unwrap().machines.clone();
    let f = analyze(
        &ds,
        &Options {
            machines: Some(machines),
            ..Options::default()
        },
    )
    .unwrap();
    let a = f
        .dependencies
        .accuracy
        .expect("the sample has a true graph");
    println!(
        "dependency estimate on the sample (gap {} s): precision {:.3}, recall {:.3}, \
         same-build recall {:.3} ({} estimated, {} true edges)",
        a.gap_s, a.precision, a.recall, a.recall_same_build, a.estimated, a.true_edges
    );
    assert!(a.precision > 0.7 && a.recall_same_build > 0.9, "{a:?}");
    let l = &f.ledger;
    let sum: f64 = l.total.buckets().iter().sum();
    assert!((sum - l.total.available_h).abs() < 1e-6 * l.total.available_h);
    assert!(l.slots_basis.contains("machines file"));
    // Held time comes from the runner's series the sample carries (tests/losses.rs holds it
    // against the truth).
    assert!(l.held_basis.starts_with("measured"), "{}", l.held_basis);
    assert!(l.total.held_h > 0.0);
    let fit = f.overhead.fit.expect("sizes are known in the sample");
    // The generator copies at 40 MB/s and compresses with xz at 2.9 MB/s: together about 2.7 MB/s.
    let mbps = fit.implied_mb_per_s.unwrap();
    println!(
        "overhead fit on the sample: fixed {:.0} ms, implied {mbps:.2} MB/s",
        fit.fixed_ms
    );
    assert!((1.5..5.0).contains(&mbps), "{fit:?}");
    assert!(f.waiting.overall.to_start.count > 0);
    assert!(f.waste.wasted_slot_hours > 0.0);
}

#[test]
fn measured_codec_speeds_are_set_beside_the_overhead_fit() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let text: String = (0..20_000)
        .map(|i| format!("line {i} of a small tree\n"))
        .collect();
    std::fs::write(tree.join("a.txt"), &text).unwrap();
    let o = support::run(&[
        "compress",
        "--input",
        tree.to_str().unwrap(),
        "--codecs",
        "xz-1",
        "--format",
        "json",
        "-q",
    ]);
    assert!(o.status.success(), "{}", support::stderr(&o));
    let json = dir.path().join("c.json");
    std::fs::write(&json, &o.stdout).unwrap();
    let o = support::run(&[
        "analyze",
        "overhead",
        "--compression",
        json.to_str().unwrap(),
        "--format",
        "json",
        "-q",
    ]);
    assert!(o.status.success(), "{}", support::stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["codecs"][0];
    assert_eq!(c["codec"], "xz-1");
    let speed = c["compress_mb_s_core"].as_f64().unwrap();
    let implied = v["fit"]["implied_mb_per_s"].as_f64().unwrap();
    let share = c["share_of_size_overhead"].as_f64().unwrap();
    assert!((share - implied / speed).abs() < 1e-9);
    // A file that is not compress output is named.
    let o = support::run(&[
        "analyze",
        "overhead",
        "--compression",
        "/etc/hostname",
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(support::stderr(&o).contains("/etc/hostname"));
}

#[test]
fn the_dependency_estimate_does_not_depend_on_row_order() {
    use hydra_bottleneck::analysis::deps::estimate;
    use hydra_bottleneck::sample::{SampleSpec, generate};
    use hydra_bottleneck::source::normalize;
    let ds = normalize(
        generate(&SampleSpec {
            scale: 0.05,
            ..SampleSpec::default()
        })
        .unwrap(),
    )
    .unwrap();
    let in_order = Steps::from_frame(&ds.steps).unwrap();
    // Builds in reverse order, each build's steps still in order (ties between equally late
    // dependencies go to the first in row order, as before).
    let reversed = ds
        .steps
        .sort(
            ["build", "stepnr"],
            polars::prelude::SortMultipleOptions::default()
                .with_order_descending_multi([true, false]),
        )
        .unwrap();
    let reversed = Steps::from_frame(&reversed).unwrap();
    let all = vec![true; in_order.len()];
    let edges = estimate(&in_order, &all, 120);
    assert!(edges.len() > in_order.len() / 4, "{} edges", edges.len());
    assert!(edges.is_sorted());
    let again = estimate(&reversed, &all, 120);
    assert!(
        again == edges,
        "{} edges against {}",
        again.len(),
        edges.len()
    );
}

/// Build 1's step on b1 from 0 to 1000 s, 400 s of it overhead (import and upload under the
/// Rust runner), and build 2's step, queued at `queued`, from `start` to `stop`; the window is
/// 0–1200 s.
fn two_steps(runner: Runner, queued: i64, start: i64, stop: i64) -> Dataset {
    let mut ds = dataset(
        &[
            (
                1,
                1,
                Some(0),
                Some(0),
                Some(1000),
                M1,
                Some(400_000),
                "/nix/store/a.drv",
                1,
            ),
            (
                2,
                1,
                Some(0),
                Some(start),
                Some(stop),
                M1,
                Some(0),
                "/nix/store/b.drv",
                1,
            ),
        ],
        &[
            (1, "js", "a", "x86_64-linux", 0, Some(1000), false),
            (2, "js", "b", "x86_64-linux", queued, Some(stop), false),
        ],
        Window {
            since: Some(0),
            until: Some(1200),
        },
    );
    ds.meta.runner = runner;
    ds
}

/// The ledger of `ds` over 0–1200 s with `slots` slots on b1, dependencies from `edges` (the
/// gap estimate when `None`, else the derivation graph's).
fn ledger_of(
    ds: &Dataset,
    slots: u32,
    edges: Option<&[hydra_bottleneck::analysis::deps::Edge]>,
) -> hydra_bottleneck::analysis::ledger::Ledger {
    ledger_with(ds, slots, edges, None)
}

/// [`ledger_of`] with the runner's series.
fn ledger_with(
    ds: &Dataset,
    slots: u32,
    edges: Option<&[hydra_bottleneck::analysis::deps::Edge]>,
    timeline: Option<&hydra_bottleneck::status::timeline::Timeline>,
) -> hydra_bottleneck::analysis::ledger::Ledger {
    use hydra_bottleneck::analysis::{deps, ledger};
    let steps = Steps::from_frame(&ds.steps).unwrap();
    let (_, usable) = quality::check(ds, &steps).unwrap();
    let machines = hydra_bottleneck::nix::machines::parse(&format!(
        "ssh://b1 x86_64-linux - {slots} 1 - - -\n"
    ))
    .unwrap();
    let estimated = deps::estimate(&steps, &usable, deps::DEFAULT_GAP_S);
    let (edges, runnable) = match edges {
        Some(e) => (e, ledger::Runnable::Graph { found: 2, asked: 2 }),
        None => (&estimated[..], ledger::Runnable::Estimate),
    };
    ledger::ledger(&ledger::Inputs {
        ds,
        steps: &steps,
        usable: &usable,
        machines: Some(&machines[..]),
        peaks: &Default::default(),
        edges,
        runnable,
        timeline,
        lo: 0,
        hi: 1200,
    })
    .unwrap()
}

#[test]
fn under_the_rust_runner_a_step_holds_its_slot_from_start_to_stop_import_and_upload_included() {
    // One slot. Build 1's step runs 0–1000 s on the runner's clock, 400 s of it importing and
    // uploading (its overhead); build 2, queued at 100 s, gets the slot when it frees at 1000 s.
    // The slot was never free while build 2 waited: no dispatch loss, not even as an upper end.
    let l = ledger_of(&two_steps(Runner::Rust, 100, 1000, 1100), 1, None);
    assert_eq!(l.total.dispatch_loss_h, 0.0);
    // Counting the slot free once the build proper ended (stop − overhead) made 600–1000 s
    // look idle beside a waiting step: 420 s on the minute grid.
    assert_eq!(
        l.total.dispatch_loss_high_h,
        Some(0.0),
        "{}",
        l.dispatch_basis
    );
}

#[test]
fn under_the_rust_runner_a_dependents_wait_starts_at_its_dependencys_stop() {
    use hydra_bottleneck::analysis::deps::Edge;
    // Two slots. Build 2's step needs build 1's, which the runner saw done at 1000 s (its 400 s
    // of import and upload inside its times); it started at 1100 s while a slot was free from
    // 1000 s. Under the C++ runner the outputs would be back only at stop + overhead, 1400 s.
    let edges = [Edge::new(2, 1, 1, 1)];
    let high = |runner| {
        let l = ledger_of(&two_steps(runner, 0, 1100, 1200), 2, Some(&edges));
        l.total.dispatch_loss_high_h.unwrap() * 3600.0
    };
    assert_eq!(
        high(Runner::Cpp),
        0.0,
        "C++: ready at 1400 s, after it started"
    );
    // Ready from 1001 s (the middle of second 1000, rounded up): the minute grid's instants
    // 1020 and 1080 each stand for 60 s of one free slot.
    assert_eq!(high(Runner::Rust), 120.0);
}

/// Under the Rust runner with the series of its `/status` (`status --watch`), which says per
/// machine whether the machine-free function would hand it a step (`hasCapacity`), dispatch
/// loss is a measured figure: the start is the dispatch, and the free slots are the ones the
/// runner would fill. Two slots; build 2's step is ready at 1001 s (its dependency done at
/// 1000 s) and starts at 1100 s, while b1 runs nothing.
#[test]
fn under_the_rust_runner_the_series_of_its_status_measures_dispatch_loss() {
    use hydra_bottleneck::analysis::deps::Edge;
    use hydra_bottleneck::status::timeline::Timeline;
    let edges = [Edge::new(2, 1, 1, 1)];
    let ds = two_steps(Runner::Rust, 0, 1100, 1200);
    let times: Vec<i64> = (0..20).map(|k| k * 60).collect();
    let during = |v: f64| -> Vec<f64> {
        times
            .iter()
            .map(|&t| {
                if (1000..1100).contains(&t) {
                    v
                } else {
                    1.0 - v
                }
            })
            .collect()
    };
    let series = |held_back: bool, known: bool| Timeline {
        step_s: 60,
        times: times.clone(),
        runnable: [("x86_64-linux".to_string(), during(1.0))].into(),
        current_jobs: [("b1".to_string(), during(0.0))].into(),
        disabled: [(
            "b1".to_string(),
            times
                .iter()
                .map(|&t| f64::from(u8::from(held_back && (1000..1100).contains(&t))))
                .collect(),
        )]
        .into(),
        capacity_known: known,
        ..Timeline::default()
    };
    // Free: the samples at 1020 and 1080 s each stand for 60 s of a lost slot.
    let l = ledger_with(&ds, 2, Some(&edges), Some(&series(false, true)));
    assert!(
        l.dispatch_basis.starts_with("measured") && l.dispatch_basis.contains("hasCapacity"),
        "{}",
        l.dispatch_basis
    );
    assert_eq!(l.total.dispatch_loss_high_h, None, "a figure, not a bound");
    assert!((l.total.dispatch_loss_h * 3600.0 - 120.0).abs() < 1e-6);
    // Held back by load or pressure meanwhile: nothing lost.
    let l = ledger_with(&ds, 2, Some(&edges), Some(&series(true, true)));
    assert_eq!(l.total.dispatch_loss_h, 0.0, "{}", l.dispatch_basis);
    // A series that does not say (the runner's /metrics has no such gauge): an upper end.
    let l = ledger_with(&ds, 2, Some(&edges), Some(&series(false, false)));
    assert!(
        l.dispatch_basis.starts_with("an interval"),
        "{}",
        l.dispatch_basis
    );
    assert!((l.total.dispatch_loss_high_h.unwrap() * 3600.0 - 120.0).abs() < 1e-6);
}

/// `analyze FINDING` computes only what that finding needs (`analysis::Need`), and prints
/// exactly what computing everything prints for it: on the sample, whose derivation graph,
/// series and truth make every finding take its fullest path.
#[test]
fn each_finding_alone_equals_the_same_finding_of_the_whole_analysis() {
    use hydra_bottleneck::analysis::table::{Finding, tabulate};
    use hydra_bottleneck::analysis::{Need, Options, analyze};
    let ds = hydra_bottleneck::sample::generate(&hydra_bottleneck::sample::SampleSpec {
        scale: 0.2,
        ..Default::default()
    })
    .unwrap();
    let machines = ds.machines.as_ref().map(|m| m.machines.clone());
    let opts = |need| Options {
        machines: machines.clone(),
        need,
        ..Options::default()
    };
    let all = analyze(&ds, &opts(Need::ALL)).unwrap();
    for finding in [
        Finding::Ledger,
        Finding::Waiting,
        Finding::Utilization,
        Finding::Waste,
        Finding::Quality,
        Finding::Deps,
        Finding::Overhead,
    ] {
        let need = Need::of(finding);
        assert_ne!(need, Need::ALL, "{finding:?} asks for everything");
        let alone = analyze(&ds, &opts(need)).unwrap();
        let (a, b) = (
            tabulate(&alone, finding).unwrap(),
            tabulate(&all, finding).unwrap(),
        );
        assert_eq!(a.1, b.1, "{finding:?}: the table differs");
        assert_eq!(a.2, b.2, "{finding:?}: the JSON differs");
    }
    // What is not needed is left empty, not computed.
    let waiting = analyze(&ds, &opts(Need::of(Finding::Waiting))).unwrap();
    assert!(waiting.ledger.machines.is_empty() && waiting.waste.categories.is_empty());
    assert!(!waiting.waiting.overall.to_start_histogram.is_empty());
}

/// The output sizes come from the sample's truth by (build, stepnr): the same answer whether
/// the truth's rows are in the steps' order (the fast path the sample and its snapshots take)
/// or in any other (the search the fast path falls back to).
#[test]
fn step_sizes_do_not_depend_on_the_truths_row_order() {
    let mut ds = hydra_bottleneck::sample::generate(&hydra_bottleneck::sample::SampleSpec {
        scale: 0.05,
        ..Default::default()
    })
    .unwrap();
    let steps = Steps::from_frame(&ds.steps).unwrap();
    let (_, in_order) = hydra_bottleneck::analysis::step_sizes(&ds, &steps).unwrap();
    let known = in_order.iter().filter(|s| s.is_some()).count();
    assert!(known > steps.len() / 2, "{known} of {}", steps.len());
    let truth = ds.truth.as_mut().unwrap();
    let original = truth.steps.clone();
    truth.steps = original.reverse();
    let (_, reversed) = hydra_bottleneck::analysis::step_sizes(&ds, &steps).unwrap();
    assert_eq!(in_order, reversed);
    // The first half in place, the second reversed: both paths in one call.
    let n = original.height();
    let tail = original.slice((n / 2) as i64, n - n / 2).reverse();
    ds.truth.as_mut().unwrap().steps = original.slice(0, n / 2).vstack(&tail).unwrap();
    let (_, mixed) = hydra_bottleneck::analysis::step_sizes(&ds, &steps).unwrap();
    assert_eq!(in_order, mixed);
}
