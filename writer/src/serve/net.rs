//! The accept loop of `stele serve`: HTTP/1.1 (hyper) with the limits a
//! server on a network needs. Each is a [`Limits`] field and a `stele serve`
//! flag (writer/README.md lists them with their defaults):
//!
//! - a connection cap: beyond it a new connection gets a short 503 and is
//!   closed without reading its request; and a cap per client address, so
//!   that one client holding many idle connections cannot take them all;
//! - a header-read timeout, counted from when hyper starts waiting for a
//!   request: the whole head must have arrived by then (a client dribbling
//!   header bytes is cut off, and so is an idle keep-alive connection), and
//!   a cap on the head's size;
//! - an idle timeout: a connection on which the server waits to read (a
//!   body, the next request) and no byte moves for this long is closed;
//! - a write timeout: a client that accepts no byte of a response for this
//!   long is cut off (its export, if any, stops and frees its thread);
//! - a minimum write rate: a client that keeps the server's writes waiting
//!   and takes fewer bytes than the rate allows over a window is cut off
//!   too (a reader taking a few hundred bytes a second held an export slot
//!   for as long as it liked);
//! - a shutdown deadline: after the shutdown signal, connections still busy
//!   after it are dropped, so the final checkpoint is always signed.
//!
//! The body timeout is applied where bodies are read (mod.rs).

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// Connection limits and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most open connections.
    pub max_connections: usize,
    /// Most open connections from one IP address (0: no such cap).
    pub max_connections_per_ip: usize,
    /// Time for a request's whole head (request line and headers) to arrive.
    pub header_timeout: Duration,
    /// Read buffer for a request head, in bytes: a head still incomplete
    /// when it is full is refused with 431 (hyper checks between reads, so
    /// a head of up to about twice this can pass).
    pub max_header_bytes: usize,
    /// A connection on which the server waits to read and no byte moves this long is closed.
    pub idle_timeout: Duration,
    /// A client that accepts no byte of a response this long is cut off.
    pub write_timeout: Duration,
    /// A client that keeps writes waiting through a whole
    /// [`Limits::write_rate_window`] and takes fewer than this many bytes a
    /// second over it is cut off (0: no such limit).
    pub min_write_rate: u64,
    /// The window [`Limits::min_write_rate`] is measured over.
    pub write_rate_window: Duration,
    /// After shutdown starts, connections still open this long are dropped.
    pub shutdown_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_connections_per_ip: 64,
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            min_write_rate: 1024,
            write_rate_window: Duration::from_secs(30),
            shutdown_deadline: Duration::from_secs(10),
        }
    }
}

