//! Reading a log: entries, proofs from stored tree hashes, exports, and
//! verification of a log directory as the whole-log export stream.

use crate::error::{Error, Result};
use crate::log::{files, log_config};
use crate::parallel::ParallelVerifier;
use crate::tree::{TreeFile, UpperLevels, stored_len};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stele_core::checkpoint::{Checkpoint, SignedCheckpoint};
use stele_core::entry::MAX_ENTRY_BYTES;
use stele_core::export::{self, ExportKind};
use stele_core::hash::{Hash, leaf_hash};
use stele_core::merkle::{self, HashReader, MemoryTree};
use stele_core::note::VerifierKey;
use stele_core::verify::{Options, Report};

/// An inclusion proof and what it links: `stele prove inclusion` prints it,
/// `GET /v1/proof/inclusion` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry's index.
    pub index: u64,
    /// The size of the tree it is proved in.
    pub tree_size: u64,
    /// The entry's leaf hash.
    pub leaf_hash: Hash,
    /// The root of that tree.
    pub root: Hash,
    /// The RFC 9162 audit path, leaf end first.
    pub proof: Vec<Hash>,
}

impl InclusionProof {
    fn parts(&self) -> Parts<'_> {
        (
            [("index", self.index), ("tree_size", self.tree_size)],
            [("leaf_hash", &self.leaf_hash), ("root", &self.root)],
            &self.proof,
        )
    }

    /// One line of JSON without the newline:
    /// `{"index","tree_size","leaf_hash","root","proof"}`, hashes in base64.
    pub fn to_json(&self) -> String {
        parts_json(self.parts())
    }

    /// Lines of `name value`, then the proof's hashes one a line.
    pub fn to_text(&self) -> String {
        parts_text(self.parts())
    }
}

/// A consistency proof and the two roots it links: `stele prove
/// consistency` prints it, `GET /v1/proof/consistency` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
    /// The root at `from`.
    pub old_root: Hash,
    /// The root at `to`.
    pub new_root: Hash,
    /// The RFC 9162 consistency proof.
    pub proof: Vec<Hash>,
}

impl ConsistencyProof {
    fn parts(&self) -> Parts<'_> {
        (
            [("from", self.from), ("to", self.to)],
            [("old_root", &self.old_root), ("new_root", &self.new_root)],
            &self.proof,
        )
    }

    /// One line of JSON without the newline:
    /// `{"from","to","old_root","new_root","proof"}`, hashes in base64.
    pub fn to_json(&self) -> String {
        parts_json(self.parts())
    }

    /// Lines of `name value`, then the proof's hashes one a line.
    pub fn to_text(&self) -> String {
        parts_text(self.parts())
    }
}

/// A proof record's two numbers and two hashes, named, in output order,
/// then the proof.
type Parts<'a> = (
    [(&'static str, u64); 2],
    [(&'static str, &'a Hash); 2],
    &'a [Hash],
);

fn parts_json((nums, hashes, proof): Parts<'_>) -> String {
    let mut s = String::from("{");
    for (k, v) in nums {
        s += &format!("\"{k}\":{v},");
    }
    for (k, h) in hashes {
        s += &format!("\"{k}\":\"{h}\",");
    }
    s + &format!("\"proof\":{}}}", b64_list(proof))
}

fn parts_text((nums, hashes, proof): Parts<'_>) -> String {
    let mut s = String::new();
    for (k, v) in nums {
        s += &format!("{k} {v}\n");
    }
    for (k, h) in hashes {
        s += &format!("{k} {h}\n");
    }
    for h in proof {
        s += &format!("{h}\n");
    }
    s
}

/// A JSON array of base64 hashes.
fn b64_list(hashes: &[Hash]) -> String {
    let items: Vec<String> = hashes
        .iter()
        .map(|h| format!("\"{}\"", h.to_base64()))
        .collect();
    format!("[{}]", items.join(","))
}

/// A signed checkpoint as stored: the parsed body and the whole note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The checkpoint body.
    pub checkpoint: Checkpoint,
    /// The whole signed note, as written.
    pub note: String,
}

/// The signed checkpoints of a log, oldest first, shared by the log and its
/// views. Full chunks are never changed again: a view holds them by
/// reference count, and a checkpoint signed while views are alive copies at
/// most one chunk and the chunks' pointers. (One `Vec` behind an `Arc` was
/// copied whole at each checkpoint signed while any view lived, and an
/// export cut to a size kept a copy of its own: with requests in flight a
/// log's signing cost grew with its checkpoint count, and every slow export
/// download held a copy of all of them.)
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    full: Arc<Vec<Arc<[StoredCheckpoint]>>>,
    tail: Arc<Vec<StoredCheckpoint>>,
}

impl Checkpoints {
    /// Checkpoints a chunk holds once full.
    const CHUNK: usize = 256;

    /// How many.
    pub fn len(&self) -> usize {
        self.full.len() * Self::CHUNK + self.tail.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The latest.
    pub fn last(&self) -> Option<&StoredCheckpoint> {
        self.tail
            .last()
            .or_else(|| self.full.last().and_then(|c| c.last()))
    }

    /// The `i`th, oldest first.
    pub fn get(&self, i: usize) -> Option<&StoredCheckpoint> {
        match self.full.get(i / Self::CHUNK) {
            Some(c) => c.get(i % Self::CHUNK),
            None => self.tail.get(i - self.full.len() * Self::CHUNK),
        }
    }

    /// Oldest first (`.rev()` for newest first).
    pub fn iter(&self) -> CheckpointsIter<'_> {
        CheckpointsIter {
            list: self,
            front: 0,
            back: self.len(),
        }
    }

    /// All of them, copied.
    pub fn to_vec(&self) -> Vec<StoredCheckpoint> {
        self.iter().cloned().collect()
    }

    /// Adds the newest.
    pub fn push(&mut self, c: StoredCheckpoint) {
        let tail = Arc::make_mut(&mut self.tail);
        tail.push(c);
        if tail.len() == Self::CHUNK {
            let chunk: Arc<[StoredCheckpoint]> = std::mem::take(tail).into();
            Arc::make_mut(&mut self.full).push(chunk);
        }
    }

    /// The checkpoints of at most `size` entries. Sizes never decrease
    /// along a log's checkpoints, so this is a prefix, which shares this
    /// list's full chunks; otherwise they are copied one by one.
    pub fn up_to(&self, size: u64) -> Self {
        let n = self
            .iter()
            .position(|c| c.checkpoint.size > size)
            .unwrap_or(self.len());
        if self.iter().skip(n).any(|c| c.checkpoint.size <= size) {
            return self
                .iter()
                .filter(|c| c.checkpoint.size <= size)
                .cloned()
                .collect();
        }
        self.prefix(n)
    }

