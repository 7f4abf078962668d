//! Every tuning constant of the `nixos-week` and `nixos-2026` presets, each with its source or the
//! it. "docs/hydra.md §N" is the project's notes on Hydra's interfaces (facts from NixOS/hydra,
//! NixOS/nix and NixOS/infra, with the upstream files and commits); "assumed" marks a value chosen for plausibility where no public figure
//! exists, with the reasoning next to it. Times are milliseconds unless the name says otherwise.

// ---------------------------------------------------------------------------------------------
// The week
// ---------------------------------------------------------------------------------------------

/// Monday 2025-06-02 00:00:00 UTC: a fixed start, so that the same seed gives the same rows.
pub(super) const WEEK_START_S: i64 = 1_748_822_400;
/// One week, the span the preset's name promises.
pub(super) const WEEK_MS: u64 = 7 * DAY_MS;
pub(super) const DAY_MS: u64 = 86_400_000;
pub(super) const HOUR_MS: u64 = 3_600_000;
pub(super) const MINUTE_MS: u64 = 60_000;

/// The mass rebuild: a staging-next evaluation on Wednesday 2025-06-04 09:30 UTC (mid-week,
/// European morning; assumed). Offset from the week start.
pub(super) const MASS_REBUILD_AT_MS: u64 = 2 * DAY_MS + 9 * HOUR_MS + 30 * MINUTE_MS;
/// Builds the mass rebuild queues at scale 1 (assumed): about a quarter of the week's builds, so
/// that it holds the farm at full load for hours, as a stdenv change does, without hiding the
/// rest of the week.
pub(super) const MASS_REBUILD_BUILDS: f64 = 24_000.0;
/// The bootstrap chain every build of the mass rebuild waits for, per system, one derivation
/// after the other (assumed from the shape of nixpkgs' stdenv bootstrap: bootstrap tools,
/// binutils/glibc/gcc stages, then the final stdenv; the times are plausible, not measured).
pub(super) const CHAIN_NAMES_LINUX: &[(&str, f64, bool)] = &[
    // (name, build seconds at speed factor 1, is a Hydra job of its own)
    ("bootstrap-tools", 20.0, false),
    ("bootstrap-stage0-binutils-wrapper", 4.0, false),
    ("bootstrap-stage1-gcc-wrapper", 4.0, false),
    ("gnu-config-2024-01-01", 2.0, false),
    ("binutils-2.44-stage1", 240.0, false),
    ("glibc-2.40-66-stage1", 900.0, false),
    ("bootstrap-stage2-gcc-wrapper", 4.0, false),
    ("gmp-6.3.0", 180.0, false),
    ("mpfr-4.2.1", 120.0, false),
    ("libmpc-1.3.1", 40.0, false),
    ("isl-0.20", 150.0, false),
    ("xgcc-14.2.1", 2400.0, false),
    ("bootstrap-stage3-gcc-wrapper", 4.0, false),
    ("gcc-14.2.1", 3000.0, true),
    ("bootstrap-stage4-gcc-wrapper", 4.0, false),
    ("glibc-2.40-66", 1000.0, true),
    ("binutils-2.44", 300.0, true),
    ("coreutils-9.7", 200.0, true),
    ("bash-5.2p37", 90.0, true),
    ("gnumake-4.4.1", 60.0, true),
    ("patchelf-0.15.0", 45.0, true),
    ("gcc-wrapper-14.2.1", 5.0, false),
    ("stdenv-linux", 3.0, true),
];
pub(super) const CHAIN_NAMES_DARWIN: &[(&str, f64, bool)] = &[
    ("bootstrap-tools", 25.0, false),
    ("bootstrap-stage0-stdenv-darwin", 3.0, false),
    ("cctools-1010.6", 300.0, false),
    ("ld64-954.16", 240.0, false),
    ("llvm-19.1.7-stage1", 2800.0, false),
    ("compiler-rt-libc-19.1.7", 400.0, false),
    ("libcxx-19.1.7", 500.0, false),
    ("clang-19.1.7", 1800.0, true),
    ("bootstrap-stage2-stdenv-darwin", 3.0, false),
    ("apple-sdk-14.4", 60.0, true),
    ("libiconv-109", 45.0, false),
    ("llvm-19.1.7", 3000.0, true),
    ("clang-wrapper-19.1.7", 5.0, false),
    ("coreutils-9.7", 220.0, true),
    ("bash-5.2p37", 100.0, true),
    ("gnumake-4.4.1", 70.0, true),
    ("stdenv-darwin", 3.0, true),
];
/// Core libraries rebuilt right after the chain (openssl, python, perl, cmake…), per build of
/// the mass rebuild (assumed: nixpkgs has a few thousand packages with hundreds of dependents).
pub(super) const MASS_CORE_RATIO: f64 = 0.035;
/// Core packages that are also jobs of their own (most are: they are attributes of nixpkgs).
pub(super) const MASS_CORE_JOB_P: f64 = 0.7;
/// How many core packages a leaf of the mass rebuild needs besides stdenv (1 + Poisson).
pub(super) const MASS_LEAF_CORE_DEPS: f64 = 1.5;
/// Private helper derivations per mass-rebuild leaf (wrapped sources, patched scripts…).
pub(super) const MASS_PRIVATE_LAMBDA: f64 = 0.2;
/// Core packages fail more rarely than leaves: staging has already built them (assumed).
pub(super) const CORE_FAIL_P: f64 = 0.01;

