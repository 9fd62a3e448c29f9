//! Witnessing (docs/FORMAT.md 14): both sides of C2SP tlog-witness.
//!
//! - [`Witness`]: a witness's directory and its `add-checkpoint` logic
//!   (`stele witness init`, `add-log`, `serve`; the HTTP side is
//!   [`crate::serve::witness`]);
//! - [`PolicyCosigner`]: a log's client, which sends each new checkpoint to
//!   the witnesses of a C2SP tlog-policy and attaches their cosignatures
//!   ([`Cosign`], [`crate::LogOptions::cosign`]).
//!
//! ```text
//! WITNESS_DIR/
//!   key              PRIVATE+KEY+<name>+<id>+<base64(0x04 || seed)>, mode 0600
//!   logs             one log verifier key per line (stele witness add-log)
//!   witness.lock     flock'ed by the one witness process (stele witness serve)
//!   state/<sha256(origin), hex>
//!                    the latest checkpoint cosigned for that log: the log's
//!                    signed note with this witness's cosignature line
//! ```
//!
//! Life of an `add-checkpoint` (a crash at any step leaves the old state or
//! the new one, never a mix, and never a cosignature for an unrecorded size):
//! 1. the body is parsed (bounded by the HTTP layer), the origin looked up;
//! 2. the log's lock is taken: checks and update are one step per log;
//! 3. `state/<hash>` is read and the spec's checks run against it;
//! 4. the cosignature is made and the new state written to a temporary
//!    file, fdatasync'ed, renamed over `state/<hash>`, the directory fsync'ed;
//! 5. only then is the cosignature line returned.

use crate::error::{Error, Result};
use crate::fs::{FileRole, Fs, RealFs};
use crate::mirror::{replace_file, replace_file_via};
use crate::view::View;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stele_core::checkpoint::{Checkpoint, SignedCheckpoint};
use stele_core::hash::Hash;
use stele_core::note::{MAX_NOTE_BYTES, MAX_SIGNATURES, Note, VerifierKey};
use stele_core::witness::{
    AddCheckpoint, AddError, Cosigner, CosignerKey, Policy, add_checkpoint_body,
};

/// The witness's key file in its directory.
pub const KEY_FILE: &str = "key";
/// The file of trusted log keys.
pub const LOGS_FILE: &str = "logs";
/// The folder of per-log state.
pub const STATE_DIR: &str = "state";
/// The lock file one witness process holds.
pub const LOCK_FILE: &str = "witness.lock";

fn werr(why: impl Into<String>) -> Error {
    Error::Witness(why.into())
}

/// The state file name of an origin: lowercase hex SHA-256 (as the spec's
/// monitoring path names a log).
pub fn origin_hash(origin: &str) -> String {
    Sha256::digest(origin.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A witness: its key, the logs it trusts and their latest cosigned checkpoints.
pub struct Witness {
    dir: PathBuf,
    cosigner: Cosigner,
    logs: Vec<VerifierKey>,
    fs: Arc<dyn Fs>,
    // One lock per known origin: the check against the stored size and the
    // update are atomic per log (tlog-witness's rollback race).
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    clock: fn() -> u64,
    // `DIR/witness.lock`, flock'ed while the witness is open.
    _lock: std::fs::File,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("dir", &self.dir)
            .field("key", &self.cosigner.verifier())
            .field("logs", &self.logs.len())
            .finish_non_exhaustive()
    }
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs().max(1))
}

/// Why an `add-checkpoint` was not answered with a cosignature.
#[derive(Debug)]
pub enum AddFailure {
    /// Refused by the spec's rules (4xx).
    Refused(AddError),
    /// The witness could not read or record its state (500): no cosignature.
    Store(Error),
}

