//! Bit-flip sweep: every bit of small exports (a whole log with two
//! checkpoints, an entries export, a C2SP tlog-proof) is flipped, one at a
//! time, and each result is verified.
//!
//! What "detected" means. A flip is detected when the report differs from the
//! report of the untouched file: the verdict is `failed` or `unverified`, or
//! it is still `verified` but claims less (a smaller signed tree, with a
//! notice such as `key_mismatch` or `unsigned_tail` saying why). The one
//! place a flip may leave the report unchanged is a signature line by a key
//! that is not pinned (a witness cosignature): the verifier ignores such
//! lines by design (FORMAT.md 5.4), and the signed text is unchanged.
//!
//! And, for every flip without exception (safety): whenever the verdict is
//! `verified`, the entries it vouches for (the first `tree_size` entries of a
//! log; every entry of a partial export) are byte for byte the original ones,
//! under the original root. A flip can make verification fail or prove less;
//! it can never make different content verify.

use stele_core::VerifierKey;
use stele_core::export;
use stele_core::verify::{Options, Report, Verdict, verify_bytes};
use stele_tests::{TestLog, signer};

#[derive(Debug, Default)]
struct Tally {
    flips: usize,
    failed: usize,
    unverified: usize,
    verified_less: usize,
    ignored_unknown_signature: usize,
}

// Adds a witness cosignature (a key that is not pinned) to `note`.
fn cosign(note: &str) -> String {
    let w = signer("witness.example/w1", 7);
    let text = note.split_once("\n\n").unwrap().0.to_string() + "\n";
    let ws = w.sign_note(&text).unwrap();
    note.to_string() + ws.split_once("\n\n").unwrap().1
}

fn entry_lines(data: &[u8]) -> Vec<&[u8]> {
    data.split_inclusive(|&b| b == b'\n')
        .filter(|l| l.first() == Some(&b'{'))
        .collect()
}

fn sweep(
    name: &str,
    data: &[u8],
    key: &VerifierKey,
    unknown_sig: std::ops::Range<usize>,
    safe: impl Fn(&[u8], &Report) -> bool,
) -> Tally {
    let opts = || Options::new(vec![key.clone()]);
    let original = verify_bytes(opts(), data);
    assert_eq!(original.verdict, Verdict::Verified, "{name}: {original:#?}");
    let mut t = Tally::default();
    let mut buf = data.to_vec();
    for i in 0..data.len() {
        for bit in 0..8 {
            buf[i] ^= 1 << bit;
            let r = verify_bytes(opts(), &buf);
            t.flips += 1;
            match r.verdict {
                Verdict::Tampered | Verdict::NotALog => t.failed += 1,
                Verdict::Unverified => t.unverified += 1,
                Verdict::Verified | Verdict::Partial => {
                    assert!(
                        safe(&buf, &r),
                        "{name}: byte {i} bit {bit}: verified content differs: {r:#?}"
                    );
                    if r == original {
                        assert!(
                            unknown_sig.contains(&i),
                            "{name}: byte {i} bit {bit} ({:?}) went unnoticed",
                            data[i] as char
                        );
                        t.ignored_unknown_signature += 1;
                    } else {
                        assert!(
                            r.tree_size < original.tree_size || !r.notices.is_empty(),
                            "{name}: byte {i} bit {bit}: verified, same claim, different report: {r:#?}"
                        );
                        t.verified_less += 1;
                    }
                }
            }
            buf[i] ^= 1 << bit;
        }
    }
    println!("{name}: {} bytes, {t:?}", data.len());
    t
}

fn small_log() -> TestLog {
    let mut log = TestLog::new("example.com/flip", 3);
    log.append_n(3);
    let _ = log.checkpoint();
    let last = log.checkpoints.last_mut().unwrap();
    last.1 = cosign(&last.1);
    log
}

// The byte range of the witness signature line in `data`.
fn witness_line(data: &[u8]) -> std::ops::Range<usize> {
    let needle = "\u{2014} witness.example/w1 ".as_bytes();
    let start = data
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let end = start + data[start..].iter().position(|&b| b == b'\n').unwrap();
    start..end // the '\n' itself is not ignorable
}

#[test]
fn every_bit_flip_of_a_log_export_is_detected() {
    let log = small_log();
    let data = log.export_log().into_bytes();
    let key = log.key();
    let t = sweep("log", &data, &key, witness_line(&data), |buf, r| {
        // The vouched-for prefix is the original one, under the original root.
        let size = r.tree_size.unwrap() as usize;
        let lines = entry_lines(buf);
        lines.len() >= size
            && (0..size).all(|k| lines[k] == format!("{}\n", log.lines[k]).as_bytes())
            && r.root.as_deref() == Some(&log.tree.root_at(size as u64).unwrap().to_base64())
    });
    assert_eq!(t.flips, data.len() * 8);
    assert!(t.failed > t.flips * 9 / 10, "{t:?}");
}

#[test]
fn every_bit_flip_of_an_entries_export_and_a_tlog_proof_is_detected() {
    let log = small_log();
    let key = log.key();
    let data = log.export_entries(&[2]).into_bytes();
    let original = entry_lines(&data)
        .iter()
        .map(|l| l.to_vec())
        .collect::<Vec<_>>();
    let _ = sweep("entries", &data, &key, witness_line(&data), |buf, _| {
        entry_lines(buf)
            .iter()
            .map(|l| l.to_vec())
            .collect::<Vec<_>>()
            == original
    });
    let data = log.tlog_proof(2).into_bytes();
    let proof = export::TlogProof::parse(&data).unwrap();
    let _ = sweep("tlog-proof", &data, &key, witness_line(&data), |buf, _| {
        export::TlogProof::parse(buf)
            .is_ok_and(|p| p.extra == proof.extra && p.index == proof.index)
    });
}
