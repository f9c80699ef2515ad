//! The `upload-config` phase: stores the ClusterConfiguration (`upload-config/kubeadm`) and the
//! cluster-wide KubeletConfiguration (`upload-config/kubelet`) in `kube-system` ConfigMaps that
//! joining nodes read, with the Roles and RoleBindings that let them read those ConfigMaps.

use serde_json::{Value, json};
use wasmadm_plugin_sdk::apply::{self, Update, config_maps, create_or_update, role_bindings, roles};
use wasmadm_plugin_sdk::config::defaults::DEFAULT_TOKEN_GROUP;
use wasmadm_plugin_sdk::config::kubelet as kc;
use wasmadm_plugin_sdk::config::upload::{cluster_configuration_yaml, sign_config_map};
use wasmadm_plugin_sdk::kube::Client;
use wasmadm_plugin_sdk::types::{KubeRule, PhaseContext, PhaseError, PhaseReport, PluginInfo, SubPhase};
use wasmadm_plugin_sdk::{Context, Plugin, done, export_plugin, print, systemd};

const NAMESPACE: &str = "kube-system";
const KUBEADM_CONFIG: &str = "kubeadm-config";
const KUBELET_CONFIG: &str = "kubelet-config";
const NODES_KUBEADM_CONFIG_ROLE: &str = "kubeadm:nodes-kubeadm-config";
const KUBELET_CONFIG_ROLE: &str = "kubeadm:kubelet-config";
const NODES_GROUP: &str = "system:nodes";

/// The ConfigMap `kube-system/kubeadm-config`.
pub fn kubeadm_config_map(cluster_yaml: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": KUBEADM_CONFIG, "namespace": NAMESPACE},
        "data": {"ClusterConfiguration": cluster_yaml},
    })
}

/// The ConfigMap `kube-system/kubelet-config`; signed with kubeadm's hash of its data unless the
/// configuration came from the user (`user_supplied`: a KubeletConfiguration document was given).
pub fn kubelet_config_map(kubelet_yaml: &str, user_supplied: bool) -> Value {
    let mut config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": KUBELET_CONFIG, "namespace": NAMESPACE},
        "data": {"kubelet": kubelet_yaml},
    });
    if !user_supplied {
        sign_config_map(&mut config_map);
    }
    config_map
}

/// A Role that may `get` one ConfigMap.
pub fn read_config_map_role(role: &str, config_map: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": role, "namespace": NAMESPACE},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [config_map], "verbs": ["get"]}],
    })
}

/// A RoleBinding of `role` to the groups, in kubeadm's order.
pub fn role_binding(role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": role, "namespace": NAMESPACE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": subjects,
    })
}

fn apply_all(
    client: &Client,
    objects: &[(wasmadm_plugin_sdk::kube::ResourceType, Value)],
) -> Result<(), PhaseError> {
    for (ty, object) in objects {
        create_or_update(client, ty, object, Update::Merge)?;
    }
    Ok(())
}

fn upload_kubeadm(ctx: &Context, client: &Client) -> Result<(), PhaseError> {
    print(&format!(
        "[upload-config] Storing the configuration used in ConfigMap {KUBEADM_CONFIG:?} in the {NAMESPACE:?} Namespace"
    ));
    let yaml = cluster_configuration_yaml(&ctx.cluster_configuration())
        .map_err(|e| PhaseError::Failed(format!("cannot render the ClusterConfiguration: {e}")))?;
    apply_all(
        client,
        &[
            (config_maps(), kubeadm_config_map(&yaml)),
            (
                roles(),
                read_config_map_role(NODES_KUBEADM_CONFIG_ROLE, KUBEADM_CONFIG),
            ),
            (
                role_bindings(),
                role_binding(NODES_KUBEADM_CONFIG_ROLE, &[DEFAULT_TOKEN_GROUP, NODES_GROUP]),
            ),
        ],
    )
}

fn upload_kubelet(ctx: &Context, client: &Client) -> Result<(), PhaseError> {
    print(&format!(
        "[kubelet] Creating a ConfigMap {KUBELET_CONFIG:?} in namespace {NAMESPACE} with the configuration for the kubelets in the cluster"
    ));
    let user = ctx.config.components.get(kc::KIND);
    let config = kc::configuration(&ctx.cluster_configuration(), user, systemd::resolv_conf()?)
        .map_err(|e| PhaseError::InvalidConfig(e.to_string()))?;
    let yaml = wasmadm_plugin_sdk::config::yaml::to_string(&config);
    apply_all(
        client,
        &[
            (config_maps(), kubelet_config_map(&yaml, user.is_some())),
            (roles(), read_config_map_role(KUBELET_CONFIG_ROLE, KUBELET_CONFIG)),
            (
                role_bindings(),
                role_binding(KUBELET_CONFIG_ROLE, &[NODES_GROUP, DEFAULT_TOKEN_GROUP]),
            ),
        ],
    )
}

fn rule(verbs: &[&str], group: &str, resource: &str, names: &[&str]) -> KubeRule {
    KubeRule::new(verbs, group, &[resource])
        .in_namespaces(&[NAMESPACE])
        .named(names)
}

struct UploadConfig;

impl Plugin for UploadConfig {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info(
            "upload-config",
            "Upload the kubeadm and kubelet configuration to a ConfigMap",
        );
        info.sub_phases = vec![
            SubPhase {
                name: "kubeadm".into(),
                summary: "Upload the kubeadm ClusterConfiguration to a ConfigMap".into(),
            },
            SubPhase {
                name: "kubelet".into(),
                summary: "Upload the kubelet component config to a ConfigMap".into(),
            },
        ];
        let verbs = ["get", "create", "update"];
        let rbac = "rbac.authorization.k8s.io";
        let role_names = [NODES_KUBEADM_CONFIG_ROLE, KUBELET_CONFIG_ROLE];
        info.needs.kube = vec![
            apply::admin_binding_rule(),
            rule(&verbs, "", "configmaps", &[KUBEADM_CONFIG, KUBELET_CONFIG]),
            rule(&verbs, rbac, "roles", &role_names),
            rule(&verbs, rbac, "rolebindings", &role_names),
        ];
        // The kubelet configuration depends on whether systemd-resolved is active.
        info.needs.exec = vec![systemd::rule(&["is-active", "systemd-resolved"], true)];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        let client = apply::cluster()?;
        if ctx.runs("kubeadm") {
            upload_kubeadm(&ctx, &client)?;
        }
        if ctx.runs("kubelet") {
            upload_kubelet(&ctx, &client)?;
        }
        Ok(done())
    }
}

export_plugin!(UploadConfig);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmadm_plugin_sdk::config::upload::COMPONENT_CONFIG_HASH;

    #[test]
    fn only_a_generated_kubelet_configuration_is_signed() {
        let generated = kubelet_config_map("kind: KubeletConfiguration\n", false);
        let hash = generated["metadata"]["annotations"][COMPONENT_CONFIG_HASH].as_str();
        assert!(hash.is_some_and(|h| h.starts_with("sha256:")), "{generated}");
        let user = kubelet_config_map("kind: KubeletConfiguration\n", true);
        assert_eq!(user["metadata"].get("annotations"), None, "{user}");
        assert_eq!(user["data"], generated["data"]);
    }
}
