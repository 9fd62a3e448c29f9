//! RFC 3161 anchoring (docs/FORMAT.md section 16): a timestamp authority
//! (TSA) signs the SHA-256 of a checkpoint's body, and the token is kept in
//! `DIR/timestamps` beside the checkpoints, so that every export carries it.
//!
//! ```text
//! DIR/timestamps    "timestamp <size> <base64 DER token>\n" records, append-only, fdatasync'ed
//! ```
//!
//! Life of a token: [`request_token`] POSTs a `TimeStampReq` (RFC 3161 3.4,
//! `application/timestamp-query`) and takes the token out of the response,
//! refusing one for another imprint or nonce; with a CA, [`anchor`] checks
//! it fully (stele-tsa) before keeping it. [`append`] then writes the
//! record and fdatasyncs the file (and the directory when it was created):
//! when it returns, the token is on disk. A crash during the write leaves at
//! most a last line without its `\n`; readers ignore it and the next append
//! cuts it off first. Tokens only add evidence: losing one loses no entry
//! and breaks no checkpoint. Exports read the records they write through an
//! index (`TokenIndex`), not the whole file.

use crate::error::{Error, Result};
use crate::log::Log;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stele_core::timestamp::{Attestation, MAX_TOKEN_BYTES, TimestampRecord, TokenChecker, imprint};

/// The tokens file in a log directory.
pub const TIMESTAMPS: &str = "timestamps";
/// Largest TSA response read: the largest token a record holds (FORMAT
/// 16.2) and room for the status around it. (It was 64 KiB: a 40 KB token
/// was read, kept, and failed every export after.)
const MAX_RESPONSE_BYTES: u64 = MAX_TOKEN_BYTES as u64 + 4096;
/// Where lines of `DIR/timestamps` that are set aside go: lines that are
/// not records (`stele fsck`), tokens that fail `--ca` (`stele anchor
/// --ca`, `stele serve --ca`).
pub const REJECTED: &str = "timestamps.rejected";

/// Refuses a token longer than a record holds (FORMAT 16.2): once written,
/// its line would be refused by every reader.
pub(crate) fn check_size(token: &[u8], size: u64) -> Result<()> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(err(format!(
            "the token for the checkpoint of size {size} is {} bytes, more than the {MAX_TOKEN_BYTES} a timestamp record holds (FORMAT 16.2); not kept",
            token.len()
        )));
    }
    Ok(())
}

fn err(why: impl Into<String>) -> Error {
    Error::Timestamp(why.into())
}

/// Sends a timestamp request for `body` (a checkpoint's note text) to the
/// TSA at `url` and returns the DER token from its response.
pub fn request_token(url: &str, body: &[u8], timeout: Duration) -> Result<Vec<u8>> {
    let imp = imprint(body);
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| err(format!("random nonce: {e}")))?;
    let nonce = u64::from_be_bytes(nonce);
    let req = stele_tsa::request(&imp, nonce);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut resp = agent
        .post(url)
        .header("Content-Type", "application/timestamp-query")
        .send(&req[..])
        .map_err(|e| err(format!("POST {url}: {e}")))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(err(format!(
            "POST {url}: HTTP {status}, expected 200 with an application/timestamp-reply"
        )));
    }
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => err(format!(
                "POST {url}: the response is longer than {MAX_RESPONSE_BYTES} bytes; a token is at most {MAX_TOKEN_BYTES} (FORMAT 16.2)"
            )),
            e => err(format!("POST {url}: reading the response: {e}")),
        })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    stele_tsa::token_from_response(&bytes, &imp, nonce, now)
        .map_err(|e| err(format!("POST {url}: {e}")))
}

/// Every complete record of `DIR/timestamps` (none when the file does not
/// exist), in file order. A last line without `\n` (a torn append) is
/// ignored; any other line that is not a record is an error naming it.
pub fn read(dir: &Path) -> Result<Vec<TimestampRecord>> {
    let path = dir.join(TIMESTAMPS);
    let bytes = match crate::fs::read_own(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes[..complete]
        .split(|&b| b == b'\n')
        .take_while(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            TimestampRecord::parse(l).ok_or_else(|| {
                err(format!(
                    "{} line {}: not a timestamp record (`stele fsck DIR` moves such lines to {REJECTED})",
                    path.display(),
                    i + 1
                ))
            })
        })
        .collect()
}

