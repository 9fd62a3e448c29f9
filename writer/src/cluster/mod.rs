//! Scale-out storage: many `stele serve` front-ends on one log kept in
//! PostgreSQL (sequencing and state) and S3-compatible object storage (hash
//! tiles, entry bundles, the published checkpoint). writer/README.md
//! ("PostgreSQL and object storage") describes the life of an entry across
//! the two stores and what each crash leaves.
//!
//! * **Sequencing** (any front-end, concurrently): one transaction locks the
//!   coordination row `stele_next` (`FOR UPDATE`), builds the entry lines
//!   with the next indexes, the chain's `prev` and a never-decreasing `ts`
//!   from that row, inserts them as one row of `stele_sequenced` keyed by the
//!   first index, advances the row and commits. A receipt (index and leaf
//!   hash) is returned only after the commit: the line is fixed then, so the
//!   receipt is true forever. Each front-end groups concurrent requests into
//!   one transaction (group commit).
//! * **Integration** (any front-end, one at a time): a transaction locks the
//!   row `stele_integrated` (`FOR UPDATE SKIP LOCKED`: a busy integrator is
//!   skipped, a crashed one's lock dies with its connection), reads the
//!   sequenced rows after the integrated size, writes the changed tiles and
//!   bundles with create-only puts (an object already there must hold the
//!   same bytes, else the step fails: two different trees for one size are
//!   refused), stores the new size and compact range, deletes the integrated
//!   rows, signs a checkpoint when one is due, and commits. The published
//!   `checkpoint` object is then moved forward by compare-and-swap, never
//!   back. Every step is deterministic from committed rows, so redoing it
//!   after a crash writes the same bytes.

mod anchor;
mod migrate;
pub mod sealed;
mod step;
pub mod tls;
mod witness;

pub use migrate::Imported;

use crate::error::{Error, Result};
use crate::log::{Clock, Receipt, WRITER_MEMBER, check_event};
use crate::view::{ConsistencyProof, InclusionProof, StoredCheckpoint};
use axum::body::Bytes;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt as _;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, UpdateVersion};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use stele_core::checkpoint::Checkpoint;
use stele_core::entry::{GENESIS_TYPE, RESERVED_PREFIX, Timestamp, ZERO_PREV, genesis_event};
use stele_core::hash::{Hash, leaf_hash};
use stele_core::merkle::CompactRange;
use stele_core::note::{SignerKey, VerifierKey};
use stele_core::tiles::{Tile, TileSet, parse_entry_bundle, tile_in_tree};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_postgres::{Row, Statement};

pub use sealed::SealKey;

/// The format name in `stele_config`.
pub const FORMAT: &str = "stele-cluster v1";

/// The name of the published checkpoint object (under the prefix).
pub const CHECKPOINT_OBJECT: &str = "checkpoint";

/// Most entries one integration step takes (then the next step runs).
pub const STEP_ENTRIES: u64 = 64 * 1024;

/// Most bytes of entry lines one sequencing transaction inserts.
const GROUP_BYTES: usize = 64 << 20;

/// Object reads or writes in flight at once (a step's writes, a proof's reads).
const PUTS_IN_FLIGHT: usize = 32;

const SCHEMA: &str = "
CREATE TABLE stele_config (
    id int PRIMARY KEY CHECK (id = 1),
    format text NOT NULL,
    origin text NOT NULL,
    verifier text NOT NULL,
    objects text NOT NULL
);
CREATE TABLE stele_next (
    id int PRIMARY KEY CHECK (id = 1),
    next bigint NOT NULL,
    prev bytea NOT NULL,
    last_ts bigint NOT NULL
);
CREATE TABLE stele_sequenced (
    first bigint PRIMARY KEY,
    n int NOT NULL,
    lines bytea NOT NULL
);
CREATE TABLE stele_integrated (
    id int PRIMARY KEY CHECK (id = 1),
    size bigint NOT NULL,
    compact bytea NOT NULL
);
CREATE TABLE stele_checkpoints (
    size bigint PRIMARY KEY,
    note text NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now()
);
";

// Idempotency keys of appends (any front-end's): the request's body hash
// and its receipts (`leaves`: the leaf hashes from entry `first` on),
// written in the transaction that sequences the request. Made on open too
// (logs created before the table existed).
const REQUESTS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stele_requests (
    token text NOT NULL,
    key text NOT NULL,
    digest bytea NOT NULL,
    first bigint NOT NULL,
    leaves bytea NOT NULL,
    PRIMARY KEY (token, key)
);
CREATE INDEX IF NOT EXISTS stele_requests_first ON stele_requests (first);
";

// The digest of a request that sealed a value since forgotten or redacted
// (set by forget and redact, cluster::sealed): its retries are refused
// whatever their body ([`Keyed::Unreadable`]). Migrated keys have
// migrate::UNKNOWN_BODY.
pub(super) const UNREADABLE_BODY: [u8; 32] = [0xff; 32];

/// How a front-end runs.
#[derive(Clone)]
pub struct ClusterOptions {
    /// Sign a checkpoint when this many integrated entries are unsigned.
    pub checkpoint_every: u64,
    /// Sign a checkpoint this long after the last one if the tree grew.
    pub checkpoint_interval: Duration,
    /// How often an idle front-end looks for work to integrate.
    pub integrate_every: Duration,
    /// Run the background integrator (tests turn it off to race steps by hand).
    pub integrator: bool,
    /// Connections to PostgreSQL.
    pub pool_size: usize,
    /// The clock (system UTC by default).
    pub clock: Clock,
    /// The log's sealing key (sealed fields: sealing, forget, adding auditors).
    pub seal_key: Option<Arc<SealKey>>,
    /// How witness rounds reach the witnesses (a witnessed log).
    pub witness_client: crate::witness::ClientOptions,
}

impl std::fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("checkpoint_every", &self.checkpoint_every)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("integrate_every", &self.integrate_every)
            .field("integrator", &self.integrator)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            checkpoint_every: 1024,
            checkpoint_interval: Duration::from_secs(10),
            integrate_every: Duration::from_millis(200),
            integrator: true,
            pool_size: 16,
            clock: Arc::new(crate::log::system_micros),
            seal_key: None,
            witness_client: crate::witness::ClientOptions::default(),
        }
    }
}

fn db_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Service {
        what: format!("PostgreSQL: {what}"),
        source: std::io::Error::other(e.to_string()),
    }
}

/// An error with its causes (tokio-postgres's and deadpool's say only
/// the kind, e.g. "error performing TLS handshake", and keep the why in
/// `source()`), each cause once.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut at = e.source();
    while let Some(s) = at {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        at = s.source();
    }
    out
}

fn obj_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Service {
        what: format!("object storage: {what}"),
        source: std::io::Error::other(e.to_string()),
    }
}

fn config_err(option: &'static str, why: impl Into<String>) -> Error {
    Error::Config {
        option,
        why: why.into(),
    }
}

/// A connection pool for a `postgres://` URL (plain TCP or a Unix socket;
/// TLS as libpq's `sslmode` and `sslrootcert` say, see [`tls`]). Errors
/// never show the URL's password.
pub fn connect_db(url: &str, size: usize) -> Result<Pool> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        return Err(config_err(
            "--db",
            format!("a {scheme:?}:// URL is not a postgres:// URL"),
        ));
    }
    let tls::DbUrl { config, tls, .. } = tls::parse(url)?;
    let mgr = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(size.max(2))
        .wait_timeout(Some(Duration::from_secs(30)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| config_err("--db", e.to_string()))
}

/// Where object storage is and how to sign in: the standard AWS variables.
#[derive(Clone, Default)]
pub struct S3Env {
    /// `AWS_ENDPOINT_URL` (plain `http://` only for a loopback host).
    pub endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `AWS_REGION` (else `AWS_DEFAULT_REGION`, else us-east-1).
    pub region: Option<String>,
}

impl std::fmt::Debug for S3Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret is never printed.
        f.debug_struct("S3Env")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl S3Env {
    /// From the process environment.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            endpoint: var("AWS_ENDPOINT_URL"),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
        }
    }
}

/// The object store and prefix an `s3://BUCKET[/PREFIX]` URL names, with
/// the endpoint and credentials of `env`.
pub fn connect_objects(url: &str, env: &S3Env) -> Result<(Arc<dyn ObjectStore>, ObjPath)> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        config_err(
            "--objects",
            format!(
                "{:?} is not an s3://BUCKET[/PREFIX] URL",
                url.chars().take(60).collect::<String>()
            ),
        )
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(config_err("--objects", "the URL names no bucket"));
    }
    let mut b = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(false)
        .with_region(env.region.clone().unwrap_or_else(|| "us-east-1".into()));
    if let Some(k) = &env.access_key_id {
        b = b.with_access_key_id(k);
    }
    if let Some(k) = &env.secret_access_key {
        b = b.with_secret_access_key(k);
    }
    if let Some(ep) = &env.endpoint {
        if let Some(hostport) = ep.strip_prefix("http://") {
            let host = hostport.split('/').next().unwrap_or("");
            let host = host
                .rsplit_once(':')
                .filter(|(_, p)| p.bytes().all(|c| c.is_ascii_digit()))
                .map_or(host, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(config_err(
                    "AWS_ENDPOINT_URL",
                    format!(
                        "{ep}: plain HTTP is allowed only for a loopback endpoint; use https://"
                    ),
                ));
            }
            b = b.with_allow_http(true);
        }
        b = b.with_endpoint(ep);
    }
    let store = b
        .build()
        .map_err(|e| config_err("--objects", e.to_string()))?;
    let prefix = prefix.trim_matches('/');
    let prefix = ObjPath::parse(prefix)
        .map_err(|e| config_err("--objects", format!("prefix {prefix:?}: {e}")))?;
    Ok((Arc::new(store), prefix))
}

/// What the database says about the log.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    /// The log's origin.
    pub origin: String,
    /// Its verifier key.
    pub verifier: VerifierKey,
    /// The objects URL given at init.
    pub objects: String,
}

