//! A verified mirror: a local copy of a log served elsewhere (C2SP
//! tlog-tiles with entry bundles), in the same directory layout as a
//! writer's log, so every reader (`stele verify`, `export`, `cat`, `prove`,
//! `serve --read-only`) works on it. Nothing enters it unverified: the
//! checkpoint is checked against the pinned key, the new tree against the
//! one held (consistency proof from tiles), and the new entries with core's
//! streaming verifier (every entry, chain, genesis and root rule) before a
//! byte is written. writer/README.md ("Mirrors") is the user's description.
//!
//! ```text
//! DIR/mirror.json         {"format":"stele-mirror v1","url":…,"key":…}      written once
//! DIR/mirror-state.json   the commit point: size, byte lengths, target note  tmp, fsync, rename, dir fsync
//! DIR/stele.json          as a writer's (origin; key_file names no key)      written at the first commit
//! DIR/entries.jsonl       verified entry lines, byte for byte the origin's  fdatasync'ed before the commit point
//! DIR/checkpoints         the origin's signed notes the mirror caught up to fdatasync'ed before the commit point
//! DIR/tree, DIR/index     as a writer's                                      fdatasync'ed before the commit point
//! DIR/mirror-status.json  last poll: origin size, lag, alerts (for /metrics) not synced
//! DIR/evidence/…          signed checkpoints that prove a fork or rollback   fsync'ed
//! DIR/mirror.lock         flock'ed by the one mirror process
//! DIR/sealed/…            with --with-openings: the origin's sealed-field    records fdatasync'ed before the commit point;
//!                         records, wraps, auditors, forget list (openings.rs) wraps, lists tmp, fsync, rename, dir fsync
//! ```
//!
//! **Guarantee:** `mirror-state.json` names how much of each file is
//! verified and durable; on open, anything past it (a chunk being written
//! when the process died) is cut. So a kill at any moment leaves a mirror
//! that resumes, and nothing it holds was unverified.

pub mod openings;

use crate::error::{Error, Result};
use crate::fs::{FileRole, Fs, RealFs};
use crate::log::{files as log_files, log_config};
use crate::parallel::ParallelVerifier;
use crate::remote::{
    FetchError, Fetcher, KeyHistory, KeyRanges, KeyStep, MAX_BUNDLE_BYTES, Problem, check_extends,
    check_quorum, fetch_checkpoint, learn_keys,
};
use crate::tree::{Frontier, TreeFile, stored_len};
use crate::view::{StoredCheckpoint, parse_checkpoints};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use stele_core::checkpoint::{Checkpoint, SignedCheckpoint};
use stele_core::export::{self, ExportKind};
use stele_core::hash::{Hash, leaf_hash};
use stele_core::merkle::{self, left_hashes};
use stele_core::note::VerifierKey;
use stele_core::tiles::{TILE_WIDTH, Tile, TileError, TileSet, parse_entry_bundle, tile_for_hash};
use stele_core::verify::{Options, Verdict};

/// File names a mirror adds to a log directory.
pub mod files {
    /// The mirror's configuration: origin URL and pinned key.
    pub const MIRROR: &str = "mirror.json";
    /// The commit point.
    pub const STATE: &str = "mirror-state.json";
    /// The last poll's outcome, for metrics.
    pub const STATUS: &str = "mirror-status.json";
    /// Evidence of forks and rollbacks.
    pub const EVIDENCE: &str = "evidence";
    /// The one-mirror lock.
    pub const LOCK: &str = "mirror.lock";
}

const MIRROR_FORMAT: &str = "stele-mirror v1";

/// Whether `dir` is a mirror (it has a `mirror.json`).
pub fn is_mirror(dir: &Path) -> bool {
    dir.join(files::MIRROR).is_file()
}

/// `mirror.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MirrorConfig {
    /// Always `stele-mirror v1`.
    pub format: String,
    /// The origin's base URL.
    pub url: String,
    /// The pinned verifier key.
    pub key: String,
    /// Whether it copies sealed-field openings (`--with-openings`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub openings: bool,
}

/// Reads a mirror's `mirror.json`.
pub fn read_config(dir: &Path) -> Result<MirrorConfig> {
    let p = dir.join(files::MIRROR);
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io("read", &p, e))?;
    let c: MirrorConfig = serde_json::from_str(&text).map_err(|e| Error::NotALog {
        dir: dir.into(),
        why: format!("{}: {e}", files::MIRROR),
    })?;
    if c.format != MIRROR_FORMAT {
        return Err(Error::NotALog {
            dir: dir.into(),
            why: format!(
                "{} has format {:?}, expected {MIRROR_FORMAT:?}",
                files::MIRROR,
                c.format
            ),
        });
    }
    Ok(c)
}

/// The commit point (`mirror-state.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Verified entries held.
    pub size: u64,
    /// Bytes of `entries.jsonl` they fill.
    pub entries_len: u64,
    /// Bytes of `checkpoints` that are committed.
    pub checkpoints_len: u64,
    /// While catching up in chunks: the signed checkpoint the entries past
    /// the last stored checkpoint were verified against.
    pub target: Option<String>,
    /// Keys the log rotated to, learned from verified `stele.key` events
    /// (docs/FORMAT.md 15), oldest first; committed with the entries that
    /// hold the events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<LearnedKey>,
    /// With openings: bytes of `sealed/records` that are committed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sealed_len: u64,
    /// With openings: the redactions (verified `stele.redact` events) of
    /// the entries last committed, while they are being applied to
    /// `sealed/records` (its rewrite may have shortened it below
    /// `sealed_len`); the next open finishes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<openings::Redaction>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A key of the log's history the mirror learned from a signed transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedKey {
    /// The verifier key.
    pub key: String,
    /// The index of its `stele.key` event.
    pub entry: u64,
    /// The first tree size it signs.
    pub from: u64,
}

/// Reads a mirror's commit point (zero if it has none yet).
pub fn read_state(dir: &Path) -> Result<State> {
    let p = dir.join(files::STATE);
    match std::fs::read_to_string(&p) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| Error::CheckpointMismatch {
            dir: dir.into(),
            why: format!("{}: {e}", files::STATE),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(Error::io("read", &p, e)),
    }
}

/// How a mirror runs.
#[derive(Clone)]
pub struct MirrorOptions {
    /// The pinned verifier key.
    pub key: VerifierKey,
    /// Keys pinned beside it (a revoked key's published successor): learned
    /// through the log's key history like any other, they never inherit a
    /// revocation.
    pub also: Vec<VerifierKey>,
    /// Revoked keys, each with the tree size from which it is revoked
    /// (docs/FORMAT.md 15.3).
    pub revoked: Vec<(VerifierKey, u64)>,
    /// Bearer token for origins whose reads need one.
    pub token: Option<String>,
    /// Deadline of each request.
    pub timeout: Duration,
    /// Most entry bytes fetched and verified before they are committed.
    pub chunk_bytes: usize,
    /// Entry bundles fetched at once (each at most 16.8 MB: this times that
    /// bounds the memory a hostile origin can make the mirror hold).
    pub parallel: usize,
    /// The file system seam (fault injection in tests).
    pub fs: Arc<dyn Fs>,
    /// A witness policy: advance only to checkpoints its quorum cosigned.
    pub policy: Option<stele_core::witness::Policy>,
    /// Copy sealed-field openings (`GET /v1/sealed`, a token with the
    /// reveal scope) and apply the origin's forget list.
    pub openings: bool,
}

impl std::fmt::Debug for MirrorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorOptions")
            .field("key", &self.key.to_string())
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("timeout", &self.timeout)
            .field("chunk_bytes", &self.chunk_bytes)
            .field("parallel", &self.parallel)
            .finish_non_exhaustive()
    }
}

