//! Witness cosigning on a PostgreSQL + object storage log (docs/FORMAT.md
//! 14.5; writer/README.md "PostgreSQL and object storage").
//!
//! The log's C2SP tlog-policy lives in the database (table `stele_witness`,
//! one row; no row: the log is not witnessed), so every front-end witnesses
//! once any of them was given `--policy` (`stele serve --db … --policy`,
//! `stele checkpoint --db … --policy`).
//!
//! While a log is witnessed, integration never signs a checkpoint itself.
//! A witness round does, one at a time across all front-ends:
//! 1. a transaction locks the `stele_witness` row (`FOR UPDATE`; background
//!    rounds `SKIP LOCKED`, so a busy round is skipped; a crashed round's
//!    lock dies with its connection) and reads the policy;
//! 2. it reads the integrated size and compact range (integration goes on:
//!    it locks another row) and signs a checkpoint of that tree;
//! 3. it asks the policy's witnesses (consistency proofs read from the
//!    tiles), with the transaction open but nothing else locked, so
//!    sequencing and integration go on meanwhile;
//! 4. only once the quorum is met is the cosigned checkpoint inserted, in
//!    that transaction, unless a checkpoint as large is stored (published
//!    checkpoints only grow; a stored checkpoint of the same size without
//!    the quorum, signed before the policy, gets the cosignatures added:
//!    Ed25519 signatures are deterministic, so its text and log signature
//!    are the same); then the `checkpoint` object is moved forward.
//!
//! A crash or a failed quorum leaves the previous checkpoint the latest;
//! witnesses that cosigned the lost one answer the next round with 409 and
//! are resynchronised.

use super::{Inner, chain, db_err, exec1, obj_err, row_opt};
use crate::error::{Error, Result};
use crate::witness::{ClientOptions, Cosign as _, PolicyCosigner, Proofs};
use deadpool_postgres::GenericClient;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use stele_core::checkpoint::{Checkpoint, SignedCheckpoint};
use stele_core::hash::Hash;
use stele_core::merkle::CompactRange;

// Made on open (logs created before the table existed).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stele_witness (
    id int PRIMARY KEY CHECK (id = 1),
    policy text NOT NULL
);
";

/// A front-end's witnessing state: the cosigner of the policy text last
/// read (rebuilt when another front-end changes the policy) and when its
/// last round failed (automatic rounds wait an interval after a failure).
#[derive(Default)]
pub(super) struct State {
    cosigner: Mutex<Option<(String, Arc<PolicyCosigner>)>>,
    failed_at: Mutex<Option<Instant>>,
    // A background round of this front-end runs.
    running: AtomicBool,
}

/// Starts a background round (when none of this front-end's runs): the
/// integrator goes on while the witnesses are asked.
pub(super) fn spawn_round(inner: &Arc<Inner>) {
    if inner.witness.running.swap(true, Ordering::AcqRel) {
        return;
    }
    let inner = inner.clone();
    drop(tokio::spawn(async move {
        // Errors (a failed quorum, a store down) are retried on a later
        // round; a failed quorum waits an interval first.
        let _ = round(&inner, false).await;
        inner.witness.running.store(false, Ordering::Release);
    }));
}

impl State {
    fn cosigner(&self, text: &str, opts: ClientOptions) -> Result<Arc<PolicyCosigner>> {
        let mut c = self.cosigner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, p)) = c.as_ref()
            && t == text
        {
            return Ok(p.clone());
        }
        let p = Arc::new(
            PolicyCosigner::from_text(text, opts)
                .map_err(|why| Error::Witness(format!("stele_witness.policy: {why}")))?,
        );
        *c = Some((text.to_string(), p.clone()));
        Ok(p)
    }
}

/// Whether the log is witnessed (its policy row exists), read in `c`'s
/// transaction.
pub(super) async fn witnessed<C: GenericClient>(c: &C) -> Result<bool> {
    Ok(row_opt(
        c,
        "read stele_witness",
        "SELECT 1 FROM stele_witness WHERE id = 1",
        &[],
    )
    .await?
    .is_some())
}

