//! The worker wire format: per-line work (leaf hash and parsed fields)
//! done ahead of time, possibly on other threads or workers, and handed to
//! the verifier as [`Prepared`] values or in their encoded form.

use super::*;
use crate::entry;
use crate::hash::leaf_hashes;

impl<S: EntrySink> StreamVerifier<S> {
    /// Feeds a block whose entry lines were already hashed and parsed by
    /// [`prepare`] (possibly on other threads). The result is exactly that
    /// of [`StreamVerifier::push`]; the work per line is just not redone.
    pub fn push_prepared(&mut self, block: &[u8], prepared: Vec<Prepared>) {
        self.prepared = prepared.into();
        self.push(block);
        self.prepared.clear();
    }

    /// [`StreamVerifier::push_prepared`] with the prepared lines in
    /// [`Prepared::encode_all`]'s form, each record read when its line is
    /// reached (no list of [`Prepared`] is built). A record is used only at
    /// its exact offset and length; one that does not decode ends the use
    /// of the rest, whose lines are then hashed and parsed here.
    pub fn push_encoded(&mut self, block: &[u8], prepared: Vec<u8>) {
        self.encoded = prepared;
        self.encoded_at = 0;
        self.push(block);
        self.encoded = Vec::new();
    }

    /// [`StreamVerifier::push_encoded`] that hands the records' buffer back
    /// (emptied, its capacity kept) for the caller to fill again: a caller
    /// preparing many blocks then reuses the same few buffers.
    pub fn push_encoded_buf(&mut self, block: &[u8], prepared: &mut Vec<u8>) {
        self.encoded = std::mem::take(prepared);
        self.encoded_at = 0;
        self.push(block);
        *prepared = std::mem::take(&mut self.encoded);
        prepared.clear();
    }

    /// The leaf hash and fields of the line at `offset` of `len` bytes, if
    /// [`StreamVerifier::push_encoded`] was given them.
    pub(super) fn encoded_for(
        &mut self,
        offset: u64,
        len: usize,
    ) -> Option<(Hash, entry::EntryFields)> {
        loop {
            let r = self
                .encoded
                .get(self.encoded_at..self.encoded_at + Prepared::REC)?;
            let (at, n, leaf, fields) = Prepared::split_record(r);
            if at < offset {
                self.encoded_at += Prepared::REC;
                continue;
            }
            if at > offset || n != len {
                return None;
            }
            let Some(f) = entry::EntryFields::decode(fields, n) else {
                self.encoded_at = self.encoded.len();
                return None;
            };
            self.encoded_at += Prepared::REC;
            return Some((leaf, f));
        }
    }
}

/// The per-line work of an entry line done ahead of time: its leaf hash and
/// the checks of [`entry::parse_entry`]. See [`prepare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub(super) offset: u64,
    pub(super) len: usize,
    pub(super) leaf: Hash,
    pub(super) fields: Result<entry::EntryFields, entry::EntryError>,
}

impl Prepared {
    /// Whether the line parsed (only those are encoded).
    pub fn is_ok(&self) -> bool {
        self.fields.is_ok()
    }
}

impl Prepared {
    /// Size of one record of [`Prepared::encode_all`].
    const REC: usize = 8 + 4 + 32 + entry::EntryFields::ENCODED_LEN;

    /// Encodes prepared lines for another thread or worker: per line its
    /// offset, length, leaf hash and fields. Lines that failed to parse are
    /// left out (the verifier redoes those itself).
    pub fn encode_all(items: &[Self]) -> Vec<u8> {
        let mut out = Vec::with_capacity(items.len() * Self::REC);
        for p in items {
            if let Ok(f) = &p.fields {
                Self::encode_one(&mut out, p.offset, p.len, &p.leaf, f);
            }
        }
        out
    }

