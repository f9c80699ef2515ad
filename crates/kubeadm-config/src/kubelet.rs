//! The KubeletConfiguration kubeadm writes to `/var/lib/kubelet/config.yaml` and uploads to the
//! `kube-system/kubelet-config` ConfigMap: kubeadm's defaults (`componentconfigs/kubelet.go`)
//! under the user's optional `KubeletConfiguration` document.
//!
//! kubeadm decodes the user's document into the typed Go struct and marshals it back, so every
//! field without `omitempty` appears with its zero value (`cacheTTL: 0s`, `crashLoopBackOff: {}`).
//! wasmadm has no kubelet types: it starts from that zero-valued document (what kubeadm v1.36
//! writes for an empty user document) and merges the user's fields over it.

use crate::types::ClusterConfiguration;
use crate::validate::parse_cidr;
use serde_json::{Value, json};
use std::net::IpAddr;

pub const API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
pub const KIND: &str = "KubeletConfiguration";
/// kubeadm's kubelet directory and the files it writes there.
pub const KUBELET_DIR: &str = "/var/lib/kubelet";
pub const CONFIG_FILE: &str = "/var/lib/kubelet/config.yaml";
pub const FLAGS_ENV_FILE: &str = "/var/lib/kubelet/kubeadm-flags.env";
pub const INSTANCE_CONFIG_FILE: &str = "/var/lib/kubelet/instance-config.yaml";
/// The `resolvConf` kubeadm sets when systemd-resolved is active.
pub const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";
/// The feature gate that moves the CRI socket from the flags file to `instance-config.yaml`
/// (on by default in v1.36).
pub const NODE_LOCAL_CRI_SOCKET: &str = "NodeLocalCRISocket";

/// A user KubeletConfiguration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeletConfigError {
    #[error("KubeletConfiguration: {0}")]
    Invalid(String),
}

/// Whether the NodeLocalCRISocket feature gate is on for this cluster.
pub fn node_local_cri_socket(cluster: &ClusterConfiguration) -> bool {
    cluster
        .feature_gates
        .get(NODE_LOCAL_CRI_SOCKET)
        .copied()
        .unwrap_or(true)
}

/// The 10th address of the (first) service subnet: the cluster DNS Service's IP.
pub fn dns_ip(service_subnet: &str) -> Option<IpAddr> {
    let first = service_subnet.split(',').next()?.trim();
    let (ip, bits) = parse_cidr(first)?;
    Some(match ip {
        IpAddr::V4(v4) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            IpAddr::V4((u32::from(v4) & mask).checked_add(10)?.into())
        }
        IpAddr::V6(v6) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            IpAddr::V6((u128::from(v6) & mask).checked_add(10)?.into())
        }
    })
}

/// The fields kubeadm's marshalled KubeletConfiguration always has (zero values of the fields
/// without `omitempty`).
fn zero_values() -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "authentication": {
            "anonymous": {},
            "webhook": {"cacheTTL": "0s"},
            "x509": {},
        },
        "authorization": {"webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"}},
        "containerRuntimeEndpoint": "",
        "cpuManagerReconcilePeriod": "0s",
        "crashLoopBackOff": {},
        "evictionPressureTransitionPeriod": "0s",
        "fileCheckFrequency": "0s",
        "httpCheckFrequency": "0s",
        "imageMaximumGCAge": "0s",
        "imageMinimumGCAge": "0s",
        "logging": {
            "flushFrequency": 0,
            "options": {"json": {"infoBufferSize": "0"}, "text": {"infoBufferSize": "0"}},
            "verbosity": 0,
        },
        "memorySwap": {},
        "nodeStatusReportFrequency": "0s",
        "nodeStatusUpdateFrequency": "0s",
        "runtimeRequestTimeout": "0s",
        "shutdownGracePeriod": "0s",
        "shutdownGracePeriodCriticalPods": "0s",
        "streamingConnectionIdleTimeout": "0s",
        "syncFrequency": "0s",
        "volumeStatsAggPeriod": "0s",
    })
}

