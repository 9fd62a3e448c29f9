//! Differential: the same bytes verified in one piece, one byte at a time,
//! with entry summaries collected, and with only one failure kept, must reach
//! the same verdict, failure count and tree size; the first failure kept is
//! the same; the one-piece and byte-at-a-time reports are identical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_core::verify::{StreamVerifier, verify_bytes};

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let whole = verify_bytes(options(false), data);
    check_report(&whole, data.len());
    let mut s = StreamVerifier::new(options(false));
    for b in data {
        s.push(std::slice::from_ref(b));
    }
    assert_eq!(s.finish(), whole, "byte-at-a-time differs");
    let mut o = options(false);
    o.collect_entries = true;
    let mut s = StreamVerifier::new(o);
    s.push(data);
    let entries = s.take_entries();
    let collected = s.finish();
    assert_eq!(collected, whole, "collect_entries changes the report");
    assert!(entries.len() as u64 <= whole.entries);
    let mut o = options(false);
    o.max_failures = 1;
    let one = verify_bytes(o, data);
    assert_eq!(one.verdict, whole.verdict);
    assert_eq!(one.failures_total, whole.failures_total);
    assert_eq!(one.tree_size, whole.tree_size);
    assert_eq!(one.failures.first(), whole.failures.first());
});
