//! A small real ext4 filesystem for disk-full tests: an image file, formatted and mounted on a
//! loop device for the test, unmounted when it ends. A ballast file takes the space a test wants
//! gone and is deleted to give it back, as an operator freeing a disk does.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct LoopDisk {
    /// Holds the image file; removed after the unmount.
    _image: tempfile::TempDir,
    mount: tempfile::TempDir,
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().expect(program);
    assert!(
        output.status.success(),
        "{program} {args:?} failed (root and a loop device are needed; CI has both): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl LoopDisk {
    /// An ext4 volume of `megabytes` MB.
    pub fn mount(megabytes: u64) -> LoopDisk {
        let image = tempfile::tempdir().expect("tempdir");
        let mount = tempfile::tempdir().expect("tempdir");
        let file = image.path().join("disk.img");
        let size = format!("{megabytes}M");
        run("truncate", &["-s", &size, &file.to_string_lossy()]);
        // No blocks kept back for root: the test, as root, would write into them.
        run("mkfs.ext4", &["-q", "-m", "0", &file.to_string_lossy()]);
        run(
            "mount",
            &[
                "-o",
                "loop",
                &file.to_string_lossy(),
                &mount.path().to_string_lossy(),
            ],
        );
        LoopDisk {
            _image: image,
            mount,
        }
    }

    pub fn path(&self) -> &Path {
        self.mount.path()
    }

    pub fn free_bytes(&self) -> u64 {
        sluice_storage::available_bytes(self.path()).expect("statvfs")
    }

    /// Takes all but `leave` bytes of the free space with a ballast file; its path.
    pub fn fill_leaving(&self, leave: u64) -> PathBuf {
        let ballast = self
            .path()
            .join(format!("ballast-{}", sluice_event::now_ms()));
        let take = self.free_bytes().saturating_sub(leave);
        run(
            "fallocate",
            &["-l", &take.to_string(), &ballast.to_string_lossy()],
        );
        ballast
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.mount.path()).status();
    }
}
