//! A filesystem that knows what was made durable, for power-cut and failing-disk tests.
//!
//! SIGKILL leaves the page cache alone, so a killed process never loses a write, synced or
//! not; only a power cut does. No device-mapper is available to tests here, so this is a FUSE
//! filesystem, served from the test process, that keeps two versions of everything: what was
//! written, and what was made durable (`fsync`/`fdatasync` of a file, `fsync` of a directory for
//! its entries). [`CrashDisk::power_cut`] unmounts it (dropping the kernel's caches, as a reboot
//! does) and leaves each file and directory as a disk may leave it after losing power:
//! - a file holds its durable content, or all that was written to it, or its durable content
//!   followed by part of what was appended since (a torn write);
//! - a directory holds its durable entries or its current ones (so a file never synced into
//!   its directory may be gone, and a rename not synced may be undone).
//!
//! Each is chosen at random from a seed the test prints, so a failure can be replayed. This is
//! POSIX's promise and no more: a real ext4 keeps more (its journal orders metadata), so what
//! survives here survives there. [`CrashDisk::fail_writes`] makes every write, sync and
//! directory change fail with EIO, as a dying disk does, while reads go on.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};

const ROOT: u64 = 1;
const BLOCK: u64 = 4096;
/// What the filesystem says it can hold (statfs), far more than any test writes.
const CAPACITY: u64 = 64 << 30;

enum Kind {
    File {
        data: Vec<u8>,
        durable: Vec<u8>,
    },
    Dir {
        entries: BTreeMap<OsString, u64>,
        durable: BTreeMap<OsString, u64>,
    },
}

struct Node {
    kind: Kind,
    mode: u16,
    mtime: SystemTime,
}

struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    failing: bool,
}

impl State {
    fn new() -> State {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, dir_node(0o755));
        State {
            nodes,
            next_ino: ROOT + 1,
            failing: false,
        }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let node = self.nodes.get(&ino)?;
        let (kind, size, nlink) = match &node.kind {
            Kind::File { data, .. } => (FileType::RegularFile, data.len() as u64, 1),
            Kind::Dir { .. } => (FileType::Directory, BLOCK, 2),
        };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: node.mtime,
            kind,
            perm: node.mode,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: BLOCK as u32,
            flags: 0,
        })
    }

    fn entries(&mut self, ino: u64) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.kind) {
            Some(Kind::Dir { entries, .. }) => Ok(entries),
            Some(Kind::File { .. }) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn file(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        match self.nodes.get_mut(&ino) {
            Some(
                node @ Node {
                    kind: Kind::File { .. },
                    ..
                },
            ) => Ok(node),
            Some(_) => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn add(&mut self, parent: u64, name: &OsStr, node: Node) -> Result<u64, Errno> {
        if self.failing {
            return Err(Errno::EIO);
        }
        let ino = self.next_ino;
        let entries = self.entries(parent)?;
        if entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        entries.insert(name.to_owned(), ino);
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        Ok(ino)
    }

    /// What a power cut leaves, chosen by `random`; then only what is reachable stays.
    fn cut(&mut self, random: &mut XorShift) {
        for node in self.nodes.values_mut() {
            match &mut node.kind {
                Kind::File { data, durable } => {
                    let kept = match random.below(3) {
                        0 => durable.clone(),
                        1 => data.clone(),
                        _ if data.starts_with(durable) && data.len() > durable.len() => {
                            let appended = data.len() - durable.len();
                            let torn = durable.len() + random.below(appended as u64) as usize;
                            data[..torn].to_vec()
                        }
                        _ => durable.clone(),
                    };
                    *data = kept.clone();
                    *durable = kept;
                }
                Kind::Dir { entries, durable } => {
                    if random.below(2) == 0 {
                        *entries = durable.clone();
                    } else {
                        *durable = entries.clone();
                    }
                }
            }
        }
        let mut reachable = vec![ROOT];
        let mut seen = std::collections::HashSet::from([ROOT]);
        while let Some(ino) = reachable.pop() {
            if let Some(Node {
                kind: Kind::Dir { entries, .. },
                ..
            }) = self.nodes.get(&ino)
            {
                for child in entries.values() {
                    if seen.insert(*child) {
                        reachable.push(*child);
                    }
                }
            }
        }
        self.nodes.retain(|ino, _| seen.contains(ino));
        self.failing = false;
    }
}

fn dir_node(mode: u16) -> Node {
    Node {
        kind: Kind::Dir {
            entries: BTreeMap::new(),
            durable: BTreeMap::new(),
        },
        mode,
        mtime: SystemTime::now(),
    }
}

/// Seeded and small: a test prints its seed and can be run again with it.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 { 0 } else { self.0 % n }
    }
}

