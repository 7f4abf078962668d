//! Recommendations: pure functions from the findings (and the codec measurements and the
//! simulation, when there are some) to ranked changes, each with what it is expected to save,
//! the evidence, and how far to trust it.
//!
//! Every saving is an [`Interval`]: the middle is the expected value, the ends carry the
//! assumptions each function states next to its constants. Savings are in slot-hours per month
//! and in money per month at the slot-hour prices of the machines where the loss fell. Two
//! recommendations drawing on the same lost time do not add; the report says so.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{BucketPrices, Capacity, CompressionSection, Interval, LedgerRow, Simulation, fmt};
use crate::analysis::Findings;
use crate::compress::project::{Costs, MONTH_HOURS};
use crate::dataset::Runner;
use crate::nix::BuildMachine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

impl std::fmt::Display for Confidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// 1 for the largest expected saving.
    pub rank: usize,
    /// Stable name (`right-size`, `codec`, …), for scripts and `--compare`.
    pub id: String,
    pub title: String,
    /// What to do.
    pub action: String,
    /// The waterfall bucket it recovers.
    pub bucket: String,
    pub saving_slot_hours_per_month: Interval,
    pub saving_per_month: Interval,
    pub evidence: Vec<String>,
    pub confidence: Confidence,
    /// Why that confidence.
    pub confidence_basis: String,
}

/// What the recommendations are computed from.
pub struct Context<'a> {
    pub findings: &'a Findings,
    pub capacity: &'a Capacity,
    pub prices: &'a BucketPrices,
    /// Multiplies a figure of the window into one per month.
    pub month: f64,
    pub costs: &'a Costs,
    pub compression: Option<&'a CompressionSection>,
    pub simulation: Option<&'a Simulation>,
    pub machines: Option<&'a [BuildMachine]>,
}

/// Every recommendation with a positive expected saving, largest first.
pub fn all(ctx: &Context<'_>) -> Vec<Recommendation> {
    let mut v: Vec<Recommendation> = [
        right_size(ctx),
        dispatch(ctx),
        held(ctx),
        codec(ctx),
        repeated_work(ctx),
        timeouts(ctx),
        failures(ctx),
    ]
    .into_iter()
    .flatten()
    .chain(scenarios(ctx))
    // An interval whose lower end is 0 still stands (ranked by its middle, so below every
    // measured saving).
    .filter(|r| r.saving_per_month.hi > 0.0 || r.saving_slot_hours_per_month.hi > 0.0)
    .map(serialised)
    .collect();
    v.sort_by(|a, b| {
        b.saving_per_month
            .mid
            .total_cmp(&a.saving_per_month.mid)
            .then_with(|| a.id.cmp(&b.id))
    });
    for (i, r) in v.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    v
}

/// The savings as `report.json` holds them: full precision, never NaN (see
/// [`crate::interval::finite`]).
fn serialised(mut r: Recommendation) -> Recommendation {
    r.saving_per_month = r.saving_per_month.finite();
    r.saving_slot_hours_per_month = r.saving_slot_hours_per_month.finite();
    r
}

fn money(ctx: &Context<'_>, x: f64) -> String {
    fmt::money(x, &ctx.prices.currency)
}

/// A bucket's slot-hours per month recovered in the shares of `share`, and their money.
fn recovered(hours_window: f64, price: f64, month: f64, share: Interval) -> (Interval, Interval) {
    let h = share.scale(hours_window * month);
    (h, h.scale(price))
}

/// The busiest bucket of demand is covered with this margin: bucket averages hide the peaks
/// inside a bucket, and a farm run at 100 % queues every burst; a quarter more keeps the
/// busiest bucket's queue short.
const HEADROOM: f64 = 1.25;
/// Sizing to all but the busiest 5 % of the window (about 8 hours of a week) is the aggressive
/// end: those hours — a mass rebuild — then need capacity bought by the hour.
const DEMAND_QUANTILE: f64 = 0.95;
/// Capacity rented by the hour for those busiest hours is assumed to cost three times the
/// hourly share of a monthly rent: on-demand cloud prices against dedicated servers rented by
/// the month. An assumption, stated in the report.
const BURST_PRICE_FACTOR: f64 = 3.0;

