//! `report.md`: the report's blocks as GitHub-flavoured Markdown, charts as the SVG files
//! beside it.

use super::doc::{Block, Inline};

fn inline(parts: &[Inline]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Inline::Text(s) => escape(s),
            Inline::Strong(s) => format!("**{}**", escape(s)),
            Inline::Code(s) => format!("`{s}`"),
        })
        .collect()
}

/// Characters Markdown would read as markup in running text.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '_' | '[' | ']' | '<' | '>' | '|' | '`' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn cell(s: &str) -> String {
    escape(s).replace('\n', " ")
}

pub fn render(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Title(s) => out.push_str(&format!("# {}\n\n", escape(s))),
            Block::Heading { level, text, .. } => out.push_str(&format!(
                "{} {}\n\n",
                "#".repeat(usize::from(*level)),
                escape(text)
            )),
            Block::Para(parts) => out.push_str(&format!("{}\n\n", inline(parts))),
            Block::List(items) => {
                for item in items {
                    out.push_str(&format!("- {}\n", inline(item)));
                }
                out.push('\n');
            }
            Block::Table {
                header,
                rows,
                numeric,
            } => {
                let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
                out.push_str(&line(header.iter().map(|h| cell(h)).collect()));
                out.push_str(&line(
                    numeric
                        .iter()
                        .map(|n| if *n { "---:" } else { "---" }.to_string())
                        .collect(),
                ));
                for row in rows {
                    out.push_str(&line(row.iter().map(|c| cell(c)).collect()));
                }
                out.push('\n');
            }
            Block::Chart { name, title, alt } => {
                out.push_str(&format!("![{}]({name}.svg)\n\n", escape(title)));
                out.push_str(&format!("*{}*\n\n", escape(alt)));
            }
            Block::EndSummary => out.push_str("---\n\n"),
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_numbers_and_escape_markup() {
        let md = render(&[Block::Table {
            header: vec!["job".into(), "h".into()],
            rows: vec![vec!["a|b_c".into(), "1.5".into()]],
            numeric: vec![false, true],
        }]);
        assert_eq!(md, "| job | h |\n| --- | ---: |\n| a\\|b\\_c | 1.5 |\n");
    }
}
