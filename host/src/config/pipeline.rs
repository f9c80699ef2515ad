//! The pipeline file: which phases `init`, `join` and `reset` run, in which order, from which
//! component, with which grants, settings and limits.
//!
//! ```yaml
//! apiVersion: wasmadm.io/v1alpha1
//! kind: Pipeline
//! init:
//!   - name: preflight
//!     component: builtin:preflight        # or a path to a .wasm file, with `digest:`
//!     grants:
//!       files: { read: [/proc, /etc/kubernetes] }
//!       exec: [{ command: kubelet, args: [["--version"]], readOnly: true }]
//!     limits: { memory: 64Mi, timeout: 30s, output: 1Mi }
//! ```
//!
//! Everything semantic is checked while deserializing (`try_from`), so every error carries the
//! file's line and column.

use crate::builtin;
use crate::values::{EtcdVerb, Identity, MAX_MEMORY, NodePath, Scheme, Url};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const API_VERSION: &str = "wasmadm.io/v1alpha1";
pub const KIND: &str = "Pipeline";

/// The whole pipeline file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pipeline {
    pub api_version: ApiVersion,
    pub kind: Kind,
    /// Directories (node view, under `--root`) where `exec` looks up commands, in order.
    #[serde(default = "kubeadm_config::defaults::system_path")]
    pub exec_path: Vec<String>,
    #[serde(default)]
    pub init: Phases,
    #[serde(default)]
    pub join: Phases,
    #[serde(default)]
    pub reset: Phases,
    /// The text it was parsed from, for positions in later errors (a plugin's settings error).
    #[serde(skip)]
    pub source: Option<super::settings_error::Source>,
}

/// `apiVersion`, which must be [`API_VERSION`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiVersion;

impl TryFrom<String> for ApiVersion {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        if v == API_VERSION {
            Ok(Self)
        } else {
            Err(format!("apiVersion {v:?} is not supported; use {API_VERSION}"))
        }
    }
}
impl From<ApiVersion> for String {
    fn from(_: ApiVersion) -> String {
        API_VERSION.into()
    }
}

/// `kind`, which must be [`KIND`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kind;

impl TryFrom<String> for Kind {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        if v == KIND {
            Ok(Self)
        } else {
            Err(format!("kind {v:?} is not supported; use {KIND}"))
        }
    }
}
impl From<Kind> for String {
    fn from(_: Kind) -> String {
        KIND.into()
    }
}

/// The ordered phases of one command; names are unique.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<PhaseSpec>", into = "Vec<PhaseSpec>")]
pub struct Phases(pub Vec<PhaseSpec>);

impl TryFrom<Vec<PhaseSpec>> for Phases {
    type Error = String;
    fn try_from(list: Vec<PhaseSpec>) -> Result<Self, String> {
        for (i, p) in list.iter().enumerate() {
            if list[..i].iter().any(|q| q.name == p.name) {
                return Err(format!(
                    "phase name {:?} appears twice; every phase needs its own name",
                    p.name.0
                ));
            }
        }
        // A group's name is its members' prefix; a phase of the same name would be ambiguous.
        for p in &list {
            if let Some((group, _)) = p.name.0.split_once('/')
                && list.iter().any(|q| q.name.0 == group)
            {
                return Err(format!(
                    "phase {:?} is a sub-phase of {group:?}, which is also a phase of its own: \
                     rename one of them",
                    p.name.0
                ));
            }
        }
        Ok(Self(list))
    }
}
impl From<Phases> for Vec<PhaseSpec> {
    fn from(p: Phases) -> Self {
        p.0
    }
}

/// One phase of a command.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhaseSpec {
    /// The phase's name, as in `wasmadm init phase <name>` and `--skip-phases`.
    pub name: PhaseName,
    /// `builtin:<name>` or a path to a `.wasm` component (relative to the pipeline file).
    pub component: ComponentRef,
    /// `sha256:<hex>` of the component file; required for files, checked before loading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Run only on nodes of this role (`control-plane` or `worker`); both when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Passed to the plugin as JSON (`phase-context.settings`).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub settings: serde_json::Value,
    #[serde(default)]
    pub grants: Grants,
    #[serde(default)]
    pub limits: Limits,
}

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}

