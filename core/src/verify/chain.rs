//! The hash chain of consecutive entries: seq, prev, genesis, timestamps,
//! and the blame of a broken link.

use super::*;
use crate::canonical::quote;
use crate::entry::{self, GENESIS_TYPE, ParsedEntry, ZERO_PREV};
use crate::hash::leaf_hash;

// A broken link between entries `index - 1` and `index`, not yet blamed.
#[derive(Debug, Clone)]
pub(super) struct Break {
    pub(super) index: u64,
    pub(super) line: u64,
    pub(super) offset: u64,
    // Where entry index - 1 is.
    pub(super) prev_at: (u64, u64),
    pub(super) prev_found: Hash,
    pub(super) prev_hash: Hash,
}

impl<S: EntrySink> StreamVerifier<S> {
    pub(super) fn entry_line(&mut self, line: &[u8]) {
        if self.kind == ExportKind::Entries {
            self.selected_entry(line);
            return;
        }
        let idx = self.position;
        if idx == u64::MAX {
            // A tree holding it would have 2^64 entries (a range record's
            // start near the end of the index space): not counted.
            self.fail_here(
                FailureCode::BadProof,
                None,
                format!(
                    "line {}: this entry's index would be 2^64 - 1 (after the range's start {}): no tree holds it",
                    self.line_no, self.start
                ),
            );
            self.tree_broken = true;
            return;
        }
        let (line_no, offset) = (self.line_no, self.offset);
        while self.prepared.front().is_some_and(|p| p.offset < offset) {
            let _ = self.prepared.pop_front();
        }
        let (leaf, parsed) = match self.prepared.front() {
            None if !self.encoded.is_empty() => match self.encoded_for(offset, line.len()) {
                Some((leaf, f)) => (leaf, Ok(f.with_line(line))),
                None => (leaf_hash(line), entry::parse_entry(line)),
            },
            Some(p) if p.offset == offset && p.len == line.len() => {
                let p = self.prepared.pop_front().expect("front exists");
                (p.leaf, p.fields.map(|f| f.with_line(line)))
            }
            _ => (leaf_hash(line), entry::parse_entry(line)),
        };
        match &parsed {
            Err(e) => {
                self.unparsable(idx, e, line_no, offset);
                // Without prev the link into this entry cannot be judged.
                if let Some(b) = self.pending.take() {
                    self.report_prev_mismatch(&b);
                }
                self.summary(None, line, line_no, offset);
            }
            Ok(p) => {
                self.check_entry(idx, p, line_no, offset);
                self.summary(Some(p), line, line_no, offset);
            }
        }
        // The event's bytes: the line was checked to be UTF-8 when it was
        // parsed, here or on a worker (event_json() would check it again:
        // ~1% of `stele verify`'s samples, on the thread that keeps order).
        let event = parsed.as_ref().ok().map(|p| &p.line[p.event.0..p.event.1]);
        self.seal_entry(idx, event, line_no, offset);
        if !self.tree_broken {
            self.leaves_waiting.push(leaf);
            if self.leaves_waiting.len() >= LEAF_BATCH {
                let _ = self.tree();
            }
        }
        self.last_hash = Some(leaf);
        self.last_at = (line_no, offset);
        self.position += 1;
        self.entries += 1;
        if let Ok(p) = parsed {
            self.last_seq = Some(p.seq);
            if self.first_seq.is_none() {
                self.first_seq = Some(p.seq);
            }
        }
        self.check_trusted_at_size();
    }

    pub(super) fn check_entry(&mut self, idx: u64, p: &ParsedEntry<'_>, line_no: u64, offset: u64) {
        // seq = leaf index; report only where the offset changes, so one
        // deleted entry is one failure.
        let delta = i128::from(p.seq) - i128::from(idx);
        let seq_failed = delta != self.seq_delta;
        if seq_failed {
            self.seq_delta = delta;
            let why = if delta > 0 {
                "entries are missing or reordered before it"
            } else {
                "entries are duplicated, inserted or reordered"
            };
            self.fail(
                FailureCode::SeqMismatch,
                Some(idx),
                line_no,
                offset,
                Some(idx.to_string()),
                Some(p.seq.to_string()),
                format!("entry {idx}: seq is {}, expected {idx} ({why})", p.seq),
            );
        }
        self.genesis_rules(idx, p, line_no, offset);
        if idx > 0 && p.event_type() == Some(KEY_TYPE) {
            self.key_event(idx, p, line_no, offset);
        }
        // The hash chain.
        if idx == 0 {
            if p.prev != ZERO_PREV {
                self.fail(
                    FailureCode::PrevMismatch,
                    Some(0),
                    line_no,
                    offset,
                    Some(ZERO_PREV.to_hex()),
                    Some(p.prev.to_hex()),
                    format!(
                        "entry 0: prev is {}, but entry 0's prev must be 64 zeros",
                        p.prev.short()
                    ),
                );
            }
        } else if let Some(last) = self.last_hash {
            let link_ok = p.prev == last;
            if seq_failed {
                if let Some(b) = self.pending.take() {
                    self.report_prev_mismatch(&b);
                }
            } else if !link_ok {
                if let Some(b) = self.pending.take() {
                    // Links on both sides of entry idx-1 are broken: that entry was changed.
                    self.report_prev_mismatch(&b);
                } else {
                    self.pending = Some(Break {
                        index: idx,
                        line: line_no,
                        offset,
                        prev_at: self.last_at,
                        prev_found: p.prev,
                        prev_hash: last,
                    });
                }
            } else if let Some(b) = self.pending.take() {
                // Entry idx-1 is vouched for by this entry, so entry idx-2 was changed.
                let bad = b.index - 1;
                self.fail(
                    FailureCode::HashMismatch,
                    Some(bad),
                    b.prev_at.0,
                    b.prev_at.1,
                    Some(b.prev_found.to_hex()),
                    Some(b.prev_hash.to_hex()),
                    format!("entry {bad}: hashes to {}, but entry {} records prev {}: entry {bad} was altered", b.prev_hash.short(), b.index, b.prev_found.short()),
                );
            }
        }
        self.ts_order(idx, p, line_no, offset);
    }

