//! The `show-join-command` phase, last of `init`: kubeadm's closing message with the join
//! command for each token — the worker command always, the control-plane one when
//! `controlPlaneEndpoint` is set (with `--certificate-key` when the `upload-certs` phase
//! published one). The endpoint and CA pins come from `admin.conf`, as in kubeadm; the printed
//! commands say `wasmadm` so that they work with the tool that printed them.

use kubeadm_bootstrap_token::cluster_info::kubeconfig_cluster;
use kubeadm_bootstrap_token::join::{ControlPlane, JoinCommand, PROGRAM, ca_pins, endpoint_of};
use wasmadm_plugin_sdk::types::{PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{Context, Findings, Plugin, export_plugin, fs, print};

/// The kubeconfig the message tells the user to copy, and the source of endpoint and CA.
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

/// The texts around the join commands: kubeadm's `initDoneTempl`, line for line.
const HEADER: &str = "
Your Kubernetes control-plane has initialized successfully!

To start using your cluster, you need to run the following as a regular user:

  mkdir -p $HOME/.kube
  sudo cp -i ADMIN_CONF $HOME/.kube/config
  sudo chown $(id -u):$(id -g) $HOME/.kube/config

Alternatively, if you are the root user, you can run:

  export KUBECONFIG=/etc/kubernetes/admin.conf

You should now deploy a pod network to the cluster.
Run \"kubectl apply -f [podnetwork].yaml\" with one of the options listed at:
  https://kubernetes.io/docs/concepts/cluster-administration/addons/

";

const CONTROL_PLANE_UPLOADED: &str = "\
You can now join any number of the control-plane node running the following command on each as root:

  COMMAND

Please note that the certificate-key gives access to cluster sensitive data, keep it secret!
As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use
\"PROGRAM init phase upload-certs --upload-certs\" to reload certs afterward.

";

const CONTROL_PLANE_MANUAL: &str = "\
You can now join any number of control-plane nodes by copying certificate authorities
and service account keys on each node and then running the following as root:

  COMMAND

";

const WORKER: &str = "\
Then you can join any number of worker nodes by running the following on each as root:

COMMAND
";

/// The whole message for one token.
pub fn message(command: &JoinCommand, control_plane_endpoint: bool, certificate_key: Option<&str>) -> String {
    let mut out = HEADER.replace("ADMIN_CONF", ADMIN_CONF);
    if control_plane_endpoint {
        let cp = JoinCommand {
            control_plane: Some(ControlPlane {
                certificate_key: certificate_key.map(str::to_string),
            }),
            ..command.clone()
        };
        let text = if certificate_key.is_some() { CONTROL_PLANE_UPLOADED } else { CONTROL_PLANE_MANUAL };
        out.push_str(&text.replace("COMMAND", &cp.multi_line()).replace("PROGRAM", PROGRAM));
    }
    let worker = JoinCommand {
        control_plane: None,
        ..command.clone()
    };
    out.push_str(&WORKER.replace("COMMAND", &worker.multi_line()));
    out
}

/// The tokens to print: those the bootstrap-token phase used, else the configured ones.
fn tokens(ctx: &Context<'_>) -> Vec<String> {
    if let Some(list) = ctx.input("bootstrap-token.tokens").or_else(|| ctx.input("bootstrap-token.token")) {
        return list.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect();
    }
    ctx.config
        .init
        .iter()
        .flat_map(|i| &i.bootstrap_tokens)
        .filter(|t| !t.token.is_empty())
        .map(|t| t.token.clone())
        .collect()
}

fn run(ctx: &Context<'_>) -> Result<PhaseReport, PhaseError> {
    let tokens = tokens(ctx);
    if tokens.is_empty() {
        return Err(PhaseError::InvalidConfig(
            "no bootstrap token to print: run the bootstrap-token phase in the same run, or set \
             bootstrapTokens[0].token in the configuration"
                .into(),
        ));
    }
    let admin = fs::read_string(ADMIN_CONF)?;
    let (server, ca) = kubeconfig_cluster(&admin)
        .map_err(|e| PhaseError::Failed(format!("{ADMIN_CONF}: {e}; run the kubeconfig phase first")))?;
    let ca_pins = ca_pins(&ca).map_err(|e| PhaseError::Failed(format!("{ADMIN_CONF}: {e}")))?;
    let control_plane_endpoint = !ctx.cluster().control_plane_endpoint.is_empty();
    let key = ctx.input("upload-certs.certificate-key").filter(|k| !k.is_empty());
    for token in tokens {
        let command = JoinCommand {
            endpoint: endpoint_of(&server),
            token,
            ca_pins: ca_pins.clone(),
            control_plane: None,
        };
        let text = message(&command, control_plane_endpoint, key);
        for line in text.strip_suffix('\n').unwrap_or(&text).split('\n') {
            print(line);
        }
    }
    Ok(Findings::default().into_report())
}

struct ShowJoinCommand;

impl Plugin for ShowJoinCommand {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info(
            "show-join-command",
            "Show the join command for control-plane and worker node",
        );
        info.needs.files_read = vec![ADMIN_CONF.into()];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        run(&Context::new(&context)?)
    }
}

export_plugin!(ShowJoinCommand);
