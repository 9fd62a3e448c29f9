//! Timestamp records in core (docs/FORMAT.md 16.2, 16.4, 16.5), without
//! the crypto: placement, the size, malformed records, the imprint handed
//! to the checker, the report and the notice. The tokens themselves are
//! checked against a real TSA in writer/tests/timestamps.rs.

use base64::Engine as _;
use std::sync::{Arc, Mutex};
use stele_core::VerifierKey;
use stele_core::hash::Hash;
use stele_core::timestamp::{
    Attestation, TokenChecker, TokenCheckerHandle, TokenError, TokenProblem, imprint,
};
use stele_core::verify::{Options, Report, verify_bytes};

const LOG: &str = include_str!("../vectors/valid-log.stele");
const KEY: &str = "example.com/stele-vectors+5575e202+ARl/ayPhbIUyxqvIOPrNXqeJvgx2spIDNAOb+os9No1h";
const BODY5: &str = "example.com/stele-vectors\n5\n1d1kwdCB9vAsu6rqYCnkJ7qTzIu86c3AgysHsgCtIGo=\n";

/// Accepts the token `ok` for any imprint it is asked about, fails the
/// token `bad` as untrusted; records the imprints asked about.
#[derive(Default)]
struct Fake(Mutex<Vec<Hash>>);

impl TokenChecker for Fake {
    fn check(&self, token: &[u8], imp: &Hash) -> Result<Attestation, TokenError> {
        self.0.lock().unwrap().push(*imp);
        if token == b"ok" {
            Ok(Attestation {
                time: "2026-11-30T12:00:00Z".into(),
                tsa: "CN=Fake TSA".into(),
            })
        } else {
            Err(TokenError {
                problem: TokenProblem::Untrusted,
                message: "not trusted".into(),
            })
        }
    }
}