/// Where a log lives: the database URL and (unless the database names it)
/// the objects URL.
#[derive(Debug, Clone)]
pub struct Location {
    /// `postgres://…`
    pub db: String,
    /// `s3://BUCKET[/PREFIX]`; `None`: the one given at init.
    pub objects: Option<String>,
    /// Endpoint and credentials of the object storage.
    pub s3: S3Env,
}

/// An append's idempotency key: the token that sent it, the key, and the
/// SHA-256 of the request body (on a log with sealed fields it is stored
/// keyed: HMAC-SHA-256 under a key derived from the sealing key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// The token's name.
    pub token: String,
    /// The `Idempotency-Key` header.
    pub key: String,
    /// SHA-256 of the request body.
    pub digest: [u8; 32],
}

/// What an append with an idempotency key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyed {
    /// Appended now: the receipts.
    Appended(Vec<Receipt>),
    /// The key was used before with the same body (on any front-end): that
    /// request's receipts; nothing was appended.
    Replayed(Vec<Receipt>),
    /// The key was used before with another body; nothing was appended.
    OtherBody,
    /// The key came with a migrated log (`stele migrate`), whose request
    /// bodies are not known: that request's receipts, once the caller has
    /// compared the retry with their entries ([`Cluster::compare_retry`]),
    /// as a restarted file log does; nothing was appended.
    Unchecked(Vec<Receipt>),
    /// The key's request sealed a value that has since been forgotten or
    /// redacted: a retry is not compared with it (whether it matched would
    /// confirm a guess of a value that is gone), whatever its body; nothing
    /// was appended.
    Unreadable,
}

struct Job {
    texts: Vec<String>,
    // Per text: the sealed values waiting for its index (FORMAT 13.9).
    openings: Vec<Vec<crate::sealed::Pending>>,
    request: Option<RequestKey>,
    reply: oneshot::Sender<Result<Keyed>>,
}

/// A front-end's handle on a log in PostgreSQL and object storage.
pub struct Cluster {
    inner: Arc<Inner>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("origin", &self.inner.info.origin)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: Pool,
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    info: ClusterInfo,
    signer: Option<SignerKey>,
    opts: ClusterOptions,
    jobs: mpsc::Sender<Job>,
    wake: Notify,
    // The last integrated size this front-end saw (a hint for reads).
    seen: std::sync::atomic::AtomicU64,
    // Sealed fields: present when the log has sealing tables.
    seal: Option<Arc<sealed::ClusterSeal>>,
    // Witness cosigning (cluster/witness.rs).
    witness: witness::State,
}

/// Creates a log: the tables in the (existing, empty) database, the
/// genesis entry, and the first checkpoint. The private key stays with the
/// caller (`stele init` writes it to a 0600 file); only the verifier key is
/// stored.
pub async fn init(loc: &Location, origin: &str, signer: &SignerKey) -> Result<ClusterInfo> {
    init_with(loc, origin, signer, None).await
}

/// [`init`] with sealed fields: the sealing tables, the rules and a check
/// value of the sealing key are made in the transaction that creates the
/// log (the key itself stays with the caller).
pub async fn init_with(
    loc: &Location,
    origin: &str,
    signer: &SignerKey,
    seal: Option<(&crate::sealed::SealConfig, &SealKey)>,
) -> Result<ClusterInfo> {
    let seal = seal.map(|(cfg, key)| sealed::Setup {
        cfg,
        key,
        carried: None,
    });
    if origin.is_empty() || origin.contains('\n') {
        return Err(Error::BadEvent {
            index: 0,
            why: "origin must be one non-empty line".into(),
        });
    }
    let verifier = signer.verifier();
    let ts = (crate::log::system_micros)();
    let t = Timestamp::from_unix_micros(ts)
        .ok_or_else(|| db_err("clock", format!("{ts} µs is outside years 0000..9999")))?;
    let genesis = genesis_event(origin, &verifier.to_string());
    let ev =
        crate::log::canonical_event(&genesis).map_err(|why| Error::BadEvent { index: 0, why })?;
    let line = crate::log::finish_line(&ev, 0, t, &ZERO_PREV)
        .map_err(|why| Error::BadEvent { index: 0, why })?;
    create(
        loc,
        origin,
        &verifier,
        1,
        |_, _| Ok(vec![line.clone().into_bytes()]),
        &[],
        Some(signer),
        seal.as_ref(),
        None,
    )
    .await
}

/// Creates a log from another log's entries and checkpoints, byte for byte
/// (`stele migrate DIR postgres://…`): `entries(from, to)` gives entry lines
/// without `\n`; `extra` its tokens and witness policy. Everything reaches
/// PostgreSQL in one transaction (with the idempotency keys recorded in the
/// last entries), then is integrated; each checkpoint's root is checked
/// against the tiles.
pub async fn import<F>(
    loc: &Location,
    origin: &str,
    verifier: &VerifierKey,
    size: u64,
    entries: F,
    checkpoints: &[StoredCheckpoint],
    extra: &Imported,
) -> Result<()>
where
    F: FnMut(u64, u64) -> Result<Vec<Vec<u8>>>,
{
    import_with(
        loc,
        origin,
        verifier,
        size,
        entries,
        checkpoints,
        extra,
        None,
    )
    .await
}

/// [`import`] of a log with sealed fields: `seal` names the rules, the new
/// log's sealing key and what the directory's sidecar carries over, written
/// in the same transaction.
#[allow(clippy::too_many_arguments)] // reason: the parts of one migrated log
pub async fn import_with<F>(
    loc: &Location,
    origin: &str,
    verifier: &VerifierKey,
    size: u64,
    entries: F,
    checkpoints: &[StoredCheckpoint],
    extra: &Imported,
    seal: Option<&sealed::Setup<'_>>,
) -> Result<()>
where
    F: FnMut(u64, u64) -> Result<Vec<Vec<u8>>>,
{
    create(
        loc,
        origin,
        verifier,
        size,
        entries,
        checkpoints,
        None,
        seal,
        Some(extra),
    )
    .await
    .map(|_| ())
}

// A new log holding `size` given entries and `checkpoints` (init: the
// genesis and none, signed by `signer` once integrated; migrate: a copy,
// with `extra`: what else it brings).
#[allow(clippy::too_many_arguments)] // reason: two call sites (init, import), all parts of one new log
async fn create<F>(
    loc: &Location,
    origin: &str,
    verifier: &VerifierKey,
    size: u64,
    mut entries: F,
    checkpoints: &[StoredCheckpoint],
    signer: Option<&SignerKey>,
    seal: Option<&sealed::Setup<'_>>,
    extra: Option<&Imported>,
) -> Result<ClusterInfo>
where
    F: FnMut(u64, u64) -> Result<Vec<Vec<u8>>>,
{
    let objects = loc.objects.clone().ok_or_else(|| {
        config_err(
            "--objects",
            "a new log needs --objects s3://BUCKET[/PREFIX]",
        )
    })?;
    let (store, prefix) = connect_objects(&objects, &loc.s3)?;
    let pool = connect_db(&loc.db, 2)?;
    match store.head(&child(&prefix, CHECKPOINT_OBJECT)).await {
        Ok(_) => {
            return Err(config_err(
                "--objects",
                format!("{objects} already holds a log's {CHECKPOINT_OBJECT}; nothing was written"),
            ));
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(obj_err("read checkpoint", e)),
    }
    let mut client = pool.get().await.map_err(|e| db_err("connect", chain(&e)))?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| db_err("begin", chain(&e)))?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('stele_config') IS NOT NULL", &[])
        .await
        .map_err(|e| db_err("look for stele_config", chain(&e)))?
        .get(0);
    if exists {
        return Err(config_err(
            "--db",
            "the database already holds a stele log (table stele_config); nothing was written",
        ));
    }
    tx.batch_execute(SCHEMA)
        .await
        .map_err(|e| db_err("create tables", chain(&e)))?;
    tx.batch_execute(REQUESTS_SCHEMA)
        .await
        .map_err(|e| db_err("create tables", chain(&e)))?;
    if let Some(setup) = seal {
        sealed::create(&tx, origin, setup).await?;
    }
    tx.batch_execute(&format!("{}{}", witness::SCHEMA, anchor::SCHEMA))
        .await
        .map_err(|e| db_err("create tables", chain(&e)))?;
    exec1(
        &tx,
        "write stele_config",
        "INSERT INTO stele_config (id, format, origin, verifier, objects) VALUES (1, $1, $2, $3, $4)",
        &[&FORMAT, &origin, &verifier.to_string(), &objects],
    )
    .await?;
    let (mut prev, mut last_ts) = (ZERO_PREV, i64::MIN);
    // The entries whose idempotency keys are kept (a migrated log's).
    let keys_from = size.saturating_sub(crate::serve::IDEMPOTENCY_KEYS as u64);
    let mut tail: Vec<Vec<u8>> = Vec::new();
    let mut at = 0;
    while at < size {
        let to = (at + 4096).min(size);
        let lines = entries(at, to)?;
        if lines.len() as u64 != to - at {
            return Err(Error::OutOfRange(format!(
                "entries {at}..{to}: got {}",
                lines.len()
            )));
        }
        let mut buf = Vec::new();
        for l in &lines {
            buf.extend_from_slice(l);
            buf.push(b'\n');
        }
        if extra.is_some() && to > keys_from {
            let skip = keys_from.saturating_sub(at) as usize;
            tail.extend(lines.iter().skip(skip).cloned());
        }
        let last = lines.last().expect("non-empty");
        prev = leaf_hash(last);
        last_ts = stele_core::entry::parse_entry(last)
            .map_err(|e| Error::OutOfRange(format!("entry {}: {e}", to - 1)))?
            .ts
            .unix_micros();
        exec1(
            &tx,
            "insert into stele_sequenced",
            "INSERT INTO stele_sequenced (first, n, lines) VALUES ($1, $2, $3)",
            &[&(at as i64), &((to - at) as i32), &buf],
        )
        .await?;
        at = to;
    }
    exec1(
        &tx,
        "write stele_next",
        "INSERT INTO stele_next (id, next, prev, last_ts) VALUES (1, $1, $2, $3)",
        &[&(size as i64), &&prev.0[..], &last_ts],
    )
    .await?;
    exec1(
        &tx,
        "write stele_integrated",
        "INSERT INTO stele_integrated (id, size, compact) VALUES (1, 0, $1)",
        &[&Vec::<u8>::new()],
    )
    .await?;
    for c in checkpoints {
        exec1(
            &tx,
            "insert into stele_checkpoints",
            "INSERT INTO stele_checkpoints (size, note) VALUES ($1, $2)",
            &[&(c.checkpoint.size as i64), &c.note],
        )
        .await?;
    }
    if let Some(extra) = extra {
        migrate::write(&tx, extra, keys_from, &tail).await?;
    }
    tx.commit().await.map_err(|e| db_err("commit", chain(&e)))?;
    drop(client);
    let info = ClusterInfo {
        origin: origin.to_string(),
        verifier: verifier.clone(),
        objects,
    };
    let opts = ClusterOptions {
        integrator: false,
        pool_size: 2,
        ..ClusterOptions::default()
    };
    let c = Cluster::start(
        pool,
        store,
        prefix,
        info.clone(),
        signer.cloned(),
        opts,
        None,
    );
    let integrated = c.sync(signer.is_some()).await?;
    if integrated != size {
        return Err(db_err(
            "create",
            format!(
                "{integrated} entries integrated, not {size}: another process writes to this database"
            ),
        ));
    }
    for cp in checkpoints {
        let root = c.root(cp.checkpoint.size).await?;
        if root != cp.checkpoint.root {
            return Err(Error::CheckpointMismatch {
                dir: loc.db.clone().into(),
                why: format!(
                    "the copied checkpoint of size {} has root {}, but the copied entries give {}",
                    cp.checkpoint.size, cp.checkpoint.root, root
                ),
            });
        }
    }
    c.inner.publish().await?;
    Ok(info)
}

