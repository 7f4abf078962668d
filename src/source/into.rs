//! `sample --into`: the one command that writes to a database, and only to an empty one.
//!
//! Two databases count as empty. One whose target schema (the first of the search path,
//! `public` as a rule) holds no table, view or sequence of its own: the load creates Hydra's
//! tables there from our DDL ([`Ddl`]: schema 80, the C++ runner's era the sample models, 87,
//! or 88–90 made from 87 by our rendering of upstream's migrations), written from upstream's
//! schema constraint by constraint (`ddl/`, docs/hydra.md §1). And one that holds Hydra's schema
//! with no history in it, as `hydra-init` (or upstream's `hydra.sql` alone) leaves a new Hydra:
//! the load fills those tables, whatever version and line of development made them, by the
//! columns they have ([`Target`]). Anything else is refused, naming what was found.
//!
//! Upstream's foreign keys are met, not bypassed: the projects' owner gets its `Users` row.
//! Where the tables have a `storeDir` (schema 89 and later), store paths are written in the
//! converted form (basename, store dir beside it); at 89, where `storeDir` may be null, the
//! rows are left as `hydra-backfill-store-dirs` leaves them part-way ([`StoreDirs::Partway`]),
//! so that both forms are there to be read. The whole load is one transaction ([`Load`]; a
//! history of many weeks goes in a week at a time), each table written with
//! `COPY … FROM STDIN (FORMAT csv)`, so a failure leaves the database as it was.

use std::collections::{HashMap, HashSet};

use futures_util::SinkExt;
use polars::prelude::*;

use super::postgres::{Session, connect};
use crate::conninfo::ConnParams;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::output::csv_field;

/// The DDL variants we ship: the version `sample --into` creates in an empty database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ddl {
    V80,
    V87,
    /// 87 and our rendering of upstream's upgrade-88 (times to bigint).
    V88,
    /// 88 and the store-dir line's upgrade-89 (a nullable storeDir beside each store path).
    V89,
    /// 89 and upgrade-90 (storeDir mandatory, tied to the parent row's).
    V90,
}

impl Ddl {
    /// The whole script: the schema, then each migration up to the version, as `hydra-init`
    /// would have applied them.
    pub fn sql(self) -> &'static str {
        match self {
            Ddl::V80 => include_str!("ddl/hydra-80.sql"),
            Ddl::V87 => include_str!("ddl/hydra-87.sql"),
            Ddl::V88 => concat!(
                include_str!("ddl/hydra-87.sql"),
                include_str!("ddl/upgrade-88.sql")
            ),
            Ddl::V89 => concat!(
                include_str!("ddl/hydra-87.sql"),
                include_str!("ddl/upgrade-88.sql"),
                include_str!("ddl/upgrade-89.sql")
            ),
            Ddl::V90 => concat!(
                include_str!("ddl/hydra-87.sql"),
                include_str!("ddl/upgrade-88.sql"),
                include_str!("ddl/upgrade-89.sql"),
                include_str!("ddl/upgrade-90.sql")
            ),
        }
    }

    pub fn version(self) -> i32 {
        match self {
            Ddl::V80 => 80,
            Ddl::V87 => 87,
            Ddl::V88 => 88,
            Ddl::V89 => 89,
            Ddl::V90 => 90,
        }
    }
}

