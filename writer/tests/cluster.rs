//! The PostgreSQL + object storage backend against real servers (see
//! cluster/kit.rs): sequencing from several front-ends, integration races,
//! refused forks, bad input, exports that verify.

mod common;
#[path = "cluster/kit.rs"]
mod kit;

use kit::Stores;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use stele_core::hash::leaf_hash;
use stele_core::verify::{Options, Verdict, verify_bytes};
use stele_writer::cluster::{self, Cluster, ClusterOptions};
use stele_writer::{Error, Log, Receipt, key};

const ORIGIN: &str = "example.com/cluster";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

fn opts(integrator: bool) -> ClusterOptions {
    ClusterOptions {
        integrator,
        integrate_every: Duration::from_millis(50),
        checkpoint_interval: Duration::from_millis(300),
        pool_size: 4,
        ..ClusterOptions::default()
    }
}

// Exports the log up to its latest checkpoint and verifies it with core's
// verifier; checks every receipt against the entries (index and leaf hash)
// and that the indexes are dense.
async fn check_log(c: &Cluster, receipts: &[Receipt]) -> u64 {
    let size = c.sync(true).await.unwrap();
    let cp = c.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(cp.checkpoint.size, size);
    let mut out = Vec::new();
    c.export_log(size, &mut out).await.unwrap();
    let report = verify_bytes(Options::new(vec![c.verifier().clone()]), &out);
    assert_eq!(report.verdict, Verdict::Verified, "{:?}", report.failures);
    assert_eq!(report.entries, size);
    let lines = c.entries(0, size).await.unwrap();
    let mut seen = BTreeMap::new();
    for r in receipts {
        assert!(
            seen.insert(r.seq, r.leaf_hash).is_none(),
            "seq {} twice",
            r.seq
        );
        assert_eq!(
            leaf_hash(&lines[r.seq as usize]),
            r.leaf_hash,
            "entry {}",
            r.seq
        );
    }
    // Receipts hold every entry but the genesis (no one else appends here).
    assert_eq!(seen.len() as u64, size - 1);
    assert_eq!(seen.keys().next().copied(), Some(1));
    assert_eq!(seen.keys().last().copied(), Some(size - 1));
    // The published checkpoint object is the latest checkpoint.
    let published = c.published_checkpoint().await.unwrap().unwrap();
    assert_eq!(String::from_utf8(published).unwrap(), cp.note);
    size
}

#[test]
fn three_front_ends_append_concurrently_and_the_export_verifies() {
    let stores = Stores::new("three");
    let loc = stores.location();
    rt().block_on(async {
        let signer = key::generate(ORIGIN).unwrap();
        let _ = cluster::init(&loc, ORIGIN, &signer).await.unwrap();
        let mut fronts = Vec::new();
        for _ in 0..3 {
            fronts.push(Arc::new(
                Cluster::open(&loc, Some(signer.clone()), opts(true))
                    .await
                    .unwrap(),
            ));
        }
        let mut tasks = Vec::new();
        for w in 0..12u64 {
            let c = fronts[(w % 3) as usize].clone();
            tasks.push(tokio::spawn(async move {
                let mut rs = Vec::new();
                for b in 0..15u64 {
                    let n = 1 + (w * 7 + b * 13) % 40;
                    let evs: Vec<_> = (0..n)
                        .map(|i| json!({"type": "t", "w": w, "b": b, "i": i}))
                        .collect();
                    rs.extend(c.append_batch(evs).await.unwrap());
                }
                rs
            }));
        }
        let mut receipts = Vec::new();
        for t in tasks {
            receipts.extend(t.await.unwrap());
        }
        let size = check_log(&fronts[1], &receipts).await;
        assert!(size > 12 * 15);
        // Every front-end reads the same log.
        let a = fronts[0].root(size).await.unwrap();
        let b = fronts[2].root(size).await.unwrap();
        assert_eq!(a, b);
    });
}

