//! The `kubelet-finalize` phase (`enable-client-cert-rotation`): once the kubelet has a rotating
//! client certificate (`<cert-dir>/kubelet-client-current.pem`), kubeadm rewrites
//! `/etc/kubernetes/kubelet.conf` to use that file instead of the embedded certificate it wrote,
//! and restarts the kubelet. Without the file (rotation off, or no kubelet yet) it does nothing.

use serde_json::{Value, json};
use wasmadm_plugin_sdk::config::yaml;
use wasmadm_plugin_sdk::types::{PhaseContext, PhaseError, PhaseReport, PluginInfo, SubPhase};
use wasmadm_plugin_sdk::{Context, Plugin, debug, done, export_plugin, files, fs, print, systemd};

const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";
/// The kubelet's default `--cert-dir`.
const KUBELET_PKI: &str = "/var/lib/kubelet/pki";
const CURRENT_PEM: &str = "kubelet-client-current.pem";

/// `kubelet.conf` with the current context's user pointing at `pem` for certificate and key.
/// Errors name what is wrong with the file, as kubeadm's do.
pub fn point_to_pem(kubeconfig: &str, pem: &str) -> Result<String, String> {
    let mut config: Value =
        serde_yaml::from_str(kubeconfig).map_err(|e| format!("could not load {KUBELET_CONF:?}: {e}"))?;
    let current = config["current-context"].as_str().unwrap_or_default().to_string();
    if current.is_empty() {
        return Err(format!(
            "the file {KUBELET_CONF:?} does not have current context set"
        ));
    }
    let named = |list: &Value, name: &str| {
        list.as_array()
            .and_then(|items| items.iter().position(|i| i["name"] == json!(name)))
    };
    let context = named(&config["contexts"], &current).ok_or_else(|| {
        format!(
            "the file {KUBELET_CONF:?} is not a valid kubeconfig: {current:?} set as current-context, but not found in context list"
        )
    })?;
    let user = config["contexts"][context]["context"]["user"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if user.is_empty() {
        return Err(format!(
            "the file {KUBELET_CONF:?} is not a valid kubeconfig: empty username for current context"
        ));
    }
    let index = named(&config["users"], &user).ok_or_else(|| {
        format!("the file {KUBELET_CONF:?} does not contain authentication for user {user:?}")
    })?;
    let auth = &mut config["users"][index]["user"];
    if let Some(fields) = auth.as_object_mut() {
        fields.remove("client-certificate-data");
        fields.remove("client-key-data");
    }
    auth["client-certificate"] = json!(pem);
    auth["client-key"] = json!(pem);
    Ok(yaml::to_string(&config))
}

struct KubeletFinalize;

impl Plugin for KubeletFinalize {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info(
            "kubelet-finalize",
            "Updates settings relevant to the kubelet after TLS bootstrap",
        );
        info.sub_phases = vec![SubPhase {
            name: "enable-client-cert-rotation".into(),
            summary: "Enable kubelet client certificate rotation".into(),
        }];
        info.needs.files_read = vec![KUBELET_PKI.into()];
        info.needs.files_write = vec![KUBELET_CONF.into()];
        info.needs.exec = vec![
            systemd::rule(&["status", "kubelet"], true),
            systemd::rule(&["daemon-reload"], false),
            systemd::rule(&["restart", "kubelet"], false),
        ];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        if !ctx.runs("enable-client-cert-rotation") {
            return Ok(done());
        }
        let node = ctx.node_registration();
        let pki = node
            .kubelet_extra_args
            .iter()
            .rev()
            .find(|a| a.name == "cert-dir")
            .map_or(KUBELET_PKI.to_string(), |a| {
                a.value.trim_end_matches('/').to_string()
            });
        let pem = format!("{pki}/{CURRENT_PEM}");
        if !fs::exists(&pem)? {
            debug(&format!(
                "[kubelet-finalize] Assuming that kubelet client certificate rotation is disabled: {pem} does not exist"
            ));
            return Ok(done());
        }
        print(&format!(
            "[kubelet-finalize] Updating {KUBELET_CONF:?} to point to a rotatable kubelet client certificate and key"
        ));
        let text = fs::read_string(KUBELET_CONF)?;
        let updated = point_to_pem(&text, &pem).map_err(PhaseError::Failed)?;
        files::write(KUBELET_CONF, updated.as_bytes(), 0o600)?;
        systemd::try_restart_kubelet()?;
        Ok(done())
    }
}

export_plugin!(KubeletFinalize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_files_are_named() {
        let err = point_to_pem("apiVersion: v1\nkind: Config\n", "/p.pem").expect_err("no context");
        assert!(err.contains("does not have current context set"), "{err}");
        let err = point_to_pem(
            "current-context: a\ncontexts:\n- name: a\n  context: {user: u}\nusers: []\n",
            "/p.pem",
        )
        .expect_err("no user");
        assert!(
            err.contains("does not contain authentication for user \"u\""),
            "{err}"
        );
    }
}
