//! hydra-bottleneck: a read-only analyzer of a Hydra CI's build history. It reads build steps
//! from Hydra's PostgreSQL database (or an offline snapshot, or a built-in sample), and answers
//! where builder capacity is lost and what each fix would save.
//!
//! The stages, each in its own module: `source` (reading), `dataset` (the frames every stage
//! shares), `window` (which rows), `analysis` (findings), `dispatch` (the queue runner's rules,
//! shared by the sample generator and the `model`), `compress` (codecs), `report` (the
//! cost-reduction report), and the command layer in `cli`.

pub mod alloc;
pub mod analysis;
pub mod cli;
pub mod compress;
pub mod conninfo;
pub mod dataset;
pub mod dispatch;
pub mod error;
pub mod http;
pub mod interrupt;
pub mod machines;
pub mod model;
pub mod nar;
pub mod output;
pub mod progress;
pub mod query;
pub mod readfile;
pub mod redact;
pub mod report;
pub mod source;
pub mod status;
pub mod strings;
/// A throwaway PostgreSQL server for tests and benchmarks.
#[doc(hidden)]
pub mod testpg;
pub mod window;

pub use error::{Error, Result};
