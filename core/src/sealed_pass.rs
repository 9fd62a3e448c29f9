//! The opening pass (FORMAT 13.8 steps 1 to 6, alone): reads an export for
//! its sealed values only, after a full verification of the same bytes by a
//! verifier that accepts sealed records unread (the page's plain verifier,
//! built without the `sealed` feature). It checks every placeholder and
//! sealed record exactly as [`StreamVerifier`](crate::StreamVerifier) does
//! with an opener (the work is [`SealChecker`]'s in both), without redoing
//! the chain, the tree and the signatures; its failures are added to that
//! verification's report.
//!
//! ```text
//! let mut p = OpeningPass::new(Some("example.com/log"), opener);
//! p.push(chunk); p.take_states();   // [(entry, pointer, opened/sealed/…)]
//! let out = p.finish();             // failures (bad_sealed, opening_mismatch) and counts
//! ```
//!
//! An entry's index is its `seq`: in an export that verifies they are equal
//! (section 8), and one that does not is already `tampered`.

use crate::entry::{MAX_ENTRY_BYTES, parse_entry};
use crate::sealed::{OpenerHandle, SealChecker, SealFailure, SealedCounts, ValueState, is_record};
use crate::verify::Failure;

/// What the pass found: failures in file order (with line and offset, like
/// a report's) and the counts of FORMAT 13.8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassResult {
    /// Failures kept (the first `max_failures`).
    pub failures: Vec<Failure>,
    /// All failures, kept or not.
    pub failures_total: u64,
    /// The counts; `None` when the file has no placeholder and no sealed record.
    pub sealed: Option<SealedCounts>,
    /// Lines read (after [`OpeningPass::resume_at`]: since that offset).
    pub lines: u64,
}

/// A streaming opening pass over one export.
#[derive(Debug)]
pub struct OpeningPass {
    seal: SealChecker,
    partial: Vec<u8>,
    skipping: bool,
    line_no: u64,
    offset: u64,
    failures: Vec<Failure>,
    failures_total: u64,
    max_failures: usize,
}

impl OpeningPass {
    /// A pass over an export of the log `origin` (from the verification's
    /// report), opening values with `opener`. Without an origin nothing can
    /// be opened (the associated data binds it): every value stays sealed,
    /// and the records are still checked.
    pub fn new(origin: Option<&str>, opener: OpenerHandle) -> Self {
        let mut seal = SealChecker::new(Some(opener));
        if let Some(o) = origin {
            let _ = seal.set_origin(o); // nothing is held back yet
        }
        seal.collect_states(true);
        Self {
            seal,
            partial: Vec::new(),
            skipping: false,
            line_no: 0,
            offset: 0,
            failures: Vec::new(),
            failures_total: 0,
            max_failures: crate::verify::Options::new(Vec::new()).max_failures,
        }
    }

