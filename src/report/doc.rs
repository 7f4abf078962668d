//! The report's layout, once: a list of blocks (headings, paragraphs, tables, charts) that
//! [`super::markdown`] and [`super::html`] both render, so the two say exactly the same.

use super::fmt::{self, hours, int, money, num, pct, secs};
use super::{Interval, Report, WaitRow};

#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    Text(String),
    Strong(String),
    Code(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// The report's title (the first line: it names the source, and says when it is the sample).
    Title(String),
    Heading {
        level: u8,
        id: String,
        text: String,
    },
    Para(Vec<Inline>),
    List(Vec<Vec<Inline>>),
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
        /// Columns to right-align (numbers).
        numeric: Vec<bool>,
    },
    Chart {
        name: String,
        title: String,
        alt: String,
    },
    /// The end of the executive summary (the HTML closes its summary box here).
    EndSummary,
}

fn plain(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

fn strong(s: impl Into<String>) -> Inline {
    Inline::Strong(s.into())
}

fn para(parts: Vec<Inline>) -> Block {
    Block::Para(parts)
}

fn text(s: impl Into<String>) -> Block {
    Block::Para(vec![plain(s)])
}

fn heading(level: u8, id: &str, s: &str) -> Block {
    Block::Heading {
        level,
        id: id.into(),
        text: s.into(),
    }
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> Block {
    // A column is numeric when every non-empty cell starts like a number.
    let numeric = (0..header.len())
        .map(|i| {
            i > 0
                && rows.iter().all(|r| {
                    r.get(i).is_none_or(|c| {
                        c.is_empty()
                            || c.starts_with(|ch: char| {
                                ch.is_ascii_digit() || ch == '-' || ch == '+' || ch == '−'
                            })
                    })
                })
        })
        .collect();
    Block::Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        rows,
        numeric,
    }
}

fn chart(r: &Report, name: &str) -> Option<Block> {
    r.charts
        .iter()
        .find(|c| c.name == name)
        .map(|c| Block::Chart {
            name: c.name.clone(),
            title: c.title.clone(),
            alt: c.alt.clone(),
        })
}

/// `lo–hi` around the middle value, in money.
pub fn range(i: Interval, cur: &str) -> String {
    format!("{} {cur} ({}–{})", int(i.mid), int(i.lo), int(i.hi))
}

/// The report's title line.
pub fn title(r: &Report) -> String {
    if r.source.is_sample {
        "Where builder capacity is lost — on the BUILT-IN SAMPLE workload, not a real Hydra"
            .to_string()
    } else {
        format!("Where builder capacity is lost — {}", r.source.origin)
    }
}

pub fn layout(r: &Report) -> Vec<Block> {
    let mut v = vec![Block::Title(title(r))];
    summary(r, &mut v);
    v.push(Block::EndSummary);
    utilization(r, &mut v);
    waiting(r, &mut v);
    overhead(r, &mut v);
    waste(r, &mut v);
    compression(r, &mut v);
    simulation(r, &mut v);
    quality(r, &mut v);
    method(r, &mut v);
    v
}

fn summary(r: &Report, v: &mut Vec<Block>) {
    let cur = r.costs.currency.as_str();
    let c = &r.capacity;
    let machines = c.machines.len();
    if let Some(note) = &r.window.note {
        v.push(para(vec![
            strong("Window narrowed: "),
            plain(format!("{note}.")),
        ]));
    }
    v.push(para(vec![
        plain(format!(
            "Source: {}. Window {} – {} ({} days), queue runner {}, {} machines with {} slots. ",
            r.source.origin,
            r.window.since_utc,
            r.window.until_utc,
            num(r.window.days, 1),
            r.source.runner,
            machines,
            c.total.slots
        )),
        plain("Money figures are "),
        strong("estimates"),
        plain(format!(
            " from the cost file's prices (a builder machine at {} a month unless the cost file \
             says otherwise), scaled to a month of 730 hours.",
            money(r.costs.machine_month, cur)
        )),
    ]));
    v.push(heading(2, "summary", "Summary"));
    let step = |k: &str| r.waterfall.iter().find(|w| w.key == k);
    if let (Some(avail), Some(build)) = (step("available"), step("building")) {
        let biggest = r
            .waterfall
            .iter()
            .filter(|w| !matches!(w.key.as_str(), "available" | "building"))
            .max_by(|a, b| a.slot_hours.total_cmp(&b.slot_hours));
        let mut parts = vec![
            plain(format!(
                "Of {} slot-hours a month ({} a month), ",
                int(avail.slot_hours_per_month),
                money(avail.cost_per_month, cur)
            )),
            strong(format!("{} built useful work", pct(build.share_pct))),
            plain(". "),
        ];
        if let Some(w) = biggest {
            parts.push(plain("The largest loss is "));
            parts.push(strong(format!(
                "{}: {} ({} a month)",
                w.label,
                pct(w.share_pct),
                money(w.cost_per_month, cur)
            )));
            parts.push(plain(". "));
        }
        match r.recommendations.first() {
            Some(top) => {
                parts.push(plain("The change that buys the most: "));
                parts.push(strong(top.title.clone()));
                parts.push(plain(format!(
                    ", expected to save {} a month (confidence {}).",
                    range(top.saving_per_month, cur),
                    top.confidence
                )));
            }
            None => parts.push(plain(
                "No change with a positive expected saving was found.",
            )),
        }
        v.push(para(parts));
    }
    v.push(heading(
        3,
        "recommendations",
        "Recommendations, by expected saving",
    ));
    if r.recommendations.is_empty() {
        v.push(text(
            "None: no loss with a change that recovers it was found.",
        ));
        waterfall(r, v);
    } else {
        v.push(table(
            &[
                "#",
                "change",
                &format!("saving/month ({cur}, low–high)"),
                "slot-hours/month",
                "confidence",
            ],
            r.recommendations
                .iter()
                .map(|x| {
                    vec![
                        x.rank.to_string(),
                        x.title.clone(),
                        range(x.saving_per_month, cur),
                        int(x.saving_slot_hours_per_month.mid),
                        x.confidence.to_string(),
                    ]
                })
                .collect(),
        ));
        waterfall(r, v);
        v.push(heading(3, "evidence", "What each recommendation rests on"));
        for x in &r.recommendations {
            v.push(heading(
                4,
                &format!(
                    "rec-{}",
                    x.id.chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                        .collect::<String>()
                ),
                &format!("{}. {}", x.rank, x.title),
            ));
            v.push(para(vec![
                strong("Do:"),
                plain(format!(" {} ", x.action)),
                strong("Saves:"),
                plain(format!(
                    " {} a month, {} slot-hours a month (expected; range {}–{} {cur}). ",
                    money(x.saving_per_month.mid, cur),
                    int(x.saving_slot_hours_per_month.mid),
                    int(x.saving_per_month.lo),
                    int(x.saving_per_month.hi)
                )),
                strong("Confidence:"),
                plain(format!(" {} — {}.", x.confidence, x.confidence_basis)),
            ]));
            v.push(Block::List(
                x.evidence.iter().map(|e| vec![plain(e.clone())]).collect(),
            ));
        }
        v.push(text(
            "Savings drawing on the same lost time do not add up: recovering dispatch loss and \
             retiring idle builders both spend the idle slot-hours.",
        ));
    }
    if let Some(cmp) = &r.comparison {
        v.push(heading(3, "compare", "Before and after"));
        v.push(text(format!(
            "Compared with the report in {} ({}, generated {}, window {}).",
            cmp.old_dir, cmp.old_origin, cmp.old_generated_at, cmp.old_window
        )));
        let opt = |x: Option<f64>| x.map_or("–".to_string(), |x| num(x, 1));
        v.push(table(
            &["figure", "unit", "before", "now", "change", "change %"],
            cmp.rows
                .iter()
                .map(|row| {
                    vec![
                        row.label.clone(),
                        row.unit.clone(),
                        opt(row.before),
                        opt(row.after),
                        row.change
                            .map_or("–".into(), |c| fmt::signed(c, &num(c, 1))),
                        row.change_pct
                            .map_or("–".into(), |c| fmt::signed(c, &pct(c))),
                    ]
                })
                .collect(),
        ));
    }
}

fn waterfall(r: &Report, v: &mut Vec<Block>) {
    let cur = r.costs.currency.as_str();
    v.extend(chart(r, "waterfall"));
    v.push(table(
        &[
            "bucket",
            "slot-hours (window)",
            "share",
            "slot-hours/month",
            &format!("cost/month ({cur}, estimate)"),
            "what it is",
            "source",
        ],
        r.waterfall
            .iter()
            .map(|w| {
                vec![
                    w.label.clone(),
                    match w.slot_hours_high {
                        Some(h) => format!("{}–{}", int(w.slot_hours), int(h)),
                        None => int(w.slot_hours),
                    },
                    pct(w.share_pct),
                    int(w.slot_hours_per_month),
                    int(w.cost_per_month),
                    w.definition.clone(),
                    w.source.clone(),
                ]
            })
            .collect(),
    ));
}

/// Ledger rows; `throttled` adds the Rust runner's throttled column after held.
fn ledger_rows(rows: &[super::LedgerRow], cur: &str, throttled: bool) -> Vec<Vec<String>> {
    rows.iter()
        .map(|m| {
            let mut row = vec![
                m.key.clone(),
                m.slots.to_string(),
                int(m.available_h),
                num(m.building_h, 1),
                num(m.overhead_h, 1),
                num(m.held_h, 1),
                match m.dispatch_loss_high_h {
                    Some(h) => format!("{}–{}", num(m.dispatch_loss_h, 1), num(h, 1)),
                    None => num(m.dispatch_loss_h, 1),
                },
                num(m.idle_h, 1),
                pct(m.busy_pct),
                money(m.cost_per_month, cur),
            ];
            if throttled {
                row.insert(6, num(m.throttled_h, 1));
            }
            row
        })
        .collect()
}

/// The ledger tables' header, first column named `first`.
fn ledger_header(first: &'static str, throttled: bool) -> Vec<&'static str> {
    let mut h = vec![
        first,
        "slots",
        "available h",
        "building h",
        "overhead h",
        "held h",
        "dispatch loss h",
        "idle h",
        "busy",
        "cost/month",
    ];
    if throttled {
        h.insert(6, "throttled h");
    }
    h
}

fn utilization(r: &Report, v: &mut Vec<Block>) {
    let cur = r.costs.currency.as_str();
    let u = &r.utilization;
    v.push(heading(2, "utilization", "Utilization"));
    v.push(text(u.definition.clone()));
    v.push(table(
        &[
            "system",
            "slots",
            "mean steps building",
            "mean share of slots",
            &format!("busiest {} (steps)", secs(u.bucket_s as f64)),
        ],
        u.by_system
            .iter()
            .map(|s| {
                vec![
                    s.system.clone(),
                    s.slots.to_string(),
                    num(s.mean_building, 1),
                    pct(s.mean_pct),
                    num(s.busiest_column, 1),
                ]
            })
            .collect(),
    ));
    v.extend(chart(r, "utilization"));
    let thr = crate::analysis::ledger::throttling_applies(&r.capacity.throttled_basis);
    v.push(text(format!(
        "The capacity ledger per system and machine (hours over the window). Slots: {}. Held: {}. \
         {}Dispatch loss: {}{}.",
        r.capacity.slots_basis,
        r.capacity.held_basis,
        if thr {
            format!("Throttled: {}. ", r.capacity.throttled_basis)
        } else {
            String::new()
        },
        r.capacity.dispatch_basis,
        r.capacity.dispatch_split.map_or(String::new(), |s| format!(
            " (by stage: queue monitor {}{} h, dispatcher {} h)",
            // Only a measured whole makes the queue monitor's part (the whole less the
            // dispatcher's) a figure; beside an upper end it is an upper end too.
            if crate::analysis::ledger::is_measured(&r.capacity.dispatch_basis) {
                ""
            } else {
                "at most "
            },
            num(s.queue_monitor_h, 1),
            num(s.dispatcher_h, 1)
        ))
    )));
    let mut rows = ledger_rows(&r.capacity.by_system, cur, thr);
    rows.extend(ledger_rows(
        std::slice::from_ref(&r.capacity.total),
        cur,
        thr,
    ));
    v.push(table(&ledger_header("system", thr), rows));
    v.push(table(
        &ledger_header("machine", thr),
        ledger_rows(&r.capacity.machines, cur, thr),
    ));
    if !r.capacity.notes.is_empty() {
        v.push(Block::List(
            r.capacity
                .notes
                .iter()
                .map(|n| vec![plain(n.clone())])
                .collect(),
        ));
    }
}

fn wait_rows(rows: &[WaitRow]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|w| {
            vec![
                w.key.clone(),
                int(w.to_start.count as f64),
                secs(w.to_start.p50),
                secs(w.to_start.p90),
                secs(w.to_start.p99),
                secs(w.to_start.max),
                secs(w.to_finish.p50),
                secs(w.to_finish.p90),
            ]
        })
        .collect()
}

const WAIT_HEADER: [&str; 8] = [
    "group",
    "builds started",
    "wait p50",
    "wait p90",
    "wait p99",
    "wait max",
    "to finish p50",
    "to finish p90",
];

fn waiting(r: &Report, v: &mut Vec<Block>) {
    let w = &r.waiting;
    v.push(heading(2, "waiting", "Queue waiting"));
    v.push(text(w.definition.clone()));
    let mut rows = wait_rows(std::slice::from_ref(&w.overall));
    rows.extend(wait_rows(&w.by_system));
    let mut header = WAIT_HEADER;
    header[0] = "system";
    v.push(table(&header, rows));
    v.extend(chart(r, "queue-wait"));
    v.push(text(format!(
        "The backlog peaked at {} builds queued and unfinished at {}; {} builds were cached \
         (nothing to build).",
        int(w.backlog_max as f64),
        crate::window::fmt_time(w.backlog_max_at),
        int(w.cached_builds as f64)
    )));
    v.extend(chart(r, "backlog"));
    v.push(heading(
        3,
        "waiting-jobsets",
        "The jobsets that waited longest",
    ));
    header[0] = "jobset";
    v.push(table(&header, wait_rows(&w.slowest_jobsets)));
    v.push(heading(3, "waiting-priority", "By priority and by day"));
    header[0] = "priority";
    v.push(table(&header, wait_rows(&w.by_priority)));
    header[0] = "day queued";
    v.push(table(&header, wait_rows(&w.by_day)));
}

fn overhead(r: &Report, v: &mut Vec<Block>) {
    let o = &r.overhead;
    v.push(heading(2, "overhead", "Overhead"));
    v.push(text(format!(
        "Overhead took {} of slot time in the window, {} of building plus overhead.",
        hours(o.slot_hours),
        pct(o.share_of_work_pct)
    )));
    match &o.fit {
        Some(fit) => {
            v.push(para(vec![
                plain(format!(
                    "Over {} steps with a known output size ({}): ",
                    int(fit.points as f64),
                    o.sizes_from
                )),
                strong(format!(
                    "overhead ≈ {} + {} per MiB of output",
                    secs(fit.fixed_ms / 1000.0),
                    fmt::secs(fit.ms_per_mib / 1000.0)
                )),
                plain(format!(
                    ", a size-proportional throughput of {}; size explains {} of the overhead \
                     ({} of slot time), the fixed part per step the rest ({}). The median step is \
                     {} off the line.",
                    fit.implied_mb_per_s
                        .map_or("– (no growth with size)".into(), |x| format!(
                            "{} MB/s",
                            num(x, 2)
                        )),
                    pct(fit.size_share * 100.0),
                    hours(o.size_part_h),
                    hours(o.fixed_part_h),
                    secs(fit.median_abs_residual_ms / 1000.0)
                )),
            ]));
        }
        None => v.push(text(format!(
            "No fit: too few steps with a known output size ({}).",
            o.sizes_from
        ))),
    }
    if !o.codecs.is_empty() {
        v.push(table(
            &[
                "codec",
                "compress MB/s per core",
                "share of the size-proportional overhead compressing alone would take",
            ],
            o.codecs
                .iter()
                .map(|c| {
                    vec![
                        c.codec.clone(),
                        num(c.compress_mb_s_core, 2),
                        c.share_of_size_overhead
                            .map_or("–".into(), |x| pct(x * 100.0)),
                    ]
                })
                .collect(),
        ));
        v.push(text(
            "A share near or above 100 % means compressing at that speed accounts for all of the \
             overhead's growth with output size.",
        ));
    }
    v.extend(chart(r, "overhead"));
    v.push(text(o.definition.clone()));
}

fn waste(r: &Report, v: &mut Vec<Block>) {
    let cur = r.costs.currency.as_str();
    let w = &r.waste;
    v.push(heading(2, "waste", "Waste"));
    v.push(text(format!(
        "{} of {} step slot-hours ({}) bought nothing.",
        hours(w.wasted_slot_hours),
        hours(w.total_slot_hours),
        pct(w.wasted_pct)
    )));
    v.push(table(
        &["category", "steps", "slot-hours", "cost/month (estimate)"],
        w.categories
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    int(c.steps as f64),
                    num(c.slot_hours, 1),
                    money(c.cost_per_month, cur),
                ]
            })
            .collect(),
    ));
    let off = |rows: &[super::Offender]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|o| vec![o.name.clone(), int(o.steps as f64), num(o.slot_hours, 1)])
            .collect()
    };
    v.push(heading(3, "waste-offenders", "Top offenders"));
    v.push(table(
        &["jobset", "wasted steps", "slot-hours"],
        off(&w.by_jobset),
    ));
    v.push(table(
        &["job", "wasted steps", "slot-hours"],
        off(&w.top_jobs),
    ));
    if !w.most_rebuilt.is_empty() {
        v.push(table(
            &["derivation built more than once", "times", "slot-hours"],
            w.most_rebuilt
                .iter()
                .map(|(d, n, h)| vec![d.clone(), n.to_string(), num(*h, 1)])
                .collect(),
        ));
    }
    v.push(text(w.definition.clone()));
}

