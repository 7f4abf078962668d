//! hydra-bottleneck: a read-only analyzer of a Hydra CI's build history. It reads build steps
//! from Hydra's PostgreSQL database (or an offline snapshot, or a built-in sample), and answers
//! where builder capacity is lost and what each fix would save.
//!
//! The stages, each in its own module: `source` (reading), `dataset` (the frames every stage
//! shares), `window` (which rows), `analysis` (findings), `dispatch` (the queue runner's rules,
//! shared by the sample generator and the `model`), `compress` (codecs), `report` (the
//! cost-reduction report), and the commands as functions in `app`. The command line itself is
//! the binary's (src/cli.rs): nothing here knows clap. `nix` holds Nix's formats (NAR, narinfo,
//! binary caches, the machines file); `interval` the figures model and report share.

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
