//! The library's error type: every failure the tool reports, each a single line naming what and
//! where. Passwords never reach these messages: connection strings are shown redacted.
//!
//! A variant's message says the context (what was being done, to which file, table or option);
//! where the failure came from another library and a caller could act on it (an I/O error's
//! kind, a PostgreSQL SQLSTATE, a frame or JSON error), that error is the variant's `source`,
//! and the message does not repeat it. The command line prints the message with its causes
//! after it, `: `-joined, on one line ([`Error::line`] gives the same line to a library caller).
//! Variants without a source hold a reason of our own, already in their message.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A connection string that cannot be parsed, or contradicts itself, or TLS settings named
    /// in it that cannot be used.
    #[error("connection string: {0}")]
    Conninfo(String),

    /// Could not connect or authenticate; `target` is the redacted connection description.
    #[error("cannot connect to {target}")]
    Connect {
        target: String,
        #[source]
        source: PgFailure,
    },

    /// A query failed, or what the server sent for it cannot be read; `what` names the query or
    /// table being read.
    #[error("database: {what}")]
    Database {
        what: String,
        #[source]
        source: PgFailure,
    },

    /// The database is reachable but is not a Hydra database we can read (no Hydra schema, a
    /// table missing or not readable by the role).
    #[error("database: {0}")]
    Schema(String),

    /// Something refused on purpose, to stay read-only and safe: a statement that is not a
    /// plain read, a privileged role, a session that is not read-only, a view or a foreign type
    /// where Hydra has a table, a result or NAR past its bound, a path outside a cache or past
    /// what a NAR can hold. `what` names the operation or object, `why` says why (and how to go
    /// on, where there is a way).
    #[error("{what}: {why}")]
    Refused { what: String, why: String },

    /// An output that is already there and is not replaced without `--force` (a file, a
    /// non-empty directory, a database that is not empty); `target` names it, `reason` says
    /// what was found and what to do.
    #[error("{target} {reason}")]
    Exists { target: String, reason: String },

    /// An option, or a combination of options, that cannot be used as given (a bad value, a
    /// missing companion option, an empty window); the message names the option and says what
    /// to give instead.
    #[error("{0}")]
    Usage(String),

    /// A file or text given to the tool whose content cannot be read as what it should be (a
    /// machines file, a narinfo, a scenario or cost file, a saved measurement, a report to
    /// compare with, a list of store paths, a query file's header); `what` names it, with the
    /// line where there is one.
    #[error("{what}: {reason}")]
    Parse { what: String, reason: String },

    /// A file named by an option, a variable or a manifest that is not read at all: not a
    /// regular file (a FIFO, a device, a directory), larger than the most read for its
    /// purpose, or not UTF-8 text where text is wanted. `what` names its purpose (`machines
    /// file`), `reason` what it is (`is a FIFO, not a regular file`).
    #[error("{what} {} {reason}", path.display())]
    Unreadable {
        what: String,
        path: PathBuf,
        reason: String,
    },

    /// The data holds nothing to work on: no step in the window, a window outside the data, no
    /// NAR to measure, no store path found in any cache.
    #[error("{0}")]
    NoData(String),

    /// A scenario or workload the model cannot simulate: a scenario that names a machine or
    /// system the farm lacks, or leaves steps no machine can build; more features or machines
    /// than the model holds; a simulation that could not finish.
    #[error("{0}")]
    Model(String),

    /// Data that disagrees with its own description: a NAR or compressed file whose size or
    /// hash is not what its narinfo says, a file that changed while it was read. Fetching or
    /// packing it again may succeed.
    #[error("{what}: {reason}")]
    Corrupt { what: String, reason: String },

    /// A snapshot directory or one of its files is missing, corrupt, or disagrees with its manifest.
    #[error("snapshot {}: {reason}", path.display())]
    Snapshot { path: PathBuf, reason: String },

    /// Reading or writing a file; the I/O error (its kind: not found, already exists, …) is the
    /// source.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The system refused something that is not a file: a thread, the async runtime, a signal
    /// handler. `what` says what was being started.
    #[error("{what}")]
    System {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// The run was interrupted (Ctrl-C); nothing half-written was left behind.
    #[error("interrupted")]
    Interrupted,

    /// A frame operation failed; `what` names the table or step.
    #[error("{what}")]
    Frame {
        what: String,
        #[source]
        source: polars::error::PolarsError,
    },

    /// Writing or reading one of our own JSON documents failed (a report, a manifest, the
    /// findings); `what` names it.
    #[error("{what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// Drawing a chart failed; `what` names the chart.
    #[error("{what}: {reason}")]
    Chart { what: String, reason: String },

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

    /// Compressing or decompressing failed; `what` names the codec and the input, the codec's
    /// I/O error is the source.
    #[error("{what}")]
    Codec {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// A queue-runner status document that cannot be read; `origin` is the file, `-` or URL.
    #[error("{origin}: not a queue-runner status: {reason}")]
    StatusDocument { origin: String, reason: String },

    /// An HTTP request that failed (unreachable, timed out, error status, body too large). The
    /// reason is ours, not the HTTP client's error: that one may show the URL with its
    /// credentials, so it is said in words with them scrubbed.
    #[error("GET {url}: {reason}")]
    Http { url: String, reason: String },

    /// A rule of this program found broken (a worker that ended without its result, a column a
    /// frame must have): a bug to report.
    #[error("{0}")]
    Internal(String),
}

/// A PostgreSQL failure in one line: the server's message with its detail and hint, or the
/// client's cause chain, or a reason of ours (a value that cannot be read, a password file).
/// The driver's error, where there is one, is kept for a caller to act on ([`PgFailure::code`]).
///
/// It is a source with no source of its own: its line already holds the driver's causes, which
/// would otherwise be printed twice (and the server's detail on lines of their own).
#[derive(Debug)]
pub struct PgFailure {
    line: String,
    error: Option<tokio_postgres::Error>,
}

impl PgFailure {
    /// The driver's error, said in `line`.
    pub fn driver(line: String, error: tokio_postgres::Error) -> Self {
        PgFailure {
            line,
            error: Some(error),
        }
    }

    /// A reason of ours, with no driver error behind it.
    pub fn reason(line: impl Into<String>) -> Self {
        PgFailure {
            line: line.into(),
            error: None,
        }
    }

    /// The driver's error, if the failure came from the driver or the server.
    pub fn error(&self) -> Option<&tokio_postgres::Error> {
        self.error.as_ref()
    }

    /// The server's SQLSTATE (a statement timeout, a permission denied), if the server said it.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.error.as_ref().and_then(tokio_postgres::Error::code)
    }
}

