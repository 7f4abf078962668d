//! Writing files and directories safely (how a command's outcome is printed is `app::render`).
//!
//! Files and directories are written beside their destination under a temporary name and renamed
//! into place at the end, so an interrupted or failed run never leaves a half-written output, and
//! an existing output is replaced only when the new one is complete, and only when asked
//! (`--force`): otherwise the final rename refuses to replace anything.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where large temporary files go (the codec benchmark's spooled NARs, a database window's
/// temporary snapshot): `$TMPDIR` if set to an absolute path, else `/var/tmp`, else the
/// system's temporary directory. Not `/tmp` first: on many distributions (Debian 13 among them)
/// it is a tmpfs, held in memory, which would defeat spilling to disk; `/var/tmp` is on disk by
/// convention (the FHS keeps it across reboots). A relative `TMPDIR` is ignored, as it would
/// depend on the working directory.
pub fn scratch_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TMPDIR").map(PathBuf::from)
        && d.is_absolute()
    {
        return d;
    }
    let var_tmp = Path::new("/var/tmp");
    if var_tmp.is_dir() {
        return var_tmp.to_path_buf();
    }
    std::env::temp_dir()
}

/// A temporary sibling of `dest`, unique to this process.
fn temp_sibling(dest: &Path, tag: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    dest.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Writes `bytes` to `dest` atomically (temporary file, fsync, rename), replacing a file there.
pub fn write_file_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    write_file_staged(dest, bytes, true)
}

/// Writes `bytes` to `dest` atomically, and only if nothing is there: an existing `dest` is
/// refused, at the start and at the final rename, naming `--force`.
pub fn write_file_new(dest: &Path, bytes: &[u8]) -> Result<()> {
    let exists = || Error::Exists {
        target: dest.display().to_string(),
        reason: "exists; choose another file or pass --force to replace it".into(),
    };
    if std::fs::symlink_metadata(dest).is_ok() {
        return Err(exists());
    }
    write_file_staged(dest, bytes, false).map_err(|e| match e {
        Error::Io { source, .. } if is_taken(&source) => exists(),
        other => other,
    })
}

fn write_file_staged(dest: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    let tmp = temp_sibling(dest, "partial");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if replace {
            std::fs::rename(&tmp, dest)
        } else {
            rename_no_replace(&tmp, dest)
        }
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

/// What a staged output does about a destination that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refused unless it is an empty directory: at the start, and again at the commit, which
    /// never replaces anything (so what appears there during the run, a second run's output
    /// or a directory someone made, is left as it is and the run fails).
    Refuse,
    /// Replaced, only once the new output is complete (`--force`).
    Replace,
    /// The destination, or if that is taken the first free `NAME-2`, `NAME-3`, …, taken at
    /// the commit without replacing anything: two runs to the same default path end in two
    /// directories.
    NextFree,
}

/// How many numbered names [`Existing::NextFree`] tries before giving up: far more reports
/// of one source on one day than anyone writes, and few enough that a directory full of
/// them fails in a moment instead of trying names for ever.
const MAX_NUMBERED: u32 = 10_000;

/// Renames `from` to `to` unless `to` exists, in one step, so that nothing that appears at `to`
/// meanwhile is ever replaced; an existing `to` gives `AlreadyExists` (or, on the fallback for
/// a directory, `ENOTEMPTY`).
///
/// Linux does this with `renameat2(RENAME_NOREPLACE)`. Where the filesystem or kernel lacks
/// it (`EINVAL`, `ENOSYS`, `EOPNOTSUPP`: older NFS, some FUSE filesystems), a file is
/// hard-linked and unlinked (a link never replaces), and a directory is renamed plainly:
/// `rename(2)` replaces only an empty directory, so nothing with contents is lost either way.
pub fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            std::ffi::CString::new(p.as_os_str().as_bytes())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        };
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: both paths are NUL-terminated C strings that live across the call; the
        // system call only reads them. Called through `syscall` rather than glibc's wrapper,
        // which older C libraries lack.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if !matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
        ) {
            return Err(e);
        }
    }
    if std::fs::symlink_metadata(from)?.is_dir() {
        std::fs::rename(from, to)
    } else {
        std::fs::hard_link(from, to)?;
        std::fs::remove_file(from)
    }
}

/// Whether a rename failed because its destination exists.
fn is_taken(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::AlreadyExists
        || matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY))
}

/// Moves the directory `from` to `to` without replacing anything but an empty directory
/// (which `--out` accepts: `mkdir out` first is common).
fn place_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    match rename_no_replace(from, to) {
        Err(e) if is_taken(&e) && is_empty_dir(to) => {
            // `remove_dir` removes only an empty directory, and the rename after it still
            // refuses whatever appears in between.
            std::fs::remove_dir(to).map_err(|_| e)?;
            rename_no_replace(from, to)
        }
        other => other,
    }
}

