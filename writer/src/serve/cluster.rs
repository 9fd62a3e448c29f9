//! The read handlers of a log kept in PostgreSQL and object storage
//! (`stele serve --db … --objects …`). Authentication, query checks, access
//! records and the answers' shapes are the file log's (the handlers in
//! mod.rs call these when the server has a cluster); the data comes from
//! the stores, so any front-end answers any read.

use super::{
    App, ChanBody, Data, ExportKind, Failure, Inner, Query, bad_query, entries_query,
    entries_response, error, export_response, fail, io_fail, json_text, tile_response,
};
use crate::Result;
use crate::cluster::{Cluster, ClusterOptions, Location};
use crate::view::StoredCheckpoint;
use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use stele_core::tiles::{TilePath, tile_exists};
use tokio::sync::mpsc;

/// Opens the front-end: the key must be the log's.
pub(super) async fn open(
    loc: &Location,
    key: Option<&Path>,
    seal_key: Option<&Path>,
    checkpoint_every: u64,
    checkpoint_interval: std::time::Duration,
    cosign: Option<&dyn crate::witness::Cosign>,
) -> Result<Cluster> {
    let key = key.ok_or_else(|| crate::Error::Config {
        option: "--signing-key",
        why: "a PostgreSQL + object storage log needs --signing-key FILE to sign checkpoints"
            .into(),
    })?;
    let signer = crate::key::load(key)?;
    let opts = ClusterOptions {
        checkpoint_every: checkpoint_every.max(1),
        checkpoint_interval,
        seal_key: crate::cluster::sealed::front_end_key(key, seal_key)?,
        ..ClusterOptions::default()
    };
    let c = Cluster::open(loc, Some(signer), opts.clone()).await?;
    if c.has_sealing() && opts.seal_key.is_none() {
        return Err(crate::Error::Config {
            option: "--seal-key",
            why: format!(
                "this log seals fields and every front-end needs its sealing key: none at {} (pass --seal-key FILE)",
                crate::cluster::SealKey::beside(key).display()
            ),
        });
    }
    // `--policy`: remembered in the database, so every front-end witnesses.
    if let Some(w) = cosign {
        let text = w.policy_text().ok_or_else(|| crate::Error::Config {
            option: "--policy",
            why: "a PostgreSQL + object storage log needs the policy's text to remember it".into(),
        })?;
        let _ = c.set_witness_policy(Some(text)).await?;
    }
    Ok(c)
}

/// At shutdown: integrate and sign everything sequenced so far.
pub(super) async fn finish(c: &Cluster) -> Result<(u64, Result<StoredCheckpoint>)> {
    let size = c.sync(true).await?;
    let cp = c.latest_checkpoint().await.and_then(|cp| {
        cp.ok_or_else(|| crate::Error::OutOfRange("the log has no checkpoint".into()))
    });
    Ok((size, cp))
}

fn cluster(app: &App) -> Arc<Cluster> {
    app.0.cluster.clone().expect("called for a cluster")
}

async fn have(c: &Cluster) -> Result<u64, Response> {
    c.integrated().await.map_err(io_fail)
}

// The latest checkpoint's size, signing one when it does not reach `need`.
async fn signed_size(app: &Inner, c: &Cluster, need: u64) -> Result<u64, Response> {
    let latest = c
        .latest_checkpoint()
        .await
        .map_err(io_fail)?
        .map_or(0, |cp| cp.checkpoint.size);
    if latest >= need {
        return Ok(latest);
    }
    let _gate = app.sign_gate.lock().await;
    let _ = c.sync(true).await.map_err(|e| fail(Failure::from(e)))?;
    let _ = app.forced_signatures.fetch_add(1, Ordering::Relaxed);
    Ok(c.latest_checkpoint()
        .await
        .map_err(io_fail)?
        .map_or(0, |cp| cp.checkpoint.size))
}

pub(super) async fn get_checkpoint(
    app: App,
    peer: SocketAddr,
    headers: HeaderMap,
    q: Option<String>,
) -> Response {
    if let Err(r) = app.0.auth_read(&headers, peer, Data::Hashes) {
        return r;
    }
    if let Err(e) = Query::parse(q.as_deref(), &[]) {
        return bad_query(e);
    }
    match cluster(&app).published_checkpoint().await {
        Ok(Some(note)) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            note,
        )
            .into_response(),
        Ok(None) => error(404, "the log has no checkpoint yet", None),
        Err(e) => io_fail(e),
    }
}

