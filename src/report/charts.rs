//! The charts, drawn with plotters: SVG for the HTML and Markdown, PNG for slides and mail.
//!
//! Each chart is one generic function over plotters' backend, so the SVG and the PNG are the
//! same drawing. Text is measured and (for PNG) drawn with an embedded DejaVu Sans subset
//! (`assets/fonts/`, registered with plotters' `ab_glyph` backend): no system font library,
//! and the same layout — hence the same SVG bytes — on every machine. Colours are the
//! Okabe–Ito palette, distinguishable with every common colour-vision deficiency; the heatmap
//! uses a single-hue blue ramp, which reads in grey too.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::fmt::{int, num, pct, secs};
use super::{ChartInfo, Report};
use crate::error::{Error, Result};

/// The embedded font (see `assets/fonts/README.md`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType font checked in with the code; a failure here is a
        // build problem that the chart tests catch (text would be missing).
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Okabe–Ito: black, orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple.
pub const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0, 0, 0),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(240, 228, 66),
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
];
const GREY: RGBColor = RGBColor(120, 120, 120);
const LIGHT: RGBColor = RGBColor(225, 225, 228);

/// Chart width, pixels: the HTML column's width, and a PNG that fits a slide.
const WIDTH: u32 = 960;
const HEIGHT: u32 = 440;
/// Font sizes, pixels: readable at the chart's width on a laptop and printed on A4.
const TEXT: u32 = 14;
const LABEL: u32 = 15;
const CAPTION: u32 = 18;

/// A chart drawn as SVG.
#[derive(Debug, Clone)]
pub struct Drawn {
    pub name: String,
    pub svg: String,
}

/// The charts this report has, in the order it shows them.
pub fn list(r: &Report) -> Vec<ChartInfo> {
    let mut v = vec![
        ChartInfo {
            name: "waterfall".into(),
            title: "Capacity waterfall".into(),
            alt: format!(
                "Bars from the slot-hours available down through useful building, overhead, \
                 held idle, {}dispatch loss and waste to true idle, each labelled with its hours \
                 and share.",
                if r.waterfall.iter().any(|w| w.key == "throttled") {
                    "throttled, "
                } else {
                    ""
                }
            ),
        },
        ChartInfo {
            name: "utilization".into(),
            title: "Utilization by machine over time".into(),
            alt: format!(
                "Heatmap: one row per machine, one column per {}; darker is a larger share of \
                 the machine's slots building.",
                secs(r.utilization.column_s as f64)
            ),
        },
        ChartInfo {
            name: "queue-wait".into(),
            title: "Queue wait distribution".into(),
            alt: "Share of builds that started within a given wait, per system type (log-scaled \
                  wait)."
                .into(),
        },
        ChartInfo {
            name: "backlog".into(),
            title: "Backlog over time".into(),
            alt: "Builds queued and not yet finished, over the window.".into(),
        },
    ];
    if !r.overhead.scatter.is_empty() {
        v.push(ChartInfo {
            name: "overhead".into(),
            title: "Overhead against output size".into(),
            alt: "Each dot a step: its overhead against its output's NAR size (both log-scaled), \
                  with the Theil–Sen fit as a line."
                .into(),
        });
    }
    if r.compression.as_ref().is_some_and(|c| !c.codecs.is_empty()) {
        v.push(ChartInfo {
            name: "codecs".into(),
            title: "Codecs: size against compression speed".into(),
            alt: "Each codec's compressed size against its compression speed per core; codecs on \
                  the Pareto frontier (ratio, compression CPU, decompression speed) are marked."
                .into(),
        });
    }
    if r.simulation
        .as_ref()
        .is_some_and(|s| !s.scenarios.is_empty())
    {
        v.push(ChartInfo {
            name: "scenarios".into(),
            title: "Scenario comparison".into(),
            alt: "Per simulated scenario: builds per day and the p90 queue wait, with their \
                  low–high range."
                .into(),
        });
    }
    v
}

