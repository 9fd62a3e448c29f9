//! `stele`: the command-line tool for Stele logs.

#![forbid(unsafe_code)]

mod bench;
mod bench_sealed;
mod demo;
mod serve;

use clap::{Args, Parser, Subcommand};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use stele_core::checkpoint::SignedCheckpoint;
use stele_core::note::VerifierKey;
use stele_core::verify::{Options, Report, Verdict};
use stele_writer::{Error, Log, LogOptions, View, key, verify_dir};

const ACCESS_HELP: &str = "Access auditing: cat, prove, export and verify against a log directory first \
append a `stele.access` entry to that log (OS user, command, arguments, what is read). If the log is \
locked by a running writer or on read-only storage, pass --access-log OTHER_DIR to record the access \
in another log instead; the target log is then only read.";

#[derive(Parser, Debug)]
#[command(
    name = "stele",
    version,
    about = "Tamper-evident audit logs: append, sign checkpoints, prove, export, verify",
    after_help = "Exit status: 0 success, 1 verification failed or tampering found, 2 usage or I/O error."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum AuditorCmd {
    /// Add an auditor: wraps every existing and future data key for it.
    Add {
        /// The log directory.
        dir: PathBuf,
        /// The auditor's age X25519 recipient (age1…, from `age-keygen -y`).
        recipient: String,
    },
    /// List the auditors.
    List {
        /// The log directory.
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a log: key, genesis entry, first checkpoint. Prints the verifier key.
    Init {
        /// The log directory (created if missing).
        dir: PathBuf,
        /// The log's origin (also the key name), e.g. example.com/audit.
        #[arg(long)]
        origin: String,
        /// Use (or create) the private key at PATH instead of DIR/key. Mode must be 0600.
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
        /// Seal the value at this JSON pointer in every event (e.g. /actor/email). Repeatable.
        #[arg(long = "seal", value_name = "POINTER")]
        seal: Vec<String>,
        /// The data subject's pointer: one data key per distinct value there.
        #[arg(long, value_name = "POINTER", default_value = "/actor")]
        subject: String,
    },
    /// Auditors: age X25519 recipients (age1…) to whom sealed fields can be revealed.
    #[command(subcommand)]
    Auditor(AuditorCmd),
    /// Print an export's entries as JSON lines with sealed values opened, once it verifies.
    Reveal {
        /// An export file.
        path: PathBuf,
        /// The verifier key (name+hex8+base64) or a file holding it. Repeat for several.
        #[arg(long = "key", value_name = "VKEY", required = true)]
        keys: Vec<String>,
        /// An age identity file (AGE-SECRET-KEY-1…, from age-keygen), mode 0600.
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
    },
    /// Forget a data subject: destroy its data key and wraps, log stele.forget.
    #[command(
        long_about = "Forget a data subject: its data key and every wrap of it are overwritten, \
fsync'ed and unlinked, so its sealed values can no longer be opened from this log or any later \
export; old exports verify as before and show the values as forgotten. A stele.forget event naming \
the key ID (never the subject) is appended. VALUE is the subject's value as JSON, or a plain string \
(alice is read as \"alice\"). Copies made before (backups, exports revealed earlier, SSD blocks) \
are beyond reach: see writer/README.md."
    )]
    Forget {
        /// The log directory.
        dir: PathBuf,
        /// The subject's value (JSON, or a plain string).
        #[arg(long, value_name = "VALUE")]
        subject: String,
        /// Who asked (recorded in the stele.forget event); default: the OS user.
        #[arg(long)]
        by: Option<String>,
    },
    /// Delete one opening (a sealed value in one entry); log stele.redact.
    Redact {
        /// The log directory.
        dir: PathBuf,
        /// The entry index.
        #[arg(long)]
        entry: u64,
        /// The sealed field's JSON pointer in the event (e.g. /actor/email).
        #[arg(long, value_name = "POINTER")]
        pointer: String,
        /// Who asked (recorded in the stele.redact event); default: the OS user.
        #[arg(long)]
        by: Option<String>,
    },
    /// Append events; prints {"seq":N,"leaf_hash":"<base64>"} per entry once it is durable.
    #[command(
        long_about = "Append events. Without --event, reads one JSON object per line from stdin \
(blank lines are skipped). A receipt line {\"seq\":N,\"leaf_hash\":\"<base64>\"} is printed for each \
entry only after it is on stable storage. A bad line stops the command with an error naming the line; \
nothing from that line is written (lines before it are). Event types starting with \"stele.\" are reserved."
    )]
    Append {
        /// The log directory.
        dir: PathBuf,
        /// An event (a JSON object); repeat for several. They are appended as one batch.
        #[arg(long = "event", value_name = "JSON")]
        events: Vec<String>,
        /// Sign a checkpoint when this many entries are unsigned.
        #[arg(long, default_value_t = 1024)]
        checkpoint_every: u64,
    },
    /// Sign a checkpoint if the tree grew; print the latest checkpoint note.
    Checkpoint {
        /// The log directory.
        dir: PathBuf,
    },
    /// Print the log's verifier key (vkey).
    Key {
        /// The log directory.
        dir: PathBuf,
    },
    /// Print entry lines byte for byte as hashed.
    #[command(after_help = ACCESS_HELP)]
    Cat {
        /// The log directory.
        dir: PathBuf,
        /// First entry (inclusive).
        #[arg(long)]
        from: Option<u64>,
        /// Last entry (exclusive).
        #[arg(long)]
        to: Option<u64>,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Print inclusion or consistency proofs.
    #[command(subcommand)]
    Prove(Prove),
    /// Write an export file: the whole log, a range, or selected entries with proofs.
    #[command(after_help = ACCESS_HELP)]
    Export {
        /// The log directory.
        dir: PathBuf,
        /// The output file.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Range export: first entry (inclusive).
        #[arg(long, requires = "to", conflicts_with = "entries")]
        from: Option<u64>,
        /// Range export: last entry (exclusive).
        #[arg(long, requires = "from")]
        to: Option<u64>,
        /// Selected entries, comma separated (e.g. 3,17,42).
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        entries: Option<Vec<u64>>,
        /// Include the openings of sealed fields for this auditor (age1…). Repeatable.
        /// Without it the export carries commitments only.
        #[arg(long = "reveal-to", value_name = "RECIPIENT")]
        reveal_to: Vec<String>,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Verify a log directory or an export file against a pinned key.
    #[command(
        after_help = "A log directory is verified as the whole-log export it makes \
(`stele export DIR`): line numbers in failures refer to that export form, where each checkpoint \
record follows the entry that completes it. Exit status 1 when the verdict is not \"verified\".\n\n\
Access auditing: verifying a log directory appends a `stele.access` entry to it after the check \
(or to --access-log DIR)."
    )]
    Verify {
        /// A log directory or an export file.
        path: PathBuf,
        /// The verifier key (name+hex8+base64) or a file holding it. Repeat for several.
        #[arg(long = "key", value_name = "VKEY")]
        keys: Vec<String>,
        /// A signed checkpoint trusted earlier: the log must extend it (rollback and fork checks).
        #[arg(long, value_name = "FILE")]
        trusted_checkpoint: Option<PathBuf>,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
        /// An age identity file (mode 0600): open sealed fields and check them.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Verify a log periodically and alert on failure, rollback or fork.
    #[command(
        long_about = "Verify a log periodically. The last checkpoint trusted is kept in \
--state FILE; each round the log must extend it. On any failure, rollback or fork the monitor \
writes the alert to stderr, runs --on-alert CMD (via sh -c) with the alert JSON on stdin, and \
exits with status 1. The monitor only reads the log and records no stele.access entries (it would \
otherwise grow the log every interval)."
    )]
    Monitor {
        /// The log directory.
        dir: PathBuf,
        /// The verifier key (or a file holding it).
        #[arg(long = "key", value_name = "VKEY")]
        key: Option<String>,
        /// Where the last trusted checkpoint is remembered.
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
        /// Time between rounds, e.g. 60s, 5m, 500ms.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        interval: Duration,
        /// Run one round and exit (0 ok, 1 alert).
        #[arg(long)]
        once: bool,
        /// A shell command run on alert, with the alert JSON on stdin.
        #[arg(long, value_name = "CMD")]
        on_alert: Option<String>,
    },
    /// Benchmarks (see writer/README.md).
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Simulated attacks on copies of a live log, detected while it keeps growing.
    Demo(demo::DemoArgs),
    /// Serve a log over HTTP: ingestion, tlog-tiles, proofs, exports, the verifier page.
    Serve(serve::ServeArgs),
    /// Bearer tokens for `stele serve`.
    #[command(subcommand)]
    Token(serve::TokenCmd),
    /// Load generator for `stele serve` on loopback.
    BenchHttp(serve::BenchHttpArgs),
}

