//! `stele serve`: the log over HTTP. Ingestion with group commit, C2SP
//! tlog-tiles reads, proofs, entries and exports (each read of entries
//! recorded as a `stele.access` entry), the verifier page, metrics.
//! writer/README.md ("HTTP service") is the user's description.

// reason: handlers return a ready error `Response` early with `?`; it is
// built once per failed request, so boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod auth;
mod bench_http;
mod body;
mod k8s;
mod metrics;
mod writer;

pub use bench_http::{BenchHttpArgs, bench_http};

use crate::Fail;
use auth::Tokens;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path as UrlPath, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics::{Metrics, TimingFs};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use stele_core::merkle::HashReader;
use stele_core::tiles::{TILE_HEIGHT, Tile, TilePath, encode_entry_bundle, tile_exists};
use stele_writer::{Log, LogOptions, Receipt};
use tokio::sync::{mpsc, oneshot};
use writer::{Failure, Job};

/// The verifier page's Content-Security-Policy: web/csp.txt, its one copy.
pub const CSP: &str = include_str!("../../../web/csp.txt").trim_ascii();

/// `stele serve` options.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Writes need `Authorization: Bearer TOKEN` with a token from --tokens \
(`stele token add FILE NAME` makes one). Reads (checkpoint, tiles, proofs, entries, exports, metrics) \
need a token too when --tokens is given, unless --public-reads. Every read of entries (GET /v1/entries, \
/v1/export, /tile/entries/…) is recorded first as a durable stele.access entry naming the token (or the \
remote address). SIGTERM or SIGINT: stop accepting, finish in-flight requests, sign a final checkpoint."
)]
pub struct ServeArgs {
    /// The log directory (made with `stele init`).
    dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Tokens file (NAME sha256:HEX per line). Without it, every write is refused.
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Reads need no token (the default without --tokens).
    #[arg(long, conflicts_with = "token_reads")]
    public_reads: bool,
    /// Reads need a token (the default with --tokens).
    #[arg(long)]
    token_reads: bool,
    /// Largest request body accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_body: usize,
    /// Sign a checkpoint when this many entries are unsigned.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    checkpoint_every: u64,
    /// Sign a checkpoint this long after the last one if the tree grew.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::parse_duration)]
    checkpoint_interval: Duration,
    /// Directory of the verifier page served at / (default: web/dist if it exists).
    #[arg(long, value_name = "DIR")]
    web: Option<PathBuf>,
    /// Most entries one GET /v1/entries returns.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    page_size: u64,
}

/// `stele token` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum TokenCmd {
    /// Make a token for NAME, store its SHA-256 in FILE, print the token once.
    Add {
        /// The tokens file (created with mode 0600 if missing).
        file: PathBuf,
        /// The token's name: the actor of the access events it causes.
        name: String,
    },
}

/// Runs `stele token`.
pub fn token(cmd: TokenCmd) -> Result<u8, Fail> {
    match cmd {
        TokenCmd::Add { file, name } => {
            let t = auth::add_token(&file, &name).map_err(|e| Fail::usage(e, None))?;
            println!("{t}");
            eprintln!(
                "stele: token {name:?} added to {} (only its SHA-256 is stored; this is the only time it is shown). \
A running `stele serve` reads the file on start: restart it.",
                file.display()
            );
            Ok(0)
        }
    }
}

struct Inner {
    log: Arc<Log>,
    jobs: mpsc::Sender<Job>,
    tokens: Tokens,
    token_reads: bool,
    max_body: usize,
    page: u64,
    web: Option<PathBuf>,
    metrics: Arc<Metrics>,
    poisoned: Arc<AtomicBool>,
}

#[derive(Clone)]
struct App(Arc<Inner>);

/// Who is reading: the token's name, or none, and the remote address.
struct Caller {
    name: Option<String>,
    remote: SocketAddr,
}

impl Caller {
    fn actor(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.remote.ip().to_string())
    }
}