// ---------------------------------------------------------------------------------------------
// Load over the day and the week
// ---------------------------------------------------------------------------------------------

/// Evaluations follow commits, which follow people: European and American working-day bumps and
/// a smaller Asia-Pacific one over a floor for timers and night owls (assumed; the shape of
/// commit activity on nixpkgs by hour of day). Hours are UTC: EU centred on 12:00 (14:00
/// CEST), US on 18:30 (14:30 EDT), Asia-Pacific on 02:00 (11:00 JST, 12:00 AEST).
pub(super) const DIURNAL_FLOOR: f64 = 0.15;
pub(super) const DIURNAL_EU: (f64, f64, f64) = (12.0, 3.0, 1.0); // (centre h, width h, height)
pub(super) const DIURNAL_US: (f64, f64, f64) = (18.5, 3.0, 0.8);
pub(super) const DIURNAL_APAC: (f64, f64, f64) = (2.0, 2.5, 0.5);
/// Weekends carry about two thirds of the weekday commit activity (assumed: a volunteer project
/// keeps going on weekends, less so). Each bump follows its own region's calendar: Sunday 23:00 UTC is already Monday
/// morning in Tokyo.
pub(super) const WEEKEND_FACTOR: f64 = 0.7;
/// Evaluation bursts: a few times a week a merge wave (a batch of approved pull requests merged
/// within half an hour) lands on the big nixpkgs jobsets at once, adding this many pushes to
/// each (assumed), so that their next evaluations are several times the usual size.
pub(super) const BURSTS_PER_WEEK: f64 = 5.0;
pub(super) const BURST_SPREAD_MS: u64 = 30 * MINUTE_MS;
pub(super) const BURST_PUSHES: u32 = 8;
/// A superseded evaluation of trunk or staging-next gets its unfinished builds cancelled by an
/// admin when the next one arrives, this often (assumed; the "cancel all builds of this
/// evaluation" button exists for this).
pub(super) const SUPERSEDE_CANCEL_P: f64 = 0.15;
/// A user or admin cancels a single queued build (wrong branch, known-broken package) this
/// often, on average an hour after it was queued (assumed).
pub(super) const USER_CANCEL_P: f64 = 0.003;
pub(super) const USER_CANCEL_MEAN_MS: f64 = 3_600_000.0;

// ---------------------------------------------------------------------------------------------
// Queue runner host
// ---------------------------------------------------------------------------------------------

/// Local worker slots bounding concurrent output copying and compression. The C++ default is
/// max(4, CPUs) − 2 (docs/hydra.md §3); the sample's queue-runner host has 16 cores, so 14 (the
/// old hydra.nixos.org host had 30 for a farm several times this one). Scaled with the farm so
/// that `--scale` keeps the load shape.
pub(super) const LOCAL_WORKER_SLOTS: f64 = 14.0;
/// Time the queue monitor spends loading one queued build: it reads each build's closure of .drv
/// files serially (assumed ~5 ms per build on a busy host; a 24 k-build mass rebuild takes
/// ~2 min to load).
pub(super) const LOAD_MS_PER_BUILD: u64 = 5;

// ---------------------------------------------------------------------------------------------
// Copying and compressing (what `overhead` measures, docs/hydra.md §3 and §6)
// ---------------------------------------------------------------------------------------------

/// Opening an SSH connection and starting `nix-store --serve` per step, the query of which input
/// paths the builder lacks, and the builder's import (signature checks, fsync, SQLite) of what
/// it got (the C++ runner opens one connection per step). Log-normal, median 2.5 s (assumed: an
/// SSH handshake across data centres alone is 0.3–1 s).
pub(super) const SEND_SETUP_MEDIAN_MS: f64 = 2_500.0;
pub(super) const SEND_SETUP_SIGMA: f64 = 0.6;
/// Throughput of one `nix-store --serve` stream between the queue runner and a builder over
/// SSH (assumed 40 MB/s: one TCP stream across the internet, SSH cipher on one core).
pub(super) const LINK_BYTES_PER_MS: f64 = 40_000.0;
/// xz -6 compression on the queue-runner host: 2.9 MB/s per core (docs/hydra.md §6, measured).
pub(super) const XZ_BYTES_PER_MS: f64 = 2_900.0;
/// xz -6 output is 19.5 % of the NAR (docs/hydra.md §6, measured).
pub(super) const XZ_RATIO: f64 = 0.195;
/// Upload of the compressed NAR to the S3 binary cache (assumed 30 MB/s from the host).
pub(super) const UPLOAD_BYTES_PER_MS: f64 = 30_000.0;
/// Per-step cost of receiving: path-info query, NAR member extraction, narinfo signing and
/// upload, database updates (assumed ~1.5 s; several round trips to S3 and PostgreSQL).
pub(super) const RECEIVE_SETUP_MS: f64 = 1_500.0;
/// Substitution from cache.nixos.org into the queue runner's store (assumed 60 MB/s, CDN) plus a
/// fixed 0.3 s for the narinfo query.
pub(super) const SUBST_BYTES_PER_MS: f64 = 60_000.0;
pub(super) const SUBST_SETUP_MS: f64 = 300.0;

// ---------------------------------------------------------------------------------------------
// Derivations: build time and sizes (log-normal, correlated through one latent "heaviness")
// ---------------------------------------------------------------------------------------------

