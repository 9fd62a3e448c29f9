//! Sealed fields, the writer's side (docs/FORMAT.md section 13): sealing
//! values at append time, and the sidecar store beside the log that holds
//! what opens them.
//!
//! ```text
//! DIR/sealed/secret                 32 random bytes keying the subject index (HMAC-SHA-256), 0600
//! DIR/sealed/keys/<hmac hex>        key ID (16 bytes) || data key (32 bytes), one per subject, 0600
//! DIR/sealed/wraps/<key ID>.<age1…>.age   the data key wrapped to one auditor (an age file)
//! DIR/sealed/auditors               age1… recipients, one a line
//! DIR/sealed/records                "<key ID> opening <index> <b64> <pointer>" and "<key ID> redacted <index> <pointer>"
//!                                   lines in entry order, fdatasync'ed beside the entries they open
//!                                   (both before the append returns; records past the log's end
//!                                   after a crash are cut on open)
//! DIR/sealed/forgotten              forgotten key IDs, one a line
//! DIR/sealed/pending                forgets and redactions under way ("forget <from> <key ID>",
//!                                   "redact <from> <entry> <pointer>"): written before their
//!                                   event is appended, finished on open (see [`Intent`])
//! ```
//!
//! Nothing here ever holds a subject's value or a sealed value in the
//! clear: keys are found by an HMAC of the subject, and openings are
//! ciphertext. A key file is a secret like the signing key (0600).

use crate::error::{Error, Result};
use crate::fs::{FileRole, Fs, RealFs};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use stele_core::canonical;
use stele_core::sealed::{
    self, DATA_KEY_LEN, DataKey, KEY_ID_LEN, KeyId, MARKER_MEMBER, NONCE_LEN, PLACEHOLDER_MEMBER,
    Placeholder, Record, SALT_LEN,
};

/// The sidecar directory's name inside a log directory.
pub const SIDECAR: &str = "sealed";
/// The subject pointer when `--subject` is not given.
pub const DEFAULT_SUBJECT: &str = "/actor";

/// Sealing rules, kept in the log's configuration (`stele.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealConfig {
    /// JSON pointers whose values are sealed in every event that has them.
    #[serde(default)]
    pub seal: Vec<String>,
    /// The pointer of the data subject (one data key per subject).
    #[serde(default = "default_subject")]
    pub subject: String,
}

fn default_subject() -> String {
    DEFAULT_SUBJECT.into()
}

impl Default for SealConfig {
    fn default() -> Self {
        Self {
            seal: Vec::new(),
            subject: default_subject(),
        }
    }
}

impl SealConfig {
    /// Checks every pointer (RFC 6901, not the whole event).
    pub fn check(&self) -> Result<()> {
        for p in self.seal.iter().chain([&self.subject]) {
            let toks = sealed::pointer_tokens(p).map_err(Error::Sealed)?;
            if toks.is_empty() {
                return Err(Error::Sealed(
                    "a pointer must name a member, not the whole event (e.g. /actor/email)".into(),
                ));
            }
        }
        if let Some(p) = self.seal.iter().find(|p| {
            sealed::pointer_tokens(p).is_ok_and(|t| t.first().is_some_and(|m| m == "type"))
        }) {
            return Err(Error::Sealed(format!(
                "{p}: the event's type cannot be sealed (FORMAT 13.2: it says what the event is, and the stele.* types are the log's own)"
            )));
        }
        Ok(())
    }
}

// OS CSPRNG bytes, read 4 KiB at a time per thread (one getrandom call per
// ~100 seals instead of two per value). Each byte is handed out once and
// wiped; the pool is per thread.
pub(crate) fn random<const N: usize>() -> Result<[u8; N]> {
    use std::cell::RefCell;
    thread_local! {
        static POOL: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.0.len() - p.1 < N {
            // The same buffer refilled (its bytes are all handed out).
            p.0.resize(4096, 0);
            getrandom::fill(&mut p.0)
                .map_err(|e| Error::Sealed(format!("reading OS randomness: {e}")))?;
            p.1 = 0;
        }
        let at = p.1;
        let mut b = [0u8; N];
        b.copy_from_slice(&p.0[at..at + N]);
        p.0[at..at + N].fill(0);
        p.1 += N;
        Ok(b)
    })
}

/// A fresh 16-byte salt from the OS CSPRNG (FORMAT 13.1): every commitment's.
pub fn fresh_salt() -> Result<[u8; SALT_LEN]> {
    random()
}

/// A fresh 24-byte XChaCha20-Poly1305 nonce from the OS CSPRNG (FORMAT 13.3).
pub fn fresh_nonce() -> Result<[u8; NONCE_LEN]> {
    random()
}

fn io(op: &'static str, path: &Path, e: std::io::Error) -> Error {
    Error::io(op, path, e)
}

// Writes a new file durably: tmp (0600), write, fdatasync, rename, fsync
// dir; every step through the log's file system seam (crash tests fail each).
pub(crate) fn write_secret_file(fs: &dyn Fs, dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    write_secret_file_from(fs, dir, name, &mut &data[..], data.len() as u64)
}

/// [`write_secret_file`] of the first `len` bytes read from `src`, 1 MiB
/// at a time (restore copies a records file of any size this way; it read
/// it whole: 307 MB of memory for a 299 MB file). Fewer bytes than `len`
/// is an error naming the file.
pub(crate) fn write_secret_file_from(
    fs: &dyn Fs,
    dir: &Path,
    name: &str,
    src: &mut dyn Read,
    len: u64,
) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let dest = dir.join(name);
    // Never into a file or link planted under the temporary name.
    let f = crate::fs::create_temp(&tmp, 0o600).map_err(|e| io("create", &tmp, e))?;
    let mut buf = vec![0u8; len.min(1 << 20) as usize];
    let mut at = 0u64;
    while at < len {
        let n = buf.len().min((len - at) as usize);
        src.read_exact(&mut buf[..n])
            .map_err(|e| io("read the source of", &dest, e))?;
        fs.write_at(FileRole::Sealed, &f, &buf[..n], at)
            .map_err(|e| io("write", &tmp, e))?;
        at += n as u64;
    }
    fs.sync_data(FileRole::Sealed, &f)
        .map_err(|e| io("fdatasync", &tmp, e))?;
    fs.rename(FileRole::Sealed, &tmp, &dest)
        .map_err(|e| io("rename", &dest, e))?;
    sync_dir(fs, dir)
}

fn sync_dir(fs: &dyn Fs, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).map_err(|e| io("fsync directory", dir, e))
}

/// Destroys a file as well as a file system allows: overwrites its bytes
/// with zeros, fsyncs, unlinks, fsyncs the directory. (On SSDs, copy-on-write
/// file systems and backups the old blocks may survive: writer/README.md.)
pub fn shred(path: &Path) -> Result<()> {
    shred_with(&RealFs, path)
}

fn shred_with(fs: &dyn Fs, path: &Path) -> Result<()> {
    // A link planted in the key's place holds no key: it is removed, and
    // whatever it points to is left alone (never zeroed).
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::remove_file(path).map_err(|e| io("remove", path, e))?;
            return sync_dir(fs, path.parent().unwrap_or(Path::new(".")));
        }
        _ => {}
    }
    let f = match crate::fs::open_own(OpenOptions::new().write(true), path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("open", path, e)),
    };
    let len = f.metadata().map_err(|e| io("stat", path, e))?.len();
    fs.write_at(FileRole::Sealed, &f, &vec![0u8; len as usize], 0)
        .map_err(|e| io("overwrite", path, e))?;
    fs.sync_data(FileRole::Sealed, &f)
        .map_err(|e| io("fsync", path, e))?;
    drop(f);
    std::fs::remove_file(path).map_err(|e| io("unlink", path, e))?;
    sync_dir(fs, path.parent().unwrap_or(Path::new(".")))
}

// The A/B switch of `stele bench sealed`: openings sealed by stele-seal's
// RustCrypto XChaCha20-Poly1305 instead of ring's (the same bytes).
static RUSTCRYPTO_AEAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// For `stele bench sealed` only: seal openings with stele-seal's RustCrypto
/// AEAD (`true`) or ring's (`false`, the default). Both give the same bytes.
#[doc(hidden)]
pub fn bench_rustcrypto_aead(on: bool) {
    RUSTCRYPTO_AEAD.store(on, Ordering::Relaxed);
}

/// For `stele bench sealed` only: the floor of sealing, what FORMAT 13
/// mandates for an event with two sealed values and nothing else, on this
/// thread: the subject's index (HMAC-SHA-256 under a secret) looked up
/// among 1000 subjects' keys, then for each value a salt and a nonce from
/// the OS CSPRNG, the commitment, the associated data and the
/// XChaCha20-Poly1305 of `salt || value`. Returns the thread's CPU µs an
/// entry with the randomness drawn in 4 KiB blocks (as the append path
/// does), then with one `getrandom` call per salt and per nonce.
#[doc(hidden)]
pub fn bench_floor(entries: u64) -> Result<(f64, f64)> {
    use std::hint::black_box;
    const SUBJECTS: usize = 1000;
    let secret: [u8; 32] = random()?;
    let mac = KeyedHmac::new(&secret);
    let subjects: Vec<String> = (0..SUBJECTS)
        .map(|i| format!("{{\"email\":\"user{i}@example.com\",\"id\":\"u{i}\"}}"))
        .collect();
    let mut keys: HashMap<[u8; 32], (KeyId, DataKey), TagHash> = HashMap::default();
    for s in &subjects {
        let _ = keys.insert(mac.tag(s.as_bytes()), (KeyId(random()?), random()?));
    }
    let values: Vec<[(String, &str); 2]> = (0..SUBJECTS)
        .map(|i| {
            [
                (format!("\"user{i}@example.com\""), "/actor/email"),
                (format!("\"192.0.2.{}\"", i % 250), "/ip"),
            ]
        })
        .collect();
    let cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        t.tv_sec as f64 * 1e6 + t.tv_nsec as f64 / 1e3
    };
    let os = |b: &mut [u8]| {
        getrandom::fill(b).map_err(|e| Error::Sealed(format!("reading OS randomness: {e}")))
    };
    let run = |pooled: bool| -> Result<f64> {
        let (mut ad, mut plain, mut out) = (Vec::new(), Vec::new(), Vec::new());
        let t = cpu();
        for i in 0..entries {
            let k = i as usize % SUBJECTS;
            let tag = mac.tag(subjects[k].as_bytes());
            let (id, key) = keys
                .get(&tag)
                .ok_or_else(|| Error::Sealed("no key".into()))?;
            for (value, pointer) in &values[k] {
                let (salt, nonce): ([u8; SALT_LEN], [u8; NONCE_LEN]) = if pooled {
                    (random()?, random()?)
                } else {
                    let (mut s, mut n) = ([0; SALT_LEN], [0; NONCE_LEN]);
                    os(&mut s)?;
                    os(&mut n)?;
                    (s, n)
                };
                let _ = black_box((sealed::commitment(&salt, value.as_bytes()), id));
                plain.clear();
                plain.extend_from_slice(&salt);
                plain.extend_from_slice(value.as_bytes());
                sealed::opening_ad_into("bench.example/sealed", i, pointer, &mut ad);
                out.clear();
                seal_opening_into(key, &nonce, &plain, &ad, &mut out)?;
                let _ = black_box(&out);
            }
        }
        Ok((cpu() - t) / entries.max(1) as f64)
    };
    Ok((run(true)?, run(false)?))
}

/// XChaCha20-Poly1305 of one opening (FORMAT 13.3), appended to `out` as
/// `nonce || ciphertext || tag`: the bytes of [`stele_seal::seal_opening`]
/// (test `ring_openings_are_stele_seals_bytes`), made the way
/// draft-irtf-cfrg-xchacha 2.3 defines XChaCha20-Poly1305: a subkey
/// HChaCha20(key, nonce[..16]), then RFC 8439 ChaCha20-Poly1305 under it with
/// the nonce `0^4 || nonce[16..]`. Measured on the append path
/// (`stele bench sealed`, writer/Cargo.toml): with stele-seal's RustCrypto
/// AEAD instead, an entry with two sealed fields costs 1.53x the CPU.
pub(crate) fn seal_opening_into(
    key: &DataKey,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    ad: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
    if RUSTCRYPTO_AEAD.load(Ordering::Relaxed) {
        stele_seal::seal_opening_into(key, nonce, plaintext, ad, out);
        return Ok(());
    }
    let (prefix, tail) = nonce.split_at(16);
    let prefix: [u8; 16] = prefix.try_into().expect("16 bytes");
    let mut subkey: [u8; 32] =
        chacha20::hchacha::<chacha20::R20>(&(*key).into(), &prefix.into()).into();
    let mut ietf = [0u8; 12];
    ietf[4..].copy_from_slice(tail);
    let sealing = UnboundKey::new(&CHACHA20_POLY1305, &subkey).map(LessSafeKey::new);
    subkey.fill(0);
    let sealing =
        sealing.map_err(|_| Error::Sealed("ChaCha20-Poly1305 refused a 32-byte key".into()))?;
    out.extend_from_slice(nonce);
    let at = out.len();
    out.extend_from_slice(plaintext);
    let tag = sealing
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(ietf),
            Aad::from(ad),
            &mut out[at..],
        )
        .map_err(|_| Error::Sealed("ChaCha20-Poly1305 refused an opening (too long)".into()))?;
    out.extend_from_slice(tag.as_ref());
    Ok(())
}

// Standard base64 with padding (RFC 4648 section 4) of `data`, appended
// to `out`: the base64 crate's engine cost ~0.2 µs an entry with two
// sealed values on these short inputs (perf, `stele bench sealed`).
fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |n: u32, shift: u32| T[((n >> shift) & 63) as usize];
    // Whole groups written into place (not pushed four bytes at a time).
    let at = out.len();
    let mut chunks = data.chunks_exact(3);
    out.resize(at + chunks.len() * 4, 0);
    for (o, c) in out[at..].chunks_exact_mut(4).zip(&mut chunks) {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        o.copy_from_slice(&[sym(n, 18), sym(n, 12), sym(n, 6), sym(n, 0)]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[sym(n, 18), sym(n, 12), b'=', b'=']);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[sym(n, 18), sym(n, 12), sym(n, 6), b'=']);
        }
        _ => {}
    }
}

// `n` in decimal (core's digits: this runs for every sealed value appended).
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(stele_core::entry::decimal(n, &mut [0; 20]));
}

// HMAC-SHA-256 (RFC 2104) under one 32-byte key, with the hash states
// after the padded key blocks kept: each tag then costs the message's
// blocks and one outer block, not two more for the key.
#[derive(Clone)]
struct KeyedHmac {
    inner: sha2::Sha256,
    outer: sha2::Sha256,
}

impl KeyedHmac {
    fn new(key: &[u8; 32]) -> Self {
        use sha2::Digest;
        let mut k = [0u8; 64];
        k[..32].copy_from_slice(key);
        let mut inner = sha2::Sha256::new();
        inner.update(k.map(|b| b ^ 0x36));
        let mut outer = sha2::Sha256::new();
        outer.update(k.map(|b| b ^ 0x5c));
        k.fill(0);
        Self { inner, outer }
    }

    fn tag(&self, msg: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        let mut h = self.inner.clone();
        h.update(msg);
        let mut o = self.outer.clone();
        o.update(h.finalize());
        o.finalize().into()
    }
}

impl std::fmt::Debug for KeyedHmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHmac")
    }
}

/// HMAC-SHA-256 (RFC 2104) of `msg` under `key`, in one call.
pub(crate) fn hmac_sha256(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    KeyedHmac::new(key).tag(msg)
}

/// The sealing rules of `cfg` as pointer tokens, and each rule's pointer
/// text with its quoted form (made once, used for every sealed value).
#[allow(clippy::type_complexity)]
fn rule_tokens(cfg: &SealConfig) -> Result<(Vec<Vec<String>>, Vec<(String, String)>)> {
    let rules: Vec<Vec<String>> = cfg
        .seal
        .iter()
        .map(|p| sealed::pointer_tokens(p).map_err(Error::Sealed))
        .collect::<Result<_>>()?;
    let pointers = rules
        .iter()
        .map(|toks| {
            let p = pointer_from_tokens(toks);
            let q = canonical::json_string(&p);
            (p, q)
        })
        .collect();
    Ok((rules, pointers))
}

