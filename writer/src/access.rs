//! The one shape of `stele.access` events, written before a read of entries
//! is answered, by `stele serve` and by the CLI alike (docs/FORMAT.md 2.6):
//!
//! ```text
//! {"action":"read","actor":"alice","read":{"entries":[1,3],"tree_size":9},
//!  "target":"/v1/entries","type":"stele.access","via":"http",
//!  "http":{"remote":"10.0.0.7:51234","token":"alice"}}
//! ```
//!
//! Every member is bounded and built from parsed parameters only: never a
//! raw query string or argument list, never a token.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The `type` of access events.
pub const ACCESS_TYPE: &str = "stele.access";

/// Most entry indexes an access event lists; a longer list is recorded as
/// its count, first, last and SHA-256.
pub const MAX_LISTED: usize = 1000;

/// Longest actor or target string kept (longer ones are cut, marked `…`).
pub const MAX_TEXT: usize = 256;

/// Who read, and through what.
#[derive(Debug, Clone)]
pub enum Reader {
    /// An HTTP client of `stele serve`.
    Http {
        /// The token's name, when the request carried a valid one.
        token: Option<String>,
        /// The client's address (the trusted forwarded one behind a proxy).
        remote: std::net::SocketAddr,
    },
    /// A CLI command run by an OS user.
    Cli {
        /// The OS user name (`$USER`), if known.
        user: Option<String>,
        /// The OS user id, if known.
        uid: Option<u64>,
        /// The log directory, absolute.
        dir: String,
        /// The log's origin.
        origin: String,
    },
}

/// What was read: an entry range, a list of entries, or a whole log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entries {
    /// Entries `from..to`.
    Range(u64, u64),
    /// These entries, ascending.
    List(Vec<u64>),
}

impl Entries {
    fn to_json(&self) -> Value {
        match self {
            Self::Range(a, b) => json!([a, b]),
            Self::List(l) if l.len() <= MAX_LISTED => json!(l),
            Self::List(l) => {
                let mut h = Sha256::new();
                for (i, e) in l.iter().enumerate() {
                    if i > 0 {
                        h.update(b",");
                    }
                    h.update(e.to_string().as_bytes());
                }
                let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
                json!({"count": l.len(), "first": l[0], "last": l[l.len() - 1], "sha256": hex})
            }
        }
    }
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_string();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Builds the access event. `target` is what was read (the HTTP path, or the
/// CLI command: `export`, `verify`, `cat`, `prove inclusion`, ...); `kind`
/// (optional) says which form (`log`, `range`, `entries`, `bundle`, `verify`);
/// `extra` holds further parsed members of `read` (an object, or null).
pub fn access_event(
    reader: &Reader,
    target: &str,
    kind: Option<&str>,
    entries: Option<&Entries>,
    tree_size: Option<u64>,
    extra: Value,
) -> Value {
    let mut read = serde_json::Map::new();
    if let Some(k) = kind {
        let _ = read.insert("kind".into(), json!(k));
    }
    if let Some(e) = entries {
        let _ = read.insert("entries".into(), e.to_json());
    }
    if let Some(s) = tree_size {
        let _ = read.insert("tree_size".into(), json!(s));
    }
    if let Value::Object(m) = extra {
        for (k, v) in m {
            let _ = read.insert(k, v);
        }
    }
    let mut ev = json!({
        "type": ACCESS_TYPE,
        "action": "read",
        "target": cut(target),
        "read": read,
    });
    match reader {
        Reader::Http { token, remote } => {
            ev["actor"] = match token {
                Some(t) => json!(cut(t)),
                None => json!(remote.ip().to_string()),
            };
            ev["via"] = json!("http");
            ev["http"] = json!({"remote": remote.to_string(), "token": token});
        }
        Reader::Cli {
            user,
            uid,
            dir,
            origin,
        } => {
            let actor = match (user, uid) {
                (Some(u), _) => u.clone(),
                (None, Some(id)) => format!("uid {id}"),
                (None, None) => "(unknown)".into(),
            };
            ev["actor"] = json!(cut(&actor));
            ev["via"] = json!("cli");
            ev["cli"] = json!({"user": user.as_deref().map(cut), "uid": uid, "dir": cut(dir), "origin": cut(origin)});
        }
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shape_for_both_readers() {
        let h = access_event(
            &Reader::Http {
                token: None,
                remote: "127.0.0.1:9".parse().unwrap(),
            },
            "/v1/entries",
            None,
            Some(&Entries::Range(1, 3)),
            Some(9),
            Value::Null,
        );
        assert_eq!(
            h.to_string(),
            r#"{"action":"read","actor":"127.0.0.1","http":{"remote":"127.0.0.1:9","token":null},"read":{"entries":[1,3],"tree_size":9},"target":"/v1/entries","type":"stele.access","via":"http"}"#
        );
        let c = access_event(
            &Reader::Cli {
                user: Some("root".into()),
                uid: Some(0),
                dir: "/l".into(),
                origin: "o".into(),
            },
            "export",
            Some("entries"),
            Some(&Entries::List((0..2000).collect())),
            Some(5000),
            Value::Null,
        );
        assert_eq!(c["actor"], "root");
        assert_eq!(c["read"]["entries"]["count"], 2000);
        assert_eq!(c["read"]["entries"]["last"], 1999);
        assert_eq!(c["read"]["kind"], "entries");
        let long = "x".repeat(10_000);
        let t = access_event(
            &Reader::Http {
                token: None,
                remote: "127.0.0.1:9".parse().unwrap(),
            },
            &long,
            None,
            None,
            None,
            Value::Null,
        );
        assert!(t.to_string().len() < 600);
    }
}
