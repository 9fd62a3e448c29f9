//! Interop for cosignatures (docs/FORMAT.md 14.1, 14.2) with a second,
//! independent implementation: tests/interop/cosignature.go, written from
//! C2SP tlog-cosignature on Go's crypto/ed25519 and golang.org/x/mod/sumdb/note
//! (Debian golang-go and golang-golang-x-mod-dev, installed by
//! scripts/setup.sh). Go's note.Open accepts our witnesses' cosignatures
//! given their vkeys; our verifier accepts Go's.

use std::path::Path;
use std::process::Command;
use stele_core::verify::{Options, verify_bytes};
use stele_core::witness::{Cosigner, CosignerKey, Policy};
use stele_tests::witness::{POLICY_FILE, dir, sample, vectors};

/// Runs tests/interop/cosignature.go with `args`: (success, stdout, stderr).
fn go_run(args: &[&str]) -> (bool, String, String) {
    let cache = tempdir();
    let out = Command::new("go")
        .arg("run")
        .arg("cosignature.go")
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("interop"))
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", &cache)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run go ({e}): run scripts/setup.sh (apt golang-go golang-golang-x-mod-dev)"
            )
        });
    let _ = std::fs::remove_dir_all(&cache);
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn go(args: &[&str]) -> String {
    let (ok, out, err) = go_run(args);
    assert!(ok, "go {args:?}: {err}");
    out
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "stele-go-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The last checkpoint note of a log export.
fn last_note(export: &[u8]) -> String {
    let s = std::str::from_utf8(export).unwrap();
    s.rsplit_once("checkpoint\n").unwrap().1.to_string()
}

#[test]
fn go_sumdb_note_accepts_our_cosignatures_given_the_witness_vkey() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "quorum-met")
        .unwrap();
    let note = last_note(&v.data);
    let tmp = tempdir();
    let file = tmp.join("note");
    std::fs::write(&file, &note).unwrap();
    let policy = Policy::parse(&std::fs::read(dir().join(POLICY_FILE)).unwrap()).unwrap();
    for (w, expect) in
        policy
            .witnesses
            .iter()
            .zip([Some(1_795_683_601u64), Some(1_795_683_602), None])
    {
        let vkey = w.key.to_string();
        match expect {
            Some(ts) => assert_eq!(
                go(&["verify", &vkey, file.to_str().unwrap()]),
                format!("ok {ts} 1\n"),
                "{}",
                w.name
            ),
            None => {
                // w3 did not cosign: note.Open finds no verifiable signature.
                assert!(!go_run(&["verify", &vkey, file.to_str().unwrap()]).0);
            }
        }
    }
    // A tampered cosignature is refused by Go too.
    let bad = note.replacen("\n20\n", "\n21\n", 1);
    std::fs::write(&file, bad).unwrap();
    let w1 = policy.witnesses[0].key.to_string();
    assert!(!go_run(&["verify", &w1, file.to_str().unwrap()]).0);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn our_verifier_accepts_cosignatures_made_by_go() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "quorum-unmet")
        .unwrap();
    let text = String::from_utf8(v.data.clone()).unwrap();
    let note = last_note(&v.data);
    let tmp = tempdir();
    let file = tmp.join("note");
    std::fs::write(&file, &note).unwrap();
    let seed = [0x42u8; 32];
    let seed_hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let out = go(&[
        "cosign",
        "go.example/witness",
        &seed_hex,
        "1800000000",
        file.to_str().unwrap(),
    ]);
    let (vkey, line) = out.split_once('\n').unwrap();
    // The same key, derived independently: identical vkey and key ID.
    let ours = Cosigner::from_seed("go.example/witness", seed)
        .unwrap()
        .verifier();
    assert_eq!(CosignerKey::parse(vkey).unwrap(), ours);
    assert_eq!(vkey, ours.to_string());
    // quorum-unmet has w1's cosignature only; Go's makes it two of three.
    let policy = std::fs::read_to_string(dir().join(POLICY_FILE))
        .unwrap()
        .replace(
            &format!(
                " {}\n",
                Policy::parse(&std::fs::read(dir().join(POLICY_FILE)).unwrap())
                    .unwrap()
                    .witnesses[2]
                    .key
            ),
            &format!(" {vkey}\n"),
        );
    let with_go = format!("{}{line}", text);
    let mut opts = Options::new(vec![sample().key()]);
    opts.set_policy(Policy::parse(policy.as_bytes()).unwrap());
    let report = verify_bytes(opts, with_go.as_bytes());
    assert_eq!(report.verdict.as_str(), "verified", "{}", report.to_json());
    let q = report.quorum.unwrap();
    assert!(q.met);
    assert_eq!(q.cosigned_by, vec!["w1".to_string(), "w3".to_string()]);
    let _ = std::fs::remove_dir_all(&tmp);
}
