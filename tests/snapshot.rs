//! Snapshots on disk and the command line around them, without a database: the sample written
//! with `sample --out` reads back identical, and every way a snapshot can be broken is named.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::*;

use std::path::{Path, PathBuf};

use hydra_bottleneck::sample::{self, SampleSpec};
use hydra_bottleneck::source::{self, snapshot};

const SCALE: &str = "0.1";

fn sample_snapshot(root: &Path) -> PathBuf {
    sample_snapshot_named(root, "sample", &[])
}

/// `sample --out ROOT/NAME` at the tests' scale, with `more` arguments.
fn sample_snapshot_named(root: &Path, name: &str, more: &[&str]) -> PathBuf {
    let dir = root.join(name);
    let mut args = vec![
        "sample",
        "--out",
        dir.to_str().unwrap(),
        "--scale",
        SCALE,
        "--quiet",
    ];
    args.extend_from_slice(more);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    dir
}

fn first_file(dir: &Path, table: &str) -> PathBuf {
    let m = snapshot::read_manifest(dir).unwrap();
    dir.join(&m.tables[table].files[0].path)
}

/// `sample --out --weeks 3`: each week is written as it is made, and the snapshot reads back as
/// the three weeks' tables together; the manifest says how many weeks over which window, and
/// the series and the `.drv` files are the last week's alone.
#[test]
fn a_sample_of_several_weeks_reads_back_as_its_weeks_together() {
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot_named(root.path(), "weeks", &["--weeks", "3"]);
    let back = snapshot::read(&dir).unwrap();
    let spec = SampleSpec {
        scale: 0.1,
        ..SampleSpec::default()
    };
    let mut made: Vec<hydra_bottleneck::dataset::Dataset> = Vec::new();
    let meta = sample::generate_weeks(&spec, 3, true, |ds| {
        made.push(ds);
        Ok(())
    })
    .unwrap();
    let mut weeks = made.into_iter();
    let mut all = weeks.next().unwrap();
    let series = all.timeline.clone().unwrap();
    for w in weeks {
        let t = all.truth.as_mut().unwrap();
        let wt = w.truth.unwrap();
        for (a, b) in [
            (&mut all.steps, w.steps),
            (&mut all.builds, w.builds),
            (&mut all.step_outputs, w.step_outputs),
            (&mut all.evals, w.evals),
            (&mut t.deps, wt.deps),
            (&mut t.steps, wt.steps),
            (t.losses.as_mut().unwrap(), wt.losses.unwrap()),
        ] {
            a.vstack_mut_owned(b).unwrap();
        }
    }
    let all = source::normalize(all).unwrap();
    assert_eq!(back.tables().len(), all.tables().len());
    for ((def, a), (_, b)) in back.tables().into_iter().zip(all.tables()) {
        assert!(a.equals_missing(b), "table {} differs", def.name);
    }
    assert_eq!(back.meta.window, meta.window);
    let week_s = 7 * 86_400;
    assert_eq!(
        meta.window.until.unwrap() - meta.window.since.unwrap(),
        3 * week_s
    );
    let m = snapshot::read_manifest(&dir).unwrap();
    assert_eq!(
        serde_json::to_value(&m.origin).unwrap()["weeks"],
        serde_json::json!(3)
    );
    // Each day of the three weeks is its own partition, none of another week's.
    assert!(m.tables["steps"].files.len() >= 21);
    assert_eq!(m.tables["jobsets"].rows, all.jobsets.height() as u64);
    let tl = back.timeline.unwrap();
    assert_eq!(tl.times, series.times);
    assert_eq!(tl.times[0], meta.window.until.unwrap() - week_s);
    // The store holds the last week's derivations, as the week's own snapshot does.
    let one = snapshot::read_manifest(&sample_snapshot(root.path())).unwrap();
    assert_eq!(m.drv_store.unwrap().files, one.drv_store.unwrap().files);
}

