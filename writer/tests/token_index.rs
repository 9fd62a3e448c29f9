//! Exports read only the timestamp records they carry (anchor.rs,
//! `TokenIndex`): a record elsewhere in `DIR/timestamps` whose token does
//! not parse fails only the exports that would carry it, tokens appended
//! by another writer after a view was opened are in its next export, and a
//! replaced file is read afresh.

use serde_json::json;
use std::io::Write;
use std::path::Path;
use stele_core::timestamp::TimestampRecord;
use stele_writer::{Log, LogOptions, View, anchor, key};

fn rec(size: u64, tag: u8) -> TimestampRecord {
    TimestampRecord {
        size,
        token: vec![tag; 40],
    }
}

// A log of 11 entries (its first made by `create`) with checkpoints at
// 3, 5, 7, 9 and 11.
fn log(dir: &Path) -> Log {
    let signer = key::generate("test.example/log").unwrap();
    let log = Log::create_with(
        dir,
        "test.example/log",
        &signer,
        None,
        LogOptions::default(),
    )
    .unwrap();
    for i in 0..10 {
        let _ = log.append(json!({ "n": i })).unwrap();
        if i % 2 == 1 {
            let _ = log.checkpoint().unwrap();
        }
    }
    log
}

fn range(v: &View, from: u64, to: u64) -> Result<String, stele_writer::Error> {
    let mut out = Vec::new();
    v.export_range(from, to, &mut out, &mut |_| {})?;
    Ok(String::from_utf8(out).unwrap())
}

fn whole(v: &View) -> Result<String, stele_writer::Error> {
    let mut out = Vec::new();
    v.export_log(&mut out, &mut |_| {})?;
    Ok(String::from_utf8(out).unwrap())
}

// The timestamp lines of an export, in order.
fn stamps(export: &str) -> Vec<String> {
    export
        .lines()
        .filter(|l| l.starts_with("timestamp "))
        .map(String::from)
        .collect()
}

fn line(r: &TimestampRecord) -> String {
    r.to_line()
}

#[test]
fn an_export_reads_only_the_timestamp_records_it_carries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let log = log(dir);
    // Out of size order, two for 5, one for a size without a checkpoint.
    let recs = [
        rec(9, 1),
        rec(5, 2),
        rec(3, 3),
        rec(7, 4),
        rec(5, 5),
        rec(6, 6),
        rec(11, 7),
    ];
    for r in &recs {
        anchor::append(dir, r).unwrap();
    }
    let v = log.view();
    let before = range(&v, 1, 3).unwrap();
    assert_eq!(stamps(&before), [line(&recs[2]), line(&recs[6])]);
    assert_eq!(
        stamps(&whole(&v).unwrap()),
        [&recs[2], &recs[1], &recs[4], &recs[3], &recs[0], &recs[6]].map(line)
    );

    // The token of size 7's record (line 4) no longer decodes; its size does.
    let path = dir.join("timestamps");
    let text = std::fs::read_to_string(&path).unwrap();
    let bad = format!("timestamp 7 !{}", &line(&recs[3])["timestamp 7 !".len()..]);
    std::fs::write(&path, text.replace(&line(&recs[3]), &bad)).unwrap();
    assert_eq!(range(&v, 1, 3).unwrap(), before);
    assert_eq!(
        range(&View::open_read_only(dir).unwrap(), 1, 3).unwrap(),
        before
    );
    // It is skipped (with a warning), by the exports that would carry it
    // and by `stele verify DIR`: one bad line failed them all, for good.
    assert_eq!(
        stamps(&whole(&v).unwrap()),
        [&recs[2], &recs[1], &recs[4], &recs[0], &recs[6]].map(line)
    );
    assert!(
        !stamps(&range(&v, 6, 7).unwrap())
            .iter()
            .any(|l| l.starts_with("timestamp 7 "))
    );
    let r = stele_writer::verify_dir(
        dir,
        stele_core::verify::Options::new(vec![log.verifier()]),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.verdict.as_str(), "verified", "{}", r.to_json());

    // A line whose size cannot be read is skipped too; the records around
    // it are exported.
    let good = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&bad, &line(&recs[3]));
    std::fs::write(&path, good.replace("timestamp 6 ", "timestamp 06 ")).unwrap();
    assert_eq!(range(&v, 1, 3).unwrap(), before);
    assert_eq!(
        stamps(&whole(&v).unwrap()),
        [&recs[2], &recs[1], &recs[4], &recs[3], &recs[0], &recs[6]].map(line)
    );
    std::fs::write(&path, &good).unwrap();
    assert_eq!(range(&v, 1, 3).unwrap(), before);
}

