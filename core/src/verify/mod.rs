//! The streaming verifier: bytes in (any chunking), a [`Report`] out.
//!
//! Memory is O(log n + longest line): it keeps a compact range of the tree,
//! the previous entry's hash and timestamp, and at most one unresolved chain
//! break. It keeps going after a failure and reports every one (up to a cap).

mod chain;
mod checkpoints;
mod framing;
mod report;
mod rotation;
mod sealed;
mod selected;
mod sniff;
mod timestamps;
mod wire;
#[cfg(feature = "witness")]
mod witness;

use crate::checkpoint::Checkpoint;
pub use crate::codes::{FailureCode, NoticeCode};
use crate::entry::ParsedEntry;
use crate::entry::{MAX_ENTRY_BYTES, Timestamp};
use crate::export::ExportKind;
use crate::hash::Hash;
use crate::merkle::CompactRange;
use crate::note::VerifierKey;
use crate::sealed::{OpenerHandle, SealChecker};
use chain::Break;
pub use report::{
    CheckpointReport, EntryRange, Failure, Input, Notice, QuorumReport, Report, TrustedInput,
    Verdict,
};
pub use rotation::{
    KEY_TYPE, KeyReport, MAX_KEYS, parse_revoked, parse_revoked_list, revoked_signature,
};
use std::collections::{BTreeSet, VecDeque};
pub use wire::{Prepared, prepare, prepare_encoded, prepare_encoded_into, prepared_capacity};

/// Longest line the framing buffers (an entry plus a stray `\r`).
const MAX_LINE: usize = MAX_ENTRY_BYTES + 1;
/// Checkpoints listed individually in a report; more are only counted.
const MAX_LISTED_CHECKPOINTS: usize = 10_000;
/// Leaf hashes waiting to join the tree (see [`CompactRange::extend`]) at most.
const LEAF_BATCH: usize = 4096;

/// What the verifier trusts and how much it reports.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pinned verifier keys; signatures by other keys are ignored.
    pub keys: Vec<VerifierKey>,
    /// An earlier checkpoint the caller trusts (already verified): the log must extend it.
    pub trusted: Option<Checkpoint>,
    /// Failures kept in the report (all are counted).
    pub max_failures: usize,
    /// Opens sealed fields (FORMAT 13.8) with the caller's age identities;
    /// `None` leaves every sealed value sealed.
    pub opener: Option<OpenerHandle>,
    /// Describe the input in the report's `input` block (`None`: no block).
    pub input: Option<InputMeta>,
    /// A witness policy (docs/FORMAT.md 14): the checkpoint the verdict
    /// rests on must be cosigned by its quorum. Set it with
    /// [`Options::set_policy`], which also pins the policy's log keys.
    #[cfg(feature = "witness")]
    pub policy: Option<crate::witness::Policy>,
    /// Revoked keys, each with the tree size from which its signatures are
    /// failures (`key_revoked`, FORMAT 15.3; a key that is not pinned,
    /// handed over to by a revoked key, is revoked from the same size).
    /// Needs the feature `rotation` (ignored without it).
    pub revoked: Vec<(VerifierKey, u64)>,
    /// Checks timestamp tokens (FORMAT 16.3) against the auditor's TSA CA;
    /// `None` leaves every token unchecked (the notice `timestamp_unchecked`).
    pub tsa: Option<crate::timestamp::TokenCheckerHandle>,
}

/// What the caller knows about the input and core cannot (core has no
/// clock and no file names), and whether core hashes the bytes.
#[derive(Debug, Clone, Default)]
pub struct InputMeta {
    /// The file's name, if it has one.
    pub name: Option<String>,
    /// When the verification ran, `YYYY-MM-DDTHH:MM:SSZ`.
    pub verified_at: Option<String>,
    /// Compute the SHA-256 of the bytes streamed (one more hash of every
    /// byte, on the verifying thread); leave it off when the caller hashes
    /// the file itself and fills `input.sha256`.
    pub sha256: bool,
}

