//! The export file: one self-contained text file an auditor can verify as a
//! stream. See docs/FORMAT.md, "Export files".
//!
//! ```text
//! stele-export v1 log
//! {"event":{"key":"…","origin":"example.com/log","type":"stele.genesis"},"prev":"000…","seq":0,"ts":"…"}
//! checkpoint
//! example.com/log
//! 1
//! <base64 root>
//!
//! — example.com/log <base64 signature>
//! {"event":{…},"prev":"…","seq":1,"ts":"…"}
//! ```

use crate::canonical::quote;
use crate::hash::Hash;
use std::fmt;

/// The first line of every export starts with this.
pub const EXPORT_MAGIC: &str = "stele-export v1";
/// The first line of a C2SP tlog-proof.
pub const TLOG_PROOF_MAGIC: &str = "c2sp.org/tlog-proof@v1";
/// The largest tlog-proof file accepted.
pub const MAX_TLOG_PROOF_BYTES: usize = 256 * 1024;

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// The whole log, every checkpoint after the entry that completes it.
    Log,
    /// A contiguous range of entries, with the hashes left and right of it.
    Range,
    /// Selected entries, each with an inclusion proof.
    Entries,
    /// A single C2SP tlog-proof.
    TlogProof,
}

impl ExportKind {
    /// The kind's name on the header line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Range => "range",
            Self::Entries => "entries",
            Self::TlogProof => "tlog-proof",
        }
    }
}

impl fmt::Display for ExportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The header line (with `\n`).
pub fn header(kind: ExportKind) -> String {
    format!("{EXPORT_MAGIC} {kind}\n")
}

/// A checkpoint record: `checkpoint\n` then the signed note as is.
pub fn checkpoint_record(note: &str) -> String {
    format!("checkpoint\n{note}")
}

fn hashes_line(word: &str, n: u64, hashes: &[Hash]) -> String {
    let mut s = format!("{word} {n}");
    for h in hashes {
        s.push(' ');
        s.push_str(&h.to_base64());
    }
    s.push('\n');
    s
}

/// `range <start> <left hashes>`: opens a range export.
pub fn range_record(start: u64, left: &[Hash]) -> String {
    hashes_line("range", start, left)
}

/// `right <size> <right hashes>`: precedes a checkpoint larger than the range.
pub fn right_record(size: u64, right: &[Hash]) -> String {
    hashes_line("right", size, right)
}

/// `inclusion <index> <proof hashes>`: precedes the entry it proves.
pub fn inclusion_record(index: u64, proof: &[Hash]) -> String {
    hashes_line("inclusion", index, proof)
}

/// A C2SP tlog-proof for one entry, with the entry line (base64) as `extra`.
pub fn tlog_proof(entry_line: &[u8], index: u64, proof: &[Hash], checkpoint_note: &str) -> String {
    let mut s = format!(
        "{TLOG_PROOF_MAGIC}\nextra {}\nindex {index}\n",
        crate::b64::encode(entry_line)
    );
    for h in proof {
        s.push_str(&h.to_base64());
        s.push('\n');
    }
    s.push('\n');
    s.push_str(checkpoint_note);
    s
}

/// A parsed C2SP tlog-proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// The `extra` data, if any (Stele puts the entry line there).
    pub extra: Option<Vec<u8>>,
    /// The leaf index.
    pub index: u64,
    /// The inclusion proof.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

impl TlogProof {
    /// Parses the C2SP tlog-proof text format.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        if text.len() > MAX_TLOG_PROOF_BYTES {
            return Err(format!(
                "tlog-proof is {} bytes, more than the limit of {MAX_TLOG_PROOF_BYTES}",
                text.len()
            ));
        }
        let s = std::str::from_utf8(text)
            .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
        let blank = crate::note::find_blank_line(s).ok_or("no empty line before the checkpoint")?;
        // Cut next to ASCII bytes: `get` cannot fail, and brings no panic path.
        let head = s.get(..blank).unwrap_or_default();
        let checkpoint = s.get(blank + 2..).unwrap_or_default();
        let mut lines = head.split('\n');
        if lines.next() != Some(TLOG_PROOF_MAGIC) {
            return Err(format!("first line is not {TLOG_PROOF_MAGIC}"));
        }
        let mut line = lines.next().ok_or("missing index line")?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            extra = Some(crate::b64::decode(b64).ok_or("extra is not valid base64")?);
            line = lines.next().ok_or("missing index line")?;
        }
        let idx = line
            .strip_prefix("index ")
            .ok_or_else(|| format!("expected \"index N\", found {}", quote(line)))?;
        if idx.is_empty()
            || !idx.bytes().all(|b| b.is_ascii_digit())
            || (idx.len() > 1 && idx.starts_with('0'))
        {
            return Err(format!("index {} is not a decimal number", quote(idx)));
        }
        let index = idx
            .parse()
            .map_err(|_| format!("index {idx} is too large"))?;
        let mut proof = Vec::new();
        for (i, l) in lines.enumerate() {
            proof.push(
                Hash::from_base64(l)
                    .ok_or_else(|| format!("proof hash {} is not base64 of 32 bytes", i + 1))?,
            );
            if proof.len() > 64 {
                return Err("proof has more than 64 hashes".into());
            }
        }
        Ok(Self {
            extra,
            index,
            proof,
            checkpoint: checkpoint.to_string(),
        })
    }
}