impl MirrorOptions {
    /// Defaults: 30 s per request, 16 MiB chunks, 16 bundles at once, the
    /// real file system.
    pub fn new(key: VerifierKey) -> Self {
        Self {
            key,
            also: Vec::new(),
            revoked: Vec::new(),
            token: None,
            timeout: Duration::from_secs(30),
            chunk_bytes: 16 << 20,
            parallel: 16,
            fs: Arc::new(RealFs),
            policy: None,
            openings: false,
        }
    }
}

/// Why a poll stopped.
#[derive(Debug)]
pub enum PollError {
    /// Something about the origin (retry or alert; the mirror is unchanged).
    Origin(Problem),
    /// The mirror's own storage failed.
    Local(Error),
}

impl From<Error> for PollError {
    fn from(e: Error) -> Self {
        Self::Local(e)
    }
}

impl From<Problem> for PollError {
    fn from(p: Problem) -> Self {
        Self::Origin(p)
    }
}

/// What a successful poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The size of the origin's signed checkpoint.
    pub origin_size: u64,
    /// Verified entries now held.
    pub size: u64,
    /// Entries added by this poll.
    pub added: u64,
}

/// An open mirror directory (holds the mirror lock).
#[derive(Debug)]
pub struct Mirror {
    dir: PathBuf,
    fetcher: Arc<Fetcher>,
    keys: KeyRanges,
    policy: Option<stele_core::witness::Policy>,
    // Keys the last verified chunk handed over to, committed with it.
    learned: Vec<LearnedKey>,
    fs: Arc<dyn Fs>,
    chunk_bytes: usize,
    parallel: usize,
    _lock: File,
    origin: Option<String>,
    state: State,
    entries: File,
    tree: File,
    tree_path: PathBuf,
    index: File,
    checkpoints: File,
    frontier: Frontier,
    held: Option<StoredCheckpoint>,
    last_evidence: Option<PathBuf>,
    origin_seen: Option<u64>,
    scratch: Scratch,
    openings: bool,
    // `sealed/records`, opened when openings are first committed.
    sealed: Option<File>,
    // Checked records of the chunk being committed.
    sealed_pending: Vec<u8>,
    // The redactions in the chunk being committed.
    redact_pending: Vec<openings::Redaction>,
    // The chunks' verifier, kept from one chunk to the next.
    verifier: Option<ParallelVerifier>,
}

// Chunk buffers kept from one chunk to the next: fresh ones made the kernel
// fault in and clear new (huge) pages for every chunk, most of the time of a
// catch-up.
#[derive(Debug, Default)]
struct Scratch {
    buf: Vec<u8>,
    leaves: Vec<Hash>,
    ends: Vec<u64>,
    hashes: Vec<u8>,
    idx: Vec<u8>,
}

// Replaces `dir/name` atomically and durably: a temporary file (truncated
// if an earlier crash left one), fdatasync, rename, directory fsync.
pub(crate) fn replace_file(
    fs: &dyn Fs,
    dir: &Path,
    name: &str,
    role: FileRole,
    data: &[u8],
) -> Result<()> {
    replace_file_via(fs, dir, name, &format!(".{name}.tmp"), role, data)
}

/// [`replace_file`] through the temporary file `tmp_name` in `dir`.
pub(crate) fn replace_file_via(
    fs: &dyn Fs,
    dir: &Path,
    name: &str,
    tmp_name: &str,
    role: FileRole,
    data: &[u8],
) -> Result<()> {
    let tmp = dir.join(tmp_name);
    let f = crate::fs::create_temp(&tmp, crate::fs::PRIVATE_FILE_MODE)
        .map_err(|e| Error::io("create", &tmp, e))?;
    fs.write_at(role, &f, data, 0)
        .map_err(|e| Error::io("write", &tmp, e))?;
    fs.sync_data(role, &f)
        .map_err(|e| Error::io("fdatasync", &tmp, e))?;
    let dest = dir.join(name);
    fs.rename(role, &tmp, &dest)
        .map_err(|e| Error::io("rename", &dest, e))?;
    fs.sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))
}

// Moves the commit point: `mirror-state.json` replaced durably.
fn write_state(fs: &dyn Fs, dir: &Path, state: &State) -> Result<()> {
    let text = serde_json::to_string(state).expect("state serializes") + "\n";
    replace_file(fs, dir, files::STATE, FileRole::Other, text.as_bytes())
}

// Never through a symbolic link, only a regular file: crate::fs::open_own.
fn open_rw(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::fs::open_own(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(crate::fs::PRIVATE_FILE_MODE),
        path,
    )
    .map_err(|e| Error::io("open", path, e))
}

fn cut(fs: &dyn Fs, role: FileRole, f: &File, path: &Path, len: u64) -> Result<()> {
    let have = f.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    if have > len {
        fs.set_len(role, f, len)
            .map_err(|e| Error::io("truncate", path, e))?;
        fs.sync_data(role, f)
            .map_err(|e| Error::io("fdatasync", path, e))?;
    } else if have < len {
        return Err(Error::CheckpointMismatch {
            dir: path.parent().unwrap_or(path).into(),
            why: format!(
                "{} is {have} bytes, but {} says {len} are committed",
                path.display(),
                files::STATE
            ),
        });
    }
    Ok(())
}

