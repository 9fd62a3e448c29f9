//! The check mark: a durable note that entries `0..size` (the first
//! `entries_len` bytes of the entries file) were checked against the stored
//! tree, that the tree and index files were fdatasync'ed up to there, and
//! that the tree's root at `size` is the root of the signed checkpoint of
//! that size. Opening a log re-checks only what follows the mark, so open
//! costs O(log n) reads plus the tail, not a pass over the whole file.
//!
//! ```text
//! DIR/checked   stele-checked v1\n<size> <entries_len> <checkpoints_len> <root base64>\n
//! ```
//!
//! The mark is derived and never trusted blindly: on open every field is
//! checked against the files in O(log n) reads (below), and a missing,
//! garbled or disagreeing mark means a full check from entry 0, as before.
//! `stele fsck DIR` (and `stele verify DIR`) always read every byte.

use crate::error::{Error, Result};
use crate::fs::{FileRole, Fs};
use crate::log::files;
use crate::tree::{Frontier, TreeFile, stored_len};
use crate::view::StoredCheckpoint;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use stele_core::entry::{MAX_ENTRY_BYTES, parse_entry};
use stele_core::hash::{Hash, leaf_hash};
use stele_core::merkle::{HashReader, left_hashes};

const MAGIC: &str = "stele-checked v1";

/// A check mark as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    /// Entries checked.
    pub size: u64,
    /// Bytes of the entries file they fill.
    pub entries_len: u64,
    /// Bytes of the checkpoints file whose signatures were verified.
    pub checkpoints_len: u64,
    /// The tree root at `size` (a signed checkpoint's root).
    pub root: Hash,
}

impl Mark {
    fn encode(&self) -> String {
        format!(
            "{MAGIC}\n{} {} {} {}\n",
            self.size,
            self.entries_len,
            self.checkpoints_len,
            self.root.to_base64()
        )
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let body = text.strip_prefix(MAGIC)?.strip_prefix('\n')?;
        let body = body.strip_suffix('\n')?;
        let mut it = body.split(' ');
        let mark = Self {
            size: it.next()?.parse().ok()?,
            entries_len: it.next()?.parse().ok()?,
            checkpoints_len: it.next()?.parse().ok()?,
            root: Hash::from_base64(it.next()?)?,
        };
        it.next().is_none().then_some(mark)
    }
}

/// Reads `DIR/checked`. Missing, unreadable or garbled: `None` (a full check).
pub(crate) fn read(dir: &Path) -> Option<Mark> {
    let bytes = crate::fs::read_own(&dir.join(files::CHECKED)).ok()?;
    if bytes.len() > 256 {
        return None;
    }
    Mark::parse(&bytes)
}

/// Makes the tree and index files durable, then writes the mark (temporary
/// file, fdatasync, rename, directory fsync). Until the rename the previous
/// mark stands, and it still holds: the files only grew since.
pub(crate) fn write(fs: &dyn Fs, dir: &Path, mark: &Mark, tree: &File, index: &File) -> Result<()> {
    fs.sync_data(FileRole::Tree, tree)
        .map_err(|e| Error::io("fdatasync", dir.join(files::TREE), e))?;
    fs.sync_data(FileRole::Index, index)
        .map_err(|e| Error::io("fdatasync", dir.join(files::INDEX), e))?;
    // A temporary file left by an earlier failed write is only ours.
    let _ = std::fs::remove_file(dir.join(format!(".{}.tmp", files::CHECKED)));
    crate::log::write_new_file(
        fs,
        dir,
        files::CHECKED,
        FileRole::Checked,
        mark.encode().as_bytes(),
    )
}

/// Where a tail check starts: the state after the marked entries.
#[derive(Debug)]
pub(crate) struct Start {
    pub entries_len: u64,
    pub frontier: Frontier,
    /// Leaf hash of the last marked entry (the next entry's `prev`).
    pub prev: Hash,
    /// Its timestamp in microseconds.
    pub last_ts: i64,
}

fn read_u64_at(f: &File, at: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, at).ok()?;
    Some(u64::from_le_bytes(b))
}

/// Checks a mark against the files in O(log n) reads and returns where the
/// tail check starts, or `None` when anything disagrees (then everything is
/// checked). What is checked: the mark names a signed checkpoint (same size,
/// same root); the entries, tree and index files reach the marked lengths;
/// the index ends the last marked entry where the mark says; the stored
/// tree's left hashes at `size` give the checkpoint's root; and the last
/// marked line is complete and hashes to the stored leaf.
pub(crate) fn start(
    mark: &Mark,
    cps: &[StoredCheckpoint],
    entries: &File,
    tree: &File,
    index: &File,
    tree_path: &std::path::PathBuf,
) -> Option<Start> {
    let signed = cps
        .iter()
        .any(|c| c.checkpoint.size == mark.size && c.checkpoint.root == mark.root);
    if mark.size == 0 || !signed {
        return None;
    }
    let len = |f: &File| f.metadata().ok().map(|m| m.len());
    if len(entries)? < mark.entries_len
        || len(tree)? < stored_len(mark.size).checked_mul(32)?
        || len(index)? < mark.size.checked_mul(8)?
    {
        return None;
    }
    let last = mark.size - 1;
    if read_u64_at(index, last * 8)? != mark.entries_len {
        return None;
    }
    let line_start = if last == 0 {
        0
    } else {
        read_u64_at(index, (last - 1) * 8)?
    };
    let n = mark.entries_len.checked_sub(line_start)?;
    if n == 0 || n > MAX_ENTRY_BYTES as u64 + 1 {
        return None;
    }
    let tf = TreeFile {
        file: tree,
        path: tree_path,
        size: mark.size,
    };
    let frontier = Frontier::from_left_hashes(mark.size, left_hashes(&tf, mark.size).ok()?);
    if frontier.root() != mark.root {
        return None;
    }
    let mut line = vec![0u8; n as usize];
    entries.read_exact_at(&mut line, line_start).ok()?;
    let body = line.strip_suffix(b"\n")?;
    let prev = leaf_hash(body);
    if tf.read_hash(0, last).ok()? != prev {
        return None;
    }
    let last_ts = parse_entry(body).ok()?.ts.unix_micros();
    Some(Start {
        entries_len: mark.entries_len,
        frontier,
        prev,
        last_ts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_round_trips_and_garble_is_refused() {
        let m = Mark {
            size: 12_345,
            entries_len: 9_876_543,
            checkpoints_len: 777,
            root: leaf_hash(b"x"),
        };
        let text = m.encode();
        assert_eq!(Mark::parse(text.as_bytes()), Some(m));
        // Every strict prefix and every single-byte change is refused or differs.
        for cut in 0..text.len() {
            assert_eq!(Mark::parse(&text.as_bytes()[..cut]), None, "cut {cut}");
        }
        assert_eq!(Mark::parse(format!("{text}x").as_bytes()), None);
        assert_eq!(Mark::parse(text.replace(' ', "  ").as_bytes()), None);
    }
}
