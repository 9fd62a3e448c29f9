//! Test support: a file system that fails on demand.
//!
//! ```
//! use stele_writer::fs::FileRole;
//! use stele_writer::testing::{FaultFs, FaultMode, Op};
//! let fs = FaultFs::new();
//! // The 2nd fdatasync of the entries file fails, and the data did reach the disk.
//! fs.fail_nth(Op::Sync, Some(FileRole::Entries), 2, FaultMode::Persisted);
//! ```
//!
//! Counting starts when the fault is armed: `nth = 1` is the next matching
//! operation. Each armed fault fires once.

use crate::fs::{FileRole, Fs};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

/// An operation kind that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// [`Fs::write_at`].
    Write,
    /// [`Fs::sync_data`] and [`Fs::sync_dir`] (directory syncs have role `Dir`).
    Sync,
    /// [`Fs::set_len`].
    Truncate,
    /// [`Fs::rename`].
    Rename,
}

/// What a failing operation leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The operation fails and has no effect.
    NotPersisted,
    /// The operation takes full effect, then reports failure anyway.
    Persisted,
    /// Writes only: the first half of the buffer is written, then failure.
    Partial,
}

#[derive(Debug)]
struct Fault {
    op: Op,
    role: Option<FileRole>,
    remaining: u64,
    mode: FaultMode,
}

/// A [`Fs`] that does the real thing except for armed faults.
#[derive(Debug, Default)]
pub struct FaultFs {
    faults: Mutex<Vec<Fault>>,
    fired: Mutex<Vec<(Op, FileRole, FaultMode)>>,
}

impl FaultFs {
    /// No faults armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the `nth` (1-based, counted from now) operation `op` on a file of
    /// `role` (any file if `None`) fail in `mode`.
    pub fn fail_nth(&self, op: Op, role: Option<FileRole>, nth: u64, mode: FaultMode) {
        assert!(nth >= 1, "nth is 1-based");
        self.faults.lock().unwrap().push(Fault {
            op,
            role,
            remaining: nth,
            mode,
        });
    }

    /// The faults that fired so far.
    pub fn fired(&self) -> Vec<(Op, FileRole, FaultMode)> {
        self.fired.lock().unwrap().clone()
    }

    fn check(&self, op: Op, role: FileRole) -> Option<FaultMode> {
        let mut faults = self.faults.lock().unwrap();
        let mut hit = None;
        for (i, f) in faults.iter_mut().enumerate() {
            if f.op == op && f.role.is_none_or(|r| r == role) {
                f.remaining -= 1;
                if f.remaining == 0 && hit.is_none() {
                    hit = Some(i);
                }
            }
        }
        let mode = faults.remove(hit?).mode;
        self.fired.lock().unwrap().push((op, role, mode));
        Some(mode)
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl Fs for FaultFs {
    fn write_at(&self, role: FileRole, f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        match self.check(Op::Write, role) {
            None => f.write_all_at(buf, offset),
            Some(FaultMode::NotPersisted) => Err(injected("write")),
            Some(FaultMode::Persisted) => {
                f.write_all_at(buf, offset)?;
                Err(injected("write"))
            }
            Some(FaultMode::Partial) => {
                f.write_all_at(&buf[..buf.len() / 2], offset)?;
                Err(injected("write"))
            }
        }
    }

    fn sync_data(&self, role: FileRole, f: &File) -> io::Result<()> {
        match self.check(Op::Sync, role) {
            None => f.sync_data(),
            Some(FaultMode::Persisted) => {
                f.sync_data()?;
                Err(injected("fdatasync"))
            }
            Some(_) => Err(injected("fdatasync")),
        }
    }

    fn set_len(&self, role: FileRole, f: &File, len: u64) -> io::Result<()> {
        match self.check(Op::Truncate, role) {
            None => f.set_len(len),
            Some(FaultMode::Persisted) => {
                f.set_len(len)?;
                Err(injected("truncate"))
            }
            Some(_) => Err(injected("truncate")),
        }
    }

    fn rename(&self, role: FileRole, from: &Path, to: &Path) -> io::Result<()> {
        match self.check(Op::Rename, role) {
            None => std::fs::rename(from, to),
            Some(FaultMode::Persisted) => {
                std::fs::rename(from, to)?;
                Err(injected("rename"))
            }
            Some(_) => Err(injected("rename")),
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        match self.check(Op::Sync, FileRole::Dir) {
            None => File::open(dir)?.sync_all(),
            Some(FaultMode::Persisted) => {
                File::open(dir)?.sync_all()?;
                Err(injected("directory fsync"))
            }
            Some(_) => Err(injected("directory fsync")),
        }
    }
}
