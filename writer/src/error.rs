//! The writer's one error type.

use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong in the writer. Messages say where and what;
/// the CLI adds how to fix it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "fdatasync", "open", ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An earlier fsync failed, so what is on disk is unknown; the writer
    /// refuses all further appends until the log is opened again.
    #[error("log {dir} is poisoned: {cause}; no append is accepted until the log is reopened")]
    Poisoned {
        /// The log directory.
        dir: PathBuf,
        /// The first failure.
        cause: String,
    },
    /// Another writer (this process or another) holds the log's lock.
    #[error("log {dir} is locked by another writer")]
    Locked {
        /// The log directory.
        dir: PathBuf,
    },
    /// The directory is not a Stele log.
    #[error("{dir} is not a stele log: {why}")]
    NotALog {
        /// The directory.
        dir: PathBuf,
        /// What is missing.
        why: String,
    },
    /// `create` on a directory that already holds a log.
    #[error("{dir} already holds a stele log")]
    AlreadyExists {
        /// The directory.
        dir: PathBuf,
    },
    /// `create` on a directory that holds files: some of a log's (part of a
    /// log, e.g. a partial restore; never overwritten) or, unless allowed,
    /// anything.
    #[error("{dir} {why}; no log was created")]
    DirNotEmpty {
        /// The directory.
        dir: PathBuf,
        /// What it holds.
        why: String,
        /// Whether what it holds are a log's files.
        log_files: bool,
    },
    /// A private key file is readable by group or others.
    #[error("private key file {path} has mode {mode:04o}: it is readable by group or others")]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A private key file does not hold a key.
    #[error("private key file {path}: {why}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong (never the key itself).
        why: String,
    },
    /// An event that cannot be appended.
    #[error("event {index}: {why}")]
    BadEvent {
        /// Index of the event in the call (0 for `append`).
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// The entries are damaged before the tail; the log is not opened.
    #[error("log {dir}: entry {entry} (byte offset {offset}): {why}")]
    Corrupt {
        /// The log directory.
        dir: PathBuf,
        /// The first damaged entry.
        entry: u64,
        /// Its byte offset in the entries file.
        offset: u64,
        /// What is wrong.
        why: String,
    },
    /// The stored checkpoints disagree with the entries.
    #[error("log {dir}: {why}")]
    CheckpointMismatch {
        /// The log directory.
        dir: PathBuf,
        /// What disagrees.
        why: String,
    },
    /// A request outside the log (index beyond the size, bad range).
    #[error("{0}")]
    OutOfRange(String),

    /// A sealed-field operation failed (docs/FORMAT.md section 13). The
    /// text never contains a sealed value or a subject.
    #[error("sealed fields: {0}")]
    Sealed(String),
    /// A Merkle proof could not be made.
    #[error(transparent)]
    Proof(#[from] stele_core::merkle::ProofError),
    /// Signing a checkpoint failed.
    #[error("signing checkpoint: {0}")]
    Sign(String),
    /// A tokens file of the HTTP service that cannot be used.
    #[error("tokens file {path}: {why}")]
    Tokens {
        /// The tokens file.
        path: PathBuf,
        /// What is wrong (never a token).
        why: String,
    },
    /// An HTTP service option that cannot be used.
    #[error("{option}: {why}")]
    Config {
        /// The option, as the CLI spells it (`--web`).
        option: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The HTTP service could not start or run (listen, runtime).
    #[error("{what}: {source}")]
    Service {
        /// What was being done ("listen on 127.0.0.1:8080").
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Witnessing (docs/FORMAT.md 14): the quorum was not met, or a
    /// witness directory or policy cannot be used.
    #[error("{0}")]
    Witness(String),
}

impl Error {
    /// An [`Error::Io`] for `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// The writer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
