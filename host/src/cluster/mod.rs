//! Kubernetes API backends for the `kube` capability: a real API server ([`real`]) or the built-in
//! in-memory cluster ([`memory`]). Both take and return objects as JSON values; the capability in
//! front of them checks the phase's rules and records dry-run mutations.

pub mod memory;
pub mod real;
pub mod resources;
pub mod simulate;

use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// A type of API object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

impl ResourceType {
    /// A `v1` type of `group` (`""` for the core group).
    pub fn v1(group: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
        }
    }

    /// `v1` or `group/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The objects of this type in `namespace` (`None`: cluster-wide or all namespaces).
    pub fn collection<'a>(&'a self, namespace: Option<&'a str>) -> Collection<'a> {
        Collection { ty: self, namespace }
    }

    /// `configmaps` or `roles.rbac.authorization.k8s.io`, as kubectl names it.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// The API's failure kinds (mirrors `kube.error-code` of the WIT contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorCode {
    Denied,
    Forbidden,
    NotFound,
    AlreadyExists,
    Conflict,
    Invalid,
    Unavailable,
    Other,
}

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ApiErrorCode,
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ApiErrorCode, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
        }
    }
}

/// A patch and how it is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    Merge(Value),
    StrategicMerge(Value),
}

impl Patch {
    /// The patch document, whatever its kind.
    pub fn body(&self) -> &Value {
        match self {
            Patch::Merge(v) | Patch::StrategicMerge(v) => v,
        }
    }
}

/// Where a call goes: the objects of one type in one namespace, or cluster-wide (`namespace`
/// `None`), the API's collection path (`/api/v1/namespaces/<ns>/<plural>`).
#[derive(Debug, Clone, Copy)]
pub struct Collection<'a> {
    pub ty: &'a ResourceType,
    pub namespace: Option<&'a str>,
}

/// A Kubernetes API, real or simulated. `dry_run` asks the server to validate without persisting.
pub trait Cluster: Send + Sync {
    fn get(&self, at: Collection<'_>, name: &str) -> Result<Value, ApiError>;
    fn list(&self, at: Collection<'_>, label_selector: Option<&str>) -> Result<Value, ApiError>;
    fn create(&self, at: Collection<'_>, object: Value, dry_run: bool) -> Result<Value, ApiError>;
    fn update(&self, at: Collection<'_>, object: Value, dry_run: bool) -> Result<Value, ApiError>;
    fn patch(&self, at: Collection<'_>, name: &str, patch: Patch, dry_run: bool) -> Result<Value, ApiError>;
    fn delete(&self, at: Collection<'_>, name: &str, dry_run: bool) -> Result<(), ApiError>;

    /// What the API server's discovery says about a type the host does not know
    /// ([`resources::KNOWN`]); `None` when it is not served. The in-memory cluster serves only
    /// the known types.
    fn discover(&self, _ty: &ResourceType) -> Result<Option<resources::Discovered>, ApiError> {
        Ok(None)
    }

    /// True for a simulated cluster with no real node behind it (no kubelet, no static Pods):
    /// the `health` capability then answers for the simulated node instead of connecting.
    fn is_simulated(&self) -> bool {
        false
    }

    /// The same cluster reached with the credentials of another kubeconfig file (a host path):
    /// `kube.cluster-as`. A backend that authenticates nobody returns itself.
    fn with_credentials(self: Arc<Self>, kubeconfig: &Path) -> Result<Arc<dyn Cluster>, ApiError>;

    /// An API server a plugin named, with no credentials or a bearer token: `kube.connect`
    /// (after the capability checked it against the phase's grants). The in-memory cluster
    /// answers for every server itself.
    fn connect_to(self: Arc<Self>, endpoint: &Endpoint) -> Result<Arc<dyn Cluster>, ApiError>;
}

/// An API server named by a plugin (`kube.connect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://<host>:<port>`.
    pub server: String,
    /// PEM certificates the server must chain to; `None`: the server is not verified.
    pub ca_pem: Option<Vec<u8>>,
    /// Sent as `Authorization: Bearer`; `None`: anonymous.
    pub bearer_token: Option<String>,
}
