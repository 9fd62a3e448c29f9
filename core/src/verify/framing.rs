//! Framing: bytes into lines, lines into records (header, entries,
//! checkpoint notes, proof records), and the tlog-proof buffer.

use super::*;
use crate::canonical::quote;
use crate::export::{EXPORT_MAGIC, MAX_TLOG_PROOF_BYTES, TLOG_PROOF_MAGIC};
use crate::note::MAX_NOTE_BYTES;

const NO_HEADER: &str = "the file has no export header; read as a whole log without checkpoints unless it has checkpoint records";

impl<S: EntrySink> StreamVerifier<S> {
    /// Feeds the next bytes. Any chunking gives the same result.
    pub fn push(&mut self, mut chunk: &[u8]) {
        self.streamed += chunk.len() as u64;
        if let Some(h) = self.sha256.as_mut() {
            sha2::Digest::update(h, chunk);
        }
        if self.head.len() < HEAD_BYTES {
            let n = (HEAD_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..n]);
        }
        if self.state == State::NotALog {
            return;
        }
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
                        let first = self.partial.first().or(chunk.first());
                        self.overlong_entry = first == Some(&b'{');
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

    #[cold]
    #[inline(never)]
    pub(super) fn overlong_line(&mut self, len: usize) {
        // The line ends an open note first (docs/FORMAT.md 7.1): a complete
        // note is a checkpoint like any other.
        if matches!(self.state, State::NoteText | State::NoteSigs) {
            self.end_note();
            self.state = State::Records;
        }
        self.line_no += 1;
        let at = self.offset;
        self.offset += len as u64 + 1;
        match self.state {
            State::NotALog => return,
            State::Start => {
                self.state = State::Records;
                // FORMAT 7.1: every file that starts with a mark gets `bom`.
                let bom = self.head.starts_with(&[0xEF, 0xBB, 0xBF]);
                if bom {
                    let msg = "line 1: the file starts with a byte order mark (U+FEFF); Stele files have none";
                    self.fail(FailureCode::Bom, None, 1, 0, None, None, msg.into());
                }
                let head = &self.head[3 * usize::from(bom)..];
                if head.first() == Some(&b'{') {
                    self.notice(NoticeCode::NoHeader, NO_HEADER.into());
                } else if head.starts_with(b"stele-export") || head.starts_with(b"c2sp.org/") {
                    let msg = format!(
                        "line 1 is {len} bytes: too long to be a header (expected \"{EXPORT_MAGIC} log|range|entries\")"
                    );
                    self.fail(FailureCode::BadHeader, None, 1, at, None, None, msg);
                    return;
                } else {
                    return self.not_a_log(None);
                }
            }
            _ => {}
        }
        // In an entries export the pending inclusion record names the entry.
        let idx = match self.kind {
            ExportKind::Entries => match self.inclusion.take() {
                Some((i, _, _)) => i,
                None => self.last_index_in_export.map_or(0, |i| i + 1),
            },
            _ => self.position,
        };
        let line = self.line_no;
        self.fail(
            FailureCode::LineTooLong,
            Some(idx),
            line,
            at,
            None,
            Some(format!("{len} bytes")),
            format!(
                "entry {idx}: line {line} is {len} bytes, more than the limit of {MAX_ENTRY_BYTES}"
            ),
        );
        self.entries += 1;
        if self.kind == ExportKind::Entries {
            self.last_index_in_export = Some(idx);
            self.last_hash = None;
            return;
        }
        // The entry's hash is lost, so later roots cannot be checked.
        self.tree_broken = true;
        self.last_hash = None;
        self.position += 1;
    }

    pub(super) fn line(&mut self, line: &[u8]) {
        self.line_no += 1;
        self.dispatch(line);
        self.offset += line.len() as u64 + 1;
    }