#[test]
fn tokens_appended_after_a_view_opened_are_in_its_next_export() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let log = log(dir);
    let v = log.view();
    let ro = View::open_read_only(dir).unwrap();
    assert!(stamps(&range(&v, 1, 3).unwrap()).is_empty());
    // Another writer (`stele anchor` beside `stele serve`) appends.
    anchor::append(dir, &rec(3, 1)).unwrap();
    anchor::append(dir, &rec(11, 2)).unwrap();
    let want = [line(&rec(3, 1)), line(&rec(11, 2))];
    assert_eq!(stamps(&range(&v, 1, 3).unwrap()), want);
    assert_eq!(stamps(&range(&ro, 1, 3).unwrap()), want);
    // A torn append is not read; the next append cuts it off.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("timestamps"))
        .unwrap();
    f.write_all(b"timestamp 3 AAAA").unwrap();
    assert_eq!(stamps(&range(&v, 1, 3).unwrap()), want);
    anchor::append(dir, &rec(3, 3)).unwrap();
    let want = [line(&rec(3, 1)), line(&rec(3, 3)), line(&rec(11, 2))];
    assert_eq!(stamps(&range(&v, 1, 3).unwrap()), want);
    // Out of order: a record for an older checkpoint after a newer one.
    anchor::append(dir, &rec(5, 4)).unwrap();
    assert_eq!(
        stamps(&range(&v, 4, 5).unwrap()),
        [line(&rec(5, 4)), line(&rec(11, 2))]
    );
    // A file replaced (restored from elsewhere) is read afresh, even one
    // longer than the one indexed.
    let other: String = [rec(11, 9), rec(3, 8), rec(3, 7), rec(9, 6), rec(5, 5)]
        .iter()
        .map(|r| line(r) + "\n")
        .collect();
    std::fs::write(dir.join("timestamps.tmp"), &other).unwrap();
    std::fs::rename(dir.join("timestamps.tmp"), dir.join("timestamps")).unwrap();
    assert_eq!(
        stamps(&range(&v, 1, 3).unwrap()),
        [line(&rec(3, 8)), line(&rec(3, 7)), line(&rec(11, 9))]
    );
    // Rewritten in place, as long or longer: its lines moved.
    let moved: String = [
        rec(3, 1),
        rec(3, 2),
        rec(11, 9),
        rec(3, 8),
        rec(3, 7),
        rec(9, 6),
        rec(5, 5),
    ]
    .iter()
    .map(|r| line(r) + "\n")
    .collect();
    std::fs::write(dir.join("timestamps"), &moved).unwrap();
    assert_eq!(
        stamps(&range(&v, 1, 3).unwrap()),
        [3, 3, 3, 3]
            .iter()
            .zip([1, 2, 8, 7])
            .map(|(&s, t)| line(&rec(s, t)))
            .chain([line(&rec(11, 9))])
            .collect::<Vec<_>>()
    );
    // Cut shorter in place, then gone.
    std::fs::write(dir.join("timestamps"), line(&rec(11, 1)) + "\n").unwrap();
    assert_eq!(stamps(&range(&v, 1, 3).unwrap()), [line(&rec(11, 1))]);
    std::fs::remove_file(dir.join("timestamps")).unwrap();
    assert!(stamps(&range(&v, 1, 3).unwrap()).is_empty());
}
