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
    ];
    for (data, expect) in cases {
        for chunk in [7, 4096] {
            let key = get(expect, "key: ")[0].to_string();
            let mut v = TsaVerifier::new(vec![key], CA, None, None).unwrap();
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
    assert!(TsaVerifier::new(vec![], b"hello", None, None).is_err());
}
