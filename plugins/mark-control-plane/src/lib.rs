//! The `mark-control-plane` phase: labels this node as a control-plane node and taints it
//! (`nodeRegistration.taints`: absent means kubeadm's NoSchedule taint, `[]` means none).
//!
//! The Node object is registered by the kubelet, which may still be starting: as kubeadm's
//! `PatchNode`, the phase polls until the Node exists with its `kubernetes.io/hostname` label, up
//! to `timeouts.kubernetesAPICall` (or the `nodeWaitTimeout` setting).

use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use wasmadm_plugin_sdk::apply::{self, nodes};
use wasmadm_plugin_sdk::config::Taint;
use wasmadm_plugin_sdk::config::defaults::CONTROL_PLANE_TAINT_KEY;
use wasmadm_plugin_sdk::config::validate::parse_duration;
use wasmadm_plugin_sdk::kube::{Client, PatchType};
use wasmadm_plugin_sdk::types::{KubeRule, PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{Context, ErrorText, Plugin, done, export_plugin, print};

/// The labels kubeadm puts on control-plane nodes (empty values).
pub const LABELS: [&str; 2] = [
    "node-role.kubernetes.io/control-plane",
    "node.kubernetes.io/exclude-from-external-load-balancers",
];
/// The label the kubelet sets when it registers the Node; kubeadm waits for it.
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// kubeadm's `KubernetesAPICallRetryInterval`.
const RETRY: Duration = Duration::from_millis(500);
/// How often a wait reports progress.
const PROGRESS: Duration = Duration::from_secs(10);

/// The phase's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Settings {
    /// How long to wait for the kubelet to register the Node (Go duration, e.g. `2m`).
    #[serde(default)]
    node_wait_timeout: Option<String>,
}

/// kubeadm's `Taint.ToString`.
pub fn taint_string(t: &Taint) -> String {
    match t.value.as_deref() {
        Some(v) if !v.is_empty() => format!("{}={v}:{}", t.key, t.effect),
        _ => format!("{}:{}", t.key, t.effect),
    }
}

fn taint_json(t: &Taint) -> Value {
    let mut v = json!({"key": t.key, "effect": t.effect});
    if let Some(value) = t.value.as_deref().filter(|v| !v.is_empty()) {
        v["value"] = json!(value);
    }
    v
}

/// The taints to set: `taints` first, then those of the Node that are not among them.
pub fn merged_taints(taints: &[Taint], existing: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = taints.iter().map(taint_json).collect();
    for t in existing.as_array().into_iter().flatten() {
        let same = |n: &Value| n["key"] == t["key"] && n["effect"] == t["effect"] && n["value"] == t["value"];
        if !out.iter().any(same) {
            out.push(t.clone());
        }
    }
    out
}

/// The patch that marks `node`, or `None` when it is already marked.
pub fn patch_for(node: &Value, taints: &[Taint]) -> Option<Value> {
    let labels = &node["metadata"]["labels"];
    let labelled = LABELS.iter().all(|l| labels[*l] == json!(""));
    let new_taints = merged_taints(taints, &node["spec"]["taints"]);
    let existing = node["spec"]["taints"].as_array().cloned().unwrap_or_default();
    if labelled && new_taints == existing {
        return None;
    }
    let label_patch: serde_json::Map<String, Value> =
        LABELS.iter().map(|l| (l.to_string(), json!(""))).collect();
    let mut patch = json!({"metadata": {"labels": label_patch}});
    if new_taints != existing {
        patch["spec"] = json!({"taints": new_taints});
    }
    Some(patch)
}

/// Polls until the kubelet registered the Node; returns it.
fn wait_for_node(client: &Client, name: &str, timeout: Duration) -> Result<Value, PhaseError> {
    let start = Instant::now();
    let mut last_report = start;
    loop {
        let why = match client.get(&nodes(), None, name) {
            Ok(json) => {
                let node = apply::parse(&json)?;
                if node["metadata"]["labels"][HOSTNAME_LABEL].is_string() {
                    return Ok(node);
                }
                format!("the Node has no {HOSTNAME_LABEL} label yet")
            }
            Err(e) if e.code == wasmadm_plugin_sdk::kube::ErrorCode::Denied => return Err(e.into()),
            Err(e) => e.text(),
        };
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(PhaseError::Failed(format!(
                "timed out after {timeout:?} waiting for the kubelet to register the Node {name:?} ({why}); \
                 check that the kubelet is running ('systemctl status kubelet', 'journalctl -xeu kubelet') and \
                 that nodeRegistration.name is this node's name; the wait is timeouts.kubernetesAPICall in the \
                 InitConfiguration"
            )));
        }
        if last_report.elapsed() >= PROGRESS {
            last_report = Instant::now();
            wasmadm_plugin_sdk::log::log(
                wasmadm_plugin_sdk::log::Level::Info,
                &format!(
                    "[mark-control-plane] Waiting for the Node {name:?} to be registered ({}s of {}s)",
                    waited.as_secs(),
                    timeout.as_secs()
                ),
            );
        }
        std::thread::sleep(RETRY.min(timeout.saturating_sub(waited)));
    }
}

