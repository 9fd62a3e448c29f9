//! Witnesses (docs/FORMAT.md section 14): C2SP tlog-cosignature
//! (`cosignature/v1`, Ed25519, type 0x04), C2SP tlog-policy (logs, witnesses,
//! groups, the quorum) and the checks of a C2SP tlog-witness
//! `add-checkpoint` request. Pure: the time of a cosignature is a parameter.
//!
//! ```text
//! cosignature/v1               <- the signed message: two header lines,
//! time 1679315147                 then the checkpoint text (no signatures)
//! example.com/log
//! 42
//! 3W5v...=
//!
//! — witness.example/w1 base64(key ID || u64 BE timestamp || Ed25519 signature)
//! ```

use crate::canonical::quote;
use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::hash::EMPTY_ROOT;
use crate::hash::Hash;
use crate::merkle::verify_consistency;
use crate::note::{
    NoteError, NoteSignature, VerifierKey, hex, is_valid_key_name, parse_private_key,
    parse_public_key,
};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use thiserror::Error;

/// C2SP tlog-cosignature: the signature type byte of `cosignature/v1` keys.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
// What a key of another type is told.
const NOT_COSIGNATURE_V1: &str = "not a cosignature/v1 key (0x04 followed by 32 bytes)";
/// C2SP tlog-witness: a client sends at most 63 consistency proof lines.
pub const MAX_PROOF_LINES: usize = 63;
/// Largest policy file read, in bytes.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Most logs, witnesses and groups a policy may define (each).
pub const MAX_POLICY_ITEMS: usize = 256;

/// C2SP tlog-cosignature: key ID = SHA-256(name || 0x0A || 0x04 || public key)[:4].
pub fn cosigner_key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let d = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ALG_COSIGNATURE_V1])
        .chain_update(public_key)
        .finalize();
    [d[0], d[1], d[2], d[3]]
}

/// C2SP tlog-cosignature: the message a `cosignature/v1` signature covers:
/// `cosignature/v1\n`, `time <timestamp>\n`, then the checkpoint's note text.
pub fn cosigned_message(timestamp: u64, checkpoint_text: &str) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{checkpoint_text}")
}

/// A witness's public key: checks `cosignature/v1` signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct CosignerKey {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl CosignerKey {
    /// Parses a verifier key of type 0x04: `name+hex8+base64(0x04 || public key)`.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let (name, id, key) =
            parse_public_key(s, ALG_COSIGNATURE_V1, NOT_COSIGNATURE_V1, cosigner_key_id)?;
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key ID.
    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    /// Whether a note signature line is by this key (same name and key ID).
    pub fn matches(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.key_id == self.id
    }

    /// Checks a cosignature (the bytes after the key ID: 8-byte timestamp,
    /// 64-byte signature) on a checkpoint text; its timestamp when it verifies.
    pub fn verify(&self, checkpoint_text: &str, sig: &[u8]) -> Option<u64> {
        let (ts, sig) = sig.split_first_chunk::<8>()?;
        let ts = u64::from_be_bytes(*ts);
        // C2SP tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1.
        if ts > i64::MAX as u64 {
            return None;
        }
        let sig = Signature::from_slice(sig).ok()?;
        let msg = cosigned_message(ts, checkpoint_text);
        self.key
            .verify_strict(msg.as_bytes(), &sig)
            .is_ok()
            .then_some(ts)
    }
}

impl fmt::Display for CosignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = [&[ALG_COSIGNATURE_V1][..], self.key.as_bytes()].concat();
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex(&self.id),
            crate::b64::encode(&raw)
        )
    }
}

impl fmt::Debug for CosignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CosignerKey({self})")
    }
}

/// A witness's private key: makes `cosignature/v1` signatures. Its `Debug`
/// never shows the secret.
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    id: [u8; 4],
    key: SigningKey,
}

