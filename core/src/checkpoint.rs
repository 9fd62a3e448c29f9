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
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
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
        Ok(Checkpoint {
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
    pub fn parse(msg: &[u8]) -> Result<SignedCheckpoint, CheckpointError> {
        let note = Note::parse(msg)?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        Ok(SignedCheckpoint { note, checkpoint })
    }

    /// Checks the signatures against the pinned keys.
    pub fn verify(&self, keys: &[VerifierKey]) -> NoteVerification {
        self.note.verify(keys)
    }
}