fn size_of(r: &Report, name: &str) -> (u32, u32) {
    match name {
        "utilization" => (
            WIDTH,
            (110 + 18 * r.utilization.machines.len() as u32).max(220),
        ),
        _ => (WIDTH, HEIGHT),
    }
}

type DrawResult<E> = std::result::Result<(), DrawingAreaErrorKind<E>>;

/// The series legend, in one style for every chart, at `pos`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
) -> DrawResult<DB::ErrorType> {
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.9))
        .border_style(LIGHT)
        .label_font(font(TEXT))
        .draw()
}

fn dispatch<DB: DrawingBackend>(
    name: &str,
    root: &DrawingArea<DB, Shift>,
    r: &Report,
) -> DrawResult<DB::ErrorType> {
    root.fill(&WHITE)?;
    match name {
        "waterfall" => waterfall(root, r),
        "utilization" => heatmap(root, r),
        "queue-wait" => queue_wait(root, r),
        "backlog" => backlog(root, r),
        "overhead" => overhead(root, r),
        "codecs" => codecs(root, r),
        "scenarios" => scenarios(root, r),
        _ => Ok(()),
    }?;
    root.present()
}

fn chart_error(name: &str, e: impl std::fmt::Display) -> Error {
    Error::Chart {
        what: format!("chart {name}"),
        reason: e.to_string(),
    }
}

/// Every chart of the report as SVG.
pub fn draw(r: &Report) -> Result<Vec<Drawn>> {
    register_font();
    r.charts
        .iter()
        .map(|c| {
            let mut svg = String::new();
            {
                let root =
                    SVGBackend::with_string(&mut svg, size_of(r, &c.name)).into_drawing_area();
                dispatch(&c.name, &root, r).map_err(|e| chart_error(&c.name, e))?;
            }
            Ok(Drawn {
                name: c.name.clone(),
                svg,
            })
        })
        .collect()
}

/// One chart as a PNG file.
pub fn png(r: &Report, name: &str, path: &Path) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, size_of(r, name)).into_drawing_area();
    dispatch(name, &root, r).map_err(|e| chart_error(name, e))
}

fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

fn waterfall<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Report,
) -> DrawResult<DB::ErrorType> {
    let steps = &r.waterfall;
    let n = steps.len() as u32;
    let top = steps.first().map_or(1.0, |s| s.slot_hours).max(1.0);
    // Each bucket keeps its colour whichever buckets the report shows.
    let color_of = |key: &str| match key {
        "available" => GREY,
        "building" => OKABE_ITO[3],
        "overhead" => OKABE_ITO[1],
        "held" => OKABE_ITO[7],
        "throttled" => OKABE_ITO[5],
        "dispatch_loss" => OKABE_ITO[6],
        "waste" => OKABE_ITO[4],
        _ => OKABE_ITO[2],
    };
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Where the {} slot-hours of the window went ({} days)",
                int(top),
                num(r.window.days, 1)
            ),
            font(CAPTION),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0.0..top * 1.12)?;
    let labels: Vec<String> = steps.iter().map(|s| s.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(LIGHT)
        .x_labels(n as usize)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                labels.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .y_desc("slot-hours in the window")
        .y_label_formatter(&|y| int(*y))
        .label_style(font(TEXT))
        .axis_desc_style(font(LABEL))
        .draw()?;
    let mut level = top;
    for (i, s) in steps.iter().enumerate() {
        let i = i as u32;
        let (lo, hi) = if i == 0 {
            (0.0, top)
        } else {
            let hi = level;
            level = (level - s.slot_hours).max(0.0);
            (level, hi)
        };
        let color = color_of(&s.key);
        let corners = [
            (SegmentValue::Exact(i), lo),
            (SegmentValue::Exact(i + 1), hi),
        ];
        let mut bar = Rectangle::new(corners.clone(), color.filled());
        bar.set_margin(0, 0, 10, 10);
        // Yellow needs an outline to be seen on white.
        let mut outline = Rectangle::new(corners, BLACK.stroke_width(1));
        outline.set_margin(0, 0, 10, 10);
        chart.draw_series([bar, outline])?;
        let label = if i == 0 {
            format!("{} h", int(s.slot_hours))
        } else {
            format!("{} h · {}", int(s.slot_hours), pct(s.share_pct))
        };
        chart.draw_series(std::iter::once(Text::new(
            label,
            (SegmentValue::CenterOf(i), hi + top * 0.015),
            font(TEXT).pos(Pos::new(HPos::Center, VPos::Bottom)),
        )))?;
    }
    Ok(())
}

