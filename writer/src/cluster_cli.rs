//! The CLI of logs kept in PostgreSQL and object storage: `stele init --db
//! … --objects …`, `stele export --db …`, `stele migrate FROM TO`.

use crate::Fail;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use stele_core::note::VerifierKey;
use stele_writer::cluster::{self, Cluster, ClusterOptions, Location, S3Env};
use stele_writer::{Error, StoredCheckpoint, View, key};

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Fail> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Fail::usage(format!("start the runtime: {e}"), None))
}

pub(crate) fn location(db: &str, objects: Option<&str>) -> Location {
    Location {
        db: db.to_string(),
        objects: objects.map(str::to_string),
        s3: S3Env::from_env(),
    }
}

/// A database URL without its password, for messages and access records.
pub(crate) fn shown(db: &str) -> String {
    match db.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            let host = host.split_once('?').map_or(host, |(h, _)| h);
            format!("{scheme}://{host}")
        }
        None => "<database>".into(),
    }
}

/// `stele init --db URL --objects URL --origin O --signing-key FILE
/// [--seal P…] [--subject P] [--seal-key FILE]`: the sealing key goes
/// beside the signing key (FILE.seal) unless named.
pub(crate) fn init(
    db: &str,
    objects: &str,
    origin: &str,
    key_file: &Path,
    (seal, seal_file): (stele_writer::sealed::SealConfig, Option<PathBuf>),
) -> Result<u8, Fail> {
    let seal_file = seal_file.unwrap_or_else(|| cluster::SealKey::beside(key_file));
    crate::cluster_seal_cli::check_rules(&seal)?;
    if seal_file.exists() {
        return Err(Fail::usage(
            format!(
                "{} already exists: init writes a new sealing key there and never overwrites one",
                seal_file.display()
            ),
            None,
        ));
    }
    if key_file.exists() {
        return Err(Fail::usage(
            format!(
                "{} already exists: init writes a new private key there and never overwrites one",
                key_file.display()
            ),
            None,
        ));
    }
    let signer = key::generate(origin)?;
    key::save(&stele_writer::fs::RealFs, key_file, &signer)?;
    let sealing = cluster::SealKey::generate()?;
    if let Err(e) = sealing.save(&seal_file) {
        let _ = std::fs::remove_file(key_file);
        return Err(e.into());
    }
    let loc = location(db, Some(objects));
    let made = runtime()?.block_on(cluster::init_with(
        &loc,
        origin,
        &signer,
        Some((&seal, &sealing)),
    ));
    if let Err(e) = made {
        // Nothing of the log exists: the keys made for it go too.
        let _ = std::fs::remove_file(key_file);
        let _ = std::fs::remove_file(&seal_file);
        return Err(e.into());
    }
    println!("{}", signer.verifier());
    eprintln!(
        "stele init: log {origin} in {} and {objects}; private key in {} and sealing key in {} (mode 0600, stored in neither; every front-end needs both)",
        shown(db),
        crate::shown_path(key_file),
        crate::shown_path(&seal_file)
    );
    Ok(0)
}

/// What `stele export --db` writes: the whole log, a range, or selected entries.
pub(crate) enum Selection {
    /// The whole log up to a checkpoint covering it.
    Log,
    /// Entries `from..to` (`--from --to`).
    Range(u64, u64),
    /// Selected entries (`--entries`), in any order, repeats allowed.
    Entries(Vec<u64>),
}

fn access_event(db: &str, origin: &str, sel: &Selection, size: u64, reveal: &[String]) -> Value {
    use stele_writer::access::{Entries, Reader};
    let user = std::env::var("USER").ok();
    let reader = Reader::Cli {
        user,
        uid: None,
        dir: shown(db),
        origin: origin.to_string(),
    };
    let (kind, entries) = match sel {
        Selection::Log => ("log", Entries::Range(0, size)),
        Selection::Range(a, b) => ("range", Entries::Range(*a, *b)),
        Selection::Entries(l) => ("entries", Entries::List(l.clone())),
    };
    // As for a log directory: who may open the sealed fields (public keys only).
    let extra = if reveal.is_empty() {
        Value::Null
    } else {
        serde_json::json!({ "reveal_to": reveal })
    };
    stele_writer::access::access_event(
        &reader,
        "export",
        Some(kind),
        Some(&entries),
        Some(size),
        extra,
    )
}

