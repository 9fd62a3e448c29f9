//! What `stele migrate DIR postgres://…` brings besides entry lines and
//! checkpoints, written in the same transaction as they are (a crash
//! leaves an empty database, never a log without them): the idempotency
//! keys recorded in the last entries (so a retry of a request made before
//! the migration gets its receipts back, as from a restarted file log), the
//! RFC 3161 tokens of `DIR/timestamps`, and the witness policy of
//! `stele.json`.

use super::{chain, db_err, exec1};
use crate::error::Result;
use crate::log::Receipt;
use deadpool_postgres::GenericClient;
use stele_core::hash::leaf_hash;
use stele_core::timestamp::TimestampRecord;

/// The body hash stored for a key rebuilt from migrated entries: the body
/// is not known (a file log rebuilds its keys the same way), so a retry
/// under the key is compared with its entries (super::Keyed::Unchecked,
/// super::Cluster::compare_retry). (A forget or redaction sets
/// super::UNREADABLE_BODY in the keys of the requests it touches.)
pub(super) const UNKNOWN_BODY: [u8; 32] = [0; 32];

/// What a migrated log brings besides its entries and checkpoints.
#[derive(Debug, Default, Clone)]
pub struct Imported {
    /// Its RFC 3161 tokens (`DIR/timestamps`).
    pub timestamps: Vec<TimestampRecord>,
    /// Its witness policy (`witness_policy` in `stele.json`).
    pub witness_policy: Option<String>,
}

/// Writes `extra` and the idempotency keys of `tail` (the last entries,
/// from index `first`) in the import's transaction.
pub(super) async fn write<C: GenericClient>(
    tx: &C,
    extra: &Imported,
    first: u64,
    tail: &[Vec<u8>],
) -> Result<()> {
    let entries = tail.iter().zip(first..).map(|(l, seq)| {
        (
            Receipt {
                seq,
                leaf_hash: leaf_hash(l),
            },
            l,
        )
    });
    for ((token, key), rs) in crate::serve::keys_in(entries) {
        let leaves: Vec<u8> = rs.iter().flat_map(|r| r.leaf_hash.0).collect();
        // A key used twice in the tail: the later request's receipts.
        let what = "insert into stele_requests";
        let stmt = super::prepared(
            tx,
            what,
            "INSERT INTO stele_requests (token, key, digest, first, leaves) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (token, key) DO UPDATE SET first = EXCLUDED.first, leaves = EXCLUDED.leaves",
        )
        .await?;
        let _ = tx
            .execute(
                &stmt,
                &[
                    &token,
                    &key,
                    &&UNKNOWN_BODY[..],
                    &(rs[0].seq as i64),
                    &leaves,
                ],
            )
            .await
            .map_err(|e| db_err(what, chain(&e)))?;
    }
    // In file order (several tokens of one checkpoint are all kept).
    let what = "insert into stele_timestamps";
    let stmt = super::prepared(
        tx,
        what,
        "INSERT INTO stele_timestamps (size, token) VALUES ($1, $2)",
    )
    .await?;
    for t in &extra.timestamps {
        let _ = tx
            .execute(&stmt, &[&(t.size as i64), &t.token])
            .await
            .map_err(|e| db_err(what, chain(&e)))?;
    }
    if let Some(p) = &extra.witness_policy {
        exec1(
            tx,
            "write stele_witness",
            "INSERT INTO stele_witness (id, policy) VALUES (1, $1)",
            &[p],
        )
        .await?;
    }
    Ok(())
}
