//! The `files` capability: node files under `--root`, limited to a phase's grants.
//!
//! Every call resolves its path chroot-style ([`path::resolve`]) and checks the canonical result
//! against the grants, so `..` and symlinks cannot reach outside a grant. Writes are atomic (a
//! temporary file in the target directory, fsync, rename). In dry-run, writes go to an overlay
//! that later reads in the same run see, and into the plan; the node is not touched.

use super::path;
use super::plan::{Plan, PlanEntry};
use crate::bindings::wasmadm::plugin::files::{EntryKind, ErrorCode, FileError, Metadata};
use crate::values::NodePath;
use cap_fs_ext::DirExt as _;
use cap_std::fs::{Dir, OpenOptions, Permissions};
use cap_std::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The largest file a plugin may read in one call.
pub const MAX_READ: u64 = 64 << 20;

/// The permission bits a plugin may set: setuid, setgid and sticky bits are dropped.
pub const MODE_MASK: u32 = 0o777;

/// Mode of the parent directories `write` creates (`files.write` in wit/files.wit).
const PARENT_MODE: u32 = 0o755;

/// Whether a call reads or changes the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// What a dry-run wrote, visible to later reads of the same run.
#[derive(Default)]
pub struct Overlay {
    files: BTreeMap<NodePath, (Vec<u8>, u32)>,
    dirs: BTreeMap<NodePath, u32>,
    removed: Vec<NodePath>,
}

impl Overlay {
    fn is_removed(&self, p: &NodePath) -> bool {
        self.removed.iter().any(|r| p.starts_with(r))
            && !self.files.contains_key(p)
            && !self.dirs.contains_key(p)
    }
}

/// How much a phase may still write: bytes, and files or directories created.
pub struct WriteQuota {
    bytes: AtomicU64,
    files: AtomicU64,
    limits: (u64, u64),
}

impl WriteQuota {
    pub fn new(bytes: u64, files: u64) -> Self {
        Self {
            bytes: AtomicU64::new(bytes),
            files: AtomicU64::new(files),
            limits: (bytes, files),
        }
    }

