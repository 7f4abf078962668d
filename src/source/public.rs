//! Public snapshots (`snapshot --public`): what of a dataset may be published, once.
//!
//! A Hydra database is private because it holds personal data (users, e-mail addresses,
//! maintainers, error messages) and secrets (SSH users and key paths in store URIs); NixOS/infra
//! issue #348 asked for a read replica with an allowlist of tables and columns. This module owns
//! that allowlist for what this tool writes: [`ALLOWLIST`] names every column of every table a
//! snapshot holds with the rule its values pass and why. A string column's rule admits only
//! values that cannot carry free text (a name of Nix's or Hydra's restricted characters, a store
//! path, a machine's host), so an e-mail address or a sentence is withheld wherever it turns up,
//! and a column the allowlist does not name is written as nulls: leaving data out is the default,
//! not an accident of which columns happen to be read today. [`NOT_READ`] lists Hydra's columns
//! that hold personal data or secrets; no source reads them (a test holds the database reader
//! to it).
//!
//! Besides the columns: hidden projects and jobsets (`Projects.hidden`, `Jobsets.hidden`, there
//! since 2010, NixOS/hydra 5f7ebaad) are left out with everything under them ([`Hidden`],
//! [`leave_out_hidden`]); store URIs lose their user, path and query (`ssh://root@host` →
//! `ssh://host`); machine names may become keyed pseudonyms ([`PseudonymKey`], HMAC-SHA256 per
//! RFC 2104); the machines file, the `.drv` store and a non-sample's truth tables are not
//! written; the origin says no host, user, database or directory. [`publish`] applies all of
//! it and says what it did ([`PublicSection`], the manifest's `public`).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dataset::{Dataset, Origin, TableDef};
use crate::error::{Error, Result};

/// What a column's values must be to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Numbers, flags and times: no text, nothing about a person.
    Keep,
    /// A name of restricted characters ([`is_name`]); any other value is nulled.
    Name,
    /// A store path under `/nix/store` with a valid base name ([`is_store_path`]); any other
    /// value is nulled.
    StorePath,
    /// A machine: its store URI or hostname without user, path or query, optionally a
    /// pseudonym ([`public_machine`]); a value that is not one is nulled.
    Machine,
    /// Never written: the column is all nulls.
    Drop,
}

/// One column of the allowlist.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    pub table: &'static str,
    pub column: &'static str,
    pub rule: Rule,
    pub why: &'static str,
}

const fn allow(
    table: &'static str,
    column: &'static str,
    rule: Rule,
    why: &'static str,
) -> Allowed {
    Allowed {
        table,
        column,
        rule,
        why,
    }
}

use Rule::{Keep, Machine, Name, StorePath};

const ID: &str = "a row id: says nothing beyond the row";
const TIME: &str = "a time or duration, the history being measured";
const CODE: &str = "a status or counter Hydra defines";
const PROJECT: &str =
    "a project or jobset name, public on Hydra's pages (hidden ones are left out)";
const SYSTEM: &str = "a platform such as x86_64-linux";
const PATH: &str = "a store path: hash and derivation name, public in binary caches";

