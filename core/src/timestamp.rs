//! RFC 3161 timestamp records (docs/FORMAT.md section 16): a TSA's token
//! over a checkpoint's body, carried in exports right after the checkpoint.
//!
//! Core frames the record, binds it to its checkpoint and computes the
//! imprint; checking the token itself (CMS, X.509) is the [`TokenChecker`]'s
//! job, which the `stele-tsa` crate implements, so that the browser's main
//! verifier carries no ASN.1.
//!
//! ```text
//! checkpoint
//! example.com/audit
//! 4
//! pIwweUKkEgsLl/VnuQlfWaxVf3JWI+3drcOVzjYzJRU=
//!
//! — example.com/audit V4QKDMM+yN9s…
//! timestamp 4 MIIFzgYJKoZIhvcNAQcCoIIFvzCCBbsCAQMxDzAN…
//! ```
//!
//! ```
//! use stele_core::timestamp::{TimestampRecord, imprint};
//! let body = b"example.com/audit\n4\npIwweUKkEgsLl/VnuQlfWaxVf3JWI+3drcOVzjYzJRU=\n";
//! assert_eq!(imprint(body).to_hex().len(), 64);
//! let r = TimestampRecord::parse(b"timestamp 4 MAA=").unwrap();
//! assert_eq!((r.size, r.token.as_slice()), (4, &[0x30, 0][..]));
//! assert_eq!(r.to_line(), "timestamp 4 MAA=");
//! ```

use crate::b64;
use crate::codes::FailureCode;
use crate::hash::Hash;
use serde::Serialize;
use sha2::{Digest, Sha256};
#[cfg(feature = "timestamps")]
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The record's first word and its space.
pub const RECORD_PREFIX: &[u8] = b"timestamp ";
/// Largest token accepted (DER bytes); a token with a certificate chain of
/// three RSA-4096 certificates is about 7 KB.
pub const MAX_TOKEN_BYTES: usize = 32 * 1024;

/// The message imprint a token must carry for a checkpoint (FORMAT 16.1):
/// SHA-256 of the note's text, the checkpoint body: every line before the
/// empty line, each with its `\n`, and nothing of the signatures.
pub fn imprint(body: &[u8]) -> Hash {
    Hash(Sha256::digest(body).into())
}

/// A `timestamp <size> <base64 token>` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampRecord {
    /// The size of the checkpoint it is for.
    pub size: u64,
    /// The DER `TimeStampToken` (a CMS ContentInfo).
    pub token: Vec<u8>,
}

impl TimestampRecord {
    /// Parses one record line (without its `\n`); `None` if it does not
    /// have the form of FORMAT 16.2.
    pub fn parse(line: &[u8]) -> Option<Self> {
        let rest = line.strip_prefix(RECORD_PREFIX)?;
        let text = std::str::from_utf8(rest).ok()?;
        let (n, t) = text.split_once(' ')?;
        let ok_num = !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n == "0" || !n.starts_with('0'));
        if !ok_num || t.is_empty() || t.len() > MAX_TOKEN_BYTES.div_ceil(3) * 4 {
            return None;
        }
        let size = n.parse().ok()?;
        let token = b64::decode(t)?;
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        Some(Self { size, token })
    }

    /// The record's line, without `\n`.
    pub fn to_line(&self) -> String {
        format!("timestamp {} {}", self.size, b64::encode(&self.token))
    }
}

/// What a valid token attests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The token's `genTime`, `YYYY-MM-DDTHH:MM:SSZ`.
    pub time: String,
    /// The TSA: the subject of the certificate that signed the token (RFC 4514).
    pub tsa: String,
}

/// Which rule a token broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenProblem {
    /// The token does not parse, or its CMS signature, `messageDigest` or
    /// other signed attributes do not check out (`bad_timestamp`).
    Malformed,
    /// The token is for another imprint (`timestamp_mismatch`).
    Mismatch,
    /// The TSA certificate is not trusted: no path to the given CA, not
    /// valid at `genTime`, no critical timeStamping EKU, or not the
    /// certificate the token names (`timestamp_untrusted`).
    Untrusted,
}

