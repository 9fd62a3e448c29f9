//! The one trusted-checkpoint rule (`checkpoint::parse_trusted`) on any
//! bytes: never panics; what it accepts is trusted under the pinned key, and
//! the same text with CR LF line ends gives the same answer.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let keys = [vectors_key()];
    let r = stele_core::checkpoint::parse_trusted(data, &keys);
    if let Ok(sc) = &r {
        assert!(sc.verify(&keys).trusted());
    }
    if !data.contains(&b'\r') {
        let crlf: Vec<u8> = data
            .iter()
            .flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] })
            .collect();
        let r2 = stele_core::checkpoint::parse_trusted(&crlf, &keys);
        assert_eq!(r.is_ok(), r2.is_ok(), "CR LF changed the answer");
    }
    let _ = options(false);
    let _ = check_report;
});
