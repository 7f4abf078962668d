//! What the farm is asked to build: when evaluations arrive, and the builds and derivation
//! graphs each one queues.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::params::*;
use super::sim::{Build, Ev, Eval, Kind, NState, Sim, subst_ms};
use super::{exp_sample, lognormal, normal, poisson};
use crate::dispatch::BuildStatus;

/// Relative activity (mean 1 over the week) at a time from the week start.
pub(super) struct Activity {
    norm: f64,
    pub max: f64,
}

impl Activity {
    pub(super) fn new() -> Activity {
        // Mean and maximum on a 10-minute grid; the curve is smooth, so this is exact enough.
        let steps = (WEEK_MS / (10 * MINUTE_MS)) as usize;
        let mut sum = 0.0;
        let mut max: f64 = 0.0;
        for i in 0..steps {
            let v = raw_activity(i as u64 * 10 * MINUTE_MS);
            sum += v;
            max = max.max(v);
        }
        let norm = sum / steps as f64;
        Activity {
            norm,
            max: max / norm,
        }
    }

    pub(super) fn at(&self, t_ms: u64) -> f64 {
        raw_activity(t_ms) / self.norm
    }
}

fn raw_activity(t_ms: u64) -> f64 {
    let h = t_ms as f64 / HOUR_MS as f64;
    // Each bump is a Gaussian around its centre on the nearest day, weighted by whether that
    // day is a weekend day where the region is (days 5 and 6 of a week starting on Monday).
    let bump = |(centre, width, height): (f64, f64, f64)| {
        let day = ((h - centre) / 24.0).round();
        let d = h - (day * 24.0 + centre);
        let local_day = (day as i64).rem_euclid(7);
        let weekend = if local_day >= 5 { WEEKEND_FACTOR } else { 1.0 };
        height * weekend * (-0.5 * (d / width).powi(2)).exp()
    };
    let day = t_ms / DAY_MS;
    let floor = if day >= 5 {
        DIURNAL_FLOOR * WEEKEND_FACTOR
    } else {
        DIURNAL_FLOOR
    };
    floor + bump(DIURNAL_EU) + bump(DIURNAL_US) + bump(DIURNAL_APAC)
}

/// Samples a time of the week with density proportional to activity (thinning).
fn activity_time(rng: &mut ChaCha8Rng, act: &Activity) -> u64 {
    loop {
        let t = rng.random_range(0..WEEK_MS);
        if rng.random::<f64>() * act.max < act.at(t) {
            return t;
        }
    }
}

