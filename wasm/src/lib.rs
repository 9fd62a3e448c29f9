//! WebAssembly adapter over [`stele_core::verify::StreamVerifier`]: wrapper
//! types with camelCase names, input limits checked here, core errors turned
//! into JS errors with the core error's text. No verification logic lives here.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use stele_core::VerifierKey;
use stele_core::checkpoint::SignedCheckpoint;
use stele_core::verify::{Options, StreamVerifier};
use wasm_bindgen::prelude::*;

/// Most pinned keys accepted.
const MAX_KEYS: usize = 64;
/// Longest key list or checkpoint text accepted, in bytes.
const MAX_TEXT: usize = 64 * 1024;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = Number)]
    fn js_number(s: &str) -> f64;
    #[wasm_bindgen(js_name = String)]
    fn js_string(n: f64) -> String;
}

/// `String(Number(s))`: JavaScript is the reference for RFC 8785 number
/// form, so core checks non-integer numbers with it instead of carrying a
/// float parser and formatter (stele-core without `std-float`).
fn js_number_form(s: &str) -> Option<String> {
    let n = js_number(s);
    n.is_finite().then(|| js_string(n))
}

/// Registers [`js_number_form`] with core; every entry point that parses
/// JSON calls it first (each worker has its own wasm instance).
fn init() {
    stele_core::canonical::set_number_formatter(js_number_form);
}

/// Test hook: core's canonical-number check through the JavaScript
/// formatter; `None` if `number` is canonical, else core's message.
#[doc(hidden)]
pub fn check_number(number: &str) -> Option<String> {
    init();
    stele_core::canonical::validate(number.as_bytes())
        .err()
        .map(|e| e.to_string())
}

fn js_err(msg: impl std::fmt::Display) -> JsError {
    JsError::new(&msg.to_string())
}

/// Parses newline-separated verifier keys (blank lines ignored).
fn parse_keys(keys: &str) -> Result<Vec<VerifierKey>, JsError> {
    if keys.len() > MAX_TEXT {
        return Err(js_err(format!(
            "trusted keys: {} bytes, more than the limit of {MAX_TEXT}",
            keys.len()
        )));
    }
    let mut out = Vec::new();
    for (i, k) in keys
        .lines()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .enumerate()
    {
        if i >= MAX_KEYS {
            return Err(js_err(format!("more than {MAX_KEYS} trusted keys")));
        }
        out.push(VerifierKey::parse(k).map_err(|e| js_err(format!("trusted key {}: {e}", i + 1)))?);
    }
    Ok(out)
}

/// A streaming verifier for JavaScript.
#[wasm_bindgen]
#[derive(Debug)]
pub struct WasmVerifier {
    inner: Option<StreamVerifier>,
    // Per column (type, actor, action, target, outcome): string -> code (1-based).
    dicts: [std::collections::HashMap<String, u32>; 5],
}

#[wasm_bindgen]
impl WasmVerifier {
    /// `keys`: verifier keys, one per line. `trusted_checkpoint`: an earlier
    /// signed checkpoint the log must extend; it must verify with `keys`.
    #[wasm_bindgen(constructor)]
    pub fn new(keys: &str, trusted_checkpoint: Option<String>) -> Result<WasmVerifier, JsError> {
        init();
        let keys = parse_keys(keys)?;
        let mut opts = Options::new(keys);
        opts.collect_entries = true;
        if let Some(text) = trusted_checkpoint.filter(|t| !t.trim().is_empty()) {
            if text.len() > MAX_TEXT {
                return Err(js_err("earlier checkpoint: too large"));
            }
            let mut text = text.replace("\r\n", "\n");
            if !text.ends_with('\n') {
                text.push('\n');
            }
            let sc = SignedCheckpoint::parse(text.as_bytes())
                .map_err(|e| js_err(format!("earlier checkpoint: {e}")))?;
            if sc.verify(&opts.keys).verified_by.is_empty() {
                return Err(js_err("earlier checkpoint: not signed by a trusted key"));
            }
            opts.trusted = Some(sc.checkpoint);
        }
        Ok(WasmVerifier {
            inner: Some(StreamVerifier::new(opts)),
            dicts: Default::default(),
        })
    }