/// Attributes are never cached by the kernel: sizes change under it with every write.
const TTL: Duration = Duration::ZERO;

struct CrashFs(Arc<Mutex<State>>);

impl CrashFs {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reply_entry(&self, ino: Result<u64, Errno>, reply: ReplyEntry) {
        let state = self.state();
        match ino.and_then(|ino| state.attr(ino).ok_or(Errno::ENOENT)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }
}

impl Filesystem for CrashFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self
            .state()
            .entries(parent.0)
            .and_then(|entries| entries.get(name).copied().ok_or(Errno::ENOENT));
        self.reply_entry(found, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.state().attr(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = self.state();
        let failing = state.failing;
        if let Some(size) = size {
            match state.file(ino.0) {
                Ok(_) if failing => return reply.error(Errno::EIO),
                Ok(Node {
                    kind: Kind::File { data, .. },
                    mtime,
                    ..
                }) => {
                    data.resize(size as usize, 0);
                    *mtime = SystemTime::now();
                }
                Ok(_) => {}
                Err(e) => return reply.error(e),
            }
        }
        if let (Some(mode), Some(node)) = (mode, state.nodes.get_mut(&ino.0)) {
            node.mode = (mode & 0o7777) as u16;
        }
        match state.attr(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let added = self
            .state()
            .add(parent.0, name, dir_node((mode & 0o7777) as u16));
        self.reply_entry(added, reply);
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        let node = Node {
            kind: Kind::File {
                data: Vec::new(),
                durable: Vec::new(),
            },
            mode: (mode & 0o7777) as u16,
            mtime: SystemTime::now(),
        };
        match state
            .add(parent.0, name, node)
            .and_then(|ino| state.attr(ino).ok_or(Errno::ENOENT))
        {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        if state.failing {
            return reply.error(Errno::EIO);
        }
        match state.entries(parent.0).map(|entries| entries.remove(name)) {
            Ok(Some(_)) => reply.ok(),
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        if state.failing {
            return reply.error(Errno::EIO);
        }
        let Some(ino) = state
            .entries(parent.0)
            .ok()
            .and_then(|e| e.get(name).copied())
        else {
            return reply.error(Errno::ENOENT);
        };
        match state.entries(ino) {
            Ok(entries) if entries.is_empty() => {}
            Ok(_) => return reply.error(Errno::ENOTEMPTY),
            Err(e) => return reply.error(e),
        }
        if let Ok(entries) = state.entries(parent.0) {
            entries.remove(name);
        }
        reply.ok();
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        if state.failing {
            return reply.error(Errno::EIO);
        }
        let moved = match state.entries(parent.0).map(|entries| entries.remove(name)) {
            Ok(Some(ino)) => ino,
            Ok(None) => return reply.error(Errno::ENOENT),
            Err(e) => return reply.error(e),
        };
        match state.entries(newparent.0) {
            Ok(entries) => {
                entries.insert(newname.to_owned(), moved);
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.state().file(ino.0) {
            Ok(Node {
                kind: Kind::File { data, .. },
                ..
            }) => {
                let start = (offset as usize).min(data.len());
                let end = (start + size as usize).min(data.len());
                reply.data(&data[start..end]);
            }
            Ok(_) => reply.error(Errno::EISDIR),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        bytes: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = self.state();
        if state.failing {
            return reply.error(Errno::EIO);
        }
        match state.file(ino.0) {
            Ok(Node {
                kind: Kind::File { data, .. },
                mtime,
                ..
            }) => {
                let start = offset as usize;
                if data.len() < start + bytes.len() {
                    data.resize(start + bytes.len(), 0);
                }
                data[start..start + bytes.len()].copy_from_slice(bytes);
                *mtime = SystemTime::now();
                reply.written(bytes.len() as u32);
            }
            Ok(_) => reply.error(Errno::EISDIR),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        if state.failing {
            return reply.error(Errno::EIO);
        }
        match state.nodes.get_mut(&ino.0).map(|n| &mut n.kind) {
            Some(Kind::File { data, durable }) => {
                durable.clone_from(data);
                reply.ok();
            }
            Some(Kind::Dir { entries, durable }) => {
                durable.clone_from(entries);
                reply.ok();
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut state = self.state();
        let entries: Vec<(u64, OsString)> = match state.entries(ino.0) {
            Ok(entries) => entries
                .iter()
                .map(|(name, ino)| (*ino, name.clone()))
                .collect(),
            Err(e) => return reply.error(e),
        };
        let listing = [(ino.0, OsString::from(".")), (ROOT, OsString::from(".."))]
            .into_iter()
            .chain(entries);
        for (index, (child, name)) in listing.enumerate().skip(offset as usize) {
            let kind = match state.nodes.get(&child).map(|n| &n.kind) {
                Some(Kind::Dir { .. }) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            if reply.add(INodeNo(child), index as u64 + 1, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.fsync(req, ino, fh, datasync, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let used: u64 = self
            .state()
            .nodes
            .values()
            .map(|n| match &n.kind {
                Kind::File { data, .. } => data.len() as u64,
                Kind::Dir { .. } => BLOCK,
            })
            .sum();
        let blocks = CAPACITY / BLOCK;
        let free = blocks.saturating_sub(used.div_ceil(BLOCK));
        reply.statfs(
            blocks,
            free,
            free,
            1 << 20,
            1 << 20,
            BLOCK as u32,
            255,
            BLOCK as u32,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}

/// A [`CrashFs`] mounted on a directory of its own.
pub struct CrashDisk {
    dir: tempfile::TempDir,
    state: Arc<Mutex<State>>,
    session: Option<BackgroundSession>,
}

impl CrashDisk {
    /// Mounts an empty filesystem (FUSE, as root, as CI runs).
    pub fn mount() -> CrashDisk {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = Arc::new(Mutex::new(State::new()));
        let session = Some(spawn(dir.path(), &state));
        CrashDisk {
            dir,
            state,
            session,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every write, sync and directory change fails with EIO while `on`.
    pub fn fail_writes(&self, on: bool) {
        self.state.lock().expect("state").failing = on;
    }

    /// Cuts the power: nothing may have the filesystem open (kill what uses it first). It is
    /// unmounted, left as `seed` chooses among what a disk may keep, and mounted again.
    pub fn power_cut(&mut self, seed: u64) {
        if let Some(session) = self.session.take() {
            // The serving thread ends with the connection aborted by the unmount; what matters
            // is that the mount is gone.
            let ended = session.umount_and_join();
            assert!(
                !is_mounted(self.dir.path()),
                "unmount before the power comes back (is something still using it?): {ended:?}"
            );
        }
        self.state
            .lock()
            .expect("state")
            .cut(&mut XorShift(seed | 1));
        self.session = Some(spawn(self.dir.path(), &self.state));
    }
}

fn spawn(path: &Path, state: &Arc<Mutex<State>>) -> BackgroundSession {
    let mut config = Config::default();
    config.mount_options = vec![fuser::MountOption::FSName("sluice-crashfs".into())];
    let session = fuser::spawn_mount(CrashFs(Arc::clone(state)), path, &config)
        .expect("mounting a FUSE filesystem needs root and /dev/fuse (CI has both)");
    wait_until_mounted(path);
    session
}

fn is_mounted(path: &Path) -> bool {
    let wanted: PathBuf = path.to_owned();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some(&*wanted.to_string_lossy()))
}

/// The mount is served from another thread; wait until the kernel answers through it.
fn wait_until_mounted(path: &Path) {
    for _ in 0..200 {
        if is_mounted(path) && std::fs::read_dir(path).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} did not mount", path.display());
}

impl Drop for CrashDisk {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
    }
}
