//! Faults against a real PostgreSQL, and Ctrl-C, while `snapshot`, `compress` and
//! `status --watch` run: the backend killed mid-COPY, the server stopped during a read, the
//! statement timeout, a role without SELECT, a hot standby, and SIGINT at every stage. Each
//! ends in one clear line (exit 1, or 130 for Ctrl-C) or a correct result, and never leaves a
//! partial output behind.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use support::bin::Hb;
use support::http::{self, Response};

/// Small enough to load in a few seconds, large enough to hold every table's kinds of rows
/// (about 12 000 steps).
const SCALE: &str = "0.2";

/// Each step read through the slowed view costs this much: with about 12 000 steps the COPY of
/// steps takes about 25 s, far longer than any test needs to act on it, and its rows flow
/// from the first second.
const SLOW_ROW: &str = "0.002";

/// Bound on waiting for something a test expects to see (a COPY running, a file appearing):
/// far above what it takes on a loaded two-core machine, so that only a real hang fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A cluster with the sample loaded; returns it, the superuser connection string and the
/// database name.
/// Replaces `buildsteps` by a view that sleeps [`SLOW_ROW`] seconds per row, so that reading
/// it takes long enough to act while the COPY streams. A real way to be slow: the server
/// produces the rows one by one, as it would from a cold disk.
fn slow_down_steps(pg: &TestPg, name: &str) {
    // A row-level security policy applies to the reader role the tests connect as (a view
    // would be refused: it is not a table), and sleeps a little on every row it passes.
    pg.psql(
        name,
        &format!(
            "CREATE FUNCTION slow_row(int) RETURNS int VOLATILE LANGUAGE sql \
               AS $$ SELECT $1 FROM pg_sleep({SLOW_ROW}) $$; \
             ALTER TABLE buildsteps ENABLE ROW LEVEL SECURITY; \
             CREATE POLICY slow ON buildsteps FOR SELECT USING (slow_row(stepnr) IS NOT NULL)"
        ),
    );
}

