//! Crash and fault tests for the writer (issue 6).
//!
//! * **kill -9 loop.** Each round starts a writer in a child process under
//!   load and kills it (SIGKILL) at a random moment: either `stele append`
//!   fed events on stdin, or this test binary re-run as a library child whose
//!   four threads append concurrently (group commit). The parent records every
//!   receipt the child printed, reopens the log (recovery), and checks the bar:
//!   no acknowledged entry is lost (same seq, same leaf hash, same event), no
//!   event is written twice, and the log verifies after recovery, including a
//!   new checkpoint over everything. 200 rounds by default (a fresh log every
//!   20); `STELE_CRASH_ROUNDS=10000` runs more. SIGKILL ends the process, not
//!   the machine: data the kernel accepted survives it, so this tests the
//!   writer's ordering and recovery, not the disk's (the fault tests below
//!   cover failed writes and syncs).
//! * **Torn tail.** The entries file is cut at every byte offset inside its
//!   last three entries (after the last checkpoint), or that tail is
//!   overwritten with zeros or garbage: opening always recovers a verifying
//!   prefix that keeps every entry the last checkpoint covers, and exactly
//!   the complete lines before the damage. Damage inside checkpoint-covered
//!   entries is refused, not repaired.
//! * **I/O faults.** A scripted workload (create, batches, single appends,
//!   checkpoints) runs on `FaultFs`, failing the Nth write, fdatasync,
//!   truncate or rename, for every N the workload reaches, "failed, not
//!   persisted", "failed, but persisted" and (writes) "partially written":
//!   nothing acknowledged is lost, the log verifies after reopening, a failed
//!   entries or checkpoints fdatasync poisons the writer until reopened, and a
//!   failed entries write leaves none of that call's entries in the file.

mod common;

use common::FAULT_CASES;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stele_core::verify::{Options, Verdict};
use stele_core::{Hash, VerifierKey};
use stele_writer::fs::{FileRole, Fs};
use stele_writer::testing::{FaultFs, Op};
use stele_writer::{Error, Log, LogOptions, key};

const ORIGIN: &str = "example.com/crash";
const CHILD_DIR: &str = "STELE_CRASH_CHILD_DIR";
const CHILD_BASE: &str = "STELE_CRASH_CHILD_BASE";

// The kit's xorshift64*, seeded per round so failures are reproducible.
use stele_tests::kit::Rng;

fn quiet_opts() -> LogOptions {
    LogOptions {
        checkpoint_every: None,
        checkpoint_interval: None,
        ..LogOptions::default()
    }
}

