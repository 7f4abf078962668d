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
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        // Not a `#[source]`: the message already carries it, and error chains would repeat it.
        cause: std::io::Error,
    },

    /// A value given on the command line or in a file that makes no sense.
    #[error("{0}")]
    Invalid(String),

    /// The run was interrupted (Ctrl-C); nothing half-written was left behind.
    #[error("interrupted")]
    Interrupted,

    /// A frame operation failed; `what` names the table or step.
    #[error("{what}: {reason}")]
    Frame { what: String, reason: String },

    /// A NAR that is not a valid Nix archive; `offset` is the byte of the NAR stream where the
    /// problem starts, `what` names the NAR (a file, or the input it came from).
    #[error("{what}: malformed NAR at byte {offset}: {reason}")]
    Nar {
        what: String,
        offset: u64,
        reason: String,
    },

    /// A store derivation (`.drv`) that is not in Nix's ATerm form; `offset` is the byte of the
    /// file where the problem starts, `what` names the file.
    #[error("{what}: malformed derivation at byte {offset}: {reason}")]
    Drv {
        what: String,
        offset: u64,
        reason: String,
    },

    /// Compressing or decompressing failed, or a codec did not give back the bytes it was given;
    /// `what` names the codec and the input.
    #[error("{what}: {reason}")]
    Codec { what: String, reason: String },

    /// A queue-runner status document that cannot be read; `origin` is the file, `-` or URL.
    #[error("{origin}: not a queue-runner status: {reason}")]
    StatusDocument { origin: String, reason: String },

    /// An HTTP request that failed (unreachable, timed out, error status, body too large).
    #[error("GET {url}: {reason}")]
    Http { url: String, reason: String },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }

    pub fn snapshot(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::Snapshot {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    pub fn codec(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Codec {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// Names the NAR a reader error came from (the reader itself only knows offsets).
    pub fn in_nar(self, name: impl std::fmt::Display) -> Self {
        match self {
            Error::Nar { offset, reason, .. } => Error::Nar {
                what: name.to_string(),
                offset,
                reason,
            },
            other => other,
        }
    }

    pub fn frame(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Frame {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
