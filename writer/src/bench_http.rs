//! `stele bench-http`: a load generator for `stele serve` on loopback.
//!
//! Without `--url` it makes a temporary log and token, starts `stele serve`
//! (this same binary) on an ephemeral port, runs the load, stops the server
//! with SIGTERM and then checks every receipt it got against the log on
//! disk and verifies the whole log.
//!
//! The HTTP/1.1 client is a few lines over a TCP stream (keep-alive,
//! Content-Length or chunked responses): enough for this load, and it keeps
//! the client's cost small next to the server's.

use crate::Fail;
use std::io::{BufRead, BufReader as StdBufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use stele_core::Hash;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// `stele bench-http` options.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchHttpArgs {
    /// A running server, e.g. http://127.0.0.1:8080 (default: start one on a temporary log).
    #[arg(long)]
    url: Option<String>,
    /// Bearer token for --url.
    #[arg(long)]
    token: Option<String>,
    /// Which load: batch, single or both.
    #[arg(long, default_value = "both", value_parser = ["batch", "single", "both"])]
    mode: String,
    /// Concurrent connections for single-entry requests.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Concurrent connections for batched requests.
    #[arg(long, default_value_t = 4)]
    batch_connections: usize,
    /// Entries per batched request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Length of each load phase.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    duration: Duration,
    /// Client threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

struct Conn {
    r: BufReader<TcpStream>,
    host: String,
    auth: String,
}

impl Conn {
    async fn open(host: &str, token: &str) -> std::io::Result<Self> {
        let s = TcpStream::connect(host).await?;
        s.set_nodelay(true)?;
        Ok(Self {
            r: BufReader::new(s),
            host: host.to_string(),
            auth: format!("Bearer {token}"),
        })
    }

    /// One line of the response into `line`; the server closing the
    /// connection mid-response is an error, not an empty line.
    async fn line(&mut self, line: &mut String) -> std::io::Result<()> {
        if self.r.read_line(line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    async fn post(&mut self, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            self.auth,
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        self.r.get_mut().write_all(&req).await?;
        let mut line = String::new();
        self.line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let (mut len, mut chunked) = (0usize, false);
        loop {
            line.clear();
            self.line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.line(&mut line).await?;
                let n = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| std::io::Error::other("bad chunk size"))?;
                let mut chunk = vec![0u8; n + 2];
                let _ = self.r.read_exact(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            body.resize(len, 0);
            let _ = self.r.read_exact(&mut body).await?;
        }
        Ok((status, body))
    }
}

#[derive(serde::Deserialize)]
struct WireReceipt {
    seq: u64,
    leaf_hash: String,
}

#[derive(Default)]
struct Tally {
    requests: u64,
    entries: u64,
    errors: u64,
    first_error: Option<String>,
    lat_us: Vec<u32>,
    receipts: Vec<(u64, Hash)>,
}

fn event(conn: usize, n: u64) -> String {
    format!(
        r#"{{"type":"bench","actor":"client-{conn}","action":"write","target":"object/{n}","outcome":"success","n":{n}}}"#
    )
}

async fn worker(
    host: String,
    token: String,
    id: usize,
    per_request: usize,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut t = Tally::default();
    let mut conn = match Conn::open(&host, &token).await {
        Ok(c) => c,
        Err(e) => {
            t.errors += 1;
            t.first_error = Some(format!("connect {host}: {e}"));
            return t;
        }
    };
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let body = if per_request == 1 {
            n += 1;
            event(id, n)
        } else {
            let mut s = String::with_capacity(per_request * 110);
            for _ in 0..per_request {
                n += 1;
                s.push_str(&event(id, n));
                s.push('\n');
            }
            s
        };
        let t0 = Instant::now();
        match conn.post("/v1/entries", body.as_bytes()).await {
            Ok((200, resp)) => {
                t.lat_us
                    .push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                t.requests += 1;
                match serde_json::from_slice::<Vec<WireReceipt>>(&resp) {
                    Ok(rs) if rs.len() == per_request => {
                        t.entries += rs.len() as u64;
                        for r in rs {
                            match Hash::from_base64(&r.leaf_hash) {
                                Some(h) => t.receipts.push((r.seq, h)),
                                None => t.errors += 1,
                            }
                        }
                    }
                    _ => {
                        t.errors += 1;
                        let _ = t.first_error.get_or_insert_with(|| {
                            format!("bad receipts: {}", String::from_utf8_lossy(&resp))
                        });
                    }
                }
            }
            Ok((status, resp)) => {
                t.errors += 1;
                let _ = t.first_error.get_or_insert_with(|| {
                    format!("HTTP {status}: {}", String::from_utf8_lossy(&resp))
                });
            }
            Err(e) => {
                t.errors += 1;
                let _ = t.first_error.get_or_insert_with(|| e.to_string());
                match Conn::open(&host, &token).await {
                    Ok(c) => conn = c,
                    Err(_) => break,
                }
            }
        }
    }
    t
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn phase(
    rt: &tokio::runtime::Runtime,
    host: &str,
    token: &str,
    conns: usize,
    per_request: usize,
    dur: Duration,
    name: &str,
) -> Tally {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tallies: Vec<Tally> = rt.block_on(async {
        let handles: Vec<_> = (0..conns)
            .map(|i| {
                tokio::spawn(worker(
                    host.to_string(),
                    token.to_string(),
                    i,
                    per_request,
                    stop.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(dur).await;
        stop.store(true, Ordering::Relaxed);
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap_or_default());
        }
        out
    });
    let secs = start.elapsed().as_secs_f64();
    let mut all = Tally::default();
    for t in tallies {
        all.requests += t.requests;
        all.entries += t.entries;
        all.errors += t.errors;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
        all.lat_us.extend(t.lat_us);
        all.receipts.extend(t.receipts);
    }
    all.lat_us.sort_unstable();
    println!(
        "{name}: {conns} connections x {per_request} entries/request, {secs:.1} s: {:.0} entries/s, {:.0} requests/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {}",
        all.entries as f64 / secs,
        all.requests as f64 / secs,
        pct(&all.lat_us, 0.5),
        pct(&all.lat_us, 0.99),
        pct(&all.lat_us, 1.0),
        all.errors
    );
    if let Some(e) = &all.first_error {
        println!("  first error: {e}");
    }
    all
}

/// Runs `stele bench-http`.
pub(crate) fn bench_http(a: BenchHttpArgs) -> Result<u8, Fail> {
    let io = |what: &str, e: &dyn std::fmt::Display| Fail::usage(format!("{what}: {e}"), None);
    let mut server = None;
    let mut tmp: Option<PathBuf> = None;
    let (host, token) = match &a.url {
        Some(u) => {
            let host = u
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
            (host, a.token.clone().unwrap_or_default())
        }
        None => {
            let dir = std::env::temp_dir().join(format!("stele-bench-http-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let log_dir = dir.join("log");
            let signer = stele_writer::key::generate("bench.stele.invalid/log")?;
            drop(stele_writer::Log::create(
                &log_dir,
                "bench.stele.invalid/log",
                &signer,
            )?);
            let tokens = dir.join("tokens");
            let token =
                stele_writer::serve::add_token(&tokens, "bench", stele_writer::serve::Scopes::ALL)
                    .map_err(|e| io("token", &e))?;
            let exe = std::env::current_exe().map_err(|e| io("current_exe", &e))?;
            let mut child = Command::new(exe)
                .arg("serve")
                .arg(&log_dir)
                .args(["--listen", "127.0.0.1:0", "--tokens"])
                .arg(&tokens)
                // Every simulated client comes from 127.0.0.1.
                .args(["--max-connections-per-ip", "0"])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| io("start stele serve", &e))?;
            let mut first = String::new();
            let _ = StdBufReader::new(child.stdout.take().expect("piped"))
                .read_line(&mut first)
                .map_err(|e| io("read server address", &e))?;
            let host = first
                .trim()
                .rsplit("http://")
                .next()
                .unwrap_or_default()
                .to_string();
            eprintln!(
                "bench-http: server pid {} at {host}, log {}",
                child.id(),
                log_dir.display()
            );
            server = Some(child);
            tmp = Some(dir);
            (host, token)
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| io("runtime", &e))?;
    let mut receipts = Vec::new();
    let mut errors = 0;
    if a.mode != "single" {
        let t = phase(
            &rt,
            &host,
            &token,
            a.batch_connections,
            a.batch.max(1),
            a.duration,
            "batched",
        );
        errors += t.errors;
        receipts.extend(t.receipts);
    }
    if a.mode != "batch" {
        let t = phase(&rt, &host, &token, a.connections, 1, a.duration, "single");
        errors += t.errors;
        receipts.extend(t.receipts);
    }
    drop(rt);
    let mut code = u8::from(errors > 0);
    if let (Some(mut child), Some(dir)) = (server, tmp) {
        // Stop the server (SIGTERM: finish, fsync, final checkpoint), then
        // check every receipt against the log as it is on disk.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
        let log_dir = dir.join("log");
        let view = stele_writer::View::open_read_only(&log_dir)?;
        let mut bad = 0u64;
        for (seq, h) in &receipts {
            if view.leaf_hash(*seq).ok().as_ref() != Some(h) {
                bad += 1;
            }
        }
        let key = stele_writer::key::load(&log_dir.join("key"))?.verifier();
        let report = stele_writer::verify_dir(
            &log_dir,
            stele_core::Options::new(vec![key]),
            &mut |_, _| {},
        )?;
        println!(
            "durability: {} receipts, {} match the log after shutdown; log of {} entries verifies: {:?}",
            receipts.len(),
            receipts.len() as u64 - bad,
            report.entries,
            report.verdict
        );
        if bad > 0
            || !matches!(
                report.verdict,
                stele_core::Verdict::Verified | stele_core::Verdict::Partial
            )
        {
            code = 1;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(code)
}
