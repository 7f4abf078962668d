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
//! (`information_schema.columns`): a column an older schema lacks is read as NULL, and one it
//! has that we do not know (another line of development's, such as `JobsetEvals.eval_build`)
//! is not asked for.
//!
//! Store paths become one value per path here, whatever form their row holds them in
//! ([`store_path_sql`]): from schema 89 a row may hold the basename with its `storeDir`
//! beside it, or (until `hydra-backfill-store-dirs` has reached it) the full path with a null
//! `storeDir`; every frame holds the full path.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use polars::prelude::DataFrame;
use tokio_postgres::Client;

use super::pgcopy::CopyDecoder;
use super::tls;
use crate::conninfo::{ConnParams, Secret, SslMode};
use crate::dataset::{BUILDS, EVALS, JOBSETS, Omit, Runner, STEP_OUTPUTS, STEPS, TableDef};
use crate::error::{Error, PgFailure, Result};
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
    /// With `runner`: the switch to the Rust runner the user named (`--runner rust@TIME`).
    pub runner_switch: Option<i64>,
    /// Bound on every statement. A month of hydra.nixos.org steps is a few million rows, which
    /// COPY streams in well under a minute; 15 minutes leaves room for a cold cache.
    pub statement_timeout: Duration,
    pub progress: Progress,
    /// Columns the command never reads: not fetched, and null in the dataset.
    pub omit: Omit,
    /// Only the tables: a snapshot's derivation graph and the runner's series it carries are not
    /// read (`query` asks the tables; findings other than the ledger use neither).
    pub tables_only: bool,
    /// Also read the sample's ground truth where the source has one (a snapshot of the sample,
    /// the sample itself); a question that does not use it need not decode it.
    pub truth: bool,
    /// What to leave unread instead of `omit` where the source has the ground truth and
    /// `truth` asks for it: a finding that takes from the truth what the tables would
    /// otherwise give (`analysis::Need::omit_with_truth`).
    pub omit_with_truth: Option<Omit>,
    /// The most rows of a read handed on at once ([`super::chunked::CHUNK_ROWS`]); tests make
    /// it small, so that a small history's ranges are cut in several chunks.
    pub chunk_rows: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            window: WindowSpec::default(),
            runner: None,
            runner_switch: None,
            statement_timeout: Duration::from_secs(15 * 60),
            progress: Progress::hidden(),
            omit: &[],
            tables_only: false,
            truth: true,
            omit_with_truth: None,
            chunk_rows: super::chunked::CHUNK_ROWS,
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
    /// What the role we are connected as may do beyond reading (read-only sessions only).
    pub role: Option<RolePowers>,
    /// The schema holding Hydra's tables, as a quoted identifier (read-only sessions only).
    pub hydra_schema: Option<HydraSchema>,
}

/// The built-in roles whose members act outside any transaction: their powers are what a
/// read-only transaction cannot take away (PostgreSQL's "predefined roles").
const POWERFUL_ROLES: [&str; 4] = [
    "pg_execute_server_program",
    "pg_write_server_files",
    "pg_read_server_files",
    "pg_signal_backend",
];

/// The role a session runs as, and what it may do that a reader should not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePowers {
    pub name: String,
    pub superuser: bool,
    /// CREATEROLE can grant itself the powerful roles, so it counts as one (PostgreSQL's docs
    /// call such a role "almost a superuser").
    pub createrole: bool,
    /// Row-level security policies do not apply to it.
    pub bypassrls: bool,
    /// The members of [`POWERFUL_ROLES`] it belongs to.
    pub member_of: Vec<String>,
}

impl RolePowers {
    pub fn is_privileged(&self) -> bool {
        self.superuser || self.createrole || !self.member_of.is_empty()
    }

    /// "role x is a member of pg_signal_backend" — what makes it privileged (a superuser is
    /// a member of every role, so that is all it says of one).
    pub fn describe(&self) -> String {
        if self.superuser {
            return format!("role {} is a superuser", self.name);
        }
        let mut what = Vec::new();
        if self.createrole {
            what.push("allowed to CREATEROLE".to_string());
        }
        if !self.member_of.is_empty() {
            what.push(format!("a member of {}", self.member_of.join(", ")));
        }
        format!("role {} is {}", self.name, what.join(", "))
    }
}

/// Where Hydra's tables are: a schema, checked to hold tables (not views) under our names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HydraSchema {
    /// The schema's name as PostgreSQL stores it.
    pub name: String,
    /// The same, quoted for splicing into SQL (`"public"`).
    pub ident: String,
}

impl HydraSchema {
    /// `"schema".table`: every table we read is named with its schema.
    pub fn qualify(&self, table: &str) -> String {
        format!("{}.{table}", self.ident)
    }
}

/// Quotes an identifier as PostgreSQL's quote_ident does (always, to be simple and safe).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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
            source: PgFailure::driver(reason, e),
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

/// Whether a connection failed because the server asked for a password and none was given
/// (tokio-postgres says so only in its message; its error kinds are private).
fn password_missing(e: &tokio_postgres::Error) -> bool {
    std::error::Error::source(e).is_some_and(|c| c.to_string() == "password missing")
}

