//! Witness cosigning on PostgreSQL + S3 (real servers, see cluster/kit.rs;
//! witnesses in process on loopback, as tests/witness.rs runs them): the
//! policy is remembered in the database so every front-end witnesses,
//! only checkpoints the quorum cosigned are published, appends go on while
//! the quorum fails, and `stele verify --policy` finds the quorum in a
//! cluster export.

mod common;
#[path = "cluster/kit.rs"]
mod kit;
#[path = "common/witnesses.rs"]
mod witnesses;

use kit::{Front, Stores, http, stele, token, wait_for};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use witnesses::{Running, start_witness};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Three witnesses trusting `log_key` and a 2-of-3 policy file naming them.
fn three_witnesses(dir: &Path, log_key: &str) -> (Vec<Running>, std::path::PathBuf) {
    let ws: Vec<Running> = (1..=3)
        .map(|i| {
            start_witness(
                &dir.join(format!("w{i}")),
                &format!("witness-{i}.example"),
                &[log_key.to_string()],
                Duration::from_secs(30),
            )
        })
        .collect();
    let mut s = format!("log {log_key}\n");
    for (i, w) in ws.iter().enumerate() {
        s.push_str(&format!("witness w{} {} {}\n", i + 1, w.key, w.url()));
    }
    s.push_str("group main 2 w1 w2 w3\nquorum main\n");
    let policy = dir.join("policy");
    std::fs::write(&policy, s).unwrap();
    (ws, policy)
}

fn signatures(note: &str) -> usize {
    note.matches('\u{2014}').count()
}

