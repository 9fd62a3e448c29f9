//! `stele serve`: the log over HTTP. Ingestion, C2SP tlog-tiles reads,
//! proofs, entries and exports (each read of entries recorded as a
//! `stele.access` entry), the verifier page, metrics. writer/README.md
//! ("HTTP service") is the user's description, with every limit and
//! timeout, its default and its flag.
//!
//! Appends go straight to [`Log::append_batch_by`] on a blocking thread: the
//! log is the one sequencer, and concurrent requests share its group commit
//! (one write, one fdatasync). Each request stays all-or-nothing: the log
//! checks every event of a call before it publishes any.
//!
//! ```no_run
//! use stele_writer::serve::{Config, Server};
//! let mut c = Config::new("/var/log/audit");
//! c.listen = "127.0.0.1:0".parse().unwrap();
//! let server = Server::bind(c).unwrap();
//! let stop = stele_writer::serve::shutdown_signal(&server.runtime());
//! println!("listening on {}", server.local_addr());
//! let stopped = server.run(stop).unwrap();
//! println!("{} entries", stopped.size);
//! ```

// reason: handlers return a ready error `Response` early with `?`; it is
// built once per failed request, so boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod auth;
mod body;
mod cluster;
mod k8s;
mod metrics;
mod net;
mod query;
pub mod witness;

pub use auth::{LiveTokens, Scopes, Token, Tokens, add_token, list_tokens, remove_token};
pub use net::Limits;

use crate::access::{Entries, Reader, access_event};
use crate::{Error, Log, LogOptions, Receipt, Result, StoredCheckpoint, View};
use auth::Bearer;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path as UrlPath, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics::{Metrics, TimingFs};
use net::NetStats;
use query::Query;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use stele_core::merkle::HashReader;
use stele_core::tiles::{TILE_HEIGHT, TILE_WIDTH, Tile, TilePath, tile_exists};
use tokio::sync::{Semaphore, mpsc};

/// The verifier page's Content-Security-Policy: web/csp.txt, its one copy.
pub const CSP: &str = include_str!("../../../web/csp.txt").trim_ascii();

/// What one request is charged against [`Config::max_inflight_bytes`]:
/// this many times its body's length (events parsed from many tiny members
/// take up to about this much memory).
pub const INFLIGHT_FACTOR: usize = 32;

/// Most requests appending at once (each waits for its group commit on a
/// blocking thread); more wait for a turn.
pub const APPENDERS: usize = 128;

/// The request header carrying an idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Who may read what without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reads {
    /// Every read needs a token with the `read` scope (the default with a tokens file).
    Token,
    /// Hash-only data (checkpoint, hash tiles, proofs) is public; entries,
    /// entry bundles, exports and metrics need a `read` token: for monitors
    /// and witnesses.
    PublicHashes,
    /// No read needs a token (the default without one).
    Public,
}

/// How a [`Server`] runs: what `stele serve` takes as options. The defaults
/// are [`Config::new`]'s; writer/README.md lists them with their flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// The log directory (made with `stele init`).
    pub dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Tokens file (NAME sha256:HEX [SCOPES] per line). Without it, every write is refused.
    pub tokens: Option<PathBuf>,
    /// Who may read; `None`: [`Reads::Token`] with a tokens file, else [`Reads::Public`].
    pub reads: Option<Reads>,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body: usize,
    /// Most events in one request (413 beyond).
    pub max_events: usize,
    /// Memory for requests being read, parsed and appended at once, each
    /// charged [`INFLIGHT_FACTOR`] times its body (at most all of it); a
    /// request waits for room up to the body timeout (then 503).
    pub max_inflight_bytes: usize,
    /// Time for a whole request body to arrive (408 beyond).
    pub body_timeout: Duration,
    /// Connection limits and timeouts.
    pub limits: Limits,
    /// Most exports streaming at once (429 beyond).
    pub max_exports: usize,
    /// Memory for responses built whole and not yet sent (pages of
    /// `GET /v1/entries`, entry bundles, `GET /v1/sealed`): each is charged
    /// its size until the client has taken it or its connection is gone; a
    /// response that finds no room waits [`READ_BUDGET_WAIT`], then 503.
    pub max_read_bytes: usize,
    /// Access records one reader (token name or address) may cause per
    /// minute, after a burst of as many (429 beyond).
    pub access_per_minute: u32,
    /// Shortest time between two checkpoints a read forces (a read that
    /// needs a newer one waits for it).
    pub read_sign_interval: Duration,
    /// Sign a checkpoint when this many entries are unsigned.
    pub checkpoint_every: u64,
    /// Sign a checkpoint this long after the last one if the tree grew.
    pub checkpoint_interval: Duration,
    /// Directory of the verifier page served at `/`; `None`: web/dist if it exists.
    pub web: Option<PathBuf>,
    /// Most entries one `GET /v1/entries` returns.
    pub page_size: u64,
    /// Origins allowed to read entries and exports cross-origin with a
    /// token (CORS); hash-only data is open to every origin.
    pub cors_origins: Vec<String>,
    /// Proxies whose header ([`Config::proxy_header`]) names the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// The one header the trusted proxies set (the others a client may send
    /// through them unchanged, naming any address it likes).
    pub proxy_header: ProxyHeader,
    /// The file system under the log (`None`: the real one; tests inject faults).
    pub fs: Option<Arc<dyn crate::fs::Fs>>,
    /// Serve the directory read-only (a mirror, or a log another process
    /// writes): no lock, no key, no writes (405), no signing, no stele.access
    /// records (unless `access_log`); a mirror's lag on /metrics.
    pub read_only: bool,
    /// With `read_only`: the log where reads are recorded as `stele.access`
    /// (`stele serve --read-only --access-log DIR`). Without it a read-only
    /// server records nothing, so it serves no sealed-field openings.
    pub access_log: Option<PathBuf>,
    /// Serve a log kept in PostgreSQL and object storage instead of `dir`
    /// (`stele serve --db URL --objects URL`), signing with the key file
    /// `signing_key`. Several servers may serve one such log at once.
    pub cluster: Option<crate::cluster::Location>,
    /// The private key file of a `cluster` log.
    pub signing_key: Option<PathBuf>,
    /// The sealing key file of a `cluster` log (default: beside the
    /// signing key, `FILE.seal`).
    pub seal_key: Option<PathBuf>,
    /// Witnesses that must cosign each checkpoint before it is published
    /// (`--policy`, docs/FORMAT.md 14.5).
    pub cosign: Option<Arc<dyn crate::witness::Cosign>>,
    /// Anchoring counters shown on `/metrics` (`stele serve --tsa`).
    pub anchor_stats: Option<Arc<crate::anchor::AnchorStats>>,
}

impl Config {
    /// The defaults of `stele serve DIR`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tokens: None,
            reads: None,
            max_body: 16 << 20,
            max_events: 10_000,
            max_inflight_bytes: 512 << 20,
            body_timeout: Duration::from_secs(60),
            limits: Limits::default(),
            max_exports: 4,
            max_read_bytes: 256 << 20,
            access_per_minute: 600,
            read_sign_interval: Duration::from_secs(1),
            checkpoint_every: 1024,
            checkpoint_interval: Duration::from_secs(10),
            web: None,
            page_size: 1000,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            proxy_header: ProxyHeader::XForwardedFor,
            fs: None,
            read_only: false,
            access_log: None,
            cluster: None,
            signing_key: None,
            seal_key: None,
            cosign: None,
            anchor_stats: None,
        }
    }
}

/// A refused or failed request, as the HTTP layer answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    status: u16,
    msg: String,
    item: Option<usize>,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::BadEvent { index, why } => Self {
                status: if why.starts_with("entry would be") {
                    413
                } else {
                    400
                },
                msg: format!("item {index}: {why}"),
                item: Some(index),
            },
            Error::Poisoned { .. } => Self {
                status: 503,
                msg: format!("{e}; nothing was acknowledged"),
                item: None,
            },
            Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                Self {
                    status: 507,
                    msg: format!("{e}; nothing was acknowledged"),
                    item: None,
                }
            }
            e => Self {
                status: 500,
                msg: format!("{e}; nothing was acknowledged"),
                item: None,
            },
        }
    }
}

// What /healthz reports after a failure.
#[derive(Debug, Default)]
struct Health {
    // The log refuses appends until reopened: the cause.
    poisoned: Option<String>,
    // The last append failed for lack of space (rolled back; cleared by the
    // next append that succeeds).
    storage_full: Option<String>,
}

// A token bucket per reader for access records.
#[derive(Debug)]
struct Buckets {
    per_minute: f64,
    map: HashMap<String, (f64, Instant)>,
}

impl Buckets {
    // Takes one record from `who`'s bucket; Err(seconds to wait) when empty.
    fn take(&mut self, who: &str) -> Result<(), u64> {
        let now = Instant::now();
        let cap = self.per_minute;
        let rate = cap / 60.0;
        if self.map.len() > 10_000 {
            // Forget readers whose bucket is full again; bounded memory.
            self.map
                .retain(|_, (n, t)| *n + now.duration_since(*t).as_secs_f64() * rate < cap);
            if self.map.len() > 10_000 {
                self.map.clear();
            }
        }
        let (n, t) = self.map.entry(who.to_string()).or_insert((cap, now));
        *n = (*n + now.duration_since(*t).as_secs_f64() * rate).min(cap);
        *t = now;
        if *n >= 1.0 {
            *n -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *n) / rate).ceil() as u64)
        }
    }
}

/// How long one `stele.access` record of entry bundles covers its reader's
/// reads of its range (docs/FORMAT.md 2.6).
pub const BUNDLE_GRANT_SECONDS: u64 = 60;
/// Most entry bundles one such record covers (65,536 entries).
pub const BUNDLE_GRANT_MAX: u64 = 256;
/// How far past the end of a reader's record (in bundles, at least) a read
/// still continues it: parallel fetches arrive out of order.
pub const BUNDLE_GRANT_SLACK: u64 = 16;

// Reads of entry bundles: one access record per reader covers a range of
// entries for BUNDLE_GRANT_SECONDS; a reader reading on past the end of its
// range gets a new record for twice as many bundles (1, 2, 4, ... 256), so a
// sequential catch-up of n bundles costs log2(256) + n / 256 records, and no
// bundle is sent before a durable record covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grant {
    // Entries from..to.
    from: u64,
    to: u64,
    // Bundles this grant was sized for.
    bundles: u64,
    at: Instant,
}

impl Grant {
    fn live(&self, now: Instant) -> bool {
        now.duration_since(self.at) < Duration::from_secs(BUNDLE_GRANT_SECONDS)
    }

    fn covers(&self, from: u64, to: u64, now: Instant) -> bool {
        self.live(now) && self.from <= from && to <= self.to
    }

    // The range the next record covers, for a read of entries from..to of a
    // tree of `size` entries that no live grant of the reader covers; `prev`
    // is the reader's grant reaching furthest among those starting at or
    // before `from`. A read that starts within max(bundles, 16) bundles
    // past its end continues it, from its end (the gap included), with twice
    // as many bundles; any other read gets a record for its own bundle only.
    fn next(prev: Option<&Self>, from: u64, to: u64, size: u64, now: Instant) -> Self {
        let w = u64::from(TILE_WIDTH);
        match prev {
            Some(g)
                if g.live(now)
                    && g.from <= from
                    && from
                        <= g.to.saturating_add(
                            g.bundles.max(BUNDLE_GRANT_SLACK).saturating_mul(w),
                        ) =>
            {
                let bundles = (g.bundles * 2).min(BUNDLE_GRANT_MAX);
                let start = from.min(g.to);
                let end = start.saturating_add(bundles * w).min(size).max(to);
                Self {
                    from: start,
                    to: end,
                    bundles,
                    at: now,
                }
            }
            _ => Self {
                from,
                to,
                bundles: 1,
                at: now,
            },
        }
    }
}

// Most live grants kept per reader (parallel fetches arrive a little out
// of order; each keeps its coverage while the frontier moves on).
const GRANTS_PER_READER: usize = 8;

// Each reader's live grants, behind its own lock: concurrent reads of one
// reader wait for the record another of its reads is writing (and are then
// usually covered by it).
type GrantSlot = Arc<tokio::sync::Mutex<Vec<Grant>>>;

#[derive(Debug, Default)]
struct Grants {
    map: HashMap<String, GrantSlot>,
}

impl Grants {
    fn slot(&mut self, reader: &str) -> GrantSlot {
        if self.map.len() > 10_000 && !self.map.contains_key(reader) {
            // Bounded memory: forget expired grants, else all. Forgetting
            // one only costs a new record at the reader's next read.
            let now = Instant::now();
            self.map.retain(|_, s| match s.try_lock() {
                Ok(g) => g.iter().any(|g| g.live(now)),
                Err(_) => true,
            });
            if self.map.len() > 10_000 {
                self.map.clear();
            }
        }
        self.map.entry(reader.to_string()).or_default().clone()
    }
}

// Idempotency: (token, key) -> the request's body hash and receipts.
#[derive(Debug)]
enum Done {
    // A request with this key is being appended now.
    Pending,
    // Appended: body SHA-256 with the log's Log::sealed_changes when it was
    // kept (None when rebuilt from the log), and receipts.
    Receipts(Option<([u8; 32], u64)>, Kept),
}

// A request's receipts as remembered: its entries are consecutive (one
// append_batch), so their indices, the leaf hashes read back from the log
// on a replay. Kept whole (40 bytes a receipt, up to --max-events a request
// and 10,000 requests a token) they held ~4 GB a write token at worst, and
// RSS grew 62 -> 125 MB over 150 requests of 10,000 events.
#[derive(Debug, Clone, PartialEq)]
enum Kept {
    Seqs(std::ops::Range<u64>),
    // Not consecutive (never from a file log's append): the receipts.
    List(Arc<Vec<Receipt>>),
}

impl From<&[Receipt]> for Kept {
    fn from(rs: &[Receipt]) -> Self {
        let first = rs.first().map_or(0, |r| r.seq);
        if (first..).zip(rs).all(|(seq, r)| r.seq == seq) {
            Self::Seqs(first..first + rs.len() as u64)
        } else {
            Self::List(Arc::new(rs.to_vec()))
        }
    }
}

