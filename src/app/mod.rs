//! The commands as library functions: each takes typed options (plain structs, nothing of the
//! command line's parser) and returns a typed outcome, which prints itself through
//! [`render::Render`] in the format asked for. The binary's `cli` only parses arguments into
//! these options, calls one function, and prints its outcome on stdout.
//!
//! What every command shares is a [`Context`]: where the history comes from and how it is read,
//! progress on stderr, and where notes go. What several commands read the same way (the machines
//! file, a cost file, a saved codec measurement, the note that the built-in sample is used) is
//! in `inputs`, once.
//!
//! A command that writes something installs [`crate::interrupt`]'s handler, as the binary
//! always did: from then on Ctrl-C ends it at the next safe point with
//! [`crate::Error::Interrupted`].

pub mod analyze;
pub mod compress;
mod inputs;
pub mod query;
pub mod render;
pub mod report;
pub mod sample;
pub mod simulate;
pub mod snapshot;
pub mod status;

use std::time::Duration;

use crate::dataset::Runner;
use crate::progress::Progress;
use crate::sample::SampleSpec;
use crate::source::{ReadOptions, SourceSpec};
use crate::window::WindowSpec;

pub use inputs::SeriesSource;
pub use render::{Format, Printer, Render};

/// The bound on every database statement when none is given (`--statement-timeout`), as
/// [`ReadOptions`]'s default, whose comment gives the reason.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(900);

/// What every command is given besides its own options.
pub struct Context<'a> {
    /// Where the history comes from: a database, a snapshot, or the built-in sample.
    pub source: SourceSpec,
    /// Which rows of the history.
    pub window: WindowSpec,
    /// Which queue runner wrote the steps; detected from the rows when `None`.
    pub runner: Option<Runner>,
    /// With `runner` Rust: the instant the history moved to it from the C++ runner.
    pub runner_switch: Option<i64>,
    /// Upper bound on every database statement.
    pub statement_timeout: Duration,
    /// Bars and spinners while a command runs.
    pub progress: Progress,
    /// Where notes go (what was assumed, what was written); the binary prints them on stderr
    /// unless `--quiet`.
    pub note: &'a (dyn Fn(&str) + Sync),
}

impl Context<'static> {
    /// A context reading `source` whole, with no progress and no notes (library callers, tests).
    pub fn new(source: SourceSpec) -> Self {
        Context {
            source,
            window: WindowSpec::default(),
            runner: None,
            runner_switch: None,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            progress: Progress::hidden(),
            note: &|_| {},
        }
    }

    /// [`Context::new`] on the built-in sample workload.
    pub fn sample() -> Self {
        Context::new(SourceSpec::Sample(SampleSpec::default()))
    }
}

impl Context<'_> {
    fn note(&self, msg: &str) {
        (self.note)(msg)
    }

    /// How to read the source; `omit`: the columns the command never reads.
    fn read_options(&self, omit: crate::dataset::Omit) -> ReadOptions {
        ReadOptions {
            window: self.window,
            runner: self.runner,
            runner_switch: self.runner_switch,
            statement_timeout: self.statement_timeout,
            progress: self.progress,
            omit,
            tables_only: false,
            truth: true,
            omit_with_truth: None,
            ..ReadOptions::default()
        }
    }
}
