//! Named and ad-hoc read-only queries against a Hydra database.
//!
//! Named queries are the files in `queries/`, embedded at build time, each with a header giving
//! its name, description and parameters (see `queries/README.md`). Parameters are bound, never
//! spliced. Ad-hoc SQL runs as one statement (the extended protocol refuses several) inside a
//! `READ ONLY` transaction on a read-only session, and is rolled back.

pub mod guard;

use std::time::Duration;

use serde::Serialize;
use tokio_postgres::types::{FromSql, Type};

use crate::conninfo::ConnParams;
use crate::error::{Error, Result};
use crate::source::postgres::connect;

/// The embedded query files.
const FILES: &[(&str, &str)] = &[
    (
        "biggest-outputs.sql",
        include_str!("../../queries/biggest-outputs.sql"),
    ),
    (
        "evaluations.sql",
        include_str!("../../queries/evaluations.sql"),
    ),
    (
        "failures-by-status.sql",
        include_str!("../../queries/failures-by-status.sql"),
    ),
    (
        "job-history.sql",
        include_str!("../../queries/job-history.sql"),
    ),
    (
        "jobsets-by-build-time.sql",
        include_str!("../../queries/jobsets-by-build-time.sql"),
    ),
    (
        "machine-utilization.sql",
        include_str!("../../queries/machine-utilization.sql"),
    ),
    (
        "most-retried.sql",
        include_str!("../../queries/most-retried.sql"),
    ),
    (
        "overhead-per-machine.sql",
        include_str!("../../queries/overhead-per-machine.sql"),
    ),
    (
        "queue-depth-per-hour.sql",
        include_str!("../../queries/queue-depth-per-hour.sql"),
    ),
    ("queue-now.sql", include_str!("../../queries/queue-now.sql")),
    (
        "slowest-jobs.sql",
        include_str!("../../queries/slowest-jobs.sql"),
    ),
    (
        "slowest-steps.sql",
        include_str!("../../queries/slowest-steps.sql"),
    ),
    (
        "step-times-by-system.sql",
        include_str!("../../queries/step-times-by-system.sql"),
    ),
    (
        "steps-running-now.sql",
        include_str!("../../queries/steps-running-now.sql"),
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Int,
    Text,
    Time,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    pub name: String,
    pub ty: ParamType,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    pub name: String,
    pub file: String,
    pub description: String,
    pub params: Vec<Param>,
    #[serde(skip)]
    pub sql: String,
}

/// Parses one query file's header.
pub fn parse(file: &str, text: &str) -> Result<Query> {
    let bad = |line: usize, why: &str| Error::Invalid(format!("queries/{file}:{line}: {why}"));
    let (mut name, mut description, mut params) = (None, None, Vec::new());
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("--") else {
            break;
        };
        let rest = rest.trim();
        if let Some(v) = rest.strip_prefix("name:") {
            name = Some(v.trim().to_string());
        } else if let Some(v) = rest.strip_prefix("description:") {
            description = Some(v.trim().to_string());
        } else if let Some(v) = rest.strip_prefix("param:") {
            let mut f = v.split_whitespace();
            let (Some(n), Some(t)) = (f.next(), f.next()) else {
                return Err(bad(i + 1, "a param needs a name and a type"));
            };
            let ty = match t {
                "int" => ParamType::Int,
                "text" => ParamType::Text,
                "time" => ParamType::Time,
                other => return Err(bad(i + 1, &format!("unknown param type `{other}`"))),
            };
            let default = f.next().map(str::to_string);
            params.push(Param {
                name: n.to_string(),
                ty,
                default,
            });
        }
    }
    Ok(Query {
        name: name.ok_or_else(|| bad(1, "no `-- name:` line"))?,
        file: file.to_string(),
        description: description.ok_or_else(|| bad(1, "no `-- description:` line"))?,
        params,
        sql: text.to_string(),
    })
}

