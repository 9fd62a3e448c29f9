//! The log: one writer, group commit, recovery on open, checkpoints.

use crate::error::{Error, Result};
use crate::fs::{FileRole, Fs, RealFs};
use crate::key;
use crate::sealed::{Intent, SealConfig, SealScratch, Sealer};
use crate::tree::{Frontier, TreeFile, position, stored_len};
use crate::view::{
    Checkpoints, Index, StoredCheckpoint, TreeSrc, View, parse_checkpoints, parse_checkpoints_after,
};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use stele_core::checkpoint::{Checkpoint, SignedCheckpoint};
use stele_core::entry::{
    GENESIS_TYPE, LinePrefix, MAX_ENTRY_BYTES, RESERVED_PREFIX, Timestamp, TimestampText,
    ZERO_PREV, genesis_event, parse_entry,
};
use stele_core::hash::{Hash, leaf_hash};
use stele_core::merkle::left_hashes;

/// File names inside a log directory.
pub mod files {
    /// Configuration: origin and key file.
    pub const CONFIG: &str = "stele.json";
    /// Entry lines, the source of truth.
    pub const ENTRIES: &str = "entries.jsonl";
    /// Signed checkpoints, append-only, each `<length>\n<note>`.
    pub const CHECKPOINTS: &str = "checkpoints";
    /// Stored tree hashes (derived, rebuilt on open when wrong).
    pub const TREE: &str = "tree";
    /// End offset of each entry, u64 little-endian (derived).
    pub const INDEX: &str = "index";
    /// The writer lock.
    pub const LOCK: &str = "lock";
    /// The check mark: entries checked up to a signed checkpoint (derived).
    pub const CHECKED: &str = "checked";
    /// The default private key file name.
    pub const KEY: &str = "key";
}

/// A source of the current time, in microseconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How a log is opened.
#[derive(Clone)]
pub struct LogOptions {
    /// The file system seam (real by default; tests inject faults).
    pub fs: Arc<dyn Fs>,
    /// Sign a checkpoint when this many entries are unsigned.
    pub checkpoint_every: Option<u64>,
    /// Sign a checkpoint when the tree grew and this long has passed since
    /// the last one. With `background_checkpoints`, a thread checks this.
    pub checkpoint_interval: Option<Duration>,
    /// Run a thread that signs due checkpoints even when no one appends.
    pub background_checkpoints: bool,
    /// The clock (system UTC by default).
    pub clock: Clock,
    /// Move the check mark forward when a checkpoint is signed this many
    /// bytes of entries after it: an open re-checks at most about this much
    /// (plus what was appended since the last checkpoint). See
    /// writer/README.md, "Opening and recovery".
    pub check_mark_bytes: u64,
    /// Sealing rules written into a log's configuration when it is created
    /// (docs/FORMAT.md section 13.9); opening a log reads them from there.
    pub seal: SealConfig,
    /// Witnesses to cosign each checkpoint before it is stored (docs/FORMAT.md
    /// 14.5): a checkpoint whose quorum is not met is not stored (the
    /// previous one stays the latest; the entries are durable regardless).
    pub cosign: Option<Arc<dyn crate::witness::Cosign>>,
}

impl fmt::Debug for LogOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogOptions")
            .field("fs", &self.fs)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("background_checkpoints", &self.background_checkpoints)
            .field("check_mark_bytes", &self.check_mark_bytes)
            .field("cosign", &self.cosign)
            .finish_non_exhaustive()
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            fs: Arc::new(RealFs),
            checkpoint_every: Some(1024),
            checkpoint_interval: Some(Duration::from_secs(60)),
            background_checkpoints: false,
            clock: Arc::new(system_micros),
            check_mark_bytes: 4 << 20,
            seal: SealConfig::default(),
            cosign: None,
        }
    }
}

/// The system clock in microseconds since the Unix epoch (UTC).
pub fn system_micros() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// What `append` hands back once the entry is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The entry's index.
    pub seq: u64,
    /// RFC 9162 leaf hash of the entry line.
    pub leaf_hash: Hash,
}

/// What recovery on open did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut from the end of the entries file.
    pub dropped_bytes: u64,
    /// The entries file offset where the cut was made.
    pub offset: u64,
    /// Why.
    pub reason: String,
    /// Seq of the `stele.recovery` entry that records it.
    pub seq: u64,
}

#[derive(Debug, serde::Deserialize, serde::Serialize)]
struct Config {
    format: String,
    origin: String,
    key_file: PathBuf,
    #[serde(default)]
    sealed: SealConfig,
    /// Written in the clear on purpose although the sidecar shows sealed
    /// values (`stele restore --unsealed`, or by hand): without it, a log
    /// with no sealing rules and a sidecar secret is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    unsealed: bool,
    /// Keys replaced by rotations, oldest first (docs/FORMAT.md 15).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retired_keys: Vec<rotation::RetiredKey>,
    /// A rotation asked for and not yet complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotation: Option<rotation::PendingRotation>,
    /// The witness policy (C2SP tlog-policy text) every checkpoint of this
    /// log must be cosigned under (docs/FORMAT.md 14.5): remembered from
    /// `stele checkpoint --policy` / `stele serve --policy`, so that every
    /// writer of the log asks the witnesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    witness_policy: Option<String>,
}

mod rotation;
pub use rotation::{MAX_OVERLAP, Rotated, abort_rotation, request_rotation};

pub(crate) const FORMAT: &str = "stele-log v1";

/// An open, writable log. Share it across threads (`&Log` or `Arc<Log>`):
/// concurrent appends are sequenced here and share one write and one
/// fdatasync (group commit).
///
/// **Guarantee:** when [`Log::append`] or [`Log::append_batch`] returns `Ok`,
/// the entries are in the entries file and that file was fdatasync'ed.
#[derive(Debug)]
pub struct Log {
    shared: Arc<Shared>,
    timer: Option<Timer>,
    // With witnesses: the thread that runs automatic witness rounds.
    rounds: Option<std::thread::JoinHandle<()>>,
}

// The background checkpoint thread and its stop flag.
type Timer = (std::thread::JoinHandle<()>, Arc<(Mutex<bool>, Condvar)>);

struct Shared {
    dir: PathBuf,
    entries_path: PathBuf,
    opts: LogOptions,
    origin: String,
    keys: Mutex<rotation::KeySet>,
    // One rotation at a time (rotation.rs).
    rotating: Mutex<()>,
    // One witness round at a time; taken before `store`, never while holding it.
    witnessing: Mutex<()>,
    // (an automatic witness round is wanted, the round thread is to stop)
    rounds: (Mutex<(bool, bool)>, Condvar),
    // The configuration file last looked at by the checkpoint timer.
    config_seen: Mutex<Option<(u64, i64, i64, u64)>>,
    entries: Arc<File>,
    build: Mutex<Build>,
    commit: Mutex<Commit>,
    cv: Condvar,
    store: Mutex<Store>,
    // A buffer for the canonical texts of a batch, kept between appends
    // (fresh buffers and a String per event made the allocator fault in
    // new pages on every batch).
    scratch: Mutex<Texts>,
    recovery: Option<Recovery>,
    sealer: Sealer,
    // Where `timestamps`' records are, shared by every view (anchor.rs).
    stamps: crate::anchor::TokenIndex,
    _lock: DirLock,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

// Entries built but not yet written: appenders add here under one short lock.
#[derive(Debug)]
struct Build {
    next_seq: u64,
    prev: Hash,
    last_ts: i64,
    buf: Vec<u8>,
    leaves: Vec<Hash>,
    lens: Vec<u64>,
    // Sidecar record lines (encrypted openings) of the entries in `buf`.
    sealed: Vec<u8>,
    generation: u64,
}

#[derive(Debug, Default)]
struct Commit {
    durable: u64,
    leader: bool,
    poisoned: Option<String>,
    // (generation, durable count when it failed, error kind, message)
    failures: Vec<(u64, u64, io::ErrorKind, String)>,
}

#[derive(Debug)]
struct Store {
    size: u64,
    prev: Hash,
    entries_len: u64,
    frontier: Frontier,
    tree: Arc<File>,
    tree_path: PathBuf,
    index: Arc<File>,
    index_path: PathBuf,
    checkpoints: File,
    checkpoints_path: PathBuf,
    checkpoints_len: u64,
    cps: Checkpoints,
    last_cp_at: Instant,
    // Entries file bytes covered by the check mark (0: none).
    marked_len: u64,
    // Checkpoints file bytes covered by the check mark (0: none).
    marked_cps_len: u64,
    // The last attempt to have a checkpoint witnessed failed.
    witness_failed: bool,
    // The tree's top levels, cached for proofs (shared by every view).
    upper: Arc<crate::tree::UpperLevels>,
    // Emptied buffers kept for the next group commit: growing fresh ones made
    // the kernel fault in and clear new pages on every batch.
    spare: (Vec<u8>, Vec<Hash>, Vec<u64>, Vec<u8>),
    // The same for the bytes appended to the tree and index files.
    derived: (Vec<u8>, Vec<u8>),
}

/// The longest origin a new log takes. A checkpoint note (16 KiB at most,
/// `stele_core::note::MAX_NOTE_BYTES`) names the origin in its first line
/// and, as the key's name, in each signature line (two keys during a
/// rotation); 1 KiB leaves room for those and for witnesses' cosignatures.
/// An origin of 8K to 32K characters made a log whose first checkpoint
/// was over the limit: it never verified.
pub const MAX_ORIGIN_BYTES: usize = 1024;

/// The error for an origin over [`MAX_ORIGIN_BYTES`].
pub fn origin_too_long(origin: &str) -> String {
    format!(
        "the origin is {} bytes, more than the {MAX_ORIGIN_BYTES} a log takes (its checkpoint notes, at most 16 KiB, repeat it in every signature line)",
        origin.len()
    )
}

fn read_config(dir: &Path) -> Result<Config> {
    let path = dir.join(files::CONFIG);
    let text = match crate::fs::read_own(&path).and_then(|b| {
        String::from_utf8(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotALog {
                dir: dir.into(),
                why: format!("{} is missing", files::CONFIG),
            });
        }
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let c: Config = serde_json::from_str(&text).map_err(|e| Error::NotALog {
        dir: dir.into(),
        why: format!("{}: {e}", files::CONFIG),
    })?;
    if c.format != FORMAT {
        return Err(Error::NotALog {
            dir: dir.into(),
            why: format!(
                "{} has format {:?}, expected {FORMAT:?}",
                files::CONFIG,
                c.format
            ),
        });
    }
    Ok(c)
}

/// Whether the log in `dir` remembers a witness policy (`stele.json`'s
/// `witness_policy`): its writers store only cosigned checkpoints.
pub fn remembers_witness_policy(dir: &Path) -> Result<bool> {
    Ok(read_config(dir)?.witness_policy.is_some())
}

/// The origin and key file path a log directory's configuration names.
pub fn log_config(dir: &Path) -> Result<(String, PathBuf)> {
    let c = read_config(dir)?;
    let key = if c.key_file.is_absolute() {
        c.key_file
    } else {
        dir.join(c.key_file)
    };
    Ok((c.origin, key))
}

// Never through a symbolic link, only a regular file: crate::fs::open_own.
fn open_rw(path: &Path, create: bool) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::fs::open_own(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .mode(crate::fs::PRIVATE_FILE_MODE),
        path,
    )
    .map_err(|e| Error::io("open", path, e))
}

// The temporary name `stele.json` is written under before its rename.
const TMP_CONFIG: &str = ".stele.json.tmp";

/// Every file a log directory may hold (besides the key file when it is
/// elsewhere): a directory holding any of them is never made a new log.
const LOG_FILES: [&str; 8] = [
    files::CONFIG,
    files::CHECKED,
    files::ENTRIES,
    files::CHECKPOINTS,
    files::TREE,
    files::INDEX,
    files::KEY,
    files::LOCK,
];

/// Refuses a directory for a new log: one holding a log's files always (a
/// log, or part of one: overwriting it would destroy entries), one holding
/// anything else unless `allow_other_files`. A missing directory is fine.
/// [`Log::create_with`] runs this itself; callers that make files before it
/// (a key file) check first.
pub fn check_new_dir(dir: &Path, allow_other_files: bool) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if dir.join(files::CONFIG).exists() {
        return Err(Error::AlreadyExists { dir: dir.into() });
    }
    let mut log_files = Vec::new();
    let mut others = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))? {
        let e = e.map_err(|e| Error::io("read directory", dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if LOG_FILES.contains(&name.as_str()) || name == TMP_CONFIG {
            log_files.push(name);
        } else {
            others.push(name);
        }
    }
    log_files.sort();
    others.sort();
    let list = |names: &[String]| {
        let shown: Vec<String> = names
            .iter()
            .take(5)
            .map(|n| stele_core::canonical::quote(n))
            .collect();
        let more = names.len().saturating_sub(5);
        if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    };
    if !log_files.is_empty() {
        return Err(Error::DirNotEmpty {
            dir: dir.into(),
            why: format!(
                "holds a log's files ({}) but no {}: part of a log, e.g. a partial restore",
                list(&log_files),
                files::CONFIG
            ),
            log_files: true,
        });
    }
    if !others.is_empty() && !allow_other_files {
        return Err(Error::DirNotEmpty {
            dir: dir.into(),
            why: format!("is not empty (it holds {})", list(&others)),
            log_files: false,
        });
    }
    Ok(())
}

pub(crate) fn write_new_file(
    fs: &dyn Fs,
    dir: &Path,
    name: &str,
    role: FileRole,
    data: &[u8],
) -> Result<()> {
    // Write a temporary file, fsync it, rename it into place, fsync the directory.
    let tmp = dir.join(format!(".{name}.tmp"));
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

/// The one-writer lock: an exclusive `flock` on the log directory itself,
/// which no one can delete or replace while the writer lives (the
/// directory is not empty), plus one on `DIR/lock` for stele versions that
/// only knew that file. Deleting `DIR/lock` therefore loses nothing.
#[derive(Debug)]
pub(crate) struct DirLock {
    _dir: File,
    _file: File,
}

/// How long a lock held by someone else is waited for before `Locked`.
///
/// A lock released by its holder can still read as held for a moment: a
/// process that another thread forks (to run a command) holds copies of every
/// open file, the lock's too, until its exec, and under load that takes
/// milliseconds. A second writer is still refused, only not at once.
const LOCK_PATIENCE: Duration = Duration::from_secs(2);

pub(crate) fn try_lock(f: &File, dir: &Path, path: &Path) -> Result<()> {
    let since = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if since.elapsed() < LOCK_PATIENCE => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked { dir: dir.into() });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
        }
    }
}

