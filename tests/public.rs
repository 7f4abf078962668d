//! `snapshot --public` against a real PostgreSQL holding what must not be published: a hidden
//! project, a hidden jobset, an e-mail address in every free-text column of Hydra's schema and
//! a private machine name. No byte of the snapshot may hold any of it, nor the pseudonyms' key;
//! what is not hidden must still be there. And a snapshot not written with --public is refused
//! as a source in one line.

// A test fails by panicking: an unwrap or expect here is an assertion (and in tests/support/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::*;

use std::path::{Path, PathBuf};

use hydra_bottleneck::source::snapshot;
use polars::prelude::*;

/// The pseudonyms' key: long enough, and a byte sequence nothing else holds.
const KEY: &[u8] = b"k3y-Bytes-That-Must-Never-Leak-0xC0FFEE";

/// What no written byte may hold: every e-mail address is at this domain, the hidden names,
/// the private machine, the sample's own machines' hosts, a user's name.
const SECRETS: &[&str] = &[
    "private.example",
    "secretproj",
    "hiddenjobset",
    "alsohidden",
    "secretjobname",
    "private-builder",
    "farm.example",
    "Carol Secret",
    "k3y-Bytes",
];

/// Fills every free-text column of Hydra's schema (hydra-87.sql) with an e-mail address, adds
/// a hidden project with a jobset and a hidden jobset in a visible project, moves builds into
/// both, and names a private machine on some steps.
const FIXTURE: &str = "
INSERT INTO users (username, fullname, emailaddress, password)
  VALUES ('carol', 'Carol Secret', 'carol@private.example', 'hash@private.example');
INSERT INTO userroles (username, role) VALUES ('carol', 'admin');
UPDATE projects SET displayname = 'dn@private.example', description = 'pd@private.example',
  homepage = 'https://ph@private.example', declfile = 'df@private.example',
  decltype = 'dt@private.example', declvalue = 'dv@private.example';
INSERT INTO projects (name, displayname, description, enabled, hidden, owner, homepage)
  VALUES ('secretproj', 'sp@private.example', 'spd@private.example', 1, 1, 'carol',
          'sph@private.example');
INSERT INTO projectmembers (project, username) VALUES ('secretproj', 'carol');
INSERT INTO jobsets (name, project, description, nixexprinput, nixexprpath, errormsg,
                     emailoverride, hidden, fetcherrormsg)
  VALUES ('alsohidden', 'secretproj', 'ahd@private.example', 'ai@private.example',
          'ap@private.example', 'ae@private.example', 'ao@private.example', 0,
          'af@private.example'),
         ('hiddenjobset', (SELECT min(name) FROM projects WHERE hidden = 0),
          'hjd@private.example', 'hi@private.example', 'hp@private.example',
          'he@private.example', 'ho@private.example', 1, 'hf@private.example');
UPDATE jobsets SET description = 'jd@private.example', errormsg = 'je@private.example',
  emailoverride = 'jo@private.example', fetcherrormsg = 'jf@private.example',
  nixexprinput = 'ji@private.example', nixexprpath = 'jp@private.example'
  WHERE type = 0 AND project <> 'secretproj';
UPDATE builds SET jobset_id = (SELECT id FROM jobsets WHERE name = 'alsohidden'),
  job = 'secretjobname'
  WHERE id IN (SELECT id FROM builds ORDER BY id LIMIT 15);
UPDATE builds SET jobset_id = (SELECT id FROM jobsets WHERE name = 'hiddenjobset'),
  job = 'secretjobname.x'
  WHERE id IN (SELECT id FROM builds ORDER BY id OFFSET 15 LIMIT 15);
UPDATE builds SET description = 'bd@private.example', license = 'bl@private.example',
  homepage = 'bh@private.example', maintainers = 'bm@private.example',
  releasename = 'br@private.example';
UPDATE builds SET nixname = 'nn@private.example' WHERE id IN (SELECT id FROM builds ORDER BY id DESC LIMIT 3);
UPDATE buildsteps SET errormsg = 'se@private.example';
UPDATE buildsteps SET machine = 'ssh://root@private-builder.corp'
  WHERE (build, stepnr) IN (SELECT build, stepnr FROM buildsteps ORDER BY build DESC LIMIT 40);