impl Cosigner {
    /// A cosigner from a 32-byte Ed25519 seed (from a secure RNG).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::BadSignerKey(
                "key name is empty or has white space or '+'".into(),
            ));
        }
        let key = SigningKey::from_bytes(&seed);
        let id = cosigner_key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// Parses `PRIVATE+KEY+name+hex8+base64(0x04 || seed)`.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let (name, id, seed) = parse_private_key(s, ALG_COSIGNATURE_V1, NOT_COSIGNATURE_V1)?;
        let c = Self::from_seed(name, seed)?;
        if c.id != id {
            return Err(NoteError::BadSignerKey(
                "key ID does not match the key".into(),
            ));
        }
        Ok(c)
    }

    /// The private key string. Keep it secret: never print or log it.
    pub fn to_private_string(&self) -> String {
        let raw = [&[ALG_COSIGNATURE_V1][..], &self.key.to_bytes()].concat();
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex(&self.id),
            crate::b64::encode(&raw)
        )
    }

    /// The matching public key.
    pub fn verifier(&self) -> CosignerKey {
        CosignerKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The note signature line (with its `\n`) cosigning a checkpoint text
    /// at `timestamp` (seconds since the epoch, at most 2^63 - 1).
    pub fn cosign(&self, checkpoint_text: &str, timestamp: u64) -> String {
        let ts = timestamp.min(i64::MAX as u64);
        let sig = self
            .key
            .sign(cosigned_message(ts, checkpoint_text).as_bytes());
        let raw = [&self.id[..], &ts.to_be_bytes(), &sig.to_bytes()].concat();
        format!("\u{2014} {} {}\n", self.name, crate::b64::encode(&raw))
    }
}

impl fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cosigner({}+{}, secret hidden)",
            self.name,
            hex(&self.id)
        )
    }
}

/// A policy file that breaks C2SP tlog-policy: the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("policy line {line}: {what}")]
pub struct PolicyError {
    /// 1-based line number (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

/// A witness of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWitness {
    /// Its name in the policy.
    pub name: String,
    /// Its cosigner key.
    pub key: CosignerKey,
    /// Its submission prefix, if given.
    pub url: Option<String>,
}

/// A log of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLog {
    /// Its key (the key name is the log's origin).
    pub key: VerifierKey,
    /// Its URL, if given.
    pub url: Option<String>,
}

/// A member of a group or the quorum: a witness or a group, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Witness(usize),
    Group(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    k: usize,
    members: Vec<Member>,
}

/// A parsed C2SP tlog-policy: logs, witnesses, groups and the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The logs, in file order.
    pub logs: Vec<PolicyLog>,
    /// The witnesses, in file order.
    pub witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    /// `None`: `quorum none`.
    quorum: Option<Member>,
}