/// Opens a session. `read_only` is false only for `sample --into`, the one writer.
///
/// Without a password, the password file is read only if the server asks for one:
/// tokio-postgres takes the password before connecting and cannot ask for it later, so the
/// first attempt goes without, and only on the server's demand is the file read and the
/// connection made again with what it holds. A server that trusts the client (a unix socket
/// with peer authentication, the usual way to a local Hydra) never causes the file to be read,
/// and one that asks costs one more connection attempt.
pub async fn connect(
    params: &ConnParams,
    read_only: bool,
    statement_timeout: Duration,
) -> Result<Session> {
    let target = params.redacted();
    let connect_err = |e: tokio_postgres::Error| Error::Connect {
        target: target.clone(),
        source: PgFailure::driver(pg_reason(&e), e),
    };
    let conn_error = Arc::new(Mutex::new(None));
    let tls = if params.is_unix_socket() || params.sslmode == SslMode::Disable {
        None
    } else {
        Some(tls::connector(params)?)
    };
    let attempt = |password| {
        open(
            params,
            password,
            tls.clone(),
            read_only,
            statement_timeout,
            &conn_error,
        )
    };
    let client = match attempt(None).await {
        Ok(client) => client,
        Err(e) if params.password.is_none() && password_missing(&e) => {
            let password = params.password_from_file().map_err(|why| Error::Connect {
                target: target.clone(),
                source: PgFailure::reason(format!(
                    "the server asks for a password and none was given: {why}"
                )),
            })?;
            attempt(Some(&password)).await.map_err(connect_err)?
        }
        Err(e) => return Err(connect_err(e)),
    };
    let mut session = Session {
        client,
        params: params.clone(),
        conn_error,
        role: None,
        hydra_schema: None,
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
            return Err(Error::refused(
                "database",
                format!(
                    "the session is not read-only (default_transaction_read_only = {value}); refusing to read"
                ),
            ));
        }
        let role = role_powers(&session).await?;
        if role.is_privileged() {
            warn_privileged_once(&role);
        }
        session.hydra_schema = Some(locate_hydra_schema(&session, &role).await?);
        session.role = Some(role);
    }
    Ok(session)
}

/// Reads what the session's role may do beyond reading.
async fn role_powers(s: &Session) -> Result<RolePowers> {
    let row = s
        .client
        .query_one(
            "SELECT r.rolname::text, r.rolsuper, r.rolcreaterole, r.rolbypassrls, \
                    ARRAY(SELECT p.rolname::text FROM pg_catalog.pg_roles p \
                          WHERE p.rolname = ANY ($1) \
                          AND pg_catalog.pg_has_role(r.oid, p.oid, 'MEMBER') ORDER BY 1) \
             FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
            &[&POWERFUL_ROLES.as_slice()],
        )
        .await
        .map_err(|e| s.error("reading the role's attributes", e))?;
    Ok(RolePowers {
        name: row.get(0),
        superuser: row.get(1),
        createrole: row.get(2),
        bypassrls: row.get(3),
        member_of: row.get(4),
    })
}

/// Says once per process that a read-only role is recommended (several sessions may open).
fn warn_privileged_once(role: &RolePowers) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        tracing::warn!(
            "{}: a role that can only read is recommended (README: \"Pointing it at a real Hydra\")",
            role.describe()
        );
    });
}

/// The tables of Hydra we read, lower case as PostgreSQL folds them.
pub const HYDRA_TABLES: [&str; 7] = [
    "schemaversion",
    "builds",
    "buildsteps",
    "buildstepoutputs",
    "jobsets",
    "jobsetevals",
    "systemstatus",
];

