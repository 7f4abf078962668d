//! Which machines may take a step, and in which order machines with a free slot are tried
//! (docs/hydra.md §4). A machine key is a struct whose field order is the comparison order; the
//! smaller key is tried first, and the machine's index breaks the remaining ties.

use std::cmp::Reverse;

use serde::{Deserialize, Serialize};

/// Which queue runner's machine ordering to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MachineSort {
    /// The C++ runner: round(currentJobs / speedFactor) ascending, speedFactor descending,
    /// currentJobs descending ([`CppMachineKey`]).
    Cpp,
    /// Rust runner `SpeedFactorOnly`: speed factor descending, then fewest current jobs
    /// ([`ScoreMachineKey`]).
    SpeedFactor,
    /// Rust runner `CpuCoreCountWithSpeedFactor`: CPU cores × speed factor descending, then
    /// fewest current jobs ([`ScoreMachineKey`]). The history does not record cores; maxJobs
    /// stands in for them (said in the output).
    CoresSpeed,
}

/// The C++ runner's machine order.
///
/// Follows NixOS/hydra src/hydra-queue-runner/dispatcher.cc, `State::doDispatch`, the sort of
/// `machinesSorted` (a9581bcd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CppMachineKey {
    /// round(currentJobs / speedFactor): fast machines before slow ones of similar load.
    pub load: u32,
    /// Speed factor in thousandths.
    pub speed: Reverse<u32>,
    pub current_jobs: Reverse<u32>,
    pub index: u16,
}

/// The Rust runner's machine order: a score, highest first, ties to the machine with fewer
/// current jobs.
///
/// Follows NixOS/hydra subprojects/hydra-queue-runner/src/state/machine.rs,
/// `MachinesInner::sort` and `Machine::score` (14332fbf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScoreMachineKey {
    /// The score in thousandths of a speed factor.
    pub score: Reverse<u64>,
    pub current_jobs: u32,
    pub index: u16,
}

/// The key of either ordering; keys of one run are all of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MachineKey {
    Cpp(CppMachineKey),
    Score(ScoreMachineKey),
}

impl MachineKey {
    /// The machine this key stands for.
    pub fn index(&self) -> usize {
        usize::from(match self {
            MachineKey::Cpp(k) => k.index,
            MachineKey::Score(k) => k.index,
        })
    }
}

/// A speed factor in thousandths, the unit machine keys compare it in.
fn speed_milli(speed: f64) -> u32 {
    (speed * 1000.0).round() as u32
}

impl MachineSort {
    /// The key of machine `index` running `current_jobs` steps.
    pub fn key(self, index: usize, current_jobs: u32, max_jobs: u32, speed: f64) -> MachineKey {
        let index = index as u16;
        match self {
            MachineSort::Cpp => MachineKey::Cpp(CppMachineKey {
                load: (f64::from(current_jobs) / speed).round() as u32,
                speed: Reverse(speed_milli(speed)),
                current_jobs: Reverse(current_jobs),
                index,
            }),
            MachineSort::SpeedFactor => MachineKey::Score(ScoreMachineKey {
                score: Reverse(u64::from(speed_milli(speed))),
                current_jobs,
                index,
            }),
            MachineSort::CoresSpeed => MachineKey::Score(ScoreMachineKey {
                score: Reverse(u64::from(max_jobs) * u64::from(speed_milli(speed))),
                current_jobs,
                index,
            }),
        }
    }
}

/// When a machine may take one more step: the Rust runner's `machineFreeFn` (the C++ runner
/// has only the first, `Static`).
///
/// Follows NixOS/hydra subprojects/hydra-queue-runner/src/state/machine.rs,
/// `Machine::has_capacity`, `has_dynamic_capacity` and `has_static_capacity` (14332fbf); the
/// thresholds are the builder's (docs/hydra.md §4). Free disk below its threshold refuses work
/// under every function; the simulations never run a disk full, so that test is not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FreeFn {
    /// currentJobs < maxJobs (the Rust runner's default).
    Static,
    /// The builder's pressure is under its thresholds (PSI cpu-some avg10, mem-full avg10, or
    /// without PSI load1), whatever its jobs.
    Dynamic,
    /// Both (hydra.nixos.org's setting, NixOS/infra `build/hydra-queue-runner.nix`).
    DynamicWithMaxJobLimit,
}

impl FreeFn {
    /// Whether a machine running `current_jobs` of `max_jobs`, whose last reported pressure
    /// is `under_thresholds`, has capacity.
    pub fn has_capacity(self, current_jobs: u32, max_jobs: u32, under_thresholds: bool) -> bool {
        let static_ok = current_jobs < max_jobs;
        match self {
            FreeFn::Static => static_ok,
            FreeFn::Dynamic => under_thresholds,
            FreeFn::DynamicWithMaxJobLimit => static_ok && under_thresholds,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FreeFn::Static => "Static",
            FreeFn::Dynamic => "Dynamic",
            FreeFn::DynamicWithMaxJobLimit => "DynamicWithMaxJobLimit",
        }
    }
}

