//! The shared test vectors in tests/vectors/: each file has an `.expect` file
//! beside it stating the key to pin, the verdict and the failures. This test
//! (1) regenerates every vector with the test kit and checks the committed
//! bytes are identical (`STELE_BLESS=1` rewrites them), and (2) verifies each
//! file, in one piece and one byte at a time, and checks the expectations.
//! The wasm tests and the browser tests read the same files.

use stele_core::VerifierKey;
use stele_core::verify::{StreamVerifier, verify_bytes};
use stele_tests::kit::{options, parse_expect};
use stele_tests::vectors::{dir, expect_text, vectors};
use stele_wasm::table::{COLUMNS, Table, cut};

#[test]
fn vectors_on_disk_match_the_generator() {
    let bless = std::env::var_os("STELE_BLESS").is_some();
    let mut stale = Vec::new();
    for v in vectors() {
        let files = [
            (format!("{}.{}", v.name, v.ext), v.data.clone()),
            (format!("{}.expect", v.name), expect_text(&v).into_bytes()),
        ];
        let trusted = v
            .trusted
            .as_ref()
            .map(|t| (format!("{}.trusted", v.name), t.clone().into_bytes()));
        for (name, bytes) in files.into_iter().chain(trusted) {
            let path = dir().join(&name);
            if bless {
                std::fs::write(&path, &bytes).unwrap();
            } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
                stale.push(name);
            }
        }
    }
    // Every .expect file reads back as its vector (the one parser).
    for v in vectors() {
        let e = parse_expect(&expect_text(&v)).unwrap();
        assert_eq!(
            (e.key.as_str(), e.verdict.as_str()),
            (v.key.as_str(), v.verdict),
            "{}",
            v.name
        );
        let f: Vec<_> = v
            .failures
            .iter()
            .map(|(c, e)| (c.to_string(), *e))
            .collect();
        let keys: Vec<String> = std::iter::once(v.key.clone())
            .chain(stele_tests::rotation::also_pinned(v.name))
            .collect();
        assert_eq!(e.keys, keys, "{}", v.name);
        assert_eq!(e.failures, f, "{}", v.name);
        assert_eq!(e.notices, v.notices, "{}", v.name);
    }
    // The earlier checkpoint that every verifier must refuse.
    let note = stele_tests::spec::mixed_signature_note(&stele_tests::sample_log(
        "example.com/stele-vectors",
        20,
        5,
    ));
    let path = dir().join("trusted-mixed-signature.note");
    if bless {
        std::fs::write(&path, &note).unwrap();
    } else if std::fs::read_to_string(&path).ok().as_deref() != Some(&note[..]) {
        stale.push("trusted-mixed-signature.note".into());
    }
    assert!(
        stale.is_empty(),
        "vectors differ from the generator (run with STELE_BLESS=1 and review the diff): {stale:?}"
    );
}