/// Moves the complete lines of `DIR/timestamps` that `reject` refuses
/// (given the record, `None` for a line that is not one) to the end of
/// `DIR/timestamps.rejected`, and replaces `DIR/timestamps` by the lines
/// kept (a torn last line stays last, for the next append to cut): both
/// fdatasync'ed, the new file renamed over the old, the directory fsync'ed.
/// Returns how many lines were moved; with none, nothing is written. The
/// caller holds the log's lock (appends take it). One line in memory at a
/// time: a longer line than a record can be is streamed aside in pieces.
pub(crate) fn set_aside(
    dir: &Path,
    reject: &mut dyn FnMut(Option<&TimestampRecord>) -> bool,
) -> Result<u64> {
    use std::io::{BufRead, Read};
    let path = dir.join(TIMESTAMPS);
    let f = match crate::fs::open_own_read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    let tmp = dir.join("timestamps.tmp");
    let rej_path = dir.join(REJECTED);
    let mut kept = std::io::BufWriter::new(
        crate::fs::create_temp(&tmp, 0o600).map_err(|e| Error::io("create", &tmp, e))?,
    );
    let mut rej: Option<File> = None;
    let mut to_rej = |b: &[u8]| -> Result<()> {
        if rej.is_none() {
            use std::os::unix::fs::OpenOptionsExt;
            rej = Some(
                crate::fs::open_own(
                    OpenOptions::new().create(true).append(true).mode(0o600),
                    &rej_path,
                )
                .map_err(|e| Error::io("open", &rej_path, e))?,
            );
        }
        rej.as_mut()
            .expect("opened")
            .write_all(b)
            .map_err(|e| Error::io("write", &rej_path, e))
    };
    let mut r = std::io::BufReader::new(f);
    let (mut moved, mut line) = (0u64, Vec::new());
    let limit = MAX_RECORD_LINE as u64 + 1;
    loop {
        line.clear();
        let _ = (&mut r)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("read", &path, e))?;
        if line.is_empty() {
            break;
        }
        if line.last() != Some(&b'\n') && line.len() as u64 == limit {
            // Longer than any record: aside, piece by piece, to its end.
            moved += 1;
            to_rej(&line)?;
            while line.last() != Some(&b'\n') && !line.is_empty() {
                line.clear();
                let _ = (&mut r)
                    .take(limit)
                    .read_until(b'\n', &mut line)
                    .map_err(|e| Error::io("read", &path, e))?;
                to_rej(&line)?;
            }
            if line.last() != Some(&b'\n') {
                to_rej(b"\n")?;
            }
            continue;
        }
        let Some(body) = line.strip_suffix(b"\n") else {
            // A torn last line: kept for the next append to cut.
            kept.write_all(&line)
                .map_err(|e| Error::io("write", &tmp, e))?;
            break;
        };
        if reject(TimestampRecord::parse(body).as_ref()) {
            moved += 1;
            to_rej(&line)?;
        } else {
            kept.write_all(&line)
                .map_err(|e| Error::io("write", &tmp, e))?;
        }
    }
    let kept = kept
        .into_inner()
        .map_err(|e| Error::io("write", &tmp, e.into_error()))?;
    if moved == 0 {
        drop(kept);
        let _ = std::fs::remove_file(&tmp);
        return Ok(0);
    }
    if let Some(f) = &rej {
        f.sync_data()
            .map_err(|e| Error::io("fdatasync", &rej_path, e))?;
    }
    kept.sync_data()
        .map_err(|e| Error::io("fdatasync", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync", dir, e))?;
    Ok(moved)
}

/// `stele fsck`: moves the lines of `DIR/timestamps` that are not records
/// (FORMAT 16.2: a bad size, bad base64, a token over 32,768 bytes) to
/// `DIR/timestamps.rejected`; returns how many. Exports skip such lines
/// (with a warning) until then.
pub fn repair(dir: &Path) -> Result<u64> {
    set_aside(dir, &mut |r| r.is_none())
}

/// Warns, once per line a reader meets, that a line of `DIR/timestamps`
/// is skipped.
fn warn_skipped(path: &Path, line: u64) {
    eprintln!(
        "stele: {} line {line}: not a timestamp record (FORMAT 16.2); skipped, exports carry no token from it. `stele fsck DIR` moves it to {REJECTED}",
        path.display()
    );
}

/// Appends a record to `DIR/timestamps` durably (see the module docs). A
/// token longer than FORMAT 16.2's limit is refused.
pub fn append(dir: &Path, rec: &TimestampRecord) -> Result<()> {
    check_size(&rec.token, rec.size)?;
    let path = dir.join(TIMESTAMPS);
    let created = !path.exists();
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = crate::fs::open_own(
        OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(crate::fs::PRIVATE_FILE_MODE),
        &path,
    )
    .map_err(|e| Error::io("open", &path, e))?;
    // A torn last line (crash mid-append) is cut off before appending:
    // the file is read back from its end to its last `\n` only.
    let len = f.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
    let complete = complete_len(&f, len).map_err(|e| Error::io("read", &path, e))?;
    if complete < len {
        f.set_len(complete)
            .map_err(|e| Error::io("truncate", &path, e))?;
    }
    let mut line = rec.to_line();
    line.push('\n');
    f.write_all(line.as_bytes())
        .map_err(|e| Error::io("write", &path, e))?;
    f.sync_data()
        .map_err(|e| Error::io("fdatasync", &path, e))?;
    if created {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("fsync", dir, e))?;
    }
    Ok(())
}

