//! Bearer tokens for `stele serve`. The tokens file stores only SHA-256
//! hashes, one named token per line, with the scopes it grants (every
//! scope, `reveal` included, when none are listed); the name becomes the `actor` of the
//! `stele.access` events the token's reads cause and the `stele.token` of
//! the entries it writes.
//!
//! ```text
//! # stele tokens: NAME sha256:HEX [SCOPES] (add with `stele token add FILE NAME`)
//! alice sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 read
//! kube-apiserver sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752 k8s
//! ```
//!
//! The file is refused when group or others may write it, when another user
//! owns it, when it holds no token, or when two lines hold the same hash.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Error, Result};

const HEADER: &str =
    "# stele tokens: NAME sha256:HEX [SCOPES] (add with `stele token add FILE NAME`)\n";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes {
    /// Reads that need a token (entries, exports, and on token-read servers everything).
    pub read: bool,
    /// `POST /v1/entries`.
    pub write: bool,
    /// `POST /v1/k8s-audit`.
    pub k8s: bool,
    /// `GET /v1/export?reveal-to=age1…`: exports carrying sealed-field
    /// openings for auditors (docs/FORMAT.md section 13). Its own scope:
    /// such a copy stays openable by that auditor after a later `stele
    /// forget`, which a plain read never gives.
    pub reveal: bool,
}

impl Scopes {
    /// Every scope (a line without scopes).
    pub const ALL: Self = Self {
        read: true,
        write: true,
        k8s: true,
        reveal: true,
    };