fn lock_dir(dir: &Path) -> Result<DirLock> {
    let d = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    try_lock(&d, dir, dir)?;
    let path = dir.join(files::LOCK);
    let f = open_rw(&path, true)?;
    try_lock(&f, dir, &path)?;
    Ok(DirLock { _dir: d, _file: f })
}

/// Whether `dir` is locked by a writer now (this process or another), found
/// without changing anything: the lock is taken and released at once.
pub fn is_locked(dir: &Path) -> Result<bool> {
    let d = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    match try_lock(&d, dir, dir) {
        Ok(()) => Ok(false),
        Err(Error::Locked { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

impl Log {
    /// Creates a log in `dir` (made if missing): writes the configuration,
    /// the genesis entry (naming `origin` and the signer's verifier key) and
    /// the first checkpoint. `key_file` is where the signer is already
    /// stored (outside the log) or `None` to store it as `dir/key`.
    pub fn create(dir: &Path, origin: &str, signer: &stele_core::SignerKey) -> Result<Self> {
        Self::create_with(dir, origin, signer, None, LogOptions::default())
    }

    /// [`Log::create`] with options and an optional existing key file path.
    ///
    /// The directory must be empty or missing: one holding any of a log's
    /// files (`stele.json`, `entries.jsonl`, `checkpoints`, `tree`, `index`,
    /// `key`, `lock`; e.g. a partial restore whose `stele.json` is missing)
    /// is refused with [`Error::AlreadyExists`] or [`Error::DirNotEmpty`],
    /// and so is one holding anything else (see
    /// [`Log::create_in_non_empty_dir`]). Every file is created with
    /// `O_EXCL`, so nothing that exists is ever truncated, and a failed
    /// create removes what it made.
    pub fn create_with(
        dir: &Path,
        origin: &str,
        signer: &stele_core::SignerKey,
        key_file: Option<&Path>,
        opts: LogOptions,
    ) -> Result<Self> {
        Self::create_inner(dir, origin, signer, key_file, opts, false)
    }

    /// [`Log::create_with`] in a directory that may already hold other
    /// files (never a log's own files, which are still refused).
    pub fn create_in_non_empty_dir(
        dir: &Path,
        origin: &str,
        signer: &stele_core::SignerKey,
        key_file: Option<&Path>,
        opts: LogOptions,
    ) -> Result<Self> {
        Self::create_inner(dir, origin, signer, key_file, opts, true)
    }

    fn create_inner(
        dir: &Path,
        origin: &str,
        signer: &stele_core::SignerKey,
        key_file: Option<&Path>,
        opts: LogOptions,
        allow_other_files: bool,
    ) -> Result<Self> {
        if origin.is_empty() || origin.contains('\n') {
            return Err(Error::BadEvent {
                index: 0,
                why: "origin must be one non-empty line".into(),
            });
        }
        if origin.len() > MAX_ORIGIN_BYTES {
            return Err(Error::BadEvent {
                index: 0,
                why: origin_too_long(origin),
            });
        }
        let made_dir = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        // 0700 whatever the umask (it was 0755, 0777 under umask 000: any
        // local user read the entries, or edited stele.json).
        if made_dir {
            crate::fs::make_private(dir).map_err(|e| Error::io("chmod", dir, e))?;
        }
        let lock = match check_new_dir(dir, allow_other_files).and_then(|()| lock_dir(dir)) {
            Ok(l) => l,
            Err(e) => {
                if made_dir {
                    let _ = std::fs::remove_dir(dir);
                }
                return Err(e);
            }
        };
        // Nothing of a log was there, so everything of one there now is ours:
        // on any failure it is removed again.
        // The lock is held from the first file to the open log, never
        // dropped and retaken: a process forked meanwhile by another thread
        // briefly holds a copy of a released lock (until its exec), which
        // made a re-lock here fail with `Locked` now and then.
        let made = Self::create_files(dir, origin, signer, key_file, &opts, lock)
            .and_then(|lock| Self::open_inner(dir, opts, Some(signer.clone()), Some(lock), false))
            .and_then(|log| {
                let genesis = genesis_event(origin, &signer.verifier().to_string());
                let _ = log
                    .shared
                    .append_events(Cow::Borrowed(&[genesis]), Appended::Internal)?;
                let _ = log.checkpoint()?;
                Ok(log)
            });
        if made.is_err() {
            for name in LOG_FILES.iter().chain(&[TMP_CONFIG]) {
                let _ = std::fs::remove_file(dir.join(name));
            }
            if made_dir {
                let _ = std::fs::remove_dir(dir);
            }
        }
        made
    }

    // The files of a new log, created with O_EXCL under the directory lock;
    // the configuration last (it marks the log as created).
    fn create_files(
        dir: &Path,
        origin: &str,
        signer: &stele_core::SignerKey,
        key_file: Option<&Path>,
        opts: &LogOptions,
        lock: DirLock,
    ) -> Result<DirLock> {
        let fs = opts.fs.as_ref();
        let key_path = match key_file {
            Some(p) => std::path::absolute(p).map_err(|e| Error::io("resolve", p, e))?,
            None => {
                let p = dir.join(files::KEY);
                key::save(fs, &p, signer)?;
                PathBuf::from(files::KEY)
            }
        };
        for name in [
            files::ENTRIES,
            files::CHECKPOINTS,
            files::TREE,
            files::INDEX,
        ] {
            let p = dir.join(name);
            use std::os::unix::fs::OpenOptionsExt;
            let _ = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(crate::fs::PRIVATE_FILE_MODE)
                .open(&p)
                .map_err(|e| Error::io("create", &p, e))?;
        }
        fs.sync_dir(dir)
            .map_err(|e| Error::io("fsync directory", dir, e))?;
        opts.seal.check()?;
        let config = Config {
            format: FORMAT.into(),
            origin: origin.into(),
            key_file: key_path,
            sealed: opts.seal.clone(),
            unsealed: false,
            retired_keys: Vec::new(),
            rotation: None,
            witness_policy: None,
        };
        let mut text = serde_json::to_string_pretty(&config).expect("config serializes");
        text.push('\n');
        write_new_file(fs, dir, files::CONFIG, FileRole::Config, text.as_bytes())?;
        Ok(lock)
    }

    /// Opens a log with default options; see [`Log::open_with`].
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, LogOptions::default())
    }

    /// Opens a log for writing: takes the exclusive lock, loads the key,
    /// checks the entries against the stored tree hashes, rebuilds derived
    /// files that are missing or wrong, cuts a torn tail (appending a
    /// `stele.recovery` entry) and refuses damage before the tail.
    ///
    /// Entries before the check mark (`DIR/checked`, tied to a signed
    /// checkpoint) are not read again: the mark is checked in O(log n) reads
    /// and only the entries after it are. [`Log::fsck`] checks everything.
    pub fn open_with(dir: &Path, opts: LogOptions) -> Result<Self> {
        Self::open_inner(dir, opts, None, None, false)
    }

    /// Opens a log for writing like [`Log::open_with`], but ignores the check
    /// mark: every line is parsed and its `seq`, `prev` and `ts` checked,
    /// `tree` and `index` are compared with the entries from entry 0 (and
    /// rewritten where they differ), every stored checkpoint's root is
    /// checked against the tree, and the mark is then moved to the latest
    /// checkpoint. This is `stele fsck DIR`.
    pub fn fsck(dir: &Path, opts: LogOptions) -> Result<Self> {
        Self::open_inner(dir, opts, None, None, true)
    }

    // `held`: the lock `create` already holds (a new log); else it is taken here.
    fn open_inner(
        dir: &Path,
        opts: LogOptions,
        signer: Option<stele_core::SignerKey>,
        held: Option<DirLock>,
        full: bool,
    ) -> Result<Self> {
        let creating = held.is_some();
        // A directory or stele.json others may write is refused: they could
        // have dropped the sealing rules, and the next events would go in
        // the clear.
        for p in [dir.to_path_buf(), dir.join(files::CONFIG)] {
            match crate::fs::check_not_shared_writable(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::io("open", &p, e));
                }
                _ => {}
            }
        }
        match crate::fs::check_writer_owner(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(Error::io("open", dir, e));
            }
            _ => {}
        }
        let config = read_config(dir)?;
        let origin = config.origin.clone();
        let lock = match held {
            Some(l) => l,
            None => lock_dir(dir)?,
        };
        let opts = witness_policy(dir, &config, opts)?;
        let keys = rotation::KeySet::load(dir, &config, signer)?;
        let fs = opts.fs.clone();
        let entries_path = dir.join(files::ENTRIES);
        let entries = Arc::new(open_rw(&entries_path, false)?);
        let tree_path = dir.join(files::TREE);
        let tree = Arc::new(open_rw(&tree_path, true)?);
        let index_path = dir.join(files::INDEX);
        let index = Arc::new(open_rw(&index_path, true)?);
        let checkpoints_path = dir.join(files::CHECKPOINTS);
        let checkpoints = open_rw(&checkpoints_path, true)?;

        // Checkpoints: a torn last record was never acknowledged; cut it.
        // Read through the handle just opened (never a link), not the path again.
        let mut cp_bytes = Vec::new();
        let _ = (&checkpoints)
            .read_to_end(&mut cp_bytes)
            .map_err(|e| Error::io("read", &checkpoints_path, e))?;
        // Signatures before the mark's checkpoints length were verified when
        // the mark was written; if the mark turns out not to hold, they are
        // verified below after all.
        let mark = if full || creating {
            None
        } else {
            crate::mark::read(dir)
        };
        // The checkpoints file only grows (a torn last record, never marked,
        // is the one thing cut): shorter than the mark says, checkpoints were
        // lost or removed, e.g. a partial restore. Signing now would fork
        // the log's published history.
        if let Some(m) = mark.filter(|m| m.checkpoints_len > cp_bytes.len() as u64) {
            return Err(Error::CheckpointMismatch {
                dir: dir.into(),
                why: format!(
                    "{} holds {} bytes, but the check mark ({}) was written when it held {}: signed checkpoints were lost or removed (a partial restore?); nothing is signed over them. Put the checkpoints back, or run `stele fsck DIR` to check everything and accept the files as they are",
                    files::CHECKPOINTS,
                    cp_bytes.len(),
                    files::CHECKED,
                    m.checkpoints_len
                ),
            });
        }
        let verified = mark.map_or(0, |m| m.checkpoints_len);
        let (mut cps, mut good_len) =
            parse_checkpoints_after(dir, &cp_bytes, keys.verifiers(), verified)?;
        let start = mark.and_then(|m| {
            crate::mark::start(&m, &cps, &entries, &tree, &index, &tree_path).map(|s| (m, s))
        });
        if start.is_none() && verified > 0 {
            (cps, good_len) = parse_checkpoints(dir, &cp_bytes, keys.verifiers())?;
        }
        let marked_len = start.as_ref().map_or(0, |(m, _)| m.entries_len);
        let marked_cps_len = start.as_ref().map_or(0, |(m, _)| m.checkpoints_len);
        if good_len < cp_bytes.len() as u64 {
            fs.set_len(FileRole::Checkpoints, &checkpoints, good_len)
                .map_err(|e| Error::io("truncate", &checkpoints_path, e))?;
            fs.sync_data(FileRole::Checkpoints, &checkpoints)
                .map_err(|e| Error::io("fdatasync", &checkpoints_path, e))?;
        }
        for c in &cps {
            if c.checkpoint.origin != origin {
                return Err(Error::CheckpointMismatch {
                    dir: dir.into(),
                    why: format!(
                        "checkpoint of size {} names origin {:?}, but the log's origin is {origin:?}",
                        c.checkpoint.size, c.checkpoint.origin
                    ),
                });
            }
        }
        let signed = cps.last().map_or(0, |c| c.checkpoint.size);
        let cps_empty = cps.is_empty();

        let scan = scan(
            dir,
            fs.as_ref(),
            &entries,
            &entries_path,
            &tree,
            &index,
            signed,
            keys.genesis(),
            &origin,
            creating,
            start.map(|(_, s)| s),
            full,
        )?;
        // A log's first checkpoint is signed when it is made, right after
        // its genesis entry: more entries and none signed means the
        // checkpoints were lost (a missing or emptied file); signing now
        // would fork the history already published.
        if cps_empty && scan.size > 1 && !creating {
            return Err(Error::CheckpointMismatch {
                dir: dir.into(),
                why: format!(
                    "{} holds {} entries, but {} holds no checkpoint signed by the log's key (the first is signed when a log is made): its checkpoints were lost or removed (a partial restore?); nothing is signed over them. Put the checkpoints file back, or restore from a mirror (stele restore)",
                    files::ENTRIES,
                    scan.size,
                    files::CHECKPOINTS
                ),
            });
        }
        // The latest checkpoint's root, or with `full` every checkpoint's.
        // (Latest first: "entries were lost" is about the latest.)
        let checked_cps = if full {
            &cps[..]
        } else {
            &cps[cps.len().saturating_sub(1)..]
        };
        for c in checked_cps.iter().rev() {
            if c.checkpoint.size > scan.size {
                return Err(Error::CheckpointMismatch {
                    dir: dir.into(),
                    why: format!(
                        "the last checkpoint is signed for {} entries, but the entries file holds only {}: entries were lost or removed",
                        c.checkpoint.size, scan.size
                    ),
                });
            }
            let tf = TreeFile {
                file: &tree,
                path: &tree_path,
                size: scan.size,
            };
            let root = stele_core::merkle::root(&tf, c.checkpoint.size)?;
            if root != c.checkpoint.root {
                return Err(Error::CheckpointMismatch {
                    dir: dir.into(),
                    why: format!(
                        "checkpoint of size {} has root {}, but entries 0..{} hash to {}",
                        c.checkpoint.size,
                        c.checkpoint.root.short(),
                        c.checkpoint.size,
                        root.short()
                    ),
                });
            }
        }
        let tf = TreeFile {
            file: &tree,
            path: &tree_path,
            size: scan.size,
        };
        let frontier = Frontier::from_left_hashes(scan.size, left_hashes(&tf, scan.size)?);
        let sealer = Sealer::open(dir, &origin, &config.sealed, scan.size, opts.fs.clone())?;
        sealer.prepare()?;
        crate::sealed::check_rules_kept(opts.fs.as_ref(), dir, &config.sealed, config.unsealed)?;
        let store = Store {
            size: scan.size,
            prev: scan.prev,
            entries_len: scan.entries_len,
            frontier,
            tree,
            tree_path,
            index,
            index_path,
            checkpoints,
            checkpoints_path,
            checkpoints_len: good_len,
            cps: cps.into(),
            last_cp_at: Instant::now(),
            marked_len,
            marked_cps_len,
            upper: Default::default(),
            witness_failed: false,
            spare: Default::default(),
            derived: Default::default(),
        };
        let shared = Arc::new(Shared {
            dir: dir.into(),
            entries_path,
            origin,
            keys: Mutex::new(keys),
            rotating: Mutex::new(()),
            witnessing: Mutex::new(()),
            rounds: (Mutex::new((false, false)), Condvar::new()),
            config_seen: Mutex::new(None),
            entries,
            build: Mutex::new(Build {
                next_seq: scan.size,
                prev: scan.prev,
                last_ts: scan.last_ts,
                buf: Vec::new(),
                leaves: Vec::new(),
                lens: Vec::new(),
                sealed: Vec::new(),
                generation: 0,
            }),
            commit: Mutex::new(Commit {
                durable: scan.size,
                ..Commit::default()
            }),
            cv: Condvar::new(),
            store: Mutex::new(store),
            scratch: Mutex::default(),
            recovery: None,
            sealer,
            stamps: Default::default(),
            _lock: lock,
            opts,
        });
        let shared = match scan.cut {
            None => shared,
            Some((offset, dropped_bytes, reason)) => {
                let event = serde_json::json!({
                    "type": "stele.recovery",
                    "dropped_bytes": dropped_bytes,
                    "offset": offset,
                    "entries_kept": scan.size,
                    "reason": reason,
                });
                let r = shared.append_events(Cow::Borrowed(&[event]), Appended::Internal)?;
                let mut s = Arc::try_unwrap(shared).expect("no other owner yet");
                s.recovery = Some(Recovery {
                    dropped_bytes,
                    offset,
                    reason,
                    seq: r[0].seq,
                });
                Arc::new(s)
            }
        };
        let timer = match (
            shared.opts.background_checkpoints,
            shared.opts.checkpoint_interval,
        ) {
            (true, Some(every)) => Some(spawn_timer(Arc::downgrade(&shared), every)),
            _ => None,
        };
        {
            // Everything up to the latest checkpoint is checked now: move the
            // mark there if that saves the next open enough reading.
            let mut s = shared.store.lock().unwrap();
            if let Some(c) = s.cps.last().cloned() {
                let size = c.checkpoint.size;
                let end = if size == 0 {
                    0
                } else {
                    crate::view::read_u64_at(&s.index, &s.index_path, (size - 1) * 8)?
                };
                if full {
                    shared.write_mark(&mut s, &c, end)?;
                } else if end >= s.marked_len.saturating_add(shared.opts.check_mark_bytes)
                    || s.checkpoints_len >= s.marked_cps_len.saturating_add(MARK_CHECKPOINT_BYTES)
                {
                    // Best effort, as after a checkpoint: if it fails the old
                    // mark stands and the next open reads a longer tail.
                    let _ = shared.write_mark(&mut s, &c, end);
                }
            }
        }
        // Forgets and redactions a crash (or a failure) left under way.
        shared.finish_intents()?;
        // A rotation a crash interrupted, or asked for while the log was held.
        if config.rotation.is_some() && !creating {
            let _one = shared.rotating.lock().unwrap();
            // What it did is in the log (the stele.key event) and the configuration.
            let _ = shared.complete_rotation()?;
        }
        let rounds = shared
            .opts
            .cosign
            .is_some()
            .then(|| spawn_rounds(Arc::downgrade(&shared)));
        Ok(Self {
            shared,
            timer,
            rounds,
        })
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    // Where `timestamps`' records are (anchor.rs).
    pub(crate) fn token_index(&self) -> &crate::anchor::TokenIndex {
        &self.shared.stamps
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    /// The verifier key for this log's checkpoints.
    pub fn verifier(&self) -> stele_core::VerifierKey {
        self.shared.keys.lock().unwrap().signer.verifier()
    }

    /// What recovery did when this log was opened, if anything.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.shared.recovery.as_ref()
    }

    /// Appends one event. When this returns `Ok`, the entry is durable.
    /// Event types starting with `stele.` are refused (reserved).
    pub fn append(&self, event: Value) -> Result<Receipt> {
        Ok(self
            .shared
            .append_events(Cow::Borrowed(&[event]), Appended::User)?[0])
    }

    /// Appends events as one unit: either all are durable and `Ok` holds a
    /// receipt for each, or none is acknowledged (an invalid event rejects
    /// the whole batch before anything is written; a failed write is cut
    /// back). A crash during the call may leave a prefix of the batch on
    /// disk, as with any unacknowledged write.
    pub fn append_batch(&self, events: Vec<Value>) -> Result<Vec<Receipt>> {
        self.shared
            .append_events(Cow::Owned(events), Appended::User)
    }

    /// [`Log::append_batch`] on borrowed events: when one is refused
    /// (`Error::BadEvent` names it), the caller still has them all.
    pub fn append_slice(&self, events: &[Value]) -> Result<Vec<Receipt>> {
        self.shared
            .append_events(Cow::Borrowed(events), Appended::User)
    }

    /// Appends events written on behalf of an authenticated writer, as one
    /// unit like [`Log::append_batch`]: each event gets the writer-added
    /// member [`WRITER_MEMBER`] = `by` (docs/FORMAT.md 2.5), e.g.
    /// `{"token":"alice"}`. Events are checked as `append_batch` checks
    /// them first, so one that brings its own `stele` member is refused.
    pub fn append_batch_by(&self, mut events: Vec<Value>, by: &Value) -> Result<Vec<Receipt>> {
        for (i, ev) in events.iter().enumerate() {
            check_event(ev, false).map_err(|why| Error::BadEvent { index: i, why })?;
        }
        for ev in &mut events {
            if let Some(o) = ev.as_object_mut() {
                let _ = o.insert(WRITER_MEMBER.to_string(), by.clone());
            }
        }
        self.shared
            .append_events(Cow::Owned(events), Appended::Authenticated)
    }

    /// Appends a reserved `stele.*` event (for `stele.access` and the like).
    pub fn append_reserved(&self, event: Value) -> Result<Receipt> {
        let ty = event.get("type").and_then(Value::as_str).unwrap_or("");
        if !ty.starts_with(RESERVED_PREFIX) || ty == GENESIS_TYPE {
            return Err(Error::BadEvent {
                index: 0,
                why: format!(
                    "append_reserved takes only {RESERVED_PREFIX}* events other than the genesis, not {ty:?}"
                ),
            });
        }
        Ok(self
            .shared
            .append_events(Cow::Borrowed(&[event]), Appended::Internal)?[0])
    }

    /// Signs a checkpoint of the current durable size if the tree grew since
    /// the last one, stores it durably, and returns the latest checkpoint.
    pub fn checkpoint(&self) -> Result<StoredCheckpoint> {
        self.shared.checkpoint(true)
    }

    /// Whether the log asks witnesses to cosign its checkpoints (a policy
    /// given in [`LogOptions::cosign`] or remembered in its configuration).
    pub fn witnessed(&self) -> bool {
        self.shared.opts.cosign.is_some()
    }

    /// Whether checkpoint `c` carries the quorum of the log's witness
    /// policy (always true for a log without witnesses).
    pub fn quorum_met(&self, c: &StoredCheckpoint) -> bool {
        self.shared
            .opts
            .cosign
            .as_ref()
            .is_none_or(|w| w.accepts(&c.note))
    }

    /// Signs a checkpoint if the configured policy says one is due.
    pub fn checkpoint_if_due(&self) -> Result<Option<StoredCheckpoint>> {
        if self.shared.opts.cosign.is_some() {
            return self.shared.witnessed_checkpoint(false);
        }
        let mut s = self.shared.store.lock().unwrap();
        if self.shared.due(&s) {
            self.shared.sign_locked(&mut s).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The number of durable entries.
    pub fn size(&self) -> u64 {
        self.shared.store.lock().unwrap().size
    }

    /// The leaf hashes of durable entries `from..to`, read back from the
    /// stored tree in one positioned read: the receipts of earlier appends,
    /// without keeping them in memory (`stele append` prints them this way).
    /// Fails if the log is poisoned (the stored hashes may then be wrong).
    pub fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<Hash>> {
        let s = self.shared.store.lock().unwrap();
        if let Some(p) = &self.shared.commit.lock().unwrap().poisoned {
            return Err(self.shared.poisoned_err(p));
        }
        if from > to || to > s.size {
            return Err(Error::OutOfRange(format!(
                "leaf hashes {from}..{to} of a log of {} entries",
                s.size
            )));
        }
        if from == to {
            return Ok(Vec::new());
        }
        let first = position(0, from);
        let mut bytes = vec![0u8; ((position(0, to - 1) + 1 - first) * 32) as usize];
        std::os::unix::fs::FileExt::read_exact_at(&*s.tree, &mut bytes, first * 32)
            .map_err(|e| Error::io("read", &s.tree_path, e))?;
        Ok((from..to)
            .map(|j| {
                let at = ((position(0, j) - first) * 32) as usize;
                Hash(bytes[at..at + 32].try_into().expect("32 bytes"))
            })
            .collect())
    }

    /// Adds an auditor (an age X25519 recipient, `age1…`): every data key,
    /// existing and future, is wrapped for it. Returns how many existing
    /// keys were wrapped. The addition is logged first, as a
    /// `stele.auditor` event naming the recipient and `by` (FORMAT 13.7);
    /// adding a listed auditor again does nothing and logs nothing.
    pub fn add_auditor(&self, recipient: &str, by: &str) -> Result<usize> {
        let listed = crate::sealed::auditors(&self.shared.dir)?;
        if listed.iter().any(|a| a == recipient) {
            return Ok(0);
        }
        let _ = stele_seal::parse_recipient(recipient).map_err(|e| {
            Error::Sealed(format!("{}: {e}", stele_seal::shown_recipient(recipient)))
        })?;
        let _ = self.append_reserved(crate::sealed::auditor_event("add", recipient, by))?;
        self.shared.sealer.add_auditor(recipient)
    }

    /// Removes an auditor: no later data key is wrapped for it, no export
    /// can be revealed to it, and every wrap made for it is destroyed.
    /// Returns how many wraps were destroyed. What it was given before
    /// stays openable by it (only forgetting a subject ends that).
    /// The removal of a listed auditor is logged first (`stele.auditor`).
    pub fn remove_auditor(&self, recipient: &str, by: &str) -> Result<usize> {
        if crate::sealed::auditors(&self.shared.dir)?
            .iter()
            .any(|a| a == recipient)
        {
            let _ = self.append_reserved(crate::sealed::auditor_event("remove", recipient, by))?;
        }
        self.shared.sealer.remove_auditor(recipient)
    }

    /// Forgets a data subject (FORMAT 13.4): its intent is made durable in
    /// `sealed/pending`, a `stele.forget` event naming the key ID and `by`
    /// is appended (durable), then the data key and every wrap of it are
    /// destroyed (overwritten, fsync'ed, unlinked). The act is logged first
    /// so that it can never happen unlogged: an append that fails destroys
    /// nothing. Once the event is logged the key counts as forgotten in
    /// every export; a destruction that fails after it is an error that
    /// says so, and the next open finishes it (writer/README.md).
    /// The subject's value appears nowhere, not even in errors.
    pub fn forget(
        &self,
        subject: &Value,
        by: &str,
    ) -> Result<(stele_core::sealed::KeyId, Receipt)> {
        let text = stele_core::canonical::to_canonical(subject).map_err(Error::Sealed)?;
        self.forget_text(text.as_bytes(), by)
    }

    /// Forgets the data key of the events that have no value at the
    /// subject pointer (FORMAT 13.4: they share one), as [`Log::forget`]
    /// forgets a subject's.
    pub fn forget_subjectless(&self, by: &str) -> Result<(stele_core::sealed::KeyId, Receipt)> {
        self.forget_text(b"", by)
    }

    // `text`: the subject's canonical JSON, empty for no subject.
    fn forget_text(&self, text: &[u8], by: &str) -> Result<(stele_core::sealed::KeyId, Receipt)> {
        let sealer = &self.shared.sealer;
        let _one = sealer.ops();
        let id = sealer.key_of(text)?;
        // The intent first (durable): whatever happens once the event may
        // be in the log, an open finishes the forget (writer/README.md).
        let intent = Intent::Forget {
            from: self.size(),
            key: id,
        };
        let r = self.append_intended(
            &intent,
            serde_json::json!({
                "type": "stele.forget",
                "key": id.to_hex(),
                "by": by,
            }),
        )?;
        let _ = sealer.forget_key(text, Some(id)).map_err(|e| {
            Error::Sealed(format!(
                "the forget of key {id} is logged (entry {}), but destroying the key failed: {e}; it counts as forgotten, and the next open of the log (or running forget again) finishes it",
                r.seq
            ))
        })?;
        // Best effort: an intent left behind is found done on the next open.
        let _ = sealer.end(&intent);
        Ok((id, r))
    }

    // Appends a `stele.forget` or `stele.redact` event after making its
    // intent durable. If the append fails and the log is not poisoned, the
    // event is not in the log (a failed write is cut back) and the intent
    // goes; otherwise it stays for the next open to settle.
    fn append_intended(&self, intent: &Intent, event: Value) -> Result<Receipt> {
        let sealer = &self.shared.sealer;
        sealer.begin(intent.clone())?;
        match self.append_reserved(event) {
            Ok(r) => Ok(r),
            Err(e) => {
                if self.shared.commit.lock().unwrap().poisoned.is_none() {
                    let _ = sealer.end(intent);
                }
                Err(e)
            }
        }
    }

    /// `stele fsck`'s check of the sealed-field sidecar against every entry
    /// ([`crate::sealed::Sealer::check_log`]): finishes each logged forget
    /// or redaction whose sidecar work is not done, and lists the sealed
    /// values that have no opening, `redacted` record or forgotten key.
    pub fn check_sealed(&self) -> Result<crate::sealed::SidecarCheck> {
        let sealer = &self.shared.sealer;
        let _one = sealer.ops();
        sealer.check_log(&self.shared.entries_path, self.size())
    }

    /// Forgets and redactions done through this log since it was opened
    /// ([`crate::sealed::Sealer::changes`]).
    pub fn sealed_changes(&self) -> u64 {
        self.shared.sealer.changes()
    }

    /// Whether `sent` is the event of entry `index`, `stored` (both
    /// without the writer member), sealed values compared through their
    /// openings ([`crate::sealed::Sealer::compare_event`]).
    pub fn compare_sealed(
        &self,
        index: u64,
        stored: &Value,
        sent: &Value,
    ) -> Result<crate::sealed::Compared> {
        self.shared.sealer.compare_event(index, stored, sent)
    }

    /// Appends a `stele.redact` event, then deletes the opening of
    /// `pointer` in entry `entry` (exports then carry a `redacted` record).
    pub fn redact(&self, entry: u64, pointer: &str, by: &str) -> Result<Receipt> {
        if entry >= self.size() {
            return Err(Error::OutOfRange(format!(
                "entry {entry} is beyond the log's {} entries",
                self.size()
            )));
        }
        let sealer = &self.shared.sealer;
        let _one = sealer.ops();
        // Logged first, as forget is: never a deletion without its event.
        sealer.check_redact(entry, pointer)?;
        let intent = Intent::Redact {
            from: self.size(),
            entry,
            pointer: pointer.to_string(),
        };
        let r = self.append_intended(
            &intent,
            serde_json::json!({
                "type": "stele.redact",
                "entry": entry,
                "pointer": pointer,
                "by": by,
            }),
        )?;
        sealer.redact(entry, pointer).map_err(|e| {
            Error::Sealed(format!(
                "the redaction is logged (entry {}), but it did not finish: {e}; exports treat the opening as redacted, and the next open of the log (or running redact again) finishes it",
                r.seq
            ))
        })?;
        let _ = sealer.end(&intent);
        Ok(r)
    }

    /// A consistent read-only view of the durable entries, checkpoints and
    /// tree hashes as of now. Appends made later are not in it.
    pub fn view(&self) -> View {
        let s = self.shared.store.lock().unwrap();
        self.shared.view_locked(&s)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if let Some((handle, stop)) = self.timer.take() {
            *stop.0.lock().unwrap() = true;
            stop.1.notify_all();
            let _ = handle.join();
        }
        // A witness round under way finishes first (bounded by the
        // client's timeouts): its checkpoint is published or dropped whole.
        if let Some(handle) = self.rounds.take() {
            self.shared.rounds.0.lock().unwrap().1 = true;
            self.shared.rounds.1.notify_all();
            let _ = handle.join();
        }
    }
}

// The log's witness policy: a cosigner given by the caller that carries a
// policy text is remembered in the configuration (replacing one there); with
// no cosigner given, the remembered policy's is used.
fn witness_policy(dir: &Path, config: &Config, mut opts: LogOptions) -> Result<LogOptions> {
    let remembered = config.witness_policy.as_deref();
    match &opts.cosign {
        Some(c) => {
            if let Some(text) = c.policy_text().filter(|t| Some(*t) != remembered) {
                let mut c = read_config(dir)?;
                c.witness_policy = Some(text.to_string());
                rotation::write_config(opts.fs.as_ref(), dir, &c)?;
            }
        }
        None => {
            if let Some(text) = remembered {
                let p = crate::witness::PolicyCosigner::from_text(
                    text,
                    crate::witness::ClientOptions::default(),
                )
                .map_err(|why| Error::NotALog {
                    dir: dir.into(),
                    why: format!("{}: witness_policy: {why}", files::CONFIG),
                })?;
                opts.cosign = Some(Arc::new(p));
            }
        }
    }
    Ok(opts)
}

/// Stops witnessing a log (`stele checkpoint DIR --forget-policy`): removes
/// the remembered witness policy from its configuration, so later
/// checkpoints are signed without witnesses. Takes the log's lock. Returns
/// whether there was one.
pub fn forget_witness_policy(dir: &Path) -> Result<bool> {
    let _lock = lock_dir(dir)?;
    let mut c = read_config(dir)?;
    if c.witness_policy.take().is_none() {
        return Ok(false);
    }
    rotation::write_config(&RealFs, dir, &c)?;
    Ok(true)
}

// The thread of a witnessed log that runs the automatic witness rounds the
// appenders and the timer ask for, so that no append waits for witnesses.
fn spawn_rounds(weak: Weak<Shared>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        loop {
            {
                let Some(shared) = weak.upgrade() else { return };
                let (m, cv) = &shared.rounds;
                let mut r = m.lock().unwrap();
                while !r.0 && !r.1 {
                    r = cv.wait(r).unwrap();
                }
                if r.1 {
                    return;
                }
                r.0 = false;
            }
            let Some(shared) = weak.upgrade() else { return };
            // A failure is recorded (`witness_failed`): the interval paces the next try.
            let _ = shared.witnessed_checkpoint(false);
        }
    })
}

