//! `report`: the committed example in `reports/sample/` is what the code produces (timestamps
//! aside), the HTML renders in a real browser (headless Chromium) with every chart drawn,
//! nothing wider than the page and no console error, `--compare` sets figures side by side and
//! refuses a bad old report cleanly, and a simulation section renders when one is given.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use hydra_bottleneck::report::Report;

/// The crate's root: tests run there, and `reports/sample/` is relative to it.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sample_dir() -> PathBuf {
    root().join("reports/sample")
}

fn scratch(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{name}"));
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// The committed example of the Rust-runner era (`--preset nixos-2026`).
fn sample_2026_dir() -> PathBuf {
    root().join("reports/sample-2026")
}

/// The arguments that generate the committed example (as `reports/regenerate-sample` does).
fn sample_args(out: &Path) -> Vec<String> {
    vec![
        "report".into(),
        "--compression".into(),
        sample_dir().join("compression.json").display().to_string(),
        "--no-png".into(),
        "--quiet".into(),
        "--out".into(),
        out.display().to_string(),
    ]
}

fn run_ok(args: &[String]) -> String {
    let o = support::hb().args(args).run();
    assert!(o.status.success(), "report failed: {}", support::stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The 2026 sample's report, generated once per test run.
fn generated_2026() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = scratch("sample-2026");
        let mut args = sample_args(&out);
        args.extend(["--preset".into(), "nixos-2026".into()]);
        let stdout = run_ok(&args);
        assert!(stdout.contains("queue runner rust"), "{stdout}");
        out
    })
}

/// The sample report, generated once per test run.
fn generated() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = scratch("sample");
        let stdout = run_ok(&sample_args(&out));
        assert!(stdout.contains("BUILT-IN SAMPLE"), "{stdout}");
        out
    })
}

/// `generated_at` and `tool_version` of a report directory.
fn stamps(dir: &Path) -> (String, String) {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    (
        v["generated_at"].as_str().unwrap().to_string(),
        v["tool_version"].as_str().unwrap().to_string(),
    )
}

