//! The export reader: any bytes, read as each kind of file (the first byte
//! picks a header to put in front), never panic and always give a
//! consistent report; the C2SP tlog-proof parser never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_core::export::TlogProof;
use stele_core::verify::verify_bytes;

include!("common.rs");

const HEADERS: [&[u8]; 6] = [
    b"",
    b"stele-export v1 log\n",
    b"stele-export v1 range\n",
    b"stele-export v1 entries\n",
    b"c2sp.org/tlog-proof@v1\n",
    b"stele-export v1 log\n{\"event\":{\"key\":\"example.com/stele-vectors+5575e202+ARl/ayPhbIUyxqvIOPrNXqeJvgx2spIDNAOb+os9No1h\",\"origin\":\"example.com/stele-vectors\",\"type\":\"stele.genesis\"},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"seq\":0,\"ts\":\"2026-11-26T09:00:00.000123Z\"}\n",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let _ = TlogProof::parse(data);
    let mut input = HEADERS[sel as usize % HEADERS.len()].to_vec();
    input.extend_from_slice(rest);
    let r = verify_bytes(options(sel & 0x80 != 0), &input);
    check_report(&r, input.len());
});
