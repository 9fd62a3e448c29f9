//! Stored tree hashes: every perfect subtree hash, in one file, in the order
//! they are completed (post-order). Leaf `j` is followed by the hashes of the
//! subtrees it completes, lowest first, so the file for `n` leaves holds
//! `2n - popcount(n)` hashes and hash `(level, index)` sits at a position
//! computed in O(1):
//!
//! ```text
//! leaves:  0 1   2 3       4 ...
//! file:    L0 L1 N(1,0) L2 L3 N(1,1) N(2,0) L4 ...
//! ```

use crate::error::{Error, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::RwLock;
use stele_core::hash::{Hash, node_hash};
use stele_core::merkle::{HashReader, ProofError};

/// Position (in hashes) of the stored hash `(level, index)`.
pub fn position(level: u32, index: u64) -> u64 {
    // The subtree is completed by its last leaf; that leaf sits at
    // 2*last - popcount(last), followed by the `level` nodes it completes.
    let last = ((index + 1) << level) - 1;
    2 * last - u64::from(last.count_ones()) + u64::from(level)
}

/// Number of hashes stored for a tree of `n` leaves.
pub fn stored_len(n: u64) -> u64 {
    2 * n - u64::from(n.count_ones())
}

/// The right border of a growing tree: one hash per set bit of the size,
/// largest subtree first (the same shape as RFC 9162 left hashes).
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    size: u64,
    stack: Vec<Hash>,
}

impl Frontier {
    /// From the left hashes of a tree of `size` leaves (largest first).
    pub fn from_left_hashes(size: u64, left: Vec<Hash>) -> Self {
        debug_assert_eq!(left.len() as u32, size.count_ones());
        Self { size, stack: left }
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds a leaf and appends the bytes of every hash it completes (the leaf
    /// first) to `out`, in stored order.
    pub fn push(&mut self, leaf: Hash, out: &mut Vec<u8>) {
        out.extend_from_slice(&leaf.0);
        let mut h = leaf;
        let mut n = self.size;
        while n & 1 == 1 {
            let left = self.stack.pop().expect("frontier matches size");
            h = node_hash(&left, &h);
            out.extend_from_slice(&h.0);
            n >>= 1;
        }
        self.stack.push(h);
        self.size += 1;
    }

    /// RFC 9162 2.1.1: the root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        match it.next() {
            None => stele_core::hash::EMPTY_ROOT,
            Some(last) => it.fold(*last, |r, l| node_hash(l, &r)),
        }
    }
}

/// Reads stored hashes from the tree file with positioned reads.
#[derive(Debug)]
pub struct TreeFile<'a> {
    pub(crate) file: &'a File,
    pub(crate) path: &'a PathBuf,
    /// Leaves covered; reads beyond are refused.
    pub(crate) size: u64,
}

impl HashReader for TreeFile<'_> {
    type Error = Error;
    fn read_hash(&self, level: u32, index: u64) -> Result<Hash> {
        let last = index
            .checked_add(1)
            .and_then(|i| i.checked_shl(level))
            .map(|e| e - 1);
        if level >= 64 || last.is_none_or(|l| l >= self.size) {
            return Err(ProofError::MissingHash { level, index }.into());
        }
        let mut h = [0u8; 32];
        self.file
            .read_exact_at(&mut h, position(level, index) * 32)
            .map_err(|e| Error::io("read", self.path.clone(), e))?;
        Ok(Hash(h))
    }
}

/// The top levels of the tree, kept in memory as proofs read them: every
/// proof's upper hashes (most of them) then come from here, and only the few
/// lowest from the file. The stored hash of a complete subtree never changes
/// as the log grows, so a cached hash stays right.
///
/// Bounded: only the top [`UpperLevels::LEVELS`] levels of the tree are kept
/// (at most about `2^(LEVELS+1)` hashes, 4 MiB), and only from level
/// [`UpperLevels::LOWEST`] up.
#[derive(Debug, Default)]
pub struct UpperLevels {
    // levels[l] holds level l's hashes by index; None: not read yet.
    levels: RwLock<Vec<Vec<Option<Hash>>>>,
    // Keeps nothing: every read goes to the file (a benchmark's baseline).
    off: bool,
}

impl UpperLevels {
    /// How many levels below the root are kept.
    pub const LEVELS: u32 = 16;
    /// The lowest level kept: below it a proof reads a handful of hashes
    /// that lie close together in the file.
    pub const LOWEST: u32 = 8;

    /// A cache that keeps nothing.
    pub fn off() -> Self {
        Self {
            off: true,
            ..Default::default()
        }
    }

    fn kept(level: u32, size: u64) -> bool {
        let height = 64 - size.leading_zeros();
        level >= Self::LOWEST && level + Self::LEVELS >= height
    }

    /// Reads hash `(level, index)` of a tree of `size` leaves through the cache.
    pub(crate) fn read(&self, tree: &TreeFile<'_>, level: u32, index: u64) -> Result<Hash> {
        if self.off || !Self::kept(level, tree.size) {
            return tree.read_hash(level, index);
        }
        {
            let levels = self.levels.read().unwrap();
            if let Some(Some(h)) = levels
                .get(level as usize)
                .and_then(|l| l.get(index as usize))
            {
                return Ok(*h);
            }
        }
        // Read (and range-checked) outside the lock.
        let h = tree.read_hash(level, index)?;
        let mut levels = self.levels.write().unwrap();
        if levels.len() <= level as usize {
            levels.resize_with(level as usize + 1, Vec::new);
        }
        let l = &mut levels[level as usize];
        if l.len() <= index as usize {
            l.resize(index as usize + 1, None);
        }
        l[index as usize] = Some(h);
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_core::hash::leaf_hash;
    use stele_core::merkle::{MemoryTree, left_hashes};

    #[test]
    fn positions_match_push_order() {
        let mut f = Frontier::default();
        let mut mem = MemoryTree::new();
        let mut out = Vec::new();
        for i in 0..300u64 {
            let leaf = leaf_hash(&i.to_le_bytes());
            f.push(leaf, &mut out);
            mem.push(leaf);
            let n = i + 1;
            assert_eq!(out.len() as u64, stored_len(n) * 32);
            assert_eq!(f.root(), mem.root_at(n).unwrap());
            // Every stored hash is where position() says.
            for level in 0..10u32 {
                for index in 0..(n >> level) {
                    let p = position(level, index) as usize * 32;
                    assert_eq!(
                        &out[p..p + 32],
                        &mem.read_hash(level, index).unwrap().0,
                        "n {n} level {level} index {index}"
                    );
                }
            }
            let left = left_hashes(&mem, n).unwrap();
            let g = Frontier::from_left_hashes(n, left);
            assert_eq!(g.root(), f.root());
        }
    }
}
