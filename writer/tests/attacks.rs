//! The attack matrix through the real `stele verify --json` binary: every
//! shared vector in tests/vectors/ (its `.expect` file states the key, the
//! verdict, the failures and notices; tests/tests/attacks.rs maps them to the
//! attacks of issue 6), and the attacks that need a real log *directory*:
//! the entries file cut below the last checkpoint, the directory rolled back
//! to an earlier copy (caught with --trusted-checkpoint), and a rewritten
//! history re-signed by someone holding the key (a fork against the trusted
//! checkpoint). Exit status: 0 for `verified`, 1 otherwise.

mod common;

use common::{ok, stele};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use stele_core::verify::{Options, Verdict};
use stele_writer::{Log, LogOptions, key};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn field<'a>(expect: &'a str, k: &'a str) -> impl Iterator<Item = &'a str> {
    expect
        .lines()
        .filter_map(move |l| l.strip_prefix(k))
        .map(str::trim)
}

// `stele verify PATH --key K [--trusted-checkpoint T] --json [extra...]`: (exit code, report).
fn verify_cli(path: &Path, key: &str, trusted: Option<&Path>, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "verify".to_string(),
        path.display().to_string(),
        "--key".into(),
        key.into(),
        "--json".into(),
    ];
    if let Some(t) = trusted {
        args.push("--trusted-checkpoint".into());
        args.push(t.display().to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = stele(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let code = out.status.code().expect("exited");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: no JSON report ({e}); stderr: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, report)
}

fn has_failure(report: &Value, code: &str, entry: Option<u64>) -> bool {
    report["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .any(|f| f["code"] == code && f["entry"] == json!(entry))
}

#[test]
fn every_shared_vector_through_stele_verify_json() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "expect"))
        .collect();
    names.sort();
    assert!(names.len() >= 60, "only {} vectors", names.len());
    for expect_path in names {
        let expect = std::fs::read_to_string(&expect_path).unwrap();
        let stem = expect_path.file_stem().unwrap().to_str().unwrap();
        let data = ["stele", "tlog-proof"]
            .iter()
            .map(|e| vectors_dir().join(format!("{stem}.{e}")))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{stem}: no data file"));
        let key = field(&expect, "key:").next().unwrap();
        let verdict = field(&expect, "verdict:").next().unwrap();
        let trusted = field(&expect, "trusted:")
            .next()
            .map(|t| vectors_dir().join(t));
        // Further keys pinned (a revoked key's successor) and revocations
        // the vector's verifier was told of (docs/FORMAT.md 15.3).
        let extra: Vec<&str> = field(&expect, "key:")
            .skip(1)
            .flat_map(|k| ["--key", k])
            .chain(field(&expect, "revoked:").flat_map(|r| ["--revoked", r]))
            .collect();
        let (code, report) = verify_cli(&data, key, trusted.as_deref(), &extra);
        assert_eq!(report["verdict"], verdict, "{stem}: {report:#}");
        assert_eq!(
            code,
            i32::from(verdict != "verified"),
            "{stem}: exit status"
        );
        for f in field(&expect, "failure:") {
            let (c, e) = f.split_once(' ').unwrap();
            let e = (e != "-").then(|| e.parse::<u64>().unwrap());
            assert!(
                has_failure(&report, c, e),
                "{stem}: no {c} at {e:?} in {:#}",
                report["failures"]
            );
        }
        for n in field(&expect, "notice:") {
            assert!(
                report["notices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["code"] == n),
                "{stem}: no notice {n}"
            );
        }
    }
}

/// A log of `n` entries (genesis + n-1 events) with checkpoints at `sizes`.
fn build(
    dir: &Path,
    signer: &stele_core::SignerKey,
    n: u64,
    sizes: &[u64],
    tweak: Option<u64>,
) -> Log {
    let opts = LogOptions {
        checkpoint_every: None,
        checkpoint_interval: None,
        ..LogOptions::default()
    };
    let log = Log::create_with(dir, "example.com/audit", signer, None, opts).unwrap();
    for i in 1..n {
        let who = if Some(i) == tweak { "mallory" } else { "alice" };
        let _ = log
            .append(json!({"actor": who, "action": "read", "n": i}))
            .unwrap();
        if sizes.contains(&(i + 1)) {
            let _ = log.checkpoint().unwrap();
        }
    }
    log
}

