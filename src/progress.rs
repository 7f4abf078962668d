//! Progress on stderr: bars and spinners only when stderr is a terminal and `--quiet` was not
//! given, so that logs and pipes stay clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// No progress output at all (library callers, tests, benchmarks).
    pub fn hidden() -> Self {
        Progress { enabled: false }
    }

    /// A spinner counting rows with their rate, for reads whose total is unknown.
    pub fn rows(&self, what: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner().with_message(what.to_string());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg}: {human_pos} rows ({per_sec}, {elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        // A tick every 100 ms is smooth to the eye and costs nothing next to the rows.
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    /// A bar counting items of a known number (requests, files).
    pub fn items(&self, what: &str, total: u64) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total).with_message(what.to_string());
        bar.set_style(
            ProgressStyle::with_template("{msg}: {bar:30} {human_pos}/{human_len} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    /// A bar counting bytes towards `total` (downloads), with rate and time left.
    pub fn bytes(&self, what: &str, total: u64) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total).with_message(what.to_string());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg}: {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }
}

/// One stage of a longer run: a spinner while it runs, then a line with how long it took.
pub struct Stage {
    bar: ProgressBar,
    what: String,
    start: std::time::Instant,
    enabled: bool,
}

impl Progress {
    /// Starts a stage named `what` ("reading the sample", "drawing charts").
    pub fn stage(&self, what: &str) -> Stage {
        let bar = if self.enabled {
            let bar = ProgressBar::new_spinner().with_message(what.to_string());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            ProgressBar::hidden()
        };
        tracing::debug!("{what}: begins ({})", memory());
        Stage {
            bar,
            what: what.to_string(),
            start: std::time::Instant::now(),
            enabled: self.enabled,
        }
    }
}

impl Stage {
    /// Ends the stage, leaving one line behind on a terminal.
    pub fn done(self) {
        self.bar.finish_and_clear();
        tracing::debug!(
            "{}: done in {:.1} s ({})",
            self.what,
            self.start.elapsed().as_secs_f64(),
            memory()
        );
        if self.enabled {
            eprintln!(
                "  {} ({:.1} s)",
                self.what,
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

/// When the process started its work: [`mark`] gives each stage's end from it. Set by the
/// first call of [`started`] (the command line's logging set-up) or, failing that, of [`mark`].
static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Takes this instant as the start [`mark`] counts from, if none was taken yet.
pub fn started() {
    START.get_or_init(std::time::Instant::now);
}

/// Logs at debug level that `what` is done, when (seconds since [`started`]) and with the
/// process's memory then: the parts of a stage that has several (`HYDRA_BOTTLENECK_LOG=debug`),
/// where a long run's time and memory go, without a profiler.
pub fn mark(what: &str) {
    let at = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64();
    tracing::debug!("{what}: done at {at:.2} s ({})", memory());
}

/// The process's resident memory now and at its peak, from `/proc/self/status` (`VmRSS`,
/// `VmHWM`), for the debug log of each stage: where a long run's memory goes, without a
/// profiler. Empty where there is no such file.
fn memory() -> String {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return String::new();
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or_else(|| "?".into(), |kb| format!("{} MiB", kb / 1024))
    };
    format!("resident {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}