#[derive(Subcommand, Debug)]
enum Prove {
    /// Inclusion proof of one entry.
    #[command(after_help = ACCESS_HELP)]
    Inclusion {
        /// The log directory.
        dir: PathBuf,
        /// The entry index.
        #[arg(long)]
        index: u64,
        /// Tree size (default: the latest checkpoint, signing one if needed).
        #[arg(long)]
        size: Option<u64>,
        /// Print JSON: {"index","tree_size","leaf_hash","root","proof"}.
        #[arg(long)]
        json: bool,
        /// tlog-proof: print a C2SP tlog-proof with the entry as extra data.
        #[arg(long, value_name = "FORMAT", value_parser = ["tlog-proof"])]
        format: Option<String>,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Consistency proof between two tree sizes.
    #[command(after_help = ACCESS_HELP)]
    Consistency {
        /// The log directory.
        dir: PathBuf,
        /// The older tree size.
        #[arg(long)]
        from: u64,
        /// The newer tree size (default: the latest checkpoint).
        #[arg(long)]
        to: Option<u64>,
        /// Print JSON: {"from","to","old_root","new_root","proof"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        access: AccessArgs,
    },
}

#[derive(Args, Debug, Clone)]
struct AccessArgs {
    /// Record the stele.access entry in this log instead (for a locked or read-only log).
    #[arg(long, value_name = "DIR")]
    access_log: Option<PathBuf>,
}

/// A CLI failure: the message, how to fix it, and the exit status.
struct Fail {
    code: u8,
    msg: String,
    hint: Option<String>,
}

impl Fail {
    fn usage(msg: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Fail {
            code: 2,
            msg: msg.into(),
            hint: hint.into(),
        }
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        let (code, hint) = match &e {
            Error::Locked { dir } => (
                2,
                Some(format!(
                    "another stele process or service is writing {}; for cat/prove/export/verify, pass --access-log OTHER_DIR to read it without the lock",
                    dir.display()
                )),
            ),
            Error::KeyPermissions { path, .. } => {
                (2, Some(format!("run: chmod 600 {}", path.display())))
            }
            Error::NotALog { .. } => (
                2,
                Some("create a log with: stele init DIR --origin ORIGIN".into()),
            ),
            Error::AlreadyExists { .. } => (2, Some("choose an empty directory".into())),
            Error::Poisoned { .. } => (
                2,
                Some("check the disk, then run the command again (reopening recovers)".into()),
            ),
            Error::Corrupt { dir, .. } | Error::CheckpointMismatch { dir, .. } => (
                1,
                Some(format!(
                    "the log was not changed; run `stele verify {} --key VKEY` to list every failure",
                    dir.display()
                )),
            ),
            Error::OutOfRange(_) => (
                2,
                Some("`stele checkpoint DIR` signs the entries appended so far".into()),
            ),
            _ => (2, None),
        };
        Fail { code, msg, hint }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("stele: error: {}", f.msg);
            if let Some(h) = f.hint {
                eprintln!("  hint: {h}");
            }
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Result<u8, Fail> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match cli.cmd {
        Cmd::Init {
            dir,
            origin,
            key_file,
            seal,
            subject,
        } => init(
            &dir,
            &origin,
            key_file.as_deref(),
            stele_writer::sealed::SealConfig { seal, subject },
        ),
        Cmd::Auditor(AuditorCmd::Add { dir, recipient }) => {
            let log = Log::open(&dir)?;
            let n = log.add_auditor(recipient.trim())?;
            eprintln!("auditor added; {n} existing data keys wrapped for it");
            Ok(0u8)
        }
        Cmd::Auditor(AuditorCmd::List { dir }) => {
            stele_writer::log::log_config(&dir)?;
            for a in stele_writer::sealed::auditors(&dir)? {
                println!("{a}");
            }
            Ok(0u8)
        }
        Cmd::Reveal {
            path,
            keys,
            identity,
        } => reveal(&path, &keys, &identity),
        Cmd::Forget { dir, subject, by } => {
            let value = stele_core::canonical::parse_strict(&subject)
                .unwrap_or(Value::String(subject.clone()));
            let log = Log::open(&dir)?;
            let by = by.unwrap_or_else(|| os_user()["name"].as_str().unwrap_or("unknown").into());
            let (id, r) = log.forget(&value, &by)?;
            println!("{{\"forgotten\":\"{id}\",\"seq\":{}}}", r.seq);
            Ok(0u8)
        }
        Cmd::Redact {
            dir,
            entry,
            pointer,
            by,
        } => {
            let log = Log::open(&dir)?;
            let by = by.unwrap_or_else(|| os_user()["name"].as_str().unwrap_or("unknown").into());
            let r = log.redact(entry, &pointer, &by)?;
            println!("{{\"redacted\":{entry},\"seq\":{}}}", r.seq);
            Ok(0u8)
        }
        Cmd::Append {
            dir,
            events,
            checkpoint_every,
        } => append(&dir, events, checkpoint_every),
        Cmd::Checkpoint { dir } => {
            let log = Log::open(&dir)?;
            let cp = log.checkpoint()?;
            print!("{}", cp.note);
            Ok(0u8)
        }
        Cmd::Key { dir } => {
            let (_, key_path) = stele_writer::log::log_config(&dir)?;
            // The verifier key is public; it is read from the genesis entry so
            // the private key file need not be readable.
            let view = View::open_read_only(&dir)?;
            let genesis: Value = serde_json::from_slice(&view.entry(0)?)
                .map_err(|e| Fail::usage(format!("entry 0: {e}"), None))?;
            match genesis["event"]["key"].as_str() {
                Some(k) => println!("{k}"),
                None => {
                    let k = key::load(&key_path)?;
                    println!("{}", k.verifier());
                }
            }
            Ok(0u8)
        }
        Cmd::Cat {
            dir,
            from,
            to,
            access,
        } => with_access(&dir, &access, "cat", &argv, |view, _| {
            let from = from.unwrap_or(0);
            let to = to.unwrap_or(view.size());
            if from >= to || to > view.size() {
                return Err(Fail::usage(
                    format!(
                        "range {from}..{to} is not a non-empty part of the log's {} entries",
                        view.size()
                    ),
                    None,
                ));
            }
            let read = json!({"entries": [from, to], "tree_size": view.size()});
            Ok((
                read,
                Box::new(move |view: &View| {
                    let stdout = std::io::stdout();
                    let mut out = std::io::BufWriter::new(stdout.lock());
                    view.write_entries(from, to, &mut out)?;
                    out.flush()
                        .map_err(|e| Fail::usage(format!("write stdout: {e}"), None))?;
                    Ok(0u8)
                }) as Action,
            ))
        }),
        Cmd::Prove(Prove::Inclusion {
            dir,
            index,
            size,
            json: as_json,
            format,
            access,
        }) => with_access(&dir, &access, "prove inclusion", &argv, |view, log| {
            let size = match size {
                Some(s) => s,
                None => default_size(view, log, index + 1)?,
            };
            view.check_inclusion(index, size)
                .map_err(|e| Fail::usage(e.to_string(), None))?;
            let read = json!({"inclusion": index, "tree_size": size});
            Ok((
                read,
                Box::new(move |view: &View| {
                    if format.is_some() {
                        print!("{}", view.tlog_proof(index, size)?);
                        return Ok(0u8);
                    }
                    let p = view.inclusion(index, size)?;
                    if as_json {
                        println!("{}", p.to_json());
                    } else {
                        print!("{}", p.to_text());
                    }
                    Ok(0u8)
                }) as Action,
            ))
        }),
        Cmd::Prove(Prove::Consistency {
            dir,
            from,
            to,
            json: as_json,
            access,
        }) => with_access(&dir, &access, "prove consistency", &argv, |view, log| {
            let to = match to {
                Some(t) => t,
                None => default_size(view, log, from)?,
            };
            view.check_consistency(from, to)
                .map_err(|e| Fail::usage(e.to_string(), None))?;
            let read = json!({"consistency": [from, to]});
            Ok((
                read,
                Box::new(move |view: &View| {
                    let p = view.consistency(from, to)?;
                    if as_json {
                        println!("{}", p.to_json());
                    } else {
                        print!("{}", p.to_text());
                    }
                    Ok(0u8)
                }) as Action,
            ))
        }),
        Cmd::Export {
            dir,
            output,
            from,
            to,
            entries,
            reveal_to,
            access,
        } => export(
            &dir,
            &output,
            from.zip(to),
            entries,
            reveal_to,
            &access,
            &argv,
        ),
        Cmd::Verify {
            path,
            keys,
            trusted_checkpoint,
            json: as_json,
            identity,
            access,
        } => verify(
            &path,
            &keys,
            trusted_checkpoint.as_deref(),
            as_json,
            identity.as_deref(),
            &access,
            &argv,
        ),
        Cmd::Monitor {
            dir,
            key,
            state,
            interval,
            once,
            on_alert,
        } => monitor(
            &dir,
            key.as_deref(),
            &state,
            interval,
            once,
            on_alert.as_deref(),
        ),
        Cmd::Bench(b) => bench::run(b).map_err(Fail::from),
        Cmd::Demo(a) => demo::run(a).map_err(|e| Fail::usage(e, None)),
        Cmd::Serve(a) => serve::run(a),
        Cmd::Token(t) => serve::token(t),
        Cmd::BenchHttp(a) => serve::bench_http(a),
    }
}

type Action = Box<dyn FnOnce(&View) -> Result<u8, Fail>>;

fn init(
    dir: &Path,
    origin: &str,
    key_file: Option<&Path>,
    seal: stele_writer::sealed::SealConfig,
) -> Result<u8, Fail> {
    seal.check().map_err(|e| {
        Fail::usage(
            e.to_string(),
            Some("--seal and --subject take JSON pointers such as /actor/email".into()),
        )
    })?;
    let signer = match key_file {
        Some(p) if p.exists() => key::load(p)?,
        Some(p) => {
            let k = key::generate(origin)?;
            key::save(&stele_writer::fs::RealFs, p, &k)?;
            k
        }
        None => key::generate(origin)?,
    };
    let opts = LogOptions {
        seal,
        ..LogOptions::default()
    };
    let log = Log::create_with(dir, origin, &signer, key_file, opts).map_err(|e| match e {
        Error::BadKey { why, .. } if why.contains("name") => Fail::usage(
            format!("origin {origin:?} cannot be a key name: {why}"),
            Some("use an origin without spaces or '+', e.g. example.com/audit".into()),
        ),
        e => e.into(),
    })?;
    println!("{}", log.verifier());
    Ok(0u8)
}

fn append(dir: &Path, events: Vec<String>, every: u64) -> Result<u8, Fail> {
    let opts = LogOptions {
        checkpoint_every: Some(every.max(1)),
        ..LogOptions::default()
    };
    let log = Log::open_with(dir, opts)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut print = |rs: Vec<stele_writer::Receipt>| -> Result<(), Fail> {
        for r in rs {
            // Field order is part of the contract: seq first.
            writeln!(
                out,
                "{{\"seq\":{},\"leaf_hash\":\"{}\"}}",
                r.seq,
                r.leaf_hash.to_base64()
            )
            .map_err(|e| Fail::usage(format!("write stdout: {e}"), None))?;
        }
        out.flush()
            .map_err(|e| Fail::usage(format!("write stdout: {e}"), None))
    };
    let bad_line = |n: usize, why: String, from: &str| {
        Fail::usage(
            format!("{from} {n}: {why}; nothing from it was written"),
            Some("each event must be one JSON object per line, e.g. {\"actor\":\"alice\",\"action\":\"login\"}".to_string()),
        )
    };
    if !events.is_empty() {
        let mut batch = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let v = parse_event(e).map_err(|why| bad_line(i + 1, why, "--event"))?;
            batch.push(v);
        }
        print(log.append_batch(batch)?)?;
    } else {
        let stdin = std::io::stdin();
        let mut r = std::io::BufReader::with_capacity(1 << 20, stdin.lock());
        let mut batch = Vec::new();
        let mut line = String::new();
        let mut n = 0usize;
        loop {
            line.clear();
            let got = r
                .read_line(&mut line)
                .map_err(|e| Fail::usage(format!("line {}: reading stdin: {e}", n + 1), None))?;
            if got == 0 {
                break;
            }
            n += 1;
            if !line.trim().is_empty() {
                match parse_event(line.trim_end_matches(['\n', '\r'])) {
                    Ok(v) => batch.push(v),
                    Err(why) => {
                        if !batch.is_empty() {
                            print(log.append_batch(std::mem::take(&mut batch))?)?;
                        }
                        return Err(bad_line(n, why, "line"));
                    }
                }
            }
            // Commit what we have when no more input is waiting, so a slow
            // producer gets its receipts promptly; otherwise batch up.
            if !batch.is_empty() && (r.buffer().is_empty() || batch.len() >= 4096) {
                print(log.append_batch(std::mem::take(&mut batch))?)?;
            }
        }
        if !batch.is_empty() {
            print(log.append_batch(batch)?)?;
        }
    }
    log.checkpoint_if_due()?;
    Ok(0u8)
}

fn parse_event(text: &str) -> Result<Value, String> {
    let v = stele_core::canonical::parse_strict(text)?;
    stele_writer::log::check_event(&v, false)?;
    // Build it once to check size and form before anything is written.
    let ts = stele_core::entry::Timestamp::from_unix_micros(0).expect("epoch");
    stele_core::entry::entry_line(
        stele_core::entry::MAX_SEQ,
        ts,
        &stele_core::entry::ZERO_PREV,
        &v,
    )
    .map_err(|e| e.to_string())?;
    Ok(v)
}

// The latest checkpoint's size, signing a new one when it does not reach `need`.
fn default_size(view: &View, log: Option<&Log>, need: u64) -> Result<u64, Fail> {
    let latest = view.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
    if latest >= need {
        return Ok(latest);
    }
    match log {
        Some(log) => Ok(log.checkpoint()?.checkpoint.size.min(view.size())),
        None => Err(Fail::usage(
            format!("the latest checkpoint covers {latest} entries, fewer than the {need} needed"),
            Some("run `stele checkpoint DIR`, or pass --size".into()),
        )),
    }
}

fn os_user() -> Value {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok();
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|r| r.split_whitespace().next().map(str::to_string))
                .and_then(|u| u.parse::<u64>().ok())
        });
    json!({"name": name, "uid": uid})
}

