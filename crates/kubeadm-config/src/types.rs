//! The `kubeadm.k8s.io/v1beta4` objects, with kubeadm's field names.
//!
//! Unknown fields are refused (`deny_unknown_fields`) so that a typo is an error with a line
//! number, not a silently ignored setting. Fields wasmadm does not use yet are still modelled
//! where kubeadm users commonly set them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The API version every object here carries.
pub const API_VERSION: &str = "kubeadm.k8s.io/v1beta4";

// Fields two objects share are declared once by a macro, not by a `#[serde(flatten)]` struct: in
// a flattened struct serde reports an unknown field without its line and without the known ones.

/// A v1beta4 object with kubeadm's `ControlPlaneComponent` fields (`extraArgs`, `extraVolumes`,
/// `extraEnvs`) first, then its own.
macro_rules! control_plane_component {
    ($(#[$doc:meta])* $name:ident { $($(#[$attr:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub extra_args: Vec<Arg>,
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub extra_volumes: Vec<HostPathMount>,
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub extra_envs: Vec<EnvVar>,
            $($(#[$attr])* pub $field: $ty,)*
        }
    };
}

/// The configuration of a node's `init` or `join`: its own fields, then how the command runs its
/// phases (`skipPhases`, `patches`, `timeouts`).
macro_rules! node_configuration {
    ($(#[$doc:meta])* $name:ident { $($(#[$attr:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $($(#[$attr])* pub $field: $ty,)*
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub skip_phases: Vec<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub patches: Option<Patches>,
            #[serde(default)]
            pub timeouts: Timeouts,
        }
    };
}

/// A `name`/`value` pair, v1beta4's shape for `extraArgs` and `kubeletExtraArgs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arg {
    pub name: String,
    pub value: String,
}

/// An environment variable for a static pod (`extraEnvs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub effect: String,
}

/// `nodeRegistration` of InitConfiguration and JoinConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRegistration {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub cri_socket: String,
    /// `None` means kubeadm's default (the control-plane taint on control-plane nodes); an empty
    /// list means no taint at all.
    #[serde(default)]
    pub taints: Option<Vec<Taint>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubelet_extra_args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    #[serde(default)]
    pub image_pull_policy: String,
    #[serde(default)]
    pub image_pull_serial: Option<bool>,
}

/// The address the API server of this node listens on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiEndpoint {
    #[serde(default)]
    pub advertise_address: String,
    #[serde(default)]
    pub bind_port: u16,
}

/// A bootstrap token (`bootstrapTokens[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapToken {
    #[serde(default)]
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default)]
    pub usages: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `patches`: a directory of kustomize-style patches for the static pods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Patches {
    #[serde(default)]
    pub directory: String,
}

/// `timeouts` (Go duration strings such as `4m0s`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_component_health_check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_health_check: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "kubernetesAPICall"
    )]
    pub kubernetes_api_call: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "etcdAPICall")]
    pub etcd_api_call: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_bootstrap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_manifests: Option<String>,
}

node_configuration! {
    /// `kind: InitConfiguration`: what is specific to this node's `init`.
    InitConfiguration {
        #[serde(default)]
        api_version: String,
        #[serde(default)]
        kind: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        bootstrap_tokens: Vec<BootstrapToken>,
        #[serde(default)]
        dry_run: bool,
        #[serde(default)]
        node_registration: NodeRegistration,
        #[serde(default, rename = "localAPIEndpoint")]
        local_api_endpoint: ApiEndpoint,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        certificate_key: String,
    }
}

/// A hostPath volume added to a static pod (`extraVolumes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathMount {
    pub name: String,
    pub host_path: String,
    pub mount_path: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_type: Option<String>,
}

control_plane_component! {
    /// Settings shared by the control-plane components' sections.
    ControlPlaneComponent {}
}

control_plane_component! {
    /// `apiServer`: a control-plane component plus its serving certificate's extra SANs.
    ApiServer {
        #[serde(default, rename = "certSANs", skip_serializing_if = "Vec::is_empty")]
        cert_sans: Vec<String>,
    }
}

/// `etcd.local`: the stacked etcd kubeadm runs as a static pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalEtcd {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_repository: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_tag: String,
    #[serde(default)]
    pub data_dir: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_envs: Vec<EnvVar>,
    #[serde(default, rename = "serverCertSANs", skip_serializing_if = "Vec::is_empty")]
    pub server_cert_sans: Vec<String>,
    #[serde(default, rename = "peerCertSANs", skip_serializing_if = "Vec::is_empty")]
    pub peer_cert_sans: Vec<String>,
}

/// `etcd.external`: an etcd cluster kubeadm does not manage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalEtcd {
    pub endpoints: Vec<String>,
    #[serde(default, rename = "caFile")]
    pub ca_file: String,
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
}