impl Policy {
    /// Parses a policy file (C2SP tlog-policy). Names are compared as bytes;
    /// Stele reads the file as UTF-8 (docs/FORMAT.md 14.3).
    pub fn parse(text: &[u8]) -> Result<Self, PolicyError> {
        let err = |line: usize, what: String| PolicyError { line, what };
        if text.len() > MAX_POLICY_BYTES {
            return Err(err(
                0,
                format!(
                    "the file is {} bytes, more than {MAX_POLICY_BYTES}",
                    text.len()
                ),
            ));
        }
        let mut p = Self {
            logs: Vec::new(),
            witnesses: Vec::new(),
            groups: Vec::new(),
            quorum: None,
        };
        let mut quorum_seen = false;
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let n = i + 1;
            if let Some(&b) = raw.iter().find(|&&b| b < 0x20 && b != b'\t' || b == 0x7f) {
                return Err(err(n, format!("control character 0x{b:02x}")));
            }
            let line = std::str::from_utf8(raw)
                .map_err(|_| err(n, "is not UTF-8 (Stele reads policies as UTF-8)".into()))?;
            let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            let Some((&kw, args)) = words.split_first() else {
                continue;
            };
            if kw.starts_with('#') {
                continue;
            }
            let defined = |p: &Self, name: &str| -> Option<Member> {
                let w = p.witnesses.iter().position(|w| w.name == name);
                let g = p.groups.iter().position(|g| g.name == name);
                w.map(Member::Witness).or(g.map(Member::Group))
            };
            match (kw, args) {
                ("log", [vkey, rest @ ..]) if rest.len() <= 1 => {
                    let key = VerifierKey::parse(vkey).map_err(|e| err(n, format!("log {e}")))?;
                    if p.logs.iter().any(|l| l.key == key) {
                        return Err(err(n, format!("log {} is listed twice", key.name())));
                    }
                    p.logs.push(PolicyLog {
                        key,
                        url: rest.first().map(|u| u.to_string()),
                    });
                }
                ("witness", [name, vkey, rest @ ..]) if rest.len() <= 1 => {
                    let key = CosignerKey::parse(vkey)
                        .map_err(|e| err(n, format!("witness {name}: {e}")))?;
                    if *name == "none" || defined(&p, name).is_some() {
                        return Err(err(n, format!("the name {name} is already defined")));
                    }
                    if let Some(w) = p.witnesses.iter().find(|w| w.key.key == key.key) {
                        return Err(err(
                            n,
                            format!("witness {name} has the same key as witness {}", w.name),
                        ));
                    }
                    p.witnesses.push(PolicyWitness {
                        name: name.to_string(),
                        key,
                        url: rest.first().map(|u| u.to_string()),
                    });
                }
                ("group", [name, k, members @ ..]) if !members.is_empty() => {
                    if *name == "none" || defined(&p, name).is_some() {
                        return Err(err(n, format!("the name {name} is already defined")));
                    }
                    let mut ms = Vec::new();
                    for m in members {
                        let member = m;
                        let m = defined(&p, m).ok_or_else(|| {
                            err(
                                n,
                                format!(
                                    "group {name}: member {m} is not defined on an earlier line"
                                ),
                            )
                        })?;
                        if ms.contains(&m) {
                            return Err(err(n, format!("group {name} lists a member twice")));
                        }
                        // tlog-policy: a name is a group member at most once
                        // in the whole file (else one witness could count in
                        // two branches of the quorum).
                        if let Some(g) = p.groups.iter().find(|g| g.members.contains(&m)) {
                            return Err(err(
                                n,
                                format!(
                                    "group {name}: {member} is already a member of group {}",
                                    g.name
                                ),
                            ));
                        }
                        ms.push(m);
                    }
                    let k = match *k {
                        "all" => ms.len(),
                        "any" => 1,
                        k => k
                            .parse::<usize>()
                            .ok()
                            .filter(|&n| (1..=ms.len()).contains(&n) && n.to_string() == k)
                            .ok_or_else(|| {
                                err(n, format!("group {name}: threshold {k} is not all, any or a decimal from 1 to {}", ms.len()))
                            })?,
                    };
                    p.groups.push(Group {
                        name: name.to_string(),
                        k,
                        members: ms,
                    });
                }
                ("quorum", [name]) => {
                    if quorum_seen {
                        return Err(err(n, "a second quorum line".into()));
                    }
                    quorum_seen = true;
                    if *name != "none" {
                        p.quorum = Some(defined(&p, name).ok_or_else(|| {
                            err(
                                n,
                                format!("quorum {name} is not defined on an earlier line"),
                            )
                        })?);
                    }
                }
                ("log" | "witness" | "group" | "quorum", _) => {
                    return Err(err(n, format!("wrong number of items on a {kw} line")));
                }
                // The word is named only when it looks like a misspelt
                // keyword: a wrong file (a signing key, an age identity)
                // given as a policy must not have its secret echoed.
                _ if kw.len() <= 16
                    && kw
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_') =>
                {
                    return Err(err(n, format!("unknown line type {}", quote(kw))));
                }
                _ => {
                    return Err(err(
                        n,
                        "is not a policy line (a policy line starts with log, witness, group or quorum; the line is not shown)".into(),
                    ));
                }
            }
            if p.logs.len().max(p.witnesses.len()).max(p.groups.len()) > MAX_POLICY_ITEMS {
                return Err(err(n, format!("more than {MAX_POLICY_ITEMS} {kw}s")));
            }
        }
        if !quorum_seen {
            return Err(err(
                0,
                "no quorum line (write `quorum none` to require no witness)".into(),
            ));
        }
        Ok(p)
    }

    /// The quorum's name (`none` when no cosignature is required).
    pub fn quorum_name(&self) -> &str {
        match self.quorum {
            None => "none",
            Some(Member::Witness(i)) => &self.witnesses[i].name,
            Some(Member::Group(i)) => &self.groups[i].name,
        }
    }

    /// Whether the witnesses with `cosigned[i]` true (index into
    /// `witnesses`) meet the quorum.
    pub fn quorum_met(&self, cosigned: &[bool]) -> bool {
        // Groups only name earlier groups: each group's result once, in
        // file order (a group re-evaluated at each use cost Fibonacci(n)
        // for a chain of groups naming the two before).
        let mut met: Vec<bool> = Vec::with_capacity(self.groups.len());
        let is_met = |m: Member, met: &[bool]| match m {
            Member::Witness(i) => cosigned.get(i).copied().unwrap_or(false),
            Member::Group(g) => met.get(g).copied().unwrap_or(false),
        };
        for g in &self.groups {
            let n = g.members.iter().filter(|&&m| is_met(m, &met)).count();
            met.push(n >= g.k);
        }
        self.quorum.is_none_or(|m| is_met(m, &met))
    }

    /// Checks a checkpoint note's cosignatures against the policy's
    /// witnesses: which witnesses cosigned (index per witness), and the
    /// names of those whose cosignature line does not verify. Signature
    /// lines by other keys are ignored.
    pub fn cosignatures(&self, sc: &SignedCheckpoint) -> Cosignatures {
        let mut out = Cosignatures {
            cosigned: vec![false; self.witnesses.len()],
            bad: Vec::new(),
        };
        // The bound of FORMAT 5.4: after a witness's first bad line its
        // later lines are not checked; a repeated good line is checked once.
        let mut good: Vec<&NoteSignature> = Vec::new();
        for sig in &sc.note.signatures {
            for (i, w) in self.witnesses.iter().enumerate() {
                if !w.key.matches(sig) || out.bad.contains(&w.name) || good.contains(&sig) {
                    continue;
                }
                if w.key.verify(&sc.note.text, &sig.signature).is_some() {
                    out.cosigned[i] = true;
                    good.push(sig);
                } else {
                    out.bad.push(w.name.clone());
                }
            }
        }
        out
    }
}

