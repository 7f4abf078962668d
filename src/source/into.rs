//! `sample --into`: the one command that writes to a database, and only to an empty one.
//!
//! It refuses any database whose target schema already holds a table, view or sequence (Hydra's
//! or anyone else's), creates the Hydra tables from our DDL (schema 80, the C++ runner's era the
//! sample models, or 87), and loads every table in one transaction with `COPY … FROM STDIN (FORMAT csv)`, so a failure leaves the
//! database as it was.

use futures_util::SinkExt;
use polars::prelude::*;

use super::postgres::{Session, connect};
use crate::conninfo::ConnParams;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::output::csv_field;

/// The DDL variants we ship (written from docs/hydra.md §1 and upstream's schema snapshots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ddl {
    V80,
    V87,
}

impl Ddl {
    pub fn sql(self) -> &'static str {
        match self {
            Ddl::V80 => include_str!("ddl/hydra-80.sql"),
            Ddl::V87 => include_str!("ddl/hydra-87.sql"),
        }
    }
}

impl std::str::FromStr for Ddl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "80" => Ok(Ddl::V80),
            "87" => Ok(Ddl::V87),
            _ => Err(format!("schema `{s}` is not one we ship (80 or 87)")),
        }
    }
}

/// Rows loaded per table, in load order.
pub type LoadSummary = Vec<(&'static str, usize)>;

/// How many of the relations found are named when a database is refused: enough to recognise
/// it, few enough for one line.
const NAMED: usize = 3;

/// Refuses a database whose schema the load would create its tables in (the first of the
/// search path, `public` as a rule) holds tables, views or sequences of its own, so that the
/// load never mixes the sample with someone's data or changes their objects (an extension's
/// own tables, such as PostGIS's, do not count). The error names a few of them.
async fn refuse_unless_empty(s: &Session, params: &ConnParams) -> Result<()> {
    let rows = s
        .client
        .query(
            "SELECT current_schema()::text, c.relname::text \
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = current_schema() \
                AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') \
                AND NOT EXISTS (SELECT 1 FROM pg_depend d \
                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid \
                                   AND d.deptype = 'e') \
              ORDER BY c.relname",
            &[],
        )
        .await
        .map_err(|e| s.error("checking that the database is empty", e))?;
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let schema: Option<String> = first.get(0);
    // A name may hold anything a quoted identifier can, a newline too: escaped, it stays one line.
    let names: Vec<String> = rows
        .iter()
        .take(NAMED)
        .map(|r| r.get::<_, String>(1).escape_debug().to_string())
        .collect();
    let more = match rows.len().saturating_sub(NAMED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Err(Error::Exists {
        target: params.redacted(),
        reason: format!(
            "is not empty: schema {} already holds {}{more}; `sample --into` only loads into an \
             empty database (create one with `createdb`)",
            schema.unwrap_or_default(),
            names.join(", ")
        ),
    })
}

/// Loads `ds` into the database at `params`, in tables it creates with `ddl`: the target
/// schema must hold no table, view or sequence ([`refuse_unless_empty`]).
pub async fn load_into(params: &ConnParams, ds: &Dataset, ddl: Ddl) -> Result<LoadSummary> {
    // Loading 1 M steps takes a while; the statement timeout is for analysis reads, not this.
    let s = connect(params, false, std::time::Duration::from_secs(3600)).await?;
    s.client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| s.error("starting the load", e))?;
    // Checked inside the load's transaction, so that nothing can appear between check and load.
    refuse_unless_empty(&s, params).await?;
    s.client
        .batch_execute(ddl.sql())
        .await
        .map_err(|e| s.error("creating the Hydra tables", e))?;
    let mut summary = Vec::new();
    for (table, columns, rows) in tables(ds)? {
        let n = copy_in(&s, table, &columns, rows).await?;
        summary.push((table, n));
    }
    if ds.meta.runner == crate::dataset::Runner::Cpp {
        // The C++ runner keeps its status JSON here; readers take it as a sign of that runner.
        s.client
            .execute(
                "INSERT INTO systemstatus (what, status) VALUES ('queue-runner', $1::text::json)",
                &[&r#"{"status":"up","source":"hydra-bottleneck sample"}"#],
            )
            .await
            .map_err(|e| s.error("writing SystemStatus", e))?;
    }
    // Serial columns continue after the loaded ids, as they would in Hydra.
    s.client
        .batch_execute(
            "SELECT setval(pg_get_serial_sequence('builds', 'id'), coalesce(max(id), 0) + 1, false) FROM builds; \
             SELECT setval(pg_get_serial_sequence('jobsets', 'id'), coalesce(max(id), 0) + 1, false) FROM jobsets; \
             SELECT setval(pg_get_serial_sequence('jobsetevals', 'id'), coalesce(max(id), 0) + 1, false) FROM jobsetevals; \
             COMMIT",
        )
        .await
        .map_err(|e| s.error("finishing the load", e))?;
    Ok(summary)
}

/// One cell source of a Hydra column.
enum Cell {
    /// A frame column, written as it is (booleans as 1/0, Hydra's integer flags).
    Col(&'static str),
    /// The same text in every row.
    Text(String),
    /// Values computed per row.
    Rows(Vec<Option<String>>),
}

type TableLoad = (&'static str, Vec<(&'static str, Cell)>, DataFrame);

/// What to write into each Hydra table, in foreign-key order.
fn tables(ds: &Dataset) -> Result<Vec<TableLoad>> {
    let err = |e: PolarsError| Error::frame("preparing the load", e);
    let projects = ds
        .jobsets
        .select(["project"])
        .and_then(|d| d.unique_stable(None, UniqueKeepStrategy::First, None))
        .map_err(err)?;
    let project_names = str_values(&projects, "project")?;
    let eval_hashes = i64_values(&ds.evals, "id")?
        .iter()
        .map(|id| Some(format!("sample-eval-{}", id.unwrap_or(0))))
        .collect();
    Ok(vec![
        (
            "projects",
            vec![
                ("name", Cell::Col("project")),
                ("displayname", Cell::Rows(project_names.clone())),
                ("owner", Cell::Text("hydra-bottleneck".into())),
            ],
            projects,
        ),
        (
            "jobsets",
            vec![
                ("id", Cell::Col("id")),
                ("project", Cell::Col("project")),
                ("name", Cell::Col("name")),
                ("enabled", Cell::Col("enabled")),
                ("schedulingshares", Cell::Col("scheduling_shares")),
                ("checkinterval", Cell::Col("check_interval")),
                ("emailoverride", Cell::Text(String::new())),
                ("type", Cell::Text("1".into())),
                ("flake", Cell::Text("github:NixOS/nixpkgs".into())),
            ],
            ds.jobsets.clone(),
        ),
        (
            "builds",
            vec![
                ("id", Cell::Col("id")),
                ("finished", Cell::Col("finished")),
                ("timestamp", Cell::Col("timestamp")),
                ("jobset_id", Cell::Col("jobset_id")),
                ("job", Cell::Col("job")),
                ("nixname", Cell::Col("nix_name")),
                ("drvpath", Cell::Col("drv_path")),
                ("system", Cell::Col("system")),
                ("priority", Cell::Col("priority")),
                ("globalpriority", Cell::Col("global_priority")),
                ("starttime", Cell::Col("start_time")),
                ("stoptime", Cell::Col("stop_time")),
                ("iscachedbuild", Cell::Col("is_cached_build")),
                ("buildstatus", Cell::Col("build_status")),
                ("size", Cell::Col("size")),
                ("closuresize", Cell::Col("closure_size")),
            ],
            ds.builds.clone(),
        ),
        (
            "buildsteps",
            vec![
                ("build", Cell::Col("build")),
                ("stepnr", Cell::Col("stepnr")),
                ("type", Cell::Col("type")),
                ("drvpath", Cell::Col("drv_path")),
                ("busy", Cell::Col("busy")),
                ("status", Cell::Col("status")),
                ("starttime", Cell::Col("start_time")),
                ("stoptime", Cell::Col("stop_time")),
                ("machine", Cell::Col("machine")),
                ("system", Cell::Col("system")),
                ("propagatedfrom", Cell::Col("propagated_from")),
                ("overhead", Cell::Col("overhead_ms")),
                ("timesbuilt", Cell::Col("times_built")),
                ("isnondeterministic", Cell::Col("is_non_deterministic")),
            ],
            ds.steps.clone(),
        ),
        (
            "buildstepoutputs",
            vec![
                ("build", Cell::Col("build")),
                ("stepnr", Cell::Col("stepnr")),
                ("name", Cell::Col("name")),
                ("path", Cell::Col("path")),
            ],
            ds.step_outputs.clone(),
        ),
        (
            "jobsetevals",
            vec![
                ("id", Cell::Col("id")),
                ("jobset_id", Cell::Col("jobset_id")),
                ("timestamp", Cell::Col("timestamp")),
                ("checkouttime", Cell::Col("checkout_time")),
                ("evaltime", Cell::Col("eval_time")),
                ("hasnewbuilds", Cell::Col("has_new_builds")),
                ("hash", Cell::Rows(eval_hashes)),
                ("nrbuilds", Cell::Col("nr_builds")),
                ("nrsucceeded", Cell::Col("nr_succeeded")),
            ],
            ds.evals.clone(),
        ),
    ])
}

fn str_values(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let c = df
        .column(name)
        .and_then(|c| c.str().cloned())
        .map_err(|e| Error::frame(name.to_string(), e))?;
    Ok(c.iter().map(|v| v.map(str::to_string)).collect())
}

fn i64_values(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::Int64))
        .map_err(|e| Error::frame(name.to_string(), e))?;
    let ca = c
        .i64()
        .map_err(|e| Error::frame(name.to_string(), e))?
        .clone();
    Ok(ca.iter().collect())
}

