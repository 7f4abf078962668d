//! `query`: the named read-only queries, or one checked ad-hoc statement, against a live
//! database (`crate::source::sql`) or, offline, a snapshot or the built-in sample
//! (`crate::query::offline`).

use std::path::PathBuf;

use super::render::{Printer, Render, RowSource};
use super::{Context, inputs};
use crate::error::{Error, Result};
use crate::query::{Query, SqlOptions, Table};
use crate::source::SourceSpec;

/// Which query.
#[derive(Debug, Clone)]
pub enum QueryAction {
    /// List the named queries, their parameters and defaults (no database needed).
    List,
    /// A named query, with parameters as NAME=VALUE pairs (the others take their defaults).
    Run {
        name: String,
        params: Vec<(String, String)>,
    },
    /// One ad-hoc statement, checked before it is sent.
    Sql { sql: String, opts: SqlOptions },
}

/// What `query` is asked.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    pub action: QueryAction,
    /// Also write the result as a Parquet file; it must not exist, unless `force`.
    pub parquet: Option<PathBuf>,
    pub force: bool,
}

/// What `query` found.
#[derive(Debug, Clone)]
pub enum QueryOutcome {
    /// The named queries.
    List(Vec<Query>),
    /// A query's result from the database.
    Table(Table),
    /// A query's result from the offline engine.
    Frame(polars::prelude::DataFrame),
}

/// Lists the queries, or runs one against the database of `ctx.source`.
pub fn run(ctx: &Context<'_>, opts: &QueryOptions) -> Result<QueryOutcome> {
    if let QueryAction::List = opts.action {
        return Ok(QueryOutcome::List(crate::query::all()?));
    }
    // Refused before the query runs; the write refuses again if the file appeared meanwhile.
    if let Some(path) = &opts.parquet
        && !opts.force
        && std::fs::symlink_metadata(path).is_ok()
    {
        return Err(Error::Exists {
            target: path.display().to_string(),
            reason: "exists; choose another file or pass --force to replace it".into(),
        });
    }
    let mut outcome = match &ctx.source {
        SourceSpec::Postgres(db) => QueryOutcome::Table(live(ctx, db, &opts.action)?),
        _ => QueryOutcome::Frame(offline(ctx, &opts.action)?),
    };
    if let Some(path) = &opts.parquet {
        match &mut outcome {
            QueryOutcome::Table(table) => crate::query::write_parquet(table, path, opts.force)?,
            QueryOutcome::Frame(df) => crate::query::write_frame_parquet(df, path, opts.force)?,
            QueryOutcome::List(_) => {}
        }
        ctx.note(&format!("wrote {}", path.display()));
    }
    Ok(outcome)
}

/// Runs the query on the database.
fn live(ctx: &Context<'_>, db: &str, action: &QueryAction) -> Result<Table> {
    let params = inputs::conninfo(db)?;
    let timeout = ctx.statement_timeout;
    inputs::runtime()?.block_on(async {
        match action {
            QueryAction::Run {
                name,
                params: given,
            } => {
                let q = crate::query::find(name)?;
                crate::source::sql::run_named(&params, &q, given, timeout).await
            }
            QueryAction::Sql { sql, opts } => {
                crate::source::sql::run_adhoc(&params, sql, timeout, *opts).await
            }
            QueryAction::List => unreachable!("answered before any source is read"),
        }
    })
}

/// Runs the query on a snapshot's or the sample's tables. The whole history is offered (the
/// query's own parameters choose the rows), and relative times count back from the end of its
/// recorded window.
fn offline(ctx: &Context<'_>, action: &QueryAction) -> Result<polars::prelude::DataFrame> {
    // A named query that needs the database is refused before anything is read.
    let named = match action {
        QueryAction::Run { name, .. } => {
            let q = crate::query::find(name)?;
            if let crate::query::Offline::No(why) = &q.offline {
                return Err(Error::Usage(format!(
                    "query `{name}` needs a live database (--db): {why}"
                )));
            }
            Some(q)
        }
        _ => None,
    };
    if let QueryAction::Sql { sql, .. } = action {
        crate::query::offline::check(sql).map_err(|why| Error::refused("query sql", why))?;
    }
    let mut read = ctx.read_options(&[]);
    read.window = crate::window::WindowSpec::default();
    read.tables_only = true;
    let ds = crate::source::load(&ctx.source, &read)?;
    let taken = match &ctx.source {
        SourceSpec::Snapshot(dir) => Some(crate::source::snapshot::read_manifest(dir)?.created_at),
        _ => None,
    };
    let now = ds
        .meta
        .window
        .until
        .or(taken)
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    let mut engine = crate::query::offline::Engine::new(&ds, now, ctx.statement_timeout)?;
    match (action, named) {
        (QueryAction::Run { params, .. }, Some(q)) => engine.run_named(&q, params),
        (QueryAction::Sql { sql, .. }, _) => engine.run_adhoc(sql),
        _ => Err(Error::Internal("query: no action".into())),
    }
}

impl Render for QueryOutcome {
    fn render(&self, p: &mut Printer<'_>) -> Result<()> {
        match self {
            QueryOutcome::List(all) => {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|q| {
                        let params = q
                            .params
                            .iter()
                            .map(|p| format!("{}={}", p.name, p.default.as_deref().unwrap_or("?")))
                            .collect::<Vec<_>>()
                            .join(" ");
                        let offline = match &q.offline {
                            crate::query::Offline::Same => "yes".to_string(),
                            crate::query::Offline::Own(_) => "yes (own text)".to_string(),
                            crate::query::Offline::No(_) => "no".to_string(),
                        };
                        vec![q.name.clone(), params, offline, q.description.clone()]
                    })
                    .collect();
                p.rows(&["name", "params", "offline", "description"], &rows, all)
            }
            QueryOutcome::Table(table) => p.stream(table),
            QueryOutcome::Frame(df) => p.stream(df),
        }
    }
}

impl RowSource for Table {
    fn header(&self) -> Vec<String> {
        self.columns.clone()
    }
    fn len(&self) -> usize {
        self.rows.len()
    }
    fn value(&self, row: usize, column: usize) -> serde_json::Value {
        self.rows[row][column].clone()
    }
}

impl RowSource for polars::prelude::DataFrame {
    fn header(&self) -> Vec<String> {
        self.get_column_names()
            .into_iter()
            .map(|n| n.to_string())
            .collect()
    }
    fn len(&self) -> usize {
        self.height()
    }
    fn value(&self, row: usize, column: usize) -> serde_json::Value {
        crate::query::offline::cell(self, row, column)
    }
}
