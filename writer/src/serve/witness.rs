//! `stele witness serve`: C2SP tlog-witness over HTTP (docs/FORMAT.md 14.6).
//!
//! - `POST /add-checkpoint`: the spec's request; 200 with the cosignature
//!   line, 400, 403, 404, 409 (`text/x.tlog.size`, the stored size: `old`
//!   is not it, or it is the checkpoint's size with another root), 422;
//!   413 for a body over the limit, 408 for one that does not arrive in
//!   time, 500 (no cosignature) when the state cannot be recorded;
//! - `GET /<sha256 of the origin, hex>/checkpoint`: the latest checkpoint
//!   cosigned for that log, 404 if none.
//!
//! Connections get the limits of `stele serve` (the same accept loop,
//! [`super::net`]): a connection cap, header, idle and write timeouts.

use super::net::{self, Limits, NetStats};
use super::{collect_body, declared_length, error};
use crate::Result;
use crate::witness::{AddFailure, Witness};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stele_core::witness::AddError;

/// The largest request body: `old`, 63 proof lines and a 16 KiB note fit.
pub const MAX_BODY: usize = 32 * 1024;

/// How a witness is served.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    /// The witness directory (`stele witness init`).
    pub dir: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Connection limits and timeouts.
    pub limits: Limits,
    /// Time for a request body to arrive (408 beyond).
    pub body_timeout: Duration,
}

impl WitnessConfig {
    /// The defaults for `dir` on 127.0.0.1, port 0.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            limits: Limits::default(),
            body_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug)]
struct Inner {
    witness: Witness,
    body_timeout: Duration,
}

/// A bound witness server.
#[derive(Debug)]
pub struct WitnessServer {
    rt: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    limits: Limits,
    inner: Arc<Inner>,
}

fn text(status: u16, body: String, content_type: &'static str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, body).into_response();
    let _ = r
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn add_checkpoint(State(app): State<Arc<Inner>>, headers: HeaderMap, body: Body) -> Response {
    if let Err(r) = declared_length(&headers, MAX_BODY) {
        return r;
    }
    let deadline = tokio::time::Instant::now() + app.body_timeout;
    let bytes = match collect_body(body, MAX_BODY, deadline, app.body_timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // The state write fsyncs: off the async threads.
    let app2 = app.clone();
    let done = tokio::task::spawn_blocking(move || app2.witness.add_checkpoint(&bytes)).await;
    match done {
        Ok(Ok(line)) => text(200, line, "text/plain; charset=utf-8"),
        Ok(Err(AddFailure::Refused(
            AddError::Conflict { latest, .. } | AddError::RootConflict { size: latest, .. },
        ))) => text(409, format!("{latest}\n"), "text/x.tlog.size"),
        Ok(Err(AddFailure::Refused(e))) => error(e.status(), e.to_string(), None),
        Ok(Err(AddFailure::Store(e))) => error(
            500,
            format!("the witness could not record the checkpoint, so it does not cosign it: {e}"),
            None,
        ),
        Err(_) => error(500, "the request was cancelled", None),
    }
}

async fn latest(State(app): State<Arc<Inner>>, UrlPath(hash): UrlPath<String>) -> Response {
    match app.witness.latest(&hash) {
        Some(note) => text(200, note, "text/plain; charset=utf-8"),
        None => error(
            404,
            "this witness has cosigned no checkpoint for that log",
            None,
        ),
    }
}

impl WitnessServer {
    /// Opens the witness directory and binds the address.
    pub fn bind(c: WitnessConfig) -> Result<Self> {
        let witness = Witness::open(&c.dir)?;
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        let _ = builder.worker_threads(2);
        let (rt, listener, addr) = super::runtime_and_listener(builder, c.listen)?;
        Ok(Self {
            rt,
            listener,
            addr,
            limits: c.limits,
            inner: Arc::new(Inner {
                witness,
                body_timeout: c.body_timeout,
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The witness it serves.
    pub fn witness(&self) -> &Witness {
        &self.inner.witness
    }

    /// Its runtime (for [`super::shutdown_signal`]).
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.rt.handle().clone()
    }

    /// Serves until `shutdown` resolves.
    pub fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let router = Router::new()
            .route("/add-checkpoint", post(add_checkpoint))
            .route("/{hash}/checkpoint", get(latest))
            .with_state(self.inner);
        let stats = Arc::new(NetStats::default());
        let _ = self.rt.block_on(net::serve(
            self.listener,
            router,
            self.limits,
            stats,
            shutdown,
        ));
        self.rt.shutdown_timeout(self.limits.shutdown_deadline);
        Ok(())
    }
}
