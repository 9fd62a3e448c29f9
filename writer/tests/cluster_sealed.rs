//! Sealed fields (issue 11) on the PostgreSQL + object storage backend
//! (issue 13), against the real servers (see cluster/kit.rs): sealing rules
//! kept in PostgreSQL, ingestion through two front-ends, openings stored
//! with the entries, auditors, exports revealed to an `age-keygen`
//! identity, forget and redact, `GET /v1/sealed`, and no plaintext in a
//! dump of the database, in any object or in any answer.

mod common;
#[path = "cluster/kit.rs"]
mod kit;

use kit::{Front, Stores, http, stele};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use stele_core::sealed::OpenerHandle;
use stele_core::verify::{Options, Report, Verdict, verify_bytes};
use stele_writer::cluster::{self, Cluster, ClusterOptions, SealKey};
use stele_writer::sealed::SealConfig;
use stele_writer::{Log, LogOptions, key};

const MARKER: &str = "MARKER-c1u5";

// A new bearer token NAME with SCOPE in the tokens file; the token.
fn token(tokens: &Path, name: &str, scope: &str) -> String {
    ok(stele(&["token", "add", p(tokens), name, "--scope", scope]))
        .0
        .trim()
        .to_string()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// A new identity made by Debian's `age-keygen` (mode 0600), and its recipient.
fn age_keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let f = dir.join(name);
    let out = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&f)
        .output()
        .unwrap_or_else(|e| panic!("age-keygen: {e} (apt-get install age)"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = std::fs::read_to_string(&f).unwrap();
    let ids = stele_seal::Identity::parse_file(&text).unwrap();
    (f, ids[0].recipient())
}

fn verify_with(data: &[u8], vkey: &str, id: Option<&Path>) -> Report {
    let mut o = Options::new(vec![stele_core::VerifierKey::parse(vkey).unwrap()]);
    o.opener = id.map(|id| {
        let ids = stele_seal::Identity::parse_file(&std::fs::read_to_string(id).unwrap()).unwrap();
        OpenerHandle(Arc::new(stele_seal::AgeOpener::new(ids)))
    });
    verify_bytes(o, data)
}

fn ok(r: (i32, String, String)) -> (String, String) {
    assert_eq!(r.0, 0, "{}", r.2);
    (r.1, r.2)
}

fn opts(seal_key: Option<Arc<SealKey>>) -> ClusterOptions {
    ClusterOptions {
        integrator: false,
        checkpoint_interval: Duration::from_millis(300),
        pool_size: 4,
        seal_key,
        ..ClusterOptions::default()
    }
}

fn rules() -> SealConfig {
    SealConfig {
        seal: vec!["/actor/email".into(), "/ip".into()],
        subject: "/actor".into(),
    }
}

// A file log at `dir` with the rules of these tests.
fn file_log(dir: &Path, origin: &str, signer: &stele_core::SignerKey) -> Log {
    let opts = LogOptions {
        seal: rules(),
        ..LogOptions::default()
    };
    Log::create_with(dir, origin, signer, None, opts).unwrap()
}

// Bad input that involves sealing: the cluster answers exactly as a file
// log with the same rules, writes nothing, and never echoes the value; good
// input gives the file log's entries but for salts and key IDs.
#[test]
fn sealing_matches_the_file_log_and_bad_input_writes_nothing() {
    let stores = Stores::new("seal_err");
    let tmp = tempfile::tempdir().unwrap();
    let origin = "example.com/cluster-seal-err";
    let signer = key::generate(origin).unwrap();
    let sk = SealKey::generate().unwrap();
    // The same key, for a second front-end.
    let sk2 = {
        let f = tmp.path().join("seal.key");
        sk.save(&f).unwrap();
        Arc::new(SealKey::load(&f).unwrap())
    };
    let file = file_log(&tmp.path().join("log"), origin, &signer);
    rt().block_on(async {
        let _ = cluster::init_with(&stores.location(), origin, &signer, Some((&rules(), &sk)))
            .await
            .unwrap();
        let c = Cluster::open(&stores.location(), None, opts(Some(Arc::new(sk))))
            .await
            .unwrap();
        let before = c.sequenced().await.unwrap();
        for bad in [
            json!([{"x": {"stele.sealed": MARKER}}]),
            json!([{"a": 1}, {"x": {"stele.seal": MARKER, "y": 1}}]),
            json!([{"x": [{"stele.sealed": {"c": MARKER}}]}]),
            json!([{"ip": "10.0.0.1", "actor": {"email": MARKER}}, {"stele.seal": MARKER}]),
        ] {
            let events: Vec<Value> = bad.as_array().unwrap().clone();
            let want = file.append_batch(events.clone()).unwrap_err().to_string();
            let have = c.append_batch(events).await.unwrap_err().to_string();
            assert_eq!(have, want, "{bad}");
            assert!(!have.contains(MARKER), "{have}");
        }
        assert_eq!(c.sequenced().await.unwrap(), before, "nothing was written");
        // Good input: the same entries as the file log's but for the
        // randomness (salts and key IDs): placeholders at the same places,
        // key IDs shared by the same subjects, everything else equal.
        let events: Vec<Value> = (0..6)
            .map(|i| {
                json!({"action": "a", "actor": {"email": format!("{MARKER}{}", i % 3), "id": i % 3}, "ip": MARKER,
                       "list": [1, {"stele.seal": {"deep": MARKER}}], "n": i})
            })
            .collect();
        let rf = file.append_batch(events.clone()).unwrap();
        let rc = c.append_batch(events).await.unwrap();
        let size = c.sync(false).await.unwrap();
        let lines = c.entries(0, size).await.unwrap();
        let view = file.view();
        let (mut kf, mut kc) = (Vec::new(), Vec::new());
        for (f, k) in rf.iter().zip(&rc) {
            let fe = shape(&view.entry(f.seq).unwrap(), &mut kf);
            let ce = shape(&lines[k.seq as usize], &mut kc);
            assert_eq!(ce, fe);
            assert!(!contains(&lines[k.seq as usize], MARKER.as_bytes()));
        }
        assert_eq!(kc.len(), 3, "one data key per subject");
        // Idempotency keys: stele_requests holds no plain hash of a body
        // (it would confirm a guessed sealed value), yet a retry on another
        // front-end with the same sealing key matches.
        let body_hash = [7u8; 32];
        let rk = |digest: [u8; 32]| {
            Some(cluster::RequestKey {
                token: "w".into(),
                key: "k1".into(),
                digest,
            })
        };
        let ev = || vec![json!({"ip": MARKER, "actor": {"id": 9}})];
        let by = json!("w");
        let first = c.append_batch_keyed(ev(), &by, rk(body_hash)).await.unwrap();
        let receipts = match first {
            cluster::Keyed::Appended(r) => r,
            other => panic!("{other:?}"),
        };
        let stored = |where_: &str| {
            db_i64(
                &stores.db,
                &format!("SELECT count(*) FROM stele_requests WHERE {where_}"),
            )
        };
        assert_eq!(stored("key = 'k1'"), 1);
        assert_eq!(
            stored(&format!("digest = decode('{}', 'hex')", hex(&body_hash))),
            0,
            "a plain body hash is stored"
        );
        let other = Cluster::open(&stores.location(), None, opts(Some(sk2.clone())))
            .await
            .unwrap();
        assert_eq!(
            other.append_batch_keyed(ev(), &by, rk(body_hash)).await.unwrap(),
            cluster::Keyed::Replayed(receipts.clone())
        );
        assert_eq!(
            other.append_batch_keyed(ev(), &by, rk([8; 32])).await.unwrap(),
            cluster::Keyed::OtherBody
        );
        // Another subject's request, under another key.
        let rk2 = |digest: [u8; 32]| {
            Some(cluster::RequestKey {
                token: "w".into(),
                key: "k2".into(),
                digest,
            })
        };
        let ev2 = || vec![json!({"ip": MARKER, "actor": {"id": 8}})];
        let receipts2 = match c.append_batch_keyed(ev2(), &by, rk2(body_hash)).await.unwrap() {
            cluster::Keyed::Appended(r) => r,
            other => panic!("{other:?}"),
        };
        // The digests are keyed with what a forget leaves (the sealing key):
        // a forget voids the digests of the requests that sealed a value
        // under the forgotten key, so neither a retry nor the database and
        // the sealing key together can test a guess of a forgotten value;
        // such a retry is refused whatever its body (never answered with
        // the old receipts: another body would be acknowledged and never
        // written).
        let _ = other.forget(&json!({"id": 9}), "test").await.unwrap();
        assert_eq!(
            stored(&format!("digest = decode('{}', 'hex')", hex(&[0xff; 32]))),
            1
        );
        let size = c.sequenced().await.unwrap();
        for body in [body_hash, [8; 32]] {
            assert_eq!(
                c.append_batch_keyed(ev(), &by, rk(body)).await.unwrap(),
                cluster::Keyed::Unreadable
            );
        }
        assert_eq!(c.sequenced().await.unwrap(), size, "nothing was written");
        // The other subject's request is still compared.
        assert_eq!(
            c.append_batch_keyed(ev2(), &by, rk2(body_hash)).await.unwrap(),
            cluster::Keyed::Replayed(receipts2)
        );
        assert_eq!(
            c.append_batch_keyed(ev2(), &by, rk2([8; 32])).await.unwrap(),
            cluster::Keyed::OtherBody
        );
        // A front-end without the sealing key refuses what it would seal
        // (never stores it in the clear), and says how to fix it.
        let keyless = Cluster::open(&stores.location(), None, opts(None))
            .await
            .unwrap();
        let e = keyless
            .append_batch(vec![json!({"ip": MARKER})])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("--seal-key"), "{e}");
        assert!(!e.contains(MARKER), "{e}");
        // ...but appends what needs no sealing.
        let _ = keyless
            .append_batch(vec![json!({"plain": 1})])
            .await
            .unwrap();
        // Another sealing key is refused at open.
        let e = Cluster::open(
            &stores.location(),
            None,
            opts(Some(Arc::new(SealKey::generate().unwrap()))),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("not this log's sealing key"), "{e}");
    });
}

