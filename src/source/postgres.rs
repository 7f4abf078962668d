//! Reading a Hydra database, strictly read-only.
//!
//! Every session is read-only three times over: the startup options set
//! `default_transaction_read_only=on`, all reads run inside one `REPEATABLE READ READ ONLY`
//! transaction (so the five tables are one consistent snapshot of the history), and the role we
//! are given needs no more than SELECT. Every statement is bounded by `statement_timeout`, and
//! `lock_timeout` keeps us from queueing behind a migration's exclusive lock (which would stall
//! Hydra behind us). The session is named `hydra-bottleneck` in `pg_stat_activity`.
//!
//! Rows arrive through `COPY (SELECT …) TO STDOUT (FORMAT binary)` and are decoded straight into
//! column builders ([`super::pgcopy`]), batch by batch, without a struct per row. The SELECT lists
//! come from the column maps below and the columns the database really has
//! (`information_schema.columns`): a column an older schema lacks is read as NULL.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, pin_mut};
use polars::prelude::DataFrame;
use tokio_postgres::Client;

use super::pgcopy::CopyDecoder;
use super::tls;
use crate::conninfo::{ConnParams, SslMode};
use crate::dataset::{
    BUILDS, Dataset, DatasetMeta, EVALS, JOBSETS, Omit, Origin, Runner, STEP_OUTPUTS, STEPS,
    TableDef,
};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::window::{Window, WindowSpec};

/// Rows per finished batch: large enough that per-batch work vanishes, small enough that the
/// builders' growth never doubles a large allocation (64 Ki rows of steps is ~10 MiB).
pub const BATCH_ROWS: usize = 1 << 16;

/// How the reader behaves.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub window: WindowSpec,
    /// The runner the user named; otherwise it is detected.
    pub runner: Option<Runner>,
    /// Bound on every statement. A month of hydra.nixos.org steps is a few million rows, which
    /// COPY streams in well under a minute; 15 minutes leaves room for a cold cache.
    pub statement_timeout: Duration,
    pub progress: Progress,
    /// Columns the command never reads: not fetched, and null in the dataset.
    pub omit: Omit,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            window: WindowSpec::default(),
            runner: None,
            statement_timeout: Duration::from_secs(15 * 60),
            progress: Progress::hidden(),
            omit: &[],
        }
    }
}

/// How long to wait for a lock before giving up: a plain read only waits when someone holds an
/// ACCESS EXCLUSIVE lock (a migration), and waiting would queue Hydra's own queries behind us.
const LOCK_TIMEOUT_MS: u64 = 10_000;

/// A connected, read-only session.
pub struct Session {
    pub client: Client,
    pub params: ConnParams,
    /// The connection task's error, if it ended with one (the client only sees "closed").
    conn_error: Arc<Mutex<Option<String>>>,
}

impl Session {
    /// The server's clock, unix seconds: relative windows count back from it, not from ours.
    pub async fn now(&self) -> Result<i64> {
        Ok(self
            .client
            .query_one("SELECT extract(epoch FROM now())::int8", &[])
            .await
            .map_err(|e| self.error("reading the server's clock", e))?
            .get(0))
    }

    /// Explains a failed query, adding why the connection died when it did.
    pub fn error(&self, what: &str, e: tokio_postgres::Error) -> Error {
        let mut reason = pg_reason(&e);
        if let Ok(guard) = self.conn_error.lock()
            && let Some(c) = guard.as_ref()
        {
            reason = format!("{reason} ({c})");
        }
        Error::Database {
            what: what.into(),
            reason,
        }
    }
}

