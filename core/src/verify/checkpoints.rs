//! Checkpoints: signatures under the pinned keys, roots against the tree
//! read so far, forks, order, and the earlier trusted checkpoint.

use super::*;
use crate::canonical::quote;
use crate::checkpoint::SignedCheckpoint;
#[cfg(feature = "rotation")]
use crate::note::NoteVerification;
use crate::note::hex;

impl<S: EntrySink> StreamVerifier<S> {
    /// FORMAT 5.4 under the pinned keys, for notes whose result does not
    /// depend on where they are read (the callers' condition): a note read
    /// before, byte for byte, gets its earlier result. An export repeating
    /// one note 200,000 times cost an Ed25519 check each, 40 times slower
    /// than a normal export of its size (red-team finding). A few are kept.
    /// Behind the `rotation` feature (the native verifier): the browser's
    /// plain verifier is at its size gate, and this costs it 1.8 KB.
    #[cfg(feature = "rotation")]
    pub(super) fn verify_pinned(&mut self, sc: &SignedCheckpoint) -> NoteVerification {
        if let Some((_, v)) = self.verified_notes.iter().find(|(n, _)| *n == sc.note) {
            return v.clone();
        }
        let v = sc.verify(&self.opts.keys);
        if self.verified_notes.len() == 8 {
            let _ = self.verified_notes.remove(0);
        }
        self.verified_notes.push((sc.note.clone(), v.clone()));
        v
    }

    pub(super) fn end_note(&mut self) {
        let note = std::mem::take(&mut self.note);
        let (line, offset) = (self.note_line, self.note_offset);
        self.checkpoint(&note, line, offset);
    }

    pub(super) fn checkpoint(&mut self, note: &[u8], line: u64, offset: u64) {
        self.checkpoints_total += 1;
        let sc = match SignedCheckpoint::parse(note) {
            Ok(sc) => sc,
            Err(e) => {
                self.fail(
                    FailureCode::BadCheckpoint,
                    None,
                    line,
                    offset,
                    None,
                    None,
                    format!("checkpoint at line {line}: {e}"),
                );
                self.right = None;
                #[cfg(feature = "timestamps")]
                {
                    self.ts_target = None;
                }
                return;
            }
        };
        // FORMAT 16.1: a timestamp record on the next line is for this body.
        #[cfg(feature = "timestamps")]
        {
            self.ts_target = Some((
                sc.checkpoint.size,
                crate::timestamp::imprint(sc.note.text.as_bytes()),
                line,
            ));
        }
        let cp = sc.checkpoint.clone();
        let v = self.check_signatures(&sc, line, offset);
        for b in &v.bad {
            self.fail(FailureCode::BadSignature, None, line, offset, None, None, format!("checkpoint at line {line} (size {}): signature by trusted key {} (key ID {}) does not verify", cp.size, b.name, hex(&b.key_id)));
        }
        let trusted = v.trusted();
        if trusted && self.key.is_none() {
            self.key = v.verified_by.first().cloned();
        }
        if !trusted {
            for u in &v.unknown {
                if self.unknown_keys.insert((u.name.clone(), u.key_id)) {
                    let same_name = self.opts.keys.iter().find(|k| k.name() == u.name);
                    let (code, msg) = match same_name {
                        Some(k) => (
                            NoticeCode::KeyMismatch,
                            format!(
                                "checkpoint at line {line} is signed under the trusted key's name {} by another key (key ID {}, the trusted key's is {}): someone else may be signing as this log",
                                u.name,
                                hex(&u.key_id),
                                k.id_hex()
                            ),
                        ),
                        None => (
                            NoticeCode::UntrustedSignature,
                            format!(
                                "checkpoint at line {line} is signed by {} (key ID {}), which is not a trusted key",
                                u.name,
                                hex(&u.key_id)
                            ),
                        ),
                    };
                    self.notice(code, msg);
                }
            }
        }
        // Origin: every checkpoint names the log's origin.
        match &self.origin {
            Some(o) if *o != cp.origin => {
                let o = o.clone();
                self.fail(
                    FailureCode::OriginMismatch,
                    None,
                    line,
                    offset,
                    Some(o.clone()),
                    Some(cp.origin.clone()),
                    format!(
                        "checkpoint at line {line}: origin is {}, but the log's origin is {}",
                        quote(&cp.origin),
                        quote(&o)
                    ),
                );
            }
            Some(_) => {}
            None => self.origin = Some(cp.origin.clone()),
        }
        let status = if self.kind == ExportKind::Entries {
            self.current = Some((cp.clone(), trusted));
            if trusted { "ok" } else { "untrusted" }
        } else {
            self.check_root(&cp, trusted, line, offset)
        };
        // Fork: two trusted checkpoints of one size with different roots.
        // Compared with the last trusted one, not the last one: an untrusted
        // checkpoint between two of one size must not hide the pair (sizes
        // never decrease in log and range exports, so every trusted pair of
        // one size is consecutive among the trusted ones). An entries
        // export's checkpoints come in any order: there, with the trusted
        // one of that size seen first, wherever it was.
        let sizes = &self.trusted_sizes;
        let earlier = match self.kind {
            ExportKind::Entries => sizes
                .binary_search_by_key(&cp.size, |t| t.0)
                .ok()
                .map(|i| sizes[i]),
            _ => self.last_trusted_cp,
        };
        if let Some((size, root, l)) = earlier
            && size == cp.size
            && root != cp.root
            && trusted
        {
            self.fail(FailureCode::Fork, None, line, offset, Some(root.to_base64()), Some(cp.root.to_base64()), format!("checkpoints at lines {l} and {line} are both signed for size {size} but have different roots {} and {}: proof that the log signed two histories", root.to_base64(), cp.root.to_base64()));
        }
        if let Some(t) = self.opts.trusted.clone()
            && trusted
            && t.size == cp.size
            && t.root != cp.root
        {
            self.fail(FailureCode::Fork, None, line, offset, Some(t.root.to_base64()), Some(cp.root.to_base64()), format!("checkpoint at line {line} is signed for size {} with root {}, but the earlier trusted checkpoint has root {}: proof that the log signed two histories", cp.size, cp.root.to_base64(), t.root.to_base64()));
        }
        if let Some(size) = self.last_cp_size
            && cp.size < size
            && self.kind != ExportKind::Entries
        {
            self.fail(FailureCode::CheckpointOrder, None, line, offset, Some(format!(">= {size}")), Some(cp.size.to_string()), format!("checkpoint at line {line} has size {}, smaller than the previous checkpoint's {size}", cp.size));
        }
        self.last_cp_size = Some(cp.size);
        if trusted {
            self.last_trusted_cp = Some((cp.size, cp.root, line));
            if self.kind == ExportKind::Entries
                && self.trusted_sizes.len() < MAX_LISTED_CHECKPOINTS
                && let Err(i) = self.trusted_sizes.binary_search_by_key(&cp.size, |t| t.0)
            {
                self.trusted_sizes.insert(i, (cp.size, cp.root, line));
            }
        }
        if trusted && status == "ok" && self.tree_size.is_none_or(|(s, _)| cp.size >= s) {
            self.tree_size = Some((cp.size, cp.root));
        }
        #[cfg(feature = "witness")]
        let witnesses = self.witness_checkpoint(&sc, trusted, status == "ok", line, offset);
        #[cfg(not(feature = "witness"))]
        let witnesses = None;
        if self.checkpoints.len() < MAX_LISTED_CHECKPOINTS {
            self.checkpoints.push(CheckpointReport {
                size: cp.size,
                root: cp.root.to_base64(),
                line,
                trusted,
                status,
                witnesses,
            });
        }
    }

