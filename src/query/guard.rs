//! The check an ad-hoc statement (`query sql`) passes before it is sent to the server.
//!
//! A `READ ONLY` transaction only stops writes to tables. Under a privileged role it still lets
//! `COPY … TO PROGRAM` run a shell command on the database server, `COPY … TO 'file'` write a
//! server file, `DO` run code, and functions such as `pg_read_file`, `lo_export`,
//! `pg_terminate_backend` or `dblink` act outside the transaction, where no rollback reaches. So
//! the statement is parsed first — by PostgreSQL's own parser (libpg_query, through the
//! `pg_query` crate), so that we see the tree the server will see — and only a query is let
//! through:
//!
//! - exactly one statement, a `SELECT` (which includes `VALUES`, `TABLE name`, set operations
//!   and `WITH` of queries), or `EXPLAIN` of one;
//! - nowhere in its tree another statement (a data-modifying `WITH`), `SELECT … INTO` (creates a
//!   table) or a locking clause (`FOR UPDATE`/`FOR SHARE`, row locks that queue Hydra behind us);
//! - nowhere in its tree a call of a function in [`REFUSED_FUNCTIONS`].
//!
//! The parser runs with `standard_conforming_strings` on, and the session pins the same setting
//! (`source::postgres::connect`), so both read string literals alike: with it off on the server,
//! `'a\'` would end elsewhere and the server would see other tokens than we checked. Server
//! encodings are all ASCII-safe (PostgreSQL refuses SJIS and the like as server encodings), so
//! the UTF-8 text we parse tokenizes the same on the server.
//!
//! This check is one layer of four (docs/read-only.md): the session is read-only, the query runs
//! in a `READ ONLY` transaction that is always rolled back, its locks are checked afterwards, and
//! a privileged role is refused unless the user insists.

use serde_json::Value;

/// A function the check refuses, by name: an exact name, or a prefix ending in `*`.
pub struct RefusedFunction {
    pub pattern: &'static str,
    pub reason: &'static str,
}

const SERVER_FILES: &str = "reads the database server's files";
const ADMINPACK: &str = "writes, renames or removes the database server's files";
const LARGE_OBJECTS: &str = "large objects: lo_import and lo_export read and write the server's files, \
     the others create or change objects outside the query";
const CONFIG: &str = "reloads the server's configuration or rotates its log";
const SIGNALS: &str = "signals another session";
const ADVISORY: &str = "takes or releases advisory locks, which can outlive the transaction";
const FOREIGN: &str =
    "opens a connection to another database, where this session's READ ONLY does not apply";
const SETTINGS: &str = "changes a setting of the session (transaction_read_only, search_path, …)";
const XID: &str = "assigns a transaction id, a write to the server's state";
const SEQUENCES: &str = "advances or sets a sequence, which no rollback undoes";
const NOTIFY: &str = "sends a notification to other sessions";
const SQL_TEXT: &str = "runs SQL given as text, which this check cannot see";
const WAL: &str = "controls the server's write-ahead log, backups or recovery";
const REPLICATION: &str = "creates, consumes, advances or drops replication state";
const STATS: &str = "resets the server's statistics";
const SERVER_LOG: &str = "writes to the server's log";
const UPGRADE: &str = "an internal function of pg_upgrade";

