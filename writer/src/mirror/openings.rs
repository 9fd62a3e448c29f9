//! Copying sealed-field openings to a mirror (`stele mirror --with-openings`,
//! docs/FORMAT.md 13): the origin's side, the body of `GET /v1/sealed`
//! ([`body`]), and the mirror's: the body parsed and checked against the
//! verified entries ([`parse`]), stored in the writer's sidecar layout
//! (`DIR/sealed/`, see [`crate::sealed`]) and the origin's forget list
//! applied ([`apply`]).
//!
//! ```text
//! stele-sealed v1
//! auditor <age1… recipient>                               every auditor of the log
//! forgotten <key ID>                                      the whole forget list
//! wrap <age1… recipient> sealed-key <key ID> <base64>      wraps of the key IDs the records use
//! <key ID> opening <index> <base64> <pointer>             the sidecar's records of entries [from, to)
//! <key ID> redacted <index> <pointer>
//! more <key ID>                                           a wraps page (`wraps=`) goes on after this key ID
//! ```
//!
//! With `wraps=all` (or `wraps=<key ID>`: the key IDs after it) and an
//! empty range, the body holds, instead of a range's wraps, the wraps of
//! every key ID (not forgotten) for the listed auditors, in key ID order,
//! at most [`MAX_WRAPS_PAGE`] a page (whole key IDs): a mirror fetches them
//! when the origin has an auditor it has not, since `stele auditor add`
//! wraps the existing keys too, which no range it copied again would bring.
//!
//! Only ciphertext crosses: openings encrypted under data keys, and data
//! keys wrapped to the auditors. Never a value, never a data key.

use crate::error::{Error, Result};
use crate::fs::Fs;
use crate::sealed::{self as side, SIDECAR};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use stele_core::sealed::{KeyId, Record, find_placeholders};

/// The first line of a `GET /v1/sealed` body.
pub const FORMAT_LINE: &str = "stele-sealed v1";
/// Largest wrap (an age file to one recipient is about 200 bytes).
pub const MAX_WRAP_BYTES: usize = 64 << 10;
/// Most auditors a body may name.
pub const MAX_AUDITORS: usize = 1000;
/// Largest body the origin builds (in memory: its wraps come before its
/// records); a range whose records are more is refused, naming this. A
/// mirror asks for its chunk of entries (16 MiB by default), whose records
/// are far less.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Most wraps in one page of `wraps=` (then whole key IDs).
pub const MAX_WRAPS_PAGE: usize = 4096;

/// The refusal of a range whose body would pass [`MAX_BODY_BYTES`].
pub fn too_large(from: u64, to: u64) -> Error {
    Error::OutOfRange(format!(
        "the sealed-field records of entries {from}..{to} are more than {} MiB: ask for fewer entries",
        MAX_BODY_BYTES >> 20
    ))
}

/// The body of `GET /v1/sealed?from=A&to=B` for the log (or mirror) in
/// `dir` holding `size` entries: auditors, forget list, the records of
/// entries `[from, to)` and the listed auditors' wraps of the (not
/// forgotten) key IDs they use.
pub fn body(dir: &Path, from: u64, to: u64) -> Result<Vec<u8>> {
    body_within(dir, from, to, MAX_BODY_BYTES)
}

// `body` refusing past `limit` bytes (tests use a small one).
fn body_within(dir: &Path, from: u64, to: u64, limit: usize) -> Result<Vec<u8>> {
    let sc = dir.join(SIDECAR);
    let Some((mut out, auditors, forgotten)) = head(dir)? else {
        return Ok(format!("{FORMAT_LINE}\n").into_bytes());
    };
    let mut records = Vec::new();
    let mut used = BTreeSet::new();
    let rp = sc.join("records");
    if from < to {
        // In entry order: stop at the first record at or past `to`.
        side::each_record_from(&rp, from, |i, kid, line| {
            if i >= to {
                return Ok(false);
            }
            if i >= from {
                let _ = used.insert(kid.to_string());
                records.extend_from_slice(line);
                if records.len() > limit {
                    return Err(too_large(from, to));
                }
            }
            Ok(true)
        })?;
    }
    // The wraps of the key IDs in use for the listed auditors (a removal
    // cut short leaves others), by name, in name order: listing the whole
    // directory cost every poll time in subjects × auditors (50 ms at 30k
    // subjects, whatever the range).
    let mut listed: Vec<&String> = auditors.iter().collect();
    listed.sort();
    let wraps = sc.join("wraps");
    for kid in &used {
        let Some(key) = KeyId::from_hex(kid).filter(|k| !forgotten.contains(k)) else {
            continue;
        };
        for r in listed.iter().filter(|r| !r.contains('/')) {
            let path = wraps.join(format!("{key}.{r}.age"));
            let wrap = match crate::fs::read_own(&path) {
                Ok(w) => w,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read", &path, e)),
            };
            let rec = Record::SealedKey { key, wrap }.to_line();
            out.extend_from_slice(format!("wrap {r} {rec}\n").as_bytes());
            if out.len() + records.len() > limit {
                return Err(too_large(from, to));
            }
        }
    }
    out.extend_from_slice(&records);
    Ok(out)
}

