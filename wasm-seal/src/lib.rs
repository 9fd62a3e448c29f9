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
//! p.push(bytes); p.takeSealed();   // after the plain verifier's report
//! p.finish();                      // {"sealed":[…],"failures":[…],"failures_total":n,"counts":{…}|null}
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;
use stele_core::VerifierKey;
use stele_core::canonical::quote;
use stele_core::sealed::{OpenerHandle, states_json};
use stele_core::verify::{Options, StreamVerifier};
use wasm_bindgen::prelude::*;

/// Longest identity text accepted (an age-keygen file is ~190 bytes).
const MAX_IDENTITY_BYTES: usize = 64 * 1024;

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
#[wasm_bindgen]
#[derive(Debug)]
pub struct OpeningPass {
    inner: stele_core::sealed_pass::OpeningPass,
}

#[wasm_bindgen]
impl OpeningPass {
    /// The log's origin (from the verification's report; null when it has
    /// none: then nothing opens) and the text of an age identity file.
    /// Errors never echo the identity.
    #[wasm_bindgen(constructor)]
    pub fn new(origin: Option<String>, identity: &str) -> Result<Self, JsError> {
        let opener = stele_seal::AgeOpener::new(identities(identity)?);
        Ok(Self {
            inner: stele_core::sealed_pass::OpeningPass::new(
                origin.as_deref(),
                OpenerHandle(Arc::new(opener)),
            ),
        })
    }

    /// Feeds the next bytes of the file (any chunking).
    pub fn push(&mut self, chunk: &[u8]) {
        self.inner.push(chunk);
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
}

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