UPDATE buildsteps SET drvpath = '/home/so@private.example/x.drv'
  WHERE (build, stepnr) IN (SELECT build, stepnr FROM buildsteps ORDER BY build DESC LIMIT 2);
UPDATE buildstepoutputs SET path = 'op@private.example'
  WHERE (build, stepnr) IN (SELECT build, stepnr FROM buildstepoutputs ORDER BY build DESC LIMIT 2);
UPDATE buildoutputs SET path = 'bo@private.example'
  WHERE (build) IN (SELECT build FROM buildoutputs ORDER BY build DESC LIMIT 2);
INSERT INTO evaluationerrors (errormsg, errortime) VALUES ('ee@private.example', 0);
UPDATE jobsetevals SET evaluationerror_id = (SELECT max(id) FROM evaluationerrors),
  flake = 'ef@private.example', nixexprinput = 'ei@private.example',
  nixexprpath = 'ep@private.example', hash = 'eh@private.example';
UPDATE jobsetevals SET jobset_id = (SELECT id FROM jobsets WHERE name = 'hiddenjobset')
  WHERE id IN (SELECT id FROM jobsetevals ORDER BY id LIMIT 2);
UPDATE jobsetevalinputs SET uri = 'https://u:p@private.example/r', value = 'iv@private.example',
  revision = 'ir@private.example';
";