fn error(status: u16, msg: impl Into<String>, item: Option<usize>) -> Response {
    let mut body = json!({ "error": msg.into() });
    if let Some(i) = item {
        body["item"] = json!(i);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, format!("{body}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn fail(f: Failure) -> Response {
    error(f.status, f.msg, f.item)
}

fn unauthorized(msg: &str) -> Response {
    let mut r = error(401, msg, None);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"stele\""),
    );
    r
}

fn closed() -> Response {
    error(
        503,
        "the server is shutting down; nothing was written",
        None,
    )
}

impl Inner {
    fn auth_write(&self, headers: &HeaderMap) -> Result<String, Response> {
        if self.tokens.len() == 0 {
            return Err(unauthorized(
                "this server has no tokens file (--tokens), so it accepts no writes",
            ));
        }
        let h = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        match self.tokens.check(h) {
            Some(name) => Ok(name.to_string()),
            None if h.is_none() => Err(unauthorized(
                "missing Authorization: Bearer TOKEN; nothing was written",
            )),
            None => Err(unauthorized("unknown bearer token; nothing was written")),
        }
    }

    fn auth_read(&self, headers: &HeaderMap, remote: SocketAddr) -> Result<Caller, Response> {
        let h = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        let name = self.tokens.check(h).map(str::to_string);
        if self.token_reads && name.is_none() {
            return Err(unauthorized(if h.is_none() {
                "reads need Authorization: Bearer TOKEN on this server"
            } else {
                "unknown bearer token"
            }));
        }
        Ok(Caller { name, remote })
    }

    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, Failure>>) -> Job,
    ) -> Result<T, Response> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send(job(tx)).await.map_err(|_| closed())?;
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(f)) => Err(fail(f)),
            Err(_) => Err(closed()),
        }
    }

    // Records a read durably before anything of it is sent.
    async fn record_access(
        &self,
        who: &Caller,
        path: &str,
        query: &Option<String>,
        read: Value,
    ) -> Result<(), Response> {
        let event = json!({
            "type": "stele.access",
            "actor": who.actor(),
            "action": "read",
            "target": path,
            "via": "http",
            "remote": who.remote.to_string(),
            "token": who.name,
            "query": query,
            "read": read,
        });
        self.ask(|reply| Job::Reserved { event, reply }).await?;
        self.metrics.access_events.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    // The latest checkpoint's size, signing one if it does not reach `need`.
    async fn signed_size(&self, need: u64) -> Result<u64, Response> {
        let latest = self
            .log
            .view()
            .latest_checkpoint()
            .map_or(0, |c| c.checkpoint.size);
        if latest >= need {
            return Ok(latest);
        }
        let cp = self.ask(|reply| Job::Checkpoint { reply }).await?;
        Ok(cp.checkpoint.size)
    }
}

fn query_map(q: &Option<String>) -> HashMap<String, String> {
    q.as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn q_u64(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, Response> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            error(
                400,
                format!("query parameter {name}={v:?} is not a non-negative integer"),
                None,
            )
        }),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Response> + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(error(500, format!("internal error: {e}"), None)))
}

fn io_fail(e: stele_writer::Error) -> Response {
    match e {
        stele_writer::Error::OutOfRange(m) => error(400, m, None),
        e => error(500, e.to_string(), None),
    }
}

async fn read_body(app: &Inner, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let too_big = |n: Option<u64>| {
        error(
            413,
            match n {
                Some(n) => format!(
                    "request body is {n} bytes, more than the limit of {} (--max-body); nothing was written",
                    app.max_body
                ),
                None => format!(
                    "request body is more than the limit of {} bytes (--max-body); nothing was written",
                    app.max_body
                ),
            },
            None,
        )
    };
    if let Some(n) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && n > app.max_body as u64
    {
        return Err(too_big(Some(n)));
    }
    axum::body::to_bytes(body, app.max_body).await.map_err(|e| {
        if e.to_string().contains("length limit") {
            too_big(None)
        } else {
            error(400, format!("reading the request body: {e}"), None)
        }
    })
}

