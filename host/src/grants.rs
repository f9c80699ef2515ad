//! From the grants of the pipeline file to what the capabilities enforce, and back from what a
//! plugin asks for to grants. The capabilities take one shape, [`PhaseGrants`], made here; the
//! pipeline schema (`config::pipeline`) keeps the file's shape (templates, defaults, serde), and
//! neither knows the other. Health URL templates are filled from the node's `localAPIEndpoint`
//! here, not in the runner, which knows nothing of Kubernetes.

use crate::bindings::PluginInfo;
use crate::bindings::types::CapabilityRequest;
use crate::config::pipeline::{
    DISCOVERY_ENDPOINT, ExecRule, FileGrants, GrantPath, Grants, HealthRule, HealthTls, KubeRule,
};
use crate::util::terminal_safe;
use crate::values::{EtcdVerb, Identity, NodePath, Url, https_authority};
use kubeadm_config::ResolvedConfig;

/// What one phase may do, in the shape the capabilities enforce: paths parsed, templates filled,
/// environment variables looked up. Everything not here is denied.
#[derive(Debug, Clone, Default)]
pub struct PhaseGrants {
    /// Node path prefixes the phase may read.
    pub read: Vec<NodePath>,
    /// Node path prefixes the phase may write (and read).
    pub write: Vec<NodePath>,
    pub exec: Vec<ExecGrant>,
    pub kube: Vec<KubeGrant>,
    /// The host's environment variables the phase sees, by name and value.
    pub env: Vec<(String, String)>,
    pub health: Vec<HealthEndpoint>,
    /// How many private keys the host may generate for the phase in one run.
    pub keys: u32,
    /// The servers `kube.connect` may reach, as `host:port`.
    pub connect: Vec<String>,
    /// etcd membership calls, if any.
    pub etcd: Option<EtcdAccess>,
}

/// What the `etcd` capability may do: the verbs, with the TLS client of these node files (etcd's
/// CA, and the client certificate and key presented to servers of that CA).
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdAccess {
    pub ca: NodePath,
    pub cert: NodePath,
    pub key: NodePath,
    pub verbs: Vec<EtcdVerb>,
}

/// An allowed command: its name, the argument lists allowed (patterns; none allows any), whether
/// it runs in a dry run, and the variables the plugin may set for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecGrant {
    pub command: String,
    pub args: Vec<Vec<String>>,
    pub read_only: bool,
    pub env: Vec<String>,
}

/// An allowed set of Kubernetes API calls, RBAC-shaped; `kubeconfig` names the credentials of a
/// `cluster-as` client the rule is for (`None`: the run's own client).
#[derive(Debug, Clone, PartialEq)]
pub struct KubeGrant {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub namespaces: Vec<String>,
    pub resource_names: Vec<String>,
    pub kubeconfig: Option<NodePath>,
    /// The `kube.connect` identity the rule is for (`None`: not for `connect` clients).
    pub identity: Option<Identity>,
}

/// One health endpoint a phase may `GET`, its URL template already filled in.
#[derive(Debug, Clone)]
pub struct HealthEndpoint {
    pub url: Url,
    pub tls: Tls,
}

/// How an `https` endpoint's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Plain `http`.
    None,
    /// Against the CA certificates in this node file.
    Verify(NodePath),
    /// Not at all (self-signed component certificates, as kubeadm does).
    Insecure,
}

impl PhaseGrants {
    /// The pipeline grants of `phase` for a run with `config`.
    pub fn resolve(phase: &str, grants: &Grants, config: &ResolvedConfig) -> Self {
        Self {
            read: grants.files.read.iter().map(|g| g.0.clone()).collect(),
            write: grants.files.write.iter().map(|g| g.0.clone()).collect(),
            exec: grants.exec.iter().map(ExecGrant::from).collect(),
            kube: grants.kube.iter().map(KubeGrant::from).collect(),
            env: granted_env(&grants.env),
            health: health_endpoints(phase, &grants.health, config),
            keys: grants.keys,
            connect: connect_servers(phase, &grants.connect, config),
            etcd: grants.etcd.as_deref().map(|g| EtcdAccess {
                ca: g.ca.0.clone(),
                cert: g.cert.0.clone(),
                key: g.key.0.clone(),
                verbs: g.verbs.clone(),
            }),
        }
    }
}

