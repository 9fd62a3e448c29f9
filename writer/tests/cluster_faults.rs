//! Faults under load on PostgreSQL + S3: three `stele serve` front-ends
//! take concurrent appends while one is SIGKILLed, PostgreSQL restarts and
//! object storage refuses every connection for a while. Afterwards every
//! 2xx receipt is in the log with its leaf hash, the indexes are dense, and
//! the export verifies.
//!
//! This test runs its own PostgreSQL (initdb in a temporary directory, on a
//! free port) so that it can restart it without disturbing anything else,
//! and puts a TCP gate it can close between the front-ends and moto.

mod common;
#[path = "cluster/kit.rs"]
mod kit;

use kit::{Front, Stores, http, stele, token, wait_for};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stele_core::hash::{Hash, leaf_hash};

const ORIGIN: &str = "example.com/cluster-faults";

fn pg_bin(name: &str) -> PathBuf {
    let dir =
        std::env::var("STELE_TEST_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let p = Path::new(&dir).join(name);
    assert!(
        p.exists(),
        "{} is missing: install PostgreSQL 15 (`bash scripts/setup.sh` does) or set STELE_TEST_PG_BIN",
        p.display()
    );
    p
}

// Runs a PostgreSQL tool as the postgres user when we are root (initdb
// refuses root), else as ourselves.
fn as_pg(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    let mut c = if root {
        let mut c = Command::new("runuser");
        let _ = c.args(["-u", "postgres", "--"]).args(args);
        c
    } else {
        let mut c = Command::new(args[0]);
        let _ = c.args(&args[1..]);
        c
    };
    c.output().unwrap()
}

struct PrivatePg {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    opts: String,
    url: String,
}

impl PrivatePg {
    fn start() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("stele-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(tmp.path())
            .status();
        let data = tmp.path().join("data");
        let out = as_pg(&[
            pg_bin("initdb").as_os_str(),
            "-D".as_ref(),
            data.as_os_str(),
            "-A".as_ref(),
            "trust".as_ref(),
            "-U".as_ref(),
            "postgres".as_ref(),
            "--no-sync".as_ref(),
        ]);
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            tmp.path().display()
        );
        let pg = Self {
            data,
            opts,
            url: format!("postgres://postgres@127.0.0.1:{port}"),
            _tmp: tmp,
        };
        pg.ctl("start");
        pg
    }

    fn ctl(&self, what: &str) {
        let log = self.data.parent().unwrap().join("pg.log");
        let out = as_pg(&[
            pg_bin("pg_ctl").as_os_str(),
            "-D".as_ref(),
            self.data.as_os_str(),
            "-o".as_ref(),
            self.opts.as_ref(),
            "-l".as_ref(),
            log.as_os_str(),
            "-m".as_ref(),
            "fast".as_ref(),
            "-w".as_ref(),
            "-t".as_ref(),
            "120".as_ref(),
            what.as_ref(),
        ]);
        assert!(
            out.status.success(),
            "pg_ctl {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn create_db(&self, name: &str) -> String {
        let out = Command::new("psql")
            .args([
                &format!("{}/postgres", self.url),
                "-qc",
                &format!("CREATE DATABASE {name}"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{}/{name}", self.url)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = as_pg(&[
            pg_bin("pg_ctl").as_os_str(),
            "-D".as_ref(),
            self.data.as_os_str(),
            "-m".as_ref(),
            "immediate".as_ref(),
            "stop".as_ref(),
        ]);
    }
}

// A TCP gate in front of the S3 endpoint: when closed it cuts every open
// connection and refuses new ones.
struct Gate {
    addr: String,
    closed: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Gate {
    fn start(upstream: String) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        let closed = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (c2, k2) = (closed.clone(), conns.clone());
        let _ = std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                if c2.load(Ordering::SeqCst) {
                    drop(s);
                    continue;
                }
                let Ok(up) = TcpStream::connect(&upstream) else {
                    continue;
                };
                k2.lock()
                    .unwrap()
                    .extend([s.try_clone().unwrap(), up.try_clone().unwrap()]);
                for (mut from, mut to) in
                    [(s.try_clone().unwrap(), up.try_clone().unwrap()), (up, s)]
                {
                    let _ = std::thread::spawn(move || {
                        let mut buf = [0u8; 64 * 1024];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Self {
            addr,
            closed,
            conns,
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
    }
}

#[test]
fn receipts_survive_a_killed_front_end_a_database_restart_and_refused_object_writes() {
    let stores = Stores::new("faults"); // its bucket; the database is the private one
    let pg = PrivatePg::start();
    let db = pg.create_db("stele_faults");
    let gate = Gate::start(kit::s3_endpoint().trim_start_matches("http://").to_string());
    let mut env = kit::aws_vars();
    for (k, v) in &mut env {
        if *k == "AWS_ENDPOINT_URL" {
            *v = gate.addr.clone();
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key");
    let vkey = kit::init(&db, &stores.objects, ORIGIN, &key);
    let (tokens, tok) = token(tmp.path());
    let start = || {
        Front::start_with(
            &db,
            &stores.objects,
            env.clone(),
            &key,
            &tokens,
            &["--checkpoint-interval", "1s"],
        )
    };
    let fronts: Vec<Arc<Mutex<Option<Front>>>> = (0..3)
        .map(|_| Arc::new(Mutex::new(Some(start()))))
        .collect();
    let urls: Vec<String> = fronts
        .iter()
        .map(|f| f.lock().unwrap().as_ref().unwrap().url.clone())
        .collect();
    let dead = Arc::new(AtomicBool::new(false)); // front 0 killed
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let receipts = Arc::new(Mutex::new(Vec::<(u64, Hash)>::new()));
    let mut clients = Vec::new();
    for w in 0..6usize {
        let (urls, stop, acked, receipts, dead, tok) = (
            urls.clone(),
            stop.clone(),
            acked.clone(),
            receipts.clone(),
            dead.clone(),
            tok.clone(),
        );
        clients.push(std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let mut f = (w + n) % 3;
                if f == 0 && dead.load(Ordering::SeqCst) {
                    f = 1 + n % 2;
                }
                let body: Vec<_> = (0..20)
                    .map(|i| json!({"type": "load", "w": w, "n": n, "i": i}))
                    .collect();
                let Ok(r) = http(
                    "POST",
                    &format!("{}/v1/entries", urls[f]),
                    Some(&tok),
                    Some(serde_json::Value::from(body).to_string().as_bytes()),
                ) else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                if r.status == 200 {
                    let got: Vec<(u64, Hash)> = r
                        .json()
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| {
                            (
                                x["seq"].as_u64().unwrap(),
                                Hash::from_base64(x["leaf_hash"].as_str().unwrap()).unwrap(),
                            )
                        })
                        .collect();
                    assert_eq!(got.len(), 20);
                    let _ = acked.fetch_add(got.len(), Ordering::SeqCst);
                    receipts.lock().unwrap().extend(got);
                } else {
                    // Refused while the database is down: an answer, no receipt.
                    assert!(r.status >= 500, "{} {}", r.status, r.text());
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }));
    }
    let more = |n: usize, what: &str| {
        let goal = acked.load(Ordering::SeqCst) + n;
        wait_for(what, 300, || acked.load(Ordering::SeqCst) >= goal);
    };
    more(400, "the first receipts");
    // SIGKILL a front-end mid-load (mid-batch: requests are in flight).
    dead.store(true, Ordering::SeqCst);
    drop(fronts[0].lock().unwrap().take());
    more(1000, "receipts after the SIGKILL");
    // Restart PostgreSQL under load.
    pg.ctl("restart");
    more(1000, "receipts after the PostgreSQL restart");
    // Object storage refuses every connection for a while: appends go on
    // (they need only PostgreSQL), integration waits and catches up.
    gate.close();
    more(1000, "receipts while object storage refuses writes");
    let backlog = http("GET", &format!("{}/metrics", urls[1]), Some(&tok), None)
        .unwrap()
        .text();
    let backlog: u64 = backlog
        .lines()
        .find_map(|l| l.strip_prefix("stele_cluster_unintegrated_entries "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        backlog > 0,
        "appends were integrated while object storage refused writes"
    );
    gate.open();
    more(200, "receipts after object storage is back");
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    // The killed front-end comes back; every front-end stops gracefully.
    let again = start();
    wait_for("the restarted front-end", 120, || {
        http("GET", &format!("{}/healthz", again.url), None, None).is_ok_and(|r| r.status == 200)
    });
    *fronts[0].lock().unwrap() = Some(again);
    for f in &fronts {
        let f = f.lock().unwrap().take().unwrap();
        assert!(f.terminate().success());
    }
    // Export (integrates and signs everything) and verify.
    let ex = tmp.path().join("faults.stele");
    let out = common::bounded_output(
        Command::new(kit::STELE)
            .args(["export", "--db", &db, "-o"])
            .arg(&ex)
            .arg("--signing-key")
            .arg(&key)
            .envs(env.clone()),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, o, e) = stele(&["verify", ex.to_str().unwrap(), "--key", &vkey]);
    assert_eq!(code, 0, "{o}{e}");
    let bytes = std::fs::read(&ex).unwrap();
    let lines: Vec<&[u8]> = bytes
        .split(|c| *c == b'\n')
        .filter(|l| l.starts_with(b"{"))
        .collect();
    // Dense: entry i has seq i (the verifier checked it too).
    for (i, l) in lines.iter().enumerate() {
        let p = stele_core::entry::parse_entry(l).unwrap();
        assert_eq!(p.seq, i as u64);
    }
    let receipts = receipts.lock().unwrap();
    let mut seen = BTreeMap::new();
    for (s, h) in receipts.iter() {
        assert!(seen.insert(*s, *h).is_none(), "receipt {s} twice");
        let line = lines
            .get(*s as usize)
            .unwrap_or_else(|| panic!("receipt {s} is beyond the log"));
        assert_eq!(leaf_hash(line), *h, "entry {s}");
    }
    assert!(receipts.len() >= 3600, "{}", receipts.len());
    drop(receipts);

    // Go's reference (sumdb/tlog) reads the tiles from a front-end and
    // reproduces the published checkpoint's root.
    let reader = Front::start_with(
        &db,
        &stores.objects,
        env.clone(),
        &key,
        &tokens,
        &["--public-hashes"],
    );
    let cp = http(
        "GET",
        &format!("{}/checkpoint", reader.url),
        Some(&tok),
        None,
    )
    .unwrap();
    assert_eq!(cp.status, 200);
    let cp = stele_core::checkpoint::SignedCheckpoint::parse(&cp.body)
        .unwrap()
        .checkpoint;
    assert_eq!(cp.size as usize, lines.len());
    let gocache = tmp.path().join("gocache");
    let out = Command::new("go")
        .arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/tlogroot.go"))
        .args([&reader.url, &cp.size.to_string(), &cp.root.to_base64()])
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", &gocache)
        .output()
        .unwrap_or_else(|e| panic!("go: {e}; install golang-go and golang-golang-x-mod-dev (bash scripts/setup.sh does)"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        cp.root.to_base64()
    );
}