fn access_event(command: &str, argv: &[String], target: &Path, origin: &str, read: Value) -> Value {
    json!({
        "type": "stele.access",
        "user": os_user(),
        "command": command,
        "args": argv,
        "log": {"dir": std::path::absolute(target).unwrap_or_else(|_| target.into()).display().to_string(), "origin": origin},
        "read": read,
    })
}

fn record_elsewhere(access_log: &Path, event: Value) -> Result<(), Fail> {
    let other = Log::open(access_log)?;
    other.append_reserved(event)?;
    Ok(())
}

// Runs a read command: `plan` checks the request and says what will be read;
// the access is recorded durably; then the returned action produces output.
fn with_access(
    dir: &Path,
    access: &AccessArgs,
    command: &str,
    argv: &[String],
    plan: impl FnOnce(&View, Option<&Log>) -> Result<(Value, Action), Fail>,
) -> Result<u8, Fail> {
    match &access.access_log {
        None => {
            let log = Log::open(dir)?;
            let (read, action) = {
                let view = log.view();
                plan(&view, Some(&log))?
            };
            let view = log.view();
            log.append_reserved(access_event(command, argv, dir, log.origin(), read))?;
            action(&view)
        }
        Some(other) => {
            let view = View::open_read_only(dir)?;
            let (read, action) = plan(&view, None)?;
            record_elsewhere(other, access_event(command, argv, dir, view.origin(), read))?;
            action(&view)
        }
    }
}

fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

fn export(
    dir: &Path,
    output: &Path,
    range: Option<(u64, u64)>,
    entries: Option<Vec<u64>>,
    reveal: Vec<String>,
    access: &AccessArgs,
    argv: &[String],
) -> Result<u8, Fail> {
    let output = output.to_path_buf();
    let known = stele_writer::sealed::auditors(dir)?;
    for r in &reveal {
        if !known.contains(r) {
            return Err(Fail::usage(
                format!("--reveal-to {r}: not an auditor of this log"),
                Some(format!(
                    "add it first: stele auditor add {} {r}",
                    dir.display()
                )),
            ));
        }
    }
    with_access(dir, access, "export", argv, |view, log| {
        let need = match (&range, &entries) {
            (Some((a, b)), _) => {
                if a >= b || *b > view.size() {
                    return Err(Fail::usage(
                        format!(
                            "range {a}..{b} is not a non-empty part of the log's {} entries",
                            view.size()
                        ),
                        None,
                    ));
                }
                *b
            }
            (_, Some(list)) => {
                let mut l = list.clone();
                l.sort_unstable();
                l.dedup();
                match l.last() {
                    Some(&m) if m < view.size() => m + 1,
                    Some(&m) => {
                        return Err(Fail::usage(
                            format!("entry {m} is beyond the log's {} entries", view.size()),
                            None,
                        ));
                    }
                    None => return Err(Fail::usage("--entries lists no entry", None)),
                }
            }
            _ => 0,
        };
        // Partial exports need a checkpoint covering them: sign one if we can.
        let latest = view.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
        let resign = need > latest && log.is_some();
        if let (true, Some(log)) = (resign, log) {
            log.checkpoint()?;
        }
        let read = match (&range, &entries) {
            (Some((a, b)), _) => {
                json!({"export": "range", "entries": [a, b], "tree_size": view.size()})
            }
            (_, Some(l)) => json!({"export": "entries", "entries": l, "tree_size": view.size()}),
            _ => json!({"export": "log", "entries": [0, view.size()], "tree_size": view.size()}),
        };
        let mut read = read;
        if !reveal.is_empty() {
            // Who may open the sealed fields of this export (public keys only).
            read["reveal_to"] = json!(reveal);
        }
        let output = output.clone();
        let (range, entries) = (range, entries.clone());
        Ok((
            read,
            Box::new(move |view: &View| {
                let tmp = output.with_extension("partial");
                let f = std::fs::File::create(&tmp)
                    .map_err(|e| Fail::usage(format!("create {}: {e}", tmp.display()), None))?;
                let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
                let pb = progress_bar(view.entries_len(), "export");
                let mut tick = |n: u64| pb.inc(n);
                match (range, entries) {
                    (Some((a, b)), _) => {
                        view.export_range_revealed(a, b, &reveal, &mut w, &mut tick)?
                    }
                    (_, Some(mut l)) => {
                        l.sort_unstable();
                        l.dedup();
                        view.export_entries_revealed(&l, &reveal, &mut w)?
                    }
                    _ => view.export_log_revealed(&reveal, &mut w, &mut tick)?,
                }
                pb.finish_and_clear();
                let f = w.into_inner().map_err(|e| {
                    Fail::usage(format!("write {}: {}", tmp.display(), e.error()), None)
                })?;
                f.sync_all()
                    .map_err(|e| Fail::usage(format!("fsync {}: {e}", tmp.display()), None))?;
                std::fs::rename(&tmp, &output).map_err(|e| {
                    Fail::usage(format!("rename to {}: {e}", output.display()), None)
                })?;
                Ok(0u8)
            }) as Action,
        ))
    })
}

