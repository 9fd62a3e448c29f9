//! The witness vectors (tests/vectors/witness, docs/FORMAT.md 14) through
//! the lazily loaded module's `SealedVerifier.withPolicy` (the page verifies
//! with a policy there): the same verdicts, failure codes and quorum as core
//! (tests/tests/witness.rs) and the CLI.
#![cfg(target_arch = "wasm32")]

use stele_wasm_seal::SealedVerifier;
use wasm_bindgen_test::wasm_bindgen_test;

const POLICY: &str = include_str!("../../tests/vectors/witness/2-of-3.policy");

macro_rules! v {
    ($name:literal, $ext:literal) => {
        (
            $name,
            include_bytes!(concat!("../../tests/vectors/witness/", $name, ".", $ext)).as_slice(),
            include_str!(concat!("../../tests/vectors/witness/", $name, ".expect")),
        )
    };
}

const VECTORS: &[(&str, &[u8], &str)] = &[
    v!("bad-cosignature", "stele"),
    v!("entries-unmet", "stele"),
    v!("quorum-met", "stele"),
    v!("quorum-unmet", "stele"),
    v!("range", "stele"),
    v!("split-view", "stele"),
    v!("tlog-proof", "tlog-proof"),
    v!("unknown-witness-ignored", "stele"),
];

fn field<'a>(expect: &'a str, k: &'static str) -> impl Iterator<Item = &'a str> {
    expect
        .lines()
        .filter_map(move |l| l.strip_prefix(k))
        .map(str::trim)
}

#[wasm_bindgen_test]
fn witness_vectors_give_the_same_verdicts_and_quorum() {
    for (name, data, expect) in VECTORS {
        // No key: the policy's log line pins it.
        let mut v = SealedVerifier::with_policy(vec![], None, Some(POLICY.into()), None)
            .unwrap_or_else(|_| panic!("{name}: policy"));
        for chunk in data.chunks(997) {
            v.push(chunk);
        }
        let out: serde_json::Value = serde_json::from_str(&v.finish()).unwrap();
        let report = &out["report"];
        assert_eq!(
            report["verdict"],
            field(expect, "verdict:").next().unwrap(),
            "{name}: {report}"
        );
        for f in field(expect, "failure:") {
            let code = f.split(' ').next().unwrap();
            assert!(
                report["failures"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["code"] == code),
                "{name}: {code}"
            );
        }
        let met = field(expect, "quorum:").next() == Some("met");
        assert_eq!(report["quorum"]["met"], met, "{name}: {report}");
    }
}

#[wasm_bindgen_test]
fn a_bad_policy_is_refused_with_its_line() {
    assert!(
        SealedVerifier::with_policy(vec![], None, Some("witness a b\nquorum a\n".into()), None)
            .is_err()
    );
}