// The receipts a kept request got, its leaf hashes read from the log.
async fn kept_receipts(app: &Arc<Inner>, kept: Kept) -> Result<Arc<Vec<Receipt>>, Response> {
    let seqs = match kept {
        Kept::List(rs) => return Ok(rs),
        Kept::Seqs(seqs) => seqs,
    };
    let Some(log) = app.log.clone() else {
        return Err(error(
            500,
            "internal error: no log to read receipts from",
            None,
        ));
    };
    blocking(move || {
        let view = log.view();
        seqs.map(|seq| {
            view.leaf_hash(seq)
                .map(|leaf_hash| Receipt { seq, leaf_hash })
        })
        .collect::<Result<Vec<_>>>()
        .map(Arc::new)
        .map_err(io_fail)
    })
    .await
}

#[derive(Debug, Default)]
struct Idempotency {
    map: HashMap<(String, String), Done>,
    // Each token's keys, oldest first: every token has its own budget, so
    // one token's requests never push another's keys out.
    order: HashMap<String, std::collections::VecDeque<String>>,
}

/// Most idempotency keys remembered for each token (its oldest is forgotten
/// first); on start the keys of the last this many entries are read back
/// from the log.
pub const IDEMPOTENCY_KEYS: usize = 10_000;

impl Idempotency {
    fn remember(&mut self, k: (String, String), d: Done) {
        if !self.map.contains_key(&k) {
            let order = self.order.entry(k.0.clone()).or_default();
            order.push_back(k.1.clone());
            while order.len() > IDEMPOTENCY_KEYS {
                if let Some(old) = order.pop_front() {
                    let _ = self.map.remove(&(k.0.clone(), old));
                }
            }
        }
        let _ = self.map.insert(k, d);
    }

    // A request that failed: its key is forgotten, from the eviction order
    // too (left there, failed requests pushed every other key out: a
    // client's retry after 10,000 bad requests was appended twice).
    fn forget(&mut self, k: &(String, String)) {
        if self.map.remove(k).is_some()
            && let Some(order) = self.order.get_mut(&k.0)
            && let Some(i) = order.iter().rposition(|o| *o == k.1)
        {
            let _ = order.remove(i);
            if order.is_empty() {
                let _ = self.order.remove(&k.0);
            }
        }
    }
}

// A directory served read-only: a view reopened when its files change
// (keyed by the lengths of the entries, tree, index and checkpoints files).
struct ReadOnly {
    dir: PathBuf,
    cache: Mutex<Option<CachedView>>,
}

type CachedView = ((u64, u64, u64), Arc<View>, crate::view::ReadCheckpoints);

impl ReadOnly {
    fn view(&self) -> Result<Arc<View>> {
        use crate::log::files;
        let len = |n: &str| std::fs::metadata(self.dir.join(n)).map_or(0, |m| m.len());
        let key = (
            len(files::ENTRIES),
            len(files::TREE) ^ (len(files::INDEX) << 40),
            len(files::CHECKPOINTS),
        );
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, v, _)) = c.as_ref()
            && *k == key
        {
            return Ok(v.clone());
        }
        // Only the checkpoints appended since are parsed.
        let (v, read) = View::open_read_only_after(&self.dir, c.as_ref().map(|c| &c.2))?;
        let v = Arc::new(v);
        *c = Some((key, v.clone(), read));
        Ok(v)
    }
}

struct Inner {
    log: Option<Arc<Log>>,
    // Where a read-only server records reads (`--access-log`).
    access_log: Option<Arc<Log>>,
    cluster: Option<Arc<crate::cluster::Cluster>>,
    ro: Option<ReadOnly>,
    tokens: LiveTokens,
    reads: Reads,
    max_body: usize,
    max_events: usize,
    body_timeout: Duration,
    inflight: Arc<Semaphore>,
    // Each write token's share of `inflight` (half of it), so that one
    // token's slow bodies never hold the room every other writer needs.
    inflight_shares: Mutex<HashMap<String, Arc<Semaphore>>>,
    inflight_kib: usize,
    exports: Arc<Semaphore>,
    // Room for responses built whole until they are sent (--max-read-bytes), in KiB.
    read_budget: Arc<Semaphore>,
    read_budget_kib: usize,
    read_ips: net::PerIp,
    // A cluster's pages and bundles while they are fetched (their size is
    // known only then): the most they could take, for that short time.
    fetch_budget: Arc<Semaphore>,
    /// Exports streaming per client address, and the most one may hold
    /// (0: no share, as behind a reverse proxy).
    export_ips: net::PerIp,
    export_share: usize,
    appenders: Semaphore,
    page: u64,
    web: Option<PathBuf>,
    metrics: Arc<Metrics>,
    net: Arc<NetStats>,
    health: Mutex<Health>,
    access: Mutex<Buckets>,
    grants: Mutex<Grants>,
    sign_gate: tokio::sync::Mutex<Option<Instant>>,
    read_sign_interval: Duration,
    cors: Vec<String>,
    proxies: (Vec<IpAddr>, ProxyHeader),
    idem: Mutex<Idempotency>,
    forced_signatures: AtomicU64,
    anchor_stats: Option<Arc<crate::anchor::AnchorStats>>,
}

#[derive(Clone)]
struct App(Arc<Inner>);

/// Who is asking: the token (if a valid one came), and the client address.
struct Caller {
    token: Option<Token>,
    remote: SocketAddr,
}

impl Caller {
    fn name(&self) -> Option<String> {
        self.token.as_ref().map(|t| t.name.clone())
    }
    fn reader(&self) -> Reader {
        Reader::Http {
            token: self.name(),
            remote: self.remote,
        }
    }
    // The rate bucket: the token, else the address (an IPv6 client by its
    // /64, which one host can rotate through).
    fn bucket(&self) -> String {
        match (self.name(), self.remote.ip()) {
            (Some(n), _) => format!("token {n}"),
            (None, IpAddr::V6(a)) if a.to_ipv4_mapped().is_none() => {
                let s = a.segments();
                format!("ip {:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            (None, ip) => format!("ip {}", ip.to_canonical()),
        }
    }
}

// What a read touches: hash-only data, or entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    Hashes,
    Entries,
}

fn error(status: u16, msg: impl Into<String>, item: Option<usize>) -> Response {
    let mut msg = msg.into();
    if status == 500 {
        msg = internal(&msg);
    }
    let mut body = json!({ "error": msg });
    if let Some(i) = item {
        body["item"] = json!(i);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, format!("{body}\n")).into_response();
    let _ = r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

// What a client is told of an internal error: a number to quote to the
// operator, whose stderr has the cause. The cause names the log's files
// (absolute paths) and is no business of a client's, anonymous readers of
// public hashes included. Whether anything was written is kept.
fn internal(cause: &str) -> String {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let n = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
    eprintln!("stele serve: internal error #{n}: {cause}");
    let ack = [
        "nothing was acknowledged",
        "nothing was written",
        "nothing was read",
    ]
    .into_iter()
    .find(|s| cause.ends_with(s))
    .map_or(String::new(), |s| format!("; {s}"));
    format!("internal error #{n} (the cause is in the server's log){ack}")
}

fn fail(f: Failure) -> Response {
    error(f.status, f.msg, f.item)
}

fn bad_query(msg: String) -> Response {
    error(400, msg, None)
}

fn unauthorized(msg: &str) -> Response {
    let mut r = error(401, msg, None);
    let _ = r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"stele\""),
    );
    r
}

// The tokens file changed into one that cannot be used: no token is
// accepted until it is mended (the cause is on the server's stderr).
fn unavailable_tokens() -> Response {
    error(
        503,
        "the server's tokens file cannot be used right now (the cause is in the server's log); no token is accepted",
        None,
    )
}

fn too_many(msg: String, retry_after: u64) -> Response {
    let mut r = error(429, msg, None);
    let _ = r
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    r
}

// The client's address: the peer, or behind a trusted proxy the last
// address its Forwarded / X-Forwarded-For header names that is not itself
// a trusted proxy.
/// The header a trusted proxy names the client in (`--proxy-header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, …` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1` .
    Forwarded,
}

// The client of a request: the peer, or for a trusted proxy the last
// address in its header (`header`, only that one: a proxy that appends to
// X-Forwarded-For passes a client's own `Forwarded` through unchanged) that
// is not itself a trusted proxy.
fn client_addr(
    peer: SocketAddr,
    headers: &HeaderMap,
    proxies: &[IpAddr],
    header: ProxyHeader,
) -> SocketAddr {
    if !proxies.contains(&peer.ip()) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    match header {
        ProxyHeader::Forwarded => {
            for v in headers.get_all(header::FORWARDED) {
                for elem in v.to_str().unwrap_or("").split(',') {
                    for pair in elem.split(';') {
                        let Some((k, val)) = pair.trim().split_once('=') else {
                            continue;
                        };
                        if !k.trim().eq_ignore_ascii_case("for") {
                            continue;
                        }
                        let val = val.trim().trim_matches('"');
                        // for=192.0.2.60, for="[2001:db8::1]:4711", for=1.2.3.4:80
                        let host = if let Some(rest) = val.strip_prefix('[') {
                            rest.split(']').next().unwrap_or("")
                        } else {
                            val.split(':').next().unwrap_or("")
                        };
                        if let Ok(ip) = host.parse() {
                            hops.push(ip);
                        }
                    }
                }
            }
        }
        ProxyHeader::XForwardedFor => {
            for v in headers.get_all(HeaderName::from_static("x-forwarded-for")) {
                for a in v.to_str().unwrap_or("").split(',') {
                    if let Ok(ip) = a.trim().parse() {
                        hops.push(ip);
                    }
                }
            }
        }
    }
    hops.into_iter()
        .rev()
        .find(|ip| !proxies.contains(ip))
        .map_or(peer, |ip| SocketAddr::new(ip, 0))
}

impl Inner {
    // The caller's token, from the tokens as they are now (the file is
    // read again when it changes), and whether the file is unusable.
    fn bearer(&self, headers: &HeaderMap) -> (Bearer<Token>, bool) {
        let (tokens, broken) = self.tokens.current();
        let b = match tokens.bearer(
            headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
        ) {
            Bearer::Missing => Bearer::Missing,
            Bearer::Unknown => Bearer::Unknown,
            Bearer::Known(t) => Bearer::Known(t.clone()),
        };
        (b, broken)
    }

    // A write needs a known token with `scope`.
    fn auth_write(
        &self,
        headers: &HeaderMap,
        scope: &str,
        allowed: fn(&Scopes) -> bool,
    ) -> Result<Token, Response> {
        if !self.tokens.configured() {
            return Err(unauthorized(
                "this server has no tokens file (--tokens), so it accepts no writes",
            ));
        }
        match self.bearer(headers) {
            (_, true) => Err(unavailable_tokens()),
            (Bearer::Known(t), _) if allowed(&t.scopes) => Ok(t),
            (Bearer::Known(t), _) => Err(error(
                403,
                format!(
                    "token {:?} has no {scope} scope; nothing was written",
                    t.name
                ),
                None,
            )),
            (Bearer::Missing, _) => Err(unauthorized(
                "missing Authorization: Bearer TOKEN; nothing was written",
            )),
            (Bearer::Unknown, _) => Err(unauthorized("unknown bearer token; nothing was written")),
        }
    }

