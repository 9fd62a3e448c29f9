//! `stele demo`: a live log is appended to in real time while each attack of
//! the attack matrix (tests/tests/attacks.rs) is applied to a copy of it, and
//! each copy is verified: a table shows the attack, whether it was detected,
//! the failure code, the entry, and the time until the verifier reported it.
//! The tampered copies are written next to the log for the browser verifier.

use clap::Args;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stele_core::entry::{ZERO_PREV, entry_line, genesis_event, parse_entry};
use stele_core::export::{self, ExportKind};
use stele_core::merkle::MemoryTree;
use stele_core::verify::{Options, StreamVerifier, Verdict};
use stele_core::{Checkpoint, SignedCheckpoint, SignerKey, leaf_hash};
use stele_writer::{Log, LogOptions, key};

const ORIGIN: &str = "demo.stele.example/audit";
/// The old entry the attacks aim at (covered by a checkpoint long before).
const TARGET: usize = 5;

/// Options of `stele demo`.
#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Where to build the live log and the tampered copies (default: a new
    /// temporary directory). Must be empty or absent.
    dir: Option<PathBuf>,
    /// How long to run, in seconds (at least 2).
    #[arg(long, default_value_t = 12)]
    seconds: u64,
    /// Events appended per second.
    #[arg(long, default_value_t = 50)]
    rate: u64,
}

/// An export split into its entry lines (without `\n`) and checkpoint notes.
#[derive(Clone)]
struct Snapshot {
    entries: Vec<String>,
    notes: Vec<(u64, String)>,
}

impl Snapshot {
    fn parse(text: &str) -> Self {
        let mut s = Self {
            entries: Vec::new(),
            notes: Vec::new(),
        };
        let mut lines = text.split_inclusive('\n').skip(1).peekable();
        while let Some(l) = lines.next() {
            if l == "checkpoint\n" {
                let mut note = String::new();
                for l in lines.by_ref() {
                    note.push_str(l);
                    if l == "\n" {
                        break;
                    }
                }
                while let Some(l) = lines.next_if(|l| l.starts_with("\u{2014} ")) {
                    note.push_str(l);
                }
                let size = SignedCheckpoint::parse(note.as_bytes())
                    .map_or(u64::MAX, |c| c.checkpoint.size);
                s.notes.push((size, note));
            } else {
                s.entries.push(l.trim_end_matches('\n').to_string());
            }
        }
        s
    }

    /// The whole-log export: each note right after the entry that completes it.
    fn export(&self) -> String {
        let mut out = export::header(ExportKind::Log);
        let mut notes = self.notes.clone();
        notes.sort_by_key(|n| n.0);
        let mut next = 0;
        let mut put = |out: &mut String, upto: u64| {
            while next < notes.len() && notes[next].0 <= upto {
                out.push_str(&export::checkpoint_record(&notes[next].1));
                next += 1;
            }
        };
        put(&mut out, 0);
        for (i, e) in self.entries.iter().enumerate() {
            out.push_str(e);
            out.push('\n');
            put(&mut out, i as u64 + 1);
        }
        put(&mut out, u64::MAX);
        out
    }

    fn with_entry(&self, i: usize, f: impl Fn(&str) -> String) -> String {
        let mut s = self.clone();
        s.entries[i] = f(&s.entries[i]);
        s.export()
    }

    fn last_size(&self) -> u64 {
        self.notes.iter().map(|n| n.0).max().unwrap_or(0)
    }
}

/// Rebuilds `events` as a chained log signed by `signer` every `every` entries.
fn rebuild(
    entries: &[String],
    genesis: Option<Value>,
    signer: &SignerKey,
    every: usize,
) -> Snapshot {
    let mut tree = MemoryTree::new();
    let mut s = Snapshot {
        entries: Vec::new(),
        notes: Vec::new(),
    };
    let mut prev = ZERO_PREV;
    for (i, line) in entries.iter().enumerate() {
        let p = parse_entry(line.as_bytes()).expect("entries of the live log parse");
        let ev: Value = match (&genesis, i) {
            (Some(g), 0) => g.clone(),
            _ => serde_json::from_str(p.event_json()).expect("event"),
        };
        let l = entry_line(i as u64, p.ts, &prev, &ev).expect("rebuilds");
        prev = leaf_hash(l.as_bytes());
        tree.push(prev);
        s.entries.push(l);
        if (i + 1).is_multiple_of(every) || i + 1 == entries.len() {
            let cp = Checkpoint {
                origin: ORIGIN.into(),
                size: i as u64 + 1,
                root: tree.root_at(i as u64 + 1).expect("size"),
                extensions: vec![],
            };
            s.notes.push((cp.size, cp.sign(signer).expect("signs")));
        }
    }
    s
}