/// `Log::open`, waiting out `Locked`: the kill loop spawns processes while
/// other tests run, and a child holds a copy of every open descriptor
/// between fork and exec, which keeps a just-dropped log's flock alive for a
/// moment (close-on-exec closes it at exec).
fn open(dir: &Path) -> stele_writer::Result<Log> {
    let start = Instant::now();
    loop {
        match Log::open(dir) {
            Err(Error::Locked { .. }) if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

fn verify(dir: &Path, vk: &VerifierKey) -> stele_core::Report {
    stele_writer::verify_dir(dir, Options::new(vec![vk.clone()]), &mut |_, _| {}).unwrap()
}

/// Reopens (recovery), checks every receipt, signs a checkpoint over
/// everything and verifies. Returns the number of entries.
fn reopen_and_check(dir: &Path, vk: &VerifierKey, acked: &BTreeMap<u64, (Hash, u64)>) -> u64 {
    let log = open(dir).unwrap_or_else(|e| panic!("reopen after a crash: {e}"));
    let view = log.view();
    let mut ids = BTreeSet::new();
    for i in 1..view.size() {
        let e: Value = serde_json::from_slice(&view.entry(i).unwrap()).unwrap();
        if let Some(id) = e["event"]["id"].as_u64() {
            assert!(ids.insert(id), "event {id} written twice (entry {i})");
        }
    }
    for (&seq, &(hash, id)) in acked {
        assert!(
            seq < view.size(),
            "acknowledged entry {seq} lost: the log has {} entries",
            view.size()
        );
        assert_eq!(view.leaf_hash(seq).unwrap(), hash, "entry {seq} changed");
        let e: Value = serde_json::from_slice(&view.entry(seq).unwrap()).unwrap();
        assert_eq!(e["event"]["id"], id, "entry {seq} is another event");
    }
    drop(view);
    let _ = log.checkpoint().unwrap();
    let size = log.size();
    drop(log);
    let r = verify(dir, vk);
    assert_eq!(
        r.verdict,
        Verdict::Verified,
        "after recovery: {:#?}",
        r.failures
    );
    assert_eq!(
        r.tree_size,
        Some(size),
        "the new checkpoint covers everything"
    );
    size
}

/// The library child: four threads append until killed; each receipt is
/// printed as `R seq leaf_hash id` after `append` returned.
#[test]
fn crash_child_process() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return; // only runs when re-executed by the kill loop
    };
    let base: u64 = std::env::var(CHILD_BASE).unwrap().parse().unwrap();
    let opts = LogOptions {
        checkpoint_every: Some(7),
        // Move the check mark often, so kills land in mark writes and
        // reopens start from marks.
        check_mark_bytes: 4096,
        ..quiet_opts()
    };
    let log = Arc::new(Log::open_with(Path::new(&dir), opts).unwrap());
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (log, out) = (log.clone(), out.clone());
            std::thread::spawn(move || {
                for i in 0..100_000u64 {
                    let id = base + t * 100_000 + i;
                    let events: Vec<Value> = (0..=(i % 3))
                        .map(|k| json!({"id": id * 4 + k, "load": "x".repeat((i % 5 * 40) as usize)}))
                        .collect();
                    let rs = log.append_batch(events).unwrap();
                    let mut o = out.lock().unwrap();
                    for (k, r) in rs.iter().enumerate() {
                        writeln!(o, "R {} {} {}", r.seq, r.leaf_hash.to_base64(), id * 4 + k as u64)
                            .unwrap();
                    }
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// One round against the library child; returns the receipts.
fn library_round(dir: &Path, base: u64, rng: &mut Rng) -> BTreeMap<u64, (Hash, u64)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_BASE, base.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = BTreeMap::new();
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        // A line cut by the kill (no '\n') is not a receipt.
        while r.read_line(&mut line).is_ok_and(|n| n > 0) && line.ends_with('\n') {
            let l = std::mem::take(&mut line);
            let f: Vec<&str> = l.trim_end().split(' ').collect();
            if f.len() == 4 && f[0] == "R" {
                let seq: u64 = f[1].parse().unwrap();
                let hash = Hash::from_base64(f[2]).unwrap();
                let twice = acked.insert(seq, (hash, f[3].parse().unwrap()));
                assert!(twice.is_none(), "entry {seq} was acknowledged twice");
            }
        }
        acked
    });
    std::thread::sleep(Duration::from_micros(rng.below(60_000)));
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait().unwrap();
    reader.join().unwrap()
}

/// One round against `stele append` fed on stdin; returns the receipts.
fn cli_round(dir: &Path, base: u64, rng: &mut Rng) -> BTreeMap<u64, (Hash, u64)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stele"))
        .args(["append", dir.to_str().unwrap(), "--checkpoint-every", "5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let (stop2, sent2) = (stop.clone(), sent.clone());
    let burst = 1 + rng.below(8);
    let feeder = std::thread::spawn(move || {
        let mut id = base;
        while !stop2.load(Ordering::Relaxed) {
            let mut chunk = String::new();
            for _ in 0..burst {
                chunk.push_str(&format!("{{\"id\":{id},\"via\":\"cli\"}}\n"));
                sent2.lock().unwrap().push(id);
                id += 1;
            }
            if stdin.write_all(chunk.as_bytes()).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    let reader = std::thread::spawn(move || {
        let mut receipts = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                receipts.push(v);
            }
        }
        receipts
    });
    std::thread::sleep(Duration::from_micros(rng.below(80_000)));
    child.kill().unwrap();
    let _ = child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    let receipts = reader.join().unwrap();
    // `stele append` appends stdin lines in order: the k-th receipt is the k-th line sent.
    let sent = sent.lock().unwrap();
    receipts
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let seq = r["seq"].as_u64().unwrap();
            let hash = Hash::from_base64(r["leaf_hash"].as_str().unwrap()).unwrap();
            (seq, (hash, sent[k]))
        })
        .collect()
}

#[test]
fn kill_9_loop_never_loses_an_acknowledged_entry() {
    let rounds: u64 = std::env::var("STELE_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let tmp = tempfile::tempdir().unwrap();
    let signer = key::generate(ORIGIN).unwrap();
    let vk = signer.verifier();
    let mut rng = Rng(0x5eed_0000_0000_0001);
    let (mut dir, mut recovered) = (PathBuf::new(), 0usize);
    let mut acked_total = [0usize; 2];
    let started = Instant::now();
    for round in 0..rounds {
        if round % 20 == 0 {
            dir = tmp.path().join(format!("log-{round}"));
            drop(Log::create_with(&dir, ORIGIN, &signer, None, quiet_opts()).unwrap());
        }
        let base = (round + 1) * 10_000_000;
        let acked = if round % 2 == 0 {
            cli_round(&dir, base, &mut rng)
        } else {
            library_round(&dir, base, &mut rng)
        };
        acked_total[(round % 2) as usize] += acked.len();
        let _ = reopen_and_check(&dir, &vk, &acked);
        let types = common::event_types(dir.to_str().unwrap());
        recovered += types.iter().filter(|t| *t == "stele.recovery").count();
    }
    println!(
        "kill -9 loop: {rounds} rounds, acknowledged entries checked: {} from `stele append`, {} from the library child; {recovered} recoveries from a torn tail; {:.1?}",
        acked_total[0],
        acked_total[1],
        started.elapsed()
    );
    if rounds >= 20 {
        assert!(
            acked_total.iter().all(|&n| n > 0),
            "a child never acknowledged anything: {acked_total:?}"
        );
    }
}

/// Builds a log of 11 entries with a checkpoint at 8; returns (dir, key, entries bytes, line ends).
fn torn_fixture(tmp: &Path) -> (PathBuf, VerifierKey, Vec<u8>, Vec<usize>) {
    let dir = tmp.join("orig");
    let signer = key::generate(ORIGIN).unwrap();
    let log = Log::create_with(&dir, ORIGIN, &signer, None, quiet_opts()).unwrap();
    for i in 1..8 {
        let _ = log.append(json!({"id": i, "what": "signed"})).unwrap();
    }
    let _ = log.checkpoint().unwrap();
    for i in 8..11 {
        let _ = log
            .append(json!({"id": i, "what": "tail", "pad": "p".repeat(i * 3)}))
            .unwrap();
    }
    let vk = log.verifier();
    drop(log);
    let bytes = std::fs::read(dir.join("entries.jsonl")).unwrap();
    let ends: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(ends.len(), 11);
    (dir, vk, bytes, ends)
}

fn copy_with_entries(from: &Path, to: &Path, entries: &[u8]) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "lock" {
            let _ = std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    std::fs::write(to.join("entries.jsonl"), entries).unwrap();
}

#[test]
fn torn_tail_at_every_offset_of_the_last_three_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let (orig, vk, bytes, ends) = torn_fixture(tmp.path());
    let start = ends[7]; // entries 8, 9, 10 are after the checkpoint of size 8
    let work = tmp.path().join("work");
    let mut rng = Rng(42);
    let mut cases = 0;
    for cut in start..bytes.len() {
        for mode in ["cut", "zeros", "garbage"] {
            let mut damaged = bytes[..cut].to_vec();
            match mode {
                "zeros" => damaged.resize(bytes.len(), 0),
                "garbage" => damaged.extend((cut..bytes.len()).map(|_| rng.next_u64() as u8)),
                _ => {}
            }
            copy_with_entries(&orig, &work, &damaged);
            let log = open(&work).unwrap_or_else(|e| panic!("{mode} at {cut}: open failed: {e}"));
            // Exactly the complete lines before the damage are kept.
            let keep = ends.iter().filter(|&&e| e <= cut).count() as u64;
            let view = log.view();
            let damaged_tail = damaged.len() > ends[keep as usize - 1];
            let recovery = u64::from(damaged_tail);
            assert_eq!(view.size(), keep + recovery, "{mode} at {cut}");
            for i in 0..keep {
                let start = if i == 0 { 0 } else { ends[i as usize - 1] };
                assert_eq!(
                    view.entry(i).unwrap(),
                    &bytes[start..ends[i as usize] - 1],
                    "{mode} at {cut}: entry {i}"
                );
            }
            if damaged_tail {
                let e: Value = serde_json::from_slice(&view.entry(keep).unwrap()).unwrap();
                assert_eq!(e["event"]["type"], "stele.recovery", "{mode} at {cut}");
                assert_eq!(
                    log.recovery().unwrap().offset,
                    ends[keep as usize - 1] as u64
                );
            } else {
                assert!(log.recovery().is_none());
            }
            drop(view);
            drop(log);
            let r = verify(&work, &vk);
            // Entries kept after the checkpoint of size 8 are an unsigned tail.
            let want = if r.entries > 8 {
                Verdict::Partial
            } else {
                Verdict::Verified
            };
            assert_eq!(r.verdict, want, "{mode} at {cut}: {:#?}", r.failures);
            assert_eq!(
                r.tree_size,
                Some(8),
                "the checkpoint of size 8 still verifies"
            );
            cases += 1;
        }
    }
    println!("torn tail: {cases} damaged copies recovered and verified");
}

#[test]
fn damage_inside_signed_entries_is_refused_not_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let (orig, _, bytes, ends) = torn_fixture(tmp.path());
    let work = tmp.path().join("work");
    // Cut anywhere inside entry 6 (covered by the checkpoint of size 8).
    for cut in ends[5]..ends[6] {
        copy_with_entries(&orig, &work, &bytes[..cut]);
        let e = open(&work).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { .. } | Error::CheckpointMismatch { .. }),
            "cut at {cut}: {e}"
        );
        assert_eq!(
            std::fs::read(work.join("entries.jsonl")).unwrap(),
            &bytes[..cut],
            "the refused log was changed"
        );
    }
    // Zeros over entry 6 and everything after it: refused too.
    let mut z = bytes.clone();
    z[ends[5]..].fill(0);
    copy_with_entries(&orig, &work, &z);
    assert!(open(&work).is_err());
}