pub use crate::command::Role;

/// A phase name: lower-case letters, digits and `-`; or `group/name`, a sub-phase of phase `group`
/// run by a plugin of its own (kubeadm's `control-plane-prepare/certs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhaseName(pub String);

impl TryFrom<String> for PhaseName {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        let part = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !p.starts_with('-')
        };
        let ok = match v.split_once('/') {
            Some((group, name)) => part(group) && part(name),
            None => part(&v),
        };
        if v == "node" {
            // Phase inputs named `node.<fact>` are the host's facts about the node.
            Err("phase name \"node\" is reserved for the host's node facts (inputs node.<fact>): choose another".into())
        } else if ok {
            Ok(Self(v))
        } else {
            Err(format!(
                "phase name {v:?} is invalid: use lower-case letters, digits and '-' (e.g. upload-config), \
                 or group/name for a sub-phase run by its own plugin (e.g. control-plane-prepare/certs)"
            ))
        }
    }
}
impl From<PhaseName> for String {
    fn from(p: PhaseName) -> String {
        p.0
    }
}
impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a phase's component comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ComponentRef {
    /// One of the plugins embedded in the wasmadm binary.
    Builtin(String),
    /// A `.wasm` component file.
    File(PathBuf),
}

impl TryFrom<String> for ComponentRef {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        if let Some(name) = v.strip_prefix("builtin:") {
            if builtin::get(name).is_none() {
                return Err(format!(
                    "unknown built-in component {v:?}; built-ins are: {}",
                    builtin::names()
                        .map(|n| format!("builtin:{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Ok(Self::Builtin(name.to_string()))
        } else if v.ends_with(".wasm") {
            Ok(Self::File(PathBuf::from(v)))
        } else {
            Err(format!(
                "component {v:?} is neither `builtin:<name>` nor a path to a .wasm file"
            ))
        }
    }
}
impl From<ComponentRef> for String {
    fn from(c: ComponentRef) -> String {
        match c {
            ComponentRef::Builtin(n) => format!("builtin:{n}"),
            ComponentRef::File(p) => p.display().to_string(),
        }
    }
}
impl fmt::Display for ComponentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from(self.clone()))
    }
}

/// A `sha256:<64 hex>` content digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(pub String);

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        match v.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Self(hex.to_ascii_lowercase()))
            }
            _ => Err(format!(
                "digest {v:?} is not `sha256:` followed by 64 hex digits (get it with `sha256sum file.wasm`)"
            )),
        }
    }
}
impl From<Digest> for String {
    fn from(d: Digest) -> String {
        format!("sha256:{}", d.0)
    }
}

/// What a phase may do. Everything not listed is denied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Grants {
    #[serde(default, skip_serializing_if = "FileGrants::is_empty")]
    pub files: FileGrants,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<ExecRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kube: Vec<KubeRule>,
    /// Environment variables visible to the plugin through WASI: exact names, or `*suffix` for
    /// every variable whose name ends with `suffix`, in any case (`*_proxy`: kubeadm hands every
    /// proxy variable to the control plane, `Foo_Proxy` included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Health endpoints the plugin may `GET` (the `health` interface).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<HealthRule>,
    /// How many private keys the host may generate for the plugin per run (the `keys`
    /// interface); none by default, and a plugin then makes its keys itself.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub keys: u32,
    /// API servers `kube.connect` may reach, as `host:port`. The one variable,
    /// `{discoveryEndpoint}`, is the server `join` discovers the cluster at: the JoinConfiguration's
    /// `discovery.bootstrapToken.apiServerEndpoint`, or the server of the discovery file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect: Vec<String>,
    /// etcd membership calls (the `etcd` interface): the files of the TLS client and the verbs.
    /// (Boxed: most phases have none.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<Box<EtcdGrant>>,
}

