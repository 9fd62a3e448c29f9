//! Golden files: `stele verify`'s text and `--json` output for every shared
//! vector in tests/vectors/, so that a change to any message, code, field or
//! exit status is a visible diff. `STELE_BLESS=1 cargo test -p stele-writer
//! --test golden` rewrites writer/tests/golden/*; review the diff.

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A vector: name, file (relative to the workspace root), keys, trusted
/// file, and `--revoked` values.
type VectorArgs = (String, String, Vec<String>, Option<String>, Vec<String>);

/// Each vector's [`VectorArgs`].
fn vectors() -> Vec<VectorArgs> {
    let dir = root().join("tests/vectors");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/vectors")
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_suffix(".expect").map(str::to_string)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(format!("{name}.expect"))).unwrap();
            let expect = stele_tests::kit::parse_expect(&text)
                .unwrap_or_else(|e| panic!("{name}.expect: {e}"));
            let file = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .find(|f| {
                    f.starts_with(&format!("{name}."))
                        && !f.ends_with(".expect")
                        && !f.ends_with(".trusted")
                })
                .unwrap_or_else(|| panic!("{name}: no data file"));
            let trusted = expect.trusted.map(|t| format!("tests/vectors/{t}"));
            let revoked = expect.revoked.into_iter().collect();
            (
                name,
                format!("tests/vectors/{file}"),
                expect.keys,
                trusted,
                revoked,
            )
        })
        .collect()
}

/// The output with the one varying value (the time) replaced.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = common::bounded_output(
        Command::new(env!("CARGO_BIN_EXE_stele"))
            .args(args)
            .current_dir(root()),
        None,
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let text = text
        .lines()
        .map(|l| match l.find("\"verified_at\": \"") {
            Some(i) => format!("{}\"verified_at\": \"<time>\"", &l[..i]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    (out.status.code(), text)
}

fn golden(json: bool) {
    let mut all = String::new();
    for (name, file, keys, trusted, revoked) in vectors() {
        let mut args = vec!["verify", file.as_str()];
        for k in &keys {
            args.extend(["--key", k.as_str()]);
        }
        if let Some(t) = &trusted {
            args.extend(["--trusted-checkpoint", t.as_str()]);
        }
        for r in &revoked {
            args.extend(["--revoked", r.as_str()]);
        }
        if json {
            args.push("--json");
        }
        let (code, text) = run(&args);
        all.push_str(&format!("== {name} (exit {code:?})\n{text}\n\n"));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(if json {
        "tests/golden/verify-json.txt"
    } else {
        "tests/golden/verify-text.txt"
    });
    if std::env::var_os("STELE_BLESS").is_some() {
        std::fs::write(&path, &all).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != all {
        let (w, a): (Vec<_>, Vec<_>) = (want.lines().collect(), all.lines().collect());
        let first = w
            .iter()
            .zip(&a)
            .position(|(x, y)| x != y)
            .unwrap_or(w.len().min(a.len()));
        panic!(
            "{} differs from stele's output at line {} (run with STELE_BLESS=1 and review the diff):\n  golden: {:?}\n  now:    {:?}",
            path.display(),
            first + 1,
            w.get(first),
            a.get(first)
        );
    }
}

#[test]
fn verify_text_output_matches_the_golden_file() {
    golden(false);
}

#[test]
fn verify_json_output_matches_the_golden_file() {
    golden(true);
}

/// docs/FORMAT.md 8.6: `stele verify --trusted-checkpoint` and `stele
/// monitor`'s state refuse an earlier checkpoint with a good and a bad
/// signature by the pinned key (the shared file every verifier refuses).
#[test]
fn a_mixed_signature_trusted_checkpoint_is_refused_by_verify_and_monitor() {
    let key = vectors()
        .into_iter()
        .find(|v| v.0 == "valid-log")
        .expect("valid-log")
        .2
        .remove(0);
    let note = "tests/vectors/trusted-mixed-signature.note";
    let out = common::bounded_output(
        Command::new(env!("CARGO_BIN_EXE_stele"))
            .args(["verify", "tests/vectors/valid-log.stele", "--key", &key])
            .args(["--trusted-checkpoint", note])
            .current_dir(root()),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("trusted checkpoint tests/vectors/trusted-mixed-signature.note: checkpoint of size 15: the signature by pinned key example.com/stele-vectors does not verify"),
        "{err}"
    );
    // The monitor reads its state file with the same rule.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let stele = |args: &[&str]| {
        common::bounded_output(Command::new(env!("CARGO_BIN_EXE_stele")).args(args), None)
    };
    let d = dir.to_str().unwrap();
    let init = stele(&["init", d, "--origin", "example.com/mon"]);
    assert!(init.status.success());
    let vkey = String::from_utf8(init.stdout).unwrap().trim().to_string();
    assert!(
        stele(&["append", d, "--event", r#"{"a":1}"#])
            .status
            .success()
    );
    let cp = stele(&["checkpoint", d]);
    assert!(
        cp.status.success(),
        "{}",
        String::from_utf8_lossy(&cp.stderr)
    );
    let good = String::from_utf8(cp.stdout).unwrap();
    let (text, sig) = good.split_once("\n\n").unwrap();
    let sig = sig.trim_end();
    let (pre, b64) = sig.rsplit_once(' ').unwrap();
    let flipped: String = b64
        .chars()
        .enumerate()
        .map(|(i, c)| match (i, c) {
            (20, 'A') => 'B',
            (20, _) => 'A',
            _ => c,
        })
        .collect();
    let state = tmp.path().join("state");
    std::fs::write(&state, format!("{text}\n\n{sig}\n{pre} {flipped}\n")).unwrap();
    let s = state.to_str().unwrap();
    // (An alert, `unreadable`: the state file was there before.)
    let out = stele(&["monitor", d, "--key", &vkey, "--state", s, "--once"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not verify"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With only the good signature line, the monitor starts from it.
    std::fs::write(&state, &good).unwrap();
    let out = stele(&["monitor", d, "--key", &vkey, "--state", s, "--once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 18's forgery (the last signature replaced under the log's name, a
/// forged entry appended) is `partial`: exit 1, and 0 only when the caller
/// accepts an unsigned tail.
#[test]
fn the_forged_tail_is_partial_and_exits_1_unless_allowed() {
    let (_, file, mut keys, _, _) = vectors()
        .into_iter()
        .find(|v| v.0 == "forged-tail-key-mismatch")
        .expect("vector");
    let key = keys.remove(0);
    let (code, text) = run(&["verify", &file, "--key", &key]);
    assert_eq!(code, Some(1));
    assert!(text.starts_with("PARTIAL: 21 entries"), "{text}");
    assert!(text.contains("notice key_mismatch"), "{text}");
    let (code, text) = run(&["verify", &file, "--key", &key, "--allow-unsigned-tail"]);
    assert_eq!(code, Some(0));
    assert!(text.contains("(accepted: --allow-unsigned-tail)"), "{text}");
    let (code, json) = run(&["verify", &file, "--key", &key, "--json"]);
    assert_eq!(code, Some(1));
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["verdict"], "partial");
    assert_eq!(r["tree_size"], 15);
}
