//! Sealed fields (docs/FORMAT.md section 13) on the PostgreSQL + object
//! storage backend. Values are sealed exactly as on a file log (the same
//! [`Sealer`], the same placeholders and opening records); what the file
//! log keeps in `DIR/sealed/` lives in PostgreSQL instead, in the tables
//! below, and nothing sealed ever reaches object storage (tiles and bundles
//! hold commitments only).
//!
//! ```text
//! stele_seal_config     the sealing rules (SealConfig JSON) and a check value of the sealing key
//! stele_seal_auditors   age1… recipients, in the order they were added
//! stele_seal_keys       one row per subject: HMAC tag of the subject, key ID,
//!                       the data key encrypted under the sealing key
//! stele_seal_wraps      the data key wrapped (age) to each auditor
//! stele_seal_forgotten  forgotten key IDs
//! stele_seal_records    per entry: its opening/redacted record lines, written
//!                       in the transaction that sequences the entry
//! ```
//!
//! Key custody (writer/README.md, "Sealed fields on PostgreSQL"): the
//! sealing key is a 32-byte secret in a 0600 file given to every front-end
//! (like the signing key; never in PostgreSQL or S3). A key derived from it
//! encrypts at rest (XChaCha20-Poly1305) the data keys and the subject
//! index key: a random secret keying the subject index (HMAC-SHA-256, as
//! the file log's `sealed/secret`), so the database never holds a
//! subject's value, not even hashed without a secret.

use super::UNREADABLE_BODY;
use super::{Cluster, Inner, chain, db_err, exec1, prepared, row_opt, rows};
use crate::error::{Error, Result};
use crate::log::Receipt;
use crate::sealed::{Compared, KeySource, Pending, SealConfig, Sealer, Shape, hmac_sha256, random};
use deadpool_postgres::{GenericClient, Pool};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stele_core::canonical;
use stele_core::sealed::{DATA_KEY_LEN, DataKey, KEY_ID_LEN, KeyId, Record};

/// The sealing tables, made in the transaction that creates the log.
pub(super) const SCHEMA: &str = "
CREATE TABLE stele_seal_config (
    id int PRIMARY KEY CHECK (id = 1),
    rules text NOT NULL,
    key_check bytea NOT NULL,
    index_key bytea NOT NULL
);
CREATE TABLE stele_seal_auditors (
    n bigserial PRIMARY KEY,
    recipient text NOT NULL UNIQUE
);
CREATE TABLE stele_seal_keys (
    tag bytea PRIMARY KEY,
    key_id bytea NOT NULL UNIQUE,
    sealed_key bytea NOT NULL
);
CREATE TABLE stele_seal_wraps (
    key_id bytea NOT NULL,
    recipient text NOT NULL,
    wrap bytea NOT NULL,
    PRIMARY KEY (key_id, recipient)
);
CREATE TABLE stele_seal_forgotten (
    key_id bytea PRIMARY KEY,
    forgotten_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE stele_seal_records (
    entry bigint PRIMARY KEY,
    lines bytea NOT NULL
);
";

/// What an append gets back when a data key it used was forgotten while it
/// waited to be sequenced (nothing of it was written; it is sealed again).
pub(super) const STALE: &str = "a data key this request used was forgotten while it was sequenced; nothing was written; send it again";

/// The first text of a sealing key file.
const KEY_PREFIX: &str = "STELE-SEAL-KEY-1:";

/// A log's sealing key: the secret every front-end needs to seal (it
/// decrypts the data keys kept in PostgreSQL and keys the subject index).
/// Kept in a 0600 file, never in PostgreSQL or object storage.
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl Drop for SealKey {
    fn drop(&mut self) {
        self.0 = [0; 32];
    }
}

impl SealKey {
    /// A new key from the OS CSPRNG.
    pub fn generate() -> Result<Self> {
        Ok(Self(random()?))
    }

    /// Writes it to a new file, mode 0600 (the file must not exist).
    pub fn save(&self, path: &Path) -> Result<()> {
        use base64::Engine as _;
        let text = format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        );
        crate::key::save_private(&crate::fs::RealFs, path, &text)
    }

    /// Reads a key file, refusing one that group or others can read.
    /// Errors never quote the file's text.
    pub fn load(path: &Path) -> Result<Self> {
        use base64::Engine as _;
        let text = crate::key::load_private(path)?;
        let bad = || Error::BadKey {
            path: path.into(),
            why: format!("not a sealing key file ({KEY_PREFIX} and 32 bytes in base64)"),
        };
        let b64 = text.trim().strip_prefix(KEY_PREFIX).ok_or_else(bad)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| bad())?;
        Ok(Self(bytes.try_into().map_err(|_| bad())?))
    }

    /// The default place of a log's sealing key: beside its signing key,
    /// `FILE.seal`.
    pub fn beside(signing_key: &Path) -> PathBuf {
        let mut p = signing_key.as_os_str().to_owned();
        p.push(".seal");
        PathBuf::from(p)
    }

    fn derive(&self, label: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, label)
    }

    // Stored at init: tells a wrong key file from the right one.
    fn check(&self) -> [u8; 32] {
        self.derive(b"stele cluster sealing key check v1")
    }

    fn data_key_key(&self) -> [u8; 32] {
        self.derive(b"stele cluster data keys v1")
    }
}

/// The sealing key a front-end runs with: the file given, else the one
/// beside the signing key if there is one (`None`: the front-end cannot
/// seal, and refuses events that would be sealed).
pub fn front_end_key(signing_key: &Path, given: Option<&Path>) -> Result<Option<Arc<SealKey>>> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => {
            let p = SealKey::beside(signing_key);
            if std::fs::symlink_metadata(&p).is_err() {
                return Ok(None);
            }
            p
        }
    };
    SealKey::load(&path).map(|k| Some(Arc::new(k)))
}

// The associated data of the subject index key encrypted at rest.
fn index_key_ad(origin: &str) -> Vec<u8> {
    let mut ad = b"stele cluster subject index key v1\n".to_vec();
    ad.extend_from_slice(&(origin.len() as u64).to_be_bytes());
    ad.extend_from_slice(origin.as_bytes());
    ad
}

// The associated data of a data key encrypted at rest: binds it to the log
// and its key ID (a row's key cannot be moved to another ID).
fn data_key_ad(origin: &str, id: &KeyId) -> Vec<u8> {
    let mut ad = b"stele cluster data key v1\n".to_vec();
    ad.extend_from_slice(&(origin.len() as u64).to_be_bytes());
    ad.extend_from_slice(origin.as_bytes());
    ad.extend_from_slice(&id.0);
    ad
}

/// The sealing of a new log: its rules and sealing key, and (`stele migrate
/// DIR postgres://…`) what a log directory's sidecar carries over.
#[derive(Debug)]
pub struct Setup<'a> {
    /// The sealing rules.
    pub cfg: &'a SealConfig,
    /// The new log's sealing key.
    pub key: &'a SealKey,
    /// Keys, wraps, auditors, forget list and openings copied from a log
    /// directory.
    pub carried: Option<&'a Carried>,
}

/// Makes the sealing tables and stores the rules (and what is carried), in
/// the transaction that creates the log (a log never exists without its
/// rules: an event that must be sealed is never stored in the clear).
pub(super) async fn create<C: GenericClient>(c: &C, origin: &str, setup: &Setup<'_>) -> Result<()> {
    let (cfg, key) = (setup.cfg, setup.key);
    cfg.check()?;
    let index: [u8; 32] = match setup.carried.and_then(|c| c.secret) {
        Some(s) => s,
        None => random()?,
    };
    let index = stele_seal::seal_opening(
        &key.data_key_key(),
        &crate::sealed::fresh_nonce()?,
        &index,
        &index_key_ad(origin),
    );
    c.batch_execute(SCHEMA)
        .await
        .map_err(|e| db_err("create the sealing tables", chain(&e)))?;
    let rules = serde_json::to_string(cfg).expect("rules serialize");
    exec1(
        c,
        "write stele_seal_config",
        "INSERT INTO stele_seal_config (id, rules, key_check, index_key) VALUES (1, $1, $2, $3)",
        &[&rules, &&key.check()[..], &index],
    )
    .await?;
    if let Some(carried) = setup.carried {
        carried.insert(c, origin, key).await?;
    }
    Ok(())
}

