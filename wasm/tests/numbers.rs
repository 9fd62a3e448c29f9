//! The wasm build checks non-integer numbers with JavaScript's own
//! formatting (stele-core without `std-float`); it must say exactly what the
//! native check says of the pinned list (core/tests/numbers.txt).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn pinned_numbers_through_javascript() {
    let list = include_str!("../../core/tests/numbers.txt");
    let mut n = 0;
    for line in list.lines().filter(|l| !l.starts_with('#')) {
        let (tok, want) = line.split_once('\t').expect("token TAB expectation");
        let got = stele_wasm::check_number(tok).unwrap_or_else(|| "ok".into());
        assert_eq!(got, want, "{tok}");
        n += 1;
    }
    assert!(n >= 60, "only {n} numbers");
}
