//! The report: its types, the end-of-stream checks that complete it, and
//! its JSON form.

use super::*;
use crate::canonical;
use crate::canonical::quote;
use serde::Serialize;

/// How a tlog-proof's first line starts.
const TLOG_PROOF_START: &[u8] = b"c2sp.org/tlog-proof";

/// The outcome (docs/FORMAT.md 8.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No failure, and a checkpoint signed by a pinned key covers every entry.
    Verified,
    /// No failure, a checkpoint signed by a pinned key verifies, but some
    /// entries are not covered by one (entries at index `tree_size` and
    /// later, or selected entries proved only against unsigned checkpoints).
    Partial,
    /// No failure, but nothing is signed by a pinned key.
    Unverified,
    /// At least one failure: the file was altered or is not a valid log.
    Tampered,
    /// The input is not a Stele export at all (one `not_a_log` failure).
    NotALog,
}

/// An interval of entry indexes, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EntryRange {
    /// The first entry index.
    pub first: u64,
    /// The last entry index.
    pub last: u64,
}

/// One failure: a stable code, where, and what was expected and found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Stable code (docs/FORMAT.md lists them).
    pub code: FailureCode,
    /// The entry index (leaf index), when the failure concerns one entry.
    pub entry: Option<u64>,
    /// The entries concerned, when the failure is about an interval (a
    /// checkpoint's `root_mismatch`); then `entry` is null.
    pub range: Option<EntryRange>,
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
    /// Index (into the report's `failures`) of the failure this one
    /// follows from, if it is a consequence (a checkpoint's
    /// `root_mismatch` caused by an altered entry).
    pub cause: Option<usize>,
}

/// Something the auditor should know that is not a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// Stable code.
    pub code: NoticeCode,
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
    /// With a witness policy: the policy's witnesses whose cosignature verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witnesses: Option<Vec<String>>,
}

/// The report's `quorum` block (with a witness policy, docs/FORMAT.md 14.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumReport {
    /// The quorum's name in the policy (`none`: no cosignature required).
    pub name: String,
    /// The checkpoint the verdict rests on meets the quorum (and, in
    /// `entries` exports, every trusted checkpoint does).
    pub met: bool,
    /// That checkpoint's size (null: no trusted checkpoint).
    pub size: Option<u64>,
    /// The policy's witnesses that cosigned it.
    pub cosigned_by: Vec<String>,
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
    /// In a `log` or `range` export whose entries are not all signed: the
    /// first entry covered by no verified trusted checkpoint (entries from
    /// it on are unsigned; FORMAT 8.7). It can be below `tree_size`, when
    /// the largest checkpoint came before entries it does not cover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsigned_from: Option<u64>,
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
    /// Sealed values by state (FORMAT 13.8); present when the file has
    /// sealed values or sealed-field records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed: Option<crate::sealed::SealedCounts>,
    /// What was verified, for the record (null unless the caller asked).
    pub input: Option<Input>,
    /// The witness quorum; present when a policy was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumReport>,
    /// The log's key history (FORMAT 15.4); present when the file has a
    /// `stele.key` event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<KeyReport>>,
    /// Timestamp records (FORMAT 16.5), the first 10,000; present when the
    /// file has at least one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamps: Option<Vec<crate::timestamp::TimestampReport>>,
}

/// The report's `input` block: what was verified, with what, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Input {
    /// The file's name (from the caller).
    pub name: Option<String>,
    /// Bytes streamed.
    pub bytes: u64,
    /// SHA-256 of those bytes (hex), when computed.
    pub sha256: Option<String>,
    /// The pinned verifier keys.
    pub keys: Vec<String>,
    /// The earlier trusted checkpoint given.
    pub trusted_checkpoint: Option<TrustedInput>,
    /// `stele <version>`.
    pub verifier: String,
    /// When (from the caller), `YYYY-MM-DDTHH:MM:SSZ`.
    pub verified_at: Option<String>,
}

