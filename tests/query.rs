//! Named and ad-hoc queries against a real PostgreSQL holding the sample.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::*;

#[test]
fn every_named_query_runs_on_the_sample() {
    let (pg, db, name) = loaded("0.1", "87");
    let list = run(&["query", "list", "--format", "json"]);
    assert!(list.status.success());
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.len() >= 12, "{names:?}");
    let job = pg.psql(&name, "SELECT job FROM builds ORDER BY id LIMIT 1");
    let now = pg.psql(&name, "SELECT extract(epoch FROM now())::int8");
    let two_days_ago = (now.parse::<i64>().unwrap() - 2 * 86_400).to_string();
    for q in &names {
        let mut args = vec!["query", "run", q.as_str(), "--db", &db, "--format", "json"];
        let job_param = format!("job={job}");
        let since = match q.as_str() {
            // One count per hour up to now: keep the range short.
            "queue-depth-per-hour" => format!("since=@{two_days_ago}"),
            _ => "since=2025-01-01".to_string(),
        };
        if list.as_array().unwrap().iter().any(|x| {
            x["name"] == q.as_str()
                && x["params"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == "since")
        }) {
            args.extend(["--param", since.as_str()]);
        }
        if q == "job-history" {
            args.extend(["--param", job_param.as_str()]);
        }
        let o = run(&args);
        assert!(o.status.success(), "{q}: {}", stderr(&o));
        let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let n = rows.as_array().unwrap().len();
        // What is queued or running "now" is whatever the sample left unfinished at its end.
        let expected = match q.as_str() {
            "queue-now" => Some("SELECT count(DISTINCT system) FROM builds WHERE finished = 0"),
            "steps-running-now" => Some("SELECT count(*) FROM buildsteps WHERE busy <> 0"),
            _ => None,
        };
        match expected {
            Some(sql) => assert_eq!(n.to_string(), pg.psql(&name, sql), "{q}"),
            None => assert!(n > 0, "{q} returned no rows"),
        }
    }
}

#[test]
fn parameters_are_bound_and_writes_are_refused() {
    let (pg, db, name) = loaded("0.1", "87");
    let count = || pg.psql(&name, "SELECT count(*) FROM builds");
    let before = count();
    // A hostile value is data, not SQL.
    let o = run(&[
        "query",
        "run",
        "job-history",
        "--db",
        &db,
        "--param",
        "job=x'; DELETE FROM builds; --",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    for sql in [
        "DELETE FROM builds",
        "SELECT 1; DELETE FROM builds",
        "CREATE TABLE evil (x int)",
    ] {
        let o = run(&["query", "sql", sql, "--db", &db]);
        assert_eq!(o.status.code(), Some(1), "{sql} must fail: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    }
    // Refused by the statement check, before the server sees it.
    let o = run(&["query", "sql", "DELETE FROM builds", "--db", &db]);
    assert!(stderr(&o).contains("refused: DELETE"), "{}", stderr(&o));
    assert_eq!(count(), before);
}

#[test]
fn ad_hoc_results_in_every_format() {
    let (_pg, db, _) = loaded("0.1", "87");
    let sql = "SELECT system, count(*) AS builds, avg(size) AS mean_size, bool_or(finished = 0) AS any_queued \
               FROM builds GROUP BY system ORDER BY system";
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("r.parquet");
    let o = run(&[
        "query",
        "sql",
        sql,
        "--db",
        &db,
        "--format",
        "csv",
        "--parquet",
        pq.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = String::from_utf8(o.stdout).unwrap();
    assert!(
        csv.starts_with("system,builds,mean_size,any_queued\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 5, "four systems and a header: {csv}");
    use polars::prelude::SerReader;
    let df = polars::prelude::ParquetReader::new(std::fs::File::open(&pq).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height(), 4);
    assert_eq!(
        df.column("builds").unwrap().dtype(),
        &polars::prelude::DataType::Int64
    );
    assert_eq!(
        df.column("mean_size").unwrap().dtype(),
        &polars::prelude::DataType::Float64
    );
    // The file now exists: writing it again needs --force, and it is left as it was.
    let before = std::fs::read(&pq).unwrap();
    let again = |force: bool| {
        let mut args = vec![
            "query",
            "sql",
            "SELECT 1 AS one",
            "--db",
            &db,
            "--parquet",
            pq.to_str().unwrap(),
        ];
        if force {
            args.push("--force");
        }
        run(&args)
    };
    let o = again(false);
    assert_one_line_error(&o, "pass --force");
    assert!(o.stdout.is_empty(), "no rows printed for a refused run");
    assert_eq!(std::fs::read(&pq).unwrap(), before);
    let o = again(true);
    assert!(o.status.success(), "{}", stderr(&o));
    let df = polars::prelude::ParquetReader::new(std::fs::File::open(&pq).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height(), 1, "--force replaced it");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no leftovers"
    );
    // A type we do not show is a clear error, not a panic.
    let o = run(&["query", "sql", "SELECT now() AS t", "--db", &db]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cast it"), "{}", stderr(&o));
}

#[test]
fn query_without_a_database_runs_on_the_sample_and_names_unknown_queries() {
    // With no source named, the built-in sample answers (tests/offline_query.rs has the rest).
    let o = run(&["query", "run", "slowest-jobs", "--format", "csv", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).lines().count() > 1,
        "rows from the sample"
    );
    let o = run(&["query", "run", "no-such-query", "--db", "host=/nonexistent"]);
    assert_one_line_error(&o, "no query named `no-such-query`");
    let o = run(&["query", "run", "no-such-query"]);
    assert_one_line_error(&o, "no query named `no-such-query`");
}
