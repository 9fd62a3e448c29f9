//! RFC 3161 anchoring on a PostgreSQL + object storage log (docs/FORMAT.md
//! 16; `stele serve --db … --tsa URL --anchor-every D [--ca FILE]`,
//! `stele anchor --db …`).
//!
//! Tokens are kept in the table `stele_timestamps`, in the order they were
//! kept (one per checkpoint, after those a migrated directory had, in its
//! file order), so every front-end's exports carry them as a file log's
//! carry `DIR/timestamps`, and `stele migrate` back writes that file byte
//! for byte. One front-end anchors a checkpoint: an anchoring
//! attempt runs in a transaction holding a PostgreSQL advisory lock (taken
//! with `pg_try_advisory_xact_lock`: a front-end that finds it held skips
//! this turn; the lock dies with the transaction, a crashed front-end's
//! with its connection). Under the lock, the latest published checkpoint
//! without a token is sent to the TSA, the token checked against the CA
//! when one is given (a token that fails is not kept), and inserted; the
//! commit makes it visible to every front-end. A crash before the commit
//! keeps nothing and the next attempt asks again; a token only adds
//! evidence, so losing one loses no entry.

use super::{Cluster, Inner, chain, db_err, row_opt, rows};
use crate::anchor::{Anchored, fetch_checked};
use crate::error::{Error, Result};
use std::time::Duration;
use stele_core::timestamp::{TimestampRecord, TokenChecker};

// Made on open (logs created before the table existed; a table made
// before tokens were kept in order, keyed by size, gains the `id`).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stele_timestamps (
    id bigserial PRIMARY KEY,
    size bigint NOT NULL,
    token bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS stele_timestamps_size ON stele_timestamps (size);
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema()
                     AND table_name = 'stele_timestamps' AND column_name = 'id') THEN
        ALTER TABLE stele_timestamps ADD COLUMN id bigserial;
    END IF;
END $$;
";

// The advisory lock of anchoring ("stele-anchor" in ASCII, cut to 8 bytes).
const LOCK: i64 = 0x7374_656c_652d_616e;

impl Cluster {
    /// Anchors the latest published checkpoint (`sign_first`: after
    /// integrating everything and signing a checkpoint covering it) with the
    /// TSA at `url`, checking the token against `ca` when given. `Ok(None)`:
    /// another front-end is anchoring now. Blocking: the TSA request runs on
    /// the calling thread, the stores are reached through `rt` (the runtime
    /// of this front-end), so it must not be called from inside it.
    pub fn anchor_blocking(
        &self,
        rt: &tokio::runtime::Handle,
        url: &str,
        ca: Option<&stele_tsa::TsaChecker>,
        sign_first: bool,
        timeout: Duration,
    ) -> Result<Option<Anchored>> {
        if sign_first {
            let _ = rt.block_on(self.sync(true))?;
        }
        let inner = &self.inner;
        let mut client = rt.block_on(inner.client())?;
        let tx = rt
            .block_on(client.transaction())
            .map_err(|e| db_err("begin", chain(&e)))?;
        let locked: bool = rt
            .block_on(super::row1(
                &tx,
                "lock anchoring",
                "SELECT pg_try_advisory_xact_lock($1)",
                &[&LOCK],
            ))?
            .get(0);
        if !locked {
            return Ok(None);
        }
        // The latest checkpoint whose tiles are written (published).
        let latest = rt.block_on(row_opt(
            &tx,
            "read stele_checkpoints",
            "SELECT size, note, EXISTS (SELECT 1 FROM stele_timestamps t WHERE t.size = c.size) \
             FROM stele_checkpoints c \
             WHERE size <= (SELECT size FROM stele_integrated WHERE id = 1) \
             ORDER BY size DESC LIMIT 1",
            &[],
        ))?;
        let Some(row) = latest else {
            return Err(Error::Timestamp(
                "the log has no checkpoint to anchor".into(),
            ));
        };
        let size = row.get::<_, i64>(0) as u64;
        let note: String = row.get(1);
        // With a CA, a checkpoint is anchored already only if one of its
        // tokens passes it; those that fail are deleted when a new token
        // that passes is kept (as a file log moves them aside).
        let mut failing: Vec<i64> = Vec::new();
        if row.get::<_, bool>(2) {
            let Some(ca) = ca else {
                return Ok(Some(Anchored::Already(size)));
            };
            let imp =
                stele_core::timestamp::imprint(crate::anchor::body_of(&note, size)?.as_bytes());
            let held = rt.block_on(rows(
                &tx,
                "read stele_timestamps",
                "SELECT id, token FROM stele_timestamps WHERE size = $1",
                &[&(size as i64)],
            ))?;
            for r in &held {
                let token: Vec<u8> = r.get(1);
                if ca.check(&token, &imp).is_ok() {
                    return Ok(Some(Anchored::Already(size)));
                }
                failing.push(r.get(0));
            }
        }
        let (token, att) = fetch_checked(url, &note, size, ca, timeout)?;
        crate::anchor::check_size(&token, size)?;
        if !failing.is_empty() {
            let n = rt
                .block_on(rows(
                    &tx,
                    "delete from stele_timestamps",
                    "DELETE FROM stele_timestamps WHERE id = ANY($1) RETURNING id",
                    &[&failing],
                ))?
                .len();
            eprintln!(
                "stele: {n} token(s) kept for checkpoint {size} fail --ca; deleted, anchoring it again"
            );
        }
        rt.block_on(super::exec1(
            &tx,
            "insert into stele_timestamps",
            "INSERT INTO stele_timestamps (size, token) VALUES ($1, $2)",
            &[&(size as i64), &token],
        ))?;
        rt.block_on(tx.commit())
            .map_err(|e| db_err("commit", chain(&e)))?;
        Ok(Some(Anchored::New(size, att)))
    }

    /// Every stored timestamp token, in the order kept (`DIR/timestamps`'s
    /// order for a migrated log's).
    pub async fn timestamps(&self) -> Result<Vec<TimestampRecord>> {
        let client = self.inner.client().await?;
        Ok(rows(
            &client,
            "read stele_timestamps",
            "SELECT size, token FROM stele_timestamps ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| TimestampRecord {
            size: r.get::<_, i64>(0) as u64,
            token: r.get(1),
        })
        .collect())
    }
}

/// The stored tokens of the checkpoints of `sizes`, ordered by size, those
/// of one size in the order kept: what [`Cluster::timestamps`] gives of
/// them, for an export that writes only those (every export read every
/// token before).
pub(super) async fn timestamps_of(inner: &Inner, sizes: &[u64]) -> Result<crate::anchor::Stamps> {
    if sizes.is_empty() {
        return Ok(crate::anchor::Stamps::default());
    }
    let sizes: Vec<i64> = sizes.iter().map(|&s| s as i64).collect();
    let client = inner.client().await?;
    let recs = rows(
        &client,
        "read stele_timestamps",
        "SELECT size, token FROM stele_timestamps WHERE size = ANY($1) ORDER BY size, id",
        &[&sizes],
    )
    .await?
    .iter()
    .map(|r| TimestampRecord {
        size: r.get::<_, i64>(0) as u64,
        token: r.get(1),
    })
    .collect();
    Ok(crate::anchor::Stamps::new(recs))
}