fn load_keys(keys: &[String]) -> Result<Vec<VerifierKey>, Fail> {
    if keys.is_empty() {
        return Err(Fail::usage(
            "no verifier key given",
            Some("did you forget --key? `stele key DIR` prints a log's key".into()),
        ));
    }
    keys.iter().map(|k| parse_vkey(k)).collect()
}

fn parse_vkey(k: &str) -> Result<VerifierKey, Fail> {
    match VerifierKey::parse(k.trim()) {
        Ok(v) => Ok(v),
        Err(e) => match std::fs::read_to_string(k) {
            Ok(text) => VerifierKey::parse(text.trim()).map_err(|e2| {
                Fail::usage(format!("key file {k}: {e2}"), Some("the file must hold a verifier key (name+hex8+base64), as printed by `stele key DIR`".into()))
            }),
            Err(_) => Err(Fail::usage(
                format!("--key {k:?}: {e}"),
                Some("pass the verifier key printed by `stele init` or `stele key DIR` (name+hex8+base64), or a file holding it".into()),
            )),
        },
    }
}

fn load_trusted(path: &Path, keys: &[VerifierKey]) -> Result<stele_core::Checkpoint, Fail> {
    let bytes = std::fs::read(path)
        .map_err(|e| Fail::usage(format!("read {}: {e}", path.display()), None))?;
    let sc = SignedCheckpoint::parse(&bytes)
        .map_err(|e| Fail::usage(format!("trusted checkpoint {}: {e}", path.display()), None))?;
    let v = sc.verify(keys);
    if v.verified_by.is_empty() || !v.bad.is_empty() {
        return Err(Fail::usage(
            format!(
                "trusted checkpoint {} is not signed by the given key",
                path.display()
            ),
            Some("pass the checkpoint note printed by `stele checkpoint DIR` for this log".into()),
        ));
    }
    Ok(sc.checkpoint)
}

