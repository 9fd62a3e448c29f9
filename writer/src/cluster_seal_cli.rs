//! Sealed fields on a log kept in PostgreSQL and object storage: `stele
//! auditor add/list --db`, `stele forget --db`, `stele redact --db` (the
//! file log's commands, same output). `stele init --db --seal` and `stele
//! export --db --reveal-to` are in cluster_cli.rs.

use crate::Fail;
use crate::cluster_cli::{location, runtime};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use stele_writer::cluster::{Cluster, ClusterOptions, SealKey};

/// The rules' check, with the file log's message.
pub(crate) fn check_rules(seal: &stele_writer::sealed::SealConfig) -> Result<(), Fail> {
    seal.check().map_err(|e| {
        Fail::usage(
            e.to_string(),
            Some("--seal and --subject take JSON pointers such as /actor/email".into()),
        )
    })
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
        Ok::<_, Fail>(c.add_auditor(recipient.trim()).await?)
    })?;
    eprintln!("auditor added; {n} existing data keys wrapped for it");
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
    subject: &Value,
    by: &str,
) -> Result<u8, Fail> {
    let (id, r) = runtime()?.block_on(async {
        let c = open(db, objects, seal_key).await?;
        Ok::<_, Fail>(c.forget(subject, by).await?)
    })?;
    println!("{{\"forgotten\":\"{id}\",\"seq\":{}}}", r.seq);
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
        Ok::<_, Fail>(c.redact(entry, pointer, by).await?)
    })?;
    println!("{{\"redacted\":{entry},\"seq\":{}}}", r.seq);
    Ok(0)
}

const NO_MIGRATE: &str = "stele migrate does not carry sealing keys, wraps and openings between backends yet; nothing was written";

/// `stele migrate DIR postgres://…` of a log with sealed fields: refused.
pub(crate) fn refuse_sealed_dir(dir: &Path) -> Result<(), Fail> {
    let cfg: Value = std::fs::read(dir.join(stele_writer::log::files::CONFIG))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let rules = cfg["sealed"]["seal"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    if rules || std::fs::symlink_metadata(dir.join(stele_writer::sealed::SIDECAR)).is_ok() {
        return Err(Fail::usage(
            format!(
                "{} has sealed fields (sealing rules or a sealed/ directory): {NO_MIGRATE}",
                dir.display()
            ),
            None,
        ));
    }
    Ok(())
}

/// `stele migrate postgres://… DIR` of a log with sealed fields: refused.
pub(crate) async fn refuse_sealed_cluster(c: &Cluster) -> Result<(), Fail> {
    if c.sealing_in_use().await? {
        return Err(Fail::usage(
            format!(
                "the log has sealed fields (sealing rules, keys, auditors, openings or forgotten keys): {NO_MIGRATE}"
            ),
            None,
        ));
    }
    Ok(())
}