/// One kind of derivation: log-normal build time at speed factor 1, output NAR size and input
/// closure sent to the builder, plus the extra runtime closure counted in Builds.closureSize.
#[derive(Debug, Clone, Copy)]
pub(super) struct KindParams {
    pub build_median_ms: f64,
    pub build_sigma: f64,
    pub out_median: f64,
    pub out_sigma: f64,
    pub in_median: f64,
    pub in_sigma: f64,
}

const MB: f64 = 1e6;

/// Ordinary packages. Build time log-normal, median 3.5 s at speed factor 1 with σ 1.9, plus the
/// heavy tail below: most derivations are small (wrappers, scripts, small libraries) and a few
/// take hours. Together with tests and hangs this gives a mean of ~40 s per finished step once
/// divided by the speed factors, inside the 33–46 s published for hydra.nixos.org builders
/// (docs/hydra.md §3). Output NAR median 1 MB with σ 2.3: a tail of GB-sized outputs (CUDA, LLVM,
/// VM images). Inputs sent median 160 MB (builders collect garbage often, so much of a build
/// closure is sent again; stdenv alone is ~300 MB).
pub(super) const LEAF: KindParams = KindParams {
    build_median_ms: 3_500.0,
    build_sigma: 1.9,
    out_median: 1.0 * MB,
    out_sigma: 2.3,
    in_median: 160.0 * MB,
    in_sigma: 1.2,
};
/// NixOS VM tests: minutes of wall time (booting VMs; median 150 s at speed factor 1), tiny
/// outputs (logs), large inputs (the system closures of the test VMs).
pub(super) const TEST: KindParams = KindParams {
    build_median_ms: 150_000.0,
    build_sigma: 0.7,
    out_median: 0.05 * MB,
    out_sigma: 1.0,
    in_median: 250.0 * MB,
    in_sigma: 0.8,
};
/// A share of NixOS tests are long (installer tests, VM image builds, multi-machine tests):
/// median 45 min at speed factor 1 (assumed; `meta.timeout` of such tests in nixpkgs is often an
/// hour or more). With the heavy packages they keep a few steps running at any time.
pub(super) const TEST_LONG_P: f64 = 0.1;
pub(super) const TEST_LONG_MEDIAN_MS: f64 = 2_700_000.0;
pub(super) const TEST_LONG_SIGMA: f64 = 0.5;
/// Core libraries of the mass rebuild: heavier than average (openssl, python, perl, cmake).
pub(super) const CORE: KindParams = KindParams {
    build_median_ms: 120_000.0,
    build_sigma: 1.2,
    out_median: 15.0 * MB,
    out_sigma: 1.5,
    in_median: 150.0 * MB,
    in_sigma: 1.0,
};
/// Helper derivations a job needs that are not jobs (fetched sources, patched scripts).
pub(super) const PRIVATE: KindParams = KindParams {
    build_median_ms: 3_000.0,
    build_sigma: 1.5,
    out_median: 2.0 * MB,
    out_sigma: 2.0,
    in_median: 10.0 * MB,
    in_sigma: 1.0,
};
/// Chain nodes: build time from `CHAIN_NAMES_*`, sizes of a toolchain.
pub(super) const CHAIN: KindParams = KindParams {
    build_median_ms: 0.0,
    build_sigma: 0.3,
    out_median: 60.0 * MB,
    out_sigma: 1.0,
    in_median: 200.0 * MB,
    in_sigma: 0.8,
};
/// Substituted paths (type 1 steps): downloaded, never built.
pub(super) const SUBST_OUT_MEDIAN: f64 = 5.0 * MB;
pub(super) const SUBST_OUT_SIGMA: f64 = 2.0;
/// Aggregate jobs (`tested`, channel blockers): a symlink farm built in a second.
pub(super) const AGGREGATE_BUILD_MS: f64 = 1_500.0;

/// Correlation of the output size and of the input closure with the build time's latent normal:
/// big builds produce and need big closures (assumed moderate), which is what correlates
/// `overhead` with input closure and output size.
pub(super) const RHO_OUT: f64 = 0.5;
pub(super) const RHO_IN: f64 = 0.35;
/// Runtime closure beyond the outputs, for Builds.closureSize (assumed median 120 MB: glibc,
/// a shell, a few libraries).
pub(super) const CLOSURE_EXTRA_MEDIAN: f64 = 120.0 * MB;
pub(super) const CLOSURE_EXTRA_SIGMA: f64 = 1.0;
/// The heaviest packages (browsers, compilers, kernels, CUDA, office suites: a few hundred
/// attributes per system in nixpkgs, rebuilt whenever a dependency changes) take hours: 0.3 % of
/// packages have a Pareto build time from 2.2 h at speed factor 1 (35–70 min on the fast
/// big-parallel builders) with shape 1.6 (assumed; a log-normal alone cannot give a mean of ~40 s
/// and a tail of hours at once). They need big-parallel, and with long tests and hangs they keep
/// a few steps running at most times, nights included.
pub(super) const HEAVY_P: f64 = 0.003;
pub(super) const HEAVY_MIN_MS: f64 = 7_920_000.0;
pub(super) const HEAVY_SHAPE: f64 = 1.6;
/// Heavy builds stay under the timeout on the slowest big-parallel builder (speed factor 2):
/// packages that would not get `meta.timeout` raised in nixpkgs (assumed), so time-outs come
/// from hangs, not from the tail.
pub(super) const HEAVY_MAX_MS: f64 = 16.0 * 3_600_000.0;
/// Packages heavier than this latent quantile need `big-parallel` (the top ~3 %: in nixpkgs,
/// `requiredSystemFeatures = [ "big-parallel" ]` marks compilers, browsers, kernels).
pub(super) const BIG_PARALLEL_Z: f64 = 1.9;
/// Share of ordinary packages needing `kvm` (VM images, disk-image builders; assumed).
pub(super) const KVM_P: f64 = 0.01;
/// Per-execution noise of a build's duration on a machine (assumed 10 %: caches, neighbours).
pub(super) const BUILD_JITTER_SIGMA: f64 = 0.1;

