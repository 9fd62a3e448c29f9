//! RFC 9162 Merkle tree math: roots, inclusion and consistency proofs, and
//! compact ranges for streaming roots and range proofs.
//!
//! Proof generation reads stored hashes of perfect subtrees through the small
//! [`HashReader`] trait, so a log on disk answers any proof in O(log n) reads.

use crate::hash::{EMPTY_ROOT, Hash, node_hash, node_hashes};
use thiserror::Error;

/// Why a proof was rejected or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The index is not inside the tree.
    #[error("index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof between sizes that do not grow.
    #[error("sizes {old} and {new} do not grow (old must be at most new)")]
    SizesOutOfOrder {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// The proof has the wrong number of hashes.
    #[error(
        "proof has {found} hashes, but index {index} in a tree of size {size} needs {expected}"
    )]
    WrongLength {
        /// The index (or old size, for consistency proofs).
        index: u64,
        /// The tree size.
        size: u64,
        /// How many hashes the proof must have.
        expected: usize,
        /// How many it has.
        found: usize,
    },
    /// The proof's hashes lead to another root.
    #[error("proof leads to root {computed}, but the expected root is {expected}")]
    RootMismatch {
        /// The root computed from the proof.
        computed: Hash,
        /// The root it should have led to.
        expected: Hash,
    },
    /// For consistency proofs: the proof does not reproduce the old root.
    #[error("proof leads to old root {computed}, but the old root is {expected}")]
    OldRootMismatch {
        /// The old root computed from the proof.
        computed: Hash,
        /// The old root given.
        expected: Hash,
    },
    /// A stored hash needed to build a proof is missing.
    #[error("no stored hash at level {level}, index {index}")]
    MissingHash {
        /// Level above the leaves (0 = leaves).
        level: u32,
        /// Index within the level.
        index: u64,
    },
}

