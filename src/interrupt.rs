//! Ctrl-C (and SIGTERM, SIGHUP) as a request to stop at the next safe point, not a kill.
//!
//! A command that writes something calls [`install`] first. From then on SIGINT, SIGTERM
//! (what `timeout`, systemd and CI runners send) and SIGHUP (a closed terminal or SSH session)
//! only set a flag; the command looks at it with [`check`] at points where stopping leaves nothing
//! half-written (between COPY chunks, Parquet files, downloaded chunks, measurements), and
//! [`until`] races an async operation against it. Either way the run ends with
//! [`Error::Interrupted`]: staged outputs are dropped on the way out, complete ones are kept,
//! and `cli` exits with 128 + the signal's number ([`signal`]), what a shell reports for a
//! process that signal ended: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.
//!
//! The handler is installed with `SA_RESETHAND`: a second signal of the same kind gets the default action and
//! ends the process at once, for when a safe point is far off (one long measurement) and the
//! user does not want to wait. Even then no output is half-written, since outputs are staged
//! under temporary names and renamed into place only when complete.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The first signal that asked to stop (0: none yet).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The signals handled as a request to stop; any other keeps its default action.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// How often [`until`] looks at the flag: a fifth of a second is faster than anyone notices,
/// and a wake-up that rare costs nothing next to a read from the network.
const POLL: Duration = Duration::from_millis(200);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: atomic stores. The first signal is the one reported.
    let _ = SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Turns SIGINT, SIGTERM and SIGHUP into the flag, once per process; later calls do nothing.
/// Fails only if the kernel refuses a handler, which it does not for these signals.
pub fn install() -> Result<()> {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in SIGNALS {
        // SAFETY: `sigaction` is given a zeroed struct with a valid handler and an empty mask;
        // the handler only stores to atomics, which is async-signal-safe.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as libc::sighandler_t;
            // SA_RESTART: system calls in flight (a read, a write of a Parquet file) go on
            // rather than fail with EINTR; the flag is seen at the next safe point.
            action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            INSTALLED.store(false, Ordering::SeqCst);
            return Err(Error::system(
                format!("cannot handle {}", name(sig)),
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// The signal that asked to stop, once one did.
pub fn signal() -> Option<libc::c_int> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// A handled signal's name, for messages.
pub fn name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Whether a stop was asked for (Ctrl-C, SIGTERM, SIGHUP) since [`install`].
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A safe point: `Err(Error::Interrupted)` once a stop was asked for.
pub fn check() -> Result<()> {
    if requested() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Resolves once a stop is asked for (never, if it is not).
pub async fn signalled() {
    while !requested() {
        tokio::time::sleep(POLL).await;
    }
}

/// Runs `fut` unless a stop is asked for first: then `fut` is dropped where it stands (a COPY stream,
/// a connection attempt) and the answer is `Err(Error::Interrupted)`.
pub async fn until<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        r = fut => r,
        () = signalled() => Err(Error::Interrupted),
    }
}
