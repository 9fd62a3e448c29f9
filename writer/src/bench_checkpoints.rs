//! `stele bench checkpoints`: appends that each sign a checkpoint on a log
//! that already holds many, with a view of the log held across each append
//! (as a request in flight holds one: `stele serve` takes a view per
//! request) beside none held, in one run. Signing a checkpoint while a view
//! lived used to copy the whole in-memory list of checkpoints; the ratio
//! held/free shows what a request in flight costs the appenders.

use serde_json::json;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use stele_writer::fs::{FileRole, Fs};
use stele_writer::{Log, LogOptions, Result, key};

// Builds the history without waiting for the disk: its fsyncs are skipped
// (only while building; the timed appends use the real file system).
#[derive(Debug)]
struct NoSync;

impl Fs for NoSync {
    fn sync_data(&self, _: FileRole, _: &File) -> std::io::Result<()> {
        Ok(())
    }
    fn sync_dir(&self, _: &Path) -> std::io::Result<()> {
        Ok(())
    }
}

fn every_append() -> LogOptions {
    LogOptions {
        checkpoint_every: Some(1),
        checkpoint_interval: None,
        ..LogOptions::default()
    }
}

pub(crate) fn run(checkpoints: u64, appends: u64, rounds: u32, dir: &Path) -> Result<()> {
    let log_dir: PathBuf = dir.join("log");
    let _ = std::fs::remove_dir_all(&log_dir);
    let t = Instant::now();
    {
        let signer = key::generate("bench.example/checkpoints")?;
        let opts = LogOptions {
            fs: Arc::new(NoSync),
            ..every_append()
        };
        let log = Log::create_with(&log_dir, "bench.example/checkpoints", &signer, None, opts)?;
        for i in 1..checkpoints {
            let _ = log.append(json!({"action": "build", "i": i}))?;
        }
    }
    let log = Log::open_with(&log_dir, every_append())?;
    println!(
        "checkpoints: a log of {} checkpoints (built in {:.1}s); {rounds} rounds of {appends} appends, each signing a checkpoint, with no view held and with a view held across each append (retaken after it, as requests in flight hold them)",
        log.view().checkpoints().len(),
        t.elapsed().as_secs_f64()
    );
    let mut ratios = Vec::new();
    for round in 0..rounds.max(1) {
        let time = |hold: bool| -> Result<f64> {
            let t = Instant::now();
            let mut held = hold.then(|| log.view());
            for i in 0..appends {
                let _ = log.append(json!({"action": "timed", "i": i}))?;
                if hold {
                    held = Some(log.view());
                }
            }
            drop(held);
            Ok(appends as f64 / t.elapsed().as_secs_f64())
        };
        // The order alternates: the machine's load changes between runs.
        let (free, held) = if round % 2 == 0 {
            let f = time(false)?;
            (f, time(true)?)
        } else {
            let h = time(true)?;
            (time(false)?, h)
        };
        println!(
            "  round {}: no view held {free:>8.0} appends/s, a view held {held:>8.0} appends/s; ratio {:.2} ({} checkpoints now)",
            round + 1,
            held / free,
            log.view().checkpoints().len()
        );
        ratios.push(held / free);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "  ratio held/free (median of the rounds): {:.2}",
        ratios[ratios.len() / 2]
    );
    drop(log);
    let _ = std::fs::remove_dir_all(&log_dir);
    Ok(())
}
