//! The browser's timestamp module (docs/FORMAT.md section 16): stele-core's
//! streaming verifier with a [`stele_tsa::TsaChecker`], so the page checks
//! RFC 3161 tokens against the TSA certificate an auditor gives. A thin
//! adapter like `wasm/`: no rule lives here. The page loads it lazily, only
//! when a TSA certificate is given, so the plain verifier does not grow
//! (x509, CMS, P-256 and RSA are all here). With an auditor key given too,
//! it also opens sealed values (as `wasm-seal` does), and with a witness
//! policy it checks the quorum, so one verification gives one report.
//!
//! ```text
//! const v = new TsaVerifier(["log+1a2b3c4d+AR…"], caBytes, null, null, policyText);
//! v.setRevoked(["log+1a2b3c4d+AR…@1200"]);   // optional, before the first push
//! v.push(bytes);
//! v.finish();        // {"sealed":[…],"report":{…, "timestamps":[{size, line, status, time, tsa}]}}
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;
use stele_core::VerifierKey;
use stele_core::canonical::quote;
use stele_core::sealed::{OpenerHandle, states_json};
use stele_core::timestamp::TokenCheckerHandle;
use stele_core::verify::{Options, StreamVerifier};
use wasm_bindgen::prelude::*;

use stele_seal::MAX_IDENTITY_BYTES;

/// A streaming verifier that also checks timestamp tokens.
#[wasm_bindgen]
#[derive(Debug)]
pub struct TsaVerifier {
    inner: StreamVerifier,
}

#[wasm_bindgen]
impl TsaVerifier {
    /// Pinned verifier keys, the TSA CA file's bytes (PEM or DER),
    /// optionally the text of an age identity file, optionally an earlier
    /// trusted checkpoint (docs/FORMAT.md 8.6), and optionally a witness
    /// policy (C2SP tlog-policy text, docs/FORMAT.md 14: the report's
    /// `quorum` says whether its quorum cosigned the checkpoint; its `log`
    /// lines pin keys too, also for the earlier checkpoint). Errors never
    /// echo the identity.
    #[wasm_bindgen(constructor)]
    pub fn new(
        keys: Vec<String>,
        ca: &[u8],
        identity: Option<String>,
        trusted_checkpoint: Option<String>,
        policy: Option<String>,
    ) -> Result<Self, JsError> {
        let keys = keys
            .iter()
            .map(|k| {
                VerifierKey::parse(k).map_err(|e| JsError::new(&format!("key {}: {e}", quote(k))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let checker = stele_tsa::TsaChecker::from_pem_or_der(ca)
            .map_err(|e| JsError::new(&format!("TSA certificate: {e}")))?;
        let mut opts = Options::new(keys);
        opts.tsa = Some(TokenCheckerHandle(Arc::new(checker)));
        if let Some(p) = policy.filter(|p| !p.trim().is_empty()) {
            let policy = stele_core::witness::Policy::parse(p.as_bytes())
                .map_err(|e| JsError::new(&format!("witness policy: {e}")))?;
            opts.set_policy(policy);
        }
        if let Some(text) = trusted_checkpoint.filter(|t| !t.trim().is_empty()) {
            if text.len() > MAX_IDENTITY_BYTES {
                return Err(JsError::new("earlier checkpoint: too large"));
            }
            let sc = stele_core::checkpoint::parse_trusted(text.as_bytes(), &opts.keys)
                .map_err(|e| JsError::new(&format!("earlier checkpoint: {e}")))?;
            opts.trusted = Some(sc.checkpoint);
        }
        if let Some(identity) = identity {
            if identity.len() > MAX_IDENTITY_BYTES {
                return Err(JsError::new(
                    "auditor key: longer than 64 KiB; not an age identity file",
                ));
            }
            let ids = stele_seal::Identity::parse_file(&identity)
                .map_err(|e| JsError::new(&format!("auditor key: {e}")))?;
            opts.opener = Some(OpenerHandle(Arc::new(stele_seal::AgeOpener::new(ids))));
        }
        let mut inner = StreamVerifier::new(opts);
        inner.collect_sealed();
        Ok(Self { inner })
    }

    /// Keys revoked from a tree size, each `VKEY@SIZE` (docs/FORMAT.md
    /// 15.3): their signatures on a checkpoint of that size or more are
    /// `key_revoked` failures. Before the first push.
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

    /// Ends the stream: `{"sealed":[…],"report":{…}}`, `sealed` as
    /// wasm-seal's `[entry, pointer, state, value]` rows.
    pub fn finish(mut self) -> String {
        self.inner.settle_sealed();
        let sealed = states_json(self.inner.take_sealed());
        let report = self.inner.finish().to_json();
        format!("{{\"sealed\":{sealed},\"report\":{report}}}")
    }
}
