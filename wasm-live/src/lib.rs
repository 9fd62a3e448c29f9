//! WebAssembly adapter for live mode (web/src/live.js): checks a running
//! `stele serve` through C2SP tlog-tiles. Thin adapters over
//! `stele_core::tiles` and checkpoint verification; the Merkle math stays in
//! core. A module apart from the verifier's (`wasm/`), which the page loads
//! only in live mode, so the verifier does not carry this code.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use wasm_bindgen::prelude::*;

#[path = "../../wasm/src/common.rs"]
mod common;
use common::{MAX_KEYS, MAX_TEXT, js_err, js_u64, parse_keys};

/// Largest entry bundle accepted: 256 entries of at most 65535 bytes.
const MAX_BUNDLE: usize = 256 * (65_535 + 2);

/// A checkpoint whose signature verified with a pinned key.
#[wasm_bindgen]
#[derive(Debug)]
pub struct LiveCheckpoint {
    origin: String,
    size: u64,
    root: String,
    key_name: String,
    key_id: String,
}

#[wasm_bindgen]
impl LiveCheckpoint {
    /// The log's origin line.
    #[wasm_bindgen(getter)]
    pub fn origin(&self) -> String {
        self.origin.clone()
    }
    /// The tree size.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> f64 {
        self.size as f64
    }
    /// The root hash, base64.
    #[wasm_bindgen(getter)]
    pub fn root(&self) -> String {
        self.root.clone()
    }
    /// Name of the key that signed it.
    #[wasm_bindgen(getter, js_name = keyName)]
    pub fn key_name(&self) -> String {
        self.key_name.clone()
    }
    /// ID of the key that signed it (8 hex digits): keys of a rotated log
    /// share their name.
    #[wasm_bindgen(getter, js_name = keyId)]
    pub fn key_id(&self) -> String {
        self.key_id.clone()
    }
}

/// Parses a signed checkpoint note (as served at `/checkpoint`) and checks
/// its signature with the pinned `keys` (one per line), then the
/// revocations `revoked` (each `VKEY@SIZE`, docs/FORMAT.md 15.3, judged by
/// core's `revoked_signature`: live mode reads no key history); throws if
/// no pinned key signed it or a revoked key did.
#[wasm_bindgen(js_name = verifyCheckpoint)]
pub fn verify_checkpoint(
    note: &str,
    keys: &str,
    revoked: Vec<String>,
) -> Result<LiveCheckpoint, JsError> {
    if note.len() > MAX_TEXT {
        return Err(js_err("checkpoint: too large"));
    }
    let keys = parse_keys(keys)?;
    if revoked.len() > MAX_KEYS {
        return Err(js_err(format!("more than {MAX_KEYS} revoked keys")));
    }
    let revoked = stele_core::verify::parse_revoked_list(&revoked).map_err(js_err)?;
    let sc = stele_core::checkpoint::parse_trusted(note.as_bytes(), &keys)
        .map_err(|e| js_err(format!("checkpoint: {e}")))?;
    let size = sc.checkpoint.size;
    let v = sc.verify(&keys);
    if let Some((k, from)) = stele_core::verify::revoked_signature(&v.verified_by, size, &revoked) {
        return Err(js_err(format!(
            "checkpoint: the tree of size {size} is signed by key ID {} ({}), which is revoked from size {from}: a revoked key's signature on a tree of that size or more is a failure (key_revoked)",
            k.id_hex(),
            k.name()
        )));
    }
    let (key_name, key_id) = v
        .verified_by
        .first()
        .map(|k| (k.name().to_string(), k.id_hex()))
        .unwrap_or_default();
    Ok(LiveCheckpoint {
        origin: sc.checkpoint.origin.clone(),
        size,
        root: sc.checkpoint.root.to_base64(),
        key_name,
        key_id,
    })
}

/// Tiles fetched for one tree size, from which proofs are computed.
#[wasm_bindgen]
#[derive(Debug)]
pub struct LiveTiles {
    inner: stele_core::tiles::TileSet,
}

#[wasm_bindgen]
impl LiveTiles {
    /// An empty set for the tree of `size` entries (a verified checkpoint's size).
    #[wasm_bindgen(constructor)]
    pub fn new(size: f64) -> Result<Self, JsError> {
        Ok(Self {
            inner: stele_core::tiles::TileSet::new(js_u64("tree size", size)?),
        })
    }

    /// The tile paths (`tile/<L>/<N>[.p/<W>]`, relative to the server) that
    /// the inclusion proof of entry `index` needs.
    #[wasm_bindgen(js_name = tilesForInclusion)]
    pub fn tiles_for_inclusion(&self, index: f64) -> Result<Vec<String>, JsError> {
        let index = js_u64("entry index", index)?;
        let tiles =
            stele_core::tiles::tiles_for_inclusion(index, self.inner.size()).map_err(js_err)?;
        Ok(tiles.iter().map(stele_core::tiles::Tile::path).collect())
    }

