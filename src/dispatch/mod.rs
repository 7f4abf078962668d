//! The queue runner's rules, written once: used by the sample generator (which simulates a farm
//! to write a history) and by the model (which replays a history under other settings), so the
//! two cannot drift apart. Each rule names the upstream function it follows (NixOS/hydra, the
//! C++ runner at a9581bcd, the Rust runner at 14332fbf); docs/hydra.md §2 and §4 describe them.
//!
//! - [`step`]: the order of runnable steps (the C++ runner's, and the Rust runner's `Legacy`,
//!   `WithRdeps` and `WithCriticalPath`), as key structs.
//! - [`machine`]: which machine may build a step, and the order free machines are tried in.
//! - [`share`]: jobset share accounting over the scheduling window.
//! - [`backoff`]: retrying aborted steps, disabling failing machines, and why each constant is
//!   what it is.
//! - [`queue`]: the dispatcher's state and the decision it makes, machine-major as the C++
//!   runner's `doDispatch`.
//! - [`semaphore`]: the waits after dispatch, for a machine's send lock and for a local worker
//!   slot of the queue-runner host.
//! - [`status`]: the build and step status codes, as one enum.
//! - [`ideal`]: what a dispatcher with no delay would have started at an instant: the measure
//!   of dispatch loss, for every source that estimates it.
//! - [`timer`]: the Rust dispatcher's trigger timer.
//! - [`agenda`]: the simulations' clock — events earliest first, ties in scheduling order.
//!
//! Nothing here knows time other than as milliseconds given by the caller, nor draws a random
//! number: jitter is drawn by the caller, so each simulation keeps its own random streams.

pub mod agenda;
pub mod backoff;
pub mod ideal;
pub mod machine;
pub mod queue;
pub mod semaphore;
pub mod share;
pub mod status;
pub mod step;
pub mod timer;

pub use agenda::Agenda;
pub use backoff::MachineHealth;
pub use ideal::Ideal;
pub use machine::{FreeFn, MachineKey, MachineSort};
pub use queue::Dispatcher;
pub use semaphore::FifoSemaphore;
pub use share::JobsetShares;
pub use status::{BuildStatus, StepState};
pub use step::{AnyStepKey, CppStepKey, StepFacts, StepKey, StepSort};
pub use timer::DispatchTimer;