// ---------------------------------------------------------------------------------------------
// Outcomes (per dispatched build step unless said otherwise)
// ---------------------------------------------------------------------------------------------

/// Aborts (status 3: lost connection, builder crash, misc failure) per attempt, and on the one
/// flaky builder per ~15 (assumed; hydra.nixos.org machine pages regularly show one builder
/// with consecutive failures). Aborts are retried (docs/hydra.md §4).
pub(super) const ABORT_P: f64 = 0.002;
pub(super) const FLAKY_ABORT_P: f64 = 0.03;
// Retries of aborted steps and the disabling of failing machines follow the queue runner's
// rules in `crate::dispatch::backoff`.
/// Build timeout and max-silent (docs/hydra.md §4: timeout 36000 s; hydra.nixos.org jobs 7200 s
/// max silent). A step whose build runs past the timeout is stopped there (status 7).
pub(super) const TIMEOUT_MS: f64 = 36_000_000.0;
pub(super) const MAX_SILENT_MS: f64 = 7_200_000.0;
/// Hung builds killed after max-silent (status 7): NixOS tests hang more often (a VM waiting
/// for a condition that never comes) than packages (assumed).
pub(super) const HANG_P_TEST: f64 = 0.006;
pub(super) const HANG_P: f64 = 0.0008;
/// Hydra's `max_output_size`: a step whose outputs are larger fails with status 11 before they
/// are copied (build-remote.cc). The default is 2 GiB; large Hydras raise it (assumed 8 GiB
/// here, so that GB-sized outputs mostly succeed and only the extreme tail fails).
pub(super) const MAX_OUTPUT_SIZE: u64 = 8 << 30;
/// Log limit exceeded (status 10; assumed rare, runaway warnings in a build log).
pub(super) const LOG_LIMIT_P: f64 = 0.0002;
/// Determinism checks (times_built 2): a small share of successful build steps is built twice
/// (assumed 0.5 %); a fifth of those differ (is_non_deterministic), and a tenth of those fail
/// with status 12 (jobsets enforcing determinism are rare).
pub(super) const DET_CHECK_P: f64 = 0.005;
pub(super) const NONDET_P: f64 = 0.2;
pub(super) const NONDET_FAIL_P: f64 = 0.1;
/// NixOS tests that build but mark themselves failed (`nix-support/failed`): build status 6
/// while the step itself succeeded (assumed).
pub(super) const FAILED_WITH_OUTPUT_P: f64 = 0.005;
/// Builds queued whose outputs are already valid (built by another jobset or Hydra): finished at
/// once with isCachedBuild = 1 and no step (assumed).
pub(super) const CACHED_BUILD_P: f64 = 0.06;

// ---------------------------------------------------------------------------------------------
// Ids and names
// ---------------------------------------------------------------------------------------------

/// First ids, near hydra.nixos.org's in mid-2025 (so that they look like real ones).
pub(super) const BUILD_ID_BASE: i32 = 300_000_001;
pub(super) const EVAL_ID_BASE: i32 = 1_815_001;
/// Share of evaluation members that were already built and succeeded (nrSucceeded counts them).
pub(super) const UNCHANGED_SUCCESS: f64 = 0.96;
/// Builds.priority is meta.schedulingPriority, 100 unless a package sets it (hydra-eval-jobs).
pub(super) const DEFAULT_PRIORITY: i32 = 100;
/// Share of builds bumped by an admin (globalPriority 1) when they are queued (assumed rare).
pub(super) const BUMP_P: f64 = 0.001;

// ---------------------------------------------------------------------------------------------
// Systems, features, machines
// ---------------------------------------------------------------------------------------------

pub(super) const SYSTEMS: [&str; 4] = [
    "x86_64-linux",
    "aarch64-linux",
    "x86_64-darwin",
    "aarch64-darwin",
];
pub(super) const X86_LINUX: u8 = 0;
pub(super) const ARM_LINUX: u8 = 1;

pub(super) const BP: u8 = 1;
pub(super) const KVM: u8 = 2;
pub(super) const NT: u8 = 4;
pub(super) const FEATURE_NAMES: [(u8, &str); 3] =
    [(BP, "big-parallel"), (KVM, "kvm"), (NT, "nixos-test")];

/// The names of the features in `mask`, sorted (as the runners join them into a machine type).
pub(super) fn feature_names(mask: u8) -> Vec<&'static str> {
    let mut names: Vec<&str> = FEATURE_NAMES
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    names.sort_unstable();
    names
}

/// One builder: maxJobs, speed factor, supported and mandatory features.
#[derive(Debug, Clone, Copy)]
pub(super) struct MachineTemplate {
    pub max_jobs: u32,
    pub speed: f64,
    pub supported: u8,
    pub mandatory: u8,
}

const fn template(max_jobs: u32, speed: f64, supported: u8, mandatory: u8) -> MachineTemplate {
    MachineTemplate {
        max_jobs,
        speed,
        supported,
        mandatory,
    }
}

