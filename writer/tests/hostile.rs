//! Issue 16, storage and CLI side: the attacks from outside that lost or
//! overwrote entries, destroyed a log, or made the CLI use unbounded
//! memory, each reproduced against the real `stele` binary or the library.

mod common;

use common::{append, assert_verified, entries, init, ok, stderr, stele, stele_stdin, verify_core};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use stele_writer::fs::FileRole;
use stele_writer::testing::{FaultFs, FaultMode, Op};
use stele_writer::{Error, Log, LogOptions, key};

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap_or_default())
        })
        .collect();
    out.sort();
    out
}

/// Finding 3: `rm DIR/lock` while a writer runs let `stele append` in, and
/// both wrote the same seq: the first writer's acknowledged entry was gone.
/// The lock is now on the directory itself.
#[test]
fn deleting_the_lock_file_does_not_let_a_second_writer_in() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let held = Log::open(Path::new(&log)).unwrap();
    let first = held.append(json!({"by": "library", "n": 1})).unwrap();
    std::fs::remove_file(Path::new(&log).join("lock")).unwrap();

    let out = stele(&["append", &log, "--event", r#"{"by":"cli"}"#]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is locked by another writer"),
        "{}",
        stderr(&out)
    );
    let second = held.append(json!({"by": "library", "n": 2})).unwrap();
    assert_eq!(second.seq, first.seq + 1);
    drop(held);

    // Every acknowledged entry is there, once, and nothing of the refused one.
    let lines = entries(&log);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[first.seq as usize]["event"]["n"], 1);
    assert_eq!(lines[second.seq as usize]["event"]["n"], 2);
    assert!(lines.iter().all(|l| l["event"]["by"] != "cli"));
    let _ = ok(&stele(&["checkpoint", &log]));
    assert_verified(&verify_core(&log, &vkey));
}

