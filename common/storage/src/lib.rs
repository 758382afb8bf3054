//! Free space on the filesystems the embedded backends write to.
//!
//! A full disk is the fault that loses data, so Sluice keeps a floor of free space
//! (`storage.min_free_bytes`): below it ingest turns new records away with 507 before the disk is
//! actually full, which leaves room for what must still be written to drain the queue — the
//! store's commits and merges, the queue's checkpoints, dead letters. The floor is checked on
//! every filesystem that holds an embedded backend (the queue's and the index's directories).

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `[storage]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Free bytes kept on every filesystem an embedded backend writes to: below this, ingest
    /// answers 507 and accepts nothing. 0 turns the floor off (a full disk still answers 507).
    pub min_free_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            min_free_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Whether an I/O error means the filesystem has no room (or the user's quota is spent).
pub fn is_out_of_space(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Bytes an unprivileged writer may still use on the filesystem holding `path` (or, while `path`
/// does not exist yet, its nearest existing ancestor).
pub fn available_bytes(path: &Path) -> io::Result<u64> {
    let mut probe = path;
    loop {
        match rustix::fs::statvfs(probe) {
            Ok(stats) => return Ok(stats.f_bavail.saturating_mul(stats.f_frsize)),
            Err(rustix::io::Errno::NOENT) => match probe.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => probe = parent,
                _ if probe != Path::new(".") => probe = Path::new("."),
                _ => return Err(io::ErrorKind::NotFound.into()),
            },
            Err(e) => return Err(e.into()),
        }
    }
}

/// Makes the entries of `dir` durable: files created, renamed or deleted in it survive a power
/// cut only once this returns (a file's own fsync does not cover its name).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// `create_dir_all`, durably: each directory it creates is synced into its parent, so that what
/// is later synced inside it is not lost with a directory entry that never reached the disk. The
/// nearest directory that already existed is synced into its parent too: it may have been made
/// a moment ago by someone else (`mkdir` before `sluice serve`) and not be on the disk yet.
pub fn create_dir_all_durably(dir: &Path) -> io::Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    let existing = dir.ancestors().nth(missing.len()).unwrap_or(Path::new("."));
    if let Some(parent) = parent_of(existing) {
        // Best effort: the directory above may be on another, read-only filesystem.
        let _ = sync_dir(parent);
    }
    for created in missing.into_iter().rev() {
        match std::fs::create_dir(created) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        sync_dir(parent_of(created).unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

fn parent_of(path: &Path) -> Option<&Path> {
    match path.parent() {
        Some(parent) if parent.as_os_str().is_empty() => Some(Path::new(".")),
        other => other,
    }
}

/// Writes `bytes` to `path` whole or not at all, and durably: a temporary file beside it,
/// synced, renamed over `path`, and the directory synced. `mode` sets the file's permissions.
pub fn write_durably(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    use std::io::Write;
    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if let Some(mode) = mode {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    }
    let mut file = options.open(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)?;
    sync_dir(parent_of(path).unwrap_or(Path::new(".")))
}

/// Puts `from`'s bytes at `to` for a backup: a hard link where both are on one filesystem (for
/// a file nobody writes again, instant and free), a copy where they are not.
pub fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => std::fs::copy(from, to).map(drop),
        Err(e) => Err(e),
    }
}

/// A filesystem below the floor: which path, how much is free, and the floor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{path} has {free_bytes} bytes free, below the floor of {min_free_bytes} \
     (storage.min_free_bytes) kept for the store's commits and merges"
)]
pub struct LowDiskSpace {
    pub path: String,
    pub free_bytes: u64,
    pub min_free_bytes: u64,
}

/// The floor over the directories this process writes to.
#[derive(Debug, Clone, Default)]
pub struct DiskGuard {
    paths: Vec<PathBuf>,
    min_free_bytes: u64,
}

impl DiskGuard {
    /// Guards `paths` (directories of embedded backends; remote backends have none) with the
    /// configured floor.
    pub fn new(paths: Vec<PathBuf>, config: &StorageConfig) -> DiskGuard {
        DiskGuard {
            paths,
            min_free_bytes: config.min_free_bytes,
        }
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Refuses when writing `incoming` more bytes would take any guarded filesystem below the
    /// floor. A filesystem that cannot be asked is not a reason to refuse: the write that follows
    /// reports what is really wrong.
    pub fn check(&self, incoming: u64) -> Result<(), LowDiskSpace> {
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        for path in &self.paths {
            let Ok(free_bytes) = available_bytes(path) else {
                continue;
            };
            if free_bytes < self.min_free_bytes.saturating_add(incoming) {
                return Err(LowDiskSpace {
                    path: path.display().to_string(),
                    free_bytes,
                    min_free_bytes: self.min_free_bytes,
                });
            }
        }
        Ok(())
    }
}

#[cfg(feature = "testing")]
pub mod small_disk;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_measured_on_its_nearest_ancestor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = available_bytes(dir.path()).expect("statvfs");
        assert!(free > 0);
        let later = available_bytes(&dir.path().join("not/yet/there")).expect("ancestor");
        // Same filesystem; the figure moves only with other writers on the machine.
        assert!(later.abs_diff(free) < 1 << 30, "{later} vs {free}");
    }

    #[test]
    fn the_floor_refuses_with_the_path_and_the_figures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = available_bytes(dir.path()).expect("statvfs");
        let guard = DiskGuard::new(
            vec![dir.path().to_owned()],
            &StorageConfig {
                min_free_bytes: free.saturating_add(1 << 40),
            },
        );
        let low = guard.check(0).expect_err("below the floor");
        assert_eq!(low.path, dir.path().display().to_string());
        assert!(low.to_string().contains("storage.min_free_bytes"), "{low}");
        let off = DiskGuard::new(
            vec![dir.path().to_owned()],
            &StorageConfig { min_free_bytes: 0 },
        );
        off.check(u64::MAX).expect("no floor");
    }

    #[test]
    fn durable_directories_and_files_are_there_afterwards() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = dir.path().join("a/b/c");
        create_dir_all_durably(&deep).expect("creates");
        create_dir_all_durably(&deep).expect("again, a no-op");
        assert!(deep.is_dir());
        let file = deep.join("marker");
        write_durably(&file, b"one", Some(0o600)).expect("writes");
        write_durably(&file, b"two", None).expect("replaces");
        assert_eq!(std::fs::read(&file).expect("reads"), b"two");
        assert!(!deep.join("marker.partial").exists());
    }

    #[test]
    fn enospc_and_quota_are_out_of_space() {
        assert!(is_out_of_space(&io::Error::from_raw_os_error(28)));
        assert!(is_out_of_space(&io::Error::from_raw_os_error(122)));
        assert!(!is_out_of_space(&io::Error::from_raw_os_error(5)));
    }
}