/// The sealing side of a front-end.
pub(super) struct ClusterSeal {
    pub(super) sealer: Sealer,
    keys: Arc<Keys>,
}

impl std::fmt::Debug for ClusterSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSeal(..)")
    }
}

struct Keys {
    pool: Pool,
    origin: String,
    key: Option<Arc<SealKey>>,
    // The subject index key (opened with `key`).
    index: Option<[u8; 32]>,
    handle: tokio::runtime::Handle,
    // Subject tag -> data key, as read or made, and when. A key is kept at
    // most CACHE_TTL (the integrator's round sweeps it: a key another process
    // forgot leaves this front-end's memory by then), at most CACHE_MAX of
    // them; a forgotten key is evicted at once when this process forgets it
    // or its sequencer finds it forgotten.
    cache: Mutex<HashMap<[u8; 32], (KeyId, DataKey, Instant)>>,
}

/// How long a front-end keeps a data key it read or made.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// How many data keys a front-end keeps at most (one per subject sealed
/// for in the last CACHE_TTL; past it the cache starts again).
const CACHE_MAX: usize = 65_536;

impl Keys {
    // Drops the data keys kept longer than CACHE_TTL.
    fn sweep(&self) {
        self.cache
            .lock()
            .unwrap()
            .retain(|_, (_, _, at)| at.elapsed() < CACHE_TTL);
    }

    fn key(&self) -> Result<&SealKey> {
        self.key.as_deref().ok_or_else(no_key)
    }

    // The subject's tag: HMAC-SHA-256(index key, its canonical JSON).
    fn tag(&self, subject: &[u8]) -> Result<[u8; 32]> {
        Ok(hmac_sha256(
            self.index.as_ref().ok_or_else(no_key)?,
            subject,
        ))
    }
}

fn no_key() -> Error {
    Error::Config {
        option: "--seal-key",
        why: "this log seals fields, and sealing (or forgetting, or adding an auditor) needs its sealing key: pass --seal-key FILE (the file stele init wrote beside the signing key, FILE.seal)".into(),
    }
}

impl KeySource for Keys {
    // Runs on a blocking thread (the append path seals in spawn_blocking):
    // a key not cached is read or made in PostgreSQL.
    fn key_for(&self, subject: &[u8]) -> Result<(KeyId, DataKey)> {
        let tag = self.tag(subject)?;
        if let Some(&(id, key, at)) = self.cache.lock().unwrap().get(&tag)
            && at.elapsed() < CACHE_TTL
        {
            return Ok((id, key));
        }
        let (id, key) = self.handle.block_on(self.read_or_make(tag))?;
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (_, _, at)| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        let _ = cache.insert(tag, (id, key, Instant::now()));
        Ok((id, key))
    }
}

impl Keys {
    fn open(&self, id: KeyId, sealed: &[u8]) -> Result<DataKey> {
        let k = stele_seal::open_opening(
            &self.key()?.data_key_key(),
            sealed,
            &data_key_ad(&self.origin, &id),
        )
        .ok_or_else(|| {
            Error::Sealed(format!(
                "the data key {id} in stele_seal_keys does not open with this sealing key"
            ))
        })?;
        k.try_into()
            .map_err(|_| Error::Sealed(format!("the data key {id} is not {DATA_KEY_LEN} bytes")))
    }

    async fn read<C: GenericClient>(
        &self,
        c: &C,
        tag: &[u8; 32],
    ) -> Result<Option<(KeyId, DataKey)>> {
        let Some(r) = row_opt(
            c,
            "read stele_seal_keys",
            "SELECT key_id, sealed_key FROM stele_seal_keys WHERE tag = $1",
            &[&&tag[..]],
        )
        .await?
        else {
            return Ok(None);
        };
        let id = key_id(r.get(0))?;
        Ok(Some((id, self.open(id, r.get(1))?)))
    }

    // The subject's key, made with its wraps to every auditor in one
    // transaction (under a share lock of the config row, which adding an
    // auditor and forgetting take exclusively: a key is never missing an
    // auditor's wrap, and no wrap is made for a key being forgotten).
    async fn read_or_make(&self, tag: [u8; 32]) -> Result<(KeyId, DataKey)> {
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| db_err("connect", chain(&e)))?;
        if let Some(k) = self.read(&client, &tag).await? {
            return Ok(k);
        }
        let tx = client
            .transaction()
            .await
            .map_err(|e| db_err("begin", chain(&e)))?;
        lock_config(&tx, false).await?;
        let id = KeyId(random()?);
        let key: DataKey = random()?;
        let nonce = crate::sealed::fresh_nonce()?;
        let sealed = stele_seal::seal_opening(
            &self.key()?.data_key_key(),
            &nonce,
            &key,
            &data_key_ad(&self.origin, &id),
        );
        let what = "insert into stele_seal_keys";
        let stmt = prepared(
            &tx,
            what,
            "INSERT INTO stele_seal_keys (tag, key_id, sealed_key) VALUES ($1, $2, $3) ON CONFLICT (tag) DO NOTHING",
        )
        .await?;
        let n = tx
            .execute(&stmt, &[&&tag[..], &&id.0[..], &sealed])
            .await
            .map_err(|e| db_err(what, chain(&e)))?;
        if n == 0 {
            // Another front-end made it first: theirs is the key.
            drop(tx);
            return self
                .read(&client, &tag)
                .await?
                .ok_or_else(|| db_err(what, "the subject's key vanished"));
        }
        let auditors: Vec<String> = rows(
            &tx,
            "read stele_seal_auditors",
            "SELECT recipient FROM stele_seal_auditors ORDER BY n",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        for a in &auditors {
            let w = crate::sealed::wrap(a, &key)?;
            exec1(
                &tx,
                "insert into stele_seal_wraps",
                "INSERT INTO stele_seal_wraps (key_id, recipient, wrap) VALUES ($1, $2, $3)",
                &[&&id.0[..], a, &w],
            )
            .await?;
        }
        tx.commit().await.map_err(|e| db_err("commit", chain(&e)))?;
        Ok((id, key))
    }
}

// Locks the config row: `FOR SHARE` while a key and its wraps are made,
// `FOR UPDATE` while an auditor is added or a subject forgotten (they
// exclude each other: no key misses an auditor's wrap, and no wrap is made
// for a key being forgotten).
async fn lock_config<C: GenericClient>(tx: &C, exclusive: bool) -> Result<()> {
    let sql = if exclusive {
        "SELECT id FROM stele_seal_config WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT id FROM stele_seal_config WHERE id = 1 FOR SHARE"
    };
    let _ = row_opt(tx, "lock stele_seal_config", sql, &[]).await?;
    Ok(())
}

/// What [`Cluster::forget`] did.
#[derive(Debug)]
pub struct Forgotten {
    /// The forgotten key ID (now on the forget list).
    pub key: KeyId,
    /// The `stele.forget` event's receipt.
    pub receipt: Receipt,
    /// Whether `stele_seal_keys` and `stele_seal_wraps` were rewritten into
    /// new files (`VACUUM FULL`), so the deleted rows left the live tables;
    /// else why not (say, the role does not own the tables: PostgreSQL then
    /// skips them with a warning only). The key and wraps are deleted
    /// either way.
    pub rewritten: std::result::Result<(), String>,
}

// `VACUUM FULL` of `tables`, checked: each must have a new file node after
// it (PostgreSQL skips a table the role does not own without an error).
async fn rewrite<C: GenericClient>(c: &C, tables: &[&str]) -> std::result::Result<(), String> {
    let before = file_nodes(c, tables).await?;
    c.batch_execute(&format!("VACUUM FULL {}", tables.join(", ")))
        .await
        .map_err(|e| format!("VACUUM FULL {}: {e}", tables.join(", ")))?;
    let after = file_nodes(c, tables).await?;
    match tables
        .iter()
        .zip(before.iter().zip(&after))
        .find(|(_, (b, a))| b == a)
    {
        Some((t, _)) => Err(format!(
            "VACUUM FULL did not rewrite {t} (does this role own it?)"
        )),
        None => Ok(()),
    }
}