/// Whether a machine offering `supported` features, of which `mandatory` must be asked for,
/// may build a step requiring `required` (each a bit set over feature names): the machine has
/// every required feature, and the step requires every mandatory one. The system type must
/// match as well; the caller checks that.
///
/// Follows NixOS/hydra src/hydra-queue-runner/state.hh, `Machine::supportsStep` (a9581bcd).
/// Upstream also lets a "local" mandatory feature match a step that prefers local builds; the
/// simulations have no such steps.
pub fn supports_features(supported: u64, mandatory: u64, required: u64) -> bool {
    required & !supported == 0 && mandatory & !required == 0
}

/// The same rule by name, for a machine type as the runners name it in their status and
/// metrics: `x86_64-linux`, or `x86_64-linux:big-parallel,kvm` for a step requiring features
/// (the platform, `:`, the sorted features; C++ `State::createStep`, a9581bcd). `supported`
/// includes the mandatory features, as in the machines file.
pub fn supports_type<S: AsRef<str>>(
    systems: &[S],
    supported: &[S],
    mandatory: &[S],
    machine_type: &str,
) -> bool {
    let (system, features) = machine_type.split_once(':').unwrap_or((machine_type, ""));
    let required = || features.split(',').filter(|f| !f.is_empty());
    systems.iter().any(|s| s.as_ref() == system)
        && required().all(|f| supported.iter().any(|s| s.as_ref() == f))
        && mandatory
            .iter()
            .all(|m| required().any(|f| f == m.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Machine indices in the order `sort` tries them; each machine is (current jobs, max
    /// jobs, speed factor).
    fn order(sort: MachineSort, machines: &[(u32, u32, f64)]) -> Vec<usize> {
        let mut keys: Vec<MachineKey> = machines
            .iter()
            .enumerate()
            .map(|(i, &(cur, max, speed))| sort.key(i, cur, max, speed))
            .collect();
        keys.sort();
        keys.iter().map(MachineKey::index).collect()
    }

    const FARM: [(u32, u32, f64); 5] = [
        (2, 4, 1.0), // load 2
        (2, 8, 2.0), // load 1
        (0, 2, 1.0), // load 0, slow
        (0, 4, 2.0), // load 0, fast
        (3, 8, 2.0), // load round(1.5) = 2, fast
    ];

    #[test]
    fn cpp_load_over_speed_then_speed_then_busier_first() {
        // Load 0: 3 (faster) before 2; load 1: 1; load 2: 4 (faster) before 0.
        assert_eq!(order(MachineSort::Cpp, &FARM), [3, 2, 1, 4, 0]);
        // Same load and speed: the busier machine first. 1 / 2 rounds to 1 (half away from
        // zero, as C++'s std::round), so machines 0 and 1 both have load 1.
        let twins = [(1, 4, 2.0), (2, 4, 2.0), (0, 4, 2.0)];
        assert_eq!(order(MachineSort::Cpp, &twins), [2, 1, 0]);
    }

    #[test]
    fn speed_factor_fastest_first_then_fewest_jobs() {
        // Speed 2: 3 (0 jobs), 1 (2), 4 (3); speed 1: 2 (0), 0 (2).
        assert_eq!(order(MachineSort::SpeedFactor, &FARM), [3, 1, 4, 2, 0]);
    }

    #[test]
    fn cores_times_speed_largest_first_then_fewest_jobs() {
        // Scores 4, 16, 2, 8, 16: 1 and 4 tie (1 has fewer jobs), then 3, 0, 2.
        assert_eq!(order(MachineSort::CoresSpeed, &FARM), [1, 4, 3, 0, 2]);
    }

    #[test]
    fn the_free_functions_test_jobs_pressure_or_both() {
        use FreeFn::*;
        // (current jobs, max jobs, pressure under thresholds) → Static, Dynamic, both.
        let cases = [
            ((1, 4, true), [true, true, true]),
            ((1, 4, false), [true, false, false]),
            ((4, 4, true), [false, true, false]),
            ((5, 4, false), [false, false, false]),
        ];
        for ((cur, max, ok), want) in cases {
            let got =
                [Static, Dynamic, DynamicWithMaxJobLimit].map(|f| f.has_capacity(cur, max, ok));
            assert_eq!(got, want, "{cur}/{max} pressure ok {ok}");
        }
    }

    #[test]
    fn features_the_step_needs_and_the_machine_insists_on() {
        let (kvm, big) = (1, 2);
        assert!(supports_features(kvm | big, 0, kvm));
        assert!(!supports_features(kvm, 0, kvm | big));
        assert!(!supports_features(kvm | big, big, kvm));
        assert!(supports_features(kvm | big, big, kvm | big));
        assert!(supports_features(0, 0, 0));
    }
}