    // A read: public data needs no token, but a token that is sent must be
    // valid (a wrong one is an error, never silently anonymous).
    fn auth_read(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        data: Data,
    ) -> Result<Caller, Response> {
        let remote = client_addr(peer, headers, &self.proxies.0, self.proxies.1);
        let token = match self.bearer(headers) {
            (Bearer::Missing, _) => None,
            (_, true) => return Err(unavailable_tokens()),
            (Bearer::Unknown, _) => return Err(unauthorized("unknown bearer token")),
            (Bearer::Known(t), _) => Some(t),
        };
        let public = match self.reads {
            Reads::Public => true,
            Reads::PublicHashes => data == Data::Hashes,
            Reads::Token => false,
        };
        if !public {
            match &token {
                None => {
                    return Err(unauthorized(
                        "reads need Authorization: Bearer TOKEN on this server",
                    ));
                }
                Some(t) if !t.scopes.read => {
                    return Err(error(
                        403,
                        format!("token {:?} has no read scope", t.name),
                        None,
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(Caller { token, remote })
    }

    // The log as it is now: the writer's view, or the read-only directory's
    // (reopened on a blocking thread when the files changed: a reopen reads
    // files, may rebuild the tree, and holds the cache's lock meanwhile; on
    // an async thread it held up every other request, /healthz too).
    async fn view(self: &Arc<Self>) -> Result<Arc<View>, Response> {
        if self.log.is_none() && self.ro.is_some() {
            let me = self.clone();
            return blocking(move || me.view_now()).await;
        }
        self.view_now()
    }

    // [`Inner::view`] on this thread (start-up, and callers off the async
    // threads).
    fn view_now(&self) -> Result<Arc<View>, Response> {
        match (&self.log, &self.ro) {
            (Some(log), _) => Ok(Arc::new(log.view())),
            (None, Some(ro)) => ro.view().map_err(|e| error(500, e.to_string(), None)),
            (None, None) => Err(error(503, "no log", None)),
        }
    }

    // Runs `f` on the log off the async threads; failures are remembered
    // for /healthz.
    async fn on_log<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Log) -> Result<T> + Send + 'static,
    ) -> Result<T, Failure> {
        self.on_log_raw(f).await.map_err(Failure::from)
    }

    async fn on_log_raw<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Log) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        let r = tokio::task::spawn_blocking(move || {
            let Some(log) = &me.log else {
                return Err(Error::Service {
                    what: "this server is read-only (--read-only)".into(),
                    source: std::io::Error::other("read-only"),
                });
            };
            let r = f(log);
            let mut h = me.health.lock().unwrap();
            // The cause goes to stderr once (anonymous /healthz callers get
            // a fixed message without it).
            match &r {
                Err(Error::Poisoned { cause, .. }) => {
                    if h.poisoned.is_none() {
                        eprintln!(
                            "stele serve: the log refuses appends until the server restarts: {cause}"
                        );
                    }
                    let _ = h.poisoned.get_or_insert_with(|| cause.clone());
                }
                Err(e @ Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::StorageFull =>
                {
                    if h.storage_full.is_none() {
                        eprintln!("stele serve: an append failed for lack of disk space: {e}");
                    }
                    h.storage_full = Some(e.to_string());
                }
                Ok(_) => h.storage_full = None,
                Err(_) => {}
            }
            r
        })
        .await;
        r.unwrap_or_else(|e| {
            Err(Error::Service {
                what: "internal error".into(),
                source: std::io::Error::other(e.to_string()),
            })
        })
    }

    // Records a read durably before anything of it is sent; a reader over
    // its rate gets 429 and nothing.
    // Whether reads are recorded as stele.access events: by a writer, a
    // cluster front-end, or a read-only server given --access-log.
    fn records_reads(&self) -> bool {
        self.log.is_some() || self.cluster.is_some() || self.access_log.is_some()
    }

    async fn record(self: &Arc<Self>, who: &Caller, event: Value) -> Result<(), Response> {
        if !self.records_reads() {
            // Read-only: nowhere to record (a mirror must stay a copy).
            return Ok(());
        }
        let waited = self.access.lock().unwrap().take(&who.bucket());
        if let Err(secs) = waited {
            let _ = self.metrics.access_refused.fetch_add(1, Ordering::Relaxed);
            return Err(too_many(
                format!(
                    "too many reads of entries from {}: at most {} a minute (--access-rate); nothing was read",
                    who.bucket(),
                    self.access.lock().unwrap().per_minute
                ),
                secs,
            ));
        }
        let appended = match (&self.cluster, &self.access_log) {
            (Some(c), _) => c.append_reserved(event).await,
            (None, Some(other)) => {
                let other = other.clone();
                tokio::task::spawn_blocking(move || other.append_reserved(event))
                    .await
                    .unwrap_or_else(|e| {
                        Err(Error::Service {
                            what: "recording a stele.access event".into(),
                            source: std::io::Error::other(e.to_string()),
                        })
                    })
            }
            (None, None) => self.on_log_raw(move |log| log.append_reserved(event)).await,
        };
        match appended {
            Ok(_) => {}
            // Access records are bounded by construction; should one still be
            // refused, say so without blaming an "item" of the request.
            Err(Error::BadEvent { why, .. }) => {
                return Err(error(
                    if why.starts_with("entry would be") {
                        413
                    } else {
                        500
                    },
                    format!("this read's stele.access record was refused: {why}; nothing was read"),
                    None,
                ));
            }
            Err(e) => return Err(fail(Failure::from(e))),
        }
        let _ = self.metrics.access_events.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    // Records a read of the entry bundle holding entries from..to of a tree
    // of `size`, unless one of the reader's live grants covers it already.
    async fn record_bundle(
        self: &Arc<Self>,
        who: &Caller,
        from: u64,
        to: u64,
        size: u64,
    ) -> Result<(), Response> {
        if !self.records_reads() {
            return Ok(());
        }
        // The reader as its records name it: the token, and the address.
        let reader = format!("{:?} {}", who.name(), who.remote.ip().to_canonical());
        let slot = self.grants.lock().unwrap().slot(&reader);
        let mut grants = slot.lock().await;
        let now = Instant::now();
        if grants.iter().any(|g| g.covers(from, to, now)) {
            let _ = self.metrics.access_covered.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        grants.retain(|g| g.live(now));
        // Continue the grant this read follows: the one reaching furthest
        // among those that start at or before it.
        let prev = grants
            .iter()
            .filter(|g| g.from <= from)
            .max_by_key(|g| g.to);
        let g = Grant::next(prev, from, to, size, now);
        let ev = access_event(
            &who.reader(),
            "/tile/entries",
            Some("bundles"),
            Some(&Entries::Range(g.from, g.to)),
            Some(size),
            json!({ "seconds": BUNDLE_GRANT_SECONDS }),
        );
        self.record(who, ev).await?;
        // The window runs from when the record is durable.
        if grants.len() >= GRANTS_PER_READER {
            let _ = grants.remove(0);
        }
        grants.push(Grant {
            at: Instant::now(),
            ..g
        });
        Ok(())
    }

    // The latest checkpoint, signing one if it does not reach `need`. Reads
    // force at most one signature per --read-sign-interval: a read that
    // needs one sooner waits for its turn.
    async fn signed_size(self: &Arc<Self>, need: u64) -> Result<u64, Response> {
        let latest = async || {
            self.view()
                .await
                .map(|v| v.latest_checkpoint().map_or(0, |c| c.checkpoint.size))
                .unwrap_or(0)
        };
        let now = latest().await;
        if now >= need || self.log.is_none() {
            return Ok(now);
        }
        let mut last = self.sign_gate.lock().await;
        let now = latest().await;
        if now >= need {
            return Ok(now);
        }
        if let Some(t) = *last {
            let wait = self.read_sign_interval.saturating_sub(t.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        let cp = self.on_log(Log::checkpoint).await.map_err(fail)?;
        *last = Some(Instant::now());
        let _ = self.forced_signatures.fetch_add(1, Ordering::Relaxed);
        Ok(cp.checkpoint.size)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Response> + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(error(500, format!("internal error: {e}"), None)))
}

/// How long a response built whole waits for room under
/// [`Config::max_read_bytes`] before it is refused with 503.
pub const READ_BUDGET_WAIT: Duration = Duration::from_secs(1);

/// How long a cluster's page or bundle waits for room to be fetched in
/// (fetches take milliseconds and no client paces them: a queue, not a
/// refusal, unless the stores stall).
pub const FETCH_WAIT: Duration = Duration::from_secs(10);

// A response body charged against --max-read-bytes: the charge is held as
// long as its bytes are (hyper queues them without copying and drops them
// once written, or with the connection), so clients that ask and never
// read hold at most the budget, not a page each.
struct Charged {
    data: Vec<u8>,
    _room: Room,
}

// A response's charge: its share of --max-read-bytes, and the same KiB
// counted for its client (one client holds at most half of the budget).
pub(super) struct Room {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _client: net::IpSlot,
}

impl AsRef<[u8]> for Charged {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Charged {
    fn bytes(data: Vec<u8>, room: Room) -> Bytes {
        Bytes::from_owner(Self { data, _room: room })
    }
}

// The most bytes `n` entries take in a response (a line and its `\n`, or
// a bundle's 2-byte length and the line).
fn most_bytes(n: u64) -> u64 {
    n.saturating_mul(stele_core::entry::MAX_ENTRY_BYTES as u64 + 2)
}

impl Inner {
    // Room to fetch a cluster's page or bundle of at most `most` bytes from
    // the stores (held only while it is fetched; the response is then
    // charged its real size with charge_read): fetches of the worst case
    // are bounded in memory without holding the response budget for it,
    // which would let a few requests of small pages fill it. 503 when none
    // frees up within FETCH_WAIT.
    async fn reserve_fetch(
        &self,
        most: u64,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
        self.take_kib(
            &self.fetch_budget,
            most,
            FETCH_WAIT,
            "the server is fetching as many pages and bundles as --max-read-bytes allows; retry",
        )
        .await
    }

    // `bytes` (in KiB, at least 1, at most the whole budget) of `budget`,
    // waiting up to `wait`; else the 503 `busy` names.
    async fn take_kib(
        &self,
        budget: &Arc<Semaphore>,
        bytes: u64,
        wait: Duration,
        busy: &str,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
        let want = u32::try_from(self.kib_of(bytes)).unwrap_or(u32::MAX);
        match tokio::time::timeout(wait, budget.clone().acquire_many_owned(want)).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(error(
                503,
                "the server is shutting down; nothing was read",
                None,
            )),
            Err(_) => Err(self.read_refused(busy)),
        }
    }

    // KiB of `bytes` as the read budgets count them.
    fn kib_of(&self, bytes: u64) -> usize {
        usize::try_from(bytes.div_ceil(1024))
            .unwrap_or(usize::MAX)
            .clamp(1, self.read_budget_kib)
    }

    // A read refused for room (503, Retry-After: 1; counted).
    fn read_refused(&self, why: &str) -> Response {
        let _ = self.metrics.reads_refused.fetch_add(1, Ordering::Relaxed);
        let mut r = error(503, format!("{why}; nothing was read"), None);
        let _ = r
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1u32));
        r
    }

    // Room for a response of `bytes` built whole, until it is sent: one
    // larger than the whole budget takes all of it. 503 at once when its
    // client holds some and this one would take it past half of the budget
    // (a few slow readers of one address cannot take it all; one response
    // alone may be larger), or when no room frees up within READ_BUDGET_WAIT.
    async fn charge_read(&self, who: &Caller, bytes: u64) -> Result<Room, Response> {
        let kib = self.kib_of(bytes);
        let share = (self.read_budget_kib / 2).max(1);
        let Some(client) = self.read_ips.take_n(who.remote.ip(), kib, share) else {
            return Err(self.read_refused(&format!(
                "this client holds as many unsent responses as one may (half of --max-read-bytes, {share} KiB): read them first, then retry"
            )));
        };
        let busy = format!(
            "the server holds as many unsent responses as it may (--max-read-bytes, {} MiB); retry",
            self.read_budget_kib >> 10
        );
        let permit = self
            .take_kib(&self.read_budget, bytes, READ_BUDGET_WAIT, &busy)
            .await?;
        Ok(Room {
            _permit: permit,
            _client: client,
        })
    }
}

fn io_fail(e: Error) -> Response {
    match e {
        Error::OutOfRange(m) => error(400, m, None),
        e => error(500, e.to_string(), None),
    }
}

// Content-Type and Content-Encoding of a write: JSON, uncompressed.
fn check_body_headers(headers: &HeaderMap) -> Result<(), Response> {
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let e = String::from_utf8_lossy(enc.as_bytes()).trim().to_string();
        if !e.eq_ignore_ascii_case("identity") {
            return Err(error(
                415,
                format!(
                    "Content-Encoding {e:?} is not supported: send the body uncompressed; nothing was written"
                ),
                None,
            ));
        }
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = String::from_utf8_lossy(ct.as_bytes()).to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or("").trim();
        let json = matches!(
            mime,
            "application/json"
                | "application/x-ndjson"
                | "application/jsonl"
                | "application/x-jsonlines"
                | "application/jsonlines"
        ) || (mime.starts_with("application/") && mime.ends_with("+json"));
        if !json {
            return Err(error(
                415,
                format!(
                    "Content-Type {mime:?} is not JSON: send application/json (one object or an array) or application/x-ndjson (JSON Lines); nothing was written"
                ),
                None,
            ));
        }
        if let Some(cs) = ct
            .split(';')
            .skip(1)
            .find_map(|p| p.trim().strip_prefix("charset="))
            && !cs.trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err(error(
                415,
                format!("charset {cs:?} is not supported: send UTF-8; nothing was written"),
                None,
            ));
        }
    }
    Ok(())
}

// A body held in memory: its bytes count against --max-inflight until dropped.
struct HeldBody {
    bytes: Bytes,
    _room: (
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    ),
}

fn too_big(n: Option<u64>, max_body: usize) -> Response {
    let size = n.map_or_else(
        || "more than".to_string(),
        |n| format!("{n} bytes, more than"),
    );
    let bytes = if n.is_some() { "" } else { " bytes" };
    error(
        413,
        format!(
            "request body is {size} the limit of {max_body}{bytes} (--max-body); nothing was written"
        ),
        None,
    )
}

/// The body's declared length; 413 when it is over `max_body`.
pub(super) fn declared_length(
    headers: &HeaderMap,
    max_body: usize,
) -> Result<Option<u64>, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > max_body as u64 => Err(too_big(Some(n), max_body)),
        _ => Ok(declared),
    }
}

/// Reads a whole body of at most `max_body` bytes by `deadline`: 413 beyond
/// the size, 408 past the deadline (`timeout` names it), 400 on a broken body.
pub(super) async fn collect_body(
    body: Body,
    max_body: usize,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<Bytes, Response> {
    let read = tokio::time::timeout_at(deadline, axum::body::to_bytes(body, max_body)).await;
    match read {
        Err(_) => Err(error(
            408,
            format!(
                "the request body did not arrive within {}s (--body-timeout); nothing was written",
                timeout.as_secs()
            ),
            None,
        )),
        Ok(Err(e)) => {
            let length_limit = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            Err(if length_limit {
                too_big(None, max_body)
            } else {
                error(400, format!("reading the request body: {e}"), None)
            })
        }
        Ok(Ok(b)) => Ok(b),
    }
}

async fn read_body(
    app: &Inner,
    token: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<HeldBody, Response> {
    let declared = declared_length(headers, app.max_body)?;
    // Room among all requests in flight: parsed events take up to about
    // INFLIGHT_FACTOR times their body's bytes (many tiny members), so a
    // body is charged that much (KiB, rounded up), before it arrives. One
    // write token's requests hold at most half of the room (its share is
    // taken first, then the room): a token that declares large bodies and
    // sends them slowly held every other writer for --body-timeout
    // (red-team finding); now the other tokens always have the other half.
    // A body is charged at most a share, so the largest fits alone.
    let share_kib = (app.inflight_kib / 2).max(1);
    let want = declared
        .map_or(app.max_body, |n| n as usize)
        .saturating_mul(INFLIGHT_FACTOR)
        .div_ceil(1024)
        .clamp(1, share_kib);
    let want = u32::try_from(want).unwrap_or(u32::MAX);
    let share = app
        .inflight_shares
        .lock()
        .unwrap()
        .entry(token.to_string())
        .or_insert_with(|| Arc::new(Semaphore::new(share_kib)))
        .clone();
    let deadline = tokio::time::Instant::now() + app.body_timeout;
    let take = |sem: Arc<Semaphore>, whose: &'static str| async move {
        tokio::time::timeout_at(deadline, sem.acquire_many_owned(want))
            .await
            .map_err(|_| {
                error(
                    503,
                    format!("the server is busy reading {whose} requests (--max-inflight); retry; nothing was written"),
                    None,
                )
            })?
            .map_err(|_| error(503, "the server is shutting down; nothing was written", None))
    };
    let mine = take(share, "this token's other").await?;
    let room = (take(app.inflight.clone(), "other").await?, mine);
    let bytes = collect_body(body, app.max_body, deadline, app.body_timeout).await?;
    for (bom, enc) in [
        (&b"\xef\xbb\xbf"[..], "UTF-8 with a byte order mark"),
        (&b"\xff\xfe"[..], "UTF-16LE"),
        (&b"\xfe\xff"[..], "UTF-16BE"),
        (&b"\x1f\x8b"[..], "gzip"),
    ] {
        if bytes.starts_with(bom) {
            return Err(error(
                415,
                format!(
                    "the request body is {enc}: send JSON as UTF-8 without a byte order mark, uncompressed; nothing was written"
                ),
                None,
            ));
        }
    }
    Ok(HeldBody { bytes, _room: room })
}

// Receipts as a streamed JSON array, a chunk per 1024 receipts.
struct ReceiptStream {
    rs: Arc<Vec<Receipt>>,
    at: usize,
    done: bool,
}

impl futures_core::Stream for ReceiptStream {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let end = (self.at + 1024).min(self.rs.len());
        let mut s = String::with_capacity((end - self.at) * 80 + 2);
        if self.at == 0 {
            s.push('[');
        }
        for i in self.at..end {
            if i > 0 {
                s.push(',');
            }
            // Field order as `stele append` prints it: seq first.
            let r = &self.rs[i];
            s.push_str(&format!(
                "{{\"seq\":{},\"leaf_hash\":\"{}\"}}",
                r.seq,
                r.leaf_hash.to_base64()
            ));
        }
        self.at = end;
        if end == self.rs.len() {
            s.push_str("]\n");
            self.done = true;
        }
        Poll::Ready(Some(Ok(Bytes::from(s))))
    }
}

