//! Reading a log over HTTP (C2SP tlog-tiles with entry bundles, as `stele
//! serve` speaks it) without trusting the server: bounded fetches, the
//! signed checkpoint checked against a pinned key, and consistency between
//! two checkpoints proved from the server's hash tiles. Every rule comes
//! from stele-core (signature, tile math, RFC 9162 consistency); this module
//! only moves bytes and names what went wrong.
//!
//! Used by the mirror ([`crate::mirror`]) and by `stele monitor URL`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use stele_core::checkpoint::{Checkpoint, SignedCheckpoint};
use stele_core::merkle::{ProofError, verify_consistency};
use stele_core::note::{MAX_NOTE_BYTES, VerifierKey};
use stele_core::tiles::{
    TILE_WIDTH, Tile, TileSet, consistency_proof_from_tiles, tiles_for_consistency,
};

/// Largest hash tile: 256 hashes of 32 bytes.
pub const MAX_TILE_BYTES: u64 = TILE_WIDTH as u64 * 32;
/// Largest entry bundle: 256 entries of at most 65,535 bytes, each after a
/// 2-byte length.
pub const MAX_BUNDLE_BYTES: u64 = TILE_WIDTH as u64 * (65_535 + 2);

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Worth retrying: the origin could not be reached, timed out, or
    /// answered 5xx / 429.
    Unreachable(String),
    /// The origin answered, but not with what a tlog-tiles server must
    /// send: another status, a redirect, a body over the limit.
    Bad(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(m) | Self::Bad(m) => f.write_str(m),
        }
    }
}

/// A bounded HTTP GET client for one origin. Redirects are not followed (a
/// log must not send its reader to another host); every body has a size
/// limit; every request has a deadline.
pub struct Fetcher {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
    bytes: AtomicU64,
    requests: AtomicU64,
    // Body buffers handed back by the caller (`recycle`), reused so a
    // catch-up does not fault in and clear fresh pages for every bundle.
    pool: std::sync::Mutex<Vec<Vec<u8>>>,
}

