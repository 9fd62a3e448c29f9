//! Opening Stele's sealed fields (docs/FORMAT.md section 13): the part of
//! age v1 a verifier needs (X25519 identities, unwrapping a data key), and
//! XChaCha20-Poly1305 openings.
//!
//! Small on purpose, so the browser's decrypting module stays small: no
//! passphrases, no plugins, no armor, no streaming beyond one chunk. It is
//! spec-bound code cross-tested against the `age` crate and the `age` tool
//! (tests/tests/sealed_age.rs). Writers wrap keys with the `age` crate.
//!
//! ```text
//! age-encryption.org/v1
//! -> X25519 <base64 ephemeral share>
//! <base64 wrapped file key>
//! --- <base64 header MAC>
//! <16-byte nonce><48-byte chunk: the 32-byte data key + tag>
//! ```
//!
//! ```
//! use stele_seal::{Identity, seal_opening, open_opening};
//! let id = Identity::from_secret([7; 32]);
//! assert!(id.recipient().starts_with("age1"));
//! let key = [1u8; 32];
//! let sealed = seal_opening(&key, &[2; 24], b"salt-and-value", b"ad");
//! assert_eq!(open_opening(&key, &sealed, b"ad").unwrap(), b"salt-and-value");
//! assert!(open_opening(&key, &sealed, b"other ad").is_none());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use base64ct::{Base64Unpadded, Encoding};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use curve25519_dalek::montgomery::MontgomeryPoint;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::fmt;
use stele_core::sealed::{DATA_KEY_LEN, DataKey, MAX_STANZAS_PER_KEY, NONCE_LEN, Opener, TAG_LEN};

mod bech32;

/// Longest identity file accepted, by the CLI and the page alike (an
/// `age-keygen` file is ~190 bytes): a reader stops there, so a FIFO or a
/// huge file cannot grow its memory.
pub const MAX_IDENTITY_BYTES: usize = 64 * 1024;

/// The first line of an age v1 file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// The HKDF info of the X25519 recipient stanza.
const X25519_INFO: &[u8] = b"age-encryption.org/v1/X25519";
/// Largest wrap accepted (a real one is ~200 bytes; other stanzas may precede).
pub const MAX_WRAP_BYTES: usize = 16 * 1024;

/// Why an identity or recipient string is refused. Never contains key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The identity file has no `AGE-SECRET-KEY-1…` line.
    NoIdentity,
    /// A line is not an age X25519 identity (1-based line number).
    BadIdentity(usize),
    /// Not an `age1…` X25519 recipient.
    BadRecipient,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoIdentity => f.write_str("no AGE-SECRET-KEY-1… line (make one with age-keygen)"),
            Self::BadIdentity(n) => write!(
                f,
                "line {n} is not an age X25519 identity (AGE-SECRET-KEY-1…, as age-keygen writes it)"
            ),
            Self::BadRecipient => f.write_str(
                "not an age X25519 recipient (age1… followed by 58 Bech32 characters, as age-keygen -y prints it)",
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// An age X25519 identity (secret key).
#[derive(Clone)]
pub struct Identity {
    secret: [u8; 32],
    public: [u8; 32],
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.recipient())
    }
}

impl Identity {
    /// The identity with these 32 secret bytes.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let public = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
        Self { secret, public }
    }

    /// Parses one `AGE-SECRET-KEY-1…` string.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.bytes().any(|c| c.is_ascii_lowercase()) {
            return None; // age writes identities in upper case only
        }
        let (hrp, data) = bech32::decode(&s.to_ascii_lowercase())?;
        if hrp != "age-secret-key-" {
            return None;
        }
        let secret: [u8; 32] = data.try_into().ok()?;
        Some(Self::from_secret(secret))
    }

    /// Every identity in an identity file (FORMAT 13.5): empty lines and
    /// `#` comments are skipped, any other line must be an identity.
    /// Readers take at most [`MAX_IDENTITY_BYTES`] of it.
    pub fn parse_file(text: &str) -> Result<Vec<Self>, KeyError> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(Self::parse(line).ok_or(KeyError::BadIdentity(i + 1))?);
        }
        if out.is_empty() {
            return Err(KeyError::NoIdentity);
        }
        Ok(out)
    }

    /// The `age1…` recipient of this identity.
    pub fn recipient(&self) -> String {
        bech32::encode("age", &self.public)
    }

    /// The `AGE-SECRET-KEY-1…` string (for tests and key generation).
    pub fn to_secret_string(&self) -> String {
        bech32::encode("age-secret-key-", &self.secret).to_ascii_uppercase()
    }

    /// Opens an age file whose payload is a 32-byte data key (FORMAT 13.5).
    pub fn unwrap(&self, file: &[u8]) -> Option<DataKey> {
        unwrap_with(std::slice::from_ref(self), file)
    }
}