fn spawn_timer(weak: Weak<Shared>, every: Duration) -> Timer {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let stop2 = stop.clone();
    let handle = std::thread::spawn(move || {
        let tick = every
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10));
        loop {
            let g = stop2.0.lock().unwrap();
            let (g, _) = stop2.1.wait_timeout(g, tick).unwrap();
            if *g {
                return;
            }
            drop(g);
            let Some(shared) = weak.upgrade() else { return };
            shared.poll_rotation();
            let mut s = shared.store.lock().unwrap();
            if shared.due(&s) {
                // A failure here poisons the log (fsync) or is retried next tick.
                let _ = shared.sign_due(&mut s);
            }
        }
    });
    (handle, stop)
}

impl Shared {
    fn view_locked(&self, s: &Store) -> View {
        View {
            dir: self.dir.clone(),
            origin: self.origin.clone(),
            entries: self.entries.clone(),
            entries_path: self.entries_path.clone(),
            entries_len: s.entries_len,
            size: s.size,
            tree: TreeSrc::File(s.tree.clone(), s.tree_path.clone(), s.upper.clone()),
            index: Index::File(s.index.clone(), s.index_path.clone()),
            checkpoints: s.cps.clone(),
            stamps: self.stamps.clone(),
        }
    }

    // Settles every intent in `sealed/pending` (writer/README.md, "Forget"):
    // the entries from its `from` on are read until its event is found
    // (few: those appended while it was under way); found, its sidecar work
    // is done (each step is idempotent); not found, the event was never
    // logged and nothing was destroyed. Either way the intent goes.
    fn finish_intents(&self) -> Result<()> {
        let intents = self.sealer.intents();
        if intents.is_empty() {
            return Ok(());
        }
        let view = self.view_locked(&self.store.lock().unwrap());
        for intent in intents {
            let mut logged = None;
            for i in intent.from().min(view.size())..view.size() {
                let line = view.entry(i)?;
                if Intent::of_entry(&line, 0).is_some_and(|w| intent.same_work(&w)) {
                    logged = Some(i);
                    break;
                }
            }
            if let Some(i) = logged {
                let done = match &intent {
                    Intent::Forget { key, .. } => self.sealer.finish_forget(*key),
                    Intent::Redact { entry, pointer, .. } => {
                        self.sealer.finish_redact(*entry, pointer)
                    }
                };
                let _ = done.map_err(|e| {
                    Error::Sealed(format!(
                        "entry {i} ({intent}) is logged, but its sidecar work could not be finished: {e}"
                    ))
                })?;
            }
            self.sealer.end(&intent)?;
        }
        Ok(())
    }