/// Every named query, sorted by name.
pub fn all() -> Result<Vec<Query>> {
    let mut q = FILES
        .iter()
        .map(|(f, t)| parse(f, t))
        .collect::<Result<Vec<_>>>()?;
    q.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(q)
}

pub fn find(name: &str) -> Result<Query> {
    let all = all()?;
    let names: Vec<String> = all.iter().map(|q| q.name.clone()).collect();
    all.into_iter().find(|q| q.name == name).ok_or_else(|| {
        Error::Invalid(format!(
            "no query named `{name}` (known: {})",
            names.join(", ")
        ))
    })
}

/// A bound value.
#[derive(Debug, Clone)]
enum Bound {
    Int(i64),
    Text(String),
}

/// Binds `given` (`name=value` pairs) to the query's parameters, with defaults; `now` anchors
/// relative times.
fn bind(q: &Query, given: &[(String, String)], now: i64) -> Result<Vec<Bound>> {
    for (k, _) in given {
        if !q.params.iter().any(|p| &p.name == k) {
            return Err(Error::Invalid(format!(
                "query `{}` has no parameter `{k}` (it takes: {})",
                q.name,
                q.params
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    q.params
        .iter()
        .map(|p| {
            let value = given
                .iter()
                .rev()
                .find(|(k, _)| k == &p.name)
                .map(|(_, v)| v.clone())
                .or_else(|| p.default.clone())
                .ok_or_else(|| {
                    Error::Invalid(format!("query `{}` needs --param {}=…", q.name, p.name))
                })?;
            let bad = |why: String| Error::Invalid(format!("--param {}={value}: {why}", p.name));
            Ok(match p.ty {
                ParamType::Int => Bound::Int(
                    value
                        .parse::<i64>()
                        .map_err(|_| bad("not an integer".into()))?,
                ),
                ParamType::Text => Bound::Text(value.clone()),
                ParamType::Time => {
                    Bound::Int(crate::window::parse_time(&value).map_err(bad)?.resolve(now))
                }
            })
        })
        .collect()
}

/// A result: column names and rows of typed JSON values.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl Table {
    /// The rows as display strings (empty for NULL).
    pub fn strings(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| match v {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect()
    }

    /// The rows as JSON objects, one per row.
    pub fn objects(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.rows
            .iter()
            .map(|r| {
                self.columns
                    .iter()
                    .cloned()
                    .zip(r.iter().cloned())
                    .collect()
            })
            .collect()
    }
}

/// How ad-hoc SQL may run.
#[derive(Debug, Clone, Copy)]
pub struct SqlOptions {
    /// Run even as a superuser or a member of a role that acts outside transactions (the
    /// statement check still applies).
    pub allow_privileged_role: bool,
    /// The most rows a result may have; a larger one is refused rather than held in memory.
    pub max_rows: usize,
}

/// A million rows prints as a table of some hundred megabytes: past that, a question is better
/// asked of a snapshot (`snapshot`, then Parquet tools) than of a terminal.
pub const DEFAULT_MAX_ROWS: usize = 1_000_000;

/// What the values of one result may take in memory, whatever the row count: a few wide text
/// columns can be large long before the row cap.
const MAX_RESULT_BYTES: usize = 512 << 20;

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            allow_privileged_role: false,
            max_rows: DEFAULT_MAX_ROWS,
        }
    }
}

/// Runs a named query with `params`.
pub async fn run(
    params: &ConnParams,
    q: &Query,
    given: &[(String, String)],
    timeout: Duration,
) -> Result<Table> {
    let s = connect(params, true, timeout).await?;
    s.with_hydra_schema_on_path().await?;
    let now = s.now().await?;
    let bound = bind(q, given, now)?;
    let values: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = bound
        .iter()
        .map(|b| match b {
            Bound::Int(v) => v as &(dyn tokio_postgres::types::ToSql + Sync),
            Bound::Text(v) => v as &(dyn tokio_postgres::types::ToSql + Sync),
        })
        .collect();
    read_only(
        &s,
        &format!("query {}", q.name),
        &q.sql,
        &values,
        DEFAULT_MAX_ROWS,
    )
    .await
}

/// Runs one ad-hoc statement: checked by [`guard::check`] before it is sent, refused under a
/// privileged role unless `opts` allows it, then run like a named query.
pub async fn sql(
    params: &ConnParams,
    text: &str,
    timeout: Duration,
    opts: SqlOptions,
) -> Result<Table> {
    guard::check(text).map_err(|why| Error::Invalid(format!("query sql: {why}")))?;
    let s = connect(params, true, timeout).await?;
    if let Some(role) = s.role.as_ref().filter(|r| r.is_privileged())
        && !opts.allow_privileged_role
    {
        return Err(Error::Invalid(format!(
            "query sql: refusing to run ad-hoc SQL as a privileged role ({}); connect as a role \
             that can only read (README: \"Pointing it at a real Hydra\"), or pass \
             --allow-privileged-role",
            role.describe()
        )));
    }
    s.with_hydra_schema_on_path().await?;
    read_only(&s, "query sql", text, &[], opts.max_rows).await
}

async fn read_only(
    s: &crate::source::postgres::Session,
    what: &str,
    text: &str,
    values: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    max_rows: usize,
) -> Result<Table> {
    s.client
        .batch_execute("BEGIN READ ONLY")
        .await
        .map_err(|e| s.error(what, e))?;
    // Preparing goes through the extended protocol, which takes exactly one statement: a
    // `COMMIT; …` smuggled after a query is refused by the server, not by our parsing.
    let result = async {
        let stmt = s.client.prepare(text).await.map_err(|e| s.error(what, e))?;
        let columns: Vec<String> = stmt
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        // Rows are converted as they arrive, so the result is held once (as values), and a
        // result over the caps is refused as soon as it crosses them.
        let stream = s
            .client
            .query_raw(&stmt, values.iter().copied())
            .await
            .map_err(|e| s.error(what, e))?;
        futures_util::pin_mut!(stream);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = futures_util::StreamExt::next(&mut stream).await {
            crate::interrupt::check()?;
            let row = row.map_err(|e| s.error(what, e))?;
            let over = if out.len() == max_rows {
                Some((format!("{max_rows} rows"), ", or raise --max-rows"))
            } else if bytes > MAX_RESULT_BYTES {
                Some((format!("{} MiB of values", MAX_RESULT_BYTES >> 20), ""))
            } else {
                None
            };
            if let Some((limit, hint)) = over {
                return Err(Error::Invalid(format!(
                    "{what}: the result has more than {limit} (the most one result may hold); \
                     add a LIMIT or aggregate{hint}"
                )));
            }
            let mut vals = Vec::with_capacity(columns.len());
            for (i, c) in stmt.columns().iter().enumerate() {
                let v = value(&row, i, c.type_()).map_err(|why| Error::Database {
                    what: what.to_string(),
                    reason: format!("column `{}`: {why}", c.name()),
                })?;
                bytes += match &v {
                    serde_json::Value::String(t) => t.len() + 24,
                    other => other.to_string().len() + 16,
                };
                vals.push(v);
            }
            out.push(vals);
        }
        // What a READ ONLY transaction still lets one statement do: lift READ ONLY (for a
        // next statement there never is) and take a lock stronger than a read's (LOCK TABLE),
        // which would queue Hydra's own queries behind it. The statement check refuses both
        // before they are sent; this second look catches what it might miss. Both are undone
        // by the rollback below at once; the result is refused so that nobody takes them for
        // reads.
        let state = s
            .client
            .query_one(
                "SELECT pg_catalog.current_setting('transaction_read_only'), \
                 (SELECT pg_catalog.string_agg(DISTINCT mode, ', ') FROM pg_catalog.pg_locks \
                  WHERE pid = pg_catalog.pg_backend_pid() AND locktype = 'relation' \
                  AND mode <> 'AccessShareLock')",
                &[],
            )
            .await
            .map_err(|e| s.error(what, e))?;
        let refuse = |why: String| Error::Database {
            what: what.to_string(),
            reason: format!("refused: {why} (rolled back; only reads are run)"),
        };
        if state.get::<_, String>(0) != "on" {
            return Err(refuse(
                "the statement made the transaction read-write".into(),
            ));
        }
        if let Some(locks) = state.get::<_, Option<String>>(1) {
            return Err(refuse(format!(
                "the statement took {locks}, more than a read"
            )));
        }
        Ok(Table { columns, rows: out })
    }
    .await;
    // Nothing is kept: the transaction is rolled back whatever the statement was.
    let _ = s.client.batch_execute("ROLLBACK").await;
    result
}

fn value(
    row: &tokio_postgres::Row,
    i: usize,
    ty: &Type,
) -> std::result::Result<serde_json::Value, String> {
    use serde_json::Value;
    let e = |err: tokio_postgres::Error| err.to_string();
    Ok(match *ty {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(e)?
            .map(Value::from),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(e)?
            .map(Value::from),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(e)?
            .map(Value::from),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(e)?
            .map(Value::from),
        Type::OID => row
            .try_get::<_, Option<u32>>(i)
            .map_err(e)?
            .map(Value::from),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map_err(e)?
            .map(Value::from),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)
            .map_err(e)?
            .map(Value::from),
        Type::NUMERIC => row
            .try_get::<_, Option<Numeric>>(i)
            .map_err(e)?
            .map(|n| Value::from(n.0)),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::UNKNOWN => row
            .try_get::<_, Option<String>>(i)
            .map_err(e)?
            .map(Value::from),
        Type::JSON | Type::JSONB => row.try_get::<_, Option<Value>>(i).map_err(e)?,
        ref other => {
            return Err(format!(
                "type {other} is not shown; cast it (::text, ::int8 or ::float8)"
            ));
        }
    }
    .unwrap_or(Value::Null))
}

/// PostgreSQL's `numeric`, read as the nearest `f64` (aggregates like `avg` return it).
struct Numeric(f64);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // ndigits, weight, sign, dscale (i16 each), then ndigits base-10000 digits.
        let head =
            |k: usize| -> std::result::Result<i16, Box<dyn std::error::Error + Sync + Send>> {
                raw.get(2 * k..2 * k + 2)
                    .map(|b| i16::from_be_bytes([b[0], b[1]]))
                    .ok_or_else(|| "truncated numeric".into())
            };
        let (ndigits, weight, sign) = (head(0)?, head(1)?, head(2)? as u16);
        if sign == 0xC000 {
            return Ok(Numeric(f64::NAN));
        }
        let mut v = 0.0;
        for d in 0..ndigits.max(0) as usize {
            let digit = head(4 + d)?;
            v += f64::from(digit) * 10000f64.powi(i32::from(weight) - d as i32);
        }
        Ok(Numeric(if sign == 0x4000 { -v } else { v }))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// Writes `table` as Parquet (atomically), with a column type per JSON value kind.
pub fn write_parquet(table: &Table, path: &std::path::Path, replace: bool) -> Result<()> {
    use polars::prelude::*;
    use serde_json::Value;
    let mut cols = Vec::with_capacity(table.columns.len());
    for (i, name) in table.columns.iter().enumerate() {
        let vals: Vec<&Value> = table.rows.iter().map(|r| &r[i]).collect();
        let name = PlSmallStr::from(name.as_str());
        let all = |f: fn(&Value) -> bool| vals.iter().all(|v| v.is_null() || f(v));
        let col = if all(Value::is_i64) {
            Column::new(name, vals.iter().map(|v| v.as_i64()).collect::<Vec<_>>())
        } else if all(Value::is_number) {
            Column::new(name, vals.iter().map(|v| v.as_f64()).collect::<Vec<_>>())
        } else if all(Value::is_boolean) {
            Column::new(name, vals.iter().map(|v| v.as_bool()).collect::<Vec<_>>())
        } else {
            Column::new(
                name,
                vals.iter()
                    .map(|v| match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    })
                    .collect::<Vec<_>>(),
            )
        };
        cols.push(col);
    }
    let mut df =
        DataFrame::new(table.rows.len(), cols).map_err(|e| Error::frame("query result", e))?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)
        .map_err(|e| Error::frame("query result", e))?;
    if replace {
        crate::output::write_file_atomic(path, &buf)
    } else {
        crate::output::write_file_new(path, &buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_queries_is_embedded_and_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                n.ends_with(".sql").then_some(n)
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = FILES.iter().map(|(f, _)| f.to_string()).collect();
        assert_eq!(on_disk, embedded);
        let all = all().unwrap();
        assert!(all.len() >= 12);
        for q in &all {
            assert_eq!(format!("{}.sql", q.name), q.file);
            let n = q.params.len();
            assert!(q.sql.contains(&format!("${n}")) || n == 0, "{}", q.name);
            assert!(!q.sql.contains(&format!("${}", n + 1)), "{}", q.name);
        }
    }

    #[test]
    fn parameters_are_checked_and_defaulted() {
        let q = find("slowest-jobs").unwrap();
        let b = bind(&q, &[("limit".into(), "5".into())], 1_000_000).unwrap();
        assert!(matches!(b[0], Bound::Int(v) if v == 1_000_000 - 7 * 86_400));
        assert!(matches!(b[1], Bound::Int(5)));
        assert!(bind(&q, &[("limit".into(), "five".into())], 0).is_err());
        assert!(bind(&q, &[("colour".into(), "red".into())], 0).is_err());
        assert!(find("nope").is_err());
        assert!(parse("x.sql", "-- name: x\nSELECT 1").is_err());
        assert!(
            parse(
                "x.sql",
                "-- name: x\n-- description: d\n-- param: a float 1\n"
            )
            .is_err()
        );
    }
}