/// Sets `obj[key]` when it is absent, null or an empty string.
fn default_field(obj: &mut Value, path: &[&str], value: Value) {
    let mut at = obj;
    for key in &path[..path.len() - 1] {
        if !at[*key].is_object() {
            at[*key] = json!({});
        }
        at = &mut at[*key];
    }
    let last = path[path.len() - 1];
    let empty = match &at[last] {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    if empty {
        at[last] = value;
    }
}

/// RFC 7386 merge of `patch` into `target` (user fields win, objects merge).
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// The cluster-wide KubeletConfiguration: kubeadm's defaults for `cluster`, under the user's
/// document (`user`, the `KubeletConfiguration` of the config file, if any). `resolv_conf` is
/// set when systemd-resolved is active on the node, as kubeadm does.
pub fn configuration(
    cluster: &ClusterConfiguration,
    user: Option<&Value>,
    resolv_conf: Option<&str>,
) -> Result<Value, KubeletConfigError> {
    let mut config = zero_values();
    if let Some(user) = user {
        if !user.is_object() {
            return Err(KubeletConfigError::Invalid(
                "the document must be a mapping of KubeletConfiguration fields".into(),
            ));
        }
        for (field, kind) in [
            ("clusterDNS", "a list of IP addresses"),
            ("staticPodPath", "a path"),
        ] {
            let ok = match (&user[field], field) {
                (Value::Null, _) => true,
                (Value::Array(a), "clusterDNS") => a.iter().all(Value::is_string),
                (Value::String(_), "staticPodPath") => true,
                _ => false,
            };
            if !ok {
                return Err(KubeletConfigError::Invalid(format!("{field} must be {kind}")));
            }
        }
        merge(&mut config, user);
    }
    let cluster_dns = dns_ip(&cluster.networking.service_subnet)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "10.96.0.10".into());
    default_field(
        &mut config,
        &["staticPodPath"],
        json!("/etc/kubernetes/manifests"),
    );
    if config["clusterDNS"].is_null() {
        config["clusterDNS"] = json!([cluster_dns]);
    }
    default_field(
        &mut config,
        &["clusterDomain"],
        json!(cluster.networking.dns_domain),
    );
    default_field(
        &mut config,
        &["authentication", "x509", "clientCAFile"],
        json!(format!("{}/ca.crt", cluster.certificates_dir)),
    );
    default_field(
        &mut config,
        &["authentication", "anonymous", "enabled"],
        json!(false),
    );
    default_field(&mut config, &["authorization", "mode"], json!("Webhook"));
    default_field(
        &mut config,
        &["authentication", "webhook", "enabled"],
        json!(true),
    );
    default_field(&mut config, &["healthzBindAddress"], json!("127.0.0.1"));
    default_field(&mut config, &["healthzPort"], json!(10248));
    // kubeadm cannot tell an unset `rotateCertificates` from `false`, so it always sets it.
    config["rotateCertificates"] = json!(true);
    default_field(&mut config, &["cgroupDriver"], json!("systemd"));
    if let Some(path) = resolv_conf {
        default_field(&mut config, &["resolvConf"], json!(path));
    }
    Ok(config)
}

/// The node's `/var/lib/kubelet/config.yaml`: the cluster-wide configuration with this node's
/// instance configuration (the CRI socket, with NodeLocalCRISocket) patched in.
pub fn node_configuration(cluster_wide: &Value, cri_socket: Option<&str>) -> Value {
    let mut config = cluster_wide.clone();
    if let Some(socket) = cri_socket {
        merge(&mut config, &json!({"containerRuntimeEndpoint": socket}));
    }
    config
}

/// `/var/lib/kubelet/instance-config.yaml` (NodeLocalCRISocket): the node's CRI socket.
pub fn instance_config(cri_socket: &str) -> String {
    format!(
        "containerRuntimeEndpoint: {}\n",
        serde_json::to_string(cri_socket).unwrap_or_default()
    )
}

/// `/var/lib/kubelet/kubeadm-flags.env` for the given kubelet arguments (`--name=value`).
pub fn flags_env(args: &[String]) -> String {
    format!(
        "KUBELET_KUBEADM_ARGS={}\n",
        serde_json::to_string(&args.join(" ")).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults;

    fn cluster() -> ClusterConfiguration {
        let mut c = ClusterConfiguration::default();
        defaults::cluster_configuration(&mut c);
        c
    }

    #[test]
    fn dns_ip_is_the_tenth_address() {
        assert_eq!(
            dns_ip("10.96.0.0/12").map(|i| i.to_string()).as_deref(),
            Some("10.96.0.10")
        );
        assert_eq!(
            dns_ip("10.100.5.0/16,fd00::/108")
                .map(|i| i.to_string())
                .as_deref(),
            Some("10.100.0.10")
        );
        assert_eq!(
            dns_ip("fd00:1::/108").map(|i| i.to_string()).as_deref(),
            Some("fd00:1::a")
        );
        assert_eq!(dns_ip("bogus"), None);
    }

    #[test]
    fn user_fields_win_but_rotation_stays_on() {
        let user = json!({"apiVersion": API_VERSION, "kind": KIND, "maxPods": 50, "cgroupDriver": "cgroupfs",
            "rotateCertificates": false, "authentication": {"x509": {"clientCAFile": "/x/ca.crt"}}});
        let c = configuration(&cluster(), Some(&user), None).expect("config");
        assert_eq!(c["maxPods"], 50);
        assert_eq!(c["cgroupDriver"], "cgroupfs");
        assert_eq!(c["rotateCertificates"], true);
        assert_eq!(c["authentication"]["x509"]["clientCAFile"], "/x/ca.crt");
        assert_eq!(c["authentication"]["webhook"]["enabled"], true);
        assert!(c.get("resolvConf").is_none());
        let bad = configuration(&cluster(), Some(&json!({"clusterDNS": "10.0.0.10"})), None);
        assert!(bad.expect_err("refused").to_string().contains("clusterDNS"));
    }

    #[test]
    fn systemd_resolved_sets_resolv_conf() {
        let c = configuration(&cluster(), None, Some(SYSTEMD_RESOLV_CONF)).expect("config");
        assert_eq!(c["resolvConf"], SYSTEMD_RESOLV_CONF);
    }
}