    fn poisoned_err(&self, cause: &str) -> Error {
        Error::Poisoned {
            dir: self.dir.clone(),
            cause: cause.to_string(),
        }
    }

    fn poison(&self, cause: String) {
        let mut c = self.commit.lock().unwrap();
        if c.poisoned.is_none() {
            c.poisoned = Some(cause);
        }
        self.cv.notify_all();
    }

    // Checks that `path` is still the file open as `f` and is `expected`
    // bytes long: the lock keeps other stele writers out, this catches
    // anything else (an old stele that only knew DIR/lock, an editor, a
    // restore) before a write lands on top of it.
    fn check_unchanged(&self, f: &File, path: &Path, expected: u64) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let open = f
            .metadata()
            .map_err(|e| format!("stat {}: {e}", path.display()))?;
        let named = std::fs::metadata(path).map_err(|e| {
            format!(
                "{} is no longer there ({e}): it was removed or renamed while this writer had it open",
                path.display()
            )
        })?;
        if (open.dev(), open.ino()) != (named.dev(), named.ino()) {
            return Err(format!(
                "{} was replaced by another file while this writer had it open",
                path.display()
            ));
        }
        if open.len() != expected {
            return Err(format!(
                "{} is {} bytes, but this writer left it at {expected}: something else wrote to it; nothing more is appended, so no entry is overwritten",
                path.display(),
                open.len()
            ));
        }
        Ok(())
    }

    // Owned events (append_batch) are sealed in place; borrowed ones
    // (append_slice) are copied first when there is anything to seal.
    fn append_events(&self, events: Cow<'_, [Value]>, by: Appended) -> Result<Vec<Receipt>> {
        Ok(self
            .append_events_at(events, by, None)?
            .expect("no index was asked for"))
    }

    // `append_events`, but with `at` the events go in only as entries
    // `at`, `at + 1`, …: `None` (nothing written) if the next index is another.
    fn append_events_at(
        &self,
        events: Cow<'_, [Value]>,
        by: Appended,
        at: Option<u64>,
    ) -> Result<Option<Vec<Receipt>>> {
        let internal = by == Appended::Internal;
        if events.is_empty() {
            return Ok(Some(Vec::new()));
        }
        if let Some(p) = &self.commit.lock().unwrap().poisoned {
            return Err(self.poisoned_err(p));
        }
        // Checked (check_event) here before sealing; otherwise on the
        // canonical JSON threads, as part of their pass over the events
        // (checked on the appender's thread, it was 65 of 679 samples of
        // the library's part of `stele bench append --entries 200000`, all
        // on the serial path: `perf record`).
        let check = (by != Appended::Authenticated).then_some(internal);
        // Sealed fields (FORMAT 13.9): placeholders in, openings aside until
        // each entry's index is known. Stele's own events are never sealed.
        // The expensive part (sealing, canonical JSON, checks) runs outside
        // the lock, on several threads for big batches; the chain is
        // finished under it. Openings are encrypted there too, for the
        // indices the events are expected to get (the associated data binds
        // the index): if another append took them first, they are encrypted
        // again under the lock.
        let sealing = !internal && events.iter().any(|e| self.sealer.touches(e));
        let mut texts = std::mem::take(&mut *self.scratch.lock().unwrap());
        let base = if sealing {
            if let Some(internal) = check {
                for (i, ev) in events.iter().enumerate() {
                    check_event(ev, internal).map_err(|why| Error::BadEvent { index: i, why })?;
                }
            }
            let base = at.unwrap_or_else(|| self.build.lock().unwrap().next_seq);
            texts.sealed(&self.sealer, events, base)?;
            Some(base)
        } else {
            texts.canonical(&events, check)?;
            // The events are not needed any more: freed before the lock, on
            // this thread (freed on the canonical JSON threads, mimalloc's
            // frees of another thread's blocks and the exiting threads'
            // abandoned pages cost more than they saved: `perf record`).
            drop(events);
            None
        };
        let (receipts, target, generation) = {
            let mut b = self.build.lock().unwrap();
            if at.is_some_and(|a| a != b.next_seq) {
                return Ok(None);
            }
            // Encrypted for the indices they get (the usual case), or again.
            let presealed = base == Some(b.next_seq);
            let mut prev = b.prev;
            let mut ts = b.last_ts;
            let now = (self.opts.clock)();
            let mut sealed = Vec::new();
            // The lines go straight into the pending buffer; on an error
            // everything this call added there is cut back.
            let b = &mut *b;
            let marks = (b.buf.len(), b.lens.len(), b.leaves.len());
            let mut build = || -> Result<()> {
                // Never decreasing: a clock step backwards repeats the last
                // ts. One clock reading, so one ts (and its text) for the
                // whole batch (its text made for each line was 27 of 679
                // samples of the library's part of `stele bench append
                // --entries 200000`, on the serial path: `perf record`).
                ts = ts.max(now);
                let t = Timestamp::from_unix_micros(ts).ok_or_else(|| Error::BadEvent {
                    index: 0,
                    why: format!("clock reads {ts} µs since 1970, outside years 0000..9999"),
                })?;
                let t = TimestampText::from(t);
                for (i, seq) in (0..texts.len()).zip(b.next_seq..) {
                    let (len, leaf) =
                        push_line(&mut b.buf, texts.get(i), texts.prefix(i), seq, &t, &prev)
                            .map_err(|why| Error::BadEvent { index: i, why })?;
                    prev = leaf;
                    b.buf.push(b'\n');
                    b.lens.push(len as u64 + 1);
                    b.leaves.push(prev);
                }
                if base.is_some() && !presealed {
                    for s in texts.seals() {
                        self.sealer.encrypt_all(b.next_seq, s, &mut sealed)?;
                    }
                }
                Ok(())
            };
            if let Err(e) = build() {
                b.buf.truncate(marks.0);
                b.lens.truncate(marks.1);
                b.leaves.truncate(marks.2);
                return Err(e);
            }
            // All built: now they are part of the pending batch.
            let receipts: Vec<Receipt> = (b.next_seq..)
                .zip(&b.leaves[marks.2..])
                .map(|(seq, leaf)| Receipt {
                    seq,
                    leaf_hash: *leaf,
                })
                .collect();
            b.next_seq += receipts.len() as u64;
            if presealed {
                for r in texts.records() {
                    b.sealed.extend_from_slice(r);
                }
            } else {
                b.sealed.extend_from_slice(&sealed);
            }
            b.prev = prev;
            b.last_ts = ts;
            (receipts, b.next_seq, b.generation)
        };
        texts.keep_in(&self.scratch);
        self.wait_durable(target, generation)?;
        Ok(Some(receipts))
    }

    fn wait_durable(&self, target: u64, generation: u64) -> Result<()> {
        let mut c = self.commit.lock().unwrap();
        loop {
            if let Some(f) = c.failures.iter().find(|f| f.0 == generation) {
                if target <= f.1 {
                    return Ok(());
                }
                return Err(Error::io(
                    "write",
                    &self.entries_path,
                    io::Error::new(f.2, f.3.clone()),
                ));
            }
            if c.durable >= target {
                return Ok(());
            }
            if let Some(p) = &c.poisoned {
                return Err(self.poisoned_err(p));
            }
            if !c.leader {
                c.leader = true;
                drop(c);
                self.lead();
                c = self.commit.lock().unwrap();
                c.leader = false;
                self.cv.notify_all();
                continue;
            }
            c = self.cv.wait(c).unwrap();
        }
    }

    // One group commit: write every pending entry, fdatasync once, then
    // update the derived files and publish the new durable size.
    fn lead(&self) {
        let mut s = self.store.lock().unwrap();
        let (mut buf, mut leaves, mut lens, generation, sealed) = {
            let mut b = self.build.lock().unwrap();
            let (sb, sl, sn, ss) = std::mem::take(&mut s.spare);
            (
                std::mem::replace(&mut b.buf, sb),
                std::mem::replace(&mut b.leaves, sl),
                std::mem::replace(&mut b.lens, sn),
                b.generation,
                // Kept like the others: a new one each commit grew to a few
                // hundred KB by doubling and was freed again (mimalloc fresh
                // pages and page faults in the lead's profile of
                // `stele bench sealed`).
                std::mem::replace(&mut b.sealed, ss),
            )
        };
        if buf.is_empty() {
            return;
        }
        let fs = self.opts.fs.as_ref();
        let off = s.entries_len;
        // Only this writer may have changed the file since the last commit;
        // if anything else did, writing at `off` could overwrite its bytes.
        if let Err(why) = self.check_unchanged(&self.entries, &self.entries_path, off) {
            self.poison(why);
            return;
        }
        // Sealed-field records (encrypted openings) are written and
        // fdatasync'ed on another thread while the entries are: both are
        // durable before any append returns. A crash in between may leave
        // records past the log's end (cut on open) or an unacknowledged entry
        // without its opening (its value is then never openable).
        let (sealed_at, written, synced) = std::thread::scope(|sc| {
            let records =
                (!sealed.is_empty()).then(|| sc.spawn(|| self.sealer.write_records(&sealed)));
            let written = fs.write_at(FileRole::Entries, &self.entries, &buf, off);
            let synced = written
                .is_ok()
                .then(|| fs.sync_data(FileRole::Entries, &self.entries));
            let at = records.map(|h| h.join().expect("sealed records thread"));
            (at, written, synced)
        });
        let sealed_at = match sealed_at {
            None => None,
            Some(Ok(at)) => Some(at),
            Some(Err(e)) => {
                self.poison(e.to_string());
                return;
            }
        };
        if let Err(e) = written {
            if let Some(at) = sealed_at
                && let Err(t) = self.sealer.cut_records(at)
            {
                self.poison(format!("cutting back sealed records failed ({t})"));
                return;
            }
            // Cut back whatever part of the write landed, so nothing
            // unacknowledged stays in the file.
            if let Err(t) = fs.set_len(FileRole::Entries, &self.entries, off) {
                self.poison(format!(
                    "write to {} failed ({e}) and cutting it back failed ({t})",
                    self.entries_path.display()
                ));
                return;
            }
            let mut b = self.build.lock().unwrap();
            b.buf.clear();
            b.leaves.clear();
            b.lens.clear();
            b.sealed.clear();
            b.next_seq = s.size;
            b.prev = s.prev;
            b.generation += 1;
            drop(b);
            let mut c = self.commit.lock().unwrap();
            c.failures
                .push((generation, s.size, e.kind(), e.to_string()));
            self.cv.notify_all();
            return;
        }
        if let Some(Err(e)) = synced {
            // No retry: after a failed fsync the page cache may have dropped
            // the data (the fsyncgate lesson). Only reopening is safe.
            self.poison(format!(
                "fdatasync {} failed: {e}",
                self.entries_path.display()
            ));
            return;
        }
        s.entries_len += buf.len() as u64;
        // Derived files: written, not synced (open checks and rebuilds them).
        let (mut tree_bytes, mut index_bytes) = std::mem::take(&mut s.derived);
        tree_bytes.clear();
        index_bytes.clear();
        tree_bytes.reserve(leaves.len() * 64);
        index_bytes.reserve(lens.len() * 8);
        let mut end = off;
        for (leaf, len) in leaves.iter().zip(&lens) {
            s.frontier.push(*leaf, &mut tree_bytes);
            end += len;
            index_bytes.extend_from_slice(&end.to_le_bytes());
        }
        let old_size = s.size;
        let tree_off = stored_len(old_size) * 32;
        let new_size = old_size + leaves.len() as u64;
        let derived = fs
            .write_at(FileRole::Tree, &s.tree, &tree_bytes, tree_off)
            .map_err(|e| Error::io("write", &s.tree_path, e))
            .and_then(|()| {
                fs.write_at(FileRole::Index, &s.index, &index_bytes, old_size * 8)
                    .map_err(|e| Error::io("write", &s.index_path, e))
            });
        s.size = new_size;
        s.prev = *leaves.last().expect("non-empty batch");
        {
            let mut c = self.commit.lock().unwrap();
            c.durable = new_size;
            self.cv.notify_all();
        }
        buf.clear();
        leaves.clear();
        lens.clear();
        let mut sealed = sealed;
        sealed.clear();
        s.spare = (buf, leaves, lens, sealed);
        s.derived = (tree_bytes, index_bytes);
        if let Err(e) = derived {
            // The entries are durable; the stored hashes are not. Proofs
            // would read wrong hashes, so stop until a reopen rebuilds them.
            self.poison(e.to_string());
            return;
        }
        if self.due(&s) {
            let _ = self.sign_due(&mut s);
        }
    }

    // Moves the check mark to checkpoint `c`, whose entries end at byte
    // `end` and which is stored in the first `s.checkpoints_len` bytes.
    fn write_mark(&self, s: &mut Store, c: &StoredCheckpoint, end: u64) -> Result<()> {
        let mark = crate::mark::Mark {
            size: c.checkpoint.size,
            entries_len: end,
            checkpoints_len: s.checkpoints_len,
            root: c.checkpoint.root,
        };
        crate::mark::write(self.opts.fs.as_ref(), &self.dir, &mark, &s.tree, &s.index)?;
        s.marked_len = end;
        s.marked_cps_len = s.checkpoints_len;
        Ok(())
    }

    fn due(&self, s: &Store) -> bool {
        let signed = s.cps.last().map_or(0, |c| c.checkpoint.size);
        if s.size <= signed {
            return false;
        }
        // After a witness failure only the interval triggers the next try.
        if s.witness_failed {
            return self
                .opts
                .checkpoint_interval
                .is_some_and(|t| s.last_cp_at.elapsed() >= t.max(Duration::from_secs(1)));
        }
        self.opts
            .checkpoint_every
            .is_some_and(|n| s.size - signed >= n)
            || self
                .opts
                .checkpoint_interval
                .is_some_and(|t| s.last_cp_at.elapsed() >= t)
    }

    fn checkpoint(&self, force: bool) -> Result<StoredCheckpoint> {
        if self.opts.cosign.is_some() {
            return self
                .witnessed_checkpoint(force)
                .map(|c| c.expect("a forced round returns a checkpoint"));
        }
        if let Some(p) = &self.commit.lock().unwrap().poisoned {
            return Err(self.poisoned_err(p));
        }
        let mut s = self.store.lock().unwrap();
        match s.cps.last() {
            Some(c) if c.checkpoint.size == s.size || !force => Ok(c.clone()),
            _ => self.sign_locked(&mut s),
        }
    }

    // A due checkpoint, the store locked: signed here, or with witnesses
    // handed to the round thread (no appender waits for witnesses).
    fn sign_due(&self, s: &mut MutexGuard<'_, Store>) -> Result<()> {
        if self.opts.cosign.is_none() {
            return self.sign_locked(s).map(|_| ());
        }
        self.rounds.0.lock().unwrap().0 = true;
        self.rounds.1.notify_all();
        Ok(())
    }

    // Signs a checkpoint of the current tree and publishes it, whether or
    // not the log is witnessed; the caller holds no lock.
    pub(crate) fn sign_now(&self) -> Result<StoredCheckpoint> {
        if self.opts.cosign.is_some() {
            return self.checkpoint(true);
        }
        let mut s = self.store.lock().unwrap();
        self.sign_locked(&mut s)
    }

    // A witness round (docs/FORMAT.md 14.5): under the store lock a
    // checkpoint of the current tree is signed (unless `force` is false and
    // none is due, or the latest already covers the tree with its quorum);
    // the lock is released while the witnesses are asked, so appends go on;
    // then the cosigned checkpoint is stored, unless one as large was
    // published meanwhile (published checkpoints only grow). Rounds run one
    // at a time. Nothing is stored before the quorum is met: a crash during a
    // round leaves the previous checkpoint the latest (witnesses that cosigned
    // the lost one answer the next round with 409 and are resynchronised).
    fn witnessed_checkpoint(&self, force: bool) -> Result<Option<StoredCheckpoint>> {
        let w = self.opts.cosign.as_ref().expect("a witnessed log");
        let _round = self.witnessing.lock().unwrap();
        let (cp, note, view) = {
            let s = self.store.lock().unwrap();
            if let Some(p) = &self.commit.lock().unwrap().poisoned {
                return Err(self.poisoned_err(p));
            }
            // A latest checkpoint without the quorum (signed before the
            // policy, or by a writer without it) does not count.
            match s.cps.last() {
                Some(c) if c.checkpoint.size == s.size && w.accepts(&c.note) => {
                    return Ok(Some(c.clone()));
                }
                _ if !force && !self.due(&s) => return Ok(None),
                _ => {}
            }
            let (cp, note) = self.sign_tree(&s)?;
            (cp, note, self.view_locked(&s))
        };
        // Never store a note no reader takes (core's limits on signatures
        // and size): a cosigner's answer is parsed once more first.
        let cosigned = w.cosign(&note, &view).and_then(|n| match SignedCheckpoint::parse(n.as_bytes()) {
            Ok(_) => Ok(n),
            Err(e) => Err(Error::Witness(format!(
                "checkpoint of size {} not published: the cosigned note would not be readable: {e}",
                cp.size
            ))),
        });
        drop(view);
        let mut s = self.store.lock().unwrap();
        let note = match cosigned {
            Ok(n) => n,
            Err(e) => {
                // Not stored; automatic rounds wait an interval before asking again.
                s.last_cp_at = Instant::now();
                s.witness_failed = true;
                return Err(e);
            }
        };
        s.witness_failed = false;
        // Stored meanwhile: a larger checkpoint, or one as large with the
        // quorum. One as large without it (signed before the policy) is
        // completed by this one, never left the latest (FORMAT 14.5).
        if let Some(c) = s.cps.last().filter(|c| {
            c.checkpoint.size > cp.size || (c.checkpoint.size == cp.size && w.accepts(&c.note))
        }) {
            return Ok(Some(c.clone()));
        }
        self.publish_locked(&mut s, cp, note).map(Some)
    }

    fn sign_locked(&self, s: &mut MutexGuard<'_, Store>) -> Result<StoredCheckpoint> {
        if let Some(p) = &self.commit.lock().unwrap().poisoned {
            return Err(self.poisoned_err(p));
        }
        let (cp, note) = self.sign_tree(s)?;
        self.publish_locked(s, cp, note)
    }

    // A checkpoint of the durable tree and its signed note (not stored).
    fn sign_tree(&self, s: &Store) -> Result<(Checkpoint, String)> {
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size: s.size,
            root: s.frontier.root(),
            extensions: Vec::new(),
        };
        let note = self.keys.lock().unwrap().sign(&cp, &s.cps)?;
        Ok((cp, note))
    }

    // Stores a signed (and, with witnesses, cosigned) checkpoint durably and
    // makes it the latest.
    fn publish_locked(
        &self,
        s: &mut MutexGuard<'_, Store>,
        cp: Checkpoint,
        note: String,
    ) -> Result<StoredCheckpoint> {
        if let Some(p) = &self.commit.lock().unwrap().poisoned {
            return Err(self.poisoned_err(p));
        }
        let record = format!("{}\n{note}", note.len());
        let fs = self.opts.fs.as_ref();
        let off = s.checkpoints_len;
        if let Err(why) = self.check_unchanged(&s.checkpoints, &s.checkpoints_path, off) {
            self.poison(why.clone());
            return Err(self.poisoned_err(&why));
        }
        if let Err(e) = fs.write_at(
            FileRole::Checkpoints,
            &s.checkpoints,
            record.as_bytes(),
            off,
        ) {
            if let Err(t) = fs.set_len(FileRole::Checkpoints, &s.checkpoints, off) {
                self.poison(format!(
                    "write to {} failed ({e}) and cutting it back failed ({t})",
                    s.checkpoints_path.display()
                ));
            }
            return Err(Error::io("write", &s.checkpoints_path, e));
        }
        if let Err(e) = fs.sync_data(FileRole::Checkpoints, &s.checkpoints) {
            let err = format!("fdatasync {} failed: {e}", s.checkpoints_path.display());
            self.poison(err.clone());
            return Err(self.poisoned_err(&err));
        }
        s.checkpoints_len += record.len() as u64;
        let stored = StoredCheckpoint {
            checkpoint: cp,
            note,
        };
        // Never the whole list copied, views or not ([`Checkpoints`]):
        // copying it at every checkpoint made a log signing one per append
        // slow down as it grew (3,624 appends/s on a new log, 1,366 at 20k
        // checkpoints: `stele bench-http --mode single`, --checkpoint-every 1).
        s.cps.push(stored.clone());
        s.last_cp_at = Instant::now();
        if s.entries_len >= s.marked_len.saturating_add(self.opts.check_mark_bytes)
            || s.checkpoints_len >= s.marked_cps_len.saturating_add(MARK_CHECKPOINT_BYTES)
        {
            // Best effort: if it fails the old mark stands (it still holds),
            // and the next open reads a longer tail.
            let end = s.entries_len;
            let _ = self.write_mark(s, &stored, end);
        }
        Ok(stored)
    }
}