// The tables' file nodes (`pg_class.relfilenode`: new after a rewrite).
async fn file_nodes<C: GenericClient>(
    c: &C,
    tables: &[&str],
) -> std::result::Result<Vec<u32>, String> {
    let mut out = Vec::with_capacity(tables.len());
    for t in tables {
        let r = c
            .query_one(
                "SELECT relfilenode FROM pg_class WHERE oid = to_regclass($1)",
                &[t],
            )
            .await
            .map_err(|e| format!("read pg_class of {t}: {e}"))?;
        out.push(r.get::<_, u32>(0));
    }
    Ok(out)
}

fn key_id(b: &[u8]) -> Result<KeyId> {
    Ok(KeyId(b.try_into().map_err(|_| {
        db_err(
            "stele_seal_keys",
            format!("a key ID is not {KEY_ID_LEN} bytes"),
        )
    })?))
}

/// The sealing side of a front-end on the log in `pool`: `None` if the log
/// was made without sealing tables (then `key` is not needed, and events
/// that would be sealed are refused). Without `key` the front-end refuses
/// every event that would be sealed (it never stores one in the clear).
pub(super) async fn open(
    pool: &Pool,
    origin: &str,
    key: Option<Arc<SealKey>>,
) -> Result<Option<Arc<ClusterSeal>>> {
    let client = pool.get().await.map_err(|e| db_err("connect", chain(&e)))?;
    let exists: bool = client
        .query_one("SELECT to_regclass('stele_seal_config') IS NOT NULL", &[])
        .await
        .map_err(|e| db_err("look for stele_seal_config", chain(&e)))?
        .get(0);
    if !exists {
        // A sealing key (say, the one beside the signing key) is of no use
        // here: events that would be sealed are refused (refuse_sealed).
        return Ok(None);
    }
    let r = row_opt(
        &client,
        "read stele_seal_config",
        "SELECT rules, key_check, index_key FROM stele_seal_config WHERE id = 1",
        &[],
    )
    .await?
    .ok_or_else(|| db_err("read stele_seal_config", "no row"))?;
    let cfg: SealConfig =
        serde_json::from_str(r.get(0)).map_err(|e| db_err("stele_seal_config.rules", chain(&e)))?;
    if let Some(k) = &key
        && r.get::<_, &[u8]>(1) != k.check()
    {
        return Err(Error::Config {
            option: "--seal-key",
            why: "the file is not this log's sealing key".into(),
        });
    }
    let index = match &key {
        Some(k) => Some(
            stele_seal::open_opening(&k.data_key_key(), r.get(2), &index_key_ad(origin))
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| db_err("stele_seal_config.index_key", "does not open"))?,
        ),
        None => None,
    };
    let keys = Arc::new(Keys {
        pool: pool.clone(),
        origin: origin.to_string(),
        key,
        index,
        handle: tokio::runtime::Handle::current(),
        cache: Mutex::new(HashMap::new()),
    });
    let sealer = Sealer::with_source(origin, &cfg, keys.clone())?;
    Ok(Some(Arc::new(ClusterSeal { sealer, keys })))
}

impl ClusterSeal {
    /// Drops the data keys this front-end has kept longer than a minute
    /// (run by the integrator's round).
    pub(super) fn sweep(&self) {
        self.keys.sweep();
    }

    /// Whether this front-end has the sealing key.
    pub(super) fn can_seal(&self) -> bool {
        self.keys.key.is_some()
    }

    /// The digest a keyed append is stored under in `stele_requests`:
    /// HMAC-SHA-256 of the body's SHA-256 under a key derived from the
    /// sealing key (every front-end has it, so a retry on another one
    /// matches). A plain hash of a body would let whoever reads the
    /// database confirm a guess of a value sealed in it, also after a
    /// forget. Needs the sealing key.
    pub(super) fn request_digest(&self, body: &[u8; 32]) -> Result<[u8; 32]> {
        let k = self.keys.key()?.derive(b"stele cluster request digest v1");
        Ok(hmac_sha256(&k, body))
    }

    /// Seals user events as a file log does (FORMAT 13.9) and makes their
    /// canonical text; runs on a blocking thread (keys may be read or made
    /// in PostgreSQL). Errors are the file log's, for the same input.
    pub(super) fn seal_events(&self, events: &[Value]) -> Result<(Vec<String>, Vec<Vec<Pending>>)> {
        let mut texts = Vec::with_capacity(events.len());
        let mut openings = Vec::with_capacity(events.len());
        for (index, ev) in events.iter().enumerate() {
            let bad = |why| Error::BadEvent { index, why };
            if !self.sealer.touches(ev) {
                texts.push(crate::log::canonical_event(ev).map_err(bad)?);
                openings.push(Vec::new());
                continue;
            }
            if !self.can_seal() {
                return Err(no_key());
            }
            let mut text = String::new();
            let p = self.sealer.seal_event_text(ev, &mut text).map_err(bad)?;
            texts.push(text);
            openings.push(p);
        }
        Ok((texts, openings))
    }

    /// Whether `sent` is the event sealed into entry `index`, whose event
    /// is `stored` (both without the writer member): as
    /// [`Sealer::compare_event`] decides it for a file log, with this
    /// log's forgotten keys, records and data keys (a key is read, never
    /// made).
    pub(super) async fn compare(
        &self,
        inner: &Inner,
        index: u64,
        stored: &Value,
        sent: &Value,
    ) -> Result<Compared> {
        let sealed = match self.sealer.compare_shape(stored, sent) {
            Shape::Decided(c) => return Ok(c),
            Shape::Sealed(s) => s,
        };
        let client = inner.client().await?;
        let ids: HashSet<KeyId> = sealed.places.iter().map(|(_, ph)| ph.key).collect();
        if !self.forgotten_among(&client, &ids).await?.is_empty() {
            return Ok(Compared::Unreadable);
        }
        let records: Vec<u8> = row_opt(
            &client,
            "read stele_seal_records",
            "SELECT lines FROM stele_seal_records WHERE entry = $1",
            &[&(index as i64)],
        )
        .await?
        .map(|r| r.get(0))
        .unwrap_or_default();
        let tag = self.keys.tag(sealed.subject.as_bytes())?;
        let key = self.keys.read(&client, &tag).await?;
        Ok(sealed.compare(
            &self.keys.origin,
            index,
            records.split_inclusive(|b| *b == b'\n'),
            key,
        ))
    }

    /// The key IDs among `ids` that are forgotten (read under the
    /// sequencing lock); their cached keys are evicted.
    pub(super) async fn forgotten_among<C: GenericClient>(
        &self,
        c: &C,
        ids: &HashSet<KeyId>,
    ) -> Result<HashSet<KeyId>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let asked: Vec<&[u8]> = ids.iter().map(|k| &k.0[..]).collect();
        let found = rows(
            c,
            "read stele_seal_forgotten",
            "SELECT key_id FROM stele_seal_forgotten WHERE key_id = ANY($1)",
            &[&asked],
        )
        .await?
        .iter()
        .map(|r| key_id(r.get(0)))
        .collect::<Result<HashSet<KeyId>>>()?;
        if !found.is_empty() {
            self.keys
                .cache
                .lock()
                .unwrap()
                .retain(|_, (id, _, _)| !found.contains(id));
        }
        Ok(found)
    }
}

/// Stores the opening records of sequenced entries (`entry`, record lines)
/// in the sequencing transaction: a receipt means the entry and its
/// openings are durable.
pub(super) async fn insert_records<C: GenericClient>(
    c: &C,
    records: &[(i64, Vec<u8>)],
) -> Result<()> {
    let what = "insert into stele_seal_records";
    let stmt = prepared(
        c,
        what,
        "INSERT INTO stele_seal_records (entry, lines) SELECT * FROM unnest($1::int8[], $2::bytea[])",
    )
    .await?;
    let entries: Vec<i64> = records.iter().map(|r| r.0).collect();
    let lines: Vec<&[u8]> = records.iter().map(|r| &r.1[..]).collect();
    let _ = c
        .execute(&stmt, &[&entries, &lines])
        .await
        .map_err(|e| db_err(what, chain(&e)))?;
    Ok(())
}