/// `etcd`: exactly one of `local` and `external`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Etcd {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalEtcd>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalEtcd>,
}

/// `networking`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Networking {
    #[serde(default)]
    pub service_subnet: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_subnet: String,
    #[serde(default)]
    pub dns_domain: String,
}

/// `dns` (CoreDNS addon).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dns {
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_repository: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_tag: String,
}

/// `proxy` (kube-proxy addon).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Proxy {
    #[serde(default)]
    pub disabled: bool,
}

/// `kind: ClusterConfiguration`: what is shared by every control-plane node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfiguration {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub etcd: Etcd,
    #[serde(default)]
    pub networking: Networking,
    #[serde(default)]
    pub kubernetes_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub control_plane_endpoint: String,
    #[serde(default)]
    pub api_server: ApiServer,
    #[serde(default)]
    pub controller_manager: ControlPlaneComponent,
    #[serde(default)]
    pub scheduler: ControlPlaneComponent,
    #[serde(default)]
    pub dns: Dns,
    #[serde(default)]
    pub proxy: Proxy,
    #[serde(default)]
    pub certificates_dir: String,
    #[serde(default)]
    pub image_repository: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feature_gates: BTreeMap<String, bool>,
    #[serde(default)]
    pub cluster_name: String,
    #[serde(default)]
    pub encryption_algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_validity_period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_validity_period: Option<String>,
}

/// `discovery.bootstrapToken`: find the cluster with a token, pinning its CA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapTokenDiscovery {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub api_server_endpoint: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_cert_hashes: Vec<String>,
    #[serde(default)]
    pub unsafe_skip_ca_verification: bool,
}

/// `discovery.file`: find the cluster from a kubeconfig file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileDiscovery {
    pub kube_config_path: String,
}

/// `discovery` of JoinConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Discovery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_token: Option<BootstrapTokenDiscovery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileDiscovery>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tls_bootstrap_token: String,
}

/// `controlPlane` of JoinConfiguration: present when the node joins as a control-plane node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinControlPlane {
    #[serde(default, rename = "localAPIEndpoint")]
    pub local_api_endpoint: ApiEndpoint,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate_key: String,
}

node_configuration! {
    /// `kind: JoinConfiguration`.
    JoinConfiguration {
        #[serde(default)]
        api_version: String,
        #[serde(default)]
        kind: String,
        #[serde(default)]
        dry_run: bool,
        #[serde(default)]
        node_registration: NodeRegistration,
        #[serde(default)]
        ca_cert_path: String,
        #[serde(default)]
        discovery: Discovery,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        control_plane: Option<JoinControlPlane>,
    }
}

/// The resolved configuration a phase receives (`phase-context.config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResolvedConfig {
    /// Present for `init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitConfiguration>,
    /// Present for `init` and control-plane `join`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfiguration>,
    /// Present for `join`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinConfiguration>,
    /// Component configurations given in the same file (`KubeletConfiguration`,
    /// `KubeProxyConfiguration`), by kind, passed through untouched.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, serde_json::Value>,
    /// `init --upload-certs`: upload the control-plane certificates to Secret `kubeadm-certs`
    /// (a flag, not a v1beta4 field).
    #[serde(default, rename = "uploadCerts", skip_serializing_if = "std::ops::Not::not")]
    pub upload_certs: bool,
    /// `init --skip-certificate-key-print`.
    #[serde(
        default,
        rename = "skipCertificateKeyPrint",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub skip_certificate_key_print: bool,
    /// `join` with file discovery: the text of `discovery.file.kubeConfigPath`, read by the host
    /// (the file is the operator's input, as the configuration file is).
    #[serde(default, rename = "discoveryFile", skip_serializing_if = "Option::is_none")]
    pub discovery_file: Option<String>,
}

impl ResolvedConfig {
    /// This node's API endpoint, from the init or the control-plane join configuration, with
    /// kubeadm's default port when none is set.
    pub fn local_api_endpoint(&self) -> ApiEndpoint {
        let mut endpoint = self
            .init
            .as_ref()
            .map(|i| i.local_api_endpoint.clone())
            .or_else(|| {
                self.join
                    .as_ref()
                    .and_then(|j| j.control_plane.as_ref())
                    .map(|c| c.local_api_endpoint.clone())
            })
            .unwrap_or_default();
        if endpoint.bind_port == 0 {
            endpoint.bind_port = crate::defaults::DEFAULT_BIND_PORT;
        }
        endpoint
    }

    /// The node registration of whichever command is running (init first).
    pub fn node_registration(&self) -> Option<&NodeRegistration> {
        self.init
            .as_ref()
            .map(|i| &i.node_registration)
            .or_else(|| self.join.as_ref().map(|j| &j.node_registration))
    }
}
