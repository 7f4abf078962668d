//! `report.html`: one self-contained file — CSS and the charts' SVG inline, no script, no
//! font or image fetched — that reads on a laptop screen and prints on A4.

use super::Report;
use super::charts::Drawn;
use super::doc::{Block, Inline};

/// Layout and print styles. The page is at most 72rem wide, wide tables scroll inside their
/// own box instead of widening the page, and charts scale down with the window.
const CSS: &str = r#"
:root { --ink: #1d1d1f; --muted: #5b5b60; --rule: #d8d8dc; --band: #f4f4f6; --accent: #0072B2; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0 0 .75rem; }
h1.sample { border-left: .4rem solid #D55E00; padding-left: .6rem; }
h2 { font-size: 1.35rem; margin: 2.5rem 0 .75rem; padding-top: .5rem; border-top: 1px solid var(--rule); }
h3 { font-size: 1.1rem; margin: 1.75rem 0 .5rem; }
h4 { font-size: 1rem; margin: 1.25rem 0 .25rem; }
p, li { max-width: 60rem; }
nav { font-size: .9rem; margin: 0 0 1rem; color: var(--muted); display: flex; flex-wrap: wrap;
  gap: .2rem .9rem; }
nav a { color: var(--accent); white-space: nowrap; }
.summary { background: var(--band); border-radius: .5rem; padding: .5rem 1.25rem 1rem; }
.summary h2 { border-top: 0; margin-top: .75rem; }
.table { overflow-x: auto; margin: .75rem 0 1.25rem; max-width: 100%; }
table { border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums; }
th, td { text-align: left; vertical-align: top; padding: .3rem .6rem; border-bottom: 1px solid var(--rule);
  overflow-wrap: break-word; }
td { max-width: 32rem; }
th { background: #fff; border-bottom: 2px solid var(--ink); font-weight: 600; }
td.n, th.n { text-align: right; white-space: nowrap; }
figure.chart { margin: 1rem 0 1.5rem; background: #fff; }
figure.chart svg { display: block; width: 100%; max-width: 960px; height: auto; }
figcaption { font-size: .85rem; color: var(--muted); margin-top: .25rem; max-width: 60rem; }
code { font-size: .9em; }
@media (max-width: 40rem) { body { font-size: 15px; } main { padding: 1rem .75rem 3rem; } }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  .summary { background: none; padding: 0; }
  .table { overflow: visible; }
  h2 { break-before: page; }
  .summary h2 { break-before: avoid; }
  figure, tr, h3, h4 { break-inside: avoid; }
  h2, h3, h4 { break-after: avoid; }
}
"#;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn inline(parts: &[Inline]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Inline::Text(s) => escape(s),
            Inline::Strong(s) => format!("<strong>{}</strong>", escape(s)),
            Inline::Code(s) => format!("<code>{}</code>", escape(s)),
        })
        .collect()
}

/// The SVG as plotters wrote it, without an XML declaration (not allowed inside HTML).
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => svg[i..].trim_end(),
        None => svg,
    }
}

pub fn render(r: &Report, blocks: &[Block], charts: &[Drawn]) -> String {
    let mut out = String::new();
    let title = super::doc::title(r);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!("<title>{}</title>\n", escape(&title)));
    out.push_str(&format!("<style>{CSS}</style>\n</head>\n<body>\n<main>\n"));
    let nav: Vec<(String, String)> = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Heading { level: 2, id, text } => Some((id.clone(), text.clone())),
            _ => None,
        })
        .collect();
    for block in blocks {
        match block {
            Block::Title(s) => {
                let class = if r.source.is_sample {
                    " class=\"sample\""
                } else {
                    ""
                };
                out.push_str(&format!("<h1{class}>{}</h1>\n<nav>", escape(s)));
                for (id, text) in &nav {
                    out.push_str(&format!("\n<a href=\"#{id}\">{}</a>", escape(text)));
                }
                out.push_str("</nav>\n<div class=\"summary\">\n");
            }
            Block::Heading { level, id, text } => out.push_str(&format!(
                "<h{level} id=\"{id}\">{}</h{level}>\n",
                escape(text)
            )),
            Block::Para(parts) => out.push_str(&format!("<p>{}</p>\n", inline(parts))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(item)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table {
                header,
                rows,
                numeric,
            } => {
                let class = |i: usize| {
                    if numeric.get(i).copied().unwrap_or(false) {
                        " class=\"n\""
                    } else {
                        ""
                    }
                };
                out.push_str("<div class=\"table\"><table>\n<thead><tr>");
                for (i, h) in header.iter().enumerate() {
                    out.push_str(&format!("<th{}>{}</th>", class(i), escape(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for (i, c) in row.iter().enumerate() {
                        out.push_str(&format!("<td{}>{}</td>", class(i), escape(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody></table></div>\n");
            }
            Block::Chart { name, title, alt } => {
                let svg = charts
                    .iter()
                    .find(|c| &c.name == name)
                    .map_or("", |c| inline_svg(&c.svg));
                out.push_str(&format!(
                    "<figure class=\"chart\" data-chart=\"{name}\" role=\"img\" aria-label=\"{}\">\n{svg}\n<figcaption><strong>{}.</strong> {}</figcaption>\n</figure>\n",
                    escape(alt),
                    escape(title),
                    escape(alt)
                ));
            }
            Block::EndSummary => out.push_str("</div>\n"),
        }
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}
