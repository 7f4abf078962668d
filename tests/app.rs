//! The commands as library functions (`hydra_bottleneck::app`), called without the binary: the
//! report pipeline writes what the committed example holds, and outcomes print through the one
//! printer in each format.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use hydra_bottleneck::analysis::table::Finding;
use hydra_bottleneck::app::analyze::AnalyzeOptions;
use hydra_bottleneck::app::report::ReportOptions;
use hydra_bottleneck::app::{self, Context, Format, Printer, Render};

/// The committed example report (`reports/regenerate-sample` writes it).
fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reports/sample")
}

fn printed(outcome: &dyn Render, format: Format) -> hydra_bottleneck::Result<String> {
    let mut buf = Vec::new();
    outcome.render(&mut Printer::new(&mut buf, "buffer", format))?;
    Ok(String::from_utf8(buf).expect("UTF-8 output"))
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("JSON")
}

/// The report pipeline as one call: on the sample with the committed codec measurement, every
/// section that does not come from the simulation is the committed example's, and what it
/// returns is what it wrote.
#[test]
fn the_report_pipeline_runs_as_a_library_function() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let saved = committed().join("compression.json");
    let opts = ReportOptions {
        compression: Some(saved.clone()),
        png: false,
        simulation: false,
        out: Some(out.clone()),
        ..ReportOptions::default()
    };
    let done = app::report::run(&Context::sample(), &opts).unwrap();

    assert_eq!(done.written.dir, out);
    for name in [
        "report.md",
        "report.html",
        "report.json",
        "compression.json",
    ] {
        assert!(
            done.written.files.iter().any(|f| f == name),
            "{name} missing"
        );
    }
    assert!(!done.written.files.iter().any(|f| f.ends_with(".png")));
    // The measurement used is kept beside the report as it was read.
    assert_eq!(
        std::fs::read(out.join("compression.json")).unwrap(),
        std::fs::read(&saved).unwrap()
    );
    // The returned report is the one written.
    let written = json(&std::fs::read(out.join("report.json")).unwrap());
    assert_eq!(serde_json::to_value(&done.report).unwrap(), written);
    assert!(written["simulation"].is_null(), "asked for no simulation");

    let example = json(&std::fs::read(committed().join("report.json")).unwrap());
    for section in [
        "source",
        "window",
        "costs",
        "waterfall",
        "capacity",
        "utilization",
        "waiting",
        "overhead",
        "waste",
        "compression",
        "quality",
    ] {
        assert_eq!(
            written[section], example[section],
            "section `{section}` differs from reports/sample"
        );
    }

    // What the binary prints at the end, from the same outcome.
    let summary = printed(&done, Format::Json).unwrap();
    assert!(summary.contains("BUILT-IN SAMPLE"), "{summary}");
    assert!(summary.contains(&out.display().to_string()), "{summary}");
}

/// An `out` directory that holds something is refused before any work, and left alone.
#[test]
fn the_report_pipeline_refuses_a_full_directory_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("keep"), "mine").unwrap();
    let opts = ReportOptions {
        out: Some(tmp.path().to_path_buf()),
        ..ReportOptions::default()
    };
    let e = app::report::run(&Context::sample(), &opts).unwrap_err();
    assert!(e.to_string().contains("pass --force"), "{e}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("keep")).unwrap(),
        "mine"
    );
}

/// One outcome, three formats through the one printer; `all` only as JSON.
#[test]
fn an_analysis_prints_as_table_csv_and_json() {
    let ctx = Context::sample();
    let analysis = app::analyze::run(&ctx, &AnalyzeOptions::default()).unwrap();
    let csv = printed(&analysis, Format::Csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "scope,key,slots,available_h,building_h,overhead_h,held_h,dispatch_loss_h,idle_h,\
             over_committed_h,throttled_h"
        )
    );
    assert!(lines.last().unwrap().starts_with("total,"), "{csv}");
    let table = printed(&analysis, Format::Table).unwrap();
    assert_eq!(table.lines().count(), csv.lines().count());
    let j = json(printed(&analysis, Format::Json).unwrap().as_bytes());
    let available = j["total"]["available_h"].as_f64().unwrap();
    assert!((available - analysis.findings.ledger.total.available_h).abs() < 1e-6);
    assert!(available > 0.0);

    // Several findings: one JSON object of what each prints alone; tables one after the other,
    // each under its name; never CSV.
    let several = app::analyze::Analysis {
        shown: vec![Finding::Ledger, Finding::Quality],
        ..analysis.clone()
    };
    let both = json(printed(&several, Format::Json).unwrap().as_bytes());
    assert_eq!(both.as_object().unwrap().len(), 2);
    assert_eq!(both["ledger"], j);
    let quality = app::analyze::Analysis {
        shown: vec![Finding::Quality],
        ..analysis.clone()
    };
    assert_eq!(
        both["quality"],
        json(printed(&quality, Format::Json).unwrap().as_bytes())
    );
    let tables = printed(&several, Format::Table).unwrap();
    assert!(tables.starts_with("ledger:\n"), "{tables}");
    assert!(tables.contains(&format!("{table}\nquality:\n")), "{tables}");
    let e = printed(&several, Format::Csv).unwrap_err();
    assert!(e.to_string().contains("CSV holds one table"), "{e}");

    let all = app::analyze::Analysis {
        shown: vec![Finding::All],
        ..analysis
    };
    let e = printed(&all, Format::Table).unwrap_err();
    assert!(e.to_string().contains("needs --format json"), "{e}");
    assert!(json(printed(&all, Format::Json).unwrap().as_bytes())["ledger"].is_object());
    // `all` beside another finding is refused before anything is read.
    let opts = AnalyzeOptions {
        findings: vec![Finding::Waiting, Finding::All],
        ..AnalyzeOptions::default()
    };
    let e = app::analyze::run(&ctx, &opts).unwrap_err();
    assert!(e.to_string().contains("give it alone"), "{e}");
}
