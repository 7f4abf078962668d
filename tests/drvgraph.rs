//! The derivation graph: `.drv` files read from a store directory (`source::drvstore`) and
//! joined with the steps (`analysis::graph`). Real derivations made by the installed Nix
//! (`nix-instantiate` of plain `derivation` expressions, in a throwaway store) referenced by a
//! small Hydra history in a throwaway PostgreSQL, read through the binary; the sample's graph
//! written as `.drv` files into a snapshot, read back, accepted by Nix's own parser, and joined
//! into the sample's true dependencies.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::*;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hydra_bottleneck::analysis::deps::Edge;
use hydra_bottleneck::analysis::{self, Steps, graph, quality};
use hydra_bottleneck::nix::drv;
use hydra_bottleneck::sample::{self, SampleSpec};
use hydra_bottleneck::source::{self, drvstore, snapshot};

fn truth_edges(ds: &hydra_bottleneck::dataset::Dataset) -> BTreeSet<Edge> {
    let t = ds.truth.as_ref().unwrap();
    let c = |n: &str| -> Vec<i32> {
        t.deps
            .column(n)
            .unwrap()
            .i32()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    let (b, s, db, dn) = (c("build"), c("stepnr"), c("dep_build"), c("dep_stepnr"));
    (0..b.len())
        .map(|i| Edge {
            build: b[i],
            stepnr: s[i],
            dep_build: db[i],
            dep_stepnr: dn[i],
        })
        .collect()
}

/// The steps that got a builder slot: those whose dispatch time the truth knows.
fn dispatched(ds: &hydra_bottleneck::dataset::Dataset) -> HashSet<(i32, i32)> {
    let t = &ds.truth.as_ref().unwrap().steps;
    let b = t.column("build").unwrap().i32().unwrap();
    let s = t.column("stepnr").unwrap().i32().unwrap();
    let d = t.column("dispatch_time_ms").unwrap().i64().unwrap();
    (0..t.height())
        .filter(|&i| d.get(i).is_some())
        .map(|i| (b.get(i).unwrap(), s.get(i).unwrap()))
        .collect()
}

#[test]
fn the_samples_graph_written_and_read_back_joins_into_its_true_dependencies() {
    let spec = SampleSpec {
        scale: 0.1,
        ..SampleSpec::default()
    };
    let ds = source::normalize(sample::generate(&spec).unwrap()).unwrap();
    let g = ds.drv_graph.as_ref().expect("the sample has its graph");
    assert_eq!(g.source, "the sample's derivations");
    assert!(g.inputs.len() > 1000 && g.found == g.asked);

    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("snap");
    let manifest = snapshot::write(&ds, &snap, false).unwrap();
    let store = manifest.drv_store.as_ref().expect("listed in the manifest");
    assert_eq!(store.files as usize, g.inputs.len());
    let store_dir = snap.join(&store.path);
    // Every file is a derivation our parser reads, named by its own base name.
    let mut n = 0;
    for e in fs::read_dir(&store_dir).unwrap() {
        let e = e.unwrap();
        let bytes = fs::read(e.path()).unwrap();
        let d = drv::parse(&bytes, "written").unwrap();
        assert_eq!(drv::unparse(&d).as_bytes(), &bytes[..]);
        assert!(!d.outputs.is_empty());
        n += 1;
    }
    assert_eq!(n, g.inputs.len());

    let back = snapshot::read(&snap).unwrap();
    let g2 = back.drv_graph.as_ref().expect("read back from store/");
    assert!(g2.inputs == g.inputs, "the graph read back differs");
    assert_eq!(
        (g2.asked, g2.found, g2.missing, g2.unparsable),
        (g.asked, g.asked, 0, 0)
    );
    assert!(
        g2.source.contains("the sample's derivations"),
        "{}",
        g2.source
    );

    // Joined with the steps, the graph gives exactly the true dependencies of every step that
    // got a builder slot.
    let steps = Steps::from_frame(&back.steps).unwrap();
    let (_, usable) = quality::check(&back, &steps).unwrap();
    let joined = graph::join(g2, &back.meta, &steps, &usable);
    let on_builders = dispatched(&back);
    let ours: BTreeSet<Edge> = joined
        .edges
        .iter()
        .filter(|e| on_builders.contains(&(e.build, e.stepnr)))
        .copied()
        .collect();
    let truth = truth_edges(&back);
    assert!(truth.len() > 1000);
    let missed: Vec<_> = truth.difference(&ours).take(5).collect();
    let extra: Vec<_> = ours.difference(&truth).take(5).collect();
    assert!(
        missed.is_empty() && extra.is_empty(),
        "missed {missed:?}, extra {extra:?}"
    );
    // The estimate sees a fraction of them; the findings say the graph was used.
    let f = analysis::analyze(&back, &analysis::Options::default()).unwrap();
    match &f.runnable_basis {
        analysis::RunnableBasis::Graph {
            coverage, accuracy, ..
        } => {
            assert_eq!(coverage.share_found, 1.0);
            assert_eq!(coverage.after_start, 0);
            let a = accuracy.unwrap();
            assert!(a.recall > 0.99, "{a:?}");
            assert!(f.dependencies.accuracy.unwrap().recall < 0.5);
        }
        other => panic!("{other:?}"),
    }
}

/// Two "builds" of plain derivations: `lib` is built in build 1; build 2 builds `tool`, then
/// `app` (needing `lib` and `tool`), then `top` (needing `app`); build 3 builds `other`, needing
/// `lib` (built in build 1) and `old` (built before the history began).
const EXPRESSION: &str = r#"
let
  mk = name: attrs: derivation ({
    inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ];
  } // attrs);
in rec {
  lib = mk "lib" { };
  tool = mk "tool" { };
  app = mk "app" { inherit lib tool; requiredSystemFeatures = [ "kvm" "big-parallel" ]; };
  top = mk "top" { inherit app; };
  old = mk "old" { };
  other = mk "other" { inherit lib old; };
}
"#;

const NAMES: [&str; 6] = ["lib", "tool", "app", "top", "old", "other"];

/// A store path of a `.drv` that no store holds.
const GHOST: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-ghost.drv";
/// A `.drv` file in the directory given that is not a derivation.
const CORRUPT: &str = "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-corrupt.drv";

/// The derivations made by the installed Nix, in a throwaway store (the machine's own store
/// is never touched), copied into `drvs/` beside it (a store copied elsewhere, plus the corrupt
/// file); their store paths by name.
struct Made {
    _tmp: tempfile::TempDir,
    drvs: PathBuf,
    paths: BTreeMap<&'static str, String>,
}

fn instantiate() -> Made {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    fs::write(dir.join("e.nix"), EXPRESSION).unwrap();
    let store = format!("local?root={}", dir.join("root").display());
    let mut cmd = Command::new("nix-instantiate");
    cmd.args(["--store", &store, "--option", "build-users-group", ""])
        .arg("e.nix")
        .current_dir(&dir)
        .env("HOME", &dir)
        .env_remove("NIX_REMOTE");
    for n in NAMES {
        cmd.args(["-A", n]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running nix-instantiate (apt-get install nix-bin): {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let paths: BTreeMap<_, _> = NAMES
        .iter()
        .zip(printed.lines())
        .map(|(n, p)| (*n, p.to_string()))
        .collect();
    assert_eq!(paths.len(), NAMES.len(), "{printed}");
    let drvs = dir.join("drvs");
    fs::create_dir(&drvs).unwrap();
    for p in paths.values() {
        let base = p.rsplit('/').next().unwrap();
        fs::copy(dir.join("root/nix/store").join(base), drvs.join(base)).unwrap();
    }
    fs::write(
        drvs.join(CORRUPT.rsplit('/').next().unwrap()),
        "Derive([(\"out\",",
    )
    .unwrap();
    Made {
        _tmp: tmp,
        drvs,
        paths,
    }
}

/// A Hydra history (schema 87) whose steps build the derivations of `made`, plus a step of a
/// derivation no store holds and one whose file is corrupt; returns the reader's connection
/// string.
fn history(pg: &TestPg, made: &Made) -> String {
    let db = pg.database();
    let name = dbname(&db);
    pg.psql(&name, hydra_bottleneck::source::into::Ddl::V87.sql());
    let p = |n: &str| made.paths[n].clone();
    let t0 = 1_750_000_000;
    let mut sql = format!(
        "INSERT INTO users (username, emailaddress, password) VALUES ('o', '', '!');
         INSERT INTO projects (name, displayname, owner) VALUES ('p', 'p', 'o');
         INSERT INTO jobsets (name, project, nixexprinput, nixexprpath, emailoverride)
           VALUES ('j', 'p', 'src', 'release.nix', '');
         INSERT INTO builds (id, finished, timestamp, jobset_id, job, drvpath, system,
                             starttime, stoptime, buildstatus) VALUES
           (1, 1, {t0}, 1, 'lib', '{lib}', 'x86_64-linux', {a}, {b}, 0),
           (2, 1, {t0}, 1, 'top', '{top}', 'x86_64-linux', {c}, {d}, 0),
           (3, 1, {t0}, 1, 'other', '{other}', 'x86_64-linux', {e}, {f}, 0);
         INSERT INTO buildsteps (build, stepnr, type, drvpath, busy, status, starttime, stoptime,
                                 machine, system) VALUES ",
        lib = p("lib"),
        top = p("top"),
        other = p("other"),
        a = t0 + 100,
        b = t0 + 200,
        c = t0 + 110,
        d = t0 + 600,
        e = t0 + 700,
        f = t0 + 900,
    );
    let steps = [
        (1, 1, p("lib"), 100, 200),
        (2, 1, p("tool"), 110, 210),
        (2, 2, p("app"), 300, 400),
        (2, 3, p("top"), 500, 600),
        (3, 1, p("other"), 700, 800),
        (3, 2, GHOST.to_string(), 810, 850),
        (3, 3, CORRUPT.to_string(), 860, 900),
    ];
    let rows: Vec<String> = steps
        .iter()
        .map(|(b, s, d, start, stop)| {
            format!(
                "({b}, {s}, 0, '{d}', 0, 0, {}, {}, 'ssh://b1', 'x86_64-linux')",
                t0 + start,
                t0 + stop
            )
        })
        .collect();
    sql.push_str(&rows.join(", "));
    pg.psql(&name, &sql);
    pg.grant_reader(&name)
}

fn e(b: i32, s: i32, db: i32, ds: i32) -> Edge {
    Edge::new(b, s, db, ds)
}

#[test]
fn real_derivations_give_the_edges_across_builds_that_the_estimate_cannot_see() {
    let made = instantiate();
    let pg = TestPg::start();
    let db = history(&pg, &made);

    // The library: read the history, then the graph from the copied store.
    let mut ds = source::load(
        &source::SourceSpec::Postgres(db.clone()),
        &source::ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(ds.steps.height(), 7);
    let attached = drvstore::attach(&mut ds, Some(&made.drvs)).unwrap();
    assert_eq!(attached, drvstore::Attached::Read(made.drvs.clone()));
    let g = ds.drv_graph.as_ref().unwrap();
    assert_eq!((g.asked, g.found, g.missing, g.unparsable), (7, 5, 1, 1));
    assert_eq!(g.notes.len(), 1);
    assert!(g.notes[0].contains("corrupt.drv"), "{:?}", g.notes);
    // `app` requires features: its machine type names them, sorted (C++ `createStep`).
    assert_eq!(
        g.features.get(&made.paths["app"]).map(String::as_str),
        Some("big-parallel,kvm"),
        "{:?}",
        g.features
    );
    assert_eq!(g.features.len(), 1, "{:?}", g.features);
    // The inputs are what nix-instantiate wrote.
    assert_eq!(
        g.inputs[&made.paths["app"]],
        vec![made.paths["lib"].clone(), made.paths["tool"].clone()]
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );

    let steps = Steps::from_frame(&ds.steps).unwrap();
    let (_, usable) = quality::check(&ds, &steps).unwrap();
    let joined = graph::join(g, &ds.meta, &steps, &usable);
    let want = vec![
        e(2, 2, 1, 1), // app needs lib, built under build 1
        e(2, 2, 2, 1), // app needs tool
        e(2, 3, 2, 2), // top needs app
        e(3, 1, 1, 1), // other needs lib, built under build 1
    ];
    assert_eq!(joined.edges, want);
    let c = &joined.coverage;
    assert_eq!((c.steps, c.steps_found), (7, 5));
    assert_eq!(
        (c.inputs, c.inputs_matched, c.inputs_before_window),
        (5, 4, 1)
    );
    assert_eq!(c.after_start, 0);
    // The same-build estimate cannot see the two edges to build 1.
    let estimate: HashSet<Edge> = analysis::deps::estimate(&steps, &usable, 120)
        .into_iter()
        .collect();
    assert!(!estimate.contains(&e(2, 2, 1, 1)) && !estimate.contains(&e(3, 1, 1, 1)));

    // The binary: the note line, and the findings say the graph was used.
    let dir = made.drvs.to_str().unwrap();
    let o = run(&[
        "analyze",
        "all",
        "--format",
        "json",
        "--db",
        &db,
        "--drv-store",
        dir,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let note: Vec<&str> = err.lines().filter(|l| l.contains(".drv of")).collect();
    assert_eq!(note.len(), 1, "{err}");
    assert!(
        note[0].contains("5 of the window's 7 steps was found (71.4 %)"),
        "{err}"
    );
    assert!(note[0].contains("1 missing, 1 unreadable"), "{err}");
    assert!(err.contains("corrupt.drv"), "{err}");
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let basis = &f["runnable_basis"];
    assert_eq!(basis["kind"], "graph", "{basis}");
    assert_eq!(basis["edges"], 4);
    assert_eq!(basis["coverage"]["steps_found"], 5);

    // Without --drv-store and with no /nix/store holding them: the estimate, and said so.
    if !Path::new("/nix/store")
        .join(made.paths["lib"].rsplit('/').next().unwrap())
        .exists()
    {
        let o = run(&["analyze", "all", "--format", "json", "--db", &db]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("no --drv-store given"),
            "{}",
            stderr(&o)
        );
        let f: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(f["runnable_basis"]["kind"], "estimate");
    }

    // A directory that is not there, or not a directory: one clear line, exit 1.
    let gone = tempfile::tempdir().unwrap();
    for (bad, says) in [
        (
            gone.path().join("no-such-dir").display().to_string(),
            "does not exist",
        ),
        (made.paths["lib"].clone(), "does not exist"),
        (
            made.drvs
                .join(made.paths["lib"].rsplit('/').next().unwrap())
                .display()
                .to_string(),
            "is not a directory",
        ),
    ] {
        for cmd in ["analyze", "report", "simulate", "snapshot"] {
            let out = tempfile::tempdir().unwrap();
            let o_dir = out.path().join("o");
            let mut args = vec![cmd, "--db", &db, "--drv-store", &bad, "--quiet"];
            if cmd == "report" || cmd == "snapshot" {
                args.extend(["--out", o_dir.to_str().unwrap()]);
            }
            let o = run(&args);
            assert_one_line_error(&o, says);
            assert!(stderr(&o).contains("--drv-store"), "{}", stderr(&o));
        }
    }
}

#[test]
fn nix_reads_the_written_derivations_and_refuses_only_their_invented_output_hashes() {
    let ds = source::normalize(
        sample::generate(&SampleSpec {
            scale: 0.02,
            ..SampleSpec::default()
        })
        .unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    fs::create_dir(&store).unwrap();
    assert!(drvstore::write(&ds, &store).unwrap() > 100);
    // Nix computes the expected output paths from the input derivations too, which it reads
    // from its own store: only derivations without inputs can be checked in an empty store.
    let mut files: Vec<PathBuf> = fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let bytes = fs::read(p).unwrap();
            drv::parse(&bytes, "written").unwrap().input_drvs.is_empty()
        })
        .collect();
    assert!(files.len() >= 5);
    files.sort();
    // `nix-store --add` of a file named `….drv` parses it as a derivation (Nix's own parser)
    // and then checks that its output paths are the hash of its contents, which the sample's
    // invented paths are not: that check is the only refusal. A malformed file is refused by
    // the parser instead.
    let corrupt = tmp.path().join("bad.drv");
    fs::write(&corrupt, "Derive([(\"out\",").unwrap();
    let add = |file: &Path| {
        let root = format!("local?root={}", tmp.path().join("root").display());
        let o = Command::new("nix-store")
            .args(["--store", &root, "--option", "build-users-group", ""])
            .arg("--add")
            .arg(file)
            .env("HOME", tmp.path())
            .env_remove("NIX_REMOTE")
            .output()
            .unwrap_or_else(|e| panic!("running nix-store (apt-get install nix-bin): {e}"));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    for file in files.iter().step_by(files.len() / 5).take(5) {
        let err = add(file);
        assert!(
            err.contains("has incorrect output"),
            "{}: {err}",
            file.display()
        );
    }
    let err = add(&corrupt);
    assert!(
        !err.contains("has incorrect output") && err.contains("error"),
        "{err}"
    );
}