// Two integrators race step after step; some steps are cut off at random
// points (the transaction rolls back after some tiles were written), so
// the other one redoes them over objects already there. The tree stays one
// tree: every checkpoint's root is the root of the entries.
#[test]
fn racing_and_interrupted_integrators_never_fork() {
    let stores = Stores::new("race");
    let loc = stores.location();
    rt().block_on(async {
        let signer = key::generate(ORIGIN).unwrap();
        let _ = cluster::init(&loc, ORIGIN, &signer).await.unwrap();
        let a = Arc::new(
            Cluster::open(&loc, Some(signer.clone()), opts(false))
                .await
                .unwrap(),
        );
        let b = Arc::new(
            Cluster::open(&loc, Some(signer.clone()), opts(false))
                .await
                .unwrap(),
        );
        let mut receipts = Vec::new();
        for round in 0..12u64 {
            let n = 37 + round * 61;
            let evs: Vec<_> = (0..n).map(|i| json!({"r": round, "i": i})).collect();
            receipts.extend(a.append_batch(evs).await.unwrap());
            // Cut one integrator off after a while (a crash mid-step)...
            let cut = Duration::from_micros(500 + round * 1500);
            let a2 = a.clone();
            let cutter = tokio::spawn(async move {
                let _ = tokio::time::timeout(cut, a2.integrate_once(true)).await;
            });
            // ...while the other races it.
            let b2 = b.clone();
            let racer = tokio::spawn(async move { b2.integrate_once(round % 2 == 0).await });
            cutter.await.unwrap();
            let r = racer.await.unwrap();
            assert!(r.is_ok(), "{r:?}");
            // Checkpoints inside the history, however the races went (on a
            // loaded machine the racer may have found the lock held each time).
            if round % 3 == 0 {
                let _ = b.sync(true).await.unwrap();
            }
        }
        let size = check_log(&b, &receipts).await;
        let lines = a.entries(0, size).await.unwrap();
        let mut tree = stele_core::merkle::MemoryTree::new();
        for l in &lines {
            tree.push(leaf_hash(l));
        }
        let cps = a.checkpoints().await.unwrap();
        assert!(cps.len() > 3, "{}", cps.len());
        for c in cps {
            assert_eq!(
                c.checkpoint.root,
                tree.root_at(c.checkpoint.size).unwrap(),
                "checkpoint {}",
                c.checkpoint.size
            );
            assert_eq!(a.root(c.checkpoint.size).await.unwrap(), c.checkpoint.root);
        }
    });
}

// An object at a path the next step writes that holds other bytes (a
// second tree for a size): the step refuses, nothing is integrated, and
// nothing is signed past it.
#[test]
fn a_conflicting_tile_stops_integration() {
    let stores = Stores::new("fork");
    let loc = stores.location();
    rt().block_on(async {
        let signer = key::generate(ORIGIN).unwrap();
        let _ = cluster::init(&loc, ORIGIN, &signer).await.unwrap();
        let c = Cluster::open(&loc, Some(signer.clone()), opts(false))
            .await
            .unwrap();
        let r = c
            .append_batch(vec![json!({"a": 1}), json!({"a": 2})])
            .await
            .unwrap();
        assert_eq!(r.len(), 2);
        // The tile of size 3 written by someone else with other hashes.
        let (store, prefix) = cluster::connect_objects(&stores.objects, &kit::s3_env()).unwrap();
        let p = prefix
            .clone()
            .join("tile")
            .join("0")
            .join("000.p")
            .join("3");
        let _ = object_store::ObjectStoreExt::put(&*store, &p, vec![7u8; 96].into())
            .await
            .unwrap();
        let e = c.integrate_once(true).await.unwrap_err();
        assert!(
            e.to_string().contains("refusing to publish a second tree"),
            "{e}"
        );
        assert_eq!(c.integrated().await.unwrap(), 1);
        assert_eq!(
            c.latest_checkpoint()
                .await
                .unwrap()
                .unwrap()
                .checkpoint
                .size,
            1
        );
    });
}

