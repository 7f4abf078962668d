//! `status`: real published documents, a local HTTP server on loopback (including a slow one,
//! a 500, a truncated body and invalid JSON), the watch loop, and a hand-checked series.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hydra_bottleneck::status::{self, RunnerKind, series};
use support::http::{self, Response};
use support::{hb, run, signal, stderr};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/status")
        .join(name)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

// ---- the real documents ----------------------------------------------------------------------

#[test]
fn the_2018_status_from_issue_559_parses() {
    let text = std::fs::read_to_string(fixture("hydra-559-2018.json")).unwrap();
    let s = status::parse(&text, "559").unwrap();
    assert_eq!(s.runner, RunnerKind::Cpp);
    assert_eq!(s.state.as_deref(), Some("up"));
    assert_eq!(s.time, Some(1_526_485_724.0));
    assert_eq!(s.queued_builds, Some(101.0));
    assert_eq!(s.runnable_steps, Some(85.0));
    assert_eq!(s.active_steps, Some(0.0));
    assert_eq!(s.jobsets, 1);
    let f = status::derive(&s, None);
    let m = &f.machines[0];
    assert_eq!(m.name, "localhost");
    assert_eq!(m.state, "ok");
    assert_eq!(m.steps_done, Some(0.0));
    // No finished steps: the runner reports no step times, and we invent none.
    assert_eq!((m.not_building_share, m.not_building_basis), (None, "none"));
}

#[test]
fn the_2025_machines_from_issue_1477_give_the_published_figures() {
    let text = std::fs::read_to_string(fixture("hydra-1477-2025-machines.json")).unwrap();
    let s = status::parse(&text, "1477").unwrap();
    let f = status::derive(&s, None);
    let x86 = f
        .machines
        .iter()
        .find(|m| m.name.contains("elated-minsky"))
        .unwrap();
    assert_eq!(x86.steps_done, Some(40_009.0));
    assert_eq!(x86.not_building_basis, "totals");
    assert!(close(
        x86.not_building_share.unwrap(),
        1.0 - 1_319_202.0 / 2_103_510.0
    ));
    assert!(close(x86.slot_hours.unwrap(), 2_103_510.0 / 3600.0));
    assert!(close(
        x86.not_building_hours.unwrap(),
        (2_103_510.0 - 1_319_202.0) / 3600.0
    ));
    assert_eq!((x86.current_jobs, x86.max_jobs), (Some(3.0), None));
    assert_eq!(x86.state, "ok");
    let arm = f
        .machines
        .iter()
        .find(|m| m.name.contains("goofy-hopcroft"))
        .unwrap();
    assert_eq!(arm.steps_done, Some(41_019.0));
    assert_eq!(arm.not_building_basis, "averages");
    assert!(close(
        arm.not_building_share.unwrap(),
        1.0 - 45.787_048_339_843_8 / 68.811_599_731_445_3
    ));
    // Both machines together: the aarch64 builder's times rebuilt from its averages.
    let (b, t) = (
        1_319_202.0 + 45.787_048_339_843_8 * 41_019.0,
        2_103_510.0 + 68.811_599_731_445_3 * 41_019.0,
    );
    assert!(close(f.queue.not_building_share.unwrap(), 1.0 - b / t));
    // 37 % and 33 %, as quoted in docs/hydra.md §3.
    assert_eq!((x86.not_building_share.unwrap() * 100.0).round(), 37.0);
    assert_eq!((arm.not_building_share.unwrap() * 100.0).round(), 33.0);
}

