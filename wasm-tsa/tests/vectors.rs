//! The shared timestamp vectors (tests/vectors/timestamps) through the wasm
//! module, in Node: the verdicts and failure codes of the `.expect` files,
//! as the native tests (writer/tests/timestamps.rs) check them.
#![cfg(target_arch = "wasm32")]

use serde_json::Value;
use stele_wasm_tsa::TsaVerifier;
use wasm_bindgen_test::wasm_bindgen_test;

const CA: &[u8] = include_bytes!("../../tests/vectors/timestamps/ca.pem");

macro_rules! vector {
    ($name:literal) => {
        (
            include_bytes!(concat!("../../tests/vectors/timestamps/", $name, ".stele")).as_slice(),
            include_str!(concat!("../../tests/vectors/timestamps/", $name, ".expect")),
        )
    };
}

fn get<'a>(expect: &'a str, k: &str) -> Vec<&'a str> {
    expect.lines().filter_map(|l| l.strip_prefix(k)).collect()
}

#[wasm_bindgen_test]
fn timestamp_vectors_give_the_native_verdicts() {
    let cases = [
        vector!("timestamp-valid"),
        vector!("timestamp-wrong-imprint"),
        vector!("timestamp-other-checkpoint"),
        vector!("timestamp-wrong-certificate"),
        vector!("timestamp-no-eku"),
        vector!("timestamp-expired"),
        vector!("timestamp-truncated"),
        vector!("timestamp-duplicate-certificate"),
    ];
    for (data, expect) in cases {
        for chunk in [7, 4096] {
            let key = get(expect, "key: ")[0].to_string();
            let mut v = TsaVerifier::new(vec![key], CA, None, None, None).unwrap();
            for c in data.chunks(chunk) {
                v.push(c);
            }
            let out: Value = serde_json::from_str(&v.finish()).unwrap();
            let r = &out["report"];
            assert_eq!(r["verdict"], get(expect, "verdict: ")[0], "{expect}");
            let codes: Vec<String> = r["failures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| format!("{} -", f["code"].as_str().unwrap()))
                .collect();
            assert_eq!(codes, get(expect, "failure: "), "{expect}");
            assert_eq!(r["timestamps"].as_array().unwrap().len(), 2);
        }
    }
}

#[wasm_bindgen_test]
fn a_file_that_is_not_a_certificate_is_refused() {
    assert!(TsaVerifier::new(vec![], b"hello", None, None, None).is_err());
}

/// The rotated vector (tests/vectors/timestamps/timestamp-rotated): a key
/// rotation, a token on a checkpoint of each key and a witness quorum, all
/// in one verification here (the page gives this module the TSA
/// certificate, the witness policy and the revocations together), with the
/// verdicts of the native test (writer/tests/timestamps.rs).
#[wasm_bindgen_test]
fn a_rotated_anchored_witnessed_export_with_policy_and_revocations() {
    let (data, expect) = vector!("timestamp-rotated");
    let policy = include_str!("../../tests/vectors/timestamps/witness.policy");
    let key = get(expect, "key: ")[0].to_string();
    let run = |policy: Option<String>, revoked: Vec<String>| {
        let mut v = TsaVerifier::new(vec![key.clone()], CA, None, None, policy).unwrap();
        v.set_revoked(revoked).unwrap();
        v.push(data);
        let out: Value = serde_json::from_str(&v.finish()).unwrap();
        out["report"].clone()
    };
    let r = run(Some(policy.into()), vec![]);
    assert_eq!(r["verdict"], get(expect, "verdict: ")[0], "{r}");
    assert_eq!(r["quorum"]["met"], true, "{r}");
    assert_eq!(r["keys"].as_array().unwrap().len(), 2, "{r}");
    let sizes: Vec<String> = r["timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["status"], "ok", "{t}");
            t["size"].to_string()
        })
        .collect();
    assert_eq!(sizes.join(" "), get(expect, "timestamps: ")[0]);
    // All three witnesses required: unmet, the tokens still check out.
    let r = run(
        Some(policy.replace("two-of-three 2 ", "two-of-three 3 ")),
        vec![],
    );
    assert_eq!(r["verdict"], "tampered", "{r}");
    assert_eq!(r["quorum"]["met"], false, "{r}");
    assert_eq!(r["failures"][0]["code"], "quorum_not_met", "{r}");
    // The new key revoked from size 5: its checkpoint of size 5 fails.
    let new_key = r["keys"][1]["key"].as_str().unwrap().to_string();
    let r = run(None, vec![format!("{new_key}@5")]);
    assert_eq!(r["verdict"], "tampered", "{r}");
    let codes: Vec<&str> = r["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["key_revoked"], "{r}");
    // Not VKEY@SIZE: refused.
    let mut v = TsaVerifier::new(vec![key.clone()], CA, None, None, None).unwrap();
    assert!(v.set_revoked(vec![key.clone()]).is_err());
    // A policy that does not parse: refused.
    assert!(TsaVerifier::new(vec![key.clone()], CA, None, None, Some("quorum".into())).is_err());
}
