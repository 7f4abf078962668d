//! Against a real PostgreSQL: the sample loaded with `sample --into` is read back read-only,
//! through the CLI and the library, for both schema variants; failures are single clear lines.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::*;

use hydra_bottleneck::dataset::{Dataset, Runner};
use hydra_bottleneck::sample::SampleSpec;
use hydra_bottleneck::source::into::Ddl;
use hydra_bottleneck::source::{self, ReadOptions, SourceSpec};
use hydra_bottleneck::window::{TimeSpec, WindowSpec};
use support::pg::{ADMIN_PASSWORD, READER_PASSWORD};

/// A fifth of the week keeps each load under a few seconds while still holding every status,
/// machine and system of the preset.
const SCALE: f64 = 0.2;

fn spec() -> SampleSpec {
    SampleSpec {
        scale: SCALE,
        ..SampleSpec::default()
    }
}

fn assert_frames_equal(a: &Dataset, b: &Dataset) {
    for ((def, x), (_, y)) in a.core_tables().iter().zip(b.core_tables().iter()) {
        assert_eq!(x.height(), y.height(), "row count of {}", def.name);
        assert!(x.equals_missing(y), "table {} differs", def.name);
    }
}

fn read(conn: &str, opts: &ReadOptions) -> hydra_bottleneck::Result<Dataset> {
    source::load(&SourceSpec::Postgres(conn.into()), opts)
}