/// Every column a snapshot may hold, with its rule and why. A column missing here is written
/// as nulls and listed as dropped ([`rule_of`]).
pub const ALLOWLIST: &[Allowed] = &[
    allow("steps", "build", Keep, ID),
    allow("steps", "stepnr", Keep, ID),
    allow("steps", "type", Keep, CODE),
    allow("steps", "drv_path", StorePath, PATH),
    allow("steps", "busy", Keep, CODE),
    allow("steps", "status", Keep, CODE),
    allow("steps", "start_time", Keep, TIME),
    allow("steps", "stop_time", Keep, TIME),
    allow(
        "steps",
        "machine",
        Machine,
        "the builder: its host only (user, key path and options removed), or a pseudonym",
    ),
    allow("steps", "system", Name, SYSTEM),
    allow("steps", "propagated_from", Keep, ID),
    allow("steps", "overhead_ms", Keep, TIME),
    allow("steps", "times_built", Keep, CODE),
    allow("steps", "is_non_deterministic", Keep, CODE),
    allow("builds", "id", Keep, ID),
    allow("builds", "jobset_id", Keep, ID),
    allow("builds", "project", Name, PROJECT),
    allow("builds", "jobset", Name, PROJECT),
    allow(
        "builds",
        "job",
        Name,
        "a job's attribute name, public on Hydra's pages",
    ),
    allow("builds", "system", Name, SYSTEM),
    allow(
        "builds",
        "nix_name",
        Name,
        "the derivation's name, part of its public store path",
    ),
    allow("builds", "timestamp", Keep, TIME),
    allow("builds", "start_time", Keep, TIME),
    allow("builds", "stop_time", Keep, TIME),
    allow("builds", "finished", Keep, CODE),
    allow("builds", "build_status", Keep, CODE),
    allow("builds", "is_cached_build", Keep, CODE),
    allow("builds", "priority", Keep, CODE),
    allow("builds", "global_priority", Keep, CODE),
    allow("builds", "size", Keep, "a size in bytes"),
    allow("builds", "closure_size", Keep, "a size in bytes"),
    allow("builds", "drv_path", StorePath, PATH),
    allow("step_outputs", "build", Keep, ID),
    allow("step_outputs", "stepnr", Keep, ID),
    allow("step_outputs", "name", Name, "an output name such as `out`"),
    allow("step_outputs", "path", StorePath, PATH),
    allow("jobsets", "id", Keep, ID),
    allow("jobsets", "project", Name, PROJECT),
    allow("jobsets", "name", Name, PROJECT),
    allow("jobsets", "enabled", Keep, CODE),
    allow("jobsets", "scheduling_shares", Keep, CODE),
    allow("jobsets", "check_interval", Keep, TIME),
    allow("evals", "id", Keep, ID),
    allow("evals", "jobset_id", Keep, ID),
    allow("evals", "timestamp", Keep, TIME),
    allow("evals", "checkout_time", Keep, TIME),
    allow("evals", "eval_time", Keep, TIME),
    allow("evals", "has_new_builds", Keep, CODE),
    allow("evals", "nr_builds", Keep, CODE),
    allow("evals", "nr_succeeded", Keep, CODE),
    // The sample's truth (kept only for the built-in sample: it is generated).
    allow("truth_deps", "build", Keep, ID),
    allow("truth_deps", "stepnr", Keep, ID),
    allow("truth_deps", "dep_build", Keep, ID),
    allow("truth_deps", "dep_stepnr", Keep, ID),
    allow("truth_steps", "build", Keep, ID),
    allow("truth_steps", "stepnr", Keep, ID),
    allow("truth_steps", "output_nar_size", Keep, "a size in bytes"),
    allow("truth_steps", "input_closure_size", Keep, "a size in bytes"),
    allow("truth_steps", "dispatch_time_ms", Keep, TIME),
    allow("truth_steps", "send_lock_wait_ms", Keep, TIME),
    allow("truth_steps", "send_ms", Keep, TIME),
    allow("truth_steps", "build_ms", Keep, TIME),
    allow("truth_steps", "local_slot_wait_ms", Keep, TIME),
    allow("truth_steps", "receive_ms", Keep, TIME),
    allow(
        "truth_losses",
        "machine",
        Machine,
        "the builder, as in steps.machine",
    ),
    allow("truth_losses", "hour", Keep, TIME),
    allow("truth_losses", "dispatch_loss_ms", Keep, TIME),
    allow("truth_losses", "dispatcher_ms", Keep, TIME),
    allow("truth_losses", "held_ms", Keep, TIME),
];

