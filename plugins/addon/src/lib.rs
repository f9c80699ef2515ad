//! The `addon` phase: kubeadm's essential addons, CoreDNS and kube-proxy, created (or updated)
//! through the API server exactly as kubeadm v1.36 creates them. Each object is applied with
//! create-or-update, and one already stored as wanted is left alone, so a second run changes
//! nothing. `dns.disabled` / `proxy.disabled` skip a sub-phase (the runner already drops it for
//! a whole `init`; the plugin says so when it is asked for one directly).

pub mod coredns;
pub mod net;
pub mod proxy;
mod targets;

use serde_json::Value;
use targets::apply;
use wasmadm_plugin_sdk::apply::{self as sdk_apply, resource};
use wasmadm_plugin_sdk::config::ClusterConfiguration;
use wasmadm_plugin_sdk::kube::Client;
use wasmadm_plugin_sdk::types::{PhaseContext, PhaseError, PhaseReport, PluginInfo, SubPhase};
use wasmadm_plugin_sdk::{Context, Plugin, done, export_plugin, log, print};

/// The namespace of every namespaced addon object.
pub const NS: &str = "kube-system";

/// ServiceAccount `name` in kube-system.
pub fn service_account(name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": NS},
    })
}

/// ClusterRoleBinding `name` of ClusterRole `role` to kube-system's ServiceAccount `account`.
pub fn service_account_binding(name: &str, role: &str, account: &str) -> Value {
    serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": NS}],
    })
}

/// The replicas of a deployed CoreDNS (kubeadm keeps a user's scaling), else 2.
fn dns_replicas(client: &Client) -> Result<i64, PhaseError> {
    let ty = resource("apps", "v1", "Deployment", "deployments", true);
    let list = client
        .list(&ty, Some(NS), Some("k8s-app=kube-dns"))
        .map_err(sdk_apply::context("couldn't retrieve DNS addon deployments"))?;
    let list: Value = serde_json::from_str(&list)
        .map_err(|e| PhaseError::Failed(format!("couldn't read the DNS addon deployments: {e}")))?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    match items.as_slice() {
        [] => Ok(coredns::DEFAULT_REPLICAS),
        [one] => Ok(one["spec"]["replicas"]
            .as_i64()
            .unwrap_or(coredns::DEFAULT_REPLICAS)),
        many => Err(PhaseError::Failed(format!(
            "multiple DNS addon deployments found: {}; delete all but one (kube-system, label k8s-app=kube-dns)",
            many.iter()
                .map(|d| d["metadata"]["name"].as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn install_coredns(client: &Client, cluster: &ClusterConfiguration) -> Result<(), PhaseError> {
    let ip = net::dns_ip(&cluster.networking.service_subnet).map_err(PhaseError::InvalidConfig)?;
    let replicas = dns_replicas(client)?;
    for object in [
        coredns::config_map(&cluster.networking.dns_domain),
        coredns::cluster_role(),
        service_account_binding("system:coredns", "system:coredns", "coredns"),
        service_account("coredns"),
        coredns::deployment(&coredns::image(cluster), replicas),
        coredns::service(&ip.to_string()),
    ] {
        apply(client, &object)?;
    }
    print("[addons] Applied essential addon: CoreDNS");
    Ok(())
}

fn install_kube_proxy(
    ctx: &Context,
    client: &Client,
    cluster: &ClusterConfiguration,
) -> Result<(), PhaseError> {
    let init = ctx.config.init.clone().unwrap_or_default();
    let endpoint = &init.local_api_endpoint;
    let port = if endpoint.bind_port == 0 {
        6443
    } else {
        endpoint.bind_port
    };
    let server = net::api_server_url(&cluster.control_plane_endpoint, &endpoint.advertise_address, port)
        .map_err(PhaseError::InvalidConfig)?;
    let user = ctx.config.components.get("KubeProxyConfiguration");
    let config = proxy::config(user, &cluster.networking.pod_subnet, &endpoint.advertise_address)
        .map_err(PhaseError::InvalidConfig)?;
    for warning in &config.warnings {
        log::log(log::Level::Warn, warning);
    }
    let image = format!(
        "{}/kube-proxy:{}",
        cluster.image_repository,
        cluster.kubernetes_version.replace('+', "_")
    );
    for object in [
        service_account("kube-proxy"),
        proxy::config_map(&config.yaml, &server, user.is_some()),
        proxy::daemon_set(&image),
        // kube-proxy's ServiceAccount gets system:node-proxier.
        service_account_binding("kubeadm:node-proxier", "system:node-proxier", "kube-proxy"),
        proxy::role(),
        proxy::role_binding(),
    ] {
        apply(client, &object)?;
    }
    print("[addons] Applied essential addon: kube-proxy");
    Ok(())
}

struct Addon;

impl Plugin for Addon {
    fn describe() -> PluginInfo {
        let mut info =
            wasmadm_plugin_sdk::info("addon", "Install required addons for passing conformance tests");
        info.sub_phases = vec![
            SubPhase {
                name: "coredns".into(),
                summary: "Install the CoreDNS addon to a Kubernetes cluster".into(),
            },
            SubPhase {
                name: "kube-proxy".into(),
                summary: "Install the kube-proxy addon to a Kubernetes cluster".into(),
            },
        ];
        info.needs.kube = targets::kube_rules();
        info.needs.kube.insert(0, sdk_apply::admin_binding_rule());
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        let cluster = ctx.cluster_configuration();
        let dns = ctx.runs("coredns");
        let proxy = ctx.runs("kube-proxy");
        if dns && cluster.dns.disabled {
            print("[addons] Skipping the addon/coredns phase. The addon is disabled.");
        }
        if proxy && cluster.proxy.disabled {
            print("[addons] Skipping the addon/kube-proxy phase. The addon is disabled.");
        }
        let dns = dns && !cluster.dns.disabled;
        let proxy = proxy && !cluster.proxy.disabled;
        if !dns && !proxy {
            return Ok(done());
        }
        let client = sdk_apply::cluster()?;
        if dns {
            install_coredns(&client, &cluster)?;
        }
        if proxy {
            install_kube_proxy(&ctx, &client, &cluster)?;
        }
        Ok(done())
    }
}

export_plugin!(Addon);