fn verify_path(path: &Path, opts: Options) -> Result<Report, Fail> {
    if path.is_dir() {
        let pb = progress_bar(0, "verify");
        let report = verify_dir(path, opts, &mut |done, total| {
            pb.set_length(total);
            pb.set_position(done);
        })?;
        pb.finish_and_clear();
        Ok(report)
    } else {
        let mut f = std::fs::File::open(path)
            .map_err(|e| Fail::usage(format!("open {}: {e}", path.display()), None))?;
        let total = f.metadata().map(|m| m.len()).unwrap_or(0);
        let pb = progress_bar(total, "verify");
        let mut v =
            stele_core::verify::ParallelVerifier::new(opts, stele_writer::view::verify_threads());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| Fail::usage(format!("read {}: {e}", path.display()), None))?;
            if n == 0 {
                break;
            }
            v.push(&buf[..n]);
            pb.inc(n as u64);
        }
        pb.finish_and_clear();
        Ok(v.finish())
    }
}

fn verify(
    path: &Path,
    keys: &[String],
    trusted: Option<&Path>,
    as_json: bool,
    identity: Option<&Path>,
    access: &AccessArgs,
    argv: &[String],
) -> Result<u8, Fail> {
    let keys = load_keys(keys)?;
    let mut opts = Options::new(keys.clone());
    if let Some(id) = identity {
        opts.opener = Some(load_opener(id)?);
    }
    if let Some(t) = trusted {
        opts.trusted = Some(load_trusted(t, &keys)?);
    }
    let report = verify_path(path, opts)?;
    // A log directory records who verified it, after the check so the check
    // sees the bytes exactly as they were.
    let mut access_err = None;
    if path.is_dir() {
        let read = json!({"verify": "log", "entries": report.entries, "verdict": report.verdict});
        let event = access_event(
            "verify",
            argv,
            path,
            report.origin.as_deref().unwrap_or(""),
            read,
        );
        let r = match &access.access_log {
            Some(other) => record_elsewhere(other, event),
            None => Log::open(path)
                .map_err(Fail::from)
                .and_then(|log| log.append_reserved(event).map(|_| ()).map_err(Fail::from)),
        };
        access_err = r.err();
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print_report(&report);
    }
    let code = u8::from(report.verdict != Verdict::Verified);
    if let Some(f) = access_err {
        eprintln!(
            "stele: error: the verification was not recorded as a stele.access entry: {}",
            f.msg
        );
        if let Some(h) = f.hint {
            eprintln!("  hint: {h}");
        }
        return Ok(code.max(if report.verdict == Verdict::Failed {
            1
        } else {
            2
        }));
    }
    Ok(code)
}