struct Attack {
    name: &'static str,
    data: Vec<u8>,
    trusted: Option<Checkpoint>,
}

fn attacks(snap: &Snapshot, signer: &SignerKey, trusted: &Checkpoint) -> Vec<Attack> {
    let t = TARGET;
    let attacker = key::generate(ORIGIN).expect("a key");
    let mut out = Vec::new();
    let mut add = |name, data: String| {
        out.push(Attack {
            name,
            data: data.into_bytes(),
            trusted: None,
        })
    };
    add(
        "byte changed in an old event",
        snap.with_entry(t, |l| l.replacen("\"actor\":\"", "\"actor\":\"X", 1)),
    );
    add(
        "prev edited",
        snap.with_entry(t, |l| {
            let i = l.find("\"prev\":\"").expect("prev") + 8;
            let c = if &l[i..=i] == "0" { "1" } else { "0" };
            format!("{}{c}{}", &l[..i], &l[i + 1..])
        }),
    );
    add(
        "ts moved backwards",
        snap.with_entry(t, |l| {
            let i = l.find("\"ts\":\"").expect("ts") + 6;
            format!("{}2000-01-01T00:00:00.000000Z{}", &l[..i], &l[i + 27..])
        }),
    );
    add("entry deleted from the middle", {
        let mut s = snap.clone();
        let _ = s.entries.remove(t);
        s.export()
    });
    add("forged entry inserted, rest re-chained", {
        let mut entries = snap.entries.clone();
        entries.insert(
            t,
            entries[t].replacen("\"actor\":\"", "\"actor\":\"mallory-", 1),
        );
        let mut s = rebuild(&entries, None, signer, usize::MAX);
        s.notes = snap.notes.clone(); // no key: the signed checkpoints stay
        s.export()
    });
    add("two entries swapped", {
        let mut s = snap.clone();
        s.entries.swap(t, t + 1);
        s.export()
    });
    add("entry duplicated", {
        let mut s = snap.clone();
        s.entries.insert(t, s.entries[t].clone());
        s.export()
    });
    add("tail cut below the last checkpoint", {
        let mut s = snap.clone();
        s.entries.truncate(s.last_size() as usize - 3);
        s.export()
    });
    add("re-signed with an attacker's key", {
        let g = genesis_event(ORIGIN, &attacker.verifier().to_string());
        rebuild(&snap.entries, Some(g), &attacker, 10).export()
    });
    add("checkpoint signature removed", {
        let mut s = snap.clone();
        let last = s.notes.last_mut().expect("a checkpoint");
        last.1 = last.1.split("\n\n").next().expect("text").to_string() + "\n";
        s.export()
    });
    add("other key under the same name", {
        let mut s = snap.clone();
        for n in &mut s.notes {
            let cp = SignedCheckpoint::parse(n.1.as_bytes()).expect("parses");
            n.1 = cp.checkpoint.sign(&attacker).expect("signs");
        }
        s.export()
    });
    add("checkpoint of another origin", {
        let mut s = snap.clone();
        let cp = SignedCheckpoint::parse(s.notes[1].1.as_bytes()).expect("parses");
        let other = Checkpoint {
            origin: "demo.stele.example/other-log".into(),
            ..cp.checkpoint
        };
        s.notes
            .push((other.size, other.sign(signer).expect("signs")));
        s.export()
    });
    add("fork: key signs a second root", {
        let mut s = snap.clone();
        let cp = SignedCheckpoint::parse(s.notes[1].1.as_bytes()).expect("parses");
        let forged = Checkpoint {
            root: leaf_hash(b"another history"),
            ..cp.checkpoint
        };
        s.notes
            .push((forged.size, forged.sign(signer).expect("signs")));
        s.export()
    });
    add(
        "white space (non-canonical JSON)",
        snap.with_entry(t, |l| l.replacen("\":", "\": ", 1)),
    );
    add(
        "duplicate key",
        snap.with_entry(t, |l| {
            l.replacen("\"actor\":", "\"actor\":\"x\",\"actor\":", 1)
        }),
    );
    add(
        "byte order mark",
        snap.with_entry(t, |l| format!("\u{feff}{l}")),
    );
    add("CRLF line end", snap.with_entry(t, |l| format!("{l}\r")));
    add("trailing garbage", snap.export() + "garbage");
    add(
        "line over the size limit",
        snap.with_entry(t, |l| {
            l.replacen(
                "{\"event\":{",
                &format!("{{\"event\":{{\"a\":\"{}\",", "x".repeat(70_000)),
                1,
            )
        }),
    );
    out.push(Attack {
        name: "invalid UTF-8",
        data: {
            let mut b = snap.export().into_bytes();
            let line = snap.entries[t].as_bytes();
            let at = b
                .windows(line.len())
                .position(|w| w == line)
                .expect("entry");
            let q = line.iter().position(|&c| c == b'a').expect("a letter");
            b[at + q] = 0xff;
            b
        },
        trusted: None,
    });
    out.push(Attack {
        name: "rolled back (trusted checkpoint)",
        data: {
            let mut s = snap.clone();
            let back = s
                .notes
                .iter()
                .map(|n| n.0)
                .filter(|&n| n < trusted.size)
                .max()
                .unwrap_or(1);
            s.entries.truncate(back as usize);
            s.notes.retain(|n| n.0 <= back);
            s.export().into_bytes()
        },
        trusted: Some(trusted.clone()),
    });
    out
}

