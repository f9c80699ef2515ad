//! The `show-join-command` phase, last of `init`: kubeadm's closing message with the join
//! command for each token — the worker command always, the control-plane one when
//! `controlPlaneEndpoint` is set (with `--certificate-key` when the `upload-certs` phase
//! published one). The endpoint and CA pins come from `admin.conf`, as in kubeadm; the printed
//! commands say `wasmadm` so that they work with the tool that printed them.

use kubeadm_bootstrap_token::cluster_info::kubeconfig_cluster;
use kubeadm_bootstrap_token::join::{JoinCommand, ca_pins, endpoint_of, init_done_message};
use wasmadm_plugin_sdk::types::{PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{Context, Plugin, done, export_plugin, fs, print};

/// The kubeconfig the message tells the user to copy, and the source of endpoint and CA.
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

/// The tokens to print: those the bootstrap-token phase used, else the configured ones.
fn tokens(ctx: &Context<'_>) -> Vec<String> {
    if let Some(list) = ctx
        .input("bootstrap-token.tokens")
        .or_else(|| ctx.input("bootstrap-token.token"))
    {
        return list
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
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
    let control_plane_endpoint = !ctx.cluster_configuration().control_plane_endpoint.is_empty();
    let key = ctx
        .input("upload-certs.certificate-key")
        .filter(|k| !k.is_empty());
    for token in tokens {
        let command = JoinCommand {
            endpoint: endpoint_of(&server),
            token,
            ca_pins: ca_pins.clone(),
            control_plane: None,
        };
        let text = init_done_message(ADMIN_CONF, &command, control_plane_endpoint, key);
        for line in text.strip_suffix('\n').unwrap_or(&text).split('\n') {
            print(line);
        }
    }
    Ok(done())
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
