//! The seam between the log and the file system: every write, fdatasync,
//! truncate, rename and directory fsync that matters for durability goes
//! through [`Fs`], so tests can make the Nth one fail (see
//! [`crate::testing::FaultFs`]).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Which of the log's files an operation touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileRole {
    /// `entries.jsonl`, the entry lines (the source of truth).
    Entries,
    /// `checkpoints`, the signed checkpoint notes.
    Checkpoints,
    /// `tree`, stored Merkle tree hashes (derived).
    Tree,
    /// `index`, entry end offsets (derived).
    Index,
    /// `stele.json`, the log's configuration.
    Config,
    /// `checked`, the check mark (derived; see writer/README.md).
    Checked,
    /// The private key file.
    Key,
    /// A directory (for directory fsyncs).
    Dir,
    /// A file outside the log (a monitor state file, an export).
    Other,
    /// A file of the sealed-field sidecar, `DIR/sealed/` (records, data
    /// keys, wraps, the forget list, the auditors).
    Sealed,
}

/// File system operations the log's durability depends on.
///
/// The default methods do the real thing; [`RealFs`] uses them unchanged.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Writes all of `buf` at `offset` (pwrite).
    fn write_at(&self, role: FileRole, f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        let _ = role;
        f.write_all_at(buf, offset)
    }
    /// fdatasync.
    fn sync_data(&self, role: FileRole, f: &File) -> io::Result<()> {
        let _ = role;
        f.sync_data()
    }
    /// ftruncate.
    fn set_len(&self, role: FileRole, f: &File, len: u64) -> io::Result<()> {
        let _ = role;
        f.set_len(len)
    }
    /// rename(2).
    fn rename(&self, role: FileRole, from: &Path, to: &Path) -> io::Result<()> {
        let _ = role;
        std::fs::rename(from, to)
    }
    /// fsync of a directory, after a file in it was created or renamed.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl Fs for RealFs {}
