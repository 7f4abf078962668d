//! `query` without a database: the named queries and ad-hoc SQL on a snapshot and on the
//! built-in sample, through the offline engine. The same questions asked of a real PostgreSQL
//! holding the sample and of a snapshot of that database give the same rows.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use serde_json::Value;
use support::*;

/// The named queries, as `query list --format json` gives them.
fn listed() -> Vec<Value> {
    let o = run(&["query", "list", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array().unwrap().clone()
}

fn rows(o: &std::process::Output, what: &str) -> Vec<serde_json::Map<String, Value>> {
    assert!(o.status.success(), "{what}: {}", stderr(o));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", stderr(o)));
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect()
}

/// Two cells are the same answer: equal, or numbers equal to within the last digit the query
/// rounds to (PostgreSQL rounds a `numeric` half away from zero, polars an `f64`, whose
/// binary value of a tie may lie just below it).
fn same_cell(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            let decimals = |v: f64| {
                let s = format!("{v}");
                s.split_once('.').map_or(0, |(_, f)| f.len()) as i32
            };
            let unit = 10f64.powi(-decimals(x).max(decimals(y)));
            (x - y).abs() <= unit * 1.000_001
        }
        _ => a == b,
    }
}

/// The rows as a sorted multiset of their printed forms, for answers whose order has ties.
fn sorted(rows: &[serde_json::Map<String, Value>]) -> Vec<Vec<Value>> {
    let mut v: Vec<Vec<Value>> = rows.iter().map(|r| r.values().cloned().collect()).collect();
    v.sort_by_key(|r| serde_json::to_string(r).unwrap());
    v
}

#[test]
fn every_named_query_gives_the_same_rows_from_the_database_and_its_snapshot() {
    let (pg, db, name) = loaded("0.1", "90");
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap");
    snapshot_of(&db, &snap);
    let snap = snap.to_str().unwrap();
    let job = pg.psql(
        &name,
        "SELECT job FROM builds GROUP BY job ORDER BY count(*) DESC, job LIMIT 1",
    );
    let first = pg.psql(&name, "SELECT min(timestamp) FROM builds");
    let mut compared = 0;
    for q in listed() {
        let qname = q["name"].as_str().unwrap();
        let offline = q["offline"]["runs"].as_str().unwrap();
        assert_ne!(offline, "no", "{qname}: every named query runs offline");
        let takes = |p: &str| {
            q["params"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == p)
        };
        // Absolute times, and limits past every row, so that both see the same rows whole.
        let mut params: Vec<String> = Vec::new();
        if takes("since") {
            params.push(format!("since=@{first}"));
        }
        if takes("limit") {
            params.push("limit=1000000".into());
        }
        if takes("job") {
            params.push(format!("job={job}"));
        }
        let ask = |source: &[&str]| {
            let mut args = vec!["query", "run", qname, "--format", "json", "--quiet"];
            args.extend_from_slice(source);
            for p in &params {
                args.extend(["--param", p.as_str()]);
            }
            run(&args)
        };
        let live = rows(&ask(&["--db", &db]), &format!("{qname} on the database"));
        let off = rows(
            &ask(&["--snapshot", snap]),
            &format!("{qname} on the snapshot"),
        );
        // Both engines name the columns alike.
        let cols = |r: &[serde_json::Map<String, Value>]| {
            r.first().map(|x| x.keys().cloned().collect::<Vec<_>>())
        };
        assert_eq!(cols(&live), cols(&off), "{qname}: columns");
        match qname {
            // What is measured up to "now": the database's clock, and offline the instant the
            // snapshot was taken, a few seconds earlier. The hours are the same up to the
            // last, which the clock may have moved past.
            "queue-depth-per-hour" => {
                assert!(live.len() > 24, "{qname}: {} rows", live.len());
                assert!(live.len().abs_diff(off.len()) <= 1, "{qname}: row counts");
                let n = live.len().min(off.len());
                assert_eq!(live[..n], off[..n], "{qname}");
            }
            "queue-now" | "steps-running-now" => {
                let age = if qname == "queue-now" {
                    "oldest_wait_s"
                } else {
                    "running_s"
                };
                assert_eq!(live.len(), off.len(), "{qname}: row counts");
                let strip = |r: &[serde_json::Map<String, Value>]| {
                    let mut r = r.to_vec();
                    for x in &mut r {
                        x.remove(age);
                    }
                    sorted(&r)
                };
                assert_eq!(strip(&live), strip(&off), "{qname}");
                // The ages differ by the seconds between the snapshot and the query, no more.
                let total = |r: &[serde_json::Map<String, Value>]| -> i64 {
                    r.iter().map(|x| x[age].as_i64().unwrap_or(0)).sum()
                };
                let gap = total(&live) - total(&off);
                assert!(
                    (0..=600 * live.len() as i64).contains(&gap),
                    "{qname}: {gap}"
                );
            }
            _ => {
                assert!(!live.is_empty(), "{qname}: no rows to compare");
                assert_eq!(live.len(), off.len(), "{qname}: row counts");
                let (a, b) = (sorted(&live), sorted(&off));
                // Sorted by their printed form, rows that differ only in a rounded last digit
                // may sort apart; match each row of one side with one of the other.
                let mut unmatched: Vec<&Vec<Value>> = b.iter().collect();
                // Equal rows first, so that a tolerant match cannot take a row another row
                // equals exactly.
                let mut left: Vec<&Vec<Value>> = Vec::new();
                for row in &a {
                    match unmatched.iter().position(|o| *o == row) {
                        Some(i) => {
                            unmatched.swap_remove(i);
                        }
                        None => left.push(row),
                    }
                }
                for row in left {
                    let at = unmatched.iter().position(|o| {
                        o.len() == row.len() && o.iter().zip(row).all(|(x, y)| same_cell(x, y))
                    });
                    match at {
                        Some(i) => {
                            unmatched.swap_remove(i);
                        }
                        None => panic!(
                            "{qname}: row {row:?} of the database not offline; offline: {:?}",
                            b.iter().find(|o| o.first() == row.first())
                        ),
                    }
                }
            }
        }
        compared += 1;
    }
    assert!(compared >= 14, "{compared} queries compared");
}

