//! Sealed fields (docs/FORMAT.md section 13): commitments, placeholders,
//! openings and the four export records, and the verifier's bookkeeping.
//!
//! Pure like the rest of core: the two cryptographic operations that need a
//! secret (opening an age wrap, decrypting an opening) are reached through
//! the [`Opener`] trait, which the `stele-seal` crate implements.
//!
//! ```text
//! {"event":{"actor":{"email":{"stele.sealed":{"commitment":"a4eb…8ce6","key":"6b1f…209c"}}},…},…}
//! sealed-key 6b1f…209c <base64 of an age file whose payload is the 32-byte data key>
//! opening 5 <base64 of nonce || XChaCha20-Poly1305(salt || value)> "/actor/email"
//! ```
//!
//! ```
//! use stele_core::sealed::{commitment, Placeholder, KeyId, check_opening, opening_plaintext};
//! let salt = [7u8; 16];
//! let ph = Placeholder { commitment: commitment(&salt, b"\"alice\""), key: KeyId([1; 16]) };
//! let pt = opening_plaintext(&salt, b"\"alice\"");
//! assert_eq!(check_opening(&ph, &pt).unwrap(), b"\"alice\"");
//! assert!(check_opening(&ph, &opening_plaintext(&salt, b"\"bob\"")).is_err());
//! ```

use crate::b64;
use crate::canonical;
use crate::hash::Hash;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

/// FORMAT 13.1: the commitment's domain string, with its zero byte.
pub const COMMIT_DOMAIN: &[u8] = b"stele sealed value v1\0";
/// FORMAT 13.3: the associated data's domain string, with its zero byte.
pub const OPENING_DOMAIN: &[u8] = b"stele sealed opening v1\0";
/// Salt bytes in an opening.
pub const SALT_LEN: usize = 16;
/// Bytes of a data key.
pub const DATA_KEY_LEN: usize = 32;
/// Bytes of a key ID.
pub const KEY_ID_LEN: usize = 16;
/// XChaCha20-Poly1305 nonce bytes.
pub const NONCE_LEN: usize = 24;
/// Poly1305 tag bytes.
pub const TAG_LEN: usize = 16;
/// The placeholder's one member.
pub const PLACEHOLDER_MEMBER: &str = "stele.sealed";
/// The ad-hoc marker's one member (FORMAT 13.9).
pub const MARKER_MEMBER: &str = "stele.seal";
/// What an entry line contains when it has a placeholder (canonical JSON
/// never escapes these characters, so the bytes are always literal).
pub const PLACEHOLDER_NEEDLE: &[u8] = b"\"stele.sealed\"";
/// Openings the verifier holds back while the log's origin is unknown
/// (FORMAT 13.8): later ones are not checked, their values stay sealed
/// (notice `openings_unchecked`), never a failure.
pub const MAX_DEFERRED: usize = 100_000;
/// Bytes of held-back openings (ciphertext and pointer) the verifier keeps
/// at most, as [`MAX_DEFERRED`]: an opening may be up to a line long, so a
/// count alone let 100,000 of them hold gigabytes. Honest openings (~200
/// bytes) meet the count first.
pub const MAX_DEFERRED_BYTES: usize = 64 << 20;
/// X25519 stanzas a verifier tries for one key ID, over all its wraps in
/// file order (FORMAT 13.8): the ones after are not tried.
pub const MAX_STANZAS_PER_KEY: u32 = 64;
/// `sealed-key` records a verifier keeps for one key ID (FORMAT 13.8): later
/// ones are not read (each wrap that can open has an X25519 stanza, so they
/// could only be tried after [`MAX_STANZAS_PER_KEY`] stanzas of their own).
pub const MAX_WRAPS_PER_KEY: usize = 64;

/// A 32-byte data key.
pub type DataKey = [u8; DATA_KEY_LEN];

/// The ID of a data key: 16 random bytes, written as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        crate::note::hex(&self.0)
    }

    /// Parses exactly 32 lowercase hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        Self::from_hex_bytes(s.as_bytes())
    }

    // [`KeyId::from_hex`] of bytes, as [`Hash::from_hex`] reads them.
    fn from_hex_bytes(s: &[u8]) -> Option<Self> {
        if s.len() != 2 * KEY_ID_LEN {
            return None;
        }
        let mut out = [0u8; KEY_ID_LEN];
        for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            let (hi, lo) = (
                crate::hash::HEX_VAL[usize::from(pair[0])],
                crate::hash::HEX_VAL[usize::from(pair[1])],
            );
            // Out at the first bad digit, as Hash::from_hex.
            if (hi | lo) & 0x80 != 0 {
                return None;
            }
            *o = (hi << 4) | lo;
        }
        Some(Self(out))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

/// FORMAT 13.1: `SHA-256("stele sealed value v1" || 0x00 || salt || value)`,
/// `value` being the canonical JSON bytes of the sealed value.
pub fn commitment(salt: &[u8; SALT_LEN], value: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(COMMIT_DOMAIN);
    h.update(salt);
    h.update(value);
    Hash(h.finalize().into())
}

/// FORMAT 13.3: the associated data binding an opening to its log, entry
/// and field.
pub fn opening_ad(origin: &str, index: u64, pointer: &str) -> Vec<u8> {
    let mut ad = Vec::with_capacity(OPENING_DOMAIN.len() + 24 + origin.len() + pointer.len());
    opening_ad_into(origin, index, pointer, &mut ad);
    ad
}

/// [`opening_ad`] written over `ad` (a reused buffer).
pub fn opening_ad_into(origin: &str, index: u64, pointer: &str, ad: &mut Vec<u8>) {
    ad.clear();
    ad.extend_from_slice(OPENING_DOMAIN);
    ad.extend_from_slice(&(origin.len() as u64).to_be_bytes());
    ad.extend_from_slice(origin.as_bytes());
    ad.extend_from_slice(&index.to_be_bytes());
    ad.extend_from_slice(&(pointer.len() as u64).to_be_bytes());
    ad.extend_from_slice(pointer.as_bytes());
}

/// FORMAT 13.3: the opening, `salt || value`.
pub fn opening_plaintext(salt: &[u8; SALT_LEN], value: &[u8]) -> Vec<u8> {
    let mut pt = Vec::with_capacity(SALT_LEN + value.len());
    pt.extend_from_slice(salt);
    pt.extend_from_slice(value);
    pt
}

/// A placeholder: what stands in an entry where a sealed value was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placeholder {
    /// The commitment to salt and value.
    pub commitment: Hash,
    /// The data key that encrypts the opening.
    pub key: KeyId,
}

impl Placeholder {
    /// The JSON object written in the entry:
    /// `{"stele.sealed":{"commitment":"<64 hex>","key":"<32 hex>"}}`.
    pub fn to_value(&self) -> Value {
        let mut inner = Map::new();
        let _ = inner.insert("commitment".into(), Value::String(self.commitment.to_hex()));
        let _ = inner.insert("key".into(), Value::String(self.key.to_hex()));
        let mut outer = Map::new();
        let _ = outer.insert(PLACEHOLDER_MEMBER.into(), Value::Object(inner));
        Value::Object(outer)
    }