/// `stele export --db URL [--objects URL] -o FILE [--signing-key FILE]
/// [--from A --to B | --entries I,J]`: the whole log up to a checkpoint
/// covering it, a range or selected entries proved in the latest
/// checkpoint. With the key, the read is recorded (stele.access) and a
/// checkpoint is signed first when needed; without it, the whole-log
/// export stops at the latest checkpoint and a range or selection must be
/// covered by it.
pub(crate) fn export(
    db: &str,
    objects: Option<&str>,
    output: &Path,
    signing_key: Option<&Path>,
    sel: Selection,
    reveal: &[String],
) -> Result<u8, Fail> {
    let signer = signing_key.map(key::load).transpose()?;
    // Checked before the read is recorded, as for a log directory.
    let target = crate::OutTarget::check(None, output)?;
    let loc = location(db, objects);
    let rt = runtime()?;
    rt.block_on(async {
        let opts = ClusterOptions {
            integrator: false,
            pool_size: 4,
            ..ClusterOptions::default()
        };
        let signing = signer.is_some();
        let c = Cluster::open(&loc, signer, opts).await?;
        let n = c.sequenced().await?;
        // The same checks and messages as for a log directory.
        let sel = match sel {
            Selection::Range(a, b) if a >= b || b > n => {
                return Err(Fail::usage(
                    format!("range {a}..{b} is not a non-empty part of the log's {n} entries"),
                    None,
                ));
            }
            Selection::Entries(mut l) => {
                l.sort_unstable();
                l.dedup();
                match l.last() {
                    Some(&m) if m >= n => {
                        return Err(Fail::usage(
                            format!("entry {m} is beyond the log's {n} entries"),
                            None,
                        ));
                    }
                    Some(_) => Selection::Entries(l),
                    None => return Err(Fail::usage("--entries lists no entry", None)),
                }
            }
            s => s,
        };
        let size = if signing {
            let _ = c
                .append_reserved(access_event(db, c.origin(), &sel, n, reveal))
                .await?;
            c.sync(true).await?
        } else {
            // As for a mirror: said, not silent (whoever holds the database
            // URL can read the rows anyway; the record is for accountability).
            eprintln!(
                "stele export: without --signing-key this read{} is not recorded (no stele.access entry); pass --signing-key to record it",
                if reveal.is_empty() {
                    ""
                } else {
                    " of sealed-field openings"
                }
            );
            c.sync(false).await?
        };
        let signed = c
            .latest_checkpoint()
            .await?
            .map_or(0, |cp| cp.checkpoint.size);
        // A temporary file beside OUT, renamed over it once complete (as
        // for a log directory): a failed export leaves OUT as it was.
        let mut out = target.open()?;
        let mut f = std::io::BufWriter::with_capacity(1 << 20, &mut out);
        let sink = |b: Vec<u8>| {
            let r = f.write_all(&b).map_err(|e| Error::io("write", output, e));
            async move { r }
        };
        let wrote = match sel {
            Selection::Log => {
                if signed < size {
                    eprintln!(
                        "stele export: {} entries after the latest checkpoint are left out (pass --signing-key to sign one)",
                        size - signed
                    );
                }
                c.export_log_revealed_with(signed, reveal, sink)
                    .await
                    .map(|()| signed)
            }
            Selection::Range(a, b) => c
                .export_range_revealed_with(a, b, reveal, sink)
                .await
                .map(|()| b - a),
            Selection::Entries(l) => c
                .export_entries_revealed_with(&l, reveal, sink)
                .await
                .map(|()| l.len() as u64),
        };
        // On an error the temporary file is dropped, and so removed.
        let wrote = wrote?;
        f.flush().map_err(|e| Error::io("write", output, e))?;
        drop(f);
        out.finish(output)?;
        eprintln!("stele export: {wrote} entries to {}", crate::shown_path(output));
        Ok::<_, Fail>(())
    })?;
    Ok(0)
}

