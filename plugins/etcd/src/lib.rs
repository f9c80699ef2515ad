//! The `etcd` phase (`etcd/local`): the static Pod manifest of a stacked etcd member, and its
//! data directory (mode 0700), as kubeadm writes them. With external etcd it does nothing.

use static_pod::{MANIFESTS_DIR, PodSpec, Probes, Volume, command, etcd_version, pod, to_yaml};
use wasmadm_plugin_sdk::config::{ClusterConfiguration, InitConfiguration};
use wasmadm_plugin_sdk::types::{PhaseContext, PhaseError, PhaseReport, PluginInfo, SubPhase};
use wasmadm_plugin_sdk::{Context, Findings, Plugin, export_plugin, files, print};

const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
const METRICS_PORT: u16 = 2381;

/// The etcd manifest for this node (`init`: a new single-member cluster).
pub fn manifest(init: &InitConfiguration, cluster: &ClusterConfiguration) -> Result<String, String> {
    let local = cluster.etcd.local.clone().unwrap_or_default();
    let name = &init.node_registration.name;
    let ip = &init.local_api_endpoint.advertise_address;
    let url = |port| format!("https://{}", static_pod::join_host_port(ip, port));
    let pki = format!("{}/etcd", cluster.certificates_dir);
    let tag = if local.image_tag.is_empty() {
        etcd_version(&cluster.kubernetes_version).to_string()
    } else {
        local.image_tag.clone()
    };
    let repository = if local.image_repository.is_empty() {
        &cluster.image_repository
    } else {
        &local.image_repository
    };
    // etcd 3.6 renamed its experimental flags; kubeadm follows the image it deploys.
    let etcd_36 = !tag.starts_with("3.5");
    let mut defaults: Vec<(&str, String)> = vec![
        ("advertise-client-urls", url(CLIENT_PORT)),
        ("cert-file", format!("{pki}/server.crt")),
        ("client-cert-auth", "true".into()),
        ("data-dir", local.data_dir.clone()),
        ("initial-advertise-peer-urls", url(PEER_PORT)),
        ("initial-cluster", format!("{name}={}", url(PEER_PORT))),
        ("key-file", format!("{pki}/server.key")),
        (
            "listen-client-urls",
            format!("https://127.0.0.1:{CLIENT_PORT},{}", url(CLIENT_PORT)),
        ),
        ("listen-metrics-urls", format!("http://127.0.0.1:{METRICS_PORT}")),
        ("listen-peer-urls", url(PEER_PORT)),
        ("name", name.clone()),
        ("peer-cert-file", format!("{pki}/peer.crt")),
        ("peer-client-cert-auth", "true".into()),
        ("peer-key-file", format!("{pki}/peer.key")),
        ("peer-trusted-ca-file", format!("{pki}/ca.crt")),
        ("snapshot-count", "10000".into()),
        ("trusted-ca-file", format!("{pki}/ca.crt")),
    ];
    if etcd_36 {
        defaults.push(("feature-gates", "InitialCorruptCheck=true".into()));
        defaults.push(("watch-progress-notify-interval", "5s".into()));
    } else {
        defaults.push(("experimental-initial-corrupt-check", "true".into()));
        defaults.push(("experimental-watch-progress-notify-interval", "5s".into()));
    }
    let spec = PodSpec {
        component: "etcd".into(),
        image: format!("{repository}/etcd:{tag}"),
        command: command("etcd", &defaults, &local.extra_args),
        port: METRICS_PORT,
        probes: Probes {
            host: "127.0.0.1".into(),
            scheme: "HTTP",
            liveness_path: "/livez",
            readiness_path: Some("/readyz"),
            startup_path: "/readyz",
        },
        cpu: "100m",
        memory: Some("100Mi"),
        volumes: vec![
            Volume::new("etcd-data", &local.data_dir, "DirectoryOrCreate", false),
            Volume::new("etcd-certs", &pki, "DirectoryOrCreate", false),
        ],
        annotations: vec![(
            "kubeadm.kubernetes.io/etcd.advertise-client-urls".into(),
            url(CLIENT_PORT),
        )],
        env: local.extra_envs.clone(),
    };
    to_yaml(&pod(&spec))
}

struct Etcd;

impl Plugin for Etcd {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info("etcd", "Generate static Pod manifest file for local etcd");
        info.sub_phases = vec![SubPhase {
            name: "local".into(),
            summary: "Generate the static Pod manifest file for a local, single-node local etcd instance"
                .into(),
        }];
        info.needs.files_write = vec![MANIFESTS_DIR.into(), "/var/lib/etcd".into()];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        let cluster = ctx.cluster();
        if !ctx.runs("local") || cluster.etcd.external.is_some() {
            return Ok(Findings::default().into_report());
        }
        let init = ctx.config.init.clone().unwrap_or_default();
        let data_dir = cluster.etcd.local.clone().unwrap_or_default().data_dir;
        print(&format!(
            "[etcd] Creating static Pod manifest for local etcd in {MANIFESTS_DIR:?}"
        ));
        let yaml = manifest(&init, &cluster).map_err(PhaseError::Failed)?;
        files::create_dir(&data_dir, 0o700)?;
        files::create_dir(MANIFESTS_DIR, 0o700)?;
        files::write(&format!("{MANIFESTS_DIR}/etcd.yaml"), yaml.as_bytes(), 0o600)?;
        Ok(Findings::default().into_report())
    }
}

export_plugin!(Etcd);