/// The redactions of verified entry lines `buf` (`\n`-terminated): the
/// entry and pointer of each `stele.redact` event (docs/FORMAT.md 13.7; a
/// reserved type, so only the log's writer appends one), in order. Lines
/// without the type's bytes are not parsed.
pub fn redactions_in(buf: &[u8]) -> Vec<Redaction> {
    let needle = memchr::memmem::Finder::new(b"\"stele.redact\"");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = needle.find(&buf[at..]) {
        let hit = at + i;
        let start = memchr::memrchr(b'\n', &buf[..hit]).map_or(0, |j| j + 1);
        let end = memchr::memchr(b'\n', &buf[hit..]).map_or(buf.len(), |j| hit + j);
        at = end.min(buf.len());
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf[start..end])
            && v["event"]["type"] == "stele.redact"
            && let (Some(entry), Some(pointer)) =
                (v["event"]["entry"].as_u64(), v["event"]["pointer"].as_str())
        {
            out.push(Redaction {
                entry,
                pointer: pointer.to_string(),
            });
        }
        if at >= buf.len() {
            break;
        }
    }
    out
}

/// [`redactions_in`] of the first `len` bytes of an entries file, read a
/// line at a time (memory: one line, a 1 MiB buffer and the redactions).
pub fn redactions_in_file(path: &Path, len: u64) -> Result<Vec<Redaction>> {
    use std::io::{BufRead, Read};
    let f = crate::fs::open_own_read(path).map_err(|e| Error::io("open", path, e))?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f.take(len));
    let needle = memchr::memmem::Finder::new(b"\"stele.redact\"");
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)
            .map_err(|e| Error::io("read", path, e))?
            == 0
        {
            return Ok(out);
        }
        if needle.find(&line).is_some() {
            out.extend(redactions_in(&line));
        }
    }
}

/// An opening deleted by a verified `stele.redact` event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Redaction {
    /// The entry index.
    pub entry: u64,
    /// The pointer of the opening.
    pub pointer: String,
}

/// The set [`crate::sealed::redact_records_file`] takes.
pub fn redaction_set(r: &[Redaction]) -> side::Redactions {
    r.iter().map(|r| (r.entry, r.pointer.clone())).collect()
}

/// `records` (record lines) with every opening `named` redacted: the
/// rule of `stele redact` ([`crate::sealed::redacted_line`]).
pub fn redact_lines(records: &[u8], named: &side::Redactions) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len());
    for line in records.split_inclusive(|&b| b == b'\n') {
        match side::redacted_line(line, |i, p| named.contains(&(i, p.to_string()))) {
            Some(red) => out.extend_from_slice(&red),
            None => out.extend_from_slice(line),
        }
    }
    out
}

// The format line, auditors and forget list of a body (None without a
// sidecar), with the auditors and the forget list.
#[allow(clippy::type_complexity)]
fn head(dir: &Path) -> Result<Option<(Vec<u8>, Vec<String>, HashSet<KeyId>)>> {
    let sc = dir.join(SIDECAR);
    if !sc.is_dir() {
        return Ok(None);
    }
    let mut out = format!("{FORMAT_LINE}\n").into_bytes();
    let auditors = side::auditors(dir)?;
    for a in &auditors {
        out.extend_from_slice(format!("auditor {a}\n").as_bytes());
    }
    // With the forgets under way: a logged forget's wraps never go out.
    let forgotten = side::export_forgotten_ids(&sc)?;
    let mut sorted: Vec<&KeyId> = forgotten.iter().collect();
    sorted.sort();
    for k in sorted {
        out.extend_from_slice(format!("{}\n", Record::Forgotten(*k).to_line()).as_bytes());
    }
    Ok(Some((out, auditors, forgotten)))
}

