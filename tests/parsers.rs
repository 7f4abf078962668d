//! Every parser of outside input on arbitrary and on mutated input: a value or an error,
//! never a panic. These are the fuzz targets' entry points (fuzz/) in a short, bounded form
//! that runs on stable with the other tests; the NAR reader's own properties are in nar.rs.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hydra_bottleneck::Error;
use hydra_bottleneck::conninfo;
use hydra_bottleneck::dataset::{STEP_OUTPUTS, STEPS};
use hydra_bottleneck::nix::narinfo;
use hydra_bottleneck::source::pgcopy::{CopyDecoder, CopyEncoder};
use hydra_bottleneck::source::snapshot;
use hydra_bottleneck::status;
use hydra_bottleneck::window::{self, TimeSpec};
use proptest::prelude::*;

/// Cases per property: enough to walk every branch of these small parsers several times over,
/// few enough that the whole file runs in seconds on two cores.
const CASES: u32 = 512;

/// A status document with one of everything the parser reads, as the C++ runner writes it.
const STATUS: &str = r#"{"status":"up","time":1762000000,"uptime":3600,"nrQueuedBuilds":12,
"nrRunnableSteps":5,"nrActiveSteps":3,"nrStepsBuilding":2,"nrStepsDone":100,
"totalStepTime":5000,"totalStepBuildTime":4000,"bytesSent":1048576,
"machines":{"ssh://a":{"enabled":true,"systemTypes":["x86_64-linux"],"currentJobs":2,
"maxJobs":4,"nrStepsDone":50,"totalStepTime":2500,"totalStepBuildTime":2000}},
"machineTypes":{"x86_64-linux":{"runnable":5,"running":2}},
"store":{"narWriteBytes":1000,"narWriteCompressionTimeMs":20},
"queueRunner":{"nrStepsDone":7}}"#;

/// A manifest as `snapshot` writes it, with one listed file and a machines file.
fn manifest_json() -> String {
    serde_json::json!({
        "format": snapshot::FORMAT,
        "format_version": snapshot::FORMAT_VERSION,
        "tool_version": "0.1.0",
        "created_at": 1_762_000_000,
        "origin": {"kind": "sample", "preset": "nixos-week", "seed": 1, "scale": 1.0},
        "schema_version": 80,
        "runner": "cpp",
        "runner_basis": "x",
        "window": {"since": 1, "until": 2},
        "tables": {"steps": {"rows": 3, "files": [
            {"path": "steps/day=2025-06-02/part-0.parquet", "rows": 3, "bytes": 10}]}},
        "machines": "machines"
    })
    .to_string()
}

/// Byte-level edits of a valid input: flip, insert, remove, or overwrite with a boundary value.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Splice(usize, &'static str),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Edit::Flip(i, x)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<usize>(), 1..16usize).prop_map(|(i, k)| Edit::Remove(i, k)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "null",
                "-1",
                "1e999",
                "\"\"",
                "[]",
                "{}",
                "\"../../etc/passwd\"",
                "\"/\"",
                "18446744073709551616",
                "true",
                "\"x\u{0}y\"",
                ":",
                ",",
                "\"",
            ])
        )
            .prop_map(|(i, s)| Edit::Splice(i, s)),
    ]
}

fn apply(mut b: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = b.len().max(1);
        match e {
            Edit::Flip(i, x) => {
                if !b.is_empty() {
                    b[i % n] ^= x;
                }
            }
            Edit::Insert(i, v) => {
                let at = i % (b.len() + 1);
                b.splice(at..at, v.iter().copied());
            }
            Edit::Remove(i, k) => {
                let at = i % n;
                let end = (at + k).min(b.len());
                if at < end {
                    b.drain(at..end);
                }
            }
            Edit::Splice(i, s) => {
                let at = i % (b.len() + 1);
                b.splice(at..at, s.bytes());
            }
        }
    }
    b
}

fn check_manifest(bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = std::path::Path::new("snap/manifest.json");
    match snapshot::parse_manifest(bytes, path) {
        Ok(m) => {
            for name in m
                .tables
                .values()
                .flat_map(|t| t.files.iter().map(|f| f.path.as_str()))
                .chain(m.machines.as_deref())
            {
                prop_assert!(
                    hydra_bottleneck::output::is_relative_inside(name),
                    "accepted `{}`, which leaves the snapshot",
                    name
                );
            }
        }
        Err(Error::Snapshot { path: p, .. }) => prop_assert_eq!(p, path),
        Err(other) => prop_assert!(false, "not a snapshot error: {}", other),
    }
    Ok(())
}

