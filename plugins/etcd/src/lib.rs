//! The `etcd` phase (`etcd/local`): the static Pod manifest of a stacked etcd member, and its
//! data directory (mode 0700), as kubeadm writes them. With external etcd it does nothing.

use kubeadm_discovery::SharedPhase;
use static_pod::{
    MANIFESTS_DIR, PodSpec, Probes, Volume, arg_value, command, etcd_version, join_host_port, loopback_of,
    pod, to_yaml,
};
use wasmadm_plugin_sdk::config::{Arg, ClusterConfiguration, InitConfiguration};
use wasmadm_plugin_sdk::types::{PhaseContext, PhaseError, PhaseReport, PluginInfo, SubPhase};
use wasmadm_plugin_sdk::{Context, Plugin, done, export_plugin, files, print};

const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
const METRICS_PORT: u16 = 2381;

/// kubeadm's `GetEtcdProbeEndpoint`: the first URL of a `listen-metrics-urls` extra argument
/// gives the probes' host, port and scheme; without one (or unparsable) they are `localhost`,
/// the metrics port and HTTP.
fn probe_endpoint(extra_args: &[Arg], localhost: &str) -> (String, u16, &'static str) {
    let default = (localhost.to_string(), METRICS_PORT, "HTTP");
    let Some(urls) = arg_value(extra_args, "listen-metrics-urls") else {
        return default;
    };
    let first = urls.split(',').next().unwrap_or_default();
    let Some((scheme, rest)) = first.split_once("://") else {
        return default;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, port)) => (host, port.strip_prefix(':')),
            None => return default,
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    (
        if host.is_empty() { localhost } else { host }.to_string(),
        port.and_then(|p| p.parse().ok())
            .filter(|p| *p != 0)
            .unwrap_or(METRICS_PORT),
        if scheme == "https" { "HTTPS" } else { "HTTP" },
    )
}