/// Parses an `age1…` recipient into its 32-byte X25519 public key.
pub fn parse_recipient(s: &str) -> Result<[u8; 32], KeyError> {
    if s.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err(KeyError::BadRecipient);
    }
    let (hrp, data) = bech32::decode(s).ok_or(KeyError::BadRecipient)?;
    if hrp != "age" {
        return Err(KeyError::BadRecipient);
    }
    data.try_into().map_err(|_| KeyError::BadRecipient)
}

/// How a message names a recipient argument: as given when it is one;
/// never an identity (a secret key given by mistake where a recipient
/// goes is not echoed to a terminal, a log or an HTTP response); anything
/// else by its first characters only.
pub fn shown_recipient(s: &str) -> String {
    if parse_recipient(s).is_ok() {
        return s.to_string();
    }
    if s.trim_start()
        .to_ascii_uppercase()
        .starts_with("AGE-SECRET-KEY-")
        || s.to_ascii_uppercase().contains("SECRET")
    {
        return "a secret key (not shown; give its age1… recipient: age-keygen -y KEYFILE)".into();
    }
    let head: String = s
        .chars()
        .take(12)
        .filter(|c| c.is_ascii_graphic())
        .collect();
    format!("\"{head}…\" ({} characters)", s.chars().count())
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA-256 length");
    out
}

fn chacha_open(key: &[u8; 32], nonce: [u8; 12], ct: &[u8]) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(&(*key).into())
        .decrypt(&nonce.into(), ct)
        .ok()
}

// The header: its stanzas (type, args, body) and the MAC, with the bytes
// the MAC covers.
struct Header<'a> {
    stanzas: Vec<(&'a str, Vec<&'a str>, Vec<u8>)>,
    mac: [u8; 32],
    mac_input: &'a [u8],
    payload: &'a [u8],
}

fn parse_header(file: &[u8]) -> Option<Header<'_>> {
    if file.len() > MAX_WRAP_BYTES || !file.starts_with(AGE_MAGIC) {
        return None;
    }
    let mut pos = AGE_MAGIC.len();
    let mut stanzas = Vec::new();
    let next_line = |pos: &mut usize| -> Option<&[u8]> {
        let rest = file.get(*pos..)?;
        let n = rest.iter().position(|&b| b == b'\n')?;
        *pos += n + 1;
        Some(&rest[..n])
    };
    loop {
        let line_start = pos;
        let line = std::str::from_utf8(next_line(&mut pos)?).ok()?;
        if let Some(mac) = line.strip_prefix("--- ") {
            let mac: [u8; 32] = Base64Unpadded::decode_vec(mac).ok()?.try_into().ok()?;
            return Some(Header {
                stanzas,
                mac,
                mac_input: &file[..line_start + 3],
                payload: &file[pos..],
            });
        }
        let args = line.strip_prefix("-> ")?;
        let mut words = args.split(' ');
        let ty = words.next().filter(|t| !t.is_empty())?;
        let args: Vec<&str> = words.collect();
        if args.iter().any(|a| a.is_empty()) {
            return None;
        }
        // The body: lines of 64 base64 characters, ended by a shorter one.
        let mut body = String::new();
        loop {
            let l = std::str::from_utf8(next_line(&mut pos)?).ok()?;
            if l.len() > 64 {
                return None;
            }
            body.push_str(l);
            if l.len() < 64 {
                break;
            }
        }
        let body = Base64Unpadded::decode_vec(&body).ok()?;
        stanzas.push((ty, args, body));
    }
}

