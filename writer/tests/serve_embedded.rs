//! `stele serve` embedded as a library (stele_writer::serve::Server) with an
//! injected file system: what only an in-process server can show.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use stele_writer::fs::{FileRole, Fs};
use stele_writer::serve::{Config, Scopes, Server, add_token};
use stele_writer::{Log, key};

// The real file system, except that writes to the entries file fail with
// ENOSPC while `full` is set.
#[derive(Debug, Default)]
struct Disk {
    full: AtomicBool,
}

impl Fs for Disk {
    fn write_at(&self, role: FileRole, f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        if role == FileRole::Entries && self.full.load(Ordering::SeqCst) {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        f.write_all_at(buf, offset)
    }
}

fn http(addr: SocketAddr, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // An empty token: no Authorization header.
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map_or("", |p| p.1).to_string();
    (status, body)
}

#[test]
fn a_full_disk_is_507_and_healthz_says_so_until_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let signer = key::generate("test.example/embedded").unwrap();
    drop(Log::create(&dir, "test.example/embedded", &signer).unwrap());
    let tokens = tmp.path().join("tokens");
    let token = add_token(&tokens, "alice", Scopes::ALL).unwrap();
    let disk = Arc::new(Disk::default());
    let mut c = Config::new(&dir);
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.tokens = Some(tokens);
    c.fs = Some(disk.clone());
    let server = Server::bind(c).unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = std::thread::spawn(move || {
        server
            .run(async {
                let _ = stopped.await;
            })
            .unwrap()
    });
    assert_eq!(
        http(addr, "POST", "/v1/entries", &token, r#"{"a":1}"#).0,
        200
    );
    disk.full.store(true, Ordering::SeqCst);
    let (code, body) = http(addr, "POST", "/v1/entries", &token, r#"{"a":2}"#);
    assert_eq!(code, 507, "{body}");
    assert!(body.contains("nothing was acknowledged"), "{body}");
    let (code, body) = http(addr, "GET", "/healthz", &token, "");
    assert_eq!(code, 507, "{body}");
    assert!(body.contains("lack of disk space"), "{body}");
    assert!(!body.contains("fsync"), "{body}");
    // The cause (it names the log's files) only for a read token: review
    // finding, anonymous /healthz echoed the log's absolute path.
    assert!(body.contains("entries.jsonl"), "{body}");
    let dir_text = dir.to_str().unwrap();
    for anonymous in ["", "stele_wrong"] {
        let (code, body) = http(addr, "GET", "/healthz", anonymous, "");
        assert_eq!(code, 507, "{body}");
        assert_eq!(
            body,
            "{\"error\":\"storage full: the last append failed for lack of disk space and was rolled back\"}\n"
        );
        assert!(!body.contains(dir_text), "{body}");
    }
    disk.full.store(false, Ordering::SeqCst);
    assert_eq!(
        http(addr, "POST", "/v1/entries", &token, r#"{"a":3}"#).0,
        200
    );
    assert_eq!(http(addr, "GET", "/healthz", &token, "").0, 200);
    stop.send(()).unwrap();
    let s = running.join().unwrap();
    // Genesis and the two acknowledged entries; the refused one rolled back.
    assert_eq!(s.size, 3);
    assert_eq!(s.checkpoint.unwrap().checkpoint.size, 3);
}

fn post_keyed(addr: SocketAddr, token: &str, key: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /v1/entries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

#[test]
fn a_forget_or_redaction_while_serving_voids_the_kept_body_digests() {
    // Red-team finding: the server kept a plain SHA-256 of each keyed
    // request's body; after a forget (or a redaction) through the log it
    // serves, a retry under the old key still told a right guess of the
    // forgotten value (200, replayed) from a wrong one (422).
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let signer = key::generate("test.example/embedded").unwrap();
    drop(Log::create(&dir, "test.example/embedded", &signer).unwrap());
    let tokens = tmp.path().join("tokens");
    let token = add_token(&tokens, "alice", Scopes::ALL).unwrap();
    let mut c = Config::new(&dir);
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.tokens = Some(tokens);
    let server = Server::bind(c).unwrap();
    let addr = server.local_addr();
    let log = server.log().unwrap().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = std::thread::spawn(move || {
        server
            .run(async {
                let _ = stopped.await;
            })
            .unwrap()
    });
    let diag = |who: &str, note: &str| {
        format!(r#"{{"type":"diag","actor":"{who}","note":{{"stele.seal":"{note}"}}}}"#)
    };
    let plain = r#"{"type":"plain","n":1}"#;
    let (code, p1) = post_keyed(addr, &token, "k1", plain);
    assert_eq!(code, 200, "{p1}");
    let (code, _) = post_keyed(addr, &token, "k2", &diag("frank", "HIV-POSITIVE"));
    assert_eq!(code, 200);
    let (code, d2) = post_keyed(addr, &token, "k3", &diag("gina", "HIV-POSITIVE"));
    assert_eq!(code, 200, "{d2}");
    // Before: the kept digests answer.
    let (code, body) = post_keyed(addr, &token, "k2", &diag("frank", "HIV-NEGATIVE"));
    assert_eq!(code, 422, "{body}");
    let _ = log.forget(&serde_json::json!("frank"), "test").unwrap();
    // (A chunked body: the receipts are on its second line.)
    let seq: u64 = d2
        .split("\"seq\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let _ = log.redact(seq, "/note", "test").unwrap();
    let size = log.size();
    for (key, who) in [("k2", "frank"), ("k3", "gina")] {
        let answers: Vec<(u16, String)> = ["HIV-POSITIVE", "HIV-NEGATIVE"]
            .into_iter()
            .map(|guess| post_keyed(addr, &token, key, &diag(who, guess)))
            .collect();
        assert_eq!(answers[0], answers[1], "{key}");
        assert_eq!(answers[0].0, 422, "{key}: {}", answers[0].1);
        assert!(
            answers[0].1.contains("forgotten or redacted"),
            "{}",
            answers[0].1
        );
    }
    // A request without sealed values is still told from its entries.
    assert_eq!(post_keyed(addr, &token, "k1", plain), (200, p1));
    let (code, body) = post_keyed(addr, &token, "k1", r#"{"type":"plain","n":2}"#);
    assert_eq!(code, 422, "{body}");
    assert_eq!(log.size(), size);
    stop.send(()).unwrap();
    let _ = running.join().unwrap();
}