/// The body of `GET /v1/sealed?from=N&to=N&wraps=all` (`after` None) or
/// `wraps=<key ID>`: auditors, forget list, then the wraps for listed
/// auditors of the key IDs after `after` (not forgotten), in key ID order,
/// about [`MAX_WRAPS_PAGE`] of them (whole key IDs), then `more <key ID>`
/// (the last one sent) when there are others.
pub fn wraps_body(dir: &Path, after: Option<KeyId>) -> Result<Vec<u8>> {
    wraps_body_within(dir, after, MAX_WRAPS_PAGE)
}

// `wraps_body` with pages of `page` wraps (tests use a small one).
fn wraps_body_within(dir: &Path, after: Option<KeyId>, page: usize) -> Result<Vec<u8>> {
    let Some((mut out, auditors, forgotten)) = head(dir)? else {
        return Ok(format!("{FORMAT_LINE}\n").into_bytes());
    };
    let mut n = 0;
    let mut last: Option<KeyId> = None;
    for w in crate::sealed::wrap_files(&dir.join(SIDECAR).join("wraps")) {
        if after.is_some_and(|a| w.key <= a)
            || forgotten.contains(&w.key)
            || !auditors.contains(&w.recipient)
        {
            continue;
        }
        if let Some(k) = last
            && n >= page
            && k != w.key
        {
            out.extend_from_slice(format!("more {k}\n").as_bytes());
            break;
        }
        let wrap = crate::fs::read_own(&w.path).map_err(|e| Error::io("read", &w.path, e))?;
        let rec = Record::SealedKey { key: w.key, wrap }.to_line();
        out.extend_from_slice(format!("wrap {} {rec}\n", w.recipient).as_bytes());
        n += 1;
        last = Some(w.key);
    }
    Ok(out)
}

/// A `GET /v1/sealed` body, checked.
#[derive(Debug, Default)]
pub struct Sidecar {
    /// The log's auditors.
    pub auditors: Vec<String>,
    /// Its forget list.
    pub forgotten: BTreeSet<KeyId>,
    /// Wraps: key ID, recipient, age file.
    pub wraps: Vec<(KeyId, String, Vec<u8>)>,
    /// Record lines, byte for byte the origin's, in entry order.
    pub records: Vec<u8>,
    /// A wraps page's `more`: the last key ID it holds wraps of.
    pub more: Option<KeyId>,
}

impl Sidecar {
    /// Whether the body held no opening or redaction record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// It does not parse.
    Bad(String),
    /// A record does not fit the verified entries.
    Mismatch(String),
}