    // The first `n` (at most all).
    fn prefix(&self, n: usize) -> Self {
        if n >= self.len() {
            return self.clone();
        }
        let whole = n / Self::CHUNK;
        let tail = match self.full.get(whole) {
            Some(c) => c[..n % Self::CHUNK].to_vec(),
            None => self.tail[..n - whole * Self::CHUNK].to_vec(),
        };
        Self {
            full: Arc::new(self.full[..whole].to_vec()),
            tail: Arc::new(tail),
        }
    }
}

/// [`Checkpoints::iter`].
#[derive(Debug, Clone)]
pub struct CheckpointsIter<'a> {
    list: &'a Checkpoints,
    front: usize,
    back: usize,
}

impl<'a> Iterator for CheckpointsIter<'a> {
    type Item = &'a StoredCheckpoint;

    fn next(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        self.front += 1;
        self.list.get(self.front - 1)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.back - self.front, Some(self.back - self.front))
    }
}

impl DoubleEndedIterator for CheckpointsIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        self.list.get(self.back)
    }
}

impl ExactSizeIterator for CheckpointsIter<'_> {}

impl<'a> IntoIterator for &'a Checkpoints {
    type Item = &'a StoredCheckpoint;
    type IntoIter = CheckpointsIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl FromIterator<StoredCheckpoint> for Checkpoints {
    fn from_iter<I: IntoIterator<Item = StoredCheckpoint>>(iter: I) -> Self {
        let mut out = Self::default();
        for c in iter {
            out.push(c);
        }
        out
    }
}

impl From<Vec<StoredCheckpoint>> for Checkpoints {
    fn from(v: Vec<StoredCheckpoint>) -> Self {
        v.into_iter().collect()
    }
}

/// What [`View::open_read_only_after`] read of a checkpoints file: every
/// complete record (unchecked signatures, as a read-only view reads them)
/// and how many bytes they fill.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadCheckpoints {
    all: Checkpoints,
    len: u64,
    // The timestamps index of the views opened from it, passed on.
    stamps: crate::anchor::TokenIndex,
}

impl ReadCheckpoints {
    // The checkpoints file of `dir`, reading only past `prev` when the file
    // still holds `prev`'s last record, byte for byte, where it ended.
    fn read(dir: &Path, prev: Option<&Self>) -> Result<Self> {
        use std::io::{Read, Seek, SeekFrom};
        let path = dir.join(files::CHECKPOINTS);
        let mut f = crate::fs::open_own_read(&path).map_err(|e| Error::io("open", &path, e))?;
        let file_len = f.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
        if let Some(p) = prev
            && let Some(last) = p.all.last()
        {
            let record = format!("{}\n{}", last.note.len(), last.note);
            let at = p.len.checked_sub(record.len() as u64);
            if let Some(at) = at.filter(|_| file_len >= p.len) {
                let mut bytes = Vec::new();
                let _ = f
                    .seek(SeekFrom::Start(at))
                    .and_then(|_| f.read_to_end(&mut bytes))
                    .map_err(|e| Error::io("read", &path, e))?;
                // Anything odd in the new part (a bad record, a size going
                // down) is left to the whole file's parse, whose errors
                // name the byte in the file.
                if bytes.starts_with(record.as_bytes())
                    && let Ok((new, good)) = parse_checkpoints(dir, &bytes[record.len()..], &[])
                    && new
                        .first()
                        .is_none_or(|c| c.checkpoint.size >= last.checkpoint.size)
                {
                    let mut all = p.all.clone();
                    for c in new {
                        all.push(c);
                    }
                    return Ok(Self {
                        all,
                        len: p.len + good,
                        stamps: p.stamps.clone(),
                    });
                }
            }
            let _ = f
                .seek(SeekFrom::Start(0))
                .map_err(|e| Error::io("read", &path, e))?;
        }
        let mut bytes = Vec::new();
        let _ = f
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", &path, e))?;
        let (all, good) = parse_checkpoints(dir, &bytes, &[])?;
        Ok(Self {
            all: all.into(),
            len: good,
            stamps: prev.map(|p| p.stamps.clone()).unwrap_or_default(),
        })
    }
}

/// Parses the checkpoints file (`<length>\n<note>` records). Returns the
/// checkpoints and the length of the complete records; a torn last record
/// is left out. With `keys`, every note must be signed by one of them.
pub fn parse_checkpoints(
    dir: &Path,
    bytes: &[u8],
    keys: &[VerifierKey],
) -> Result<(Vec<StoredCheckpoint>, u64)> {
    parse_checkpoints_after(dir, bytes, keys, 0)
}

/// [`parse_checkpoints`], checking signatures only on records that start at
/// or after byte `verified`, and on the last record before it: those before
/// were verified when the log's check mark was written (see writer/README.md,
/// "Opening and recovery"), and the last one, checked again with today's
/// keys, catches a key file or configuration restored from another time or
/// log (the writer would sign with a key the log's history does not name).
pub(crate) fn parse_checkpoints_after(
    dir: &Path,
    bytes: &[u8],
    keys: &[VerifierKey],
    verified: u64,
) -> Result<(Vec<StoredCheckpoint>, u64)> {
    let mut out: Vec<StoredCheckpoint> = Vec::new();
    let bad = |at: usize, why: String| Error::CheckpointMismatch {
        dir: dir.into(),
        why: format!("{} byte {at}: {why}", files::CHECKPOINTS),
    };
    let records = split_records(bytes).map_err(|(at, why)| bad(at, why))?;
    let last_marked = records
        .records
        .iter()
        .rposition(|(at, _)| (*at as u64) < verified);
    for (i, (at, note)) in records.records.into_iter().enumerate() {
        let sc = SignedCheckpoint::parse(note).map_err(|e| bad(at, e.to_string()))?;
        if !keys.is_empty() && (at as u64 >= verified || Some(i) == last_marked) {
            let v = sc.verify(keys);
            if !v.trusted() {
                let ids: Vec<String> = keys.iter().map(VerifierKey::id_hex).collect();
                return Err(bad(
                    at,
                    format!(
                        "checkpoint of size {} is not signed by the log's key (key IDs {} from {} and its key files): is {} or a key file from another log or an older backup?",
                        sc.checkpoint.size,
                        ids.join(", "),
                        files::CONFIG,
                        files::CONFIG,
                    ),
                ));
            }
        }
        if let Some(last) = out.last()
            && sc.checkpoint.size < last.checkpoint.size
        {
            return Err(bad(
                at,
                format!(
                    "checkpoint of size {} follows one of size {}",
                    sc.checkpoint.size, last.checkpoint.size
                ),
            ));
        }
        out.push(StoredCheckpoint {
            checkpoint: sc.checkpoint,
            note: String::from_utf8_lossy(note).into_owned(),
        });
    }
    Ok((out, records.complete_len as u64))
}