// The length of the complete lines of the first `len` bytes of `f`: up to
// and with its last `\n` (0: none), read backwards from `len`.
fn complete_len(f: &File, len: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut end = len;
    let mut buf = vec![0u8; 4096];
    while end > 0 {
        let n = end.min(buf.len() as u64);
        let b = &mut buf[..n as usize];
        f.read_exact_at(b, end - n)?;
        if let Some(i) = memchr::memrchr(b'\n', b) {
            return Ok(end - n + i as u64 + 1);
        }
        end -= n;
    }
    Ok(0)
}

/// What [`anchor`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchored {
    /// A new token for the checkpoint of this size; with a CA, what it attests.
    New(u64, Option<Attestation>),
    /// The latest checkpoint already has a token.
    Already(u64),
}

/// Anchors the log's latest checkpoint (signing one first if the tree grew
/// since the last): requests a token from `url`, checks it with `ca` when
/// given (a token that fails is not kept), and appends it. A checkpoint
/// that has a token is anchored already; with `ca`, only if one of its
/// tokens passes it: when none does, they are moved to
/// `DIR/timestamps.rejected` (a warning on stderr says so) and a new token
/// is kept in their place.
pub fn anchor(
    log: &Log,
    url: &str,
    ca: Option<&stele_tsa::TsaChecker>,
    sign_first: bool,
    timeout: Duration,
) -> Result<Anchored> {
    let cp = if sign_first {
        log.checkpoint()?
    } else {
        match log.view().latest_checkpoint() {
            Some(c) => c.clone(),
            None => return Err(err("the log has no checkpoint to anchor")),
        }
    };
    let size = cp.checkpoint.size;
    let dir = log.dir();
    // The log's index: only the records appended since it last looked are
    // read, and the records of `size` (one that does not parse is an error).
    let stamps = log.token_index().stamps(dir, &[(size, size)])?;
    let held = lines_for(&stamps, size)?;
    drop(stamps);
    if held.is_empty() {
        let (token, att) = fetch_checked(url, &cp.note, size, ca, timeout)?;
        append(dir, &TimestampRecord { size, token })?;
        return Ok(Anchored::New(size, att));
    }
    // Without a CA, any token counts. With one, only a token that passes
    // it: a bad token kept unchecked (an imprint labelled SHA-384, a broken
    // signature, a TSA certificate without the EKU) made every export
    // tampered under --tsa-ca, and `anchor --ca` said "already anchored".
    let Some(ca) = ca else {
        return Ok(Anchored::Already(size));
    };
    let imp = imprint(body_of(&cp.note, size)?.as_bytes());
    let held: Vec<TimestampRecord> = held
        .lines()
        .filter_map(|l| TimestampRecord::parse(l.as_bytes()))
        .collect();
    let failed = held
        .iter()
        .map(|r| ca.check(&r.token, &imp))
        .find_map(|c| c.err());
    if held.iter().any(|r| ca.check(&r.token, &imp).is_ok()) {
        return Ok(Anchored::Already(size));
    }
    // A new token first (a TSA that is down leaves the log as it was),
    // then the failing ones aside, then the new one kept.
    let (token, att) = fetch_checked(url, &cp.note, size, Some(ca), timeout)?;
    let moved = set_aside(dir, &mut |r| {
        r.is_some_and(|r| r.size == size && ca.check(&r.token, &imp).is_err())
    })?;
    eprintln!(
        "stele: {moved} token(s) kept for checkpoint {size} fail --ca ({}); moved to {}, anchoring it again",
        failed.map_or_else(String::new, |e| e.message),
        dir.join(REJECTED).display()
    );
    append(dir, &TimestampRecord { size, token })?;
    Ok(Anchored::New(size, att))
}