struct Row {
    detected: bool,
    code: String,
    entry: String,
    micros: u128,
}

/// Verifies in 4 KiB pieces and notes when the first failure appeared.
fn check(data: &[u8], opts: Options) -> Row {
    let start = Instant::now();
    let mut v = StreamVerifier::new(opts);
    let mut first = None;
    for chunk in data.chunks(4096) {
        v.push(chunk);
        if first.is_none() && v.failures_so_far() > 0 {
            first = Some(start.elapsed());
        }
    }
    let r = v.finish();
    let micros = first.unwrap_or_else(|| start.elapsed()).as_micros();
    // The failure that names the attack: a fork or rollback first, else the first one.
    let lead = r
        .failures
        .iter()
        .find(|f| f.code == "fork" || f.code == "rollback")
        .or(r.failures.first());
    let notice = r
        .notices
        .iter()
        .find(|n| n.code == "key_mismatch" || n.code == "untrusted_signature")
        .or(r.notices.first());
    let (code, entry) = match (lead, r.verdict) {
        (Some(f), _) => (
            f.code.to_string(),
            f.entry.map_or("-".into(), |e| e.to_string()),
        ),
        (None, Verdict::Unverified) => (
            format!(
                "unverified: {}",
                notice.map_or("no_trusted_checkpoint", |n| n.code.as_str())
            ),
            "-".into(),
        ),
        (None, _) => ("-".into(), "-".into()),
    };
    Row {
        detected: r.verdict != Verdict::Verified,
        code,
        entry,
        micros,
    }
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn snapshot(log: &Log) -> Result<String, String> {
    let mut buf = Vec::new();
    log.view()
        .export_log(&mut buf, &mut |_| {})
        .map_err(|e| e.to_string())?;
    String::from_utf8(buf).map_err(|e| e.to_string())
}

/// Runs the demo; returns the exit status (0 when every attack was detected).
pub(crate) fn run(args: DemoArgs) -> Result<u8, String> {
    let root = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!(
            "stele-demo-{}-{}",
            std::process::id(),
            stele_writer::log::system_micros()
        )),
    };
    if root.exists()
        && std::fs::read_dir(&root)
            .map_err(|e| e.to_string())?
            .next()
            .is_some()
    {
        return Err(format!(
            "{} is not empty; give an empty or new directory",
            root.display()
        ));
    }
    let seconds = args.seconds.max(2);
    let log_dir = root.join("log");
    let signer = key::generate(ORIGIN).map_err(|e| e.to_string())?;
    let opts = LogOptions {
        checkpoint_every: Some(10),
        checkpoint_interval: Some(Duration::from_millis(500)),
        background_checkpoints: true,
        ..LogOptions::default()
    };
    let log = Arc::new(
        Log::create_with(&log_dir, ORIGIN, &signer, None, opts).map_err(|e| e.to_string())?,
    );
    let vkey = log.verifier();
    println!("stele demo: a live log in {}", log_dir.display());
    println!("verifier key: {vkey}");
    println!(
        "appending {} events a second for {seconds} s; attacking copies of entry {TARGET} and others meanwhile\n",
        args.rate
    );

    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(0));
    let appender = {
        let (log, stop, appended) = (log.clone(), stop.clone(), appended.clone());
        let gap = Duration::from_micros(1_000_000 / args.rate.max(1));
        std::thread::spawn(move || -> Result<(), String> {
            let actors = ["alice", "bob", "carol", "deploy-bot"];
            let actions = ["login", "read", "update", "delete", "export"];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let ev = json!({
                    "type": "access",
                    "actor": actors[(n % 4) as usize],
                    "action": actions[(n % 5) as usize],
                    "target": format!("records/{}", n * 7 % 1000),
                    "outcome": if n.is_multiple_of(9) { "denied" } else { "success" },
                    "n": n,
                });
                let _ = log.append(ev).map_err(|e| e.to_string())?;
                let _ = appended.fetch_add(1, Ordering::Relaxed);
                n += 1;
                std::thread::sleep(gap);
            }
            Ok(())
        })
    };

    // Wait for a few checkpoints past the target entry; the monitor keeps the
    // latest one as its trusted checkpoint.
    let start = Instant::now();
    while log.view().checkpoints().len() < 3 || log.size() < (TARGET as u64 + 12) {
        if start.elapsed() > Duration::from_secs(seconds) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let trusted = log
        .view()
        .latest_checkpoint()
        .ok_or("no checkpoint was signed")?
        .checkpoint
        .clone();
    let snap0 = Snapshot::parse(&snapshot(&log)?);
    let list = attacks(&snap0, &signer, &trusted);
    let n = list.len() as u32;
    let spare = Duration::from_secs(seconds).saturating_sub(start.elapsed());
    let pause = spare / (n + 1);
    let tampered_dir = root.join("tampered");
    std::fs::create_dir_all(&tampered_dir).map_err(|e| e.to_string())?;
    println!(
        "{:<40} {:<8} {:<34} {:>6} {:>14} {:>9}",
        "attack", "detected", "failure code", "entry", "time to detect", "log size"
    );
    let mut missed = 0;
    let mut first_file = None;
    for (k, a) in (1..).zip(list.iter().map(|a| a.name)) {
        std::thread::sleep(pause);
        // Attack a fresh copy of the live log as it is now.
        let snap = Snapshot::parse(&snapshot(&log)?);
        let attack = attacks(&snap, &signer, &trusted)
            .into_iter()
            .find(|x| x.name == a)
            .expect("same attacks");
        let mut opts = Options::new(vec![vkey.clone()]);
        opts.trusted = attack.trusted.clone();
        let row = check(&attack.data, opts);
        missed += usize::from(!row.detected);
        let file = tampered_dir.join(format!("{k:02}-{}.stele", slug(a)));
        std::fs::write(&file, &attack.data).map_err(|e| e.to_string())?;
        let _ = first_file.get_or_insert(file);
        println!(
            "{:<40} {:<8} {:<34} {:>6} {:>11} µs {:>9}",
            a,
            if row.detected { "yes" } else { "NO" },
            row.code,
            row.entry,
            row.micros,
            snap.entries.len()
        );
    }
    std::fs::write(tampered_dir.join("trusted-checkpoint"), {
        let v = log.view();
        v.checkpoint_at(trusted.size)
            .map(|c| c.note.clone())
            .unwrap_or_default()
    })
    .map_err(|e| e.to_string())?;
    std::fs::write(root.join("key.txt"), format!("{vkey}\n")).map_err(|e| e.to_string())?;
    stop.store(true, Ordering::Relaxed);
    appender.join().map_err(|_| "the appender panicked")??;
    let _ = log.checkpoint().map_err(|e| e.to_string())?;
    let mut live = Vec::new();
    log.view()
        .export_log(&mut live, &mut |_| {})
        .map_err(|e| e.to_string())?;
    let live_report = stele_core::verify::verify_bytes(Options::new(vec![vkey.clone()]), &live);
    let live_path = root.join("live.stele");
    std::fs::write(&live_path, &live).map_err(|e| e.to_string())?;
    println!(
        "\nthe live log: {} entries appended during the demo, {} in all, verdict {}",
        appended.load(Ordering::Relaxed),
        live_report.entries,
        serde_json::to_value(live_report.verdict).map_err(|e| e.to_string())?
    );
    println!("{} of {} attacks detected", list.len() - missed, list.len());
    println!(
        "\nSee the same in the browser: serve the verifier page with `bash scripts/demo.sh`, open"
    );
    println!("  http://127.0.0.1:8080/");
    println!("pin the key {vkey}");
    if let Some(f) = first_file {
        println!("and drop this tampered copy on the page: {}", f.display());
    }
    println!(
        "(all tampered copies: {}; the untouched log: {})",
        tampered_dir.display(),
        live_path.display()
    );
    let ok = missed == 0 && live_report.verdict == Verdict::Verified;
    Ok(u8::from(!ok))
}
