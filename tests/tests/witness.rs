//! The witness vectors (tests/vectors/witness/, docs/FORMAT.md 14): the
//! committed files match the generator (`STELE_BLESS=1` rewrites them), and
//! core's verifier gives each its verdict, failures and quorum, in one piece
//! and one byte at a time.

use stele_core::verify::{Options, StreamVerifier, verify_bytes};
use stele_core::witness::Policy;
use stele_tests::kit::parse_expect;
use stele_tests::witness::{POLICY_FILE, dir, expect_text, policy, sample, vectors};

#[test]
fn witness_vectors_on_disk_match_the_generator() {
    let bless = std::env::var_os("STELE_BLESS").is_some();
    let log = sample();
    let key = log.key().to_string();
    let mut files = vec![(POLICY_FILE.to_string(), policy(&log).into_bytes())];
    for v in vectors() {
        files.push((format!("{}.{}", v.name, v.ext), v.data.clone()));
        files.push((
            format!("{}.expect", v.name),
            expect_text(&v, &key).into_bytes(),
        ));
    }
    let mut stale = Vec::new();
    for (name, bytes) in files {
        let path = dir().join(&name);
        if bless {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "witness vectors differ from the generator (STELE_BLESS=1): {stale:?}"
    );
}

#[test]
fn every_witness_vector_gives_its_verdict_failures_and_quorum() {
    let policy_text = std::fs::read(dir().join(POLICY_FILE)).unwrap();
    let mut names = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "expect") {
            continue;
        }
        names += 1;
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let e = parse_expect(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(e.policy.as_deref(), Some(POLICY_FILE), "{name}");
        let data = ["stele", "tlog-proof"]
            .iter()
            .find_map(|x| std::fs::read(dir().join(format!("{name}.{x}"))).ok())
            .unwrap();
        // Only the policy: its log line pins the log key.
        let mut opts = Options::new(vec![]);
        opts.set_policy(Policy::parse(&policy_text).unwrap());
        let report = verify_bytes(opts.clone(), &data);
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["verdict"], e.verdict, "{name}: {json:#}");
        for (code, entry) in &e.failures {
            assert!(
                report
                    .failures
                    .iter()
                    .any(|f| f.code == code.as_str() && f.entry == *entry),
                "{name}: no {code} in {json:#}"
            );
        }
        if !matches!(e.verdict.as_str(), "tampered") {
            assert_eq!(report.failures_total, 0, "{name}");
        }
        assert_eq!(
            json["quorum"]["met"],
            e.quorum.as_deref() == Some("met"),
            "{name}: {json:#}"
        );
        assert_eq!(json["quorum"]["name"], "two-of-three", "{name}");
        let mut byte = StreamVerifier::new(opts);
        for b in &data {
            byte.push(std::slice::from_ref(b));
        }
        assert_eq!(byte.finish(), report, "{name}: byte at a time");
    }
    assert_eq!(names, vectors().len());
}

#[test]
fn without_a_policy_cosignatures_are_unknown_signatures() {
    let log = sample();
    for v in vectors()
        .iter()
        .filter(|v| v.name == "quorum-unmet" || v.name == "split-view")
    {
        let report = verify_bytes(Options::new(vec![log.key()]), &v.data);
        let json = report.to_json();
        assert!(
            !json.contains("\"quorum\"") && !json.contains("\"witnesses\""),
            "{json}"
        );
        // Without witnesses the forked history verifies: the attack witnessing stops.
        assert_eq!(report.verdict.as_str(), "verified", "{}: {json}", v.name);
    }
}

#[test]
fn the_report_lists_who_cosigned_each_checkpoint() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "unknown-witness-ignored")
        .unwrap();
    let mut opts = Options::new(vec![]);
    opts.set_policy(Policy::parse(policy(&sample()).as_bytes()).unwrap());
    let json: serde_json::Value =
        serde_json::from_str(&verify_bytes(opts, &v.data).to_json()).unwrap();
    let cps = json["checkpoints"].as_array().unwrap();
    assert_eq!(
        cps.last().unwrap()["witnesses"],
        serde_json::json!(["w1", "w2"])
    );
    assert_eq!(cps[0]["witnesses"], serde_json::json!([]));
    assert_eq!(
        json["quorum"],
        serde_json::json!({"name": "two-of-three", "met": true, "size": 20, "cosigned_by": ["w1", "w2"]})
    );
}

// A repeated note's cosignatures are checked once (a cache in core): the
// results stay each note's own, byte for byte, whichever notes come between.
#[test]
fn repeated_notes_keep_their_own_cosignature_results() {
    let read = |name: &str| std::fs::read(dir().join(format!("{name}.stele"))).unwrap();
    let last_note = |data: &[u8]| {
        let at = data
            .windows(12)
            .rposition(|w| w == b"\ncheckpoint\n")
            .unwrap();
        data[at + 1..].to_vec()
    };
    let good = read("quorum-met");
    let bad = last_note(&read("bad-cosignature"));
    let ok = last_note(&good);
    assert_ne!(bad, ok);
    let mut opts = Options::new(vec![]);
    opts.set_policy(Policy::parse(&std::fs::read(dir().join(POLICY_FILE)).unwrap()).unwrap());
    let mut data = good.clone();
    for _ in 0..3 {
        data.extend_from_slice(&bad);
        data.extend_from_slice(&ok);
    }
    let report = verify_bytes(opts.clone(), &data);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["verdict"], "tampered", "{json:#}");
    // One bad cosignature per repeat of the bad note, none for the good one.
    assert_eq!(
        report
            .failures
            .iter()
            .filter(|f| f.code == "bad_signature")
            .count(),
        3,
        "{json:#}"
    );
    assert_eq!(report.failures_total, 3, "{json:#}");
    assert_eq!(json["quorum"]["met"], true, "{json:#}");
    let cps = json["checkpoints"].as_array().unwrap();
    let listed: Vec<&serde_json::Value> =
        cps.iter().rev().take(6).map(|c| &c["witnesses"]).collect();
    for (i, w) in listed.iter().enumerate() {
        assert_eq!(
            **w,
            serde_json::json!(["w1", "w2"]),
            "checkpoint {i} from the end: {json:#}"
        );
    }
    // Byte at a time: the same report.
    let mut byte = StreamVerifier::new(opts);
    for b in &data {
        byte.push(std::slice::from_ref(b));
    }
    assert_eq!(byte.finish(), report);
}
