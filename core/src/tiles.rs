//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): tile coordinates and
//! paths, which tiles a proof needs, proofs rebuilt from fetched tiles, and
//! entry bundles.
//!
//! Pure math and encoding: no HTTP here. A tile at level `L`, index `N` holds
//! up to 256 consecutive Merkle Tree Hashes at tree level `8·L`, indices
//! `N·256 ..`; a partial tile (the rightmost at its level) holds
//! `floor(size / 256^L) mod 256` of them.
//!
//! ```text
//! tile/0/x001/x234/067        full level-0 tile 1234067 (256 leaf hashes, 8192 bytes)
//! tile/1/000.p/17             partial level-1 tile 0, 17 hashes
//! tile/entries/005.p/3        entry bundle 5, 3 entries: (u16 big-endian length ‖ entry) × 3
//! ```
//!
//! ```
//! use stele_core::hash::leaf_hash;
//! use stele_core::merkle::{HashReader, MemoryTree, verify_inclusion};
//! use stele_core::tiles::{Tile, TileSet, tiles_for_inclusion, inclusion_proof_from_tiles};
//! let mut tree = MemoryTree::new();
//! for i in 0..1000u32 { tree.push(leaf_hash(&i.to_le_bytes())); }
//! let need = tiles_for_inclusion(700, 1000).unwrap();
//! let paths: Vec<String> = need.iter().map(Tile::path).collect();
//! assert_eq!(paths, ["tile/0/002", "tile/0/003.p/232", "tile/1/000.p/3"]);
//! // Fetch each tile (here: read it from the in-memory tree) and rebuild the proof.
//! let mut set = TileSet::new(1000);
//! for t in &need {
//!     let data: Vec<u8> = (0..u64::from(t.width))
//!         .flat_map(|i| tree.read_hash(u32::from(t.level) * 8, t.first() + i).unwrap().0)
//!         .collect();
//!     set.insert(*t, &data).unwrap();
//! }
//! let proof = inclusion_proof_from_tiles(&set, 700, 1000).unwrap();
//! let root = tree.root_at(1000).unwrap();
//! verify_inclusion(&leaf_hash(&700u32.to_le_bytes()), 700, 1000, &proof, &root).unwrap();
//! ```

use crate::hash::{Hash, node_hash};
use crate::merkle::{self, HashReader, ProofError};
use std::cell::RefCell;
use std::collections::BTreeMap;
use thiserror::Error;

/// tlog-tiles: a tile spans 8 tree levels.
pub const TILE_HEIGHT: u32 = 8;
/// tlog-tiles: a full tile holds 256 hashes (8,192 bytes).
pub const TILE_WIDTH: u16 = 256;
/// Highest tile level a path may name (tlog-tiles: 0 to 63).
pub const MAX_TILE_LEVEL: u8 = 63;
const HASH_LEN: usize = 32;

/// What is wrong with a tile path, a tile, or an entry bundle.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TileError {
    /// A path that is not a tlog-tiles tile or entry bundle path.
    #[error("tile path {}: {why}", crate::canonical::quote(path))]
    BadPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// Tile data whose length does not match its width.
    #[error("tile {path}: {found} bytes, expected {expected} ({width} hashes of 32 bytes)")]
    WrongLength {
        /// The tile's path.
        path: String,
        /// Its width in hashes.
        width: u16,
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// A hash is needed from a tile that was not supplied.
    #[error("hash at level {level}, index {index} needs tile {path}, which was not supplied")]
    MissingTile {
        /// The Merkle level of the hash.
        level: u32,
        /// Its index at that level.
        index: u64,
        /// The path of the tile that holds it.
        path: String,
    },
    /// An entry longer than an entry bundle can hold.
    #[error("entry {index}: {len} bytes, more than the 65535 an entry bundle can hold")]
    EntryTooLong {
        /// Position of the entry in the bundle.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// An entry bundle that ends inside an entry or its length prefix.
    #[error("entry bundle: entry {index} at byte {offset} {why}")]
    BundleTruncated {
        /// Position of the entry in the bundle.
        index: usize,
        /// Byte offset where it starts.
        offset: usize,
        /// What is cut short.
        why: String,
    },
    /// The Merkle math refused the request (index outside the tree and so on).
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// A tile coordinate: level, index within the level, and width in hashes
/// (256 = full; 1..=255 = partial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Tile level: its hashes are at tree level `8 * level`.
    pub level: u8,
    /// Index of the tile within its level.
    pub index: u64,
    /// Number of hashes (or entries, for a bundle): 1..=256.
    pub width: u16,
}

/// What a tlog-tiles path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`: Merkle Tree hashes.
    Hashes(Tile),
    /// `tile/entries/<N>[.p/<W>]`: an entry bundle (its `level` is 0).
    Entries(Tile),
}