/// A value to seal, waiting for its entry's index (the associated data
/// binds it).
pub struct Pending {
    pointer: PendingPointer,
    key: KeyId,
    data_key: DataKey,
    plaintext: Vec<u8>,
}

// Where a pending value was: a sealing rule's pointer (its texts made once,
// in the sealer), or an ad-hoc marker's (pointer, pointer as a JSON string).
enum PendingPointer {
    Rule(usize),
    Marker(String, String),
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pointer {
            PendingPointer::Rule(i) => write!(f, "Pending(rule {i} key {})", self.key),
            PendingPointer::Marker(p, _) => write!(f, "Pending({p} key {})", self.key),
        }
    }
}

impl Pending {
    /// The ID of the data key that encrypts this value.
    pub fn key(&self) -> KeyId {
        self.key
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Best effort: do not leave the plaintext in freed memory.
        self.plaintext.iter_mut().for_each(|b| *b = 0);
        self.data_key = [0; DATA_KEY_LEN];
    }
}

/// Reused buffers for sealing a part of a batch
/// ([`Sealer::seal_event_into`]): what each event needs is written here,
/// not into buffers of its own. The openings' plaintexts are wiped by
/// [`SealScratch::wipe`] and on drop.
#[derive(Default)]
pub(crate) struct SealScratch {
    // The subject's canonical text, then a value to seal's.
    subject: String,
    value: String,
    // An opening's associated data and sealed bytes.
    ad: Vec<u8>,
    sealed: Vec<u8>,
    /// The part's openings in entry order (to encrypt again if the batch
    /// gets other indices than the ones it was encrypted for).
    pub(crate) openings: Vec<Opening>,
    // Every opening's plaintext (salt || value), back to back.
    plain: Vec<u8>,
}

/// One value sealed into a [`SealScratch`].
pub(crate) struct Opening {
    /// The event's place in its batch.
    pub(crate) event: usize,
    pointer: PendingPointer,
    key: KeyId,
    data_key: DataKey,
    plain: std::ops::Range<usize>,
}

impl SealScratch {
    /// Forgets the openings, overwriting their plaintexts and keys first
    /// (the buffers are kept for the next batch).
    pub(crate) fn wipe(&mut self) {
        self.plain.fill(0);
        self.plain.clear();
        for o in &mut self.openings {
            o.data_key = [0; DATA_KEY_LEN];
        }
        self.openings.clear();
        self.sealed.fill(0);
        self.sealed.clear();
        wipe_string(&mut self.subject);
        wipe_string(&mut self.value);
    }
}

impl Drop for SealScratch {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl std::fmt::Debug for SealScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealScratch({} openings)", self.openings.len())
    }
}

// Overwrites a string's bytes (best effort, like `Pending`'s drop), keeping
// its buffer.
fn wipe_string(s: &mut String) {
    let mut b = std::mem::take(s).into_bytes();
    b.fill(0);
    b.clear();
    // Empty: valid UTF-8.
    *s = String::from_utf8(b).unwrap_or_default();
}

// Hashes a subject tag by its first 8 bytes: tags are HMAC outputs under
// the sidecar's secret, uniformly random and not choosable by whoever sends
// events, so SipHash's protection against chosen keys buys nothing there.
#[derive(Debug, Default, Clone, Copy)]
struct TagHash;

impl std::hash::BuildHasher for TagHash {
    type Hasher = TagHasher;
    fn build_hasher(&self) -> TagHasher {
        TagHasher(0)
    }
}

struct TagHasher(u64);

impl std::hash::Hasher for TagHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Whatever the key's Hash writes (a length, the tag's bytes),
        // folded eight bytes at a time.
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(w);
        }
    }
}

// A data key file (`keys/<tag hex>`: key ID || data key); `None` if there
// is none.
fn read_key_file(p: &Path) -> Result<Option<(KeyId, DataKey)>> {
    match crate::fs::read_own(p) {
        Ok(b) if b.len() == KEY_ID_LEN + DATA_KEY_LEN => Ok(Some((
            KeyId(b[..KEY_ID_LEN].try_into().expect("16 bytes")),
            b[KEY_ID_LEN..].try_into().expect("32 bytes"),
        ))),
        Ok(_) => Err(Error::Sealed(format!(
            "{} is not a data key file (48 bytes)",
            p.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", p, e)),
    }
}

/// Most data keys a sealer keeps in memory (about 100 bytes each).
const KEYS_CACHED: usize = 65_536;

#[derive(Debug)]
struct State {
    secret: Option<[u8; 32]>,
    keys: HashMap<[u8; 32], (KeyId, DataKey), TagHash>,
    auditors: Vec<String>,
    // The forget list, read once (this sealer's forgets add to it): a
    // key-cache miss read it whole each time (0.4 s an append with 1M
    // forgotten keys).
    forgotten: Option<std::collections::HashSet<KeyId>>,
}

/// Where a [`Sealer`] finds subjects' data keys when they are not kept in
/// its sidecar directory (the PostgreSQL backend keeps them in its database:
/// crate::cluster::sealed).
pub trait KeySource: Send + Sync {
    /// The data key of a subject (its canonical JSON; empty for events
    /// without one), made (and wrapped to every auditor) on first use.
    fn key_for(&self, subject: &[u8]) -> Result<(KeyId, DataKey)>;
}

/// The sealing side of an open log.
pub struct Sealer {
    fs: Arc<dyn Fs>,
    // Set: data keys come from here, never from the sidecar directory.
    source: Option<Arc<dyn KeySource>>,
    dir: PathBuf,
    origin: String,
    rules: Vec<Vec<String>>,
    // Each rule's pointer, and the pointer as a JSON string (record lines).
    rule_pointers: Vec<(String, String)>,
    subject: Vec<String>,
    // The subject index's HMAC, keyed by the sidecar's secret: made once,
    // then used outside `state`'s lock (the sealing threads each took the
    // lock for the two SHA-256 blocks of every event's subject tag).
    mac: std::sync::OnceLock<KeyedHmac>,
    state: Mutex<State>,
    records: Mutex<Option<(File, u64)>>,
    // Forgets and redactions done through this sealer (see
    // [`Sealer::changes`]).
    changes: AtomicU64,
    // The forgets and redactions under way, as `pending` holds them.
    intents: Mutex<Vec<Intent>>,
    // Held through a whole forget or redaction (intent, event, sidecar
    // work): they run one at a time, so `pending` is rewritten by one.
    ops: Mutex<()>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The forgotten key IDs of a log directory's sidecar.
pub(crate) fn forgotten_ids(sidecar: &Path) -> Result<std::collections::HashSet<KeyId>> {
    let fp = sidecar.join("forgotten");
    match std::fs::read_to_string(&fp) {
        Ok(t) => Ok(t.lines().filter_map(KeyId::from_hex).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(io("read", &fp, e)),
    }
}

/// What an export treats as forgotten: the forget list and the key IDs of
/// the forgets under way (`pending`: once a `stele.forget` event may be in
/// the log, its key is forgotten even if the list does not name it yet).
pub(crate) fn export_forgotten_ids(sidecar: &Path) -> Result<std::collections::HashSet<KeyId>> {
    let mut ids = forgotten_ids(sidecar)?;
    for i in read_intents(sidecar)? {
        if let Intent::Forget { key, .. } = i {
            let _ = ids.insert(key);
        }
    }
    Ok(ids)
}

/// The sidecar work a `stele.forget` or `stele.redact` event asks for,
/// made durable in `sealed/pending` before the event is appended and taken
/// off once done. An open finishes each one whose event is in the log
/// (looked for from entry `from`, the log's size before the event was
/// appended, so an open reads only the entries appended since) and drops
/// the others (their event was never logged, nothing was destroyed).
/// Lines hold key IDs, entry numbers and pointers only, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// `forget <from> <key ID>`: list the key as forgotten, destroy its
    /// wraps and key file.
    Forget {
        /// The log's size before the event was appended.
        from: u64,
        /// The data key's ID.
        key: KeyId,
    },
    /// `redact <from> <entry> <pointer as a JSON string>`: replace the
    /// opening by a `redacted` record.
    Redact {
        /// The log's size before the event was appended.
        from: u64,
        /// The entry whose opening goes.
        entry: u64,
        /// The sealed value's pointer.
        pointer: String,
    },
}

impl Intent {
    /// The entry index from which the intent's event is looked for.
    pub fn from(&self) -> u64 {
        match self {
            Self::Forget { from, .. } | Self::Redact { from, .. } => *from,
        }
    }

    fn to_line(&self) -> String {
        match self {
            Self::Forget { from, key } => format!("forget {from} {key}\n"),
            Self::Redact {
                from,
                entry,
                pointer,
            } => format!(
                "redact {from} {entry} {}\n",
                canonical::json_string(pointer)
            ),
        }
    }

    fn parse(line: &str) -> Option<Self> {
        let mut f = line.splitn(4, ' ');
        let (word, from) = (f.next()?, f.next()?.parse().ok()?);
        match word {
            "forget" => Some(Self::Forget {
                from,
                key: KeyId::from_hex(f.next()?).filter(|_| f.next().is_none())?,
            }),
            "redact" => Some(Self::Redact {
                from,
                entry: f.next()?.parse().ok()?,
                pointer: serde_json::from_str(f.next()?).ok()?,
            }),
            _ => None,
        }
    }

    /// The sidecar work an entry's event asks for, as an intent from
    /// `from`: `Some` for a `stele.forget` or `stele.redact` event (the
    /// entry line as stored; other lines are not parsed).
    pub fn of_entry(line: &[u8], from: u64) -> Option<Self> {
        let has = |n: &[u8]| line.windows(n.len()).any(|w| w == n);
        if !has(b"\"type\":\"stele.forget\"") && !has(b"\"type\":\"stele.redact\"") {
            return None;
        }
        let v: Value = serde_json::from_slice(line).ok()?;
        let ev = v.get("event")?;
        match ev.get("type")?.as_str()? {
            "stele.forget" => Some(Self::Forget {
                from,
                key: KeyId::from_hex(ev.get("key")?.as_str()?)?,
            }),
            "stele.redact" => Some(Self::Redact {
                from,
                entry: ev.get("entry")?.as_u64()?,
                pointer: ev.get("pointer")?.as_str()?.to_string(),
            }),
            _ => None,
        }
    }

    /// Whether `other` (read from an entry) is this intent's event.
    pub fn same_work(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Forget { key: a, .. }, Self::Forget { key: b, .. }) => a == b,
            (
                Self::Redact {
                    entry: a,
                    pointer: p,
                    ..
                },
                Self::Redact {
                    entry: b,
                    pointer: q,
                    ..
                },
            ) => a == b && p == q,
            _ => false,
        }
    }
}

impl std::fmt::Display for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Forget { key, .. } => write!(f, "stele.forget of key {key}"),
            Self::Redact { entry, pointer, .. } => write!(
                f,
                "stele.redact of entry {entry} at {}",
                canonical::quote(pointer)
            ),
        }
    }
}

/// The intents in `sidecar/pending` (none without it); a line of any
/// other shape is an error naming it.
pub(crate) fn read_intents(sidecar: &Path) -> Result<Vec<Intent>> {
    let p = sidecar.join("pending");
    let text = match crate::fs::read_own(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read", &p, e)),
    };
    let text = String::from_utf8(text)
        .map_err(|_| Error::Sealed(format!("{} is not UTF-8", p.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(n, l)| {
            Intent::parse(l).ok_or_else(|| {
                Error::Sealed(format!(
                    "{} line {}: not a forget or redact under way",
                    p.display(),
                    n + 1
                ))
            })
        })
        .collect()
}

// The entries read in step with the records by [`Sealer::check_log`]:
// `have` holds the pointers of entry `next`'s records.
struct PlaceholderWalk<'a> {
    entries: &'a Path,
    size: u64,
    reader: BufReader<File>,
    line: Vec<u8>,
    next: u64,
    have: Vec<String>,
}

impl PlaceholderWalk<'_> {
    // Checks the placeholders of entries `next..upto` (no further than the
    // log's size): each needs a record, or a forgotten key.
    fn check_upto(
        &mut self,
        upto: u64,
        forgotten: &std::collections::HashSet<KeyId>,
        missing: &mut Vec<(u64, String, KeyId)>,
    ) -> Result<()> {
        while self.next < upto.min(self.size) {
            self.line.clear();
            if self
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(|e| io("read", self.entries, e))?
                == 0
            {
                self.next = self.size;
                break;
            }
            let at = self.next;
            if self.line.windows(16).any(|w| w == b"\"stele.sealed\":{") {
                let v: Value = serde_json::from_slice(&self.line)
                    .map_err(|e| Error::Sealed(format!("entry {at}: {e}")))?;
                let phs = v
                    .get("event")
                    .map(sealed::find_placeholders)
                    .transpose()
                    .map_err(|e| Error::Sealed(format!("entry {at}: {e}")))?
                    .unwrap_or_default();
                for (ptr, ph) in phs {
                    if !forgotten.contains(&ph.key) && !self.have.contains(&ptr) {
                        missing.push((at, ptr, ph.key));
                    }
                }
            }
            self.have.clear();
            self.next += 1;
        }
        Ok(())
    }
}

/// What [`Sealer::check_log`] found.
#[derive(Debug, Default)]
pub struct SidecarCheck {
    /// Logged forgets and redactions whose sidecar work was not done, each
    /// with its entry: finished by the check.
    pub finished: Vec<(u64, Intent)>,
    /// Sealed values (entry, pointer, key ID) with no opening, no
    /// `redacted` record and no forgotten key: what opened them is lost.
    pub missing: Vec<(u64, String, KeyId)>,
}

/// Whether `dir` exists and holds anything.
fn dir_has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// Whether `DIR/entries.jsonl` holds a sealed-field placeholder
/// (docs/FORMAT.md 13.2), read 1 MiB at a time.
pub(crate) fn entries_hold_placeholders(log_dir: &Path) -> Result<bool> {
    use std::os::unix::fs::FileExt;
    let p = log_dir.join(crate::log::files::ENTRIES);
    let f = match crate::fs::open_own_read(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("open", &p, e)),
    };
    let len = f.metadata().map_err(|e| io("stat", &p, e))?.len();
    let needle = format!("\"{PLACEHOLDER_MEMBER}\"");
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    let mut buf = vec![0u8; (1 << 20).min(len as usize)];
    let mut at = 0u64;
    while at < len {
        let n = ((len - at) as usize).min(buf.len());
        f.read_exact_at(&mut buf[..n], at)
            .map_err(|e| io("read", &p, e))?;
        if finder.find(&buf[..n]).is_some() {
            return Ok(true);
        }
        if at + n as u64 >= len {
            break;
        }
        // Overlap by the needle's length so no match straddles two blocks.
        at += (n - needle.len()) as u64;
    }
    Ok(false)
}

/// Refuses to write to a log whose `stele.json` no longer has sealing
/// rules the log had: a `stele.json` restored from an older backup, or
/// edited, would have the next events' personal data written in the clear.
/// The rules a writer opened the log with are recorded in
/// `DIR/sealed/rules` (their JSON; written when missing or when rules were
/// added); a pointer recorded there and missing from `stele.json` is
/// refused unless `unsealed` (`"unsealed": true` in `stele.json`) says so on
/// purpose. A log that never had rules (ad hoc markers only) has no record
/// and is never refused.
pub(crate) fn check_rules_kept(
    fs: &dyn Fs,
    log_dir: &Path,
    cfg: &SealConfig,
    unsealed: bool,
) -> Result<()> {
    let dir = log_dir.join(SIDECAR);
    let path = dir.join(RULES);
    let recorded: Option<SealConfig> = match crate::fs::read_own(&path) {
        Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| {
            Error::Sealed(format!(
                "{} does not parse ({e}); it records the sealing rules the log had",
                path.display()
            ))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("read", &path, e)),
    };
    let dropped: Vec<&str> = recorded
        .iter()
        .flat_map(|r| &r.seal)
        .filter(|p| !cfg.seal.contains(p))
        .map(String::as_str)
        .collect();
    if !dropped.is_empty() {
        if unsealed {
            return Ok(());
        }
        return Err(Error::Sealed(format!(
            "{} does not seal {} any more, which this log sealed ({} records its rules): a stele.json restored from an older backup, or edited? Those values would be written in the clear from now on; nothing was appended. Put the rules back (\"sealed\": {{\"seal\": [...], \"subject\": ...}}), or add \"unsealed\": true to stele.json to write them in the clear on purpose",
            log_dir.join("stele.json").display(),
            dropped
                .iter()
                .map(|p| canonical::quote(p))
                .collect::<Vec<_>>()
                .join(", "),
            path.display()
        )));
    }
    if !cfg.seal.is_empty() && recorded.as_ref() != Some(cfg) {
        for d in [dir.clone(), dir.join("keys"), dir.join("wraps")] {
            crate::fs::ensure_private_dir(fs, &d).map_err(|e| io("open directory", &d, e))?;
        }
        let text = serde_json::to_string(cfg).expect("rules serialize") + "\n";
        write_secret_file(fs, &dir, RULES, text.as_bytes())?;
    }
    Ok(())
}