/// Hydra's columns (lower case, as PostgreSQL folds them) that hold personal data, free text
/// or secrets, with why: no source reads them, so no snapshot can hold them. Listed in every
/// public manifest.
pub const NOT_READ: &[(&str, &str, &str)] = &[
    (
        "users",
        "*",
        "user names, full names, e-mail addresses, password hashes",
    ),
    ("projectmembers", "*", "who belongs to a project"),
    ("projects", "owner", "a user name"),
    ("projects", "displayname", "free text"),
    ("projects", "description", "free text"),
    ("projects", "homepage", "free text"),
    (
        "projects",
        "declvalue",
        "declarative spec: may name private repositories",
    ),
    ("jobsets", "description", "free text"),
    ("jobsets", "emailoverride", "e-mail addresses"),
    (
        "jobsets",
        "errormsg",
        "evaluation errors: paths, user names, anything",
    ),
    (
        "jobsets",
        "fetcherrormsg",
        "fetch errors: URLs with credentials, anything",
    ),
    ("jobsets", "nixexprinput", "names a jobset input"),
    (
        "jobsets",
        "flake",
        "a flake URL: may name private repositories",
    ),
    (
        "jobsetinputalts",
        "value",
        "input URLs: may hold credentials",
    ),
    ("builds", "description", "free text from meta"),
    ("builds", "license", "free text from meta"),
    ("builds", "homepage", "free text from meta"),
    (
        "builds",
        "maintainers",
        "maintainers' names and e-mail addresses",
    ),
    (
        "buildsteps",
        "errormsg",
        "build errors: paths, user names, anything",
    ),
    (
        "jobsetevals",
        "flake",
        "a flake URL: may name private repositories",
    ),
    (
        "jobsetevalinputs",
        "uri",
        "input URLs: may hold credentials",
    ),
    (
        "evaluationerrors",
        "errormsg",
        "evaluation errors: anything",
    ),
    ("runcommandlogs", "*", "commands and their output"),
    (
        "systemstatus",
        "status",
        "the runner's status: machine URIs with users and key paths",
    ),
];

/// The rule of `table.column`: [`Rule::Drop`] for a column the allowlist does not name.
pub fn rule_of(table: &str, column: &str) -> (Rule, &'static str) {
    ALLOWLIST
        .iter()
        .find(|a| a.table == table && a.column == column)
        .map_or((Rule::Drop, "not in the allowlist"), |a| (a.rule, a.why))
}

/// A name of Hydra's or Nix's restricted characters (projects, jobsets, jobs, platforms,
/// derivation and output names): 1 to 255 of `A-Z a-z 0-9 . _ + -`. No `@`, no space, no `/`:
/// an e-mail address, a sentence or a path is not a name.
pub fn is_name(s: &str) -> bool {
    // 255: a store path's name has at most 211 characters (Nix's checkName); Hydra names are
    // shorter still. The bound only keeps out a blob.
    (1..=255).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._+-".contains(&c))
}

/// A store path in `/nix/store` with a valid base name (a hash of Nix's base32 and a name of
/// its characters). Another store directory could name a person's home (`/home/alice/store`):
/// only the default one is kept.
pub fn is_store_path(s: &str) -> bool {
    s.strip_prefix(super::into::DEFAULT_STORE_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .is_some_and(|base| crate::nix::drv::check_base_name(base.as_bytes(), false).is_ok())
}

/// The key of machine pseudonyms (`--pseudonymize-machines KEYFILE`). Never written, printed
/// or formatted: `Debug` says only that it is there.
pub struct PseudonymKey(Vec<u8>);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(withheld)")
    }
}

/// The fewest key bytes taken: machine names are few and guessable, so a short key would let
/// anyone try keys until the pseudonyms of known hosts come out; 16 bytes (128 bits) is past
/// any such search.
pub const MIN_KEY_BYTES: usize = 16;
/// The most read of a key file: a key is tens of bytes; 64 KiB is far past any.
const KEY_FILE_CAP: u64 = 64 << 10;
/// Bytes of the HMAC a pseudonym keeps: 8 bytes (16 hex digits) make a collision between two
/// of a farm's thousand machines a one in 10^13 chance.
const PSEUDONYM_BYTES: usize = 8;