/// The earlier trusted checkpoint of an [`Input`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustedInput {
    /// Its tree size.
    pub size: u64,
    /// Its root (base64).
    pub root: String,
}

impl<S: EntrySink> StreamVerifier<S> {
    /// Ends the stream and returns the report.
    pub fn finish(mut self) -> Report {
        if self.state == State::TlogProof {
            self.finish_tlog();
        } else if self.state != State::NotALog {
            self.end_of_stream();
        }
        if self.state != State::NotALog {
            self.seal_origin();
        }
        let sealed =
            (self.state != State::NotALog && self.seal.active()).then(|| self.seal.finish());
        let unchecked = self.seal.unchecked_openings();
        if cfg!(feature = "sealed") && sealed.is_some() && unchecked > 0 {
            let msg = format!(
                "{unchecked} openings were not checked: they came before the log's origin was known, after the {} (or {} MiB) this verifier holds until then; their values count as sealed",
                crate::sealed::MAX_DEFERRED,
                crate::sealed::MAX_DEFERRED_BYTES >> 20
            );
            self.notice(NoticeCode::OpeningsUnchecked, msg);
        }
        if self.state != State::NotALog {
            self.timestamps_end();
        }
        if self.state != State::NotALog {
            self.final_checks();
            #[cfg(feature = "witness")]
            self.witness_final_check();
            self.link_causes();
        }
        let verdict = if self.state == State::NotALog {
            Verdict::NotALog
        } else if self.failures_total > 0 {
            Verdict::Tampered
        } else if !self.verified_any {
            Verdict::Unverified
        } else if self.unsigned_entries().is_some() || self.rotation_unchecked() {
            Verdict::Partial
        } else {
            Verdict::Verified
        };
        let unsigned_from = match (verdict, self.kind) {
            (Verdict::Partial, ExportKind::Log | ExportKind::Range) => {
                self.unsigned_entries().map(|(first, _)| first)
            }
            _ => None,
        };
        #[cfg(feature = "witness")]
        let quorum = self.quorum_report();
        #[cfg(not(feature = "witness"))]
        let quorum = None;
        let input = self.opts.input.take().map(|meta| Input {
            name: meta.name,
            bytes: self.streamed,
            sha256: self
                .sha256
                .take()
                .map(|h| Hash(sha2::Digest::finalize(h).into()).to_hex()),
            keys: self.opts.keys.iter().map(|k| k.to_string()).collect(),
            trusted_checkpoint: self.opts.trusted.as_ref().map(|t| TrustedInput {
                size: t.size,
                root: t.root.to_base64(),
            }),
            verifier: concat!("stele ", env!("CARGO_PKG_VERSION")).to_string(),
            verified_at: meta.verified_at,
        });
        let keys = self.key_history();
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
            unsigned_from,
            checkpoints: self.checkpoints,
            checkpoints_total: self.checkpoints_total,
            failures: self.failures,
            failures_total: self.failures_total,
            notices: self.notices,
            sealed,
            bytes: self.streamed,
            input,
            quorum,
            keys,
            #[cfg(feature = "timestamps")]
            timestamps: (self.timestamps_total > 0).then_some(self.timestamps),
            #[cfg(not(feature = "timestamps"))]
            timestamps: None,
        }
    }

    /// docs/FORMAT.md 8.7: what the end of the stream settles.
    fn end_of_stream(&mut self) {
        // The position just after the last complete line: where failures
        // about the end of the file point.
        let (end_line, end) = (self.line_no + 1, self.offset);
        if self.state == State::Start && self.overlong.is_none() {
            // No complete first line: an empty file, or one line without its newline.
            let rest = std::mem::take(&mut self.partial);
            let export = rest.first() == Some(&b'{')
                || rest.starts_with(b"stele-export")
                || rest.starts_with(TLOG_PROOF_START);
            if !export {
                return self.not_a_log(Some(&rest).filter(|r| !r.is_empty()).map(|r| &r[..]));
            }
            self.partial = rest;
        }
        if let Some(n) = self.overlong.take() {
            let entry = self.overlong_entry.then_some(self.position);
            self.fail(FailureCode::TrailingData, entry, end_line, end, None, Some(format!("{n} bytes")), format!("line {end_line}: {n} bytes after the last newline (the file ends in an incomplete line)"));
        } else if !self.partial.is_empty() {
            let n = self.partial.len();
            let entry = (self.partial.first() == Some(&b'{')).then_some(self.position);
            self.fail(FailureCode::TrailingData, entry, end_line, end, None, Some(format!("{n} bytes")), format!("line {end_line}: {n} bytes after the last newline (the file ends in an incomplete line: {})", quote(&preview(&self.partial))));
        }
        if matches!(self.state, State::NoteText | State::NoteSigs) {
            self.end_note();
        }
        if let Some(b) = self.pending.take() {
            // The break is between the last two entries: nothing later
            // vouches for either. A changed event is the likelier attack.
            let bad = b.index - 1;
            self.fail(
                FailureCode::HashMismatch,
                Some(bad),
                b.prev_at.0,
                b.prev_at.1,
                Some(b.prev_found.to_hex()),
                Some(b.prev_hash.to_hex()),
                format!("entry {bad}: hashes to {}, but entry {} records prev {}: entry {bad} was altered, or entry {}'s prev was", b.prev_hash.short(), b.index, b.prev_found.short(), b.index),
            );
        }
        if let Some((n, _)) = self.right.take() {
            self.fail(
                FailureCode::BadProof,
                None,
                end_line,
                end,
                None,
                None,
                format!("a right record for size {n} is not followed by a checkpoint"),
            );
        }
        if let Some((i, _, l)) = self.inclusion.take() {
            self.fail(
                FailureCode::MissingEntry,
                Some(i),
                l,
                self.inclusion_offset,
                None,
                None,
                format!("entry {i}: the file ends after its inclusion record on line {l}, without the entry"),
            );
        }
    }

    /// Entries not covered by a verified signed checkpoint, when something
    /// else was verified: the first such index and how many.
    fn unsigned_entries(&self) -> Option<(u64, u64)> {
        match self.kind {
            ExportKind::Log | ExportKind::Range => {
                // Entries read after the last verified trusted checkpoint
                // that covered them; the one the report names (tree_size)
                // may be larger and placed before entries it does not cover
                // (a range's checkpoint with right hashes, moved up).
                let _ = self.tree_size?;
                let from = self.last_good_size.max(self.start);
                (self.position > from).then(|| (from, self.position - from))
            }
            _ => match self.unsigned_selected {
                (n, Some(first)) if n > 0 => Some((first, n)),
                _ => None,
            },
        }
    }

    /// Each interval failure (a checkpoint's `root_mismatch`) follows from
    /// the first failure kept that names one entry inside its interval.
    fn link_causes(&mut self) {
        for i in 0..self.failures.len() {
            let Some(r) = self.failures[i].range else {
                continue;
            };
            self.failures[i].cause = self.failures.iter().position(|f| {
                f.range.is_none() && f.entry.is_some_and(|e| r.first <= e && e <= r.last)
            });
        }
    }

    pub(super) fn final_checks(&mut self) {
        let (l, o) = (self.line_no + 1, self.offset);
        if let Some(t) = self.opts.trusted.clone() {
            if let Some(o2) = &self.origin
                && *o2 != t.origin
            {
                let o2 = o2.clone();
                self.fail(FailureCode::OriginMismatch, None, l, o, Some(t.origin.clone()), Some(o2.clone()), format!("the earlier trusted checkpoint is for origin {}, but this log's origin is {}", quote(&t.origin), quote(&o2)));
            }
            // What the file shows the log reached: its entries, or in a
            // partial export its largest verified trusted checkpoint (an
            // unsigned one, any key's, says nothing about this log).
            let largest = match self.kind {
                ExportKind::Log => Some(self.position),
                _ => self.tree_size.map(|(s, _)| s),
            };
            match largest {
                Some(n) if n < t.size => self.fail(FailureCode::Rollback, Some(n), l, o, Some(format!("at least {} entries", t.size)), Some(format!("{n} entries")), format!("the log has {n} entries, but an earlier trusted checkpoint covers {}: entries were removed (rollback)", t.size)),
                _ if !self.trusted_checked && !self.tree_broken && self.kind != ExportKind::Log => self.notice(NoticeCode::TrustedCheckpointUnchecked, format!("the earlier trusted checkpoint (size {}) could not be compared: this partial export does not reach that size", t.size)),
                _ => {}
            }
        }
        if let Some((first, n)) = self.unsigned_entries() {
            let msg = self.unsigned_message(first, n);
            self.notice(NoticeCode::UnsignedTail, msg);
        }
        if self.kind == ExportKind::Log
            && self.entries == 0
            && self.failures_total == 0
            && self.state != State::Start
        {
            self.notice(NoticeCode::Empty, "the log has no entries".into());
        }
        if !self.verified_any && self.failures_total == 0 {
            if self.opts.keys.is_empty() {
                let msg = "no trusted key was given, so no signature could be checked";
                self.notice(NoticeCode::NoKey, msg.into());
            } else {
                let msg = if self.checkpoints_total == 0 {
                    "the file has no checkpoint: nothing in it is signed"
                } else if self.key.is_some() {
                    // An entries export of no entries: the checkpoint is
                    // trusted, but it proves nothing in this file.
                    "a checkpoint is signed by a trusted key, but the file holds no entry it proves"
                } else {
                    "no checkpoint is signed by a trusted key"
                };
                self.notice(NoticeCode::NoTrustedCheckpoint, msg.into());
            }
        }
    }

    /// The `unsigned_tail` notice, worded for what happened to the entries
    /// after the largest verified checkpoint.
    fn unsigned_message(&self, first: u64, n: u64) -> String {
        let last = first + n - 1;
        let span = if n == 1 {
            format!("entry {first} is")
        } else {
            format!("entries {first}..{last} are")
        };
        if !matches!(self.kind, ExportKind::Log | ExportKind::Range) {
            return format!("{span} proved only against checkpoints not signed by a trusted key");
        }
        let later: Vec<&CheckpointReport> =
            self.checkpoints.iter().filter(|c| c.size > first).collect();
        let failed = later.iter().filter(|c| c.status != "untrusted").count();
        if later.iter().any(|c| c.trusted && c.status == "ok") {
            // Moved up: a checkpoint signs the entries before it in the file.
            let (they, are) = if n == 1 {
                ("it comes", "is")
            } else {
                ("they come", "are")
            };
            format!(
                "{span} not signed: {they} after the checkpoint signed by a trusted key whose size covers them (a checkpoint signs only the entries before it) and {are} chained only"
            )
        } else if later.is_empty() {
            let (they, are) = if n == 1 {
                ("it comes", "is")
            } else {
                ("they come", "are")
            };
            format!(
                "{span} not signed: {they} after the last checkpoint signed by a trusted key (size {first}) and {are} chained only"
            )
        } else if failed > 0 {
            format!(
                "{span} not verified: {failed} later checkpoint(s) covering them did not match the entries or could not be checked"
            )
        } else {
            format!(
                "{span} not verified: the {} later checkpoint(s) covering them are not signed by a trusted key",
                later.len()
            )
        }
    }
}

