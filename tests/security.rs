//! What the tool must never do, whatever it is given: show a password, run a parameter as SQL,
//! write to the database, take an unbounded answer from a server, or write a file outside the
//! directory it was given because a server named it so.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::*;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use hydra_bottleneck::nix::nar::NarHash;
use support::http::{self, Response};
use support::pg::READER_PASSWORD;

/// Neither output stream of `o` shows `secret`.
fn assert_hidden(o: &Output, secret: &str, what: &str) {
    let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(o));
    assert!(
        !out.contains(secret) && !err.contains(secret),
        "{what}: the password shows in\nstdout: {out}\nstderr: {err}"
    );
}

// ---- files given to read -----------------------------------------------------------------------

/// A file given to read that is a device, a FIFO, or larger than the cap for its kind: the run
/// ends at once in one line naming it, never hangs or reads for ever.
struct Hostile {
    /// What the file is for, for messages.
    what: &'static str,
    /// The arguments that make the tool read `path`.
    args: fn(&Path) -> Vec<String>,
    /// The file's cap: one byte more is refused.
    cap: u64,
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

const HOSTILE: &[Hostile] = &[
    Hostile {
        what: "scenario",
        args: |f| [s(&["report", "--no-compression", "--scenario"]), vec![p(f)]].concat(),
        cap: 1 << 20,
    },
    Hostile {
        what: "cost file",
        args: |f| [s(&["report", "--no-compression", "--costs"]), vec![p(f)]].concat(),
        cap: 1 << 20,
    },
    Hostile {
        what: "saved measurement",
        args: |f| [s(&["report", "--compression"]), vec![p(f)]].concat(),
        cap: 256 << 20,
    },
    Hostile {
        what: "machines file",
        args: |f| {
            let status = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/status/hydra-1477-2025-machines.json");
            [s(&["status"]), vec![p(&status), "--machines".into(), p(f)]].concat()
        },
        cap: 16 << 20,
    },
    Hostile {
        what: "status series",
        args: |f| [s(&["status", "--series"]), vec![p(f)]].concat(),
        cap: 1 << 30,
    },
    Hostile {
        what: "list of store paths",
        args: |f| {
            [
                s(&["compress", "--input", "http://127.0.0.1:9/", "--paths"]),
                vec![p(f)],
            ]
            .concat()
        },
        cap: 64 << 20,
    },
    Hostile {
        what: "status document",
        args: |f| vec!["status".into(), p(f)],
        cap: 16 << 20,
    },
];

/// Each kind of file given on the command line, as a FIFO and one byte over its cap. (A FIFO
/// blocked the read for ever before; `/dev/zero` has its own test below, since without the
/// checks it fills memory rather than fails.)
#[test]
fn a_fifo_or_an_oversized_file_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    for h in HOSTILE {
        let o = hb().args((h.args)(&fifo)).within(HANG).run();
        assert_one_line_error(&o, "is a FIFO, not a regular file");
        let big = dir.path().join(h.what.replace(' ', "-"));
        sparse(&big, h.cap + 1);
        let o = hb().args((h.args)(&big)).within(HANG).run();
        assert_one_line_error(&o, "larger than");
        assert!(stderr(&o).contains(h.what), "{}", stderr(&o));
        std::fs::remove_file(&big).unwrap();
    }
}

#[test]
fn dev_zero_is_refused_without_a_read() {
    for h in HOSTILE {
        let o = hb()
            .args((h.args)(Path::new("/dev/zero")))
            .within(HANG)
            .run();
        assert_one_line_error(&o, "/dev/zero is a character device, not a regular file");
    }
    // `--compare` reads DIR/report.json, here a link to /dev/zero.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("report.json")).unwrap();
    let o = hb()
        .args(["report", "--no-compression", "--compare"])
        .arg(dir.path())
        .within(HANG)
        .run();
    assert_one_line_error(&o, "is a character device, not a regular file");
}

/// `--compare DIR` with DIR/report.json a FIFO or over its cap.
#[test]
fn a_compared_report_that_is_a_fifo_or_oversized_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    mkfifo(&json);
    let compare = |d: &Path| {
        hb().args(["report", "--no-compression", "--compare"])
            .arg(d)
            .within(HANG)
            .run()
    };
    assert_one_line_error(&compare(dir.path()), "is a FIFO, not a regular file");
    std::fs::remove_file(&json).unwrap();
    sparse(&json, (256 << 20) + 1);
    assert_one_line_error(&compare(dir.path()), "larger than 256 MiB");
}

