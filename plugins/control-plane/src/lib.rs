//! The `control-plane` phase (`apiserver`, `controller-manager`, `scheduler`): the static Pod
//! manifests of the control-plane components, as kubeadm writes them. The controller-manager
//! runs the `bootstrapsigner` and `tokencleaner` controllers and signs with the cluster CA.

use static_pod::{
    MANIFESTS_DIR, PodSpec, Probes, Volume, arg_value, command, join_host_port, loopback_of, pod,
    probe_address, to_yaml, with_extra_volumes,
};
use wasmadm_plugin_sdk::config::Arg;
use wasmadm_plugin_sdk::config::{ClusterConfiguration, EnvVar, InitConfiguration};
use wasmadm_plugin_sdk::types::{PhaseContext, PhaseError, PhaseReport, PluginInfo, SubPhase};
use wasmadm_plugin_sdk::{Context, Plugin, done, export_plugin, files, fs, print};

/// Host directories with CA bundles that kubeadm mounts into the API server and the
/// controller-manager when they exist on the node (besides `/etc/ssl/certs`, always mounted).
pub const CA_CERT_DIRS: [&str; 4] = [
    "/etc/pki",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
    "/etc/ca-certificates",
];

const COMPONENTS: [(&str, &str); 3] = [
    ("apiserver", "kube-apiserver"),
    ("controller-manager", "kube-controller-manager"),
    ("scheduler", "kube-scheduler"),
];

/// What the node has that changes the manifests: which CA bundle directories exist, and the
/// proxy variables of the environment wasmadm runs in.
#[derive(Debug, Default, Clone)]
pub struct NodeFacts {
    pub ca_dirs: Vec<String>,
    /// Every variable whose name ends with `_proxy` in any case (kubeadm's `GetProxyEnvVars`):
    /// the API server, controller-manager and scheduler get them, under their `extraEnvs`.
    pub proxy_env: Vec<EnvVar>,
}

impl NodeFacts {
    /// A component's environment: the proxy variables, then its `extraEnvs` (which win on the
    /// same name; the manifest lists one variable per name, sorted).
    fn env(&self, extra: &[EnvVar]) -> Vec<EnvVar> {
        self.proxy_env.iter().chain(extra).cloned().collect()
    }
}

/// The proxy variables of the plugin's environment (the pipeline's `env` grant decides which
/// of the host's it sees: `*_proxy` by default).
fn proxy_env() -> Vec<EnvVar> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(name, _)| name.to_ascii_lowercase().ends_with("_proxy"))
        .map(|(name, value)| EnvVar { name, value })
        .collect()
}

fn ca_volumes(cluster: &ClusterConfiguration, node: &NodeFacts) -> Vec<Volume> {
    let mut volumes = vec![
        Volume::new("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", true),
        Volume::new("k8s-certs", &cluster.certificates_dir, "DirectoryOrCreate", true),
    ];
    for dir in &node.ca_dirs {
        volumes.push(Volume::new(
            &dir.trim_start_matches('/').replace('/', "-"),
            dir,
            "DirectoryOrCreate",
            true,
        ));
    }
    volumes
}

/// The probe host of the controller-manager and the scheduler: their `bind-address` if given
/// (kubeadm's `GetControllerManagerProbeAddress`, `GetSchedulerProbeAddress`), else loopback.
fn bind_probe_host(extra_args: &[Arg]) -> String {
    arg_value(extra_args, "bind-address")
        .map_or("127.0.0.1", probe_address)
        .to_string()
}

fn image(cluster: &ClusterConfiguration, component: &str) -> String {
    format!(
        "{}/{component}:{}",
        cluster.image_repository, cluster.kubernetes_version
    )
}

