//! Private key files: Go's `PRIVATE+KEY+name+hex8+base64` format, mode 0600,
//! refused when group or others can read them (as ssh does).

use crate::error::{Error, Result};
use crate::fs::{FileRole, Fs};
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use stele_core::note::SignerKey;

/// Makes a new Ed25519 signer named `name` from 32 bytes of OS randomness.
pub fn generate(name: &str) -> Result<SignerKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::BadKey {
        path: Path::new("<new key>").into(),
        why: format!("reading OS randomness: {e}"),
    })?;
    SignerKey::from_seed(name, seed).map_err(|e| Error::BadKey {
        path: Path::new("<new key>").into(),
        why: e.to_string(),
    })
}

/// Writes a new key file with mode 0600 (it must not exist yet), fsyncs it
/// and its directory.
pub fn save(fs: &dyn Fs, path: &Path, key: &SignerKey) -> Result<()> {
    save_private(fs, path, &key.to_private_string())
}

/// [`save`] for any private key string (a witness's cosigner key too).
pub fn save_private(fs: &dyn Fs, path: &Path, private: &str) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    let text = format!("{private}\n");
    fs.write_at(FileRole::Key, &f, text.as_bytes(), 0)
        .map_err(|e| Error::io("write", path, e))?;
    fs.sync_data(FileRole::Key, &f)
        .map_err(|e| Error::io("fdatasync", path, e))?;
    let dir = parent(path);
    fs.sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))?;
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Reads a key file, refusing one that group or others can read.
pub fn load(path: &Path) -> Result<SignerKey> {
    let text = load_private(path)?;
    // The message must never echo the key: core's errors only describe it.
    SignerKey::parse(&text).map_err(|e| Error::BadKey {
        path: path.into(),
        why: e.to_string(),
    })
}

/// Reads a private key file's text (without its final newline), refusing
/// one that group or others can read. Never print the result.
pub fn load_private(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let meta = f.metadata().map_err(|e| Error::io("stat", path, e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyPermissions {
            path: path.into(),
            mode,
        });
    }
    let mut text = String::new();
    let _ = f
        .read_to_string(&mut text)
        .map_err(|e| Error::io("read", path, e))?;
    text.truncate(text.trim_end().len());
    Ok(text)
}
