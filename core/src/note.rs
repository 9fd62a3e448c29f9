//! C2SP signed notes with Ed25519 keys: verifier keys (`name+hex8+base64`),
//! signer keys, parsing, signing and verifying against pinned keys.
//!
//! ```text
//! example.com/log          <- note text: one or more lines, each ending in \n
//! 42
//! 3W5v...=
//!                          <- one empty line
//! — example.com/log AAAA...  <- signature lines: "— " name " " base64(key ID || signature)
//! ```

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use thiserror::Error;

/// C2SP signed-note: the Ed25519 signature type byte.
pub const ALG_ED25519: u8 = 0x01;
/// Go's sumdb/note (and so every reader of it) refuses notes with more signatures than this.
pub const MAX_SIGNATURES: usize = 100;
/// Stele refuses notes larger than this many bytes.
pub const MAX_NOTE_BYTES: usize = 16 * 1024;
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a key, a note or a signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NoteError {
    /// A verifier key string that does not parse.
    #[error("verifier key: {0}")]
    BadVerifierKey(String),
    /// A private key string that does not parse.
    #[error("signer key: {0}")]
    BadSignerKey(String),
    /// A note that does not follow C2SP signed-note.
    #[error("malformed note: {0}")]
    Malformed(String),
    /// A signature by a trusted key that does not verify.
    #[error("signature by {name} (key ID {key_id}) does not verify")]
    BadSignature {
        /// The key name.
        name: String,
        /// The key ID in hex.
        key_id: String,
    },
}

/// C2SP signed-note: a key name is non-empty and has no white space and no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// C2SP signed-note: key ID = first 4 bytes of SHA-256(name || 0x0A || type || public key).
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A C2SP public key string, `name+hex8+base64(alg || public key)`: its
/// name, key ID and Ed25519 key, checked as every key type is (log keys,
/// type 0x01, here; witness keys, 0x04, in `witness`): a valid name, the
/// type byte (`wrong_type` says what was expected), a canonical point
/// (RFC 8032 5.1.3: refused, not reduced), and the key ID `id_of` derives.
pub(crate) fn parse_public_key<'a>(
    s: &'a str,
    alg: u8,
    wrong_type: &str,
    id_of: fn(&str, &[u8; 32]) -> [u8; 4],
) -> Result<(&'a str, [u8; 4], VerifyingKey), NoteError> {
    let bad = |why: &str| NoteError::BadVerifierKey(why.to_string());
    // Names have no '+' but base64 may: split from the left, as Go's note does.
    let mut parts = s.trim().splitn(3, '+');
    let (Some(name), Some(hex8), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected name+hex8+base64"));
    };
    if !is_valid_key_name(name) {
        return Err(bad("key name is empty or has white space or '+'"));
    }
    let id = parse_hex8(hex8).ok_or_else(|| bad("key ID is not 8 lowercase hex digits"))?;
    let raw = crate::b64::decode(b64).ok_or_else(|| bad("key is not valid base64"))?;
    let pk: [u8; 32] = match raw.split_first() {
        Some((&a, pk)) if a == alg => pk.try_into().map_err(|_| bad(wrong_type))?,
        _ => return Err(bad(wrong_type)),
    };
    if !is_canonical_y(&pk) {
        return Err(bad("not a canonical Ed25519 point encoding"));
    }
    let key = VerifyingKey::from_bytes(&pk).map_err(|_| bad("not a valid Ed25519 point"))?;
    // RFC 8032 5.1.3 also refuses x = 0 with the sign bit set (y = 1 or
    // p - 1 and bit 255 set), which decompression accepts: the one
    // canonical encoding is the point's own compression.
    if key.to_edwards().compress().to_bytes() != pk {
        return Err(bad("not a canonical Ed25519 point encoding"));
    }
    if id_of(name, &pk) != id {
        return Err(bad(&format!(
            "key ID {hex8} does not match the name and key (expected {})",
            hex(&id_of(name, &pk))
        )));
    }
    Ok((name, id, key))
}