impl Witness {
    /// `stele witness init DIR --name NAME`: makes the directory, the key
    /// (mode 0600) and an empty log list; returns the public key.
    pub fn init(dir: &Path, name: &str) -> Result<CosignerKey> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| werr(format!("reading OS randomness: {e}")))?;
        let c = Cosigner::from_seed(name, seed).map_err(|e| werr(format!("--name: {e}")))?;
        std::fs::create_dir_all(dir.join(STATE_DIR))
            .map_err(|e| Error::io("create", dir.join(STATE_DIR), e))?;
        let key = dir.join(KEY_FILE);
        if key.exists() {
            return Err(werr(format!(
                "{} already holds a witness key ({} exists)",
                dir.display(),
                key.display()
            )));
        }
        crate::key::save_private(&RealFs, &key, &c.to_private_string())?;
        let logs = dir.join(LOGS_FILE);
        if !logs.exists() {
            crate::log::write_new_file(&RealFs, dir, LOGS_FILE, FileRole::Other, b"")?;
        }
        Ok(c.verifier())
    }

    /// `stele witness add-log DIR --key VKEY`: trusts a log key (its name
    /// is the log's origin). Takes effect when the witness next starts.
    pub fn add_log(dir: &Path, vkey: &str) -> Result<VerifierKey> {
        let key = VerifierKey::parse(vkey).map_err(|e| werr(format!("--key: {e}")))?;
        let mut logs = read_logs(dir)?;
        if !logs.contains(&key) {
            logs.push(key.clone());
        }
        let text: String = logs.iter().map(|k| format!("{k}\n")).collect();
        replace_file(&RealFs, dir, LOGS_FILE, FileRole::Other, text.as_bytes())?;
        Ok(key)
    }

    /// Opens a witness directory made by [`Witness::init`].
    ///
    /// Holds `DIR/witness.lock` (an exclusive `flock`) until dropped: a
    /// second witness process on the directory is refused, since two would
    /// each check requests against their own view and could cosign two
    /// histories. Leftover temporary files in `state/` are removed.
    pub fn open(dir: &Path) -> Result<Self> {
        let lock_path = dir.join(LOCK_FILE);
        let lock = crate::fs::open_own(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            &lock_path,
        )
        .map_err(|e| Error::io("open", &lock_path, e))?;
        match crate::log::try_lock(&lock, dir, &lock_path) {
            Err(Error::Locked { .. }) => {
                return Err(werr(format!(
                    "{} is in use by another witness process (it holds {}): run one `stele witness serve` per witness directory",
                    dir.display(),
                    lock_path.display()
                )));
            }
            r => r?,
        }
        let state = dir.join(STATE_DIR);
        if let Ok(rd) = std::fs::read_dir(&state) {
            for e in rd.flatten() {
                let n = e.file_name();
                let n = n.to_string_lossy();
                if n.starts_with('.') && n.ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let text = crate::key::load_private(&dir.join(KEY_FILE))?;
        let cosigner = Cosigner::parse(&text).map_err(|e| Error::BadKey {
            path: dir.join(KEY_FILE),
            why: e.to_string(),
        })?;
        Ok(Self {
            dir: dir.into(),
            cosigner,
            logs: read_logs(dir)?,
            fs: Arc::new(RealFs),
            locks: Mutex::new(HashMap::new()),
            clock: unix_seconds,
            _lock: lock,
        })
    }

    /// The file system seam (tests inject faults).
    pub fn with_fs(mut self, fs: Arc<dyn Fs>) -> Self {
        self.fs = fs;
        self
    }

    /// The witness's public key.
    pub fn verifier(&self) -> CosignerKey {
        self.cosigner.verifier()
    }

    /// The logs it trusts.
    pub fn logs(&self) -> &[VerifierKey] {
        &self.logs
    }

    /// The latest checkpoint cosigned for the log whose origin hashes to
    /// `hash` (tlog-witness monitoring: log signature and cosignature).
    pub fn latest(&self, hash: &str) -> Option<String> {
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        std::fs::read_to_string(self.dir.join(STATE_DIR).join(hash)).ok()
    }

    // The checkpoint held for a log. Only its text is needed to check a
    // request (origin, size, root): a state whose signature lines do not
    // parse (one written by an older version with a log's line repeated
    // past core's limit) still gives them, and the next update rewrites it.
    fn stored(&self, origin: &str) -> Result<Option<Held>> {
        let path = self.dir.join(STATE_DIR).join(origin_hash(origin));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let bad = |why: String| werr(format!("{}: {why}", path.display()));
        let end = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or_else(|| bad("no empty line after the checkpoint".into()))?;
        let text = std::str::from_utf8(&bytes[..=end])
            .map_err(|_| bad("the checkpoint is not UTF-8".into()))?;
        let cp = Checkpoint::parse(text).map_err(|e| bad(e.to_string()))?;
        if cp.origin != origin {
            return Err(bad(format!("holds a checkpoint of {}", cp.origin)));
        }
        // This witness's line, when the note reads and it verifies.
        let me = self.cosigner.verifier();
        let line = Note::parse(&bytes).ok().and_then(|n| {
            let s = n
                .signatures
                .iter()
                .find(|s| me.matches(s) && me.verify(text, &s.signature).is_some())?;
            let raw = [&s.key_id[..], &s.signature].concat();
            Some(format!("\u{2014} {} {}\n", s.name, b64(&raw)))
        });
        Ok(Some(Held {
            text: text.to_string(),
            size: cp.size,
            root: cp.root,
            line,
        }))
    }

    /// C2SP tlog-witness `add-checkpoint`: checks the request against the
    /// log's stored state, records the new checkpoint durably, and returns
    /// the cosignature line.
    pub fn add_checkpoint(&self, body: &[u8]) -> Result<String, AddFailure> {
        let req = AddCheckpoint::parse(body).map_err(AddFailure::Refused)?;
        let origin = req.checkpoint.checkpoint.origin.clone();
        let keys: Vec<VerifierKey> = self
            .logs
            .iter()
            .filter(|k| k.name() == origin)
            .cloned()
            .collect();
        if keys.is_empty() {
            return Err(AddFailure::Refused(AddError::UnknownLog(origin)));
        }
        // Only known origins get a lock: the map is bounded by the log list.
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(origin.clone())
            .or_default()
            .clone();
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        let held = self.stored(&origin).map_err(AddFailure::Store)?;
        req.check(Some(&keys), held.as_ref().map(|h| (h.size, h.root)))
            .map_err(AddFailure::Refused)?;
        let text = &req.checkpoint.note.text;
        // The checkpoint held, sent again: the line given then, nothing
        // written (a replay costs no fsync).
        if let Some(line) = held.and_then(|h| (h.text == *text).then_some(h.line).flatten()) {
            return Ok(line);
        }
        let line = self.cosigner.cosign(text, (self.clock)());
        // The stored note: each verified log key's first signature, then
        // ours (a line repeated in the request is kept once).
        let v = req.checkpoint.verify(&keys);
        let mut note = format!("{text}\n");
        let mut kept: Vec<&VerifierKey> = Vec::new();
        for s in &req.checkpoint.note.signatures {
            let Some(k) = v
                .verified_by
                .iter()
                .find(|k| k.name() == s.name && k.id() == s.key_id)
            else {
                continue;
            };
            if kept.contains(&k) {
                continue;
            }
            kept.push(k);
            let raw = [&s.key_id[..], &s.signature].concat();
            note.push_str(&format!("\u{2014} {} {}\n", s.name, b64(&raw)));
        }
        note.push_str(&line);
        // What `stored` and a monitor read back must parse.
        let _ = SignedCheckpoint::parse(note.as_bytes()).map_err(|e| {
            AddFailure::Store(werr(format!(
                "the new state note would not be readable: {e}"
            )))
        })?;
        let state = self.dir.join(STATE_DIR);
        let name = origin_hash(&origin);
        let tmp = format!(
            ".{name}.{}-{}.tmp",
            std::process::id(),
            TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        replace_file_via(
            self.fs.as_ref(),
            &state,
            &name,
            &tmp,
            FileRole::Other,
            note.as_bytes(),
        )
        .map_err(AddFailure::Store)?;
        Ok(line)
    }
}

// Temporary file names of state updates: unique in the process (and the
// directory lock keeps other processes out).
static TMP_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

// The checkpoint a witness holds for a log.
struct Held {
    text: String,
    size: u64,
    root: Hash,
    // This witness's cosignature line on `text`, if it reads back.
    line: Option<String>,
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn read_logs(dir: &Path) -> Result<Vec<VerifierKey>> {
    let path = dir.join(LOGS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            VerifierKey::parse(l)
                .map_err(|e| werr(format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Collects witness cosignatures on a checkpoint before the log stores it
/// (docs/FORMAT.md 14.5). Called without the log's locks held (appends go
/// on meanwhile), one round at a time per log; `view` is the log as of the
/// signed checkpoint.
pub trait Cosign: Send + Sync + std::fmt::Debug {
    /// The signed note with the cosignatures attached, or why the quorum
    /// was not met (then nothing is stored).
    fn cosign(&self, note: &str, view: &View) -> Result<String>;
    /// Whether a stored note already meets the quorum.
    fn accepts(&self, note: &str) -> bool;
    /// The C2SP tlog-policy text this cosigner enforces: a log opened with
    /// it remembers the policy in its configuration, so every later writer
    /// asks the same witnesses. `None`: nothing to remember.
    fn policy_text(&self) -> Option<&str> {
        None
    }
}

/// What a witness round needs of the log besides the note: the size of its
/// latest published checkpoint and consistency proofs (a file log's
/// [`View`], or the stores of a PostgreSQL + object storage log).
pub trait Proofs: Sync {
    /// The size of the latest published checkpoint (0: none).
    fn published_size(&self) -> u64;
    /// The consistency proof from the tree of `old` to that of `new`.
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>>;
}

impl Proofs for View {
    fn published_size(&self) -> u64 {
        self.latest_checkpoint().map_or(0, |c| c.checkpoint.size)
    }
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        Self::consistency_proof(self, old, new)
    }
}

/// How a log reaches the witnesses of a policy.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Each HTTP request's limit.
    pub timeout: Duration,
    /// Further attempts after a network error or a 5xx.
    pub retries: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            retries: 2,
        }
    }
}

/// Largest `add-checkpoint` response read (a few signature lines).
const MAX_RESPONSE: u64 = 16 * 1024;

/// The log's side of C2SP tlog-witness for a C2SP tlog-policy.
pub struct PolicyCosigner {
    policy: Policy,
    // The policy as written, when it came from text (remembered by the log).
    text: Option<String>,
    agent: ureq::Agent,
    opts: ClientOptions,
    // The size each witness last reported (a 409 or a cosignature).
    sizes: Mutex<Vec<Option<u64>>>,
}

impl std::fmt::Debug for PolicyCosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyCosigner")
            .field("witnesses", &self.policy.witnesses.len())
            .field("quorum", &self.policy.quorum_name())
            .finish_non_exhaustive()
    }
}

impl PolicyCosigner {
    /// A client for `policy`'s witnesses (each needs a URL, its submission prefix).
    pub fn new(policy: Policy, opts: ClientOptions) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("stele/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let sizes = Mutex::new(vec![None; policy.witnesses.len()]);
        Self {
            policy,
            text: None,
            agent,
            opts,
            sizes,
        }
    }

    /// A client for the policy `text` (C2SP tlog-policy), which a log opened
    /// with it remembers ([`Cosign::policy_text`]). Every witness needs a URL.
    pub fn from_text(text: &str, opts: ClientOptions) -> Result<Self, String> {
        let policy = Policy::parse(text.as_bytes()).map_err(|e| e.to_string())?;
        check_policy_fits(&policy)?;
        if let Some(w) = policy.witnesses.iter().find(|w| w.url.is_none()) {
            return Err(format!(
                "witness {} has no URL, so the log cannot ask it to cosign (add its submission prefix: witness NAME VKEY http://host:port)",
                w.name
            ));
        }
        let mut c = Self::new(policy, opts);
        c.text = Some(text.to_string());
        Ok(c)
    }

    /// Reads a policy file (C2SP tlog-policy).
    pub fn load_policy(path: &Path) -> Result<Policy> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        Policy::parse(&bytes).map_err(|e| werr(format!("{}: {e}", path.display())))
    }

    // One witness: its cosignature line(s), or why none.
    fn ask(
        &self,
        i: usize,
        note: &str,
        text: &str,
        size: u64,
        log: &dyn Proofs,
    ) -> Result<String, String> {
        let w = &self.policy.witnesses[i];
        let url = w.url.as_deref().ok_or("the policy gives it no URL")?;
        let url = format!("{}/add-checkpoint", url.trim_end_matches('/'));
        let published = log.published_size();
        let mut old = self.sizes.lock().unwrap_or_else(|p| p.into_inner())[i].unwrap_or(published);
        let mut failures = 0;
        let mut conflicts = 0;
        loop {
            if old > size {
                return Err(format!(
                    "it has cosigned size {old}, larger than this checkpoint's {size}: the log's history differs from what the witness saw"
                ));
            }
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                log.consistency_proof(old, size)
                    .map_err(|e| e.to_string())?
            };
            let body = add_checkpoint_body(old, &proof, note);
            let sent = self.agent.post(&url).send(body.as_bytes());
            let mut resp = match sent {
                Ok(r) if r.status().as_u16() < 500 => r,
                Ok(r) if failures >= self.opts.retries => {
                    return Err(format!("HTTP {} from {url}", r.status().as_u16()));
                }
                Err(e) if failures >= self.opts.retries => return Err(format!("{url}: {e}")),
                _ => {
                    failures += 1;
                    std::thread::sleep(Duration::from_millis(100 << failures));
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let body = resp
                .body_mut()
                .with_config()
                .limit(MAX_RESPONSE)
                .read_to_string()
                .map_err(|e| format!("{url}: reading the answer: {e}"))?;
            match status {
                200 => {
                    let line = self.valid_line(i, note, text, &body).ok_or_else(|| {
                        format!(
                            "{url} answered 200 without a valid cosignature by {}",
                            w.key.name()
                        )
                    })?;
                    self.sizes.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(size);
                    return Ok(line);
                }
                409 if conflicts < 2 => {
                    conflicts += 1;
                    let latest: u64 = body.trim_end().parse().map_err(|_| {
                        format!(
                            "{url}: 409 without a size (found {:?})",
                            body.chars().take(40).collect::<String>()
                        )
                    })?;
                    self.sizes.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(latest);
                    // The size sent is the witness's: it cosigned another
                    // tree of that size (tlog-witness's same-size 409).
                    // Sending again cannot help.
                    if latest == old {
                        return Err(format!(
                            "{url}: 409: it cosigned a tree of size {latest} with another root: the log's history differs from what the witness saw"
                        ));
                    }
                    old = latest;
                }
                _ => {
                    let why: String = body.trim().chars().take(200).collect();
                    return Err(format!("{url}: HTTP {status}: {why}"));
                }
            }
        }
    }

    // The first line of a 200 answer that is a valid cosignature by witness
    // `i` (others are ignored, as the spec requires; a witness counts once,
    // so its further lines, even valid, are dropped: a witness answering
    // copies of its line must not swell the note past what a reader takes).
    fn valid_line(&self, i: usize, note: &str, text: &str, body: &str) -> Option<String> {
        let key = &self.policy.witnesses[i].key;
        let n = Note::parse(format!("{note}{body}").as_bytes()).ok()?;
        let s = n
            .signatures
            .iter()
            .filter(|s| key.matches(s))
            .find(|s| key.verify(text, &s.signature).is_some())?;
        let raw = [&s.key_id[..], &s.signature].concat();
        Some(format!("\u{2014} {} {}\n", s.name, b64(&raw)))
    }

    // The note to store: `note` with the line of each witness that cosigned
    // (`lines[i]`), in policy order. It must stay readable (core's
    // MAX_SIGNATURES and MAX_NOTE_BYTES, FORMAT 14.5): when every line does
    // not fit, lines the quorum does not need are left out, last witness
    // first; when even that does not fit, the round fails (nothing stored).
    fn assemble(&self, note: &str, size: u64, lines: &[Option<String>]) -> Result<String> {
        let build = |keep: &[bool]| {
            let mut out = note.to_string();
            for (l, _) in lines.iter().zip(keep).filter(|(_, k)| **k) {
                out.push_str(l.as_deref().unwrap_or_default());
            }
            out
        };
        let readable = |s: &str| SignedCheckpoint::parse(s.as_bytes()).map(|_| ());
        let mut keep: Vec<bool> = lines.iter().map(Option::is_some).collect();
        let mut out = build(&keep);
        let mut why = match readable(&out) {
            Ok(()) => return Ok(out),
            Err(e) => e,
        };
        for i in (0..keep.len()).rev() {
            if !keep[i] {
                continue;
            }
            keep[i] = false;
            if !self.policy.quorum_met(&keep) {
                keep[i] = true;
                continue;
            }
            out = build(&keep);
            match readable(&out) {
                Ok(()) => return Ok(out),
                Err(e) => why = e,
            }
        }
        Err(werr(format!(
            "checkpoint of size {size} not published: the note with the cosignatures the quorum {} needs would not be readable ({why})",
            self.policy.quorum_name()
        )))
    }
}

/// Most witnesses a log's policy may name (FORMAT 14.5): a checkpoint note
/// holds at most core's `MAX_SIGNATURES` (100) signature lines, and the log
/// signs with two keys during a key hand-over.
pub const MAX_LOG_WITNESSES: usize = MAX_SIGNATURES - 2;

/// Bytes of a note kept for its text and the log's signatures: the
/// witnesses' lines together may take the rest of `MAX_NOTE_BYTES`.
const NOTE_RESERVE: usize = 2048;

/// Whether every witness of `policy` can cosign one note that a reader
/// still takes (FORMAT 14.5): at most [`MAX_LOG_WITNESSES`], their lines
/// (`— name base64(76 bytes)`) within 14 KiB.
pub fn check_policy_fits(policy: &Policy) -> Result<(), String> {
    let n = policy.witnesses.len();
    if n > MAX_LOG_WITNESSES {
        return Err(format!(
            "the policy names {n} witnesses, more than the {MAX_LOG_WITNESSES} a log can ask (a checkpoint note holds at most {MAX_SIGNATURES} signatures, the log's own included)"
        ));
    }
    // "— " (4 bytes), the name, a space, 104 base64 characters, "\n".
    let bytes: usize = policy
        .witnesses
        .iter()
        .map(|w| w.key.name().len() + 110)
        .sum();
    if bytes > MAX_NOTE_BYTES - NOTE_RESERVE {
        return Err(format!(
            "the cosignature lines of the policy's {n} witnesses take {bytes} bytes, more than the {} a checkpoint note leaves them (notes are at most {MAX_NOTE_BYTES} bytes; shorter witness names fit)",
            MAX_NOTE_BYTES - NOTE_RESERVE
        ));
    }
    Ok(())
}

impl PolicyCosigner {
    /// [`Cosign::cosign`] for any log: the proofs come from `log`.
    pub fn cosign_with(&self, note: &str, log: &dyn Proofs) -> Result<String> {
        let sc = SignedCheckpoint::parse(note.as_bytes()).map_err(|e| werr(e.to_string()))?;
        let (text, size) = (sc.note.text.clone(), sc.checkpoint.size);
        let n = self.policy.witnesses.len();
        let answers: Vec<Result<String, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let text = &text;
                    s.spawn(move || self.ask(i, note, text, size, log))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("the request thread panicked".into()))
                })
                .collect()
        });
        let cosigned: Vec<bool> = answers.iter().map(Result::is_ok).collect();
        if !self.policy.quorum_met(&cosigned) {
            let ok: Vec<&str> = self
                .policy
                .witnesses
                .iter()
                .zip(&cosigned)
                .filter(|(_, c)| **c)
                .map(|(w, _)| w.name.as_str())
                .collect();
            let failed: Vec<String> = self
                .policy
                .witnesses
                .iter()
                .zip(&answers)
                .filter_map(|(w, a)| a.as_ref().err().map(|e| format!("{}: {e}", w.name)))
                .collect();
            return Err(werr(format!(
                "checkpoint of size {size} not published: the witness quorum {} is not met (cosigned by {}); failed: {}",
                self.policy.quorum_name(),
                if ok.is_empty() {
                    "none".into()
                } else {
                    ok.join(", ")
                },
                failed.join("; ")
            )));
        }
        let lines: Vec<Option<String>> = answers.into_iter().map(Result::ok).collect();
        self.assemble(note, size, &lines)
    }
}

