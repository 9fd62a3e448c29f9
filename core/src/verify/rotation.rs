//! Key rotation (docs/FORMAT.md 15): the chain of `stele.key` events from
//! the pinned keys, each key's range of tree sizes, revocations, and which
//! checkpoint signatures count.
//!
//! Behind the core feature `rotation` (on by default; the plain browser
//! verifier leaves it out). Without it a `stele.key` event only adds the
//! notice `rotation_unchecked`, and checkpoints are checked against the
//! pinned keys alone (FORMAT 15.6).

use super::*;
use crate::canonical;
use crate::checkpoint::SignedCheckpoint;
use crate::entry::ParsedEntry;
use crate::note::NoteVerification;
use serde::Serialize;

/// The event type that introduces a new signing key.
pub const KEY_TYPE: &str = "stele.key";

/// Keys in a log's history at most (the genesis key included): memory and
/// the work per checkpoint stay bounded whatever a file holds (FORMAT 10).
pub const MAX_KEYS: usize = 100;

/// One key of the log's history, as the report lists it (FORMAT 15.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyReport {
    /// The verifier key.
    pub key: String,
    /// The entry that names it: 0 for the genesis key, else its `stele.key` event.
    pub entry: u64,
    /// The first tree size it signs.
    pub from: u64,
    /// The first tree size it no longer signs alone (null: the log's current key).
    pub to: Option<u64>,
    /// Whether the first checkpoint covering its `stele.key` event is signed
    /// by the key it replaces (null: the genesis key, or no such checkpoint
    /// in the file).
    pub signed: Option<bool>,
    /// The verifier accepts it: pinned, or reached from a pinned key through
    /// signed `stele.key` events.
    pub trusted: bool,
    /// The smallest tree size from which it is revoked (given, or inherited
    /// through a revoked key's hand-over, FORMAT 15.3): it is trusted below
    /// that size only. None when it is not revoked.
    pub revoked_from: Option<u64>,
}

/// Without rotation support: whether a `stele.key` event was read.
#[cfg(not(feature = "rotation"))]
#[derive(Debug, Default)]
pub(super) struct Rotation {
    seen: bool,
}

// A key of the log's history and what the file has said about it so far.
#[cfg(feature = "rotation")]
#[derive(Debug)]
struct Hist {
    key: VerifierKey,
    // The key it replaces (None: the genesis key).
    replaces: Option<VerifierKey>,
    entry: u64,
    from: u64,
    signed: Option<bool>,
    at: (u64, u64),
}

/// The verifier's key state: the history read so far, the keys reached
/// from the pinned ones, and each retired key's end.
#[cfg(feature = "rotation")]
#[derive(Debug, Default)]
pub(super) struct Rotation {
    history: Vec<Hist>,
    // The pinned keys, then the keys reached through signed transitions
    // (filled when the first checkpoint after a stele.key event is read).
    accepted: Vec<VerifierKey>,
    // (key, the first size it may no longer sign alone).
    retired: Vec<(VerifierKey, u64)>,
    // (key, size): a key that is not pinned, reached through a hand-over by
    // a key revoked from that size, is revoked from it too (FORMAT 15.3).
    inherited: Vec<(VerifierKey, u64)>,
    // A stele.key event was read: the report lists the history.
    seen: bool,
    // History entries before this one are settled (genesis, or transitions
    // whose covering checkpoint was read).
    settled: usize,
}

/// The raw JSON text of the top-level member `name` of a canonical JSON
/// object (canonical form writes a member name without escapes, so bytes
/// compare exactly).
#[cfg(feature = "rotation")]
fn member<'a>(obj: &'a str, name: &str) -> Option<&'a str> {
    fn string_end(b: &[u8], mut i: usize) -> usize {
        i += 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        i
    }
    let b = obj.as_bytes();
    let mut i = 1;
    while b.get(i) == Some(&b'"') {
        let k = i + 1;
        i = string_end(b, i);
        let key = b.get(k..i - 1)?;
        i += 1;
        let v = i;
        let mut depth = 0u32;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    i = string_end(b, i);
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => depth -= 1,
                b',' | b'}' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        if key == name.as_bytes() {
            return obj.get(v..i);
        }
        i += 1;
    }
    None
}