/// `DIR/sealed/rules`: see [`check_rules_kept`].
const RULES: &str = "rules";

/// Makes a restored log's sidecar secret (a mirror does not copy the
/// origin's), when it has none: the log then seals again with new subject
/// indexes, as a restore means to, and is not taken for a partial restore.
pub(crate) fn fresh_secret(fs: &dyn Fs, log_dir: &Path) -> Result<()> {
    let dir = log_dir.join(SIDECAR);
    if std::fs::symlink_metadata(dir.join("secret")).is_ok() {
        return Ok(());
    }
    for d in [dir.clone(), dir.join("keys"), dir.join("wraps")] {
        crate::fs::ensure_private_dir(fs, &d).map_err(|e| io("open directory", &d, e))?;
    }
    let s: [u8; 32] = random()?;
    write_secret_file(fs, &dir, "secret", &s)
}

/// The `stele.auditor` event (FORMAT 13.7) that logs an auditor's
/// addition or removal (`action` `add` or `remove`): the recipient is a
/// public key, `by` who asked.
pub(crate) fn auditor_event(action: &str, recipient: &str, by: &str) -> Value {
    serde_json::json!({
        "type": "stele.auditor",
        "action": action,
        "recipient": recipient,
        "by": by,
    })
}

/// The auditors of a log directory (read only, no lock needed).
pub fn auditors(log_dir: &Path) -> Result<Vec<String>> {
    let p = log_dir.join(SIDECAR).join("auditors");
    match std::fs::read_to_string(&p) {
        Ok(t) => Ok(t
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io("read", &p, e)),
    }
}

fn age_recipient(r: &str) -> Result<age::x25519::Recipient> {
    let shown = || stele_seal::shown_recipient(r);
    let _ =
        stele_seal::parse_recipient(r).map_err(|e| Error::Sealed(format!("{}: {e}", shown())))?;
    r.parse::<age::x25519::Recipient>()
        .map_err(|e| Error::Sealed(format!("{}: {e}", shown())))
}

/// Wraps a data key to one recipient: an age file (FORMAT 13.5).
pub fn wrap(recipient: &str, key: &DataKey) -> Result<Vec<u8>> {
    let r = age_recipient(recipient)?;
    age::encrypt(&r, key).map_err(|e| Error::Sealed(format!("age encryption: {e}")))
}

impl Sealer {
    /// Opens (without creating) the sidecar of the log in `log_dir`, whose
    /// durable size is `size`: openings of entries at `size` or later were
    /// never acknowledged and are cut.
    pub fn open(
        log_dir: &Path,
        origin: &str,
        cfg: &SealConfig,
        size: u64,
        fs: Arc<dyn Fs>,
    ) -> Result<Self> {
        cfg.check()?;
        let dir = log_dir.join(SIDECAR);
        let (rules, rule_pointers) = rule_tokens(cfg)?;
        let subject = sealed::pointer_tokens(&cfg.subject).map_err(Error::Sealed)?;
        // The auditors file gone while data keys are wrapped to auditors: a
        // partial restore. Going on wrapped new data keys to no auditor.
        let auditors_path = dir.join("auditors");
        if std::fs::symlink_metadata(&auditors_path).is_err() && dir_has_entries(&dir.join("wraps"))
        {
            return Err(Error::Sealed(format!(
                "{} is missing, but {} holds data keys wrapped to auditors: a partial restore? New sealed values would be wrapped to no auditor. Put the file back from the backup; to go on without auditors on purpose, create it empty (mode 0600) and `stele auditor add` again",
                auditors_path.display(),
                dir.join("wraps").display()
            )));
        }
        let s = Self {
            fs,
            source: None,
            origin: origin.into(),
            rules,
            rule_pointers,
            subject,
            mac: Default::default(),
            state: Mutex::new(State {
                secret: None,
                keys: HashMap::default(),
                auditors: auditors(log_dir)?,
                forgotten: None,
            }),
            records: Mutex::new(None),
            changes: AtomicU64::new(0),
            intents: Mutex::new(read_intents(&dir)?),
            ops: Mutex::new(()),
            dir,
        };
        // A sidecar that is there must be private (see ensure_dirs).
        for d in [s.dir.clone(), s.dir.join("keys"), s.dir.join("wraps")] {
            if std::fs::symlink_metadata(&d).is_ok() {
                crate::fs::check_private_dir(&d).map_err(|e| io("open directory", &d, e))?;
            }
        }
        s.cut_orphans(size)?;
        Ok(s)
    }

    /// A sealer with the rules of `cfg` whose data keys come from `source`
    /// (no sidecar directory: the caller stores the records [`Sealer::encrypt`]
    /// writes).
    pub fn with_source(origin: &str, cfg: &SealConfig, source: Arc<dyn KeySource>) -> Result<Self> {
        cfg.check()?;
        let (rules, rule_pointers) = rule_tokens(cfg)?;
        Ok(Self {
            fs: Arc::new(RealFs),
            source: Some(source),
            dir: PathBuf::new(),
            origin: origin.into(),
            rules,
            rule_pointers,
            subject: sealed::pointer_tokens(&cfg.subject).map_err(Error::Sealed)?,
            mac: Default::default(),
            state: Mutex::new(State {
                secret: None,
                keys: HashMap::default(),
                auditors: Vec::new(),
                forgotten: None,
            }),
            records: Mutex::new(None),
            changes: AtomicU64::new(0),
            intents: Mutex::new(Vec::new()),
            ops: Mutex::new(()),
        })
    }

    fn records_path(&self) -> PathBuf {
        self.dir.join("records")
    }

    fn ensure_dirs(&self) -> Result<()> {
        for d in [
            self.dir.clone(),
            self.dir.join("keys"),
            self.dir.join("wraps"),
        ] {
            // Secrets go there: a link, someone else's directory or one open
            // to others is refused, never written into.
            crate::fs::ensure_private_dir(&*self.fs, &d)
                .map_err(|e| io("open directory", &d, e))?;
        }
        Ok(())
    }