fn wait_timeout(ctx: &Context) -> Result<Duration, PhaseError> {
    let settings: Settings = ctx.settings()?;
    let (field, text) = match settings.node_wait_timeout {
        Some(t) => ("settings.nodeWaitTimeout", t),
        None => (
            "timeouts.kubernetesAPICall",
            ctx.config
                .init
                .as_ref()
                .and_then(|i| i.timeouts.kubernetes_api_call.clone())
                .unwrap_or_else(|| "1m0s".into()),
        ),
    };
    parse_duration(&text)
        .filter(|s| *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            PhaseError::InvalidConfig(format!("{field}: {text:?} is not a duration (e.g. 1m0s, 30s)"))
        })
}

struct MarkControlPlane;

impl Plugin for MarkControlPlane {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info("mark-control-plane", "Mark a node as a control-plane");
        // The Node's name comes from the configuration, so the rule cannot name it.
        info.needs.kube = vec![KubeRule::new(&["get", "patch"], "", &["nodes"])];
        info.needs.kube.insert(0, apply::admin_binding_rule());
        info.settings_example =
            "# How long to wait for the kubelet to register the Node (default: timeouts.kubernetesAPICall).\nnodeWaitTimeout: 1m0s\n"
                .into();
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        let timeout = wait_timeout(&ctx)?;
        let name = ctx.node_name();
        let taints = ctx.node_registration().taints.unwrap_or_else(|| {
            vec![Taint {
                key: CONTROL_PLANE_TAINT_KEY.into(),
                value: None,
                effect: "NoSchedule".into(),
            }]
        });
        print(&format!(
            "[mark-control-plane] Marking the node {name} as control-plane by adding the labels: [{}]",
            LABELS.join(" ")
        ));
        if !taints.is_empty() {
            let shown: Vec<String> = taints.iter().map(taint_string).collect();
            print(&format!(
                "[mark-control-plane] Marking the node {name} as control-plane by adding the taints [{}]",
                shown.join(" ")
            ));
        }
        let client = apply::cluster()?;
        let node = wait_for_node(&client, &name, timeout)?;
        if let Some(patch) = patch_for(&node, &taints) {
            client
                .patch(
                    &nodes(),
                    None,
                    &name,
                    PatchType::StrategicMerge,
                    &patch.to_string(),
                )
                .map_err(apply::context(&format!("patching Node {name:?}")))?;
        }
        Ok(done())
    }
}

export_plugin!(MarkControlPlane);

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: effect.into(),
        }
    }

    #[test]
    fn taints_as_kubeadm_prints_and_merges_them() {
        assert_eq!(taint_string(&taint("a", Some("b"), "NoExecute")), "a=b:NoExecute");
        assert_eq!(taint_string(&taint("a", None, "NoSchedule")), "a:NoSchedule");
        let existing = json!([{"key": "x", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}]);
        let merged = merged_taints(&[taint("a", None, "NoSchedule")], &existing);
        assert_eq!(
            merged,
            vec![
                json!({"key": "a", "effect": "NoSchedule"}),
                json!({"key": "x", "effect": "NoSchedule"})
            ]
        );
    }

    #[test]
    fn marked_node_needs_no_patch() {
        let t = [taint(CONTROL_PLANE_TAINT_KEY, None, "NoSchedule")];
        let bare = json!({"metadata": {"labels": {HOSTNAME_LABEL: "n1"}}});
        let patch = patch_for(&bare, &t).expect("patch");
        let mut marked = bare.clone();
        wasmadm_plugin_sdk::config::kubelet::merge(&mut marked, &patch);
        assert_eq!(patch_for(&marked, &t), None);
    }
}
