//! One integration step, pure: from the tree's right edge at the old size
//! and the new entries, every hash tile and entry bundle that changes.
//! No I/O, so a step is the same bytes whoever computes it and however
//! often (the object writes are create-only and compared when present).

use stele_core::hash::{Hash, leaf_hash, node_hash};
use stele_core::tiles::{TILE_HEIGHT, TILE_WIDTH, Tile, encode_entry_bundle, tile_in_tree};

const W: u64 = TILE_WIDTH as u64;

/// Hashes at tree level `8 * level` in a tree of `size` leaves.
pub(crate) fn hashes_at(level: u8, size: u64) -> u64 {
    let shift = u32::from(level) * TILE_HEIGHT;
    if shift >= 64 { 0 } else { size >> shift }
}

/// The partial tiles (level by level, then the entry bundle) a step from
/// `old` to `new` entries must read: the right edge of the old tree at each
/// level that grows. Full tiles are never read back.
pub(crate) fn edge_tiles(old: u64, new: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    for level in 0u8..=63 {
        let (o, n) = (hashes_at(level, old), hashes_at(level, new));
        if o == n {
            break;
        }
        if !o.is_multiple_of(W)
            && let Some(t) = tile_in_tree(level, o / W, old)
        {
            out.push(t);
        }
    }
    out
}

/// The objects one step writes: hash tiles and entry bundles with their bytes.
#[derive(Debug, Default)]
pub(crate) struct Step {
    /// (tile, bytes) for hash tiles.
    pub(crate) tiles: Vec<(Tile, Vec<u8>)>,
    /// (tile, bytes) for entry bundles (level 0 coordinates).
    pub(crate) bundles: Vec<(Tile, Vec<u8>)>,
}

/// A step from sequenced batches (`(n, lines)`: `n` entry lines, each
/// ending in `\n`) with the old tree's right edge (`edges` as for [`step`];
/// `held`: the bytes of its partial entry bundle, empty if none), read back
/// from object storage and checked first against `left`, the old tree's
/// compact range as the database holds it: the objects to write and the new
/// entries' leaf hashes (each hashed once).
pub(crate) fn prepare(
    old: u64,
    left: &[Hash],
    batches: &[(u64, Vec<u8>)],
    edges: &[Vec<Hash>],
    held: &[u8],
) -> Result<(Step, Vec<Hash>), String> {
    let mut lines: Vec<&[u8]> = Vec::new();
    for (n, b) in batches {
        let body = b.strip_suffix(b"\n").unwrap_or(b);
        let before = lines.len();
        lines.extend(body.split(|c| *c == b'\n'));
        if (lines.len() - before) as u64 != *n {
            return Err("a sequenced batch has the wrong number of lines".into());
        }
    }
    let edge_bundle =
        stele_core::tiles::parse_entry_bundle(held).map_err(|e| format!("entry bundle: {e}"))?;
    check_edge(old, left, edges, &edge_bundle)?;
    let leaves: Vec<Hash> = lines.iter().map(|l| leaf_hash(l)).collect();
    let s = step(old, edges, &edge_bundle, &lines, &leaves)?;
    Ok((s, leaves))
}

