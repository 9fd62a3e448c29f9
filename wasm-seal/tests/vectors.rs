//! The shared sealed vectors (tests/vectors/sealed) through the wasm module,
//! in Node: the same verdicts and counts as the native tests
//! (writer/tests/sealed.rs).
#![cfg(target_arch = "wasm32")]

use serde_json::Value;
use stele_wasm_seal::{OpeningPass, SealedVerifier};
use wasm_bindgen_test::wasm_bindgen_test;

const AUDITOR: &str = include_str!("../../tests/vectors/sealed/auditor.key");
const OTHER: &str = include_str!("../../tests/vectors/sealed/other.key");

fn key(expect: &str) -> String {
    expect
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap()
        .to_string()
}

fn run(data: &[u8], expect: &str, identity: &str, chunk: usize) -> (Value, Vec<Value>) {
    let mut v = SealedVerifier::new(vec![key(expect)], identity).unwrap();
    let mut states = Vec::new();
    for c in data.chunks(chunk) {
        v.push(c);
        let s: Value = serde_json::from_str(&v.take_sealed()).unwrap();
        states.extend(s.as_array().unwrap().iter().cloned());
    }
    let out: Value = serde_json::from_str(&v.finish()).unwrap();
    states.extend(out["sealed"].as_array().unwrap().iter().cloned());
    (out["report"].clone(), states)
}

fn counts(expect: &str) -> Value {
    let line = expect
        .lines()
        .find_map(|l| l.strip_prefix("sealed: "))
        .unwrap();
    let mut m = serde_json::Map::new();
    for kv in line.split(' ') {
        let (k, v) = kv.split_once('=').unwrap();
        m.insert(k.into(), v.parse::<u64>().unwrap().into());
    }
    Value::Object(m)
}

macro_rules! vector {
    ($name:literal) => {
        (
            include_bytes!(concat!("../../tests/vectors/sealed/", $name, ".stele")).as_slice(),
            include_str!(concat!("../../tests/vectors/sealed/", $name, ".expect")),
        )
    };
}

// Every sealed vector with an .stele file: (bytes, .expect text).
fn vectors() -> [(&'static [u8], &'static str); 7] {
    [
        vector!("sealed-valid"),
        vector!("sealed-swapped"),
        vector!("sealed-wrong-opening"),
        vector!("sealed-tampered-ciphertext"),
        vector!("sealed-bad-record"),
        vector!("sealed-redacted"),
        vector!("sealed-forgotten"),
    ]
}

#[wasm_bindgen_test]
fn sealed_vectors_give_the_native_verdicts_and_counts() {
    let cases = vectors();
    for (data, expect) in cases {
        for chunk in [7, 4096] {
            let (report, states) = run(data, expect, AUDITOR, chunk);
            let failed = expect.contains("verdict: tampered");
            assert_eq!(report["verdict"] != "verified", failed, "{expect}");
            assert_eq!(report["sealed"], counts(expect), "{expect}");
            // Every value is reported once, and opened values are JSON.
            assert_eq!(
                states.len() as u64,
                report["sealed"]["values"].as_u64().unwrap()
            );
            for s in &states {
                if s[2] == "opened" {
                    serde_json::from_str::<Value>(s[3].as_str().unwrap()).unwrap();
                }
            }
        }
    }
    // Another auditor's key: everything stays sealed, and it verifies.
    let (data, expect) = vector!("sealed-valid");
    let (report, states) = run(data, expect, OTHER, 4096);
    assert_eq!(report["verdict"], "verified");
    assert_eq!(report["sealed"]["sealed"], 5);
    assert!(states.iter().all(|s| s[2] == "sealed"));
}

#[wasm_bindgen_test]
fn a_bad_identity_is_refused_without_echoing_it() {
    let e = SealedVerifier::new(vec![], "AGE-SECRET-KEY-1NOTAKEYATALL\n").unwrap_err();
    let msg = format!("{:?}", wasm_bindgen::JsValue::from(e));
    assert!(!msg.contains("NOTAKEY"), "{msg}");
}