impl Tile {
    /// Whether the tile is partial (fewer than 256 hashes).
    pub fn is_partial(&self) -> bool {
        self.width < TILE_WIDTH
    }

    /// Index at tree level `8 * level` of the tile's first hash.
    pub fn first(&self) -> u64 {
        self.index * u64::from(TILE_WIDTH)
    }

    /// Bytes of a hash tile of this width.
    pub fn byte_len(&self) -> usize {
        usize::from(self.width) * HASH_LEN
    }

    /// tlog-tiles: `tile/<L>/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        format!("tile/{}/{}", self.level, self.suffix())
    }

    /// tlog-tiles: `tile/entries/<N>[.p/<W>]` (for level-0 coordinates).
    pub fn entries_path(&self) -> String {
        format!("tile/entries/{}", self.suffix())
    }

    // <N>[.p/<W>]: N as zero-padded 3-digit elements, all but the last
    // prefixed with x (1234067 -> x001/x234/067).
    fn suffix(&self) -> String {
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        let mut s = String::new();
        for (i, g) in groups.iter().rev().enumerate() {
            if i + 1 < groups.len() {
                s.push_str(&format!("x{g:03}/"));
            } else {
                s.push_str(&format!("{g:03}"));
            }
        }
        if self.is_partial() {
            s.push_str(&format!(".p/{}", self.width));
        }
        s
    }

    /// Parses a tlog-tiles path (with or without a leading `/`), strictly:
    /// no leading zeros in `<L>` or `<W>`, exactly three digits per `<N>`
    /// element, `x` on all but the last, no redundant `x000` first element,
    /// `<W>` in 1..=255.
    pub fn parse_path(path: &str) -> Result<TilePath, TileError> {
        let bad = |why: &str| TileError::BadPath {
            path: path.chars().take(200).collect(),
            why: why.to_string(),
        };
        let rest = path.strip_prefix('/').unwrap_or(path);
        let rest = rest
            .strip_prefix("tile/")
            .ok_or_else(|| bad("does not start with tile/"))?;
        let (first, rest) = rest
            .split_once('/')
            .ok_or_else(|| bad("expected tile/<L>/<N> or tile/entries/<N>"))?;
        let entries = first == "entries";
        let level = if entries {
            0
        } else {
            let l = parse_decimal(first)
                .ok_or_else(|| bad("level is not a decimal number without leading zeros"))?;
            if l > u64::from(MAX_TILE_LEVEL) {
                return Err(bad("level is above 63"));
            }
            l as u8
        };
        let (n_part, width) = match rest.split_once(".p/") {
            Some((n, w)) => {
                let w = parse_decimal(w)
                    .ok_or_else(|| bad("width is not a decimal number without leading zeros"))?;
                if !(1..u64::from(TILE_WIDTH)).contains(&w) {
                    return Err(bad("partial width must be 1 to 255"));
                }
                (n, w as u16)
            }
            None => (rest, TILE_WIDTH),
        };
        let elems: Vec<&str> = n_part.split('/').collect();
        let mut index: u64 = 0;
        for (i, e) in elems.iter().enumerate() {
            let last = i + 1 == elems.len();
            let digits = if last {
                *e
            } else {
                e.strip_prefix('x')
                    .ok_or_else(|| bad("index elements before the last must start with x"))?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("index elements must be exactly three digits"));
            }
            let g: u64 = digits.parse().expect("three ascii digits");
            if i == 0 && g == 0 && !last {
                return Err(bad("index has a redundant leading x000 element"));
            }
            index = index
                .checked_mul(1000)
                .and_then(|v| v.checked_add(g))
                .ok_or_else(|| bad("index is too large"))?;
        }
        // The tile's hashes must be addressable in a u64 tree.
        let shift = u32::from(level) * TILE_HEIGHT + TILE_HEIGHT;
        if shift < 64 && index.checked_shl(shift).is_none_or(|v| v >> shift != index) {
            return Err(bad("index is too large"));
        }
        if shift >= 64 && index > 0 {
            return Err(bad("index is too large"));
        }
        let t = Self {
            level,
            index,
            width,
        };
        Ok(if entries {
            TilePath::Entries(t)
        } else {
            TilePath::Hashes(t)
        })
    }
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Number of hashes at tree level `8 * level` in a tree of `size` leaves.
fn hashes_at(level: u8, size: u64) -> u64 {
    let shift = u32::from(level) * TILE_HEIGHT;
    if shift >= 64 { 0 } else { size >> shift }
}