/// Finding 3, second half: whatever else writes to the entries file (a stele
/// that only knew DIR/lock, an editor, a restore) is found before the next
/// commit, which is refused (the writer is poisoned) instead of writing on
/// top of it.
#[test]
fn a_writer_refuses_to_commit_after_something_else_changed_its_files() {
    for change in ["appended", "replaced", "checkpoints"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let signer = key::generate("example.com/audit").unwrap();
        let log = Log::create(&dir, "example.com/audit", &signer).unwrap();
        let _ = log.append(json!({"n": 1})).unwrap();
        let path = dir.join(if change == "checkpoints" {
            "checkpoints"
        } else {
            "entries.jsonl"
        });
        let foreign = b"{\"written\":\"by someone else\"}\n";
        match change {
            "replaced" => {
                let mut copy = std::fs::read(&path).unwrap();
                copy.extend_from_slice(foreign);
                let tmp_copy = dir.join("copy");
                std::fs::write(&tmp_copy, &copy).unwrap();
                std::fs::rename(&tmp_copy, &path).unwrap();
            }
            _ => {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                f.write_all(foreign).unwrap();
            }
        }
        let before = std::fs::read(&path).unwrap();
        let err = if change == "checkpoints" {
            let _ = log.append(json!({"n": 2})).unwrap();
            log.checkpoint().unwrap_err()
        } else {
            log.append(json!({"n": 2})).unwrap_err()
        };
        let msg = err.to_string();
        assert!(matches!(err, Error::Poisoned { .. }), "{change}: {msg}");
        let why = if change == "replaced" {
            "was replaced by another file"
        } else {
            "something else wrote to it"
        };
        assert!(msg.contains(why), "{change}: {msg}");
        // Refused for good, and what the other party wrote is intact.
        assert!(log.append(json!({"n": 3})).is_err(), "{change}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "{change}");
    }
}

/// Finding 4: a partial restore (entries and checkpoints copied, stele.json
/// not) was destroyed by `stele init`: exit 0, every entry gone.
#[test]
fn init_refuses_a_directory_holding_part_of_a_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let events: Vec<String> = (0..70).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let _ = append(&log, &refs);
    let _ = ok(&stele(&["checkpoint", &log]));
    for copied in [
        &["entries.jsonl", "checkpoints"][..],
        &["entries.jsonl"],
        &["checkpoints"],
        &["tree", "index"],
        &["key"],
        &["lock"],
    ] {
        let restore = tmp.path().join(format!("restore-{}", copied.join("-")));
        std::fs::create_dir(&restore).unwrap();
        for f in copied {
            let _ = std::fs::copy(Path::new(&log).join(f), restore.join(f)).unwrap();
        }
        let before = files_of(&restore);
        for extra in [&[][..], &["--allow-non-empty"]] {
            let mut args = vec!["init", restore.to_str().unwrap(), "--origin", "x.example"];
            args.extend_from_slice(extra);
            let out = stele(&args);
            assert_eq!(out.status.code(), Some(2), "{copied:?} {extra:?}");
            let err = stderr(&out);
            assert!(err.contains("holds a log's files"), "{err}");
            assert!(err.contains(copied[0]), "{err}");
            assert!(err.contains("restore its stele.json"), "{err}");
            assert_eq!(
                files_of(&restore),
                before,
                "{copied:?}: the directory changed"
            );
        }
    }
    // The log itself: refused as before, untouched.
    let before = files_of(Path::new(&log));
    let out = stele(&["init", &log, "--origin", "x.example"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already holds a stele log"));
    assert_eq!(files_of(Path::new(&log)), before);
}

#[test]
fn init_refuses_a_non_empty_directory_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let out = stele(&["init", dir.to_str().unwrap(), "--origin", "x.example"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("is not empty"), "{err}");
    assert!(err.contains("notes.txt"), "{err}");
    assert!(err.contains("--allow-non-empty"), "{err}");
    assert_eq!(files_of(&dir).len(), 1, "a refused init left files");
    // A refused init with a new --key-file leaves no key behind either.
    let key = tmp.path().join("k");
    let out = stele(&[
        "init",
        dir.to_str().unwrap(),
        "--origin",
        "x.example",
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!key.exists());

    let vk = ok(&stele(&[
        "init",
        dir.to_str().unwrap(),
        "--origin",
        "x.example",
        "--allow-non-empty",
    ]));
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_verified(&verify_core(dir.to_str().unwrap(), vk.trim()));
}

/// Runs `f` until it is not `Error::Locked`, for up to 5 s: other tests of
/// this process spawn `stele` children, and a child holds a copy of every
/// descriptor (and so the directory lock of a log just dropped) from fork
/// until its exec.
fn unlocked<T>(mut f: impl FnMut() -> stele_writer::Result<T>) -> stele_writer::Result<T> {
    let start = std::time::Instant::now();
    loop {
        match f() {
            Err(Error::Locked { .. }) if start.elapsed() < std::time::Duration::from_secs(5) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// A failed init removes what it made: no half-made log is left to be
/// mistaken for one (or to block the next init).
#[test]
fn a_failed_create_leaves_nothing_behind() {
    let cases = [
        (Op::Write, Some(FileRole::Entries), "genesis write"),
        (Op::Sync, Some(FileRole::Entries), "genesis fdatasync"),
        (Op::Write, Some(FileRole::Checkpoints), "first checkpoint"),
        (Op::Rename, Some(FileRole::Config), "stele.json rename"),
        (Op::Write, Some(FileRole::Key), "key write"),
    ];
    for (op, role, what) in cases {
        let tmp = tempfile::tempdir().unwrap();
        for pre_existing in [false, true] {
            let dir = tmp.path().join(format!("log-{pre_existing}"));
            if pre_existing {
                std::fs::create_dir(&dir).unwrap();
            }
            let fs = Arc::new(FaultFs::new());
            fs.fail_nth(op, role, 1, FaultMode::Persisted);
            let opts = LogOptions {
                fs: fs.clone(),
                ..LogOptions::default()
            };
            let signer = key::generate("example.com/audit").unwrap();
            let r = unlocked(|| {
                Log::create_with(&dir, "example.com/audit", &signer, None, opts.clone())
            });
            let err = r.expect_err("the fault did not fail the create");
            assert_eq!(fs.fired().len(), 1, "{what}: {err}");
            if pre_existing {
                assert_eq!(files_of(&dir), vec![], "{what}: files left behind");
            } else {
                assert!(!dir.exists(), "{what}: the directory made was left behind");
            }
            // And the next create there works.
            let _ = unlocked(|| Log::create(&dir, "example.com/audit", &signer))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
}

// Feeds `total` bytes made by `fill` to `stele verify /dev/stdin --json`
// while watching the child's peak resident memory (VmHWM, which only
// grows); returns (exit code, report, peak bytes).
fn verify_streamed(
    total: u64,
    fill: impl Fn(&mut [u8], u64) + Send + 'static,
) -> (i32, Value, u64) {
    let vkey = key::generate("example.com/audit")
        .unwrap()
        .verifier()
        .to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stele"))
        .args(["verify", "/dev/stdin", "--key", &vkey, "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut sent = 0u64;
        while sent < total {
            let n = (total - sent).min(buf.len() as u64) as usize;
            fill(&mut buf[..n], sent);
            stdin.write_all(&buf[..n]).unwrap();
            sent += n as u64;
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out).unwrap();
        out
    });
    let mut peak_kb = 0u64;
    while child.try_wait().unwrap().is_none() {
        let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        peak_kb = peak_kb.max(hwm.unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    feeder.join().unwrap();
    let out = reader.join().unwrap();
    let code = child.wait().unwrap().code().unwrap();
    assert!(peak_kb > 0, "no memory reading of the child");
    let report: Value = serde_json::from_slice(&out).expect("a JSON report");
    (code, report, peak_kb * 1024)
}

/// Finding 11: one line without a newline was buffered whole (1 GB line:
/// 1.6 GB; /dev/zero grew until killed). Now a line stops being buffered at
/// the limit and its length is still counted.
#[test]
fn an_endless_line_is_counted_not_buffered() {
    let total: u64 = 768 << 20;
    let (code, report, peak) = verify_streamed(total, |buf, _| buf.fill(b'x'));
    println!(
        "stele verify of a {} MiB line without a newline: peak RSS {:.1} MiB",
        total >> 20,
        peak as f64 / (1 << 20) as f64
    );
    assert_eq!(code, 1);
    let failures = report["failures"].as_array().unwrap();
    let tail = failures
        .iter()
        .find(|f| f["code"] == "trailing_data")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert!(
        tail["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{total} bytes")),
        "{tail}"
    );
    // Not "the file is empty": no failure or notice calls it that.
    assert!(
        !report.to_string().contains("empty"),
        "a {total}-byte file is not empty: {report:#}"
    );
    assert!(
        peak < 192 << 20,
        "peak RSS {peak} bytes for a {total}-byte line"
    );
}

/// Finding 11, with the newline: the length is reported exactly as
/// `line_too_long`, and the lines after it are still read.
#[test]
fn an_overlong_line_is_reported_with_its_length() {
    let long: u64 = 300 << 20;
    let header = b"stele-export v1 log\n";
    let total = header.len() as u64 + long + 1 + 3;
    let (code, report, peak) = verify_streamed(total, move |buf, at| {
        for (i, b) in buf.iter_mut().enumerate() {
            let pos = at + i as u64;
            *b = if pos < header.len() as u64 {
                header[pos as usize]
            } else if pos == header.len() as u64 + long {
                b'\n'
            } else if pos > header.len() as u64 + long {
                b"{}\n"[(pos - header.len() as u64 - long - 1) as usize]
            } else {
                b'{'
            };
        }
    });
    println!(
        "stele verify of a {} MiB line: peak RSS {:.1} MiB",
        long >> 20,
        peak as f64 / (1 << 20) as f64
    );
    assert_eq!(code, 1);
    let failures = report["failures"].as_array().unwrap();
    let f = &failures[0];
    assert_eq!(f["code"], "line_too_long", "{report:#}");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains(&format!("is {long} bytes")),
        "{f}"
    );
    assert_eq!(f["line"], 2);
    // The entry after it was read too (entry 1 fails to parse as an entry).
    assert!(failures.iter().any(|f| f["entry"] == 1), "{report:#}");
    assert!(peak < 96 << 20, "peak RSS {peak} bytes");
}

/// Finding 12: 10M tiny bad lines (30 MB) made `stele verify` peak at 1.9 GB
/// (measured 1.5 GB here; 2M lines: over 500 MB). The bad-entry path keeps
/// nothing per line: failures beyond the cap are only counted. (2M lines
/// keep this test short in a debug build; memory no longer grows with the
/// count: 10M peak at 36 MB.)
#[test]
fn millions_of_bad_lines_stay_in_bounded_memory() {
    let lines: u64 = 2_000_000;
    let header = b"stele-export v1 log\n";
    let total = header.len() as u64 + lines * 3;
    let (code, report, peak) = verify_streamed(total, move |buf, at| {
        for (i, b) in buf.iter_mut().enumerate() {
            let pos = at + i as u64;
            *b = if pos < header.len() as u64 {
                header[pos as usize]
            } else {
                b"{}\n"[((pos - header.len() as u64) % 3) as usize]
            };
        }
    });
    println!(
        "stele verify of {lines} bad lines ({} MB): peak RSS {:.1} MiB",
        total / 1_000_000,
        peak as f64 / (1 << 20) as f64
    );
    assert_eq!(code, 1);
    assert_eq!(report["entries"], lines);
    assert_eq!(report["failures"].as_array().unwrap().len(), 1000);
    assert!(report["failures_total"].as_u64().unwrap() >= lines);
    assert!(peak < 96 << 20, "peak RSS {peak} bytes");
}

/// `stele verify DIR` on a log it cannot record the access in (read-only
/// storage, here a log whose files are not writable) said "verified", then
/// exited 2 with no hint. Now it says so first, with the way out.
#[test]
fn verify_says_first_when_it_cannot_record_the_access() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let (audit, _) = init(&tmp.path().join("audit"));
    let entries_path = Path::new(&log).join("entries.jsonl");
    let writable = |on: bool| {
        use std::os::unix::fs::PermissionsExt;
        let mode = if on { 0o644 } else { 0o444 };
        std::fs::set_permissions(&entries_path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    writable(false);
    // Root ignores file modes; then the check cannot be staged this way.
    let staged = std::fs::OpenOptions::new()
        .append(true)
        .open(&entries_path)
        .is_err();
    if staged {
        let out = stele(&["verify", &log, "--key", &vkey]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "",
            "a verdict was printed"
        );
        let err = stderr(&out);
        assert!(err.contains("cannot record this verification"), "{err}");
        assert!(err.contains("--access-log"), "{err}");
    }
    // A writer holding the log: the same, before any verdict.
    writable(true);
    let held = Log::open(Path::new(&log)).unwrap();
    let out = stele(&["verify", &log, "--key", &vkey]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(stderr(&out).contains("--access-log"), "{}", stderr(&out));
    // The way out works.
    let out = ok(&stele(&[
        "verify",
        &log,
        "--key",
        &vkey,
        "--access-log",
        &audit,
    ]));
    assert!(out.starts_with("verified"), "{out}");
    drop(held);
}

/// `--event 1 --event bad`: the message names the event refused (by its
/// place and text) and says nothing was written.
#[test]
fn a_bad_event_option_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    for (args, place, text) in [
        (
            &["--event", "1", "--event", "bad"][..],
            "--event number 1 of 2",
            "\"1\"",
        ),
        (
            &["--event", "{}", "--event", "bad"],
            "--event number 2 of 2",
            "\"bad\"",
        ),
    ] {
        let mut all = vec!["append", log.as_str()];
        all.extend_from_slice(args);
        let out = stele(&all);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(err.contains(&format!("{place}: ")), "{err}");
        // Named by place only: the text may hold values to be sealed.
        assert!(!err.contains(text), "{err}");
        assert!(err.contains("no event was written"), "{err}");
    }
    assert_eq!(entries(&log).len(), 1);
}

/// Numbers canonical form would silently change (2^64-1 became
/// 18446744073709552000, 1e-400 became 0) are refused at ingestion, and the
/// nesting limit and surrogate escapes get one right message each.
#[test]
fn ingestion_refuses_what_canonical_form_would_change() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let deep = |n: usize| format!("{}{}{}", "{\"a\":".repeat(n), 1, "}".repeat(n));
    // What is wrong and at which byte; nothing of the event is quoted (it
    // may be a value the log seals).
    let cases: Vec<(String, &str)> = vec![
        (
            r#"{"n":18446744073709551615}"#.into(),
            "integer beyond ±9007199254740991 (2^53-1) that a double cannot hold (I-JSON, RFC 7493); send it as a string (at byte 5)",
        ),
        (r#"{"n":-9007199254740993}"#.into(), "integer beyond"),
        (r#"{"n":9007199254740993}"#.into(), "integer beyond"),
        (
            r#"{"n":123456789012345678901234567890}"#.into(),
            "integer beyond ±9007199254740991",
        ),
        (
            r#"{"n":1e-400}"#.into(),
            "number too small for a double (it would be stored as 0)",
        ),
        (r#"{"n":1e400}"#.into(), "number too large for a double"),
        (
            r#"{"n":0.10000000000000000000001}"#.into(),
            "number with more precision than a double holds",
        ),
        (r#"{"s":"\udc00"}"#.into(), "lone low (trailing) surrogate"),
        (
            r#"{"s":"\ud800x"}"#.into(),
            "high (leading) surrogate escape not followed by a low surrogate",
        ),
        (
            r#"{"s":"\ud800"}"#.into(),
            "high (leading) surrogate escape not followed",
        ),
        (
            r#"{"s":"\ud800\u0041"}"#.into(),
            "high (leading) surrogate escape not followed",
        ),
        (
            r#"{"who":{"k-secret":1,"k-secret":2}}"#.into(),
            "duplicate key at line 1 column",
        ),
        (deep(64), "event nests deeper than 63 levels"),
        (deep(100), "event nests deeper than 63 levels"),
        (deep(127), "event nests deeper than 63 levels"),
        (deep(128), "event nests deeper than 63 levels"),
        (deep(5000), "event nests deeper than 63 levels"),
    ];
    for (event, want) in &cases {
        let out = stele(&["append", &log, "--event", event]);
        assert_eq!(out.status.code(), Some(2), "{event}");
        let err = stderr(&out);
        assert!(err.contains(want), "{event}: {err}");
        assert!(!err.contains("recursion limit"), "{err}");
        assert!(!err.contains("lone leading surrogate"), "{err}");
        for quoted in [
            "secret",
            "18446",
            "9007199254740993",
            "123456789",
            "e-400",
            "e400",
            "0.1000",
            "dc00\"",
            "d800\"",
        ] {
            assert!(!err.contains(quoted), "{event}: {err}");
        }
    }
    // The same through stdin.
    let out = stele_stdin(&["append", &log], Some("{\"n\":18446744073709551615}\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 1: integer beyond ±9007199254740991"),
        "{}",
        stderr(&out)
    );
    assert_eq!(entries(&log).len(), 1, "a refused event was written");
    // What canonical form keeps as written still goes in.
    let kept = append(
        &log,
        &[
            r#"{"n":9007199254740991,"m":-9007199254740991,"p":9007199254740992,"f":1e20,"g":1.0,"h":1e-7,"z":-0,"s":"\ud83d\ude00","d":[[[1]]]}"#,
        ],
    );
    assert_eq!(kept.len(), 1);
    let last = entries(&log).pop().unwrap();
    assert_eq!(last["event"]["s"], "\u{1F600}");
    assert_eq!(last["event"]["f"].as_f64(), Some(1e20));
    // deep(62) is an event of 62 levels: inside the line, 63.
    let _ = append(&log, &[&deep(62)]);
    // The library refuses the integer values too (its one canonical path).
    let (log_dir, _) = (PathBuf::from(&log), ());
    let l = Log::open(&log_dir).unwrap();
    let err = l.append(json!({"n": u64::MAX})).unwrap_err().to_string();
    assert!(
        err.contains("integer 18446744073709551615 is beyond"),
        "{err}"
    );
    let err = l.append(json!({"n": i64::MIN})).unwrap_err().to_string();
    assert!(err.contains("is beyond ±9007199254740991"), "{err}");
}

/// Issue 18: "honest exports are never partial": an export right after
/// `stele append` ended with entries no checkpoint covered.
#[test]
fn export_ends_with_a_checkpoint_covering_everything_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#]);
    let file = tmp.path().join("all.stele");
    let _ = ok(&stele(&["export", &log, "-o", file.to_str().unwrap()]));
    let text = std::fs::read_to_string(&file).unwrap();
    let k = stele_core::VerifierKey::parse(&vkey).unwrap();
    let r = stele_core::verify::verify_bytes(
        stele_core::verify::Options::new(vec![k.clone()]),
        text.as_bytes(),
    );
    assert_verified(&r);
    assert_eq!(r.entries, 4);
    assert_eq!(
        r.tree_size,
        Some(4),
        "the export's last checkpoint covers all 4 entries"
    );
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("\u{2014} "),
        "{text}"
    );

    // Without the writer (--access-log), the export stops at the latest
    // checkpoint and says so.
    let _ = append(&log, &[r#"{"n":4}"#]);
    let (audit, _) = init(&tmp.path().join("audit"));
    let part = tmp.path().join("part.stele");
    let out = stele(&[
        "export",
        &log,
        "-o",
        part.to_str().unwrap(),
        "--access-log",
        &audit,
    ]);
    let _ = ok(&out);
    assert!(
        stderr(&out).contains("not covered by a signed checkpoint"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&part).unwrap();
    let r = stele_core::verify::verify_bytes(
        stele_core::verify::Options::new(vec![k]),
        text.as_bytes(),
    );
    assert_verified(&r);
    assert_eq!(r.tree_size, Some(r.entries), "{r:?}");
    assert!(!text.contains("\"n\":4"), "an unsigned entry was exported");
}

/// A crafted index must not make `stele key`/`cat` read gigabytes, and a
/// read-only open does not buffer an endless line of the entries file.
#[test]
fn read_only_opens_bound_what_they_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let (audit, _) = init(&tmp.path().join("audit"));
    let path = Path::new(&log).join("entries.jsonl");
    // An endless second line (no newline), and derived files that do not
    // match, so the read-only open rebuilds from the entries.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let chunk = vec![b'{'; 1 << 20];
    for _ in 0..64 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\n").unwrap();
    std::fs::remove_file(Path::new(&log).join("index")).unwrap();
    let out = stele(&["cat", &log, "--access-log", &audit]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("entry 1"), "{err}");
    assert!(
        err.contains(&format!("line is {} bytes", (64 << 20) + 1)),
        "{err}"
    );
}

/// A wrong offset in the middle of the index (a derived file, trusted past
/// the check mark) made `cat` print another entry's line under this one's
/// number and `export --entries` write it, both exiting 0. Each line read
/// by its number is now checked against the tree's leaf.
#[test]
fn a_shifted_middle_index_entry_is_caught_by_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(&tmp.path().join("log"));
    let (audit, _) = init(&tmp.path().join("audit"));
    let events: Vec<String> = (0..10).map(|i| format!(r#"{{"i":{i}}}"#)).collect();
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let _ = append(&log, &refs);
    let _ = ok(&stele(&["checkpoint", &log]));
    let path = Path::new(&log).join("index");
    let mut ends: Vec<u64> = std::fs::read(&path)
        .unwrap()
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    // Entry 5 now starts where entry 6 does and ends where it ends.
    ends[4] = ends[5];
    ends[5] = ends[6];
    std::fs::write(
        &path,
        ends.iter()
            .flat_map(|e| e.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let out_file = tmp.path().join("five.stele");
    let export = [
        "export",
        &log,
        "--entries",
        "5",
        "-o",
        out_file.to_str().unwrap(),
    ];
    // Read only (the writer's open checks its files and reads right).
    for args in [
        vec!["cat", &log, "--from", "5", "--to", "6"],
        vec!["cat", &log, "--from", "2", "--to", "6"],
        export.to_vec(),
    ] {
        let mut a = args.clone();
        a.extend(["--access-log", audit.as_str()]);
        let out = stele(&a);
        assert_eq!(out.status.code(), Some(1), "{a:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("entry 5") && stderr(&out).contains("damaged index"),
            "{a:?}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "{a:?}: {:?}", out.stdout);
        assert!(!out_file.exists(), "{a:?} wrote an export");
    }
    let five = ok(&stele(&["cat", &log, "--from", "5", "--to", "6"]));
    assert!(
        five.starts_with(r#"{"event":{"i":4},"#) && five.contains(r#""seq":5,"#),
        "{five}"
    );
    let _ = ok(&stele(&export));
}

/// Whoever can write a log's directory must not be able to make a stele
/// command write outside it: a log file replaced by a symbolic link (to a
/// victim file, or to another log's file, which would also sidestep that
/// log's writer lock) is refused by name, and the link's target is untouched.
#[test]
fn a_log_file_replaced_by_a_symbolic_link_is_refused_and_its_target_untouched() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    let body = vec![b'v'; 100_000];
    let (log, _vkey) = init(&tmp.path().join("log"));
    let _ = append(&log, &[r#"{"n":1}"#]);
    for name in ["tree", "index", "checkpoints", "entries.jsonl"] {
        std::fs::write(&victim, &body).unwrap();
        let file = Path::new(&log).join(name);
        let saved = tmp.path().join(format!("saved-{name}"));
        std::fs::rename(&file, &saved).unwrap();
        symlink(&victim, &file).unwrap();
        for args in [
            vec!["append", log.as_str(), "--event", r#"{"n":2}"#],
            vec!["checkpoint", log.as_str()],
            vec!["cat", log.as_str()],
        ] {
            let out = stele(&args);
            assert_ne!(out.status.code(), Some(0), "{args:?} with {name} a link");
            assert!(
                stderr(&out).contains(name) && stderr(&out).contains("symbolic link"),
                "{args:?}: {}",
                stderr(&out)
            );
            assert_eq!(
                std::fs::read(&victim).unwrap(),
                body,
                "{args:?} wrote through {name}"
            );
        }
        std::fs::remove_file(&file).unwrap();
        std::fs::rename(&saved, &file).unwrap();
    }
    // Untouched, the log still takes appends and verifies.
    let _ = append(&log, &[r#"{"n":3}"#]);
    assert_eq!(entries(&log).len(), 3);
}

/// The sealed-field sidecar's secrets never land in a file someone else
/// planted: a link under a temporary name is replaced, not written through,
/// and a sidecar directory open to others is refused.
#[test]
fn sealed_secrets_are_never_written_through_planted_files() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let log_s = log.to_str().unwrap().to_owned();
    let _ = ok(&stele(&[
        "init",
        &log_s,
        "--origin",
        "example.com/sealed",
        "--seal",
        "/email",
    ]));
    let sealed = log.join("sealed");
    std::fs::create_dir_all(&sealed).unwrap();
    std::fs::set_permissions(&sealed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let trap = tmp.path().join("trap");
    std::fs::write(&trap, b"").unwrap();
    symlink(&trap, sealed.join(".secret.tmp")).unwrap();
    let _ = ok(&stele(&[
        "append",
        &log_s,
        "--event",
        r#"{"email":"a@example.com"}"#,
    ]));
    assert_eq!(
        std::fs::read(&trap).unwrap(),
        b"",
        "the secret went into the planted file"
    );
    assert!(
        !std::fs::symlink_metadata(sealed.join("secret"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A sidecar directory others may enter is refused by name.
    std::fs::set_permissions(&sealed, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = stele(&["append", &log_s, "--event", r#"{"email":"b@example.com"}"#]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("sealed") && stderr(&out).contains("not a private directory"),
        "{}",
        stderr(&out)
    );
    assert_eq!(entries(&log_s).len(), 2, "the refused event was written");
}