struct Records<'a> {
    // (offset of the note, note bytes)
    records: Vec<(usize, &'a [u8])>,
    complete_len: usize,
}

fn split_records(bytes: &[u8]) -> Result<Records<'_>, (usize, String)> {
    let mut records = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(nl) = memchr::memchr(b'\n', &bytes[pos..]) else {
            break; // torn header
        };
        let head = &bytes[pos..pos + nl];
        let len: usize = std::str::from_utf8(head)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                (
                    pos,
                    format!(
                        "expected a record length, found {:?}",
                        String::from_utf8_lossy(&head[..head.len().min(40)])
                    ),
                )
            })?;
        let start = pos + nl + 1;
        if start + len > bytes.len() {
            break; // torn note
        }
        records.push((start, &bytes[start..start + len]));
        pos = start + len;
    }
    Ok(Records {
        records,
        complete_len: pos,
    })
}

// Shared, so a view is cloned in O(1) (a read-only server cuts the view
// every request shares for each export).
#[derive(Debug, Clone)]
pub(crate) enum TreeSrc {
    File(Arc<File>, PathBuf, Arc<UpperLevels>),
    Mem(Arc<MemoryTree>),
}

#[derive(Debug, Clone)]
pub(crate) enum Index {
    File(Arc<File>, PathBuf),
    Mem(Arc<Vec<u64>>),
}

/// A consistent read-only view of a log: `size` entries, the checkpoints
/// signed up to then, and the stored tree hashes. Proofs read O(log n)
/// stored hashes. A clone shares everything it reads.
#[derive(Debug, Clone)]
pub struct View {
    pub(crate) dir: PathBuf,
    pub(crate) origin: String,
    pub(crate) entries: Arc<File>,
    pub(crate) entries_path: PathBuf,
    pub(crate) entries_len: u64,
    pub(crate) size: u64,
    pub(crate) tree: TreeSrc,
    pub(crate) index: Index,
    pub(crate) checkpoints: Checkpoints,
    // Where `timestamps`' records are (shared with the log, or with the
    // read-only views opened before this one).
    pub(crate) stamps: crate::anchor::TokenIndex,
}

impl HashReader for View {
    type Error = Error;
    fn read_hash(&self, level: u32, index: u64) -> Result<Hash> {
        match &self.tree {
            TreeSrc::File(f, p, upper) => upper.read(
                &TreeFile {
                    file: f,
                    path: p,
                    size: self.size,
                },
                level,
                index,
            ),
            TreeSrc::Mem(m) => Ok(m.read_hash(level, index)?),
        }
    }
}

pub(crate) fn read_u64_at(f: &File, path: &Path, at: u64) -> Result<u64> {
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, at)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(u64::from_le_bytes(b))
}

