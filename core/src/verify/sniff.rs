//! What a file that is not a Stele export is, told by its first bytes or
//! first line, with a hint for the person who chose it (docs/FORMAT.md 8.2).

use crate::note::VerifierKey;

/// Compressed and archive formats by their magic bytes.
const MAGIC: &[(&[u8], &str, &str)] = &[
    (
        b"\x1f\x8b",
        "gzip-compressed data",
        "decompress it first (gunzip FILE), then verify the file inside",
    ),
    (
        b"PK\x03\x04",
        "zip archive",
        "extract the export from the archive first, then verify it",
    ),
    (
        b"\x28\xb5\x2f\xfd",
        "zstd-compressed data",
        "decompress it first (unzstd FILE), then verify the file inside",
    ),
    (
        b"\xfd7zXZ\x00",
        "xz-compressed data",
        "decompress it first (unxz FILE), then verify the file inside",
    ),
];

/// A short description of what the input is (the failure's `found`) and a
/// hint. `head` is the stream's first bytes; `line` its first line, when it
/// was short enough to be read.
pub(super) fn sniff(head: &[u8], line: Option<&[u8]>) -> (&'static str, &'static str) {
    if head.is_empty() {
        return (
            "empty file",
            "the file has no bytes; choose the export file written by `stele export DIR`",
        );
    }
    if let Some(&(_, found, hint)) = MAGIC.iter().find(|(m, _, _)| head.starts_with(m)) {
        return (found, hint);
    }
    let text = line.unwrap_or(head);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if text.starts_with(b"PRIVATE+KEY+") {
        return (
            "a signing key",
            "this is a private signing key: keep it secret; to verify, give the verifier key (`stele key DIR` prints it) and choose the export file",
        );
    }
    let utf8 = std::str::from_utf8(text);
    if line.is_some() && utf8.is_ok_and(|t| VerifierKey::parse(t).is_ok()) {
        return (
            "a verifier key",
            "this is the key to verify with: give it as the key (--key) and choose the export file",
        );
    }
    // A head cut inside a UTF-8 character is still text; a complete line
    // that ends inside one is not UTF-8.
    let binary =
        text.contains(&0) || utf8.is_err_and(|e| line.is_some() || e.error_len().is_some());
    if binary {
        return (
            "binary data",
            "a Stele export is UTF-8 text; choose the export file written by `stele export DIR`",
        );
    }
    (
        "text that is not a Stele export",
        "a Stele export starts with the line \"stele-export v1 log\" (or range, entries) or with an entry line {\"event\":…; `stele export DIR` writes one",
    )
}
