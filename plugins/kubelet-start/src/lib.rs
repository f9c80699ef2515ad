//! The `kubelet-start` phase: writes the kubelet's flags file (`kubeadm-flags.env`), its
//! instance configuration (`instance-config.yaml`, NodeLocalCRISocket) and its configuration
//! (`config.yaml`) as kubeadm v1.36 does, stopping the kubelet meanwhile, then (re)starts it.
//!
//! On `join` ([`join`]) it first finds and verifies the cluster (token discovery), writes the
//! kubelet's bootstrap kubeconfig and the cluster CA, and takes the kubelet configuration from
//! the cluster's `kubelet-config` ConfigMap, as the bootstrap token reads it.

mod join;

use static_pod::command;
use wasmadm_plugin_sdk::config::kubelet::{self as kc, CONFIG_FILE, FLAGS_ENV_FILE, INSTANCE_CONFIG_FILE};
use wasmadm_plugin_sdk::config::{ClusterConfiguration, NodeRegistration};
use wasmadm_plugin_sdk::types::{Command, PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{Context, Plugin, done, export_plugin, files, print, systemd};

/// The kubelet's node-specific flags, as kubeadm's `buildKubeletArgs` (init, control plane): the
/// CRI socket unless NodeLocalCRISocket, `--hostname-override` when the node name differs from
/// the host name, then `kubeletExtraArgs` over them, sorted.
pub fn kubelet_args(node: &NodeRegistration, host_name: &str, node_local_cri_socket: bool) -> Vec<String> {
    let mut defaults: Vec<(&str, String)> = Vec::new();
    if !node_local_cri_socket {
        defaults.push(("container-runtime-endpoint", node.cri_socket.clone()));
    }
    let override_arg = node
        .kubelet_extra_args
        .iter()
        .rev()
        .find(|a| a.name == "hostname-override");
    let node_name = override_arg.map_or(node.name.as_str(), |a| a.value.as_str());
    if node_name != host_name.trim().to_lowercase() {
        defaults.push(("hostname-override", node_name.to_string()));
    }
    command("kubelet", &defaults, &node.kubelet_extra_args)
        .into_iter()
        .skip(1)
        .collect()
}

/// The three files of the phase, computed before anything is touched.
pub struct KubeletFiles {
    pub flags_env: String,
    pub instance_config: Option<String>,
    pub config: String,
}

/// Renders the files for this node. `resolv_conf` is systemd-resolved's file when it is active.
pub fn render(
    cluster: &ClusterConfiguration,
    node: &NodeRegistration,
    user: Option<&serde_json::Value>,
    host_name: &str,
    resolv_conf: Option<&str>,
) -> Result<KubeletFiles, String> {
    let cluster_wide = kc::configuration(cluster, user, resolv_conf).map_err(|e| e.to_string())?;
    let local = kc::node_local_cri_socket(cluster);
    Ok(node_files(
        &cluster_wide,
        local,
        node,
        kubelet_args(node, host_name, local),
    ))
}

/// The node's files from the cluster-wide configuration and the kubelet's flags.
pub fn node_files(
    cluster_wide: &serde_json::Value,
    node_local_cri_socket: bool,
    node: &NodeRegistration,
    args: Vec<String>,
) -> KubeletFiles {
    let socket = node_local_cri_socket.then_some(node.cri_socket.as_str());
    KubeletFiles {
        flags_env: kc::flags_env(&args),
        instance_config: socket.map(kc::instance_config),
        config: wasmadm_plugin_sdk::config::yaml::to_string(&kc::node_configuration(cluster_wide, socket)),
    }
}

/// Writes the instance configuration (with kubeadm's patch line) and `config.yaml`.
fn write_config(files_: &KubeletFiles) -> Result<(), PhaseError> {
    if let Some(instance) = &files_.instance_config {
        print(&format!(
            "[kubelet-start] Writing kubelet configuration to file {INSTANCE_CONFIG_FILE:?}"
        ));
        files::write(INSTANCE_CONFIG_FILE, instance.as_bytes(), 0o644)?;
        print(
            "[patches] Applied patch of type \"application/strategic-merge-patch+json\" to target \"kubeletconfiguration\"",
        );
    }
    print(&format!(
        "[kubelet-start] Writing kubelet configuration to file {CONFIG_FILE:?}"
    ));
    files::write(CONFIG_FILE, files_.config.as_bytes(), 0o644)?;
    Ok(())
}

fn write_flags(files_: &KubeletFiles) -> Result<(), PhaseError> {
    print(&format!(
        "[kubelet-start] Writing kubelet environment file with flags to file {FLAGS_ENV_FILE:?}"
    ));
    files::write(FLAGS_ENV_FILE, files_.flags_env.as_bytes(), 0o644)?;
    Ok(())
}

struct KubeletStart;

impl Plugin for KubeletStart {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info(
            "kubelet-start",
            "Write kubelet settings and (re)start the kubelet",
        );
        info.needs.files_write = vec![
            FLAGS_ENV_FILE.into(),
            INSTANCE_CONFIG_FILE.into(),
            CONFIG_FILE.into(),
            // On join: the kubelet's bootstrap kubeconfig and the cluster CA it trusts.
            join::BOOTSTRAP_KUBELET_CONF.into(),
            "/etc/kubernetes/pki/ca.crt".into(),
        ];
        // On join it also reads, through `kube.connect` (rules a 0.1 capability request cannot
        // express; the default pipeline grants them): cluster-info anonymously at
        // {discoveryEndpoint}, and as the bootstrap token ConfigMaps kubeadm-config and
        // kubelet-config in kube-system and this node's Node.
        info.needs.exec = vec![
            systemd::rule(&["status", "kubelet"], true),
            systemd::rule(&["is-active", "systemd-resolved"], true),
            systemd::rule(&["stop", "kubelet"], false),
            systemd::rule(&["daemon-reload"], false),
            systemd::rule(&["restart", "kubelet"], false),
        ];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        let host_name = ctx.input("node.hostname").ok_or_else(|| {
            PhaseError::Failed(
                "the host did not hand this phase the node's hostname (input node.hostname)".into(),
            )
        })?;
        if ctx.command() == Command::Join {
            return join::run(&ctx, host_name);
        }
        let cluster = ctx.cluster_configuration();
        let node = ctx.node_registration();
        let user = ctx.config.components.get(kc::KIND);
        // Everything is computed (and refused if invalid) before the kubelet is stopped.
        let resolv_conf = systemd::resolv_conf()?;
        let files_ =
            render(&cluster, &node, user, host_name, resolv_conf).map_err(PhaseError::InvalidConfig)?;
        systemd::try_stop_kubelet()?;
        // kubeadm's os.MkdirAll(/var/lib/kubelet, 0700): its missing parents get 0700 too.
        files::create_dir("/var/lib/kubelet", 0o700)?;
        write_flags(&files_)?;
        write_config(&files_)?;
        print("[kubelet-start] Starting the kubelet");
        systemd::try_start_kubelet()?;
        Ok(done())
    }
}

export_plugin!(KubeletStart);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmadm_plugin_sdk::config::{Arg, defaults};

    fn node(name: &str) -> NodeRegistration {
        let mut n = NodeRegistration {
            name: name.into(),
            ..Default::default()
        };
        n.cri_socket = defaults::DEFAULT_CRI_SOCKET.into();
        n
    }

    #[test]
    fn hostname_override_only_when_names_differ() {
        assert_eq!(kubelet_args(&node("n1"), "N1\n", true), Vec::<String>::new());
        assert_eq!(kubelet_args(&node("n1"), "box", true), ["--hostname-override=n1"]);
        let mut n = node("n1");
        n.kubelet_extra_args = vec![Arg {
            name: "node-ip".into(),
            value: "10.0.0.1".into(),
        }];
        assert_eq!(
            kubelet_args(&n, "box", false),
            [
                "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
                "--hostname-override=n1",
                "--node-ip=10.0.0.1"
            ]
        );
    }
}