/// A file's text with the run's timestamp and version masked.
fn masked(dir: &Path, name: &str) -> String {
    let (at, version) = stamps(dir);
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .replace(&at, "<generated_at>")
        .replace(
            &format!("hydra-bottleneck {version}"),
            "hydra-bottleneck <version>",
        )
        .replace(
            &format!("\"tool_version\": \"{version}\""),
            "\"tool_version\": \"<version>\"",
        )
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Files in `reports/sample/` that the report does not write.
const NOT_GENERATED: [&str; 1] = ["summary.png"];

#[test]
fn the_committed_sample_report_is_what_the_code_produces() {
    same_report(generated(), &sample_dir());
}

#[test]
fn the_committed_2026_sample_report_is_what_the_code_produces() {
    same_report(generated_2026(), &sample_2026_dir());
    // The Rust-era buckets: throttled measured, nothing held, overhead as the builder's.
    let md = std::fs::read_to_string(sample_2026_dir().join("report.md")).unwrap();
    for want in [
        "| throttled |",
        "throttled h",
        "importing the inputs it lacks",
        "zstd-19 needs",
    ] {
        assert!(
            md.contains(want),
            "reports/sample-2026/report.md lacks `{want}`"
        );
    }
    let old = std::fs::read_to_string(sample_dir().join("report.md")).unwrap();
    assert!(
        !old.contains("| throttled |"),
        "no throttled line under the C++ runner"
    );
}

fn same_report(new: &Path, old: &Path) {
    let mut committed = names(old);
    committed.retain(|n| !NOT_GENERATED.contains(&n.as_str()));
    assert_eq!(
        names(new),
        committed,
        "the files differ; regenerate with reports/regenerate-sample"
    );
    for name in &committed {
        let (a, b) = (masked(new, name), masked(old, name));
        if a != b {
            let line = a
                .lines()
                .zip(b.lines())
                .position(|(x, y)| x != y)
                .unwrap_or(a.lines().count().min(b.lines().count()));
            panic!(
                "{}/{name} is stale (first difference at line {}): regenerate with \
                 reports/regenerate-sample\n  now:       {}\n  committed: {}",
                old.display(),
                line + 1,
                a.lines().nth(line).unwrap_or("<end>"),
                b.lines().nth(line).unwrap_or("<end>")
            );
        }
    }
}

#[test]
fn the_report_json_is_the_report_and_its_waterfall_adds_up() {
    let bytes = std::fs::read(generated().join("report.json")).unwrap();
    let r: Report = serde_json::from_slice(&bytes).expect("report.json reads back as a Report");
    let again = serde_json::to_vec_pretty(&r).unwrap();
    assert_eq!(
        again,
        bytes[..bytes.len() - 1],
        "round trip changes report.json"
    );
    assert!(r.source.is_sample);
    let avail = r.waterfall[0].slot_hours;
    // At full precision the bars add up to the float arithmetic's last digits (rounded to
    // 0.01 h each, seven of them missed by up to 0.035 h).
    let parts: f64 = r.waterfall[1..].iter().map(|w| w.slot_hours).sum();
    assert!((avail - parts).abs() < 1e-6 * avail, "{avail} vs {parts}");
    let money: f64 = r.waterfall[1..].iter().map(|w| w.cost_per_month).sum();
    assert!((r.waterfall[0].cost_per_month - money).abs() < 1e-6 * money);
    assert!(!r.recommendations.is_empty());
    assert_eq!(r.recommendations[0].rank, 1);
    let sim = r
        .simulation
        .as_ref()
        .expect("the sample report runs the simulation");
    assert!(sim.calibration.len() >= 5);
    // The baseline and the six example scenarios of scenarios/.
    assert_eq!(sim.scenarios.len(), 7);
    assert_eq!(sim.scenarios[0].name, "baseline");
    let md = std::fs::read_to_string(generated().join("report.md")).unwrap();
    assert!(
        md.lines().next().unwrap().contains("BUILT-IN SAMPLE"),
        "{md}"
    );
    assert!(md.contains("## Simulation") && !md.contains("Not run"));
}

/// report.json holds figures at full precision: each machine's ledger hours are the analysis'
/// own, every digit (as `analyze ledger --format json` prints them), and some are finer than
/// the 0.01 h (36 s) they were once rounded to.
#[test]
fn report_json_holds_the_findings_at_full_precision() {
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(generated().join("report.json")).unwrap()).unwrap();
    let o = support::hb()
        .args(["analyze", "ledger", "--format", "json"])
        .run();
    assert!(o.status.success(), "{}", support::stderr(&o));
    let ledger: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (ours, theirs) = (
        r["capacity"]["machines"].as_array().unwrap(),
        ledger["machines"].as_array().unwrap(),
    );
    assert_eq!(ours.len(), theirs.len());
    assert!(ours.len() >= 10);
    let mut finer = 0;
    for (a, b) in ours.iter().zip(theirs) {
        assert_eq!(a["key"], b["key"]);
        for k in [
            "building_h",
            "overhead_h",
            "held_h",
            "dispatch_loss_h",
            "idle_h",
        ] {
            let (x, y) = (a[k].as_f64().unwrap(), b[k].as_f64().unwrap());
            assert_eq!(x, y, "{} {k}: report.json {x}, the ledger {y}", a["key"]);
            if ((x * 100.0).round() - x * 100.0).abs() > 1e-6 {
                finer += 1;
            }
        }
    }
    assert!(finer > 0, "no figure finer than 0.01 h in {ours:?}");
}

/// Decimal numbers of `text` printed with more than 3 decimals, but for a figure below 1 with
/// at most 3 significant digits (a core-hour price of `0.0109`): float noise, where a person
/// reads a rounded figure.
fn long_decimals(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut bad = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
            let whole = &text[start..i];
            i += 1;
            let f = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let frac = &text[f..i];
            let significant = frac.trim_start_matches('0').len();
            let small = whole.bytes().all(|c| c == b'0');
            if frac.len() > 3 && !(small && significant <= 3) {
                bad.push(text[start..i].to_string());
            }
        }
    }
    bad
}

