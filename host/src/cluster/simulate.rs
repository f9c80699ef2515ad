//! What the other components of a real cluster do, simulated for the in-memory cluster
//! ([`super::memory`]), which stays an API server's object store: the kubelet registering its Node
//! ([`kubelet_registration`]) and the controller-manager's bootstrap signer (`bootstrap_signer`,
//! run by the store after every write).

use super::memory::{Key, MemoryCluster};
use super::{ApiError, ApiErrorCode, Cluster, ResourceType};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// **The kubelet's Node registration, simulated** (the in-memory cluster only).
///
/// On a real cluster, the kubelet that `kubelet-start` (re)starts registers its Node with the
/// API server, and `mark-control-plane` waits for that Node. The in-memory cluster has no
/// kubelet, so the host plays its part when it sets the cluster up for an `init` or `join`:
/// it creates the Node `name` with the labels a kubelet registers it with (as in real
/// kubeadm's reference run: `kubernetes.io/hostname`, `kubernetes.io/os`,
/// `beta.kubernetes.io/os`). An existing Node is left alone, so labels and taints added by an
/// earlier run stay. This is never done for a real cluster (`--cluster kubeconfig`).
pub fn kubelet_registration(cluster: &MemoryCluster, name: &str) -> Result<(), ApiError> {
    let ty = ResourceType::v1("", "Node", "nodes", false);
    let node = json!({
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
            },
        },
        "spec": {},
    });
    match cluster.create(ty.collection(None), node, false) {
        Ok(_) => Ok(()),
        Err(e) if e.code == ApiErrorCode::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The controller-manager's bootstrap signer, simulated: on a real cluster it keeps one
/// `jws-kubeconfig-<token id>` entry in `kube-public/cluster-info` per valid signing token
/// (kubeadm itself writes none). The in-memory cluster has no controller-manager, so after
/// every write it does the same, and token discovery (`join`) works against it too.
/// Returns the ConfigMap's key, its stored version and the signed one, when they differ.
pub(super) fn bootstrap_signer(objects: &BTreeMap<Key, Value>) -> Option<(Key, Value, Value)> {
    use kubeadm_bootstrap_token::cluster_info::{JWS_KEY_PREFIX, KUBECONFIG_KEY, detached_jws, jws_key};
    use kubeadm_bootstrap_token::{SECRET_NAMESPACE, SECRET_PREFIX, TokenSpec, clock};
    let k: Key = (
        String::new(),
        "configmaps".into(),
        "kube-public".into(),
        "cluster-info".into(),
    );
    let cm = objects.get(&k)?;
    let kubeconfig = cm["data"][KUBECONFIG_KEY].as_str()?;
    let now = clock::now();
    let wanted: BTreeMap<String, Value> = objects
        .iter()
        .filter(|((g, p, ns, name), _)| {
            g.is_empty() && p == "secrets" && ns == SECRET_NAMESPACE && name.starts_with(SECRET_PREFIX)
        })
        .filter_map(|(_, secret)| TokenSpec::from_secret(secret).ok())
        .filter(|t| !t.expired(now) && t.usages.iter().any(|u| u == "signing"))
        .map(|t| (jws_key(&t.token.id), detached_jws(kubeconfig, &t.token).into()))
        .collect();
    let data = cm["data"].as_object().cloned().unwrap_or_default();
    let current: BTreeMap<String, Value> = data
        .iter()
        .filter(|(key, _)| key.starts_with(JWS_KEY_PREFIX))
        .map(|(key, v)| (key.clone(), v.clone()))
        .collect();
    if current == wanted {
        return None;
    }
    let mut data: Map<String, Value> = data
        .into_iter()
        .filter(|(key, _)| !key.starts_with(JWS_KEY_PREFIX))
        .collect();
    data.extend(wanted);
    let mut signed = cm.clone();
    signed["data"] = Value::Object(data);
    Some((k, cm.clone(), signed))
}
