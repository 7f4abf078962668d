//! Running the questions of [`crate::query`] on a Hydra database: a named query with its
//! parameters bound, or one ad-hoc statement that passed [`guard::check`]. Either runs as one
//! statement (the extended protocol refuses several) inside a `READ ONLY` transaction on a
//! read-only session, is looked at afterwards (still read-only, no lock stronger than a read's),
//! and is rolled back. A result over [`DEFAULT_MAX_ROWS`] (or `--max-rows`) or
//! [`MAX_RESULT_BYTES`] is refused rather than held.

use std::time::Duration;

use tokio_postgres::types::{FromSql, Type};

use super::postgres::{Session, connect};
use crate::conninfo::ConnParams;
use crate::error::{Error, PgFailure, Result};
use crate::query::{Bound, DEFAULT_MAX_ROWS, Query, SqlOptions, Table, bind, guard};

/// What the values of one result may take in memory, whatever the row count: a few wide text
/// columns can be large long before the row cap.
pub const MAX_RESULT_BYTES: usize = 512 << 20;

/// Runs a named query with `params`.
pub async fn run_named(
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
pub async fn run_adhoc(
    params: &ConnParams,
    text: &str,
    timeout: Duration,
    opts: SqlOptions,
) -> Result<Table> {
    guard::check(text).map_err(|why| Error::refused("query sql", why))?;
    let s = connect(params, true, timeout).await?;
    if let Some(role) = s.role.as_ref().filter(|r| r.is_privileged())
        && !opts.allow_privileged_role
    {
        return Err(Error::refused(
            "query sql",
            format!(
                "refusing to run ad-hoc SQL as a privileged role ({}); connect as a role that \
                 can only read (README: \"Pointing it at a real Hydra\"), or pass \
                 --allow-privileged-role",
                role.describe()
            ),
        ));
    }
    s.with_hydra_schema_on_path().await?;
    read_only(&s, "query sql", text, &[], opts.max_rows).await
}

async fn read_only(
    s: &Session,
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
                return Err(Error::refused(
                    what,
                    format!(
                        "the result has more than {limit} (the most one result may hold); add a \
                         LIMIT or aggregate{hint}"
                    ),
                ));
            }
            let mut vals = Vec::with_capacity(columns.len());
            for (i, c) in stmt.columns().iter().enumerate() {
                let v = value(&row, i, c.type_()).map_err(|why| Error::Database {
                    what: what.to_string(),
                    source: PgFailure::reason(format!("column `{}`: {why}", c.name())),
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
        let refuse = |why: String| {
            Error::refused(
                format!("database: {what}"),
                format!("refused: {why} (rolled back; only reads are run)"),
            )
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

/// The layers behind the statement check, against a real server: what gets past the check is
/// still refused by the look at the transaction afterwards, and a result over the cap is
/// refused rather than held.
#[cfg(test)]
mod tests {
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
