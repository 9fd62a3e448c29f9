//! A sealed log restored in part, or with an edited `stele.json`: the
//! writer refuses to go on in the clear, or with a new secret or no
//! auditors, where the log shows it sealed values (red-team: each went on
//! silently).

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

fn recipient(tmp: &Path) -> String {
    let id = tmp.join("auditor.key");
    let _ = std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/sealed/auditor.key"),
        &id,
    )
    .unwrap();
    std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ids = stele_seal::Identity::parse_file(&std::fs::read_to_string(&id).unwrap()).unwrap();
    ids[0].recipient()
}

/// A log sealing `/ip`, with an auditor and one sealed value.
fn sealed_log(tmp: &Path) -> PathBuf {
    let log = tmp.join("log");
    let _ = ok(&stele(&[
        "init",
        p(&log),
        "--origin",
        "pr.example/x",
        "--seal",
        "/ip",
    ]));
    let _ = ok(&stele(&["auditor", "add", p(&log), &recipient(tmp)]));
    let _ = append(p(&log), &[r#"{"actor":"alice","ip":"10.0.0.1"}"#]);
    log
}

fn entries(log: &Path) -> String {
    std::fs::read_to_string(log.join("entries.jsonl")).unwrap()
}

/// Refused: exit not 0, stderr holding `what`, the entries unchanged.
fn refused(log: &Path, what: &str) {
    let before = entries(log);
    let o = stele(&[
        "append",
        p(log),
        "--event",
        r#"{"actor":"carol","ip":"10.9.9.9"}"#,
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains(what), "{}", stderr(&o));
    assert_eq!(entries(log), before);
    assert!(!entries(log).contains("10.9.9.9"));
}

/// stele.json without its sealing rules (an older backup, an edit) while
/// the sidecar holds the log's secret: the next events would go in the
/// clear. Refused, unless `"unsealed": true` says so on purpose.
#[test]
fn a_config_without_the_rules_of_a_sealed_log_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let log = sealed_log(tmp.path());
    let cfg_path = log.join("stele.json");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    let _ = v.as_object_mut().unwrap().remove("sealed");
    std::fs::write(&cfg_path, v.to_string()).unwrap();
    refused(&log, "does not seal \"/ip\" any more");
    v["unsealed"] = serde_json::Value::Bool(true);
    std::fs::write(&cfg_path, v.to_string()).unwrap();
    let _ = append(p(&log), &[r#"{"actor":"carol","ip":"10.9.9.9"}"#]);
    assert!(entries(&log).contains("10.9.9.9"));
}

/// The whole sidecar gone (a backup that skipped the 0700 directory): no
/// new secret is made beside the sealed values already in the entries.
#[test]
fn a_missing_sidecar_is_not_made_anew_beside_sealed_values() {
    let tmp = tempfile::tempdir().unwrap();
    let log = sealed_log(tmp.path());
    std::fs::remove_dir_all(log.join("sealed")).unwrap();
    refused(&log, "partial restore?");
    assert!(!log.join("sealed/secret").exists());
    // Data keys without the secret: the same.
    let tmp = tempfile::tempdir().unwrap();
    let log = sealed_log(tmp.path());
    std::fs::remove_file(log.join("sealed/secret")).unwrap();
    refused(&log, "holds data keys: a partial restore?");
}

/// The auditors file gone while data keys are wrapped to auditors: new
/// values would be wrapped to no one. Refused; an empty file says "no
/// auditors" on purpose.
#[test]
fn a_missing_auditors_file_beside_wraps_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let log = sealed_log(tmp.path());
    std::fs::remove_file(log.join("sealed/auditors")).unwrap();
    refused(&log, "auditors is missing");
    std::fs::write(log.join("sealed/auditors"), "").unwrap();
    std::fs::set_permissions(
        log.join("sealed/auditors"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let _ = append(p(&log), &[r#"{"actor":"carol","ip":"10.9.9.9"}"#]);
}

/// A log that never had rules, sealing ad hoc (`{"stele.seal": …}`), has a
/// secret and data keys but nothing to drop: it is not refused.
#[test]
fn a_log_sealing_ad_hoc_only_is_not_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let _ = ok(&stele(&["init", p(&log), "--origin", "pr.example/y"]));
    let _ = append(p(&log), &[r#"{"actor":"a","note":{"stele.seal":"x"}}"#]);
    assert!(log.join("sealed/secret").exists());
    let _ = append(p(&log), &[r#"{"actor":"a","note":{"stele.seal":"y"}}"#]);
    let _ = append(p(&log), &[r#"{"a":1}"#]);
}

/// `stele forget` of a subject without a data key names the log's subject
/// pointer and the form its value takes (README's recipe forgot
/// `{"email":…}` under the default subject /actor, and missed entries
/// whose actor object had another member), never the value given.
#[test]
fn forget_of_an_unknown_subject_names_the_subject_pointer() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let _ = ok(&stele(&[
        "init",
        p(&log),
        "--origin",
        "pr.example/z",
        "--seal",
        "/actor/email",
    ]));
    let _ = append(
        p(&log),
        &[r#"{"actor":{"email":"alice@example.com","role":"admin"}}"#],
    );
    let o = stele(&[
        "forget",
        p(&log),
        "--subject",
        r#"{"email":"alice@example.com"}"#,
    ]);
    assert_ne!(o.status.code(), Some(0));
    let e = stderr(&o);
    assert!(e.contains("the value at \"/actor\" of each event"), "{e}");
    assert!(e.contains("every member"), "{e}");
    assert!(!e.contains("alice@example.com"), "{e}");
}