fn key_file(dir: &Path) -> PathBuf {
    let p = dir.join("key");
    std::fs::write(&p, KEY).unwrap();
    p
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Checks every byte of every file, and every value and column name of every Parquet file
/// decompressed (the files are zstd-compressed, so a raw byte search alone could miss a
/// value): none holds a secret (case-insensitively for the values), nor the key.
fn assert_nothing_leaks(dir: &Path, also: &[&str]) {
    let all = files(dir);
    assert!(all.len() > 3, "{all:?}");
    for f in &all {
        let bytes = std::fs::read(f).unwrap();
        for s in SECRETS.iter().chain(also) {
            assert!(!holds(&bytes, s.as_bytes()), "{} holds `{s}`", f.display());
        }
        assert!(!holds(&bytes, KEY), "{} holds the key", f.display());
        if f.extension().is_none_or(|x| x != "parquet") {
            assert!(!holds(&bytes, b"@"), "{} holds an `@`", f.display());
        }
        assert!(!holds(&bytes, &KEY[..8]), "{} holds key bytes", f.display());
        if f.extension().is_some_and(|x| x == "parquet") {
            let df = ParquetReader::new(std::fs::File::open(f).unwrap())
                .finish()
                .unwrap();
            for c in df.columns() {
                let mut text = vec![c.name().to_string()];
                if let Ok(s) = c.str() {
                    text.extend(s.iter().flatten().map(String::from));
                }
                for t in text {
                    let t = t.to_lowercase();
                    assert!(!t.contains('@'), "{}: `{t}`", f.display());
                    for s in SECRETS.iter().chain(also) {
                        assert!(!t.contains(&s.to_lowercase()), "{}: `{t}`", f.display());
                    }
                }
            }
        }
    }
}

fn count(pg: &TestPg, db: &str, sql: &str) -> usize {
    pg.psql(db, sql).parse().unwrap()
}

#[test]
fn a_public_snapshot_holds_nothing_private_and_all_that_is_not_hidden() {
    let pg = TestPg::start();
    let admin = pg.database();
    let name = dbname(&admin);
    let o = run(&[
        "sample", "--into", &admin, "--scale", "0.05", "--schema", "87", "--quiet",
    ]);
    assert!(o.status.success(), "sample --into: {}", stderr(&o));
    pg.psql(&name, FIXTURE);
    let reader = pg.grant_reader(&name);
    let tmp = tempfile::tempdir().unwrap();
    let key = key_file(tmp.path());
    let out = tmp.path().join("public");
    // The README's reader may not read Projects: --public cannot tell hidden projects then,
    // and says so rather than guess.
    let o = run(&[
        "snapshot",
        "--db",
        &reader,
        "--public",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "projects.hidden");
    assert!(!out.exists());
    pg.psql(&name, "GRANT SELECT ON projects TO reader");
    let o = run(&[
        "snapshot",
        "--db",
        &reader,
        "--public",
        "--pseudonymize-machines",
        key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "snapshot --public: {}", stderr(&o));
    // Nothing printed holds a secret either (the key above all).
    for s in SECRETS {
        assert!(
            !holds(&o.stdout, s.as_bytes()) && !stderr(&o).contains(s),
            "{s}"
        );
    }
    // The connection's user, host and database are not in the snapshot.
    assert_nothing_leaks(&out, &[&name, "127.0.0.1", "user="]);

    let m = snapshot::read_manifest(&out).unwrap();
    let public = m.public.clone().expect("a public section");
    assert_eq!((public.hidden_projects, public.hidden_jobsets), (1, 2));
    assert!(public.machines_pseudonymized);
    assert_eq!(public.rows_left_out["builds"], 30);
    assert!(public.values_withheld["builds.nix_name"] >= 1);
    assert!(public.values_withheld["steps.drv_path"] >= 1);
    assert!(
        public
            .source_columns_not_read
            .iter()
            .any(|c| c.starts_with("users.*"))
    );
    assert_eq!(
        serde_json::to_value(&m.origin).unwrap()["conninfo"],
        hydra_bottleneck::source::public::WITHHELD
    );

    // What is not hidden is all there.
    let ds = snapshot::read(&out).unwrap();
    let visible = "FROM builds b JOIN jobsets j ON j.id = b.jobset_id \
                   JOIN projects p ON p.name = j.project WHERE j.hidden = 0 AND p.hidden = 0";
    assert_eq!(
        ds.builds.height(),
        count(&pg, &name, &format!("SELECT count(*) {visible}"))
    );
    assert_eq!(
        ds.steps.height(),
        count(
            &pg,
            &name,
            &format!("SELECT count(*) FROM buildsteps WHERE build IN (SELECT b.id {visible})")
        )
    );
    assert_eq!(
        ds.jobsets.height(),
        count(
            &pg,
            &name,
            "SELECT count(*) FROM jobsets j JOIN projects p ON p.name = j.project \
             WHERE j.hidden = 0 AND p.hidden = 0"
        )
    );
    assert!(ds.builds.height() > 100 && ds.evals.height() > 0);
    let machines: Vec<String> = ds
        .steps
        .column("machine")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .map(String::from)
        .collect();
    assert!(
        machines
            .iter()
            .all(|m| m.is_empty() || m.starts_with("ssh://m-")),
        "{machines:?}"
    );

    // The same key gives the same pseudonyms; a public snapshot is a source for another.
    let again = tmp.path().join("again");
    let o = run(&[
        "snapshot",
        "--snapshot",
        out.to_str().unwrap(),
        "--public",
        "--out",
        again.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m2 = snapshot::read_manifest(&again).unwrap();
    assert_eq!(m2.public.unwrap().hidden_projects, 1);
    let o = run(&[
        "snapshot",
        "--db",
        &reader,
        "--public",
        "--pseudonymize-machines",
        key.to_str().unwrap(),
        "--out",
        tmp.path().join("third").to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let third = snapshot::read(&tmp.path().join("third")).unwrap();
    assert!(
        third
            .steps
            .column("machine")
            .unwrap()
            .equals_missing(ds.steps.column("machine").unwrap())
    );
}

#[test]
fn public_from_a_snapshot_not_written_public_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let private = tmp.path().join("private");
    let o = run(&[
        "sample",
        "--out",
        private.to_str().unwrap(),
        "--scale",
        "0.01",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path().join("public");
    let o = run(&[
        "snapshot",
        "--snapshot",
        private.to_str().unwrap(),
        "--public",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "was not written with --public");
    assert!(!out.exists());
    // The sample itself may be published: it hides nothing; machines lose their user.
    let o = run(&[
        "snapshot",
        "--public",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = snapshot::read_manifest(&out).unwrap();
    assert!(m.machines.is_none() && m.drv_store.is_none());
    assert!(
        m.tables.contains_key("truth_steps"),
        "the sample keeps its truth"
    );
    let ds = snapshot::read(&out).unwrap();
    let machine = ds.steps.column("machine").unwrap().str().unwrap().clone();
    assert!(machine.iter().flatten().all(|m| !m.contains('@')));
}
