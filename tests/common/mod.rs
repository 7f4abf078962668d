//! Helpers shared by the integration tests: running the real binary and checking the error
//! contract (exit 1, one line on stderr, no panic).

#![allow(dead_code)] // each test file uses a different subset

use std::process::{Command, Output};

use hydra_bottleneck::testpg::TestPg;

/// Runs the built binary with `args`, without a PGPASSWORD from the caller's environment.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("running the binary")
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hydra-bottleneck"));
    c.env_remove("PGPASSWORD");
    c
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The error contract: exit 1, one line on stderr starting with our prefix and containing
/// `needle`, no panic.
pub fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("hydra-bottleneck: error: "), "{err}");
    assert!(lines[0].contains(needle), "`{needle}` not in: {err}");
}

/// Loads the built-in sample at `scale` into a fresh database of `pg`, creating Hydra schema
/// `schema`; returns the connection string of a role that can only read it, made by the
/// README's recipe (the superuser is for `pg.psql`).
pub fn load_sample(pg: &TestPg, scale: &str, schema: &str) -> String {
    let db = pg.database();
    let o = run(&[
        "sample", "--into", &db, "--scale", scale, "--schema", schema, "--quiet",
    ]);
    assert!(o.status.success(), "sample --into: {}", stderr(&o));
    pg.grant_reader(&dbname(&db))
}

pub use hydra_bottleneck::testpg::dbname;

/// A throwaway server holding the sample: the server, the connection string and the
/// database's name (for `psql`).
pub fn loaded(scale: &str, schema: &str) -> (TestPg, String, String) {
    let pg = TestPg::start();
    let db = load_sample(&pg, scale, schema);
    let name = db.rsplit('=').next().unwrap().to_string();
    (pg, db, name)
}

/// Bound on waiting for a run that must end by itself: far above what any run here takes on a
/// loaded two-core machine, so only a hang (a read blocked on a FIFO) reaches it.
pub const HANG: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `cmd` to its end, or kills it and fails the test if it is still running after
/// [`HANG`]: a hang shows as a failure, not as a test that never ends.
pub fn run_bounded(cmd: &mut Command) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the binary");
    let started = std::time::Instant::now();
    while child.try_wait().expect("waiting for the binary").is_none() {
        if started.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("collecting the output")
}

/// Makes a FIFO at `path`: opening or reading it blocks until a writer comes, which none does.
pub fn mkfifo(path: &std::path::Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A sparse file of `len` bytes at `path`: as large as asked, without the disk.
pub fn sparse(path: &std::path::Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// `status --watch URL --out OUT --interval 50ms --samples 2`, then `extra`: two polls of a
/// loopback server, a fraction of a second in all.
pub fn watch_twice(url: &str, out: &std::path::Path, extra: &[&str]) -> Output {
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
