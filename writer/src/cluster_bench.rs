//! `stele bench-cluster`: batched HTTP ingest through 1..N `stele serve
//! --db … --objects …` front-ends beside one file-log `stele serve` in the
//! same run, and tile reads served from object storage beside tile reads
//! from files. `scripts/bench-cluster.sh` makes the database and bucket and
//! runs it.

use crate::Fail;
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `stele bench-cluster` options.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchClusterArgs {
    /// An empty database for the cluster log (postgres://…).
    #[arg(long)]
    db: String,
    /// An empty bucket prefix for it (s3://BUCKET/PREFIX; AWS_* variables as for serve).
    #[arg(long)]
    objects: String,
    /// Entries per request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Client threads sending batches (spread over the front-ends).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Length of each ingest phase and of each read phase.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    duration: Duration,
    /// Measure 1, 2, … up to this many front-ends.
    #[arg(long, default_value_t = 3)]
    fronts: usize,
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Result<Server, Fail> {
    let exe = std::env::current_exe().map_err(|e| Fail::usage(e.to_string(), None))?;
    let mut child = Command::new(exe)
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--checkpoint-interval", "5s"])
        // Every simulated client comes from 127.0.0.1.
        .args(["--max-connections-per-ip", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Fail::usage(format!("start stele serve: {e}"), None))?;
    let mut line = String::new();
    let n = std::io::BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .map_err(|e| Fail::usage(e.to_string(), None))?;
    if n == 0 {
        return Err(Fail::usage("stele serve exited before it listened", None));
    }
    let url = line
        .trim()
        .strip_prefix("stele serve: listening on ")
        .ok_or_else(|| Fail::usage(format!("stele serve said {line:?}"), None))?
        .to_string();
    Ok(Server(child, url))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

// Batched appends from `conns` threads over `urls` for `d`: entries acknowledged per second.
fn ingest(urls: &[String], token: &str, batch: usize, conns: usize, d: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..conns {
            let (done, url) = (done.clone(), urls[t % urls.len()].clone());
            let _ = s.spawn(move || {
                let a = agent();
                let mut n = 0u64;
                while start.elapsed() < d {
                    let mut body = String::with_capacity(batch * 120);
                    body.push('[');
                    for i in 0..batch {
                        if i > 0 {
                            body.push(',');
                        }
                        body.push_str(&format!(
                            "{{\"type\":\"bench\",\"actor\":\"user-{}\",\"action\":\"read\",\"target\":\"doc-{n}-{i}\",\"outcome\":\"ok\"}}",
                            (n as usize * 7 + i) % 5000
                        ));
                    }
                    body.push(']');
                    n += 1;
                    let r = a
                        .post(format!("{url}/v1/entries"))
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .send(body.as_bytes());
                    if let Ok(r) = r
                        && r.status() == 200
                    {
                        let _ = done.fetch_add(batch as u64, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

// Full level-0 tiles read in a loop from `conns` threads: requests per second.
fn tiles(url: &str, token: &str, full: u64, conns: usize, d: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..conns {
            let done = done.clone();
            let _ = s.spawn(move || {
                let a = agent();
                let mut i = t as u64;
                while start.elapsed() < d {
                    let tile = stele_core::tiles::Tile {
                        level: 0,
                        index: (i * 7919) % full.max(1),
                        width: 256,
                    };
                    i += 1;
                    let r = a
                        .get(format!("{url}/{}", tile.path()))
                        .header("authorization", format!("Bearer {token}"))
                        .call();
                    if let Ok(mut r) = r
                        && r.status() == 200
                        && r.body_mut().read_to_vec().is_ok_and(|b| b.len() == 8192)
                    {
                        let _ = done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn metric(url: &str, token: &str, name: &str) -> Option<u64> {
    let mut r = agent()
        .get(format!("{url}/metrics"))
        .header("authorization", format!("Bearer {token}"))
        .call()
        .ok()?;
    let text = r.body_mut().read_to_string().ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

fn run_ok(args: &[&str]) -> Result<String, Fail> {
    let exe = std::env::current_exe().map_err(|e| Fail::usage(e.to_string(), None))?;
    let out = Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| Fail::usage(e.to_string(), None))?;
    if !out.status.success() {
        return Err(Fail::usage(
            format!(
                "stele {}: {}",
                args[0],
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            None,
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn bench_cluster(a: BenchClusterArgs) -> Result<u8, Fail> {
    let tmp = std::env::temp_dir().join(format!("stele-bench-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| Fail::usage(e.to_string(), None))?;
    let r = bench(&a, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    r
}

fn bench(a: &BenchClusterArgs, tmp: &Path) -> Result<u8, Fail> {
    let s = |p: &Path| p.to_str().unwrap_or_default().to_string();
    let tokens = tmp.join("tokens");
    let token = stele_writer::serve::add_token(&tokens, "bench", stele_writer::serve::Scopes::ALL)?;
    let d = a.duration;
    println!(
        "batched ingest over HTTP: {} entries a request, {} client threads, {:?} each",
        a.batch, a.connections, d
    );
    // The file backend, same machine, same run.
    let dir = tmp.join("file");
    let _ = run_ok(&["init", &s(&dir), "--origin", "bench.example/file"])?;
    let file = spawn(&["serve", &s(&dir), "--tokens", &s(&tokens)])?;
    let base = ingest(
        std::slice::from_ref(&file.1),
        &token,
        a.batch,
        a.connections,
        d,
    );
    println!("  file log, 1 server:           {base:>9.0} entries/s");
    let fsize = metric(&file.1, &token, "stele_log_entries").unwrap_or(0);
    let file_tiles = tiles(&file.1, &token, fsize / 256, a.connections, d);
    // The cluster.
    let key = tmp.join("key");
    let _ = run_ok(&[
        "init",
        "--db",
        &a.db,
        "--objects",
        &a.objects,
        "--origin",
        "bench.example/cluster",
        "--signing-key",
        &s(&key),
    ])?;
    let mut fronts: Vec<Server> = Vec::new();
    let mut rates = Vec::new();
    for k in 1..=a.fronts.max(1) {
        fronts.push(spawn(&[
            "serve",
            "--db",
            &a.db,
            "--objects",
            &a.objects,
            "--signing-key",
            &s(&key),
            "--tokens",
            &s(&tokens),
        ])?);
        let urls: Vec<String> = fronts.iter().map(|f| f.1.clone()).collect();
        let before = metric(&urls[0], &token, "stele_log_entries").unwrap_or(0);
        let t0 = Instant::now();
        let rate = ingest(&urls, &token, a.batch, a.connections, d);
        let backlog = metric(&urls[0], &token, "stele_cluster_unintegrated_entries").unwrap_or(0);
        // Integration catches up: the single integrator's rate.
        let mut after = before;
        while t0.elapsed() < d * 20 {
            if metric(&urls[0], &token, "stele_cluster_unintegrated_entries") == Some(0) {
                after = metric(&urls[0], &token, "stele_log_entries").unwrap_or(before);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let integrated = (after - before) as f64 / t0.elapsed().as_secs_f64();
        println!(
            "  cluster, {k} front-end{}:       {rate:>9.0} entries/s acknowledged ({:.2}x file); integrated {integrated:.0}/s incl. catch-up; backlog at the end {backlog}",
            if k == 1 { " " } else { "s" },
            rate / base
        );
        rates.push(rate);
    }
    let csize = metric(&fronts[0].1, &token, "stele_log_entries").unwrap_or(0);
    let obj_tiles = tiles(&fronts[0].1, &token, csize / 256, a.connections, d);
    println!(
        "tile reads (full level-0 tiles, {} client threads):",
        a.connections
    );
    println!(
        "  from files ({} tiles):          {file_tiles:>9.0} requests/s",
        fsize / 256
    );
    println!(
        "  from object storage ({} tiles): {obj_tiles:>9.0} requests/s ({:.2}x files)",
        csize / 256,
        obj_tiles / file_tiles.max(1.0)
    );
    drop(fronts);
    drop(file);
    Ok(0)
}