fn size_of(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

fn append(front: &Front, tok: &str, n: usize, tag: &str) {
    let body: Vec<Value> = (0..n).map(|i| json!({"type": tag, "i": i})).collect();
    let r = http(
        "POST",
        &format!("{}/v1/entries", front.url),
        Some(tok),
        Some(Value::from(body).to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

fn checkpoint(stores: &Stores, key: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "checkpoint",
        "--db",
        &stores.db,
        "--objects",
        &stores.objects,
        "--signing-key",
        p(key),
    ];
    args.extend_from_slice(extra);
    stele(&args)
}

fn verify_json(file: &Path, vkey: &str, policy: &Path) -> (i32, Value) {
    let (code, out, err) = stele(&[
        "verify",
        p(file),
        "--key",
        vkey,
        "--policy",
        p(policy),
        "--json",
    ]);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{err}"));
    (code, j)
}

fn published(front: &Front, tok: &str) -> String {
    let r = http("GET", &format!("{}/checkpoint", front.url), Some(tok), None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

#[test]
fn a_cluster_publishes_only_checkpoints_its_quorum_cosigned() {
    let stores = Stores::new("witness");
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("signing.key");
    let vkey = kit::init(
        &stores.db,
        &stores.objects,
        "example.com/cluster-witnessed",
        &key,
    );
    let (mut ws, policy) = three_witnesses(tmp.path(), &vkey);
    let (tokens, tok) = token(tmp.path());

    // `stele checkpoint --db --policy`: the genesis checkpoint (signed
    // before the policy) gets the cosignatures; the policy is remembered.
    let (code, note, err) = checkpoint(&stores, &key, &["--policy", p(&policy)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(signatures(&note), 4, "log + three cosignatures:\n{note}");

    // Front-end A was given --policy, B was not: both witness (the policy
    // lives in the database), and their automatic checkpoints carry the
    // quorum.
    let every = ["--checkpoint-every", "40", "--checkpoint-interval", "1h"];
    let mut a_args = every.to_vec();
    a_args.extend(["--policy", p(&policy)]);
    let a = Front::start(&stores, &key, &tokens, &a_args);
    let b = Front::start(&stores, &key, &tokens, &every);
    for k in 0..4 {
        append(if k % 2 == 0 { &a } else { &b }, &tok, 25, "a");
    }
    wait_for("an automatic witnessed checkpoint", 120, || {
        size_of(&published(&b, &tok)) >= 41
    });
    let note = published(&a, &tok);
    assert!(signatures(&note) >= 3, "{note}");

    // A checkpoint of everything, through the CLI without --policy, then a
    // signed export: `stele verify --policy` finds the quorum.
    let (code, note, err) = checkpoint(&stores, &key, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(signatures(&note), 4, "{note}");
    assert!(note.contains("\n101\n"), "{note}");
    let export = tmp.path().join("e.stele");
    let (code, _, err) = stele(&[
        "export",
        "--db",
        &stores.db,
        "--objects",
        &stores.objects,
        "--signing-key",
        p(&key),
        "-o",
        p(&export),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, j) = verify_json(&export, &vkey, &policy);
    assert_eq!(
        (code, &j["verdict"], &j["quorum"]["met"]),
        (0, &Value::from("verified"), &Value::from(true)),
        "{j:#}"
    );
    assert_eq!(
        j["quorum"]["size"], 102,
        "the export's access record is in it"
    );
    assert_eq!(
        j["quorum"]["cosigned_by"],
        json!(["w1", "w2", "w3"]),
        "{j:#}"
    );

    // Every checkpoint stored since the policy carries the quorum.
    let (rt, c) = stores.reader();
    let cps = rt.block_on(c.checkpoints()).unwrap();
    assert!(cps.len() >= 3, "genesis, automatic, export: {}", cps.len());
    for cp in &cps {
        assert!(
            signatures(&cp.note) >= 3,
            "checkpoint {} lacks the quorum:\n{}",
            cp.checkpoint.size,
            cp.note
        );
    }
    assert!(
        rt.block_on(c.witness_policy())
            .unwrap()
            .unwrap()
            .contains("quorum main")
    );

    // One witness down: two of three still cosign.
    drop(ws.remove(2));
    append(&a, &tok, 5, "c");
    let (code, note, err) = checkpoint(&stores, &key, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(signatures(&note), 3, "{note}");
    let size = size_of(&note);

    // Two down: nothing is published, exit 1 naming the failed witnesses;
    // the appends are durable and go on; the previous checkpoint stays.
    drop(ws.remove(1));
    append(&b, &tok, 5, "d");
    let (code, _, err) = checkpoint(&stores, &key, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("quorum main is not met")
            && err.contains("w2:")
            && err.contains("w3:")
            && !err.contains("w1:"),
        "{err}"
    );
    append(&a, &tok, 5, "e");
    assert_eq!(size_of(&published(&a, &tok)), size);
    assert_eq!(
        rt.block_on(c.latest_checkpoint())
            .unwrap()
            .unwrap()
            .checkpoint
            .size,
        size
    );
    assert_eq!(rt.block_on(c.sequenced()).unwrap(), size + 10);
    drop(a);
    drop(b);

    // --forget-policy: checkpoints are signed without witnesses again.
    let (code, note, err) = checkpoint(&stores, &key, &["--forget-policy"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("witness policy removed"), "{err}");
    assert_eq!(signatures(&note), 1, "{note}");
    assert_eq!(size_of(&note), size + 10);
    assert_eq!(rt.block_on(c.witness_policy()).unwrap(), None);
}

#[test]
fn a_policy_with_a_witness_without_url_is_refused_and_nothing_changes() {
    let stores = Stores::new("witness_bad");
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("signing.key");
    let vkey = kit::init(&stores.db, &stores.objects, "example.com/cluster-w2", &key);
    let (ws, _) = three_witnesses(tmp.path(), &vkey);
    let bad = tmp.path().join("bad-policy");
    std::fs::write(
        &bad,
        format!(
            "log {vkey}\nwitness w1 {}\ngroup main 1 w1\nquorum main\n",
            ws[0].key
        ),
    )
    .unwrap();
    let (code, _, err) = checkpoint(&stores, &key, &["--policy", p(&bad)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no URL"), "{err}");
    // Not remembered: the next checkpoint is signed by the log alone.
    let (code, note, err) = checkpoint(&stores, &key, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(signatures(&note), 1, "{note}");
}

#[test]
fn sequencing_and_integration_go_on_while_a_witness_is_stalled() {
    use stele_writer::cluster::{Cluster, ClusterOptions};
    use stele_writer::witness::ClientOptions;
    use witnesses::Stalled;
    let stores = Stores::new("witness_stall");
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("signing.key");
    let vkey = kit::init(
        &stores.db,
        &stores.objects,
        "example.com/cluster-stall",
        &key,
    );
    let two: Vec<Running> = (1..=2)
        .map(|i| {
            start_witness(
                &tmp.path().join(format!("w{i}")),
                &format!("witness-{i}.example"),
                std::slice::from_ref(&vkey),
                Duration::from_secs(30),
            )
        })
        .collect();
    let mut stalled = Stalled::start();
    let stalled_key =
        stele_writer::witness::Witness::init(&tmp.path().join("w3"), "witness-3.example").unwrap();
    // All three are needed: the round cannot finish while w3 is stalled.
    let policy = format!(
        "log {vkey}\nwitness w1 {} {}\nwitness w2 {} {}\nwitness w3 {stalled_key} http://{}\ngroup main all w1 w2 w3\nquorum main\n",
        two[0].key,
        two[0].url(),
        two[1].key,
        two[1].url(),
        stalled.addr
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let signer = stele_writer::key::load(&key).unwrap();
    let c = rt
        .block_on(Cluster::open(
            &stores.location(),
            Some(signer),
            ClusterOptions {
                checkpoint_every: 5,
                integrate_every: Duration::from_millis(20),
                // The stalled witness's request outlasts every wait below.
                witness_client: ClientOptions {
                    timeout: Duration::from_secs(900),
                    retries: 0,
                },
                ..ClusterOptions::default()
            },
        ))
        .unwrap();
    assert!(rt.block_on(c.set_witness_policy(Some(&policy))).unwrap());
    let events = |n: usize| (0..n).map(|i| json!({"i": i})).collect::<Vec<_>>();
    let _ = rt.block_on(c.append_batch(events(6))).unwrap();
    // The background round has signed a checkpoint and waits for witness 3.
    stalled
        .asked
        .recv_timeout(Duration::from_secs(120))
        .expect("the stalled witness is asked");
    let appended = rt.block_on(async {
        for _ in 0..10 {
            let _ = c.append_batch(events(7)).await?;
        }
        c.sequenced().await
    });
    // Integration goes on too (the integrator is not the round's task).
    let mut integrated = 0;
    wait_for("integration of the appends", 120, || {
        integrated = rt.block_on(c.integrated()).unwrap();
        integrated == 77
    });
    let latest = rt
        .block_on(c.latest_checkpoint())
        .unwrap()
        .map(|c| c.checkpoint.size);
    let stalled_still_asked = stalled.asked.try_recv().is_err();
    // Released before any assertion, so that a failure does not hang.
    stalled.release();
    assert_eq!(appended.unwrap(), 77);
    assert_eq!(latest, Some(1), "nothing published before the quorum");
    assert!(stalled_still_asked, "one request held by witness 3");
    drop(two);
}