/// Opens an age file whose payload is a 32-byte data key with the first of
/// `ids` that can (FORMAT 13.5); `None` if none can or the file is malformed.
/// At most [`MAX_STANZAS_PER_KEY`] X25519 stanzas are tried.
pub fn unwrap_with(ids: &[Identity], file: &[u8]) -> Option<DataKey> {
    let mut budget = MAX_STANZAS_PER_KEY;
    unwrap_within(ids, file, &mut budget)
}

/// As [`unwrap_with`], trying at most `budget` X25519 stanzas (FORMAT
/// 13.8: one key ID's wraps share one budget); each stanza tried takes one
/// from it, whatever the number of identities.
pub fn unwrap_within(ids: &[Identity], file: &[u8], budget: &mut u32) -> Option<DataKey> {
    unwrap_shared(ids, file, budget, &|_, _| None)
}

/// The X25519 share of a stanza `unwrap_within` tries (type `X25519`, one
/// argument, a 32-byte body), or `None` for a stanza it skips.
fn x25519_share(ty: &str, args: &[&str], body: &[u8]) -> Option<[u8; 32]> {
    if ty != "X25519" || args.len() != 1 || body.len() != 32 {
        return None;
    }
    Base64Unpadded::decode_vec(args[0]).ok()?.try_into().ok()
}

// An X25519 shared secret known ahead: (identity's index, share) -> secret.
type KnownShared<'a> = dyn Fn(usize, &[u8; 32]) -> Option<[u8; 32]> + 'a;
// Shared secrets computed elsewhere, by (identity's index, share).
type SharedMap = HashMap<(usize, [u8; 32]), [u8; 32]>;

// `unwrap_within`, taking an X25519 shared secret from `known` (identity's
// index, share) where it has one, computing it otherwise.
fn unwrap_shared(
    ids: &[Identity],
    file: &[u8],
    budget: &mut u32,
    known: &KnownShared<'_>,
) -> Option<DataKey> {
    if *budget == 0 {
        return None;
    }
    let h = parse_header(file)?;
    let file_key = h.stanzas.iter().find_map(|(ty, args, body)| {
        if *budget == 0 {
            return None;
        }
        let share = x25519_share(ty, args, body)?;
        *budget -= 1;
        ids.iter().enumerate().find_map(|(i, id)| {
            let shared = known(i, &share)
                .unwrap_or_else(|| MontgomeryPoint(share).mul_clamped(id.secret).to_bytes());
            if shared == [0; 32] {
                return None;
            }
            let mut salt = [0u8; 64];
            salt[..32].copy_from_slice(&share);
            salt[32..].copy_from_slice(&id.public);
            let wrap_key = hkdf(&salt, &shared, X25519_INFO);
            let fk = chacha_open(&wrap_key, [0; 12], body)?;
            <[u8; 16]>::try_from(fk.as_slice()).ok()
        })
    })?;
    // The header MAC.
    let mac_key = hkdf(&[], &file_key, b"header");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&mac_key).ok()?;
    mac.update(h.mac_input);
    mac.verify_slice(&h.mac).ok()?;
    // The payload: a 16-byte nonce and one last chunk holding the data key.
    if h.payload.len() != 16 + DATA_KEY_LEN + TAG_LEN {
        return None;
    }
    let (nonce, chunk) = h.payload.split_at(16);
    let payload_key = hkdf(nonce, &file_key, b"payload");
    let mut chunk_nonce = [0u8; 12];
    chunk_nonce[11] = 1; // counter 0, last chunk
    let key = chacha_open(&payload_key, chunk_nonce, chunk)?;
    key.try_into().ok()
}