fn access_log(tmp: &Path) -> String {
    let other = tmp.join("access");
    let _ = ok(&stele(&[
        "init",
        other.to_str().unwrap(),
        "--origin",
        "example.com/auditors",
    ]));
    other.display().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "lock" {
            let _ = std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

// Cuts entries.jsonl to its first `keep` lines.
fn cut_entries(dir: &Path, keep: usize) {
    let p = dir.join("entries.jsonl");
    let text = std::fs::read(&p).unwrap();
    let end = text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(keep - 1)
        .unwrap()
        .0;
    std::fs::write(&p, &text[..=end]).unwrap();
}

#[test]
fn tail_cut_below_the_last_checkpoint_in_a_log_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = key::generate("example.com/audit").unwrap();
    let dir = tmp.path().join("log");
    let vkey = build(&dir, &signer, 20, &[10, 20], None)
        .verifier()
        .to_string();
    cut_entries(&dir, 17);
    let other = access_log(tmp.path());
    let (code, report) = verify_cli(&dir, &vkey, None, &["--access-log", &other]);
    assert_eq!(code, 1);
    assert_eq!(report["verdict"], "tampered");
    assert!(has_failure(&report, "truncated", Some(17)), "{report:#}");
    // The writer refuses to open it rather than silently dropping signed entries.
    let e = Log::open(&dir).unwrap_err();
    assert!(
        matches!(
            e,
            stele_writer::Error::Corrupt { .. } | stele_writer::Error::CheckpointMismatch { .. }
        ),
        "{e}"
    );
    // The library verifier agrees.
    let k = stele_core::VerifierKey::parse(&vkey).unwrap();
    let r = stele_writer::verify_dir(&dir, Options::new(vec![k]), &mut |_, _| {}).unwrap();
    assert_eq!(r.verdict, Verdict::Tampered);
    assert!(
        r.failures
            .iter()
            .any(|f| f.code == "truncated" && f.entry == Some(17))
    );
}

#[test]
fn directory_rolled_back_to_an_earlier_copy_is_caught_with_the_trusted_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = key::generate("example.com/audit").unwrap();
    let dir = tmp.path().join("log");
    let backup = tmp.path().join("backup");
    let log = build(&dir, &signer, 10, &[10], None);
    let vkey = log.verifier().to_string();
    drop(log);
    copy_dir(&dir, &backup);
    let log = Log::open(&dir).unwrap();
    for i in 10..20 {
        let _ = log.append(json!({"n": i})).unwrap();
        if i == 14 {
            let cp = log.checkpoint().unwrap();
            std::fs::write(tmp.path().join("trusted-15"), cp.note).unwrap();
        }
    }
    let _ = log.checkpoint().unwrap();
    drop(log);
    let other = access_log(tmp.path());
    let trusted = tmp.path().join("trusted-15");
    // Before the rollback: verified against the trusted checkpoint.
    let (code, report) = verify_cli(&dir, &vkey, Some(&trusted), &["--access-log", &other]);
    assert_eq!((code, &report["verdict"]), (0, &json!("verified")));
    // The attacker restores the old copy: a valid, older log.
    std::fs::remove_dir_all(&dir).unwrap();
    copy_dir(&backup, &dir);
    let (code, report) = verify_cli(&dir, &vkey, None, &["--access-log", &other]);
    assert_eq!(
        (code, &report["verdict"]),
        (0, &json!("verified")),
        "without an earlier checkpoint, a rollback looks like an older log (threat model)"
    );
    let (code, report) = verify_cli(&dir, &vkey, Some(&trusted), &["--access-log", &other]);
    assert_eq!(code, 1);
    assert!(has_failure(&report, "rollback", Some(10)), "{report:#}");
}

#[test]
fn key_holder_rewriting_a_directory_is_a_fork_against_the_trusted_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = key::generate("example.com/audit").unwrap();
    let dir = tmp.path().join("log");
    let log = build(&dir, &signer, 20, &[15, 20], None);
    let vkey = log.verifier().to_string();
    let trusted = tmp.path().join("trusted-15");
    std::fs::write(&trusted, &log.view().checkpoint_at(15).unwrap().note).unwrap();
    drop(log);
    // Someone with the key builds a second history where entry 7 differs, and
    // swaps it in: every checkpoint in it verifies with the pinned key.
    std::fs::remove_dir_all(&dir).unwrap();
    drop(build(&dir, &signer, 20, &[15, 20], Some(7)));
    let other = access_log(tmp.path());
    let (code, report) = verify_cli(&dir, &vkey, None, &["--access-log", &other]);
    assert_eq!(
        (code, &report["verdict"]),
        (0, &json!("verified")),
        "a key holder's rewrite verifies on its own (threat model)"
    );
    let (code, report) = verify_cli(&dir, &vkey, Some(&trusted), &["--access-log", &other]);
    assert_eq!(code, 1);
    assert!(has_failure(&report, "fork", None), "{report:#}");
    let fork = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "fork")
        .unwrap();
    // The message is the proof of misbehaviour: both roots for one size.
    let msg = fork["message"].as_str().unwrap();
    assert!(msg.contains("15"), "{msg}");
    assert!(
        fork["expected"].is_string() && fork["found"].is_string(),
        "{fork:#}"
    );
    assert_ne!(fork["expected"], fork["found"]);
}
