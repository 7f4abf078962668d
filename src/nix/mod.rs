//! The formats and protocols of Nix that this tool reads and writes, each as Nix defines it and
//! nothing about what the rest of the tool does with them. No stage is imported here (source,
//! analysis, model, report, compress); only the shared helpers for errors, HTTP, bounded file
//! reads and redaction. `compress` and the machines-file readers build on it:
//!
//! - [`drv`]: store derivations (`.drv`, ATerm), whose input derivations are a step's true
//!   dependencies;
//! - [`nar`]: Nix archives — packing a tree as `nix-store --dump` does, validating one as
//!   strictly as Nix, and the NarHash;
//! - [`narinfo`]: the `.narinfo` a binary cache keeps for each store path, and how its NAR file
//!   is compressed ([`NarCompression`]);
//! - [`store_path`]: store paths and their hash part;
//! - [`binary_cache`]: a binary cache read over HTTP (nix-cache-info, narinfos, NAR files);
//! - [`machines`]: the build machines file (`/etc/nix/machines`, Hydra's `build_machines`).
//!
//! Facts and upstream references: docs/hydra.md §4 (machines file) and §6 (NAR, narinfo,
//! binary caches).

pub mod binary_cache;
pub mod drv;
pub mod graph;
pub mod machines;
pub mod nar;
pub mod narinfo;
pub mod store_path;

pub use machines::BuildMachine;
pub use narinfo::{NarCompression, NarInfo};