/// What a phase may do to etcd's membership, and with which certificates.
///
/// ```yaml
/// etcd:
///   ca: /etc/kubernetes/pki/etcd/ca.crt                   # etcd's server certificate chains to it
///   cert: /etc/kubernetes/pki/apiserver-etcd-client.crt   # the client certificate presented
///   key: /etc/kubernetes/pki/apiserver-etcd-client.key
///   verbs: [list, add-learner, promote, health]
/// ```
///
/// The host reads the three files under the node root; the plugin needs no file grant for them and
/// never sees the key. Endpoints are not listed: the plugin names them (any `https://host:port`),
/// and only a server holding a certificate of `ca` is given the client certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdGrant {
    pub ca: GrantPath,
    pub cert: GrantPath,
    pub key: GrantPath,
    pub verbs: Vec<EtcdVerb>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One health endpoint a phase may `GET`: an exact `scheme://host:port/path`, and for `https`
/// how the certificate is checked.
///
/// ```yaml
/// health:
///   - url: http://127.0.0.1:10248/healthz
///   - url: https://{advertiseAddress}:{bindPort}/livez
///     tls: verify
///     ca: /etc/kubernetes/pki/ca.crt
///   - url: https://127.0.0.1:10257/healthz
///     tls: insecure
/// ```
///
/// No wildcards: a health grant is a door to a socket, so it names one endpoint. The only
/// variables are `{advertiseAddress}` and `{bindPort}` (the node's `localAPIEndpoint`, filled in
/// by the host from the resolved configuration), because the API server's address differs per
/// node while the pipeline file is shared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "HealthRuleSpec", into = "HealthRuleSpec")]
pub struct HealthRule {
    /// The URL as written, with its variables.
    pub url: String,
    pub tls: HealthTls,
}

/// How an `https` grant checks the server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthTls {
    /// Plain `http`.
    None,
    /// Against the CA certificates in this node file (which the phase must be able to read).
    Verify(GrantPath),
    /// Not at all, as kubeadm does for the self-signed controller-manager and scheduler certs.
    Insecure,
}

/// The file form of [`HealthRule`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthRuleSpec {
    pub url: String,
    /// `verify` (with `ca`) or `insecure`; only for `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<GrantPath>,
}

/// The variables a health grant may use, and the values used to check a URL's shape.
pub const HEALTH_VARIABLES: [(&str, &str); 2] = [("{advertiseAddress}", "192.0.2.1"), ("{bindPort}", "6443")];

impl HealthRule {
    /// The URL with its variables replaced (`advertise_address` in brackets when IPv6).
    pub fn resolve(&self, advertise_address: &str, bind_port: u16) -> Result<Url, String> {
        let address = if advertise_address.contains(':') {
            format!("[{advertise_address}]")
        } else {
            advertise_address.to_string()
        };
        let text = self
            .url
            .replace("{advertiseAddress}", &address)
            .replace("{bindPort}", &bind_port.to_string());
        Url::parse(&text, true)
    }
}

impl TryFrom<HealthRuleSpec> for HealthRule {
    type Error = String;
    fn try_from(spec: HealthRuleSpec) -> Result<Self, String> {
        let mut probe = spec.url.clone();
        for (name, example) in HEALTH_VARIABLES {
            probe = probe.replace(name, example);
        }
        if probe.contains(['{', '}']) {
            return Err(format!(
                "health grant {:?}: the only variables are {{advertiseAddress}} and {{bindPort}}",
                spec.url
            ));
        }
        let url = Url::parse(&probe, true).map_err(|e| format!("health grant {e}"))?;
        let https = url.scheme == Scheme::Https;
        let tls = match (https, spec.tls.as_deref(), spec.ca) {
            (false, None, None) => HealthTls::None,
            (false, _, _) => {
                return Err(format!(
                    "health grant {:?}: `tls` and `ca` are for https URLs only",
                    spec.url
                ));
            }
            (true, Some("verify"), Some(ca)) => HealthTls::Verify(ca),
            (true, Some("insecure"), None) => HealthTls::Insecure,
            (true, Some("verify"), None) => {
                return Err(format!(
                    "health grant {:?}: `tls: verify` needs `ca: <node path of the CA file>` (e.g. /etc/kubernetes/pki/ca.crt)",
                    spec.url
                ));
            }
            (true, Some("insecure"), Some(_)) => {
                return Err(format!(
                    "health grant {:?}: `tls: insecure` checks no certificate, so `ca` must not be set",
                    spec.url
                ));
            }
            (true, _, _) => {
                return Err(format!(
                    "health grant {:?}: an https URL needs `tls: verify` (with `ca: <file>`) or `tls: insecure`",
                    spec.url
                ));
            }
        };
        Ok(Self { url: spec.url, tls })
    }
}

