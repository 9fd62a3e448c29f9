//! Witnessing end to end (docs/FORMAT.md 14): C2SP tlog-witness's scenarios
//! against `stele witness` (in process, on loopback), hostile requests, and
//! logs that collect cosignatures with `stele checkpoint --policy`, whose
//! exports and tlog-proofs `stele verify --policy` checks, including a
//! split view that can never reach a 2-of-3 quorum.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use stele_core::hash::Hash;
use stele_core::merkle::consistency_proof;
use stele_core::witness::{CosignerKey, add_checkpoint_body};
use stele_tests::TestLog;
use stele_writer::witness::{Witness, origin_hash};

mod common;
#[path = "common/witnesses.rs"]
mod witnesses;
use witnesses::{Flooding, Running, Stalled, start_witness};

/// POSTs a body to /add-checkpoint: status, content type, body.
fn post(w: &Running, body: &[u8]) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut r = agent
        .post(&format!("{}/add-checkpoint", w.url()))
        .send(body)
        .unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        r.status().as_u16(),
        ct,
        r.body_mut().read_to_string().unwrap(),
    )
}

fn log(n: u64) -> TestLog {
    stele_tests::sample_log("example.com/witnessed", n, 1000)
}

fn note(l: &TestLog, size: u64) -> String {
    l.checkpoint_note(size, &l.signer)
}

fn proof(l: &TestLog, old: u64, new: u64) -> Vec<Hash> {
    consistency_proof(&l.tree, old, new).unwrap()
}

/// A witness for `l`'s log that already cosigned its checkpoint of size `first`.
fn witness_at(
    l: &TestLog,
    name: &str,
    first: u64,
    body_timeout: Duration,
) -> (tempfile::TempDir, Running) {
    let tmp = tempfile::tempdir().unwrap();
    let w = start_witness(tmp.path(), name, &[l.key().to_string()], body_timeout);
    let (status, _, body) = post(&w, add_checkpoint_body(0, &[], &note(l, first)).as_bytes());
    assert_eq!(status, 200, "{body}");
    (tmp, w)
}

