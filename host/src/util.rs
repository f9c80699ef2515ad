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

/// Plugin text made safe for a terminal: control characters (C0 and C1, including ESC, CR and
/// newlines) and bidirectional overrides become visible escapes (`\x1b`, `\r`, `\u{202e}`),
/// so a plugin can neither move the cursor, conceal, recolour or rewrite lines, nor reach the
/// terminal's clipboard; text past `max` bytes is cut, with a note of how much. Tabs are kept.
pub fn terminal_safe(text: &str, max: usize) -> String {
    escape_for_terminal(text, max, false)
}

/// [`terminal_safe`] for a phase's error message, which may span lines as kubeadm's do: newlines
/// are kept (a plugin can print any line through `log.print` anyway); every other control
/// character is escaped.
pub fn terminal_safe_lines(text: &str, max: usize) -> String {
    escape_for_terminal(text, max, true)
}

fn escape_for_terminal(text: &str, max: usize, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 16);
    let mut cut = 0;
    for (i, c) in text.char_indices() {
        if out.len() >= max {
            cut = text.len() - i;
            break;
        }
        match c {
            '\t' => out.push(c),
            '\n' if keep_newlines => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') => {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    if cut > 0 {
        out.push_str(&format!("... ({cut} more bytes cut)"));
    }
    out
}

/// Copies the directory tree `from` into `to` (created if missing): directories, regular files
/// with their permission bits, and symbolic links as links (a node's `/bin -> usr/bin` stays a
/// link, so grants see what they would on the node). The one copier of node directories: `plugin
/// test`'s per-case copies and the tests' fixture nodes.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