// Hand-written JSON output, identical to the serde derive (a test pins that),
// so the WebAssembly build needs no JSON library. One buffer for the whole
// report and small helpers kept out of line: the report is written once per
// file, so its code is kept small rather than inlined at every field.
struct Json(String);

impl Json {
    fn new() -> Self {
        Self(String::from("{"))
    }
    /// A comma unless a value starts the text or the enclosing object or array.
    #[inline(never)]
    fn sep(&mut self) {
        if !matches!(self.0.as_bytes().last(), None | Some(b'{' | b'[')) {
            self.0.push(',');
        }
    }
    /// `"k":` (the keys are ASCII names that need no escape).
    #[inline(never)]
    fn key(&mut self, k: &str) {
        self.sep();
        self.0.push('"');
        self.0.push_str(k);
        self.0.push_str("\":");
    }
    #[inline(never)]
    fn str(&mut self, k: &str, v: Option<&str>) {
        self.key(k);
        self.value(v);
    }
    #[inline(never)]
    fn value(&mut self, v: Option<&str>) {
        match v {
            Some(v) => canonical::push_json_string(&mut self.0, v),
            None => self.0.push_str("null"),
        }
    }
    #[inline(never)]
    fn num(&mut self, k: &str, v: Option<u64>) {
        self.key(k);
        match v {
            Some(v) => self.digits(v),
            None => self.0.push_str("null"),
        }
    }
    /// `v` in decimal (no formatting machinery).
    fn digits(&mut self, mut v: u64) {
        let mut d = [0u8; 20];
        let mut i = d.len();
        loop {
            i -= 1;
            d[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        d[i..].iter().for_each(|&b| self.0.push(char::from(b)));
    }
    /// `"k":` and `open` (`{` or `[`), or `"k":null` when `some` is false.
    #[inline(never)]
    fn open(&mut self, k: &str, open: char, some: bool) -> bool {
        self.key(k);
        self.0.push(if some { open } else { 'n' });
        if !some {
            self.0.push_str("ull");
        }
        some
    }
    /// An array item that is an object: `{`.
    #[inline(never)]
    fn item(&mut self) {
        self.sep();
        self.0.push('{');
    }
    /// `"k":[...]`, an array of strings.
    fn names(&mut self, k: &str, v: &[String]) {
        let _ = self.open(k, '[', true);
        for s in v {
            self.sep();
            self.value(Some(s));
        }
        self.close(']');
    }
    fn close(&mut self, c: char) {
        self.0.push(c);
    }
    fn done(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

impl Verdict {
    /// The verdict's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Partial => "partial",
            Self::Unverified => "unverified",
            Self::Tampered => "tampered",
            Self::NotALog => "not_a_log",
        }
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
        if self.unsigned_from.is_some() {
            j.num("unsigned_from", self.unsigned_from);
        }
        let _ = j.open("checkpoints", '[', true);
        for c in &self.checkpoints {
            j.item();
            j.num("size", Some(c.size));
            j.str("root", Some(&c.root));
            j.num("line", Some(c.line));
            j.key("trusted");
            j.0.push_str(if c.trusted { "true" } else { "false" });
            j.str("status", Some(c.status));
            if let Some(w) = &c.witnesses {
                j.names("witnesses", w);
            }
            j.close('}');
        }
        j.close(']');
        j.num("checkpoints_total", Some(self.checkpoints_total));
        let _ = j.open("failures", '[', true);
        for f in &self.failures {
            j.item();
            j.str("code", Some(f.code.as_str()));
            j.num("entry", f.entry);
            if j.open("range", '{', f.range.is_some()) {
                let r = f.range.unwrap_or(EntryRange { first: 0, last: 0 });
                j.num("first", Some(r.first));
                j.num("last", Some(r.last));
                j.close('}');
            }
            j.num("line", Some(f.line));
            j.num("offset", Some(f.offset));
            j.str("expected", f.expected.as_deref());
            j.str("found", f.found.as_deref());
            j.str("message", Some(&f.message));
            j.num("cause", f.cause.map(|c| c as u64));
            j.close('}');
        }
        j.close(']');
        j.num("failures_total", Some(self.failures_total));
        let _ = j.open("notices", '[', true);
        for n in &self.notices {
            j.item();
            j.str("code", Some(n.code.as_str()));
            j.str("message", Some(&n.message));
            j.close('}');
        }
        j.close(']');
        j.num("bytes", Some(self.bytes));
        if let Some(i) = &self.input {
            let _ = j.open("input", '{', true);
            j.str("name", i.name.as_deref());
            j.num("bytes", Some(i.bytes));
            j.str("sha256", i.sha256.as_deref());
            j.names("keys", &i.keys);
            if let Some(t) = &i.trusted_checkpoint {
                let _ = j.open("trusted_checkpoint", '{', true);
                j.num("size", Some(t.size));
                j.str("root", Some(&t.root));
                j.close('}');
            } else {
                let _ = j.open("trusted_checkpoint", '{', false);
            }
            j.str("verifier", Some(&i.verifier));
            j.str("verified_at", i.verified_at.as_deref());
            j.close('}');
        } else {
            let _ = j.open("input", '{', false);
        }
        if let Some(s) = &self.sealed {
            let _ = j.open("sealed", '{', true);
            j.num("values", Some(s.values));
            j.num("opened", Some(s.opened));
            j.num("sealed", Some(s.sealed));
            j.num("forgotten", Some(s.forgotten));
            j.num("redacted", Some(s.redacted));
            j.close('}');
        }
        if let Some(q) = &self.quorum {
            let _ = j.open("quorum", '{', true);
            j.str("name", Some(&q.name));
            j.key("met");
            j.0.push_str(if q.met { "true" } else { "false" });
            j.num("size", q.size);
            j.names("cosigned_by", &q.cosigned_by);
            j.close('}');
        }
        if let Some(keys) = &self.keys {
            let _ = j.open("keys", '[', true);
            for k in keys {
                j.item();
                j.str("key", Some(&k.key));
                j.num("entry", Some(k.entry));
                j.num("from", Some(k.from));
                j.num("to", k.to);
                j.key("signed");
                j.0.push_str(match k.signed {
                    Some(true) => "true",
                    Some(false) => "false",
                    None => "null",
                });
                j.key("trusted");
                j.0.push_str(if k.trusted { "true" } else { "false" });
                j.num("revoked_from", k.revoked_from);
                j.close('}');
            }
            j.close(']');
        }
        #[cfg(feature = "timestamps")]
        if let Some(ts) = &self.timestamps {
            let _ = j.open("timestamps", '[', true);
            for t in ts {
                j.item();
                j.num("size", Some(t.size));
                j.num("line", Some(t.line));
                j.str("status", Some(t.status));
                j.str("time", t.time.as_deref());
                j.str("tsa", t.tsa.as_deref());
                j.close('}');
            }
            j.close(']');
        }
        j.done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written JSON is serde's at the edges the vectors do not
    /// reach: escapes, empty lists, a range.
    #[test]
    fn hand_written_json_is_serdes_at_the_edges() {
        let mut report = verify_bytes(Options::new(Vec::new()), b"");
        assert_eq!(report.to_json(), serde_json::to_string(&report).unwrap());
        report.failures.push(Failure {
            code: FailureCode::RootMismatch,
            entry: None,
            range: Some(EntryRange {
                first: 0,
                last: u64::MAX,
            }),
            line: 1,
            offset: 0,
            expected: Some("x\ny".into()),
            found: None,
            message: "m".into(),
            cause: Some(0),
        });
        report.checkpoints.push(CheckpointReport {
            size: 3,
            root: "r".into(),
            line: 2,
            trusted: true,
            status: "ok",
            witnesses: None,
        });
        report.input = Some(Input {
            name: None,
            bytes: 0,
            sha256: None,
            keys: vec!["k1".into(), "k\"2".into()],
            trusted_checkpoint: Some(TrustedInput {
                size: 1,
                root: "q".into(),
            }),
            verifier: "stele".into(),
            verified_at: None,
        });
        assert_eq!(report.to_json(), serde_json::to_string(&report).unwrap());
        report.checkpoints[0].witnesses = Some(vec!["w\"1".into(), "w2".into()]);
        report.checkpoints.push(CheckpointReport {
            witnesses: Some(vec![]),
            ..report.checkpoints[0].clone()
        });
        report.quorum = Some(QuorumReport {
            name: "q".into(),
            met: true,
            size: None,
            cosigned_by: vec!["a".into()],
        });
        assert_eq!(report.to_json(), serde_json::to_string(&report).unwrap());
        report.quorum.as_mut().unwrap().met = false;
        report.quorum.as_mut().unwrap().size = Some(4);
        assert_eq!(report.to_json(), serde_json::to_string(&report).unwrap());
        report.input.as_mut().unwrap().keys.clear();
        report.input.as_mut().unwrap().trusted_checkpoint = None;
        assert_eq!(report.to_json(), serde_json::to_string(&report).unwrap());
        report.unsigned_from = Some(7);
        assert_eq!(report.to_json(), serde_json::to_string(&report).unwrap());
    }

    /// A range record whose start is 2^64 - 1 leaves no index for an entry
    /// after the first: a failure, never an overflow (a panic where
    /// overflow checks are on).
    #[test]
    fn entries_past_the_largest_index_fail() {
        let left = vec!["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; 64].join(" ");
        let entry = r#"{"event":{"type":"t"},"prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":18446744073709551615,"ts":"2026-11-26T10:00:00.000000Z"}"#;
        let file = format!(
            "stele-export v1 range\nrange {} {left}\n{entry}\n{entry}\n{entry}\n",
            u64::MAX
        );
        let r = verify_bytes(Options::new(Vec::new()), file.as_bytes());
        assert_eq!(r.verdict, Verdict::Tampered);
        assert!(
            r.failures
                .iter()
                .any(|f| f.code == FailureCode::BadProof && f.message.contains("2^64")),
            "{:?}",
            codes(&r)
        );
    }

    fn codes(r: &Report) -> Vec<(&'static str, Option<u64>)> {
        r.failures
            .iter()
            .map(|f| (f.code.as_str(), f.entry))
            .collect()
    }

    /// FORMAT 7.1: a file that starts with a byte order mark gets `bom`,
    /// whatever its first line is, one too long to read included.
    #[test]
    fn a_byte_order_mark_before_an_over_long_first_line_is_bom() {
        let long = |first: &[u8]| {
            let mut f = b"\xEF\xBB\xBF".to_vec();
            f.extend_from_slice(first);
            f.resize(70_000, b'x');
            f.push(b'\n');
            verify_bytes(Options::new(Vec::new()), &f)
        };
        let r = long(b"{");
        assert_eq!(codes(&r), [("bom", None), ("line_too_long", Some(0))]);
        assert_eq!(r.notices[0].code.as_str(), "no_header");
        let r = long(b"stele-export v1 log");
        assert_eq!(codes(&r), [("bom", None), ("bad_header", None)]);
        // Not an export: the one failure not_a_log (section 8.2).
        let r = long(b"hello");
        assert_eq!(codes(&r), [("not_a_log", None)]);
    }

    /// FORMAT 8.2: a complete first line that is not UTF-8 is binary data,
    /// one that ends inside a character too; only first bytes cut inside
    /// a character (no line end) are still text.
    #[test]
    fn a_first_line_ending_inside_a_character_is_binary_data() {
        let found = |data: &[u8]| {
            let r = verify_bytes(Options::new(Vec::new()), data);
            assert_eq!(codes(&r), [("not_a_log", None)]);
            r.failures[0].found.clone().unwrap()
        };
        assert_eq!(found(b"caf\xE9\n"), "binary data");
        assert_eq!(found(b"caf\xC3\n"), "binary data");
        assert_eq!(found(b"caf\xC3\xA9\n"), "text that is not a Stele export");
        // Too long to read: the first 16 bytes end inside an "é".
        let mut cut = b"x".to_vec();
        cut.extend_from_slice(&b"\xC3\xA9".repeat(40_000));
        cut.push(b'\n');
        assert_eq!(found(&cut), "text that is not a Stele export");
    }
}