type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

// A statement prepared once per connection and cached (one round trip a
// call, not two).
async fn prepared<C: GenericClient>(c: &C, what: &str, sql: &str) -> Result<Statement> {
    c.prepare_cached(sql)
        .await
        .map_err(|e| db_err(what, chain(&e)))
}

// The rows a query returns.
async fn rows<C: GenericClient>(
    c: &C,
    what: &str,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>> {
    let stmt = prepared(c, what, sql).await?;
    c.query(&stmt, params)
        .await
        .map_err(|e| db_err(what, chain(&e)))
}

// The row a query returns, if any (an error if more than one).
async fn row_opt<C: GenericClient>(
    c: &C,
    what: &str,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>> {
    let stmt = prepared(c, what, sql).await?;
    c.query_opt(&stmt, params)
        .await
        .map_err(|e| db_err(what, chain(&e)))
}

// The one row a query must return.
async fn row1<C: GenericClient>(c: &C, what: &str, sql: &str, params: Params<'_>) -> Result<Row> {
    row_opt(c, what, sql, params)
        .await?
        .ok_or_else(|| db_err(what, "no row"))
}

// A statement that must change exactly one row.
async fn exec1<C: GenericClient>(c: &C, what: &str, sql: &str, params: Params<'_>) -> Result<()> {
    let stmt = prepared(c, what, sql).await?;
    let n = c
        .execute(&stmt, params)
        .await
        .map_err(|e| db_err(what, chain(&e)))?;
    if n != 1 {
        return Err(db_err(what, format!("changed {n} rows, not 1")));
    }
    Ok(())
}

fn child(prefix: &ObjPath, name: &str) -> ObjPath {
    let mut p = prefix.clone();
    for part in name.split('/') {
        p = p.clone().join(part);
    }
    p
}

/// Reads the log's configuration row.
async fn read_info(pool: &Pool) -> Result<ClusterInfo> {
    let client = pool.get().await.map_err(|e| db_err("connect", chain(&e)))?;
    let row = client
        .query_opt(
            "SELECT format, origin, verifier, objects FROM stele_config WHERE id = 1",
            &[],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
                config_err(
                    "--db",
                    "the database holds no stele log (no table stele_config): run stele init --db … --objects …",
                )
            } else {
                db_err("read stele_config", e)
            }
        })?
        .ok_or_else(|| config_err("--db", "stele_config is empty"))?;
    let format: String = row.get(0);
    if format != FORMAT {
        return Err(config_err(
            "--db",
            format!("the database holds format {format:?}, expected {FORMAT:?}"),
        ));
    }
    let verifier: String = row.get(2);
    Ok(ClusterInfo {
        origin: row.get(1),
        verifier: VerifierKey::parse(&verifier)
            .map_err(|e| config_err("--db", format!("stele_config.verifier: {e}")))?,
        objects: row.get(3),
    })
}

impl Cluster {
    /// Opens a front-end on an existing log. Without a signer it can
    /// sequence and integrate but not sign checkpoints (reads, exports).
    pub async fn open(
        loc: &Location,
        signer: Option<SignerKey>,
        opts: ClusterOptions,
    ) -> Result<Self> {
        let pool = connect_db(&loc.db, opts.pool_size)?;
        let info = read_info(&pool).await?;
        pool.get()
            .await
            .map_err(|e| db_err("connect", chain(&e)))?
            .batch_execute(&format!(
                "{REQUESTS_SCHEMA}{}{}",
                witness::SCHEMA,
                anchor::SCHEMA
            ))
            .await
            .map_err(|e| db_err("create stele_requests", chain(&e)))?;
        if let Some(s) = &signer
            && s.verifier().to_string() != info.verifier.to_string()
        {
            return Err(config_err(
                "--signing-key",
                format!(
                    "the key is not the log's: the log's verifier key is {}",
                    info.verifier
                ),
            ));
        }
        let objects = loc.objects.clone().unwrap_or_else(|| info.objects.clone());
        let (store, prefix) = connect_objects(&objects, &loc.s3)?;
        let seal = sealed::open(&pool, &info.origin, opts.seal_key.clone()).await?;
        Ok(Self::start(pool, store, prefix, info, signer, opts, seal))
    }

    fn start(
        pool: Pool,
        store: Arc<dyn ObjectStore>,
        prefix: ObjPath,
        info: ClusterInfo,
        signer: Option<SignerKey>,
        opts: ClusterOptions,
        seal: Option<Arc<sealed::ClusterSeal>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let background = opts.integrator;
        let inner = Arc::new(Inner {
            pool,
            store,
            prefix,
            info,
            signer,
            opts,
            jobs: tx,
            wake: Notify::new(),
            seen: std::sync::atomic::AtomicU64::new(0),
            seal,
            witness: witness::State::default(),
        });
        let mut tasks = vec![tokio::spawn(sequencer(inner.clone(), rx))];
        if background {
            tasks.push(tokio::spawn(integrator(Arc::downgrade(&inner))));
        }
        Self { inner, tasks }
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.inner.info.origin
    }

    /// The log's verifier key.
    pub fn verifier(&self) -> &VerifierKey {
        &self.inner.info.verifier
    }

    /// Appends events written on behalf of an authenticated writer (the
    /// member `stele` = `by` is added), all or nothing, exactly as
    /// [`crate::Log::append_batch_by`] checks them. `Ok` means committed in
    /// PostgreSQL.
    pub async fn append_batch_by(&self, events: Vec<Value>, by: &Value) -> Result<Vec<Receipt>> {
        match self.append_batch_keyed(events, by, None).await? {
            Keyed::Appended(r) | Keyed::Replayed(r) => Ok(r),
            Keyed::OtherBody | Keyed::Unreadable | Keyed::Unchecked(_) => {
                Err(db_err("append", "unexpected idempotency answer"))
            }
        }
    }

    /// [`Cluster::append_batch_by`] with an idempotency key: a key already
    /// used (by any front-end; the last [`crate::serve::IDEMPOTENCY_KEYS`]
    /// keys are kept) gets that request's receipts back, or
    /// [`Keyed::OtherBody`] if its body differed, or [`Keyed::Unreadable`]
    /// whatever its body if that request sealed a value since forgotten or
    /// redacted; nothing is appended then.
    /// The key is stored in the transaction that sequences the request.
    pub async fn append_batch_keyed(
        &self,
        mut events: Vec<Value>,
        by: &Value,
        request: Option<RequestKey>,
    ) -> Result<Keyed> {
        for (i, ev) in events.iter().enumerate() {
            check_event(ev, false).map_err(|why| Error::BadEvent { index: i, why })?;
            if self.inner.seal.is_none() {
                refuse_sealed(i, ev)?;
            }
        }
        for ev in &mut events {
            if let Some(o) = ev.as_object_mut() {
                let _ = o.insert(WRITER_MEMBER.to_string(), by.clone());
            }
        }
        // A log with sealed fields stores no plain hash of a body (sealed
        // values in it could be confirmed by guessing): the digest is keyed.
        let request = match (request, &self.inner.seal) {
            (Some(mut rk), Some(s)) => {
                rk.digest = s.request_digest(&rk.digest)?;
                Some(rk)
            }
            (r, _) => r,
        };
        self.append_checked(events, request, true).await
    }

    /// Appends user events as one unit (as [`crate::Log::append_batch`]).
    pub async fn append_batch(&self, events: Vec<Value>) -> Result<Vec<Receipt>> {
        for (i, ev) in events.iter().enumerate() {
            check_event(ev, false).map_err(|why| Error::BadEvent { index: i, why })?;
            if self.inner.seal.is_none() {
                refuse_sealed(i, ev)?;
            }
        }
        self.unkeyed(events, true).await
    }

