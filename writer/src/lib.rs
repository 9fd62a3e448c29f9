//! Stele's writer: a durable, append-only, tamper-evident log in a local
//! directory, with signed checkpoints, proofs and exports. The format is
//! docs/FORMAT.md; the durability story is in writer/README.md ("Life of an
//! entry").
//!
//! ```text
//! DIR/stele.json      origin and key file                    (written once)
//! DIR/key             PRIVATE+KEY+origin+hex8+base64, 0600    (unless --key-file)
//! DIR/entries.jsonl   one canonical JSON entry per line       (source of truth, fdatasync'ed)
//! DIR/checkpoints     <length>\n<signed note>, append-only    (fdatasync'ed)
//! DIR/tree            every perfect subtree hash, post-order  (derived, checked on open)
//! DIR/index           u64 LE end offset of each entry         (derived, checked on open)
//! DIR/checked         entries checked up to a signed checkpoint (derived, synced)
//! DIR/lock            locked by the writer for older stele versions (the lock is on DIR itself)
//! ```
//!
//! **Guarantee:** when [`Log::append`] returns `Ok`, the entry is on stable
//! storage.
//!
//! ```
//! use stele_writer::{Log, key};
//! let dir = tempfile::tempdir().unwrap();
//! let signer = key::generate("example.com/log").unwrap();
//! let log = Log::create(dir.path(), "example.com/log", &signer).unwrap();
//! let r = log.append(serde_json::json!({"actor": "alice", "action": "login"})).unwrap();
//! assert_eq!(r.seq, 1); // entry 0 is the genesis
//! let cp = log.checkpoint().unwrap();
//! let view = log.view();
//! let proof = view.inclusion_proof(1, cp.checkpoint.size).unwrap();
//! stele_core::merkle::verify_inclusion(&r.leaf_hash, 1, 2, &proof, &cp.checkpoint.root).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access;
pub mod anchor;
pub mod cluster;
pub mod error;
pub mod fs;
pub mod key;
pub mod log;
mod mark;
pub mod mirror;
pub mod parallel;
pub mod remote;
pub mod sealed;
pub mod serve;
pub mod testing;
pub mod tree;
pub mod view;
pub mod witness;

pub use error::{Error, Result};
pub use log::{Log, LogOptions, Receipt, Recovery};
pub use parallel::ParallelVerifier;
pub use view::{
    ConsistencyProof, InclusionProof, StoredCheckpoint, View, verify_dir, verify_dir_revealed,
};