/// The X25519 shares that unwrapping these key IDs' wraps may need (each
/// item: one key ID's wraps, in file order, sharing one budget of
/// [`MAX_STANZAS_PER_KEY`] stanzas as [`unwrap_within`] spends it), each
/// once, at most `max` of them: what a caller computes ahead, elsewhere
/// (the page: WebCrypto's X25519), for [`AgeOpener::add_shared`].
pub fn x25519_shares<'a>(
    key_wraps: impl IntoIterator<Item = &'a [Vec<u8>]>,
    max: usize,
) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for wraps in key_wraps {
        let mut budget = MAX_STANZAS_PER_KEY;
        for w in wraps {
            let Some(h) = parse_header(w) else { continue };
            for (ty, args, body) in &h.stanzas {
                if budget == 0 {
                    break;
                }
                let Some(share) = x25519_share(ty, args, body) else {
                    continue;
                };
                budget -= 1;
                if seen.insert(share) {
                    if out.len() == max {
                        return out;
                    }
                    out.push(share);
                }
            }
        }
    }
    out
}

/// XChaCha20-Poly1305 encryption of an opening: `nonce || ciphertext || tag`
/// (FORMAT 13.3). The nonce MUST be fresh from the OS CSPRNG.
pub fn seal_opening(
    key: &DataKey,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    ad: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    seal_opening_into(key, nonce, plaintext, ad, &mut out);
    out
}

/// [`seal_opening`], appended to `out` (encrypted in place there: the
/// writer's append path seals every value this way, with no allocation of
/// its own).
pub fn seal_opening_into(
    key: &DataKey,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    ad: &[u8],
    out: &mut Vec<u8>,
) {
    use chacha20poly1305::AeadInOut;
    out.reserve(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(nonce);
    let at = out.len();
    out.extend_from_slice(plaintext);
    let tag = XChaCha20Poly1305::new(&(*key).into())
        .encrypt_inout_detached(&(*nonce).into(), ad, (&mut out[at..]).into())
        .expect("XChaCha20-Poly1305 encrypts any message under 256 GiB");
    out.extend_from_slice(tag.as_slice());
}

/// Decrypts `nonce || ciphertext || tag` (FORMAT 13.3); `None` if it does
/// not authenticate under this key and associated data.
pub fn open_opening(key: &DataKey, sealed: &[u8], ad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    XChaCha20Poly1305::new(&(*key).into())
        .decrypt(&nonce.into(), Payload { msg: ct, aad: ad })
        .ok()
}

/// The [`Opener`] of a set of age identities.
#[derive(Debug)]
pub struct AgeOpener {
    ids: Vec<Identity>,
    // X25519 shared secrets computed elsewhere: (identity's index, share).
    shared: std::sync::RwLock<SharedMap>,
}

impl AgeOpener {
    /// An opener trying each identity.
    pub fn new(ids: Vec<Identity>) -> Self {
        Self {
            ids,
            shared: Default::default(),
        }
    }

    /// The identities' secret keys as PKCS #8 (RFC 8410) X25519 private
    /// keys, in order, for a caller that computes X25519 elsewhere (the
    /// page imports them into WebCrypto, not extractable).
    pub fn x25519_pkcs8(&self) -> Vec<Vec<u8>> {
        // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.110 }, OCTET STRING { OCTET STRING (32) } }
        const PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22,
            0x04, 0x20,
        ];
        self.ids
            .iter()
            .map(|id| [&PREFIX[..], &id.secret].concat())
            .collect()
    }

    /// X25519 shared secrets of identity `index` (its place in the
    /// identity file) with these shares, computed elsewhere: unwrapping
    /// uses them instead of computing its own. An all-zero secret is not
    /// taken (the share is computed here when needed, and an all-zero
    /// result refused there, as age requires); so is one for an index with
    /// no identity.
    pub fn add_shared(&self, index: usize, pairs: impl IntoIterator<Item = ([u8; 32], [u8; 32])>) {
        if index >= self.ids.len() {
            return;
        }
        let mut map = self.shared.write().unwrap_or_else(|e| e.into_inner());
        for (share, secret) in pairs {
            if secret != [0; 32] {
                let _ = map.insert((index, share), secret);
            }
        }
    }
}

impl Opener for AgeOpener {
    fn unwrap_key(&self, wrap: &[u8], budget: &mut u32) -> Option<DataKey> {
        let map = self.shared.read().unwrap_or_else(|e| e.into_inner());
        if map.is_empty() {
            return unwrap_within(&self.ids, wrap, budget);
        }
        unwrap_shared(&self.ids, wrap, budget, &|i, share| {
            map.get(&(i, *share)).copied()
        })
    }