/// One line for a tokio-postgres error: the server's message (with its detail and hint) or the
/// client-side cause chain. Connection parameters are never part of it.
pub fn pg_reason(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

/// Opens a session. `read_only` is false only for `sample --into`, the one writer.
pub async fn connect(
    params: &ConnParams,
    read_only: bool,
    statement_timeout: Duration,
) -> Result<Session> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&params.host)
        .port(params.port)
        .user(&params.user)
        .dbname(&params.dbname)
        .application_name("hydra-bottleneck");
    if let Some(pw) = &params.password {
        cfg.password(pw.expose());
    }
    if let Some(t) = params.connect_timeout {
        cfg.connect_timeout(t);
    }
    let mut options = format!(
        "-c statement_timeout={} -c lock_timeout={LOCK_TIMEOUT_MS}",
        statement_timeout.as_millis()
    );
    if read_only {
        options.push_str(" -c default_transaction_read_only=on");
    }
    cfg.options(&options);
    let target = params.redacted();
    let connect_err = |e: tokio_postgres::Error| Error::Connect {
        target: target.clone(),
        reason: pg_reason(&e),
    };
    let conn_error = Arc::new(Mutex::new(None));
    let client = if params.is_unix_socket() || params.sslmode == SslMode::Disable {
        cfg.ssl_mode(tokio_postgres::config::SslMode::Disable);
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(connect_err)?;
        spawn_connection(conn, conn_error.clone());
        client
    } else {
        cfg.ssl_mode(match params.sslmode {
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let tls = tls::connector(params)?;
        let (client, conn) = cfg.connect(tls).await.map_err(connect_err)?;
        spawn_connection(conn, conn_error.clone());
        client
    };
    let session = Session {
        client,
        params: params.clone(),
        conn_error,
    };
    if read_only {
        // Belt and braces: refuse to go on if the session is somehow not read-only.
        let row = session
            .client
            .query_one("SHOW default_transaction_read_only", &[])
            .await
            .map_err(|e| session.error("checking read-only mode", e))?;
        let value: String = row.get(0);
        if value != "on" {
            return Err(Error::Schema(format!(
                "the session is not read-only (default_transaction_read_only = {value}); refusing to read"
            )));
        }
    }
    Ok(session)
}

fn spawn_connection<S, T>(conn: tokio_postgres::Connection<S, T>, slot: Arc<Mutex<Option<String>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await
            && let Ok(mut s) = slot.lock()
        {
            *s = Some(pg_reason(&e));
        }
    });
}

/// What the database looks like: its schema version and the columns of the tables we read.
#[derive(Debug, Clone)]
pub struct SchemaInfo {
    pub version: Option<i32>,
    columns: HashMap<String, HashSet<String>>,
    /// True when SystemStatus holds a `queue-runner` row (written by the C++ runner and by the
    /// earliest Rust runner, removed in NixOS/hydra#1706).
    pub has_cpp_status_row: bool,
}

impl SchemaInfo {
    pub fn has_table(&self, table: &str) -> bool {
        self.columns.contains_key(table)
    }

    pub fn has(&self, table: &str, column: &str) -> bool {
        self.columns
            .get(table)
            .is_some_and(|cols| cols.contains(column))
    }
}

/// The Hydra tables (lower case, as PostgreSQL folds them) without which nothing can be read.
const REQUIRED_TABLES: [&str; 3] = ["builds", "buildsteps", "jobsets"];

pub async fn inspect(s: &Session) -> Result<SchemaInfo> {
    let rows = s
        .client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = ANY (current_schemas(false)) \
             AND table_name IN ('schemaversion', 'builds', 'buildsteps', 'buildstepoutputs', \
                                'jobsets', 'jobsetevals', 'systemstatus')",
            &[],
        )
        .await
        .map_err(|e| s.error("reading information_schema.columns", e))?;
    let mut columns: HashMap<String, HashSet<String>> = HashMap::new();
    for row in rows {
        columns
            .entry(row.get::<_, String>(0))
            .or_default()
            .insert(row.get(1));
    }
    let missing: Vec<&str> = REQUIRED_TABLES
        .into_iter()
        .filter(|t| !columns.contains_key(*t))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Schema(format!(
            "{}: table {} is missing or this role may not read it (is this a Hydra database? \
             GRANT SELECT ON {} TO the role)",
            s.params.redacted(),
            missing.join(", "),
            missing.join(", ")
        )));
    }
    let version = if columns.contains_key("schemaversion") {
        let row = s
            .client
            .query_opt("SELECT version::int4 FROM schemaversion LIMIT 1", &[])
            .await
            .map_err(|e| s.error("reading SchemaVersion", e))?;
        row.map(|r| r.get::<_, i32>(0))
    } else {
        None
    };
    let has_cpp_status_row = if columns.contains_key("systemstatus") {
        s.client
            .query_opt(
                "SELECT 1 FROM systemstatus WHERE what = 'queue-runner'",
                &[],
            )
            .await
            .map(|r| r.is_some())
            // A role without SELECT on SystemStatus loses only this hint.
            .unwrap_or(false)
    } else {
        false
    };
    Ok(SchemaInfo {
        version,
        columns,
        has_cpp_status_row,
    })
}

