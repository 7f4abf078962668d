//! `query`: the named read-only queries, or one checked ad-hoc statement, against a live
//! database.

use std::path::PathBuf;

use super::render::{Printer, Render};
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
    /// A query's result.
    Table(Table),
}

/// Lists the queries, or runs one against the database of `ctx.source`.
pub fn run(ctx: &Context<'_>, opts: &QueryOptions) -> Result<QueryOutcome> {
    if let QueryAction::List = opts.action {
        return Ok(QueryOutcome::List(crate::query::all()?));
    }
    let SourceSpec::Postgres(db) = &ctx.source else {
        return Err(Error::Usage(
            "`query` reads a live Hydra database: give --db (for a snapshot or the sample, \
             use `analyze`)"
                .into(),
        ));
    };
    let params = inputs::conninfo(db)?;
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
    let timeout = ctx.statement_timeout;
    let table = inputs::runtime()?.block_on(async {
        match &opts.action {
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
            QueryAction::List => unreachable!("answered above"),
        }
    })?;
    if let Some(path) = &opts.parquet {
        crate::query::write_parquet(&table, path, opts.force)?;
        ctx.note(&format!("wrote {}", path.display()));
    }
    Ok(QueryOutcome::Table(table))
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
                        vec![q.name.clone(), params, q.description.clone()]
                    })
                    .collect();
                p.rows(&["name", "params", "description"], &rows, all)
            }
            QueryOutcome::Table(table) => {
                let header: Vec<&str> = table.columns.iter().map(String::as_str).collect();
                p.rows(&header, &table.strings(), &table.objects())
            }
        }
    }
}
