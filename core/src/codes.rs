//! The stable failure and notice codes of a report (docs/FORMAT.md section
//! 9). Tools match on the codes, never on message text; each serialises to
//! the snake_case string shown.

use serde::Serialize;
use std::fmt;

macro_rules! codes {
    ($(#[$m:meta])* $name:ident { $($(#[$d:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$d])* $v,)*
        }

        impl $name {
            /// Every code, in the order of docs/FORMAT.md.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];

            /// The code as written in reports.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s,)*
                }
            }

            /// The code written as `s`, if there is one.
            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
    };
}

codes! {
    /// A failure's code (docs/FORMAT.md 9.1): any one makes the verdict
    /// `tampered`, except `not_a_log`, which makes it `not_a_log`.
    FailureCode {
        /// The input is not a Stele export at all (empty, compressed, a key file, other text).
        NotALog = "not_a_log",
        /// A line longer than the limit.
        LineTooLong = "line_too_long",
        /// A byte order mark.
        Bom = "bom",
        /// An entry line ending in CR.
        Crlf = "crlf",
        /// An entry line that is not UTF-8.
        InvalidUtf8 = "invalid_utf8",
        /// An entry line that is not JSON.
        InvalidJson = "invalid_json",
        /// JSON, but not RFC 8785 canonical.
        NotCanonical = "not_canonical",
        /// An object with a key twice.
        DuplicateKey = "duplicate_key",
        /// Nesting deeper than the limit.
        TooDeep = "too_deep",
        /// An entry whose members are missing, extra or malformed.
        BadEntry = "bad_entry",
        /// `seq` is not the entry's index.
        SeqMismatch = "seq_mismatch",
        /// `prev` is not the previous entry's hash.
        PrevMismatch = "prev_mismatch",
        /// The entry before a broken link was altered.
        HashMismatch = "hash_mismatch",
        /// `ts` earlier than the previous entry's.
        TsDecreasing = "ts_decreasing",
        /// Entry 0 is not a genesis entry, or a later one claims to be.
        BadGenesis = "bad_genesis",
        /// An unknown export kind or an unreadable header.
        BadHeader = "bad_header",
        /// A line that is not an entry or a record, or a record out of place.
        UnknownRecord = "unknown_record",
        /// A checkpoint note that does not parse.
        BadCheckpoint = "bad_checkpoint",
        /// A signature by a pinned key that does not verify.
        BadSignature = "bad_signature",
        /// Origins that differ.
        OriginMismatch = "origin_mismatch",
        /// The entries do not hash to a checkpoint's root.
        RootMismatch = "root_mismatch",
        /// A checkpoint covers more entries than the log holds.
        Truncated = "truncated",
        /// A checkpoint smaller than the entries before it.
        CheckpointMisplaced = "checkpoint_misplaced",
        /// A checkpoint smaller than the previous one.
        CheckpointOrder = "checkpoint_order",
        /// Two signed histories.
        Fork = "fork",
        /// Fewer entries than an earlier trusted checkpoint.
        Rollback = "rollback",
        /// An entry or checkpoint without the proof it needs.
        MissingProof = "missing_proof",
        /// A proof record that does not parse or has the wrong length.
        BadProof = "bad_proof",
        /// An inclusion proof that does not verify.
        InclusionInvalid = "inclusion_invalid",
        /// Selected entries not in increasing order.
        EntriesOutOfOrder = "entries_out_of_order",
        /// A proof without its entry.
        MissingEntry = "missing_entry",
        /// Bytes after the last newline.
        TrailingData = "trailing_data",
        /// A sealed-field placeholder or record that breaks FORMAT 13 (format 1.1).
        BadSealed = "bad_sealed",
        /// An opening that does not match its entry's commitment (format 1.1).
        OpeningMismatch = "opening_mismatch",
        /// The checkpoint the verdict rests on is not cosigned by the policy's witness quorum.
        QuorumNotMet = "quorum_not_met",
        /// A checkpoint signed by a key retired by a `stele.key` event, for a size beyond its range.
        KeyRetired = "key_retired",
        /// A `stele.key` event whose covering checkpoint is not signed by the key it replaces.
        KeyUnsigned = "key_unsigned",
        /// A checkpoint signed by a key the verifier was told is revoked from a size at or below its own,
        /// or by a key that is not pinned and was handed over to by such a key (FORMAT 15.3).
        KeyRevoked = "key_revoked",
        /// A `stele.key` event that does not follow FORMAT 15.1.
        BadKeyEvent = "bad_key_event",
        /// A timestamp record that does not parse or is misplaced, or a
        /// token whose CMS structure or signature does not check out (FORMAT 16).
        BadTimestamp = "bad_timestamp",
        /// A timestamp token for another imprint than its checkpoint's body (FORMAT 16).
        TimestampMismatch = "timestamp_mismatch",
        /// A timestamp token whose TSA certificate is not trusted: no path to
        /// the given CA, not valid at the token's time, or no critical
        /// timeStamping extended key usage (FORMAT 16).
        TimestampUntrusted = "timestamp_untrusted",
    }
}

codes! {
    /// A notice's code (docs/FORMAT.md 9.2): never changes the verdict.
    NoticeCode {
        /// The file has no export header.
        NoHeader = "no_header",
        /// The genesis entry names a key that is not pinned.
        GenesisKeyNotPinned = "genesis_key_not_pinned",
        /// A checkpoint signed under a pinned key's name by another key.
        KeyMismatch = "key_mismatch",
        /// A checkpoint signed by a key that is not pinned.
        UntrustedSignature = "untrusted_signature",
        /// Entries beyond the largest verified checkpoint.
        UnsignedTail = "unsigned_tail",
        /// A partial export does not reach the earlier trusted checkpoint.
        TrustedCheckpointUnchecked = "trusted_checkpoint_unchecked",
        /// The log has no entries.
        Empty = "empty",
        /// No key was given.
        NoKey = "no_key",
        /// Keys were given, but no checkpoint is signed by one of them.
        NoTrustedCheckpoint = "no_trusted_checkpoint",
        /// Timestamp tokens not checked: no TSA certificate was given (FORMAT 16).
        TimestampUnchecked = "timestamp_unchecked",
        /// The log rotated its key (a `stele.key` event), and this verifier
        /// build does not follow key rotations (core feature `rotation`).
        RotationUnchecked = "rotation_unchecked",
        /// Openings not checked: more came before the log's origin was
        /// known than the verifier holds (FORMAT 13.8); their values count as sealed.
        OpeningsUnchecked = "openings_unchecked",
        /// Sealed-field records not checked: this verifier build leaves
        /// section 13 out (core feature `sealed`, FORMAT 11.2).
        SealedUnchecked = "sealed_unchecked",
    }
}