/// What a checkpoint's cosignatures say under a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignatures {
    /// Per policy witness: a valid cosignature is present.
    pub cosigned: Vec<bool>,
    /// Witnesses whose cosignature line does not verify.
    pub bad: Vec<String>,
}

impl Cosignatures {
    /// The names of the witnesses that cosigned.
    pub fn names(&self, policy: &Policy) -> Vec<String> {
        policy
            .witnesses
            .iter()
            .zip(&self.cosigned)
            .filter(|(_, c)| **c)
            .map(|(w, _)| w.name.clone())
            .collect()
    }
}

/// Why a tlog-witness `add-checkpoint` request is refused, with the HTTP
/// status the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddError {
    /// 400: the body does not follow the request format.
    #[error("{0}")]
    BadRequest(String),
    /// 404: the witness knows no log of this origin.
    #[error("unknown log origin {}", quote(.0))]
    UnknownLog(String),
    /// 403: no trusted log signature, or a trusted key's signature fails.
    #[error("{0}")]
    Forbidden(String),
    /// 409: `old` is not the size of the latest cosigned checkpoint.
    #[error("old size {old} does not match the latest cosigned size {latest}")]
    Conflict {
        /// The size the client sent.
        old: u64,
        /// The witness's size for this log.
        latest: u64,
    },
    /// 422: the proof does not show the checkpoint extends the old one.
    #[error("{0}")]
    Unprocessable(String),
    /// 409: the checkpoint has the size of the latest cosigned one and
    /// another root (C2SP tlog-witness answers 409, with that size).
    #[error("size {size} was cosigned with root {cosigned}, but this checkpoint has root {root}")]
    RootConflict {
        /// The size of both checkpoints.
        size: u64,
        /// The root cosigned (base64).
        cosigned: String,
        /// The request's root (base64).
        root: String,
    },
}

