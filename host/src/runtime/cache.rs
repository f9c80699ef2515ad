//! The on-disk cache of compiled components.
//!
//! Compiled code is native code: whoever can change a cache entry chooses what runs. So each
//! entry is bound to the component it was compiled from: the file holds the artifact followed by
//! an HMAC-SHA256 over the component's digest, the engine's compatibility hash and the artifact,
//! keyed by a secret only the user running wasmadm can read (`<cache>/key`, mode 0600, owned by
//! that user; a key file anyone else could have written or read is not used). An entry whose MAC
//! does not verify (copied from another component, patched, written by someone else) is ignored
//! and rebuilt. The entry is read into memory once, verified, and deserialized from those same
//! bytes, so it cannot change between the check and the use.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const KEY_FILE: &str = "key";
const KEY_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// The largest cache entry read (compiled plugins are a few MiB).
const MAX_ENTRY: u64 = 512 << 20;

/// A cache directory with its key.
pub struct Cache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
}

impl Cache {
    /// Opens (creating it, mode 0700) the cache directory and its key. `Err` says why the cache
    /// cannot be trusted; the caller then compiles without caching.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let key = read_or_create_key(&dir.join(KEY_FILE))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
        })
    }

    fn entry(&self, digest: &str, compat: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{compat}.cwasm"))
    }

    fn mac(&self, digest: &str, compat: &str, artifact: &[u8]) -> Hmac<Sha256> {
        // The key is exactly KEY_LEN bytes; HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC accepts any key length");
        for part in [digest.as_bytes(), b"\0", compat.as_bytes(), b"\0", artifact] {
            mac.update(part);
        }
        mac
    }

    /// The verified artifact for this component and engine, if the cache holds one.
    pub fn get(&self, digest: &str, compat: &str) -> Option<Vec<u8>> {
        let path = self.entry(digest, compat);
        // Whoever can write the directory may have put anything there: a FIFO must not block,
        // a link is not followed, and a huge file is not read.
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > MAX_ENTRY {
            tracing::warn!(cache = %path.display(), "ignoring a cache entry that is not a plausible file");
            return None;
        }
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY).read_to_end(&mut bytes).ok()?;
        if bytes.len() < MAC_LEN {
            tracing::warn!(cache = %path.display(), "ignoring a truncated cache entry");
            return None;
        }
        let tag = bytes.split_off(bytes.len() - MAC_LEN);
        if self.mac(digest, compat, &bytes).verify_slice(&tag).is_err() {
            tracing::warn!(
                cache = %path.display(),
                "ignoring a cache entry that was not written by this user for this component \
                 (its MAC does not verify); recompiling"
            );
            return None;
        }
        Some(bytes)
    }

    /// Stores an artifact with its MAC (atomically, mode 0600).
    pub fn put(&self, digest: &str, compat: &str, artifact: &[u8]) -> io::Result<()> {
        let tag = self.mac(digest, compat, artifact).finalize().into_bytes();
        let mut data = Vec::with_capacity(artifact.len() + MAC_LEN);
        data.extend_from_slice(artifact);
        data.extend_from_slice(&tag);
        crate::util::write_atomic(&self.entry(digest, compat), &data, 0o600)
    }
}

/// Reads the cache key, or creates it when there is none. A key is used only when it is a
/// regular file owned by this user that nobody else can read or write.
fn read_or_create_key(path: &Path) -> io::Result<[u8; KEY_LEN]> {
    match read_key(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key)
        .map_err(|e| io::Error::other(format!("no randomness for the cache key: {e}")))?;
    // Written under a temporary name and linked into place: a concurrent wasmadm either sees no
    // key or the whole key, and the first one to link wins.
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&key)?;
        file.sync_all()?;
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(e),
    }
}

fn read_key(path: &Path) -> io::Result<[u8; KEY_LEN]> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !meta.is_file() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "cache key {} must be a regular file owned by uid {me} with mode 0600 \
                 (it is uid {}, mode {:o}); remove it to have a new one made",
                path.display(),
                meta.uid(),
                meta.permissions().mode() & 0o7777
            ),
        ));
    }
    let mut key = [0u8; KEY_LEN];
    file.read_exact(&mut key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_bound_to_their_component_and_key() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("cache");
        let cache = Cache::open(&dir).expect("open");
        let key_mode = fs::metadata(dir.join(KEY_FILE))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        assert_eq!(
            fs::metadata(&dir).expect("dir").permissions().mode() & 0o777,
            0o700
        );

        cache.put("aaa", "c", b"code of a").expect("put");
        cache.put("bbb", "c", b"code of b").expect("put");
        assert_eq!(cache.get("aaa", "c").as_deref(), Some(&b"code of a"[..]));
        // Another component's entry copied over this one's.
        fs::copy(cache.entry("bbb", "c"), cache.entry("aaa", "c")).expect("copy");
        assert_eq!(cache.get("aaa", "c"), None);
        // A patched entry.
        cache.put("aaa", "c", b"code of a").expect("put");
        let mut bytes = fs::read(cache.entry("aaa", "c")).expect("read");
        bytes[0] ^= 1;
        fs::write(cache.entry("aaa", "c"), &bytes).expect("write");
        assert_eq!(cache.get("aaa", "c"), None);
        // The same directory opened again uses the same key.
        cache.put("aaa", "c", b"code of a").expect("put");
        let again = Cache::open(&dir).expect("reopen");
        assert_eq!(again.get("aaa", "c").as_deref(), Some(&b"code of a"[..]));
        // A key others can read is refused.
        fs::set_permissions(dir.join(KEY_FILE), fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = Cache::open(&dir).err().expect("refused");
        assert!(err.to_string().contains("mode 0600"), "{err}");
    }
}