impl From<HealthRule> for HealthRuleSpec {
    fn from(r: HealthRule) -> Self {
        let (tls, ca) = match r.tls {
            HealthTls::None => (None, None),
            HealthTls::Verify(ca) => (Some("verify".to_string()), Some(ca)),
            HealthTls::Insecure => (Some("insecure".to_string()), None),
        };
        Self { url: r.url, tls, ca }
    }
}

/// File grants: absolute node path prefixes. A write grant implies read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGrants {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<GrantPath>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<GrantPath>,
}

impl FileGrants {
    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.write.is_empty()
    }
}

/// An absolute path prefix in a grant (no `..`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GrantPath(pub NodePath);

impl TryFrom<String> for GrantPath {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        NodePath::parse(&v)
            .map(Self)
            .map_err(|e| format!("file grant {e}; grants are absolute node paths such as /etc/kubernetes"))
    }
}
impl From<GrantPath> for String {
    fn from(g: GrantPath) -> String {
        g.0.to_string()
    }
}

/// An allowed command (see `exec-rule` in `wit/types.wit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecRule {
    pub command: String,
    /// Allowed argument lists (patterns); empty allows any arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Vec<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Environment variable names the plugin may set for this command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

/// An allowed set of Kubernetes API calls (see `kube-rule` in `wit/types.wit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeRule {
    pub verbs: Vec<String>,
    #[serde(default = "core_group")]
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    /// The rule is for a client with this kubeconfig file's credentials (`kube.cluster-as`), not
    /// for the run's own client: kubeadm's break-glass `super-admin.conf`, say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<GrantPath>,
    /// The rule is for `kube.connect` clients with this identity (join's discovery and TLS
    /// bootstrap, at a server of `grants.connect`), not for the run's own client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

fn core_group() -> Vec<String> {
    vec![String::new()]
}

/// Per-phase resource limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Linear memory the plugin may use (`64Mi`, `1Gi`).
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    /// Wall-clock time for one call (`30s`, `5m`). Time spent in host calls (a slow command, an
    /// API request) counts too.
    #[serde(default = "default_timeout")]
    pub timeout: Timeout,
    /// Bytes of console output, logs and captured command output the host keeps from the phase.
    #[serde(default = "default_output")]
    pub output: ByteSize,
    /// Bytes the phase may write through `files.write` in one run (dry-run writes count too).
    #[serde(default = "default_write_bytes")]
    pub write_bytes: ByteSize,
    /// Files and directories the phase may write or create in one run.
    #[serde(default = "default_write_files")]
    pub write_files: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: default_memory(),
            timeout: default_timeout(),
            output: default_output(),
            write_bytes: default_write_bytes(),
            write_files: default_write_files(),
        }
    }
}

/// kubeadm's phases write a few dozen small files (PKI, kubeconfigs, manifests, kubelet
/// configuration): the defaults leave ample room and stop a runaway writer early.
fn default_write_bytes() -> ByteSize {
    ByteSize(64 << 20)
}
fn default_write_files() -> u64 {
    1000
}