    /// The entry bundle path holding entry `index` in this tree.
    #[wasm_bindgen(js_name = bundlePath)]
    pub fn bundle_path(&self, index: f64) -> Result<String, JsError> {
        let index = js_u64("entry index", index)?;
        let size = self.inner.size();
        stele_core::tiles::tile_in_tree(0, index / 256, size)
            .filter(|_| index < size)
            .map(|t| t.entries_path())
            .ok_or_else(|| js_err(format!("entry {index} is outside a tree of size {size}")))
    }

    /// The tile paths the consistency proof from the tree of `old` entries
    /// to this tree needs.
    #[wasm_bindgen(js_name = tilesForConsistency)]
    pub fn tiles_for_consistency(&self, old: f64) -> Result<Vec<String>, JsError> {
        let old = js_u64("old tree size", old)?;
        let tiles =
            stele_core::tiles::tiles_for_consistency(old, self.inner.size()).map_err(js_err)?;
        Ok(tiles.iter().map(stele_core::tiles::Tile::path).collect())
    }

    /// Checks that the tree of `old` entries with root `old_root` (base64) is a
    /// prefix of this tree, whose root is `root`: the proof is computed from
    /// the tiles added, then checked by core (RFC 9162 2.1.4.2).
    #[wasm_bindgen(js_name = verifyConsistency)]
    pub fn verify_consistency(&self, old: f64, old_root: &str, root: &str) -> Result<(), JsError> {
        let old = js_u64("old tree size", old)?;
        let size = self.inner.size();
        let parse = |what: &str, b64: &str| {
            stele_core::Hash::from_base64(b64)
                .ok_or_else(|| js_err(format!("{what} is not base64 of 32 bytes")))
        };
        let (old_root, root) = (parse("old root", old_root)?, parse("root", root)?);
        let proof = stele_core::tiles::consistency_proof_from_tiles(&self.inner, old, size)
            .map_err(js_err)?;
        stele_core::merkle::verify_consistency(old, size, &old_root, &root, &proof).map_err(|e| {
            js_err(format!(
                "the tree of size {size} does not extend the tree of size {old}: {e}"
            ))
        })
    }

    /// Adds a fetched tile.
    #[wasm_bindgen(js_name = addTile)]
    pub fn add_tile(&mut self, path: &str, data: &[u8]) -> Result<(), JsError> {
        if path.len() > 256 || data.len() > 8192 {
            return Err(js_err(format!("tile {path:.256}: too large")));
        }
        match stele_core::tiles::Tile::parse_path(path).map_err(js_err)? {
            stele_core::tiles::TilePath::Hashes(t) => self.inner.insert(t, data).map_err(js_err),
            stele_core::tiles::TilePath::Entries(_) => Err(js_err(format!(
                "{path} is an entry bundle, not a hash tile"
            ))),
        }
    }

    /// Checks that `entry` (the line without its `\n`) is entry `index` of
    /// the tree whose root is `root` (base64), with a proof computed from
    /// the tiles added. Returns the entry's leaf hash (base64); throws with
    /// core's reason otherwise.
    #[wasm_bindgen(js_name = verifyInclusion)]
    pub fn verify_inclusion(
        &self,
        entry: &[u8],
        index: f64,
        root: &str,
    ) -> Result<String, JsError> {
        let index = js_u64("entry index", index)?;
        let size = self.inner.size();
        let root = stele_core::Hash::from_base64(root)
            .ok_or_else(|| js_err("root is not base64 of 32 bytes"))?;
        let proof = stele_core::tiles::inclusion_proof_from_tiles(&self.inner, index, size)
            .map_err(js_err)?;
        let leaf = stele_core::leaf_hash(entry);
        stele_core::merkle::verify_inclusion(&leaf, index, size, &proof, &root)
            .map_err(|e| js_err(format!("entry {index} in the tree of size {size}: {e}")))?;
        Ok(leaf.to_base64())
    }
}

/// Entry `position` (0-based) of a tlog-tiles entry bundle.
#[wasm_bindgen(js_name = bundleEntry)]
pub fn bundle_entry(bundle: &[u8], position: u32) -> Result<Vec<u8>, JsError> {
    if bundle.len() > MAX_BUNDLE {
        return Err(js_err("entry bundle: too large"));
    }
    let entries = stele_core::tiles::parse_entry_bundle(bundle).map_err(js_err)?;
    entries
        .get(position as usize)
        .map(|e| e.to_vec())
        .ok_or_else(|| {
            js_err(format!(
                "entry bundle has {} entries, not {}",
                entries.len(),
                position + 1
            ))
        })
}