/// The findings folded over days give over a snapshot read a day at a time what the whole
/// analysis gives over the same snapshot read whole: with the days in one file each (`sample
/// --out`) and in several files each, written out of key order; the ledger with the runner's
/// series (free slots and held time from it, dispatch from its samples) and without it (held
/// time from the truth, free slots from the steps), over spans of a week; and `analyze` over a
/// whole snapshot prints what it prints with the same window given (which cuts it first).
#[test]
fn findings_folded_over_days_equal_the_whole_analysis() {
    use hydra_bottleneck::analysis::table::Finding;
    use hydra_bottleneck::analysis::{Need, Options, analyze, fold};
    let root = tempfile::tempdir().unwrap();
    let sample = sample_snapshot_named(root.path(), "weeks", &["--weeks", "2"]);
    // The same rows, each table handed to the writer in four interleaved pieces (every fourth
    // row), the last first, so that each day has several files and its rows are not in key
    // order.
    let mut ds = snapshot::read(&sample).unwrap();
    // The ledger without the derivation graph (with it: the next test).
    ds.drv_graph = None;
    assert!(ds.timeline.is_some() && ds.truth.is_some());
    // Some odd rows across the days, for the checks to count and name: every 97th step stops
    // before it started.
    let col = |name: &str| ds.steps.column(name).unwrap().i64().unwrap().clone();
    let (start, stop) = (col("start_time"), col("stop_time"));
    // And the first build to start on a machine runs five days: longer than a span's margin,
    // so the spans it reaches read its day besides their own.
    let machine = ds.steps.column("machine").unwrap().str().unwrap().clone();
    let first = (0..start.len())
        .filter(|&i| i % 97 != 0 && !machine.get(i).unwrap_or("").is_empty())
        .min_by_key(|&i| start.get(i).unwrap_or(i64::MAX))
        .unwrap();
    let stop: Vec<Option<i64>> = start
        .iter()
        .zip(stop.iter())
        .enumerate()
        .map(|(i, (a, b))| match i {
            _ if i % 97 == 0 => a.map(|a| a - 10),
            _ if i == first => a.map(|a| a + 5 * 86_400),
            _ => b,
        })
        .collect();
    ds.steps
        .with_column(polars::prelude::Column::new("stop_time".into(), stop))
        .unwrap();
    let pieces = root.path().join("pieces");
    let mut w = snapshot::Writer::new(&pieces, false)
        .unwrap()
        .flushing_every(1_000);
    for (def, df) in ds.tables() {
        let n = df.height() as u32;
        for k in (0..4).rev() {
            let rows: Vec<u32> = (k..n).step_by(4).collect();
            let idx = polars::prelude::IdxCa::from_vec("idx".into(), rows);
            w.add(def, df.take(&idx).unwrap()).unwrap();
        }
    }
    w.finish(&ds.meta, None).unwrap();
    let m = snapshot::read_manifest(&pieces).unwrap();
    let files = &m.tables["steps"].files;
    let days: std::collections::BTreeSet<&str> = files
        .iter()
        .map(|f| f.path.rsplit_once('/').unwrap().0)
        .collect();
    assert!(files.len() >= 2 * days.len(), "several files a day");

    let need = Need::of(Finding::Utilization)
        .and(Need::of(Finding::Quality))
        .and(Need::of(Finding::Waiting))
        .and(Need::of(Finding::Waste))
        .and(Need::of(Finding::Overhead))
        .and(Need::of(Finding::Deps))
        .and(Need::of(Finding::Ledger));
    let whole = analyze(
        &ds,
        &Options {
            need,
            ..Options::default()
        },
    )
    .unwrap();
    let odd = &whole.quality.checks[0];
    assert!(odd.name == "stop_before_start" && odd.count > 100 && odd.examples.len() == 3);
    assert!(!whole.utilization.peak_by_machine.is_empty());
    assert!(whole.waiting.by_day.len() >= 14 && whole.waiting.overall.to_start.count > 1000);
    let steps_in = |name: &str| {
        let c = whole.waste.categories.iter().find(|c| c.name == name);
        c.map_or(0, |c| c.steps)
    };
    assert!(steps_in("determinism rounds") > 0 && steps_in("failed") > 0);
    assert!(!whole.waste.most_rebuilt.is_empty() && !whole.waste.top_jobs.is_empty());
    let fit = whole.overhead.fit.expect("an overhead fit");
    assert!(
        fit.points > 1_000 && whole.overhead.sample.len() == 400,
        "{fit:?}"
    );
    assert!(whole.overhead.sizes_from.contains("ground truth"));
    let accuracy = whole
        .dependencies
        .accuracy
        .expect("the truth's dependencies");
    assert!(
        whole.dependencies.edges > 1_000 && accuracy.correct > 1_000,
        "{accuracy:?}"
    );
    let one_file_a_day = root.path().join("odd");
    snapshot::write(&ds, &one_file_a_day, false).unwrap();
    // Without the truth, the overhead fit's sizes come from the builds' top-level steps.
    let mut no_truth = ds.clone();
    no_truth.truth = None;
    let whole_without_truth = analyze(
        &no_truth,
        &Options {
            need,
            ..Options::default()
        },
    )
    .unwrap();
    let fit = whole_without_truth.overhead.fit.expect("an overhead fit");
    assert!(fit.points > 1_000, "{fit:?}");
    assert!(
        whole_without_truth
            .overhead
            .sizes_from
            .contains("Builds.size")
    );
    let without_truth = root.path().join("no-truth");
    snapshot::write(&no_truth, &without_truth, false).unwrap();
    // The pieces were written without the runner's series: held slots from the truth, free
    // slots from the steps' times.
    let mut no_series = ds.clone();
    no_series.timeline = None;
    let whole_without_series = analyze(
        &no_series,
        &Options {
            need,
            ..Options::default()
        },
    )
    .unwrap();
    // The ledger's figures from each source the folds must meet.
    for (w, held, dispatched) in [
        (&whole, "stage counters", "dispatcher's part"),
        (&whole_without_series, "ground truth", "proves no loss"),
        (&whole_without_truth, "stage counters", "dispatcher's part"),
    ] {
        let t = &w.ledger.total;
        assert!(t.building_h > 100.0 && t.overhead_h > 10.0, "{t:?}");
        assert!(
            t.held_h > 1.0 && w.ledger.held_basis.contains(held),
            "{t:?}"
        );
        assert!(
            t.dispatch_loss_high_h.unwrap() > 1.0 && w.ledger.dispatch_basis.contains(dispatched),
            "{}",
            w.ledger.dispatch_basis
        );
    }
    for (dir, whole) in [
        (&one_file_a_day, &whole),
        (&pieces, &whole_without_series),
        (&without_truth, &whole_without_truth),
    ] {
        let days = snapshot::Days::open(dir).unwrap();
        assert!(days.len() >= 14);
        assert!(!days.has_drv_store());
        let gap = hydra_bottleneck::analysis::deps::DEFAULT_GAP_S;
        let timeline = days.runner_series().unwrap();
        let side = fold::Side {
            machines: None,
            timeline: timeline.as_ref(),
            graph: None,
        };
        let folded = fold::analyze(&days, need, gap, &[("zstd-19".into(), 2.5)], side).unwrap();
        assert_eq!(folded.ledger, whole.ledger, "{}", dir.display());
        // Spans of any length, across the series' first sample or not, add up alike.
        for spans in [
            fold::Spans::Days(1),
            fold::Spans::Days(3),
            fold::Spans::Steps(600),
        ] {
            let (ledger, sizes) = folded_ledger(&days, whole, timeline.as_ref(), None, spans);
            assert_eq!(ledger, whole.ledger, "{} in spans {spans:?}", dir.display());
            // A span holds the steps that can count in it, not every step of the days read
            // for it (the days before it that can hold steps still building at its start, the
            // days after it up to the longest wait): what started in it, what still built at
            // its start, and what waited in it, the last as its wait alone unless the series
            // shows it dispatched in the span.
            let (read, held, waits) = sizes.iter().fold((0, 0, 0), |(r, h, w), s| {
                (r + s.read, h + s.held, w + s.waits)
            });
            assert!(sizes.iter().all(|s| s.held + s.waits <= s.read));
            assert!(waits > 0, "{}", dir.display());
            match spans {
                fold::Spans::Days(1) => assert!(
                    (held + waits) * 4 < read * 3 && held + waits > days.steps_rows(),
                    "{}: held {held} and {waits} waits of {read} read over {} steps",
                    dir.display(),
                    days.steps_rows()
                ),
                // About 1,800 steps a day: each day is cut in parts of about 600.
                fold::Spans::Steps(_) => assert!(
                    sizes.len() > 2 * days.len(),
                    "{}: {} spans over {} days",
                    dir.display(),
                    sizes.len(),
                    days.len()
                ),
                _ => {}
            }
        }
        assert_eq!(folded.quality, whole.quality, "{}", dir.display());
        assert_eq!(folded.utilization, whole.utilization, "{}", dir.display());
        assert_eq!(folded.waiting, whole.waiting, "{}", dir.display());
        assert_eq!(folded.waste, whole.waste, "{}", dir.display());
        assert_eq!(folded.overhead.fit, whole.overhead.fit, "{}", dir.display());
        assert_eq!(
            folded.overhead.sample,
            whole.overhead.sample,
            "{}",
            dir.display()
        );
        assert_eq!(folded.overhead.sizes_from, whole.overhead.sizes_from);
        assert_eq!(
            folded.overhead.codecs.len(),
            1,
            "the codec set beside the fit"
        );
        assert_eq!(folded.dependencies, whole.dependencies, "{}", dir.display());
        assert_eq!(folded.runnable_basis, whole.runnable_basis);
        assert_eq!((folded.since, folded.until), (whole.since, whole.until));
    }

    // Through the command line: the whole snapshot, and the same window given (cut first).
    let window = [
        "--since",
        "2025-05-26T00:00:00Z",
        "--until",
        "2025-06-09T00:00:00Z",
    ];
    for finding in [
        "utilization",
        "quality",
        "waiting",
        "waste",
        "overhead",
        "deps",
        "ledger",
        "all",
    ] {
        let args = |more: &[&'static str]| {
            let mut a = vec![
                "analyze",
                finding,
                "--snapshot",
                pieces.to_str().unwrap(),
                "--format",
                "json",
            ];
            a.extend_from_slice(more);
            a
        };
        let (folded, whole) = (run(&args(&[])), run(&args(&window)));
        assert!(folded.status.success(), "{}", stderr(&folded));
        assert!(whole.status.success(), "{}", stderr(&whole));
        assert_eq!(folded.stdout, whole.stdout, "analyze {finding}");
    }
}

