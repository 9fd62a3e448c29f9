//! Sealed fields (FORMAT 13.8): the hooks between the stream and the
//! [`SealChecker`](crate::sealed::SealChecker), which does the work.

use super::*;
use crate::sealed::SealFailure;

impl<S: EntrySink> StreamVerifier<S> {
    /// A `sealed-key`, `forgotten`, `opening` or `redacted` record.
    pub(super) fn sealed_record(&mut self, line: &[u8]) {
        // A build without section 13 cannot say whether the records are
        // well formed: it says so, once, and never says `verified`.
        if !cfg!(feature = "sealed") && !self.sealed_unchecked {
            self.sealed_unchecked = true;
            self.notice(NoticeCode::SealedUnchecked, "the file has sealed-field records (section 13), and this verifier build does not check them: verify with one that does (the CLI, or the page's sealed module)".into());
        }
        self.seal_origin();
        let fs = self.seal.record(line);
        self.seal_failures(fs, self.line_no, self.offset);
    }

    /// An entry line at `index`, with its event JSON if the line parsed.
    pub(super) fn seal_entry(&mut self, index: u64, event: Option<&[u8]>, line: u64, offset: u64) {
        self.seal_origin();
        let fs = self.seal.entry(index, event);
        self.seal_failures(fs, line, offset);
    }

    /// Openings held back for want of the origin are checked once it is known.
    pub(super) fn seal_origin(&mut self) {
        // Borrowed, not cloned: this runs for every entry line, and the
        // checker ignores the origin once it has it (a clone a line was
        // ~1% of `stele verify`'s samples: malloc, copy, free).
        if let Some(o) = self.origin.as_deref() {
            let fs = self.seal.set_origin(o);
            self.seal_failures(fs, self.line_no, self.offset);
        }
    }

    fn seal_failures(&mut self, fs: Vec<SealFailure>, line: u64, offset: u64) {
        for f in fs {
            self.fail(f.code, f.entry, line, offset, None, None, f.message);
        }
    }
}

impl<S: EntrySink> StreamVerifier<S> {
    /// Keep each sealed value's final state (opened value, sealed,
    /// forgotten, redacted, mismatch) for [`StreamVerifier::take_sealed`].
    pub fn collect_sealed(&mut self) {
        self.seal.collect_states(true);
    }

    /// Sealed values settled since the last call: `(entry, pointer, state)`.
    /// A value is settled once the line after its entry's records is read;
    /// [`StreamVerifier::settle_sealed`] settles the rest at the end.
    pub fn take_sealed(&mut self) -> Vec<(u64, String, crate::sealed::ValueState)> {
        self.seal.take_states()
    }

    /// The log's origin, as a verification of the same bytes found it:
    /// openings are checked as their records come instead of being held
    /// back until the stream names the origin (a range export that does not
    /// start at entry 0 names it only in its checkpoint, at the end). Call
    /// before the first push.
    pub fn open_for_origin(&mut self, origin: &str) {
        let fs = self.seal.set_origin(origin);
        self.seal_failures(fs, self.line_no, self.offset);
    }

    /// Settles every sealed value read so far (call after the last push).
    pub fn settle_sealed(&mut self) {
        self.seal_origin();
        self.seal.other();
    }
}