fn receipts_json(rs: &[Receipt]) -> String {
    let mut s = String::with_capacity(rs.len() * 64 + 2);
    s.push('[');
    for (i, r) in rs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        // Field order as `stele append` prints it: seq first.
        s.push_str(&format!(
            "{{\"seq\":{},\"leaf_hash\":\"{}\"}}",
            r.seq,
            r.leaf_hash.to_base64()
        ));
    }
    s.push_str("]\n");
    s
}

async fn append(app: &Inner, events: Vec<Value>, since: Instant) -> Response {
    if events.is_empty() {
        return ([(header::CONTENT_TYPE, "application/json")], "[]\n").into_response();
    }
    match app
        .ask(|reply| Job::Append {
            events,
            since,
            reply,
        })
        .await
    {
        Ok(rs) => (
            [(header::CONTENT_TYPE, "application/json")],
            receipts_json(&rs),
        )
            .into_response(),
        Err(r) => r,
    }
}

type Parser = fn(&[u8]) -> Result<Vec<Value>, body::ItemError>;

async fn ingest(app: App, headers: HeaderMap, body: Body, parse: Parser) -> Response {
    let since = Instant::now();
    if let Err(r) = app.0.auth_write(&headers) {
        return r;
    }
    let bytes = match read_body(&app.0, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // Parsing a big batch is CPU work: off the async threads.
    let parsed = if bytes.len() < 16 * 1024 {
        parse(&bytes)
    } else {
        match tokio::task::spawn_blocking(move || parse(&bytes)).await {
            Ok(p) => p,
            Err(e) => return error(500, format!("internal error: {e}"), None),
        }
    };
    match parsed {
        Ok(events) => append(&app.0, events, since).await,
        Err(e) => error(
            if e.too_large { 413 } else { 400 },
            format!("{}; nothing was written", e.msg),
            e.item,
        ),
    }
}

async fn post_entries(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    ingest(app, headers, body, body::parse_events).await
}

async fn post_k8s(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    ingest(app, headers, body, k8s::events_from_event_list).await
}

async fn get_checkpoint(
    State(app): State<App>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = app.0.auth_read(&headers, remote) {
        return r;
    }
    match app.0.log.view().latest_checkpoint() {
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

async fn get_tile(
    State(app): State<App>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    UrlPath(rest): UrlPath<String>,
    query: RawQuery,
) -> Response {
    let who = match app.0.auth_read(&headers, remote) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let path = format!("tile/{rest}");
    let parsed = match Tile::parse_path(&path) {
        Ok(p) => p,
        Err(e) => return error(404, e.to_string(), None),
    };
    let view = app.0.log.view();
    let size = view.size();
    let (TilePath::Hashes(tile) | TilePath::Entries(tile)) = parsed;
    if !tile_exists(&tile, size) {
        return error(
            404,
            format!("{path} is not in the log's tree of {size} entries"),
            None,
        );
    }
    let data = match parsed {
        TilePath::Hashes(t) => {
            blocking(move || {
                let level = u32::from(t.level) * TILE_HEIGHT;
                let mut out = Vec::with_capacity(t.byte_len());
                for i in 0..u64::from(t.width) {
                    out.extend_from_slice(
                        &view.read_hash(level, t.first() + i).map_err(io_fail)?.0,
                    );
                }
                Ok(out)
            })
            .await
        }
        TilePath::Entries(t) => {
            let (from, to) = (t.first(), t.first() + u64::from(t.width));
            let read = json!({"entries": [from, to], "bundle": path});
            if let Err(r) = app
                .0
                .record_access(&who, &format!("/{path}"), &query.0, read)
                .await
            {
                return r;
            }
            blocking(move || {
                let mut lines = Vec::new();
                view.write_entries(from, to, &mut lines).map_err(io_fail)?;
                let entries = lines
                    .strip_suffix(b"\n")
                    .unwrap_or(&lines)
                    .split(|b| *b == b'\n');
                encode_entry_bundle(entries).map_err(|e| error(500, e.to_string(), None))
            })
            .await
        }
    };
    match data {
        Ok(d) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            d,
        )
            .into_response(),
        Err(r) => r,
    }
}

fn json_text(s: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], s).into_response()
}