/// The password every connection string below carries: distinctive, so that finding either
/// end of it in a message means the message shows (part of) it.
const PW_HEAD: &str = "Pw§";
const PW_TAIL: &str = "§wP";

/// `tail_too` is false where the password was written so that its end cannot be told from
/// more key=value pairs (unquoted, with a space: `password=a sslmode=b`); its head is still the
/// password's and must never show.
fn assert_no_password(text: &str, what: &str, tail_too: bool) -> Result<(), TestCaseError> {
    prop_assert!(
        !(text.contains(PW_HEAD) || (tail_too && text.contains(PW_TAIL))),
        "{} shows the password: {}",
        what,
        text
    );
    Ok(())
}

/// Resolves `input` (whose password is `pw`) with an empty environment: an error never shows
/// the password, and a success shows it only through `expose`.
fn check_conninfo(input: &str, pw: &str, tail_too: bool) -> Result<(), TestCaseError> {
    match conninfo::resolve(input, &|_| None) {
        Ok(p) => {
            // A string that gave its password to the right key: the redacted form hides it.
            if p.password.as_ref().map(|s| s.expose()) == Some(pw) {
                assert_no_password(&p.redacted(), "redacted()", tail_too)?;
                assert_no_password(&format!("{p} {p:?}"), "Display/Debug", tail_too)?;
            }
        }
        Err(e) => {
            prop_assert!(matches!(e, Error::Conninfo(_)), "{}", e);
            assert_no_password(&e.to_string(), "the error", tail_too)?;
        }
    }
    Ok(())
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn status_documents_parse_or_fail_cleanly(text in ".{0,300}") {
        match status::parse(&text, "prop") {
            Ok(s) => {
                let f = status::derive(&s, None);
                let _ = status::figures::rows(&f);
            }
            Err(e) => prop_assert!(matches!(e, Error::StatusDocument { .. }), "{}", e),
        }
    }

    #[test]
    fn mutated_status_documents_parse_or_fail_cleanly(
        edits in prop::collection::vec(edit(), 1..6)
    ) {
        let bytes = apply(STATUS.as_bytes().to_vec(), &edits);
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(s) = status::parse(&text, "prop") {
            let f = status::derive(&s, None);
            let _ = status::figures::rows(&f);
            // Numbers that are not finite (1e999) are read as missing.
            prop_assert!(s.runnable_steps.is_none_or(f64::is_finite));
        }
        // As a line of a series too, repeated so that rates are computed between samples.
        let text = text.replace('\n', " ");
        let line = format!("{{\"t\":1,\"source\":\"x\",\"status\":{text}}}");
        let series = status::series::parse(&format!("{line}\n{line}\n{text}\n"), "prop");
        prop_assert_eq!(series.samples.len() + series.errors + series.bad_lines, 3);
        let summary = status::summarise(&series, None);
        let _ = status::series::rows(&summary);
    }

    #[test]
    fn manifests_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_manifest(&bytes)?;
    }

    #[test]
    fn mutated_manifests_parse_or_fail_cleanly(edits in prop::collection::vec(edit(), 1..6)) {
        let bytes = apply(manifest_json().into_bytes(), &edits);
        check_manifest(&bytes)?;
    }

    #[test]
    fn connection_strings_never_show_their_password(
        pw in "[^§]{0,12}",
        rest in "[^§]{0,40}",
        before in any::<bool>(),
    ) {
        let full = format!("{PW_HEAD}{pw}{PW_TAIL}");
        // As written by someone who did not know to escape it, and as they should have.
        let quoted = format!("'{}'", full.replace('\\', "\\\\").replace('\'', "\\'"));
        let bare_is_faithful = !pw.chars().any(char::is_whitespace);
        for (value, faithful) in [(full.clone(), bare_is_faithful), (quoted, true)] {
            let s = if before {
                format!("password={value} {rest}")
            } else {
                format!("{rest} password={value}")
            };
            check_conninfo(&s, &full, faithful)?;
        }
        for userinfo in [full.clone(), percent_encode(&full)] {
            check_conninfo(&format!("postgresql://reader:{userinfo}@{rest}"), &full, true)?;
        }
        // And whatever the string, no panic.
        let _ = conninfo::resolve(&rest, &|_| None);
    }

    #[test]
    fn time_bounds_parse_or_fail_cleanly(text in ".{0,40}") {
        match window::parse_time(&text) {
            Ok(spec) => {
                // Resolving never overflows, whatever the anchor.
                for anchor in [0, i64::MIN, i64::MAX] {
                    let _ = spec.resolve(anchor);
                }
            }
            Err(msg) => prop_assert!(msg.contains("is not a time"), "{}", msg),
        }
        let _ = window::parse_duration(&text);
        let _ = status::parse_interval(&text);
    }

    #[test]
    fn durations_read_back(w in 0..1000i64, d in 0..1000i64, h in 0..1000i64, m in 0..1000i64) {
        let total = w * 7 * 86_400 + d * 86_400 + h * 3600 + m * 60;
        prop_assume!(total > 0);
        let text = format!("{w}w{d}d{h}h{m}m");
        prop_assert_eq!(window::parse_duration(&text), Some(total));
        prop_assert_eq!(window::parse_time(&text), Ok(TimeSpec::Ago(total)));
    }

    #[test]
    fn huge_numbers_are_errors_not_overflows(digits in "[1-9][0-9]{19,40}", unit in "[smhdw]") {
        let (duration, hours) = (format!("{digits}{unit}"), format!("{digits}h"));
        prop_assert_eq!(window::parse_duration(&duration), None);
        let time = window::parse_time(&digits);
        prop_assert!(time.is_err());
        let interval = status::parse_interval(&hours);
        prop_assert!(interval.is_err());
    }

    #[test]
    fn narinfos_parse_or_fail_cleanly(text in "(([A-Za-z]{1,9}: ?[ -~]{0,60})?\n){0,10}") {
        if let Err(e) = narinfo::parse(&text, "prop.narinfo") {
            prop_assert!(e.to_string().starts_with("prop.narinfo: "), "{}", e);
        }
    }

    #[test]
    fn copy_streams_decode_or_fail_cleanly(
        edits in prop::collection::vec(edit(), 0..4),
        chunk in 1..64usize,
    ) {
        let mut e = CopyEncoder::new();
        for i in 0..4 {
            e.start_row(4);
            e.i32(Some(i));
            e.i32(Some(i + 1));
            e.str(Some("out"));
            e.str(if i % 2 == 0 { None } else { Some("/nix/store/x") });
        }
        let bytes = apply(e.finish(), &edits);
        let whole = {
            let mut d = CopyDecoder::new(&STEP_OUTPUTS, 2);
            d.feed(&bytes).and_then(|_| d.finish())
        };
        let pieces = {
            let mut d = CopyDecoder::new(&STEP_OUTPUTS, 2);
            bytes
                .chunks(chunk)
                .try_for_each(|c| d.feed(c))
                .and_then(|_| d.finish())
        };
        match (whole, pieces) {
            (Ok(a), Ok(b)) => prop_assert!(a.equals_missing(&b)),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "whole: {:?}; in chunks: {:?}", a.map(|d| d.height()),
                                   b.map(|d| d.height())),
        }
        // The wider table, on the same bytes: its field count never matches, so an error.
        let mut d = CopyDecoder::new(&STEPS, 2);
        let _ = d.feed(&bytes).and_then(|_| d.finish());
    }
}

