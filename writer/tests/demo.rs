//! `stele demo` finishes by itself, detects every attack while the live log
//! keeps growing, and leaves tampered copies that `stele verify` rejects with
//! the code the table shows.

mod common;

use common::{ok, stele};

#[test]
fn demo_detects_every_attack_and_ends_with_the_page_url() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = ok(&stele(&["demo", dir.to_str().unwrap(), "--seconds", "3"]));
    assert!(out.contains("21 of 21 attacks detected"), "{out}");
    assert!(out.contains("verdict \"verified\""), "{out}");
    assert!(out.contains("http://127.0.0.1:8080/"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("attack "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 21, "{out}");
    for row in &rows {
        assert!(row.contains(" yes "), "not detected: {row}");
    }
    // Entries keep arriving while attacks run: the log size column grows.
    let sizes: Vec<u64> = rows
        .iter()
        .map(|r| r.split_whitespace().last().unwrap().parse().unwrap())
        .collect();
    assert!(sizes.last() > sizes.first(), "{sizes:?}");
    // The copy the demo points at fails `stele verify` with the table's code.
    let file = out
        .lines()
        .find_map(|l| l.strip_prefix("and drop this tampered copy on the page: "))
        .unwrap();
    let key = std::fs::read_to_string(dir.join("key.txt")).unwrap();
    let v = stele(&["verify", file, "--key", key.trim(), "--json"]);
    assert_eq!(v.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(report["failures"][0]["code"], "hash_mismatch");
    assert_eq!(report["failures"][0]["entry"], 5);
    // A non-empty directory is refused.
    let again = stele(&["demo", dir.to_str().unwrap(), "--seconds", "2"]);
    assert_eq!(again.status.code(), Some(2));
}
