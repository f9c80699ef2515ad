//! The kube-proxy addon's objects, as kubeadm v1.36 creates them (`phases/addons/proxy`), with the
//! fields the API server would default spelled out.

use serde_json::{Value, json};
use wasmadm_plugin_sdk::config::upload::sign_config_map;
use wasmadm_plugin_sdk::config::yaml as goyaml;

const CONFIG_KEY: &str = "config.conf";
const KUBECONFIG_KEY: &str = "kubeconfig.conf";
/// Where the kube-proxy pods mount the ConfigMap.
const CONFIG_DIR: &str = "/var/lib/kube-proxy";
const KUBECONFIG_FILE: &str = "/var/lib/kube-proxy/kubeconfig.conf";
const NODE_BOOTSTRAP_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// `kubeproxy.config.k8s.io/v1alpha1` KubeProxyConfiguration with every field at Go's zero value:
/// kubeadm marshals the whole struct, so `config.conf` lists them all.
fn zero_config() -> Value {
    json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "bindAddress": "",
        "bindAddressHardFail": false,
        "clientConnection": {"acceptContentTypes": "", "burst": 0, "contentType": "", "kubeconfig": "", "qps": 0},
        "clusterCIDR": "",
        "configSyncPeriod": "0s",
        "conntrack": {
            "maxPerCore": null, "min": null, "tcpBeLiberal": false, "tcpCloseWaitTimeout": null,
            "tcpEstablishedTimeout": null, "udpStreamTimeout": "0s", "udpTimeout": "0s",
        },
        "detectLocal": {"bridgeInterface": "", "interfaceNamePrefix": ""},
        "detectLocalMode": "",
        "enableProfiling": false,
        "healthzBindAddress": "",
        "hostnameOverride": "",
        "iptables": {"localhostNodePorts": null, "masqueradeAll": false, "masqueradeBit": null, "minSyncPeriod": "0s", "syncPeriod": "0s"},
        "ipvs": {
            "excludeCIDRs": null, "minSyncPeriod": "0s", "scheduler": "", "strictARP": false,
            "syncPeriod": "0s", "tcpFinTimeout": "0s", "tcpTimeout": "0s", "udpTimeout": "0s",
        },
        "logging": {
            "flushFrequency": 0,
            "options": {"json": {"infoBufferSize": "0"}, "text": {"infoBufferSize": "0"}},
            "verbosity": 0,
        },
        "metricsBindAddress": "",
        "mode": "",
        "nftables": {"masqueradeAll": false, "masqueradeBit": null, "minSyncPeriod": "0s", "syncPeriod": "0s"},
        "nodePortAddresses": null,
        "oomScoreAdj": null,
        "portRange": "",
        "showHiddenMetricsForVersion": "",
        "winkernel": {"enableDSR": false, "forwardHealthCheckVip": false, "networkName": "", "rootHnsEndpointName": "", "sourceVip": ""},
    })
}

fn merge(target: &mut Value, user: &Value) {
    match (target, user) {
        (Value::Object(t), Value::Object(u)) => {
            for (k, v) in u {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, u) => *t = u.clone(),
    }
}

/// What kubeadm's defaulting decided, and the warnings it printed about user values.
pub struct ProxyConfig {
    pub yaml: String,
    pub warnings: Vec<String>,
}

/// kubeadm's KubeProxyConfiguration: the user's document (if any) over the zero values, then
/// kubeadm's defaults for `bindAddress`, `clusterCIDR` and `clientConnection.kubeconfig`.
pub fn config(
    user: Option<&Value>,
    pod_subnet: &str,
    advertise_address: &str,
) -> Result<ProxyConfig, String> {
    let mut cfg = zero_config();
    if let Some(user) = user {
        merge(&mut cfg, user);
    }
    for (field, ok) in [
        ("bindAddress", cfg["bindAddress"].is_string()),
        ("clusterCIDR", cfg["clusterCIDR"].is_string()),
        ("clientConnection", cfg["clientConnection"].is_object()),
        (
            "clientConnection.kubeconfig",
            cfg["clientConnection"]["kubeconfig"].is_string(),
        ),
    ] {
        if !ok {
            return Err(format!(
                "KubeProxyConfiguration: {field} has the wrong type; see `kube-proxy --help` for its format"
            ));
        }
    }
    let mut warnings = Vec::new();
    let mut default = |cfg: &mut Value, path: &[&str], recommended: &str| {
        let slot = path.iter().fold(cfg, |v, k| &mut v[*k]);
        match slot.as_str().unwrap_or_default() {
            "" => *slot = recommended.into(),
            given if given != recommended => warnings.push(format!(
                "The recommended value for {:?} in \"KubeProxyConfiguration\" is: {recommended}; the provided value is: {given}",
                path.join(".")
            )),
            _ => {}
        }
    };
    let bind = if advertise_address.contains(':') {
        "::"
    } else {
        "0.0.0.0"
    };
    default(&mut cfg, &["bindAddress"], bind);
    if !pod_subnet.is_empty() {
        default(&mut cfg, &["clusterCIDR"], pod_subnet);
    }
    default(&mut cfg, &["clientConnection", "kubeconfig"], KUBECONFIG_FILE);
    let yaml = goyaml::to_string(&cfg);
    Ok(ProxyConfig {
        yaml: yaml.strip_suffix('\n').unwrap_or(&yaml).to_string(),
        warnings,
    })
}

/// The in-pod kubeconfig: the ServiceAccount's token and CA, and the control-plane endpoint.
pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: \
         /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n    server: {server}\n  name: default\n\
         contexts:\n- context:\n    cluster: default\n    namespace: default\n    user: default\n  \
         name: default\ncurrent-context: default\nusers:\n- name: default\n  user:\n    \
         tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token"
    )
}

