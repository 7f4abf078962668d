//! Where a NAR waits while its codecs are measured: each codec reads it once more, so it must be
//! readable many times, and a NAR of several GiB must not be held in memory.
//!
//! [`Spool`] collects a NAR as it is packed or decompressed: in memory while it is small, in an
//! unnamed temporary file once it passes [`IN_MEMORY_MAX`]. The file is made with `O_TMPFILE`
//! (tempfile falls back to create-and-unlink elsewhere), so it has no name from the start and the
//! kernel frees it when the last handle closes — after the measurement, on an error, on Ctrl-C or
//! a kill alike; nothing is ever left behind to clean up. A `.nar` file given as input is read
//! where it is, without a copy. [`NarBytes::reader`] opens an independent reader each time
//! (positioned reads, `pread`), so codecs measured at once read the same file side by side.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// NARs up to this size are kept in memory, larger ones in a temporary file. 64 MiB holds the
/// typical package output (a few MiB) and every NAR of the default corpus (at most 16 MiB) — for
/// them nothing touches the disk and each codec reads the bytes without a copy — while the few
/// GiB-sized outputs (CUDA, TeX Live, VM images) cost disk instead of memory: with one NAR per
/// rayon thread at most 64 MiB each, a run on two cores holds at most 128 MiB of NAR.
pub const IN_MEMORY_MAX: u64 = 64 << 20;

/// Bytes read from a NAR file per system call, and written to a spill file per call: 1 MiB makes
/// the per-call cost negligible next to any codec while staying a small, fixed buffer.
pub const IO_CHUNK: usize = 1 << 20;

/// Where NARs wait between measurements, from what size on they wait on disk, and how large a
/// compressed NAR file may decompress.
#[derive(Debug, Clone)]
pub struct Spill {
    /// NARs larger than this many bytes go to a temporary file.
    pub in_memory_max: u64,
    /// The directory of the temporary files.
    pub dir: PathBuf,
    /// A compressed NAR file (`.nar.xz`, `.nar.zst`, `.nar.bz2`, local or from a cache) that
    /// decompresses to more than this many bytes is refused (`--max-nar-mib`): a few hundred
    /// KiB of zstd can expand to GiB of zeros in the spill directory.
    pub max_nar: u64,
}

impl Default for Spill {
    fn default() -> Self {
        Spill {
            in_memory_max: IN_MEMORY_MAX,
            dir: crate::output::scratch_dir(),
            max_nar: super::httpcache::DEFAULT_MAX_NAR_MIB << 20,
        }
    }
}

/// A NAR's bytes, in memory or in a file, readable as many times as needed.
#[derive(Debug)]
pub enum NarBytes {
    Memory(Vec<u8>),
    /// The first `len` bytes of `file`: a temporary file without a name, or a `.nar` read in place.
    File {
        file: File,
        len: u64,
    },
}

impl NarBytes {
    pub fn len(&self) -> u64 {
        match self {
            NarBytes::Memory(v) => v.len() as u64,
            NarBytes::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when they are in memory.
    pub fn in_memory(&self) -> Option<&[u8]> {
        match self {
            NarBytes::Memory(v) => Some(v),
            NarBytes::File { .. } => None,
        }
    }

    /// A reader from the first byte, independent of any other reader of the same bytes.
    pub fn reader(&self) -> Box<dyn BufRead + Send + '_> {
        match self {
            NarBytes::Memory(v) => Box::new(&v[..]),
            NarBytes::File { file, len } => {
                Box::new(BufReader::with_capacity(IO_CHUNK, read_at(file, *len)))
            }
        }
    }

    /// A `.nar` file of `len` bytes: read into memory when small, else read in place.
    pub fn from_file(file: File, len: u64, spill: &Spill) -> io::Result<Self> {
        if len > spill.in_memory_max {
            return Ok(NarBytes::File { file, len });
        }
        let mut v = Vec::with_capacity(len as usize);
        read_at(&file, len).read_to_end(&mut v)?;
        Ok(NarBytes::Memory(v))
    }
}

/// The first `len` bytes of `file` by positioned reads, which leave the file's own offset alone:
/// readers of one file never disturb each other.
pub fn read_at(file: &File, len: u64) -> impl Read + Send + '_ {
    At {
        file,
        pos: 0,
        end: len,
    }
}

/// Positioned reads of `file` from `pos` up to `end`: a file that grows meanwhile is read only
/// as far as it was; one that shrinks ends early, and the NAR's hash check says so.
struct At<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.end - self.pos).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Collects bytes in memory up to the spill threshold, then in an unnamed temporary file.
pub struct Spool {
    max: u64,
    dir: PathBuf,
    mem: Vec<u8>,
    file: Option<BufWriter<File>>,
    len: u64,
}

