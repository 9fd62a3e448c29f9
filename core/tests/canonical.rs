//! Property: whatever JSON the writer is handed, the serializer's output is
//! accepted by the validator (the verifier's definition of canonical), parses
//! back to the same value, and is a fixed point.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use stele_core::canonical::{to_canonical, validate};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
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