/// Counters the accept loop keeps (for /metrics).
#[derive(Debug, Default)]
pub(super) struct NetStats {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections refused at the cap.
    pub refused: AtomicU64,
    /// Connections closed by a timeout.
    pub timed_out: AtomicU64,
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
Retry-After: 1\r\nConnection: close\r\nContent-Length: 75\r\n\r\n\
{\"error\":\"the server has too many open connections; retry in a second\"}\n\n";

/// Most connections being refused (answered 503) at once.
const REFUSING: usize = 64;

async fn refuse(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await?;
        let mut buf = [0u8; 4096];
        while stream.read(&mut buf).await? > 0 {}
        Ok::<(), io::Error>(())
    })
    .await;
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, lets open requests finish until the deadline and drops the
/// rest. Returns how many connections were dropped at the deadline.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<NetStats>,
    shutdown: impl Future<Output = ()> + Send,
) -> usize {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_ip = PerIp::default();
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            r = listener.accept() => match r {
                Ok(c) => c,
                // Out of file descriptors and the like: wait, do not spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let ip_slot = per_ip.take(remote.ip(), limits.max_connections_per_ip);
        let (Some(ip_slot), Ok(slot)) = (ip_slot, slots.clone().try_acquire_owned()) else {
            let _ = stats.refused.fetch_add(1, Ordering::Relaxed);
            // A short 503, then read what the client sent for up to a
            // second before closing (closing on unread bytes would reset
            // the connection and lose the answer). At most REFUSING of
            // these at once; beyond, the connection is just closed.
            if let Ok(p) = refusing.clone().try_acquire_owned() {
                let _ = tasks.spawn(async move {
                    let _p = p;
                    refuse(stream).await;
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut stop = stop_rx.clone();
        let stats = stats.clone();
        let _ = tasks.spawn(async move {
            let _ = stats.open.fetch_add(1, Ordering::Relaxed);
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                let _ = req.extensions_mut().insert(ConnectInfo(remote));
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
            let io = TokioIo::new(Timed::new(stream, limits));
            let mut b = hyper::server::conn::http1::Builder::new();
            let _ = b
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_header_bytes.max(8192));
            let conn = b.serve_connection(io, svc);
            tokio::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r
                && (e.is_timeout()
                    || std::error::Error::source(&e)
                        .and_then(|s| s.downcast_ref::<io::Error>())
                        .is_some_and(|s| s.kind() == io::ErrorKind::TimedOut))
            {
                let _ = stats.timed_out.fetch_add(1, Ordering::Relaxed);
            }
            let _ = stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
            drop(ip_slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_deadline, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let left = if drained.is_err() { tasks.len() } else { 0 };
    tasks.abort_all();
    left
}

/// Open connections (or exports) per client: an IPv4 address, or an IPv6
/// /64 (one host's share; a /64 is what one client is usually given).
#[derive(Debug, Default, Clone)]
pub(super) struct PerIp(Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>);

/// One open connection (or export) of an address, or `n` units it holds
/// (KiB of unsent responses); counted down when dropped.
pub(super) struct IpSlot {
    map: PerIp,
    ip: std::net::IpAddr,
    n: usize,
}

impl PerIp {
    // A slot for `ip`, or None when it has `cap` connections open already.
    pub(super) fn take(&self, ip: std::net::IpAddr, cap: usize) -> Option<IpSlot> {
        self.take_n(ip, 1, cap)
    }

    // `n` units for `ip`, or None when it holds some and `n` more would
    // pass `cap` (0: no cap; one take larger than `cap` is allowed alone).
    pub(super) fn take_n(&self, ip: std::net::IpAddr, n: usize, cap: usize) -> Option<IpSlot> {
        let ip = client_of(ip);
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = m.entry(ip).or_insert(0);
        if cap != 0 && *held > 0 && *held + n > cap {
            return None;
        }
        *held += n;
        Some(IpSlot {
            map: self.clone(),
            ip,
            n,
        })
    }
}

// The client an address counts for: an IPv4 address (also written as an
// IPv4-mapped IPv6 one), or the /64 of an IPv6 address.
fn client_of(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => std::net::IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
        v4 => v4,
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self
            .map
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= self.n;
            if *n == 0 {
                let _ = m.remove(&self.ip);
            }
        }
    }
}

/// A TCP stream that fails with `TimedOut` when it waits too long: for a
/// read, `idle_timeout` since the last byte moved either way; for a write,
/// `write_timeout` since then. One timer each, so that a read waiting at
/// the same time cannot stretch a write's limit (or the other way round).
///
/// "Since the last byte moved" is measured by probing: the socket wakes a
/// waiting writer only once half of its send buffer (grown by the kernel to
/// megabytes) has drained, which a slow but steady reader takes longer
/// than the limit to do. So while a write waits, a direct `send` is tried
/// every [`PROBE`]; any byte it places counts as progress.
///
/// The write rate: bytes written are counted over windows of
/// `rate_window`, from when the server starts writing (after [`QUIET`]
/// without a write); a write still waiting when a window ends in which
/// fewer than `min_rate` bytes a second were taken fails with `TimedOut`.
struct Timed {
    inner: TcpStream,
    idle: Duration,
    write: Duration,
    last: Instant,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    probe_timer: Pin<Box<Sleep>>,
    min_rate: u64,
    rate_window: Duration,
    window_start: Instant,
    window_bytes: u64,
    last_write: Instant,
    rate_timer: Pin<Box<Sleep>>,
}

/// A pause in writing this long starts a new rate window (the next
/// response): a waiting write is polled at least every [`PROBE`].
const QUIET: Duration = Duration::from_secs(2);

/// How often a waiting write probes the socket for room (see [`Timed`]).
const PROBE: Duration = Duration::from_millis(500);

fn too_slow(min_rate: u64, window: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "connection cut: the client took fewer than {min_rate} bytes a second over {}s (--min-write-rate)",
            window.as_secs()
        ),
    )
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "connection timed out: no byte moved",
    )
}

// Arms `timer` for `limit` after `last`; Err once it fired.
fn wait(
    timer: &mut Pin<Box<Sleep>>,
    last: Instant,
    limit: Duration,
    cx: &mut Context<'_>,
) -> io::Result<()> {
    let deadline = last + limit;
    if timer.deadline() != deadline {
        timer.as_mut().reset(deadline);
    }
    match timer.as_mut().poll(cx) {
        Poll::Ready(()) => Err(timed_out()),
        Poll::Pending => Ok(()),
    }
}

impl Timed {
    fn new(inner: TcpStream, l: Limits) -> Self {
        let now = Instant::now();
        Self {
            inner,
            idle: l.idle_timeout,
            write: l.write_timeout,
            last: now,
            read_timer: Box::pin(tokio::time::sleep_until(now + l.idle_timeout)),
            write_timer: Box::pin(tokio::time::sleep_until(now + l.write_timeout)),
            probe_timer: Box::pin(tokio::time::sleep_until(now + PROBE)),
            min_rate: l.min_write_rate,
            rate_window: l.write_rate_window.max(Duration::from_millis(100)),
            window_start: now,
            window_bytes: 0,
            last_write: now,
            rate_timer: Box::pin(tokio::time::sleep_until(now + l.write_rate_window)),
        }
    }

    // A write is being tried: after a pause, a new rate window starts.
    fn writing(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_write) > QUIET {
            self.window_start = now;
            self.window_bytes = 0;
        }
        self.last_write = now;
    }

    // `n` bytes were written.
    fn wrote(&mut self, n: usize) {
        if n > 0 {
            self.last = Instant::now();
            self.window_bytes = self.window_bytes.saturating_add(n as u64);
        }
    }

    // A write waits: Err when a whole window has passed since the last
    // judgement with fewer bytes taken than the rate allows.
    fn check_rate(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.min_rate == 0 {
            return Ok(());
        }
        loop {
            let deadline = self.window_start + self.rate_window;
            if self.rate_timer.deadline() != deadline {
                self.rate_timer.as_mut().reset(deadline);
            }
            if self.rate_timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            let need = (self.min_rate as f64 * self.rate_window.as_secs_f64()) as u64;
            if self.window_bytes < need {
                return Err(too_slow(self.min_rate, self.rate_window));
            }
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
    }

    // A write is waiting: try a direct send when the probe timer fires
    // (re-armed each time, so it keeps waking this task while it waits).
    fn probe(&mut self, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        let mut fired = false;
        while self.probe_timer.as_mut().poll(cx).is_ready() {
            fired = true;
            let next = Instant::now() + PROBE;
            self.probe_timer.as_mut().reset(next);
        }
        if fired && !b.is_empty() {
            match socket2::SockRef::from(&self.inner).send(b) {
                Ok(n) if n > 0 => {
                    self.wrote(n);
                    return Poll::Ready(Ok(n));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if let Err(e) = self.wait_write(cx).and_then(|()| self.check_rate(cx)) {
            // Reset rather than close: closed, the socket would go on
            // sending what its buffers hold (megabytes) at the client's pace.
            let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
            return Poll::Ready(Err(e));
        }
        Poll::Pending
    }

    fn wait_read(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        wait(&mut self.read_timer, self.last, self.idle, cx)
    }

    fn wait_write(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        wait(&mut self.write_timer, self.last, self.write, cx)
    }
}

impl AsyncRead for Timed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut me.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    me.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                me.wait_read(cx)?;
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Timed {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        me.writing();
        match Pin::new(&mut me.inner).poll_write(cx, b) {
            Poll::Ready(r) => {
                if let Ok(n) = r {
                    me.wrote(n);
                }
                Poll::Ready(r)
            }
            Poll::Pending => me.probe(cx, b),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        me.writing();
        match Pin::new(&mut me.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if let Ok(n) = r {
                    me.wrote(n);
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
                me.probe(cx, first)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(Pin::new(&mut me.inner).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod per_ip_tests {
    use super::*;

    #[test]
    fn an_ipv6_64_is_one_client() {
        let per = PerIp::default();
        let a: std::net::IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: std::net::IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let held = per.take(a, 2).unwrap();
        let _b = per.take(b, 2).unwrap();
        assert!(per.take(a, 2).is_none(), "a third in one /64");
        assert!(per.take(other, 2).is_some(), "another /64");
        drop(held);
        assert!(per.take(b, 2).is_some(), "freed when dropped");
        let v4: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: std::net::IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let _v4 = per.take(v4, 1).unwrap();
        assert!(per.take(mapped, 1).is_none(), "the same IPv4 client");
    }
}