// The check mark also moves when this many bytes of checkpoints were signed
// after it (about 130 notes): an open verifies the signatures of the notes
// after the mark, so a log signing a checkpoint per append (`stele serve
// --checkpoint-every 1`) made every open verify thousands (0.23-0.32 s at
// 20k checkpoints; the mark waited for 4 MiB of entries).
const MARK_CHECKPOINT_BYTES: u64 = 32 << 10;

// The expensive part of building a line (canonical JSON) runs before the
// sequencer hands out seq, ts and prev; core's entry_line is these two steps.
pub(crate) fn canonical_event(ev: &Value) -> Result<String, String> {
    stele_core::entry::canonical_event(ev).map_err(|e| e.to_string())
}

// `finish_line` appended to `out` (without `\n`): returns the line's length
// and leaf hash, finished from the event's `prefix` (hashed on the canonical
// JSON threads: half the SHA-256 blocks of a 200-byte event's line off the
// serial chain).
fn push_line(
    out: &mut Vec<u8>,
    ev: &str,
    prefix: &LinePrefix,
    seq: u64,
    ts: &TimestampText,
    prev: &Hash,
) -> Result<(usize, Hash), String> {
    stele_core::entry::push_entry_line_hashed(out, ev, seq, ts, prev, prefix)
        .map_err(|e| e.to_string())
}