impl Spool {
    /// A spool for `spill`; `expected`, when known, is the final size: a NAR known to be large
    /// goes to the file from its first byte instead of filling memory first.
    pub fn new(spill: &Spill, expected: Option<u64>) -> io::Result<Self> {
        let mut s = Spool {
            max: spill.in_memory_max,
            dir: spill.dir.clone(),
            mem: Vec::new(),
            file: None,
            len: 0,
        };
        match expected {
            // With no room in memory at all, the temporary file is made at once, so that a bad
            // spill directory is reported before any work, against the NAR being read.
            _ if s.max == 0 => s.spill()?,
            Some(n) if n > s.max => s.spill()?,
            // Bounded by the threshold, so a lying hint cannot make us reserve much.
            Some(n) => s.mem.reserve_exact(n as usize),
            None => {}
        }
        Ok(s)
    }

    /// Moves what is in memory to a new temporary file; from now on everything goes there.
    fn spill(&mut self) -> io::Result<()> {
        let file = tempfile::tempfile_in(&self.dir).map_err(|e| in_dir(&self.dir, e))?;
        let mut w = BufWriter::with_capacity(IO_CHUNK, file);
        w.write_all(&self.mem).map_err(|e| in_dir(&self.dir, e))?;
        self.mem = Vec::new();
        self.file = Some(w);
        Ok(())
    }

    /// The bytes collected.
    pub fn finish(self) -> io::Result<NarBytes> {
        match self.file {
            None => Ok(NarBytes::Memory(self.mem)),
            Some(w) => {
                let file = w
                    .into_inner()
                    .map_err(|e| in_dir(&self.dir, e.into_error()))?;
                Ok(NarBytes::File {
                    file,
                    len: self.len,
                })
            }
        }
    }
}

/// Names the spill directory in an error of the temporary file (a full disk, a missing
/// directory), which would otherwise read as a failure of the NAR being read.
fn in_dir(dir: &Path, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("temporary file in {}: {e}", dir.display()),
    )
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.len + buf.len() as u64 > self.max {
            self.spill()?;
        }
        match &mut self.file {
            Some(w) => {
                let n = w.write(buf).map_err(|e| in_dir(&self.dir, e))?;
                self.len += n as u64;
                Ok(n)
            }
            None => {
                self.mem.extend_from_slice(buf);
                self.len += buf.len() as u64;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(w) => w.flush().map_err(|e| in_dir(&self.dir, e)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spill(max: u64, dir: &Path) -> Spill {
        Spill {
            in_memory_max: max,
            dir: dir.to_path_buf(),
            ..Spill::default()
        }
    }

    fn read_all(b: &NarBytes) -> Vec<u8> {
        let mut v = Vec::new();
        b.reader().read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn small_stays_in_memory_large_goes_to_a_file_without_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut s = Spool::new(&spill(1 << 20, dir.path()), None).unwrap();
        s.write_all(&data).unwrap();
        let b = s.finish().unwrap();
        assert_eq!(b.in_memory(), Some(&data[..]));

        // Past the threshold in the middle of a write: what was in memory moves to the file.
        let mut s = Spool::new(&spill(100_000, dir.path()), None).unwrap();
        for piece in data.chunks(70_000) {
            s.write_all(piece).unwrap();
        }
        let b = s.finish().unwrap();
        assert!(b.in_memory().is_none());
        assert_eq!(b.len(), data.len() as u64);
        // Read twice, and by two readers at once: each sees every byte from the start.
        let (mut r1, mut r2) = (b.reader(), b.reader());
        let mut first = [0u8; 10];
        r1.read_exact(&mut first).unwrap();
        assert_eq!(read_all(&b), data);
        let mut rest = Vec::new();
        r2.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, data);
        assert_eq!(first, data[..10]);
        // The file never had a name in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_known_large_size_spills_at_once_and_a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(&spill(10, dir.path()), Some(11)).unwrap();
        s.write_all(b"abc").unwrap();
        let b = s.finish().unwrap();
        assert!(b.in_memory().is_none());
        assert_eq!(read_all(&b), b"abc");

        let gone = dir.path().join("gone");
        let err = Spool::new(&spill(10, &gone), Some(11)).err().unwrap();
        assert!(err.to_string().contains("gone"), "{err}");
        let mut s = Spool::new(&spill(10, &gone), None).unwrap();
        let err = s.write_all(&[0; 11]).unwrap_err();
        assert!(err.to_string().contains("temporary file in"), "{err}");
    }

    #[test]
    fn a_file_read_in_place_stops_at_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.nar");
        std::fs::write(&p, b"0123456789").unwrap();
        let b = NarBytes::from_file(File::open(&p).unwrap(), 6, &spill(4, dir.path())).unwrap();
        assert!(b.in_memory().is_none());
        assert_eq!(read_all(&b), b"012345");
        let b = NarBytes::from_file(File::open(&p).unwrap(), 6, &spill(64, dir.path())).unwrap();
        assert_eq!(b.in_memory(), Some(&b"012345"[..]));
    }
}
