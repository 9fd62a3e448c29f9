//! `stele init/serve/export/migrate` on PostgreSQL + S3 (real servers, see
//! cluster/kit.rs): two front-ends on one log, reads from either, bad input
//! answered exactly as a file log's server answers it, exports that
//! `stele verify` accepts, and a byte-for-byte round trip through
//! `stele migrate`.

mod common;
#[path = "cluster/kit.rs"]
mod kit;

use kit::{Front, Stores, http, stele, token};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use stele_core::hash::{Hash, leaf_hash};
use stele_writer::cluster::{Cluster, ClusterOptions};

const ORIGIN: &str = "example.com/cluster-http";

fn receipts(r: &kit::Resp) -> Vec<(u64, Hash)> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["seq"].as_u64().unwrap(),
                Hash::from_base64(x["leaf_hash"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn init_serve_export_verify_and_migrate_round_trip() {
    let stores = Stores::new("http");
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("signing.key");
    let vkey = kit::init(&stores.db, &stores.objects, ORIGIN, &key);
    assert!(vkey.starts_with(ORIGIN), "{vkey}");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A second init on the same stores is refused, and makes no key.
    let key2 = tmp.path().join("other.key");
    let (code, _, err) = stele(&[
        "init",
        "--db",
        &stores.db,
        "--objects",
        &stores.objects,
        "--origin",
        ORIGIN,
        "--signing-key",
        key2.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already holds"), "{err}");
    assert!(!key2.exists());

    let (tokens, tok) = token(tmp.path());
    let a = Front::start(&stores, &key, &tokens, &["--checkpoint-interval", "1s"]);
    let b = Front::start(&stores, &key, &tokens, &["--checkpoint-interval", "1s"]);

    // Appends through both front-ends.
    let mut got = Vec::new();
    for i in 0..10 {
        let f = if i % 2 == 0 { &a } else { &b };
        let body: Vec<Value> = (0..25)
            .map(|j| json!({"type": "t", "i": i, "j": j}))
            .collect();
        let r = http(
            "POST",
            &format!("{}/v1/entries", f.url),
            Some(&tok),
            Some(Value::from(body).to_string().as_bytes()),
        )
        .unwrap();
        got.extend(receipts(&r));
    }
    let mut seqs: Vec<u64> = got.iter().map(|r| r.0).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=250).collect::<Vec<_>>());

    // Bad input: answered exactly as a file log's server answers it, and
    // nothing is written.
    let file_front = kit::file_front(&tmp.path().join("filelog"), ORIGIN, &tokens);
    let big = "x".repeat(70_000);
    for body in [
        "[{\"a\":1}, 5]".to_string(),
        "{\"type\":\"stele.genesis\"}".to_string(),
        "[{\"a\":1},{\"stele\":{\"token\":\"x\"}}]".to_string(),
        format!("{{\"big\":\"{big}\"}}"),
        "{\"n\":9007199254740993}".to_string(),
        "{\"a\":1,\"a\":2}".to_string(),
        "not json".to_string(),
        "{\"deep\":".repeat(70) + "1" + &"}".repeat(70),
    ] {
        let want = http(
            "POST",
            &format!("{}/v1/entries", file_front.url),
            Some(&tok),
            Some(body.as_bytes()),
        )
        .unwrap();
        let have = http(
            "POST",
            &format!("{}/v1/entries", a.url),
            Some(&tok),
            Some(body.as_bytes()),
        )
        .unwrap();
        assert!(want.status >= 400, "{}", want.text());
        assert_eq!(
            (have.status, have.text()),
            (want.status, want.text()),
            "{body:.80}"
        );
    }
    let no_token = http("POST", &format!("{}/v1/entries", b.url), None, Some(b"{}")).unwrap();
    assert_eq!(no_token.status, 401);
    let metrics = http("GET", &format!("{}/metrics", a.url), Some(&tok), None).unwrap();
    assert!(
        metrics
            .text()
            .contains("stele_cluster_sequenced_entries 251"),
        "{}",
        metrics.text()
    );
    // The latest checkpoint's size and the count (from the database).
    let cp = http("GET", &format!("{}/checkpoint", a.url), Some(&tok), None).unwrap();
    let cp_size = cp.text().lines().nth(1).unwrap().to_string();
    let m = metrics.text();
    let gauge = |name: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {m}"))
            .to_string()
    };
    assert_eq!(gauge("stele_checkpoint_size"), cp_size, "{m}");
    assert!(
        gauge("stele_checkpoints").parse::<u64>().unwrap() >= 1,
        "{m}"
    );

    // Reads from either front-end: a proof from A checks against B's checkpoint.
    let (seq, leaf) = got[137];
    let p = http(
        "GET",
        &format!("{}/v1/proof/inclusion?index={seq}", a.url),
        Some(&tok),
        None,
    )
    .unwrap();
    assert_eq!(p.status, 200, "{}", p.text());
    let p = p.json();
    let size = p["tree_size"].as_u64().unwrap();
    kit::wait_for("a checkpoint covering the proof at B", 60, || {
        let cp = http("GET", &format!("{}/checkpoint", b.url), Some(&tok), None).unwrap();
        cp.status == 200
            && cp.text().lines().nth(1).and_then(|s| s.parse::<u64>().ok()) >= Some(size)
    });
    assert_eq!(
        Hash::from_base64(p["leaf_hash"].as_str().unwrap()).unwrap(),
        leaf
    );
    let proof: Vec<Hash> = p["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
        .collect();
    let root = Hash::from_base64(p["root"].as_str().unwrap()).unwrap();
    stele_core::merkle::verify_inclusion(&leaf, seq, size, &proof, &root).unwrap();
    // The same proof from B.
    let pb = http(
        "GET",
        &format!("{}/v1/proof/inclusion?index={seq}&size={size}", b.url),
        Some(&tok),
        None,
    )
    .unwrap();
    assert_eq!(pb.json(), p);
    // Tiles: the level-0 tile of the proof's tree, the same bytes from both.
    assert!(size < 256);
    let ta = http(
        "GET",
        &format!("{}/tile/0/000.p/{size}", a.url),
        Some(&tok),
        None,
    )
    .unwrap();
    let tb = http(
        "GET",
        &format!("{}/tile/0/000.p/{size}", b.url),
        Some(&tok),
        None,
    )
    .unwrap();
    assert_eq!(ta.status, 200, "{}", ta.text());
    assert_eq!(ta.body.len(), size as usize * 32);
    let full = http("GET", &format!("{}/tile/0/000", a.url), Some(&tok), None).unwrap();
    assert_eq!(full.status, 404, "{}", full.text());
    assert_eq!(ta.body, tb.body);
    assert_eq!(&ta.body[seq as usize * 32..][..32], &leaf.0);
    // Entries and bundles come back byte for byte (and are recorded).
    let e = http(
        "GET",
        &format!("{}/v1/entries?from={seq}&to={}", b.url, seq + 1),
        Some(&tok),
        None,
    )
    .unwrap();
    assert_eq!(e.status, 200, "{}", e.text());
    assert_eq!(leaf_hash(e.body.strip_suffix(b"\n").unwrap()), leaf);
    // A bundle (charged against --max-read-bytes at its largest, then at
    // its size) holds the page's lines.
    let page = http(
        "GET",
        &format!("{}/v1/entries?from=0&to={size}", a.url),
        Some(&tok),
        None,
    )
    .unwrap();
    assert_eq!(page.status, 200, "{}", page.text());
    let bundle = http(
        "GET",
        &format!("{}/tile/entries/000.p/{size}", b.url),
        Some(&tok),
        None,
    )
    .unwrap();
    assert_eq!(bundle.status, 200, "{}", bundle.text());
    let lines: Vec<&[u8]> = page
        .body
        .strip_suffix(b"\n")
        .unwrap()
        .split(|c| *c == b'\n')
        .collect();
    assert_eq!(
        stele_core::tiles::parse_entry_bundle(&bundle.body).unwrap(),
        lines
    );
    let bad_tile = http("GET", &format!("{}/tile/0/999", a.url), Some(&tok), None).unwrap();
    assert_eq!(bad_tile.status, 404);

    // An export over HTTP verifies with `stele verify`.
    let ex = http("GET", &format!("{}/v1/export", a.url), Some(&tok), None).unwrap();
    assert_eq!(ex.status, 200, "{}", ex.text());
    let exf = tmp.path().join("http.stele");
    std::fs::write(&exf, &ex.body).unwrap();
    let (code, out, err) = stele(&["verify", exf.to_str().unwrap(), "--key", &vkey]);
    assert_eq!(code, 0, "{out}{err}");
    // Every receipt is in it with its leaf hash.
    let lines: Vec<&[u8]> = ex
        .body
        .split(|c| *c == b'\n')
        .filter(|l| l.starts_with(b"{"))
        .collect();
    for (s, h) in &got {
        assert_eq!(leaf_hash(lines[*s as usize]), *h, "entry {s}");
    }

    // Graceful stop signs everything.
    assert!(a.terminate().success());
    assert!(b.terminate().success());

    // `stele export --db` and `stele verify`.
    let cli = tmp.path().join("cli.stele");
    let (code, _, err) = stele(&[
        "export",
        "--db",
        &stores.db,
        "-o",
        cli.to_str().unwrap(),
        "--signing-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = stele(&["verify", cli.to_str().unwrap(), "--key", &vkey]);
    assert_eq!(code, 0, "{out}{err}");

    // The private key is in neither store.
    let secret = std::fs::read_to_string(&key).unwrap();
    // `PRIVATE+KEY+<origin>+<key hash>+<base64>`: the base64 may hold a
    // `+` itself, so it is taken after the fourth (a cut at the last one
    // left a few characters that an export can hold by chance).
    let secret = secret.trim().splitn(5, '+').nth(4).unwrap().to_string();
    assert!(secret.len() > 40, "{secret}");
    assert!(!std::fs::read_to_string(&cli).unwrap().contains(&secret));

    // Migrate out, in again, out again: the same bytes.
    let d1 = tmp.path().join("d1");
    let (code, _, err) = stele(&[
        "migrate",
        &stores.db,
        d1.to_str().unwrap(),
        "--signing-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let stores2 = Stores::new("http2");
    let (code, _, err) = stele(&[
        "migrate",
        d1.to_str().unwrap(),
        &stores2.db,
        "--objects",
        &stores2.objects,
    ]);
    assert_eq!(code, 0, "{err}");
    let d2 = tmp.path().join("d2");
    let (code, _, err) = stele(&[
        "migrate",
        &stores2.db,
        d2.to_str().unwrap(),
        "--signing-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    for f in [
        "entries.jsonl",
        "checkpoints",
        "tree",
        "index",
        "stele.json",
    ] {
        assert_eq!(
            std::fs::read(d1.join(f)).unwrap(),
            std::fs::read(d2.join(f)).unwrap(),
            "{f}"
        );
    }
    // The copies are the exported log, and a working file log.
    let cli_lines: Vec<u8> = std::fs::read(&cli)
        .unwrap()
        .split_inclusive(|c| *c == b'\n')
        .filter(|l| l.starts_with(b"{"))
        .flatten()
        .copied()
        .collect();
    let d1_entries = std::fs::read(d1.join("entries.jsonl")).unwrap();
    assert!(d1_entries.starts_with(&cli_lines) || cli_lines.starts_with(&d1_entries));
    let (code, out, err) = stele(&["verify", d2.to_str().unwrap(), "--key", &vkey]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = stele(&[
        "append",
        d2.to_str().unwrap(),
        "--event",
        "{\"after\":\"migrate\"}",
    ]);
    assert_eq!(code, 0, "{err}");
    // Migrating into a database that holds a log is refused.
    let (code, _, err) = stele(&[
        "migrate",
        d1.to_str().unwrap(),
        &stores2.db,
        "--objects",
        &stores2.objects,
    ]);
    assert_eq!(code, 2, "{err}");
    drop(file_front);
}

// A cluster's page or bundle is sized only once fetched: the most it could
// be is held only while it is fetched, and the response is then charged its
// real size. Charged at its most until sent (64 MiB for a page of 1000
// entries), a client's second small page at once was refused under a small
// --max-read-bytes, and four pages in flight filled the default one.
#[test]
fn concurrent_small_pages_of_a_cluster_are_not_refused() {
    let stores = Stores::new("pages");
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("signing.key");
    let _ = kit::init(&stores.db, &stores.objects, ORIGIN, &key);
    let (tokens, tok) = token(tmp.path());
    let a = Front::start(&stores, &key, &tokens, &["--max-read-bytes", "1048576"]);
    let body: Vec<Value> = (0..50).map(|j| json!({"type": "t", "j": j})).collect();
    let r = http(
        "POST",
        &format!("{}/v1/entries", a.url),
        Some(&tok),
        Some(Value::from(body).to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // Until the 51 entries are integrated (readable from the stores).
    let t = std::time::Instant::now();
    while http(
        "GET",
        &format!("{}/v1/entries?from=50&to=51", a.url),
        Some(&tok),
        None,
    )
    .unwrap()
    .status
        != 200
    {
        assert!(t.elapsed().as_secs() < 120, "entries never integrated");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let readers: Vec<_> = (0..8)
        .map(|i| {
            let (url, tok) = (a.url.clone(), tok.clone());
            std::thread::spawn(move || {
                let path = if i % 2 == 0 {
                    "/v1/entries?from=0".to_string()
                } else {
                    "/tile/entries/000.p/51".to_string()
                };
                http("GET", &format!("{url}{path}"), Some(&tok), None).unwrap()
            })
        })
        .collect();
    for r in readers {
        let r = r.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[test]
fn range_and_selected_exports_are_the_file_backends_bytes() {
    let stores = Stores::new("ranges");
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("signing.key");
    let p = |f: &str| tmp.path().join(f).to_str().unwrap().to_string();
    let vkey = kit::init(&stores.db, &stores.objects, ORIGIN, &key);
    // Entries over three bundles; checkpoints at 1, 151, 401, 701 and 741:
    // inside a range, at its ends and after it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Cluster::open(
            &stores.location(),
            Some(stele_writer::key::load(&key).unwrap()),
            ClusterOptions {
                integrator: false,
                pool_size: 4,
                ..ClusterOptions::default()
            },
        )
        .await
        .unwrap();
        for (b, n) in [150, 250, 300, 40].into_iter().enumerate() {
            let events = (0..n)
                .map(|i| json!({"type": "t", "b": b, "i": i}))
                .collect();
            let _ = c.append_batch(events).await.unwrap();
            let _ = c.sync(true).await.unwrap();
        }
        assert_eq!(c.checkpoints().await.unwrap().len(), 5);
    });
    // The same log as a directory, and a log that takes the CLI's access
    // records (so the directory keeps its checkpoints).
    let (code, _, err) = stele(&[
        "migrate",
        &stores.db,
        &p("dir"),
        "--signing-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = stele(&["init", &p("reads"), "--origin", "example.com/reads"]);
    assert_eq!(code, 0, "{err}");
    let selections: [&[&str]; 5] = [
        &["--from", "100", "--to", "600"],
        &["--from", "151", "--to", "401"],
        &["--from", "0", "--to", "741"],
        &["--from", "740", "--to", "741"],
        &["--entries", "600,3,257,3,0,740"],
    ];
    for sel in selections {
        // Without --signing-key nothing is appended to the cluster log.
        let mut args = vec!["export", "--db", &stores.db, "-o"];
        let c_out = p("cluster.stele");
        args.push(&c_out);
        args.extend_from_slice(sel);
        let (code, _, err) = stele(&args);
        assert_eq!(code, 0, "{sel:?}: {err}");
        let f_out = p("file.stele");
        let dir = p("dir");
        let reads = p("reads");
        let mut args = vec!["export", &dir, "--access-log", &reads, "-o", &f_out];
        args.extend_from_slice(sel);
        let (code, _, err) = stele(&args);
        assert_eq!(code, 0, "{sel:?}: {err}");
        let (c, f) = (
            std::fs::read(&c_out).unwrap(),
            std::fs::read(&f_out).unwrap(),
        );
        assert!(c.len() > 200, "{sel:?}");
        assert!(
            c == f,
            "{sel:?}: the cluster's export differs from the file log's:\n{}\n---\n{}",
            String::from_utf8_lossy(&c),
            String::from_utf8_lossy(&f)
        );
        let (code, out, err) = stele(&["verify", &c_out, "--key", &vkey]);
        assert_eq!(code, 0, "{sel:?}: {out}{err}");
    }
    // Bad selections: the file log's messages, nothing written.
    for (sel, want) in [
        (
            &["--from", "600", "--to", "100"][..],
            "range 600..100 is not a non-empty part of the log's 741 entries",
        ),
        (
            &["--entries", "741"][..],
            "entry 741 is beyond the log's 741 entries",
        ),
    ] {
        let out = p("bad.stele");
        let mut args = vec!["export", "--db", &stores.db, "-o", &out];
        args.extend_from_slice(sel);
        let (code, _, err) = stele(&args);
        assert_eq!(code, 2, "{sel:?}: {err}");
        assert!(err.contains(want), "{sel:?}: {err}");
        assert!(!std::path::Path::new(&out).exists());
    }

    // Over HTTP: the read is recorded first, the export ends with a
    // checkpoint covering it, and it verifies.
    let (tokens, tok) = token(tmp.path());
    let front = Front::start(&stores, &key, &tokens, &[]);
    for q in ["from=100&to=600", "entries=3,257,600", "from=740&to=741"] {
        let r = kit::get(&format!("{}/v1/export?{q}", front.url), &tok);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let f = p("http.stele");
        std::fs::write(&f, &r.body).unwrap();
        let (code, out, err) = stele(&["verify", &f, "--key", &vkey]);
        assert_eq!(code, 0, "{q}: {out}{err}");
    }
    for (q, status) in [
        ("from=600&to=100", 400),
        ("from=1&to=100000", 400),
        ("entries=99999", 400),
        // Openings need the reveal scope, as on a file log's server.
        ("entries=1&reveal-to=age1x", 403),
    ] {
        let r = kit::get(&format!("{}/v1/export?{q}", front.url), &tok);
        assert_eq!(r.status, status, "{q}: {}", r.text());
    }
    // Three exports, three access records.
    let m = kit::get(&format!("{}/metrics", front.url), &tok);
    assert!(
        m.text().contains("stele_cluster_sequenced_entries 744"),
        "{}",
        m.text()
    );
}

#[test]
fn idempotency_keys_hold_across_front_ends_and_restarts() {
    let stores = Stores::new("idem");
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("signing.key");
    let _ = kit::init(&stores.db, &stores.objects, ORIGIN, &key);
    let (tokens, tok) = token(tmp.path());
    let (code, other, err) = stele(&[
        "token",
        "add",
        tokens.to_str().unwrap(),
        "other",
        "--scope",
        "read,write",
    ]);
    assert_eq!(code, 0, "{err}");
    let other = other.trim().to_string();
    let a = Front::start(&stores, &key, &tokens, &[]);
    let b = Front::start(&stores, &key, &tokens, &[]);
    let url = |f: &Front| format!("{}/v1/entries", f.url);
    let x = br#"[{"type":"t","n":1},{"type":"t","n":2},{"type":"t","n":3}]"#;
    let y = br#"[{"type":"t","n":4}]"#;

    // First use on A appends; the same request on B gets A's receipts.
    let (first, replayed) = kit::post_keyed(&url(&a), &tok, "k1", x);
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(!replayed);
    let want = receipts(&first);
    assert_eq!(want.len(), 3);
    let (again, replayed) = kit::post_keyed(&url(&b), &tok, "k1", x);
    assert_eq!(again.status, 200, "{}", again.text());
    assert!(replayed, "B did not say Idempotent-Replayed");
    assert_eq!(receipts(&again), want);
    // Another body under that key: the file log's answer, on either.
    let (reused, _) = kit::post_keyed(&url(&b), &tok, "k1", y);
    let file_front = kit::file_front(&tmp.path().join("filelog"), ORIGIN, &tokens);
    let _ = kit::post_keyed(&url(&file_front), &tok, "k1", x);
    let (want_reused, _) = kit::post_keyed(&url(&file_front), &tok, "k1", y);
    assert_eq!(want_reused.status, 422);
    assert_eq!(
        (reused.status, reused.text()),
        (want_reused.status, want_reused.text())
    );
    // Keys belong to a token: the same key from another token is new.
    let (theirs, replayed) = kit::post_keyed(&url(&a), &other, "k1", x);
    assert_eq!(theirs.status, 200, "{}", theirs.text());
    assert!(!replayed);
    assert_ne!(receipts(&theirs), want);

    // Racing retries of one new request on both front-ends: appended once,
    // every 200 carries the same receipts (409: the same front-end is
    // appending it right now, as on the file backend).
    let answers: Vec<(u16, Vec<(u64, Hash)>)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let u = url(if i % 2 == 0 { &a } else { &b });
                let tok = tok.clone();
                s.spawn(move || {
                    let (r, _) = kit::post_keyed(&u, &tok, "race", x);
                    let rs = if r.status == 200 {
                        receipts(&r)
                    } else {
                        Vec::new()
                    };
                    (r.status, rs)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok: Vec<_> = answers.iter().filter(|a| a.0 == 200).collect();
    assert!(!ok.is_empty(), "{answers:?}");
    assert!(
        answers.iter().all(|a| a.0 == 200 || a.0 == 409),
        "{answers:?}"
    );
    assert!(ok.iter().all(|a| a.1 == ok[0].1), "{answers:?}");

    // A SIGKILLed front-end's keys are in PostgreSQL: a new one replays them.
    drop(a);
    let c = Front::start(&stores, &key, &tokens, &[]);
    let (after, replayed) = kit::post_keyed(&url(&c), &tok, "k1", x);
    assert_eq!(after.status, 200, "{}", after.text());
    assert!(replayed);
    assert_eq!(receipts(&after), want);

    // Appended: the genesis, k1 once, other's k1, race once.
    let m = kit::get(&format!("{}/metrics", c.url), &tok);
    assert!(
        m.text().contains("stele_cluster_sequenced_entries 10\n"),
        "{}",
        m.text()
    );
    drop((b, c, file_front));
}