#[test]
fn the_seeds_themselves_parse() {
    status::parse(STATUS, "seed").unwrap();
    snapshot::parse_manifest(
        manifest_json().as_bytes(),
        std::path::Path::new("manifest.json"),
    )
    .unwrap();
}

/// Pieces of SQL that, strung together, make every kind of statement the check must refuse
/// and many it must accept: keywords, refused and harmless functions, quoting of every kind,
/// comments, separators.
const SQL_PIECES: &[&str] = &[
    "SELECT",
    "select",
    "1",
    "*",
    "FROM",
    "builds",
    "buildsteps b",
    "WHERE",
    "id",
    "=",
    ",",
    "(",
    ")",
    ";",
    "WITH",
    "x AS",
    "AS",
    "UNION",
    "ALL",
    "EXCEPT",
    "VALUES",
    "TABLE",
    "EXPLAIN",
    "ANALYZE",
    "COPY",
    "TO",
    "PROGRAM",
    "'id'",
    "STDOUT",
    "DO",
    "$$",
    "$q$",
    "BEGIN",
    "END",
    "INSERT INTO",
    "DELETE",
    "UPDATE",
    "SET",
    "RETURNING",
    "INTO",
    "FOR UPDATE",
    "FOR SHARE",
    "LOCK",
    "CALL",
    "pg_read_file(",
    "lo_export(",
    "pg_catalog.",
    "\"pg_sleep\"(",
    "dblink(",
    "set_config(",
    "nextval(",
    "count(",
    "lower(",
    "now()",
    "'a\\'",
    "E'\\''",
    "'it''s'",
    "--",
    "\n",
    "/*",
    "*/",
    "LATERAL",
    "JOIN",
    "ON",
    "true",
    "::text",
    "ORDER BY",
    "LIMIT",
    "NOTIFY",
    "PREPARE",
    "EXECUTE",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The `query sql` statement check on strung-together SQL: never a panic, and what it
    /// accepts passes an independent second look (the fuzz target `sql_guard` in short).
    #[test]
    fn the_statement_check_accepts_only_queries(
        pieces in proptest::collection::vec(proptest::sample::select(SQL_PIECES), 1..14),
    ) {
        use hydra_bottleneck::query::guard;
        let sql = pieces.join(" ");
        if guard::check(&sql).is_ok() {
            prop_assert_eq!(guard::accepted_is_a_query(&sql), Ok(()), "{}", sql);
        }
    }
}