    // Records of entries the log does not have (a crash between the records'
    // fsync and the entries') are cut, with a torn last line. Records are in
    // entry order, so only the file's tail is read (orphans are at most one
    // group commit's): opening a sealed log costs the same at any size
    // (issue 17; reading the whole file here took 0.6 s at 950k entries).
    fn cut_orphans(&self, size: u64) -> Result<()> {
        let p = self.records_path();
        let f = match crate::fs::open_own(OpenOptions::new().read(true).write(true), &p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("open", &p, e)),
        };
        let len = f.metadata().map_err(|e| io("stat", &p, e))?.len();
        let keep = records_kept(&f, len, size).map_err(|e| io("read", &p, e))?;
        if keep < len {
            self.fs
                .set_len(FileRole::Sealed, &f, keep)
                .map_err(|e| io("truncate", &p, e))?;
            self.fs
                .sync_data(FileRole::Sealed, &f)
                .map_err(|e| io("fdatasync", &p, e))?;
        }
        *self.records.lock().unwrap() = Some((f, keep));
        Ok(())
    }

    fn secret(&self, st: &mut State) -> Result<[u8; 32]> {
        if let Some(s) = st.secret {
            return Ok(s);
        }
        let p = self.dir.join("secret");
        let s = match crate::fs::read_own(&p) {
            Ok(b) => b
                .try_into()
                .map_err(|_| Error::Sealed(format!("{} is not 32 bytes", p.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Only a log that never sealed gets a new secret: a new one
                // beside sealed values would index their subjects anew
                // (forget would miss them), silently (red-team: a sidecar
                // a backup skipped was remade and the append went on).
                self.check_never_sealed(&p)?;
                self.ensure_dirs()?;
                let s: [u8; 32] = random()?;
                write_secret_file(&*self.fs, &self.dir, "secret", &s)?;
                s
            }
            Err(e) => return Err(io("read", &p, e)),
        };
        st.secret = Some(s);
        Ok(s)
    }

    /// With sealing rules, loads the sidecar's secret now, or makes it if
    /// the log never sealed (see `check_never_sealed`): a partial restore
    /// is refused when the log is opened, not at the first event a rule
    /// matches (where it read as a bad event).
    pub(crate) fn prepare(&self) -> Result<()> {
        if self.source.is_some() || self.rules.is_empty() {
            return Ok(());
        }
        let mut st = self.state.lock().unwrap();
        self.secret(&mut st).map(|_| ())
    }

    // Refuses to make a new secret (`missing`) for a sidecar or log that
    // shows sealed values: data keys, openings, or placeholders in the
    // entries (read 1 MiB at a time; this runs once in a log's life).
    fn check_never_sealed(&self, missing: &Path) -> Result<()> {
        let log_dir = self.dir.parent().unwrap_or(Path::new("."));
        let keys = self.dir.join("keys");
        let why = if dir_has_entries(&keys) {
            Some(format!("{} holds data keys", keys.display()))
        } else if std::fs::metadata(self.records_path()).is_ok_and(|m| m.len() > 0) {
            Some(format!("{} holds openings", self.records_path().display()))
        } else if entries_hold_placeholders(log_dir)? {
            Some(format!(
                "the entries of {} hold sealed values",
                log_dir.display()
            ))
        } else {
            None
        };
        match why {
            None => Ok(()),
            Some(why) => Err(Error::Sealed(format!(
                "{} is missing, but {why}: a partial restore? A new secret would index data subjects anew (a later forget would miss their earlier values); nothing was appended. Put {SIDECAR}/secret back from the backup; if it is lost for good, write 32 random bytes there on purpose (mode 0600)",
                missing.display(),
            ))),
        }
    }

    // The subject index: HMAC-SHA-256(secret, canonical JSON of the subject),
    // or of the empty string for events without a subject.
    // `st` is the state, locked by the caller.
    fn subject_tag(&self, st: &mut State, subject: &[u8]) -> Result<[u8; 32]> {
        let mac = match self.mac.get() {
            Some(m) => m,
            None => {
                let m = KeyedHmac::new(&self.secret(st)?);
                self.mac.get_or_init(|| m)
            }
        };
        Ok(mac.tag(subject))
    }

    // The data key of a subject, made (and wrapped to every auditor) on first use.
    fn key_for(&self, subject: &[u8]) -> Result<(KeyId, DataKey)> {
        if let Some(s) = &self.source {
            return s.key_for(subject);
        }
        // The tag is computed before the lock once the HMAC is made.
        let tag = self.mac.get().map(|m| m.tag(subject));
        let mut st = self.state.lock().unwrap();
        let tag = match tag {
            Some(t) => t,
            None => self.subject_tag(&mut st, subject)?,
        };
        if let Some(k) = st.keys.get(&tag) {
            return Ok(*k);
        }
        let name = stele_core::note::hex(&tag);
        let p = self.dir.join("keys").join(&name);
        let mut found = read_key_file(&p)?;
        if let Some((id, _)) = found
            && self.is_forgotten(&mut st, &id)?
        {
            // A forget that failed after listing the key: finish destroying
            // it, every wrap first (the key file is what finds them again);
            // the subject gets a new key.
            let _ = self.shred_wraps(id)?;
            shred_with(&*self.fs, &p)?;
            found = None;
        }
        let k = match found {
            Some(k) => k,
            None => {
                self.ensure_dirs()?;
                let id = KeyId(random()?);
                let key: DataKey = random()?;
                // Wraps first: a key on disk is never missing one of its auditors.
                for a in &st.auditors {
                    self.write_wrap(id, a, &key)?;
                }
                let mut b = Vec::with_capacity(48);
                b.extend_from_slice(&id.0);
                b.extend_from_slice(&key);
                write_secret_file(&*self.fs, &self.dir.join("keys"), &name, &b)?;
                (id, key)
            }
        };
        // Bounded: a writer that has sealed for millions of subjects keeps
        // the most recent at most (past the bound the cache starts again;
        // a key not cached is read back from its file).
        if st.keys.len() >= KEYS_CACHED {
            st.keys.clear();
        }
        let _ = st.keys.insert(tag, k);
        Ok(k)
    }

    // The data key of a subject if this sealer has it in memory (no file
    // read or made, no key source asked): `None` otherwise.
    fn cached_key(&self, subject: &[u8]) -> Option<(KeyId, DataKey)> {
        if self.source.is_some() {
            return None;
        }
        let tag = self.mac.get()?.tag(subject);
        self.state.lock().unwrap().keys.get(&tag).copied()
    }

    // Destroys every wrap of key `id` (any auditor's, listed or not).
    fn shred_wraps(&self, id: KeyId) -> Result<usize> {
        let mut n = 0;
        for w in wrap_files(&self.dir.join("wraps")) {
            if w.key == id {
                shred_with(&*self.fs, &w.path)?;
                n += 1;
            }
        }
        Ok(n)
    }

    // Adds `id` to the forget list (rewritten whole: tmp, fdatasync, rename,
    // directory fsync; a crash leaves the old list or the new one).
    fn list_forgotten(&self, st: &mut State, id: KeyId) -> Result<()> {
        let fp = self.dir.join("forgotten");
        let mut list = match crate::fs::read_own(&fp) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("read", &fp, e)),
        };
        if list.last().is_some_and(|&b| b != b'\n') {
            list.push(b'\n');
        }
        list.extend_from_slice(format!("{id}\n").as_bytes());
        if let Err(e) = write_secret_file(&*self.fs, &self.dir, "forgotten", &list) {
            // It may have reached the disk (a failure after the rename):
            // the list is read again on next use.
            st.forgotten = None;
            return Err(e);
        }
        if let Some(f) = st.forgotten.as_mut() {
            let _ = f.insert(id);
        }
        Ok(())
    }

    /// The forgets and redactions under way (`sealed/pending`), oldest first.
    pub fn intents(&self) -> Vec<Intent> {
        self.intents.lock().unwrap().clone()
    }

    /// Held through a whole forget or redaction, so they run one at a time.
    pub(crate) fn ops(&self) -> std::sync::MutexGuard<'_, ()> {
        self.ops.lock().unwrap()
    }

    /// Makes `intent` durable in `sealed/pending`: call before its event is
    /// appended. An error leaves nothing under way.
    pub(crate) fn begin(&self, intent: Intent) -> Result<()> {
        self.ensure_dirs()?;
        let mut g = self.intents.lock().unwrap();
        g.push(intent);
        if let Err(e) = self.write_intents(&g) {
            // The file may hold it after all (a failure after the rename):
            // put back what it held; an open drops an intent whose event is
            // not in the log either way.
            let _ = g.pop();
            let _ = self.write_intents(&g);
            return Err(e);
        }
        Ok(())
    }

    /// Takes `intent` off `sealed/pending`: its work is done, or its event
    /// is known not to be in the log. An error leaves it in the file, whose
    /// next open finds the work done (it is done again: every step is
    /// idempotent).
    pub(crate) fn end(&self, intent: &Intent) -> Result<()> {
        let mut g = self.intents.lock().unwrap();
        let Some(at) = g.iter().position(|i| i == intent) else {
            return Ok(());
        };
        let _ = g.remove(at);
        self.write_intents(&g)
    }

    fn write_intents(&self, list: &[Intent]) -> Result<()> {
        if list.is_empty() {
            let p = self.dir.join("pending");
            return match std::fs::remove_file(&p) {
                Ok(()) => sync_dir(&*self.fs, &self.dir),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io("remove", &p, e)),
            };
        }
        let text: String = list.iter().map(Intent::to_line).collect();
        write_secret_file(&*self.fs, &self.dir, "pending", text.as_bytes())
    }

    /// Finishes the sidecar work of a logged `stele.forget` of key `id`:
    /// lists it as forgotten, then destroys every wrap of it and the key
    /// file holding it (found by reading the key files: the event names
    /// the key, not the subject). Returns whether anything was left to do.
    pub fn finish_forget(&self, id: KeyId) -> Result<bool> {
        Ok(!self.finish_forgets(&[id].into())?.is_empty())
    }

    /// [`Sealer::finish_forget`] of many keys, each directory read once.
    /// Returns the keys that had something left to do, sorted.
    pub fn finish_forgets(&self, ids: &std::collections::HashSet<KeyId>) -> Result<Vec<KeyId>> {
        let mut st = self.state.lock().unwrap();
        let mut did = std::collections::BTreeSet::new();
        if ids.is_empty() || !self.dir.exists() {
            return Ok(Vec::new());
        }
        let mut sorted: Vec<KeyId> = ids.iter().copied().collect();
        sorted.sort();
        for id in sorted {
            if !self.is_forgotten(&mut st, &id)? {
                self.list_forgotten(&mut st, id)?;
                let _ = did.insert(id);
            }
        }
        st.keys.retain(|_, (k, _)| !ids.contains(k));
        for w in wrap_files(&self.dir.join("wraps")) {
            if ids.contains(&w.key) {
                shred_with(&*self.fs, &w.path)?;
                let _ = did.insert(w.key);
            }
        }
        let keys_dir = self.dir.join("keys");
        let rd = match std::fs::read_dir(&keys_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(did.into_iter().collect());
            }
            Err(e) => return Err(io("read directory", &keys_dir, e)),
        };
        for ent in rd {
            let ent = ent.map_err(|e| io("read directory", &keys_dir, e))?;
            if ent.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            // A file of another shape is no key: `key_for` says so when met.
            if let Ok(Some((k, _))) = read_key_file(&ent.path())
                && ids.contains(&k)
            {
                shred_with(&*self.fs, &ent.path())?;
                let _ = did.insert(k);
            }
        }
        Ok(did.into_iter().collect())
    }

    /// `stele fsck`'s check of the sidecar against the whole log (the
    /// entries file `entries`, its first `size` entries): every
    /// `stele.forget` and `stele.redact` event's work is finished where it
    /// is not (an interrupted forget, an older `sealed/` restored), and every
    /// sealed placeholder is checked to have an opening or `redacted`
    /// record, or a forgotten key. Reads the entries twice and the records
    /// once, a line at a time.
    pub fn check_log(&self, entries: &Path, size: u64) -> Result<SidecarCheck> {
        let mut out = SidecarCheck::default();
        let lines = |each: &mut dyn FnMut(u64, &[u8]) -> Result<bool>| -> Result<()> {
            let f = crate::fs::open_own_read(entries).map_err(|e| io("open", entries, e))?;
            let mut r = BufReader::with_capacity(1 << 20, f);
            let mut line = Vec::new();
            for i in 0..size {
                line.clear();
                if r.read_until(b'\n', &mut line)
                    .map_err(|e| io("read", entries, e))?
                    == 0
                {
                    break;
                }
                if !each(i, &line)? {
                    break;
                }
            }
            Ok(())
        };
        // 1. The forgets and redactions the log holds.
        let mut forgets = HashMap::new();
        let mut redacts = Vec::new();
        lines(&mut |i, l| {
            match Intent::of_entry(l, i) {
                Some(Intent::Forget { key, .. }) => {
                    let _ = forgets.entry(key).or_insert(i);
                }
                Some(Intent::Redact { entry, pointer, .. }) => redacts.push((i, entry, pointer)),
                None => {}
            }
            Ok(true)
        })?;
        let ids = forgets.keys().copied().collect();
        for k in self.finish_forgets(&ids)? {
            out.finished
                .push((forgets[&k], Intent::Forget { from: 0, key: k }));
        }
        for (i, entry, pointer) in redacts {
            if self.finish_redact(entry, &pointer)? {
                out.finished.push((
                    i,
                    Intent::Redact {
                        from: 0,
                        entry,
                        pointer,
                    },
                ));
            }
        }
        out.finished.sort_by_key(|f| f.0);
        // 2. Every placeholder against the records, in step (both are in
        // entry order): the records of entry i are gathered, then entry i's
        // placeholders checked against them.
        let forgotten = forgotten_ids(&self.dir)?;
        let ef = crate::fs::open_own_read(entries).map_err(|e| io("open", entries, e))?;
        let mut walk = PlaceholderWalk {
            entries,
            size,
            reader: BufReader::with_capacity(1 << 20, ef),
            line: Vec::new(),
            next: 0,
            have: Vec::new(),
        };
        each_record_from(&self.records_path(), 0, |i, _, l| {
            walk.check_upto(i, &forgotten, &mut out.missing)?;
            if i == walk.next {
                let body = l.strip_suffix(b"\n").unwrap_or(l);
                if let Some((_, rec)) = split_record(body)
                    && let Ok(Record::Opening { pointer, .. } | Record::Redacted { pointer, .. }) =
                        Record::parse(rec)
                {
                    walk.have.push(pointer);
                }
            }
            Ok(true)
        })?;
        walk.check_upto(size, &forgotten, &mut out.missing)?;
        Ok(out)
    }

    /// Finishes the sidecar work of a logged `stele.redact`: the opening of
    /// `pointer` in entry `index`, if still there, becomes a `redacted`
    /// record. Returns whether anything was left to do.
    pub fn finish_redact(&self, index: u64, pointer: &str) -> Result<bool> {
        let there = {
            let _g = self.records.lock().unwrap();
            self.opening_at(index, pointer)?
        };
        if !there {
            return Ok(false);
        }
        self.redact(index, pointer)?;
        Ok(true)
    }

    fn is_forgotten(&self, st: &mut State, id: &KeyId) -> Result<bool> {
        if st.forgotten.is_none() {
            st.forgotten = Some(forgotten_ids(&self.dir)?);
        }
        Ok(st.forgotten.as_ref().is_some_and(|f| f.contains(id)))
    }

    fn write_wrap(&self, id: KeyId, recipient: &str, key: &DataKey) -> Result<()> {
        let w = wrap(recipient, key)?;
        write_secret_file(
            &*self.fs,
            &self.dir.join("wraps"),
            &format!("{id}.{recipient}.age"),
            &w,
        )
    }

    /// Adds an auditor: wraps every existing data key for it, then records
    /// it so future keys are wrapped too. Adding one twice is a no-op.
    pub fn add_auditor(&self, recipient: &str) -> Result<usize> {
        let _ = age_recipient(recipient)?;
        let mut st = self.state.lock().unwrap();
        if st.auditors.iter().any(|a| a == recipient) {
            return Ok(0);
        }
        self.ensure_dirs()?;
        // The list exists (empty) before any wrap does: then wraps without
        // the list can only be a list lost since (a partial restore, which
        // open refuses), never a crash between the wraps and the list.
        if st.auditors.is_empty() && std::fs::symlink_metadata(self.dir.join("auditors")).is_err() {
            write_secret_file(&*self.fs, &self.dir, "auditors", b"")?;
        }
        let mut n = 0;
        let keys_dir = self.dir.join("keys");
        let rd = std::fs::read_dir(&keys_dir).map_err(|e| io("read directory", &keys_dir, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| io("read directory", &keys_dir, e))?;
            if ent.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let b = crate::fs::read_own(&ent.path()).map_err(|e| io("read", &ent.path(), e))?;
            if b.len() != KEY_ID_LEN + DATA_KEY_LEN {
                continue;
            }
            let id = KeyId(b[..KEY_ID_LEN].try_into().expect("16 bytes"));
            let key: DataKey = b[KEY_ID_LEN..].try_into().expect("32 bytes");
            self.write_wrap(id, recipient, &key)?;
            n += 1;
        }
        st.auditors.push(recipient.to_string());
        let text: String = st.auditors.iter().map(|a| format!("{a}\n")).collect();
        write_secret_file(&*self.fs, &self.dir, "auditors", text.as_bytes())?;
        Ok(n)
    }

    /// Removes an auditor: it leaves the list first (so no later key is
    /// wrapped for it and no export is revealed to it), then every wrap
    /// for it is destroyed (overwritten, fsync'ed, unlinked). Returns how
    /// many wraps were destroyed. What it was given before (exports revealed
    /// to it, wraps it copied) stays openable by it: only forget ends that.
    /// Removing one that is no auditor is an error, unless wraps for it are
    /// still on disk (a removal cut short): those are destroyed.
    pub fn remove_auditor(&self, recipient: &str) -> Result<usize> {
        let mut st = self.state.lock().unwrap();
        let listed = st.auditors.iter().any(|a| a == recipient);
        if listed {
            st.auditors.retain(|a| a != recipient);
            let text: String = st.auditors.iter().map(|a| format!("{a}\n")).collect();
            write_secret_file(&*self.fs, &self.dir, "auditors", text.as_bytes())?;
        }
        let mut n = 0;
        for w in wrap_files(&self.dir.join("wraps")) {
            if w.recipient == recipient {
                shred_with(&*self.fs, &w.path)?;
                n += 1;
            }
        }
        if !listed && n == 0 {
            return Err(Error::Sealed(format!(
                "{} is not an auditor of this log",
                stele_seal::shown_recipient(recipient)
            )));
        }
        Ok(n)
    }

    /// Whether [`Sealer::seal_event_text`] would change or refuse `ev`: a rule's
    /// pointer is present, or a seal marker or placeholder member is
    /// anywhere in it. Read-only, so events that need nothing are not copied.
    pub fn touches(&self, ev: &Value) -> bool {
        self.rules.iter().any(|r| lookup(ev, r).is_some()) || marked(ev)
    }

    /// Seals an incoming event for a caller that learns its index later
    /// (the cluster's sequencer): refuses reserved members, unwraps ad-hoc
    /// markers, writes its canonical text with placeholders to `text` and
    /// returns the values waiting for the index ([`Sealer::encrypt`]). The
    /// append path's code ([`Sealer::seal_event_into`]): the same rules,
    /// text and errors, which never quote the event's values.
    pub fn seal_event_text(&self, ev: &Value, text: &mut String) -> Result<Vec<Pending>, String> {
        let mut s = SealScratch::default();
        self.seal_event_into(ev, 0, &mut s, text)?;
        let SealScratch {
            openings, plain, ..
        } = &mut s;
        Ok(openings
            .drain(..)
            .map(|o| Pending {
                pointer: o.pointer,
                key: o.key,
                data_key: o.data_key,
                plaintext: plain[o.plain].to_vec(),
            })
            .collect())
    }

    // The values an event has to seal, outermost first and none inside
    // another: (tokens, the rule whose pointer text is made already, value).
    #[allow(clippy::type_complexity)]
    fn chosen<'s, 'v>(
        &'s self,
        ev: &'v Value,
        markers: &'s [Vec<String>],
    ) -> Vec<(&'s [String], Option<usize>, &'v Value)> {
        let mut targets: Vec<(&[String], Option<usize>, &Value)> = Vec::new();
        for m in markers {
            if let Some(v) = lookup(ev, m) {
                targets.push((m, None, v));
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if let Some(v) = lookup(ev, r) {
                targets.push((r, Some(i), v));
            }
        }
        if targets.len() < 2 {
            return targets;
        }
        targets.sort_by_key(|t| t.0.len());
        let mut chosen: Vec<(&[String], Option<usize>, &Value)> = Vec::with_capacity(2);
        for t in targets {
            if !chosen.iter().any(|c| t.0.starts_with(c.0)) {
                chosen.push(t);
            }
        }
        chosen
    }

    /// Seals an event (refuses reserved members, unwraps ad-hoc markers),
    /// writing the sealed event's canonical text (with placeholders) to
    /// `text`, its openings to `s`, with no value built and no allocation
    /// per event once `s` is warm (per-event Strings and placeholder maps
    /// cost the append path a few µs an entry: `stele bench sealed`).
    /// `event` is the event's place in the batch, kept with its openings.
    /// Errors never quote the event's values.
    /// The event is read, not changed: only one with markers is copied
    /// (to unwrap them), so callers need not own or copy their events.
    pub(crate) fn seal_event_into(
        &self,
        ev: &Value,
        event: usize,
        s: &mut SealScratch,
        text: &mut String,
    ) -> Result<(), String> {
        let marks = (text.len(), s.openings.len(), s.plain.len());
        if self.seal_unmarked(ev, event, s, text).is_some() {
            return Ok(());
        }
        // Undone: the event has a marker or reserved member (or something
        // failed); the walk below unwraps or refuses it, errors and all.
        text.truncate(marks.0);
        for o in &mut s.openings[marks.1..] {
            o.data_key = [0; DATA_KEY_LEN];
        }
        s.openings.truncate(marks.1);
        s.plain[marks.2..].fill(0);
        s.plain.truncate(marks.2);
        self.seal_event_walked(ev, event, s, text)
    }

    // [`Sealer::seal_event_into`] of an event taken to have no seal marker
    // and no placeholder member anywhere, with a data key cached already:
    // `None` if either is not so (what it added to `s` and `text` is then
    // undone by the caller). An event with such a member is never sealed
    // here: every member name is in the canonical texts written (the
    // event's, and each sealed value's), as it is (canonical JSON escapes
    // no letter nor '.'), so `"stele.seal` is found there once more than
    // the placeholders written hold it. Instead of a walk of every event
    // (`marked`, about 3% of the sealed append's CPU: `perf record` of
    // `stele bench sealed`), a memmem over its text. Same text, openings
    // and randomness use as the walked path for such events.
    fn seal_unmarked(
        &self,
        ev: &Value,
        event: usize,
        s: &mut SealScratch,
        text: &mut String,
    ) -> Option<()> {
        static RESERVED: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"stele.seal"));
        let count = |t: &[u8]| RESERVED.find_iter(t).count();
        let start = text.len();
        let chosen = self.chosen(ev, &[]);
        if chosen.is_empty() {
            stele_core::entry::canonical_event_into(ev, text).ok()?;
            return (count(&text.as_bytes()[start..]) == 0).then_some(());
        }
        s.subject.clear();
        if let Some(v) = lookup(ev, &self.subject) {
            canonical::to_canonical_into(v, &mut s.subject).ok()?;
        }
        let (id, key) = self.cached_key(s.subject.as_bytes())?;
        let mut placeholders = Vec::with_capacity(chosen.len());
        for (_, rule, value) in chosen {
            s.value.clear();
            canonical::to_canonical_into(value, &mut s.value).ok()?;
            if count(s.value.as_bytes()) != 0 {
                wipe_string(&mut s.value);
                return None;
            }
            let salt = fresh_salt().ok()?;
            let ph = Placeholder {
                commitment: sealed::commitment(&salt, s.value.as_bytes()),
                key: id,
            };
            placeholders.push((value, ph));
            let at = s.plain.len();
            s.plain.extend_from_slice(&salt);
            s.plain.extend_from_slice(s.value.as_bytes());
            s.openings.push(Opening {
                event,
                // Without markers, every value chosen is a rule's.
                pointer: PendingPointer::Rule(rule?),
                key: id,
                data_key: key,
                plain: at..s.plain.len(),
            });
        }
        wipe_string(&mut s.value);
        sealed::canonical_event_sealed_into(ev, &placeholders, text).ok()?;
        (count(&text.as_bytes()[start..]) == placeholders.len()).then_some(())
    }

    // [`Sealer::seal_event_into`] by a walk of the event that unwraps its
    // markers and refuses reserved members.
    fn seal_event_walked(
        &self,
        ev: &Value,
        event: usize,
        s: &mut SealScratch,
        text: &mut String,
    ) -> Result<(), String> {
        let mut markers = Vec::new();
        let unwrapped;
        let ev = if marked(ev) {
            let mut copy = ev.clone();
            unwrap_markers(&mut copy, &self.rules, &mut markers)?;
            unwrapped = copy;
            &unwrapped
        } else {
            ev
        };
        let chosen = self.chosen(ev, &markers);
        if chosen.is_empty() {
            return stele_core::entry::canonical_event_into(ev, text).map_err(|e| e.to_string());
        }
        s.subject.clear();
        if let Some(v) = lookup(ev, &self.subject) {
            canonical::to_canonical_into(v, &mut s.subject)
                .map_err(|_| "the subject's value is not valid canonical JSON".to_string())?;
        }
        let (id, key) = self
            .key_for(s.subject.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut placeholders = Vec::with_capacity(chosen.len());
        for (toks, rule, value) in chosen {
            s.value.clear();
            // The error names the place, never the value.
            canonical::to_canonical_into(value, &mut s.value).map_err(|_| {
                format!(
                    "the value to seal at {} is not valid canonical JSON",
                    pointer_text(toks)
                )
            })?;
            let salt = fresh_salt().map_err(|e| e.to_string())?;
            let ph = Placeholder {
                commitment: sealed::commitment(&salt, s.value.as_bytes()),
                key: id,
            };
            placeholders.push((value, ph));
            let pointer = match rule {
                Some(i) => PendingPointer::Rule(i),
                None => {
                    let p = pointer_from_tokens(toks);
                    let q = canonical::json_string(&p);
                    PendingPointer::Marker(p, q)
                }
            };
            // The opening, salt || value (FORMAT 13.3).
            let at = s.plain.len();
            s.plain.extend_from_slice(&salt);
            s.plain.extend_from_slice(s.value.as_bytes());
            s.openings.push(Opening {
                event,
                pointer,
                key: id,
                data_key: key,
                plain: at..s.plain.len(),
            });
        }
        // The value's text is in `plain` now: not left behind here.
        wipe_string(&mut s.value);
        sealed::canonical_event_sealed_into(ev, &placeholders, text).map_err(|e| e.to_string())
    }

    /// Encrypts the openings `s.openings[from..]` (all of one entry) for
    /// entry `index`, as [`Sealer::encrypt`] does.
    pub(crate) fn encrypt_from(
        &self,
        index: u64,
        s: &mut SealScratch,
        from: usize,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.encrypt_openings(s, from, &|_| index, out)
    }

    /// Encrypts all the openings of `s` again, each for entry
    /// `first + ` its place in the batch (the batch got other indices than
    /// the ones they were encrypted for).
    pub(crate) fn encrypt_all(
        &self,
        first: u64,
        s: &mut SealScratch,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.encrypt_openings(s, 0, &|o| first + o.event as u64, out)
    }

    // The openings `s.openings[from..]`, each for the entry `index_of` says.
    fn encrypt_openings(
        &self,
        s: &mut SealScratch,
        from: usize,
        index_of: &dyn Fn(&Opening) -> u64,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let SealScratch {
            openings,
            plain,
            ad,
            sealed,
            ..
        } = s;
        for o in &openings[from..] {
            self.encrypt_one(
                index_of(o),
                &o.pointer,
                o.key,
                &o.data_key,
                &plain[o.plain.clone()],
                ad,
                sealed,
                out,
            )?;
        }
        Ok(())
    }

    /// Encrypts the openings of entry `index` into sidecar record lines,
    /// `<key ID> <opening record>\n` ([`Record::to_line`]'s text, written
    /// straight into `out`: this runs for every sealed value appended).
    pub fn encrypt(&self, index: u64, pending: &[Pending], out: &mut Vec<u8>) -> Result<()> {
        let (mut ad, mut sealed) = (Vec::with_capacity(128), Vec::with_capacity(128));
        for p in pending {
            self.encrypt_one(
                index,
                &p.pointer,
                p.key,
                &p.data_key,
                &p.plaintext,
                &mut ad,
                &mut sealed,
                out,
            )?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn encrypt_one(
        &self,
        index: u64,
        pointer: &PendingPointer,
        key: KeyId,
        data_key: &DataKey,
        plaintext: &[u8],
        ad: &mut Vec<u8>,
        sealed: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let (pointer, quoted) = match pointer {
            PendingPointer::Rule(i) => {
                let (p, q) = &self.rule_pointers[*i];
                (p.as_str(), q.as_str())
            }
            PendingPointer::Marker(p, q) => (p.as_str(), q.as_str()),
        };
        let nonce = fresh_nonce()?;
        sealed::opening_ad_into(&self.origin, index, pointer, ad);
        sealed.clear();
        seal_opening_into(data_key, &nonce, plaintext, ad, sealed)?;
        let mut hex = [0u8; 2 * KEY_ID_LEN];
        for (o, b) in hex.chunks_exact_mut(2).zip(key.0) {
            o[0] = DIGITS[usize::from(b >> 4)];
            o[1] = DIGITS[usize::from(b & 15)];
        }
        out.extend_from_slice(&hex);
        out.extend_from_slice(b" opening ");
        push_decimal(out, index);
        out.push(b' ');
        push_base64(out, sealed);
        out.push(b' ');
        out.extend_from_slice(quoted.as_bytes());
        out.push(b'\n');
        Ok(())
    }

    /// Appends record lines and fdatasyncs them; returns the length before,
    /// for [`Sealer::cut_records`]. Runs before the entries are written.
    pub fn write_records(&self, bytes: &[u8]) -> Result<u64> {
        let mut g = self.records.lock().unwrap();
        let p = self.records_path();
        if g.is_none() {
            self.ensure_dirs()?;
            let f = crate::fs::open_private_rw(&p).map_err(|e| io("open", &p, e))?;
            let len = f.metadata().map_err(|e| io("stat", &p, e))?.len();
            sync_dir(&*self.fs, &self.dir)?;
            *g = Some((f, len));
        }
        let (f, len) = g.as_mut().expect("opened");
        let before = *len;
        // A failed or partial write leaves bytes past `len`: the next write
        // goes over them, and a reopen cuts what no entry owns.
        self.fs
            .write_at(FileRole::Sealed, f, bytes, before)
            .map_err(|e| io("write", &p, e))?;
        self.fs
            .sync_data(FileRole::Sealed, f)
            .map_err(|e| io("fdatasync", &p, e))?;
        *len += bytes.len() as u64;
        Ok(before)
    }

    /// Cuts the records back to `len` (the entries they open were not written).
    pub fn cut_records(&self, len: u64) -> Result<()> {
        let mut g = self.records.lock().unwrap();
        if let Some((f, l)) = g.as_mut() {
            let p = self.records_path();
            self.fs
                .set_len(FileRole::Sealed, f, len)
                .map_err(|e| io("truncate", &p, e))?;
            self.fs
                .sync_data(FileRole::Sealed, f)
                .map_err(|e| io("fdatasync", &p, e))?;
            *l = len;
        }
        Ok(())
    }

    /// Forgets a subject (its canonical JSON): records its key ID as
    /// forgotten, then shreds its data key and every wrap. Returns the key ID.
    pub fn forget(&self, subject: &[u8]) -> Result<KeyId> {
        self.forget_key(subject, None)
    }

    /// The key ID of a subject's data key, changing nothing: what
    /// [`Sealer::forget`] would destroy (its error if there is none).
    pub fn key_of(&self, subject: &[u8]) -> Result<KeyId> {
        let mut st = self.state.lock().unwrap();
        let tag = self.subject_tag(&mut st, subject)?;
        let p = self.dir.join("keys").join(stele_core::note::hex(&tag));
        self.key_file_id(&p)
    }

    // The error names the log's subject pointer and the form a subject
    // takes (red-team: README's recipe forgot `{"email":…}` under the
    // default subject /actor, which missed entries whose actor object had
    // another member); never the value given.
    fn key_file_id(&self, p: &Path) -> Result<KeyId> {
        read_key_file(p)?.map(|(id, _)| id).ok_or_else(|| {
            let ptr: String = self
                .subject
                .iter()
                .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
                .collect();
            Error::Sealed(format!(
                "no data key for that subject (never seen, or already forgotten). This log's data subject is the value at {} of each event (stele.json \"subject\"): give that whole value as the events hold it: a string (user@example.com) when the pointer names one; JSON with every member ('{{\"email\":…,\"role\":…}}') when it names an object, whose entries with other members are other subjects",
                canonical::quote(&ptr)
            ))
        })
    }

    /// [`Sealer::forget`] of the key `expect` ([`Sealer::key_of`]), if given:
    /// an error, and nothing destroyed, when the subject's key is another.
    pub fn forget_key(&self, subject: &[u8], expect: Option<KeyId>) -> Result<KeyId> {
        let mut st = self.state.lock().unwrap();
        let tag = self.subject_tag(&mut st, subject)?;
        let name = stele_core::note::hex(&tag);
        let p = self.dir.join("keys").join(&name);
        let id = self.key_file_id(&p)?;
        if expect.is_some_and(|e| e != id) {
            return Err(Error::Sealed(
                "the subject's data key changed while it was being forgotten; run forget again"
                    .into(),
            ));
        }
        // 1. The forget list (durable), so a crash below still exports "forgotten".
        if let Err(e) = self.list_forgotten(&mut st, id) {
            // The key file is read again on next use.
            let _ = st.keys.remove(&tag);
            return Err(e);
        }
        let _ = self.changes.fetch_add(1, Ordering::SeqCst);
        // From here the key is forgotten whatever happens below: exports say
        // so (and carry no wrap of it), and a new value of the subject gets
        // a new key. A failure below is finished by running forget again.
        let _ = st.keys.remove(&tag);
        // 2. The wraps, then the key.
        let _ = self.shred_wraps(id)?;
        shred_with(&*self.fs, &p)?;
        Ok(id)
    }

    /// Whether [`Sealer::redact`] would succeed (entry `index` has an
    /// opening at `pointer`), changing nothing. Reads a few KB of the
    /// records (bisection), whatever their size.
    pub fn check_redact(&self, index: u64, pointer: &str) -> Result<()> {
        let _g = self.records.lock().unwrap();
        self.has_opening(index, pointer)
    }

    // Whether entry `index` has an opening at `pointer` (bisection).
    fn opening_at(&self, index: u64, pointer: &str) -> Result<bool> {
        let named = |i: u64, p: &str| i == index && p == pointer;
        Ok(records_of(&self.records_path(), index)?
            .iter()
            .any(|l| redacted_line(l, named).is_some()))
    }

    fn has_opening(&self, index: u64, pointer: &str) -> Result<()> {
        if self.opening_at(index, pointer)? {
            return Ok(());
        }
        Err(Error::Sealed(format!(
            "entry {index} has no opening at {}",
            canonical::quote(pointer)
        )))
    }

    /// Replaces the opening of `pointer` in entry `index` by a `redacted`
    /// record: writes the new records file, renames it into place, then
    /// overwrites the old file's bytes ([`redact_records_file`]'s rewrite,
    /// without its scan: `has_opening` found the opening; a line at
    /// a time, so memory stays flat whatever the records' size; it read
    /// the whole file, and built its copy, in memory).
    pub fn redact(&self, index: u64, pointer: &str) -> Result<()> {
        let mut g = self.records.lock().unwrap();
        self.has_opening(index, pointer)?;
        let p = self.records_path();
        let len = match g.as_ref() {
            Some((_, len)) => *len,
            None => std::fs::metadata(&p).map_err(|e| io("stat", &p, e))?.len(),
        };
        let named: Redactions = [(index, pointer.to_string())].into();
        let done = rewrite_records(&*self.fs, &self.dir, len, &named, false);
        // Once the new file is renamed into place, appends go to it even if
        // a later step failed (a handle on the unlinked old file would take
        // their openings, acknowledged, into a file nobody reads again).
        let renamed = match (g.as_ref(), std::fs::metadata(&p)) {
            (Some((f, _)), Ok(now)) => {
                use std::os::unix::fs::MetadataExt;
                f.metadata().map_or(true, |held| {
                    (held.dev(), held.ino()) != (now.dev(), now.ino())
                })
            }
            (None, Ok(_)) => true,
            (_, Err(_)) => false,
        };
        if renamed {
            let _ = self.changes.fetch_add(1, Ordering::SeqCst);
            let f = crate::fs::open_own(OpenOptions::new().read(true).write(true), &p)
                .map_err(|e| io("open", &p, e))?;
            let len = f.metadata().map_err(|e| io("stat", &p, e))?.len();
            *g = Some((f, len));
        }
        match done {
            Err(e) if renamed => Err(Error::Sealed(format!(
                "the opening is gone from the records, but a step after it failed: {e} (the old records file's bytes may stay on disk until reused)"
            ))),
            Err(e) => Err(Error::Sealed(format!("{e}; the records are unchanged"))),
            Ok(_) => Ok(()),
        }
    }

    /// How many forgets and redactions this sealer has done since it was
    /// opened: a digest of a request body kept in memory is good for
    /// telling a retry only while this has not changed (a plain hash of a
    /// body confirms a guess of a value in it after the value is gone).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// Whether `sent` (an event as a client sent it) is the event sealed
    /// into entry `index`, whose event is `stored` (both without the
    /// writer member): equal but for the sealed places (FORMAT 13.2), the
    /// same places sealed, and each value there the one its opening holds
    /// (read with the subject's data key and checked against the
    /// commitment). [`Compared::Unreadable`] when an opening of the entry
    /// is gone (its data key forgotten, the value redacted): decided from
    /// the stored state alone, whatever `sent` holds at the sealed places,
    /// so that a retry cannot confirm a guess of a value that is gone.
    /// Only for a log whose keys are in its sidecar (a cluster's:
    /// `crate::cluster::Cluster::compare_retry`, with the same two steps).
    pub fn compare_event(&self, index: u64, stored: &Value, sent: &Value) -> Result<Compared> {
        if self.source.is_some() {
            return Err(Error::Sealed(
                "compare_event needs a sidecar's data keys".into(),
            ));
        }
        let sealed = match self.compare_shape(stored, sent) {
            Shape::Decided(c) => return Ok(c),
            Shape::Sealed(s) => s,
        };
        // Every opening still there (from the stored state only).
        {
            let mut st = self.state.lock().unwrap();
            for (_, ph) in &sealed.places {
                if self.is_forgotten(&mut st, &ph.key)? {
                    return Ok(Compared::Unreadable);
                }
            }
        }
        let records = records_of(&self.records_path(), index)?;
        // The subject's key, never made here. Its key is not forgotten (see
        // above), so another key, or none, is another subject.
        let key = {
            let mut st = self.state.lock().unwrap();
            let tag = self.subject_tag(&mut st, sealed.subject.as_bytes())?;
            match st.keys.get(&tag) {
                Some(k) => Some(*k),
                None => read_key_file(&self.dir.join("keys").join(stele_core::note::hex(&tag)))?,
            }
        };
        Ok(sealed.compare(&self.origin, index, records.iter().map(Vec::as_slice), key))
    }

    /// The first step of comparing a retried event `sent` with the stored
    /// event of its entry (both without the writer member), from the
    /// events alone: decided if they differ outside the sealed places or
    /// seal other places, or if nothing is sealed; else what the openings
    /// must say ([`SealedPlaces::compare`]).
    pub(crate) fn compare_shape(&self, stored: &Value, sent: &Value) -> Shape {
        let Ok(phs) = sealed::find_placeholders(stored) else {
            return Shape::Decided(Compared::Other);
        };
        let mut ev = sent.clone();
        let mut markers = Vec::new();
        if marked(&ev) && unwrap_markers(&mut ev, &self.rules, &mut markers).is_err() {
            return Shape::Decided(Compared::Other);
        }
        // The same places sealed.
        let mut places: Vec<String> = self
            .chosen(&ev, &markers)
            .into_iter()
            .map(|(t, _, _)| pointer_from_tokens(t))
            .collect();
        let mut want: Vec<&str> = phs.iter().map(|(p, _)| p.as_str()).collect();
        places.sort();
        want.sort_unstable();
        if places != want {
            return Shape::Decided(Compared::Other);
        }
        if phs.is_empty() {
            return Shape::Decided(if ev == *stored {
                Compared::Same
            } else {
                Compared::Other
            });
        }
        let subject = match lookup(&ev, &self.subject) {
            Some(v) => match canonical::to_canonical(v) {
                Ok(t) => t,
                Err(_) => return Shape::Decided(Compared::Other),
            },
            None => String::new(),
        };
        // Everything else equal: the sent values, placeholders in their stead.
        let mut texts = Vec::with_capacity(phs.len());
        for (ptr, ph) in &phs {
            let Some(slot) = sealed::pointer_tokens(ptr)
                .ok()
                .and_then(|t| lookup_mut(&mut ev, &t))
            else {
                return Shape::Decided(Compared::Other);
            };
            let v = std::mem::replace(slot, ph.to_value());
            match canonical::to_canonical(&v) {
                Ok(t) => texts.push(t),
                Err(_) => return Shape::Decided(Compared::Other),
            }
        }
        if ev != *stored {
            return Shape::Decided(Compared::Other);
        }
        Shape::Sealed(SealedPlaces {
            places: phs,
            texts,
            subject,
        })
    }
}

/// [`Sealer::compare_shape`]'s answer.
pub(crate) enum Shape {
    /// Decided from the events alone.
    Decided(Compared),
    /// Equal but for the sealed places: the openings decide.
    Sealed(SealedPlaces),
}

/// A retried event's sealed places, equal to the stored event elsewhere.
pub(crate) struct SealedPlaces {
    /// The stored placeholders, by pointer.
    pub(crate) places: Vec<(String, Placeholder)>,
    /// The canonical JSON of the sent value at each place, in that order.
    texts: Vec<String>,
    /// The canonical JSON of the sent event's subject ("" without one).
    pub(crate) subject: String,
}

impl std::fmt::Debug for SealedPlaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedPlaces(..)")
    }
}