// An entry's event with each placeholder replaced by the number of its key
// ID in order of first use (`keys`): what must be equal across backends.
fn shape(line: &[u8], keys: &mut Vec<String>) -> Value {
    fn walk(v: &mut Value, keys: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(ph) = m.get("stele.sealed") {
                    let k = ph["key"].as_str().unwrap().to_string();
                    assert!(ph["commitment"].is_string(), "{ph}");
                    let n = keys.iter().position(|x| *x == k).unwrap_or_else(|| {
                        keys.push(k);
                        keys.len() - 1
                    });
                    *v = json!({ "sealed with key": n });
                    return;
                }
                m.values_mut().for_each(|x| walk(x, keys));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, keys)),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_slice(line).unwrap();
    let mut ev = v["event"].take();
    walk(&mut ev, keys);
    ev
}

// A subject forgotten through one front-end while another has its data key
// cached: the next value of that subject is sealed under a new key (never
// under the forgotten one), and the auditor opens it.
#[test]
fn a_key_forgotten_elsewhere_is_never_used_again() {
    let stores = Stores::new("seal_stale");
    let tmp = tempfile::tempdir().unwrap();
    let origin = "example.com/cluster-seal-stale";
    let signer = key::generate(origin).unwrap();
    let sk = Arc::new(SealKey::generate().unwrap());
    let (aud, rcpt) = age_keygen(tmp.path(), "auditor.key");
    rt().block_on(async {
        let _ = cluster::init_with(&stores.location(), origin, &signer, Some((&rules(), &sk)))
            .await
            .unwrap();
        let a = Cluster::open(
            &stores.location(),
            Some(signer.clone()),
            opts(Some(sk.clone())),
        )
        .await
        .unwrap();
        let b = Cluster::open(&stores.location(), None, opts(Some(sk.clone())))
            .await
            .unwrap();
        assert_eq!(b.add_auditor(&rcpt, "test").await.unwrap(), 0);
        let ev = |n: u32| json!({"actor": {"id": "u1"}, "ip": format!("10.0.0.{n}")});
        let _ = a.append_batch(vec![ev(1)]).await.unwrap();
        let count = |t: &str| db_i64(&stores.db, &format!("SELECT count(*) FROM {t}"));
        assert_eq!(
            (count("stele_seal_keys"), count("stele_seal_wraps")),
            (1, 1)
        );
        let f = b.forget(&json!({"id": "u1"}), "test").await.unwrap();
        let id = f.key;
        // The key and its wrap are deleted, and the two tables rewritten.
        assert_eq!(f.rewritten, Ok(()));
        assert_eq!(
            (count("stele_seal_keys"), count("stele_seal_wraps")),
            (0, 0)
        );
        assert_eq!(count("stele_seal_forgotten"), 1);
        // A still has the forgotten key cached: the sequencer sends the
        // request back to be sealed again.
        let r = a.append_batch(vec![ev(2)]).await.unwrap();
        let size = a.sync(true).await.unwrap();
        let lines = a.entries(0, size).await.unwrap();
        let line: Value = serde_json::from_slice(&lines[r[0].seq as usize]).unwrap();
        let used = line["event"]["ip"]["stele.sealed"]["key"].as_str().unwrap();
        assert_ne!(used, id.to_hex(), "sealed under a forgotten key");
        let mut out = Vec::new();
        a.export_log_revealed_with(size, std::slice::from_ref(&rcpt), |b| {
            out.extend_from_slice(&b);
            async { Ok(()) }
        })
        .await
        .unwrap();
        let rep = verify_with(&out, &a.verifier().to_string(), Some(&aud));
        assert_eq!(rep.verdict, Verdict::Verified, "{:#?}", rep.failures);
        let s = rep.sealed.unwrap();
        assert_eq!((s.values, s.opened, s.forgotten), (2, 1, 1), "{s:?}");
    });
}