/// The text of a checkpoint note (FORMAT 16.1: what the imprint is over).
pub(crate) fn body_of(note: &str, size: u64) -> Result<String> {
    Ok(stele_core::Note::parse(note.as_bytes())
        .map_err(|e| err(format!("the checkpoint of size {size} does not parse: {e}")))?
        .text)
}

/// A token for the checkpoint `note` (of `size`) from the TSA at `url`,
/// checked against `ca` when given (one that fails is an error): the token
/// and, with a CA, what it attests.
pub fn fetch_checked(
    url: &str,
    note: &str,
    size: u64,
    ca: Option<&stele_tsa::TsaChecker>,
    timeout: Duration,
) -> Result<(Vec<u8>, Option<Attestation>)> {
    // FORMAT 16.1: the imprint is over the note's text, as signed.
    let body = body_of(note, size)?;
    let token = request_token(url, body.as_bytes(), timeout)?;
    check_size(&token, size)?;
    let att = match ca {
        Some(ca) => Some(ca.check(&token, &imprint(body.as_bytes())).map_err(|e| {
            err(format!(
                "the token from {url} for the checkpoint of size {size} does not verify against --ca: {}",
                e.message
            ))
        })?),
        None => None,
    };
    Ok((token, att))
}

/// Longest record line (without `\n`): FORMAT 16.2's prefix, a size, and
/// the base64 of the longest token.
const MAX_RECORD_LINE: usize =
    stele_core::timestamp::RECORD_PREFIX.len() + 21 + MAX_TOKEN_BYTES.div_ceil(3) * 4;
/// Bytes of a line enough to read its size: `timestamp `, 20 digits, a
/// space and the token's first byte.
const HEAD: usize = stele_core::timestamp::RECORD_PREFIX.len() + 22;

/// The checkpoint size a record line names, read from its head alone (the
/// token is not decoded): `None` if the line does not start as FORMAT 16.2
/// says, with the same rules as [`TimestampRecord::parse`].
fn size_of(head: &[u8]) -> Option<u64> {
    let rest = head.strip_prefix(stele_core::timestamp::RECORD_PREFIX)?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let n = &rest[..sp];
    let ok = !n.is_empty()
        && n.iter().all(u8::is_ascii_digit)
        && (n == b"0" || n[0] != b'0')
        && rest.len() > sp + 1;
    if !ok {
        return None;
    }
    std::str::from_utf8(n).ok()?.parse().ok()
}

// What [`scan`] hands each line to: (offset, first bytes, length).
type OnLine<'a> = dyn FnMut(u64, &[u8], u64) -> Result<()> + 'a;

// Reads the lines of `f` from byte `from` to its end, handing each complete
// one to `line` as (its offset, its first `keep` bytes, its length without
// `\n`); a last line without `\n` (a torn append) is not handed. Memory
// stays at `keep` bytes whatever the lines' lengths.
fn scan(f: &File, path: &Path, from: u64, keep: usize, line: &mut OnLine<'_>) -> Result<()> {
    use std::io::{BufRead, Seek, SeekFrom};
    let mut fh = f;
    let _ = fh
        .seek(SeekFrom::Start(from))
        .map_err(|e| Error::io("read", path, e))?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, fh);
    let (mut at, mut n, mut head) = (from, 0u64, Vec::with_capacity(keep));
    loop {
        let buf = r.fill_buf().map_err(|e| Error::io("read", path, e))?;
        if buf.is_empty() {
            return Ok(());
        }
        let (part, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        let room = keep.saturating_sub(head.len()).min(part.len());
        head.extend_from_slice(&part[..room]);
        n += part.len() as u64;
        let used = part.len() + usize::from(done);
        r.consume(used);
        if done {
            line(at, &head, n)?;
            at += n + 1;
            n = 0;
            head.clear();
        }
    }
}