/// Plans every evaluation of the week, in time order.
///
/// Pushes arrive per jobset as a Poisson process shaped by activity; the evaluator checks a
/// jobset `check_interval` after its previous check (or after its previous evaluation ended) and
/// evaluates when pushes arrived since, so busy jobsets are evaluated back to back and each
/// evaluation's size is the sum of the pushes it covers: load follows the diurnal curve.
pub(super) fn plan_evals(rng: &mut ChaCha8Rng, scale: f64) -> Vec<Eval> {
    let act = Activity::new();
    let mut pushes: Vec<Vec<u64>> = vec![Vec::new(); JOBSETS.len()];
    for (j, def) in JOBSETS.iter().enumerate() {
        if def.pushes_per_day <= 0.0 || def.enabled == 0 {
            continue;
        }
        // Thinning: candidates at the maximum rate, kept with probability activity / maximum.
        let mean_gap = DAY_MS as f64 / (def.pushes_per_day * act.max);
        let mut t = 0.0;
        loop {
            t += exp_sample(rng, mean_gap);
            if t >= WEEK_MS as f64 {
                break;
            }
            let tm = t as u64;
            if rng.random::<f64>() * act.max < act.at(tm) {
                pushes[j].push(tm);
            }
        }
    }
    for _ in 0..poisson(rng, BURSTS_PER_WEEK) {
        let t = activity_time(rng, &act);
        for &j in &BURST_JOBSETS {
            for _ in 0..BURST_PUSHES {
                let dt = rng.random_range(0..BURST_SPREAD_MS);
                pushes[j].push((t + dt).min(WEEK_MS - 1));
            }
        }
    }
    let mut evals = Vec::new();
    for (j, def) in JOBSETS.iter().enumerate() {
        let list = &mut pushes[j];
        if list.is_empty() {
            continue;
        }
        list.sort_unstable();
        let per_push = def.builds_per_day / def.pushes_per_day;
        // The log-normal's median that gives `per_push` as its mean.
        let median = per_push * (-0.5 * def.push_sigma * def.push_sigma).exp();
        let interval = def.check_interval_s as u64 * 1000;
        let mut check = rng.random_range(0..interval.max(1));
        let mut next = 0;
        while check < WEEK_MS && next < list.len() {
            let mut covered = 0;
            while next < list.len() && list[next] <= check {
                next += 1;
                covered += 1;
            }
            if covered == 0 {
                // Nothing new: the next check comes one interval later (or at the next push,
                // whichever is later, which is the same evaluation).
                check = (check + interval).max(list[next].min(WEEK_MS));
                continue;
            }
            let eval_ms = (def.eval_time_s * 1000.0 * (0.3 * normal(rng)).exp()) as u64;
            let at = check + eval_ms;
            let size: f64 = (0..covered)
                .map(|_| lognormal(rng, median, def.push_sigma))
                .sum();
            if at < WEEK_MS {
                evals.push(Eval {
                    jobset: j as u8,
                    at_ms: at,
                    size: size * scale,
                    mass: false,
                    checkout_s: (def.checkout_time_s * (0.5 * normal(rng)).exp()).round() as i64,
                    eval_s: (eval_ms / 1000) as i64,
                    members: def.members * scale,
                    builds_start: 0,
                    builds_len: 0,
                });
            }
            check = at + interval;
        }
    }
    let def = &JOBSETS[STAGING_NEXT];
    evals.push(Eval {
        jobset: STAGING_NEXT as u8,
        at_ms: MASS_REBUILD_AT_MS,
        size: MASS_REBUILD_BUILDS * scale,
        mass: true,
        checkout_s: def.checkout_time_s as i64,
        eval_s: (def.eval_time_s * 1.5) as i64,
        members: def.members * scale,
        builds_start: 0,
        builds_len: 0,
    });
    evals.sort_by_key(|e| (e.at_ms, e.jobset));
    evals
}

/// A build before it gets its id (ids follow the evaluator's job order, not creation order).
struct Spec {
    top: u32,
    job: String,
    subst: Vec<u32>,
}

const OUT_NAMES: [&str; 6] = ["out", "bin", "dev", "doc", "lib", "man"];
pub(super) const OUT: u8 = 1;

/// Output names of a mask, sorted by name (the step_outputs key order).
pub(super) fn output_names(mask: u8) -> impl Iterator<Item = &'static str> {
    let mut idx = [1usize, 2, 3, 4, 5, 0];
    // Alphabetical: bin, dev, doc, lib, man, out.
    idx.sort_by_key(|&i| OUT_NAMES[i]);
    idx.into_iter()
        .filter(move |&i| mask & (1 << i) != 0)
        .map(|i| OUT_NAMES[i])
}

const SYLLABLES: [&str; 32] = [
    "ba", "ko", "ri", "zen", "lu", "mo", "tar", "vi", "pex", "dor", "qua", "sil", "nu", "fen",
    "gar", "hol", "jin", "kry", "lem", "nox", "or", "pul", "ras", "sto", "tul", "ux", "vel", "wyn",
    "xo", "yar", "zo", "cal",
];

impl Sim {
    fn word(&mut self) -> String {
        let n = self.rng.random_range(2..4);
        (0..n)
            .map(|_| SYLLABLES[self.rng.random_range(0..SYLLABLES.len())])
            .collect()
    }

    fn version(&mut self) -> String {
        let r = &mut self.rng;
        format!(
            "{}.{}.{}",
            r.random_range(0..12),
            r.random_range(0..30),
            r.random_range(0..10)
        )
    }