impl Mirror {
    /// Opens (or starts) a mirror of the log at `url` in `dir`. Takes the
    /// mirror lock; cuts anything written after the last commit point.
    pub fn open(dir: &Path, url: &str, opts: MirrorOptions) -> Result<Self> {
        // The URL first: a bad one leaves nothing behind.
        let fetcher = Fetcher::new(url, opts.token.clone(), opts.timeout)
            .map_err(|why| Error::Config { option: "URL", why })?;
        let fs = opts.fs.clone();
        // 0700 whatever the umask, as a log's (its entries are the log's).
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
            crate::fs::make_private(dir).map_err(|e| Error::io("chmod", dir, e))?;
        }
        let lock_path = dir.join(files::LOCK);
        let lock = open_rw(&lock_path)?;
        // With the log's patience: a lock just released can read as held
        // while a process forked by another thread still holds its copy
        // (seen under load as a spurious `Locked` in the fault test).
        crate::log::try_lock(&lock, dir, &lock_path)?;
        let fresh = !is_mirror(dir);
        if fresh && dir.join(log_files::CONFIG).exists() {
            return Err(Error::AlreadyExists { dir: dir.into() });
        }
        let mut rewrite = fresh;
        if !fresh {
            let c = read_config(dir)?;
            if c.key.trim() != opts.key.to_string() {
                return Err(Error::BadKey {
                    path: dir.join(files::MIRROR),
                    why: format!("this mirror pins key {}, not {}", c.key.trim(), opts.key),
                });
            }
            if c.openings != opts.openings {
                if read_state(dir)?.size > 0 {
                    return Err(Error::NotALog {
                        dir: dir.into(),
                        why: if c.openings {
                            "this mirror copies sealed-field openings: run it with --with-openings (and a --token-file with the reveal scope)".into()
                        } else {
                            "this mirror was made without --with-openings and holds entries whose openings it never copied: mirror into a new directory with --with-openings".into()
                        },
                    });
                }
                rewrite = true;
            }
        }
        let paths = |n: &str| dir.join(n);
        let entries = open_rw(&paths(log_files::ENTRIES))?;
        let tree_path = paths(log_files::TREE);
        let tree = open_rw(&tree_path)?;
        let index = open_rw(&paths(log_files::INDEX))?;
        let checkpoints = open_rw(&paths(log_files::CHECKPOINTS))?;
        let state = if fresh {
            State::default()
        } else {
            read_state(dir)?
        };
        cut(
            fs.as_ref(),
            FileRole::Entries,
            &entries,
            &paths(log_files::ENTRIES),
            state.entries_len,
        )?;
        cut(
            fs.as_ref(),
            FileRole::Tree,
            &tree,
            &tree_path,
            stored_len(state.size) * 32,
        )?;
        cut(
            fs.as_ref(),
            FileRole::Index,
            &index,
            &paths(log_files::INDEX),
            state.size * 8,
        )?;
        cut(
            fs.as_ref(),
            FileRole::Checkpoints,
            &checkpoints,
            &paths(log_files::CHECKPOINTS),
            state.checkpoints_len,
        )?;
        let sealed_path = dir.join(crate::sealed::SIDECAR).join("records");
        let mut state = state;
        let sealed =
            match crate::fs::open_own(OpenOptions::new().read(true).write(true), &sealed_path) {
                Ok(f) => {
                    let have = f
                        .metadata()
                        .map_err(|e| Error::io("stat", &sealed_path, e))?
                        .len();
                    if !state.redact.is_empty() && have < state.sealed_len {
                        // A redaction's rewrite was renamed into place
                        // before the commit point named its length: it
                        // holds the committed records, whole.
                        state.sealed_len = have;
                    }
                    cut(
                        fs.as_ref(),
                        FileRole::Sealed,
                        &f,
                        &sealed_path,
                        state.sealed_len,
                    )?;
                    Some(f)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && state.sealed_len == 0 => None,
                Err(e) => return Err(Error::io("open", &sealed_path, e)),
            };
        if rewrite {
            fs.sync_dir(dir)
                .map_err(|e| Error::io("fsync directory", dir, e))?;
            let c = MirrorConfig {
                format: MIRROR_FORMAT.into(),
                url: url.into(),
                key: opts.key.to_string(),
                openings: opts.openings,
            };
            let mut text = serde_json::to_string_pretty(&c).expect("config serializes");
            text.push('\n');
            replace_file(
                fs.as_ref(),
                dir,
                files::MIRROR,
                FileRole::Config,
                text.as_bytes(),
            )?;
        }
        let cp_bytes = crate::fs::read_own(&paths(log_files::CHECKPOINTS))
            .map_err(|e| Error::io("read", paths(log_files::CHECKPOINTS), e))?;
        // The learned keys again, in order: one handed over to by a key
        // revoked now inherits its revocation (the --revoked given today).
        let mut keys = KeyRanges::pinned(opts.key.clone(), opts.also.clone(), opts.revoked.clone());
        for k in &state.keys {
            let v = VerifierKey::parse(&k.key).map_err(|e| Error::BadKey {
                path: dir.join(files::STATE),
                why: format!("learned key: {e}"),
            })?;
            let _ = keys.learn(v, k.from);
        }
        let all: Vec<VerifierKey> = keys.all().iter().map(|(k, _)| k.clone()).collect();
        let (cps, _) = parse_checkpoints(dir, &cp_bytes, &all)?;
        // What it holds, judged by today's revocations too: a checkpoint
        // accepted before `--revoked` was given that carries a revoked
        // key's signature (core's rule, FORMAT 15.3) fails every verifier
        // of the copy, so the mirror says so instead of going on quietly.
        // Only checkpoints from the smallest revoked size on are looked at.
        if let Some(low) = keys.revoked_from_any() {
            for c in cps.iter().filter(|c| c.checkpoint.size >= low) {
                let size = c.checkpoint.size;
                let signed = SignedCheckpoint::parse(c.note.as_bytes())
                    .map(|sc| sc.verify(&all).verified_by)
                    .unwrap_or_default();
                if let Some(n) = keys.revoked_note(size, &signed) {
                    return Err(Error::CheckpointMismatch {
                        dir: dir.into(),
                        why: format!(
                            "its checkpoint of size {size} carries the signature of a revoked key: {n}. It was accepted before this revocation was given; nothing was fetched (`stele verify {} --revoked …` names every such checkpoint; a mirror made anew follows today's keys)",
                            dir.display()
                        ),
                    });
                }
            }
        }
        let held = cps.last().cloned();
        let t = TreeFile {
            file: &tree,
            path: &tree_path,
            size: state.size,
        };
        let left = left_hashes(&t, state.size)?;
        let frontier = Frontier::from_left_hashes(state.size, left);
        if let Some(h) = &held
            && (h.checkpoint.size > state.size
                || merkle::root(&t, h.checkpoint.size)? != h.checkpoint.root)
        {
            return Err(Error::CheckpointMismatch {
                dir: dir.into(),
                why: format!(
                    "the stored tree does not match the held checkpoint of size {}",
                    h.checkpoint.size
                ),
            });
        }
        let origin = if state.size > 0 {
            Some(log_config(dir)?.0)
        } else {
            None
        };
        let mut m = Self {
            dir: dir.into(),
            fetcher: Arc::new(fetcher),
            keys,
            policy: opts.policy,
            learned: Vec::new(),
            fs,
            chunk_bytes: opts.chunk_bytes.max(1),
            parallel: opts.parallel.clamp(1, 256),
            _lock: lock,
            origin,
            state,
            entries,
            tree,
            tree_path,
            index,
            checkpoints,
            frontier,
            held,
            last_evidence: None,
            origin_seen: None,
            scratch: Scratch::default(),
            openings: opts.openings,
            sealed,
            sealed_pending: Vec::new(),
            redact_pending: Vec::new(),
            verifier: None,
        };
        m.finish_redactions()?;
        Ok(m)
    }

    // Applies the redactions the commit point names to `sealed/records`
    // (docs/FORMAT.md 13.7: the rule the origin applies, in one place,
    // crate::sealed::redacted_line), then moves the commit point to the
    // new length with none pending. Idempotent: a crash anywhere is
    // finished by the next open.
    fn finish_redactions(&mut self) -> Result<()> {
        if self.state.redact.is_empty() {
            return Ok(());
        }
        let mut next = self.state.clone();
        next.redact.clear();
        if self.sealed.is_some() {
            let sc = self.dir.join(crate::sealed::SIDECAR);
            let named = openings::redaction_set(&self.state.redact);
            if let Some(len) = crate::sealed::redact_records_file(
                self.fs.as_ref(),
                &sc,
                self.state.sealed_len,
                &named,
            )? {
                let p = sc.join("records");
                self.sealed = Some(
                    crate::fs::open_own(OpenOptions::new().read(true).write(true), &p)
                        .map_err(|e| Error::io("open", &p, e))?,
                );
                next.sealed_len = len;
            }
        }
        write_state(self.fs.as_ref(), &self.dir, &next)?;
        self.state = next;
        Ok(())
    }

    /// Verified entries held.
    pub fn size(&self) -> u64 {
        self.state.size
    }

    /// The latest stored checkpoint.
    pub fn held(&self) -> Option<&StoredCheckpoint> {
        self.held.as_ref()
    }

    /// The HTTP client (bytes and requests so far).
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// Where the last poll saved evidence (fork, rollback, mismatch).
    pub fn last_evidence(&self) -> Option<&Path> {
        self.last_evidence.as_deref()
    }

    /// The size of the last checkpoint the origin served with a good
    /// signature by the pinned key (even if the poll then failed: a mirror
    /// stuck behind a bad bundle still knows how far behind it is).
    pub fn origin_seen(&self) -> Option<u64> {
        self.origin_seen
    }