pub(crate) fn leaves_for_stored(hashes: u64) -> u64 {
    // The largest n with stored_len(n) <= hashes (stored_len is increasing).
    // stored_len(n) = 2n - popcount(n) >= 2n - 64, so n <= hashes / 2 + 32.
    let (mut lo, mut hi) = (0u64, hashes / 2 + 32);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if stored_len(mid) <= hashes {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The longest entry line with its newline.
const MAX_LINE_BYTES: usize = MAX_ENTRY_BYTES + 1;

/// Reads the next line into `line` (replacing its contents), keeping at most
/// `max` bytes of it: a longer line is skipped to its end, never buffered.
/// Returns the line's whole length (with the `\n`; more than `max` when it
/// was too long) and whether it ended in `\n` (else it is the end of the
/// file). (0, false) at the end.
pub fn read_line_bounded(
    r: &mut impl std::io::BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(usize, bool)> {
    line.clear();
    let mut total = 0usize;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((total, false));
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if total + take <= max {
            line.extend_from_slice(&buf[..take]);
        } else {
            line.clear();
        }
        total = total.saturating_add(take);
        r.consume(take);
        if done {
            return Ok((total, true));
        }
    }
}

impl View {
    /// Opens a log directory read-only, without the writer lock, the key or
    /// any repair: for reading a log another process is writing, or one on
    /// read-only storage. Derived files that look wrong are ignored and the
    /// tree is rebuilt in memory from the entries.
    pub fn open_read_only(dir: &Path) -> Result<Self> {
        Ok(Self::open_read_only_after(dir, None)?.0)
    }

    /// [`View::open_read_only`] that reads only what was appended to the
    /// checkpoints file since `prev` (what an earlier call returned) when
    /// the file still holds `prev`'s last record where it was; otherwise
    /// the whole file. A read-only server reopens its view after every
    /// change to the log: parsing every checkpoint each time took 2.0-2.7 s
    /// at 670k checkpoints, and held up its other requests meanwhile.
    pub(crate) fn open_read_only_after(
        dir: &Path,
        prev: Option<&ReadCheckpoints>,
    ) -> Result<(Self, ReadCheckpoints)> {
        let (origin, _) = log_config(dir)?;
        let entries_path = dir.join(files::ENTRIES);
        let entries = Arc::new(
            crate::fs::open_own_read(&entries_path)
                .map_err(|e| Error::io("open", &entries_path, e))?,
        );
        let read = ReadCheckpoints::read(dir, prev)?;
        let cps = &read.all;
        let file_len = entries
            .metadata()
            .map_err(|e| Error::io("stat", &entries_path, e))?
            .len();
        let tree_path = dir.join(files::TREE);
        let index_path = dir.join(files::INDEX);
        if let (Ok(tree), Ok(index)) = (
            crate::fs::open_own_read(&tree_path),
            crate::fs::open_own_read(&index_path),
        ) {
            let tlen = tree.metadata().map(|m| m.len()).unwrap_or(0);
            let ilen = index.metadata().map(|m| m.len()).unwrap_or(0);
            let size = leaves_for_stored(tlen / 32).min(ilen / 8);
            let mut view = Self {
                dir: dir.into(),
                origin: origin.clone(),
                entries: entries.clone(),
                entries_path: entries_path.clone(),
                entries_len: 0,
                size,
                tree: TreeSrc::File(Arc::new(tree), tree_path, Default::default()),
                index: Index::File(Arc::new(index), index_path),
                checkpoints: Checkpoints::default(),
                stamps: read.stamps.clone(),
            };
            let covered = cps.up_to(size);
            let fresh = covered.len() == cps.len();
            if size > 0 && fresh && view.quick_check(file_len, covered.last()).unwrap_or(false) {
                view.entries_len = view.end(size - 1)?;
                view.checkpoints = covered;
                return Ok((view, read));
            }
        }
        // Rebuild in memory from the complete lines of the entries file.
        let mut tree = MemoryTree::new();
        let mut ends = Vec::new();
        let mut r = std::io::BufReader::with_capacity(
            8 << 20,
            crate::fs::open_own_read(&entries_path)
                .map_err(|e| Error::io("open", &entries_path, e))?,
        );
        let mut line = Vec::new();
        let mut off = 0u64;
        loop {
            let (n, complete) = read_line_bounded(&mut r, &mut line, MAX_LINE_BYTES)
                .map_err(|e| Error::io("read", &entries_path, e))?;
            if n > MAX_LINE_BYTES {
                return Err(Error::Corrupt {
                    dir: dir.into(),
                    entry: ends.len() as u64,
                    offset: off,
                    why: format!(
                        "line is {}{n} bytes, more than an entry can be ({MAX_ENTRY_BYTES} bytes and its newline)",
                        if complete { "" } else { "at least " }
                    ),
                });
            }
            if !complete {
                break;
            }
            tree.push(leaf_hash(&line[..n - 1]));
            off += n as u64;
            ends.push(off);
        }
        let size = tree.size();
        let checkpoints = cps.up_to(size);
        Ok((
            Self {
                dir: dir.into(),
                origin,
                entries,
                entries_path,
                entries_len: off,
                size,
                tree: TreeSrc::Mem(Arc::new(tree)),
                index: Index::Mem(Arc::new(ends)),
                checkpoints,
                stamps: read.stamps.clone(),
            },
            read,
        ))
    }

    // Cheap checks that derived files agree with the entries: the last
    // indexed line ends in a newline and hashes to the stored leaf, and the
    // latest checkpoint's root matches the stored tree.
    fn quick_check(&self, file_len: u64, cp: Option<&StoredCheckpoint>) -> Result<bool> {
        let last = self.size - 1;
        let end = self.end(last)?;
        let start = self.start(last)?;
        if end > file_len || start >= end || end - start > MAX_LINE_BYTES as u64 {
            return Ok(false);
        }
        let line = self.read_range(start, end)?;
        if line.last() != Some(&b'\n')
            || leaf_hash(&line[..line.len() - 1]) != self.read_hash(0, last)?
        {
            return Ok(false);
        }
        if let Some(c) = cp
            && merkle::root(self, c.checkpoint.size)? != c.checkpoint.root
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of entries in this view.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of the entries file this view covers.
    pub fn entries_len(&self) -> u64 {
        self.entries_len
    }

    /// Every checkpoint signed up to this view's size, oldest first.
    pub fn checkpoints(&self) -> &Checkpoints {
        &self.checkpoints
    }

    /// The latest checkpoint.
    pub fn latest_checkpoint(&self) -> Option<&StoredCheckpoint> {
        self.checkpoints.last()
    }

    /// The checkpoint signed for exactly `size` entries, if any.
    pub fn checkpoint_at(&self, size: u64) -> Option<&StoredCheckpoint> {
        self.checkpoints
            .iter()
            .rev()
            .find(|c| c.checkpoint.size == size)
    }

    /// This view cut to its first `size` entries (at most its own size) and
    /// the checkpoints of at most that size: a log export of it ends with a
    /// checkpoint covering every entry when `size` is a checkpoint's size.
    pub fn up_to(mut self, size: u64) -> Result<Self> {
        let size = size.min(self.size);
        self.entries_len = self.start(size)?;
        self.size = size;
        self.checkpoints = self.checkpoints.up_to(size);
        Ok(self)
    }

    fn end(&self, i: u64) -> Result<u64> {
        match &self.index {
            Index::File(f, p) => read_u64_at(f, p, i * 8),
            Index::Mem(v) => Ok(v[i as usize]),
        }
    }

    fn start(&self, i: u64) -> Result<u64> {
        if i == 0 { Ok(0) } else { self.end(i - 1) }
    }

    fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; (end - start) as usize];
        self.entries
            .read_exact_at(&mut buf, start)
            .map_err(|e| Error::io("read", &self.entries_path, e))?;
        Ok(buf)
    }

    fn check_index(&self, i: u64) -> Result<()> {
        if i >= self.size {
            return Err(Error::OutOfRange(format!(
                "entry {i} is beyond the log's {} entries",
                self.size
            )));
        }
        Ok(())
    }

    fn check_range(&self, from: u64, to: u64) -> Result<()> {
        if from >= to || to > self.size {
            return Err(Error::OutOfRange(format!(
                "range {from}..{to} is not a non-empty part of the log's {} entries",
                self.size
            )));
        }
        Ok(())
    }

    /// Entry `i`'s line, without its `\n`.
    pub fn entry(&self, i: u64) -> Result<Vec<u8>> {
        self.check_index(i)?;
        let (start, end) = (self.start(i)?, self.end(i)?);
        if end <= start || end - start > MAX_LINE_BYTES as u64 {
            // A damaged index must not make a read of gigabytes.
            return Err(Error::Corrupt {
                dir: self.dir.clone(),
                entry: i,
                offset: start,
                why: format!(
                    "the index puts the entry at bytes {start}..{end}, not a line an entry can be (1 to {MAX_LINE_BYTES} bytes)"
                ),
            });
        }
        let mut line = self.read_range(start, end)?;
        // The index and the tree are derived files that open trusts past
        // the check mark (writer/README.md): a wrong offset in the middle
        // of the index would hand out another entry's line as this one.
        // One hash against the stored leaf catches that.
        if line.pop() != Some(b'\n') || leaf_hash(&line) != self.read_hash(0, i)? {
            return Err(Error::Corrupt {
                dir: self.dir.clone(),
                entry: i,
                offset: start,
                why: format!(
                    "the index puts the entry at bytes {start}..{end}, which do not hold the line the tree has for it (a damaged index or tree: `stele fsck` checks the log, `stele verify` of a log directory checks every entry)"
                ),
            });
        }
        Ok(line)
    }

    /// How many bytes the lines of entries `from..to` take (with their
    /// `\n`s): what [`View::write_entries`] writes, from the index alone.
    pub fn entries_bytes(&self, from: u64, to: u64) -> Result<u64> {
        self.check_range(from, to)?;
        let (start, end) = (self.start(from)?, self.end(to - 1)?);
        if end <= start || end - start > (to - from).saturating_mul(MAX_LINE_BYTES as u64) {
            // A damaged index must not size a read of gigabytes.
            return Err(Error::Corrupt {
                dir: self.dir.clone(),
                entry: from,
                offset: start,
                why: format!(
                    "the index puts entries {from}..{to} at bytes {start}..{end}, more than {} entries can take",
                    to - from
                ),
            });
        }
        Ok(end - start)
    }

    /// Writes the lines of entries `from..to`, byte for byte (with `\n`).
    /// The first and the last are checked against the tree first (see
    /// [`View::entry`]): the bytes between two right line ends are the lines
    /// between them, so a damaged index cannot shift the range.
    pub fn write_entries(&self, from: u64, to: u64, w: &mut dyn Write) -> Result<u64> {
        self.check_range(from, to)?;
        let _ = self.entry(from)?;
        let _ = self.entry(to - 1)?;
        let (start, end) = (self.start(from)?, self.end(to - 1)?);
        self.copy(start, end, w, &mut |_| {})?;
        Ok(end - start)
    }

    fn copy(
        &self,
        start: u64,
        end: u64,
        w: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let mut buf = vec![0u8; (1 << 20).min((end - start) as usize)];
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            self.entries
                .read_exact_at(&mut buf[..n], at)
                .map_err(|e| Error::io("read", &self.entries_path, e))?;
            w.write_all(&buf[..n])
                .map_err(|e| Error::io("write", "<output>", e))?;
            at += n as u64;
            progress(n as u64);
        }
        Ok(())
    }

    /// RFC 9162 root of the first `size` entries.
    pub fn root(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        merkle::root(self, size)
    }

    /// This view with proofs reading every hash from the tree file, without
    /// the cache of the tree's top levels (the baseline of `stele bench proofs`).
    pub fn uncached(mut self) -> Self {
        if let TreeSrc::File(_, _, upper) = &mut self.tree {
            *upper = Arc::new(UpperLevels::off());
        }
        self
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.size {
            return Err(Error::OutOfRange(format!(
                "tree size {size} is beyond the log's {} entries",
                self.size
            )));
        }
        Ok(())
    }

    /// RFC 9162 inclusion proof of entry `index` in the tree of `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        merkle::inclusion_proof(self, index, size)
    }

    /// RFC 9162 consistency proof from tree size `old` to `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.check_size(new)?;
        merkle::consistency_proof(self, old, new)
    }

    /// Checks that entry `index` lies in a tree of `size` this log has.
    pub fn check_inclusion(&self, index: u64, size: u64) -> Result<()> {
        if index >= size || size > self.size {
            return Err(Error::OutOfRange(format!(
                "entry {index} is not in a tree of size {size} (the log has {} entries)",
                self.size
            )));
        }
        Ok(())
    }

    /// Entry `index`'s inclusion proof in the tree of `size`, with the
    /// leaf hash and root it links.
    pub fn inclusion(&self, index: u64, size: u64) -> Result<InclusionProof> {
        self.check_inclusion(index, size)?;
        Ok(InclusionProof {
            index,
            tree_size: size,
            proof: self.inclusion_proof(index, size)?,
            leaf_hash: self.leaf_hash(index)?,
            root: self.root(size)?,
        })
    }

    /// Checks that `from..=to` are tree sizes this log has, `from` first.
    pub fn check_consistency(&self, from: u64, to: u64) -> Result<()> {
        if from > to || to > self.size {
            return Err(Error::OutOfRange(format!(
                "sizes {from} and {to} do not fit the log's {} entries (from must be at most to)",
                self.size
            )));
        }
        Ok(())
    }

    /// The consistency proof from tree size `from` to `to`, with both roots.
    pub fn consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof> {
        self.check_consistency(from, to)?;
        Ok(ConsistencyProof {
            from,
            to,
            proof: self.consistency_proof(from, to)?,
            old_root: self.root(from)?,
            new_root: self.root(to)?,
        })
    }

    /// The leaf hash of entry `i`, from the stored tree.
    pub fn leaf_hash(&self, i: u64) -> Result<Hash> {
        self.check_index(i)?;
        self.read_hash(0, i)
    }

    /// Writes the whole-log export: header, every entry, each checkpoint
    /// right after the entry that completes it.
    pub fn export_log(&self, w: &mut dyn Write, progress: &mut dyn FnMut(u64)) -> Result<()> {
        self.export_log_to(self.size, w, progress)
    }

    /// The whole-log export of the first `size` entries: header, entries
    /// `0..size`, each checkpoint up to `size` after the entry that
    /// completes it. With `size` the latest checkpoint's, the export ends
    /// with a checkpoint covering everything in it.
    pub fn export_log_to(
        &self,
        size: u64,
        w: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        self.export_log_revealed_to(size, &[], w, progress)
    }

    /// [`View::export_log`] with the sealed-field records (FORMAT 13.6):
    /// openings only of data keys wrapped for a recipient in `reveal`.
    pub fn export_log_revealed(
        &self,
        reveal: &[String],
        w: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        self.export_log_revealed_to(self.size, reveal, w, progress)
    }

    /// [`View::export_log_to`] with the sealed-field records for `reveal`.
    pub fn export_log_revealed_to(
        &self,
        size: u64,
        reveal: &[String],
        w: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        if size > self.size {
            return Err(Error::OutOfRange(format!(
                "entry {} is beyond the log's {} entries",
                size - 1,
                self.size
            )));
        }
        let last = if size == 0 { 0 } else { self.end(size - 1)? };
        put(w, export::header(ExportKind::Log).as_bytes())?;
        let mut seal = crate::sealed::ExportRecords::open(&self.dir, reveal)?;
        if let Some(s) = &mut seal {
            s.write_head(&mut |b| put(w, b))?;
        }
        let stamps = self.stamps.stamps(&self.dir, &[(0, size)])?;
        let mut at = 0;
        for c in self
            .checkpoints
            .iter()
            .filter(|c| c.checkpoint.size <= size)
        {
            let end = if c.checkpoint.size == 0 {
                0
            } else {
                self.end(c.checkpoint.size - 1)?
            };
            self.copy_sealed(at, end, &mut seal, w, progress)?;
            at = end;
            put(w, export::checkpoint_record(&c.note).as_bytes())?;
            put(
                w,
                crate::anchor::lines_for(&stamps, c.checkpoint.size)?.as_bytes(),
            )?;
        }
        self.copy_sealed(at, last, &mut seal, w, progress)
    }

    // Copies entry bytes start..end, each entry followed by its sealed-field
    // records (the records file is in entry order).
    fn copy_sealed(
        &self,
        start: u64,
        end: u64,
        seal: &mut Option<crate::sealed::ExportRecords>,
        w: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let mut at = start;
        if let Some(s) = seal.as_mut() {
            while let Some(k) = s.peek().filter(|&k| k < self.size) {
                let e = self.end(k)?;
                if e > end {
                    break;
                }
                if e <= at {
                    s.write_for(k, &mut std::io::sink())?; // an entry not in this export
                    continue;
                }
                self.copy(at, e, w, progress)?;
                at = e;
                s.write_for(k, w)?;
            }
        }
        self.copy(at, end, w, progress)
    }

    /// Writes a range export of entries `from..to`. The latest checkpoint
    /// must be at least `to`.
    pub fn export_range(
        &self,
        from: u64,
        to: u64,
        w: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        self.export_range_revealed(from, to, &[], w, progress)
    }

    /// [`View::export_range`] with sealed-field records revealed to `reveal`.
    pub fn export_range_revealed(
        &self,
        from: u64,
        to: u64,
        reveal: &[String],
        w: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        self.check_range(from, to)?;
        let latest = self.need_checkpoint(to)?;
        self.export_range_to(from, to, latest, reveal, w, progress)
    }

    /// [`View::export_range`] ending at `covering` (one of this view's
    /// checkpoints, of at least `to` entries) instead of the latest: what
    /// the export of this view cut to `covering`'s size writes, without
    /// the cut.
    pub(crate) fn export_range_covered(
        &self,
        from: u64,
        to: u64,
        covering: &StoredCheckpoint,
        w: &mut dyn Write,
    ) -> Result<()> {
        self.check_range(from, to)?;
        let n = covering.checkpoint.size;
        if n < to || n > self.size {
            return Err(Error::OutOfRange(format!(
                "a checkpoint of {n} entries cannot end a range export of entries {from}..{to} from a view of {} entries",
                self.size
            )));
        }
        self.export_range_to(from, to, covering, &[], w, &mut |_| {})
    }

    fn export_range_to(
        &self,
        from: u64,
        to: u64,
        latest: &StoredCheckpoint,
        reveal: &[String],
        w: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        put(w, export::header(ExportKind::Range).as_bytes())?;
        let in_range = |i: u64| (from..to).contains(&i);
        let mut seal =
            crate::sealed::ExportRecords::open_for(&self.dir, reveal, Some((from..to, &in_range)))?;
        if let Some(s) = &mut seal {
            s.write_head(&mut |b| put(w, b))?;
        }
        put(
            w,
            export::range_record(from, &merkle::left_hashes(self, from)?).as_bytes(),
        )?;
        let n = latest.checkpoint.size;
        let stamps = self.stamps.stamps(&self.dir, &[(from + 1, to), (n, n)])?;
        let mut at = self.start(from)?;
        for c in self
            .checkpoints
            .iter()
            .filter(|c| c.checkpoint.size > from && c.checkpoint.size <= to)
        {
            let end = self.end(c.checkpoint.size - 1)?;
            self.copy_sealed(at, end, &mut seal, w, progress)?;
            at = end;
            put(w, export::checkpoint_record(&c.note).as_bytes())?;
            put(
                w,
                crate::anchor::lines_for(&stamps, c.checkpoint.size)?.as_bytes(),
            )?;
        }
        self.copy_sealed(at, self.end(to - 1)?, &mut seal, w, progress)?;
        if n > to {
            put(
                w,
                export::right_record(n, &merkle::right_hashes(self, to, n)?).as_bytes(),
            )?;
            put(w, export::checkpoint_record(&latest.note).as_bytes())?;
            put(w, crate::anchor::lines_for(&stamps, n)?.as_bytes())?;
        }
        Ok(())
    }

    fn need_checkpoint(&self, size: u64) -> Result<&StoredCheckpoint> {
        match self.latest_checkpoint() {
            Some(c) if c.checkpoint.size >= size => Ok(c),
            c => Err(Error::OutOfRange(format!(
                "the latest checkpoint covers {} entries, fewer than the {size} needed",
                c.map_or(0, |c| c.checkpoint.size)
            ))),
        }
    }

    /// Writes an export of selected entries (ascending, no repeats), each with
    /// its inclusion proof in the latest checkpoint.
    pub fn export_entries(&self, indexes: &[u64], w: &mut dyn Write) -> Result<()> {
        self.export_entries_revealed(indexes, &[], w)
    }

    /// [`View::export_entries`] with sealed-field records revealed to `reveal`.
    pub fn export_entries_revealed(
        &self,
        indexes: &[u64],
        reveal: &[String],
        w: &mut dyn Write,
    ) -> Result<()> {
        if indexes.is_empty() {
            return Err(Error::OutOfRange("no entries selected".into()));
        }
        if indexes.windows(2).any(|p| p[0] >= p[1]) {
            return Err(Error::OutOfRange(
                "selected entries must be in increasing order without repeats".into(),
            ));
        }
        let max = *indexes.last().expect("non-empty");
        self.check_index(max)?;
        let latest = self.need_checkpoint(max + 1)?;
        let n = latest.checkpoint.size;
        put(w, export::header(ExportKind::Entries).as_bytes())?;
        let listed = |i: u64| indexes.binary_search(&i).is_ok();
        let mut seal = crate::sealed::ExportRecords::open_for(
            &self.dir,
            reveal,
            Some((indexes[0]..max + 1, &listed)),
        )?;
        if let Some(s) = &mut seal {
            s.write_head(&mut |b| put(w, b))?;
        }
        put(w, export::checkpoint_record(&latest.note).as_bytes())?;
        let stamps = self.stamps.stamps(&self.dir, &[(n, n)])?;
        put(w, crate::anchor::lines_for(&stamps, n)?.as_bytes())?;
        for &i in indexes {
            put(
                w,
                export::inclusion_record(i, &merkle::inclusion_proof(self, i, n)?).as_bytes(),
            )?;
            let mut line = self.entry(i)?;
            line.push(b'\n');
            put(w, &line)?;
            if let Some(s) = seal.as_mut() {
                s.write_for(i, w)?;
            }
        }
        Ok(())
    }

    /// A C2SP tlog-proof of entry `index` in the checkpoint of `size`.
    pub fn tlog_proof(&self, index: u64, size: u64) -> Result<String> {
        let cp = self.checkpoint_at(size).ok_or_else(|| {
            Error::OutOfRange(format!("no checkpoint is signed for tree size {size}"))
        })?;
        let proof = self.inclusion_proof(index, size)?;
        Ok(export::tlog_proof(
            &self.entry(index)?,
            index,
            &proof,
            &cp.note,
        ))
    }
}

