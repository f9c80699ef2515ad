//! kubelet-start on `join` (kubeadm v1.36's `runKubeletStartJoinPhase` with the cluster
//! configuration kubeadm reads beforehand): discovery, the cluster's configuration as the
//! bootstrap token reads it, the refusal of a name a Ready Node already has, the bootstrap
//! kubeconfig and CA, then the kubelet's files as on `init` but from the cluster's
//! `kubelet-config`, and a kubelet restart. Waiting for the kubelet is `kubelet-wait-bootstrap`'s.

use crate::{KubeletFiles, kubelet_args, node_files, write_config, write_flags};
use kubeadm_discovery::Discovered;
use serde_json::Value;
use wasmadm_plugin_sdk::config::NodeRegistration;
use wasmadm_plugin_sdk::config::kubelet as kc;
use wasmadm_plugin_sdk::kube::{Client, ErrorCode};
use wasmadm_plugin_sdk::types::{PhaseError, PhaseReport};
use wasmadm_plugin_sdk::{Context, ErrorText, apply, done, files, print, systemd};

pub const BOOTSTRAP_KUBELET_CONF: &str = "/etc/kubernetes/bootstrap-kubelet.conf";

pub fn run(ctx: &Context, host_name: &str) -> Result<PhaseReport, PhaseError> {
    let join = ctx.config.join.clone().unwrap_or_default();
    let node = ctx.node_registration();
    let mut discovered = kubeadm_discovery::discover(&ctx.config)?;
    let client = discovered.client()?;
    if ctx.is_control_plane() {
        // A joining control plane's kubelet bootstraps against its own API server (kubeadm
        // rewrites the bootstrap kubeconfig's server to the local endpoint).
        let local = ctx.config.local_api_endpoint();
        discovered.server = format!(
            "https://{}",
            static_pod::join_host_port(&local.advertise_address, local.bind_port)
        );
    }
    let outputs = kubeadm_discovery::announce_config_read(ctx);
    let cluster = kubeadm_discovery::cluster_configuration(&client)?;
    let mut cluster_wide = kubeadm_discovery::kubelet_configuration(&client)?;
    refuse_ready_node(&client, &node.name)?;
    // Everything is read and computed (and refused if wrong) before anything is written.
    if let Some(path) = systemd::resolv_conf()?
        && cluster_wide
            .get("resolvConf")
            .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
    {
        cluster_wide["resolvConf"] = Value::String(path.into());
    }
    let local = kc::node_local_cri_socket(&cluster);
    let files_: KubeletFiles = node_files(
        &cluster_wide,
        local,
        &node,
        worker_args(ctx, &node, host_name, local),
    );

    files::create_dir("/etc/kubernetes", 0o755)?;
    files::write(
        BOOTSTRAP_KUBELET_CONF,
        discovered.bootstrap_kubeconfig().as_bytes(),
        0o600,
    )?;
    write_ca_if_missing(&join.ca_cert_path, &discovered)?;
    systemd::try_stop_kubelet()?;
    files::create_dir("/var/lib/kubelet", 0o700)?;
    write_config(&files_)?;
    write_flags(&files_)?;
    print("[kubelet-start] Starting the kubelet");
    systemd::try_start_kubelet()?;
    let mut report = done();
    report.outputs = outputs;
    Ok(report)
}

/// kubeadm's flags for a joining node: a worker registers its taints with a flag.
fn worker_args(ctx: &Context, node: &NodeRegistration, host_name: &str, local: bool) -> Vec<String> {
    let mut node = node.clone();
    if !ctx.is_control_plane()
        && let Some(taints) = node.taints.as_ref().filter(|t| !t.is_empty())
    {
        let value = taints
            .iter()
            .map(|t| match &t.value {
                Some(v) if !v.is_empty() => format!("{}={v}:{}", t.key, t.effect),
                _ => format!("{}:{}", t.key, t.effect),
            })
            .collect::<Vec<_>>()
            .join(",");
        // Extra args of the same name win, as with every default flag.
        node.kubelet_extra_args.insert(
            0,
            wasmadm_plugin_sdk::config::Arg {
                name: "register-with-taints".into(),
                value,
            },
        );
    }
    kubelet_args(&node, host_name, local)
}

/// kubeadm refuses to bootstrap a kubelet under the name of a Ready Node (one that is not Ready
/// is taken over silently).
fn refuse_ready_node(client: &Client, name: &str) -> Result<(), PhaseError> {
    let node = match client.get(&apply::nodes(), None, name) {
        Ok(text) => apply::parse(&text)?,
        Err(e) if e.code == ErrorCode::NotFound => return Ok(()),
        Err(e) if e.code == ErrorCode::Denied => return Err(PhaseError::Denied(e.message)),
        Err(e) => {
            return Err(PhaseError::Failed(format!(
                "cannot get Node {name:?}: {}",
                e.text()
            )));
        }
    };
    let ready = node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    if ready {
        return Err(PhaseError::Failed(format!(
            "a Node with name {name:?} and status \"Ready\" already exists in the cluster. You must \
             delete the existing Node or change the name of this new joining Node"
        )));
    }
    Ok(())
}

/// The cluster CA for the kubelet, unless the file exists (kubeadm leaves it untouched).
fn write_ca_if_missing(path: &str, discovered: &Discovered) -> Result<(), PhaseError> {
    let path = if path.is_empty() {
        "/etc/kubernetes/pki/ca.crt"
    } else {
        path
    };
    match files::stat(path) {
        Ok(_) => return Ok(()),
        Err(e) if e.code == files::ErrorCode::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    if let Some((dir, _)) = path.rsplit_once('/').filter(|(d, _)| !d.is_empty()) {
        files::create_dir(dir, 0o755)?;
    }
    files::write(path, &discovered.ca_pem, 0o644)?;
    Ok(())
}