/// The etcd manifest for this node: on `init` a new single-member cluster; on a control-plane
/// `join` (`existing`: the `--initial-cluster` of the members with this one) a member of the
/// existing cluster.
pub fn manifest(init: &InitConfiguration, cluster: &ClusterConfiguration, existing: Option<&str>) -> String {
    let local = cluster.etcd.local.clone().unwrap_or_default();
    let name = &init.node_registration.name;
    let ip = &init.local_api_endpoint.advertise_address;
    let url = |port| format!("https://{}", join_host_port(ip, port));
    let localhost = loopback_of(ip);
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
        (
            "initial-cluster",
            existing.map_or_else(|| format!("{name}={}", url(PEER_PORT)), str::to_string),
        ),
        ("key-file", format!("{pki}/server.key")),
        (
            "listen-client-urls",
            format!(
                "https://{},{}",
                join_host_port(localhost, CLIENT_PORT),
                url(CLIENT_PORT)
            ),
        ),
        (
            "listen-metrics-urls",
            format!("http://{}", join_host_port(localhost, METRICS_PORT)),
        ),
        ("listen-peer-urls", url(PEER_PORT)),
        ("name", name.clone()),
        ("peer-cert-file", format!("{pki}/peer.crt")),
        ("peer-client-cert-auth", "true".into()),
        ("peer-key-file", format!("{pki}/peer.key")),
        ("peer-trusted-ca-file", format!("{pki}/ca.crt")),
        ("snapshot-count", "10000".into()),
        ("trusted-ca-file", format!("{pki}/ca.crt")),
    ];
    if existing.is_some() {
        defaults.push(("initial-cluster-state", "existing".into()));
    }
    if etcd_36 {
        defaults.push(("feature-gates", "InitialCorruptCheck=true".into()));
        defaults.push(("watch-progress-notify-interval", "5s".into()));
    } else {
        defaults.push(("experimental-initial-corrupt-check", "true".into()));
        defaults.push(("experimental-watch-progress-notify-interval", "5s".into()));
    }
    let (probe_host, probe_port, probe_scheme) = probe_endpoint(&local.extra_args, localhost);
    let spec = PodSpec {
        component: "etcd".into(),
        image: format!("{repository}/etcd:{tag}"),
        command: command("etcd", &defaults, &local.extra_args),
        port: probe_port,
        probes: Probes {
            host: probe_host,
            scheme: probe_scheme,
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

/// kubeadm's `etcd-join`: this node's member added to the cluster as a learner, its manifest with
/// the members and `initial-cluster-state=existing`, then the learner promoted once it caught up.
/// The cluster's etcd endpoints are those of the etcd mirror Pods (the run's client).
fn join(init: &InitConfiguration, cluster: &ClusterConfiguration) -> Result<(), PhaseError> {
    let endpoints = kubeadm_etcd::cluster_endpoints(&wasmadm_plugin_sdk::apply::cluster()?)?;
    let timeout = kubeadm_etcd::api_call_timeout(&init.timeouts)?;
    let peer_url = format!(
        "https://{}",
        join_host_port(&init.local_api_endpoint.advertise_address, PEER_PORT)
    );
    let (id, members) = kubeadm_etcd::add_learner(&endpoints, &peer_url, timeout)?;
    print("[etcd] Announced new etcd member joining to the existing etcd cluster");
    let initial = kubeadm_etcd::initial_cluster(&members, id, &init.node_registration.name);
    let local = cluster.etcd.local.clone().unwrap_or_default();
    files::create_dir(&local.data_dir, 0o700)?;
    files::create_dir(MANIFESTS_DIR, 0o700)?;
    print("[etcd] Creating static Pod manifest for \"etcd\"");
    files::write(
        &format!("{MANIFESTS_DIR}/etcd.yaml"),
        manifest(init, cluster, Some(&initial)).as_bytes(),
        0o600,
    )?;
    print(&format!(
        "[etcd] Waiting for the new etcd member to join the cluster. This can take up to {}",
        kubeadm_wait::duration::go(
            kubeadm_etcd::HEALTHY_CHECK_INTERVAL * kubeadm_etcd::HEALTHY_CHECK_RETRIES
        )
    ));
    kubeadm_etcd::promote(&endpoints, id, timeout)?;
    // As kubeadm, the new member's own endpoint is checked with the others.
    let mut endpoints = endpoints;
    endpoints.push(format!(
        "https://{}",
        join_host_port(&init.local_api_endpoint.advertise_address, CLIENT_PORT)
    ));
    kubeadm_etcd::wait_cluster_available(&endpoints)
}

impl Plugin for Etcd {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info("etcd", "Generate static Pod manifest file for local etcd");
        info.sub_phases = vec![SubPhase {
            name: "local".into(),
            summary: "Generate the static Pod manifest file for a local, single-node local etcd instance"
                .into(),
        }];
        info.needs.files_write = vec![MANIFESTS_DIR.into(), "/var/lib/etcd".into()];
        // On a control-plane join (kubeadm's etcd-join): the etcd mirror Pods give the cluster's
        // endpoints. The etcd membership grant and the discovery rules are the pipeline's alone
        // (a 0.1 capability request cannot express them).
        info.needs.kube = vec![
            wasmadm_plugin_sdk::apply::admin_binding_rule(),
            wasmadm_plugin_sdk::types::KubeRule::new(&["list"], "", &["pods"])
                .in_namespaces(&["kube-system"]),
        ];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let mut ctx = Context::new(&context)?;
        let outputs = match kubeadm_discovery::prepare_shared_phase(&mut ctx)? {
            SharedPhase::Worker => return Ok(done()),
            SharedPhase::JoiningControlPlane(outputs) => Some(outputs),
            SharedPhase::Init => None,
        };
        let cluster = ctx.cluster_configuration();
        if !ctx.runs("local") || cluster.etcd.external.is_some() {
            return Ok(done());
        }
        let init = ctx.config.init.clone().unwrap_or_default();
        if let Some(outputs) = outputs {
            join(&init, &cluster)?;
            let mut report = done();
            report.outputs = outputs;
            return Ok(report);
        }
        let data_dir = cluster.etcd.local.clone().unwrap_or_default().data_dir;
        print(&format!(
            "[etcd] Creating static Pod manifest for local etcd in {MANIFESTS_DIR:?}"
        ));
        let yaml = manifest(&init, &cluster, None);
        files::create_dir(&data_dir, 0o700)?;
        files::create_dir(MANIFESTS_DIR, 0o700)?;
        files::write(&format!("{MANIFESTS_DIR}/etcd.yaml"), yaml.as_bytes(), 0o600)?;
        Ok(done())
    }
}

export_plugin!(Etcd);

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(urls: &str) -> (String, u16, &'static str) {
        let args = [Arg {
            name: "listen-metrics-urls".into(),
            value: urls.into(),
        }];
        probe_endpoint(&args, "127.0.0.1")
    }

    #[test]
    fn the_probes_follow_the_first_metrics_url_as_in_kubeadm() {
        assert_eq!(probe_endpoint(&[], "::1"), ("::1".into(), 2381, "HTTP"));
        assert_eq!(
            metrics("https://10.0.0.5:9000,http://127.0.0.1:2381"),
            ("10.0.0.5".into(), 9000, "HTTPS")
        );
        assert_eq!(metrics("http://[fd00::5]:2382"), ("fd00::5".into(), 2382, "HTTP"));
        assert_eq!(
            metrics("http://:2383/metrics"),
            ("127.0.0.1".into(), 2383, "HTTP")
        );
        assert_eq!(metrics("http://10.0.0.5"), ("10.0.0.5".into(), 2381, "HTTP"));
        assert_eq!(metrics("10.0.0.5:2384"), ("127.0.0.1".into(), 2381, "HTTP"));
    }
}