    /// Feeds the next bytes of the file (any chunking).
    pub fn push(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            let Some(n) = memchr::memchr(b'\n', chunk) else {
                self.keep(chunk);
                return;
            };
            let (head, rest) = chunk.split_at(n);
            chunk = &rest[1..];
            if self.skipping {
                self.skipping = false;
                self.partial.clear();
                self.other(head.len());
            } else if self.partial.is_empty() {
                self.line(head);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                if line.len() > MAX_ENTRY_BYTES {
                    self.other(line.len());
                } else {
                    self.line(&line);
                }
                line.clear();
                self.partial = line;
            }
        }
    }

    // A line never longer than an entry is held; a longer one is read past
    // (the verification reports it).
    fn keep(&mut self, part: &[u8]) {
        if self.skipping {
            return;
        }
        if self.partial.len() + part.len() > MAX_ENTRY_BYTES {
            self.skipping = true;
            self.partial.clear();
            return;
        }
        self.partial.extend_from_slice(part);
    }

    fn other(&mut self, len: usize) {
        self.seal.other();
        self.advance(len);
    }

    fn advance(&mut self, len: usize) {
        self.line_no += 1;
        self.offset += len as u64 + 1;
    }

    fn line(&mut self, line: &[u8]) {
        let at = (self.line_no + 1, self.offset);
        let fs = if is_record(line) {
            self.seal.record(line)
        } else if line.first() == Some(&b'{') {
            match parse_entry(line) {
                // The event's bytes: parse_entry checked they are UTF-8
                // (event_json() would check it again).
                Ok(p) => self.seal.entry(p.seq, Some(&p.line[p.event.0..p.event.1])),
                Err(_) => {
                    self.seal.other();
                    Vec::new()
                }
            }
        } else {
            self.seal.other();
            Vec::new()
        };
        self.advance(line.len());
        self.fail(fs, at);
    }

    fn fail(&mut self, fs: Vec<SealFailure>, (line, offset): (u64, u64)) {
        for f in fs {
            self.failures_total += 1;
            if self.failures.len() < self.max_failures {
                self.failures.push(Failure {
                    code: f.code,
                    entry: f.entry,
                    range: None,
                    line,
                    offset,
                    expected: None,
                    found: None,
                    message: f.message,
                    cause: None,
                });
            }
        }
    }

    /// Splits the work (the page runs the parts in parallel): a pass that
    /// has read the lines before the file's first entry line (its key
    /// records, which every part needs) continues at `offset`, the start
    /// of a later entry line (a line starting with `{`, FORMAT 7.1); the
    /// bytes from there on are pushed next. What it found so far is
    /// dropped (the part that reads the file from its start reports it),
    /// key records from `offset` on are misplaced as after any entry, and
    /// failures' `line` counts from `offset` (its line is 1): add the lines
    /// before `offset`. The parts' values, counts and failures, in file
    /// order, are one pass's. An error (and nothing changes) when this pass
    /// has read an entry or stands inside a line.
    pub fn resume_at(&mut self, offset: u64) -> Result<(), &'static str> {
        if !self.partial.is_empty() || self.skipping {
            return Err("the pass stands inside a line");
        }
        if !self.seal.skip_to_later_entry() {
            return Err("the pass has already read an entry");
        }
        let _ = self.seal.take_states();
        self.failures.clear();
        self.failures_total = 0;
        self.line_no = 0;
        self.offset = offset;
        Ok(())
    }

    /// The wraps of each key ID not unwrapped yet
    /// ([`SealChecker::pending_wraps`]): after the key records, before the
    /// entries, every key ID's.
    pub fn pending_wraps(&self) -> impl Iterator<Item = &[Vec<u8>]> {
        self.seal.pending_wraps()
    }

    /// Whether each value's state is kept for [`OpeningPass::take_states`]
    /// (on from [`OpeningPass::new`]). Off, the pass keeps counts and
    /// failures only: a pass whose values are not listed (the page's pass
    /// over a file it keeps as pages, which opens a page's values again
    /// when it shows them) no longer makes a state, and the text of the
    /// states, for every value only to drop it.
    pub fn list_values(&mut self, on: bool) {
        self.seal.collect_states(on);
    }

    /// Sealed values settled since the last call: `(entry, pointer, state)`.
    pub fn take_states(&mut self) -> Vec<(u64, String, ValueState)> {
        self.seal.take_states()
    }

    /// Ends the stream (a last line without `\n` is read like the
    /// verifier reads it) and settles every value.
    pub fn finish(&mut self) -> PassResult {
        if !self.partial.is_empty() && !self.skipping {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
        let sealed = self.seal.active().then(|| self.seal.finish());
        PassResult {
            failures: std::mem::take(&mut self.failures),
            failures_total: self.failures_total,
            sealed,
            lines: self.line_no,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::{DataKey, Opener};
    use std::sync::Arc;

    struct NoKeys;
    impl Opener for NoKeys {
        fn unwrap_key(&self, _: &[u8], _: &mut u32) -> Option<DataKey> {
            None
        }
        fn decrypt(&self, _: &DataKey, _: &[u8], _: &[u8]) -> Option<Vec<u8>> {
            None
        }
    }

    #[test]
    fn misplaced_records_fail_with_their_line_at_any_chunking() {
        let ph = r#"{"stele.sealed":{"commitment":"0000000000000000000000000000000000000000000000000000000000000000","key":"00000000000000000000000000000000"}}"#;
        let entry = format!(
            "{{\"event\":{{\"ip\":{ph}}},\"prev\":\"{}\",\"seq\":1,\"ts\":\"2026-11-26T09:00:00.000000Z\"}}",
            "0".repeat(64)
        );
        let file =
            format!("stele-export v1 log\n{entry}\nredacted 2 \"/ip\"\nredacted 1 \"/ip\"\n");
        for size in [1, 7, file.len()] {
            let mut p = OpeningPass::new(Some("o"), OpenerHandle(Arc::new(NoKeys)));
            for c in file.as_bytes().chunks(size) {
                p.push(c);
            }
            let r = p.finish();
            assert_eq!(r.failures_total, 1, "{r:?}");
            assert_eq!(r.failures[0].line, 3);
            assert_eq!(r.failures[0].offset, 20 + entry.len() as u64 + 1);
            assert_eq!(r.failures[0].entry, Some(2));
            assert_eq!(r.sealed.unwrap().redacted, 1);
        }
    }

    // One pass over `file`, or two parts split at `split` (the second reads
    // the lines before `head` then resumes): values, counts and failures
    // (line made absolute) in file order.
    type Found = (
        Vec<(u64, String, ValueState)>,
        Option<SealedCounts>,
        Vec<Failure>,
        u64,
    );
    fn one_pass(file: &[u8]) -> Found {
        let mut p = OpeningPass::new(Some("o"), OpenerHandle(Arc::new(NoKeys)));
        p.push(file);
        let r = p.finish();
        (p.take_states(), r.sealed, r.failures, r.failures_total)
    }
    fn split_pass(file: &[u8], head: usize, split: usize) -> Found {
        let mut a = OpeningPass::new(Some("o"), OpenerHandle(Arc::new(NoKeys)));
        a.push(&file[..split]);
        let ra = a.finish();
        let mut b = OpeningPass::new(Some("o"), OpenerHandle(Arc::new(NoKeys)));
        b.push(&file[..head]);
        b.resume_at(split as u64).unwrap();
        b.push(&file[split..]);
        let rb = b.finish();
        let mut states = a.take_states();
        states.extend(b.take_states());
        let counts = match (ra.sealed, rb.sealed) {
            (Some(x), Some(y)) => Some(SealedCounts {
                values: x.values + y.values,
                opened: x.opened + y.opened,
                sealed: x.sealed + y.sealed,
                forgotten: x.forgotten + y.forgotten,
                redacted: x.redacted + y.redacted,
            }),
            (x, y) => x.or(y),
        };
        let mut failures = ra.failures;
        failures.extend(rb.failures.into_iter().map(|mut f| {
            f.line += ra.lines;
            f
        }));
        (
            states,
            counts,
            failures,
            ra.failures_total + rb.failures_total,
        )
    }

    // Not listing the values changes nothing else: the same counts and
    // failures, and no state is kept.
    #[test]
    fn a_pass_that_lists_no_value_counts_the_same() {
        let ph = |c: char| {
            format!(
                r#"{{"stele.sealed":{{"commitment":"{}","key":"{}"}}}}"#,
                "0".repeat(64),
                c.to_string().repeat(32)
            )
        };
        let entry = |seq: u64, event: &str| {
            format!(
                "{{\"event\":{event},\"prev\":\"{}\",\"seq\":{seq},\"ts\":\"2026-11-26T09:00:00.000000Z\"}}\n",
                "0".repeat(64)
            )
        };
        let mut file = format!("stele-export v1 log\nforgotten {}\n", "f".repeat(32));
        file += &entry(0, &format!("{{\"ip\":{},\"x\":{}}}", ph('a'), ph('f')));
        file += "redacted 0 \"/ip\"\nredacted 0 \"/ip\"\n";
        file += &entry(1, &format!("{{\"ip\":{}}}", ph('a')));
        let run = |list: bool| {
            let mut p = OpeningPass::new(Some("o"), OpenerHandle(Arc::new(NoKeys)));
            p.list_values(list);
            let mut states = Vec::new();
            for c in file.as_bytes().chunks(50) {
                p.push(c);
                states.extend(p.take_states());
            }
            let r = p.finish();
            states.extend(p.take_states());
            (states, r)
        };
        let (listed, a) = run(true);
        let (none, b) = run(false);
        assert_eq!(listed.len(), 3);
        assert!(none.is_empty(), "{none:?}");
        assert_eq!(a, b);
        let c = b.sealed.unwrap();
        assert_eq!((c.values, c.redacted, c.forgotten, c.sealed), (3, 1, 1, 1));
        assert_eq!(b.failures_total, 1, "{:?}", b.failures); // the second redacted record
    }

    #[test]
    fn a_pass_split_at_any_entry_line_finds_what_one_pass_finds() {
        let key = "0".repeat(32);
        let ph = format!(
            r#"{{"stele.sealed":{{"commitment":"{}","key":"{key}"}}}}"#,
            "0".repeat(64)
        );
        let entry = |seq: u64, event: &str| {
            format!(
                "{{\"event\":{event},\"prev\":\"{}\",\"seq\":{seq},\"ts\":\"2026-11-26T09:00:00.000000Z\"}}\n",
                "0".repeat(64)
            )
        };
        let bad_ph = r#"{"stele.sealed":{"key":"x"}}"#;
        let mut file = format!(
            "stele-export v1 log\nsealed-key {key} YWdl\nforgotten {}\nopening 0 AAAA \"/ip\"\n",
            "1".repeat(32)
        );
        let head = file.len();
        file += &entry(0, &format!("{{\"ip\":{ph},\"x\":[{ph}]}}"));
        file += "redacted 0 \"/ip\"\n";
        file += &entry(1, &format!("{{\"ip\":{ph}}}"));
        file += "redacted 0 \"/ip\"\nredacted 1 \"/ip\"\nredacted 1 \"/ip\"\n";
        file += &format!("sealed-key {key} YWdl\n");
        file += &entry(2, &format!("{{\"bad\":{bad_ph}}}"));
        file += "checkpoint\nnot a note\n\n";
        file += "redacted 2 \"/bad\"\n";
        file += &entry(3, &format!("{{\"a\":{{\"b\":{ph}}}}}"));
        file += "opening 3 !!!! \"/a/b\"\nredacted 3 \"/a/b\"\n";
        let whole = one_pass(file.as_bytes());
        assert!(whole.3 >= 5, "{:?}", whole.2);
        assert_eq!(whole.1.unwrap().values, 4); // entry 2's placeholder is malformed
        let splits: Vec<usize> = file
            .match_indices("\n{")
            .map(|(i, _)| i + 1)
            .filter(|&i| i > head)
            .collect();
        assert_eq!(splits.len(), 3);
        for split in splits {
            assert_eq!(
                split_pass(file.as_bytes(), head, split),
                whole,
                "split at {split}"
            );
        }
        // Only at a line's start, before any entry.
        let mut p = OpeningPass::new(Some("o"), OpenerHandle(Arc::new(NoKeys)));
        p.push(&file.as_bytes()[..head + 3]);
        assert!(p.resume_at(0).is_err());
        let mut p = OpeningPass::new(Some("o"), OpenerHandle(Arc::new(NoKeys)));
        p.push(&file.as_bytes()[..head]);
        p.push(entry(5, "{}").as_bytes());
        assert!(p.resume_at(0).is_err());
    }

    // An opener whose data key is its wrap's first byte, repeated, and
    // that decrypts a ciphertext starting with that byte to `salt || 1`.
    struct ByFirstByte;
    impl Opener for ByFirstByte {
        fn unwrap_key(&self, wrap: &[u8], _: &mut u32) -> Option<DataKey> {
            Some([*wrap.first()?; 32])
        }
        fn decrypt(&self, key: &DataKey, sealed: &[u8], _: &[u8]) -> Option<Vec<u8>> {
            (sealed.first() == Some(&key[0]))
                .then(|| crate::sealed::opening_plaintext(&[0; 16], b"1"))
        }
    }

    // Values of one entry under two keys, interleaved: each opens with its
    // own key, each key unwrapped once.
    #[test]
    fn an_entrys_values_under_different_keys_each_open_with_theirs() {
        let c = crate::sealed::commitment(&[0; 16], b"1").to_hex();
        let (a, b) = ("a".repeat(32), "b".repeat(32));
        let ph = |key: &str| format!(r#"{{"stele.sealed":{{"commitment":"{c}","key":"{key}"}}}}"#);
        let sealed = |k: u8| crate::b64::encode(&[k; 40]);
        let mut file = format!("stele-export v1 log\nsealed-key {a} AQ==\nsealed-key {b} Ag==\n");
        file += &format!(
            "{{\"event\":{{\"p\":{},\"q\":{},\"r\":{},\"s\":{}}},\"prev\":\"{}\",\"seq\":0,\"ts\":\"2026-11-26T09:00:00.000000Z\"}}\n",
            ph(&a),
            ph(&b),
            ph(&a),
            ph(&b),
            "0".repeat(64)
        );
        for (p, k) in [("/p", 1), ("/q", 2), ("/r", 1), ("/s", 1)] {
            file += &format!("opening 0 {} \"{p}\"\n", sealed(k));
        }
        let mut p = OpeningPass::new(Some("o"), OpenerHandle(Arc::new(ByFirstByte)));
        p.push(file.as_bytes());
        let r = p.finish();
        let c = r.sealed.unwrap();
        // "/s" is under key b: its ciphertext for key a does not decrypt.
        assert_eq!((c.values, c.opened), (4, 3), "{:?}", r.failures);
        assert_eq!(r.failures.len(), 1);
        assert!(r.failures[0].message.contains("\"/s\""), "{:?}", r.failures);
        assert_eq!(p.seal.keys_unwrapped(), 2);
    }

    // An opener that opens nothing and counts: the wraps it was asked to
    // unwrap, and the X25519 stanzas it tried (each wrap holding `stanzas`,
    // taken from the budget as stele-seal does).
    struct Counting {
        stanzas: u32,
        wraps: std::sync::atomic::AtomicU64,
        tried: std::sync::atomic::AtomicU64,
    }
    impl Opener for Counting {
        fn unwrap_key(&self, _: &[u8], budget: &mut u32) -> Option<DataKey> {
            use std::sync::atomic::Ordering::Relaxed;
            let n = self.stanzas.min(*budget);
            *budget -= n;
            let _ = self.wraps.fetch_add(1, Relaxed);
            let _ = self.tried.fetch_add(u64::from(n), Relaxed);
            None
        }
        fn decrypt(&self, _: &DataKey, _: &[u8], _: &[u8]) -> Option<Vec<u8>> {
            None
        }
    }

    // The red team's finding: an export with many junk sealed-key records
    // made a verifier with an identity unwrap every new key ID's wrap, each
    // of its X25519 stanzas, (records x stanzas) X25519 operations. Now only
    // a key ID some value's opening needs is unwrapped, once, and at most
    // MAX_STANZAS_PER_KEY stanzas over all its wraps are tried.
    #[test]
    fn only_key_ids_an_opening_needs_are_unwrapped_within_a_stanza_budget() {
        use crate::sealed::{MAX_STANZAS_PER_KEY, MAX_WRAPS_PER_KEY};
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
        let used = "a".repeat(32);
        let ph = |key: &str| {
            format!(
                r#"{{"stele.sealed":{{"commitment":"{}","key":"{key}"}}}}"#,
                "0".repeat(64)
            )
        };
        let entry = |seq: u64, event: &str| {
            format!(
                "{{\"event\":{event},\"prev\":\"{}\",\"seq\":{seq},\"ts\":\"2026-11-26T09:00:00.000000Z\"}}\n",
                "0".repeat(64)
            )
        };
        let mut file = String::from("stele-export v1 log\n");
        for i in 0..1000 {
            file += &format!("sealed-key {i:032x} YWdl\n");
        }
        for _ in 0..100 {
            file += &format!("sealed-key {used} YWdl\n");
        }
        // A value of a junk key without an opening: its key is not needed.
        let junk = format!("{:032x}", 7);
        file += &entry(0, &format!("{{\"ip\":{},\"x\":{}}}", ph(&used), ph(&junk)));
        let sealed = format!("{}==", "A".repeat(54)); // 40 bytes: a nonce and a tag
        file += &format!("opening 0 {sealed} \"/ip\"\n");
        file += &entry(1, &format!("{{\"ip\":{}}}", ph(&used)));
        file += &format!("opening 1 {sealed} \"/ip\"\n");
        for (stanzas, wraps) in [(3, 22), (1, MAX_WRAPS_PER_KEY as u64), (0, 64)] {
            let opener = Arc::new(Counting {
                stanzas,
                wraps: AtomicU64::new(0),
                tried: AtomicU64::new(0),
            });
            let mut p = OpeningPass::new(Some("o"), OpenerHandle(opener.clone()));
            p.push(file.as_bytes());
            let r = p.finish();
            assert_eq!(p.seal.keys_unwrapped(), 1, "{stanzas} stanzas a wrap");
            assert_eq!(
                opener.wraps.load(Relaxed),
                wraps,
                "{stanzas} stanzas a wrap"
            );
            assert_eq!(
                opener.tried.load(Relaxed),
                u64::from(MAX_STANZAS_PER_KEY.min(stanzas * 64)),
                "{stanzas} stanzas a wrap"
            );
            let c = r.sealed.unwrap();
            assert_eq!((c.values, c.sealed, c.opened), (3, 3, 0));
            assert!(r.failures.is_empty(), "{:?}", r.failures);
        }
    }
}