impl Drop for SealedPlaces {
    fn drop(&mut self) {
        for t in &mut self.texts {
            wipe_string(t);
        }
        wipe_string(&mut self.subject);
    }
}

impl SealedPlaces {
    /// The second step, once the caller has found none of the places'
    /// keys forgotten: the answer given the entry's record lines
    /// `records` (`<key ID> <record>`, with or without their `\n`) and
    /// the sent subject's data key (`None` if it has none).
    pub(crate) fn compare<'r>(
        &self,
        origin: &str,
        index: u64,
        records: impl IntoIterator<Item = &'r [u8]>,
        key: Option<(KeyId, DataKey)>,
    ) -> Compared {
        let mut sealed_at: HashMap<String, Vec<u8>> = HashMap::new();
        for line in records {
            if let Some((_, rec)) = split_record(line.strip_suffix(b"\n").unwrap_or(line))
                && let Ok(Record::Opening {
                    sealed, pointer, ..
                }) = Record::parse(rec)
            {
                let _ = sealed_at.insert(pointer, sealed);
            }
        }
        if self.places.iter().any(|(p, _)| !sealed_at.contains_key(p)) {
            return Compared::Unreadable;
        }
        let mut same = true;
        for ((ptr, ph), text) in self.places.iter().zip(&self.texts) {
            let Some((_, key)) = key.filter(|(id, _)| *id == ph.key) else {
                return Compared::Other;
            };
            let ad = sealed::opening_ad(origin, index, ptr);
            let Some(mut pt) = stele_seal::open_opening(&key, &sealed_at[ptr], &ad) else {
                return Compared::Unreadable;
            };
            let r = sealed::check_opening(ph, &pt).map(|v| v == text.as_bytes());
            pt.fill(0);
            match r {
                Ok(true) => {}
                Ok(false) => same = false,
                Err(_) => return Compared::Unreadable,
            }
        }
        if same {
            Compared::Same
        } else {
            Compared::Other
        }
    }
}

