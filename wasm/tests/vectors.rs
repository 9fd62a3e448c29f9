//! The shared vectors through the wasm adapter, in Node: the same verdicts and
//! failure codes as the native verifier (tests/tests/vectors.rs).
#![cfg(target_arch = "wasm32")]

use stele_wasm::WasmVerifier;
use wasm_bindgen_test::wasm_bindgen_test;

// (name, file bytes, .expect text, trusted checkpoint)
const VECTORS: &[(&str, &[u8], &str, Option<&str>)] =
    include!(concat!(env!("OUT_DIR"), "/vectors.rs"));

/// The .expect files in tests/vectors when this test was written; a vector
/// added or removed changes it (and the native tests' exact list).
const EXPECT_FILES: usize = 107;

/// How a key rotation event appears in an entry line (canonical JSON).
const KEY_EVENT: &str = "\"type\":\"stele.key\"";

fn field<'a>(expect: &'a str, k: &'static str) -> impl Iterator<Item = &'a str> {
    expect
        .lines()
        .filter_map(move |l| l.strip_prefix(k))
        .map(str::trim)
}

#[wasm_bindgen_test]
fn shared_vectors_give_the_same_verdicts_and_codes() {
    // Exactly the vectors on disk (build.rs lists every .expect with its data file).
    assert_eq!(VECTORS.len(), EXPECT_FILES, "vectors found");
    for (name, data, expect, trusted) in VECTORS {
        let field = |k: &'static str| field(expect, k);
        if field("revoked:").next().is_some() {
            // This module takes no revocations (docs/FORMAT.md 15.3 is
            // rotation code, left out of it): verifyFile verifies with
            // wasm-seal whenever revocations are given, and
            // wasm-seal/tests/rotation.rs runs these vectors with theirs.
            continue;
        }
        let key = field("key:").next().expect("key line");
        let verdict = field("verdict:").next().expect("verdict line");
        // This module leaves key rotation (docs/FORMAT.md 15) out: for a log
        // with a stele.key event it says `rotation_unchecked` and never
        // `verified`; the page then verifies the file with wasm-seal, whose
        // tests (wasm-seal/tests/rotation.rs) check these vectors' verdicts.
        // (Tested in one cargo run with stele-wasm-seal, cargo unifies
        // stele-core's features and this module follows rotations too: the
        // vectors are then checked as the native ones are.)
        let rotated = data
            .windows(KEY_EVENT.len())
            .any(|w| w == KEY_EVENT.as_bytes());
        let mut v = WasmVerifier::new(key, trusted.map(str::to_string))
            .unwrap_or_else(|_| panic!("{name}: verifier"));
        // An odd chunk size, so lines and notes straddle chunks.
        for chunk in data.chunks(997) {
            v.push(chunk).unwrap_or_else(|_| panic!("{name}: push"));
        }
        let _ = v.take_batch().expect("entries");
        let report: serde_json::Value =
            serde_json::from_str(&v.finish().expect("finish")).expect("report JSON");
        let unchecked = report["notices"]
            .as_array()
            .expect("notices")
            .iter()
            .any(|x| x["code"] == "rotation_unchecked");
        if rotated {
            // Either the notice (no rotation support) or the key history.
            assert_ne!(unchecked, report.get("keys").is_some(), "{name}: {report}");
        } else {
            assert!(!unchecked, "{name}: {report}");
        }
        if unchecked {
            assert_ne!(report["verdict"], "verified", "{name}: {report}");
            continue;
        }
        assert_eq!(report["verdict"], verdict, "{name}: {report}");
        let failures = report["failures"].as_array().expect("failures");
        for f in field("failure:") {
            let (code, entry) = f.split_once(' ').expect("code and entry");
            let entry: serde_json::Value = if entry == "-" {
                serde_json::Value::Null
            } else {
                entry.parse::<u64>().expect("entry").into()
            };
            assert!(
                failures
                    .iter()
                    .any(|x| x["code"] == code && x["entry"] == entry),
                "{name}: no {code} at {entry} in {failures:?}"
            );
        }
        for n in field("notice:") {
            assert!(
                report["notices"]
                    .as_array()
                    .expect("notices")
                    .iter()
                    .any(|x| x["code"] == n),
                "{name}: no notice {n}"
            );
        }
    }
}

#[wasm_bindgen_test]
fn bad_keys_are_refused_with_the_core_message() {
    let err = WasmVerifier::new("not a key", None).expect_err("refused");
    let core = stele_core::VerifierKey::parse("not a key")
        .expect_err("core refuses it")
        .to_string();
    let shown = format!("{:?}", wasm_bindgen::JsValue::from(err));
    assert!(shown.contains(&core), "{shown} lacks {core}");
    assert!(
        stele_wasm::parse_verifier_key(
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        )
        .expect("parses")
        .contains("c74f20a3")
    );
}