// A member that is a string holding a verifier key.
#[cfg(feature = "rotation")]
fn key_member(event: &str, name: &str) -> Option<VerifierKey> {
    let raw = member(event, name)?.strip_prefix('"')?.strip_suffix('"')?;
    VerifierKey::parse(&canonical::unescape(raw.as_bytes())?).ok()
}

/// FORMAT 15.3: reads a revocation, `VKEY@SIZE` (the verifier key, `@`,
/// and the decimal tree size from which its signatures are failures).
pub fn parse_revoked(s: &str) -> Result<(VerifierKey, u64), String> {
    let s = s.trim();
    let (key, size) = s
        .rsplit_once('@')
        .ok_or("a revoked key is written VKEY@SIZE (the tree size from which it is revoked)")?;
    let size = Some(size)
        .filter(|n| is_decimal(n))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            format!(
                "revoked key: size {} is not a decimal tree size",
                canonical::quote(size)
            )
        })?;
    let key = VerifierKey::parse(key).map_err(|e| format!("revoked key: {e}"))?;
    Ok((key, size))
}

/// FORMAT 15.3: reads revocations given as `VKEY@SIZE` texts (as a page or
/// the CLI gives them); the error names the first that does not parse.
pub fn parse_revoked_list(revoked: &[String]) -> Result<Vec<(VerifierKey, u64)>, String> {
    revoked
        .iter()
        .map(|r| parse_revoked(r).map_err(|e| format!("revoked {}: {e}", canonical::quote(r))))
        .collect()
}

// The smallest size from which `k` is revoked in `revocations`, if it is.
fn smallest_revocation<'a>(
    revocations: impl Iterator<Item = &'a (VerifierKey, u64)>,
    k: &VerifierKey,
) -> Option<u64> {
    revocations.filter(|(r, _)| r == k).map(|(_, s)| *s).min()
}

/// FORMAT 15.6 (a monitor of the newest checkpoint): rule 1 of 15.3 for one
/// checkpoint of tree size `size` judged on its own, without the log's key
/// history (live mode reads no `stele.key` events: no key is retired and no
/// revocation inherited there): the first key of
/// `verified_by` (the pinned keys whose signature on it verified) that is
/// revoked from a size `S <= size`, with the smallest such `S`. Its
/// signature is a `key_revoked` failure and does not count, so the
/// checkpoint is not trusted, whatever other key signed it too.
pub fn revoked_signature<'a>(
    verified_by: &'a [VerifierKey],
    size: u64,
    revoked: &[(VerifierKey, u64)],
) -> Option<(&'a VerifierKey, u64)> {
    verified_by.iter().find_map(|k| {
        smallest_revocation(revoked.iter(), k)
            .filter(|s| *s <= size)
            .map(|s| (k, s))
    })
}

impl<S: EntrySink> StreamVerifier<S> {
    /// Sets the revoked keys ([`Options::revoked`], FORMAT 15.3); `false`
    /// once bytes were pushed. A build without the feature `rotation`
    /// ignores them (FORMAT 15.6): give them to one that has it.
    pub fn set_revoked(&mut self, revoked: Vec<(VerifierKey, u64)>) -> bool {
        if self.streamed > 0 {
            return false;
        }
        self.opts.revoked = revoked;
        true
    }

    /// [`StreamVerifier::set_revoked`] from `VKEY@SIZE` texts (as a page
    /// gives them); the error names the first that does not parse.
    pub fn set_revoked_texts(&mut self, revoked: &[String]) -> Result<(), String> {
        if self.set_revoked(parse_revoked_list(revoked)?) {
            Ok(())
        } else {
            Err("revoked keys: set them before the first push".into())
        }
    }
}

#[cfg(not(feature = "rotation"))]
impl<S: EntrySink> StreamVerifier<S> {
    /// The genesis entry's key: nothing to keep without rotation support.
    pub(super) fn genesis_key(&mut self, _key: VerifierKey) {}

