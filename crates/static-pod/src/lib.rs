//! kubeadm's static Pod manifests (`/etc/kubernetes/manifests/*.yaml`), shared by the `etcd` and
//! `control-plane` phases.
//!
//! Manifests are built as JSON values and written through `serde_yaml`: with `serde_json`'s
//! sorted maps this reproduces kubeadm's output byte for byte (Go's `sigs.k8s.io/yaml` also sorts
//! keys), which `tests/tests/manifests.rs` checks against real kubeadm's files.

use kubeadm_config::{Arg, EnvVar, HostPathMount};
use serde_json::{Value, json};

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
    pub path_type: &'static str,
    pub read_only: bool,
}

impl Volume {
    pub fn new(name: &str, path: &str, path_type: &'static str, read_only: bool) -> Self {
        Self {
            name: name.into(),
            host_path: path.into(),
            mount_path: path.into(),
            path_type,
            read_only,
        }
    }

    fn from_extra(v: &HostPathMount) -> Self {
        Self {
            name: v.name.clone(),
            host_path: v.host_path.clone(),
            mount_path: v.mount_path.clone(),
            path_type: match v.path_type.as_deref() {
                Some("DirectoryOrCreate") => "DirectoryOrCreate",
                Some("Directory") => "Directory",
                Some("FileOrCreate") => "FileOrCreate",
                Some("File") => "File",
                Some("Socket") => "Socket",
                _ => "",
            },
            read_only: v.read_only,
        }
    }
}

/// An HTTP(S) probe target: host, path, scheme; the port is the container's `probe-port`.
#[derive(Debug, Clone)]
pub struct Probes {
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

/// kubeadm's argument merge: `extra` replaces defaults of the same name (a name given several
/// times in `extra` is kept several times), and the result is sorted by name.
pub fn command(binary: &str, defaults: &[(&str, String)], extra: &[Arg]) -> Vec<String> {
    let mut args: Vec<(String, String)> = defaults
        .iter()
        .filter(|(name, _)| !extra.iter().any(|e| e.name == *name))
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    args.extend(extra.iter().map(|e| (e.name.clone(), e.value.clone())));
    args.sort_by(|a, b| a.0.cmp(&b.0));
    std::iter::once(binary.to_string())
        .chain(args.into_iter().map(|(n, v)| format!("--{n}={v}")))
        .collect()
}

/// Adds `extraVolumes` to a component's volumes.
pub fn with_extra_volumes(mut volumes: Vec<Volume>, extra: &[HostPathMount]) -> Vec<Volume> {
    volumes.extend(extra.iter().map(Volume::from_extra));
    volumes
}

fn probe(p: &Probes, path: &str, failure_threshold: u32, initial_delay: bool, period: u32) -> Value {
    let mut probe = json!({
        "failureThreshold": failure_threshold,
        "httpGet": {"host": p.host, "path": path, "port": "probe-port", "scheme": p.scheme},
        "periodSeconds": period,
        "timeoutSeconds": 15,
    });
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
        container["env"] = spec
            .env
            .iter()
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
                let mut host_path = json!({"path": v.host_path});
                if !v.path_type.is_empty() {
                    host_path["type"] = json!(v.path_type);
                }
                json!({"hostPath": host_path, "name": v.name})
            }).collect::<Vec<_>>(),
        },
        "status": {},
    })
}

/// The manifest as kubeadm writes it.
pub fn to_yaml(pod: &Value) -> Result<String, String> {
    serde_yaml::to_string(pod).map_err(|e| format!("cannot render the manifest: {e}"))
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

    #[test]
    fn extra_args_replace_defaults_and_sort() {
        let extra = [
            Arg {
                name: "b".into(),
                value: "new".into(),
            },
            Arg {
                name: "a".into(),
                value: "1".into(),
            },
        ];
        let cmd = command("x", &[("c", "3".into()), ("b", "old".into())], &extra);
        assert_eq!(cmd, ["x", "--a=1", "--b=new", "--c=3"]);
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {}
}