#[wasm_bindgen_test]
fn prepared_blocks_give_the_same_reports() {
    for (name, data, expect, trusted) in VECTORS {
        let key = field(expect, "key:").next().expect("key line");
        let mut whole = WasmVerifier::new(key, trusted.map(str::to_string)).expect("verifier");
        whole.push(data).expect("push");
        let _ = whole.take_batch();
        let want = whole.finish().expect("finish");
        // Blocks of about 700 bytes, cut after a newline, prepared "elsewhere".
        let mut v = WasmVerifier::new(key, trusted.map(str::to_string)).expect("verifier");
        let mut start = 0usize;
        while start < data.len() {
            let mut end = (start + 700).min(data.len());
            while end < data.len() && data[end - 1] != b'\n' {
                end += 1;
            }
            let block = &data[start..end];
            // Too short a buffer: the length comes back and nothing is written.
            let mut prepared = vec![0xAAu8; 8];
            let len = stele_wasm::prepare_block(block, start as f64, &mut prepared)
                .expect("prepare") as usize;
            if len > prepared.len() {
                assert_eq!(
                    prepared, [0xAA; 8],
                    "{name}: nothing written into a short buffer"
                );
                prepared = vec![0; len + 5];
                let again =
                    stele_wasm::prepare_block(block, start as f64, &mut prepared).expect("prepare");
                assert_eq!(again as usize, len, "{name}");
            }
            prepared.truncate(len);
            v.push_prepared(block, prepared).expect("push_prepared");
            start = end;
        }
        let _ = v.take_batch();
        assert_eq!(v.finish().expect("finish"), want, "{name}");
    }
}

/// docs/FORMAT.md 8.6: the earlier checkpoint with a good and a bad signature
/// by the pinned key is refused here as by core, the CLI and the monitor.
#[wasm_bindgen_test]
fn a_mixed_signature_trusted_checkpoint_is_refused() {
    let note = include_str!("../../tests/vectors/trusted-mixed-signature.note");
    let (_, _, expect, _) = VECTORS
        .iter()
        .find(|v| v.0 == "valid-log")
        .expect("valid-log");
    let key = field(expect, "key:").next().expect("key line");
    let err = WasmVerifier::new(key, Some(note.to_string())).expect_err("refused");
    let keys = [stele_core::VerifierKey::parse(key).expect("key")];
    let core = stele_core::checkpoint::parse_trusted(note.as_bytes(), &keys)
        .expect_err("core refuses it")
        .to_string();
    let shown = format!("{:?}", wasm_bindgen::JsValue::from(err));
    assert!(shown.contains(&core), "{shown} lacks {core}");
    let good: String = note.lines().take(5).map(|l| format!("{l}\n")).collect();
    assert!(WasmVerifier::new(key, Some(good)).is_ok());
}

/// The page's input block: name and time from the page, SHA-256 and the
/// rest from core, before the first push only.
#[wasm_bindgen_test]
fn describe_input_fills_the_report_input_block() {
    let (_, data, expect, _) = VECTORS
        .iter()
        .find(|v| v.0 == "valid-log")
        .expect("valid-log");
    let key = field(expect, "key:").next().expect("key line");
    let mut v = WasmVerifier::new(key, None).expect("verifier");
    v.describe_input(
        Some("valid-log.stele".into()),
        Some("2026-11-30T12:00:00Z".into()),
        true,
    )
    .expect("before push");
    v.push(data).expect("push");
    assert!(v.describe_input(None, None, false).is_err());
    let _ = v.take_batch();
    let r: serde_json::Value = serde_json::from_str(&v.finish().expect("finish")).expect("json");
    let native = stele_core::verify::verify_bytes(
        {
            let mut o = stele_core::verify::Options::new(vec![
                stele_core::VerifierKey::parse(key).expect("key"),
            ]);
            o.input = Some(stele_core::verify::InputMeta {
                name: Some("valid-log.stele".into()),
                verified_at: Some("2026-11-30T12:00:00Z".into()),
                sha256: true,
            });
            o
        },
        data,
    );
    assert_eq!(
        r["input"]["sha256"],
        native.input.as_ref().unwrap().sha256.as_deref().unwrap()
    );
    assert_eq!(r["input"]["name"], "valid-log.stele");
    assert_eq!(r["input"]["bytes"], data.len());
    assert_eq!(r["input"]["keys"][0], key);
}