    /// The canonical text of [`Placeholder::to_value`], appended to `out`
    /// without building the value (it is written for every sealed value
    /// appended: `stele bench sealed`).
    pub fn write_canonical(&self, out: &mut String) {
        // Built in one array and appended once: pushing it char by char
        // was ~0.4 µs an entry with two sealed values (perf, `stele bench
        // sealed`).
        const HEAD: &[u8] = b"{\"stele.sealed\":{\"commitment\":\"";
        const MID: &[u8] = b"\",\"key\":\"";
        const END: &[u8] = b"\"}}";
        const LEN: usize = HEAD.len() + 64 + MID.len() + 2 * KEY_ID_LEN + END.len();
        let mut text = [0u8; LEN];
        let (head, rest) = text.split_at_mut(HEAD.len());
        head.copy_from_slice(HEAD);
        let (commitment, rest) = rest.split_at_mut(64);
        commitment.copy_from_slice(&self.commitment.hex_bytes());
        let (mid, rest) = rest.split_at_mut(MID.len());
        mid.copy_from_slice(MID);
        let (key, end) = rest.split_at_mut(2 * KEY_ID_LEN);
        for (o, b) in key.chunks_exact_mut(2).zip(self.key.0) {
            o[0] = HEX[usize::from(b >> 4)];
            o[1] = HEX[usize::from(b & 15)];
        }
        end.copy_from_slice(END);
        // Hex digits and the fixed text are ASCII.
        out.push_str(std::str::from_utf8(&text).expect("ASCII"));
    }

    /// Reads an object that has a `stele.sealed` member: the placeholder,
    /// or why it is malformed.
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, String> {
        if obj.len() != 1 {
            return Err(format!(
                "an object with a {PLACEHOLDER_MEMBER:?} member must have no other member"
            ));
        }
        let Some(Value::Object(inner)) = obj.get(PLACEHOLDER_MEMBER) else {
            return Err(format!("{PLACEHOLDER_MEMBER:?} is not an object"));
        };
        let (Some(Value::String(c)), Some(Value::String(k)), 2) =
            (inner.get("commitment"), inner.get("key"), inner.len())
        else {
            return Err(
                "a placeholder must have exactly the string members \"commitment\" and \"key\""
                    .into(),
            );
        };
        let commitment =
            Hash::from_hex(c.as_bytes()).ok_or("the commitment is not 64 lowercase hex digits")?;
        let key = KeyId::from_hex(k).ok_or("the key ID is not 32 lowercase hex digits")?;
        Ok(Self { commitment, key })
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The canonical text of an event as it stands inside an entry line
/// ([`crate::entry::canonical_event_into`], appended to `out`) once each
/// value of `placeholders` (a reference into `event`, found by address) is
/// replaced by its placeholder: the same bytes as replacing them in the
/// value with [`Placeholder::to_value`] and writing that, without the copy.
/// The referenced values must not nest in one another.
#[cfg(feature = "std-float")]
pub fn canonical_event_sealed_into(
    event: &Value,
    placeholders: &[(&Value, Placeholder)],
    out: &mut String,
) -> Result<(), crate::entry::BuildError> {
    struct Swaps<'a, 'b>(&'a [(&'b Value, Placeholder)]);
    impl canonical::Swap for Swaps<'_, '_> {
        fn depth(&self, v: &Value) -> Option<usize> {
            // `{"stele.sealed":{...}}`: two levels.
            self.0
                .iter()
                .any(|(at, _)| std::ptr::eq(*at, v))
                .then_some(2)
        }
        fn write(&self, v: &Value, out: &mut String) -> bool {
            match self.0.iter().find(|(at, _)| std::ptr::eq(*at, v)) {
                Some((_, ph)) => {
                    ph.write_canonical(out);
                    true
                }
                None => false,
            }
        }
    }
    crate::entry::canonical_event_into_swapped(event, out, &Swaps(placeholders))
}

/// One RFC 6901 reference token, escaped (`~` as `~0`, `/` as `~1`).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The reference tokens of an RFC 6901 JSON Pointer (`""` is the whole
/// document, with no tokens).
pub fn pointer_tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "{} is not a JSON pointer: it must start with '/'",
            canonical::quote(pointer)
        ));
    };
    rest.split('/')
        .map(|t| {
            let mut out = String::with_capacity(t.len());
            let mut chars = t.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => {
                            return Err(format!(
                                "{} is not a JSON pointer: '~' must be followed by 0 or 1",
                                canonical::quote(pointer)
                            ));
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

/// Every placeholder in an event with its pointer, in the map's member order
/// (code point order, which is not always the canonical line's: for that
/// order, read the line with [`find_placeholders_canonical`]). A malformed
/// placeholder is an error naming its pointer.
pub fn find_placeholders(event: &Value) -> Result<Vec<(String, Placeholder)>, String> {
    fn walk(
        v: &Value,
        ptr: &mut String,
        out: &mut Vec<(String, Placeholder)>,
    ) -> Result<(), String> {
        match v {
            Value::Object(m) => {
                if m.contains_key(PLACEHOLDER_MEMBER) {
                    let ph = Placeholder::from_object(m).map_err(|e| {
                        format!("the placeholder at {}: {e}", canonical::quote(ptr))
                    })?;
                    if ptr.is_empty() {
                        return Err("the event itself is a placeholder".into());
                    }
                    out.push((ptr.clone(), ph));
                    return Ok(());
                }
                for (k, child) in m {
                    let len = ptr.len();
                    ptr.push('/');
                    if k.contains(['~', '/']) {
                        ptr.push_str(&escape_token(k));
                    } else {
                        ptr.push_str(k); // most names: no copy
                    }
                    walk(child, ptr, out)?;
                    ptr.truncate(len);
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    let len = ptr.len();
                    ptr.push('/');
                    let _ = fmt::Write::write_fmt(ptr, format_args!("{i}"));
                    walk(child, ptr, out)?;
                    ptr.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(event, &mut String::new(), &mut out)?;
    Ok(out)
}

/// The placeholders of an event read from its canonical JSON bytes, without
/// building its value (the opening pass's hot path), in the line's own order
/// (members in UTF-16 order): the order the page places opened values in a
/// line's text by. `None` for a malformed or misplaced placeholder (the
/// caller's [`find_placeholders`] gives the error) or bytes that are not a
/// canonical event. `Some` holds what [`find_placeholders`] finds in the
/// parsed event, the same placeholders and pointers; also in the same order
/// unless an object mixes member names from U+E000 up with names above
/// U+FFFF (code point order there differs from UTF-16 order).
pub fn find_placeholders_canonical(event: &[u8]) -> Option<Vec<(String, Placeholder)>> {
    const HEAD: &[u8] = b"{\"stele.sealed\":{\"commitment\":\"";
    const MID: &[u8] = b"\",\"key\":\"";
    const TAIL: &[u8] = b"\"}}";
    const LEN: usize = HEAD.len() + 64 + MID.len() + 2 * KEY_ID_LEN + TAIL.len();
    // Open objects and arrays: the pointer's length at their start, and
    // an array's next index.
    enum Open {
        Object(usize),
        Array(usize, usize),
    }
    // A member name at `at` (its opening quote), appended to the pointer;
    // the position after its colon.
    fn name(b: &[u8], at: usize, ptr: &mut String) -> Option<usize> {
        if b.get(at) != Some(&b'"') {
            return None;
        }
        let rest = b.get(at + 1..)?;
        // One scan to the closing quote (names are short: a byte loop,
        // not memchr and a second scan), noting the characters a token
        // escapes and JSON escapes (skipped over: `\"` does not close).
        // UTF-8 is taken as it is (`~` and `/` are never part of a
        // multi-byte character), so every member is read in the line's own
        // order: the order the page places opened values by.
        let mut n = 0;
        let mut escaped = false;
        let mut json_escape = false;
        loop {
            match *rest.get(n)? {
                b'"' => break,
                b'\\' => {
                    json_escape = true;
                    n += 1;
                }
                b'~' | b'/' => escaped = true,
                _ => {}
            }
            n += 1;
        }
        let decoded;
        let key = if json_escape {
            // Rare (control characters, `"` and `\` in a name): core's
            // unescape, which checks the escapes.
            decoded = canonical::unescape(&rest[..n])?;
            escaped = decoded.contains(['~', '/']);
            decoded.as_str()
        } else {
            std::str::from_utf8(&rest[..n]).ok()?
        };
        if key == PLACEHOLDER_MEMBER {
            return None;
        }
        ptr.push('/');
        if escaped {
            ptr.push_str(&escape_token(key));
        } else {
            ptr.push_str(key);
        }
        (b.get(at + 1 + n + 1) == Some(&b':')).then_some(at + n + 3)
    }
    let b = event;
    let mut out = Vec::new();
    let mut ptr = String::new();
    let mut open: Vec<Open> = Vec::new();
    let mut i = 0;
    loop {
        // A value at `i`.
        match *b.get(i)? {
            b'{' if b[i..].starts_with(HEAD) => {
                let ph = b.get(i..i + LEN)?;
                let commitment = Hash::from_hex(&ph[HEAD.len()..HEAD.len() + 64])?;
                let rest = ph[HEAD.len() + 64..].strip_prefix(MID)?;
                let key = KeyId::from_hex_bytes(&rest[..2 * KEY_ID_LEN])?;
                if &rest[2 * KEY_ID_LEN..] != TAIL || open.is_empty() {
                    return None;
                }
                out.push((ptr.clone(), Placeholder { commitment, key }));
                i += LEN;
            }
            b'{' if b.get(i + 1) == Some(&b'}') => i += 2,
            b'{' => {
                open.push(Open::Object(ptr.len()));
                i = name(b, i + 1, &mut ptr)?;
                continue;
            }
            b'[' if b.get(i + 1) == Some(&b']') => i += 2,
            b'[' => {
                open.push(Open::Array(ptr.len(), 1));
                ptr.push_str("/0");
                i += 1;
                continue;
            }
            b'"' => {
                // To the closing quote, past escapes (a byte loop: most
                // strings in an event are short).
                let mut j = i + 1;
                loop {
                    match *b.get(j)? {
                        b'"' => break,
                        b'\\' => j += 2,
                        _ => j += 1,
                    }
                }
                i = j + 1;
            }
            _ => {
                // A number, true, false or null.
                let n = b[i..]
                    .iter()
                    .position(|c| matches!(c, b',' | b']' | b'}'))
                    .unwrap_or(b.len() - i);
                i += n;
            }
        }
        // After a value: the next member or element, or the end of one or
        // more objects and arrays.
        loop {
            match open.last_mut() {
                None => return (i == b.len()).then_some(out),
                Some(Open::Object(len)) => {
                    ptr.truncate(*len);
                    match *b.get(i)? {
                        b',' => {
                            i = name(b, i + 1, &mut ptr)?;
                            break;
                        }
                        b'}' => {
                            i += 1;
                            let _ = open.pop();
                        }
                        _ => return None,
                    }
                }
                Some(Open::Array(len, next)) => {
                    ptr.truncate(*len);
                    match *b.get(i)? {
                        b',' => {
                            let _ = fmt::Write::write_fmt(&mut ptr, format_args!("/{next}"));
                            *next += 1;
                            i += 1;
                            break;
                        }
                        b']' => {
                            i += 1;
                            let _ = open.pop();
                        }
                        _ => return None,
                    }
                }
            }
        }
    }
}

/// Why an opening does not open (FORMAT 13.3). The text never contains any
/// part of the plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpeningError {
    /// The ciphertext does not decrypt under the data key with this entry's
    /// and field's associated data (altered, or moved from elsewhere).
    Decrypt,
    /// The plaintext is shorter than a salt and one byte.
    TooShort,
    /// The value is not one canonical JSON value.
    NotCanonical,
    /// Salt and value do not hash to the commitment.
    Mismatch,
}

impl fmt::Display for OpeningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Decrypt => {
                "does not decrypt under its data key for this entry and field (the ciphertext was altered or moved from another entry or field)"
            }
            Self::TooShort => "decrypts to fewer bytes than a salt and a value",
            Self::NotCanonical => "decrypts to a value that is not canonical JSON",
            Self::Mismatch => {
                "does not match the commitment in the entry (the opening belongs to another value)"
            }
        })
    }
}

impl std::error::Error for OpeningError {}

/// FORMAT 13.3 steps 2 to 4: checks a decrypted opening against its
/// placeholder and returns the value's canonical JSON bytes.
pub fn check_opening<'a>(ph: &Placeholder, plaintext: &'a [u8]) -> Result<&'a [u8], OpeningError> {
    check_opening_str(ph, plaintext).map(str::as_bytes)
}