/// Decides which queue runner wrote the steps, and says on what evidence.
///
/// The Rust runner needed schema 85 or later and was the only runner left by the time schema 86
/// landed (NixOS/hydra#1826, July 2026); the C++ runner never ran past 85. So ≤ 84 is the C++
/// runner for certain, ≥ 86 the Rust runner, and 85 is ambiguous: there a `queue-runner` row in
/// SystemStatus points to the C++ runner (the Rust runner stopped writing it in #1706), but only
/// `--runner` settles it.
pub fn detect_runner(info: &SchemaInfo) -> (Runner, String) {
    match info.version {
        Some(v) if v <= 84 => (
            Runner::Cpp,
            format!("schema version {v} predates the Rust queue runner (85+)"),
        ),
        Some(v) if v >= 86 => (
            Runner::Rust,
            format!("schema version {v} postdates the C++ queue runner (last on 85)"),
        ),
        Some(v) if info.has_cpp_status_row => (
            Runner::Cpp,
            format!(
                "schema version {v} fits both runners; SystemStatus has a `queue-runner` row, as the \
                 C++ runner writes (an estimate: pass --runner to be sure)"
            ),
        ),
        Some(v) => (
            Runner::Rust,
            format!(
                "schema version {v} fits both runners; no `queue-runner` row in SystemStatus \
                 (an estimate: pass --runner to be sure)"
            ),
        ),
        None => (
            Runner::Cpp,
            "no SchemaVersion; assumed the C++ runner of older Hydras (pass --runner to be sure)"
                .into(),
        ),
    }
}