#[test]
fn the_sample_roundtrips_through_a_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot(root.path());
    let back = snapshot::read(&dir).unwrap();
    let generated = source::normalize(
        sample::generate(&SampleSpec {
            scale: 0.1,
            ..SampleSpec::default()
        })
        .unwrap(),
    )
    .unwrap();
    for ((def, a), (_, b)) in back.tables().into_iter().zip(generated.tables()) {
        assert!(
            a.equals_missing(b),
            "table {} differs after the roundtrip",
            def.name
        );
    }
    // Every table comes back, the truth of the ledger's unrecorded buckets included.
    assert_eq!(back.tables().len(), generated.tables().len());
    let losses = |d: &hydra_bottleneck::dataset::Dataset| {
        d.truth
            .as_ref()
            .and_then(|t| t.losses_in(i64::MIN / 2, i64::MAX / 2).unwrap())
            .expect("the truth of the losses")
    };
    assert_eq!(losses(&back), losses(&generated));
    assert!(losses(&back).held_h > 0.0);
    assert_eq!(back.machines, generated.machines);
    assert!(back.meta.origin.is_sample());
    // The generator's queue-runner configuration travels with the data, resolved once.
    assert!(generated.meta.queue_runner.is_some());
    assert_eq!(back.meta.queue_runner, generated.meta.queue_runner);
    // Steps are partitioned by day: a week gives at least seven files.
    let m = snapshot::read_manifest(&dir).unwrap();
    assert!(m.tables["steps"].files.len() >= 7);
    assert!(
        m.tables["steps"]
            .files
            .iter()
            .all(|f| f.path.contains("/day="))
    );
}

/// A window of a snapshot is cut file by file as it is read (`snapshot::read_within`), holding
/// the window's rows rather than the snapshot's: the same tables, runner and window as reading
/// the snapshot whole and cutting it by the window's rule (`source::restrict`), for windows
/// inside one week, across the two, open on either side, relative and reaching beyond the data.
#[test]
fn a_window_of_a_snapshot_is_cut_file_by_file_as_the_whole_would_be() {
    use hydra_bottleneck::source::{ReadOptions, SourceSpec};
    use hydra_bottleneck::window::{TimeSpec, Window, WindowSpec};
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot_named(root.path(), "weeks", &["--weeks", "2"]);
    let spec = SourceSpec::Snapshot(dir.clone());
    let whole = source::load(&spec, &ReadOptions::default()).unwrap();
    let recorded = whole.meta.window;
    let (lo, hi) = (recorded.since.unwrap(), recorded.until.unwrap());
    let day = 86_400;
    let at = |t: i64| Some(TimeSpec::At(t));
    let windows = [
        (at(lo + 2 * day + 3_600), at(lo + 4 * day)),
        (at(lo + 5 * day), at(lo + 9 * day + 7)),
        (at(lo + 10 * day), None),
        (None, at(lo + day)),
        (Some(TimeSpec::Ago(3 * day)), None),
        (at(lo - 30 * day), at(hi + 30 * day)),
    ];
    for (since, until) in windows {
        let asked = WindowSpec { since, until };
        let got = source::load(
            &spec,
            &ReadOptions {
                window: asked,
                ..ReadOptions::default()
            },
        )
        .unwrap();
        let w = asked.resolve(hi).unwrap();
        let inside = Window {
            since: w.since.map(|s| s.max(lo)).or(Some(lo)),
            until: w.until.map(|u| u.min(hi)).or(Some(hi)),
        };
        let want = source::normalize(source::restrict(whole.clone(), inside).unwrap()).unwrap();
        assert!(got.steps.height() > 0, "{asked:?}");
        assert_eq!(got.tables().len(), want.tables().len(), "{asked:?}");
        for ((def, a), (_, b)) in got.tables().into_iter().zip(want.tables()) {
            assert!(a.equals_missing(b), "{asked:?}: table {} differs", def.name);
        }
        assert_eq!(got.meta.window, inside, "{asked:?}");
        assert_eq!(
            (got.meta.runner, &got.meta.runner_basis),
            (whole.meta.runner, &whole.meta.runner_basis),
            "the runner decided from every step: {asked:?}"
        );
        assert_eq!(got.timeline, whole.timeline, "{asked:?}");
    }
    // A window beside the data is refused as before, naming both.
    let beside = source::load(
        &spec,
        &ReadOptions {
            window: WindowSpec {
                since: at(hi + day),
                until: None,
            },
            ..ReadOptions::default()
        },
    );
    let Err(e) = beside else {
        panic!("a window outside the data was read")
    };
    let e = e.to_string();
    assert!(e.contains("lies outside the data"), "{e}");
}

