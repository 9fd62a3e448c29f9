//! C2SP tlog-checkpoint: the note text naming a log's origin, tree size and root.
//!
//! ```text
//! example.com/log
//! 1000
//! FiH9jk3Fu/1dIYqARUkCWB7wfpDWmy15D1irm83xfDk=
//! ```

use crate::canonical::quote;
use crate::hash::Hash;
use crate::note::{Note, NoteError, NoteVerification, SignerKey, VerifierKey};
use std::fmt;
use thiserror::Error;

/// Why a checkpoint text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note around the checkpoint is malformed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The checkpoint body breaks C2SP tlog-checkpoint.
    #[error("checkpoint {what}")]
    Body {
        /// What is wrong.
        what: String,
    },
}

/// A checkpoint body: origin, tree size, root hash, and any extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The RFC 9162 root of the first `size` entries.
    pub root: Hash,
    /// Optional extension lines (Stele writes none).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses a note text as a C2SP checkpoint.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let bad = |what: String| CheckpointError::Body { what };
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("text does not end in a newline".into()))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or("");
        if origin.is_empty() {
            return Err(bad("origin line is empty".into()));
        }
        let size_s = lines
            .next()
            .ok_or_else(|| bad("has no tree size line".into()))?;
        if size_s.is_empty()
            || !size_s.bytes().all(|b| b.is_ascii_digit())
            || (size_s.len() > 1 && size_s.starts_with('0'))
        {
            return Err(bad(format!(
                "tree size {} is not a decimal number without leading zeros",
                quote(size_s)
            )));
        }
        let size: u64 = size_s
            .parse()
            .map_err(|_| bad(format!("tree size {size_s} is too large")))?;
        let root_s = lines
            .next()
            .ok_or_else(|| bad("has no root hash line".into()))?;
        let root = Hash::from_base64(root_s)
            .ok_or_else(|| bad(format!("root {} is not base64 of 32 bytes", quote(root_s))))?;
        let mut extensions = Vec::new();
        for l in lines {
            if l.is_empty() {
                return Err(bad("has an empty extension line".into()));
            }
            extensions.push(l.to_string());
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// The note text: origin, size and base64 root, one per line.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Signs the checkpoint and returns the whole signed note.
    pub fn sign(&self, signer: &SignerKey) -> Result<String, CheckpointError> {
        Ok(signer.sign_note(&self.to_text())?)
    }

    /// Signs the checkpoint with each signer, in order, and returns the
    /// note with one signature line per signer (docs/FORMAT.md 15.5: a
    /// rotation's old and new keys).
    pub fn sign_with(&self, signers: &[&SignerKey]) -> Result<String, CheckpointError> {
        let text = self.to_text();
        let mut note = text.clone();
        note.push('\n');
        for s in signers {
            let one = s.sign_note(&text)?;
            note.push_str(&one[text.len() + 1..]);
        }
        Ok(note)
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} size {} root {}", self.origin, self.size, self.root)
    }
}

/// A parsed signed checkpoint: the note and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The signed note.
    pub note: Note,
    /// The checkpoint in the note's text.
    pub checkpoint: Checkpoint,
}

impl SignedCheckpoint {
    /// Parses a signed note whose text is a checkpoint.
    pub fn parse(msg: &[u8]) -> Result<Self, CheckpointError> {
        let note = Note::parse(msg)?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        Ok(Self { note, checkpoint })
    }

    /// Checks the signatures against the pinned keys.
    pub fn verify(&self, keys: &[VerifierKey]) -> NoteVerification {
        self.note.verify(keys)
    }
}

/// Why a checkpoint given as trusted (docs/FORMAT.md 8.6) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TrustedCheckpointError {
    /// The text is not a signed checkpoint note.
    #[error(transparent)]
    Parse(#[from] CheckpointError),
    /// No pinned key was given, so its signature cannot be checked.
    #[error("no pinned key was given to check its signature")]
    NoKey,
    /// A pinned key's signature on it does not verify.
    #[error("checkpoint of size {size}: the signature by pinned key {key} does not verify")]
    BadSignature {
        /// Its tree size.
        size: u64,
        /// The pinned key's name.
        key: String,
    },
    /// No pinned key signed it.
    #[error("checkpoint of size {size} for {origin} is not signed by a pinned key")]
    NotSigned {
        /// Its tree size.
        size: u64,
        /// Its origin.
        origin: String,
    },
}

/// docs/FORMAT.md 8.6: reads an earlier checkpoint the caller trusts, as a
/// file or pasted text holds it: a signed checkpoint note (CR LF line ends
/// are read as LF, a missing final newline is added) that is trusted under
/// `keys` by the rule of section 5.4 (a pinned key's signature verifies and
/// none fails). The one check used by the CLI, the monitor, the wasm
/// modules and the service.
pub fn parse_trusted(
    text: &[u8],
    keys: &[VerifierKey],
) -> Result<SignedCheckpoint, TrustedCheckpointError> {
    let mut note = Vec::with_capacity(text.len() + 1);
    let mut rest = text;
    while let Some(i) = rest.iter().position(|&b| b == b'\r') {
        note.extend_from_slice(&rest[..i]);
        if rest.get(i + 1) != Some(&b'\n') {
            note.push(b'\r');
        }
        rest = &rest[i + 1..];
    }
    note.extend_from_slice(rest);
    if note.last() != Some(&b'\n') {
        note.push(b'\n');
    }
    let sc = SignedCheckpoint::parse(&note)?;
    if keys.is_empty() {
        return Err(TrustedCheckpointError::NoKey);
    }
    let v = sc.verify(keys);
    if let Some(b) = v.bad.first() {
        return Err(TrustedCheckpointError::BadSignature {
            size: sc.checkpoint.size,
            key: b.name.clone(),
        });
    }
    if !v.trusted() {
        return Err(TrustedCheckpointError::NotSigned {
            size: sc.checkpoint.size,
            origin: quote(&sc.checkpoint.origin),
        });
    }
    Ok(sc)
}