/// The log's policy text, if it is witnessed.
pub(super) async fn policy(inner: &Inner) -> Result<Option<String>> {
    let client = inner.client().await?;
    Ok(row_opt(
        &client,
        "read stele_witness",
        "SELECT policy FROM stele_witness WHERE id = 1",
        &[],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Remembers `text` as the log's policy (checked first: every witness
/// needs a URL), or with `None` forgets it. Returns whether that changed
/// anything.
pub(super) async fn set_policy(inner: &Inner, text: Option<&str>) -> Result<bool> {
    let client = inner.client().await?;
    let n = match text {
        Some(t) => {
            let _ = inner.witness.cosigner(t, inner.opts.witness_client)?;
            let stmt = super::prepared(
                &client,
                "write stele_witness",
                "INSERT INTO stele_witness (id, policy) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET policy = EXCLUDED.policy \
                 WHERE stele_witness.policy <> EXCLUDED.policy",
            )
            .await?;
            client
                .execute(&stmt, &[&t])
                .await
                .map_err(|e| db_err("write stele_witness", chain(&e)))?
        }
        None => {
            let stmt = super::prepared(
                &client,
                "delete stele_witness",
                "DELETE FROM stele_witness WHERE id = 1",
            )
            .await?;
            client
                .execute(&stmt, &[])
                .await
                .map_err(|e| db_err("delete stele_witness", chain(&e)))?
        }
    };
    Ok(n > 0)
}

// The consistency proofs a round sends, from the tiles (the round runs on
// a blocking thread; `rt` is the runtime that reads the stores).
struct StoreProofs {
    inner: Arc<Inner>,
    rt: tokio::runtime::Handle,
    published: u64,
}

impl Proofs for StoreProofs {
    fn published_size(&self) -> u64 {
        self.published
    }
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.rt.block_on(self.inner.consistency_proof(old, new))
    }
}

/// What a round did.
#[derive(Debug)]
pub(super) enum Round {
    /// The log has no policy: checkpoints are signed by integration.
    Unwitnessed,
    /// Another front-end's round holds the lock (background rounds only), or
    /// none was due, or this front-end has no signing key.
    Skipped,
    /// The latest checkpoint covers the integrated tree with the quorum.
    Done,
}

/// One witness round (see the module's text). With `force`, a checkpoint of
/// the integrated tree is made unless the latest covers it with the quorum,
/// waiting for another front-end's round if one runs; a failed quorum is an
/// [`Error::Witness`] naming the witnesses that failed. Without `force`, a
/// round runs only when a checkpoint is due.
pub(super) async fn round(inner: &Arc<Inner>, force: bool) -> Result<Round> {
    let Some(signer) = inner.signer.clone() else {
        return Ok(Round::Skipped);
    };
    let mut client = inner.client().await?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| db_err("begin", chain(&e)))?;
    let lock = if force {
        "SELECT policy FROM stele_witness WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT policy FROM stele_witness WHERE id = 1 FOR UPDATE SKIP LOCKED"
    };
    let Some(row) = row_opt(&tx, "lock stele_witness", lock, &[]).await? else {
        return Ok(if force || !witnessed(&tx).await? {
            Round::Unwitnessed
        } else {
            Round::Skipped
        });
    };
    let cosigner = inner
        .witness
        .cosigner(&row.get::<_, String>(0), inner.opts.witness_client)?;
    let what = "read stele_integrated";
    let row = super::row1(
        &tx,
        what,
        "SELECT size, compact FROM stele_integrated WHERE id = 1",
        &[],
    )
    .await?;
    let size = row.get::<_, i64>(0) as u64;
    let left: Vec<Hash> = row
        .get::<_, &[u8]>(1)
        .chunks_exact(32)
        .map(|c| Hash(c.try_into().expect("32 bytes")))
        .collect();
    let root = CompactRange::from_left_hashes(size, &left)
        .map_err(|e| db_err("stele_integrated.compact", chain(&e)))?
        .root();
    let latest = row_opt(
        &tx,
        "read stele_checkpoints",
        "SELECT size, note, extract(epoch FROM now() - signed_at)::float8 FROM stele_checkpoints ORDER BY size DESC LIMIT 1",
        &[],
    )
    .await?;
    let (signed, note, age) = latest.map_or((0, String::new(), f64::INFINITY), |r| {
        (r.get::<_, i64>(0) as u64, r.get(1), r.get::<_, f64>(2))
    });
    if signed >= size && cosigner.accepts(&note) {
        return Ok(Round::Done);
    }
    if !force {
        let interval = inner.opts.checkpoint_interval;
        let failed_recently = inner
            .witness
            .failed_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() < interval);
        let due = size > signed
            && (size - signed >= inner.opts.checkpoint_every || age >= interval.as_secs_f64());
        if !due || failed_recently {
            return Ok(Round::Skipped);
        }
    }
    let cp = Checkpoint {
        origin: inner.info.origin.clone(),
        size,
        root,
        extensions: Vec::new(),
    };
    let fresh = cp.sign(&signer).map_err(|e| Error::Sign(e.to_string()))?;
    let proofs = StoreProofs {
        inner: inner.clone(),
        rt: tokio::runtime::Handle::current(),
        published: signed,
    };
    let c = cosigner.clone();
    let asked = tokio::task::spawn_blocking(move || c.cosign_with(&fresh, &proofs))
        .await
        .map_err(|e| db_err("witness round", chain(&e)))?;
    let cosigned = match asked {
        Ok(n) => n,
        Err(e) => {
            *inner
                .witness
                .failed_at
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            return Err(e);
        }
    };
    *inner
        .witness
        .failed_at
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = None;
    if signed == size {
        // The same checkpoint (deterministic signature), now with the quorum.
        let same = SignedCheckpoint::parse(note.as_bytes())
            .is_ok_and(|old| cosigned.starts_with(&format!("{}\n", old.note.text)));
        if !same {
            return Err(db_err(
                "witness round",
                format!("the stored checkpoint of size {size} differs from the one signed now"),
            ));
        }
        exec1(
            &tx,
            "update stele_checkpoints",
            "UPDATE stele_checkpoints SET note = $2, signed_at = now() WHERE size = $1",
            &[&(size as i64), &cosigned],
        )
        .await?;
    } else {
        let what = "insert into stele_checkpoints";
        let stmt = super::prepared(
            &tx,
            what,
            "INSERT INTO stele_checkpoints (size, note) SELECT $1, $2 \
             WHERE NOT EXISTS (SELECT 1 FROM stele_checkpoints WHERE size >= $1)",
        )
        .await?;
        let _ = tx
            .execute(&stmt, &[&(size as i64), &cosigned])
            .await
            .map_err(|e| db_err(what, chain(&e)))?;
    }
    tx.commit().await.map_err(|e| db_err("commit", chain(&e)))?;
    drop(client);
    inner.publish().await?;
    Ok(Round::Done)
}

impl Inner {
    /// The consistency proof from `old` to `new`, from tiles.
    pub(super) async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        let tiles = stele_core::tiles::tiles_for_consistency(old, new)
            .map_err(|e| Error::OutOfRange(e.to_string()))?;
        let set = self.tile_set(new, &tiles).await?;
        stele_core::tiles::consistency_proof_from_tiles(&set, old, new)
            .map_err(|e| obj_err("consistency proof", e))
    }
}
