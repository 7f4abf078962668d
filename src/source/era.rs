//! Which queue runner wrote each step, from the evidence in the rows (docs/hydra.md §3, "which
//! runner wrote a step"). Step times mean different things under the two runners, and a
//! database that moved from the C++ runner to the Rust one holds both eras: deciding once per
//! database from the schema version would read every step of one era with the other's rules.
//!
//! The evidence is `BuildSteps.machine`, which each runner fills differently:
//!
//! - the C++ runner writes the machine's store URI, `machine->storeUri.render()`
//!   (`src/hydra-queue-runner/builder.cc`, `createBuildStep` and `finishBuildStep` calls,
//!   NixOS/hydra a9581bcd): `ssh://host`, `ssh-ng://user@host`. Hydras older than the store-URI
//!   rewrite wrote the machines file's first field, which may be `user@host`;
//! - the Rust runner writes the builder's `hostname` (`finish_build_step`,
//!   `subprojects/hydra-queue-runner/src/utils.rs`, and its callers in `state/mod.rs`,
//!   14332fbf): a bare host name, no scheme, no user.
//!
//! A name with `://` or `@` is the C++ runner's; any other non-empty name is the Rust runner's,
//! except `localhost` and `local`, which either may write for a build on the runner's own host.
//! Steps with no machine (substitutions, cached failures) carry no evidence.
//!
//! Where both kinds occur, the switch is the instant that best separates them: the step start
//! that leaves the fewest C++ steps after it and Rust steps before it. Those that disagree are
//! counted and said, not silently reclassified. Pure functions over the steps' columns.

use crate::dataset::Runner;

/// What the rows say about the runner.
#[derive(Debug, Clone, PartialEq)]
pub struct Era {
    /// The runner of the latest steps.
    pub runner: Runner,
    /// When the history spans both: steps that started at or after this instant (unix seconds)
    /// were written by the Rust runner, earlier ones by the C++ runner.
    pub switch: Option<i64>,
    /// How it was decided, for the report.
    pub basis: String,
}

/// The runner whose way of naming machines `machine` follows, if it tells.
pub fn written_by(machine: &str) -> Option<Runner> {
    let m = machine.trim();
    if m.is_empty() || m == "localhost" || m == "local" {
        None
    } else if m.contains("://") || m.contains('@') {
        Some(Runner::Cpp)
    } else {
        Some(Runner::Rust)
    }
}

/// Decides the era from `(start, machine)` of every step; `None` when no step names a machine
/// in a way that tells (the caller keeps its schema-based guess).
pub fn detect<'a>(steps: impl Iterator<Item = (Option<i64>, Option<&'a str>)>) -> Option<Era> {
    let mut ev = Evidence::default();
    for (start, machine) in steps {
        ev.push(start, machine);
    }
    ev.decide()
}

/// The evidence of steps seen a part at a time (`snapshot --db` reads the history in chunks):
/// each step with a start and a telling machine name, one `i64` each, `start · 2 + is Rust`, so
/// that a year of steps costs 8 bytes each and sorts by start, C++ before Rust within a second.
#[derive(Debug, Default)]
pub struct Evidence {
    ev: Vec<i64>,
}

impl Evidence {
    /// Adds one step.
    pub fn push(&mut self, start: Option<i64>, machine: Option<&str>) {
        if let (Some(start), Some(r)) = (start, machine.and_then(written_by)) {
            self.ev
                .push(start.saturating_mul(2) | i64::from(r == Runner::Rust));
        }
    }