/// Waits until our session is streaming the steps (their own columns, not the keys the step
/// outputs follow), and returns its backend's pid.
fn wait_for_copy_of_steps(pg: &TestPg, name: &str) -> String {
    let started = Instant::now();
    loop {
        let pid = pg.psql(
            name,
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'hydra-bottleneck' \
             AND state = 'active' AND query LIKE 'COPY (SELECT s.% FROM \"public\".buildsteps s%'",
        );
        if !pid.is_empty() {
            return pid;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the COPY of steps never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the server has no session of ours left (it sees the client gone when it next
/// sends or reads).
fn wait_for_our_sessions_to_end(pg: &TestPg, name: &str) {
    let started = Instant::now();
    while pg.psql(
        name,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hydra-bottleneck'",
    ) != "0"
    {
        assert!(started.elapsed() < PATIENCE, "our session outlived Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(args: &[&str]) -> Child {
    hb().args(args).spawn()
}

fn sigint(child: &Child) {
    signal(child, "INT");
}

/// The Ctrl-C contract: exit 130, one line saying so, no panic, nothing on stdout.
fn assert_interrupted(o: &Output) {
    assert_stopped(o, 130);
}

/// The contract of a stop asked for by a signal: exit `code` (128 + the signal), one line
/// saying so, no panic, nothing on stdout.
fn assert_stopped(o: &Output, code: i32) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("hydra-bottleneck: interrupted"),
        "last line: {last}; all: {err}"
    );
    assert!(o.stdout.is_empty(), "no rows after Ctrl-C");
}

/// Starts `run`, presses Ctrl-C while it copies the (slowed) steps, and checks that it stopped
/// within seconds, by the Ctrl-C contract.
fn interrupt_the_copy(pg: &TestPg, name: &str, run: Hb) {
    let child = run.spawn();
    wait_for_copy_of_steps(pg, name);
    sigint(&child);
    let started = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "Ctrl-C took {:?} to act",
        started.elapsed()
    );
    assert_interrupted(&o);
}

/// The names in `dir`, sorted: a leftover `.x.partial-PID` shows up here.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every file under `dir` with its bytes, to show that a directory did not change.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

// ---- the server fails under a read ------------------------------------------------------------

#[test]
fn a_backend_terminated_mid_copy_is_one_line_and_leaves_no_snapshot() {
    let (pg, db, name) = loaded(SCALE, "80");
    slow_down_steps(&pg, &name);
    let out = tempfile::tempdir().unwrap();
    let snap = out.path().join("snap");
    let child = spawn(&["snapshot", "--db", &db, "--out", snap.to_str().unwrap()]);
    let pid = wait_for_copy_of_steps(&pg, &name);
    // Let rows flow first: the cut comes in the middle of the stream, not before it.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        pg.psql(&name, &format!("SELECT pg_terminate_backend({pid})")),
        "t"
    );
    let o = child.wait_with_output().unwrap();
    // `snapshot --db` reads the steps a range at a time, each range's outputs after it (both
    // stream the slowed rows of BuildSteps): the cut lands in one or the other.
    assert_one_line_error(&o, "reading step");
    assert!(
        stderr(&o).contains("terminating connection due to administrator command"),
        "{}",
        stderr(&o)
    );
    assert!(!snap.exists(), "no snapshot may be left behind");
    assert_empty_dir(out.path());
}

#[test]
fn the_server_stopped_during_a_read_is_one_line_and_leaves_no_snapshot() {
    let (pg, db, name) = loaded(SCALE, "80");
    slow_down_steps(&pg, &name);
    let out = tempfile::tempdir().unwrap();
    let snap = out.path().join("snap");
    let child = spawn(&["snapshot", "--db", &db, "--out", snap.to_str().unwrap()]);
    wait_for_copy_of_steps(&pg, &name);
    std::thread::sleep(Duration::from_secs(1));
    // As in a crash or a kill -9 of the postmaster: the connection just ends.
    pg.stop("immediate");
    let o = child.wait_with_output().unwrap();
    // `snapshot --db` reads the steps a range at a time, each range's outputs after it (both
    // stream the slowed rows of BuildSteps): the cut lands in one or the other.
    assert_one_line_error(&o, "reading step");
    assert!(!snap.exists(), "no snapshot may be left behind");
    assert_empty_dir(out.path());
}

#[test]
fn the_statement_timeout_is_one_line_and_leaves_no_snapshot() {
    let (pg, db, name) = loaded(SCALE, "80");
    slow_down_steps(&pg, &name);
    let out = tempfile::tempdir().unwrap();
    let snap = out.path().join("snap");
    let started = Instant::now();
    let o = run(&[
        "snapshot",
        "--db",
        &db,
        "--out",
        snap.to_str().unwrap(),
        "--statement-timeout",
        "1",
    ]);
    assert_one_line_error(&o, "canceling statement due to statement timeout");
    assert!(stderr(&o).contains("reading steps"), "{}", stderr(&o));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the slow read was not cut at 1 s"
    );
    assert!(!snap.exists());
    assert_empty_dir(out.path());
}

#[test]
fn a_role_without_select_on_a_table() {
    let (pg, db, name) = loaded(SCALE, "80");
    let reader = db.replace("user=postgres", "user=reader");
    let out = tempfile::tempdir().unwrap();
    let snap = out.path().join("snap");
    let snapshot = |extra: &[&str]| {
        let mut args = vec!["snapshot", "--db", &reader, "--out", snap.to_str().unwrap()];
        args.extend(extra);
        run(&args)
    };
    pg.psql(
        &name,
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader; \
         REVOKE SELECT ON buildsteps FROM reader",
    );
    // A table the role cannot see at all is not in information_schema: named as missing.
    let o = snapshot(&[]);
    assert_one_line_error(
        &o,
        "table buildsteps is missing or this role may not read it",
    );
    assert!(!snap.exists());

    // A role that may see the table (it may insert) but not read it: the COPY is refused.
    pg.psql(&name, "GRANT INSERT ON buildsteps TO reader");
    let o = snapshot(&[]);
    assert_one_line_error(&o, "permission denied for table buildsteps");
    assert!(stderr(&o).contains("reading steps"), "{}", stderr(&o));
    assert!(!snap.exists());
    assert_empty_dir(out.path());

    // Without the optional evaluations the snapshot is written, and the gap said.
    pg.psql(
        &name,
        "GRANT SELECT ON buildsteps TO reader; REVOKE ALL ON jobsetevals FROM reader",
    );
    let o = snapshot(&["--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("table jobsetevals is missing or this role may not read it"),
        "{}",
        stderr(&o)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(manifest["tables"]["evals"]["rows"], 0);
    let steps = pg.psql(&name, "SELECT count(*) FROM buildsteps");
    assert_eq!(manifest["tables"]["steps"]["rows"].to_string(), steps);
}

#[test]
fn a_hot_standby_is_read_like_its_primary_and_refuses_writes() {
    let (pg, db, name) = loaded(SCALE, "80");
    let standby = pg.standby();
    let standby_db = standby.conninfo(&name);
    assert_eq!(
        standby.psql(&name, "SELECT pg_is_in_recovery()"),
        "t",
        "the standby is in recovery"
    );
    let out = tempfile::tempdir().unwrap();
    let (a, b) = (out.path().join("primary"), out.path().join("standby"));
    for (conn, dir) in [(&db, &a), (&standby_db, &b)] {
        let o = run(&["snapshot", "--db", conn, "--out", dir.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let (pa, pb) = (
        hydra_bottleneck::source::snapshot::read(&a).unwrap(),
        hydra_bottleneck::source::snapshot::read(&b).unwrap(),
    );
    for ((def, x), (_, y)) in pa.core_tables().iter().zip(pb.core_tables().iter()) {
        assert!(x.height() > 0 || def.name == "evals", "{}", def.name);
        assert!(x.equals_missing(y), "table {} differs", def.name);
    }
    // The one writer cannot write to a standby: one line, not a hang or a panic.
    let fresh = standby.conninfo("postgres");
    let o = run(&["sample", "--into", &fresh, "--scale", "0.01"]);
    assert_one_line_error(&o, "read-only transaction");
}

// ---- the load ---------------------------------------------------------------------------------

/// `sample --into --weeks 3` writes each week as it is made, all in one transaction: Ctrl-C
/// while it writes its second week (the first already sent) leaves the database as it found
/// it, without a table, and a new load into it succeeds.
#[test]
fn a_load_of_weeks_stopped_in_its_second_week_leaves_the_database_empty() {
    let pg = TestPg::start();
    let db = pg.database();
    let name = dbname(&db);
    let tables = "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                  WHERE n.nspname = 'public'";
    let child = spawn(&[
        "sample", "--into", &db, "--scale", SCALE, "--weeks", "3", "--quiet",
    ]);
    // Each week's steps go in a COPY of their own; a second start seen is the second week's.
    let mut starts: Vec<String> = Vec::new();
    let started = Instant::now();
    while starts.len() < 2 {
        let start = pg.psql(
            &name,
            "SELECT query_start FROM pg_stat_activity WHERE application_name = 'hydra-bottleneck' \
             AND query LIKE 'COPY buildsteps %'",
        );
        if !start.is_empty() && !starts.contains(&start) {
            starts.push(start);
        }
        assert!(
            started.elapsed() < PATIENCE,
            "never saw the second week's steps written: {starts:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    sigint(&child);
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success(), "the load was stopped: {}", stderr(&o));
    wait_for_our_sessions_to_end(&pg, &name);
    assert_eq!(pg.psql(&name, tables), "0", "the stopped load left tables");
    let o = run(&["sample", "--into", &db, "--scale", SCALE, "--quiet"]);
    assert!(o.status.success(), "a new load: {}", stderr(&o));
    assert_ne!(pg.psql(&name, tables), "0");
}

// ---- Ctrl-C -----------------------------------------------------------------------------------

#[test]
fn ctrl_c_during_the_copy_leaves_no_snapshot_and_keeps_an_old_one() {
    let (pg, db, name) = loaded(SCALE, "80");
    // An existing snapshot, to be replaced with --force: it must survive the interruption.
    let out = tempfile::tempdir().unwrap();
    let snap = out.path().join("snap");
    let o = run(&["snapshot", "--db", &db, "--out", snap.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = contents(&snap);
    slow_down_steps(&pg, &name);
    for force in [false, true] {
        let target = if force {
            snap.clone()
        } else {
            out.path().join("new")
        };
        let mut args = vec!["snapshot", "--db", &db, "--out", target.to_str().unwrap()];
        if force {
            args.push("--force");
        }
        interrupt_the_copy(&pg, &name, hb().args(&args));
        assert_eq!(names_in(out.path()), ["snap"], "force={force}");
        assert_eq!(contents(&snap), before, "the old snapshot is unchanged");
        // The server sees the client gone (when it next sends rows): no session of ours is
        // left reading. Waiting for that also keeps the next round from taking this round's
        // session for its own.
        wait_for_our_sessions_to_end(&pg, &name);
    }
}

#[test]
fn ctrl_c_during_a_report_leaves_no_report_and_keeps_an_old_one() {
    let (pg, db, name) = loaded(SCALE, "80");
    let out = tempfile::tempdir().unwrap();
    let old = out.path().join("old");
    // An existing report, to be replaced with --force: it must survive the interruption.
    let o = run(&[
        "report",
        "--db",
        &db,
        "--out",
        old.to_str().unwrap(),
        "--no-compression",
        "--no-simulation",
        "--no-png",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = contents(&old);
    // While the history is read from the database (the COPY of steps, slowed down) into the
    // temporary snapshot the findings fold over ...
    slow_down_steps(&pg, &name);
    let spill = tempfile::tempdir().unwrap();
    interrupt_the_copy(
        &pg,
        &name,
        hb().env("TMPDIR", spill.path()).args([
            "report",
            "--db",
            &db,
            "--out",
            old.to_str().unwrap(),
            "--force",
            "--no-compression",
        ]),
    );
    assert_eq!(names_in(out.path()), ["old"]);
    assert_eq!(contents(&old), before, "the old report is unchanged");
    assert_empty_dir(spill.path());
    // `analyze --db` writes the same temporary snapshot, and leaves it as little.
    interrupt_the_copy(
        &pg,
        &name,
        hb().env("TMPDIR", spill.path())
            .args(["analyze", "--db", &db]),
    );
    assert_empty_dir(spill.path());
    // ... and later, while the built-in sample is analysed and simulated (seconds of work in
    // a test build): it stops at the next stage and writes nothing.
    let fresh = out.path().join("fresh");
    let mut child = spawn(&[
        "report",
        "--out",
        fresh.to_str().unwrap(),
        "--no-compression",
        "--no-png",
    ]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "finished too soon");
    sigint(&child);
    let o = child.wait_with_output().unwrap();
    assert_interrupted(&o);
    assert_eq!(names_in(out.path()), ["old"], "nothing of the new report");
}

/// `analyze` over a window of a snapshot first cuts the window into a temporary snapshot
/// (`source::cut_days`): Ctrl-C while that is there, being cut or folded over, leaves nothing
/// of it.
#[test]
fn ctrl_c_over_a_window_of_a_snapshot_leaves_no_temporary_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let snap = root.path().join("snap");
    let o = run(&[
        "sample",
        "--out",
        snap.to_str().unwrap(),
        "--scale",
        SCALE,
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let spill = tempfile::tempdir().unwrap();
    let child = hb()
        .env("TMPDIR", spill.path())
        .args([
            "analyze",
            "all",
            "--snapshot",
            snap.to_str().unwrap(),
            "--since",
            "5d",
            "--format",
            "json",
        ])
        .spawn();
    let started = Instant::now();
    while std::fs::read_dir(spill.path()).unwrap().count() == 0 {
        assert!(
            started.elapsed() < PATIENCE,
            "no temporary snapshot was made"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    sigint(&child);
    let o = child.wait_with_output().unwrap();
    assert_interrupted(&o);
    assert_empty_dir(spill.path());
}

#[test]
fn ctrl_c_while_a_snapshot_is_written_leaves_nothing() {
    signal_while_a_snapshot_is_written_leaves_nothing("INT", 130);
}

/// What `timeout`, systemd and CI runners send: handled like Ctrl-C, with the shell's code.
#[test]
fn sigterm_while_a_snapshot_is_written_leaves_nothing() {
    signal_while_a_snapshot_is_written_leaves_nothing("TERM", 143);
}

/// A closed terminal or SSH session.
#[test]
fn sighup_while_a_snapshot_is_written_leaves_nothing() {
    signal_while_a_snapshot_is_written_leaves_nothing("HUP", 129);
}

/// Starts `sample --out snap` (in `out`) and waits until its staged directory appears: the
/// child, that directory, and when it started. The sample at scale 4 takes seconds to write as
/// Parquet (scale 2 took 1.8 s on a busy two-core machine); the staged directory appears when
/// writing starts.
fn start_writing_a_sample(out: &Path, snap: &Path) -> (Child, PathBuf, Instant) {
    let child = spawn(&[
        "sample",
        "--out",
        snap.to_str().unwrap(),
        "--scale",
        "4",
        "--quiet",
    ]);
    let started = Instant::now();
    let staged = loop {
        if let Some(n) = names_in(out).into_iter().find(|n| n.contains(".partial-")) {
            break out.join(n);
        }
        assert!(started.elapsed() < PATIENCE, "writing never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    (child, staged, started)
}

/// Sends `sig` while `sample --out` writes its Parquet files: the run stops with `code` and
/// leaves no staged directory.
fn signal_while_a_snapshot_is_written_leaves_nothing(sig: &str, code: i32) {
    let out = tempfile::tempdir().unwrap();
    let snap = out.path().join("snap");
    let (child, staged, started) = start_writing_a_sample(out.path(), &snap);
    // Some Parquet files are written already: the interruption comes mid-snapshot.
    while contents(&staged).is_empty() {
        assert!(started.elapsed() < PATIENCE, "no file written");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, sig);
    let o = child.wait_with_output().unwrap();
    assert_stopped(&o, code);
    assert_empty_dir(out.path());
}

/// A directory that appears at `--out` while a run without --force writes (a second run into
/// the same path, or someone's `mkdir` and files) is left intact: the run fails with one line
/// and takes its staged output away, rather than moving the newcomer aside and deleting it.
#[test]
fn a_destination_created_during_the_run_survives_intact() {
    let out = tempfile::tempdir().unwrap();
    let snap = out.path().join("snap");
    // The start-up check has passed once the staged directory exists.
    let (child, _, _) = start_writing_a_sample(out.path(), &snap);
    std::fs::create_dir(&snap).unwrap();
    std::fs::write(snap.join("theirs"), "not to be lost").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_one_line_error(&o, "appeared while this run was writing");
    assert!(o.stdout.is_empty(), "nothing reported as written");
    assert_eq!(
        contents(&snap),
        [("theirs".to_string(), b"not to be lost".to_vec())]
    );
    assert_eq!(
        names_in(out.path()),
        ["snap"],
        "no staged or moved-aside leftover"
    );
}

/// Serves a binary cache of one uncompressed NAR, `nar/<name>`, sending its body in pieces of
/// 16 KiB a tenth of a second apart (160 KiB/s), so that a download of it takes seconds.
/// Returns the cache URL and the store path.
fn slow_cache(nar: Vec<u8>) -> (String, String) {
    use hydra_bottleneck::nix::nar::NarHash;
    let hash = NarHash::of(&nar);
    let store_hash = "0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs";
    let store_path = format!("/nix/store/{store_hash}-slow");
    let narinfo = format!(
        "StorePath: {store_path}\nURL: nar/slow.nar\nCompression: none\nFileHash: {hash}\n\
         FileSize: {len}\nNarHash: {hash}\nNarSize: {len}\nReferences: \n",
        len = nar.len()
    );
    let server = http::serve(move |req| {
        if req.path == "/nix-cache-info" {
            Response::ok("StoreDir: /nix/store\n")
        } else if req.path.ends_with(".narinfo") {
            Response::ok(narinfo.as_str())
        } else if req.path.ends_with("slow.nar") {
            Response::ranged(&nar, req).pace(16 << 10, Duration::from_millis(100))
        } else {
            Response::not_found()
        }
    });
    (server.url(), store_path)
}

/// A NAR of one regular file of `len` bytes that do not compress.
fn nar_of(len: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    let f = dir.path().join("blob");
    std::fs::write(&f, bytes).unwrap();
    let mut nar = Vec::new();
    hydra_bottleneck::nix::nar::dump_path(&f, &mut nar).unwrap();
    nar
}

#[test]
fn ctrl_c_during_a_download_keeps_the_part_for_the_next_run() {
    let nar = nar_of(1 << 20);
    let (url, store_path) = slow_cache(nar.clone());
    let work = tempfile::tempdir().unwrap();
    let paths = work.path().join("paths");
    std::fs::write(&paths, format!("{store_path}\n")).unwrap();
    let downloads = work.path().join("downloads");
    let site = downloads.join(url.trim_start_matches("http://").replace(':', "_"));
    let args = [
        "compress",
        "--input",
        &url,
        "--paths",
        paths.to_str().unwrap(),
        "--download-dir",
        downloads.to_str().unwrap(),
        "--codecs",
        "zstd-1",
        "--format",
        "json",
        "--quiet",
    ];
    let child = spawn(&args);
    let part = site.join("slow.nar.part");
    let started = Instant::now();
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < 64 << 10 {
        assert!(started.elapsed() < PATIENCE, "the download never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    sigint(&child);
    let o = child.wait_with_output().unwrap();
    assert_interrupted(&o);
    // What arrived is kept, as a part; nothing is passed off as the whole file.
    assert!(!site.join("slow.nar").exists());
    let kept = std::fs::read(&part).unwrap();
    assert!(!kept.is_empty() && kept.len() < nar.len(), "{}", kept.len());
    assert_eq!(
        kept[..],
        nar[..kept.len()],
        "the part holds the NAR's first bytes"
    );
    // The next run resumes from it and measures the whole NAR.
    let o = hb().args(args).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["corpus"][0]["nar_size"], nar.len());
    assert_eq!(std::fs::read(site.join("slow.nar")).unwrap(), nar);
    assert!(!part.exists());
}

#[test]
fn ctrl_c_during_measurements_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let nar = work.path().join("big.nar");
    std::fs::write(&nar, nar_of(4 << 20)).unwrap();
    // xz-9e on 4 MiB of noise takes seconds; six NARs, two codecs: a run of many seconds.
    let inputs: Vec<String> = (0..6).map(|_| nar.display().to_string()).collect();
    let mut args = vec!["compress", "--codecs", "xz-9e,zstd-19", "--format", "json"];
    for i in &inputs {
        args.extend(["--input", i.as_str()]);
    }
    let mut child = spawn(&args);
    // Two seconds in, the NARs are loaded and the first measurements are running.
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none(), "finished too soon");
    sigint(&child);
    let started = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert_interrupted(&o);
    // It stops after the measurements running, not after all twelve.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(names_in(work.path()), ["big.nar"]);
}

#[test]
fn ctrl_c_during_a_slow_status_request_keeps_whole_lines() {
    // Answers the first two requests at once and the rest after 30 s.
    let server = http::serve(|req| {
        let body = r#"{"status":"up","nrQueuedBuilds":7,"nrRunnableSteps":3}"#;
        let late = if req.n >= 2 { 30 } else { 0 };
        Response::ok(body).delay(Duration::from_secs(late))
    });
    let url = format!("{}/queue-runner-status", server.url());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.jsonl");
    let child = spawn(&[
        "status",
        "--watch",
        &url,
        "--out",
        out.to_str().unwrap(),
        "--interval",
        "100ms",
        "--format",
        "csv",
        "--quiet",
    ]);
    let started = Instant::now();
    while std::fs::read_to_string(&out).map_or(0, |t| t.lines().count()) < 2 {
        assert!(started.elapsed() < PATIENCE, "no samples written");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The third request is now waiting on the server.
    std::thread::sleep(Duration::from_millis(500));
    sigint(&child);
    let started = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "Ctrl-C waited");
    // Ctrl-C is how a watch ends: a normal stop, with the report.
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = String::from_utf8(o.stdout).unwrap();
    assert!(csv.trim_end().ends_with(",2,2,0,Ctrl-C"), "{csv}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with('\n'), "the last line is whole");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "the abandoned request wrote nothing");
    assert!(lines.iter().all(|l| l["status"]["nrQueuedBuilds"] == 7));
}