    /// Appends a reserved `stele.*` event (`stele.access` and the like).
    pub async fn append_reserved(&self, event: Value) -> Result<Receipt> {
        let ty = event.get("type").and_then(Value::as_str).unwrap_or("");
        if !ty.starts_with(RESERVED_PREFIX) || ty == GENESIS_TYPE {
            return Err(Error::BadEvent {
                index: 0,
                why: format!(
                    "append_reserved takes only {RESERVED_PREFIX}* events other than the genesis, not {ty:?}"
                ),
            });
        }
        check_event(&event, true).map_err(|why| Error::BadEvent { index: 0, why })?;
        Ok(self.unkeyed(vec![event], false).await?[0])
    }

    async fn unkeyed(&self, events: Vec<Value>, user: bool) -> Result<Vec<Receipt>> {
        match self.append_checked(events, None, user).await? {
            Keyed::Appended(r) | Keyed::Replayed(r) => Ok(r),
            Keyed::OtherBody | Keyed::Unreadable | Keyed::Unchecked(_) => {
                Err(db_err("append", "unexpected idempotency answer"))
            }
        }
    }

    // `user`: a user's events, sealed as on a file log (Stele's own are not).
    async fn append_checked(
        &self,
        events: Vec<Value>,
        request: Option<RequestKey>,
        user: bool,
    ) -> Result<Keyed> {
        if events.is_empty() {
            return Ok(Keyed::Appended(Vec::new()));
        }
        let events = Arc::new(events);
        let seal = self.inner.seal.clone().filter(|_| user);
        // A data key forgotten meanwhile: sealed again under the new key.
        let mut tries = 0;
        loop {
            tries += 1;
            // Sealing and canonical JSON (the expensive, refusable part)
            // before sequencing.
            let (evs, seal) = (events.clone(), seal.clone());
            let (texts, openings) = tokio::task::spawn_blocking(move || match seal {
                Some(s) => s.seal_events(&evs),
                None => crate::log::canonical_events(&evs).map(|t| (t, Vec::new())),
            })
            .await
            .map_err(|e| db_err("internal", chain(&e)))??;
            let (reply, rx) = oneshot::channel();
            self.inner
                .jobs
                .send(Job {
                    texts,
                    openings,
                    request: request.clone(),
                    reply,
                })
                .await
                .map_err(|_| db_err("sequencer", "stopped"))?;
            let r = rx.await.map_err(|_| db_err("sequencer", "stopped"))?;
            if r.is_ok() {
                self.inner.wake.notify_one();
            }
            match r {
                Err(Error::Sealed(m)) if m == sealed::STALE && tries < 3 => continue,
                r => return r,
            }
        }
    }

    /// Integrates everything sequenced so far (waiting for another
    /// front-end's step when one runs) and, with `sign`, makes sure a
    /// checkpoint covers it. Returns the integrated size.
    pub async fn sync(&self, sign: bool) -> Result<u64> {
        let target = self.inner.next().await?;
        let mut pause = Duration::from_millis(5);
        let started = std::time::Instant::now();
        loop {
            match self.inner.integrate_once(sign).await? {
                Some(size) if size >= target => {
                    if sign {
                        // A witnessed log's checkpoint comes from a round.
                        let _ = witness::round(&self.inner, true).await?;
                        self.inner.publish().await?;
                    }
                    return Ok(size);
                }
                Some(_) => continue,
                None => {
                    if started.elapsed() > Duration::from_secs(120) {
                        return Err(db_err(
                            "integrate",
                            "another front-end held the integration lock for two minutes",
                        ));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
            }
        }
    }

    /// One integration step (tests race these): `None` when another
    /// front-end holds the integration lock, else the integrated size.
    pub async fn integrate_once(&self, sign: bool) -> Result<Option<u64>> {
        self.inner.integrate_once(sign).await
    }

    /// Whether a retry's `events` (as a client sent them) are the events of
    /// the earlier request whose receipts are `rs`, compared with their
    /// entries as a restarted file log compares them (crate::serve's
    /// `replay_matches`): as many events, each its entry's event without
    /// the writer member, each sealed value the one its opening holds
    /// ([`crate::sealed::Compared::Unreadable`] if an opening is gone,
    /// whatever the retry holds).
    pub async fn compare_retry(
        &self,
        rs: &[Receipt],
        events: &[Value],
    ) -> Result<crate::sealed::Compared> {
        use crate::sealed::Compared;
        let (Some(first), true) = (rs.first(), events.len() == rs.len()) else {
            return Ok(Compared::Other);
        };
        let lines = self.entries(first.seq, first.seq + rs.len() as u64).await?;
        let mut unreadable = false;
        for ((ev, r), line) in events.iter().zip(rs).zip(&lines) {
            let sent = crate::log::canonical_event(ev)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok());
            let stored = serde_json::from_slice::<Value>(line)
                .ok()
                .filter(|_| leaf_hash(line) == r.leaf_hash)
                .and_then(|mut e| e.get_mut("event").map(Value::take));
            let (Some(sent), Some(Value::Object(mut stored))) = (sent, stored) else {
                return Ok(Compared::Other);
            };
            let _ = stored.remove(WRITER_MEMBER);
            let stored = Value::Object(stored);
            let c = match &self.inner.seal {
                Some(s) => s.compare(&self.inner, r.seq, &stored, &sent).await?,
                None if stored == sent => Compared::Same,
                None => Compared::Other,
            };
            match c {
                Compared::Same => {}
                // The other events are still compared: a retry that differs
                // elsewhere is another body, whatever its sealed values.
                Compared::Unreadable => unreadable = true,
                Compared::Other => return Ok(Compared::Other),
            }
        }
        Ok(if lines.len() != rs.len() {
            Compared::Other
        } else if unreadable {
            Compared::Unreadable
        } else {
            Compared::Same
        })
    }

    /// The size the log has sequenced (committed entries).
    pub async fn sequenced(&self) -> Result<u64> {
        self.inner.next().await
    }

    /// The integrated size, from the database.
    pub async fn integrated(&self) -> Result<u64> {
        self.inner.integrated().await
    }

    /// Every stored checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        self.inner.checkpoints(None).await
    }

    /// How many checkpoints are stored (for /metrics: counted in the
    /// database, not read, which grew each scrape with the log).
    pub async fn checkpoint_count(&self) -> Result<u64> {
        let client = self.inner.client().await?;
        let row = row1(
            &client,
            "count stele_checkpoints",
            "SELECT count(*) FROM stele_checkpoints",
            &[],
        )
        .await?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// The latest stored checkpoint.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        Ok(self.inner.checkpoints(Some(1)).await?.pop())
    }

    /// The published checkpoint object's bytes (what `GET /checkpoint` serves).
    pub async fn published_checkpoint(&self) -> Result<Option<Vec<u8>>> {
        self.inner.get_object(CHECKPOINT_OBJECT).await
    }

    /// An object under the log's prefix (a tile path), `None` if missing.
    pub async fn object(&self, path: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get_object(path).await
    }

    /// The bytes of a tile or bundle as it is in a tree of `size` (which
    /// must be integrated): read from the stored object of that width, else
    /// cut from the right edge's wider one.
    pub async fn tile(&self, tile: Tile, entries: bool, size: u64) -> Result<Option<Vec<u8>>> {
        self.inner.tile(tile, entries, size).await
    }

    /// Entry lines `from..to` (each without `\n`), from the entry bundles.
    pub async fn entries(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>> {
        self.inner.entries(from, to).await
    }

    /// The inclusion proof of `index` in the tree of `size`, from tiles.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        let tiles = stele_core::tiles::tiles_for_inclusion(index, size)
            .map_err(|e| Error::OutOfRange(e.to_string()))?;
        let set = self.inner.tile_set(size, &tiles).await?;
        stele_core::tiles::inclusion_proof_from_tiles(&set, index, size)
            .map_err(|e| obj_err("inclusion proof", e))
    }