/// The blue ramp of the heatmap (ColorBrewer "Blues"): from nearly white to dark blue.
const BLUES: [(u8, u8, u8); 5] = [
    (247, 251, 255),
    (198, 219, 239),
    (107, 174, 214),
    (33, 113, 181),
    (8, 48, 107),
];
/// The heatmap's shades: ten steps of a tenth of the slots each, which the eye tells apart,
/// and which let runs of equal cells be drawn as one rectangle (a smaller SVG).
const LEVELS: f64 = 10.0;

fn blue(share: f64) -> RGBColor {
    let x = share.clamp(0.0, 1.0) * (BLUES.len() - 1) as f64;
    let i = (x.floor() as usize).min(BLUES.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (BLUES[i], BLUES[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn level(share: f64) -> u32 {
    (share.clamp(0.0, 1.0) * LEVELS).round() as u32
}

fn day_label(start: i64, days: f64) -> String {
    let t = start + (days * 86_400.0).round() as i64;
    let s = crate::window::fmt_time(t);
    // "2025-06-02 00:00:00Z" → "06-02", or "06-02 12:00" off midnight.
    if s.len() >= 16 && &s[11..16] != "00:00" {
        format!("{} {}", &s[5..10], &s[11..16])
    } else if s.len() >= 10 {
        s[5..10].to_string()
    } else {
        s
    }
}

fn heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Report,
) -> DrawResult<DB::ErrorType> {
    let u = &r.utilization;
    let rows = u.machines.len() as u32;
    let days = (u.columns as i64 * u.column_s) as f64 / 86_400.0;
    let (area, legend) = root.split_horizontally(WIDTH - 90);
    let mut chart = ChartBuilder::on(&area)
        .caption("Share of each machine's slots building", font(CAPTION))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(150)
        .build_cartesian_2d(
            0.0..days.max(1e-9),
            (0..rows.saturating_sub(1)).into_segmented(),
        )?;
    let labels: Vec<String> = u.machines.iter().map(|m| m.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_mesh()
        .y_labels(rows as usize + 1)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_labels(8)
        .x_label_formatter(&|d| day_label(u.start, *d))
        .x_desc("UTC")
        .label_style(font(TEXT - 2))
        .axis_desc_style(font(LABEL))
        .draw()?;
    let col_days = u.column_s as f64 / 86_400.0;
    for (ri, m) in u.machines.iter().enumerate() {
        let ri = ri as u32;
        let mut c = 0;
        while c < m.values.len() {
            let lv = level(m.values[c]);
            let mut e = c + 1;
            while e < m.values.len() && level(m.values[e]) == lv {
                e += 1;
            }
            if lv > 0 {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [
                        (c as f64 * col_days, SegmentValue::Exact(ri)),
                        (e as f64 * col_days, SegmentValue::Exact(ri + 1)),
                    ],
                    blue(f64::from(lv) / LEVELS).filled(),
                )))?;
            }
            c = e;
        }
    }
    // The colour key: the ramp from 0 to 100 % of the slots.
    let (x0, y0, h) = (12, 60, 200);
    for k in 0..20 {
        let share = 1.0 - f64::from(k) / 20.0;
        legend.draw(&Rectangle::new(
            [(x0, y0 + k * h / 20), (x0 + 18, y0 + (k + 1) * h / 20)],
            blue(share).filled(),
        ))?;
    }
    legend.draw(&Rectangle::new(
        [(x0, y0), (x0 + 18, y0 + h)],
        BLACK.stroke_width(1),
    ))?;
    for (share, y) in [(1.0, y0), (0.5, y0 + h / 2), (0.0, y0 + h)] {
        legend.draw(&Text::new(
            format!("{:.0} %", share * 100.0),
            (x0 + 24, y),
            font(TEXT - 2).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    legend.draw(&Text::new(
        "of slots",
        (x0, y0 - 18),
        font(TEXT - 2).pos(Pos::new(HPos::Left, VPos::Center)),
    ))?;
    Ok(())
}

/// Where the wait axis is labelled: the units people think of waits in.
const WAIT_TICKS_S: [f64; 10] = [
    1.0,
    10.0,
    60.0,
    600.0,
    3600.0,
    6.0 * 3600.0,
    86_400.0,
    7.0 * 86_400.0,
    30.0 * 86_400.0,
    365.0 * 86_400.0,
];

/// Line colours: Okabe–Ito without its yellow, which a thin line on white does not show.
const LINES: [RGBColor; 7] = [
    OKABE_ITO[0],
    OKABE_ITO[1],
    OKABE_ITO[2],
    OKABE_ITO[3],
    OKABE_ITO[5],
    OKABE_ITO[6],
    OKABE_ITO[7],
];

fn queue_wait<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Report,
) -> DrawResult<DB::ErrorType> {
    let w = &r.waiting;
    let edges = &w.histogram_edges_s;
    let max = w.overall.to_start.max.max(10.0);
    let xmax = edges
        .iter()
        .copied()
        .find(|e| *e >= max)
        .unwrap_or(edges.last().copied().unwrap_or(1e6) * 10.0)
        .max(10.0);
    let mut chart = ChartBuilder::on(root)
        .caption("Builds started within a given wait", font(CAPTION))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (1.0..xmax).log_scale().with_key_points(
                WAIT_TICKS_S
                    .iter()
                    .copied()
                    .filter(|t| *t <= xmax)
                    .collect(),
            ),
            0.0..100.0,
        )?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT)
        .x_desc("wait from queued to the first step starting (log scale)")
        .y_desc("share of builds, %")
        .x_label_formatter(&|x| secs(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(font(TEXT))
        .axis_desc_style(font(LABEL))
        .draw()?;
    for (k, h) in w.histograms.iter().enumerate() {
        let total: usize = h.counts.iter().sum();
        if total == 0 {
            continue;
        }
        let mut cum = 0usize;
        let mut pts = Vec::new();
        for (i, c) in h.counts.iter().enumerate() {
            cum += c;
            if let Some(&e) = edges.get(i + 1)
                && e <= xmax
            {
                pts.push((e, 100.0 * cum as f64 / total as f64));
            }
        }
        let (color, width) = if k == 0 {
            (LINES[0], 3)
        } else {
            (LINES[(k - 1) % (LINES.len() - 1) + 1], 2)
        };
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(width)))?
            .label(h.key.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
            });
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn backlog<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Report,
) -> DrawResult<DB::ErrorType> {
    let w = &r.waiting;
    // Days counted from the window's start, so that day labels fall on midnight.
    let start = r.window.since;
    let pts: Vec<(f64, f64)> = w
        .backlog
        .iter()
        .map(|&(t, q)| ((t - start) as f64 / 86_400.0, q as f64))
        .collect();
    let first = pts.first().map_or(0.0, |p| p.0).min(0.0);
    let days = pts
        .last()
        .map_or(1.0, |p| p.0)
        .max(r.window.days)
        .max(first + 1e-3);
    let ymax = (w.backlog_max as f64 * 1.1).max(1.0);
    let mut chart = ChartBuilder::on(root)
        .caption("Builds queued and not finished", font(CAPTION))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(first..days, 0.0..ymax)?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT)
        .x_labels(8)
        .x_label_formatter(&|d| day_label(start, *d))
        .x_desc("UTC")
        .y_desc("builds in the queue")
        .y_label_formatter(&|y| int(*y))
        .label_style(font(TEXT))
        .axis_desc_style(font(LABEL))
        .draw()?;
    chart.draw_series(AreaSeries::new(
        pts.iter().copied(),
        0.0,
        OKABE_ITO[2].mix(0.35),
    ))?;
    chart.draw_series(LineSeries::new(pts, OKABE_ITO[5].stroke_width(2)))?;
    Ok(())
}

