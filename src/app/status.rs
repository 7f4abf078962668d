//! `status`: one queue-runner status document's figures, a watch that collects a series of
//! them, or a series' summary.

use std::path::PathBuf;
use std::time::Duration;

use super::render::{Format, Printer, Render};
use super::{Context, inputs};
use crate::error::{Error, Result};
use crate::status::figures::{self, Figures, Row};
use crate::status::series::{self, SeriesSummary};
use crate::status::{Source, WatchOptions, WatchReport};

/// What `status` is asked.
#[derive(Debug, Clone)]
pub enum StatusOptions {
    /// Read one document and derive its figures; `timeout` bounds a URL's request.
    Show {
        source: Source,
        machines: Option<PathBuf>,
        timeout: Duration,
    },
    /// Poll a URL and append one JSON line per sample to a file, until Ctrl-C or the sample
    /// count.
    Watch(WatchOptions),
    /// Summarise a series written by a watch.
    Series {
        path: PathBuf,
        machines: Option<PathBuf>,
    },
}

/// What `status` found.
#[derive(Debug, Clone)]
pub enum StatusOutcome {
    Figures(Box<Figures>),
    Watched(WatchReport),
    Series(SeriesSummary),
}

/// Reads, watches or summarises, as `opts` says.
pub fn run(ctx: &Context<'_>, opts: &StatusOptions) -> Result<StatusOutcome> {
    match opts {
        StatusOptions::Show {
            source,
            machines,
            timeout,
        } => {
            let machines = inputs::machines_file(machines.as_deref())?;
            let mut status = crate::status::load(source, *timeout)?;
            // The Rust runner's own /status URL also lists its queues: the waits now.
            for line in crate::status::add_queue_waits(&mut status, source, *timeout) {
                ctx.note(&line);
            }
            Ok(StatusOutcome::Figures(Box::new(figures::derive(
                &status,
                machines.as_deref(),
            ))))
        }
        StatusOptions::Watch(watch) => {
            // Ctrl-C is how an open-ended watch ends: it stops at once, between lines.
            crate::interrupt::install()?;
            Ok(StatusOutcome::Watched(crate::status::fetch::watch(
                watch, ctx.note,
            )?))
        }
        StatusOptions::Series { path, machines } => {
            let machines = inputs::machines_file(machines.as_deref())?;
            let s = series::read(path)?;
            if s.samples.is_empty() {
                return Err(Error::StatusDocument {
                    origin: path.display().to_string(),
                    reason: format!(
                        "no status documents in the series ({} failed requests, {} unreadable \
                         lines)",
                        s.errors, s.bad_lines
                    ),
                });
            }
            if let Some(line) = s.first_bad_line {
                ctx.note(&format!(
                    "{}: skipped {} unreadable line(s), the first at line {line}",
                    path.display(),
                    s.bad_lines
                ));
            }
            Ok(StatusOutcome::Series(series::summarise(
                &s,
                machines.as_deref(),
            )))
        }
    }
}

const HEADER: [&str; 6] = ["section", "subject", "figure", "value", "unit", "note"];

/// A value for the table (rounded for reading) or CSV (as precise as it is).
fn cell(v: Option<f64>, format: Format) -> String {
    match v {
        None => String::new(),
        Some(v) if format == Format::Csv => format!("{v}"),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

fn figure_rows<T: serde::Serialize>(p: &mut Printer<'_>, rows: &[Row], json: &T) -> Result<()> {
    let format = p.format();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.section.to_string(),
                r.subject.clone(),
                r.figure.to_string(),
                cell(r.value, format),
                r.unit.to_string(),
                r.note.clone(),
            ]
        })
        .collect();
    p.rows(&HEADER, &table, json)
}

impl Render for StatusOutcome {
    fn render(&self, p: &mut Printer<'_>) -> Result<()> {
        match self {
            StatusOutcome::Figures(f) => figure_rows(p, &figures::rows(f), f),
            StatusOutcome::Series(s) => figure_rows(p, &series::rows(s), s),
            StatusOutcome::Watched(report) => {
                let rows = vec![vec![
                    report.out.display().to_string(),
                    report.lines.to_string(),
                    report.documents.to_string(),
                    report.failed.to_string(),
                    report.stopped_by.to_string(),
                ]];
                p.rows(
                    &["file", "lines", "documents", "failed", "stopped by"],
                    &rows,
                    report,
                )
            }
        }
    }
}