    /// The consistency proof from `old` to `new`, from tiles.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.inner.consistency_proof(old, new).await
    }

    /// The root of the tree of `size`, from tiles.
    pub async fn root(&self, size: u64) -> Result<Hash> {
        let tiles = stele_core::tiles::tiles_for_root(size)
            .map_err(|e| Error::OutOfRange(e.to_string()))?;
        let set = self.inner.tile_set(size, &tiles).await?;
        stele_core::merkle::root(&set, size).map_err(|e| obj_err("root", e))
    }

    /// The whole-log export of the first `size` entries (a stored
    /// checkpoint's size), handed to `sink` in chunks of at most one entry
    /// bundle: the same bytes `stele export DIR` writes for a file log
    /// holding the same entries and checkpoints.
    pub async fn export_log_with<F, Fut>(&self, size: u64, sink: F) -> Result<()>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        self.export_log_revealed_with(size, &[], sink).await
    }

    /// [`Cluster::export_log_with`] with the openings revealed to `reveal`
    /// (auditors, age1…): FORMAT 13.6, as `stele export DIR --reveal-to`.
    pub async fn export_log_revealed_with<F, Fut>(
        &self,
        size: u64,
        reveal: &[String],
        mut sink: F,
    ) -> Result<()>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        use stele_core::export::{ExportKind, header};
        let mut seal = sealed::ExportSeal::open(&self.inner, reveal, sealed::Holds::Log).await?;
        let mut cps = CheckpointPages::new(0, size);
        let mut chunk = header(ExportKind::Log).into_bytes();
        if let Some(s) = seal.as_mut() {
            s.write_head(&self.inner, &mut chunk, &mut sink).await?;
        }
        let chunk = self
            .entries_between(0, size, &mut cps, chunk, &mut sink, &mut seal)
            .await?;
        if !chunk.is_empty() {
            sink(chunk).await?;
        }
        Ok(())
    }

    /// The range export of entries `from..to` (FORMAT: a range export)
    /// proved in the latest checkpoint, which must cover `to`: the same
    /// bytes `stele export DIR --from --to` writes for a file log holding
    /// the same entries and checkpoints.
    pub async fn export_range_with<F, Fut>(&self, from: u64, to: u64, sink: F) -> Result<()>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        self.export_range_revealed_with(from, to, &[], sink).await
    }

    /// [`Cluster::export_range_with`] with the openings revealed to `reveal`.
    pub async fn export_range_revealed_with<F, Fut>(
        &self,
        from: u64,
        to: u64,
        reveal: &[String],
        mut sink: F,
    ) -> Result<()>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        use stele_core::export::{
            ExportKind, checkpoint_record, header, range_record, right_record,
        };
        use stele_core::merkle::{left_hashes, right_hashes};
        if from >= to {
            return Err(Error::OutOfRange(format!("range {from}..{to} is empty")));
        }
        let latest = self.inner.checkpoints(Some(1)).await?;
        let latest = covering(&latest, to)?.clone();
        let n = latest.checkpoint.size;
        let bad = |e: stele_core::tiles::TileError| Error::OutOfRange(e.to_string());
        let mut tiles =
            stele_core::tiles::tiles_read_by(n, |r| left_hashes(r, from)).map_err(bad)?;
        tiles.extend(stele_core::tiles::tiles_read_by(n, |r| right_hashes(r, to, n)).map_err(bad)?);
        let set = self.inner.tile_set(n, &tiles).await?;
        let left = left_hashes(&set, from).map_err(|e| obj_err("range proof", e))?;
        let right = right_hashes(&set, to, n).map_err(|e| obj_err("range proof", e))?;
        let mut seal =
            sealed::ExportSeal::open(&self.inner, reveal, sealed::Holds::Range(from, to)).await?;
        let mut chunk = header(ExportKind::Range).into_bytes();
        if let Some(s) = seal.as_mut() {
            s.write_head(&self.inner, &mut chunk, &mut sink).await?;
        }
        chunk.extend_from_slice(range_record(from, &left).as_bytes());
        let mut inside = CheckpointPages::new(from + 1, to);
        let mut chunk = self
            .entries_between(from, to, &mut inside, chunk, &mut sink, &mut seal)
            .await?;
        if n > to {
            let stamps = anchor::timestamps_of(&self.inner, &[n]).await?;
            chunk.extend_from_slice(right_record(n, &right).as_bytes());
            chunk.extend_from_slice(checkpoint_record(&latest.note).as_bytes());
            chunk.extend_from_slice(crate::anchor::lines_for(&stamps, n)?.as_bytes());
        }
        if !chunk.is_empty() {
            sink(chunk).await?;
        }
        Ok(())
    }

    /// The export of selected entries (ascending, no repeats), each with
    /// its inclusion proof in the latest checkpoint: the same bytes
    /// `stele export DIR --entries` writes for a file log holding the same
    /// entries and checkpoints.
    pub async fn export_entries_with<F, Fut>(&self, indexes: &[u64], sink: F) -> Result<()>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        self.export_entries_revealed_with(indexes, &[], sink).await
    }

    /// [`Cluster::export_entries_with`] with the openings revealed to `reveal`.
    pub async fn export_entries_revealed_with<F, Fut>(
        &self,
        indexes: &[u64],
        reveal: &[String],
        mut sink: F,
    ) -> Result<()>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        use stele_core::export::{ExportKind, checkpoint_record, header, inclusion_record};
        let Some(&max) = indexes.last() else {
            return Err(Error::OutOfRange("no entries selected".into()));
        };
        if indexes.windows(2).any(|p| p[0] >= p[1]) {
            return Err(Error::OutOfRange(
                "selected entries must be in increasing order without repeats".into(),
            ));
        }
        let cps = self.inner.checkpoints(Some(1)).await?;
        let latest = covering(&cps, max + 1)?;
        let n = latest.checkpoint.size;
        let mut tiles = Vec::new();
        for &i in indexes {
            tiles.extend(
                stele_core::tiles::tiles_for_inclusion(i, n)
                    .map_err(|e| Error::OutOfRange(e.to_string()))?,
            );
        }
        let set = self.inner.tile_set(n, &tiles).await?;
        let mut seal =
            sealed::ExportSeal::open(&self.inner, reveal, sealed::Holds::Entries(indexes)).await?;
        let mut chunk = header(ExportKind::Entries).into_bytes();
        if let Some(s) = seal.as_mut() {
            s.write_head(&self.inner, &mut chunk, &mut sink).await?;
        }
        chunk.extend_from_slice(checkpoint_record(&latest.note).as_bytes());
        let stamps = anchor::timestamps_of(&self.inner, &[n]).await?;
        chunk.extend_from_slice(crate::anchor::lines_for(&stamps, n)?.as_bytes());
        // Entries by bundle: each bundle is read once.
        let mut bundle: Option<(u64, Vec<u8>)> = None;
        for &i in indexes {
            let proof = stele_core::tiles::inclusion_proof_from_tiles(&set, i, n)
                .map_err(|e| obj_err("inclusion proof", e))?;
            chunk.extend_from_slice(inclusion_record(i, &proof).as_bytes());
            if bundle.as_ref().is_none_or(|(at, _)| *at != i / 256) {
                let t = tile_in_tree(0, i / 256, n)
                    .ok_or_else(|| Error::OutOfRange(format!("entry {i} is beyond {n}")))?;
                let b = self.inner.tile(t, true, n).await?.ok_or_else(|| {
                    obj_err("read entries", format!("{} is missing", t.entries_path()))
                })?;
                bundle = Some((i / 256, b));
                if let Some(s) = seal.as_mut() {
                    s.fetch(&self.inner, t.first(), t.first() + 256).await?;
                }
                sink(std::mem::take(&mut chunk)).await?;
            }
            let (_, b) = bundle.as_ref().expect("read above");
            let items = parse_entry_bundle(b).map_err(|e| obj_err("read bundle", e))?;
            let line = items.get((i % 256) as usize).ok_or_else(|| {
                obj_err("read entries", format!("the bundle of entry {i} is short"))
            })?;
            chunk.extend_from_slice(line);
            chunk.push(b'\n');
            if let Some(s) = &seal {
                s.write_for(i, &mut chunk);
            }
        }
        sink(chunk).await
    }

    // Entries `from..to` after `chunk`, each checkpoint of `cps` (ascending)
    // right after the entry that completes it (one of size `from` before
    // them), handed to `sink` a bundle at a time; returns what is left.
    #[allow(clippy::too_many_arguments)] // reason: two call sites (log and range exports), each record kind one argument
    async fn entries_between<F, Fut>(
        &self,
        from: u64,
        to: u64,
        cps: &mut CheckpointPages,
        mut chunk: Vec<u8>,
        sink: &mut F,
        seal: &mut Option<sealed::ExportSeal>,
    ) -> Result<Vec<u8>>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        use stele_core::export::checkpoint_record;
        let mut at = from;
        loop {
            while let Some((c, stamps)) = cps.next_at(&self.inner, at).await? {
                chunk.extend_from_slice(checkpoint_record(&c.note).as_bytes());
                chunk.extend_from_slice(stamps.as_bytes());
            }
            if at >= to {
                return Ok(chunk);
            }
            let end = (at / 256 * 256 + 256).min(to);
            if let Some(s) = seal.as_mut() {
                s.fetch(&self.inner, at, end).await?;
            }
            for line in self.entries(at, end).await? {
                chunk.extend_from_slice(&line);
                chunk.push(b'\n');
                if let Some(s) = &seal {
                    s.write_for(at, &mut chunk);
                }
                at += 1;
                while let Some((c, stamps)) = cps.next_at(&self.inner, at).await? {
                    chunk.extend_from_slice(checkpoint_record(&c.note).as_bytes());
                    chunk.extend_from_slice(stamps.as_bytes());
                }
            }
            sink(std::mem::take(&mut chunk)).await?;
        }
    }

    /// [`Cluster::export_log_with`] into a writer.
    pub async fn export_log(&self, size: u64, w: &mut (dyn std::io::Write + Send)) -> Result<()> {
        let w = std::sync::Mutex::new(w);
        self.export_log_with(size, |b| {
            let r = w
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(&b)
                .map_err(|e| Error::io("write", "export", e));
            async move { r }
        })
        .await
    }

    /// Entry `index`'s inclusion proof in the tree of `size` (at most the
    /// integrated size `have`), with its leaf hash and root: what
    /// [`crate::View::inclusion`] gives for a file log.
    pub async fn inclusion(&self, index: u64, size: u64, have: u64) -> Result<InclusionProof> {
        if index >= size || size > have {
            return Err(Error::OutOfRange(format!(
                "entry {index} is not in a tree of size {size} (the log has {have} entries)"
            )));
        }
        let mut tiles = stele_core::tiles::tiles_for_inclusion(index, size)
            .map_err(|e| Error::OutOfRange(e.to_string()))?;
        tiles.extend(
            stele_core::tiles::tiles_for_root(size)
                .map_err(|e| Error::OutOfRange(e.to_string()))?,
        );
        tiles.extend(stele_core::tiles::tile_for_hash(0, index, size));
        let set = self.inner.tile_set(size, &tiles).await?;
        use stele_core::merkle::HashReader as _;
        Ok(InclusionProof {
            index,
            tree_size: size,
            proof: stele_core::tiles::inclusion_proof_from_tiles(&set, index, size)
                .map_err(|e| obj_err("inclusion proof", e))?,
            leaf_hash: set
                .read_hash(0, index)
                .map_err(|e| obj_err("leaf hash", e))?,
            root: stele_core::merkle::root(&set, size).map_err(|e| obj_err("root", e))?,
        })
    }

    /// The consistency proof from `from` to `to` (at most `have`), with both
    /// roots: what [`crate::View::consistency`] gives for a file log.
    pub async fn consistency(&self, from: u64, to: u64, have: u64) -> Result<ConsistencyProof> {
        if from > to || to > have {
            return Err(Error::OutOfRange(format!(
                "sizes {from} and {to} do not fit the log's {have} entries (from must be at most to)"
            )));
        }
        let bad = |e: stele_core::tiles::TileError| Error::OutOfRange(e.to_string());
        let mut tiles = stele_core::tiles::tiles_for_consistency(from, to).map_err(bad)?;
        tiles.extend(stele_core::tiles::tiles_for_root(to).map_err(bad)?);
        let old_tiles = stele_core::tiles::tiles_for_root(from).map_err(bad)?;
        let set = self.inner.tile_set(to, &tiles).await?;
        let old_set = self.inner.tile_set(from, &old_tiles).await?;
        Ok(ConsistencyProof {
            from,
            to,
            proof: stele_core::tiles::consistency_proof_from_tiles(&set, from, to)
                .map_err(|e| obj_err("consistency proof", e))?,
            old_root: stele_core::merkle::root(&old_set, from).map_err(|e| obj_err("root", e))?,
            new_root: stele_core::merkle::root(&set, to).map_err(|e| obj_err("root", e))?,
        })
    }

    /// The log's witness policy (C2SP tlog-policy text), if it is witnessed.
    pub async fn witness_policy(&self) -> Result<Option<String>> {
        witness::policy(&self.inner).await
    }

    /// Remembers a witness policy in the database (every front-end then has
    /// each checkpoint cosigned by its quorum before it is published), or
    /// with `None` forgets it. Returns whether that changed anything.
    pub async fn set_witness_policy(&self, text: Option<&str>) -> Result<bool> {
        witness::set_policy(&self.inner, text).await
    }

    /// Stops the background tasks (also on drop).
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