fn receipts_response(rs: Arc<Vec<Receipt>>, replay: bool) -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(ReceiptStream {
            rs,
            at: 0,
            done: false,
        }),
    )
        .into_response();
    if replay {
        let _ = r.headers_mut().insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    r
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Response> {
    let Some(v) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let ok = |b: &u8| b.is_ascii_graphic();
    let b = v.as_bytes();
    if b.is_empty() || b.len() > 128 || !b.iter().all(ok) {
        return Err(error(
            400,
            "Idempotency-Key must be 1 to 128 printable ASCII characters without spaces; nothing was written",
            None,
        ));
    }
    Ok(Some(String::from_utf8_lossy(b).into_owned()))
}

fn key_reused() -> Response {
    error(
        422,
        "this Idempotency-Key was used with a different body; nothing was written",
        None,
    )
}

type Parser = fn(&[u8], usize) -> Result<Vec<Value>, body::ItemError>;

// Sealed values of a retried request were forgotten or redacted since: the
// retry is not compared with them (whether it matched would confirm a guess
// of a value that is gone), whatever it holds. Both backends' answer: a file
// log's (replay_matches) and a cluster's (crate::cluster::Keyed::Unreadable).
fn key_unreadable() -> Response {
    error(
        422,
        "this Idempotency-Key's request held a sealed value that has since been forgotten or redacted: a retry cannot be compared with it; nothing was written; send it again under a new Idempotency-Key",
        None,
    )
}

// What a retry compared with the entries of its key's request is.
enum Replay {
    Same,
    Other,
    Unreadable,
    Failed(String),
}

// A retried request whose receipts were read back from the log after a
// restart, or whose body digest was kept from before a forget or a
// redaction: the log keeps no digest of request bodies (one in an entry
// would let anyone who reads the log test guesses of sealed values), so the
// body is compared with the entries themselves: as many events, each the
// entry's event without the writer member, each sealed value the one its
// opening holds (crate::sealed::Sealer::compare_event). Anything else is
// another body (422); an opening gone is its own answer (key_unreadable),
// whatever the retry holds.
async fn replay_matches(
    app: &Arc<Inner>,
    body: Bytes,
    parse: Parser,
    rs: Arc<Vec<Receipt>>,
) -> Replay {
    let max = app.max_events;
    if let Some(c) = app.cluster.clone() {
        // A key that came with a migrated file log (Keyed::Unchecked).
        let events = match tokio::task::spawn_blocking(move || parse(&body, max)).await {
            Ok(Ok(events)) => events,
            Ok(Err(_)) => return Replay::Other,
            Err(e) => return Replay::Failed(e.to_string()),
        };
        return match c.compare_retry(&rs, &events).await {
            Ok(crate::sealed::Compared::Same) => Replay::Same,
            Ok(crate::sealed::Compared::Other) => Replay::Other,
            Ok(crate::sealed::Compared::Unreadable) => Replay::Unreadable,
            Err(e) => Replay::Failed(e.to_string()),
        };
    }
    let Some(log) = app.log.clone() else {
        return Replay::Other;
    };
    tokio::task::spawn_blocking(move || {
        let Ok(events) = parse(&body, max) else {
            return Replay::Other;
        };
        if events.len() != rs.len() {
            return Replay::Other;
        }
        let view = log.view();
        let mut unreadable = false;
        for (ev, r) in events.iter().zip(rs.iter()) {
            let sent = crate::log::canonical_event(ev)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok());
            let stored = view
                .entry(r.seq)
                .ok()
                .and_then(|l| serde_json::from_slice::<Value>(&l).ok())
                .and_then(|mut e| e.get_mut("event").map(Value::take));
            let (Some(sent), Some(Value::Object(mut stored))) = (sent, stored) else {
                return Replay::Other;
            };
            let _ = stored.remove(crate::log::WRITER_MEMBER);
            match log.compare_sealed(r.seq, &Value::Object(stored), &sent) {
                Ok(crate::sealed::Compared::Same) => {}
                Ok(crate::sealed::Compared::Other) => return Replay::Other,
                // The other events are still compared: a retry that differs
                // elsewhere is another body, whatever its sealed values.
                Ok(crate::sealed::Compared::Unreadable) => unreadable = true,
                Err(e) => return Replay::Failed(e.to_string()),
            }
        }
        if unreadable {
            Replay::Unreadable
        } else {
            Replay::Same
        }
    })
    .await
    .unwrap_or_else(|e| Replay::Failed(e.to_string()))
}

async fn ingest(
    app: App,
    headers: HeaderMap,
    body: Body,
    parse: Parser,
    scope: &'static str,
    allowed: fn(&Scopes) -> bool,
) -> Response {
    let since = Instant::now();
    let app = app.0;
    if app.log.is_none() && app.cluster.is_none() {
        return error(
            405,
            "this server is read-only (--read-only); nothing was written",
            None,
        );
    }
    let token = match app.auth_write(&headers, scope, allowed) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Err(r) = check_body_headers(&headers) {
        return r;
    }
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let held = match read_body(&app, &token.name, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let digest: [u8; 32] = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&held.bytes).into()
    };
    let slot = key.as_ref().map(|k| (token.name.clone(), k.clone()));
    // Read before the append: a forget or redaction from here on voids
    // the digest kept for this request.
    let changes = app.log.as_ref().map(|l| l.sealed_changes());
    if let Some(slot) = &slot {
        // Receipts read back from the log on start (no body digest).
        let unchecked = {
            let mut idem = app.idem.lock().unwrap();
            match idem.map.get(slot) {
                Some(Done::Pending) => {
                    return error(
                        409,
                        "a request with this Idempotency-Key is being appended now; retry it once that one is answered",
                        None,
                    );
                }
                // A digest kept since before a forget or a redaction is
                // not used: the entries are compared (replay_matches).
                Some(Done::Receipts(Some((h, at)), kept)) if Some(*at) == changes => {
                    if *h != digest {
                        return key_reused();
                    }
                    Err(kept.clone())
                }
                Some(Done::Receipts(_, kept)) => Ok(Some(kept.clone())),
                None => {
                    idem.remember(slot.clone(), Done::Pending);
                    Ok(None)
                }
            }
        };
        // Err: the same body as the kept request's, answered with its receipts.
        let unchecked = match unchecked {
            Err(kept) => {
                return match kept_receipts(&app, kept).await {
                    Ok(rs) => receipts_response(rs, true),
                    Err(r) => r,
                };
            }
            Ok(None) => None,
            Ok(Some(kept)) => match kept_receipts(&app, kept).await {
                Ok(rs) => Some(rs),
                Err(r) => return r,
            },
        };
        if let Some(rs) = unchecked {
            let r = replay_matches(&app, held.bytes, parse, rs.clone()).await;
            return match replayed(r, rs) {
                Ok(rs) => receipts_response(rs, true),
                Err(r) => r,
            };
        }
    }
    let r = ingest_body(&app, held, parse, token, key, digest, since).await;
    if let Some(slot) = slot {
        let mut idem = app.idem.lock().unwrap();
        match (&r, changes) {
            (Ok((rs, _)), Some(at)) => {
                idem.remember(
                    slot,
                    Done::Receipts(Some((digest, at)), Kept::from(&rs[..])),
                );
            }
            // A cluster's keys are answered from PostgreSQL only, whose
            // digests a forget or redaction on any host voids: one kept here
            // would outlive them (and is of no use to another front-end).
            _ => idem.forget(&slot),
        }
    }
    match r {
        Ok((rs, replayed)) => receipts_response(rs, replayed),
        Err(r) => r,
    }
}

// The answer to a retry compared with its request's entries: their
// receipts if it is the same request.
fn replayed(r: Replay, rs: Arc<Vec<Receipt>>) -> Result<Arc<Vec<Receipt>>, Response> {
    match r {
        Replay::Same => Ok(rs),
        Replay::Other => Err(key_reused()),
        Replay::Unreadable => Err(key_unreadable()),
        Replay::Failed(e) => Err(error(
            500,
            format!(
                "internal error: the retry could not be compared with its entries: {e}; nothing was written"
            ),
            None,
        )),
    }
}

async fn ingest_body(
    app: &Arc<Inner>,
    held: HeldBody,
    parse: Parser,
    token: Token,
    key: Option<String>,
    digest: [u8; 32],
    since: Instant,
) -> Result<(Arc<Vec<Receipt>>, bool), Response> {
    let max = app.max_events;
    // Kept (a reference) for a retry of a key migrated into a cluster.
    let body = held.bytes.clone();
    // Parsing a big batch is CPU work: off the async threads. The body's
    // room in --max-inflight is held until the events are appended.
    let (parsed, room) = if held.bytes.len() < 16 * 1024 {
        (parse(&held.bytes, max), held._room)
    } else {
        let HeldBody { bytes, _room } = held;
        match tokio::task::spawn_blocking(move || parse(&bytes, max)).await {
            Ok(p) => (p, _room),
            Err(e) => return Err(error(500, format!("internal error: {e}"), None)),
        }
    };
    let events = parsed.map_err(|e| {
        error(
            if e.too_large { 413 } else { 400 },
            format!("{}; nothing was written", e.msg),
            e.item,
        )
    })?;
    if events.is_empty() {
        return Ok((Arc::new(Vec::new()), false));
    }
    let n = events.len() as u64;
    let mut by = json!({ "token": token.name });
    if let Some(k) = &key {
        by["request"] = json!(k);
    }
    // Appenders wait in the log for their group commit on blocking
    // threads: at most APPENDERS at once, so they never fill the pool
    // that tiles, proofs and exports use too.
    let _turn = app.appenders.acquire().await.map_err(|_| {
        error(
            503,
            "the server is shutting down; nothing was written",
            None,
        )
    })?;
    let rs = match &app.cluster {
        // Keys are kept in PostgreSQL: a retry on another front-end gets
        // the same answer.
        Some(c) => {
            let request = key.map(|key| crate::cluster::RequestKey {
                token: token.name.clone(),
                key,
                digest,
            });
            match c.append_batch_keyed(events, &by, request).await {
                Ok(crate::cluster::Keyed::Appended(rs)) => rs,
                Ok(crate::cluster::Keyed::Replayed(rs)) => return Ok((Arc::new(rs), true)),
                Ok(crate::cluster::Keyed::Unchecked(rs)) => {
                    let rs = Arc::new(rs);
                    let r = replay_matches(app, body, parse, rs.clone()).await;
                    return replayed(r, rs).map(|rs| (rs, true));
                }
                Ok(crate::cluster::Keyed::OtherBody) => return Err(key_reused()),
                Ok(crate::cluster::Keyed::Unreadable) => return Err(key_unreadable()),
                Err(e) => return Err(fail(Failure::from(e))),
            }
        }
        None => app
            .on_log(move |log| log.append_batch_by(events, &by))
            .await
            .map_err(fail)?,
    };
    drop(room);
    let _ = app.metrics.entries.fetch_add(n, Ordering::Relaxed);
    app.metrics.append_latency.observe_duration(since.elapsed());
    Ok((Arc::new(rs), false))
}

async fn post_entries(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    ingest(app, headers, body, body::parse_events, "write", |s| s.write).await
}

async fn post_k8s(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    ingest(
        app,
        headers,
        body,
        k8s::events_from_event_list,
        "k8s",
        |s| s.k8s,
    )
    .await
}

async fn get_checkpoint(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if app.0.cluster.is_some() {
        return cluster::get_checkpoint(app, peer, headers, q).await;
    }
    if let Err(r) = app.0.auth_read(&headers, peer, Data::Hashes) {
        return r;
    }
    if let Err(e) = Query::parse(q.as_deref(), &[]) {
        return bad_query(e);
    }
    let view = match app.0.view().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match view.latest_checkpoint() {
        Some(c) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            c.note.clone(),
        )
            .into_response(),
        None => error(404, "the log has no checkpoint yet", None),
    }
}

// The log's key history with proofs (writer/README.md, "Key history"): what
// a mirror or remote monitor needs to follow a rotation it did not see. It
// holds no entry but the stele.key events, so it is read as hashes are.
async fn get_keys(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if app.0.cluster.is_some() {
        return error(404, "a cluster does not serve /v1/keys", None);
    }
    if let Err(r) = app.0.auth_read(&headers, peer, Data::Hashes) {
        return r;
    }
    if let Err(e) = Query::parse(q.as_deref(), &[]) {
        return bad_query(e);
    }
    let view = match app.0.view().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let r = blocking(move || crate::mirror::key_history(&view).map_err(io_fail)).await;
    r.map_or_else(
        |r| r,
        |h| json_text(serde_json::to_string(&h).expect("key history serializes") + "\n"),
    )
}