    /// A `stele.key` event, not followed by this build: the notice says so,
    /// once, so a caller can verify the file with a build that follows it.
    #[cold]
    #[inline(never)]
    pub(super) fn key_event(&mut self, _idx: u64, _p: &ParsedEntry<'_>, _line: u64, _offset: u64) {
        if std::mem::replace(&mut self.rot.seen, true) {
            return;
        }
        // The caller must see it even when earlier notices filled the list
        // (FORMAT 8.8: at most 100): it takes the last one's place.
        if self.notices.len() >= 100 {
            let _ = self.notices.pop();
        }
        self.notice(NoticeCode::RotationUnchecked, format!("this log rotated its key ({KEY_TYPE} event); this verifier build does not follow key rotations, so only checkpoints signed by a pinned key verify"));
    }

    /// FORMAT 5.4: the pinned keys only.
    pub(super) fn check_signatures(
        &mut self,
        sc: &SignedCheckpoint,
        _line: u64,
        _offset: u64,
    ) -> NoteVerification {
        sc.verify(&self.opts.keys)
    }

    /// A key rotation this build did not follow: a retired or revoked key
    /// may have signed, so the verdict is at most `partial` (FORMAT 15.6).
    pub(super) fn rotation_unchecked(&self) -> bool {
        self.rot.seen
    }

    /// No key history without rotation support.
    pub(super) fn key_history(&self) -> Option<Vec<KeyReport>> {
        None
    }
}

#[cfg(feature = "rotation")]
impl<S: EntrySink> StreamVerifier<S> {
    /// This build follows key rotations.
    pub(super) fn rotation_unchecked(&self) -> bool {
        false
    }

    fn pinned_or_derived(&self, k: &VerifierKey) -> bool {
        self.opts.keys.contains(k) || self.rot.accepted.contains(k)
    }

    /// The genesis entry named `key` (FORMAT 3): the first key of the history.
    pub(super) fn genesis_key(&mut self, key: VerifierKey) {
        if self.rot.history.is_empty() {
            self.rot.history.push(Hist {
                key,
                replaces: None,
                entry: 0,
                from: 0,
                signed: None,
                at: (0, 0),
            });
        }
    }

    /// FORMAT 15.1: a `stele.key` event at entry `idx` (log and range exports).
    #[cold]
    #[inline(never)]
    pub(super) fn key_event(&mut self, idx: u64, p: &ParsedEntry<'_>, line: u64, offset: u64) {
        self.rot.seen = true;
        let ev = p.event_json();
        // The reasons are plain text: one message format keeps the wasm small.
        let checked = (|| {
            let key = key_member(ev, "key").ok_or("has no member key holding a verifier key")?;
            let old = key_member(ev, "replaces")
                .ok_or("has no member replaces holding a verifier key")?;
            let from = member(ev, "from").filter(|f| is_decimal(f));
            if from.and_then(|f| f.parse::<u64>().ok()) != Some(idx + 1) {
                return Err("has a from other than its index + 1 (the first tree that holds it)");
            }
            if self.rot.history.iter().any(|h| h.key == key) || key == old {
                return Err("names a key the log already had");
            }
            if self.rot.history.len() >= MAX_KEYS {
                return Err("would make the log's key history longer than 100 keys");
            }
            match self.rot.history.last() {
                Some(h) if h.key != old => {
                    Err("replaces a key other than the log's key at this point")
                }
                _ => Ok((key, old)),
            }
        })();
        match checked {
            Ok((key, old)) => self.rot.history.push(Hist {
                key,
                replaces: Some(old),
                entry: idx,
                from: idx + 1,
                signed: None,
                at: (line, offset),
            }),
            Err(why) => self.fail(
                FailureCode::BadKeyEvent,
                Some(idx),
                line,
                offset,
                None,
                Some(preview(ev.as_bytes())),
                format!("entry {idx}: {KEY_TYPE} event {why}"),
            ),
        }
    }