// The latest of `cps` (ascending), which must cover `size` entries.
// A stele_checkpoints row (its note) read back.
fn stored_checkpoint(r: &Row) -> Result<StoredCheckpoint> {
    let note: String = r.get(0);
    let checkpoint = stele_core::checkpoint::SignedCheckpoint::parse(note.as_bytes())
        .map_err(|e| db_err("stele_checkpoints", chain(&e)))?
        .checkpoint;
    Ok(StoredCheckpoint { checkpoint, note })
}

// The stored checkpoints of sizes `lo..=hi` in ascending order, read a page
// at a time as an export reaches them (held whole, they cost ~0.5 KB each,
// and a busy log signs one a second).
// Checkpoints of sizes lo..=hi, read a page at a time, each page with the
// timestamp tokens of its checkpoints (only those: an export reads the
// tokens it writes).
struct CheckpointPages {
    lo: u64,
    hi: u64,
    page: std::collections::VecDeque<StoredCheckpoint>,
    stamps: crate::anchor::Stamps,
    done: bool,
}

impl CheckpointPages {
    const PAGE: i64 = 64;

    fn new(lo: u64, hi: u64) -> Self {
        Self {
            lo,
            hi,
            page: std::collections::VecDeque::new(),
            stamps: crate::anchor::Stamps::default(),
            done: lo > hi,
        }
    }

    // The next checkpoint if its size is `size` (taken) and its timestamp
    // records as export lines, else None.
    async fn next_at(
        &mut self,
        inner: &Inner,
        size: u64,
    ) -> Result<Option<(StoredCheckpoint, String)>> {
        if self.page.is_empty() && !self.done {
            let got = inner
                .checkpoints_within(self.lo, self.hi, Self::PAGE)
                .await?;
            self.done = (got.len() as i64) < Self::PAGE;
            match got.last() {
                Some(c) => self.lo = c.checkpoint.size + 1,
                None => self.done = true,
            }
            let sizes: Vec<u64> = got.iter().map(|c| c.checkpoint.size).collect();
            self.stamps = anchor::timestamps_of(inner, &sizes).await?;
            self.page.extend(got);
        }
        match self.page.front() {
            Some(c) if c.checkpoint.size == size => {
                let lines = crate::anchor::lines_for(&self.stamps, size)?;
                Ok(self.page.pop_front().map(|c| (c, lines)))
            }
            _ => Ok(None),
        }
    }
}

fn covering(cps: &[StoredCheckpoint], size: u64) -> Result<&StoredCheckpoint> {
    match cps.last() {
        Some(c) if c.checkpoint.size >= size => Ok(c),
        c => Err(Error::OutOfRange(format!(
            "the latest checkpoint covers {} entries, fewer than the {size} needed",
            c.map_or(0, |c| c.checkpoint.size)
        ))),
    }
}

// A log without sealing tables (made by the library's `init`, or migrated
// in from a directory without `--seal-key`) cannot seal: an event that would
// be sealed is refused instead of stored in the clear.
fn refuse_sealed(i: usize, ev: &Value) -> Result<()> {
    fn marked(v: &Value) -> bool {
        match v {
            Value::Object(m) => {
                m.contains_key(stele_core::sealed::MARKER_MEMBER)
                    || m.contains_key(stele_core::sealed::PLACEHOLDER_MEMBER)
                    || m.values().any(marked)
            }
            Value::Array(a) => a.iter().any(marked),
            _ => false,
        }
    }
    if marked(ev) {
        return Err(Error::BadEvent {
            index: i,
            why: "this log has no sealing tables (made without a sealing key), so it cannot seal fields; nothing was written".into(),
        });
    }
    Ok(())
}