// GET /v1/sealed?from=A&to=B (`stele mirror --with-openings`): the
// sidecar's encrypted records of entries [A, B), the wraps of their data
// keys to the auditors, the auditors and the forget list
// (crate::mirror::openings); never a value, never an unwrapped key. Only
// for a token with the reveal scope; a non-empty range is recorded like an
// export revealed to the log's auditors.
async fn get_sealed(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let who = match app.0.auth_read(&headers, peer, Data::Entries) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = need_reveal(&app.0, &who, "/v1/sealed") {
        return r;
    }
    let q = match Query::parse(q.as_deref(), &["from", "to", "wraps"]) {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let wraps = match sealed_wraps(&q) {
        Ok(w) => w,
        Err(r) => return r,
    };
    // The body is built whole (its wraps come before its records): one of
    // the --max-exports places while it is, and at most
    // openings::MAX_BODY_BYTES.
    let _slot = match export_slot(&app, who.remote) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if app.0.cluster.is_some() {
        return cluster::get_sealed(app, who, q, wraps).await;
    }
    let view = match app.0.view().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let size = view.size();
    let (from, to) = match sealed_range(&q, size) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Some(after) = wraps {
        if from != to {
            return bad_query("/v1/sealed takes wraps= only with from = to (no records)".into());
        }
        let dir = view.dir().to_path_buf();
        return match blocking(move || {
            crate::mirror::openings::wraps_body(&dir, after).map_err(io_fail)
        })
        .await
        {
            Ok(b) => sealed_response(&app.0, &who, b).await,
            Err(r) => r,
        };
    }
    if from < to {
        let auditors = crate::sealed::auditors(view.dir()).unwrap_or_default();
        if let Err(r) = record_sealed_read(&app.0, &who, from, to, size, auditors).await {
            return r;
        }
    }
    let dir = view.dir().to_path_buf();
    match blocking(move || crate::mirror::openings::body(&dir, from, to).map_err(io_fail)).await {
        Ok(b) => sealed_response(&app.0, &who, b).await,
        Err(r) => r,
    }
}

// A /v1/sealed body (built whole: charged against --max-read-bytes until sent).
async fn sealed_response(app: &Inner, who: &Caller, b: Vec<u8>) -> Response {
    let room = match app.charge_read(who, b.len() as u64).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Charged::bytes(b, room),
    )
        .into_response()
}

// The `wraps` of a /v1/sealed request: None without it; Some(None) for
// `all`, Some(Some(k)) for the key IDs after k (a page of wraps).
#[allow(clippy::option_option)]
fn sealed_wraps(q: &Query) -> Result<Option<Option<stele_core::sealed::KeyId>>, Response> {
    match q.get("wraps") {
        None => Ok(None),
        Some("all") => Ok(Some(None)),
        Some(v) => match stele_core::sealed::KeyId::from_hex(v) {
            Some(k) => Ok(Some(Some(k))),
            None => Err(bad_query(
                "query parameter wraps is not \"all\" or a key ID (32 hex digits)".into(),
            )),
        },
    }
}

// The range of a /v1/sealed request in a log of `size` entries.
fn sealed_range(q: &Query, size: u64) -> Result<(u64, u64), Response> {
    match (q.u64("from"), q.u64("to")) {
        (Ok(Some(a)), Ok(Some(b))) if a <= b && b <= size => Ok((a, b)),
        (Err(e), _) | (_, Err(e)) => Err(bad_query(e)),
        _ => Err(bad_query(format!(
            "/v1/sealed takes from and to with from <= to <= the log's {size} entries"
        ))),
    }
}

// Records a /v1/sealed read of entries from..to like an export revealed to
// the log's auditors.
async fn record_sealed_read(
    app: &Arc<Inner>,
    who: &Caller,
    from: u64,
    to: u64,
    size: u64,
    auditors: Vec<String>,
) -> Result<(), Response> {
    let ev = access_event(
        &who.reader(),
        "/v1/sealed",
        Some("sealed"),
        Some(&Entries::Range(from, to)),
        Some(size),
        json!({ "reveal_to": auditors }),
    );
    app.record(who, ev).await
}

// A tile request: its path, what it names, the data kind, the caller.
fn tile_request(
    app: &Inner,
    peer: SocketAddr,
    headers: &HeaderMap,
    rest: &str,
    q: Option<&str>,
) -> Result<(String, TilePath, Data, Caller), Response> {
    let path = format!("tile/{rest}");
    let parsed = Tile::parse_path(&path).map_err(|e| error(404, e.to_string(), None))?;
    let data = match parsed {
        TilePath::Hashes(_) => Data::Hashes,
        TilePath::Entries(_) => Data::Entries,
    };
    let who = app.auth_read(headers, peer, data)?;
    let _ = Query::parse(q, &[]).map_err(bad_query)?;
    Ok((path, parsed, data, who))
}

async fn get_tile(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    UrlPath(rest): UrlPath<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let (path, parsed, data, who) = match tile_request(&app.0, peer, &headers, &rest, q.as_deref())
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    if app.0.cluster.is_some() {
        return cluster::get_tile(app, path, parsed, data, who).await;
    }
    let view = match app.0.view().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let size = view.size();
    let (TilePath::Hashes(tile) | TilePath::Entries(tile)) = parsed;
    if !tile_exists(&tile, size) {
        return error(
            404,
            format!("{path} is not in the log's tree of {size} entries"),
            None,
        );
    }
    let body = match parsed {
        TilePath::Hashes(t) => {
            blocking(move || {
                let level = u32::from(t.level) * TILE_HEIGHT;
                let mut out = Vec::with_capacity(t.byte_len());
                for i in 0..u64::from(t.width) {
                    out.extend_from_slice(
                        &view.read_hash(level, t.first() + i).map_err(io_fail)?.0,
                    );
                }
                Ok(Bytes::from(out))
            })
            .await
        }
        TilePath::Entries(t) => {
            let (from, to) = (t.first(), t.first() + u64::from(t.width));
            // The bundle's exact size (its lines, a 2-byte length instead
            // of each `\n`) is in the index: its room under
            // --max-read-bytes is taken before anything is read or recorded.
            let v = view.clone();
            let lines = match blocking(move || v.entries_bytes(from, to).map_err(io_fail)).await {
                Ok(n) => n,
                Err(r) => return r,
            };
            let room = match app.0.charge_read(&who, lines + (to - from)).await {
                Ok(p) => p,
                Err(r) => return r,
            };
            if let Err(r) = app.0.record_bundle(&who, from, to, size).await {
                return r;
            }
            blocking(move || {
                let cap = usize::try_from(lines + (to - from)).unwrap_or(0);
                let mut buf = Vec::with_capacity(cap);
                let _ = view.write_entries(from, to, &mut buf).map_err(io_fail)?;
                lines_to_bundle(buf).map_err(|e| error(500, e.to_string(), None))
            })
            .await
            .map(|b| Charged::bytes(b, room))
        }
    };
    match body {
        Ok(d) => {
            let mut r = tile_response(data, app.0.reads, d);
            // Whether this read of entries was recorded (the page's live
            // panel says so): a --read-only server (a mirror) records none.
            if matches!(data, Data::Entries) {
                let v = if app.0.records_reads() {
                    "recorded"
                } else {
                    "not-recorded"
                };
                let _ = r
                    .headers_mut()
                    .insert("stele-reads", HeaderValue::from_static(v));
            }
            r
        }
        Err(r) => r,
    }
}

// Hash tiles never change. Public ones may be cached by anyone; others
// only by the client that fetched them. Entry bundles: never stored
// (every read of entries is recorded).
fn tile_response(data: Data, reads: Reads, body: impl Into<Bytes>) -> Response {
    let cache = match (data, reads) {
        (Data::Entries, _) => "no-store",
        (Data::Hashes, Reads::Public | Reads::PublicHashes) => {
            "public, max-age=31536000, immutable"
        }
        (Data::Hashes, Reads::Token) => "private, max-age=31536000, immutable",
    };
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        body.into(),
    )
        .into_response()
}

/// Entry lines (each ending in `\n`, as the entries file holds them) made
/// into an entry bundle in place: each `\n` becomes a 2-byte length before
/// its line, so the bundle takes one buffer, one byte an entry larger
/// (reserve it to avoid a reallocation).
fn lines_to_bundle(mut buf: Vec<u8>) -> Result<Vec<u8>, stele_core::tiles::TileError> {
    if buf.last().is_some_and(|b| *b != b'\n') {
        buf.push(b'\n');
    }
    let mut starts = Vec::new();
    let mut start = 0;
    for (i, b) in buf.iter().enumerate() {
        if *b == b'\n' {
            starts.push(start);
            start = i + 1;
        }
    }
    let n = buf.len();
    buf.resize(n + starts.len(), 0);
    // From the last line back: line k moves from s to s + k + 2 (each line
    // before it grows by one byte), never over a line not yet moved.
    let mut end = n;
    for (k, &s) in starts.iter().enumerate().rev() {
        let len = end - 1 - s;
        let len16 = u16::try_from(len)
            .map_err(|_| stele_core::tiles::TileError::EntryTooLong { index: k, len })?;
        buf.copy_within(s..end - 1, s + k + 2);
        buf[s + k..s + k + 2].copy_from_slice(&len16.to_be_bytes());
        end = s;
    }
    Ok(buf)
}

// The numbers a proof request names: `first` (required) and `second`.
fn proof_query(q: Option<&str>, first: &str, second: &str) -> Result<(u64, Option<u64>), Response> {
    let q = Query::parse(q, &[first, second]).map_err(bad_query)?;
    match (q.u64(first), q.u64(second)) {
        (Ok(Some(f)), Ok(s)) => Ok((f, s)),
        (Ok(None), _) => Err(bad_query(format!("query parameter {first} is missing"))),
        (Err(e), _) | (_, Err(e)) => Err(bad_query(e)),
    }
}

fn json_text(s: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], s).into_response()
}

async fn get_inclusion(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = app.0.auth_read(&headers, peer, Data::Hashes) {
        return r;
    }
    let (index, size) = match proof_query(q.as_deref(), "index", "size") {
        Ok(q) => q,
        Err(r) => return r,
    };
    if app.0.cluster.is_some() {
        return cluster::inclusion(app, index, size).await;
    }
    // An index beyond the log is refused before anything is signed.
    let have = match app.0.view().await {
        Ok(v) => v.size(),
        Err(r) => return r,
    };
    if index >= have {
        return error(
            400,
            format!("entry {index} is beyond the log's {have} entries"),
            None,
        );
    }
    let size = match size {
        Some(s) => s,
        None => match app.0.signed_size(index + 1).await {
            Ok(s) => s,
            Err(r) => return r,
        },
    };
    let view = match app.0.view().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(e) = view.check_inclusion(index, size) {
        return io_fail(e);
    }
    // Byte for byte what `stele prove inclusion --json` prints.
    let r = blocking(move || view.inclusion(index, size).map_err(io_fail)).await;
    r.map_or_else(|r| r, |p| json_text(format!("{}\n", p.to_json())))
}

async fn get_consistency(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = app.0.auth_read(&headers, peer, Data::Hashes) {
        return r;
    }
    let (from, to) = match proof_query(q.as_deref(), "from", "to") {
        Ok(q) => q,
        Err(r) => return r,
    };
    if app.0.cluster.is_some() {
        return cluster::consistency(app, from, to).await;
    }
    let have = match app.0.view().await {
        Ok(v) => v.size(),
        Err(r) => return r,
    };
    if from > have {
        return error(
            400,
            format!("tree size {from} is beyond the log's {have} entries"),
            None,
        );
    }
    let to = match to {
        Some(t) => t,
        None => match app.0.signed_size(from).await {
            Ok(s) => s,
            Err(r) => return r,
        },
    };
    let view = match app.0.view().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(e) = view.check_consistency(from, to) {
        return io_fail(e);
    }
    // Byte for byte what `stele prove consistency --json` prints.
    let r = blocking(move || view.consistency(from, to).map_err(io_fail)).await;
    r.map_or_else(|r| r, |p| json_text(format!("{}\n", p.to_json())))
}

async fn get_entries(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if app.0.cluster.is_some() {
        return cluster::get_entries(app, peer, headers, q).await;
    }
    let who = match app.0.auth_read(&headers, peer, Data::Entries) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (from, to) = match entries_query(q.as_deref()) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let view = match app.0.view().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let size = view.size();
    let (from, to) = match app.0.page_range(from, to, size) {
        Ok(r) => r,
        Err(r) => return r,
    };
    // The page's exact size is in the index: its room under
    // --max-read-bytes is taken before anything is read or recorded.
    let v = view.clone();
    let bytes = match blocking(move || v.entries_bytes(from, to).map_err(io_fail)).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let room = match app.0.charge_read(&who, bytes).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(r) = app.0.record_page(&who, from, to, size).await {
        return r;
    }
    let r = blocking(move || {
        let mut out = Vec::with_capacity(usize::try_from(bytes).unwrap_or(0));
        let _ = view.write_entries(from, to, &mut out).map_err(io_fail)?;
        Ok(out)
    })
    .await;
    match r {
        Ok(body) => entries_response(Charged::bytes(body, room), from, to),
        Err(r) => r,
    }
}

// GET /v1/entries' query: from (default 0) and to.
fn entries_query(q: Option<&str>) -> Result<(u64, Option<u64>), Response> {
    let q = Query::parse(q, &["from", "to"]).map_err(bad_query)?;
    match (q.u64("from"), q.u64("to")) {
        (Ok(f), Ok(t)) => Ok((f.unwrap_or(0), t)),
        (Err(e), _) | (_, Err(e)) => Err(bad_query(e)),
    }
}

impl Inner {
    // The page of entries GET /v1/entries answers in a log of `size` entries.
    fn page_range(&self, from: u64, to: Option<u64>, size: u64) -> Result<(u64, u64), Response> {
        let to = to
            .unwrap_or(size)
            .min(from.saturating_add(self.page))
            .min(size);
        if from >= to {
            return Err(error(
                400,
                format!("range {from}..{to} is not a non-empty part of the log's {size} entries"),
                None,
            ));
        }
        Ok((from, to))
    }

    // Records a read of the page from..to of GET /v1/entries.
    async fn record_page(
        self: &Arc<Self>,
        who: &Caller,
        from: u64,
        to: u64,
        size: u64,
    ) -> Result<(), Response> {
        let ev = access_event(
            &who.reader(),
            "/v1/entries",
            None,
            Some(&Entries::Range(from, to)),
            Some(size),
            Value::Null,
        );
        self.record(who, ev).await
    }
}