// Most buffers kept for reuse, and the largest kept (a bundle of typical
// entries is tens of KB; a hostile origin's 16.8 MB ones are not kept).
const POOL_BUFFERS: usize = 64;
const POOL_BUFFER_BYTES: usize = 1 << 20;

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret: never shown.
        f.debug_struct("Fetcher")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A client for the log at `base` (`http://host:port` or with a path
    /// prefix), each request bounded by `timeout`, sending `token` as a
    /// bearer token if given.
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> Result<Self, String> {
        let base = base.trim_end_matches('/').to_string();
        // Credentials in the URL would be kept in mirror.json and shown in
        // alerts, messages and a restored log's stele.recovery entry: never
        // echoed, refused.
        let rest = base.split_once("://").map_or(base.as_str(), |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            return Err(
                "the URL holds credentials (user:password@); pass a bearer token with --token-file instead"
                    .into(),
            );
        }
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!("{base:?} is not an http:// or https:// URL"));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("stele/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            agent,
            base,
            token,
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            pool: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The origin's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Body bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Requests made so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// GETs `path` (relative to the base), refusing a body over `limit` bytes.
    pub fn get(&self, path: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        let url = format!("{}/{path}", self.base);
        let _ = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.call().map_err(|e| match e {
            ureq::Error::Timeout(_) => FetchError::Unreachable(format!("GET {url}: timed out")),
            ureq::Error::Io(e) => FetchError::Unreachable(format!("GET {url}: {e}")),
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                FetchError::Unreachable(format!("GET {url}: {e}"))
            }
            e => FetchError::Bad(format!("GET {url}: {e}")),
        })?;
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            let to = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_string();
            return Err(FetchError::Bad(format!(
                "GET {url}: the origin redirects ({status}) to {to:?}; redirects are not followed"
            )));
        }
        if status == 429 {
            let after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_string();
            return Err(FetchError::Unreachable(format!(
                "GET {url}: HTTP 429, retry after {after} s (the origin limits reads; a stele serve \
origin allows each reader --access-rate access records a minute)"
            )));
        }
        if status >= 500 {
            return Err(FetchError::Unreachable(format!("GET {url}: HTTP {status}")));
        }
        if status != 200 {
            // The origin's own reason when it gives one (`{"error": "…"}`,
            // as stele serve does), else a hint for the usual cause.
            let said = said(&mut resp);
            let mut hint = said
                .as_ref()
                .map_or(String::new(), |why| format!(": the origin says {why:?}"));
            if status == 401 || (status == 403 && said.is_none()) {
                hint.push_str(" (does the origin need --token-file?)");
            }
            return Err(FetchError::Bad(format!("GET {url}: HTTP {status}{hint}")));
        }
        let declared = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(n) = declared
            && n > limit
        {
            return Err(FetchError::Bad(format!(
                "GET {url}: the body is {n} bytes, more than the {limit} allowed"
            )));
        }
        let mut body = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        // The declared length (at most the limit) up front: no regrowth.
        body.reserve(declared.unwrap_or(0) as usize);
        let read = std::io::Read::read_to_end(
            &mut resp.body_mut().with_config().limit(limit).reader(),
            &mut body,
        );
        if let Err(e) = read {
            let inner = e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>());
            return Err(match inner {
                Some(ureq::Error::BodyExceedsLimit(_)) => FetchError::Bad(format!(
                    "GET {url}: the body is more than the {limit} bytes allowed"
                )),
                Some(ureq::Error::Timeout(_)) => {
                    FetchError::Unreachable(format!("GET {url}: timed out reading the body"))
                }
                _ if e.kind() == std::io::ErrorKind::TimedOut => {
                    FetchError::Unreachable(format!("GET {url}: timed out reading the body"))
                }
                _ => FetchError::Unreachable(format!("GET {url}: reading the body: {e}")),
            });
        }
        let _ = self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        Ok(body)
    }

    /// Hands a body from [`Self::get`] back for reuse by a later fetch.
    pub fn recycle(&self, mut body: Vec<u8>) {
        if body.capacity() <= POOL_BUFFER_BYTES {
            body.clear();
            let mut p = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            if p.len() < POOL_BUFFERS {
                p.push(body);
            }
        }
    }

    /// Fetches the hash tile `t` and adds it to `set` (its length must be
    /// exactly its width in hashes).
    pub fn tile_into(&self, t: &Tile, set: &mut TileSet) -> Result<(), Problem> {
        let data = self
            .get(&t.path(), MAX_TILE_BYTES)
            .map_err(Problem::Fetch)?;
        set.insert(*t, &data).map_err(|e| Problem::BadTile {
            path: t.path(),
            why: e.to_string(),
        })
    }
}

/// What a check of the origin found, before it becomes an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A fetch failed.
    Fetch(FetchError),
    /// The checkpoint does not parse or is not signed by the pinned key.
    Signature(String),
    /// The checkpoint names another origin than the log's.
    Origin(String),
    /// A tile of the wrong size, or tiles that do not lead to the signed root.
    BadTile {
        /// The tile (or `tiles` when the set as a whole is wrong).
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The origin serves a smaller tree than one it signed before.
    Rollback(String),
    /// Two signed trees that cannot both be true: same size and different
    /// roots, or a larger tree that does not contain the smaller one.
    Fork(String),
    /// Entries that do not hash to the signed tree or break a chain rule.
    Mismatch(String),
    /// The checkpoint lacks the witness quorum of the policy (docs/FORMAT.md 14.4).
    Quorum {
        /// The policy's quorum name.
        quorum: String,
        /// The policy's witnesses that cosigned.
        cosigned_by: Vec<String>,
        /// What is wrong.
        message: String,
    },
}