    /// An attribute path and a name for a package: `python313Packages.korisil` and
    /// `python3.13-korisil-1.2.3`.
    fn package_name(&mut self) -> (String, String) {
        let w = self.word();
        let v = self.version();
        match self.rng.random_range(0..10) {
            0 => (
                format!("python313Packages.{w}"),
                format!("python3.13-{w}-{v}"),
            ),
            1 => (format!("haskellPackages.{w}"), format!("{w}-{v}")),
            2 => (format!("perlPackages.{w}"), format!("perl5.40.0-{w}-{v}")),
            3 => (format!("rubyPackages.{w}"), format!("ruby3.3-{w}-{v}")),
            _ => (w.clone(), format!("{w}-{v}")),
        }
    }

    fn intern(&mut self, name: String) -> u32 {
        self.names.push(name);
        (self.names.len() - 1) as u32
    }

    fn outputs(&mut self, kind: Kind) -> u8 {
        let mut mask = OUT;
        if matches!(kind, Kind::Leaf | Kind::Core | Kind::Chain) {
            // Multiple outputs are common in nixpkgs (assumed shares).
            for (bit, p) in [(1u8, 0.05), (2, 0.3), (3, 0.1), (4, 0.1), (5, 0.15)] {
                if self.rng.random::<f64>() < p {
                    mask |= 1 << bit;
                }
            }
        }
        mask
    }

    /// Creates a derivation of `kind` with sizes and build time drawn from its parameters.
    fn derivation(
        &mut self,
        kind: Kind,
        sys: u8,
        fail_p: f64,
        deps: &[u32],
        name: String,
        base_override: Option<f64>,
    ) -> u32 {
        let p = match kind {
            Kind::Leaf | Kind::Aggregate | Kind::Subst => LEAF,
            Kind::Test => TEST,
            Kind::Core => CORE,
            Kind::Private => PRIVATE,
            Kind::Chain => CHAIN,
        };
        let r = &mut self.rng;
        let mut z = normal(r);
        let mut base = match base_override {
            Some(b) => b * (p.build_sigma * z).exp(),
            None => p.build_median_ms * (p.build_sigma * z).exp(),
        };
        if kind == Kind::Test && r.random::<f64>() < TEST_LONG_P {
            base = TEST_LONG_MEDIAN_MS * (TEST_LONG_SIGMA * z).exp();
        }
        let heavy = matches!(kind, Kind::Leaf | Kind::Core) && r.random::<f64>() < HEAVY_P;
        if heavy {
            // Pareto by inversion; 1 − u is in (0, 1], so the power is finite.
            let u: f64 = r.random();
            base = (HEAVY_MIN_MS * (1.0 - u).powf(-1.0 / HEAVY_SHAPE)).min(HEAVY_MAX_MS);
            // Heavy builds have big closures too.
            z = z.max(BIG_PARALLEL_Z + 0.5);
        }
        let corr = |r: &mut ChaCha8Rng, rho: f64| rho * z + (1.0 - rho * rho).sqrt() * normal(r);
        let mut out = p.out_median * (p.out_sigma * corr(r, RHO_OUT)).exp();
        let input = p.in_median * (p.in_sigma * corr(r, RHO_IN)).exp();
        let extra = lognormal(r, CLOSURE_EXTRA_MEDIAN, CLOSURE_EXTRA_SIGMA);
        let mut feat = 0;
        match kind {
            Kind::Test => feat = KVM | NT,
            Kind::Leaf | Kind::Core => {
                if z > BIG_PARALLEL_Z {
                    feat = BP;
                } else if (sys == X86_LINUX || sys == ARM_LINUX) && r.random::<f64>() < KVM_P {
                    feat = KVM;
                }
            }
            Kind::Aggregate => {
                base = AGGREGATE_BUILD_MS;
                out = 10_000.0;
            }
            Kind::Subst => out = lognormal(r, SUBST_OUT_MEDIAN, SUBST_OUT_SIGMA),
            _ => {}
        }
        let hash = r.random::<u64>();
        let outputs = self.outputs(kind);
        let name = self.intern(name);
        self.add_node(
            kind,
            sys,
            feat,
            base,
            fail_p,
            (out as u64, input as u64, extra as u64),
            deps,
            name,
            hash,
            outputs,
        )
    }