impl PseudonymKey {
    /// Reads the key from `path`: its bytes as they are, one trailing newline aside.
    pub fn read(path: &Path) -> Result<PseudonymKey> {
        let mut bytes = crate::readfile::read_capped(path, "pseudonym key file", KEY_FILE_CAP)?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        if bytes.len() < MIN_KEY_BYTES {
            return Err(Error::Usage(format!(
                "--pseudonymize-machines {}: the key has {} bytes, at least {MIN_KEY_BYTES} are \
                 needed (e.g. `head -c 32 /dev/urandom > KEYFILE`)",
                path.display(),
                bytes.len()
            )));
        }
        Ok(PseudonymKey(bytes))
    }

    /// A key from bytes (tests).
    pub fn from_bytes(bytes: &[u8]) -> PseudonymKey {
        PseudonymKey(bytes.to_vec())
    }

    /// The pseudonym of `host`: `m-` and the first bytes of HMAC-SHA256(key, host) in hex.
    pub fn pseudonym(&self, host: &str) -> String {
        let mac = hmac_sha256(&self.0, host.as_bytes());
        let mut s = String::from("m-");
        for b in &mac[..PSEUDONYM_BYTES] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// HMAC-SHA256 (RFC 2104 with SHA-256: 64-byte blocks, a longer key hashed first).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// A machine name as a public snapshot writes it: a store URI keeps its scheme and host (and
/// port), losing user, path, query and fragment (`ssh://root@b1?ssh-key=/k` → `ssh://b1`); a
/// bare name keeps its host (`root@b1` → `b1`). With `key` the host becomes its pseudonym. `''`
/// (a local build) stays; `None` for a value that is no host.
pub fn public_machine(name: &str, key: Option<&PseudonymKey>) -> Option<String> {
    if name.is_empty() {
        return Some(String::new());
    }
    let (scheme, rest) = match name.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, name),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = crate::nix::machines::host_of(hostport);
    let port = hostport
        .strip_prefix('[')
        .map_or(hostport, |r| r.split_once(']').map_or("", |(_, p)| p))
        .rsplit_once(':')
        .map(|(_, p)| p)
        .filter(|_| hostport.contains(':'));
    let scheme_ok = scheme.is_none_or(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(&c))
    });
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-_:".contains(&c));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    if !(scheme_ok && host_ok && port_ok) {
        return None;
    }
    let host = match key {
        Some(k) => k.pseudonym(host),
        None if host.contains(':') => format!("[{host}]"),
        None => host.to_string(),
    };
    let mut out = scheme.map(|s| format!("{s}://")).unwrap_or_default();
    out.push_str(&host);
    if let Some(p) = port {
        out.push(':');
        out.push_str(p);
    }
    Some(out)
}

/// The hidden projects and jobsets of a database, read in the same transaction as its rows
/// (`source::postgres`). Held in memory only: no name of them is ever written.
#[derive(Debug, Clone, Default)]
pub struct Hidden {
    /// Projects with `hidden` set.
    pub projects: HashSet<String>,
    /// Jobsets with `hidden` set or in a hidden project: ids, and (project, name) for builds
    /// of schemas that named their jobset by text.
    pub jobset_ids: HashSet<i32>,
    pub jobset_names: HashSet<(String, String)>,
}

/// What a public snapshot left out and changed: the manifest's `public`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PublicSection {
    /// Every column written, with its rule and why (the allowlist as applied).
    pub columns: Vec<ColumnNote>,
    /// Columns written as nulls, as `table.column: why`.
    pub columns_dropped: Vec<String>,
    /// Values nulled because they did not pass their column's rule, by `table.column`.
    pub values_withheld: BTreeMap<String, u64>,
    /// Hydra's columns never read, as `table.column: why`.
    pub source_columns_not_read: Vec<String>,
    /// Files a snapshot would otherwise hold, and why they are not written.
    pub files_dropped: Vec<String>,
    /// Hidden projects and jobsets left out (counts only: no name is written).
    pub hidden_projects: u64,
    pub hidden_jobsets: u64,
    /// Rows left out with them, by table.
    pub rows_left_out: BTreeMap<String, u64>,
    /// Whether machine names are keyed pseudonyms (the key is not written).
    pub machines_pseudonymized: bool,
}

