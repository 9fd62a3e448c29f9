//! `stele mirror`, `stele monitor URL` and `stele restore`, end to end:
//! against a real `stele serve` (byte-identical copies, kill -9 during
//! catch-up, the disaster drill) and against a small loopback origin this
//! test controls (every fault the issue lists: each an alert or a retry,
//! named, and the mirror undamaged).

mod common;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stele_core::merkle::HashReader;
use stele_core::tiles::{TILE_HEIGHT, Tile, TilePath, encode_entry_bundle, tile_in_tree};
use stele_core::{Verdict, VerifierKey};
use stele_writer::{Log, StoredCheckpoint, View, key, verify_dir};

const STELE: &str = env!("CARGO_BIN_EXE_stele");

fn stele(args: &[&str]) -> Output {
    common::bounded_output(Command::new(STELE).args(args), None)
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn verified(dir: &Path, key: &VerifierKey) -> stele_core::Report {
    let r = verify_dir(
        dir,
        stele_core::Options::new(vec![key.clone()]),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Verified, "{dir:?}: {:#?}", r.failures);
    r
}

// ---------------------------------------------------------------------------
// A loopback origin under the test's control: serves a log directory's
// tiles and bundles and a chosen checkpoint note, through a fault hook.

#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
    // Send no Content-Length: the body runs until the connection closes.
    no_length: bool,
}

impl Reply {
    fn ok(body: Vec<u8>) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body,
            delay: Duration::ZERO,
            no_length: false,
        }
    }
    fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::ok(format!("HTTP {status}\n").into_bytes())
        }
    }
}

type Hook = Box<dyn Fn(&str, Reply) -> Reply + Send>;

struct FakeState {
    dir: PathBuf,
    note: String,
    hook: Option<Hook>,
}

struct Fake {
    url: String,
    state: Arc<Mutex<FakeState>>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    fn start(dir: &Path, note: &str) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let state = Arc::new(Mutex::new(FakeState {
            dir: dir.into(),
            note: note.into(),
            hook: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let _ = std::thread::spawn(move || {
            for c in l.incoming() {
                if sp.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(c) = c else { continue };
                let st = st.clone();
                let _ = std::thread::spawn(move || serve_one(c, &st));
            }
        });
        Self { url, state, stop }
    }

    fn set(&self, dir: &Path, note: &str) {
        let mut s = self.state.lock().unwrap();
        s.dir = dir.into();
        s.note = note.into();
    }

    fn hook(&self, h: Option<Hook>) {
        self.state.lock().unwrap().hook = h;
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn origin_reply(dir: &Path, note: &str, path: &str) -> Reply {
    if path == "/checkpoint" {
        return Reply::ok(note.as_bytes().to_vec());
    }
    let Ok(view) = View::open_read_only(dir) else {
        return Reply::status(500);
    };
    match Tile::parse_path(path) {
        Ok(TilePath::Hashes(t)) => {
            if tile_in_tree(t.level, t.index, view.size()).is_none_or(|x| x.width < t.width) {
                return Reply::status(404);
            }
            let level = u32::from(t.level) * TILE_HEIGHT;
            let mut out = Vec::new();
            for i in 0..u64::from(t.width) {
                out.extend_from_slice(&view.read_hash(level, t.first() + i).unwrap().0);
            }
            Reply::ok(out)
        }
        Ok(TilePath::Entries(t)) => {
            let (from, to) = (t.first(), t.first() + u64::from(t.width));
            if to > view.size() {
                return Reply::status(404);
            }
            let mut lines = Vec::new();
            let _ = view.write_entries(from, to, &mut lines).unwrap();
            let entries = lines.strip_suffix(b"\n").unwrap().split(|b| *b == b'\n');
            Reply::ok(encode_entry_bundle(entries).unwrap())
        }
        Err(_) => Reply::status(404),
    }
}

fn serve_one(c: TcpStream, st: &Mutex<FakeState>) {
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
    }
    let path = line.split(' ').nth(1).unwrap_or("/").to_string();
    let reply = {
        let s = st.lock().unwrap();
        let base = origin_reply(&s.dir, &s.note, &path);
        match &s.hook {
            Some(h) => h(&path, base),
            None => base,
        }
    };
    std::thread::sleep(reply.delay);
    let mut c = c;
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    if !reply.no_length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = c.write_all(head.as_bytes());
    let _ = c.write_all(&reply.body);
}

// A log made with the library, with checkpoints at chosen sizes.
struct Made {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    key: VerifierKey,
    cps: Vec<StoredCheckpoint>,
}

fn make_log(origin: &str, signer: &stele_core::SignerKey, sizes: &[u64], tag: &str) -> Made {
    let tmp = tempfile::tempdir().unwrap();
    // Log::create drops and retakes the directory lock; a child process
    // forked meanwhile by another test thread holds it for an instant
    // (flock follows the descriptor until exec), so retry in a fresh dir.
    let (dir, log) = (0..50)
        .find_map(|i| {
            let dir = tmp.path().join(format!("log{i}"));
            match Log::create(&dir, origin, signer) {
                Ok(l) => Some((dir, l)),
                Err(stele_writer::Error::Locked { .. }) => None,
                Err(e) => panic!("{e}"),
            }
        })
        .expect("log created");
    let mut cps = Vec::new();
    for &s in sizes {
        let mut batch = Vec::new();
        let mut n = log.size();
        while n < s {
            batch.push(serde_json::json!({"actor": tag, "n": n}));
            n += 1;
        }
        if !batch.is_empty() {
            let _ = log.append_batch(batch).unwrap();
        }
        cps.push(log.checkpoint().unwrap());
    }
    Made {
        _tmp: tmp,
        dir,
        key: signer.verifier(),
        cps,
    }
}

// A log of `size` entries (origin `origin`, a fresh key) served by a
// loopback origin this test controls, at its checkpoint of that size.
fn fake_origin(origin: &str, size: u64) -> (Made, Fake) {
    let signer = key::generate(origin).unwrap();
    let good = make_log(origin, &signer, &[size], "good");
    let fake = Fake::start(&good.dir, &good.cps[0].note);
    (good, fake)
}

fn mirror_once(url: &str, dir: &Path, key: &VerifierKey, extra: &[&str]) -> Output {
    let mut args = vec![
        "mirror",
        url,
        dir.to_str().unwrap(),
        "--key",
        &key.to_string(),
        "--once",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    stele(&a)
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    [
        "entries.jsonl",
        "checkpoints",
        "tree",
        "index",
        "mirror-state.json",
    ]
    .iter()
    .map(|n| {
        (
            n.to_string(),
            std::fs::read(dir.join(n)).unwrap_or_default(),
        )
    })
    .collect()
}

#[test]
fn every_fault_of_the_origin_is_an_alert_or_a_retry_and_leaves_the_mirror_undamaged() {
    let signer = key::generate("test.example/mirror").unwrap();
    let good = make_log("test.example/mirror", &signer, &[300, 700, 1100], "good");
    // The same key and origin, another history: a fork.
    let forked = make_log("test.example/mirror", &signer, &[300, 700, 1100], "evil");
    let other = key::generate("test.example/mirror").unwrap();
    let impostor = make_log("test.example/mirror", &other, &[1100], "good");
    let key = good.key.clone();
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    let fake = Fake::start(&good.dir, &good.cps[0].note);
    let o = mirror_once(&fake.url, &m, &key, &["--chunk-bytes", "20000"]);
    assert!(o.status.success(), "{}", err(&o));
    let held = snapshot(&m);
    let alerts = tmp.path().join("alerts.jsonl");
    let on_alert = format!("cat >> {}", alerts.display());

    // Each case: (name, note served, hook, expected alert kind, text in the message).
    type Case = (
        &'static str,
        String,
        Option<Hook>,
        &'static str,
        &'static str,
    );
    // (A rollback needs a larger held tree: it comes last, below.)
    let n1 = good.cps[1].note.clone();
    let cases: Vec<Case> = vec![
        (
            "truncated tile",
            n1.clone(),
            Some(Box::new(|p: &str, mut r: Reply| {
                if p.starts_with("/tile/0") || p.starts_with("/tile/1") {
                    r.body.truncate(r.body.len() - 1);
                }
                r
            })),
            "bad_tile",
            "bytes, expected",
        ),
        (
            "oversized tile",
            n1.clone(),
            Some(Box::new(|p: &str, mut r: Reply| {
                if p.starts_with("/tile/0") || p.starts_with("/tile/1") {
                    r.body.resize(9000, 7);
                }
                r
            })),
            "bad_response",
            "more than the 8192",
        ),
        (
            "one flipped bit in each tile hash",
            n1.clone(),
            Some(Box::new(|p: &str, mut r: Reply| {
                if !p.starts_with("/tile/entries") && p.starts_with("/tile/") {
                    for h in r.body.chunks_mut(32) {
                        h[5] ^= 0x10;
                    }
                }
                r
            })),
            "bad_tile",
            "does not lead to the signed root",
        ),
        (
            "one flipped bit in an entry bundle",
            n1.clone(),
            Some(Box::new(|p: &str, mut r: Reply| {
                if p.starts_with("/tile/entries/001") {
                    // Inside the bundle's last entry (entry 511).
                    let at = r.body.len() - 10;
                    r.body[at] ^= 0x01;
                }
                r
            })),
            "mismatch",
            "do not verify against its signed checkpoint",
        ),
        (
            "a truncated entry bundle",
            n1.clone(),
            Some(Box::new(|p: &str, mut r: Reply| {
                if p.starts_with("/tile/entries/") {
                    let n = r.body.len();
                    r.body.truncate(n - 3);
                }
                r
            })),
            "bad_response",
            "entry bundle",
        ),
        (
            "a checkpoint signed by another key",
            impostor.cps[0].note.clone(),
            None,
            "signature",
            "is not signed by the pinned key",
        ),
        (
            "an endless checkpoint (no Content-Length)",
            n1.clone(),
            Some(Box::new(|p: &str, mut r: Reply| {
                if p == "/checkpoint" {
                    r.body = vec![b'a'; 1 << 20];
                    r.no_length = true;
                }
                r
            })),
            "bad_response",
            "more than the 16384 bytes allowed",
        ),
        (
            "an oversized entry bundle (no Content-Length)",
            n1.clone(),
            Some(Box::new(|p: &str, mut r: Reply| {
                if p.starts_with("/tile/entries/") {
                    r.body = vec![0; 20 << 20];
                    r.no_length = true;
                }
                r
            })),
            "bad_response",
            "more than the 16777472 bytes allowed",
        ),
        (
            "garbage for a checkpoint",
            "<html>hello</html>\n".into(),
            None,
            "signature",
            "not a signed checkpoint",
        ),
        (
            "HTTP 404 for an entry bundle",
            n1.clone(),
            Some(Box::new(|p: &str, r: Reply| {
                if p.starts_with("/tile/entries/") {
                    Reply::status(404)
                } else {
                    r
                }
            })),
            "bad_response",
            "HTTP 404",
        ),
        (
            "HTTP 503 everywhere",
            n1.clone(),
            Some(Box::new(|_p: &str, _r: Reply| Reply::status(503))),
            "unreachable",
            "HTTP 503",
        ),
        (
            "a slow origin (timeout)",
            n1.clone(),
            Some(Box::new(|_p: &str, mut r: Reply| {
                r.delay = Duration::from_secs(3);
                r
            })),
            "unreachable",
            "timed out",
        ),
        (
            "a redirect to another host",
            n1.clone(),
            Some(Box::new(|p: &str, _r: Reply| Reply {
                headers: vec![("Location".into(), format!("http://evil.invalid{p}"))],
                ..Reply::status(302)
            })),
            "bad_response",
            "redirects are not followed",
        ),
        (
            "a fork (same key and origin, another history)",
            forked.cps[1].note.clone(),
            None,
            "fork",
            "does not contain the signed tree of size 300",
        ),
        (
            "a fork at the same size",
            forked.cps[0].note.clone(),
            None,
            "fork",
            "two signed trees of size 300",
        ),
    ];
    for (name, note, hook, kind, text) in cases {
        let dir = if note == forked.cps[1].note || note == forked.cps[0].note {
            &forked.dir
        } else if note == impostor.cps[0].note {
            &impostor.dir
        } else {
            &good.dir
        };
        fake.set(dir, &note);
        fake.hook(hook);
        let t0 = Instant::now();
        let o = mirror_once(
            &fake.url,
            &m,
            &key,
            &[
                "--timeout",
                "1s",
                "--retries",
                "2",
                "--on-alert",
                &on_alert,
                "--chunk-bytes",
                "20000",
            ],
        );
        let e = err(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {e}");
        assert!(e.contains(&format!("ALERT {kind}")), "{name}: {e}");
        assert!(e.contains(text), "{name}: expected {text:?} in: {e}");
        assert_eq!(snapshot(&m), held, "{name}: the mirror changed");
        eprintln!("{name}: {kind} in {:.1?}", t0.elapsed());
    }
    // The alert contract: one JSON object per alert on the command's stdin.
    let lines: Vec<Value> = std::fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fork = lines.iter().find(|a| a["alert"] == "fork").unwrap();
    assert_eq!(fork["trusted_size"], 300);
    assert_eq!(fork["verdict"], "failed");
    assert_eq!(fork["failures"][0]["code"], "fork");
    // The evidence: both signed checkpoints, byte for byte.
    let ev = PathBuf::from(fork["evidence"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(ev.join("held.checkpoint")).unwrap(),
        good.cps[0].note
    );
    assert_eq!(
        std::fs::read_to_string(ev.join("served.checkpoint")).unwrap(),
        forked.cps[1].note
    );

    // After all that, the honest origin: the mirror catches up and verifies.
    fake.set(&good.dir, &good.cps[2].note);
    fake.hook(None);
    let o = mirror_once(&fake.url, &m, &key, &["--chunk-bytes", "20000"]);
    assert!(o.status.success(), "{}", err(&o));
    let r = verified(&m, &key);
    assert_eq!(r.tree_size, Some(1100));
    // Now a rollback to 700 is an alert with evidence.
    fake.set(&good.dir, &good.cps[1].note);
    let o = mirror_once(&fake.url, &m, &key, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("ALERT rollback"), "{}", err(&o));
    assert!(err(&o).contains("smaller than the 1100"), "{}", err(&o));
    assert!(m.join("evidence").read_dir().unwrap().count() >= 2);
    let _ = verified(&m, &key);
}

#[test]
fn remote_monitor_fetches_only_the_checkpoint_and_a_few_tiles_per_poll() {
    let signer = key::generate("test.example/mon").unwrap();
    let good = make_log("test.example/mon", &signer, &[1000, 70_000], "good");
    let forked = make_log("test.example/mon", &signer, &[1000, 70_001], "evil");
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let st = state.to_str().unwrap();
    let k = good.key.to_string();
    let fake = Fake::start(&good.dir, &good.cps[0].note);
    let run = |fake: &Fake| stele(&["monitor", &fake.url, "--key", &k, "--state", st, "--once"]);
    let o = run(&fake);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(std::fs::read_to_string(&state).unwrap(), good.cps[0].note);
    fake.set(&good.dir, &good.cps[1].note);
    let o = run(&fake);
    assert!(o.status.success(), "{}", err(&o));
    let e = err(&o);
    // "..., B bytes in R requests": the checkpoint and the consistency
    // proof's tiles (at most two per tile level), never the entries.
    let words: Vec<&str> = e.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "requests").unwrap();
    let reqs: u64 = words[at - 1].parse().unwrap();
    let bytes: u64 = words[at - 4].parse().unwrap();
    eprintln!("poll from 1000 to 70000: {bytes} bytes in {reqs} requests");
    assert!(reqs <= 1 + 2 * 3, "{e}");
    assert!(bytes < 8 * 8192, "{e}");
    // What a poll of a 10M-entry log fetches: exactly the tiles of
    // tiles_for_consistency (check_extends asks for nothing else), at most
    // two per tile level (three levels below 256^3 entries).
    let mut worst = (0usize, 0usize, 0u64, 0u64);
    let ten_m = 10_000_000u64;
    for (old, new) in [
        (1, ten_m),
        (255, ten_m),
        (65_537, ten_m),
        (5_000_000, ten_m),
        (9_999_999, ten_m),
        (ten_m - 1000, ten_m),
        (3_333_333, 7_777_777),
    ] {
        let tiles = stele_core::tiles::tiles_for_consistency(old, new).unwrap();
        let b: usize = tiles.iter().map(Tile::byte_len).sum();
        assert!(tiles.len() <= 6, "{old}->{new}: {tiles:?}");
        if b > worst.1 {
            worst = (tiles.len(), b, old, new);
        }
    }
    eprintln!(
        "10M-entry log: at most {} tiles, {} bytes of tiles per poll (worst {}->{})",
        worst.0, worst.1, worst.2, worst.3
    );
    assert_eq!(std::fs::read_to_string(&state).unwrap(), good.cps[1].note);
    // A fork: another history under the same key.
    fake.set(&forked.dir, &forked.cps[1].note);
    let o = run(&fake);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("ALERT fork"), "{}", err(&o));
    assert_eq!(std::fs::read_to_string(&state).unwrap(), good.cps[1].note);
    // The contradicting signed checkpoint is kept next to the state file.
    let ev: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("state.fork-"))
        .collect();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(std::fs::read_to_string(&ev[0]).unwrap(), forked.cps[1].note);
}

// ---------------------------------------------------------------------------
// Against the real `stele serve`.

struct Origin {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    log: PathBuf,
    key: VerifierKey,
    token: String,
    server: Option<Child>,
    url: String,
}

fn serve(dir: &Path, extra: &[&str]) -> (Child, String) {
    common::spawn_serve(
        Command::new(STELE)
            .arg("serve")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::null()),
    )
}

impl Origin {
    fn start(extra: &[&str]) -> Self {
        Self::start_with(true, extra)
    }

    fn start_with(public_reads: bool, extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let log = root.join("log");
        let o = stele(&[
            "init",
            log.to_str().unwrap(),
            "--origin",
            "test.example/origin",
        ]);
        assert!(o.status.success(), "{}", err(&o));
        let key = VerifierKey::parse(String::from_utf8(o.stdout).unwrap().trim()).unwrap();
        let tokens = root.join("tokens");
        let o = stele(&["token", "add", tokens.to_str().unwrap(), "writer"]);
        let token = String::from_utf8(o.stdout).unwrap().trim().to_string();
        let mut args = vec!["--tokens", tokens.to_str().unwrap()];
        if public_reads {
            args.push("--public-reads");
        }
        args.extend_from_slice(extra);
        let (server, url) = serve(&log, &args);
        Self {
            _tmp: tmp,
            root,
            log,
            key,
            token,
            server: Some(server),
            url,
        }
    }

    fn post(&self, body: &str) -> Option<Vec<Value>> {
        let r = http(
            &self.url,
            "POST",
            "/v1/entries",
            Some(&self.token),
            body.as_bytes(),
        )
        .ok()?;
        (r.0 == 200).then(|| serde_json::from_slice(&r.1).unwrap())
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.kill();
    }
}

// A minimal HTTP/1.1 client for the test's own requests (status, body).
fn http(
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw)?;
    let (status, _, body) = common::parse_response(&raw)?;
    Ok((status, body))
}

fn events(tag: &str, from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("{{\"actor\":\"{tag}\",\"n\":{i}}}\n"))
        .collect()
}

