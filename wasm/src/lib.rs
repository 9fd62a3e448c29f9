//! WebAssembly adapter over [`stele_core::verify::StreamVerifier`]: wrapper
//! types with camelCase names, input limits checked here, core errors turned
//! into JS errors with the core error's text. No verification logic lives here.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use stele_core::VerifierKey;
use stele_core::verify::{Options, StreamVerifier};
use wasm_bindgen::prelude::*;

// Helpers shared with the live-mode module (wasm-live/, same source file).
#[path = "common.rs"]
mod common;
use common::{MAX_TEXT, js_err, js_u64, parse_keys};

pub mod table;
use table::Table;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = Number)]
    fn js_number(s: &str) -> f64;
}

/// `String(Number(s))`: JavaScript is the reference for RFC 8785 number
/// form, so core checks non-integer numbers with it instead of carrying a
/// float parser and formatter (stele-core without `std-float`).
fn js_number_form(s: &str) -> Option<String> {
    let n = js_number(s);
    n.is_finite().then(|| common::js_string(n))
}

/// Registers [`js_number_form`] with core; every entry point that parses
/// JSON calls it first (each worker has its own wasm instance).
fn init() {
    let _ = stele_core::canonical::set_number_formatter(js_number_form);
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

/// A streaming verifier for JavaScript.
#[wasm_bindgen]
#[derive(Debug)]
pub struct WasmVerifier {
    inner: Option<StreamVerifier<Table>>,
    /// The columns of the last take, reused (see `takeColumns`).
    cols: table::EntryColumns,
}

#[wasm_bindgen]
impl WasmVerifier {
    /// `keys`: verifier keys, one per line. `trusted_checkpoint`: an earlier
    /// signed checkpoint the log must extend; it must verify with `keys`.
    #[wasm_bindgen(constructor)]
    pub fn new(keys: &str, trusted_checkpoint: Option<String>) -> Result<Self, JsError> {
        init();
        let keys = parse_keys(keys)?;
        let mut opts = Options::new(keys);
        if let Some(text) = trusted_checkpoint.filter(|t| !t.trim().is_empty()) {
            if text.len() > MAX_TEXT {
                return Err(js_err("earlier checkpoint: too large"));
            }
            let sc = stele_core::checkpoint::parse_trusted(text.as_bytes(), &opts.keys)
                .map_err(|e| js_err(format!("earlier checkpoint: {e}")))?;
            opts.trusted = Some(sc.checkpoint);
        }
        Ok(Self {
            inner: Some(StreamVerifier::with_sink(opts, Table::default())),
            cols: table::EntryColumns::default(),
        })
    }

    /// Asks for the report's `input` block (docs/FORMAT.md 8.8): the file's
    /// name and the time (`YYYY-MM-DDTHH:MM:SSZ`) from the page, and, with
    /// `sha256`, the SHA-256 of the bytes pushed, computed by core as they
    /// stream. Call before the first `push`; throws after it.
    #[wasm_bindgen(js_name = describeInput)]
    pub fn describe_input(
        &mut self,
        name: Option<String>,
        verified_at: Option<String>,
        sha256: bool,
    ) -> Result<(), JsError> {
        let v = self
            .inner
            .as_mut()
            .ok_or_else(|| js_err("verifier already finished"))?;
        let meta = stele_core::verify::InputMeta {
            name,
            verified_at,
            sha256,
        };
        if v.set_input(meta) {
            Ok(())
        } else {
            Err(js_err("describeInput must come before the first push"))
        }
    }

    /// Keeps at most `values` distinct values, and `bytes` bytes of them,
    /// per column of `takeBatch`; a row whose value came later gets the
    /// code 4294967295 (not kept: read it from the entry's line).
    #[wasm_bindgen(js_name = limitValues)]
    pub fn limit_values(&mut self, values: u32, bytes: u32) -> Result<(), JsError> {
        let v = self
            .inner
            .as_mut()
            .ok_or_else(|| js_err("verifier already finished"))?;
        v.sink_mut().limit_values(table::ValueLimit {
            values: values.min(table::NOT_KEPT - 1),
            bytes: bytes as usize,
        });
        Ok(())
    }

    /// Feeds the next bytes of the file.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        let v = self
            .inner
            .as_mut()
            .ok_or_else(|| js_err("verifier already finished"))?;
        // The chunk's whole lines are hashed together (four at a time in
        // wasm), as a helper worker would; same report as a plain push. The
        // encoded form is prepareBlock's: one copy of that code in the module.
        let prepared = stele_core::verify::prepare_encoded(chunk, v.bytes());
        v.push_encoded(chunk, prepared);
        Ok(())
    }

    /// Entry summaries read since the last call, columnar, for tables of
    /// millions of rows: `{n, seq, ts, line, offset, length}` as Float64Arrays
    /// (ts in microseconds since the epoch, NaN when absent), `codes`: five
    /// Uint32Arrays (type, actor, action, target, outcome; 0 = absent, k = the
    /// k-th string of that column), `fresh`: five arrays of the strings first
    /// seen in this batch, and `tsRaw`: flat pairs `[row, ts text]` for the
    /// rows whose ts is beyond 2^53 microseconds (after 2255), where the
    /// Float64Array value is not exact.
    #[wasm_bindgen(js_name = takeBatch)]
    pub fn take_batch(&mut self) -> Result<js_sys::Object, JsError> {
        let _ = self.take_columns()?;
        let cols = &self.cols;
        let out = self.take_strings();
        let set = |k: &str, val: &JsValue| {
            js_sys::Reflect::set(&out, &JsValue::from_str(k), val)
                .map(|_| ())
                .map_err(|_| js_err("could not build the batch"))
        };
        let num = |v: &[f64]| JsValue::from(js_sys::Float64Array::from(v));
        set("n", &JsValue::from_f64(cols.seq.len() as f64))?;
        set("seq", &num(&cols.seq))?;
        set("ts", &num(&cols.ts_us))?;
        set("line", &num(&cols.line))?;
        set("offset", &num(&cols.offset))?;
        set("length", &num(&cols.length))?;
        let codes = js_sys::Array::new();
        for col in &cols.codes {
            let _ = codes.push(&js_sys::Uint32Array::from(&col[..]));
        }
        set("codes", &codes)?;
        Ok(out)
    }

    /// `takeBatch` without copies: the rows read since the last call are
    /// written into columns this verifier keeps and reuses (nothing is
    /// allocated per call once they are large enough), and their places in
    /// the module's memory are returned: `[n, seq, ts, line, offset, length,
    /// type, actor, action, target, outcome, strings]`, byte addresses of n
    /// Float64s (the first five) and n Uint32s (the codes); `strings` is 1
    /// when `takeStrings` has something (fresh values or `tsRaw`). The
    /// columns are valid until the next call on this verifier (the memory
    /// may move when it grows: view it right away).
    #[wasm_bindgen(js_name = takeColumns)]
    pub fn take_columns(&mut self) -> Result<Vec<u32>, JsError> {
        let v = self
            .inner
            .as_mut()
            .ok_or_else(|| js_err("verifier already finished"))?;
        v.sink_mut().take_columns_into(&mut self.cols);
        let c = &self.cols;
        let mut out = vec![c.seq.len() as u32];
        for col in [&c.seq, &c.ts_us, &c.line, &c.offset, &c.length] {
            out.push(col.as_ptr() as u32);
        }
        for col in &c.codes {
            out.push(col.as_ptr() as u32);
        }
        let strings = !c.ts_raw.is_empty() || c.fresh.iter().any(|f| !f.is_empty());
        out.push(u32::from(strings));
        Ok(out)
    }

    /// The strings of the last `takeColumns`, as `takeBatch` gives them:
    /// `{fresh, tsRaw}`.
    #[wasm_bindgen(js_name = takeStrings)]
    pub fn take_strings(&self) -> js_sys::Object {
        let cols = &self.cols;
        let out = js_sys::Object::new();
        let fresh = js_sys::Array::new();
        for new in &cols.fresh {
            let _ = fresh.push(
                &new.iter()
                    .map(|s| JsValue::from_str(s))
                    .collect::<js_sys::Array>(),
            );
        }
        let ts_raw = js_sys::Array::new();
        for (i, t) in &cols.ts_raw {
            let _ = ts_raw.push(&JsValue::from(*i));
            let _ = ts_raw.push(&JsValue::from_str(t));
        }
        let _ = js_sys::Reflect::set(&out, &JsValue::from_str("fresh"), &fresh);
        let _ = js_sys::Reflect::set(&out, &JsValue::from_str("tsRaw"), &ts_raw);
        out
    }

    /// Feeds a block whose entry lines another worker already hashed and
    /// parsed with `prepareBlock` (same result as `push`, less work here).
    #[wasm_bindgen(js_name = pushPrepared)]
    pub fn push_prepared(&mut self, block: &[u8], prepared: Vec<u8>) -> Result<(), JsError> {
        let v = self
            .inner
            .as_mut()
            .ok_or_else(|| js_err("verifier already finished"))?;
        // Owned: the copy into wasm memory is handed over, and each record
        // is read where its line is reached.
        v.push_encoded(block, prepared);
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
/// another worker. Writes the records into `out` when they fit and returns
/// their length either way (larger than `out`: call again with a larger
/// one). The caller reuses `out` block after block: a new array per block
/// left tens of MiB of dead ones between garbage collections.
#[wasm_bindgen(js_name = prepareBlock)]
pub fn prepare_block(block: &[u8], base: f64, out: &mut [u8]) -> Result<f64, JsError> {
    init();
    let base = js_u64("base", base)?;
    let prepared = stele_core::verify::prepare_encoded(block, base);
    if let Some(dst) = out.get_mut(..prepared.len()) {
        dst.copy_from_slice(&prepared);
    }
    Ok(prepared.len() as f64)
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
