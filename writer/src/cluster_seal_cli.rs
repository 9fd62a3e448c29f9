//! Sealed fields on a log kept in PostgreSQL and object storage: `stele
//! auditor add/list --db`, `stele forget --db`, `stele redact --db` (the
//! file log's commands, same output). `stele init --db --seal` and `stele
//! export --db --reveal-to` are in cluster_cli.rs.

use crate::Fail;
use crate::cluster_cli::{location, runtime};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use stele_writer::cluster::{self, Cluster, ClusterOptions, SealKey};

/// The rules' check, with the file log's message.
pub(crate) fn check_rules(seal: &stele_writer::sealed::SealConfig) -> Result<(), Fail> {
    seal.check().map_err(|e| {
        Fail::usage(
            e.to_string(),
            Some("--seal and --subject take JSON pointers such as /actor/email".into()),
        )
    })?;
    // k8s.audit entries copy user.username to /actor and the object's path
    // to /target (writer/README.md): sealing only the source leaves the copy.
    let covers = |src: &str| {
        seal.seal
            .iter()
            .any(|r| src == r || src.starts_with(&format!("{r}/")))
    };
    let mut warned = Vec::new();
    for (src, copy) in [
        ("/k8s/user/username", "/actor"),
        ("/k8s/objectRef/name", "/target"),
        ("/k8s/objectRef/namespace", "/target"),
        ("/k8s/requestURI", "/target"),
        // The request's path names the object too (…/namespaces/NS/secrets/NAME).
        ("/k8s/objectRef/name", "/k8s/requestURI"),
        ("/k8s/objectRef/namespace", "/k8s/requestURI"),
    ] {
        if covers(src) && !covers(copy) && !warned.contains(&copy) {
            warned.push(copy);
            eprintln!(
                "warning: {src} is sealed, but Kubernetes audit entries also copy it to {copy}: add --seal {copy} to seal the copy"
            );
        }
    }
    Ok(())
}

// A front-end handle without background work, with the sealing key if given.
async fn open(db: &str, objects: Option<&str>, seal_key: Option<&Path>) -> Result<Cluster, Fail> {
    let seal_key = seal_key.map(SealKey::load).transpose()?.map(Arc::new);
    let opts = ClusterOptions {
        integrator: false,
        pool_size: 2,
        seal_key,
        ..ClusterOptions::default()
    };
    Ok(Cluster::open(&location(db, objects), None, opts).await?)
}

/// `stele auditor add --db URL --seal-key FILE age1…`.
pub(crate) fn auditor_add(
    db: &str,
    objects: Option<&str>,
    seal_key: Option<&Path>,
    first: &Path,
    second: Option<&str>,
    by: &str,
) -> Result<u8, Fail> {
    // With --db the one positional argument is the recipient.
    let recipient = match second {
        None => first.to_string_lossy().into_owned(),
        Some(_) => {
            return Err(Fail::usage(
                "with --db, stele auditor add takes the recipient only (no DIR)",
                Some("stele auditor add --db URL --seal-key FILE age1…".into()),
            ));
        }
    };
    let n = runtime()?.block_on(async {
        let c = open(db, objects, seal_key).await?;
        Ok::<_, Fail>(c.add_auditor(recipient.trim(), by).await?)
    })?;
    eprintln!("auditor added; {n} existing data keys wrapped for it");
    Ok(0)
}

/// `stele auditor remove --db URL age1…`.
pub(crate) fn auditor_remove(
    db: &str,
    objects: Option<&str>,
    recipient: &str,
    by: &str,
) -> Result<u8, Fail> {
    let n = runtime()?.block_on(async {
        let c = open(db, objects, None).await?;
        Ok::<_, Fail>(c.remove_auditor(recipient.trim(), by).await?)
    })?;
    eprintln!("auditor removed; {n} wraps for it deleted");
    Ok(0)
}

/// `stele auditor list --db URL`.
pub(crate) fn auditor_list(db: &str, objects: Option<&str>) -> Result<u8, Fail> {
    let list = runtime()?.block_on(async {
        let c = open(db, objects, None).await?;
        Ok::<_, Fail>(c.auditors().await?)
    })?;
    for a in list {
        println!("{a}");
    }
    Ok(0)
}

