//! Ed25519 (RFC 8032 section 7.1) and C2SP signed-note known answers.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use stele_core::note::{Note, SignerKey, VerifierKey};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn rfc8032_test_vectors() {
    // (secret key, public key, message, signature), RFC 8032 7.1 TEST 1-3.
    let vectors = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    for (sk, pk, msg, sig) in vectors {
        let sk = SigningKey::from_bytes(&unhex(sk).try_into().unwrap());
        assert_eq!(sk.verifying_key().as_bytes().to_vec(), unhex(pk));
        let msg = unhex(msg);
        assert_eq!(sk.sign(&msg).to_bytes().to_vec(), unhex(sig));
        let vk = VerifyingKey::from_bytes(&unhex(pk).try_into().unwrap()).unwrap();
        vk.verify_strict(&msg, &Signature::from_slice(&unhex(sig)).unwrap())
            .unwrap();
        let mut bad = unhex(sig);
        bad[0] ^= 1;
        assert!(
            vk.verify_strict(&msg, &Signature::from_slice(&bad).unwrap())
                .is_err()
        );
    }
}

const GO_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

#[test]
fn signed_note_reference_example() {
    let vk = VerifierKey::parse(GO_VKEY).unwrap();
    assert_eq!(vk.to_string(), GO_VKEY);
    assert_eq!(vk.id_hex(), "c74f20a3");
    let sk = SignerKey::parse(GO_SKEY).unwrap();
    assert_eq!(sk.verifier(), vk);
    assert_eq!(sk.to_private_string(), GO_SKEY);
    // Ed25519 is deterministic, so our signature is the reference one, byte for byte.
    assert_eq!(sk.sign_note(GO_TEXT).unwrap(), GO_NOTE);
    let note = Note::parse(GO_NOTE.as_bytes()).unwrap();
    assert_eq!(note.text, GO_TEXT);
    let v = note.verify(std::slice::from_ref(&vk));
    assert_eq!(v.verified_by, vec![vk.clone()]);
    // A key with another name is not consulted; the signature is set aside.
    let other = SignerKey::from_seed("PeterNeumann2", [1; 32])
        .unwrap()
        .verifier();
    let v = note.verify(&[other]);
    assert!(v.verified_by.is_empty() && v.unknown.len() == 1);
}

#[test]
fn malformed_notes_are_rejected_with_reasons() {
    let cases: [(&str, &str); 5] = [
        ("no signatures\n", "no empty line"),
        ("text\n\n", "no signature lines"),
        ("text\n\nnot a signature\n", "does not start"),
        ("text\n\n\u{2014} name !!!\n", "not valid base64"),
        ("te\u{1}xt\n\n\u{2014} n AAAAAAA=\n", "control character"),
    ];
    for (note, why) in cases {
        let e = Note::parse(note.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(why), "{note:?}: {e}");
    }
    for bad_key in [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ApqyWbPsOHTTJlAM2/9HaQ==",
    ] {
        assert!(VerifierKey::parse(bad_key).is_err(), "{bad_key}");
    }
}
