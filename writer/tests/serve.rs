//! `stele serve` end to end: the real binary on an ephemeral 127.0.0.1
//! port, a tiny blocking HTTP client, logs in temporary directories. Every
//! server is killed when its test ends (Drop), so none outlives the test.

mod common;
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
    let out = common::bounded_output(
        Command::new(STELE).args([
            "init",
            log.to_str().unwrap(),
            "--origin",
            "test.example/serve",
        ]),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = VerifierKey::parse(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    let tokens = tmp.path().join("tokens");
    let out = common::bounded_output(
        Command::new(STELE).args(["token", "add", tokens.to_str().unwrap(), "alice"]),
        None,
    );
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
    fn start(f: &Fixture, extra: &[&str]) -> Self {
        let (child, url) = common::spawn_serve(
            Command::new(STELE)
                .arg("serve")
                .arg(&f.log)
                .args(["--listen", "127.0.0.1:0", "--tokens"])
                .arg(&f.tokens)
                .args(extra)
                .stderr(Stdio::null()),
        );
        let addr = url.trim_start_matches("http://").to_string();
        Self { child, addr }
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

    fn req_h(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        try_http_h(&self.addr, method, path, headers, body).unwrap()
    }

    // Peak resident memory of the server process so far (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
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
    // The "error" message of a JSON error answer.
    fn err(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_string()
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
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    try_http_h(addr, method, path, &headers, body)
}

fn try_http_h(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw)?;
    let (status, headers, body) = common::parse_response(&raw)?;
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
    // The token that wrote them is recorded in each (server-added member).
    for ev in &events {
        assert_eq!(ev["stele"], json!({"token": "alice"}));
    }
    // A wrong kind writes nothing.
    let r = s.post(
        "/v1/k8s-audit",
        &f.token,
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1"}"#,
    );
    assert_eq!(r.status, 400);
    // A non-object item does not cost the batch: it is kept reduced.
    let r = s.post(
        "/v1/k8s-audit",
        &f.token,
        r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"verb":"get"},[]]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(last_entry(&f.log)["event"]["truncated"], json!(["(event)"]));
    drop(s);
    // 3 + 2 audit events and 1 stele.access for the read.
    assert_eq!(size_on_disk(&f.log), 7);
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
        let out = common::bounded_output(Command::new(STELE).args(args), None);
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
    assert_eq!(a["event"]["via"], "http");
    assert_eq!(a["event"]["http"]["token"], "alice");
    assert_eq!(
        a["event"]["read"],
        json!({"entries": [1, 3], "tree_size": 4})
    );
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
    assert_eq!(a["event"]["read"]["kind"], "entries");
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
    // ... and ends with a checkpoint covering every entry in it (issue 18).
    assert_eq!(report.tree_size, Some(7), "{report:?}");
    // Tiles of hashes are not access-logged; entry bundles are.
    let before = size_on_disk(&f.log);
    assert_eq!(s.req("GET", "/tile/0/000.p/7", None, b"").status, 200);
    assert_eq!(size_on_disk(&f.log), before);
    assert_eq!(s.req("GET", "/tile/entries/000.p/7", None, b"").status, 200);
    let a = last_entry(&f.log);
    assert_eq!(a["event"]["target"], "/tile/entries");
    assert_eq!(
        a["event"]["read"],
        json!({"kind": "bundles", "entries": [0, 7], "seconds": 60, "tree_size": 7})
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
    let _ = s.child.wait().unwrap();
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

// ---- issue 16: hostile input over loopback HTTP ----

fn add_token(f: &Fixture, name: &str, scope: &str) -> String {
    let out = common::bounded_output(
        Command::new(STELE).args([
            "token",
            "add",
            f.tokens.to_str().unwrap(),
            name,
            "--scope",
            scope,
        ]),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn checkpoints_on_disk(log: &Path) -> usize {
    View::open_read_only(log).unwrap().checkpoints().len()
}

fn entries_text(log: &Path) -> String {
    std::fs::read_to_string(log.join("entries.jsonl")).unwrap()
}

#[test]
fn anonymous_readers_cannot_write_their_text_into_access_records() {
    // Finding 1: with public reads, every query parameter went into the log.
    let f = fixture();
    let s = Server::start(&f, &["--public-reads"]);
    assert_eq!(
        s.post("/v1/entries", &f.token, r#"[{"a":1},{"a":2}]"#)
            .status,
        200
    );
    let before = size_on_disk(&f.log);
    for (q, want) in [
        (
            "from=0&to=1&note=ATTACKER_TEXT",
            "unknown query parameter \"note\"",
        ),
        (
            "from=0&to=1&token=stele_SECRET_IN_QUERY",
            "unknown query parameter \"token\"",
        ),
        ("from=0&from=1", "query parameter \"from\" is given twice"),
        ("from=%2B1", "\"+1\" is not a non-negative integer"),
    ] {
        let r = s.req("GET", &format!("/v1/entries?{q}"), None, b"");
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert!(r.err().contains(want), "{q}: {}", r.text());
    }
    let r = s.req("GET", "/v1/export?fromm=0&too=5", None, b"");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.err().contains("\"fromm\""), "{}", r.text());
    let r = s.req("GET", "/v1/proof/inclusion?index=+1", None, b"");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(size_on_disk(&f.log), before, "a refused read was recorded");
    // Values are percent-decoded; the record holds parsed numbers only.
    let r = s.req("GET", "/v1/entries?from=%31&to=2", None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let a = last_entry(&f.log);
    assert_eq!(
        a["event"]["read"],
        json!({"entries": [1, 2], "tree_size": before})
    );
    let text = entries_text(&f.log);
    assert!(!text.contains("ATTACKER_TEXT") && !text.contains("SECRET_IN_QUERY"));
    assert!(!text.contains("\"query\""));
}

#[test]
fn access_records_are_rate_limited_per_reader() {
    let f = fixture();
    let s = Server::start(&f, &["--public-reads", "--access-rate", "5"]);
    let before = size_on_disk(&f.log);
    let codes: Vec<u16> = (0..8)
        .map(|_| s.req("GET", "/v1/entries?from=0&to=1", None, b"").status)
        .collect();
    // A burst of 5, then 429 (the bucket refills at 5 a minute).
    assert_eq!(&codes[..5], &[200; 5], "{codes:?}");
    assert_eq!(&codes[5..], &[429; 3], "{codes:?}");
    let r = s.req("GET", "/v1/entries?from=0&to=1", None, b"");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(size_on_disk(&f.log), before + 5);
    // Another reader (a token) has its own bucket.
    assert_eq!(s.get("/v1/entries?from=0&to=1", &f.token).status, 200);
}

// The stele.access records of bundle reads in the log: (actor, from, to).
fn bundle_records(log: &Path) -> Vec<(String, u64, u64)> {
    entries_text(log)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"]["read"]["kind"] == "bundles")
        .map(|e| {
            let r = &e["event"]["read"]["entries"];
            (
                e["event"]["actor"].as_str().unwrap().to_string(),
                r[0].as_u64().unwrap(),
                r[1].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_sequential_read_of_bundles_shares_few_access_records_and_each_read_is_covered() {
    // A mirror's catch-up once wrote one record (and one fdatasync) per
    // bundle, 600 a minute at most: a 1M-entry log took 6.5 minutes.
    let f = fixture();
    let s = Server::start(&f, &["--public-reads", "--access-rate", "12"]);
    fill(&s, &f.token, 9000, 0);
    let size = size_on_disk(&f.log);
    let bundles = size.div_ceil(256);
    // Four readers at once, in order, as a mirror's parallel fetches do.
    let read = |k: u64, token: Option<&str>| {
        let w = (size - k * 256).min(256);
        let path = if w == 256 {
            format!("/tile/entries/{k:03}")
        } else {
            format!("/tile/entries/{k:03}.p/{w}")
        };
        let r = s.req("GET", &path, token, b"");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let got = parse_entry_bundle(&r.body).unwrap();
        assert_eq!(got.len() as u64, w, "{path}");
    };
    std::thread::scope(|sc| {
        for lane in 0..4 {
            let read = &read;
            let _ = sc.spawn(move || {
                for k in (lane..bundles).step_by(4) {
                    read(k, None);
                }
            });
        }
    });
    let recs = bundle_records(&f.log);
    // Every bundle read is inside a record of its reader, written before
    // it was sent (the record's tree_size is the size the read saw).
    for k in 0..bundles {
        let (a, b) = (k * 256, ((k + 1) * 256).min(size));
        assert!(
            recs.iter()
                .any(|(who, x, y)| who == "127.0.0.1" && *x <= a && b <= *y),
            "bundle {k} is in no record: {recs:?}"
        );
    }
    // 36 bundles: 1 + 2 + 4 + 8 + 16 + 5 in order, a few more when the
    // parallel reads arrive out of order: within the access rate of 12,
    // which one record a bundle would exceed (429).
    assert!(recs.len() <= 12, "{recs:?}");
    eprintln!(
        "{bundles} bundles read by one reader: {} records",
        recs.len()
    );
    // Reading the same bundles again within the window records nothing.
    let before = size_on_disk(&f.log);
    read(0, None);
    read(bundles - 1, None);
    assert_eq!(size_on_disk(&f.log), before);
    // Another reader (a token) is not covered by the first one's records.
    read(3, Some(&f.token));
    let a = last_entry(&f.log);
    assert_eq!(a["event"]["actor"], "alice");
    assert_eq!(a["event"]["read"]["entries"], json!([768, 1024]));
    // Each read either wrote a record or was covered by one.
    let covered = bundles - recs.len() as u64 + 2;
    let m = s.req("GET", "/metrics", None, b"").text();
    assert!(
        m.contains(&format!("stele_access_covered_reads_total {covered}\n")),
        "{m}"
    );
}

#[test]
fn bundle_reads_that_jump_around_cost_one_record_each_and_are_rate_limited() {
    // A reader cannot get a wide record without reading in order, nor
    // flood the log: each jump is a record of one bundle, at the rate.
    let f = fixture();
    // (A read within 16 bundles past a record's end continues it, gap
    // included; these jumps are further apart.)
    let s = Server::start(&f, &["--public-reads", "--access-rate", "3"]);
    fill(&s, &f.token, 13_000, 0);
    let before = size_on_disk(&f.log);
    let codes: Vec<u16> = [
        "/tile/entries/040",
        "/tile/entries/005",
        "/tile/entries/025",
        "/tile/entries/000",
    ]
    .iter()
    .map(|p| s.req("GET", p, None, b"").status)
    .collect();
    assert_eq!(codes, [200, 200, 200, 429], "{codes:?}");
    assert_eq!(size_on_disk(&f.log), before + 3);
    assert_eq!(
        bundle_records(&f.log)
            .iter()
            .map(|r| (r.1, r.2))
            .collect::<Vec<_>>(),
        [(10240, 10496), (1280, 1536), (6400, 6656)]
    );
    // Covered reads need no record, so they go on past the rate.
    assert_eq!(s.req("GET", "/tile/entries/005", None, b"").status, 200);
    assert_eq!(size_on_disk(&f.log), before + 3);
}

#[test]
fn reads_cannot_force_a_signature_per_request() {
    let f = fixture();
    let s = Server::start(
        &f,
        &[
            "--public-reads",
            "--checkpoint-every",
            "1000000",
            "--checkpoint-interval",
            "1h",
            "--read-sign-interval",
            "300ms",
        ],
    );
    // An index beyond the log: refused, nothing signed.
    let cps = checkpoints_on_disk(&f.log);
    let r = s.req(
        "GET",
        "/v1/proof/inclusion?index=18446744073709551614",
        None,
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(checkpoints_on_disk(&f.log), cps);
    // Each read needs a newer checkpoint than the last: signatures are
    // spaced by --read-sign-interval, however fast the reads come.
    let t = Instant::now();
    let n = 5;
    for i in 0..n {
        let rs = s
            .post("/v1/entries", &f.token, &format!("{{\"i\":{i}}}"))
            .json();
        let seq = rs[0]["seq"].as_u64().unwrap();
        let r = s.req(
            "GET",
            &format!("/v1/proof/inclusion?index={seq}"),
            None,
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300 * (n - 1)),
        "{n} forced signatures in {took:?}"
    );
    let m = s.req("GET", "/metrics", None, b"").text();
    assert!(
        m.contains(&format!("stele_read_forced_checkpoints_total {n}")),
        "{m}"
    );
}

#[test]
fn one_oversized_or_deep_audit_event_does_not_drop_its_batch() {
    // Finding 2: the API server does not retry a 4xx; 399 events were lost.
    let f = fixture();
    let s = Server::start(&f, &[]);
    let big = "x".repeat(70_000);
    let deep = format!("{}1{}", "{\"a\":".repeat(100), "}".repeat(100));
    let mut items: Vec<String> = (0..400)
        .map(|i| format!(r#"{{"verb":"get","user":{{"username":"u{i}"}},"auditID":"{i}"}}"#))
        .collect();
    items[10] = format!(
        r#"{{"verb":"update","user":{{"username":"mallory"}},"objectRef":{{"resource":"configmaps","name":"c"}},"requestObject":{{"data":"{big}"}}}}"#
    );
    items[20] =
        format!(r#"{{"verb":"patch","user":{{"username":"deep"}},"responseObject":{deep}}}"#);
    // Names reserved for sealing inside Kubernetes content (a ConfigMap key,
    // annotations) once failed the whole batch, or sealed a user's content.
    items[30] = r#"{"verb":"update","user":{"username":"m2"},"requestObject":{"data":{"stele.sealed":"x"}}}"#.into();
    items[31] =
        r#"{"verb":"update","user":{"username":"m3"},"annotations":{"stele.seal":"hide","a":"b"}}"#
            .into();
    items[32] =
        r#"{"verb":"update","user":{"username":"m4"},"annotations":{"stele.seal":"hide"}}"#.into();
    let body = format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{}]}}"#,
        items.join(",")
    );
    let r = s.post("/v1/k8s-audit", &f.token, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let rs = r.json();
    assert_eq!(rs.as_array().unwrap().len(), 400);
    let v = View::open_read_only(&f.log).unwrap();
    let entry = |seq: u64| -> Value { serde_json::from_slice(&v.entry(seq).unwrap()).unwrap() };
    let first = rs[0]["seq"].as_u64().unwrap();
    let e = entry(first + 10)["event"].clone();
    assert_eq!(e["actor"], "mallory");
    assert_eq!(e["target"], "configmaps/c");
    assert_eq!(e["truncated"], json!(["requestObject"]));
    let sent = format!(r#"{{"data":"{big}"}}"#);
    let m = &e["k8s"]["requestObject"];
    assert_eq!(m["truncated"], true);
    assert_eq!(m["bytes"], sent.len());
    assert!(m.get("sha256").is_none(), "no digest of cut content: {m}");
    let e = entry(first + 20)["event"].clone();
    assert_eq!(
        (e["actor"].clone(), e["truncated"].clone()),
        (json!("deep"), json!(["responseObject"]))
    );
    for (i, member) in [
        (30, "requestObject"),
        (31, "annotations"),
        (32, "annotations"),
    ] {
        let e = entry(first + i)["event"].clone();
        assert_eq!(e["truncated"], json!([member]), "item {i}: {e}");
        assert_eq!(e["k8s"][member]["truncated"], true, "item {i}: {e}");
    }
    assert_eq!(entry(first + 399)["event"]["actor"], "u399");
}

#[test]
fn tokens_are_scoped_and_named_in_every_entry_they_write() {
    // Finding 5: a reader's token wrote k8s.audit events as system:admin.
    let f = fixture();
    let reader = add_token(&f, "dashboard", "read");
    let kube = add_token(&f, "kube-apiserver", "k8s");
    let s = Server::start(&f, &[]);
    let before = size_on_disk(&f.log);
    let forged = r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"verb":"delete","user":{"username":"system:admin"}}]}"#;
    let r = s.post("/v1/k8s-audit", &reader, forged);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("no k8s scope"), "{}", r.text());
    assert_eq!(s.post("/v1/entries", &reader, "{}").status, 403);
    assert_eq!(s.post("/v1/entries", &kube, "{}").status, 403);
    assert_eq!(size_on_disk(&f.log), before);
    assert_eq!(s.get("/v1/entries?from=0&to=1", &reader).status, 200);
    assert_eq!(s.get("/v1/entries?from=0&to=1", &kube).status, 403);
    let r = s.post("/v1/k8s-audit", &kube, forged);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        last_entry(&f.log)["event"]["stele"],
        json!({"token": "kube-apiserver"})
    );
    assert_eq!(s.post("/v1/entries", &f.token, r#"{"a":1}"#).status, 200);
    assert_eq!(
        last_entry(&f.log)["event"]["stele"],
        json!({"token": "alice"})
    );
    // The member is the server's: a client cannot send its own.
    let r = s.post("/v1/entries", &f.token, r#"{"stele":{"token":"root"}}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.err().contains("\"stele\" is reserved"), "{}", r.text());
}

/// A token is revoked without a restart: `stele token remove` rewrites the
/// file, and the running server refuses the token once it has looked again
/// (at most a second later; waited for here, up to 30 s). A file that can
/// no longer be used refuses every token (503) instead of keeping the old
/// list, until it is mended; a token added meanwhile then works.
#[test]
fn tokens_file_changes_reach_a_running_server() {
    let f = fixture();
    let bob = add_token(&f, "bob", "read,write");
    let s = Server::start(&f, &[]);
    assert_eq!(s.post("/v1/entries", &bob, r#"{"a":1}"#).status, 200);
    let wait_for = |token: &str, status: u16| {
        let t = Instant::now();
        loop {
            let got = s.get("/v1/entries?from=0&to=1", token).status;
            if got == status {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "still {got}, waited for {status}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let list = |tokens: &Path| {
        let out = common::bounded_output(
            Command::new(STELE).args(["token", "list", tokens.to_str().unwrap()]),
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(list(&f.tokens), "alice read,write,k8s\nbob read,write\n");
    let out = common::bounded_output(
        Command::new(STELE).args(["token", "remove", f.tokens.to_str().unwrap(), "bob"]),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(list(&f.tokens), "alice read,write,k8s\n");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f.tokens).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    wait_for(&bob, 401);
    let r = s.post("/v1/entries", &bob, r#"{"a":2}"#);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(s.get("/v1/entries?from=0&to=1", &f.token).status, 200);
    // Removing an unknown name is an error that changes nothing.
    let out = common::bounded_output(
        Command::new(STELE).args(["token", "remove", f.tokens.to_str().unwrap(), "bob"]),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token named \"bob\""));
    // A broken file: every token refused, alice too.
    let good = std::fs::read_to_string(&f.tokens).unwrap();
    std::fs::write(&f.tokens, format!("{good}carol not-a-hash\n")).unwrap();
    wait_for(&f.token, 503);
    let r = s.post("/v1/entries", &f.token, r#"{"a":3}"#);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(!r.text().contains("not-a-hash"), "{}", r.text());
    // Mended, with a token added meanwhile.
    std::fs::write(&f.tokens, &good).unwrap();
    let dave = add_token(&f, "dave", "read");
    wait_for(&dave, 200);
    assert_eq!(s.get("/v1/entries?from=0&to=1", &f.token).status, 200);
    assert_eq!(s.get("/v1/entries?from=0&to=1", &bob).status, 401);
}

#[test]
fn protected_reads_are_not_publicly_cacheable() {
    // Finding 6: entry bundles were `public, immutable` without Vary.
    let f = fixture();
    let s = Server::start(&f, &[]);
    assert_eq!(s.post("/v1/entries", &f.token, r#"{"a":1}"#).status, 200);
    let r = s.get("/tile/entries/000.p/2", &f.token);
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "no-store");
    let r = s.get("/tile/0/000.p/2", &f.token);
    assert_eq!(
        r.headers["cache-control"],
        "private, max-age=31536000, immutable"
    );
    assert!(
        r.headers["vary"].contains("Authorization"),
        "{:?}",
        r.headers
    );
    for p in ["/v1/entries?from=0&to=1", "/v1/export"] {
        let r = s.get(p, &f.token);
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["cache-control"], "no-store", "{p}");
    }
    drop(s);
    let s = Server::start(&f, &["--public-reads"]);
    let r = s.req("GET", "/tile/0/000.p/2", None, b"");
    assert_eq!(
        r.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let r = s.req("GET", "/tile/entries/000.p/2", None, b"");
    assert_eq!(r.headers["cache-control"], "no-store");
}

// `stele serve` with these tokens, expected to refuse to start: (exit code,
// stderr). A server that starts anyway is killed after 20 s (code -1).
fn serve_exit(f: &Fixture, tokens: &Path) -> (i32, String) {
    let mut child = Command::new(STELE)
        .arg("serve")
        .arg(&f.log)
        .args(["--listen", "127.0.0.1:0", "--tokens"])
        .arg(tokens)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (code, err)
}

#[test]
fn unsafe_empty_or_ambiguous_tokens_files_are_refused() {
    // Finding 7: a world-writable tokens file was accepted.
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    std::fs::set_permissions(&f.tokens, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, err) = serve_exit(&f, &f.tokens);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has mode 0666"), "{err}");
    std::fs::set_permissions(&f.tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let empty = f.log.with_file_name("empty-tokens");
    std::fs::write(&empty, "# no tokens\n").unwrap();
    let (code, err) = serve_exit(&f, &empty);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds no token"), "{err}");
    let text = std::fs::read_to_string(&f.tokens).unwrap();
    let line = text.lines().find(|l| l.starts_with("alice ")).unwrap();
    let twice = f.log.with_file_name("twice");
    std::fs::write(
        &twice,
        format!("{line}\n{}\n", line.replacen("alice", "bob", 1)),
    )
    .unwrap();
    let (code, err) = serve_exit(&f, &twice);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("same hash"), "{err}");
}

// Reads until the server closes the connection or `limit` passes; true if it closed.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    while t.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn slow_and_idle_connections_are_cut_and_capped() {
    // Finding 8: a client dribbling header bytes held a connection forever;
    // idle connections exhausted the server.
    let f = fixture();
    let s = Server::start(&f, &["--header-timeout", "1s", "--idle-timeout", "1s"]);
    // Dribbling a header, a byte every 100 ms: cut after about a second.
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let t = Instant::now();
    let mut cut = false;
    while t.elapsed() < Duration::from_secs(20) {
        if slow.write_all(b"a").is_err() || closed_within(&mut slow, Duration::from_millis(100)) {
            cut = true;
            break;
        }
    }
    assert!(cut, "a dribbling header was not cut off in 20s");
    // Idle connections (nothing sent) are closed too.
    let mut idle = TcpStream::connect(&s.addr).unwrap();
    assert!(
        closed_within(&mut idle, Duration::from_secs(20)),
        "an idle connection stayed open"
    );
    drop(s);
    // The cap: 4 open connections, the 5th gets 503 at once (a server whose
    // idle timeout does not close the 4 during the test).
    let s = Server::start(&f, &["--max-connections", "4", "--idle-timeout", "1h"]);
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let r = try_http(&s.addr, "GET", "/healthz", None, b"").unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("too many open connections"));
    drop(held);
    // Once they go, it serves again.
    let t = Instant::now();
    loop {
        let r = try_http(&s.addr, "GET", "/healthz", None, b"").unwrap();
        if r.status == 200 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{}", r.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = s.req("GET", "/metrics", Some(&f.token), b"").text();
    let refused: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("stele_http_connections_refused_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(refused >= 1, "{m}");
    drop(s);
    // The cap per address: one client holding its connections open cannot
    // take the others' (red-team finding: 520 idle keep-alive connections
    // from one address shut every writer out).
    let s = Server::start(
        &f,
        &["--max-connections-per-ip", "3", "--idle-timeout", "1h"],
    );
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(&s.addr).unwrap())
        .collect();
    let r = try_http(&s.addr, "GET", "/healthz", None, b"").unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    drop(held);
    let t = Instant::now();
    while try_http(&s.addr, "GET", "/healthz", None, b"")
        .unwrap()
        .status
        != 200
    {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the address's slots were not given back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_slow_client_cannot_stop_shutdown_or_the_final_checkpoint() {
    let f = fixture();
    let s = Server::start(
        &f,
        &[
            "--shutdown-deadline",
            "1s",
            "--body-timeout",
            "1h",
            "--idle-timeout",
            "1h",
            "--checkpoint-every",
            "1000000",
            "--checkpoint-interval",
            "1h",
        ],
    );
    assert_eq!(s.post("/v1/entries", &f.token, r#"{"a":1}"#).status, 200);
    // A request whose body never finishes arriving.
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    write!(
        slow,
        "POST /v1/entries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 100\r\n\r\n{{",
        f.token
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(s.terminate().code(), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        t.elapsed()
    );
    let v = View::open_read_only(&f.log).unwrap();
    assert_eq!(v.size(), 2);
    assert_eq!(v.latest_checkpoint().unwrap().checkpoint.size, 2);
}

#[test]
fn bodies_that_do_not_arrive_in_time_are_refused() {
    let f = fixture();
    let s = Server::start(&f, &["--body-timeout", "1s"]);
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    write!(
        slow,
        "POST /v1/entries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{",
        f.token
    )
    .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = String::new();
    let _ = slow.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(out.contains("--body-timeout"), "{out}");
}

// Appends `n` entries of about `pad` bytes each.
fn fill(s: &Server, token: &str, n: usize, pad: usize) {
    let p = "p".repeat(pad);
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let body: Vec<String> = chunk
            .iter()
            .map(|i| format!(r#"{{"i":{i},"p":"{p}"}}"#))
            .collect();
        let r = s.post("/v1/entries", token, &format!("[{}]", body.join(",")));
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[test]
fn stalled_exports_are_capped_and_cut_off() {
    // Finding 9: 530 stalled exports froze the server.
    let f = fixture();
    let s = Server::start(
        &f,
        &[
            "--max-exports",
            "1",
            "--write-timeout",
            "1s",
            "--public-reads",
        ],
    );
    fill(&s, &f.token, 20_000, 400); // ~9 MB: more than the socket buffers
    // A client that asks for an export and never reads it.
    let mut stalled = TcpStream::connect(&s.addr).unwrap();
    write!(stalled, "GET /v1/export HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let r = s.req("GET", "/v1/export?from=0&to=1", None, b"");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"));
    // The stalled client is cut off at the write timeout, freeing the slot.
    let t = Instant::now();
    loop {
        let r = s.req("GET", "/v1/export?from=0&to=1", None, b"");
        if r.status == 200 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "export slot never freed: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Proofs and tiles answered all along.
    assert_eq!(s.req("GET", "/tile/0/000", None, b"").status, 200);
}

#[test]
fn one_address_holds_at_most_half_the_export_slots() {
    // Red-team finding: one client holding every export slot shut other
    // readers out until the write timeout cut it, then simply reconnected.
    let f = fixture();
    let reveal = add_token(&f, "mirror", "read,reveal");
    // A write timeout longer than the test: the stalled exports keep their
    // slots however slowly a loaded machine gets to them.
    let s = Server::start(
        &f,
        &[
            "--max-exports",
            "4",
            "--public-reads",
            "--write-timeout",
            "300s",
        ],
    );
    fill(&s, &f.token, 20_000, 400); // ~9 MB: more than the socket buffers
    let addr: std::net::SocketAddr = s.addr.parse().unwrap();
    // Connections from `from` whose receive buffer is small, so that an
    // export they never read cannot land whole in the socket buffers.
    let connect = |from: &str| -> TcpStream {
        let c = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        c.set_recv_buffer_size(4096).unwrap();
        c.bind(
            &format!("{from}:0")
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        c.connect(&addr.into()).unwrap();
        c.into()
    };
    let stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = connect("127.0.0.1");
            write!(c, "GET /v1/export HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            // Streaming before the next is sent: else a probe below could
            // take this one's place and it would be the one refused.
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let mut head = [0u8; 12];
            c.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
            c
        })
        .collect();
    // Its third is refused, once its two are streaming.
    let t = Instant::now();
    loop {
        let r = s.req("GET", "/v1/export?from=0&to=1", None, b"");
        if r.status == 429 {
            assert!(r.text().contains("this address"), "{}", r.text());
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(t.elapsed() < Duration::from_secs(120), "never refused");
        std::thread::sleep(Duration::from_millis(100));
    }
    // GET /v1/sealed builds its body whole: it takes one of those places
    // too (red-team finding: concurrent requests for big ranges grew the
    // server by the records file each).
    let r = s.req("GET", "/v1/sealed?from=0&to=1", Some(&reveal), b"");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("this address"), "{}", r.text());
    // Another address still gets one.
    let mut other = connect("127.0.0.2");
    write!(
        other,
        "GET /v1/export?from=0&to=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = other.read_to_string(&mut out);
    assert!(
        out.starts_with("HTTP/1.1 200"),
        "{}",
        &out[..out.len().min(300)]
    );
    drop(stalled);
}

#[test]
fn a_slow_but_steady_export_reader_is_not_cut_off() {
    // Red-team finding: a reader taking 40 KB/s all along was cut after
    // 6 MB. The socket wakes a writer only once half its (auto-grown) send
    // buffer has drained, which took longer than the write timeout.
    let f = fixture();
    let s = Server::start(&f, &["--write-timeout", "2s", "--public-reads"]);
    fill(&s, &f.token, 8_000, 400); // ~3.5 MB
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    write!(
        slow,
        "GET /v1/export HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("after {} bytes: {e}", got.len()),
        }
        // About 200 KB/s, steadily.
        std::thread::sleep(Duration::from_millis(20));
    }
    let head = String::from_utf8_lossy(&got[..got.len().min(700)]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(got.len() > 3_000_000, "{} bytes: {head}", got.len());
    assert!(
        got.ends_with(b"0\r\n\r\n"),
        "cut off after {} bytes: {head}",
        got.len()
    );
}

#[test]
fn a_huge_batch_of_tiny_events_is_refused_in_bounded_memory() {
    // Finding 10: 16 MiB of `[{},{},…]` became 5.6M entries and ~3 GB RSS.
    let f = fixture();
    let s = Server::start(&f, &[]);
    let base = s.peak_rss_kib();
    let mut body = String::with_capacity(16 << 20);
    body.push('[');
    while body.len() < (16 << 20) - 4 {
        body.push_str("{},");
    }
    body.push_str("{}]");
    let before = size_on_disk(&f.log);
    let r = s.post("/v1/entries", &f.token, &body);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("more than 10000 events"), "{}", r.text());
    assert_eq!(size_on_disk(&f.log), before);
    let peak = s.peak_rss_kib();
    eprintln!(
        "peak RSS of stele serve: {} MiB before, {} MiB after a 16 MiB body of 5.6M empty events",
        base / 1024,
        peak / 1024
    );
    assert!(
        peak < base + 200 * 1024,
        "peak RSS grew from {base} to {peak} KiB"
    );
    // 10,000 events (the cap) are taken, their receipts streamed.
    let body = format!("[{}{{}}]", "{},".repeat(9_999));
    let r = s.post("/v1/entries", &f.token, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().as_array().unwrap().len(), 10_000);
    assert_eq!(
        r.headers.get("transfer-encoding").map(String::as_str),
        Some("chunked")
    );
}

#[test]
fn bodies_say_what_is_wrong_with_their_encoding() {
    let f = fixture();
    let s = Server::start(&f, &[]);
    let auth = format!("Bearer {}", f.token);
    let before = size_on_disk(&f.log);
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [u8], u16, &'a str);
    let cases: [Case<'_>; 5] = [
        (
            &[("Content-Encoding", "gzip")],
            b"{}",
            415,
            "Content-Encoding \"gzip\"",
        ),
        (&[], b"\xef\xbb\xbf{}", 415, "byte order mark"),
        (
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"{}",
            415,
            "is not JSON",
        ),
        (&[("Content-Type", "text/plain")], b"{}", 415, "is not JSON"),
        (
            &[("Content-Type", "application/json; charset=latin1")],
            b"{}",
            415,
            "charset",
        ),
    ];
    for (h, body, code, want) in cases {
        let mut hs = vec![("Authorization", auth.as_str())];
        hs.extend_from_slice(h);
        let r = s.req_h("POST", "/v1/entries", &hs, body);
        assert_eq!(r.status, code, "{h:?}: {}", r.text());
        assert!(r.err().contains(want), "{h:?}: {}", r.text());
    }
    assert_eq!(size_on_disk(&f.log), before);
    let hs = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/x-ndjson"),
    ];
    assert_eq!(s.req_h("POST", "/v1/entries", &hs, b"{}\n{}\n").status, 200);
}

#[test]
fn a_wrong_token_is_refused_even_where_reads_are_public() {
    let f = fixture();
    let s = Server::start(&f, &["--public-reads"]);
    assert_eq!(s.req("GET", "/checkpoint", None, b"").status, 200);
    let r = s.req("GET", "/checkpoint", Some("stele_wrong"), b"");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = s.req("GET", "/v1/entries?from=0&to=1", Some("stele_wrong"), b"");
    assert_eq!(r.status, 401);
}

#[test]
fn public_hashes_and_private_entries() {
    let f = fixture();
    let s = Server::start(&f, &["--public-hashes"]);
    assert_eq!(s.post("/v1/entries", &f.token, r#"{"a":1}"#).status, 200);
    for p in [
        "/checkpoint",
        "/tile/0/000.p/2",
        "/v1/proof/inclusion?index=1",
        "/v1/proof/consistency?from=1",
    ] {
        assert_eq!(s.req("GET", p, None, b"").status, 200, "{p}");
    }
    for p in [
        "/v1/entries?from=0&to=1",
        "/v1/export",
        "/tile/entries/000.p/2",
        "/metrics",
    ] {
        assert_eq!(s.req("GET", p, None, b"").status, 401, "{p}");
        assert_eq!(s.get(p, &f.token).status, 200, "{p}");
    }
    let r = s.req("GET", "/tile/0/000.p/2", None, b"");
    assert_eq!(
        r.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
}

#[test]
fn cors_opens_hashes_to_all_and_entries_to_listed_origins() {
    let f = fixture();
    let s = Server::start(
        &f,
        &["--public-hashes", "--cors-origin", "https://dash.example"],
    );
    let r = s.req_h(
        "GET",
        "/checkpoint",
        &[("Origin", "https://any.example")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert!(!r.headers.contains_key("access-control-allow-credentials"));
    assert!(r.headers["vary"].contains("Origin"));
    // Preflight for Authorization on entries: only for a listed origin.
    let pre = [
        ("Origin", "https://dash.example"),
        ("Access-Control-Request-Method", "GET"),
        ("Access-Control-Request-Headers", "authorization"),
    ];
    let r = s.req_h("OPTIONS", "/v1/entries", &pre, b"");
    assert_eq!(r.status, 204);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://dash.example"
    );
    assert!(r.headers["access-control-allow-headers"].contains("Authorization"));
    let r = s.req_h(
        "OPTIONS",
        "/v1/entries",
        &[("Origin", "https://evil.example")],
        b"",
    );
    assert_eq!(r.status, 204);
    assert!(!r.headers.contains_key("access-control-allow-origin"));
    let auth = format!("Bearer {}", f.token);
    let r = s.req_h(
        "GET",
        "/v1/entries?from=0&to=1",
        &[("Origin", "https://dash.example"), ("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://dash.example"
    );
    assert!(r.headers["vary"].contains("Origin"));
}

/// An entry bundle asked for with a percent-encoded path is routed as a
/// bundle, so it gets the entries' CORS policy, never the hash tiles' `*`.
#[test]
fn an_encoded_bundle_path_gets_the_entries_cors_policy() {
    let f = fixture();
    let s = Server::start(
        &f,
        &["--public-reads", "--cors-origin", "https://dash.example"],
    );
    let cp = s.req("GET", "/checkpoint", None, b"");
    assert_eq!(cp.status, 200);
    let size: u64 = String::from_utf8_lossy(&cp.body)
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(size > 0 && size < 256, "{size}");
    let evil = [("Origin", "https://evil.example")];
    let plain = s.req_h("GET", &format!("/tile/entries/000.p/{size}"), &evil, b"");
    assert_eq!(plain.status, 200);
    for path in [
        format!("/tile/entries%2F000.p%2F{size}"),
        format!("/tile/entries%2f000.p/{size}"),
        format!("/tile/%65ntries/000.p/{size}"),
    ] {
        let r = s.req_h("GET", &path, &evil, b"");
        if r.status == 200 {
            assert_eq!(r.body, plain.body, "{path}");
        }
        assert!(
            !r.headers.contains_key("access-control-allow-origin"),
            "{path}: {:?}",
            r.headers
        );
        let pre = [
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "GET"),
        ];
        let r = s.req_h("OPTIONS", &path, &pre, b"");
        assert!(
            !r.headers.contains_key("access-control-allow-origin"),
            "{path} preflight"
        );
    }
}

#[test]
fn a_trusted_proxy_names_the_client() {
    let f = fixture();
    let s = Server::start(&f, &["--public-reads", "--trust-proxy", "127.0.0.1"]);
    let r = s.req_h(
        "GET",
        "/v1/entries?from=0&to=1",
        &[("X-Forwarded-For", "203.0.113.9, 127.0.0.1")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(last_entry(&f.log)["event"]["actor"], "203.0.113.9");
    // A client's own Forwarded header, passed through by a proxy that
    // appends X-Forwarded-For, names nobody.
    let both = [
        ("Forwarded", "for=198.51.100.1"),
        ("X-Forwarded-For", "203.0.113.10"),
    ];
    let r = s.req_h("GET", "/v1/entries?from=0&to=1", &both, b"");
    assert_eq!(r.status, 200);
    assert_eq!(last_entry(&f.log)["event"]["actor"], "203.0.113.10");
    drop(s);
    // A proxy that sets Forwarded: that header, and only it.
    let s = Server::start(
        &f,
        &[
            "--public-reads",
            "--trust-proxy",
            "127.0.0.1",
            "--proxy-header",
            "forwarded",
        ],
    );
    let r = s.req_h("GET", "/v1/entries?from=0&to=1", &both, b"");
    assert_eq!(r.status, 200);
    assert_eq!(last_entry(&f.log)["event"]["actor"], "198.51.100.1");
    drop(s);
    // Untrusted: the header is ignored.
    let s = Server::start(&f, &["--public-reads"]);
    let r = s.req_h(
        "GET",
        "/v1/entries?from=0&to=1",
        &[("X-Forwarded-For", "203.0.113.9")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(last_entry(&f.log)["event"]["actor"], "127.0.0.1");
}

#[test]
fn no_symlink_is_followed_out_of_the_web_directory() {
    let f = fixture();
    let web = f.log.with_file_name("web");
    std::fs::create_dir(&web).unwrap();
    std::fs::write(web.join("index.html"), "<p>page</p>").unwrap();
    std::os::unix::fs::symlink(f.log.join("key"), web.join("key.txt")).unwrap();
    let s = Server::start(&f, &["--web", web.to_str().unwrap()]);
    assert_eq!(s.req("GET", "/", None, b"").status, 200);
    let r = s.req("GET", "/key.txt", None, b"");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(!r.text().contains("PRIVATE"));
}

#[test]
fn a_retry_with_the_same_idempotency_key_is_not_appended_twice() {
    let f = fixture();
    let s = Server::start(&f, &[]);
    let auth = format!("Bearer {}", f.token);
    let hs = [
        ("Authorization", auth.as_str()),
        ("Idempotency-Key", "batch-42"),
    ];
    let body = br#"[{"a":1},{"a":2}]"#;
    let first = s.req_h("POST", "/v1/entries", &hs, body);
    assert_eq!(first.status, 200, "{}", first.text());
    let size = size_on_disk(&f.log);
    let again = s.req_h("POST", "/v1/entries", &hs, body);
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), first.json());
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let other = s.req_h("POST", "/v1/entries", &hs, br#"{"b":1}"#);
    assert_eq!(other.status, 422, "{}", other.text());
    assert_eq!(size_on_disk(&f.log), size);
    // After a crash of the server the key is read back from the log.
    drop(s);
    let s = Server::start(&f, &[]);
    // The log keeps no digest of the body: another body is told from the
    // entries themselves, still 422 and nothing written (red-team finding:
    // it was answered with the old receipts and its events dropped).
    for other in [
        &br#"{"totally":"different"}"#[..],
        br#"[{"a":1},{"a":3}]"#,
        br#"[{"a":1}]"#,
    ] {
        let r = s.req_h("POST", "/v1/entries", &hs, other);
        assert_eq!(r.status, 422, "{}", r.text());
    }
    // The same events, spelled otherwise, are the same request.
    let spaced = b"[ {\"a\": 1}, {\"a\": 2} ]";
    for b in [&body[..], spaced] {
        let after = s.req_h("POST", "/v1/entries", &hs, b);
        assert_eq!(after.status, 200, "{}", after.text());
        assert_eq!(after.json(), first.json());
        assert_eq!(after.headers["idempotent-replayed"], "true");
    }
    assert_eq!(size_on_disk(&f.log), size);
}

// A fixture whose log seals /ip (subject /actor, the default).
fn sealed_fixture() -> Fixture {
    let f = fixture();
    std::fs::remove_dir_all(&f.log).unwrap();
    let out = common::bounded_output(
        Command::new(STELE).args([
            "init",
            f.log.to_str().unwrap(),
            "--origin",
            "test.example/serve",
            "--seal",
            "/ip",
        ]),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = VerifierKey::parse(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    Fixture { key, ..f }
}

fn stele_ok(args: &[&str]) {
    let out = common::bounded_output(Command::new(STELE).args(args), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_retry_after_a_restart_is_compared_with_its_sealed_values() {
    let f = sealed_fixture();
    let s = Server::start(&f, &[]);
    let auth = format!("Bearer {}", f.token);
    let post = |s: &Server, key: &str, body: &str| {
        s.req_h(
            "POST",
            "/v1/entries",
            &[("Authorization", auth.as_str()), ("Idempotency-Key", key)],
            body.as_bytes(),
        )
    };
    let pay = |amount: u64, ip: &str| {
        format!(r#"{{"type":"pay","actor":"ann","amount":{{"stele.seal":{amount}}},"ip":"{ip}"}}"#)
    };
    let diag = |who: &str, note: &str| {
        format!(r#"{{"type":"diag","actor":"{who}","note":{{"stele.seal":"{note}"}}}}"#)
    };
    let first = post(&s, "rk1", &pay(100, "10.0.0.1"));
    assert_eq!(first.status, 200, "{}", first.text());
    let d1 = post(&s, "rk2", &diag("frank", "HIV-POSITIVE"));
    assert_eq!(d1.status, 200, "{}", d1.text());
    let d2 = post(&s, "rk3", &diag("gina", "HIV-POSITIVE"));
    assert_eq!(d2.status, 200, "{}", d2.text());
    let size = size_on_disk(&f.log);
    drop(s);
    let s = Server::start(&f, &[]);
    // Other sealed values (ad hoc, or at a --seal rule's pointer): another
    // body, 422, nothing written (red-team finding: the old receipts were
    // replayed and the new event dropped).
    for other in [pay(999_999, "10.0.0.1"), pay(100, "10.0.0.2")] {
        let r = post(&s, "rk1", &other);
        assert_eq!(r.status, 422, "{}", r.text());
        assert!(r.text().contains("different body"), "{}", r.text());
        assert!(!r.text().contains("999999") && !r.text().contains("10.0.0"));
    }
    // Sealed values spelled with or without the marker are the same request.
    let unmarked = r#"{"type":"pay","actor":"ann","amount":{"stele.seal":100},"ip":{"stele.seal":"10.0.0.1"}}"#;
    for same in [pay(100, "10.0.0.1"), unmarked.to_string()] {
        let r = post(&s, "rk1", &same);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json(), first.json());
        assert_eq!(r.headers["idempotent-replayed"], "true");
    }
    assert_eq!(size_on_disk(&f.log), size);
    // Frank forgotten, gina's note redacted: a retry cannot be compared with
    // those values, and gets one answer whatever it guesses.
    drop(s);
    let log = f.log.to_str().unwrap();
    stele_ok(&["forget", log, "--subject", "frank"]);
    let seq = d2.json()[0]["seq"].as_u64().unwrap().to_string();
    stele_ok(&["redact", log, "--entry", &seq, "--pointer", "/note"]);
    let size = size_on_disk(&f.log);
    let s = Server::start(&f, &[]);
    for (key, who) in [("rk2", "frank"), ("rk3", "gina")] {
        let answers: Vec<(u16, String)> = ["HIV-POSITIVE", "HIV-NEGATIVE"]
            .into_iter()
            .map(|guess| {
                let r = post(&s, key, &diag(who, guess));
                (r.status, r.text())
            })
            .collect();
        assert_eq!(answers[0], answers[1], "{key}");
        assert_eq!(answers[0].0, 422, "{key}: {}", answers[0].1);
        assert!(
            answers[0].1.contains("forgotten or redacted"),
            "{}",
            answers[0].1
        );
        assert!(!answers[0].1.contains("HIV"), "{}", answers[0].1);
        // Another plain part is still another body.
        let r = post(&s, key, &diag("zed", "HIV-POSITIVE"));
        assert_eq!(r.status, 422);
        assert!(r.text().contains("different body"), "{}", r.text());
    }
    assert_eq!(size_on_disk(&f.log), size);
}

#[test]
fn a_non_loopback_listen_without_tokens_warns() {
    let f = fixture();
    let mut child = Command::new(STELE)
        .arg("serve")
        .arg(&f.log)
        .args(["--listen", "0.0.0.0:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stderr on a thread; the server is killed after 20 s whatever it printed.
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = String::new();
        let mut err = BufReader::new(err);
        while !lines.contains("warning") && err.read_line(&mut lines).unwrap_or(0) > 0 {}
        lines
    });
    let t = Instant::now();
    while !reader.is_finished() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let lines = reader.join().unwrap();
    assert!(
        lines.contains("warning: listening on 0.0.0.0") && lines.contains("without --tokens"),
        "{lines}"
    );
}

#[test]
fn unfinished_headers_are_bounded_in_memory() {
    // Finding 8: 1,000 connections with 381 KB unfinished headers pinned 589 MB.
    let f = fixture();
    let s = Server::start(
        &f,
        &["--max-connections", "1000", "--max-connections-per-ip", "0"],
    );
    let base = s.peak_rss_kib();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}",
        "a".repeat(381_000)
    );
    let conns: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut c = TcpStream::connect(&s.addr).unwrap();
            c.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
            // The server stops reading at --max-header (64 KiB) and answers 431.
            let _ = c.write_all(head.as_bytes());
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let peak = s.peak_rss_kib();
    eprintln!(
        "peak RSS of stele serve: {} MiB before, {} MiB with 300 connections sending 381 KB unfinished headers",
        base / 1024,
        peak / 1024
    );
    assert!(
        peak < base + 60 * 1024,
        "peak RSS grew from {base} to {peak} KiB"
    );
    drop(conns);
    assert_eq!(s.req("GET", "/healthz", None, b"").status, 200);
    // A head far over --max-header is answered 431.
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(
        format!(
            "GET /healthz HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(300_000)
        )
        .as_bytes(),
    );
    let mut head = [0u8; 12];
    c.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 431");
}

#[test]
fn in_flight_parses_are_bounded_in_memory() {
    // Finding 10's second half: bodies that parse into far more memory than
    // their size (many tiny members), sent at once, are admitted only as
    // --max-inflight allows (each charged 16 times its body).
    let f = fixture();
    let s = Server::start(&f, &["--max-inflight", "100000000"]);
    let base = s.peak_rss_kib();
    let members: String = (0..150).map(|i| format!("\"m{i}\":{i},")).collect();
    let ev = format!("{{{members}\"z\":0}}");
    let body = format!("[{}{ev}]", format!("{ev},").repeat(2_999));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (addr, token, body) = (s.addr.clone(), f.token.clone(), body.clone());
            std::thread::spawn(move || {
                try_http(&addr, "POST", "/v1/entries", Some(&token), body.as_bytes())
                    .map(|r| r.status)
                    .unwrap_or(0)
            })
        })
        .collect();
    let codes: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let peak = s.peak_rss_kib();
    eprintln!(
        "peak RSS of stele serve: {} MiB before, {} MiB after 3 bodies of {} KiB (3,000 events of 151 members) at once, admitted one at a time: {codes:?}",
        base / 1024,
        peak / 1024,
        body.len() >> 10
    );
    assert!(codes.iter().all(|c| *c == 200 || *c == 503), "{codes:?}");
    assert!(codes.contains(&200), "{codes:?}");
    assert!(
        peak < base + 150 * 1024,
        "peak RSS grew from {base} to {peak} KiB"
    );
}

/// docs/FORMAT.md 15: `stele key rotate` while `stele serve` holds the log
/// hands the rotation to the server, whose checkpoint timer completes it
/// while it serves; the export verifies with the genesis key alone.
#[test]
fn a_key_rotation_asked_for_while_serving_is_completed_by_the_server() {
    let f = fixture();
    let s = Server::start(&f, &["--checkpoint-interval", "100ms"]);
    for i in 0..3 {
        assert_eq!(
            s.post("/v1/entries", &f.token, &format!("{{\"n\":{i}}}"))
                .status,
            200
        );
    }
    let out = common::bounded_output(
        Command::new(STELE).args(["key", "rotate", f.log.to_str().unwrap(), "--overlap", "1"]),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = VerifierKey::parse(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_ne!(new, f.key);
    // Served checkpoints move to the new key alone once the overlap is over.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert_eq!(s.post("/v1/entries", &f.token, "{\"more\":1}").status, 200);
        let sc = SignedCheckpoint::parse(&s.get("/checkpoint", &f.token).body).unwrap();
        let ids: Vec<_> = sc.note.signatures.iter().map(|g| g.key_id).collect();
        if ids == vec![new.id()] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "served checkpoints still signed by {ids:?}"
        );
    }
    let r = s.get("/v1/export", &f.token);
    assert_eq!(r.status, 200);
    let report = stele_core::verify::verify_bytes(
        stele_core::verify::Options::new(vec![f.key.clone()]),
        &r.body,
    );
    assert_eq!(report.verdict, Verdict::Verified, "{report:#?}");
    let keys = report.keys.expect("key history");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].key, new.to_string());
    assert!(keys.iter().all(|k| k.trusted));
}

// Red-team finding: a writer that declares the largest body and sends it a
// byte at a time was charged its whole declared size in --max-inflight up
// front, so every other writer waited --body-timeout and got 503. A token's
// requests now hold at most half of the room: another token is answered.
#[test]
fn a_slow_body_of_one_token_does_not_hold_other_writers() {
    let f = fixture();
    let bob = add_token(&f, "bob", "write");
    let s = Server::start(&f, &["--max-inflight", "100000000"]);
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    let head = format!(
        "POST /v1/entries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 16000000\r\n\r\n[",
        f.token
    );
    slow.write_all(head.as_bytes()).unwrap();
    // Until the slow request holds its room (its headers are read).
    std::thread::sleep(Duration::from_millis(300));
    let r = try_http(
        &s.addr,
        "POST",
        "/v1/entries",
        Some(&bob),
        br#"{"probe":1}"#,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    drop(slow);
}

// A connection from `from` with a tiny receive buffer: a response it does
// not read cannot land whole in the socket buffers.
fn small_buffer_connect(addr: &str, from: &str) -> TcpStream {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let c = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    c.set_recv_buffer_size(4096).unwrap();
    c.bind(
        &format!("{from}:0")
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    c.connect(&addr.into()).unwrap();
    c.into()
}

// A public-reads server with --max-read-bytes `budget` and a log of 300
// entries of 60 KB: a page of them is 18 MB and a bundle of 256 is 15 MB,
// more than a socket's buffers take, so an unread one stays charged.
fn large_entries_server(budget: u64) -> (Fixture, Server) {
    let f = fixture();
    let s = Server::start(
        &f,
        &[
            "--public-reads",
            "--max-read-bytes",
            &budget.to_string(),
            "--write-timeout",
            "300s",
        ],
    );
    let pad = "p".repeat(60_000);
    for k in 0..6 {
        let body: Vec<String> = (0..50)
            .map(|i| format!(r#"{{"i":{},"p":"{pad}"}}"#, k * 50 + i))
            .collect();
        let r = s.post("/v1/entries", &f.token, &format!("[{}]", body.join(",")));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    (f, s)
}

// GETs `path` from `from` and does not read the body: the status line, or
// the whole answer when it is a (short) 503; and the connection, to hold.
fn ask_unread(addr: &str, from: &str, path: &str) -> (String, TcpStream) {
    let mut c = small_buffer_connect(addr, from);
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = [0u8; 12];
    c.read_exact(&mut head).unwrap();
    let mut text = String::from_utf8_lossy(&head).to_string();
    if text == "HTTP/1.1 503" {
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest).unwrap();
        text.push_str(&String::from_utf8_lossy(&rest));
    }
    (text, c)
}

// One client holds at most half of --max-read-bytes in unsent responses:
// a few slow readers of one address cannot take the whole budget from the
// others (memory was bounded already; this keeps reads available).
#[test]
fn one_client_holds_at_most_half_of_the_read_budget() {
    let (_f, s) = large_entries_server(96 << 20);
    let ask = |from: &str| ask_unread(&s.addr, from, "/v1/entries?from=0&to=300");
    let mut held = Vec::new();
    // Two pages (36 MB) of one client are held; a third would pass its half.
    for _ in 0..2 {
        let (a, c) = ask("127.0.0.2");
        assert!(a.starts_with("HTTP/1.1 200"), "{a}");
        held.push(c);
    }
    let (again, _) = ask("127.0.0.2");
    assert!(again.starts_with("HTTP/1.1 503"), "{again}");
    assert!(again.contains("this client holds"), "{again}");
    assert!(again.contains("nothing was read"), "{again}");
    // Other clients still get theirs, up to the budget (90 of 96 MiB) ...
    for from in ["127.0.0.3", "127.0.0.3", "127.0.0.4"] {
        let (b, c) = ask(from);
        assert!(b.starts_with("HTTP/1.1 200"), "{from}: {b}");
        held.push(c);
    }
    // ... which is then spent: within its half, a client waits, then is refused.
    let (c, _) = ask("127.0.0.4");
    assert!(c.starts_with("HTTP/1.1 503"), "{c}");
    assert!(c.contains("--max-read-bytes"), "{c}");
    assert!(!c.contains("this client holds"), "{c}");
    drop(held);
}

#[test]
fn unread_pages_and_bundles_are_held_within_the_read_budget() {
    // Review finding: pages of GET /v1/entries and entry bundles were built
    // whole with nothing bounding them: 20 anonymous clients that asked for
    // pages of 64 KiB entries and never read them took a server from 28 MB
    // to 1.74 GB. Now each such response holds its size of
    // --max-read-bytes until it is sent.
    let budget: u64 = 32 << 20;
    let (_f, s) = large_entries_server(budget);
    let base = s.peak_rss_kib();
    // 12 clients ask for a page, 12 for a bundle, and none reads its body.
    let clients: Vec<_> = (0..24)
        .map(|i| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let path = if i % 2 == 0 {
                    "/v1/entries?from=0"
                } else {
                    "/tile/entries/000"
                };
                // Each from an address of its own: the whole budget, not
                // one client's half, is what they meet.
                let (text, c) = ask_unread(&addr, &format!("127.0.0.{}", 2 + i), path);
                let code = if text.starts_with("HTTP/1.1 503") {
                    503
                } else {
                    0
                };
                (code, text, Some(c))
            })
        })
        .collect();
    let answers: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let peak = s.peak_rss_kib();
    let refused: Vec<&String> = answers
        .iter()
        .filter(|a| a.0 == 503)
        .map(|a| &a.1)
        .collect();
    let held = answers.iter().filter(|a| a.1 == "HTTP/1.1 200").count();
    eprintln!(
        "peak RSS of stele serve: {} MiB before, {} MiB with 24 clients not reading 15-18 MB pages and bundles under --max-read-bytes {} MiB ({held} held, {} refused)",
        base / 1024,
        peak / 1024,
        budget >> 20,
        refused.len()
    );
    // Held: the budget, plus what is being built and copied at once.
    assert!(
        peak < base + 3 * (budget >> 10),
        "peak RSS grew from {base} to {peak} KiB"
    );
    assert_eq!(held + refused.len(), 24, "{answers:?}");
    assert!(held >= 1, "{answers:?}");
    assert!(!refused.is_empty(), "{answers:?}");
    for r in &refused {
        assert!(r.contains("--max-read-bytes"), "{r}");
        assert!(r.contains("nothing was read"), "{r}");
        assert!(r.to_ascii_lowercase().contains("retry-after: 1"), "{r}");
    }
    let m = s.req("GET", "/metrics", None, b"").text();
    assert!(
        m.contains(&format!("stele_reads_refused_total {}", refused.len())),
        "{m}"
    );
    drop(answers);
}

#[test]
fn a_read_only_server_with_an_access_log_records_bundle_reads() {
    // Review finding: `--read-only --access-log` recorded pages of entries
    // but sent entry bundles without a record, while answering
    // `stele-reads: recorded`.
    let f = fixture();
    let s = Server::start(&f, &[]);
    let r = s.post("/v1/entries", &f.token, r#"[{"a":1},{"a":2},{"a":3}]"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s.terminate().success());
    let access = f.log.parent().unwrap().join("access");
    stele_ok(&[
        "init",
        access.to_str().unwrap(),
        "--origin",
        "test.example/reads",
    ]);
    let records = || {
        std::fs::read_to_string(access.join("entries.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"stele.access\""))
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let s = Server::start(
        &f,
        &["--read-only", "--access-log", access.to_str().unwrap()],
    );
    assert!(records().is_empty());
    let r = s.get("/tile/entries/000.p/4", &f.token);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["stele-reads"], "recorded");
    let all = records();
    assert_eq!(all.len(), 1, "{all:?}");
    let ev = &all[0]["event"];
    assert_eq!(ev["target"], "/tile/entries");
    assert_eq!(ev["actor"], "alice");
    assert_eq!(
        ev["read"],
        json!({"kind": "bundles", "entries": [0, 4], "seconds": 60, "tree_size": 4})
    );
    // A page of entries is recorded too (it always was).
    assert_eq!(s.get("/v1/entries?from=0&to=2", &f.token).status, 200);
    assert_eq!(records().len(), 2);
}

#[test]
fn one_huge_event_is_refused_from_its_bytes_in_bounded_memory() {
    // Review finding: one 16 MiB POST of a single event holding an
    // 8.4M-element array was parsed into a tree (and cloned to be
    // measured): ~600 MB for one request, then 413.
    let f = fixture();
    let s = Server::start(&f, &[]);
    let base = s.peak_rss_kib();
    let n = (16 << 20) - 100;
    let body = format!(r#"{{"type":"k","a":[{}0]}}"#, "0,".repeat(n / 2 - 20));
    let before = size_on_disk(&f.log);
    let r = s.post("/v1/entries", &f.token, &body);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.text().contains("entry would be more than"),
        "{}",
        r.text()
    );
    assert_eq!(size_on_disk(&f.log), before);
    let peak = s.peak_rss_kib();
    eprintln!(
        "peak RSS of stele serve: {} MiB before, {} MiB after one 16 MiB event of 8.4M array elements",
        base / 1024,
        peak / 1024
    );
    assert!(
        peak < base + 100 * 1024,
        "peak RSS grew from {base} to {peak} KiB"
    );
}

#[test]
fn a_reader_below_the_write_rate_is_cut_and_a_fast_one_is_not() {
    // Review finding: four readers taking ~300 B/s each held every export
    // slot for as long as they liked (each read came well within the write
    // timeout). A tiny window here; the default is 1 KiB/s over 30 s.
    let f = fixture();
    let s = Server::start(
        &f,
        &[
            "--public-reads",
            "--write-timeout",
            "300s",
            "--min-write-rate",
            "262144",
            "--write-rate-window",
            "2s",
        ],
    );
    fill(&s, &f.token, 20_000, 400); // ~9 MB: more than the socket buffers
    let mut slow = small_buffer_connect(&s.addr, "127.0.0.1");
    write!(
        slow,
        "GET /v1/export HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    // About 20 KB/s: far below 256 KiB/s.
    let t = Instant::now();
    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        match slow.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        assert!(t.elapsed() < Duration::from_secs(100), "never cut");
        std::thread::sleep(Duration::from_millis(200));
    }
    let head = String::from_utf8_lossy(&got[..got.len().min(300)]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!got.ends_with(b"0\r\n\r\n"), "the slow reader got it all");
    assert!(got.len() < 4_000_000, "cut after {} bytes", got.len());
    // A reader taking it as fast as it comes gets all of it.
    let r = s.req("GET", "/v1/export", None, b"");
    assert_eq!(r.status, 200);
    let report =
        stele_core::verify::verify_bytes(stele_core::Options::new(vec![f.key.clone()]), &r.body);
    assert_eq!(report.verdict, Verdict::Verified, "{report:?}");
    let m = s.req("GET", "/metrics", None, b"").text();
    assert!(
        !m.contains("stele_http_connections_timed_out_total 0"),
        "{m}"
    );
}

#[test]
fn export_slots_are_shared_by_the_client_a_trusted_proxy_names() {
    // Review finding: export places were counted by the TCP peer, so behind
    // a trusted proxy one client's exports counted against everyone's share.
    let f = fixture();
    let s = Server::start(
        &f,
        &[
            "--public-reads",
            "--max-exports",
            "4",
            "--trust-proxy",
            "127.0.0.1",
            "--write-timeout",
            "300s",
            "--min-write-rate",
            "0",
        ],
    );
    fill(&s, &f.token, 20_000, 400); // ~9 MB: more than the socket buffers
    let stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = small_buffer_connect(&s.addr, "127.0.0.1");
            write!(
                c,
                "GET /v1/export HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n"
            )
            .unwrap();
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let mut head = [0u8; 12];
            c.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
            c
        })
        .collect();
    let get = |client: &str| {
        s.req_h(
            "GET",
            "/v1/export?from=0&to=1",
            &[("X-Forwarded-For", client)],
            b"",
        )
    };
    // That client's third is refused; another client behind the same proxy
    // still gets one.
    let r = get("203.0.113.7");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("this address"), "{}", r.text());
    let r = get("203.0.113.8");
    assert_eq!(r.status, 200, "{}", r.text());
    drop(stalled);
}

#[test]
fn an_internal_error_names_no_path_to_the_client() {
    // Left open at stop 33: a 500 carried the error's text, which names
    // the log's files (their absolute paths) to anyone, anonymous readers
    // of public hashes included. The text goes to the server's stderr.
    let f = fixture();
    let s = Server::start(&f, &[]);
    let r = s.post("/v1/entries", &f.token, r#"[{"a":1},{"a":2},{"a":3}]"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s.terminate().success());
    let s = Server::start(&f, &["--read-only", "--public-hashes"]);
    assert_eq!(s.req("GET", "/checkpoint", None, b"").status, 200);
    // Another process breaks the log under the reader: its next view fails.
    let cps = f.log.join("checkpoints");
    let mut text = std::fs::read(&cps).unwrap();
    text.extend_from_slice(b"not a checkpoint record\n\n");
    std::fs::write(&cps, text).unwrap();
    let dir = f.log.to_str().unwrap();
    for token in [None, Some(f.token.as_str())] {
        let r = s.req("GET", "/checkpoint", token, b"");
        assert_eq!(r.status, 500, "{}", r.text());
        let body = r.text();
        assert!(!body.contains(dir), "{body}");
        assert!(!body.contains("checkpoints"), "{body}");
        assert!(body.contains("internal error"), "{body}");
    }
}
