//! kubeadm's static Pod manifests (`/etc/kubernetes/manifests/*.yaml`), shared by the `etcd` and
//! `control-plane` phases.
//!
//! Manifests are built as JSON values and written as Go's `sigs.k8s.io/yaml` writes them
//! (`kubeadm_config::yaml`, keys sorted): byte for byte kubeadm's output, which
//! `tests/tests/manifests.rs` checks against real kubeadm's files.

use kubeadm_config::{Arg, EnvVar, HostPathMount};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Where kubeadm writes static Pod manifests.
pub const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";

/// kubeadm's priority for control-plane pods (`system-node-critical`).
const PRIORITY: u64 = 2_000_001_000;

/// One hostPath volume and its mount.
#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub host_path: String,
    pub mount_path: String,
    /// `hostPath.type`, written even when empty (`type: ""`), as kubeadm does for an
    /// `extraVolumes` entry without `pathType`.
    pub path_type: String,
    pub read_only: bool,
}

impl Volume {
    pub fn new(name: &str, path: &str, path_type: &str, read_only: bool) -> Self {
        Self {
            name: name.into(),
            host_path: path.into(),
            mount_path: path.into(),
            path_type: path_type.into(),
            read_only,
        }
    }

    fn from_extra(v: &HostPathMount) -> Self {
        Self {
            name: v.name.clone(),
            host_path: v.host_path.clone(),
            mount_path: v.mount_path.clone(),
            path_type: v.path_type.clone().unwrap_or_default(),
            read_only: v.read_only,
        }
    }
}

/// An HTTP(S) probe target: host, path, scheme; the port is the container's `probe-port`.
#[derive(Debug, Clone)]
pub struct Probes {
    /// Empty: no `host`, the kubelet probes the Pod IP (see [`probe_address`]).
    pub host: String,
    pub scheme: &'static str,
    pub liveness_path: &'static str,
    /// kubeadm gives the controller-manager no readiness probe.
    pub readiness_path: Option<&'static str>,
    pub startup_path: &'static str,
}

/// What differs between kubeadm's static pods.
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub component: String,
    pub image: String,
    pub command: Vec<String>,
    pub port: u16,
    pub probes: Probes,
    pub cpu: &'static str,
    pub memory: Option<&'static str>,
    pub volumes: Vec<Volume>,
    pub annotations: Vec<(String, String)>,
    pub env: Vec<EnvVar>,
}

/// kubeadm's `ArgumentsToCommand` (v1.36): the defaults sorted by name (then value), less those
/// that `extra` names, then `extra` in the user's order, repeated names kept as given.
pub fn command(binary: &str, defaults: &[(&str, String)], extra: &[Arg]) -> Vec<String> {
    let mut base: Vec<&(&str, String)> = defaults
        .iter()
        .filter(|(name, _)| !extra.iter().any(|e| e.name == *name))
        .collect();
    base.sort();
    std::iter::once(binary.to_string())
        .chain(base.into_iter().map(|(n, v)| format!("--{n}={v}")))
        .chain(extra.iter().map(|e| format!("--{}={}", e.name, e.value)))
        .collect()
}

/// The value of the last `name` in `args` (kubeadm's `GetArgValue(args, name, -1)`).
pub fn arg_value<'a>(args: &'a [Arg], name: &str) -> Option<&'a str> {
    args.iter()
        .rev()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
}

/// The loopback address of the advertise address's family: where kubeadm has etcd listen for
/// local clients and metrics, and the API server reach a local etcd.
pub fn loopback_of(advertise_address: &str) -> &'static str {
    if advertise_address.parse::<std::net::Ipv6Addr>().is_ok() {
        "::1"
    } else {
        "127.0.0.1"
    }
}

/// kubeadm's `getProbeAddress`: an unspecified bind address (`0.0.0.0`, `::`) cannot be probed, so
/// the probe gets no host and the kubelet probes the Pod IP.
pub fn probe_address(addr: &str) -> &str {
    if addr == "0.0.0.0" || addr == "::" {
        ""
    } else {
        addr
    }
}