fn compression(r: &Report, v: &mut Vec<Block>) {
    let cur = r.costs.currency.as_str();
    v.push(heading(2, "compression", "Compression"));
    let Some(c) = &r.compression else {
        v.push(text(
            "Not measured in this run (pass --compression FILE, or let the report measure).",
        ));
        return;
    };
    v.push(text(format!(
        "Codecs measured on {} NARs ({} MB) — {}. Every result was decompressed and checked.",
        c.nars,
        num(c.nar_bytes as f64 / 1e6, 1),
        c.source
    )));
    v.push(table(
        &[
            "codec",
            "ratio (% of NAR)",
            "compress MB/s per core",
            "decompress MB/s",
            "Pareto frontier",
        ],
        c.codecs
            .iter()
            .map(|k| {
                vec![
                    k.codec.clone(),
                    num(k.ratio_pct, 2),
                    num(k.compress_mb_s_core, 2),
                    num(k.decompress_mb_s, 0),
                    if k.pareto { "yes" } else { "no" }.into(),
                ]
            })
            .collect(),
    ));
    v.extend(chart(r, "codecs"));
    v.push(text(format!(
        "Projected onto the farm's output: {} GB a day over {} days from {} builds, busiest hour \
         {} GB at {} ({}).",
        num(c.volume.gb_per_day, 1),
        num(c.volume.days, 1),
        int(c.volume.builds as f64),
        num(c.volume.peak_hour_gb, 2),
        crate::window::fmt_time(c.volume.peak_hour),
        c.volume.basis
    )));
    v.push(table(
        &[
            "codec",
            "compress core-h/day",
            "cores for the busiest hour",
            "stored TiB/month",
            "client decompress core-h/month",
            &format!("farm cost/month ({cur}, estimate)"),
            &format!("client cost/month ({cur}, estimate)"),
        ],
        c.projections
            .iter()
            .map(|p| {
                vec![
                    p.codec.clone(),
                    num(p.compress_core_hours_per_day, 2),
                    num(p.peak_hour_cores, 2),
                    num(p.stored_tib_per_month, 3),
                    int(p.client_decompress_core_hours_per_month),
                    num(p.farm_cost_per_month, 2),
                    num(p.client_cost_per_month, 2),
                ]
            })
            .collect(),
    ));
    v.push(para(match c.peak_hour_cores_current {
        Some(n) => vec![
            plain(format!("Peak-hour core count: {} needs ", c.current_codec)),
            strong(format!("{} cores", num(n, 1))),
            plain(format!(
                " compressing to keep up with the busiest hour's output ({}).",
                c.compressed_where
            )),
        ],
        None => vec![plain(format!(
            "Peak-hour core count: {} was not measured.",
            c.current_codec
        ))],
    }));
}

