//! The browser's sealed-field module (docs/FORMAT.md section 13): stele-core's
//! streaming verifier with an [`stele_seal::AgeOpener`], so an auditor's age
//! identity opens sealed values in the page. A thin adapter like `wasm/`: no
//! rule lives here. The page loads it lazily, only when an auditor key is
//! given, so the plain verifier does not grow.
//!
//! ```text
//! const v = new SealedVerifier(["log+1a2b3c4d+AR…"], "AGE-SECRET-KEY-1…");
//! v.push(bytes); v.takeSealed();   // [[entry, pointer, "opened", value], …]
//! v.finish();                      // the report JSON, with its "sealed" counts
//!
//! const p = new OpeningPass("example.com/log", "AGE-SECRET-KEY-1…");
//! p.push(keyRecords);             // the bytes before the first entry line
//! p.x25519Shares(); p.x25519Keys(); p.setX25519(i, shares, secrets);   // optional, see below
//! p.push(bytes); p.takeSealed();   // after the plain verifier's report
//! p.finish();                      // {"sealed":[…],"failures":[…],"failures_total":n,"counts":{…}|null}
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;
use stele_core::VerifierKey;
use stele_core::canonical::quote;
use stele_core::sealed::{OpenerHandle, ValueState, states_json};
use stele_core::verify::{Options, StreamVerifier};
use wasm_bindgen::prelude::*;

use stele_seal::MAX_IDENTITY_BYTES;

/// A streaming verifier that also opens sealed values.
#[wasm_bindgen]
#[derive(Debug)]
pub struct SealedVerifier {
    inner: StreamVerifier,
}

#[wasm_bindgen]
impl SealedVerifier {
    /// Pinned verifier keys and the text of an age identity file. Errors
    /// never echo the identity.
    #[wasm_bindgen(constructor)]
    pub fn new(keys: Vec<String>, identity: &str) -> Result<Self, JsError> {
        let keys = parse_keys(&keys)?;
        let ids = identities(identity)?;
        let mut opts = Options::new(keys);
        opts.opener = Some(OpenerHandle(Arc::new(stele_seal::AgeOpener::new(ids))));
        let mut inner = StreamVerifier::new(opts);
        inner.collect_sealed();
        Ok(Self { inner })
    }

    /// A verifier that requires a witness policy (C2SP tlog-policy text,
    /// docs/FORMAT.md 14): the report's `quorum` says whether its quorum
    /// cosigned the checkpoint; an unmet one is `quorum_not_met`. Its `log`
    /// lines pin keys too. `identity`: as for the constructor, or none (sealed
    /// values then stay sealed). The page loads this module for a policy, so
    /// the plain verifier does not grow. `policy` none: no quorum is required;
    /// the page verifies a log that rotated its key (docs/FORMAT.md 15) so,
    /// as the plain verifier does not follow key rotations.
    #[wasm_bindgen(js_name = withPolicy)]
    pub fn with_policy(
        keys: Vec<String>,
        identity: Option<String>,
        policy: Option<String>,
        trusted_checkpoint: Option<String>,
    ) -> Result<Self, JsError> {
        let policy = policy
            .map(|p| stele_core::witness::Policy::parse(p.as_bytes()))
            .transpose()
            .map_err(|e| JsError::new(&format!("witness policy: {e}")))?;
        let mut v = match identity.filter(|i| !i.trim().is_empty()) {
            Some(i) => Self::new(keys, &i)?,
            None => {
                let keys = parse_keys(&keys)?;
                let mut inner = StreamVerifier::new(Options::new(keys));
                inner.collect_sealed();
                Self { inner }
            }
        };
        // A new verifier has read nothing yet: both setters succeed.
        if let Some(policy) = policy {
            let _ = v.inner.set_policy(policy);
        }
        // An earlier checkpoint the log must extend (docs/FORMAT.md 8.6),
        // checked against the keys the policy pinned as well.
        if let Some(text) = trusted_checkpoint.filter(|t| !t.trim().is_empty()) {
            if text.len() > MAX_IDENTITY_BYTES {
                return Err(JsError::new("earlier checkpoint: too large"));
            }
            let sc = stele_core::checkpoint::parse_trusted(text.as_bytes(), v.inner.keys())
                .map_err(|e| JsError::new(&format!("earlier checkpoint: {e}")))?;
            let _ = v.inner.set_trusted(sc.checkpoint);
        }
        Ok(v)
    }

    /// Keys revoked from a tree size, each `VKEY@SIZE` (docs/FORMAT.md
    /// 15.3): their signatures on a checkpoint of that size or more are
    /// `key_revoked` failures. Before the first push (the page verifies with
    /// this module whenever revocations are given: the plain verifier takes
    /// none).
    #[wasm_bindgen(js_name = setRevoked)]
    pub fn set_revoked(&mut self, revoked: Vec<String>) -> Result<(), JsError> {
        self.inner
            .set_revoked_texts(&revoked)
            .map_err(|e| JsError::new(&e))
    }