    /// Appends one record.
    fn encode_one(out: &mut Vec<u8>, offset: u64, len: usize, leaf: &Hash, f: &entry::EntryFields) {
        let mut r = [0u8; Self::REC];
        r[0..8].copy_from_slice(&offset.to_le_bytes());
        r[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        r[12..44].copy_from_slice(&leaf.0);
        r[44..].copy_from_slice(&f.to_bytes());
        out.extend_from_slice(&r);
    }

    /// Reads [`Prepared::encode_all`]'s form; stops at the first record that
    /// does not decode. Prepared records come from this program's own
    /// threads or workers running [`prepare`], never from the file being
    /// verified; each is used only at its exact offset and length.
    pub fn decode_all(b: &[u8]) -> Vec<Self> {
        let mut out = Vec::with_capacity(b.len() / Self::REC);
        for r in b.chunks_exact(Self::REC) {
            let (offset, len, leaf, fields) = Self::split_record(r);
            let Some(fields) = entry::EntryFields::decode(fields, len) else {
                break;
            };
            out.push(Self {
                offset,
                len,
                leaf,
                fields: Ok(fields),
            });
        }
        out
    }

    /// One record's offset, length, leaf hash and encoded fields.
    fn split_record(r: &[u8]) -> (u64, usize, Hash, &[u8]) {
        let offset = u64::from_le_bytes(r[0..8].try_into().unwrap_or_default());
        let len = u32::from_le_bytes(r[8..12].try_into().unwrap_or_default()) as usize;
        let mut leaf = [0u8; 32];
        leaf.copy_from_slice(&r[12..44]);
        (offset, len, Hash(leaf), &r[44..])
    }
}

/// Hashes and parses every entry line of `block` (whose first byte is at
/// stream offset `base`); independent per line, so it can run on many threads.
/// Lines that do not parse are left out, as [`Prepared::encode_all`] leaves
/// them out: the verifier redoes those itself.
pub fn prepare(block: &[u8], base: u64) -> Vec<Prepared> {
    let mut out = Vec::new();
    each_entry_line(block, |start, len, leaf, fields| {
        out.push(Prepared {
            offset: base + start as u64,
            len,
            leaf,
            fields: Ok(fields),
        });
    });
    out
}

/// `Prepared::encode_all(&prepare(block, base))`, written directly.
pub fn prepare_encoded(block: &[u8], base: u64) -> Vec<u8> {
    let mut out = Vec::new();
    prepare_encoded_into(block, base, &mut out);
    out
}

/// [`prepare_encoded`], appended to `out` (sized by the caller, e.g. with
/// [`prepared_capacity`]).
pub fn prepare_encoded_into(block: &[u8], base: u64, out: &mut Vec<u8>) {
    each_entry_line(block, |start, len, leaf, fields| {
        Prepared::encode_one(out, base + start as u64, len, &leaf, &fields);
    });
}

/// A capacity for [`prepare_encoded_into`]'s records of `block`, on the high
/// side: one record a line, but no more lines than entry lines of
/// `MIN_ENTRY_LINE` bytes fill (whatever a file of empty lines says). Grown
/// by doubling instead, each block's records were copied several times into
/// freshly faulted pages (`stele verify`'s peak RSS 66 -> 51 MB on a 333 MB
/// log).
pub fn prepared_capacity(block: &[u8]) -> usize {
    let lines = memchr::memchr_iter(b'\n', block).count() + 1;
    lines.min(block.len() / MIN_ENTRY_LINE + 1) * Prepared::REC
}

/// No entry line is shorter: `{"event":…,"prev":"` and 64 hex digits alone
/// take more (a bound for sizing buffers, never for reading lines).
const MIN_ENTRY_LINE: usize = 80;

/// Lines parsed before their leaf hashes are computed in one batch (several
/// lines at once where the target allows it).
const HASH_GROUP: usize = 1024;

/// Calls `f(offset in block, length, leaf hash, fields)` for each entry line
/// of `block` that parses, in order. Lines are parsed first and only those
/// that parse are hashed, in groups of [`HASH_GROUP`]: memory does not grow
/// with the number of lines (10M bad lines once held ~1.9 GB).
fn each_entry_line<'a>(block: &'a [u8], mut f: impl FnMut(usize, usize, Hash, entry::EntryFields)) {
    let mut good: Vec<(usize, &'a [u8], entry::EntryFields)> = Vec::with_capacity(HASH_GROUP);
    let mut slices: Vec<&'a [u8]> = Vec::with_capacity(HASH_GROUP);
    let mut leaves = Vec::with_capacity(HASH_GROUP);
    let mut flush = |good: &mut Vec<(usize, &'a [u8], entry::EntryFields)>| {
        slices.clear();
        slices.extend(good.iter().map(|g| g.1));
        leaves.clear();
        leaf_hashes(&slices, &mut leaves);
        for ((start, line, fields), leaf) in good.drain(..).zip(leaves.iter()) {
            f(start, line.len(), *leaf, fields);
        }
    };
    let mut start = 0usize;
    for end in memchr::memchr_iter(b'\n', block) {
        let line = &block[start..end];
        if line.first() == Some(&b'{')
            && line.len() <= MAX_LINE
            && let Ok(p) = entry::parse_entry(line)
        {
            good.push((start, line, p.fields()));
            if good.len() == HASH_GROUP {
                flush(&mut good);
            }
        }
        start = end + 1;
    }
    flush(&mut good);
}