/// The farm at scale 1, per system: (machines, templates cycled through). The first template of
/// each system supports every feature its jobs need and has no mandatory feature, so that any
/// scale has a machine for every step. More x86_64-linux than anything else, as on
/// hydra.nixos.org; one large big-parallel-only builder (mandatory big-parallel) as NixOS/infra
/// configures for its largest machines; Macs small (maxJobs 2–8, assumed from Mac minis and
/// Mac Studios). Speed factors 1–4 (the machines file's field; here it also divides build time).
pub(super) const FARM: [(f64, &[MachineTemplate]); 4] = [
    (
        12.0,
        &[
            template(8, 4.0, BP | KVM | NT, 0),
            template(32, 4.0, BP | KVM | NT, BP),
            template(2, 2.0, KVM | NT, 0),
            template(2, 1.0, 0, 0),
            template(2, 2.0, BP | KVM | NT, 0),
            template(2, 1.0, KVM | NT, 0),
            template(2, 2.0, KVM | NT, 0),
            template(2, 1.5, 0, 0),
            template(2, 1.0, KVM | NT, 0),
            template(2, 1.0, 0, 0),
            template(2, 2.0, KVM, 0),
            template(2, 1.0, 0, 0),
        ],
    ),
    (
        8.0,
        &[
            template(8, 3.0, BP | KVM | NT, 0),
            template(2, 2.0, KVM | NT, 0),
            template(2, 1.0, 0, 0),
            template(2, 1.0, KVM | NT, 0),
            template(2, 2.0, BP, 0),
            template(2, 1.0, 0, 0),
            template(2, 1.0, KVM | NT, 0),
            template(2, 1.0, 0, 0),
        ],
    ),
    (
        4.0,
        &[
            template(2, 2.0, BP, 0),
            template(2, 1.0, 0, 0),
            template(2, 1.0, 0, 0),
            template(2, 1.0, 0, 0),
        ],
    ),
    (
        6.0,
        &[
            template(4, 4.0, BP, 0),
            template(2, 2.0, 0, 0),
            template(2, 2.0, 0, 0),
            template(2, 2.0, BP, 0),
            template(2, 2.0, 0, 0),
            template(2, 1.0, 0, 0),
        ],
    ),
];
/// Host-name stems for the machines file (under the reserved `.example` domain).
pub(super) const HOST_STEMS: [&str; 4] = ["x86-linux", "arm-linux", "mac-intel", "mac-arm"];
/// Systems each machine announces: x86_64 Linux builders also build i686-linux, as on
/// hydra.nixos.org (docs/hydra.md §4's example line).
pub(super) const MACHINE_SYSTEMS: [&str; 4] = [
    "x86_64-linux,i686-linux",
    "aarch64-linux",
    "x86_64-darwin",
    "aarch64-darwin",
];
/// Every ~15th builder is flaky (see FLAKY_ABORT_P).
pub(super) const FLAKY_EVERY: usize = 15;
pub(super) const SSH_KEY: &str = "/var/lib/hydra/queue-runner/.ssh/id_ed25519";

// ---------------------------------------------------------------------------------------------
// Jobsets
// ---------------------------------------------------------------------------------------------

/// How a jobset names its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Naming {
    /// `hello.x86_64-linux`
    Nixpkgs,
    /// `nixos.tests.firefox.x86_64-linux`, `nixpkgs.hello.x86_64-linux`, `tested`
    Nixos,
    /// `build.x86_64-linux`, `tests.functional.x86_64-linux`
    Project,
}

/// One jobset and the evaluations it gets over the week.
#[derive(Debug, Clone, Copy)]
pub(super) struct JobsetDef {
    pub project: &'static str,
    pub name: &'static str,
    pub enabled: i32,
    pub shares: i32,
    pub check_interval_s: i32,
    /// Pushes to the jobset's inputs per day at mean activity (a Poisson process shaped by the
    /// diurnal curve). The evaluator checks every `check_interval_s` after the previous
    /// evaluation ended and evaluates when pushes arrived since: one evaluation covers them all.
    pub pushes_per_day: f64,
    /// New builds per day at mean activity and scale 1; each push brings a log-normal share
    /// (spread `push_sigma`), so an evaluation's size follows the pushes it covers.
    pub builds_per_day: f64,
    pub push_sigma: f64,
    /// Evaluation wall time, median seconds.
    pub eval_time_s: f64,
    pub checkout_time_s: f64,
    /// Jobs in one evaluation (nrBuilds), at scale 1.
    pub members: f64,
    /// Share of jobs per system (x86_64-linux, aarch64-linux, x86_64-darwin, aarch64-darwin).
    pub systems: [f64; 4],
    /// Share of jobs that are NixOS tests (Linux only).
    pub test_share: f64,
    /// Share of jobs re-using a derivation trunk just queued (trunk-combined contains nixpkgs).
    pub mirror_share: f64,
    /// Probability that a job needs a new shared dependency of its evaluation, and the size of
    /// that evaluation-wide pool of changed libraries relative to the builds.
    pub dep_p: f64,
    pub pool_ratio: f64,
    /// Private helper derivations and substituted paths per job (Poisson means).
    pub private_lambda: f64,
    pub subst_lambda: f64,
    /// Probability that a build step fails (status 1).
    pub fail_p: f64,
    /// Evaluations get a `tested` aggregate job depending on all its tests.
    pub aggregate: bool,
    /// Superseded evaluations may be cancelled (see SUPERSEDE_CANCEL_P).
    pub cancellable: bool,
    pub naming: Naming,
}

