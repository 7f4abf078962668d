//! The named queries and ad-hoc SQL without a database: on a snapshot or the built-in sample,
//! through polars' SQL engine over the dataset's frames (docs/queries.md says why this engine).
//!
//! The frames are offered under Hydra's table and column names ([`VIEWS`]), so that a
//! question asked of a database can be asked of its snapshot in the same words: `buildsteps`,
//! `builds`, `buildstepoutputs`, `jobsets`, `jobsetevals`, lower-case columns, Hydra's 0/1
//! integers where the dataset keeps a boolean. A snapshot holds only what `snapshot` read: the
//! columns of `crate::dataset`, not every column Hydra has.
//!
//! Read-only here means: the statement is one query over those tables and nothing else. polars'
//! SQL can read any file the process can (`read_parquet('/etc/passwd')`, `read_csv(…)` in a
//! `FROM`) and keeps tables made by `CREATE TABLE` for later statements; [`check`] parses the
//! statement with the parser and options polars uses, and lets through only a query whose
//! every relation is one of the tables (or a `WITH` name of the same query). A statement runs
//! at most the statement timeout; past it the command ends (see [`collect_within`]).

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::time::Duration;

use polars::prelude::*;
use polars::sql::SQLContext;
use sqlparser::ast::{Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserOptions};

use super::{Bound, Query, bind};
use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// How a dataset column becomes a Hydra column.
#[derive(Clone, Copy)]
enum Conv {
    /// As it is.
    Same,
    /// The dataset's boolean as Hydra's 0/1 integer (`finished = 1`).
    BoolAsInt,
}

/// One Hydra table offered to SQL: its name, the dataset frame it comes from, and its columns
/// as (Hydra's name, the dataset's name, conversion).
struct View {
    name: &'static str,
    frame: fn(&Dataset) -> &DataFrame,
    columns: &'static [(&'static str, &'static str, Conv)],
}

use Conv::{BoolAsInt, Same};

/// The tables, named and typed as in Hydra's `hydra.sql` (docs/hydra.md §1), over the columns
/// `crate::dataset` reads. Hydra's own names are all lower case once PostgreSQL folds them.
const VIEWS: &[View] = &[
    View {
        name: "buildsteps",
        frame: |d| &d.steps,
        columns: &[
            ("build", "build", Same),
            ("stepnr", "stepnr", Same),
            ("type", "type", Same),
            ("drvpath", "drv_path", Same),
            ("busy", "busy", Same),
            ("status", "status", Same),
            ("starttime", "start_time", Same),
            ("stoptime", "stop_time", Same),
            ("machine", "machine", Same),
            ("system", "system", Same),
            ("propagatedfrom", "propagated_from", Same),
            ("overhead", "overhead_ms", Same),
            ("timesbuilt", "times_built", Same),
            ("isnondeterministic", "is_non_deterministic", BoolAsInt),
        ],
    },
    View {
        name: "builds",
        frame: |d| &d.builds,
        columns: &[
            ("id", "id", Same),
            ("jobset_id", "jobset_id", Same),
            ("job", "job", Same),
            ("system", "system", Same),
            ("nixname", "nix_name", Same),
            ("timestamp", "timestamp", Same),
            ("starttime", "start_time", Same),
            ("stoptime", "stop_time", Same),
            ("finished", "finished", BoolAsInt),
            ("buildstatus", "build_status", Same),
            ("iscachedbuild", "is_cached_build", BoolAsInt),
            ("priority", "priority", Same),
            ("globalpriority", "global_priority", Same),
            ("size", "size", Same),
            ("closuresize", "closure_size", Same),
            ("drvpath", "drv_path", Same),
        ],
    },
    View {
        name: "buildstepoutputs",
        frame: |d| &d.step_outputs,
        columns: &[
            ("build", "build", Same),
            ("stepnr", "stepnr", Same),
            ("name", "name", Same),
            ("path", "path", Same),
        ],
    },
    View {
        name: "jobsets",
        frame: |d| &d.jobsets,
        columns: &[
            ("id", "id", Same),
            ("project", "project", Same),
            ("name", "name", Same),
            ("enabled", "enabled", Same),
            ("schedulingshares", "scheduling_shares", Same),
            ("checkinterval", "check_interval", Same),
        ],
    },
    View {
        name: "jobsetevals",
        frame: |d| &d.evals,
        columns: &[
            ("id", "id", Same),
            ("jobset_id", "jobset_id", Same),
            ("timestamp", "timestamp", Same),
            ("checkouttime", "checkout_time", Same),
            ("evaltime", "eval_time", Same),
            ("hasnewbuilds", "has_new_builds", BoolAsInt),
            ("nrbuilds", "nr_builds", Same),
            ("nrsucceeded", "nr_succeeded", Same),
        ],
    },
];