impl Options {
    /// Options with these keys, no earlier checkpoint, 1,000 failures kept.
    pub fn new(keys: Vec<VerifierKey>) -> Self {
        Self {
            keys,
            trusted: None,
            max_failures: 1000,
            opener: None,
            input: None,
            #[cfg(feature = "witness")]
            policy: None,
            revoked: Vec::new(),
            tsa: None,
        }
    }

    /// Requires the policy's quorum (docs/FORMAT.md 14.4) and pins its
    /// log keys (C2SP tlog-policy: a checkpoint signed by any listed log).
    #[cfg(feature = "witness")]
    pub fn set_policy(&mut self, policy: crate::witness::Policy) {
        for l in &policy.logs {
            if !self.keys.contains(&l.key) {
                self.keys.push(l.key.clone());
            }
        }
        self.policy = Some(policy);
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first line.
    Start,
    /// Reading records.
    Records,
    /// Inside a checkpoint note: text lines.
    NoteText,
    /// Inside a checkpoint note: signature lines.
    NoteSigs,
    /// Buffering a whole tlog-proof.
    TlogProof,
    /// The input is not a Stele export: the rest is only counted.
    NotALog,
}

/// Receives each entry line as the verifier reaches it, for a caller that
/// shows the entries (the page's table lives in the wasm adapter): what a
/// table shows is not a rule of the format. Called once per line that the
/// framing takes as an entry, in order, whether or not it verified.
pub trait EntrySink {
    /// One entry line: `entry` is `None` when the line did not parse;
    /// `line_no` is 1-based, `offset` the line's byte offset in the stream,
    /// `length` its length without `\n`.
    fn entry(&mut self, entry: Option<&ParsedEntry<'_>>, line_no: u64, offset: u64, length: u64);
}

/// No sink: the entries are only verified.
impl EntrySink for () {
    #[inline(always)]
    fn entry(&mut self, _: Option<&ParsedEntry<'_>>, _: u64, _: u64, _: u64) {}
}

/// The streaming verifier; `S` receives the entry lines ([`EntrySink`]).
#[derive(Debug)]
pub struct StreamVerifier<S = ()> {
    opts: Options,
    // Notes whose signatures were checked, and the result (a few, newest
    // last): see `verify_pinned`. Native builds only (the browser's plain
    // verifier is at its size gate).
    #[cfg(feature = "rotation")]
    verified_notes: Vec<(crate::note::Note, crate::note::NoteVerification)>,
    state: State,
    kind: ExportKind,
    header_seen: bool,
    /// The first line's byte order mark was taken off (FORMAT 7.1: one mark
    /// is reported and read as absent; a second one is part of the line).
    bom_stripped: bool,
    /// A sealed-field record was read by a build without the `sealed`
    /// feature (notice `sealed_unchecked`, given once).
    sealed_unchecked: bool,
    // framing
    partial: Vec<u8>,
    overlong: Option<usize>,
    /// The over-long line being skipped starts with `{`.
    overlong_entry: bool,
    line_no: u64,
    offset: u64,
    // note being collected
    note: Vec<u8>,
    note_line: u64,
    note_offset: u64,
    // tree and chain
    start: u64,
    position: u64,
    tree: CompactRange,
    tree_broken: bool,
    /// Leaves read since `tree` was last brought up to date: every read of
    /// `tree` goes through [`StreamVerifier::tree`], which adds them first.
    leaves_waiting: Vec<Hash>,
    last_hash: Option<Hash>,
    last_at: (u64, u64),
    last_ts: Option<Timestamp>,
    seq_delta: i128,
    pending: Option<Break>,
    last_index_in_export: Option<u64>,
    // checkpoints
    right: Option<(u64, Vec<Hash>)>,
    inclusion: Option<(u64, Vec<Hash>, u64)>,
    /// Byte offset of the pending inclusion record.
    inclusion_offset: u64,
    /// A range record was read.
    range_seen: bool,
    current: Option<(Checkpoint, bool)>,
    /// The size of the last checkpoint (for `checkpoint_order`).
    last_cp_size: Option<u64>,
    /// The last checkpoint signed by a trusted key: size, root, line (for
    /// `fork`).
    last_trusted_cp: Option<(u64, Hash, u64)>,
    /// Entries exports only (their checkpoints come in any order, 7.4): each
    /// trusted size seen with its root and line, sorted by size, for the
    /// fork rule (9.1). At most MAX_LISTED_CHECKPOINTS sizes.
    trusted_sizes: Vec<(u64, Hash, u64)>,
    /// How many entries of the file a verified trusted checkpoint covers:
    /// the largest min(size, entries read before it) (docs/FORMAT.md 8.7).
    last_good_size: u64,
    verified_any: bool,
    trusted_checked: bool,
    unknown_keys: BTreeSet<(String, [u8; 4])>,
    rot: rotation::Rotation,
    // report
    origin: Option<String>,
    genesis_key: Option<String>,
    key: Option<VerifierKey>,
    entries: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    first_ts: Option<Timestamp>,
    tree_size: Option<(u64, Hash)>,
    checkpoints: Vec<CheckpointReport>,
    checkpoints_total: u64,
    failures: Vec<Failure>,
    failures_total: u64,
    notices: Vec<Notice>,
    sink: S,
    tlog: Vec<u8>,
    prepared: VecDeque<Prepared>,
    /// Prepared lines in [`Prepared::encode_all`]'s form, and the next record.
    encoded: Vec<u8>,
    encoded_at: usize,
    seal: SealChecker,
    // input
    /// The first bytes of the stream, to recognise what a non-export is.
    head: Vec<u8>,
    streamed: u64,
    sha256: Option<sha2::Sha256>,
    /// Selected entries proved only against untrusted checkpoints: how
    /// many, and the first index.
    unsigned_selected: (u64, Option<u64>),
    #[cfg(feature = "witness")]
    witnessing: witness::Witnessing,
    /// The checkpoint a `timestamp` record on the next line would be for:
    /// size, imprint of its body, line of its `checkpoint` record.
    #[cfg(feature = "timestamps")]
    ts_target: Option<(u64, Hash, u64)>,
    /// Timestamp records read (the first 10,000 are listed).
    #[cfg(feature = "timestamps")]
    timestamps: Vec<crate::timestamp::TimestampReport>,
    #[cfg(feature = "timestamps")]
    timestamps_total: u64,
    timestamps_unchecked: u64,
    /// Results of token checks, so a repeated token is checked once.
    #[cfg(feature = "timestamps")]
    ts_checked: crate::timestamp::CheckCache,
}

/// Bytes of the stream kept to recognise file types by their magic.
const HEAD_BYTES: usize = 16;

impl StreamVerifier {
    /// A verifier with the given options.
    pub fn new(opts: Options) -> Self {
        Self::with_sink(opts, ())
    }
}

impl<S: EntrySink> StreamVerifier<S> {
    /// A verifier that hands each entry line to `sink`.
    pub fn with_sink(opts: Options, sink: S) -> Self {
        let opts_opener = opts.opener.clone();
        use sha2::Digest as _;
        let opts_sha = opts
            .input
            .as_ref()
            .is_some_and(|i| i.sha256)
            .then(sha2::Sha256::new);
        Self {
            opts,
            state: State::Start,
            kind: ExportKind::Log,
            header_seen: false,
            bom_stripped: false,
            sealed_unchecked: false,
            partial: Vec::new(),
            overlong: None,
            overlong_entry: false,
            line_no: 0,
            offset: 0,
            note: Vec::new(),
            note_line: 0,
            note_offset: 0,
            start: 0,
            position: 0,
            tree: CompactRange::new(),
            tree_broken: false,
            leaves_waiting: Vec::new(),
            last_hash: None,
            last_at: (0, 0),
            last_ts: None,
            seq_delta: 0,
            pending: None,
            last_index_in_export: None,
            right: None,
            inclusion: None,
            inclusion_offset: 0,
            range_seen: false,
            current: None,
            last_cp_size: None,
            last_trusted_cp: None,
            trusted_sizes: Vec::new(),
            last_good_size: 0,
            verified_any: false,
            trusted_checked: false,
            unknown_keys: BTreeSet::new(),
            #[cfg(feature = "rotation")]
            verified_notes: Vec::new(),
            rot: rotation::Rotation::default(),
            origin: None,
            genesis_key: None,
            key: None,
            entries: 0,
            first_seq: None,
            last_seq: None,
            first_ts: None,
            tree_size: None,
            checkpoints: Vec::new(),
            checkpoints_total: 0,
            failures: Vec::new(),
            failures_total: 0,
            notices: Vec::new(),
            sink,
            tlog: Vec::new(),
            prepared: VecDeque::new(),
            encoded: Vec::new(),
            encoded_at: 0,
            seal: SealChecker::new(opts_opener),
            head: Vec::new(),
            streamed: 0,
            sha256: opts_sha,
            unsigned_selected: (0, None),
            #[cfg(feature = "witness")]
            witnessing: witness::Witnessing::default(),
            #[cfg(feature = "timestamps")]
            ts_target: None,
            #[cfg(feature = "timestamps")]
            timestamps: Vec::new(),
            #[cfg(feature = "timestamps")]
            timestamps_total: 0,
            timestamps_unchecked: 0,
            #[cfg(feature = "timestamps")]
            ts_checked: crate::timestamp::CheckCache::default(),
        }
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.offset + self.partial.len() as u64 + self.overlong.unwrap_or(0) as u64
    }