fn put(w: &mut dyn Write, b: &[u8]) -> Result<()> {
    w.write_all(b)
        .map_err(|e| Error::io("write", "<output>", e))
}

/// Verifies a log directory as it is on disk, without the lock or any
/// repair: the entries file and the checkpoints are fed to core's
/// core's verifier as the whole-log export they make (so line numbers in
/// the report are those of `stele export DIR`). Every byte of the entries
/// file is checked, including a torn tail.
pub fn verify_dir(dir: &Path, opts: Options, progress: &mut dyn FnMut(u64, u64)) -> Result<Report> {
    verify_dir_revealed(dir, opts, &[], progress)
}

/// [`verify_dir`] with the log's sealed-field records (docs/FORMAT.md 13.6)
/// in their places, as an export revealed to `reveal` (auditors' `age1…`
/// recipients) would carry them: with an opener in `opts` whose identities
/// match, sealed values are opened and checked against their commitments.
/// The `forgotten` and `redacted` records are always included.
pub fn verify_dir_revealed(
    dir: &Path,
    opts: Options,
    reveal: &[String],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report> {
    let _ = log_config(dir)?;
    verify_files(dir, opts, reveal, progress)
}

// [`verify_dir_revealed`] of the files alone: the entries, checkpoints,
// timestamps and sealed-field records in `dir`, whether or not `stele.json`
// is there yet (`stele restore` checks a copy before it makes it a log).
pub(crate) fn verify_files(
    dir: &Path,
    opts: Options,
    reveal: &[String],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report> {
    let mut seal = crate::sealed::ExportRecords::open(dir, reveal)?;
    let entries_path = dir.join(files::ENTRIES);
    let mut f =
        crate::fs::open_own_read(&entries_path).map_err(|e| Error::io("open", &entries_path, e))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    let cp_path = dir.join(files::CHECKPOINTS);
    let cp_bytes = crate::fs::read_own(&cp_path).map_err(|e| Error::io("read", &cp_path, e))?;
    let records = split_records(&cp_bytes).map_err(|(at, why)| Error::CheckpointMismatch {
        dir: dir.into(),
        why: format!("{} byte {at}: {why}", files::CHECKPOINTS),
    })?;
    // Each note goes after the entry its size names; unparsable ones at the end.
    // Each checkpoint's timestamp records (FORMAT 16.2) follow its note.
    // Each checkpoint's records are read when its note is pushed; a line
    // that is not a record is skipped with a warning, as exports skip it.
    let stamps = crate::anchor::TokenIndex::default().stamps(dir, &[(0, u64::MAX)])?;
    let mut notes: Vec<(u64, &[u8])> = records
        .records
        .iter()
        .map(|&(_, note)| {
            let size = SignedCheckpoint::parse(note).map_or(u64::MAX, |s| s.checkpoint.size);
            (size, note)
        })
        .collect();
    notes.sort_by_key(|n| n.0);
    // Lines are hashed and parsed on every core; the report is the stream verifier's.
    let mut v = ParallelVerifier::new(opts, verify_threads());
    v.push(export::header(ExportKind::Log).as_bytes());
    if let Some(s) = &mut seal {
        s.write_head(&mut |b| {
            v.push(b);
            Ok(())
        })?;
    }
    let mut records = Vec::new();
    let mut next = 0usize;
    let mut lines = 0u64;
    let push_notes = |v: &mut ParallelVerifier, next: &mut usize, lines: u64| -> Result<()> {
        while *next < notes.len() && notes[*next].0 <= lines {
            v.push(b"checkpoint\n");
            v.push(notes[*next].1);
            v.push(crate::anchor::lines_for(&stamps, notes[*next].0)?.as_bytes());
            *next += 1;
        }
        Ok(())
    };
    push_notes(&mut v, &mut next, 0)?;
    let mut buf = Vec::new();
    let mut done = 0u64;
    let mut last = b'\n';
    // The records of entry `lines` (0-based) follow its line; checkpoint
    // notes come after them.
    let sealed_next =
        |seal: &Option<crate::sealed::ExportRecords>| seal.as_ref().and_then(|s| s.peek());
    loop {
        // Read straight into the verifier's buffer; only a chunk with a
        // place where a note or records go is copied out to be cut there.
        let mut vb = v.take_buffer();
        let start = vb.len();
        let n = crate::parallel::read_into(&mut f, &mut vb, 1 << 20)
            .map_err(|e| Error::io("read", &entries_path, e))?;
        if n == 0 {
            v.give_back(vb);
            break;
        }
        last = vb[start + n - 1];
        done += n as u64;
        // The first entry index that needs something after its line.
        let due = notes
            .get(next)
            .map(|n| n.0.saturating_sub(1))
            .into_iter()
            .chain(sealed_next(&seal))
            .min();
        let new_lines = memchr::memchr_iter(b'\n', &vb[start..]).count() as u64;
        if due.is_none_or(|d| d >= lines + new_lines) {
            lines += new_lines;
            v.give_back(vb);
            progress(done, total);
            continue;
        }
        buf.clear();
        buf.extend_from_slice(&vb[start..]);
        vb.truncate(start);
        v.give_back(vb);
        let chunk = &buf[..];
        let mut from = 0;
        if next < notes.len() || sealed_next(&seal).is_some() {
            for nl in memchr::memchr_iter(b'\n', chunk) {
                let entry = lines;
                lines += 1;
                let seal_here = sealed_next(&seal).is_some_and(|i| i <= entry);
                let note_here = next < notes.len() && notes[next].0 == lines;
                if seal_here || note_here {
                    v.push(&chunk[from..=nl]);
                    from = nl + 1;
                }
                if let (true, Some(s)) = (seal_here, seal.as_mut()) {
                    records.clear();
                    s.write_for(entry, &mut records)?;
                    v.push(&records);
                }
                if note_here {
                    push_notes(&mut v, &mut next, lines)?;
                }
                if next == notes.len() && sealed_next(&seal).is_none() {
                    break;
                }
            }
        }
        v.push(&chunk[from..]);
        progress(done, total);
    }
    if last == b'\n' {
        // Checkpoints beyond the entries: the verifier reports them (truncation).
        while next < notes.len() {
            v.push(b"checkpoint\n");
            v.push(notes[next].1);
            v.push(crate::anchor::lines_for(&stamps, notes[next].0)?.as_bytes());
            next += 1;
        }
    }
    Ok(v.finish())
}

/// Worker threads for verification: every core.
pub fn verify_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::{Checkpoints, StoredCheckpoint, leaves_for_stored};
    use crate::tree::stored_len;
    use std::sync::Arc;
    use stele_core::checkpoint::Checkpoint;

    fn cp(size: u64) -> StoredCheckpoint {
        StoredCheckpoint {
            checkpoint: Checkpoint {
                origin: "example.com/log".into(),
                size,
                root: stele_core::Hash([size as u8; 32]),
                extensions: Vec::new(),
            },
            note: format!("note {size}"),
        }
    }

    fn sizes<'a>(it: impl Iterator<Item = &'a StoredCheckpoint>) -> Vec<u64> {
        it.map(|c| c.checkpoint.size).collect()
    }

    #[test]
    fn checkpoints_keep_order_across_chunks() {
        let n = Checkpoints::CHUNK * 3 + 7;
        let mut list = Checkpoints::default();
        for (i, size) in (0..n as u64).map(|i| i * 2).enumerate() {
            assert_eq!(list.len(), i);
            list.push(cp(size));
            assert_eq!(list.last().map(|c| c.checkpoint.size), Some(size));
        }
        let want: Vec<u64> = (0..n as u64).map(|i| i * 2).collect();
        assert_eq!(sizes(list.iter()), want);
        assert_eq!(
            sizes(list.iter().rev()),
            want.iter().rev().copied().collect::<Vec<_>>()
        );
        assert_eq!(list.iter().len(), n);
        for (i, w) in want.iter().enumerate() {
            assert_eq!(list.get(i).map(|c| c.checkpoint.size), Some(*w));
        }
        assert!(list.get(n).is_none());
        assert_eq!(list.to_vec().len(), n);
        let collected: Checkpoints = list.to_vec().into();
        assert_eq!(sizes(collected.iter()), want);
        assert!(Checkpoints::default().last().is_none());
        // Cut at every place, chunk edges included.
        for limit in [0, 1, 2, 509, 510, 511, 512, 1535, 3000, u64::MAX] {
            let cut = list.up_to(limit);
            let expect: Vec<u64> = want.iter().copied().filter(|s| *s <= limit).collect();
            assert_eq!(sizes(cut.iter()), expect, "up_to {limit}");
            assert_eq!(cut.len(), expect.len());
        }
    }

    // A view's list is a snapshot that shares the full chunks: signing a
    // checkpoint while it lives neither changes it nor copies those chunks
    // (the whole list was copied at each checkpoint signed while any view
    // lived), and a cut to a size shares them too.
    #[test]
    fn checkpoints_snapshots_share_full_chunks() {
        let mut list: Checkpoints = (0..Checkpoints::CHUNK as u64 * 4).map(cp).collect();
        let held = list.clone();
        // More than a chunk signed while the snapshot lives.
        for i in 0..Checkpoints::CHUNK as u64 + 1 {
            list.push(cp(10_000 + i));
        }
        assert_eq!(held.len(), Checkpoints::CHUNK * 4);
        assert_eq!(
            held.last().map(|c| c.checkpoint.size),
            Some(Checkpoints::CHUNK as u64 * 4 - 1)
        );
        assert_eq!(list.len(), Checkpoints::CHUNK * 5 + 1);
        assert_eq!((held.full.len(), list.full.len()), (4, 5));
        for (a, b) in held.full.iter().zip(list.full.iter()) {
            assert!(Arc::ptr_eq(a, b), "a full chunk was copied");
        }
        let cut = list.up_to(Checkpoints::CHUNK as u64 * 2 + 5);
        assert_eq!(cut.len(), Checkpoints::CHUNK * 2 + 6);
        assert_eq!(cut.full.len(), 2);
        for (a, b) in cut.full.iter().zip(list.full.iter()) {
            assert!(Arc::ptr_eq(a, b), "a cut copied a full chunk");
        }
    }

    fn log_with_checkpoints(dir: &std::path::Path, n: u64) -> crate::Log {
        let signer = crate::key::generate("example.com/ro").unwrap();
        let opts = crate::LogOptions {
            checkpoint_every: Some(1),
            checkpoint_interval: None,
            ..crate::LogOptions::default()
        };
        let log = crate::Log::create_with(dir, "example.com/ro", &signer, None, opts).unwrap();
        for i in 0..n {
            let _ = log.append(serde_json::json!({"i": i})).unwrap();
        }
        log
    }

    fn notes(c: &Checkpoints) -> Vec<String> {
        c.iter().map(|c| c.note.clone()).collect()
    }

    // A read-only server's reopen reads only the records appended since
    // its last read (a record before them is not read again: changed under
    // it, the read still succeeds), and the whole file when the last record
    // it read is no longer where it was (a file replaced, not appended to).
    #[test]
    fn read_only_reopens_read_only_appended_checkpoints() {
        use super::{ReadCheckpoints, files};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let log = log_with_checkpoints(&dir, 5);
        let first = ReadCheckpoints::read(&dir, None).unwrap();
        assert_eq!(first.all.len(), 6);
        for i in 0..300 {
            let _ = log.append(serde_json::json!({"more": i})).unwrap();
        }
        let cp_path = dir.join(files::CHECKPOINTS);
        let mut bytes = std::fs::read(&cp_path).unwrap();
        let whole = ReadCheckpoints::read(&dir, None).unwrap();
        assert_eq!(whole.all.len(), 306);
        assert_eq!(whole.len, bytes.len() as u64);
        let after = ReadCheckpoints::read(&dir, Some(&first)).unwrap();
        assert_eq!(notes(&after.all), notes(&whole.all));
        assert_eq!(after.len, whole.len);
        let (view, read) = super::View::open_read_only_after(&dir, Some(&first)).unwrap();
        assert_eq!(notes(view.checkpoints()), notes(&whole.all));
        assert_eq!(read.len, whole.len);

        // The first record's header, read before, broken: not read again.
        bytes[0] = b'x';
        std::fs::write(&cp_path, &bytes).unwrap();
        assert!(
            ReadCheckpoints::read(&dir, None).is_err(),
            "the whole file no longer parses"
        );
        let again = ReadCheckpoints::read(&dir, Some(&first)).unwrap();
        assert_eq!(notes(&again.all), notes(&whole.all));

        // Another log's checkpoints in its place: read whole.
        let other_dir = tmp.path().join("other");
        drop(log_with_checkpoints(&other_dir, 400));
        let _ = std::fs::copy(other_dir.join(files::CHECKPOINTS), &cp_path).unwrap();
        let other = ReadCheckpoints::read(&other_dir, None).unwrap();
        let replaced = ReadCheckpoints::read(&dir, Some(&whole)).unwrap();
        assert_eq!(notes(&replaced.all), notes(&other.all));
        assert_eq!(replaced.len, other.len);
    }

    // Sizes out of order (never written by a log, but read from a file):
    // the cut still keeps exactly the checkpoints of at most the size.
    #[test]
    fn checkpoints_cut_out_of_order_sizes() {
        let list: Checkpoints = [5, 1, 9, 3, 7].into_iter().map(cp).collect();
        assert_eq!(sizes(list.up_to(4).iter()), vec![1, 3]);
        assert_eq!(sizes(list.up_to(0).iter()), Vec::<u64>::new());
        assert_eq!(sizes(list.up_to(9).iter()), vec![5, 1, 9, 3, 7]);
    }

    #[test]
    fn leaves_for_stored_inverts_stored_len() {
        // Sizes with many set bits are where 2n - popcount(n) strays from 2n.
        for n in (0..5000u64).chain([(1 << 20) - 1, (1 << 40) - 1, 123_456_789]) {
            assert_eq!(leaves_for_stored(stored_len(n)), n, "n {n}");
            if n > 0 {
                assert_eq!(
                    leaves_for_stored(stored_len(n) - 1),
                    n - 1,
                    "n {n} - 1 hash"
                );
            }
        }
    }
}