/// The entries an export holds, which say the keys its head names.
pub(super) enum Holds<'a> {
    /// Every entry: every key.
    Log,
    /// The entries `from..to`.
    Range(u64, u64),
    /// These entries.
    Entries(&'a [u64]),
}

// Entries whose records are read in one query to find the keys they use;
// wraps read in one query while writing a head.
const RECORDS_PAGE: u64 = 4096;
const WRAPS_PAGE: usize = 1024;

/// What an export carries of the sealed fields (as
/// [`crate::sealed::ExportRecords`] for a file log, the same bytes):
/// `sealed-key` records of the revealed recipients' wraps and `forgotten`
/// records after the header, then each entry's records after it (openings
/// only under a revealed key; `redacted` always). A range or a selection
/// names only the keys its entries' records use, as a file log's does (not
/// every subject's data key, nor how many subjects the log has or forgot).
#[derive(Debug)]
pub(super) struct ExportSeal {
    reveal: Vec<String>,
    // The key IDs the exported entries use, sorted; None: every key.
    used: Option<Vec<KeyId>>,
    // The forgotten key IDs among them, sorted.
    forgotten: Vec<KeyId>,
    reveal_keys: HashSet<String>,
    records: BTreeMap<u64, Vec<u8>>,
}

impl ExportSeal {
    /// `None` if the log has no sealing tables (then `reveal` must be empty).
    pub(super) async fn open(
        inner: &Inner,
        reveal: &[String],
        holds: Holds<'_>,
    ) -> Result<Option<Self>> {
        if inner.seal.is_none() {
            if let Some(r) = reveal.first() {
                return Err(Error::Sealed(format!(
                    "{} is not an auditor of this log (it was created without sealing)",
                    stele_seal::shown_recipient(r)
                )));
            }
            return Ok(None);
        }
        let client = inner.client().await?;
        let known = auditors(&client).await?;
        for r in reveal {
            if !known.contains(r) {
                return Err(Error::Sealed(format!(
                    "{} is not an auditor of this log (add it first: stele auditor add --db URL RECIPIENT)",
                    stele_seal::shown_recipient(r)
                )));
            }
        }
        let mut used = std::collections::BTreeSet::new();
        let used = match holds {
            Holds::Log => None,
            Holds::Range(from, to) => {
                let mut at = from;
                while at < to {
                    let end = to.min(at.saturating_add(RECORDS_PAGE));
                    for lines in read_records(&client, at, end).await?.values() {
                        keys_used(lines, &mut used);
                    }
                    at = end;
                }
                Some(used.into_iter().collect::<Vec<_>>())
            }
            Holds::Entries(list) => {
                for part in list.chunks(RECORDS_PAGE as usize) {
                    let ids: Vec<i64> = part.iter().map(|&i| i as i64).collect();
                    for r in rows(
                        &client,
                        "read stele_seal_records",
                        "SELECT lines FROM stele_seal_records WHERE entry = ANY($1)",
                        &[&ids],
                    )
                    .await?
                    {
                        keys_used(r.get(0), &mut used);
                    }
                }
                Some(used.into_iter().collect())
            }
        };
        let forgotten = forgotten(&client)
            .await?
            .into_iter()
            .filter(|k| used.as_ref().is_none_or(|u| u.binary_search(k).is_ok()))
            .collect();
        Ok(Some(Self {
            reveal: reveal.to_vec(),
            used,
            forgotten,
            reveal_keys: HashSet::new(),
            records: BTreeMap::new(),
        }))
    }

    /// Puts the lines that follow the export's header into `chunk`, handing
    /// it to `sink` whenever it passes 1 MiB: the wraps are read
    /// [`WRAPS_PAGE`] at a time (held whole, they cost ~1.3 KB a subject).
    pub(super) async fn write_head<F, Fut>(
        &mut self,
        inner: &Inner,
        chunk: &mut Vec<u8>,
        sink: &mut F,
    ) -> Result<()>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        const WHAT: &str = "read stele_seal_wraps";
        let client = inner.client().await?;
        // Whole log: pages after the last (key ID, recipient) written, in
        // byte order as a file log names its wraps (COLLATE "C");
        // otherwise the used keys a page at a time (both in that order).
        let mut after: (Vec<u8>, String) = (Vec::new(), String::new());
        let mut next = 0;
        loop {
            let page = match &self.used {
                None => {
                    rows(
                        &client,
                        WHAT,
                        "SELECT key_id, recipient, wrap FROM stele_seal_wraps WHERE recipient = ANY($1) AND (key_id, recipient COLLATE \"C\") > ($2, $3) ORDER BY key_id, recipient COLLATE \"C\" LIMIT $4",
                        &[&self.reveal, &after.0, &after.1, &(WRAPS_PAGE as i64)],
                    )
                    .await?
                }
                Some(used) => {
                    let part = &used[next..used.len().min(next + WRAPS_PAGE)];
                    if part.is_empty() {
                        break;
                    }
                    next += part.len();
                    let ids: Vec<Vec<u8>> = part.iter().map(|k| k.0.to_vec()).collect();
                    rows(
                        &client,
                        WHAT,
                        "SELECT key_id, recipient, wrap FROM stele_seal_wraps WHERE recipient = ANY($1) AND key_id = ANY($2) ORDER BY key_id, recipient COLLATE \"C\"",
                        &[&self.reveal, &ids],
                    )
                    .await?
                }
            };
            for r in &page {
                let key = key_id(r.get(0))?;
                if self.forgotten.binary_search(&key).is_ok() {
                    continue;
                }
                let wrap: Vec<u8> = r.get(2);
                chunk.extend_from_slice(Record::SealedKey { key, wrap }.to_line().as_bytes());
                chunk.push(b'\n');
                let _ = self.reveal_keys.insert(key.to_hex());
            }
            if self.used.is_none() {
                match page.last() {
                    Some(r) if page.len() == WRAPS_PAGE => after = (r.get(0), r.get(1)),
                    _ => break,
                }
            }
            if chunk.len() >= 1 << 20 {
                sink(std::mem::take(chunk)).await?;
            }
        }
        for k in &self.forgotten {
            chunk.extend_from_slice(Record::Forgotten(*k).to_line().as_bytes());
            chunk.push(b'\n');
        }
        Ok(())
    }

    /// Reads the records of entries `from..to` (before they are written).
    pub(super) async fn fetch(&mut self, inner: &Inner, from: u64, to: u64) -> Result<()> {
        let client = inner.client().await?;
        self.records = read_records(&client, from, to).await?;
        Ok(())
    }

    /// Writes entry `index`'s records that this export carries.
    pub(super) fn write_for(&self, index: u64, out: &mut Vec<u8>) {
        let Some(lines) = self.records.get(&index) else {
            return;
        };
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Some((kid, rec)) = crate::sealed::split_record(line)
                && (rec.starts_with(b"redacted ") || self.reveal_keys.contains(kid))
            {
                out.extend_from_slice(rec);
                out.push(b'\n');
            }
        }
    }
}

async fn read_records<C: GenericClient>(
    c: &C,
    from: u64,
    to: u64,
) -> Result<BTreeMap<u64, Vec<u8>>> {
    Ok(rows(
        c,
        "read stele_seal_records",
        "SELECT entry, lines FROM stele_seal_records WHERE entry >= $1 AND entry < $2 ORDER BY entry",
        &[&(from as i64), &(to as i64)],
    )
    .await?
    .iter()
    .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, Vec<u8>>(1)))
    .collect())
}

