//! RFC 3161 timestamps end to end (docs/FORMAT.md section 16): a real TSA
//! (`openssl ts -reply` behind a loopback HTTP handler, with a test CA made
//! by openssl in a temporary directory), `stele anchor`, exports carrying
//! the tokens, `stele verify --tsa-ca`, each bad token a failure naming its
//! checkpoint, `openssl ts -verify` agreeing with every verdict, and the
//! shared vectors in tests/vectors/timestamps/ (regenerate with
//! STELE_WRITE_VECTORS=1).

mod common;

use base64::Engine as _;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use stele_core::VerifierKey;
use stele_core::timestamp::{TimestampRecord, TokenCheckerHandle};
use stele_core::verify::{Options, Report, verify_bytes};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/timestamps")
}

#[path = "common/tsa.rs"]
mod tsa;
use tsa::Tsa;

/// `openssl ts -verify` of `token` for `body` against `ca`: true if it says OK.
fn openssl_verifies(dir: &Path, token: &[u8], body: &[u8], ca: &Path) -> bool {
    std::fs::write(dir.join("x.tok"), token).unwrap();
    std::fs::write(dir.join("x.body"), body).unwrap();
    Command::new("openssl")
        .args([
            "ts",
            "-verify",
            "-token_in",
            "-in",
            "x.tok",
            "-data",
            "x.body",
        ])
        .args(["-CAfile", p(ca)])
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success()
}

fn checker(ca: &Path) -> TokenCheckerHandle {
    let c = stele_tsa::TsaChecker::from_pem_or_der(&std::fs::read(ca).unwrap()).unwrap();
    TokenCheckerHandle(Arc::new(c))
}

fn verify_tsa(data: &[u8], vkey: &str, ca: Option<&Path>) -> Report {
    let mut o = Options::new(vec![VerifierKey::parse(vkey).unwrap()]);
    o.tsa = ca.map(checker);
    verify_bytes(o, data)
}

/// The note text (checkpoint body) of each checkpoint record, by size.
fn bodies(export: &str) -> Vec<(u64, String)> {
    let lines: Vec<&str> = export.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if *l == "checkpoint" {
            let body: String = lines[i + 1..]
                .iter()
                .take_while(|l| !l.is_empty())
                .map(|l| format!("{l}\n"))
                .collect();
            let size = lines[i + 2].parse().unwrap();
            out.push((size, body));
        }
    }
    out
}