/// The jobsets of a large public Hydra (hydra.nixos.org's main ones, a few small projects, and a
/// disabled one). Rates and sizes assumed so that the week totals ~100 k steps at scale 1, with
/// trunk the busiest, staging-next the biggest per evaluation, and failure rates of a few per
/// cent (hydra.nixos.org evaluation pages show 1–5 % of new builds failing on trunk; staging-next
/// more, a stable release less).
pub(super) const JOBSETS: &[JobsetDef] = &[
    JobsetDef {
        project: "nixpkgs",
        name: "trunk",
        enabled: 1,
        shares: 400,
        check_interval_s: 1_800,
        pushes_per_day: 40.0,
        builds_per_day: 4_200.0,
        push_sigma: 1.0,
        eval_time_s: 2_400.0,
        checkout_time_s: 40.0,
        members: 60_000.0,
        systems: [0.36, 0.28, 0.14, 0.22],
        test_share: 0.0,
        mirror_share: 0.0,
        dep_p: 0.25,
        pool_ratio: 0.05,
        private_lambda: 0.15,
        subst_lambda: 0.08,
        fail_p: 0.03,
        aggregate: false,
        cancellable: true,
        naming: Naming::Nixpkgs,
    },
    JobsetDef {
        project: "nixos",
        name: "trunk-combined",
        enabled: 1,
        shares: 400,
        check_interval_s: 3_600,
        pushes_per_day: 40.0,
        builds_per_day: 1_500.0,
        push_sigma: 1.0,
        eval_time_s: 3_000.0,
        checkout_time_s: 40.0,
        members: 25_000.0,
        systems: [0.62, 0.38, 0.0, 0.0],
        test_share: 0.3,
        mirror_share: 0.45,
        dep_p: 0.15,
        pool_ratio: 0.04,
        private_lambda: 0.1,
        subst_lambda: 0.05,
        fail_p: 0.03,
        aggregate: true,
        cancellable: false,
        naming: Naming::Nixos,
    },
    JobsetDef {
        project: "nixpkgs",
        name: "staging-next",
        enabled: 1,
        shares: 200,
        check_interval_s: 3_600,
        pushes_per_day: 8.0,
        builds_per_day: 2_100.0,
        push_sigma: 1.0,
        eval_time_s: 2_400.0,
        checkout_time_s: 40.0,
        members: 60_000.0,
        systems: [0.36, 0.28, 0.14, 0.22],
        test_share: 0.0,
        mirror_share: 0.0,
        dep_p: 0.35,
        pool_ratio: 0.06,
        private_lambda: 0.2,
        subst_lambda: 0.05,
        fail_p: 0.045,
        aggregate: false,
        cancellable: true,
        naming: Naming::Nixpkgs,
    },
    JobsetDef {
        project: "nixos",
        name: "release-25.05",
        enabled: 1,
        shares: 800,
        check_interval_s: 3_600,
        pushes_per_day: 6.0,
        builds_per_day: 500.0,
        push_sigma: 0.8,
        eval_time_s: 2_700.0,
        checkout_time_s: 30.0,
        members: 40_000.0,
        systems: [0.45, 0.3, 0.1, 0.15],
        test_share: 0.15,
        mirror_share: 0.0,
        dep_p: 0.2,
        pool_ratio: 0.05,
        private_lambda: 0.1,
        subst_lambda: 0.05,
        fail_p: 0.012,
        aggregate: true,
        cancellable: false,
        naming: Naming::Nixos,
    },
    JobsetDef {
        project: "nix",
        name: "master",
        enabled: 1,
        shares: 100,
        check_interval_s: 300,
        pushes_per_day: 5.0,
        builds_per_day: 250.0,
        push_sigma: 0.5,
        eval_time_s: 120.0,
        checkout_time_s: 5.0,
        members: 160.0,
        systems: [0.4, 0.3, 0.1, 0.2],
        test_share: 0.2,
        mirror_share: 0.0,
        dep_p: 0.4,
        pool_ratio: 0.1,
        private_lambda: 0.3,
        subst_lambda: 0.3,
        fail_p: 0.04,
        aggregate: false,
        cancellable: false,
        naming: Naming::Project,
    },
    JobsetDef {
        project: "nix",
        name: "maintenance-2.28",
        enabled: 1,
        shares: 50,
        check_interval_s: 3_600,
        pushes_per_day: 0.8,
        builds_per_day: 35.0,
        push_sigma: 0.4,
        eval_time_s: 120.0,
        checkout_time_s: 5.0,
        members: 150.0,
        systems: [0.4, 0.3, 0.1, 0.2],
        test_share: 0.2,
        mirror_share: 0.0,
        dep_p: 0.4,
        pool_ratio: 0.1,
        private_lambda: 0.3,
        subst_lambda: 0.3,
        fail_p: 0.02,
        aggregate: false,
        cancellable: false,
        naming: Naming::Project,
    },
    JobsetDef {
        project: "hydra",
        name: "master",
        enabled: 1,
        shares: 50,
        check_interval_s: 600,
        pushes_per_day: 1.5,
        builds_per_day: 25.0,
        push_sigma: 0.4,
        eval_time_s: 90.0,
        checkout_time_s: 5.0,
        members: 40.0,
        systems: [0.7, 0.3, 0.0, 0.0],
        test_share: 0.3,
        mirror_share: 0.0,
        dep_p: 0.3,
        pool_ratio: 0.1,
        private_lambda: 0.3,
        subst_lambda: 0.3,
        fail_p: 0.05,
        aggregate: false,
        cancellable: false,
        naming: Naming::Project,
    },
    JobsetDef {
        project: "patchelf",
        name: "master",
        enabled: 1,
        shares: 20,
        check_interval_s: 3_600,
        pushes_per_day: 0.4,
        builds_per_day: 5.0,
        push_sigma: 0.3,
        eval_time_s: 30.0,
        checkout_time_s: 3.0,
        members: 30.0,
        systems: [0.4, 0.3, 0.1, 0.2],
        test_share: 0.0,
        mirror_share: 0.0,
        dep_p: 0.2,
        pool_ratio: 0.1,
        private_lambda: 0.2,
        subst_lambda: 0.2,
        fail_p: 0.02,
        aggregate: false,
        cancellable: false,
        naming: Naming::Project,
    },
    JobsetDef {
        project: "nixops",
        name: "master",
        enabled: 0,
        shares: 100,
        check_interval_s: 3_600,
        pushes_per_day: 0.0,
        builds_per_day: 0.0,
        push_sigma: 0.0,
        eval_time_s: 60.0,
        checkout_time_s: 3.0,
        members: 50.0,
        systems: [1.0, 0.0, 0.0, 0.0],
        test_share: 0.0,
        mirror_share: 0.0,
        dep_p: 0.0,
        pool_ratio: 0.0,
        private_lambda: 0.0,
        subst_lambda: 0.0,
        fail_p: 0.0,
        aggregate: false,
        cancellable: false,
        naming: Naming::Project,
    },
];
/// Index of the jobset in JOBSETS that the mass rebuild lands on, and of trunk (mirrored by
/// trunk-combined).
pub(super) const STAGING_NEXT: usize = 2;
pub(super) const TRUNK: usize = 0;
/// Jobsets a burst evaluates together.
pub(super) const BURST_JOBSETS: [usize; 3] = [0, 1, 2];