impl std::str::FromStr for Ddl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "80" => Ok(Ddl::V80),
            "87" => Ok(Ddl::V87),
            "88" => Ok(Ddl::V88),
            "89" => Ok(Ddl::V89),
            "90" => Ok(Ddl::V90),
            _ => Err(format!(
                "schema `{s}` is not one we ship (80, 87, 88, 89 or 90)"
            )),
        }
    }
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSummary {
    /// Rows loaded per table, in load order.
    pub tables: Vec<(&'static str, usize)>,
    /// Whether the tables were created from our DDL (else they were there, empty).
    pub created: bool,
    /// The database's SchemaVersion after the load.
    pub schema_version: Option<i32>,
    /// How store paths were written.
    pub store_dirs: StoreDirs,
}

/// How many of the relations found are named when a database is refused: enough to recognise
/// it, few enough for one line.
const NAMED: usize = 3;

/// The tables the load writes, each of which must be there for a Hydra schema to be filled:
/// `users`, then [`HISTORY`].
const LOADED: [&str; 7] = [
    "users",
    "projects",
    "jobsets",
    "builds",
    "buildsteps",
    "buildstepoutputs",
    "jobsetevals",
];

/// The tables that hold a Hydra's history: a schema whose every one is empty is a new Hydra
/// (`hydra-create-user` may have added users already).
const HISTORY: &[&str] = LOADED.split_at(1).1;

/// The database the load was given, as found inside its transaction.
enum Target {
    /// Nothing of its own in the target schema: our DDL creates Hydra's tables.
    Empty,
    /// Hydra's tables, none of them holding history: they are filled as they are.
    EmptyHydra,
}

/// Tells what the target schema holds. Refuses a schema with tables, views or sequences of
/// its own (an extension's own, such as PostGIS's, do not count) unless they are Hydra's
/// tables without history, so that the load never mixes the sample with someone's data; the
/// error names a few of them.
async fn classify(s: &Session, params: &ConnParams) -> Result<Target> {
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
        return Ok(Target::Empty);
    };
    let schema: String = first.get::<_, Option<String>>(0).unwrap_or_default();
    let names: Vec<String> = rows.iter().map(|r| r.get::<_, String>(1)).collect();
    let refuse = |what: String| Error::Exists {
        target: params.redacted(),
        reason: format!(
            "is not empty: schema {schema} already holds {what}; `sample --into` only loads \
             into an empty database (create one with `createdb`) or a new Hydra's empty tables"
        ),
    };
    let is_hydra = std::iter::once("schemaversion")
        .chain(LOADED)
        .all(|t| names.iter().any(|n| n == t));
    if !is_hydra {
        // A name may hold anything a quoted identifier can, a newline too: escaped, it stays
        // one line.
        let shown: Vec<String> = names
            .iter()
            .take(NAMED)
            .map(|n| n.escape_debug().to_string())
            .collect();
        let more = match names.len().saturating_sub(NAMED) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        return Err(refuse(format!("{}{more}", shown.join(", "))));
    }
    let holding = HISTORY
        .iter()
        .map(|t| format!("SELECT '{t}' WHERE EXISTS (SELECT 1 FROM {t})"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let held = s
        .client
        .query(&holding, &[])
        .await
        .map_err(|e| s.error("checking that Hydra's tables are empty", e))?;
    let held: Vec<String> = held.iter().map(|r| r.get::<_, String>(0)).collect();
    if !held.is_empty() {
        return Err(refuse(format!(
            "a Hydra history ({} hold rows)",
            held.join(", ")
        )));
    }
    refuse_others_code(s).await?;
    Ok(Target::EmptyHydra)
}

/// What a load writes besides [`LOADED`]: upstream's NrBuilds trigger counts builds into
/// `nrbuilds`, and the load's own status row goes into `systemstatus`.
const ALSO_WRITTEN: [&str; 2] = ["nrbuilds", "systemstatus"];

/// Refuses to fill tables that run another role's code as ours: a trigger's function, a
/// column's default or a check runs as the role writing, so a table (its defaults and checks)
/// or a trigger function owned by a role that is neither ours nor a superuser could act with
/// our powers. `hydra-init` run as the role that loads leaves nothing of the kind.
async fn refuse_others_code(s: &Session) -> Result<()> {
    let rows = s
        .client
        .query(
            "WITH us AS (SELECT oid FROM pg_roles WHERE rolname = current_user), \
                  trusted AS (SELECT oid FROM pg_roles WHERE rolsuper OR oid = (SELECT oid FROM us)) \
             SELECT 'table ' || c.relname, pg_get_userbyid(c.relowner)::text \
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = current_schema() AND c.relname = ANY ($1) \
                AND c.relowner NOT IN (SELECT oid FROM trusted) \
             UNION ALL \
             SELECT 'trigger ' || t.tgname || ' on ' || c.relname, pg_get_userbyid(p.proowner)::text \
               FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
               JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid \
              WHERE NOT t.tgisinternal AND n.nspname = current_schema() AND c.relname = ANY ($1) \
                AND p.proowner NOT IN (SELECT oid FROM trusted) \
             ORDER BY 1",
            &[&LOADED
                .iter()
                .chain(&ALSO_WRITTEN)
                .copied()
                .collect::<Vec<&str>>()],
        )
        .await
        .map_err(|e| s.error("checking who owns Hydra's tables", e))?;
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let (what, owner): (String, String) = (first.get(0), first.get(1));
    Err(Error::refused(
        "sample --into",
        format!(
            "{} is owned by role {owner}, not by the role loading nor a superuser: its code \
             would run with this role's powers; load as {owner}",
            what.escape_debug(),
            owner = owner.escape_debug()
        ),
    ))
}

/// How store paths are written, which depends on the columns the tables have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDirs {
    /// No storeDir column (before 89): full paths.
    Full,
    /// storeDir is mandatory (90): every path a basename, its store dir beside it.
    Converted,
    /// storeDir may be null (89): as `hydra-backfill-store-dirs` (NixOS/hydra @ 9b3e8af9)
    /// leaves the tables part-way through. It converts Builds first, whole, by ascending id,
    /// then BuildSteps, BuildOutputs and BuildStepOutputs by ascending build; and Hydra itself
    /// writes every new row converted. So: all builds converted; the steps of the oldest half
    /// of the builds converted (the backfill's progress), and the steps and step outputs of
    /// the newest quarter (written after the upgrade); the rest full paths with a null
    /// storeDir.
    Partway,
}

/// What the target's tables look like, read from the catalog once the tables are there.
struct Shape {
    /// Columns per loaded table, lower case.
    columns: HashMap<String, HashSet<String>>,
    store_dirs: StoreDirs,
    version: Option<i32>,
    /// The NrBuilds('finished') trigger, if it is on Builds and ours to switch off.
    nr_builds_trigger: Option<String>,
}

impl Shape {
    fn has(&self, table: &str, column: &str) -> bool {
        self.columns.get(table).is_some_and(|c| c.contains(column))
    }
}

async fn shape(s: &Session) -> Result<Shape> {
    let tables: Vec<&str> = LOADED.iter().copied().chain(["systemstatus"]).collect();
    let rows = s
        .client
        .query(
            "SELECT table_name::text, column_name::text, is_nullable::text \
               FROM information_schema.columns \
              WHERE table_schema = current_schema() AND table_name = ANY ($1)",
            &[&tables],
        )
        .await
        .map_err(|e| s.error("reading the columns of Hydra's tables", e))?;
    let mut columns: HashMap<String, HashSet<String>> = HashMap::new();
    let mut store_dir_nullable = None;
    for r in &rows {
        let (table, column, nullable): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        if table == "builds" && column == "storedir" {
            store_dir_nullable = Some(nullable == "YES");
        }
        columns.entry(table).or_default().insert(column);
    }
    let store_dirs = match store_dir_nullable {
        None => StoreDirs::Full,
        Some(false) => StoreDirs::Converted,
        Some(true) => StoreDirs::Partway,
    };
    let version = s
        .client
        .query_opt("SELECT version::int4 FROM schemaversion LIMIT 1", &[])
        .await
        .map_err(|e| s.error("reading SchemaVersion", e))?
        .map(|r| r.get::<_, i32>(0));
    // Upstream's trigger updates one NrBuilds row per finished build: a hundred thousand
    // updates of one row in one transaction, each walking the row's growing chain of versions.
    // Where the role owns Builds, the trigger is off during the load and the count is added
    // once after it.
    let trigger = s
        .client
        .query_opt(
            "SELECT t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
               JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = current_schema() AND c.relname = 'builds' \
                AND t.tgname = 'nrbuildsfinished' AND pg_has_role(c.relowner, 'USAGE')",
            &[],
        )
        .await
        .map_err(|e| s.error("looking for the NrBuilds trigger", e))?
        .map(|r| r.get::<_, String>(0));
    Ok(Shape {
        columns,
        store_dirs,
        version,
        nr_builds_trigger: trigger,
    })
}

/// The name the sample's projects are owned by, and its `Users` row: upstream's
/// `Projects.owner` references `Users(userName)`. The password column holds a hash of the
/// password in Hydra; `!` is the hash of none, so nobody can sign in as this user.
const OWNER: &str = "hydra-bottleneck";

/// Loads `ds` into the database at `params`: into tables it creates with `ddl` when the target
/// schema holds nothing, or into a new Hydra's empty tables ([`classify`]).
pub async fn load_into(params: &ConnParams, ds: &Dataset, ddl: Ddl) -> Result<LoadSummary> {
    let mut load = Load::begin(params, ddl).await?;
    load.add(ds).await?;
    load.finish(ds.meta.runner).await
}

/// A load in progress: one transaction, begun by [`Load::begin`], taking one part of the
/// history after another ([`Load::add`], a week of `sample --into --weeks` at a time, so that a
/// long history is never held whole) and committed by [`Load::finish`]. Dropped unfinished (an
/// error, an interrupt), the session closes and the server rolls the whole load back.
pub struct Load {
    s: Session,
    created: bool,
    shape: Shape,
    /// Index definitions dropped for the load and made again at its end.
    deferred: Vec<String>,
    /// Rows written per table, in the order the tables are loaded.
    written: Vec<(&'static str, usize)>,
    /// For [`StoreDirs::Partway`], set by the first part (the latest week): the builds below
    /// the first were backfilled; the builds from the second on were written after the upgrade.
    partway: Option<(i64, i64)>,
}

impl Load {
    /// Opens the load's transaction, checks the target is empty ([`classify`]) and readies the
    /// tables: created from `ddl` in an empty schema, the projects' owner written, the NrBuilds
    /// trigger paused and the history's indexes deferred where the load may do so.
    pub async fn begin(params: &ConnParams, ddl: Ddl) -> Result<Load> {
        // A part's COPY takes a while at a large scale (a week of the year at scale 6.5: some
        // 750,000 steps); the statement timeout is for analysis reads, not this.
        let s = connect(params, false, std::time::Duration::from_secs(3600)).await?;
        s.client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| s.error("starting the load", e))?;
        // Checked inside the load's transaction, so that nothing can appear between check and
        // load.
        let created = match classify(&s, params).await? {
            Target::Empty => {
                s.client
                    .batch_execute(ddl.sql())
                    .await
                    .map_err(|e| s.error("creating the Hydra tables", e))?;
                true
            }
            Target::EmptyHydra => false,
        };
        let shape = shape(&s).await?;
        s.client
            .execute(
                "INSERT INTO users (username, emailaddress, password) VALUES ($1, '', '!') \
                 ON CONFLICT (username) DO NOTHING",
                &[&OWNER],
            )
            .await
            .map_err(|e| s.error("writing the projects' owner into Users", e))?;
        if let Some(t) = &shape.nr_builds_trigger {
            s.client
                .batch_execute(&format!("ALTER TABLE builds DISABLE TRIGGER {t}"))
                .await
                .map_err(|e| s.error("pausing the NrBuilds trigger", e))?;
        }
        // Upstream's indexes are maintained row by row during a COPY. Its trigram index on
        // Builds.drvPath (`IndexTrgmBuildsOnDrvpath`, hydra.sql) made the server spend over
        // forty minutes re-encoding posting lists at ten million builds; its b-trees on store
        // paths (`IndexBuildStepsOnDrvPath`, `IndexBuildsOnDrvPath`, `IndexBuildStepOutputsOn
        // Path`) take keys in random order, and once they outgrow the server's buffers each row
        // costs page reads: a year at scale 6.5 slowed from 2 GB a minute to 0.4 within half
        // an hour. Where the load made the tables, every index of the history's tables
        // ([`HISTORY`]) that no constraint owns (the primary and unique keys stay, for the
        // foreign keys to be checked against) is dropped and made again from its own
        // definition once the rows are in, each as one sorted build, as `pg_restore` makes
        // indexes after the data.
        let deferred: Vec<String> = if created {
            let rows = s
                .client
                .query(
                    "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) \
                       FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
                       JOIN pg_namespace n ON n.oid = c.relnamespace \
                      WHERE n.nspname = current_schema() AND c.relname = ANY($1) \
                        AND NOT EXISTS (SELECT 1 FROM pg_constraint k \
                                         WHERE k.conindid = i.indexrelid) \
                      ORDER BY 1",
                    &[&HISTORY],
                )
                .await
                .map_err(|e| s.error("looking for the indexes of the history's tables", e))?;
            let mut defs = Vec::new();
            for r in rows {
                let (name, def): (String, String) = (r.get(0), r.get(1));
                s.client
                    .batch_execute(&format!("DROP INDEX {name}"))
                    .await
                    .map_err(|e| s.error(&format!("deferring index {name}"), e))?;
                defs.push(def);
            }
            defs
        } else {
            Vec::new()
        };
        Ok(Load {
            s,
            created,
            shape,
            deferred,
            written: Vec::new(),
            partway: None,
        })
    }

    /// Writes one part of the history. The first part brings the projects and jobsets; later
    /// parts (earlier weeks, which have the same jobsets) bring only their builds, steps, step
    /// outputs and evaluations, none of which refers to another part's rows.
    pub async fn add(&mut self, ds: &Dataset) -> Result<()> {
        let first = self.written.is_empty();
        if first && self.shape.store_dirs == StoreDirs::Partway {
            self.partway = Some(partway_marks(ds)?);
        }
        for (table, columns, rows) in tables(ds, self.shape.store_dirs, self.partway, first)? {
            if let Some((missing, _)) = columns.iter().find(|(c, _)| !self.shape.has(table, c)) {
                return Err(Error::Schema(format!(
                    "{}: table {table} has no column {missing}: `sample --into` fills Hydra's \
                     tables of schema 80 or later",
                    self.s.params.redacted()
                )));
            }
            let n = copy_in(&self.s, table, &columns, rows).await?;
            match self.written.iter_mut().find(|(t, _)| *t == table) {
                Some((_, sum)) => *sum += n,
                None => self.written.push((table, n)),
            }
        }
        Ok(())
    }

    /// Makes the deferred indexes, counts the finished builds into NrBuilds, marks the C++
    /// runner's era where `runner` is that runner's, sets the serial columns after the loaded
    /// ids, and commits.
    pub async fn finish(self, runner: crate::dataset::Runner) -> Result<LoadSummary> {
        let Load {
            s,
            created,
            shape,
            deferred,
            written,
            ..
        } = self;
        for def in &deferred {
            s.client
                .batch_execute(def)
                .await
                .map_err(|e| s.error("making a deferred index again", e))?;
        }
        if let Some(t) = &shape.nr_builds_trigger {
            s.client
                .batch_execute(&format!(
                    "ALTER TABLE builds ENABLE TRIGGER {t}; \
                     UPDATE nrbuilds SET count = count + \
                       (SELECT count(*) FROM builds WHERE finished = 1) WHERE what = 'finished'"
                ))
                .await
                .map_err(|e| s.error("counting the finished builds into NrBuilds", e))?;
        }
        if runner == crate::dataset::Runner::Cpp && shape.columns.contains_key("systemstatus") {
            // The C++ runner keeps its status JSON here; readers take it as a sign of that
            // runner.
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
        Ok(LoadSummary {
            tables: written,
            created,
            schema_version: shape.version,
            store_dirs: shape.store_dirs,
        })
    }
}

/// Where [`StoreDirs::Partway`] leaves the tables, from the builds of `ds`: the backfill has
/// reached the middle build; Hydra wrote the newest quarter. Over several weeks these are the
/// latest week's (the first loaded): every earlier week is backfilled.
fn partway_marks(ds: &Dataset) -> Result<(i64, i64)> {
    let mut ids: Vec<i64> = i64_values(&ds.builds, "id")?
        .into_iter()
        .flatten()
        .collect();
    ids.sort_unstable();
    let at = |q: usize| ids.get(ids.len() * q / 4).copied().unwrap_or(0);
    Ok((at(2), at(3)))
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

/// What to write into each Hydra table, in foreign-key order: the projects and jobsets only
/// `with_jobsets` (a load's first part). `partway`: [`partway_marks`], for
/// [`StoreDirs::Partway`].
fn tables(
    ds: &Dataset,
    store_dirs: StoreDirs,
    partway: Option<(i64, i64)>,
    with_jobsets: bool,
) -> Result<Vec<TableLoad>> {
    let err = |e: PolarsError| Error::frame("preparing the load", e);
    let (builds_paths, steps_paths, outputs_paths) = match store_dirs {
        StoreDirs::Full => (
            vec![("drvpath", Cell::Col("drv_path"))],
            vec![("drvpath", Cell::Col("drv_path"))],
            vec![("path", Cell::Col("path"))],
        ),
        StoreDirs::Converted => (
            store_path_cells(&ds.builds, "id", "drv_path", |_| true)?,
            store_path_cells(&ds.steps, "build", "drv_path", |_| true)?,
            store_path_cells(&ds.step_outputs, "build", "path", |_| true)?,
        ),
        StoreDirs::Partway => {
            let (reached, upgraded) =
                partway.ok_or_else(|| Error::Internal("the part-way load has no marks".into()))?;
            (
                store_path_cells(&ds.builds, "id", "drv_path", |_| true)?,
                store_path_cells(&ds.steps, "build", "drv_path", |b| {
                    b < reached || b >= upgraded
                })?,
                store_path_cells(&ds.step_outputs, "build", "path", |b| b >= upgraded)?,
            )
        }
    };
    let mut loads = Vec::new();
    if with_jobsets {
        let projects = ds
            .jobsets
            .select(["project"])
            .and_then(|d| d.unique_stable(None, UniqueKeepStrategy::First, None))
            .map_err(err)?;
        let project_names = str_values(&projects, "project")?;
        loads.push((
            "projects",
            vec![
                ("name", Cell::Col("project")),
                ("displayname", Cell::Rows(project_names)),
                ("owner", Cell::Text(OWNER.into())),
            ],
            projects,
        ));
        loads.push((
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
        ));
    }
    let eval_hashes = i64_values(&ds.evals, "id")?
        .iter()
        .map(|id| Some(format!("sample-eval-{}", id.unwrap_or(0))))
        .collect();
    loads.extend([
        (
            "builds",
            vec![
                ("id", Cell::Col("id")),
                ("finished", Cell::Col("finished")),
                ("timestamp", Cell::Col("timestamp")),
                ("jobset_id", Cell::Col("jobset_id")),
                ("job", Cell::Col("job")),
                ("nixname", Cell::Col("nix_name")),
                ("system", Cell::Col("system")),
                ("priority", Cell::Col("priority")),
                ("globalpriority", Cell::Col("global_priority")),
                ("starttime", Cell::Col("start_time")),
                ("stoptime", Cell::Col("stop_time")),
                ("iscachedbuild", Cell::Col("is_cached_build")),
                ("buildstatus", Cell::Col("build_status")),
                ("size", Cell::Col("size")),
                ("closuresize", Cell::Col("closure_size")),
            ]
            .into_iter()
            .chain(builds_paths)
            .collect(),
            ds.builds.clone(),
        ),
        (
            "buildsteps",
            vec![
                ("build", Cell::Col("build")),
                ("stepnr", Cell::Col("stepnr")),
                ("type", Cell::Col("type")),
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
            ]
            .into_iter()
            .chain(steps_paths)
            .collect(),
            ds.steps.clone(),
        ),
        (
            "buildstepoutputs",
            vec![
                ("build", Cell::Col("build")),
                ("stepnr", Cell::Col("stepnr")),
                ("name", Cell::Col("name")),
            ]
            .into_iter()
            .chain(outputs_paths)
            .collect(),
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
    ]);
    Ok(loads)
}

/// The store dir a path without one is taken to be in: Nix's default, and hydra.nixos.org's.
/// The backfill gives such a value its deployment's store dir the same way.
pub const DEFAULT_STORE_DIR: &str = "/nix/store";

/// The cells of a store-path column and its storeDir, each row's path converted (basename,
/// store dir beside it) where `converted(build)` says so and left whole with a null store dir
/// elsewhere. A null path has a null store dir in either form (upgrade-90's check).
fn store_path_cells(
    df: &DataFrame,
    build: &str,
    path: &'static str,
    converted: impl Fn(i64) -> bool,
) -> Result<Vec<(&'static str, Cell)>> {
    let builds = i64_values(df, build)?;
    let paths = str_values(df, path)?;
    let mut bases = Vec::with_capacity(paths.len());
    let mut dirs = Vec::with_capacity(paths.len());
    for (b, p) in builds.into_iter().zip(paths) {
        match p {
            Some(p) if b.is_some_and(&converted) => {
                let (dir, base) = match p.rsplit_once('/') {
                    Some((dir, base)) => (dir.to_string(), base.to_string()),
                    None => (DEFAULT_STORE_DIR.to_string(), p),
                };
                bases.push(Some(base));
                dirs.push(Some(dir));
            }
            p => {
                bases.push(p);
                dirs.push(None);
            }
        }
    }
    let column = if path == "drv_path" {
        "drvpath"
    } else {
        "path"
    };
    Ok(vec![
        (column, Cell::Rows(bases)),
        ("storedir", Cell::Rows(dirs)),
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
