//! Key rotation (docs/FORMAT.md 15, writer/README.md "Key rotation"): the
//! writer's key set, and the steps of a rotation, each durable before the
//! next, so that a crash at any point leaves a log that opens and signs with
//! keys a verifier accepts.

use super::*;
use std::borrow::Cow;
use stele_core::entry::parse_entry;
use stele_core::verify::KEY_TYPE;
use stele_core::{SignerKey, VerifierKey};

/// The largest `--overlap`: a million checkpoints (11.6 days at one a
/// second) is far more than any verifier needs to learn of a rotation, and
/// stays an I-JSON integer (the `stele.key` event's `overlap`, below 2^53)
/// whose count each signature walks back at most once.
pub const MAX_OVERLAP: u64 = 1_000_000;

fn check_overlap(overlap: u64) -> std::result::Result<(), String> {
    if overlap == 0 {
        return Err("--overlap must be at least 1: the old key signs the checkpoint that covers the stele.key event".into());
    }
    if overlap > MAX_OVERLAP {
        return Err(format!(
            "--overlap {overlap} is beyond the maximum {MAX_OVERLAP} checkpoints"
        ));
    }
    Ok(())
}

/// A key the log signed with before, as the configuration records it.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub(crate) struct RetiredKey {
    /// Its key file (relative to the log directory unless absolute).
    pub(crate) key_file: PathBuf,
    /// Its verifier key.
    pub(crate) key: String,
    /// The tree size from which its successor signs (the `stele.key` event's `from`).
    pub(crate) to: u64,
    /// How many checkpoints of size ≥ `to` it co-signs.
    pub(crate) overlap: u64,
}

/// A rotation asked for but not yet complete: the new key's file exists;
/// the `stele.key` event may or may not be in the log.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub(crate) struct PendingRotation {
    /// The new key's file.
    pub(crate) key_file: PathBuf,
    /// `--overlap`.
    pub(crate) overlap: u64,
    /// The log had at least this many entries when the rotation was asked
    /// for: its `stele.key` event, if written, is at this index or later.
    pub(crate) after: u64,
}

/// The keys a log signs with.
#[derive(Debug)]
pub(crate) struct KeySet {
    /// The current key.
    pub(crate) signer: SignerKey,
    /// The key it replaced, the `from` of the replacement and the overlap.
    previous: Option<(SignerKey, u64, u64)>,
    /// A pending rotation's new key: until it completes, both sign.
    pending: Option<SignerKey>,
    /// Every verifier key of the log's history, the current one last.
    history: Vec<VerifierKey>,
}

/// What [`Log::rotate_key`] did.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The new verifier key.
    pub key: VerifierKey,
    /// The key it replaces.
    pub replaces: VerifierKey,
    /// The index of the `stele.key` event.
    pub entry: u64,
    /// The tree size from which the new key signs.
    pub from: u64,
    /// The new key's file.
    pub key_file: PathBuf,
}

fn resolve(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// Replaces `stele.json` atomically and durably (temporary file, fsync,
/// rename, fsync of the directory); a temporary file left by a crash is
/// removed first.
pub(crate) fn write_config(fs: &dyn Fs, dir: &Path, c: &Config) -> Result<()> {
    let tmp = dir.join(TMP_CONFIG);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(Error::io("remove", &tmp, e)),
        _ => {}
    }
    let mut text = serde_json::to_string_pretty(c).expect("config serializes");
    text.push('\n');
    write_new_file(fs, dir, files::CONFIG, FileRole::Config, text.as_bytes())
}

