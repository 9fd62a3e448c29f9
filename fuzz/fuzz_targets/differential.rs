//! Differential: the same bytes verified in one piece, one byte at a time,
//! with an entry sink, and with only one failure kept, must reach
//! the same verdict, failure count and tree size; the first failure kept is
//! the same; the one-piece and byte-at-a-time reports are identical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_core::entry::ParsedEntry;
use stele_core::verify::{EntrySink, StreamVerifier, verify_bytes};

/// Counts the entry lines handed to the sink.
struct Count(u64);

impl EntrySink for Count {
    fn entry(&mut self, _: Option<&ParsedEntry<'_>>, _: u64, _: u64, _: u64) {
        self.0 += 1;
    }
}

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let whole = verify_bytes(options(false), data);
    check_report(&whole, data.len());
    let mut s = StreamVerifier::new(options(false));
    for b in data {
        s.push(std::slice::from_ref(b));
    }
    assert_eq!(s.finish(), whole, "byte-at-a-time differs");
    let mut s = StreamVerifier::with_sink(options(false), Count(0));
    s.push(data);
    let entries = s.sink_mut().0;
    let collected = s.finish();
    assert_eq!(collected, whole, "an entry sink changes the report");
    assert!(entries <= whole.entries);
    let mut o = options(false);
    o.max_failures = 1;
    let one = verify_bytes(o, data);
    assert_eq!(one.verdict, whole.verdict);
    assert_eq!(one.failures_total, whole.failures_total);
    assert_eq!(one.tree_size, whole.tree_size);
    assert_eq!(one.failures.first(), whole.failures.first());
});