/// The valid log with `line` inserted after line `after` (1-based).
fn with(after: usize, line: &str) -> String {
    let mut out = String::new();
    for (i, l) in LOG.lines().enumerate() {
        out.push_str(l);
        out.push('\n');
        if i + 1 == after {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn verify(data: &str, checker: Option<Arc<Fake>>) -> Report {
    let mut o = Options::new(vec![VerifierKey::parse(KEY).unwrap()]);
    o.tsa = checker.map(|c| {
        let c: Arc<dyn TokenChecker> = c;
        TokenCheckerHandle(c)
    });
    verify_bytes(o, data.as_bytes())
}

fn codes(r: &Report) -> Vec<String> {
    r.failures
        .iter()
        .map(|f| format!("{} {}", f.code, f.line))
        .collect()
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

// "ok" and "bad" in base64.
const OK: &str = "b2s=";
const BAD: &str = "YmFk";

#[test]
fn a_token_after_its_checkpoint_is_checked_for_the_body_imprint() {
    let fake = Arc::new(Fake::default());
    let r = verify(&with(18, &format!("timestamp 5 {OK}")), Some(fake.clone()));
    assert_eq!(r.verdict.as_str(), "verified", "{}", r.to_json());
    assert_eq!(*fake.0.lock().unwrap(), vec![imprint(BODY5.as_bytes())]);
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(
        j["timestamps"],
        serde_json::json!([{"size":5,"line":19,"status":"ok","time":"2026-11-30T12:00:00Z","tsa":"CN=Fake TSA"}])
    );
    // The hand-written JSON is serde's.
    assert_eq!(r.to_json(), serde_json::to_string(&r).unwrap());
}

#[test]
fn a_failed_token_is_a_failure_naming_its_checkpoint() {
    let r = verify(
        &with(18, &format!("timestamp 5 {BAD}")),
        Some(Arc::new(Fake::default())),
    );
    assert_eq!(codes(&r), ["timestamp_untrusted 19"]);
    assert_eq!(
        r.failures[0].message,
        "checkpoint at line 13 (size 5): timestamp token at line 19: not trusted"
    );
    assert_eq!(r.timestamps.unwrap()[0].status, "failed");
}

#[test]
fn misplaced_and_malformed_records_are_bad_timestamp() {
    let fake = Some(Arc::new(Fake::default()));
    // After an entry line, not a checkpoint.
    let r = verify(&with(19, &format!("timestamp 5 {OK}")), fake.clone());
    assert_eq!(codes(&r), ["bad_timestamp 20"]);
    assert!(
        r.failures[0]
            .message
            .contains("does not follow a checkpoint record")
    );
    // The size is not the checkpoint's.
    let r = verify(&with(18, &format!("timestamp 4 {OK}")), fake.clone());
    assert_eq!(codes(&r), ["bad_timestamp 19"]);
    assert_eq!(r.failures[0].expected.as_deref(), Some("size 5"));
    // Malformed: no token, leading zero, bad base64, trailing space.
    for bad in [
        "timestamp 5",
        "timestamp 05 b2s=",
        "timestamp 5 b2s",
        "timestamp 5 b2s= ",
        "timestamp  5 b2s=",
    ] {
        let r = verify(&with(18, bad), fake.clone());
        assert_eq!(codes(&r), ["bad_timestamp 19"], "{bad}");
    }
    // A sealed-field record in between: the token no longer directly
    // follows its checkpoint (16.2), whatever that record is.
    let forgotten = "forgotten 0123456789abcdef0123456789abcdef";
    let r = verify(
        &with(18, &format!("{forgotten}\ntimestamp 5 {OK}")),
        fake.clone(),
    );
    assert!(
        codes(&r).contains(&"bad_timestamp 20".to_string()),
        "{:?}",
        codes(&r)
    );
    assert!(r.failures.iter().any(|f| f.code.as_str() == "bad_timestamp"
        && f.message.contains("does not follow a checkpoint record")));
    // Two tokens for one checkpoint (two TSAs) are fine.
    let two = with(18, &format!("timestamp 5 {OK}\ntimestamp 5 {OK}"));
    let r = verify(&two, fake.clone());
    assert_eq!(r.verdict.as_str(), "verified");
    assert_eq!(r.timestamps.unwrap().len(), 2);
}

/// A token repeated after its checkpoint is checked once (its signatures
/// and path cost about a millisecond, a SHA-256 of it microseconds: an
/// export with 50,000 copies of a 1.3 KB token took 65 s to verify), and
/// every copy is still listed and judged as the first.
#[test]
fn a_repeated_token_is_checked_once_and_every_copy_judged() {
    let fake = Arc::new(Fake::default());
    let mut lines = vec![format!("timestamp 5 {OK}"); 3];
    lines.extend([format!("timestamp 5 {BAD}"), format!("timestamp 5 {BAD}")]);
    lines.push(format!("timestamp 5 {OK}"));
    let r = verify(&with(18, &lines.join("\n")), Some(fake.clone()));
    // Asked once per distinct token, for the checkpoint's imprint.
    assert_eq!(*fake.0.lock().unwrap(), vec![imprint(BODY5.as_bytes()); 2]);
    assert_eq!(
        codes(&r),
        ["timestamp_untrusted 22", "timestamp_untrusted 23"]
    );
    for (f, line) in r.failures.iter().zip([22, 23]) {
        assert_eq!(
            f.message,
            format!("checkpoint at line 13 (size 5): timestamp token at line {line}: not trusted")
        );
    }
    let ts = r.timestamps.unwrap();
    let got: Vec<(u64, &str, Option<&str>)> = ts
        .iter()
        .map(|t| (t.line, t.status, t.tsa.as_deref()))
        .collect();
    let ok = Some("CN=Fake TSA");
    assert_eq!(
        got,
        [
            (19, "ok", ok),
            (20, "ok", ok),
            (21, "ok", ok),
            (22, "failed", None),
            (23, "failed", None),
            (24, "ok", ok)
        ]
    );
    // The same token after another checkpoint is asked about for that
    // checkpoint's imprint.
    let fake = Arc::new(Fake::default());
    let data = with(18, &format!("timestamp 5 {OK}")).replacen(
        "\n{\"event\":{\"action\":\"read\",\"actor\":\"bob\"",
        &format!("\ntimestamp 1 {OK}\n{{\"event\":{{\"action\":\"read\",\"actor\":\"bob\""),
        1,
    );
    let r = verify(&data, Some(fake.clone()));
    assert_eq!(r.verdict.as_str(), "verified", "{}", r.to_json());
    let body1 = "example.com/stele-vectors\n1\nkSae4LT+yUUrygpeeovDHluLaYb5qxd4q8fKubgqDmQ=\n";
    assert_eq!(
        *fake.0.lock().unwrap(),
        vec![imprint(body1.as_bytes()), imprint(BODY5.as_bytes())]
    );
    // Bounded: after MAX_CACHED_CHECKS distinct tokens the results are
    // forgotten, and the first token is asked about again.
    let fake = Arc::new(Fake::default());
    let n = stele_core::timestamp::MAX_CACHED_CHECKS;
    let mut lines: Vec<String> = (0..=n)
        .map(|i| format!("timestamp 5 {}", B64.encode(format!("t{i}"))))
        .collect();
    lines.push(lines[0].clone());
    let r = verify(&with(18, &lines.join("\n")), Some(fake.clone()));
    assert_eq!(fake.0.lock().unwrap().len(), n + 2);
    assert_eq!(r.failures_total, n as u64 + 2);
}

#[test]
fn without_a_checker_tokens_are_unchecked_and_a_notice_says_so() {
    let r = verify(&with(18, &format!("timestamp 5 {BAD}")), None);
    assert_eq!(r.verdict.as_str(), "verified");
    assert_eq!(r.timestamps.as_ref().unwrap()[0].status, "unchecked");
    assert_eq!(
        r.notices.last().unwrap().code.as_str(),
        "timestamp_unchecked"
    );
    assert_eq!(
        r.notices.last().unwrap().message,
        "1 timestamp token was not checked: no TSA certificate was given"
    );
    // No record, no member: reports of other files are unchanged.
    let r = verify(LOG, None);
    assert!(r.timestamps.is_none());
    assert!(!r.to_json().contains("timestamps"));
}