    /// Feeds the next bytes of the file (any chunking).
    pub fn push(&mut self, chunk: &[u8]) {
        self.inner.push(chunk);
    }

    /// Sealed values settled since the last call, as a JSON array of
    /// `[entry, pointer, state, value]`: state `opened` (value: its JSON
    /// text, checked against the commitment), `sealed`, `forgotten`,
    /// `redacted` or `mismatch` (value null).
    #[wasm_bindgen(js_name = takeSealed)]
    pub fn take_sealed(&mut self) -> String {
        states_json(self.inner.take_sealed())
    }

    /// Ends the stream: the last values as [`SealedVerifier::take_sealed`]
    /// gives them, then the report JSON, as `{"sealed":[…],"report":{…}}`.
    pub fn finish(mut self) -> String {
        self.inner.settle_sealed();
        let last = states_json(self.inner.take_sealed());
        let report = self.inner.finish().to_json();
        format!("{{\"sealed\":{last},\"report\":{report}}}")
    }
}

/// The opening pass alone (`stele_core::sealed_pass`): after the plain
/// verifier has verified the same bytes, opens and checks the sealed values
/// without verifying the chain again; its failures join that report.
///
/// Split in parts that run in parallel (the page's workers): every part
/// reads the key records before the first entry, and all but the first
/// continue at their part of the entries ([`OpeningPass::resume_at`]).
/// Each part unwraps the data keys its values need, when they need them
/// (core's rule, docs/FORMAT.md 13.8), so a key used in two parts is
/// unwrapped in both.
///
/// X25519 computed elsewhere (the page: WebCrypto, native, several times
/// faster than this module's): after the key records are pushed,
/// [`OpeningPass::x25519_shares`] lists the X25519 shares unwrapping may
/// need, [`OpeningPass::x25519_keys`] gives the identities' keys, and
/// [`OpeningPass::set_x25519`] takes the shared secrets back. Only the
/// scalar multiplication moves: parsing the wraps, the budget, the zero
/// check, HKDF, the header MAC and the payload stay here, and a secret
/// not given is computed here when it is needed.
#[wasm_bindgen]
#[derive(Debug)]
pub struct OpeningPass {
    inner: stele_core::sealed_pass::OpeningPass,
    opener: Arc<stele_seal::AgeOpener>,
    columns: Columns,
}

/// What [`OpeningPass::take_sealed_columns`] gives besides its numbers,
/// until taken: the values' texts and the pointers.
#[derive(Debug, Default)]
struct Columns {
    pointers: Vec<String>,
    text: String,
}

/// A pointer is looked for among this many of a call's pointers at most
/// (an export has a few; past them one may be listed twice).
const POINTERS_SEARCHED: usize = 64;

/// Most X25519 shares [`OpeningPass::x25519_shares`] lists: they are
/// listed before any value needs them, so a file of junk key records could
/// otherwise have the page compute one X25519 per stanza (FORMAT 13.8
/// unwraps only what a value needs); beyond it unwrapping computes its
/// own, as needed. 4,096 X25519 in WebCrypto: ~0.1-0.2 s.
const MAX_PREFETCH_SHARES: usize = 4096;

#[wasm_bindgen]
impl OpeningPass {
    /// The log's origin (from the verification's report; null when it has
    /// none: then nothing opens) and the text of an age identity file.
    /// Errors never echo the identity.
    #[wasm_bindgen(constructor)]
    pub fn new(origin: Option<String>, identity: &str) -> Result<Self, JsError> {
        let opener = Arc::new(stele_seal::AgeOpener::new(identities(identity)?));
        Ok(Self {
            inner: stele_core::sealed_pass::OpeningPass::new(
                origin.as_deref(),
                OpenerHandle(opener.clone()),
            ),
            opener,
            columns: Columns::default(),
        })
    }

    /// After the bytes before the first entry line: the X25519 shares
    /// (32 bytes each, each once, at most 4,096) that unwrapping the data
    /// keys of the key records read may need, within FORMAT 13.8's budget
    /// of stanzas per key ID.
    #[wasm_bindgen(js_name = x25519Shares)]
    pub fn x25519_shares(&self) -> Vec<u8> {
        stele_seal::x25519_shares(self.inner.pending_wraps(), MAX_PREFETCH_SHARES).concat()
    }

