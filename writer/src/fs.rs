//! The seam between the log and the file system: every write, fdatasync,
//! truncate, rename and directory fsync that matters for durability goes
//! through [`Fs`], so tests can make the Nth one fail (see
//! [`crate::testing::FaultFs`]).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Which of the log's files an operation touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileRole {
    /// `entries.jsonl`, the entry lines (the source of truth).
    Entries,
    /// `checkpoints`, the signed checkpoint notes.
    Checkpoints,
    /// `tree`, stored Merkle tree hashes (derived).
    Tree,
    /// `index`, entry end offsets (derived).
    Index,
    /// `stele.json`, the log's configuration.
    Config,
    /// `checked`, the check mark (derived; see writer/README.md).
    Checked,
    /// The private key file.
    Key,
    /// A directory (for directory fsyncs).
    Dir,
    /// A file outside the log (a monitor state file, an export).
    Other,
    /// A file of the sealed-field sidecar, `DIR/sealed/` (records, data
    /// keys, wraps, the forget list, the auditors).
    Sealed,
}

/// File system operations the log's durability depends on.
///
/// The default methods do the real thing; [`RealFs`] uses them unchanged.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Writes all of `buf` at `offset` (pwrite).
    fn write_at(&self, role: FileRole, f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        let _ = role;
        f.write_all_at(buf, offset)
    }
    /// fdatasync.
    fn sync_data(&self, role: FileRole, f: &File) -> io::Result<()> {
        let _ = role;
        f.sync_data()
    }
    /// ftruncate.
    fn set_len(&self, role: FileRole, f: &File, len: u64) -> io::Result<()> {
        let _ = role;
        f.set_len(len)
    }
    /// rename(2).
    fn rename(&self, role: FileRole, from: &Path, to: &Path) -> io::Result<()> {
        let _ = role;
        std::fs::rename(from, to)
    }
    /// fsync of a directory, after a file in it was created or renamed.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl Fs for RealFs {}

/// Opens one of the log's own files (entries, tree, index, checkpoints, the
/// lock, the sidecar's, a mirror's): never through a symbolic link, and only
/// if it is a regular file. Whoever can write the log's directory could
/// otherwise point `tree` at any file the writer may write and have it
/// overwritten with hashes, or link a second directory's files to a log
/// another writer holds (docs/THREAT-MODEL.md). `O_NONBLOCK` keeps a FIFO
/// planted under a log file's name from hanging the open; it changes nothing
/// for regular files.
pub fn open_own(opts: &mut std::fs::OpenOptions, path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a symbolic link (a log's files must be regular files in its directory)",
                )
            } else {
                e
            }
        })?;
    if !f.metadata()?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a regular file",
        ));
    }
    Ok(f)
}

/// Creates a temporary file afresh with `mode`, first removing whatever the
/// name held: a file or link planted under a temporary name is never written
/// through (a secret written into a planted file would be the planter's to
/// read). Racing to plant one again makes this fail, never leak.
pub fn create_temp(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Refuses a directory that is not private to this user: a symbolic link,
/// not a directory, owned by someone else, or open to group or others. The
/// sealed-field sidecar keeps secrets there; a directory planted by someone
/// who can write the log's directory would be theirs to read.
pub fn check_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path)?;
    let why = if m.file_type().is_symlink() {
        Some("a symbolic link".to_owned())
    } else if !m.is_dir() {
        Some("not a directory".to_owned())
    } else if m.uid() != rustix::process::geteuid().as_raw() {
        Some(format!(
            "owned by user {}, not by this process's user",
            m.uid()
        ))
    } else if m.mode() & 0o077 != 0 {
        Some(format!(
            "mode {:o} lets group or others in (chmod 700)",
            m.mode() & 0o777
        ))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(w) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("is not a private directory: {w}"),
        )),
    }
}

/// Modes a log's directory (and a mirror's) and its files are made with,
/// whatever the umask: only the owner reads the entries (others would
/// bypass `stele.access`) or writes `stele.json` (a writable one lets its
/// sealing rules be dropped, and personal data then goes in the clear).
/// An operator who wants a group to read loosens them by hand.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// See [`PRIVATE_DIR_MODE`].
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Gives a directory just made [`PRIVATE_DIR_MODE`] (`mkdir` applies the
/// umask, which may be 000).
pub fn make_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))
}

/// Refuses `path` (a log's directory, its `stele.json`) when group or
/// others may write it: whoever can, can drop the sealing rules from
/// `stele.json` or swap the log's files (docs/THREAT-MODEL.md).
pub fn check_not_shared_writable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mode = std::fs::metadata(path)?.mode();
    if mode & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "mode {:o} lets group or others write it, and so edit stele.json (drop the sealing rules) or the log's files; refused (chmod go-w {})",
                mode & 0o777,
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Refuses a writer run as root on a log directory another user owns:
/// the files root would make there (the check mark, `timestamps`, the
/// sidecar's, each file replaced through a temporary one) would be root's,
/// mode 0600, and the log's own user could then no longer read or replace
/// them: every later append, anchor or export as that user would fail.
pub fn check_writer_owner(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(dir)?.uid();
    if rustix::process::geteuid().is_root() && owner != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "is owned by user {owner}, and this writer runs as root: files it made there would be root's and user {owner} could no longer use them; refused (run it as that user, e.g. sudo -u '#{owner}' stele …)"
            ),
        ));
    }
    Ok(())
}

/// [`open_own`] for reading.
pub fn open_own_read(path: &Path) -> io::Result<File> {
    open_own(std::fs::OpenOptions::new().read(true), path)
}

/// Reads one of the log's own files whole, never through a link
/// ([`open_own`]): a read-only server must not serve a file the log's
/// directory links to.
pub fn read_own(path: &Path) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let _ = io::Read::read_to_end(&mut open_own_read(path)?, &mut out)?;
    Ok(out)
}

/// Makes `d` (mode 0700, its parent fsynced) when it is missing, then
/// refuses it unless it is private to this user ([`check_private_dir`]).
pub fn ensure_private_dir(fs: &dyn Fs, d: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::symlink_metadata(d).is_err() {
        std::fs::create_dir_all(d)?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
        fs.sync_dir(d.parent().unwrap_or(Path::new(".")))?;
    }
    check_private_dir(d)
}

/// [`open_own`] for reading and writing, created 0600 when missing (a
/// sealed sidecar's records file).
pub fn open_private_rw(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    open_own(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
        path,
    )
}
