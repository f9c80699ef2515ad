//! Node paths and their resolution under `--root`, chroot-style.
//!
//! A plugin names node paths (`/etc/kubernetes/pki/ca.crt`). The host resolves one component at a
//! time from the root directory, following symbolic links itself: an absolute target restarts at
//! the node root (never at the host's `/`), `..` never climbs above it. The result is the
//! canonical node path, which is what grants are checked against, so neither `..` nor a symlink
//! can reach a file outside a grant. Every file operation then goes through a `cap_std::fs::Dir`
//! for the root, which refuses by construction anything outside it.

use crate::values::NodePath;
use cap_std::fs::Dir;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed in one resolution before giving up (Linux's limit).
const MAX_SYMLINKS: usize = 40;

/// Resolves `text` (absolute, may contain `..`) to its canonical node path under `root`,
/// following every symlink when `follow_last` is true, all but the last otherwise. Components
/// that do not exist are kept as they are (a file about to be created resolves to its own name).
pub fn resolve(root: &Dir, text: &str, follow_last: bool) -> io::Result<NodePath> {
    if !text.starts_with('/') || text.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{text:?} is not an absolute path"),
        ));
    }
    // Work list of components still to walk, in reverse order so `pop` gives the next one.
    let mut pending: Vec<String> = components(Path::new(text));
    pending.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut followed = 0;
    let mut missing = false;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        resolved.push(part);
        let is_last = pending.is_empty();
        if missing || (is_last && !follow_last) {
            continue;
        }
        let here = resolved.iter().map(String::as_str).collect::<Vec<_>>();
        let rel = NodePath::from_parts(&here);
        match root.symlink_metadata(rel.relative()) {
            Ok(meta) if meta.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links in {text}"
                    )));
                }
                let target = root.read_link_contents(rel.relative())?;
                resolved.pop();
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing = true,
            Err(e) => return Err(e),
        }
    }
    let parts: Vec<&str> = resolved.iter().map(String::as_str).collect();
    Ok(NodePath::from_parts(&parts))
}

fn components(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Opens the directory `dir` (canonical, as [`resolve`] returned it) one component at a time from
/// the root, following no symbolic link and creating missing components when `create` is true.
/// A directory swapped for a link after the grant check makes this fail instead of leading the
/// operation elsewhere, so a write stays inside its grant even under a race.
pub fn open_dir_beneath(root: &Dir, dir: &NodePath, create: Option<u32>) -> io::Result<Dir> {
    use cap_fs_ext::DirExt as _;
    let mut here = root.try_clone()?;
    for part in dir.as_str().split('/').filter(|p| !p.is_empty()) {
        if let Some(mode) = create {
            match here.create_dir(part) {
                Ok(()) => {
                    // On the new directory itself, never through a path that could be swapped.
                    let mut opts = cap_std::fs::OpenOptions::new();
                    use cap_std::fs::OpenOptionsExt as _;
                    opts.read(true).custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW);
                    use std::os::unix::fs::PermissionsExt as _;
                    here.open_with(part, &opts)?
                        .set_permissions(cap_std::fs::Permissions::from_std(
                            std::fs::Permissions::from_mode(mode),
                        ))?;
                }
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                Err(_) => {}
            }
        }
        here = here.open_dir_nofollow(part)?;
    }
    Ok(here)
}

/// Opens a node file for reading, refusing anything but a regular file. The open is
/// non-blocking and stays so: opening a FIFO never waits for a writer, and a file that blocks
/// readers (`/proc/kmsg`) answers "would block" instead of holding the host past the phase's
/// deadline.
pub fn open_regular(root: &Dir, node: &NodePath) -> io::Result<cap_std::fs::File> {
    use cap_std::fs::OpenOptionsExt as _;
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    let file = root.open_with(node.relative(), &opts)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(io::Error::new(
            if kind.is_dir() {
                io::ErrorKind::IsADirectory
            } else {
                io::ErrorKind::InvalidInput
            },
            format!("{node} is {what}; only regular files are read"),
        ));
    }
    Ok(file)
}