    /// The identities' secret keys, in identity-file order, each as a
    /// 48-byte PKCS #8 X25519 private key (RFC 8410), concatenated: for
    /// WebCrypto's `importKey("pkcs8", …)` (not extractable). The caller
    /// zeroes the bytes once imported.
    #[wasm_bindgen(js_name = x25519Keys)]
    pub fn x25519_keys(&self) -> Vec<u8> {
        self.opener.x25519_pkcs8().concat()
    }

    /// The X25519 shared secrets of identity `index` (as in
    /// [`OpeningPass::x25519_keys`]) with `shares` (32 bytes each), in
    /// the same order: unwrapping uses them instead of computing them. An
    /// all-zero secret counts as not given (the share is then computed
    /// here if needed, and an all-zero result refused, as age requires).
    #[wasm_bindgen(js_name = setX25519)]
    pub fn set_x25519(&self, index: u32, shares: &[u8], secrets: &[u8]) -> Result<(), JsError> {
        if !shares.len().is_multiple_of(32) || shares.len() != secrets.len() {
            return Err(JsError::new(
                "setX25519: shares and secrets must be the same number of 32-byte values",
            ));
        }
        let pairs = shares.chunks_exact(32).zip(secrets.chunks_exact(32));
        self.opener.add_shared(
            index as usize,
            pairs.filter_map(|(a, b)| Some((a.try_into().ok()?, b.try_into().ok()?))),
        );
        Ok(())
    }

    /// Feeds the next bytes of the file (any chunking).
    pub fn push(&mut self, chunk: &[u8]) {
        self.push_bytes(chunk);
    }

    /// After the bytes before the file's first entry line: continues at
    /// byte `offset`, the start of a later entry line, whose bytes are
    /// pushed next (`stele_core::sealed_pass::OpeningPass::resume_at`:
    /// failures' `line` then counts from there).
    #[wasm_bindgen(js_name = resumeAt)]
    pub fn resume_at(&mut self, offset: f64) -> Result<(), JsError> {
        if !((0.0..=MAX_SAFE_INTEGER).contains(&offset) && offset.fract() == 0.0) {
            return Err(JsError::new("resumeAt: the offset is not a byte offset"));
        }
        self.inner
            .resume_at(offset as u64)
            .map_err(|e| JsError::new(&format!("resumeAt: {e}")))
    }

    /// As [`SealedVerifier::take_sealed`].
    #[wasm_bindgen(js_name = takeSealed)]
    pub fn take_sealed(&mut self) -> String {
        states_json(self.inner.take_states())
    }

    /// `false`: the pass lists no value (takeSealed and finish give none;
    /// counts and failures as always), for a pass whose values are not
    /// kept: it makes no text of them (a string a chunk, which a worker
    /// held until its next garbage collection).
    #[wasm_bindgen(js_name = listValues)]
    pub fn list_values(&mut self, on: bool) {
        self.inner.list_values(on);
    }

    /// As [`OpeningPass::take_sealed`], as columns instead of JSON (the
    /// page's workers: 100k values were 4.9 MB of JSON for the page's
    /// main thread to parse). Four numbers a value: its entry (low 32
    /// bits, then the rest), `pointer << 3 | state` (pointer: an index
    /// into [`OpeningPass::take_sealed_pointers`]; state 0 `opened`,
    /// 1 `sealed`, 2 `forgotten`, 3 `redacted`, 4 `mismatch`), and where
    /// its JSON text ends (UTF-16 code units) in
    /// [`OpeningPass::take_sealed_text`], the opened values' texts one
    /// after the other (a value not opened has none: it ends where the
    /// one before did). Take the text and the pointers after each call.
    #[wasm_bindgen(js_name = takeSealedColumns)]
    pub fn take_sealed_columns(&mut self) -> Vec<u32> {
        self.columns()
    }

    /// The texts of the values of the last [`OpeningPass::take_sealed_columns`].
    #[wasm_bindgen(js_name = takeSealedText)]
    pub fn take_sealed_text(&mut self) -> String {
        std::mem::take(&mut self.columns.text)
    }

    /// The pointers of the last [`OpeningPass::take_sealed_columns`], by index.
    #[wasm_bindgen(js_name = takeSealedPointers)]
    pub fn take_sealed_pointers(&mut self) -> Vec<String> {
        std::mem::take(&mut self.columns.pointers)
    }

    /// Ends the stream: `{"sealed":[…],"failures":[…],"failures_total":n,
    /// "counts":{…} or null}`, failures shaped as a report's.
    pub fn finish(mut self) -> String {
        let r = self.inner.finish();
        let last = states_json(self.inner.take_states());
        let failures = serde_json::to_string(&r.failures).unwrap_or_else(|_| "[]".into());
        let counts = serde_json::to_string(&r.sealed).unwrap_or_else(|_| "null".into());
        format!(
            "{{\"sealed\":{last},\"failures\":{failures},\"failures_total\":{},\"counts\":{counts},\"lines\":{}}}",
            r.failures_total, r.lines
        )
    }