/// The kube-apiserver manifest.
pub fn apiserver(init: &InitConfiguration, cluster: &ClusterConfiguration, node: &NodeFacts) -> String {
    let ip = &init.local_api_endpoint.advertise_address;
    let port = init.local_api_endpoint.bind_port;
    let pki = &cluster.certificates_dir;
    let etcd_servers = match &cluster.etcd.external {
        Some(external) => external.endpoints.join(","),
        None => format!("https://{}", join_host_port(loopback_of(ip), 2379)),
    };
    let (etcd_ca, etcd_cert, etcd_key) = match &cluster.etcd.external {
        Some(e) => (e.ca_file.clone(), e.cert_file.clone(), e.key_file.clone()),
        None => (
            format!("{pki}/etcd/ca.crt"),
            format!("{pki}/apiserver-etcd-client.crt"),
            format!("{pki}/apiserver-etcd-client.key"),
        ),
    };
    let defaults: Vec<(&str, String)> = vec![
        ("advertise-address", ip.clone()),
        ("allow-privileged", "true".into()),
        ("authorization-mode", "Node,RBAC".into()),
        ("client-ca-file", format!("{pki}/ca.crt")),
        ("enable-admission-plugins", "NodeRestriction".into()),
        ("enable-bootstrap-token-auth", "true".into()),
        ("etcd-cafile", etcd_ca),
        ("etcd-certfile", etcd_cert),
        ("etcd-keyfile", etcd_key),
        ("etcd-servers", etcd_servers),
        (
            "kubelet-client-certificate",
            format!("{pki}/apiserver-kubelet-client.crt"),
        ),
        (
            "kubelet-client-key",
            format!("{pki}/apiserver-kubelet-client.key"),
        ),
        (
            "kubelet-preferred-address-types",
            "InternalIP,ExternalIP,Hostname".into(),
        ),
        ("proxy-client-cert-file", format!("{pki}/front-proxy-client.crt")),
        ("proxy-client-key-file", format!("{pki}/front-proxy-client.key")),
        ("requestheader-allowed-names", "front-proxy-client".into()),
        (
            "requestheader-client-ca-file",
            format!("{pki}/front-proxy-ca.crt"),
        ),
        ("requestheader-extra-headers-prefix", "X-Remote-Extra-".into()),
        ("requestheader-group-headers", "X-Remote-Group".into()),
        ("requestheader-username-headers", "X-Remote-User".into()),
        ("secure-port", port.to_string()),
        (
            "service-account-issuer",
            format!("https://kubernetes.default.svc.{}", cluster.networking.dns_domain),
        ),
        ("service-account-key-file", format!("{pki}/sa.pub")),
        ("service-account-signing-key-file", format!("{pki}/sa.key")),
        (
            "service-cluster-ip-range",
            cluster.networking.service_subnet.clone(),
        ),
        ("tls-cert-file", format!("{pki}/apiserver.crt")),
        ("tls-private-key-file", format!("{pki}/apiserver.key")),
    ];
    let spec = PodSpec {
        component: "kube-apiserver".into(),
        image: image(cluster, "kube-apiserver"),
        command: command("kube-apiserver", &defaults, &cluster.api_server.extra_args),
        port,
        probes: Probes {
            host: match ip.as_str() {
                "" => "127.0.0.1".into(),
                ip => probe_address(ip).into(),
            },
            scheme: "HTTPS",
            liveness_path: "/livez",
            readiness_path: Some("/readyz"),
            startup_path: "/livez",
        },
        cpu: "250m",
        memory: None,
        volumes: with_extra_volumes(ca_volumes(cluster, node), &cluster.api_server.extra_volumes),
        annotations: vec![(
            "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint".into(),
            join_host_port(ip, port),
        )],
        env: node.env(&cluster.api_server.extra_envs),
    };
    to_yaml(&pod(&spec))
}

/// The kube-controller-manager manifest.
pub fn controller_manager(cluster: &ClusterConfiguration, node: &NodeFacts) -> String {
    let pki = &cluster.certificates_dir;
    let kubeconfig = "/etc/kubernetes/controller-manager.conf";
    let mut defaults: Vec<(&str, String)> = vec![
        ("authentication-kubeconfig", kubeconfig.into()),
        ("authorization-kubeconfig", kubeconfig.into()),
        ("bind-address", "127.0.0.1".into()),
        ("client-ca-file", format!("{pki}/ca.crt")),
        ("cluster-name", cluster.cluster_name.clone()),
        ("cluster-signing-cert-file", format!("{pki}/ca.crt")),
        ("cluster-signing-key-file", format!("{pki}/ca.key")),
        ("controllers", "*,bootstrapsigner,tokencleaner".into()),
        ("kubeconfig", kubeconfig.into()),
        ("leader-elect", "true".into()),
        (
            "requestheader-client-ca-file",
            format!("{pki}/front-proxy-ca.crt"),
        ),
        ("root-ca-file", format!("{pki}/ca.crt")),
        ("service-account-private-key-file", format!("{pki}/sa.key")),
        ("use-service-account-credentials", "true".into()),
    ];
    if !cluster.networking.pod_subnet.is_empty() {
        defaults.push(("allocate-node-cidrs", "true".into()));
        defaults.push(("cluster-cidr", cluster.networking.pod_subnet.clone()));
        defaults.push((
            "service-cluster-ip-range",
            cluster.networking.service_subnet.clone(),
        ));
    }
    let mut volumes = ca_volumes(cluster, node);
    volumes.push(Volume::new("kubeconfig", kubeconfig, "FileOrCreate", true));
    let spec = PodSpec {
        component: "kube-controller-manager".into(),
        image: image(cluster, "kube-controller-manager"),
        command: command(
            "kube-controller-manager",
            &defaults,
            &cluster.controller_manager.extra_args,
        ),
        port: 10257,
        probes: Probes {
            host: bind_probe_host(&cluster.controller_manager.extra_args),
            scheme: "HTTPS",
            liveness_path: "/healthz",
            readiness_path: None,
            startup_path: "/healthz",
        },
        cpu: "200m",
        memory: None,
        volumes: with_extra_volumes(volumes, &cluster.controller_manager.extra_volumes),
        annotations: Vec::new(),
        env: node.env(&cluster.controller_manager.extra_envs),
    };
    to_yaml(&pod(&spec))
}

