//! CPU time and memory of this process and thread, from the kernel (Linux).
//!
//! Codec speeds are reported per core of CPU time, not per second of wall time: when rayon runs
//! two measurements at once, or another build shares the machine, wall time says little about
//! what a codec costs, while the CPU time of the thread that ran it says exactly that.

use std::time::Duration;

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// CPU time (user + system) consumed by the calling thread so far.
pub fn thread_cpu() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time consumed by the whole process so far, all threads included (also threads a codec
/// library starts itself, which `thread_cpu` cannot see).
pub fn process_cpu() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// The process's peak resident memory in bytes so far.
pub fn peak_rss() -> u64 {
    // SAFETY: an all-zero rusage is a valid value of the plain C struct getrusage fills in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid and writable; RUSAGE_SELF is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return 0;
    }
    // Linux reports ru_maxrss in KiB.
    (ru.ru_maxrss.max(0) as u64) * 1024
}