fn state_size(m: &Path) -> u64 {
    stele_writer::mirror::read_state(m).map_or(0, |s| s.size)
}

// A small deterministic generator (no rand dependency); the seed is printed.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn kill_9_at_random_moments_during_catch_up_leaves_a_mirror_that_resumes() {
    let origin = Origin::start(&["--checkpoint-every", "64", "--checkpoint-interval", "100ms"]);
    assert!(origin.post(&events("a", 0, 3000)).is_some());
    let stop = Arc::new(AtomicBool::new(false));
    let grower = {
        let (url, token, stop) = (origin.url.clone(), origin.token.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 3000;
            while !stop.load(Ordering::Relaxed) {
                let _ = http(
                    &url,
                    "POST",
                    "/v1/entries",
                    Some(&token),
                    events("g", i, 25).as_bytes(),
                );
                i += 25;
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    let rounds: u64 = std::env::var("STELE_MIRROR_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill -9 rounds: {rounds}, seed {seed}");
    let mut rng = Lcg(seed);
    let t0 = Instant::now();
    let mut sizes = Vec::new();
    for _ in 0..rounds {
        let mut c = Command::new(STELE)
            .args([
                "mirror",
                &origin.url,
                m.to_str().unwrap(),
                "--key",
                &origin.key.to_string(),
            ])
            .args(["--interval", "10ms", "--chunk-bytes", "6000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5 + rng.below(120)));
        c.kill().unwrap(); // SIGKILL
        let _ = c.wait().unwrap();
        sizes.push(state_size(&m));
    }
    let elapsed = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    grower.join().unwrap();
    eprintln!(
        "{rounds} kill -9 rounds in {elapsed:.1?} ({:.0?} each); mirror sizes after kills: first {:?}, last {:?}",
        elapsed / rounds as u32,
        sizes.first(),
        sizes.last()
    );
    assert!(
        sizes.windows(2).all(|w| w[0] <= w[1]),
        "the mirror went backwards: {sizes:?}"
    );
    // Resume to the end: every entry equals the origin's, and it verifies.
    let o = mirror_once(&origin.url, &m, &origin.key, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let mine = std::fs::read(m.join("entries.jsonl")).unwrap();
    let theirs = std::fs::read(origin.log.join("entries.jsonl")).unwrap();
    assert!(mine.len() > 3000 * 20);
    assert_eq!(
        &theirs[..mine.len()],
        &mine[..],
        "the mirror's entries differ from the origin's"
    );
    let r = verified(&m, &origin.key);
    assert_eq!(r.tree_size, Some(state_size(&m)));
    let o = stele(&[
        "verify",
        m.to_str().unwrap(),
        "--key",
        &origin.key.to_string(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
}

#[test]
fn disaster_drill_restore_from_the_mirror_and_continue_the_chain() {
    let mut origin = Origin::start(&["--checkpoint-every", "16", "--checkpoint-interval", "100ms"]);
    // The backup procedure: the key is kept apart from the data.
    let vault = origin.root.join("vault");
    std::fs::create_dir(&vault).unwrap();
    let key_copy = vault.join("log.key");
    let _ = std::fs::copy(origin.log.join("key"), &key_copy).unwrap();
    let mut acked = Vec::new();
    for i in 0..10 {
        acked.extend(origin.post(&events("a", i * 50, 50)).unwrap());
    }
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    let mut mirror = spawn_mirror(
        &origin.url,
        &m,
        &origin.key,
        &["--interval", "50ms", "--timeout", "2s"],
        Stdio::null(),
    );
    // A checkpoint an auditor took before the disaster.
    std::thread::sleep(Duration::from_millis(300));
    let (st, note) = http(&origin.url, "GET", "/checkpoint", None, b"").unwrap();
    assert_eq!(st, 200);
    let trusted = tmp.path().join("trusted.checkpoint");
    std::fs::write(&trusted, &note).unwrap();
    let trusted_size: u64 = String::from_utf8_lossy(&note)
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(trusted_size >= 500);
    let deadline = Instant::now() + Duration::from_secs(60);
    while state_size(&m) < trusted_size {
        assert!(Instant::now() < deadline, "the mirror did not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Disaster: the writer's disk is gone while the mirror runs.
    origin.kill();
    std::fs::remove_dir_all(&origin.log).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    mirror.0.kill().unwrap();
    let _ = mirror.0.wait().unwrap();
    let held = std::fs::read(m.join("entries.jsonl")).unwrap();
    let held_size = state_size(&m);
    assert!(held_size >= trusted_size);
    // Restore, append, export, verify against the old trusted checkpoint.
    let restored = tmp.path().join("restored");
    let o = stele(&[
        "restore",
        m.to_str().unwrap(),
        restored.to_str().unwrap(),
        "--signing-key",
        key_copy.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let o = stele(&[
        "append",
        restored.to_str().unwrap(),
        "--event",
        r#"{"actor":"after","n":1}"#,
        "--event",
        r#"{"actor":"after","n":2}"#,
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let out = tmp.path().join("after.stele");
    let o = stele(&[
        "export",
        restored.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let o = stele(&[
        "verify",
        out.to_str().unwrap(),
        "--key",
        &origin.key.to_string(),
        "--trusted-checkpoint",
        trusted.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.starts_with("verified"),
        "{text}{}",
        err(&o)
    );
    // Nothing the mirror had acknowledged is lost; every receipt before the
    // trusted checkpoint is in the restored log.
    let now = std::fs::read(restored.join("entries.jsonl")).unwrap();
    assert_eq!(&now[..held.len()], &held[..]);
    let view = View::open_read_only(&restored).unwrap();
    for r in acked
        .iter()
        .filter(|r| r["seq"].as_u64().unwrap() < trusted_size)
    {
        let h = stele_core::Hash::from_base64(r["leaf_hash"].as_str().unwrap()).unwrap();
        assert_eq!(view.leaf_hash(r["seq"].as_u64().unwrap()).unwrap(), h);
    }
    assert!(view.size() > held_size);
    // The key is the log's; another key is refused.
    let wrong = vault.join("wrong.key");
    key::save(
        &stele_writer::fs::RealFs,
        &wrong,
        &key::generate("test.example/origin").unwrap(),
    )
    .unwrap();
    let o = stele(&[
        "restore",
        m.to_str().unwrap(),
        tmp.path().join("r2").to_str().unwrap(),
        "--signing-key",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("but the mirror's log is signed by"),
        "{}",
        err(&o)
    );
    forged_mirror_tail_is_never_signed(&m, &key_copy, tmp.path());
}

// Anyone who can write to a mirror's directory can append a well-chained
// entry and raise its commit point (neither is signed): restore must verify
// the copy against the pinned key and refuse, not sign the forged entry
// with the log's real key. A refused restore leaves nothing behind, and a
// directory holding part of a log is never written over.
fn forged_mirror_tail_is_never_signed(m: &Path, key_file: &Path, tmp: &Path) {
    let forged = tmp.join("forged");
    let o = Command::new("cp")
        .args(["-a", m.to_str().unwrap(), forged.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success());
    let state_path = forged.join("mirror-state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let size = state["size"].as_u64().unwrap();
    let entries_len = state["entries_len"].as_u64().unwrap() as usize;
    let mut entries = std::fs::read(forged.join("entries.jsonl")).unwrap();
    entries.truncate(entries_len);
    let last = entries[..entries_len - 1]
        .rsplit(|b| *b == b'\n')
        .next()
        .unwrap()
        .to_vec();
    let ts = serde_json::from_slice::<Value>(&last).unwrap()["ts"]
        .as_str()
        .unwrap()
        .to_string();
    let line = format!(
        r#"{{"event":{{"action":"grant-admin","actor":"mallory"}},"prev":"{}","seq":{size},"ts":"{ts}"}}"#,
        stele_core::hash::leaf_hash(&last).to_hex()
    );
    entries.extend_from_slice(line.as_bytes());
    entries.push(b'\n');
    std::fs::write(forged.join("entries.jsonl"), &entries).unwrap();
    state["size"] = (size + 1).into();
    state["entries_len"] = entries.len().into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    let n = size + 1;
    let stored = 2 * n - u64::from(n.count_ones());
    for (name, len) in [("tree", stored * 32), ("index", n * 8)] {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(forged.join(name))
            .unwrap();
        f.set_len(len).unwrap();
    }
    let target = tmp.join("from-forged");
    let o = stele(&[
        "restore",
        forged.to_str().unwrap(),
        target.to_str().unwrap(),
        "--signing-key",
        key_file.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "a forged tail was restored");
    // The forged line is well chained: what is missing is a signature.
    assert!(
        err(&o).contains("does not verify against the key it pins")
            && err(&o).contains(&format!("says {} entries, but {size} are signed", size + 1)),
        "{}",
        err(&o)
    );
    assert!(!target.exists(), "a refused restore left files behind");
    // A directory holding a log's files (no stele.json) is never overwritten.
    let part = tmp.join("part");
    std::fs::create_dir(&part).unwrap();
    std::fs::write(part.join("entries.jsonl"), "PRECIOUS\n").unwrap();
    let o = stele(&[
        "restore",
        m.to_str().unwrap(),
        part.to_str().unwrap(),
        "--signing-key",
        key_file.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(err(&o).contains("part of a log"), "{}", err(&o));
    assert_eq!(
        std::fs::read(part.join("entries.jsonl")).unwrap(),
        b"PRECIOUS\n"
    );
}

fn get(url: &str, path: &str) -> (u16, Vec<u8>) {
    http(url, "GET", path, None, b"").unwrap()
}

#[test]
fn a_mirror_served_read_only_is_byte_identical_and_can_itself_be_mirrored() {
    // Checkpoints only on demand, so the origin's latest stays put while we compare.
    let origin = Origin::start(&[
        "--checkpoint-every",
        "1000000",
        "--checkpoint-interval",
        "1h",
    ]);
    for i in 0..4 {
        assert!(origin.post(&events("a", i * 700, 700)).is_some());
    }
    // Ask for a proof of the last entry: the origin signs a checkpoint covering it.
    let (st, _) = get(&origin.url, "/v1/proof/inclusion?index=2800");
    assert_eq!(st, 200);
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    let o = mirror_once(&origin.url, &m, &origin.key, &["--chunk-bytes", "50000"]);
    assert!(o.status.success(), "{}", err(&o));
    let n = state_size(&m);
    assert!(n >= 2801, "{n}");
    let (ms, murl) = serve(&m, &["--read-only"]);
    // Killed even when an assertion below fails.
    let _ms = KillOnDrop(ms);
    let (st, cp_o) = get(&origin.url, "/checkpoint");
    assert_eq!(st, 200);
    assert_eq!(get(&murl, "/checkpoint"), (200, cp_o.clone()));
    // Every tile and entry bundle of the tree of size n.
    let mut compared = 0;
    for level in 0..4u8 {
        let mut i = 0;
        while let Some(t) = tile_in_tree(level, i, n) {
            for path in [format!("/{}", t.path()), format!("/{}", t.entries_path())] {
                if level > 0 && path.contains("entries") {
                    continue;
                }
                let a = get(&origin.url, &path);
                assert_eq!(a.0, 200, "{path}");
                assert_eq!(get(&murl, &path), a, "{path} differs");
                compared += 1;
            }
            i += 1;
        }
    }
    eprintln!("{compared} tiles and bundles identical at size {n}");
    assert!(compared > 20);
    // Proofs and partial exports against the same checkpoint.
    for q in [
        format!("/v1/proof/inclusion?index=0&size={n}"),
        format!("/v1/proof/inclusion?index=1234&size={n}"),
        format!("/v1/proof/consistency?from=17&to={n}"),
        format!("/v1/proof/consistency?from=2048&to={n}"),
        format!("/v1/export?from=5&to={n}"),
        "/v1/export?from=100&to=900".to_string(),
        "/v1/export?entries=3,17,42,2000".to_string(),
    ] {
        let a = get(&origin.url, &q);
        assert_eq!(a.0, 200, "{q}: {}", String::from_utf8_lossy(&a.1));
        assert_eq!(get(&murl, &q), a, "{q} differs");
    }
    // Read-only: no writes.
    let (st, _) = http(
        &murl,
        "POST",
        "/v1/entries",
        Some(&origin.token),
        b"{\"a\":1}",
    )
    .unwrap();
    assert_eq!(st, 405);
    // Metrics: the mirror's lag and last verified size.
    let (_, metrics) = get(&murl, "/metrics");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains(&format!("stele_mirror_verified_size {n}\n")),
        "{metrics}"
    );
    assert!(
        metrics.contains("stele_mirror_lag_entries 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stele_mirror_alerts_total 0\n"),
        "{metrics}"
    );
    // A mirror of the mirror.
    let m2 = tmp.path().join("m2");
    let o = mirror_once(&murl, &m2, &origin.key, &[]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        std::fs::read(m2.join("entries.jsonl")).unwrap(),
        std::fs::read(m.join("entries.jsonl")).unwrap()
    );
    let _ = verified(&m2, &origin.key);
    // The CLI readers work on a mirror, and record nothing in it.
    let before = std::fs::read(m.join("entries.jsonl")).unwrap();
    let out = tmp.path().join("m.stele");
    let o = stele(&["export", m.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("is a mirror (read-only)"), "{}", err(&o));
    let o = stele(&[
        "verify",
        out.to_str().unwrap(),
        "--key",
        &origin.key.to_string(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let o = stele(&[
        "verify",
        m.to_str().unwrap(),
        "--key",
        &origin.key.to_string(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(std::fs::read(m.join("entries.jsonl")).unwrap(), before);
    // Nothing appends to a mirror or signs for it.
    let o = stele(&["append", m.to_str().unwrap(), "--event", "{\"a\":1}"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("is a mirror of http://"), "{}", err(&o));
    let o = stele(&["checkpoint", m.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(m.join("entries.jsonl")).unwrap(), before);
}

struct KillOnDrop(Child);

// A running `stele mirror URL DIR --key KEY EXTRA…` (not --once), killed on
// drop; its stderr goes to `stderr` (a pipe nobody reads could fill and
// stall it).
fn spawn_mirror(
    url: &str,
    dir: &Path,
    key: &VerifierKey,
    extra: &[&str],
    stderr: Stdio,
) -> KillOnDrop {
    KillOnDrop(
        Command::new(STELE)
            .args(["mirror", url, dir.to_str().unwrap(), "--key"])
            .arg(key.to_string())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    )
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_failed_write_fsync_or_rename_stops_the_mirror_and_the_next_run_resumes_verified() {
    use stele_writer::fs::FileRole;
    use stele_writer::mirror::{Mirror, MirrorOptions, PollError};
    use stele_writer::testing::{FaultFs, FaultMode, Op};
    let (good, fake) = fake_origin("test.example/faults", 1500);
    let theirs = std::fs::read(good.dir.join("entries.jsonl")).unwrap();
    let cases = [
        (Op::Write, FileRole::Entries, 2, FaultMode::Partial),
        (Op::Sync, FileRole::Entries, 2, FaultMode::NotPersisted),
        (Op::Write, FileRole::Tree, 2, FaultMode::Persisted),
        (Op::Write, FileRole::Index, 1, FaultMode::Partial),
        (Op::Write, FileRole::Checkpoints, 1, FaultMode::Persisted),
        (Op::Sync, FileRole::Checkpoints, 1, FaultMode::NotPersisted),
        (Op::Write, FileRole::Other, 2, FaultMode::Partial),
        (Op::Rename, FileRole::Other, 2, FaultMode::NotPersisted),
        (Op::Rename, FileRole::Other, 2, FaultMode::Persisted),
        (Op::Sync, FileRole::Dir, 3, FaultMode::Persisted),
    ];
    for (op, role, nth, mode) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let m = tmp.path().join("m");
        let ffs = Arc::new(FaultFs::new());
        ffs.fail_nth(op, Some(role), nth, mode);
        let mut opts = MirrorOptions::new(good.key.clone());
        opts.chunk_bytes = 30_000;
        opts.fs = ffs.clone();
        let case = format!("{op:?} {role:?} #{nth} {mode:?}");
        let mut mir = Mirror::open(&m, &fake.url, opts).unwrap();
        match mir.poll() {
            Err(PollError::Local(e)) => eprintln!("{case}: stopped: {e}"),
            other => panic!("{case}: expected a local error, got {other:?}"),
        }
        assert_eq!(ffs.fired().len(), 1, "{case}");
        drop(mir);
        // The next run, on a healthy disk, resumes from the commit point.
        let mut mir = Mirror::open(&m, &fake.url, MirrorOptions::new(good.key.clone())).unwrap();
        let p = mir.poll().unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert_eq!(p.size, 1500, "{case}");
        drop(mir);
        let mine = std::fs::read(m.join("entries.jsonl")).unwrap();
        assert_eq!(mine, theirs, "{case}");
        let _ = verified(&m, &good.key);
    }
}

#[test]
fn an_origin_whose_reads_need_a_token_is_mirrored_with_token_file() {
    let origin = Origin::start_with(false, &["--checkpoint-every", "10"]);
    assert!(origin.post(&events("a", 0, 300)).is_some());
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    let o = mirror_once(&origin.url, &m, &origin.key, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("ALERT bad_response"), "{}", err(&o));
    assert!(
        err(&o).contains("HTTP 401: the origin says ")
            && err(&o).contains("(does the origin need --token-file?)"),
        "{}",
        err(&o)
    );
    assert!(!err(&o).contains(&origin.token));
    let tf = tmp.path().join("token");
    std::fs::write(&tf, format!("{}\n", origin.token)).unwrap();
    // A token is a secret like a key: a file others can read is refused.
    std::fs::set_permissions(&tf, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let o = mirror_once(
        &origin.url,
        &m,
        &origin.key,
        &["--token-file", tf.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("has mode 0644"), "{}", err(&o));
    assert!(!err(&o).contains(&origin.token));
    // Credentials in the URL are refused, never echoed nor kept.
    let with_creds = origin
        .url
        .replacen("http://", "http://admin:S3cretPass@", 1);
    let elsewhere = tmp.path().join("creds");
    let o = mirror_once(&with_creds, &elsewhere, &origin.key, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("holds credentials"), "{}", err(&o));
    assert!(!err(&o).contains("S3cretPass"), "{}", err(&o));
    assert!(!elsewhere.exists());
    std::fs::set_permissions(&tf, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let o = mirror_once(
        &origin.url,
        &m,
        &origin.key,
        &["--token-file", tf.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(!err(&o).contains(&origin.token));
    assert!(state_size(&m) >= 301);
    let _ = verified(&m, &origin.key);
}

#[test]
fn a_running_mirror_alerts_once_when_the_origin_stays_unreachable_past_the_limit() {
    let (good, fake) = fake_origin("test.example/down", 600);
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    let alerts = tmp.path().join("alerts.jsonl");
    fake.hook(Some(Box::new(|_p: &str, _r: Reply| Reply::status(503))));
    // stderr to a file: a pipe nobody reads could fill and stall the mirror.
    let log = tmp.path().join("stderr");
    let on_alert = format!("cat >> {}", alerts.display());
    let mut c = spawn_mirror(
        &fake.url,
        &m,
        &good.key,
        &[
            "--interval",
            "50ms",
            "--alert-after",
            "400ms",
            "--timeout",
            "2s",
            "--on-alert",
            &on_alert,
        ],
        std::fs::File::create(&log).unwrap().into(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !alerts.exists() {
        assert!(Instant::now() < deadline, "no unreachable alert");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still down for a while: no second alert of the same kind.
    std::thread::sleep(Duration::from_millis(600));
    // Back up: the mirror catches up without being restarted.
    fake.hook(None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while state_size(&m) < 600 {
        assert!(Instant::now() < deadline, "the mirror did not recover");
        std::thread::sleep(Duration::from_millis(50));
    }
    c.0.kill().unwrap();
    let _ = c.0.wait().unwrap();
    let e = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{e}");
    assert_eq!(lines[0]["alert"], "unreachable");
    let msg = lines[0]["failures"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("has been unreachable for") && msg.contains("HTTP 503"),
        "{msg}"
    );
    assert!(e.contains("retrying:"), "{e}");
    let _ = verified(&m, &good.key);
}

#[test]
fn a_rate_limited_catch_up_keeps_what_it_committed_and_goes_on() {
    let (good, fake) = fake_origin("test.example/rate", 3000);
    // Every third bundle read is refused with 429, as a stele serve origin
    // does past --access-rate.
    let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let n2 = n.clone();
    fake.hook(Some(Box::new(move |p: &str, r: Reply| {
        if p.starts_with("/tile/entries/") && n2.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
            Reply {
                headers: vec![("Retry-After".into(), "1".into())],
                ..Reply::status(429)
            }
        } else {
            r
        }
    })));
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    let o = mirror_once(&fake.url, &m, &good.key, &["--chunk-bytes", "20000"]);
    let e = err(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("retrying: GET") && e.contains("HTTP 429, retry after 1 s"),
        "{e}"
    );
    assert!(!e.contains("ALERT"), "{e}");
    assert_eq!(state_size(&m), 3000);
    assert_eq!(
        std::fs::read(m.join("entries.jsonl")).unwrap(),
        std::fs::read(good.dir.join("entries.jsonl")).unwrap()
    );
    let _ = verified(&m, &good.key);
}

// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            files_under(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

// A log sealing the values at `seal`, with the sealed test vectors' auditor:
// its directory, its key, the auditor's identity file (0600) and recipient.
fn sealed_origin(tmp: &Path, origin: &str, seal: &str) -> (PathBuf, VerifierKey, PathBuf, String) {
    let log = tmp.join("log");
    let o = stele(&[
        "init",
        log.to_str().unwrap(),
        "--origin",
        origin,
        "--seal",
        seal,
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let key = VerifierKey::parse(String::from_utf8(o.stdout).unwrap().trim()).unwrap();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/sealed");
    let id = tmp.join("auditor.key");
    let _ = std::fs::copy(vectors.join("auditor.key"), &id).unwrap();
    std::fs::set_permissions(&id, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let ids = stele_seal::Identity::parse_file(&std::fs::read_to_string(&id).unwrap()).unwrap();
    let recipient = ids[0].recipient();
    let o = stele(&["auditor", "add", log.to_str().unwrap(), &recipient]);
    assert!(o.status.success(), "{}", err(&o));
    (log, key, id, recipient)
}

// `n` events, one in `every` (at `at`) with a value at /a to seal, its
// subject one of three actors; the others plain.
fn sealed_events(n: u64, every: u64, at: u64) -> String {
    (0..n)
        .map(|i| {
            if i % every == at {
                format!("{{\"a\":\"v{i}\",\"actor\":\"s{}\"}}\n", i % 3)
            } else {
                format!("{{\"n\":{i}}}\n")
            }
        })
        .collect()
}

// A reader of a sealed origin served read-only: a token with the reveal
// scope (in the tokens file, and alone in a 0600 token file for the CLI)
// and another log where the server records its reads (--access-log).
struct RevealReader {
    tokens: PathBuf,
    token: String,
    token_file: PathBuf,
    access: PathBuf,
}

impl RevealReader {
    fn new(tmp: &Path) -> Self {
        let tokens = tmp.join("tokens");
        let o = stele(&[
            "token",
            "add",
            tokens.to_str().unwrap(),
            "m",
            "--scope",
            "read,reveal",
        ]);
        assert!(o.status.success(), "{}", err(&o));
        let token = String::from_utf8(o.stdout).unwrap().trim().to_string();
        let token_file = tmp.join("token");
        std::fs::write(&token_file, &token).unwrap();
        std::fs::set_permissions(
            &token_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let access = tmp.join("access");
        let o = stele(&[
            "init",
            access.to_str().unwrap(),
            "--origin",
            "test.example/reads",
        ]);
        assert!(o.status.success(), "{}", err(&o));
        Self {
            tokens,
            token,
            token_file,
            access,
        }
    }

    // `dir` served read-only, its reads recorded in the access log.
    fn serve(&self, dir: &Path) -> (KillOnDrop, String) {
        let (server, url) = serve(
            dir,
            &[
                "--read-only",
                "--tokens",
                self.tokens.to_str().unwrap(),
                "--access-log",
                self.access.to_str().unwrap(),
            ],
        );
        (KillOnDrop(server), url)
    }

    // A library mirror with openings, reading as this reader.
    fn options(
        &self,
        key: &VerifierKey,
        chunk_bytes: usize,
        fs: Option<Arc<stele_writer::testing::FaultFs>>,
    ) -> stele_writer::mirror::MirrorOptions {
        let mut o = stele_writer::mirror::MirrorOptions::new(key.clone());
        o.chunk_bytes = chunk_bytes;
        o.openings = true;
        o.token = Some(self.token.clone());
        if let Some(f) = fs {
            o.fs = f;
        }
        o
    }
}

#[test]
fn a_mirror_of_a_sealed_log_copies_commitments_and_never_openings_or_keys() {
    // Sealed fields (docs/FORMAT.md 13): entry bundles carry placeholders
    // (commitments); openings, data keys and wraps stay in the origin's
    // sidecar, which no endpoint serves. A mirror holds nothing that opens
    // a value, so a subject forgotten at the origin is forgotten on every
    // mirror too, and the stele.forget event reaches the mirror as an entry.
    const MARKER: &str = "MIRROR-SEALED-5d1c";
    let tmp = tempfile::tempdir().unwrap();
    let (log, key, id, _) = sealed_origin(tmp.path(), "test.example/sealed", "/actor/email");
    let l = log.to_str().unwrap();
    for who in ["alice", "bob", "carol"] {
        let ev = format!(
            r#"{{"action":"login","actor":{{"email":"{who}-{MARKER}@example.com","id":"{who}"}}}}"#
        );
        let o = stele(&["append", l, "--event", &ev]);
        assert!(o.status.success(), "{}", err(&o));
    }
    let subject = format!(r#"{{"email":"bob-{MARKER}@example.com","id":"bob"}}"#);
    let o = stele(&["forget", l, "--subject", &subject, "--by", "dpo"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = stele(&["checkpoint", l]);
    assert!(o.status.success(), "{}", err(&o));
    let (server, url) = serve(&log, &["--read-only"]);
    let _server = KillOnDrop(server);
    let m = tmp.path().join("m");
    let o = mirror_once(&url, &m, &key, &[]);
    assert!(o.status.success(), "{}", err(&o));
    // The placeholders are copied byte for byte, and the mirror verifies.
    assert_eq!(
        std::fs::read(m.join("entries.jsonl")).unwrap(),
        std::fs::read(log.join("entries.jsonl")).unwrap()
    );
    assert!(
        std::fs::read_to_string(m.join("entries.jsonl"))
            .unwrap()
            .contains("\"stele.sealed\"")
    );
    let _ = verified(&m, &key);
    // Nothing that opens a value: no sidecar, no value, no opening.
    assert!(!m.join("sealed").exists());
    let mut all = Vec::new();
    files_under(&m, &mut all);
    for f in &all {
        let b = std::fs::read(f).unwrap();
        assert!(
            !b.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "{} holds a sealed value",
            f.display()
        );
    }
    // An export of the mirror verifies; with the auditor's identity every
    // value stays sealed (the mirror has no opening to give).
    let x = tmp.path().join("m.stele");
    let o = stele(&["export", m.to_str().unwrap(), "-o", x.to_str().unwrap()]);
    assert!(o.status.success(), "{}", err(&o));
    let o = stele(&[
        "verify",
        x.to_str().unwrap(),
        "--key",
        &key.to_string(),
        "--identity",
        id.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["verdict"], "verified");
    assert_eq!(
        r["sealed"],
        serde_json::json!({"values": 3, "opened": 0, "sealed": 3, "forgotten": 0, "redacted": 0})
    );
    // The origin's forget is in the mirror as its signed stele.forget entry.
    let text = std::fs::read_to_string(m.join("entries.jsonl")).unwrap();
    assert!(text.contains("\"type\":\"stele.forget\""), "{text}");
    // A restore never writes in the clear what the log sealed: without the
    // rules (a mirror does not copy them) it is refused, saying how.
    let (mm, keyf) = (m.to_str().unwrap(), log.join("key"));
    let r1 = tmp.path().join("r1");
    let o = stele(&[
        "restore",
        mm,
        r1.to_str().unwrap(),
        "--signing-key",
        keyf.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("has sealed fields") && err(&o).contains("--seal POINTER"),
        "{}",
        err(&o)
    );
    assert!(!r1.join("stele.json").exists());
    // With the rules, later events are sealed again.
    let o = stele(&[
        "restore",
        mm,
        r1.to_str().unwrap(),
        "--signing-key",
        keyf.to_str().unwrap(),
        "--seal",
        "/actor/email",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let ev = format!(r#"{{"action":"login","actor":{{"email":"dave-{MARKER}@example.com"}}}}"#);
    let o = stele(&["append", r1.to_str().unwrap(), "--event", &ev]);
    assert!(o.status.success(), "{}", err(&o));
    let text = std::fs::read_to_string(r1.join("entries.jsonl")).unwrap();
    assert!(!text.contains(MARKER), "a value was written in the clear");
    assert!(
        stele(&["checkpoint", r1.to_str().unwrap()])
            .status
            .success()
    );
    let _ = verified(&r1, &key);
    // --unsealed says so explicitly.
    let r2 = tmp.path().join("r2");
    let o = stele(&[
        "restore",
        mm,
        r2.to_str().unwrap(),
        "--signing-key",
        keyf.to_str().unwrap(),
        "--unsealed",
    ]);
    assert!(o.status.success(), "{}", err(&o));
}

// A gauge's value in a Prometheus text page.
fn metric(page: &str, name: &str) -> i64 {
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        .parse()
        .unwrap()
}

#[test]
fn a_served_mirror_reports_its_lag_verified_size_and_alerts_in_metrics() {
    let (good, fake) = fake_origin("test.example/lag", 3000);
    // Bundles from entry 1024 on fail (HTTP 500): the mirror commits what
    // it verified before them, then alerts that the origin is unreachable.
    fake.hook(Some(Box::new(|p: &str, r: Reply| {
        let broken = p
            .strip_prefix("/tile/entries/")
            .and_then(|n| n.split('.').next())
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= 4);
        if broken { Reply::status(500) } else { r }
    })));
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    let o = mirror_once(
        &fake.url,
        &m,
        &good.key,
        &["--chunk-bytes", "20000", "--retries", "2"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("ALERT unreachable"), "{}", err(&o));
    let held = state_size(&m);
    let n = good.cps[0].checkpoint.size;
    assert!((1..=1024).contains(&held), "{held}");
    let (ms, murl) = serve(&m, &["--read-only"]);
    let ms = KillOnDrop(ms);
    let (st, page) = get(&murl, "/metrics");
    assert_eq!(st, 200);
    let page = String::from_utf8(page).unwrap();
    assert_eq!(metric(&page, "stele_mirror_verified_size"), held as i64);
    assert_eq!(metric(&page, "stele_mirror_origin_size"), n as i64);
    assert_eq!(metric(&page, "stele_mirror_lag_entries"), (n - held) as i64);
    // Never caught up yet: no "seconds behind" to give.
    assert_eq!(metric(&page, "stele_mirror_lag_seconds"), -1);
    assert_eq!(metric(&page, "stele_mirror_alerts_total"), 1);
    assert!(metric(&page, "stele_mirror_last_poll_timestamp_seconds") > 0);
    assert!(metric(&page, "stele_mirror_fetched_bytes_total") > 0);
    drop(ms);
    // The origin heals: the next run catches up, lag 0, no alert.
    fake.hook(None);
    let o = mirror_once(&fake.url, &m, &good.key, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let (ms, murl) = serve(&m, &["--read-only"]);
    let _ms = KillOnDrop(ms);
    let page = String::from_utf8(get(&murl, "/metrics").1).unwrap();
    assert_eq!(metric(&page, "stele_mirror_verified_size"), n as i64);
    assert_eq!(metric(&page, "stele_mirror_lag_entries"), 0);
    assert!((0..600).contains(&metric(&page, "stele_mirror_lag_seconds")));
    assert_eq!(metric(&page, "stele_mirror_alerts_total"), 0);
}

#[test]
fn a_hostile_origin_sending_the_largest_bundles_cannot_grow_the_mirror_past_its_bound() {
    // Every entry bundle is the largest a tlog-tiles bundle can be: its
    // width of 65,535-byte entries (16.8 MB). The origin has 118 of them
    // (2 GB); the mirror may hold one chunk and two waves of --parallel.
    let (good, fake) = fake_origin("test.example/big", 30_000);
    let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = served.clone();
    fake.hook(Some(Box::new(move |p: &str, mut r: Reply| {
        if let Some(rest) = p.strip_prefix("/tile/entries/") {
            let width: usize = rest
                .split_once(".p/")
                .map_or(256, |(_, w)| w.parse().unwrap());
            let entry = vec![b'a'; 65_535];
            r.body = encode_entry_bundle(std::iter::repeat_n(&entry[..], width)).unwrap();
            let _ = counter.fetch_add(1, Ordering::Relaxed);
        }
        r
    })));
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    let alerts = tmp.path().join("alerts.jsonl");
    let on_alert = format!("cat >> {}", alerts.display());
    let mut c = spawn_mirror(
        &fake.url,
        &m,
        &good.key,
        &[
            "--interval",
            "1h",
            "--parallel",
            "4",
            "--on-alert",
            &on_alert,
        ],
        Stdio::null(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !alerts.exists() {
        assert!(Instant::now() < deadline, "no alert");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The poll is over (the next is an hour away): its peak is final.
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.0.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    c.0.kill().unwrap();
    let _ = c.0.wait();
    let alert: Value = serde_json::from_str(
        std::fs::read_to_string(&alerts)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(alert["alert"], "mismatch", "{alert}");
    let bundles = served.load(Ordering::Relaxed);
    let mb = peak_kib / 1024;
    eprintln!(
        "hostile origin: {bundles} bundles of 16.8 MB served, mirror peak RSS {mb} MiB (bound: a 16 MiB chunk + 2 waves of 4 bundles = 150 MB)"
    );
    // Nothing unverified was kept, and the fetches stopped near the bound.
    assert_eq!(state_size(&m), 0);
    assert!(bundles <= 1 + 2 * 4 + 4, "{bundles} bundles fetched");
    assert!(mb < 600, "peak RSS {mb} MiB");
}

// ---------------------------------------------------------------------------
// Witness policies (issue 14) and key rotations (issue 15) in the mirror and
// the remote monitor.

fn witness(n: u8) -> stele_core::witness::Cosigner {
    stele_core::witness::Cosigner::from_seed(&format!("witness-{n}.example"), [100 + n; 32])
        .unwrap()
}

// `note` with a cosignature line by each witness of `by`.
fn cosign(note: &str, by: &[u8]) -> String {
    let text = &note[..note.find("\n\n").unwrap() + 1];
    let mut out = note.to_string();
    for &n in by {
        out.push_str(&witness(n).cosign(text, 1_795_683_600 + u64::from(n)));
    }
    out
}

// A 2-of-3 policy over witnesses 1..3, written to `dir/policy`.
fn two_of_three(dir: &Path) -> PathBuf {
    let w = |n: u8| witness(n).verifier().to_string();
    let p = dir.join("policy");
    std::fs::write(
        &p,
        format!(
            "witness w1 {}\nwitness w2 {}\nwitness w3 {}\ngroup two-of-three 2 w1 w2 w3\nquorum two-of-three\n",
            w(1),
            w(2),
            w(3)
        ),
    )
    .unwrap();
    p
}

// The alert JSON an --on-alert command wrote to `file`.
fn alert_in(file: &Path) -> Value {
    let text = std::fs::read_to_string(file).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[test]
fn a_mirror_with_a_policy_keeps_only_cosigned_checkpoints_and_alerts_on_a_split_view() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = two_of_three(tmp.path());
    let policy = policy.to_str().unwrap();
    let signer = key::generate("test.example/witnessed").unwrap();
    let good = make_log("test.example/witnessed", &signer, &[10, 20], "good");
    let fake = Fake::start(&good.dir, &cosign(&good.cps[0].note, &[1, 2]));
    let m = tmp.path().join("mirror");
    let alert = tmp.path().join("alert.json");
    let on_alert = format!("cat >> {}", alert.display());
    let with_policy = [
        "--policy",
        policy,
        "--on-alert",
        &on_alert,
        "--retries",
        "1",
    ];

    // Cosigned by two of three: mirrored, the cosigned note kept.
    let o = mirror_once(&fake.url, &m, &good.key, &with_policy);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(state_size(&m), 10);
    let held = View::open_read_only(&m).unwrap();
    assert_eq!(
        held.latest_checkpoint().unwrap().note,
        cosign(&good.cps[0].note, &[1, 2])
    );
    let o = stele(&[
        "verify",
        m.to_str().unwrap(),
        "--key",
        &good.key.to_string(),
        "--policy",
        policy,
    ]);
    assert!(o.status.success(), "{}", err(&o));

    // A larger tree cosigned by one witness: an alert, nothing stored.
    let before = snapshot(&m);
    fake.set(&good.dir, &cosign(&good.cps[1].note, &[1]));
    let o = mirror_once(&fake.url, &m, &good.key, &with_policy);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("ALERT quorum"), "{}", err(&o));
    let a = alert_in(&alert);
    assert_eq!(a["alert"], "quorum");
    assert_eq!(a["verdict"], "failed");
    assert_eq!(a["failures"][0]["code"], "quorum_not_met");
    assert_eq!(a["failures"][0]["expected"], "two-of-three");
    assert_eq!(a["failures"][0]["found"], "w1");
    assert!(a["evidence"].as_str().is_some(), "{a}");
    assert_eq!(
        snapshot(&m),
        before,
        "a checkpoint without quorum was stored"
    );
    // Without the policy the same mirror takes it (the policy is the caller's).
    let o = mirror_once(&fake.url, &m, &good.key, &[]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(state_size(&m), 20);

    // A split view: the same key signs another history of the origin,
    // which only witness 3 cosigns (1 and 2 cosigned the real one).
    let evil = make_log("test.example/witnessed", &signer, &[20], "evil");
    fake.set(&evil.dir, &cosign(&evil.cps[0].note, &[3]));
    // A fresh mirror shown only the fork: quorum, nothing held.
    let fresh = tmp.path().join("fresh");
    let o = mirror_once(&fake.url, &fresh, &good.key, &with_policy);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert_eq!(alert_in(&alert)["alert"], "quorum");
    assert_eq!(state_size(&fresh), 0);
    assert!(!fresh.join("stele.json").exists());
    // The mirror that holds the real tree: a fork, both notes kept.
    let before = snapshot(&m);
    let o = mirror_once(&fake.url, &m, &good.key, &with_policy);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert_eq!(alert_in(&alert)["alert"], "fork");
    assert_eq!(snapshot(&m), before);

    // The remote monitor takes the policy too.
    let st = tmp.path().join("monitor.state");
    let monitor = |url: &str| {
        stele(&[
            "monitor",
            url,
            "--key",
            &good.key.to_string(),
            "--state",
            st.to_str().unwrap(),
            "--once",
            "--policy",
            policy,
            "--on-alert",
            &on_alert,
        ])
    };
    fake.set(&good.dir, &cosign(&good.cps[0].note, &[2, 3]));
    let o = monitor(&fake.url);
    assert!(o.status.success(), "{}", err(&o));
    fake.set(&evil.dir, &cosign(&evil.cps[0].note, &[3]));
    let o = monitor(&fake.url);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    // Checked for consistency first: the fork is named.
    assert_eq!(alert_in(&alert)["alert"], "fork");
    fake.set(&good.dir, &cosign(&good.cps[1].note, &[3]));
    let o = monitor(&fake.url);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let a = alert_in(&alert);
    assert_eq!(a["alert"], "quorum");
    assert_eq!(a["failures"][0]["code"], "quorum_not_met");
    // The held checkpoint did not move.
    let held = std::fs::read_to_string(&st).unwrap();
    assert!(held.contains("\n10\n"), "{held}");
}

// Waits (bounded) until `f` holds.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_mirror_and_a_remote_monitor_follow_a_rotation_they_did_not_see() {
    let origin = Origin::start(&["--checkpoint-every", "16", "--checkpoint-interval", "100ms"]);
    let genesis = origin.key.clone();
    assert!(origin.post(&events("a", 0, 40)).is_some());
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("mirror");
    let st = tmp.path().join("monitor.state");
    let monitor = || {
        stele(&[
            "monitor",
            &origin.url,
            "--key",
            &genesis.to_string(),
            "--state",
            st.to_str().unwrap(),
            "--once",
        ])
    };
    let o = mirror_once(&origin.url, &m, &genesis, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let o = monitor();
    assert!(o.status.success(), "{}", err(&o));

    // The origin rotates (handed to the running server), then signs past
    // the overlap with the new key only.
    let o = stele(&[
        "key",
        "rotate",
        origin.log.to_str().unwrap(),
        "--overlap",
        "1",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(origin.log.join("stele.json")).unwrap()).unwrap();
    let from = cfg["retired_keys"][0]["to"].as_u64().unwrap();
    let new_key_file = {
        let k = PathBuf::from(cfg["key_file"].as_str().unwrap());
        if k.is_absolute() {
            k
        } else {
            origin.log.join(k)
        }
    };
    let mut n = 40;
    wait_for("a checkpoint signed by the new key alone", || {
        assert!(origin.post(&events("b", n, 20)).is_some());
        n += 20;
        let (_, body) = get(&origin.url, "/checkpoint");
        let note = String::from_utf8(body).unwrap();
        let sc = stele_core::checkpoint::SignedCheckpoint::parse(note.as_bytes()).unwrap();
        sc.checkpoint.size > from + 40
            && sc.note.signatures.len() == 1
            && sc
                .verify(std::slice::from_ref(&genesis))
                .verified_by
                .is_empty()
    });
    let (code, body) = get(&origin.url, "/v1/keys");
    assert_eq!(code, 200);
    let h: stele_writer::remote::KeyHistory = serde_json::from_slice(&body).unwrap();
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.keys[0].from, from);

    // The mirror (which saw only the genesis key) follows: it catches up
    // to the covering checkpoint, learns the key from the verified event,
    // keeps it in its commit point, and the copy verifies from the genesis key.
    let o = mirror_once(&origin.url, &m, &genesis, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let s = stele_writer::mirror::read_state(&m).unwrap();
    assert_eq!(s.keys.len(), 1, "{s:?}");
    assert_eq!(s.keys[0].from, from);
    let r = verified(&m, &genesis);
    assert_eq!(r.keys.as_ref().map(Vec::len), Some(2));
    // A later round and a fresh mirror started after the rotation.
    assert!(origin.post(&events("c", 0, 10)).is_some());
    let o = mirror_once(&origin.url, &m, &genesis, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let fresh = tmp.path().join("fresh");
    let o = mirror_once(&origin.url, &fresh, &genesis, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let _ = verified(&fresh, &genesis);

    // The remote monitor follows it (and again after a restart, from its
    // state signed by the new key alone).
    let o = monitor();
    assert!(o.status.success(), "{}", err(&o));
    let o = monitor();
    assert!(o.status.success(), "{}", err(&o));
    // The served mirror serves the key history too: a mirror of the mirror follows.
    let (mut ro, ro_url) = serve(&m, &["--read-only"]);
    let mm = tmp.path().join("mirror2");
    let o = mirror_once(&ro_url, &mm, &genesis, &[]);
    let _ = ro.kill();
    let _ = ro.wait();
    assert!(o.status.success(), "{}", err(&o));
    let _ = verified(&mm, &genesis);
    // A revoked new key from `from` on is not accepted by `stele verify` on the copy.
    let revoked = format!("{}@{from}", VerifierKey::parse(&s.keys[0].key).unwrap());
    let o = stele(&[
        "verify",
        m.to_str().unwrap(),
        "--key",
        &genesis.to_string(),
        "--revoked",
        &revoked,
    ]);
    assert!(!o.status.success());

    // Restore: only the current key restores; the result signs with it,
    // its key history is right, and an export verifies from the genesis key.
    let restored = tmp.path().join("restored");
    let old_key_file = origin
        .log
        .join(cfg["retired_keys"][0]["key_file"].as_str().unwrap());
    let o = stele(&[
        "restore",
        m.to_str().unwrap(),
        restored.to_str().unwrap(),
        "--signing-key",
        old_key_file.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(err(&o).contains("its key since size"), "{}", err(&o));
    let o = stele(&[
        "restore",
        m.to_str().unwrap(),
        restored.to_str().unwrap(),
        "--signing-key",
        new_key_file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let o = stele(&[
        "append",
        restored.to_str().unwrap(),
        "--event",
        r#"{"actor":"after","n":1}"#,
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let log = Log::open(&restored).unwrap();
    assert_eq!(log.key_history().len(), 2);
    assert_eq!(log.verifier().to_string(), s.keys[0].key);
    let cp = log.checkpoint().unwrap();
    drop(log);
    let export = tmp.path().join("after.stele");
    let o = stele(&[
        "export",
        restored.to_str().unwrap(),
        "-o",
        export.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let o = stele(&[
        "verify",
        export.to_str().unwrap(),
        "--key",
        &genesis.to_string(),
    ]);
    assert!(
        o.status.success(),
        "{}{}",
        err(&o),
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(cp.checkpoint.size > from);
}

// docs/FORMAT.md 15.3 reaches the mirror and both monitors: `--revoked K@S`
// refuses K's checkpoints from S on, and those of the key K handed over to
// (which could be a thief's, signed in a fork) unless it is pinned beside K.
// The honest rotation below stands for the thief's hand-over: to a reader
// pinning only the genesis key, the two look the same.
#[test]
fn a_revoked_key_and_the_key_it_handed_over_to_are_refused_by_mirrors_and_monitors() {
    let origin = Origin::start(&["--checkpoint-every", "16", "--checkpoint-interval", "100ms"]);
    let genesis = origin.key.clone();
    assert!(origin.post(&events("a", 0, 40)).is_some());
    let tmp = tempfile::tempdir().unwrap();
    let early = tmp.path().join("early");
    let o = mirror_once(&origin.url, &early, &genesis, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let o = stele(&[
        "key",
        "rotate",
        origin.log.to_str().unwrap(),
        "--overlap",
        "1",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let mut n = 40;
    let mut size = 0;
    wait_for("a checkpoint signed by the new key alone", || {
        assert!(origin.post(&events("b", n, 20)).is_some());
        n += 20;
        let (_, body) = get(&origin.url, "/checkpoint");
        let sc = stele_core::checkpoint::SignedCheckpoint::parse(&body).unwrap();
        size = sc.checkpoint.size;
        sc.note.signatures.len() == 1
            && sc
                .verify(std::slice::from_ref(&genesis))
                .verified_by
                .is_empty()
    });
    let (_, body) = get(&origin.url, "/v1/keys");
    let h: stele_writer::remote::KeyHistory = serde_json::from_slice(&body).unwrap();
    let successor = h.keys[0].key.clone();
    // Revoked from a size above the hand-over's covering checkpoint: the
    // hand-over stands, the successor inherits the revocation.
    assert!(h.keys[0].from < size);
    let revoked = format!("{genesis}@{size}");
    let st = tmp.path().join("state");
    let g = genesis.to_string();
    // With the keys pinned beside the genesis key.
    let runs_made = std::cell::Cell::new(0);
    let runs = |revoked: &str, also: &[&str]| {
        let mut extra = vec!["--revoked", revoked];
        for k in also {
            extra.extend(["--key", k]);
        }
        let pinned = [&["--key", g.as_str()], &extra[..]].concat();
        let monitor = |target: &str| {
            let _ = std::fs::remove_file(&st);
            let args = [
                &["monitor", target, "--state", st.to_str().unwrap(), "--once"],
                &pinned[..],
            ]
            .concat();
            stele(&args)
        };
        runs_made.set(runs_made.get() + 1);
        let fresh = tmp.path().join(format!("fresh{}", runs_made.get()));
        [
            (
                "fresh mirror",
                mirror_once(&origin.url, &fresh, &genesis, &extra),
            ),
            (
                "earlier mirror",
                mirror_once(&origin.url, &early, &genesis, &extra),
            ),
            ("remote monitor", monitor(&origin.url)),
            ("local monitor", monitor(origin.log.to_str().unwrap())),
        ]
    };
    for (what, o) in runs(&revoked, &[]) {
        assert!(
            !o.status.success(),
            "{what} accepted the successor of a revoked key"
        );
        let e = err(&o);
        assert!(
            e.contains(&format!("revoked from size {size}")) || e.contains("key_revoked"),
            "{what}: {e}"
        );
    }
    // Pinned beside the revoked key, the published successor is trusted.
    for (what, o) in runs(&revoked, &[&successor]) {
        assert!(o.status.success(), "{what}: {}", err(&o));
    }
    // Revoked from the rotation's own size: the hand-over's checkpoints
    // carry the revoked key's signature, which fails them beside any other
    // (core's rule: `stele verify` says key_revoked), pinned successor or not.
    let at_rotation = format!("{genesis}@{}", h.keys[0].from);
    let o = stele(&[
        "verify",
        origin.log.to_str().unwrap(),
        "--key",
        &g,
        "--key",
        &successor,
        "--revoked",
        &at_rotation,
    ]);
    assert!(!o.status.success());
    for (what, o) in runs(&at_rotation, &[&successor]) {
        if what == "earlier mirror" {
            // It accepted those checkpoints before it was told: it says so
            // at open and fetches nothing (it went on quietly, holding a
            // copy every verifier now refuses), and a check of the copy
            // names them.
            assert!(!o.status.success(), "{what}: {}", err(&o));
            let e = err(&o);
            assert!(
                e.contains("carries the signature of a revoked key")
                    && e.contains(&format!("revoked from size {}", h.keys[0].from))
                    && e.contains("nothing was fetched"),
                "{what}: {e}"
            );
            let v = stele(&[
                "verify",
                early.to_str().unwrap(),
                "--key",
                &g,
                "--key",
                &successor,
                "--revoked",
                &at_rotation,
            ]);
            assert!(!v.status.success());
            assert!(
                String::from_utf8_lossy(&v.stdout).contains("key_revoked"),
                "{}",
                String::from_utf8_lossy(&v.stdout)
            );
            continue;
        }
        assert!(
            !o.status.success(),
            "{what} accepted a revoked signature: {} {}",
            err(&o),
            String::from_utf8_lossy(&o.stdout)
        );
        let e = err(&o);
        assert!(
            e.contains("revoked from size") || e.contains("key_revoked"),
            "{what}: {e}"
        );
    }
}

// `stele append DIR` of JSON Lines on stdin.
fn append_lines(dir: &str, lines: &str) {
    let o = Command::new(STELE)
        .args(["append", dir])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(lines.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
}

// `stele verify DIR --key K --identity ID --json`'s sealed counts.
fn sealed_counts(dir: &Path, key: &VerifierKey, id: &Path) -> Value {
    let o = stele(&[
        "verify",
        dir.to_str().unwrap(),
        "--key",
        &key.to_string(),
        "--identity",
        id.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["verdict"], "verified", "{r}");
    r["sealed"].clone()
}

#[test]
fn a_mirror_with_openings_copies_them_restores_them_and_applies_the_origins_forget_list() {
    // `stele mirror --with-openings` (a token with the reveal scope): the
    // origin's encrypted openings and its data keys wrapped to its auditors
    // are copied, never a value or a key; the origin's forget list is
    // applied at every poll; a restore carries the openings on.
    const MARKER: &str = "MIRROR-OPENINGS-9b2e";
    let tmp = tempfile::tempdir().unwrap();
    let (log, key, id, recipient) =
        sealed_origin(tmp.path(), "test.example/openings", "/actor/email");
    let l = log.to_str().unwrap();
    for who in ["alice", "bob", "carol"] {
        let ev = format!(
            r#"{{"action":"login","actor":{{"email":"{who}-{MARKER}@example.com","id":"{who}"}}}}"#
        );
        let o = stele(&["append", l, "--event", &ev]);
        assert!(o.status.success(), "{}", err(&o));
    }
    // Plain events between the sealed ones, over several chunks.
    append_lines(l, &events("p", 0, 600));
    let ev = format!(r#"{{"action":"logout","actor":{{"email":"dave-{MARKER}@example.com"}}}}"#);
    assert!(stele(&["append", l, "--event", &ev]).status.success());
    assert!(stele(&["checkpoint", l]).status.success());
    let tokens = tmp.path().join("tokens");
    let t = tokens.to_str().unwrap();
    let token = |name: &str, scope: &str| {
        let o = stele(&["token", "add", t, name, "--scope", scope]);
        assert!(o.status.success(), "{}", err(&o));
        let f = tmp.path().join(name);
        std::fs::write(&f, String::from_utf8(o.stdout).unwrap().trim()).unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        f
    };
    let (reader, revealer) = (token("reader", "read"), token("mirror", "read,reveal"));
    let chunks = ["--chunk-bytes", "20000"];
    // A read-only server records no reads unless given another log for
    // them, and it never serves openings it cannot record.
    let (server, url) = serve(&log, &["--read-only", "--tokens", t]);
    let unrecorded = tmp.path().join("unrecorded");
    let o = mirror_once(
        &url,
        &unrecorded,
        &key,
        &[
            "--with-openings",
            "--token-file",
            revealer.to_str().unwrap(),
        ],
    );
    drop(KillOnDrop(server));
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("HTTP 403") && err(&o).contains("--access-log"),
        "{}",
        err(&o)
    );
    assert!(!unrecorded.join("sealed").join("records").exists());
    let acc = tmp.path().join("access");
    let o = stele(&[
        "init",
        acc.to_str().unwrap(),
        "--origin",
        "test.example/reads",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    // Never the served directory itself: it must stay as it is.
    let o = stele(&[
        "serve",
        l,
        "--listen",
        "127.0.0.1:0",
        "--read-only",
        "--access-log",
        l,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("is the served directory"), "{}", err(&o));
    let (server, url) = serve(
        &log,
        &[
            "--read-only",
            "--tokens",
            t,
            "--access-log",
            acc.to_str().unwrap(),
        ],
    );
    let _server = KillOnDrop(server);
    // A token without the reveal scope is refused, and nothing is kept.
    let bad = tmp.path().join("bad");
    let mut args = vec!["--with-openings", "--token-file", reader.to_str().unwrap()];
    args.extend(chunks);
    let o = mirror_once(&url, &bad, &key, &args);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("v1/sealed") && err(&o).contains("HTTP 403"),
        "{}",
        err(&o)
    );
    assert_eq!(state_size(&bad), 0);
    assert!(!bad.join("sealed").join("records").exists());
    // Without the flag nothing sealed is copied, even with the scope.
    let plain = tmp.path().join("plain");
    let o = mirror_once(
        &url,
        &plain,
        &key,
        &["--token-file", revealer.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(!plain.join("sealed").exists());
    // The flag is part of the mirror: not dropped or added silently later.
    let o = mirror_once(
        &url,
        &plain,
        &key,
        &[
            "--with-openings",
            "--token-file",
            revealer.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("without --with-openings"), "{}", err(&o));
    // With it: the records byte for byte, wraps, auditors; no value.
    let m = tmp.path().join("m");
    let mut args = vec![
        "--with-openings",
        "--token-file",
        revealer.to_str().unwrap(),
    ];
    args.extend(chunks);
    let o = mirror_once(&url, &m, &key, &args);
    assert!(o.status.success(), "{}", err(&o));
    assert!(state_size(&m) >= 605);
    assert_eq!(
        std::fs::read(m.join("sealed/records")).unwrap(),
        std::fs::read(log.join("sealed/records")).unwrap()
    );
    assert_eq!(
        std::fs::read(m.join("sealed/auditors")).unwrap(),
        std::fs::read(log.join("sealed/auditors")).unwrap()
    );
    assert_eq!(
        std::fs::read_dir(m.join("sealed/wraps")).unwrap().count(),
        4,
        "one wrap per subject"
    );
    assert!(!m.join("sealed/keys").exists() && !m.join("sealed/secret").exists());
    let mut all = Vec::new();
    files_under(&m, &mut all);
    for f in &all {
        let b = std::fs::read(f).unwrap();
        assert!(
            !b.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "{} holds a sealed value",
            f.display()
        );
        if f.starts_with(m.join("sealed")) {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
    }
    let want =
        serde_json::json!({"values": 4, "opened": 4, "sealed": 0, "forgotten": 0, "redacted": 0});
    assert_eq!(sealed_counts(&m, &key, &id), want);
    // The read-only server recorded the copy in the other log, the served
    // one untouched.
    let reads = std::fs::read_to_string(acc.join("entries.jsonl")).unwrap();
    assert!(
        reads
            .lines()
            .any(|l| l.contains(r#""target":"/v1/sealed""#) && l.contains(r#""actor":"mirror""#)),
        "{reads}"
    );
    assert!(
        !std::fs::read_to_string(log.join("entries.jsonl"))
            .unwrap()
            .contains("stele.access")
    );
    // A restore carries the openings on: the auditor opens every value.
    let keyf = log.join("key");
    let r1 = tmp.path().join("r1");
    let o = stele(&[
        "restore",
        m.to_str().unwrap(),
        r1.to_str().unwrap(),
        "--signing-key",
        keyf.to_str().unwrap(),
        "--seal",
        "/actor/email",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(sealed_counts(&r1, &key, &id), want);
    // The origin forgets bob; after one poll, bob's values no longer open
    // on the mirror: his key ID is on its forget list and his wraps are gone.
    let subject = format!(r#"{{"email":"bob-{MARKER}@example.com","id":"bob"}}"#);
    let o = stele(&["forget", l, "--subject", &subject, "--by", "dpo"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(stele(&["checkpoint", l]).status.success());
    let bob = std::fs::read_to_string(log.join("sealed/forgotten")).unwrap();
    let bob = bob.trim();
    assert_eq!(bob.len(), 32);
    let o = mirror_once(&url, &m, &key, &args);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        std::fs::read_to_string(m.join("sealed/forgotten"))
            .unwrap()
            .trim(),
        bob
    );
    let left: Vec<String> = std::fs::read_dir(m.join("sealed/wraps"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(!left.iter().any(|n| n.starts_with(bob)), "{left:?}");
    assert_eq!(
        sealed_counts(&m, &key, &id),
        serde_json::json!({"values": 4, "opened": 3, "sealed": 0, "forgotten": 1, "redacted": 0})
    );
    // A writer origin records the copy of openings like a revealed export.
    drop(_server);
    let ev = format!(r#"{{"action":"login","actor":{{"email":"eve-{MARKER}@example.com"}}}}"#);
    assert!(stele(&["append", l, "--event", &ev]).status.success());
    assert!(stele(&["checkpoint", l]).status.success());
    let (server, url) = serve(&log, &["--tokens", t]);
    let _server = KillOnDrop(server);
    let o = mirror_once(&url, &m, &key, &args);
    assert!(o.status.success(), "{}", err(&o));
    let text = std::fs::read_to_string(log.join("entries.jsonl")).unwrap();
    let rec = text
        .lines()
        .find(|l| l.contains(r#""target":"/v1/sealed""#))
        .expect("no access record of the copy");
    assert!(
        rec.contains(r#""actor":"mirror""#) && rec.contains(&recipient),
        "{rec}"
    );
    assert_eq!(
        std::fs::read(m.join("sealed/records")).unwrap(),
        std::fs::read(log.join("sealed/records")).unwrap()
    );
    // A mirror of the mirror copies them too (and the forget list).
    let (server, url) = serve(
        &m,
        &[
            "--read-only",
            "--tokens",
            t,
            "--access-log",
            acc.to_str().unwrap(),
        ],
    );
    let _server = KillOnDrop(server);
    let mm = tmp.path().join("mm");
    let o = mirror_once(&url, &mm, &key, &args);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        std::fs::read(mm.join("sealed/records")).unwrap(),
        std::fs::read(log.join("sealed/records")).unwrap()
    );
    assert_eq!(
        sealed_counts(&mm, &key, &id),
        serde_json::json!({"values": 5, "opened": 4, "sealed": 0, "forgotten": 1, "redacted": 0})
    );
}

#[test]
fn a_failed_write_fsync_or_rename_of_openings_stops_the_mirror_and_the_next_run_resumes() {
    // --with-openings keeps the mirror's crash rules: wraps and lists are
    // tmp + fdatasync + rename + dir fsync, records are fdatasync'ed before
    // the commit point names them; a failure at any of them stops the poll,
    // and the next run cuts what was not committed and ends with exactly
    // the origin's records.
    use stele_writer::fs::FileRole;
    use stele_writer::mirror::{Mirror, PollError};
    use stele_writer::testing::{FaultFs, FaultMode, Op};
    let tmp = tempfile::tempdir().unwrap();
    let (log, key, id, _) = sealed_origin(tmp.path(), "test.example/of", "/a");
    let l = log.to_str().unwrap();
    append_lines(l, &sealed_events(400, 50, 7));
    assert!(stele(&["checkpoint", l]).status.success());
    let reader = RevealReader::new(tmp.path());
    let (_server, url) = reader.serve(&log);
    let theirs = std::fs::read(log.join("sealed/records")).unwrap();
    let opts = |fs: Option<Arc<FaultFs>>| reader.options(&key, 4_000, fs);
    let cases = [
        (Op::Write, FileRole::Sealed, 1, FaultMode::Partial),
        (Op::Write, FileRole::Sealed, 3, FaultMode::Persisted),
        (Op::Write, FileRole::Sealed, 5, FaultMode::Partial),
        (Op::Sync, FileRole::Sealed, 2, FaultMode::NotPersisted),
        (Op::Sync, FileRole::Sealed, 6, FaultMode::NotPersisted),
        (Op::Rename, FileRole::Sealed, 1, FaultMode::NotPersisted),
        (Op::Rename, FileRole::Sealed, 2, FaultMode::Persisted),
    ];
    for (op, role, nth, mode) in cases {
        let m = tmp.path().join(format!("m-{op:?}-{nth}-{mode:?}"));
        let ffs = Arc::new(FaultFs::new());
        ffs.fail_nth(op, Some(role), nth, mode);
        let case = format!("{op:?} {role:?} #{nth} {mode:?}");
        let mut mir = Mirror::open(&m, &url, opts(Some(ffs.clone()))).unwrap();
        match mir.poll() {
            Err(PollError::Local(e)) => eprintln!("{case}: stopped: {e}"),
            other => panic!("{case}: expected a local error, got {other:?}"),
        }
        assert_eq!(ffs.fired().len(), 1, "{case}");
        drop(mir);
        let mut mir = Mirror::open(&m, &url, opts(None)).unwrap();
        let p = mir.poll().unwrap_or_else(|e| panic!("{case}: {e:?}"));
        // The genesis, the auditor's addition and 400 events.
        assert_eq!(p.size, 402, "{case}");
        drop(mir);
        assert_eq!(
            std::fs::read(m.join("sealed/records")).unwrap(),
            theirs,
            "{case}"
        );
        assert_eq!(
            sealed_counts(&m, &key, &id),
            serde_json::json!({"values": 8, "opened": 8, "sealed": 0, "forgotten": 0, "redacted": 0}),
            "{case}"
        );
    }
}

// The record lines of a sidecar's records file, as (entry, "opening" or
// "redacted").
fn record_kinds(records: &[u8]) -> Vec<(u64, String)> {
    String::from_utf8_lossy(records)
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            (w[2].parse().unwrap(), w[1].to_string())
        })
        .collect()
}

#[test]
fn a_redaction_at_the_origin_reaches_the_mirror_and_its_restores_even_across_a_crash() {
    // `stele redact` at the origin appends a stele.redact event (reserved:
    // only the log's writer appends one) and rewrites its records file. A
    // mirror that copied the opening applies the event when it verifies it
    // (the origin's rule, crate::sealed::redacted_line): its records stay
    // byte for byte the origin's, a restore from it carries no opening, and
    // a crash in its rewrite is finished when it opens again.
    use stele_writer::fs::FileRole;
    use stele_writer::mirror::{Mirror, PollError};
    use stele_writer::testing::{FaultFs, FaultMode, Op};
    let tmp = tempfile::tempdir().unwrap();
    let (log, key, id, _) = sealed_origin(tmp.path(), "test.example/redact", "/a");
    let l = log.to_str().unwrap();
    append_lines(l, &sealed_events(60, 10, 3));
    assert!(stele(&["checkpoint", l]).status.success());
    let theirs = || std::fs::read(log.join("sealed/records")).unwrap();
    let sealed: Vec<u64> = record_kinds(&theirs()).iter().map(|r| r.0).collect();
    assert_eq!(sealed.len(), 6);
    let reader = RevealReader::new(tmp.path());
    let serve_ro = || reader.serve(&log);
    let opts = |fs: Option<Arc<FaultFs>>| reader.options(&key, 2_000, fs);
    let redact = |entry: u64| {
        let o = stele(&[
            "redact",
            l,
            "--entry",
            &entry.to_string(),
            "--pointer",
            "/a",
            "--by",
            "dpo",
        ]);
        assert!(o.status.success(), "{}", err(&o));
        assert!(stele(&["checkpoint", l]).status.success());
    };
    let counts = |opened: u64, redacted: u64| serde_json::json!({"values": 6, "opened": opened, "sealed": 0, "forgotten": 0, "redacted": redacted});
    let m = tmp.path().join("m");
    let (server, url) = serve_ro();
    let mut mir = Mirror::open(&m, &url, opts(None)).unwrap();
    let _ = mir.poll().unwrap();
    drop(mir);
    drop(server);
    assert_eq!(std::fs::read(m.join("sealed/records")).unwrap(), theirs());
    assert_eq!(sealed_counts(&m, &key, &id), counts(6, 0));
    let first = theirs();

    // Redactions after the copy, each with a failed rename of the mirror's
    // rewrite: done (Persisted) or not (NotPersisted); the poll stops and
    // the next open finishes it.
    for (k, mode) in [(0, FaultMode::Persisted), (1, FaultMode::NotPersisted)] {
        redact(sealed[k]);
        let (server, url) = serve_ro();
        let ffs = Arc::new(FaultFs::new());
        ffs.fail_nth(Op::Rename, Some(FileRole::Sealed), 1, mode);
        let mut mir = Mirror::open(&m, &url, opts(Some(ffs.clone()))).unwrap();
        match mir.poll() {
            Err(PollError::Local(e)) => eprintln!("{mode:?}: stopped: {e}"),
            other => panic!("{mode:?}: expected a local error, got {other:?}"),
        }
        assert_eq!(ffs.fired().len(), 1, "{mode:?}");
        drop(mir);
        if k == 0 {
            // A restore of the mirror as the crash left it holds no
            // opening of the redacted entry.
            let r0 = tmp.path().join("r0");
            let o = stele(&[
                "restore",
                m.to_str().unwrap(),
                r0.to_str().unwrap(),
                "--signing-key",
                log.join("key").to_str().unwrap(),
                "--seal",
                "/a",
            ]);
            assert!(o.status.success(), "{}", err(&o));
            assert_eq!(std::fs::read(r0.join("sealed/records")).unwrap(), theirs());
            assert_eq!(sealed_counts(&r0, &key, &id), counts(5, 1));
        }
        let mut mir = Mirror::open(&m, &url, opts(None)).unwrap();
        let _ = mir.poll().unwrap();
        drop(mir);
        drop(server);
        assert_eq!(
            std::fs::read(m.join("sealed/records")).unwrap(),
            theirs(),
            "{mode:?}"
        );
    }
    assert_eq!(sealed_counts(&m, &key, &id), counts(4, 2));
    let o = stele(&["verify", m.to_str().unwrap(), "--key", &key.to_string()]);
    assert!(o.status.success(), "{}", err(&o));
    let r1 = tmp.path().join("r1");
    let o = stele(&[
        "restore",
        m.to_str().unwrap(),
        r1.to_str().unwrap(),
        "--signing-key",
        log.join("key").to_str().unwrap(),
        "--seal",
        "/a",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(std::fs::read(r1.join("sealed/records")).unwrap(), theirs());
    assert_eq!(sealed_counts(&r1, &key, &id), counts(4, 2));
    // A restore applies every redaction its verified entries log, whatever
    // the mirror's records hold (here: the openings put back, as a mirror
    // made before mirrors applied redactions holds them).
    let held = std::fs::read(m.join("sealed/records")).unwrap();
    let state_file = m.join("mirror-state.json");
    let state = std::fs::read_to_string(&state_file).unwrap();
    let mut st: Value = serde_json::from_str(&state).unwrap();
    st["sealed_len"] = first.len().into();
    std::fs::write(&state_file, st.to_string()).unwrap();
    std::fs::write(m.join("sealed/records"), &first).unwrap();
    let r2 = tmp.path().join("r2");
    let o = stele(&[
        "restore",
        m.to_str().unwrap(),
        r2.to_str().unwrap(),
        "--signing-key",
        log.join("key").to_str().unwrap(),
        "--seal",
        "/a",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(std::fs::read(r2.join("sealed/records")).unwrap(), theirs());
    assert_eq!(sealed_counts(&r2, &key, &id), counts(4, 2));
    std::fs::write(&state_file, state).unwrap();
    std::fs::write(m.join("sealed/records"), held).unwrap();

    // The origin logged a redaction but kept the opening (its rewrite
    // failed: "run redact again to finish"): a new mirror copying the entry
    // and the event in one poll, and the old one, delete it anyway.
    let before = theirs();
    redact(sealed[2]);
    let redacted = theirs();
    std::fs::write(log.join("sealed/records"), &before).unwrap();
    let (_server, url) = serve_ro();
    let m2 = tmp.path().join("m2");
    // m3 copies the entry and the event in one chunk.
    let m3 = tmp.path().join("m3");
    for dir in [&m2, &m3, &m] {
        let mut o = opts(None);
        if dir == &m3 {
            o.chunk_bytes = 1 << 20;
        }
        let mut mir = Mirror::open(dir, &url, o).unwrap();
        let _ = mir.poll().unwrap();
        drop(mir);
        assert_eq!(
            std::fs::read(dir.join("sealed/records")).unwrap(),
            redacted,
            "{}",
            dir.display()
        );
        assert_eq!(sealed_counts(dir, &key, &id), counts(3, 3));
    }
}

#[test]
fn a_mirror_follows_the_origins_auditors_wraps_of_removed_ones_go_added_ones_get_every_key() {
    // `stele auditor add` at the origin wraps every existing key for the
    // new auditor, `stele auditor remove` destroys the removed one's wraps:
    // the next poll of a mirror does both (the new wraps of keys it copied
    // long ago come in pages, GET /v1/sealed?wraps=), and a read-only
    // mirror then serves only the origin's auditors' wraps.
    let tmp = tempfile::tempdir().unwrap();
    let (log, key, id, a1) = sealed_origin(tmp.path(), "test.example/auditors", "/a");
    let l = log.to_str().unwrap();
    let evs: String = (0..40)
        .map(|i| {
            if i % 8 == 1 {
                format!("{{\"a\":\"v{i}\",\"actor\":\"s{i}\"}}\n")
            } else {
                format!("{{\"n\":{i}}}\n")
            }
        })
        .collect();
    append_lines(l, &evs);
    assert!(stele(&["checkpoint", l]).status.success());
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/sealed");
    let id2 = tmp.path().join("other.key");
    let _ = std::fs::copy(vectors.join("other.key"), &id2).unwrap();
    std::fs::set_permissions(&id2, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let a2 = stele_seal::Identity::parse_file(&std::fs::read_to_string(&id2).unwrap()).unwrap()[0]
        .recipient();
    let reader = RevealReader::new(tmp.path());
    let args = [
        "--with-openings",
        "--token-file",
        reader.token_file.to_str().unwrap(),
        "--chunk-bytes",
        "2000",
    ];
    let wraps_of = |dir: &Path, r: &str| {
        std::fs::read_dir(dir.join("sealed/wraps"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(r)
            })
            .count()
    };
    let m = tmp.path().join("m");
    let (server, url) = reader.serve(&log);
    let o = mirror_once(&url, &m, &key, &args);
    assert!(o.status.success(), "{}", err(&o));
    drop(server);
    assert_eq!((wraps_of(&m, &a1), wraps_of(&m, &a2)), (5, 0));

    let o = stele(&["auditor", "add", l, &a2]);
    assert!(o.status.success(), "{}", err(&o));
    let o = stele(&["auditor", "remove", l, &a1]);
    assert!(o.status.success(), "{}", err(&o));
    let (server, url) = reader.serve(&log);
    let o = mirror_once(&url, &m, &key, &args);
    drop(server);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!((wraps_of(&m, &a1), wraps_of(&m, &a2)), (0, 5));
    assert_eq!(
        std::fs::read(m.join("sealed/auditors")).unwrap(),
        std::fs::read(log.join("sealed/auditors")).unwrap()
    );
    let want = |opened: u64| serde_json::json!({"values": 5, "opened": opened, "sealed": 5 - opened, "forgotten": 0, "redacted": 0});
    assert_eq!(sealed_counts(&m, &key, &id2), want(5));
    assert_eq!(sealed_counts(&m, &key, &id), want(0));
    // A mirror of the mirror (read-only) gets the same.
    let (_server2, url2) = reader.serve(&m);
    let mm = tmp.path().join("mm");
    let o = mirror_once(&url2, &mm, &key, &args);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!((wraps_of(&mm, &a1), wraps_of(&mm, &a2)), (0, 5));
    assert_eq!(sealed_counts(&mm, &key, &id2), want(5));
}