/// A C2SP private key string, `PRIVATE+KEY+name+hex8+base64(alg || seed)`
/// (log keys 0x01, witness keys 0x04): its name, the key ID it states (the
/// caller checks it against the key) and the Ed25519 seed.
pub(crate) fn parse_private_key<'a>(
    s: &'a str,
    alg: u8,
    wrong_type: &str,
) -> Result<(&'a str, [u8; 4], [u8; 32]), NoteError> {
    let bad = |why: &str| NoteError::BadSignerKey(why.to_string());
    let form = "expected PRIVATE+KEY+name+hex8+base64";
    let rest = s
        .trim()
        .strip_prefix("PRIVATE+KEY+")
        .ok_or_else(|| bad(form))?;
    let mut parts = rest.splitn(3, '+');
    let (Some(name), Some(hex8), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(form));
    };
    let id = parse_hex8(hex8).ok_or_else(|| bad("key ID is not 8 lowercase hex digits"))?;
    let raw = crate::b64::decode(b64).ok_or_else(|| bad("key is not valid base64"))?;
    let seed: [u8; 32] = match raw.split_first() {
        Some((&a, seed)) if a == alg => seed.try_into().map_err(|_| bad(wrong_type))?,
        _ => return Err(bad(wrong_type)),
    };
    Ok((name, id, seed))
}

/// A public key that checks note signatures, with its name and key ID.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parses a C2SP verifier key: `name+hex8+base64(0x01 || public key)`.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let (name, id, key) = parse_public_key(
            s,
            ALG_ED25519,
            "key is not an Ed25519 key (0x01 followed by 32 bytes)",
            key_id,
        )?;
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key ID.
    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    /// The key ID as 8 hex digits.
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }

    /// Checks an Ed25519 signature over `msg` with `verify_strict`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(msg, &sig).is_ok()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            self.id_hex(),
            crate::b64::encode(&raw)
        )
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

/// A private key that signs notes. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    id: [u8; 4],
    key: SigningKey,
}

impl SignerKey {
    /// Makes a signer from a 32-byte Ed25519 seed (from a secure RNG).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::BadSignerKey(
                "key name is empty or has white space or '+'".into(),
            ));
        }
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// Parses Go's private key format: `PRIVATE+KEY+name+hex8+base64(0x01 || seed)`.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let (name, id, seed) = parse_private_key(s, ALG_ED25519, "key is not an Ed25519 key")?;
        let signer = Self::from_seed(name, seed)?;
        if signer.id != id {
            return Err(NoteError::BadSignerKey(
                "key ID does not match the key".into(),
            ));
        }
        Ok(signer)
    }

    /// The private key in Go's format. Keep it secret: never print or log it.
    pub fn to_private_string(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex(&self.id),
            crate::b64::encode(&raw)
        )
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs a note text (which must end in `\n`) and returns the whole note.
    pub fn sign_note(&self, text: &str) -> Result<String, NoteError> {
        check_note_text(text)?;
        let sig = self.key.sign(text.as_bytes());
        let mut raw = self.id.to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            crate::b64::encode(&raw)
        ))
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SignerKey({}+{}, secret hidden)",
            self.name,
            hex(&self.id)
        )
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key ID.
    pub key_id: [u8; 4],
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

/// A parsed (not yet verified) signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in `\n`.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

/// The result of checking a note against pinned keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerification {
    /// Pinned keys whose signature verified.
    pub verified_by: Vec<VerifierKey>,
    /// Signatures by pinned keys that did not verify (forgery or corruption).
    pub bad: Vec<NoteSignature>,
    /// Signatures by keys that are not pinned (ignored).
    pub unknown: Vec<NoteSignature>,
}

impl NoteVerification {
    /// docs/FORMAT.md 5.4: the note is trusted when a pinned key's signature
    /// verifies and no pinned key's signature fails.
    pub fn trusted(&self) -> bool {
        !self.verified_by.is_empty() && self.bad.is_empty()
    }
}

/// Byte offset of the first `"\n\n"` in `s`. (A byte loop: `str::find` with
/// a `&str` pattern brings in the two-way searcher, ~3 KB of wasm.)
pub(crate) fn find_blank_line(s: &str) -> Option<usize> {
    s.as_bytes().windows(2).position(|w| w == b"\n\n")
}

fn check_note_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::Malformed(
            "note text must end with a newline".into(),
        ));
    }
    if find_blank_line(text).is_some() || text.starts_with('\n') {
        return Err(NoteError::Malformed(
            "note text must not contain an empty line".into(),
        ));
    }
    if let Some(c) = text.chars().find(|&c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed(format!(
            "note text contains control character U+{:04X}",
            c as u32
        )));
    }
    Ok(())
}