/// The kube-scheduler manifest.
pub fn scheduler(cluster: &ClusterConfiguration, node: &NodeFacts) -> String {
    let kubeconfig = "/etc/kubernetes/scheduler.conf";
    let defaults: Vec<(&str, String)> = vec![
        ("authentication-kubeconfig", kubeconfig.into()),
        ("authorization-kubeconfig", kubeconfig.into()),
        ("bind-address", "127.0.0.1".into()),
        ("kubeconfig", kubeconfig.into()),
        ("leader-elect", "true".into()),
    ];
    let spec = PodSpec {
        component: "kube-scheduler".into(),
        image: image(cluster, "kube-scheduler"),
        command: command("kube-scheduler", &defaults, &cluster.scheduler.extra_args),
        port: 10259,
        probes: Probes {
            host: bind_probe_host(&cluster.scheduler.extra_args),
            scheme: "HTTPS",
            liveness_path: "/livez",
            readiness_path: Some("/readyz"),
            startup_path: "/livez",
        },
        cpu: "100m",
        memory: None,
        volumes: with_extra_volumes(
            vec![Volume::new("kubeconfig", kubeconfig, "FileOrCreate", true)],
            &cluster.scheduler.extra_volumes,
        ),
        annotations: Vec::new(),
        env: node.env(&cluster.scheduler.extra_envs),
    };
    to_yaml(&pod(&spec))
}

struct ControlPlane;

impl Plugin for ControlPlane {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info(
            "control-plane",
            "Generate all static Pod manifest files necessary to establish the control plane",
        );
        info.sub_phases = COMPONENTS
            .iter()
            .map(|(name, component)| SubPhase {
                name: name.to_string(),
                summary: format!("Generates the {component} static Pod manifest"),
            })
            .collect();
        info.needs.files_read = CA_CERT_DIRS.map(String::from).to_vec();
        info.needs.files_write = vec![MANIFESTS_DIR.into()];
        info.needs.env = vec!["*_proxy".into()];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let mut ctx = Context::new(&context)?;
        // A control-plane join writes the same manifests with this node's address, from the
        // cluster's configuration; a worker none.
        let outputs = match kubeadm_discovery::prepare_shared_phase(&mut ctx)? {
            kubeadm_discovery::SharedPhase::Worker => return Ok(done()),
            kubeadm_discovery::SharedPhase::JoiningControlPlane(outputs) => outputs,
            kubeadm_discovery::SharedPhase::Init => Vec::new(),
        };
        let cluster = ctx.cluster_configuration();
        let init = ctx.config.init.clone().unwrap_or_default();
        let mut node = NodeFacts {
            proxy_env: proxy_env(),
            ..NodeFacts::default()
        };
        for dir in CA_CERT_DIRS {
            if fs::exists(dir)? {
                node.ca_dirs.push(dir.to_string());
            }
        }
        print(&format!(
            "[control-plane] Using manifest folder {MANIFESTS_DIR:?}"
        ));
        files::create_dir(MANIFESTS_DIR, 0o700)?;
        for (name, component) in COMPONENTS {
            if !ctx.runs(name) {
                continue;
            }
            print(&format!(
                "[control-plane] Creating static Pod manifest for {component:?}"
            ));
            let yaml = match name {
                "apiserver" => apiserver(&init, &cluster, &node),
                "controller-manager" => controller_manager(&cluster, &node),
                _ => scheduler(&cluster, &node),
            };
            files::write(
                &format!("{MANIFESTS_DIR}/{component}.yaml"),
                yaml.as_bytes(),
                0o600,
            )?;
        }
        let mut report = done();
        report.outputs = outputs;
        Ok(report)
    }
}

export_plugin!(ControlPlane);