/// The layers behind the statement check, against a real server: what gets past the check is
/// still refused by the look at the transaction afterwards, and a result over the cap is
/// refused rather than held.
#[cfg(test)]
mod server_tests {
    use super::*;
    use crate::testpg::TestPg;

    #[test]
    fn what_passes_the_check_is_still_looked_at_afterwards() {
        let pg = TestPg::start();
        let db = pg.database();
        pg.psql(&crate::testpg::dbname(&db), "CREATE TABLE t (x int)");
        let params = crate::conninfo::resolve(&db, &|_| None).unwrap();
        let rt = crate::source::postgres::runtime().unwrap();
        rt.block_on(async {
            let s = connect(&params, true, Duration::from_secs(30))
                .await
                .unwrap();
            s.with_hydra_schema_on_path().await.unwrap();
            let err = read_only(&s, "t", "SET TRANSACTION READ WRITE", &[], 10)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("made the transaction read-write"), "{err}");
            let err = read_only(&s, "t", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", &[], 10)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("took AccessExclusiveLock"), "{err}");
            let err = read_only(&s, "t", "SELECT generate_series(1, 11)", &[], 10)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("more than 10 rows"), "{err}");
            let ok = read_only(&s, "t", "SELECT generate_series(1, 10) AS n", &[], 10)
                .await
                .unwrap();
            assert_eq!(ok.rows.len(), 10);
        });
        // The lock went with the rollback.
        assert_eq!(
            pg.psql(
                &crate::testpg::dbname(&db),
                "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' \
                 AND relation = 't'::regclass"
            ),
            "0"
        );
    }
}