/// Functions with effects outside the transaction, refused wherever they appear in the tree
/// (`SELECT f()`, `FROM f()`, an argument, a subquery, a `WITH`). Names are compared after
/// the parser's case folding, and case-insensitively on top, so a quoted `"PG_READ_FILE"` (which
/// the server would not find anyway) is refused too. The schema a call names is ignored:
/// `pg_catalog.pg_read_file` is `pg_read_file`.
pub const REFUSED_FUNCTIONS: &[RefusedFunction] = &[
    refuse("pg_read_file", SERVER_FILES),
    refuse("pg_read_binary_file", SERVER_FILES),
    refuse("pg_stat_file", SERVER_FILES),
    refuse("pg_ls_*", SERVER_FILES),
    refuse("pg_file_*", ADMINPACK),
    refuse("pg_logdir_ls", ADMINPACK),
    refuse("lo_*", LARGE_OBJECTS),
    refuse("loread", LARGE_OBJECTS),
    refuse("lowrite", LARGE_OBJECTS),
    refuse("pg_reload_conf", CONFIG),
    refuse("pg_rotate_logfile", CONFIG),
    refuse("pg_logfile_rotate", CONFIG),
    refuse("pg_terminate_backend", SIGNALS),
    refuse("pg_cancel_backend", SIGNALS),
    refuse("pg_signal_backend", SIGNALS),
    refuse("pg_advisory*", ADVISORY),
    refuse("pg_try_advisory*", ADVISORY),
    refuse("dblink*", FOREIGN),
    refuse("postgres_fdw_*", FOREIGN),
    refuse("set_config", SETTINGS),
    refuse("txid_current", XID),
    refuse("pg_current_xact_id", XID),
    refuse("nextval", SEQUENCES),
    refuse("setval", SEQUENCES),
    refuse("pg_notify", NOTIFY),
    refuse("query_to_xml*", SQL_TEXT),
    refuse("cursor_to_xml*", SQL_TEXT),
    refuse("ts_stat", SQL_TEXT),
    refuse("crosstab*", SQL_TEXT),
    refuse("connectby", SQL_TEXT),
    refuse("pg_switch_wal", WAL),
    refuse("pg_create_restore_point", WAL),
    refuse("pg_backup_*", WAL),
    refuse("pg_start_backup", WAL),
    refuse("pg_stop_backup", WAL),
    refuse("pg_promote", WAL),
    refuse("pg_wal_replay_*", WAL),
    refuse("pg_create_*_replication_slot", REPLICATION),
    refuse("pg_copy_*_replication_slot", REPLICATION),
    refuse("pg_drop_replication_slot", REPLICATION),
    refuse("pg_replication_slot_advance", REPLICATION),
    refuse("pg_sync_replication_slots", REPLICATION),
    refuse("pg_logical_*", REPLICATION),
    refuse("pg_replication_origin_*", REPLICATION),
    refuse("pg_stat_reset*", STATS),
    refuse("pg_stat_statements_reset", STATS),
    refuse("pg_log_backend_memory_contexts", SERVER_LOG),
    refuse("binary_upgrade_*", UPGRADE),
];

const fn refuse(pattern: &'static str, reason: &'static str) -> RefusedFunction {
    RefusedFunction { pattern, reason }
}

impl RefusedFunction {
    /// Whether `name` (already lower case) is this entry: `*` matches any run of characters,
    /// once (`pg_create_*_replication_slot`) or at the end (`lo_*`).
    pub fn matches(&self, name: &str) -> bool {
        match self.pattern.split_once('*') {
            None => name == self.pattern,
            Some((head, tail)) => {
                name.len() >= head.len() + tail.len()
                    && name.starts_with(head)
                    && name.ends_with(tail)
            }
        }
    }
}

/// The entry that refuses `name`, if any.
pub fn refused_function(name: &str) -> Option<&'static RefusedFunction> {
    let name = name.to_ascii_lowercase();
    REFUSED_FUNCTIONS.iter().find(|r| r.matches(&name))
}

