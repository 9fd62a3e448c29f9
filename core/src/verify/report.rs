//! The report: its types, the end-of-stream checks that complete it, and
//! its JSON form.

use super::*;
use crate::canonical;
use crate::canonical::quote;
use serde::Serialize;

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
    /// Sealed values by state (FORMAT 13.8); present when the file has
    /// sealed values or sealed-field records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed: Option<crate::sealed::SealedCounts>,
}

impl StreamVerifier {
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
        self.seal_origin();
        let sealed = self.seal.active().then(|| self.seal.finish());
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
            sealed,
            bytes: self.offset + self.partial.len() as u64,
        }
    }

    pub(super) fn final_checks(&mut self) {
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
        if let Some(s) = &self.sealed {
            let mut o = Json::new();
            o.num("values", Some(s.values));
            o.num("opened", Some(s.opened));
            o.num("sealed", Some(s.sealed));
            o.num("forgotten", Some(s.forgotten));
            o.num("redacted", Some(s.redacted));
            j.raw("sealed", &o.done());
        }
        j.done()
    }
}