#[test]
fn the_spec_scenarios_against_our_witness() {
    let tmp = tempfile::tempdir().unwrap();
    let l = log(20);
    let w = start_witness(
        tmp.path(),
        "witness.example/w1",
        &[l.key().to_string()],
        Duration::from_secs(30),
    );
    let origin = l.origin.clone();

    // First checkpoint: old 0, no proof; the answer is one cosignature line.
    let n5 = note(&l, 5);
    let (status, _, body) = post(&w, add_checkpoint_body(0, &[], &n5).as_bytes());
    assert_eq!(status, 200, "{body}");
    let cosigned = stele_core::SignedCheckpoint::parse(format!("{n5}{body}").as_bytes()).unwrap();
    let sig = cosigned
        .note
        .signatures
        .iter()
        .find(|s| w.key.matches(s))
        .unwrap();
    let ts = w
        .key
        .verify(&cosigned.note.text, &sig.signature)
        .expect("cosignature verifies");
    assert!(ts > 1_700_000_000, "timestamp {ts} is now, not zero");
    assert!(
        w.state(&origin)
            .unwrap()
            .starts_with(&n5[..n5.find("\n\n").unwrap()])
    );

    // A later consistent one.
    let n12 = note(&l, 12);
    let (status, _, body) = post(
        &w,
        add_checkpoint_body(5, &proof(&l, 5, 12), &n12).as_bytes(),
    );
    assert_eq!(status, 200, "{body}");

    // A stale old size: 409 with the stored size.
    let (status, ct, body) = post(
        &w,
        add_checkpoint_body(5, &proof(&l, 5, 20), &note(&l, 20)).as_bytes(),
    );
    assert_eq!(
        (status, ct.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "12\n")
    );

    // A bad proof: 422.
    let mut bad = proof(&l, 12, 20);
    bad[0] = Hash([7; 32]);
    let (status, _, body) = post(&w, add_checkpoint_body(12, &bad, &note(&l, 20)).as_bytes());
    assert_eq!(status, 422, "{body}");

    // The same size with another root: 409 with that size (C2SP
    // tlog-witness: "If they don't match, the witness MUST respond with a
    // 409 Conflict").
    let forged_root = stele_core::Checkpoint {
        origin: origin.clone(),
        size: 12,
        root: Hash([9; 32]),
        extensions: vec![],
    }
    .sign(&l.signer)
    .unwrap();
    let (status, ct, body) = post(&w, add_checkpoint_body(12, &[], &forged_root).as_bytes());
    assert_eq!(
        (status, ct.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "12\n")
    );

    // An unknown log: 404.
    let stranger = stele_tests::sample_log("example.com/stranger", 3, 1000);
    let (status, _, _) = post(
        &w,
        add_checkpoint_body(0, &[], &note(&stranger, 3)).as_bytes(),
    );
    assert_eq!(status, 404);

    // A known origin signed by an unknown key: 403.
    let mut impostor = log(20);
    impostor.signer = stele_core::SignerKey::from_seed(&origin, [77; 32]).unwrap();
    let (status, _, _) = post(
        &w,
        add_checkpoint_body(12, &proof(&l, 12, 20), &note(&impostor, 20)).as_bytes(),
    );
    assert_eq!(status, 403);
    // ... and a note whose trusted key's signature does not verify: 403.
    let tampered = note(&l, 20).replacen("\n20\n", "\n19\n", 1);
    let (status, _, _) = post(
        &w,
        add_checkpoint_body(12, &proof(&l, 12, 19), &tampered).as_bytes(),
    );
    assert_eq!(status, 403);
    // old larger than the checkpoint: 400.
    let (status, _, _) = post(&w, add_checkpoint_body(13, &[], &note(&l, 12)).as_bytes());
    assert_eq!(status, 400);

    // None of the refusals moved the state.
    let state = stele_core::SignedCheckpoint::parse(w.state(&origin).unwrap().as_bytes()).unwrap();
    assert_eq!(state.checkpoint.size, 12);

    // Monitoring: GET /<origin hash>/checkpoint serves it with our cosignature.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .get(&format!("{}/{}/checkpoint", w.url(), origin_hash(&origin)))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let served = r.body_mut().read_to_string().unwrap();
    let sc = stele_core::SignedCheckpoint::parse(served.as_bytes()).unwrap();
    assert!(sc.note.signatures.iter().any(|s| w.key.matches(s)));
    assert!(sc.verify(&[l.key()]).trusted());
    let r = agent
        .get(&format!("{}/{}/checkpoint", w.url(), origin_hash("nope")))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[test]
fn concurrent_calls_for_one_log_exactly_one_wins_each_size() {
    let l = log(40);
    let (_tmp, w) = witness_at(&l, "witness.example/w2", 4, Duration::from_secs(30));
    let mut old = 4;
    for round in 0..3u64 {
        // Eight clients extend the same stored size to eight different sizes.
        let sizes: Vec<u64> = (1..=8).map(|k| old + k + round).collect();
        let results: Vec<(u64, u16, String)> = std::thread::scope(|s| {
            let hs: Vec<_> = sizes
                .iter()
                .map(|&n| {
                    let (w, l) = (&w, &l);
                    s.spawn(move || {
                        let (st, _, body) = post(
                            w,
                            add_checkpoint_body(old, &proof(l, old, n), &note(l, n)).as_bytes(),
                        );
                        (n, st, body)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<u64> = results.iter().filter(|r| r.1 == 200).map(|r| r.0).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let won = winners[0];
        for (n, st, body) in &results {
            if *n != won {
                assert_eq!(
                    (*st, body.as_str()),
                    (409, format!("{won}\n").as_str()),
                    "size {n}"
                );
            }
        }
        let state =
            stele_core::SignedCheckpoint::parse(w.state(&l.origin).unwrap().as_bytes()).unwrap();
        assert_eq!(state.checkpoint.size, won);
        old = won;
    }
}

#[test]
fn bad_input_gets_a_clear_4xx_and_stores_nothing() {
    let l = log(20);
    let (_tmp, w) = witness_at(&l, "witness.example/w3", 5, Duration::from_secs(2));
    let before = w.state(&l.origin).unwrap();
    let n10 = note(&l, 10);
    let mut cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("oversized body", vec![b'a'; 40 * 1024], 413),
        (
            "64 proof lines",
            add_checkpoint_body(5, &[Hash([1; 32]); 64], &n10).into_bytes(),
            400,
        ),
        ("no empty line", b"old 5\n".to_vec(), 400),
        (
            "malformed note",
            format!("old 5\n\n{}", n10.replace('\u{2014}', "-")).into_bytes(),
            400,
        ),
        (
            "note without signatures",
            format!("old 5\n\n{}", &n10[..n10.find("\n\n").unwrap() + 2]).into_bytes(),
            400,
        ),
        (
            "huge old size",
            format!("old 99999999999999999999999\n\n{n10}").into_bytes(),
            400,
        ),
        (
            "old with a leading zero",
            format!("old 05\n\n{n10}").into_bytes(),
            400,
        ),
        ("binary", vec![0xff, 0xfe, 0, 1, b'\n', b'\n'], 400),
    ];
    // A checkpoint of the largest size with a proof of the wrong length.
    let huge = stele_core::Checkpoint {
        origin: l.origin.clone(),
        size: u64::MAX,
        root: Hash([3; 32]),
        extensions: vec![],
    }
    .sign(&l.signer)
    .unwrap();
    cases.push((
        "size 2^64-1",
        add_checkpoint_body(5, &[Hash([1; 32])], &huge).into_bytes(),
        422,
    ));
    for (what, body, want) in cases {
        let (status, _, text) = post(&w, &body);
        assert_eq!(status, want, "{what}: {text}");
        assert!(!text.trim().is_empty(), "{what}: the refusal says why");
        assert_eq!(
            w.state(&l.origin).unwrap(),
            before,
            "{what}: state unchanged"
        );
    }
    // A client that sends half its body and stalls: 408 within the body
    // timeout (2 s), and nothing stored.
    let body = add_checkpoint_body(5, &proof(&l, 5, 10), &n10);
    let mut s = TcpStream::connect(w.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body.as_bytes()[..body.len() / 2]).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(w.state(&l.origin).unwrap(), before);
    // The witness still works.
    assert_eq!(post(&w, body.as_bytes()).0, 200);
}

// ---- logs collecting cosignatures (the CLI) ----

fn stele(args: &[&str]) -> Output {
    common::bounded_output(Command::new(env!("CARGO_BIN_EXE_stele")).args(args), None)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

struct Three {
    ws: Vec<Running>,
    _tmp: tempfile::TempDir,
}

fn three_witnesses(log_key: &str) -> Three {
    let tmp = tempfile::tempdir().unwrap();
    let ws = (1..=3)
        .map(|i| {
            let d = tmp.path().join(format!("w{i}"));
            start_witness(
                &d,
                &format!("witness-{i}.example"),
                &[log_key.to_string()],
                Duration::from_secs(30),
            )
        })
        .collect();
    Three { ws, _tmp: tmp }
}

fn policy_file(path: &Path, log_key: &str, ws: &[(&Running, bool)], quorum: &str) {
    let mut s = format!("log {log_key}\n");
    let mut names = Vec::new();
    for (i, (w, with_url)) in ws.iter().enumerate() {
        let url = if *with_url { w.url() } else { String::new() };
        s.push_str(&format!("witness w{} {} {url}\n", i + 1, w.key));
        names.push(format!("w{}", i + 1));
    }
    s.push_str(&format!(
        "group main {quorum} {}\nquorum main\n",
        names.join(" ")
    ));
    std::fs::write(path, s).unwrap();
}

fn append(dir: &Path, n: usize, tag: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stele"))
        .args(["append", p(dir), "--checkpoint-every", "1000000"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..n {
        writeln!(stdin, "{{\"action\":\"{tag}\",\"i\":{i}}}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

fn verify_json(file: &Path, key: &str, policy: &Path) -> (i32, Value) {
    let out = stele(&[
        "verify",
        p(file),
        "--key",
        key,
        "--policy",
        p(policy),
        "--json",
    ]);
    let j: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), j)
}

/// A new log (`stele init`), three witnesses that trust it, and a 2-of-3
/// policy file naming them: (temporary directory, log, vkey, witnesses, policy).
fn witnessed_log(origin: &str) -> (tempfile::TempDir, PathBuf, String, Three, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let key = ok(&stele(&["init", p(&dir), "--origin", origin]))
        .trim()
        .to_string();
    let three = three_witnesses(&key);
    let policy = tmp.path().join("policy");
    let refs: Vec<(&Running, bool)> = three.ws.iter().map(|w| (w, true)).collect();
    policy_file(&policy, &key, &refs, "2");
    (tmp, dir, key, three, policy)
}

/// `stele verify FILE --policy` exits 0 with the quorum met.
fn verified_with_quorum(file: &Path, key: &str, policy: &Path) {
    let (code, j) = verify_json(file, key, policy);
    assert_eq!(
        (code, &j["quorum"]["met"]),
        (0, &Value::from(true)),
        "{j:#}"
    );
}

/// `stele export DIR -o FILE` (no --policy), which `stele verify --policy`
/// finds verified with the quorum met: the report.
fn export_verified(dir: &Path, file: &Path, key: &str, policy: &Path) -> Value {
    let _ = ok(&stele(&["export", p(dir), "-o", p(file)]));
    let (code, j) = verify_json(file, key, policy);
    assert_eq!(
        (code, &j["verdict"], &j["quorum"]["met"]),
        (0, &Value::from("verified"), &Value::from(true)),
        "{j:#}"
    );
    j
}

#[test]
fn a_log_publishes_only_checkpoints_its_quorum_cosigned() {
    let (tmp, dir, key, three, policy) = witnessed_log("example.com/witnessed-log");

    append(&dir, 30, "a");
    let note = ok(&stele(&["checkpoint", p(&dir), "--policy", p(&policy)]));
    assert_eq!(
        note.matches('\u{2014}').count(),
        4,
        "the log's signature and three cosignatures:\n{note}"
    );
    append(&dir, 10, "b");
    // A second round: the witnesses are at size 31 and get a consistency proof.
    let note = ok(&stele(&["checkpoint", p(&dir), "--policy", p(&policy)]));
    assert!(note.contains("\n41\n"), "{note}");

    // The monitor with the policy: the latest checkpoint is witnessed.
    let state = tmp.path().join("monitor.state");
    let monitor = || {
        let args = [
            "monitor",
            p(&dir),
            "--key",
            &key,
            "--policy",
            p(&policy),
            "--state",
            p(&state),
            "--once",
        ];
        stele(&args)
    };
    let m = monitor();
    assert_eq!(
        m.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&m.stderr)
    );

    // The export and a tlog-proof carry the cosigned checkpoint.
    let export = tmp.path().join("e.stele");
    let j = export_verified(&dir, &export, &key, &policy);
    assert_eq!(j["quorum"]["size"], 41);
    assert_eq!(
        j["quorum"]["cosigned_by"],
        serde_json::json!(["w1", "w2", "w3"])
    );
    let tp = tmp.path().join("e.tlog-proof");
    let proof = ok(&stele(&[
        "prove",
        "inclusion",
        p(&dir),
        "--index",
        "7",
        "--size",
        "41",
        "--format",
        "tlog-proof",
    ]));
    std::fs::write(&tp, proof).unwrap();
    verified_with_quorum(&tp, &key, &policy);

    // The reads signed checkpoints for their access records: the log
    // remembers its policy, so those were witnessed too.
    let m = monitor();
    assert_eq!(
        m.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&m.stderr)
    );

    // One witness down: two of three still cosign.
    let mut ws = three.ws;
    let down = ws.remove(2);
    drop(down);
    append(&dir, 5, "c");
    let size = stele_writer::View::open_read_only(&dir).unwrap().size();
    let note = ok(&stele(&["checkpoint", p(&dir), "--policy", p(&policy)]));
    assert!(note.contains(&format!("\n{size}\n")), "{note}");
    assert_eq!(note.matches('\u{2014}').count(), 3);

    // Two down: not published, exit 1 naming the witnesses that failed;
    // the entries are durable, the previous checkpoint stays the latest.
    let down = ws.remove(1);
    drop(down);
    append(&dir, 5, "d");
    let out = stele(&["checkpoint", p(&dir), "--policy", p(&policy)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("quorum main is not met")
            && err.contains("w2:")
            && err.contains("w3:")
            && !err.contains("w1:"),
        "{err}"
    );
    let view = stele_writer::View::open_read_only(&dir).unwrap();
    assert_eq!(view.size(), size + 5, "the entries are durable");
    assert_eq!(
        view.latest_checkpoint().unwrap().checkpoint.size,
        size,
        "the published checkpoint is the previous one"
    );
    let _ = ok(&stele(&[
        "export",
        p(&dir),
        "-o",
        p(&export),
        "--from",
        "0",
        "--to",
        &size.to_string(),
    ]));
    // A whole-log export stops at the published checkpoint and says why.
    let out = stele(&["export", p(&dir), "-o", p(&export)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("quorum main is not met") && err.contains("latest published checkpoint"),
        "{err}"
    );
    // The hint is not `stele checkpoint` now, which fails the same way.
    assert!(
        err.contains("export again once the witnesses answer")
            && !err.contains("hint: run `stele checkpoint"),
        "{err}"
    );
    let (code, j) = verify_json(&export, &key, &policy);
    assert_eq!(
        (code, &j["quorum"]["size"]),
        (0, &Value::from(size)),
        "{j:#}"
    );
    let view = stele_writer::View::open_read_only(&dir).unwrap();
    assert_eq!(view.latest_checkpoint().unwrap().checkpoint.size, size);

    // --forget-policy: the log signs without witnesses again.
    let note = ok(&stele(&["checkpoint", p(&dir), "--forget-policy"]));
    assert_eq!(note.matches('\u{2014}').count(), 1, "{note}");
    let config = std::fs::read_to_string(dir.join("stele.json")).unwrap();
    assert!(!config.contains("witness_policy"), "{config}");
}

#[test]
fn a_witnessed_log_remembers_its_policy_and_reads_carry_the_quorum() {
    let (tmp, dir, key, _three, policy) = witnessed_log("example.com/remembered");
    // An unwitnessed checkpoint first: the policy comes later.
    append(&dir, 5, "a");
    let note = ok(&stele(&["checkpoint", p(&dir)]));
    assert_eq!(note.matches('\u{2014}').count(), 1, "{note}");
    // The same tree, signed again and cosigned: printed and stored as the
    // latest, never the earlier note without the quorum (red-team: the
    // round threw the cosigned note away, being no larger).
    let witnessed = ok(&stele(&["checkpoint", p(&dir), "--policy", p(&policy)]));
    assert!(witnessed.contains("\n6\n"), "{witnessed}");
    assert_eq!(witnessed.matches('\u{2014}').count(), 4, "{witnessed}");
    let stored = std::fs::read_to_string(dir.join("checkpoints")).unwrap();
    assert!(
        stored.trim_end().ends_with(witnessed.trim_end()),
        "{stored}"
    );
    let config = std::fs::read_to_string(dir.join("stele.json")).unwrap();
    assert!(config.contains("\"witness_policy\""), "{config}");

    // Later checkpoints need no --policy: the log asks its witnesses.
    append(&dir, 7, "b");
    let note = ok(&stele(&["checkpoint", p(&dir)]));
    assert!(note.contains("\n13\n"), "{note}");
    assert_eq!(note.matches('\u{2014}').count(), 4, "{note}");

    // An export and a tlog-proof made without --policy, of entries not yet
    // in a checkpoint, verify with the policy out of the box.
    append(&dir, 4, "c");
    let export = tmp.path().join("e.stele");
    let j = export_verified(&dir, &export, &key, &policy);
    assert_eq!(j["quorum"]["size"], 17, "{j:#}");
    append(&dir, 2, "d");
    let proof = ok(&stele(&[
        "prove",
        "inclusion",
        p(&dir),
        "--index",
        "18",
        "--format",
        "tlog-proof",
    ]));
    let tp = tmp.path().join("e.tlog-proof");
    std::fs::write(&tp, proof).unwrap();
    verified_with_quorum(&tp, &key, &policy);
    // Every checkpoint stored since the policy carries the quorum, the
    // newest included (the reads' access records were witnessed too).
    let view = stele_writer::View::open_read_only(&dir).unwrap();
    let unwitnessed = |c: &&stele_writer::StoredCheckpoint| c.note.matches('\u{2014}').count() == 1;
    let cps: Vec<_> = view.checkpoints().iter().skip_while(unwitnessed).collect();
    assert!(cps.len() >= 5, "{}", cps.len());
    for c in cps {
        assert!(
            c.note.matches('\u{2014}').count() >= 3,
            "checkpoint {} lacks the quorum:\n{}",
            c.checkpoint.size,
            c.note
        );
    }
    assert_eq!(
        view.latest_checkpoint().unwrap().checkpoint.size,
        view.size()
    );
    drop(view);
    // A key rotation warns that the witnesses must be told the new key
    // (they trust the keys their operators list).
    let out = stele(&["key", "rotate", p(&dir)]);
    let new_key = ok(&out).trim().to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: this log is witnessed")
            && err.contains(&format!(
                "stele witness add-log WITNESS_DIR --key {new_key}"
            )),
        "{err}"
    );
}

/// `stele init DIR --origin example.com/split --key-file KEY`: the vkey.
fn init_with_key(dir: &Path, keyfile: &Path) -> String {
    let out = stele(&[
        "init",
        p(dir),
        "--origin",
        "example.com/split",
        "--key-file",
        p(keyfile),
    ]);
    ok(&out).trim().to_string()
}

#[test]
fn a_split_view_never_reaches_a_two_of_three_quorum() {
    let tmp = tempfile::tempdir().unwrap();
    let keyfile = tmp.path().join("log.key");
    let honest = tmp.path().join("honest");
    let key = init_with_key(&honest, &keyfile);
    let three = three_witnesses(&key);
    let (w1, w2, w3) = (&three.ws[0], &three.ws[1], &three.ws[2]);
    let policy = tmp.path().join("policy");
    policy_file(&policy, &key, &[(w1, true), (w2, true), (w3, true)], "2");
    // The honest history is cosigned by w1 and w2 (w3 is not reachable then).
    let only12 = tmp.path().join("only12");
    policy_file(&only12, &key, &[(w1, true), (w2, true)], "all");
    append(&honest, 10, "honest");
    let _ = ok(&stele(&["checkpoint", p(&honest), "--policy", p(&only12)]));

    // The key holder builds a second tree of the same origin with the same key.
    let forked = tmp.path().join("forked");
    let key2 = init_with_key(&forked, &keyfile);
    assert_eq!(key, key2);
    append(&forked, 10, "forked");
    // w1 and w2 refuse it: they cosigned the other tree of the same size,
    // so each answers 409 naming the size sent, which ends its request (no
    // re-sending of the same size) with the reason.
    let out = stele(&["checkpoint", p(&forked), "--policy", p(&policy)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("w1:") && err.contains("w2:") && err.contains("cosigned by w3"),
        "{err}"
    );
    assert_eq!(
        err.matches("cosigned a tree of size 11 with another root")
            .count(),
        2,
        "{err}"
    );
    for w in [w1, w2] {
        let st =
            stele_core::SignedCheckpoint::parse(w.state("example.com/split").unwrap().as_bytes())
                .unwrap();
        let h = stele_writer::View::open_read_only(&honest).unwrap();
        assert_eq!(
            st.checkpoint.root,
            h.latest_checkpoint().unwrap().checkpoint.root,
            "{} kept the honest tree",
            w.url()
        );
    }
    // The most the key holder can show: its tree cosigned by w3 alone.
    let only3 = tmp.path().join("only3");
    policy_file(&only3, &key, &[(w3, true)], "1");
    let _ = ok(&stele(&["checkpoint", p(&forked), "--policy", p(&only3)]));
    let export = tmp.path().join("forked.stele");
    let _ = ok(&stele(&["export", p(&forked), "-o", p(&export)]));
    let (code, j) = verify_json(&export, &key, &policy);
    assert_eq!(code, 1);
    assert_eq!(j["verdict"], "tampered");
    let f = j["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "quorum_not_met")
        .expect("quorum_not_met");
    assert!(
        f["message"].as_str().unwrap().contains("quorum main"),
        "{f}"
    );
    assert_eq!(j["quorum"]["cosigned_by"], serde_json::json!(["w3"]));
    // The honest export meets it.
    let hexport = tmp.path().join("honest.stele");
    let _ = ok(&stele(&["export", p(&honest), "-o", p(&hexport)]));
    assert_eq!(verify_json(&hexport, &key, &policy).0, 0);
    // Text output names the quorum.
    let out = stele(&["verify", p(&export), "--policy", p(&policy)]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("witness quorum main: NOT MET, cosigned by w3")
    );
}

#[test]
fn witness_cli_init_add_log_and_key_mode() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("w");
    let vkey = ok(&stele(&[
        "witness",
        "init",
        p(&d),
        "--name",
        "witness.example/cli",
    ]));
    let k = CosignerKey::parse(vkey.trim()).unwrap();
    assert_eq!(k.name(), "witness.example/cli");
    let mode = std::fs::metadata(d.join("key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!vkey.contains("PRIVATE"));
    let again = stele(&["witness", "init", p(&d), "--name", "witness.example/cli"]);
    assert_eq!(again.status.code(), Some(2));
    let l = log(1);
    let _ = ok(&stele(&[
        "witness",
        "add-log",
        p(&d),
        "--key",
        &l.key().to_string(),
    ]));
    let _ = ok(&stele(&[
        "witness",
        "add-log",
        p(&d),
        "--key",
        &l.key().to_string(),
    ]));
    assert_eq!(
        std::fs::read_to_string(d.join("logs")).unwrap(),
        format!("{}\n", l.key())
    );
    let bad = stele(&["witness", "add-log", p(&d), "--key", "nonsense"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// The shared witness vectors (tests/vectors/witness) through `stele verify --policy`.
#[test]
fn the_witness_vectors_through_the_cli() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/witness");
    let policy = dir.join("2-of-3.policy");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "expect") {
            continue;
        }
        n += 1;
        let expect =
            stele_tests::kit::parse_expect(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let data = ["stele", "tlog-proof"]
            .iter()
            .map(|x| dir.join(format!("{stem}.{x}")))
            .find(|f| f.exists())
            .unwrap();
        // The policy's log line pins the key: no --key.
        let out = stele(&["verify", p(&data), "--policy", p(&policy), "--json"]);
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(j["verdict"], expect.verdict.as_str(), "{stem}: {j:#}");
        assert_eq!(
            out.status.code(),
            Some(i32::from(expect.verdict != "verified")),
            "{stem}"
        );
        for (code, entry) in &expect.failures {
            assert!(
                j["failures"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["code"] == code.as_str() && f["entry"] == serde_json::json!(entry)),
                "{stem}: {code}"
            );
        }
        assert_eq!(
            j["quorum"]["met"],
            expect.quorum.as_deref() == Some("met"),
            "{stem}"
        );
    }
    assert!(n >= 8, "{n} vectors");
}

/// The library hook `stele serve --policy` uses: automatic checkpoints
/// (every N entries) are witnessed before they are stored; when the quorum
/// fails, appends still succeed and nothing unwitnessed is published.
#[test]
fn automatic_checkpoints_are_witnessed_and_appends_survive_a_quorum_failure() {
    use std::sync::Arc;
    use stele_writer::witness::{ClientOptions, PolicyCosigner};
    use stele_writer::{Log, LogOptions};
    let tmp = tempfile::tempdir().unwrap();
    let signer = stele_core::SignerKey::from_seed("example.com/auto", [5; 32]).unwrap();
    let key = signer.verifier().to_string();
    let three = three_witnesses(&key);
    let policy = tmp.path().join("policy");
    let refs: Vec<(&Running, bool)> = three.ws.iter().map(|w| (w, true)).collect();
    policy_file(&policy, &key, &refs, "2");
    let cosigner = PolicyCosigner::new(
        PolicyCosigner::load_policy(&policy).unwrap(),
        ClientOptions {
            timeout: Duration::from_secs(10),
            retries: 0,
        },
    );
    let opts = LogOptions {
        checkpoint_every: Some(10),
        checkpoint_interval: None,
        cosign: Some(Arc::new(cosigner)),
        ..LogOptions::default()
    };
    let dir = tmp.path().join("log");
    let log = Log::create_with(&dir, "example.com/auto", &signer, None, opts).unwrap();
    for i in 0..25 {
        let _ = log.append(serde_json::json!({"i": i})).unwrap();
    }
    // The rounds run on the log's own thread: wait for one that covers all
    // but fewer than 10 entries (the last append made one due if needed).
    let latest = wait_for(|| {
        log.view()
            .latest_checkpoint()
            .filter(|c| c.checkpoint.size > 16)
            .cloned()
    });
    assert_eq!(
        latest.note.matches('\u{2014}').count(),
        4,
        "{}",
        latest.note
    );
    // An explicit checkpoint waits for a round under way, then covers all.
    assert_eq!(log.checkpoint().unwrap().checkpoint.size, 26);
    // Two witnesses stop: the next automatic checkpoint is not published,
    // the appends succeed.
    let mut ws = three.ws;
    drop(ws.remove(2));
    drop(ws.remove(1));
    for i in 25..40 {
        let _ = log.append(serde_json::json!({"i": i})).unwrap();
    }
    let e = log.checkpoint().unwrap_err();
    let view = log.view();
    assert_eq!(view.size(), 41);
    assert_eq!(view.latest_checkpoint().unwrap().checkpoint.size, 26);
    assert!(matches!(e, stele_writer::Error::Witness(_)), "{e}");
    assert!(e.to_string().contains("not met"), "{e}");
    for c in view.checkpoints() {
        if c.checkpoint.size > 1 {
            assert!(
                c.note.matches('\u{2014}').count() >= 3,
                "size {} is witnessed",
                c.checkpoint.size
            );
        }
    }
}

/// Polls `f` until it gives a value (a generous bound, no fixed sleeps as
/// synchronisation: the loaded test machine may be slow).
fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let until = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < until,
            "condition not reached in 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn appends_go_on_while_a_witness_is_stalled() {
    use std::sync::Arc;
    use stele_writer::witness::{ClientOptions, PolicyCosigner};
    use stele_writer::{Log, LogOptions};
    let tmp = tempfile::tempdir().unwrap();
    let signer = stele_core::SignerKey::from_seed("example.com/stalled", [6; 32]).unwrap();
    let key = signer.verifier().to_string();
    let two = tempfile::tempdir().unwrap();
    let ws: Vec<Running> = (1..=2)
        .map(|i| {
            start_witness(
                &two.path().join(format!("w{i}")),
                &format!("witness-{i}.example"),
                std::slice::from_ref(&key),
                Duration::from_secs(30),
            )
        })
        .collect();
    let mut stalled = Stalled::start();
    let stalled_key = Witness::init(&tmp.path().join("w3"), "witness-3.example").unwrap();
    let policy = format!(
        "log {key}\nwitness w1 {} {}\nwitness w2 {} {}\nwitness w3 {stalled_key} http://{}\ngroup main 2 w1 w2 w3\nquorum main\n",
        ws[0].key,
        ws[0].url(),
        ws[1].key,
        ws[1].url(),
        stalled.addr
    );
    // The stalled witness's request outlasts every wait below.
    let cosigner = PolicyCosigner::from_text(
        &policy,
        ClientOptions {
            timeout: Duration::from_secs(900),
            retries: 0,
        },
    )
    .unwrap();
    let opts = LogOptions {
        checkpoint_every: None,
        checkpoint_interval: None,
        ..LogOptions::default()
    };
    let dir = tmp.path().join("log");
    // Made without witnesses (its first checkpoint would be a round).
    drop(Log::create_with(&dir, "example.com/stalled", &signer, None, opts.clone()).unwrap());
    let opts = LogOptions {
        cosign: Some(Arc::new(cosigner)),
        ..opts
    };
    let log = Log::open_with(&dir, opts).unwrap();
    for i in 0..5 {
        let _ = log.append(serde_json::json!({"i": i})).unwrap();
    }
    std::thread::scope(|s| {
        let round = s.spawn(|| log.checkpoint());
        // The round has signed size 6 and is waiting for witness 3.
        stalled
            .asked
            .recv_timeout(Duration::from_secs(120))
            .expect("the stalled witness is asked");
        let (done_tx, done) = std::sync::mpsc::channel();
        let log = &log;
        let appender = s.spawn(move || {
            for i in 5..25 {
                let _ = log.append(serde_json::json!({"i": i})).unwrap();
            }
            let _ = done_tx.send(log.size());
        });
        let appended = done.recv_timeout(Duration::from_secs(120));
        let round_waiting = !round.is_finished();
        let latest = log.view().latest_checkpoint().map(|c| c.checkpoint.size);
        // Released before any assertion, so that a failure does not hang.
        stalled.release();
        assert_eq!(
            appended.expect("the appends completed while the witness was stalled"),
            26
        );
        assert!(round_waiting, "the round was still waiting for witness 3");
        assert_eq!(latest, Some(1), "nothing published before the quorum");
        appender.join().unwrap();
        let published = round.join().unwrap().unwrap();
        // What was signed before the stall is what was published: the
        // entries appended during the round wait for the next one.
        assert_eq!(published.checkpoint.size, 6);
        assert_eq!(
            published.note.matches('\u{2014}').count(),
            3,
            "the log and two witnesses:\n{}",
            published.note
        );
    });
    let view = log.view();
    assert_eq!(view.size(), 26);
    assert_eq!(view.latest_checkpoint().unwrap().checkpoint.size, 6);
    drop(ws);
}

#[test]
fn serve_without_policy_witnesses_a_log_that_remembers_one() {
    use std::io::BufRead as _;
    let (tmp, dir, key, _three, policy) = witnessed_log("example.com/served");
    let _ = ok(&stele(&["checkpoint", p(&dir), "--policy", p(&policy)]));
    let tokens = tmp.path().join("tokens");
    let token = ok(&stele(&["token", "add", p(&tokens), "alice"]))
        .trim()
        .to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stele"))
        .args(["serve", p(&dir), "--listen", "127.0.0.1:0", "--tokens"])
        .arg(&tokens)
        .args(["--checkpoint-every", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    let _ = std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _child = Kill(child);
    let url = line
        .trim()
        .strip_prefix("stele serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let auth = format!("Bearer {token}");
    for i in 0..12 {
        let r = agent
            .post(&format!("{url}/v1/entries"))
            .header("authorization", &auth)
            .send(format!("{{\"actor\":\"a\",\"action\":\"x{i}\"}}").as_bytes())
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // The automatic checkpoints, signed with no --policy, carry the quorum.
    let note = wait_for(|| {
        let mut r = agent
            .get(&format!("{url}/checkpoint"))
            .header("authorization", &auth)
            .call()
            .ok()?;
        let text = r.body_mut().read_to_string().ok()?;
        let size: u64 = text.lines().nth(1)?.parse().ok()?;
        (size >= 13).then_some(text)
    });
    assert_eq!(note.matches('\u{2014}').count(), 4, "{note}");
    let export = tmp.path().join("served.stele");
    drop(_child);
    let _ = export_verified(&dir, &export, &key, &policy);
}

#[test]
fn a_round_cut_short_stores_nothing_and_the_next_round_resyncs_the_witnesses() {
    let (tmp, dir, key, three, _) = witnessed_log("example.com/cut");
    let origin = "example.com/cut";
    let mut stalled = Stalled::start();
    let stalled_key = Witness::init(&tmp.path().join("w3"), "witness-3.example").unwrap();
    let policy = tmp.path().join("policy-stalled");
    std::fs::write(
        &policy,
        format!(
            "log {key}\nwitness w1 {} {}\nwitness w2 {} {}\nwitness w3 {stalled_key} http://{}\ngroup main 2 w1 w2 w3\nquorum main\n",
            three.ws[0].key,
            three.ws[0].url(),
            three.ws[1].key,
            three.ws[1].url(),
            stalled.addr
        ),
    )
    .unwrap();
    append(&dir, 5, "a");
    // A round that w1 and w2 answer while w3 holds it; the writer is killed
    // before it stores anything (as a crash would).
    let mut child = Command::new(env!("CARGO_BIN_EXE_stele"))
        .args(["checkpoint", p(&dir), "--policy", p(&policy)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    stalled
        .asked
        .recv_timeout(Duration::from_secs(120))
        .expect("the stalled witness is asked");
    let cosigned = |w: &Running| w.state(origin).is_some_and(|s| s.contains("\n6\n"));
    wait_for(|| (cosigned(&three.ws[0]) && cosigned(&three.ws[1])).then_some(()));
    let _ = child.kill();
    let _ = child.wait();
    stalled.release();
    let view = stele_writer::View::open_read_only(&dir).unwrap();
    assert_eq!(view.size(), 6);
    assert_eq!(
        view.latest_checkpoint().unwrap().checkpoint.size,
        1,
        "nothing stored by the round cut short"
    );
    // The witnesses are at 6, the log's latest is 1: the next round (with
    // the remembered policy, no --policy) gets 409s and re-sends from 6.
    append(&dir, 3, "b");
    let note = ok(&stele(&["checkpoint", p(&dir)]));
    assert!(note.contains("\n9\n"), "{note}");
    assert_eq!(
        note.matches('\u{2014}').count(),
        3,
        "the log, w1 and w2:\n{note}"
    );
    let export = tmp.path().join("cut.stele");
    let _ = export_verified(&dir, &export, &key, &policy);
    let sizes: Vec<u64> = stele_writer::View::open_read_only(&dir)
        .unwrap()
        .checkpoints()
        .iter()
        .map(|c| c.checkpoint.size)
        .collect();
    assert!(!sizes.contains(&6), "{sizes:?}");
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
}

/// A policy witness answering 99 copies of its valid line (C2SP
/// tlog-witness lets a witness answer several lines) once made the log store
/// a note of 101 signatures, which no reader takes (core's MAX_SIGNATURES):
/// every later append, fsck and verify failed. One line per witness is kept.
#[test]
fn a_witness_answering_copies_of_its_line_cannot_break_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let key = ok(&stele(&["init", p(&dir), "--origin", "example.com/flood"]))
        .trim()
        .to_string();
    let honest = start_witness(
        &tmp.path().join("honest"),
        "witness-1.example",
        std::slice::from_ref(&key),
        Duration::from_secs(30),
    );
    let evil = Flooding::start(
        &tmp.path().join("evil"),
        "witness-2.example",
        std::slice::from_ref(&key),
        99,
    );
    let policy = tmp.path().join("policy");
    std::fs::write(
        &policy,
        format!(
            "log {key}\nwitness honest {} {}\nwitness evil {} {}\nquorum honest\n",
            honest.key,
            honest.url(),
            evil.key,
            evil.url()
        ),
    )
    .unwrap();
    append(&dir, 3, "a");
    let note = ok(&stele(&["checkpoint", p(&dir), "--policy", p(&policy)]));
    let sc = stele_core::SignedCheckpoint::parse(note.as_bytes()).expect("the note reads");
    let names: Vec<&str> = sc.note.signatures.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "example.com/flood",
            "witness-1.example",
            "witness-2.example"
        ],
        "one line per witness"
    );
    // The log goes on: appends (with a witnessed checkpoint), fsck, verify.
    append(&dir, 2, "b");
    let _ = ok(&stele(&["checkpoint", p(&dir)]));
    let _ = ok(&stele(&["fsck", p(&dir)]));
    let j = export_verified(&dir, &tmp.path().join("x.stele"), &key, &policy);
    assert_eq!(
        j["quorum"]["cosigned_by"],
        serde_json::json!(["honest", "evil"])
    );
}

/// A policy whose witnesses' lines could not all fit one readable note (at
/// most 100 signatures, the log's own included) is refused when loaded.
#[test]
fn a_log_refuses_a_policy_of_more_witnesses_than_a_note_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let key = ok(&stele(&["init", p(&dir), "--origin", "example.com/many"]))
        .trim()
        .to_string();
    let policy_of = |n: u8| {
        let mut s = format!("log {key}\n");
        for i in 1..=n {
            let w = stele_core::witness::Cosigner::from_seed(&format!("w{i}.example"), [i; 32])
                .unwrap()
                .verifier();
            s += &format!("witness w{i} {w} http://127.0.0.1:9\n");
        }
        s + "quorum w1\n"
    };
    let policy = tmp.path().join("policy");
    std::fs::write(&policy, policy_of(99)).unwrap();
    let out = stele(&["checkpoint", p(&dir), "--policy", p(&policy)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("names 99 witnesses, more than the 98 a log can ask"),
        "{err}"
    );
    let config = std::fs::read_to_string(dir.join("stele.json")).unwrap();
    assert!(!config.contains("witness_policy"), "{config}");
    // 98 fit: the policy is taken (the round then fails: no one answers).
    std::fs::write(&policy, policy_of(98)).unwrap();
    let out = stele(&["checkpoint", p(&dir), "--policy", p(&policy)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("quorum w1 is not met"), "{err}");
}

/// Anyone could stop a witness for good: a POST of the checkpoint it holds
/// with the log's line repeated 100 times was stored with every copy, and
/// the state no longer parsed (every later request 500). Each verified key's
/// line is kept once; a replay of the held checkpoint writes nothing; and a
/// state left unreadable by an older version still gives its size and root.
#[test]
fn a_request_repeating_the_logs_line_cannot_stop_the_witness() {
    use std::os::unix::fs::MetadataExt;
    let l = log(14);
    let (_tmp, w) = witness_at(&l, "witness.example/w1", 3, Duration::from_secs(30));
    let path = w.dir.join("state").join(origin_hash(&l.origin));
    let flood = |n: &str| {
        let line = &n[n.rfind("\n\u{2014} ").unwrap() + 1..];
        format!("{n}{}", line.repeat(99))
    };
    let inode = std::fs::metadata(&path).unwrap().ino();
    let n3 = note(&l, 3);
    let (status, _, held_line) = post(&w, add_checkpoint_body(3, &[], &flood(&n3)).as_bytes());
    assert_eq!(status, 200, "{held_line}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().ino(),
        inode,
        "a replay of the held checkpoint rewrites nothing"
    );
    assert!(w.state(&l.origin).unwrap().ends_with(&held_line));
    // A new size with the log's line repeated: stored once.
    let (status, _, body) = post(
        &w,
        add_checkpoint_body(3, &proof(&l, 3, 7), &flood(&note(&l, 7))).as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let st = stele_core::SignedCheckpoint::parse(w.state(&l.origin).unwrap().as_bytes())
        .expect("the state reads");
    assert_eq!((st.checkpoint.size, st.note.signatures.len()), (7, 2));
    // A state an older version left with 101 lines: its size and root are
    // still read, and the next update rewrites it readable.
    let state = w.state(&l.origin).unwrap();
    let cut = state.rfind("\n\u{2014} ").unwrap() + 1;
    let log_line = &note(&l, 7)[note(&l, 7).rfind("\n\u{2014} ").unwrap() + 1..];
    let bricked = format!("{}{}{}", &state[..cut], log_line.repeat(99), &state[cut..]);
    assert!(stele_core::SignedCheckpoint::parse(bricked.as_bytes()).is_err());
    std::fs::write(&path, bricked).unwrap();
    let (status, _, body) = post(
        &w,
        add_checkpoint_body(3, &proof(&l, 3, 14), &note(&l, 14)).as_bytes(),
    );
    assert_eq!((status, body.as_str()), (409, "7\n"));
    let (status, _, body) = post(
        &w,
        add_checkpoint_body(7, &proof(&l, 7, 14), &note(&l, 14)).as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let st = stele_core::SignedCheckpoint::parse(w.state(&l.origin).unwrap().as_bytes())
        .expect("the state reads again");
    assert_eq!((st.checkpoint.size, st.note.signatures.len()), (14, 2));
}

/// Two `stele witness serve` on one directory each held their own locks and
/// could cosign two histories: the second is refused while the first runs.
#[test]
fn a_second_witness_on_one_directory_is_refused() {
    let l = log(5);
    let (tmp, w) = witness_at(&l, "witness.example/w1", 3, Duration::from_secs(30));
    let e = Witness::open(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("in use by another witness process"), "{e}");
    let out = stele(&["witness", "serve", p(tmp.path()), "--listen", "127.0.0.1:0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("in use by another witness process"), "{err}");
    drop(w);
    let again = Witness::open(tmp.path()).expect("free once the first has stopped");
    assert_eq!(again.logs().len(), 1);
}
