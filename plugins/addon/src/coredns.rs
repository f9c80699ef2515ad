//! The CoreDNS addon's objects, as kubeadm v1.36 creates them (`phases/addons/dns`), with the
//! fields the API server would default spelled out, so the stored objects equal a real
//! cluster's and a second run compares equal.

use serde_json::{Value, json};
use wasmadm_plugin_sdk::config::ClusterConfiguration;
use wasmadm_plugin_sdk::config::defaults::DEFAULT_IMAGE_REPOSITORY;

/// The CoreDNS version kubeadm v1.36 deploys (`constants.CoreDNSVersion`).
pub const COREDNS_VERSION: &str = "v1.14.2";
/// kubeadm's replica count for a new CoreDNS Deployment.
pub const DEFAULT_REPLICAS: i64 = 2;
const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

/// kubeadm's `GetDNSImage`: `dns.imageRepository` or the cluster's, with the `coredns/`
/// sub-path only on registry.k8s.io, and `dns.imageTag` or kubeadm's pinned version.
pub fn image(cluster: &ClusterConfiguration) -> String {
    let mut repository = if cluster.dns.image_repository.is_empty() {
        cluster.image_repository.clone()
    } else {
        cluster.dns.image_repository.clone()
    };
    if repository == DEFAULT_IMAGE_REPOSITORY {
        repository.push_str("/coredns");
    }
    let tag = if cluster.dns.image_tag.is_empty() {
        COREDNS_VERSION
    } else {
        &cluster.dns.image_tag
    };
    format!("{repository}/coredns:{tag}")
}

/// The Corefile for `domain`.
pub fn corefile(domain: &str) -> String {
    format!(
        ".:53 {{\n    errors\n    health {{\n       lameduck 5s\n    }}\n    ready\n    \
         kubernetes {domain} in-addr.arpa ip6.arpa {{\n       pods insecure\n       \
         fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }}\n    prometheus :9153\n    \
         forward . /etc/resolv.conf {{\n       max_concurrent 1000\n    }}\n    cache 30 {{\n       \
         disable success {domain}\n       disable denial {domain}\n    }}\n    loop\n    reload\n    \
         loadbalance\n}}\n"
    )
}

pub fn config_map(domain: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "coredns", "namespace": "kube-system"},
        "data": {"Corefile": corefile(domain)},
    })
}

pub fn cluster_role() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:coredns"},
        "rules": [
            {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
        ],
    })
}

fn port(name: &str, number: u16, protocol: &str) -> Value {
    json!({"containerPort": number, "name": name, "protocol": protocol})
}

fn http_probe(path: &str, port: &str) -> Value {
    json!({"path": path, "port": port, "scheme": "HTTP"})
}

pub fn deployment(image: &str, replicas: i64) -> Value {
    let selector = json!({"k8s-app": "kube-dns"});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": selector},
        "spec": {
            "progressDeadlineSeconds": 600,
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "podAffinityTerm": {
                            "labelSelector": {"matchExpressions": [{"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                        "weight": 100,
                    }]}},
                    "containers": [{
                        "args": ["-conf", "/etc/coredns/Corefile"],
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "livenessProbe": {
                            "failureThreshold": 5,
                            "httpGet": http_probe("/health", "liveness-probe"),
                            "initialDelaySeconds": 60,
                            "periodSeconds": 10,
                            "successThreshold": 1,
                            "timeoutSeconds": 5,
                        },
                        "name": "coredns",
                        "ports": [
                            port("dns", 53, "UDP"),
                            port("dns-tcp", 53, "TCP"),
                            port("metrics", 9153, "TCP"),
                            port("liveness-probe", 8080, "TCP"),
                            port("readiness-probe", 8181, "TCP"),
                        ],
                        "readinessProbe": {
                            "failureThreshold": 3,
                            "httpGet": http_probe("/ready", "readiness-probe"),
                            "periodSeconds": 10,
                            "successThreshold": 1,
                            "timeoutSeconds": 1,
                        },
                        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                            "readOnlyRootFilesystem": true,
                        },
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "volumeMounts": [{"mountPath": "/etc/coredns", "name": "config-volume", "readOnly": true}],
                    }],
                    "dnsPolicy": "Default",
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "priorityClassName": "system-cluster-critical",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "serviceAccount": "coredns",
                    "serviceAccountName": "coredns",
                    "terminationGracePeriodSeconds": 30,
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"effect": "NoSchedule", "key": CONTROL_PLANE_TAINT},
                    ],
                    "volumes": [{
                        "configMap": {"defaultMode": 420, "items": [{"key": "Corefile", "path": "Corefile"}], "name": "coredns"},
                        "name": "config-volume",
                    }],
                },
            },
        },
    })
}

fn service_port(name: &str, number: u16, protocol: &str) -> Value {
    json!({"name": name, "port": number, "protocol": protocol, "targetPort": number})
}

/// Service `kube-dns` at `ip` (the 10th address of the service CIDR).
pub fn service(ip: &str) -> Value {
    let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
        },
        "spec": {
            "clusterIP": ip,
            "clusterIPs": [ip],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": [family],
            "ipFamilyPolicy": "SingleStack",
            "ports": [
                service_port("dns", 53, "UDP"),
                service_port("dns-tcp", 53, "TCP"),
                service_port("metrics", 9153, "TCP"),
            ],
            "selector": {"k8s-app": "kube-dns"},
            "sessionAffinity": "None",
            "type": "ClusterIP",
        },
    })
}