    /// Parses `read,write,k8s,reveal` (any non-empty subset, comma-separated).
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Self {
            read: false,
            write: false,
            k8s: false,
            reveal: false,
        };
        for p in s.split(',') {
            match p {
                "read" => out.read = true,
                "write" => out.write = true,
                "k8s" => out.k8s = true,
                "reveal" => out.reveal = true,
                _ => {
                    return Err(format!(
                        "scope {p:?} is not one of read, write, k8s, reveal (comma-separated)"
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The scopes as a tokens file and `stele token list` write them: `read,write`.
    pub fn render(self) -> String {
        let mut v = Vec::new();
        for (on, n) in [
            (self.read, "read"),
            (self.write, "write"),
            (self.k8s, "k8s"),
            (self.reveal, "reveal"),
        ] {
            if on {
                v.push(n);
            }
        }
        v.join(",")
    }
}

/// One accepted token: its name and scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The name (from the tokens file).
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
}

/// The tokens a server accepts: hash -> token.
#[derive(Debug, Default, Clone)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], Token>,
}

/// What an `Authorization` header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer<T> {
    /// No `Authorization` header.
    Missing,
    /// A header that is not `Bearer <known token>`.
    Unknown,
    /// A known token.
    Known(T),
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
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut t = Self::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}", i + 1);
            let mut parts = line.split_whitespace();
            let (Some(name), Some(h)) = (parts.next(), parts.next()) else {
                return Err(bad("expected NAME sha256:HEX [SCOPES]"));
            };
            let scopes = match parts.next() {
                None => Scopes::ALL,
                Some(sc) => Scopes::parse(sc).map_err(|e| bad(&e))?,
            };
            if parts.next().is_some() {
                return Err(bad("expected NAME sha256:HEX [SCOPES], found more"));
            }
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
            if t.by_hash.values().any(|n| n.name == name) {
                return Err(bad(&format!("token name {name:?} appears twice")));
            }
            if let Some(other) = t.by_hash.get(&h.0) {
                return Err(bad(&format!(
                    "token {name:?} has the same hash as token {:?}: one token cannot have two names",
                    other.name
                )));
            }
            let _ = t.by_hash.insert(
                h.0,
                Token {
                    name: name.to_string(),
                    scopes,
                },
            );
        }
        Ok(t)
    }

    /// Loads a tokens file.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |why: String| Error::Tokens {
            path: path.to_path_buf(),
            why,
        };
        check_owner_and_mode(path).map_err(bad)?;
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let t = Self::parse(&text).map_err(bad)?;
        if t.by_hash.is_empty() {
            return Err(bad(
                "holds no token, so no one could write or read with a token".into(),
            ));
        }
        Ok(t)
    }

    /// The name of the token in an `Authorization: Bearer` header value.
    pub fn check(&self, authorization: Option<&[u8]>) -> Option<&str> {
        match self.bearer(authorization) {
            Bearer::Known(t) => Some(&t.name),
            _ => None,
        }
    }

    /// What an `Authorization` header value holds.
    pub fn bearer(&self, authorization: Option<&[u8]>) -> Bearer<&Token> {
        let Some(v) = authorization else {
            return Bearer::Missing;
        };
        let known = std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            // A map lookup by the token's SHA-256: what the lookup's timing
            // could reveal is about the hash, not the token.
            .and_then(|(_, token)| self.by_hash.get(&hash(token.trim())));
        known.map_or(Bearer::Unknown, Bearer::Known)
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

/// The tokens of a running server, read again when the file changes
/// (looked at on a request, at most once a second): a token removed with
/// `stele token remove` stops working without a restart, and one added
/// starts. A file that can no longer be used (removed, unsafe mode, a bad
/// line) refuses every token until it is mended: a revocation never falls
/// back to the older list. Each change is said on stderr.
#[derive(Debug)]
pub struct LiveTokens {
    path: Option<PathBuf>,
    state: Mutex<Live>,
}

#[derive(Debug)]
struct Live {
    tokens: Arc<Tokens>,
    stamp: Option<Stamp>,
    looked: Instant,
    broken: bool,
}

// What tells a changed file: a rename gives a new inode, an edit in place
// a new modification time, size or change time.
type Stamp = (u64, u64, i64, i64, i64, i64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| {
        (
            m.dev(),
            m.ino(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
            m.len(),
        )
    })
}

impl LiveTokens {
    /// How often the file is looked at.
    pub const EVERY: Duration = Duration::from_secs(1);

    /// Loads the file (`None`: no tokens, every write refused); errors
    /// here stop the server from starting.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let (tokens, stamp) = match path {
            Some(p) => {
                let before = stamp(p);
                (Tokens::load(p)?, before)
            }
            None => (Tokens::default(), None),
        };
        Ok(Self {
            path: path.map(Path::to_path_buf),
            state: Mutex::new(Live {
                tokens: Arc::new(tokens),
                stamp,
                looked: Instant::now(),
                broken: false,
            }),
        })
    }

    /// The tokens now, and whether the file is unusable (then the set is
    /// empty).
    pub fn current(&self) -> (Arc<Tokens>, bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = &self.path
            && s.looked.elapsed() >= Self::EVERY
        {
            s.looked = Instant::now();
            let now = stamp(p);
            // While the file is unusable it is read again every look, so a
            // passing failure (EMFILE, EIO) does not refuse tokens for good.
            if now != s.stamp || s.broken || now.is_none() {
                s.stamp = now;
                match Tokens::load(p) {
                    Ok(t) => {
                        eprintln!(
                            "stele serve: the tokens file changed: {} token(s) now",
                            t.len()
                        );
                        s.tokens = Arc::new(t);
                        s.broken = false;
                    }
                    Err(e) => {
                        if !s.broken {
                            eprintln!(
                                "stele serve: {e}; every token is refused until the file is mended"
                            );
                        }
                        s.tokens = Arc::new(Tokens::default());
                        s.broken = true;
                    }
                }
            }
        }
        (s.tokens.clone(), s.broken)
    }

    /// Whether the server was started with a tokens file.
    pub fn configured(&self) -> bool {
        self.path.is_some()
    }
}

/// The names and scopes in a tokens file, in file order (never the hashes).
pub fn list_tokens(file: &Path) -> Result<Vec<(String, Scopes)>> {
    let bad = |why: String| Error::Tokens {
        path: file.to_path_buf(),
        why,
    };
    let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    let t = Tokens::parse(&text).map_err(bad)?;
    let mut out = Vec::new();
    for line in text.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if let Some(tok) = t.by_hash.values().find(|n| n.name == name)
            && !line.trim_start().starts_with('#')
        {
            out.push((tok.name.clone(), tok.scopes));
        }
    }
    Ok(out)
}

/// Removes the token named `name` from `file`: the rest of the file (other
/// tokens, comments) is written to a new file beside it (mode 0600,
/// fsynced) that replaces it. A running `stele serve` stops accepting the
/// token within [`LiveTokens::EVERY`].
pub fn remove_token(file: &Path, name: &str) -> Result<()> {
    let bad = |why: String| Error::Tokens {
        path: file.to_path_buf(),
        why,
    };
    refuse_link(file).map_err(bad)?;
    check_owner_and_mode(file).map_err(bad)?;
    let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    let _ = Tokens::parse(&text).map_err(bad)?;
    let mut kept = String::with_capacity(text.len());
    let mut found = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if !t.starts_with('#') && t.split_whitespace().next() == Some(name) {
            found = true;
        } else {
            kept.push_str(line);
        }
    }
    if !found {
        return Err(bad(format!("holds no token named {name:?}")));
    }
    replace(file, &kept).map_err(bad)
}