/// A snapshot's `manifest.json` and `machines` as FIFOs or over their caps.
#[test]
fn a_snapshot_file_that_is_a_fifo_or_oversized_is_one_clear_line() {
    let root = tempfile::tempdir().unwrap();
    let snap = root.path().join("snap");
    let o = run(&["sample", "--out", snap.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let analyze = || {
        hb().args(["analyze", "ledger", "--snapshot"])
            .arg(&snap)
            .within(HANG)
            .run()
    };
    assert!(analyze().status.success());
    for (name, cap) in [("machines", 16u64 << 20), ("manifest.json", 64 << 20)] {
        let f = snap.join(name);
        let saved = std::fs::read(&f).unwrap();
        std::fs::remove_file(&f).unwrap();
        mkfifo(&f);
        assert_one_line_error(&analyze(), "is a FIFO, not a regular file");
        std::fs::remove_file(&f).unwrap();
        sparse(&f, cap + 1);
        assert_one_line_error(&analyze(), "larger than");
        std::fs::write(&f, saved).unwrap();
    }
    assert!(analyze().status.success());
}

// ---- passwords --------------------------------------------------------------------------------

/// A connection string for the reader over TCP (where the server asks for a password), with
/// no password given.
fn reader_without_password(pg: &TestPg) -> String {
    format!(
        "host=127.0.0.1 port={} user=reader dbname=postgres sslmode=disable",
        pg.port
    )
}

/// `query sql 'SELECT 1'` on `db`, with `PGPASSFILE` set to `passfile`.
fn select_one(db: &str, passfile: &Path) -> Output {
    hb().args(["query", "sql", "SELECT 1 AS one", "--db", db])
        .env("PGPASSFILE", passfile)
        .within(HANG)
        .run()
}

/// The password file is read only when the server asks for a password: through the unix
/// socket, which trusts, a FIFO as PGPASSFILE (which would block any read for ever) is never
/// opened and the query runs.
#[test]
fn the_password_file_is_read_only_when_a_password_is_asked_for() {
    let pg = TestPg::start();
    // The reader over the trusting socket (a superuser would be refused `query sql`).
    let admin = pg.database();
    let db = admin.replace("user=postgres", "user=reader");
    assert_ne!(db, admin);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pgpass");
    mkfifo(&fifo);
    let o = select_one(&db, &fifo);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Over TCP the server asks for a password: a good password file (mode 0600) is used, and one
/// that is a FIFO, too large, or readable by others is refused in one line naming it.
#[test]
fn a_hostile_password_file_is_one_clear_line() {
    use std::os::unix::fs::PermissionsExt;
    let pg = TestPg::start();
    let _ = pg.database();
    let db = reader_without_password(&pg);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::write(&good, format!("*:*:*:reader:{READER_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = select_one(&db, &good);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_hidden(&o, READER_PASSWORD, "a password from the password file");
    // The same through `passfile=` in the connection string.
    let o = hb()
        .args([
            "query",
            "sql",
            "SELECT 1",
            "--db",
            &format!("{db} passfile={}", good.display()),
        ])
        .within(HANG)
        .run();
    assert!(o.status.success(), "{}", stderr(&o));

    let open = dir.path().join("open");
    std::fs::write(&open, format!("*:*:*:reader:{READER_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let big = dir.path().join("big");
    sparse(&big, (1 << 20) + 1);
    std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
    let absent = dir.path().join("absent");
    let nothing = dir.path().join("nothing");
    std::fs::write(&nothing, "otherhost:*:*:*:x\n").unwrap();
    std::fs::set_permissions(&nothing, std::fs::Permissions::from_mode(0o600)).unwrap();
    for (file, needle) in [
        (open.as_path(), "has group or world access"),
        (fifo.as_path(), "is a FIFO, not a regular file"),
        (big.as_path(), "larger than 1 MiB"),
        (nothing.as_path(), "no line of password file"),
        (absent.as_path(), "no password file"),
    ] {
        let o = select_one(&db, file);
        assert_one_line_error(&o, "the server asks for a password and none was given");
        assert_one_line_error(&o, needle);
        assert_hidden(&o, READER_PASSWORD, needle);
    }
}

/// `/dev/zero` as the password file grew to 24 GB before: now it is refused without a read.
#[test]
fn dev_zero_as_the_password_file_is_refused() {
    let pg = TestPg::start();
    let _ = pg.database();
    let o = select_one(&reader_without_password(&pg), Path::new("/dev/zero"));
    assert_one_line_error(&o, "/dev/zero is a character device, not a regular file");
}

#[test]
fn no_error_path_shows_the_password() {
    let pg = TestPg::start();
    let db = pg.database();
    let name = db.rsplit('=').next().unwrap().to_string();
    let port = pg.port.to_string();
    // The reader may log in but read nothing of Hydra's, and nothing at all in this database.
    pg.psql(&name, "CREATE TABLE private (x int)");
    let closed = free_port().to_string();
    let wrong = "Wr0ng-Secret-pw";
    // (what, port, password, command, the error it must give)
    let cases: [(&str, &str, &str, &[&str], &str); 6] = [
        (
            "unreachable",
            &closed,
            wrong,
            &["snapshot", "--out", "/nonexistent/x"],
            "cannot connect",
        ),
        (
            "wrong password",
            &port,
            wrong,
            &["snapshot", "--out", "/nonexistent/x"],
            "password authentication failed",
        ),
        (
            "no Hydra tables",
            &port,
            READER_PASSWORD,
            &["snapshot", "--out", "/nonexistent/x"],
            "missing or this role may not read it",
        ),
        (
            "a failing query",
            &port,
            READER_PASSWORD,
            &["query", "sql", "SELECT * FROM private"],
            "permission denied for table private",
        ),
        (
            "a write refused",
            &port,
            READER_PASSWORD,
            &["query", "sql", "CREATE TABLE t (x int)"],
            "refused: CREATE",
        ),
        (
            "the statement timeout",
            &port,
            READER_PASSWORD,
            &[
                "query",
                "sql",
                "SELECT pg_sleep(5)",
                "--statement-timeout",
                "1",
            ],
            "canceling statement due to statement timeout",
        ),
    ];
    for (what, port, pw, args, expect) in cases {
        let url = format!(
            "postgresql://reader:{pw}@127.0.0.1:{port}/{name}?sslmode=disable&connect_timeout=2"
        );
        let keywords = format!(
            "host=127.0.0.1 port={port} user=reader dbname={name} sslmode=disable \
             connect_timeout=2 password='{pw}'"
        );
        let bare = format!(
            "host=127.0.0.1 port={port} user=reader dbname={name} sslmode=disable \
             connect_timeout=2"
        );
        for (how, conn, env) in [
            ("in a URL", url.as_str(), None),
            ("in key=value", keywords.as_str(), None),
            ("in PGPASSWORD", bare.as_str(), Some(pw)),
        ] {
            let mut c = hb().args(args).args(["--db", conn]);
            if let Some(pw) = env {
                c = c.env("PGPASSWORD", pw);
            }
            let o = c.run();
            let label = format!("{what}, password {how}");
            assert_one_line_error(&o, expect);
            assert_hidden(&o, pw, &label);
        }
    }
}

#[test]
fn status_watch_never_records_the_credentials_of_its_url() {
    let body = r#"{"status":"up","nrQueuedBuilds":4}"#;
    // The first answer is a document, the second a failure: both kinds of line are written.
    let base = http::serve(move |req| {
        if req.n == 0 {
            Response::ok(body)
        } else {
            Response::new(503, "Service Unavailable")
        }
    })
    .url();
    let with_creds = base.replace("http://", "http://alice:hunter2-pw@") + "/queue-runner-status";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.jsonl");
    let o = watch_twice(&with_creds, &out, &["--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    for secret in ["hunter2-pw", "alice"] {
        assert!(!text.contains(secret), "{secret} recorded: {text}");
        assert_hidden(&o, secret, "status --watch");
    }
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let shown = base.replace("http://", "http://***@") + "/queue-runner-status";
    assert_eq!(first["source"], shown.as_str());
    // One document from a URL with credentials, failing: the error hides them too.
    let o = run(&[
        "status",
        &with_creds.replace("queue-runner-status", "nowhere"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_hidden(&o, "hunter2-pw", "status URL");
}

#[test]
fn no_form_of_url_shows_its_credentials() {
    // Every request is refused: each form below ends in an error that names its URL.
    let base = http::serve(|_| Response::not_found()).url();
    let host = base.trim_start_matches("http://").to_string();
    let closed = free_port();
    let dir = tempfile::tempdir().unwrap();
    let paths = dir.path().join("paths");
    std::fs::write(&paths, "/nix/store/00000000000000000000000000000000-x\n").unwrap();
    let paths = paths.to_str().unwrap().to_string();
    // (what, secrets, arguments, the error it must give)
    let cases: Vec<(&str, Vec<&str>, Vec<String>, &str)> = vec![
        (
            "an upper-case scheme",
            vec!["alice", "pw-upper"],
            vec!["status".into(), format!("HTTP://alice:pw-upper@{host}/x")],
            "404",
        ),
        (
            "a token in the query",
            vec!["tok-query", "sig-query"],
            vec![
                "status".into(),
                format!("{base}/x?token=tok-query&a=1&X-Amz-Signature=sig-query"),
            ],
            "404",
        ),
        (
            "an upper-case binary cache",
            vec!["carol", "pw-cache", "tok-cache"],
            vec![
                "compress".into(),
                "--input".into(),
                format!("HTTP://carol:pw-cache@{host}/?api_key=tok-cache"),
                "--paths".into(),
                paths.clone(),
            ],
            "404",
        ),
        (
            "a file:// URL",
            vec!["dave", "pw-file"],
            vec![
                "compress".into(),
                "--input".into(),
                "file://dave:pw-file@localhost/tmp/x".into(),
            ],
            "no user or password",
        ),
        (
            "an upper-case file:// URL",
            vec!["dave", "pw-file"],
            vec![
                "compress".into(),
                "--input".into(),
                "FILE://dave:pw-file@localhost/tmp/x".into(),
            ],
            "no user or password",
        ),
        (
            "an upper-case libpq URL",
            vec!["pw-libpq"],
            vec![
                "query".into(),
                "sql".into(),
                "SELECT 1".into(),
                "--db".into(),
                format!(
                    "POSTGRESQL://erin:pw-libpq@127.0.0.1:{closed}/hydra?sslmode=disable&connect_timeout=2"
                ),
            ],
            "cannot connect",
        ),
    ];
    for (what, secrets, args, expect) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&args);
        assert_one_line_error(&o, expect);
        for secret in secrets {
            assert_hidden(&o, secret, what);
        }
    }
    // The series of a watch records its source without them.
    let out = dir.path().join("s.jsonl");
    let url = format!("HtTp://frank:pw-watch@{host}/x?access_token=tok-watch&sig=sig-watch&n=1");
    let o = watch_twice(&url, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    for secret in ["frank", "pw-watch", "tok-watch", "sig-watch"] {
        assert!(!text.contains(secret), "{secret} recorded: {text}");
        assert_hidden(&o, secret, "status --watch");
    }
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["source"],
        format!("HtTp://***@{host}/x?access_token=***&sig=***&n=1").as_str()
    );
}

// ---- the database is only read ----------------------------------------------------------------

#[test]
fn a_hostile_parameter_is_data() {
    let (pg, db, name) = loaded("0.05", "87");
    let hostile = "'; DROP TABLE builds; --";
    // One build of a job with exactly that name: the query must find it, and only it.
    let id = pg.psql(&name, "SELECT min(id) FROM builds");
    pg.psql(
        &name,
        &format!("UPDATE builds SET job = $h${hostile}$h$ WHERE id = {id}"),
    );
    let before = pg.psql(&name, "SELECT count(*) FROM builds");
    let o = run(&[
        "query",
        "run",
        "job-history",
        "--db",
        &db,
        "--param",
        &format!("job={hostile}"),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["build"].to_string(), id);
    assert_eq!(pg.psql(&name, "SELECT count(*) FROM builds"), before);
    // Nor does a hostile integer get further than its parsing.
    let o = run(&[
        "query",
        "run",
        "job-history",
        "--db",
        &db,
        "-p",
        "job=x",
        "-p",
        "limit=1; DROP TABLE builds",
    ]);
    assert_one_line_error(&o, "not an integer");
    assert_eq!(pg.psql(&name, "SELECT count(*) FROM builds"), before);
}

#[test]
fn ad_hoc_sql_runs_only_read_only() {
    let (pg, db, name) = loaded("0.05", "87");
    let state = || {
        pg.psql(
            &name,
            "SELECT count(*) || ' ' || sum(length(job)) || ' ' || \
             (SELECT count(*) FROM pg_tables WHERE schemaname = 'public') FROM builds",
        )
    };
    let before = state();
    for sql in [
        "DROP TABLE builds",
        "UPDATE builds SET job = 'x'",
        "CREATE TEMP TABLE t (x int)",
        "SELECT nextval(pg_get_serial_sequence('builds', 'id'))",
        "LOCK TABLE builds IN ACCESS EXCLUSIVE MODE",
        "WITH gone AS (DELETE FROM builds RETURNING id) SELECT count(*) FROM gone",
        "DO $$BEGIN SET TRANSACTION READ WRITE; DELETE FROM builds; END$$",
        "DO $$BEGIN PERFORM set_config('transaction_read_only', 'off', true); \
         DELETE FROM builds; END$$",
        // A statement that would leave the read-only transaction is refused as such.
        "SET TRANSACTION READ WRITE",
        "SELECT 1; DELETE FROM builds",
    ] {
        let o = run(&["query", "sql", sql, "--db", &db]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "`{sql}` must fail: {err}");
        assert_eq!(err.lines().count(), 1, "`{sql}`: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(state(), before, "`{sql}` changed the database");
    }
    // The statement check refuses both before they reach the server (the look at the
    // transaction afterwards is tested in `source::sql::tests`).
    let o = run(&["query", "sql", "SET TRANSACTION READ WRITE", "--db", &db]);
    assert_one_line_error(&o, "refused: SET/RESET");
    let o = run(&[
        "query",
        "sql",
        "LOCK TABLE builds IN ACCESS EXCLUSIVE MODE",
        "--db",
        &db,
    ]);
    assert_one_line_error(&o, "refused: LOCK");
    assert_eq!(
        pg.psql(
            &name,
            "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' \
                        AND relation = 'builds'::regclass"
        ),
        "0"
    );
    // Reads still run.
    let o = run(&[
        "query",
        "sql",
        "SELECT count(*) AS n FROM builds",
        "--db",
        &db,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A result is held up to a cap, and refused past it in one line, not aborted for memory.
    let o = run(&[
        "query",
        "sql",
        "SELECT id FROM builds",
        "--db",
        &db,
        "--max-rows",
        "5",
    ]);
    assert_one_line_error(&o, "the result has more than 5 rows");
}

/// A file the database server's OS user may create, for checking that it never does.
fn server_writable_path(dir: &Path, name: &str) -> String {
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    dir.join(name).to_str().unwrap().to_string()
}

/// Connected as the superuser, `query sql` can no longer run a program or write a file on the
/// database server, run code, or call a function that acts outside the transaction — even with
/// `--allow-privileged-role` — and without that flag it runs nothing at all as such a role.
#[test]
fn query_sql_cannot_run_programs_or_write_files_on_the_server() {
    let (pg, _reader_db, name) = loaded("0.05", "87");
    let admin = pg.conninfo(&name);
    let tmp = tempfile::tempdir().unwrap();
    let program = server_writable_path(tmp.path(), "program-ran");
    let file = server_writable_path(tmp.path(), "file-written");
    let backends = || pg.psql(&name, "SELECT count(*) FROM pg_stat_activity");
    let before = backends();
    for sql in [
        format!("copy (select 1) to program 'id > {program}'"),
        format!("COPY builds TO '{file}'"),
        format!("DO $$ BEGIN EXECUTE 'copy (select 1) to program ''touch {program}'''; END $$"),
        format!("SELECT pg_catalog.pg_read_file('{file}')"),
        format!("SELECT lo_export(lo_from_bytea(0, 'x'), '{file}')"),
        format!("SELECT * FROM builds, LATERAL (SELECT lo_import('{file}')) x"),
        "SELECT pg_reload_conf()".to_string(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity".to_string(),
        "WITH a AS (SELECT pg_advisory_lock(1)) SELECT * FROM a".to_string(),
        "SELECT set_config('transaction_read_only', 'off', false)".to_string(),
        "SELECT query_to_xml('copy (select 1) to program ''id''', true, true, '')".to_string(),
        "SELECT 1 FOR UPDATE".to_string(),
    ] {
        let o = run(&[
            "query",
            "sql",
            &sql,
            "--db",
            &admin,
            "--allow-privileged-role",
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "`{sql}` must be refused: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(last.contains("query sql: refused"), "`{sql}`: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!Path::new(&program).exists(), "a program ran on the server");
    assert!(
        !Path::new(&file).exists(),
        "a file was written on the server"
    );
    assert_eq!(backends(), before, "a backend was signalled");
    // Without the flag a privileged role runs nothing, not even a plain read; it is told why.
    let o = run(&["query", "sql", "SELECT 1", "--db", &admin]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("is a superuser"), "{err}");
    assert!(err.contains("--allow-privileged-role"), "{err}");
    let o = run(&[
        "query",
        "sql",
        "SELECT 1 AS one",
        "--db",
        &admin,
        "--allow-privileged-role",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A member of one of the roles that act outside transactions counts as privileged; a role
/// made by the README's recipe does not, and is not warned about.
#[test]
fn the_roles_powers_are_read_on_connecting() {
    let (pg, reader_db, name) = loaded("0.05", "87");
    let o = run(&[
        "query",
        "sql",
        "SELECT count(*) AS n FROM builds",
        "--db",
        &reader_db,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).is_empty(),
        "a read-only role is not warned about: {}",
        stderr(&o)
    );
    pg.psql(&name, "GRANT pg_signal_backend TO reader");
    let o = run(&["query", "sql", "SELECT 1", "--db", &reader_db]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("a member of pg_signal_backend"), "{err}");
    // Every other command runs, and says once that a read-only role is recommended.
    let o = run(&["analyze", "quality", "--db", &reader_db]);
    assert!(o.status.success(), "{}", stderr(&o));
    let warnings = stderr(&o)
        .lines()
        .filter(|l| l.contains("a role that can only read is recommended"))
        .count();
    assert_eq!(warnings, 1, "{}", stderr(&o));
    // Row-level security runs its policies as the reader: refused for a privileged reader that
    // policies apply to, allowed (and applied) for a plain one.
    pg.psql(
        &name,
        "ALTER TABLE builds ENABLE ROW LEVEL SECURITY; \
         CREATE POLICY visible ON builds FOR SELECT USING (true)",
    );
    let o = run(&["analyze", "quality", "--db", &reader_db]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("public.builds has row-level security"),
        "{}",
        stderr(&o)
    );
    pg.psql(&name, "REVOKE pg_signal_backend FROM reader");
    let o = run(&["analyze", "quality", "--db", &reader_db]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The database owner (an ordinary role) cannot make a superuser's plain `analyze` run its
/// code: a schema named after the superuser, first on the default search path, holding a view
/// `buildsteps` that runs a program, is never consulted; an overload of a built-in there stops
/// `query` under a privileged role; a view put in place of Hydra's own table is refused,
/// naming it.
#[test]
fn the_database_owner_cannot_hijack_our_session_through_the_search_path() {
    let (pg, _reader_db, name) = loaded("0.05", "87");
    let admin = pg.conninfo(&name);
    let tmp = tempfile::tempdir().unwrap();
    let marker = server_writable_path(tmp.path(), "hijacked");
    pg.psql(
        &name,
        &format!(
            "CREATE ROLE owner_role; ALTER DATABASE {name} OWNER TO owner_role; \
             GRANT SELECT ON public.buildsteps TO owner_role; \
             CREATE SCHEMA postgres AUTHORIZATION owner_role; \
             SET ROLE owner_role; \
             CREATE FUNCTION postgres.pwn() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN \
               EXECUTE 'copy (select 1) to program ''touch {marker}'''; RETURN 1; END $f$; \
             CREATE VIEW postgres.buildsteps AS SELECT s.*, postgres.pwn() AS x \
               FROM public.buildsteps s; \
             RESET ROLE"
        ),
    );
    // The trap works on a session that does not pin its path.
    let trap = pg.psql_output(&name, "SELECT x FROM buildsteps LIMIT 1");
    assert!(
        trap.status.success(),
        "{}",
        String::from_utf8_lossy(&trap.stderr)
    );
    assert!(Path::new(&marker).exists(), "the trap itself must work");
    std::fs::remove_file(&marker).unwrap();
    for args in [
        &["analyze", "ledger"][..],
        &[
            "snapshot",
            "--out",
            tmp.path().join("snap").to_str().unwrap(),
        ][..],
        &["query", "run", "machine-utilization"][..],
        &[
            "query",
            "sql",
            "SELECT count(*) FROM buildsteps",
            "--allow-privileged-role",
        ][..],
    ] {
        let o = hb().args(args).args(["--db", &admin]).run();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(
            !Path::new(&marker).exists(),
            "{args:?} ran the owner's code"
        );
    }
    // An operator the owner made in Hydra's schema is the owner's code even when a built-in
    // C function implements it (`=` on text as `textne`): refused; pg_trgm's, which upstream's
    // hydra.sql installs there, are not (every query above ran beside them).
    pg.psql(
        &name,
        "GRANT CREATE ON SCHEMA public TO owner_role; SET ROLE owner_role; \
         CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, \
           FUNCTION = pg_catalog.textne); RESET ROLE",
    );
    let o = run(&["query", "run", "machine-utilization", "--db", &admin]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("defines = under the name of a built-in"),
        "{}",
        stderr(&o)
    );
    pg.psql(&name, "DROP OPERATOR public.= (text, text)");
    // An overload of a built-in name in Hydra's schema could be picked over the built-in by a
    // closer argument type: under a privileged role, `query` refuses to run there.
    pg.psql(
        &name,
        "GRANT CREATE ON SCHEMA public TO owner_role; SET ROLE owner_role; \
         CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE sql \
           AS $f$ SELECT 'forged' $f$; RESET ROLE",
    );
    let o = run(&["query", "run", "machine-utilization", "--db", &admin]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("defines lower under the name of a built-in"),
        "{}",
        stderr(&o)
    );
    // A column of a type the owner made converts through the owner's functions: refused
    // (upstream's scheduling trigger names the column, and would block the change).
    pg.psql(
        &name,
        "CREATE TYPE public.intish AS (v int); \
         DROP TRIGGER jobsetschedulingchanged ON public.jobsets; \
         ALTER TABLE public.jobsets ALTER COLUMN checkinterval DROP DEFAULT, \
           ALTER COLUMN checkinterval TYPE public.intish USING ROW(checkinterval)",
    );
    let o = run(&["analyze", "ledger", "--db", &admin]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("public.jobsets.checkinterval has type public.intish"),
        "{}",
        stderr(&o)
    );
    // A view in place of Hydra's own table is refused, naming it.
    pg.psql(
        &name,
        "ALTER TABLE public.buildsteps RENAME TO real_steps; \
         CREATE VIEW public.buildsteps AS SELECT * FROM public.real_steps",
    );
    let o = run(&["analyze", "ledger", "--db", &admin]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.lines()
            .last()
            .unwrap()
            .contains("public.buildsteps is a view"),
        "{err}"
    );
}

// ---- bounded answers from servers ---------------------------------------------------------------

#[test]
fn status_answers_are_bounded_in_size_and_time() {
    // 17 MiB of JSON-looking text, past the 16 MiB bound, sent as fast as it goes.
    let big = http::serve(|_| Response::trickle(&[b' '; 1 << 20], Duration::ZERO, 17 << 20)).url();
    let o = run(&["status", &big, "--timeout", "30s"]);
    assert_one_line_error(&o, "the answer is larger than 16 MiB");
    // A body that never stops coming, a byte at a time: the timeout covers the whole answer.
    let slow =
        http::serve(|_| Response::trickle(b" ", Duration::from_millis(100), usize::MAX)).url();
    let started = Instant::now();
    let o = run(&["status", &slow, "--timeout", "2s"]);
    assert_one_line_error(&o, "no complete answer within 2 s");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn binary_cache_answers_are_bounded_in_size_and_time() {
    let h = "0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs";
    let work = tempfile::tempdir().unwrap();
    let paths = work.path().join("paths");
    std::fs::write(&paths, format!("/nix/store/{h}-x\n")).unwrap();
    let compress = |url: &str| {
        hb().args([
            "compress",
            "--input",
            url,
            "--paths",
            paths.to_str().unwrap(),
        ])
        .args(["--download-dir", work.path().join("d").to_str().unwrap()])
        .args(["--timeout", "2s", "--codecs", "zstd-1", "--quiet"])
        .run()
    };
    let info = "StoreDir: /nix/store\n";
    // A narinfo of 100 KiB, past the 64 KiB bound.
    let big = http::serve(move |req| {
        if req.path == "/nix-cache-info" {
            Response::ok(info)
        } else {
            Response::trickle(&[b'#'; 1024], Duration::ZERO, 100 << 10)
        }
    });
    let o = compress(&big.url());
    assert_one_line_error(&o, "larger than 64 KiB");
    // A narinfo that trickles: each try is cut at the timeout, and the tries are few.
    let slow = http::serve(move |req| {
        if req.path == "/nix-cache-info" {
            Response::ok(info)
        } else {
            Response::trickle(b"#", Duration::from_millis(100), usize::MAX)
        }
    });
    let started = Instant::now();
    let o = compress(&slow.url());
    assert_one_line_error(&o, "gave up after 5 tries");
    // Five tries of 2 s, and waits of 1 + 2 + 4 + 8 s between them.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );

    // A NAR that trickles (5 KiB/s, each read well within the timeout): each transfer is
    // ended as stalled, resumed a bounded number of times, then given up.
    let nar = small_nar(work.path());
    let hash = NarHash::of(&nar);
    let narinfo = format!(
        "StorePath: /nix/store/{h}-x\nURL: nar/x.nar\nCompression: none\nNarHash: {hash}\n\
         NarSize: {}\n",
        // As large as the narinfo says: the server never gets there.
        1 << 20
    );
    let trickling = http::serve(move |req| {
        if req.path == "/nix-cache-info" {
            Response::ok(info)
        } else if req.path.ends_with(".narinfo") {
            Response::ok(narinfo.as_str())
        } else {
            Response::trickle(&[0u8; 1024], Duration::from_millis(200), 1 << 20)
        }
    });
    let started = Instant::now();
    let o = compress(&trickling.url());
    assert_one_line_error(&o, "the transfer stalled");
    assert!(
        stderr(&o).contains("gave up after 5 tries"),
        "{}",
        stderr(&o)
    );
    // Ten resumptions and five tries, each about 2 s with its wait, and the longer waits.
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );
}

// ---- nothing is written where a server says --------------------------------------------------

/// A binary cache over HTTP whose narinfo's URL is `url_field`, serving the NAR `nar` at any
/// path ending in `escape.nar`.
fn hostile_cache(url_field: &'static str, nar: Vec<u8>) -> (String, String) {
    let h = "0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs";
    let store_path = format!("/nix/store/{h}-hostile");
    let hash = NarHash::of(&nar);
    let narinfo = format!(
        "StorePath: {store_path}\nURL: {url_field}\nCompression: none\nFileHash: {hash}\n\
         FileSize: {len}\nNarHash: {hash}\nNarSize: {len}\n",
        len = nar.len()
    );
    let server = http::serve(move |req| {
        if req.path == "/nix-cache-info" {
            Response::ok("StoreDir: /nix/store\n")
        } else if req.path.ends_with(".narinfo") {
            Response::ok(narinfo.as_str())
        } else if req.path.ends_with("escape.nar") {
            Response::ok(nar.as_slice())
        } else {
            Response::not_found()
        }
    });
    (server.url(), store_path)
}

fn small_nar(dir: &Path) -> Vec<u8> {
    let f = dir.join("file");
    std::fs::write(&f, "hello from a hostile cache\n").unwrap();
    let mut nar = Vec::new();
    hydra_bottleneck::nix::nar::dump_path(&f, &mut nar).unwrap();
    nar
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_narinfo_url_cannot_place_a_download_outside_the_download_dir() {
    for url_field in [
        "../../../../escape.nar",
        "/tmp/escape.nar",
        "nar/../../escape.nar",
        "..%2F..%2Fescape.nar",
    ] {
        let work = tempfile::tempdir().unwrap();
        // The download directory is deep inside `work`: anything written above it shows.
        let downloads = work.path().join("a/b/c/downloads");
        let nar = small_nar(work.path());
        std::fs::remove_file(work.path().join("file")).unwrap();
        let (url, store_path) = hostile_cache(url_field, nar);
        let paths = work.path().join("paths");
        std::fs::write(&paths, format!("{store_path}\n")).unwrap();
        let o = hb()
            .args([
                "compress",
                "--input",
                &url,
                "--paths",
                paths.to_str().unwrap(),
            ])
            .args(["--download-dir", downloads.to_str().unwrap()])
            .args(["--codecs", "zstd-1", "--format", "json"])
            .run();
        assert!(o.status.success(), "{url_field}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["corpus"][0]["nar"], store_path.as_str());
        // The one file written is the NAR, one directory (the cache's) below the download dir.
        let site = url.trim_start_matches("http://").replace(':', "_");
        let written = files_under(work.path());
        assert_eq!(written.len(), 2, "{url_field}: {written:?}");
        assert!(written.contains(&"paths".to_string()));
        let nar_file = written.iter().find(|f| *f != "paths").unwrap();
        let expected_dir = format!("a/b/c/downloads/{site}/");
        assert!(
            nar_file.starts_with(&expected_dir),
            "{url_field}: {nar_file}"
        );
        assert!(!nar_file[expected_dir.len()..].contains('/'), "{nar_file}");
    }
    assert!(!Path::new("/tmp/escape.nar").exists());
}

#[test]
fn a_local_cache_narinfo_cannot_name_a_file_outside_the_cache() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    std::fs::create_dir_all(cache.join("nar")).unwrap();
    // A valid NAR outside the cache: reading it would "work", which is the problem.
    let nar = small_nar(work.path());
    std::fs::write(work.path().join("outside.nar"), &nar).unwrap();
    std::fs::write(cache.join("nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
    let h = "0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs";
    let hash = NarHash::of(&nar);
    for url_field in ["../outside.nar", "nar/../../outside.nar"]
        .into_iter()
        .map(String::from)
        .chain([work.path().join("outside.nar").display().to_string()])
    {
        std::fs::write(
            cache.join(format!("{h}.narinfo")),
            format!(
                "StorePath: /nix/store/{h}-x\nURL: {url_field}\nCompression: none\n\
                 NarHash: {hash}\nNarSize: {}\n",
                nar.len()
            ),
        )
        .unwrap();
        let o = hb()
            .args(["compress", "--input", cache.to_str().unwrap()])
            .args(["--codecs", "zstd-1", "--quiet"])
            .run();
        assert_one_line_error(&o, "points outside the binary cache");
    }
}