/// The names of the tables a statement may read, with their columns (for `query sql`'s help
/// and refusals).
pub fn tables() -> Vec<(&'static str, Vec<&'static str>)> {
    VIEWS
        .iter()
        .map(|v| (v.name, v.columns.iter().map(|c| c.0).collect()))
        .collect()
}

/// A dataset's frames, ready for SQL.
pub struct Engine {
    ctx: SQLContext,
    /// The instant relative times count back from: the end of the recorded window, so that the
    /// same query on the same snapshot gives the same rows whenever it runs.
    now: i64,
    timeout: Duration,
}

impl Engine {
    /// Offers `ds`'s frames as Hydra's tables; the frames are shared, not copied. `now` is the
    /// instant the history was taken, which PostgreSQL's `now()` stands for offline: the end of
    /// the recorded window, else when the snapshot was written.
    pub fn new(ds: &Dataset, now: i64, timeout: Duration) -> Result<Engine> {
        let ctx = SQLContext::new();
        for v in VIEWS {
            let exprs: Vec<Expr> = v
                .columns
                .iter()
                .map(|&(hydra, ours, conv)| match conv {
                    Same => col(ours).alias(hydra),
                    BoolAsInt => col(ours).cast(DataType::Int32).alias(hydra),
                })
                .collect();
            ctx.register(v.name, (v.frame)(ds).clone().lazy().select(exprs));
        }
        Ok(Engine { ctx, now, timeout })
    }

    /// What relative times (`since=7d`) count back from.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Runs a named query with `given` parameters (the others take their defaults).
    pub fn run_named(&mut self, q: &Query, given: &[(String, String)]) -> Result<DataFrame> {
        let what = format!("query {}", q.name);
        let text = match &q.offline {
            super::Offline::No(why) => {
                return Err(Error::Usage(format!(
                    "query `{}` needs a live database: {why}",
                    q.name
                )));
            }
            super::Offline::Same => q.sql.as_str(),
            super::Offline::Own(text) => text.as_str(),
        };
        let bound = bind(q, given, self.now)?;
        let text = splice(text, &bound, self.now).map_err(|why| Error::parse(&what, why))?;
        self.run(&what, &text)
    }

    /// Runs one ad-hoc statement, once [`check`] has let it through.
    pub fn run_adhoc(&mut self, text: &str) -> Result<DataFrame> {
        check(text).map_err(|why| Error::refused("query sql", why))?;
        self.run("query sql", text)
    }

    fn run(&mut self, what: &str, text: &str) -> Result<DataFrame> {
        let lf = self
            .ctx
            .execute(text)
            .map_err(|e| Error::refused(what, one_line(&e.to_string())))?;
        let mut df = collect_within(what, lf, self.timeout)?;
        // One chunk per column: the printer reads a row at a time, by index.
        df.rechunk_mut();
        Ok(df)
    }
}

/// One cell of a result frame as JSON: integers and booleans as they are, floats as numbers
/// (NaN and infinities, which JSON lacks, as null, as PostgreSQL's results never hold them
/// either), text as strings and anything else in its display form.
pub fn cell(df: &DataFrame, row: usize, column: usize) -> serde_json::Value {
    use serde_json::Value;
    let Some(Ok(v)) = df.columns().get(column).map(|c| c.get(row)) else {
        return Value::Null;
    };
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int8(x) => x.into(),
        AnyValue::Int16(x) => x.into(),
        AnyValue::Int32(x) => x.into(),
        AnyValue::Int64(x) => x.into(),
        AnyValue::UInt8(x) => x.into(),
        AnyValue::UInt16(x) => x.into(),
        AnyValue::UInt32(x) => x.into(),
        AnyValue::UInt64(x) => x.into(),
        AnyValue::Float32(x) => serde_json::Number::from_f64(f64::from(x))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        AnyValue::Float64(x) => serde_json::Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        other => Value::String(other.to_string()),
    }
}

/// The first line of a message, for the one-line error.
fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