// The right edge (partial bundle and hash tiles) is read back from object
// storage and copied into new create-only objects: a replaced or damaged
// edge object is refused against the database's compact range, before
// anything is written, deleted or signed; put back, integration goes on.
#[test]
fn a_replaced_edge_object_stops_integration() {
    let stores = Stores::new("edge");
    let loc = stores.location();
    rt().block_on(async {
        let signer = key::generate(ORIGIN).unwrap();
        let _ = cluster::init(&loc, ORIGIN, &signer).await.unwrap();
        let c = Cluster::open(&loc, Some(signer.clone()), opts(false))
            .await
            .unwrap();
        let first: Vec<_> = (0..99)
            .map(|i| json!({"msg": format!("original-{i:02}")}))
            .collect();
        let mut receipts = c.append_batch(first).await.unwrap();
        assert_eq!(c.integrate_once(true).await.unwrap(), Some(100));
        let (store, prefix) = cluster::connect_objects(&stores.objects, &kit::s3_env()).unwrap();
        let path = |parts: &[&str]| parts.iter().fold(prefix.clone(), |p, s| p.join(*s));
        let get = |p: object_store::path::Path| {
            let store = store.clone();
            async move {
                object_store::ObjectStoreExt::get(&*store, &p)
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
                    .to_vec()
            }
        };
        let put = |p: object_store::path::Path, b: Vec<u8>| {
            let store = store.clone();
            async move {
                let _ = object_store::ObjectStoreExt::put(&*store, &p, b.into())
                    .await
                    .unwrap();
            }
        };
        let bundle = path(&["tile", "entries", "000.p", "100"]);
        let tile = path(&["tile", "0", "000.p", "100"]);
        let (good_bundle, good_tile) = (get(bundle.clone()).await, get(tile.clone()).await);
        receipts.extend(
            c.append_batch(
                (0..200)
                    .map(|i| json!({"msg": format!("later-{i:03}")}))
                    .collect(),
            )
            .await
            .unwrap(),
        );
        let mut forged = good_bundle.clone();
        let at = forged
            .windows(11)
            .position(|w| w == b"original-42")
            .unwrap();
        forged[at..at + 11].copy_from_slice(b"FORGED!!-42");
        let mut flipped = good_tile.clone();
        flipped[44 * 32] ^= 1;
        for (what, p, bad, expect) in [
            (
                "bundle",
                &bundle,
                forged,
                "entry 43 in the partial entry bundle",
            ),
            ("tile", &tile, flipped, "the partial tile at level 0"),
        ] {
            put(p.clone(), bad).await;
            let e = c.integrate_once(true).await.unwrap_err();
            assert!(e.to_string().contains(expect), "{what}: {e}");
            // Nothing moved: size, checkpoint, the full bundle not written.
            assert_eq!(c.integrated().await.unwrap(), 100, "{what}");
            let cp = c.latest_checkpoint().await.unwrap().unwrap();
            assert_eq!(cp.checkpoint.size, 100, "{what}");
            let full = path(&["tile", "entries", "000"]);
            assert!(
                object_store::ObjectStoreExt::get(&*store, &full)
                    .await
                    .is_err(),
                "{what}"
            );
            put(bundle.clone(), good_bundle.clone()).await;
            put(tile.clone(), good_tile.clone()).await;
        }
        // The rows were kept: integration completes and every receipt holds.
        assert_eq!(check_log(&c, &receipts).await, 300);
    });
}

// Bad input: the same errors as a file log, and nothing is sequenced.
#[test]
fn bad_input_is_refused_as_on_the_file_backend() {
    let stores = Stores::new("bad");
    let loc = stores.location();
    let dir = tempfile::tempdir().unwrap();
    let signer = key::generate(ORIGIN).unwrap();
    let log = Log::create(&dir.path().join("log"), ORIGIN, &signer).unwrap();
    let big = "x".repeat(70_000);
    let bad: Vec<Vec<serde_json::Value>> = vec![
        vec![json!({"ok": 1}), json!([1, 2])],
        vec![json!({"type": "stele.access"})],
        vec![json!({"ok": 1}), json!({"stele": "me"})],
        vec![json!({"big": big})],
        vec![json!({"n": 1}), json!({"n": 9_007_199_254_740_993u64})],
    ];
    rt().block_on(async {
        let _ = cluster::init(&loc, ORIGIN, &signer).await.unwrap();
        let c = Cluster::open(&loc, Some(signer.clone()), opts(false))
            .await
            .unwrap();
        for evs in bad {
            let want = log.append_batch(evs.clone()).unwrap_err();
            let got = c.append_batch(evs.clone()).await.unwrap_err();
            assert!(matches!(got, Error::BadEvent { .. }), "{got}");
            assert_eq!(got.to_string(), want.to_string());
        }
        assert_eq!(c.sequenced().await.unwrap(), 1);
        let r = c
            .append_reserved(json!({"type": "user.thing"}))
            .await
            .unwrap_err();
        assert!(r.to_string().contains("append_reserved takes only"), "{r}");
        assert_eq!(c.sequenced().await.unwrap(), 1);
    });
    assert_eq!(log.size(), 1);
}

// init refuses a database or bucket that already holds a log, and a key
// that is not the log's.
#[test]
fn init_refuses_existing_logs_and_open_refuses_another_key() {
    let stores = Stores::new("init");
    let loc = stores.location();
    rt().block_on(async {
        let signer = key::generate(ORIGIN).unwrap();
        let _ = cluster::init(&loc, ORIGIN, &signer).await.unwrap();
        let e = cluster::init(&loc, ORIGIN, &signer).await.unwrap_err();
        assert!(e.to_string().contains("already holds"), "{e}");
        let other = key::generate(ORIGIN).unwrap();
        let e = Cluster::open(&loc, Some(other), opts(false))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not the log's"), "{e}");
    });
}