// [`check_opening`], the value as the text it checked is UTF-8.
fn check_opening_str<'a>(ph: &Placeholder, plaintext: &'a [u8]) -> Result<&'a str, OpeningError> {
    if plaintext.len() <= SALT_LEN {
        return Err(OpeningError::TooShort);
    }
    let (salt, value) = plaintext.split_at(SALT_LEN);
    let salt: &[u8; SALT_LEN] = salt.try_into().map_err(|_| OpeningError::TooShort)?;
    let Ok(text) = std::str::from_utf8(value) else {
        return Err(OpeningError::NotCanonical);
    };
    if canonical::validate(value).is_err() {
        return Err(OpeningError::NotCanonical);
    }
    if commitment(salt, value) != ph.commitment {
        return Err(OpeningError::Mismatch);
    }
    Ok(text)
}

/// A sealed-field record of an export file (FORMAT 13.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `sealed-key <key ID> <base64 wrap>`
    SealedKey {
        /// The data key's ID.
        key: KeyId,
        /// The age file.
        wrap: Vec<u8>,
    },
    /// `forgotten <key ID>`
    Forgotten(KeyId),
    /// `opening <index> <base64 sealed> <pointer>`
    Opening {
        /// The entry index.
        index: u64,
        /// Nonce and ciphertext.
        sealed: Vec<u8>,
        /// The placeholder's pointer.
        pointer: String,
    },
    /// `redacted <index> <pointer>`
    Redacted {
        /// The entry index.
        index: u64,
        /// The placeholder's pointer.
        pointer: String,
    },
}

/// The words that start the four record lines, with their space.
pub const RECORD_PREFIXES: [&[u8]; 4] = [b"sealed-key ", b"forgotten ", b"opening ", b"redacted "];

/// Whether a line is a sealed-field record (by its first word).
pub fn is_record(line: &[u8]) -> bool {
    RECORD_PREFIXES.iter().any(|p| line.starts_with(p))
}

fn parse_index(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok().filter(|&n| n <= crate::entry::MAX_SEQ)
}

fn parse_pointer(s: &str) -> Result<String, String> {
    let bad = || {
        "the pointer is not a JSON string in canonical form (for example \"/actor/email\")"
            .to_string()
    };
    if !s.starts_with('"') || canonical::validate(s.as_bytes()).is_err() {
        return Err(bad());
    }
    // A canonical JSON string without a backslash is its text between the
    // quotes (every pointer the writer makes): no second parse.
    let inner = s.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
    let p = match inner.filter(|t| !t.contains('\\')) {
        Some(t) => t.to_string(),
        None => match serde_json::from_str::<Value>(s) {
            Ok(Value::String(p)) => p,
            _ => return Err(bad()),
        },
    };
    // Without a '~' a pointer that starts with '/' has valid tokens: only
    // other pointers are split (pointer_tokens allocates each token).
    if !p.starts_with('/') || p.contains('~') {
        let _ = pointer_tokens(&p)?;
    }
    if p.is_empty() {
        return Err("the pointer is empty (a placeholder is never the whole event)".into());
    }
    Ok(p)
}