/// The ConfigMap `kube-system/kube-proxy`; signed with kubeadm's hash of its data unless the
/// configuration came from the user (`user_supplied`: a KubeProxyConfiguration document was given).
pub fn config_map(config_yaml: &str, server: &str, user_supplied: bool) -> Value {
    let mut config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "kube-proxy",
            "namespace": "kube-system",
            "labels": {"app": "kube-proxy"},
        },
        "data": {CONFIG_KEY: config_yaml, KUBECONFIG_KEY: kubeconfig(server)},
    });
    if !user_supplied {
        sign_config_map(&mut config_map);
    }
    config_map
}

/// Role `kube-proxy`: joining nodes (bootstrap tokens) may read the ConfigMap.
pub fn role() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
        "rules": [{"apiGroups": [""], "resourceNames": ["kube-proxy"], "resources": ["configmaps"], "verbs": ["get"]}],
    })
}

pub fn role_binding() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kube-proxy"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": NODE_BOOTSTRAP_GROUP}],
    })
}

fn host_path(name: &str, path: &str, kind: &str) -> Value {
    json!({"hostPath": {"path": path, "type": kind}, "name": name})
}

pub fn daemon_set(image: &str) -> Value {
    let selector = json!({"k8s-app": "kube-proxy"});
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": selector},
        "spec": {
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "containers": [{
                        "command": [
                            "/usr/local/bin/kube-proxy",
                            format!("--config={CONFIG_DIR}/{CONFIG_KEY}"),
                            "--hostname-override=$(NODE_NAME)",
                        ],
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}],
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "name": "kube-proxy",
                        "resources": {},
                        "securityContext": {"privileged": true},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "volumeMounts": [
                            {"mountPath": CONFIG_DIR, "name": "kube-proxy"},
                            {"mountPath": "/run/xtables.lock", "name": "xtables-lock"},
                            {"mountPath": "/lib/modules", "name": "lib-modules", "readOnly": true},
                        ],
                    }],
                    "dnsPolicy": "ClusterFirst",
                    "hostNetwork": true,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "priorityClassName": "system-node-critical",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "serviceAccount": "kube-proxy",
                    "serviceAccountName": "kube-proxy",
                    "terminationGracePeriodSeconds": 30,
                    "tolerations": [{"operator": "Exists"}],
                    "volumes": [
                        {"configMap": {"defaultMode": 420, "name": "kube-proxy"}, "name": "kube-proxy"},
                        host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
                        host_path("lib-modules", "/lib/modules", ""),
                    ],
                },
            },
            "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}, "type": "RollingUpdate"},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmadm_plugin_sdk::config::upload::COMPONENT_CONFIG_HASH;

    #[test]
    fn only_a_generated_kube_proxy_configuration_is_signed() {
        let generated = config_map("mode: ipvs", "https://10.0.0.1:6443", false);
        let hash = generated["metadata"]["annotations"][COMPONENT_CONFIG_HASH].as_str();
        assert!(hash.is_some_and(|h| h.starts_with("sha256:")), "{generated}");
        let user = config_map("mode: ipvs", "https://10.0.0.1:6443", true);
        assert_eq!(user["metadata"].get("annotations"), None, "{user}");
        assert_eq!(user["metadata"]["labels"], generated["metadata"]["labels"]);
        assert_eq!(user["data"], generated["data"]);
    }
}