impl Note {
    /// Parses a signed note as C2SP signed-note (and Go's sumdb/note) do: the
    /// text ends at the last empty line; each later line is a signature.
    pub fn parse(msg: &[u8]) -> Result<Self, NoteError> {
        let bad = |why: String| NoteError::Malformed(why);
        if msg.len() > MAX_NOTE_BYTES {
            return Err(bad(format!(
                "note is {} bytes, more than the limit of {MAX_NOTE_BYTES}",
                msg.len()
            )));
        }
        let s = std::str::from_utf8(msg)
            .map_err(|e| bad(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
        if let Some(c) = s.chars().find(|&c| c < ' ' && c != '\n') {
            return Err(bad(format!(
                "contains control character U+{:04X}",
                c as u32
            )));
        }
        let split = s
            .as_bytes()
            .windows(2)
            .rposition(|w| w == b"\n\n")
            .ok_or_else(|| bad("no empty line before the signatures".into()))?;
        // `get`, not indexing: the cut is next to ASCII bytes, so it cannot
        // fail, and no panic path (with its formatting) is compiled in.
        let text = s.get(..split + 1).unwrap_or_default();
        let sigs = s.get(split + 2..).unwrap_or_default();
        let sigs = sigs.strip_suffix('\n').ok_or_else(|| {
            bad("no signature lines, or the last one does not end in a newline".into())
        })?;
        let mut signatures = Vec::new();
        for (i, line) in sigs.split('\n').enumerate() {
            let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
                bad(format!(
                    "signature line {} does not start with \"— \"",
                    i + 1
                ))
            })?;
            let (name, b64) = rest.split_once(' ').ok_or_else(|| {
                bad(format!(
                    "signature line {} has no space between name and signature",
                    i + 1
                ))
            })?;
            if !is_valid_key_name(name) {
                return Err(bad(format!(
                    "signature line {} has an invalid key name",
                    i + 1
                )));
            }
            let raw = crate::b64::decode(b64)
                .ok_or_else(|| bad(format!("signature line {} is not valid base64", i + 1)))?;
            if raw.len() < 5 {
                return Err(bad(format!("signature line {} is too short", i + 1)));
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id: [raw[0], raw[1], raw[2], raw[3]],
                signature: raw[4..].to_vec(),
            });
            if signatures.len() > MAX_SIGNATURES {
                return Err(bad(format!("more than {MAX_SIGNATURES} signatures")));
            }
        }
        Ok(Self {
            text: text.to_string(),
            signatures,
        })
    }

    /// Checks every signature against the pinned keys. Signatures by keys
    /// that are not pinned are set aside, as C2SP says.
    ///
    /// A pinned key costs at most one failed check a note (one bad line
    /// already fails the note, so the key's later lines are not checked)
    /// and a repeated line one check: up to 100 forged lines under a
    /// pinned key, in every checkpoint of a file, would otherwise cost an
    /// Ed25519 check each.
    pub fn verify(&self, keys: &[VerifierKey]) -> NoteVerification {
        let mut out = NoteVerification {
            verified_by: Vec::new(),
            bad: Vec::new(),
            unknown: Vec::new(),
        };
        let mut good: Vec<&NoteSignature> = Vec::new();
        for sig in &self.signatures {
            let Some(k) = keys
                .iter()
                .find(|k| k.name == sig.name && k.id == sig.key_id)
            else {
                out.unknown.push(sig.clone());
                continue;
            };
            if out
                .bad
                .iter()
                .any(|b| b.name == sig.name && b.key_id == sig.key_id)
                || good.iter().any(|g| g == &sig)
            {
                continue;
            }
            if k.verify(self.text.as_bytes(), &sig.signature) {
                good.push(sig);
                if !out.verified_by.contains(k) {
                    out.verified_by.push(k.clone());
                }
            } else {
                out.bad.push(sig.clone());
            }
        }
        out
    }
}

/// Lowercase hex of a short byte string.
pub fn hex(b: &[u8]) -> String {
    // A table, not `format!` per byte: key IDs are written twice per sealed
    // value on the append path.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * b.len());
    for x in b {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 15)]));
    }
    s
}

