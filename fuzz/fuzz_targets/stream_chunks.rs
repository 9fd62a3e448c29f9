//! The streaming verifier fed random chunkings: the first 8 bytes seed the
//! chunk sizes (1 to 4,096 bytes, sometimes one byte at a time); the report
//! must equal the one-piece report and keep the report invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_core::verify::{StreamVerifier, verify_bytes};

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (seed, input) = data.split_at(8);
    let mut x = u64::from_le_bytes(seed.try_into().unwrap()) | 1;
    let trusted = x & 2 != 0;
    let whole = verify_bytes(options(trusted), input);
    check_report(&whole, input.len());
    let mut s = StreamVerifier::new(options(trusted));
    let mut rest = input;
    while !rest.is_empty() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = match x % 4 {
            0 => 1,
            1 => (x >> 8) as usize % 16 + 1,
            _ => (x >> 8) as usize % 4096 + 1,
        };
        let (a, b) = rest.split_at(n.min(rest.len()));
        s.push(a);
        rest = b;
    }
    assert_eq!(s.finish(), whole, "chunked report differs from the one-piece report");
});
