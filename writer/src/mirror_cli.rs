//! `stele mirror`, `stele monitor URL` and `stele restore`: the CLI policy
//! (intervals, retries, alerts) around the library's mirror and remote
//! checks.

use crate::{Fail, Pins, load_pins, load_trusted, write_state};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stele_core::checkpoint::Checkpoint;
use stele_core::note::VerifierKey;
use stele_core::tiles::TileSet;
use stele_writer::mirror::{self, Mirror, MirrorOptions, PollError};
use stele_writer::remote::{
    Fetcher, KeyRanges, Problem, check_extends, check_quorum, fetch_checkpoint, learn_keys,
};
use stele_writer::sealed::SealConfig;
use stele_writer::{Log, View};

/// `stele mirror` options.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Follow a log served over HTTP (stele serve, or any C2SP tlog-tiles log with entry \
bundles) and keep a verified copy in DIR. Each round fetches the signed checkpoint, checks its \
signature with --key, checks that it extends the last checkpoint held (consistency proof from tiles), \
fetches only the entry bundles it lacks, verifies them with the same rules as `stele verify`, and only \
then writes them durably. DIR is a log directory: `stele verify`, `export`, `cat`, `prove` and \
`serve --read-only` read it.",
    after_help = "Alerts (stderr, and --on-alert CMD run via sh -c with the alert JSON on stdin, as \
`stele monitor`): signature, rollback, fork (both signed checkpoints kept in DIR/evidence/), mismatch \
(entries that do not hash to the signed tree or break a rule), bad_tile, bad_response, origin, and \
unreachable (after --alert-after without a successful round). Exit status with --once: 0 up to date, \
1 alert, 2 usage or local I/O error."
)]
pub(crate) struct MirrorArgs {
    /// The origin's base URL (e.g. http://127.0.0.1:8080).
    url: String,
    /// The mirror directory (created if missing).
    dir: PathBuf,
    /// The log's verifier key (or a file holding it). Repeatable: pin a revoked key's published
    /// successor beside it.
    #[arg(long = "key", value_name = "VKEY", required = true)]
    keys: Vec<String>,
    /// A key revoked from a tree size (docs/FORMAT.md 15.3): its signatures on checkpoints of
    /// that size or larger are refused, and so are those of a key it handed over to unless that
    /// key is pinned with --key. Repeatable.
    #[arg(long = "revoked", value_name = "VKEY@SIZE")]
    revoked: Vec<String>,
    /// Time between rounds (at least 10ms).
    #[arg(long, default_value = "60s", value_parser = crate::parse_interval)]
    interval: Duration,
    /// One round (catch up fully), then exit.
    #[arg(long)]
    once: bool,
    /// A shell command run on alert, with the alert JSON on stdin.
    #[arg(long, value_name = "CMD")]
    on_alert: Option<String>,
    /// A file holding a bearer token for origins whose reads need one.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Deadline of each HTTP request.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration)]
    timeout: Duration,
    /// Alert when the origin has been unreachable this long (with --once: after the retries).
    #[arg(long, default_value = "5m", value_parser = crate::parse_duration)]
    alert_after: Duration,
    /// With --once: attempts before an unreachable origin is an alert.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Most entry bytes fetched and verified per durable commit.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    chunk_bytes: usize,
    /// Entry bundles fetched at once (memory: up to twice this many x 16.8 MB from a hostile origin).
    #[arg(long, value_name = "N", default_value_t = 16)]
    parallel: usize,
    /// A witness policy (C2SP tlog-policy): advance only to checkpoints its quorum cosigned;
    /// alert `quorum` on one without.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Also copy the log's sealed-field openings (ciphertext) and its data keys wrapped to its
    /// auditors, and apply its forget list (the origin's GET /v1/sealed; the token needs the
    /// reveal scope). Without it nothing sealed is copied: only commitments.
    #[arg(long, requires = "token_file")]
    with_openings: bool,
}

fn now_secs() -> i64 {
    stele_writer::log::system_micros() / 1_000_000
}

fn now_ts() -> Option<String> {
    stele_core::entry::Timestamp::from_unix_micros(stele_writer::log::system_micros())
        .map(|t| t.to_string())
}