impl TokenProblem {
    /// The failure code of FORMAT 16.4.
    pub fn code(self) -> FailureCode {
        match self {
            Self::Malformed => FailureCode::BadTimestamp,
            Self::Mismatch => FailureCode::TimestampMismatch,
            Self::Untrusted => FailureCode::TimestampUntrusted,
        }
    }
}

/// Why a token does not attest its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// The rule broken.
    pub problem: TokenProblem,
    /// What and where, for people.
    pub message: String,
}

/// Checks a token against trust anchors the caller chose (`stele-tsa`
/// implements it).
pub trait TokenChecker: Send + Sync {
    /// Checks `token` fully for `imprint` (FORMAT 16.3). Its result must
    /// depend on its arguments only: a verification asks once per distinct
    /// token and imprint, and reuses the result for repeats.
    fn check(&self, token: &[u8], imprint: &Hash) -> Result<Attestation, TokenError>;
}

/// Token check results one verification keeps at most (so that a token
/// repeated after a checkpoint is checked once); when full, they are
/// forgotten and kept anew.
pub const MAX_CACHED_CHECKS: usize = 1024;
/// Bytes of results' text (times, TSA names, messages) a [`CheckCache`]
/// holds at most; it is emptied when full.
#[cfg(feature = "timestamps")]
const MAX_CACHED_BYTES: usize = 1 << 20;

/// The results of one verification's token checks, by token and imprint,
/// so that a token repeated after a checkpoint costs a SHA-256 of its bytes
/// instead of its signatures and certificate path again (an export with
/// 50,000 copies of a 1.3 KB token took 65 s to verify: red-team). Bounded
/// by [`MAX_CACHED_CHECKS`] results and 1 MiB of their text.
#[cfg(feature = "timestamps")]
#[derive(Debug, Default)]
pub(crate) struct CheckCache {
    /// SHA-256 of the imprint then the token, to the checker's result.
    results: BTreeMap<[u8; 32], Result<Attestation, TokenError>>,
    /// Bytes of text in `results`.
    bytes: usize,
}

#[cfg(feature = "timestamps")]
impl CheckCache {
    /// `checker`'s result for `token` and `imprint`, asked once.
    pub(crate) fn check(
        &mut self,
        checker: &dyn TokenChecker,
        token: &[u8],
        imprint: &Hash,
    ) -> Result<Attestation, TokenError> {
        let mut h = Sha256::new();
        h.update(imprint.0);
        h.update(token);
        let key: [u8; 32] = h.finalize().into();
        if let Some(r) = self.results.get(&key) {
            return r.clone();
        }
        let r = checker.check(token, imprint);
        let text = match &r {
            Ok(a) => a.time.len() + a.tsa.len(),
            Err(e) => e.message.len(),
        };
        if self.results.len() >= MAX_CACHED_CHECKS || self.bytes + text > MAX_CACHED_BYTES {
            self.results.clear();
            self.bytes = 0;
        }
        if text <= MAX_CACHED_BYTES {
            self.bytes += text;
            let _ = self.results.insert(key, r.clone());
        }
        r
    }
}

/// A shared [`TokenChecker`], as [`crate::verify::Options`] holds it.
#[derive(Clone)]
pub struct TokenCheckerHandle(pub Arc<dyn TokenChecker>);

impl fmt::Debug for TokenCheckerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCheckerHandle(..)")
    }
}

/// One timestamp record in a report (FORMAT 16.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimestampReport {
    /// The size of the checkpoint it is for.
    pub size: u64,
    /// The line of the `timestamp` record.
    pub line: u64,
    /// `ok`, `failed` or `unchecked`.
    pub status: &'static str,
    /// When `ok`: the token's `genTime`.
    pub time: Option<String>,
    /// When `ok`: the TSA certificate's subject.
    pub tsa: Option<String>,
}