    fn decrypt(&self, key: &DataKey, sealed: &[u8], ad: &[u8]) -> Option<Vec<u8>> {
        open_opening(key, sealed, ad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_strings_round_trip() {
        let id = Identity::from_secret([42; 32]);
        let s = id.to_secret_string();
        assert!(s.starts_with("AGE-SECRET-KEY-1"));
        let back = Identity::parse(&s).unwrap();
        assert_eq!(back.recipient(), id.recipient());
        assert_eq!(parse_recipient(&id.recipient()).unwrap(), id.public);
        // A changed character breaks the checksum.
        let mut bad = s.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'Q' { b'P' } else { b'Q' };
        assert!(Identity::parse(std::str::from_utf8(&bad).unwrap()).is_none());
        assert!(Identity::parse(&s.to_ascii_lowercase()).is_none());
        assert!(parse_recipient(&id.recipient().to_ascii_uppercase()).is_err());
        let file = format!("# created: now\n# public key: {}\n{s}\n", id.recipient());
        assert_eq!(Identity::parse_file(&file).unwrap().len(), 1);
        assert_eq!(
            Identity::parse_file("# only\n").unwrap_err(),
            KeyError::NoIdentity
        );
        assert_eq!(
            Identity::parse_file("\nnope\n").unwrap_err(),
            KeyError::BadIdentity(2)
        );
    }

    #[test]
    fn malformed_wraps_do_not_open() {
        let id = Identity::from_secret([1; 32]);
        for f in [
            &b""[..],
            b"age-encryption.org/v1\n",
            b"age-encryption.org/v1\n--- AAAA\n",
            b"age-encryption.org/v1\n-> X25519\n\n--- AAAA\n",
        ] {
            assert!(id.unwrap(f).is_none());
        }
    }

    // An age file to `to` (as the `age` crate writes one: FORMAT 13.5),
    // with `junk` X25519 stanzas for other recipients before its own.
    fn wrap_after_junk(to: &Identity, data_key: &DataKey, junk: usize) -> Vec<u8> {
        let file_key = [9u8; 16];
        let stanza = |secret: [u8; 32], recipient: [u8; 32]| {
            let share = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
            let shared = MontgomeryPoint(recipient).mul_clamped(secret).to_bytes();
            let mut salt = [0u8; 64];
            salt[..32].copy_from_slice(&share);
            salt[32..].copy_from_slice(&recipient);
            let key = hkdf(&salt, &shared, X25519_INFO);
            let body = ChaCha20Poly1305::new(&key.into())
                .encrypt(&[0u8; 12].into(), &file_key[..])
                .unwrap();
            format!(
                "-> X25519 {}\n{}\n",
                Base64Unpadded::encode_string(&share),
                Base64Unpadded::encode_string(&body)
            )
        };
        let mut header = String::from("age-encryption.org/v1\n");
        for i in 0..junk {
            let other = Identity::from_secret([(i % 200) as u8 + 50; 32]);
            header += &stanza([i as u8; 32], other.public);
        }
        header += &stanza([3; 32], to.public);
        header += "---";
        let mac_key = hkdf(&[], &file_key, b"header");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&mac_key).unwrap();
        mac.update(header.as_bytes());
        let mac = mac.finalize().into_bytes();
        let mut out = format!("{header} {}\n", Base64Unpadded::encode_string(&mac)).into_bytes();
        let nonce = [5u8; 16];
        let payload_key = hkdf(&nonce, &file_key, b"payload");
        let mut chunk_nonce = [0u8; 12];
        chunk_nonce[11] = 1;
        let chunk = ChaCha20Poly1305::new(&payload_key.into())
            .encrypt(&chunk_nonce.into(), &data_key[..])
            .unwrap();
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&chunk);
        out
    }