    /// The mirror directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn target(&self) -> Option<StoredCheckpoint> {
        let note = self.state.target.as_ref()?;
        let sc = SignedCheckpoint::parse(note.as_bytes()).ok()?;
        Some(StoredCheckpoint {
            checkpoint: sc.checkpoint,
            note: note.clone(),
        })
    }

    /// The keys the mirror accepts, each for its range of sizes: the
    /// pinned key and those learned from the log's rotations.
    pub fn keys(&self) -> &KeyRanges {
        &self.keys
    }

    /// One round: fetch the signed checkpoint, check it, and catch up to it
    /// chunk by chunk, each chunk verified and then made durable.
    pub fn poll(&mut self) -> Result<Progress, PollError> {
        self.last_evidence = None;
        let start = self.state.size;
        let (sc, note) = match fetch_checkpoint(&self.fetcher, &self.keys) {
            Err(Problem::Signature(why)) => self.follow_rotation(why)?,
            r => r?,
        };
        let mut p = self.advance(sc, note)?;
        p.added = self.state.size - start;
        if self.openings {
            // The origin's forget list (and auditors), every round: a
            // subject forgotten there is forgotten here.
            let n = self.state.size;
            let s = self.fetch_sealed(n, n, &[], &[])?;
            if openings::apply(self.fs.as_ref(), &self.dir, &s, false)? {
                self.fetch_all_wraps()?;
            }
        }
        Ok(p)
    }

    // The origin lists an auditor the mirror does not: `stele auditor add`
    // wrapped every existing key for it there. Its wraps of the key IDs the
    // mirror holds come in pages (`wraps=`, in key ID order); the auditor
    // list is written after the last, so a poll cut short fetches them all
    // again.
    fn fetch_all_wraps(&mut self) -> Result<(), PollError> {
        let n = self.state.size;
        let mut after: Option<stele_core::sealed::KeyId> = None;
        loop {
            let page = after.map_or_else(|| "all".to_string(), |k| k.to_string());
            let path = format!("v1/sealed?from={n}&to={n}&wraps={page}");
            let s = self.fetch_sealed_at(&path, n, n, &[], &[])?;
            match s.more {
                None => {
                    let _ = openings::apply(self.fs.as_ref(), &self.dir, &s, true)?;
                    return Ok(());
                }
                Some(k) if after.is_none_or(|a| k > a) => {
                    let _ = openings::apply(self.fs.as_ref(), &self.dir, &s, false)?;
                    after = Some(k);
                }
                Some(k) => {
                    return Err(Problem::Fetch(FetchError::Bad(format!(
                        "{}/{path}: the page ends at key {k}, not past the key it started after",
                        self.fetcher.base()
                    )))
                    .into());
                }
            }
        }
    }

    // The served checkpoint is not signed by a key the mirror knows for its
    // size: maybe the log rotated its key while the mirror was away (after
    // the overlap, tlog-tiles serves no checkpoint the old key signed). The
    // origin's key history (`GET /v1/keys`, proofs checked by core) names
    // the checkpoints that covered each rotation, signed by the replaced
    // key: the mirror catches up to each (verifying the stele.key event
    // like any entry, which teaches it the new key), then checks the served
    // checkpoint again. With a policy, the served checkpoint must meet the
    // quorum and extend each covering checkpoint before anything is stored.
    fn follow_rotation(&mut self, why: String) -> Result<(SignedCheckpoint, String), PollError> {
        let mut probe = self.keys.clone();
        let learned = match learn_keys(&self.fetcher, &mut probe, self.origin.as_deref()) {
            Ok(l) if !l.is_empty() => l,
            Ok(_) | Err(Problem::Fetch(_)) => return Err(Problem::Signature(why).into()),
            Err(p) => return Err(p.into()),
        };
        let body = self
            .fetcher
            .get("checkpoint", stele_core::note::MAX_NOTE_BYTES as u64)
            .map_err(Problem::Fetch)?;
        let from = format!("{}/checkpoint", self.fetcher.base());
        let size = SignedCheckpoint::parse(&body)
            .map_err(|e| Problem::Signature(format!("{from}: not a signed checkpoint: {e}")))?
            .checkpoint
            .size;
        let (served, _) = crate::remote::check_at(&body, &probe, size, &from)?;
        if let Some(p) = &self.policy {
            let _ = check_quorum(p, &served, &from)?;
        }
        for l in learned {
            let c = &l.covering.checkpoint;
            if c.size <= self.state.size {
                continue;
            }
            let mut tiles = TileSet::new(served.checkpoint.size);
            check_extends(&self.fetcher, c, &served.checkpoint, &mut tiles)?;
            let _ = self.advance(l.covering.clone(), l.step.checkpoint.clone())?;
        }
        match fetch_checkpoint(&self.fetcher, &self.keys) {
            Err(Problem::Signature(w)) => Err(Problem::Signature(format!(
                "{w} (after following the origin's key history to the keys {})",
                self.keys
                    .all()
                    .iter()
                    .map(|(k, _)| k.id_hex())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into()),
            r => Ok(r?),
        }
    }

    // Checks a signed checkpoint (already signed by a known key) against
    // the one held, and catches up to it.
    fn advance(&mut self, sc: SignedCheckpoint, note: String) -> Result<Progress, PollError> {
        let from = format!("{}/checkpoint", self.fetcher.base());
        let new = sc.checkpoint.clone();
        self.origin_seen = Some(new.size);
        if let Some(o) = &self.origin
            && &new.origin != o
        {
            return Err(Problem::Origin(format!(
                "{}/checkpoint names origin {:?}, but this mirror holds the log {:?}",
                self.fetcher.base(),
                new.origin,
                o
            ))
            .into());
        }
        let mut tiles = TileSet::new(new.size);
        // The reference is the last signed tree the mirror accepted: the
        // chunked catch-up target if there is one, else the held checkpoint.
        if let Some(r) = self.target().or_else(|| self.held.clone())
            && let Err(p) = check_extends(&self.fetcher, &r.checkpoint, &new, &mut tiles)
        {
            if matches!(p, Problem::Fork(_) | Problem::Rollback(_)) {
                self.save_evidence(p.kind(), &r.note, &note, None)?;
            }
            return Err(p.into());
        }
        // docs/FORMAT.md 14.4: a checkpoint without the quorum is never
        // stored as verified; the served note is kept as evidence.
        if let Some(policy) = &self.policy
            && let Err(p) = check_quorum(policy, &sc, &from)
        {
            let held = self
                .held
                .as_ref()
                .map(|h| h.note.clone())
                .unwrap_or_default();
            self.save_evidence(p.kind(), &held, &note, None)?;
            return Err(p.into());
        }
        let start = self.state.size;
        if self.state.size < new.size {
            self.catch_up(&new, &note, &mut tiles)?;
        }
        if self
            .held
            .as_ref()
            .is_none_or(|h| h.checkpoint.size < new.size)
        {
            // Caught up with nothing left to fetch (e.g. the previous run
            // committed the last chunk but died before the checkpoint).
            self.commit(&[], &[], &[], &note, true, &new)?;
        }
        Ok(Progress {
            origin_size: new.size,
            size: self.state.size,
            added: self.state.size - start,
        })
    }

    // `GET /v1/sealed` for entries [from, to), whose verified lines are
    // `buf` (ending at the absolute offsets `ends`), checked: a body that
    // does not parse is a bad response, records that do not fit the
    // entries a mismatch. Nothing is stored here.
    fn fetch_sealed(
        &self,
        from: u64,
        to: u64,
        buf: &[u8],
        ends: &[u64],
    ) -> Result<openings::Sidecar, PollError> {
        self.fetch_sealed_at(
            &format!("v1/sealed?from={from}&to={to}"),
            from,
            to,
            buf,
            ends,
        )
    }

    // `fetch_sealed` of the request `path`.
    fn fetch_sealed_at(
        &self,
        path: &str,
        from: u64,
        to: u64,
        buf: &[u8],
        ends: &[u64],
    ) -> Result<openings::Sidecar, PollError> {
        // Records are ciphertext of values taken out of these entries:
        // bounded by a few times the chunk.
        let limit = 4 * self.chunk_bytes.max(buf.len()) as u64 + (16 << 20);
        let body = self.fetcher.get(path, limit).map_err(Problem::Fetch)?;
        let base = self.state.entries_len;
        let entry = |i: u64| -> Option<&[u8]> {
            let j = usize::try_from(i.checked_sub(from)?).ok()?;
            let end = usize::try_from(*ends.get(j)? - base).ok()?;
            let start = if j == 0 {
                0
            } else {
                usize::try_from(ends[j - 1] - base).ok()?
            };
            buf.get(start..end.checked_sub(1)?)
        };
        let url = format!("{}/{path}", self.fetcher.base());
        openings::parse(&body, from, to, entry).map_err(|e| match e {
            openings::BodyError::Mismatch(why) => Problem::Mismatch(format!("{url}: {why}")).into(),
            openings::BodyError::Bad(why) => {
                Problem::Fetch(FetchError::Bad(format!("{url}: {why}"))).into()
            }
        })
    }

    fn tree_file(&self, size: u64) -> TreeFile<'_> {
        TreeFile {
            file: &self.tree,
            path: &self.tree_path,
            size,
        }
    }

    // Fetches, verifies and commits chunks of entries up to `new`. A
    // fetch thread runs ahead of verification and commits: entry bundles in
    // order, `parallel` at a time, at most `parallel` more waiting (so memory
    // stays a chunk plus two waves of bundles).
    fn catch_up(
        &mut self,
        new: &Checkpoint,
        note: &str,
        tiles: &mut TileSet,
    ) -> Result<(), PollError> {
        let size = new.size;
        let width = u64::from(TILE_WIDTH);
        let first = self.state.size / width;
        let last = (size - 1) / width;
        let wave_len = (self.chunk_bytes / (64 << 10)).clamp(1, self.parallel);
        let (tx, rx) = std::sync::mpsc::sync_channel::<(
            Tile,
            std::result::Result<Vec<u8>, FetchError>,
        )>(wave_len);
        let fetcher = self.fetcher.clone();
        std::thread::scope(|sc| {
            let _ = sc.spawn(move || {
                let mut k = first;
                // Waves of 1, 2, 4, ... bundles up to wave_len: a stele serve
                // origin then records the catch-up in growing ranges from the
                // start (docs/FORMAT.md 2.6) instead of one record per bundle
                // of a first wave arriving out of order.
                let mut len = 1;
                while k <= last {
                    let wave: Vec<Tile> = (k..=last)
                        .take(len)
                        .map(|i| Tile {
                            level: 0,
                            index: i,
                            width: (size - i * width).min(width) as u16,
                        })
                        .collect();
                    k += wave.len() as u64;
                    len = (len * 2).min(wave_len);
                    let f = &fetcher;
                    let bodies: Vec<_> = std::thread::scope(|ws| {
                        let hs: Vec<_> = wave
                            .iter()
                            .map(|t| ws.spawn(move || f.get(&t.entries_path(), MAX_BUNDLE_BYTES)))
                            .collect();
                        hs.into_iter()
                            .map(|h| {
                                h.join().unwrap_or_else(|_| {
                                    Err(FetchError::Bad("a fetch thread panicked".into()))
                                })
                            })
                            .collect()
                    });
                    for (t, body) in wave.into_iter().zip(bodies) {
                        let failed = body.is_err();
                        // The receiver is gone when the catch-up stopped.
                        if tx.send((t, body)).is_err() || failed {
                            return;
                        }
                    }
                }
            });
            let r = (|| {
                while self.state.size < size {
                    self.catch_up_chunk(new, note, tiles, &rx)?;
                }
                Ok(())
            })();
            drop(rx);
            r
        })
    }

    // Verifies and commits the next chunk, from bundles the fetch thread sends.
    fn catch_up_chunk(
        &mut self,
        new: &Checkpoint,
        note: &str,
        tiles: &mut TileSet,
        rx: &std::sync::mpsc::Receiver<(Tile, std::result::Result<Vec<u8>, FetchError>)>,
    ) -> Result<(), PollError> {
        let n = self.state.size;
        let size = new.size;
        let width = u64::from(TILE_WIDTH);
        let mut k = n / width;
        let mut buf = std::mem::take(&mut self.scratch.buf);
        let mut leaves = std::mem::take(&mut self.scratch.leaves);
        let mut ends = std::mem::take(&mut self.scratch.ends);
        buf.clear();
        leaves.clear();
        ends.clear();
        let mut b = n;
        while b < size && buf.len() < self.chunk_bytes {
            let (t, body) = rx
                .recv()
                .map_err(|_| Problem::Fetch(FetchError::Bad("the fetch thread stopped".into())))?;
            debug_assert_eq!(t.index, k, "bundles arrive in order");
            let w = t.width;
            let path = t.entries_path();
            let body = body.map_err(Problem::Fetch)?;
            let got = parse_entry_bundle(&body).map_err(|e| {
                Problem::Fetch(FetchError::Bad(format!(
                    "{}/{path}: {e}",
                    self.fetcher.base()
                )))
            })?;
            if got.len() != usize::from(w) {
                return Err(Problem::Fetch(FetchError::Bad(format!(
                    "{}/{path}: {} entries, expected {w}",
                    self.fetcher.base(),
                    got.len()
                )))
                .into());
            }
            let skip = (b - k * width) as usize;
            for (j, e) in got.iter().enumerate().skip(skip) {
                let i = k * width + j as u64;
                // Framing, not a format rule: an entry is one line.
                if e.contains(&b'\n') {
                    return Err(Problem::Mismatch(format!(
                        "{}/{path}: entry {i} contains a line feed",
                        self.fetcher.base()
                    ))
                    .into());
                }
                buf.extend_from_slice(e);
                buf.push(b'\n');
                leaves.push(leaf_hash(e));
                ends.push(self.state.entries_len + buf.len() as u64);
            }
            b = k * width + u64::from(w);
            k += 1;
            drop(got);
            self.fetcher.recycle(body);
        }
        self.verify_chunk(n, b, &buf, new, note, tiles)?;
        self.sealed_pending.clear();
        self.redact_pending.clear();
        if self.openings {
            // Verified stele.redact events: their openings are deleted
            // here too, in the chunk's records and in those held.
            self.redact_pending = openings::redactions_in(&buf);
        }
        if self.openings
            && memchr::memmem::find(&buf, stele_core::sealed::PLACEHOLDER_NEEDLE).is_some()
        {
            // The chunk's openings, checked against its verified entries;
            // the wraps and forget list made durable before the records.
            let s = self.fetch_sealed(n, b, &buf, &ends)?;
            let _ = openings::apply(self.fs.as_ref(), &self.dir, &s, false)?;
            self.sealed_pending = if self.redact_pending.is_empty() {
                s.records
            } else {
                openings::redact_lines(&s.records, &openings::redaction_set(&self.redact_pending))
            };
        }
        self.commit(&buf, &leaves, &ends, note, b == size, new)?;
        self.scratch.buf = buf;
        self.scratch.leaves = leaves;
        self.scratch.ends = ends;
        Ok(())
    }

    // Core's streaming verifier decides: a range export of entry n-1 (held,
    // so the chain and timestamp rules bind the first new entry to it), the
    // new entries, the right hashes of [b, N) from the origin's tiles when
    // the chunk stops short, and the signed checkpoint.
    fn verify_chunk(
        &mut self,
        n: u64,
        b: u64,
        buf: &[u8],
        new: &Checkpoint,
        note: &str,
        tiles: &mut TileSet,
    ) -> Result<(), PollError> {
        // One verifier for every chunk: its threads and buffers are kept.
        let mut v = self.verifier.take().unwrap_or_else(|| {
            ParallelVerifier::new(Options::new(Vec::new()), crate::view::verify_threads())
        });
        drop(v.finish_and_restart(self.keys.options(new.size)));
        let r = self.verify_chunk_with(&mut v, n, b, buf, new, note, tiles);
        self.verifier = Some(v);
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn verify_chunk_with(
        &mut self,
        v: &mut ParallelVerifier,
        n: u64,
        b: u64,
        buf: &[u8],
        new: &Checkpoint,
        note: &str,
        tiles: &mut TileSet,
    ) -> Result<(), PollError> {
        v.push(export::header(ExportKind::Range).as_bytes());
        // Entry n-1 is a stele.key event the mirror learned: core settles its
        // transition at the first checkpoint after it (docs/FORMAT.md 15.2),
        // which must then be the held one that covered it (size n), signed
        // by the replaced key. Without it (a chunk boundary fell right after
        // the event) the range starts at n: the chain link from n-1 to n is
        // then left to `stele verify` of the mirror.
        let after_event = n > 0 && self.state.keys.iter().any(|k| k.entry == n - 1);
        let covering = self
            .held
            .as_ref()
            .filter(|h| after_event && h.checkpoint.size == n)
            .map(|h| h.note.clone());
        let mut first = n.saturating_sub(1);
        if n == 0 {
            v.push(export::range_record(0, &[]).as_bytes());
        } else if after_event && covering.is_none() {
            first = n;
            let left = left_hashes(&self.tree_file(n), n)?;
            v.push(export::range_record(n, &left).as_bytes());
        } else {
            let left = left_hashes(&self.tree_file(n), n - 1)?;
            v.push(export::range_record(n - 1, &left).as_bytes());
            let start = if n == 1 {
                0
            } else {
                let mut e = [0u8; 8];
                self.index
                    .read_exact_at(&mut e, (n - 2) * 8)
                    .map_err(|e| Error::io("read", self.dir.join(log_files::INDEX), e))?;
                u64::from_le_bytes(e)
            };
            let mut last = vec![0u8; (self.state.entries_len - start) as usize];
            self.entries
                .read_exact_at(&mut last, start)
                .map_err(|e| Error::io("read", self.dir.join(log_files::ENTRIES), e))?;
            v.push(&last);
            if let Some(c) = &covering {
                v.push(export::checkpoint_record(c).as_bytes());
            }
        }
        v.push(buf);
        if b < new.size {
            let right = self.right_hashes(b, new.size, tiles)?;
            v.push(export::right_record(new.size, &right).as_bytes());
        }
        v.push(export::checkpoint_record(note).as_bytes());
        let r = v.finish_and_restart(Options::new(Vec::new()));
        let expected = b - first;
        if r.verdict == Verdict::Verified
            && r.failures_total == 0
            && r.tree_size == Some(new.size)
            && r.entries == expected
        {
            // docs/FORMAT.md 15.2: keys core accepted through a signed
            // transition in these entries (committed with them).
            self.learned = r
                .keys
                .iter()
                .flatten()
                .filter(|k| k.trusted && k.signed == Some(true))
                .filter_map(|k| Some((VerifierKey::parse(&k.key).ok()?, k)))
                .filter(|(v, _)| !self.keys.knows(v))
                .map(|(_, k)| LearnedKey {
                    key: k.key.clone(),
                    entry: k.entry,
                    from: k.from,
                })
                .collect();
            return Ok(());
        }
        let mut why: Vec<String> = r
            .failures
            .iter()
            .take(3)
            .map(|f| f.message.clone())
            .collect();
        if why.is_empty() {
            why.push(format!(
                "verdict {}, {} entries read, tree size {:?}",
                r.verdict.as_str(),
                r.entries,
                r.tree_size
            ));
        }
        let msg = format!(
            "entries {n}..{b} from {} do not verify against its signed checkpoint of size {}: {}",
            self.fetcher.base(),
            new.size,
            why.join("; ")
        );
        let report = serde_json::to_string_pretty(&r).expect("report serializes");
        let held = self
            .held
            .as_ref()
            .map(|h| h.note.clone())
            .unwrap_or_default();
        self.save_evidence("mismatch", &held, note, Some(&report))?;
        Err(Problem::Mismatch(msg).into())
    }

    // The right hashes of [b, size) from the origin's hash tiles, fetching
    // the tiles that hold them (O(log n) of them).
    fn right_hashes(&self, b: u64, size: u64, tiles: &mut TileSet) -> Result<Vec<Hash>, PollError> {
        for _ in 0..200 {
            match merkle::right_hashes(&*tiles, b, size) {
                Ok(h) => return Ok(h),
                Err(TileError::MissingTile { level, index, path }) => {
                    let t = tile_for_hash(level, index, size).ok_or_else(|| Problem::BadTile {
                        path: path.clone(),
                        why: format!("no tile holds the hash at level {level}, index {index}"),
                    })?;
                    self.fetcher.tile_into(&t, tiles)?;
                }
                Err(e) => {
                    return Err(Problem::BadTile {
                        path: "tiles".into(),
                        why: e.to_string(),
                    }
                    .into());
                }
            }
        }
        Err(Problem::BadTile {
            path: "tiles".into(),
            why: format!("the right hashes of {b}..{size} need more than 200 tiles"),
        }
        .into())
    }

    // Makes a verified chunk durable, then moves the commit point.
    fn commit(
        &mut self,
        buf: &[u8],
        leaves: &[Hash],
        ends: &[u64],
        note: &str,
        store_checkpoint: bool,
        new: &Checkpoint,
    ) -> Result<()> {
        let fs = self.fs.clone();
        let dir = self.dir.clone();
        let p = |n: &str| dir.join(n);
        let n = self.state.size;
        if !buf.is_empty() {
            fs.write_at(
                FileRole::Entries,
                &self.entries,
                buf,
                self.state.entries_len,
            )
            .map_err(|e| Error::io("write", p(log_files::ENTRIES), e))?;
            let mut hashes = std::mem::take(&mut self.scratch.hashes);
            hashes.clear();
            for l in leaves {
                self.frontier.push(*l, &mut hashes);
            }
            fs.write_at(FileRole::Tree, &self.tree, &hashes, stored_len(n) * 32)
                .map_err(|e| Error::io("write", &self.tree_path, e))?;
            let mut idx = std::mem::take(&mut self.scratch.idx);
            idx.clear();
            idx.extend(ends.iter().flat_map(|e| e.to_le_bytes()));
            fs.write_at(FileRole::Index, &self.index, &idx, n * 8)
                .map_err(|e| Error::io("write", p(log_files::INDEX), e))?;
            self.scratch.hashes = hashes;
            self.scratch.idx = idx;
            for (f, role, name) in [
                (&self.entries, FileRole::Entries, log_files::ENTRIES),
                (&self.tree, FileRole::Tree, log_files::TREE),
                (&self.index, FileRole::Index, log_files::INDEX),
            ] {
                fs.sync_data(role, f)
                    .map_err(|e| Error::io("fdatasync", p(name), e))?;
            }
        }
        let mut sealed_len = self.state.sealed_len;
        if !self.sealed_pending.is_empty() {
            let sp = dir.join(crate::sealed::SIDECAR).join("records");
            if self.sealed.is_none() {
                openings::ensure_dirs(fs.as_ref(), &dir)?;
                let f = crate::fs::open_private_rw(&sp).map_err(|e| Error::io("open", &sp, e))?;
                let sd = dir.join(crate::sealed::SIDECAR);
                fs.sync_dir(&sd)
                    .map_err(|e| Error::io("fsync directory", &sd, e))?;
                self.sealed = Some(f);
            }
            let f = self.sealed.as_ref().expect("opened above");
            fs.write_at(FileRole::Sealed, f, &self.sealed_pending, sealed_len)
                .map_err(|e| Error::io("write", &sp, e))?;
            fs.sync_data(FileRole::Sealed, f)
                .map_err(|e| Error::io("fdatasync", &sp, e))?;
            sealed_len += self.sealed_pending.len() as u64;
            self.sealed_pending.clear();
        }
        let mut keys = self.state.keys.clone();
        keys.extend(self.learned.iter().cloned());
        let mut next = State {
            size: n + leaves.len() as u64,
            entries_len: self.state.entries_len + buf.len() as u64,
            checkpoints_len: self.state.checkpoints_len,
            target: None,
            keys,
            sealed_len,
            redact: std::mem::take(&mut self.redact_pending),
        };
        if store_checkpoint {
            let rec = format!("{}\n{note}", note.len());
            fs.write_at(
                FileRole::Checkpoints,
                &self.checkpoints,
                rec.as_bytes(),
                next.checkpoints_len,
            )
            .map_err(|e| Error::io("write", p(log_files::CHECKPOINTS), e))?;
            fs.sync_data(FileRole::Checkpoints, &self.checkpoints)
                .map_err(|e| Error::io("fdatasync", p(log_files::CHECKPOINTS), e))?;
            next.checkpoints_len += rec.len() as u64;
        } else {
            // The signed note this chunk was verified against.
            next.target = Some(note.to_string());
        }
        if self.origin.is_none() {
            // The first commit: the directory becomes a log readers open.
            let config = serde_json::json!({
                "format": crate::log::FORMAT,
                "origin": new.origin,
                "key_file": log_files::KEY,
            });
            let mut text = serde_json::to_string_pretty(&config).expect("config serializes");
            text.push('\n');
            replace_file(
                fs.as_ref(),
                &dir,
                log_files::CONFIG,
                FileRole::Config,
                text.as_bytes(),
            )?;
            self.origin = Some(new.origin.clone());
        }
        write_state(fs.as_ref(), &dir, &next)?;
        if store_checkpoint {
            self.held = Some(StoredCheckpoint {
                checkpoint: new.clone(),
                note: note.to_string(),
            });
        }
        for k in std::mem::take(&mut self.learned) {
            if let Ok(v) = VerifierKey::parse(&k.key) {
                let _ = self.keys.learn(v, k.from);
            }
        }
        self.state = next;
        // The chunk's redactions, in the records committed before it.
        self.finish_redactions()
    }

    fn save_evidence(
        &mut self,
        kind: &str,
        held: &str,
        served: &str,
        report: Option<&str>,
    ) -> Result<()> {
        let root = self.dir.join(files::EVIDENCE);
        std::fs::create_dir_all(&root).map_err(|e| Error::io("create directory", &root, e))?;
        let micros = crate::log::system_micros();
        let sub = root.join(format!("{}-{kind}", micros / 1_000_000));
        let sub = if sub.exists() {
            root.join(format!("{micros}-{kind}"))
        } else {
            sub
        };
        std::fs::create_dir_all(&sub).map_err(|e| Error::io("create directory", &sub, e))?;
        let fs = self.fs.as_ref();
        if !held.is_empty() {
            replace_file(
                fs,
                &sub,
                "held.checkpoint",
                FileRole::Other,
                held.as_bytes(),
            )?;
        }
        replace_file(
            fs,
            &sub,
            "served.checkpoint",
            FileRole::Other,
            served.as_bytes(),
        )?;
        if let Some(r) = report {
            replace_file(fs, &sub, "report.json", FileRole::Other, r.as_bytes())?;
        }
        fs.sync_dir(&root)
            .map_err(|e| Error::io("fsync directory", &root, e))?;
        self.last_evidence = Some(sub);
        Ok(())
    }

    /// Records the current chunk target before a chunked catch-up (so a
    /// later fork between it and a newer checkpoint is caught).
    pub fn state(&self) -> &State {
        &self.state
    }
}

/// The outcome of the last poll, written to `mirror-status.json` for
/// `stele serve --read-only`'s `/metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    /// The origin's URL.
    pub url: String,
    /// Size of the origin's latest signed checkpoint seen.
    pub origin_size: u64,
    /// Verified entries held.
    pub verified_size: u64,
    /// Unix seconds of the last poll.
    pub last_poll: i64,
    /// Unix seconds when the mirror last held everything the origin signed.
    pub caught_up_at: i64,
    /// Alerts raised since the mirror process started.
    pub alerts: u64,
    /// The last alert's kind, if any.
    pub last_alert: Option<String>,
    /// Body bytes fetched since start.
    pub bytes_fetched: u64,
}