fn interval(i: &Interval, f: fn(f64) -> String) -> String {
    format!("{} ({}–{})", f(i.mid), f(i.lo), f(i.hi))
}

fn simulation(r: &Report, v: &mut Vec<Block>) {
    let cur = r.costs.currency.clone();
    v.push(heading(2, "simulation", "Simulation"));
    let Some(s) = &r.simulation else {
        v.push(text(
            "Not run: the throughput model (`simulate`) has not fed this report. The \
             recommendations above rest on the measured history alone.",
        ));
        return;
    };
    v.push(heading(
        3,
        "calibration",
        "Calibration: the model against the history",
    ));
    v.push(table(
        &["metric", "unit", "observed", "modelled", "error"],
        s.calibration
            .iter()
            .map(|c| {
                vec![
                    c.metric.clone(),
                    c.unit.clone(),
                    num(c.observed, 2),
                    num(c.modelled, 2),
                    pct(c.error_pct),
                ]
            })
            .collect(),
    ));
    v.push(heading(3, "scenarios", "Scenarios"));
    v.push(table(
        &[
            "scenario",
            "builds/day",
            "wait p50",
            "wait p90",
            "wait p99",
            &format!("cost/month ({cur})"),
            "utilization by system",
        ],
        s.scenarios
            .iter()
            .map(|x| {
                vec![
                    x.name.clone(),
                    interval(&x.builds_per_day, int),
                    interval(&x.wait_p50_s, secs),
                    interval(&x.wait_p90_s, secs),
                    interval(&x.wait_p99_s, secs),
                    x.cost_per_month.map_or("–".into(), |c| interval(&c, int)),
                    x.utilization_by_system
                        .iter()
                        .map(|(k, u)| format!("{k} {}", pct(u * 100.0)))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect(),
    ));
    v.extend(chart(r, "scenarios"));
    let buckets: Vec<String> = {
        let mut b: Vec<String> = s
            .scenarios
            .iter()
            .flat_map(|x| x.lost_slot_hours_by_bucket.iter().map(|(k, _)| k.clone()))
            .collect();
        b.dedup();
        let mut seen = Vec::new();
        b.retain(|k| {
            let new = !seen.contains(k);
            seen.push(k.clone());
            new
        });
        b
    };
    if !buckets.is_empty() {
        let mut header: Vec<&str> = vec!["scenario (lost slot-hours)"];
        header.extend(buckets.iter().map(String::as_str));
        v.push(table(
            &header,
            s.scenarios
                .iter()
                .map(|x| {
                    let mut row = vec![x.name.clone()];
                    row.extend(buckets.iter().map(|k| {
                        x.lost_slot_hours_by_bucket
                            .iter()
                            .find(|(n, _)| n == k)
                            .map_or("–".into(), |(_, h)| int(*h))
                    }));
                    row
                })
                .collect(),
        ));
    }
    if !s.verdict.is_empty() {
        v.push(Block::List(
            s.verdict.iter().map(|x| vec![plain(x.clone())]).collect(),
        ));
    }
}

fn quality(r: &Report, v: &mut Vec<Block>) {
    let q = &r.quality;
    v.push(heading(2, "quality", "Data quality"));
    v.push(text(format!(
        "{} steps and {} builds read; {} steps excluded from time-based figures.",
        int(q.steps as f64),
        int(q.builds as f64),
        int(q.excluded_steps as f64)
    )));
    v.push(table(
        &[
            "check",
            "steps",
            "treatment",
            "examples (build/step)",
            "definition",
        ],
        q.checks
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    int(c.count as f64),
                    if c.excluded { "excluded" } else { "kept" }.into(),
                    c.examples.join(" "),
                    c.definition.clone(),
                ]
            })
            .collect(),
    ));
    if !q.clock_skew.is_empty() {
        v.push(table(
            &["machine with clock skew", "steps", "median s", "max s"],
            q.clock_skew
                .iter()
                .map(|m| {
                    vec![
                        m.machine.clone(),
                        int(m.steps as f64),
                        m.median_s.to_string(),
                        m.max_s.to_string(),
                    ]
                })
                .collect(),
        ));
    }
}