fn code_of(p: &Problem) -> &'static str {
    match p {
        Problem::Signature(_) => "bad_signature",
        Problem::Origin(_) => "origin_mismatch",
        Problem::Rollback(_) => "rollback",
        Problem::Fork(_) => "fork",
        Problem::Mismatch(_) => "root_mismatch",
        Problem::BadTile { .. } => "bad_tile",
        Problem::Quorum { .. } => "quorum_not_met",
        Problem::Fetch(_) => p.kind(),
    }
}

// The alert JSON: `stele monitor`'s fields, plus where it came from.
fn alert_json(p: &Problem, url: &str, dir: Option<&Path>, trusted: Option<u64>) -> Value {
    // As core reports quorum_not_met (`stele monitor DIR --policy`).
    let (expected, found) = match p {
        Problem::Quorum {
            quorum,
            cosigned_by,
            ..
        } => (
            json!(quorum),
            json!(if cosigned_by.is_empty() {
                "no witness".to_string()
            } else {
                cosigned_by.join(", ")
            }),
        ),
        _ => (Value::Null, Value::Null),
    };
    json!({
        "alert": p.kind(),
        "url": url,
        "dir": dir.map(|d| d.display().to_string()),
        "time": now_ts(),
        "trusted_size": trusted,
        "verdict": "failed",
        "entries": null,
        "failures": [{
            "code": code_of(p),
            "entry": null,
            "line": 0,
            "offset": 0,
            "expected": expected,
            "found": found,
            "message": p.to_string(),
        }],
        "notices": [],
    })
}

/// Prints an alert and runs --on-alert with its JSON on stdin.
pub(crate) fn raise(who: &str, alert: &Value, on_alert: Option<&str>) -> Result<(), Fail> {
    let kind = alert["alert"].as_str().unwrap_or("?");
    eprintln!("stele {who}: ALERT {kind}");
    if let Some(fs) = alert["failures"].as_array() {
        for f in fs {
            eprintln!(
                "  {}: {}",
                f["code"].as_str().unwrap_or("?"),
                crate::terminal_safe(f["message"].as_str().unwrap_or(""), false)
            );
        }
    }
    if let Some(e) = alert["evidence"].as_str() {
        eprintln!("  evidence kept in {e}");
    }
    if let Some(cmd) = on_alert {
        crate::run_on_alert(cmd, alert)?;
    }
    Ok(())
}

fn read_token(path: Option<&Path>) -> Result<Option<String>, Fail> {
    let Some(p) = path else { return Ok(None) };
    // A bearer token is a secret like a key: its file is 0600.
    let t = stele_writer::key::load_private(p).map_err(|e| match e {
        stele_writer::Error::KeyPermissions { mode, .. } => Fail::usage(
            format!(
                "--token-file {} has mode {mode:04o}: a token file must not be readable by group or others",
                p.display()
            ),
            Some(format!("run: chmod 600 {}", p.display())),
        ),
        e => Fail::usage(format!("--token-file: {e}"), None),
    })?;
    let t = t.trim().to_string();
    if t.is_empty() || t.contains(char::is_whitespace) {
        return Err(Fail::usage(
            format!(
                "--token-file {}: expected one token on one line",
                p.display()
            ),
            Some("the file holds the token printed by `stele token add`".into()),
        ));
    }
    Ok(Some(t))
}