/// The export with the timestamp record of checkpoint `size` replaced by
/// `line` (or removed when `line` is empty).
fn with_record(export: &str, size: u64, line: &str) -> String {
    let prefix = format!("timestamp {size} ");
    let mut out = String::new();
    for l in export.lines() {
        if l.starts_with(&prefix) {
            if !line.is_empty() {
                out.push_str(line);
                out.push('\n');
            }
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

fn record_line(size: u64, token: &[u8]) -> String {
    format!("timestamp {size} {}", B64.encode(token))
}

fn token_in(export: &str, size: u64) -> Vec<u8> {
    let prefix = format!("timestamp {size} ");
    let l = export.lines().find(|l| l.starts_with(&prefix)).unwrap();
    TimestampRecord::parse(l.as_bytes()).unwrap().token
}

struct Case {
    name: &'static str,
    about: &'static str,
    code: Option<&'static str>,
    data: String,
    /// The token the case is about, and the body it must attest.
    token: Vec<u8>,
    body: String,
}

/// An anchored log (checkpoints 3 and 5 anchored through HTTP) and every
/// bad case built from its export.
fn cases(tmp: &Path, tsa: &Tsa) -> (String, Vec<Case>) {
    let (log, vkey) = init(tmp);
    let receipts = append(
        &log,
        &[
            r#"{"type":"auth","actor":"alice"}"#,
            r#"{"type":"auth","actor":"bob"}"#,
        ],
    );
    assert_eq!(receipts.len(), 2);
    let good_url = format!("{}/good", tsa.url);
    let out = ok(&stele(&[
        "anchor",
        &log,
        "--tsa",
        &good_url,
        "--ca",
        p(&tsa.ca()),
    ]));
    assert!(
        out.starts_with("anchored checkpoint 3: existed by "),
        "{out}"
    );
    assert!(
        out.contains("attested by CN=Stele Test TSA,O=Stele Tests"),
        "{out}"
    );
    let again = ok(&stele(&["anchor", &log, "--tsa", &good_url]));
    assert_eq!(again, "checkpoint 3 is already anchored\n");
    let receipts = append(
        &log,
        &[
            r#"{"type":"auth","actor":"carol"}"#,
            r#"{"type":"auth","actor":"dave"}"#,
        ],
    );
    assert_eq!(receipts.len(), 2);
    let out = ok(&stele(&["anchor", &log, "--tsa", &good_url]));
    assert_eq!(
        out,
        "anchored checkpoint 5 (token not checked: pass --ca FILE to check it)\n"
    );
    let file = tmp.join("valid.stele");
    let _ = ok(&stele(&["export", &log, "-o", p(&file)]));
    let valid = std::fs::read_to_string(&file).unwrap();
    let b = bodies(&valid);
    let body5 = b.iter().find(|(s, _)| *s == 5).unwrap().1.clone();
    let body3 = b.iter().find(|(s, _)| *s == 3).unwrap().1.clone();
    let good5 = token_in(&valid, 5);
    let mut cases = vec![Case {
        name: "timestamp-valid",
        about: "checkpoints 3 and 5 anchored by the test TSA: both tokens check out",
        code: None,
        data: valid.clone(),
        token: good5.clone(),
        body: body5.clone(),
    }];
    let mut bad = |name, about, code, token: Vec<u8>| {
        cases.push(Case {
            name,
            about,
            code: Some(code),
            data: with_record(&valid, 5, &record_line(5, &token)),
            token,
            body: body5.clone(),
        });
    };
    bad(
        "timestamp-wrong-imprint",
        "checkpoint 5's token is over other bytes than its body",
        "timestamp_mismatch",
        tsa.token("good", b"not the checkpoint\n"),
    );
    bad(
        "timestamp-other-checkpoint",
        "checkpoint 5 carries checkpoint 3's token",
        "timestamp_mismatch",
        token_in(&valid, 3),
    );
    bad(
        "timestamp-wrong-certificate",
        "checkpoint 5's token is signed by a TSA of another CA",
        "timestamp_untrusted",
        tsa.token("other", body5.as_bytes()),
    );
    bad(
        "timestamp-no-eku",
        "checkpoint 5's token is signed by a certificate without the timeStamping EKU",
        "timestamp_untrusted",
        tsa.token("noeku", body5.as_bytes()),
    );
    bad(
        "timestamp-expired",
        "checkpoint 5's token is signed by a TSA certificate that expired before its genTime",
        "timestamp_untrusted",
        tsa.token("expired", body5.as_bytes()),
    );
    bad(
        "timestamp-truncated",
        "checkpoint 5's token is cut short (DER truncated)",
        "bad_timestamp",
        good5[..good5.len() - 40].to_vec(),
    );
    let dup = tsa.token("dup", body5.as_bytes());
    cases.push(Case {
        name: "timestamp-duplicate-certificate",
        about: "checkpoint 5's token lists the TSA certificate twice (OpenSSL's TSA with that certificate in its certs file, asked for it by certReq): both tokens check out",
        code: None,
        data: with_record(&valid, 5, &record_line(5, &dup)),
        token: dup,
        body: body5.clone(),
    });
    let _ = body3;
    (vkey, cases)
}

/// The policy file of the rotated vector (C2SP tlog-policy): its log's
/// genesis key, the test kit's witnesses 1 to 3, two of them required.
const ROTATED_POLICY: &str = "witness.policy";

/// A log whose key is rotated (`stele key rotate --overlap 1`) with a token
/// on a checkpoint of each key: size 3 (the genesis key's), size 4 (the
/// overlap: both keys sign it) and size 5 (the new key's alone); the last
/// checkpoint cosigned by witnesses 1 and 2 (after its signature lines, so
/// its token still attests it). Returns the genesis key, the export, the
/// policy text.
fn rotated_anchored(tmp: &Path, tsa: &Tsa) -> (String, String, String) {
    let (log, vkey) = init(&tmp.join("rotated"));
    let url = format!("{}/good", tsa.url);
    let ca = tsa.ca();
    let anchor = |size: u64| {
        let out = ok(&stele(&["anchor", &log, "--tsa", &url, "--ca", p(&ca)]));
        assert!(
            out.starts_with(&format!("anchored checkpoint {size}: existed by ")),
            "{out}"
        );
    };
    let _ = append(
        &log,
        &[
            r#"{"type":"auth","actor":"alice"}"#,
            r#"{"type":"auth","actor":"bob"}"#,
        ],
    );
    anchor(3);
    let o = stele(&["key", "rotate", &log, "--overlap", "1"]);
    let _ = ok(&o);
    assert!(
        stderr(&o).contains("signs from tree size 4 on"),
        "{}",
        stderr(&o)
    );
    anchor(4);
    let _ = append(&log, &[r#"{"type":"auth","actor":"carol"}"#]);
    anchor(5);
    let file = tmp.join("rotated.stele");
    let _ = ok(&stele(&["export", &log, "-o", p(&file)]));
    let export = std::fs::read_to_string(&file).unwrap();
    // Cosign checkpoint 5: its cosignature lines follow its signature lines.
    let body5 = bodies(&export)
        .into_iter()
        .find(|(s, _)| *s == 5)
        .unwrap()
        .1;
    let cosigned = stele_tests::witness::cosign(&format!("{body5}\n"), &[1, 2]);
    let cosignatures = &cosigned[body5.len() + 1..];
    let lines: Vec<&str> = export.lines().collect();
    let mut out = String::new();
    let mut in5 = false;
    for (i, l) in lines.iter().enumerate() {
        out.push_str(l);
        out.push('\n');
        if *l == "checkpoint" {
            in5 = lines.get(i + 2) == Some(&"5");
        }
        let next_is_sig = lines.get(i + 1).is_some_and(|n| n.starts_with("\u{2014} "));
        if in5 && l.starts_with("\u{2014} ") && !next_is_sig {
            out.push_str(cosignatures);
            in5 = false;
        }
    }
    let w = |n: u8| stele_tests::witness::witness(n).verifier().to_string();
    let policy = format!(
        "# the policy of timestamp-rotated (C2SP tlog-policy)\nlog {vkey}\nwitness w1 {}\nwitness w2 {}\nwitness w3 {}\ngroup two-of-three 2 w1 w2 w3\nquorum two-of-three\n",
        w(1),
        w(2),
        w(3)
    );
    (vkey, out, policy)
}

#[test]
fn anchored_exports_verify_and_every_bad_token_fails_naming_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let (vkey, cases) = cases(tmp.path(), &tsa);
    for c in &cases {
        // Core, with the CA.
        let r = verify_tsa(c.data.as_bytes(), &vkey, Some(&tsa.ca()));
        let j: Value = serde_json::from_str(&r.to_json()).unwrap();
        let ts = j["timestamps"].as_array().unwrap();
        assert_eq!(ts.len(), 2, "{}", c.name);
        match c.code {
            None => {
                assert_eq!(j["verdict"], "verified", "{}: {}", c.name, r.to_json());
                for t in ts {
                    assert_eq!(t["status"], "ok");
                    assert_eq!(t["tsa"], "CN=Stele Test TSA,O=Stele Tests");
                    assert!(t["time"].as_str().unwrap().ends_with('Z'));
                }
            }
            Some(code) => {
                assert_eq!(j["verdict"], "tampered", "{}", c.name);
                assert_eq!(r.failures.len(), 1, "{}: {:?}", c.name, r.failures);
                let f = &r.failures[0];
                assert_eq!(f.code.as_str(), code, "{}: {}", c.name, f.message);
                assert!(
                    f.message.contains("(size 5): timestamp token at line"),
                    "{}: {}",
                    c.name,
                    f.message
                );
                assert_eq!(ts[0]["status"], "ok");
                assert_eq!(ts[1]["status"], "failed");
            }
        }
        // OpenSSL agrees.
        assert_eq!(
            openssl_verifies(&tsa.dir, &c.token, c.body.as_bytes(), &tsa.ca()),
            c.code.is_none(),
            "openssl ts -verify disagrees on {}",
            c.name
        );
        // Without the CA: nothing is checked, a notice says so.
        let r = verify_tsa(c.data.as_bytes(), &vkey, None);
        assert_eq!(r.verdict.as_str(), "verified", "{}", c.name);
        assert!(
            r.notices
                .iter()
                .any(|n| n.code.as_str() == "timestamp_unchecked"),
            "{}",
            c.name
        );
    }
    // The CLI: stele verify --tsa-ca says what each anchor attests.
    let file = tmp.path().join("v.stele");
    std::fs::write(&file, &cases[0].data).unwrap();
    let ca = tsa.ca();
    let out = ok(&stele(&[
        "verify",
        p(&file),
        "--key",
        &vkey,
        "--tsa-ca",
        p(&ca),
    ]));
    assert!(out.starts_with("verified: "), "{out}");
    for size in [3, 5] {
        assert!(
            out.contains(&format!("checkpoint {size} existed by 2"))
                && out.contains(", attested by CN=Stele Test TSA,O=Stele Tests"),
            "{out}"
        );
        assert!(!out.contains("NOT signed"), "{out}");
    }
    // Checked with another log's key, the same tokens date notes no
    // trusted key signed: each line says so (an attacker's review: the
    // line read as a fact about the log).
    let other = stele_writer::key::generate("example.com/another")
        .unwrap()
        .verifier()
        .to_string();
    let o = stele(&["verify", p(&file), "--key", &other, "--tsa-ca", p(&ca)]);
    let out = String::from_utf8_lossy(&o.stdout);
    for size in [3, 5] {
        assert!(
            out.contains(&format!("checkpoint {size} existed by 2"))
                && out.contains("but that checkpoint is NOT signed by a trusted key"),
            "{out}"
        );
    }
    std::fs::write(&file, &cases[3].data).unwrap();
    let o = stele(&["verify", p(&file), "--key", &vkey, "--tsa-ca", p(&ca)]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("failure timestamp_untrusted"), "{out}");
    // A CA file that is not one is refused before verifying.
    let o = stele(&["verify", p(&file), "--key", &vkey, "--tsa-ca", p(&file)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--tsa-ca"), "{}", stderr(&o));
}

#[test]
fn anchor_refuses_a_token_that_fails_the_ca_and_keeps_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let (log, _) = init(tmp.path());
    let url = format!("{}/expired", tsa.url);
    let o = stele(&["anchor", &log, "--tsa", &url, "--ca", p(&tsa.ca())]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("is valid from"), "{}", stderr(&o));
    assert!(!Path::new(&log).join("timestamps").exists());
    // A token offering many certificates named like its issuer: at most
    // 16 signatures are tried while building its path (each costs an
    // ECDSA or RSA check: 70 such decoys made a verification 146 times
    // slower), then it is refused, saying why.
    tsa.decoys(20);
    let url = format!("{}/decoys", tsa.url);
    let o = stele(&["anchor", &log, "--tsa", &url, "--ca", p(&tsa.ca())]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("offers more than 16 certificates that could have issued"),
        "{}",
        stderr(&o)
    );
    // A few are tried, and the token refused for what it is.
    tsa.decoys(3);
    let o = stele(&["anchor", &log, "--tsa", &url, "--ca", p(&tsa.ca())]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("is issued by CN=Other TSA CA, not by the given CA"),
        "{}",
        stderr(&o)
    );
    assert!(!Path::new(&log).join("timestamps").exists());
    // A TSA that answers 500 is an error naming the URL.
    let url = format!("{}/nosuch", tsa.url);
    let o = stele(&["anchor", &log, "--tsa", &url]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains(&url), "{}", stderr(&o));
}

/// A TSA whose `certs` file holds its own certificate, asked for it
/// (`certReq`, which Stele's requests always set): OpenSSL's TSA lists that
/// certificate twice in the token's `certificates` SET, which the signature
/// does not cover, and `openssl ts -verify` accepts the token. So do `stele
/// anchor --ca`, core and `stele verify --tsa-ca` (red-team: the `der`
/// crate's "SET OF contains duplicate" made such an honest export
/// `tampered`).
#[test]
fn a_token_listing_the_tsa_certificate_twice_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"type":"auth","actor":"alice"}"#]);
    let url = format!("{}/dup", tsa.url);
    let out = ok(&stele(&[
        "anchor",
        &log,
        "--tsa",
        &url,
        "--ca",
        p(&tsa.ca()),
    ]));
    assert!(
        out.starts_with("anchored checkpoint 2: existed by "),
        "{out}"
    );
    let file = tmp.path().join("dup.stele");
    let _ = ok(&stele(&["export", &log, "-o", p(&file)]));
    let export = std::fs::read_to_string(&file).unwrap();
    let token = token_in(&export, 2);
    tsa::sh(
        &tsa.dir,
        "openssl x509 -in good.crt -outform DER -out good.der",
    );
    let cert = std::fs::read(tsa.dir.join("good.der")).unwrap();
    assert_eq!(
        token.windows(cert.len()).filter(|w| *w == cert).count(),
        2,
        "the TSA certificate twice in the token"
    );
    let body = bodies(&export)
        .into_iter()
        .find(|(s, _)| *s == 2)
        .unwrap()
        .1;
    assert!(openssl_verifies(
        &tsa.dir,
        &token,
        body.as_bytes(),
        &tsa.ca()
    ));
    let r = verify_tsa(export.as_bytes(), &vkey, Some(&tsa.ca()));
    assert_eq!(r.verdict.as_str(), "verified", "{}", r.to_json());
    let t = &r.timestamps.as_ref().unwrap()[0];
    assert_eq!(
        (t.status, t.tsa.as_deref()),
        ("ok", Some("CN=Stele Test TSA,O=Stele Tests"))
    );
    let out = ok(&stele(&[
        "verify",
        p(&file),
        "--key",
        &vkey,
        "--tsa-ca",
        p(&tsa.ca()),
    ]));
    assert!(out.starts_with("verified: "), "{out}");
    assert!(out.contains("checkpoint 2 existed by "), "{out}");
}

/// The committed vectors, through core and the CLI, and each token through
/// `openssl ts -verify`, all agreeing with the `.expect` files.
#[test]
fn timestamp_vectors_give_their_expected_verdicts() {
    let dir = vectors_dir();
    if std::env::var_os("STELE_WRITE_VECTORS").is_some() {
        write_vectors(&dir);
    }
    let ca = dir.join("ca.pem");
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "expect") {
            continue;
        }
        seen += 1;
        let expect = std::fs::read_to_string(&path).unwrap();
        let get = |k: &str| {
            expect
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap()
                .to_string()
        };
        let (vkey, verdict) = (get("key: "), get("verdict: "));
        let fails: Vec<String> = expect
            .lines()
            .filter_map(|l| l.strip_prefix("failure: "))
            .map(String::from)
            .collect();
        let data = std::fs::read(path.with_extension("stele")).unwrap();
        let r = verify_tsa(&data, &vkey, Some(&ca));
        assert_eq!(r.verdict.as_str(), verdict, "{}", path.display());
        // The rotated vector: its key history, a checked token per checkpoint
        // listed, and its witness policy's quorum met (with the TSA CA).
        let line = |k: &str| expect.lines().find_map(|l| l.strip_prefix(k));
        if let Some(n) = line("keys: ") {
            let keys = r.keys.as_ref().expect("key history");
            assert_eq!(keys.len().to_string(), n, "{}", path.display());
            assert!(keys.iter().all(|k| k.trusted), "{keys:?}");
        }
        let anchored: Vec<u64> = line("timestamps: ")
            .map(|l| l.split(' ').map(|n| n.parse().unwrap()).collect())
            .unwrap_or_default();
        if !anchored.is_empty() {
            let ts = r.timestamps.as_ref().unwrap();
            let sizes: Vec<u64> = ts.iter().map(|t| t.size).collect();
            assert_eq!(sizes, anchored);
            assert!(ts.iter().all(|t| t.status == "ok"), "{ts:?}");
        }
        if let Some(file) = line("policy: ") {
            let text = std::fs::read(dir.join(file)).unwrap();
            let mut o = Options::new(vec![VerifierKey::parse(&vkey).unwrap()]);
            o.tsa = Some(checker(&ca));
            o.set_policy(stele_core::witness::Policy::parse(&text).unwrap());
            let r = verify_bytes(o, &data);
            assert_eq!(r.verdict.as_str(), verdict, "{}", r.to_json());
            let q = r.quorum.as_ref().expect("quorum");
            assert_eq!(q.met, line("quorum: ") == Some("met"), "{}", r.to_json());
            let out = stele(&[
                "verify",
                p(&path.with_extension("stele")),
                "--key",
                &vkey,
                "--tsa-ca",
                p(&ca),
                "--policy",
                p(&dir.join(file)),
                "--json",
            ]);
            let j: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(j["verdict"], verdict.as_str());
            assert_eq!(j["quorum"]["met"], q.met);
            assert_eq!(j["timestamps"].as_array().unwrap().len(), anchored.len());
        }
        let got: Vec<String> = r
            .failures
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f.code,
                    f.entry.map_or("-".into(), |e| e.to_string())
                )
            })
            .collect();
        assert_eq!(got, fails, "{}", path.display());
        let out = stele(&[
            "verify",
            p(&path.with_extension("stele")),
            "--key",
            &vkey,
            "--tsa-ca",
            p(&ca),
            "--json",
        ]);
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(j["verdict"], verdict.as_str());
        // openssl ts -verify on the record the case is about (every
        // record of the rotated vector: one per key's checkpoint).
        let text = String::from_utf8(data).unwrap();
        for size in if anchored.is_empty() {
            vec![5]
        } else {
            anchored
        } {
            let body = bodies(&text)
                .into_iter()
                .find(|(s, _)| *s == size)
                .unwrap()
                .1;
            let token = token_in(&text, size);
            assert_eq!(
                openssl_verifies(tmp.path(), &token, body.as_bytes(), &ca),
                verdict == "verified",
                "openssl ts -verify disagrees on {} (checkpoint {size})",
                path.display()
            );
        }
    }
    assert_eq!(seen, 9, "timestamp vectors");
}