/// The smallest power of ten at or below `x`, and the largest at or above `y`.
fn decades(x: f64, y: f64) -> (f64, f64) {
    (
        10f64.powf(x.max(1e-9).log10().floor()),
        10f64.powf(y.max(x * 10.0).log10().ceil()),
    )
}

fn overhead<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Report,
) -> DrawResult<DB::ErrorType> {
    const MIB: f64 = 1_048_576.0;
    // Floors for the log axes: a step with no output or no overhead sits on the axis.
    const MIN_MIB: f64 = 1e-3;
    const MIN_S: f64 = 1e-2;
    let o = &r.overhead;
    let pts: Vec<(f64, f64)> = o
        .scatter
        .iter()
        .map(|&(b, ms)| ((b / MIB).max(MIN_MIB), (ms / 1000.0).max(MIN_S)))
        .collect();
    let fold = |f: fn(f64, f64) -> f64, init: f64, sel: fn(&(f64, f64)) -> f64| {
        pts.iter().map(sel).fold(init, f)
    };
    let (x0, x1) = decades(
        fold(f64::min, f64::MAX, |p| p.0),
        fold(f64::max, 0.0, |p| p.0),
    );
    let (y0, y1) = decades(
        fold(f64::min, f64::MAX, |p| p.1),
        fold(f64::max, 0.0, |p| p.1),
    );
    let mut chart = ChartBuilder::on(root)
        .caption("Overhead per step against output size", font(CAPTION))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT)
        .x_desc("output NAR size, MiB (log scale)")
        .y_desc("overhead, seconds (log scale)")
        .x_label_formatter(&|x| num(*x, if *x < 1.0 { 3 } else { 0 }))
        .y_label_formatter(&|y| num(*y, if *y < 1.0 { 2 } else { 0 }))
        .label_style(font(TEXT))
        .axis_desc_style(font(LABEL))
        .draw()?;
    chart
        .draw_series(
            pts.iter()
                .map(|&p| Circle::new(p, 3, OKABE_ITO[2].mix(0.6).filled())),
        )?
        .label(format!(
            "steps ({} of {})",
            pts.len(),
            o.fit.as_ref().map_or(pts.len(), |f| f.points)
        ))
        .legend(|(x, y)| Circle::new((x + 10, y), 4, OKABE_ITO[2].filled()));
    if let Some(fit) = &o.fit {
        let line: Vec<(f64, f64)> = (0..=100)
            .map(|k| {
                let x = x0 * (x1 / x0).powf(f64::from(k) / 100.0);
                (x, ((fit.fixed_ms + fit.ms_per_mib * x) / 1000.0).max(y0))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(line, OKABE_ITO[6].stroke_width(3)))?
            .label(format!(
                "fit: {} + {} ms per MiB",
                secs(fit.fixed_ms / 1000.0),
                int(fit.ms_per_mib)
            ))
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], OKABE_ITO[6].stroke_width(3))
            });
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