/// Machines of one system type that are not needed: the rent of the builders the demand never
/// used (low end: even the busiest bucket is covered; high end: all but the busiest 5 %).
fn right_size(ctx: &Context<'_>) -> Option<Recommendation> {
    let by_machine = &ctx.findings.utilization.by_machine;
    let bucket_h = by_machine.resolution_s as f64 / 3600.0;
    let (mut lo, mut mid, mut hi) = (0.0, 0.0, 0.0);
    let (mut slot_lo, mut slot_mid, mut slot_hi) = (0.0, 0.0, 0.0);
    let mut evidence = Vec::new();
    for g in &ctx.capacity.by_system {
        let members: Vec<&LedgerRow> = ctx
            .capacity
            .machines
            .iter()
            .filter(|m| m.system == g.key)
            .collect();
        if members.len() < 2 || g.building_h <= 0.0 {
            continue;
        }
        let mut demand = vec![0.0; by_machine.buckets];
        for m in &members {
            if let Some(s) = super::series_for(&by_machine.series, &m.key) {
                for (d, x) in demand.iter_mut().zip(s) {
                    *d += x;
                }
            }
        }
        // Building concurrency understates what a slot is reserved for: scale by the group's
        // (building + overhead + held) ÷ building.
        let scale = (g.building_h + g.overhead_h + g.held_h) / g.building_h;
        let mut need: Vec<f64> = demand.iter().map(|d| d * scale).collect();
        need.sort_by(f64::total_cmp);
        let peak = need.last().copied().unwrap_or(0.0);
        let q = need
            .get(((need.len() as f64 * DEMAND_QUANTILE).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0);
        let need_peak = (peak * HEADROOM).ceil().max(1.0) as u32;
        let need_q = (q * HEADROOM).ceil().max(1.0) as u32;
        let (gone_peak, _) = retire(&members, need_peak, ctx.machines);
        let (gone_q, left_q) = retire(&members, need_q, ctx.machines);
        if gone_q.is_empty() {
            continue;
        }
        let rent = |gone: &[&LedgerRow]| -> f64 {
            gone.iter()
                .map(|m| ctx.costs.machine_month_for(&m.system))
                .sum()
        };
        let slots = |gone: &[&LedgerRow]| -> f64 {
            gone.iter().map(|m| f64::from(m.slots) * MONTH_HOURS).sum()
        };
        // The busiest hours above the smaller farm, bought back by the hour at the price the
        // retired machines' slot-hours had.
        let short_h: f64 = demand
            .iter()
            .map(|d| (d * scale - f64::from(left_q)).max(0.0) * bucket_h)
            .sum();
        let gone_slots: u32 = gone_q.iter().map(|m| m.slots).sum();
        let burst_price =
            BURST_PRICE_FACTOR * rent(&gone_q) / (MONTH_HOURS * f64::from(gone_slots.max(1)));
        let burst = short_h * ctx.month * burst_price;
        lo += rent(&gone_peak);
        hi += rent(&gone_q);
        mid += (rent(&gone_q) - burst).max(rent(&gone_peak));
        slot_lo += slots(&gone_peak);
        slot_hi += slots(&gone_q);
        slot_mid += (slots(&gone_q) - short_h * ctx.month).max(slots(&gone_peak));
        evidence.push(format!(
            "{}: {} slots on {} machines; the busiest {} needed {} slots, 95 % of the window \
             needed at most {} (building concurrency × {:.2} for overhead and held time, with \
             {:.0} % headroom); retire {} ({} slots){}",
            g.key,
            g.slots,
            members.len(),
            fmt::secs(by_machine.resolution_s as f64),
            need_peak,
            need_q,
            scale,
            (HEADROOM - 1.0) * 100.0,
            names(&gone_q, &ctx.capacity.machines),
            gone_slots,
            if short_h > 0.0 {
                format!(
                    ", renting {} slot-hours a month of burst capacity for the busiest hours (at \
                     {BURST_PRICE_FACTOR}× the slot-hour price: {})",
                    fmt::int(short_h * ctx.month),
                    money(ctx, burst)
                )
            } else {
                String::new()
            }
        ));
    }
    if hi <= 0.0 {
        return None;
    }
    if ctx.machines.is_none() {
        evidence.push(
            "no machines file: machines with features only they have (kvm, big-parallel) are \
             not protected from this list; give --machines"
                .into(),
        );
    }
    let (confidence, basis) = if lo >= hi {
        (
            Confidence::Medium,
            "the retired machines were not needed even in the busiest bucket; measured \
             utilization, but bucket averages hide short peaks"
                .to_string(),
        )
    } else {
        (
            Confidence::Low,
            "how much longer builds wait in the busiest hours with fewer machines is not \
             measured here; the simulation answers it"
                .to_string(),
        )
    };
    Some(Recommendation {
        rank: 0,
        id: "right-size".into(),
        title: "Fewer always-on builders, burst capacity for the busiest hours".into(),
        action: "Retire (or power off outside mass rebuilds) the builders listed, smallest first; \
                 cover the busiest hours with capacity rented by the hour."
            .into(),
        bucket: "idle".into(),
        saving_slot_hours_per_month: Interval {
            lo: slot_lo,
            mid: slot_mid,
            hi: slot_hi,
        },
        saving_per_month: Interval { lo, mid, hi },
        evidence,
        confidence,
        confidence_basis: basis,
    })
}

/// The short names (as on the heatmap) of `ms` among `all`.
fn names(ms: &[&LedgerRow], all: &[LedgerRow]) -> String {
    let short = super::short_names(all.iter().map(|m| m.key.as_str()));
    let labels: Vec<String> = ms
        .iter()
        .filter_map(|m| {
            all.iter()
                .position(|a| a.key == m.key)
                .map(|i| short[i].clone())
        })
        .collect();
    if labels.len() <= 6 {
        labels.join(", ")
    } else {
        format!("{} and {} more", labels[..5].join(", "), labels.len() - 5)
    }
}

/// Machines to retire so that at least `need` slots remain: the smallest first (rent is per
/// machine, so a small one saves the most per slot given up), never the last machine, and never
/// one that alone supports a feature. Returns the retired and the slots left.
fn retire<'a>(
    members: &[&'a LedgerRow],
    need: u32,
    machines: Option<&[BuildMachine]>,
) -> (Vec<&'a LedgerRow>, u32) {
    let mut order: Vec<&LedgerRow> = members.to_vec();
    order.sort_by(|a, b| a.slots.cmp(&b.slots).then_with(|| b.key.cmp(&a.key)));
    // Each member's features, found once (by URI, else by host): a farm has thousands of
    // machines, and looking every other member's up again for each candidate was cubic in
    // them (minutes of `report` over a large farm).
    let by_uri: HashMap<&str, &BuildMachine> = machines
        .unwrap_or_default()
        .iter()
        .map(|m| (m.uri.as_str(), m))
        .collect();
    let mut by_host: HashMap<&str, &BuildMachine> = HashMap::new();
    for m in machines.unwrap_or_default() {
        by_host
            .entry(crate::nix::machines::host_of(&m.uri))
            .or_insert(m);
    }
    // Each member's distinct features.
    let features: Vec<Vec<&str>> = order
        .iter()
        .map(|o| {
            let mut own: Vec<&str> = by_uri
                .get(o.key.as_str())
                .or_else(|| by_host.get(crate::nix::machines::host_of(&o.key)))
                .map_or(&[][..], |m| m.supported_features.as_slice())
                .iter()
                .map(String::as_str)
                .collect();
            own.sort_unstable();
            own.dedup();
            own
        })
        .collect();
    // How many members still in service support each feature.
    let mut supporting: HashMap<&str, usize> = HashMap::new();
    for &x in features.iter().flatten() {
        *supporting.entry(x).or_default() += 1;
    }
    let mut left = order.len();
    let mut gone = Vec::new();
    let mut slots: u32 = order.iter().map(|m| m.slots).sum();
    for (m, f) in order.into_iter().zip(features) {
        if left <= 1 || slots.saturating_sub(m.slots) < need {
            continue;
        }
        // Never the only member left that supports one of its features.
        if f.iter()
            .any(|x| supporting.get(x).copied().unwrap_or(0) <= 1)
        {
            continue;
        }
        for x in f {
            if let Some(n) = supporting.get_mut(x) {
                *n -= 1;
            }
        }
        left -= 1;
        slots -= m.slots;
        gone.push(m);
    }
    (gone, slots)
}

/// Of the dispatch loss, what a dispatcher change recovers. The bucket is an upper bound — the
/// dependency estimate cannot see dependencies across builds, so some steps counted as runnable
/// were not — and the real part is recovered only as far as the change reaches it. Until the
/// simulation prices it: half, between a quarter and all.
const DISPATCH_RECOVERABLE: Interval = Interval {
    lo: 0.25,
    mid: 0.5,
    hi: 1.0,
};

fn dispatch(ctx: &Context<'_>) -> Option<Recommendation> {
    let t = &ctx.capacity.total;
    // Where the ledger has an interval, the saving spans from the recoverable share of its lower
    // end to all of its upper end, and the recommendation ranks by the lower end.
    let low = t.dispatch_loss_h;
    let high = t.dispatch_loss_high_h.unwrap_or(low).max(low);
    if high <= 0.0 {
        return None;
    }
    let (h, m) = if high > low {
        let h = Interval {
            lo: low * ctx.month * DISPATCH_RECOVERABLE.lo,
            mid: low * ctx.month * DISPATCH_RECOVERABLE.mid,
            hi: high * ctx.month * DISPATCH_RECOVERABLE.hi,
        };
        (h, h.scale(ctx.prices.dispatch_loss))
    } else {
        recovered(
            low,
            ctx.prices.dispatch_loss,
            ctx.month,
            DISPATCH_RECOVERABLE,
        )
    };
    let mut worst: Vec<&LedgerRow> = ctx.capacity.by_system.iter().collect();
    worst.sort_by(|a, b| {
        b.dispatch_loss_h
            .total_cmp(&a.dispatch_loss_h)
            .then(a.key.cmp(&b.key))
    });
    let mut evidence = vec![format!(
        "{} of {} slot-hours ({}) sat idle while steps the machine could build were runnable, \
         worth {} a month",
        if high > low {
            format!("between {} and {}", fmt::int(low), fmt::int(high))
        } else {
            fmt::int(low)
        },
        fmt::int(t.available_h),
        fmt::pct(super::pct_of(t.dispatch_loss_h, t.available_h)),
        money(ctx, high * ctx.prices.dispatch_loss * ctx.month)
    )];
    evidence.push(format!("source: {}", ctx.capacity.dispatch_basis));
    evidence.extend(
        worst
            .iter()
            .take(2)
            .filter(|r| r.dispatch_loss_h > 0.0)
            .map(|r| {
                format!(
                    "{}: {} ({} of its slot time)",
                    r.key,
                    fmt::hours(r.dispatch_loss_h),
                    fmt::pct(super::pct_of(r.dispatch_loss_h, r.available_h))
                )
            }),
    );
    let graph = matches!(
        ctx.findings.runnable_basis,
        crate::analysis::RunnableBasis::Graph { .. }
    );
    if graph {
        evidence.push(format!(
            "'runnable' rests on {}",
            ctx.findings.runnable_basis.describe()
        ));
    } else if let Some(a) = ctx.findings.dependencies.accuracy {
        evidence.push(format!(
            "the dependency estimate behind 'runnable' finds {:.0} % of the true dependencies \
             ({:.0} % within a build) on the sample: steps waiting on another build's step look \
             runnable too early",
            a.recall * 100.0,
            a.recall_same_build * 100.0
        ));
    }
    let action = match ctx.findings.runner {
        Runner::Cpp => {
            "Find why runnable steps wait while slots are free: required features no idle \
             machine has, the per-machine send lock (one step sends at a time), or the \
             dispatcher's wake-ups. The Rust queue runner's dispatcher (step sort \
             WithCriticalPath) is the structural fix."
        }
        // With a series of `/status` the held-back machines are the throttled bucket, not
        // this one; without, they may be part of it.
        Runner::Rust if crate::analysis::ledger::is_measured(&ctx.capacity.throttled_basis) => {
            "Find why runnable steps wait while slots are free: required features no idle \
             machine has, or the dispatcher's wake-ups (a builder whose load or pressure fell \
             waits for the next event or for dispatchTriggerTimerInS, 120 s by default; the \
             simulation's dispatch_timer_s scenario prices a shorter one)."
        }
        Runner::Rust => {
            "Find why runnable steps wait while slots are free: required features no idle \
             machine has, machines the free function held back for their load or pressure (a \
             series of the runner's /status, status --watch, tells them apart), or the \
             dispatcher's wake-ups (dispatchTriggerTimerInS, 120 s by default)."
        }
    };
    Some(Recommendation {
        rank: 0,
        id: "dispatch".into(),
        title: "Keep slots busy while work is runnable".into(),
        action: action.into(),
        bucket: "dispatch_loss".into(),
        saving_slot_hours_per_month: h,
        saving_per_month: m,
        evidence,
        confidence: Confidence::Low,
        confidence_basis: if crate::analysis::ledger::is_measured(&ctx.capacity.dispatch_basis) {
            "the loss is measured (the runner's series with the derivation graph), but how \
             much a dispatcher change recovers is assumed"
                .to_string()
        } else {
            format!(
                "'runnable' rests on {}, and how much a dispatcher change recovers is assumed, \
                 not measured",
                if graph {
                    "the derivation graph"
                } else {
                    "the estimated dependencies"
                }
            )
        },
    })
}

/// Of the held time, what releasing the slot recovers: the wait for a local worker slot goes
/// entirely when the builder slot is released at the end of the build (the Rust runner) or
/// worker slots are added; the send-lock wait only shrinks as sending gets faster. The database
/// does not split the two: three quarters, between half and all.
const HELD_RECOVERABLE: Interval = Interval {
    lo: 0.5,
    mid: 0.75,
    hi: 1.0,
};

fn held(ctx: &Context<'_>) -> Option<Recommendation> {
    let t = &ctx.capacity.total;
    if t.held_h <= 0.0 {
        return None;
    }
    let (h, m) = recovered(t.held_h, ctx.prices.held, ctx.month, HELD_RECOVERABLE);
    Some(Recommendation {
        rank: 0,
        id: "held".into(),
        title: "Release builder slots when the build ends".into(),
        action: "Stop builder slots waiting for the queue runner: under the C++ runner raise \
                 max_local_worker_threads so finished builds need not wait for a local slot to \
                 copy their outputs; the Rust runner releases the slot and lets builders upload \
                 themselves."
            .into(),
        bucket: "held".into(),
        saving_slot_hours_per_month: h,
        saving_per_month: m,
        evidence: vec![format!(
            "{} of slot time ({}) was held by steps waiting for the send lock or a local worker \
             slot; source: {}",
            fmt::hours(t.held_h),
            fmt::pct(super::pct_of(t.held_h, t.available_h)),
            ctx.capacity.held_basis
        )],
        confidence: Confidence::High,
        confidence_basis: "held time is measured, not inferred".into(),
    })
}

/// The fit's size-proportional overhead bundles copying and compressing; the share that is
/// compressing is `implied speed ÷ the codec's speed`. The low end halves it: the codec may
/// run slower on the queue-runner host than where it was measured.
const COMPRESSION_SHARE_LOW: f64 = 0.5;

fn codec(ctx: &Context<'_>) -> Option<Recommendation> {
    let c = ctx.compression?;
    let fit = ctx.findings.overhead.fit?;
    let implied = fit.implied_mb_per_s?;
    let cur = c.codecs.iter().find(|k| k.codec == c.current_codec)?;
    if cur.compress_mb_s_core <= 0.0 {
        return None;
    }
    let cur_cost = c
        .projections
        .iter()
        .find(|p| p.codec == c.current_codec)?
        .farm_cost_per_month;
    let share = (implied / cur.compress_mb_s_core).min(1.0);
    let size_h = ctx.capacity.total.overhead_h * fit.size_share.clamp(0.0, 1.0);
    let price = ctx.prices.overhead;
    let mut best: Option<(f64, Recommendation)> = None;
    for k in c.codecs.iter().filter(|k| k.codec != c.current_codec) {
        if k.compress_mb_s_core <= cur.compress_mb_s_core {
            continue;
        }
        let Some(p) = c.projections.iter().find(|p| p.codec == k.codec) else {
            continue;
        };
        let faster = 1.0 - cur.compress_mb_s_core / k.compress_mb_s_core;
        let hours = |s: f64| size_h * s * faster * ctx.month;
        let farm = cur_cost - p.farm_cost_per_month;
        let h = Interval {
            lo: hours(share * COMPRESSION_SHARE_LOW),
            mid: hours(share),
            hi: hours(1.0),
        };
        let m = Interval {
            lo: h.lo * price + farm,
            mid: h.mid * price + farm,
            hi: h.hi * price + farm,
        };
        if best.as_ref().is_some_and(|(b, _)| *b >= m.mid) {
            continue;
        }
        let cur_p = c.projections.iter().find(|p| p.codec == c.current_codec);
        let evidence = vec![
            format!(
                "overhead grows by {} ms per MiB of output (Theil–Sen fit over {} steps): \
                 {:.2} MB/s, {} of the overhead, {} of slot time in the window",
                fmt::num(fit.ms_per_mib, 0),
                fmt::int(fit.points as f64),
                implied,
                fmt::pct(fit.size_share * 100.0),
                fmt::hours(size_h)
            ),
            format!(
                "{} compresses {:.2} MB/s per core here, so compressing is about {} of that \
                 size-proportional part; {} compresses {} MB/s ({} ratio vs {})",
                cur.codec,
                cur.compress_mb_s_core,
                fmt::pct(share * 100.0),
                k.codec,
                fmt::num(k.compress_mb_s_core, 1),
                fmt::pct(k.ratio_pct),
                fmt::pct(cur.ratio_pct)
            ),
            format!(
                "at the farm's output volume ({} GB/day): {} needs {} cores in the busiest hour, \
                 {} needs {}; compression CPU and storage cost {} vs {} a month",
                fmt::num(c.volume.gb_per_day, 1),
                cur.codec,
                cur_p.map_or("?".into(), |p| fmt::num(p.peak_hour_cores, 1)),
                k.codec,
                fmt::num(p.peak_hour_cores, 2),
                money(ctx, cur_cost),
                money(ctx, p.farm_cost_per_month)
            ),
        ];
        let rec = Recommendation {
            rank: 0,
            id: "codec".into(),
            title: format!(
                "Compress the cache with {} instead of {}",
                k.codec, cur.codec
            ),
            action: format!(
                "Set the binary cache's compression to {} (`compression={}&compression-level={}` \
                 in the store URI): builder slots stop waiting on {} ({}). Clients pay in \
                 download size: {} vs {} of the NAR.",
                k.codec,
                k.codec.split('-').next().unwrap_or("zstd"),
                k.codec.split('-').nth(1).unwrap_or("3"),
                cur.codec,
                c.compressed_where,
                fmt::pct(k.ratio_pct),
                fmt::pct(cur.ratio_pct)
            ),
            bucket: "overhead".into(),
            saving_slot_hours_per_month: h,
            saving_per_month: m,
            evidence,
            confidence: Confidence::Medium,
            confidence_basis: format!(
                "the compression share of overhead is inferred from the fit's slope and a speed \
                 measured on {}, not where the cache's NARs are compressed",
                if c.default_corpus {
                    "a local corpus"
                } else {
                    "the given NARs"
                }
            ),
        };
        best = Some((m.mid, rec));
    }
    best.map(|(_, r)| r)
}

fn category_hours(f: &Findings, names: &[&str]) -> (f64, usize) {
    f.waste
        .categories
        .iter()
        .filter(|c| names.contains(&c.name))
        .fold((0.0, 0), |(h, n), c| (h + c.slot_hours, n + c.steps))
}

/// Rebuilding what was built is avoidable; some rebuilds are deliberate (a restart after an
/// infrastructure failure), so the low end is half.
const REPEATED_RECOVERABLE: Interval = Interval {
    lo: 0.5,
    mid: 1.0,
    hi: 1.0,
};

fn repeated_work(ctx: &Context<'_>) -> Option<Recommendation> {
    let f = ctx.findings;
    let (h, n) = category_hours(f, &["rebuilt", "determinism rounds"]);
    if h <= 0.0 {
        return None;
    }
    let (sh, sm) = recovered(h, ctx.prices.building, ctx.month, REPEATED_RECOVERABLE);
    let mut evidence = vec![format!(
        "{} steps rebuilt a derivation already built in the window or repeated a determinism \
         check: {} of slot time",
        fmt::int(n as f64),
        fmt::hours(h)
    )];
    evidence.extend(
        f.waste
            .most_rebuilt
            .iter()
            .take(3)
            .map(|(d, n, h)| format!("{d}: built {n} times, {}", fmt::hours(*h))),
    );
    Some(Recommendation {
        rank: 0,
        id: "repeated-work".into(),
        title: "Stop building the same derivation twice".into(),
        action: "Keep built outputs until they are in the cache (garbage collection between \
                 build and upload forces rebuilds), and run determinism checks (`repeat`) only \
                 on the jobs that need them."
            .into(),
        bucket: "waste".into(),
        saving_slot_hours_per_month: sh,
        saving_per_month: sm,
        evidence,
        confidence: Confidence::High,
        confidence_basis: "measured from drvPath and timesBuilt".into(),
    })
}

/// A timed-out step produced nothing; lowering timeout and maxSilent for the jobs that time
/// out recovers the time they hang. If they hang rather than run slowly, about half, between a
/// quarter and three quarters.
const TIMEOUT_RECOVERABLE: Interval = Interval {
    lo: 0.25,
    mid: 0.5,
    hi: 0.75,
};

fn timeouts(ctx: &Context<'_>) -> Option<Recommendation> {
    let (h, n) = category_hours(ctx.findings, &["timed out"]);
    if h <= 0.0 {
        return None;
    }
    let (sh, sm) = recovered(h, ctx.prices.building, ctx.month, TIMEOUT_RECOVERABLE);
    Some(Recommendation {
        rank: 0,
        id: "timeouts".into(),
        title: "Cut hung builds short".into(),
        action: "Lower meta.timeout and meta.maxSilent for the jobs that time out, or fix them; \
                 each time-out holds a slot for the whole limit."
            .into(),
        bucket: "waste".into(),
        saving_slot_hours_per_month: sh,
        saving_per_month: sm,
        evidence: vec![format!(
            "{} steps timed out after {} of slot time in all ({} each on average)",
            fmt::int(n as f64),
            fmt::hours(h),
            fmt::secs(h * 3600.0 / n.max(1) as f64)
        )],
        confidence: Confidence::Medium,
        confidence_basis: "the time-outs are measured; how much earlier they could stop is assumed"
            .into(),
    })
}

/// CI exists to fail builds: only repeated failures of the same broken job, and work aborted or
/// cancelled after it ran, are avoidable. A quarter, between a tenth and a half.
const FAILURE_RECOVERABLE: Interval = Interval {
    lo: 0.1,
    mid: 0.25,
    hi: 0.5,
};

fn failures(ctx: &Context<'_>) -> Option<Recommendation> {
    let names = [
        "failed",
        "over a limit",
        "not deterministic",
        "aborted",
        "cancelled",
    ];
    let (h, n) = category_hours(ctx.findings, &names);
    if h <= 0.0 {
        return None;
    }
    let (sh, sm) = recovered(h, ctx.prices.building, ctx.month, FAILURE_RECOVERABLE);
    let mut evidence = vec![format!(
        "{} steps failed, were aborted or cancelled after {} of slot time",
        fmt::int(n as f64),
        fmt::hours(h)
    )];
    evidence.extend(ctx.findings.waste.by_jobset.iter().take(3).map(|o| {
        format!(
            "jobset {}: {} wasted in {} steps",
            o.jobset,
            fmt::hours(o.slot_hours),
            o.steps
        )
    }));
    Some(Recommendation {
        rank: 0,
        id: "failures".into(),
        title: "Fix or disable the jobs that keep failing".into(),
        action: "Mark jobs broken upstream as such (meta.broken) or drop them from the jobset, \
                 and cancel superseded evaluations before they build."
            .into(),
        bucket: "waste".into(),
        saving_slot_hours_per_month: sh,
        saving_per_month: sm,
        evidence,
        confidence: Confidence::Low,
        confidence_basis: "which failures are avoidable is assumed, not measured".into(),
    })
}

/// The simulated scenarios that cost less than the baseline (the first).
fn scenarios(ctx: &Context<'_>) -> Vec<Recommendation> {
    let Some(sim) = ctx.simulation else {
        return Vec::new();
    };
    let Some(base) = sim.scenarios.first() else {
        return Vec::new();
    };
    let Some(bc) = base.cost_per_month else {
        return Vec::new();
    };
    // Money back into slot-hours at the farm's average slot-hour price.
    let price = ctx.prices.available;
    sim.scenarios
        .iter()
        .skip(1)
        .filter_map(|s| {
            let c = s.cost_per_month?;
            let m = Interval {
                lo: (bc.lo - c.hi).min(bc.mid - c.mid),
                mid: bc.mid - c.mid,
                hi: (bc.hi - c.lo).max(bc.mid - c.mid),
            };
            if m.mid <= 0.0 {
                return None;
            }
            let h = if price > 0.0 {
                m.scale(1.0 / price)
            } else {
                Interval::default()
            };
            Some(Recommendation {
                rank: 0,
                id: format!("scenario:{}", s.name),
                title: format!("Scenario “{}” (simulated)", s.name),
                action: format!(
                    "Apply the change the “{}” scenario models; the simulation puts builds per day \
                     at {} (baseline {}) and the p90 wait at {} (baseline {}).",
                    s.name,
                    fmt::num(s.builds_per_day.mid, 0),
                    fmt::num(base.builds_per_day.mid, 0),
                    fmt::secs(s.wait_p90_s.mid),
                    fmt::secs(base.wait_p90_s.mid)
                ),
                bucket: "simulated".into(),
                saving_slot_hours_per_month: h,
                saving_per_month: m,
                evidence: sim.verdict.clone(),
                confidence: Confidence::Medium,
                confidence_basis: "modelled: the simulation's calibration table says how well the \
                                   model reproduces the history"
                    .into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, slots: u32) -> LedgerRow {
        LedgerRow {
            key: key.into(),
            system: "x86_64-linux".into(),
            slots,
            available_h: 0.0,
            building_h: 0.0,
            overhead_h: 0.0,
            held_h: 0.0,
            throttled_h: 0.0,
            dispatch_loss_h: 0.0,
            dispatch_loss_high_h: None,
            idle_h: 0.0,
            over_committed_h: 0.0,
            busy_pct: 0.0,
            cost_per_month: 0.0,
        }
    }

    fn machine(uri: &str, features: &[&str]) -> BuildMachine {
        BuildMachine {
            uri: uri.into(),
            systems: vec!["x86_64-linux".into()],
            ssh_key: None,
            max_jobs: 2,
            speed_factor: 1.0,
            supported_features: features.iter().map(|f| f.to_string()).collect(),
            mandatory_features: Vec::new(),
        }
    }

    #[test]
    fn retires_the_smallest_machines_down_to_the_need_keeping_unique_features() {
        let (a, b, c) = (row("ssh://a", 2), row("ssh://b", 2), row("ssh://c", 8));
        let members = [&a, &b, &c];
        let (gone, left) = retire(&members, 9, None);
        assert_eq!(gone.len(), 1);
        assert_eq!(left, 10);
        // Never the last machine, however little is needed.
        let (gone, left) = retire(&members, 1, None);
        assert_eq!((gone.len(), left), (2, 8));
        // b alone has kvm: it stays.
        let ms = [
            machine("ssh://a", &[]),
            machine("ssh://b", &["kvm"]),
            machine("ssh://c", &[]),
        ];
        let (gone, _) = retire(&members, 1, Some(&ms));
        assert!(gone.iter().all(|m| m.key != "ssh://b"), "{gone:?}");
    }

    #[test]
    fn recovered_scales_hours_to_a_month_and_prices_them() {
        let (h, m) = recovered(
            10.0,
            0.5,
            4.0,
            Interval {
                lo: 0.5,
                mid: 1.0,
                hi: 1.0,
            },
        );
        assert_eq!((h.lo, h.mid), (20.0, 40.0));
        assert_eq!(m.mid, 20.0);
    }
}