/// Parses a body for entries `[from, to)`; `entry(i)` is the verified line
/// of entry `i` in that range. A record must name a placeholder of its
/// entry, at its pointer, with its key ID. The error says what is wrong and
/// where (never a value: the body holds none).
pub fn parse<'a>(
    body: &[u8],
    from: u64,
    to: u64,
    entry: impl Fn(u64) -> Option<&'a [u8]>,
) -> std::result::Result<Sidecar, BodyError> {
    let bad = |why: String| BodyError::Bad(why);
    let text = body
        .strip_suffix(b"\n")
        .ok_or_else(|| bad("the body does not end with a line feed".into()))?;
    let mut lines = text.split(|&b| b == b'\n');
    if lines.next() != Some(FORMAT_LINE.as_bytes()) {
        return Err(bad(format!("the body does not start with {FORMAT_LINE:?}")));
    }
    let mut s = Sidecar::default();
    // The placeholders of the last entry a record named, and the pointers
    // recorded so far for it.
    let mut last: Option<(u64, BTreeMap<String, KeyId>, HashSet<String>)> = None;
    for (n, line) in lines.enumerate() {
        let at = |why: String| BodyError::Bad(format!("line {}: {why}", n + 2));
        let mis = |why: String| BodyError::Mismatch(format!("line {}: {why}", n + 2));
        if let Some(r) = line.strip_prefix(b"auditor ") {
            let r = std::str::from_utf8(r).map_err(|_| at("not UTF-8".into()))?;
            let _ = stele_seal::parse_recipient(r)
                .map_err(|e| at(format!("an auditor that is not an age recipient: {e}")))?;
            if s.auditors.len() == MAX_AUDITORS {
                return Err(at(format!("more than {MAX_AUDITORS} auditors")));
            }
            s.auditors.push(r.to_string());
        } else if let Some(k) = line.strip_prefix(b"more ") {
            let k = std::str::from_utf8(k)
                .ok()
                .and_then(KeyId::from_hex)
                .ok_or_else(|| at("a more line needs a key ID (32 hex digits)".into()))?;
            if s.more.replace(k).is_some() {
                return Err(at("two more lines".into()));
            }
        } else if line.starts_with(b"forgotten ") {
            match Record::parse(line).map_err(at)? {
                Record::Forgotten(k) => {
                    let _ = s.forgotten.insert(k);
                }
                _ => return Err(at("not a forgotten record".into())),
            }
        } else if let Some(w) = line.strip_prefix(b"wrap ") {
            let sp = w
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| at("a wrap line needs a recipient and a record".into()))?;
            let r = std::str::from_utf8(&w[..sp]).map_err(|_| at("not UTF-8".into()))?;
            let _ = stele_seal::parse_recipient(r)
                .map_err(|e| at(format!("a wrap for something not an age recipient: {e}")))?;
            match Record::parse(&w[sp + 1..]).map_err(at)? {
                Record::SealedKey { key, wrap } => {
                    if wrap.len() > MAX_WRAP_BYTES || !wrap.starts_with(b"age-encryption.org/v1\n")
                    {
                        return Err(at(format!(
                            "the wrap of key {key} is not an age file of at most {MAX_WRAP_BYTES} bytes"
                        )));
                    }
                    s.wraps.push((key, r.to_string(), wrap));
                }
                _ => return Err(at("not a sealed-key record".into())),
            }
        } else {
            let (kid, rec) = side::split_record(line)
                .ok_or_else(|| at("not an auditor, forgotten, wrap or record line".into()))?;
            let kid = KeyId::from_hex(kid).expect("split_record checked it");
            let (Record::Opening { index, pointer, .. } | Record::Redacted { index, pointer }) =
                Record::parse(rec).map_err(at)?
            else {
                return Err(at("not an opening or redacted record".into()));
            };
            if index < from || index >= to {
                return Err(at(format!(
                    "a record of entry {index}, outside the entries {from}..{to} asked for"
                )));
            }
            if last.as_ref().is_some_and(|(i, _, _)| *i > index) {
                return Err(at(format!("the record of entry {index} is out of order")));
            }
            if last.as_ref().is_none_or(|(i, _, _)| *i != index) {
                let line = entry(index).ok_or_else(|| mis(format!("no entry {index}")))?;
                let v: serde_json::Value = serde_json::from_slice(line)
                    .map_err(|_| mis(format!("entry {index} is not JSON")))?;
                let phs = find_placeholders(&v["event"])
                    .map_err(|e| mis(format!("entry {index}: {e}")))?
                    .into_iter()
                    .map(|(p, ph)| (p, ph.key))
                    .collect();
                last = Some((index, phs, HashSet::new()));
            }
            let (_, phs, seen) = last.as_mut().expect("set above");
            let q = stele_core::canonical::quote(&pointer);
            match phs.get(&pointer) {
                Some(k) if *k == kid => {}
                Some(_) => {
                    return Err(mis(format!(
                        "the record of entry {index} at {q} names key {kid}, not its placeholder's"
                    )));
                }
                None => {
                    return Err(mis(format!(
                        "entry {index} has no placeholder at {q} for this record"
                    )));
                }
            }
            if !seen.insert(pointer) {
                return Err(at(format!("two records of entry {index} at {q}")));
            }
            s.records.extend_from_slice(line);
            s.records.push(b'\n');
        }
    }
    Ok(s)
}

fn secret_dir(fs: &dyn Fs, d: &Path) -> Result<()> {
    crate::fs::ensure_private_dir(fs, d).map_err(|e| Error::io("open directory", d, e))
}

