//! File modes of a log: made private whatever the umask, and a log whose
//! directory or `stele.json` others may write is refused by the writer
//! (docs/THREAT-MODEL.md names directory permissions as the defence).

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// `stele ARGS` under umask 000.
fn stele_umask0(args: &[&str], stdin: &str) -> std::process::Output {
    let mut c = Command::new("sh");
    let _ = c
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_stele"))
        .args(args);
    let mut child = c
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Every path under `dir` (itself included) with its permission bits.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut out = vec![(
        dir.display().to_string(),
        std::fs::symlink_metadata(dir).unwrap().mode() & 0o777,
    )];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(modes(&p));
        } else {
            out.push((
                p.display().to_string(),
                std::fs::symlink_metadata(&p).unwrap().mode() & 0o777,
            ));
        }
    }
    out
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Under umask 000 (it was 0777 and 0666: any local user read the entries,
/// bypassing stele.access, or dropped the sealing rules from stele.json),
/// a log's directory is made 0700 and every file in it 0600, the sealed
/// sidecar's too.
#[test]
fn a_log_is_private_whatever_the_umask() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let l = log.to_str().unwrap();
    let o = stele_umask0(
        &["init", l, "--origin", "perms.example/a", "--seal", "/ip"],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = stele_umask0(&["append", l], "{\"actor\":\"bob\",\"ip\":\"10.0.0.1\"}\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = stele_umask0(&["checkpoint", l], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let all = modes(&log);
    assert!(all.len() > 8, "{all:?}");
    for (p, m) in &all {
        let want = if Path::new(p).is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*m, want, "{p}: {m:o}");
    }
}

/// The writer refuses a log whose directory or stele.json group or others
/// may write, saying which and how to fix it; tightened, it goes on.
#[test]
fn the_writer_refuses_a_log_others_may_write() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let dir = Path::new(&log);
    for (p, loose) in [(dir.to_path_buf(), 0o777), (dir.join("stele.json"), 0o666)] {
        let tight = std::fs::metadata(&p).unwrap().mode() & 0o777;
        chmod(&p, loose);
        let o = stele(&["append", &log, "--event", r#"{"a":1}"#]);
        assert_ne!(o.status.code(), Some(0), "{}", p.display());
        assert!(
            stderr(&o).contains("lets group or others write it"),
            "{}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("chmod go-w"), "{}", stderr(&o));
        chmod(&p, tight);
        let _ = append(&log, &[r#"{"a":1}"#]);
    }
    // Group or others may read (an operator's choice): not refused.
    chmod(dir, 0o750);
    let _ = append(&log, &[r#"{"a":2}"#]);
}

/// A writer run as root on a log another user owns (the ops review: an
/// admin's one `stele anchor` left `timestamps` root-owned, and every later
/// anchor by the service user failed with "Permission denied") is refused
/// before it makes any file, naming the owner and how to run as them.
/// Needs root (to hand the directory to another user); CI runs as root.
#[test]
fn a_writer_run_as_root_refuses_a_log_another_user_owns() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("not root: this test needs root to give the log to another user; not run");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let _ = append(&log, &[r#"{"a":1}"#]);
    let dir = Path::new(&log);
    let chown = |uid: u32| {
        for e in std::fs::read_dir(dir).unwrap() {
            std::os::unix::fs::lchown(e.unwrap().path(), Some(uid), Some(uid)).unwrap();
        }
        std::os::unix::fs::lchown(dir, Some(uid), Some(uid)).unwrap();
    };
    chown(65534);
    let before = modes(dir);
    for args in [
        vec!["append", log.as_str(), "--event", r#"{"a":2}"#],
        vec!["checkpoint", log.as_str()],
    ] {
        let out = stele(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("owned by user 65534") && err.contains("sudo -u '#65534'"),
            "{err}"
        );
    }
    assert_eq!(modes(dir), before, "nothing was made or changed");
    for e in std::fs::read_dir(dir).unwrap() {
        assert_eq!(e.unwrap().metadata().unwrap().uid(), 65534);
    }
    // Back to root's: the writer works again.
    chown(0);
    let _ = append(&log, &[r#"{"a":3}"#]);
}