fn parse_hex8(s: &str) -> Option<[u8; 4]> {
    if s.len() != 8 || !s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let v = u32::from_str_radix(s, 16).ok()?;
    Some(v.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_round_trip() {
        let s = SignerKey::from_seed("example.com/log", [7u8; 32]).unwrap();
        let v = s.verifier();
        assert_eq!(VerifierKey::parse(&v.to_string()).unwrap(), v);
        assert_eq!(
            SignerKey::parse(&s.to_private_string()).unwrap().verifier(),
            v
        );
        let note = s.sign_note("example.com/log\n1\nAAAA\n").unwrap();
        let n = Note::parse(note.as_bytes()).unwrap();
        let r = n.verify(std::slice::from_ref(&v));
        assert_eq!(r.verified_by, vec![v.clone()]);
        let tampered = note.replace("\n1\n", "\n2\n");
        let r = Note::parse(tampered.as_bytes()).unwrap().verify(&[v]);
        assert!(r.verified_by.is_empty());
        assert_eq!(r.bad.len(), 1);
    }

    #[test]
    fn forged_lines_cost_one_failed_check_per_key() {
        let s = SignerKey::from_seed("example.com/log", [7u8; 32]).unwrap();
        let v = s.verifier();
        let note = s.sign_note("example.com/log\n1\nAAAA\n").unwrap();
        let (text, good) = note.split_once("\n\n").unwrap();
        let good = good.trim_end();
        let mut raw = crate::b64::decode(good.rsplit(' ').next().unwrap()).unwrap();
        raw[10] ^= 1;
        let forged = format!("— example.com/log {}", crate::b64::encode(&raw));
        // Forged lines after a good one: one bad, reported once.
        let mut lines = vec![good.to_string(); 3];
        lines.extend(std::iter::repeat_n(forged.clone(), 90));
        let many = format!("{text}\n\n{}\n", lines.join("\n"));
        let r = Note::parse(many.as_bytes())
            .unwrap()
            .verify(std::slice::from_ref(&v));
        assert_eq!(r.verified_by, vec![v.clone()]);
        assert_eq!(r.bad.len(), 1);
        // A forged line first: the key's later lines are not checked.
        let first = format!("{text}\n\n{forged}\n{good}\n");
        let r = Note::parse(first.as_bytes()).unwrap().verify(&[v]);
        assert_eq!(r.bad.len(), 1);
        assert!(r.verified_by.is_empty());
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = SignerKey::from_seed("n", [9u8; 32]).unwrap();
        let dbg = format!("{s:?}");
        let secret = s.to_private_string();
        let b64 = secret.rsplit('+').next().unwrap();
        assert!(!dbg.contains(b64), "{dbg}");
    }
}

/// Whether the 255-bit little-endian y of a point encoding (the sign bit
/// cleared) is below p = 2^255 - 19.
pub(crate) fn is_canonical_y(pk: &[u8; 32]) -> bool {
    let mut y = *pk;
    y[31] &= 0x7f;
    // y >= p only when y = 2^255 - 19 + k (k < 19): bytes ed..ff, then ff.., then 7f.
    !(y[31] == 0x7f && y[1..31].iter().all(|&b| b == 0xff) && y[0] >= 0xed)
}

#[cfg(test)]
mod canonical_point_tests {
    #[test]
    fn y_at_or_above_p_is_not_canonical() {
        let mut p = [0xffu8; 32];
        p[31] = 0x7f;
        p[0] = 0xed;
        assert!(!super::is_canonical_y(&p));
        p[0] = 0xec;
        assert!(super::is_canonical_y(&p));
        p[31] = 0xff; // sign bit set, y = p - 1
        assert!(super::is_canonical_y(&p));
        p[0] = 0xee;
        assert!(!super::is_canonical_y(&p));
        assert!(super::is_canonical_y(&[0u8; 32]));
    }

    /// x = 0 with the sign bit set (RFC 8032 5.1.3): y = 1 (`01 00…00`
    /// with bit 255 set) and y = p - 1 decompress, but are not canonical.
    #[test]
    fn x_zero_with_the_sign_bit_is_not_canonical() {
        use super::{ALG_ED25519, VerifierKey, key_id};
        let key = |pk: [u8; 32]| {
            let mut raw = vec![ALG_ED25519];
            raw.extend_from_slice(&pk);
            let id = super::hex(&key_id("k", &pk));
            VerifierKey::parse(&format!("k+{id}+{}", crate::b64::encode(&raw)))
        };
        let mut one = [0u8; 32];
        one[0] = 1;
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        // Without the sign bit both are canonical (and refused only later,
        // as small-order keys, when a signature is checked).
        assert!(key(one).is_ok());
        assert!(key(minus_one).is_ok());
        for mut pk in [one, minus_one] {
            pk[31] |= 0x80;
            let e = key(pk).unwrap_err().to_string();
            assert!(e.contains("not a canonical Ed25519 point encoding"), "{e}");
        }
    }
}