async fn get_inclusion(
    State(app): State<App>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = app.0.auth_read(&headers, remote) {
        return r;
    }
    let qm = query_map(&q);
    let (index, size) = match (q_u64(&qm, "index"), q_u64(&qm, "size")) {
        (Ok(Some(i)), Ok(s)) => (i, s),
        (Ok(None), _) => return error(400, "query parameter index is missing", None),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let size = match size {
        Some(s) => s,
        None => match app.0.signed_size(index + 1).await {
            Ok(s) => s,
            Err(r) => return r,
        },
    };
    let view = app.0.log.view();
    if let Err(e) = view.check_inclusion(index, size) {
        return io_fail(e);
    }
    // Byte for byte what `stele prove inclusion --json` prints.
    let r = blocking(move || view.inclusion(index, size).map_err(io_fail)).await;
    r.map_or_else(|r| r, |p| json_text(format!("{}\n", p.to_json())))
}

async fn get_consistency(
    State(app): State<App>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = app.0.auth_read(&headers, remote) {
        return r;
    }
    let qm = query_map(&q);
    let (from, to) = match (q_u64(&qm, "from"), q_u64(&qm, "to")) {
        (Ok(Some(f)), Ok(t)) => (f, t),
        (Ok(None), _) => return error(400, "query parameter from is missing", None),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let to = match to {
        Some(t) => t,
        None => match app.0.signed_size(from).await {
            Ok(s) => s,
            Err(r) => return r,
        },
    };
    let view = app.0.log.view();
    if let Err(e) = view.check_consistency(from, to) {
        return io_fail(e);
    }
    // Byte for byte what `stele prove consistency --json` prints.
    let r = blocking(move || view.consistency(from, to).map_err(io_fail)).await;
    r.map_or_else(|r| r, |p| json_text(format!("{}\n", p.to_json())))
}

async fn get_entries(
    State(app): State<App>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let who = match app.0.auth_read(&headers, remote) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let qm = query_map(&q);
    let (from, to) = match (q_u64(&qm, "from"), q_u64(&qm, "to")) {
        (Ok(f), Ok(t)) => (f.unwrap_or(0), t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let view = app.0.log.view();
    let size = view.size();
    let to = to
        .unwrap_or(size)
        .min(from.saturating_add(app.0.page))
        .min(size);
    if from >= to {
        return error(
            400,
            format!("range {from}..{to} is not a non-empty part of the log's {size} entries"),
            None,
        );
    }
    let read = json!({"entries": [from, to], "tree_size": size});
    if let Err(r) = app.0.record_access(&who, "/v1/entries", &q, read).await {
        return r;
    }
    let r = blocking(move || {
        let mut out = Vec::new();
        view.write_entries(from, to, &mut out).map_err(io_fail)?;
        Ok(out)
    })
    .await;
    match r {
        Ok(body) => {
            let mut resp = ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
            let h = resp.headers_mut();
            h.insert(
                HeaderName::from_static("stele-from"),
                HeaderValue::from(from),
            );
            h.insert(HeaderName::from_static("stele-to"), HeaderValue::from(to));
            resp
        }
        Err(r) => r,
    }
}

// A body fed by a thread through a channel.
struct ChanBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for ChanBody {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
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
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| std::io::Error::other("client went away"))?;
        }
        Ok(())
    }
}

async fn get_export(
    State(app): State<App>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let who = match app.0.auth_read(&headers, remote) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let qm = query_map(&q);
    let size = app.0.log.size();
    enum Kind {
        Log,
        Range(u64, u64),
        Entries(Vec<u64>),
    }
    let kind = match (q_u64(&qm, "from"), q_u64(&qm, "to"), qm.get("entries")) {
        (Err(r), _, _) | (_, Err(r), _) => return r,
        (Ok(Some(a)), Ok(Some(b)), None) => {
            if a >= b || b > size {
                return error(
                    400,
                    format!("range {a}..{b} is not a non-empty part of the log's {size} entries"),
                    None,
                );
            }
            Kind::Range(a, b)
        }
        (Ok(None), Ok(None), Some(list)) => {
            let mut l = Vec::new();
            for p in list.split(',').filter(|p| !p.is_empty()) {
                match p.parse::<u64>() {
                    Ok(i) if i < size => l.push(i),
                    Ok(i) => {
                        return error(
                            400,
                            format!("entry {i} is beyond the log's {size} entries"),
                            None,
                        );
                    }
                    Err(_) => {
                        return error(400, format!("entries: {p:?} is not an entry index"), None);
                    }
                }
            }
            l.sort_unstable();
            l.dedup();
            if l.is_empty() {
                return error(400, "entries lists no entry", None);
            }
            Kind::Entries(l)
        }
        (Ok(None), Ok(None), None) => Kind::Log,
        _ => {
            return error(
                400,
                "export takes nothing (whole log), from and to (a range), or entries=I,J,K",
                None,
            );
        }
    };
    let need = match &kind {
        Kind::Log => 0,
        Kind::Range(_, b) => *b,
        Kind::Entries(l) => l.last().map_or(0, |m| m + 1),
    };
    if let Err(r) = app.0.signed_size(need).await {
        return r;
    }
    let read = match &kind {
        Kind::Log => json!({"export": "log", "entries": [0, size], "tree_size": size}),
        Kind::Range(a, b) => json!({"export": "range", "entries": [a, b], "tree_size": size}),
        Kind::Entries(l) => json!({"export": "entries", "entries": l, "tree_size": size}),
    };
    if let Err(r) = app.0.record_access(&who, "/v1/export", &q, read).await {
        return r;
    }
    let view = app.0.log.view();
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut w = ChanWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let r = match kind {
            Kind::Log => view.export_log(&mut w, &mut |_| {}),
            Kind::Range(a, b) => view.export_range(a, b, &mut w, &mut |_| {}),
            Kind::Entries(l) => view.export_entries(&l, &mut w),
        };
        let r = r
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|()| std::io::Write::flush(&mut w));
        if let Err(e) = r {
            // The client sees a broken transfer, never a short "complete" file.
            let _ = tx.blocking_send(Err(e));
        }
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"export.stele\"",
            ),
        ],
        Body::from_stream(ChanBody(rx)),
    )
        .into_response()
}

