//! Helpers every test uses, written once: a deterministic RNG, the options a
//! vector is verified with, and the `.expect` file parser (tests/vectors/README.md).

use crate::vectors::Vector;
use stele_core::VerifierKey;
use stele_core::hash::Hash;
use stele_core::verify::Options;

/// xorshift64*: deterministic test data, seeded so a failure is reproducible.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// A random hash.
    pub fn hash(&mut self) -> Hash {
        let mut h = [0u8; 32];
        for c in h.chunks_mut(8) {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        Hash(h)
    }
}

/// The options a vector is verified with: its keys pinned, and its earlier
/// trusted checkpoint read by the one rule (core's `parse_trusted`).
pub fn options(v: &Vector) -> Options {
    let keys = std::iter::once(v.key.clone())
        .chain(crate::rotation::also_pinned(v.name))
        .map(|k| VerifierKey::parse(&k).expect("vector key"))
        .collect();
    let mut o = Options::new(keys);
    o.revoked = crate::rotation::revoked_for(v.name)
        .map(|r| stele_core::verify::parse_revoked(&r).expect("vector's revoked key"))
        .into_iter()
        .collect();
    o.trusted = v.trusted.as_ref().map(|t| {
        stele_core::checkpoint::parse_trusted(t.as_bytes(), &o.keys)
            .expect("vector's trusted checkpoint")
            .checkpoint
    });
    o
}

/// An `.expect` file, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expect {
    /// The `# …` line.
    pub about: String,
    /// The verifier key to pin (the first `key:` line).
    pub key: String,
    /// Every key to pin (each `key:` line, in order).
    pub keys: Vec<String>,
    /// The trusted checkpoint's file name, if any.
    pub trusted: Option<String>,
    /// A revoked key, `VKEY@SIZE` (docs/FORMAT.md 15.3), if any.
    pub revoked: Option<String>,
    /// The verdict.
    pub verdict: String,
    /// Failures that must be reported: code and entry (`None` for `-`).
    pub failures: Vec<(String, Option<u64>)>,
    /// Notices that must be given.
    pub notices: Vec<String>,
    /// The witness policy's file name, if any (tests/vectors/witness).
    pub policy: Option<String>,
    /// The report's `quorum.met`: `met` or `unmet` (with a policy).
    pub quorum: Option<String>,
}

/// Parses an `.expect` file (tests/vectors/README.md); `Err` names the bad line.
pub fn parse_expect(text: &str) -> Result<Expect, String> {
    let mut e = Expect::default();
    for (i, line) in text.lines().enumerate() {
        let bad = || format!("line {}: {line:?}", i + 1);
        if let Some(a) = line.strip_prefix("# ") {
            e.about = a.to_string();
            continue;
        }
        let (k, v) = line.split_once(": ").ok_or_else(bad)?;
        match k {
            "key" => {
                if e.key.is_empty() {
                    e.key = v.to_string();
                }
                e.keys.push(v.to_string());
            }
            "trusted" => e.trusted = Some(v.to_string()),
            "revoked" => e.revoked = Some(v.to_string()),
            "verdict" => e.verdict = v.to_string(),
            "notice" => e.notices.push(v.to_string()),
            "policy" => e.policy = Some(v.to_string()),
            "quorum" => e.quorum = Some(v.to_string()),
            "failure" => {
                let (code, entry) = v.split_once(' ').ok_or_else(bad)?;
                let entry = match entry {
                    "-" => None,
                    n => Some(n.parse().map_err(|_| bad())?),
                };
                e.failures.push((code.to_string(), entry));
            }
            _ => return Err(bad()),
        }
    }
    if e.key.is_empty() || e.verdict.is_empty() {
        return Err("no key or no verdict line".into());
    }
    Ok(e)
}