#[test]
fn every_vector_gives_its_expected_verdict_and_failures() {
    let mut seen_codes = std::collections::BTreeSet::new();
    for v in vectors() {
        let report = verify_bytes(options(&v), &v.data);
        let verdict = serde_json::to_value(report.verdict).unwrap();
        assert_eq!(verdict, v.verdict, "{}: {:#?}", v.name, report);
        for (code, entry) in &v.failures {
            assert!(
                report
                    .failures
                    .iter()
                    .any(|f| f.code == *code && f.entry == *entry),
                "{}: no failure {code} at entry {entry:?} in {:#?}",
                v.name,
                report.failures
            );
            let _ = seen_codes.insert(*code);
        }
        for n in &v.notices {
            assert!(
                report.notices.iter().any(|x| x.code == *n),
                "{}: no notice {n} in {:#?}",
                v.name,
                report.notices
            );
        }
        if !matches!(v.verdict, "tampered" | "not_a_log") {
            assert!(
                report.failures.is_empty(),
                "{}: {:#?}",
                v.name,
                report.failures
            );
        }
        for f in &report.failures {
            assert!(
                !f.message.is_empty() && !f.message.contains("invalid proof"),
                "{}: vague message {f:?}",
                v.name
            );
        }
        // The hand-written JSON (used by the wasm build) is serde's, byte for byte.
        assert_eq!(
            report.to_json(),
            serde_json::to_string(&report).unwrap(),
            "{}",
            v.name
        );
        // A file that is not a Stele export is read no further: no rows.
        let rows = if v.verdict == "not_a_log" {
            Vec::new()
        } else {
            expected_rows(&v.data)
        };
        // The columnar form (chunked, interned across takes) holds the same rows.
        // The page's table (the wasm adapter's entry sink) holds one row per
        // entry line, chunked and interned across takes, and the report is
        // the one without it.
        let mut cols = StreamVerifier::with_sink(options(&v), Table::default());
        let mut dicts: [Vec<String>; 5] = Default::default();
        let mut from_cols = Vec::new();
        let mut ts_raw = Vec::new();
        for c in v.data.chunks(97) {
            cols.push(c);
            let t = cols.sink_mut().take_columns();
            let base = from_cols.len();
            ts_raw.extend(
                t.ts_raw
                    .iter()
                    .map(|(i, s)| (base + *i as usize, Some(s.clone()))),
            );
            for (d, fresh) in dicts.iter_mut().zip(t.fresh) {
                d.extend(fresh);
            }
            for i in 0..t.seq.len() {
                let s = |c: usize| match t.codes[c][i] {
                    0 => None,
                    k => Some(dicts[c][k as usize - 1].clone()),
                };
                let n = |x: f64| (!x.is_nan()).then_some(x);
                from_cols.push((
                    n(t.seq[i]),
                    n(t.ts_us[i]),
                    [s(0), s(1), s(2), s(3), s(4)],
                    (t.line[i], t.offset[i], t.length[i]),
                ));
            }
        }
        let want: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.seq.map(|s| s as f64),
                    r.ts_us.map(|t| t as f64),
                    r.fields.clone(),
                    (r.line as f64, r.offset as f64, r.length as f64),
                )
            })
            .collect();
        assert_eq!(from_cols, want, "{}: columns", v.name);
        assert_eq!(
            cols.finish(),
            report,
            "{}: the table changes the report",
            v.name
        );
        // Timestamps beyond 2^53 microseconds come with their text.
        let want_raw: Vec<_> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.ts_us.is_some_and(|t| t.unsigned_abs() > 1 << 53))
            .map(|(i, r)| (i, r.ts.clone()))
            .collect();
        assert_eq!(ts_raw, want_raw, "{}: ts_raw", v.name);
        // One byte at a time gives the same report.
        let mut s = StreamVerifier::new(options(&v));
        for b in &v.data {
            s.push(std::slice::from_ref(b));
        }
        assert_eq!(s.finish(), report, "{}: byte-at-a-time differs", v.name);
        // Prepared lines survive the trip to another worker unchanged.
        let prepared = stele_core::verify::prepare(&v.data, 0);
        let ok: Vec<_> = prepared.iter().filter(|p| p.is_ok()).cloned().collect();
        let back = stele_core::verify::Prepared::decode_all(
            &stele_core::verify::Prepared::encode_all(&prepared),
        );
        assert_eq!(back, ok, "{}: encode/decode", v.name);
        assert_eq!(
            stele_core::verify::prepare_encoded(&v.data, 0),
            stele_core::verify::Prepared::encode_all(&prepared),
            "{}: prepare_encoded",
            v.name
        );
        // The browser's path: blocks cut at line ends, each prepared and
        // encoded elsewhere, records read as their lines are reached.
        let mut s = StreamVerifier::new(options(&v));
        let mut rest = &v.data[..];
        while !rest.is_empty() {
            let cut = rest
                .iter()
                .take(700)
                .rposition(|&c| c == b'\n')
                .map_or(rest.len().min(700), |i| i + 1);
            let (block, next) = rest.split_at(cut);
            let encoded = stele_core::verify::Prepared::encode_all(&stele_core::verify::prepare(
                block,
                s.bytes(),
            ));
            s.push_encoded(block, encoded);
            rest = next;
        }
        assert_eq!(s.finish(), report, "{}: encoded blocks differ", v.name);
        // The multi-threaded path (in the writer): writer/tests/parallel.rs.
    }
    assert!(
        seen_codes.len() >= 25,
        "only {} failure codes covered",
        seen_codes.len()
    );
}