#[test]
fn the_2025_figures_with_a_machines_file_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let machines = dir.path().join("machines");
    // maxJobs here are ours, for the test: the issue does not publish them.
    std::fs::write(
        &machines,
        "ssh://build@elated-minsky.builder.nixos.org x86_64-linux,i686-linux - 8 1 kvm,nixos-test,benchmark\n\
         ssh://build@goofy-hopcroft.builder.nixos.org aarch64-linux - 6 1 kvm,nixos-test\n",
    )
    .unwrap();
    let o = run(&[
        "status",
        fixture("hydra-1477-2025-machines.json").to_str().unwrap(),
        "--machines",
        machines.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ms = v["machines"].as_array().unwrap();
    let x86 = ms
        .iter()
        .find(|m| m["name"].as_str().unwrap().contains("elated"))
        .unwrap();
    assert_eq!(x86["max_jobs"], 8.0);
    assert_eq!(x86["max_jobs_from"], "machines file");
    assert_eq!(x86["free_slots"], 5.0);
    let arm = ms
        .iter()
        .find(|m| m["name"].as_str().unwrap().contains("goofy"))
        .unwrap();
    assert_eq!(arm["free_slots"], 2.0);

    // The table and CSV carry the same figures.
    let o = run(&[
        "status",
        fixture("hydra-1477-2025-machines.json").to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = String::from_utf8(o.stdout).unwrap();
    assert!(
        csv.starts_with("section,subject,figure,value,unit,note\n"),
        "{csv}"
    );
    assert!(
        csv.lines().any(|l| l
            .starts_with("machine,ssh://build@elated-minsky.builder.nixos.org,not building,37.28")),
        "{csv}"
    );
    let o = run(&[
        "status",
        fixture("hydra-1477-2025-machines.json").to_str().unwrap(),
    ]);
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(
        table.contains("not building") && table.contains("37.286"),
        "{table}"
    );
}

#[test]
fn a_rust_runner_document() {
    let text = std::fs::read_to_string(fixture("rust-runner.json")).unwrap();
    let s = status::parse(&text, "rust").unwrap();
    assert_eq!(s.runner, RunnerKind::Rust);
    let f = status::derive(&s, None);
    assert!(close(
        f.queue.not_building_share.unwrap(),
        1.0 - 288.0 / 360.0
    ));
    let a = f.machines.iter().find(|m| m.name == "builder-a").unwrap();
    assert!(close(a.not_building_share.unwrap(), 0.25));
    assert_eq!(
        (a.max_jobs, a.max_jobs_from, a.free_slots),
        (Some(8.0), "status", Some(0.0))
    );
    let b = f.machines.iter().find(|m| m.name == "builder-b").unwrap();
    assert!(
        b.state
            .starts_with("disabled until 2026-06-01 12:20:00Z after 2"),
        "{}",
        b.state
    );
    assert_eq!(b.free_slots, Some(0.0));
    let x86 = f
        .machine_types
        .iter()
        .find(|t| t.name == "x86_64-linux")
        .unwrap();
    assert_eq!(
        (x86.runnable, x86.wait_time_s, x86.free_slots),
        (Some(30.0), Some(600.0), Some(0.0))
    );
    // waitTimeMs is a counter since the runner started, which divides into nothing.
    assert_eq!(x86.wait_per_runnable_s, None);
    let arm = f
        .machine_types
        .iter()
        .find(|t| t.name == "aarch64-linux")
        .unwrap();
    assert_eq!(arm.machines, 0, "the only aarch64 builder is disabled");
    assert!(close(f.s3[0].put_speed_mib_s.unwrap(), 2048.0 / 512.0));
    assert_eq!(f.s3[0].bucket.as_deref(), Some("nix-cache"));
}

#[test]
fn stdin_and_bad_files() {
    let o = hb()
        .args(["status", "-", "--format", "json"])
        .stdin(&br#"{"nrRunnableSteps": 7.0, "machineTypes": {"x86_64-linux": {"runnable": 7, "running": 1}}}"#[..])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["queue"]["runnable_steps"], 7.0);
    assert_eq!(v["machine_types"][0]["running"], 1.0);

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"status\": \"up\", \"machines\": {").unwrap();
    let o = run(&["status", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("bad.json: not a queue-runner status") && e.contains("truncated"),
        "{e}"
    );
    let o = run(&["status", dir.path().join("missing.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing.json"), "{}", stderr(&o));
    // Neither a source, nor --watch, nor --series: a usage error.
    assert_eq!(run(&["status"]).status.code(), Some(2));

    // Absurd figures (a negative count, 5e307 ms) were printed as -1.77e301 %: each is refused
    // in one line naming the field.
    for (doc, field) in [
        (
            r#"{"status": "up", "machines": {"ssh://b1": {"maxJobs": 4, "currentJobs": -3}}}"#,
            "`machines.ssh://b1.current_jobs` is -3",
        ),
        (
            r#"{"queueRunner": {"status": "up"}, "machines": {"b2": {"stats": {"totalStepTimeMs": 5e307}}}}"#,
            "`machines.b2.total_step_time_s` is 5e304",
        ),
        (
            r#"{"status": "up", "nrQueuedBuilds": -1}"#,
            "`queued_builds` is -1",
        ),
    ] {
        let f = dir.path().join("absurd.json");
        std::fs::write(&f, doc).unwrap();
        let o = run(&["status", f.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{doc}: {}", stderr(&o));
        let e = stderr(&o);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.contains("absurd.json") && e.contains(field), "{e}");
    }
}

// ---- a status server on loopback -------------------------------------------------------------

/// A failure status, with a short body.
fn failure(code: u16, reason: &str) -> Response {
    Response::new(code, reason).body("oops\n")
}

/// `body` announced whole, but only its first half sent before the server closes.
fn truncated(body: &str) -> Response {
    Response::json(&body.as_bytes()[..body.len() / 2]).claim_length(body.len() + 1000)
}

fn doc() -> String {
    std::fs::read_to_string(fixture("hydra-559-2018.json")).unwrap()
}

fn url(server: &http::Server) -> String {
    format!("{}/queue-runner-status", server.url())
}

#[test]
fn a_status_url() {
    let body = doc();
    let server = http::serve(move |_| Response::json(body.as_str()));
    let o = run(&["status", &url(&server), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["queue"]["runnable_steps"], 85.0);
    assert_eq!(v["runner"], "cpp");
}

/// Each failure is one line on stderr, naming the URL and what went wrong, and exit code 1.
fn fails_with(reply: Response, expect: &str) {
    let server = http::serve(move |_| reply.clone());
    let started = Instant::now();
    let o = run(&["status", &url(&server), "--timeout", "1s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains(&url(&server)), "{e}");
    assert!(e.contains(expect), "expected `{expect}` in: {e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_slow_server_times_out() {
    fails_with(
        Response::json(doc()).delay(Duration::from_secs(4)),
        "no complete answer within 1 s",
    );
}

#[test]
fn a_server_error() {
    fails_with(
        failure(500, "Internal Server Error"),
        "the server answered HTTP 500 Internal Server Error",
    );
}

#[test]
fn a_truncated_body() {
    fails_with(truncated(&doc()), "truncated");
}

#[test]
fn invalid_json() {
    fails_with(
        Response::json("<html>queue runner is down</html>"),
        "not a queue-runner status: not valid JSON",
    );
}

// ---- watching --------------------------------------------------------------------------------

fn lines_of(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn watch_retries_after_each_kind_of_failure_and_keeps_every_line() {
    let body = doc();
    // 500, slow, truncated, invalid JSON, then good answers.
    let server = http::serve(move |req| match req.n {
        0 => failure(500, "Internal Server Error"),
        1 => Response::json(body.as_str()).delay(Duration::from_secs(3)),
        2 => truncated(&body),
        3 => Response::json("{\"status\": "),
        _ => Response::json(body.as_str()),
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("series.jsonl");
    // An earlier run's line is kept.
    std::fs::write(
        &out,
        "{\"t\": 1, \"source\": \"earlier\", \"error\": \"x\"}\n",
    )
    .unwrap();
    let o = run(&[
        "status",
        "--watch",
        &url(&server),
        "--out",
        out.to_str().unwrap(),
        "--interval",
        "50ms",
        "--timeout",
        "500ms",
        "--samples",
        "6",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["lines"], 6);
    assert_eq!(report["documents"], 2);
    assert_eq!(report["failed"], 4);
    assert_eq!(report["stopped_by"], "sample count");
    assert_eq!(server.count(), 6);
    let lines = lines_of(&out);
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0]["source"], "earlier");
    let errors: Vec<&str> = lines[1..5]
        .iter()
        .map(|l| l["error"].as_str().unwrap())
        .collect();
    assert!(errors[0].contains("HTTP 500"), "{errors:?}");
    assert!(
        errors[1].contains("no complete answer within 500 ms"),
        "{errors:?}"
    );
    assert!(errors[2].contains("truncated"), "{errors:?}");
    assert!(errors[3].contains("not valid JSON"), "{errors:?}");
    assert_eq!(lines[5]["status"]["nrRunnableSteps"], 85);
    // The series reads back: two documents, four failed requests, one earlier error line.
    let s = series::read(&out).unwrap();
    assert_eq!((s.samples.len(), s.errors, s.bad_lines), (2, 5, 0));
}

#[test]
fn watch_that_never_succeeds_fails_but_keeps_its_lines() {
    let server = http::serve(|_| failure(503, "Service Unavailable"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.jsonl");
    let o = run(&[
        "status",
        "--watch",
        &url(&server),
        "--out",
        out.to_str().unwrap(),
        "--interval",
        "50ms",
        "--samples",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    let last = e.lines().last().unwrap();
    assert!(
        last.contains("none of 2 requests succeeded") && last.contains("HTTP 503"),
        "{e}"
    );
    assert_eq!(lines_of(&out).len(), 2);
}

#[test]
fn watch_stops_cleanly_on_ctrl_c() {
    let body = doc();
    let server = http::serve(move |_| Response::json(body.as_str()));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.jsonl");
    let child = hb()
        .args([
            "status",
            "--watch",
            &url(&server),
            "--out",
            out.to_str().unwrap(),
            "--interval",
            "100ms",
            "--format",
            "csv",
            "--quiet",
        ])
        .spawn();
    let started = Instant::now();
    while lines_of(&out).len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no samples written"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&child, "INT");
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = String::from_utf8(o.stdout).unwrap();
    assert!(csv.trim_end().ends_with(",Ctrl-C"), "{csv}");
    let lines = lines_of(&out);
    assert!(lines.len() >= 3);
    assert!(lines.iter().all(|l| l["status"]["nrQueuedBuilds"] == 101));
}

// ---- a series, checked by hand ---------------------------------------------------------------

const MIB: f64 = 1024.0 * 1024.0;

// One argument per field of the status document a sample line holds; a struct would only
// repeat the field names.
#[allow(clippy::too_many_arguments)]
fn sample(
    t: f64,
    runnable: u32,
    running: u32,
    jobs: u32,
    done: u32,
    total: u32,
    build: u32,
    active: (u32, u32, u32),
    nar_mib: f64,
    comp_ms: f64,
) -> String {
    serde_json::json!({
        "t": t,
        "source": "hand",
        "status": {
            "status": "up",
            "time": t,
            "nrStepsDone": done,
            "nrActiveSteps": active.0,
            "nrStepsBuilding": active.1,
            "nrStepsCopyingFrom": active.2,
            "machines": {"ssh://build@a": {
                "enabled": true, "systemTypes": ["x86_64-linux"], "supportedFeatures": [],
                "mandatoryFeatures": [], "currentJobs": jobs, "nrStepsDone": done,
                "totalStepTime": total, "totalStepBuildTime": build}},
            "machineTypes": {"x86_64-linux": {"runnable": runnable, "running": running}},
            "store": {"narWriteBytes": nar_mib * MIB, "narWriteCompressionTimeMs": comp_ms}
        }
    })
    .to_string()
}

#[test]
fn a_series_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    let machines = dir.path().join("machines");
    std::fs::write(&machines, "ssh://build@a x86_64-linux - 8 1\n").unwrap();
    let text = [
        sample(0.0, 10, 4, 4, 100, 1000, 600, (4, 3, 1), 0.0, 0.0),
        sample(600.0, 0, 2, 2, 130, 1600, 1000, (2, 2, 0), 600.0, 300_000.0),
        r#"{"t": 900, "source": "hand", "error": "GET hand: timed out"}"#.to_string(),
        sample(
            1200.0,
            6,
            8,
            8,
            190,
            2800,
            1900,
            (8, 5, 3),
            1200.0,
            900_000.0,
        ),
    ]
    .join("\n");
    std::fs::write(&path, text).unwrap();

    let file = hydra_bottleneck::nix::machines::read(&machines).unwrap();
    let s = series::summarise(&series::read(&path).unwrap(), Some(&file));
    assert_eq!((s.samples, s.errors, s.span_s), (3, 1, Some(1200.0)));
    let t = &s.machine_types[0];
    // Free slots 8−4, 8−2, 8−8; idle while runnable min(10,4), min(0,6), min(6,0).
    assert!(close(t.mean_runnable, 16.0 / 3.0));
    assert_eq!(t.max_runnable, 10.0);
    assert!(close(t.mean_running.unwrap(), 14.0 / 3.0));
    assert!(close(t.mean_free_slots.unwrap(), 10.0 / 3.0));
    assert!(close(t.mean_idle_while_runnable.unwrap(), 4.0 / 3.0));
    assert!(close(t.share_runnable_and_free.unwrap(), 1.0 / 3.0));
    let stage = |n: &str| s.stages.iter().find(|x| x.stage == n).unwrap().clone();
    assert!(close(stage("active").mean, 14.0 / 3.0));
    assert_eq!(stage("active").max, 8.0);
    assert!(close(stage("building").mean, 10.0 / 3.0));
    assert!(close(stage("copying from builder").mean, 4.0 / 3.0));
    let rate = |n: &str| s.rates.iter().find(|x| x.counter == n).unwrap().value;
    assert!(close(rate("steps done"), 90.0 / 1200.0 * 3600.0)); // 270 an hour
    assert!(close(rate("NAR bytes written"), 1.0)); // 1200 MiB in 1200 s
    assert!(close(rate("compression busy"), 0.75)); // 900 s compressing in 1200 s
    let m = &s.machines[0];
    assert!(close(m.steps_per_hour.unwrap(), 270.0));
    assert!(close(m.not_building_share.unwrap(), 1.0 - 1300.0 / 1800.0));
    assert!(close(m.mean_current_jobs.unwrap(), 14.0 / 3.0));

    // The command prints the same, and without the machines file says free slots are unknown.
    let o = run(&[
        "status",
        "--series",
        path.to_str().unwrap(),
        "--machines",
        machines.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(close(
        v["machine_types"][0]["mean_free_slots"].as_f64().unwrap(),
        10.0 / 3.0
    ));
    let o = run(&[
        "status",
        "--series",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["machine_types"][0]["mean_free_slots"].is_null());
    let o = run(&["status", "--series", path.to_str().unwrap()]);
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(
        table.contains("steps done") && table.contains("270"),
        "{table}"
    );
}

// ---- /metrics: the Prometheus text of both exporters -----------------------------------------

fn metrics_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

/// The Rust runner's /metrics (tests/fixtures/status/rust-runner-metrics.prom, written from
/// NixOS/hydra state/metrics.rs `PromMetrics::new`): every figure the mapping reads, by hand.
#[test]
fn the_rust_runners_metrics() {
    let text = metrics_fixture("rust-runner-metrics.prom");
    let e = status::metrics::parse(&text).unwrap();
    assert_eq!(
        e.families.len(),
        96 + 7,
        "96 registered families and 7 of the process"
    );
    assert_eq!(e.samples(), 183, "every line not a comment");
    let s = status::parse_body(&text, None, "fixture").unwrap();
    assert_eq!(s.runner, RunnerKind::Rust);
    assert_eq!((s.time, s.uptime_s), (Some(1_780_315_200.0), Some(7200.0)));
    assert_eq!(
        (s.queued_builds, s.unfinished_steps, s.runnable_steps),
        (Some(1200.0), Some(5400.0), Some(42.0))
    );
    assert_eq!(
        (s.steps_building, s.steps_waiting, s.unsupported_steps),
        (Some(10.0), Some(30.0), Some(1.0))
    );
    assert_eq!(
        (s.steps_copying_to, s.steps_copying_from),
        (Some(3.0), Some(1.0))
    );
    // The Rust runner has neither an active-step count nor local worker slots.
    assert_eq!(
        (s.active_steps, s.steps_waiting_for_local_slot),
        (None, None)
    );
    assert_eq!(
        (s.builds_done, s.steps_started, s.steps_done),
        (Some(800.0), Some(3010.0), Some(3000.0))
    );
    assert_eq!((s.retries, s.max_retries), (Some(4.0), Some(2.0)));
    assert_eq!(
        (s.total_step_time_s, s.total_step_build_time_s),
        (Some(360_000.0), Some(288_000.0))
    );
    assert_eq!(
        (s.queue_wakeups, s.dispatcher_wakeups, s.dispatch_time_ms),
        (Some(55.0), Some(900.0), Some(45_000.0))
    );
    assert_eq!((s.bytes_sent, s.bytes_received), (None, None));
    assert_eq!(s.jobsets, 2);

    let a = &s.machines[0];
    assert_eq!(a.name, "builder-a");
    assert_eq!((a.current_jobs, a.steps_done), (Some(8.0), Some(2000.0)));
    assert_eq!(
        (a.total_step_time_s, a.total_step_build_time_s),
        (Some(240_000.0), Some(180_000.0))
    );
    assert_eq!((a.max_jobs, a.enabled), (None, None), "not in the metrics");
    let b = &s.machines[1];
    assert_eq!(
        (b.current_jobs, b.consecutive_failures),
        (Some(2.0), Some(2.0))
    );

    // machine_type_runnable counts the running steps too: runnable is the rest.
    let arm = &s.machine_types[0];
    assert_eq!(arm.name, "aarch64-linux");
    assert_eq!(
        (
            arm.runnable,
            arm.running,
            arm.waiting,
            arm.disabled,
            arm.wait_time_s
        ),
        (Some(2.0), Some(2.0), Some(0.0), Some(2.0), Some(20.0))
    );
    let x86 = &s.machine_types[1];
    assert_eq!(
        (
            x86.runnable,
            x86.running,
            x86.waiting,
            x86.disabled,
            x86.wait_time_s
        ),
        (Some(30.0), Some(8.0), Some(30.0), Some(0.0), Some(600.0))
    );

    let store = s.store.as_ref().unwrap();
    assert_eq!(store.nar_write_bytes, Some(3_145_728_000.0));
    assert_eq!(store.nar_write_compression_time_ms, Some(600_000.0));
    assert_eq!(store.nar_compression_savings, Some(0.75));
    assert_eq!(s.s3.len(), 1);
    assert_eq!(s.s3[0].bucket.as_deref(), Some("nix-cache"));
    assert_eq!(
        (
            s.s3[0].put_bytes,
            s.s3[0].put_time_ms,
            s.s3[0].cost_dollar_approx
        ),
        (Some(2_147_483_648.0), Some(512_000.0), Some(0.0052))
    );

    // With a machines file for maxJobs and systems, the free slots and the dispatch loss now.
    let file = hydra_bottleneck::nix::machines::parse(
        "ssh://builder-a x86_64-linux - 8 1\nssh://builder-b aarch64-linux - 4 1\n",
    )
    .unwrap();
    let f = status::derive(&s, Some(&file));
    let t = |n: &str| f.machine_types.iter().find(|t| t.name == n).unwrap();
    assert_eq!(
        (
            t("x86_64-linux").free_slots,
            t("x86_64-linux").idle_while_runnable
        ),
        (Some(0.0), Some(0.0))
    );
    assert_eq!(
        (
            t("aarch64-linux").free_slots,
            t("aarch64-linux").idle_while_runnable
        ),
        (Some(2.0), Some(2.0))
    );
    assert!(close(
        f.queue.not_building_share.unwrap(),
        1.0 - 288.0 / 360.0
    ));
}

/// hydra_exporter before the C++ runner (tests/fixtures/status/hydra-exporter.prom, written from
/// its collector/queue_runner.go): the same figures as the runner's own document, where the
/// published document has them.
#[test]
fn hydra_exporters_metrics() {
    let text = metrics_fixture("hydra-exporter.prom");
    let s = status::parse_body(&text, None, "fixture").unwrap();
    assert_eq!(s.runner, RunnerKind::Cpp);
    assert_eq!(
        (s.time, s.uptime_s),
        (Some(1_744_531_200.0), Some(3_898_523.0))
    );
    assert_eq!(
        (
            s.queued_builds,
            s.unfinished_steps,
            s.runnable_steps,
            s.active_steps
        ),
        (Some(27_481.0), Some(102_548.0), Some(5160.0), Some(268.0))
    );
    assert_eq!(
        (s.steps_building, s.steps_copying_to, s.steps_copying_from),
        (Some(199.0), Some(41.0), Some(12.0))
    );
    assert_eq!(
        (s.bytes_sent, s.bytes_received),
        (Some(5.43187e12), Some(2.1904e13))
    );
    assert_eq!(
        (s.total_step_time_s, s.total_step_build_time_s),
        (Some(654_321_098.0), Some(412_345_678.0))
    );
    assert_eq!(s.dispatch_time_ms, Some(123_456_789.0));
    assert_eq!(s.jobsets, 2);
    assert_eq!(s.machine_types.len(), 4);
    let kvm = s
        .machine_types
        .iter()
        .find(|t| t.name == "x86_64-linux:kvm,nixos-test")
        .unwrap();
    assert_eq!(
        (kvm.runnable, kvm.running, kvm.wait_time_s),
        (Some(48.0), Some(15.0), Some(600_000.0))
    );
    assert_eq!((kvm.waiting, kvm.disabled), (None, None));
    let store = s.store.as_ref().unwrap();
    assert_eq!(store.nar_write_compression_time_ms, Some(987_654_321.0));
    assert!(s.s3.is_empty(), "all-zero S3 figures are not reported ones");

    // The machines block of hydra.nixos.org's document (issue #1477) and the exporter's series
    // of the same machines give the same figures.
    let doc = status::parse(
        &std::fs::read_to_string(fixture("hydra-1477-2025-machines.json")).unwrap(),
        "1477",
    )
    .unwrap();
    let (from_doc, from_metrics) = (status::derive(&doc, None), status::derive(&s, None));
    let m = |f: &status::Figures, n: &str| {
        f.machines
            .iter()
            .find(|m| m.name.contains(n))
            .unwrap()
            .clone()
    };
    for name in ["elated-minsky", "goofy-hopcroft"] {
        let (d, x) = (m(&from_doc, name), m(&from_metrics, name));
        assert_eq!(
            (d.steps_done, d.current_jobs),
            (x.steps_done, x.current_jobs)
        );
        assert_eq!(d.state, x.state);
        // goofy-hopcroft's total step time is cut off in the published copy: the fixture has
        // avgStepTime × nrStepsDone, rounded to the second.
        assert!(
            (d.not_building_share.unwrap() - x.not_building_share.unwrap()).abs() < 1e-6,
            "{name}"
        );
    }
    let sleepy = m(&from_metrics, "sleepy-noether");
    assert_eq!(sleepy.state, "disabled");
    assert_eq!(sleepy.consecutive_failures, Some(3.0));
}

/// A scraped file, stdin and the table: the command reads a /metrics text as it reads a document.
#[test]
fn status_of_a_scraped_file() {
    let o = run(&[
        "status",
        fixture("rust-runner-metrics.prom").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["runner"], "rust");
    assert_eq!(v["queue"]["runnable_steps"], 42.0);
    assert_eq!(v["machine_types"][1]["waiting"], 30.0);
    let o = hb()
        .args(["status", "-", "--format", "csv"])
        .stdin(metrics_fixture("hydra-exporter.prom").as_bytes())
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = String::from_utf8(o.stdout).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("machine type,x86_64-linux,runnable,4300,")),
        "{csv}"
    );
}

/// Bad /metrics input: one line naming the source and the line, exit 1, no panic.
#[test]
fn bad_metrics_are_one_line_with_the_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let good = metrics_fixture("rust-runner-metrics.prom");
    let at = 1 + good
        .lines()
        .position(|l| l == "hydraqueuerunner_steps_building 10")
        .unwrap();
    let not_a_number = format!("Prometheus text, line {at}: \"ten\" is not a number");
    let cases: Vec<(String, &str)> = vec![
        (
            good.replace(
                "hydraqueuerunner_steps_building 10",
                "hydraqueuerunner_steps_building ten",
            ),
            &not_a_number,
        ),
        (
            good.trim_end().to_string(),
            "the last line does not end with a line feed",
        ),
        (
            good.replace(
                "machine_type=\"x86_64-linux\"} 38",
                "machine_type=\"x86_64-linux} 38",
            ),
            "is not closed",
        ),
        (
            "# TYPE go_goroutines gauge\ngo_goroutines 7\n".to_string(),
            "expected the Rust queue runner's /metrics (hydraqueuerunner_*)",
        ),
    ];
    for (text, needle) in cases {
        let path = dir.path().join("m.prom");
        std::fs::write(&path, &text).unwrap();
        let o = run(&["status", path.to_str().unwrap()]);
        support::assert_one_line_error(&o, needle);
        assert!(
            stderr(&o).contains("m.prom: not a queue-runner status"),
            "{}",
            stderr(&o)
        );
    }
}

/// The loopback server answering as the Rust runner's /metrics does: a farm of 40 machines and
/// 10 machine types, read over HTTP once.
#[test]
fn a_metrics_url() {
    use support::metrics::Farm;
    let farm = Farm::LARGE;
    let body = farm.body(0);
    let server = http::serve(move |req| match req.path.as_str() {
        "/metrics" => Response::metrics(body.as_str()),
        _ => Response::not_found(),
    });
    let dir = tempfile::tempdir().unwrap();
    let machines = dir.path().join("machines");
    std::fs::write(&machines, farm.machines_file()).unwrap();
    let url = format!("{}/metrics", server.url());
    let o = run(&[
        "status",
        &url,
        "--machines",
        machines.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["runner"], "rust");
    let ms = v["machines"].as_array().unwrap();
    assert_eq!(ms.len(), 40);
    assert!(ms.iter().all(|m| m["max_jobs_from"] == "machines file"));
    let types = v["machine_types"].as_array().unwrap();
    assert_eq!(types.len(), 10);
    for t in types {
        let name = t["name"].as_str().unwrap();
        let j = (0..10).find(|&j| Farm::system(j) == name).unwrap();
        assert_eq!(t["runnable"], Farm::waiting(j) as f64, "{name}");
        assert_eq!(t["running"], Farm::running(j) as f64, "{name}");
        // Four machines per type, 8 slots each, minus their current jobs.
        let free: u64 = (0..40)
            .filter(|i| i % 10 == j)
            .map(|i| 8 - Farm::current_jobs(i))
            .sum();
        assert_eq!(t["free_slots"], free as f64, "{name}");
        assert_eq!(
            t["idle_while_runnable"],
            free.min(Farm::waiting(j)) as f64,
            "{name}"
        );
    }
    // Served without a Content-Type, the text is known by its first line.
    let plain = Farm::LARGE.body(0);
    let server = http::serve(move |_| Response::ok(plain.as_str()));
    let o = run(&["status", &server.url(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // OpenMetrics is refused in one line rather than half read.
    let server = http::serve(|_| {
        Response::ok("# TYPE a counter\na_total 1\n# EOF\n").header(
            "Content-Type",
            "application/openmetrics-text; version=1.0.0",
        )
    });
    let o = run(&["status", &server.url()]);
    support::assert_one_line_error(&o, "OpenMetrics, which is not read");
}

/// `status --watch` on a /metrics URL: each answer becomes a line holding the families read, a
/// failure and a bad text become error lines, and `--series` summarises it as it does documents.
#[test]
fn watch_a_metrics_url_and_summarise_it() {
    use support::metrics::Farm;
    let farm = Farm {
        machines: 4,
        types: 2,
        jobsets: 3,
    };
    let server = http::serve(move |req| match req.n {
        1 => failure(500, "Internal Server Error"),
        2 => Response::metrics("hydraqueuerunner_steps_runnable 4\nhydraqueuerunner_x{"),
        n => Response::metrics(farm.body(n as u64)),
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.jsonl");
    let o = run(&[
        "status",
        "--watch",
        &format!("{}/metrics", server.url()),
        "--out",
        out.to_str().unwrap(),
        "--interval",
        "50ms",
        "--samples",
        "5",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (report["documents"].clone(), report["failed"].clone()),
        (3.into(), 2.into())
    );
    let lines = lines_of(&out);
    assert_eq!(lines.len(), 5);
    let kept = lines[0]["metrics"].as_str().unwrap();
    assert!(lines[0]["status"].is_null());
    // Only the families the mapping reads are kept: no histograms, no process metrics.
    assert!(
        kept.contains("hydraqueuerunner_machine_type_runnable{machine_type=\"x86_64-linux\"} 1\n")
    );
    assert!(!kept.contains("process_") && !kept.contains("_bucket") && !kept.contains("# HELP"));
    assert!(kept.len() * 3 < farm.body(0).len(), "{}", kept.len());
    assert!(lines[1]["error"].as_str().unwrap().contains("HTTP 500"));
    let bad = lines[2]["error"].as_str().unwrap();
    assert!(bad.contains("Prometheus text, line 2"), "{bad}");

    let s = series::read(&out).unwrap();
    assert_eq!((s.samples.len(), s.errors, s.bad_lines), (3, 2, 0));
    let machines = dir.path().join("machines");
    std::fs::write(&machines, farm.machines_file()).unwrap();
    let file = hydra_bottleneck::nix::machines::read(&machines).unwrap();
    let sum = series::summarise(&s, Some(&file));
    let x86 = sum
        .machine_types
        .iter()
        .find(|t| t.name == "x86_64-linux")
        .unwrap();
    // Type 0: nothing waiting; machines 0 and 2 build it with 8 − 0 and 8 − 2 slots free.
    assert_eq!(x86.mean_runnable, 0.0);
    assert_eq!(x86.mean_free_slots, Some(14.0));
    assert_eq!(x86.mean_idle_while_runnable, Some(0.0));
    let arm = sum
        .machine_types
        .iter()
        .find(|t| t.name == "aarch64-linux")
        .unwrap();
    // Type 1: 5 waiting; machines 1 and 3 with 7 and 5 slots free.
    assert_eq!(arm.mean_runnable, 5.0);
    assert_eq!(arm.mean_free_slots, Some(12.0));
    assert_eq!(arm.mean_idle_while_runnable, Some(5.0));
    // The counters move by 10 steps per machine between the runner's samples (ticks 0, 3, 4).
    let done = sum
        .rates
        .iter()
        .find(|r| r.counter == "steps done")
        .unwrap();
    assert_eq!(done.increase, 4.0 * 10.0 * 4.0);
    let m0 = sum
        .machines
        .iter()
        .find(|m| m.name == "builder-00")
        .unwrap();
    assert!(close(m0.not_building_share.unwrap(), 0.25));

    let o = run(&[
        "status",
        "--series",
        out.to_str().unwrap(),
        "--machines",
        machines.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["samples"], 3);
}

// ---- the Rust runner's /status as master writes it ------------------------------------------

/// A `/status/queues` answer as NixOS/hydra `io/response_types.rs` `QueueResponse` and
/// `io/step_info.rs` `StepInfo` write it (14332fbf): per system, `scheduled` steps on a
/// builder, then `waiting` ones runnable since 1, 2, … minutes before the fixtures' time
/// (2026-06-01T12:00:00Z).
fn queue_listing(systems: &[(&str, usize, usize)]) -> String {
    let step = |sys: &str, i: usize, scheduled: bool, minutes: usize| {
        let (h, m) = (11 - (minutes - 1) / 60, 59 - (minutes - 1) % 60);
        serde_json::json!({
            "drvPath": format!("/nix/store/{i:032}-{sys}-{minutes}.drv"),
            "alreadyScheduled": scheduled, "runnable": true, "finished": false,
            "cancelled": false, "runnableSince": format!("2026-06-01T{h:02}:{m:02}:00Z"),
            "tries": 0, "lowestShareUsed": 0.5, "highestGlobalPriority": 0,
            "highestLocalPriority": 0, "lowestBuildId": 1000 + i,
        })
    };
    let queues: serde_json::Map<String, serde_json::Value> = systems
        .iter()
        .map(|(sys, scheduled, waiting)| {
            let on_builders = (0..*scheduled).map(|i| step(sys, i, true, 1));
            let queued = (1..=*waiting).map(|k| step(sys, scheduled + k, false, k));
            (
                sys.to_string(),
                serde_json::Value::Array(on_builders.chain(queued).collect()),
            )
        })
        .collect();
    serde_json::json!({ "queues": queues }).to_string()
}

/// The runner's router (`server/http.rs`): its paths with or without the trailing slash,
/// anything else `404` with `{"error": "Not found"}`.
fn runner(routes: Vec<(&'static str, String)>) -> http::Server {
    http::serve(move |req| {
        let path = req.path.trim_end_matches('/');
        match routes.iter().find(|(p, _)| *p == path) {
            Some((_, body)) => Response::json(body.as_str()),
            None => Response::new(404, "Not Found")
                .header("Content-Type", "application/json")
                .body(r#"{"error":"Not found"}"#),
        }
    })
}

fn json_of(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn by_name<'a>(v: &'a serde_json::Value, list: &str, name: &str) -> &'a serde_json::Value {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

fn has_note(v: &serde_json::Value, field: &str) -> bool {
    v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["field"].as_str() == Some(field))
}

#[test]
fn masters_status_gives_runnable_free_slots_and_the_phase_split() {
    let doc = std::fs::read_to_string(fixture("rust-runner-master.json")).unwrap();
    let listing = queue_listing(&[("x86_64-linux", 14, 120), ("aarch64-linux", 2, 10)]);
    let server = runner(vec![("/status", doc), ("/status/queues", listing)]);
    let o = run(&[
        "status",
        &format!("{}/status", server.url()),
        "--format",
        "json",
    ]);
    let v = json_of(&o);
    assert_eq!(v["runner"], "rust");
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/status", "/status/queues"]);

    // Per system, from `queueStats`: runnable is totalRunnable − activeRunnable.
    let x86 = by_name(&v, "machine_types", "x86_64-linux");
    for (k, want) in [
        ("runnable", 120.0),
        ("running", 14.0),
        ("waiting", 100.0),
        ("disabled", 3.0),
        ("wait_time_s", 7200.0),
        // x86-1 is full (8 of 8), x86-2 runs 6 of 8.
        ("free_slots", 2.0),
        ("idle_while_runnable", 2.0),
        // From /status/queues: 120 waiting, runnable 1 … 120 minutes before the document.
        ("waiting_now", 120.0),
        ("oldest_wait_s", 7200.0),
        ("mean_wait_s", 60.0 * 121.0 / 2.0),
    ] {
        assert_eq!(x86[k], want, "x86_64-linux {k}");
    }
    assert!(x86["wait_per_runnable_s"].is_null());
    let arm = by_name(&v, "machine_types", "aarch64-linux");
    assert_eq!(
        (arm["runnable"].as_f64(), arm["free_slots"].as_f64()),
        (Some(10.0), Some(2.0))
    );

    // Per machine: free slots, the runner's verdict and why, the phase split.
    let free = |n: &str| by_name(&v, "machines", n)["free_slots"].as_f64();
    assert_eq!(
        (
            free("x86-1.example"),
            free("x86-2.example"),
            free("arm-1.example")
        ),
        (Some(0.0), Some(2.0), Some(2.0))
    );
    let arm1 = by_name(&v, "machines", "arm-1.example");
    assert_eq!(arm1["has_capacity"], false);
    assert_eq!(arm1["capacity_limits"][0], "CPU pressure 95.0 > 75");
    let shares = |p: &serde_json::Value| {
        ["import_share", "build_share", "upload_share", "other_share"]
            .map(|k| p[k].as_f64().unwrap())
    };
    let split = |p: &serde_json::Value, want: [f64; 4]| {
        for (got, want) in shares(p).iter().zip(want) {
            assert!(close(*got, want), "{p}");
        }
    };
    split(
        &by_name(&v, "machines", "x86-1.example")["phases"],
        [0.10, 0.80, 0.05, 0.05],
    );
    split(
        &by_name(&v, "machines", "x86-2.example")["phases"],
        [0.05, 0.85, 0.05, 0.05],
    );
    split(&arm1["phases"], [0.20, 0.70, 0.05, 0.05]);
    // In total: 1000 + 200 + 100 h over the listed machines; the runner's own totals hold
    // 1400 h, a builder it no longer lists included.
    split(&v["phases"], [0.10, 0.80, 0.05, 0.05]);
    assert!(close(
        v["phases"]["slot_s"].as_f64().unwrap(),
        1300.0 * 3600.0
    ));
    assert!(close(
        v["phases"]["other_s"].as_f64().unwrap(),
        65.0 * 3600.0
    ));
    assert!(close(
        v["runner_phases"]["slot_s"].as_f64().unwrap(),
        1400.0 * 3600.0
    ));
    split(&v["runner_phases"], [0.10, 0.80, 0.05, 0.05]);

    for field in [
        "queueStats.*.avgRunnableTime",
        "queueStats.*.waitTimeMs",
        "queueStats.*.totalRunnable",
        "queueStats.*.nrRunnableWaiting",
        "machines",
        "machines.*.stats.disabledUntil",
        "machines.*.stats.totalStepTimeMs",
        "store",
    ] {
        assert!(has_note(&v, field), "no note on {field}: {}", v["notes"]);
    }
    let nr_waiting = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["field"] == "queueStats.*.nrRunnableWaiting")
        .unwrap();
    assert!(
        nr_waiting["text"]
            .as_str()
            .unwrap()
            .contains("summed 106 against the runner's nrStepsWaiting 110"),
        "{nr_waiting}"
    );

    // The table: the split per machine and in total, and a line per quirk.
    let o = run(&["status", &format!("{}/status/", server.url())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8(o.stdout).unwrap();
    let line = |section: &str, subject: &str, figure: &str| {
        table
            .lines()
            .find(|l| {
                let c: Vec<&str> = l
                    .split("  ")
                    .filter(|c| !c.is_empty())
                    .map(str::trim)
                    .collect();
                c.first() == Some(&section)
                    && c.get(1) == Some(&subject)
                    && c.get(2) == Some(&figure)
            })
            .unwrap_or_else(|| panic!("no {section}/{subject}/{figure} in\n{table}"))
            .to_string()
    };
    assert!(line("phases", "all listed machines", "build").contains("80  % of slot time"));
    assert!(line("phases", "runner totals", "slot time of finished steps").contains("1400  h"));
    assert!(line("machine", "x86-2.example", "upload").contains("5  % of slot time"));
    assert!(line("machine type", "x86_64-linux", "longest wait now").contains("7200  s"));
    assert!(line("note", "queueStats.*.avgRunnableTime", "quirk").contains("always 0"));
}

#[test]
fn the_named_queues_line_reads_like_master_and_adds_ofborg() {
    let master = status::parse(
        &std::fs::read_to_string(fixture("rust-runner-master.json")).unwrap(),
        "master",
    )
    .unwrap();
    let doc = std::fs::read_to_string(fixture("rust-runner-named-queues.json")).unwrap();
    let named = status::parse(&doc, "named").unwrap();
    // The main queue is master's queue under another name; ofborg's steps wait for the same
    // builders, so the per-system figures are their sums.
    let (m, n) = (status::derive(&master, None), status::derive(&named, None));
    let arm = |f: &status::Figures| {
        f.machine_types
            .iter()
            .find(|t| t.name == "aarch64-linux")
            .cloned()
            .unwrap()
    };
    assert_eq!(arm(&m), arm(&n));
    let x86 = n
        .machine_types
        .iter()
        .find(|t| t.name == "x86_64-linux")
        .unwrap();
    assert_eq!(
        (x86.runnable, x86.running, x86.waiting, x86.free_slots),
        (Some(125.0), Some(15.0), Some(105.0), Some(2.0))
    );
    assert_eq!(m.phases, n.phases);

    // From the runner: its main and ofborg listings (it has no plain /status/queues).
    let listing = queue_listing(&[("x86_64-linux", 14, 120), ("aarch64-linux", 2, 10)]);
    let ofborg = queue_listing(&[("x86_64-linux", 1, 5)]);
    let server = runner(vec![
        ("/status", doc),
        ("/status/queues/main", listing),
        ("/status/queues/ofborg", ofborg),
    ]);
    let v = json_of(&run(&[
        "status",
        &format!("{}/status", server.url()),
        "--format",
        "json",
    ]));
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/status", "/status/queues/main", "/status/queues/ofborg"]
    );
    let x86 = by_name(&v, "machine_types", "x86_64-linux");
    assert_eq!(
        (x86["waiting_now"].as_f64(), x86["oldest_wait_s"].as_f64()),
        (Some(125.0), Some(7200.0))
    );
    assert!(
        has_note(&v, "mainQueueStats.*.avgRunnableTime"),
        "{}",
        v["notes"]
    );
    let queues: Vec<(&str, &str)> = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["queue"].as_str().unwrap(), q["system"].as_str().unwrap()))
        .collect();
    assert_eq!(
        queues,
        [
            ("main", "aarch64-linux"),
            ("main", "x86_64-linux"),
            ("ofborg", "x86_64-linux")
        ]
    );
}

#[test]
fn sub_endpoints_only_of_the_runners_own_url_and_their_failure_is_a_note() {
    let doc = std::fs::read_to_string(fixture("rust-runner-master.json")).unwrap();
    // hydra-server's proxy serves /status alone: nothing more is asked of it.
    let body = doc.clone();
    let proxy = http::serve(move |_| Response::json(body.as_str()));
    let v = json_of(&run(&["status", &url(&proxy), "--format", "json"]));
    assert_eq!(proxy.count(), 1);
    assert!(by_name(&v, "machine_types", "x86_64-linux")["waiting_now"].is_null());

    // A runner whose listing fails: the figures of /status, and one line saying what is
    // missing and why.
    let server = runner(vec![("/status", doc)]);
    let o = run(&[
        "status",
        &format!("{}/status", server.url()),
        "--format",
        "json",
    ]);
    let v = json_of(&o);
    assert_eq!(
        by_name(&v, "machine_types", "x86_64-linux")["runnable"],
        120.0
    );
    let e = stderr(&o);
    assert!(
        e.contains("the current waits are not shown")
            && e.contains("/status/queues")
            && e.contains("404"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn the_phase_split_from_the_runners_metrics() {
    let text = metrics_fixture("rust-runner-metrics.prom");
    let (_, _, s) = status::parse_metrics(&text, "metrics").unwrap();
    let f = status::derive(&s, None);
    // steps_total_{,import,build,upload}_time_ms: 360,000,000, 18,000,000, 288,000,000,
    // 27,000,000.
    let r = f.runner_phases.unwrap();
    assert_eq!(
        (r.slot_s, r.import_s, r.build_s, r.upload_s, r.other_s),
        (360_000.0, 18_000.0, 288_000.0, 27_000.0, 27_000.0)
    );
    let a = f.machines.iter().find(|m| m.name == "builder-a").unwrap();
    let p = a.phases.as_ref().unwrap();
    assert_eq!((p.import_s, p.upload_s), (12_000.0, 18_000.0));
}

#[test]
fn a_failed_queue_listing_keeps_the_urls_password_out_of_the_note() {
    let doc = std::fs::read_to_string(fixture("rust-runner-master.json")).unwrap();
    let server = runner(vec![("/status", doc)]);
    let with_password = server.url().replacen("://", "://alice:pw-s3cret@", 1);
    let o = run(&[
        "status",
        &format!("{with_password}/status"),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("the current waits are not shown"), "{e}");
    assert!(
        !e.contains("pw-s3cret") && !String::from_utf8_lossy(&o.stdout).contains("pw-s3cret"),
        "{e}"
    );
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/status", "/status/queues"]);
}
