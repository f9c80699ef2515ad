//! kubeadm's defaults for v1beta4 (`SetDefaults_*` in kubeadm's API package).

use crate::types::*;

/// The Kubernetes version wasmadm targets when the configuration names none. kubeadm would
/// resolve `stable-1` over the network; wasmadm never needs the network for this.
pub const DEFAULT_KUBERNETES_VERSION: &str = "v1.36.2";
pub const DEFAULT_CRI_SOCKET: &str = "unix:///var/run/containerd/containerd.sock";
pub const DEFAULT_BIND_PORT: u16 = 6443;
pub const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/12";
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";
pub const DEFAULT_CERTIFICATES_DIR: &str = "/etc/kubernetes/pki";
pub const DEFAULT_IMAGE_REPOSITORY: &str = "registry.k8s.io";
pub const DEFAULT_CLUSTER_NAME: &str = "kubernetes";
pub const DEFAULT_ETCD_DATA_DIR: &str = "/var/lib/etcd";
pub const DEFAULT_ENCRYPTION_ALGORITHM: &str = "RSA-2048";
pub const DEFAULT_CA_CERT_PATH: &str = "/etc/kubernetes/pki/ca.crt";
pub const DEFAULT_TOKEN_TTL: &str = "24h0m0s";
pub const DEFAULT_TOKEN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";
/// The taint kubeadm puts on control-plane nodes unless `nodeRegistration.taints` says otherwise.
pub const CONTROL_PLANE_TAINT_KEY: &str = "node-role.kubernetes.io/control-plane";

/// The `PATH` of a root shell on a Linux node: where wasmadm's `exec` capability looks up
/// commands and where preflight looks for required binaries, unless configured otherwise.
pub const SYSTEM_PATH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// [`SYSTEM_PATH`] as owned strings.
pub fn system_path() -> Vec<String> {
    SYSTEM_PATH.map(String::from).to_vec()
}

fn set_if_empty(field: &mut String, value: &str) {
    if field.is_empty() {
        *field = value.to_string();
    }
}

fn default_timeouts(t: &mut Timeouts) {
    let fill = |field: &mut Option<String>, value: &str| {
        field.get_or_insert_with(|| value.to_string());
    };
    fill(&mut t.control_plane_component_health_check, "4m0s");
    fill(&mut t.kubelet_health_check, "4m0s");
    fill(&mut t.kubernetes_api_call, "1m0s");
    fill(&mut t.etcd_api_call, "2m0s");
    fill(&mut t.tls_bootstrap, "5m0s");
    fill(&mut t.discovery, "5m0s");
    fill(&mut t.upgrade_manifests, "5m0s");
}

fn default_node_registration(n: &mut NodeRegistration, node_name: &str, control_plane: bool) {
    set_if_empty(&mut n.name, node_name);
    set_if_empty(&mut n.cri_socket, DEFAULT_CRI_SOCKET);
    set_if_empty(&mut n.image_pull_policy, "IfNotPresent");
    n.image_pull_serial.get_or_insert(true);
    if n.taints.is_none() && control_plane {
        n.taints = Some(vec![Taint {
            key: CONTROL_PLANE_TAINT_KEY.to_string(),
            value: None,
            effect: "NoSchedule".to_string(),
        }]);
    }
    for name in &mut n.ignore_preflight_errors {
        *name = name.to_lowercase();
    }
}

/// Applies kubeadm's defaults to an InitConfiguration. `node_name` is the host's name, used when
/// `nodeRegistration.name` is empty (kubeadm uses the lower-cased hostname).
pub fn init_configuration(c: &mut InitConfiguration, node_name: &str) {
    set_if_empty(&mut c.api_version, API_VERSION);
    set_if_empty(&mut c.kind, "InitConfiguration");
    default_node_registration(&mut c.node_registration, node_name, true);
    if c.local_api_endpoint.bind_port == 0 {
        c.local_api_endpoint.bind_port = DEFAULT_BIND_PORT;
    }
    if c.bootstrap_tokens.is_empty() {
        c.bootstrap_tokens.push(BootstrapToken::default());
    }
    for token in &mut c.bootstrap_tokens {
        if token.ttl.is_none() && token.expires.is_none() {
            token.ttl = Some(DEFAULT_TOKEN_TTL.to_string());
        }
        if token.usages.is_empty() {
            token.usages = vec!["signing".into(), "authentication".into()];
        }
        if token.groups.is_empty() {
            token.groups = vec![DEFAULT_TOKEN_GROUP.into()];
        }
    }
    default_timeouts(&mut c.timeouts);
}

/// Applies kubeadm's defaults to a ClusterConfiguration.
pub fn cluster_configuration(c: &mut ClusterConfiguration) {
    set_if_empty(&mut c.api_version, API_VERSION);
    set_if_empty(&mut c.kind, "ClusterConfiguration");
    set_if_empty(&mut c.kubernetes_version, DEFAULT_KUBERNETES_VERSION);
    set_if_empty(&mut c.networking.service_subnet, DEFAULT_SERVICE_SUBNET);
    set_if_empty(&mut c.networking.dns_domain, DEFAULT_DNS_DOMAIN);
    set_if_empty(&mut c.certificates_dir, DEFAULT_CERTIFICATES_DIR);
    set_if_empty(&mut c.image_repository, DEFAULT_IMAGE_REPOSITORY);
    set_if_empty(&mut c.cluster_name, DEFAULT_CLUSTER_NAME);
    set_if_empty(&mut c.encryption_algorithm, DEFAULT_ENCRYPTION_ALGORITHM);
    c.certificate_validity_period
        .get_or_insert_with(|| "8760h0m0s".into());
    c.ca_certificate_validity_period
        .get_or_insert_with(|| "87600h0m0s".into());
    if c.etcd.external.is_none() {
        let local = c.etcd.local.get_or_insert_with(LocalEtcd::default);
        set_if_empty(&mut local.data_dir, DEFAULT_ETCD_DATA_DIR);
    }
}

/// Applies kubeadm's defaults to a JoinConfiguration.
pub fn join_configuration(c: &mut JoinConfiguration, node_name: &str) {
    set_if_empty(&mut c.api_version, API_VERSION);
    set_if_empty(&mut c.kind, "JoinConfiguration");
    let control_plane = c.control_plane.is_some();
    default_node_registration(&mut c.node_registration, node_name, control_plane);
    set_if_empty(&mut c.ca_cert_path, DEFAULT_CA_CERT_PATH);
    if let Some(cp) = &mut c.control_plane
        && cp.local_api_endpoint.bind_port == 0
    {
        cp.local_api_endpoint.bind_port = DEFAULT_BIND_PORT;
    }
    if let Some(bt) = &c.discovery.bootstrap_token
        && c.discovery.tls_bootstrap_token.is_empty()
    {
        c.discovery.tls_bootstrap_token = bt.token.clone();
    }
    default_timeouts(&mut c.timeouts);
}
