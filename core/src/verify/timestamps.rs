//! Timestamp records (FORMAT 16): bound to the checkpoint right before
//! them, checked by the caller's [`TokenChecker`](crate::timestamp::TokenChecker).

use super::*;
#[cfg(feature = "timestamps")]
use crate::timestamp::{TimestampRecord, TimestampReport};

impl<S: EntrySink> StreamVerifier<S> {
    /// Without the `timestamps` feature (the plain browser verifier): the
    /// record is skipped unread, and counted for the notice (FORMAT 16.7).
    #[cfg(not(feature = "timestamps"))]
    pub(super) fn timestamp_record(&mut self, _line: &[u8]) {
        self.timestamps_unchecked += 1;
    }

    /// A `timestamp` record (FORMAT 16.2, 16.3).
    #[cfg(feature = "timestamps")]
    pub(super) fn timestamp_record(&mut self, line: &[u8]) {
        let at = self.line_no;
        self.timestamps_total += 1;
        let Some(rec) = TimestampRecord::parse(line) else {
            let msg = format!(
                "line {at}: malformed timestamp record (expected \"timestamp N\" and the base64 of a DER token of at most {} bytes)",
                crate::timestamp::MAX_TOKEN_BYTES
            );
            return self.fail_here(FailureCode::BadTimestamp, None, msg);
        };
        let Some((size, imprint, cp_line)) = self.ts_target else {
            let msg = format!(
                "line {at}: a timestamp record for size {} that does not follow a checkpoint record",
                rec.size
            );
            return self.fail_here(FailureCode::BadTimestamp, None, msg);
        };
        let mut report = TimestampReport {
            size,
            line: at,
            status: "unchecked",
            time: None,
            tsa: None,
        };
        if rec.size != size {
            report.status = "failed";
            let (l, o) = (self.line_no, self.offset);
            self.fail(
                FailureCode::BadTimestamp,
                None,
                l,
                o,
                Some(format!("size {size}")),
                Some(format!("size {}", rec.size)),
                format!(
                    "checkpoint at line {cp_line} (size {size}): the timestamp record at line {at} names size {}",
                    rec.size
                ),
            );
        } else if let Some(checker) = self.opts.tsa.clone() {
            match self.ts_checked.check(&*checker.0, &rec.token, &imprint) {
                Ok(a) => {
                    report.status = "ok";
                    report.time = Some(a.time);
                    report.tsa = Some(a.tsa);
                }
                Err(e) => {
                    report.status = "failed";
                    let msg = format!(
                        "checkpoint at line {cp_line} (size {size}): timestamp token at line {at}: {}",
                        e.message
                    );
                    self.fail_here(e.problem.code(), None, msg);
                }
            }
        } else {
            self.timestamps_unchecked += 1;
        }
        if self.timestamps.len() < MAX_LISTED_CHECKPOINTS {
            self.timestamps.push(report);
        }
    }

    /// The notice for tokens left unchecked.
    pub(super) fn timestamps_end(&mut self) {
        let n = self.timestamps_unchecked;
        if n > 0 {
            let msg = format!(
                "{n} timestamp token{} not checked: no TSA certificate was given",
                if n == 1 { " was" } else { "s were" }
            );
            self.notice(NoticeCode::TimestampUnchecked, msg);
        }
    }
}