// Entry lines `from..to` as GET /v1/entries answers them.
fn entries_response(body: Bytes, from: u64, to: u64) -> Response {
    let mut resp = (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    let h = resp.headers_mut();
    let _ = h.insert(
        HeaderName::from_static("stele-from"),
        HeaderValue::from(from),
    );
    let _ = h.insert(HeaderName::from_static("stele-to"), HeaderValue::from(to));
    resp
}

// A body fed by a thread through a channel. When the thread fails, the
// stream fails too (the client sees a broken transfer, never a short
// "complete" file), even when the channel was too full to carry the error.
struct ChanBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    failed: Arc<AtomicBool>,
    _slot: ExportSlot,
}

/// An export's place among those streaming (`--max-exports`) and among its
/// client address's share of them; both freed when the body is dropped.
/// `GET /v1/sealed` takes one too while it builds its body.
pub(super) struct ExportSlot {
    _global: tokio::sync::OwnedSemaphorePermit,
    _ip: net::IpSlot,
}

// A place for an export from `client` (the address the per-client limits
// use: behind a trusted proxy, the one its header names), or the 429 that
// says why there is none.
fn export_slot(app: &App, client: SocketAddr) -> Result<ExportSlot, Response> {
    let Some(ip) = app.0.export_ips.take(client.ip(), app.0.export_share) else {
        return Err(too_many(
            "this address is streaming as many exports as one client may (half of --max-exports); retry later; nothing was read"
                .into(),
            5,
        ));
    };
    let Ok(global) = app.0.exports.clone().try_acquire_owned() else {
        return Err(too_many(
            "too many exports are streaming now (--max-exports); retry later; nothing was read"
                .into(),
            5,
        ));
    };
    Ok(ExportSlot {
        _global: global,
        _ip: ip,
    })
}

impl futures_core::Stream for ChanBody {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(None) if self.failed.load(Ordering::Acquire) => Poll::Ready(Some(Err(
                std::io::Error::other("the export failed on the server"),
            ))),
            other => other,
        }
    }
}

// std::io::Write into the channel, in 256 KiB chunks.
struct ChanWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            // Blocks while the client is slow; the connection's write
            // timeout closes a stalled client, which ends this send.
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| std::io::Error::other("client went away"))?;
        }
        Ok(())
    }
}

/// Most entries one `GET /v1/export?entries=` may list.
pub const MAX_EXPORT_LIST: usize = 1000;

// What GET /v1/export was asked for.
enum ExportKind {
    // The whole log.
    Log,
    // Entries from..to.
    Range(u64, u64),
    // Selected entries, ascending, no repeats.
    Entries(Vec<u64>),
}

async fn get_export(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let who = match app.0.auth_read(&headers, peer, Data::Entries) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let q = match Query::parse(q.as_deref(), &["from", "to", "entries", "reveal-to"]) {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    // Sealed-field openings (docs/FORMAT.md 13.6) only for a token with the
    // reveal scope, on any server (public reads included), only for the
    // log's auditors; the access record names them (public keys only).
    let reveal = match q.get("reveal-to") {
        None => Vec::new(),
        Some(list) => match reveal_to(&app.0, &who, list).await {
            Ok(r) => r,
            Err(resp) => return resp,
        },
    };
    // Entries appended so far (a cluster's: committed in PostgreSQL).
    let appended = async || match &app.0.cluster {
        Some(c) => c.sequenced().await.map_err(io_fail),
        None => app.0.view().await.map(|v| v.size()),
    };
    let size = match appended().await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let kind = match (q.u64("from"), q.u64("to"), q.get("entries")) {
        (Err(e), _, _) | (_, Err(e), _) => return bad_query(e),
        (Ok(Some(a)), Ok(Some(b)), None) => {
            if a >= b || b > size {
                return error(
                    400,
                    format!("range {a}..{b} is not a non-empty part of the log's {size} entries"),
                    None,
                );
            }
            ExportKind::Range(a, b)
        }
        (Ok(None), Ok(None), Some(list)) => {
            let mut l = Vec::new();
            for p in list.split(',').filter(|p| !p.is_empty()) {
                match query::parse_u64("entries", p) {
                    Ok(i) if i < size => l.push(i),
                    Ok(i) => {
                        return error(
                            400,
                            format!("entry {i} is beyond the log's {size} entries"),
                            None,
                        );
                    }
                    Err(e) => return bad_query(e),
                }
                if l.len() > MAX_EXPORT_LIST {
                    return bad_query(format!(
                        "entries lists more than {MAX_EXPORT_LIST} entries: export a range (from, to) instead"
                    ));
                }
            }
            l.sort_unstable();
            l.dedup();
            if l.is_empty() {
                return bad_query("entries lists no entry".into());
            }
            ExportKind::Entries(l)
        }
        (Ok(None), Ok(None), None) => ExportKind::Log,
        _ => {
            return bad_query(
                "export takes nothing (whole log), from and to (a range), or entries=I,J,K".into(),
            );
        }
    };
    let slot = match export_slot(&app, who.remote) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (ev_kind, entries) = match &kind {
        ExportKind::Log => ("log", Entries::Range(0, size)),
        ExportKind::Range(a, b) => ("range", Entries::Range(*a, *b)),
        ExportKind::Entries(l) => ("entries", Entries::List(l.clone())),
    };
    let ev = access_event(
        &who.reader(),
        "/v1/export",
        Some(ev_kind),
        Some(&entries),
        Some(size),
        if reveal.is_empty() {
            Value::Null
        } else {
            json!({ "reveal_to": reveal })
        },
    );
    if let Err(r) = app.0.record(&who, ev).await {
        return r;
    }
    // The export ends with a checkpoint covering everything in it: a log
    // export covers the log as of now, access record included.
    let need = match &kind {
        ExportKind::Log => appended().await.unwrap_or(size),
        ExportKind::Range(_, b) => *b,
        ExportKind::Entries(l) => l.last().map_or(0, |m| m + 1),
    };
    if app.0.cluster.is_some() {
        return cluster::export(app, kind, need, slot, reveal).await;
    }
    let signed = match app.0.signed_size(need).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // The read-only directory's view is the one every request shares
    // (reopened only when the files changed), not a reopen per export.
    let owned = match app.0.view().await {
        Ok(v) => View::clone(&v),
        Err(r) => return r,
    };
    let view = match owned.up_to(signed) {
        Ok(v) => v,
        Err(e) => return io_fail(e),
    };
    let (tx, rx) = mpsc::channel(4);
    let failed = Arc::new(AtomicBool::new(false));
    let failed2 = failed.clone();
    // Detached: the body stream carries the task's errors to the client.
    drop(tokio::task::spawn_blocking(move || {
        let mut w = ChanWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let r = match kind {
            ExportKind::Log => view.export_log_revealed(&reveal, &mut w, &mut |_| {}),
            ExportKind::Range(a, b) => {
                view.export_range_revealed(a, b, &reveal, &mut w, &mut |_| {})
            }
            ExportKind::Entries(l) => view.export_entries_revealed(&l, &reveal, &mut w),
        };
        let r = r
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|()| std::io::Write::flush(&mut w));
        if let Err(e) = r {
            failed2.store(true, Ordering::Release);
            let _ = tx.try_send(Err(e));
        }
    }));
    export_response(ChanBody {
        rx,
        failed,
        _slot: slot,
    })
}

// An export streamed as a download.
fn export_response(body: ChanBody) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"export.stele\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

// Sealed-field openings (`reveal-to`, `/v1/sealed`) need a token with the
// reveal scope: 401 without a token, 403 with one that lacks it; and a
// server that records the read (a read-only one only with --access-log).
fn need_reveal(app: &Inner, who: &Caller, what: &str) -> Result<(), Response> {
    match &who.token {
        None => Err(unauthorized(&format!(
            "{what} needs Authorization: Bearer TOKEN with the reveal scope (sealed-field openings are never public)"
        ))),
        Some(t) if !t.scopes.reveal => Err(error(
            403,
            format!(
                "token {:?} has no reveal scope (stele token add FILE NAME --scope read,reveal)",
                t.name
            ),
            None,
        )),
        Some(_) if !app.records_reads() => Err(error(
            403,
            format!(
                "{what}: this read-only server records no stele.access events, so it serves no sealed-field openings; start it with --access-log DIR to record reads in another log"
            ),
            None,
        )),
        Some(_) => Ok(()),
    }
}

/// Most auditors one export is revealed to.
const MAX_REVEAL: usize = 16;

// `reveal-to=age1…,age1…`: checks the caller may have openings and that each
// recipient is an auditor of the log. Messages name recipients (public keys),
// never anything sealed.
async fn reveal_to(app: &Inner, who: &Caller, list: &str) -> Result<Vec<String>, Response> {
    need_reveal(app, who, "reveal-to")?;
    let mut out: Vec<String> = Vec::new();
    for r in list.split(',').filter(|r| !r.is_empty()) {
        if out.len() == MAX_REVEAL {
            return Err(bad_query(format!(
                "reveal-to lists more than {MAX_REVEAL} recipients"
            )));
        }
        if stele_seal::parse_recipient(r).is_err() {
            return Err(bad_query(format!(
                "reveal-to: item {} is not an age X25519 recipient (age1…)",
                out.len() + 1
            )));
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_string());
        }
    }
    if out.is_empty() {
        return Err(bad_query("reveal-to lists no recipient".into()));
    }
    let auditors = match (&app.cluster, &app.log, &app.ro) {
        (Some(c), _, _) if c.has_sealing() => c.auditors().await.map_err(io_fail)?,
        (Some(_), _, _) => Vec::new(),
        (None, Some(log), _) => crate::sealed::auditors(log.dir()).map_err(io_fail)?,
        (None, None, Some(ro)) => crate::sealed::auditors(&ro.dir).map_err(io_fail)?,
        (None, None, None) => return Err(error(503, "no log", None)),
    };
    for r in &out {
        if !auditors.contains(r) {
            return Err(error(
                400,
                format!(
                    "{} is not an auditor of this log (stele auditor add DIR RECIPIENT)",
                    stele_seal::shown_recipient(r)
                ),
                None,
            ));
        }
    }
    Ok(out)
}

async fn get_metrics(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = app.0.auth_read(&headers, peer, Data::Entries) {
        return r;
    }
    if let Err(e) = Query::parse(q.as_deref(), &[]) {
        return bad_query(e);
    }
    let mut text = if let Some(c) = &app.0.cluster {
        match cluster::metrics(&app.0, c).await {
            Ok(t) => t,
            Err(r) => return r,
        }
    } else {
        let view = match app.0.view().await {
            Ok(v) => v,
            Err(r) => return r,
        };
        let signed = view.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
        let mut text = app
            .0
            .metrics
            .render(view.size(), view.checkpoints().len(), signed);
        if let Some(ro) = &app.0.ro
            && let Some(st) = crate::mirror::read_status(&ro.dir)
        {
            text.push_str(&mirror_metrics(&st, view.size()));
        }
        if let Some(a) = &app.0.anchor_stats {
            text.push_str(&a.render());
        }
        text
    };
    let net = &app.0.net;
    for (name, help, v) in [
        (
            "stele_http_connections",
            "Open HTTP connections.",
            net.open.load(Ordering::Relaxed),
        ),
        (
            "stele_http_connections_refused_total",
            "Connections refused at --max-connections.",
            net.refused.load(Ordering::Relaxed),
        ),
        (
            "stele_http_connections_timed_out_total",
            "Connections closed by a header, idle or write timeout.",
            net.timed_out.load(Ordering::Relaxed),
        ),
        (
            "stele_read_forced_checkpoints_total",
            "Checkpoints signed because a read needed one.",
            app.0.forced_signatures.load(Ordering::Relaxed),
        ),
    ] {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {}\n{name} {v}\n",
            if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            }
        ));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

// A mirror's lag and alerts, from the status its last poll wrote.
fn mirror_metrics(st: &crate::mirror::Status, held: u64) -> String {
    let now = crate::log::system_micros() / 1_000_000;
    let mut o = String::new();
    let mut gauge = |name: &str, kind: &str, help: &str, v: i64| {
        o.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        ));
    };
    let verified = st.verified_size.max(held) as i64;
    gauge(
        "stele_mirror_verified_size",
        "gauge",
        "Entries the mirror holds, verified against a checkpoint signed by the pinned key.",
        verified,
    );
    gauge(
        "stele_mirror_origin_size",
        "gauge",
        "Size of the origin's latest signed checkpoint at the last poll.",
        st.origin_size as i64,
    );
    gauge(
        "stele_mirror_lag_entries",
        "gauge",
        "Entries the origin signed that the mirror does not hold yet.",
        (st.origin_size as i64 - verified).max(0),
    );
    gauge(
        "stele_mirror_lag_seconds",
        "gauge",
        "Seconds since the mirror last held everything the origin had signed.",
        if st.caught_up_at > 0 {
            (now - st.caught_up_at).max(0)
        } else {
            -1
        },
    );
    gauge(
        "stele_mirror_last_poll_timestamp_seconds",
        "gauge",
        "Unix time of the mirror's last poll.",
        st.last_poll,
    );
    gauge(
        "stele_mirror_alerts_total",
        "counter",
        "Alerts the running mirror process raised.",
        st.alerts as i64,
    );
    gauge(
        "stele_mirror_fetched_bytes_total",
        "counter",
        "Body bytes the running mirror process fetched.",
        st.bytes_fetched as i64,
    );
    o
}

// /healthz is public: the cause of a failure (an I/O error names the
// log's files, a database error its host) is told only to a caller with a
// read token, and on stderr; anyone else gets a fixed message.
async fn healthz(State(app): State<App>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(e) = Query::parse(q.as_deref(), &[]) {
        return bad_query(e);
    }
    let detail = matches!(app.0.bearer(&headers), (Bearer::Known(t), _) if t.scopes.read);
    if let Some(c) = &app.0.cluster
        && let Err(e) = c.sequenced().await
    {
        let msg = format!("the log's database cannot be read: {e}");
        eprintln!("stele serve: /healthz: {msg}");
        return error(
            503,
            if detail {
                msg
            } else {
                "the log's database cannot be read".into()
            },
            None,
        );
    }
    let h = app.0.health.lock().unwrap();
    if let Some(cause) = &h.poisoned {
        let full = h.storage_full.is_some();
        return error(
            if full { 507 } else { 503 },
            if detail {
                format!("the log refuses appends until the server restarts: {cause}")
            } else if full {
                "storage full: the writer stopped after a storage error and refuses appends until the server restarts".into()
            } else {
                "the writer stopped after a storage error and refuses appends until the server restarts".into()
            },
            None,
        );
    }
    if let Some(e) = &h.storage_full {
        return error(
            507,
            if detail {
                format!("the last append failed for lack of disk space and was rolled back: {e}")
            } else {
                "storage full: the last append failed for lack of disk space and was rolled back"
                    .into()
            },
            None,
        );
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok\n",
    )
        .into_response()
}

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json; charset=utf-8",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" | "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

