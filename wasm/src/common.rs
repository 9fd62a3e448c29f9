//! Helpers shared by the verifier module (`wasm/`) and the live-mode module
//! (`wasm-live/`), compiled into each (`#[path]`), so neither module carries
//! the other's exports.

use stele_core::VerifierKey;
use wasm_bindgen::prelude::*;

// TLSF (rlsf) instead of std's dlmalloc on wasm32: about 7 KB less wasm per
// module and no slower here; declaring it needs no unsafe code.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: rlsf::GlobalTlsf = rlsf::GlobalTlsf::new();

/// Most pinned keys accepted.
pub(crate) const MAX_KEYS: usize = 64;
/// Longest key list or checkpoint text accepted, in bytes.
pub(crate) const MAX_TEXT: usize = 64 * 1024;
/// Largest tree size, index or offset accepted from JavaScript (exact in an f64).
pub(crate) const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

#[wasm_bindgen]
extern "C" {
    /// JavaScript's `String(n)`.
    #[wasm_bindgen(js_name = String)]
    pub fn js_string(n: f64) -> String;
}

/// A JS error with `msg` as its message.
pub(crate) fn js_err(msg: impl std::fmt::Display) -> JsError {
    JsError::new(&msg.to_string())
}

/// Parses newline-separated verifier keys (blank lines ignored).
pub(crate) fn parse_keys(keys: &str) -> Result<Vec<VerifierKey>, JsError> {
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

/// A whole number from JavaScript, 0 to 2^53-1.
pub(crate) fn js_u64(what: &str, v: f64) -> Result<u64, JsError> {
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
