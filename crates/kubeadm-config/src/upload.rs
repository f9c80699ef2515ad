//! What kubeadm's `upload-config` phase stores in the cluster: the ClusterConfiguration as YAML
//! (as Go marshals it: `omitempty` fields left out) and the hash annotation of component-config
//! ConfigMaps.

use crate::types::ClusterConfiguration;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The annotation kubeadm sets on component-config ConfigMaps to detect edits by users.
pub const COMPONENT_CONFIG_HASH: &str = "kubeadm.kubernetes.io/component-config.hash";

/// Fields of kubeadm's Go types that have no `omitempty`, so Go writes them even when empty.
const ALWAYS_WRITTEN: [&str; 8] = [
    "name",
    "hostPath",
    "mountPath",
    "dataDir",
    "endpoints",
    "caFile",
    "certFile",
    "keyFile",
];

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Drops what Go's `omitempty` drops. `extraArgs` items keep an empty `value` (no `omitempty`).
fn prune(v: &mut Value, in_args: bool) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                prune(child, k == "extraArgs");
            }
            map.retain(|k, child| {
                ALWAYS_WRITTEN.contains(&k.as_str()) || (in_args && k == "value") || !is_empty(child)
            });
        }
        Value::Array(items) => items.iter_mut().for_each(|i| prune(i, in_args)),
        _ => {}
    }
}

/// The `ClusterConfiguration` key of `kube-system/kubeadm-config`.
pub fn cluster_configuration_yaml(cluster: &ClusterConfiguration) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(cluster)?;
    prune(&mut value, false);
    Ok(crate::yaml::to_string(&value))
}

/// kubeadm's `SignConfigMap`: the hash annotation over the ConfigMap's `data`. It marks a
/// component config kubeadm generated (so `kubeadm upgrade` may regenerate it): kubeadm signs only
/// when the user gave no KubeletConfiguration / KubeProxyConfiguration document.
pub fn sign_config_map(config_map: &mut Value) {
    let data: BTreeMap<String, String> = config_map["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    config_map["metadata"]["annotations"][COMPONENT_CONFIG_HASH] = Value::from(config_map_hash(&data));
}

/// kubeadm's `ChecksumForConfigMap`: sha256 over the values of `data`, in key order.
pub fn config_map_hash(data: &BTreeMap<String, String>) -> String {
    let mut hash = Sha256::new();
    for value in data.values() {
        hash.update(value.as_bytes());
    }
    format!("sha256:{}", hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults;

    #[test]
    fn defaulted_cluster_configuration_as_kubeadm_uploads_it() {
        let mut c = ClusterConfiguration::default();
        defaults::cluster_configuration(&mut c);
        assert_eq!(
            cluster_configuration_yaml(&c).expect("yaml"),
            "apiServer: {}\napiVersion: kubeadm.k8s.io/v1beta4\ncaCertificateValidityPeriod: 87600h0m0s\n\
             certificateValidityPeriod: 8760h0m0s\ncertificatesDir: /etc/kubernetes/pki\nclusterName: kubernetes\n\
             controllerManager: {}\ndns: {}\nencryptionAlgorithm: RSA-2048\netcd:\n  local:\n    dataDir: /var/lib/etcd\n\
             imageRepository: registry.k8s.io\nkind: ClusterConfiguration\nkubernetesVersion: v1.36.2\nnetworking:\n  \
             dnsDomain: cluster.local\n  serviceSubnet: 10.96.0.0/12\nproxy: {}\nscheduler: {}\n"
        );
    }

    #[test]
    fn signing_annotates_the_hash_of_the_data() {
        let mut cm = serde_json::json!({"metadata": {"name": "x"}, "data": {"b": "2", "a": "1"}});
        sign_config_map(&mut cm);
        let data: BTreeMap<String, String> =
            [("a".to_string(), "1".to_string()), ("b".into(), "2".into())].into();
        assert_eq!(
            cm["metadata"],
            serde_json::json!({"name": "x", "annotations": {COMPONENT_CONFIG_HASH: config_map_hash(&data)}})
        );
    }

    #[test]
    fn hash_covers_values_in_key_order() {
        let data: BTreeMap<String, String> =
            [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into();
        let mut h = Sha256::new();
        h.update(b"12");
        assert_eq!(
            config_map_hash(&data),
            format!("sha256:{}", hex::encode(h.finalize()))
        );
    }
}