/// Writes `mirror-status.json` (tmp and rename; not synced: it is a gauge).
pub fn write_status(dir: &Path, s: &Status) -> Result<()> {
    let tmp = dir.join(".mirror-status.json.tmp");
    let text = serde_json::to_string(s).expect("status serializes") + "\n";
    std::fs::write(&tmp, text).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, dir.join(files::STATUS))
        .map_err(|e| Error::io("rename", dir.join(files::STATUS), e))
}

/// Reads `mirror-status.json`, if the directory is a mirror that polled.
pub fn read_status(dir: &Path) -> Option<Status> {
    let t = std::fs::read_to_string(dir.join(files::STATUS)).ok()?;
    serde_json::from_str(&t).ok()
}

/// Whether the committed entries of the mirror in `dir` hold a sealed-field
/// placeholder (docs/FORMAT.md 13.2), read in 1 MiB blocks.
pub fn holds_sealed(dir: &Path) -> Result<bool> {
    let state = read_state(dir)?;
    let p = dir.join(log_files::ENTRIES);
    let f = crate::fs::open_own_read(&p).map_err(|e| Error::io("open", &p, e))?;
    let needle = format!("\"{}\"", stele_core::sealed::PLACEHOLDER_MEMBER);
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < state.entries_len {
        let n = ((state.entries_len - at) as usize).min(buf.len());
        f.read_exact_at(&mut buf[..n], at)
            .map_err(|e| Error::io("read", &p, e))?;
        if finder.find(&buf[..n]).is_some() {
            return Ok(true);
        }
        // Overlap by the needle's length so no match straddles two blocks.
        if at + n as u64 >= state.entries_len {
            break;
        }
        at += (n - needle.len()) as u64;
    }
    Ok(false)
}

