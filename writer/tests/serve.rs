//! `stele serve` end to end: the real binary on an ephemeral 127.0.0.1
//! port, a tiny blocking HTTP client, logs in temporary directories. Every
//! server is killed when its test ends (Drop), so none outlives the test.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stele_core::checkpoint::SignedCheckpoint;
use stele_core::hash::leaf_hash;
use stele_core::merkle::{HashReader, verify_consistency, verify_inclusion};
use stele_core::tiles::{
    TILE_HEIGHT, TileSet, inclusion_proof_from_tiles, parse_entry_bundle, tiles_for_inclusion,
};
use stele_core::{Hash, Verdict, VerifierKey};
use stele_writer::{View, key, verify_dir};

const STELE: &str = env!("CARGO_BIN_EXE_stele");

struct Fixture {
    _tmp: tempfile::TempDir,
    log: PathBuf,
    tokens: PathBuf,
    token: String,
    key: VerifierKey,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let out = Command::new(STELE)
        .args([
            "init",
            log.to_str().unwrap(),
            "--origin",
            "test.example/serve",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = VerifierKey::parse(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    let tokens = tmp.path().join("tokens");
    let out = Command::new(STELE)
        .args(["token", "add", tokens.to_str().unwrap(), "alice"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("stele_"));
    Fixture {
        _tmp: tmp,
        log,
        tokens,
        token,
        key,
    }
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(f: &Fixture, extra: &[&str]) -> Server {
        let mut child = Command::new(STELE)
            .arg("serve")
            .arg(&f.log)
            .args(["--listen", "127.0.0.1:0", "--tokens"])
            .arg(&f.tokens)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("stele serve: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, addr }
    }

    fn req(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Resp {
        http(&self.addr, method, path, token, body)
    }

    fn post(&self, path: &str, token: &str, body: &str) -> Resp {
        self.req("POST", path, Some(token), body.as_bytes())
    }

    fn get(&self, path: &str, token: &str) -> Resp {
        self.req("GET", path, Some(token), b"")
    }

    // SIGTERM and wait: the graceful path.
    fn terminate(mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Resp {
    try_http(addr, method, path, token, body).unwrap()
}

fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<Resp> {
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
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut rest = &raw[split + 4..];
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        let mut out = Vec::new();
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            rest = &rest[nl + 2..];
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n + 2..];
        }
        out
    } else {
        rest.to_vec()
    };
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn size_on_disk(log: &Path) -> u64 {
    View::open_read_only(log).unwrap().size()
}

fn last_entry(log: &Path) -> Value {
    let v = View::open_read_only(log).unwrap();
    serde_json::from_slice(&v.entry(v.size() - 1).unwrap()).unwrap()
}

#[test]
fn writes_need_a_valid_token_and_nothing_is_written_without_one() {
    let f = fixture();
    let s = Server::start(&f, &[]);
    let ev = br#"{"actor":"mallory","action":"write"}"#;
    let r = s.req("POST", "/v1/entries", None, ev);
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"stele\"");
    assert!(r.text().contains("missing Authorization"), "{}", r.text());
    let r = s.req("POST", "/v1/entries", Some("stele_wrong"), ev);
    assert_eq!(r.status, 401);
    assert!(r.text().contains("unknown bearer token"));
    let r = s.req("POST", "/v1/k8s-audit", Some(&format!("{}x", f.token)), ev);
    assert_eq!(r.status, 401);
    // Reads need a token too (the default with --tokens).
    assert_eq!(s.req("GET", "/checkpoint", None, b"").status, 401);
    assert_eq!(
        s.req("GET", "/v1/entries?from=0&to=1", None, b"").status,
        401
    );
    assert_eq!(s.req("GET", "/healthz", None, b"").status, 200);
    drop(s);
    assert_eq!(size_on_disk(&f.log), 1, "a refused request wrote something");
}

#[test]
fn a_batch_is_all_or_nothing_and_errors_name_the_item() {
    let f = fixture();
    let s = Server::start(&f, &["--public-reads"]);
    let t = &f.token;
    let cases: [(&str, u16, usize, &str); 5] = [
        (
            r#"[{"a":1},{"b":2},{"type":"stele.access"}]"#,
            400,
            2,
            "is reserved",
        ),
        (r#"[{"a":1},{"b":2,"b":3}]"#, 400, 1, "duplicate"),
        ("{\"a\":1}\n{\"b\":2}\n{\"c\":\n", 400, 2, "item 2 (line 3)"),
        (r#"[{"a":1},"text"]"#, 400, 1, "not a JSON object"),
        (r#"[{"a":1},{"b":2}"#, 400, 2, "item 2"),
    ];
    for (body, status, item, needle) in cases {
        let r = s.post("/v1/entries", t, body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let j = r.json();
        assert_eq!(j["item"], json!(item), "{body}: {j}");
        let msg = j["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
        assert!(msg.ends_with("nothing was written"), "{msg}");
    }
    // Interleaved with good requests from other threads, a bad batch still
    // writes nothing and fails alone.
    let addr = s.addr.clone();
    let good: Vec<_> = (0..4)
        .map(|i| {
            let (addr, t) = (addr.clone(), t.clone());
            std::thread::spawn(move || {
                let body = format!(r#"[{{"n":{i}}},{{"n":{i}}}]"#);
                http(&addr, "POST", "/v1/entries", Some(&t), body.as_bytes())
            })
        })
        .collect();
    let bad = s.post("/v1/entries", t, r#"[{"ok":1},{"type":"stele.genesis"}]"#);
    assert_eq!(bad.status, 400);
    let mut seqs = Vec::new();
    for g in good {
        let r = g.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let rs = r.json();
        assert_eq!(rs.as_array().unwrap().len(), 2);
        let a = rs[0]["seq"].as_u64().unwrap();
        assert_eq!(rs[1]["seq"].as_u64().unwrap(), a + 1, "a batch was split");
        seqs.extend([a, a + 1]);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=8).collect::<Vec<u64>>());
    drop(s);
    assert_eq!(
        size_on_disk(&f.log),
        9,
        "a refused item or batch was written"
    );
}

#[test]
fn receipts_match_the_log_in_all_three_body_forms() {
    let f = fixture();
    let s = Server::start(&f, &[]);
    let bodies = [
        r#"{"actor":"alice","action":"login"}"#.to_string(),
        "{\n  \"pretty\": true\n}\n".to_string(),
        r#"[{"i":0},{"i":1},{"i":2}]"#.to_string(),
        "{\"j\":0}\r\n\r\n{\"j\":1}\n".to_string(),
    ];
    let mut receipts = Vec::new();
    for b in &bodies {
        let r = s.post("/v1/entries", &f.token, b);
        assert_eq!(r.status, 200, "{}", r.text());
        receipts.extend(r.json().as_array().unwrap().clone());
    }
    assert_eq!(receipts.len(), 7);
    drop(s);
    let view = View::open_read_only(&f.log).unwrap();
    for (i, r) in receipts.iter().enumerate() {
        let seq = r["seq"].as_u64().unwrap();
        assert_eq!(seq, i as u64 + 1);
        let h = Hash::from_base64(r["leaf_hash"].as_str().unwrap()).unwrap();
        assert_eq!(view.leaf_hash(seq).unwrap(), h);
        assert_eq!(leaf_hash(&view.entry(seq).unwrap()), h);
    }
}

#[test]
fn oversize_bodies_and_events_are_refused() {
    let f = fixture();
    let s = Server::start(&f, &["--max-body", "100000"]);
    let big = format!(r#"{{"p":"{}"}}"#, "x".repeat(100_001));
    let r = s.post("/v1/entries", &f.token, &big);
    assert_eq!(r.status, 413);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("limit of 100000"),
        "{}",
        r.text()
    );
    // An event over the entry limit, inside a body under the body limit.
    let body = format!(r#"[{{"ok":1}},{{"p":"{}"}}]"#, "y".repeat(65_500));
    let r = s.post("/v1/entries", &f.token, &body);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["item"], 1);
    assert!(
        r.text().contains("more than the limit of 65535"),
        "{}",
        r.text()
    );
    // Just under the entry limit is fine.
    let body = format!(r#"{{"p":"{}"}}"#, "z".repeat(65_000));
    assert_eq!(s.post("/v1/entries", &f.token, &body).status, 200);
    drop(s);
    assert_eq!(size_on_disk(&f.log), 2);
}

const EVENT_LIST: &str = r#"{
  "kind": "EventList",
  "apiVersion": "audit.k8s.io/v1",
  "metadata": {},
  "items": [
    {
      "level": "Metadata",
      "auditID": "1f1d6c3e-6f2a-4c2b-9d1e-0c1b2a3d4e5f",
      "stage": "ResponseComplete",
      "requestURI": "/api/v1/namespaces/default/pods/web-0",
      "verb": "get",
      "user": {"username": "alice@example.com", "groups": ["dev", "system:authenticated"]},
      "sourceIPs": ["10.0.0.7"],
      "userAgent": "kubectl/v1.31.0 (linux/amd64) kubernetes/abc1234",
      "objectRef": {"resource": "pods", "namespace": "default", "name": "web-0", "apiVersion": "v1"},
      "responseStatus": {"metadata": {}, "code": 200},
      "requestReceivedTimestamp": "2026-11-26T12:00:00.000000Z",
      "stageTimestamp": "2026-11-26T12:00:00.004000Z",
      "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
    },
    {
      "level": "RequestResponse",
      "auditID": "2a2d6c3e-6f2a-4c2b-9d1e-0c1b2a3d4e5f",
      "stage": "ResponseComplete",
      "requestURI": "/api/v1/namespaces/kube-system/secrets/admin-token",
      "verb": "delete",
      "user": {"username": "system:serviceaccount:ci:deployer", "uid": "u-1"},
      "objectRef": {"resource": "secrets", "namespace": "kube-system", "name": "admin-token", "apiVersion": "v1"},
      "responseStatus": {"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403},
      "requestReceivedTimestamp": "2026-11-26T12:00:01.000000Z",
      "stageTimestamp": "2026-11-26T12:00:01.001000Z"
    },
    {
      "level": "Metadata",
      "auditID": "3b3d6c3e-6f2a-4c2b-9d1e-0c1b2a3d4e5f",
      "stage": "ResponseComplete",
      "requestURI": "/api/v1/nodes/node-1",
      "verb": "patch",
      "user": {"username": "system:node:node-1"},
      "objectRef": {"resource": "nodes", "name": "node-1", "apiVersion": "v1"},
      "responseStatus": {"metadata": {}, "code": 500},
      "requestReceivedTimestamp": "2026-11-26T12:00:02.000000Z",
      "stageTimestamp": "2026-11-26T12:00:02.100000Z"
    }
  ]
}"#;

#[test]
fn the_k8s_webhook_appends_one_mapped_entry_per_audit_event() {
    let f = fixture();
    let s = Server::start(&f, &[]);
    let r = s.post("/v1/k8s-audit", &f.token, EVENT_LIST);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().as_array().unwrap().len(), 3);
    let r = s.get("/v1/entries?from=1&to=4", &f.token);
    assert_eq!(r.status, 200);
    let events: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone())
        .collect();
    let want = [
        (
            "alice@example.com",
            "get",
            "namespaces/default/pods/web-0",
            "success",
        ),
        (
            "system:serviceaccount:ci:deployer",
            "delete",
            "namespaces/kube-system/secrets/admin-token",
            "denied",
        ),
        ("system:node:node-1", "patch", "nodes/node-1", "failure"),
    ];
    let list: Value = serde_json::from_str(EVENT_LIST).unwrap();
    for (i, (ev, (actor, action, target, outcome))) in events.iter().zip(want).enumerate() {
        assert_eq!(ev["type"], "k8s.audit");
        assert_eq!(ev["actor"], actor);
        assert_eq!(ev["action"], action);
        assert_eq!(ev["target"], target);
        assert_eq!(ev["outcome"], outcome);
        assert_eq!(ev["k8s"], list["items"][i], "the audit event is kept whole");
    }
    // A wrong kind or a non-object item writes nothing.
    let r = s.post(
        "/v1/k8s-audit",
        &f.token,
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1"}"#,
    );
    assert_eq!(r.status, 400);
    let r = s.post(
        "/v1/k8s-audit",
        &f.token,
        r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"verb":"get"},[]]}"#,
    );
    assert_eq!((r.status, r.json()["item"].clone()), (400, json!(1)));
    drop(s);
    // 3 audit events and 1 stele.access for the read.
    assert_eq!(size_on_disk(&f.log), 5);
}

fn fetch_checkpoint(s: &Server, f: &Fixture) -> stele_core::Checkpoint {
    let r = s.get("/checkpoint", &f.token);
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
    let sc = SignedCheckpoint::parse(&r.body).unwrap();
    let v = sc.verify(std::slice::from_ref(&f.key));
    assert!(
        !v.verified_by.is_empty() && v.bad.is_empty(),
        "checkpoint signature"
    );
    sc.checkpoint
}

#[test]
fn tiles_match_the_stored_tree_and_proofs_verify_with_core() {
    let f = fixture();
    let s = Server::start(&f, &["--checkpoint-every", "100000"]);
    // 700 entries: two full level-0 tiles, a partial one, a partial level-1 tile.
    for chunk in 0..7 {
        let body: String = (0..100)
            .map(|i| format!("{{\"n\":{}}}\n", chunk * 100 + i))
            .collect();
        assert_eq!(s.post("/v1/entries", &f.token, &body).status, 200);
    }
    // A proof without size signs a checkpoint that covers the entry.
    let r = s.get("/v1/proof/inclusion?index=650", &f.token);
    assert_eq!(r.status, 200, "{}", r.text());
    let cp = fetch_checkpoint(&s, &f);
    assert_eq!(cp.size, 701);
    let view = View::open_read_only(&f.log).unwrap();

    // Every tile of the tree, byte for byte the stored hashes.
    let mut checked = 0;
    for level in 0..3u8 {
        for index in 0..4u64 {
            let Some(t) = stele_core::tiles::tile_in_tree(level, index, cp.size) else {
                continue;
            };
            let r = s.get(&format!("/{}", t.path()), &f.token);
            assert_eq!(r.status, 200, "{}", t.path());
            assert_eq!(r.body.len(), t.byte_len());
            for i in 0..u64::from(t.width) {
                let h = view
                    .read_hash(u32::from(level) * TILE_HEIGHT, t.first() + i)
                    .unwrap();
                assert_eq!(
                    &r.body[i as usize * 32..][..32],
                    &h.0,
                    "{} hash {i}",
                    t.path()
                );
            }
            checked += 1;
        }
    }
    assert_eq!(
        checked, 4,
        "tile/0/000, tile/0/001, tile/0/002.p/189, tile/1/000.p/2"
    );
    // A tile beyond the tree, or a wrong width, is 404.
    assert_eq!(s.get("/tile/0/002", &f.token).status, 404);
    assert_eq!(s.get("/tile/0/002.p/190", &f.token).status, 404);
    assert_eq!(s.get("/tile/0/2", &f.token).status, 404);

    // Inclusion proofs rebuilt from tiles, leaves from entry bundles.
    for index in [0u64, 1, 255, 256, 511, 600, 700] {
        let mut set = TileSet::new(cp.size);
        for t in tiles_for_inclusion(index, cp.size).unwrap() {
            let r = s.get(&format!("/{}", t.path()), &f.token);
            assert_eq!(r.status, 200, "{}", t.path());
            set.insert(t, &r.body).unwrap();
        }
        let proof = inclusion_proof_from_tiles(&set, index, cp.size).unwrap();
        let bundle_tile = stele_core::tiles::tile_in_tree(0, index / 256, cp.size).unwrap();
        let r = s.get(&format!("/{}", bundle_tile.entries_path()), &f.token);
        assert_eq!(r.status, 200);
        let entries = parse_entry_bundle(&r.body).unwrap();
        assert_eq!(entries.len(), usize::from(bundle_tile.width));
        let line = entries[(index % 256) as usize];
        assert_eq!(line, view.entry(index).unwrap().as_slice());
        verify_inclusion(&leaf_hash(line), index, cp.size, &proof, &cp.root).unwrap();
        // The HTTP proof says the same and verifies too.
        let j = s
            .get(
                &format!("/v1/proof/inclusion?index={index}&size={}", cp.size),
                &f.token,
            )
            .json();
        let http_proof: Vec<Hash> = j["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(http_proof, proof);
        let leaf = Hash::from_base64(j["leaf_hash"].as_str().unwrap()).unwrap();
        verify_inclusion(&leaf, index, cp.size, &http_proof, &cp.root).unwrap();
        // A flipped proof hash is caught.
        let mut bad = proof.clone();
        bad[0].0[0] ^= 1;
        assert!(verify_inclusion(&leaf, index, cp.size, &bad, &cp.root).is_err());
    }
    for old in [1u64, 100, 256, 257, 700] {
        let j = s
            .get(
                &format!("/v1/proof/consistency?from={old}&to={}", cp.size),
                &f.token,
            )
            .json();
        let proof: Vec<Hash> = j["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
            .collect();
        let old_root = Hash::from_base64(j["old_root"].as_str().unwrap()).unwrap();
        assert_eq!(old_root, view.root(old).unwrap());
        verify_consistency(old, cp.size, &old_root, &cp.root, &proof).unwrap();
    }
    let inclusion = s
        .get("/v1/proof/inclusion?index=300&size=701", &f.token)
        .text();
    let consistency = s
        .get("/v1/proof/consistency?from=9&to=701", &f.token)
        .text();
    assert_eq!(
        s.get("/v1/proof/inclusion?index=701&size=701", &f.token)
            .status,
        400
    );
    assert_eq!(s.get("/v1/proof/inclusion?index=x", &f.token).status, 400);
    assert_eq!(s.terminate().code(), Some(0));
    // Byte for byte what `stele prove --json` prints.
    let cli = |args: &[&str]| {
        let out = Command::new(STELE).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let dir = f.log.to_str().unwrap();
    assert_eq!(
        inclusion,
        cli(&[
            "prove",
            "inclusion",
            dir,
            "--index",
            "300",
            "--size",
            "701",
            "--json"
        ])
    );
    assert_eq!(
        consistency,
        cli(&[
            "prove",
            "consistency",
            dir,
            "--from",
            "9",
            "--to",
            "701",
            "--json"
        ])
    );
}

#[test]
fn reads_of_entries_and_exports_are_recorded_before_they_are_sent() {
    let f = fixture();
    let s = Server::start(&f, &["--public-reads"]);
    assert_eq!(
        s.post("/v1/entries", &f.token, r#"[{"a":1},{"a":2},{"a":3}]"#)
            .status,
        200
    );
    // With a token: the token's name is the actor.
    let r = s.get("/v1/entries?from=1&to=3", &f.token);
    assert_eq!(r.status, 200);
    assert_eq!(r.text().lines().count(), 2);
    assert_eq!(
        (
            r.headers["stele-from"].as_str(),
            r.headers["stele-to"].as_str()
        ),
        ("1", "3")
    );
    let a = last_entry(&f.log);
    assert_eq!(a["seq"], 4);
    assert_eq!(a["event"]["type"], "stele.access");
    assert_eq!(a["event"]["actor"], "alice");
    assert_eq!(a["event"]["target"], "/v1/entries");
    assert_eq!(a["event"]["read"]["entries"], json!([1, 3]));
    // Without a token (public reads): the remote address is the actor.
    let r = s.req("GET", "/v1/export?entries=2,1", None, b"");
    assert_eq!(r.status, 200);
    assert!(
        r.text().starts_with("stele-export v1 entries\n"),
        "{}",
        r.text()
    );
    let a = last_entry(&f.log);
    assert_eq!(a["event"]["actor"], "127.0.0.1");
    assert_eq!(a["event"]["read"]["export"], "entries");
    assert_eq!(a["event"]["read"]["entries"], json!([1, 2]));
    // The export verifies with core.
    let report =
        stele_core::verify::verify_bytes(stele_core::Options::new(vec![f.key.clone()]), &r.body);
    assert_eq!(report.verdict, Verdict::Verified, "{report:?}");
    // A whole-log export includes the access entry recorded for it.
    let r = s.req("GET", "/v1/export", None, b"");
    let report =
        stele_core::verify::verify_bytes(stele_core::Options::new(vec![f.key.clone()]), &r.body);
    assert_eq!(report.verdict, Verdict::Verified, "{report:?}");
    assert_eq!(report.entries, 7);
    // Tiles of hashes are not access-logged; entry bundles are.
    let before = size_on_disk(&f.log);
    assert_eq!(s.req("GET", "/tile/0/000.p/7", None, b"").status, 200);
    assert_eq!(size_on_disk(&f.log), before);
    assert_eq!(s.req("GET", "/tile/entries/000.p/7", None, b"").status, 200);
    assert_eq!(
        last_entry(&f.log)["event"]["read"]["bundle"],
        "tile/entries/000.p/7"
    );
    // A bad range is refused before anything is recorded.
    let before = size_on_disk(&f.log);
    assert_eq!(
        s.req("GET", "/v1/entries?from=5&to=2", None, b"").status,
        400
    );
    assert_eq!(size_on_disk(&f.log), before);
    let m = s.req("GET", "/metrics", None, b"").text();
    assert!(m.contains("stele_access_events_total 4"), "{m}");
    assert!(
        m.contains("stele_http_responses_total{code=\"400\"} 1"),
        "{m}"
    );
    assert!(m.contains("stele_fsync_seconds_count "), "{m}");
}

#[test]
fn sigterm_finishes_and_signs_a_final_checkpoint() {
    let f = fixture();
    let s = Server::start(
        &f,
        &[
            "--checkpoint-every",
            "1000000",
            "--checkpoint-interval",
            "1h",
        ],
    );
    for i in 0..5 {
        assert_eq!(
            s.post("/v1/entries", &f.token, &format!("{{\"i\":{i}}}"))
                .status,
            200
        );
    }
    assert_eq!(s.terminate().code(), Some(0));
    let v = View::open_read_only(&f.log).unwrap();
    assert_eq!(v.size(), 6);
    assert_eq!(v.latest_checkpoint().unwrap().checkpoint.size, 6);
}

#[test]
fn every_acknowledged_entry_survives_sigkill_mid_load() {
    let f = fixture();
    let s = Server::start(&f, &["--checkpoint-every", "50"]);
    let acked: Arc<Mutex<Vec<(u64, Hash)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (addr, token, acked, stop) =
                (s.addr.clone(), f.token.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // Odd clients send batches, even ones single events.
                    let body = if c % 2 == 1 {
                        format!(r#"[{{"c":{c},"n":{n}}},{{"c":{c},"n":{n},"second":true}}]"#)
                    } else {
                        format!(r#"{{"c":{c},"n":{n}}}"#)
                    };
                    match try_http(&addr, "POST", "/v1/entries", Some(&token), body.as_bytes()) {
                        Ok(r) if r.status == 200 => {
                            let rs: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
                            let mut a = acked.lock().unwrap();
                            for r in rs {
                                let h =
                                    Hash::from_base64(r["leaf_hash"].as_str().unwrap()).unwrap();
                                a.push((r["seq"].as_u64().unwrap(), h));
                            }
                        }
                        // A torn connection or a refused one: the server is gone.
                        _ => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let mut s = s;
    s.child.kill().unwrap(); // SIGKILL, mid-load
    s.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "too little load before the kill: {}",
        acked.len()
    );
    // Restart: the server opens the log (recovery cuts a torn tail).
    let s2 = Server::start(&f, &[]);
    assert_eq!(s2.req("GET", "/healthz", None, b"").status, 200);
    drop(s2);
    let view = View::open_read_only(&f.log).unwrap();
    eprintln!(
        "{} receipts before SIGKILL; {} entries after restart",
        acked.len(),
        view.size()
    );
    for (seq, h) in &acked {
        assert_eq!(
            view.leaf_hash(*seq).ok().as_ref(),
            Some(h),
            "acknowledged entry {seq} is lost"
        );
    }
    let report = verify_dir(
        &f.log,
        stele_core::Options::new(vec![f.key.clone()]),
        &mut |_, _| {},
    )
    .unwrap();
    // Entries acknowledged after the last checkpoint are the live log's
    // unsigned tail: partial, with no failure.
    assert!(
        matches!(report.verdict, Verdict::Verified | Verdict::Partial)
            && report.failures.is_empty(),
        "{:?}",
        report.failures
    );
    let k = key::load(&f.log.join("key")).unwrap().verifier();
    assert_eq!(k.to_string(), f.key.to_string());
}