#[test]
fn offline_sql_reads_the_tables_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap");
    let o = run(&[
        "sample",
        "--out",
        snap.to_str().unwrap(),
        "--scale",
        "0.01",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let snap = snap.to_str().unwrap();
    let sql = |text: &str| run(&["query", "sql", text, "--snapshot", snap, "--quiet"]);

    // A query over Hydra's names runs, and sees the snapshot's rows.
    let o = run(&[
        "query",
        "sql",
        "SELECT count(*) AS n FROM buildsteps s JOIN builds b ON b.id = s.build",
        "--snapshot",
        snap,
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let n: u64 = String::from_utf8_lossy(&o.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 100, "{n} steps");

    // Files outside the snapshot, writes, attachments and several statements are refused,
    // each with one line, before anything is read.
    let secret = dir.path().join("secret.csv");
    std::fs::write(&secret, "password\nhunter2\n").unwrap();
    let secret = secret.to_str().unwrap();
    for (text, says) in [
        (
            format!("SELECT * FROM read_csv('{secret}')"),
            "table function",
        ),
        (
            format!("SELECT * FROM read_parquet('{snap}/jobsets/part-0.parquet')"),
            "table function",
        ),
        (
            "CREATE TABLE t AS SELECT * FROM builds".to_string(),
            "only a query",
        ),
        (
            format!("COPY builds TO '{}/out.csv'", dir.path().display()),
            "query sql",
        ),
        (format!("ATTACH DATABASE '{secret}' AS x"), "query sql"),
        ("SELECT 1; DROP TABLE builds".to_string(), "2 statements"),
        ("SELECT * FROM users".to_string(), "no table `users`"),
    ] {
        let o = sql(&text);
        assert_one_line_error(&o, says);
        assert!(!String::from_utf8_lossy(&o.stdout).contains("hunter2"));
    }
    assert!(!dir.path().join("out.csv").exists());

    // Parquet output is the same result, written once.
    let out = dir.path().join("r.parquet");
    let o = run(&[
        "query",
        "run",
        "failures-by-status",
        "--snapshot",
        snap,
        "--parquet",
        out.to_str().unwrap(),
        "--format",
        "json",
        "--quiet",
    ]);
    let printed = rows(&o, "failures-by-status");
    use polars::prelude::SerReader;
    let df = polars::prelude::ParquetReader::new(std::fs::File::open(&out).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height(), printed.len());
    let mut names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    names.sort();
    assert_eq!(names, printed[0].keys().cloned().collect::<Vec<_>>());
    // An existing file is not replaced without --force.
    let o = run(&[
        "query",
        "run",
        "failures-by-status",
        "--snapshot",
        snap,
        "--parquet",
        out.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "--force");
}

#[test]
fn a_statement_past_the_timeout_is_refused() {
    use hydra_bottleneck::query::offline::Engine;
    use hydra_bottleneck::sample::SampleSpec;
    use hydra_bottleneck::source::{ReadOptions, SourceSpec, load};
    let spec = SampleSpec {
        scale: 0.01,
        ..SampleSpec::default()
    };
    let ds = load(&SourceSpec::Sample(spec), &ReadOptions::default()).unwrap();
    // A million rows from digits: far more than a millisecond's work.
    let slow = "WITH d AS (SELECT x FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), \
                (9)) AS t(x)) SELECT sum(a.x * b.x * c.x * e.x * f.x * g.x) AS s FROM d a \
                CROSS JOIN d b CROSS JOIN d c CROSS JOIN d e CROSS JOIN d f CROSS JOIN d g";
    let mut quick = Engine::new(&ds, 0, std::time::Duration::from_secs(600)).unwrap();
    let df = quick.run_adhoc(slow).unwrap();
    assert_eq!(df.height(), 1);
    let mut hurried = Engine::new(&ds, 0, std::time::Duration::from_millis(1)).unwrap();
    let err = hurried.run_adhoc(slow).unwrap_err().to_string();
    assert!(err.contains("statement timeout"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn the_list_says_which_queries_run_offline_and_the_sample_answers_them() {
    let all = listed();
    assert!(all.iter().all(|q| q["offline"]["runs"].is_string()));
    let o = run(&["query", "list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap()
            .contains("offline")
    );
    // The built-in sample, with no source named.
    let o = run(&[
        "query",
        "run",
        "step-times-by-system",
        "--format",
        "csv",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.starts_with("system,steps,p50_s,p90_s,p99_s,max_s\n"),
        "{text}"
    );
    assert!(text.contains("x86_64-linux,"), "{text}");
}