/// One row of the page's table, as [`expected_rows`] computes it.
#[derive(Debug)]
struct Row {
    seq: Option<u64>,
    ts: Option<String>,
    ts_us: Option<i64>,
    /// The display text of each of [`COLUMNS`].
    fields: [Option<String>; 5],
    line: u64,
    offset: u64,
    length: u64,
}

/// Entry summaries computed independently of the verifier: one per line that
/// starts with `{` after the header (entry lines; over-long lines are only
/// reported), fields from the parsed line.
fn expected_rows(data: &[u8]) -> Vec<Row> {
    let mut out = Vec::new();
    let (mut line_no, mut offset) = (0u64, 0u64);
    let mut in_tlog = false;
    for line in data.split_inclusive(|b| *b == b'\n') {
        line_no += 1;
        let body = line.strip_suffix(b"\n");
        if line_no == 1 && line.starts_with(b"c2sp.org/tlog-proof@v1") {
            in_tlog = true;
        }
        if let (Some(body), false) = (body, in_tlog) {
            let body = body
                .strip_prefix(&[0xEF, 0xBB, 0xBF][..])
                .filter(|_| line_no == 1)
                .unwrap_or(body);
            let long = body.len() > stele_core::entry::MAX_ENTRY_BYTES + 1;
            if !long && (body.first() == Some(&b'{') || body.first() == Some(&0xEF)) {
                let p = stele_core::entry::parse_entry(body).ok();
                let f = |n: usize| {
                    p.as_ref()
                        .and_then(|p| p.field_display(COLUMNS[n]))
                        .map(cut)
                };
                out.push(Row {
                    seq: p.as_ref().map(|p| p.seq),
                    ts: p.as_ref().map(|p| p.ts_text().to_string()),
                    ts_us: p.as_ref().map(|p| p.ts.unix_micros()),
                    fields: [f(0), f(1), f(2), f(3), f(4)],
                    line: line_no,
                    offset,
                    length: body.len() as u64,
                });
            }
        }
        offset += line.len() as u64;
    }
    out
}

/// docs/FORMAT.md 8.6: an earlier checkpoint with a good and a bad signature
/// by the pinned key is refused (one rule, core's `parse_trusted`; the CLI,
/// monitor, wasm and live-module tests run the same file).
#[test]
fn a_mixed_signature_trusted_checkpoint_is_refused() {
    let note = std::fs::read(dir().join("trusted-mixed-signature.note")).unwrap();
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "valid-log")
        .unwrap();
    let key = VerifierKey::parse(&v.key).unwrap();
    let err = stele_core::checkpoint::parse_trusted(&note, std::slice::from_ref(&key)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "checkpoint of size 15: the signature by pinned key example.com/stele-vectors does not verify"
    );
    // The same note with its bad line removed is trusted, also with CR LF line ends.
    let text = String::from_utf8(note).unwrap();
    let good: String = text.lines().take(5).map(|l| format!("{l}\r\n")).collect();
    let sc = stele_core::checkpoint::parse_trusted(good.as_bytes(), &[key]).unwrap();
    assert_eq!(sc.checkpoint.size, 15);
}