/// The canonical texts of a batch's events, in a few reused buffers, one
/// per thread that wrote them; for events with sealed values, their
/// openings and records too.
#[derive(Debug, Default)]
struct Texts {
    // Events `k * chunk ..` are in `parts[k]`, for `k < used` (the other
    // parts are spare buffers).
    parts: Vec<TextPart>,
    used: usize,
    chunk: usize,
}

#[derive(Debug, Default)]
struct TextPart {
    text: String,
    // End of each event's text in `text`.
    ends: Vec<usize>,
    // Each event's line hashed as far as it is known before the sequencer.
    prefixes: Vec<LinePrefix>,
    // Sealed batches: the openings, and their records encrypted for the
    // indices the batch was expected to get.
    seal: SealScratch,
    records: Vec<u8>,
}

// A part's share of a batch's events for sealing: owned ones are freed as
// they are sealed by the part on the appender's thread, the other parts'
// with the batch after them (see `TextPart::sealed`); lent ones are the
// caller's.
enum EventsChunk<'a> {
    Owned(&'a mut [Value]),
    Lent(&'a [Value]),
}

impl EventsChunk<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Owned(e) => e.len(),
            Self::Lent(e) => e.len(),
        }
    }

    fn get(&self, i: usize) -> &Value {
        match self {
            Self::Owned(e) => &e[i],
            Self::Lent(e) => &e[i],
        }
    }

    fn free(&mut self, i: usize) {
        if let Self::Owned(e) = self {
            drop(std::mem::take(&mut e[i]));
        }
    }
}