/// Makes the sidecar directories of the mirror in `dir` (0700).
pub fn ensure_dirs(fs: &dyn Fs, dir: &Path) -> Result<()> {
    let sc = dir.join(SIDECAR);
    secret_dir(fs, &sc)?;
    secret_dir(fs, &sc.join("wraps"))
}

/// Applies what a body says besides its records, durably, before the
/// records are committed: the origin's forget list, added to the mirror's
/// *before* any wrap of a forgotten key is destroyed (a crash in between
/// is finished by the next [`apply`]), then those wraps destroyed, and
/// those of recipients no longer among the origin's auditors (`stele
/// auditor remove`); then the new wraps of keys not forgotten, for listed
/// auditors; then the auditor list. An auditor the mirror does not list
/// yet while it holds records (the origin's `stele auditor add` wrapped
/// every existing key for it) is listed only when `all_wraps` (the body is
/// the last of the wraps pages, [`wraps_body`], fetched after the others):
/// returns whether such an auditor is waiting, so a crash before the pages
/// are all stored fetches them again.
pub fn apply(fs: &dyn Fs, dir: &Path, s: &Sidecar, all_wraps: bool) -> Result<bool> {
    ensure_dirs(fs, dir)?;
    let sc = dir.join(SIDECAR);
    let held_auditors = side::auditors(dir)?;
    let holds_records = std::fs::metadata(sc.join("records")).is_ok_and(|m| m.len() > 0);
    let waiting =
        holds_records && !all_wraps && s.auditors.iter().any(|a| !held_auditors.contains(a));
    let listed: HashSet<&str> = s.auditors.iter().map(String::as_str).collect();
    let held = side::forgotten_ids(&sc)?;
    let new: Vec<KeyId> = s
        .forgotten
        .iter()
        .filter(|k| !held.contains(k))
        .copied()
        .collect();
    if !new.is_empty() {
        let mut all: Vec<KeyId> = held.iter().chain(&new).copied().collect();
        all.sort();
        let text: String = all.iter().map(|k| format!("{k}\n")).collect();
        side::write_secret_file(fs, &sc, "forgotten", text.as_bytes())?;
    }
    let forgotten: HashSet<KeyId> = held.into_iter().chain(new.iter().copied()).collect();
    let wraps = sc.join("wraps");
    // Every wrap of a forgotten key goes, including one a crash left, and
    // every wrap for a recipient the origin no longer lists.
    let rd = std::fs::read_dir(&wraps).map_err(|e| Error::io("read directory", &wraps, e))?;
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        let Some((k, rest)) = name
            .split_once('.')
            .and_then(|(k, rest)| Some((KeyId::from_hex(k)?, rest)))
        else {
            continue;
        };
        let unlisted = rest
            .strip_suffix(".age")
            .is_some_and(|r| !listed.contains(r));
        if forgotten.contains(&k) || unlisted {
            side::shred(&ent.path())?;
        }
    }
    for (key, recipient, wrap) in &s.wraps {
        if forgotten.contains(key) || !listed.contains(recipient.as_str()) {
            continue;
        }
        let name = format!("{key}.{recipient}.age");
        if crate::fs::read_own(&wraps.join(&name)).is_ok_and(|b| &b == wrap) {
            continue;
        }
        side::write_secret_file(fs, &wraps, &name, wrap)?;
    }
    let keep: Vec<&String> = if waiting {
        // Removals now; additions once their wraps are all stored.
        s.auditors
            .iter()
            .filter(|a| held_auditors.contains(a))
            .collect()
    } else {
        s.auditors.iter().collect()
    };
    if held_auditors.iter().collect::<Vec<_>>() != keep {
        let text: String = keep.iter().map(|a| format!("{a}\n")).collect();
        side::write_secret_file(fs, &sc, "auditors", text.as_bytes())?;
    }
    Ok(waiting)
}