/// Runs `stele mirror`.
pub(crate) fn run_mirror(a: MirrorArgs) -> Result<u8, Fail> {
    let pins = load_pins(&a.keys, &a.revoked)?;
    let mut opts = MirrorOptions::new(pins.first);
    opts.also = pins.also;
    opts.revoked = pins.revoked;
    opts.token = read_token(a.token_file.as_deref())?;
    opts.timeout = a.timeout;
    opts.chunk_bytes = a.chunk_bytes;
    opts.parallel = a.parallel;
    opts.openings = a.with_openings;
    opts.policy = a
        .policy
        .as_deref()
        .map(crate::witness_cli::load_policy)
        .transpose()?;
    let mut m = Mirror::open(&a.dir, &a.url, opts).map_err(|e| match e {
        stele_writer::Error::AlreadyExists { dir } => Fail::usage(
            format!("{} holds a writer's log, not a mirror", dir.display()),
            Some("choose an empty directory for the mirror".into()),
        ),
        stele_writer::Error::Locked { dir } => Fail::usage(
            format!("another stele mirror is running on {}", dir.display()),
            None,
        ),
        e => Fail::from(e),
    })?;
    eprintln!(
        "stele mirror: {} -> {} ({} verified entries held)",
        a.url,
        crate::shown_path(&a.dir),
        m.size()
    );
    let mut status = mirror::read_status(&a.dir).unwrap_or_default();
    status.url = a.url.clone();
    status.alerts = 0;
    let mut down_since: Option<Instant> = None;
    let mut attempts = 0u32;
    let mut alerted: Option<&'static str> = None;
    loop {
        let before = m.fetcher().bytes();
        let size_before = m.size();
        let t0 = Instant::now();
        let r = m.poll();
        status.last_poll = now_secs();
        status.verified_size = m.size();
        if let Some(n) = m.origin_seen() {
            status.origin_size = n;
        }
        status.bytes_fetched = m.fetcher().bytes();
        match r {
            Ok(p) => {
                down_since = None;
                attempts = 0;
                alerted = None;
                status.origin_size = p.origin_size;
                if m.size() >= p.origin_size {
                    status.caught_up_at = status.last_poll;
                }
                eprintln!(
                    "stele mirror: ok: {} verified entries (origin signed {}), +{} in {:.2?}, {} bytes fetched",
                    p.size,
                    p.origin_size,
                    p.added,
                    t0.elapsed(),
                    m.fetcher().bytes() - before
                );
                let _ = mirror::write_status(&a.dir, &status);
                if a.once {
                    return Ok(0);
                }
            }
            Err(PollError::Local(e)) => {
                let _ = mirror::write_status(&a.dir, &status);
                return Err(e.into());
            }
            Err(PollError::Origin(p)) if p.is_transient() && m.size() > size_before => {
                // Cut short (a rate limit, a dropped connection) after some
                // chunks were committed: progress, so not "down"; go on.
                down_since = None;
                attempts = 0;
                eprintln!(
                    "stele mirror: {} verified entries so far; retrying: {p}",
                    m.size()
                );
                let _ = mirror::write_status(&a.dir, &status);
                std::thread::sleep(if a.once {
                    Duration::from_millis(500)
                } else {
                    a.interval
                });
                continue;
            }
            Err(PollError::Origin(p)) => {
                let trusted = m.held().map(|h| h.checkpoint.size);
                let transient = p.is_transient();
                let since = if transient {
                    *down_since.get_or_insert_with(Instant::now)
                } else {
                    Instant::now()
                };
                attempts += 1;
                let due = if transient {
                    if a.once {
                        attempts >= a.retries.max(1)
                    } else {
                        since.elapsed() >= a.alert_after
                    }
                } else {
                    true
                };
                if !due {
                    eprintln!("stele mirror: retrying: {p}");
                    std::thread::sleep(if a.once {
                        Duration::from_millis(500)
                    } else {
                        a.interval
                    });
                    continue;
                }
                if alerted != Some(p.kind()) || a.once {
                    let mut alert = alert_json(&p, &a.url, Some(&a.dir), trusted);
                    if transient {
                        alert["failures"][0]["message"] = json!(format!(
                            "the origin has been unreachable for {:.0?} ({} attempts): {p}",
                            since.elapsed(),
                            attempts
                        ));
                    }
                    if let Some(e) = m.last_evidence() {
                        alert["evidence"] = json!(e.display().to_string());
                    }
                    status.alerts += 1;
                    status.last_alert = Some(p.kind().to_string());
                    let _ = mirror::write_status(&a.dir, &status);
                    raise("mirror", &alert, a.on_alert.as_deref())?;
                    alerted = Some(p.kind());
                }
                if a.once {
                    return Ok(1);
                }
            }
        }
        std::thread::sleep(a.interval);
    }
}