pub(super) async fn get_tile(
    app: App,
    path: String,
    parsed: TilePath,
    data: Data,
    who: super::Caller,
) -> Response {
    let c = cluster(&app);
    let (TilePath::Hashes(tile) | TilePath::Entries(tile)) = parsed;
    let entries = data == Data::Entries;
    let size = if entries || tile.is_partial() {
        match have(&c).await {
            Ok(s) => s,
            Err(r) => return r,
        }
    } else {
        // A full hash tile is immutable: served straight from object
        // storage, without asking the database.
        u64::MAX
    };
    if size != u64::MAX && !tile_exists(&tile, size) {
        return error(
            404,
            format!("{path} is not in the log's tree of {size} entries"),
            None,
        );
    }
    // A bundle's size is known once fetched: the most it can be is held
    // while it is fetched, then its real size until it is sent, and only
    // then is the read recorded (a refusal reads and records nothing).
    let (from, to) = (tile.first(), tile.first() + u64::from(tile.width));
    let fetching = if entries {
        match app.0.reserve_fetch(super::most_bytes(to - from)).await {
            Ok(p) => Some(p),
            Err(r) => return r,
        }
    } else {
        None
    };
    let body = match c.tile(tile, entries, size.min(u64::MAX >> 1)).await {
        Ok(Some(b)) => b,
        Ok(None) if size == u64::MAX => {
            return error(404, format!("{path} is not in the log's tree"), None);
        }
        Ok(None) => return error(500, format!("{path} is missing from object storage"), None),
        Err(e) => return io_fail(e),
    };
    if !entries {
        return tile_response(data, app.0.reads, body);
    }
    let room = match app.0.charge_read(&who, body.len() as u64).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    drop(fetching);
    // Recorded as on the file backend (grants are per front-end).
    if let Err(r) = app.0.record_bundle(&who, from, to, size).await {
        return r;
    }
    tile_response(data, app.0.reads, super::Charged::bytes(body, room))
}

/// GET /v1/proof/inclusion once the request is checked (mod.rs).
pub(super) async fn inclusion(app: App, index: u64, size: Option<u64>) -> Response {
    let c = cluster(&app);
    // The file log answers for every appended entry; here an entry is
    // readable once integrated, so a sequenced one is integrated first.
    let mut have = match have(&c).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if index >= have {
        let seq = c.sequenced().await.unwrap_or(0);
        if index >= seq {
            return error(
                400,
                format!("entry {index} is beyond the log's {seq} entries"),
                None,
            );
        }
        have = match c.sync(false).await {
            Ok(s) => s,
            Err(e) => return fail(Failure::from(e)),
        };
    }
    let size = match size {
        Some(s) => s,
        None => match signed_size(&app.0, &c, index + 1).await {
            Ok(s) => s,
            Err(r) => return r,
        },
    };
    let have = c.integrated().await.unwrap_or(have).max(have);
    match c.inclusion(index, size, have).await {
        Ok(p) => json_text(format!("{}\n", p.to_json())),
        Err(e) => io_fail(e),
    }
}

/// GET /v1/proof/consistency once the request is checked (mod.rs).
pub(super) async fn consistency(app: App, from: u64, to: Option<u64>) -> Response {
    let c = cluster(&app);
    let have = match have(&c).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if from > have {
        return error(
            400,
            format!("tree size {from} is beyond the log's {have} entries"),
            None,
        );
    }
    let to = match to {
        Some(t) => t,
        None => match signed_size(&app.0, &c, from).await {
            Ok(s) => s,
            Err(r) => return r,
        },
    };
    let have = c.integrated().await.unwrap_or(have);
    match c.consistency(from, to, have).await {
        Ok(p) => json_text(format!("{}\n", p.to_json())),
        Err(e) => io_fail(e),
    }
}

pub(super) async fn get_entries(
    app: App,
    peer: SocketAddr,
    headers: HeaderMap,
    q: Option<String>,
) -> Response {
    let who = match app.0.auth_read(&headers, peer, Data::Entries) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (from, to) = match entries_query(q.as_deref()) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let c = cluster(&app);
    let size = match have(&c).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (from, to) = match app.0.page_range(from, to, size) {
        Ok(r) => r,
        Err(r) => return r,
    };
    // The page's size is known once fetched: the most it can be is held
    // while it is fetched, then its real size until it is sent, and only
    // then is the read recorded (a refusal reads and records nothing).
    let fetching = match app.0.reserve_fetch(super::most_bytes(to - from)).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let lines = match c.entries(from, to).await {
        Ok(l) => l,
        Err(e) => return io_fail(e),
    };
    let mut body = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        body.extend_from_slice(&l);
        body.push(b'\n');
    }
    let room = match app.0.charge_read(&who, body.len() as u64).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    drop(fetching);
    if let Err(r) = app.0.record_page(&who, from, to, size).await {
        return r;
    }
    entries_response(super::Charged::bytes(body, room), from, to)
}