// GET of the verifier page's files, as web/serve.mjs serves them. Only
// plain files inside --web: no symlink is followed out of it.
async fn static_file(State(app): State<App>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(405, "method not allowed", None);
    }
    let Some(root) = app.0.web.clone() else {
        return error(
            404,
            "no verifier page here: start stele serve with --web DIR (web/dist)",
            None,
        );
    };
    let path = req.uri().path().to_string();
    let rel = if path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path
    };
    // Only plain path segments: no "..", no empty or hidden segments, no NUL.
    let segs: Vec<&str> = rel.trim_start_matches('/').split('/').collect();
    if segs.iter().any(|s| {
        s.is_empty()
            || s.starts_with('.')
            || s.contains('\0')
            || s.contains('\\')
            || s.contains('%')
    }) {
        return error(404, "not found", None);
    }
    let file = segs.iter().fold(root.clone(), |p, s| p.join(s));
    let data = tokio::task::spawn_blocking(move || {
        // `root` is canonical (bind made it so): the file's real path must
        // stay under it.
        let real = std::fs::canonicalize(&file).ok()?;
        if !real.starts_with(&root) || !real.is_file() {
            return None;
        }
        std::fs::read(&real).ok()
    })
    .await
    .ok()
    .flatten();
    match data {
        Some(d) => ([(header::CONTENT_TYPE, mime(Path::new(&rel)))], d).into_response(),
        None => error(404, "not found", None),
    }
}

// Which CORS policy a path falls under: judged on the path as the router
// sees it, percent-decoded (`/tile/entries%2F000` is routed as an entry
// bundle and must not get the hash tiles' open CORS policy).
fn data_of(raw: &str) -> Option<Data> {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let path: &str = &decoded;
    if path == "/checkpoint" || path.starts_with("/v1/proof/") {
        Some(Data::Hashes)
    } else if path.starts_with("/tile/entries/") || path == "/v1/entries" || path == "/v1/export" {
        Some(Data::Entries)
    } else if path.starts_with("/tile/") {
        Some(Data::Hashes)
    } else {
        None
    }
}

// CORS headers for a response to `origin` on `path`: hash-only data is open
// to every origin (no credentials); entries and exports to the
// --cors-origin list only.
fn cors(app: &Inner, path: &str, origin: Option<&HeaderValue>, h: &mut HeaderMap) {
    let Some(data) = data_of(path) else {
        return;
    };
    let allowed = match data {
        Data::Hashes => Some(HeaderValue::from_static("*")),
        Data::Entries => origin
            .filter(|o| app.cors.iter().any(|a| a.as_bytes() == o.as_bytes()))
            .cloned(),
    };
    if let Some(a) = allowed {
        let _ = h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, a);
        let _ = h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("stele-from, stele-to, stele-reads"),
        );
    }
}

// OPTIONS: the CORS preflight for reads, and `Allow` for everything.
fn options(app: &Inner, req: &Request) -> Response {
    let path = req.uri().path();
    let allow = match path {
        "/v1/entries" => "GET, POST, OPTIONS",
        "/v1/k8s-audit" => "POST, OPTIONS",
        _ => "GET, HEAD, OPTIONS",
    };
    let mut r = StatusCode::NO_CONTENT.into_response();
    let origin = req.headers().get(header::ORIGIN);
    let h = r.headers_mut();
    let _ = h.insert(header::ALLOW, HeaderValue::from_static(allow));
    cors(app, path, origin, h);
    if h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let _ = h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD"),
        );
        let _ = h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization"),
        );
        let _ = h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    r
}

// Counts every response by status, answers OPTIONS, and adds the page's
// security headers, CORS and Vary.
async fn finish(State(app): State<App>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut r = if req.method() == Method::OPTIONS {
        options(&app.0, &req)
    } else {
        next.run(req).await
    };
    app.0.metrics.count_status(r.status().as_u16());
    let h = r.headers_mut();
    let _ = h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    let _ = h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let _ = h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let _ = h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        let _ = h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    // The answer depends on the token unless every read is public, and on
    // the Origin (CORS) for every read of the log.
    if data_of(&path).is_some() {
        let _ = h.insert(
            header::VARY,
            HeaderValue::from_static(if app.0.reads == Reads::Public {
                "Origin"
            } else {
                "Authorization, Origin"
            }),
        );
    }
    if !h.contains_key(header::ALLOW) {
        cors(&app.0, &path, origin.as_ref(), h);
    }
    r
}

fn router(app: App) -> Router {
    Router::new()
        .route("/v1/entries", post(post_entries).get(get_entries))
        .route("/v1/k8s-audit", post(post_k8s))
        .route("/checkpoint", get(get_checkpoint))
        .route("/tile/{*rest}", get(get_tile))
        .route("/v1/proof/inclusion", get(get_inclusion))
        .route("/v1/proof/consistency", get(get_consistency))
        .route("/v1/export", get(get_export))
        .route("/v1/keys", get(get_keys))
        .route("/v1/sealed", get(get_sealed))
        .route("/metrics", get(get_metrics))
        .route("/healthz", get(healthz))
        .fallback(static_file)
        .layer(middleware::from_fn_with_state(app.clone(), finish))
        .with_state(app)
}

/// Resolves on SIGTERM or SIGINT: the shutdown `stele serve` uses. The
/// handlers are installed here, at once, on `rt` (the server's runtime):
/// call it before saying the server listens. Installed when the future was
/// first polled instead, a SIGTERM sent right after the first answers could
/// still find the default action and kill the server without its final
/// checkpoint (a cluster fault test saw a front-end exit so, once).
pub fn shutdown_signal(rt: &tokio::runtime::Handle) -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let _in = rt.enter();
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                }
            }
            (Ok(mut t), Err(_)) => {
                let _ = t.recv().await;
            }
            (Err(_), Ok(mut i)) => {
                let _ = i.recv().await;
            }
            (Err(_), Err(_)) => std::future::pending::<()>().await,
        }
    }
}

/// A bound, not yet running `stele serve`: the log is open (and locked),
/// the tokens loaded, the port bound.
pub struct Server {
    rt: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    limits: Limits,
    warnings: Vec<String>,
    app: App,
}

/// How a [`Server`] stopped.
#[derive(Debug)]
pub struct Stopped {
    /// The entries in the log.
    pub size: u64,
    /// Connections still busy at the shutdown deadline, dropped.
    pub dropped_connections: usize,
    /// The final checkpoint, signed after the last request was answered.
    pub checkpoint: Result<StoredCheckpoint>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("log", &self.app.0.log)
            .finish_non_exhaustive()
    }
}

// The idempotency keys of the last entries, read back from the log on start:
// a client retrying after a crash of the server gets its first receipts.
fn keys_from_log(log: &Log) -> Idempotency {
    let mut idem = Idempotency::default();
    let view = log.view();
    let size = view.size();
    // From the start of the run that the window's first entry is part of
    // (a request of up to --max-events entries): a run cut in two was
    // replayed with its first receipts missing.
    let key_at = |seq: u64| request_key(&view.entry(seq).ok()?);
    let mut from = size.saturating_sub(IDEMPOTENCY_KEYS as u64);
    if let Some(k) = (from < size).then(|| key_at(from)).flatten() {
        let floor = from.saturating_sub(IDEMPOTENCY_KEYS as u64);
        while from > floor && key_at(from - 1).as_ref() == Some(&k) {
            from -= 1;
        }
    }
    let entries = (from..size).filter_map(|seq| {
        let line = view.entry(seq).ok()?;
        let leaf_hash = view.leaf_hash(seq).ok()?;
        Some((Receipt { seq, leaf_hash }, line))
    });
    for (k, rs) in keys_in(entries) {
        idem.remember(k, Done::Receipts(None, Kept::from(&rs[..])));
    }
    idem
}

// The (token, Idempotency-Key) an entry line records in its writer member.
fn request_key(line: &[u8]) -> Option<(String, String)> {
    let e = serde_json::from_slice::<Value>(line).ok()?;
    let by = e.get("event")?.get(crate::log::WRITER_MEMBER)?;
    Some((
        by.get("token")?.as_str()?.to_string(),
        by.get("request")?.as_str()?.to_string(),
    ))
}

/// The idempotency keys recorded in entries (the writer member's `token`
/// and `request`), each with the receipts of its run of consecutive
/// entries, oldest first: how a restarted server (or a log migrated into
/// PostgreSQL) knows the keys of requests appended before.
pub(crate) fn keys_in<L: AsRef<[u8]>>(
    entries: impl IntoIterator<Item = (Receipt, L)>,
) -> Vec<((String, String), Vec<Receipt>)> {
    let mut out = Vec::new();
    let mut run: Option<((String, String), Vec<Receipt>)> = None;
    for (receipt, line) in entries {
        match (request_key(line.as_ref()), &mut run) {
            (Some(k), Some((rk, rs))) if *rk == k => rs.push(receipt),
            (Some(k), _) => {
                out.extend(run.take());
                run = Some((k, vec![receipt]));
            }
            (None, _) => out.extend(run.take()),
        }
    }
    out.extend(run);
    out
}

/// Starts a runtime from `builder` and binds `listen` on it: the runtime,
/// the listener and the address it got (the port chosen for port 0).
pub(super) fn runtime_and_listener(
    mut builder: tokio::runtime::Builder,
    listen: SocketAddr,
) -> Result<(tokio::runtime::Runtime, tokio::net::TcpListener, SocketAddr)> {
    let rt = builder.enable_all().build().map_err(|e| Error::Service {
        what: "start the runtime".into(),
        source: e,
    })?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(listen))
        .map_err(|e| Error::Service {
            what: format!("listen on {listen}"),
            source: e,
        })?;
    let addr = listener.local_addr().map_err(|e| Error::Service {
        what: "listen".into(),
        source: e,
    })?;
    Ok((rt, listener, addr))
}

impl Server {
    /// Opens the log, loads the tokens and binds the address.
    pub fn bind(c: Config) -> Result<Self> {
        let tokens = LiveTokens::load(c.tokens.as_deref())?;
        if matches!(c.reads, Some(Reads::Token | Reads::PublicHashes)) && c.tokens.is_none() {
            return Err(Error::Config {
                option: "--token-reads",
                why: "reads that need a token need --tokens FILE".into(),
            });
        }
        let reads = c.reads.unwrap_or(if c.tokens.is_some() {
            Reads::Token
        } else {
            Reads::Public
        });
        let web = match c.web {
            Some(w) if !w.join("index.html").is_file() => {
                return Err(Error::Config {
                    option: "--web",
                    why: format!("{}: no index.html there", w.display()),
                });
            }
            Some(w) => Some(w),
            None => Some(PathBuf::from("web/dist")).filter(|w| w.join("index.html").is_file()),
        };
        let web = match web {
            Some(w) => Some(std::fs::canonicalize(&w).map_err(|e| Error::Config {
                option: "--web",
                why: format!("{}: {e}", w.display()),
            })?),
            None => None,
        };
        for o in &c.cors_origins {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && !o.ends_with('/')
                && HeaderValue::from_str(o).is_ok();
            if !ok {
                return Err(Error::Config {
                    option: "--cors-origin",
                    why: format!(
                        "{o:?} is not an origin like https://dash.example.com (scheme and host, no path)"
                    ),
                });
            }
        }
        let mut warnings = Vec::new();
        if !c.listen.ip().is_loopback() {
            if c.tokens.is_none() {
                warnings.push(format!(
                    "listening on {} (not loopback) without --tokens: anyone who can reach it reads the whole log",
                    c.listen
                ));
            } else if reads == Reads::Public {
                warnings.push(format!(
                    "listening on {} (not loopback) with --public-reads: anyone who can reach it reads the whole log",
                    c.listen
                ));
            }
        }
        let metrics = Arc::new(Metrics::default());
        let opts = LogOptions {
            fs: Arc::new(TimingFs::new(metrics.clone(), c.fs.clone())),
            checkpoint_every: Some(c.checkpoint_every.max(1)),
            checkpoint_interval: Some(c.checkpoint_interval),
            background_checkpoints: true,
            cosign: c.cosign.clone(),
            ..LogOptions::default()
        };
        let (rt, listener, addr) =
            runtime_and_listener(tokio::runtime::Builder::new_multi_thread(), c.listen)?;
        let cluster = match &c.cluster {
            Some(loc) => Some(Arc::new(rt.block_on(cluster::open(
                loc,
                c.signing_key.as_deref(),
                c.seal_key.as_deref(),
                c.checkpoint_every,
                c.checkpoint_interval,
                c.cosign.as_deref(),
            ))?)),
            None => None,
        };
        let (log, ro, idem) = if cluster.is_some() {
            (None, None, Idempotency::default())
        } else if c.read_only {
            let ro = ReadOnly {
                dir: c.dir.clone(),
                cache: Mutex::new(None),
            };
            let _ = ro.view()?;
            (None, Some(ro), Idempotency::default())
        } else {
            let log = Arc::new(Log::open_with(&c.dir, opts)?);
            let idem = keys_from_log(&log);
            (Some(log), None, idem)
        };
        // A read-only server's reads recorded in another log, which it
        // opens as its writer (its lock held while serving).
        let access_log = match (&c.access_log, c.read_only) {
            (Some(d), true) => {
                if same_dir(d, &c.dir) {
                    return Err(Error::Config {
                        option: "--access-log",
                        why: format!(
                            "{} is the served directory: a read-only server never writes it; name another log",
                            d.display()
                        ),
                    });
                }
                Some(Arc::new(Log::open_with(
                    d,
                    LogOptions {
                        checkpoint_every: Some(c.checkpoint_every.max(1)),
                        checkpoint_interval: Some(c.checkpoint_interval),
                        background_checkpoints: true,
                        ..LogOptions::default()
                    },
                )?))
            }
            (Some(_), false) => {
                return Err(Error::Config {
                    option: "--access-log",
                    why: "only with --read-only (a writer records its reads in its own log)".into(),
                });
            }
            (None, _) => None,
        };
        let inflight_kib = c
            .max_inflight_bytes
            .div_ceil(1024)
            .clamp(1, Semaphore::MAX_PERMITS);
        let read_budget_kib = c
            .max_read_bytes
            .div_ceil(1024)
            .clamp(1, Semaphore::MAX_PERMITS);
        let app = App(Arc::new(Inner {
            log,
            access_log,
            cluster,
            ro,
            tokens,
            reads,
            max_body: c.max_body,
            max_events: c.max_events.max(1),
            body_timeout: c.body_timeout,
            inflight: Arc::new(Semaphore::new(inflight_kib)),
            inflight_shares: Mutex::new(HashMap::new()),
            inflight_kib,
            exports: Arc::new(Semaphore::new(c.max_exports.max(1))),
            read_budget: Arc::new(Semaphore::new(read_budget_kib)),
            read_budget_kib,
            read_ips: net::PerIp::default(),
            fetch_budget: Arc::new(Semaphore::new(read_budget_kib)),
            export_ips: net::PerIp::default(),
            // Behind a proxy that is not trusted every client has its
            // address: no share then.
            export_share: if c.limits.max_connections_per_ip == 0 && c.trusted_proxies.is_empty() {
                0
            } else {
                c.max_exports.max(1).div_ceil(2)
            },
            appenders: Semaphore::new(APPENDERS),
            page: c.page_size.max(1),
            web,
            metrics,
            net: Arc::new(NetStats::default()),
            health: Mutex::new(Health::default()),
            access: Mutex::new(Buckets {
                per_minute: f64::from(c.access_per_minute.max(1)),
                map: HashMap::new(),
            }),
            grants: Mutex::new(Grants::default()),
            sign_gate: tokio::sync::Mutex::new(None),
            read_sign_interval: c.read_sign_interval,
            cors: c.cors_origins,
            proxies: (c.trusted_proxies, c.proxy_header),
            idem: Mutex::new(idem),
            forced_signatures: AtomicU64::new(0),
            anchor_stats: c.anchor_stats,
        }));
        Ok(Self {
            rt,
            listener,
            addr,
            limits: c.limits,
            warnings,
            app,
        })
    }