/// A window of a snapshot folds too, over a cut of it (`source::cut_days`): a temporary
/// snapshot whose days hold the rows and description of the window read whole (the runner from
/// every step, the window covered), whose machines file, runner's series and `store/` are the
/// snapshot's own, and over which every finding folded, the ledger with the derivation graph
/// and the series included, equals the whole analysis of the window read whole; for a window
/// across the two weeks cut mid-day, a relative one open at its end, and one reaching beyond
/// the data. Through the command line the cut is said, and its directory goes when done.
#[test]
fn a_window_of_a_snapshot_folds_over_a_cut_of_it_as_the_whole_window_is_analysed() {
    use hydra_bottleneck::analysis::{Need, Options, analyze, fold};
    use hydra_bottleneck::source::{ReadOptions, SourceSpec};
    use hydra_bottleneck::window::{TimeSpec, WindowSpec};
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot_named(root.path(), "weeks", &["--weeks", "2"]);
    let spec = SourceSpec::Snapshot(dir.clone());
    let recorded = snapshot::read_manifest(&dir).unwrap().window;
    let (lo, hi) = (recorded.since.unwrap(), recorded.until.unwrap());
    let day = 86_400;
    let at = |t: i64| Some(TimeSpec::At(t));
    let spill = tempfile::tempdir().unwrap();
    let gap = hydra_bottleneck::analysis::deps::DEFAULT_GAP_S;
    let windows = [
        (at(lo + 3 * day + 5_000), at(lo + 10 * day + 7)),
        (Some(TimeSpec::Ago(4 * day)), None),
        (at(lo - 30 * day), at(hi + 30 * day)),
    ];
    for (since, until) in windows {
        let opts = ReadOptions {
            window: WindowSpec { since, until },
            ..ReadOptions::default()
        };
        let case = format!("{since:?}..{until:?}");
        let ds = source::load(&spec, &opts).unwrap();
        assert!(ds.drv_graph.is_some() && ds.timeline.is_some() && ds.truth.is_some());
        let mut made = None;
        let days =
            source::cut_days(&dir, &opts, spill.path(), |p| made = Some(p.to_path_buf())).unwrap();
        let made = made.expect("told where");
        assert!(made.starts_with(spill.path()) && days.dir().starts_with(&made));
        assert_eq!(days.meta(), ds.meta, "{case}");
        let cut = days.read_whole(&[]).unwrap();
        assert_eq!(cut.tables().len(), ds.tables().len(), "{case}");
        for ((def, a), (_, b)) in cut.tables().into_iter().zip(ds.tables()) {
            assert!(a.height() > 0, "{case}: table {} is empty", def.name);
            // The truth's losses per machine and hour are kept whole, and written again in
            // order of the hour where `sample --weeks` wrote the latest week first.
            let ordered = |df: &polars::prelude::DataFrame| match def.name {
                "truth_losses" => df.sort(["hour", "machine"], Default::default()).unwrap(),
                _ => df.clone(),
            };
            assert!(
                ordered(a).equals_missing(&ordered(b)),
                "{case}: table {} differs",
                def.name
            );
        }
        // The machines file, series and store: the snapshot's.
        let machines = days
            .machines()
            .unwrap()
            .expect("the sample's machines file");
        assert_eq!(Some(&machines), ds.machines.as_ref(), "{case}");
        let timeline = days.runner_series().unwrap();
        assert_eq!(timeline, ds.timeline, "{case}");
        let (store, source) = days.drv_store().unwrap().expect("the snapshot's store/");
        assert!(store.starts_with(&dir), "{}", store.display());
        let store = fold::Store { dir: store, source };

        let whole = analyze(
            &ds,
            &Options {
                machines: Some(machines.machines.clone()),
                need: Need::ALL,
                ..Options::default()
            },
        )
        .unwrap();
        assert!(whole.ledger.total.building_h > 10.0, "{case}");
        let side = fold::Side {
            machines: Some(&machines.machines),
            timeline: timeline.as_ref(),
            graph: Some(&store),
        };
        let folded = fold::analyze(&days, Need::ALL, gap, &[], side).unwrap();
        assert_eq!((folded.since, folded.until), (whole.since, whole.until));
        assert_eq!(
            (&folded.runner_basis, &folded.window_note),
            (&whole.runner_basis, &whole.window_note),
            "{case}"
        );
        assert_eq!(folded.quality, whole.quality, "{case}");
        assert_eq!(folded.utilization, whole.utilization, "{case}");
        assert_eq!(folded.waiting, whole.waiting, "{case}");
        assert_eq!(folded.waste, whole.waste, "{case}");
        assert_eq!(folded.overhead.fit, whole.overhead.fit, "{case}");
        assert_eq!(folded.overhead.sample, whole.overhead.sample, "{case}");
        assert_eq!(folded.dependencies, whole.dependencies, "{case}");
        assert_eq!(folded.runnable_basis, whole.runnable_basis, "{case}");
        assert_eq!(folded.ledger, whole.ledger, "{case}");
        drop(days);
        assert!(!made.exists(), "{case}");
    }
    assert_empty_dir(spill.path());

    // Through the command line: the window asked of `analyze` gives what the same window cut
    // by `snapshot` gives analysed whole.
    let copy = root.path().join("last-days");
    let o = copy_snapshot_within(&dir, &copy, &["--since", "3d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let analyze_waiting = |dir: &Path, window: &[&str]| {
        let mut args = vec!["analyze", "waiting", "--snapshot", dir.to_str().unwrap()];
        args.extend_from_slice(window);
        args.extend_from_slice(&["--format", "json"]);
        hb().env("TMPDIR", spill.path()).args(&args).run()
    };
    let (asked, copied) = (
        analyze_waiting(&dir, &["--since", "3d"]),
        analyze_waiting(&copy, &[]),
    );
    assert!(asked.status.success(), "{}", stderr(&asked));
    assert!(copied.status.success(), "{}", stderr(&copied));
    let err = stderr(&asked);
    assert!(
        err.contains("cut once into a temporary snapshot")
            && err.contains(&spill.path().display().to_string()),
        "{err}"
    );
    assert!(asked.stdout.len() > 100);
    assert_eq!(
        String::from_utf8_lossy(&asked.stdout),
        String::from_utf8_lossy(&copied.stdout)
    );
    assert_empty_dir(spill.path());
}

#[test]
fn reading_a_snapshot_through_the_cli_applies_the_window() {
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot(root.path());
    let out = root.path().join("lastday");
    let o = run(&[
        "snapshot",
        "--snapshot",
        dir.to_str().unwrap(),
        "--since",
        "1d",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let all = snapshot::read_manifest(&dir).unwrap();
    let last = snapshot::read_manifest(&out).unwrap();
    let (n_all, n_last) = (all.tables["steps"].rows, last.tables["steps"].rows);
    assert!(n_last > 0 && n_last < n_all / 3, "{n_last} of {n_all}");
    assert_eq!(last.window.until, all.window.until);
    assert_eq!(last.window.since, all.window.until.map(|u| u - 86_400));
    let csv = String::from_utf8(o.stdout).unwrap();
    assert!(csv.starts_with("table,rows,files,bytes\n"));
    assert!(csv.contains(&format!("steps,{n_last},")));
}

#[test]
fn an_existing_output_is_kept_unless_forced() {
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot(root.path());
    let before = snapshot::read_manifest(&dir).unwrap();
    let o = run(&["sample", "--out", dir.to_str().unwrap(), "--seed", "2"]);
    assert_one_line_error(&o, "--force");
    assert_eq!(snapshot::read_manifest(&dir).unwrap(), before);
    let o = run(&[
        "sample",
        "--out",
        dir.to_str().unwrap(),
        "--seed",
        "2",
        "--scale",
        SCALE,
        "--force",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(snapshot::read_manifest(&dir).unwrap().origin, before.origin);
    // Nothing but the snapshot is left in its parent.
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
}

/// `sample --out --without-drv-store`: the same tables without the `.drv` files, and the ledger
/// read from it says it estimated dependencies instead of reading the graph.
#[test]
fn a_sample_snapshot_can_leave_its_derivations_out() {
    let root = tempfile::tempdir().unwrap();
    let with = sample_snapshot(root.path());
    let without = sample_snapshot_named(root.path(), "without", &["--without-drv-store"]);
    let (a, b) = (
        snapshot::read_manifest(&with).unwrap(),
        snapshot::read_manifest(&without).unwrap(),
    );
    assert!(a.drv_store.is_some() && with.join("store").is_dir());
    assert!(b.drv_store.is_none() && !without.join("store").exists());
    assert_eq!(a.tables, b.tables, "the tables are the same");
    let o = run(&[
        "analyze",
        "--snapshot",
        without.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("dependencies within each build"),
        "{}",
        stderr(&o)
    );
    // Only with --out: a database has no store to leave out.
    let o = run(&["sample", "--into", "dbname=x", "--without-drv-store"]);
    assert!(!o.status.success());
}

/// Each finding read alone (`analyze FINDING`, which leaves unread the columns that finding
/// does not use, `analysis::Need::omit`) prints what `analyze all` prints for it: with the
/// sample's ground truth, and without it as a real Hydra's snapshot is (output sizes then come
/// from `Builds.size` and the derivation paths).
#[test]
fn each_finding_read_alone_from_a_snapshot_equals_the_same_of_analyze_all() {
    let root = tempfile::tempdir().unwrap();
    let with = sample_snapshot(root.path());
    let without = root.path().join("no-truth");
    let cp = std::process::Command::new("cp")
        .arg("-r")
        .arg(&with)
        .arg(&without)
        .status()
        .unwrap();
    assert!(cp.success());
    let manifest = without.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let tables = m["tables"].as_object_mut().unwrap();
    let truth: Vec<String> = tables
        .keys()
        .filter(|k| k.starts_with("truth_"))
        .cloned()
        .collect();
    assert!(!truth.is_empty());
    for t in truth {
        tables.remove(&t);
        std::fs::remove_dir_all(without.join(&t)).unwrap();
    }
    std::fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    // `analyze FINDINGS… --snapshot dir --format json`.
    let json = |dir: &Path, findings: &[&str]| -> serde_json::Value {
        let mut args = vec!["analyze"];
        args.extend(findings);
        args.extend([
            "--snapshot",
            dir.to_str().unwrap(),
            "--format",
            "json",
            "-q",
        ]);
        let o = run(&args);
        assert!(o.status.success(), "{findings:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    for dir in [&with, &without] {
        let all = json(dir, &["all"]);
        for finding in ["quality", "utilization", "waiting", "waste", "overhead"] {
            let alone = json(dir, &[finding]);
            assert!(!alone.is_null());
            assert_eq!(
                alone,
                all[finding],
                "{finding} read alone from {}",
                dir.display()
            );
        }
        // Several findings in one run: one object of the same findings.
        let several = json(dir, &["waiting", "utilization", "waste", "overhead"]);
        assert_eq!(several.as_object().unwrap().len(), 4);
        for finding in ["utilization", "waiting", "waste", "overhead"] {
            assert_eq!(several[finding], all[finding], "{finding} among several");
        }
        // The fit has points either way: sizes were read.
        assert!(
            all["overhead"]["fit"]["points"].as_u64().unwrap() > 100,
            "{}",
            all["overhead"]
        );
    }
    // With the truth the overhead fit takes no derivation path; without, it needs them to
    // find each build's top-level step.
    use hydra_bottleneck::analysis::{Need, table::Finding};
    let need = Need::of(Finding::Overhead);
    let paths_read = |dir: &Path| {
        let ds = snapshot::read_frames(
            dir,
            need.omit(),
            need.omit_with_truth(),
            false,
            need.truth(),
        )
        .unwrap();
        let c = ds.steps.column("drv_path").unwrap();
        c.len() - c.null_count()
    };
    assert_eq!(paths_read(&with), 0);
    assert!(paths_read(&without) > 100);
}

/// `snapshot --snapshot dir --out out`: a snapshot read and written again.
fn copy_snapshot(dir: &Path, out: &Path) -> std::process::Output {
    copy_snapshot_within(dir, out, &[])
}

/// [`copy_snapshot`] of the window `window` (`--since`, `--until`) only.
fn copy_snapshot_within(dir: &Path, out: &Path, window: &[&str]) -> std::process::Output {
    let mut args = vec!["snapshot", "--snapshot", dir.to_str().unwrap()];
    args.extend_from_slice(window);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    run(&args)
}

/// Breaks a fresh copy of the sample snapshot with `damage`, then expects reading it to fail
/// with one line naming `needle`.
fn broken(damage: impl FnOnce(&Path), needle: &str) {
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot(root.path());
    damage(&dir);
    let err = snapshot::read(&dir).unwrap_err().line();
    assert!(err.contains(needle), "`{needle}` not in: {err}");
    let out = root.path().join("copy");
    let o = copy_snapshot(&dir, &out);
    assert_one_line_error(&o, needle);
    assert!(!out.exists());
}

#[test]
fn a_sample_snapshot_from_before_the_recorded_configuration_still_carries_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot(root.path());
    let path = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let recorded = m.as_object_mut().unwrap().remove("queue_runner");
    assert!(recorded.is_some(), "the manifest records the configuration");
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let back = snapshot::read(&dir).unwrap();
    assert_eq!(
        back.meta.queue_runner.map(|q| q.local_workers),
        Some(sample::local_worker_slots(0.1))
    );
}

#[test]
fn a_machines_file_that_does_not_parse_is_named_at_load() {
    broken(
        |dir| std::fs::write(dir.join("machines"), "ssh://b x86_64-linux - many\n").unwrap(),
        "machines file, line 1: maxJobs `many`",
    );
}

#[test]
fn a_corrupt_parquet_file_is_named() {
    broken(
        |dir| {
            let f = first_file(dir, "builds");
            let mut bytes = std::fs::read(&f).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid..mid + 64].fill(0xAB);
            std::fs::write(&f, bytes).unwrap();
        },
        "corrupt Parquet",
    );
}

#[test]
fn a_truncated_file_is_named() {
    broken(
        |dir| {
            let f = first_file(dir, "steps");
            let bytes = std::fs::read(&f).unwrap();
            std::fs::write(&f, &bytes[..bytes.len() - 100]).unwrap();
        },
        "manifest.json says",
    );
}

#[test]
fn a_missing_file_is_named() {
    broken(
        |dir| std::fs::remove_file(first_file(dir, "jobsets")).unwrap(),
        "jobsets/part-0.parquet: listed in manifest.json but missing",
    );
}

#[test]
fn a_stray_file_is_named() {
    broken(
        |dir| {
            let f = first_file(dir, "evals");
            std::fs::copy(&f, f.with_file_name("part-1.parquet")).unwrap();
        },
        "part-1.parquet: is not listed",
    );
}

#[test]
fn an_unknown_format_version_is_refused() {
    broken(
        |dir| {
            let p = dir.join("manifest.json");
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(
                &p,
                text.replace(
                    &format!("\"format_version\": {}", snapshot::FORMAT_VERSION),
                    "\"format_version\": 99",
                ),
            )
            .unwrap();
        },
        "format version 99 is not supported",
    );
}

/// A version-1 snapshot (before the truth table `truth_losses`) still reads: the same snapshot
/// with that table and its files taken out and the version set back reads, with no truth of
/// losses, while a version-1 manifest listing the table is one this build wrote and reads too.
#[test]
fn a_version_1_snapshot_still_reads() {
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot(root.path());
    let path = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(m["format_version"], snapshot::FORMAT_VERSION);
    const { assert!(snapshot::FORMAT_VERSION > 1, "the test's premise") };
    m["format_version"] = 1.into();
    let tables = m["tables"].as_object_mut().unwrap();
    assert!(tables.remove("truth_losses").is_some(), "{tables:?}");
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    std::fs::remove_dir_all(dir.join("truth_losses")).unwrap();
    let back = snapshot::read(&dir).unwrap();
    let truth = back.truth.expect("the other truth tables");
    assert!(truth.losses.is_none());
    assert!(back.steps.height() > 0);
    // Older than any version there was: refused, naming the range read.
    m["format_version"] = 0.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let err = snapshot::read(&dir).unwrap_err().line();
    assert!(err.contains("format version 0 is not supported"), "{err}");
    assert!(err.contains("versions 1 to 2"), "{err}");
}

#[test]
fn a_manifest_that_disagrees_on_rows_is_refused() {
    broken(
        |dir| {
            let p = dir.join("manifest.json");
            let mut m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let rows = m["tables"]["jobsets"]["files"][0]["rows"].as_u64().unwrap();
            m["tables"]["jobsets"]["files"][0]["rows"] = (rows + 1).into();
            std::fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
        },
        "rows, manifest.json says",
    );
}

#[test]
fn a_directory_that_is_no_snapshot_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let o = run(&[
        "snapshot",
        "--snapshot",
        root.path().to_str().unwrap(),
        "--out",
        "/nonexistent/x",
    ]);
    assert_one_line_error(&o, "not a hydra-bottleneck snapshot");
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "report", "snapshot", "query", "simulate", "compress", "status", "sample", "analyze",
    ] {
        let help = run(&[cmd, "--help"]);
        assert!(help.status.success(), "{cmd} --help: {}", stderr(&help));
        assert!(!help.stdout.is_empty());
    }
}

#[test]
fn usage_errors_exit_2_and_bad_times_are_named() {
    let o = run(&["snapshot", "--out", "x", "--since", "yesterday-ish"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("yesterday-ish"));
    let o = run(&["snapshot", "--out", "x", "--db", "a", "--snapshot", "b"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Findings that cannot be printed in the format asked for are refused before any data is
/// read: the snapshot named does not exist, and the refusal is still the format's.
#[test]
fn findings_a_format_cannot_hold_are_refused_before_reading() {
    let missing = tempfile::tempdir().unwrap().path().join("none");
    let m = missing.to_str().unwrap();
    let o = run(&[
        "analyze",
        "waiting",
        "waste",
        "--format",
        "csv",
        "--snapshot",
        m,
    ]);
    assert_one_line_error(&o, "CSV holds one table");
    let o = run(&["analyze", "all", "--snapshot", m]);
    assert_one_line_error(&o, "needs --format json");
    let o = run(&[
        "analyze",
        "all",
        "waste",
        "--format",
        "json",
        "--snapshot",
        m,
    ]);
    assert_one_line_error(&o, "give it alone");
}

#[test]
fn without_a_source_the_sample_is_used_and_said_so() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("s");
    let o = run(&["snapshot", "--out", out.to_str().unwrap(), "--since", "6h"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("built-in sample"));
    let quiet = run(&[
        "snapshot",
        "--out",
        root.path().join("q").to_str().unwrap(),
        "--since",
        "6h",
        "-q",
    ]);
    assert!(quiet.status.success());
    assert!(quiet.stderr.is_empty());
}

#[test]
fn a_window_outside_the_data_is_one_clear_line() {
    let o = run(&["analyze", "ledger", "--since", "2030-01-01", "-q"]);
    assert_one_line_error(&o, "lies outside the data");
    let o = run(&[
        "analyze",
        "ledger",
        "--machines",
        "/nonexistent/machines",
        "-q",
    ]);
    assert_one_line_error(&o, "/nonexistent/machines: No such file");
    assert_eq!(stderr(&o).matches("No such file").count(), 1, "said once");
}

#[test]
fn columns_left_out_read_as_nulls_and_change_no_finding() {
    use hydra_bottleneck::analysis::{Options, analyze};
    use hydra_bottleneck::dataset::NOT_ANALYSED;
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot(root.path());
    let full = snapshot::read(&dir).unwrap();
    let lean = snapshot::read_omitting(&dir, NOT_ANALYSED).unwrap();
    for ((def, a), (_, b)) in full.tables().into_iter().zip(lean.tables()) {
        assert_eq!(a.height(), b.height(), "{}", def.name);
        def.check(b).unwrap();
        for c in def.columns {
            let (x, y) = (a.column(c.name).unwrap(), b.column(c.name).unwrap());
            if NOT_ANALYSED.contains(&(def.name, c.name)) {
                assert_eq!(
                    y.null_count(),
                    y.len(),
                    "{}.{} is left out",
                    def.name,
                    c.name
                );
                assert!(x.null_count() < x.len(), "{}.{} has data", def.name, c.name);
            } else {
                assert!(x.equals_missing(y), "{}.{} differs", def.name, c.name);
            }
        }
    }
    // The analyses read none of them: every finding is the same.
    let opts = Options::default();
    let (a, b) = (
        analyze(&full, &opts).unwrap(),
        analyze(&lean, &opts).unwrap(),
    );
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        serde_json::to_value(&b).unwrap()
    );
}

/// Zigzag varint of `v`, as Thrift's compact protocol writes an i64.
fn varint(v: i64) -> Vec<u8> {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// Rewrites, in the Thrift footer of `file`, the `nth` i64 after the first column chunk's codec
/// (0: num_values, 1: total_uncompressed_size, 2: total_compressed_size) to `value`, and the
/// footer's length and the manifest's byte count to match.
fn patch_first_column_chunk(dir: &Path, table: &str, nth: usize, value: i64) {
    let f = first_file(dir, table);
    let bytes = std::fs::read(&f).unwrap();
    let n = bytes.len();
    assert_eq!(&bytes[n - 4..], b"PAR1");
    let footer_len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    let footer_at = n - 8 - footer_len;
    let footer = &bytes[footer_at..n - 8];
    // ColumnMetaData: field 4 codec (i32 header 0x15, ZSTD = 6, zigzag 0x0c), then fields 5, 6
    // and 7 (i64 headers 0x16), each a varint.
    let mut at = footer
        .windows(3)
        .position(|w| w == [0x15, 0x0c, 0x16])
        .expect("a zstd column chunk in the footer")
        + 3;
    for _ in 0..nth {
        while footer[at] & 0x80 != 0 {
            at += 1;
        }
        at += 1;
        assert_eq!(footer[at], 0x16, "field header of the next i64");
        at += 1;
    }
    let mut end = at;
    while footer[end] & 0x80 != 0 {
        end += 1;
    }
    end += 1;
    let mut new_footer = footer[..at].to_vec();
    new_footer.extend(varint(value));
    new_footer.extend(&footer[end..]);
    let mut out = bytes[..footer_at].to_vec();
    out.extend(&new_footer);
    out.extend((new_footer.len() as u32).to_le_bytes());
    out.extend(b"PAR1");
    std::fs::write(&f, &out).unwrap();
    // The manifest is made to agree on the size, so that the footer is what gets read.
    let mpath = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    for file in m["tables"][table]["files"].as_array_mut().unwrap() {
        if dir.join(file["path"].as_str().unwrap()) == f {
            file["bytes"] = out.len().into();
        }
    }
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

#[test]
fn a_footer_with_an_absurd_column_chunk_is_one_line_not_a_panic() {
    // 2^40 as a column chunk's compressed size panicked polars' reader ("range end index
    // 1099511627780 out of range for slice of length 2503"); as its value count, likewise.
    for (nth, field) in [(2, "total_compressed_size"), (0, "num_values")] {
        for table in ["builds", "steps"] {
            let root = tempfile::tempdir().unwrap();
            let dir = sample_snapshot(root.path());
            patch_first_column_chunk(&dir, table, nth, 1 << 40);
            let f = first_file(&dir, table);
            let name = f.file_name().unwrap().to_str().unwrap().to_string();
            let err = snapshot::read(&dir).unwrap_err().line();
            assert!(
                err.contains(f.to_str().unwrap()) && err.contains("corrupt Parquet"),
                "{field} in {table}: {err}"
            );
            let o = copy_snapshot(&dir, &root.path().join("copy"));
            assert_one_line_error(&o, &name);
            assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        }
    }
}

/// Symbolic links inside a snapshot are refused, naming the link, and never followed: two
/// links to `.` in a table's directory made the walk endless (memory growing), and a link to
/// `/` walked the whole filesystem. A link that leads to a good file elsewhere is refused too:
/// a snapshot is what is inside its directory.
#[test]
fn links_inside_a_snapshot_are_refused_naming_them() {
    use std::os::unix::fs::symlink;
    type Damage = fn(&Path, &Path) -> PathBuf;
    let cases: [(&str, Damage); 6] = [
        ("two links to the table's directory itself", |dir, _| {
            symlink(".", dir.join("steps/a")).unwrap();
            symlink(".", dir.join("steps/b")).unwrap();
            dir.join("steps")
        }),
        ("a link to the root", |dir, _| {
            symlink("/", dir.join("steps/root")).unwrap();
            dir.join("steps/root")
        }),
        ("the manifest a link to a copy outside", |dir, outside| {
            let away = outside.join("manifest.json");
            std::fs::rename(dir.join("manifest.json"), &away).unwrap();
            symlink(&away, dir.join("manifest.json")).unwrap();
            dir.join("manifest.json")
        }),
        ("a listed Parquet file a link", |dir, outside| {
            let f = first_file(dir, "jobsets");
            let away = outside.join("part.parquet");
            std::fs::rename(&f, &away).unwrap();
            symlink(&away, &f).unwrap();
            f
        }),
        ("a table's directory a link", |dir, outside| {
            let away = outside.join("builds");
            std::fs::rename(dir.join("builds"), &away).unwrap();
            symlink(&away, dir.join("builds")).unwrap();
            dir.join("builds")
        }),
        ("the machines file a link to a device", |dir, _| {
            std::fs::remove_file(dir.join("machines")).unwrap();
            symlink("/dev/zero", dir.join("machines")).unwrap();
            dir.join("machines")
        }),
    ];
    for (what, damage) in cases {
        let root = tempfile::tempdir().unwrap();
        let dir = sample_snapshot(root.path());
        let outside = tempfile::tempdir().unwrap();
        let named = damage(&dir, outside.path());
        let o = hb()
            .args(["analyze", "ledger", "--snapshot"])
            .arg(&dir)
            .within(HANG)
            .run();
        assert_one_line_error(&o, "is a symbolic link");
        assert!(
            stderr(&o).contains(&named.display().to_string()),
            "{what}: {}",
            stderr(&o)
        );
    }
}

/// A table's directory nested deeper than any snapshot's layout is refused at the bound (the
/// one thing that ends a walk through a bind mount that contains itself, which is no link).
#[test]
fn a_table_directory_nested_too_deep_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot(root.path());
    let deep = dir.join("steps/a/b/c/d/e");
    std::fs::create_dir_all(&deep).unwrap();
    let o = hb()
        .args(["analyze", "ledger", "--snapshot"])
        .arg(&dir)
        .within(HANG)
        .run();
    assert_one_line_error(&o, "nested more than 4 directories deep");
    // Within the bound, an empty directory is no harm.
    std::fs::remove_dir(&deep).unwrap();
    let o = hb()
        .args(["analyze", "ledger", "--snapshot"])
        .arg(&dir)
        .within(HANG)
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `a == b` where NaN equals NaN, point by point, series by series.
fn same_timeline(
    a: &hydra_bottleneck::status::timeline::Timeline,
    b: &hydra_bottleneck::status::timeline::Timeline,
) -> bool {
    type Map = std::collections::BTreeMap<String, Vec<f64>>;
    let same = |x: &[f64], y: &[f64]| {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(p, q)| p == q || (p.is_nan() && q.is_nan()))
    };
    let fam = |x: &Map, y: &Map| {
        x.len() == y.len() && x.iter().zip(y).all(|((k, v), (l, w))| k == l && same(v, w))
    };
    (&a.source, &a.naming, a.step_s, &a.times) == (&b.source, &b.naming, b.step_s, &b.times)
        && fam(&a.runnable, &b.runnable)
        && fam(&a.running, &b.running)
        && fam(&a.current_jobs, &b.current_jobs)
        && fam(&a.disabled, &b.disabled)
        && a.stages.len() == b.stages.len()
        && a.stages
            .iter()
            .zip(&b.stages)
            .all(|((s, v), (t, w))| s == t && same(v, w))
}

#[test]
fn the_runner_series_roundtrips_through_a_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let mut ds = sample::generate(&SampleSpec {
        scale: 0.1,
        ..SampleSpec::default()
    })
    .unwrap();
    // A missing sample (a failed scrape) must stay missing, not become 0.
    let tl = ds.timeline.as_mut().expect("the sample has its series");
    let first = tl.current_jobs.keys().next().unwrap().clone();
    tl.current_jobs.get_mut(&first).unwrap()[3] = f64::NAN;
    let tl = tl.clone();
    let dir = root.path().join("snap");
    let m = snapshot::write(&ds, &dir, false).unwrap();
    let entry = m.runner_series.as_ref().expect("listed in the manifest");
    assert_eq!(entry.file.rows, tl.len() as u64);
    let back = snapshot::read(&dir).unwrap();
    let got = back.timeline.expect("read back");
    assert!(
        same_timeline(&got, &tl),
        "the series differs after the roundtrip"
    );
    assert!(got.current_jobs[&first][3].is_nan());
    assert!(!tl.stages.is_empty() && !tl.disabled.is_empty() && !tl.running.is_empty());
}

#[test]
fn a_snapshot_without_a_series_still_loads() {
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot(root.path());
    // As written before series were kept: no `runner_series` in the manifest, no file.
    let path = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let file = m["runner_series"]["file"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    m.as_object_mut().unwrap().remove("runner_series");
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    std::fs::remove_file(dir.join(file)).unwrap();
    let back = snapshot::read(&dir).unwrap();
    assert!(back.timeline.is_none());
}

#[test]
fn a_series_file_that_is_not_one_is_named() {
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot(root.path());
    let m = snapshot::read_manifest(&dir).unwrap();
    let entry = m.runner_series.unwrap();
    // Another table's file in its place, its size and rows written into the manifest.
    let other = first_file(&dir, "jobsets");
    let target = dir.join(&entry.file.path);
    std::fs::copy(&other, &target).unwrap();
    let path = dir.join("manifest.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["runner_series"]["file"]["bytes"] = std::fs::metadata(&target).unwrap().len().into();
    v["runner_series"]["file"]["rows"] = m.tables["jobsets"].rows.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let o = run(&["analyze", "--quiet", "--snapshot", dir.to_str().unwrap()]);
    assert_one_line_error(&o, "not a runner's series: its first column is not `time`");
}

#[test]
fn a_report_from_a_snapshot_takes_held_slots_from_its_series() {
    let root = tempfile::tempdir().unwrap();
    let dir = sample_snapshot(root.path());
    let out = root.path().join("report");
    let o = run(&[
        "report",
        "--quiet",
        "--snapshot",
        dir.to_str().unwrap(),
        "--no-compression",
        "--no-simulation",
        "--no-png",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("measured: the runner's stage counters (the sample's runner"),
        "held slots not from the series:\n{md}"
    );
}

/// The ledger folded over `days` in `spans` (with the derivation graph from `graph`), with the
/// window and machines' peaks the whole analysis `whole` found.
fn folded_ledger(
    days: &snapshot::Days,
    whole: &hydra_bottleneck::analysis::Findings,
    timeline: Option<&hydra_bottleneck::status::timeline::Timeline>,
    graph: Option<&hydra_bottleneck::analysis::fold::Store>,
    spans: hydra_bottleneck::analysis::fold::Spans,
) -> (
    hydra_bottleneck::analysis::ledger::Ledger,
    Vec<hydra_bottleneck::analysis::fold::SpanSize>,
) {
    let builds = days.queue_times().unwrap();
    let inputs = hydra_bottleneck::analysis::fold::LedgerInputs {
        machines: None,
        timeline,
        graph,
        peaks: &whole.utilization.peak_by_machine,
        builds: &builds,
        lo: whole.since,
        hi: whole.until,
        spans,
    };
    hydra_bottleneck::analysis::fold::ledger(days, &inputs).unwrap()
}

/// The ledger with the derivation graph folds over spans as it does without: each span's steps
/// have their `.drv` read and are matched against the whole window's successes, so that over
/// spans of any length the ledger, the graph's coverage and its edges' accuracy against the
/// sample's true dependencies equal the whole analysis'. Over two weeks of which only the last
/// kept its `.drv` files and the runner's series (as a store and a Prometheus keep recent
/// history: the first week's steps are missing), and over one week with both from its start
/// (the first span reads the series' samples from the window's start).
#[test]
fn the_ledger_with_the_derivation_graph_folds_as_the_whole_analysis() {
    use hydra_bottleneck::analysis::table::Finding;
    use hydra_bottleneck::analysis::{Need, Options, RunnableBasis, analyze, fold};
    let root = tempfile::tempdir().unwrap();
    let need = Need::of(Finding::Ledger).and(Need::of(Finding::Utilization));
    let gap = hydra_bottleneck::analysis::deps::DEFAULT_GAP_S;
    for (name, weeks) in [("two", "2"), ("one", "1")] {
        let dir = sample_snapshot_named(root.path(), name, &["--weeks", weeks]);
        let ds = snapshot::read(&dir).unwrap();
        assert!(ds.drv_graph.is_some() && ds.timeline.is_some() && ds.truth.is_some());
        let days = snapshot::Days::open(&dir).unwrap();
        let (store, source) = days.drv_store().unwrap().expect("the sample's store/");
        let store = fold::Store { dir: store, source };
        for series in [true, false] {
            let mut ds = ds.clone();
            if !series {
                ds.timeline = None;
            }
            let whole_of = |ds: &hydra_bottleneck::dataset::Dataset| {
                let o = Options {
                    need,
                    ..Options::default()
                };
                analyze(ds, &o).unwrap()
            };
            let whole = whole_of(&ds);
            let RunnableBasis::Graph {
                coverage, accuracy, ..
            } = &whole.runnable_basis
            else {
                panic!("the graph's basis: {:?}", whole.runnable_basis);
            };
            let found = coverage.steps_found as f64 / coverage.steps as f64;
            match weeks {
                // Half the window's steps are the first week's, whose `.drv` was not kept.
                "2" => assert!(
                    (0.35..0.65).contains(&found) && coverage.drvs_missing > 1_000,
                    "{coverage:?}"
                ),
                _ => assert!(found == 1.0 && coverage.drvs_missing == 0, "{coverage:?}"),
            }
            assert!(coverage.inputs_matched > 1_000, "{coverage:?}");
            assert!(accuracy.as_ref().is_some_and(|a| a.correct > 1_000));
            let side = fold::Side {
                machines: None,
                timeline: ds.timeline.as_ref(),
                graph: Some(&store),
            };
            let folded = fold::analyze(&days, need, gap, &[], side).unwrap();
            let case = format!("{name} week(s), series {series}");
            assert_eq!(folded.ledger, whole.ledger, "{case}");
            assert_eq!(folded.runnable_basis, whole.runnable_basis, "{case}");
            for spans in [fold::Spans::Days(1), fold::Spans::Steps(600)] {
                let timeline = ds.timeline.as_ref();
                let (ledger, sizes) = folded_ledger(&days, &whole, timeline, Some(&store), spans);
                assert!(sizes.len() >= 7, "{case}, {spans:?}: {} spans", sizes.len());
                assert_eq!(ledger, whole.ledger, "{case}, spans {spans:?}");
            }
            // Without the graph, both estimate when steps were runnable, and differ from it.
            ds.drv_graph = None;
            let estimated = whole_of(&ds);
            let side = fold::Side {
                graph: None,
                ..side
            };
            let folded = fold::analyze(&days, need, gap, &[], side).unwrap();
            assert_eq!(folded.ledger, estimated.ledger, "{case}, without the graph");
            assert_ne!(estimated.ledger.total, whole.ledger.total, "{case}");
        }
    }
}
