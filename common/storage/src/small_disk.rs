//! A small real filesystem for tests of a full disk: a tmpfs of a given size, mounted for the
//! test and unmounted when it ends. Mounting needs root, which CI runs as.

use std::path::Path;
use std::process::Command;

pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as `mount` spells it: `3m`).
    pub fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("tempdir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            mounted.success(),
            "mounting a tmpfs needs root (CI runs as root); this test cannot run without it"
        );
        SmallDisk { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