/// What a reader sees of an HTML page: the text outside tags, less the charts' SVG drawing
/// (coordinates) and the style sheet.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let close = ["svg", "style", "script"]
            .into_iter()
            .find(|t| rest[1..].starts_with(t))
            .map(|t| format!("</{t}>"));
        let end = match close {
            Some(c) => rest.find(&c).map_or(rest.len(), |j| j + c.len()),
            None => rest.find('>').map_or(rest.len(), |j| j + 1),
        };
        out.push(' ');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn markdown_and_html_print_figures_rounded_for_reading() {
    assert_eq!(
        long_decimals("3.2196255854804816 MB/s, 0.0109 EUR, 1.319, 12.5 %, 0.00012345"),
        ["3.2196255854804816", "0.00012345"]
    );
    assert_eq!(
        visible_text("<p title=\"1.23456\">a 1.5</p><svg><text>9.87654</text></svg>b"),
        " a 1.5  b"
    );
    let md = std::fs::read_to_string(generated().join("report.md")).unwrap();
    for (n, line) in md.lines().enumerate() {
        let bad = long_decimals(line);
        assert!(
            bad.is_empty(),
            "report.md line {}: {bad:?} in\n{line}",
            n + 1
        );
    }
    // The Assumed lines of the simulation say the measured speeds as people read them.
    assert!(md.contains("xz-6: 3.22 MB/s per core"), "{md}");
    let html = std::fs::read_to_string(generated().join("report.html")).unwrap();
    let text = visible_text(&html);
    assert!(text.contains("Assumed: xz-6: 3.22 MB/s"));
    let bad = long_decimals(&text);
    assert!(bad.is_empty(), "report.html prints {bad:?}");
}

/// Runs headless Chromium on `args` (a fresh profile each time, no network chatter).
fn chromium(args: &[&str]) -> std::process::Output {
    let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!(
                "chromium is needed for the browser check: apt-get install -y chromium \
                 (.ci/run installs it)"
            )
        });
    let profile = tempfile::tempdir().unwrap();
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("running chromium")
}

/// Collects, in the page, errors (script, resource, console.error), each chart's SVG size, and
/// anything wider than the window outside the scrolling table boxes; writes them as JSON into
/// `<pre id="check">` for `--dump-dom`.
const CHECK_JS: &str = r#"
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    errors.push('error: ' + (e.message || (t && (t.src || t.href || t.tagName)) || 'unknown'));
  }, true);
  var ce = console.error;
  console.error = function () {
    errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    ce.apply(console, arguments);
  };
  window.addEventListener('load', function () {
    var charts = [];
    document.querySelectorAll('figure.chart').forEach(function (f) {
      var s = f.querySelector('svg');
      var r = s ? s.getBoundingClientRect() : { width: 0, height: 0 };
      charts.push({ name: f.getAttribute('data-chart'), width: r.width, height: r.height,
                    texts: s ? s.querySelectorAll('text').length : 0 });
    });
    var wide = [];
    document.querySelectorAll('body *').forEach(function (el) {
      if (el.closest('.table') || el.closest('svg')) return;
      var r = el.getBoundingClientRect();
      if (r.right > window.innerWidth + 1) wide.push(el.tagName + (el.id ? '#' + el.id : ''));
    });
    var pre = document.createElement('pre');
    pre.id = 'check';
    pre.textContent = JSON.stringify({ errors: errors, charts: charts,
      scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
      wide: wide.slice(0, 10) });
    document.body.appendChild(pre);
  });
})();
"#;

