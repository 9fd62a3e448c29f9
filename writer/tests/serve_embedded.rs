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
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