/// GET /v1/export once the request is checked and its access recorded
/// (mod.rs): the export streamed from the stores, ending with a checkpoint
/// of at least `need` entries.
pub(super) async fn export(
    app: App,
    kind: ExportKind,
    need: u64,
    slot: super::ExportSlot,
    reveal: Vec<String>,
) -> Response {
    let c = cluster(&app);
    let signed = match signed_size(&app.0, &c, need).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (tx, rx) = mpsc::channel(4);
    let failed = Arc::new(AtomicBool::new(false));
    let failed2 = failed.clone();
    // Detached: the body stream carries the task's errors to the client.
    drop(tokio::spawn(async move {
        let sink = |chunk: Vec<u8>| {
            let tx = tx.clone();
            async move {
                tx.send(Ok(Bytes::from(chunk))).await.map_err(|_| {
                    crate::Error::io("send", "export", std::io::Error::other("client went away"))
                })
            }
        };
        let r = match kind {
            ExportKind::Log => c.export_log_revealed_with(signed, &reveal, sink).await,
            ExportKind::Range(a, b) => c.export_range_revealed_with(a, b, &reveal, sink).await,
            ExportKind::Entries(l) => c.export_entries_revealed_with(&l, &reveal, sink).await,
        };
        if let Err(e) = r {
            failed2.store(true, Ordering::Release);
            let _ = tx.try_send(Err(std::io::Error::other(e.to_string())));
        }
    }));
    export_response(ChanBody {
        rx,
        failed,
        _slot: slot,
    })
}

/// GET /v1/sealed of a cluster front-end (the caller has the reveal scope):
/// the openings of entries [from, to) as ciphertext, from PostgreSQL,
/// recorded first like an export revealed to the log's auditors.
#[allow(clippy::option_option)]
pub(super) async fn get_sealed(
    app: App,
    who: super::Caller,
    q: Query,
    wraps: Option<Option<stele_core::sealed::KeyId>>,
) -> Response {
    let c = cluster(&app);
    let size = match c.sequenced().await {
        Ok(s) => s,
        Err(e) => return io_fail(e),
    };
    let (from, to) = match super::sealed_range(&q, size) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Some(after) = wraps {
        if from != to {
            return bad_query("/v1/sealed takes wraps= only with from = to (no records)".into());
        }
        return match c.sealed_wraps_page(after).await {
            Ok(b) => super::sealed_response(&app.0, &who, b).await,
            Err(e) => io_fail(e),
        };
    }
    if from < to {
        let auditors = if c.has_sealing() {
            c.auditors().await.unwrap_or_default()
        } else {
            Vec::new()
        };
        if let Err(r) = super::record_sealed_read(&app.0, &who, from, to, size, auditors).await {
            return r;
        }
    }
    match c.sealed_body(from, to).await {
        Ok(b) => super::sealed_response(&app.0, &who, b).await,
        Err(e) => io_fail(e),
    }
}

/// /metrics of a cluster front-end: the log's sizes from the database.
pub(super) async fn metrics(app: &Inner, c: &Cluster) -> Result<String, Response> {
    let size = c.integrated().await.map_err(io_fail)?;
    let count = c.checkpoint_count().await.map_err(io_fail)?;
    let latest = c.latest_checkpoint().await.map_err(io_fail)?;
    let signed = latest.map_or(0, |cp| cp.checkpoint.size);
    let mut text = app.metrics.render(size, count as usize, signed);
    let sequenced = c.sequenced().await.map_err(io_fail)?;
    text.push_str(&format!(
        "# HELP stele_cluster_sequenced_entries Entries committed in PostgreSQL (integrated or not).\n# TYPE stele_cluster_sequenced_entries gauge\nstele_cluster_sequenced_entries {sequenced}\n# HELP stele_cluster_unintegrated_entries Entries sequenced but not yet in the tiles.\n# TYPE stele_cluster_unintegrated_entries gauge\nstele_cluster_unintegrated_entries {}\n",
        sequenced.saturating_sub(size)
    ));
    Ok(text)
}
