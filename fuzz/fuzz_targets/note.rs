//! Signed notes, checkpoints and keys: never panic; what parses serializes
//! back to the same bytes (round trip); verification never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_core::checkpoint::{Checkpoint, SignedCheckpoint};
use stele_core::note::{Note, SignerKey};

include!("common.rs");

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64(raw: &[u8]) -> String {
    let mut s = String::new();
    for c in raw.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        // Round trip: text, empty line, one line per signature.
        let mut s = note.text.clone();
        s.push('\n');
        for sig in &note.signatures {
            let mut raw = sig.key_id.to_vec();
            raw.extend_from_slice(&sig.signature);
            s.push_str(&format!("\u{2014} {} {}\n", sig.name, b64(&raw)));
        }
        assert_eq!(s.as_bytes(), data, "note round trip");
        let v = note.verify(&[vectors_key()]);
        assert!(v.verified_by.len() + v.bad.len() + v.unknown.len() <= note.signatures.len());
    }
    if let Ok(sc) = SignedCheckpoint::parse(data) {
        assert_eq!(sc.checkpoint.to_text(), sc.note.text, "checkpoint round trip");
        let _ = sc.verify(&[vectors_key()]);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = Checkpoint::parse(text) {
            assert_eq!(c.to_text(), text, "checkpoint text round trip");
        }
        if let Ok(k) = VerifierKey::parse(text) {
            let again = VerifierKey::parse(&k.to_string()).expect("a printed key parses");
            assert_eq!(again, k);
            let _ = k.verify(data, data);
        }
        if let Ok(k) = SignerKey::parse(text) {
            assert_eq!(SignerKey::parse(&k.to_private_string()).map(|k| k.verifier()).ok(), Some(k.verifier()));
        }
    }
});