/// A `/metrics` text with one of everything the parser reads: HELP and TYPE lines, labels with
/// every escape, NaN and the infinities, a timestamp, a histogram, a summary, and the Rust queue
/// runner's names, so that it also reads as a status.
const METRICS: &str = r#"# HELP hydraqueuerunner_steps_runnable Steps \\ ready\nto run.
# TYPE hydraqueuerunner_steps_runnable gauge
hydraqueuerunner_steps_runnable 42
# TYPE hydraqueuerunner_machine_type_runnable gauge
hydraqueuerunner_machine_type_runnable{machine_type="x86_64-linux"} 38
hydraqueuerunner_machine_type_runnable{machine_type="a\\b\"c\nd"} 4 1780315200000
# TYPE hydraqueuerunner_machine_type_running gauge
hydraqueuerunner_machine_type_running{machine_type="x86_64-linux"} 8
# TYPE hydraqueuerunner_machine_current_jobs gauge
hydraqueuerunner_machine_current_jobs{hostname="builder-a",} 8
hydraqueuerunner_machine_current_jobs { hostname = "builder-b" } 2
# TYPE hydraqueuerunner_s3_put_speed gauge
hydraqueuerunner_s3_put_speed{remote_store="c"} NaN
# TYPE hydraqueuerunner_job_wait_time_seconds histogram
hydraqueuerunner_job_wait_time_seconds_bucket{machine_type="x86_64-linux",le="1"} 10
hydraqueuerunner_job_wait_time_seconds_bucket{machine_type="x86_64-linux",le="+Inf"} 12
hydraqueuerunner_job_wait_time_seconds_sum{machine_type="x86_64-linux"} 1.5e+03
hydraqueuerunner_job_wait_time_seconds_count{machine_type="x86_64-linux"} 12
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.1e-05
go_gc_duration_seconds{quantile="1"} +Inf
go_gc_duration_seconds_sum -Inf
go_gc_duration_seconds_count 412
untyped_thing 1
"#;

/// Any text: an exposition whose rendering reads back as itself (and, when it is a queue
/// runner's, a status whose kept part reads back as the same status but for the jobsets), or one
/// error naming a line of the text, in one line.
fn check_metrics(text: &str) -> Result<(), TestCaseError> {
    use hydra_bottleneck::status::{exporters, metrics};
    match metrics::parse(text) {
        Ok(e) => {
            let back = metrics::parse(&metrics::render(&e));
            prop_assert_eq!(back.as_ref(), Ok(&e));
            if let Ok((exp, s)) = exporters::to_status(&e, "prop") {
                let f = status::derive(&s, None);
                let _ = status::figures::rows(&f);
                let (_, exp2, s2) = status::parse_metrics(&exporters::record(&e, exp), "prop")
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(exp2, exp);
                // A series keeps everything but the jobsets, which it does not count.
                prop_assert_eq!(s2, status::Status { jobsets: 0, ..s });
            }
        }
        Err(pe) => {
            prop_assert!(
                pe.line >= 1 && pe.line <= text.split('\n').count(),
                "line {} of a text of {} lines: {}",
                pe.line,
                text.split('\n').count(),
                pe
            );
            prop_assert!(!pe.to_string().contains('\n'), "{}", pe);
        }
    }
    Ok(())
}