// ---------------------------------------------------------------------------------------------
// The `nixos-2026` preset: the Rust queue runner and hydra.nixos.org's fleet (docs/hydra.md §7)
// ---------------------------------------------------------------------------------------------

/// Monday 2026-09-07 00:00:00 UTC: after hydra.nixos.org's switch to the Rust runner and after
/// its Prometheus began scraping the runner (both 2026-06-17, docs/hydra.md §7).
pub(super) const WEEK_START_2026_S: i64 = 1_788_739_200;

/// Bit of each system in a machine's set of systems (indices into [`SYSTEMS`]).
pub(super) const fn sys_bit(sys: u8) -> u8 {
    1 << sys
}

/// One builder of the 2026 fleet, as it announces itself to the Rust runner and as the
/// pressure model needs it.
#[derive(Debug, Clone, Copy)]
pub(super) struct FleetMachine {
    /// Its hostname: what the Rust runner writes into `BuildSteps.machine` (docs/hydra.md §3).
    pub host: &'static str,
    /// Systems it builds, a set of [`sys_bit`]s.
    pub systems: u8,
    pub max_jobs: u32,
    /// Nix's `cores` per build (NIX_BUILD_CORES).
    pub cores_per_job: u32,
    /// Hardware threads the builds share (the pressure model's capacity).
    pub cpus: u32,
    /// How fast it builds, against the workload's build times at speed factor 1 (assumed, see
    /// [`FLEET_2026`]). The builders announce speed factor 1: NixOS/infra sets none.
    pub pace: f64,
    pub supported: u8,
    pub mandatory: u8,
    /// Linux reports PSI (pressure stall information); macOS has none, so the runner tests
    /// load1 against its threshold instead (docs/hydra.md §4).
    pub psi: bool,
}

const DARWIN: u8 = sys_bit(2) | sys_bit(3);