// Adds the key IDs that an entry's record lines (each "<key ID hex> <record>") name.
fn keys_used(lines: &[u8], used: &mut std::collections::BTreeSet<KeyId>) {
    for line in lines.split(|&b| b == b'\n') {
        if let Some(k) = crate::sealed::split_record(line).and_then(|(kid, _)| KeyId::from_hex(kid))
        {
            let _ = used.insert(k);
        }
    }
}

async fn auditors<C: GenericClient>(c: &C) -> Result<Vec<String>> {
    Ok(rows(
        c,
        "read stele_seal_auditors",
        "SELECT recipient FROM stele_seal_auditors ORDER BY n",
        &[],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

// Sorted (the export's order of `forgotten` records).
async fn forgotten<C: GenericClient>(c: &C) -> Result<std::collections::BTreeSet<KeyId>> {
    rows(
        c,
        "read stele_seal_forgotten",
        "SELECT key_id FROM stele_seal_forgotten",
        &[],
    )
    .await?
    .iter()
    .map(|r| key_id(r.get(0)))
    .collect()
}

fn no_sealing() -> Error {
    Error::Sealed("this log was created without sealing (no table stele_seal_config)".into())
}

impl Cluster {
    fn seal(&self) -> Result<&ClusterSeal> {
        self.inner.seal.as_deref().ok_or_else(no_sealing)
    }

    /// The log's auditors (age1… recipients), in the order they were added.
    pub async fn auditors(&self) -> Result<Vec<String>> {
        let _ = self.seal()?;
        let client = self.inner.client().await?;
        auditors(&client).await
    }

    /// Adds an auditor: wraps every data key for it (and future keys are
    /// wrapped as they are made). Returns how many keys were wrapped; adding
    /// one twice is a no-op. Needs the sealing key. The addition is logged
    /// first, as a `stele.auditor` event naming the recipient and `by`
    /// (FORMAT 13.7).
    pub async fn add_auditor(&self, recipient: &str, by: &str) -> Result<usize> {
        let seal = self.seal()?;
        let _ = stele_seal::parse_recipient(recipient).map_err(|e| {
            Error::Sealed(format!("{}: {e}", stele_seal::shown_recipient(recipient)))
        })?;
        let _ = seal.keys.key()?;
        if self.auditors().await?.iter().any(|a| a == recipient) {
            return Ok(0);
        }
        let _ = self
            .append_reserved(crate::sealed::auditor_event("add", recipient, by))
            .await?;
        let mut client = self.inner.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| db_err("begin", chain(&e)))?;
        lock_config(&tx, true).await?;
        let what = "insert into stele_seal_auditors";
        let stmt = prepared(
            &tx,
            what,
            "INSERT INTO stele_seal_auditors (recipient) VALUES ($1) ON CONFLICT (recipient) DO NOTHING",
        )
        .await?;
        if tx
            .execute(&stmt, &[&recipient])
            .await
            .map_err(|e| db_err(what, chain(&e)))?
            == 0
        {
            return Ok(0);
        }
        let keys = rows(
            &tx,
            "read stele_seal_keys",
            "SELECT key_id, sealed_key FROM stele_seal_keys ORDER BY key_id",
            &[],
        )
        .await?;
        for r in &keys {
            let id = key_id(r.get(0))?;
            let key = seal.keys.open(id, r.get(1))?;
            let w = crate::sealed::wrap(recipient, &key)?;
            exec1(
                &tx,
                "insert into stele_seal_wraps",
                "INSERT INTO stele_seal_wraps (key_id, recipient, wrap) VALUES ($1, $2, $3)",
                &[&&id.0[..], &recipient, &w],
            )
            .await?;
        }
        tx.commit().await.map_err(|e| db_err("commit", chain(&e)))?;
        Ok(keys.len())
    }

    /// Removes an auditor: in one transaction it leaves the list and every
    /// wrap for it is deleted (then the wraps table is rewritten, best
    /// effort, as a forget does). Returns how many wraps were deleted. The
    /// removal of a listed auditor is logged first (`stele.auditor`).
    pub async fn remove_auditor(&self, recipient: &str, by: &str) -> Result<usize> {
        let _ = self.seal()?;
        if self.auditors().await?.iter().any(|a| a == recipient) {
            let _ = self
                .append_reserved(crate::sealed::auditor_event("remove", recipient, by))
                .await?;
        }
        let mut client = self.inner.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| db_err("begin", chain(&e)))?;
        lock_config(&tx, true).await?;
        let what = "delete from stele_seal_auditors";
        let stmt = prepared(
            &tx,
            what,
            "DELETE FROM stele_seal_auditors WHERE recipient = $1",
        )
        .await?;
        let listed = tx
            .execute(&stmt, &[&recipient])
            .await
            .map_err(|e| db_err(what, chain(&e)))?;
        let what = "delete from stele_seal_wraps";
        let stmt = prepared(
            &tx,
            what,
            "DELETE FROM stele_seal_wraps WHERE recipient = $1",
        )
        .await?;
        let n = tx
            .execute(&stmt, &[&recipient])
            .await
            .map_err(|e| db_err(what, chain(&e)))?;
        if listed == 0 && n == 0 {
            return Err(Error::Sealed(format!(
                "{} is not an auditor of this log",
                stele_seal::shown_recipient(recipient)
            )));
        }
        tx.commit().await.map_err(|e| db_err("commit", chain(&e)))?;
        let _ = rewrite(&client, &["stele_seal_wraps"]).await;
        Ok(n as usize)
    }

    /// Forgets a data subject (FORMAT 13.4): a `stele.forget` event naming
    /// the key ID and `by` is appended; then, in one transaction, its key ID
    /// goes on the forget list and its data key and every wrap of it are
    /// deleted, and the two key tables are rewritten (`VACUUM FULL`) so the
    /// deleted rows leave the live table files; whether that rewrite
    /// happened is in [`Forgotten::rewritten`] (the forget itself is done
    /// either way). What PostgreSQL may still hold (WAL, backups, replicas)
    /// is in writer/README.md. The subject's value appears nowhere, not
    /// even in errors.
    pub async fn forget(&self, subject: &Value, by: &str) -> Result<Forgotten> {
        let text = canonical::to_canonical(subject).map_err(Error::Sealed)?;
        self.forget_text(text.as_bytes(), by).await
    }

    /// Forgets the data key of the events that have no value at the
    /// subject pointer (they share one), as [`Cluster::forget`] does a
    /// subject's.
    pub async fn forget_subjectless(&self, by: &str) -> Result<Forgotten> {
        self.forget_text(b"", by).await
    }

    // `text`: the subject's canonical JSON, empty for no subject.
    async fn forget_text(&self, text: &[u8], by: &str) -> Result<Forgotten> {
        let seal = self.seal()?;
        let tag = seal.keys.tag(text)?;
        let none = || {
            Error::Sealed("no data key for that subject (never seen, or already forgotten)".into())
        };
        let mut client = self.inner.client().await?;
        // Logged first (as a file log does): an append that fails destroys
        // nothing, and the act never happens unlogged.
        let r = row_opt(
            &client,
            "read stele_seal_keys",
            "SELECT key_id FROM stele_seal_keys WHERE tag = $1",
            &[&&tag[..]],
        )
        .await?
        .ok_or_else(none)?;
        let id = key_id(r.get(0))?;
        let receipt = self
            .append_reserved(serde_json::json!({
                "type": "stele.forget",
                "key": id.to_hex(),
                "by": by,
            }))
            .await?;
        let logged = |e: Error| {
            Error::Sealed(format!(
                "the forget of key {id} is logged (entry {}), but destroying the key failed: {e}; run forget again to finish",
                receipt.seq
            ))
        };
        let tx = client
            .transaction()
            .await
            .map_err(|e| logged(db_err("begin", chain(&e))))?;
        lock_config(&tx, true).await.map_err(logged)?;
        let r = row_opt(
            &tx,
            "read stele_seal_keys",
            "DELETE FROM stele_seal_keys WHERE tag = $1 AND key_id = $2 RETURNING key_id",
            &[&&tag[..], &&id.0[..]],
        )
        .await
        .map_err(logged)?
        .ok_or_else(|| logged(none()))?;
        let _ = key_id(r.get(0)).map_err(logged)?;
        exec1(
            &tx,
            "insert into stele_seal_forgotten",
            "INSERT INTO stele_seal_forgotten (key_id) VALUES ($1)",
            &[&&id.0[..]],
        )
        .await?;
        let what = "delete from stele_seal_wraps";
        let stmt = prepared(&tx, what, "DELETE FROM stele_seal_wraps WHERE key_id = $1").await?;
        let _ = tx
            .execute(&stmt, &[&&id.0[..]])
            .await
            .map_err(|e| db_err(what, chain(&e)))?;
        // The kept idempotency records' body digests are keyed with material
        // a forget does not destroy: with them, a retry (or whoever holds the
        // database and the sealing key) could still confirm a guess of a
        // forgotten value. The digests of the requests that sealed a value
        // under this key (a record of one of their entries names it) are
        // voided: a retry under such a key is then refused whatever its body
        // (Keyed::Unreadable; the file log's answer, crate::serve
        // key_unreadable). The other requests held no value under this key:
        // their retries are still compared. Every request sequenced before
        // the sequencing row's lock is seen here, and every one after it
        // sees the key forgotten (sealed again: STALE), so none sealed under
        // the key keeps its digest. The scan of the records runs first
        // without the lock (appends on every front-end go on), then under it
        // only for the requests sequenced since (from `next` as read before
        // the first scan; index stele_requests_first).
        let what = "void stele_requests digests";
        let stmt = prepared(
            &tx,
            what,
            "UPDATE stele_requests r SET digest = $1 WHERE r.first >= $3 AND EXISTS (\
             SELECT 1 FROM stele_seal_records s \
             WHERE s.entry >= r.first AND s.entry < r.first + octet_length(r.leaves) / 32 \
             AND position($2::bytea IN '\\x0a'::bytea || s.lines) > 0)",
        )
        .await
        .map_err(logged)?;
        // A record line starts with the key ID in hex (crate::sealed).
        let line_start = format!("\n{}", id.to_hex()).into_bytes();
        let before: i64 = row_opt(
            &tx,
            "read stele_next",
            "SELECT next FROM stele_next WHERE id = 1",
            &[],
        )
        .await
        .map_err(logged)?
        .map_or(0, |r| r.get(0));
        let void = |from: i64| {
            let (tx, stmt, line_start) = (&tx, &stmt, &line_start);
            async move {
                tx.execute(stmt, &[&&UNREADABLE_BODY[..], line_start, &from])
                    .await
                    .map_err(|e| logged(db_err(what, chain(&e))))
            }
        };
        let _ = void(0).await?;
        let _ = row_opt(
            &tx,
            "lock stele_next",
            "SELECT next FROM stele_next WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(logged)?;
        let _ = void(before).await?;
        tx.commit()
            .await
            .map_err(|e| logged(db_err("commit", chain(&e))))?;
        seal.keys
            .cache
            .lock()
            .unwrap()
            .retain(|_, (k, _, _)| *k != id);
        let r = receipt;
        let rewritten = rewrite(&client, &["stele_seal_keys", "stele_seal_wraps"]).await;
        Ok(Forgotten {
            key: id,
            receipt: r,
            rewritten,
        })
    }

    /// Appends a `stele.redact` event, then deletes the opening of
    /// `pointer` in entry `entry` (exports then carry a `redacted` record).
    pub async fn redact(&self, entry: u64, pointer: &str, by: &str) -> Result<Receipt> {
        let _ = self.seal()?;
        let size = self.sequenced().await?;
        if entry >= size {
            return Err(Error::OutOfRange(format!(
                "entry {entry} is beyond the log's {size} entries"
            )));
        }
        let none = || {
            Error::Sealed(format!(
                "entry {entry} has no opening at {}",
                canonical::quote(pointer)
            ))
        };
        let mut client = self.inner.client().await?;
        // Checked, then logged, then deleted (as a file log does): never a
        // deletion without its event.
        let r = row_opt(
            &client,
            "read stele_seal_records",
            "SELECT lines FROM stele_seal_records WHERE entry = $1",
            &[&(entry as i64)],
        )
        .await?
        .ok_or_else(none)?;
        let _ = crate::sealed::redacted_records(r.get(0), entry, pointer)?;
        let receipt = self
            .append_reserved(serde_json::json!({
                "type": "stele.redact",
                "entry": entry,
                "pointer": pointer,
                "by": by,
            }))
            .await?;
        let logged = |e: Error| {
            Error::Sealed(format!(
                "the redaction is logged (entry {}), but deleting the opening failed: {e}; run redact again to finish",
                receipt.seq
            ))
        };
        let tx = client
            .transaction()
            .await
            .map_err(|e| logged(db_err("begin", chain(&e))))?;
        let r = row_opt(
            &tx,
            "read stele_seal_records",
            "SELECT lines FROM stele_seal_records WHERE entry = $1 FOR UPDATE",
            &[&(entry as i64)],
        )
        .await
        .map_err(logged)?
        .ok_or_else(|| logged(none()))?;
        let lines = crate::sealed::redacted_records(r.get(0), entry, pointer).map_err(logged)?;
        exec1(
            &tx,
            "update stele_seal_records",
            "UPDATE stele_seal_records SET lines = $2 WHERE entry = $1",
            &[&(entry as i64), &lines],
        )
        .await
        .map_err(logged)?;
        // The digest of the request that wrote the entry is voided, as a
        // forget voids those of its key's requests (see there): kept, a
        // retry under its key would still confirm a guess of the redacted
        // value.
        let what = "void a stele_requests digest";
        let stmt = prepared(
            &tx,
            what,
            "UPDATE stele_requests SET digest = $1 \
             WHERE first <= $2 AND first + octet_length(leaves) / 32 > $2",
        )
        .await
        .map_err(logged)?;
        let _ = tx
            .execute(&stmt, &[&&UNREADABLE_BODY[..], &(entry as i64)])
            .await
            .map_err(|e| logged(db_err(what, chain(&e))))?;
        tx.commit()
            .await
            .map_err(|e| logged(db_err("commit", chain(&e))))?;
        let r = receipt;
        // The row's old version (with the opening) is a dead tuple until
        // VACUUM: a plain one (it does not block the sequencing inserts
        // into this table, as VACUUM FULL would) prunes it from the live
        // pages, best effort (writer/README.md: what PostgreSQL keeps).
        let _ = client.batch_execute("VACUUM stele_seal_records").await;
        Ok(r)
    }

    /// The body of `GET /v1/sealed?from=A&to=B` (the file log's format,
    /// crate::mirror::openings): auditors, the forget list, the wraps of
    /// the (not forgotten) key IDs the records of entries `[from, to)` use,
    /// then those records. Only ciphertext.
    pub async fn sealed_body(&self, from: u64, to: u64) -> Result<Vec<u8>> {
        use crate::mirror::openings::{FORMAT_LINE, MAX_BODY_BYTES, too_large};
        let mut out = format!("{FORMAT_LINE}\n").into_bytes();
        if self.inner.seal.is_none() {
            return Ok(out);
        }
        let client = self.inner.client().await?;
        for a in auditors(&client).await? {
            out.extend_from_slice(format!("auditor {a}\n").as_bytes());
        }
        let forgotten = forgotten(&client).await?;
        for k in &forgotten {
            out.extend_from_slice(format!("{}\n", Record::Forgotten(*k).to_line()).as_bytes());
        }
        let records = if from < to {
            // Built whole, as on a file log: at most MAX_BODY_BYTES.
            let bytes: i64 = row_opt(
                &client,
                "read stele_seal_records",
                "SELECT coalesce(sum(octet_length(lines)), 0)::int8 FROM stele_seal_records WHERE entry >= $1 AND entry < $2",
                &[&(from as i64), &(to as i64)],
            )
            .await?
            .map_or(0, |r| r.get(0));
            if bytes > MAX_BODY_BYTES as i64 {
                return Err(too_large(from, to));
            }
            read_records(&client, from, to).await?
        } else {
            BTreeMap::new()
        };
        let mut used: std::collections::BTreeSet<KeyId> = Default::default();
        for lines in records.values() {
            for line in lines.split(|&b| b == b'\n') {
                if let Some((kid, _)) = crate::sealed::split_record(line)
                    && let Some(k) = KeyId::from_hex(kid)
                    && !forgotten.contains(&k)
                {
                    let _ = used.insert(k);
                }
            }
        }
        let ids: Vec<&[u8]> = used.iter().map(|k| &k.0[..]).collect();
        for r in rows(
            &client,
            "read stele_seal_wraps",
            "SELECT key_id, recipient, wrap FROM stele_seal_wraps WHERE key_id = ANY($1) ORDER BY key_id, recipient",
            &[&ids],
        )
        .await?
        {
            let key = key_id(r.get(0))?;
            let recipient: String = r.get(1);
            let rec = Record::SealedKey { key, wrap: r.get(2) }.to_line();
            out.extend_from_slice(format!("wrap {recipient} {rec}\n").as_bytes());
            if out.len() > MAX_BODY_BYTES {
                return Err(too_large(from, to));
            }
        }
        for lines in records.values() {
            out.extend_from_slice(lines);
        }
        Ok(out)
    }

    /// The body of `GET /v1/sealed?from=N&to=N&wraps=…` (the file log's,
    /// crate::mirror::openings::wraps_body): auditors, the forget list,
    /// then the wraps for listed auditors of the key IDs after `after` (not
    /// forgotten), in key ID order, about `MAX_WRAPS_PAGE` of them (whole
    /// key IDs), then `more <key ID>` when there are others.
    pub async fn sealed_wraps_page(&self, after: Option<KeyId>) -> Result<Vec<u8>> {
        use crate::mirror::openings::{FORMAT_LINE, MAX_WRAPS_PAGE};
        let mut out = format!("{FORMAT_LINE}\n").into_bytes();
        if self.inner.seal.is_none() {
            return Ok(out);
        }
        let client = self.inner.client().await?;
        let listed = auditors(&client).await?;
        for a in &listed {
            out.extend_from_slice(format!("auditor {a}\n").as_bytes());
        }
        let forgotten = forgotten(&client).await?;
        for k in &forgotten {
            out.extend_from_slice(format!("{}\n", Record::Forgotten(*k).to_line()).as_bytes());
        }
        let after: Vec<u8> = after.map_or_else(Vec::new, |k| k.0.to_vec());
        // One row past the page: whether there are more, and the key ID
        // whose wraps may be cut (it goes whole to the next page).
        let mut got: Vec<(KeyId, String, Vec<u8>)> = Vec::new();
        for r in rows(
            &client,
            "read stele_seal_wraps",
            "SELECT key_id, recipient, wrap FROM stele_seal_wraps WHERE key_id > $1 AND recipient = ANY($2) ORDER BY key_id, recipient LIMIT $3",
            &[&after, &listed, &(MAX_WRAPS_PAGE as i64 + 1)],
        )
        .await?
        {
            got.push((key_id(r.get(0))?, r.get(1), r.get(2)));
        }
        let more = got.len() > MAX_WRAPS_PAGE;
        if more {
            let cut = got[MAX_WRAPS_PAGE].0;
            got.retain(|(k, _, _)| *k != cut);
            if got.is_empty() {
                return Err(db_err(
                    "read stele_seal_wraps",
                    format!("key {cut} has more than {MAX_WRAPS_PAGE} wraps"),
                ));
            }
        }
        for (key, recipient, wrap) in &got {
            if forgotten.contains(key) {
                continue;
            }
            let rec = Record::SealedKey {
                key: *key,
                wrap: wrap.clone(),
            }
            .to_line();
            out.extend_from_slice(format!("wrap {recipient} {rec}\n").as_bytes());
        }
        if more && let Some((k, _, _)) = got.last() {
            out.extend_from_slice(format!("more {k}\n").as_bytes());
        }
        Ok(out)
    }

    /// Whether the log has sealing tables (made by `stele init --db`).
    pub fn has_sealing(&self) -> bool {
        self.inner.seal.is_some()
    }

    /// Whether anything of sealed fields is in the log: sealing rules, a
    /// data key, an auditor, an opening or a forgotten key.
    pub async fn sealing_in_use(&self) -> Result<bool> {
        if self.inner.seal.is_none() {
            return Ok(false);
        }
        let client = self.inner.client().await?;
        let r = row_opt(
            &client,
            "read the sealing tables",
            "SELECT (SELECT rules::jsonb -> 'seal' <> '[]'::jsonb FROM stele_seal_config WHERE id = 1) \
             OR EXISTS (SELECT 1 FROM stele_seal_keys) OR EXISTS (SELECT 1 FROM stele_seal_auditors) \
             OR EXISTS (SELECT 1 FROM stele_seal_records) OR EXISTS (SELECT 1 FROM stele_seal_forgotten)",
            &[],
        )
        .await?
        .ok_or_else(|| db_err("read the sealing tables", "no row"))?;
        Ok(r.get::<_, Option<bool>>(0).unwrap_or(true))
    }
}

/// The `KeyId` of each opening in `p` (for the sequencer's forgotten check).
pub(super) fn key_ids<'a>(p: impl Iterator<Item = &'a Pending>) -> HashSet<KeyId> {
    p.map(Pending::key).collect()
}

/// What a log directory's sidecar (`DIR/sealed/`, crate::sealed) holds,
/// read for `stele migrate DIR postgres://…`: the subject index secret, the
/// data keys under their tags (keys already forgotten are left out), the
/// wraps, auditors, forget list and the opening records per entry. The
/// records are copied byte for byte (their associated data binds origin and
/// index, which a migration keeps).
pub struct Carried {
    secret: Option<[u8; 32]>,
    keys: Vec<([u8; 32], KeyId, DataKey)>,
    wraps: Vec<(KeyId, String, Vec<u8>)>,
    auditors: Vec<String>,
    forgotten: Vec<KeyId>,
    records: Vec<(u64, Vec<u8>)>,
}

impl std::fmt::Debug for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Carried")
            .field("keys", &self.keys.len())
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Carried {
    fn drop(&mut self) {
        // Best effort: no key left in freed memory.
        self.secret = None;
        for k in &mut self.keys {
            k.2 = [0; DATA_KEY_LEN];
        }
    }
}

fn side_err(what: &str, p: &Path, e: impl std::fmt::Display) -> Error {
    Error::Sealed(format!("{what} {}: {e}", p.display()))
}

impl Carried {
    /// The sidecar of the log in `dir`, if it has one; `size` is the log's
    /// size (records of entries beyond it were never acknowledged).
    pub fn read_dir(dir: &Path, size: u64) -> Result<Option<Self>> {
        let sc = dir.join(crate::sealed::SIDECAR);
        if std::fs::symlink_metadata(&sc).is_err() {
            return Ok(None);
        }
        crate::fs::check_private_dir(&sc).map_err(|e| side_err("open directory", &sc, e))?;
        let read = |p: &Path| -> Result<Option<Vec<u8>>> {
            match crate::fs::read_own(p) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(side_err("read", p, e)),
            }
        };
        let secret = match read(&sc.join("secret"))? {
            Some(b) => Some(
                b.try_into()
                    .map_err(|_| side_err("read", &sc.join("secret"), "not 32 bytes"))?,
            ),
            None => None,
        };
        let forgotten_set = crate::sealed::forgotten_ids(&sc)?;
        let mut forgotten: Vec<KeyId> = forgotten_set.iter().copied().collect();
        forgotten.sort();
        let mut keys = Vec::new();
        let kd = sc.join("keys");
        if let Ok(rd) = std::fs::read_dir(&kd) {
            let mut names: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect();
            names.sort();
            for name in names {
                let p = kd.join(&name);
                let tag: [u8; 32] =
                    hex32(&name).ok_or_else(|| side_err("read", &p, "not a key file name"))?;
                let b = read(&p)?.unwrap_or_default();
                if b.len() != KEY_ID_LEN + DATA_KEY_LEN {
                    return Err(side_err("read", &p, "not a data key file (48 bytes)"));
                }
                let id = KeyId(b[..KEY_ID_LEN].try_into().expect("16 bytes"));
                if forgotten_set.contains(&id) {
                    continue;
                }
                keys.push((tag, id, b[KEY_ID_LEN..].try_into().expect("32 bytes")));
            }
        }
        let mut wraps = Vec::new();
        for w in crate::sealed::wrap_files(&sc.join("wraps")) {
            if forgotten_set.contains(&w.key) {
                continue;
            }
            let b = read(&w.path)?.unwrap_or_default();
            wraps.push((w.key, w.recipient, b));
        }
        let mut records: Vec<(u64, Vec<u8>)> = Vec::new();
        if let Some(text) = read(&sc.join("records"))? {
            for line in text.split_inclusive(|&b| b == b'\n') {
                if line.last() != Some(&b'\n') {
                    break;
                }
                let i = crate::sealed::record_index(line).ok_or_else(|| {
                    side_err("read", &sc.join("records"), "a line is not a record")
                })?;
                if i >= size {
                    break;
                }
                match records.last_mut() {
                    Some((at, l)) if *at == i => l.extend_from_slice(line),
                    _ => records.push((i, line.to_vec())),
                }
            }
        }
        Ok(Some(Self {
            secret,
            keys,
            wraps,
            auditors: crate::sealed::auditors(dir)?,
            forgotten,
            records,
        }))
    }

    async fn insert<C: GenericClient>(&self, c: &C, origin: &str, key: &SealKey) -> Result<()> {
        for (tag, id, dk) in &self.keys {
            let sealed = stele_seal::seal_opening(
                &key.data_key_key(),
                &crate::sealed::fresh_nonce()?,
                dk,
                &data_key_ad(origin, id),
            );
            exec1(
                c,
                "insert into stele_seal_keys",
                "INSERT INTO stele_seal_keys (tag, key_id, sealed_key) VALUES ($1, $2, $3)",
                &[&&tag[..], &&id.0[..], &sealed],
            )
            .await?;
        }
        for (id, r, w) in &self.wraps {
            exec1(
                c,
                "insert into stele_seal_wraps",
                "INSERT INTO stele_seal_wraps (key_id, recipient, wrap) VALUES ($1, $2, $3)",
                &[&&id.0[..], r, w],
            )
            .await?;
        }
        for a in &self.auditors {
            exec1(
                c,
                "insert into stele_seal_auditors",
                "INSERT INTO stele_seal_auditors (recipient) VALUES ($1)",
                &[a],
            )
            .await?;
        }
        for id in &self.forgotten {
            exec1(
                c,
                "insert into stele_seal_forgotten",
                "INSERT INTO stele_seal_forgotten (key_id) VALUES ($1)",
                &[&&id.0[..]],
            )
            .await?;
        }
        for chunk in self.records.chunks(4096) {
            let rows: Vec<(i64, Vec<u8>)> =
                chunk.iter().map(|(i, l)| (*i as i64, l.clone())).collect();
            insert_records(c, &rows).await?;
        }
        Ok(())
    }
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Cluster {
    /// The sealing rules.
    pub async fn seal_config(&self) -> Result<SealConfig> {
        let _ = self.seal()?;
        let client = self.inner.client().await?;
        let r = row_opt(
            &client,
            "read stele_seal_config",
            "SELECT rules FROM stele_seal_config WHERE id = 1",
            &[],
        )
        .await?
        .ok_or_else(|| db_err("read stele_seal_config", "no row"))?;
        serde_json::from_str(r.get(0)).map_err(|e| db_err("stele_seal_config.rules", chain(&e)))
    }

    /// Writes the log's sealed-field state as a log directory's sidecar
    /// (`DIR/sealed/`, the layout of crate::sealed) for `stele migrate
    /// postgres://… DIR`: the subject index secret and data keys (opened
    /// with the sealing key), wraps, auditors, forget list, and the records
    /// of the first `size` entries. Returns the rules for `stele.json`.
    pub async fn write_sidecar(&self, dir: &Path, size: u64) -> Result<SealConfig> {
        use crate::fs::RealFs;
        use crate::sealed::write_secret_file;
        let seal = self.seal()?;
        let index = seal.keys.index.ok_or_else(no_key)?;
        let cfg = self.seal_config().await?;
        let sc = dir.join(crate::sealed::SIDECAR);
        for d in [sc.clone(), sc.join("keys"), sc.join("wraps")] {
            crate::fs::ensure_private_dir(&RealFs, &d)
                .map_err(|e| side_err("create directory", &d, e))?;
        }
        write_secret_file(&RealFs, &sc, "secret", &index)?;
        let client = self.inner.client().await?;
        for r in rows(
            &client,
            "read stele_seal_keys",
            "SELECT tag, key_id, sealed_key FROM stele_seal_keys ORDER BY tag",
            &[],
        )
        .await?
        {
            let id = key_id(r.get(1))?;
            let key = seal.keys.open(id, r.get(2))?;
            let mut b = Vec::with_capacity(KEY_ID_LEN + DATA_KEY_LEN);
            b.extend_from_slice(&id.0);
            b.extend_from_slice(&key);
            write_secret_file(
                &RealFs,
                &sc.join("keys"),
                &stele_core::note::hex(r.get(0)),
                &b,
            )?;
            b.fill(0);
        }
        for r in rows(
            &client,
            "read stele_seal_wraps",
            "SELECT key_id, recipient, wrap FROM stele_seal_wraps ORDER BY key_id, recipient",
            &[],
        )
        .await?
        {
            let id = key_id(r.get(0))?;
            let recipient: String = r.get(1);
            write_secret_file(
                &RealFs,
                &sc.join("wraps"),
                &format!("{id}.{recipient}.age"),
                r.get(2),
            )?;
        }
        let auditors: String = auditors(&client)
            .await?
            .iter()
            .map(|a| format!("{a}\n"))
            .collect();
        write_secret_file(&RealFs, &sc, "auditors", auditors.as_bytes())?;
        let forgotten: String = forgotten(&client)
            .await?
            .iter()
            .map(|k| format!("{k}\n"))
            .collect();
        write_secret_file(&RealFs, &sc, "forgotten", forgotten.as_bytes())?;
        // The records, a page of entries at a time.
        let mut out = Vec::new();
        let mut at = 0;
        while at < size {
            let to = (at + 65_536).min(size);
            for lines in read_records(&client, at, to).await?.into_values() {
                out.extend_from_slice(&lines);
            }
            at = to;
        }
        write_secret_file(&RealFs, &sc, "records", &out)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealing_key_file_round_trips_and_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("k.seal");
        let k = SealKey::generate().unwrap();
        k.save(&p).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(SealKey::load(&p).unwrap().check(), k.check());
        // Never overwritten.
        assert!(k.save(&p).is_err());
        // Others may not read it.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(SealKey::load(&p).is_err());
        // A file of another shape: the error does not quote it.
        let q = tmp.path().join("bad");
        crate::key::save_private(&crate::fs::RealFs, &q, "hunter2-secret").unwrap();
        let e = SealKey::load(&q).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(
            SealKey::beside(Path::new("/a/signing.key")),
            Path::new("/a/signing.key.seal")
        );
    }

    #[test]
    fn derived_keys_differ_and_data_keys_are_bound_to_their_id() {
        let k = SealKey([7; 32]);
        assert_ne!(k.check(), k.data_key_key());
        let id = KeyId([1; 16]);
        let sealed = stele_seal::seal_opening(
            &k.data_key_key(),
            &[0; 24],
            &[9; 32],
            &data_key_ad("o", &id),
        );
        assert!(
            stele_seal::open_opening(&k.data_key_key(), &sealed, &data_key_ad("o", &id)).is_some()
        );
        let other = KeyId([2; 16]);
        assert!(
            stele_seal::open_opening(&k.data_key_key(), &sealed, &data_key_ad("o", &other))
                .is_none()
        );
        assert!(
            stele_seal::open_opening(&k.data_key_key(), &sealed, &data_key_ad("p", &id)).is_none()
        );
    }
}