/// Where the records of `DIR/timestamps` are, by checkpoint size (about 24
/// bytes a record, never the tokens): an export reads only the records it
/// writes. A log and its views share one, extended by what was appended
/// since it last looked (by this process or another: `stele anchor` while
/// `stele serve` runs), so each export sees every token complete when it
/// starts, as when every export read the whole file; a file that no longer
/// holds the last line indexed where it ended (replaced, cut) is indexed
/// afresh. Indexing reads each new line's size only: a line without the
/// `timestamp <size> ` of FORMAT 16.2, or longer than a record, is skipped
/// with a warning on stderr, as is a record whose token does not parse when
/// an export would carry it; `stele fsck` moves such lines aside. (One such
/// line failed every export, for good: red-team.) (Every export read
/// and decoded every record: a range export of one entry read 60 MB at 20k
/// tokens.)
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenIndex(Arc<Mutex<Indexed>>);

#[derive(Debug, Default)]
struct Indexed {
    // (st_dev, st_ino) of the file indexed.
    file: Option<(u64, u64)>,
    // Bytes of the complete lines indexed, and how many lines.
    len: u64,
    lines: u64,
    // The last line indexed, with its `\n`.
    last: Vec<u8>,
    // Ordered by (size, offset): by size, each size's in file order.
    slots: Vec<Slot>,
    // A read found another record than the one indexed.
    stale: bool,
}

// One record: its checkpoint size, where its line is, its line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    size: u64,
    off: u64,
    len: u32,
    line: u32,
}

impl Indexed {
    // Indexes what was appended to `f` since the last call.
    fn refresh(&mut self, f: &File, path: &Path) -> Result<()> {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let md = f.metadata().map_err(|e| Error::io("stat", path, e))?;
        let id = (md.dev(), md.ino());
        let holds_last = || {
            let mut b = vec![0u8; self.last.len()];
            f.read_exact_at(&mut b, self.len - self.last.len() as u64)
                .is_ok()
                && b == self.last
        };
        if self.stale || self.file != Some(id) || md.len() < self.len || !holds_last() {
            *self = Self {
                file: Some(id),
                ..Self::default()
            };
        }
        if md.len() == self.len {
            return Ok(());
        }
        let mut new: Vec<Slot> = Vec::new();
        let (mut lines, mut end) = (self.lines, None);
        scan(f, path, self.len, HEAD, &mut |off, head, n| {
            lines += 1;
            end = Some((off, n + 1));
            // A line that is not a record is skipped (it failed every
            // export of the log, for good: red-team), and said.
            let Some(size) = size_of(head).filter(|_| n <= MAX_RECORD_LINE as u64) else {
                warn_skipped(path, lines);
                return Ok(());
            };
            new.push(Slot {
                size,
                off,
                len: n as u32, // at most MAX_RECORD_LINE
                line: u32::try_from(lines).unwrap_or(u32::MAX),
            });
            Ok(())
        })?;
        let Some((off, n)) = end else {
            return Ok(()); // only a torn line
        };
        // The end of the last line, with its `\n` (a skipped line may be
        // of any length): enough to tell the file was replaced.
        let keep = n.min(MAX_RECORD_LINE as u64 + 1);
        let mut last = vec![0u8; keep as usize];
        f.read_exact_at(&mut last, off + n - keep)
            .map_err(|e| Error::io("read", path, e))?;
        let key = |s: &Slot| (s.size, s.off);
        let sorted = new.is_sorted_by_key(key)
            && match (self.slots.last(), new.first()) {
                (Some(a), Some(b)) => key(a) <= key(b),
                _ => true,
            };
        self.slots.extend(new);
        if !sorted {
            self.slots.sort_unstable_by_key(key);
        }
        (self.len, self.lines, self.last) = (off + n, lines, last);
        Ok(())
    }
}