/// hydra.nixos.org's builders (NixOS/infra at facf006c, docs/hydra.md §7): hostnames, maxJobs
/// and `cores` from `builders/instances/*.nix` and `macs/profiles/{m1,m2.large}.nix`; features
/// from the same files (elated-minsky and goofy-hopcroft everything but big-parallel;
/// sleepy-brown big-parallel only, not mandatory; hopeful-rivest big-parallel mandatory; M1 Macs
/// none; M2 Macs big-parallel). CPUs: maxJobs × cores, as the files size them ("8 Cores … split
/// into 4 jobs with 2C", "2/80 cores remain spare"); hopeful-rivest has 80. The Macs build
/// x86_64-darwin too: the builder announces Nix's extra-platforms (`hydra-builder/src/state.rs`),
/// which on Apple silicon with Rosetta include x86_64-darwin (assumed installed; the fleet has
/// no Intel Mac builder). 95 Linux and 28 Darwin slots.
///
/// Paces (assumed): two cores per job on an Epyc 9454P 2.0 and on Ampere Altra cores 1.5; 24
/// and 26 cores per big-parallel job 4.0 and 3.0; an M1 with 2 cores per job 1.5, an M2 with 4
/// 2.5 — the old sample's speed factors for like machines.
pub(super) const FLEET_2026: [FleetMachine; 12] = {
    const fn linux(
        host: &'static str,
        sys: u8,
        max_jobs: u32,
        cores_per_job: u32,
        cpus: u32,
        pace: f64,
        (supported, mandatory): (u8, u8),
    ) -> FleetMachine {
        FleetMachine {
            host,
            systems: sys_bit(sys),
            max_jobs,
            cores_per_job,
            cpus,
            pace,
            supported,
            mandatory,
            psi: true,
        }
    }
    const fn mac(host: &'static str, big: bool) -> FleetMachine {
        FleetMachine {
            host,
            systems: DARWIN,
            max_jobs: if big { 2 } else { 4 },
            cores_per_job: if big { 4 } else { 2 },
            cpus: 8,
            pace: if big { 2.5 } else { 1.5 },
            supported: if big { BP } else { 0 },
            mandatory: 0,
            psi: false,
        }
    }
    [
        linux("elated-minsky", X86_LINUX, 48, 2, 96, 2.0, (KVM | NT, 0)),
        linux("sleepy-brown", X86_LINUX, 4, 24, 96, 4.0, (BP, 0)),
        linux("goofy-hopcroft", ARM_LINUX, 40, 2, 80, 1.5, (KVM | NT, 0)),
        linux(
            "hopeful-rivest",
            ARM_LINUX,
            3,
            26,
            80,
            3.0,
            (BP | KVM | NT, BP),
        ),
        mac("enormous-catfish", false),
        mac("growing-jennet", false),
        mac("intense-heron", false),
        mac("maximum-snail", false),
        mac("sweeping-filly", false),
        mac("norwegian-blue", false),
        mac("eager-heisenberg", true),
        mac("kind-lumiere", true),
    ]
};

/// The Rust runner's settings on hydra.nixos.org (NixOS/infra `build/hydra-queue-runner.nix`,
/// docs/hydra.md §7): the dispatcher's trigger timer at its default, the step timeouts.
pub(super) const DISPATCH_TIMER_MS: u64 = 120_000;
pub(super) const TIMEOUT_2026_MS: f64 = 86_400_000.0;
pub(super) const MAX_SILENT_2026_MS: f64 = 10_800_000.0;
/// `maxOutputSize` 4294967295 bytes.
pub(super) const MAX_OUTPUT_SIZE_2026: u64 = 4_294_967_295;

/// The builders' thresholds: PSI cpu-some avg10 above 15 % holds a Linux builder back
/// (`cpuPsiThreshold = 15.0`, NixOS/infra `builders/common/hydra-queue-builder.nix`); the Macs
/// set none and have no PSI, so the builder's default load1 threshold of 8 applies
/// (`hydra-builder/src/config.rs`, docs/hydra.md §4).
pub(super) const CPU_PSI_THRESHOLD: f64 = 15.0;
pub(super) const LOAD1_THRESHOLD: f64 = 8.0;
/// A builder reports its pressure to the runner every 10 s (`ping_interval`'s default,
/// `hydra-builder/src/config.rs`); the runner decides on the last report.
pub(super) const PING_MS: u64 = 10_000;
/// The averaging windows of what is reported: PSI avg10 (10 s) and load1 (1 min), each an
/// exponentially decaying average as the kernels compute them.
pub(super) const PSI_TAU_MS: f64 = 10_000.0;
pub(super) const LOAD1_TAU_MS: f64 = 60_000.0;
/// Threads a building step keeps runnable, per core Nix gives it: log-normal, median 0.75,
/// σ 0.5 (assumed: configure and install phases run one thread, `make -j` uses all cores, and
/// some builds — Rust and Go compilers, test suites, VM tests — ignore NIX_BUILD_CORES and
/// overshoot).
pub(super) const THREADS_PER_CORE_MEDIAN: f64 = 0.75;
pub(super) const THREADS_PER_CORE_SIGMA: f64 = 0.5;
/// A step importing its inputs or compressing and uploading its outputs keeps one thread busy
/// (zstd at level 19 compresses a NAR on one thread).
pub(super) const COPY_THREADS: f64 = 1.0;
/// CPU pressure ("some": the share of time at least one runnable thread waited) from the
/// thread demand D on C CPUs: 0 up to 85 % of the CPUs, rising linearly to 100 % at 115 %
/// (assumed: demand fluctuates within a ping interval, so waits begin before D reaches C).
pub(super) const PSI_FROM: f64 = 0.85;
pub(super) const PSI_SPAN: f64 = 0.30;

/// Import: the builder substitutes the input closure it lacks from the binary cache
/// (`useSubstitutes`, required for presigned uploads): a setup of narinfo queries, log-normal
/// median 1 s σ 0.6 (assumed), and the inputs at 100 MB/s (assumed: the CDN to a data centre).
pub(super) const IMPORT_SETUP_MEDIAN_MS: f64 = 1_000.0;
pub(super) const IMPORT_SETUP_SIGMA: f64 = 0.6;
pub(super) const IMPORT_BYTES_PER_MS: f64 = 100_000.0;
/// Upload: the builder compresses each output NAR with zstd at level 19 on one core, 2.6 MB/s,
/// to 21.2 % of its size (docs/hydra.md §6, measured), and puts it to S3 through a presigned URL
/// at [`UPLOAD_BYTES_PER_MS`]; 0.8 s for the URL, the narinfo and the listing (assumed).
pub(super) const ZSTD19_BYTES_PER_MS: f64 = 2_600.0;
pub(super) const ZSTD19_RATIO: f64 = 0.212;
pub(super) const UPLOAD_SETUP_MS: f64 = 800.0;
