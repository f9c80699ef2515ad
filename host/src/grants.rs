//! From the grants of the pipeline file to what the capabilities enforce, and back from what a
//! plugin asks for to grants: the conversions between the two live here, so neither the pipeline
//! schema (`config::pipeline`) nor the runner knows the other's shapes. Health URL templates are
//! filled from the node's `localAPIEndpoint` here, not in the runner, which knows nothing of
//! Kubernetes.

use crate::bindings::types::CapabilityRequest;
use crate::caps::health;
use crate::config::pipeline::{ExecRule, FileGrants, GrantPath, Grants, HealthRule, HealthTls, KubeRule};
use kubeadm_config::ResolvedConfig;

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

impl Grants {
    /// These grants without what a `0.1` capability request cannot express (health URLs, rules
    /// for other credentials): what a plugin's `describe()` can be compared with.
    pub fn requestable(&self) -> Self {
        Self {
            kube: self
                .kube
                .iter()
                .filter(|r| r.kubeconfig.is_none())
                .cloned()
                .collect(),
            health: Vec::new(),
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
                })
                .collect(),
            env: needs.env.clone(),
            // Not in the 0.1 capability request (see `capability-request` in wit/types.wit).
            health: Vec::new(),
        })
    }
}