    // FORMAT 13.8: at most MAX_STANZAS_PER_KEY X25519 stanzas are tried for
    // a key ID, however many its wraps hold; the budget is shared by its wraps.
    #[test]
    fn at_most_the_budget_of_x25519_stanzas_is_tried() {
        let id = Identity::from_secret([1; 32]);
        let dk = [4u8; 32];
        let max = MAX_STANZAS_PER_KEY as usize;
        // Ours is the last stanza tried within the budget: it opens.
        let within = wrap_after_junk(&id, &dk, max - 1);
        assert_eq!(id.unwrap(&within), Some(dk));
        let mut budget = MAX_STANZAS_PER_KEY;
        assert_eq!(
            unwrap_within(std::slice::from_ref(&id), &within, &mut budget),
            Some(dk)
        );
        assert_eq!(budget, 0);
        // One stanza more before ours: not tried, the wrap does not open.
        let beyond = wrap_after_junk(&id, &dk, max);
        assert!(beyond.len() <= MAX_WRAP_BYTES);
        assert_eq!(id.unwrap(&beyond), None);
        let mut budget = MAX_STANZAS_PER_KEY + 1;
        assert_eq!(
            unwrap_within(std::slice::from_ref(&id), &beyond, &mut budget),
            Some(dk)
        );
        // A budget spent on an earlier wrap of the key ID is spent.
        let mut budget = MAX_STANZAS_PER_KEY;
        let junk_only = wrap_after_junk(&Identity::from_secret([2; 32]), &dk, 9);
        assert_eq!(
            unwrap_within(std::slice::from_ref(&id), &junk_only, &mut budget),
            None
        );
        assert_eq!(budget, MAX_STANZAS_PER_KEY - 10);
        assert_eq!(
            unwrap_within(std::slice::from_ref(&id), &within, &mut budget),
            None
        );
        assert_eq!(budget, 0);
        let mut budget = 0;
        assert_eq!(
            unwrap_within(
                &[id],
                &wrap_after_junk(&Identity::from_secret([1; 32]), &dk, 0),
                &mut budget
            ),
            None
        );
    }

    // Shared secrets computed elsewhere (the page's WebCrypto) open what
    // the opener's own X25519 opens; the shares listed are those the
    // budget lets unwrapping try; an all-zero secret is not taken.
    #[test]
    fn shared_secrets_given_ahead_open_the_same_wraps() {
        let id = Identity::from_secret([1; 32]);
        let dk = [4u8; 32];
        let wrap = wrap_after_junk(&id, &dk, 2);
        let wraps = [wrap.clone(), wrap_after_junk(&id, &dk, 1)];
        let shares = x25519_shares([&wraps[..]], 100);
        assert_eq!(
            shares.len(),
            3,
            "the second wrap's two stanzas are the first's"
        );
        assert_eq!(x25519_shares([&wraps[..]], 2).len(), 2);
        let opener = AgeOpener::new(vec![Identity::from_secret([9; 32]), id.clone()]);
        assert_eq!(opener.x25519_pkcs8()[1][16..], id.secret);
        assert_eq!(opener.x25519_pkcs8()[1].len(), 48);
        let secret =
            |i: &Identity, s: &[u8; 32]| MontgomeryPoint(*s).mul_clamped(i.secret).to_bytes();
        // Right secrets: opens, whichever identity holds them.
        opener.add_shared(1, shares.iter().map(|s| (*s, secret(&id, s))));
        opener.add_shared(5, shares.iter().map(|s| (*s, [7; 32]))); // no such identity
        let mut budget = MAX_STANZAS_PER_KEY;
        assert_eq!(opener.unwrap_key(&wrap, &mut budget), Some(dk));
        assert_eq!(budget, MAX_STANZAS_PER_KEY - 3);
        // A wrong secret given is used (it does not open); a zero one is not taken.
        let ours = shares[2];
        let opener = AgeOpener::new(vec![id.clone()]);
        opener.add_shared(0, [(ours, [3; 32])]);
        assert_eq!(opener.unwrap_key(&wrap, &mut { MAX_STANZAS_PER_KEY }), None);
        let opener = AgeOpener::new(vec![id]);
        opener.add_shared(0, shares.iter().map(|s| (*s, [0; 32])));
        assert!(opener.shared.read().unwrap().is_empty());
        assert_eq!(
            opener.unwrap_key(&wrap, &mut { MAX_STANZAS_PER_KEY }),
            Some(dk)
        );
    }
}