    fn pick_system(&mut self, weights: &[f64; 4]) -> u8 {
        let total: f64 = weights.iter().sum();
        let mut u = self.rng.random::<f64>() * total;
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                return i as u8;
            }
            u -= w;
        }
        0
    }

    /// Scales an expected count and rounds it randomly, so that expectations stay linear in
    /// `scale` even for small jobsets.
    fn scaled(&mut self, x: f64) -> usize {
        let x = x.max(0.0);
        let f = x.floor();
        (f as usize) + usize::from(self.rng.random::<f64>() < x - f)
    }

    /// Generates the builds of evaluation `e` when it arrives (so that it can re-use what the
    /// farm built or failed before) and queues them for the queue monitor.
    pub(super) fn generate_eval(&mut self, e: u32) {
        let ev = self.evals[e as usize].clone();
        let j = ev.jobset as usize;
        let n = self.scaled(ev.size);
        let mut specs = if ev.mass {
            self.mass_rebuild(j, n)
        } else {
            self.normal_eval(j, n)
        };
        // hydra-eval-jobset inserts jobs in the evaluator's order, by job name.
        specs.shuffle(&mut self.rng);
        let now = self.now;
        let mut clock = self.monitor_free_at.max(now);
        let first = self.builds.len() as u32;
        for spec in specs {
            let b = self.builds.len() as u32;
            let subst_start = self.subst_nodes.len() as u32;
            let mut load_ms = LOAD_MS_PER_BUILD;
            for &s in &spec.subst {
                load_ms += subst_ms(self.nodes[s as usize].out_size);
            }
            self.subst_nodes.extend_from_slice(&spec.subst);
            self.jobs.push(spec.job);
            let gprio = i32::from(self.rng.random::<f64>() < BUMP_P);
            self.builds.push(Build {
                jobset: j as u8,
                job: (self.jobs.len() - 1) as u32,
                top: spec.top,
                prio: DEFAULT_PRIORITY,
                gprio,
                queued_ms: now,
                load_start_ms: clock,
                subst_start,
                subst_len: spec.subst.len() as u32,
                loaded: false,
                holds_ref: false,
                finished: false,
                status: BuildStatus::Success,
                start_ms: None,
                stop_ms: None,
                is_cached: false,
                size: None,
                closure: None,
                next_stepnr: 0,
            });
            self.link_build(b);
            clock += load_ms;
            self.schedule(clock, Ev::Load(b));
            if self.rng.random::<f64>() < USER_CANCEL_P {
                let at = now + exp_sample(&mut self.rng, USER_CANCEL_MEAN_MS) as u64;
                self.schedule(at, Ev::CancelBuild(b));
            }
        }
        self.monitor_free_at = clock;
        let ev = &mut self.evals[e as usize];
        ev.builds_start = first;
        ev.builds_len = self.builds.len() as u32 - first;
        if j == TRUNK {
            for s in 0..4 {
                self.trunk_recent[s].clear();
            }
            for b in first..self.builds.len() as u32 {
                let top = self.builds[b as usize].top;
                let node = &self.nodes[top as usize];
                if node.state != NState::Done && node.kind == Kind::Leaf {
                    self.trunk_recent[node.sys as usize].push(top);
                }
            }
        }
    }

    fn job_name(&self, naming: Naming, kind: Kind, attr: &str, sys: u8) -> String {
        let s = SYSTEMS[sys as usize];
        match (naming, kind) {
            (Naming::Nixos, Kind::Test) => format!("nixos.tests.{attr}.{s}"),
            (Naming::Nixos, _) => format!("nixpkgs.{attr}.{s}"),
            (Naming::Project, Kind::Test) => format!("tests.{attr}.{s}"),
            (Naming::Project, _) => format!("build.{attr}.{s}"),
            (Naming::Nixpkgs, _) => format!("{attr}.{s}"),
        }
    }

    /// An ordinary evaluation: a few hundred changed jobs, some sharing newly changed
    /// libraries of this evaluation, a few substituted inputs and helper derivations.
    fn normal_eval(&mut self, j: usize, n: usize) -> Vec<Spec> {
        let def = JOBSETS[j];
        let mut specs = Vec::with_capacity(n + 1);
        let mut pools: [Vec<u32>; 4] = Default::default();
        let total_w: f64 = def.systems.iter().sum();
        let mut tests = Vec::new();
        for _ in 0..n {
            let sys = self.pick_system(&def.systems);
            let linux = sys == X86_LINUX || sys == ARM_LINUX;
            let kind = if linux && self.rng.random::<f64>() < def.test_share {
                Kind::Test
            } else {
                Kind::Leaf
            };
            // trunk-combined contains nixpkgs: the same derivation as a trunk build.
            if kind == Kind::Leaf
                && def.mirror_share > 0.0
                && !self.trunk_recent[sys as usize].is_empty()
                && self.rng.random::<f64>() < def.mirror_share
            {
                let list = &self.trunk_recent[sys as usize];
                let top = list[self.rng.random_range(0..list.len())];
                let name = &self.names[self.nodes[top as usize].name as usize];
                let attr = pname(name).to_string();
                specs.push(Spec {
                    job: self.job_name(def.naming, kind, &attr, sys),
                    top,
                    subst: Vec::new(),
                });
                continue;
            }
            let (attr, name) = if kind == Kind::Test {
                let w = self.word();
                (w.clone(), format!("vm-test-run-{w}"))
            } else {
                self.package_name()
            };
            let job = self.job_name(def.naming, kind, &attr, sys);
            if self.rng.random::<f64>() < CACHED_BUILD_P {
                // Outputs valid already: the top level exists and is done, nothing to build.
                let top = self.derivation(kind, sys, def.fail_p, &[], name, None);
                self.nodes[top as usize].state = NState::Done;
                specs.push(Spec {
                    top,
                    job,
                    subst: Vec::new(),
                });
                continue;
            }
            let mut deps = Vec::new();
            if self.rng.random::<f64>() < def.dep_p {
                let want = 1 + poisson(&mut self.rng, 0.5) as usize;
                let target = (n as f64 * def.systems[sys as usize] / total_w * def.pool_ratio)
                    .ceil()
                    .max(1.0) as usize;
                for _ in 0..want {
                    let d = self.pool_pick(&mut pools, sys, target, def.fail_p);
                    if !deps.contains(&d) {
                        deps.push(d);
                    }
                }
            }
            for _ in 0..poisson(&mut self.rng, def.private_lambda) {
                let w = self.word();
                let v = self.version();
                let d = self.derivation(
                    Kind::Private,
                    sys,
                    def.fail_p / 3.0,
                    &[],
                    format!("{w}-src-{v}"),
                    None,
                );
                deps.push(d);
            }
            let mut subst = Vec::new();
            for _ in 0..poisson(&mut self.rng, def.subst_lambda) {
                let w = self.word();
                let v = self.version();
                let d = self.derivation(Kind::Subst, sys, 0.0, &[], format!("{w}-{v}"), None);
                deps.push(d);
                subst.push(d);
            }
            let top = self.derivation(kind, sys, def.fail_p, &deps, name, None);
            if kind == Kind::Test {
                tests.push(top);
            }
            specs.push(Spec { top, job, subst });
        }
        if def.aggregate && !tests.is_empty() {
            // The channel-blocking `tested` job depends on the evaluation's tests.
            let top = self.derivation(
                Kind::Aggregate,
                X86_LINUX,
                0.0,
                &tests,
                "tested".into(),
                None,
            );
            specs.push(Spec {
                top,
                job: "tested".into(),
                subst: Vec::new(),
            });
        }
        specs
    }

    /// A changed library of this evaluation, shared by the jobs that pick it; popular ones
    /// first (the square of a uniform favours low indices).
    fn pool_pick(&mut self, pools: &mut [Vec<u32>; 4], sys: u8, target: usize, fail_p: f64) -> u32 {
        let s = sys as usize;
        if pools[s].len() < target && (pools[s].is_empty() || self.rng.random::<f64>() < 0.5) {
            let mut deps = Vec::new();
            if !pools[s].is_empty() && self.rng.random::<f64>() < 0.3 {
                deps.push(pools[s][self.rng.random_range(0..pools[s].len())]);
            }
            let (_, name) = self.package_name();
            let d = self.derivation(Kind::Leaf, sys, fail_p / 2.0, &deps, name, None);
            pools[s].push(d);
            return d;
        }
        let u = self.rng.random::<f64>();
        let i = ((pools[s].len() as f64) * u * u) as usize;
        pools[s][i.min(pools[s].len() - 1)]
    }

    /// The mass rebuild: per system a bootstrap chain to stdenv, core libraries on top of it,
    /// and thousands of leaves needing stdenv and a few core libraries.
    fn mass_rebuild(&mut self, j: usize, n: usize) -> Vec<Spec> {
        let def = JOBSETS[j];
        let total_w: f64 = def.systems.iter().sum();
        let mut specs = Vec::with_capacity(n);
        for sys in 0..4u8 {
            let n_sys = self.scaled(n as f64 * def.systems[sys as usize] / total_w);
            if n_sys == 0 {
                continue;
            }
            let chain_def = if sys < 2 {
                CHAIN_NAMES_LINUX
            } else {
                CHAIN_NAMES_DARWIN
            };
            let mut prev: Option<u32> = None;
            let mut jobs = 0;
            for &(name, secs, is_job) in chain_def {
                let deps: Vec<u32> = prev.into_iter().collect();
                let d = self.derivation(
                    Kind::Chain,
                    sys,
                    0.0,
                    &deps,
                    name.to_string(),
                    Some(secs * 1000.0),
                );
                if is_job {
                    let job = format!("{}.{}", pname(name), SYSTEMS[sys as usize]);
                    specs.push(Spec {
                        top: d,
                        job,
                        subst: Vec::new(),
                    });
                    jobs += 1;
                }
                prev = Some(d);
            }
            let Some(stdenv) = prev else { continue };
            let n_core = ((n_sys as f64) * MASS_CORE_RATIO).round().max(3.0) as usize;
            let mut core: Vec<u32> = Vec::with_capacity(n_core);
            for _ in 0..n_core {
                let mut deps = vec![stdenv];
                if !core.is_empty() && self.rng.random::<f64>() < 0.6 {
                    let k = 1 + usize::from(self.rng.random::<f64>() < 0.4);
                    let lo = core.len().saturating_sub(40);
                    for _ in 0..k {
                        let d = core[self.rng.random_range(lo..core.len())];
                        if !deps.contains(&d) {
                            deps.push(d);
                        }
                    }
                }
                let (attr, name) = self.package_name();
                let d = self.derivation(Kind::Core, sys, CORE_FAIL_P, &deps, name, None);
                core.push(d);
                if self.rng.random::<f64>() < MASS_CORE_JOB_P {
                    let job = format!("{attr}.{}", SYSTEMS[sys as usize]);
                    specs.push(Spec {
                        top: d,
                        job,
                        subst: Vec::new(),
                    });
                    jobs += 1;
                }
            }
            for _ in jobs..n_sys {
                let mut deps = vec![stdenv];
                let k = 1 + poisson(&mut self.rng, MASS_LEAF_CORE_DEPS - 1.0) as usize;
                for _ in 0..k {
                    let u = self.rng.random::<f64>();
                    let i = ((core.len() as f64) * u * u * u) as usize;
                    let d = core[i.min(core.len() - 1)];
                    if !deps.contains(&d) {
                        deps.push(d);
                    }
                }
                for _ in 0..poisson(&mut self.rng, MASS_PRIVATE_LAMBDA) {
                    let w = self.word();
                    let v = self.version();
                    let d = self.derivation(
                        Kind::Private,
                        sys,
                        def.fail_p / 3.0,
                        &[stdenv],
                        format!("{w}-src-{v}"),
                        None,
                    );
                    deps.push(d);
                }
                let (attr, name) = self.package_name();
                let top = self.derivation(Kind::Leaf, sys, def.fail_p, &deps, name, None);
                let job = format!("{attr}.{}", SYSTEMS[sys as usize]);
                specs.push(Spec {
                    top,
                    job,
                    subst: Vec::new(),
                });
            }
        }
        specs
    }
}

/// The name without its version: `gcc-14.2.1` → `gcc`, `python3.13-foo-1.2` → `python3.13-foo`.
pub(super) fn pname(name: &str) -> &str {
    let mut end = name.len();
    for (i, _) in name.match_indices('-') {
        if name[i + 1..].starts_with(|c: char| c.is_ascii_digit()) {
            end = i;
            break;
        }
    }
    &name[..end]
}