async fn get_metrics(
    State(app): State<App>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = app.0.auth_read(&headers, remote) {
        return r;
    }
    let view = app.0.log.view();
    let signed = view.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
    let text = app
        .0
        .metrics
        .render(view.size(), view.checkpoints().len(), signed);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn healthz(State(app): State<App>) -> Response {
    if app.0.poisoned.load(Ordering::Relaxed) {
        return error(
            503,
            "the log is poisoned (an fsync failed); restart the server to recover",
            None,
        );
    }
    if app.0.jobs.is_closed() {
        return closed();
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

// GET of the verifier page's files, as web/serve.mjs serves them.
async fn static_file(State(app): State<App>, req: Request) -> Response {
    if req.method() != axum::http::Method::GET && req.method() != axum::http::Method::HEAD {
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
    let file = segs.iter().fold(root, |p, s| p.join(s));
    match tokio::fs::read(&file).await {
        Ok(data) => ([(header::CONTENT_TYPE, mime(&file))], data).into_response(),
        Err(_) => error(404, "not found", None),
    }
}

// Counts every response by status and adds the page's security headers.
async fn finish(State(app): State<App>, req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    app.0.metrics.count_status(r.status().as_u16());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
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
        .route("/metrics", get(get_metrics))
        .route("/healthz", get(healthz))
        .fallback(static_file)
        .layer(middleware::from_fn_with_state(app.clone(), finish))
        .with_state(app)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("stele serve: shutting down: no new connections; finishing in-flight requests");
}

/// Runs `stele serve`.
pub fn run(a: ServeArgs) -> Result<u8, Fail> {
    let tokens = match &a.tokens {
        Some(p) => Tokens::load(p).map_err(|e| {
            Fail::usage(
                e,
                Some("make one with: stele token add FILE NAME".to_string()),
            )
        })?,
        None => Tokens::default(),
    };
    if a.token_reads && a.tokens.is_none() {
        return Err(Fail::usage(
            "--token-reads needs --tokens FILE",
            Some("make a tokens file with: stele token add FILE NAME".to_string()),
        ));
    }
    let token_reads = !a.public_reads && (a.token_reads || a.tokens.is_some());
    let web = match a.web {
        Some(w) if !w.join("index.html").is_file() => {
            return Err(Fail::usage(
                format!("--web {}: no index.html there", w.display()),
                Some("build the page with `node web/build.mjs` and pass web/dist".to_string()),
            ));
        }
        Some(w) => Some(w),
        None => Some(PathBuf::from("web/dist")).filter(|w| w.join("index.html").is_file()),
    };
    let metrics = Arc::new(Metrics::default());
    let opts = LogOptions {
        fs: Arc::new(TimingFs(metrics.clone())),
        checkpoint_every: Some(a.checkpoint_every.max(1)),
        checkpoint_interval: Some(a.checkpoint_interval),
        background_checkpoints: true,
        ..LogOptions::default()
    };
    let log = Arc::new(Log::open_with(&a.dir, opts)?);
    if let Some(r) = log.recovery() {
        eprintln!(
            "stele serve: recovery on open cut {} bytes at offset {} ({}); recorded as entry {}",
            r.dropped_bytes, r.offset, r.reason, r.seq
        );
    }
    let poisoned = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel(4096);
    let writer = {
        let (log, metrics, poisoned) = (log.clone(), metrics.clone(), poisoned.clone());
        std::thread::Builder::new()
            .name("stele-writer".into())
            .spawn(move || writer::run(log, rx, metrics, poisoned))
            .map_err(|e| Fail::usage(format!("start the writer thread: {e}"), None))?
    };
    let app = App(Arc::new(Inner {
        log: log.clone(),
        jobs: tx.clone(),
        tokens,
        token_reads,
        max_body: a.max_body,
        page: a.page_size.max(1),
        web: web.clone(),
        metrics,
        poisoned,
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::usage(format!("start the runtime: {e}"), None))?;
    let served = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .map_err(|e| format!("listen on {}: {e}", a.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // The first line on stdout: tests and scripts read the port from it.
        println!("stele serve: listening on http://{addr}");
        eprintln!(
            "stele serve: log {} ({} entries), reads {}, page {}",
            a.dir.display(),
            log.size(),
            if token_reads {
                "need a token"
            } else {
                "public"
            },
            web.as_ref().map_or("off (no --web DIR)".to_string(), |w| w
                .display()
                .to_string())
        );
        axum::serve(
            listener,
            router(app).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("serve: {e}"))
    });
    // Every accepted request has been answered; the writer finishes what is
    // queued, signs the final checkpoint and stops.
    let _ = tx.blocking_send(Job::Stop);
    drop(tx);
    let _ = writer.join();
    drop(rt);
    served.map_err(|e| Fail::usage(e, None))?;
    let view = log.view();
    eprintln!(
        "stele serve: stopped; {} entries, final checkpoint at size {}",
        view.size(),
        view.latest_checkpoint().map_or(0, |c| c.checkpoint.size)
    );
    Ok(0)
}
