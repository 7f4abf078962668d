//! The runner's series read from a Prometheus server (`status::prometheus`, `--prometheus`): a
//! loopback server that evaluates the range queries over series it holds
//! (`support::prometheus`), serving the built-in sample's series or a small synthetic one under
//! either exporter's names. What is read must be what was served: whole across pieces, summed
//! over scrape targets, runnable less running under the Rust runner's names; credentials sent
//! and never shown; a passing 503 retried; an absent family said in one line.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hydra_bottleneck::sample::{self, SampleSpec};
use hydra_bottleneck::status::exporters::Exporter;
use hydra_bottleneck::status::prometheus::{self, Auth, ENV_TOKEN, Options};
use hydra_bottleneck::status::timeline::{Stage, Timeline};
use support::http::{Response, serve};
use support::prometheus::Prom;
use support::{assert_one_line_error, hb, stderr};

/// The built-in sample's runner series: a week every 30 s (20,160 points, two pieces).
fn sample_tl() -> &'static Timeline {
    static TL: OnceLock<Timeline> = OnceLock::new();
    TL.get_or_init(|| {
        sample::generate(&SampleSpec::default())
            .expect("sample")
            .timeline
            .expect("the sample carries its runner's series")
    })
}

/// A small series: 200 points every 30 s, two machine types, two machines, every stage; machine
/// `b2` missed its scrapes for ten minutes (points 100 to 119); `b1` was disabled for five
/// (points 50 to 59).
fn small_tl() -> Timeline {
    let step = 30;
    let t0 = 1_764_892_800; // 2025-12-05 00:00 UTC, a multiple of the step
    let n = 200;
    let times: Vec<i64> = (0..n).map(|i| t0 + i as i64 * step).collect();
    let f = |a: usize, b: usize| -> Vec<f64> { (0..n).map(|i| ((i * a + b) % 7) as f64).collect() };
    let mut tl = Timeline {
        source: "served".into(),
        naming: String::new(),
        step_s: step,
        times,
        ..Timeline::default()
    };
    tl.runnable.insert("x86_64-linux".into(), f(3, 1));
    tl.runnable
        .insert("aarch64-linux:big-parallel".into(), f(5, 2));
    tl.running.insert("x86_64-linux".into(), f(2, 3));
    tl.running
        .insert("aarch64-linux:big-parallel".into(), f(1, 0));
    tl.current_jobs.insert("b1".into(), f(4, 4));
    let mut b2 = f(6, 5);
    for v in &mut b2[100..120] {
        *v = f64::NAN;
    }
    tl.current_jobs.insert("b2".into(), b2);
    // b1 disabled after failures for five minutes.
    let mut off = vec![0.0; n];
    off[50..60].fill(1.0);
    tl.disabled.insert("b1".into(), off);
    for (k, s) in Stage::ALL.into_iter().enumerate() {
        tl.stages.insert(s, f(k + 1, k));
    }
    tl
}

/// The window a timeline covers.
fn window(tl: &Timeline) -> (i64, i64) {
    tl.span().unwrap()
}

fn opts(url: &str, tl: &Timeline) -> Options {
    let mut o = Options::new(url, window(tl));
    o.step_s = tl.step_s;
    // A retry here waits milliseconds, not the seconds a real server is given.
    o.backoff = Duration::from_millis(5);
    o
}

/// `a == b` where NaN equals NaN.
fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

fn same_family(
    got: &std::collections::BTreeMap<String, Vec<f64>>,
    want: &std::collections::BTreeMap<String, Vec<f64>>,
    scale: f64,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, w) in want {
        let w: Vec<f64> = w.iter().map(|v| v * scale).collect();
        assert!(same(&got[k], &w), "{k} differs");
    }
}

