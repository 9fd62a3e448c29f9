#![allow(dead_code)] // reason: each test binary uses a different part of these helpers

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use stele_core::VerifierKey;
use stele_core::verify::{Options, Report, Verdict};

/// Every operation the fault seam can fail, with the modes that apply to it
/// (`FaultFs`), for tests that fail each one in turn.
pub(crate) const FAULT_CASES: [(
    stele_writer::testing::Op,
    &str,
    &[stele_writer::testing::FaultMode],
); 4] = {
    use stele_writer::testing::{FaultMode as M, Op};
    [
        (
            Op::Write,
            "write",
            &[M::NotPersisted, M::Persisted, M::Partial],
        ),
        (Op::Sync, "sync", &[M::NotPersisted, M::Persisted]),
        (Op::Truncate, "truncate", &[M::NotPersisted, M::Persisted]),
        (Op::Rename, "rename", &[M::NotPersisted, M::Persisted]),
    ]
};

pub(crate) fn stele(args: &[&str]) -> Output {
    stele_stdin(args, None)
}

pub(crate) fn stele_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    bounded_output(
        Command::new(env!("CARGO_BIN_EXE_stele")).args(args),
        stdin.map(str::as_bytes),
    )
}

/// How long one command in a test may run. A command that should fail but starts serving
/// instead would otherwise hang the whole suite; past this it is killed and the test fails.
pub(crate) const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// `cmd.output()` with `stdin` fed to it (closed at once when `None`), bounded by
/// `COMMAND_LIMIT`: the command is killed and the test fails, naming the command, when its
/// output has not ended by then.
pub(crate) fn bounded_output(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.map(<[u8]>::to_vec);
    let feeder = std::thread::spawn(move || {
        if let Some(data) = data {
            // A command that exits without reading all of it closes the pipe: not our failure.
            let _ = input.write_all(&data);
        }
    });
    let (done, finished) = mpsc::channel();
    let read = |mut pipe: Box<dyn Read + Send>, which: usize| {
        let done = done.clone();
        let _reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = done.send((which, bytes));
        });
    };
    read(Box::new(child.stdout.take().unwrap()), 0);
    read(Box::new(child.stderr.take().unwrap()), 1);
    let deadline = Instant::now() + COMMAND_LIMIT;
    let mut outputs = [Vec::new(), Vec::new()];
    for _ in 0..2 {
        match finished.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((which, bytes)) => outputs[which] = bytes,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} was still running after {COMMAND_LIMIT:?}: killed");
            }
        }
    }
    // The output has ended; the exit is normally at once, and is bounded the same way.
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} closed its output but did not exit within {COMMAND_LIMIT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = feeder.join();
    let [stdout, stderr] = outputs;
    Output {
        status,
        stdout,
        stderr,
    }
}

pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stele failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `stele init` in `dir/log`; returns (log dir, verifier key).
pub(crate) fn init(dir: &Path) -> (String, String) {
    let log = dir.join("log");
    let log = log.to_str().unwrap().to_string();
    let vkey = ok(&stele(&["init", &log, "--origin", "example.com/audit"]))
        .trim()
        .to_string();
    (log, vkey)
}

pub(crate) fn append(log: &str, events: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["append", log];
    for e in events {
        args.push("--event");
        args.push(e);
    }
    ok(&stele(&args))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub(crate) fn verify_core(log: &str, vkey: &str) -> Report {
    let k = VerifierKey::parse(vkey).unwrap();
    stele_writer::verify_dir(Path::new(log), Options::new(vec![k]), &mut |_, _| {}).unwrap()
}

pub(crate) fn assert_verified(r: &Report) {
    assert_eq!(
        r.verdict,
        Verdict::Verified,
        "failures: {:#?}, notices: {:#?}",
        r.failures,
        r.notices
    );
}

/// Entry lines as JSON values.
pub(crate) fn entries(log: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(Path::new(log).join("entries.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub(crate) fn event_types(log: &str) -> Vec<String> {
    entries(log)
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap_or("").to_string())
        .collect()
}

/// An HTTP/1.1 response read to the end (`Connection: close`): the status,
/// the headers (names lower-cased) and the body (de-chunked).
pub(crate) fn parse_response(
    raw: &[u8],
) -> std::io::Result<(u16, std::collections::HashMap<String, String>, Vec<u8>)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let headers: std::collections::HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut rest = &raw[split + 4..];
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        let mut out = Vec::new();
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            rest = &rest[nl + 2..];
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n + 2..];
        }
        out
    } else {
        rest.to_vec()
    };
    Ok((status, headers, body))
}

/// Spawns `stele serve` (`cmd`, with its arguments; stdout is taken here)
/// and reads the line saying where it listens: the child and that URL.
pub(crate) fn spawn_serve(cmd: &mut Command) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    let _ = std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("stele serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, url)
}
