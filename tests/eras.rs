//! A history that spans the move from the C++ queue runner to the Rust one, in a real
//! PostgreSQL: the sample loaded at schema 87, its later half rewritten as the Rust runner
//! writes steps (`source::era`; docs/hydra.md §3): the machine as a bare hostname, and
//! `stopTime` on the runner's clock after the builder's upload, so that the step's times span
//! its overhead. Each step must be read by its own era's rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::*;

use hydra_bottleneck::analysis::{self, Options};
use hydra_bottleneck::dataset::{Dataset, Runner};
use hydra_bottleneck::source::{self, ReadOptions, SourceSpec};

fn read(conn: &str, opts: &ReadOptions) -> Dataset {
    source::load(&SourceSpec::Postgres(conn.into()), opts).expect("reading the database")
}

fn ledger(ds: &Dataset) -> analysis::ledger::Ledger {
    analysis::analyze(ds, &Options::default())
        .expect("analysis")
        .ledger
}

fn building_h(ds: &Dataset) -> f64 {
    ledger(ds).total.building_h
}

#[test]
fn a_history_spanning_the_switch_is_read_with_each_steps_own_semantics() {
    let pg = TestPg::start();
    let db = load_sample(&pg, "0.2", "87");
    let name = dbname(&db);
    let before = read(&db, &ReadOptions::default());
    assert_eq!(
        (before.meta.runner, before.meta.runner_switch),
        (Runner::Cpp, None),
        "store URIs say the C++ runner whatever the schema: {}",
        before.meta.runner_basis
    );
    assert!(before.meta.runner_basis.contains("store URI"));

    // The later half as the Rust runner writes it.
    let switch: i64 = pg
        .psql(
            &name,
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY startTime) FROM BuildSteps \
             WHERE machine <> '' AND startTime IS NOT NULL",
        )
        .trim()
        .parse()
        .unwrap();
    pg.psql(
        &name,
        &format!(
            "UPDATE BuildSteps SET machine = regexp_replace(machine, '^[a-z-]+://([^@]*@)?', ''), \
             stopTime = stopTime + COALESCE(overhead, 0) / 1000 \
             WHERE startTime >= {switch} AND machine <> ''"
        ),
    );
    let mixed = read(&db, &ReadOptions::default());
    assert_eq!(mixed.meta.runner, Runner::Rust);
    assert_eq!(
        mixed.meta.runner_switch,
        Some(switch),
        "{}",
        mixed.meta.runner_basis
    );
    assert!(
        mixed.meta.runner_basis.contains("spans both runners")
            && mixed.meta.runner_basis.contains("0 step(s) disagree"),
        "{}",
        mixed.meta.runner_basis
    );

    // A machine named both ways is one machine of the ledger, its slots as before.
    let (l0, l1) = (ledger(&before), ledger(&mixed));
    let keys = |l: &analysis::ledger::Ledger| -> Vec<String> {
        l.machines.iter().map(|r| r.key.clone()).collect()
    };
    assert_eq!(keys(&l1), keys(&l0));
    // Slots are the most steps seen at once (no machines file): under the Rust runner a step's
    // times span its whole hold, import and upload included, so a peak can only grow.
    println!(
        "available {:.1} h before, {:.1} h after",
        l0.total.available_h, l1.total.available_h
    );
    assert!(l1.total.available_h >= l0.total.available_h - 1e-6);
    assert!(l1.total.available_h <= 1.5 * l0.total.available_h);

    // Building time is the builds' own either way: the Rust era's overhead is taken out of its
    // steps' times, the C++ era's steps are left as they are.
    let (want, got) = (building_h(&before), building_h(&mixed));
    println!("building {want:.3} h before, {got:.3} h with the later half rewritten");
    assert!((want - got).abs() < 1e-6, "{want} against {got}");

    // Read by one runner's rules throughout, one era or the other is misread.
    let all = |runner| {
        building_h(&read(
            &db,
            &ReadOptions {
                runner: Some(runner),
                ..ReadOptions::default()
            },
        ))
    };
    let (as_cpp, as_rust) = (all(Runner::Cpp), all(Runner::Rust));
    println!("read as C++ throughout {as_cpp:.3} h, as Rust throughout {as_rust:.3} h");
    assert!(
        as_cpp > want + 1.0,
        "the Rust era's overhead counted as building"
    );
    assert!(
        as_rust < want - 1.0,
        "the C++ era's builds cut by their overhead"
    );

    // The switch given by hand is the same reading, and says it was given.
    let given = read(
        &db,
        &ReadOptions {
            runner: Some(Runner::Rust),
            runner_switch: Some(switch),
            ..ReadOptions::default()
        },
    );
    assert_eq!(given.meta.runner_basis, "given with --runner rust@TIME");
    assert!((building_h(&given) - want).abs() < 1e-6);
}

#[test]
fn the_switch_on_the_command_line_is_an_absolute_time() {
    let o = run(&["analyze", "--runner", "rust@30d", "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("must be an absolute time"), "{err}");
    let o = run(&["analyze", "--runner", "go", "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not cpp, rust or rust@TIME"));
    let o = run(&["analyze", "--runner", "rust@2026-01-01", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