#[test]
fn sample_into_postgres_then_snapshot_gives_back_the_generators_frames() {
    let pg = TestPg::start();
    let db = load_sample(&pg, &SCALE.to_string(), "80");
    let out = tempfile::tempdir().unwrap();
    let snap = out.path().join("snap");
    let o = run(&[
        "snapshot",
        "--db",
        &db,
        "--out",
        snap.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "snapshot: {}", stderr(&o));
    let manifest: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(manifest["schema_version"], 80);
    assert_eq!(manifest["runner"], "cpp");
    assert_eq!(manifest["origin"]["kind"], "postgres");

    let from_snapshot = source::snapshot::read(&snap).unwrap();
    let generated =
        source::normalize(hydra_bottleneck::sample::generate(&spec()).unwrap()).unwrap();
    assert!(generated.steps.height() > 10_000);
    assert_frames_equal(&from_snapshot, &generated);
    assert_eq!(from_snapshot.meta.runner, Runner::Cpp);

    // A second load into the same database is refused: its Hydra tables hold a history.
    let again = run(&[
        "sample",
        "--into",
        &pg.conninfo(&dbname(&db)),
        "--scale",
        "0.01",
    ]);
    assert_one_line_error(
        &again,
        "schema public already holds a Hydra history (projects, jobsets, builds",
    );
}

/// `sample --into --weeks 2`: both weeks go in one load and read back as they were made, the
/// earlier week's builds numbered below the later's.
#[test]
fn sample_into_takes_several_weeks_in_one_load() {
    let pg = TestPg::start();
    let target = pg.database();
    let o = run(&[
        "sample", "--into", &target, "--scale", "0.1", "--weeks", "2", "--quiet",
    ]);
    assert!(
        o.status.success(),
        "sample --into --weeks 2: {}",
        stderr(&o)
    );
    let db = pg.grant_reader(&dbname(&target));
    let ds = read(&db, &ReadOptions::default()).unwrap();
    let spec = SampleSpec {
        scale: 0.1,
        ..SampleSpec::default()
    };
    let mut all: Option<Dataset> = None;
    hydra_bottleneck::sample::generate_weeks(&spec, 2, false, |w| {
        match &mut all {
            None => all = Some(w),
            Some(a) => {
                for (x, y) in [
                    (&mut a.steps, w.steps),
                    (&mut a.builds, w.builds),
                    (&mut a.step_outputs, w.step_outputs),
                    (&mut a.evals, w.evals),
                ] {
                    x.vstack_mut_owned(y).unwrap();
                }
            }
        }
        Ok(())
    })
    .unwrap();
    let generated = source::normalize(all.unwrap()).unwrap();
    assert_frames_equal(&ds, &generated);
    let queued: Vec<i64> = ds
        .builds
        .column("timestamp")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let (first, last) = (*queued.iter().min().unwrap(), *queued.iter().max().unwrap());
    assert!(last - first > 7 * 86_400, "the builds span both weeks");
}

/// A load that made the tables defers the indexes of the history's tables and makes them again
/// once the rows are in (`source::into::Load`): the schema after `sample --into` has every
/// index our DDL alone makes, each with the same definition.
#[test]
fn a_load_makes_again_every_index_it_deferred() {
    let pg = TestPg::start();
    let indexes = "SELECT indexname || ': ' || indexdef FROM pg_indexes \
                   WHERE schemaname = 'public' ORDER BY 1";
    for (ddl, schema) in [(Ddl::V80, "80"), (Ddl::V90, "90")] {
        let bare = dbname(&pg.database());
        pg.psql(&bare, ddl.sql());
        let loaded = pg.database();
        let o = run(&[
            "sample", "--into", &loaded, "--scale", "0.01", "--schema", schema, "--quiet",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let want = pg.psql(&bare, indexes);
        assert!(want.contains("indexbuildstepsondrvpath"), "{want}");
        assert_eq!(pg.psql(&dbname(&loaded), indexes), want, "schema {schema}");
    }
}

#[test]
fn schema_87_is_read_and_the_runner_is_detected_from_it() {
    let pg = TestPg::start();
    let db = load_sample(&pg, &SCALE.to_string(), "87");
    let ds = read(&db, &ReadOptions::default()).unwrap();
    assert_eq!(ds.meta.schema_version, Some(87));
    // Schema 87 postdates the C++ runner, but the sample's steps name store URIs as the C++
    // runner writes them: the rows' evidence wins over the schema's guess (tests/eras.rs).
    assert_eq!(ds.meta.runner, Runner::Cpp);
    assert!(
        ds.meta.runner_basis.contains("store URI"),
        "{}",
        ds.meta.runner_basis
    );
    let generated =
        source::normalize(hydra_bottleneck::sample::generate(&spec()).unwrap()).unwrap();
    assert_frames_equal(&ds, &generated);
    // --runner overrides detection and says so.
    let opts = ReadOptions {
        runner: Some(Runner::Cpp),
        ..ReadOptions::default()
    };
    let ds = read(&db, &opts).unwrap();
    assert_eq!(ds.meta.runner, Runner::Cpp);
    assert_eq!(ds.meta.runner_basis, "given with --runner");
}

#[test]
fn an_older_schema_without_newer_columns_reads_them_as_nulls() {
    let pg = TestPg::start();
    let db = load_sample(&pg, &SCALE.to_string(), "80");
    let name = db.rsplit('=').next().unwrap().to_string();
    // Schema 45 and earlier had no overhead, 52 and earlier no determinism columns.
    pg.psql(
        &name,
        "ALTER TABLE buildsteps DROP COLUMN overhead, DROP COLUMN timesbuilt, \
         DROP COLUMN isnondeterministic; UPDATE schemaversion SET version = 44",
    );
    let ds = read(&db, &ReadOptions::default()).unwrap();
    let overhead = ds.steps.column("overhead_ms").unwrap();
    assert_eq!(overhead.null_count(), ds.steps.height());
    assert!(ds.steps.height() > 0);
    assert_eq!(ds.meta.runner, Runner::Cpp);
}

#[test]
fn the_window_selects_the_same_rows_in_sql_as_over_frames() {
    let pg = TestPg::start();
    let db = load_sample(&pg, &SCALE.to_string(), "87");
    let generated = hydra_bottleneck::sample::generate(&spec()).unwrap();
    let start = generated.meta.window.since.unwrap();
    let window = WindowSpec {
        since: Some(TimeSpec::At(start + 2 * 86_400)),
        until: Some(TimeSpec::At(start + 3 * 86_400 + 3600)),
    };
    let opts = ReadOptions {
        window,
        ..ReadOptions::default()
    };
    let from_db = read(&db, &opts).unwrap();
    let from_frames = source::load(&SourceSpec::Sample(spec()), &opts).unwrap();
    assert!(from_db.steps.height() > 1000);
    assert!(from_db.steps.height() < generated.steps.height() / 2);
    assert_frames_equal(&from_db, &from_frames);
}

#[test]
fn the_analyzer_session_cannot_write() {
    let pg = TestPg::start();
    let db = load_sample(&pg, &SCALE.to_string(), "80");
    let params = hydra_bottleneck::conninfo::resolve(&db, &|_| None).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = source::postgres::connect(&params, true, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        for sql in [
            "INSERT INTO public.projects (name, displayname, owner) VALUES ('x', 'x', 'x')",
            "DELETE FROM public.buildsteps",
            "CREATE TABLE evil (x int)",
        ] {
            let err = s.client.batch_execute(sql).await.unwrap_err();
            let msg = source::postgres::pg_reason(&err);
            assert!(msg.contains("read-only transaction"), "{sql}: {msg}");
        }
    });
    let count = pg.psql(
        db.rsplit('=').next().unwrap(),
        "SELECT count(*) FROM buildsteps",
    );
    assert_ne!(count, "0");
}

#[test]
fn a_missing_table_is_one_clear_line() {
    let pg = TestPg::start();
    let db = load_sample(&pg, &SCALE.to_string(), "87");
    let name = db.rsplit('=').next().unwrap().to_string();
    pg.psql(&name, "DROP TABLE buildstepoutputs; DROP TABLE buildsteps");
    let out = tempfile::tempdir().unwrap();
    let snap = out.path().join("s");
    let o = run(&["snapshot", "--db", &db, "--out", snap.to_str().unwrap()]);
    assert_one_line_error(&o, "buildsteps");
    assert!(!snap.exists(), "no snapshot may be left behind");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn a_wrong_password_is_refused_without_echoing_it() {
    let pg = TestPg::start();
    let _ = pg.database();
    let port = pg.port.to_string();
    let wrong = "Wr0ng-pa55word";
    let url = format!("postgresql://reader:{wrong}@127.0.0.1:{port}/postgres?sslmode=disable");
    let o = run(&["snapshot", "--db", &url, "--out", "/nonexistent/x"]);
    assert_one_line_error(&o, "password authentication failed");
    assert!(!stderr(&o).contains(wrong));
    // The same through PGPASSWORD.
    let o = hb()
        .args([
            "snapshot",
            "--db",
            &format!("host=127.0.0.1 port={port} user=reader dbname=postgres sslmode=disable"),
        ])
        .args(["--out", "/nonexistent/x"])
        .env("PGPASSWORD", wrong)
        .run();
    assert_one_line_error(&o, "password authentication failed");
    assert!(!stderr(&o).contains(wrong));
    // And the right password gets in (the reader role may read nothing, so it stops at the schema).
    let ok =
        format!("postgresql://reader:{READER_PASSWORD}@127.0.0.1:{port}/postgres?sslmode=disable");
    let o = run(&["snapshot", "--db", &ok, "--out", "/nonexistent/x"]);
    assert_one_line_error(&o, "missing or this role may not read it");
    assert!(!stderr(&o).contains(READER_PASSWORD));
}

#[test]
fn an_unreachable_server_is_one_clear_line() {
    // A port that was free a moment ago: nothing listens there.
    let port = free_port();
    // The output's parents do not exist: the run makes them, and a failed run takes them away.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("made/for/x");
    let o = run(&[
        "snapshot",
        "--db",
        &format!(
            "postgresql://u:topsecret@127.0.0.1:{port}/hydra?sslmode=disable&connect_timeout=2"
        ),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "cannot connect to host=127.0.0.1");
    assert!(!stderr(&o).contains("topsecret"));
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "a failed snapshot leaves no directory behind"
    );
}

#[test]
fn a_malformed_connection_string_is_one_clear_line() {
    for bad in ["host", "postgresql://u:pw@h:notaport/db", "sslmode=maybe"] {
        let o = run(&["snapshot", "--db", bad, "--out", "/nonexistent/x"]);
        assert_one_line_error(&o, "connection string");
        assert!(!stderr(&o).contains(":pw@"));
    }
}

#[test]
fn tls_follows_libpq_sslmode() {
    let pg = TestPg::start_tls();
    let ca = pg.ca_cert.clone().expect("a TLS cluster has a CA");
    let port = pg.port;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ssl_in_use = |host: &str, extra: &str| -> Result<bool, String> {
        let conn = format!(
            "host={host} port={port} user=postgres password={ADMIN_PASSWORD} dbname=postgres {extra}"
        );
        let params = hydra_bottleneck::conninfo::resolve(&conn, &|_| None).unwrap();
        rt.block_on(async {
            let s = source::postgres::connect(&params, true, std::time::Duration::from_secs(30))
                .await
                .map_err(|e| e.line())?;
            let row = s
                .client
                .query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(row.get::<_, bool>(0))
        })
    };
    let root = format!("sslrootcert={}", ca.display());
    assert_eq!(ssl_in_use("127.0.0.1", "sslmode=disable"), Ok(false));
    // prefer and require encrypt without checking the certificate, as libpq does.
    assert_eq!(ssl_in_use("127.0.0.1", "sslmode=prefer"), Ok(true));
    assert_eq!(ssl_in_use("127.0.0.1", "sslmode=require"), Ok(true));
    // verify-full checks chain and name; the certificate names localhost only.
    assert_eq!(
        ssl_in_use("localhost", &format!("sslmode=verify-full {root}")),
        Ok(true)
    );
    let err = ssl_in_use("127.0.0.1", &format!("sslmode=verify-full {root}")).unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    assert!(!err.contains(ADMIN_PASSWORD));
    // verify-ca checks the chain only.
    assert_eq!(
        ssl_in_use("127.0.0.1", &format!("sslmode=verify-ca {root}")),
        Ok(true)
    );
    // A chain the system store does not trust is refused.
    let err = ssl_in_use("localhost", "sslmode=verify-ca sslrootcert=system").unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    // With a root certificate named, require verifies too (libpq's rule).
    let err = ssl_in_use("localhost", "sslmode=require sslrootcert=/nonexistent.crt").unwrap_err();
    assert!(err.contains("/nonexistent.crt"), "{err}");
}

/// The window queries must not scan the history on the production primary: on a database of
/// over a million steps with upstream's indexes, EXPLAIN of each query for an hour of the week
/// shows no sequential scan of BuildSteps, Builds or BuildStepOutputs — for the last hour (a
/// window reaching the present) and for an hour in the middle (a window in the past, bounded by
/// the step horizon), and for the statements of the chunked read. The rows read are those the
/// frame rule selects.
#[test]
fn window_queries_use_upstreams_indexes() {
    let pg = TestPg::start();
    let db = load_sample(&pg, "10", "87");
    let name = dbname(&db);
    // A real Hydra's tables have statistics; a fresh load has them once ANALYZE has run.
    pg.psql(&name, "ANALYZE");
    let steps: i64 = pg
        .psql(&name, "SELECT count(*) FROM buildsteps")
        .parse()
        .unwrap();
    assert!(steps >= 1_000_000, "{steps} steps");
    let params = hydra_bottleneck::conninfo::resolve(&db, &|_| None).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (info, first, last) = rt.block_on(async {
        let s = source::postgres::connect(&params, true, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let info = source::postgres::inspect(&s).await.unwrap();
        let row = s
            .client
            .query_one(
                "SELECT min(starttime)::int8, max(stoptime)::int8 FROM public.buildsteps",
                &[],
            )
            .await
            .unwrap();
        (info, row.get::<_, i64>(0), row.get::<_, i64>(1))
    });
    let middle = first + (last - first) / 2;
    for (what, since, until) in [
        ("the last hour", last - 3600, None),
        ("an hour in the middle", middle, Some(middle + 3600)),
    ] {
        let window = hydra_bottleneck::window::Window {
            since: Some(since),
            until,
        };
        // The whole read's queries, and every kind of statement the chunked read of
        // `snapshot --db` runs (its ranges here an hour from `since`).
        let statements = source::postgres::queries(&info, &window, &[])
            .into_iter()
            .chain(source::chunked::statements(
                &info,
                &window,
                (since, since + 3600),
            ));
        for (def, select) in statements {
            let plan = pg.psql(&name, &format!("EXPLAIN {select}"));
            for table in ["buildsteps", "builds", "buildstepoutputs"] {
                let scan = format!("Seq Scan on {table} ");
                assert!(
                    !plan.contains(&scan),
                    "{what}, {}: a sequential scan of {table}:\n{plan}",
                    def.name
                );
            }
        }
        let opts = ReadOptions {
            window: WindowSpec {
                since: Some(TimeSpec::At(since)),
                until: until.map(TimeSpec::At),
            },
            ..ReadOptions::default()
        };
        let from_db = read(&db, &opts).unwrap();
        assert!(from_db.steps.height() > 100, "{what}");
        assert!((from_db.steps.height() as i64) < steps / 50, "{what}");
    }
}

/// `report --db` with `extra` arguments: its report.json.
fn db_report(db: &str, name: &str, extra: &[&str]) -> serde_json::Value {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join(name);
    let mut args = vec![
        "report",
        "--db",
        db,
        "--no-compression",
        "--no-simulation",
        "--no-png",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "report {extra:?}: {}", stderr(&o));
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn a_window_beyond_the_database_history_measures_only_what_it_holds() {
    let pg = TestPg::start();
    let db = load_sample(&pg, "0.05", "87");
    let whole = db_report(&db, "whole", &[]);
    assert!(whole["window"].get("note").is_none(), "{}", whole["window"]);
    // The history starts on 2025-06-02: five months before it are not five months of idle slots.
    for extra in [
        &["--since", "2025-01-01"][..],
        &["--since", "2025-01-01", "--until", "2029-01-01"][..],
    ] {
        let wide = db_report(&db, "wide", extra);
        for key in ["capacity", "waterfall", "recommendations"] {
            assert_eq!(wide[key], whole[key], "{key} differs with {extra:?}");
        }
        for key in ["since", "until", "days", "month_factor"] {
            assert_eq!(wide["window"][key], whole["window"][key], "window.{key}");
        }
        let note = wide["window"]["note"].as_str().expect("a note");
        assert!(note.contains("2025-01-01"), "{note}");
    }
    // A window after the last step holds nothing to measure.
    let o = run(&["report", "--db", &db, "--since", "2099-01-01", "--quiet"]);
    assert_one_line_error(&o, "no build step");
}

#[test]
fn sample_into_refuses_a_database_holding_anything_of_its_own() {
    let pg = TestPg::start();
    for (what, sql, named) in [
        ("a table", "CREATE TABLE invoices (x int)", "invoices"),
        ("a view", "CREATE VIEW totals AS SELECT 1 AS x", "totals"),
        ("a sequence", "CREATE SEQUENCE order_no", "order_no"),
        (
            "a table in the schema of the search path",
            "CREATE SCHEMA shop; ALTER DATABASE current SET search_path = shop; \
             CREATE TABLE shop.orders (x int)",
            "schema shop already holds orders",
        ),
        (
            "many tables",
            "CREATE TABLE a1 (x int); CREATE TABLE a2 (x int); CREATE TABLE a3 (x int); \
             CREATE TABLE a4 (x int); CREATE TABLE a5 (x int)",
            "a1, a2, a3 and 2 more",
        ),
    ] {
        let db = pg.database();
        let name = db.rsplit('=').next().unwrap().to_string();
        pg.psql(&name, &sql.replace("current", &name));
        let o = run(&["sample", "--into", &db, "--scale", "0.01"]);
        assert_one_line_error(&o, named);
        assert!(
            stderr(&o).contains("is not empty"),
            "{what}: {}",
            stderr(&o)
        );
        // Nothing was created or loaded.
        let hydra = pg.psql(
            &name,
            "SELECT count(*) FROM pg_class WHERE relname = 'builds'",
        );
        assert_eq!(hydra, "0", "{what}");
    }
    // An extension's own objects (pg_buffercache's view, in public) are not the database's.
    let db = pg.database();
    let name = db.rsplit('=').next().unwrap().to_string();
    pg.psql(&name, "CREATE EXTENSION pg_buffercache");
    let o = run(&["sample", "--into", &db, "--scale", "0.01", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The generated sample's frames at the tests' scale, as every source returns them.
fn generated() -> Dataset {
    source::normalize(hydra_bottleneck::sample::generate(&spec()).unwrap()).unwrap()
}

/// How many distinct derivations the builds and steps of `ds` name.
fn drv_paths(ds: &Dataset) -> usize {
    let mut all = ds.builds.column("drv_path").unwrap().clone();
    all.append(ds.steps.column("drv_path").unwrap()).unwrap();
    all.n_unique().unwrap()
}

#[test]
fn schemas_88_to_90_read_back_the_generators_frames_whatever_form_a_path_is_stored_in() {
    let pg = TestPg::start();
    let want = generated();
    for version in ["88", "89", "90"] {
        let db = load_sample(&pg, &SCALE.to_string(), version);
        let name = dbname(&db);
        let count = |sql: &str| pg.psql(&name, sql).parse::<usize>().unwrap();
        // 88 widened the times (upgrade-88).
        assert_eq!(
            pg.psql(
                &name,
                "SELECT data_type FROM information_schema.columns \
                 WHERE table_name = 'buildsteps' AND column_name = 'starttime'"
            ),
            "bigint",
            "{version}"
        );
        let forms = |table: &str, column: &str| {
            (
                count(&format!(
                    "SELECT count(*) FROM {table} WHERE storedir IS NOT NULL AND strpos({column}, '/') = 0"
                )),
                count(&format!(
                    "SELECT count(*) FROM {table} WHERE storedir IS NULL AND strpos({column}, '/') > 0"
                )),
            )
        };
        match version {
            "89" => {
                // Part-way through hydra-backfill-store-dirs: Builds converted whole, steps and
                // step outputs in both forms, so that a build's row and its own step's row
                // often hold the same derivation in different forms.
                let (converted, full) = forms("builds", "drvpath");
                assert!(converted > 0 && full == 0, "builds {converted}/{full}");
                for (table, column) in [("buildsteps", "drvpath"), ("buildstepoutputs", "path")] {
                    let (converted, full) = forms(table, column);
                    assert!(
                        converted > 1000 && full > 1000,
                        "{table} {converted}/{full}"
                    );
                }
                let split = count(
                    "SELECT count(*) FROM builds b JOIN buildsteps s ON s.build = b.id \
                     WHERE b.drvpath = substring(s.drvpath from '[^/]*$') AND s.storedir IS NULL",
                );
                assert!(split > 100, "{split} builds whose step holds the full path");
                // As stored, many a derivation is two values.
                let union =
                    "(SELECT drvpath FROM builds UNION ALL SELECT drvpath FROM buildsteps) d";
                let stored = count(&format!("SELECT count(DISTINCT drvpath) FROM {union}"));
                let derivations = count(&format!(
                    "SELECT count(DISTINCT substring(drvpath from '[^/]*$')) FROM {union}"
                ));
                assert!(stored > derivations + 100, "{stored} {derivations}");
                assert_eq!(derivations, drv_paths(&want));
            }
            "90" => {
                for (table, column) in [("buildsteps", "drvpath"), ("buildstepoutputs", "path")] {
                    assert_eq!(forms(table, column).1, 0, "{table}");
                }
                // upgrade-90's composite key ties a step's store dir to its build's.
                assert_eq!(
                    pg.psql(
                        &name,
                        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'buildsteps'::regclass \
                         AND contype = 'f' AND confrelid = 'builds'::regclass \
                         AND array_length(conkey, 1) = 2"
                    ),
                    "1"
                );
            }
            // Before 89 there is no storeDir: every path is whole.
            _ => assert_eq!(
                count(
                    "SELECT count(*) FROM information_schema.columns WHERE column_name = 'storedir'"
                ),
                0
            ),
        }
        let ds = read(&db, &ReadOptions::default()).unwrap();
        assert_eq!(ds.meta.schema_version, Some(version.parse().unwrap()));
        // The sample's steps name store URIs as the C++ runner writes them, whatever the schema
        // (tests/eras.rs).
        assert_eq!(ds.meta.runner, Runner::Cpp);
        // Read back, every path is one full path again: one derivation, one value.
        assert_frames_equal(&ds, &want);
        assert_eq!(drv_paths(&ds), drv_paths(&want));
    }
}

/// A new Hydra: Hydra's tables made by `ddl` (upstream-equivalent, docs/hydra.md §1) as
/// `hydra-init` leaves them, with a user of its own as `hydra-create-user` adds one, then
/// `extra` (another line of development's columns, say); returns the superuser's
/// connection string.
fn new_hydra(pg: &TestPg, ddl: Ddl, extra: &str) -> String {
    let db = pg.database();
    let name = dbname(&db);
    pg.psql(&name, ddl.sql());
    pg.psql(
        &name,
        &format!(
            "INSERT INTO users (username, emailaddress, password) VALUES ('alice', 'a@example.org', 'x'); {extra}"
        ),
    );
    db
}

#[test]
fn sample_into_fills_a_new_hydras_empty_tables_meeting_upstreams_foreign_keys() {
    let pg = TestPg::start();
    let want = generated();
    // The competing schema 89 (NixOS/hydra @ 73b2d884) adds two columns to JobsetEvals, one
    // a foreign key to Builds.
    let eval_build = "ALTER TABLE jobsetevals ADD COLUMN eval_build integer; \
         ALTER TABLE jobsetevals ADD CONSTRAINT jobsetevals_eval_build_fkey \
           FOREIGN KEY (eval_build) REFERENCES builds(id) ON DELETE SET NULL; \
         ALTER TABLE jobsetevals ADD COLUMN completed bigint; \
         UPDATE schemaversion SET version = 89";
    for (ddl, extra, version) in [
        (Ddl::V87, "", "87"),
        (Ddl::V88, eval_build, "89"),
        (Ddl::V89, "", "89"),
        (Ddl::V90, "", "90"),
    ] {
        let db = new_hydra(&pg, ddl, extra);
        let name = dbname(&db);
        let o = run(&["sample", "--into", &db, "--scale", &SCALE.to_string()]);
        assert!(o.status.success(), "{ddl:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "filled the new Hydra's empty tables (schema {version})"
            )),
            "{}",
            stderr(&o)
        );
        // The projects' owner has its Users row; the user that was there is untouched.
        assert_eq!(
            pg.psql(
                &name,
                "SELECT string_agg(DISTINCT u.username, ',' ORDER BY u.username) \
                 FROM projects p JOIN users u ON u.username = p.owner"
            ),
            "hydra-bottleneck"
        );
        assert_eq!(
            pg.psql(&name, "SELECT count(*) FROM users WHERE username = 'alice'"),
            "1"
        );
        // Upstream's trigger-kept count of finished builds is right, and the trigger is on.
        assert_eq!(
            pg.psql(
                &name,
                "SELECT (SELECT count FROM nrbuilds WHERE what = 'finished') = \
                        (SELECT count(*) FROM builds WHERE finished = 1), \
                        (SELECT tgenabled FROM pg_trigger WHERE tgname = 'nrbuildsfinished')"
            ),
            "t|O"
        );
        let ds = read(&pg.grant_reader(&name), &ReadOptions::default()).unwrap();
        assert_eq!(ds.meta.schema_version, Some(version.parse().unwrap()));
        assert_frames_equal(&ds, &want);
    }
    // hydra.sql alone leaves SchemaVersion empty (hydra-init writes its row): still filled,
    // and the note says what readers will lack.
    let db = new_hydra(&pg, Ddl::V87, "DELETE FROM schemaversion");
    let o = run(&["sample", "--into", &db, "--scale", "0.01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("give them --runner"), "{}", stderr(&o));
}

#[test]
fn our_ddl_has_upstreams_foreign_keys_the_projects_owner_among_them() {
    let pg = TestPg::start();
    for ddl in [Ddl::V80, Ddl::V87, Ddl::V90] {
        let db = pg.database();
        let name = dbname(&db);
        pg.psql(&name, ddl.sql());
        // Foreign keys of hydra.sql (schema 87: 34; 80 has the same); 90 swaps the steps' key
        // to the build for a composite one and adds four.
        let keys: usize = pg
            .psql(
                &name,
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f'",
            )
            .parse()
            .unwrap();
        let want = if ddl == Ddl::V90 { 37 } else { 34 };
        assert_eq!(keys, want, "{ddl:?}");
        assert_eq!(
            pg.psql(
                &name,
                "SELECT confrelid::regclass::text FROM pg_constraint \
                 WHERE conname = 'projects_owner_fkey'"
            ),
            "users",
            "{ddl:?}"
        );
        let refused = pg.psql_output(
            &name,
            "INSERT INTO projects (name, displayname, owner) VALUES ('p', 'p', 'nobody')",
        );
        assert!(!refused.status.success(), "{ddl:?}");
    }
}

#[test]
fn sample_into_refuses_a_new_hydra_whose_code_another_role_owns() {
    let pg = TestPg::start();
    let db = pg.database();
    let name = dbname(&db);
    // hydra-init run as the role `hydra` (pg_trgm, which it may not create, is skipped).
    pg.psql(
        &name,
        "CREATE ROLE hydra LOGIN; GRANT CREATE ON SCHEMA public TO hydra",
    );
    pg.psql(&name, &format!("SET ROLE hydra; {}", Ddl::V87.sql()));
    // The superuser would run hydra's triggers with its own powers.
    let o = run(&["sample", "--into", &db, "--scale", "0.01"]);
    assert_one_line_error(&o, "table builds is owned by role hydra");
    assert_eq!(pg.psql(&name, "SELECT count(*) FROM builds"), "0");
    // As the role that made them, the tables are filled.
    let as_hydra = db.replace("user=postgres", "user=hydra");
    let o = run(&["sample", "--into", &as_hydra, "--scale", "0.01", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(pg.psql(&name, "SELECT count(*) FROM builds"), "0");
}

/// Every read of a database goes a chunk at a time (`source::read_into`): into frames held for
/// an analysis (`source::load`), or into a snapshot written as the rows come (`snapshot --db`).
/// Both must hold exactly the rows the window rule keeps of the generator's own frames, for a
/// window whose first steps started before it and whose builds were queued before it, and for
/// the whole history, and the snapshot the description the load gives; with a writer that
/// writes every few thousand rows, a day's rows land in several files, which read back as one
/// partition. The reader hands a range's rows on in chunks of at most `chunk_rows` (a range of
/// one second may hold an evaluation's builds): with a small bound the ranges are cut in many
/// chunks, none larger than the bound, and the rows are still the same.
#[test]
fn a_read_in_chunks_holds_what_the_window_rule_keeps() {
    use hydra_bottleneck::source::snapshot::Writer;
    /// The writer, and the largest chunk it was given of each table with how many it got.
    struct Counting(
        Writer,
        std::collections::BTreeMap<&'static str, (usize, usize)>,
    );
    impl source::Chunks for Counting {
        fn add(
            &mut self,
            def: &'static hydra_bottleneck::dataset::TableDef,
            df: polars::prelude::DataFrame,
        ) -> hydra_bottleneck::Result<()> {
            let e = self.1.entry(def.name).or_default();
            *e = (e.0.max(df.height()), e.1 + 1);
            self.0.add(def, df)
        }
    }
    const CHUNK: usize = 500;
    let pg = TestPg::start();
    let db = load_sample(&pg, &SCALE.to_string(), "87");
    let generated = hydra_bottleneck::sample::generate(&spec()).unwrap();
    let start = generated.meta.window.since.unwrap();
    let out = tempfile::tempdir().unwrap();
    let windows = [
        WindowSpec {
            since: Some(TimeSpec::At(start + 2 * 86_400 + 7_200)),
            until: Some(TimeSpec::At(start + 4 * 86_400 + 3_600)),
        },
        WindowSpec::default(),
    ];
    for (i, window) in windows.into_iter().enumerate() {
        let opts = ReadOptions {
            window,
            ..ReadOptions::default()
        };
        let whole = read(&db, &opts).unwrap();
        let kept = source::load(&SourceSpec::Sample(spec()), &opts).unwrap();
        assert_frames_equal(&whole, &kept);
        let dir = out.path().join(format!("snap{i}"));
        let mut sink = Counting(
            Writer::new(&dir, false).unwrap().flushing_every(3_000),
            Default::default(),
        );
        let small = ReadOptions {
            chunk_rows: CHUNK,
            ..opts.clone()
        };
        let meta = source::read_into(&db, &small, &mut sink, false)
            .unwrap()
            .meta;
        let manifest = sink.0.finish(&meta, None).unwrap();
        for t in ["steps", "builds", "step_outputs"] {
            let (largest, chunks) = sink.1[t];
            // A COPY message holds one row: a chunk ends on the row that reaches the bound.
            assert!(
                largest <= CHUNK,
                "window {i}: {t}: a chunk of {largest} rows"
            );
            let rows = manifest.tables[t].rows as usize;
            assert!(chunks >= rows / CHUNK, "window {i}: {t}: {chunks} chunks");
        }
        let chunked = source::snapshot::read(&dir).unwrap();
        assert!(whole.steps.height() > 1000, "window {i}");
        assert_frames_equal(&chunked, &whole);
        assert_eq!(chunked.meta.window, whole.meta.window, "window {i}");
        assert_eq!(chunked.meta.window_note, whole.meta.window_note);
        assert_eq!(chunked.meta.runner, whole.meta.runner);
        assert_eq!(chunked.meta.runner_basis, whole.meta.runner_basis);
        assert_eq!(chunked.meta.schema_version, Some(87));
        // Several files in one day's directory: the writer flushed mid-day.
        let steps = &manifest.tables["steps"].files;
        let mut per_day = std::collections::BTreeMap::<&str, usize>::new();
        for f in steps {
            *per_day
                .entry(f.path.rsplit_once('/').unwrap().0)
                .or_default() += 1;
        }
        assert!(per_day.values().any(|&n| n > 1), "window {i}: {per_day:?}");
    }
    // Through the command line as well, with the whole read's note.
    let snap = out.path().join("cli");
    let o = run(&[
        "snapshot",
        "--db",
        &db,
        "--out",
        snap.to_str().unwrap(),
        "--since",
        &(start + 86_400).to_string(),
    ]);
    assert!(o.status.success(), "snapshot: {}", stderr(&o));
    assert!(stderr(&o).contains("steps and"), "{}", stderr(&o));
}

/// A database's window is read once, into a temporary snapshot, and the findings fold over its
/// days (`source::spill`): `analyze all --db` prints what the whole analysis of the window read
/// whole gives, for the whole history and a window inside it; `report --db` writes what `report
/// --snapshot` of the same database's snapshot writes; the temporary snapshot is gone after
/// each run, a failed one too; and a place to spill that cannot be written is one clear line.
#[test]
fn a_database_window_is_spilled_once_and_folded_as_the_whole_read_analyses_it() {
    use hydra_bottleneck::analysis::table::{Finding, tabulate};
    use hydra_bottleneck::analysis::{Need, Options, analyze};
    let pg = TestPg::start();
    let db = load_sample(&pg, &SCALE.to_string(), "87");
    let spill = tempfile::tempdir().unwrap();
    let in_spill = |args: &[&str]| hb().env("TMPDIR", spill.path()).args(args).run();
    let start = hydra_bottleneck::sample::generate(&spec())
        .unwrap()
        .meta
        .window
        .since
        .unwrap();
    let inside = (start + 2 * 86_400 + 7_200).to_string();
    for window in [&[][..], &["--since", inside.as_str()][..]] {
        let opts = ReadOptions {
            window: WindowSpec {
                since: (!window.is_empty()).then(|| TimeSpec::At(inside.parse().unwrap())),
                until: None,
            },
            omit: hydra_bottleneck::dataset::NOT_ANALYSED,
            ..ReadOptions::default()
        };
        let ds = read(&db, &opts).unwrap();
        assert!(ds.drv_graph.is_none() && ds.timeline.is_none());
        let whole = analyze(
            &ds,
            &Options {
                need: Need::ALL,
                ..Options::default()
            },
        )
        .unwrap();
        assert!(
            whole.ledger.total.building_h > 10.0,
            "{:?}",
            whole.ledger.total
        );
        assert!(whole.waiting.overall.to_start.count > 1_000);
        let expected = tabulate(&whole, Finding::All).unwrap().2;
        let mut args = vec!["analyze", "all", "--db", &db, "--format", "json"];
        args.extend_from_slice(window);
        let o = in_spill(&args);
        assert!(o.status.success(), "{window:?}: {}", stderr(&o));
        let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(got, expected, "analyze all {window:?}");
        let err = stderr(&o);
        assert!(
            err.contains("temporary snapshot") && err.contains(&spill.path().display().to_string()),
            "{err}"
        );
        assert_empty_dir(spill.path());
    }

    // Where the ledger joins a derivation graph the spilled snapshot is read whole: the same
    // tables and description as the window read whole from the database; and the temporary
    // directory goes with the days.
    let opts = ReadOptions {
        omit: hydra_bottleneck::dataset::NOT_ANALYSED,
        ..ReadOptions::default()
    };
    let mut made = None;
    let days = source::spill(&db, &opts, spill.path(), |dir| {
        made = Some(dir.to_path_buf())
    })
    .unwrap();
    let made = made.expect("told where");
    assert!(made.starts_with(spill.path()) && days.dir().starts_with(&made));
    let (spilled, whole) = (
        days.read_whole(opts.omit).unwrap(),
        read(&db, &opts).unwrap(),
    );
    assert_frames_equal(&spilled, &whole);
    assert_eq!(spilled.meta, whole.meta);
    drop(days);
    assert!(!made.exists());
    assert_empty_dir(spill.path());

    // The report from the database and from its snapshot (which folds as well, and the
    // snapshot tests hold folding equal to the whole read), the simulation included: it reads
    // its latest days from the temporary snapshot, not from the database again.
    let out = tempfile::tempdir().unwrap();
    let snap = out.path().join("snap");
    snapshot_of(&db, &snap);
    let report = |source: &[&str], name: &str| {
        let dir = out.path().join(name);
        let mut args = vec!["report", "--no-compression", "--no-png", "--seeds", "1"];
        args.extend_from_slice(source);
        args.extend_from_slice(&["--out", dir.to_str().unwrap(), "--quiet"]);
        let o = in_spill(&args);
        assert!(o.status.success(), "report {source:?}: {}", stderr(&o));
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
        // The origin, said in the source and the method's first line, is all that differs.
        let origin = json["source"]["origin"].as_str().unwrap().to_string();
        let said = json["method"]["sources"][0].take();
        assert_eq!(said.as_str(), Some(format!("history: {origin}").as_str()));
        let m = json.as_object_mut().unwrap();
        m.remove("generated_at");
        m.remove("source");
        (json, origin)
    };
    // The server is read once: the simulation adds no scan of the steps to the analyses'.
    let scans = || -> i64 {
        let sql = "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables \
                   WHERE relname = 'buildsteps'";
        pg.psql(&dbname(&db), sql).parse().unwrap()
    };
    let before = scans();
    report(&["--db", &db, "--no-simulation"], "db-alone");
    let between = scans();
    let (from_db, origin) = report(&["--db", &db], "db");
    let after = scans();
    assert!(between > before, "the steps were scanned");
    assert_eq!(after - between, between - before, "scans of the steps");
    assert_empty_dir(spill.path());
    assert!(origin.starts_with("PostgreSQL"), "{origin}");
    let (from_snapshot, _) = report(&["--snapshot", snap.to_str().unwrap()], "snapshot");
    assert!(
        from_db["simulation"].is_object(),
        "{}",
        from_db["simulation"]
    );
    assert_eq!(from_db, from_snapshot);

    // A window holding nothing fails as the whole read failed, and leaves nothing behind.
    let o = in_spill(&["report", "--db", &db, "--since", "2099-01-01", "--quiet"]);
    assert_one_line_error(&o, "no build step");
    assert_empty_dir(spill.path());
    // A place to spill that is not there: one line naming it, before any row is read.
    let o = hb()
        .env("TMPDIR", "/nonexistent/spill")
        .args(["analyze", "waiting", "--db", &db])
        .run();
    assert_one_line_error(&o, "/nonexistent/spill");
    let err = stderr(&o);
    assert!(
        err.contains("temporary snapshot") && err.contains("No such file or directory"),
        "{err}"
    );
}
