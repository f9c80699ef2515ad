//! Small helpers over the `files` capability.

use crate::files::{self, EntryKind, ErrorCode, FileError, Metadata};

/// Reads a file as UTF-8 (lossy: kernel files are ASCII, and a stray byte must not fail a check).
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// let forwarding = wasmadm_plugin_sdk::fs::read_string("/proc/sys/net/ipv4/ip_forward")?;
/// let on = forwarding.trim() == "1";
/// # let _ = on; Ok(()) }
/// ```
pub fn read_string(path: &str) -> Result<String, FileError> {
    files::read(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// A whole file, or `None` when it does not exist. Other errors (denied) are returned.
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// match wasmadm_plugin_sdk::fs::read_optional("/etc/kubernetes/pki/ca.crt")? {
///     Some(pem) => { /* reuse the CA */ let _ = pem; }
///     None => { /* make one */ }
/// }
/// # Ok(()) }
/// ```
pub fn read_optional(path: &str) -> Result<Option<Vec<u8>>, FileError> {
    match files::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.code == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The file's metadata, or `None` when it does not exist. Other errors (denied) are returned.
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// use wasmadm_plugin_sdk::files::EntryKind;
/// let is_dir = wasmadm_plugin_sdk::fs::metadata("/var/lib/etcd")?
///     .is_some_and(|m| m.kind == EntryKind::Directory);
/// # let _ = is_dir; Ok(()) }
/// ```
pub fn metadata(path: &str) -> Result<Option<Metadata>, FileError> {
    match files::stat(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.code == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// True when `path` exists.
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// if wasmadm_plugin_sdk::fs::exists("/etc/kubernetes/kubelet.conf")? {
///     wasmadm_plugin_sdk::print("[vendor] the node has joined already");
/// }
/// # Ok(()) }
/// ```
pub fn exists(path: &str) -> Result<bool, FileError> {
    metadata(path).map(|m| m.is_some())
}

/// True when `path` is a regular file with an execute bit.
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// let has_crictl = wasmadm_plugin_sdk::fs::is_executable("/usr/bin/crictl")?;
/// # let _ = has_crictl; Ok(()) }
/// ```
pub fn is_executable(path: &str) -> Result<bool, FileError> {
    Ok(matches!(metadata(path)?, Some(m) if m.kind == EntryKind::File && m.mode & 0o111 != 0))
}

/// Finds `program` in the `path` directories, as `exec.LookPath` does.
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// let path = wasmadm_plugin_sdk::config::defaults::system_path();
/// if wasmadm_plugin_sdk::fs::look_path("conntrack", &path)?.is_none() {
///     wasmadm_plugin_sdk::warn("conntrack not found in system path");
/// }
/// # Ok(()) }
/// ```
pub fn look_path(program: &str, path: &[String]) -> Result<Option<String>, FileError> {
    for dir in path {
        let candidate = format!("{}/{program}", dir.trim_end_matches('/'));
        if is_executable(&candidate)? {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}
