//! What the integration tests share, kept out of the shipped library: a throwaway PostgreSQL
//! ([`pg`]), one loopback HTTP server ([`http`]), one way to run the built binary ([`bin`]),
//! a queue runner's `/metrics` body at any size ([`metrics`]), a Prometheus server's range
//! queries over series it holds ([`prometheus`]),
//! and the checks and fixtures several test files use. Each test file includes it with
//! `mod support;`; the benchmarks and the library's unit tests include `pg.rs` alone.

#![allow(dead_code, unused_imports)] // each test file uses a different subset

pub(crate) mod bin;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod pg;
pub(crate) mod prometheus;

use std::process::Output;
use std::time::Duration;

pub(crate) use bin::{hb, run, signal};
pub(crate) use pg::{TestPg, dbname, free_port};

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The error contract: exit 1, one line on stderr starting with our prefix and containing
/// `needle`, no panic.
pub(crate) fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("hydra-bottleneck: error: "), "{err}");
    assert!(lines[0].contains(needle), "`{needle}` not in: {err}");
}

/// Nothing, not even a staged `.x.partial-PID` or a temporary snapshot, is left in `dir`.
pub(crate) fn assert_empty_dir(dir: &std::path::Path) {
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        dir.display()
    );
}

/// `snapshot --db db --out dir --quiet`, which must succeed: the database's snapshot, for a
/// test that compares what is read from each.
pub(crate) fn snapshot_of(db: &str, dir: &std::path::Path) {
    let o = run(&[
        "snapshot",
        "--db",
        db,
        "--out",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "snapshot: {}", stderr(&o));
}

/// Loads the built-in sample at `scale` into a fresh database of `pg`, creating Hydra schema
/// `schema`; returns the connection string of a role that can only read it, made by the
/// README's recipe (the superuser is for `pg.psql`).
pub(crate) fn load_sample(pg: &TestPg, scale: &str, schema: &str) -> String {
    let db = pg.database();
    let o = run(&[
        "sample", "--into", &db, "--scale", scale, "--schema", schema, "--quiet",
    ]);
    assert!(o.status.success(), "sample --into: {}", stderr(&o));
    pg.grant_reader(&dbname(&db))
}

/// A throwaway server holding the sample: the server, the connection string and the
/// database's name (for `psql`).
pub(crate) fn loaded(scale: &str, schema: &str) -> (TestPg, String, String) {
    let pg = TestPg::start();
    let db = load_sample(&pg, scale, schema);
    let name = db.rsplit('=').next().unwrap().to_string();
    (pg, db, name)
}

/// Bound on waiting for a run that must end by itself: far above what any run here takes on a
/// loaded two-core machine, so only a hang (a read blocked on a FIFO) reaches it.
pub(crate) const HANG: Duration = Duration::from_secs(60);

/// Makes a FIFO at `path`: opening or reading it blocks until a writer comes, which none does.
pub(crate) fn mkfifo(path: &std::path::Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A sparse file of `len` bytes at `path`: as large as asked, without the disk.
pub(crate) fn sparse(path: &std::path::Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// `status --watch URL --out OUT --interval 50ms --samples 2`, then `extra`: two polls of a
/// loopback server, a fraction of a second in all.
pub(crate) fn watch_twice(url: &str, out: &std::path::Path, extra: &[&str]) -> Output {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "status",
        "--watch",
        url,
        "--out",
        out,
        "--interval",
        "50ms",
        "--samples",
        "2",
    ];
    args.extend_from_slice(extra);
    run(&args)
}