/// One column of a public snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnNote {
    pub table: String,
    pub column: String,
    pub rule: Rule,
    pub why: String,
}

/// Which rows of `ds` lie under no hidden project or jobset. Allowlist again: a jobset is kept
/// when neither it nor its project is hidden; a build when its jobset is a kept one (by id, or
/// by name where the schema had no id); an evaluation when its jobset is kept; a step or a step
/// output when its build is kept. A row whose owner is unknown is left out.
pub fn leave_out_hidden(
    ds: &mut Dataset,
    hidden: &Hidden,
    section: &mut PublicSection,
) -> Result<()> {
    let err = frame_err;
    let keep_jobsets: Vec<bool> = {
        let j = &ds.jobsets;
        let id = j
            .column("id")
            .and_then(|c| c.i32().cloned())
            .map_err(err("jobsets"))?;
        let project = j
            .column("project")
            .and_then(|c| c.str().cloned())
            .map_err(err("jobsets"))?;
        let name = j
            .column("name")
            .and_then(|c| c.str().cloned())
            .map_err(err("jobsets"))?;
        (0..j.height())
            .map(|i| {
                let p = project.get(i).unwrap_or_default();
                let n = name.get(i).unwrap_or_default();
                !(id.get(i).is_some_and(|x| hidden.jobset_ids.contains(&x))
                    || hidden.projects.contains(p)
                    || hidden
                        .jobset_names
                        .contains(&(p.to_string(), n.to_string())))
            })
            .collect()
    };
    let mut visible_ids = HashSet::new();
    let mut visible_names = HashSet::new();
    {
        let j = &ds.jobsets;
        let id = j
            .column("id")
            .and_then(|c| c.i32().cloned())
            .map_err(err("jobsets"))?;
        let project = j
            .column("project")
            .and_then(|c| c.str().cloned())
            .map_err(err("jobsets"))?;
        let name = j
            .column("name")
            .and_then(|c| c.str().cloned())
            .map_err(err("jobsets"))?;
        for (i, keep) in keep_jobsets.iter().enumerate() {
            if *keep {
                visible_ids.extend(id.get(i));
                if let (Some(p), Some(n)) = (project.get(i), name.get(i)) {
                    visible_names.insert((p.to_string(), n.to_string()));
                }
            }
        }
    }
    let hidden_jobsets = keep_jobsets.iter().filter(|k| !**k).count() as u64;
    ds.jobsets = filter(&ds.jobsets, keep_jobsets, "jobsets", section)?;
    let keep_builds: Vec<bool> = {
        let b = &ds.builds;
        let jid = b
            .column("jobset_id")
            .and_then(|c| c.i32().cloned())
            .map_err(err("builds"))?;
        let project = b
            .column("project")
            .and_then(|c| c.str().cloned())
            .map_err(err("builds"))?;
        let jobset = b
            .column("jobset")
            .and_then(|c| c.str().cloned())
            .map_err(err("builds"))?;
        (0..b.height())
            .map(|i| match jid.get(i) {
                Some(id) => visible_ids.contains(&id),
                None => match (project.get(i), jobset.get(i)) {
                    (Some(p), Some(n)) => visible_names.contains(&(p.to_string(), n.to_string())),
                    _ => false,
                },
            })
            .collect()
    };
    let ids = ds
        .builds
        .column("id")
        .and_then(|c| c.i32().cloned())
        .map_err(err("builds"))?;
    let kept_builds: HashSet<i32> = keep_builds
        .iter()
        .enumerate()
        .filter(|(_, k)| **k)
        .filter_map(|(i, _)| ids.get(i))
        .collect();
    ds.builds = filter(&ds.builds, keep_builds, "builds", section)?;
    let by_build = |df: &DataFrame, t: &'static str| -> Result<Vec<bool>> {
        let b = df
            .column("build")
            .and_then(|c| c.i32().cloned())
            .map_err(err(t))?;
        Ok(b.iter()
            .map(|x| x.is_some_and(|x| kept_builds.contains(&x)))
            .collect())
    };
    let keep = by_build(&ds.steps, "steps")?;
    ds.steps = filter(&ds.steps, keep, "steps", section)?;
    let keep = by_build(&ds.step_outputs, "step_outputs")?;
    ds.step_outputs = filter(&ds.step_outputs, keep, "step_outputs", section)?;
    let keep: Vec<bool> = {
        let j = ds
            .evals
            .column("jobset_id")
            .and_then(|c| c.i32().cloned())
            .map_err(err("evals"))?;
        j.iter()
            .map(|x| x.is_some_and(|x| visible_ids.contains(&x)))
            .collect()
    };
    ds.evals = filter(&ds.evals, keep, "evals", section)?;
    section.hidden_projects += hidden.projects.len() as u64;
    section.hidden_jobsets += hidden_jobsets;
    Ok(())
}

