//! The `stele` CLI against hostile or mistaken paths and arguments: export
//! and monitor outputs, a monitor whose log disappears or is swapped, keys
//! pasted where they do not belong.

mod common;

use common::*;
use std::path::Path;

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `stele export -o OUT` wrote `OUT.partial` with `File::create`: it wrote
/// through a planted link, truncated the user's own `OUT.partial`, and
/// left it behind when the export failed. Now a random new name is used.
#[test]
fn export_writes_a_new_temporary_file_never_a_planted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let _ = append(&log, &[r#"{"a":1}"#]);
    let d = tmp.path();
    std::fs::write(d.join("victim.txt"), "precious user data").unwrap();
    std::os::unix::fs::symlink("victim.txt", d.join("audit.partial")).unwrap();
    std::fs::write(d.join("notes.partial"), "my notes").unwrap();
    for out in ["audit.stele", "notes.stele"] {
        let out = d.join(out);
        let _ = ok(&stele(&["export", &log, "-o", out.to_str().unwrap()]));
        assert!(
            std::fs::read_to_string(&out)
                .unwrap()
                .starts_with("stele-export v1")
        );
    }
    assert_eq!(
        std::fs::read_to_string(d.join("victim.txt")).unwrap(),
        "precious user data"
    );
    assert!(d.join("audit.partial").is_symlink());
    assert_eq!(
        std::fs::read_to_string(d.join("notes.partial")).unwrap(),
        "my notes"
    );
    // A refused output leaves nothing behind.
    std::fs::create_dir(d.join("outdir")).unwrap();
    let before = listing(d);
    let out = stele(&["export", &log, "-o", d.join("outdir").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
    assert_eq!(listing(d), before);
}

/// `-o DIR/key` replaced the log's signing key, `-o DIR/entries.jsonl`
/// its entries: any output inside the log directory is refused.
#[test]
fn export_into_the_log_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let _ = append(&log, &[r#"{"a":1}"#]);
    let dir = Path::new(&log);
    let key = std::fs::read(dir.join("key")).unwrap();
    let entries = std::fs::read(dir.join("entries.jsonl")).unwrap();
    let before = listing(dir);
    // Also through another name of the directory.
    let alias = tmp.path().join("alias");
    std::os::unix::fs::symlink(dir, &alias).unwrap();
    for out in [
        dir.join("key"),
        dir.join("entries.jsonl"),
        dir.join("new.stele"),
        alias.join("key"),
    ] {
        let o = stele(&["export", &log, "-o", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{out:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("inside the log directory"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(std::fs::read(dir.join("key")).unwrap(), key);
    assert_eq!(std::fs::read(dir.join("entries.jsonl")).unwrap(), entries);
    assert_eq!(listing(dir), before);
    let _ = append(&log, &[r#"{"a":2}"#]);
}

/// A symbolic link is never replaced by the export: to a regular file it is
/// refused, to a device (the `/dev/stdout` case) it is written into; `-`
/// is standard output.
#[test]
fn export_to_a_link_a_device_or_standard_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let d = tmp.path();
    std::fs::write(d.join("target"), "kept").unwrap();
    std::os::unix::fs::symlink("target", d.join("link")).unwrap();
    let o = stele(&["export", &log, "-o", d.join("link").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    assert!(d.join("link").is_symlink());
    assert_eq!(std::fs::read_to_string(d.join("target")).unwrap(), "kept");
    std::os::unix::fs::symlink("/dev/null", d.join("null")).unwrap();
    let _ = ok(&stele(&[
        "export",
        &log,
        "-o",
        d.join("null").to_str().unwrap(),
    ]));
    assert!(d.join("null").is_symlink());
    let out = ok(&stele(&["export", &log, "-o", "-"]));
    assert!(out.starts_with("stele-export v1"), "{out}");
}

/// `stele export --db` created OUT directly: it wrote through a planted
/// link and removed the user's earlier OUT when the export failed. It now
/// checks OUT as the directory export does, before it connects (the URL
/// here names a closed port: the refusal comes first), and writes through
/// a temporary file (the cluster tests export through it).
#[test]
fn cluster_export_checks_its_output_before_connecting() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("target"), "kept").unwrap();
    std::os::unix::fs::symlink("target", d.join("link")).unwrap();
    std::fs::create_dir(d.join("outdir")).unwrap();
    let before = listing(d);
    for (out, why) in [("link", "symbolic link"), ("outdir", "is a directory")] {
        let o = stele(&[
            "export",
            "--db",
            "postgres://stele@127.0.0.1:1/none",
            "-o",
            d.join(out).to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }
    assert_eq!(listing(d), before);
    assert_eq!(std::fs::read_to_string(d.join("target")).unwrap(), "kept");
}

/// `stele monitor --state S` wrote `S.tmp` with `File::create`: a planted
/// link there was written through.
#[test]
fn monitor_state_is_written_through_a_new_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let d = tmp.path();
    std::fs::write(d.join("victim"), "precious").unwrap();
    std::os::unix::fs::symlink("victim", d.join("state.tmp")).unwrap();
    let state = d.join("state.json");
    let _ = ok(&stele(&[
        "monitor",
        &log,
        "--key",
        &vkey,
        "--state",
        state.to_str().unwrap(),
        "--once",
    ]));
    assert_eq!(
        std::fs::read_to_string(d.join("victim")).unwrap(),
        "precious"
    );
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .starts_with("example.com/audit\n")
    );
    assert!(d.join("state.tmp").is_symlink());
}

fn monitor_once(log: &str, vkey: &str, state: &Path, alert: &Path) -> std::process::Output {
    let cmd = format!("cat > {}", alert.display());
    stele(&[
        "monitor",
        log,
        "--key",
        vkey,
        "--state",
        state.to_str().unwrap(),
        "--once",
        "--on-alert",
        &cmd,
    ])
}

/// A watched log whose files are deleted, or whose state file is
/// corrupted, is an alert (`unreadable`, --on-alert run, exit 1); it was
/// an error (exit 2) that ran no hook.
#[test]
fn monitor_alerts_when_a_watched_log_or_its_state_cannot_be_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"a":1}"#]);
    let _ = ok(&stele(&["checkpoint", &log]));
    let state = tmp.path().join("state");
    let alert = tmp.path().join("alert.json");
    let _ = ok(&monitor_once(&log, &vkey, &state, &alert));
    assert!(!alert.exists());
    let good = std::fs::read(&state).unwrap();
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(&log).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            let _ = std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    type Damage<'a> = (&'a str, &'a dyn Fn(&Path));
    let damage: [Damage<'_>; 3] = [
        ("entries", &|d| {
            std::fs::remove_file(d.join("entries.jsonl")).unwrap()
        }),
        ("checkpoints", &|d| {
            std::fs::remove_file(d.join("checkpoints")).unwrap()
        }),
        ("config", &|d| {
            std::fs::remove_file(d.join("stele.json")).unwrap()
        }),
    ];
    let log_dir = Path::new(&log);
    for (what, f) in damage {
        std::fs::remove_dir_all(log_dir).unwrap();
        std::fs::create_dir(log_dir).unwrap();
        for e in std::fs::read_dir(&copy).unwrap() {
            let e = e.unwrap();
            let _ = std::fs::copy(e.path(), log_dir.join(e.file_name())).unwrap();
        }
        f(log_dir);
        let _ = std::fs::remove_file(&alert);
        let out = monitor_once(&log, &vkey, &state, &alert);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("ALERT unreadable"),
            "{what}: {}",
            stderr(&out)
        );
        let a: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&alert).unwrap()).unwrap();
        assert_eq!(a["alert"], "unreadable", "{what}");
        assert_eq!(a["trusted_size"], 2, "{what}");
        assert!(a["failures"][0]["message"].as_str().unwrap().len() > 5);
        assert_eq!(std::fs::read(&state).unwrap(), good, "{what}");
    }
    std::fs::remove_dir_all(log_dir).unwrap();
    std::fs::rename(&copy, log_dir).unwrap();
    // A line of DIR/timestamps that is no record is skipped with a warning
    // (tokens only add evidence; writer/README): the log itself is fine.
    std::fs::write(log_dir.join("timestamps"), "garbage\n").unwrap();
    let _ = std::fs::remove_file(&alert);
    let out = monitor_once(&log, &vkey, &state, &alert);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a timestamp record"),
        "{}",
        stderr(&out)
    );
    assert!(!alert.exists());
    std::fs::remove_file(log_dir.join("timestamps")).unwrap();
    // A corrupted state file (with a terminal escape in it): an alert too,
    // the error escaped on stderr.
    std::fs::write(&state, "\x1b[2Jgarbage\n").unwrap();
    let _ = std::fs::remove_file(&alert);
    let out = monitor_once(&log, &vkey, &state, &alert);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains('\x1b'), "{}", stderr(&out));
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&alert).unwrap()).unwrap();
    assert_eq!(a["alert"], "unreadable");
    // URL mode reads its state file first: the same alert.
    let _ = std::fs::remove_file(&alert);
    let cmd = format!("cat > {}", alert.display());
    let out = stele(&[
        "monitor",
        "http://127.0.0.1:9/",
        "--key",
        &vkey,
        "--state",
        state.to_str().unwrap(),
        "--once",
        "--on-alert",
        &cmd,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&alert).unwrap()).unwrap();
    assert_eq!(a["alert"], "unreadable");
    assert_eq!(a["url"], "http://127.0.0.1:9/");
    // A first round against a path that never held a log, without a state
    // file, stays a usage error.
    let state2 = tmp.path().join("state2");
    let out = monitor_once(
        tmp.path().join("nowhere").to_str().unwrap(),
        &vkey,
        &state2,
        &alert,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// A private key pasted where a verifier key belongs (`--key`, a key file,
/// `--revoked K@N`) was echoed whole on stderr. It is never shown now.
#[test]
fn a_private_key_given_as_a_verifier_key_is_not_echoed() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let export = tmp.path().join("x.stele");
    let _ = ok(&stele(&["export", &log, "-o", export.to_str().unwrap()]));
    let key_file = Path::new(&log).join("key");
    let private = std::fs::read_to_string(&key_file).unwrap();
    let private = private.trim();
    assert!(private.starts_with("PRIVATE+KEY+"));
    // The key's secret part: what must never reach the terminal.
    let secret = private.rsplit('+').next().unwrap();
    let x = export.to_str().unwrap();
    let state = tmp.path().join("st");
    let revoked = format!("{private}@1");
    let cases: [Vec<&str>; 5] = [
        vec!["verify", x, "--key", private],
        vec!["verify", x, "--key", key_file.to_str().unwrap()],
        vec!["verify", x, "--key", &vkey, "--revoked", &revoked],
        vec![
            "monitor",
            &log,
            "--key",
            private,
            "--state",
            state.to_str().unwrap(),
            "--once",
        ],
        // Not a key at all: not shown either (it may be another secret).
        vec!["verify", x, "--key", "hunter2-not-a-key"],
    ];
    for args in cases {
        let out = stele(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains(secret), "{args:?}: {err}");
        assert!(!err.contains("hunter2"), "{args:?}: {err}");
        if args.contains(&"hunter2-not-a-key") {
            assert!(err.contains("not shown"), "{err}");
        } else {
            assert!(
                err.contains("this is a private key (not shown)"),
                "{args:?}: {err}"
            );
        }
    }
}

/// `stele verify DIR` with a verdict other than verified exits 1, also
/// when the access entry cannot be recorded (it exited 2 for
/// `unverified`: a log whose checkpoints file was emptied).
#[test]
fn verify_dir_exits_1_for_a_bad_verdict_even_when_the_access_is_not_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"i":1}"#, r#"{"i":2}"#]);
    let _ = ok(&stele(&["checkpoint", &log]));
    std::fs::write(Path::new(&log).join("checkpoints"), "").unwrap();
    let out = stele(&["verify", &log, "--key", &vkey]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("unverified"), "{text}");
    assert!(stderr(&out).contains("not recorded"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// `--interval` of 2^62 minutes wrapped to 0 s and `--interval 0` was
/// taken: a monitor re-verifying the log in a busy loop. Both are refused.
#[test]
fn an_interval_that_overflows_or_is_too_short_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let state = tmp.path().join("st");
    for (interval, why) in [
        ("4611686018427387904m", "too long"),
        ("307445734561825861h", "too long"),
        ("0", "shorter than the least interval"),
        ("9ms", "shorter than the least interval"),
    ] {
        let out = stele(&[
            "monitor",
            &log,
            "--key",
            &vkey,
            "--state",
            state.to_str().unwrap(),
            "--interval",
            interval,
        ]);
        assert_eq!(out.status.code(), Some(2), "{interval}: {}", stderr(&out));
        assert!(stderr(&out).contains(why), "{interval}: {}", stderr(&out));
        assert!(!state.exists(), "{interval}: no round ran");
    }
    let out = stele(&[
        "mirror",
        "http://127.0.0.1:9/",
        "m",
        "--key",
        &vkey,
        "--interval",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shorter than the least interval"),
        "{}",
        stderr(&out)
    );
    let _ = ok(&stele(&[
        "monitor",
        &log,
        "--key",
        &vkey,
        "--state",
        state.to_str().unwrap(),
        "--interval",
        "10ms",
        "--once",
    ]));
}

/// Side files were read whole: `--key /dev/zero` grew without bound. They
/// are read up to 1 MiB, with an error naming the file.
#[test]
fn side_files_are_read_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let export = tmp.path().join("x.stele");
    let _ = ok(&stele(&["export", &log, "-o", export.to_str().unwrap()]));
    let x = export.to_str().unwrap();
    let big = tmp.path().join("big");
    std::fs::write(&big, vec![b'a'; (1 << 20) + 1]).unwrap();
    let big = big.to_str().unwrap();
    for (args, named) in [
        (vec!["verify", x, "--key", "/dev/zero"], "/dev/zero"),
        (vec!["verify", x, "--key", big], big),
        (
            vec![
                "verify",
                x,
                "--key",
                &vkey,
                "--trusted-checkpoint",
                "/dev/zero",
            ],
            "/dev/zero",
        ),
        (
            vec!["verify", x, "--key", &vkey, "--tsa-ca", "/dev/zero"],
            "/dev/zero",
        ),
    ] {
        let out = stele(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("more than 1 MiB"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(named), "{args:?}: {}", stderr(&out));
    }
}

/// An origin of 8K-32K characters made a log whose first checkpoint note
/// was over 16 KiB (it never verified); `stele init` refuses one over
/// 1 KiB before making anything.
#[test]
fn init_refuses_an_origin_too_long_for_a_checkpoint_note() {
    let tmp = tempfile::tempdir().unwrap();
    for n in [1025, 10_000, 30_000] {
        let dir = tmp.path().join(format!("log{n}"));
        let origin = "a".repeat(n);
        let out = stele(&["init", dir.to_str().unwrap(), "--origin", &origin]);
        assert_eq!(out.status.code(), Some(2), "{n}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("more than the 1024"),
            "{}",
            stderr(&out)
        );
        assert!(!dir.exists(), "{n}: nothing is made");
    }
    let dir = tmp.path().join("log1024");
    let d = dir.to_str().unwrap();
    let vkey = ok(&stele(&["init", d, "--origin", &"a".repeat(1024)]));
    let _ = append(d, &[r#"{"a":1}"#]);
    let _ = ok(&stele(&["checkpoint", d]));
    let out = ok(&stele(&["verify", d, "--key", vkey.trim()]));
    assert!(out.starts_with("verified"), "{out}");
}

/// Error messages name paths as given: an ESC sequence or a bidirectional
/// override in one reached the terminal. They are shown escaped.
#[test]
fn error_messages_escape_control_and_bidi_characters() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, vkey) = init(tmp.path());
    for name in ["x\x1b[2J\x1b[31mverified", "y\u{202e}txt.stele", "z\rok"] {
        let p = tmp.path().join(name);
        let out = stele(&["verify", p.to_str().unwrap(), "--key", &vkey]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(!err.contains(['\x1b', '\u{202e}', '\r']), "{err:?}");
        assert!(err.contains("\\u{"), "{err:?}");
    }
    // Notes on success name paths too (here the tokens file's).
    let tokens = tmp.path().join("t\x1b[2Jokens");
    let out = stele(&["token", "add", tokens.to_str().unwrap(), "alice"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        !err.contains('\x1b') && err.contains("t\\u{001B}[2Jokens"),
        "{err:?}"
    );
}
