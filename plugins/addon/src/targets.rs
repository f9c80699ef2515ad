//! The objects the phase writes, by kind and name: the kube rules `describe` asks for are derived
//! from this one list, and every write goes through it.

use crate::NS;
use serde_json::Value;
use wasmadm_plugin_sdk::apply::{Update, create_or_update, resource};
use wasmadm_plugin_sdk::kube::Client;
use wasmadm_plugin_sdk::types::{KubeRule, PhaseError};

/// One kind of object the phase writes, with the names it writes.
struct Target {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    names: &'static [&'static str],
}

/// Everything the phase creates; `describe` derives its kube rules from this list.
const TARGETS: &[Target] = &[
    Target {
        group: "",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
        names: &["coredns", "kube-proxy"],
    },
    Target {
        group: "",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        namespaced: true,
        names: &["coredns", "kube-proxy"],
    },
    Target {
        group: "",
        kind: "Service",
        plural: "services",
        namespaced: true,
        names: &["kube-dns"],
    },
    Target {
        group: "apps",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
        names: &["coredns"],
    },
    Target {
        group: "apps",
        kind: "DaemonSet",
        plural: "daemonsets",
        namespaced: true,
        names: &["kube-proxy"],
    },
    Target {
        group: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        plural: "clusterroles",
        namespaced: false,
        names: &["system:coredns"],
    },
    Target {
        group: "rbac.authorization.k8s.io",
        kind: "ClusterRoleBinding",
        plural: "clusterrolebindings",
        namespaced: false,
        names: &["system:coredns", "kubeadm:node-proxier"],
    },
    Target {
        group: "rbac.authorization.k8s.io",
        kind: "Role",
        plural: "roles",
        namespaced: true,
        names: &["kube-proxy"],
    },
    Target {
        group: "rbac.authorization.k8s.io",
        kind: "RoleBinding",
        plural: "rolebindings",
        namespaced: true,
        names: &["kube-proxy"],
    },
];

/// The phase's kube rules: get/create/update on exactly its objects, and listing the DNS
/// Deployments (kubeadm keeps the replica count of a deployed CoreDNS).
pub fn kube_rules() -> Vec<KubeRule> {
    let mut rules: Vec<KubeRule> = TARGETS
        .iter()
        .map(|t| {
            let namespaces: &[&str] = if t.namespaced { &[NS] } else { &[] };
            KubeRule::new(&["get", "create", "update"], t.group, &[t.plural])
                .in_namespaces(namespaces)
                .named(t.names)
        })
        .collect();
    rules.push(KubeRule::new(&["list"], "apps", &["deployments"]).in_namespaces(&[NS]));
    rules
}

fn target(kind: &str) -> Result<&'static Target, PhaseError> {
    TARGETS
        .iter()
        .find(|t| t.kind == kind)
        .ok_or_else(|| PhaseError::Failed(format!("addon: no target for kind {kind}")))
}

/// Applies one object (its kind and name from the object itself).
pub fn apply(client: &Client, object: &Value) -> Result<(), PhaseError> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let t = target(kind)?;
    let version = object["apiVersion"]
        .as_str()
        .unwrap_or("v1")
        .rsplit('/')
        .next()
        .unwrap_or("v1");
    let ty = resource(t.group, version, t.kind, t.plural, t.namespaced);
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let applied = create_or_update(client, &ty, object, Update::Replace)?;
    wasmadm_plugin_sdk::debug(&format!("{kind} {name}: {applied:?}"));
    Ok(())
}