/// Runs `stele monitor URL`: per round only the checkpoint and the tiles of
/// one consistency proof. With a policy, the checkpoint must meet its
/// quorum. After a key rotation, the origin's key history (`/v1/keys`, each
/// rotation proved by one entry and its covering checkpoint, checked by
/// core) teaches it the new key; learned keys are not saved: the proofs are
/// fetched and checked again after a restart.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_remote_monitor(
    url: &str,
    pins: Pins,
    state: &Path,
    interval: Duration,
    once: bool,
    on_alert: Option<&str>,
    token_file: Option<&Path>,
    policy: Option<&Path>,
) -> Result<u8, Fail> {
    let policy = policy.map(crate::witness_cli::load_policy).transpose()?;
    let f = Fetcher::new(url, read_token(token_file)?, Duration::from_secs(30))
        .map_err(|e| Fail::usage(e, None))?;
    let mut keys = KeyRanges::pinned(pins.first, pins.also, pins.revoked);
    let all =
        |k: &KeyRanges| -> Vec<VerifierKey> { k.all().iter().map(|(k, _)| k.clone()).collect() };
    // A state file that cannot be read once it was there is an alert
    // (`unreadable`), as in `stele monitor DIR`.
    let watched = state.exists();
    let mut trusted_size = None;
    for round in 0u64.. {
        let held = (|| -> Result<Option<(Checkpoint, String)>, Fail> {
            if !state.exists() {
                return Ok(None);
            }
            let c = match load_trusted(state, &all(&keys)) {
                Ok(c) => c,
                // Signed by a key the log rotated to (learned last run).
                Err(e) => match learn_keys(&f, &mut keys, None) {
                    Ok(l) if !l.is_empty() => load_trusted(state, &all(&keys))?,
                    _ => return Err(e),
                },
            };
            let note = String::from_utf8(crate::read_side_file(state, "trusted checkpoint")?)
                .map_err(|e| Fail::usage(format!("read {}: {e}", state.display()), None))?;
            Ok(Some((c, note)))
        })();
        let held = match held {
            Ok(h) => h,
            Err(e) if watched || round > 0 => {
                let alert = crate::unreadable_alert(json!(url), None, trusted_size, &e.msg);
                raise("monitor", &alert, on_alert)?;
                return Ok(1);
            }
            Err(e) => return Err(e),
        };
        if let Some((h, _)) = &held {
            trusted_size = Some(h.size);
        }
        let (b0, r0) = (f.bytes(), f.requests());
        let from = format!("{}/checkpoint", f.base());
        let r = check_round(&f, &mut keys, held.as_ref().map(|h| &h.0)).and_then(|(sc, note)| {
            if let Some(p) = &policy {
                let _ = check_quorum(p, &sc, &from)?;
            }
            Ok((sc, note))
        });
        let (bytes, reqs) = (f.bytes() - b0, f.requests() - r0);
        match r {
            Ok((sc, note)) => {
                if held
                    .as_ref()
                    .is_none_or(|(h, _)| sc.checkpoint.size > h.size)
                {
                    write_state(state, &note)?;
                }
                eprintln!(
                    "stele monitor: ok: tree size {} (held {}), {bytes} bytes in {reqs} requests",
                    sc.checkpoint.size,
                    held.as_ref().map_or(0, |(h, _)| h.size)
                );
            }
            Err(p) => {
                let mut alert = alert_json(&p, url, None, held.as_ref().map(|(h, _)| h.size));
                if matches!(
                    p,
                    Problem::Fork(_) | Problem::Rollback(_) | Problem::Quorum { .. }
                ) {
                    // Keep the served checkpoint next to the state file.
                    if let Ok((_, note)) = fetch_checkpoint(&f, &keys) {
                        let ev =
                            state.with_extension(format!("{}-{}.checkpoint", p.kind(), now_secs()));
                        write_state(&ev, &note)?;
                        alert["evidence"] = json!(ev.display().to_string());
                    }
                }
                raise("monitor", &alert, on_alert)?;
                return Ok(1);
            }
        }
        if once {
            return Ok(0);
        }
        std::thread::sleep(interval);
    }
    unreachable!("the rounds end by returning")
}

// One round of the remote monitor: the served checkpoint, signed by a key
// whose range holds its size (learning the origin's rotations when the
// known keys do not sign it), extending the held one and every covering
// checkpoint of a rotation learned on the way.
fn check_round(
    f: &Fetcher,
    keys: &mut KeyRanges,
    held: Option<&Checkpoint>,
) -> Result<(stele_core::checkpoint::SignedCheckpoint, String), Problem> {
    let mut covering = Vec::new();
    let (sc, note) = match fetch_checkpoint(f, keys) {
        Err(Problem::Signature(why)) => {
            match learn_keys(f, keys, held.map(|h| h.origin.as_str())) {
                Ok(l) if !l.is_empty() => covering = l,
                Ok(_) | Err(Problem::Fetch(_)) => return Err(Problem::Signature(why)),
                Err(p) => return Err(p),
            }
            fetch_checkpoint(f, keys)?
        }
        r => r?,
    };
    let mut tiles = TileSet::new(sc.checkpoint.size);
    if let Some(h) = held {
        check_extends(f, h, &sc.checkpoint, &mut tiles)?;
    }
    for l in &covering {
        check_extends(f, &l.covering.checkpoint, &sc.checkpoint, &mut tiles)?;
    }
    Ok((sc, note))
}