/// Finds the schema holding Hydra's tables — `public` as Hydra creates it, else the one schema
/// that has a `buildsteps` — and refuses a view, or anything else that is not a table, under a
/// Hydra table's name there: a view runs its owner's code as whoever reads it, and reads what
/// its owner likes.
///
/// Row-level security is the other way a table can run code as its reader: a policy's
/// expression is evaluated as the role reading. Under a role that can only read that is
/// harmless (and a DBA may use policies to hide projects from it); under a privileged role
/// that policies apply to (not a superuser, not BYPASSRLS) it is refused, naming the table.
async fn locate_hydra_schema(s: &Session, role: &RolePowers) -> Result<HydraSchema> {
    let rows = s
        .client
        .query(
            "SELECT n.nspname::text, c.relname::text, c.relkind::text, c.relrowsecurity \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = ANY ($1) \
             AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
             ORDER BY 1, 2",
            &[&HYDRA_TABLES.as_slice()],
        )
        .await
        .map_err(|e| s.error("locating Hydra's tables", e))?;
    let found: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let with_policies: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.get::<_, bool>(3))
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let with_steps: Vec<&str> = found
        .iter()
        .filter(|(_, t, _)| t == "buildsteps")
        .map(|(n, _, _)| n.as_str())
        .collect();
    let name = if with_steps.contains(&"public") || with_steps.is_empty() {
        "public".to_string()
    } else if let [one] = with_steps.as_slice() {
        one.to_string()
    } else {
        return Err(Error::Schema(format!(
            "Hydra's tables are in several schemas ({}), none of them public: which one is \
             Hydra's cannot be told",
            with_steps.join(", ")
        )));
    };
    for (_, table, kind) in found.iter().filter(|(n, _, _)| *n == name) {
        // r: ordinary table, p: partitioned table. Anything else (v view, m materialized view,
        // f foreign table) is not what Hydra creates.
        if kind != "r" && kind != "p" {
            let what = match kind.as_str() {
                "v" => "a view",
                "m" => "a materialized view",
                "f" => "a foreign table",
                _ => "not a table",
            };
            return Err(Error::refused(
                "database",
                format!(
                    "{name}.{table} is {what}, not a table as Hydra creates it: refusing to read it \
                 (a view runs its owner's code as the role reading it)"
                ),
            ));
        }
    }
    if role.is_privileged()
        && !role.superuser
        && !role.bypassrls
        && let Some((_, table)) = with_policies.iter().find(|(n, _)| *n == name)
    {
        return Err(Error::refused(
            "database",
            format!(
                "{name}.{table} has row-level security, whose policies run as the role reading: \
             refusing to read it as a privileged role ({}); connect as a role that can only read",
                role.describe()
            ),
        ));
    }
    Ok(HydraSchema {
        ident: quote_ident(&name),
        name,
    })
}

impl Session {
    /// The schema of Hydra's tables (a read-only session always has one).
    pub fn schema(&self) -> Result<&HydraSchema> {
        self.hydra_schema
            .as_ref()
            .ok_or_else(|| Error::Schema("the session has no Hydra schema".into()))
    }

    /// Puts the Hydra schema on the path after pg_catalog, for SQL that names Hydra's tables
    /// unqualified (the named queries, ad-hoc SQL). A function or operator there under a
    /// built-in's name can still win over the built-in when its argument types match better
    /// (PostgreSQL resolves overloads across the whole path), so under a privileged role such
    /// an overload is refused, naming it. Only code the schema's owner could have written
    /// counts: a function in C or `internal` was made by a superuser, and an operator that an
    /// installed extension made is the extension's (upstream's `hydra.sql` creates pg_trgm in
    /// Hydra's schema, with its `%` and `<->`). An operator the owner made by hand counts even
    /// over a built-in C function: `=` on text mapped to `textne` is one line of SQL.
    pub async fn with_hydra_schema_on_path(&self) -> Result<()> {
        let schema = self.schema()?;
        if self.role.as_ref().is_some_and(RolePowers::is_privileged) {
            let rows = self
                .client
                .query(
                    "SELECT DISTINCT p.proname::text FROM pg_catalog.pg_proc p \
                     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
                     JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
                     WHERE n.nspname = $1 AND l.lanname NOT IN ('c', 'internal') \
                     AND EXISTS (SELECT 1 FROM pg_catalog.pg_proc b \
                       WHERE b.pronamespace = 'pg_catalog'::pg_catalog.regnamespace \
                       AND b.proname = p.proname) \
                     UNION SELECT DISTINCT o.oprname::text FROM pg_catalog.pg_operator o \
                     JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace \
                     WHERE n.nspname = $1 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
                       WHERE d.classid = 'pg_catalog.pg_operator'::pg_catalog.regclass \
                       AND d.objid = o.oid AND d.deptype = 'e') \
                     ORDER BY 1 LIMIT 5",
                    &[&schema.name],
                )
                .await
                .map_err(|e| self.error("checking the Hydra schema's functions", e))?;
            let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            if !names.is_empty() {
                return Err(Error::refused(
                    "database",
                    format!(
                        "schema {} defines {} under the name of a built-in: refusing to run SQL \
                     there as a privileged role (it could be called instead of the built-in)",
                        schema.name,
                        names.join(", ")
                    ),
                ));
            }
        }
        self.client
            .query_one(
                "SELECT pg_catalog.set_config('search_path', $1, false)",
                &[&format!("pg_catalog, {}, pg_temp", schema.ident)],
            )
            .await
            .map_err(|e| self.error("setting the search path", e))?;
        Ok(())
    }
}