/// A frame error of table `t`.
fn frame_err(t: &'static str) -> impl Fn(PolarsError) -> Error {
    move |e| Error::frame(t, e)
}

/// The rows of `df` where `keep`, counting the others in `section.rows_left_out`.
fn filter(
    df: &DataFrame,
    keep: Vec<bool>,
    table: &str,
    section: &mut PublicSection,
) -> Result<DataFrame> {
    let left = keep.iter().filter(|k| !**k).count() as u64;
    if left == 0 {
        return Ok(df.clone());
    }
    *section.rows_left_out.entry(table.to_string()).or_default() += left;
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    df.filter(&mask)
        .map_err(|e| Error::frame(table.to_string(), e))
}

/// `df` with every column passed through its rule ([`ALLOWLIST`]).
fn apply_rules(
    def: &TableDef,
    df: &DataFrame,
    key: Option<&PseudonymKey>,
    section: &mut PublicSection,
) -> Result<DataFrame> {
    let mut cols = Vec::with_capacity(def.columns.len());
    for c in def.columns {
        let (rule, why) = rule_of(def.name, c.name);
        let col = df
            .column(c.name)
            .map_err(|e| Error::frame(def.name.to_string(), e))?;
        let label = format!("{}.{}", def.name, c.name);
        let out = match rule {
            Rule::Keep => col.clone(),
            Rule::Drop => {
                section.columns_dropped.push(format!("{label}: {why}"));
                Column::full_null(c.name.into(), df.height(), &c.ty.dtype())
            }
            Rule::Name | Rule::StorePath | Rule::Machine => {
                let s = col
                    .str()
                    .map_err(|e| Error::frame(def.name.to_string(), e))?;
                let mut withheld = 0u64;
                let mut memo: BTreeMap<&str, Option<String>> = BTreeMap::new();
                let values: Vec<Option<String>> = s
                    .iter()
                    .map(|v| {
                        let v = v?;
                        let out = memo
                            .entry(v)
                            .or_insert_with(|| match rule {
                                Rule::Name => is_name(v).then(|| v.to_string()),
                                Rule::StorePath => is_store_path(v).then(|| v.to_string()),
                                _ => public_machine(v, key),
                            })
                            .clone();
                        if out.is_none() {
                            withheld += 1;
                        }
                        out
                    })
                    .collect();
                if withheld > 0 {
                    *section.values_withheld.entry(label).or_default() += withheld;
                }
                let ca: StringChunked = values.into_iter().collect();
                let shared = crate::strings::shared(&ca.with_name(c.name.into()));
                shared.into_column()
            }
        };
        if rule != Rule::Drop {
            section.columns.push(ColumnNote {
                table: def.name.into(),
                column: c.name.into(),
                rule,
                why: why.into(),
            });
        }
        cols.push(out);
    }
    DataFrame::new(df.height(), cols).map_err(|e| Error::frame(def.name.to_string(), e))
}

