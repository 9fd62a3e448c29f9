//! The witness vectors (tests/vectors/witness/): exports of one log whose
//! checkpoints carry `cosignature/v1` cosignatures, verified under the 2-of-3
//! policy `2-of-3.policy` (docs/FORMAT.md 14). Each `.expect` adds a
//! `policy:` line and a `quorum: met|unmet` line to the usual facts.

use crate::vectors::rechain;
use crate::{TestLog, sample_log};
use std::path::PathBuf;
use stele_core::witness::Cosigner;

/// The origin of the witnessed sample log.
pub const ORIGIN: &str = "example.com/stele-witnessed";
/// The policy file every witness vector is verified with.
pub const POLICY_FILE: &str = "2-of-3.policy";

/// The folder of the witness vectors.
pub fn dir() -> PathBuf {
    crate::vectors::dir().join("witness")
}

/// Witness `n` (1..=3 are in the policy; others are not).
pub fn witness(n: u8) -> Cosigner {
    Cosigner::from_seed(&format!("witness-{n}.example"), [100 + n; 32]).expect("name")
}

/// The policy: the log, witnesses 1..3, two of them required.
pub fn policy(log: &TestLog) -> String {
    let w = |n: u8| witness(n).verifier().to_string();
    format!(
        "# the witness vectors' policy (C2SP tlog-policy)\nlog {}\nwitness w1 {} http://127.0.0.1:1/w1\nwitness w2 {}\nwitness w3 {}\ngroup two-of-three 2 w1 w2 w3\nquorum two-of-three\n",
        log.key(),
        w(1),
        w(2),
        w(3)
    )
}

/// One witness vector.
#[derive(Debug, Clone)]
pub struct WitnessVector {
    /// File stem.
    pub name: &'static str,
    /// `stele` or `tlog-proof`.
    pub ext: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// The file.
    pub data: Vec<u8>,
    /// The verdict.
    pub verdict: &'static str,
    /// Failures that must be in the report (code, entry).
    pub failures: Vec<(&'static str, Option<u64>)>,
    /// The report's `quorum.met`.
    pub met: bool,
}

/// `note` with a cosignature line by each of `by` at a fixed time.
pub fn cosign(note: &str, by: &[u8]) -> String {
    let text = &note[..note.find("\n\n").expect("note") + 1];
    let mut out = note.to_string();
    for &n in by {
        out.push_str(&witness(n).cosign(text, 1_795_683_600 + u64::from(n)));
    }
    out
}

/// The sample log with its last checkpoint cosigned by `by`.
fn witnessed(log: &TestLog, by: &[u8]) -> TestLog {
    let mut t = log.clone();
    let last = t.checkpoints.last_mut().expect("checkpoint");
    last.1 = cosign(&last.1, by);
    t
}

/// The log the witness vectors are made from.
pub fn sample() -> TestLog {
    sample_log(ORIGIN, 20, 5)
}

/// Every witness vector.
pub fn vectors() -> Vec<WitnessVector> {
    let log = sample();
    let v = |name, about, data: String, verdict, failures: Vec<_>, met| WitnessVector {
        name,
        ext: "stele",
        about,
        data: data.into_bytes(),
        verdict,
        failures,
        met,
    };
    let met = witnessed(&log, &[1, 2]);
    let mut out = vec![
        v(
            "quorum-met",
            "the last checkpoint (size 20) cosigned by w1 and w2; the earlier ones by nobody (each is a prefix of it)",
            met.export_log(),
            "verified",
            vec![],
            true,
        ),
        v(
            "quorum-unmet",
            "the last checkpoint cosigned by w1 only: one of the two required",
            witnessed(&log, &[1]).export_log(),
            "tampered",
            vec![("quorum_not_met", None)],
            false,
        ),
        v(
            "bad-cosignature",
            "w1 and w2 cosign the last checkpoint, and a line under w3's name and key ID carries w3's cosignature of the checkpoint of size 19",
            {
                let mut t = witnessed(&log, &[1, 2]);
                let forged = cosign(&log.checkpoint_note(19, &log.signer), &[3]);
                let line = forged.lines().last().expect("line").to_string();
                t.checkpoints
                    .last_mut()
                    .expect("cp")
                    .1
                    .push_str(&(line + "\n"));
                t.export_log()
            },
            "tampered",
            vec![("bad_signature", None)],
            true,
        ),
        v(
            "unknown-witness-ignored",
            "the last checkpoint cosigned by w1 and w2 and by witness-9, which is not in the policy (ignored)",
            witnessed(&log, &[9, 1, 2]).export_log(),
            "verified",
            vec![],
            true,
        ),
        v(
            "split-view",
            "the key holder re-signs a second history (entry 7 changed); witness w3, which never saw the first, cosigns it; w1 and w2 refuse, so it has one cosignature of two",
            {
                let mut lines = log.lines.clone();
                lines[7] = lines[7].replace("req-00000007", "req-00000070");
                let mut t = rechain(&lines);
                t.signer = log.signer.clone();
                t.origin = log.origin.clone();
                t.checkpoints.clear();
                for s in [5, 10, 15, 20] {
                    let note = t.checkpoint_note(s, &log.signer);
                    t.checkpoints.push((s, note));
                }
                let last = t.checkpoints.last_mut().expect("cp");
                last.1 = cosign(&last.1, &[3]);
                t.export_log()
            },
            "tampered",
            vec![("quorum_not_met", None)],
            false,
        ),
        v(
            "range",
            "entries 6..11 up to the cosigned checkpoint of size 20",
            met.export_range(6, 12),
            "verified",
            vec![],
            true,
        ),
        v(
            "entries-unmet",
            "selected entries proved against a checkpoint cosigned by w2 only",
            witnessed(&log, &[2]).export_entries(&[3, 17]),
            "tampered",
            vec![("quorum_not_met", None)],
            false,
        ),
    ];
    out.push(WitnessVector {
        name: "tlog-proof",
        ext: "tlog-proof",
        about: "a C2SP tlog-proof of entry 7 whose checkpoint carries the cosignatures of w2 and w3",
        data: witnessed(&log, &[2, 3]).tlog_proof(7).into_bytes(),
        verdict: "verified",
        failures: vec![],
        met: true,
    });
    out
}

/// The `.expect` file of a witness vector.
pub fn expect_text(v: &WitnessVector, key: &str) -> String {
    let mut s = format!(
        "# {}\nkey: {key}\npolicy: {POLICY_FILE}\nverdict: {}\n",
        v.about, v.verdict
    );
    for (code, entry) in &v.failures {
        let e = entry.map_or("-".to_string(), |e| e.to_string());
        s.push_str(&format!("failure: {code} {e}\n"));
    }
    s.push_str(if v.met {
        "quorum: met\n"
    } else {
        "quorum: unmet\n"
    });
    s
}
