//! `stele bench witness`: checkpoint latency of a log whose checkpoints three
//! local witnesses (`stele witness`, C2SP tlog-witness on loopback) cosign
//! under a 2-of-3 policy, beside the same log without witnesses, both while
//! another thread keeps appending. Each round appends a batch and then
//! times `checkpoint()` (sign, ask the witnesses, store).

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use stele_core::witness::Policy;
use stele_writer::serve::witness::{WitnessConfig, WitnessServer};
use stele_writer::witness::{ClientOptions, PolicyCosigner, Witness};
use stele_writer::{Log, LogOptions, Result, key};

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

// Times `rounds` checkpoints of each log, alternating between them so both
// see the same machine load, each after a batch of `batch` entries, with one
// more thread per log appending single entries all along; the latencies in
// ms, per log.
// Per log: the checkpoint latencies (ms), and the latencies of the other
// thread's appends meanwhile (ms).
type Latencies = (Vec<Vec<f64>>, Vec<Vec<f64>>);

fn rounds(logs: &[Arc<Log>], rounds: u64, batch: u64) -> Result<Latencies> {
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = logs
        .iter()
        .map(|l| {
            let (l2, s2) = (l.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                let mut ms = Vec::new();
                while !s2.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let _ = l2.append(json!({"action": "load", "i": i}));
                    ms.push(t.elapsed().as_secs_f64() * 1e3);
                    i += 1;
                }
                ms
            })
        })
        .collect();
    let mut out = vec![Vec::new(); logs.len()];
    for r in 0..rounds {
        for (log, ms) in logs.iter().zip(&mut out) {
            let _ = log.append_batch(
                (0..batch)
                    .map(|i| json!({"action": "round", "r": r, "i": i}))
                    .collect(),
            )?;
            let t = Instant::now();
            let _ = log.checkpoint()?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let appends = loads
        .into_iter()
        .map(|l| l.join().unwrap_or_default())
        .collect();
    Ok((out, appends))
}

pub(crate) fn run(n: u64, batch: u64) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!("stele-bench-witness-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let signer = key::generate("bench.example/witnessed")?;
    let mut policy = format!("log {}\n", signer.verifier());
    let mut stops = Vec::new();
    let mut threads = Vec::new();
    for i in 1..=3 {
        let d = tmp.join(format!("w{i}"));
        let k = Witness::init(&d, &format!("bench.example/w{i}"))?;
        let _ = Witness::add_log(&d, &signer.verifier().to_string())?;
        let server = WitnessServer::bind(WitnessConfig::new(&d))?;
        policy.push_str(&format!(
            "witness w{i} {k} http://{}\n",
            server.local_addr()
        ));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(tx);
        threads.push(std::thread::spawn(move || {
            let _ = server.run(async move {
                let _ = rx.await;
            });
        }));
    }
    policy.push_str("group all-three 2 w1 w2 w3\nquorum all-three\n");
    let policy = Policy::parse(policy.as_bytes())
        .map_err(|e| stele_writer::Error::Witness(e.to_string()))?;
    let plain_opts = LogOptions {
        checkpoint_every: None,
        checkpoint_interval: None,
        ..LogOptions::default()
    };
    let witnessed_opts = LogOptions {
        cosign: Some(Arc::new(PolicyCosigner::new(
            policy,
            ClientOptions::default(),
        ))),
        ..plain_opts.clone()
    };
    let names = ["without witnesses", "3 witnesses, 2 of 3"];
    let mut logs = Vec::new();
    for (name, opts) in names.iter().zip([plain_opts, witnessed_opts]) {
        let dir = tmp.join(name.replace([' ', ','], "-"));
        logs.push(Arc::new(Log::create_with(
            &dir,
            "bench.example/witnessed",
            &signer,
            None,
            opts,
        )?));
    }
    let mut results = Vec::new();
    let (checkpoints, appends) = rounds(&logs, n, batch)?;
    for (name, mut ms) in names.iter().zip(checkpoints) {
        let (p50, p99) = (quantile(&mut ms, 0.5), quantile(&mut ms, 0.99));
        println!(
            "checkpoint latency, {name}: p50 {p50:.2} ms, p99 {p99:.2} ms ({n} checkpoints, {batch} entries appended before each, another thread appending; the two logs alternate)"
        );
        results.push((p50, p99));
    }
    println!(
        "  ratio witnessed/plain: p50 {:.2}, p99 {:.2}",
        results[1].0 / results[0].0,
        results[1].1 / results[0].1
    );
    // The witnesses are asked outside the log's store lock: the other
    // thread's appends do not wait for them.
    for (name, mut ms) in names.iter().zip(appends) {
        if ms.is_empty() {
            continue;
        }
        let count = ms.len();
        let (p50, p99, max) = (
            quantile(&mut ms, 0.5),
            quantile(&mut ms, 0.99),
            quantile(&mut ms, 1.0),
        );
        println!(
            "append latency of the other thread, {name}: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({count} appends)"
        );
    }
    for s in stops {
        let _ = s.send(());
    }
    for t in threads {
        let _ = t.join();
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
