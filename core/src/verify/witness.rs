//! Witness cosignatures under a policy (docs/FORMAT.md 14.4): which
//! witnesses cosigned each checkpoint, and whether the checkpoint the
//! verdict rests on meets the quorum.

use super::*;
use crate::checkpoint::SignedCheckpoint;

/// The checkpoint the quorum is judged on, and what its cosignatures say.
#[derive(Debug, Default)]
pub(super) struct Witnessing {
    /// Size, quorum met, witnesses that cosigned, line, offset.
    head: Option<(u64, bool, Vec<String>, u64, u64)>,
    /// An `entries` export or tlog-proof had a trusted checkpoint without quorum.
    failed: bool,
    /// Notes whose cosignatures were checked, and the result (a few, newest
    /// last): a note read before, byte for byte, gets its earlier result,
    /// which depends on the note and the policy only. An export repeating
    /// one cosigned note 20,000 times cost an Ed25519 check per witness
    /// each time (15 times slower to verify), as `verify_pinned` found for
    /// the log's own signature.
    checked: Vec<(crate::note::Note, crate::witness::Cosignatures)>,
}

impl Witnessing {
    fn cosignatures(
        &mut self,
        policy: &crate::witness::Policy,
        sc: &SignedCheckpoint,
    ) -> crate::witness::Cosignatures {
        if let Some((_, c)) = self.checked.iter().find(|(n, _)| *n == sc.note) {
            return c.clone();
        }
        let c = policy.cosignatures(sc);
        if self.checked.len() == 8 {
            let _ = self.checked.remove(0);
        }
        self.checked.push((sc.note.clone(), c.clone()));
        c
    }
}

impl<S: EntrySink> StreamVerifier<S> {
    /// Requires a witness policy ([`Options::set_policy`]) after
    /// construction; `false` (and nothing changed) once bytes were pushed.
    pub fn set_policy(&mut self, policy: crate::witness::Policy) -> bool {
        if self.streamed > 0 {
            return false;
        }
        self.opts.set_policy(policy);
        true
    }

    /// The pinned keys (with a policy's log keys).
    pub fn keys(&self) -> &[VerifierKey] {
        &self.opts.keys
    }

    /// Sets the earlier trusted checkpoint ([`Options::trusted`]), already
    /// verified by the caller (`checkpoint::parse_trusted`); `false` once
    /// bytes were pushed.
    pub fn set_trusted(&mut self, cp: Checkpoint) -> bool {
        if self.streamed > 0 {
            return false;
        }
        self.opts.trusted = Some(cp);
        true
    }

    /// Checks a checkpoint's cosignatures against the policy, if one was
    /// given: a `bad_signature` for each witness whose cosignature does not
    /// verify; in `entries` exports and tlog-proofs every trusted checkpoint
    /// must meet the quorum. Returns the names of the witnesses that cosigned.
    pub(super) fn witness_checkpoint(
        &mut self,
        sc: &SignedCheckpoint,
        trusted: bool,
        ok: bool,
        line: u64,
        offset: u64,
    ) -> Option<Vec<String>> {
        let policy = self.opts.policy.as_ref()?;
        let c = self.witnessing.cosignatures(policy, sc);
        let met = policy.quorum_met(&c.cosigned);
        let names = c.names(policy);
        let quorum = policy.quorum_name().to_string();
        let size = sc.checkpoint.size;
        for w in c.bad {
            self.fail(FailureCode::BadSignature, None, line, offset, None, None, format!("checkpoint at line {line} (size {size}): the cosignature by witness {w} does not verify"));
        }
        if !(trusted && ok) {
            return Some(names);
        }
        if self.kind == ExportKind::Entries && !met {
            self.witnessing.failed = true;
            self.fail(FailureCode::QuorumNotMet, None, line, offset, Some(quorum.clone()), Some(cosigners(&names)), format!("checkpoint at line {line} (size {size}): the witness quorum {quorum} is not met (cosigned by {})", cosigners(&names)));
        }
        let replace = match &self.witnessing.head {
            None => true,
            Some((s, m, ..)) => size > *s || (size == *s && met && !m),
        };
        if replace {
            self.witnessing.head = Some((size, met, names.clone(), line, offset));
        }
        Some(names)
    }

    /// docs/FORMAT.md 14.4: in `log` and `range` exports the largest trusted
    /// checkpoint (every smaller one is a prefix of it) must meet the quorum.
    pub(super) fn witness_final_check(&mut self) {
        let Some(policy) = &self.opts.policy else {
            return;
        };
        let quorum = policy.quorum_name().to_string();
        if self.kind == ExportKind::TlogProof || self.kind == ExportKind::Entries {
            return;
        }
        if let Some((size, false, names, line, offset)) = self.witnessing.head.clone() {
            self.witnessing.failed = true;
            self.fail(FailureCode::QuorumNotMet, None, line, offset, Some(quorum.clone()), Some(cosigners(&names)), format!("checkpoint at line {line} (size {size}), the largest signed by the log, does not meet the witness quorum {quorum} (cosigned by {}): the log may be showing this history to some and another to others", cosigners(&names)));
        }
    }

    /// The report's `quorum` block (present when a policy was given).
    pub(super) fn quorum_report(&self) -> Option<QuorumReport> {
        let policy = self.opts.policy.as_ref()?;
        let head = self.witnessing.head.as_ref();
        Some(QuorumReport {
            name: policy.quorum_name().to_string(),
            met: head.is_some_and(|h| h.1) && !self.witnessing.failed,
            size: head.map(|h| h.0),
            cosigned_by: head.map(|h| h.2.clone()).unwrap_or_default(),
        })
    }
}

/// The witnesses that cosigned, for a message or a `found` value.
fn cosigners(names: &[String]) -> String {
    if names.is_empty() {
        "no witness".into()
    } else {
        names.join(", ")
    }
}
