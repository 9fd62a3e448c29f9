//! The one writer: a thread that owns all appends to the log. Requests queue
//! on a channel; each round takes every queued append request (up to a cap)
//! and makes it one `append_batch`: one write, one fdatasync (group commit).
//! A request is answered only when `append_batch` returned, i.e. when its
//! entries are durable.
//!
//! Each request stays all-or-nothing: an event the log refuses fails only
//! the request it came from; the others of the round are appended again
//! without it (nothing was written: the log checks every event before it
//! writes any).

use super::metrics::Metrics;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use stele_writer::{Error, Log, Receipt, StoredCheckpoint};

/// A refused or failed request, as the HTTP layer answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// HTTP status.
    pub status: u16,
    /// What went wrong.
    pub msg: String,
    /// The item of the request to blame, if one is.
    pub item: Option<usize>,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::BadEvent { index, why } => Failure {
                status: if why.starts_with("entry would be") {
                    413
                } else {
                    400
                },
                msg: format!("item {index}: {why}"),
                item: Some(index),
            },
            Error::Poisoned { .. } => Failure {
                status: 503,
                msg: format!("{e}; nothing was acknowledged"),
                item: None,
            },
            e => Failure {
                status: 500,
                msg: format!("{e}; nothing was acknowledged"),
                item: None,
            },
        }
    }
}
use tokio::sync::{mpsc, oneshot};

/// Most entries in one group commit.
const MAX_GROUP: usize = 64 * 1024;

/// What a request asks of the writer.
#[derive(Debug)]
pub enum Job {
    /// Append events (all or nothing) and answer with their receipts.
    Append {
        /// The events.
        events: Vec<Value>,
        /// When the request arrived (for the latency histogram).
        since: Instant,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Vec<Receipt>, Failure>>,
    },
    /// Append one reserved `stele.*` event (a `stele.access` record).
    Reserved {
        /// The event.
        event: Value,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Receipt, Failure>>,
    },
    /// Sign a checkpoint if the tree grew.
    Checkpoint {
        /// Where the answer goes.
        reply: oneshot::Sender<Result<StoredCheckpoint, Failure>>,
    },
    /// Finish everything queued before this, sign a final checkpoint, stop.
    Stop,
}

struct Pending {
    events: Vec<Value>,
    since: Instant,
    reply: oneshot::Sender<Result<Vec<Receipt>, Failure>>,
}

/// Runs the writer until `Stop` or until every sender is gone; then signs a
/// final checkpoint.
pub fn run(
    log: Arc<Log>,
    mut rx: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
    poisoned: Arc<AtomicBool>,
) {
    let mut stop = false;
    while !stop {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut appends: Vec<Pending> = Vec::new();
        let mut others = Vec::new();
        let mut n = 0;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Append {
                    events,
                    since,
                    reply,
                } => {
                    n += events.len();
                    appends.push(Pending {
                        events,
                        since,
                        reply,
                    });
                }
                Job::Stop => stop = true,
                other => others.push(other),
            }
            if n < MAX_GROUP && !stop {
                next = rx.try_recv().ok();
            }
        }
        commit(&log, appends, &metrics, &poisoned);
        for job in others {
            match job {
                Job::Reserved { event, reply } => {
                    let r = log.append_reserved(event);
                    note_poison(&r, &poisoned);
                    let _ = reply.send(r.map_err(Failure::from));
                }
                Job::Checkpoint { reply } => {
                    let r = log.checkpoint();
                    note_poison(&r, &poisoned);
                    let _ = reply.send(r.map_err(Failure::from));
                }
                Job::Append { .. } | Job::Stop => unreachable!("sorted above"),
            }
        }
    }
    // Anything still queued after Stop gets no answer (its sender sees the
    // channel closed and answers 503).
    rx.close();
    if let Err(e) = log.checkpoint() {
        eprintln!("stele serve: final checkpoint failed: {e}");
    }
}

fn note_poison<T>(r: &Result<T, Error>, poisoned: &AtomicBool) {
    if let Err(Error::Poisoned { .. }) = r {
        poisoned.store(true, Ordering::Relaxed);
    }
}

// One group commit of several requests, each all-or-nothing.
fn commit(log: &Log, mut group: Vec<Pending>, metrics: &Metrics, poisoned: &AtomicBool) {
    while !group.is_empty() {
        let lens: Vec<usize> = group.iter().map(|p| p.events.len()).collect();
        let total: usize = lens.iter().sum();
        // With one request its events are handed over; with several they
        // are copied, so that a request refused by the log can be left out
        // and the rest appended again.
        let events = if group.len() == 1 {
            std::mem::take(&mut group[0].events)
        } else {
            group
                .iter()
                .flat_map(|p| p.events.iter().cloned())
                .collect()
        };
        let r = log.append_batch(events);
        note_poison(&r, poisoned);
        match r {
            Ok(receipts) => {
                metrics.batch_size.observe(total as f64);
                metrics.entries.fetch_add(total as u64, Ordering::Relaxed);
                let mut it = receipts.into_iter();
                for (p, n) in group.drain(..).zip(lens) {
                    let mine: Vec<Receipt> = it.by_ref().take(n).collect();
                    metrics.append_latency.observe_duration(p.since.elapsed());
                    let _ = p.reply.send(Ok(mine));
                }
                return;
            }
            Err(Error::BadEvent { index, why }) if group.len() > 1 => {
                // Find the request the event came from; fail it alone.
                let mut at = index;
                let mut culprit = group.len() - 1;
                for (i, n) in lens.iter().enumerate() {
                    if at < *n {
                        culprit = i;
                        break;
                    }
                    at -= n;
                }
                let p = group.remove(culprit);
                let _ = p.reply.send(Err(Error::BadEvent { index: at, why }.into()));
            }
            Err(e) => {
                let f = Failure::from(e);
                for p in group.drain(..) {
                    let _ = p.reply.send(Err(f.clone()));
                }
                return;
            }
        }
    }
}