    /// Failures found so far.
    pub fn failures_so_far(&self) -> u64 {
        self.failures_total
    }

    /// Asks for the report's `input` block ([`Options::input`]) after
    /// construction; `false` (and nothing changed) once bytes were pushed,
    /// as a SHA-256 would then miss them.
    pub fn set_input(&mut self, meta: InputMeta) -> bool {
        if self.streamed > 0 {
            return false;
        }
        use sha2::Digest as _;
        self.sha256 = meta.sha256.then(sha2::Sha256::new);
        self.opts.input = Some(meta);
        true
    }

    /// The entry sink, to take what it collected.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    // A failure has this many facts; naming them at each call reads better than a builder.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    #[inline(never)]
    fn fail(
        &mut self,
        code: FailureCode,
        entry: Option<u64>,
        line: u64,
        offset: u64,
        expected: Option<String>,
        found: Option<String>,
        message: String,
    ) {
        self.failures_total += 1;
        if self.failures.len() < self.opts.max_failures {
            self.failures.push(Failure {
                code,
                entry,
                line,
                offset,
                expected,
                found,
                message,
                range: None,
                cause: None,
            });
        }
    }

    // A failure about the current line.
    #[cold]
    #[inline(never)]
    fn fail_here(&mut self, code: FailureCode, entry: Option<u64>, message: String) {
        let (l, o) = (self.line_no, self.offset);
        self.fail(code, entry, l, o, None, None, message);
    }

    #[cold]
    #[inline(never)]
    fn notice(&mut self, code: NoticeCode, message: String) {
        // docs/FORMAT.md 8.8: at most 100, no two with the same code and message.
        if self.notices.len() < 100
            && !self
                .notices
                .iter()
                .any(|n| n.code == code && n.message == message)
        {
            self.notices.push(Notice { code, message });
        }
    }

    /// The tree of every entry read so far.
    fn tree(&mut self) -> &CompactRange {
        if !self.leaves_waiting.is_empty() {
            self.tree.extend(&self.leaves_waiting);
            self.leaves_waiting.clear();
        }
        &self.tree
    }
}

// A decimal number without sign or leading zeros.
pub(crate) fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 1 || !s.starts_with('0'))
}

fn preview(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.chars().count() > 60 {
        s.chars().take(60).collect::<String>() + "…"
    } else {
        s.into_owned()
    }
}

/// Verifies a whole byte slice at once.
pub fn verify_bytes(opts: Options, data: &[u8]) -> Report {
    let mut v = StreamVerifier::new(opts);
    v.push(data);
    v.finish()
}
