//! Property: whatever JSON the writer is handed, the serializer's output is
//! accepted by the validator (the verifier's definition of canonical), parses
//! back to the same value, and is a fixed point.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use stele_core::canonical::{MAX_SAFE_INTEGER, to_canonical, validate};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        // Integers JSON carries exactly (I-JSON); beyond them, see below.
        (-(MAX_SAFE_INTEGER as i64)..=MAX_SAFE_INTEGER as i64).prop_map(|n| json!(n)),
        (0..=MAX_SAFE_INTEGER).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        "[\\u{0}-\\u{1f}\"\\\\a\u{e000}\u{10000}é]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z\u{e000}\u{10000}\"\\\\]{0,4}|\\PC{0,4}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn serializer_output_is_canonical(v in json_value()) {
        let s = to_canonical(&v).unwrap();
        prop_assert!(validate(s.as_bytes()).is_ok(), "{s}: {:?}", validate(s.as_bytes()));
        let back: Value = serde_json::from_str(&s).unwrap();
        prop_assert_eq!(to_canonical(&back).unwrap(), s);
    }

    /// An integer value beyond ±(2^53-1) is written unchanged or refused,
    /// never written as another number (2^64-1 once became
    /// 18446744073709552000).
    #[test]
    fn integers_beyond_2_53_are_kept_or_refused(n in (MAX_SAFE_INTEGER + 1)..=u64::MAX) {
        match to_canonical(&json!(n)) {
            Ok(s) => prop_assert_eq!(s, n.to_string()),
            Err(e) => prop_assert!(e.contains(&format!("integer {n} is beyond")), "{}", e),
        }
        if let Ok(i) = i64::try_from(n) {
            match to_canonical(&json!(-i)) {
                Ok(s) => prop_assert_eq!(s, (-i).to_string()),
                Err(e) => prop_assert!(e.contains(&format!("integer {} is beyond", -i)), "{}", e),
            }
        }
    }
}

#[test]
fn integers_a_double_cannot_hold_are_refused() {
    for (v, want) in [
        (
            json!(u64::MAX),
            "integer 18446744073709551615 is beyond ±9007199254740991 (2^53-1) and a double cannot hold it: it would be stored as 18446744073709552000",
        ),
        (
            json!(9007199254740993u64),
            "would be stored as 9007199254740992",
        ),
        (json!(i64::MIN), "integer -9223372036854775808 is beyond"),
    ] {
        let e = to_canonical(&v).unwrap_err();
        assert!(e.contains(want), "{e}");
    }
    assert_eq!(
        to_canonical(&json!(9007199254740992u64)).unwrap(),
        "9007199254740992"
    );
}

/// The pinned number list (core/tests/numbers.txt, also checked through
/// JavaScript's formatting in wasm/tests/numbers.rs): the built-in check
/// (std-float) must say exactly what the list says.
#[test]
fn pinned_numbers() {
    let list = include_str!("numbers.txt");
    let mut n = 0;
    for line in list.lines().filter(|l| !l.starts_with('#')) {
        let (tok, want) = line.split_once('\t').expect("token TAB expectation");
        let got = validate(tok.as_bytes()).map_or_else(|e| e.to_string(), |_| "ok".into());
        assert_eq!(got, want, "{tok}");
        n += 1;
    }
    assert!(n >= 60, "only {n} numbers");
}
