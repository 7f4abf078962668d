//! Writing results safely and in the format asked for.
//!
//! Files and directories are written beside their destination under a temporary name and renamed
//! into place at the end, so an interrupted or failed run never leaves a half-written output, and
//! an existing output is replaced only when the new one is complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// `--format`: how data goes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

/// A temporary sibling of `dest`, unique to this process.
fn temp_sibling(dest: &Path, tag: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    dest.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Writes `bytes` to `dest` atomically (temporary file, fsync, rename).
pub fn write_file_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_sibling(dest, "partial");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(dest, e)
    })
}

/// True for a relative, `/`-separated path without `..`, `.` or empty components, and without
/// `\\` (a separator on Windows): joined to a directory, it names something inside it. For
/// names read from files others wrote (a snapshot's manifest, a binary cache's narinfo), which
/// must not reach outside the directory they describe.
pub fn is_relative_inside(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains(['\\', '\0'])
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != ".." && c != ".")
}

/// A directory being written: files go into a temporary sibling, which [`StagedDir::commit`]
/// moves to the destination. Dropped without commit, it removes itself.
pub struct StagedDir {
    dest: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Refuses a destination that exists and is not empty unless `replace` is set.
    pub fn new(dest: &Path, replace: bool) -> Result<Self> {
        if let Ok(mut entries) = std::fs::read_dir(dest)
            && entries.next().is_some()
            && !replace
        {
            return Err(Error::Invalid(format!(
                "{} exists and is not empty; choose another directory or pass --force to replace it",
                dest.display()
            )));
        }
        if dest.exists() && !dest.is_dir() {
            return Err(Error::Invalid(format!(
                "{} exists and is not a directory",
                dest.display()
            )));
        }
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let tmp = temp_sibling(dest, "partial");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(StagedDir {
            dest: dest.to_path_buf(),
            tmp,
            committed: false,
        })
    }

    /// Where to write the files now.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the finished directory into place, replacing an old one only now.
    pub fn commit(mut self) -> Result<PathBuf> {
        let old = temp_sibling(&self.dest, "old");
        let had_old = self.dest.exists();
        if had_old {
            std::fs::rename(&self.dest, &old).map_err(|e| Error::io(&self.dest, e))?;
        }
        if let Err(e) = std::fs::rename(&self.tmp, &self.dest) {
            if had_old {
                let _ = std::fs::rename(&old, &self.dest);
            }
            return Err(Error::io(&self.dest, e));
        }
        self.committed = true;
        if had_old {
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        Ok(self.dest.clone())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Prints rows as a table, JSON (an array of objects) or CSV. `rows` are already strings for
/// table and CSV; `json` is the same data, typed.
pub fn print_rows<T: Serialize>(
    format: Format,
    header: &[&str],
    rows: &[Vec<String>],
    json: &T,
) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let res = match format {
        Format::Json => serde_json::to_writer_pretty(&mut out, json)
            .map_err(std::io::Error::other)
            .and_then(|_| writeln!(out)),
        Format::Csv => {
            let mut r = writeln!(
                out,
                "{}",
                header
                    .iter()
                    .map(|h| csv_field(h))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            for row in rows {
                r = r.and_then(|_| {
                    writeln!(
                        out,
                        "{}",
                        row.iter()
                            .map(|f| csv_field(f))
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                });
            }
            r
        }
        Format::Table => {
            let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
            for row in rows {
                for (w, f) in widths.iter_mut().zip(row) {
                    *w = (*w).max(f.chars().count());
                }
            }
            let line = |cells: Vec<&str>| {
                cells
                    .iter()
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
            let mut r = writeln!(out, "{}", line(header.to_vec()));
            for row in rows {
                r = r.and_then(|_| {
                    writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))
                });
            }
            r
        }
    };
    match res {
        // A closed pipe (`| head`) is the reader's choice, not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| Error::io("stdout", e)),
    }
}

/// One CSV field, quoted when it must be (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_dir_replaces_only_on_commit() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("old"), "old").unwrap();
        assert!(
            StagedDir::new(&dest, false).is_err(),
            "a full directory needs --force"
        );
        {
            let staged = StagedDir::new(&dest, true).unwrap();
            std::fs::write(staged.path().join("new"), "new").unwrap();
            // dropped without commit: the old output survives, the partial one is gone
        }
        assert!(dest.join("old").exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
        let staged = StagedDir::new(&dest, true).unwrap();
        std::fs::write(staged.path().join("new"), "new").unwrap();
        staged.commit().unwrap();
        assert!(dest.join("new").exists() && !dest.join("old").exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn relative_names_stay_inside() {
        for ok in [
            "manifest.json",
            "steps/day=2025-06-02/part-0.parquet",
            "nar/x.nar.xz",
        ] {
            assert!(is_relative_inside(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/..",
            "..",
            ".",
            "./a",
            "a//b",
            "a/",
            "a\\..\\b",
            "a\0b",
        ] {
            assert!(!is_relative_inside(bad), "{bad}");
        }
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
