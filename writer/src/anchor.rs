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
//! and breaks no checkpoint.

use crate::error::{Error, Result};
use crate::log::Log;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use stele_core::timestamp::{Attestation, TimestampRecord, TokenChecker, imprint};

/// The tokens file in a log directory.
pub const TIMESTAMPS: &str = "timestamps";
/// Largest TSA response read.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

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
        .map_err(|e| err(format!("POST {url}: reading the response: {e}")))?;
    stele_tsa::token_from_response(&bytes, &imp, nonce).map_err(|e| err(format!("POST {url}: {e}")))
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
                    "{} line {}: not a timestamp record",
                    path.display(),
                    i + 1
                ))
            })
        })
        .collect()
}

/// Appends a record to `DIR/timestamps` durably (see the module docs).
pub fn append(dir: &Path, rec: &TimestampRecord) -> Result<()> {
    let path = dir.join(TIMESTAMPS);
    let created = !path.exists();
    let mut f = crate::fs::open_own(
        OpenOptions::new().create(true).read(true).append(true),
        &path,
    )
    .map_err(|e| Error::io("open", &path, e))?;
    // A torn last line (crash mid-append) is cut off before appending.
    let mut bytes = Vec::new();
    let _ =
        std::io::Read::read_to_end(&mut f, &mut bytes).map_err(|e| Error::io("read", &path, e))?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() {
        f.set_len(complete as u64)
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
/// given (a token that fails is not kept), and appends it.
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
    if read(dir)?.iter().any(|r| r.size == size) {
        return Ok(Anchored::Already(size));
    }
    let (token, att) = fetch_checked(url, &cp.note, size, ca, timeout)?;
    append(dir, &TimestampRecord { size, token })?;
    Ok(Anchored::New(size, att))
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
    let body = stele_core::Note::parse(note.as_bytes())
        .map_err(|e| err(format!("the checkpoint of size {size} does not parse: {e}")))?
        .text;
    let token = request_token(url, body.as_bytes(), timeout)?;
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

/// Timestamp records ordered by checkpoint size (those of one size in the
/// order given), for [`lines_for`]: an export looks up each checkpoint's
/// (a scan of every record for each checkpoint cost a whole-log export
/// 1.54 s at 6.7k checkpoints and 20k tokens, against 26 ms without tokens).
#[derive(Debug, Default)]
pub(crate) struct Stamps(Vec<TimestampRecord>);

impl Stamps {
    pub(crate) fn new(mut recs: Vec<TimestampRecord>) -> Self {
        recs.sort_by_key(|r| r.size);
        Self(recs)
    }
}

/// The timestamp records of checkpoint `size`, as export lines.
pub(crate) fn lines_for(stamps: &Stamps, size: u64) -> String {
    let recs = &stamps.0;
    let mut out = String::new();
    let first = recs.partition_point(|r| r.size < size);
    for r in recs[first..].iter().take_while(|r| r.size == size) {
        out.push_str(&r.to_line());
        out.push('\n');
    }
    out
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
    use super::{Stamps, TimestampRecord, lines_for};

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
            assert_eq!(lines_for(&stamps, size), lines, "size {size}");
        }
        assert_eq!(lines_for(&Stamps::default(), 3), "");
    }
}