// A range or a selection names only the keys its entries use, as a file
// log's export does (not every subject's data key, nor every forgotten
// key); a whole-log export names them all. Same events, same forget, on
// both backends: the same subjects' keys named in the head, and each
// verifies.
#[test]
fn range_and_selected_exports_name_only_the_keys_they_use_as_a_file_logs() {
    let stores = Stores::new("seal_head");
    let tmp = tempfile::tempdir().unwrap();
    let origin = "example.com/cluster-seal-head";
    let signer = key::generate(origin).unwrap();
    let sk = Arc::new(SealKey::generate().unwrap());
    let (aud, rcpt) = age_keygen(tmp.path(), "auditor.key");
    let file = file_log(&tmp.path().join("log"), origin, &signer);
    // Subjects u0, u1, u2 at entries 1..4 and again at 4..7 (entry 0 is
    // the genesis); the auditor added after them (its stele.auditor event
    // is entry 7; their keys are wrapped for it then); u2 forgotten.
    let events: Vec<Value> = (0..6)
        .map(|i| json!({"actor": {"id": format!("u{}", i % 3)}, "ip": format!("10.0.0.{i}")}))
        .collect();
    let _ = file.append_batch(events.clone()).unwrap();
    let _ = file.add_auditor(&rcpt, "test").unwrap();
    let _ = file.forget(&json!({"id": "u2"}), "test").unwrap();
    let _ = file.checkpoint().unwrap();
    // The subjects (actor IDs) whose keys an export's `sealed-key` and
    // `forgotten` lines name, found through the placeholders of its entries
    // (key IDs are random: each backend's lines are in its own key ID
    // order, the subjects compared sorted).
    let head = |data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let mut subject = std::collections::HashMap::new();
        for l in text.lines().filter(|l| l.starts_with("{\"event\"")) {
            let e: Value = serde_json::from_str(l).unwrap();
            if let Some(k) = e["event"]["ip"]["stele.sealed"]["key"].as_str() {
                let _ = subject.insert(k.to_string(), e["event"]["actor"]["id"].to_string());
            }
        }
        let named = |p: &str| {
            let kids: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix(p))
                .map(|l| &l[..32])
                .collect();
            assert!(
                kids.windows(2).all(|w| w[0] < w[1]),
                "{p}lines in key ID order, none twice"
            );
            let mut who: Vec<String> = kids
                .iter()
                .map(|k| {
                    subject
                        .get(*k)
                        .cloned()
                        .unwrap_or_else(|| format!("no entry uses {k}"))
                })
                .collect();
            who.sort();
            who
        };
        (named("sealed-key "), named("forgotten "))
    };
    let counts = |h: &(Vec<String>, Vec<String>)| (h.0.len(), h.1.len());
    let want = |range: Option<(u64, u64)>, list: &[u64]| {
        let mut out = Vec::new();
        let v = file.view();
        let r = std::slice::from_ref(&rcpt);
        match range {
            Some((a, b)) => v.export_range_revealed(a, b, r, &mut out, &mut |_| {}),
            None if list.is_empty() => v.export_log_revealed(r, &mut out, &mut |_| {}),
            None => v.export_entries_revealed(list, r, &mut out),
        }
        .unwrap();
        head(&out)
    };
    rt().block_on(async {
        let _ = cluster::init_with(&stores.location(), origin, &signer, Some((&rules(), &sk)))
            .await
            .unwrap();
        let c = Cluster::open(
            &stores.location(),
            Some(signer.clone()),
            opts(Some(sk.clone())),
        )
        .await
        .unwrap();
        let _ = c.append_batch(events).await.unwrap();
        assert_eq!(c.add_auditor(&rcpt, "test").await.unwrap(), 3);
        let _ = c.forget(&json!({"id": "u2"}), "test").await.unwrap();
        let size = c.sync(true).await.unwrap();
        let vkey = c.verifier().to_string();
        let r = std::slice::from_ref(&rcpt);
        let check = |out: Vec<u8>, opened: u64, forgotten: u64| {
            let rep = verify_with(&out, &vkey, Some(&aud));
            assert_eq!(rep.verdict, Verdict::Verified, "{:#?}", rep.failures);
            let s = rep.sealed.unwrap();
            assert_eq!((s.opened, s.forgotten), (opened, forgotten), "{s:?}");
            head(&out)
        };
        for (a, b, keys, opened, forgotten) in [
            (1, 3, (2, 0), 2, 0),
            (3, 4, (0, 1), 0, 1),
            (2, 6, (2, 1), 3, 1),
        ] {
            let mut out = Vec::new();
            c.export_range_revealed_with(a, b, r, |b| {
                out.extend_from_slice(&b);
                async { Ok(()) }
            })
            .await
            .unwrap();
            let got = check(out, opened, forgotten);
            assert_eq!(counts(&got), keys, "range {a}..{b}: {got:?}");
            assert_eq!(
                got,
                want(Some((a, b)), &[]),
                "range {a}..{b}: the file log's"
            );
        }
        for (list, keys, opened, forgotten) in
            [(vec![1u64, 4], (1, 0), 2, 0), (vec![2, 6], (1, 1), 1, 1)]
        {
            let mut out = Vec::new();
            c.export_entries_revealed_with(&list, r, |b| {
                out.extend_from_slice(&b);
                async { Ok(()) }
            })
            .await
            .unwrap();
            let got = check(out, opened, forgotten);
            assert_eq!(counts(&got), keys, "entries {list:?}: {got:?}");
            assert_eq!(got, want(None, &list), "entries {list:?}: the file log's");
        }
        let mut out = Vec::new();
        c.export_log_revealed_with(size, r, |b| {
            out.extend_from_slice(&b);
            async { Ok(()) }
        })
        .await
        .unwrap();
        let got = check(out, 4, 2);
        assert_eq!(counts(&got), (2, 1), "{got:?}");
        assert_eq!(got, want(None, &[]), "the whole log: the file log's");
        // More wraps than a page of the head: each once, in order.
        let more: Vec<Value> = (0..1030)
            .map(|i| json!({"actor": {"id": format!("v{i}")}, "ip": "10.0.1.1"}))
            .collect();
        let _ = file.append_batch(more.clone()).unwrap();
        let _ = file.checkpoint().unwrap();
        let _ = c.append_batch(more).await.unwrap();
        let size = c.sync(true).await.unwrap();
        let mut out = Vec::new();
        c.export_log_revealed_with(size, r, |b| {
            out.extend_from_slice(&b);
            async { Ok(()) }
        })
        .await
        .unwrap();
        let got = check(out, 1034, 2);
        assert_eq!(counts(&got), (1032, 1));
        assert_eq!(got, want(None, &[]), "the whole log: the file log's");
    });
}