/// Computes a step. `edges[l]` holds the hashes of the old tree's partial
/// tile at level `l` (empty when that level's right edge is a tile
/// boundary); `edge_bundle` the entries of its partial bundle; `lines` the
/// new entry lines (no `\n`), entries `old..old + lines.len()`, and
/// `leaves` their leaf hashes.
pub(crate) fn step(
    old: u64,
    edges: &[Vec<Hash>],
    edge_bundle: &[&[u8]],
    lines: &[&[u8]],
    leaves: &[Hash],
) -> Result<Step, String> {
    let new = old + lines.len() as u64;
    let mut out = Step::default();
    // Entry bundles, like level 0.
    let base = old / W * W;
    if edge_bundle.len() as u64 != old - base {
        return Err(format!(
            "the partial entry bundle at {old} holds {} entries, not {}",
            edge_bundle.len(),
            old - base
        ));
    }
    let all: Vec<&[u8]> = edge_bundle.iter().chain(lines).copied().collect();
    for (k, chunk) in all.chunks(TILE_WIDTH as usize).enumerate() {
        let t = Tile {
            level: 0,
            index: base / W + k as u64,
            width: chunk.len() as u16,
        };
        let b = encode_entry_bundle(chunk.iter().copied()).map_err(|e| e.to_string())?;
        out.bundles.push((t, b));
    }
    // Hash tiles, level by level: the new hashes of a level are the roots
    // of the tiles the level below completed.
    if leaves.len() != lines.len() {
        return Err(format!(
            "{} leaf hashes for {} entries",
            leaves.len(),
            lines.len()
        ));
    }
    let mut fresh: Vec<Hash> = leaves.to_vec();
    for level in 0u8..=63 {
        let (o, n) = (hashes_at(level, old), hashes_at(level, new));
        if o == n {
            break;
        }
        let base = o / W * W;
        let edge = edges.get(usize::from(level)).map_or(&[][..], Vec::as_slice);
        if edge.len() as u64 != o - base {
            return Err(format!(
                "the partial tile at level {level} holds {} hashes, not {}",
                edge.len(),
                o - base
            ));
        }
        if fresh.len() as u64 != n - o {
            return Err(format!(
                "level {level}: {} new hashes, expected {}",
                fresh.len(),
                n - o
            ));
        }
        let row: Vec<Hash> = edge.iter().chain(&fresh).copied().collect();
        let mut next = Vec::new();
        for (k, chunk) in row.chunks(TILE_WIDTH as usize).enumerate() {
            let t = Tile {
                level,
                index: base / W + k as u64,
                width: chunk.len() as u16,
            };
            out.tiles
                .push((t, chunk.iter().flat_map(|h| h.0).collect::<Vec<u8>>()));
            if chunk.len() == TILE_WIDTH as usize {
                next.push(fold(chunk));
            }
        }
        fresh = next;
    }
    Ok(out)
}

/// Checks the old tree's right edge, as read back from object storage,
/// against `left` (its compact range, largest subtree first, from the
/// database): the edge is the only part of the old tree a step copies into
/// new objects, and those are create-only, so a replaced or damaged edge
/// object would otherwise be published for good (and the database rows of
/// its entries deleted). The hashes of a partial tile at level `l` split
/// exactly into the compact range's subtrees of heights `8l..8l + 8`: each
/// must fold to its stored hash. The partial bundle's entries must hash to
/// the level-0 edge.
fn check_edge(
    old: u64,
    left: &[Hash],
    edges: &[Vec<Hash>],
    edge_bundle: &[&[u8]],
) -> Result<(), String> {
    if left.len() != old.count_ones() as usize {
        return Err(format!(
            "the compact range of size {old} has {} hashes, not {}",
            left.len(),
            old.count_ones()
        ));
    }
    // The subtree of height k (a set bit of `old`): its stored hash.
    let stored = |k: u32| left[(old >> k).count_ones() as usize - 1];
    for (level, edge) in edges.iter().enumerate() {
        if edge.is_empty() {
            continue;
        }
        let lo = TILE_HEIGHT * level as u32;
        let mut at = 0usize;
        for k in (lo..lo + TILE_HEIGHT).rev().filter(|k| old >> k & 1 == 1) {
            let n = 1usize << (k - lo);
            let part = edge.get(at..at + n).ok_or_else(|| {
                format!("the partial tile at level {level} is shorter than the tree's edge")
            })?;
            if fold(part) != stored(k) {
                return Err(format!(
                    "the partial tile at level {level} does not match the integrated tree (its hashes {at}..{} do not give the stored subtree of height {k}): the object was replaced or damaged",
                    at + n
                ));
            }
            at += n;
        }
        if at != edge.len() {
            return Err(format!(
                "the partial tile at level {level} holds {} hashes, the tree's edge {at}",
                edge.len()
            ));
        }
    }
    if !edge_bundle.is_empty() {
        let hashes = edges.first().map_or(&[][..], Vec::as_slice);
        if hashes.len() != edge_bundle.len() {
            return Err(format!(
                "the partial entry bundle holds {} entries, the level-0 edge {}",
                edge_bundle.len(),
                hashes.len()
            ));
        }
        let base = old - old % W;
        if let Some(i) = edge_bundle
            .iter()
            .zip(hashes)
            .position(|(e, h)| leaf_hash(e) != *h)
        {
            return Err(format!(
                "entry {} in the partial entry bundle does not hash to the integrated tree: the object was replaced or damaged",
                base + i as u64
            ));
        }
    }
    Ok(())
}