/// The tile at `level`, `index` as it is in a tree of `size` leaves: full,
/// partial with the width the tree gives it, or `None` if it does not exist.
pub fn tile_in_tree(level: u8, index: u64, size: u64) -> Option<Tile> {
    let have = hashes_at(level, size);
    let first = index.checked_mul(u64::from(TILE_WIDTH))?;
    if have <= first {
        return None;
    }
    let width = (have - first).min(u64::from(TILE_WIDTH)) as u16;
    Some(Tile {
        level,
        index,
        width,
    })
}

/// Whether every hash of `tile` exists in a tree of `size` leaves (so a
/// server holding that tree can serve it).
pub fn tile_exists(tile: &Tile, size: u64) -> bool {
    tile.width >= 1
        && tile.width <= TILE_WIDTH
        && tile_in_tree(tile.level, tile.index, size).is_some_and(|t| t.width >= tile.width)
}

/// The tile, as it is in a tree of `size`, from which the perfect-subtree
/// hash at tree level `level`, index `index` is computed; `None` if that
/// subtree is not complete in the tree.
pub fn tile_for_hash(level: u32, index: u64, size: u64) -> Option<Tile> {
    let end = index.checked_add(1)?.checked_shl(level)?;
    if level >= 64 || end >> level != index + 1 || end > size {
        return None;
    }
    let tile_level = (level / TILE_HEIGHT) as u8;
    let sub = level % TILE_HEIGHT;
    let first = index << sub; // at tree level 8 * tile_level
    tile_in_tree(tile_level, first / u64::from(TILE_WIDTH), size)
}

/// A [`HashReader`] that only records which hashes a computation reads
/// (each read gives a zero hash); see [`tiles_read_by`].
#[derive(Debug, Default)]
pub struct Recorder(RefCell<Vec<(u32, u64)>>);

impl HashReader for Recorder {
    type Error = ProofError;
    fn read_hash(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        self.0.borrow_mut().push((level, index));
        Ok(Hash::default())
    }
}

/// The tiles of the tree of `size` that `read` reads hashes from (it is
/// run once on a [`Recorder`]), sorted by level then index: what to fetch
/// before running it on a [`TileSet`].
pub fn tiles_read_by<T>(
    size: u64,
    read: impl FnOnce(&Recorder) -> Result<T, ProofError>,
) -> Result<Vec<Tile>, TileError> {
    let rec = Recorder::default();
    let _ = read(&rec)?;
    let mut out: Vec<Tile> = Vec::new();
    for (level, index) in rec.0.into_inner() {
        let t =
            tile_for_hash(level, index, size).ok_or(ProofError::MissingHash { level, index })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out.sort();
    Ok(out)
}

/// The tiles needed to compute the RFC 9162 inclusion proof of entry
/// `index` in the tree of `size`, sorted by level then index.
pub fn tiles_for_inclusion(index: u64, size: u64) -> Result<Vec<Tile>, TileError> {
    tiles_read_by(size, |r| merkle::inclusion_proof(r, index, size))
}

/// The tiles needed to compute the RFC 9162 consistency proof from `old`
/// to `new`, sorted by level then index.
pub fn tiles_for_consistency(old: u64, new: u64) -> Result<Vec<Tile>, TileError> {
    tiles_read_by(new, |r| merkle::consistency_proof(r, old, new))
}

/// The tiles needed to compute the root of the tree of `size`.
pub fn tiles_for_root(size: u64) -> Result<Vec<Tile>, TileError> {
    tiles_read_by(size, |r| merkle::root(r, size))
}

/// Fetched tiles of one tree size; reads any perfect-subtree hash they
/// cover (hashes between tile levels are recomputed from the tile's
/// hashes, as tlog-tiles specifies).
#[derive(Debug, Clone)]
pub struct TileSet {
    size: u64,
    tiles: BTreeMap<(u8, u64), (u16, Vec<Hash>)>,
}

impl TileSet {
    /// An empty set for a tree of `size` leaves.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            tiles: BTreeMap::new(),
        }
    }

    /// The tree size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds a tile's bytes (its width × 32 bytes). A wider tile at the same
    /// coordinate replaces a narrower one.
    pub fn insert(&mut self, tile: Tile, data: &[u8]) -> Result<(), TileError> {
        if data.len() != tile.byte_len() || tile.width == 0 || tile.width > TILE_WIDTH {
            return Err(TileError::WrongLength {
                path: tile.path(),
                width: tile.width,
                expected: tile.byte_len(),
                found: data.len(),
            });
        }
        let hashes = data
            .chunks_exact(HASH_LEN)
            .map(|c| Hash(c.try_into().expect("32-byte chunk")))
            .collect();
        let slot = self
            .tiles
            .entry((tile.level, tile.index))
            .or_insert((0, Vec::new()));
        if tile.width > slot.0 {
            *slot = (tile.width, hashes);
        }
        Ok(())
    }
}