fn default_memory() -> ByteSize {
    ByteSize(128 << 20)
}
fn default_timeout() -> Timeout {
    Timeout(Duration::from_secs(300))
}
fn default_output() -> ByteSize {
    ByteSize(1 << 20)
}

/// A size such as `64Mi`, `1Gi`, `512Ki` or a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "String")]
pub struct ByteSize(pub u64);

impl TryFrom<serde_json::Value> for ByteSize {
    type Error = String;
    fn try_from(v: serde_json::Value) -> Result<Self, String> {
        let text = match &v {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => return Err(format!("size {other} must be a string like 64Mi")),
        };
        let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
        let scale: u64 = match unit {
            "" => 1,
            "Ki" => 1 << 10,
            "Mi" => 1 << 20,
            "Gi" => 1 << 30,
            _ => return Err(format!("size {text:?}: unit must be Ki, Mi or Gi (e.g. 64Mi)")),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("size {text:?} is not a number with an optional Ki/Mi/Gi unit"))?;
        let bytes = n
            .checked_mul(scale)
            .ok_or_else(|| format!("size {text:?} is too large"))?;
        Ok(Self(bytes))
    }
}
impl From<ByteSize> for String {
    fn from(b: ByteSize) -> String {
        match b.0 {
            n if n.is_multiple_of(1 << 30) && n > 0 => format!("{}Gi", n >> 30),
            n if n.is_multiple_of(1 << 20) && n > 0 => format!("{}Mi", n >> 20),
            n if n.is_multiple_of(1 << 10) && n > 0 => format!("{}Ki", n >> 10),
            n => n.to_string(),
        }
    }
}

/// A wall-clock timeout such as `30s`, `5m` or `1m30s` (Go duration syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timeout(pub Duration);

impl TryFrom<String> for Timeout {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        match kubeadm_config::validate::parse_duration(&v) {
            Some(secs) if secs > 0.0 => Ok(Self(Duration::from_secs_f64(secs))),
            _ => Err(format!("timeout {v:?} is not a positive duration like 30s or 5m")),
        }
    }
}
impl From<Timeout> for String {
    fn from(t: Timeout) -> String {
        let ms = t.0.as_millis();
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }
}

/// A pipeline that could not be loaded; the message carries file, line and column.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot read pipeline file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// `message` starts with the file name (and line, where known).
    #[error("{message}")]
    Invalid { path: PathBuf, message: String },
}

impl Pipeline {
    /// The pipeline built into wasmadm (`wasmadm config print pipeline` prints it).
    pub const DEFAULT_YAML: &'static str = include_str!("default-pipeline.yaml");

    /// Parses the built-in default pipeline.
    pub fn builtin_default() -> Result<Self, PipelineError> {
        Self::parse(Self::DEFAULT_YAML, Path::new("<built-in default pipeline>"))
    }