impl Problem {
    /// The alert kind: `unreachable`, `bad_response`, `signature`,
    /// `origin`, `bad_tile`, `rollback`, `fork`, `mismatch`, `quorum`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Fetch(FetchError::Unreachable(_)) => "unreachable",
            Self::Fetch(FetchError::Bad(_)) => "bad_response",
            Self::Signature(_) => "signature",
            Self::Origin(_) => "origin",
            Self::BadTile { .. } => "bad_tile",
            Self::Rollback(_) => "rollback",
            Self::Fork(_) => "fork",
            Self::Mismatch(_) => "mismatch",
            Self::Quorum { .. } => "quorum",
        }
    }

    /// Whether the origin may simply be down (retry, alert only after a limit).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Fetch(FetchError::Unreachable(_)))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fetch(e) => write!(f, "{e}"),
            Self::Signature(m)
            | Self::Origin(m)
            | Self::Rollback(m)
            | Self::Fork(m)
            | Self::Mismatch(m) => f.write_str(m),
            Self::BadTile { path, why } => write!(f, "{path}: {why}"),
            Self::Quorum { message, .. } => f.write_str(message),
        }
    }
}

/// The keys a reader accepts, each for its range of tree sizes (docs/FORMAT.md
/// 15.3): the pinned key from size 0, then each key learned through a signed
/// `stele.key` transition from its `from`. The last key has no upper end.
/// Keys pinned beside the first (a revoked key's published successor) are
/// learned like the others but never inherit a revocation. Revoked keys (15.3, `--revoked`) sign nothing from their size
/// on, and a key learned from a revoked key's hand-over is revoked from the
/// same size unless it is pinned: core's rule, so a mirror or a monitor
/// trusts exactly what `stele verify` would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRanges {
    keys: Vec<(VerifierKey, u64)>,
    also: Vec<VerifierKey>,
    // Given (the first `given`), then inherited through learned hand-overs.
    revoked: Vec<(VerifierKey, u64)>,
    given: usize,
}

impl KeyRanges {
    /// Only the pinned key.
    pub fn new(pinned: VerifierKey) -> Self {
        Self::pinned(pinned, Vec::new(), Vec::new())
    }

    /// The first pinned key (whose range starts the history), keys pinned
    /// beside it, and revoked keys with the size from which each is revoked.
    pub fn pinned(
        first: VerifierKey,
        also: Vec<VerifierKey>,
        revoked: Vec<(VerifierKey, u64)>,
    ) -> Self {
        Self {
            keys: vec![(first, 0)],
            also,
            given: revoked.len(),
            revoked,
        }
    }

    /// Adds a key that signs from tree size `from` (ignored if known; the
    /// history is capped at [`stele_core::verify::MAX_KEYS`]). A key handed
    /// over to by a revoked key inherits its revocation unless pinned.
    pub fn learn(&mut self, key: VerifierKey, from: u64) -> bool {
        if self.knows(&key)
            || self.keys.len() >= stele_core::verify::MAX_KEYS
            || self.keys.last().is_some_and(|(_, f)| from <= *f)
        {
            return false;
        }
        let handed = self.keys.last().and_then(|(k, _)| self.revoked_from(k));
        if let Some(s) = handed.filter(|_| !self.also.contains(&key)) {
            self.revoked.push((key.clone(), s));
        }
        self.keys.push((key, from));
        true
    }

    /// Whether `key` is in the history.
    pub fn knows(&self, key: &VerifierKey) -> bool {
        self.keys.iter().any(|(k, _)| k == key)
    }

    /// The smallest size from which `key` is revoked (given or inherited):
    /// core's rule, asked for the largest size.
    pub fn revoked_from(&self, key: &VerifierKey) -> Option<u64> {
        stele_core::verify::revoked_signature(std::slice::from_ref(key), u64::MAX, &self.revoked)
            .map(|(_, s)| s)
    }

    /// The smallest size from which any key is revoked (given or inherited).
    pub fn revoked_from_any(&self) -> Option<u64> {
        self.revoked.iter().map(|(_, s)| *s).min()
    }