/// Checks one ad-hoc statement; the error is one line saying what was refused and why.
pub fn check(sql: &str) -> Result<(), String> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).map_err(|e| match e {
        // prost refuses messages nested deeper than 100: a tree that deep is refused, not
        // half-checked.
        pg_query::Error::Decode(_) => {
            "the statement is nested too deeply to be checked; simplify it".to_string()
        }
        other => format!("not a statement PostgreSQL can parse: {other}"),
    })?;
    let stmts = &parsed.protobuf.stmts;
    let top = match stmts.as_slice() {
        [] => return Err("no statement given".into()),
        [one] => one.stmt.as_ref().and_then(|n| n.node.as_ref()),
        many => {
            return Err(format!(
                "{} statements given; `query sql` runs one query at a time",
                many.len()
            ));
        }
    };
    let Some(top) = top else {
        return Err("no statement given".into());
    };
    let tree = serde_json::to_value(top)
        .map_err(|e| format!("the parse tree could not be read for checking: {e}"))?;
    // The one statement, and (for EXPLAIN) the query it explains.
    let (kind, body) = single_entry(&tree).ok_or("the parse tree has an unexpected form")?;
    let query = match kind {
        "SelectStmt" => &tree,
        "ExplainStmt" => {
            let inner = body.get("query").and_then(|q| q.get("node"));
            match inner.and_then(single_entry) {
                Some(("SelectStmt", _)) => inner.unwrap_or(&tree),
                Some((k, _)) => return Err(refused_statement(k, " under EXPLAIN")),
                None => return Err("EXPLAIN of nothing".into()),
            }
        }
        other => return Err(refused_statement(other, "")),
    };
    walk(query)
}