    /// FORMAT 15.2 and 15.3: checks a checkpoint's signatures and keeps those
    /// of keys whose range holds its size. Without key events or
    /// revocations this is exactly FORMAT 5.4.
    pub(super) fn check_signatures(
        &mut self,
        sc: &SignedCheckpoint,
        line: u64,
        offset: u64,
    ) -> NoteVerification {
        if !self.rot.seen && self.opts.revoked.is_empty() {
            return self.verify_pinned(sc);
        }
        self.check_signatures_in_range(sc, line, offset)
    }

    #[cold]
    #[inline(never)]
    fn check_signatures_in_range(
        &mut self,
        sc: &SignedCheckpoint,
        line: u64,
        offset: u64,
    ) -> NoteVerification {
        let size = sc.checkpoint.size;
        if self.rot.accepted.is_empty() {
            self.rot.accepted = self.opts.keys.clone();
        }
        // Transitions this checkpoint is the first to cover.
        // (`from` increases along the history, so the unsettled ones this
        // checkpoint covers are the next few.)
        while let Some(h) = self
            .rot
            .history
            .get(self.rot.settled)
            .filter(|h| h.from <= size)
        {
            let i = self.rot.settled;
            self.rot.settled += 1;
            let Some(old) = h.replaces.clone() else {
                continue;
            };
            let signed = !sc.verify(std::slice::from_ref(&old)).verified_by.is_empty();
            let h = &mut self.rot.history[i];
            h.signed = Some(signed);
            let (new, entry, from, at) = (h.key.clone(), h.entry, h.from, h.at);
            if !signed {
                self.fail(FailureCode::KeyUnsigned, Some(entry), at.0, at.1, Some(old.id_hex()), Some(new.id_hex()), format!("entry {entry}: the checkpoint at line {line} (size {size}), the first to cover this {KEY_TYPE} event, is not signed by the key it replaces"));
            } else if self.rot.accepted.contains(&old) && self.limit(&old, size).is_none() {
                // An accepted key, not retired and not revoked at this size,
                // hands over to `new`. If `old` is revoked from a larger
                // size, whoever holds it could have made this hand-over (in
                // a fork below that size): `new` is trusted no further than
                // `old`, unless it is pinned.
                if let Some(s) = self.revoked_from(&old)
                    && !self.opts.keys.contains(&new)
                {
                    self.rot.inherited.push((new.clone(), s));
                }
                self.rot.retired.push((old, from));
                if !self.rot.accepted.contains(&new) {
                    self.rot.accepted.push(new);
                }
            }
        }
        let mut v = sc.verify(&self.rot.accepted);
        let mut out = Vec::new();
        let mut i = 0;
        while i < v.verified_by.len() {
            match self.limit(&v.verified_by[i], size) {
                Some(l) => out.push((v.verified_by.remove(i), l)),
                None => i += 1,
            }
        }
        for (k, (retired, limit)) in out {
            // A retired key beside a key in range is an overlap co-signature: redundant, not a failure.
            if retired && !v.verified_by.is_empty() {
                continue;
            }
            let (code, why) = if retired {
                (
                    FailureCode::KeyRetired,
                    "it was replaced by a stele.key event, and no key whose range holds that size signs the checkpoint",
                )
            } else if self.opts.revoked.contains(&(k.clone(), limit)) {
                (FailureCode::KeyRevoked, "the key is revoked from that size")
            } else {
                (
                    FailureCode::KeyRevoked,
                    "the key is not pinned and was handed over by a key revoked from that size",
                )
            };
            self.fail(code, None, line, offset, Some(format!("size < {limit}")), Some(format!("size {size}")), format!("checkpoint at line {line} (size {size}) is signed by key ID {}, whose range ends before size {limit}: {why}", k.id_hex()));
        }
        v
    }

    // The revocations: given (--revoked), then those inherited through
    // hand-overs by revoked keys.
    fn revocations(&self) -> impl Iterator<Item = &(VerifierKey, u64)> {
        self.opts.revoked.iter().chain(&self.rot.inherited)
    }

    // The smallest size from which `k` is revoked, if it is.
    fn revoked_from(&self, k: &VerifierKey) -> Option<u64> {
        smallest_revocation(self.revocations(), k)
    }