/// A control-plane component's volumes as kubeadm keeps them: by name, an `extraVolumes` entry
/// replacing a default (or an earlier entry) of the same name, sorted by name.
pub fn with_extra_volumes(volumes: Vec<Volume>, extra: &[HostPathMount]) -> Vec<Volume> {
    let by_name: BTreeMap<String, Volume> = volumes
        .into_iter()
        .chain(extra.iter().map(Volume::from_extra))
        .map(|v| (v.name.clone(), v))
        .collect();
    by_name.into_values().collect()
}

/// kubeadm's `MergeKubeadmEnvVars`: one variable per name, the last given wins, sorted by name.
fn merged_env(env: &[EnvVar]) -> Vec<&EnvVar> {
    let by_name: BTreeMap<&str, &EnvVar> = env.iter().map(|e| (e.name.as_str(), e)).collect();
    by_name.into_values().collect()
}

fn probe(p: &Probes, path: &str, failure_threshold: u32, initial_delay: bool, period: u32) -> Value {
    let mut probe = json!({
        "failureThreshold": failure_threshold,
        "httpGet": {"path": path, "port": "probe-port", "scheme": p.scheme},
        "periodSeconds": period,
        "timeoutSeconds": 15,
    });
    if !p.host.is_empty() {
        probe["httpGet"]["host"] = json!(p.host);
    }
    if initial_delay {
        probe["initialDelaySeconds"] = json!(10);
    }
    probe
}

/// The Pod object kubeadm writes for a control-plane component.
pub fn pod(spec: &PodSpec) -> Value {
    let mut metadata = json!({
        "labels": {"component": spec.component, "tier": "control-plane"},
        "name": spec.component,
        "namespace": "kube-system",
    });
    if !spec.annotations.is_empty() {
        metadata["annotations"] = spec
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
    }
    let mut requests = json!({"cpu": spec.cpu});
    if let Some(memory) = spec.memory {
        requests["memory"] = json!(memory);
    }
    let mut container = json!({
        "command": spec.command,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": probe(&spec.probes, spec.probes.liveness_path, 8, true, 10),
        "name": spec.component,
        "ports": [{"containerPort": spec.port, "name": "probe-port", "protocol": "TCP"}],
        "resources": {"requests": requests},
        "startupProbe": probe(&spec.probes, spec.probes.startup_path, 24, true, 10),
        "volumeMounts": spec.volumes.iter().map(|v| {
            let mut m = json!({"mountPath": v.mount_path, "name": v.name});
            if v.read_only {
                m["readOnly"] = json!(true);
            }
            m
        }).collect::<Vec<_>>(),
    });
    if let Some(path) = spec.probes.readiness_path {
        container["readinessProbe"] = probe(&spec.probes, path, 3, false, 1);
    }
    if !spec.env.is_empty() {
        container["env"] = merged_env(&spec.env)
            .into_iter()
            .map(|e| json!({"name": e.name, "value": e.value}))
            .collect();
    }
    let mut volumes: Vec<&Volume> = spec.volumes.iter().collect();
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [container],
            "hostNetwork": true,
            "priority": PRIORITY,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": volumes.iter().map(|v| {
                json!({"hostPath": {"path": v.host_path, "type": v.path_type}, "name": v.name})
            }).collect::<Vec<_>>(),
        },
        "status": {},
    })
}

/// The manifest as kubeadm writes it (Go's YAML: `type: ""`, not `serde_yaml`'s `type: ''`).
pub fn to_yaml(pod: &Value) -> String {
    kubeadm_config::yaml::to_string(pod)
}

pub use kubeadm_config::join_host_port;