    /// Feeds the next bytes of the file.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        self.inner
            .as_mut()
            .ok_or_else(|| js_err("verifier already finished"))?
            .push(chunk);
        Ok(())
    }

    /// Entry summaries read since the last call, as a JSON array.
    #[wasm_bindgen(js_name = takeEntries)]
    pub fn take_entries(&mut self) -> Result<String, JsError> {
        let v = self
            .inner
            .as_mut()
            .ok_or_else(|| js_err("verifier already finished"))?;
        Ok(stele_core::verify::EntrySummary::list_to_json(
            &v.take_entries(),
        ))
    }

    /// Entry summaries read since the last call, columnar, for tables of
    /// millions of rows: `{n, seq, ts, line, offset, length}` as Float64Arrays
    /// (ts in microseconds since the epoch, NaN when absent), `codes`: five
    /// Uint32Arrays (type, actor, action, target, outcome; 0 = absent, k = the
    /// k-th string of that column), `fresh`: five arrays of the strings first
    /// seen in this batch, and `tsRaw: []`.
    #[wasm_bindgen(js_name = takeBatch)]
    pub fn take_batch(&mut self) -> Result<js_sys::Object, JsError> {
        let v = self
            .inner
            .as_mut()
            .ok_or_else(|| js_err("verifier already finished"))?;
        let rows = v.take_entries();
        let n = rows.len();
        let num = |f: &dyn Fn(&stele_core::verify::EntrySummary) -> f64| {
            js_sys::Float64Array::from(&rows.iter().map(f).collect::<Vec<f64>>()[..])
        };
        let out = js_sys::Object::new();
        let set = |k: &str, val: &JsValue| {
            js_sys::Reflect::set(&out, &JsValue::from_str(k), val)
                .map(|_| ())
                .map_err(|_| js_err("could not build the batch"))
        };
        set("n", &JsValue::from_f64(n as f64))?;
        set("seq", &num(&|r| r.seq.map_or(f64::NAN, |s| s as f64)))?;
        set("ts", &num(&|r| r.ts_us.map_or(f64::NAN, |t| t as f64)))?;
        set("line", &num(&|r| r.line as f64))?;
        set("offset", &num(&|r| r.offset as f64))?;
        set("length", &num(&|r| r.length as f64))?;
        let codes = js_sys::Array::new();
        let fresh = js_sys::Array::new();
        for (c, dict) in self.dicts.iter_mut().enumerate() {
            let mut col = Vec::with_capacity(n);
            let new = js_sys::Array::new();
            for r in &rows {
                let field = match c {
                    0 => &r.kind,
                    1 => &r.actor,
                    2 => &r.action,
                    3 => &r.target,
                    _ => &r.outcome,
                };
                col.push(match field {
                    None => 0,
                    Some(s) => match dict.get(s) {
                        Some(&code) => code,
                        None => {
                            let code = dict.len() as u32 + 1;
                            dict.insert(s.clone(), code);
                            new.push(&JsValue::from_str(s));
                            code
                        }
                    },
                });
            }
            codes.push(&js_sys::Uint32Array::from(&col[..]));
            fresh.push(&new);
        }
        set("codes", &codes)?;
        set("fresh", &fresh)?;
        set("tsRaw", &js_sys::Array::new())?;
        Ok(out)
    }

    /// Feeds a block whose entry lines another worker already hashed and
    /// parsed with `prepareBlock` (same result as `push`, less work here).
    #[wasm_bindgen(js_name = pushPrepared)]
    pub fn push_prepared(&mut self, block: &[u8], prepared: &[u8]) -> Result<(), JsError> {
        let v = self
            .inner
            .as_mut()
            .ok_or_else(|| js_err("verifier already finished"))?;
        v.push_prepared(block, stele_core::verify::Prepared::decode_all(prepared));
        Ok(())
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> f64 {
        self.inner.as_ref().map_or(0.0, |v| v.bytes() as f64)
    }

    /// Ends the stream; returns the report as JSON.
    pub fn finish(&mut self) -> Result<String, JsError> {
        let v = self
            .inner
            .take()
            .ok_or_else(|| js_err("verifier already finished"))?;
        Ok(v.finish().to_json())
    }
}

