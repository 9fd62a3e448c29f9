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
use crate::mirror::replace_file;
use crate::view::View;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stele_core::checkpoint::SignedCheckpoint;
use stele_core::hash::Hash;
use stele_core::note::{Note, VerifierKey};
use stele_core::witness::{
    AddCheckpoint, AddError, Cosigner, CosignerKey, Policy, add_checkpoint_body,
};

/// The witness's key file in its directory.
pub const KEY_FILE: &str = "key";
/// The file of trusted log keys.
pub const LOGS_FILE: &str = "logs";
/// The folder of per-log state.
pub const STATE_DIR: &str = "state";

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
    pub fn open(dir: &Path) -> Result<Self> {
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

    fn stored(&self, origin: &str) -> Result<Option<(u64, Hash)>> {
        let path = self.dir.join(STATE_DIR).join(origin_hash(origin));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let sc = SignedCheckpoint::parse(&bytes)
            .map_err(|e| werr(format!("{}: {e}", path.display())))?;
        Ok(Some((sc.checkpoint.size, sc.checkpoint.root)))
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
        let latest = self.stored(&origin).map_err(AddFailure::Store)?;
        req.check(Some(&keys), latest)
            .map_err(AddFailure::Refused)?;
        let text = &req.checkpoint.note.text;
        let line = self.cosigner.cosign(text, (self.clock)());
        // The stored note: the log's verified signatures and ours.
        let v = req.checkpoint.verify(&keys);
        let mut note = format!("{text}\n");
        for s in &req.checkpoint.note.signatures {
            if v.verified_by
                .iter()
                .any(|k| k.name() == s.name && k.id() == s.key_id)
            {
                let raw = [&s.key_id[..], &s.signature].concat();
                note.push_str(&format!("\u{2014} {} {}\n", s.name, b64(&raw)));
            }
        }
        note.push_str(&line);
        let state = self.dir.join(STATE_DIR);
        replace_file(
            self.fs.as_ref(),
            &state,
            &origin_hash(&origin),
            FileRole::Other,
            note.as_bytes(),
        )
        .map_err(AddFailure::Store)?;
        Ok(line)
    }
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
                    let lines = self.valid_lines(i, note, text, &body);
                    if lines.is_empty() {
                        return Err(format!(
                            "{url} answered 200 without a valid cosignature by {}",
                            w.key.name()
                        ));
                    }
                    self.sizes.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(size);
                    return Ok(lines);
                }
                409 if conflicts < 2 => {
                    conflicts += 1;
                    old = body.trim_end().parse().map_err(|_| {
                        format!(
                            "{url}: 409 without a size (found {:?})",
                            body.chars().take(40).collect::<String>()
                        )
                    })?;
                    self.sizes.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(old);
                }
                _ => {
                    let why: String = body.trim().chars().take(200).collect();
                    return Err(format!("{url}: HTTP {status}: {why}"));
                }
            }
        }
    }

    // The lines of a 200 answer that are valid cosignatures by witness `i`
    // (others are ignored, as the spec requires).
    fn valid_lines(&self, i: usize, note: &str, text: &str, body: &str) -> String {
        let key = &self.policy.witnesses[i].key;
        let Ok(n) = Note::parse(format!("{note}{body}").as_bytes()) else {
            return String::new();
        };
        let mut out = String::new();
        for s in n.signatures.iter().filter(|s| key.matches(s)) {
            if key.verify(text, &s.signature).is_some() {
                let raw = [&s.key_id[..], &s.signature].concat();
                out.push_str(&format!("\u{2014} {} {}\n", s.name, b64(&raw)));
            }
        }
        out
    }
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
        let mut out = note.to_string();
        for a in answers.into_iter().flatten() {
            out.push_str(&a);
        }
        Ok(out)
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