impl From<&ExecRule> for ExecGrant {
    fn from(r: &ExecRule) -> Self {
        Self {
            command: r.command.clone(),
            args: r.args.clone(),
            read_only: r.read_only,
            env: r.env.clone(),
        }
    }
}

impl From<&KubeRule> for KubeGrant {
    fn from(r: &KubeRule) -> Self {
        Self {
            verbs: r.verbs.clone(),
            api_groups: r.api_groups.clone(),
            resources: r.resources.clone(),
            namespaces: r.namespaces.clone(),
            resource_names: r.resource_names.clone(),
            kubeconfig: r.kubeconfig.as_ref().map(|k| k.0.clone()),
            identity: r.identity,
        }
    }
}

/// The host's environment variables an `env` grant shows the plugin: exact names, and for
/// `*suffix` every name ending with `suffix` compared case-insensitively. Names or values that
/// are not UTF-8 are left out.
pub fn granted_env(grant: &[String]) -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(name, _)| grant.iter().any(|g| env_matches(g, name)))
        .collect()
}

fn env_matches(grant: &str, name: &str) -> bool {
    match grant.strip_prefix('*') {
        Some(suffix) => {
            name.len() > suffix.len() && name.to_ascii_lowercase().ends_with(&suffix.to_ascii_lowercase())
        }
        None => grant == name,
    }
}

/// A phase's health grants with `{advertiseAddress}` and `{bindPort}` filled in from the node's
/// `localAPIEndpoint`. A grant that cannot be resolved (no address configured) grants nothing.
pub fn health_endpoints(phase: &str, rules: &[HealthRule], config: &ResolvedConfig) -> Vec<HealthEndpoint> {
    let endpoint = config.local_api_endpoint();
    rules
        .iter()
        .filter_map(
            |rule| match rule.resolve(&endpoint.advertise_address, endpoint.bind_port) {
                Ok(url) => Some(HealthEndpoint {
                    url,
                    tls: match &rule.tls {
                        HealthTls::None => Tls::None,
                        HealthTls::Verify(ca) => Tls::Verify(ca.0.clone()),
                        HealthTls::Insecure => Tls::Insecure,
                    },
                }),
                Err(e) => {
                    tracing::warn!(phase, grant = %rule.url, "health grant not usable: {e}");
                    None
                }
            },
        )
        .collect()
}

/// A phase's `grants.connect` servers as `host:port`, with `{discoveryEndpoint}` filled in from
/// the JoinConfiguration (a grant that cannot be filled in grants nothing).
pub fn connect_servers(phase: &str, grant: &[String], config: &ResolvedConfig) -> Vec<String> {
    // Token discovery's endpoint, or the server of file discovery's kubeconfig.
    let from_file = config
        .discovery_file
        .as_deref()
        .and_then(|text| kubeadm_bootstrap_token::cluster_info::kubeconfig_cluster(text).ok())
        .and_then(|(server, _)| https_authority(&server).map(str::to_string));
    let discovery = config
        .join
        .as_ref()
        .and_then(|j| j.discovery.bootstrap_token.as_ref())
        .map(|t| t.api_server_endpoint.clone())
        .or(from_file)
        .filter(|e| !e.is_empty());
    grant
        .iter()
        .filter_map(|server| {
            if !server.contains('{') {
                return Some(server.clone());
            }
            match &discovery {
                Some(endpoint) if server == DISCOVERY_ENDPOINT => Some(endpoint.clone()),
                _ => {
                    tracing::debug!(phase, grant = %server, "connect grant not usable in this run");
                    None
                }
            }
        })
        .collect()
}

