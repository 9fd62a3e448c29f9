//! The key rotation vectors (tests/vectors/rotation-*, docs/FORMAT.md 15)
//! through the lazily loaded module, which the page uses for a log that
//! rotated its key (the plain verifier leaves rotation out and says
//! `rotation_unchecked`, wasm/tests/vectors.rs): the same verdicts, failure
//! codes and notices as core (tests/tests/vectors.rs). The rotation-revoked*
//! vectors are verified with their revocation (`setRevoked`) and every key
//! their `.expect` pins: the page verifies with this module whenever
//! revocations are given, as the plain one takes none.
#![cfg(target_arch = "wasm32")]

use stele_wasm_seal::SealedVerifier;
use wasm_bindgen_test::wasm_bindgen_test;

macro_rules! v {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../tests/vectors/", $name, ".stele")).as_slice(),
            include_str!(concat!("../../tests/vectors/", $name, ".expect")),
        )
    };
}

const VECTORS: &[(&str, &[u8], &str)] = &[
    v!("rotation-bad-event"),
    v!("rotation-pinned-new-key"),
    v!("rotation-range"),
    v!("rotation-retired-beyond-range"),
    v!("rotation-revoked"),
    v!("rotation-revoked-handover"),
    v!("rotation-revoked-successor-pinned"),
    v!("rotation-revoked-successor-unpinned"),
    v!("rotation-unsigned"),
    v!("rotation-valid"),
];

/// How a key rotation event appears in an entry line (canonical JSON).
const KEY_EVENT: &str = "\"type\":\"stele.key\"";

fn field<'a>(expect: &'a str, k: &'static str) -> impl Iterator<Item = &'a str> {
    expect
        .lines()
        .filter_map(move |l| l.strip_prefix(k))
        .map(str::trim)
}

#[wasm_bindgen_test]
fn rotation_vectors_give_the_same_verdicts_codes_and_key_history() {
    for (name, data, expect) in VECTORS {
        let keys: Vec<String> = field(expect, "key:").map(String::from).collect();
        let mut v = SealedVerifier::with_policy(keys, None, None, None)
            .unwrap_or_else(|_| panic!("{name}: verifier"));
        let revoked: Vec<String> = field(expect, "revoked:").map(String::from).collect();
        v.set_revoked(revoked)
            .unwrap_or_else(|_| panic!("{name}: revoked"));
        for chunk in data.chunks(997) {
            v.push(chunk);
        }
        let out: serde_json::Value = serde_json::from_str(&v.finish()).unwrap();
        let report = &out["report"];
        let verdict = field(expect, "verdict:").next().unwrap();
        assert_eq!(report["verdict"], verdict, "{name}: {report}");
        for f in field(expect, "failure:") {
            let (code, entry) = f.split_once(' ').unwrap();
            let entry: serde_json::Value = if entry == "-" {
                serde_json::Value::Null
            } else {
                entry.parse::<u64>().unwrap().into()
            };
            assert!(
                report["failures"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["code"] == code && x["entry"] == entry),
                "{name}: no {code} at {entry}: {report}"
            );
        }
        let notices = report["notices"].as_array().unwrap();
        for n in field(expect, "notice:") {
            assert!(
                notices.iter().any(|x| x["code"] == n),
                "{name}: no notice {n}"
            );
        }
        assert!(
            !notices.iter().any(|x| x["code"] == "rotation_unchecked"),
            "{name}: this module follows rotations"
        );
        // The report lists the key history (FORMAT 15.4) when the log
        // rotated its key (rotation-revoked's log did not).
        let rotated = data
            .windows(KEY_EVENT.len())
            .any(|w| w == KEY_EVENT.as_bytes());
        assert_eq!(
            report["keys"].as_array().is_some_and(|k| !k.is_empty()),
            rotated,
            "{name}: {report}"
        );
    }
}

/// Without its revocation the revoked vector verifies (its one key signs
/// every checkpoint): the revocation alone makes it tampered; and a
/// revocation that is not `VKEY@SIZE` is refused with core's message.
#[wasm_bindgen_test]
fn a_revocation_turns_the_revoked_keys_later_checkpoints_into_failures() {
    let (_, data, expect) = v!("rotation-revoked");
    let key = field(expect, "key:").next().unwrap().to_string();
    let mut v = SealedVerifier::with_policy(vec![key.clone()], None, None, None).unwrap();
    v.push(data);
    let out: serde_json::Value = serde_json::from_str(&v.finish()).unwrap();
    assert_eq!(out["report"]["verdict"], "verified", "{out}");
    let mut v = SealedVerifier::with_policy(vec![key.clone()], None, None, None).unwrap();
    let err = v.set_revoked(vec![key.clone()]).expect_err("no size");
    let core = stele_core::verify::parse_revoked(&key).expect_err("core refuses it");
    let shown = format!("{:?}", wasm_bindgen::JsValue::from(err));
    assert!(shown.contains(&core), "{shown} lacks {core}");
    // Too late once bytes were read.
    let mut v = SealedVerifier::with_policy(vec![key.clone()], None, None, None).unwrap();
    v.push(&data[..10]);
    assert!(v.set_revoked(vec![format!("{key}@16")]).is_err());
}
