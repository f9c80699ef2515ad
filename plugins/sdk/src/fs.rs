//! Small helpers over the `files` capability.

use crate::files::{self, EntryKind, ErrorCode, FileError, Metadata};

/// Reads a file as UTF-8 (lossy: kernel files are ASCII, and a stray byte must not fail a check).
pub fn read_string(path: &str) -> Result<String, FileError> {
    files::read(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// A whole file, or `None` when it does not exist. Other errors (denied) are returned.
pub fn read_optional(path: &str) -> Result<Option<Vec<u8>>, FileError> {
    match files::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.code == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The file's metadata, or `None` when it does not exist. Other errors (denied) are returned.
pub fn metadata(path: &str) -> Result<Option<Metadata>, FileError> {
    match files::stat(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.code == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// True when `path` exists.
pub fn exists(path: &str) -> Result<bool, FileError> {
    metadata(path).map(|m| m.is_some())
}

/// True when `path` is a regular file with an execute bit.
pub fn is_executable(path: &str) -> Result<bool, FileError> {
    Ok(matches!(metadata(path)?, Some(m) if m.kind == EntryKind::File && m.mode & 0o111 != 0))
}

/// Finds `program` in the `path` directories, as `exec.LookPath` does.
pub fn look_path(program: &str, path: &[String]) -> Result<Option<String>, FileError> {
    for dir in path {
        let candidate = format!("{}/{program}", dir.trim_end_matches('/'));
        if is_executable(&candidate)? {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}