/// Copies the sidecar of the mirror in `from` (its records up to
/// `records_len` bytes, wraps, forget list, auditors) into the new log
/// directory `to`, each file fdatasync'ed and each directory fsync'ed.
/// `redact` are the redactions its commit point names as not yet applied
/// (a crash): they are applied to the copy, which then holds none of
/// their openings.
pub fn copy(
    fs: &dyn Fs,
    from: &Path,
    to: &Path,
    records_len: u64,
    redact: &[Redaction],
) -> Result<()> {
    let src = from.join(SIDECAR);
    if !src.is_dir() {
        return Ok(());
    }
    ensure_dirs(fs, to)?;
    let dst = to.join(SIDECAR);
    for name in ["auditors", "forgotten"] {
        match crate::fs::read_own(&src.join(name)) {
            Ok(b) => side::write_secret_file(fs, &dst, name, &b)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", src.join(name), e)),
        }
    }
    let rp = src.join("records");
    match crate::fs::open_own_read(&rp) {
        Ok(f) => {
            let len = f.metadata().map_err(|e| Error::io("stat", &rp, e))?.len();
            // A redaction's rewrite renamed into place before the commit
            // point named its length holds the committed records, whole.
            if len < records_len && redact.is_empty() {
                return Err(Error::CheckpointMismatch {
                    dir: from.into(),
                    why: format!(
                        "{} is {len} bytes, but the commit point says {records_len} are committed",
                        rp.display(),
                    ),
                });
            }
            let len = len.min(records_len);
            // Streamed: memory stays flat whatever the records' size.
            side::write_secret_file_from(
                fs,
                &dst,
                "records",
                &mut std::io::BufReader::new(f),
                len,
            )?;
            let _ = side::redact_records_file(fs, &dst, len, &redaction_set(redact))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("read", rp, e)),
    }
    let forgotten = side::forgotten_ids(&src)?;
    let wraps = src.join("wraps");
    if let Ok(rd) = std::fs::read_dir(&wraps) {
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            let Some(k) = name.split_once('.').and_then(|(k, _)| KeyId::from_hex(k)) else {
                continue;
            };
            if forgotten.contains(&k) || !name.ends_with(".age") {
                continue;
            }
            let b =
                crate::fs::read_own(&ent.path()).map_err(|e| Error::io("read", ent.path(), e))?;
            side::write_secret_file(fs, &dst.join("wraps"), &name, &b)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KID: &str = "000102030405060708090a0b0c0d0e0f";
    const OTHER: &str = "ffffffffffffffffffffffffffffffff";

    fn entry() -> Vec<u8> {
        format!(
            r#"{{"event":{{"a":{{"stele.sealed":{{"commitment":"{}","key":"{KID}"}}}},"type":"t"}},"seq":5}}"#,
            "ab".repeat(32)
        )
        .into_bytes()
    }

    fn opening(index: u64, kid: &str, pointer: &str) -> String {
        // 24-byte nonce and a 16-byte tag at least: 40 bytes, base64.
        format!("{kid} opening {index} {}== \"{pointer}\"\n", "A".repeat(54))
    }

    #[test]
    fn a_body_past_its_limit_is_refused_naming_the_range() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let signer = crate::key::generate("example.com/limit").unwrap();
        let opts = crate::LogOptions {
            seal: side::SealConfig {
                seal: vec!["/ip".into()],
                subject: "/actor".into(),
            },
            ..crate::LogOptions::default()
        };
        let log = crate::Log::create_with(&dir, "example.com/limit", &signer, None, opts).unwrap();
        let events = (0..40)
            .map(|i| serde_json::json!({"actor": i % 4, "ip": format!("10.0.0.{i}")}))
            .collect();
        let _ = log.append_batch(events).unwrap();
        let whole = body(&dir, 1, 41).unwrap();
        assert_eq!(body_within(&dir, 1, 41, whole.len()).unwrap(), whole);
        let e = body_within(&dir, 1, 41, whole.len() / 2).unwrap_err();
        assert!(matches!(e, Error::OutOfRange(_)), "{e}");
        assert!(e.to_string().contains("entries 1..41"), "{e}");
        assert!(e.to_string().contains("ask for fewer entries"), "{e}");
        // A smaller range fits.
        assert!(body_within(&dir, 1, 11, whole.len() / 2).is_ok());
    }

    #[test]
    fn wraps_come_in_pages_of_whole_key_ids_for_listed_auditors_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let signer = crate::key::generate("example.com/pages").unwrap();
        let opts = crate::LogOptions {
            seal: side::SealConfig {
                seal: vec!["/ip".into()],
                subject: "/actor".into(),
            },
            ..crate::LogOptions::default()
        };
        let log = crate::Log::create_with(&dir, "example.com/pages", &signer, None, opts).unwrap();
        let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/sealed");
        let mut recipients = Vec::new();
        for f in ["auditor.key", "other.key"] {
            let t = std::fs::read_to_string(vectors.join(f)).unwrap();
            let r = stele_seal::Identity::parse_file(&t).unwrap()[0].recipient();
            let _ = log.add_auditor(&r, "test").unwrap();
            recipients.push(r);
        }
        let events = (0..30)
            .map(|i| serde_json::json!({"actor": i, "ip": format!("10.0.0.{i}")}))
            .collect();
        let _ = log.append_batch(events).unwrap();
        // A wrap left for a removed auditor (a removal cut short) is not sent.
        let stale = dir.join(SIDECAR).join("wraps").join(format!(
            "{}.{}.age",
            crate::sealed::wrap_files(&dir.join(SIDECAR).join("wraps"))[0].kid,
            "age1stale"
        ));
        std::fs::write(&stale, b"age-encryption.org/v1\n").unwrap();
        let whole = parse(&wraps_body(&dir, None).unwrap(), 31, 31, |_| None).unwrap();
        let range = body(&dir, 1, 31).unwrap();
        assert!(!String::from_utf8_lossy(&range).contains("age1stale"));
        assert_eq!(whole.wraps.len(), 60);
        assert!(whole.more.is_none());
        let mut paged = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let b = wraps_body_within(&dir, after, 7).unwrap();
            let s = parse(&b, 31, 31, |_| None).unwrap();
            assert_eq!(s.auditors, recipients);
            // Whole key IDs: 7 wraps, then the rest of the last key's.
            assert!(s.wraps.len() <= 8, "{}", s.wraps.len());
            pages += 1;
            paged.extend(s.wraps);
            match s.more {
                Some(k) => {
                    assert_eq!(paged.last().unwrap().0, k);
                    after = Some(k);
                }
                None => break,
            }
        }
        assert!(pages >= 8, "{pages}");
        assert_eq!(paged, whole.wraps);
    }

    fn check(body: &str) -> std::result::Result<Sidecar, BodyError> {
        let e = entry();
        parse(body.as_bytes(), 5, 6, |i| (i == 5).then_some(&e[..]))
    }

    #[test]
    fn a_body_is_taken_only_when_every_record_fits_its_verified_entry() {
        let head = "stele-sealed v1\n";
        let good = format!("{head}{}", opening(5, KID, "/a"));
        let s = check(&good).unwrap();
        assert_eq!(s.records, opening(5, KID, "/a").into_bytes());
        let s = check(&format!("{head}forgotten {OTHER}\n")).unwrap();
        assert!(s.is_empty() && s.forgotten.len() == 1);
        let bad = |body: String, want: &str, mismatch: bool| {
            let e = check(&body).unwrap_err();
            let (BodyError::Bad(m) | BodyError::Mismatch(m)) = &e;
            assert!(m.contains(want), "{m}");
            assert_eq!(matches!(e, BodyError::Mismatch(_)), mismatch, "{m}");
        };
        bad(
            format!("stele-sealed v2\n{}", opening(5, KID, "/a")),
            "does not start with",
            false,
        );
        bad(good.trim_end().to_string(), "line feed", false);
        bad(
            format!("{head}{}", opening(6, KID, "/a")),
            "outside the entries 5..6",
            false,
        );
        bad(
            format!("{head}{}", opening(5, KID, "/b")),
            "no placeholder at \"/b\"",
            true,
        );
        bad(
            format!("{head}{}", opening(5, OTHER, "/a")),
            "not its placeholder's",
            true,
        );
        bad(
            format!("{head}{}{}", opening(5, KID, "/a"), opening(5, KID, "/a")),
            "two records of entry 5",
            false,
        );
        bad(format!("{head}garbage\n"), "line 2", false);
        bad(
            format!("{head}wrap age1nope sealed-key {KID} AAAA\n"),
            "not an age recipient",
            false,
        );
        bad(format!("{head}auditor x\n"), "not an age recipient", false);
    }
}