/// Read access to the hashes of perfect subtrees: level 0 holds leaf hashes,
/// and hash `(level, index)` covers leaves `[index << level, (index + 1) << level)`.
pub trait HashReader {
    /// The reader's error; it must be able to carry a [`ProofError`].
    type Error: From<ProofError>;
    /// The hash of the perfect subtree at `level`, `index`.
    fn read_hash(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The largest power of two strictly less than `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// RFC 9162 2.1.1: MTH of leaves `[lo, hi)`, where `lo` is a multiple of a
/// power of two that is at least `hi - lo` (true of every range the RFC's
/// recursions visit). Reads O(log n) stored hashes.
pub fn subtree_hash<R: HashReader>(r: &R, lo: u64, hi: u64) -> Result<Hash, R::Error> {
    let n = hi - lo;
    if n == 0 {
        return Ok(EMPTY_ROOT);
    }
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return r.read_hash(level, lo >> level);
    }
    let k = split_point(n);
    let left = subtree_hash(r, lo, lo + k)?;
    let right = subtree_hash(r, lo + k, hi)?;
    Ok(node_hash(&left, &right))
}

/// RFC 9162 2.1.1: the root of a tree of `size` leaves.
pub fn root<R: HashReader>(r: &R, size: u64) -> Result<Hash, R::Error> {
    subtree_hash(r, 0, size)
}

/// RFC 9162 2.1.3.1: the inclusion proof of leaf `index` in a tree of `size`,
/// leaf sibling first.
pub fn inclusion_proof<R: HashReader>(r: &R, index: u64, size: u64) -> Result<Vec<Hash>, R::Error> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    let mut out = Vec::new();
    path(r, index, 0, size, &mut out)?;
    Ok(out)
}

// PATH(m, D[lo:hi]) with m relative to lo; appends deepest first.
fn path<R: HashReader>(
    r: &R,
    m: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash>,
) -> Result<(), R::Error> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(r, m, lo, lo + k, out)?;
        out.push(subtree_hash(r, lo + k, hi)?);
    } else {
        path(r, m - k, lo + k, hi, out)?;
        out.push(subtree_hash(r, lo, lo + k)?);
    }
    Ok(())
}

/// RFC 9162 2.1.4.1: the consistency proof from tree size `old` to `new`.
/// Empty when `old` is 0 or equals `new`.
pub fn consistency_proof<R: HashReader>(r: &R, old: u64, new: u64) -> Result<Vec<Hash>, R::Error> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder { old, new }.into());
    }
    let mut out = Vec::new();
    if old == 0 || old == new {
        return Ok(out);
    }
    subproof(r, old, 0, new, true, &mut out)?;
    Ok(out)
}

// SUBPROOF(m, D[lo:hi], b) with m relative to lo.
fn subproof<R: HashReader>(
    r: &R,
    m: u64,
    lo: u64,
    hi: u64,
    b: bool,
    out: &mut Vec<Hash>,
) -> Result<(), R::Error> {
    let n = hi - lo;
    if m == n {
        if !b {
            out.push(subtree_hash(r, lo, hi)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(r, m, lo, lo + k, b, out)?;
        out.push(subtree_hash(r, lo + k, hi)?);
    } else {
        subproof(r, m - k, lo + k, hi, false, out)?;
        out.push(subtree_hash(r, lo, lo + k)?);
    }
    Ok(())
}

/// The number of hashes in the inclusion proof of `index` in a tree of `size`.
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let (inner, border) = decomp_inclusion(index, size);
    (inner + border) as usize
}

// Split of an inclusion proof into the part below the point where the path
// to the last leaf diverges (inner) and the part along the right border.
fn decomp_inclusion(index: u64, size: u64) -> (u32, u32) {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    // `inner` is 64 when size - 1 has bit 63 set and index does not: no
    // bits remain (a plain shift by 64 overflows).
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

/// RFC 9162 2.1.3.2: checks that `leaf` is at `index` in the tree of `size`
/// whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion(leaf, index, size, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch {
            computed,
            expected: *root,
        });
    }
    Ok(())
}

/// RFC 9162 2.1.3.2: the root that an inclusion proof leads to.
pub fn root_from_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            index,
            size,
            expected,
            found: proof.len(),
        });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // The length check above guarantees sn == 0 here.
    debug_assert_eq!(sn, 0);
    Ok(r)
}

/// The number of hashes in the consistency proof from `old` to `new`.
pub fn consistency_proof_len(old: u64, new: u64) -> usize {
    if old == 0 || old == new {
        return 0;
    }
    // The proof starts below the largest perfect subtree that ends at `old`
    // and omits the old root itself when `old` is a power of two.
    let shift = old.trailing_zeros();
    let (inner, border) = decomp_inclusion(old - 1, new);
    let seed = usize::from(!old.is_power_of_two());
    (inner - shift + border) as usize + seed
}

/// RFC 9162 2.1.4.2: checks that the tree of size `old` with root `old_root`
/// is a prefix of the tree of size `new` with root `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder { old, new });
    }
    let expected_len = consistency_proof_len(old, new);
    if proof.len() != expected_len {
        return Err(ProofError::WrongLength {
            index: old,
            size: new,
            expected: expected_len,
            found: proof.len(),
        });
    }
    if old == 0 {
        // Every tree extends the empty tree, whose root is fixed.
        if *old_root != EMPTY_ROOT {
            return Err(ProofError::OldRootMismatch {
                computed: EMPTY_ROOT,
                expected: *old_root,
            });
        }
        return Ok(());
    }
    if old == new {
        if old_root != new_root {
            return Err(ProofError::RootMismatch {
                computed: *old_root,
                expected: *new_root,
            });
        }
        return Ok(());
    }
    // Step 1: if old is a power of two, the proof starts with old_root itself.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength {
                index: old,
                size: new,
                expected: expected_len,
                found: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength {
            index: old,
            size: new,
            expected: expected_len,
            found: proof.len(),
        });
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch {
            computed: fr,
            expected: *old_root,
        });
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch {
            computed: sr,
            expected: *new_root,
        });
    }
    Ok(())
}

/// A compact range: the hashes of the maximal perfect subtrees covering
/// leaves `[0, size)`, largest first. It is how a streaming verifier computes
/// the root at any size in O(log n) memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    // (level, hash), levels strictly decreasing.
    nodes: Vec<(u32, Hash)>,
}