    /// [`detect`]'s answer over every step pushed.
    pub fn decide(mut self) -> Option<Era> {
        let ev = &mut self.ev;
        let is_rust = |e: i64| e & 1 == 1;
        let start = |e: i64| e >> 1;
        let rust = ev.iter().filter(|&&e| is_rust(e)).count();
        let cpp = ev.len() - rust;
        let uri = "BuildSteps.machine: the C++ runner writes a store URI (ssh://…), the Rust \
                   runner a bare hostname";
        match (cpp, rust) {
            (0, 0) => None,
            (_, 0) => Some(Era {
                runner: Runner::Cpp,
                switch: None,
                basis: format!("all {cpp} steps with a machine name a store URI ({uri})"),
            }),
            (0, _) => Some(Era {
                runner: Runner::Rust,
                switch: None,
                basis: format!("all {rust} steps with a machine name a bare hostname ({uri})"),
            }),
            _ => {
                ev.sort_unstable();
                // Splitting before index k: C++ steps at or after k and Rust steps before k
                // disagree. Only the first step of each start time is a candidate, so that
                // steps starting in one second are never split.
                let mut best = (usize::MAX, 0usize);
                let mut rust_before = 0;
                let mut cpp_before = 0;
                for k in 0..=ev.len() {
                    if k == 0 || k == ev.len() || start(ev[k]) != start(ev[k - 1]) {
                        let wrong = rust_before + (cpp - cpp_before);
                        if wrong < best.0 {
                            best = (wrong, k);
                        }
                    }
                    if k < ev.len() {
                        if is_rust(ev[k]) {
                            rust_before += 1;
                        } else {
                            cpp_before += 1;
                        }
                    }
                }
                let (wrong, k) = best;
                if k == ev.len() {
                    // Rust names only among the earliest steps: no switch to the Rust runner.
                    return Some(Era {
                        runner: Runner::Cpp,
                        switch: None,
                        basis: format!(
                            "{cpp} of {} steps with a machine name a store URI ({uri}); {rust} \
                             name a bare hostname but no later era of them was found",
                            cpp + rust
                        ),
                    });
                }
                let at = start(ev[k]);
                let when = chrono::DateTime::from_timestamp(at, 0).map_or_else(
                    || at.to_string(),
                    |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
                );
                Some(Era {
                    runner: Runner::Rust,
                    switch: (k > 0).then_some(at),
                    basis: format!(
                        "the history spans both runners: {cpp} steps name a store URI, {rust} a \
                         bare hostname ({uri}); the Rust runner from {when}, each step read by \
                         its era's rules ({wrong} step(s) disagree with that switch)"
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn era(rows: &[(i64, &str)]) -> Option<Era> {
        detect(rows.iter().map(|&(s, m)| (Some(s), Some(m))))
    }

    #[test]
    fn each_runner_names_machines_its_own_way() {
        assert_eq!(written_by("ssh://build@b1.example"), Some(Runner::Cpp));
        assert_eq!(written_by("ssh-ng://b1"), Some(Runner::Cpp));
        assert_eq!(written_by("root@b1"), Some(Runner::Cpp), "older Hydras");
        assert_eq!(written_by("b1.example"), Some(Runner::Rust));
        assert_eq!(written_by("localhost"), None);
        assert_eq!(written_by(""), None);
    }

    #[test]
    fn one_era_or_the_other() {
        let c = era(&[(10, "ssh://a"), (20, ""), (30, "ssh://b")]).unwrap();
        assert_eq!((c.runner, c.switch), (Runner::Cpp, None));
        let r = era(&[(10, "a"), (20, "localhost"), (30, "b")]).unwrap();
        assert_eq!((r.runner, r.switch), (Runner::Rust, None));
        assert_eq!(era(&[(10, ""), (20, "localhost")]), None, "no evidence");
        assert_eq!(detect([(None, Some("ssh://a"))].into_iter()), None);
    }

    #[test]
    fn a_history_spanning_the_switch_is_split_where_the_names_change() {
        let rows = [
            (10, "ssh://a"),
            (20, "ssh://b"),
            (25, ""),
            (30, "ssh://a"),
            (40, "a"),
            (40, "ssh://b"), // the C++ runner finishing a step in the switch's second
            (50, "b"),
            (60, "a"),
        ];
        let e = era(&rows).unwrap();
        assert_eq!((e.runner, e.switch), (Runner::Rust, Some(40)));
        assert!(e.basis.contains("1 step(s) disagree"), "{}", e.basis);
        // A stray hostname among C++ steps moves nothing.
        let e = era(&[(10, "ssh://a"), (20, "b"), (30, "ssh://a"), (40, "ssh://a")]).unwrap();
        assert_eq!((e.runner, e.switch), (Runner::Cpp, None), "{}", e.basis);
    }
}
