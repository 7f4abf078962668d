//! The derivation graph as far as a store holds it: for each derivation asked about, the
//! derivations its `.drv` names in `inputDrvs`. Filled from a store directory (`--drv-store`,
//! `source::drvstore`) or by the sample generator, which knows its graph; the ledger joins it with
//! the steps to learn when each step became runnable (`analysis::graph`).

use std::collections::HashMap;

/// Input derivations per derivation path, with how much of what was asked was found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrvGraph {
    /// Where the `.drv` files were read ("/nix/store", "the sample's derivations").
    pub source: String,
    /// `drvPath` → the `drvPath`s of its `inputDrvs`, full store paths as the steps name them.
    pub inputs: HashMap<String, Vec<String>>,
    /// `drvPath` → its `requiredSystemFeatures`, sorted and joined with `,` (as the runners name
    /// a machine type after them); only derivations that require some.
    pub features: HashMap<String, String>,
    /// Distinct derivations asked about.
    pub asked: usize,
    /// Of those, how many `.drv` files were found and parsed.
    pub found: usize,
    /// Of those, how many had no `.drv` file in the directory (or a name that is no store
    /// path of one, such as schema 86's placeholders): built before the store was kept, or
    /// collected since.
    pub missing: usize,
    /// Of those, how many `.drv` files could not be read or parsed (not a regular file, past
    /// the size cap, malformed); each is left out, not fatal.
    pub unparsable: usize,
    /// What a reader should know of how the graph was read (the first unparsable file, named).
    pub notes: Vec<String>,
}