impl AddError {
    /// The HTTP status code C2SP tlog-witness gives this refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::UnknownLog(_) => 404,
            Self::Forbidden(_) => 403,
            Self::Conflict { .. } | Self::RootConflict { .. } => 409,
            Self::Unprocessable(_) => 422,
        }
    }
}

/// A parsed `add-checkpoint` request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The `old` size.
    pub old: u64,
    /// The consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint.
    pub checkpoint: SignedCheckpoint,
}

/// Builds an `add-checkpoint` request body.
pub fn add_checkpoint_body(old: u64, proof: &[Hash], signed_note: &str) -> String {
    let mut s = format!("old {old}\n");
    for h in proof {
        s.push_str(&h.to_base64());
        s.push('\n');
    }
    s.push('\n');
    s.push_str(signed_note);
    s
}

impl AddCheckpoint {
    /// Parses a request body (C2SP tlog-witness): `old N`, at most 63 proof
    /// lines, an empty line, a signed checkpoint note.
    pub fn parse(body: &[u8]) -> Result<Self, AddError> {
        let bad = |s: String| AddError::BadRequest(s);
        let split = body
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or_else(|| bad("no empty line after the old size and proof lines".into()))?;
        let head = std::str::from_utf8(&body[..split])
            .map_err(|_| bad("the old size and proof lines are not UTF-8".into()))?;
        let mut lines = head.split('\n');
        let old_s = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or_else(|| bad("the first line is not `old <size>`".into()))?;
        if !crate::verify::is_decimal(old_s) {
            return Err(bad(format!(
                "old size {} is not a decimal without leading zeros",
                quote(old_s)
            )));
        }
        let old = old_s
            .parse::<u64>()
            .map_err(|_| bad(format!("old size {old_s} is too large")))?;
        let mut proof = Vec::new();
        for (i, l) in lines.enumerate() {
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad(format!(
                    "more than {MAX_PROOF_LINES} consistency proof lines"
                )));
            }
            proof.push(
                Hash::from_base64(l).ok_or_else(|| {
                    bad(format!("proof line {} is not base64 of 32 bytes", i + 1))
                })?,
            );
        }
        let checkpoint = SignedCheckpoint::parse(&body[split + 2..])
            .map_err(|e: CheckpointError| bad(format!("checkpoint: {e}")))?;
        Ok(Self {
            old,
            proof,
            checkpoint,
        })
    }

    /// The witness's checks, in the spec's order, against the log keys it
    /// trusts for the origin (`None`: unknown origin) and its latest
    /// cosigned checkpoint for the log (`None`: never cosigned). `Ok` means
    /// the witness records this checkpoint and cosigns it.
    pub fn check(
        &self,
        log_keys: Option<&[VerifierKey]>,
        latest: Option<(u64, Hash)>,
    ) -> Result<(), AddError> {
        let cp = &self.checkpoint.checkpoint;
        let keys = log_keys.ok_or_else(|| AddError::UnknownLog(cp.origin.clone()))?;
        let v = self.checkpoint.verify(keys);
        if let Some(b) = v.bad.first() {
            return Err(AddError::Forbidden(format!(
                "the signature by log key {} (key ID {}) does not verify",
                b.name,
                hex(&b.key_id)
            )));
        }
        if v.verified_by.is_empty() {
            return Err(AddError::Forbidden(format!(
                "the checkpoint is not signed by a key trusted for {}",
                cp.origin
            )));
        }
        if self.old > cp.size {
            return Err(AddError::BadRequest(format!(
                "old size {} is larger than the checkpoint size {}",
                self.old, cp.size
            )));
        }
        let (latest_size, latest_root) = latest.unwrap_or((0, EMPTY_ROOT));
        if self.old != latest_size {
            return Err(AddError::Conflict {
                old: self.old,
                latest: latest_size,
            });
        }
        if cp.size == 0 && cp.root != EMPTY_ROOT {
            return Err(AddError::Unprocessable(
                "a checkpoint of size 0 must have the empty tree's root".into(),
            ));
        }
        if self.old == 0 && !self.proof.is_empty() {
            return Err(AddError::Unprocessable(
                "old size is 0, so the consistency proof must be empty".into(),
            ));
        }
        if self.old == 0 {
            return Ok(());
        }
        if self.old == cp.size && latest_root != cp.root {
            return Err(AddError::RootConflict {
                size: cp.size,
                cosigned: latest_root.to_base64(),
                root: cp.root.to_base64(),
            });
        }
        verify_consistency(self.old, cp.size, &latest_root, &cp.root, &self.proof).map_err(|e| {
            AddError::Unprocessable(format!(
                "consistency proof from size {} to {}: {e}",
                self.old, cp.size
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::note::SignerKey;

    fn witness(n: u8) -> Cosigner {
        Cosigner::from_seed(&format!("w{n}.example"), [n; 32]).unwrap()
    }

    #[test]
    fn cosigner_keys_round_trip_and_differ_from_log_keys() {
        let c = witness(1);
        let v = c.verifier();
        assert_eq!(CosignerKey::parse(&v.to_string()).unwrap(), v);
        assert_eq!(
            Cosigner::parse(&c.to_private_string()).unwrap().verifier(),
            v
        );
        // The same seed as a log key has another type byte and key ID.
        let log = SignerKey::from_seed("w1.example", [1; 32])
            .unwrap()
            .verifier();
        assert_ne!(log.id(), v.id());
        assert!(CosignerKey::parse(&log.to_string()).is_err());
        assert!(VerifierKey::parse(&v.to_string()).is_err());
        // One parser for both private key types (note::parse_private_key):
        // each refuses the other's type byte, naming what it expected.
        let log_private = SignerKey::from_seed("w1.example", [1; 32])
            .unwrap()
            .to_private_string();
        let e = Cosigner::parse(&log_private).unwrap_err().to_string();
        assert!(e.contains("not a cosignature/v1 key"), "{e}");
        let e = SignerKey::parse(&c.to_private_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an Ed25519 key"), "{e}");
        let e = Cosigner::parse("PRIVATE+KEY+w1.example+zzzzzzzz+AA==")
            .unwrap_err()
            .to_string();
        assert!(e.contains("8 lowercase hex digits"), "{e}");
        assert!(!format!("{c:?}").contains(c.to_private_string().rsplit('+').next().unwrap()));
    }

    #[test]
    fn cosignature_signs_header_time_and_text() {
        let c = witness(2);
        let text = "example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let line = c.cosign(text, 1_679_315_147);
        let raw = crate::b64::decode(line.trim_end().rsplit(' ').next().unwrap()).unwrap();
        assert_eq!(raw.len(), 4 + 8 + 64);
        assert_eq!(&raw[..4], &c.verifier().id());
        assert_eq!(
            u64::from_be_bytes(raw[4..12].try_into().unwrap()),
            1_679_315_147
        );
        assert_eq!(c.verifier().verify(text, &raw[4..]), Some(1_679_315_147));
        assert_eq!(
            c.verifier().verify(&text.replace('1', "2"), &raw[4..]),
            None
        );
        let mut later = raw.clone();
        later[11] ^= 1;
        assert_eq!(c.verifier().verify(text, &later[4..]), None);
        assert_eq!(
            cosigned_message(7, text),
            format!("cosignature/v1\ntime 7\n{text}")
        );
    }

    fn policy_text() -> String {
        let w = |n: u8| witness(n).verifier().to_string();
        format!(
            "# comment\n\n  witness X1 {} https://x1.example\nwitness X2 {}\nwitness X3 {}\n\tgroup X 2 X1 X2 X3\nwitness Y1 {}\ngroup Y any Y1\ngroup XY all X Y\nquorum XY\n",
            w(1),
            w(2),
            w(3),
            w(4)
        )
    }

    #[test]
    fn nested_groups_need_k_of_n_at_every_level() {
        let p = Policy::parse(policy_text().as_bytes()).unwrap();
        assert_eq!(p.quorum_name(), "XY");
        assert_eq!(p.witnesses[0].url.as_deref(), Some("https://x1.example"));
        for bits in 0u8..16 {
            let c: Vec<bool> = (0..4).map(|i| bits >> i & 1 == 1).collect();
            let x = c[..3].iter().filter(|b| **b).count() >= 2;
            assert_eq!(p.quorum_met(&c), x && c[3], "{c:?}");
        }
        let none = Policy::parse(b"quorum none\n").unwrap();
        assert!(none.quorum_met(&[]));
    }

    /// Each group names the two before it: re-evaluating a group at each use
    /// costs Fibonacci(n) (60 groups never ended). tlog-policy now forbids
    /// the shape (a name is a member once, so groups form a tree), and
    /// groups are still decided once each, in order: a deep chain is linear.
    #[test]
    fn a_chain_of_groups_is_linear_and_one_naming_the_two_before_is_refused() {
        let w = witness(1).verifier();
        let v = witness(2).verifier();
        let mut text = format!("witness W {w}\nwitness V {v}\ngroup g0 any W\ngroup g1 any V\n");
        text += "group g2 all g1 g0\ngroup g3 all g2 g1\n";
        let e = Policy::parse(text.as_bytes()).unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(
            e.to_string().contains("g1 is already a member of group g2"),
            "{e}"
        );
        let mut text = format!("witness W {w}\nwitness V {v}\ngroup g0 any W\n");
        for i in 1..250 {
            text += &format!("group g{i} all g{}\n", i - 1);
        }
        text += "group top 1 g249 V\nquorum top\n";
        let p = Policy::parse(text.as_bytes()).unwrap();
        assert!(p.quorum_met(&[true, false]));
        assert!(p.quorum_met(&[false, true]));
        assert!(!p.quorum_met(&[false, false]));
    }

    #[test]
    fn bad_policies_name_the_line() {
        let w1 = witness(1).verifier().to_string();
        let cases = [
            (
                format!("witness A {w1}\nwitness B {w1}\nquorum A\n"),
                2,
                "same key",
            ),
            (
                format!("witness A {w1}\ngroup G 2 A\nquorum G\n"),
                2,
                "threshold",
            ),
            (
                format!("witness A {w1}\ngroup G 01 A\nquorum G\n"),
                2,
                "threshold",
            ),
            (
                format!("witness A {w1}\ngroup G 1 A A\nquorum G\n"),
                2,
                "twice",
            ),
            (
                format!("group G 1 A\nwitness A {w1}\nquorum G\n"),
                1,
                "not defined",
            ),
            (
                format!("witness A {w1}\nquorum A\nquorum A\n"),
                3,
                "second quorum",
            ),
            (format!("witness A {w1}\n"), 0, "no quorum"),
            (
                format!("witness none {w1}\nquorum none\n"),
                1,
                "already defined",
            ),
            (
                format!("witness A {w1}\ngroup G 1 none\nquorum G\n"),
                2,
                "not defined",
            ),
            (
                format!("witness A {w1}\ngroup G1 any A\ngroup Q 1 A G1\nquorum Q\n"),
                3,
                "already a member of group G1",
            ),
            ("quorum none\nfoo bar\n".into(), 2, "unknown line"),
            ("quorum none\nwitness A x+1+2\n".into(), 2, "witness A"),
            ("quorum\tnone\r\n".into(), 1, "control character"),
        ];
        for (text, line, what) in cases {
            let e = Policy::parse(text.as_bytes()).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.to_string().contains(what), "{text}: {e}");
        }
    }

    #[test]
    fn a_key_file_given_as_a_policy_is_refused_without_echoing_its_secret() {
        let secrets = [
            "PRIVATE+KEY+log.example+75078b31+AUwIumZ0Yy1zZWNyZXQtbm90LXJlYWxseQ",
            "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
        ];
        for secret in secrets {
            let text = format!("# created: 2026-11-30\n{secret}\n");
            let e = Policy::parse(text.as_bytes()).unwrap_err();
            assert_eq!(e.line, 2, "{e}");
            assert!(e.to_string().contains("not shown"), "{e}");
            assert!(!e.to_string().contains(&secret[4..20]), "{e}");
        }
    }

    fn signed(log: &SignerKey, size: u64, root: Hash) -> String {
        Checkpoint {
            origin: log.name().into(),
            size,
            root,
            extensions: vec![],
        }
        .sign(log)
        .unwrap()
    }

    #[test]
    fn add_checkpoint_checks_follow_the_spec() {
        use crate::merkle::{MemoryTree, consistency_proof};
        let log = SignerKey::from_seed("example.com/log", [9; 32]).unwrap();
        let keys = [log.verifier()];
        let mut t = MemoryTree::new();
        for i in 0..7u8 {
            t.push(crate::leaf_hash(&[i]));
        }
        let (r3, r7) = (t.root_at(3).unwrap(), t.root_at(7).unwrap());
        let body = |old, proof: &[Hash], note: &str| add_checkpoint_body(old, proof, note);
        let req = |b: String| AddCheckpoint::parse(b.as_bytes());
        let first = req(body(0, &[], &signed(&log, 3, r3))).unwrap();
        assert_eq!(first.check(Some(&keys), None), Ok(()));
        assert_eq!(first.check(None, None).unwrap_err().status(), 404);
        let other = SignerKey::from_seed("example.com/log", [8; 32]).unwrap();
        let forged = req(body(0, &[], &signed(&other, 3, r3))).unwrap();
        assert_eq!(forged.check(Some(&keys), None).unwrap_err().status(), 403);
        let proof = consistency_proof(&t, 3, 7).unwrap();
        let next = req(body(3, &proof, &signed(&log, 7, r7))).unwrap();
        assert_eq!(next.check(Some(&keys), Some((3, r3))), Ok(()));
        assert_eq!(
            next.check(Some(&keys), Some((7, r7))),
            Err(AddError::Conflict { old: 3, latest: 7 })
        );
        let mut wrong = proof.clone();
        wrong[0] = r3;
        let bad = req(body(3, &wrong, &signed(&log, 7, r7))).unwrap();
        assert_eq!(
            bad.check(Some(&keys), Some((3, r3))).unwrap_err().status(),
            422
        );
        // C2SP tlog-witness: the same size with another root is a 409.
        let same = req(body(3, &[], &signed(&log, 3, r7))).unwrap();
        let e = same.check(Some(&keys), Some((3, r3))).unwrap_err();
        assert_eq!(e.status(), 409, "{e}");
        assert!(matches!(e, AddError::RootConflict { size: 3, .. }), "{e}");
        let nonempty = req(body(0, &[r3], &signed(&log, 3, r3))).unwrap();
        assert_eq!(nonempty.check(Some(&keys), None).unwrap_err().status(), 422);
        let back = req(body(7, &[], &signed(&log, 3, r3))).unwrap();
        assert_eq!(
            back.check(Some(&keys), Some((7, r7))).unwrap_err().status(),
            400
        );
        let empty = req(body(0, &[], &signed(&log, 0, r3))).unwrap();
        assert_eq!(empty.check(Some(&keys), None).unwrap_err().status(), 422);
        let lines = vec![r3; 64];
        assert!(matches!(
            req(body(3, &lines, &signed(&log, 7, r7))),
            Err(AddError::BadRequest(_))
        ));
        for b in [
            "old 01\n\n",
            "old -1\n\n",
            "old 1",
            "new 1\n\n",
            "old 99999999999999999999\n\nx",
        ] {
            assert_eq!(req(b.to_string()).unwrap_err().status(), 400, "{b}");
        }
    }
}