impl Cosign for PolicyCosigner {
    fn cosign(&self, note: &str, view: &View) -> Result<String> {
        self.cosign_with(note, view)
    }

    fn accepts(&self, note: &str) -> bool {
        SignedCheckpoint::parse(note.as_bytes()).is_ok_and(|sc| {
            self.policy
                .quorum_met(&self.policy.cosignatures(&sc).cosigned)
        })
    }

    fn policy_text(&self) -> Option<&str> {
        self.text.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_core::checkpoint::Checkpoint;
    use stele_core::note::SignerKey;
    use stele_core::witness::Cosigner;

    // 98 witnesses with 64-byte names: their lines (174 bytes each) do not
    // all fit one 16 KiB note. The policy check refuses such a policy; a
    // cosigner made without it (`new`) still never yields an unreadable note.
    fn many(quorum: &str) -> (PolicyCosigner, String, Vec<Option<String>>) {
        let log = SignerKey::from_seed("example.com/log", [9; 32]).unwrap();
        let note = Checkpoint {
            origin: "example.com/log".into(),
            size: 5,
            root: Hash([1; 32]),
            extensions: vec![],
        }
        .sign(&log)
        .unwrap();
        let text = SignedCheckpoint::parse(note.as_bytes()).unwrap().note.text;
        let ws: Vec<Cosigner> = (1..=98u8)
            .map(|i| Cosigner::from_seed(&format!("w{i:02}.{}", "x".repeat(60)), [i; 32]).unwrap())
            .collect();
        let mut p = String::new();
        for (i, w) in ws.iter().enumerate() {
            p += &format!("witness w{} {} http://127.0.0.1:9\n", i + 1, w.verifier());
        }
        let names: Vec<String> = (1..=98).map(|i| format!("w{i}")).collect();
        p += &format!("group g {quorum} {}\nquorum g\n", names.join(" "));
        let policy = Policy::parse(p.as_bytes()).unwrap();
        let e = check_policy_fits(&policy).unwrap_err();
        assert!(e.contains("take 17052 bytes"), "{e}");
        let lines = ws
            .iter()
            .map(|w| Some(w.cosign(&text, 1_700_000_000)))
            .collect();
        (
            PolicyCosigner::new(policy, ClientOptions::default()),
            note,
            lines,
        )
    }

    #[test]
    fn a_note_too_large_keeps_what_the_quorum_needs_or_fails() {
        let (c, note, lines) = many("50");
        let out = c.assemble(&note, 5, &lines).unwrap();
        let sc = SignedCheckpoint::parse(out.as_bytes()).expect("readable");
        assert!(c.accepts(&out));
        // Lines are left out last witness first: the first ones stay.
        let n = sc.note.signatures.len();
        assert!((51..98).contains(&n), "{n}");
        assert_eq!(
            sc.note.signatures[1].name,
            format!("w01.{}", "x".repeat(60))
        );
        let (c, note, lines) = many("all");
        let e = c.assemble(&note, 5, &lines).unwrap_err().to_string();
        assert!(e.contains("would not be readable"), "{e}");
        assert!(e.contains("more than the limit of 16384"), "{e}");
    }
}