/// Turns a mirror into a writer's log directory: copies the committed
/// entries, checkpoints and derived files to `new_dir` (each fsync'ed), and
/// names `key_file` (kept where it is, apart from the data) as the log's
/// key, with the sealing rules `seal` (a mirror holds none). The key must
/// be the log's: its verifier key must be the one the mirror pins. The
/// caller then opens the result with [`crate::Log::open`].
pub fn restore(
    mirror_dir: &Path,
    new_dir: &Path,
    key_file: &Path,
    seal: &crate::sealed::SealConfig,
) -> Result<State> {
    seal.check()?;
    let c = read_config(mirror_dir)?;
    let state = read_state(mirror_dir)?;
    // The log's current key: the last one the mirror learned from the
    // log's rotations, else the pinned one.
    let current = state.keys.last().map_or(c.key.trim(), |k| k.key.as_str());
    let signer = crate::key::load(key_file)?;
    if signer.verifier().to_string() != current {
        return Err(Error::BadKey {
            path: key_file.into(),
            why: format!(
                "its verifier key is {}, but the mirror's log is signed by {current}{}",
                signer.verifier(),
                if state.keys.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (its key since size {})",
                        state.keys.last().map_or(0, |k| k.from)
                    )
                }
            ),
        });
    }
    if state.size == 0 {
        return Err(Error::NotALog {
            dir: mirror_dir.into(),
            why: "the mirror holds no verified entries yet".into(),
        });
    }
    let (origin, _) = log_config(mirror_dir)?;
    // Never over a log or part of one (its entries would be replaced); other
    // files (the key, say) may be there.
    crate::log::check_new_dir(new_dir, true)?;
    let sidecar = new_dir.join(crate::sealed::SIDECAR);
    if sidecar.exists() {
        return Err(Error::DirNotEmpty {
            dir: new_dir.into(),
            why: format!(
                "holds {}: part of a log, e.g. a partial restore",
                sidecar.display()
            ),
            log_files: true,
        });
    }
    let made_dir = !new_dir.exists();
    std::fs::create_dir_all(new_dir).map_err(|e| Error::io("create directory", new_dir, e))?;
    if made_dir {
        crate::fs::make_private(new_dir).map_err(|e| Error::io("chmod", new_dir, e))?;
    }
    // A restore that fails leaves nothing behind: what it wrote is removed,
    // so the directory can be used again and is never half a log.
    // With sealing rules, the log's own secret (a mirror has none): new
    // sealed values get new subject indexes, as after any restore.
    let copied = copy_checked(mirror_dir, new_dir, &c, &state).and_then(|()| {
        if seal.seal.is_empty() {
            Ok(())
        } else {
            crate::sealed::fresh_secret(&RealFs, new_dir)
        }
    });
    if let Err(e) = copied {
        if made_dir {
            let _ = std::fs::remove_dir_all(new_dir);
        } else {
            for name in COPIED {
                let _ = std::fs::remove_file(new_dir.join(name));
            }
            let _ = std::fs::remove_dir_all(&sidecar);
        }
        return Err(e);
    }
    let fs = RealFs;
    let key_path = std::path::absolute(key_file).map_err(|e| Error::io("resolve", key_file, e))?;
    let mut config = serde_json::json!({
        "format": crate::log::FORMAT,
        "origin": origin,
        "key_file": key_path,
    });
    if !seal.seal.is_empty() {
        config["sealed"] = serde_json::to_value(seal).expect("seal config serializes");
    }
    // The keys it replaced (docs/FORMAT.md 15), as `stele key rotate`
    // records them: their private keys are not in a mirror, so the named
    // files do not exist and no overlap is left to co-sign.
    if !state.keys.is_empty() {
        let mut history = vec![c.key.trim().to_string()];
        history.extend(state.keys.iter().map(|k| k.key.clone()));
        let retired: Vec<serde_json::Value> = state
            .keys
            .iter()
            .zip(&history)
            .map(|(next, old)| {
                let id = VerifierKey::parse(old).map_or_else(|_| "old".into(), |k| k.id_hex());
                serde_json::json!({
                    "key_file": format!("retired-key-{id}.absent"),
                    "key": old,
                    "to": next.from,
                    "overlap": 0,
                })
            })
            .collect();
        config["retired_keys"] = serde_json::Value::Array(retired);
    }
    let mut text = serde_json::to_string_pretty(&config).expect("config serializes");
    text.push('\n');
    // Written last: it marks the directory as a log.
    replace_file(
        &fs,
        new_dir,
        log_files::CONFIG,
        FileRole::Config,
        text.as_bytes(),
    )?;
    Ok(state)
}