    /// Time never goes backwards (full and selected-entries exports alike).
    pub(super) fn ts_order(&mut self, idx: u64, p: &ParsedEntry<'_>, line_no: u64, offset: u64) {
        if let Some(last) = self.last_ts
            && p.ts < last
        {
            self.fail(
                FailureCode::TsDecreasing,
                Some(idx),
                line_no,
                offset,
                Some(format!(">= {last}")),
                Some(p.ts.to_string()),
                format!(
                    "entry {idx}: ts {} is earlier than the previous entry's ts {last}",
                    p.ts
                ),
            );
        }
        self.last_ts = Some(p.ts);
        if self.first_ts.is_none() {
            self.first_ts = Some(p.ts);
        }
    }

    /// An entry line that does not parse, named by its index.
    #[cold]
    #[inline(never)]
    pub(super) fn unparsable(
        &mut self,
        idx: u64,
        e: &entry::EntryError,
        line_no: u64,
        offset: u64,
    ) {
        self.fail(
            e.code(),
            Some(idx),
            line_no,
            offset,
            None,
            None,
            format!("entry {idx}: {e}"),
        );
    }

    #[cold]
    #[inline(never)]
    pub(super) fn report_prev_mismatch(&mut self, b: &Break) {
        self.fail(
            FailureCode::PrevMismatch,
            Some(b.index),
            b.line,
            b.offset,
            Some(b.prev_hash.to_hex()),
            Some(b.prev_found.to_hex()),
            format!(
                "entry {}: prev is {}, but entry {} hashes to {}",
                b.index,
                b.prev_found.short(),
                b.index - 1,
                b.prev_hash.short()
            ),
        );
    }

    /// docs/FORMAT.md 3: entry 0 is the genesis entry, and no other entry
    /// has its type (whole logs, ranges and selected entries alike).
    pub(super) fn genesis_rules(
        &mut self,
        idx: u64,
        p: &ParsedEntry<'_>,
        line_no: u64,
        offset: u64,
    ) {
        if idx == 0 {
            self.genesis(p, line_no, offset);
        } else if p.event_type() == Some(GENESIS_TYPE) {
            self.fail(
                FailureCode::BadGenesis,
                Some(idx),
                line_no,
                offset,
                None,
                Some(GENESIS_TYPE.to_string()),
                format!("entry {idx}: only entry 0 may be a {GENESIS_TYPE} event"),
            );
        }
    }

    pub(super) fn genesis(&mut self, p: &ParsedEntry<'_>, line_no: u64, offset: u64) {
        let (origin, key) = (p.field_string("origin"), p.field_string("key"));
        match (p.event_type(), origin.as_deref(), key.as_deref()) {
            (Some(GENESIS_TYPE), Some(o), Some(k)) if !o.is_empty() => {
                if let Some(cp_origin) = self.origin.clone().filter(|c| c != o) {
                    self.fail(
                        FailureCode::OriginMismatch,
                        Some(0),
                        line_no,
                        offset,
                        Some(cp_origin.clone()),
                        Some(o.to_string()),
                        format!(
                            "entry 0: genesis origin is {}, but the checkpoint's origin is {}",
                            quote(o),
                            quote(&cp_origin)
                        ),
                    );
                }
                self.origin = Some(o.to_string());
                self.genesis_key = Some(k.to_string());
                match VerifierKey::parse(k) {
                    Ok(gk) => {
                        self.genesis_key(gk.clone());
                        if !self.opts.keys.is_empty() && !self.opts.keys.contains(&gk) {
                            self.notice(NoticeCode::GenesisKeyNotPinned, format!("the log's genesis names key {} (key ID {}), which is not among the trusted keys", gk.name(), gk.id_hex()));
                        }
                    }
                    Err(e) => self.fail(
                        FailureCode::BadGenesis,
                        Some(0),
                        line_no,
                        offset,
                        None,
                        None,
                        format!("entry 0: genesis key does not parse: {e}"),
                    ),
                }
            }
            _ => self.fail(
                FailureCode::BadGenesis,
                Some(0),
                line_no,
                offset,
                Some(format!(
                    "{{\"type\":\"{GENESIS_TYPE}\",\"origin\":…,\"key\":…}}"
                )),
                Some(preview(p.event_json().as_bytes())),
                "entry 0: event is not a genesis event with type, origin and key".to_string(),
            ),
        }
    }

    pub(super) fn summary(
        &mut self,
        p: Option<&ParsedEntry<'_>>,
        line: &[u8],
        line_no: u64,
        offset: u64,
    ) {
        self.sink.entry(p, line_no, offset, line.len() as u64);
    }
}
