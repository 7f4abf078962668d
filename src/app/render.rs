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
                        .map(|(i, (c, w))| {
                            // Numbers read best right-aligned, names left-aligned.
                            if i > 0
                                && c.chars()
                                    .next()
                                    .is_some_and(|ch| ch.is_ascii_digit() || ch == '-')
                            {
                                format!("{c:>w$}")
                            } else {
                                format!("{c:<w$}")
                            }
                        })
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