impl TextPart {
    // Canonical JSON of `events` (the first is event `first` of the batch),
    // after checking them all if `check` says so (`Some(internal)`): the
    // error says which (a refused event goes before a canonical JSON error
    // of another, as when the whole batch was checked first).
    fn canonical(
        &mut self,
        events: &[Value],
        first: usize,
        check: Option<bool>,
    ) -> Result<(), (bool, Error)> {
        self.text.clear();
        self.ends.clear();
        self.prefixes.clear();
        self.records.clear();
        self.seal.wipe();
        if let Some(internal) = check {
            for (i, ev) in events.iter().enumerate() {
                check_event(ev, internal).map_err(|why| {
                    (
                        true,
                        Error::BadEvent {
                            index: first + i,
                            why,
                        },
                    )
                })?;
            }
        }
        for (i, ev) in events.iter().enumerate() {
            let start = self.text.len();
            stele_core::entry::canonical_event_into(ev, &mut self.text).map_err(|e| {
                (
                    false,
                    Error::BadEvent {
                        index: first + i,
                        why: e.to_string(),
                    },
                )
            })?;
            self.prefixes.push(LinePrefix::new(&self.text[start..]));
            self.ends.push(self.text.len());
        }
        Ok(())
    }

    // Sealing (FORMAT 13.9) in the same pass as the canonical JSON: it
    // hashes, draws randomness and encrypts per value. `base` is the index
    // event 0 of the batch is expected to get: `records` holds the
    // openings encrypted for `base + first`, …, in entry order; `seal`
    // keeps what encrypts them again for other indices.
    fn sealed(
        &mut self,
        sealer: &Sealer,
        mut events: EventsChunk<'_>,
        first: usize,
        base: u64,
    ) -> Result<()> {
        self.text.clear();
        self.ends.clear();
        self.prefixes.clear();
        self.records.clear();
        self.seal.wipe();
        for i in 0..events.len() {
            let index = first + i;
            let from = self.seal.openings.len();
            let start = self.text.len();
            sealer
                .seal_event_into(events.get(i), index, &mut self.seal, &mut self.text)
                .map_err(|why| Error::BadEvent { index, why })?;
            // Part 0 runs on the appender's thread, which usually made the
            // events: its events are freed as they are sealed. The other
            // parts' are freed after them, on that thread too (freed on the
            // part's own thread, mimalloc's frees of another thread's blocks
            // and their collection were ~7% of the sealed append's CPU:
            // `perf record` of `stele bench sealed`).
            if first == 0 {
                events.free(i);
            }
            self.prefixes.push(LinePrefix::new(&self.text[start..]));
            self.ends.push(self.text.len());
            if self.seal.openings.len() > from {
                sealer.encrypt_from(
                    base + index as u64,
                    &mut self.seal,
                    from,
                    &mut self.records,
                )?;
            }
        }
        Ok(())
    }
}

impl Texts {
    // The largest buffer kept between appends: one huge batch does not pin
    // its memory for the log's lifetime.
    const KEEP_BYTES: usize = 8 << 20;

    // Splits `n` events into parts (several for big batches, one a thread).
    fn layout(&mut self, n: usize) {
        let threads = if n < 512 { 1 } else { threads() };
        self.chunk = n.div_ceil(threads).max(1);
        self.used = n.div_ceil(self.chunk);
        if self.parts.len() < self.used {
            self.parts.resize_with(self.used, TextPart::default);
        }
    }

    // `f(part, chunk of events, index of its first event)` for each part,
    // the first on this thread and the others on their own; the errors in
    // event order.
    fn run<C: Send, E: Send>(
        &mut self,
        chunks: impl Iterator<Item = C>,
        f: impl Fn(&mut TextPart, C, usize) -> Result<(), E> + Sync,
    ) -> Vec<E> {
        let (chunk, used) = (self.chunk, self.used);
        let mut jobs = self.parts.iter_mut().zip(chunks).enumerate();
        let Some((_, (p0, c0))) = jobs.next() else {
            return Vec::new();
        };
        if used <= 1 {
            return f(p0, c0, 0).err().into_iter().collect();
        }
        std::thread::scope(|sc| {
            let f = &f;
            let handles: Vec<_> = jobs
                .map(|(k, (p, c))| sc.spawn(move || f(p, c, k * chunk)))
                .collect();
            let mut errors: Vec<E> = f(p0, c0, 0).err().into_iter().collect();
            for h in handles {
                errors.extend(h.join().expect("canonical JSON thread").err());
            }
            errors
        })
    }

    // Canonical JSON of every event, checked first if `check` says so;
    // big batches on several threads.
    fn canonical(&mut self, events: &[Value], check: Option<bool>) -> Result<()> {
        self.layout(events.len());
        let mut errors = self.run(events.chunks(self.chunk), |p, evs, first| {
            p.canonical(evs, first, check)
        });
        // A refused event first, then the first canonical JSON error.
        match errors.iter().position(|e| e.0) {
            Some(k) => Err(errors.swap_remove(k).1),
            None => errors.into_iter().next().map_or(Ok(()), |e| Err(e.1)),
        }
    }

    // Every event sealed ([`TextPart::sealed`]) and in canonical JSON.
    // Events the caller lends are read only (`stele append` keeps its
    // batch: copying it cost the CLI about a tenth of its sealed appends).
    fn sealed(&mut self, sealer: &Sealer, events: Cow<'_, [Value]>, base: u64) -> Result<()> {
        self.layout(events.len());
        let chunk = self.chunk;
        let f = |p: &mut TextPart, evs, first| p.sealed(sealer, evs, first, base);
        let errors = match events {
            Cow::Owned(mut evs) => self.run(evs.chunks_mut(chunk).map(EventsChunk::Owned), f),
            Cow::Borrowed(evs) => self.run(evs.chunks(chunk).map(EventsChunk::Lent), f),
        };
        errors.into_iter().next().map_or(Ok(()), Err)
    }

    fn len(&self) -> usize {
        self.parts[..self.used].iter().map(|p| p.ends.len()).sum()
    }

    fn get(&self, i: usize) -> &str {
        let (p, j) = (&self.parts[i / self.chunk], i % self.chunk);
        let start = if j == 0 { 0 } else { p.ends[j - 1] };
        &p.text[start..p.ends[j]]
    }

    fn prefix(&self, i: usize) -> &LinePrefix {
        &self.parts[i / self.chunk].prefixes[i % self.chunk]
    }

    // The openings of a sealed batch, part by part (entry order).
    fn seals(&mut self) -> impl Iterator<Item = &mut SealScratch> {
        self.parts[..self.used].iter_mut().map(|p| &mut p.seal)
    }

    // The records of a sealed batch, part by part (entry order).
    fn records(&self) -> impl Iterator<Item = &[u8]> {
        self.parts[..self.used].iter().map(|p| &p.records[..])
    }

    // Hands the buffers back for the next append (when small enough); the
    // openings' plaintexts are wiped either way.
    fn keep_in(mut self, scratch: &Mutex<Self>) {
        for p in &mut self.parts {
            p.seal.wipe();
            p.records.clear();
        }
        let bytes: usize = self
            .parts
            .iter()
            .map(|p| p.text.capacity() + p.records.capacity())
            .sum();
        if bytes <= Self::KEEP_BYTES {
            *scratch.lock().unwrap() = self;
        }
    }
}

// Threads for the expensive part of a big batch. Asked once: on Linux each
// call reads the cgroup's CPU quota files.
fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

pub(crate) fn finish_line(
    ev: &str,
    seq: u64,
    ts: Timestamp,
    prev: &Hash,
) -> Result<String, String> {
    stele_core::entry::entry_line_from_canonical(ev, seq, ts, prev).map_err(|e| e.to_string())
}

pub(crate) fn canonical_events(events: &[Value]) -> Result<Vec<String>> {
    let one = |(i, ev): (usize, &Value)| {
        canonical_event(ev).map_err(|why| Error::BadEvent { index: i, why })
    };
    let threads = threads();
    if events.len() < 512 || threads < 2 {
        return events.iter().enumerate().map(one).collect();
    }
    let chunk = events.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = events
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                s.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(j, ev)| one((c * chunk + j, ev)))
                        .collect::<Result<Vec<String>>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(events.len());
        for h in handles {
            out.extend(h.join().expect("canonicalization thread")?);
        }
        Ok(out)
    })
}

/// The event member a writer adds to say who wrote the entry (the HTTP
/// service's token name, docs/FORMAT.md 2.5); users cannot send it.
pub const WRITER_MEMBER: &str = "stele";

/// Checks an event before it is built into an entry.
pub fn check_event(ev: &Value, internal: bool) -> Result<(), String> {
    let Some(obj) = ev.as_object() else {
        return Err("event is not a JSON object".into());
    };
    if !internal && obj.contains_key(WRITER_MEMBER) {
        return Err(format!(
            "event member {WRITER_MEMBER:?} is reserved: the writer adds it (who wrote the entry)"
        ));
    }
    if !internal
        && let Some(Value::String(t)) = obj.get("type")
        && t.starts_with(RESERVED_PREFIX)
    {
        return Err(format!(
            "event type {t:?} is reserved: types starting with {RESERVED_PREFIX:?} are written only by stele itself"
        ));
    }
    Ok(())
}

struct Scan {
    size: u64,
    entries_len: u64,
    prev: Hash,
    last_ts: i64,
    // (offset, dropped bytes, reason)
    cut: Option<(u64, u64, String)>,
}

// The `ts` of a line known to be well formed: its last 29 bytes are `"ts":"…"}`
// minus the prefix, so the timestamp is at a fixed place from the end.
fn tail_ts(line: &[u8]) -> Option<i64> {
    let n = line.len();
    if n < 37 || &line[n - 2..] != b"\"}" || &line[n - 35..n - 29] != b"\"ts\":\"" {
        return None;
    }
    Timestamp::parse(&line[n - 29..n - 2]).map(Timestamp::unix_micros)
}

// Compares a derived file with the bytes it should hold, in order, and
// rewrites it from the first difference.
struct Derived<'a> {
    fs: &'a dyn Fs,
    role: FileRole,
    file: &'a File,
    path: PathBuf,
    reader: BufReader<&'a File>,
    file_len: u64,
    pos: u64,
    diverged: bool,
    pending: Vec<u8>,
    pending_at: u64,
    tmp: Vec<u8>,
}

impl<'a> Derived<'a> {
    // Compares from byte `pos` on (what comes before was checked earlier).
    fn new(
        fs: &'a dyn Fs,
        role: FileRole,
        file: &'a File,
        path: PathBuf,
        pos: u64,
    ) -> Result<Self> {
        let file_len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let _ = reader
            .seek(SeekFrom::Start(pos))
            .map_err(|e| Error::io("seek", &path, e))?;
        Ok(Derived {
            fs,
            role,
            file,
            path,
            reader,
            file_len,
            pos,
            diverged: false,
            pending: Vec::new(),
            pending_at: 0,
            tmp: Vec::new(),
        })
    }