// The page's path: the opening pass after a verification gives the same
// counts, and the same sealed failures (code, entry, line), as the full
// verifier with the identity.
#[wasm_bindgen_test]
fn the_opening_pass_finds_what_the_full_verifier_finds() {
    let cases = vectors();
    for (data, expect) in cases {
        let (report, states) = run(data, expect, AUDITOR, 4096);
        let origin = report["origin"].as_str().map(String::from);
        for chunk in [7, 4096] {
            let mut p = OpeningPass::new(origin.clone(), AUDITOR).unwrap();
            let mut got = Vec::new();
            for c in data.chunks(chunk) {
                p.push(c);
                let s: Value = serde_json::from_str(&p.take_sealed()).unwrap();
                got.extend(s.as_array().unwrap().iter().cloned());
            }
            let out: Value = serde_json::from_str(&p.finish()).unwrap();
            got.extend(out["sealed"].as_array().unwrap().iter().cloned());
            assert_eq!(out["counts"], report["sealed"], "{expect}");
            assert_eq!(got.len(), states.len(), "{expect}");
            let sealed_failures = |fs: &Value| -> Vec<(Value, Value, Value)> {
                fs.as_array()
                    .unwrap()
                    .iter()
                    .filter(|f| f["code"] == "bad_sealed" || f["code"] == "opening_mismatch")
                    .map(|f| (f["code"].clone(), f["entry"].clone(), f["line"].clone()))
                    .collect()
            };
            assert_eq!(
                sealed_failures(&out["failures"]),
                sealed_failures(&report["failures"]),
                "{expect}"
            );
        }
    }
}

// One opening pass over `data`, read in `parts`: each start reads the
// bytes before `head` (when it starts later) and then from `start` to the
// next part's start. Values, counts added up, and failures (code, entry,
// line counted from the file's start, offset).
fn parted(
    data: &[u8],
    origin: &Option<String>,
    identity: &str,
    head: usize,
    starts: &[usize],
) -> (Vec<Value>, Value, Vec<(Value, Value, u64, Value)>) {
    let mut states = Vec::new();
    let mut counts = serde_json::Map::new();
    let mut failures = Vec::new();
    let mut lines = 0;
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(data.len());
        let mut p = OpeningPass::new(origin.clone(), identity).unwrap();
        if start > head {
            p.push(&data[..head]);
            p.resume_at(start as f64).unwrap();
        } else {
            p.push(&data[..start]);
        }
        p.push(&data[start..end]);
        let s: Value = serde_json::from_str(&p.take_sealed()).unwrap();
        states.extend(s.as_array().unwrap().iter().cloned());
        let out: Value = serde_json::from_str(&p.finish()).unwrap();
        states.extend(out["sealed"].as_array().unwrap().iter().cloned());
        for (k, v) in out["counts"].as_object().into_iter().flatten() {
            let sum = counts.get(k).and_then(Value::as_u64).unwrap_or(0) + v.as_u64().unwrap();
            let _ = counts.insert(k.clone(), sum.into());
        }
        for f in out["failures"].as_array().unwrap() {
            let line = f["line"].as_u64().unwrap() + lines;
            failures.push((
                f["code"].clone(),
                f["entry"].clone(),
                line,
                f["offset"].clone(),
            ));
        }
        lines += out["lines"].as_u64().unwrap();
    }
    (states, Value::Object(counts), failures)
}

// The page's split pass (two workers): each part reads the key records and
// unwraps the keys its values need, and the second part resumes at an entry
// line. At every entry line of every vector, the two parts find what one
// pass finds: the same values, counts and failures, lines included.
#[wasm_bindgen_test]
fn a_pass_split_at_any_entry_line_finds_what_one_pass_finds() {
    for (data, expect) in vectors() {
        let (report, _) = run(data, expect, AUDITOR, 4096);
        let origin = report["origin"].as_str().map(String::from);
        let text = std::str::from_utf8(data).unwrap();
        let entries: Vec<usize> = text.match_indices("\n{").map(|(i, _)| i + 1).collect();
        let head = entries[0];
        let one = parted(data, &origin, AUDITOR, head, &[0]);
        assert_eq!(one.1, report["sealed"], "{expect}");
        for &split in &entries[1..] {
            let two = parted(data, &origin, AUDITOR, head, &[0, split]);
            assert_eq!(two, one, "{expect}: split at byte {split}");
        }
    }
}