/// The query of each request, decoded.
fn queries(s: &support::http::Server) -> Vec<String> {
    s.requests()
        .iter()
        .map(|r| {
            let q = r
                .target
                .split("query=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap();
            let mut out = Vec::new();
            let b = q.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    out.push(u8::from_str_radix(&q[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(if b[i] == b'+' { b' ' } else { b[i] });
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        })
        .collect()
}

#[test]
fn a_window_of_several_pieces_is_read_whole() {
    let tl = sample_tl();
    assert!(tl.len() > prometheus::MAX_POINTS, "{} points", tl.len());
    let prom = Arc::new(Prom::of_timeline(
        tl,
        Exporter::HydraExporter,
        &["hydra:9198"],
    ));
    let p = prom.clone();
    let server = serve(move |r| p.answer(r));
    let got = prometheus::fetch(&opts(&server.url(), tl)).unwrap();

    assert_eq!(got.exporter, Exporter::HydraExporter);
    assert_eq!(got.timeline.times, tl.times);
    same_family(&got.timeline.runnable, &tl.runnable, 1.0);
    same_family(&got.timeline.current_jobs, &tl.current_jobs, 1.0);
    // Disabled machines, from their disabled-until times.
    same_family(&got.timeline.disabled, &tl.disabled, 1.0);
    assert!(
        tl.disabled.values().flatten().any(|v| *v > 0.0),
        "the sample disables a machine at some point"
    );
    for (stage, v) in &got.timeline.stages {
        assert!(same(v, &tl.stages[stage]), "{stage:?}");
    }
    // hydra_exporter has no download-slot stage: not asked, so not absent either.
    assert_eq!(got.timeline.stages.len(), 4);
    assert!(got.stages_absent.is_empty());
    // Two pieces for each of: the Rust runner's runnable (tried first, absent), hydra_exporter's
    // runnable, current jobs, disabled-until and four stages; each piece within Prometheus' bound (the server
    // refuses more), and the pieces meet without a gap or an overlap.
    let pieces = tl.len().div_ceil(prometheus::MAX_POINTS);
    assert_eq!(pieces, 2);
    assert_eq!(got.requests, 8 * pieces);
    assert_eq!(server.count(), 8 * pieces);
    let starts: std::collections::BTreeSet<String> = server
        .requests()
        .iter()
        .map(|r| {
            r.target
                .split("start=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(starts.len(), 2);
    assert!(starts.contains(&(tl.times[0]).to_string()));
    assert!(starts.contains(&(tl.times[prometheus::MAX_POINTS]).to_string()));
}

#[test]
fn the_server_refuses_a_range_past_11000_steps_as_prometheus_does() {
    let tl = small_tl();
    let prom = Prom::of_timeline(&tl, Exporter::HydraExporter, &["a"]);
    let server = serve(move |r| prom.answer(r));
    let url = |end: i64| {
        format!(
            "{}/api/v1/query_range?query=sum(hydra_queue_runner_steps_building)&start=0&end={end}&step=1",
            server.url()
        )
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let ok = agent.get(&url(11_000)).call().unwrap();
    assert_eq!(ok.status(), 200);
    let mut refused = agent.get(&url(11_001)).call().unwrap();
    assert_eq!(refused.status(), 400);
    let body = refused.body_mut().read_to_string().unwrap();
    assert!(body.contains(r#""errorType":"bad_data""#), "{body}");
    assert!(
        body.contains("exceeded maximum resolution of 11,000 points"),
        "{body}"
    );
}

#[test]
fn a_runner_scraped_twice_is_summed_by_the_query() {
    let tl = small_tl();
    let prom = Prom::of_timeline(&tl, Exporter::HydraExporter, &["a:9198", "b:9198"]);
    let server = serve(move |r| prom.answer(r));
    let got = prometheus::fetch(&opts(&server.url(), &tl)).unwrap();
    // One series per machine type and machine, not one per scrape target: `sum by` merged the
    // two instances, and so counted each value twice.
    same_family(&got.timeline.runnable, &tl.runnable, 2.0);
    assert_eq!(
        got.timeline.current_jobs["b1"][7],
        2.0 * tl.current_jobs["b1"][7]
    );
    assert_eq!(
        got.timeline.stages[&Stage::Building][3],
        2.0 * tl.stages[&Stage::Building][3]
    );
    // A time is not summed: the machine is disabled exactly where it was.
    same_family(&got.timeline.disabled, &tl.disabled, 1.0);
    let q = queries(&server);
    assert!(
        q.contains(&"sum by (machineType) (hydra_queue_runner_machine_type_runnable)".into()),
        "{q:?}"
    );
    assert!(q.contains(&"sum by (host) (hydra_queue_runner_machine_current_jobs)".into()));
    assert!(q.contains(&"max by (host) (hydra_queue_runner_machine_disabled_until)".into()));
    assert!(q.contains(&"sum(hydra_queue_runner_steps_waiting)".into()));
}

#[test]
fn a_gap_shorter_than_the_lookback_is_filled_and_a_longer_one_stays_missing() {
    let tl = small_tl();
    let prom = Prom::of_timeline(&tl, Exporter::HydraExporter, &["a"]);
    let server = serve(move |r| prom.answer(r));
    let got = prometheus::fetch(&opts(&server.url(), &tl)).unwrap();
    let b2 = &got.timeline.current_jobs["b2"];
    let served = &tl.current_jobs["b2"];
    // Prometheus' five-minute lookback: points 100..=109 take the sample of point 99.
    for (i, v) in b2.iter().enumerate().take(110).skip(100) {
        assert_eq!(*v, served[99], "point {i}");
    }
    assert!(b2[110..120].iter().all(|v| v.is_nan()));
    assert_eq!(b2[120], served[120]);
}

#[test]
fn the_rust_runners_names_give_runnable_less_running() {
    let tl = small_tl();
    let prom = Prom::of_timeline(&tl, Exporter::RustRunner, &["queue-runner:8080"]);
    let server = serve(move |r| prom.answer(r));
    let got = prometheus::fetch(&opts(&server.url(), &tl)).unwrap();
    assert_eq!(got.exporter, Exporter::RustRunner);
    assert_eq!(got.timeline.naming, "hydraqueuerunner");
    // Served: waiting + running; read: waiting again.
    same_family(&got.timeline.runnable, &tl.runnable, 1.0);
    same_family(
        &got.timeline.current_jobs,
        &{
            let mut c = tl.current_jobs.clone();
            // The lookback fills the first half of b2's gap, as above.
            let v = c["b2"][99];
            c.get_mut("b2").unwrap()[100..110].fill(v);
            c
        },
        1.0,
    );
    let q = queries(&server);
    assert_eq!(
        q[0],
        "sum by (machine_type) (hydraqueuerunner_machine_type_runnable)"
    );
    assert!(q.contains(&"sum by (machine_type) (hydraqueuerunner_machine_type_running)".into()));
    assert!(q.contains(&"sum by (hostname) (hydraqueuerunner_machine_current_jobs)".into()));
    // hydra_exporter's names were never asked: the Rust runner's were found first.
    assert!(
        !q.iter().any(|x| x.contains("hydra_queue_runner_")),
        "{q:?}"
    );
}

#[test]
fn hydra_exporters_names_are_read_after_the_rust_runners_are_tried() {
    let tl = small_tl();
    let prom = Prom::of_timeline(&tl, Exporter::HydraExporter, &["a"]);
    let server = serve(move |r| prom.answer(r));
    let got = prometheus::fetch(&opts(&server.url(), &tl)).unwrap();
    assert_eq!(got.exporter, Exporter::HydraExporter);
    assert_eq!(got.timeline.naming, "hydra_queue_runner");
    same_family(&got.timeline.runnable, &tl.runnable, 1.0);
    let q = queries(&server);
    assert_eq!(
        q[0],
        "sum by (machine_type) (hydraqueuerunner_machine_type_runnable)"
    );
    assert_eq!(
        q[1],
        "sum by (machineType) (hydra_queue_runner_machine_type_runnable)"
    );
    // hydra_exporter's runnable excludes running steps: no running family is asked.
    assert!(
        !q.iter().any(|x| x.contains("machine_type_running")),
        "{q:?}"
    );
}

/// A server that wants `Authorization: Bearer <token>` and answers 401 otherwise, as a proxy in
/// front of Prometheus does.
fn guarded(tl: &Timeline, token: &'static str) -> support::http::Server {
    let prom = Prom::of_timeline(tl, Exporter::HydraExporter, &["a"]);
    serve(move |r| {
        if r.header("authorization") == Some(&format!("Bearer {token}")) {
            prom.answer(r)
        } else {
            Response::new(401, "Unauthorized").body("Unauthorized\n")
        }
    })
}

const TOKEN: &str = "s3cret-t0ken-9f2a";

#[test]
fn a_bearer_token_from_a_file_or_the_environment_is_sent() {
    let tl = small_tl();
    let server = guarded(&tl, TOKEN);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();

    let none = |_: &str| None;
    let (url, auth) = prometheus::resolve_auth(&server.url(), Some(&file), &none).unwrap();
    let mut o = opts(&url, &tl);
    o.auth = auth;
    prometheus::fetch(&o).unwrap();

    let env = |k: &str| (k == ENV_TOKEN).then(|| TOKEN.to_string());
    let (url, auth) = prometheus::resolve_auth(&server.url(), None, &env).unwrap();
    assert_eq!(auth, Auth::Bearer(TOKEN.into()));
    let mut o = opts(&url, &tl);
    o.auth = auth;
    prometheus::fetch(&o).unwrap();
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
}

#[test]
fn a_refused_token_is_one_line_that_does_not_show_it() {
    let server = guarded(sample_tl(), TOKEN);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("token");
    std::fs::write(&file, "wr0ng-t0ken-77\n").unwrap();
    let o = hb()
        .args([
            "analyze",
            "--quiet",
            "--prometheus",
            &server.url(),
            "--prometheus-token-file",
        ])
        .arg(&file)
        .run();
    assert_one_line_error(&o, "401 Unauthorized");
    let err = stderr(&o);
    assert!(err.contains("the credentials sent were refused"), "{err}");
    assert!(!err.contains("wr0ng-t0ken-77"), "{err}");

    // Without any: says so, and how to give one.
    let o = hb()
        .args(["analyze", "--quiet", "--prometheus", &server.url()])
        .run();
    assert_one_line_error(&o, "no credentials were sent");

    // A token in the URL's password place is sent as basic auth and never shown either.
    let url = server
        .url()
        .replace("http://", "http://reader:pa55-w0rd-x@");
    let o = hb()
        .args(["analyze", "--quiet", "--prometheus", &url])
        .run();
    assert_one_line_error(&o, "401");
    assert!(!stderr(&o).contains("pa55-w0rd-x"), "{}", stderr(&o));
}

#[test]
fn a_503_is_tried_again_and_a_lasting_one_is_reported() {
    let tl = small_tl();
    let prom = Prom::of_timeline(&tl, Exporter::HydraExporter, &["a"]);
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    let server = serve(move |r| {
        if s2.fetch_add(1, Ordering::SeqCst) == 0 {
            Response::new(503, "Service Unavailable").body("restarting\n")
        } else {
            prom.answer(r)
        }
    });
    let got = prometheus::fetch(&opts(&server.url(), &tl)).unwrap();
    same_family(&got.timeline.runnable, &tl.runnable, 1.0);
    // One request more than the read made: the first, answered 503, was sent again.
    assert_eq!(server.count(), got.requests + 1);

    let down = serve(|_| Response::new(503, "Service Unavailable"));
    let e = prometheus::fetch(&opts(&down.url(), &tl))
        .unwrap_err()
        .to_string();
    assert!(e.contains("503") && e.contains("after 5 tries"), "{e}");
    assert_eq!(down.count(), prometheus::MAX_TRIES as usize);
}

#[test]
fn an_absent_family_is_said_in_one_line() {
    let tl = small_tl();
    // A stage counter absent: read without it, and said.
    let prom = Prom::of_timeline(&tl, Exporter::HydraExporter, &["a"])
        .without("hydra_queue_runner_steps_waiting");
    let server = serve(move |r| prom.answer(r));
    let got = prometheus::fetch(&opts(&server.url(), &tl)).unwrap();
    assert_eq!(got.stages_absent, [Stage::WaitingSendLock]);
    assert!(!got.timeline.stages.contains_key(&Stage::WaitingSendLock));

    // Current jobs absent: an error naming the family and the exporter.
    let prom = Prom::of_timeline(&tl, Exporter::HydraExporter, &["a"])
        .without("hydra_queue_runner_machine_current_jobs");
    let server = serve(move |r| prom.answer(r));
    let e = prometheus::fetch(&opts(&server.url(), &tl))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no series of hydra_queue_runner_machine_current_jobs")
            && e.contains("hydra_exporter"),
        "{e}"
    );

    // Nothing of either exporter: which were expected, which names were tried.
    let server = serve(|r| Prom::default().answer(r));
    let e = prometheus::fetch(&opts(&server.url(), &tl))
        .unwrap_err()
        .to_string();
    for s in [
        "hydraqueuerunner_machine_type_runnable",
        "hydra_queue_runner_machine_type_runnable",
        "the Rust queue runner's /metrics",
        "hydra_exporter",
    ] {
        assert!(e.contains(s), "`{s}` not in: {e}");
    }
    assert_eq!(e.lines().count(), 1);
}

/// `report` on the built-in sample with its series from Prometheus: the ledger's held slots
/// come from the series read, said in the report and in the notes.
#[test]
fn a_report_on_the_sample_takes_held_slots_from_prometheus() {
    let tl = sample_tl();
    let prom = Prom::of_timeline(tl, Exporter::HydraExporter, &["hydra:9198"])
        .without("hydra_queue_runner_steps_copying_from");
    let server = serve(move |r| prom.answer(r));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let o = hb()
        .args([
            "report",
            "--no-compression",
            "--no-simulation",
            "--no-png",
            "--prometheus",
            &server.url(),
            "--out",
        ])
        .arg(&out)
        .run();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let url = server.url();
    // One note of what was read, one of the family the server lacked.
    let note = err
        .lines()
        .find(|l| l.starts_with("runner's series: Prometheus at"))
        .unwrap_or_else(|| panic!("no note of the series: {err}"));
    for s in [
        url.as_str(),
        "hydra_exporter",
        "step 30 s (the default",
        "2 piece(s)",
        "20160 of 20160 points",
        "(100 %)",
        "replaces the series the data came with",
    ] {
        assert!(note.contains(s), "`{s}` not in: {note}");
    }
    assert!(
        err.contains("no series of `hydra_queue_runner_steps_copying_from`"),
        "{err}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let held = format!(
        "measured: the runner's stage counters (Prometheus at {url}, query\\_range step 30 s)"
    );
    assert!(md.contains(&held), "{held} not in the report:\n{md}");
    assert!(server.count() >= 12);
}

#[test]
fn prometheus_and_a_watch_file_are_one_or_the_other() {
    let o = hb()
        .args([
            "analyze",
            "--prometheus",
            "http://127.0.0.1:1",
            "--runner-series",
            "series.jsonl",
        ])
        .run();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("--prometheus <URL>") && err.contains("cannot be used with"),
        "{err}"
    );
    let o = hb().args(["analyze", "--prometheus-step", "60"]).run();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// `snapshot --prometheus`: the series read is what the snapshot keeps, and what a later
/// offline read gives back.
#[test]
fn a_snapshot_keeps_the_series_read_from_prometheus() {
    let tl = sample_tl();
    let prom = Prom::of_timeline(tl, Exporter::RustRunner, &["qr:8080"]);
    let server = serve(move |r| prom.answer(r));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap");
    let o = hb()
        .args([
            "snapshot",
            "--quiet",
            "--prometheus",
            &server.url(),
            "--out",
        ])
        .arg(&dir)
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let back = hydra_bottleneck::source::snapshot::read(&dir).unwrap();
    let got = back.timeline.expect("the snapshot keeps the series");
    assert_eq!(
        got.source,
        format!("Prometheus at {}, query_range step 30 s", server.url())
    );
    assert_eq!(got.naming, "hydraqueuerunner");
    assert_eq!(got.times, tl.times);
    same_family(&got.runnable, &tl.runnable, 1.0);
    same_family(&got.current_jobs, &tl.current_jobs, 1.0);
}

/// `--runner-series`: a `status --watch` file, resampled onto its own grid over the window.
#[test]
fn a_watch_file_is_read_over_the_window() {
    let tl = sample_tl();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("series.jsonl");
    // Three C++ status documents, 30 s apart, at the start of the sample's week.
    let lines: Vec<String> = (0..3)
        .map(|i| {
            serde_json::json!({
                "t": tl.times[0] + 30 * i,
                "source": "http://hydra/queue-runner-status",
                "status": {
                    "status": "up",
                    "nrStepsBuilding": 5,
                    "nrStepsWaiting": 2,
                    "machineTypes": {"x86_64-linux": {"runnable": 3, "running": 5}},
                    "machines": {"ssh://b1": {"enabled": true, "currentJobs": 7}}
                }
            })
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let o = hb().arg("analyze").arg("--runner-series").arg(&file).run();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let note = err
        .lines()
        .find(|l| l.starts_with("runner's series: "))
        .unwrap_or_else(|| panic!("no note: {err}"));
    for s in [
        "status --watch samples (C++ queue runner)",
        "step 30 s (the median interval",
        "3 samples",
        "3 of 20160 points",
        "1 machine types, 1 machines",
    ] {
        assert!(note.contains(s), "`{s}` not in: {note}");
    }

    // A file whose samples all fall outside the window: one line.
    std::fs::write(
        &file,
        r#"{"t": 1000, "source": "x", "status": {"status": "up"}}"#.to_string() + "\n",
    )
    .unwrap();
    let o = hb()
        .args(["analyze", "--quiet", "--runner-series"])
        .arg(&file)
        .run();
    assert_one_line_error(&o, "no sample of the runner's series falls in the window");
}