/// Rows per COPY chunk sent to the server: big enough to amortise the round trip, small enough
/// to keep the CSV text for one chunk in a few MiB.
const CHUNK_ROWS: usize = 20_000;

async fn copy_in(
    s: &Session,
    table: &'static str,
    columns: &[(&'static str, Cell)],
    df: DataFrame,
) -> Result<usize> {
    let what = format!("loading {table}");
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let sink = s
        .client
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN (FORMAT csv)",
            names.join(", ")
        ))
        .await
        .map_err(|e| s.error(&what, e))?;
    futures_util::pin_mut!(sink);
    let frame_cols: Vec<Option<&Column>> = columns
        .iter()
        .map(|(_, c)| match c {
            Cell::Col(n) => df.column(n).ok(),
            _ => None,
        })
        .collect();
    let mut buf = String::new();
    for row in 0..df.height() {
        for (i, (_, cell)) in columns.iter().enumerate() {
            if i > 0 {
                buf.push(',');
            }
            match cell {
                Cell::Col(name) => {
                    let col = frame_cols[i]
                        .ok_or_else(|| Error::Internal(format!("{what}: no column {name}")))?;
                    let v = col.get(row).map_err(|e| Error::frame(what.clone(), e))?;
                    push_value(&mut buf, &v);
                }
                Cell::Text(t) => buf.push_str(&quote(t)),
                Cell::Rows(v) => {
                    if let Some(t) = &v[row] {
                        buf.push_str(&quote(t));
                    }
                }
            }
        }
        buf.push('\n');
        if (row + 1) % CHUNK_ROWS == 0 {
            sink.send(bytes::Bytes::from(std::mem::take(&mut buf)))
                .await
                .map_err(|e| s.error(&what, e))?;
        }
    }
    if !buf.is_empty() {
        sink.send(bytes::Bytes::from(buf))
            .await
            .map_err(|e| s.error(&what, e))?;
    }
    let n = sink.finish().await.map_err(|e| s.error(&what, e))?;
    Ok(n as usize)
}

/// In COPY's CSV an unquoted empty field is NULL, so every text value is quoted.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn push_value(buf: &mut String, v: &AnyValue<'_>) {
    use std::fmt::Write;
    match v {
        AnyValue::Null => {}
        AnyValue::Boolean(b) => buf.push(if *b { '1' } else { '0' }),
        AnyValue::String(s) => buf.push_str(&quote(s)),
        AnyValue::StringOwned(s) => buf.push_str(&quote(s)),
        AnyValue::Int32(x) => {
            let _ = write!(buf, "{x}");
        }
        AnyValue::Int64(x) => {
            let _ = write!(buf, "{x}");
        }
        other => buf.push_str(&csv_field(&other.to_string())),
    }
}
