//! Bearer tokens for `stele serve`. The tokens file stores only SHA-256
//! hashes, one named token per line; the name becomes the `actor` of the
//! `stele.access` events the token's reads cause.
//!
//! ```text
//! # stele tokens: NAME sha256:HEX (add with `stele token add FILE NAME`)
//! alice sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::{Error, Result};

const HEADER: &str = "# stele tokens: NAME sha256:HEX (add with `stele token add FILE NAME`)\n";

/// The tokens a server accepts: hash -> name.
#[derive(Debug, Default, Clone)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], String>,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@:-".contains(&b))
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Tokens {
    /// Parses a tokens file. Errors name the line.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut t = Tokens::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}", i + 1);
            let (name, h) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad("expected NAME sha256:HEX"))?;
            if !valid_name(name) {
                return Err(bad(&format!(
                    "token name {name:?} must be 1-64 of A-Z a-z 0-9 . _ @ : -"
                )));
            }
            let h = h
                .trim()
                .strip_prefix("sha256:")
                .and_then(|h| stele_core::Hash::from_hex(h.as_bytes()))
                .ok_or_else(|| {
                    bad("expected sha256: and 64 lowercase hex digits after the name")
                })?;
            if t.by_hash.values().any(|n| n == name) {
                return Err(bad(&format!("token name {name:?} appears twice")));
            }
            t.by_hash.insert(h.0, name.to_string());
        }
        Ok(t)
    }

    /// Loads a tokens file.
    pub fn load(path: &Path) -> Result<Tokens> {
        let bad = |why: String| Error::Tokens {
            path: path.to_path_buf(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        Self::parse(&text).map_err(bad)
    }

    /// The name of the token in an `Authorization: Bearer` header value.
    pub fn check(&self, authorization: Option<&[u8]>) -> Option<&str> {
        let v = std::str::from_utf8(authorization?).ok()?;
        let (scheme, token) = v.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        // A map lookup by the token's SHA-256: what the lookup's timing could
        // reveal is about the hash, not the token.
        self.by_hash.get(&hash(token.trim())).map(String::as_str)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// No token at all.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// Makes a new token for `name`, appends its hash to `file` (created with
/// mode 0600 if missing, fdatasync'ed) and returns the token.
pub fn add_token(file: &Path, name: &str) -> Result<String> {
    add(file, name).map_err(|why| Error::Tokens {
        path: file.to_path_buf(),
        why,
    })
}

fn add(file: &Path, name: &str) -> Result<String, String> {
    if !valid_name(name) {
        return Err(format!(
            "token name {name:?} must be 1-64 of A-Z a-z 0-9 . _ @ : -"
        ));
    }
    let existing = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("read: {e}")),
    };
    let tokens = Tokens::parse(&existing)?;
    if tokens.by_hash.values().any(|n| n == name) {
        return Err(format!("already has a token named {name:?}"));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("random token: {e}"))?;
    let token = format!("stele_{}", URL_SAFE_NO_PAD.encode(seed));
    let mut line = String::new();
    if existing.is_empty() {
        line.push_str(HEADER);
    } else if !existing.ends_with('\n') {
        line.push('\n');
    }
    line.push_str(&format!("{name} sha256:{}\n", hex(&hash(&token))));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| format!("open: {e}"))?;
    f.write_all(line.as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| format!("write: {e}"))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        let a = add_token(&f, "alice").unwrap();
        let b = add_token(&f, "bob@ops").unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains(&a) && !text.contains(&b),
            "a token is stored in clear"
        );
        let t = Tokens::load(&f).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.check(Some(format!("Bearer {a}").as_bytes())),
            Some("alice")
        );
        assert_eq!(
            t.check(Some(format!("bearer {b}").as_bytes())),
            Some("bob@ops")
        );
        assert_eq!(t.check(Some(format!("Bearer {a}x").as_bytes())), None);
        assert_eq!(t.check(Some(a.as_bytes())), None);
        assert_eq!(t.check(None), None);
        assert!(
            add_token(&f, "alice")
                .unwrap_err()
                .to_string()
                .contains("already has")
        );
        assert!(add_token(&f, "no spaces").is_err());
        let e = Tokens::parse("x sha256:zz\n").unwrap_err();
        assert_eq!(
            e,
            "line 1: expected sha256: and 64 lowercase hex digits after the name"
        );
    }
}