/// Refuses every node of `tree` that is not part of a plain query.
fn walk(tree: &Value) -> Result<(), String> {
    let mut stack = vec![tree];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (key, child) in map {
                    match key.as_str() {
                        // `into_clause` is a plain field of SelectStmt (null when absent);
                        // the node form is refused too, wherever it appears.
                        "into_clause" if child.is_null() => {}
                        "into_clause" | "IntoClause" => {
                            return Err(
                                "refused: SELECT … INTO creates a table; only queries are run"
                                    .into(),
                            );
                        }
                        "LockingClause" => {
                            return Err("refused: FOR UPDATE/SHARE locks rows (Hydra's own \
                                        updates would queue behind them); only plain reads \
                                        are run"
                                .into());
                        }
                        "FuncCall" => check_call(child)?,
                        k if k.ends_with("Stmt") && k != "SelectStmt" => {
                            return Err(refused_statement(k, " inside the query"));
                        }
                        _ => {}
                    }
                    stack.push(child);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a call of a function in [`REFUSED_FUNCTIONS`].
fn check_call(call: &Value) -> Result<(), String> {
    // funcname is a list of String nodes: [schema,] name.
    let name = call
        .get("funcname")
        .and_then(Value::as_array)
        .and_then(|parts| parts.last())
        .and_then(|n| n.get("node"))
        .and_then(|n| n.get("String"))
        .and_then(|s| s.get("sval"))
        .and_then(Value::as_str)
        .ok_or("a function call of an unexpected form")?;
    match refused_function(name) {
        Some(r) => Err(format!("refused: function {name}() {}", r.reason)),
        None => Ok(()),
    }
}

/// The one `(key, value)` of a node object such as `{"SelectStmt": {…}}`.
fn single_entry(v: &Value) -> Option<(&str, &Value)> {
    let map = v.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// "refused: COPY …" for a statement node name (`CopyStmt`).
fn refused_statement(node: &str, place: &str) -> String {
    format!(
        "refused: {}{place}; only a query (SELECT, VALUES, TABLE, WITH of queries, EXPLAIN of \
         one) is run",
        statement_words(node)
    )
}

/// The SQL words of a statement node: `CreateTableAsStmt` → `CREATE TABLE AS`, with the few
/// whose node names say something else.
fn statement_words(node: &str) -> String {
    match node {
        "VariableSetStmt" => return "SET/RESET".into(),
        "VariableShowStmt" => return "SHOW (use SELECT current_setting(…))".into(),
        "TransactionStmt" => return "a transaction command (BEGIN, COMMIT, …)".into(),
        "DoStmt" => return "DO (runs procedural code)".into(),
        "CopyStmt" => return "COPY (reads or writes server files and programs)".into(),
        "CallStmt" => return "CALL (runs a procedure)".into(),
        _ => {}
    }
    let base = node.strip_suffix("Stmt").unwrap_or(node);
    let mut words = String::new();
    for (i, c) in base.char_indices() {
        if c.is_ascii_uppercase() && i > 0 {
            words.push(' ');
        }
        words.push(c.to_ascii_uppercase());
    }
    words
}

/// A second, independent look at a statement [`check`] accepted, for the fuzz target and the
/// property test: it re-parses and looks by other means — `pg_query`'s own statement types and
/// function list, and a plain text search of the serialised tree — for anything the check must
/// have refused. `Err` names what slipped through.
#[doc(hidden)]
pub fn accepted_is_a_query(sql: &str) -> Result<(), String> {
    let parsed =
        pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).map_err(|e| e.to_string())?;
    let types = parsed.statement_types();
    if !(types == ["SelectStmt"] || types == ["ExplainStmt"]) {
        return Err(format!("statement types {types:?}"));
    }
    for name in parsed.functions() {
        let last = name.rsplit('.').next().unwrap_or(&name);
        if let Some(r) = refused_function(last) {
            return Err(format!("calls {name} ({})", r.pattern));
        }
    }
    let text = serde_json::to_string(&parsed.protobuf).map_err(|e| e.to_string())?;
    for bad in [
        "\"LockingClause\"",
        "\"IntoClause\"",
        "\"InsertStmt\"",
        "\"UpdateStmt\"",
        "\"DeleteStmt\"",
        "\"MergeStmt\"",
        "\"CopyStmt\"",
        "\"DoStmt\"",
    ] {
        if text.contains(bad) {
            return Err(format!("the tree holds {bad}"));
        }
    }
    if text.contains("\"into_clause\":{") {
        return Err("the tree holds an into_clause".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> String {
        match check(sql) {
            Ok(()) => panic!("accepted: {sql}"),
            Err(why) => why,
        }
    }

    #[test]
    fn queries_pass() {
        for sql in [
            "SELECT 1",
            "select count(*) from buildsteps where stoptime >= 5",
            "VALUES (1), (2)",
            "TABLE builds",
            "WITH s AS (SELECT * FROM buildsteps) SELECT machine, count(*) FROM s GROUP BY 1",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) \
             SELECT n FROM r",
            "SELECT 1 UNION SELECT 2 EXCEPT SELECT 3",
            "EXPLAIN SELECT * FROM builds",
            "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM builds",
            "SELECT current_setting('server_version'), now(), lower('x'), 'pg_read_file'",
            "SELECT * FROM generate_series(1, 3)",
            "SELECT 'a\\' AS backslash",
        ] {
            assert_eq!(check(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn every_named_query_passes() {
        for q in super::super::all().unwrap() {
            assert_eq!(check(&q.sql), Ok(()), "{}", q.name);
        }
    }

    #[test]
    fn statements_other_than_queries_are_refused_by_kind() {
        for (sql, words) in [
            ("COPY (SELECT 1) TO PROGRAM 'id > /tmp/x'", "COPY"),
            ("copy builds to '/tmp/y'", "COPY"),
            ("COPY builds FROM STDIN", "COPY"),
            ("DO $$ BEGIN PERFORM 1; END $$", "DO"),
            ("CALL p()", "CALL"),
            ("SET search_path = evil", "SET"),
            ("RESET ALL", "SET/RESET"),
            ("LOCK TABLE builds", "LOCK"),
            ("LISTEN ch", "LISTEN"),
            ("NOTIFY ch", "NOTIFY"),
            ("PREPARE p AS SELECT 1", "PREPARE"),
            ("EXECUTE p", "EXECUTE"),
            ("INSERT INTO builds DEFAULT VALUES", "INSERT"),
            ("UPDATE builds SET finished = 1", "UPDATE"),
            ("DELETE FROM builds", "DELETE"),
            ("CREATE TABLE t (x int)", "CREATE"),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE AS"),
            ("DECLARE c CURSOR FOR SELECT 1", "DECLARE CURSOR"),
            ("COMMIT", "transaction command"),
            ("SHOW search_path", "SHOW"),
            ("VACUUM builds", "VACUUM"),
            ("EXPLAIN ANALYZE DELETE FROM builds", "DELETE"),
            (
                "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
                "CREATE TABLE AS",
            ),
        ] {
            let why = refused(sql);
            assert!(why.contains(words), "{sql}: {why}");
            assert!(why.starts_with("refused: "), "{sql}: {why}");
        }
    }

    #[test]
    fn writes_and_locks_hidden_inside_a_query_are_refused() {
        for (sql, words) in [
            (
                "WITH d AS (DELETE FROM builds RETURNING id) SELECT * FROM d",
                "DELETE",
            ),
            (
                "WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT 1",
                "INSERT",
            ),
            ("SELECT * INTO newtable FROM builds", "INTO"),
            ("SELECT * FROM builds FOR UPDATE", "FOR UPDATE"),
            ("SELECT * FROM builds FOR SHARE SKIP LOCKED", "FOR UPDATE"),
            (
                "SELECT * FROM (SELECT * FROM builds FOR NO KEY UPDATE) b",
                "FOR UPDATE",
            ),
            ("EXPLAIN SELECT * FROM builds FOR UPDATE", "FOR UPDATE"),
        ] {
            let why = refused(sql);
            assert!(why.contains(words), "{sql}: {why}");
        }
    }

    #[test]
    fn several_statements_and_nonsense_are_refused() {
        assert!(refused("SELECT 1; SELECT 2").contains("2 statements"));
        assert!(refused("SELECT 1; COPY x TO PROGRAM 'id'").contains("2 statements"));
        assert!(refused("").contains("no statement"));
        assert!(refused("  ; ").contains("no statement"));
        assert!(refused("SELEKT 1").contains("parse"));
        assert!(refused("SELECT 1\0").contains("parse"));
    }

    /// Every entry of the list is refused by name, in every place a call can stand.
    #[test]
    fn every_refused_function_is_refused_wherever_it_is_called() {
        for r in REFUSED_FUNCTIONS {
            let name = r.pattern.replace('*', "x");
            assert_eq!(refused_function(&name).map(|e| e.pattern), Some(r.pattern));
            for sql in [
                format!("SELECT {name}()"),
                format!("SELECT pg_catalog.{name}('a', 1)"),
                format!("SELECT * FROM {name}('x')"),
                format!("SELECT * FROM builds WHERE id = (SELECT {name}())"),
                format!("WITH a AS (SELECT upper({name}()::text)) SELECT * FROM a"),
                format!(
                    "SELECT 1 UNION ALL SELECT length({}(1))",
                    name.to_uppercase()
                ),
                format!("EXPLAIN ANALYZE SELECT \"{name}\"()"),
                format!("VALUES (coalesce(NULL, {name}(1)))"),
                format!("SELECT CASE WHEN true THEN {name}() END ORDER BY {name}()"),
            ] {
                let why = refused(&sql);
                assert!(
                    why.contains(&name) && why.contains(r.reason),
                    "{sql}: {why}"
                );
            }
        }
    }

    #[test]
    fn patterns_match_whole_names_only() {
        assert!(refused_function("lo_export").is_some());
        assert!(refused_function("pg_create_logical_replication_slot").is_some());
        assert!(refused_function("pg_create_restore_point").is_some());
        assert!(refused_function("lower").is_none());
        assert!(refused_function("pg_create_replication").is_none());
        assert!(refused_function("my_pg_read_file").is_none());
        assert!(refused_function("nextval2").is_none());
    }

    #[test]
    fn a_deep_expression_is_refused_not_half_checked() {
        let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        let _ = check(&deep);
        let chain = format!("SELECT {}", vec!["1"; 400].join(" || "));
        // Either checked in full or refused; never accepted with a refused call hidden deep.
        let hidden = format!(
            "SELECT {} || pg_read_file('/etc/passwd')",
            vec!["'a'"; 400].join(" || ")
        );
        assert!(check(&hidden).is_err());
        let _ = check(&chain);
    }
}
