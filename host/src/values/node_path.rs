//! Node paths: absolute paths on the node, as grants name them and plugins ask for them.
//! Resolving one under `--root` (symbolic links, `..`) is the capabilities' job
//! (`caps::path`); this is only the value.

use std::path::Path;

/// A normalised absolute node path: starts with `/`, no `.`/`..`/empty components, no trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodePath(String);

impl NodePath {
    /// Parses an absolute path, removing `.` and empty components. `..` is refused here: it is
    /// only meaningful during resolution, where symlinks are known.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("{text:?} is not an absolute path"));
        }
        if text.contains('\0') {
            return Err(format!("{text:?} contains a NUL byte"));
        }
        let mut parts = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(format!("{text:?} contains '..'")),
                p => parts.push(p),
            }
        }
        Ok(Self::from_parts(&parts))
    }

    pub(crate) fn from_parts(parts: &[&str]) -> Self {
        Self(format!("/{}", parts.join("/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path relative to the root, for `cap_std` (`.` for the root itself).
    pub fn relative(&self) -> &Path {
        let rel = self.0.trim_start_matches('/');
        Path::new(if rel.is_empty() { "." } else { rel })
    }

    /// True when `self` is `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &NodePath) -> bool {
        prefix.0 == "/"
            || self.0 == prefix.0
            || (self.0.starts_with(&prefix.0) && self.0.as_bytes()[prefix.0.len()] == b'/')
    }

    pub fn parent(&self) -> Option<NodePath> {
        let idx = self.0.rfind('/')?;
        (self.0 != "/").then(|| {
            NodePath(if idx == 0 {
                "/".into()
            } else {
                self.0[..idx].into()
            })
        })
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    pub fn join(&self, name: &str) -> NodePath {
        if self.0 == "/" {
            NodePath(format!("/{name}"))
        } else {
            NodePath(format!("{}/{name}", self.0))
        }
    }
}

impl std::fmt::Display for NodePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Applies `.` and `..` lexically (never above `/`), without looking at the disk.
pub fn normalize(text: &str) -> NodePath {
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    NodePath::from_parts(&parts)
}