/// A machine-keyed series with each key made public; keys that come out the same (one
/// machine named with and without a user) are summed, a missing sample counting as nothing
/// where the other has one.
fn public_series(
    series: &BTreeMap<String, Vec<f64>>,
    key: Option<&PseudonymKey>,
) -> BTreeMap<String, Vec<f64>> {
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (name, v) in series {
        let Some(public) = public_machine(name, key) else {
            continue;
        };
        match out.get_mut(&public) {
            None => {
                out.insert(public, v.clone());
            }
            Some(acc) => {
                for (a, b) in acc.iter_mut().zip(v) {
                    *a = match (a.is_nan(), b.is_nan()) {
                        (true, _) => *b,
                        (false, true) => *a,
                        (false, false) => *a + b,
                    };
                }
            }
        }
    }
    out
}

/// The origin as a public snapshot says it: the kind of source, no host, user, database or
/// directory.
fn public_origin(o: &Origin) -> Origin {
    match o {
        Origin::Postgres { .. } => Origin::Postgres {
            conninfo: WITHHELD.into(),
        },
        Origin::Snapshot { from, .. } => Origin::Snapshot {
            dir: WITHHELD.into(),
            from: Box::new(public_origin(from)),
        },
        s @ Origin::Sample { .. } => s.clone(),
    }
}

/// What a public snapshot writes in place of connection details and local paths.
pub const WITHHELD: &str = "(withheld in a public snapshot)";