/// `stele restore` options.
#[derive(clap::Args, Debug)]
pub(crate) struct RestoreArgs {
    /// The mirror directory (made by `stele mirror`).
    mirror_dir: PathBuf,
    /// The new log directory (must not hold a log).
    new_dir: PathBuf,
    /// The log's private key file (mode 0600); it stays where it is.
    #[arg(long, value_name = "FILE")]
    signing_key: PathBuf,
    /// The log's sealing rules, as `stele init --seal` gave them (a mirror
    /// does not copy them). Repeatable.
    #[arg(long = "seal", value_name = "POINTER")]
    seal: Vec<String>,
    /// The data subject's pointer, as `stele init --subject` gave it.
    #[arg(long, value_name = "POINTER", default_value = "/actor")]
    subject: String,
    /// Restore a log holding sealed fields without sealing rules: later
    /// events are written in the clear.
    #[arg(long, conflicts_with = "seal")]
    unsealed: bool,
}

// The restored log's sealing rules: a mirror holding sealed fields is
// restored with rules (`--seal`) or, explicitly, without (`--unsealed`), so
// a restore never silently writes in the clear what the log sealed.
fn seal_config(a: &RestoreArgs) -> Result<SealConfig, Fail> {
    let cfg = SealConfig {
        seal: a.seal.clone(),
        subject: a.subject.clone(),
    };
    cfg.check()?;
    if cfg.seal.is_empty() && !a.unsealed && mirror::holds_sealed(&a.mirror_dir)? {
        return Err(Fail::usage(
            format!(
                "the log in {} has sealed fields, and a mirror does not copy its sealing rules",
                a.mirror_dir.display()
            ),
            Some(
                "give them as stele init did (--seal POINTER ... [--subject POINTER]), or pass --unsealed to write later events in the clear"
                    .into(),
            ),
        ));
    }
    Ok(cfg)
}

// A URL without its `user:password@` (a mirror made before such URLs were
// refused): the restored log's stele.recovery entry is signed and kept
// forever.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Runs `stele restore`.
pub(crate) fn run_restore(a: RestoreArgs) -> Result<u8, Fail> {
    if !mirror::is_mirror(&a.mirror_dir) {
        return Err(Fail::usage(
            format!(
                "{} is not a mirror (no mirror.json)",
                a.mirror_dir.display()
            ),
            Some("restore takes a directory made by `stele mirror URL DIR --key VKEY`".into()),
        ));
    }
    let seal = seal_config(&a)?;
    let state = mirror::restore(&a.mirror_dir, &a.new_dir, &a.signing_key, &seal)?;
    // Opening runs the writer's full recovery scan over the copy.
    let log = Log::open(&a.new_dir)?;
    let view: View = log.view();
    let held = view.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
    let cfg = mirror::read_config(&a.mirror_dir)?;
    let _ = log.append_reserved(json!({
        "type": "stele.recovery",
        "reason": "restored from a mirror",
        "mirror_url": without_credentials(&cfg.url),
        "entries_kept": state.size,
        "checkpoint_size": held,
    }))?;
    let cp = log.checkpoint()?;
    eprintln!(
        "stele restore: {} entries restored from {} (signed up to {held}); the log continues at entry {} and is signed at size {}",
        state.size,
        crate::shown_path(&a.mirror_dir),
        state.size,
        cp.checkpoint.size
    );
    println!("{}", log.verifier());
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_are_cut_from_a_url() {
        for (u, want) in [
            (
                "http://admin:S3cret@host:8080/log?x=1",
                "http://host:8080/log?x=1",
            ),
            ("https://host/a@b", "https://host/a@b"),
            ("http://u@h", "http://h"),
            ("no-scheme", "no-scheme"),
        ] {
            assert_eq!(super::without_credentials(u), want);
        }
    }
}
