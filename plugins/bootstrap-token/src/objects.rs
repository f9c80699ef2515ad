//! The RBAC objects of kubeadm's bootstrap-token phase (spec §5.3, §6.1), as JSON, and the API
//! types they are stored as.

use serde_json::{Value, json};
use wasmadm_plugin_sdk::kube::ResourceType;

pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// The group kubeadm's tokens authenticate as (`bootstrapTokens[].groups` default).
pub const NODE_BOOTSTRAP_GROUP: &str = kubeadm_bootstrap_token::DEFAULT_GROUP;
pub const GET_NODES: &str = "kubeadm:get-nodes";
pub const KUBELET_BOOTSTRAP: &str = "kubeadm:kubelet-bootstrap";
pub const NODE_AUTOAPPROVE_BOOTSTRAP: &str = "kubeadm:node-autoapprove-bootstrap";
pub const NODE_AUTOAPPROVE_ROTATION: &str = "kubeadm:node-autoapprove-certificate-rotation";
pub const APISERVER_KUBELET_CLIENT: &str = "kubeadm:apiserver-kubelet-client";
pub const CLUSTER_INFO_ROLE: &str = "kubeadm:bootstrap-signer-clusterinfo";

/// The cluster role bindings the phase writes (the grant lists the same names).
pub const CLUSTER_ROLE_BINDINGS: [&str; 5] = [
    GET_NODES,
    KUBELET_BOOTSTRAP,
    NODE_AUTOAPPROVE_BOOTSTRAP,
    NODE_AUTOAPPROVE_ROTATION,
    APISERVER_KUBELET_CLIENT,
];

fn ty(group: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
    }
}

pub fn secrets() -> ResourceType {
    ty("", "Secret", "secrets", true)
}
pub fn config_maps() -> ResourceType {
    ty("", "ConfigMap", "configmaps", true)
}
pub fn cluster_roles() -> ResourceType {
    ty(RBAC_GROUP, "ClusterRole", "clusterroles", false)
}
pub fn cluster_role_bindings() -> ResourceType {
    ty(RBAC_GROUP, "ClusterRoleBinding", "clusterrolebindings", false)
}
pub fn roles() -> ResourceType {
    ty(RBAC_GROUP, "Role", "roles", true)
}
pub fn role_bindings() -> ResourceType {
    ty(RBAC_GROUP, "RoleBinding", "rolebindings", true)
}

/// An RBAC subject (`Group` or `User`).
pub fn subject(kind: &str, name: &str) -> Value {
    json!({"apiGroup": RBAC_GROUP, "kind": kind, "name": name})
}

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    match namespace {
        Some(ns) => json!({"name": name, "namespace": ns}),
        None => json!({"name": name}),
    }
}

/// A ClusterRole, or a Role when `namespace` is given.
pub fn role(name: &str, namespace: Option<&str>, rules: Value) -> Value {
    let kind = if namespace.is_some() {
        "Role"
    } else {
        "ClusterRole"
    };
    json!({
        "apiVersion": format!("{RBAC_GROUP}/v1"),
        "kind": kind,
        "metadata": metadata(name, namespace),
        "rules": rules,
    })
}

/// A ClusterRoleBinding to a ClusterRole, or a RoleBinding to a Role when `namespace` is given.
pub fn binding(name: &str, namespace: Option<&str>, role_name: &str, subjects: Vec<Value>) -> Value {
    let (kind, role_kind) = match namespace {
        Some(_) => ("RoleBinding", "Role"),
        None => ("ClusterRoleBinding", "ClusterRole"),
    };
    json!({
        "apiVersion": format!("{RBAC_GROUP}/v1"),
        "kind": kind,
        "metadata": metadata(name, namespace),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role_name},
        "subjects": subjects,
    })
}

/// One step of the phase: the objects it writes and the line kubeadm prints after it.
pub struct Step {
    pub objects: Vec<(ResourceType, Value)>,
    pub line: &'static str,
}

/// The node-bootstrap RBAC, in kubeadm's order, each step with its console line.
pub fn node_bootstrap_rbac() -> Vec<Step> {
    let group = || vec![subject("Group", NODE_BOOTSTRAP_GROUP)];
    vec![
        Step {
            objects: vec![
                (
                    cluster_roles(),
                    role(
                        GET_NODES,
                        None,
                        json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]),
                    ),
                ),
                (
                    cluster_role_bindings(),
                    binding(GET_NODES, None, GET_NODES, group()),
                ),
            ],
            line: "[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to get nodes",
        },
        Step {
            objects: vec![(
                cluster_role_bindings(),
                binding(KUBELET_BOOTSTRAP, None, "system:node-bootstrapper", group()),
            )],
            line: "[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to post CSRs in order for nodes to get long term certificate credentials",
        },
        Step {
            objects: vec![(
                cluster_role_bindings(),
                binding(
                    NODE_AUTOAPPROVE_BOOTSTRAP,
                    None,
                    "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                    group(),
                ),
            )],
            line: "[bootstrap-token] Configured RBAC rules to allow the csrapprover controller automatically approve CSRs from a Node Bootstrap Token",
        },
        Step {
            objects: vec![(
                cluster_role_bindings(),
                binding(
                    NODE_AUTOAPPROVE_ROTATION,
                    None,
                    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                    vec![subject("Group", "system:nodes")],
                ),
            )],
            line: "[bootstrap-token] Configured RBAC rules to allow certificate rotation for all node client certificates in the cluster",
        },
        Step {
            objects: vec![(
                cluster_role_bindings(),
                binding(
                    APISERVER_KUBELET_CLIENT,
                    None,
                    "system:kubelet-api-admin",
                    vec![subject("User", "kube-apiserver-kubelet-client")],
                ),
            )],
            line: "[bootstrap-token] Configured RBAC rules to allow the API server kubelet client certificate to access the kubelet API",
        },
    ]
}

/// The Role and RoleBinding that let anonymous clients read cluster-info (join discovery).
pub fn cluster_info_rbac() -> Vec<(ResourceType, Value)> {
    use kubeadm_bootstrap_token::cluster_info::{NAME, NAMESPACE};
    vec![
        (
            roles(),
            role(
                CLUSTER_INFO_ROLE,
                Some(NAMESPACE),
                json!([{"apiGroups": [""], "resourceNames": [NAME], "resources": ["configmaps"], "verbs": ["get"]}]),
            ),
        ),
        (
            role_bindings(),
            binding(
                CLUSTER_INFO_ROLE,
                Some(NAMESPACE),
                CLUSTER_INFO_ROLE,
                vec![subject("User", "system:anonymous")],
            ),
        ),
    ]
}
