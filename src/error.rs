//! The library's error type: every failure the tool reports, each a single line naming what and
//! where. Passwords never reach these messages: connection strings are shown redacted.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A connection string that cannot be parsed, or contradicts itself.
    #[error("connection string: {0}")]
    Conninfo(String),

    /// Could not connect or authenticate; `target` is the redacted connection description.
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },

    /// A query failed; `what` names the query or table being read.
    #[error("database: {what}: {reason}")]
    Database { what: String, reason: String },

    /// The database is reachable but is not a Hydra database we can read.
    #[error("database: {0}")]
    Schema(String),

    /// A snapshot directory or one of its files is missing, corrupt, or disagrees with its manifest.
    #[error("snapshot {}: {reason}", path.display())]
    Snapshot { path: PathBuf, reason: String },

    /// Reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A value given on the command line or in a file that makes no sense.
    #[error("{0}")]
    Invalid(String),

    /// The command exists but the feature behind it is not built yet.
    #[error("`{0}` is not available yet in this version of hydra-bottleneck")]
    NotAvailable(&'static str),

    /// The run was interrupted (Ctrl-C); nothing half-written was left behind.
    #[error("interrupted")]
    Interrupted,

    /// A frame operation failed; `what` names the table or step.
    #[error("{what}: {reason}")]
    Frame { what: String, reason: String },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn snapshot(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::Snapshot {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    pub fn frame(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Frame {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
