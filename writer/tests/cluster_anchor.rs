//! RFC 3161 anchoring on PostgreSQL + S3 (real servers, see cluster/kit.rs;
//! a local OpenSSL TSA, as tests/timestamps.rs runs it): two front-ends
//! with `--tsa` anchor each checkpoint once between them, the tokens live
//! in the database so every front-end's exports carry them, and `stele
//! verify --tsa-ca` checks them (a token from another CA fails).

mod common;
#[path = "cluster/kit.rs"]
mod kit;
#[path = "common/tsa.rs"]
mod tsa;

use kit::{Front, Stores, http, stele, token, wait_for};
use serde_json::{Value, json};
use std::path::Path;
use tsa::Tsa;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn append(front: &Front, tok: &str, n: usize) {
    let body: Vec<Value> = (0..n).map(|i| json!({"type": "t", "i": i})).collect();
    let r = http(
        "POST",
        &format!("{}/v1/entries", front.url),
        Some(tok),
        Some(Value::from(body).to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

fn verify_json(file: &Path, vkey: &str, ca: &Path) -> (i32, Value) {
    let (code, out, err) = stele(&[
        "verify",
        p(file),
        "--key",
        vkey,
        "--tsa-ca",
        p(ca),
        "--json",
    ]);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{err}"));
    (code, j)
}

// The TSA's requests so far (it keeps each query as q<N>.tsq).
fn tsa_requests(tsa: &Tsa) -> usize {
    std::fs::read_dir(&tsa.dir)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            n.starts_with('q') && n.ends_with(".tsq")
        })
        .count()
}

#[test]
fn front_ends_anchor_each_checkpoint_once_and_exports_carry_the_tokens() {
    let stores = Stores::new("anchor");
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let key = tmp.path().join("signing.key");
    let vkey = kit::init(
        &stores.db,
        &stores.objects,
        "example.com/cluster-anchor",
        &key,
    );
    let (tokens, tok) = token(tmp.path());
    let url = format!("{}/good", tsa.url);
    let ca = tsa.ca();
    let args = [
        "--tsa",
        &url,
        "--ca",
        p(&ca),
        "--anchor-every",
        "1s",
        "--checkpoint-interval",
        "1s",
    ];
    let a = Front::start(&stores, &key, &tokens, &args);
    let b = Front::start(&stores, &key, &tokens, &args);
    let (rt, c) = stores.reader();
    append(&a, &tok, 30);
    append(&b, &tok, 30);
    // Both front-ends anchor the latest checkpoint in turn; wait until the
    // checkpoint covering the appends is signed and anchored (nothing is
    // appended after it, so no later checkpoint comes).
    wait_for(
        "a token on the checkpoint covering the appends",
        120,
        || {
            let latest = rt.block_on(c.latest_checkpoint()).unwrap();
            latest.is_some_and(|l| {
                l.checkpoint.size == 61
                    && rt
                        .block_on(c.timestamps())
                        .unwrap()
                        .last()
                        .is_some_and(|t| t.size == 61)
            })
        },
    );
    let stamps = rt.block_on(c.timestamps()).unwrap();
    // Each checkpoint once, and every TSA request kept: no two front-ends
    // asked for one checkpoint (they ask only under the anchoring lock).
    let sizes: Vec<u64> = stamps.iter().map(|t| t.size).collect();
    let mut dedup = sizes.clone();
    dedup.dedup();
    assert_eq!(sizes, dedup);
    assert_eq!(tsa_requests(&tsa), stamps.len(), "{sizes:?}");
    // Either front-end serves the tokens in its exports.
    for f in [&a, &b] {
        let r = http("GET", &format!("{}/v1/export", f.url), Some(&tok), None).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.text().lines().any(|l| l.starts_with("timestamp 61 ")),
            "{}",
            r.text()
        );
    }
    drop(a);
    drop(b);
    let stamps_now = rt.block_on(c.timestamps()).unwrap();

    // A whole-log export (to the latest checkpoint) carries the tokens, and
    // `stele verify --tsa-ca` checks each.
    let export = tmp.path().join("e.stele");
    let (code, _, err) = stele(&[
        "export",
        "--db",
        &stores.db,
        "--objects",
        &stores.objects,
        "-o",
        p(&export),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&export).unwrap();
    let in_export = text.lines().filter(|l| l.starts_with("timestamp ")).count();
    let signed: Vec<u64> = rt
        .block_on(c.checkpoints())
        .unwrap()
        .iter()
        .map(|c| c.checkpoint.size)
        .collect();
    let last = *signed.last().unwrap();
    assert_eq!(
        in_export,
        stamps_now.iter().filter(|t| t.size <= last).count(),
        "{text}"
    );
    let (code, j) = verify_json(&export, &vkey, &ca);
    assert_eq!(
        (code, &j["verdict"]),
        (0, &Value::from("verified")),
        "{j:#}"
    );
    let ts = j["timestamps"].as_array().unwrap();
    assert_eq!(ts.len(), in_export, "{j:#}");
    assert!(ts.iter().all(|t| t["status"] == "ok"), "{j:#}");
    // Against another CA every token fails, naming its checkpoint.
    let (code, j) = verify_json(&export, &vkey, &tsa.dir.join("other-ca.crt"));
    assert_ne!(code, 0, "{j:#}");
    assert_eq!(j["verdict"], "tampered", "{j:#}");
    let ts = j["timestamps"].as_array().unwrap();
    assert!(ts.iter().all(|t| t["status"] != "ok"), "{j:#}");

    // A range export proved in a later checkpoint carries that one's token.
    let (code, _, err) = stele(&[
        "export",
        "--db",
        &stores.db,
        "--objects",
        &stores.objects,
        "-o",
        p(&export),
        "--from",
        "0",
        "--to",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, j) = verify_json(&export, &vkey, &ca);
    assert_eq!(
        (code, &j["verdict"]),
        (0, &Value::from("verified")),
        "{j:#}"
    );
}

#[test]
fn stele_anchor_db_signs_anchors_once_and_refuses_a_token_failing_the_ca() {
    let stores = Stores::new("anchor_cli");
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let key = tmp.path().join("signing.key");
    let vkey = kit::init(
        &stores.db,
        &stores.objects,
        "example.com/cluster-anchor2",
        &key,
    );
    let anchor = |section: &str, ca: &Path| {
        stele(&[
            "anchor",
            "--db",
            &stores.db,
            "--objects",
            &stores.objects,
            "--signing-key",
            p(&key),
            "--tsa",
            &format!("{}/{section}", tsa.url),
            "--ca",
            p(ca),
        ])
    };
    // A token from a TSA of another CA is not kept.
    let (code, _, err) = anchor("other", &tsa.ca());
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("does not verify against --ca"), "{err}");
    let (code, out, err) = anchor("good", &tsa.ca());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("anchored checkpoint 1: existed by "),
        "{out}"
    );
    let (code, out, err) = anchor("good", &tsa.ca());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "checkpoint 1 is already anchored");
    // The signed export carries it; the file log's verifier checks it.
    let export = tmp.path().join("e.stele");
    let (code, _, err) = stele(&[
        "export",
        "--db",
        &stores.db,
        "--objects",
        &stores.objects,
        "-o",
        p(&export),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, j) = verify_json(&export, &vkey, &tsa.ca());
    assert_eq!(
        (code, &j["verdict"]),
        (0, &Value::from("verified")),
        "{j:#}"
    );
    assert_eq!(j["timestamps"][0]["size"], 1, "{j:#}");
    assert_eq!(j["timestamps"][0]["status"], "ok", "{j:#}");
}
