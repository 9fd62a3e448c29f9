//! Witnesses served in process on loopback (C2SP tlog-witness, `stele
//! witness`), for the witness tests of file logs and of PostgreSQL + object
//! storage logs.

#![allow(dead_code)] // reason: each test uses a different part of the kit

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use stele_core::witness::AddError;
use stele_core::witness::CosignerKey;
use stele_writer::serve::witness::{WitnessConfig, WitnessServer};
use stele_writer::witness::{AddFailure, Witness, origin_hash};

/// A witness served on a free loopback port until dropped.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) dir: PathBuf,
    pub(crate) key: CosignerKey,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Running {
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub(crate) fn state(&self, origin: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join("state").join(origin_hash(origin))).ok()
    }
}

pub(crate) fn start_witness(
    dir: &Path,
    name: &str,
    logs: &[String],
    body_timeout: Duration,
) -> Running {
    let key = Witness::init(dir, name).unwrap();
    for l in logs {
        let _ = Witness::add_log(dir, l).unwrap();
    }
    let mut c = WitnessConfig::new(dir);
    c.body_timeout = body_timeout;
    let server = WitnessServer::bind(c).unwrap();
    let addr = server.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        server
            .run(async move {
                let _ = rx.await;
            })
            .unwrap();
    });
    Running {
        addr,
        dir: dir.into(),
        key,
        stop: Some(tx),
        thread: Some(thread),
    }
}

/// A witness that takes a request and answers nothing until released (then
/// a 503): it reports each request it holds on `asked`.
pub(crate) struct Stalled {
    pub(crate) addr: SocketAddr,
    pub(crate) asked: std::sync::mpsc::Receiver<()>,
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stalled {
    pub(crate) fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (asked_tx, asked) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            // Reads the request head (the body follows; it is not needed).
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut b).is_ok_and(|n| n == 1) {
                head.push(b[0]);
            }
            let _ = asked_tx.send(());
            let _ = release_rx.recv();
            let _ = conn.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        });
        Self {
            addr,
            asked,
            release: Some(release),
            thread: Some(thread),
        }
    }

    pub(crate) fn release(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        self.release();
    }
}

/// A witness that checks and records as `stele witness` does (a [`Witness`]
/// on its directory) but answers each cosignature with its line repeated
/// `copies` times: a hostile or broken policy witness. Serves until the
/// test process ends.
pub(crate) struct Flooding {
    pub(crate) addr: SocketAddr,
    pub(crate) key: CosignerKey,
}

impl Flooding {
    pub(crate) fn start(dir: &Path, name: &str, logs: &[String], copies: usize) -> Self {
        let key = Witness::init(dir, name).unwrap();
        for l in logs {
            let _ = Witness::add_log(dir, l).unwrap();
        }
        let w = Witness::open(dir).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _ = std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut b).is_ok_and(|n| n == 1) {
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                if conn.read_exact(&mut body).is_err() {
                    continue;
                }
                let (status, text) = match w.add_checkpoint(&body) {
                    Ok(line) => ("200 OK", line.repeat(copies)),
                    Err(AddFailure::Refused(AddError::Conflict { latest, .. })) => {
                        ("409 Conflict", format!("{latest}\n"))
                    }
                    Err(e) => ("500 Internal Server Error", format!("{e:?}")),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Self { addr, key }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
