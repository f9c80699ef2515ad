//! Small helpers shared by the host modules.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `name` in `dir` atomically: a temporary file beside it, fsync, rename, so a reader sees
/// the old contents or the new, never part. The one atomic writer: node files (`caps::fs`) and host
/// files ([`write_atomic`]) both go through it.
pub fn write_atomic_in(
    dir: &cap_std::fs::Dir,
    name: impl AsRef<Path>,
    contents: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    let name = name.as_ref();
    let tmp = format!(".{}.wasmadm-{}.tmp", name.display(), std::process::id());
    let result = (|| {
        let mut opts = cap_std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        let mut file = dir.open_with(&tmp, &opts)?;
        file.set_permissions(cap_std::fs::Permissions::from_std(
            std::fs::Permissions::from_mode(mode),
        ))?;
        file.write_all(contents)?;
        file.sync_all()?;
        dir.rename(&tmp, dir, name)
    })();
    if result.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    result
}

/// Writes a host file atomically (see [`write_atomic_in`]), creating its directory.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    std::fs::create_dir_all(dir)?;
    let dir = cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority())?;
    write_atomic_in(&dir, name, contents, mode)
}