    /// Reads and validates a pipeline file.
    pub fn load(path: &Path) -> Result<Self, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut pipeline = Self::parse(&text, path)?;
        // Component paths are relative to the pipeline file, not to the working directory.
        let base = path.parent().unwrap_or(Path::new("."));
        for phase in pipeline.all_phases_mut() {
            if let ComponentRef::File(p) = &mut phase.component
                && p.is_relative()
            {
                *p = base.join(&*p);
            }
        }
        Ok(pipeline)
    }

    /// Parses pipeline YAML; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PipelineError> {
        let mut pipeline: Pipeline = serde_yaml::from_str(text).map_err(|e| PipelineError::Invalid {
            path: path.to_path_buf(),
            message: super::yaml_error(path, &e, 0),
        })?;
        for (command, phase) in pipeline
            .commands()
            .flat_map(|(c, ps)| ps.0.iter().map(move |p| (c, p)))
        {
            let invalid = |message: String| PipelineError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "{}:{}: {command} phase {:?}: {message}",
                    path.display(),
                    line_of(text, &format!("name: {}", phase.name.0)).unwrap_or(1),
                    phase.name.0,
                ),
            };
            if matches!(phase.component, ComponentRef::File(_)) && phase.digest.is_none() {
                return Err(invalid(
                    "a component file needs `digest: sha256:<hex>` (get it with `sha256sum`), so a \
                     changed file is refused instead of run"
                        .into(),
                ));
            }
            let files = &phase.grants.files;
            for rule in &phase.grants.health {
                if let HealthTls::Verify(ca) = &rule.tls
                    && !files
                        .read
                        .iter()
                        .chain(&files.write)
                        .any(|g| ca.0.starts_with(&g.0))
                {
                    return Err(invalid(format!(
                        "health grant {:?} verifies with CA file {}, which the phase may not read; \
                         add it (or its directory) under grants.files.read",
                        rule.url, ca.0
                    )));
                }
            }
            for name in &phase.grants.env {
                let bare = name.strip_prefix('*').unwrap_or(name);
                if bare.is_empty() || bare.contains(['=', '*', '\0']) {
                    return Err(invalid(format!(
                        "env grant {name:?}: give a variable's name (HTTPS_PROXY), or `*` and the end \
                         of names (*_proxy)"
                    )));
                }
            }
            for rule in &phase.grants.kube {
                if let (Some(k), Some(i)) = (&rule.kubeconfig, rule.identity) {
                    return Err(invalid(format!(
                        "a kube rule names both `kubeconfig: {}` and `identity: {i}`: a client has \
                         one or the other; split it into two rules",
                        k.0
                    )));
                }
            }
            for server in &phase.grants.connect {
                if let Err(why) = check_connect_grant(server) {
                    return Err(invalid(format!("connect grant {server:?}: {why}")));
                }
            }
            if let Some(etcd) = &phase.grants.etcd
                && etcd.verbs.is_empty()
            {
                return Err(invalid(
                    "the etcd grant lists no verbs: give some of list, add-learner, promote, remove, \
                     health (or drop the grant)"
                        .into(),
                ));
            }
            if phase.limits.memory.0 > MAX_MEMORY || phase.limits.memory.0 < (1 << 20) {
                return Err(invalid(format!(
                    "limits.memory must be between 1Mi and {}",
                    String::from(ByteSize(MAX_MEMORY))
                )));
            }
        }
        pipeline.source = Some(super::settings_error::Source {
            path: path.to_path_buf(),
            text: text.into(),
            settings_only: false,
        });
        Ok(pipeline)
    }

    /// `(command name, phases)` for init, join and reset.
    pub fn commands(&self) -> impl Iterator<Item = (&'static str, &Phases)> {
        [("init", &self.init), ("join", &self.join), ("reset", &self.reset)].into_iter()
    }

    fn all_phases_mut(&mut self) -> impl Iterator<Item = &mut PhaseSpec> {
        self.init
            .0
            .iter_mut()
            .chain(self.join.0.iter_mut())
            .chain(self.reset.0.iter_mut())
    }

    /// The phases of a command.
    pub fn phases(&self, command: crate::command::Command) -> &[PhaseSpec] {
        use crate::command::Command;
        match command {
            Command::Init => &self.init.0,
            Command::Join => &self.join.0,
            Command::Reset => &self.reset.0,
        }
    }
}

/// The variable of `grants.connect`: the server `join` discovers the cluster at.
pub const DISCOVERY_ENDPOINT: &str = "{discoveryEndpoint}";

/// A `grants.connect` entry is `host:port` (no scheme, no path) or `{discoveryEndpoint}`.
fn check_connect_grant(server: &str) -> Result<(), String> {
    if server == DISCOVERY_ENDPOINT {
        return Ok(());
    }
    let hint = "give `host:port` (e.g. 10.0.0.1:6443) or {discoveryEndpoint}";
    let (host, port) = server
        .rsplit_once(':')
        .ok_or_else(|| format!("no port; {hint}"))?;
    if host.is_empty() || host.contains(['/', '{', '}', '@', ' ']) || port.parse::<u16>().is_err() {
        return Err(hint.to_string());
    }
    Ok(())
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}