    pub(super) fn check_root(
        &mut self,
        cp: &Checkpoint,
        trusted: bool,
        line: u64,
        offset: u64,
    ) -> &'static str {
        let count = self.position;
        let right = self.right.take();
        if self.tree_broken {
            return "unchecked";
        }
        let computed = if cp.size == count {
            self.tree().root()
        } else if cp.size < count {
            self.fail(FailureCode::CheckpointMisplaced, None, line, offset, Some(format!("size {count}")), Some(format!("size {}", cp.size)), format!("checkpoint at line {line} has size {}, but it follows entry {} (a checkpoint comes right after the entry that completes it)", cp.size, count - 1));
            return "unchecked";
        } else if self.kind == ExportKind::Range {
            match right {
                Some((n, hashes)) if n == cp.size => {
                    match self.tree().root_with_right(n, &hashes) {
                        Ok(r) => r,
                        Err(e) => {
                            self.fail(
                                FailureCode::BadProof,
                                None,
                                line,
                                offset,
                                None,
                                None,
                                format!(
                                    "checkpoint at line {line}: right hashes for size {n}: {e}"
                                ),
                            );
                            return "mismatch";
                        }
                    }
                }
                _ => {
                    self.fail(FailureCode::MissingProof, None, line, offset, None, None, format!("checkpoint at line {line} has size {}, beyond the last entry {}, and no right record for that size precedes it", cp.size, count.saturating_sub(1)));
                    return "unchecked";
                }
            }
        } else {
            self.fail(FailureCode::Truncated, Some(count), line, offset, Some(format!("{} entries", cp.size)), Some(format!("{count} entries")), format!("checkpoint at line {line} covers {} entries, but the log has only {count}: entries {count}..{} are missing", cp.size, cp.size - 1));
            return "mismatch";
        };
        if computed != cp.root {
            // The entries not covered by an earlier verified checkpoint.
            let from = self.last_good_size.max(self.start);
            let last = cp.size.saturating_sub(1);
            let kept = self.failures.len();
            self.fail(
                FailureCode::RootMismatch,
                None,
                line,
                offset,
                Some(cp.root.to_base64()),
                Some(computed.to_base64()),
                format!("checkpoint at line {line} (size {}): signed root is {}, but the entries hash to {}: an entry in {from}..{last} was changed, inserted or removed", cp.size, cp.root.to_base64(), computed.to_base64()),
            );
            if let Some(f) = self.failures.get_mut(kept).filter(|_| from < cp.size) {
                f.range = Some(EntryRange { first: from, last });
            }
            return "mismatch";
        }
        if trusted {
            // docs/FORMAT.md 8.5: a trusted checkpoint of size 0 counts (it
            // signs the empty tree); entries after it are unsigned (partial).
            self.verified_any = true;
            // What it signs of this file: the entries read so far, at most
            // (a range's right hashes stand for entries the file does not
            // hold; entries read after it are not covered by it).
            self.last_good_size = self.last_good_size.max(cp.size.min(count));
            "ok"
        } else {
            "untrusted"
        }
    }

    pub(super) fn check_trusted_at_size(&mut self) {
        let Some(t) = &self.opts.trusted else { return };
        if self.trusted_checked || self.tree_broken || self.position != t.size {
            return;
        }
        self.trusted_checked = true;
        let (size, root) = (t.size, t.root);
        let computed = self.tree().root();
        if computed != root {
            let (l, o) = (self.line_no, self.offset);
            self.fail(FailureCode::Fork, None, l, o, Some(root.to_base64()), Some(computed.to_base64()), format!("the first {size} entries hash to {}, but the earlier trusted checkpoint for size {size} says {}: the log was rewritten since then", computed.to_base64(), root.to_base64()));
        }
    }
}