/// True for a directory (not a link to one) with no entries.
fn is_empty_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
        && std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

/// A directory being written: files go into a temporary sibling, which [`StagedDir::commit`]
/// moves to the destination. Dropped without commit, it removes itself and the parent
/// directories it made, so a run that fails (a database that refuses the connection, Ctrl-C)
/// leaves the file system as it found it.
pub struct StagedDir {
    dest: PathBuf,
    tmp: PathBuf,
    existing: Existing,
    committed: bool,
    /// The parent directories made for the destination, innermost first.
    made_parents: Vec<PathBuf>,
}

impl StagedDir {
    /// Refuses a destination that exists and is not an empty directory, unless `existing`
    /// says to replace it or to take the next free name.
    pub fn new(dest: &Path, existing: Existing) -> Result<Self> {
        if existing == Existing::Refuse
            && let Ok(mut entries) = std::fs::read_dir(dest)
            && entries.next().is_some()
        {
            return Err(Error::Exists {
                target: dest.display().to_string(),
                reason: "exists and is not empty; choose another directory or pass --force to \
                         replace it"
                    .into(),
            });
        }
        if existing != Existing::NextFree && dest.exists() && !dest.is_dir() {
            return Err(Error::Exists {
                target: dest.display().to_string(),
                reason: "exists and is not a directory".into(),
            });
        }
        let made_parents = match dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => make_parents(parent)?,
            None => Vec::new(),
        };
        // From here on a failure drops the half-made value, which takes the parents away again.
        let staged = StagedDir {
            dest: dest.to_path_buf(),
            tmp: temp_sibling(dest, "partial"),
            existing,
            committed: false,
            made_parents,
        };
        let tmp = &staged.tmp;
        if tmp.exists() {
            std::fs::remove_dir_all(tmp).map_err(|e| Error::io(tmp, e))?;
        }
        std::fs::create_dir(tmp).map_err(|e| Error::io(tmp, e))?;
        Ok(staged)
    }

    /// Where to write the files now.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the finished directory into place and says where: the destination, or with
    /// [`Existing::NextFree`] the name it took. Only [`Existing::Replace`] replaces an old
    /// output, and only now.
    pub fn commit(mut self) -> Result<PathBuf> {
        let dest = match self.existing {
            Existing::Refuse => {
                place_dir(&self.tmp, &self.dest).map_err(|e| {
                    if is_taken(&e) {
                        Error::Exists {
                            target: self.dest.display().to_string(),
                            reason: "appeared while this run was writing and was left as it \
                                     is; choose another directory or pass --force to replace it"
                                .into(),
                        }
                    } else {
                        Error::io(&self.dest, e)
                    }
                })?;
                self.dest.clone()
            }
            Existing::NextFree => self.commit_next_free()?,
            Existing::Replace => self.commit_replacing()?,
        };
        self.committed = true;
        Ok(dest)
    }

    fn commit_next_free(&self) -> Result<PathBuf> {
        let name = self
            .dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        for n in 1..=MAX_NUMBERED {
            let candidate = if n == 1 {
                self.dest.clone()
            } else {
                self.dest.with_file_name(format!("{name}-{n}"))
            };
            match place_dir(&self.tmp, &candidate) {
                Ok(()) => return Ok(candidate),
                Err(e) if is_taken(&e) => continue,
                Err(e) => return Err(Error::io(&candidate, e)),
            }
        }
        Err(Error::Exists {
            target: self.dest.display().to_string(),
            reason: format!(
                "and {MAX_NUMBERED} numbered names after it are taken; choose a directory with --out"
            ),
        })
    }

    fn commit_replacing(&self) -> Result<PathBuf> {
        let old = temp_sibling(&self.dest, "old");
        let had_old = std::fs::symlink_metadata(&self.dest).is_ok();
        if had_old {
            std::fs::rename(&self.dest, &old).map_err(|e| Error::io(&self.dest, e))?;
        }
        if let Err(e) = place_dir(&self.tmp, &self.dest) {
            if had_old {
                let _ = rename_no_replace(&old, &self.dest);
            }
            return Err(Error::io(&self.dest, e));
        }
        if had_old {
            let removed = if std::fs::symlink_metadata(&old).is_ok_and(|m| m.is_dir()) {
                std::fs::remove_dir_all(&old)
            } else {
                std::fs::remove_file(&old)
            };
            removed.map_err(|e| Error::io(&old, e))?;
        }
        Ok(self.dest.clone())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
            // `remove_dir` takes only an empty directory: one that something else wrote into
            // meanwhile stays, and so do its parents.
            for dir in &self.made_parents {
                if std::fs::remove_dir(dir).is_err() {
                    break;
                }
            }
        }
    }
}