    // Returns whether `bytes` equal what the file holds at this place.
    fn feed(&mut self, bytes: &[u8]) -> Result<bool> {
        let n = bytes.len() as u64;
        let mut same = false;
        if !self.diverged {
            if self.pos + n <= self.file_len {
                self.tmp.resize(bytes.len(), 0);
                self.reader
                    .read_exact(&mut self.tmp)
                    .map_err(|e| Error::io("read", &self.path, e))?;
                same = self.tmp == bytes;
            }
            if !same {
                self.diverged = true;
                self.pending_at = self.pos;
            }
        }
        if self.diverged {
            self.pending.extend_from_slice(bytes);
            if self.pending.len() >= 8 << 20 {
                self.flush()?;
            }
        }
        self.pos += n;
        Ok(same)
    }

    // Takes back the last `n` bytes fed.
    fn rewind(&mut self, n: u64) {
        self.pos -= n;
        if self.diverged {
            let keep = self.pending.len().saturating_sub(n as usize);
            self.pending.truncate(keep);
            self.pending_at = self.pending_at.min(self.pos);
        }
    }

    fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.fs
                .write_at(self.role, self.file, &self.pending, self.pending_at)
                .map_err(|e| Error::io("write", &self.path, e))?;
            self.pending_at += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.flush()?;
        if self.file_len != self.pos {
            self.fs
                .set_len(self.role, self.file, self.pos)
                .map_err(|e| Error::io("truncate", &self.path, e))?;
        }
        Ok(())
    }
}

// An entry line and its newline.
const MAX_LINE: usize = MAX_ENTRY_BYTES + 1;

/// Reads one line, through its `\n`, into `line` (cleared first), keeping
/// at most `limit` bytes of it. Returns the bytes consumed: the whole line,
/// so a result above `line.len()` means the line is longer than `limit` (its
/// rest was read and dropped, never buffered). 0 means end of input.
pub fn read_line_bounded(
    r: &mut impl BufRead,
    line: &mut Vec<u8>,
    limit: usize,
) -> io::Result<u64> {
    line.clear();
    let mut total = 0u64;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(total);
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = limit.saturating_sub(line.len());
        line.extend_from_slice(&buf[..take.min(room)]);
        r.consume(take);
        total += take as u64;
        if done {
            return Ok(total);
        }
    }
}

#[allow(clippy::too_many_arguments)] // reason: one call site, all parts of one open
fn scan(
    dir: &Path,
    fs: &dyn Fs,
    entries: &File,
    entries_path: &Path,
    tree: &File,
    index: &File,
    signed: u64,
    genesis_key: &stele_core::VerifierKey,
    origin: &str,
    creating: bool,
    start: Option<crate::mark::Start>,
    full: bool,
) -> Result<Scan> {
    let corrupt = |entry: u64, offset: u64, why: String| Error::Corrupt {
        dir: dir.into(),
        entry,
        offset,
        why,
    };
    let file_len = entries
        .metadata()
        .map_err(|e| Error::io("stat", entries_path, e))?
        .len();
    // From the check mark when it holds, else from entry 0.
    let (mut frontier, mut offset, mut prev, mut last_ts) = match start {
        Some(s) => (s.frontier, s.entries_len, s.prev, s.last_ts),
        None => (Frontier::default(), 0, ZERO_PREV, i64::MIN),
    };
    let mut i = frontier.size();
    let mut tree_d = Derived::new(
        fs,
        FileRole::Tree,
        tree,
        dir.join(files::TREE),
        stored_len(i) * 32,
    )?;
    let mut index_d = Derived::new(fs, FileRole::Index, index, dir.join(files::INDEX), i * 8)?;
    let mut reader = BufReader::with_capacity(8 << 20, entries);
    let _ = reader
        .seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io("seek", entries_path, e))?;
    // A line is kept up to the entry limit and its newline, never more.
    let mut line = Vec::with_capacity(MAX_LINE);
    let mut tree_bytes = Vec::with_capacity(64 * 32);
    let mut bad: Option<(u64, String)> = None;
    let my_key = genesis_key.to_string();
    let mut n;
    loop {
        n = read_line_bounded(&mut reader, &mut line, MAX_LINE)
            .map_err(|e| Error::io("read", entries_path, e))?;
        if n == 0 {
            break;
        }
        if n > line.len() as u64 {
            bad = Some((
                offset,
                format!(
                    "entry {i}: line is {n} bytes or more, over the limit of {MAX_ENTRY_BYTES} bytes and a newline"
                ),
            ));
            break;
        }
        if line.last() != Some(&b'\n') {
            bad = Some((
                offset,
                format!("entry {i}: incomplete last line ({n} bytes, no newline)"),
            ));
            break;
        }
        let body = &line[..line.len() - 1];
        let leaf = leaf_hash(body);
        tree_bytes.clear();
        frontier.push(leaf, &mut tree_bytes);
        // The stored leaf hash matches: the line is as it was written and
        // checked at append time, so it need not be parsed again.
        let leaf_same = tree_d.feed(&tree_bytes[..32])?;
        // (On a bad line the leaf is taken back below with `rewind`.)
        let mut ok_ts = if leaf_same && i > 0 && !full {
            tail_ts(body)
        } else {
            None
        };
        if ok_ts.is_none() {
            match parse_entry(body) {
                Err(e) => {
                    bad = Some((offset, format!("entry {i}: {e}")));
                }
                Ok(p) if p.seq != i => {
                    bad = Some((offset, format!("entry {i}: seq is {}, expected {i}", p.seq)));
                }
                Ok(p) if p.prev != prev => {
                    bad = Some((
                        offset,
                        format!(
                            "entry {i}: prev is {}, but entry {} hashes to {}",
                            p.prev.short(),
                            i.wrapping_sub(1),
                            prev.short()
                        ),
                    ));
                }
                Ok(p) if p.ts.unix_micros() < last_ts => {
                    bad = Some((
                        offset,
                        format!(
                            "entry {i}: ts {} is earlier than the previous entry's",
                            p.ts
                        ),
                    ));
                }
                Ok(p) => {
                    if i == 0 {
                        let ev: Value = serde_json::from_str(p.event_json()).unwrap_or(Value::Null);
                        if ev.get("type").and_then(Value::as_str) != Some(GENESIS_TYPE)
                            || ev.get("origin").and_then(Value::as_str) != Some(origin)
                        {
                            return Err(corrupt(
                                0,
                                0,
                                format!("entry 0 is not a genesis entry for origin {origin:?}"),
                            ));
                        }
                        let k = ev.get("key").and_then(Value::as_str).unwrap_or("");
                        if k != my_key {
                            return Err(Error::BadKey {
                                path: dir.join(files::CONFIG),
                                why: format!(
                                    "the log's genesis names key {k}, but the key file holds {my_key}"
                                ),
                            });
                        }
                    }
                    ok_ts = Some(p.ts.unix_micros());
                }
            }
            if bad.is_some() {
                tree_d.rewind(32);
                break;
            }
        }
        let _ = tree_d.feed(&tree_bytes[32..])?;
        let end = offset + n;
        let _ = index_d.feed(&end.to_le_bytes())?;
        last_ts = ok_ts.expect("set above");
        prev = leaf;
        offset = end;
        i += 1;
    }
    let mut cut = None;
    if let Some((at, why)) = bad {
        // Damage is a torn tail only if no complete entry follows it.
        let mut rest_off = at + n;
        // (An over-long line counts as complete: it was read to its end.)
        if n > line.len() as u64 || line.last() == Some(&b'\n') {
            loop {
                let n = read_line_bounded(&mut reader, &mut line, MAX_LINE)
                    .map_err(|e| Error::io("read", entries_path, e))?;
                if n == 0 || (n == line.len() as u64 && line.last() != Some(&b'\n')) {
                    break;
                }
                if n == line.len() as u64
                    && let Ok(p) = parse_entry(&line[..line.len() - 1])
                {
                    return Err(corrupt(
                        i,
                        at,
                        format!(
                            "{why}; a complete entry (seq {}) follows at byte offset {rest_off}, so this is not a torn tail",
                            p.seq
                        ),
                    ));
                }
                rest_off += n;
            }
        }
        if i < signed {
            return Err(corrupt(
                i,
                at,
                format!(
                    "{why}; the entry is covered by the signed checkpoint of size {signed}, so it cannot be cut"
                ),
            ));
        }
        if i == 0 {
            return Err(corrupt(
                0,
                0,
                format!("{why}; the genesis entry is damaged"),
            ));
        }
        cut = Some((at, file_len - at, why));
        fs.set_len(FileRole::Entries, entries, at)
            .map_err(|e| Error::io("truncate", entries_path, e))?;
        fs.sync_data(FileRole::Entries, entries)
            .map_err(|e| Error::io("fdatasync", entries_path, e))?;
    }
    if i == 0 && !creating {
        return Err(Error::NotALog {
            dir: dir.into(),
            why: format!("{} has no genesis entry", files::ENTRIES),
        });
    }
    tree_d.finish()?;
    index_d.finish()?;
    debug_assert_eq!(position(0, i), stored_len(i));
    Ok(Scan {
        size: i,
        entries_len: offset,
        prev,
        last_ts,
        cut,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The events are checked on the canonical JSON threads: a refused event
    // is still the error when another, earlier in the batch and in another
    // part, has no canonical form (as when the whole batch was checked
    // first), and the first error in event order otherwise.
    #[test]
    fn refused_events_go_before_canonical_errors() {
        let mut deep = serde_json::json!(1);
        for _ in 0..70 {
            deep = serde_json::json!([deep]);
        }
        let mut events: Vec<Value> = (0..1000).map(|i| serde_json::json!({"n": i})).collect();
        events[100] = serde_json::json!({ "deep": deep });
        events[900] = serde_json::json!({"type": "stele.x"});
        let index = |evs: &[Value], check| match Texts::default().canonical(evs, check) {
            Err(Error::BadEvent { index, .. }) => Some(index),
            _ => None,
        };
        assert_eq!(index(&events, Some(false)), Some(900));
        // Internal events may have stele. types; unchecked, no refusal.
        assert_eq!(index(&events, Some(true)), Some(100));
        assert_eq!(index(&events, None), Some(100));
        events[950] = serde_json::json!("not an object");
        assert_eq!(index(&events, Some(false)), Some(900));
        events[900] = serde_json::json!({"n": 900});
        assert_eq!(index(&events, Some(false)), Some(950));
        events[100] = serde_json::json!({"n": 100});
        events[950] = serde_json::json!({"n": 950});
        let mut texts = Texts::default();
        texts.canonical(&events, Some(false)).unwrap();
        assert_eq!(texts.len(), 1000);
        for i in [0, 499, 500, 999] {
            assert_eq!(texts.get(i), canonical_event(&events[i]).unwrap());
        }
    }

    #[test]
    fn split_line_building_matches_core_entry_line() {
        let events = [
            serde_json::json!({}),
            serde_json::json!({"actor": "alice", "n": 1.5, "z": [1, {"b": null, "a": true}]}),
            serde_json::json!({"prev": ",\"prev\":\"", "seq": 7, "ts": "x", "é": "\u{1F600}\n"}),
        ];
        for ev in &events {
            let text = canonical_event(ev).unwrap();
            for (seq, us) in [
                (0u64, 0i64),
                (1, 1_700_000_000_123_456),
                (stele_core::entry::MAX_SEQ, -1),
            ] {
                let ts = Timestamp::from_unix_micros(us).unwrap();
                let prev = leaf_hash(&seq.to_le_bytes());
                assert_eq!(
                    finish_line(&text, seq, ts, &prev).unwrap(),
                    stele_core::entry::entry_line(seq, ts, &prev, ev).unwrap()
                );
            }
        }
        // Size limit: the same verdict as core at the boundary.
        for pad in 65_350..65_420 {
            let ev = serde_json::json!({ "p": "x".repeat(pad) });
            let ts = Timestamp::from_unix_micros(0).unwrap();
            let core = stele_core::entry::entry_line(12345, ts, &ZERO_PREV, &ev);
            let ours = canonical_event(&ev).and_then(|t| finish_line(&t, 12345, ts, &ZERO_PREV));
            assert_eq!(core.is_ok(), ours.is_ok(), "pad {pad}");
        }
    }
}

/// Who an append is for: what is checked and what is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Appended {
    /// A user's events: checked (reserved types and members refused), then sealed.
    User,
    /// A user's events already checked, with the writer member added
    /// ([`Log::append_batch_by`]): sealed, not checked again.
    Authenticated,
    /// Stele's own events (genesis, `stele.*`): neither checked nor sealed.
    Internal,
}