// Write access to the tokens file is write access to the log: refuse what
// the key file's check refuses, and files of other users.
fn check_owner_and_mode(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let mode = m.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "has mode {mode:04o}: group or others can write it (and so add a token); run chmod 600"
        ));
    }
    // The process's effective uid owns /proc/self.
    if let Ok(me) = std::fs::metadata("/proc/self").map(|s| s.uid())
        && m.uid() != me
        && m.uid() != 0
    {
        return Err(format!(
            "is owned by uid {}, not by this user (uid {me}) or root",
            m.uid()
        ));
    }
    Ok(())
}

/// Makes a new token for `name` with `scopes`, appends its hash to `file`
/// (created with mode 0600 if missing, fdatasync'ed) and returns the token.
pub fn add_token(file: &Path, name: &str, scopes: Scopes) -> Result<String> {
    add(file, name, scopes).map_err(|why| Error::Tokens {
        path: file.to_path_buf(),
        why,
    })
}

// The file is replaced through a new one renamed over it: a symbolic link
// there would be replaced, not the file it names (which a server may read).
fn refuse_link(file: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(file) {
        Ok(m) if m.file_type().is_symlink() => {
            Err("is a symbolic link; pass the path of the file it names".into())
        }
        _ => Ok(()),
    }
}

fn add(file: &Path, name: &str, scopes: Scopes) -> Result<String, String> {
    refuse_link(file)?;
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
    if tokens.by_hash.values().any(|n| n.name == name) {
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
    line.push_str(&format!("{name} sha256:{}", hex(&hash(&token))));
    if scopes != Scopes::ALL {
        line.push(' ');
        line.push_str(&scopes.render());
    }
    line.push('\n');
    // The whole file is written anew and renamed over the old one: a
    // running server (which reads the file again when it changes) never
    // reads a half-written line.
    replace(file, &format!("{existing}{line}"))?;
    Ok(token)
}

// Writes `text` to a new file beside `file` (mode 0600, fsynced) and renames
// it over `file`, then fsyncs the directory.
fn replace(file: &Path, text: &str) -> Result<(), String> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".stele-tokens.")
        .tempfile_in(parent)
        .map_err(|e| format!("create a temporary file beside it: {e}"))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| format!("write: {e}"))?;
    let _ = tmp
        .persist(file)
        .map_err(|e| format!("replace: {}", e.error))?;
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("fsync its directory: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        let a = add_token(&f, "alice", Scopes::ALL).unwrap();
        let b = add_token(&f, "bob@ops", Scopes::parse("read").unwrap()).unwrap();
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
            add_token(&f, "alice", Scopes::ALL)
                .unwrap_err()
                .to_string()
                .contains("already has")
        );
        assert!(add_token(&f, "no spaces", Scopes::ALL).is_err());
        match t.bearer(Some(format!("Bearer {b}").as_bytes())) {
            Bearer::Known(t) => assert!(t.scopes.read && !t.scopes.write && !t.scopes.k8s),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.bearer(Some(b"Bearer nope")), Bearer::Unknown);
        assert_eq!(t.bearer(None), Bearer::Missing);
        let e = Tokens::parse("x sha256:zz\n").unwrap_err();
        assert_eq!(
            e,
            "line 1: expected sha256: and 64 lowercase hex digits after the name"
        );
        let h = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let e = Tokens::parse(&format!("a sha256:{h}\nb sha256:{h}\n")).unwrap_err();
        assert!(
            e.starts_with("line 2: token \"b\" has the same hash as token \"a\""),
            "{e}"
        );
        let e = Tokens::parse(&format!("a sha256:{h} admin\n")).unwrap_err();
        assert!(e.contains("scope \"admin\""), "{e}");
    }

    #[test]
    fn unsafe_or_empty_tokens_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        let _ = add_token(&f, "alice", Scopes::ALL).unwrap();
        for mode in [0o666, 0o620, 0o602] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = Tokens::load(&f).unwrap_err().to_string();
            assert!(e.contains(&format!("has mode {mode:04o}")), "{e}");
        }
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Tokens::load(&f).is_ok());
        let empty = dir.path().join("empty");
        std::fs::write(&empty, HEADER).unwrap();
        let e = Tokens::load(&empty).unwrap_err().to_string();
        assert!(e.contains("holds no token"), "{e}");
    }
}