/// The thresholds of old ("at least 25 codes", "at least 40 vectors") let
/// one vanish silently: the exact sets.
#[test]
fn the_vectors_cover_exactly_these_codes_and_names() {
    use stele_core::verify::FailureCode;
    let all = vectors();
    let mut codes: std::collections::BTreeSet<&str> = all
        .iter()
        .flat_map(|v| v.failures.iter().map(|(c, _)| *c))
        .collect();
    // Sealed-field vectors (format 1.1) live in tests/vectors/sealed/ and run
    // through core, the CLI and wasm-seal in writer/tests/sealed.rs; their
    // .expect files list failures as `failure: CODE ENTRY POINTER`.
    // Witness vectors (docs/FORMAT.md 14) live in tests/vectors/witness/.
    // Timestamp vectors (FORMAT 16) live in tests/vectors/timestamps/ and run
    // through core, the CLI and OpenSSL in writer/tests/timestamps.rs.
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sealed_texts = Vec::new();
    for sub_dir in [
        base.join("vectors/sealed"),
        stele_tests::witness::dir(),
        base.join("vectors/timestamps"),
    ] {
        for e in std::fs::read_dir(&sub_dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "expect") {
                sealed_texts.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    for t in &sealed_texts {
        for l in t.lines() {
            if let Some(c) = l
                .strip_prefix("failure: ")
                .and_then(|v| v.split(' ').next())
            {
                let _ = codes.insert(c);
            }
        }
    }
    let uncovered: Vec<&str> = FailureCode::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !codes.contains(c))
        .collect();
    assert_eq!(
        uncovered,
        Vec::<&str>::new(),
        "failure codes no vector lists"
    );
    assert!(
        codes.iter().all(|c| FailureCode::parse(c).is_some()),
        "{codes:?}"
    );
    let mut names: Vec<&str> = all.iter().map(|v| v.name).collect();
    let on_disk = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".expect"))
        .count();
    assert_eq!(names.len(), on_disk, "vectors and .expect files");
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all.len(), "vector names are unique");
}

/// The report's input block: core fills bytes, SHA-256 (when asked), keys,
/// the trusted checkpoint and its version; the caller's name and time pass
/// through; the hand-written JSON is serde's.
#[test]
fn the_input_block_describes_what_was_verified() {
    use sha2::Digest as _;
    for v in vectors() {
        let mut o = options(&v);
        o.input = Some(stele_core::verify::InputMeta {
            name: Some(format!("{}.{}", v.name, v.ext)),
            verified_at: Some("2026-11-30T12:00:00Z".into()),
            sha256: true,
        });
        let mut s = StreamVerifier::new(o);
        for c in v.data.chunks(1000) {
            s.push(c);
        }
        let r = s.finish();
        let i = r.input.as_ref().expect("input block");
        assert_eq!(i.name.as_deref(), Some(&*format!("{}.{}", v.name, v.ext)));
        assert_eq!(i.bytes, v.data.len() as u64, "{}", v.name);
        assert_eq!(r.bytes, v.data.len() as u64, "{}", v.name);
        let want: String = sha2::Sha256::digest(&v.data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(i.sha256.as_deref(), Some(&*want), "{}", v.name);
        let keys: Vec<String> = std::iter::once(v.key.clone())
            .chain(stele_tests::rotation::also_pinned(v.name))
            .collect();
        assert_eq!(i.keys, keys, "{}", v.name);
        assert_eq!(i.trusted_checkpoint.is_some(), v.trusted.is_some());
        assert_eq!(i.verifier, format!("stele {}", env!("CARGO_PKG_VERSION")));
        assert_eq!(i.verified_at.as_deref(), Some("2026-11-30T12:00:00Z"));
        assert_eq!(
            r.to_json(),
            serde_json::to_string(&r).unwrap(),
            "{}",
            v.name
        );
        // Without sha256 asked, none is computed; without input, no block.
        let mut o = options(&v);
        o.input = Some(Default::default());
        assert_eq!(verify_bytes(o, &v.data).input.unwrap().sha256, None);
        assert_eq!(verify_bytes(options(&v), &v.data).input, None);
    }
}

/// Interval failures point at their cause: one changed byte in entry 7 is
/// one hash_mismatch, and each later checkpoint's root_mismatch names the
/// entries it covers and follows from it (issue 19: entry 5 is not blamed).
#[test]
fn root_mismatches_carry_their_range_and_cause() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "event-byte-changed")
        .unwrap();
    let r = verify_bytes(options(&v), &v.data);
    let got: Vec<_> = r
        .failures
        .iter()
        .map(|f| {
            (
                f.code.as_str(),
                f.entry,
                f.range.map(|x| (x.first, x.last)),
                f.cause,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("hash_mismatch", Some(7), None, None),
            ("root_mismatch", None, Some((5, 9)), Some(0)),
            ("root_mismatch", None, Some((5, 14)), Some(0)),
            ("root_mismatch", None, Some((5, 19)), Some(0)),
        ]
    );
}