    /// Runs the opening pass's hot paths (reading lines and records,
    /// decrypting, checking commitments, listing values) over `rounds`
    /// times 64 copies of a made-up entry with two sealed values, with a
    /// throwaway identity: the engine compiles those paths in its top tier
    /// now, while no file is being read, instead of during the first pass
    /// (web/bench/sealed.mjs's export, 100k values: the renderer's wasm
    /// top-tier compilation during the pass went from 0.12-0.15 s of CPU
    /// to 0.04-0.07 s with 64 rounds, Chromium's trace). Returns the
    /// values opened (128 a round; for tests). Nothing is kept.
    #[wasm_bindgen(js_name = warmUp)]
    pub fn warm_up(rounds: u32) -> u32 {
        let Ok(mut p) = Self::new(Some(WARM_UP_ORIGIN.to_string()), WARM_UP_IDENTITY) else {
            return 0;
        };
        // The key records have no `{`: the entry line starts at the first.
        let (head, entry) = WARM_UP_EXPORT.split_at(WARM_UP_EXPORT.find('{').unwrap_or(0));
        p.push_bytes(head.as_bytes());
        let block = entry.repeat(64);
        let mut opened = 0;
        for _ in 0..rounds {
            p.push_bytes(block.as_bytes());
            let meta = p.columns();
            opened += meta.chunks_exact(4).filter(|m| m[2] & 7 == 0).count() as u32;
        }
        opened
    }
}

// Not inlined: push and take_sealed_columns share them with warm_up, so
// that the warm-up runs (and the engine compiles in its top tier) the very
// functions a pass runs, not copies inlined into it.
impl OpeningPass {
    #[inline(never)]
    fn push_bytes(&mut self, chunk: &[u8]) {
        self.inner.push(chunk);
    }

    #[inline(never)]
    fn columns(&mut self) -> Vec<u32> {
        let states = self.inner.take_states();
        let c = &mut self.columns;
        c.text.clear();
        c.pointers.clear();
        let mut out = Vec::with_capacity(states.len() * 4);
        let mut end: u32 = 0;
        for (entry, pointer, state) in states {
            let seen = c.pointers.iter().take(POINTERS_SEARCHED);
            let id = match seen.into_iter().position(|p| *p == pointer) {
                Some(id) => id,
                None => {
                    c.pointers.push(pointer);
                    c.pointers.len() - 1
                }
            };
            let code = match &state {
                ValueState::Opened(v) => {
                    c.text.push_str(v);
                    end += v.encode_utf16().count() as u32;
                    0
                }
                ValueState::Sealed => 1,
                ValueState::Forgotten => 2,
                ValueState::Redacted => 3,
                ValueState::Mismatch => 4,
            };
            out.extend([
                entry as u32,
                (entry >> 32) as u32,
                (id as u32) << 3 | code,
                end,
            ]);
        }
        out
    }
}

/// A made-up export (`warm-up.stele`: its key records, then one entry
/// with two sealed values and their openings) and the throwaway identity
/// its data key is wrapped for. Only [`OpeningPass::warm_up`] reads them;
/// the identity opens nothing else.
const WARM_UP_EXPORT: &str = include_str!("warm-up.stele");
const WARM_UP_IDENTITY: &str =
    "AGE-SECRET-KEY-1ZTENVHAD3H9KG5R33C2QGNE4SXCG3D4XCADY5DALTDZZDERZ4R8QLWZPWD";
const WARM_UP_ORIGIN: &str = "warm-up.invalid/seal";
/// Largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

// The identities of an identity file's text; errors never echo it.
fn identities(identity: &str) -> Result<Vec<stele_seal::Identity>, JsError> {
    if identity.len() > MAX_IDENTITY_BYTES {
        return Err(JsError::new(
            "auditor key: longer than 64 KiB; not an age identity file",
        ));
    }
    stele_seal::Identity::parse_file(identity)
        .map_err(|e| JsError::new(&format!("auditor key: {e}")))
}

fn parse_keys(keys: &[String]) -> Result<Vec<VerifierKey>, JsError> {
    keys.iter()
        .map(|k| VerifierKey::parse(k).map_err(|e| JsError::new(&format!("key {}: {e}", quote(k)))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The made-up export opens (else the warm-up would not reach the
    // decryption and the commitment check): every value of every copy
    // but the last copy's, which the next line would settle.
    #[test]
    fn the_warm_up_opens_its_values() {
        assert_eq!(OpeningPass::warm_up(1), 126);
        assert_eq!(OpeningPass::warm_up(3), 3 * 128 - 2);
    }
}