/// What [`Sealer::compare_event`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compared {
    /// The same event.
    Same,
    /// Another event.
    Other,
    /// An opening of the entry is gone (forgotten or redacted): the
    /// sealed values cannot be compared.
    Unreadable,
}

/// The one rule of `stele redact` (docs/FORMAT.md 13.7), applied by the
/// log's writer and by every mirror and restore of it: the record line
/// `line` (with or without its `\n`), if it is the opening of a pointer
/// in an entry that `named(entry, pointer)` says was redacted, as its
/// `redacted` record line (with a `\n`); `None` for any other line.
pub(crate) fn redacted_line(line: &[u8], named: impl Fn(u64, &str) -> bool) -> Option<Vec<u8>> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let (kid, rec) = split_record(body)?;
    // Cheap test first: most lines are no opening of a named entry.
    if !rec.starts_with(b"opening ") {
        return None;
    }
    let Ok(Record::Opening { index, pointer, .. }) = Record::parse(rec) else {
        return None;
    };
    if !named(index, &pointer) {
        return None;
    }
    let red = Record::Redacted { index, pointer };
    Some(format!("{kid} {}\n", red.to_line()).into_bytes())
}

/// Record lines (`<key ID> <record>\n`…) with the opening of `pointer` in
/// entry `index` replaced by a `redacted` record; an error if there is none.
pub(crate) fn redacted_records(old: &[u8], index: u64, pointer: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(old.len());
    let mut found = false;
    for line in old.split_inclusive(|&b| b == b'\n') {
        match redacted_line(line, |i, p| i == index && p == pointer) {
            Some(red) => {
                out.extend_from_slice(&red);
                found = true;
            }
            None => out.extend_from_slice(line),
        }
    }
    if !found {
        return Err(Error::Sealed(format!(
            "entry {index} has no opening at {}",
            canonical::quote(pointer)
        )));
    }
    Ok(out)
}

/// Entries and pointers whose openings were redacted (verified
/// `stele.redact` events), for [`redact_records_file`].
pub type Redactions = std::collections::HashSet<(u64, String)>;

/// Applies [`redacted_line`] to the first `len` bytes of `sidecar/records`
/// (a log's, a mirror's or a restored log's), reading and writing a line at a time
/// (memory: one line and a 1 MiB buffer): when an opening is named, the
/// new file is written as `.records.tmp` (0600), fdatasync'ed, renamed
/// over the records, the directory fsync'ed, then the old file's bytes
/// overwritten with zeros and fdatasync'ed.
/// Returns the new length, or `None` when no opening is named (nothing is
/// written). A crash anywhere leaves the old records or the new ones whole.
pub(crate) fn redact_records_file(
    fs: &dyn Fs,
    sidecar: &Path,
    len: u64,
    named: &Redactions,
) -> Result<Option<u64>> {
    rewrite_records(fs, sidecar, len, named, true)
}

// `redact_records_file`; without `scan_first` when the caller knows an
// opening is named (the log's redact found it by bisection): the read-only
// first pass would read the whole file once more for nothing.
fn rewrite_records(
    fs: &dyn Fs,
    sidecar: &Path,
    len: u64,
    named: &Redactions,
    scan_first: bool,
) -> Result<Option<u64>> {
    if named.is_empty() {
        return Ok(None);
    }
    let p = sidecar.join("records");
    let is_named = |i: u64, ptr: &str| named.contains(&(i, ptr.to_string()));
    let lines = |each: &mut dyn FnMut(&[u8]) -> Result<()>| -> Result<()> {
        let f = crate::fs::open_own_read(&p).map_err(|e| io("open", &p, e))?;
        let mut r = BufReader::with_capacity(1 << 20, f.take(len));
        let mut line = Vec::new();
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)
                .map_err(|e| io("read", &p, e))?
                == 0
            {
                return Ok(());
            }
            each(&line)?;
        }
    };
    // A first pass reads only: most chunks' redactions were applied by
    // the origin before the mirror copied the records.
    if scan_first {
        let mut any = false;
        lines(&mut |l| {
            any |= redacted_line(l, is_named).is_some();
            Ok(())
        })?;
        if !any {
            return Ok(None);
        }
    }
    let tmp = sidecar.join(".records.tmp");
    let t = crate::fs::create_temp(&tmp, 0o600).map_err(|e| io("create", &tmp, e))?;
    let mut out = Vec::with_capacity(1 << 20);
    let mut at = 0u64;
    lines(&mut |l| {
        match redacted_line(l, is_named) {
            Some(red) => out.extend_from_slice(&red),
            None => out.extend_from_slice(l),
        }
        if out.len() >= 1 << 20 {
            fs.write_at(FileRole::Sealed, &t, &out, at)
                .map_err(|e| io("write", &tmp, e))?;
            at += out.len() as u64;
            out.clear();
        }
        Ok(())
    })?;
    fs.write_at(FileRole::Sealed, &t, &out, at)
        .map_err(|e| io("write", &tmp, e))?;
    at += out.len() as u64;
    fs.sync_data(FileRole::Sealed, &t)
        .map_err(|e| io("fdatasync", &tmp, e))?;
    drop(t);
    let old =
        crate::fs::open_own(OpenOptions::new().write(true), &p).map_err(|e| io("open", &p, e))?;
    let old_len = old.metadata().map_err(|e| io("stat", &p, e))?.len();
    fs.rename(FileRole::Sealed, &tmp, &p)
        .map_err(|e| io("rename", &p, e))?;
    sync_dir(fs, sidecar)?;
    // The old inode (unlinked by the rename): its openings overwritten.
    let zeros = vec![0u8; (old_len as usize).min(1 << 20)];
    let mut z = 0u64;
    while z < old_len {
        let n = ((old_len - z) as usize).min(zeros.len());
        fs.write_at(FileRole::Sealed, &old, &zeros[..n], z)
            .map_err(|e| io("overwrite", &p, e))?;
        z += n as u64;
    }
    fs.sync_data(FileRole::Sealed, &old)
        .map_err(|e| io("overwrite", &p, e))?;
    Ok(Some(at))
}

/// One wrap file of a sidecar's `wraps/` directory: `KID.RECIPIENT.age`.
#[derive(Debug)]
pub(crate) struct WrapFile {
    pub(crate) kid: String,
    pub(crate) key: KeyId,
    pub(crate) recipient: String,
    pub(crate) path: PathBuf,
}

/// The wrap files in `wraps`, in name order (none when it does not exist);
/// names of any other shape are skipped.
pub(crate) fn wrap_files(wraps: &Path) -> Vec<WrapFile> {
    let mut names: Vec<String> = match std::fs::read_dir(wraps) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
        .into_iter()
        .filter_map(|name| wrap_file(wraps, &name))
        .collect()
}

/// [`wrap_files`] of the keys `kids` (hex) to `recipients` only, found by
/// name (in the same order): no listing of the directory, which holds a
/// wrap per subject and auditor.
pub(crate) fn wrap_files_of<'a>(
    wraps: &Path,
    kids: impl IntoIterator<Item = &'a String>,
    recipients: &[String],
) -> Vec<WrapFile> {
    // Names only of plain words: a recipient is an age1… bech32 string, so
    // nothing else (a hand-edited auditors file) can name a path.
    let plain = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric());
    let mut names: Vec<String> = kids
        .into_iter()
        .filter(|k| plain(k))
        .flat_map(|k| {
            recipients
                .iter()
                .filter(|r| plain(r))
                .map(move |r| format!("{k}.{r}.age"))
        })
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| std::fs::symlink_metadata(wraps.join(n)).is_ok())
        .filter_map(|name| wrap_file(wraps, &name))
        .collect()
}

// `<key ID hex>.<recipient>.age` in `wraps`.
fn wrap_file(wraps: &Path, name: &str) -> Option<WrapFile> {
    let (kid, recipient) = name.strip_suffix(".age")?.split_once('.')?;
    Some(WrapFile {
        key: KeyId::from_hex(kid)?,
        kid: kid.to_owned(),
        recipient: recipient.to_owned(),
        path: wraps.join(name),
    })
}

// (key ID text, record bytes) -> "<32 hex key ID> <record>"
fn rec_line(kid: &str, rec: &[u8]) -> Vec<u8> {
    let mut l = Vec::with_capacity(kid.len() + 1 + rec.len());
    l.extend_from_slice(kid.as_bytes());
    l.push(b' ');
    l.extend_from_slice(rec);
    l
}

// "<32 hex key ID> <record>" -> (key ID text, record bytes)
pub(crate) fn split_record(line: &[u8]) -> Option<(&str, &[u8])> {
    let kid = std::str::from_utf8(line.get(..2 * KEY_ID_LEN)?).ok()?;
    let _ = KeyId::from_hex(kid)?;
    let rest = line.get(2 * KEY_ID_LEN..)?.strip_prefix(b" ")?;
    Some((kid, rest))
}

/// Reads the sidecar's records file `path` (its owner's, as every sidecar
/// file), a complete line at a time, in entry order, from the records of
/// entry `first` on: `each(index, key ID, line with its `\n`)` for each
/// record line; `Ok(false)` from it stops the reading. A missing file has
/// no records. The reading starts where a bisection of byte offsets finds
/// entry `first` ([`records_offset`]), so the records of a range near the
/// end of a large file cost what they hold, not the file (an export of one
/// entry of 950k read 299 MB twice; a mirror's poll once). A few records
/// of earlier entries may come first.
pub(crate) fn each_record_from(
    path: &Path,
    first: u64,
    mut each: impl FnMut(u64, &str, &[u8]) -> Result<bool>,
) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let f = match crate::fs::open_own_read(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("open", path, e)),
    };
    let start = records_offset(&f, first).map_err(|e| io("read", path, e))?;
    let mut r = BufReader::new(f);
    let _ = r
        .seek(SeekFrom::Start(start))
        .map_err(|e| io("read", path, e))?;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r
            .read_until(b'\n', &mut line)
            .map_err(|e| io("read", path, e))?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(());
        }
        if let (Some(i), Some((kid, _))) = (record_index(&line), split_record(&line[..n - 1]))
            && !each(i, kid, &line)?
        {
            return Ok(());
        }
    }
}

/// The record lines (with their `\n`) of entry `index` in the records file
/// `path` (in entry order): found by bisecting byte offsets, so a lookup
/// near the end of a large file reads a few KB, not the file.
pub(crate) fn records_of(path: &Path, index: u64) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    each_record_from(path, index, |i, _, line| {
        if i == index {
            out.push(line.to_vec());
        }
        Ok(i <= index)
    })?;
    Ok(out)
}

/// Where to start reading the records file `f` (in entry order) for the
/// records of entry `index` and later: the start of a line at or before
/// the first of them, found by bisecting byte offsets (a few KB read).
fn records_offset(f: &File, index: u64) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    if index == 0 {
        return Ok(0);
    }
    let len = f.metadata()?.len();
    let mut r = BufReader::new(f);
    let mut skipped = Vec::new();
    // Positions `r` at the first line starting at or after `at`.
    let mut line_from = |r: &mut BufReader<&File>, at: u64| -> std::io::Result<()> {
        let _ = r.seek(SeekFrom::Start(at.saturating_sub(1)))?;
        if at > 0 {
            skipped.clear();
            let _ = r.read_until(b'\n', &mut skipped)?;
        }
        Ok(())
    };
    // The first line starting at or after `lo` is of an earlier entry (or
    // lo = 0); the first one at or after `hi` is not (or there is none).
    let (mut lo, mut hi) = (0u64, len);
    let mut probe = Vec::new();
    while hi - lo > 8192 {
        let mid = lo + (hi - lo) / 2;
        line_from(&mut r, mid)?;
        probe.clear();
        let _ = r.read_until(b'\n', &mut probe)?;
        match record_index(&probe).filter(|_| probe.last() == Some(&b'\n')) {
            Some(i) if i < index => lo = mid,
            _ => hi = mid,
        }
    }
    line_from(&mut r, lo)?;
    r.stream_position()
}

/// How many bytes of the records file `f` (`len` bytes) to keep for a log of
/// `size` entries: up to the end of its last complete record line of an
/// entry below `size`. Read backwards from the end, in a window that
/// doubles, so the cost follows what is cut, not the file's size. A line
/// that is not a record is cut only when no record of the log follows it
/// (records are in entry order: a crash leaves orphans and a torn line at
/// the end only); one further up is kept, for the readers to report.
fn records_kept(f: &File, len: u64, size: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut window: u64 = 64 << 10;
    loop {
        let from = len.saturating_sub(window);
        let mut buf = vec![0u8; (len - from) as usize];
        f.read_exact_at(&mut buf, from)?;
        // Complete lines end with '\n'; the bytes after the last are torn.
        let mut end = memchr::memrchr(b'\n', &buf).map_or(0, |at| at + 1);
        while end > 0 {
            let start = match memchr::memrchr(b'\n', &buf[..end - 1]) {
                Some(at) => at + 1,
                None if from == 0 => 0,
                None => break, // the line starts before the window
            };
            if record_index(&buf[start..end]).is_some_and(|i| i < size) {
                return Ok(from + end as u64);
            }
            end = start;
        }
        if from == 0 {
            return Ok(0);
        }
        window = window.saturating_mul(2);
    }
}