fn print_report(r: &Report) {
    let verdict = match r.verdict {
        Verdict::Verified => "verified",
        Verdict::Failed => "FAILED",
        Verdict::Unverified => "unverified",
    };
    println!(
        "{verdict}: {} entries, {} checkpoints, {} bytes ({} export)",
        r.entries, r.checkpoints_total, r.bytes, r.kind
    );
    if let (Some(s), Some(root)) = (r.tree_size, &r.root) {
        println!(
            "tree size {s}, root {root}, signed by {} ({})",
            r.key_name.as_deref().unwrap_or("?"),
            r.key_id.as_deref().unwrap_or("?")
        );
    }
    for f in &r.failures {
        println!("failure {} (line {}): {}", f.code, f.line, f.message);
    }
    if r.failures_total > r.failures.len() as u64 {
        println!(
            "... and {} more failures",
            r.failures_total - r.failures.len() as u64
        );
    }
    for n in &r.notices {
        println!("notice {}: {}", n.code, n.message);
    }
    if let Some(s) = &r.sealed {
        println!(
            "sealed values: {} ({} opened and checked, {} sealed, {} forgotten, {} redacted)",
            s.values, s.opened, s.sealed, s.forgotten, s.redacted
        );
    }
}

fn load_opener(path: &Path) -> Result<stele_core::sealed::OpenerHandle, Fail> {
    let ids = stele_writer::sealed::load_identities(path).map_err(|e| match e {
        Error::KeyPermissions { .. } => {
            Fail::usage(e.to_string(), Some(format!("chmod 600 {}", path.display())))
        }
        e => Fail::usage(
            e.to_string(),
            Some("pass the file age-keygen wrote (AGE-SECRET-KEY-1…)".into()),
        ),
    })?;
    Ok(stele_core::sealed::OpenerHandle(std::sync::Arc::new(
        stele_seal::AgeOpener::new(ids),
    )))
}