    /// The key that may sign a tree of `size`: the one whose range holds it,
    /// unless it is revoked at that size (then none). A key pinned beside
    /// the first is reached through the history like any other (a reader
    /// that checks one checkpoint at a time needs each hand-over's covering
    /// checkpoint); pinning only keeps it from inheriting a revocation.
    pub fn at(&self, size: u64) -> Vec<VerifierKey> {
        let i = self.keys.iter().rposition(|(_, f)| *f <= size).unwrap_or(0);
        let k = &self.keys[i].0;
        if self.revoked_from(k).is_some_and(|s| s <= size) {
            return Vec::new();
        }
        vec![k.clone()]
    }

    /// Core's options for a tree of `size`: the key whose range holds it
    /// and those pinned beside the first (so core does not make them
    /// inherit a revocation either), with every revocation: a revoked key's
    /// signature is core's `key_revoked`.
    pub fn options(&self, size: u64) -> stele_core::verify::Options {
        let i = self.keys.iter().rposition(|(_, f)| *f <= size).unwrap_or(0);
        let first = &self.keys[i].0;
        let keys = std::iter::once(first)
            .chain(self.also.iter().filter(|k| *k != first))
            .cloned()
            .collect();
        let mut o = stele_core::verify::Options::new(keys);
        o.revoked = self.revoked.clone();
        o
    }

    /// Every key of the history, oldest first, with its `from`, then the
    /// keys pinned beside the first (from 0).
    pub fn all(&self) -> Vec<(VerifierKey, u64)> {
        let mut v = self.keys.clone();
        v.extend(self.also.iter().map(|k| (k.clone(), 0)));
        v
    }

    /// Why a checkpoint of `size` signed by `signers` is refused, when one
    /// of them is a known key revoked at that size.
    pub fn revoked_note(&self, size: u64, signers: &[VerifierKey]) -> Option<String> {
        signers.iter().find_map(|k| {
            let s = self.revoked_from(k).filter(|s| *s <= size)?;
            let given = self.revoked[..self.given].iter().any(|(r, _)| r == k);
            Some(format!(
                "key {} ({}) is revoked from size {s}{}",
                k.name(),
                k.id_hex(),
                if given {
                    ""
                } else {
                    " (handed over to by a revoked key, and not pinned)"
                }
            ))
        })
    }
}

/// Fetches `checkpoint` and checks it with core's signed-note rules: it
/// must be signed by the key whose range holds its size, and carry no bad
/// signature by it.
pub fn fetch_checkpoint(
    f: &Fetcher,
    keys: &KeyRanges,
) -> Result<(SignedCheckpoint, String), Problem> {
    let body = f
        .get("checkpoint", MAX_NOTE_BYTES as u64)
        .map_err(Problem::Fetch)?;
    let from = format!("{}/checkpoint", f.base());
    let size = SignedCheckpoint::parse(&body)
        .map_err(|e| Problem::Signature(format!("{from}: not a signed checkpoint: {e}")))?
        .checkpoint
        .size;
    check_at(&body, keys, size, &from)
}

/// [`check_checkpoint`] with the keys that may sign a tree of `size`,
/// saying so when a known key revoked at that size signed it.
pub fn check_at(
    body: &[u8],
    keys: &KeyRanges,
    size: u64,
    from: &str,
) -> Result<(SignedCheckpoint, String), Problem> {
    let signers = || {
        let all: Vec<VerifierKey> = keys.all().into_iter().map(|(k, _)| k).collect();
        SignedCheckpoint::parse(body)
            .map(|sc| sc.verify(&all).verified_by)
            .unwrap_or_default()
    };
    let ok = check_checkpoint(body, &keys.at(size), from).map_err(|p| match p {
        Problem::Signature(m) => match keys.revoked_note(size, &signers()) {
            Some(n) => Problem::Signature(format!("{m}; {n}")),
            None => Problem::Signature(m),
        },
        p => p,
    })?;
    // Core's rule (FORMAT 15.3): a revoked key's signature fails the
    // checkpoint even beside a key that may sign it.
    let signed = signers();
    if stele_core::verify::revoked_signature(&signed, size, &keys.revoked).is_some() {
        let n = keys.revoked_note(size, &signed).unwrap_or_default();
        return Err(Problem::Signature(format!(
            "{from}: the checkpoint of size {size} carries the signature of a revoked key: {n}"
        )));
    }
    Ok(ok)
}