/// `stele forget --db URL --seal-key FILE --subject VALUE`.
pub(crate) fn forget(
    db: &str,
    objects: Option<&str>,
    seal_key: Option<&Path>,
    subject: Option<&Value>,
    by: &str,
) -> Result<u8, Fail> {
    let f = runtime()?.block_on(async {
        let c = open(db, objects, seal_key).await?;
        Ok::<_, Fail>(match subject {
            Some(s) => c.forget(s, by).await?,
            None => c.forget_subjectless(by).await?,
        })
    })?;
    println!("{{\"forgotten\":\"{}\",\"seq\":{}}}", f.key, f.receipt.seq);
    if let Err(why) = f.rewritten {
        eprintln!(
            "stele forget: warning: the data key and its wraps are deleted, but {why}; their old row versions stay in the table files until a VACUUM FULL of stele_seal_keys and stele_seal_wraps by their owner"
        );
    }
    Ok(0)
}

/// `stele redact --db URL --entry N --pointer P`.
pub(crate) fn redact(
    db: &str,
    objects: Option<&str>,
    entry: u64,
    pointer: &str,
    by: &str,
) -> Result<u8, Fail> {
    let r = runtime()?.block_on(async {
        let c = open(db, objects, None).await?;
        c.redact(entry, pointer, by)
            .await
            .map_err(crate::redact_fail)
    })?;
    println!("{{\"redacted\":{entry},\"seq\":{}}}", r.seq);
    Ok(0)
}

/// The sealing a log directory carries into PostgreSQL (`stele migrate DIR
/// postgres://… --seal-key FILE`): its rules and sidecar, and the new
/// log's sealing key, written to FILE (0600) before the import.
pub(crate) struct DirSeal {
    cfg: stele_writer::sealed::SealConfig,
    key: SealKey,
    carried: Option<cluster::sealed::Carried>,
    path: std::path::PathBuf,
}

impl DirSeal {
    pub(crate) fn setup(&self) -> cluster::sealed::Setup<'_> {
        cluster::sealed::Setup {
            cfg: &self.cfg,
            key: &self.key,
            carried: self.carried.as_ref(),
        }
    }

    /// The import failed: the key made for it goes.
    pub(crate) fn discard(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// What `stele migrate DIR postgres://…` carries of sealed fields: `None`
/// for a log without any (and no `--seal-key`); a sealed log needs
/// `--seal-key FILE` for the new log's sealing key.
pub(crate) fn dir_sealing(
    dir: &Path,
    size: u64,
    seal_key: Option<&Path>,
) -> Result<Option<DirSeal>, Fail> {
    let cfg: Value = std::fs::read(dir.join(stele_writer::log::files::CONFIG))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let cfg: stele_writer::sealed::SealConfig =
        serde_json::from_value(cfg["sealed"].clone()).unwrap_or_default();
    let carried = cluster::sealed::Carried::read_dir(dir, size)?;
    let sealed = carried.is_some() || !cfg.seal.is_empty();
    let Some(path) = seal_key else {
        if sealed {
            return Err(Fail::usage(
                format!("{} has sealed fields: the new log needs a sealing key", dir.display()),
                Some("pass --seal-key FILE (a new file: migrate writes the key there, mode 0600; every front-end needs it)".into()),
            ));
        }
        return Ok(None);
    };
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(Fail::usage(
            format!(
                "{} already exists: migrate writes a new sealing key there and never overwrites one",
                path.display()
            ),
            None,
        ));
    }
    let key = SealKey::generate()?;
    key.save(path)?;
    Ok(Some(DirSeal {
        cfg,
        key,
        carried,
        path: path.to_path_buf(),
    }))
}

/// The sealing key `stele migrate postgres://… DIR` reads the log's data
/// keys with: `--seal-key`, else the one beside `--signing-key`.
pub(crate) fn migrate_key(
    seal_key: Option<&Path>,
    signing_key: Option<&Path>,
) -> Result<Option<Arc<SealKey>>, Fail> {
    match (seal_key, signing_key) {
        (Some(k), _) => Ok(Some(Arc::new(SealKey::load(k)?))),
        (None, Some(s)) => Ok(cluster::sealed::front_end_key(s, None)?),
        (None, None) => Ok(None),
    }
}

/// Before `stele migrate postgres://… DIR` writes anything: a log with
/// sealed fields needs its sealing key (to write the data keys as files).
pub(crate) async fn check_sealed_cluster(c: &Cluster, have_key: bool) -> Result<(), Fail> {
    if !have_key && c.sealing_in_use().await? {
        return Err(Fail::usage(
            "the log has sealed fields: copying its data keys needs its sealing key",
            Some("pass --seal-key FILE (or --signing-key FILE with FILE.seal beside it)".into()),
        ));
    }
    Ok(())
}
