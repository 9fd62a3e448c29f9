//! `stele bench`: the figures asked for in issue 3, measured in-process.

use clap::Subcommand;
use serde_json::{Value, json};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stele_writer::{Error, Log, LogOptions, Result, View, key};

#[derive(Subcommand, Debug)]
pub(crate) enum Bench {
    /// Durable append throughput of 200-byte events in batches, beside raw write+fdatasync.
    Append {
        /// Entries to append.
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        /// Entries per append_batch call (and per raw write+fdatasync).
        #[arg(long, default_value_t = 1000)]
        batch: u64,
        /// Work directory (default: a new directory under $TMPDIR, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Checkpoint latency with three local witnesses (2 of 3) beside none, under appends.
    Witness {
        /// Checkpoints timed in each run.
        #[arg(long, default_value_t = 200)]
        checkpoints: u64,
        /// Entries appended before each checkpoint.
        #[arg(long, default_value_t = 100)]
        batch: u64,
    },
    /// Appends that each sign a checkpoint on a log with many, with a view held across each (a request in flight) beside none
    Checkpoints {
        /// Checkpoints the log holds before the timed appends (built without fsync).
        #[arg(long, default_value_t = 30_000)]
        checkpoints: u64,
        /// Appends timed in each run (each signs a checkpoint).
        #[arg(long, default_value_t = 1000)]
        appends: u64,
        /// Pairs of runs (no view held, a view held; order alternating); the ratio printed is the median of the pairs'.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Work directory (default: a new directory under $TMPDIR, removed after); on tmpfs the appends' fsyncs cost nothing, which leaves the checkpoint bookkeeping.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Append throughput with two sealed fields per event, beside the same events unsealed.
    Sealed {
        /// Entries to append in each run.
        #[arg(long, default_value_t = 200_000)]
        entries: u64,
        /// Entries per append_batch call.
        #[arg(long, default_value_t = 1000)]
        batch: u64,
        /// Pairs of runs (unsealed and sealed, order alternating); the ratio
        /// printed is the median of the pairs'.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// `stele append --event` (a whole process: open, append, checkpoint
    /// policy, exit) on a large log beside the same on a new one-entry log.
    Open {
        /// Entries in the large log.
        #[arg(long, default_value_t = 10_000_000)]
        entries: u64,
        /// Processes to time on each log.
        #[arg(long, default_value_t = 20)]
        runs: u64,
        /// Log directory: reused if it holds a log, else built there (and kept).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Both logs seal `/target` in every event (one data key): the open
        /// of a sealed log also opens its sidecar.
        #[arg(long)]
        sealed: bool,
    },
    /// Append latency with concurrent threads each appending single entries.
    Latency {
        /// Threads.
        #[arg(long, default_value_t = 16)]
        threads: u64,
        /// Appends per thread.
        #[arg(long, default_value_t = 2000)]
        per_thread: u64,
        /// Work directory (default: a new directory under $TMPDIR, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Inclusion and consistency proof time on a large log (built if DIR holds none).
    Proofs {
        /// Entries in the log.
        #[arg(long, default_value_t = 10_000_000)]
        entries: u64,
        /// Proofs of each kind to time.
        #[arg(long, default_value_t = 10_000)]
        samples: u64,
        /// Log directory: reused if it holds a log, else built there (and kept).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// `verify` of a log directory beside sha256sum of its entries file,
    /// the 1-thread hashing floor, a naive Python chain script and Go's
    /// sumdb/tlog computing the root of the same lines (scripts/bench/).
    Verify {
        /// Entries in the log.
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        /// Log directory: reused if it holds a log, else built there (and kept).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Rounds of every tool, interleaved (the machine may be busy): ratios of the fastest runs, and ranges.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
}

struct Work {
    path: PathBuf,
    remove: bool,
}

impl Work {
    fn new(dir: Option<PathBuf>, what: &str) -> Self {
        match dir {
            Some(path) => Self {
                path,
                remove: false,
            },
            None => Self {
                path: std::env::temp_dir()
                    .join(format!("stele-bench-{what}-{}", std::process::id())),
                remove: true,
            },
        }
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// An event whose canonical JSON is 200 bytes.
pub(crate) fn event_200(i: u64) -> Value {
    let base = json!({"actor": format!("user-{:08}", i % 100_000_000), "action": "update", "target": format!("doc/{i:012}"), "outcome": "ok", "pad": ""});
    let len = stele_core::canonical::to_canonical(&base)
        .expect("canonical")
        .len();
    let mut v = base;
    v["pad"] = Value::String("x".repeat(200usize.saturating_sub(len)));
    v
}

fn quiet_opts() -> LogOptions {
    LogOptions {
        checkpoint_every: None,
        checkpoint_interval: None,
        ..LogOptions::default()
    }
}

fn new_log(dir: &Path) -> Result<Log> {
    new_log_sealing(dir, false)
}

// With `sealed`, every event's `/target` is sealed, under one data key
// (the subject is `/outcome`, the same in every event_200).
fn new_log_sealing(dir: &Path, sealed: bool) -> Result<Log> {
    let signer = key::generate("bench.example/log")?;
    let mut opts = quiet_opts();
    if sealed {
        opts.seal = stele_writer::sealed::SealConfig {
            seal: vec!["/target".into()],
            subject: "/outcome".into(),
        };
    }
    Log::create_with(dir, "bench.example/log", &signer, None, opts)
}

fn build(dir: &Path, entries: u64, small: bool) -> Result<()> {
    build_with(dir, entries, small, None, false)
}

// Builds a log of `entries` entries, signing a checkpoint every `every`
// entries if given (as `stele append` does by default).
fn build_with(
    dir: &Path,
    entries: u64,
    small: bool,
    every: Option<u64>,
    sealed: bool,
) -> Result<()> {
    if dir.join("stele.json").exists() {
        let v = View::open_read_only(dir)?;
        if v.size() >= entries {
            eprintln!("reusing {} ({} entries)", dir.display(), v.size());
            return Ok(());
        }
        return Err(Error::OutOfRange(format!(
            "{} holds a log of {} entries, fewer than {entries}",
            dir.display(),
            v.size()
        )));
    }
    let log = new_log_sealing(dir, sealed)?;
    let t = Instant::now();
    let mut i = log.size();
    while i < entries {
        let n = (entries - i).min(10_000);
        let batch: Vec<Value> = (i..i + n)
            .map(|j| if small { json!({"n": j}) } else { event_200(j) })
            .collect();
        let _ = log.append_batch(batch)?;
        i += n;
        if let Some(every) = every
            && i % every < n
        {
            let _ = log.checkpoint()?;
        }
        if i % 1_000_000 < n {
            eprintln!("built {i} entries ({:.1}s)", t.elapsed().as_secs_f64());
        }
    }
    let _ = log.checkpoint()?;
    Ok(())
}

// CPU time used so far by every thread of this process.
fn process_cpu() -> Duration {
    cpu_clock(rustix::time::ClockId::ProcessCPUTime)
}

// Runs `f`, noting its wall time and this thread's CPU time.
fn timed(
    f: &mut dyn FnMut() -> Result<()>,
    wall: &mut Vec<Duration>,
    cpu: &mut Vec<Duration>,
) -> Result<()> {
    let (t, c) = (Instant::now(), thread_cpu());
    f()?;
    wall.push(t.elapsed());
    cpu.push(thread_cpu().saturating_sub(c));
    Ok(())
}

// CPU time used so far by this thread.
fn thread_cpu() -> Duration {
    cpu_clock(rustix::time::ClockId::ThreadCPUTime)
}

fn cpu_clock(id: rustix::time::ClockId) -> Duration {
    let t = rustix::time::clock_gettime(id);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub(crate) fn run(b: Bench) -> Result<u8> {
    match b {
        Bench::Append {
            entries,
            batch,
            dir,
        } => {
            let work = Work::new(dir, "append");
            let logdir = work.path.join("log");
            let log = new_log(&logdir)?;
            let entries_path = logdir.join("entries.jsonl");
            let written = std::fs::File::open(&entries_path)
                .map_err(|e| Error::io("open", &entries_path, e))?;
            let batches: Vec<Vec<Value>> = (0..entries.div_ceil(batch))
                .map(|b| {
                    (b * batch..((b + 1) * batch).min(entries))
                        .map(event_200)
                        .collect()
                })
                .collect();
            // Raw: the very same bytes, same batching, write + fdatasync.
            // Each library batch is followed by its raw twin, so a disk
            // that other work slows now and then weighs on both alike; the
            // ratio is also given per tenth of the run, as a range.
            let raw_path = work.path.join("raw");
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&raw_path)
                .map_err(|e| Error::io("open", &raw_path, e))?;
            let (mut stele, mut raw) = (Duration::ZERO, Duration::ZERO);
            // CPU time of the whole process (every thread) in library calls:
            // what the library itself costs, whatever the disk does.
            let mut cpu = Duration::ZERO;
            let mut tenths = [(Duration::ZERO, Duration::ZERO); 10];
            let mut at = log.view().entries_len();
            let mut chunk = Vec::new();
            let mut bytes = 0u64;
            let n_batches = batches.len();
            for (k, b) in batches.into_iter().enumerate() {
                let (t, c) = (Instant::now(), process_cpu());
                let _ = log.append_batch(b)?;
                let s = t.elapsed();
                cpu += process_cpu().saturating_sub(c);
                let end = log.view().entries_len();
                chunk.resize((end - at) as usize, 0);
                std::os::unix::fs::FileExt::read_exact_at(&written, &mut chunk, at)
                    .map_err(|e| Error::io("read", &entries_path, e))?;
                at = end;
                let t = Instant::now();
                f.write_all(&chunk)
                    .map_err(|e| Error::io("write", &raw_path, e))?;
                f.sync_data()
                    .map_err(|e| Error::io("fdatasync", &raw_path, e))?;
                let r = t.elapsed();
                stele += s;
                raw += r;
                let tenth = &mut tenths[k * 10 / n_batches];
                tenth.0 += s;
                tenth.1 += r;
                bytes += chunk.len() as u64;
            }
            drop(log);
            let (lo, hi) = tenths
                .iter()
                .filter(|(s, _)| !s.is_zero())
                .map(|(s, r)| r.as_secs_f64() / s.as_secs_f64())
                .fold((f64::INFINITY, 0.0f64), |(lo, hi), x| {
                    (lo.min(x), hi.max(x))
                });
            // The CLI: the same events as JSON Lines on stdin, receipts to a pipe.
            let input_path = work.path.join("events.jsonl");
            {
                let mut w = std::io::BufWriter::new(
                    std::fs::File::create(&input_path)
                        .map_err(|e| Error::io("create", &input_path, e))?,
                );
                for i in 0..entries {
                    let line = serde_json::to_string(&event_200(i)).expect("serializes");
                    writeln!(w, "{line}").map_err(|e| Error::io("write", &input_path, e))?;
                }
                w.flush().map_err(|e| Error::io("write", &input_path, e))?;
            }
            let cli_dir = work.path.join("cli");
            drop(new_log(&cli_dir)?);
            let exe = std::env::current_exe().map_err(|e| Error::io("find", "stele", e))?;
            let input =
                std::fs::File::open(&input_path).map_err(|e| Error::io("open", &input_path, e))?;
            let t = Instant::now();
            let mut child = std::process::Command::new(&exe)
                .arg("append")
                .arg(&cli_dir)
                .stdin(input)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| Error::io("run", &exe, e))?;
            let mut receipts = 0u64;
            let mut out = std::io::BufReader::new(child.stdout.take().expect("piped"));
            let mut line = String::new();
            while std::io::BufRead::read_line(&mut out, &mut line)
                .map_err(|e| Error::io("read", "stele append's stdout", e))?
                > 0
            {
                receipts += 1;
                line.clear();
            }
            let status = child.wait().map_err(|e| Error::io("wait for", &exe, e))?;
            let cli = t.elapsed();
            if !status.success() || receipts != entries {
                return Err(Error::OutOfRange(format!(
                    "stele append exited {status} after {receipts} receipts of {entries}"
                )));
            }
            let n = entries as f64;
            let c = n / cli.as_secs_f64();
            let (s, r) = (n / stele.as_secs_f64(), n / raw.as_secs_f64());
            println!(
                "append: {entries} entries of 200-byte events, batches of {batch}, {:.1} MB",
                bytes as f64 / 1e6
            );
            println!(
                "  stele append_batch: {:>10.0} entries/s ({:.3}s)",
                s,
                stele.as_secs_f64()
            );
            println!(
                "  stele append_batch CPU (all threads): {:.2} µs/entry ({:.3}s)",
                cpu.as_secs_f64() * 1e6 / n,
                cpu.as_secs_f64()
            );
            println!(
                "  raw write+fdatasync: {:>9.0} entries/s ({:.3}s)",
                r,
                raw.as_secs_f64()
            );
            println!(
                "  stele append (CLI, stdin to receipts): {:>6.0} entries/s ({:.3}s)",
                c,
                cli.as_secs_f64()
            );
            println!(
                "  ratio stele/raw: {:.2} (per tenth of the run {lo:.2}-{hi:.2}; batches interleaved)",
                s / r
            );
            println!("  ratio CLI/library: {:.2}", c / s);
        }
        Bench::Witness { checkpoints, batch } => crate::bench_witness::run(checkpoints, batch)?,
        Bench::Checkpoints {
            checkpoints,
            appends,
            rounds,
            dir,
        } => {
            let work = Work::new(dir, "checkpoints");
            crate::bench_checkpoints::run(checkpoints, appends, rounds, &work.path)?;
        }
        Bench::Sealed {
            entries,
            batch,
            rounds,
        } => {
            crate::bench_sealed::run(entries, batch, rounds)?;
        }
        Bench::Open {
            entries,
            runs,
            dir,
            sealed,
        } => bench_open(entries, runs, dir, sealed)?,
        Bench::Latency {
            threads,
            per_thread,
            dir,
        } => {
            let work = Work::new(dir, "latency");
            let log = Arc::new(new_log(&work.path.join("log"))?);
            let t = Instant::now();
            let handles: Vec<_> = (0..threads)
                .map(|k| {
                    let log = log.clone();
                    std::thread::spawn(move || -> Result<Vec<Duration>> {
                        let mut lat = Vec::with_capacity(per_thread as usize);
                        for i in 0..per_thread {
                            let ev = event_200(k * per_thread + i);
                            let t = Instant::now();
                            let _ = log.append(ev)?;
                            lat.push(t.elapsed());
                        }
                        Ok(lat)
                    })
                })
                .collect();
            let mut all = Vec::new();
            for h in handles {
                all.extend(h.join().expect("thread")?);
            }
            let wall = t.elapsed();
            all.sort();
            println!(
                "latency: {threads} threads x {per_thread} single appends: p50 {:?}, p99 {:?}, max {:?}; {:.0} entries/s",
                pct(&all, 0.5),
                pct(&all, 0.99),
                all.last().copied().unwrap_or_default(),
                all.len() as f64 / wall.as_secs_f64()
            );
        }
        Bench::Proofs {
            entries,
            samples,
            dir,
        } => {
            let work = Work::new(dir, "proofs");
            build(&work.path, entries, true)?;
            let t = Instant::now();
            let log = Log::open_with(&work.path, quiet_opts())?;
            println!(
                "open (re-checks the entries after the check mark): {:.3}s",
                t.elapsed().as_secs_f64()
            );
            let view = log.view();
            let base = log.view().uncached();
            let n = view.size();
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            let mut rnd = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            // Interleaved, same proofs: through the cache of the top levels,
            // and as before it (root first, then every hash from the file).
            let (mut inc, mut con, mut inc0, mut con0) = (vec![], vec![], vec![], vec![]);
            // The same proofs' CPU time on this thread: what a busy machine
            // adds to the wall times (waiting for a core) is not in it.
            let mut cpu: [Vec<Duration>; 4] = Default::default();
            for k in 0..samples {
                let size = n - rnd() % (n / 10).max(1);
                let i = rnd() % size;
                let old = 1 + rnd() % (size - 1).max(1);
                // Which goes first alternates: the first to read a hash from
                // the file may find its page out of the page cache.
                let [ci, cc, ui, uc] = &mut cpu;
                let mut cached = || -> Result<()> {
                    let mut f = || {
                        let _ = std::hint::black_box(view.inclusion_proof(i, size)?);
                        Ok(())
                    };
                    timed(&mut f, &mut inc, ci)?;
                    let mut f = || {
                        let _ = std::hint::black_box(view.consistency_proof(old, size)?);
                        Ok(())
                    };
                    timed(&mut f, &mut con, cc)
                };
                let mut uncached = || -> Result<()> {
                    let mut f = || {
                        let _ = std::hint::black_box(base.root(size)?);
                        let _ = std::hint::black_box(base.inclusion_proof(i, size)?);
                        Ok(())
                    };
                    timed(&mut f, &mut inc0, ui)?;
                    let mut f = || {
                        let _ = std::hint::black_box(base.root(size)?);
                        let _ = std::hint::black_box(base.consistency_proof(old, size)?);
                        Ok(())
                    };
                    timed(&mut f, &mut con0, uc)
                };
                if k % 2 == 0 {
                    cached()?;
                    uncached()?;
                } else {
                    uncached()?;
                    cached()?;
                }
            }
            for v in [&mut inc, &mut con, &mut inc0, &mut con0]
                .into_iter()
                .chain(cpu.iter_mut())
            {
                v.sort();
            }
            println!(
                "proofs on a {n}-entry log ({samples} random each, interleaved, each kind first every other time):"
            );
            for ((what, v), c) in [
                ("inclusion", &inc),
                ("consistency", &con),
                ("inclusion, uncached (before)", &inc0),
                ("consistency, uncached (before)", &con0),
            ]
            .into_iter()
            .zip(&cpu)
            {
                println!(
                    "  {what:<31} p50 {:>9.1?}, p99 {:>9.1?}, max {:?}; CPU p50 {:.1?}, p99 {:.1?}",
                    pct(v, 0.5),
                    pct(v, 0.99),
                    v.last().copied().unwrap_or_default(),
                    pct(c, 0.5),
                    pct(c, 0.99)
                );
            }
            println!(
                "  ratio p99 cached/uncached: inclusion {:.2}, consistency {:.2}",
                pct(&inc, 0.99).as_secs_f64() / pct(&inc0, 0.99).as_secs_f64(),
                pct(&con, 0.99).as_secs_f64() / pct(&con0, 0.99).as_secs_f64()
            );
        }
        Bench::Verify {
            entries,
            dir,
            rounds,
        } => bench_verify(entries, dir, rounds)?,
    }
    Ok(0)
}

/// One timed run of an outside program on `file`; its first output line.
fn run_peer(cmd: &mut std::process::Command) -> Result<(Duration, String)> {
    let t = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| Error::io("run", format!("{cmd:?}"), e))?;
    let d = t.elapsed();
    if !out.status.success() {
        return Err(Error::OutOfRange(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    Ok((d, first))
}

/// The 1-thread hashing floor: read, split lines, leaf hash each, fold the
/// tree (no parsing, no chain, no signatures).
fn hash_floor(file: &Path) -> Result<stele_core::Hash> {
    use std::io::Read;
    let mut f = std::fs::File::open(file).map_err(|e| Error::io("open", file, e))?;
    let mut tree = stele_core::merkle::CompactRange::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", file, e))?;
        if n == 0 {
            break;
        }
        let mut from = 0;
        for nl in memchr::memchr_iter(b'\n', &buf[..n]) {
            if carry.is_empty() {
                tree.push(stele_core::hash::leaf_hash(&buf[from..nl]));
            } else {
                carry.extend_from_slice(&buf[from..nl]);
                tree.push(stele_core::hash::leaf_hash(&carry));
                carry.clear();
            }
            from = nl + 1;
        }
        carry.extend_from_slice(&buf[from..n]);
    }
    Ok(tree.root())
}

fn bench_verify(entries: u64, dir: Option<PathBuf>, rounds: u32) -> Result<()> {
    let work = Work::new(dir, "verify");
    build(&work.path, entries, false)?;
    let key: Value = serde_json::from_slice(&View::open_read_only(&work.path)?.entry(0)?)
        .map_err(|e| Error::OutOfRange(e.to_string()))?;
    let vkey = stele_core::VerifierKey::parse(key["event"]["key"].as_str().unwrap_or(""))
        .map_err(|e| Error::OutOfRange(e.to_string()))?;
    let file = work.path.join("entries.jsonl");
    let size = std::fs::metadata(&file)
        .map_err(|e| Error::io("stat", &file, e))?
        .len();
    let mb = size as f64 / 1e6;
    // The peers live in the source tree (scripts/bench/); each runs only
    // where its interpreter is installed, and says so when it is not.
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench");
    let python = scripts.join("chain.py");
    let go = scripts.join("tlogroot.go");
    let have = |prog: &str| {
        std::process::Command::new(prog)
            .arg("version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok()
    };
    let python_ok = python.exists() && have("python3");
    // Built once, outside the timing: Go's compile time is not its speed.
    let go_bin = work.path.join("tlogroot");
    let go_ok = go.exists() && have("go") && {
        let st = std::process::Command::new("go")
            .args(["build", "-o"])
            .arg(&go_bin)
            .arg(&go)
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .status();
        matches!(st, Ok(s) if s.success())
    };
    // Warm the page cache once so every tool reads from memory.
    let _ = std::fs::read(&file);
    let tools = [
        "stele verify_dir",
        "sha256sum",
        "floor, 1 thread",
        "python chain.py",
        "go sumdb/tlog",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); tools.len()];
    let mut report = None;
    let mut roots: Vec<(usize, String)> = Vec::new();
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        let r = stele_writer::verify_dir(
            &work.path,
            stele_core::Options::new(vec![vkey.clone()]),
            &mut |_, _| {},
        )?;
        times[0].push(t.elapsed());
        report = Some(r);
        let (d, _) = run_peer(std::process::Command::new("sha256sum").arg(&file))?;
        times[1].push(d);
        let t = Instant::now();
        let floor_root = hash_floor(&file)?;
        times[2].push(t.elapsed());
        roots.push((2, floor_root.to_base64()));
        if python_ok {
            let (d, out) = run_peer(
                std::process::Command::new("python3")
                    .arg(&python)
                    .arg(&file),
            )?;
            times[3].push(d);
            roots.push((3, out.split(' ').nth(1).unwrap_or("").to_string()));
        }
        if go_ok {
            let (d, out) = run_peer(std::process::Command::new(&go_bin).arg(&file))?;
            times[4].push(d);
            roots.push((4, out.split(' ').nth(1).unwrap_or("").to_string()));
        }
    }
    let report = report.ok_or_else(|| Error::OutOfRange("no round ran".into()))?;
    // The peers must agree with the floor on the root, or their times mean nothing.
    let floor = roots
        .iter()
        .find(|(k, _)| *k == 2)
        .map(|(_, r)| r.clone())
        .unwrap_or_default();
    for (k, r) in &roots {
        if *r != floor {
            return Err(Error::OutOfRange(format!(
                "{} computed root {r}, but the hashing floor computes {floor}",
                tools[*k]
            )));
        }
    }
    println!(
        "verify: {} entries, {mb:.1} MB, verdict {:?}, {} round(s) interleaved, {} threads for stele",
        report.entries,
        report.verdict,
        rounds.max(1),
        stele_writer::view::verify_threads()
    );
    let best = |k: usize| times[k].iter().min().copied();
    for (k, name) in tools.iter().enumerate() {
        match (best(k), times[k].iter().max()) {
            (Some(lo), Some(hi)) => println!(
                "  {name:<17} {:>5.0} MB/s fastest ({:.2}-{:.2} s)",
                mb / lo.as_secs_f64(),
                lo.as_secs_f64(),
                hi.as_secs_f64()
            ),
            _ => println!(
                "  {name:<17} not run ({})",
                if k == 3 {
                    "needs python3"
                } else {
                    "needs go and golang-golang-x-mod-dev: apt-get install golang-go golang-golang-x-mod-dev"
                }
            ),
        }
    }
    let v = best(0).unwrap_or_default().as_secs_f64();
    // Per round, the peer's time over verify's: the range the load allows.
    let per_round = |k: usize| {
        let r: Vec<f64> = times[k]
            .iter()
            .zip(&times[0])
            .map(|(p, s)| p.as_secs_f64() / s.as_secs_f64())
            .collect();
        let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.iter().copied().fold(0.0, f64::max);
        (lo, hi)
    };
    for (k, what, goal) in [
        (1, "sha256sum time / verify time", "goal >= 2"),
        (3, "python time / verify time", "goal >= 15"),
        (4, "go tlog time / verify time", "goal >= 5"),
    ] {
        if let Some(p) = best(k) {
            let (lo, hi) = per_round(k);
            println!(
                "  ratio {what}: {:.2} (fastest runs; per round {lo:.2}-{hi:.2}; {goal})",
                p.as_secs_f64() / v
            );
        }
    }
    let (lo, hi) = per_round(2);
    println!(
        "  ratio verify time / 1-thread floor time: {:.2} (fastest runs; per round {:.2}-{:.2}); the 1-thread verifier against the floor is `cargo bench -p stele-core`",
        v / best(2).unwrap_or_default().as_secs_f64(),
        1.0 / hi,
        1.0 / lo
    );
    Ok(())
}

// `stele append --event` as a user runs it, on a large and a one-entry log.
fn bench_open(entries: u64, runs: u64, dir: Option<PathBuf>, sealed: bool) -> Result<()> {
    let work = Work::new(dir, "open");
    build_with(&work.path, entries, false, Some(1024), sealed)?;
    if sealed != work.path.join("sealed").exists() {
        return Err(Error::OutOfRange(format!(
            "{} holds a log that is{} sealed: use another --dir",
            work.path.display(),
            if sealed { " not" } else { "" }
        )));
    }
    let small = Work::new(None, "open-small");
    drop(new_log_sealing(&small.path, sealed)?);
    let exe = std::env::current_exe().map_err(|e| Error::io("find", "stele", e))?;
    let time_append = |dir: &Path, k: u64| -> Result<Duration> {
        let t = Instant::now();
        let out = std::process::Command::new(&exe)
            .arg("append")
            .arg(dir)
            .arg("--event")
            .arg(event_200(k).to_string())
            .output()
            .map_err(|e| Error::io("run", &exe, e))?;
        let d = t.elapsed();
        if !out.status.success() {
            return Err(Error::OutOfRange(format!(
                "stele append failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(d)
    };
    // Without a check mark an open reads every entry, as every open did
    // before the mark existed (this open then writes the mark).
    let mut unmarked = Vec::new();
    for k in 0..3 {
        let _ = std::fs::remove_file(work.path.join("checked"));
        unmarked.push(time_append(&work.path, k)?);
    }
    unmarked.sort();
    let (mut big, mut tiny) = (Vec::new(), Vec::new());
    for k in 0..runs {
        big.push(time_append(&work.path, k)?);
        tiny.push(time_append(&small.path, k)?);
    }
    big.sort();
    tiny.sort();
    let size = View::open_read_only(&work.path)?.size();
    let t = Instant::now();
    drop(Log::fsck(&work.path, quiet_opts())?);
    let full = t.elapsed();
    println!(
        "open: `stele append --event` (whole process), {runs} runs each, interleaved{}:",
        if sealed { ", sealed logs" } else { "" }
    );
    println!(
        "  on a {size}-entry log:  p50 {:?}, max {:?}",
        pct(&big, 0.5),
        big[big.len() - 1]
    );
    println!(
        "  on a 1-entry log:  p50 {:?}, max {:?}",
        pct(&tiny, 0.5),
        tiny[tiny.len() - 1]
    );
    println!(
        "  on it without the check mark (every entry read, as before): p50 {:?} (3 runs)",
        pct(&unmarked, 0.5)
    );
    println!("  full check (Log::fsck, parses every line too): {full:?}");
    println!(
        "  ratio large/one-entry p50: {:.2}",
        pct(&big, 0.5).as_secs_f64() / pct(&tiny, 0.5).as_secs_f64()
    );
    println!(
        "  ratio unmarked/marked p50: {:.1}",
        pct(&unmarked, 0.5).as_secs_f64() / pct(&big, 0.5).as_secs_f64()
    );
    Ok(())
}