    /// Takes one file and `bytes` bytes; false once either would run out.
    fn take(&self, bytes: u64) -> bool {
        let take = |left: &AtomicU64, n: u64| {
            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(n))
                .is_ok()
        };
        if !take(&self.files, 1) {
            return false;
        }
        if !take(&self.bytes, bytes) {
            self.files.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// The files capability of one phase (built by the runner).
pub struct FsCap {
    pub(crate) phase: String,
    pub(crate) root: Arc<Dir>,
    /// The grant prefixes.
    pub(crate) read: Vec<NodePath>,
    pub(crate) write: Vec<NodePath>,
    /// The run's shared overlay when the user asked for `--dry-run`.
    pub(crate) dry_run: Option<Arc<Mutex<Overlay>>>,
    pub(crate) plan: Plan,
    pub(crate) quota: WriteQuota,
}

impl FsCap {
    /// Counts a write of `bytes` (or a new directory) against the phase's quota.
    fn charge(&self, text: &str, bytes: u64) -> Result<(), FileError> {
        if self.quota.take(bytes) {
            return Ok(());
        }
        let (max_bytes, max_files) = self.quota.limits;
        Err(self.error(
            ErrorCode::Denied,
            text,
            format!(
                "files: phase {:?} exceeded its write quota ({max_bytes} bytes, {max_files} files \
                 and directories); raise limits.writeBytes or limits.writeFiles in the pipeline file \
                 if the phase needs more",
                self.phase
            ),
        ))
    }

    fn error(&self, code: ErrorCode, path: &str, message: impl Into<String>) -> FileError {
        FileError {
            code,
            path: path.to_string(),
            message: message.into(),
        }
    }

    fn io_error(&self, path: &str, e: io::Error) -> FileError {
        let code = match e.kind() {
            io::ErrorKind::NotFound => ErrorCode::NotFound,
            io::ErrorKind::AlreadyExists => ErrorCode::AlreadyExists,
            io::ErrorKind::NotADirectory => ErrorCode::NotADirectory,
            io::ErrorKind::IsADirectory => ErrorCode::IsADirectory,
            _ => ErrorCode::Io,
        };
        let message = match code {
            ErrorCode::NotFound => format!("{path}: no such file or directory"),
            _ => format!("{path}: {e}"),
        };
        self.error(code, path, message)
    }

    /// Resolves `text` and checks the grant for `access`; returns the canonical node path.
    pub fn authorize(&self, text: &str, access: Access, follow_last: bool) -> Result<NodePath, FileError> {
        if !text.starts_with('/') || text.contains('\0') {
            return Err(self.error(
                ErrorCode::InvalidPath,
                text,
                format!("{text:?} is not an absolute node path (e.g. /etc/kubernetes/pki/ca.crt)"),
            ));
        }
        // The path as written (with `..` applied lexically) must be granted before anything on
        // disk is looked at, so a phase cannot probe files outside its grants; then the path
        // with every symlink resolved must be granted too.
        let lexical = crate::values::node_path::normalize(text);
        let resolved = if self.granted(&lexical, access) {
            path::resolve(&self.root, text, follow_last).map_err(|e| self.io_error(text, e))?
        } else {
            lexical.clone()
        };
        if path::is_own_process(&lexical) || path::is_own_process(&resolved) {
            let named = access == Access::Read && self.read.contains(&lexical);
            if named && path::is_own_process_file(&lexical, &resolved) {
                return Ok(resolved);
            }
            return Err(self.error(
                ErrorCode::Denied,
                text,
                format!(
                    "files: {text} is wasmadm's own process (/proc/self, /proc/thread-self or \
                     wasmadm's pid), which no grant covers; only {} can be granted, by naming it \
                     exactly under grants.files.read",
                    path::OWN_PROCESS_FILES.join(", ")
                ),
            ));
        }
        if self.granted(&resolved, access) {
            return Ok(resolved);
        }
        let verb = match access {
            Access::Read => "read",
            Access::Write => "write",
        };
        let via = if resolved.as_str() != text.trim_end_matches('/') {
            format!(" (resolves to {resolved})")
        } else {
            String::new()
        };
        let grants = match access {
            Access::Read => &self.read,
            Access::Write => &self.write,
        };
        let list = if grants.is_empty() {
            "none".to_string()
        } else {
            grants.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", ")
        };
        Err(self.error(
            ErrorCode::Denied,
            text,
            format!(
                "files: phase {:?} has no {verb} grant for {text}{via} (its {verb} grants: {list}); \
                 add it under grants.files.{verb} in the pipeline file if the phase should have it",
                self.phase
            ),
        ))
    }

    fn granted(&self, p: &NodePath, access: Access) -> bool {
        match access {
            Access::Read => self.read.iter().chain(&self.write).any(|g| p.starts_with(g)),
            Access::Write => self.write.iter().any(|g| p.starts_with(g)),
        }
    }

    /// Records a dry-run effect on `p` in the plan; `entry` gets the phase and the path.
    fn planned(&self, p: &NodePath, entry: impl FnOnce(String, String) -> PlanEntry) {
        self.plan.record(entry(self.phase.clone(), p.to_string()));
    }

    fn overlay(&self) -> Option<std::sync::MutexGuard<'_, Overlay>> {
        self.dry_run
            .as_ref()
            .map(|o| o.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The node's metadata of `p`, which is not found if the dry run removed it (the overlay's
    /// own files and directories are looked up first by the callers).
    fn node_metadata(&self, text: &str, p: &NodePath) -> Result<cap_std::fs::Metadata, FileError> {
        if self.overlay().is_some_and(|o| o.is_removed(p)) {
            return Err(self.io_error(text, io::ErrorKind::NotFound.into()));
        }
        self.root
            .metadata(p.relative())
            .map_err(|e| self.io_error(text, e))
    }

    pub fn read(&self, text: &str) -> Result<Vec<u8>, FileError> {
        let p = self.authorize(text, Access::Read, true)?;
        if let Some(bytes) = self
            .overlay()
            .and_then(|o| o.files.get(&p).map(|(b, _)| b.clone()))
        {
            return Ok(bytes);
        }
        let meta = self.node_metadata(text, &p)?;
        if meta.is_dir() {
            return Err(self.error(ErrorCode::IsADirectory, text, format!("{text} is a directory")));
        }
        // /proc files report size 0: the limit is enforced while reading, not from metadata.
        let file = path::open_regular(&self.root, &p).map_err(|e| self.io_error(text, e))?;
        let mut bytes = Vec::new();
        let read = io::Read::read_to_end(&mut io::Read::take(file.into_std(), MAX_READ + 1), &mut bytes)
            .map_err(|e| self.io_error(text, e))?;
        if read as u64 > MAX_READ {
            return Err(self.error(
                ErrorCode::TooLarge,
                text,
                format!("{text} is larger than the {} MiB read limit", MAX_READ >> 20),
            ));
        }
        Ok(bytes)
    }

    pub fn metadata(&self, text: &str) -> Result<Metadata, FileError> {
        let p = self.authorize(text, Access::Read, true)?;
        if let Some(overlay) = self.overlay() {
            if let Some((bytes, mode)) = overlay.files.get(&p) {
                return Ok(Metadata {
                    kind: EntryKind::File,
                    size: bytes.len() as u64,
                    mode: *mode,
                });
            }
            if let Some(mode) = overlay.dirs.get(&p) {
                return Ok(Metadata {
                    kind: EntryKind::Directory,
                    size: 0,
                    mode: *mode,
                });
            }
        }
        let meta = self.node_metadata(text, &p)?;
        let ft = meta.file_type();
        let kind = if ft.is_file() {
            EntryKind::File
        } else if ft.is_dir() {
            EntryKind::Directory
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        };
        Ok(Metadata {
            kind,
            size: meta.len(),
            mode: meta.permissions().mode() & 0o7777,
        })
    }

    pub fn list_dir(&self, text: &str) -> Result<Vec<String>, FileError> {
        let p = self.authorize(text, Access::Read, true)?;
        let mut names: Vec<String> = match self.root.read_dir(p.relative()) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.dry_run.is_some() => Vec::new(),
            Err(e) => return Err(self.io_error(text, e)),
        };
        if let Some(overlay) = self.overlay() {
            names.retain(|n| !overlay.is_removed(&p.join(n)));
            for child in overlay
                .files
                .keys()
                .map(|k| k as &NodePath)
                .chain(overlay.dirs.keys())
            {
                if child.parent().as_ref() == Some(&p) {
                    names.push(child.file_name().to_string());
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub fn write(&self, text: &str, contents: &[u8], mode: u32) -> Result<(), FileError> {
        let p = self.authorize(text, Access::Write, false)?;
        let mode = mode & MODE_MASK;
        self.charge(text, contents.len() as u64)?;
        if let Some(mut overlay) = self.overlay() {
            overlay.files.insert(p.clone(), (contents.to_vec(), mode));
            self.planned(&p, |phase, path| PlanEntry::WriteFile {
                phase,
                path,
                mode,
                contents: contents.to_vec(),
            });
            return Ok(());
        }
        let parent = p
            .parent()
            .ok_or_else(|| self.error(ErrorCode::IsADirectory, text, "cannot write /"))?;
        let dir = path::open_dir_beneath(&self.root, &parent, Some(PARENT_MODE))
            .map_err(|e| self.io_error(parent.as_str(), e))?;
        let name = p.file_name();
        if let Err(e) = crate::util::write_atomic_in(&dir, name, contents, mode) {
            return Err(self.io_error(text, e));
        }
        tracing::debug!(phase = %self.phase, path = %p, mode = format!("{mode:o}"), bytes = contents.len(), "wrote file");
        Ok(())
    }

    /// Creates a directory and its missing parents, all with `mode`, as Go's `os.MkdirAll` (and
    /// so kubeadm) does. Besides granted paths, the parents of a granted write path may be
    /// created (as `write` creates them): `create-dir /var/lib/kubelet` under a grant of
    /// `/var/lib/kubelet/config.yaml`. Directories are created without following links.
    pub fn create_dir(&self, text: &str, mode: u32) -> Result<(), FileError> {
        let p = match self.authorize(text, Access::Write, true) {
            Ok(p) => p,
            Err(denied) => {
                let lexical = crate::values::node_path::normalize(text);
                let parent_of_grant = text.starts_with('/')
                    && !path::is_own_process(&lexical)
                    && self
                        .write
                        .iter()
                        .any(|g| g != &lexical && g.starts_with(&lexical));
                if !parent_of_grant {
                    return Err(denied);
                }
                lexical
            }
        };
        let mode = mode & MODE_MASK;
        self.charge(text, 0)?;
        if let Some(mut overlay) = self.overlay() {
            if !self.root.is_dir(p.relative()) && !overlay.dirs.contains_key(&p) {
                overlay.dirs.insert(p.clone(), mode);
                self.planned(&p, |phase, path| PlanEntry::CreateDir { phase, path, mode });
            }
            return Ok(());
        }
        let Some(parent) = p.parent() else {
            return Ok(()); // the root exists
        };
        let result = (|| -> io::Result<()> {
            let dir = path::open_dir_beneath(&self.root, &parent, Some(mode))?;
            match dir.create_dir(p.file_name()) {
                Ok(()) => {}
                // An existing directory is left as it is.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return dir.open_dir_nofollow(p.file_name()).map(drop);
                }
                Err(e) => return Err(e),
            }
            // fchmod on the new directory itself, never through a path that could be swapped.
            let mut opts = OpenOptions::new();
            opts.read(true).custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW);
            dir.open_with(p.file_name(), &opts)?
                .set_permissions(Permissions::from_std(std::fs::Permissions::from_mode(mode)))
        })();
        result.map_err(|e| self.io_error(text, e))
    }

    pub fn remove(&self, text: &str, recursive: bool) -> Result<(), FileError> {
        let p = self.authorize(text, Access::Write, false)?;
        if let Some(mut overlay) = self.overlay() {
            overlay.files.retain(|k, _| !k.starts_with(&p));
            overlay.dirs.retain(|k, _| !k.starts_with(&p));
            overlay.removed.push(p.clone());
            self.planned(&p, |phase, path| PlanEntry::Remove {
                phase,
                path,
                recursive,
            });
            return Ok(());
        }
        let Some(parent) = p.parent() else {
            return Err(self.error(
                ErrorCode::Denied,
                text,
                "files: the node's root cannot be removed",
            ));
        };
        let dir = match path::open_dir_beneath(&self.root, &parent, None) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io_error(text, e)),
        };
        let name = p.file_name();
        let meta = match dir.symlink_metadata(name) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io_error(text, e)),
        };
        let result = if meta.is_dir() {
            if recursive {
                dir.remove_dir_all(name)
            } else {
                dir.remove_dir(name)
            }
        } else {
            dir.remove_file_or_symlink(name)
        };
        result.map_err(|e| self.io_error(text, e))
    }
}
