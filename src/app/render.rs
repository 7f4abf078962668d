//! How every command's outcome is printed: one trait ([`Render`]) that each outcome implements,
//! and one printer ([`Printer`]) that writes tables, CSV and JSON the same way for all of them.
//! The printer writes to whatever it is given; the binary gives it stdout.

use std::io::Write;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::output::csv_field;

/// `--format`: how an outcome is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

/// An outcome that can be printed in each [`Format`].
pub trait Render {
    /// Writes the outcome through `p`, in `p.format()`.
    fn render(&self, p: &mut Printer<'_>) -> Result<()>;
}

/// Writes outcomes in one format to one destination. A reader that goes away (`| head`) is its
/// choice, not a failure: from the first broken pipe on, the rest is dropped quietly.
pub struct Printer<'a> {
    out: &'a mut dyn Write,
    /// The destination as errors name it ("stdout").
    name: &'a str,
    format: Format,
    closed: bool,
}

impl<'a> Printer<'a> {
    pub fn new(out: &'a mut dyn Write, name: &'a str, format: Format) -> Self {
        Printer {
            out,
            name,
            format,
            closed: false,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Runs one write, unless the reader has gone; a broken pipe ends all writing quietly.
    fn write(&mut self, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        match f(&mut *self.out) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.map_err(|e| Error::io(self.name, e)),
        }
    }

    /// Text as it is (the table format's headings and sentences).
    pub fn text(&mut self, s: &str) -> Result<()> {
        self.write(|out| out.write_all(s.as_bytes()))
    }

    /// Rows read one cell at a time from `src`, never held as text: CSV and JSON are written
    /// as they are read; a table reads the rows twice, once for the column widths. JSON is an
    /// array of objects, one per row, as [`Printer::rows`] prints them.
    pub fn stream(&mut self, src: &dyn RowSource) -> Result<()> {
        let header = src.header();
        let (n, width) = (src.len(), header.len());
        let mut cell = String::new();
        let text = |v: &serde_json::Value, into: &mut String| {
            into.clear();
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => into.push_str(s),
                other => into.push_str(&other.to_string()),
            }
        };
        match self.format {
            Format::Json => {
                self.text(if n == 0 { "[]\n" } else { "[\n" })?;
                for r in 0..n {
                    let obj: serde_json::Map<String, serde_json::Value> = header
                        .iter()
                        .enumerate()
                        .map(|(c, h)| (h.clone(), src.value(r, c)))
                        .collect();
                    let pretty = serde_json::to_string_pretty(&obj)
                        .map_err(|e| Error::json("a result row", e))?;
                    let mut block = String::with_capacity(pretty.len() + 16);
                    for line in pretty.lines() {
                        block.push_str("  ");
                        block.push_str(line);
                        block.push('\n');
                    }
                    if r + 1 < n {
                        block.insert(block.len() - 1, ',');
                    }
                    self.text(&block)?;
                }
                if n > 0 {
                    self.text("]\n")?;
                }
                Ok(())
            }
            Format::Csv => {
                let line: Vec<String> = header.iter().map(|h| csv_field(h)).collect();
                self.text(&(line.join(",") + "\n"))?;
                let mut out = String::new();
                for r in 0..n {
                    out.clear();
                    for c in 0..width {
                        if c > 0 {
                            out.push(',');
                        }
                        text(&src.value(r, c), &mut cell);
                        out.push_str(&csv_field(&cell));
                    }
                    out.push('\n');
                    self.text(&out)?;
                }
                Ok(())
            }
            Format::Table => {
                let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
                for r in 0..n {
                    for (c, w) in widths.iter_mut().enumerate() {
                        text(&src.value(r, c), &mut cell);
                        *w = (*w).max(cell.chars().count());
                    }
                }
                let mut out = String::new();
                let put = |out: &mut String, c: usize, s: &str| {
                    if c > 0 {
                        out.push_str("  ");
                    }
                    out.push_str(&aligned(c, s, widths[c]));
                };
                for (c, h) in header.iter().enumerate() {
                    put(&mut out, c, h);
                }
                self.text(&(out.trim_end().to_string() + "\n"))?;
                for r in 0..n {
                    out.clear();
                    for c in 0..width {
                        text(&src.value(r, c), &mut cell);
                        put(&mut out, c, &cell);
                    }
                    let end = out.trim_end().len();
                    out.truncate(end);
                    out.push('\n');
                    self.text(&out)?;
                }
                Ok(())
            }
        }
    }