fn method(r: &Report, v: &mut Vec<Block>) {
    let m = &r.method;
    v.push(heading(2, "method", "Method"));
    v.push(heading(3, "definitions", "Definitions"));
    v.push(Block::List(
        m.definitions
            .iter()
            .map(|d| {
                vec![
                    strong(format!("{}:", d.term)),
                    plain(format!(" {}", d.meaning)),
                ]
            })
            .collect(),
    ));
    v.push(heading(3, "sources", "Sources"));
    v.push(Block::List(
        m.sources.iter().map(|s| vec![plain(s.clone())]).collect(),
    ));
    v.push(heading(3, "assumptions", "Assumptions"));
    let mut a: Vec<Vec<Inline>> = m
        .assumptions
        .iter()
        .map(|s| vec![plain(s.clone())])
        .collect();
    a.push(vec![plain(format!(
        "Dependency estimate: {}.",
        m.dependency_estimate
    ))]);
    let c = &r.costs;
    a.push(vec![plain(format!(
        "Prices ({}): machine {} a month{}; core-hour {}; storage {} per TiB-month; egress {} \
         per TiB, {} TiB a month served.",
        c.currency,
        num(c.machine_month, 2),
        if c.machine_month_by_system.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                c.machine_month_by_system
                    .iter()
                    .map(|(k, p)| format!("{k}: {}", num(*p, 2)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        num(c.core_hour, 4),
        num(c.storage_tib_month, 2),
        num(c.egress_tib, 2),
        int(c.egress_tib_month)
    ))]);
    v.push(Block::List(a));
    v.push(heading(3, "run", "This run"));
    v.push(Block::List(vec![
        vec![plain(format!("Source: {}", r.source.origin))],
        vec![plain(format!(
            "Queue runner: {} ({}){}",
            r.source.runner,
            r.source.runner_basis,
            r.source
                .schema_version
                .map(|s| format!("; schema version {s}"))
                .unwrap_or_default()
        ))],
        vec![plain(format!(
            "Window: {} – {} ({} days)",
            r.window.since_utc,
            r.window.until_utc,
            num(r.window.days, 2)
        ))],
        vec![plain(format!("Report format: {}", r.format_version))],
    ]));
    v.push(para(vec![
        plain(format!(
            "Generated {} by hydra-bottleneck {}",
            r.generated_at, r.tool_version
        )),
        plain("."),
    ]));
}