    pub(super) fn dispatch(&mut self, line: &[u8]) {
        match self.state {
            State::Start => {
                self.state = State::Records;
                if !self.bom_stripped
                    && let Some(rest) = line.strip_prefix(&[0xEF, 0xBB, 0xBF])
                {
                    self.fail_here(FailureCode::Bom, None, "line 1: the file starts with a byte order mark (U+FEFF); Stele files have none".into());
                    self.bom_stripped = true;
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
                            FailureCode::BadHeader,
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
                    self.notice(NoticeCode::NoHeader, NO_HEADER.into());
                    self.record(line);
                    return;
                }
                if line.starts_with(b"stele-export") {
                    // A Stele header this verifier does not read (another version).
                    let msg = format!(
                        "line 1: expected \"{EXPORT_MAGIC} log|range|entries\", found {}",
                        quote(&preview(line))
                    );
                    return self.fail_here(FailureCode::BadHeader, None, msg);
                }
                self.not_a_log(Some(line));
            }
            State::NotALog => {}
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

    pub(super) fn note_push(&mut self, line: &[u8]) {
        if self.note.len() + line.len() < MAX_NOTE_BYTES + 2 {
            self.note.extend_from_slice(line);
            self.note.push(b'\n');
        } else {
            // Too large: make sure the note is refused, not silently shortened.
            self.note.resize(MAX_NOTE_BYTES + 2, b'\n');
        }
    }

    pub(super) fn record(&mut self, line: &[u8]) {
        if line.starts_with(crate::timestamp::RECORD_PREFIX) {
            self.seal.other();
            return self.timestamp_record(line);
        }
        // FORMAT 16.2: timestamp records directly follow their checkpoint
        // (any other line in between, a sealed-field record too, unbinds it).
        #[cfg(feature = "timestamps")]
        {
            self.ts_target = None;
        }
        if crate::sealed::is_record(line) {
            return self.sealed_record(line);
        }
        if !matches!(line.first(), Some(b'{') | Some(0xEF)) {
            self.seal.other();
        }
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
                    return self.fail_here(FailureCode::UnknownRecord, None, msg);
                }
                if self.right.is_some() {
                    let msg = format!(
                        "line {}: a second right record before one checkpoint",
                        self.line_no
                    );
                    self.fail_here(FailureCode::BadProof, None, msg);
                }
                self.right = self.hashes_line(line, "right");
            }
            _ if line.starts_with(b"inclusion ") => {
                if self.kind != ExportKind::Entries {
                    self.fail_here(
                        FailureCode::UnknownRecord,
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
                    self.fail_here(FailureCode::BadProof, None, msg);
                }
                self.inclusion = self
                    .hashes_line(line, "inclusion")
                    .map(|(i, h)| (i, h, self.line_no));
                self.inclusion_offset = self.offset;
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
                self.fail_here(FailureCode::UnknownRecord, None, msg);
            }
        }
    }

    pub(super) fn hashes_line(&mut self, line: &[u8], word: &str) -> Option<(u64, Vec<Hash>)> {
        let text = std::str::from_utf8(line).ok();
        let parsed = text.and_then(|t| {
            let mut parts = t.split(' ').skip(1);
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
                FailureCode::BadProof,
                None,
                format!(
                    "line {}: malformed {word} record (expected \"{word} N\" and base64 hashes)",
                    self.line_no
                ),
            );
        }
        parsed
    }

    pub(super) fn range_line(&mut self, line: &[u8]) {
        // docs/FORMAT.md 7.3: one range record, before every entry and checkpoint.
        if self.kind != ExportKind::Range
            || self.range_seen
            || self.entries > 0
            || self.checkpoints_total > 0
        {
            let why = if self.range_seen && self.kind == ExportKind::Range {
                "a second range record; a range export has one, at its start"
            } else {
                "a range record belongs only at the start of a range export"
            };
            let msg = format!("line {}: {why}", self.line_no);
            self.fail_here(FailureCode::UnknownRecord, None, msg);
            return;
        }
        self.range_seen = true;
        let Some((start, left)) = self.hashes_line(line, "range") else {
            self.tree_broken = true;
            return;
        };
        match CompactRange::from_left_hashes(start, &left) {
            Ok(r) => {
                self.tree = r;
                self.start = start;
                self.position = start;
                // The left hashes alone give the tree of size `start`: an
                // earlier trusted checkpoint of that size is compared here
                // (no entry will bring the position to it).
                self.check_trusted_at_size();
            }
            Err(e) => {
                self.fail_here(
                    FailureCode::BadProof,
                    None,
                    format!("line {}: range record for start {start}: {e}", self.line_no),
                );
                self.tree_broken = true;
                self.start = start;
                self.position = start;
            }
        }
    }

    pub(super) fn push_tlog(&mut self, chunk: &[u8]) {
        if self.tlog.len() + chunk.len() > MAX_TLOG_PROOF_BYTES {
            if self.tlog.len() <= MAX_TLOG_PROOF_BYTES {
                self.fail(
                    FailureCode::BadProof,
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
}

impl<S: EntrySink> StreamVerifier<S> {
    /// The input is not a Stele export: one `not_a_log` failure (replacing
    /// any found on the way, such as a byte order mark), the rest ignored.
    #[cold]
    #[inline(never)]
    pub(super) fn not_a_log(&mut self, first_line: Option<&[u8]>) {
        let (found, hint) = sniff::sniff(&self.head, first_line);
        self.failures.clear();
        self.failures_total = 0;
        self.notices.clear();
        self.state = State::NotALog;
        self.fail(
            FailureCode::NotALog,
            None,
            1,
            0,
            None,
            Some(found.to_string()),
            format!("not a Stele export ({found}): {hint}"),
        );
    }
}
