//! How the process takes memory from the C allocator (glibc's malloc, which Rust's default
//! allocator calls).
//!
//! glibc serves a block of 128 KiB or more with its own `mmap` and gives it back to the
//! kernel on `free`, but after the first such block is freed it raises that threshold (up to
//! 32 MiB) and serves later blocks from its heaps, where a freed block stays resident until
//! everything above it is freed too. Reading a history makes exactly that pattern: millions of
//! rows decoded into batches of a few MiB, then joined into columns and the batches freed.
//! Over ten million steps the freed-but-resident fragments added about a gigabyte to the peak
//! (5.0 GB against 4.1 GB with the threshold fixed; same run time), so the threshold is fixed.

/// The size from which a block gets its own mapping: glibc's own starting value, kept fixed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Fixes the allocator's mmap threshold (see the module doc), unless the user set one with
/// glibc's own `MALLOC_MMAP_THRESHOLD_` variable. Call once, first thing in `main`.
pub fn return_freed_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets a tuning parameter of the allocator; it is called before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}
