//! Writes sample exports for the verifier page, its browser tests and benches:
//! `make-samples DIR [--large-mb N]`.
//!
//! DIR gets key.txt, valid.stele, xss.stele, tampered-*.stele with .expect
//! files (from the shared vectors), and with --large-mb a large.stele of
//! about N megabytes.

use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use stele_tests::vectors::vectors;
use stele_tests::{event, sample_log};

const ORIGIN: &str = "example.com/stele-vectors";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: make-samples DIR [--large-mb N]");
        return ExitCode::from(2);
    };
    let large_mb: Option<u64> = args
        .iter()
        .position(|a| a == "--large-mb")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok());
    if let Err(e) = run(&dir, large_mb) {
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
    xss.checkpoint();
    std::fs::write(dir.join("xss.stele"), xss.export_log())?;

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
        let path = dir.join("large.stele");
        let want = mb * 1_000_000;
        if std::fs::metadata(&path)
            .map(|m| m.len() >= want)
            .unwrap_or(false)
        {
            println!("{} exists", path.display());
        } else {
            // ~250 bytes an entry: a checkpoint every 10,000 entries.
            let mut big = stele_tests::TestLog::new(ORIGIN, 42);
            let mut bytes = 0u64;
            while bytes < want {
                let i = big.lines.len() as u64;
                big.append(event(i));
                bytes += big.lines.last().map_or(0, |l| l.len() as u64 + 1);
                if i % 10_000 == 0 {
                    big.checkpoint();
                }
            }
            big.checkpoint();
            std::fs::write(&path, big.export_log())?;
            println!("wrote {} ({} entries)", path.display(), big.lines.len());
        }
    }
    println!(
        "wrote samples to {} (valid.stele, xss.stele, {n} tampered copies, key.txt)",
        dir.display()
    );
    Ok(())
}