// The sequencer: takes the jobs waiting now (group commit) and sequences
// them in one transaction.
async fn sequencer(inner: Arc<Inner>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut bytes: usize = jobs[0].texts.iter().map(String::len).sum();
        while bytes < GROUP_BYTES {
            match rx.try_recv() {
                Ok(j) => {
                    bytes += j.texts.iter().map(String::len).sum::<usize>();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        inner.sequence(jobs).await;
    }
}

async fn integrator(weak: std::sync::Weak<Inner>) {
    // The last error said on stderr, and when: a step that keeps failing
    // (a refused edge or tile needs an operator) is said again every five
    // minutes, not at every round.
    let mut said: Option<(String, std::time::Instant)> = None;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        // Data keys kept past their time leave this front-end's memory.
        if let Some(seal) = &inner.seal {
            seal.sweep();
        }
        let every = inner.opts.integrate_every;
        // Errors (a database restart, object storage refusing writes) are
        // retried on the next round; the step is idempotent.
        match inner.integrate_once(false).await {
            Ok(Some(size)) => {
                if said.take().is_some() {
                    eprintln!("stele cluster: integration resumed (tree size {size})");
                }
                let _ = inner.publish().await;
                // A witnessed log's due checkpoint, in its own task.
                witness::spawn_round(&inner);
                // A backlog (a step takes at most STEP_ENTRIES): the next step now.
                if inner.next().await.is_ok_and(|next| next > size) {
                    continue;
                }
            }
            Ok(None) => {}
            Err(e) => {
                let text = e.to_string();
                let again = said
                    .as_ref()
                    .is_none_or(|(t, at)| *t != text || at.elapsed() >= Duration::from_secs(300));
                if again {
                    eprintln!(
                        "stele cluster: integration failed (retried every {every:?}; appends are kept in the database meanwhile): {text}"
                    );
                    said = Some((text, std::time::Instant::now()));
                }
            }
        }
        let woken = {
            let n = inner.wake.notified();
            tokio::time::timeout(every, n).await.is_ok()
        };
        drop(inner);
        if woken {
            // Let more appends land before the next step.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Inner {
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| {
            db_err(
                "connect",
                format!(
                    "{} (is PostgreSQL running and the --db URL right?)",
                    chain(&e)
                ),
            )
        })
    }

    async fn next(&self) -> Result<u64> {
        let client = self.client().await?;
        let row = row1(
            &client,
            "read stele_next",
            "SELECT next FROM stele_next WHERE id = 1",
            &[],
        )
        .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn sequence(&self, jobs: Vec<Job>) {
        match self.try_sequence(&jobs).await {
            Ok(results) => {
                for (job, r) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(r);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(db_err(
                        "sequence",
                        format!("{msg}; nothing was acknowledged (the entries may or may not be in the log)"),
                    )));
                }
            }
        }
    }

    // One transaction for every job: refused jobs get their error, jobs
    // whose idempotency key is known their earlier answer, the others their
    // receipts once the commit succeeded.
    async fn try_sequence(&self, jobs: &[Job]) -> Result<Vec<Result<Keyed>>> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| db_err("begin", chain(&e)))?;
        let row = row1(
            &tx,
            "lock stele_next",
            "SELECT next, prev, last_ts FROM stele_next WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?;
        let first = row.get::<_, i64>(0) as u64;
        let mut prev = Hash(
            row.get::<_, &[u8]>(1)
                .try_into()
                .map_err(|_| db_err("stele_next.prev", "not 32 bytes"))?,
        );
        let mut ts: i64 = row.get(2);
        // Keys used before, by any front-end (read under the row lock, so
        // every earlier sequencing transaction is visible).
        let mut known = self.known_requests(&tx, jobs).await?;
        // Data keys forgotten since a job was sealed (read under the row
        // lock): such a job is sealed again (STALE).
        let stale = match &self.seal {
            Some(s) => {
                let used = sealed::key_ids(jobs.iter().flat_map(|j| j.openings.iter().flatten()));
                s.forgotten_among(&tx, &used).await?
            }
            None => Default::default(),
        };
        let mut records: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut new_keys: Vec<(&RequestKey, u64, Vec<u8>)> = Vec::new();
        let now = (self.opts.clock)();
        let mut seq = first;
        let mut lines: Vec<u8> = Vec::new();
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Some(rk) = &job.request
                && let Some((digest, rs)) = known.get(&(rk.token.clone(), rk.key.clone()))
            {
                results.push(Ok(if *digest == UNREADABLE_BODY {
                    Keyed::Unreadable
                } else if *digest == migrate::UNKNOWN_BODY {
                    Keyed::Unchecked(rs.clone())
                } else if *digest == rk.digest {
                    Keyed::Replayed(rs.clone())
                } else {
                    Keyed::OtherBody
                }));
                continue;
            }
            if !stale.is_empty()
                && job
                    .openings
                    .iter()
                    .flatten()
                    .any(|p| stale.contains(&p.key()))
            {
                results.push(Err(Error::Sealed(sealed::STALE.into())));
                continue;
            }
            let (mark_seq, mark_prev, mark_ts, mark_len) = (seq, prev, ts, lines.len());
            let mark_records = records.len();
            let mut receipts = Vec::with_capacity(job.texts.len());
            let mut refused = None;
            for (i, ev) in job.texts.iter().enumerate() {
                // Never decreasing: a front-end whose clock is behind repeats the last ts.
                ts = ts.max(now);
                let Some(t) = Timestamp::from_unix_micros(ts) else {
                    refused = Some(Error::BadEvent {
                        index: i,
                        why: format!("clock reads {ts} µs since 1970, outside years 0000..9999"),
                    });
                    break;
                };
                match crate::log::finish_line(ev, seq, t, &prev) {
                    Ok(line) => {
                        // The openings, bound to the index (FORMAT 13.3).
                        if let (Some(s), Some(p)) =
                            (&self.seal, job.openings.get(i).filter(|p| !p.is_empty()))
                        {
                            let mut rec = Vec::new();
                            if let Err(e) = s.sealer.encrypt(seq, p, &mut rec) {
                                refused = Some(e);
                                break;
                            }
                            records.push((seq as i64, rec));
                        }
                        let h = leaf_hash(line.as_bytes());
                        receipts.push(Receipt { seq, leaf_hash: h });
                        lines.extend_from_slice(line.as_bytes());
                        lines.push(b'\n');
                        prev = h;
                        seq += 1;
                    }
                    Err(why) => {
                        refused = Some(Error::BadEvent { index: i, why });
                        break;
                    }
                }
            }
            match refused {
                Some(e) => {
                    (seq, prev, ts) = (mark_seq, mark_prev, mark_ts);
                    lines.truncate(mark_len);
                    records.truncate(mark_records);
                    results.push(Err(e));
                }
                None => {
                    if let (Some(rk), Some(r0)) = (&job.request, receipts.first()) {
                        let leaves = receipts.iter().flat_map(|r| r.leaf_hash.0).collect();
                        new_keys.push((rk, r0.seq, leaves));
                        let _ = known.insert(
                            (rk.token.clone(), rk.key.clone()),
                            (rk.digest, receipts.clone()),
                        );
                    }
                    results.push(Ok(Keyed::Appended(receipts)));
                }
            }
        }
        if seq == first {
            return Ok(results);
        }
        if !new_keys.is_empty() {
            let what = "insert into stele_requests";
            let stmt = prepared(
                &tx,
                what,
                "INSERT INTO stele_requests (token, key, digest, first, leaves) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int8[], $5::bytea[])",
            )
            .await?;
            let tokens: Vec<&str> = new_keys.iter().map(|k| k.0.token.as_str()).collect();
            let keys: Vec<&str> = new_keys.iter().map(|k| k.0.key.as_str()).collect();
            let digests: Vec<&[u8]> = new_keys.iter().map(|k| &k.0.digest[..]).collect();
            let firsts: Vec<i64> = new_keys.iter().map(|k| k.1 as i64).collect();
            let leaves: Vec<&[u8]> = new_keys.iter().map(|k| &k.2[..]).collect();
            let _ = tx
                .execute(&stmt, &[&tokens, &keys, &digests, &firsts, &leaves])
                .await
                .map_err(|e| db_err(what, chain(&e)))?;
        }
        if !records.is_empty() {
            sealed::insert_records(&tx, &records).await?;
        }
        let n = i32::try_from(seq - first).map_err(|_| db_err("sequence", "batch too large"))?;
        // The batch and the advanced row in one statement (one round trip
        // while the row is locked).
        exec1(
            &tx,
            "insert into stele_sequenced and advance stele_next",
            "WITH batch AS (INSERT INTO stele_sequenced (first, n, lines) VALUES ($1, $2, $3) RETURNING first) \
             UPDATE stele_next SET next = $4, prev = $5, last_ts = $6 WHERE id = 1 AND EXISTS (SELECT 1 FROM batch)",
            &[&(first as i64), &n, &lines, &(seq as i64), &&prev.0[..], &ts],
        )
        .await?;
        tx.commit().await.map_err(|e| db_err("commit", chain(&e)))?;
        Ok(results)
    }

    // The stored answers of the jobs' idempotency keys: (token, key) ->
    // (body hash, receipts).
    async fn known_requests(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        jobs: &[Job],
    ) -> Result<std::collections::HashMap<(String, String), ([u8; 32], Vec<Receipt>)>> {
        let mut out = std::collections::HashMap::new();
        let asked: Vec<&RequestKey> = jobs.iter().filter_map(|j| j.request.as_ref()).collect();
        if asked.is_empty() {
            return Ok(out);
        }
        let tokens: Vec<&str> = asked.iter().map(|k| k.token.as_str()).collect();
        let keys: Vec<&str> = asked.iter().map(|k| k.key.as_str()).collect();
        let what = "read stele_requests";
        for r in rows(
            tx,
            what,
            "SELECT r.token, r.key, r.digest, r.first, r.leaves FROM stele_requests r \
             JOIN unnest($1::text[], $2::text[]) AS a(token, key) USING (token, key)",
            &[&tokens, &keys],
        )
        .await?
        {
            let digest: [u8; 32] = r
                .get::<_, &[u8]>(2)
                .try_into()
                .map_err(|_| db_err(what, "digest is not 32 bytes"))?;
            let first = r.get::<_, i64>(3) as u64;
            let receipts = r
                .get::<_, &[u8]>(4)
                .chunks_exact(32)
                .zip(first..)
                .map(|(h, seq)| Receipt {
                    seq,
                    leaf_hash: Hash(h.try_into().expect("32 bytes")),
                })
                .collect();
            let _ = out.insert((r.get(0), r.get(1)), (digest, receipts));
        }
        Ok(out)
    }

    async fn get_object(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let p = child(&self.prefix, path);
        match self.store.get(&p).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| obj_err(&format!("read {p}"), e))?
                    .to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(obj_err(&format!("read {p}"), e)),
        }
    }

    // An object that must exist (an integration step's right edge).
    async fn get_object_of(&self, path: String) -> Result<Vec<u8>> {
        self.get_object(&path)
            .await?
            .ok_or_else(|| obj_err("integrate", format!("{path} is missing")))
    }

    // A create-only write; an object already there must hold these bytes.
    async fn put_immutable(&self, path: String, data: Vec<u8>) -> Result<()> {
        let p = child(&self.prefix, &path);
        let bytes = Bytes::from(data);
        match self
            .store
            .put_opts(&p, bytes.clone().into(), PutOptions::from(PutMode::Create))
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let have = self.get_object(&path).await?;
                if have.as_deref() == Some(&bytes[..]) {
                    Ok(())
                } else {
                    Err(Error::CheckpointMismatch {
                        dir: p.to_string().into(),
                        why: format!(
                            "object {p} already exists with other bytes than this integration computed: refusing to publish a second tree for the same size"
                        ),
                    })
                }
            }
            Err(e) => Err(obj_err(&format!("write {p}"), e)),
        }
    }

    async fn integrate_once(&self, sign: bool) -> Result<Option<u64>> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| db_err("begin", chain(&e)))?;
        let Some(row) = row_opt(
            &tx,
            "lock stele_integrated",
            "SELECT size, compact FROM stele_integrated WHERE id = 1 FOR UPDATE SKIP LOCKED",
            &[],
        )
        .await?
        else {
            return Ok(None);
        };
        let old = row.get::<_, i64>(0) as u64;
        let compact: Vec<u8> = row.get(1);
        let left: Vec<Hash> = compact
            .chunks_exact(32)
            .map(|c| Hash(c.try_into().expect("32 bytes")))
            .collect();
        let mut range = CompactRange::from_left_hashes(old, &left)
            .map_err(|e| db_err("stele_integrated.compact", chain(&e)))?;
        let rows = rows(
            &tx,
            "read stele_sequenced",
            "SELECT first, n, lines FROM stele_sequenced WHERE first >= $1 ORDER BY first LIMIT 256",
            &[&(old as i64)],
        )
        .await?;
        let mut batches: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut expect = old;
        for r in &rows {
            let first = r.get::<_, i64>(0) as u64;
            let n = r.get::<_, i32>(1) as u64;
            if first != expect {
                return Err(db_err(
                    "integrate",
                    format!(
                        "stele_sequenced has no batch at entry {expect} (next starts at {first})"
                    ),
                ));
            }
            if !batches.is_empty() && expect + n - old > STEP_ENTRIES {
                break;
            }
            batches.push((n, r.get::<_, Vec<u8>>(2)));
            expect += n;
        }
        let new = expect;
        if new > old {
            // The old tree's right edge, from its partial tiles (read at once).
            let edge_tiles = step::edge_tiles(old, new);
            let reads = edge_tiles.iter().map(|t| self.get_object_of(t.path()));
            let bundle = tile_in_tree(0, old / 256, old).filter(|_| !old.is_multiple_of(256));
            let (read, held) = futures::future::join(futures::future::try_join_all(reads), async {
                match bundle {
                    Some(t) => self.get_object_of(t.entries_path()).await,
                    None => Ok(Vec::new()),
                }
            })
            .await;
            let (read, held) = (read?, held?);
            let mut edges: Vec<Vec<Hash>> = Vec::new();
            for (t, bytes) in edge_tiles.iter().zip(read) {
                if bytes.len() != t.byte_len() {
                    return Err(obj_err(
                        "integrate",
                        format!("{} has the wrong length", t.path()),
                    ));
                }
                edges.resize(usize::from(t.level) + 1, Vec::new());
                edges[usize::from(t.level)] = bytes
                    .chunks_exact(32)
                    .map(|c| Hash(c.try_into().expect("32 bytes")))
                    .collect();
            }
            // Hashing and tile building off the runtime's threads (the
            // sequencer and the HTTP handlers run there).
            let (s, leaves) = tokio::task::spawn_blocking(move || {
                step::prepare(old, &left, &batches, &edges, &held)
            })
            .await
            .map_err(|e| db_err("integrate", chain(&e)))?
            .map_err(|e| db_err("integrate", e))?;
            let puts: Vec<(String, Vec<u8>)> = s
                .bundles
                .into_iter()
                .map(|(t, b)| (t.entries_path(), b))
                .chain(s.tiles.into_iter().map(|(t, b)| (t.path(), b)))
                .collect();
            let mut results = futures::stream::iter(puts)
                .map(|(p, b)| self.put_immutable(p, b))
                .buffer_unordered(PUTS_IN_FLIGHT);
            while let Some(r) = results.next().await {
                r?;
            }
            drop(results);
            for h in leaves {
                range.push(h);
            }
            let compact: Vec<u8> = range.hashes().flat_map(|h| h.0).collect();
            exec1(
                &tx,
                "update stele_integrated",
                "UPDATE stele_integrated SET size = $1, compact = $2 WHERE id = 1",
                &[&(new as i64), &compact],
            )
            .await?;
            let what = "delete integrated rows";
            let del = prepared(&tx, what, "DELETE FROM stele_sequenced WHERE first < $1").await?;
            let _ = tx
                .execute(&del, &[&(new as i64)])
                .await
                .map_err(|e| db_err(what, chain(&e)))?;
            // The idempotency keys kept: the latest IDEMPOTENCY_KEYS.
            let what = "forget old idempotency keys";
            let old_keys = prepared(
                &tx,
                what,
                "DELETE FROM stele_requests WHERE first < \
                 (SELECT first FROM stele_requests ORDER BY first DESC OFFSET $1 LIMIT 1)",
            )
            .await?;
            let _ = tx
                .execute(&old_keys, &[&(crate::serve::IDEMPOTENCY_KEYS as i64)])
                .await
                .map_err(|e| db_err(what, chain(&e)))?;
        }
        // A checkpoint when one is due (or asked for), in the same
        // transaction: a stored checkpoint never exceeds the integrated size.
        let last = row_opt(
            &tx,
            "read stele_checkpoints",
            "SELECT size, extract(epoch FROM now() - signed_at)::float8 FROM stele_checkpoints ORDER BY size DESC LIMIT 1",
            &[],
        )
        .await?;
        let (signed, age) = last.map_or((0u64, f64::INFINITY), |r| {
            (r.get::<_, i64>(0) as u64, r.get::<_, f64>(1))
        });
        let due = new > signed
            && (sign
                || new - signed >= self.opts.checkpoint_every
                || age >= self.opts.checkpoint_interval.as_secs_f64());
        // A witnessed log's checkpoints are signed by witness rounds.
        if due
            && let Some(signer) = &self.signer
            && !witness::witnessed(&tx).await?
        {
            let cp = Checkpoint {
                origin: self.info.origin.clone(),
                size: new,
                root: range.root(),
                extensions: Vec::new(),
            };
            let note = cp.sign(signer).map_err(|e| Error::Sign(e.to_string()))?;
            exec1(
                &tx,
                "insert into stele_checkpoints",
                "INSERT INTO stele_checkpoints (size, note) VALUES ($1, $2)",
                &[&(new as i64), &note],
            )
            .await?;
        }
        tx.commit().await.map_err(|e| db_err("commit", chain(&e)))?;
        let _ = self
            .seen
            .fetch_max(new, std::sync::atomic::Ordering::Relaxed);
        Ok(Some(new))
    }

    // The stored checkpoints of sizes `lo..=hi`, ascending, at most `limit`.
    async fn checkpoints_within(
        &self,
        lo: u64,
        hi: u64,
        limit: i64,
    ) -> Result<Vec<StoredCheckpoint>> {
        let client = self.client().await?;
        let (lo, hi) = (
            lo.min(i64::MAX as u64) as i64,
            hi.min(i64::MAX as u64) as i64,
        );
        rows(
            &client,
            "read stele_checkpoints",
            "SELECT note FROM stele_checkpoints WHERE size >= $1 AND size <= $2 ORDER BY size LIMIT $3",
            &[&lo, &hi, &limit],
        )
        .await?
        .iter()
        .map(stored_checkpoint)
        .collect()
    }

    async fn checkpoints(&self, latest: Option<i64>) -> Result<Vec<StoredCheckpoint>> {
        let client = self.client().await?;
        let what = "read stele_checkpoints";
        let rows = match latest {
            Some(n) => {
                rows(
                    &client,
                    what,
                    "SELECT note FROM stele_checkpoints ORDER BY size DESC LIMIT $1",
                    &[&n],
                )
                .await?
            }
            None => {
                rows(
                    &client,
                    what,
                    "SELECT note FROM stele_checkpoints ORDER BY size",
                    &[],
                )
                .await?
            }
        };
        rows.iter().map(stored_checkpoint).collect()
    }

    // Moves the published checkpoint object to the latest stored
    // checkpoint, by compare-and-swap; never backwards.
    async fn publish(&self) -> Result<()> {
        // Only a checkpoint whose tiles are all written (an imported log
        // stores its checkpoints before it is integrated).
        let client = self.client().await?;
        let row = row_opt(
            &client,
            "read stele_checkpoints",
            "SELECT note FROM stele_checkpoints WHERE size <= (SELECT size FROM stele_integrated WHERE id = 1) ORDER BY size DESC LIMIT 1",
            &[],
        )
        .await?;
        drop(client);
        let Some(row) = row else {
            return Ok(());
        };
        let note: String = row.get(0);
        let latest = StoredCheckpoint {
            checkpoint: stele_core::checkpoint::SignedCheckpoint::parse(note.as_bytes())
                .map_err(|e| db_err("stele_checkpoints", chain(&e)))?
                .checkpoint,
            note,
        };
        let p = child(&self.prefix, CHECKPOINT_OBJECT);
        for _ in 0..100 {
            let (mode, have) = match self.store.get(&p).await {
                Ok(r) => {
                    let v = UpdateVersion {
                        e_tag: r.meta.e_tag.clone(),
                        version: r.meta.version.clone(),
                    };
                    let b = r.bytes().await.map_err(|e| obj_err("read checkpoint", e))?;
                    (PutMode::Update(v), Some(b))
                }
                Err(object_store::Error::NotFound { .. }) => (PutMode::Create, None),
                Err(e) => return Err(obj_err("read checkpoint", e)),
            };
            if let Some(b) = &have {
                let size = std::str::from_utf8(b)
                    .ok()
                    .and_then(|t| t.lines().nth(1))
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                if size >= latest.checkpoint.size {
                    return Ok(());
                }
            }
            match self
                .store
                .put_opts(
                    &p,
                    Bytes::from(latest.note.clone().into_bytes()).into(),
                    PutOptions::from(mode),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => continue,
                Err(e) => return Err(obj_err("write checkpoint", e)),
            }
        }
        Err(obj_err(
            "write checkpoint",
            "lost the compare-and-swap 100 times",
        ))
    }

    async fn integrated(&self) -> Result<u64> {
        let client = self.client().await?;
        let row = row1(
            &client,
            "read stele_integrated",
            "SELECT size FROM stele_integrated WHERE id = 1",
            &[],
        )
        .await?;
        let size = row.get::<_, i64>(0) as u64;
        let _ = self
            .seen
            .fetch_max(size, std::sync::atomic::Ordering::Relaxed);
        Ok(size)
    }

    async fn tile(&self, tile: Tile, entries: bool, size: u64) -> Result<Option<Vec<u8>>> {
        let name = |t: &Tile| if entries { t.entries_path() } else { t.path() };
        if let Some(b) = self.get_object(&name(&tile)).await? {
            return Ok(Some(b));
        }
        if !tile.is_partial() {
            return Ok(None);
        }
        // A partial width no step stopped at: cut it from the right edge's
        // wider tile (the first hashes or entries are the same).
        let cur = self.integrated().await?;
        let Some(wide) = tile_in_tree(tile.level, tile.index, cur.max(size)) else {
            return Ok(None);
        };
        if wide.width <= tile.width {
            return Ok(None);
        }
        let Some(b) = self.get_object(&name(&wide)).await? else {
            return Ok(None);
        };
        if entries {
            let items = parse_entry_bundle(&b).map_err(|e| obj_err("read bundle", e))?;
            let out = stele_core::tiles::encode_entry_bundle(
                items.into_iter().take(usize::from(tile.width)),
            )
            .map_err(|e| obj_err("read bundle", e))?;
            Ok(Some(out))
        } else {
            Ok(Some(
                b.get(..tile.byte_len())
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
            ))
        }
    }

    async fn tile_set(&self, size: u64, tiles: &[Tile]) -> Result<TileSet> {
        let mut set = TileSet::new(size);
        let mut tiles = tiles.to_vec();
        tiles.sort();
        tiles.dedup();
        let mut fetched = futures::stream::iter(tiles)
            .map(|t| async move { (t, self.tile(t, false, size).await) })
            .buffer_unordered(PUTS_IN_FLIGHT);
        while let Some((t, b)) = fetched.next().await {
            let b = b?.ok_or_else(|| obj_err("read tile", format!("{} is missing", t.path())))?;
            set.insert(t, &b).map_err(|e| obj_err("read tile", e))?;
        }
        Ok(set)
    }

    async fn entries(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::with_capacity((to - from) as usize);
        let mut at = from;
        while at < to {
            let index = at / 256;
            let t = tile_in_tree(0, index, to)
                .ok_or_else(|| Error::OutOfRange(format!("entry {at} is beyond {to}")))?;
            let b = self.tile(t, true, to).await?.ok_or_else(|| {
                obj_err("read entries", format!("{} is missing", t.entries_path()))
            })?;
            let items = parse_entry_bundle(&b).map_err(|e| obj_err("read bundle", e))?;
            let lo = (at - t.first()) as usize;
            let hi = ((to - t.first()) as usize).min(items.len());
            for e in &items[lo..hi] {
                out.push(e.to_vec());
            }
            at = t.first() + hi as u64;
            if hi <= lo {
                return Err(obj_err(
                    "read entries",
                    format!("{} is short", t.entries_path()),
                ));
            }
        }
        Ok(out)
    }
}
