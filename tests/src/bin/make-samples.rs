//! Writes sample exports for the verifier page, its browser tests and benches:
//! `make-samples DIR [--large-mb N] [--unique-mb N]`.
//!
//! DIR gets key.txt, valid.stele, xss.stele, rotated.stele (a log whose key
//! was rotated, verified with key.txt: the genesis key), tampered-*.stele
//! with .expect files (from the shared vectors), with --large-mb a large.stele of about N
//! megabytes (repetitive fields), and with --unique-mb a large-unique.stele
//! of about N megabytes shaped like a real audit log: a unique `target`
//! (resource path) and `request_id` per event, 5,000 actors, 40 actions.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use stele_tests::vectors::vectors;
use stele_tests::{event, sample_log};

const ORIGIN: &str = "example.com/stele-vectors";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: make-samples DIR [--large-mb N] [--unique-mb N]");
        return ExitCode::from(2);
    };
    let mb = |flag: &str| -> Option<u64> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|s| s.parse().ok())
    };
    let (large_mb, unique_mb) = (mb("--large-mb"), mb("--unique-mb"));
    if let Err(e) = run(&dir, large_mb).and_then(|()| match unique_mb {
        Some(n) => write_large(&dir.join("large-unique.stele"), n, unique_event),
        None => Ok(()),
    }) {
        eprintln!("make-samples: {e}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn run(dir: &std::path::Path, large_mb: Option<u64>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let log = sample_log(ORIGIN, 2_000, 100);
    std::fs::write(dir.join("key.txt"), format!("{}\n", log.key()))?;
    std::fs::write(dir.join("valid.stele"), log.export_log())?;

    // A valid, signed log whose events carry markup: the page must show it as text.
    let mut xss = stele_tests::TestLog::new(ORIGIN, 42);
    for (i, p) in [
        "<script>window.__xss=1</script>",
        "<img src=x onerror=\"window.__xss=2\">",
        "javascript:window.__xss=3",
        "<a href=\"javascript:window.__xss=4\">click</a>",
    ]
    .iter()
    .enumerate()
    {
        xss.append(json!({"actor": p, "action": p, "target": p, "outcome": p, "note": format!("payload {i}")}));
    }
    let _ = xss.checkpoint();
    std::fs::write(dir.join("xss.stele"), xss.export_log())?;

    // docs/FORMAT.md 15: the key replaced at entry 10, the old key co-signing
    // two checkpoints; key.txt (the genesis key) verifies it all.
    let new = stele_tests::rotation::new_signer();
    let rotated = stele_tests::rotation::rotated_log(300, 2, &[&new], |_| {});
    std::fs::write(dir.join("rotated.stele"), rotated.export_log())?;

    let mut n = 0;
    for v in vectors() {
        let Some((code, Some(entry))) = v.failures.first().copied() else {
            continue;
        };
        if v.verdict != "tampered" || v.ext != "stele" || v.trusted.is_some() {
            continue;
        }
        let name = format!("tampered-{}", v.name);
        std::fs::write(dir.join(format!("{name}.stele")), &v.data)?;
        std::fs::write(
            dir.join(format!("{name}.expect")),
            format!(
                "# {}\nverdict: tampered\ncode: {code}\nentry: {entry}\n",
                v.about
            ),
        )?;
        n += 1;
    }

    if let Some(mb) = large_mb {
        write_large(&dir.join("large.stele"), mb, event)?;
    }
    println!(
        "wrote samples to {} (valid.stele, xss.stele, rotated.stele, {n} tampered copies, key.txt)",
        dir.display()
    );
    Ok(())
}

// A large export of about `mb` megabytes of events from `make`, with a
// checkpoint every 10,000 entries; kept if it already exists at that size.
fn write_large(path: &std::path::Path, mb: u64, make: fn(u64) -> Value) -> std::io::Result<()> {
    let want = mb * 1_000_000;
    if std::fs::metadata(path)
        .map(|m| m.len() >= want)
        .unwrap_or(false)
    {
        println!("{} exists", path.display());
        return Ok(());
    }
    let mut big = stele_tests::TestLog::new(ORIGIN, 42);
    let mut bytes = 0u64;
    while bytes < want {
        let i = big.lines.len() as u64;
        big.append(make(i));
        bytes += big.lines.last().map_or(0, |l| l.len() as u64 + 1);
        if i.is_multiple_of(10_000) {
            let _ = big.checkpoint();
        }
    }
    let _ = big.checkpoint();
    std::fs::write(path, big.export_log())?;
    println!("wrote {} ({} entries)", path.display(), big.lines.len());
    Ok(())
}

// An event shaped like a real audit log's: the values a table must hold do
// not repeat (a unique resource path and request id per event), 5,000
// actors, 40 actions, a few outcomes. Deterministic in `i`.
fn unique_event(i: u64) -> Value {
    const VERBS: [&str; 8] = [
        "get", "list", "watch", "create", "update", "patch", "delete", "exec",
    ];
    const KINDS: [&str; 5] = ["pods", "secrets", "configmaps", "deployments", "services"];
    // A cheap mix so neighbours differ (splitmix64's finaliser).
    let mut x = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let kind = KINDS[(x % 5) as usize];
    json!({
        "actor": format!("user-{:04}@corp.example", (x >> 8) % 5_000),
        "action": format!("{}.{kind}", VERBS[((x >> 24) % 8) as usize]),
        "target": format!("namespaces/ns-{}/{kind}/{kind}-{i}-{:08x}", (x >> 32) % 300, x as u32),
        "outcome": match (x >> 40) % 20 { 0 => "denied", 1 => "failure", _ => "success" },
        "request_id": format!("{:016x}-{i:010}", x),
    })
}