impl KeySet {
    /// The keys the configuration names. `signer` is the current key when
    /// the caller has it already (a new log).
    pub(crate) fn load(dir: &Path, c: &Config, signer: Option<SignerKey>) -> Result<Self> {
        let signer = match signer {
            Some(s) => s,
            None => key::load(&resolve(dir, &c.key_file))?,
        };
        let mut history = Vec::new();
        for r in &c.retired_keys {
            history.push(VerifierKey::parse(&r.key).map_err(|e| Error::BadKey {
                path: dir.join(files::CONFIG),
                why: format!("retired key: {e}"),
            })?);
        }
        // The previous key co-signs the overlap if its file is still there
        // (an operator who deleted it ends the overlap).
        let previous = match c.retired_keys.last() {
            Some(r) => match key::load(&resolve(dir, &r.key_file)) {
                Ok(k) => Some((k, r.to, r.overlap)),
                Err(Error::Io { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let pending = match &c.rotation {
            Some(p) => Some(key::load(&resolve(dir, &p.key_file))?),
            None => None,
        };
        history.push(signer.verifier());
        history.extend(pending.as_ref().map(SignerKey::verifier));
        Ok(Self {
            signer,
            previous,
            pending,
            history,
        })
    }

    /// Every key the stored checkpoints may be signed with.
    pub(crate) fn verifiers(&self) -> &[VerifierKey] {
        &self.history
    }

    /// The key the genesis entry names: the first of the history.
    pub(crate) fn genesis(&self) -> &VerifierKey {
        &self.history[0]
    }

    /// Signs a checkpoint: FORMAT 15.5, the replaced key first during its
    /// overlap (the first `overlap` checkpoints of size ≥ `from`, counted in
    /// `stored`), and both keys while a rotation is pending.
    pub(crate) fn sign(&self, cp: &Checkpoint, stored: &Checkpoints) -> Result<String> {
        let mut signers = Vec::with_capacity(2);
        if let Some((old, from, overlap)) = &self.previous {
            // Counted up to `overlap` only: counting all of them cost each
            // signature a walk back to the rotation (870-948 appends/s
            // against 3,498-3,737 without the old key, 206k checkpoints
            // after it: `stele bench-http --mode single`, --checkpoint-every 1).
            let cosigned = stored
                .iter()
                .rev()
                .take_while(|c| c.checkpoint.size >= *from)
                .take(usize::try_from(*overlap).unwrap_or(usize::MAX))
                .count() as u64;
            if cp.size >= *from && cosigned < *overlap {
                signers.push(old);
            }
        }
        signers.push(&self.signer);
        signers.extend(self.pending.as_ref());
        cp.sign_with(&signers)
            .map_err(|e| Error::Sign(e.to_string()))
    }
}

impl Log {
    /// Rotates the signing key (docs/FORMAT.md 15): makes a new key under
    /// the same name beside the current key file (mode 0600), records the
    /// rotation in the configuration, appends the `stele.key` event and
    /// signs its covering checkpoint with both keys; the old key co-signs
    /// the first `overlap` (≥ 1) checkpoints from the event on. Each step is
    /// durable before the next; writer/README.md says what a crash leaves.
    pub fn rotate_key(&self, overlap: u64) -> Result<Rotated> {
        let _one = self.shared.rotating.lock().unwrap();
        // The new key's file is in the configuration, read back below.
        let _ = request_rotation(
            &self.shared.dir,
            self.shared.opts.fs.as_ref(),
            overlap,
            self.size(),
        )?;
        self.shared
            .complete_rotation()?
            .ok_or_else(|| Error::Rotation("the rotation was not recorded".into()))
    }

    /// Every verifier key of the log's history, the current one last.
    pub fn key_history(&self) -> Vec<VerifierKey> {
        self.shared.keys.lock().unwrap().history.clone()
    }
}

/// Asks for a rotation (the first two steps): a new key file, then the
/// configuration naming it as pending. Whoever holds the log completes it:
/// [`Log::rotate_key`] at once, a running `stele serve` within a tick of
/// its checkpoint timer, any writer when it next opens the log. Returns
/// the new key's file.
pub fn request_rotation(dir: &Path, fs: &dyn Fs, overlap: u64, after: u64) -> Result<PathBuf> {
    // Refused before anything is written: a pending rotation whose event
    // cannot be written would stop every open of the log.
    check_overlap(overlap).map_err(Error::Rotation)?;
    let mut c = read_config(dir)?;
    if let Some(p) = &c.rotation {
        return Err(Error::Rotation(format!(
            "a rotation to the key in {} is already under way: it completes when the log's writer next signs or opens it",
            p.key_file.display()
        )));
    }
    let current = key::load(&resolve(dir, &c.key_file))?;
    let new = key::generate(current.name())?;
    // Beside the current key file, named by the new key's ID.
    let name = format!("key-{}", new.verifier().id_hex());
    let file = match c.key_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(&name),
        _ => PathBuf::from(&name),
    };
    key::save(fs, &resolve(dir, &file), &new)?;
    c.rotation = Some(PendingRotation {
        key_file: file.clone(),
        overlap,
        after,
    });
    write_config(fs, dir, &c)?;
    Ok(resolve(dir, &file))
}

/// Cancels a pending rotation whose `stele.key` event is not in the log
/// (`stele key rotate DIR --abort`): the configuration no longer names the
/// new key; its file is kept (a checkpoint may carry its signature beside
/// the current key's). Takes the log's lock; refused when the event is in
/// the log (opening the log completes that rotation). Returns the new key's
/// file.
pub fn abort_rotation(dir: &Path, fs: &dyn Fs) -> Result<PathBuf> {
    let _lock = lock_dir(dir)?;
    let mut c = read_config(dir)?;
    let Some(p) = c.rotation.clone() else {
        return Err(Error::Rotation(format!(
            "{} has no rotation under way",
            dir.display()
        )));
    };
    let file = resolve(dir, &p.key_file);
    // The event names the new key; without its file nothing can match it.
    if let Ok(new) = key::load(&file) {
        let want = new.verifier().to_string();
        let view = View::open_read_only(dir)?;
        for i in p.after..view.size() {
            let line = view.entry(i)?;
            let Ok(e) = parse_entry(&line) else {
                continue;
            };
            if e.event_type() == Some(KEY_TYPE) && e.field_string("key").as_deref() == Some(&*want)
            {
                return Err(Error::Rotation(format!(
                    "the rotation's stele.key event is in the log (entry {i}): it cannot be cancelled; open the log (e.g. `stele checkpoint {}`) to complete it",
                    dir.display()
                )));
            }
        }
    }
    c.rotation = None;
    write_config(fs, dir, &c)?;
    Ok(file)
}

impl Shared {
    /// Completes a pending rotation, if the configuration has one: loads
    /// the new key (both sign from now), finds or appends the `stele.key`
    /// event, signs the checkpoint covering it, then records the new key as
    /// current. Safe to repeat after a crash at any point. The caller holds
    /// `rotating`.
    pub(super) fn complete_rotation(&self) -> Result<Option<Rotated>> {
        let mut c = read_config(&self.dir)?;
        let Some(p) = c.rotation.clone() else {
            return Ok(None);
        };
        // A pending rotation recorded by an older stele that did not check
        // its overlap: its stele.key event cannot be written.
        if let Err(why) = check_overlap(p.overlap) {
            return Err(Error::Rotation(format!(
                "{}: the pending rotation cannot complete ({why}); nothing of it is in the log: cancel it with `stele key rotate {} --abort` (or remove the \"rotation\" field from {})",
                self.dir.join(files::CONFIG).display(),
                self.dir.display(),
                files::CONFIG
            )));
        }
        let new = key::load(&resolve(&self.dir, &p.key_file))?;
        let old = {
            let mut k = self.keys.lock().unwrap();
            if k.pending.is_none() {
                k.history.push(new.verifier());
                k.pending = Some(new.clone());
            }
            k.signer.clone()
        };
        let (newv, oldv) = (new.verifier().to_string(), old.verifier().to_string());
        let entry = match self.find_key_event(p.after, &newv)? {
            Some(i) => i,
            None => {
                let event = |seq: u64| {
                    serde_json::json!({
                        "type": KEY_TYPE,
                        "key": newv,
                        "replaces": oldv,
                        "from": seq + 1,
                        "overlap": p.overlap,
                    })
                };
                self.append_at_next(event)?
            }
        };
        let from = entry + 1;
        // The covering checkpoint (or a later one), signed by both keys.
        // (With witnesses, only once their quorum cosigned it.)
        let covered = {
            let s = self.store.lock().unwrap();
            s.cps.last().is_some_and(|cp| cp.checkpoint.size >= from)
        };
        if !covered {
            let _ = self.sign_now()?;
        }
        c.retired_keys.push(RetiredKey {
            key_file: c.key_file.clone(),
            key: oldv,
            to: from,
            overlap: p.overlap,
        });
        c.key_file = p.key_file.clone();
        c.rotation = None;
        write_config(self.opts.fs.as_ref(), &self.dir, &c)?;
        let mut k = self.keys.lock().unwrap();
        k.previous = Some((old.clone(), from, p.overlap));
        k.signer = new.clone();
        k.pending = None;
        Ok(Some(Rotated {
            key: new.verifier(),
            replaces: old.verifier(),
            entry,
            from,
            key_file: resolve(&self.dir, &p.key_file),
        }))
    }

    // The index of the stele.key event naming `key`, at `after` or later.
    fn find_key_event(&self, after: u64, key: &str) -> Result<Option<u64>> {
        let view = self.view_locked(&self.store.lock().unwrap());
        for i in after..view.size() {
            let line = view.entry(i)?;
            let Ok(e) = parse_entry(&line) else {
                continue;
            };
            if e.event_type() == Some(KEY_TYPE) && e.field_string("key").as_deref() == Some(key) {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    // Appends the event `make(seq)` as entry `seq`, the next index: tried
    // again if another append took that index first.
    fn append_at_next(&self, make: impl Fn(u64) -> Value) -> Result<u64> {
        loop {
            let seq = self.build.lock().unwrap().next_seq;
            if let Some(r) =
                self.append_events_at(Cow::Owned(vec![make(seq)]), Appended::Internal, Some(seq))?
            {
                return Ok(r[0].seq);
            }
        }
    }

    /// For the checkpoint timer of a running writer (`stele serve`): a
    /// rotation asked for by `stele key rotate` while the log was held
    /// (the configuration changed) is completed here.
    pub(super) fn poll_rotation(&self) {
        use std::os::unix::fs::MetadataExt;
        let Ok(m) = std::fs::metadata(self.dir.join(files::CONFIG)) else {
            return;
        };
        let stamp = (m.ino(), m.mtime(), m.mtime_nsec(), m.len());
        {
            let mut last = self.config_seen.lock().unwrap();
            if *last == Some(stamp) {
                return;
            }
            *last = Some(stamp);
        }
        // A failure is retried at the next change; the log stays consistent.
        let _one = self.rotating.lock().unwrap();
        let _ = self.complete_rotation();
    }
}
