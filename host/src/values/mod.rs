//! Value types every layer shares, below all of them: the pipeline file parses into them, the
//! grants carry them, the capabilities enforce them. They know nothing of files on disk or of
//! the network.

pub mod node_path;
pub mod url;

pub use node_path::NodePath;
pub use url::{Scheme, Url};

/// The `host:port` of an API server URL `https://<host>:<port>` (one trailing `/` allowed), or
/// `None` when the URL has any other form (a path, a query, user info, another scheme): what
/// `kube.connect` and its grants compare.
pub fn https_authority(server: &str) -> Option<&str> {
    server
        .strip_prefix("https://")
        .map(|a| a.strip_suffix('/').unwrap_or(a))
        .filter(|a| !a.is_empty() && !a.contains(['/', '?', '#', '@', ' ']))
}

/// Who a `kube.connect` client is (the WIT `kube.identity`, without the token itself): what a
/// `grants.kube` rule with `identity:` is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Identity {
    /// No credentials (`system:anonymous`).
    Anonymous,
    /// A bootstrap token (`system:bootstrap:<id>`).
    BootstrapToken,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Anonymous => "anonymous",
            Self::BootstrapToken => "bootstrap-token",
        })
    }
}

/// A membership call of the `etcd` interface: what a `grants.etcd` verb allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EtcdVerb {
    /// `member-list`.
    List,
    /// `member-add-learner`.
    AddLearner,
    /// `member-promote`.
    Promote,
    /// `member-remove`.
    Remove,
    /// `health`.
    Health,
}

impl std::fmt::Display for EtcdVerb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::List => "list",
            Self::AddLearner => "add-learner",
            Self::Promote => "promote",
            Self::Remove => "remove",
            Self::Health => "health",
        })
    }
}

/// The largest memory limit a phase may ask for: the engine's pooling allocator reserves this much
/// address space per slot, and the pipeline file is checked against it.
pub const MAX_MEMORY: u64 = 4 << 30;
