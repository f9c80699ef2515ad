//! From the grants of the pipeline file to what the capabilities enforce, and back from what a
//! plugin asks for to grants: the conversions between the two live here, so neither the pipeline
//! schema (`config::pipeline`) nor the runner knows the other's shapes. Health URL templates are
//! filled from the node's `localAPIEndpoint` here, not in the runner, which knows nothing of
//! Kubernetes.

use crate::bindings::PluginInfo;
use crate::bindings::types::CapabilityRequest;
use crate::caps::health;
use crate::caps::log::terminal_safe;
use crate::config::pipeline::{ExecRule, FileGrants, GrantPath, Grants, HealthRule, HealthTls, KubeRule};
use kubeadm_config::ResolvedConfig;

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
pub fn health_endpoints(phase: &str, rules: &[HealthRule], config: &ResolvedConfig) -> Vec<health::Endpoint> {
    let endpoint = config.local_api_endpoint();
    rules
        .iter()
        .filter_map(
            |rule| match rule.resolve(&endpoint.advertise_address, endpoint.bind_port) {
                Ok(url) => Some(health::Endpoint {
                    url,
                    tls: match &rule.tls {
                        HealthTls::None => health::Tls::None,
                        HealthTls::Verify(ca) => health::Tls::Verify(ca.0.clone()),
                        HealthTls::Insecure => health::Tls::Insecure,
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

/// The variable of `grants.connect`: the server `join` discovers the cluster at.
pub const DISCOVERY_ENDPOINT: &str = "{discoveryEndpoint}";

/// A phase's `grants.connect` servers as `host:port`, with `{discoveryEndpoint}` filled in from
/// the JoinConfiguration (a grant that cannot be filled in grants nothing).
pub fn connect_servers(phase: &str, grant: &[String], config: &ResolvedConfig) -> Vec<String> {
    let discovery = config
        .join
        .as_ref()
        .and_then(|j| j.discovery.bootstrap_token.as_ref())
        .map(|t| t.api_server_endpoint.as_str())
        .filter(|e| !e.is_empty());
    grant
        .iter()
        .filter_map(|server| {
            if !server.contains('{') {
                return Some(server.clone());
            }
            match discovery {
                Some(endpoint) if server == DISCOVERY_ENDPOINT => Some(endpoint.to_string()),
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