fn is_db(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// `stele migrate FROM TO`: a log directory into PostgreSQL + object
/// storage (`--objects` names the new bucket), or back into a new directory.
/// Entry lines, the tree and the signed checkpoints are copied byte for
/// byte; nothing is re-signed.
pub(crate) fn migrate(
    from: &str,
    to: &str,
    objects: Option<&str>,
    from_objects: Option<&str>,
    key_file: Option<&Path>,
    seal_key: Option<&Path>,
) -> Result<u8, Fail> {
    match (is_db(from), is_db(to)) {
        (false, true) => dir_to_cluster(Path::new(from), &location(to, objects), seal_key),
        (true, false) => cluster_to_dir(
            &location(from, from_objects),
            Path::new(to),
            key_file,
            seal_key,
        ),
        _ => Err(Fail::usage(
            "stele migrate copies between a log directory and a postgres:// log (one of each)",
            Some("stele migrate DIR postgres://… --objects s3://BUCKET/PREFIX, or stele migrate postgres://… NEW_DIR".into()),
        )),
    }
}

fn genesis_key(line: &[u8]) -> Result<VerifierKey, Fail> {
    let v: Value =
        serde_json::from_slice(line).map_err(|e| Fail::usage(format!("entry 0: {e}"), None))?;
    let k = v["event"]["key"]
        .as_str()
        .ok_or_else(|| Fail::usage("entry 0 is not a genesis entry with a key", None))?;
    VerifierKey::parse(k).map_err(|e| Fail::usage(format!("entry 0's key: {e}"), None))
}

fn dir_to_cluster(dir: &Path, loc: &Location, seal_key: Option<&Path>) -> Result<u8, Fail> {
    let view = View::open_read_only(dir)?;
    let size = view.size();
    if size == 0 {
        return Err(Fail::usage(
            format!("{} holds no entries", dir.display()),
            None,
        ));
    }
    let verifier = genesis_key(&view.entry(0)?)?;
    let cps: Vec<StoredCheckpoint> = view.checkpoints().to_vec();
    // Its tokens and witness policy go along (in the same transaction).
    let config = dir.join(stele_writer::log::files::CONFIG);
    let config: Value =
        serde_json::from_slice(&std::fs::read(&config).map_err(|e| Error::io("read", &config, e))?)
            .map_err(|e| Fail::usage(format!("{}: {e}", config.display()), None))?;
    // This backend keeps one signing key: a rotated log's later checkpoints
    // would be checked against the wrong key.
    if config["retired_keys"]
        .as_array()
        .is_some_and(|k| !k.is_empty())
        || !config["rotation"].is_null()
    {
        return Err(Fail::usage(
            format!(
                "{}: its signing key was rotated (docs/FORMAT.md 15), and a PostgreSQL + object storage log keeps one key; nothing was written",
                dir.display()
            ),
            None,
        ));
    }
    let extra = cluster::Imported {
        timestamps: stele_writer::anchor::read(dir)?,
        witness_policy: config["witness_policy"].as_str().map(str::to_string),
    };
    // Sealed fields: rules, keys, wraps and openings in the same transaction.
    let sealing = crate::cluster_seal_cli::dir_sealing(dir, size, seal_key)?;
    let setup = sealing.as_ref().map(|s| s.setup());
    let made = runtime()?.block_on(cluster::import_with(
        loc,
        view.origin(),
        &verifier,
        size,
        |a, b| (a..b).map(|i| view.entry(i)).collect(),
        &cps,
        &extra,
        setup.as_ref(),
    ));
    if let Err(e) = made {
        if let Some(s) = &sealing {
            s.discard();
        }
        return Err(e.into());
    }
    if let Some(s) = &sealing {
        eprintln!(
            "stele migrate: the new log's sealing key is in {} (mode 0600, stored in neither store; every front-end needs it: --seal-key)",
            crate::shown_path(s.path())
        );
    }
    eprintln!(
        "stele migrate: {size} entries and {} checkpoints from {} to {}",
        cps.len(),
        crate::shown_path(dir),
        shown(&loc.db)
    );
    Ok(0)
}

fn cluster_to_dir(
    loc: &Location,
    dir: &Path,
    key_file: Option<&Path>,
    seal_key: Option<&Path>,
) -> Result<u8, Fail> {
    use stele_writer::log::{check_new_dir, files};
    check_new_dir(dir, false)?;
    let key_path = match key_file {
        Some(k) => std::path::absolute(k).map_err(|e| Error::io("resolve", k, e))?,
        None => PathBuf::from(files::KEY),
    };
    let rt = runtime()?;
    let seal_key = crate::cluster_seal_cli::migrate_key(seal_key, key_file)?;
    let have_seal_key = seal_key.is_some();
    let c = rt.block_on(Cluster::open(
        loc,
        None,
        ClusterOptions {
            integrator: false,
            pool_size: 4,
            seal_key,
            ..ClusterOptions::default()
        },
    ))?;
    rt.block_on(crate::cluster_seal_cli::check_sealed_cluster(
        &c,
        have_seal_key,
    ))?;
    let size = rt.block_on(c.sync(false))?;
    let cps = rt.block_on(c.checkpoints())?;
    let stamps = rt.block_on(c.timestamps())?;
    let policy = rt.block_on(c.witness_policy())?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let create = |name: &str| -> Result<(PathBuf, std::io::BufWriter<std::fs::File>), Error> {
        let p = dir.join(name);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
            .map_err(|e| Error::io("create", &p, e))?;
        Ok((p, std::io::BufWriter::with_capacity(1 << 20, f)))
    };
    let finish = |(p, mut w): (PathBuf, std::io::BufWriter<std::fs::File>)| -> Result<(), Error> {
        w.flush().map_err(|e| Error::io("write", &p, e))?;
        w.get_ref()
            .sync_all()
            .map_err(|e| Error::io("fsync", &p, e))
    };
    let put = |(p, w): &mut (PathBuf, std::io::BufWriter<std::fs::File>), b: &[u8]| {
        w.write_all(b).map_err(|e| Error::io("write", &*p, e))
    };
    // Entries, index and tree, streamed a chunk of entries at a time.
    let mut entries = create(files::ENTRIES)?;
    let mut index = create(files::INDEX)?;
    let mut tree = create(files::TREE)?;
    let mut frontier = stele_writer::tree::Frontier::from_left_hashes(0, Vec::new());
    let (mut end, mut at) = (0u64, 0u64);
    let mut nodes = Vec::new();
    while at < size {
        let to = (at + 4096).min(size);
        for l in rt.block_on(c.entries(at, to))? {
            put(&mut entries, &l)?;
            put(&mut entries, b"\n")?;
            end += l.len() as u64 + 1;
            put(&mut index, &end.to_le_bytes())?;
            nodes.clear();
            frontier.push(stele_core::hash::leaf_hash(&l), &mut nodes);
            put(&mut tree, &nodes)?;
        }
        at = to;
    }
    finish(entries)?;
    finish(index)?;
    finish(tree)?;
    let mut checkpoints = create(files::CHECKPOINTS)?;
    for cp in &cps {
        put(&mut checkpoints, format!("{}\n", cp.note.len()).as_bytes())?;
        put(&mut checkpoints, cp.note.as_bytes())?;
    }
    finish(checkpoints)?;
    // Sealed fields: the sidecar (keys, wraps, openings) and the rules.
    let sealed = if rt.block_on(c.sealing_in_use())? {
        Some(rt.block_on(c.write_sidecar(dir, size))?)
    } else {
        None
    };
    if !stamps.is_empty() {
        let mut t = create(stele_writer::anchor::TIMESTAMPS)?;
        for r in &stamps {
            put(&mut t, format!("{}\n", r.to_line()).as_bytes())?;
        }
        finish(t)?;
    }
    // stele.json last: it marks the directory as a log.
    let mut config = serde_json::json!({
        "format": "stele-log v1",
        "origin": c.origin(),
        "key_file": key_path,
    });
    if let Some(s) = sealed {
        config["sealed"] = serde_json::json!(s);
    }
    if let Some(p) = policy {
        config["witness_policy"] = Value::from(p);
    }
    let mut cfg = create(files::CONFIG)?;
    put(
        &mut cfg,
        format!("{}\n", serde_json::to_string_pretty(&config).expect("json")).as_bytes(),
    )?;
    finish(cfg)?;
    eprintln!(
        "stele migrate: {size} entries and {} checkpoints from {} to {}{}",
        cps.len(),
        shown(&loc.db),
        crate::shown_path(dir),
        if key_file.is_none() {
            " (no key: pass --signing-key FILE to name the key file a writer will use)"
        } else {
            ""
        }
    );
    Ok(0)
}

/// `stele checkpoint --db URL [--objects URL] --signing-key FILE [--policy
/// FILE | --forget-policy]`: integrates everything sequenced and makes sure
/// a checkpoint covers it (with a witness policy, cosigned by its quorum,
/// else exit 1 and nothing is published); prints the latest checkpoint.
/// The policy is remembered in the database (every front-end witnesses).
pub(crate) fn checkpoint(
    db: &str,
    objects: Option<&str>,
    key_file: &Path,
    policy: Option<&Path>,
    forget_policy: bool,
) -> Result<u8, Fail> {
    let signer = key::load(key_file)?;
    let text = policy
        .map(|p| {
            // Parsed (with the file log's hints) before anything is changed.
            let c = crate::witness_cli::cosigner(p)?;
            Ok::<_, Fail>(
                stele_writer::witness::Cosign::policy_text(&c)
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .transpose()?;
    let loc = location(db, objects);
    runtime()?.block_on(async {
        let opts = ClusterOptions {
            integrator: false,
            pool_size: 4,
            ..ClusterOptions::default()
        };
        let c = Cluster::open(&loc, Some(signer), opts).await?;
        if forget_policy && c.set_witness_policy(None).await? {
            eprintln!(
                "stele: {}: witness policy removed; checkpoints are no longer witnessed",
                shown(db)
            );
        }
        if let Some(t) = &text {
            let _ = c.set_witness_policy(Some(t)).await?;
        }
        match c.sync(true).await {
            Ok(_) => {}
            Err(e @ Error::Witness(_)) => return Ok(crate::quorum_not_met(&e)),
            Err(e) => return Err(e.into()),
        }
        let cp = c
            .latest_checkpoint()
            .await?
            .ok_or_else(|| Error::OutOfRange("the log has no checkpoint".into()))?;
        print!("{}", cp.note);
        Ok(0)
    })
}

/// `stele anchor --db URL [--objects URL] --signing-key FILE --tsa URL
/// [--ca FILE]`: signs a checkpoint covering everything sequenced, then
/// anchors it (waiting while another front-end anchors).
pub(crate) fn anchor(
    db: &str,
    objects: Option<&str>,
    key_file: &Path,
    url: &str,
    ca: Option<&stele_tsa::TsaChecker>,
    timeout: std::time::Duration,
) -> Result<stele_writer::anchor::Anchored, Fail> {
    let signer = key::load(key_file)?;
    let loc = location(db, objects);
    let rt = runtime()?;
    let opts = ClusterOptions {
        integrator: false,
        pool_size: 4,
        ..ClusterOptions::default()
    };
    let c = rt.block_on(Cluster::open(&loc, Some(signer), opts))?;
    let mut pause = std::time::Duration::from_millis(50);
    let started = std::time::Instant::now();
    loop {
        if let Some(a) = c.anchor_blocking(rt.handle(), url, ca, true, timeout)? {
            return Ok(a);
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            return Err(Error::Timestamp(
                "another front-end held the anchoring lock for two minutes".into(),
            )
            .into());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_secs(2));
    }
}