// The files `restore` copies into the new directory.
const COPIED: [&str; 4] = [
    log_files::ENTRIES,
    log_files::CHECKPOINTS,
    log_files::TREE,
    log_files::INDEX,
];

// Copies the mirror's committed files and openings into `new_dir` (each
// fsync'ed), then verifies the copy against the key the mirror pins: the
// restored log's key signs whatever it holds next, so it must hold only
// what the log's own checkpoints cover. A mirror's commit point and files
// are not signed (anyone who can write to its directory can change them).
fn copy_checked(mirror_dir: &Path, new_dir: &Path, c: &MirrorConfig, state: &State) -> Result<()> {
    let fs = RealFs;
    let lens = [
        state.entries_len,
        state.checkpoints_len,
        stored_len(state.size) * 32,
        state.size * 8,
    ];
    for (name, len) in COPIED.into_iter().zip(lens) {
        let from = mirror_dir.join(name);
        let to = new_dir.join(name);
        let mut src = crate::fs::open_own_read(&from).map_err(|e| Error::io("open", &from, e))?;
        let dst = crate::fs::open_own(
            std::os::unix::fs::OpenOptionsExt::mode(
                OpenOptions::new().write(true).create(true).truncate(true),
                crate::fs::PRIVATE_FILE_MODE,
            ),
            &to,
        )
        .map_err(|e| Error::io("create", &to, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &dst);
        let copied = std::io::copy(&mut std::io::Read::take(&mut src, len), &mut w)
            .map_err(|e| Error::io("copy", &to, e))?;
        std::io::Write::flush(&mut w).map_err(|e| Error::io("write", &to, e))?;
        drop(w);
        if copied != len {
            return Err(Error::CheckpointMismatch {
                dir: mirror_dir.into(),
                why: format!("{name} has {copied} bytes, the commit point says {len}"),
            });
        }
        fs.sync_data(FileRole::Other, &dst)
            .map_err(|e| Error::io("fdatasync", &to, e))?;
    }
    // Openings the mirror copied (`--with-openings`): the restored log's
    // exports carry them again.
    openings::copy(&fs, mirror_dir, new_dir, state.sealed_len, &state.redact)?;
    fs.sync_dir(new_dir)
        .map_err(|e| Error::io("fsync directory", new_dir, e))?;
    let pinned = VerifierKey::parse(c.key.trim()).map_err(|e| Error::NotALog {
        dir: mirror_dir.into(),
        why: format!("mirror.json: its key: {e}"),
    })?;
    let report =
        crate::view::verify_files(new_dir, Options::new(vec![pinned]), &[], &mut |_, _| {})?;
    let signed = report.tree_size.unwrap_or(0);
    if report.verdict != Verdict::Verified || report.entries != state.size || signed != state.size {
        let why = match report.failures.first() {
            Some(f) => format!("{} (code {})", f.message, f.code.as_str()),
            None => format!(
                "its commit point says {} entries, but {} are signed by the log's checkpoints",
                state.size, signed
            ),
        };
        return Err(Error::CheckpointMismatch {
            dir: mirror_dir.into(),
            why: format!(
                "the mirror's copy does not verify against the key it pins: {why}; nothing was restored (entries no checkpoint of the log covers are never signed with its key)"
            ),
        });
    }
    // Every redaction the verified copy logs, applied to its records,
    // whatever the mirror's held (a mirror's files are not signed; one
    // made before mirrors applied redactions still has their openings).
    let sc = new_dir.join(crate::sealed::SIDECAR);
    let rp = sc.join("records");
    if let Ok(m) = std::fs::metadata(&rp) {
        let red =
            openings::redactions_in_file(&new_dir.join(log_files::ENTRIES), state.entries_len)?;
        let _ =
            crate::sealed::redact_records_file(&fs, &sc, m.len(), &openings::redaction_set(&red))?;
    }
    Ok(())
}

/// The key history `GET /v1/keys` serves for the log or mirror in `dir`
/// (writer/README.md, "Key history"): for each rotation, the `stele.key`
/// event's index, the first checkpoint held that covers it, and a `range`
/// export of the event up to that checkpoint. A writer's log names its
/// rotations in `stele.json` (`retired_keys`), a mirror in its commit point.
/// Read from `view` (one per request: each rotation once reopened the
/// log and copied its checkpoints, ~1.7 s a request at 67k checkpoints and
/// 8 rotations).
pub fn key_history(view: &crate::View) -> Result<KeyHistory> {
    let dir = view.dir();
    let froms: Vec<u64> = if is_mirror(dir) {
        read_state(dir)?.keys.iter().map(|k| k.from).collect()
    } else {
        let p = dir.join(log_files::CONFIG);
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io("read", &p, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::NotALog {
            dir: dir.into(),
            why: format!("{}: {e}", log_files::CONFIG),
        })?;
        v["retired_keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["to"].as_u64())
            .collect()
    };
    let mut out = KeyHistory::default();
    for from in froms.into_iter().filter(|&f| f > 0 && f <= view.size()) {
        let entry = from - 1;
        let Some(covering) = view
            .checkpoints()
            .iter()
            .find(|c| c.checkpoint.size >= from)
            .cloned()
        else {
            continue;
        };
        let line = view.entry(entry)?;
        let Some(key) = stele_core::entry::parse_entry(&line)
            .ok()
            .and_then(|e| e.field_string("key"))
        else {
            continue;
        };
        // Ended, as an export of the log cut to that size ends, by the
        // latest checkpoint of that size (with witnesses, one signed again
        // with its cosignatures).
        let end = view
            .checkpoints()
            .iter()
            .rev()
            .find(|c| c.checkpoint.size == covering.checkpoint.size)
            .unwrap_or(&covering);
        let mut proof = Vec::new();
        view.export_range_covered(entry, from, end, &mut proof)?;
        out.keys.push(KeyStep {
            key: key.to_string(),
            entry,
            from,
            checkpoint: covering.note,
            proof: String::from_utf8_lossy(&proof).into_owned(),
        });
    }
    Ok(out)
}
