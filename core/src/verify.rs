//! The streaming verifier: bytes in (any chunking), a [`Report`] out.
//!
//! Memory is O(log n + longest line): it keeps a compact range of the tree,
//! the previous entry's hash and timestamp, and at most one unresolved chain
//! break. It keeps going after a failure and reports every one (up to a cap).

use crate::canonical;
use crate::canonical::quote;
use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::entry::{self, GENESIS_TYPE, MAX_ENTRY_BYTES, ParsedEntry, Timestamp, ZERO_PREV};
use crate::export::{EXPORT_MAGIC, ExportKind, MAX_TLOG_PROOF_BYTES, TLOG_PROOF_MAGIC, TlogProof};
use crate::hash::{Hash, leaf_hash, leaf_hashes};
use crate::merkle::{self, CompactRange};
use crate::note::{MAX_NOTE_BYTES, VerifierKey, hex};
use crate::summary::Summaries;
pub use crate::summary::{EntryColumns, EntrySummary};
use serde::Serialize;
use std::collections::{BTreeSet, VecDeque};

/// Longest line the framing buffers (an entry plus a stray `\r`).
const MAX_LINE: usize = MAX_ENTRY_BYTES + 1;
/// Checkpoints listed individually in a report; more are only counted.
const MAX_LISTED_CHECKPOINTS: usize = 10_000;
/// Leaf hashes waiting to join the tree (see [`CompactRange::extend`]) at most.
const LEAF_BATCH: usize = 4096;

/// What the verifier trusts and how much it reports.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pinned verifier keys; signatures by other keys are ignored.
    pub keys: Vec<VerifierKey>,
    /// An earlier checkpoint the caller trusts (already verified): the log must extend it.
    pub trusted: Option<Checkpoint>,
    /// Failures kept in the report (all are counted).
    pub max_failures: usize,
    /// Keep a summary of each entry for [`StreamVerifier::take_entries`].
    pub collect_entries: bool,
}

impl Options {
    /// Options with these keys, no earlier checkpoint, 1,000 failures kept.
    pub fn new(keys: Vec<VerifierKey>) -> Self {
        Options {
            keys,
            trusted: None,
            max_failures: 1000,
            collect_entries: false,
        }
    }
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No failure, and a checkpoint signed by a pinned key covers the entries.
    Verified,
    /// At least one failure: the file was altered or is not a valid log.
    Failed,
    /// No failure, but nothing is signed by a pinned key.
    Unverified,
}

/// One failure: a stable code, where, and what was expected and found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Stable code (docs/FORMAT.md lists them).
    pub code: &'static str,
    /// The entry index (leaf index), when the failure concerns an entry.
    pub entry: Option<u64>,
    /// 1-based line number in the file.
    pub line: u64,
    /// Byte offset of the start of that line.
    pub offset: u64,
    /// What was expected, when that is a value.
    pub expected: Option<String>,
    /// What was found.
    pub found: Option<String>,
    /// A sentence naming all of the above.
    pub message: String,
}

/// Something the auditor should know that is not a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// Stable code.
    pub code: &'static str,
    /// What it means.
    pub message: String,
}

/// A checkpoint met in the file and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointReport {
    /// Tree size.
    pub size: u64,
    /// Root hash (base64).
    pub root: String,
    /// Line of the `checkpoint` record.
    pub line: u64,
    /// Signed by a pinned key.
    pub trusted: bool,
    /// `ok`, `mismatch`, `untrusted` or `unchecked`.
    pub status: &'static str,
}

/// The verification report. Field names are a contract (CLI `--json`, wasm, web).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// What kind of file this was.
    pub kind: &'static str,
    /// The log's origin, from its genesis entry or checkpoints.
    pub origin: Option<String>,
    /// Key ID (hex) of the pinned key that signed the checkpoints.
    pub key_id: Option<String>,
    /// Name of that key.
    pub key_name: Option<String>,
    /// Entries read.
    pub entries: u64,
    /// First entry's seq.
    pub first_seq: Option<u64>,
    /// Last entry's seq.
    pub last_seq: Option<u64>,
    /// First entry's timestamp.
    pub first_ts: Option<String>,
    /// Last entry's timestamp.
    pub last_ts: Option<String>,
    /// Size of the largest checkpoint verified with a pinned key.
    pub tree_size: Option<u64>,
    /// Its root (base64).
    pub root: Option<String>,
    /// Checkpoints met (the first 10,000).
    pub checkpoints: Vec<CheckpointReport>,
    /// Checkpoints met in all.
    pub checkpoints_total: u64,
    /// Failures kept (see `failures_total`).
    pub failures: Vec<Failure>,
    /// Failures found in all.
    pub failures_total: u64,
    /// Notices.
    pub notices: Vec<Notice>,
    /// Bytes read.
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first line.
    Start,
    /// Reading records.
    Records,
    /// Inside a checkpoint note: text lines.
    NoteText,
    /// Inside a checkpoint note: signature lines.
    NoteSigs,
    /// Buffering a whole tlog-proof.
    TlogProof,
}

// A broken link between entries `index - 1` and `index`, not yet blamed.
#[derive(Debug, Clone)]
struct Break {
    index: u64,
    line: u64,
    offset: u64,
    // Where entry index - 1 is.
    prev_at: (u64, u64),
    prev_found: Hash,
    prev_hash: Hash,
}

/// The streaming verifier.
#[derive(Debug)]
pub struct StreamVerifier {
    opts: Options,
    state: State,
    kind: ExportKind,
    header_seen: bool,
    // framing
    partial: Vec<u8>,
    overlong: Option<usize>,
    line_no: u64,
    offset: u64,
    // note being collected
    note: Vec<u8>,
    note_line: u64,
    note_offset: u64,
    // tree and chain
    start: u64,
    position: u64,
    tree: CompactRange,
    tree_broken: bool,
    /// Leaves read since `tree` was last brought up to date: every read of
    /// `tree` goes through [`StreamVerifier::tree`], which adds them first.
    leaves_waiting: Vec<Hash>,
    last_hash: Option<Hash>,
    last_at: (u64, u64),
    last_ts: Option<Timestamp>,
    seq_delta: i128,
    pending: Option<Break>,
    last_index_in_export: Option<u64>,
    // checkpoints
    right: Option<(u64, Vec<Hash>)>,
    inclusion: Option<(u64, Vec<Hash>, u64)>,
    current: Option<(Checkpoint, bool)>,
    last_cp: Option<(u64, Hash, bool, u64)>,
    last_good_size: u64,
    verified_any: bool,
    trusted_checked: bool,
    unknown_keys: BTreeSet<(String, [u8; 4])>,
    // report
    origin: Option<String>,
    genesis_key: Option<String>,
    key: Option<VerifierKey>,
    entries: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    first_ts: Option<Timestamp>,
    tree_size: Option<(u64, Hash)>,
    checkpoints: Vec<CheckpointReport>,
    checkpoints_total: u64,
    failures: Vec<Failure>,
    failures_total: u64,
    notices: Vec<Notice>,
    summaries: Summaries,
    tlog: Vec<u8>,
    prepared: VecDeque<Prepared>,
    /// Prepared lines in [`Prepared::encode_all`]'s form, and the next record.
    encoded: Vec<u8>,
    encoded_at: usize,
}