fn write_vectors(dir: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let (vkey, cases) = cases(tmp.path(), &tsa);
    let (rkey, rotated, policy) = rotated_anchored(tmp.path(), &tsa);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("timestamp-rotated.stele"), rotated).unwrap();
    std::fs::write(dir.join(ROTATED_POLICY), policy).unwrap();
    std::fs::write(
        dir.join("timestamp-rotated.expect"),
        format!(
            "# the log's key rotated at entry 3 (overlap 1): checkpoints 3 (genesis key), 4 (both keys) and 5 (new key) anchored by the test TSA, 5 cosigned by witnesses 1 and 2; verified from the genesis key alone\nkey: {rkey}\ntsa-ca: ca.pem\npolicy: {ROTATED_POLICY}\nverdict: verified\nquorum: met\nkeys: 2\ntimestamps: 3 4 5\n"
        ),
    )
    .unwrap();
    let _ = std::fs::copy(tsa.ca(), dir.join("ca.pem")).unwrap();
    for c in cases {
        std::fs::write(dir.join(format!("{}.stele", c.name)), &c.data).unwrap();
        let (verdict, fail) = match c.code {
            None => ("verified", String::new()),
            Some(code) => ("tampered", format!("failure: {code} -\n")),
        };
        std::fs::write(
            dir.join(format!("{}.expect", c.name)),
            format!(
                "# {}\nkey: {vkey}\ntsa-ca: ca.pem\nverdict: {verdict}\n{fail}",
                c.about
            ),
        )
        .unwrap();
    }
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut c = std::net::TcpStream::connect(addr).ok()?;
    c.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw).ok()?;
    let (status, _, body) = parse_response(&raw).ok()?;
    (status == 200).then(|| String::from_utf8(body).unwrap())
}