/// The etcd image tag kubeadm pins for a Kubernetes minor version.
pub fn etcd_version(kubernetes_version: &str) -> &'static str {
    let minor = kubernetes_version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0);
    match minor {
        0..=33 => "3.5.21-0",
        34 => "3.6.4-0",
        35 => "3.6.6-0",
        _ => "3.6.8-0",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(name: &str, value: &str) -> Arg {
        Arg {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn extra_args_follow_the_sorted_defaults_in_their_own_order() {
        let defaults = [("c", "3".into()), ("b", "old".into()), ("a", "1".into())];
        // `b` overrides a default: it leaves the defaults and comes with the extras; `z` is
        // repeated and both stay, in the given order (not sorted by value).
        let extra = [arg("z", "2"), arg("b", "new"), arg("z", "1"), arg("d", "4")];
        assert_eq!(
            command("x", &defaults, &extra),
            ["x", "--a=1", "--c=3", "--z=2", "--b=new", "--z=1", "--d=4"]
        );
        assert_eq!(command("x", &defaults, &[]), ["x", "--a=1", "--b=old", "--c=3"]);
    }

    #[test]
    fn the_last_bind_address_sets_the_probe_host_and_an_unspecified_one_none() {
        let args = [
            arg("bind-address", "10.0.0.1"),
            arg("v", "2"),
            arg("bind-address", "0.0.0.0"),
        ];
        assert_eq!(arg_value(&args, "bind-address"), Some("0.0.0.0"));
        assert_eq!(arg_value(&args, "port"), None);
        assert_eq!(probe_address("0.0.0.0"), "");
        assert_eq!(probe_address("::"), "");
        assert_eq!(probe_address("10.0.0.1"), "10.0.0.1");
        assert_eq!(loopback_of("fd00::2"), "::1");
        assert_eq!(loopback_of("10.0.0.2"), "127.0.0.1");
    }

    #[test]
    fn extra_volumes_replace_defaults_by_name_and_sort() {
        let mount = |name: &str, path: &str, path_type: Option<&str>| HostPathMount {
            name: name.into(),
            host_path: path.into(),
            mount_path: path.into(),
            read_only: false,
            path_type: path_type.map(String::from),
        };
        let defaults = vec![
            Volume::new("k8s-certs", "/etc/kubernetes/pki", "DirectoryOrCreate", true),
            Volume::new("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", true),
        ];
        let extra = [
            mount("audit", "/var/log/a", None),
            mount("k8s-certs", "/srv/pki", Some("Directory")),
        ];
        let volumes = with_extra_volumes(defaults, &extra);
        let summary: Vec<(&str, &str, &str, bool)> = volumes
            .iter()
            .map(|v| {
                (
                    v.name.as_str(),
                    v.host_path.as_str(),
                    v.path_type.as_str(),
                    v.read_only,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("audit", "/var/log/a", "", false),
                ("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", true),
                ("k8s-certs", "/srv/pki", "Directory", false),
            ]
        );
    }

    #[test]
    fn env_is_one_variable_per_name_sorted_and_the_last_wins() {
        let var = |name: &str, value: &str| EnvVar {
            name: name.into(),
            value: value.into(),
        };
        let env = [var("TZ", "UTC"), var("GODEBUG", "x=1"), var("TZ", "Europe/Paris")];
        let merged: Vec<(&str, &str)> = merged_env(&env)
            .into_iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(merged, [("GODEBUG", "x=1"), ("TZ", "Europe/Paris")]);
    }

    #[test]
    fn a_volume_without_path_type_is_written_with_an_empty_type() {
        let mut volume = Volume::new("flex", "/usr/libexec/flex", "", false);
        volume.mount_path = "/flex".into();
        let spec = PodSpec {
            component: "c".into(),
            image: "i".into(),
            command: vec!["c".into()],
            port: 1,
            probes: Probes {
                host: "127.0.0.1".into(),
                scheme: "HTTPS",
                liveness_path: "/livez",
                readiness_path: None,
                startup_path: "/livez",
            },
            cpu: "1m",
            memory: None,
            volumes: vec![volume],
            annotations: Vec::new(),
            env: Vec::new(),
        };
        let yaml = to_yaml(&pod(&spec));
        assert!(
            yaml.contains("  - hostPath:\n      path: /usr/libexec/flex\n      type: \"\"\n    name: flex\n"),
            "{yaml}"
        );
        assert!(
            yaml.contains("    - mountPath: /flex\n      name: flex\n"),
            "{yaml}"
        );
    }
}
