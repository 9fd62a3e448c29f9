//! Sealed fields (FORMAT 13): the record parser round-trips what it accepts;
//! placeholders, openings, identity files, recipients and age wraps never
//! panic on any bytes; and the verifier with an auditor's identity (the
//! vectors' `auditor.key`) gives a consistent report on any export, with
//! every sealed value counted once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use stele_core::sealed::{self, OpenerHandle, Placeholder, Record};
use stele_core::verify::verify_bytes;
use stele_seal::{AgeOpener, Identity};

include!("common.rs");

// Parsed once (a scalar multiplication per parse would halve the rate).
fn auditor() -> Identity {
    static ID: std::sync::OnceLock<Identity> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let text = include_str!("../../tests/vectors/sealed/auditor.key");
        Identity::parse_file(text).expect("the vectors' auditor key parses")[0].clone()
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    // The four records: what parses prints back to the same line.
    if sealed::is_record(rest) {
        if let Ok(r) = Record::parse(rest) {
            let line = r.to_line();
            assert_eq!(Record::parse(line.as_bytes()).as_ref(), Ok(&r), "record round trip");
        }
    }
    // Placeholders anywhere in a JSON value; an opening checked against each.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(rest) {
        if let Ok(found) = sealed::find_placeholders(&v) {
            for (p, ph) in found {
                assert!(p.starts_with('/'));
                assert_eq!(Placeholder::from_object(ph.to_value().as_object().unwrap()), Ok(ph));
                let _ = sealed::check_opening(&ph, rest);
            }
        }
    }
    // Keys and wraps.
    if let Ok(text) = std::str::from_utf8(rest) {
        if let Ok(ids) = Identity::parse_file(text) {
            for id in &ids {
                assert_eq!(Identity::parse(&id.to_secret_string()).map(|i| i.recipient()), Some(id.recipient()));
            }
        }
        if stele_seal::parse_recipient(text).is_ok() {
            assert!(text.starts_with("age1"));
        }
    }
    let id = auditor();
    let _ = id.unwrap(rest);
    let _ = stele_seal::open_opening(&[sel; 32], rest, b"ad");
    // The whole export, opened with the auditor's identity.
    let mut opts = options(sel & 0x80 != 0);
    opts.opener = Some(OpenerHandle(Arc::new(AgeOpener::new(vec![id]))));
    let r = verify_bytes(opts, rest);
    check_report(&r, rest.len());
    if let Some(s) = r.sealed {
        assert_eq!(s.opened + s.sealed + s.forgotten + s.redacted, s.values, "{s:?}");
    }
});