    /// The address it listens on (the port chosen for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The log it serves (`None` when read-only).
    pub fn log(&self) -> Option<&Arc<Log>> {
        self.app.0.log.as_ref()
    }

    /// Entries in the log it serves.
    pub fn size(&self) -> u64 {
        if let Some(c) = &self.app.0.cluster {
            return self.rt.block_on(c.integrated()).unwrap_or(0);
        }
        self.app.0.view_now().map_or(0, |v| v.size())
    }

    /// The runtime the server runs on (for blocking work that reaches a
    /// cluster's stores from another thread).
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.rt.handle().clone()
    }

    /// The PostgreSQL + object storage log it serves, if it serves one.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.app.0.cluster.as_ref()
    }

    /// Who may read without a token.
    pub fn reads(&self) -> Reads {
        self.app.0.reads
    }

    /// The verifier page's directory, if one is served.
    pub fn web(&self) -> Option<&Path> {
        self.app.0.web.as_deref()
    }

    /// Risky settings worth a warning at start (a non-loopback address
    /// without tokens, ...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Serves until `shutdown` resolves, then stops accepting, answers every
    /// request already accepted (until the shutdown deadline; later ones are
    /// dropped) and signs a final checkpoint.
    pub fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<Stopped> {
        let Self {
            rt,
            listener,
            limits,
            app,
            ..
        } = self;
        let log = app.0.log.clone();
        let ro_view = app.0.ro.as_ref().map(|ro| ro.dir.clone());
        let net = app.0.net.clone();
        let cl = app.0.cluster.clone();
        let dropped = rt.block_on(net::serve(listener, router(app), limits, net, shutdown));
        if let Some(c) = cl {
            // Integrate and sign what this front-end (and any other) sequenced.
            let r = rt.block_on(cluster::finish(&c));
            rt.shutdown_timeout(limits.shutdown_deadline);
            let (size, checkpoint) = r?;
            return Ok(Stopped {
                size,
                dropped_connections: dropped,
                checkpoint,
            });
        }
        // Requests cut at the deadline may still be appending: the runtime
        // waits for its blocking threads (an append finishes, its answer is
        // dropped; an export's send fails at once).
        rt.shutdown_timeout(limits.shutdown_deadline);
        // Every answered request has been appended: sign what they wrote.
        let (size, checkpoint) = match (log, ro_view) {
            (Some(log), _) => (log.size(), log.checkpoint()),
            (None, dir) => {
                // Read-only: nothing to sign; report what is there.
                let v = dir
                    .ok_or_else(|| Error::OutOfRange("no log".into()))
                    .and_then(|d| View::open_read_only(&d))?;
                let cp = v
                    .latest_checkpoint()
                    .cloned()
                    .ok_or_else(|| Error::OutOfRange("the directory has no checkpoint".into()));
                (v.size(), cp)
            }
        };
        Ok(Stopped {
            size,
            dropped_connections: dropped,
            checkpoint,
        })
    }
}

// Whether two paths name one directory (both exist: compared after
// resolving links; otherwise as given).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            let _ = h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn lines_become_a_bundle_in_place() {
        let lines: Vec<Vec<u8>> = vec![
            b"{\"a\":1}".to_vec(),
            vec![b'x'; 300],
            b"z".to_vec(),
            vec![b'y'; 65_535],
        ];
        for n in 0..=lines.len() {
            let mut text = Vec::new();
            for l in &lines[..n] {
                text.extend_from_slice(l);
                text.push(b'\n');
            }
            let want = stele_core::tiles::encode_entry_bundle(lines[..n].iter().map(Vec::as_slice))
                .unwrap();
            let cap = text.len() + n;
            let got = lines_to_bundle(text).unwrap();
            assert_eq!(got, want, "{n} lines");
            assert_eq!(got.len(), cap, "{n} lines");
        }
        let e = lines_to_bundle([vec![b'q'; 65_536], b"\n".to_vec()].concat()).unwrap_err();
        assert!(e.to_string().contains("65536"), "{e}");
    }

    #[test]
    fn bundle_grants_double_along_a_sequential_read_and_expire() {
        let w = u64::from(TILE_WIDTH);
        let size = 3906 * w + 17;
        let t0 = Instant::now();
        // A catch-up reading every bundle in order, as a mirror does.
        let (mut g, mut records, mut widest) = (None::<Grant>, 0, 0);
        for k in 0..=size / w {
            let (from, to) = (k * w, ((k + 1) * w).min(size));
            if g.is_some_and(|g| g.covers(from, to, t0)) {
                continue;
            }
            let n = Grant::next(g.as_ref(), from, to, size, t0);
            assert!(n.covers(from, to, t0), "bundle {k}: {n:?}");
            // Contiguous: every record starts where the last one ended.
            assert_eq!(n.from, g.map_or(0, |g| g.to), "bundle {k}");
            widest = widest.max(n.to - n.from);
            records += 1;
            g = Some(n);
        }
        // 1 + 2 + ... + 128 bundles in 8 records, then 256 a record.
        assert_eq!(records, 8 + (3907 - 255_u64).div_ceil(256), "{records}");
        assert_eq!(widest, BUNDLE_GRANT_MAX * w);
        assert_eq!(g.unwrap().to, size);
        // A jump elsewhere starts again from its own bundle.
        let g = Grant::next(None, 0, w, size, t0);
        let g = Grant::next(Some(&g), w, 2 * w, size, t0);
        assert_eq!((g.from, g.to), (w, 3 * w));
        let j = Grant::next(Some(&g), 100 * w, 101 * w, size, t0);
        assert_eq!((j.from, j.to, j.bundles), (100 * w, 101 * w, 1));
        let j = Grant::next(Some(&g), 20 * w, 21 * w, size, t0);
        assert_eq!((j.from, j.to, j.bundles), (20 * w, 21 * w, 1));
        let j = Grant::next(Some(&g), 0, w, size, t0);
        assert_eq!((j.from, j.to, j.bundles), (0, w, 1));
        // Out of order within the next 16 bundles: the record covers the
        // gap too (it starts where the last one ended).
        let n = Grant::next(Some(&g), 4 * w, 5 * w, size, t0);
        assert_eq!((n.from, n.to), (3 * w, 7 * w));
        let n = Grant::next(Some(&g), 18 * w, 19 * w, size, t0);
        assert_eq!((n.from, n.to, n.bundles), (3 * w, 19 * w, 4));
        // A wave of 16 bundles arriving last first, as parallel fetches may:
        // the first to arrive takes a record for the whole wave.
        let mut grants = vec![Grant::next(None, 0, w, size, t0)];
        for k in (1..17).rev() {
            let (a, b) = (k * w, (k + 1) * w);
            if grants.iter().any(|g| g.covers(a, b, t0)) {
                continue;
            }
            let prev = grants.iter().filter(|g| g.from <= a).max_by_key(|g| g.to);
            grants.push(Grant::next(prev, a, b, size, t0));
        }
        assert_eq!(grants.len(), 2, "{grants:?}");
        assert_eq!((grants[1].from, grants[1].to), (w, 17 * w));
        // A partial bundle read again after the tree grew: not covered.
        let small = Grant::next(None, 0, 10, 10, t0);
        assert!(!small.covers(0, 20, t0));
        let grown = Grant::next(Some(&small), 0, 20, 20, t0);
        assert!(grown.covers(0, 20, t0));
        // After BUNDLE_GRANT_SECONDS a grant covers nothing and is not grown.
        let later = t0 + Duration::from_secs(BUNDLE_GRANT_SECONDS);
        assert!(!g.covers(w, 2 * w, later));
        let n = Grant::next(Some(&g), 3 * w, 4 * w, size, later);
        assert_eq!((n.from, n.to, n.bundles), (3 * w, 4 * w, 1));
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let proxies: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let (x, f) = (ProxyHeader::XForwardedFor, ProxyHeader::Forwarded);
        let xff = hm(&[("x-forwarded-for", "198.51.100.7, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(
            client_addr(peer, &xff, &proxies, x),
            "203.0.113.9:0".parse().unwrap()
        );
        let fwd = hm(&[(
            "forwarded",
            "for=198.51.100.7, for=\"[2001:db8::1]:4711\";proto=https",
        )]);
        assert_eq!(
            client_addr(peer, &fwd, &proxies, f).ip(),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        // Only the configured header counts: a client's own Forwarded,
        // passed through by a proxy that appends X-Forwarded-For, names
        // nobody (red-team finding: it chose its address in access records
        // and escaped per-reader rates); garbage is skipped.
        let both = hm(&[
            ("forwarded", "for=unknown, for=192.0.2.60"),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        assert_eq!(
            client_addr(peer, &both, &proxies, x).ip().to_string(),
            "1.1.1.1"
        );
        assert_eq!(
            client_addr(peer, &both, &proxies, f).ip().to_string(),
            "192.0.2.60"
        );
        assert_eq!(client_addr(peer, &fwd, &proxies, x), peer);
        // An untrusted peer's headers are ignored.
        let other: SocketAddr = "192.0.2.1:1".parse().unwrap();
        assert_eq!(client_addr(other, &xff, &proxies, x), other);
        // Only proxies in the chain: the peer itself.
        let only = hm(&[("x-forwarded-for", "10.0.0.2")]);
        assert_eq!(client_addr(peer, &only, &proxies, x), peer);
    }

    #[test]
    fn a_reader_gets_a_burst_then_waits() {
        let mut b = Buckets {
            per_minute: 3.0,
            map: HashMap::new(),
        };
        assert!(b.take("a").is_ok() && b.take("a").is_ok() && b.take("a").is_ok());
        let wait = b.take("a").unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(b.take("b").is_ok());
    }

    // A request's receipts are remembered as its indices (constant size,
    // whatever the request's size): only receipts that are not consecutive
    // (never a file log's) are kept whole.
    #[test]
    fn remembered_receipts_are_their_indices() {
        let rs = |seqs: &[u64]| -> Vec<Receipt> {
            seqs.iter()
                .map(|&seq| Receipt {
                    seq,
                    leaf_hash: stele_core::Hash([seq as u8; 32]),
                })
                .collect()
        };
        let big: Vec<u64> = (5..10_005).collect();
        assert_eq!(Kept::from(&rs(&big)[..]), Kept::Seqs(5..10_005));
        assert_eq!(Kept::from(&rs(&[7])[..]), Kept::Seqs(7..8));
        assert_eq!(Kept::from(&rs(&[])[..]), Kept::Seqs(0..0));
        let gap = rs(&[3, 4, 6]);
        assert_eq!(Kept::from(&gap[..]), Kept::List(Arc::new(gap.clone())));
        assert!(matches!(Kept::from(&rs(&[4, 3])[..]), Kept::List(_)));
    }

    #[test]
    fn failed_requests_never_push_remembered_idempotency_keys_out() {
        let mut idem = Idempotency::default();
        let key = |t: &str, k: usize| (t.to_owned(), k.to_string());
        let done = || Done::Receipts(None, Kept::from(&[][..]));
        idem.remember(key("app-a", 0), done());
        idem.remember(key("app-b", 0), done());
        for i in 1..=IDEMPOTENCY_KEYS + 10 {
            idem.remember(key("app-b", i), Done::Pending);
            idem.forget(&key("app-b", i));
        }
        assert!(idem.map.contains_key(&key("app-a", 0)));
        assert!(idem.map.contains_key(&key("app-b", 0)));
        assert_eq!(idem.order["app-b"].len(), 1);
        // One token's successful keys push out only its own oldest: the
        // other token's stay, and each token's bound holds.
        for i in 1..=IDEMPOTENCY_KEYS {
            idem.remember(key("app-b", i), done());
        }
        assert!(!idem.map.contains_key(&key("app-b", 0)));
        assert!(idem.map.contains_key(&key("app-a", 0)));
        assert_eq!(idem.order["app-b"].len(), IDEMPOTENCY_KEYS);
        assert_eq!(idem.map.len(), IDEMPOTENCY_KEYS + 1);
    }
}