impl std::fmt::Display for PgFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

impl std::error::Error for PgFailure {}

impl Error {
    /// The message with its causes after it, `: `-joined: the one line the command line prints.
    pub fn line(&self) -> String {
        let mut line = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            line.push_str(": ");
            line.push_str(&cause.to_string());
            source = cause.source();
        }
        line
    }

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

    pub fn codec(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Codec {
            what: what.into(),
            source,
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

    pub fn frame(what: impl Into<String>, source: polars::error::PolarsError) -> Self {
        Error::Frame {
            what: what.into(),
            source,
        }
    }

    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }

    pub fn refused(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Refused {
            what: what.into(),
            why: why.into(),
        }
    }

    pub fn parse(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Parse {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub fn system(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::System {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_the_context_then_its_causes_once() {
        let e = Error::io(
            "/x/y",
            std::io::Error::new(std::io::ErrorKind::NotFound, "No such file"),
        );
        assert_eq!(e.to_string(), "/x/y");
        assert_eq!(e.line(), "/x/y: No such file");
        let e = Error::Database {
            what: "reading builds".into(),
            source: PgFailure::reason("ERROR: boom (detail)"),
        };
        assert_eq!(e.line(), "database: reading builds: ERROR: boom (detail)");
        assert_eq!(
            anyhow_line(e),
            "database: reading builds: ERROR: boom (detail)"
        );
    }

    /// What the binary prints: anyhow's `{:#}`.
    fn anyhow_line(e: Error) -> String {
        format!("{:#}", anyhow::Error::from(e))
    }
}
