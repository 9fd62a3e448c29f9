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
}

#[wasm_bindgen]
impl WasmVerifier {
    /// `keys`: verifier keys, one per line. `trusted_checkpoint`: an earlier
    /// signed checkpoint the log must extend; it must verify with `keys`.
    #[wasm_bindgen(constructor)]
    pub fn new(keys: &str, trusted_checkpoint: Option<String>) -> Result<WasmVerifier, JsError> {
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
        serde_json::to_string(&v.take_entries()).map_err(js_err)
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
        serde_json::to_string(&v.finish()).map_err(js_err)
    }
}

/// Parses a verifier key; returns `{"name":…,"key_id":…}` as JSON or throws.
#[wasm_bindgen(js_name = parseVerifierKey)]
pub fn parse_verifier_key(vkey: &str) -> Result<String, JsError> {
    if vkey.len() > MAX_TEXT {
        return Err(js_err("key too long"));
    }
    let k = VerifierKey::parse(vkey).map_err(js_err)?;
    Ok(serde_json::json!({"name": k.name(), "key_id": k.id_hex()}).to_string())
}
