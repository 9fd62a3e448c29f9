//! A range export learns its origin only from its checkpoint, after the
//! entries (docs/FORMAT.md 7.3), so a verifier with an identity holds the
//! openings back until then, at most `MAX_DEFERRED` of them (13.8). A valid
//! export with more openings than that verifies: the ones beyond the bound
//! stay sealed with the notice `openings_unchecked`, never a failure.

use std::sync::Arc;
use stele_core::sealed::{
    DataKey, KeyId, MAX_DEFERRED, MAX_DEFERRED_BYTES, Opener, OpenerHandle, Placeholder, SALT_LEN,
    commitment, opening_plaintext,
};
use stele_core::verify::{Options, verify_bytes};
use stele_tests::TestLog;

const SALT: [u8; SALT_LEN] = [7; SALT_LEN];
const VALUE: &[u8] = b"\"alice\"";

/// Opens every wrap and every opening to `VALUE` (the AEAD is not the
/// point here: the bound is).
struct OpensAll;
impl Opener for OpensAll {
    fn unwrap_key(&self, _: &[u8], _: &mut u32) -> Option<DataKey> {
        Some([9; 32])
    }
    fn decrypt(&self, _: &DataKey, _: &[u8], _: &[u8]) -> Option<Vec<u8>> {
        Some(opening_plaintext(&SALT, VALUE))
    }
}

// A range export of `n` entries, each with an opening of `sealed` (base64)
// for "/ip", and the options that open them all.
fn range_with_openings(n: u64, sealed: &str) -> (Options, String) {
    let key = KeyId([0xab; 16]);
    let ph = Placeholder {
        commitment: commitment(&SALT, VALUE),
        key,
    };
    let mut log = TestLog::new("example.com/sealed-range", 5);
    for _ in 0..n {
        log.append(serde_json::json!({"action": "read", "ip": ph.to_value()}));
    }
    let _ = log.checkpoint();
    // Entries 1..=n (no genesis: the origin comes with the checkpoint at the end).
    let plain = log.export_range(1, n + 1);
    let mut file = String::with_capacity(plain.len() * 2);
    for (i, line) in plain.lines().enumerate() {
        file.push_str(line);
        file.push('\n');
        if i == 0 {
            file.push_str(&format!("sealed-key {key} YWdl\n"));
        } else if line.starts_with('{') {
            let seq: u64 = serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"]
                .as_u64()
                .unwrap();
            file.push_str(&format!("opening {seq} {sealed} \"/ip\"\n"));
        }
    }
    let mut opts = Options::new(vec![log.key()]);
    opts.opener = Some(OpenerHandle(Arc::new(OpensAll)));
    (opts, file)
}

#[test]
fn a_range_export_with_more_openings_than_the_bound_verifies_with_an_identity() {
    let extra = 3u64;
    let n = MAX_DEFERRED as u64 + extra;
    let sealed = format!("{}==", "A".repeat(54)); // 40 bytes: a nonce and a tag
    let (opts, file) = range_with_openings(n, &sealed);
    let key = opts.keys[0].clone();
    let r = verify_bytes(opts, file.as_bytes());
    assert!(r.failures.is_empty(), "{:?}", &r.failures[..1]);
    assert_eq!(r.verdict.as_str(), "verified");
    let c = r.sealed.expect("sealed counts");
    assert_eq!(
        (c.values, c.opened, c.sealed),
        (n, MAX_DEFERRED as u64, extra)
    );
    let notice = r
        .notices
        .iter()
        .find(|x| x.code.as_str() == "openings_unchecked")
        .expect("the notice");
    assert!(
        notice.message.starts_with(&format!("{extra} openings")),
        "{}",
        notice.message
    );
    // Without an identity nothing is held back: no notice.
    let r = verify_bytes(Options::new(vec![key]), file.as_bytes());
    assert_eq!(r.verdict.as_str(), "verified");
    assert!(
        r.notices
            .iter()
            .all(|x| x.code.as_str() != "openings_unchecked")
    );
}

// The bound is in bytes too: 100,000 openings of a line's length each held
// gigabytes (an attacker's review: 5,000 of 48 KB took 305 MB).
#[test]
fn held_back_openings_are_bounded_in_bytes() {
    let sealed = "A".repeat(40_000); // 30,000 bytes each
    let per = 30_000 + "/ip".len();
    let held = (MAX_DEFERRED_BYTES / per) as u64;
    let extra = 5u64;
    let (opts, file) = range_with_openings(held + extra, &sealed);
    let r = verify_bytes(opts, file.as_bytes());
    assert!(r.failures.is_empty(), "{:?}", &r.failures[..1]);
    assert_eq!(r.verdict.as_str(), "verified");
    let c = r.sealed.expect("sealed counts");
    assert_eq!((c.opened, c.sealed), (held, extra));
    assert!(
        r.notices
            .iter()
            .any(|x| x.code.as_str() == "openings_unchecked"
                && x.message.starts_with(&format!("{extra} openings")))
    );
}