/// True for a node path that is this wasmadm process as `/proc` shows it (`/proc/self`,
/// `/proc/thread-self`, `/proc/<our pid>` or one of our threads' ids, and anything below):
/// its environment, memory and file descriptors are the host's, never a plugin's, whatever
/// the grants say.
pub fn is_own_process(node: &NodePath) -> bool {
    let mut parts = node.as_str().split('/').skip(1);
    if parts.next() != Some("proc") {
        return false;
    }
    match parts.next() {
        Some("self" | "thread-self") => true,
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            id == std::process::id().to_string() || Path::new("/proc/self/task").join(id).exists()
        }
        _ => false,
    }
}

/// Files of wasmadm's own process that a read grant may name explicitly, and only exactly:
/// `/proc/self/status` (its user id and CPU affinity, for preflight). No broader grant covers
/// them, and nothing else of the process is readable.
pub const OWN_PROCESS_FILES: [&str; 1] = ["/proc/self/status"];

/// True when `lexical` is one of [`OWN_PROCESS_FILES`] and `resolved` is that same file (under
/// the real `/proc`, `/proc/self` resolves to `/proc/<pid>`).
pub fn is_own_process_file(lexical: &NodePath, resolved: &NodePath) -> bool {
    OWN_PROCESS_FILES.contains(&lexical.as_str()) && {
        let name = lexical.file_name();
        resolved == lexical || resolved.as_str() == format!("/proc/{}/{name}", std::process::id())
    }
}

/// The host path of a node path under a root directory on the host.
pub fn host_path(root: &Path, node: &NodePath) -> PathBuf {
    root.join(node.relative())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    fn root() -> (tempfile::TempDir, Dir) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).expect("open");
        (tmp, dir)
    }

    #[test]
    fn dotdot_cannot_climb_above_root() {
        let (_t, dir) = root();
        let p = resolve(&dir, "/etc/../../../../shadow", true).expect("resolve");
        assert_eq!(p.as_str(), "/shadow");
    }

    #[test]
    fn absolute_symlink_is_rerooted() {
        let (t, dir) = root();
        std::fs::create_dir_all(t.path().join("etc/kubernetes")).expect("mkdir");
        std::os::unix::fs::symlink("/etc/shadow", t.path().join("etc/kubernetes/link")).expect("ln");
        let p = resolve(&dir, "/etc/kubernetes/link", true).expect("resolve");
        assert_eq!(p.as_str(), "/etc/shadow");
        let p = resolve(&dir, "/etc/kubernetes/link", false).expect("resolve");
        assert_eq!(p.as_str(), "/etc/kubernetes/link");
    }

    #[test]
    fn relative_symlink_chain_and_loops() {
        let (t, dir) = root();
        std::fs::create_dir_all(t.path().join("usr/bin")).expect("mkdir");
        std::os::unix::fs::symlink("usr/bin", t.path().join("bin")).expect("ln");
        assert_eq!(resolve(&dir, "/bin/ip", true).expect("r").as_str(), "/usr/bin/ip");
        std::os::unix::fs::symlink("loop", t.path().join("loop")).expect("ln");
        assert!(resolve(&dir, "/loop", true).is_err());
    }

    #[test]
    fn prefix_matching_respects_component_boundaries() {
        let grant = NodePath::parse("/etc/kubernetes").expect("p");
        assert!(
            NodePath::parse("/etc/kubernetes/pki")
                .expect("p")
                .starts_with(&grant)
        );
        assert!(NodePath::parse("/etc/kubernetes").expect("p").starts_with(&grant));
        assert!(
            !NodePath::parse("/etc/kubernetes-evil")
                .expect("p")
                .starts_with(&grant)
        );
        assert!(
            NodePath::parse("/x")
                .expect("p")
                .starts_with(&NodePath::parse("/").expect("p"))
        );
    }

    #[test]
    fn own_process_paths() {
        let own = |t: &str| is_own_process(&NodePath::parse(t).expect("p"));
        assert!(own("/proc/self/environ"));
        assert!(own("/proc/thread-self"));
        assert!(own(&format!("/proc/{}/cmdline", std::process::id())));
        assert!(!own("/proc/sys/net/ipv4/ip_forward"));
        assert!(!own("/proc/1/status"));
        assert!(!own("/etc/proc/self"));
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let (t, dir) = root();
        let fifo = t.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let err = open_regular(&dir, &NodePath::parse("/fifo").expect("p")).expect_err("refused");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
