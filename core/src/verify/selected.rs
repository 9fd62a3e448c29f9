//! Selected entries (entries exports and tlog-proofs): each entry is
//! checked by its inclusion proof against the latest checkpoint.

use super::*;
use crate::entry;
use crate::export::{MAX_TLOG_PROOF_BYTES, TlogProof};
use crate::hash::leaf_hash;
use crate::merkle;

impl<S: EntrySink> StreamVerifier<S> {
    pub(super) fn selected_entry(&mut self, line: &[u8]) {
        let (line_no, offset) = (self.line_no, self.offset);
        let leaf = leaf_hash(line);
        let incl = self.inclusion.take();
        let parsed = entry::parse_entry(line);
        let idx = match (&parsed, &incl) {
            (_, Some((i, _, _))) => *i,
            (Ok(p), None) => p.seq,
            (Err(_), None) => self.last_index_in_export.map_or(0, |i| i + 1),
        };
        match &parsed {
            Err(e) => self.unparsable(idx, e, line_no, offset),
            Ok(p) => {
                if p.seq != idx {
                    self.fail(
                        FailureCode::SeqMismatch,
                        Some(idx),
                        line_no,
                        offset,
                        Some(idx.to_string()),
                        Some(p.seq.to_string()),
                        format!(
                            "entry {idx}: seq is {}, but its inclusion proof is for index {idx}",
                            p.seq
                        ),
                    );
                }
                self.genesis_rules(idx, p, line_no, offset);
                if let Some(last) = self.last_index_in_export {
                    if idx <= last {
                        self.fail(FailureCode::EntriesOutOfOrder, Some(idx), line_no, offset, Some(format!("> {last}")), Some(idx.to_string()), format!("entry {idx}: comes after entry {last}; selected entries must be in increasing order"));
                    } else if idx == last + 1
                        && let Some(h) = self.last_hash
                        && h != p.prev
                    {
                        self.fail(
                            FailureCode::PrevMismatch,
                            Some(idx),
                            line_no,
                            offset,
                            Some(h.to_hex()),
                            Some(p.prev.to_hex()),
                            format!(
                                "entry {idx}: prev is {}, but entry {last} hashes to {}",
                                p.prev.short(),
                                h.short()
                            ),
                        );
                    }
                }
                self.ts_order(idx, p, line_no, offset);
                self.last_seq = Some(p.seq);
                if self.first_seq.is_none() {
                    self.first_seq = Some(p.seq);
                }
            }
        }
        self.summary(parsed.as_ref().ok(), line, line_no, offset);
        let event = parsed.as_ref().ok().map(|p| &p.line[p.event.0..p.event.1]);
        self.seal_entry(idx, event, line_no, offset);
        self.entries += 1;
        self.last_hash = Some(leaf);
        self.last_index_in_export = Some(idx);
        // The inclusion proof against the latest checkpoint.
        match (incl, self.current.clone()) {
            (None, _) => self.fail(FailureCode::MissingProof, Some(idx), line_no, offset, None, None, format!("entry {idx}: no inclusion record before it")),
            (Some(_), None) => self.fail(FailureCode::MissingProof, Some(idx), line_no, offset, None, None, format!("entry {idx}: no checkpoint before its inclusion proof")),
            (Some((i, proof, pline)), Some((cp, trusted))) => match merkle::verify_inclusion(&leaf, i, cp.size, &proof, &cp.root) {
                Ok(()) if trusted => self.verified_any = true,
                Ok(()) => {
                    let (n, first) = self.unsigned_selected;
                    self.unsigned_selected = (n + 1, first.or(Some(idx)));
                }
                Err(e) => self.fail(FailureCode::InclusionInvalid, Some(idx), pline, offset, Some(cp.root.to_base64()), None, format!("entry {idx}: inclusion proof on line {pline} does not verify against the checkpoint of size {}: {e}", cp.size)),
            },
        }
    }

    pub(super) fn finish_tlog(&mut self) {
        if self.tlog.len() > MAX_TLOG_PROOF_BYTES {
            return;
        }
        let tp = match TlogProof::parse(&self.tlog) {
            Ok(tp) => tp,
            Err(e) => {
                return self.fail(
                    FailureCode::BadProof,
                    None,
                    1,
                    0,
                    None,
                    None,
                    format!("tlog-proof: {e}"),
                );
            }
        };
        let Some(entry_bytes) = tp.extra.clone() else {
            return self.fail(
                FailureCode::MissingEntry,
                Some(tp.index),
                2,
                0,
                None,
                None,
                format!(
                    "entry {}: the tlog-proof has no extra line carrying the entry",
                    tp.index
                ),
            );
        };
        let cp_line = 4 + tp.proof.len() as u64;
        self.note_line = cp_line;
        self.kind = ExportKind::Entries;
        self.checkpoint(tp.checkpoint.as_bytes(), cp_line, 0);
        self.kind = ExportKind::TlogProof;
        self.inclusion = Some((tp.index, tp.proof.clone(), 3));
        self.line_no = 2;
        self.selected_entry_owned(&entry_bytes);
    }

    pub(super) fn selected_entry_owned(&mut self, line: &[u8]) {
        let kind = self.kind;
        self.kind = ExportKind::Entries;
        self.selected_entry(line);
        self.kind = kind;
    }
}
