// Shared by the targets (included with `include!`, so each target stays one file).
use stele_core::VerifierKey;
use stele_core::verify::{Options, Report, Verdict};

/// The key of the shared vectors (tests/vectors), so seeds with real
/// signatures reach the trusted-checkpoint paths.
pub fn vectors_key() -> VerifierKey {
    VerifierKey::parse(
        "example.com/stele-vectors+5575e202+ARl/ayPhbIUyxqvIOPrNXqeJvgx2spIDNAOb+os9No1h",
    )
    .expect("the vectors' key parses")
}

/// Options for the vectors' key; with `trusted`, the vectors' trusted checkpoint of size 15.
pub fn options(trusted: bool) -> Options {
    let mut o = Options::new(vec![vectors_key()]);
    if trusted {
        let t = include_bytes!("../../tests/vectors/rollback.trusted");
        o.trusted = Some(
            stele_core::checkpoint::parse_trusted(t, &o.keys)
                .expect("the vectors' trusted checkpoint")
                .checkpoint,
        );
    }
    o
}

/// Invariants every report keeps, whatever the input.
pub fn check_report(r: &Report, len: usize) {
    assert_eq!(r.bytes, len as u64, "bytes read");
    assert!(r.failures_total >= r.failures.len() as u64);
    assert!(r.notices.len() <= 100);
    match r.verdict {
        Verdict::Tampered => assert!(r.failures_total > 0),
        Verdict::Verified => {
            assert_eq!(r.failures_total, 0);
            assert!(r.key_id.is_some(), "verified without a key: {r:?}");
        }
        Verdict::Partial => {
            assert_eq!(r.failures_total, 0);
            assert!(r.key_id.is_some(), "partial without a key: {r:?}");
        }
        Verdict::Unverified => {
            assert_eq!(r.failures_total, 0);
            assert!(r.tree_size.is_none() || r.kind != "log", "{r:?}");
        }
        Verdict::NotALog => {
            assert_eq!(r.failures_total, 1, "{r:?}");
            assert_eq!(r.failures[0].code, stele_core::verify::FailureCode::NotALog);
            assert!(r.notices.is_empty());
        }
    }
    for f in &r.failures {
        assert!(!f.message.is_empty());
    }
    serde_json::to_string(r).expect("a report serializes");
}