/// Counts operations by kind, passing everything to a `FaultFs`.
#[derive(Debug, Default)]
struct CountingFs {
    inner: FaultFs,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl CountingFs {
    fn count(&self, op: &'static str) {
        *self.counts.lock().unwrap().entry(op).or_default() += 1;
    }
}

impl Fs for CountingFs {
    fn write_at(
        &self,
        role: FileRole,
        f: &std::fs::File,
        buf: &[u8],
        off: u64,
    ) -> std::io::Result<()> {
        self.count("write");
        self.inner.write_at(role, f, buf, off)
    }
    fn sync_data(&self, role: FileRole, f: &std::fs::File) -> std::io::Result<()> {
        self.count("sync");
        self.inner.sync_data(role, f)
    }
    fn set_len(&self, role: FileRole, f: &std::fs::File, len: u64) -> std::io::Result<()> {
        self.count("truncate");
        self.inner.set_len(role, f, len)
    }
    fn rename(&self, role: FileRole, from: &Path, to: &Path) -> std::io::Result<()> {
        self.count("rename");
        self.inner.rename(role, from, to)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.count("sync");
        self.inner.sync_dir(dir)
    }
}

#[derive(Debug, Default)]
struct Outcome {
    created: bool,
    acked: BTreeMap<u64, (Hash, u64)>,
    /// Ids whose entries write failed on the entries file (must be absent).
    failed_write: Vec<u64>,
}

/// The scripted workload: create, then 6 rounds of a batch of 3 and a
/// single append, a checkpoint every other round. Keeps going after errors
/// and checks poisoning as it goes.
fn workload(dir: &Path, signer: &stele_core::SignerKey, fs: Arc<CountingFs>) -> Outcome {
    let opts = LogOptions {
        fs: fs.clone(),
        ..quiet_opts()
    };
    let mut out = Outcome::default();
    let Ok(log) = Log::create_with(dir, ORIGIN, signer, None, opts) else {
        return out;
    };
    out.created = true;
    let mut poisoned = false;
    let mut id = 0u64;
    let fired = |fs: &CountingFs| fs.inner.fired().len();
    for round in 0..6 {
        let calls: Vec<Vec<Value>> = vec![
            (0..3)
                .map(|k| json!({"id": id + k, "round": round}))
                .collect(),
            vec![json!({"id": id + 3, "round": round, "single": true})],
        ];
        for events in calls {
            let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
            let before = fired(&fs);
            let r = log.append_batch(events);
            let fault = fs.inner.fired().get(before).copied();
            match r {
                Ok(rs) => {
                    assert!(!poisoned, "an append succeeded on a poisoned writer");
                    for (r, id) in rs.iter().zip(&ids) {
                        let twice = out.acked.insert(r.seq, (r.leaf_hash, *id));
                        assert!(twice.is_none(), "entry {} was acknowledged twice", r.seq);
                    }
                }
                Err(e) => {
                    if poisoned {
                        assert!(matches!(e, Error::Poisoned { .. }), "{e}");
                    }
                    if let Some((Op::Write, FileRole::Entries, _)) = fault {
                        out.failed_write.extend(&ids);
                    }
                }
            }
            if let Some((Op::Sync, FileRole::Entries | FileRole::Checkpoints, _)) = fault {
                poisoned = true;
            }
        }
        id += 4;
        if round % 2 == 1 {
            let before = fired(&fs);
            let r = log.checkpoint();
            let fault = fs.inner.fired().get(before).copied();
            if poisoned {
                assert!(matches!(r, Err(Error::Poisoned { .. })), "{r:?}");
            }
            if let Some((Op::Sync, FileRole::Entries | FileRole::Checkpoints, _)) = fault {
                assert!(
                    r.is_err(),
                    "a checkpoint whose fdatasync failed was returned"
                );
                poisoned = true;
            }
        }
    }
    if poisoned {
        assert!(matches!(
            log.append(json!({"after": "poison"})),
            Err(Error::Poisoned { .. })
        ));
    }
    out
}

#[test]
fn every_nth_write_sync_truncate_and_rename_fails() {
    let signer = key::generate(ORIGIN).unwrap();
    let vk = signer.verifier();
    // A dry run counts the operations the workload reaches.
    let tmp = tempfile::tempdir().unwrap();
    let fs = Arc::new(CountingFs::default());
    let dry = workload(&tmp.path().join("dry"), &signer, fs.clone());
    assert!(dry.created && dry.acked.len() == 24);
    let counts = fs.counts.lock().unwrap().clone();
    let mut runs = 0;
    for (op, name, modes) in FAULT_CASES {
        let total = counts.get(name).copied().unwrap_or(0);
        for &mode in modes {
            for n in 1..=total + 1 {
                let case = format!("{name} #{n} {mode:?}");
                let dir = tmp.path().join(format!("{name}-{n}-{mode:?}"));
                let fs = Arc::new(CountingFs::default());
                fs.inner.fail_nth(op, None, n, mode);
                let out = workload(&dir, &signer, fs.clone());
                runs += 1;
                if !out.created {
                    // Nothing was acknowledged; the directory is either not a
                    // log or a log that opens and verifies.
                    if let Ok(log) = open(&dir) {
                        drop(log);
                        let _ = reopen_and_check(&dir, &vk, &BTreeMap::new());
                    }
                    continue;
                }
                let _ = reopen_and_check(&dir, &vk, &out.acked);
                let log = open(&dir).unwrap();
                let view = log.view();
                for i in 1..view.size() {
                    let e: Value = serde_json::from_slice(&view.entry(i).unwrap()).unwrap();
                    if let Some(id) = e["event"]["id"].as_u64() {
                        assert!(
                            !out.failed_write.contains(&id),
                            "{case}: event {id} whose write failed is in the log"
                        );
                    }
                }
            }
        }
    }
    println!("fault injection: {runs} runs, operations per workload: {counts:?}");
}