/// Hashes and parses the entry lines of `block` (which starts at stream
/// offset `base` and ends at a line end), for `WasmVerifier.pushPrepared` in
/// another worker.
#[wasm_bindgen(js_name = prepareBlock)]
pub fn prepare_block(block: &[u8], base: f64) -> Result<Vec<u8>, JsError> {
    init();
    let base = js_u64("base", base)?;
    Ok(stele_core::verify::Prepared::encode_all(
        &stele_core::verify::prepare(block, base),
    ))
}

/// Parses a verifier key; returns `{"name":…,"key_id":…}` as JSON or throws.
#[wasm_bindgen(js_name = parseVerifierKey)]
pub fn parse_verifier_key(vkey: &str) -> Result<String, JsError> {
    if vkey.len() > MAX_TEXT {
        return Err(js_err("key too long"));
    }
    let k = VerifierKey::parse(vkey).map_err(js_err)?;
    let mut out = String::from("{\"name\":");
    stele_core::canonical::push_json_string(&mut out, k.name());
    out.push_str(&format!(",\"key_id\":\"{}\"}}", k.id_hex()));
    Ok(out)
}

// ---- Live mode: checking a running `stele serve` through C2SP tlog-tiles.
// Thin adapters over `stele_core::tiles`; the Merkle math stays in core.

/// Largest tree size or index accepted from JavaScript (exact in an f64).
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
/// Largest entry bundle accepted: 256 entries of at most 65535 bytes.
const MAX_BUNDLE: usize = 256 * (65_535 + 2);

fn js_u64(what: &str, v: f64) -> Result<u64, JsError> {
    if !(0.0..=MAX_SAFE).contains(&v) || v.fract() != 0.0 {
        // JavaScript's String(): f64's Display would add ~13 KB.
        let shown = if v.is_finite() {
            js_string(v)
        } else {
            "not a finite number".into()
        };
        return Err(js_err(format!(
            "{what} must be a whole number from 0 to 2^53-1, not {shown}"
        )));
    }
    Ok(v as u64)
}

/// A checkpoint whose signature verified with a pinned key.
#[wasm_bindgen]
#[derive(Debug)]
pub struct LiveCheckpoint {
    origin: String,
    size: u64,
    root: String,
    key_name: String,
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
}

/// Parses a signed checkpoint note (as served at `/checkpoint`) and checks
/// its signature with the pinned `keys` (one per line); throws if no pinned
/// key signed it.
#[wasm_bindgen(js_name = verifyCheckpoint)]
pub fn verify_checkpoint(note: &str, keys: &str) -> Result<LiveCheckpoint, JsError> {
    if note.len() > MAX_TEXT {
        return Err(js_err("checkpoint: too large"));
    }
    let keys = parse_keys(keys)?;
    if keys.is_empty() {
        return Err(js_err(
            "no pinned key: the checkpoint's signature cannot be checked",
        ));
    }
    let sc =
        SignedCheckpoint::parse(note.as_bytes()).map_err(|e| js_err(format!("checkpoint: {e}")))?;
    let v = sc.verify(&keys);
    if v.verified_by.is_empty() || !v.bad.is_empty() {
        return Err(js_err(format!(
            "checkpoint of size {} for {:?} is not signed by a pinned key",
            sc.checkpoint.size, sc.checkpoint.origin
        )));
    }
    let key_name = v.verified_by[0].name().to_string();
    Ok(LiveCheckpoint {
        origin: sc.checkpoint.origin.clone(),
        size: sc.checkpoint.size,
        root: sc.checkpoint.root.to_base64(),
        key_name,
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
    pub fn new(size: f64) -> Result<LiveTiles, JsError> {
        Ok(LiveTiles {
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
