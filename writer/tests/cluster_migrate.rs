//! `stele migrate` between a log directory and PostgreSQL + S3 (real
//! servers, see cluster/kit.rs) carries what the file log has besides
//! entries and checkpoints: the idempotency keys recorded in the entries (a
//! retry on a front-end after the migration gets the first receipts back),
//! the RFC 3161 tokens (a local OpenSSL TSA) and the witness policy (a
//! witness in process); and back, byte for byte.

mod common;
#[path = "cluster/kit.rs"]
mod kit;
#[path = "common/tsa.rs"]
mod tsa;
#[path = "common/witnesses.rs"]
mod witnesses;

use kit::{Front, Stores, post_keyed, stele, token};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use stele_core::timestamp::TimestampRecord;
use stele_writer::cluster::{Cluster, ClusterOptions};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn migrate_carries_keys_tokens_and_the_witness_policy_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let origin = "example.com/cluster-migrate";
    let (tokens, tok) = token(tmp.path());
    // A file log with a keyed request, served as usual.
    let front = kit::file_front(&dir, origin, &tokens);
    let body = Value::from(vec![
        json!({"type": "t", "i": 1}),
        json!({"type": "t", "i": 2}),
    ])
    .to_string();
    let url = format!("{}/v1/entries", front.url);
    let (first, replayed) = post_keyed(&url, &tok, "order-17", body.as_bytes());
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(!replayed);
    assert!(front.terminate().success());
    let vkey = stele_writer::key::load(&dir.join("key"))
        .unwrap()
        .verifier()
        .to_string();

    // Its witness policy (one witness) and an RFC 3161 token.
    let w = witnesses::start_witness(
        &tmp.path().join("w1"),
        "witness-1.example",
        std::slice::from_ref(&vkey),
        Duration::from_secs(30),
    );
    let policy = tmp.path().join("policy");
    let policy_text = format!(
        "log {vkey}\nwitness w1 {} {}\ngroup main 1 w1\nquorum main\n",
        w.key,
        w.url()
    );
    std::fs::write(&policy, &policy_text).unwrap();
    // One more entry first: the file log's round signs a new size (it does
    // not re-witness the stored checkpoint of the same size).
    let mut append = std::process::Command::new(kit::STELE)
        .args(["append", p(&dir)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = append.stdin.take().unwrap();
        writeln!(stdin, "{{\"type\":\"t\",\"i\":3}}").unwrap();
    }
    assert!(append.wait().unwrap().success());
    let (code, _, err) = stele(&["checkpoint", p(&dir), "--policy", p(&policy)]);
    assert_eq!(code, 0, "{err}");
    let tsa = tsa::Tsa::start(&tmp.path().join("tsa"));
    let (code, _, err) = stele(&[
        "anchor",
        p(&dir),
        "--tsa",
        &format!("{}/good", tsa.url),
        "--ca",
        p(&tsa.ca()),
    ]);
    assert_eq!(code, 0, "{err}");
    let stamps = std::fs::read(dir.join("timestamps")).unwrap();

    // Into PostgreSQL + S3.
    let stores = Stores::new("migrate");
    let (code, _, err) = stele(&["migrate", p(&dir), &stores.db, "--objects", &stores.objects]);
    assert_eq!(code, 0, "{err}");
    let (rt, c) = stores.reader();
    assert_eq!(
        rt.block_on(c.witness_policy()).unwrap().as_deref(),
        Some(policy_text.as_str())
    );
    assert_eq!(
        rt.block_on(c.timestamps()).unwrap(),
        stele_writer::anchor::read(&dir).unwrap()
    );

    // A retry of the request made before the migration, on a front-end:
    // the first receipts, nothing appended.
    let key = tmp.path().join("signing.key");
    let _ = std::fs::copy(dir.join("key"), &key).unwrap();
    let before = rt.block_on(c.sequenced()).unwrap();
    let cf = Front::start(&stores, &key, &tokens, &[]);
    let (again, replayed) = post_keyed(
        &format!("{}/v1/entries", cf.url),
        &tok,
        "order-17",
        body.as_bytes(),
    );
    assert_eq!(again.status, 200, "{}", again.text());
    assert!(replayed, "Idempotent-Replayed: true");
    assert_eq!(again.json(), first.json());
    // Another body under that key is refused, as a restarted file log
    // refuses it (the key's entries are compared): never acknowledged with
    // the old receipts and silently not written.
    for other in [
        Value::from(vec![
            json!({"type": "t", "i": 1}),
            json!({"type": "t", "i": 3}),
        ])
        .to_string(),
        Value::from(vec![json!({"type": "t", "i": 1})]).to_string(),
    ] {
        let (r, replayed) = post_keyed(
            &format!("{}/v1/entries", cf.url),
            &tok,
            "order-17",
            other.as_bytes(),
        );
        assert!(
            r.status == 422 && !replayed,
            "{other}: {} {}",
            r.status,
            r.text()
        );
        assert!(r.text().contains("different body"), "{}", r.text());
    }
    let (again, replayed) = post_keyed(
        &format!("{}/v1/entries", cf.url),
        &tok,
        "order-17",
        body.as_bytes(),
    );
    assert!(again.status == 200 && replayed, "{}", again.text());
    assert_eq!(again.json(), first.json());
    assert_eq!(rt.block_on(c.sequenced()).unwrap(), before);
    drop(cf);

    // The cluster's export carries the token; back into a directory, the
    // tokens file and the policy are the same.
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
    let (code, out, err) = stele(&[
        "verify",
        p(&export),
        "--key",
        &vkey,
        "--tsa-ca",
        p(&tsa.ca()),
        "--policy",
        p(&policy),
        "--json",
    ]);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{err}"));
    assert_eq!(
        (code, &j["verdict"]),
        (0, &Value::from("verified")),
        "{j:#}"
    );
    assert_eq!(j["timestamps"][0]["status"], "ok", "{j:#}");
    assert_eq!(j["quorum"]["met"], true, "{j:#}");
    let back = tmp.path().join("back");
    let (code, _, err) = stele(&["migrate", &stores.db, p(&back), "--signing-key", p(&key)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(back.join("timestamps")).unwrap(), stamps);
    // Every file of the log, byte for byte (the key is named, not copied).
    for f in [
        "entries.jsonl",
        "checkpoints",
        "index",
        "tree",
        "timestamps",
    ] {
        assert!(
            std::fs::read(back.join(f)).unwrap() == std::fs::read(dir.join(f)).unwrap(),
            "{f} differs after the round trip"
        );
    }
    let config: Value =
        serde_json::from_slice(&std::fs::read(back.join("stele.json")).unwrap()).unwrap();
    assert_eq!(
        config["witness_policy"],
        Value::from(policy_text.as_str()),
        "{config}"
    );
    // The directory made back exports what the cluster exported, byte for
    // byte (so it verifies with the same anchors and quorum).
    let export_back = tmp.path().join("back.stele");
    let (code, _, err) = stele(&["export", p(&back), "-o", p(&export_back)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read(&export_back).unwrap() == std::fs::read(&export).unwrap(),
        "the export of the directory made back differs from the cluster's"
    );
    // And it still witnesses under the carried policy: a new checkpoint
    // is cosigned by the witness that cosigned the file log's (it was
    // never told of the cluster, so this also proves one history).
    let mut append = std::process::Command::new(kit::STELE)
        .args(["append", p(&back)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = append.stdin.take().unwrap();
        writeln!(stdin, "{{\"type\":\"t\",\"i\":4}}").unwrap();
    }
    assert!(append.wait().unwrap().success());
    let (code, out, err) = stele(&["checkpoint", p(&back)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\n\u{2014} witness-1.example "),
        "cosigned by witness-1.example: {out}"
    );
    drop(w);
}

#[test]
fn migrate_refuses_a_directory_whose_key_was_rotated_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (code, _, err) = stele(&["init", p(&dir), "--origin", "example.com/rotated"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = stele(&["key", "rotate", p(&dir)]);
    assert_eq!(code, 0, "{err}");
    let stores = Stores::new("migrate_rotated");
    let (code, _, err) = stele(&["migrate", p(&dir), &stores.db, "--objects", &stores.objects]);
    assert_ne!(code, 0);
    assert!(err.contains("rotated"), "{err}");
    assert_eq!(stores.object_count(), 0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(
        rt.block_on(Cluster::open(
            &stores.location(),
            None,
            ClusterOptions::default()
        ))
        .is_err(),
        "the database holds no log"
    );
}

// A cluster export reads its checkpoints a page (64) at a time as it
// reaches them: with more than two pages of them, the whole log, a range
// and a selection are still the bytes the file log they came from exports.
#[test]
fn exports_past_pages_of_checkpoints_are_the_file_logs_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (code, _, err) = stele(&["init", p(&dir), "--origin", "example.com/cluster-cp-pages"]);
    assert_eq!(code, 0, "{err}");
    let size = {
        let log = stele_writer::Log::open(&dir).unwrap();
        for i in 0..150 {
            let _ = log
                .append_batch(vec![json!({"type": "t", "i": i})])
                .unwrap();
            let _ = log.checkpoint().unwrap();
        }
        log.size()
    };
    // Timestamp records on several pages, out of size order, two for some
    // sizes, one for the latest and one for no checkpoint: a cluster export
    // reads each page's with it.
    for (i, size) in [140u64, 3, 70, 151, 2, 70, 1000, 141, 151, 66, 65]
        .into_iter()
        .enumerate()
    {
        let token = vec![i as u8 + 1; 30];
        stele_writer::anchor::append(&dir, &TimestampRecord { size, token }).unwrap();
    }
    let file = {
        let log = stele_writer::Log::open(&dir).unwrap();
        let v = log.view();
        assert!(v.checkpoints().len() > 140, "{}", v.checkpoints().len());
        let mut whole = Vec::new();
        v.export_log(&mut whole, &mut |_| {}).unwrap();
        let mut range = Vec::new();
        v.export_range(10, 140, &mut range, &mut |_| {}).unwrap();
        let mut sel = Vec::new();
        v.export_entries(&[3, 77, 149], &mut sel).unwrap();
        let stamps = |e: &[u8]| {
            e.split(|&b| b == b'\n')
                .filter(|l| l.starts_with(b"timestamp "))
                .count()
        };
        assert_eq!((stamps(&whole), stamps(&range), stamps(&sel)), (10, 7, 2));
        (whole, range, sel)
    };
    let stores = Stores::new("cp_pages");
    let (code, _, err) = stele(&["migrate", p(&dir), &stores.db, "--objects", &stores.objects]);
    assert_eq!(code, 0, "{err}");
    let (rt, c) = stores.reader();
    let collect = |out: &std::sync::Mutex<Vec<u8>>, b: Vec<u8>| {
        out.lock().unwrap().extend_from_slice(&b);
        async { Ok(()) }
    };
    let (whole, range, sel) = Default::default();
    rt.block_on(async {
        c.export_log_with(size, |b| collect(&whole, b))
            .await
            .unwrap();
        c.export_range_with(10, 140, |b| collect(&range, b))
            .await
            .unwrap();
        c.export_entries_with(&[3, 77, 149], |b| collect(&sel, b))
            .await
            .unwrap();
    });
    let got = |m: std::sync::Mutex<Vec<u8>>| m.into_inner().unwrap();
    assert!(
        got(whole) == file.0,
        "the whole log differs from the file log's export"
    );
    assert!(
        got(range) == file.1,
        "the range differs from the file log's export"
    );
    assert!(
        got(sel) == file.2,
        "the selection differs from the file log's export"
    );
}