/// Collects `lf` on a thread of its own and waits at most `timeout` (and only until Ctrl-C).
/// polars offers no way to stop a plan that runs on the calling thread, and its cancellable
/// collect runs on the rayon pool, where a panic would abort the process; so a statement that
/// runs out of time is left to finish on its thread, its result dropped, while the command ends
/// with the refusal. A panic inside polars is caught and reported as the statement's failure.
pub fn collect_within(what: &str, lf: LazyFrame, timeout: Duration) -> Result<DataFrame> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("query".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lf.collect()));
            // The receiver may have given up already; then the result is not wanted.
            let _ = tx.send(r);
        })
        .map_err(|e| Error::system("starting the query's thread", e))?;
    let deadline = std::time::Instant::now() + timeout;
    // Ctrl-C is looked at this often while the statement runs: short enough to feel immediate.
    const POLL: Duration = Duration::from_millis(50);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(Error::refused(
                what,
                format!(
                    "the statement ran longer than the statement timeout ({} s); narrow it, or \
                     raise --statement-timeout",
                    timeout.as_secs_f64()
                ),
            ));
        }
        crate::interrupt::check()?;
        match rx.recv_timeout(left.min(POLL)) {
            Ok(Ok(r)) => return r.map_err(|e| Error::refused(what, one_line(&e.to_string()))),
            Ok(Err(panic)) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                return Err(Error::refused(
                    what,
                    format!("the SQL engine failed on it ({})", one_line(&msg)),
                ));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::Internal(format!("{what}: the query's thread ended")));
            }
        }
    }
}