fn codecs<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Report,
) -> DrawResult<DB::ErrorType> {
    let Some(c) = &r.compression else {
        return Ok(());
    };
    let ks: Vec<&super::CodecRow> = c
        .codecs
        .iter()
        .filter(|k| k.compress_mb_s_core > 0.0)
        .collect();
    let (x0, x1) = decades(
        ks.iter()
            .map(|k| k.compress_mb_s_core)
            .fold(f64::MAX, f64::min),
        ks.iter().map(|k| k.compress_mb_s_core).fold(0.0, f64::max),
    );
    let ymax = ks.iter().map(|k| k.ratio_pct).fold(0.0, f64::max);
    let ymin = ks.iter().map(|k| k.ratio_pct).fold(f64::MAX, f64::min);
    let pad = ((ymax - ymin) * 0.2).max(2.0);
    let mut chart = ChartBuilder::on(root)
        .caption("Compressed size against compression speed", font(CAPTION))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((x0..x1).log_scale(), (ymin - pad).max(0.0)..ymax + pad)?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT)
        .x_desc("compression speed, MB/s per core (log scale; right is cheaper)")
        .y_desc("compressed size, % of NAR (down is smaller)")
        .x_label_formatter(&|x| num(*x, if *x < 10.0 { 1 } else { 0 }))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(font(TEXT))
        .axis_desc_style(font(LABEL))
        .draw()?;
    let mut front: Vec<(f64, f64)> = ks
        .iter()
        .filter(|k| k.pareto)
        .map(|k| (k.compress_mb_s_core, k.ratio_pct))
        .collect();
    front.sort_by(|(a_speed, _), (b_speed, _)| a_speed.total_cmp(b_speed));
    chart
        .draw_series(LineSeries::new(front, OKABE_ITO[5].stroke_width(2)))?
        .label("Pareto frontier (ratio, compression CPU, decompression speed)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], OKABE_ITO[5].stroke_width(2)));
    // Labels go right of a point, or left of it in the right half, where they would run off.
    let mid = (x0 * x1).sqrt();
    for k in &ks {
        let (color, style) = if k.pareto {
            (OKABE_ITO[5], OKABE_ITO[5].filled())
        } else {
            (GREY, GREY.stroke_width(2))
        };
        let p = (k.compress_mb_s_core, k.ratio_pct);
        let (dx, h) = if p.0 > mid {
            (-10, HPos::Right)
        } else {
            (10, HPos::Left)
        };
        chart.draw_series(std::iter::once(
            EmptyElement::at(p)
                + Circle::new((0, 0), 6, style)
                + Text::new(
                    format!("{} (decompress {} MB/s)", k.codec, int(k.decompress_mb_s)),
                    (dx, -8),
                    font(TEXT).color(&color).pos(Pos::new(h, VPos::Bottom)),
                ),
        ))?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft)
}