impl CompactRange {
    /// The range for the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from the hashes of the perfect subtrees of `[0, size)`, largest
    /// first: one per set bit of `size` (the "left" hashes of a range proof).
    pub fn from_left_hashes(size: u64, hashes: &[Hash]) -> Result<Self, ProofError> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(ProofError::WrongLength {
                index: size,
                size,
                expected,
                found: hashes.len(),
            });
        }
        let mut nodes = Vec::with_capacity(expected);
        let mut bits = size;
        for h in hashes {
            let level = 63 - bits.leading_zeros();
            bits &= !(1u64 << level);
            nodes.push((level, *h));
        }
        Ok(Self { size, nodes })
    }

    /// The number of leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hashes of the perfect subtrees, largest first.
    pub fn hashes(&self) -> impl Iterator<Item = &Hash> {
        self.nodes.iter().map(|(_, h)| h)
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_subtree(0, leaf);
    }

    /// Appends many leaf hashes: the same range as pushing them one by one,
    /// but the node hashes are computed a level at a time over the aligned
    /// perfect subtrees they fill, so the hashes of one level are independent
    /// of each other (several can be computed at once).
    pub fn extend(&mut self, leaves: &[Hash]) {
        let (mut pairs, mut cur) = (Vec::new(), Vec::new());
        let mut rest = leaves;
        for level in right_levels(self.size, self.size + leaves.len() as u64) {
            let (sub, tail) = rest.split_at(1usize << level);
            rest = tail;
            cur.clear();
            cur.extend_from_slice(sub);
            while cur.len() > 1 {
                pairs.clear();
                pairs.extend(cur.chunks_exact(2).map(|c| (c[0], c[1])));
                cur.clear();
                node_hashes(&pairs, &mut cur);
            }
            self.push_subtree(level, cur[0]);
        }
    }

    /// Appends the hash of a perfect subtree of `2^level` leaves. The current
    /// size must be a multiple of `2^level` (checked by callers via
    /// [`right_levels`]).
    fn push_subtree(&mut self, level: u32, hash: Hash) {
        debug_assert_eq!(self.size % (1u64 << level), 0);
        self.size += 1u64 << level;
        let (mut level, mut hash) = (level, hash);
        while let Some(&(top_level, top)) = self.nodes.last() {
            if top_level != level {
                break;
            }
            let _ = self.nodes.pop();
            hash = node_hash(&top, &hash);
            level += 1;
        }
        self.nodes.push((level, hash));
    }

    /// RFC 9162 2.1.1: the root of the tree of the current size.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, mut r)) = it.next() else {
            return EMPTY_ROOT;
        };
        for (_, h) in it {
            r = node_hash(h, &r);
        }
        r
    }

    /// Extends the range to `new_size` with the "right" hashes of a range
    /// proof: the maximal aligned perfect subtrees of `[size, new_size)`, left
    /// to right (see [`right_levels`]), and returns the root at `new_size`.
    /// The range itself is left unchanged.
    pub fn root_with_right(&self, new_size: u64, right: &[Hash]) -> Result<Hash, ProofError> {
        let levels = right_levels(self.size, new_size);
        if levels.len() != right.len() {
            return Err(ProofError::WrongLength {
                index: self.size,
                size: new_size,
                expected: levels.len(),
                found: right.len(),
            });
        }
        let mut ext = self.clone();
        for (level, h) in levels.into_iter().zip(right) {
            ext.push_subtree(level, *h);
        }
        Ok(ext.root())
    }
}

/// The levels of the maximal aligned perfect subtrees that cover leaves
/// `[from, to)`, left to right: the shape of a range proof's right hashes.
pub fn right_levels(from: u64, to: u64) -> Vec<u32> {
    let mut out = Vec::new();
    let mut p = from;
    while p < to {
        let align = if p == 0 { 63 } else { p.trailing_zeros() };
        let room = 63 - (to - p).leading_zeros();
        let level = align.min(room);
        out.push(level);
        p += 1u64 << level;
    }
    out
}

/// The right hashes of a range proof: hashes of the maximal aligned perfect
/// subtrees of `[from, to)`, left to right.
pub fn right_hashes<R: HashReader>(r: &R, from: u64, to: u64) -> Result<Vec<Hash>, R::Error> {
    let mut out = Vec::new();
    let mut p = from;
    for level in right_levels(from, to) {
        out.push(r.read_hash(level, p >> level)?);
        p += 1u64 << level;
    }
    Ok(out)
}

/// The left hashes of a range proof: the perfect subtrees of `[0, size)`,
/// largest first.
pub fn left_hashes<R: HashReader>(r: &R, size: u64) -> Result<Vec<Hash>, R::Error> {
    let mut out = Vec::new();
    let mut p = 0u64;
    for level in (0..64u32).rev() {
        if size & (1u64 << level) != 0 {
            out.push(r.read_hash(level, p >> level)?);
            p += 1u64 << level;
        }
    }
    Ok(out)
}

/// An in-memory tree holding every perfect subtree hash; for tests, tools and
/// the writer's rebuilds.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash, storing every perfect subtree it completes.
    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut h = leaf;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(h);
            let n = self.levels[level].len();
            if n % 2 == 1 {
                break;
            }
            h = node_hash(&self.levels[level][n - 2], &self.levels[level][n - 1]);
            level += 1;
        }
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The root of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        root(self, size)
    }
}

impl HashReader for MemoryTree {
    type Error = ProofError;
    fn read_hash(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(level as usize)
            .and_then(|l| usize::try_from(index).ok().and_then(|i| l.get(i)))
            .copied()
            .ok_or(ProofError::MissingHash { level, index })
    }
}
