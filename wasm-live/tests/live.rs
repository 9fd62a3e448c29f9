//! Live mode's module in Node: a signed checkpoint, the tiles of one
//! inclusion proof and an entry bundle, as `stele serve` would serve them.
#![cfg(target_arch = "wasm32")]

use stele_core::checkpoint::Checkpoint;
use stele_core::merkle::MemoryTree;
use stele_core::note::SignerKey;
use stele_core::{Hash, leaf_hash};
use stele_wasm_live::{LiveTiles, bundle_entry, verify_checkpoint};
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn checkpoint_tiles_and_bundle() {
    let entries: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("{{\"e\":{i}}}").into_bytes())
        .collect();
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let mut tree = MemoryTree::new();
    for l in &leaves {
        tree.push(*l);
    }
    let root = tree.root_at(5).expect("root");
    let signer = SignerKey::from_seed("example.com/live", [7; 32]).expect("signer");
    let keys = signer.verifier().to_string();
    let note = Checkpoint {
        origin: "example.com/live".into(),
        size: 5,
        root,
        extensions: Vec::new(),
    }
    .sign(&signer)
    .expect("signed");

    let cp = verify_checkpoint(&note, &keys, vec![]).expect("checkpoint verifies");
    assert_eq!(cp.size(), 5.0);
    assert_eq!(cp.origin(), "example.com/live");
    assert_eq!(cp.key_name(), "example.com/live");
    assert_eq!(cp.key_id(), signer.verifier().id_hex());
    assert_eq!(cp.root(), root.to_base64());
    let other = SignerKey::from_seed("example.com/live", [8; 32]).expect("signer");
    assert!(verify_checkpoint(&note, &other.verifier().to_string(), vec![]).is_err());

    let mut tiles = LiveTiles::new(cp.size()).expect("tiles");
    let paths = tiles.tiles_for_inclusion(3.0).expect("paths");
    assert_eq!(paths, ["tile/0/000.p/5"]);
    let data: Vec<u8> = leaves.iter().flat_map(|h| h.0).collect();
    tiles.add_tile(&paths[0], &data).expect("tile added");
    let bundle_path = tiles.bundle_path(3.0).expect("bundle path");
    assert_eq!(bundle_path, "tile/entries/000.p/5");
    let bundle =
        stele_core::tiles::encode_entry_bundle(entries.iter().map(Vec::as_slice)).expect("bundle");
    let entry = bundle_entry(&bundle, 3).expect("entry 3");
    assert_eq!(entry, entries[3]);
    let leaf = tiles
        .verify_inclusion(&entry, 3.0, &cp.root())
        .expect("included");
    assert_eq!(leaf, leaves[3].to_base64());
    assert!(
        tiles
            .verify_inclusion(&entries[2], 3.0, &cp.root())
            .is_err()
    );
    // Not whole numbers from 0 to 2^53-1 (the message uses JavaScript's String()).
    let msg = |e: wasm_bindgen::JsError| format!("{:?}", wasm_bindgen::JsValue::from(e));
    let e = msg(tiles.bundle_path(1.5).expect_err("1.5"));
    assert!(
        e.contains("entry index must be a whole number from 0 to 2^53-1, not 1.5"),
        "{e}"
    );
    let e = msg(tiles.bundle_path(-1e21).expect_err("-1e21"));
    assert!(e.contains("not -1e+21"), "{e}");
    let e = msg(LiveTiles::new(f64::NAN).expect_err("NaN"));
    assert!(e.contains("not not a finite number"), "{e}");
}

/// docs/FORMAT.md 8.6: the shared earlier checkpoint with a good and a bad
/// signature by the pinned key is refused, as by core, the CLI and wasm.
#[wasm_bindgen_test]
fn a_mixed_signature_checkpoint_is_refused() {
    let note = include_str!("../../tests/vectors/trusted-mixed-signature.note");
    let expect = include_str!("../../tests/vectors/valid-log.expect");
    let key = expect
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .expect("key line");
    assert!(verify_checkpoint(note, key, vec![]).is_err());
    let good: String = note.lines().take(5).map(|l| format!("{l}\n")).collect();
    assert!(verify_checkpoint(&good, key, vec![]).is_ok());
}

/// docs/FORMAT.md 15.3 without the key history: a pinned key revoked from a
/// size at or below the checkpoint's fails it, naming the key ID and the size.
#[wasm_bindgen_test]
fn a_checkpoint_signed_by_a_revoked_key_is_refused() {
    let signer = SignerKey::from_seed("example.com/live", [7; 32]).expect("signer");
    let vkey = signer.verifier();
    let note = Checkpoint {
        origin: "example.com/live".into(),
        size: 5,
        root: Hash::default(),
        extensions: Vec::new(),
    }
    .sign(&signer)
    .expect("signed");
    let msg = |e: wasm_bindgen::JsError| format!("{:?}", wasm_bindgen::JsValue::from(e));
    assert!(verify_checkpoint(&note, &vkey.to_string(), vec![format!("{vkey}@6")]).is_ok());
    let e = msg(
        verify_checkpoint(&note, &vkey.to_string(), vec![format!("{vkey}@5")])
            .expect_err("revoked"),
    );
    assert!(
        e.contains(&format!("key ID {}", vkey.id_hex())) && e.contains("revoked from size 5"),
        "{e}"
    );
    let e = msg(
        verify_checkpoint(&note, &vkey.to_string(), vec![format!("{vkey}@five")]).expect_err("bad"),
    );
    assert!(e.contains("not a decimal tree size"), "{e}");
}
