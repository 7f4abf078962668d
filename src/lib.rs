//! hydra-bottleneck: a read-only analyzer of a Hydra CI's build history. It reads build steps
//! from Hydra's PostgreSQL database (or an offline snapshot, or a built-in sample), and answers
//! where builder capacity is lost and what each fix would save.
//!
//! The stages, each in its own module: `source` reads (PostgreSQL, snapshots) into a `dataset`
//! (the frames every stage shares) filtered by one `window` rule; `sample` generates a farm's
//! history and `model` replays one, both on the queue runner's rules in `dispatch`; `analysis`
//! computes findings, `compress` measures codecs on Nix's formats (`nix`), `status` reads the
//! runner's own documents, and `report` writes the cost-reduction report. The commands are
//! functions in `app`; the command line itself is the binary's (src/cli.rs), so nothing here
//! knows clap. ARCHITECTURE.md draws the pipeline and says where each kind of change goes.

pub mod alloc;
pub mod analysis;
pub mod app;
pub mod compress;
pub mod conninfo;
pub mod dataset;
pub mod dispatch;
pub mod error;
pub mod http;
pub mod interrupt;
pub mod interval;
pub mod model;
pub mod nix;
pub mod output;
pub mod progress;
pub mod query;
pub mod readfile;
pub mod redact;
pub mod report;
pub mod sample;
pub mod source;
pub mod status;
pub mod strings;
/// The tests' throwaway PostgreSQL server (tests/support/pg.rs), for the unit tests that need
/// one; it is not part of the library.
#[cfg(test)]
#[path = "../tests/support/pg.rs"]
#[allow(dead_code)] // the unit tests use a few of its helpers
mod testpg;
// tests/support/pg.rs names the library as the integration tests and benchmarks see it.
#[cfg(test)]
extern crate self as hydra_bottleneck;
pub mod window;

pub use error::{Error, Result};