fn scenarios<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Report,
) -> DrawResult<DB::ErrorType> {
    let Some(s) = &r.simulation else {
        return Ok(());
    };
    let n = s.scenarios.len() as u32;
    let names: Vec<String> = s.scenarios.iter().map(|x| x.name.clone()).collect();
    let (left, right) = root.split_horizontally(WIDTH / 2);
    type Pick = fn(&super::ScenarioRow) -> super::Interval;
    /// An area, its caption, the unit, the figure, and whether it is seconds shown as hours.
    type Panel<'a, DB> = (&'a DrawingArea<DB, Shift>, &'a str, &'a str, Pick, bool);
    let panels: [Panel<'_, DB>; 2] = [
        (
            &left,
            "Builds per day",
            "builds/day",
            |x| x.builds_per_day,
            false,
        ),
        (&right, "p90 queue wait", "hours", |x| x.wait_p90_s, true),
    ];
    for (k, (area, caption, unit, pick, in_hours)) in panels.into_iter().enumerate() {
        let f = if in_hours { 1.0 / 3600.0 } else { 1.0 };
        let top = s
            .scenarios
            .iter()
            .map(|x| pick(x).hi * f)
            .fold(0.0, f64::max)
            .max(1e-6)
            * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, font(CAPTION - 2))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(LIGHT)
            .x_labels(n as usize)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc(unit)
            .y_label_formatter(&|y| num(*y, if top < 10.0 { 1 } else { 0 }))
            .label_style(font(TEXT - 1))
            .axis_desc_style(font(LABEL))
            .draw()?;
        let color = OKABE_ITO[if k == 0 { 3 } else { 1 }];
        for (i, x) in s.scenarios.iter().enumerate() {
            let i = i as u32;
            let v = pick(x).scale(f);
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), v.mid),
                ],
                color.filled(),
            );
            bar.set_margin(0, 0, 14, 14);
            chart.draw_series(std::iter::once(bar))?;
            chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                SegmentValue::CenterOf(i),
                v.lo,
                v.mid,
                v.hi,
                BLACK.stroke_width(2),
                12,
            )))?;
        }
    }
    Ok(())
}