// FORMAT 13.8: verify first; only a verified export is revealed.
fn reveal(path: &Path, keys: &[String], identity: &Path) -> Result<u8, Fail> {
    use stele_core::sealed::ValueState;
    let keys = load_keys(keys)?;
    let mut opts = Options::new(keys);
    opts.opener = Some(load_opener(identity)?);
    if path.is_dir() {
        return Err(Fail::usage(
            format!(
                "{} is a directory; reveal reads an export file",
                path.display()
            ),
            Some("make one with `stele export DIR -o FILE --reveal-to age1…`".into()),
        ));
    }
    let report = verify_path(path, opts.clone())?;
    if report.verdict != Verdict::Verified {
        print_report(&report);
        return Err(Fail::usage(
            format!(
                "the export does not verify (verdict {}); nothing is revealed",
                report.verdict.as_str()
            ),
            None,
        ));
    }
    let f = std::fs::File::open(path)
        .map_err(|e| Fail::usage(format!("open {}: {e}", path.display()), None))?;
    let mut r = std::io::BufReader::new(f);
    let mut v = stele_core::StreamVerifier::new(opts);
    v.collect_sealed();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut held: std::collections::VecDeque<(u64, Value)> = Default::default();
    let mut states: std::collections::HashMap<u64, Vec<(String, ValueState)>> = Default::default();
    let mut line = Vec::new();
    let mut emit = |held: &mut std::collections::VecDeque<(u64, Value)>,
                    states: &mut std::collections::HashMap<u64, Vec<(String, ValueState)>>,
                    all: bool|
     -> Result<(), Fail> {
        while held.len() > usize::from(!all) {
            let (i, mut entry) = held.pop_front().expect("non-empty");
            for (ptr, st) in states.remove(&i).unwrap_or_default() {
                let Ok(toks) = stele_core::sealed::pointer_tokens(&ptr) else {
                    continue;
                };
                let mut slot = Some(&mut entry["event"]);
                for t in &toks {
                    slot = slot.and_then(|s| match s {
                        Value::Object(m) => m.get_mut(t),
                        Value::Array(a) => t.parse::<usize>().ok().and_then(|n| a.get_mut(n)),
                        _ => None,
                    });
                }
                let Some(slot) = slot else { continue };
                match st {
                    ValueState::Opened(text) => {
                        *slot = serde_json::from_str(&text).unwrap_or(Value::Null);
                    }
                    other => {
                        let word = match other {
                            ValueState::Forgotten => "forgotten",
                            ValueState::Redacted => "redacted",
                            ValueState::Mismatch => "mismatch",
                            _ => "sealed",
                        };
                        if let Some(ph) = slot.get_mut("stele.sealed") {
                            ph["state"] = json!(word);
                        }
                    }
                }
            }
            writeln!(out, "{entry}")
                .map_err(|e| Fail::usage(format!("write stdout: {e}"), None))?;
        }
        Ok(())
    };
    loop {
        line.clear();
        let n = r
            .read_until(b'\n', &mut line)
            .map_err(|e| Fail::usage(format!("read {}: {e}", path.display()), None))?;
        if n == 0 {
            break;
        }
        v.push(&line);
        for (i, p, st) in v.take_sealed() {
            states.entry(i).or_default().push((p, st));
        }
        if line.first() == Some(&b'{') {
            let entry: Value = serde_json::from_slice(line.trim_ascii_end())
                .map_err(|e| Fail::usage(format!("entry line: {e}"), None))?;
            let i = entry["seq"].as_u64().unwrap_or(0);
            held.push_back((i, entry));
            emit(&mut held, &mut states, false)?;
        }
    }
    v.settle_sealed();
    for (i, p, st) in v.take_sealed() {
        states.entry(i).or_default().push((p, st));
    }
    emit(&mut held, &mut states, true)?;
    out.flush()
        .map_err(|e| Fail::usage(format!("write stdout: {e}"), None))?;
    Ok(0u8)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 60s, 5m, 500ms"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{s:?}: unit must be ms, s, m or h")),
    })
}

fn write_state(path: &Path, note: &str) -> Result<(), Fail> {
    let io = |what: &str, e: std::io::Error| {
        Fail::usage(format!("{what} {}: {e}", path.display()), None)
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    f.write_all(note.as_bytes()).map_err(|e| io("write", e))?;
    f.sync_data().map_err(|e| io("fdatasync", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("rename", e))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("fsync directory of", e))
}

fn monitor(
    dir: &Path,
    key: Option<&str>,
    state: &Path,
    interval: Duration,
    once: bool,
    on_alert: Option<&str>,
) -> Result<u8, Fail> {
    let keys = load_keys(&key.map(str::to_string).into_iter().collect::<Vec<_>>())?;
    loop {
        let trusted = if state.exists() {
            Some(load_trusted(state, &keys)?)
        } else {
            None
        };
        let mut opts = Options::new(keys.clone());
        opts.trusted = trusted.clone();
        let report = verify_path(dir, opts)?;
        if report.verdict == Verdict::Verified {
            let size = report.tree_size.unwrap_or(0);
            let view = View::open_read_only(dir)?;
            if let Some(cp) = view.checkpoint_at(size)
                && trusted.as_ref().is_none_or(|t| size > t.size)
            {
                write_state(state, &cp.note)?;
            }
            eprintln!(
                "stele monitor: ok: {} entries, tree size {size}",
                report.entries
            );
        } else {
            let codes: Vec<&str> = report.failures.iter().map(|f| f.code).collect();
            let kind = if codes.contains(&"rollback") {
                "rollback"
            } else if codes.contains(&"fork") {
                "fork"
            } else if report.verdict == Verdict::Failed {
                "failure"
            } else {
                "unverified"
            };
            let alert = json!({
                "alert": kind,
                "dir": dir.display().to_string(),
                "time": stele_core::entry::Timestamp::from_unix_micros(stele_writer::log::system_micros()).map(|t| t.to_string()),
                "trusted_size": trusted.as_ref().map(|t| t.size),
                "verdict": report.verdict,
                "entries": report.entries,
                "failures": report.failures,
                "notices": report.notices,
            });
            eprintln!("stele monitor: ALERT {kind}: {}", dir.display());
            for f in &report.failures {
                eprintln!("  {} (line {}): {}", f.code, f.line, f.message);
            }
            if let Some(cmd) = on_alert {
                let mut child = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .stdin(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| Fail::usage(format!("--on-alert {cmd:?}: {e}"), None))?;
                if let Some(mut stdin) = child.stdin.take() {
                    let _ = writeln!(stdin, "{alert}");
                }
                let _ = child.wait();
            }
            return Ok(1);
        }
        if once {
            return Ok(0u8);
        }
        std::thread::sleep(interval);
    }
}