    // Why `k` may not sign a tree of `size`: (retired, the first size it may
    // not sign) for a revoked key (checked first: its smallest revocation)
    // or a retired one.
    fn limit(&self, k: &VerifierKey, size: u64) -> Option<(bool, u64)> {
        if let Some(s) = self.revoked_from(k).filter(|s| *s <= size) {
            return Some((false, s));
        }
        self.rot
            .retired
            .iter()
            .find(|(r, s)| r == k && *s <= size)
            .map(|(_, s)| (true, *s))
    }

    /// The report's `keys` (FORMAT 15.4): present once a `stele.key` event was read.
    #[inline(never)]
    pub(super) fn key_history(&self) -> Option<Vec<KeyReport>> {
        if !self.rot.seen {
            return None;
        }
        let h = &self.rot.history;
        Some(
            h.iter()
                .enumerate()
                .map(|(i, k)| KeyReport {
                    key: k.key.to_string(),
                    entry: k.entry,
                    from: k.from,
                    to: h[i + 1..]
                        .iter()
                        .find(|n| n.signed != Some(false))
                        .map(|n| n.from),
                    signed: k.signed,
                    trusted: self.pinned_or_derived(&k.key),
                    revoked_from: self.revoked_from(&k.key),
                })
                .collect(),
        )
    }
}

#[cfg(all(test, feature = "rotation"))]
mod tests {
    use super::{MAX_KEYS, member};
    use crate::entry::{Timestamp, ZERO_PREV, entry_line, genesis_event};
    use crate::hash::leaf_hash;
    use crate::verify::{FailureCode, Options, verify_bytes};
    use crate::{SignerKey, VerifierKey};

    /// A file of any number of stele.key events keeps at most MAX_KEYS keys.
    #[test]
    fn the_key_history_is_bounded() {
        let key = |i: usize| -> VerifierKey {
            SignerKey::from_seed("log", [i as u8; 32])
                .unwrap()
                .verifier()
        };
        let ts = Timestamp::parse(b"2026-11-26T12:00:00.000000Z").unwrap();
        let mut lines = vec![
            entry_line(
                0,
                ts,
                &ZERO_PREV,
                &genesis_event("log", &key(0).to_string()),
            )
            .unwrap(),
        ];
        for i in 1..=MAX_KEYS + 5 {
            let ev = serde_json::json!({"type": "stele.key", "key": key(i).to_string(), "replaces": key(i - 1).to_string(), "from": i + 1});
            let prev = leaf_hash(lines[i - 1].as_bytes());
            lines.push(entry_line(i as u64, ts, &prev, &ev).unwrap());
        }
        let file = format!("stele-export v1 log\n{}\n", lines.join("\n"));
        let r = verify_bytes(Options::new(vec![key(0)]), file.as_bytes());
        assert_eq!(r.keys.as_ref().unwrap().len(), MAX_KEYS);
        let bad: Vec<_> = r
            .failures
            .iter()
            .filter(|f| f.code == FailureCode::BadKeyEvent)
            .map(|f| f.entry)
            .collect();
        // The 100th event would be the 101st key; the later ones also replace a key the history never took.
        assert_eq!(
            bad.first(),
            Some(&Some(MAX_KEYS as u64)),
            "{:?}",
            r.failures
        );
        assert_eq!(bad.len(), 6);
    }

    #[test]
    fn member_finds_top_level_members_only() {
        let ev =
            r#"{"a":{"from":1},"b":["x,}",{"c":2}],"from":17,"key":"k\"y","type":"stele.key"}"#;
        assert_eq!(member(ev, "from"), Some("17"));
        assert_eq!(member(ev, "key"), Some(r#""k\"y""#));
        assert_eq!(member(ev, "b"), Some(r#"["x,}",{"c":2}]"#));
        assert_eq!(member(ev, "c"), None);
        assert_eq!(member(ev, "type"), Some(r#""stele.key""#));
        assert_eq!(member("{}", "a"), None);
    }
}