impl HashReader for TileSet {
    type Error = TileError;
    fn read_hash(&self, level: u32, index: u64) -> Result<Hash, TileError> {
        let need = tile_for_hash(level, index, self.size)
            .ok_or(ProofError::MissingHash { level, index })?;
        let sub = level % TILE_HEIGHT;
        let lo = (index << sub) - need.first();
        let hi = lo + (1u64 << sub);
        let missing = || TileError::MissingTile {
            level,
            index,
            path: need.path(),
        };
        let (width, hashes) = self
            .tiles
            .get(&(need.level, need.index))
            .ok_or_else(missing)?;
        if u64::from(*width) < hi {
            return Err(missing());
        }
        // The subtree of 2^sub tile hashes, folded pairwise (RFC 9162 2.1.1).
        let mut row: Vec<Hash> = hashes[lo as usize..hi as usize].to_vec();
        while row.len() > 1 {
            row = row
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
        }
        Ok(row[0])
    }
}

/// The inclusion proof of `index` in the tree of `size`, from tiles.
pub fn inclusion_proof_from_tiles(
    tiles: &TileSet,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TileError> {
    merkle::inclusion_proof(tiles, index, size)
}

/// The consistency proof from `old` to `new`, from tiles of size `new`.
pub fn consistency_proof_from_tiles(
    tiles: &TileSet,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, TileError> {
    merkle::consistency_proof(tiles, old, new)
}

/// tlog-tiles: an entry bundle is each entry with a big-endian u16 length
/// prefix, concatenated.
pub fn encode_entry_bundle<'a>(
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::new();
    for (index, e) in entries.into_iter().enumerate() {
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLong {
            index,
            len: e.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Splits an entry bundle into its entries.
pub fn parse_entry_bundle(bytes: &[u8]) -> Result<Vec<&[u8]>, TileError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let index = out.len();
        if bytes.len() - at < 2 {
            return Err(TileError::BundleTruncated {
                index,
                offset: at,
                why: "has a 1-byte length prefix (2 needed)".into(),
            });
        }
        let len = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
        let start = at + 2;
        if bytes.len() - start < len {
            return Err(TileError::BundleTruncated {
                index,
                offset: at,
                why: format!(
                    "claims {len} bytes, but only {} remain",
                    bytes.len() - start
                ),
            });
        }
        out.push(&bytes[start..start + len]);
        at = start + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::merkle::{MemoryTree, verify_consistency, verify_inclusion};

    fn tree(n: u64) -> MemoryTree {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.push(leaf_hash(&i.to_le_bytes()));
        }
        t
    }

    // What a server holding `t` returns for `tile`.
    fn serve(t: &MemoryTree, tile: &Tile) -> Vec<u8> {
        let level = u32::from(tile.level) * TILE_HEIGHT;
        (0..u64::from(tile.width))
            .flat_map(|i| t.read_hash(level, tile.first() + i).unwrap().0)
            .collect()
    }

    fn fetch(t: &MemoryTree, size: u64, need: &[Tile]) -> TileSet {
        let mut set = TileSet::new(size);
        for tile in need {
            assert!(
                tile_exists(tile, size),
                "{} not in tree {size}",
                tile.path()
            );
            set.insert(*tile, &serve(t, tile)).unwrap();
        }
        set
    }

    #[test]
    fn paths_match_the_spec_examples() {
        let t = |level, index, width| Tile {
            level,
            index,
            width,
        };
        assert_eq!(t(0, 1234067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(
            t(1, 1234067, 8).entries_path(),
            "tile/entries/x001/x234/067.p/8"
        );
        assert_eq!(t(2, 0, 1).path(), "tile/2/000.p/1");
        assert_eq!(t(0, 1000, 256).path(), "tile/0/x001/000");
        assert_eq!(t(0, 999, 255).path(), "tile/0/999.p/255");
    }

    #[test]
    fn paths_round_trip_and_bad_paths_are_refused() {
        for index in [
            0,
            1,
            999,
            1000,
            1001,
            999_999,
            1_000_000,
            1234067,
            (1u64 << 56) - 1,
        ] {
            for width in [1, 17, 255, 256] {
                let t = Tile {
                    level: 0,
                    index,
                    width,
                };
                assert_eq!(Tile::parse_path(&t.path()), Ok(TilePath::Hashes(t)));
                assert_eq!(
                    Tile::parse_path(&format!("/{}", t.entries_path())),
                    Ok(TilePath::Entries(t))
                );
            }
        }
        for bad in [
            "tile/0/1",
            "tile/00/001",
            "tile/64/000",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/08",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/x001",
            "tile/0/x1/002",
            "tile/0/0a1",
            "tile/entries/001.p/",
            "tiles/0/001",
            "tile/0",
            "tile/0/x999/x999/x999/x999/x999/x999/999",
            "tile/7/001",
        ] {
            assert!(
                matches!(Tile::parse_path(bad), Err(TileError::BadPath { .. })),
                "{bad} was accepted"
            );
        }
        let e = Tile::parse_path("tile/0/x000/001").unwrap_err().to_string();
        assert_eq!(
            e,
            "tile path \"tile/0/x000/001\": index has a redundant leading x000 element"
        );
    }

    #[test]
    fn tree_shape_matches_the_spec_example() {
        // "a tree of size 70,000 will be represented by 273 full level 0
        // tiles, one partial level 0 tile of width 112, one full level 1
        // tile, one partial level 1 tile of width 17, and one partial level 2
        // tile of width 1."
        assert_eq!(tile_in_tree(0, 272, 70_000).unwrap().width, 256);
        assert_eq!(tile_in_tree(0, 273, 70_000).unwrap().width, 112);
        assert_eq!(tile_in_tree(0, 274, 70_000), None);
        assert_eq!(tile_in_tree(1, 0, 70_000).unwrap().width, 256);
        assert_eq!(tile_in_tree(1, 1, 70_000).unwrap().width, 17);
        assert_eq!(tile_in_tree(2, 0, 70_000).unwrap().width, 1);
        assert_eq!(tile_in_tree(3, 0, 70_000), None);
        // "a tree of size 256 will be represented by a full level 0 tile and
        // a partial level 1 tile of width 1."
        assert_eq!(tile_in_tree(0, 0, 256).unwrap().width, 256);
        assert_eq!(tile_in_tree(0, 1, 256), None);
        assert_eq!(tile_in_tree(1, 0, 256).unwrap().width, 1);
    }

    #[test]
    fn every_proof_rebuilt_from_tiles_verifies() {
        let big = tree(1100);
        // Every size up to 130 exhaustively; around tile edges sampled.
        let mut sizes: Vec<u64> = (1..=130).collect();
        sizes.extend([255, 256, 257, 511, 512, 513, 767, 768, 1024, 1025, 1100]);
        for &size in &sizes {
            let root = big.root_at(size).unwrap();
            let need = tiles_for_root(size).unwrap();
            assert_eq!(merkle::root(&fetch(&big, size, &need), size).unwrap(), root);
            let step = if size > 130 { 37 } else { 1 };
            for index in (0..size).step_by(step) {
                let need = tiles_for_inclusion(index, size).unwrap();
                let set = fetch(&big, size, &need);
                let proof = inclusion_proof_from_tiles(&set, index, size).unwrap();
                assert_eq!(proof, merkle::inclusion_proof(&big, index, size).unwrap());
                let leaf = big.read_hash(0, index).unwrap();
                verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
            }
            for old in (1..=size).step_by(step) {
                let need = tiles_for_consistency(old, size).unwrap();
                let set = fetch(&big, size, &need);
                let proof = consistency_proof_from_tiles(&set, old, size).unwrap();
                let old_root = big.root_at(old).unwrap();
                verify_consistency(old, size, &old_root, &root, &proof).unwrap();
            }
        }
    }

    #[test]
    fn level_one_tiles_are_used_above_256_leaves() {
        let need = tiles_for_inclusion(0, 70_000).unwrap();
        let paths: Vec<String> = need.iter().map(Tile::path).collect();
        assert_eq!(
            paths,
            [
                "tile/0/000",
                "tile/0/273.p/112",
                "tile/1/000",
                "tile/1/001.p/17"
            ]
        );
    }

    #[test]
    fn a_missing_or_short_tile_is_named() {
        let t = tree(600);
        let need = tiles_for_inclusion(5, 600).unwrap();
        let set = fetch(&t, 600, &need[..1]);
        let e = inclusion_proof_from_tiles(&set, 5, 600).unwrap_err();
        assert_eq!(
            e.to_string(),
            "hash at level 8, index 1 needs tile tile/1/000.p/2, which was not supplied"
        );
        let mut set = TileSet::new(600);
        let e = set.insert(need[0], &[0u8; 31]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tile tile/0/000: 31 bytes, expected 8192 (256 hashes of 32 bytes)"
        );
    }

    #[test]
    fn a_wrong_tile_hash_breaks_the_proof() {
        let t = tree(300);
        let root = t.root_at(300).unwrap();
        let need = tiles_for_inclusion(10, 300).unwrap();
        for (ti, tile) in need.iter().enumerate() {
            let good = serve(&t, tile);
            // Flip one bit of each hash the proof uses: the proof must fail.
            let mut broke = 0;
            for h in 0..usize::from(tile.width) {
                let mut data = good.clone();
                data[h * 32] ^= 1;
                let mut set = TileSet::new(300);
                for (tj, other) in need.iter().enumerate() {
                    let d = if tj == ti {
                        data.clone()
                    } else {
                        serve(&t, other)
                    };
                    set.insert(*other, &d).unwrap();
                }
                let proof = inclusion_proof_from_tiles(&set, 10, 300).unwrap();
                if verify_inclusion(&t.read_hash(0, 10).unwrap(), 10, 300, &proof, &root).is_err() {
                    broke += 1;
                }
            }
            // Index 10 in a tree of 300: every hash of both tiles feeds the
            // proof, except the leaf's own.
            let expect = if tile.level == 0 && tile.index == 0 {
                usize::from(tile.width) - 1
            } else {
                usize::from(tile.width)
            };
            assert_eq!(broke, expect, "tile {}", tile.path());
        }
    }

    #[test]
    fn entry_bundles_round_trip_and_refuse_damage() {
        let entries: Vec<Vec<u8>> = vec![b"{}".to_vec(), vec![], vec![b'x'; 65_535]];
        let b = encode_entry_bundle(entries.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(&b[..4], &[0, 2, b'{', b'}']);
        let back = parse_entry_bundle(&b).unwrap();
        assert_eq!(back, entries.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert_eq!(encode_entry_bundle(back.iter().copied()).unwrap(), b);
        let e = encode_entry_bundle([vec![0u8; 65_536].as_slice()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "entry 0: 65536 bytes, more than the 65535 an entry bundle can hold"
        );
        for cut in 1..8 {
            let e = parse_entry_bundle(&b[..b.len() - cut]).unwrap_err();
            assert!(
                matches!(e, TileError::BundleTruncated { index: 2, .. }),
                "{e}"
            );
        }
        assert_eq!(
            parse_entry_bundle(&[0, 2, b'a']).unwrap_err().to_string(),
            "entry bundle: entry 0 at byte 0 claims 2 bytes, but only 1 remain"
        );
    }
}