    /// Rows as a table, JSON or CSV: `rows` are already strings for table and CSV; `json` is
    /// the same data, typed, printed for JSON (pretty, one value).
    pub fn rows<T: Serialize>(
        &mut self,
        header: &[&str],
        rows: &[Vec<String>],
        json: &T,
    ) -> Result<()> {
        match self.format {
            Format::Json => self.write(|out| {
                serde_json::to_writer_pretty(&mut *out, json).map_err(std::io::Error::other)?;
                writeln!(out)
            }),
            Format::Csv => self.write(|out| {
                let line = |cells: &mut dyn Iterator<Item = &str>| {
                    cells.map(csv_field).collect::<Vec<_>>().join(",")
                };
                writeln!(out, "{}", line(&mut header.iter().copied()))?;
                for row in rows {
                    writeln!(out, "{}", line(&mut row.iter().map(String::as_str)))?;
                }
                Ok(())
            }),
            Format::Table => self.write(|out| {
                let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
                for row in rows {
                    for (w, f) in widths.iter_mut().zip(row) {
                        *w = (*w).max(f.chars().count());
                    }
                }
                let line = |cells: &mut dyn Iterator<Item = &str>| {
                    cells
                        .zip(&widths)
                        .enumerate()
                        .map(|(i, (c, &w))| aligned(i, c, w))
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_string()
                };
                writeln!(out, "{}", line(&mut header.iter().copied()))?;
                for row in rows {
                    writeln!(out, "{}", line(&mut row.iter().map(String::as_str)))?;
                }
                Ok(())
            }),
        }
    }
}

/// A table cell padded to `w`: numbers read best right-aligned, names left-aligned (the first
/// column is always a name).
fn aligned(column: usize, c: &str, w: usize) -> String {
    if column > 0
        && c.chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_digit() || ch == '-')
    {
        format!("{c:>w$}")
    } else {
        format!("{c:<w$}")
    }
}

/// Rows the printer reads a cell at a time ([`Printer::stream`]).
pub trait RowSource {
    fn header(&self) -> Vec<String>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The cell at `row`, `column`, typed as JSON.
    fn value(&self, row: usize, column: usize) -> serde_json::Value;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(format: Format, header: &[&str], rows: &[Vec<String>]) -> String {
        let mut buf = Vec::new();
        Printer::new(&mut buf, "buffer", format)
            .rows(header, rows, &rows)
            .unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn tables_align_numbers_right_and_csv_quotes() {
        let rows = vec![
            vec!["a".to_string(), "1".into()],
            vec!["bb, c".to_string(), "22".into()],
        ];
        assert_eq!(
            printed(Format::Table, &["name", "n"], &rows),
            "name   n\na       1\nbb, c  22\n"
        );
        assert_eq!(
            printed(Format::Csv, &["name", "n"], &rows),
            "name,n\na,1\n\"bb, c\",22\n"
        );
        assert!(printed(Format::Json, &[], &rows).starts_with("[\n  [\n    \"a\""));
    }

    #[test]
    fn a_reader_that_went_away_is_not_a_failure() {
        struct Gone(usize);
        impl Write for Gone {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                self.0 += 1;
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut gone = Gone(0);
        let mut p = Printer::new(&mut gone, "stdout", Format::Table);
        p.text("one\n").unwrap();
        p.text("two\n").unwrap();
        assert_eq!(gone.0, 1, "nothing is written after the pipe broke");
    }
}
