//! Test kit: builds Stele logs and exports in memory, deterministically, with
//! the core crate only. The shared vectors in `tests/vectors/` are made with it.
//! (The writer crate has its own durable implementation; this one is a second,
//! independent producer of the same format.)

pub mod attacks;
pub mod kit;
pub mod rotation;
pub mod spec;
pub mod vectors;
pub mod witness;

use serde_json::{Value, json};
use stele_core::entry::{Timestamp, ZERO_PREV, entry_line, genesis_event};
use stele_core::export::{self, ExportKind};
use stele_core::hash::{Hash, leaf_hash};
use stele_core::merkle::{self, MemoryTree};
use stele_core::{Checkpoint, SignerKey, VerifierKey};

/// 2026-11-26T09:00:00Z in microseconds.
pub const T0: i64 = 1_795_683_600_000_000;

/// A log held in memory.
#[derive(Debug, Clone)]
pub struct TestLog {
    /// The signing key.
    pub signer: SignerKey,
    /// The origin.
    pub origin: String,
    /// Entry lines, without `\n`.
    pub lines: Vec<String>,
    /// The tree of those lines.
    pub tree: MemoryTree,
    /// Signed checkpoints: (size, note).
    pub checkpoints: Vec<(u64, String)>,
}

/// A deterministic signer for tests.
pub fn signer(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(name, [seed; 32]).expect("valid name")
}

/// A typical audit event.
pub fn event(i: u64) -> Value {
    let actors = ["alice", "bob", "carol", "deploy-bot"];
    let actions = ["login", "read", "update", "delete", "deploy"];
    json!({
        "actor": actors[(i % 4) as usize],
        "action": actions[(i % 5) as usize],
        "target": format!("db/customers/{}", i * 7 % 1000),
        "outcome": if i.is_multiple_of(11) { "denied" } else { "success" },
        "request_id": format!("req-{i:08}"),
    })
}

impl TestLog {
    /// A log with its genesis entry and a checkpoint of size 1.
    pub fn new(origin: &str, seed: u8) -> Self {
        let signer = signer(origin, seed);
        let mut log = Self {
            signer,
            origin: origin.into(),
            lines: Vec::new(),
            tree: MemoryTree::new(),
            checkpoints: Vec::new(),
        };
        let g = genesis_event(origin, &log.signer.verifier().to_string());
        log.append(g);
        let _ = log.checkpoint();
        log
    }

    /// The verifier key.
    pub fn key(&self) -> VerifierKey {
        self.signer.verifier()
    }

    /// Appends an event with the next timestamp (one second apart).
    pub fn append(&mut self, ev: Value) {
        let seq = self.lines.len() as u64;
        let prev = self
            .lines
            .last()
            .map_or(ZERO_PREV, |l| leaf_hash(l.as_bytes()));
        let ts = Timestamp::from_unix_micros(T0 + seq as i64 * 1_000_000 + 123).expect("in range");
        let line = entry_line(seq, ts, &prev, &ev).expect("valid event");
        self.tree.push(leaf_hash(line.as_bytes()));
        self.lines.push(line);
    }

    /// Appends `n` typical events.
    pub fn append_n(&mut self, n: u64) {
        for _ in 0..n {
            let i = self.lines.len() as u64;
            self.append(event(i));
        }
    }

    /// Signs a checkpoint at the current size.
    pub fn checkpoint(&mut self) -> String {
        let size = self.lines.len() as u64;
        let note = self.checkpoint_note(size, &self.signer);
        self.checkpoints.push((size, note.clone()));
        note
    }

    /// A checkpoint note for `size`, signed by `signer` (need not be the log's).
    pub fn checkpoint_note(&self, size: u64, signer: &SignerKey) -> String {
        let root = self.tree.root_at(size).expect("size within tree");
        Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
            extensions: vec![],
        }
        .sign(signer)
        .expect("sign")
    }

    /// The whole-log export.
    pub fn export_log(&self) -> String {
        let mut s = export::header(ExportKind::Log);
        let mut cps = self.checkpoints.iter().peekable();
        while let Some((0, note)) = cps.peek() {
            s.push_str(&export::checkpoint_record(note));
            let _ = cps.next();
        }
        for (i, l) in self.lines.iter().enumerate() {
            s.push_str(l);
            s.push('\n');
            while let Some((size, note)) = cps.peek() {
                if *size != i as u64 + 1 {
                    break;
                }
                s.push_str(&export::checkpoint_record(note));
                let _ = cps.next();
            }
        }
        s
    }

    /// A range export of entries `[a, b)` with the latest checkpoint.
    pub fn export_range(&self, a: u64, b: u64) -> String {
        let mut s = export::header(ExportKind::Range);
        s.push_str(&export::range_record(
            a,
            &merkle::left_hashes(&self.tree, a).expect("left"),
        ));
        for i in a..b {
            s.push_str(&self.lines[i as usize]);
            s.push('\n');
            for (size, note) in &self.checkpoints {
                if *size == i + 1 && *size > a {
                    s.push_str(&export::checkpoint_record(note));
                }
            }
        }
        let (size, note) = self.checkpoints.last().expect("a checkpoint");
        if *size > b {
            s.push_str(&export::right_record(
                *size,
                &merkle::right_hashes(&self.tree, b, *size).expect("right"),
            ));
            s.push_str(&export::checkpoint_record(note));
        }
        s
    }

    /// A selected-entries export against the latest checkpoint.
    pub fn export_entries(&self, idx: &[u64]) -> String {
        let (size, note) = self.checkpoints.last().expect("a checkpoint");
        let mut s = export::header(ExportKind::Entries);
        s.push_str(&export::checkpoint_record(note));
        for &i in idx {
            s.push_str(&export::inclusion_record(i, &self.inclusion(i, *size)));
            s.push_str(&self.lines[i as usize]);
            s.push('\n');
        }
        s
    }

    /// A C2SP tlog-proof of entry `i` against the latest checkpoint.
    pub fn tlog_proof(&self, i: u64) -> String {
        let (size, note) = self.checkpoints.last().expect("a checkpoint");
        export::tlog_proof(
            self.lines[i as usize].as_bytes(),
            i,
            &self.inclusion(i, *size),
            note,
        )
    }

    /// The inclusion proof of `i` in the tree of `size`.
    pub fn inclusion(&self, i: u64, size: u64) -> Vec<Hash> {
        merkle::inclusion_proof(&self.tree, i, size).expect("in range")
    }
}

/// The standard sample: a log of `n` events with a checkpoint every `every` entries and one at the end.
pub fn sample_log(origin: &str, n: u64, every: u64) -> TestLog {
    let mut log = TestLog::new(origin, 42);
    while (log.lines.len() as u64) < n {
        log.append_n(1);
        if (log.lines.len() as u64).is_multiple_of(every) {
            let _ = log.checkpoint();
        }
    }
    if log.checkpoints.last().map(|c| c.0) != Some(log.lines.len() as u64) {
        let _ = log.checkpoint();
    }
    log
}