// Junk sealed-key records (key IDs no value uses, wraps that do not open)
// change nothing the pass finds; another identity opens nothing; a pass
// resumes only at a line's start before any entry.
#[wasm_bindgen_test]
fn junk_key_records_change_nothing_and_resume_is_checked() {
    let (data, expect) = vector!("sealed-valid");
    let (report, _) = run(data, expect, AUDITOR, 4096);
    let origin = report["origin"].as_str().map(String::from);
    let text = std::str::from_utf8(data).unwrap();
    let head = text.find("\n{").unwrap() + 1;
    let one = parted(data, &origin, AUDITOR, head, &[0]);
    assert_eq!(one.1["opened"], 5);
    let junk: String = (0..200)
        .map(|i| format!("sealed-key {i:032x} YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==\n"))
        .collect();
    let first = text.find("\nsealed-key ").unwrap() + 1;
    let with_junk = format!("{}{junk}{}", &text[..first], &text[first..]);
    let jhead = head + junk.len();
    let two = parted(with_junk.as_bytes(), &origin, AUDITOR, jhead, &[0]);
    assert_eq!(two.0, one.0);
    assert_eq!(two.1, one.1);
    let (_, counts, failures) = parted(data, &origin, OTHER, head, &[0]);
    assert_eq!(counts["opened"], 0);
    assert_eq!(counts["sealed"], 5);
    assert!(failures.is_empty());
    let mut p = OpeningPass::new(origin, AUDITOR).unwrap();
    p.push(&data[..head + 1]);
    assert!(p.resume_at(head as f64).is_err());
}

// The columns the page's workers send (takeSealedColumns, takeSealedText,
// takeSealedPointers) say what takeSealed's JSON says, at any chunking.
#[wasm_bindgen_test]
fn sealed_columns_list_what_the_json_lists() {
    for (data, expect) in vectors() {
        let (report, _) = run(data, expect, AUDITOR, 4096);
        let origin = report["origin"].as_str().map(String::from);
        for chunk in [7, 4096] {
            let mut json = OpeningPass::new(origin.clone(), AUDITOR).unwrap();
            let mut cols = OpeningPass::new(origin.clone(), AUDITOR).unwrap();
            let (mut want, mut got) = (Vec::new(), Vec::new());
            for c in data.chunks(chunk) {
                json.push(c);
                let s: Value = serde_json::from_str(&json.take_sealed()).unwrap();
                want.extend(s.as_array().unwrap().iter().cloned());
                cols.push(c);
                let meta = cols.take_sealed_columns();
                let text: Vec<u16> = cols.take_sealed_text().encode_utf16().collect();
                let pointers = cols.take_sealed_pointers();
                assert_eq!(meta.len() % 4, 0);
                let mut from = 0;
                for v in meta.chunks(4) {
                    let entry = u64::from(v[0]) | u64::from(v[1]) << 32;
                    let state = ["opened", "sealed", "forgotten", "redacted", "mismatch"]
                        [(v[2] & 7) as usize];
                    let to = v[3] as usize;
                    let value =
                        (state == "opened").then(|| String::from_utf16(&text[from..to]).unwrap());
                    assert!(state == "opened" || from == to, "{expect}");
                    from = to;
                    got.push(serde_json::json!([
                        entry,
                        pointers[(v[2] >> 3) as usize],
                        state,
                        value
                    ]));
                }
                assert_eq!(from, text.len(), "{expect}");
            }
            // The last values (finish) are JSON in both.
            assert_eq!(got, want, "{expect} by {chunk}");
            assert!(!want.is_empty(), "{expect}");
        }
    }
}