// Every object in the bucket, with its name.
fn objects(stores: &Stores) -> Vec<(String, Vec<u8>)> {
    use futures::StreamExt as _;
    let (store, _) =
        cluster::connect_objects(&format!("s3://{}", stores.bucket), &kit::s3_env()).unwrap();
    rt().block_on(async {
        let metas: Vec<_> = store.list(None).collect().await;
        let mut out = Vec::new();
        for m in metas {
            let m = m.unwrap();
            let b = object_store::ObjectStoreExt::get(&*store, &m.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            out.push((m.location.to_string(), b.to_vec()));
        }
        out
    })
}

// One number from the database (its own connection and runtime: callable
// from inside another runtime's block_on).
fn db_i64(db: &str, sql: &str) -> i64 {
    let (db, sql) = (db.to_string(), sql.to_string());
    std::thread::spawn(move || {
        rt().block_on(async {
            let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
                .await
                .unwrap();
            drop(tokio::spawn(conn));
            client.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0)
        })
    })
    .join()
    .unwrap()
}

// Lower-case hex, as pg_dump writes bytea values.
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pg_dump(db: &str) -> Vec<u8> {
    let out = std::process::Command::new("pg_dump")
        .arg(db)
        .output()
        .expect("pg_dump (postgresql-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(contains(&out.stdout, b"stele_seal_records"));
    out.stdout
}

#[test]
fn two_front_ends_seal_reveal_forget_redact_and_no_plaintext_anywhere() {
    let stores = Stores::new("seal_http");
    let tmp = tempfile::tempdir().unwrap();
    let origin = "example.com/cluster-sealed";
    let key = tmp.path().join("signing.key");
    let (code, vkey, err) = stele(&[
        "init",
        "--db",
        &stores.db,
        "--objects",
        &stores.objects,
        "--origin",
        origin,
        "--signing-key",
        p(&key),
        "--seal",
        "/actor/email",
        "--seal",
        "/ip",
        "--subject",
        "/actor/id",
    ]);
    assert_eq!(code, 0, "{err}");
    let vkey = vkey.trim().to_string();
    // The sealing key: beside the signing key, 0600, stored in neither store.
    let seal_key = tmp.path().join("signing.key.seal");
    assert_eq!(
        std::fs::metadata(&seal_key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A front-end without it does not start (it could not seal).
    let lone = tmp.path().join("lone");
    std::fs::create_dir(&lone).unwrap();
    let lone_key = lone.join("signing.key");
    let _ = std::fs::copy(&key, &lone_key).unwrap();
    let (code, _, err) = stele(&[
        "serve",
        "--db",
        &stores.db,
        "--signing-key",
        p(&lone_key),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("needs its sealing key") && err.contains("--seal-key"),
        "{err}"
    );
    // A sealing key others may read, or a file that is not one: refused,
    // naming the fix, never quoting the file.
    let secret = std::fs::read_to_string(&seal_key).unwrap();
    let b64 = secret.trim().split(':').nth(1).unwrap().to_string();
    let lone_seal = lone.join("seal.key");
    std::fs::write(&lone_seal, &secret).unwrap();
    std::fs::set_permissions(&lone_seal, std::fs::Permissions::from_mode(0o644)).unwrap();
    let serve_with = |seal: &Path| {
        stele(&[
            "serve",
            "--db",
            &stores.db,
            "--signing-key",
            p(&lone_key),
            "--seal-key",
            p(seal),
            "--listen",
            "127.0.0.1:0",
        ])
    };
    let (code, _, err) = serve_with(&lone_seal);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(&b64), "{err}");
    std::fs::set_permissions(&lone_seal, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&lone_seal, format!("{b64}\n")).unwrap();
    let (code, _, err) = serve_with(&lone_seal);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a sealing key file"), "{err}");
    assert!(!err.contains(&b64), "{err}");
    std::fs::remove_dir_all(&lone).unwrap();
    let (aud, rcpt) = age_keygen(tmp.path(), "auditor.key");
    let (other, other_rcpt) = age_keygen(tmp.path(), "other.key");
    let mut outputs: Vec<Vec<u8>> = Vec::new();
    let (o, e) = ok(stele(&[
        "auditor",
        "add",
        "--db",
        &stores.db,
        "--seal-key",
        p(&seal_key),
        &rcpt,
    ]));
    assert!(e.contains("0 existing data keys"), "{e}");
    outputs.extend([o.into_bytes(), e.into_bytes()]);
    let (o, _) = ok(stele(&["auditor", "list", "--db", &stores.db]));
    assert_eq!(o.trim(), rcpt);

    let tokens = tmp.path().join("tokens");
    let writer = token(&tokens, "w", "read,write");
    let auditor = token(&tokens, "aud", "read,reveal");
    let a = Front::start(&stores, &key, &tokens, &["--checkpoint-interval", "1s"]);
    let b = Front::start(&stores, &key, &tokens, &["--checkpoint-interval", "1s"]);
    let mut responses: Vec<Vec<u8>> = Vec::new();
    // Sealed ingestion through both front-ends: rule fields and ad hoc markers.
    for (i, f) in [&a, &b, &a, &b].into_iter().enumerate() {
        let body = json!([
            {"action": "login", "actor": {"email": format!("u{i}-{MARKER}@example.com"), "id": format!("u{i}")}, "ip": format!("10.0.0.{i}-{MARKER}")},
            {"action": "note", "actor": {"id": format!("u{i}")}, "memo": {"stele.seal": format!("{MARKER} memo {i}")}},
        ]);
        let r = http(
            "POST",
            &format!("{}/v1/entries", f.url),
            Some(&writer),
            Some(body.to_string().as_bytes()),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        responses.push(r.body);
    }
    // Refused input that carries a marker: the file log's answer, no echo.
    let file = kit::file_front(&tmp.path().join("filelog"), origin, &tokens);
    for bad in [
        format!(r#"[{{"x":{{"stele.sealed":"{MARKER}"}}}}]"#),
        format!(r#"[{{"x":{{"stele.seal":"{MARKER}","y":1}}}}]"#),
    ] {
        let want = http(
            "POST",
            &format!("{}/v1/entries", file.url),
            Some(&writer),
            Some(bad.as_bytes()),
        )
        .unwrap();
        let have = http(
            "POST",
            &format!("{}/v1/entries", b.url),
            Some(&writer),
            Some(bad.as_bytes()),
        )
        .unwrap();
        assert!(want.status >= 400);
        assert_eq!((have.status, have.text()), (want.status, want.text()));
        responses.push(have.body);
    }
    // Reads of either front-end: no plaintext (checked below).
    kit::wait_for("integration", 120, || {
        http(
            "GET",
            &format!("{}/v1/entries?from=0&to=10", a.url),
            Some(&writer),
            None,
        )
        .is_ok_and(|r| r.status == 200)
    });
    for (f, path) in [
        (&a, "/v1/entries?from=0&to=10"),
        (&b, "/v1/export"),
        (&a, "/metrics"),
        (&b, "/checkpoint"),
    ] {
        let r = http("GET", &format!("{}{path}", f.url), Some(&writer), None).unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        responses.push(r.body);
    }
    // GET /v1/sealed: ciphertext only, only with the reveal scope.
    let r = http(
        "GET",
        &format!("{}/v1/sealed?from=0&to=10", a.url),
        Some(&writer),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    let r = http(
        "GET",
        &format!("{}/v1/sealed?from=0&to=10", b.url),
        Some(&auditor),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    assert!(body.starts_with("stele-sealed v1\n"), "{body}");
    assert!(body.contains(&format!("auditor {rcpt}\n")), "{body}");
    assert_eq!(body.matches(" opening ").count(), 12, "{body}");
    assert_eq!(
        body.matches(&format!("wrap {rcpt} sealed-key ")).count(),
        4,
        "{body}"
    );
    responses.push(r.body);
    // A page of every key's wraps (a mirror fetches it for a new auditor):
    // wraps only, in key ID order, only with an empty range.
    let r = http(
        "GET",
        &format!("{}/v1/sealed?from=0&to=0&wraps=all", a.url),
        Some(&auditor),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let page = r.text();
    assert!(page.contains(&format!("auditor {rcpt}\n")), "{page}");
    let kids: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("wrap {rcpt} sealed-key ")))
        .map(|l| &l[..32])
        .collect();
    assert!(kids.len() >= 4, "{page}");
    assert!(kids.windows(2).all(|w| w[0] < w[1]), "{page}");
    assert!(
        !page.contains(" opening ") && !page.contains("\nmore "),
        "{page}"
    );
    let r = http(
        "GET",
        &format!("{}/v1/sealed?from=0&to=0&wraps={}", b.url, kids[0]),
        Some(&auditor),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text()
            .matches(&format!("wrap {rcpt} sealed-key "))
            .count(),
        kids.len() - 1,
        "{}",
        r.text()
    );
    responses.push(r.body);
    for q in ["from=0&to=10&wraps=all", "from=0&to=0&wraps=nope"] {
        let r = http(
            "GET",
            &format!("{}/v1/sealed?{q}", a.url),
            Some(&auditor),
            None,
        )
        .unwrap();
        assert_eq!(r.status, 400, "{q}: {}", r.text());
    }
    responses.push(page.into_bytes());
    // An HTTP export revealed to the auditor opens every value.
    let r = http(
        "GET",
        &format!("{}/v1/export?reveal-to={rcpt}", a.url),
        Some(&auditor),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let rep = verify_with(&r.body, &vkey, Some(&aud));
    assert_eq!(rep.verdict, Verdict::Verified, "{:#?}", rep.failures);
    assert_eq!(rep.sealed.unwrap().opened, 12);
    responses.push(r.body);

    // The CLI: an export revealed to the auditor, opened by `stele verify`
    // and `stele reveal` with the age-keygen identity.
    let revealed = tmp.path().join("revealed.stele");
    let (o, e) = ok(stele(&[
        "export",
        "--db",
        &stores.db,
        "--signing-key",
        p(&key),
        "-o",
        p(&revealed),
        "--reveal-to",
        &rcpt,
    ]));
    outputs.extend([o.into_bytes(), e.into_bytes()]);
    let verify = |f: &Path, id: &Path| {
        let (o, e) = ok(stele(&[
            "verify",
            p(f),
            "--key",
            &vkey,
            "--identity",
            p(id),
            "--json",
        ]));
        let v: Value = serde_json::from_str(&o).unwrap();
        (v, o.into_bytes(), e.into_bytes())
    };
    let (v, o, e) = verify(&revealed, &aud);
    assert_eq!(v["verdict"], "verified", "{v:#}");
    assert_eq!(
        v["sealed"],
        json!({"values": 12, "opened": 12, "sealed": 0, "forgotten": 0, "redacted": 0})
    );
    outputs.extend([o, e]);
    // A wrong identity: "sealed", no error.
    let (v, o, e) = verify(&revealed, &other);
    assert_eq!(v["verdict"], "verified");
    assert_eq!(v["sealed"]["sealed"], 12);
    assert_eq!(v["sealed"]["opened"], 0);
    outputs.extend([o, e]);
    let (shown, _) = ok(stele(&[
        "reveal",
        p(&revealed),
        "--key",
        &vkey,
        "--identity",
        p(&aud),
    ]));
    assert_eq!(shown.matches(MARKER).count(), 12, "{shown}");
    let opened: Vec<Value> = shown
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        opened
            .iter()
            .any(|l| l["event"]["actor"]["email"] == json!(format!("u0-{MARKER}@example.com"))),
        "{shown}"
    );
    // Not an auditor: refused, naming the fix.
    let (code, _, err) = stele(&[
        "export",
        "--db",
        &stores.db,
        "-o",
        p(&tmp.path().join("no.stele")),
        "--reveal-to",
        &other_rcpt,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("stele auditor add"), "{err}");
    // Without the signing key nothing can be recorded: said, never silent.
    let (code, _, err) = stele(&[
        "export",
        "--db",
        &stores.db,
        "-o",
        p(&tmp.path().join("unrecorded.stele")),
        "--reveal-to",
        &rcpt,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("this read of sealed-field openings is not recorded"),
        "{err}"
    );
    // Added, then removed: its wraps go, exports to it are refused again.
    let _ = ok(stele(&[
        "auditor",
        "add",
        "--db",
        &stores.db,
        "--seal-key",
        p(&seal_key),
        &other_rcpt,
    ]));
    let (o, _) = ok(stele(&["auditor", "list", "--db", &stores.db]));
    assert_eq!(o.lines().count(), 2, "{o}");
    let (_, e) = ok(stele(&[
        "auditor",
        "remove",
        "--db",
        &stores.db,
        &other_rcpt,
    ]));
    assert!(
        e.contains("auditor removed") && !e.contains(" 0 wraps"),
        "{e}"
    );
    let (o, _) = ok(stele(&["auditor", "list", "--db", &stores.db]));
    assert_eq!(o.trim(), rcpt);
    let (code, _, err) = stele(&["auditor", "remove", "--db", &stores.db, &other_rcpt]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an auditor"), "{err}");
    let (code, _, err) = stele(&[
        "export",
        "--db",
        &stores.db,
        "-o",
        p(&tmp.path().join("no.stele")),
        "--reveal-to",
        &other_rcpt,
    ]);
    assert_eq!(code, 2, "{err}");

    // Forget a subject, redact one opening: logged, and a new export still
    // verifies with those values forgotten / redacted.
    let (code, o, e) = stele(&[
        "forget",
        "--db",
        &stores.db,
        "--seal-key",
        p(&seal_key),
        "--subject",
        &format!("nobody-{MARKER}"),
    ]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("no data key for that subject"), "{e}");
    assert!(!contains(e.as_bytes(), MARKER.as_bytes()), "{e}");
    outputs.extend([o.into_bytes(), e.into_bytes()]);
    let (o, e) = ok(stele(&[
        "forget",
        "--db",
        &stores.db,
        "--seal-key",
        p(&seal_key),
        "--subject",
        "u1",
    ]));
    assert!(o.contains("\"forgotten\""), "{o}");
    assert!(!e.contains("warning"), "{e}");
    outputs.extend([o.into_bytes(), e.into_bytes()]);
    let vacuumed = || {
        db_i64(
            &stores.db,
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'stele_seal_records' AND last_vacuum IS NOT NULL",
        )
    };
    assert_eq!(vacuumed(), 0);
    let (o, e) = ok(stele(&[
        "redact",
        "--db",
        &stores.db,
        "--entry",
        "6",
        "--pointer",
        "/ip",
    ]));
    assert!(o.contains("\"redacted\":6"), "{o}");
    // The records row's old version (the opening) is vacuumed away.
    assert_eq!(vacuumed(), 1);
    outputs.extend([o.into_bytes(), e.into_bytes()]);
    let (code, _, e) = stele(&[
        "redact",
        "--db",
        &stores.db,
        "--entry",
        "6",
        "--pointer",
        "/ip",
    ]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("has no opening"), "{e}");
    let (code, _, e) = stele(&[
        "redact",
        "--db",
        &stores.db,
        "--entry",
        "999",
        "--pointer",
        "/ip",
    ]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("entry 999 is beyond the log's"), "{e}");
    assert!(!e.contains("stele checkpoint"), "{e}");
    let after = tmp.path().join("after.stele");
    let _ = ok(stele(&[
        "export",
        "--db",
        &stores.db,
        "--signing-key",
        p(&key),
        "-o",
        p(&after),
        "--reveal-to",
        &rcpt,
    ]));
    let (v, o, e) = verify(&after, &aud);
    assert_eq!(v["verdict"], "verified", "{v:#}");
    // Entries 1-2 are u0's (login + note), 3-4 u1's (forgotten: three
    // values), 5-6 u2's (the login's /ip redacted), 7-8 u3's.
    assert_eq!(
        v["sealed"],
        json!({"values": 12, "opened": 8, "sealed": 0, "forgotten": 3, "redacted": 1}),
        "{v:#}"
    );
    outputs.extend([o, e]);
    // The older export still verifies (copies made before are beyond reach).
    assert_eq!(verify(&revealed, &aud).0["verdict"], "verified");
    let lines = std::fs::read_to_string(&after).unwrap();
    let events: Vec<Value> = lines
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone())
        .collect();
    let forget = events
        .iter()
        .find(|e| e["type"] == "stele.forget")
        .expect("stele.forget");
    assert!(
        forget["key"].as_str().unwrap().len() == 32 && forget["by"].is_string(),
        "{forget}"
    );
    let redact = events
        .iter()
        .find(|e| e["type"] == "stele.redact")
        .expect("stele.redact");
    assert_eq!(
        (redact["entry"].clone(), redact["pointer"].clone()),
        (json!(6), json!("/ip"))
    );
    // Auditor changes are logged too (FORMAT 13.7).
    let changes: Vec<(Value, Value)> = events
        .iter()
        .filter(|e| e["type"] == "stele.auditor")
        .map(|e| (e["action"].clone(), e["recipient"].clone()))
        .collect();
    assert_eq!(changes[0], (json!("add"), json!(rcpt)), "{changes:?}");
    assert!(
        changes.contains(&(json!("remove"), json!(other_rcpt))),
        "{changes:?}"
    );
    // The revealing reads are recorded (stele.access naming the recipient).
    assert!(
        events.iter().any(|e| e["type"] == "stele.access"
            && e["read"]["reveal_to"] == json!([rcpt.clone()])
            && e["actor"] == "aud"),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "stele.access" && e["target"] == "/v1/sealed")
    );
    drop((a, b, file));

    // No plaintext: not in a dump of the database, not in any object, not
    // in any answer or output, not in the files beside the keys.
    // Every table: text columns appear as they are, bytea columns (entry
    // lines, records, keys, wraps) in pg_dump's hex; both are scanned.
    let dump = pg_dump(&stores.db);
    assert!(
        !contains(&dump, MARKER.as_bytes()),
        "the database holds the plaintext"
    );
    assert!(
        !contains(&dump, hex(MARKER.as_bytes()).as_bytes()),
        "a bytea column holds the plaintext"
    );
    // The hex scan reaches the bytea rows: the records' lines are there.
    assert!(contains(&dump, hex(b" opening ").as_bytes()));
    let objs = objects(&stores);
    assert!(objs.len() > 3);
    for (name, bytes) in &objs {
        assert!(
            !contains(bytes, MARKER.as_bytes()),
            "object {name} holds the plaintext"
        );
    }
    for (i, r) in responses.iter().chain(&outputs).enumerate() {
        assert!(
            !contains(r, MARKER.as_bytes()),
            "answer or output {i} holds the plaintext"
        );
    }
    for f in std::fs::read_dir(tmp.path()).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            assert!(
                !contains(&std::fs::read(&f).unwrap(), MARKER.as_bytes()),
                "{f:?}"
            );
        }
    }
    // The scans would have seen it: the openings decrypt to it.
    assert!(shown.contains(MARKER));
}

fn files_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            for (k, v) in files_under(&e.path()) {
                let _ = out.insert(format!("{name}/{k}"), v);
            }
        } else {
            let _ = out.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    out
}

// `stele migrate` carries sealed fields both ways: a sealed directory log
// (auditor, a forgotten subject, a redacted opening) into PostgreSQL, where
// its auditor opens the same values and new values of a known subject use
// its key, and back into a directory whose sidecar is the original's.
#[test]
fn migrate_carries_keys_wraps_and_openings_both_ways() {
    let stores = Stores::new("seal_migrate");
    let tmp = tempfile::tempdir().unwrap();
    let origin = "example.com/cluster-seal-migrate";
    let dir = tmp.path().join("sealed-dir");
    let vkey = ok(stele(&[
        "init",
        p(&dir),
        "--origin",
        origin,
        "--seal",
        "/actor/email",
        "--seal",
        "/ip",
        "--subject",
        "/actor/id",
    ]))
    .0
    .trim()
    .to_string();
    let (aud, rcpt) = age_keygen(tmp.path(), "auditor.key");
    let _ = ok(stele(&["auditor", "add", p(&dir), &rcpt]));
    for i in 0..4 {
        let ev = json!({"action": "login", "actor": {"email": format!("u{i}-{MARKER}@example.com"), "id": format!("u{i}")}, "ip": format!("10.0.0.{i}-{MARKER}"), "memo": {"stele.seal": format!("{MARKER} {i}")}});
        let _ = ok(stele(&["append", p(&dir), "--event", &ev.to_string()]));
    }
    let _ = ok(stele(&["forget", p(&dir), "--subject", "u1"]));
    // Entry 1 is the auditor's addition: entry 4 is u2's event.
    let _ = ok(stele(&[
        "redact",
        p(&dir),
        "--entry",
        "4",
        "--pointer",
        "/ip",
    ]));
    let (code, _, e) = stele(&["redact", p(&dir), "--entry", "99", "--pointer", "/ip"]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("entry 99 is beyond the log's"), "{e}");
    assert!(!e.contains("stele checkpoint"), "{e}");
    let _ = ok(stele(&["checkpoint", p(&dir)]));
    let counts = json!({"values": 12, "opened": 8, "sealed": 0, "forgotten": 3, "redacted": 1});
    let verify = |f: &Path| {
        let (o, _) = ok(stele(&[
            "verify",
            p(f),
            "--key",
            &vkey,
            "--identity",
            p(&aud),
            "--json",
        ]));
        let v: Value = serde_json::from_str(&o).unwrap();
        assert_eq!(v["verdict"], "verified", "{v:#}");
        v["sealed"].clone()
    };
    let mut before = files_under(&dir.join("sealed"));
    // `sealed/rules` records the rules a writer opened the log with (a
    // partial-restore check): a migrated directory has it once a writer
    // opens it, below.
    let rules = before
        .remove("rules")
        .expect("the directory's recorded rules");

    // Into PostgreSQL: a sealed log needs a new sealing key file.
    let (code, _, err) = stele(&["migrate", p(&dir), &stores.db, "--objects", &stores.objects]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--seal-key"), "{err}");
    assert_eq!(stores.object_count(), 0, "nothing was written");
    let sk = tmp.path().join("cluster.seal");
    let _ = ok(stele(&[
        "migrate",
        p(&dir),
        &stores.db,
        "--objects",
        &stores.objects,
        "--seal-key",
        p(&sk),
    ]));
    assert_eq!(
        std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (o, _) = ok(stele(&["auditor", "list", "--db", &stores.db]));
    assert_eq!(o.trim(), rcpt);
    let f = tmp.path().join("cluster.stele");
    let _ = ok(stele(&[
        "export",
        "--db",
        &stores.db,
        "-o",
        p(&f),
        "--reveal-to",
        &rcpt,
    ]));
    assert_eq!(verify(&f), counts);
    // A new value of a known subject is sealed under that subject's key.
    let signer = key::load(&dir.join("key")).unwrap();
    rt().block_on(async {
        let c = Cluster::open(
            &stores.location(),
            Some(signer),
            opts(Some(Arc::new(SealKey::load(&sk).unwrap()))),
        )
        .await
        .unwrap();
        let r = c
            .append_batch(vec![
                json!({"actor": {"id": "u2"}, "ip": format!("10.9.9.9-{MARKER}")}),
            ])
            .await
            .unwrap();
        let size = c.sync(true).await.unwrap();
        let lines = c.entries(0, size).await.unwrap();
        let key_of = |i: usize, ptr: &str| {
            let v: Value = serde_json::from_slice(&lines[i]).unwrap();
            v["event"].pointer(ptr).unwrap()["stele.sealed"]["key"].clone()
        };
        // Entry 4 is u2's login (entry 0 is the genesis, 1 the auditor's
        // addition, u0..u3 are 2..=5).
        assert_eq!(key_of(r[0].seq as usize, "/ip"), key_of(4, "/memo"));
    });

    // And back into a directory: the sidecar is the original's, plus the
    // new opening.
    let back = tmp.path().join("back");
    let (code, _, err) = stele(&["migrate", &stores.db, p(&back)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--seal-key"), "{err}");
    assert!(!back.exists());
    let _ = ok(stele(&[
        "migrate",
        &stores.db,
        p(&back),
        "--signing-key",
        p(&dir.join("key")),
        "--seal-key",
        p(&sk),
    ]));
    let after = files_under(&back.join("sealed"));
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "the same sidecar files"
    );
    for (name, bytes) in &before {
        if name == "records" {
            assert!(
                after[name].starts_with(bytes),
                "records: the original's first"
            );
            assert!(after[name].len() > bytes.len(), "and the new opening");
        } else {
            assert_eq!(&after[name], bytes, "{name}");
        }
    }
    let v = verify(&back);
    assert_eq!(
        v,
        json!({"values": 13, "opened": 9, "sealed": 0, "forgotten": 3, "redacted": 1})
    );
    // The directory goes on sealing with the same keys and rules.
    let ev = json!({"actor": {"id": "u0"}, "ip": format!("10.8.8.8-{MARKER}")});
    let _ = ok(stele(&["append", p(&back), "--event", &ev.to_string()]));
    let entries = std::fs::read_to_string(back.join("entries.jsonl")).unwrap();
    assert!(!entries.contains(MARKER));
    let now = files_under(&back.join("sealed"));
    assert_eq!(now.len(), after.len() + 1);
    assert_eq!(now.get("rules"), Some(&rules));
}

// A request made to a file log with sealed fields, retried on a front-end
// after `stele migrate`: its key came without a body digest, so the retry
// is compared with the entries and their openings, as a restarted file log
// compares it. Before, any body under such a key got the old receipts.
#[test]
fn a_retry_of_a_sealed_request_made_before_a_migration_is_compared_with_its_openings() {
    let stores = Stores::new("seal_migrate_idem");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let tokens = tmp.path().join("tokens");
    let writer = token(&tokens, "w", "read,write");
    let diag =
        |who: &str, note: &str| format!(r#"{{"type":"diag","actor":"{who}","note":"{note}"}}"#);
    let front = kit::file_front_with(
        &dir,
        "example.com/cluster-migrate-idem",
        &tokens,
        &["--seal", "/note", "--subject", "/actor"],
    );
    let url = |f: &Front| format!("{}/v1/entries", f.url);
    let post = |f: &Front, k: &str, body: &str| {
        let (r, replayed) = kit::post_keyed(&url(f), &writer, k, body.as_bytes());
        (r.status, replayed, r.text())
    };
    let two = format!("[{},{}]", diag("frank", MARKER), diag("gina", MARKER));
    let (code, _, first) = post(&front, "k1", &two);
    assert_eq!(code, 200, "{first}");
    let (code, _, text) = post(&front, "k2", &diag("hal", MARKER));
    assert_eq!(code, 200, "{text}");
    assert!(front.terminate().success());
    let sk = tmp.path().join("cluster.seal");
    let _ = ok(stele(&[
        "migrate",
        p(&dir),
        &stores.db,
        "--objects",
        &stores.objects,
        "--seal-key",
        p(&sk),
    ]));
    let size = || db_i64(&stores.db, "SELECT next FROM stele_next WHERE id = 1");
    let before = size();
    let cf = Front::start(&stores, &dir.join("key"), &tokens, &["--seal-key", p(&sk)]);
    // The same body: the first receipts, nothing appended.
    let (code, replayed, again) = post(&cf, "k1", &two);
    assert!(code == 200 && replayed, "{code} {again}");
    assert_eq!(
        serde_json::from_str::<Value>(&again).unwrap(),
        serde_json::from_str::<Value>(&first).unwrap()
    );
    // Another sealed value, another event elsewhere, fewer events: refused.
    for other in [
        format!(
            "[{},{}]",
            diag("frank", MARKER),
            diag("gina", "NOT-THE-VALUE")
        ),
        format!("[{},{}]", diag("frank", MARKER), diag("ivy", MARKER)),
        format!("[{}]", diag("frank", MARKER)),
        diag("hal", MARKER),
    ] {
        let (code, replayed, text) = post(&cf, "k1", &other);
        assert!(code == 422 && !replayed, "{other}: {code} {text}");
        assert!(text.contains("different body"), "{text}");
        assert!(!text.contains(MARKER), "{text}");
    }
    assert_eq!(size(), before, "nothing was written");
    // A digest voided to zeros by a forget of an older version: hal's key
    // forgotten, the retry cannot be compared, whatever it holds.
    let _ = ok(stele(&[
        "forget",
        "--db",
        &stores.db,
        "--seal-key",
        p(&sk),
        "--subject",
        "hal",
    ]));
    let voided = db_i64(
        &stores.db,
        "WITH u AS (UPDATE stele_requests SET digest = '\\x0000000000000000000000000000000000000000000000000000000000000000' WHERE key = 'k2' RETURNING 1) SELECT count(*) FROM u",
    );
    assert_eq!(voided, 1);
    let before = size();
    for guess in [MARKER, "NOT-THE-VALUE"] {
        let (code, replayed, text) = post(&cf, "k2", &diag("hal", guess));
        assert!(code == 422 && !replayed, "{code} {text}");
        assert!(text.contains("cannot be compared"), "{text}");
    }
    let (code, replayed, text) = post(&cf, "k1", &two);
    assert!(code == 200 && replayed, "{code} {text}");
    assert_eq!(size(), before, "nothing was written");
    drop(cf);
}

#[test]
fn a_retry_cannot_confirm_a_forgotten_or_redacted_value() {
    // Red-team findings: a redaction left the request's digest in
    // stele_requests, and a running front-end kept a plain SHA-256 of each
    // body after a forget: a retry under the old key told a right guess of
    // the value (200, replayed) from a wrong one (422).
    let stores = Stores::new("seal_idem");
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("signing.key");
    let (code, _, err) = stele(&[
        "init",
        "--db",
        &stores.db,
        "--objects",
        &stores.objects,
        "--origin",
        "example.com/cluster-idem",
        "--signing-key",
        p(&key),
    ]);
    assert_eq!(code, 0, "{err}");
    let seal_key = tmp.path().join("signing.key.seal");
    let tokens = tmp.path().join("tokens");
    let writer = token(&tokens, "w", "read,write");
    let a = Front::start(&stores, &key, &tokens, &[]);
    let url = |f: &Front| format!("{}/v1/entries", f.url);
    let diag = |who: &str, note: &str| {
        format!(r#"{{"type":"diag","actor":"{who}","note":{{"stele.seal":"{note}"}}}}"#)
    };
    let post = |f: &Front, k: &str, who: &str, note: &str| {
        let (r, replayed) = kit::post_keyed(&url(f), &writer, k, diag(who, note).as_bytes());
        (r.status, replayed, r.text())
    };
    let (code, _, first) = post(&a, "k1", "frank", "HIV-POSITIVE");
    assert_eq!(code, 200, "{first}");
    let (code, _, d2) = post(&a, "k2", "gina", "HIV-POSITIVE");
    assert_eq!(code, 200, "{d2}");
    let (code, _, d3) = post(&a, "k3", "hal", "HIV-POSITIVE");
    assert_eq!(code, 200, "{d3}");
    // Before: another body under a key is refused.
    assert_eq!(post(&a, "k1", "frank", "HIV-NEGATIVE").0, 422);
    assert_eq!(post(&a, "k2", "gina", "HIV-NEGATIVE").0, 422);
    // Forget frank while A runs: its answer no longer depends on the guess.
    let _ = ok(stele(&[
        "forget",
        "--db",
        &stores.db,
        "--seal-key",
        p(&seal_key),
        "--subject",
        "frank",
    ]));
    // Redacts the note of the entry a receipt names.
    let redact = |receipt: &str| {
        let seq = serde_json::from_str::<Value>(receipt).unwrap()[0]["seq"]
            .as_u64()
            .unwrap()
            .to_string();
        let _ = ok(stele(&[
            "redact",
            "--db",
            &stores.db,
            "--entry",
            &seq,
            "--pointer",
            "/note",
        ]));
    };
    // The answer of a retry whose request's sealed value is gone: the file
    // log's (serve.rs a_retry_after_a_restart_is_compared_with_its_sealed_values).
    let unreadable = |(code, replayed, text): &(u16, bool, String)| {
        assert!(*code == 422 && !replayed, "{code} {text}");
        assert!(
            text.contains("has since been forgotten or redacted: a retry cannot be compared"),
            "{text}"
        );
    };
    let guesses = |f: &Front, k: &str, who: &str| {
        ["HIV-POSITIVE", "HIV-NEGATIVE"].map(|g| {
            let (code, replayed, text) = post(f, k, who, g);
            (code, replayed, text)
        })
    };
    // The database's size: what the log holds.
    let size = || db_i64(&stores.db, "SELECT next FROM stele_next WHERE id = 1");
    let before = size();
    let [right, wrong] = guesses(&a, "k1", "frank");
    assert_eq!(right, wrong);
    unreadable(&right);
    // Another event under the forgotten request's key is refused too: never
    // acknowledged with the old receipts and silently not written.
    let (code, replayed, text) = post(&a, "k1", "frank", "A-NEW-NOTE");
    assert!(code == 422 && !replayed, "{code} {text}");
    let other_event = br#"{"type":"login","actor":"zed"}"#;
    let (r, replayed) = kit::post_keyed(&url(&a), &writer, "k1", other_event);
    assert!(r.status == 422 && !replayed, "{} {}", r.status, r.text());
    assert_eq!(size(), before, "nothing was written");
    // A request that held no value under the forgotten key is still
    // compared.
    let (code, _, text) = post(&a, "k2", "gina", "HIV-NEGATIVE");
    assert_eq!(code, 422, "{text}");
    assert!(text.contains("different body"), "{text}");
    let (code, replayed, text) = post(&a, "k2", "gina", "HIV-POSITIVE");
    assert!(code == 200 && replayed, "{code} {text}");
    // Redact ivy's note, then a fresh front-end (nothing kept in memory)
    // and A.
    let (code, _, d4) = post(&a, "k4", "ivy", "HIV-POSITIVE");
    assert_eq!(code, 200, "{d4}");
    assert_eq!(post(&a, "k4", "ivy", "HIV-NEGATIVE").0, 422);
    redact(&d4);
    let b = Front::start(&stores, &key, &tokens, &[]);
    let before = size();
    for f in [&a, &b] {
        let [right, wrong] = guesses(f, "k4", "ivy");
        assert_eq!(right, wrong);
        unreadable(&right);
        let (r, replayed) = kit::post_keyed(&url(f), &writer, "k4", other_event);
        assert!(r.status == 422 && !replayed, "{} {}", r.status, r.text());
    }
    assert_eq!(size(), before, "nothing was written");
    // Only that request's digest: another one still tells bodies apart.
    let (code, _, d5) = post(&a, "k5", "jo", "HIV-POSITIVE");
    assert_eq!(code, 200, "{d5}");
    let (code, _, d6) = post(&a, "k6", "kim", "HIV-POSITIVE");
    assert_eq!(code, 200, "{d6}");
    redact(&d5);
    assert_eq!(post(&b, "k6", "kim", "HIV-NEGATIVE").0, 422);
    let (code, replayed, _) = post(&b, "k6", "kim", "HIV-POSITIVE");
    assert!(code == 200 && replayed);
    drop((a, b));
}