/// Checks a signed checkpoint note against `keys` (core's rules: one of them
/// signs it, none of their signatures is bad).
pub fn check_checkpoint(
    body: &[u8],
    keys: &[VerifierKey],
    from: &str,
) -> Result<(SignedCheckpoint, String), Problem> {
    let sc = SignedCheckpoint::parse(body)
        .map_err(|e| Problem::Signature(format!("{from}: not a signed checkpoint: {e}")))?;
    let v = sc.verify(keys);
    let names = || {
        keys.iter()
            .map(|k| format!("{} ({})", k.name(), k.id_hex()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !v.bad.is_empty() {
        return Err(Problem::Signature(format!(
            "{from}: the signature by {} on the checkpoint of size {} does not verify",
            names(),
            sc.checkpoint.size
        )));
    }
    if v.verified_by.is_empty() {
        let others: Vec<String> = v
            .unknown
            .iter()
            .map(|s| format!("{} ({})", s.name, stele_core::note::hex(&s.key_id)))
            .collect();
        let want = if keys.is_empty() {
            "any key that may sign that size".to_string()
        } else {
            format!(
                "the pinned key (or the key learned from the log's rotations for that size) {}",
                names()
            )
        };
        return Err(Problem::Signature(format!(
            "{from}: the checkpoint of size {} is not signed by {want}; signed by: {}",
            sc.checkpoint.size,
            if others.is_empty() {
                "nobody".to_string()
            } else {
                others.join(", ")
            }
        )));
    }
    let note = String::from_utf8(body.to_vec())
        .map_err(|_| Problem::Signature(format!("{from}: the checkpoint is not UTF-8")))?;
    Ok((sc, note))
}

/// docs/FORMAT.md 14.4 for a reader that holds one checkpoint at a time: the
/// cosignatures of the policy's witnesses on `sc` must verify and meet the
/// quorum. Core's policy evaluation decides; `from` names the source.
pub fn check_quorum(
    policy: &stele_core::witness::Policy,
    sc: &SignedCheckpoint,
    from: &str,
) -> Result<Vec<String>, Problem> {
    let c = policy.cosignatures(sc);
    let size = sc.checkpoint.size;
    if let Some(w) = c.bad.first() {
        return Err(Problem::Signature(format!(
            "{from}: the cosignature by witness {w} on the checkpoint of size {size} does not verify"
        )));
    }
    let names = c.names(policy);
    if policy.quorum_met(&c.cosigned) {
        return Ok(names);
    }
    let quorum = policy.quorum_name().to_string();
    Err(Problem::Quorum {
        message: format!(
            "{from}: the checkpoint of size {size} does not meet the witness quorum {quorum} (cosigned by {}): the log may be showing this history to some and another to others; it is not accepted",
            if names.is_empty() {
                "no witness".to_string()
            } else {
                names.join(", ")
            }
        ),
        quorum,
        cosigned_by: names,
    })
}

/// Checks that `new` extends `held` (both already signature-checked): a
/// smaller size is a rollback, the same size with another root a fork, a
/// larger size needs the RFC 9162 consistency proof, built from the
/// origin's hash tiles of the new tree (O(log n) tiles, fetched into
/// `tiles`) and checked by core. A proof that leads to the new signed root
/// but not to the held root proves a fork; one that does not even lead to
/// the new root means the tiles are wrong.
pub fn check_extends(
    f: &Fetcher,
    held: &Checkpoint,
    new: &Checkpoint,
    tiles: &mut TileSet,
) -> Result<(), Problem> {
    if new.origin != held.origin {
        return Err(Problem::Origin(format!(
            "the checkpoint names origin {:?}, but the log's origin is {:?}",
            new.origin, held.origin
        )));
    }
    if new.size < held.size {
        return Err(Problem::Rollback(format!(
            "the origin serves a tree of {} entries, smaller than the {} it signed before",
            new.size, held.size
        )));
    }
    if new.size == held.size {
        if new.root != held.root {
            return Err(Problem::Fork(format!(
                "two signed trees of size {}: root {} held, root {} served",
                new.size,
                held.root.to_base64(),
                new.root.to_base64()
            )));
        }
        return Ok(());
    }
    if held.size == 0 {
        return Ok(());
    }
    let need = tiles_for_consistency(held.size, new.size).map_err(|e| Problem::BadTile {
        path: "tiles".into(),
        why: e.to_string(),
    })?;
    for t in &need {
        f.tile_into(t, tiles)?;
    }
    let proof =
        consistency_proof_from_tiles(tiles, held.size, new.size).map_err(|e| Problem::BadTile {
            path: "tiles".into(),
            why: e.to_string(),
        })?;
    match verify_consistency(held.size, new.size, &held.root, &new.root, &proof) {
        Ok(()) => Ok(()),
        Err(ProofError::OldRootMismatch { computed, .. }) => {
            // Does the same proof lead to the signed new root? Then the new
            // tree's first `held.size` entries have root `computed`, not the
            // held root: the key signed two histories.
            if verify_consistency(held.size, new.size, &computed, &new.root, &proof).is_ok() {
                Err(Problem::Fork(format!(
                    "the signed tree of size {} does not contain the signed tree of size {} held: \
its first {} entries have root {}, the held checkpoint says {}",
                    new.size,
                    held.size,
                    held.size,
                    computed.to_base64(),
                    held.root.to_base64()
                )))
            } else {
                Err(bad_tiles(held.size, new.size, &need))
            }
        }
        Err(_) => Err(bad_tiles(held.size, new.size, &need)),
    }
}

fn bad_tiles(old: u64, new: u64, need: &[Tile]) -> Problem {
    let paths: Vec<String> = need.iter().map(Tile::path).collect();
    Problem::BadTile {
        path: paths.join(", "),
        why: format!(
            "the consistency proof from {old} to {new} built from these tiles does not lead to the signed root of size {new}"
        ),
    }
}

/// Largest `GET /v1/keys` body: 100 keys, each with a proof of one entry.
pub const MAX_KEYS_BYTES: u64 = 8 << 20;

/// One rotation of a log's key history as `GET /v1/keys` serves it
/// (writer/README.md, "Key history"): the new key, its `stele.key` event's
/// index and `from`, the checkpoint that first covers the event (signed by
/// the key it replaces), and a `range` export proving the event is in that
/// checkpoint's tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyStep {
    /// The new verifier key.
    pub key: String,
    /// The index of its `stele.key` event.
    pub entry: u64,
    /// The first tree size it signs (`entry + 1`).
    pub from: u64,
    /// The covering checkpoint note.
    pub checkpoint: String,
    /// A `range` export from the event's entry to the covering checkpoint.
    pub proof: String,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyHistory {
    /// The rotations, oldest first.
    pub keys: Vec<KeyStep>,
}

/// A rotation learned and proved: the step and its covering checkpoint.
#[derive(Debug, Clone)]
pub struct Learned {
    /// The step as served.
    pub step: KeyStep,
    /// Its covering checkpoint, signed by the key it replaces.
    pub covering: SignedCheckpoint,
}

/// Fetches the origin's key history and learns, in order, each key the
/// known keys hand over to: core's verifier reads the step's proof (a
/// `range` export holding the `stele.key` event and its covering
/// checkpoint) with the key whose range holds `from - 1`, and must accept
/// the new key through a signed transition (docs/FORMAT.md 15.2). Nothing
/// the server says is believed unless core verifies it. Returns what was
/// learned (empty: nothing new).
pub fn learn_keys(
    f: &Fetcher,
    keys: &mut KeyRanges,
    origin: Option<&str>,
) -> Result<Vec<Learned>, Problem> {
    let url = format!("{}/v1/keys", f.base());
    let body = f.get("v1/keys", MAX_KEYS_BYTES).map_err(Problem::Fetch)?;
    let h: KeyHistory = serde_json::from_slice(&body).map_err(|e| {
        Problem::Fetch(FetchError::Bad(format!(
            "GET {url}: not a key history: {e}"
        )))
    })?;
    let mut out = Vec::new();
    for s in h.keys.iter().take(stele_core::verify::MAX_KEYS) {
        let new = VerifierKey::parse(&s.key)
            .map_err(|e| Problem::Signature(format!("{url}: key of entry {}: {e}", s.entry)))?;
        if keys.knows(&new) {
            continue;
        }
        let bad = |why: String| {
            Problem::Signature(format!(
                "{url}: the rotation at entry {} to key {} ({}) is not proved: {why}",
                s.entry,
                new.name(),
                new.id_hex()
            ))
        };
        if s.from == 0 || s.from != s.entry + 1 {
            return Err(bad(format!("from {} is not entry + 1", s.from)));
        }
        let before = keys.at(s.from - 1);
        let (covering, _) = check_checkpoint(s.checkpoint.as_bytes(), &before, &url)
            .map_err(|p| bad(p.to_string()))?;
        // The hand-over's checkpoint is judged at its own size: a key
        // revoked there cannot hand over (core's rule, given the revocations).
        let size = covering.checkpoint.size;
        let signed = covering.verify(&before).verified_by;
        if let Some(n) = stele_core::verify::revoked_signature(&signed, size, &keys.revoked)
            .and_then(|_| keys.revoked_note(size, &signed))
        {
            return Err(bad(format!(
                "its checkpoint (size {size}) is signed by a revoked key: {n}"
            )));
        }
        let mut opts = stele_core::verify::Options::new(before);
        opts.revoked = keys.revoked.clone();
        let r = stele_core::verify::verify_bytes(opts, s.proof.as_bytes());
        let step = r
            .keys
            .iter()
            .flatten()
            .find(|k| k.key == new.to_string() && k.entry == s.entry && k.from == s.from);
        if r.verdict != stele_core::verify::Verdict::Verified || r.failures_total > 0 {
            let why: Vec<String> = r
                .failures
                .iter()
                .take(3)
                .map(|f| f.message.clone())
                .collect();
            return Err(bad(format!(
                "the proof is {}: {}",
                r.verdict.as_str(),
                why.join("; ")
            )));
        }
        if !step.is_some_and(|k| k.trusted && k.signed == Some(true)) {
            return Err(bad(
                "the proof does not hand the known key over to it".into()
            ));
        }
        if r.tree_size != Some(covering.checkpoint.size)
            || r.root.as_deref() != Some(covering.checkpoint.root.to_base64().as_str())
            || origin.is_some_and(|o| o != covering.checkpoint.origin)
        {
            return Err(bad(
                "the proof does not end with the covering checkpoint of the log".into(),
            ));
        }
        let _ = keys.learn(new, s.from);
        out.push(Learned {
            step: s.clone(),
            covering,
        });
    }
    Ok(out)
}

// The reason in a refusal's body, `{"error": "…"}` (read up to 4 KiB; the
// text is the origin's, shown quoted and cut to 300 characters).
fn said(resp: &mut ureq::http::Response<ureq::Body>) -> Option<String> {
    let mut b = Vec::new();
    let _ = std::io::Read::read_to_end(
        &mut resp.body_mut().with_config().limit(4096).reader(),
        &mut b,
    )
    .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
    let why = v.get("error")?.as_str()?;
    Some(why.chars().take(300).collect())
}