/// Puts the bound parameters in place of `$1`, `$2`, … as literals, and `now` in place of
/// `$now` (an offline text's word for PostgreSQL's `now()`). polars' SQL takes no bound
/// parameters; the values are typed already ([`bind`] parsed integers and times), and text is
/// quoted with its quotes doubled, so a value is always one literal. `$` inside a quoted string
/// or a comment of the query's own text is left alone.
fn splice(text: &str, bound: &[Bound], now: i64) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => {
                out.push(c);
                for (_, d) in chars.by_ref() {
                    out.push(d);
                    if d == '\'' {
                        break;
                    }
                }
            }
            '-' if chars.peek().is_some_and(|&(_, d)| d == '-') => {
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '$' if text[i + 1..].starts_with("now") => {
                out.push_str(&now.to_string());
                chars.nth(2);
            }
            '$' if chars.peek().is_some_and(|&(_, d)| d.is_ascii_digit()) => {
                let mut n = 0usize;
                while let Some(&(_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                    n = n * 10 + (d as usize - '0' as usize);
                    chars.next();
                }
                let b = n
                    .checked_sub(1)
                    .and_then(|i| bound.get(i))
                    .ok_or_else(|| format!("${n} names no parameter"))?;
                // A literal has its type already, and polars takes no cast where only a
                // literal may stand (`LIMIT $2::int8`): the parameter's own cast goes.
                if text[i + 1..]
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .starts_with("::")
                {
                    chars.next();
                    chars.next();
                    while chars
                        .peek()
                        .is_some_and(|&(_, d)| d.is_ascii_alphanumeric())
                    {
                        chars.next();
                    }
                }
                match b {
                    Bound::Int(v) => out.push_str(&v.to_string()),
                    Bound::Text(s) => {
                        out.push('\'');
                        out.push_str(&s.replace('\'', "''"));
                        out.push('\'');
                    }
                }
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Checks an ad-hoc statement for the offline engine: parsed as polars parses it (the generic
/// dialect, trailing commas allowed), it must be exactly one query, reading only the tables of
/// [`VIEWS`] and its own `WITH` names, through plain table references, subqueries and joins.
/// The error is one line saying what was refused and why.
pub fn check(sql: &str) -> std::result::Result<(), String> {
    let stmts = Parser::new(&GenericDialect)
        .with_options(ParserOptions {
            trailing_commas: true,
            ..Default::default()
        })
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| format!("not a statement the offline SQL engine can parse: {e}"))?;
    let stmt = match stmts.as_slice() {
        [] => return Err("no statement given".into()),
        [one] => one,
        many => {
            return Err(format!(
                "{} statements given; `query sql` runs one query at a time",
                many.len()
            ));
        }
    };
    if !matches!(stmt, Statement::Query(_)) {
        return Err(format!(
            "only a query (SELECT, WITH … SELECT, VALUES) runs on a snapshot; this is {}",
            statement_kind(stmt)
        ));
    }
    let mut v = ReadOnly {
        statements: 0,
        known: VIEWS.iter().map(|v| v.name.to_string()).collect(),
    };
    match stmt.visit(&mut v) {
        ControlFlow::Break(why) => Err(why),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The first words of a statement's SQL, to name it in a refusal.
fn statement_kind(stmt: &Statement) -> String {
    let text = stmt.to_string();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

/// Walks a parsed query and stops at the first thing outside a read of the offered tables.
struct ReadOnly {
    statements: usize,
    /// The tables, and the `WITH` names met so far.
    known: BTreeSet<String>,
}

impl Visitor for ReadOnly {
    type Break = String;

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<String> {
        self.statements += 1;
        if self.statements > 1 {
            return ControlFlow::Break(format!(
                "a statement inside the query ({}) is refused: the query may only read",
                statement_kind(s)
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<String> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.known.insert(cte.alias.name.value.to_ascii_lowercase());
            }
        }
        if !q.locks.is_empty() {
            return ControlFlow::Break("a locking clause (FOR UPDATE/SHARE) is refused".into());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &sqlparser::ast::Select) -> ControlFlow<String> {
        if s.into.is_some() {
            return ControlFlow::Break("SELECT … INTO (which makes a table) is refused".into());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<String> {
        match t {
            TableFactor::Table { name, args, .. } => {
                if args.is_some() {
                    return ControlFlow::Break(format!(
                        "`{name}(…)` in FROM is refused: a table function reads files outside \
                         the snapshot"
                    ));
                }
                ControlFlow::Continue(())
            }
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => {
                ControlFlow::Continue(())
            }
            other => ControlFlow::Break(format!(
                "`{}` in FROM is refused: only tables, subqueries and joins are read",
                one_line(&other.to_string())
            )),
        }
    }

    fn pre_visit_relation(&mut self, name: &sqlparser::ast::ObjectName) -> ControlFlow<String> {
        let plain = match name.0.as_slice() {
            [one] => one.as_ident().map(|i| i.value.to_ascii_lowercase()),
            _ => None,
        };
        match plain {
            Some(n) if self.known.contains(&n) => ControlFlow::Continue(()),
            _ => ControlFlow::Break(format!(
                "no table `{name}` here: a snapshot offers {}",
                VIEWS.iter().map(|v| v.name).collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_literals_outside_strings_and_comments() {
        let b = [Bound::Int(42), Bound::Text("o'hara".into())];
        assert_eq!(
            splice("SELECT $1, '$1', $2 -- $2\nFROM t WHERE x < $now", &b, 7).unwrap(),
            "SELECT 42, '$1', 'o''hara' \nFROM t WHERE x < 7"
        );
        assert_eq!(
            splice("WHERE a >= $1::int8 AND b = $2::text LIMIT $1::int8", &b, 0).unwrap(),
            "WHERE a >= 42 AND b = 'o''hara' LIMIT 42"
        );
        assert!(splice("SELECT $3", &b, 0).is_err());
        assert!(splice("SELECT $0", &b, 0).is_err());
    }

    #[test]
    fn only_reads_of_the_offered_tables_pass() {
        for ok in [
            "SELECT count(*) FROM buildsteps",
            "WITH s AS (SELECT * FROM buildsteps) SELECT * FROM s JOIN builds b ON b.id = s.build",
            "SELECT * FROM (SELECT 1 AS x) t",
            "SELECT 1",
            "VALUES (1)",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            (
                "SELECT * FROM read_parquet('/etc/passwd')",
                "table function",
            ),
            ("SELECT * FROM read_csv('x.csv') AS t", "table function"),
            ("SELECT * FROM users", "no table `users`"),
            ("SELECT * FROM public.builds", "no table `public.builds`"),
            ("CREATE TABLE t AS SELECT 1", "only a query"),
            ("COPY builds TO '/tmp/x'", "only a query"),
            ("DROP TABLE builds", "only a query"),
            ("SELECT 1; SELECT 2", "2 statements"),
            ("", "no statement"),
            ("SELECT * INTO t FROM builds", "INTO"),
            ("SELECT * FROM UNNEST([1, 2])", "in FROM is refused"),
        ] {
            let why = check(bad).unwrap_err();
            assert!(why.contains(says), "{bad}: {why}");
            assert!(!why.contains('\n'), "{bad}: one line");
        }
    }
}