/// Renders `dir/report.html` at a laptop's and a narrow window's width and checks it; takes a
/// screenshot. Returns the number of charts drawn.
fn browser_check(dir: &Path) -> usize {
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    // Self-contained: nothing is fetched.
    for needle in ["src=\"http", "href=\"http", "url(http", "<link ", "@import"] {
        assert!(
            !html.contains(needle),
            "report.html refers to the network: {needle}"
        );
    }
    let report: Report =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    let checked = dir.join("checked.html");
    std::fs::write(
        &checked,
        html.replacen("<head>", &format!("<head>\n<script>{CHECK_JS}</script>"), 1),
    )
    .unwrap();
    let url = format!("file://{}", checked.display());
    for width in [1280, 760] {
        let o = chromium(&[
            &format!("--window-size={width},900"),
            "--virtual-time-budget=5000",
            "--dump-dom",
            &url,
        ]);
        let dom = String::from_utf8_lossy(&o.stdout);
        let json = dom
            .split("<pre id=\"check\">")
            .nth(1)
            .and_then(|s| s.split("</pre>").next())
            .unwrap_or_else(|| {
                panic!(
                    "no check result from chromium (exit {:?}): {}",
                    o.status.code(),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["errors"],
            serde_json::json!([]),
            "page errors at {width} px"
        );
        let charts = v["charts"].as_array().unwrap();
        assert_eq!(
            charts.len(),
            report.charts.len(),
            "charts in the page at {width} px: {charts:?}"
        );
        for c in charts {
            assert!(
                c["width"].as_f64().unwrap() > 100.0 && c["height"].as_f64().unwrap() > 100.0,
                "chart not drawn at {width} px: {c}"
            );
            assert!(c["texts"].as_u64().unwrap() > 3, "chart without text: {c}");
        }
        assert!(
            v["scrollWidth"].as_f64().unwrap() <= v["innerWidth"].as_f64().unwrap(),
            "the page is wider than the window at {width} px: {v}"
        );
        assert_eq!(
            v["wide"],
            serde_json::json!([]),
            "overflowing at {width} px"
        );
    }
    let shot = dir.join("screenshot.png");
    let o = chromium(&[
        "--window-size=1280,1600",
        &format!("--screenshot={}", shot.display()),
        &format!("file://{}", dir.join("report.html").display()),
    ]);
    let png = std::fs::read(&shot).unwrap_or_else(|_| {
        panic!(
            "chromium wrote no screenshot: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot too small"
    );
    report.charts.len()
}

#[test]
fn the_report_renders_in_a_real_browser() {
    let dir = scratch("browser");
    copy_dir(generated(), &dir);
    assert_eq!(browser_check(&dir), 7);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn the_simulation_section_holds_calibration_scenarios_and_verdict_or_says_not_run() {
    let md = std::fs::read_to_string(generated().join("report.md")).unwrap();
    for want in [
        "## Simulation",
        "Calibration",
        "queue wait p90",
        "compress on builders",
        "Binding constraint",
    ] {
        assert!(md.contains(want), "no `{want}` in the sample report");
    }
    assert!(generated().join("scenarios.svg").exists());
    // A scenario file of one's own replaces the examples.
    let dir = scratch("scenario-file");
    let file = dir.join("s.toml");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&file, "name = 'my change'\nlocal_workers = 2\n").unwrap();
    let out = dir.join("report");
    let mut args = sample_args(&out);
    args.extend([
        "--seeds".into(),
        "2".into(),
        "--scenario".into(),
        file.display().to_string(),
    ]);
    run_ok(&args);
    let r: Report =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let names: Vec<&str> = r
        .simulation
        .as_ref()
        .unwrap()
        .scenarios
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["baseline", "my change"]);
    // Without the simulation the section says so.
    let out = scratch("no-simulation");
    let mut args = sample_args(&out);
    args.push("--no-simulation".into());
    run_ok(&args);
    let r: Report =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert!(r.simulation.is_none());
    assert!(!out.join("scenarios.svg").exists());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Simulation") && md.contains("Not run"));
}

#[test]
fn compare_sets_the_old_figures_beside_the_new() {
    let out = scratch("compare");
    let mut args = sample_args(&out);
    args.extend(["--compare".into(), sample_dir().display().to_string()]);
    let stdout = run_ok(&args);
    assert!(stdout.contains("0 of"), "{stdout}");
    let r: Report =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let c = r.comparison.expect("a comparison");
    assert!(c.rows.len() >= 20);
    // The same history and measurement: nothing moved.
    for row in &c.rows {
        assert_eq!(row.change, Some(0.0), "{row:?}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("Before and after"));
}

/// A report of format 1 (figures rounded: headlines to 0.01, hours a month to 0.1) still serves
/// as "before": tests/fixtures/report-format-1/report.json is what `--compare` reads of the
/// sample report in format 1 (the file as committed at format 1, its headlines rounded again as
/// format 1 rounds them from the committed format-2 report each time the sample's history
/// changes). Compared at the precision it holds, the same
/// history shows no change, but where format 1 rounded a figure's inputs too (the idle cost from
/// hours rounded to 0.01 h): there, the last digit.
#[test]
fn compare_reads_a_report_of_format_1_at_its_precision() {
    let old = root().join("tests/fixtures/report-format-1");
    let (r, stdout, _) = quick_report("compare-v1", &["--compare", old.to_str().unwrap()]);
    assert_eq!(r["format_version"], 2);
    let rows = r["comparison"]["rows"].as_array().unwrap();
    assert!(rows.len() >= 20, "{rows:?}");
    let mut moved = 0;
    for row in rows {
        let before = row["before"].as_f64().unwrap_or_else(|| panic!("{row}"));
        let change = row["change"].as_f64().unwrap();
        assert!(change.abs() <= 1e-4 * before.abs().max(1.0), "{row}");
        if change != 0.0 {
            moved += 1;
        }
    }
    assert!(moved <= 2, "{moved} of {} moved: {rows:?}", rows.len());
    assert!(
        stdout.contains(&format!("{moved} of {}", rows.len())),
        "{stdout}"
    );
}

#[test]
fn compare_refuses_a_missing_corrupt_or_foreign_report_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let corrupt = tmp.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(
        corrupt.join("report.json"),
        "{\"format_version\": 1, \"head",
    )
    .unwrap();
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(
        foreign.join("report.json"),
        "{\"format_version\": 99, \"headlines\": []}",
    )
    .unwrap();
    let cases = [
        (tmp.path().join("missing"), "report.json"),
        (corrupt, "not a JSON document"),
        (foreign, "format 99"),
    ];
    for (old, needle) in cases {
        let out = tmp.path().join("out");
        let o = support::run(&[
            "report",
            "--no-compression",
            "--compare",
            old.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        support::assert_one_line_error(&o, needle);
        assert!(!out.exists(), "{} was written", out.display());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
    }
}

#[test]
fn the_default_directory_is_dated_and_never_replaced() {
    let cwd = tempfile::tempdir().unwrap();
    let compression = sample_dir().join("compression.json");
    for _ in 0..2 {
        let o = support::hb()
            .current_dir(cwd.path())
            .args(["report", "--quiet", "--compression"])
            .arg(&compression)
            .run();
        assert!(o.status.success(), "{}", support::stderr(&o));
        assert!(o.stderr.is_empty(), "--quiet: {}", support::stderr(&o));
    }
    let dirs = two_sample_report_dirs(cwd.path());
    let first = cwd.path().join("reports").join(&dirs[0]);
    // PNG copies by default, and the measurement used, for --compression next time.
    for f in [
        "waterfall.png",
        "utilization.png",
        "compression.json",
        "report.html",
    ] {
        assert!(first.join(f).exists(), "{f} missing");
    }
}

/// Two runs started together into the same default path: both checked the path free at the
/// start, and each takes a name only when it is done, so both reports survive (the second to
/// finish as `-2`) instead of the later one replacing the earlier.
#[test]
fn two_runs_to_the_default_path_end_in_two_directories() {
    let cwd = tempfile::tempdir().unwrap();
    let compression = sample_dir().join("compression.json");
    let start = || {
        support::hb()
            .current_dir(cwd.path())
            .args([
                "report",
                "--quiet",
                "--no-png",
                "--no-simulation",
                "--compression",
            ])
            .arg(&compression)
            .spawn()
    };
    let (a, b) = (start(), start());
    let mut wrote = Vec::new();
    for child in [a, b] {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", support::stderr(&o));
        wrote.push(String::from_utf8_lossy(&o.stdout).into_owned());
    }
    let dirs = two_sample_report_dirs(cwd.path());
    for d in &dirs {
        let dir = cwd.path().join("reports").join(d);
        assert!(
            dir.join("report.json").exists(),
            "{d} is not a whole report"
        );
        // Each run names the directory it really wrote.
        assert_eq!(
            wrote
                .iter()
                .filter(|w| w.contains(&format!("{d}/")))
                .count(),
            1,
            "{d}: {wrote:?}"
        );
    }
}

#[test]
fn an_existing_out_directory_needs_force() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("keep"), "x").unwrap();
    let o = support::run(&[
        "report",
        "--no-compression",
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    support::assert_one_line_error(&o, "--force");
    assert!(tmp.path().join("keep").exists());
}

/// A quick report of the sample (no simulation) with `extra` arguments, as JSON, and its stdout.
fn quick_report(name: &str, extra: &[&str]) -> (serde_json::Value, String, PathBuf) {
    let out = scratch(name);
    let mut args = sample_args(&out);
    args.push("--no-simulation".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    let stdout = run_ok(&args);
    let json = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    (json, stdout, out)
}

#[test]
fn a_window_beyond_the_data_is_narrowed_to_it_and_says_so() {
    let (whole, whole_stdout, _) = quick_report("window-whole", &[]);
    let (wide, stdout, dir) = quick_report("window-wide", &["--since", "2025-01-01"]);
    // The same capacity as the whole sample: the months before it hold no data, not idle slots.
    for key in ["capacity", "waterfall", "recommendations", "headlines"] {
        assert_eq!(wide[key], whole[key], "{key} differs");
    }
    for key in ["since", "until", "days", "month_factor"] {
        assert_eq!(wide["window"][key], whole["window"][key], "window.{key}");
    }
    assert!(whole["window"].get("note").is_none(), "{}", whole["window"]);
    assert!(!whole_stdout.contains("note:"), "{whole_stdout}");
    let note = wide["window"]["note"]
        .as_str()
        .expect("a note in report.json");
    assert!(
        note.contains("2025-01-01") && note.contains("2025-06-02"),
        "{note}"
    );
    // On the first lines of every form.
    let head = |text: &str| text.lines().take(4).collect::<Vec<_>>().join("\n");
    assert!(head(&stdout).contains(note), "{stdout}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(head(&md).contains(note), "{md}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let body = &html[html.find("<body").unwrap()..];
    let first_p = &body[..body.find("</p>").unwrap()];
    assert!(first_p.contains("Window narrowed"), "{first_p}");
}

#[test]
fn an_absurd_bound_is_one_clear_line() {
    for (bound, needle) in [
        ("106751991167300d", "before 1970"),
        ("1900-01-01", "outside the times"),
        ("@-1", "outside the times"),
        ("3000-01-01", "outside the times"),
    ] {
        let o = support::run(&["report", "--since", bound, "--quiet"]);
        let err = support::stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{bound}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains(bound) && first.contains(needle), "{err}");
    }
}

/// The two report directories two runs left under `cwd/reports`, in order: the default name
/// and the next free one.
fn two_sample_report_dirs(cwd: &Path) -> Vec<String> {
    let mut dirs = names(&cwd.join("reports"));
    dirs.sort();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    assert!(
        dirs[0].ends_with("-sample") && dirs[1].ends_with("-sample-2"),
        "{dirs:?}"
    );
    dirs
}
