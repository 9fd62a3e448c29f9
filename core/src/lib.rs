//! Stele's core: the entry format, the hash chain, RFC 9162 Merkle trees and
//! proofs, C2SP signed checkpoints, export files and the streaming verifier.
//!
//! Pure: bytes in, values out. No file system, sockets, clock or randomness;
//! it builds for `wasm32-unknown-unknown`. The normative description is
//! docs/FORMAT.md.
//!
//! ```text
//! {"event":{"key":"log+1a2b3c4d+AR…","origin":"log","type":"stele.genesis"},"prev":"0000…0000","seq":0,"ts":"2026-11-26T12:00:00.000000Z"}
//! {"event":{"action":"login","actor":"alice"},"prev":"<leaf hash of entry 0, hex>","seq":1,"ts":"2026-11-26T12:00:01.000000Z"}
//! ```
//!
//! ```
//! use stele_core::{hash::leaf_hash, merkle::MemoryTree};
//! let mut tree = MemoryTree::new();
//! tree.push(leaf_hash(b"{\"go\":0}"));
//! assert_eq!(tree.root_at(1).unwrap().to_base64(), "uB1taXVPVpAXbMeab732IcMf/zZTADxg60tsC/WKuho=");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod b64;
pub mod canonical;
pub mod checkpoint;
pub mod codes;
pub mod entry;
pub mod export;
pub mod hash;
pub mod merkle;
pub mod note;
pub mod sealed;
#[cfg(feature = "sealed")]
pub mod sealed_pass;
pub mod tiles;
pub mod timestamp;
pub mod verify;
#[cfg(feature = "witness")]
pub mod witness;

pub use checkpoint::{Checkpoint, SignedCheckpoint};
pub use hash::{Hash, leaf_hash, node_hash};
pub use note::{Note, SignerKey, VerifierKey};
pub use verify::{Options, Report, StreamVerifier, Verdict};
