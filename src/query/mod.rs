//! What may be asked of a Hydra database, and what comes back: the named queries and their
//! parameters, the statement check ad-hoc SQL passes first ([`guard`]), the result ([`Table`])
//! and its Parquet form. Nothing here talks to PostgreSQL: `crate::source::sql` runs them.
//!
//! Named queries are the files in `queries/`, embedded at build time, each with a header giving
//! its name, description and parameters (see `queries/README.md`). Parameters are bound
//! ([`bind`]), never spliced.

pub mod guard;
pub mod offline;

use serde::Serialize;

use crate::error::{Error, Result};

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
    /// The text PostgreSQL runs.
    #[serde(skip)]
    pub sql: String,
    /// How the query runs on a snapshot or the sample ([`offline`]).
    pub offline: Offline,
}

/// Whether a named query runs without a database, and with which text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "runs", content = "text")]
pub enum Offline {
    /// The PostgreSQL text runs as it is on the offline engine.
    Same,
    /// The offline engine has its own text, after the file's `-- offline:` line: the SQL
    /// dialects differ (`percentile_disc … WITHIN GROUP`, `to_char`), the answer does not.
    #[serde(rename = "own")]
    Own(#[serde(skip)] String),
    /// It needs the live database; the reason, from the header's `-- offline: no REASON`.
    No(String),
}

/// The line in a query file that ends the PostgreSQL text and starts the offline engine's.
const OFFLINE_MARKER: &str = "-- offline:";

/// Parses one query file's header.
pub fn parse(file: &str, text: &str) -> Result<Query> {
    let bad = |line: usize, why: &str| Error::parse(format!("queries/{file}:{line}"), why);
    let (mut name, mut description, mut params) = (None, None, Vec::new());
    let mut offline = Offline::Same;
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("--") else {
            break;
        };
        let rest = rest.trim();
        if let Some(v) = rest.strip_prefix("offline:") {
            let Some(why) = v.trim().strip_prefix("no ") else {
                return Err(bad(
                    i + 1,
                    "an `offline:` header line says `no REASON`; the offline text follows the \
                     PostgreSQL text after a line `-- offline:`",
                ));
            };
            offline = Offline::No(why.trim().to_string());
        } else if let Some(v) = rest.strip_prefix("name:") {
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
    // The header's own lines never hold the marker: it is the first line, after the header,
    // that is exactly `-- offline:`.
    let header_end = text
        .lines()
        .take_while(|l| l.starts_with("--"))
        .map(|l| l.len() + 1)
        .sum::<usize>()
        .min(text.len());
    let (sql, own) = match text[header_end..].find(&format!("\n{OFFLINE_MARKER}\n")) {
        Some(at) => {
            let at = header_end + at + 1;
            let own = &text[at + OFFLINE_MARKER.len() + 1..];
            (&text[..at], Some(own.to_string()))
        }
        None => (text, None),
    };
    let offline = match (offline, own) {
        (Offline::No(_), Some(_)) => {
            return Err(bad(1, "says `offline: no` but has an offline text"));
        }
        (o, None) => o,
        (_, Some(own)) => Offline::Own(own),
    };
    Ok(Query {
        name: name.ok_or_else(|| bad(1, "no `-- name:` line"))?,
        file: file.to_string(),
        description: description.ok_or_else(|| bad(1, "no `-- description:` line"))?,
        params,
        sql: sql.to_string(),
        offline,
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
        Error::Usage(format!(
            "no query named `{name}` (known: {})",
            names.join(", ")
        ))
    })
}

/// A parameter's value, bound.
#[derive(Debug, Clone)]
pub enum Bound {
    Int(i64),
    Text(String),
}

/// Binds `given` (`name=value` pairs) to the query's parameters, with defaults; `now` anchors
/// relative times.
pub fn bind(q: &Query, given: &[(String, String)], now: i64) -> Result<Vec<Bound>> {
    for (k, _) in given {
        if !q.params.iter().any(|p| &p.name == k) {
            return Err(Error::Usage(format!(
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
                    Error::Usage(format!("query `{}` needs --param {}=…", q.name, p.name))
                })?;
            let bad = |why: String| Error::Usage(format!("--param {}={value}: {why}", p.name));
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

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            allow_privileged_role: false,
            max_rows: DEFAULT_MAX_ROWS,
        }
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
    write_frame_parquet(&mut df, path, replace)
}

/// Writes a result frame as Parquet (atomically when `replace`, else only as a new file).
pub fn write_frame_parquet(
    df: &mut polars::prelude::DataFrame,
    path: &std::path::Path,
    replace: bool,
) -> Result<()> {
    use polars::prelude::*;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
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