/// Pieces of the text format, strung into lines that are nearly right.
const METRIC_PIECES: &[&str] = &[
    "# HELP ",
    "# TYPE ",
    "#",
    "x",
    "x_bucket",
    "x_sum",
    "x_count",
    "hydraqueuerunner_steps_runnable",
    "hydra_queue_runner_machine_type_runnable",
    " counter",
    " gauge",
    " histogram",
    " summary",
    " untyped",
    "{",
    "}",
    "le=\"",
    "quantile=\"",
    "machine_type=\"",
    "host=\"",
    "\"",
    ",",
    "=",
    "+Inf",
    "-Inf",
    "NaN",
    "0.5",
    "1",
    "1e999",
    "-3",
    " ",
    "\t",
    "\\",
    "\\n",
    "\\\"",
    "\r",
    "é",
    " 1700000000000",
];

/// A well-formed family of counters, gauges or untyped samples: a unique name, unique label
/// sets, any value (NaN and the infinities included) and timestamp, help with escapes.
fn family(i: usize) -> impl Strategy<Value = hydra_bottleneck::status::metrics::Family> {
    use hydra_bottleneck::status::metrics::{Family, Kind, Sample, Suffix};
    let value = prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (-1e6..1e6f64),
    ];
    let sample = (
        prop::collection::vec(("l[a-zA-Z0-9_]{0,4}", "(?s).{0,10}"), 0..4),
        value,
        prop::option::of(any::<i64>()),
    );
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,8}",
        prop::sample::select(vec![Kind::Counter, Kind::Gauge, Kind::Untyped]),
        prop::option::of("[a-zA-Z0-9\\\\\n\"{}#= é€]{0,20}"),
        prop::collection::vec(sample, 0..5),
    )
        .prop_map(move |(name, kind, help, samples)| Family {
            name: format!("{name}_{i}"),
            kind,
            help: help.map(|h| h.trim_matches([' ', '\t']).to_string()),
            samples: samples
                .into_iter()
                .enumerate()
                .map(|(k, (labels, value, timestamp_ms))| {
                    let mut seen = std::collections::HashSet::new();
                    let mut labels: Vec<(String, String)> = labels
                        .into_iter()
                        .filter(|(n, _)| seen.insert(n.clone()))
                        .collect();
                    // A label of its own index keeps every sample's series apart.
                    labels.push(("i".into(), k.to_string()));
                    Sample {
                        suffix: Suffix::None,
                        labels,
                        value,
                        timestamp_ms,
                        line: 0,
                    }
                })
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The `/metrics` parser on any text (the fuzz target `metrics_text` in short).
    #[test]
    fn metrics_texts_parse_or_fail_cleanly(text in "(?s).{0,300}") {
        check_metrics(&text)?;
    }

    #[test]
    fn nearly_right_metrics_parse_or_fail_cleanly(
        lines in prop::collection::vec(
            prop::collection::vec(prop::sample::select(METRIC_PIECES), 0..10),
            0..8,
        ),
        final_newline in any::<bool>(),
    ) {
        let mut text = lines.iter().map(|l| l.concat()).collect::<Vec<_>>().join("\n");
        if final_newline {
            text.push('\n');
        }
        check_metrics(&text)?;
    }

    #[test]
    fn mutated_metrics_parse_or_fail_cleanly(edits in prop::collection::vec(edit(), 1..6)) {
        let bytes = apply(METRICS.as_bytes().to_vec(), &edits);
        check_metrics(&String::from_utf8_lossy(&bytes))?;
    }

    /// Our rendering of any well-formed exposition reads back as the same exposition.
    #[test]
    fn metrics_round_trip_through_our_rendering(
        families in (0..6usize).prop_flat_map(|n| (0..n).map(family).collect::<Vec<_>>())
    ) {
        use hydra_bottleneck::status::metrics;
        let e = metrics::Exposition { families };
        let text = metrics::render(&e);
        prop_assert_eq!(metrics::parse(&text), Ok(e), "{}", text);
    }
}

#[test]
fn the_metrics_seed_parses_and_reads_as_a_status() {
    let s = status::parse_body(METRICS, None, "seed").unwrap();
    assert_eq!(s.runnable_steps, Some(42.0));
    assert_eq!(s.machines.len(), 2);
}