/// One connection attempt; `password` overrides the one in `params` (from the password file),
/// `tls` is the connector unless the connection goes without TLS.
async fn open(
    params: &ConnParams,
    password: Option<&Secret>,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    read_only: bool,
    statement_timeout: Duration,
    conn_error: &Arc<Mutex<Option<String>>>,
) -> Result<Client, tokio_postgres::Error> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&params.host)
        .port(params.port)
        .user(&params.user)
        .dbname(&params.dbname)
        .application_name("hydra-bottleneck");
    if let Some(pw) = password.or(params.password.as_ref()) {
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
        // pg_catalog first and nothing another role can write to: unqualified names in our own
        // statements can only mean the built-ins, whatever schemas the database owner made
        // (a schema named after our role is on the default path, "$user", public). The Hydra
        // schema is added to the path only for `query` (`Session::with_hydra_schema_on_path`).
        // standard_conforming_strings is pinned so the server reads string literals as the
        // statement check parsed them (`query::guard`).
        options.push_str(
            " -c default_transaction_read_only=on -c search_path=pg_catalog,pg_temp \
             -c standard_conforming_strings=on",
        );
    }
    cfg.options(&options);
    match tls {
        None => {
            cfg.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
            spawn_connection(conn, conn_error.clone());
            Ok(client)
        }
        Some(tls) => {
            cfg.ssl_mode(match params.sslmode {
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
            let (client, conn) = cfg.connect(tls).await?;
            spawn_connection(conn, conn_error.clone());
            Ok(client)
        }
    }
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
    /// Where the tables are; every name in our SELECTs is qualified with it.
    pub schema: HydraSchema,
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
    let schema = s.schema()?.clone();
    let rows = s
        .client
        .query(
            "SELECT table_name::text, column_name::text, udt_schema::text, udt_name::text \
             FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = ANY ($2)",
            &[&schema.name, &HYDRA_TABLES.as_slice()],
        )
        .await
        .map_err(|e| s.error("reading information_schema.columns", e))?;
    let mut columns: HashMap<String, HashSet<String>> = HashMap::new();
    for row in rows {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        // A column of a type someone made converts through their functions (its output
        // function, a cast), which run as the role reading: only built-in types are read.
        let udt_schema: String = row.get(2);
        if udt_schema != "pg_catalog" && is_read(&table, &column) {
            return Err(Error::refused(
                "database",
                format!(
                    "{}.{table}.{column} has type {udt_schema}.{}, not a built-in type as Hydra \
                 creates it: refusing to read it (its conversions run the type owner's code)",
                    schema.name,
                    row.get::<_, String>(3)
                ),
            ));
        }
        columns.entry(table).or_default().insert(column);
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
            .query_opt(
                &format!(
                    "SELECT version::int4 FROM {} LIMIT 1",
                    schema.qualify("schemaversion")
                ),
                &[],
            )
            .await
            .map_err(|e| s.error("reading SchemaVersion", e))?;
        row.map(|r| r.get::<_, i32>(0))
    } else {
        None
    };
    let has_cpp_status_row = if columns.contains_key("systemstatus") {
        s.client
            .query_opt(
                &format!(
                    "SELECT 1 FROM {} WHERE what = 'queue-runner'",
                    schema.qualify("systemstatus")
                ),
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
        schema,
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

/// The store-path columns of the maps, as (alias, column): each has a `storeDir` beside it
/// from schema 89 (NixOS/hydra upgrade-89.sql, store-dir line; docs/hydra.md §1).
const STORE_PATH_COLUMNS: [(&str, &str); 3] = [("s", "drvpath"), ("b", "drvpath"), ("o", "path")];

/// The store dir a basename is taken to be in when its row's `storeDir` is null: Nix's
/// default. Upstream never writes that (a null storeDir goes with a full path), but its
/// backfill gives a value without a slash the deployment's store dir in the same way.
pub const ASSUMED_STORE_DIR: &str = crate::source::into::DEFAULT_STORE_DIR;

/// `column` (qualified) as a full store path: a value with a `/` is one already (a row not
/// converted yet), a basename gets its row's `storeDir` in front (converted; `storeDir` has no
/// trailing slash), or [`ASSUMED_STORE_DIR`] where that is null. The one place where the two
/// forms meet, so that one derivation is one value in every frame (the waste finding's
/// "built twice", the dependency graph, the outputs `compress --from-outputs` looks up).
fn store_path_sql(column: &str, alias: &str) -> String {
    format!(
        "(CASE WHEN strpos({column}, '/') > 0 THEN {column} \
         ELSE coalesce({alias}.storedir, '{ASSUMED_STORE_DIR}') || '/' || {column} END)"
    )
}

/// Every table's column map, for the questions of what is read.
const ALL_MAPS: [&ColumnMap; 5] = [
    STEPS_MAP,
    BUILDS_MAP,
    STEP_OUTPUTS_MAP,
    JOBSETS_MAP,
    EVALS_MAP,
];

/// Whether some column map reads `table.column`.
fn is_read(table: &str, column: &str) -> bool {
    ALL_MAPS
        .iter()
        .flat_map(|m| m.iter())
        .any(|(alias, c, _)| *c == column && alias_table(alias) == table)
        || (column == "storedir" && ["buildsteps", "builds", "buildstepoutputs"].contains(&table))
        || (table == "schemaversion" && column == "version")
        || (table == "systemstatus" && column == "what")
}

/// Whether any column of `table` (`column` `*`) or `table.column` is read: the public
/// snapshot's list of columns never read is held to it (`source::public::NOT_READ`).
#[cfg(test)]
pub(crate) fn reads(table: &str, column: &str) -> bool {
    if column == "*" {
        return ALL_MAPS
            .iter()
            .flat_map(|m| m.iter())
            .any(|(alias, _, _)| alias_table(alias) == table)
            || HYDRA_TABLES.contains(&table) && table != "systemstatus";
    }
    is_read(table, column)
}

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
            let table = alias_table(alias);
            if kept.contains(&c.name) && info.has(table, hydra) {
                let column = format!("{alias}.{hydra}");
                let value = if STORE_PATH_COLUMNS.contains(&(*alias, *hydra))
                    && info.has(table, "storedir")
                {
                    store_path_sql(&column, alias)
                } else {
                    column
                };
                template.replace("{}", &value)
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

/// The SELECTs a read of a window is made of, written once for the unsplit statements
/// ([`queries`]) and the read in chunks ([`super::chunked`]): the step rule's three parts
/// (`Window::step_sql_parts`), the builds and step outputs followed by key, and every name
/// qualified with its schema.
pub(super) struct Selects {
    schema: HydraSchema,
    bounded: bool,
    /// The window's queued builds: `SELECT q.id FROM builds q WHERE <queued in the window>`.
    queued: String,
    /// The step rule's parts: finished steps, running ones, and those without times.
    pub parts: Vec<String>,
    step_list: String,
    build_list: String,
    /// How a build finds its jobset in this schema.
    join: &'static str,
    /// The step outputs' list, where the table exists.
    output_list: Option<String>,
    jobset_list: String,
    /// The evaluations' list, where the table exists.
    eval_list: Option<String>,
    window: Window,
}

impl Selects {
    pub(super) fn new(info: &SchemaInfo, w: &Window, omit: Omit) -> Selects {
        let schema = info.schema.clone();
        let queued = format!(
            "SELECT q.id FROM {} q WHERE {}",
            schema.qualify("builds"),
            w.time_sql("q.timestamp")
        );
        let parts = w.step_sql_parts("s", &queued);
        // Schemas before 80 named a build's jobset by (project, jobset) text columns.
        let join = if info.has("builds", "jobset_id") {
            "j.id = b.jobset_id"
        } else if info.has("builds", "project") && info.has("builds", "jobset") {
            "j.project = b.project AND j.name = b.jobset"
        } else {
            "FALSE"
        };
        Selects {
            bounded: w.since.is_some() || w.until.is_some(),
            queued,
            parts,
            step_list: select_list(&STEPS, STEPS_MAP, info, omit),
            build_list: select_list(&BUILDS, BUILDS_MAP, info, omit),
            join,
            // A read that leaves every output column out (the analyses) asks for no outputs:
            // following each step to its outputs costs the server a lookup a step.
            output_list: (info.has_table("buildstepoutputs")
                && !STEP_OUTPUTS.kept(omit).is_empty())
            .then(|| select_list(&STEP_OUTPUTS, STEP_OUTPUTS_MAP, info, omit)),
            jobset_list: select_list(&JOBSETS, JOBSETS_MAP, info, omit),
            eval_list: info
                .has_table("jobsetevals")
                .then(|| select_list(&EVALS, EVALS_MAP, info, omit)),
            window: *w,
            schema,
        }
    }

    fn qualified(&self, table: &str) -> String {
        self.schema.qualify(table)
    }

    /// `SELECT {what} FROM buildsteps s WHERE part` for each part, joined by `glue`.
    pub(super) fn steps_where(&self, what: &str, parts: &[String], glue: &str) -> String {
        parts
            .iter()
            .map(|p| {
                format!(
                    "SELECT {what} FROM {} s WHERE {p}",
                    self.qualified("buildsteps")
                )
            })
            .collect::<Vec<_>>()
            .join(glue)
    }

    /// The steps' columns of the steps in `parts`.
    pub(super) fn steps_in(&self, parts: &[String]) -> String {
        self.steps_where(&self.step_list, parts, " UNION ALL ")
    }

    /// Rows of `from` looked up by the keys `keys` yields, one LATERAL subquery per key, fenced
    /// by OFFSET 0 so that the planner cannot flatten it into a join, which looks each one up by
    /// primary key. As a join, the planner would hash it against a scan of the whole table
    /// whenever it overestimates the keys, and it does for a window in the past: nothing tells
    /// it that startTime and stopTime move together, so it takes the steps of the horizon after
    /// the window for forty times their number. `also`: a further condition on the row.
    fn follow(
        keys: &str,
        alias: &str,
        key_cols: &[&str],
        list: &str,
        from: &str,
        also: Option<&str>,
    ) -> String {
        let mut on = key_cols
            .iter()
            .map(|k| format!("{alias}.{k} = w.{k}"))
            .collect::<Vec<_>>();
        on.extend(also.map(String::from));
        format!(
            "SELECT f.* FROM ({keys}) w CROSS JOIN LATERAL \
             (SELECT {list} FROM {from} WHERE {} OFFSET 0) f",
            on.join(" AND ")
        )
    }

    /// `builds b` with its jobset `j` (for the jobset's names), as every read of builds joins it.
    fn builds_and_jobsets(&self) -> String {
        format!(
            "{} b LEFT JOIN {} j ON {}",
            self.qualified("builds"),
            self.qualified("jobsets"),
            self.join
        )
    }

    /// The builds whose ids `keys` (a SELECT of one column `id`) yields, with their jobsets'
    /// names, each meeting `also` where given.
    pub(super) fn builds_by_id(&self, keys: &str, also: Option<&str>) -> String {
        Self::follow(
            keys,
            "b",
            &["id"],
            &self.build_list,
            &self.builds_and_jobsets(),
            also,
        )
    }

    /// The outputs of the steps in `parts`, where the table exists.
    pub(super) fn outputs_of(&self, parts: &[String]) -> Option<String> {
        let list = self.output_list.as_ref()?;
        Some(Self::follow(
            &self.steps_where("s.build, s.stepnr", parts, " UNION ALL "),
            "o",
            &["build", "stepnr"],
            list,
            &format!("{} o", self.qualified("buildstepoutputs")),
            None,
        ))
    }

    /// The builds queued with `timestamp` in `[a, b)`: `IndexBuildsOnTimestamp` finds them.
    /// A range's bounds are constants, which the planner estimates from the column's histogram,
    /// so unlike the window's steps it needs no lookup a row: read directly, a million builds
    /// take the server a quarter of the second the lookups took (PostgreSQL 15, scale 10).
    pub(super) fn builds_queued_in(&self, a: i64, b: i64) -> String {
        format!(
            "SELECT {} FROM {} WHERE b.timestamp >= {a} AND b.timestamp < {b}",
            self.build_list,
            self.builds_and_jobsets()
        )
    }

    /// With a bounded window: the builds of the window's steps that were not queued inside it
    /// (a step running in the window whose build was queued before it).
    pub(super) fn builds_queued_outside(&self) -> Option<String> {
        self.bounded.then(|| {
            self.builds_by_id(
                &format!(
                    "SELECT k.build AS id FROM ({}) k",
                    self.steps_where("s.build", &self.parts[..2], " UNION ")
                ),
                Some(&format!("NOT ({})", self.window.time_sql("b.timestamp"))),
            )
        })
    }

    pub(super) fn jobsets(&self) -> String {
        format!(
            "SELECT {} FROM {} j",
            self.jobset_list,
            self.qualified("jobsets")
        )
    }

    pub(super) fn evals(&self) -> Option<String> {
        self.eval_list.as_ref().map(|list| {
            format!(
                "SELECT {list} FROM {} e WHERE {}",
                self.qualified("jobsetevals"),
                self.window.time_sql("e.timestamp")
            )
        })
    }
}

/// The five SELECTs for a window, unsplit, given what the schema has: what the chunks of
/// [`super::chunked`] split, EXPLAINed whole by the tests and read whole by the ingest
/// benchmark. Every table is named with its schema, and a bounded window is read through the
/// indexes upstream ships (the step rule's three parts, `Window::step_sql_parts`; builds by
/// `timestamp` and primary key; step outputs by primary key), never by scanning a whole table
/// of the history on the production primary.
pub fn queries(info: &SchemaInfo, w: &Window, omit: Omit) -> Vec<(&'static TableDef, String)> {
    let q = Selects::new(info, w, omit);
    let (steps, builds, outputs) = if q.bounded {
        // The timeless part's builds are queued in the window already.
        let keys = format!(
            "SELECT q.id FROM ({} UNION {}) q",
            q.queued,
            q.steps_where("s.build", &q.parts[..2], " UNION ")
        );
        (
            q.steps_in(&q.parts),
            q.builds_by_id(&keys, None),
            q.outputs_of(&q.parts),
        )
    } else {
        (
            format!(
                "SELECT {} FROM {} s",
                q.step_list,
                q.qualified("buildsteps")
            ),
            format!("SELECT {} FROM {}", q.build_list, q.builds_and_jobsets()),
            q.output_list
                .as_ref()
                .map(|list| format!("SELECT {list} FROM {} o", q.qualified("buildstepoutputs"))),
        )
    };
    let mut out = vec![(&STEPS, steps), (&BUILDS, builds)];
    out.extend(outputs.map(|o| (&STEP_OUTPUTS, o)));
    out.push((&JOBSETS, q.jobsets()));
    out.extend(q.evals().map(|e| (&EVALS, e)));
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
    let mut copy = CopyRows::start(s, def, select, progress, omit).await?;
    Ok(copy.next(s, usize::MAX).await?.0)
}

/// A `COPY (SELECT …) TO STDOUT (FORMAT binary)` under way, whose rows are handed on in pieces
/// ([`CopyRows::next`]). A chunked read cannot bound its ranges by rows: a range cannot split a
/// second, and an evaluation inserts its builds in one go, each stamped with the second it was
/// inserted in (docs/read-only.md), so one second may hold thousands of builds on a large farm
/// (the sample stamps an evaluation's builds with one second: 720,000 at scale 30), and a burst
/// after a quiet stretch overshoots a range's width before it narrows. Between two pieces
/// nothing is read from the socket and the server waits; dropping the value (an error, Ctrl-C)
/// closes the session, which ends the COPY on the server.
pub struct CopyRows {
    what: String,
    stream: std::pin::Pin<Box<tokio_postgres::CopyOutStream>>,
    decoder: CopyDecoder,
    bar: indicatif::ProgressBar,
    /// Rows decoded, those handed on included.
    rows: usize,
    /// Where the progress bar last stood.
    shown: usize,
}

impl CopyRows {
    pub async fn start(
        s: &Session,
        def: &'static TableDef,
        select: &str,
        progress: &Progress,
        omit: Omit,
    ) -> Result<CopyRows> {
        let what = format!("reading {}", def.name);
        // HYDRA_BOTTLENECK_LOG=debug shows what is asked of the server (for EXPLAIN, or a DBA).
        tracing::debug!("{what}: {select}");
        let stream = s
            .client
            .copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
            .await
            .map_err(|e| s.error(&what, e))?;
        Ok(CopyRows {
            bar: progress.rows(&what),
            what,
            stream: Box::pin(stream),
            decoder: CopyDecoder::omitting(def, BATCH_ROWS, omit),
            rows: 0,
            shown: 0,
        })
    }

    /// The next piece: the rows decoded once at least `rows` are (a COPY message holds one row
    /// as a rule, so a piece overshoots by a few at most), or the rest at the stream's end; and
    /// whether the stream has ended. An empty answer is one empty frame. Not to be called again
    /// after the end.
    pub async fn next(&mut self, s: &Session, rows: usize) -> Result<(DataFrame, bool)> {
        let failed = |what: &str, reason: String| Error::Database {
            what: what.to_string(),
            source: PgFailure::reason(reason),
        };
        while self.decoder.rows() < rows {
            let Some(chunk) = self.stream.next().await else {
                self.bar.finish_and_clear();
                let df = self.decoder.finish().map_err(|r| failed(&self.what, r))?;
                return Ok((df, true));
            };
            // A safe point: dropping the stream and the session ends the COPY on the server.
            crate::interrupt::check()?;
            let chunk = chunk.map_err(|e| s.error(&self.what, e))?;
            let before = self.decoder.rows();
            self.decoder
                .feed(&chunk)
                .map_err(|r| failed(&self.what, r))?;
            self.rows += self.decoder.rows() - before;
            // Touching the bar costs an atomic or two; once per thousand rows is plenty.
            if self.rows - self.shown >= 1024 {
                self.bar.set_position(self.rows as u64);
                self.shown = self.rows;
            }
        }
        let df = self.decoder.take().map_err(|r| failed(&self.what, r))?;
        Ok((df, false))
    }
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

/// A read-only session inside its one `REPEATABLE READ READ ONLY` transaction, with what was
/// learnt before it began: the schema, the schema's guess at the runner, the server's clock and
/// the window resolved against it. Both readers (whole, [`read`]; in chunks, `super::chunked`)
/// begin and end here.
pub(super) struct Begun {
    pub session: Session,
    pub info: SchemaInfo,
    pub runner: Runner,
    pub runner_basis: String,
    pub now: i64,
    pub window: Window,
}

pub(super) async fn begin(params: &ConnParams, opts: &ReadOptions) -> Result<Begun> {
    let s = connect(params, true, opts.statement_timeout).await?;
    let info = inspect(&s).await?;
    // The schema's guess; `super::load` puts `--runner` or the rows' evidence over it.
    let (runner, runner_basis) = detect_runner(&info);
    let now = s.now().await?;
    let window = opts.window.resolve(now).map_err(Error::Usage)?;
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
    Ok(Begun {
        session: s,
        info,
        runner,
        runner_basis,
        now,
        window,
    })
}

impl Begun {
    /// Ends the transaction; `longest`: the longest step read (stop − start, seconds), which
    /// warns when the window's end cut steps off at the horizon.
    pub(super) async fn commit(self, longest: Option<i64>) -> Result<()> {
        let s = &self.session;
        s.client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| s.error("ending the read-only transaction", e))?;
        if let Some(until) = self.window.until
            && until.saturating_add(crate::window::STEP_HORIZON_SECS) < self.now
            && let Some(longest) = longest
            && longest > crate::window::STEP_HORIZON_SECS / 2
        {
            tracing::warn!(
                "a step in the window ran {:.1} h; steps that ran longer than {} h across the \
                 window's end are not read (window::STEP_HORIZON_SECS): end the window later, or \
                 leave --until out",
                longest as f64 / 3600.0,
                crate::window::STEP_HORIZON_SECS / 3600
            );
        }
        Ok(())
    }
}

/// The hidden projects (`Projects.hidden`) and the jobsets hidden themselves or in a hidden
/// project (`Jobsets.hidden`); both columns exist since 2010 (NixOS/hydra 5f7ebaad, before
/// SchemaVersion), `integer not null default 0` (subprojects/hydra/sql/hydra.sql @ 14332fbf).
/// Refused, not guessed, when the role cannot read them: a public snapshot that cannot tell
/// what is hidden would publish it.
pub(super) async fn read_hidden(s: &Session) -> Result<super::public::Hidden> {
    let schema = s.schema()?.clone();
    let rows = s
        .client
        .query(
            "SELECT table_name::text, udt_schema::text FROM information_schema.columns \
             WHERE table_schema = $1 AND column_name = 'hidden' \
             AND table_name IN ('projects', 'jobsets')",
            &[&schema.name],
        )
        .await
        .map_err(|e| s.error("reading information_schema.columns", e))?;
    for table in ["projects", "jobsets"] {
        let found = rows.iter().find(|r| r.get::<_, String>(0) == table);
        match found.map(|r| r.get::<_, String>(1)) {
            Some(udt) if udt == "pg_catalog" => {}
            Some(udt) => {
                return Err(Error::refused(
                    "database",
                    format!(
                        "{}.{table}.hidden has a type of schema {udt}, not a built-in one as \
                         Hydra creates it: refusing to read it (its conversions run the type \
                         owner's code)",
                        schema.name
                    ),
                ));
            }
            None => {
                return Err(Error::refused(
                    "database",
                    format!(
                        "--public needs {}.{table}.hidden to leave hidden projects and jobsets \
                         out, and it is missing or this role may not read it (GRANT SELECT ON \
                         {table} TO the role)",
                        schema.name
                    ),
                ));
            }
        }
    }
    let (projects, jobsets) = (schema.qualify("projects"), schema.qualify("jobsets"));
    let mut hidden = super::public::Hidden::default();
    for r in s
        .client
        .query(
            &format!("SELECT p.name::text FROM {projects} p WHERE p.hidden <> 0"),
            &[],
        )
        .await
        .map_err(|e| s.error("reading hidden projects", e))?
    {
        hidden.projects.insert(r.get(0));
    }
    for r in s
        .client
        .query(
            &format!(
                "SELECT j.id::int4, j.project::text, j.name::text FROM {jobsets} j \
                 LEFT JOIN {projects} p ON p.name = j.project \
                 WHERE j.hidden <> 0 OR p.hidden <> 0"
            ),
            &[],
        )
        .await
        .map_err(|e| s.error("reading hidden jobsets", e))?
    {
        hidden.jobset_ids.insert(r.get(0));
        hidden.jobset_names.insert((r.get(1), r.get(2)));
    }
    Ok(hidden)
}

/// The longest run (stop − start, seconds) among the steps of a frame, if any has both times.
pub(super) fn longest_step(steps: &DataFrame) -> Option<i64> {
    let start = steps.column("start_time").ok()?.i64().ok()?;
    let stop = steps.column("stop_time").ok()?.i64().ok()?;
    start
        .iter()
        .zip(stop.iter())
        .filter_map(|(a, b)| Some(b? - a?))
        .max()
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

    fn public() -> HydraSchema {
        HydraSchema {
            name: "public".into(),
            ident: quote_ident("public"),
        }
    }

    #[test]
    fn identifiers_are_quoted_whatever_they_hold() {
        assert_eq!(quote_ident("public"), "\"public\"");
        assert_eq!(quote_ident("a\"; DROP"), "\"a\"\"; DROP\"");
    }

    #[test]
    fn runner_detection_follows_the_schema_history() {
        let info = |v, row| SchemaInfo {
            version: v,
            columns: HashMap::new(),
            has_cpp_status_row: row,
            schema: public(),
        };
        assert_eq!(detect_runner(&info(Some(80), false)).0, Runner::Cpp);
        assert_eq!(detect_runner(&info(Some(87), true)).0, Runner::Rust);
        assert_eq!(detect_runner(&info(Some(85), true)).0, Runner::Cpp);
        assert_eq!(detect_runner(&info(Some(85), false)).0, Runner::Rust);
        assert!(detect_runner(&info(Some(85), false)).1.contains("estimate"));
    }

    #[test]
    fn store_paths_are_made_whole_only_where_the_table_has_a_store_dir() {
        let cols = |extra: &[&str]| -> HashSet<String> {
            STEPS_MAP
                .iter()
                .map(|(_, c, _)| c.to_string())
                .chain(extra.iter().map(|c| c.to_string()))
                .collect()
        };
        let info = |extra: &[&str]| SchemaInfo {
            version: Some(89),
            columns: HashMap::from([("buildsteps".to_string(), cols(extra))]),
            has_cpp_status_row: false,
            schema: public(),
        };
        let before = select_list(&STEPS, STEPS_MAP, &info(&[]), &[]);
        assert!(before.contains("s.drvpath::text") && !before.contains("storedir"));
        let after = select_list(&STEPS, STEPS_MAP, &info(&["storedir"]), &[]);
        assert!(after.contains(&format!(
            "(CASE WHEN strpos(s.drvpath, '/') > 0 THEN s.drvpath ELSE coalesce(s.storedir, \
             '{ASSUMED_STORE_DIR}') || '/' || s.drvpath END)::text"
        )));
        // Only the path is rewritten.
        assert!(after.contains("s.machine::text"));
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
            schema: public(),
        };
        let list = select_list(&STEPS, STEPS_MAP, &info, &[]);
        assert!(list.contains("NULL::int8"));
        assert!(list.contains("s.starttime::int8"));
    }
}
