//! The one error type of the library. Every variant names *what* went wrong and
//! *where* (file, line, field), because a batch run over 200,000 tickets is only
//! debuggable when the message points at the row.

use std::path::PathBuf;

/// Everything that can go wrong in mujib.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// I/O on a stream that has no path (stdin, a socket, memory).
    #[error("i/o error: {0}")]
    Stream(#[from] std::io::Error),
    /// A line or record of an input file is unusable.
    #[error("{}:{line}: {reason}", path.display())]
    Data {
        /// The file (or `-` for stdin).
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A parameter or configuration value is out of range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam {
        /// The parameter's name as the user spells it.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The file does not start with mujib's model magic.
    #[error("not a mujib model file (expected format `{expected}`, found {found:?})")]
    ModelFormat {
        /// The format name mujib writes.
        expected: &'static str,
        /// What the first bytes of the file were instead.
        found: String,
    },
    /// The model was written by a newer (or unknown) format version.
    #[error(
        "model format version {found} is not supported (this mujib reads versions {supported})"
    )]
    ModelVersion {
        /// Version found in the file.
        found: u32,
        /// Versions this build reads, e.g. `1`.
        supported: String,
    },
    /// The model file is damaged: truncated, bad checksum, inconsistent sections.
    #[error("corrupt model file: {0}")]
    ModelCorrupt(String),
    /// The HF tokenizer failed to train, load or run.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Training could not proceed (too little data, one label, learner failure).
    #[error("training failed: {0}")]
    Training(String),
    /// JSON (de)serialisation failed outside a line-oriented data file.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// `Result` with mujib's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Attaches a path to an I/O error.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn param(name: &str, reason: impl Into<String>) -> Self {
        Error::InvalidParam {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}