/// `ds` made publishable: hidden projects and jobsets left out (`hidden`, from the database;
/// `None` where the source has none to hide, the sample or a public snapshot), every column
/// through its rule, machines made public (pseudonyms with `key`), the machines file, the
/// `.drv` graph and a non-sample's truth dropped, the origin and the series' source withheld.
/// `section` starts as what an earlier public snapshot said (counts carry over).
pub fn publish(
    mut ds: Dataset,
    hidden: Option<&Hidden>,
    key: Option<&PseudonymKey>,
    mut section: PublicSection,
) -> Result<(Dataset, PublicSection)> {
    section.columns.clear();
    section.columns_dropped.clear();
    section.files_dropped.clear();
    leave_out_hidden(&mut ds, hidden.unwrap_or(&Hidden::default()), &mut section)?;
    if ds.machines.take().is_some() {
        section
            .files_dropped
            .push("machines: SSH users, key paths and host keys".into());
    }
    if ds.drv_graph.take().is_some() {
        section
            .files_dropped
            .push("store/: derivations' environments can hold anything".into());
    }
    if !ds.meta.origin.is_sample() && ds.truth.take().is_some() {
        section
            .files_dropped
            .push("truth tables: kept only for the built-in sample".into());
    }
    ds.steps = apply_rules(&crate::dataset::STEPS, &ds.steps, key, &mut section)?;
    ds.builds = apply_rules(&crate::dataset::BUILDS, &ds.builds, key, &mut section)?;
    ds.step_outputs = apply_rules(
        &crate::dataset::STEP_OUTPUTS,
        &ds.step_outputs,
        key,
        &mut section,
    )?;
    ds.jobsets = apply_rules(&crate::dataset::JOBSETS, &ds.jobsets, key, &mut section)?;
    ds.evals = apply_rules(&crate::dataset::EVALS, &ds.evals, key, &mut section)?;
    if let Some(t) = ds.truth.as_mut() {
        t.deps = apply_rules(&crate::dataset::TRUTH_DEPS, &t.deps, key, &mut section)?;
        t.steps = apply_rules(&crate::dataset::TRUTH_STEPS, &t.steps, key, &mut section)?;
        if let Some(l) = t.losses.as_mut() {
            *l = apply_rules(&crate::dataset::TRUTH_LOSSES, l, key, &mut section)?;
        }
    }
    if let Some(tl) = ds.timeline.as_mut() {
        tl.current_jobs = public_series(&tl.current_jobs, key);
        tl.disabled = public_series(&tl.disabled, key);
        // Machine types (`x86_64-linux:big-parallel`) name no machine; anything else goes.
        let typed = |m: &BTreeMap<String, Vec<f64>>| -> BTreeMap<String, Vec<f64>> {
            m.iter()
                .filter(|(k, _)| k.split([':', ',']).all(is_name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        tl.runnable = typed(&tl.runnable);
        tl.running = typed(&tl.running);
        tl.source = WITHHELD.into();
    }
    ds.meta.origin = public_origin(&ds.meta.origin);
    section.source_columns_not_read = NOT_READ
        .iter()
        .map(|(t, c, why)| format!("{t}.{c}: {why}"))
        .collect();
    section.machines_pseudonymized = key.is_some();
    Ok((ds, section))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test cases 1 and 2 (HMAC-SHA-256).
        let hex = |b: [u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Case 6: a key longer than a block is hashed first.
        assert_eq!(
            hex(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn machines_lose_users_paths_and_options() {
        let m = |s| public_machine(s, None);
        assert_eq!(
            m("ssh://root@b1.example").as_deref(),
            Some("ssh://b1.example")
        );
        assert_eq!(
            m("ssh-ng://build@b1:2222?ssh-key=/root/.ssh/id&compress=true").as_deref(),
            Some("ssh-ng://b1:2222")
        );
        assert_eq!(m("alice@b2").as_deref(), Some("b2"));
        assert_eq!(m("b3.farm").as_deref(), Some("b3.farm"));
        assert_eq!(m("").as_deref(), Some(""));
        assert_eq!(m("ssh://[::1]:22").as_deref(), Some("ssh://[::1]:22"));
        assert_eq!(m("a b"), None);
        let k = PseudonymKey::from_bytes(b"0123456789abcdef");
        let p = public_machine("ssh://root@b1.example", Some(&k)).unwrap();
        assert!(
            p.starts_with("ssh://m-") && p.len() == "ssh://m-".len() + 16,
            "{p}"
        );
        // One host, one pseudonym, whatever form its name takes.
        assert_eq!(
            public_machine("b1.example", Some(&k)).unwrap(),
            p.trim_start_matches("ssh://")
        );
        let other = PseudonymKey::from_bytes(b"fedcba9876543210");
        assert_ne!(public_machine("b1.example", Some(&other)).unwrap(), p);
    }

    #[test]
    fn rules_admit_no_free_text() {
        assert!(is_name("x86_64-linux") && is_name("nixpkgs.hello") && is_name("trunk-combined"));
        assert!(
            !is_name("alice@example.org") && !is_name("a b") && !is_name("") && !is_name("a/b")
        );
        let h = "0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs";
        assert!(is_store_path(&format!("/nix/store/{h}-hello-2.12.drv")));
        assert!(!is_store_path(&format!("/home/alice/store/{h}-hello")));
        assert!(!is_store_path(&format!("/nix/store/{h}-alice@example.org")));
        assert!(!is_store_path(&format!("{h}-hello")));
    }

    #[test]
    fn every_column_of_every_table_has_a_rule_and_every_string_column_a_strict_one() {
        for def in crate::dataset::CORE_TABLES
            .into_iter()
            .chain(crate::dataset::TRUTH_TABLES)
        {
            for c in def.columns {
                let (rule, _) = rule_of(def.name, c.name);
                assert_ne!(
                    rule,
                    Rule::Drop,
                    "{}.{} is not in the allowlist",
                    def.name,
                    c.name
                );
                if c.ty == crate::dataset::ColType::Str {
                    assert_ne!(
                        rule,
                        Rule::Keep,
                        "{}.{}: text needs a rule",
                        def.name,
                        c.name
                    );
                }
            }
        }
    }

    #[test]
    fn no_column_that_holds_personal_data_is_read() {
        for (table, column, _) in NOT_READ {
            assert!(
                !super::super::postgres::reads(table, column),
                "{table}.{column} is read"
            );
        }
    }
}
