//! The one way the tests run the built binary: [`hb`] starts a builder (arguments, environment,
//! working directory, standard input, a bound on the run's time), [`Hb::run`] runs it to its
//! end and returns its exit status, stdout and stderr, and [`Hb::spawn`] leaves it running for
//! a test that signals it or watches it work.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary Cargo built for these tests.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_hydra-bottleneck");

/// A run of the binary being set up.
pub(crate) struct Hb {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    within: Option<Duration>,
}

/// A run of the binary without the caller's `PGPASSWORD` or Prometheus credentials (a test
/// that wants one sets it) or `HYDRA_BOTTLENECK_LOG` (its log lines would break the one-line
/// error contract the tests check).
pub(crate) fn hb() -> Hb {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("PGPASSWORD")
        .env_remove("HYDRA_BOTTLENECK_PROMETHEUS_TOKEN")
        .env_remove("HYDRA_BOTTLENECK_PROMETHEUS_USER")
        .env_remove("HYDRA_BOTTLENECK_PROMETHEUS_PASSWORD")
        .env_remove("HYDRA_BOTTLENECK_LOG");
    Hb {
        cmd,
        stdin: None,
        stdout: None,
        stderr: None,
        within: None,
    }
}

/// `hb().args(args).run()`: the binary run with `args` to its end.
pub(crate) fn run(args: &[&str]) -> Output {
    hb().args(args).run()
}

/// Sends the signal named `sig` (`INT`, `TERM`, `HUP`) to a spawned run, as a user's Ctrl-C
/// or a service manager would.
pub(crate) fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

impl Hb {
    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Hb {
        self.cmd.arg(arg);
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Hb
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub(crate) fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Hb {
        self.cmd.env(key, value);
        self
    }

    pub(crate) fn current_dir(mut self, dir: impl AsRef<Path>) -> Hb {
        self.cmd.current_dir(dir);
        self
    }

    /// Gives the run these bytes on its standard input (otherwise it reads nothing there).
    pub(crate) fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Hb {
        self.stdin = Some(bytes.into());
        self
    }

    /// Sends stdout there instead of collecting it.
    pub(crate) fn stdout(mut self, to: impl Into<Stdio>) -> Hb {
        self.stdout = Some(to.into());
        self
    }

    /// Sends stderr there instead of collecting it.
    pub(crate) fn stderr(mut self, to: impl Into<Stdio>) -> Hb {
        self.stderr = Some(to.into());
        self
    }

    /// Fails the test (after killing the run) if the run is still going after `bound`: a hang
    /// shows as a failure, not as a test that never ends.
    pub(crate) fn within(mut self, bound: Duration) -> Hb {
        self.within = Some(bound);
        self
    }

    /// Starts the run and leaves it going; what is not redirected is piped, for
    /// `wait_with_output`.
    pub(crate) fn spawn(mut self) -> Child {
        let stdin = if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = self
            .cmd
            .stdin(stdin)
            .stdout(self.stdout.take().unwrap_or_else(Stdio::piped))
            .stderr(self.stderr.take().unwrap_or_else(Stdio::piped))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", self.cmd));
        if let (Some(bytes), Some(mut pipe)) = (self.stdin.take(), child.stdin.take()) {
            // From a thread of its own: a run that writes before it has read all of its input
            // must not wait on a test that waits on it.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        child
    }

    /// Runs to the end (or to the bound set by [`Hb::within`]) and returns the exit status and
    /// what the run wrote.
    pub(crate) fn run(self) -> Output {
        let within = self.within;
        let what = format!("{:?}", self.cmd);
        let mut child = self.spawn();
        let Some(bound) = within else {
            return child
                .wait_with_output()
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
        };
        // Both pipes are read while the run goes, so that a run writing much is not taken for
        // one that hangs.
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for the binary") {
                break status;
            }
            if started.elapsed() > bound {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} hung (still running after {bound:?})");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Output {
            status,
            stdout: stdout.join().expect("reading stdout"),
            stderr: stderr.join().expect("reading stderr"),
        }
    }
}