/// Makes `dir` and whichever of its parents are missing, as `create_dir_all` does, and returns
/// the directories it made, innermost first, so that a run that fails can take them away.
fn make_parents(dir: &Path) -> Result<Vec<PathBuf>> {
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err())
        .map(Path::to_path_buf)
        .collect();
    if let Err(e) = std::fs::create_dir_all(dir) {
        for made in &missing {
            let _ = std::fs::remove_dir(made);
        }
        return Err(Error::io(dir, e));
    }
    Ok(missing)
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
            StagedDir::new(&dest, Existing::Refuse).is_err(),
            "a full directory needs --force"
        );
        {
            let staged = StagedDir::new(&dest, Existing::Replace).unwrap();
            std::fs::write(staged.path().join("new"), "new").unwrap();
            // dropped without commit: the old output survives, the partial one is gone
        }
        assert!(dest.join("old").exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
        let staged = StagedDir::new(&dest, Existing::Replace).unwrap();
        std::fs::write(staged.path().join("new"), "new").unwrap();
        staged.commit().unwrap();
        assert!(dest.join("new").exists() && !dest.join("old").exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }

    /// A second run, or someone, creates the destination while a run without --force writes:
    /// the commit leaves it as it is and fails, and the staged directory goes.
    #[test]
    fn staged_dir_never_replaces_what_appeared_meanwhile() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        let staged = StagedDir::new(&dest, Existing::Refuse).unwrap();
        std::fs::write(staged.path().join("new"), "new").unwrap();
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("theirs"), "theirs").unwrap();
        let err = staged.commit().unwrap_err().to_string();
        assert!(err.contains("appeared while this run was writing"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dest.join("theirs")).unwrap(),
            "theirs"
        );
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 1);
        assert_eq!(
            std::fs::read_dir(root.path()).unwrap().count(),
            1,
            "no staged leftover"
        );
        // A file appearing there is refused the same way.
        std::fs::remove_dir_all(&dest).unwrap();
        let staged = StagedDir::new(&dest, Existing::Refuse).unwrap();
        std::fs::write(&dest, "a file").unwrap();
        assert!(staged.commit().is_err());
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "a file");
    }

    /// A run that fails before its commit takes away the parents it made for the destination,
    /// and only those; committed, they stay.
    #[test]
    fn staged_dir_dropped_leaves_no_parent_it_made() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("a")).unwrap();
        let dest = root.path().join("a/b/c/out");
        {
            let staged = StagedDir::new(&dest, Existing::Refuse).unwrap();
            assert!(root.path().join("a/b/c").is_dir());
            std::fs::write(staged.path().join("new"), "new").unwrap();
        }
        assert!(root.path().join("a").is_dir(), "it was there before");
        assert!(!root.path().join("a/b").exists(), "made, then taken away");
        // Something else wrote into a made parent meanwhile: that parent and above stay.
        {
            let _staged = StagedDir::new(&dest, Existing::Refuse).unwrap();
            std::fs::write(root.path().join("a/b/theirs"), "theirs").unwrap();
        }
        assert!(root.path().join("a/b/theirs").exists());
        assert!(!root.path().join("a/b/c").exists());
        std::fs::remove_file(root.path().join("a/b/theirs")).unwrap();
        std::fs::remove_dir(root.path().join("a/b")).unwrap();
        let staged = StagedDir::new(&dest, Existing::Refuse).unwrap();
        assert_eq!(staged.commit().unwrap(), dest);
        assert!(dest.is_dir());
    }

    /// `mkdir out` before `--out out` is fine: an empty directory is taken over.
    #[test]
    fn staged_dir_takes_an_empty_directory() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        let staged = StagedDir::new(&dest, Existing::Refuse).unwrap();
        std::fs::write(staged.path().join("new"), "new").unwrap();
        assert_eq!(staged.commit().unwrap(), dest);
        assert!(dest.join("new").exists());
    }

    /// Two runs to the same default path: the second to finish takes the next free name.
    #[test]
    fn staged_dir_next_free_takes_a_numbered_name() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("2025-06-02-sample");
        let staged = StagedDir::new(&dest, Existing::NextFree).unwrap();
        std::fs::write(staged.path().join("second"), "").unwrap();
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("first"), "").unwrap();
        let got = staged.commit().unwrap();
        assert_eq!(got, root.path().join("2025-06-02-sample-2"));
        assert!(got.join("second").exists() && dest.join("first").exists());
    }

    #[test]
    fn rename_no_replace_refuses_an_existing_file() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        assert!(is_taken(&rename_no_replace(&a, &b).unwrap_err()));
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b");
        std::fs::remove_file(&b).unwrap();
        rename_no_replace(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "a");
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