impl Grants {
    /// These grants without what a `0.1` capability request cannot express (health URLs, rules
    /// for other credentials or identities, keys, connect servers, etcd access): what a plugin's `describe()` can be compared with.
    pub fn requestable(&self) -> Self {
        Self {
            kube: self
                .kube
                .iter()
                .filter(|r| r.kubeconfig.is_none() && r.identity.is_none())
                .cloned()
                .collect(),
            health: Vec::new(),
            keys: 0,
            connect: Vec::new(),
            etcd: None,
            ..self.clone()
        }
    }

    /// The grants that exactly cover what a plugin asks for, in pipeline-file form.
    pub fn from_request(needs: &CapabilityRequest) -> Result<Self, String> {
        let paths = |list: &[String]| -> Result<Vec<GrantPath>, String> {
            list.iter().map(|p| GrantPath::try_from(p.clone())).collect()
        };
        Ok(Self {
            files: FileGrants {
                read: paths(&needs.files_read)?,
                write: paths(&needs.files_write)?,
            },
            exec: needs
                .exec
                .iter()
                .map(|r| ExecRule {
                    command: r.command.clone(),
                    args: r.args.clone(),
                    read_only: r.read_only,
                    env: Vec::new(),
                })
                .collect(),
            kube: needs
                .kube
                .iter()
                .map(|r| KubeRule {
                    verbs: r.verbs.clone(),
                    api_groups: r.api_groups.clone(),
                    resources: r.resources.clone(),
                    namespaces: r.namespaces.clone(),
                    resource_names: r.resource_names.clone(),
                    kubeconfig: None,
                    identity: None,
                })
                .collect(),
            env: needs.env.clone(),
            // Not in the 0.1 capability request (see `capability-request` in wit/types.wit).
            health: Vec::new(),
            keys: 0,
            connect: Vec::new(),
            etcd: None,
        })
    }
}

/// A plugin's self-description for `wasmadm plugin inspect`: what it is, its sub-phases, its
/// settings, and the grants it asks for as a block to paste into a pipeline file.
pub fn describe_plugin(info: &PluginInfo, digest: &str) -> String {
    // The digest is the host's own fact and comes first; everything after it is the plugin's
    // word (already made terminal-safe by the runner, so it cannot forge a line).
    let mut out = format!(
        "digest: sha256:{digest}  # computed by wasmadm from the component's bytes\n\
         # What the plugin says about itself:\n\
         name: {}\nversion: {}\nsummary: {}\n",
        info.name, info.version, info.summary
    );
    if !info.sub_phases.is_empty() {
        out.push_str("subPhases:\n");
        for s in &info.sub_phases {
            out.push_str(&format!("  - {}  # {}\n", s.name, s.summary));
        }
    }
    match Grants::from_request(&info.needs) {
        Ok(grants) if grants == Grants::default() => out.push_str("grants: {}  # asks for no capability\n"),
        Ok(grants) => {
            let yaml = serde_yaml::to_string(&grants).unwrap_or_default();
            out.push_str("# The capabilities it asks for, as a pipeline `grants:` block:\ngrants:\n");
            for line in yaml.lines() {
                out.push_str(&format!("  {}\n", terminal_safe(line, 4096)));
            }
        }
        Err(e) => out.push_str(&format!("grants: invalid request from the plugin: {e}\n")),
    }
    if !info.settings_example.is_empty() {
        out.push_str("# Settings it accepts (example):\nsettings:\n");
        for line in info.settings_example.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::env_matches;

    #[test]
    fn env_grants_are_exact_names_or_case_insensitive_suffixes() {
        assert!(env_matches("HTTPS_PROXY", "HTTPS_PROXY"));
        assert!(!env_matches("HTTPS_PROXY", "https_proxy"));
        for name in ["HTTP_PROXY", "no_proxy", "Foo_Proxy"] {
            assert!(env_matches("*_proxy", name), "{name}");
        }
        for name in ["_proxy", "PROXY", "HTTP_PROXY_URL", "HOME"] {
            assert!(!env_matches("*_proxy", name), "{name}");
        }
    }
}