pub(crate) fn record_index(line: &[u8]) -> Option<u64> {
    let (_, rec) = split_record(line.strip_suffix(b"\n").unwrap_or(line))?;
    let text = std::str::from_utf8(rec).ok()?;
    let mut w = text.split(' ');
    let _ = w.next();
    w.next()?.parse().ok()
}

fn lookup<'a>(v: &'a Value, toks: &[String]) -> Option<&'a Value> {
    let mut v = v;
    for t in toks {
        v = match v {
            Value::Object(m) => m.get(t)?,
            Value::Array(a) => a.get(array_index(t)?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn lookup_mut<'a>(v: &'a mut Value, toks: &[String]) -> Option<&'a mut Value> {
    let mut v = v;
    for t in toks {
        v = match v {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => a.get_mut(array_index(t)?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn array_index(t: &str) -> Option<usize> {
    if t.is_empty() || (t.len() > 1 && t.starts_with('0')) || !t.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    t.parse().ok()
}

// The RFC 6901 pointer of reference tokens.
fn pointer_from_tokens(toks: &[String]) -> String {
    let mut p = String::new();
    for t in toks {
        p.push('/');
        p.push_str(&sealed::escape_token(t));
    }
    p
}

fn pointer_text(toks: &[String]) -> String {
    canonical::quote(&pointer_from_tokens(toks))
}

/// Whether a seal marker or a placeholder member is anywhere in `v`.
pub(crate) fn marked(v: &Value) -> bool {
    match v {
        // One pass over the members (not two map lookups, then the values).
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k == MARKER_MEMBER || k == PLACEHOLDER_MEMBER || marked(v)),
        Value::Array(a) => a.iter().any(marked),
        _ => false,
    }
}

// Replaces each `{"stele.seal": V}` by V, noting its place; refuses
// `stele.sealed` members and markers with other members. A refusal names
// the place up to the value that would be sealed there (by a marker or one
// of `rules`), never a member name inside it: that is part of the value.
fn unwrap_markers(
    v: &mut Value,
    rules: &[Vec<String>],
    found: &mut Vec<Vec<String>>,
) -> Result<(), String> {
    walk_markers(v, &mut Vec::new(), None, rules, found)
}

// `sealed_at`: the depth of the outermost marker around `v`, if any.
fn walk_markers(
    v: &mut Value,
    path: &mut Vec<String>,
    sealed_at: Option<usize>,
    rules: &[Vec<String>],
    found: &mut Vec<Vec<String>>,
) -> Result<(), String> {
    let place = |path: &[String]| {
        let cut = rules
            .iter()
            .filter(|r| path.starts_with(r))
            .map(Vec::len)
            .chain(sealed_at)
            .min();
        match cut {
            Some(n) if n < path.len() => {
                format!(
                    "{} (inside the value sealed there)",
                    pointer_text(&path[..n])
                )
            }
            _ => pointer_text(path),
        }
    };
    match v {
        Value::Object(m) => {
            if m.contains_key(PLACEHOLDER_MEMBER) {
                return Err(format!(
                    "the member {PLACEHOLDER_MEMBER:?} at {} is reserved for placeholders that stele writes",
                    place(path)
                ));
            }
            if m.contains_key(MARKER_MEMBER) {
                if m.len() != 1 || path.is_empty() {
                    return Err(format!(
                        "the seal marker at {} must be an object with the one member {MARKER_MEMBER:?} inside the event",
                        place(path)
                    ));
                }
                if path.first().is_some_and(|t| t == "type") {
                    // Unwrapped, a sealed type could read as one of the
                    // log's own (stele.forget…), which users may not write;
                    // no part of it is sealed, as no rule may start there.
                    return Err(format!(
                        "the seal marker at {}: the event's type cannot be sealed, nor any part of it (FORMAT 13.9)",
                        place(path)
                    ));
                }
                let inner = m.remove(MARKER_MEMBER).expect("present");
                *v = inner;
                found.push(path.clone());
                let at = sealed_at.unwrap_or(path.len());
                return walk_markers(v, path, Some(at), rules, found);
            }
            for (k, child) in m.iter_mut() {
                path.push(k.clone());
                walk_markers(child, path, sealed_at, rules, found)?;
                let _ = path.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter_mut().enumerate() {
                path.push(i.to_string());
                walk_markers(child, path, sealed_at, rules, found)?;
                let _ = path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads an age identity file for the CLI, refusing one that group or
/// others can read (the signing key's rule).
pub fn load_identities(path: &Path) -> Result<Vec<stele_seal::Identity>> {
    let regular = |m: &std::fs::Metadata| -> Result<()> {
        if m.is_file() {
            return Ok(());
        }
        // A FIFO or a device would be read without end (or block).
        Err(Error::Sealed(format!(
            "identity file {}: not a regular file",
            path.display()
        )))
    };
    // Before opening too: opening a FIFO blocks until someone writes to it.
    regular(&std::fs::metadata(path).map_err(|e| io("stat", path, e))?)?;
    let mut f = File::open(path).map_err(|e| io("open", path, e))?;
    let meta = f.metadata().map_err(|e| io("stat", path, e))?;
    regular(&meta)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyPermissions {
            path: path.into(),
            mode,
        });
    }
    let mut text = String::new();
    let _ = (&mut f)
        .take(stele_seal::MAX_IDENTITY_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| io("read", path, e))?;
    if text.len() > stele_seal::MAX_IDENTITY_BYTES {
        return Err(Error::Sealed(format!(
            "identity file {}: longer than {} bytes (an age identity file is about 190)",
            path.display(),
            stele_seal::MAX_IDENTITY_BYTES
        )));
    }
    stele_seal::Identity::parse_file(&text)
        .map_err(|e| Error::Sealed(format!("identity file {}: {e}", path.display())))
}

/// What an export carries of the sidecar: key records up front, then the
/// records of each entry after it.
#[derive(Debug)]
pub struct ExportRecords {
    // The head's lines, each read (a wrap) or made when it is written:
    // holding the wraps themselves cost ~1.3 KB a subject (1.3 GB for an
    // export revealed at a million subjects), a path ~0.1 KB.
    head: Vec<HeadLine>,
    log_dir: PathBuf,
    // The key IDs (hex) whose wraps the head holds: filled as it is
    // written, so no opening goes out under a key whose wrap did not.
    reveal_keys: std::collections::HashSet<String>,
    reader: Option<BufReader<File>>,
    next: Option<(u64, Vec<u8>, String)>,
    // Redactions under way (`pending`): their openings go out as
    // `redacted`, as they will once the work is finished.
    redacting: Redactions,
}

#[derive(Debug)]
enum HeadLine {
    SealedKey(WrapFile),
    Forgotten(KeyId),
}

/// The entries an export wants: yes or no for each index in the range
/// (none outside it).
pub type Wanted<'a> = (std::ops::Range<u64>, &'a dyn Fn(u64) -> bool);

impl ExportRecords {
    /// The records of the log in `log_dir` for an export revealed to
    /// `reveal` (age1… recipients); `None` if the log has no sidecar.
    pub fn open(log_dir: &Path, reveal: &[String]) -> Result<Option<Self>> {
        Self::open_for(log_dir, reveal, None)
    }

    /// [`ExportRecords::open`] for an export of only the entries `wanted`
    /// says yes to (a range, a selection): its `sealed-key` and `forgotten`
    /// records are those of the key IDs these entries' records use, not
    /// every key of the log (which would hand out data keys of subjects
    /// outside the export, and tell how many subjects the log has). Every
    /// sealed value has a record (its opening, or `redacted`) naming its key
    /// ID, so the records file says which keys are used.
    /// `wanted` comes with the entries it can say yes to (a range: the
    /// records before and after it are not read).
    pub fn open_for(
        log_dir: &Path,
        reveal: &[String],
        wanted: Option<Wanted<'_>>,
    ) -> Result<Option<Self>> {
        let dir = log_dir.join(SIDECAR);
        if !dir.exists() {
            if let Some(r) = reveal.first() {
                return Err(Error::Sealed(format!(
                    "{} is not an auditor of this log (it has no sealed fields yet)",
                    stele_seal::shown_recipient(r)
                )));
            }
            return Ok(None);
        }
        let known = auditors(log_dir)?;
        for r in reveal {
            if !known.contains(r) {
                return Err(Error::Sealed(format!(
                    "{} is not an auditor of this log (add it first: stele auditor add DIR RECIPIENT)",
                    stele_seal::shown_recipient(r)
                )));
            }
        }
        let rp = dir.join("records");
        // The key IDs (hex) the wanted entries' records use.
        let first = wanted.as_ref().map_or(0, |(r, _)| r.start);
        let used: Option<std::collections::HashSet<String>> = match wanted {
            None => None,
            Some((range, wanted)) => {
                let mut used = std::collections::HashSet::new();
                each_record_from(&rp, range.start, |i, kid, _| {
                    if i >= range.end {
                        return Ok(false);
                    }
                    if range.contains(&i) && wanted(i) {
                        let _ = used.insert(kid.to_string());
                    }
                    Ok(true)
                })?;
                Some(used)
            }
        };
        let is_used = |k: &KeyId| used.as_ref().is_none_or(|u| u.contains(&k.to_hex()));
        let mut head = Vec::new();
        // A forgotten key's wraps are never exported, even if a failed
        // forget left one on disk, nor those of a forget under way.
        let forgotten = export_forgotten_ids(&dir)?;
        // Only the wraps asked for are looked at: none without reveal-to,
        // and for a range or selection those of its keys, by name (listing
        // every wrap of the log cost a one-entry export 40-50 ms at 30k
        // subjects, against ~2 ms without sealed fields).
        let wraps = match &used {
            _ if reveal.is_empty() => Vec::new(),
            None => wrap_files(&dir.join("wraps")),
            Some(u) => wrap_files_of(&dir.join("wraps"), u, reveal),
        };
        for w in wraps {
            if forgotten.contains(&w.key) || !reveal.contains(&w.recipient) || !is_used(&w.key) {
                continue;
            }
            head.push(HeadLine::SealedKey(w));
        }
        let mut forgotten: Vec<KeyId> = forgotten.into_iter().filter(is_used).collect();
        forgotten.sort();
        head.extend(forgotten.into_iter().map(HeadLine::Forgotten));
        let reader = match File::open(&rp) {
            Ok(f) => {
                use std::io::{Seek, SeekFrom};
                let at = records_offset(&f, first).map_err(|e| io("read", &rp, e))?;
                let mut r = BufReader::new(f);
                let _ = r
                    .seek(SeekFrom::Start(at))
                    .map_err(|e| io("read", &rp, e))?;
                Some(r)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io("open", &rp, e)),
        };
        let mut r = Self {
            head,
            log_dir: log_dir.to_path_buf(),
            reveal_keys: std::collections::HashSet::new(),
            reader,
            next: None,
            redacting: read_intents(&dir)?
                .into_iter()
                .filter_map(|i| match i {
                    Intent::Redact { entry, pointer, .. } => Some((entry, pointer)),
                    Intent::Forget { .. } => None,
                })
                .collect(),
        };
        r.advance()?;
        Ok(Some(r))
    }

    /// Writes the `sealed-key` and `forgotten` lines that follow the
    /// header to `out`, a line at a time, each wrap read as it is written;
    /// it comes before the entries ([`ExportRecords::write_for`] writes
    /// openings only under the keys whose wraps it wrote). A wrap gone
    /// since [`ExportRecords::open_for`] because a forget or an auditor's
    /// removal ran meanwhile is left out, and so are the openings under
    /// its key: they are sealed in this export, as they are forgotten in
    /// the next. Any other wrap gone is an error naming it.
    pub fn write_head(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        // The forget list and the auditors, read again once a wrap is gone.
        let mut now: Option<(std::collections::HashSet<KeyId>, Vec<String>)> = None;
        for line in &self.head {
            let text = match line {
                HeadLine::SealedKey(w) => match crate::fs::read_own(&w.path) {
                    Ok(wrap) => {
                        let _ = self.reveal_keys.insert(w.kid.clone());
                        Record::SealedKey { key: w.key, wrap }.to_line()
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let (forgotten, auditors) = match &mut now {
                            Some(n) => n,
                            None => now.insert((
                                export_forgotten_ids(&self.log_dir.join(SIDECAR))?,
                                auditors(&self.log_dir)?,
                            )),
                        };
                        if forgotten.contains(&w.key) || !auditors.contains(&w.recipient) {
                            continue;
                        }
                        return Err(io("read", &w.path, e));
                    }
                    Err(e) => return Err(io("read", &w.path, e)),
                },
                HeadLine::Forgotten(k) => Record::Forgotten(*k).to_line(),
            };
            out(text.as_bytes())?;
            out(b"\n")?;
        }
        Ok(())
    }

    fn advance(&mut self) -> Result<()> {
        self.next = None;
        let Some(r) = self.reader.as_mut() else {
            return Ok(());
        };
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = r
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::Sealed(format!("reading the records: {e}")))?;
            if n == 0 || line.last() != Some(&b'\n') {
                return Ok(());
            }
            let body = &line[..line.len() - 1];
            let Some((kid, rec)) = split_record(body) else {
                continue;
            };
            let Some(i) = record_index(body) else {
                continue;
            };
            self.next = Some((i, rec.to_vec(), kid.to_string()));
            return Ok(());
        }
    }

    /// The index of the next entry with records, if any.
    pub fn peek(&self) -> Option<u64> {
        self.next.as_ref().map(|n| n.0)
    }

    /// Writes the records of entry `index` (openings only for revealed
    /// keys; `redacted` always), skipping records of earlier entries.
    pub fn write_for(&mut self, index: u64, w: &mut dyn Write) -> Result<()> {
        while let Some((i, rec, kid)) = self.next.take() {
            if i > index {
                self.next = Some((i, rec, kid));
                break;
            }
            let red = (!self.redacting.is_empty())
                .then(|| {
                    redacted_line(&rec_line(&kid, &rec), |i, p| {
                        self.redacting.contains(&(i, p.to_string()))
                    })
                })
                .flatten();
            if let Some(red) = red.filter(|_| i == index) {
                // "<key ID> redacted …\n": the record after the key ID.
                w.write_all(&red[2 * KEY_ID_LEN + 1..])
                    .map_err(|e| Error::Sealed(format!("writing the export: {e}")))?;
            } else if i == index
                && (rec.starts_with(b"redacted ") || self.reveal_keys.contains(&kid))
            {
                w.write_all(&rec)
                    .and_then(|()| w.write_all(b"\n"))
                    .map_err(|e| Error::Sealed(format!("writing the export: {e}")))?;
            }
            self.advance()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_kept_cuts_orphans_and_a_torn_line_from_the_tail_only() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("records");
        let kid = "0123456789abcdef0123456789abcdef";
        let rec = |i: u64, pad: usize| format!("{kid} opening {i} {} /p\n", "A".repeat(pad));
        let kept = |text: &str, size: u64| {
            std::fs::write(&p, text).unwrap();
            let f = File::open(&p).unwrap();
            records_kept(&f, text.len() as u64, size).unwrap()
        };
        assert_eq!(kept("", 5), 0);
        // Entries 0..2000, two records each; 200 KiB of orphans (more than
        // the first window) and a torn line after them.
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&rec(i, 40));
            text.push_str(&rec(i, 40));
        }
        let whole = text.len() as u64;
        assert_eq!(kept(&text, 2000), whole);
        assert_eq!(kept(&text, 5000), whole);
        let below = |n: u64| (0..n).map(|i| 2 * rec(i, 40).len() as u64).sum::<u64>();
        assert_eq!(kept(&text, 1999), below(1999));
        assert_eq!(kept(&text, 1), below(1));
        assert_eq!(kept(&text, 0), 0);
        for i in 2000..4000 {
            text.push_str(&rec(i, 40));
        }
        text.push_str(&format!("{kid} opening 1999 AAA"));
        assert_eq!(kept(&text, 2000), whole);
        // A last kept record longer than the window.
        let mut long = text[..whole as usize].to_string();
        long.push_str(&rec(2000, 300_000));
        let upto = long.len() as u64;
        long.push_str(&rec(2001, 10));
        long.push_str("torn");
        assert_eq!(kept(&long, 2001), upto);
        // A line that is not a record: cut at the tail, kept further up
        // (the readers report it; reading forward used to cut everything
        // after it).
        let mut mid = text[..whole as usize].to_string();
        mid.insert_str(below(1000) as usize, "not a record\n");
        assert_eq!(kept(&mid, 2000), mid.len() as u64);
        let mut tail = text[..whole as usize].to_string();
        tail.push_str("not a record\n");
        assert_eq!(kept(&tail, 2000), whole);
        assert_eq!(kept("not a record\n", 2000), 0);
        assert_eq!(
            kept(&format!("{}{}", rec(0, 4), "\n\n"), 1),
            rec(0, 4).len() as u64
        );
    }

    #[test]
    fn records_of_finds_an_entrys_lines_by_bisection() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("records");
        let kid = "0123456789abcdef0123456789abcdef";
        let mut text = String::new();
        // Entries 0..3000 but every fifth, 1 to 3 records each; one with a
        // long record, two with many (more than the bisection's last window).
        let count = |i: u64| match i {
            _ if i % 5 == 3 || i >= 3000 => 0,
            1000 | 2000 => 700,
            _ => i % 3 + 1,
        };
        for i in 0..3000u64 {
            for j in 0..count(i) {
                let pad = if i == 1500 {
                    "A".repeat(20_000)
                } else {
                    "AAAA".into()
                };
                text.push_str(&format!("{kid} opening {i} {pad} /p{j}\n"));
            }
        }
        text.push_str(&format!("{kid} opening 3000 AAAA /cut"));
        std::fs::write(&p, &text).unwrap();
        for i in [
            0u64, 1, 2, 3, 4, 999, 1000, 1001, 1499, 1500, 1501, 2000, 2998, 2999, 3000, 5000,
        ] {
            let got = records_of(&p, i).unwrap();
            let want: Vec<Vec<u8>> = text
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n') && l.split(' ').nth(2) == Some(&*i.to_string()))
                .map(|l| l.as_bytes().to_vec())
                .collect();
            assert_eq!(got.len() as u64, count(i), "entry {i}");
            assert!(got == want, "entry {i}");
        }
        assert!(records_of(&tmp.path().join("none"), 0).unwrap().is_empty());
    }

    use super::*;

    // Wraps found by name are those of plain key IDs and recipients only: a
    // recipient (from a hand-edited auditors file) holding a path names
    // nothing, even where the path leads to a file; and the order is the
    // listing's.
    #[test]
    fn wraps_by_name_name_only_plain_words() {
        let tmp = tempfile::tempdir().unwrap();
        let wraps = tmp.path().join("wraps");
        let kid = "00112233445566778899aabbccddeeff".to_string();
        let kid2 = "ffeeddccbbaa99887766554433221100".to_string();
        std::fs::create_dir_all(wraps.join(format!("{kid}."))).unwrap();
        std::fs::write(tmp.path().join("x.age"), b"outside").unwrap();
        for name in [
            format!("{kid}.age1bbb.age"),
            format!("{kid}.age1aaa.age"),
            format!("{kid2}.age1aaa.age"),
        ] {
            std::fs::write(wraps.join(name), b"w").unwrap();
        }
        let traversal = "/../../x".to_string();
        assert!(std::fs::symlink_metadata(wraps.join(format!("{kid}.{traversal}.age"))).is_ok());
        let rs = ["age1aaa".to_string(), "age1bbb".into(), traversal];
        let got: Vec<String> = wrap_files_of(&wraps, [&kid2, &kid], &rs)
            .into_iter()
            .map(|w| format!("{}.{}", w.kid, w.recipient))
            .collect();
        let listed: Vec<String> = wrap_files(&wraps)
            .into_iter()
            .map(|w| format!("{}.{}", w.kid, w.recipient))
            .collect();
        assert_eq!(got, listed);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn hmac_matches_rfc4231_case_2_shape() {
        // RFC 4231 test case 1 with a 32-byte key is not given; check the
        // construction against a key of 0x0b * 20 padded (case 1).
        let mut key = [0u8; 32];
        key[..20].copy_from_slice(&[0x0b; 20]);
        let mac = hmac_sha256(&key, b"Hi There");
        assert_eq!(
            stele_core::note::hex(&mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    /// The record lines `encrypt` writes by hand are `Record::to_line`'s,
    /// and open under the data key with the entry's associated data.
    #[test]
    fn encrypted_record_lines_are_the_records_text_and_open() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = SealConfig {
            seal: vec!["/a~1b/\"q\u{e9}".into()],
            subject: "/who".into(),
        };
        let s = Sealer::open(tmp.path(), "example.com/o", &cfg, 0, Arc::new(RealFs)).unwrap();
        let ev = serde_json::json!({"who": "w", "a/b": {"\"q\u{e9}": [1, "x"]}});
        let mut text = String::new();
        let pending = s.seal_event_text(&ev, &mut text).unwrap();
        assert_eq!(pending.len(), 1);
        let ev: Value = serde_json::from_str(&text).unwrap();
        assert!(ev["a/b"]["\"q\u{e9}"]["stele.sealed"].is_object());
        let mut out = Vec::new();
        s.encrypt(1234567, &pending, &mut out).unwrap();
        let line = std::str::from_utf8(&out)
            .unwrap()
            .strip_suffix('\n')
            .unwrap();
        let (kid, rec) = split_record(line.as_bytes()).unwrap();
        assert_eq!(kid, pending[0].key.to_hex());
        let rec = Record::parse(rec).unwrap();
        assert_eq!(line, format!("{kid} {}", rec.to_line()));
        let Record::Opening {
            index,
            sealed,
            pointer,
        } = rec
        else {
            panic!("not an opening: {line}");
        };
        assert_eq!((index, pointer.as_str()), (1234567, "/a~1b/\"q\u{e9}"));
        let ad = sealed::opening_ad("example.com/o", index, &pointer);
        let pt = stele_seal::open_opening(&pending[0].data_key, &sealed, &ad).unwrap();
        assert_eq!(pt, pending[0].plaintext);
        assert!(pt.ends_with(br#"[1,"x"]"#));
    }

    /// The writer's AEAD makes the bytes of stele-seal's (the RustCrypto
    /// XChaCha20-Poly1305 that verifiers open with), for every plaintext
    /// length across the block and Poly1305 boundaries, and they open.
    #[test]
    fn intents_round_trip_and_match_their_events_only() {
        let kid = KeyId([7; 16]);
        let cases = [
            Intent::Forget { from: 12, key: kid },
            Intent::Redact {
                from: 0,
                entry: 3,
                pointer: "/a b/\"c\"~1d".into(),
            },
        ];
        for i in &cases {
            let line = i.to_line();
            assert_eq!(Intent::parse(line.trim_end()).as_ref(), Some(i), "{line}");
        }
        for bad in [
            "forget 1",
            "forget x 0707",
            "redact 1 2",
            "drop 1 2 \"/a\"",
            "",
        ] {
            assert_eq!(Intent::parse(bad), None, "{bad}");
        }
        let forget = format!(
            r#"{{"event":{{"by":"dpo","key":"{kid}","type":"stele.forget"}},"prev":"00","seq":9,"ts":"t"}}"#
        );
        let got = Intent::of_entry(forget.as_bytes(), 9).unwrap();
        assert!(got.same_work(&cases[0]) && !got.same_work(&cases[1]));
        // The same members nested in a user's event are no forget.
        let nested = format!(
            r#"{{"event":{{"type":"t","x":{{"key":"{kid}","type":"stele.forget"}}}},"seq":9}}"#
        );
        assert_eq!(Intent::of_entry(nested.as_bytes(), 9), None);
    }

    #[test]
    fn push_base64_is_the_base64_crates_standard() {
        use base64::Engine as _;
        let data: Vec<u8> = (0..=255u8).rev().chain(0..=255).collect();
        for n in 0..=data.len() {
            let mut out = b"x".to_vec();
            push_base64(&mut out, &data[..n]);
            let want = base64::engine::general_purpose::STANDARD.encode(&data[..n]);
            assert_eq!(&out[1..], want.as_bytes(), "{n} bytes");
        }
    }

    #[test]
    fn decimals_are_display_s() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            12345,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn ring_openings_are_stele_seals_bytes() {
        let mut out = Vec::new();
        for len in 0..=300usize {
            let b = len as u8;
            let key: DataKey = std::array::from_fn(|i| (i as u8).wrapping_mul(7) ^ b);
            let nonce: [u8; NONCE_LEN] = std::array::from_fn(|i| (i as u8).wrapping_mul(13) ^ !b);
            let pt: Vec<u8> = (0..len).map(|i| (i as u8) ^ b.wrapping_mul(31)).collect();
            let ad: Vec<u8> = (0..len % 97).map(|i| i as u8).collect();
            out.clear();
            out.extend_from_slice(b"before");
            seal_opening_into(&key, &nonce, &pt, &ad, &mut out).unwrap();
            let want = stele_seal::seal_opening(&key, &nonce, &pt, &ad);
            assert_eq!(&out[..6], b"before");
            assert_eq!(out[6..], want[..], "length {len}");
            assert_eq!(stele_seal::open_opening(&key, &out[6..], &ad).unwrap(), pt);
            // Tampered: any flipped bit (nonce, ciphertext, tag), other
            // associated data or another key, and stele-seal refuses it.
            let sealed = out[6..].to_vec();
            for at in [
                0,
                NONCE_LEN - 1,
                NONCE_LEN,
                NONCE_LEN + len / 2,
                sealed.len() - 1,
            ] {
                let mut bad = sealed.clone();
                bad[at] ^= 1 << (at % 8);
                assert_eq!(
                    stele_seal::open_opening(&key, &bad, &ad),
                    None,
                    "length {len}, byte {at}"
                );
            }
            let mut other_ad = ad.clone();
            other_ad.push(0);
            assert_eq!(stele_seal::open_opening(&key, &sealed, &other_ad), None);
            let mut other_key = key;
            other_key[31] ^= 0x80;
            assert_eq!(stele_seal::open_opening(&other_key, &sealed, &ad), None);
        }
        // draft-irtf-cfrg-xchacha A.3.1, the AEAD's test vector (ciphertext, tag).
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let ad = hex("50515253c0c1c2c3c4c5c6c7");
        let key: DataKey = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
            .try_into()
            .unwrap();
        let nonce: [u8; NONCE_LEN] = hex("404142434445464748494a4b4c4d4e4f5051525354555657")
            .try_into()
            .unwrap();
        out.clear();
        seal_opening_into(&key, &nonce, pt, &ad, &mut out).unwrap();
        assert_eq!(
            stele_core::note::hex(&out[NONCE_LEN..]),
            concat!(
                "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb",
                "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452",
                "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9",
                "21f9664c97637da9768812f615c68b13b52e",
                "c0875924c1c7987947deafd8780acf49",
            )
        );
    }

    /// The unwalked path (`seal_unmarked`) seals only events with no seal
    /// marker and no placeholder member anywhere, its subject's key in
    /// memory: any such member, in the open or in a value sealed, sends
    /// the event to the walk, which unwraps or refuses it as before.
    #[test]
    fn unwalked_sealing_leaves_markers_and_reserved_members_to_the_walk() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = SealConfig {
            seal: vec!["/actor/email".into(), "/ip".into()],
            subject: "/actor".into(),
        };
        let s = Sealer::open(tmp.path(), "example.com/o", &cfg, 0, Arc::new(RealFs)).unwrap();
        s.prepare().unwrap();
        let actor = serde_json::json!({"email": "a@x", "id": "u1"});
        let ev = |extra: Value| {
            let mut e = serde_json::json!({"actor": actor.clone(), "ip": "192.0.2.1", "n": 1});
            for (k, v) in extra.as_object().unwrap() {
                let _ = e.as_object_mut().unwrap().insert(k.clone(), v.clone());
            }
            e
        };
        let mut scratch = SealScratch::default();
        let mut text = String::new();
        // Not cached yet: the walk makes the subject's key.
        assert!(
            s.seal_unmarked(&ev(serde_json::json!({})), 0, &mut scratch, &mut text)
                .is_none()
        );
        scratch.wipe();
        text.clear();
        s.seal_event_into(&ev(serde_json::json!({})), 0, &mut scratch, &mut text)
            .unwrap();
        scratch.wipe();
        text.clear();
        // Cached: a plain event (also one naming the members in strings).
        for extra in [
            serde_json::json!({}),
            serde_json::json!({"note": "a stele.seal b stele.sealed"}),
        ] {
            assert!(
                s.seal_unmarked(&ev(extra), 0, &mut scratch, &mut text)
                    .is_some()
            );
            assert_eq!(scratch.openings.len(), 2);
            scratch.wipe();
            text.clear();
        }
        // Each of these goes to the walk, whose answer (a refusal, or
        // the marker's value sealed too) is seal_event_into's. (A string
        // starting with the member's name does too, and is sealed.)
        for (extra, err) in [
            (serde_json::json!({"note": "stele.seal"}), Some(false)),
            (serde_json::json!({"x": {"stele.sealed": 1}}), Some(true)),
            (
                serde_json::json!({"x": [{"y": {"stele.sealed": {}}}]}),
                Some(true),
            ),
            (serde_json::json!({"ip": {"v": {"stele.sealed": 1}}}), None),
            (serde_json::json!({"ip": [{"stele.seal": 1}]}), None),
            (serde_json::json!({"x": {"stele.seal": "v"}}), Some(false)),
            (
                serde_json::json!({"x": {"stele.seal": "v", "y": 1}}),
                Some(true),
            ),
            (
                serde_json::json!({"actor": {"email": {"stele.sealed": 2}, "id": "u1"}}),
                None,
            ),
        ] {
            let e = ev(extra.clone());
            assert!(
                s.seal_unmarked(&e, 0, &mut scratch, &mut text).is_none(),
                "{extra}"
            );
            scratch.wipe();
            text.clear();
            let got = s.seal_event_into(&e, 0, &mut scratch, &mut text);
            let n = scratch.openings.len();
            let got_text = text.clone();
            scratch.wipe();
            text.clear();
            let walked = s.seal_event_walked(&e, 0, &mut scratch, &mut text);
            if let Some(err) = err {
                assert_eq!(got.is_err(), err, "{extra}: {got:?}");
            }
            assert_eq!(got, walked, "{extra}");
            if got.is_ok() {
                assert_eq!(n, scratch.openings.len(), "{extra}");
                assert!(!got_text.contains("\"stele.seal\":"), "{got_text}");
            }
            scratch.wipe();
            text.clear();
        }
    }

    #[test]
    fn markers_and_reserved_members() {
        let mut v = serde_json::json!({"a": {"stele.seal": {"b": {"stele.seal": 1}}}, "c": [{"stele.seal": "x"}]});
        let mut found = Vec::new();
        unwrap_markers(&mut v, &[], &mut found).unwrap();
        assert_eq!(v, serde_json::json!({"a": {"b": 1}, "c": ["x"]}));
        assert_eq!(found.len(), 3);
        let mut bad = serde_json::json!({"a": {"stele.seal": 1, "other": 2}});
        let e = unwrap_markers(&mut bad, &[], &mut Vec::new()).unwrap_err();
        assert!(e.contains("\"/a\""), "{e}");
        let mut forged = serde_json::json!({"a": {"stele.sealed": {}}});
        assert!(unwrap_markers(&mut forged, &[], &mut Vec::new()).is_err());
        // A refusal inside a value that would be sealed (by a rule or a
        // marker) names the place up to that value, never a member in it.
        let rules = [vec!["secret".to_string()]];
        for (mut ev, want) in [
            (
                serde_json::json!({"secret": {"LEAK@x": {"stele.sealed": 1}}}),
                "at \"/secret\" (inside the value sealed there) is reserved",
            ),
            (
                serde_json::json!({"m": {"stele.seal": {"LEAK@x": {"stele.seal": 1, "y": 2}}}}),
                "at \"/m\" (inside the value sealed there) must be",
            ),
            (
                serde_json::json!({"m": {"stele.seal": [{"LEAK": {"stele.sealed": 1}}]}}),
                "at \"/m\" (inside the value sealed there) is reserved",
            ),
            (
                serde_json::json!({"open": {"stele.sealed": 1}}),
                "at \"/open\" is reserved",
            ),
        ] {
            let e = unwrap_markers(&mut ev, &rules, &mut Vec::new()).unwrap_err();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("LEAK"), "{e}");
        }
    }
}