/// `stele serve --tsa URL --anchor-every D` anchors the latest checkpoint on
/// its own, and the service's exports carry the token.
#[test]
fn serve_anchors_on_a_schedule_and_its_exports_carry_the_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let (log, vkey) = init(tmp.path());
    assert_eq!(
        append(&log, &[r#"{"type":"auth","actor":"alice"}"#]).len(),
        1
    );
    assert!(ok(&stele(&["checkpoint", &log])).contains("\n2\n"));
    let url = format!("{}/good", tsa.url);
    let (mut child, base) = spawn_serve(
        Command::new(env!("CARGO_BIN_EXE_stele"))
            .args(["serve", &log, "--listen", "127.0.0.1:0", "--public-reads"])
            .args(["--tsa", &url, "--anchor-every", "1s"])
            .stderr(std::process::Stdio::null()),
    );
    let addr = base.strip_prefix("http://").unwrap().to_string();
    // Wait for the anchor (a generous bound on a loaded machine). It is of
    // the latest checkpoint when the service anchors: 2, or a later one when
    // a read of the export (recorded and signed) came first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let (export, size) = loop {
        if let Some(b) = http_get(&addr, "/v1/export")
            && let Some(l) = b.lines().find(|l| l.starts_with("timestamp "))
        {
            let size: u64 = l.split(' ').nth(1).unwrap().parse().unwrap();
            break (b, size);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no timestamp record in the service's export"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(size >= 2, "{size}");
    let r = verify_tsa(export.as_bytes(), &vkey, Some(&tsa.ca()));
    assert_eq!(r.verdict.as_str(), "verified", "{}", r.to_json());
    let ts = r.timestamps.unwrap();
    assert_eq!((ts.len(), ts[0].size, ts[0].status), (1, size, "ok"));
    let body = bodies(&export)
        .into_iter()
        .find(|(s, _)| *s == size)
        .unwrap()
        .1;
    assert!(openssl_verifies(
        &tsa.dir,
        &token_in(&export, size),
        body.as_bytes(),
        &tsa.ca()
    ));
    // The token is in the log directory, and `stele verify DIR` checks it too.
    // (The service may have anchored a later checkpoint before it stopped.)
    let recs = stele_writer::anchor::read(Path::new(&log)).unwrap();
    assert_eq!(
        recs.iter().filter(|r| r.size == size).count(),
        1,
        "{recs:?}"
    );
    let out = ok(&stele(&[
        "verify",
        &log,
        "--key",
        &vkey,
        "--tsa-ca",
        p(&tsa.ca()),
    ]));
    assert!(
        out.contains(&format!("checkpoint {size} existed by ")),
        "{out}"
    );
}

/// Every byte of a valid token flipped: the checker never panics, and a
/// flip in the signature, the TSTInfo or the signed attributes is refused.
/// (Flips in parts the signature does not cover, such as the copy of the
/// CA certificate the token carries, may leave it valid.)
#[test]
fn a_flipped_byte_anywhere_in_a_token_never_panics_and_signed_parts_fail() {
    use stele_core::timestamp::TokenChecker as _;
    let dir = vectors_dir();
    let text = std::fs::read_to_string(dir.join("timestamp-valid.stele")).unwrap();
    let body = bodies(&text).into_iter().find(|(s, _)| *s == 5).unwrap().1;
    let token = token_in(&text, 5);
    let imp = stele_core::timestamp::imprint(body.as_bytes());
    let ca = stele_tsa::TsaChecker::from_pem_or_der(&std::fs::read(dir.join("ca.pem")).unwrap())
        .unwrap();
    assert!(ca.check(&token, &imp).is_ok());
    // The TSTInfo's bytes inside the token, and the signature at its end.
    let tst_at = (0..token.len())
        .find(|&i| token[i..].starts_with(&[0x04, 0x81]) || token[i..].starts_with(&[0x04, 0x82]))
        .unwrap();
    let mut accepted = Vec::new();
    for i in 0..token.len() {
        let mut t = token.clone();
        t[i] ^= 0x01;
        if ca.check(&t, &imp).is_ok() {
            accepted.push(i);
        }
    }
    let sig_start = token.len() - 64;
    assert!(
        accepted
            .iter()
            .all(|&i| i < tst_at || (i > tst_at + 200 && i < sig_start)),
        "flips accepted at {accepted:?} (TSTInfo at {tst_at}, signature from {sig_start})"
    );
    // Every truncation fails too.
    for n in 0..token.len() {
        assert!(ca.check(&token[..n], &imp).is_err(), "{n}");
    }
}

/// Waits (a generous bound on a loaded machine) until `path` holds `what`;
/// returns its text.
fn wait_for_text(path: &Path, what: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(what) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what:?} not in {}: {text}",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `stele serve --tsa URL --anchor-every D --ca FILE` checks each token
/// against the CA before keeping it, as `stele anchor --ca` does: a token by
/// a TSA whose certificate expired before it signed is not kept (its log
/// says why, /metrics counts it, and it is retried), one that verifies is
/// kept, and OpenSSL agrees with both verdicts.
#[test]
fn serve_with_ca_keeps_only_tokens_that_verify_against_it() {
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let (log, vkey) = init(tmp.path());
    assert_eq!(
        append(&log, &[r#"{"type":"auth","actor":"alice"}"#]).len(),
        1
    );
    assert!(ok(&stele(&["checkpoint", &log])).contains("\n2\n"));
    let run = |section: &str, what: &str| {
        let err = tmp.path().join(format!("serve-{section}.err"));
        let url = format!("{}/{section}", tsa.url);
        let (mut child, base) = spawn_serve(
            Command::new(env!("CARGO_BIN_EXE_stele"))
                .args(["serve", &log, "--listen", "127.0.0.1:0", "--public-reads"])
                .args(["--tsa", &url, "--anchor-every", "1s", "--ca", p(&tsa.ca())])
                .stderr(std::fs::File::create(&err).unwrap()),
        );
        let text = wait_for_text(&err, what);
        let addr = base.strip_prefix("http://").unwrap().to_string();
        let metrics = http_get(&addr, "/metrics").expect("/metrics");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
        // The counters of /metrics (read after the log line, so at least that attempt).
        let count = |name: &str| -> u64 {
            let line = metrics
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} not in {metrics}"));
            line[name.len() + 1..].parse().unwrap()
        };
        let counts = (
            count("stele_anchor_tokens_total"),
            count("stele_anchor_failures_total"),
            count("stele_anchor_size"),
        );
        (url, text, counts)
    };
    // The expired TSA: refused, nothing kept, retried.
    let (url, text, (kept, failed, _)) = run("expired", "anchoring with");
    assert_eq!(kept, 0);
    assert!(failed >= 1, "stele_anchor_failures_total {failed}");
    assert!(
        text.contains(&format!(
            "stele serve: anchoring with {url} failed (retried in 1s): timestamp: the token from {url} for the checkpoint of size 2 does not verify against --ca: "
        )) && text.contains("is valid from"),
        "{text}"
    );
    assert!(!text.contains("kept unchecked"), "{text}");
    assert!(!Path::new(&log).join("timestamps").exists());
    // OpenSSL refuses that TSA's token too.
    let file = tmp.path().join("unanchored.stele");
    let _ = ok(&stele(&["export", &log, "-o", p(&file)]));
    let export = std::fs::read_to_string(&file).unwrap();
    assert!(!export.contains("\ntimestamp "), "{export}");
    let body = bodies(&export)
        .into_iter()
        .find(|(s, _)| *s == 2)
        .unwrap()
        .1;
    assert!(!openssl_verifies(
        &tsa.dir,
        &tsa.token("expired", body.as_bytes()),
        body.as_bytes(),
        &tsa.ca()
    ));
    // The good TSA: checked, kept, said. (The latest checkpoint may have
    // grown since: the first service signed one as it stopped.)
    let (_, text, (kept, failed, anchored)) = run("good", "stele serve: anchored checkpoint ");
    // (It may anchor a later checkpoint before it stops: the one it said first.)
    let said = "stele serve: anchored checkpoint ";
    let at = text.find(said).unwrap() + said.len();
    let size: u64 = text[at..].split(' ').next().unwrap().parse().unwrap();
    let recs = stele_writer::anchor::read(Path::new(&log)).unwrap();
    let rec = recs
        .iter()
        .find(|r| r.size == size)
        .expect("the token kept");
    assert!(
        kept >= 1 && failed == 0 && anchored >= size,
        "{kept} {failed} {anchored}"
    );
    assert!(
        text.contains(&format!(
            "stele serve: anchored checkpoint {size} with {}/good: existed by ",
            tsa.url
        )) && text.contains(", attested by CN=Stele Test TSA,O=Stele Tests"),
        "{text}"
    );
    let _ = ok(&stele(&["export", &log, "-o", p(&file)]));
    let export = std::fs::read_to_string(&file).unwrap();
    let body = bodies(&export)
        .into_iter()
        .find(|(s, _)| *s == size)
        .unwrap()
        .1;
    assert!(openssl_verifies(
        &tsa.dir,
        &rec.token,
        body.as_bytes(),
        &tsa.ca()
    ));
    let out = ok(&stele(&[
        "verify",
        &log,
        "--key",
        &vkey,
        "--tsa-ca",
        p(&tsa.ca()),
    ]));
    assert!(
        out.contains(&format!("checkpoint {size} existed by ")),
        "{out}"
    );
    // A --ca file that is not a certificate stops the start, naming the flag.
    let not_a_cert = tmp.path().join("not-a-cert.pem");
    std::fs::write(&not_a_cert, "hello\n").unwrap();
    let o = stele(&[
        "serve",
        &log,
        "--listen",
        "127.0.0.1:0",
        "--tsa",
        &tsa.url,
        "--anchor-every",
        "1s",
        "--ca",
        p(&not_a_cert),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--ca"), "{}", stderr(&o));
}

/// A TSA that writes genTime with fractional seconds (RFC 3161 2.4.2 allows
/// them; OpenSSL's `clock_precision_digits`): its tokens verify, through
/// `stele anchor --ca` and `stele verify --tsa-ca`, as OpenSSL verifies them,
/// and the time reported is the second the genTime falls in, rounded up.
#[test]
fn a_gen_time_with_fractional_seconds_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"type":"auth","actor":"alice"}"#]);
    let url = format!("{}/frac", tsa.url);
    let out = ok(&stele(&[
        "anchor",
        &log,
        "--tsa",
        &url,
        "--ca",
        p(&tsa.ca()),
    ]));
    assert!(
        out.starts_with("anchored checkpoint 2: existed by "),
        "{out}"
    );
    let file = tmp.path().join("frac.stele");
    let _ = ok(&stele(&["export", &log, "-o", p(&file)]));
    let export = std::fs::read_to_string(&file).unwrap();
    let body = bodies(&export)
        .into_iter()
        .find(|(s, _)| *s == 2)
        .unwrap()
        .1;
    let token = token_in(&export, 2);
    assert!(openssl_verifies(
        &tsa.dir,
        &token,
        body.as_bytes(),
        &tsa.ca()
    ));
    let r = verify_tsa(export.as_bytes(), &vkey, Some(&tsa.ca()));
    assert_eq!(r.verdict.as_str(), "verified", "{}", r.to_json());
    let t = &r.timestamps.as_ref().unwrap()[0];
    assert_eq!(t.status, "ok");
    // OpenSSL's reading of the genTime: "Nov 30 20:40:01.123 2026 GMT"
    // (no fraction when the milliseconds were 000).
    std::fs::write(tsa.dir.join("f.tok"), &token).unwrap();
    let text = Command::new("openssl")
        .args([
            "ts",
            "-reply",
            "-token_in",
            "-in",
            "f.tok",
            "-token_out",
            "-text",
        ])
        .current_dir(&tsa.dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Time stamp: "))
        .unwrap();
    let clock = line.split(' ').find(|w| w.contains(':')).unwrap();
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let time = t.time.as_deref().unwrap();
    if frac.is_empty() {
        assert!(time.ends_with(&format!("T{hms}Z")), "{time} vs {line}");
    } else {
        // Rounded up to the next second: never earlier than the TSA said.
        let secs = |s: &str| -> u32 {
            s.split(':')
                .fold(0, |n, p| n * 60 + p.parse::<u32>().unwrap())
        };
        let got = secs(&time[11..19]);
        assert_eq!(got, (secs(hms) + 1) % 86_400, "{time} vs {line}");
    }
}

/// The note text (checkpoint body) of the log's latest checkpoint.
fn latest_body(log: &str) -> String {
    let note = ok(&stele(&["checkpoint", log]));
    note.split_once("\n\n").unwrap().0.to_string() + "\n"
}

/// A token over FORMAT 16.2's 32,768 bytes is refused at anchoring, even
/// one that verifies against the CA: the `good` TSA's genuine token with
/// its `certificates` (not signed) padded on the way, as a man in the
/// middle of a plain-http TSA can. Kept, it made every export, verify DIR
/// and anchor of the log fail for good (red-team).
#[test]
fn anchor_refuses_a_token_over_the_record_limit_even_one_that_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"a":1}"#]);
    let url = format!("{}/padded", tsa.url);
    for ca in [true, false] {
        let mut args = vec!["anchor", &log, "--tsa", &url];
        let cap = tsa.ca();
        if ca {
            args.extend(["--ca", p(&cap)]);
        }
        let o = stele(&args);
        assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stderr(&o).contains("more than the 32768"), "{}", stderr(&o));
        assert!(!Path::new(&log).join("timestamps").exists());
    }
    // The log goes on: anchored by an honest answer, exported, verified.
    let good = format!("{}/good", tsa.url);
    let _ = ok(&stele(&[
        "anchor",
        &log,
        "--tsa",
        &good,
        "--ca",
        p(&tsa.ca()),
    ]));
    let file = tmp.path().join("x.stele");
    let _ = ok(&stele(&["export", &log, "-o", p(&file)]));
    assert_anchored(&file, &vkey, &tsa);
}

/// Lines of `DIR/timestamps` that are not records (a bad size, bad base64,
/// a token over 32,768 bytes, a line longer than any record) are skipped
/// with a warning by exports, `verify DIR` and `anchor`, which go on with
/// the good records; `stele fsck` moves them to `DIR/timestamps.rejected`.
#[test]
fn bad_lines_in_timestamps_are_skipped_and_fsck_moves_them_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"a":1}"#]);
    let good = format!("{}/good", tsa.url);
    let _ = ok(&stele(&[
        "anchor",
        &log,
        "--tsa",
        &good,
        "--ca",
        p(&tsa.ca()),
    ]));
    let ts = Path::new(&log).join("timestamps");
    let kept = std::fs::read_to_string(&ts).unwrap();
    let big = format!("timestamp 2 {}", B64.encode(vec![0x30u8; 32_769]));
    let bad = [
        "garbage".to_string(),
        "timestamp 2 !!!!".to_string(),
        big,
        "x".repeat(200_000),
    ];
    let mut f = std::fs::OpenOptions::new().append(true).open(&ts).unwrap();
    for l in &bad {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    // (Before the export, whose stele.access entry grows the tree.)
    let again = ok(&stele(&["anchor", &log, "--tsa", &good]));
    assert_eq!(again, "checkpoint 2 is already anchored\n");
    let file = tmp.path().join("x.stele");
    let o = stele(&["export", &log, "-o", p(&file)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("line 2: not a timestamp record"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("line 5: not a timestamp record"),
        "{}",
        stderr(&o)
    );
    assert_anchored(&file, &vkey, &tsa);
    let o = stele(&["verify", &log, "--key", &vkey, "--tsa-ca", p(&tsa.ca())]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = ok(&stele(&["fsck", &log]));
    assert!(out.contains("repaired: 4 line(s) of timestamps"), "{out}");
    assert_eq!(std::fs::read_to_string(&ts).unwrap(), kept);
    let aside = std::fs::read_to_string(Path::new(&log).join("timestamps.rejected")).unwrap();
    assert_eq!(aside, bad.join("\n") + "\n");
    let o = stele(&["export", &log, "-o", p(&file)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("not a timestamp record"),
        "{}",
        stderr(&o)
    );
    let out = ok(&stele(&["fsck", &log]));
    assert!(!out.contains("repaired"), "{out}");
}

/// A checkpoint whose tokens were kept unchecked and fail the CA (here a
/// TSA certificate without the timeStamping EKU) is anchored again by
/// `stele anchor --ca`: the failing token goes to `timestamps.rejected`, a
/// good one takes its place, and the export verifies under `--tsa-ca`. It
/// said "already anchored", and the log verified tampered for good.
#[test]
fn anchor_with_ca_replaces_kept_tokens_that_fail_it() {
    let tmp = tempfile::tempdir().unwrap();
    let tsa = Tsa::start(&tmp.path().join("tsa"));
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"a":1}"#]);
    let _ = ok(&stele(&["checkpoint", &log]));
    let bad = tsa.token("noeku", latest_body(&log).as_bytes());
    stele_writer::anchor::append(
        Path::new(&log),
        &TimestampRecord {
            size: 2,
            token: bad.clone(),
        },
    )
    .unwrap();
    let good = format!("{}/good", tsa.url);
    let out = ok(&stele(&["anchor", &log, "--tsa", &good]));
    assert_eq!(out, "checkpoint 2 is already anchored\n");
    let o = stele(&["anchor", &log, "--tsa", &good, "--ca", p(&tsa.ca())]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("anchored checkpoint 2: existed by"),
        "{out}"
    );
    assert!(
        stderr(&o).contains("1 token(s) kept for checkpoint 2 fail --ca"),
        "{}",
        stderr(&o)
    );
    let aside = std::fs::read_to_string(Path::new(&log).join("timestamps.rejected")).unwrap();
    assert_eq!(aside, record_line(2, &bad) + "\n");
    let out = ok(&stele(&[
        "anchor",
        &log,
        "--tsa",
        &good,
        "--ca",
        p(&tsa.ca()),
    ]));
    assert_eq!(out, "checkpoint 2 is already anchored\n");
    let file = tmp.path().join("x.stele");
    let _ = ok(&stele(&["export", &log, "-o", p(&file)]));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("\ntimestamp 2 ").count(), 1, "{text}");
    assert_anchored(&file, &vkey, &tsa);
}

/// A path through a CA whose pathLenConstraint it exceeds, or through an
/// issuer whose keyUsage lacks keyCertSign, is refused (RFC 5280 6.1.4),
/// as `openssl ts -verify` refuses it; the same chain within the rules
/// verifies with both (red-team: stele verified both).
#[test]
fn path_len_constraint_and_key_cert_sign_are_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let cnf = "[ req ]\ndistinguished_name = dn\n[ dn ]\n\
        [ ca_pl0 ]\nbasicConstraints = critical,CA:true,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\n\
        [ ca ]\nbasicConstraints = critical,CA:true\nkeyUsage = critical,keyCertSign,cRLSign\n\
        [ ca_noku ]\nbasicConstraints = critical,CA:true\nkeyUsage = critical,digitalSignature\n\
        [ tsa_ext ]\nbasicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = critical,timeStamping\n\
        [ tsa ]\ndefault_tsa = t\n[ t ]\nserial = ./ser\nsigner_cert = ./tsa.crt\ncerts = ./sub.crt\n\
        signer_key = ./k.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256\ness_cert_id_alg = sha256\n";
    let body = b"example.com/audit\n2\npIwweUKkEgsLl/VnuQlfWaxVf3JWI+3drcOVzjYzJRU=\n";
    for (root, sub, want) in [
        ("ca", "ca", None),
        (
            "ca_pl0",
            "ca",
            Some("has pathLenConstraint 0, but 1 CA certificates follow it"),
        ),
        (
            "ca",
            "ca_noku",
            Some("whose keyUsage does not allow keyCertSign"),
        ),
    ] {
        let d = tmp.path().join(format!("{root}-{sub}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("x.cnf"), cnf).unwrap();
        std::fs::write(d.join("body"), body).unwrap();
        tsa::sh(
            &d,
            &format!(
                "set -e; echo 01 > ser\n\
                 openssl ecparam -name prime256v1 -genkey -noout -out k.key\n\
                 openssl req -new -x509 -key k.key -subj /CN=Root -days 36500 -config x.cnf -extensions {root} -out root.crt\n\
                 openssl req -new -key k.key -subj /CN=Sub -config x.cnf -out sub.csr\n\
                 openssl x509 -req -in sub.csr -CA root.crt -CAkey k.key -set_serial 2 -days 36500 -extfile x.cnf -extensions {sub} -out sub.crt 2>/dev/null\n\
                 openssl req -new -key k.key -subj /CN=TSA -config x.cnf -out tsa.csr\n\
                 openssl x509 -req -in tsa.csr -CA sub.crt -CAkey k.key -set_serial 3 -days 36500 -extfile x.cnf -extensions tsa_ext -out tsa.crt 2>/dev/null\n\
                 openssl ts -query -data body -sha256 -cert -out q.tsq\n\
                 openssl ts -reply -config x.cnf -section t -queryfile q.tsq -token_out -out tok"
            ),
        );
        let token = std::fs::read(d.join("tok")).unwrap();
        let ca = d.join("root.crt");
        let c = stele_tsa::TsaChecker::from_pem_or_der(&std::fs::read(&ca).unwrap()).unwrap();
        use stele_core::timestamp::TokenChecker as _;
        let got = c.check(&token, &stele_core::timestamp::imprint(body));
        assert_eq!(
            openssl_verifies(&d, &token, body, &ca),
            want.is_none(),
            "{root}/{sub}: openssl"
        );
        match want {
            None => assert!(got.is_ok(), "{root}/{sub}: {got:?}"),
            Some(w) => {
                let e = got.unwrap_err();
                assert_eq!(e.problem, stele_core::timestamp::TokenProblem::Untrusted);
                assert!(e.message.contains(w), "{root}/{sub}: {}", e.message);
            }
        }
    }
}

// `stele verify FILE --tsa-ca` passes and names the time a token attests.
fn assert_anchored(file: &Path, vkey: &str, tsa: &Tsa) {
    let out = ok(&stele(&[
        "verify",
        p(file),
        "--key",
        vkey,
        "--tsa-ca",
        p(&tsa.ca()),
    ]));
    assert!(out.contains("existed by"), "{out}");
}