impl Record {
    /// Parses a record line (without its `\n`). `Err` says what is wrong;
    /// the caller knows the line is a record from [`is_record`].
    pub fn parse(line: &[u8]) -> Result<Self, String> {
        let line = std::str::from_utf8(line).map_err(|_| "the record is not UTF-8".to_string())?;
        let (word, rest) = line.split_once(' ').ok_or("the record has no fields")?;
        match word {
            "sealed-key" => {
                let (k, w) = rest
                    .split_once(' ')
                    .ok_or("a sealed-key record needs a key ID and a wrap")?;
                let key = KeyId::from_hex(k).ok_or("the key ID is not 32 lowercase hex digits")?;
                let wrap = b64::decode_public(w).ok_or("the wrap is not base64")?;
                Ok(Self::SealedKey { key, wrap })
            }
            "forgotten" => KeyId::from_hex(rest)
                .map(Record::Forgotten)
                .ok_or_else(|| "the key ID is not 32 lowercase hex digits".into()),
            "opening" => {
                let mut parts = rest.splitn(3, ' ');
                let (Some(i), Some(s), Some(p)) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(
                        "an opening record needs an index, a ciphertext and a pointer".into(),
                    );
                };
                let index = parse_index(i).ok_or("the index is not a decimal entry index")?;
                let sealed = b64::decode_public(s).ok_or("the ciphertext is not base64")?;
                if sealed.len() < NONCE_LEN + TAG_LEN {
                    return Err("the ciphertext is shorter than a nonce and a tag".into());
                }
                Ok(Self::Opening {
                    index,
                    sealed,
                    pointer: parse_pointer(p)?,
                })
            }
            "redacted" => {
                let (i, p) = rest
                    .split_once(' ')
                    .ok_or("a redacted record needs an index and a pointer")?;
                let index = parse_index(i).ok_or("the index is not a decimal entry index")?;
                Ok(Self::Redacted {
                    index,
                    pointer: parse_pointer(p)?,
                })
            }
            _ => Err(format!(
                "{} is not a sealed-field record",
                canonical::quote(word)
            )),
        }
    }

    /// The record's line, without `\n`.
    pub fn to_line(&self) -> String {
        match self {
            Self::SealedKey { key, wrap } => format!("sealed-key {key} {}", b64::encode(wrap)),
            Self::Forgotten(key) => format!("forgotten {key}"),
            Self::Opening {
                index,
                sealed,
                pointer,
            } => format!(
                "opening {index} {} {}",
                b64::encode(sealed),
                canonical::json_string(pointer)
            ),
            Self::Redacted { index, pointer } => {
                format!("redacted {index} {}", canonical::json_string(pointer))
            }
        }
    }
}

/// The secret-holding half of verification: opens age wraps with the
/// caller's identities and decrypts openings. `stele-seal` implements it.
pub trait Opener: Send + Sync {
    /// The 32-byte data key inside an age file, if one of the caller's
    /// identities opens it (FORMAT 13.5); `None` otherwise (not an error).
    /// `budget`: the X25519 stanzas it may still try (FORMAT 13.8); each
    /// stanza tried takes one, whatever the number of identities, and with
    /// none left it tries no more.
    fn unwrap_key(&self, wrap: &[u8], budget: &mut u32) -> Option<DataKey>;
    /// XChaCha20-Poly1305 decryption of `nonce || ciphertext` (FORMAT 13.3).
    fn decrypt(&self, key: &DataKey, sealed: &[u8], ad: &[u8]) -> Option<Vec<u8>>;
}

/// A shared [`Opener`], as [`crate::verify::Options`] holds it.
#[derive(Clone)]
pub struct OpenerHandle(pub Arc<dyn Opener>);

impl fmt::Debug for OpenerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpenerHandle(..)")
    }
}

/// The report's `sealed` member (FORMAT 13.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SealedCounts {
    /// Placeholders seen.
    pub values: u64,
    /// Values opened and checked against their commitment.
    pub opened: u64,
    /// Values not opened: no identity, no wrap for it, or no opening.
    pub sealed: u64,
    /// Values whose data key was forgotten.
    pub forgotten: u64,
    /// Values whose opening was redacted.
    pub redacted: u64,
}

/// How one sealed value ended, for callers that show each value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueState {
    /// Opened and checked: the value's canonical JSON.
    Opened(String),
    /// Not opened.
    Sealed,
    /// Its data key was forgotten.
    Forgotten,
    /// Its opening was redacted.
    Redacted,
    /// Its opening failed (an `opening_mismatch` failure names it).
    Mismatch,
}

/// Settled values as the browser modules hand them to JavaScript: a JSON
/// array of `[entry, pointer, state, value]`, state `opened` (value: its
/// JSON text, checked against the commitment), `sealed`, `forgotten`,
/// `redacted` or `mismatch` (value null).
pub fn states_json(states: Vec<(u64, String, ValueState)>) -> String {
    // One buffer for the whole array, written without `format!` machinery
    // or a string a value (this runs for every value the page opens).
    // ~49 bytes a value in web/bench/sealed.mjs's export: 64 leaves room.
    let mut out = String::with_capacity(2 + states.len() * 64);
    out.push('[');
    for (n, (entry, ptr, st)) in states.into_iter().enumerate() {
        let word = match &st {
            ValueState::Opened(_) => "\"opened\",",
            ValueState::Sealed => "\"sealed\",",
            ValueState::Forgotten => "\"forgotten\",",
            ValueState::Redacted => "\"redacted\",",
            ValueState::Mismatch => "\"mismatch\",",
        };
        out.push_str(if n > 0 { ",[" } else { "[" });
        push_decimal(&mut out, entry);
        out.push(',');
        canonical::quote_into(&mut out, &ptr);
        out.push(',');
        out.push_str(word);
        match &st {
            ValueState::Opened(v) => canonical::quote_into(&mut out, v),
            _ => out.push_str("null"),
        }
        out.push(']');
    }
    out.push(']');
    out
}

// `n` in decimal, appended.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// A failure found by the [`SealChecker`]; the verifier adds line and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealFailure {
    /// `bad_sealed` or `opening_mismatch`.
    pub code: crate::codes::FailureCode,
    /// The entry it is about, when known.
    pub entry: Option<u64>,
    /// The sentence (never containing sealed plaintext).
    pub message: String,
}

#[derive(Debug)]
struct Current {
    index: u64,
    values: Vec<(String, Placeholder, Option<ValueState>)>,
    // Pointers of forgotten values that a record was about already (their
    // state stays "forgotten", so it cannot say so): a second is bad_sealed.
    forgotten_claimed: Vec<String>,
}

// A key ID's data key: its wraps until a value needs the key, then the key
// (or "not ours") once unwrapped.
#[derive(Debug)]
enum KeySlot {
    Wraps(Vec<Vec<u8>>),
    Unwrapped(Option<DataKey>),
}

#[derive(Debug)]
struct Deferred {
    index: u64,
    pointer: String,
    ph: Placeholder,
    sealed: Vec<u8>,
}

/// The verifier's sealed-field state (FORMAT 13.8). Feed it entries and
/// records in file order; it returns failures as it finds them.
#[derive(Debug, Default)]
pub struct SealChecker {
    opener: Option<OpenerHandle>,
    origin: Option<String>,
    keys: HashMap<KeyId, KeySlot>,
    unwrapped: u64,
    forgotten: HashSet<KeyId>,
    seen_entry: bool,
    current: Option<Current>,
    deferred: Vec<Deferred>,
    // Bytes of ciphertext and pointers in `deferred`.
    deferred_bytes: usize,
    // Openings beyond MAX_DEFERRED (or MAX_DEFERRED_BYTES) before the
    // origin was known: not checked.
    unchecked: u64,
    counts: SealedCounts,
    collect: bool,
    states: Vec<(u64, String, ValueState)>,
}

impl SealChecker {
    /// A checker that opens values with `opener` (if any).
    pub fn new(opener: Option<OpenerHandle>) -> Self {
        Self {
            opener,
            ..Default::default()
        }
    }

    /// Keep each value's final state for [`SealChecker::take_states`].
    pub fn collect_states(&mut self, on: bool) {
        self.collect = on;
    }

    /// Whether any placeholder or sealed record was seen.
    pub fn active(&self) -> bool {
        self.counts.values > 0 || !self.keys.is_empty() || !self.forgotten.is_empty()
    }

