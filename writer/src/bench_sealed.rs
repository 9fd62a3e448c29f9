//! `stele bench sealed`: durable append throughput of events with two sealed
//! fields (docs/FORMAT.md section 13) against the same events unsealed, in
//! one run, on two fresh logs in the same directory. The target is a
//! ratio of at least 0.7.

use serde_json::{Value, json};
use std::time::Instant;
use stele_writer::sealed::SealConfig;
use stele_writer::{Log, LogOptions, Result, key};

const SUBJECTS: u64 = 1000;

fn event(i: u64) -> Value {
    json!({
        "action": "login",
        "actor": {"email": format!("user{}@example.com", i % SUBJECTS), "id": format!("u{}", i % SUBJECTS)},
        "ip": format!("192.0.2.{}", i % 250),
        "outcome": "success",
        "target": format!("doc/{}", i % 5000),
    })
}

// CPU time of the whole process (every thread, live or ended), in seconds:
// /proc/self/stat's utime + stime, in Linux's USER_HZ ticks (100 a second).
// None where there is no /proc.
fn process_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ').skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

// One run: (entries a second, CPU µs an entry if known).
fn run_one(
    dir: &std::path::Path,
    seal: SealConfig,
    entries: u64,
    batch: u64,
) -> Result<(f64, Option<f64>)> {
    let signer = key::generate("bench.example/sealed")?;
    let opts = LogOptions {
        checkpoint_every: None,
        checkpoint_interval: None,
        seal,
        ..LogOptions::default()
    };
    let log = Log::create_with(dir, "bench.example/sealed", &signer, None, opts)?;
    let _ = log.add_auditor("age1uuamsuva572fa4a9fdvd0tj2fyf69gmv5aawa7qzlfy8w7288qgsvv8q4h")?;
    // Every subject's data key exists before the clock starts (made on first
    // use: a key file and one wrap per auditor, each fsync'ed): this measures
    // the steady state; the first event of a new subject costs those fsyncs.
    let _ = log.append_batch((0..SUBJECTS).map(event).collect())?;
    let batches: Vec<Vec<Value>> = (0..entries.div_ceil(batch))
        .map(|b| {
            (b * batch..((b + 1) * batch).min(entries))
                .map(event)
                .collect()
        })
        .collect();
    let cpu = process_cpu();
    let t = Instant::now();
    for b in batches {
        let _ = log.append_batch(b)?;
    }
    let rate = entries as f64 / t.elapsed().as_secs_f64();
    let cpu = cpu
        .zip(process_cpu())
        .map(|(a, b)| (b - a) * 1e6 / entries as f64);
    Ok((rate, cpu))
}

pub(crate) fn run(entries: u64, batch: u64, rounds: u32) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!("stele-bench-sealed-{}", std::process::id()));
    let sealed_cfg = SealConfig {
        seal: vec!["/actor/email".into(), "/ip".into()],
        subject: "/actor".into(),
    };
    println!(
        "append, {entries} entries in batches of {batch} ({SUBJECTS} subjects with keys already made, one auditor), {rounds} pairs of runs"
    );
    // Pairs measured back to back, the order alternating: on a shared
    // machine the load changes between runs, much less within a pair.
    let mut ratios = Vec::new();
    for round in 0..rounds.max(1) {
        let _ = std::fs::remove_dir_all(&tmp);
        let one = |sealed: bool| {
            let (dir, cfg) = if sealed {
                (tmp.join("sealed"), sealed_cfg.clone())
            } else {
                (tmp.join("plain"), SealConfig::default())
            };
            run_one(&dir, cfg, entries, batch)
        };
        let (plain, sealed) = if round % 2 == 0 {
            let p = one(false)?;
            (p, one(true)?)
        } else {
            let s = one(true)?;
            (one(false)?, s)
        };
        let ((plain, plain_cpu), (sealed, sealed_cpu)) = (plain, sealed);
        // CPU time an entry (all threads) tells where the time goes when
        // the throughputs swing with the machine's load.
        let cpu = |c: Option<f64>| c.map_or(String::new(), |c| format!(" ({c:.1} µs CPU)"));
        println!(
            "  pair {}: unsealed {plain:>9.0} entries/s{}, two sealed fields {sealed:>9.0} entries/s{}, ratio {:.2}",
            round + 1,
            cpu(plain_cpu),
            cpu(sealed_cpu),
            sealed / plain
        );
        ratios.push(sealed / plain);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    ratios.sort_by(f64::total_cmp);
    println!(
        "  ratio (median of the pairs) {:.2} (target >= 0.70)",
        ratios[ratios.len() / 2]
    );
    Ok(())
}