impl TokenIndex {
    /// The records for checkpoint sizes in `sizes` (each range inclusive),
    /// after indexing what was appended to `DIR/timestamps` since the last
    /// call; their tokens are read by [`lines_for`].
    pub(crate) fn stamps(&self, dir: &Path, sizes: &[(u64, u64)]) -> Result<Stamps> {
        let path = dir.join(TIMESTAMPS);
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let f = match crate::fs::open_own_read(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                *s = Indexed::default();
                return Ok(Stamps::default());
            }
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        s.refresh(&f, &path)?;
        let mut slots = Vec::new();
        for &(lo, hi) in sizes {
            let a = s.slots.partition_point(|x| x.size < lo);
            let b = s.slots.partition_point(|x| x.size <= hi).max(a);
            slots.extend_from_slice(&s.slots[a..b]);
        }
        slots.sort_unstable_by_key(|x| (x.size, x.off));
        slots.dedup();
        Ok(Stamps::File {
            file: f,
            path,
            slots,
            index: self.clone(),
        })
    }
}

/// Timestamp records by checkpoint size, for [`lines_for`]: an export
/// looks up each checkpoint's (a scan of every record for each checkpoint
/// cost a whole-log export 1.54 s at 6.7k checkpoints and 20k tokens,
/// against 26 ms without tokens).
#[derive(Debug, Default)]
pub(crate) enum Stamps {
    /// None.
    #[default]
    Empty,
    /// Records at hand (a cluster's), ordered by size, those of one size
    /// in the order given.
    Mem(Vec<TimestampRecord>),
    /// Where records are in `DIR/timestamps` ([`TokenIndex::stamps`]).
    File {
        file: File,
        path: PathBuf,
        slots: Vec<Slot>,
        index: TokenIndex,
    },
}

impl Stamps {
    pub(crate) fn new(mut recs: Vec<TimestampRecord>) -> Self {
        recs.sort_by_key(|r| r.size);
        Self::Mem(recs)
    }
}

/// The timestamp records of checkpoint `size`, as export lines. A record
/// of `DIR/timestamps` whose token does not parse is skipped, with a
/// warning naming its line.
pub(crate) fn lines_for(stamps: &Stamps, size: u64) -> Result<String> {
    let mut out = String::new();
    let mut put = |r: &TimestampRecord| {
        out.push_str(&r.to_line());
        out.push('\n');
    };
    match stamps {
        Stamps::Empty => {}
        Stamps::Mem(recs) => {
            let first = recs.partition_point(|r| r.size < size);
            recs[first..]
                .iter()
                .take_while(|r| r.size == size)
                .for_each(put);
        }
        Stamps::File {
            file,
            path,
            slots,
            index,
        } => {
            use std::os::unix::fs::FileExt;
            let first = slots.partition_point(|s| s.size < size);
            for s in slots[first..].iter().take_while(|s| s.size == size) {
                let mut b = vec![0u8; s.len as usize + 1];
                let read = file.read_exact_at(&mut b, s.off);
                let line = &b[..s.len as usize];
                if read.is_err()
                    || b.last() != Some(&b'\n')
                    || size_of(&line[..line.len().min(HEAD)]) != Some(size)
                {
                    // Not the line indexed: the file was rewritten meanwhile.
                    index.0.lock().unwrap_or_else(|e| e.into_inner()).stale = true;
                    return Err(err(format!(
                        "{} changed while it was read (line {} is not the record indexed); try again",
                        path.display(),
                        s.line
                    )));
                }
                match TimestampRecord::parse(line) {
                    Some(r) => put(&r),
                    None => warn_skipped(path, u64::from(s.line)),
                }
            }
        }
    }
    Ok(out)
}

/// What a service's anchoring (`stele serve --tsa`) did, for `/metrics`.
#[derive(Debug, Default)]
pub struct AnchorStats {
    /// Tokens kept.
    pub anchored: AtomicU64,
    /// Attempts that kept no token: the TSA unreachable or refusing, or its
    /// token failing the check against `--ca`.
    pub failed: AtomicU64,
    /// The size of the checkpoint last anchored (0: none yet).
    pub size: AtomicU64,
}