    /// The log's origin became known: openings held back are checked now.
    pub fn set_origin(&mut self, origin: &str) -> Vec<SealFailure> {
        // Without the feature nothing is ever held back or open: the plain
        // verifier's wasm keeps none of this code.
        if !cfg!(feature = "sealed") {
            return Vec::new();
        }
        if self.origin.is_some() {
            return Vec::new();
        }
        self.origin = Some(origin.to_string());
        let mut out = Vec::new();
        self.deferred_bytes = 0;
        for d in std::mem::take(&mut self.deferred) {
            let state = self.open(d.index, &d.pointer, &d.ph, &d.sealed, &mut out);
            self.settle(d.index, d.pointer, state);
        }
        out
    }

    /// An entry line at `index`: `event` is its event JSON when the line
    /// passed its checks, `None` when it did not.
    pub fn entry(&mut self, index: u64, event: Option<&[u8]>) -> Vec<SealFailure> {
        if !cfg!(feature = "sealed") {
            return Vec::new();
        }
        self.end_entry();
        self.seen_entry = true;
        let Some(event) = event else {
            return Vec::new();
        };
        // One searcher for every entry: memmem::find builds one a call (5% of `stele verify`).
        static PLACEHOLDER_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(PLACEHOLDER_NEEDLE));
        if PLACEHOLDER_FINDER.find(event).is_none() {
            return Vec::new();
        }
        let found = match find_placeholders_canonical(event) {
            Some(found) => Ok(found),
            None => match serde_json::from_slice::<Value>(event) {
                Ok(value) => find_placeholders(&value),
                Err(_) => return Vec::new(), // the line check reports it
            },
        };
        match found {
            Ok(found) => {
                self.counts.values += found.len() as u64;
                // FORMAT 13.2: an event's type is never sealed.
                let typed = found.iter().any(|(p, _)| p == "/type");
                let values = found
                    .into_iter()
                    .map(|(p, ph)| {
                        let state = self
                            .forgotten
                            .contains(&ph.key)
                            .then_some(ValueState::Forgotten);
                        (p, ph, state)
                    })
                    .collect();
                self.current = Some(Current {
                    index,
                    values,
                    forgotten_claimed: Vec::new(),
                });
                if typed {
                    return vec![SealFailure {
                        code: crate::codes::FailureCode::BadSealed,
                        entry: Some(index),
                        message: format!(
                            "entry {index}: a placeholder at \"/type\" (an event's type is never sealed)"
                        ),
                    }];
                }
                Vec::new()
            }
            Err(e) => vec![SealFailure {
                code: crate::codes::FailureCode::BadSealed,
                entry: Some(index),
                message: format!("entry {index}: {e}"),
            }],
        }
    }

    /// Any line that is neither an entry nor a sealed record (a checkpoint,
    /// a proof record): records after it no longer belong to the entry.
    pub fn other(&mut self) {
        self.end_entry();
    }

    /// The reading continues at an entry line after other entries, which
    /// another checker reads (a split opening pass, [`crate::sealed_pass`]):
    /// from now on key records are misplaced, as after any entry. `false`
    /// (and nothing changes) when this checker has already read an entry.
    pub fn skip_to_later_entry(&mut self) -> bool {
        if self.seen_entry {
            return false;
        }
        self.end_entry();
        self.seen_entry = true;
        true
    }

    /// A sealed-field record line (see [`is_record`]).
    pub fn record(&mut self, line: &[u8]) -> Vec<SealFailure> {
        if !cfg!(feature = "sealed") {
            return Vec::new(); // built without sealed-field checks: accepted unread
        }
        let mut out = Vec::new();
        let fail = |entry: Option<u64>, message: String| SealFailure {
            code: crate::codes::FailureCode::BadSealed,
            entry,
            message,
        };
        let rec = match Record::parse(line) {
            Ok(r) => r,
            Err(e) => {
                out.push(fail(None, format!("sealed-field record: {e}")));
                return out;
            }
        };
        match rec {
            Record::SealedKey { key, wrap } => {
                if self.seen_entry || self.forgotten.contains(&key) {
                    let why = if self.seen_entry {
                        "comes after an entry line (key records come before every entry)"
                    } else {
                        "wraps a key ID the export also lists as forgotten"
                    };
                    out.push(fail(None, format!("sealed-key record for key {key} {why}")));
                    return out;
                }
                // Kept, not unwrapped: only a key ID some placeholder uses
                // is (at the first opening that needs it), so junk records
                // cost no X25519 work. Without an identity there is
                // nothing to keep.
                let keep = self.opener.is_some();
                match self.keys.entry(key).or_insert(KeySlot::Wraps(Vec::new())) {
                    KeySlot::Wraps(wraps) if keep && wraps.len() < MAX_WRAPS_PER_KEY => {
                        wraps.push(wrap);
                    }
                    _ => {}
                }
            }
            Record::Forgotten(key) => {
                if self.seen_entry || self.keys.contains_key(&key) {
                    let why = if self.seen_entry {
                        "comes after an entry line (key records come before every entry)"
                    } else {
                        "names a key ID the export also wraps"
                    };
                    out.push(fail(None, format!("forgotten record for key {key} {why}")));
                    return out;
                }
                let _ = self.forgotten.insert(key);
            }
            Record::Opening {
                index,
                sealed,
                pointer,
            } => {
                let Some(ph) = self.claim(index, &pointer, "opening", &mut out) else {
                    return out;
                };
                if self.origin.is_none() && self.data_key(&ph.key).is_some() {
                    self.set_state(&pointer, ValueState::Sealed); // claimed
                    let bytes = sealed.len() + pointer.len();
                    if self.deferred.len() >= MAX_DEFERRED
                        || self.deferred_bytes + bytes > MAX_DEFERRED_BYTES
                    {
                        // Memory stays bounded; a valid file never fails.
                        self.unchecked += 1;
                    } else {
                        self.deferred_bytes += bytes;
                        self.deferred.push(Deferred {
                            index,
                            pointer,
                            ph,
                            sealed,
                        });
                    }
                    return out;
                }
                let state = self.open(index, &pointer, &ph, &sealed, &mut out);
                self.set_state(&pointer, state);
            }
            Record::Redacted { index, pointer } => {
                if self.claim(index, &pointer, "redacted", &mut out).is_some() {
                    self.set_state(&pointer, ValueState::Redacted);
                }
            }
        }
        out
    }

    /// End of the file: the counts.
    pub fn finish(&mut self) -> SealedCounts {
        // Without the feature nothing is ever held back or open: the plain
        // verifier's wasm keeps none of this code.
        if !cfg!(feature = "sealed") {
            return self.counts;
        }
        self.end_entry();
        // Openings never checked (the origin never became known) stay sealed.
        self.deferred_bytes = 0;
        for d in std::mem::take(&mut self.deferred) {
            self.settle(d.index, d.pointer, ValueState::Sealed);
        }
        let c = &mut self.counts;
        c.sealed = c.values - c.opened - c.forgotten - c.redacted;
        *c
    }

    /// Each value's final state so far `(entry, pointer, state)`, when
    /// [`SealChecker::collect_states`] is on. Values of the last entry
    /// appear once the next line (or the end) is read.
    pub fn take_states(&mut self) -> Vec<(u64, String, ValueState)> {
        std::mem::take(&mut self.states)
    }

    /// The wraps of each key ID not unwrapped yet, in file order (kept
    /// only with an opener): what unwrapping may still read, for an opener
    /// that prepares ahead (the page computes their X25519 elsewhere).
    pub fn pending_wraps(&self) -> impl Iterator<Item = &[Vec<u8>]> {
        self.keys.values().filter_map(|slot| match slot {
            KeySlot::Wraps(w) if !w.is_empty() => Some(w.as_slice()),
            _ => None,
        })
    }

    /// Openings not checked because [`MAX_DEFERRED`] (or
    /// [`MAX_DEFERRED_BYTES`]) were already held back
    /// while the origin was unknown (their values count as sealed).
    pub fn unchecked_openings(&self) -> u64 {
        self.unchecked
    }

    /// Key IDs whose wraps were unwrapped so far: those of the values that
    /// had an opening to check (FORMAT 13.8), never another.
    pub fn keys_unwrapped(&self) -> u64 {
        self.unwrapped
    }

    // The data key of a key ID, its wraps unwrapped at the first call (at
    // most MAX_STANZAS_PER_KEY X25519 stanzas over all of them).
    fn data_key(&mut self, id: &KeyId) -> Option<DataKey> {
        let slot = self.keys.get_mut(id)?;
        if let KeySlot::Wraps(wraps) = slot {
            let mut budget = MAX_STANZAS_PER_KEY;
            let mut dk = None;
            if let Some(o) = self.opener.as_ref() {
                for w in wraps.iter() {
                    if budget == 0 {
                        break;
                    }
                    dk = o.0.unwrap_key(w, &mut budget);
                    if dk.is_some() {
                        break;
                    }
                }
            }
            self.unwrapped += 1;
            *slot = KeySlot::Unwrapped(dk);
        }
        match slot {
            KeySlot::Unwrapped(dk) => *dk,
            KeySlot::Wraps(_) => None,
        }
    }

    // Finds the placeholder an opening/redacted record is about and marks it
    // claimed; reports misplaced or duplicate records.
    fn claim(
        &mut self,
        index: u64,
        pointer: &str,
        what: &str,
        out: &mut Vec<SealFailure>,
    ) -> Option<Placeholder> {
        // Quoted only for a failure's message (this runs for every value).
        let q = || canonical::quote(pointer);
        let Some(cur) = self.current.as_mut().filter(|c| c.index == index) else {
            let q = q();
            out.push(SealFailure {
                code: crate::codes::FailureCode::BadSealed,
                entry: Some(index),
                message: format!(
                    "entry {index}: {what} record for {q} does not directly follow entry {index}"
                ),
            });
            return None;
        };
        let Some(slot) = cur.values.iter_mut().find(|v| v.0 == pointer) else {
            let q = q();
            out.push(SealFailure {
                code: crate::codes::FailureCode::BadSealed,
                entry: Some(index),
                message: format!(
                    "entry {index}: {what} record for {q}, but the entry has no sealed value there"
                ),
            });
            return None;
        };
        match slot.2 {
            // A forgotten key has no wrap: nothing to open; it stays
            // "forgotten". One record for it, as for any value (13.6).
            Some(ValueState::Forgotten) if !cur.forgotten_claimed.iter().any(|p| p == pointer) => {
                cur.forgotten_claimed.push(pointer.to_string());
                None
            }
            Some(_) => {
                let q = q();
                out.push(SealFailure {
                    code: crate::codes::FailureCode::BadSealed,
                    entry: Some(index),
                    message: format!("entry {index}: a second {what} record for {q}"),
                });
                None
            }
            None => Some(slot.1),
        }
    }

    fn set_state(&mut self, pointer: &str, state: ValueState) {
        if let Some(cur) = self.current.as_mut()
            && let Some(slot) = cur.values.iter_mut().find(|v| v.0 == pointer)
        {
            if state == ValueState::Redacted {
                self.counts.redacted += 1;
            }
            if matches!(state, ValueState::Opened(_)) {
                self.counts.opened += 1;
            }
            slot.2 = Some(state);
        }
    }

    // A deferred opening resolved after its entry ended.
    fn settle(&mut self, index: u64, pointer: String, state: ValueState) {
        if matches!(state, ValueState::Opened(_)) {
            self.counts.opened += 1;
        }
        if self.collect {
            self.states.push((index, pointer, state));
        }
    }

    fn open(
        &mut self,
        index: u64,
        pointer: &str,
        ph: &Placeholder,
        sealed: &[u8],
        out: &mut Vec<SealFailure>,
    ) -> ValueState {
        if self.opener.is_none() || self.origin.is_none() {
            return ValueState::Sealed;
        }
        let Some(key) = self.data_key(&ph.key) else {
            return ValueState::Sealed;
        };
        let (Some(opener), Some(origin)) = (self.opener.as_ref(), self.origin.as_deref()) else {
            return ValueState::Sealed;
        };
        let ad = opening_ad(origin, index, pointer);
        let result = match opener.0.decrypt(&key, sealed, &ad) {
            None => Err(OpeningError::Decrypt),
            Some(pt) => check_opening_str(ph, &pt).map(str::to_owned),
        };
        match result {
            Ok(v) => ValueState::Opened(v),
            Err(e) => {
                out.push(SealFailure {
                    code: crate::codes::FailureCode::OpeningMismatch,
                    entry: Some(index),
                    message: format!(
                        "entry {index}: the opening of {} {e}",
                        canonical::quote(pointer)
                    ),
                });
                ValueState::Mismatch
            }
        }
    }

    fn end_entry(&mut self) {
        // Without the feature nothing is ever held back or open: the plain
        // verifier's wasm keeps none of this code.
        if !cfg!(feature = "sealed") {
            return;
        }
        let Some(cur) = self.current.take() else {
            return;
        };
        for (pointer, _, state) in cur.values {
            // This entry's deferred openings are the last ones held (a
            // search of them all made a range export quadratic).
            let deferred = self
                .deferred
                .iter()
                .rev()
                .take_while(|d| d.index == cur.index)
                .any(|d| d.pointer == pointer);
            if deferred {
                continue; // settled when the origin is known
            }
            let state = state.unwrap_or(ValueState::Sealed);
            if state == ValueState::Forgotten {
                self.counts.forgotten += 1;
            }
            if self.collect {
                self.states.push((cur.index, pointer, state));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Placeholders read from the line come in the line's order, also when
    /// code point order (serde_json's map, so `find_placeholders`) differs
    /// from UTF-16 order (names from U+E000 up beside names above U+FFFF):
    /// the page places opened values by that order.
    #[test]
    fn placeholders_come_in_the_canonical_lines_order() {
        let ph = |b: u8| {
            Placeholder {
                commitment: Hash([b; 32]),
                key: KeyId([b; 16]),
            }
            .to_value()
        };
        let mut inner = Map::new();
        for (name, b) in [
            ("id", 0u8),
            ("\u{FB01}", 1),
            ("\u{1F600}", 2),
            ("\u{E000}x", 3),
            ("z", 4),
        ] {
            let _ = inner.insert(name.into(), if b == 0 { Value::from("m") } else { ph(b) });
        }
        let mut ev = Map::new();
        let _ = ev.insert("actor".into(), Value::Object(inner.clone()));
        let _ = ev.insert("\u{1F601}".into(), Value::Object(inner));
        let ev = Value::Object(ev);
        let line = canonical::to_canonical(&ev).unwrap();
        let found = find_placeholders_canonical(line.as_bytes()).unwrap();
        assert_eq!(found.len(), 8);
        // The same placeholders and pointers as the parsed event's walk.
        let mut walked = find_placeholders(&ev).unwrap();
        let mut sorted = found.clone();
        walked.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(sorted, walked);
        // Each placeholder's commitment, in the order the line holds them.
        let in_line: Vec<u8> = line
            .match_indices("\"commitment\":\"")
            .map(|(i, m)| u8::from_str_radix(&line[i + m.len()..i + m.len() + 2], 16).unwrap())
            .collect();
        let listed: Vec<u8> = found.iter().map(|(_, p)| p.commitment.0[0]).collect();
        assert_eq!(listed, in_line, "{line}");
        assert_eq!(found[1].0, "/actor/\u{1F600}");
    }

    /// tests/vectors/sealed/commitment.txt (made with Python's hashlib).
    #[test]
    fn commitment_vectors_file() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/vectors/sealed/commitment.txt"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut n = 0;
        for line in text
            .split('\n')
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let mut f = line.splitn(3, ' ');
            let (salt, want, value) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            let salt: [u8; 16] = Hash::from_hex(format!("{salt:0<64}").as_bytes()).unwrap().0[..16]
                .try_into()
                .unwrap();
            assert!(canonical::validate(value.as_bytes()).is_ok(), "{line}");
            assert_eq!(commitment(&salt, value.as_bytes()).to_hex(), want, "{line}");
            n += 1;
        }
        assert!(n >= 9, "{n} vectors");
    }

    /// The placeholder text written by hand is the canonical text of the
    /// event with the values replaced by `to_value`, and the depth limit is
    /// the replaced event's (a deep value sealed away, a scalar sealed at
    /// the limit).
    #[test]
    fn sealed_event_text_is_the_replaced_events() {
        use crate::entry::canonical_event;
        let deep = |n: usize| {
            let mut v = serde_json::json!(1);
            for _ in 0..n {
                v = serde_json::json!([v]);
            }
            v
        };
        let max = canonical::MAX_DEPTH;
        let cases = [
            (
                serde_json::json!({"a": {"b\u{e9}": "x", "c": [1, {"d": null}]}, "z": 2.5}),
                vec![vec!["a", "b\u{e9}"], vec!["a", "c"]],
            ),
            (serde_json::json!({"s": "x", "t": [true]}), vec![vec!["s"]]),
            (serde_json::json!({"s": deep(max)}), vec![vec!["s"]]),
            (serde_json::json!({"s": deep(max - 3)}), vec![]),
            (
                serde_json::json!({"s": deep(max - 4), "t": 1}),
                vec![vec!["t"]],
            ),
            (
                serde_json::json!({"s": [deep(max - 4)]}),
                vec![vec!["s", "0"]],
            ),
            (
                serde_json::json!({"s": {"t": {"u": 1}}}),
                vec![vec!["s", "t", "u"]],
            ),
            (serde_json::json!({"s": 1, "big": 1e300}), vec![vec!["s"]]),
        ];
        for (i, (ev, paths)) in cases.into_iter().enumerate() {
            let phs: Vec<Placeholder> = (0..paths.len())
                .map(|k| Placeholder {
                    commitment: Hash([k as u8 * 17 + 3; 32]),
                    key: KeyId([0xa5 ^ k as u8; 16]),
                })
                .collect();
            let mut replaced = ev.clone();
            for (p, ph) in paths.iter().zip(&phs) {
                let ptr: String = p.iter().map(|t| format!("/{t}")).collect();
                *replaced.pointer_mut(&ptr).unwrap() = ph.to_value();
            }
            let refs: Vec<(&Value, Placeholder)> = paths
                .iter()
                .zip(&phs)
                .map(|(p, ph)| {
                    let ptr: String = p.iter().map(|t| format!("/{t}")).collect();
                    (ev.pointer(&ptr).unwrap(), *ph)
                })
                .collect();
            let mut out = String::from("before");
            let got = canonical_event_sealed_into(&ev, &refs, &mut out);
            let want = canonical_event(&replaced);
            match (got, want) {
                (Ok(()), Ok(w)) => assert_eq!(out, format!("before{w}"), "case {i}"),
                (Err(g), Err(w)) => {
                    assert_eq!(g.to_string(), w.to_string(), "case {i}");
                    assert_eq!(out, "before", "case {i}");
                }
                (g, w) => panic!("case {i}: {g:?} but {w:?}"),
            }
        }
        // The hand-written text alone.
        let ph = Placeholder {
            commitment: Hash([0xab; 32]),
            key: KeyId([0x01; 16]),
        };
        let mut out = String::new();
        ph.write_canonical(&mut out);
        assert_eq!(out, canonical::to_canonical(&ph.to_value()).unwrap());
    }

    #[test]
    fn commitment_matches_the_worked_example() {
        let salt: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            commitment(&salt, b"\"alice@example.com\"").to_hex(),
            "a4ebe4c0dd631a4fc947bdc40119c7c3720819c4f37d16b55d4aefe6288b8ce6"
        );
    }

    #[test]
    fn ad_layout() {
        let ad = opening_ad("o", 258, "/a");
        let mut want = b"stele sealed opening v1\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, b'o']);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, b'/', b'a']);
        assert_eq!(ad, want);
    }

    #[test]
    fn pointers_read_without_a_second_parse_are_what_json_says() {
        for s in [
            r#""/ip""#,
            r#""/actor/email""#,
            r#""/a\\b""#,
            r#""/a\"b""#,
            r#""/é""#,
            r#""/ip"x""#,
            r#""/ip" "#,
            r#""/ip"#,
            r#"""#,
            r#""""#,
            r#""/a"/b""#,
        ] {
            let want = canonical::validate(s.as_bytes()).ok().and_then(|_| {
                match serde_json::from_str::<Value>(s) {
                    Ok(Value::String(p)) if !p.is_empty() && pointer_tokens(&p).is_ok() => Some(p),
                    _ => None,
                }
            });
            assert_eq!(parse_pointer(s).ok(), want, "{s}");
        }
    }

    #[test]
    fn states_json_is_the_json_array_of_the_states() {
        assert_eq!(states_json(Vec::new()), "[]");
        let v = "\"a\\\"\u{1}\u{202e}é\"".to_string();
        let states = vec![
            (3, "/ip".to_string(), ValueState::Opened(v.clone())),
            (4, "/a\"b\n".to_string(), ValueState::Sealed),
            (5, "/x".to_string(), ValueState::Forgotten),
            (6, "/y".to_string(), ValueState::Redacted),
            (7, "/z".to_string(), ValueState::Mismatch),
            // Printable ASCII with the two characters it escapes.
            (
                0,
                "/q\\\"".to_string(),
                ValueState::Opened(r#""x\"y""#.into()),
            ),
            (crate::entry::MAX_SEQ, "/r".to_string(), ValueState::Sealed),
        ];
        let text = states_json(states);
        let want = serde_json::json!([
            [3, "/ip", "opened", v],
            [4, "/a\"b\n", "sealed", null],
            [5, "/x", "forgotten", null],
            [6, "/y", "redacted", null],
            [7, "/z", "mismatch", null],
            [0, "/q\\\"", "opened", r#""x\"y""#],
            [crate::entry::MAX_SEQ, "/r", "sealed", null],
        ]);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), want);
        assert!(text.contains(r#""\"a\\\"\u0001\u202eé\"""#), "{text}");
    }

    #[test]
    fn placeholders_are_found_with_their_pointers() {
        let ph = Placeholder {
            commitment: Hash([3; 32]),
            key: KeyId([9; 16]),
        };
        let ev = serde_json::json!({
            "a/b": ph.to_value(),
            "list": [1, ph.to_value()],
            "m~x": {"deep": ph.to_value()},
            "plain": "x",
        });
        let found = find_placeholders(&ev).unwrap();
        let ptrs: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(ptrs, ["/a~1b", "/list/1", "/m~0x/deep"]);
        for (p, _) in &found {
            let toks = pointer_tokens(p).unwrap();
            assert!(!toks.is_empty());
        }
        assert_eq!(pointer_tokens("/a~1b/m~0x").unwrap(), ["a/b", "m~x"]);
        assert!(pointer_tokens("a").is_err());
        assert!(pointer_tokens("/a~2").is_err());
    }

    // FORMAT 13.2: a placeholder at /type is bad_sealed (an opened type
    // could read as one of the log's own stele.* types); 13.6: two records
    // for one pointer are bad_sealed, for a forgotten key's value too.
    #[test]
    fn a_sealed_type_and_second_records_of_forgotten_values_are_bad_sealed() {
        let ph = Placeholder {
            commitment: Hash([3; 32]),
            key: KeyId([9; 16]),
        };
        let ev = serde_json::json!({"type": ph.to_value(), "x": 1});
        let text = canonical::to_canonical(&ev).unwrap();
        let mut c = SealChecker::new(None);
        let fs = c.entry(1, Some(text.as_bytes()));
        assert_eq!(fs.len(), 1, "{fs:?}");
        assert_eq!(fs[0].code, crate::codes::FailureCode::BadSealed);
        assert!(fs[0].message.contains("/type"), "{}", fs[0].message);

        let mut c = SealChecker::new(None);
        assert!(
            c.record(format!("forgotten {}", KeyId([9; 16])).as_bytes())
                .is_empty()
        );
        let ev = serde_json::json!({"note": ph.to_value(), "type": "t"});
        let text = canonical::to_canonical(&ev).unwrap();
        assert!(c.entry(4, Some(text.as_bytes())).is_empty());
        let red = Record::Redacted {
            index: 4,
            pointer: "/note".into(),
        }
        .to_line();
        assert!(c.record(red.as_bytes()).is_empty());
        let fs = c.record(red.as_bytes());
        assert_eq!(fs.len(), 1, "{fs:?}");
        assert!(fs[0].message.contains("a second"), "{}", fs[0].message);
    }

    // The fast reading of canonical bytes finds what the parsed event's
    // walk finds, whenever it answers; and it answers for the usual events.
    #[test]
    fn placeholders_read_from_canonical_bytes_are_what_the_parsed_event_has() {
        let ph = |n: u8| {
            Placeholder {
                commitment: Hash([n; 32]),
                key: KeyId([n.wrapping_mul(7); 16]),
            }
            .to_value()
        };
        let check = |ev: &Value| -> bool {
            let text = canonical::to_canonical(ev).unwrap();
            let slow = find_placeholders(ev);
            match find_placeholders_canonical(text.as_bytes()) {
                Some(fast) => {
                    assert_eq!(Ok(fast), slow, "{text}");
                    true
                }
                None => false,
            }
        };
        // Usual events: answered, with pointers escaped and arrays indexed.
        for ev in [
            serde_json::json!({}),
            serde_json::json!({"a": [], "b": {}, "c": [[], {}], "d": null, "e": true, "f": -1.5e3}),
            serde_json::json!({"a/b": ph(1), "list": [1, ph(2), [ph(3)]], "m~x": {"deep": ph(4)}, "s": "x\"{\"stele.sealed\":1}\\"}),
            serde_json::json!({"actor": {"email": ph(5), "id": "u1"}, "ip": ph(6), "n": [0, {"x": ph(7)}]}),
            serde_json::json!({"é": ph(1), "q\"\u{1}/~": ph(2), "\\": {"ü": ph(3)}}),
            serde_json::json!({"q\"": 1}),
        ] {
            assert!(check(&ev), "{ev}");
        }
        // Not answered: the walk decides (malformed or misplaced placeholders).
        let mut bad_key = ph(1);
        bad_key["stele.sealed"]["key"] = Value::String("ZZ".into());
        let mut extra = ph(1);
        extra["z"] = Value::from(1);
        let mut early = ph(1);
        early["a"] = Value::from(1);
        for ev in [
            serde_json::json!({"a": bad_key}),
            serde_json::json!({"a": extra}),
            serde_json::json!({"a": [early]}),
            ph(1),
        ] {
            assert!(!check(&ev), "{ev}");
        }
        // Random events: whenever answered, the same.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        fn random_value(
            next: &mut dyn FnMut(u64) -> u64,
            depth: u32,
            ph: &dyn Fn(u8) -> Value,
        ) -> Value {
            const NAMES: [&str; 8] = ["a", "b/c", "d~e", "f g", "stele", "z", "ü", "k\"q"];
            match next(if depth == 0 { 4 } else { 8 }) {
                0 => Value::from(next(1000)),
                1 => Value::String(
                    ["x", "{\"stele.sealed\":", "\\\"", "]},"][next(4) as usize].into(),
                ),
                2 => Value::Bool(next(2) == 1),
                3 => Value::Null,
                4 | 5 => ph(next(250) as u8),
                6 => Value::Array(
                    (0..next(4))
                        .map(|_| random_value(next, depth - 1, ph))
                        .collect(),
                ),
                _ => Value::Object(
                    (0..next(4))
                        .map(|_| {
                            let names = if next(5) == 0 { 8 } else { 6 };
                            let i = next(names) as usize;
                            (NAMES[i].to_string(), random_value(next, depth - 1, ph))
                        })
                        .collect(),
                ),
            }
        }
        let mut answered = 0;
        for _ in 0..3000 {
            let mut ev = random_value(&mut next, 4, &ph);
            if !ev.is_object() {
                ev = serde_json::json!({ "v": ev });
            }
            answered += usize::from(check(&ev));
        }
        assert!(answered > 1500, "{answered} of 3000 answered");
    }

    #[test]
    fn malformed_placeholders_are_named() {
        for bad in [
            serde_json::json!({"x": {"stele.sealed": 1}}),
            serde_json::json!({"x": {"stele.sealed": {"commitment": "00", "key": "00"}}}),
            serde_json::json!({"x": {"stele.sealed": {"commitment": "0".repeat(64), "key": "0".repeat(32)}, "y": 1}}),
            serde_json::json!({"x": {"stele.sealed": {"commitment": "0".repeat(64), "key": "0".repeat(32), "z": 1}}}),
            serde_json::json!({"x": {"stele.sealed": {"commitment": "A".repeat(64), "key": "0".repeat(32)}}}),
        ] {
            let e = find_placeholders(&bad).unwrap_err();
            assert!(e.contains("\"/x\""), "{e}");
        }
        let whole = serde_json::json!({"stele.sealed": {"commitment": "0".repeat(64), "key": "0".repeat(32)}});
        assert!(find_placeholders(&whole).is_err());
    }

    #[test]
    fn records_round_trip_and_reject_bad_forms() {
        let recs = [
            Record::SealedKey {
                key: KeyId([0xab; 16]),
                wrap: b"age".to_vec(),
            },
            Record::Forgotten(KeyId([1; 16])),
            Record::Opening {
                index: 12,
                sealed: vec![5; 40],
                pointer: "/a b/\"q\"".into(),
            },
            Record::Redacted {
                index: 0,
                pointer: "/ip".into(),
            },
        ];
        for r in recs {
            let line = r.to_line();
            assert!(is_record(line.as_bytes()));
            assert_eq!(Record::parse(line.as_bytes()).unwrap(), r, "{line}");
        }
        for bad in [
            "sealed-key",
            "sealed-key abc YWdl",
            "forgotten ABABABABABABABABABABABABABABABAB",
            "opening 01 AAAA \"/a\"",
            "opening 1 AAAA \"/a\"",
            "opening 1 !!!! \"/a\"",
            "redacted 1 /a",
            "redacted 1 \"a\"",
            "redacted 1 \"\"",
            "redacted 1  \"/a\"",
            "redacted 1 \"/a\" ",
            "redacted 99999999999999999 \"/a\"",
        ] {
            assert!(Record::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn opening_errors_never_echo_the_value() {
        let salt = [1u8; 16];
        let ph = Placeholder {
            commitment: commitment(&salt, b"\"secret-marker\""),
            key: KeyId([0; 16]),
        };
        let wrong = opening_plaintext(&salt, b"\"other-marker\"");
        let e = check_opening(&ph, &wrong).unwrap_err();
        assert_eq!(e, OpeningError::Mismatch);
        assert!(!e.to_string().contains("marker"));
        assert_eq!(check_opening(&ph, &salt), Err(OpeningError::TooShort));
        assert_eq!(
            check_opening(&ph, &opening_plaintext(&salt, b"{ }")),
            Err(OpeningError::NotCanonical)
        );
    }
}
