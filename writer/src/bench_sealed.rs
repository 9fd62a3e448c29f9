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

// CPU time of the whole process (every thread, live or ended), in seconds,
// from the process CPU clock (ns resolution, not /proc's 10 ms ticks).
fn process_cpu() -> Option<f64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Some(t.tv_sec as f64 + t.tv_nsec as f64 / 1e9)
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
    let _ = log.add_auditor(
        "age1uuamsuva572fa4a9fdvd0tj2fyf69gmv5aawa7qzlfy8w7288qgsvv8q4h",
        "bench",
    )?;
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
        "append, {entries} entries in batches of {batch} ({SUBJECTS} subjects with keys already made, one auditor), {rounds} rounds of three runs: unsealed, sealed with ring's AEAD, sealed with RustCrypto's (stele-seal)"
    );
    // Runs measured back to back, the order rotating: on a shared machine
    // the load changes between rounds, much less within one.
    let (mut ratios, mut ratios_rc, mut cpu_rc) = (Vec::new(), Vec::new(), Vec::new());
    // STELE_BENCH_SEALED_ONLY=ring: the sealed runs with ring's AEAD only
    // (for a profiler: `perf record` sees little else but the setup).
    let only_ring = std::env::var("STELE_BENCH_SEALED_ONLY").is_ok_and(|v| v == "ring");
    for round in 0..rounds.max(1) {
        let _ = std::fs::remove_dir_all(&tmp);
        // 0: unsealed, 1: sealed (ring), 2: sealed (RustCrypto).
        let one = |which: usize| {
            let (dir, cfg) = match which {
                0 => (tmp.join("plain"), SealConfig::default()),
                1 => (tmp.join("sealed-ring"), sealed_cfg.clone()),
                _ => (tmp.join("sealed-rustcrypto"), sealed_cfg.clone()),
            };
            stele_writer::sealed::bench_rustcrypto_aead(which == 2);
            let r = run_one(&dir, cfg, entries, batch);
            stele_writer::sealed::bench_rustcrypto_aead(false);
            r
        };
        let mut got = [(0.0, None); 3];
        for k in 0..3 {
            let which = (k + round as usize) % 3;
            if only_ring && which != 1 {
                continue;
            }
            got[which] = one(which)?;
        }
        let [(plain, plain_cpu), (ring, ring_cpu), (rc, rc_cpu)] = got;
        // CPU time an entry (all threads) tells where the time goes when
        // the throughputs swing with the machine's load.
        let cpu = |c: Option<f64>| c.map_or(String::new(), |c| format!(" ({c:.1} µs CPU)"));
        println!(
            "  round {}: unsealed {plain:>7.0}/s{}, sealed ring {ring:>7.0}/s{}, sealed RustCrypto {rc:>7.0}/s{}; ratio {:.2} (RustCrypto {:.2})",
            round + 1,
            cpu(plain_cpu),
            cpu(ring_cpu),
            cpu(rc_cpu),
            ring / plain,
            rc / plain
        );
        ratios.push(ring / plain);
        ratios_rc.push(rc / plain);
        if let (Some(r), Some(c)) = (ring_cpu, rc_cpu) {
            cpu_rc.push(c / r);
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "  ratio (median of the rounds) {:.2} (target >= 0.70); with RustCrypto's AEAD {:.2}",
        median(&mut ratios),
        median(&mut ratios_rc)
    );
    // The design's floor (stele_writer::sealed::bench_floor): what the
    // format mandates an entry, beside the CPU figures above.
    let (pooled, direct) = stele_writer::sealed::bench_floor(entries)?;
    println!(
        "  floor, what FORMAT 13 mandates for two sealed values (subject index lookup, 2 salts, 2 nonces, 2 commitments, 2 XChaCha20-Poly1305), one thread: {pooled:.2} µs CPU an entry (OS randomness read 4 KiB at a time), {direct:.2} µs (one getrandom call per salt and nonce)"
    );
    if !cpu_rc.is_empty() {
        println!(
            "  sealed CPU an entry, RustCrypto's AEAD / ring's (median of the rounds): {:.2}",
            median(&mut cpu_rc)
        );
    }
    Ok(())
}