/// Where each of our columns comes from: (table alias, Hydra column, SQL template with `{}` for
/// the qualified column). The template casts to the one type the decoder expects, which also
/// absorbs schema 88's move of times from integer to bigint.
type ColumnMap = [(&'static str, &'static str, &'static str)];

const STEPS_MAP: &ColumnMap = &[
    ("s", "build", "{}::int4"),
    ("s", "stepnr", "{}::int4"),
    ("s", "type", "{}::int4"),
    ("s", "drvpath", "{}::text"),
    ("s", "busy", "{}::int4"),
    ("s", "status", "{}::int4"),
    ("s", "starttime", "{}::int8"),
    ("s", "stoptime", "{}::int8"),
    ("s", "machine", "{}::text"),
    ("s", "system", "{}::text"),
    ("s", "propagatedfrom", "{}::int4"),
    ("s", "overhead", "{}::int8"),
    ("s", "timesbuilt", "{}::int4"),
    ("s", "isnondeterministic", "{}::bool"),
];

const BUILDS_MAP: &ColumnMap = &[
    ("b", "id", "{}::int4"),
    ("b", "jobset_id", "{}::int4"),
    ("j", "project", "{}::text"),
    ("j", "name", "{}::text"),
    ("b", "job", "{}::text"),
    ("b", "system", "{}::text"),
    ("b", "nixname", "{}::text"),
    ("b", "timestamp", "{}::int8"),
    ("b", "starttime", "{}::int8"),
    ("b", "stoptime", "{}::int8"),
    ("b", "finished", "({} = 1)"),
    ("b", "buildstatus", "{}::int4"),
    ("b", "iscachedbuild", "({} = 1)"),
    ("b", "priority", "{}::int4"),
    ("b", "globalpriority", "{}::int4"),
    ("b", "size", "{}::int8"),
    ("b", "closuresize", "{}::int8"),
    ("b", "drvpath", "{}::text"),
];

const STEP_OUTPUTS_MAP: &ColumnMap = &[
    ("o", "build", "{}::int4"),
    ("o", "stepnr", "{}::int4"),
    ("o", "name", "{}::text"),
    ("o", "path", "{}::text"),
];

const JOBSETS_MAP: &ColumnMap = &[
    ("j", "id", "{}::int4"),
    ("j", "project", "{}::text"),
    ("j", "name", "{}::text"),
    ("j", "enabled", "{}::int4"),
    ("j", "schedulingshares", "{}::int4"),
    ("j", "checkinterval", "{}::int4"),
];

const EVALS_MAP: &ColumnMap = &[
    ("e", "id", "{}::int4"),
    ("e", "jobset_id", "{}::int4"),
    ("e", "timestamp", "{}::int8"),
    ("e", "checkouttime", "{}::int8"),
    ("e", "evaltime", "{}::int8"),
    ("e", "hasnewbuilds", "({} = 1)"),
    ("e", "nrbuilds", "{}::int4"),
    ("e", "nrsucceeded", "{}::int4"),
];

fn alias_table(alias: &str) -> &'static str {
    match alias {
        "s" => "buildsteps",
        "b" => "builds",
        "o" => "buildstepoutputs",
        "j" => "jobsets",
        "e" => "jobsetevals",
        _ => unreachable!("unknown alias {alias}"),
    }
}

/// The SELECT list for `def` from `map`: each column as mapped, or a typed NULL where the
/// database lacks the Hydra column or the command omits it.
fn select_list(def: &TableDef, map: &ColumnMap, info: &SchemaInfo, omit: Omit) -> String {
    let kept = def.kept(omit);
    def.columns
        .iter()
        .zip(map)
        .map(|(c, (alias, hydra, template))| {
            if kept.contains(&c.name) && info.has(alias_table(alias), hydra) {
                template.replace("{}", &format!("{alias}.{hydra}"))
            } else {
                let ty = match c.ty {
                    crate::dataset::ColType::I32 => "int4",
                    crate::dataset::ColType::I64 => "int8",
                    crate::dataset::ColType::Bool => "bool",
                    crate::dataset::ColType::Str => "text",
                };
                format!("NULL::{ty}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The five SELECTs for a window, given what the schema has.
pub fn queries(info: &SchemaInfo, w: &Window, omit: Omit) -> Vec<(&'static TableDef, String)> {
    let step_cond = w.step_sql("s");
    let bounded = w.since.is_some() || w.until.is_some();
    let steps = format!(
        "SELECT {} FROM buildsteps s WHERE {step_cond}",
        select_list(&STEPS, STEPS_MAP, info, omit)
    );
    let build_cond = if bounded {
        format!(
            "{} OR b.id IN (SELECT s.build FROM buildsteps s WHERE {step_cond})",
            w.time_sql("b.timestamp")
        )
    } else {
        "TRUE".into()
    };
    // Schemas before 80 named a build's jobset by (project, jobset) text columns.
    let join = if info.has("builds", "jobset_id") {
        "j.id = b.jobset_id"
    } else if info.has("builds", "project") && info.has("builds", "jobset") {
        "j.project = b.project AND j.name = b.jobset"
    } else {
        "FALSE"
    };
    let builds = format!(
        "SELECT {} FROM builds b LEFT JOIN jobsets j ON {join} WHERE {build_cond}",
        select_list(&BUILDS, BUILDS_MAP, info, omit)
    );
    let outputs = if !info.has_table("buildstepoutputs") {
        None
    } else if bounded {
        Some(format!(
            "SELECT {} FROM buildstepoutputs o WHERE (o.build, o.stepnr) IN \
             (SELECT s.build, s.stepnr FROM buildsteps s WHERE {step_cond})",
            select_list(&STEP_OUTPUTS, STEP_OUTPUTS_MAP, info, omit)
        ))
    } else {
        Some(format!(
            "SELECT {} FROM buildstepoutputs o",
            select_list(&STEP_OUTPUTS, STEP_OUTPUTS_MAP, info, omit)
        ))
    };
    let jobsets = format!(
        "SELECT {} FROM jobsets j",
        select_list(&JOBSETS, JOBSETS_MAP, info, omit)
    );
    let evals = info.has_table("jobsetevals").then(|| {
        format!(
            "SELECT {} FROM jobsetevals e WHERE {}",
            select_list(&EVALS, EVALS_MAP, info, omit),
            w.time_sql("e.timestamp")
        )
    });
    let mut out = vec![(&STEPS, steps), (&BUILDS, builds)];
    out.extend(outputs.map(|q| (&STEP_OUTPUTS, q)));
    out.push((&JOBSETS, jobsets));
    out.extend(evals.map(|q| (&EVALS, q)));
    out
}

/// Streams one SELECT through binary COPY into a frame.
pub async fn copy_frame(
    s: &Session,
    def: &'static TableDef,
    select: &str,
    progress: &Progress,
    omit: Omit,
) -> Result<DataFrame> {
    let what = format!("reading {}", def.name);
    let stream = s
        .client
        .copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
        .await
        .map_err(|e| s.error(&what, e))?;
    pin_mut!(stream);
    let bar = progress.rows(&what);
    let mut decoder = CopyDecoder::omitting(def, BATCH_ROWS, omit);
    let mut last = 0;
    while let Some(chunk) = stream.next().await {
        // A safe point: dropping the stream and the session ends the COPY on the server.
        crate::interrupt::check()?;
        let chunk = chunk.map_err(|e| s.error(&what, e))?;
        decoder.feed(&chunk).map_err(|reason| Error::Database {
            what: what.clone(),
            reason,
        })?;
        let rows = decoder.rows();
        // Touching the bar costs an atomic or two; once per thousand rows is plenty.
        if rows - last >= 1024 {
            bar.set_position(rows as u64);
            last = rows;
        }
    }
    bar.finish_and_clear();
    decoder
        .finish()
        .map_err(|reason| Error::Database { what, reason })
}

/// The async runtime every database operation runs on: one thread, which reads the socket
/// and decodes the rows by turns. With the connection on a worker thread of its own, every
/// batch of messages woke the other thread, and on two cores (the server's backend busy on
/// one) the switching cost more than the decoding: `cargo bench --bench ingest` read a million
/// steps in 1.60 s that way, 0.92 s this way (0.87 s to read and discard the same COPY).
///
/// Polars' lazy engine may not run on it (it blocks in place, which a one-thread runtime
/// forbids): frames are finished once `block_on` has returned.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Reads the history in `opts.window` from the database at `params`, each table in the order
/// the server sent it ([`super::load`] sorts them).
pub async fn read(params: &ConnParams, opts: &ReadOptions) -> Result<Dataset> {
    let s = connect(params, true, opts.statement_timeout).await?;
    let info = inspect(&s).await?;
    let (runner, runner_basis) = match opts.runner {
        Some(r) => (r, "given with --runner".to_string()),
        None => detect_runner(&info),
    };
    let now = s.now().await?;
    let window = opts.window.resolve(now).map_err(Error::Invalid)?;
    for (table, what) in [
        ("buildstepoutputs", "step outputs"),
        ("jobsetevals", "evaluations"),
    ] {
        if !info.has_table(table) {
            tracing::warn!(
                "table {table} is missing or this role may not read it: no {what} will be read"
            );
        }
    }
    s.client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| s.error("starting a read-only transaction", e))?;
    let mut frames: HashMap<&'static str, DataFrame> = HashMap::new();
    for (def, select) in queries(&info, &window, opts.omit) {
        let df = copy_frame(&s, def, &select, &opts.progress, opts.omit).await?;
        frames.insert(def.name, df);
    }
    s.client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| s.error("ending the read-only transaction", e))?;
    let mut take = |def: &TableDef| frames.remove(def.name).unwrap_or_else(|| def.empty());
    let ds = Dataset {
        steps: take(&STEPS),
        builds: take(&BUILDS),
        step_outputs: take(&STEP_OUTPUTS),
        jobsets: take(&JOBSETS),
        evals: take(&EVALS),
        truth: None,
        machines: None,
        meta: DatasetMeta {
            origin: Origin::Postgres {
                conninfo: params.redacted(),
            },
            schema_version: info.version,
            runner,
            runner_basis,
            window,
            window_note: None,
        },
    };
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_map_covers_its_table() {
        for (def, map) in [
            (&STEPS, STEPS_MAP),
            (&BUILDS, BUILDS_MAP),
            (&STEP_OUTPUTS, STEP_OUTPUTS_MAP),
            (&JOBSETS, JOBSETS_MAP),
            (&EVALS, EVALS_MAP),
        ] {
            assert_eq!(def.columns.len(), map.len(), "{}", def.name);
        }
    }

    #[test]
    fn runner_detection_follows_the_schema_history() {
        let info = |v, row| SchemaInfo {
            version: v,
            columns: HashMap::new(),
            has_cpp_status_row: row,
        };
        assert_eq!(detect_runner(&info(Some(80), false)).0, Runner::Cpp);
        assert_eq!(detect_runner(&info(Some(87), true)).0, Runner::Rust);
        assert_eq!(detect_runner(&info(Some(85), true)).0, Runner::Cpp);
        assert_eq!(detect_runner(&info(Some(85), false)).0, Runner::Rust);
        assert!(detect_runner(&info(Some(85), false)).1.contains("estimate"));
    }

    #[test]
    fn missing_columns_read_as_typed_nulls() {
        let mut columns = HashMap::new();
        columns.insert(
            "buildsteps".to_string(),
            STEPS_MAP
                .iter()
                .map(|(_, c, _)| c.to_string())
                .filter(|c| c != "overhead")
                .collect(),
        );
        let info = SchemaInfo {
            version: Some(40),
            columns,
            has_cpp_status_row: false,
        };
        let list = select_list(&STEPS, STEPS_MAP, &info, &[]);
        assert!(list.contains("NULL::int8"));
        assert!(list.contains("s.starttime::int8"));
    }
}