impl AnchorStats {
    /// The counters as Prometheus text.
    pub fn render(&self) -> String {
        format!(
            "# HELP stele_anchor_tokens_total Timestamp tokens kept by --tsa.\n# TYPE stele_anchor_tokens_total counter\nstele_anchor_tokens_total {}\n# HELP stele_anchor_failures_total Anchoring attempts that kept no token (TSA error, or a token failing --ca).\n# TYPE stele_anchor_failures_total counter\nstele_anchor_failures_total {}\n# HELP stele_anchor_size The size of the checkpoint last anchored.\n# TYPE stele_anchor_size gauge\nstele_anchor_size {}\n",
            self.anchored.load(Relaxed),
            self.failed.load(Relaxed),
            self.size.load(Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{Stamps, TIMESTAMPS, TimestampRecord, TokenIndex, append, lines_for, read};
    use std::io::Write;

    // A token over FORMAT 16.2's limit is never written: its line would be
    // refused by every reader.
    #[test]
    fn append_refuses_a_token_over_the_record_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let big = TimestampRecord {
            size: 3,
            token: vec![0x30; stele_core::timestamp::MAX_TOKEN_BYTES + 1],
        };
        let e = append(tmp.path(), &big).unwrap_err().to_string();
        assert!(e.contains("more than the 32768"), "{e}");
        assert!(!tmp.path().join(TIMESTAMPS).exists());
    }

    // Lines that are not records are skipped by the index; the records
    // around them are found.
    #[test]
    fn the_index_skips_lines_that_are_not_records() {
        let tmp = tempfile::tempdir().unwrap();
        append(tmp.path(), &rec(3, 1)).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(tmp.path().join(TIMESTAMPS))
            .unwrap();
        f.write_all(b"garbage\ntimestamp 3 !!\n").unwrap();
        f.write_all(&vec![b'x'; 100_000]).unwrap();
        f.write_all(b"\n").unwrap();
        drop(f);
        append(tmp.path(), &rec(3, 2)).unwrap();
        let index = TokenIndex::default();
        let stamps = index.stamps(tmp.path(), &[(0, 9)]).unwrap();
        let want = format!("{}\n{}\n", rec(3, 1).to_line(), rec(3, 2).to_line());
        assert_eq!(lines_for(&stamps, 3).unwrap(), want);
        // Appended to after a skipped line: the index goes on from there.
        append(tmp.path(), &rec(4, 3)).unwrap();
        let stamps = index.stamps(tmp.path(), &[(0, 9)]).unwrap();
        assert_eq!(lines_for(&stamps, 4).unwrap(), rec(4, 3).to_line() + "\n");
        assert_eq!(super::repair(tmp.path()).unwrap(), 3);
        assert_eq!(read(tmp.path()).unwrap().len(), 3);
    }

    // An append cuts a torn last line off, however long, reading the file
    // back from its end only; the complete lines before it stay.
    #[test]
    fn append_cuts_a_torn_tail_of_any_length() {
        for (keep, torn) in [
            (2, 0),
            (2, 5),
            (2, 4095),
            (2, 4096),
            (2, 9000),
            (0, 9000),
            (0, 1),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            for i in 0..keep {
                append(tmp.path(), &rec(i, 1)).unwrap();
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(tmp.path().join(TIMESTAMPS))
                .unwrap();
            f.write_all(&vec![b'A'; torn]).unwrap();
            append(tmp.path(), &rec(7, 2)).unwrap();
            let want: Vec<u64> = (0..keep).chain([7]).collect();
            let got: Vec<u64> = read(tmp.path()).unwrap().iter().map(|r| r.size).collect();
            assert_eq!(got, want, "{keep} records, a torn tail of {torn} bytes");
        }
    }

    fn rec(size: u64, tag: u8) -> TimestampRecord {
        TimestampRecord {
            size,
            token: vec![tag; 3],
        }
    }

    // Each checkpoint gets exactly its own records, in the order given,
    // whatever order the sizes come in (the scan it replaced filtered all).
    #[test]
    fn lines_for_gives_each_size_its_records_in_order() {
        let recs = vec![
            rec(7, 1),
            rec(3, 2),
            rec(7, 3),
            rec(1, 4),
            rec(3, 5),
            rec(9, 6),
        ];
        let want = |size: u64| -> String {
            recs.iter()
                .filter(|r| r.size == size)
                .map(|r| r.to_line() + "\n")
                .collect()
        };
        let expect: Vec<(u64, String)> = (0..11).map(|s| (s, want(s))).collect();
        let stamps = Stamps::new(recs.clone());
        for (size, lines) in expect {
            assert_eq!(lines_for(&stamps, size).unwrap(), lines, "size {size}");
        }
        assert_eq!(lines_for(&Stamps::default(), 3).unwrap(), "");
    }
}