/// The root of a perfect subtree from its 2^k hashes (RFC 9162 2.1.1).
fn fold(row: &[Hash]) -> Hash {
    let mut row = row.to_vec();
    while row.len() > 1 {
        row = row
            .chunks_exact(2)
            .map(|p| node_hash(&p[0], &p[1]))
            .collect();
    }
    row[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_core::tiles::{TileSet, parse_entry_bundle, tiles_for_root};

    // Grows a tree step by step (steps of odd sizes across tile and
    // level boundaries) keeping only what was "written", and checks every
    // tile against a tree built in memory.
    #[test]
    fn steps_build_the_same_tiles_as_the_whole_tree() {
        let lines: Vec<Vec<u8>> = (0..70_000u32)
            .map(|i| format!("{{\"i\":{i}}}").into_bytes())
            .collect();
        let mut store = std::collections::HashMap::<(bool, Tile), Vec<u8>>::new();
        let mut at = 0u64;
        let mut checked = 0;
        for (k, len) in [1u64, 254, 1, 300, 65_536 - 556, 1, 3000, 907]
            .iter()
            .enumerate()
        {
            let to = (at + len).min(lines.len() as u64);
            let edges: Vec<Vec<Hash>> = (0u8..8)
                .map(|l| {
                    edge_tiles(at, to)
                        .iter()
                        .find(|t| t.level == l)
                        .map_or(Vec::new(), |t| {
                            store[&(false, *t)]
                                .chunks(32)
                                .map(|c| Hash(c.try_into().unwrap()))
                                .collect()
                        })
                })
                .collect();
            let eb = tile_in_tree(0, at / W, at)
                .filter(|t| t.width < TILE_WIDTH && !at.is_multiple_of(W));
            let held = eb.map(|t| store[&(true, t)].clone()).unwrap_or_default();
            let edge_bundle = parse_entry_bundle(&held).unwrap();
            let new: Vec<&[u8]> = lines[at as usize..to as usize]
                .iter()
                .map(Vec::as_slice)
                .collect();
            let leaves: Vec<Hash> = new.iter().map(|l| leaf_hash(l)).collect();
            // The edge read back matches the tree; one changed hash at any
            // level, or one changed entry of the partial bundle, does not.
            let mut range = stele_core::merkle::CompactRange::new();
            for l in &lines[..at as usize] {
                range.push(leaf_hash(l));
            }
            let left: Vec<Hash> = range.hashes().copied().collect();
            check_edge(at, &left, &edges, &edge_bundle).unwrap();
            for level in 0..edges.len() {
                for i in [0, edges[level].len().saturating_sub(1)] {
                    if edges[level].is_empty() {
                        continue;
                    }
                    let mut bad = edges.clone();
                    bad[level][i].0[0] ^= 1;
                    let e = check_edge(at, &left, &bad, &edge_bundle).unwrap_err();
                    assert!(e.contains(&format!("level {level}")), "{e}");
                    checked += 1;
                }
            }
            if let Some(first) = edge_bundle.first() {
                let mut forged = first.to_vec();
                forged[1] = b' ';
                let mut bad = edge_bundle.clone();
                bad[0] = &forged;
                let e = check_edge(at, &left, &edges, &bad).unwrap_err();
                assert!(e.contains(&format!("entry {}", at / W * W)), "{e}");
                checked += 1;
            }
            let s = step(at, &edges, &edge_bundle, &new, &leaves).unwrap();
            for (t, b) in s.tiles {
                let _ = store.insert((false, t), b);
            }
            for (t, b) in s.bundles {
                let _ = store.insert((true, t), b);
            }
            at = to;
            let mut tree = stele_core::merkle::MemoryTree::new();
            for l in &lines[..at as usize] {
                tree.push(leaf_hash(l));
            }
            let mut set = TileSet::new(at);
            for t in tiles_for_root(at).unwrap() {
                set.insert(t, &store[&(false, t)]).unwrap();
            }
            assert_eq!(
                stele_core::merkle::root(&set, at).unwrap(),
                tree.root_at(at).unwrap(),
                "step {k}"
            );
        }
        assert!(checked >= 10, "{checked} damaged edges tried");
        // Every bundle holds its entries.
        let b = &store[&(
            true,
            Tile {
                level: 0,
                index: 3,
                width: TILE_WIDTH,
            },
        )];
        assert_eq!(parse_entry_bundle(b).unwrap()[5], &lines[3 * 256 + 5][..]);
    }

    #[test]
    fn a_wrong_edge_is_refused() {
        let l: &[u8] = b"{}";
        let h = [leaf_hash(l)];
        assert!(step(5, &[vec![Hash::default(); 4]], &[l; 5], &[l], &h).is_err());
        assert!(step(5, &[vec![Hash::default(); 5]], &[l; 4], &[l], &h).is_err());
        assert!(step(5, &[vec![Hash::default(); 5]], &[l; 5], &[l], &[]).is_err());
    }
}