impl StreamVerifier {
    /// A verifier with the given options.
    pub fn new(opts: Options) -> Self {
        StreamVerifier {
            opts,
            state: State::Start,
            kind: ExportKind::Log,
            header_seen: false,
            partial: Vec::new(),
            overlong: None,
            line_no: 0,
            offset: 0,
            note: Vec::new(),
            note_line: 0,
            note_offset: 0,
            start: 0,
            position: 0,
            tree: CompactRange::new(),
            tree_broken: false,
            leaves_waiting: Vec::new(),
            last_hash: None,
            last_at: (0, 0),
            last_ts: None,
            seq_delta: 0,
            pending: None,
            last_index_in_export: None,
            right: None,
            inclusion: None,
            current: None,
            last_cp: None,
            last_good_size: 0,
            verified_any: false,
            trusted_checked: false,
            unknown_keys: BTreeSet::new(),
            origin: None,
            genesis_key: None,
            key: None,
            entries: 0,
            first_seq: None,
            last_seq: None,
            first_ts: None,
            tree_size: None,
            checkpoints: Vec::new(),
            checkpoints_total: 0,
            failures: Vec::new(),
            failures_total: 0,
            notices: Vec::new(),
            summaries: Summaries::default(),
            tlog: Vec::new(),
            prepared: VecDeque::new(),
            encoded: Vec::new(),
            encoded_at: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.offset + self.partial.len() as u64 + self.overlong.unwrap_or(0) as u64
    }

    /// Failures found so far.
    pub fn failures_so_far(&self) -> u64 {
        self.failures_total
    }

    /// Feeds the next bytes. Any chunking gives the same result.
    pub fn push(&mut self, mut chunk: &[u8]) {
        if self.state == State::TlogProof {
            self.push_tlog(chunk);
            return;
        }
        while !chunk.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                Some(i) => {
                    let (line, rest) = (&chunk[..i], &chunk[i + 1..]);
                    chunk = rest;
                    if let Some(n) = self.overlong.take() {
                        self.overlong_line(n + line.len());
                    } else if self.partial.is_empty() {
                        if line.len() > MAX_LINE {
                            // Same outcome as when the line arrives in pieces.
                            self.overlong_line(line.len());
                        } else {
                            self.line(line);
                        }
                    } else {
                        if self.partial.len() + line.len() > MAX_LINE {
                            let n = self.partial.len() + line.len();
                            self.partial.clear();
                            self.overlong_line(n);
                        } else {
                            let mut buf = std::mem::take(&mut self.partial);
                            buf.extend_from_slice(line);
                            self.line(&buf);
                            buf.clear();
                            self.partial = buf;
                        }
                    }
                    if self.state == State::TlogProof {
                        self.push_tlog(chunk);
                        return;
                    }
                }
                None => {
                    if let Some(n) = self.overlong.as_mut() {
                        *n += chunk.len();
                    } else if self.partial.len() + chunk.len() > MAX_LINE {
                        self.overlong = Some(self.partial.len() + chunk.len());
                        self.partial.clear();
                    } else {
                        self.partial.extend_from_slice(chunk);
                    }
                    return;
                }
            }
        }
    }

    /// Feeds a block whose entry lines were already hashed and parsed by
    /// [`prepare`] (possibly on other threads). The result is exactly that
    /// of [`StreamVerifier::push`]; the work per line is just not redone.
    pub fn push_prepared(&mut self, block: &[u8], prepared: Vec<Prepared>) {
        self.prepared = prepared.into();
        self.push(block);
        self.prepared.clear();
    }

    /// [`StreamVerifier::push_prepared`] with the prepared lines in
    /// [`Prepared::encode_all`]'s form, each record read when its line is
    /// reached (no list of [`Prepared`] is built). A record is used only at
    /// its exact offset and length; one that does not decode ends the use
    /// of the rest, whose lines are then hashed and parsed here.
    pub fn push_encoded(&mut self, block: &[u8], prepared: Vec<u8>) {
        self.encoded = prepared;
        self.encoded_at = 0;
        self.push(block);
        self.encoded = Vec::new();
    }

    /// The leaf hash and fields of the line at `offset` of `len` bytes, if
    /// [`StreamVerifier::push_encoded`] was given them.
    fn encoded_for(&mut self, offset: u64, len: usize) -> Option<(Hash, entry::EntryFields)> {
        loop {
            let r = self
                .encoded
                .get(self.encoded_at..self.encoded_at + Prepared::REC)?;
            let (at, n, leaf, fields) = Prepared::split_record(r);
            if at < offset {
                self.encoded_at += Prepared::REC;
                continue;
            }
            if at > offset || n != len {
                return None;
            }
            let Some(f) = entry::EntryFields::decode(fields, n) else {
                self.encoded_at = self.encoded.len();
                return None;
            };
            self.encoded_at += Prepared::REC;
            return Some((leaf, f));
        }
    }

    /// Summaries of the entries read since the last call (with `collect_entries`).
    pub fn take_entries(&mut self) -> Vec<EntrySummary> {
        self.summaries.take_entries()
    }

    /// The same summaries in columns, with display values interned per
    /// column across calls (with `collect_entries`).
    pub fn take_columns(&mut self) -> EntryColumns {
        self.summaries.take_columns()
    }

    // A failure has this many facts; naming them at each call reads better than a builder.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    #[inline(never)]
    fn fail(
        &mut self,
        code: &'static str,
        entry: Option<u64>,
        line: u64,
        offset: u64,
        expected: Option<String>,
        found: Option<String>,
        message: String,
    ) {
        self.failures_total += 1;
        if self.failures.len() < self.opts.max_failures {
            self.failures.push(Failure {
                code,
                entry,
                line,
                offset,
                expected,
                found,
                message,
            });
        }
    }

    // A failure about the current line.
    #[cold]
    #[inline(never)]
    fn fail_here(&mut self, code: &'static str, entry: Option<u64>, message: String) {
        let (l, o) = (self.line_no, self.offset);
        self.fail(code, entry, l, o, None, None, message);
    }

    #[cold]
    #[inline(never)]
    fn notice(&mut self, code: &'static str, message: String) {
        if self.notices.len() < 100 && !self.notices.iter().any(|n| n.message == message) {
            self.notices.push(Notice { code, message });
        }
    }

    #[cold]
    #[inline(never)]
    fn overlong_line(&mut self, len: usize) {
        self.line_no += 1;
        let idx = self.position;
        self.fail_here(
            "line_too_long",
            Some(idx),
            format!(
                "entry {idx}: line {} is {len} bytes, more than the limit of {MAX_ENTRY_BYTES}",
                self.line_no
            ),
        );
        // The entry's hash is lost, so later roots cannot be checked.
        self.tree_broken = true;
        self.last_hash = None;
        self.position += 1;
        self.entries += 1;
        self.offset += len as u64 + 1;
        if matches!(self.state, State::NoteText | State::NoteSigs) {
            self.state = State::Records;
        }
    }

    fn line(&mut self, line: &[u8]) {
        self.line_no += 1;
        self.dispatch(line);
        self.offset += line.len() as u64 + 1;
    }

    fn dispatch(&mut self, line: &[u8]) {
        match self.state {
            State::Start => {
                self.state = State::Records;
                if let Some(rest) = line.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
                    self.fail_here("bom", None, "line 1: the file starts with a byte order mark (U+FEFF); Stele files have none".into());
                    self.state = State::Start;
                    return self.dispatch(rest);
                }
                if let Some(rest) = line.strip_prefix(EXPORT_MAGIC.as_bytes()) {
                    self.header_seen = true;
                    match rest {
                        b" log" => self.kind = ExportKind::Log,
                        b" range" => self.kind = ExportKind::Range,
                        b" entries" => self.kind = ExportKind::Entries,
                        _ => self.fail_here(
                            "bad_header",
                            None,
                            format!(
                                "line 1: unknown export kind {} (expected log, range or entries)",
                                quote(String::from_utf8_lossy(rest).trim())
                            ),
                        ),
                    }
                    return;
                }
                if line == TLOG_PROOF_MAGIC.as_bytes() {
                    self.kind = ExportKind::TlogProof;
                    self.state = State::TlogProof;
                    self.tlog.extend_from_slice(line);
                    self.tlog.push(b'\n');
                    return;
                }
                if line.first() == Some(&b'{') {
                    self.notice("no_header", "the file has no export header; read as a whole log without checkpoints unless it has checkpoint records".into());
                    self.record(line);
                    return;
                }
                self.fail_here("bad_header", None, format!("line 1: expected \"{EXPORT_MAGIC} log|range|entries\" or an entry, found {}", quote(&preview(line))));
            }
            State::Records => self.record(line),
            State::NoteText => {
                // A note whose signatures were cut off must not swallow the
                // entries after it: an entry line ends the note (a checkpoint
                // body line never starts with '{' in an export).
                if line.first() == Some(&b'{') || line == b"checkpoint" {
                    self.end_note();
                    self.state = State::Records;
                    return self.record(line);
                }
                self.note_push(line);
                if line.is_empty() {
                    self.state = State::NoteSigs;
                }
            }
            State::NoteSigs => {
                if line.starts_with("\u{2014} ".as_bytes()) {
                    self.note_push(line);
                } else {
                    self.end_note();
                    self.state = State::Records;
                    self.record(line);
                }
            }
            State::TlogProof => {}
        }
    }

    fn note_push(&mut self, line: &[u8]) {
        if self.note.len() + line.len() < MAX_NOTE_BYTES + 2 {
            self.note.extend_from_slice(line);
            self.note.push(b'\n');
        } else {
            // Too large: make sure the note is refused, not silently shortened.
            self.note.resize(MAX_NOTE_BYTES + 2, b'\n');
        }
    }

    fn record(&mut self, line: &[u8]) {
        match line.first() {
            Some(b'{') | Some(0xEF) => self.entry_line(line),
            _ if line == b"checkpoint" => {
                self.state = State::NoteText;
                self.note.clear();
                self.note_line = self.line_no;
                self.note_offset = self.offset;
            }
            _ if line.starts_with(b"range ") => self.range_line(line),
            _ if line.starts_with(b"right ") => {
                if self.kind != ExportKind::Range {
                    let msg = format!(
                        "line {}: right records belong only in range exports",
                        self.line_no
                    );
                    return self.fail_here("unknown_record", None, msg);
                }
                if self.right.is_some() {
                    let msg = format!(
                        "line {}: a second right record before one checkpoint",
                        self.line_no
                    );
                    self.fail_here("bad_proof", None, msg);
                }
                self.right = self.hashes_line(line, "right");
            }
            _ if line.starts_with(b"inclusion ") => {
                if self.kind != ExportKind::Entries {
                    self.fail_here(
                        "unknown_record",
                        None,
                        format!(
                            "line {}: inclusion records belong only in entries exports",
                            self.line_no
                        ),
                    );
                    return;
                }
                if self.inclusion.is_some() {
                    let msg = format!(
                        "line {}: a second inclusion record before one entry",
                        self.line_no
                    );
                    self.fail_here("bad_proof", None, msg);
                }
                self.inclusion = self
                    .hashes_line(line, "inclusion")
                    .map(|(i, h)| (i, h, self.line_no));
            }
            _ => {
                let msg = if line.is_empty() {
                    format!("line {}: unexpected empty line", self.line_no)
                } else {
                    format!(
                        "line {}: not an entry or a record: {}",
                        self.line_no,
                        quote(&preview(line))
                    )
                };
                self.fail_here("unknown_record", None, msg);
            }
        }
    }

    fn hashes_line(&mut self, line: &[u8], word: &str) -> Option<(u64, Vec<Hash>)> {
        let text = std::str::from_utf8(line).ok();
        let parsed = text.and_then(|t| {
            let mut parts = t.split(' ');
            parts.next();
            let n = parts
                .next()
                .filter(|n| is_decimal(n))?
                .parse::<u64>()
                .ok()?;
            let hashes: Option<Vec<Hash>> = parts.map(Hash::from_base64).collect();
            Some((n, hashes?))
        });
        if parsed.is_none() {
            self.fail_here(
                "bad_proof",
                None,
                format!(
                    "line {}: malformed {word} record (expected \"{word} N\" and base64 hashes)",
                    self.line_no
                ),
            );
        }
        parsed
    }

    fn range_line(&mut self, line: &[u8]) {
        if self.kind != ExportKind::Range || self.entries > 0 || self.tree().size() > 0 {
            self.fail_here(
                "unknown_record",
                None,
                format!(
                    "line {}: a range record belongs only at the start of a range export",
                    self.line_no
                ),
            );
            return;
        }
        let Some((start, left)) = self.hashes_line(line, "range") else {
            self.tree_broken = true;
            return;
        };
        match CompactRange::from_left_hashes(start, &left) {
            Ok(r) => {
                self.tree = r;
                self.start = start;
                self.position = start;
            }
            Err(e) => {
                self.fail_here(
                    "bad_proof",
                    None,
                    format!("line {}: range record for start {start}: {e}", self.line_no),
                );
                self.tree_broken = true;
                self.start = start;
                self.position = start;
            }
        }
    }

    fn entry_line(&mut self, line: &[u8]) {
        if self.kind == ExportKind::Entries {
            self.selected_entry(line);
            return;
        }
        let idx = self.position;
        let (line_no, offset) = (self.line_no, self.offset);
        while self.prepared.front().is_some_and(|p| p.offset < offset) {
            self.prepared.pop_front();
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
                let code = e.code();
                self.fail(
                    code,
                    Some(idx),
                    line_no,
                    offset,
                    None,
                    None,
                    format!("entry {idx}: {e}"),
                );
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
        if !self.tree_broken {
            self.leaves_waiting.push(leaf);
            if self.leaves_waiting.len() >= LEAF_BATCH {
                self.tree();
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

    fn check_entry(&mut self, idx: u64, p: &ParsedEntry<'_>, line_no: u64, offset: u64) {
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
                "seq_mismatch",
                Some(idx),
                line_no,
                offset,
                Some(idx.to_string()),
                Some(p.seq.to_string()),
                format!("entry {idx}: seq is {}, expected {idx} ({why})", p.seq),
            );
        }
        // Genesis rules.
        let ty = p.event_type();
        if idx == 0 {
            self.genesis(p, line_no, offset);
        } else if ty == Some(GENESIS_TYPE) {
            self.fail(
                "bad_genesis",
                Some(idx),
                line_no,
                offset,
                None,
                None,
                format!("entry {idx}: only entry 0 may be a {GENESIS_TYPE} event"),
            );
        }
        // The hash chain.
        if idx == 0 {
            if p.prev != ZERO_PREV {
                self.fail(
                    "prev_mismatch",
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
                    "hash_mismatch",
                    Some(bad),
                    b.prev_at.0,
                    b.prev_at.1,
                    Some(b.prev_found.to_hex()),
                    Some(b.prev_hash.to_hex()),
                    format!("entry {bad}: hashes to {}, but entry {} records prev {}: entry {bad} was altered", b.prev_hash.short(), b.index, b.prev_found.short()),
                );
            }
        }
        // Time never goes backwards.
        if let Some(last) = self.last_ts {
            if p.ts < last {
                self.fail(
                    "ts_decreasing",
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
        }
        self.last_ts = Some(p.ts);
        if self.first_ts.is_none() {
            self.first_ts = Some(p.ts);
        }
    }

    #[cold]
    #[inline(never)]
    fn report_prev_mismatch(&mut self, b: &Break) {
        self.fail(
            "prev_mismatch",
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

    fn genesis(&mut self, p: &ParsedEntry<'_>, line_no: u64, offset: u64) {
        let (origin, key) = (p.field_string("origin"), p.field_string("key"));
        match (p.event_type(), origin.as_deref(), key.as_deref()) {
            (Some(GENESIS_TYPE), Some(o), Some(k)) if !o.is_empty() => {
                if let Some(cp_origin) = self.origin.clone().filter(|c| c != o) {
                    self.fail(
                        "origin_mismatch",
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
                        if !self.opts.keys.is_empty() && !self.opts.keys.contains(&gk) {
                            self.notice("genesis_key_not_pinned", format!("the log's genesis names key {} (key ID {}), which is not among the trusted keys", gk.name(), gk.id_hex()));
                        }
                    }
                    Err(e) => self.fail(
                        "bad_genesis",
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
                "bad_genesis",
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

    fn summary(&mut self, p: Option<&ParsedEntry<'_>>, line: &[u8], line_no: u64, offset: u64) {
        if self.opts.collect_entries {
            self.summaries.push(p, line_no, offset, line.len() as u64);
        }
    }

    fn selected_entry(&mut self, line: &[u8]) {
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
            Err(e) => {
                let code = e.code();
                self.fail(
                    code,
                    Some(idx),
                    line_no,
                    offset,
                    None,
                    None,
                    format!("entry {idx}: {e}"),
                );
            }
            Ok(p) => {
                if p.seq != idx {
                    self.fail(
                        "seq_mismatch",
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
                if idx == 0 {
                    self.genesis(p, line_no, offset);
                }
                if let Some(last) = self.last_index_in_export {
                    if idx <= last {
                        self.fail("entries_out_of_order", Some(idx), line_no, offset, Some(format!("> {last}")), Some(idx.to_string()), format!("entry {idx}: comes after entry {last}; selected entries must be in increasing order"));
                    } else if idx == last + 1 {
                        if let Some(h) = self.last_hash {
                            if h != p.prev {
                                self.fail(
                                    "prev_mismatch",
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
                    }
                    if let Some(t) = self.last_ts {
                        if p.ts < t {
                            self.fail("ts_decreasing", Some(idx), line_no, offset, Some(format!(">= {t}")), Some(p.ts.to_string()), format!("entry {idx}: ts {} is earlier than the previous entry's ts {t}", p.ts));
                        }
                    }
                }
                self.last_ts = Some(p.ts);
                if self.first_ts.is_none() {
                    self.first_ts = Some(p.ts);
                }
                self.last_seq = Some(p.seq);
                if self.first_seq.is_none() {
                    self.first_seq = Some(p.seq);
                }
            }
        }
        self.summary(parsed.as_ref().ok(), line, line_no, offset);
        self.entries += 1;
        self.last_hash = Some(leaf);
        self.last_index_in_export = Some(idx);
        // The inclusion proof against the latest checkpoint.
        match (incl, self.current.clone()) {
            (None, _) => self.fail("missing_proof", Some(idx), line_no, offset, None, None, format!("entry {idx}: no inclusion record before it")),
            (Some(_), None) => self.fail("missing_proof", Some(idx), line_no, offset, None, None, format!("entry {idx}: no checkpoint before its inclusion proof")),
            (Some((i, proof, pline)), Some((cp, trusted))) => match merkle::verify_inclusion(&leaf, i, cp.size, &proof, &cp.root) {
                Ok(()) => {
                    if trusted {
                        self.verified_any = true;
                    }
                }
                Err(e) => self.fail("inclusion_invalid", Some(idx), pline, offset, Some(cp.root.to_base64()), None, format!("entry {idx}: inclusion proof on line {pline} does not verify against the checkpoint of size {}: {e}", cp.size)),
            },
        }
    }

    fn end_note(&mut self) {
        let note = std::mem::take(&mut self.note);
        let (line, offset) = (self.note_line, self.note_offset);
        self.checkpoint(&note, line, offset);
    }

    fn checkpoint(&mut self, note: &[u8], line: u64, offset: u64) {
        self.checkpoints_total += 1;
        let sc = match SignedCheckpoint::parse(note) {
            Ok(sc) => sc,
            Err(e) => {
                self.fail(
                    "bad_checkpoint",
                    None,
                    line,
                    offset,
                    None,
                    None,
                    format!("checkpoint at line {line}: {e}"),
                );
                self.right = None;
                return;
            }
        };
        let cp = sc.checkpoint.clone();
        let v = sc.verify(&self.opts.keys);
        for b in &v.bad {
            self.fail("bad_signature", None, line, offset, None, None, format!("checkpoint at line {line} (size {}): signature by trusted key {} (key ID {}) does not verify", cp.size, b.name, hex(&b.key_id)));
        }
        let trusted = !v.verified_by.is_empty() && v.bad.is_empty();
        if trusted && self.key.is_none() {
            self.key = v.verified_by.first().cloned();
        }
        if !trusted {
            for u in &v.unknown {
                if self.unknown_keys.insert((u.name.clone(), u.key_id)) {
                    let same_name = self.opts.keys.iter().any(|k| k.name() == u.name);
                    let (code, msg) = if same_name {
                        (
                            "key_mismatch",
                            format!(
                                "checkpoint at line {line} is signed by a key named {} with key ID {}, which is not the trusted key of that name",
                                u.name,
                                hex(&u.key_id)
                            ),
                        )
                    } else {
                        (
                            "untrusted_signature",
                            format!(
                                "checkpoint at line {line} is signed by {} (key ID {}), which is not a trusted key",
                                u.name,
                                hex(&u.key_id)
                            ),
                        )
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
                    "origin_mismatch",
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
        if let Some((size, root, was_trusted, l)) = self.last_cp {
            if size == cp.size && root != cp.root && trusted && was_trusted {
                self.fail("fork", None, line, offset, Some(root.to_base64()), Some(cp.root.to_base64()), format!("checkpoints at lines {l} and {line} are both signed for size {size} but have different roots {} and {}: proof that the log signed two histories", root.short(), cp.root.short()));
            }
        }
        if let Some(t) = self.opts.trusted.clone() {
            if trusted && t.size == cp.size && t.root != cp.root {
                self.fail("fork", None, line, offset, Some(t.root.to_base64()), Some(cp.root.to_base64()), format!("checkpoint at line {line} is signed for size {} with root {}, but the earlier trusted checkpoint has root {}: proof that the log signed two histories", cp.size, cp.root.short(), t.root.short()));
            }
        }
        if let Some((size, _, _, _)) = self.last_cp {
            if cp.size < size && self.kind != ExportKind::Entries {
                self.fail("checkpoint_order", None, line, offset, Some(format!(">= {size}")), Some(cp.size.to_string()), format!("checkpoint at line {line} has size {}, smaller than the previous checkpoint's {size}", cp.size));
            }
        }
        self.last_cp = Some((cp.size, cp.root, trusted, line));
        if trusted && status == "ok" && self.tree_size.is_none_or(|(s, _)| cp.size >= s) {
            self.tree_size = Some((cp.size, cp.root));
        }
        if self.checkpoints.len() < MAX_LISTED_CHECKPOINTS {
            self.checkpoints.push(CheckpointReport {
                size: cp.size,
                root: cp.root.to_base64(),
                line,
                trusted,
                status,
            });
        }
    }

    fn check_root(
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
            self.fail("checkpoint_misplaced", None, line, offset, Some(format!("size {count}")), Some(format!("size {}", cp.size)), format!("checkpoint at line {line} has size {}, but it follows entry {} (a checkpoint comes right after the entry that completes it)", cp.size, count - 1));
            return "unchecked";
        } else if self.kind == ExportKind::Range {
            match right {
                Some((n, hashes)) if n == cp.size => {
                    match self.tree().root_with_right(n, &hashes) {
                        Ok(r) => r,
                        Err(e) => {
                            self.fail(
                                "bad_proof",
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
                    self.fail("missing_proof", None, line, offset, None, None, format!("checkpoint at line {line} has size {}, beyond the last entry {}, and no right record for that size precedes it", cp.size, count.saturating_sub(1)));
                    return "unchecked";
                }
            }
        } else {
            self.fail("truncated", Some(count), line, offset, Some(format!("{} entries", cp.size)), Some(format!("{count} entries")), format!("checkpoint at line {line} covers {} entries, but the log has only {count}: entries {count}..{} are missing", cp.size, cp.size - 1));
            return "mismatch";
        };
        if computed != cp.root {
            let from = self.last_good_size.max(self.start);
            self.fail(
                "root_mismatch",
                Some(from),
                line,
                offset,
                Some(cp.root.to_base64()),
                Some(computed.to_base64()),
                format!("checkpoint at line {line} (size {}): signed root is {}, but the entries hash to {}: an entry in {from}..{} was changed, inserted or removed", cp.size, cp.root.short(), computed.short(), cp.size.saturating_sub(1)),
            );
            return "mismatch";
        }
        if trusted {
            // The empty tree vouches for nothing.
            self.verified_any |= cp.size > 0;
            if cp.size <= count {
                self.last_good_size = self.last_good_size.max(cp.size);
            }
            "ok"
        } else {
            "untrusted"
        }
    }

    /// The tree of every entry read so far.
    fn tree(&mut self) -> &CompactRange {
        if !self.leaves_waiting.is_empty() {
            self.tree.extend(&self.leaves_waiting);
            self.leaves_waiting.clear();
        }
        &self.tree
    }

    fn check_trusted_at_size(&mut self) {
        let Some(t) = &self.opts.trusted else { return };
        if self.trusted_checked || self.tree_broken || self.position != t.size {
            return;
        }
        self.trusted_checked = true;
        let (size, root) = (t.size, t.root);
        let computed = self.tree().root();
        if computed != root {
            let (l, o) = (self.line_no, self.offset);
            self.fail("fork", None, l, o, Some(root.to_base64()), Some(computed.to_base64()), format!("the first {size} entries hash to {}, but the earlier trusted checkpoint for size {size} says {}: the log was rewritten since then", computed.short(), root.short()));
        }
    }

    fn push_tlog(&mut self, chunk: &[u8]) {
        if self.tlog.len() + chunk.len() > MAX_TLOG_PROOF_BYTES {
            if self.tlog.len() <= MAX_TLOG_PROOF_BYTES {
                self.fail(
                    "bad_proof",
                    None,
                    1,
                    0,
                    None,
                    None,
                    format!("tlog-proof is larger than the limit of {MAX_TLOG_PROOF_BYTES} bytes"),
                );
            }
            self.tlog.resize(MAX_TLOG_PROOF_BYTES + 1, 0);
            return;
        }
        self.tlog.extend_from_slice(chunk);
        self.offset += chunk.len() as u64;
    }

    fn finish_tlog(&mut self) {
        if self.tlog.len() > MAX_TLOG_PROOF_BYTES {
            return;
        }
        let tp = match TlogProof::parse(&self.tlog) {
            Ok(tp) => tp,
            Err(e) => {
                return self.fail(
                    "bad_proof",
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
                "missing_entry",
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

    fn selected_entry_owned(&mut self, line: &[u8]) {
        let kind = self.kind;
        self.kind = ExportKind::Entries;
        self.selected_entry(line);
        self.kind = kind;
    }

    /// Ends the stream and returns the report.
    pub fn finish(mut self) -> Report {
        if self.state == State::TlogProof {
            self.finish_tlog();
        } else {
            if let Some(n) = self.overlong.take() {
                self.fail_here(
                    "trailing_data",
                    None,
                    format!(
                        "{n} bytes after the last newline (the file ends in an incomplete line)"
                    ),
                );
            } else if !self.partial.is_empty() {
                let n = self.partial.len();
                let (l, o) = (self.line_no + 1, self.offset);
                let entry = (self.partial.first() == Some(&b'{')).then_some(self.position);
                self.fail("trailing_data", entry, l, o, None, None, format!("line {l}: {n} bytes after the last newline (the file ends in an incomplete line: {})", quote(&preview(&self.partial))));
            }
            if matches!(self.state, State::NoteText | State::NoteSigs) {
                self.end_note();
            }
            if let Some(b) = self.pending.take() {
                // The break is between the last two entries: nothing later
                // vouches for either. A changed event is the likelier attack.
                let bad = b.index - 1;
                self.fail(
                    "hash_mismatch",
                    Some(bad),
                    b.prev_at.0,
                    b.prev_at.1,
                    Some(b.prev_found.to_hex()),
                    Some(b.prev_hash.to_hex()),
                    format!("entry {bad}: hashes to {}, but entry {} records prev {}: entry {bad} was altered, or entry {}'s prev was", b.prev_hash.short(), b.index, b.prev_found.short(), b.index),
                );
            }
            if let Some((n, _)) = self.right.take() {
                let (l, o) = (self.line_no, self.offset);
                self.fail(
                    "bad_proof",
                    None,
                    l,
                    o,
                    None,
                    None,
                    format!("a right record for size {n} is not followed by a checkpoint"),
                );
            }
            if self.inclusion.is_some() {
                let (l, o) = (self.line_no, self.offset);
                self.fail(
                    "missing_entry",
                    None,
                    l,
                    o,
                    None,
                    None,
                    "the file ends after an inclusion record, without its entry".into(),
                );
            }
            if self.state == State::Start {
                self.fail(
                    "bad_header",
                    None,
                    0,
                    0,
                    None,
                    None,
                    "the file is empty".into(),
                );
            }
        }
        self.final_checks();
        let verdict = if self.failures_total > 0 {
            Verdict::Failed
        } else if self.verified_any {
            Verdict::Verified
        } else {
            Verdict::Unverified
        };
        Report {
            verdict,
            kind: self.kind.as_str(),
            origin: self.origin,
            key_id: self.key.as_ref().map(VerifierKey::id_hex),
            key_name: self.key.as_ref().map(|k| k.name().to_string()),
            entries: self.entries,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            first_ts: self.first_ts.map(|t| t.to_string()),
            last_ts: self.last_ts.map(|t| t.to_string()),
            tree_size: self.tree_size.map(|(s, _)| s),
            root: self.tree_size.map(|(_, r)| r.to_base64()),
            checkpoints: self.checkpoints,
            checkpoints_total: self.checkpoints_total,
            failures: self.failures,
            failures_total: self.failures_total,
            notices: self.notices,
            bytes: self.offset + self.partial.len() as u64,
        }
    }

    fn final_checks(&mut self) {
        let (l, o) = (self.line_no, self.offset);
        if let Some(t) = self.opts.trusted.clone() {
            if let Some(o2) = &self.origin {
                if *o2 != t.origin {
                    let o2 = o2.clone();
                    self.fail("origin_mismatch", None, l, o, Some(t.origin.clone()), Some(o2.clone()), format!("the earlier trusted checkpoint is for origin {}, but this log's origin is {}", quote(&t.origin), quote(&o2)));
                }
            }
            let largest = match self.kind {
                ExportKind::Log => Some(self.position),
                _ => self.last_cp.map(|(s, _, _, _)| s),
            };
            match largest {
                Some(n) if n < t.size => self.fail("rollback", Some(n), l, o, Some(format!("at least {} entries", t.size)), Some(format!("{n} entries")), format!("the log has {n} entries, but an earlier trusted checkpoint covers {}: entries were removed (rollback)", t.size)),
                _ if !self.trusted_checked && !self.tree_broken && self.kind != ExportKind::Log => self.notice("trusted_checkpoint_unchecked", format!("the earlier trusted checkpoint (size {}) could not be compared: this partial export does not reach that size", t.size)),
                _ => {}
            }
        }
        if self.kind == ExportKind::Log {
            if let Some((size, _)) = self.tree_size {
                if self.position > size {
                    self.notice("unsigned_tail", format!("entries {size}..{} come after the last signed checkpoint: they are chained but not yet signed", self.position - 1));
                }
            }
            if self.entries == 0 && self.failures_total == 0 && self.state != State::Start {
                self.notice("empty", "the log has no entries".into());
            }
        }
        if !self.verified_any && self.failures_total == 0 {
            let msg = if self.opts.keys.is_empty() {
                "no trusted key was given, so no checkpoint could be checked".to_string()
            } else if self.checkpoints_total == 0 {
                "the file has no checkpoint: nothing in it is signed".to_string()
            } else {
                "no checkpoint is signed by a trusted key".to_string()
            };
            self.notice("no_trusted_checkpoint", msg);
        }
    }
}

// A decimal number without sign or leading zeros.
fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 1 || !s.starts_with('0'))
}

fn preview(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.chars().count() > 60 {
        s.chars().take(60).collect::<String>() + "…"
    } else {
        s.into_owned()
    }
}

/// Verifies a whole byte slice at once.
pub fn verify_bytes(opts: Options, data: &[u8]) -> Report {
    let mut v = StreamVerifier::new(opts);
    v.push(data);
    v.finish()
}

/// The per-line work of an entry line done ahead of time: its leaf hash and
/// the checks of [`entry::parse_entry`]. See [`prepare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    offset: u64,
    len: usize,
    leaf: Hash,
    fields: Result<entry::EntryFields, entry::EntryError>,
}

impl Prepared {
    /// Whether the line parsed (only those are encoded).
    pub fn is_ok(&self) -> bool {
        self.fields.is_ok()
    }
}

impl Prepared {
    /// Size of one record of [`Prepared::encode_all`].
    const REC: usize = 8 + 4 + 32 + entry::EntryFields::ENCODED_LEN;

    /// Encodes prepared lines for another thread or worker: per line its
    /// offset, length, leaf hash and fields. Lines that failed to parse are
    /// left out (the verifier redoes those itself).
    pub fn encode_all(items: &[Prepared]) -> Vec<u8> {
        let mut out = Vec::with_capacity(items.len() * Self::REC);
        for p in items {
            if let Ok(f) = &p.fields {
                Self::encode_one(&mut out, p.offset, p.len, &p.leaf, f);
            }
        }
        out
    }

    /// Appends one record.
    fn encode_one(out: &mut Vec<u8>, offset: u64, len: usize, leaf: &Hash, f: &entry::EntryFields) {
        let mut r = [0u8; Self::REC];
        r[0..8].copy_from_slice(&offset.to_le_bytes());
        r[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        r[12..44].copy_from_slice(&leaf.0);
        r[44..].copy_from_slice(&f.to_bytes());
        out.extend_from_slice(&r);
    }

    /// Reads [`Prepared::encode_all`]'s form; stops at the first record that
    /// does not decode. Prepared records come from this program's own
    /// threads or workers running [`prepare`], never from the file being
    /// verified; each is used only at its exact offset and length.
    pub fn decode_all(b: &[u8]) -> Vec<Prepared> {
        let mut out = Vec::with_capacity(b.len() / Self::REC);
        for r in b.chunks_exact(Self::REC) {
            let (offset, len, leaf, fields) = Self::split_record(r);
            let Some(fields) = entry::EntryFields::decode(fields, len) else {
                break;
            };
            out.push(Prepared {
                offset,
                len,
                leaf,
                fields: Ok(fields),
            });
        }
        out
    }

    /// One record's offset, length, leaf hash and encoded fields.
    fn split_record(r: &[u8]) -> (u64, usize, Hash, &[u8]) {
        let offset = u64::from_le_bytes(r[0..8].try_into().unwrap_or_default());
        let len = u32::from_le_bytes(r[8..12].try_into().unwrap_or_default()) as usize;
        let mut leaf = [0u8; 32];
        leaf.copy_from_slice(&r[12..44]);
        (offset, len, Hash(leaf), &r[44..])
    }
}

/// Hashes and parses every entry line of `block` (whose first byte is at
/// stream offset `base`); independent per line, so it can run on many threads.
pub fn prepare(block: &[u8], base: u64) -> Vec<Prepared> {
    let (lines, leaves) = entry_lines_hashed(block);
    lines
        .into_iter()
        .zip(leaves)
        .map(|((start, line), leaf)| Prepared {
            offset: base + start as u64,
            len: line.len(),
            leaf,
            fields: entry::parse_entry(line).map(|p| p.fields()),
        })
        .collect()
}

/// `Prepared::encode_all(&prepare(block, base))`, written directly.
pub fn prepare_encoded(block: &[u8], base: u64) -> Vec<u8> {
    let (lines, leaves) = entry_lines_hashed(block);
    let mut out = Vec::with_capacity(lines.len() * Prepared::REC);
    for ((start, line), leaf) in lines.into_iter().zip(leaves) {
        if let Ok(p) = entry::parse_entry(line) {
            Prepared::encode_one(
                &mut out,
                base + start as u64,
                line.len(),
                &leaf,
                &p.fields(),
            );
        }
    }
    out
}

/// The entry lines of `block` with their offsets in it, and their leaf
/// hashes: all the lines first, then the hashes in one batch (several lines
/// at once where the target allows it).
fn entry_lines_hashed(block: &[u8]) -> (Vec<(usize, &[u8])>, Vec<Hash>) {
    let mut lines: Vec<(usize, &[u8])> = Vec::new();
    let mut start = 0usize;
    for end in memchr::memchr_iter(b'\n', block) {
        let line = &block[start..end];
        if line.first() == Some(&b'{') && line.len() <= MAX_LINE {
            lines.push((start, line));
        }
        start = end + 1;
    }
    let slices: Vec<&[u8]> = lines.iter().map(|&(_, line)| line).collect();
    let mut leaves = Vec::with_capacity(lines.len());
    leaf_hashes(&slices, &mut leaves);
    (lines, leaves)
}

/// A native verifier that hashes and parses lines on several threads and
/// keeps the stream's order for everything else: while the calling thread
/// runs the chain and tree checks of one block, worker threads prepare the
/// next. Same reports as [`StreamVerifier`], byte for byte.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug)]
pub struct ParallelVerifier {
    inner: StreamVerifier,
    buf: Vec<u8>,
    threads: usize,
    block: usize,
    submitted: u64,
    inflight: VecDeque<InFlight>,
}

#[cfg(not(target_arch = "wasm32"))]
type InFlight = (
    std::sync::Arc<Vec<u8>>,
    Vec<std::thread::JoinHandle<Vec<Prepared>>>,
);

#[cfg(not(target_arch = "wasm32"))]
impl ParallelVerifier {
    /// A verifier using `threads` worker threads (at least 1).
    pub fn new(opts: Options, threads: usize) -> Self {
        ParallelVerifier {
            inner: StreamVerifier::new(opts),
            buf: Vec::new(),
            threads: threads.max(1),
            block: 4 << 20,
            submitted: 0,
            inflight: VecDeque::new(),
        }
    }

    /// Sets the size of the blocks handed to the threads (default 4 MiB).
    pub fn block_size(mut self, bytes: usize) -> Self {
        self.block = bytes.max(1);
        self
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.submitted + self.buf.len() as u64
    }

    /// Feeds the next bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        while self.buf.len() >= self.block {
            let Some(i) = memchr::memrchr(b'\n', &self.buf) else {
                break;
            };
            let rest = self.buf.split_off(i + 1);
            let block = std::mem::replace(&mut self.buf, rest);
            self.submit(block);
            // Keep one block in flight while this thread checks the one before.
            while self.inflight.len() > 1 {
                self.drain_one();
            }
            if self.buf.len() < self.block {
                break;
            }
        }
    }

    fn submit(&mut self, block: Vec<u8>) {
        let base = self.submitted;
        self.submitted += block.len() as u64;
        let block = std::sync::Arc::new(block);
        let n = self.threads;
        // Cut the block at line ends into n parts of about equal size.
        let mut cuts = vec![0usize];
        for k in 1..n {
            let at = (block.len() * k / n).max(*cuts.last().unwrap_or(&0));
            let c = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |j| at + j + 1);
            cuts.push(c);
        }
        cuts.push(block.len());
        let handles = cuts
            .windows(2)
            .map(|w| {
                let (a, b, blk) = (w[0], w[1], block.clone());
                std::thread::spawn(move || prepare(&blk[a..b], base + a as u64))
            })
            .collect();
        self.inflight.push_back((block, handles));
    }

    fn drain_one(&mut self) {
        if let Some((block, handles)) = self.inflight.pop_front() {
            // A worker that panicked leaves its lines to be done here.
            let prepared = handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect();
            self.inner.push_prepared(&block, prepared);
        }
    }

    /// Ends the stream and returns the report.
    pub fn finish(mut self) -> Report {
        let rest = std::mem::take(&mut self.buf);
        self.submit(rest);
        while !self.inflight.is_empty() {
            self.drain_one();
        }
        self.inner.finish()
    }
}

// Hand-written JSON output, identical to the serde derive (a test pins that),
// so the WebAssembly build needs no JSON library.
struct Json(String);

impl Json {
    fn new() -> Self {
        Json(String::from("{"))
    }
    fn key(&mut self, k: &str) -> &mut String {
        if !self.0.ends_with('{') {
            self.0.push(',');
        }
        canonical::push_json_string(&mut self.0, k);
        self.0.push(':');
        &mut self.0
    }
    fn str(&mut self, k: &str, v: Option<&str>) {
        let out = self.key(k);
        match v {
            Some(v) => canonical::push_json_string(out, v),
            None => out.push_str("null"),
        }
    }
    fn num<T: std::fmt::Display>(&mut self, k: &str, v: Option<T>) {
        let out = self.key(k);
        match v {
            Some(v) => out.push_str(&v.to_string()),
            None => out.push_str("null"),
        }
    }
    fn raw(&mut self, k: &str, v: &str) {
        self.key(k).push_str(v);
    }
    fn done(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn json_array<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    let mut s = String::from("[");
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&f(x));
    }
    s.push(']');
    s
}

impl Verdict {
    /// The verdict's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Failed => "failed",
            Verdict::Unverified => "unverified",
        }
    }
}

impl EntrySummary {
    /// The summary as JSON (the same text as serde would write).
    pub fn to_json(&self) -> String {
        let mut j = Json::new();
        j.num("seq", self.seq);
        j.str("ts", self.ts.as_deref());
        j.num("ts_us", self.ts_us);
        j.str("type", self.kind.as_deref());
        j.str("actor", self.actor.as_deref());
        j.str("action", self.action.as_deref());
        j.str("target", self.target.as_deref());
        j.str("outcome", self.outcome.as_deref());
        j.num("line", Some(self.line));
        j.num("offset", Some(self.offset));
        j.num("length", Some(self.length));
        j.done()
    }

    /// A list of summaries as a JSON array.
    pub fn list_to_json(rows: &[EntrySummary]) -> String {
        json_array(rows, EntrySummary::to_json)
    }
}

impl Report {
    /// The report as JSON (the same text as serde would write).
    pub fn to_json(&self) -> String {
        let mut j = Json::new();
        j.str("verdict", Some(self.verdict.as_str()));
        j.str("kind", Some(self.kind));
        j.str("origin", self.origin.as_deref());
        j.str("key_id", self.key_id.as_deref());
        j.str("key_name", self.key_name.as_deref());
        j.num("entries", Some(self.entries));
        j.num("first_seq", self.first_seq);
        j.num("last_seq", self.last_seq);
        j.str("first_ts", self.first_ts.as_deref());
        j.str("last_ts", self.last_ts.as_deref());
        j.num("tree_size", self.tree_size);
        j.str("root", self.root.as_deref());
        let cps = json_array(&self.checkpoints, |c| {
            let mut o = Json::new();
            o.num("size", Some(c.size));
            o.str("root", Some(&c.root));
            o.num("line", Some(c.line));
            o.raw("trusted", if c.trusted { "true" } else { "false" });
            o.str("status", Some(c.status));
            o.done()
        });
        j.raw("checkpoints", &cps);
        j.num("checkpoints_total", Some(self.checkpoints_total));
        let fails = json_array(&self.failures, |f| {
            let mut o = Json::new();
            o.str("code", Some(f.code));
            o.num("entry", f.entry);
            o.num("line", Some(f.line));
            o.num("offset", Some(f.offset));
            o.str("expected", f.expected.as_deref());
            o.str("found", f.found.as_deref());
            o.str("message", Some(&f.message));
            o.done()
        });
        j.raw("failures", &fails);
        j.num("failures_total", Some(self.failures_total));
        let notes = json_array(&self.notices, |n| {
            let mut o = Json::new();
            o.str("code", Some(n.code));
            o.str("message", Some(&n.message));
            o.done()
        });
        j.raw("notices", &notes);
        j.num("bytes", Some(self.bytes));
        j.done()
    }
}
