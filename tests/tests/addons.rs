//! The built-in `addon` plugin (CoreDNS and kube-proxy) against the in-memory cluster: every
//! object equals what real kubeadm v1.36 created for the reference configuration
//! (`fixtures/reference/api`, server-set metadata aside), `dns.disabled` / `proxy.disabled`,
//! values that follow the configuration, a second run that changes nothing, and grants that
//! are exactly what the plugin declares.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use wasmadm::cluster::Cluster;
use wasmadm::cluster::memory::MemoryCluster;
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::{Outcome, Run, fixture, ty, write_config};

/// What real kubeadm printed for the phase (`init-output.txt` lines 78-79).
const KUBEADM_LINES: &[&str] = &[
    "[addons] Applied essential addon: CoreDNS",
    "[addons] Applied essential addon: kube-proxy",
];

fn run(root: &Path, config: &Path, cluster: &Arc<MemoryCluster>, sub: &str) -> Outcome {
    let pipeline = Pipeline::builtin_default().expect("default pipeline");
    let mut run = Run::new(&pipeline, root);
    run.config = Some(config);
    run.only = Some(("addon".into(), Some(sub.into())));
    run.cluster = Some(cluster.clone() as Arc<dyn Cluster>);
    let out = run.go();
    out.expect_ok();
    out
}

/// The stored objects, by (kind, name), without the metadata the server sets.
fn objects(cluster: &MemoryCluster) -> Vec<Value> {
    cluster
        .objects()
        .into_iter()
        .map(|mut o| {
            if let Some(meta) = o["metadata"].as_object_mut() {
                for k in ["uid", "resourceVersion", "creationTimestamp"] {
                    meta.remove(k);
                }
            }
            o
        })
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {} objects", objects.len()))
}

/// A reference object, without the annotations the API server's controllers add.
fn reference(file: &str) -> Value {
    let mut v = wasmadm_tests::reference_object(file);
    let meta = v["metadata"].as_object_mut().expect("metadata");
    if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        a.remove("deprecated.daemonset.template.generation");
        if a.is_empty() {
            meta.remove("annotations");
        }
    }
    v
}

#[test]
fn every_object_equals_kubeadms() {
    let root = tempfile::tempdir().expect("tmp");
    let cluster = Arc::new(MemoryCluster::new());
    let out = run(root.path(), &fixture("init-config.yaml"), &cluster, "all");
    assert_eq!(out.stdout, KUBEADM_LINES);
    let ours = objects(&cluster);
    let files: Vec<String> = std::fs::read_dir(fixture("reference/api"))
        .expect("reference dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        // The reference holds every object of init; these are the addons' (and the admin
        // binding every API phase ensures first).
        .filter(|f| {
            [
                "coredns",
                "kube-proxy",
                "kube-dns",
                "node-proxier",
                "cluster-admins",
            ]
            .iter()
            .any(|a| f.contains(a))
        })
        .collect();
    assert_eq!(files.len(), 13, "{files:?}");
    assert_eq!(ours.len(), files.len(), "one object per reference file");
    for file in files {
        let want = reference(&file);
        let kind = want["kind"].as_str().expect("kind");
        let name = want["metadata"]["name"].as_str().expect("name");
        assert_eq!(find(&ours, kind, name), &want, "{file}");
    }
}

#[test]
fn second_run_changes_nothing_and_repairs_a_drifted_object() {
    let root = tempfile::tempdir().expect("tmp");
    let cluster = Arc::new(MemoryCluster::new());
    let cfg = fixture("init-config.yaml");
    run(root.path(), &cfg, &cluster, "all");
    let first = cluster.objects();
    run(root.path(), &cfg, &cluster, "all");
    assert_eq!(cluster.objects(), first, "a second run must not write anything");

    // Someone edits the Corefile: the next run puts kubeadm's back, and touches nothing else.
    let cm = ty("", "ConfigMap", "configmaps");
    let mut edited = cluster
        .get(cm.collection(Some("kube-system")), "coredns")
        .expect("coredns cm");
    edited["data"]["Corefile"] = ".:53 { whoami }\n".into();
    cluster
        .update(cm.collection(Some("kube-system")), edited, false)
        .expect("edit");
    run(root.path(), &cfg, &cluster, "coredns");
    let after = cluster.objects();
    for (before, now) in first.iter().zip(&after) {
        if now["kind"] == "ConfigMap" && now["metadata"]["name"] == "coredns" {
            assert_eq!(now["data"], before["data"]);
            assert_ne!(
                now["metadata"]["resourceVersion"],
                before["metadata"]["resourceVersion"]
            );
        } else {
            assert_eq!(now, before);
        }
    }
}

#[test]
fn disabled_addons_are_not_installed() {
    let root = tempfile::tempdir().expect("tmp");
    for (extra, present, absent, line) in [
        (
            "dns:\n  disabled: true\n",
            "kube-proxy",
            "coredns",
            KUBEADM_LINES[1],
        ),
        (
            "proxy:\n  disabled: true\n",
            "coredns",
            "kube-proxy",
            KUBEADM_LINES[0],
        ),
    ] {
        let cluster = Arc::new(MemoryCluster::new());
        let out = run(root.path(), &write_config(root.path(), extra), &cluster, "all");
        assert_eq!(out.stdout, [line], "{extra}");
        let ours = objects(&cluster);
        assert!(ours.iter().any(|o| o["metadata"]["name"] == present));
        assert!(
            !ours.iter().any(|o| o["metadata"]["name"] == absent
                || (absent == "coredns" && o["metadata"]["name"] == "kube-dns")),
            "{extra}: {absent} objects were created"
        );
    }
}

#[test]
fn objects_follow_the_configuration() {
    let root = tempfile::tempdir().expect("tmp");
    let cluster = Arc::new(MemoryCluster::new());
    let cfg = write_config(
        root.path(),
        "controlPlaneEndpoint: lb.example:7443\nimageRepository: mirror.example/k8s\n\
         networking:\n  serviceSubnet: 10.100.0.0/16\n  podSubnet: 10.244.0.0/16\n  dnsDomain: corp.internal\n",
    );
    run(root.path(), &cfg, &cluster, "all");
    let ours = objects(&cluster);
    let svc = find(&ours, "Service", "kube-dns");
    assert_eq!(svc["spec"]["clusterIP"], "10.100.0.10");
    assert_eq!(svc["spec"]["clusterIPs"], json!(["10.100.0.10"]));
    let corefile = find(&ours, "ConfigMap", "coredns")["data"]["Corefile"]
        .as_str()
        .expect("Corefile");
    assert!(
        corefile.contains("kubernetes corp.internal in-addr.arpa ip6.arpa {"),
        "{corefile}"
    );
    assert!(corefile.contains("disable denial corp.internal\n"), "{corefile}");
    let image =
        |kind, name| find(&ours, kind, name)["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    // Only registry.k8s.io has the nested coredns/ path.
    assert_eq!(
        image("Deployment", "coredns"),
        "mirror.example/k8s/coredns:v1.14.2"
    );
    assert_eq!(
        image("DaemonSet", "kube-proxy"),
        "mirror.example/k8s/kube-proxy:v1.36.2"
    );
    let proxy = find(&ours, "ConfigMap", "kube-proxy");
    let conf = proxy["data"]["config.conf"].as_str().expect("config.conf");
    assert!(conf.contains("\nclusterCIDR: 10.244.0.0/16\n"), "{conf}");
    let kubeconfig = proxy["data"]["kubeconfig.conf"]
        .as_str()
        .expect("kubeconfig.conf");
    assert!(
        kubeconfig.contains("    server: https://lb.example:7443\n"),
        "{kubeconfig}"
    );
    let mut hash = Sha256::new();
    hash.update(conf.as_bytes());
    hash.update(kubeconfig.as_bytes());
    assert_eq!(
        proxy["metadata"]["annotations"]["kubeadm.kubernetes.io/component-config.hash"],
        format!("sha256:{:x}", hash.finalize())
    );
}

#[test]
fn user_kube_proxy_configuration_is_merged_over_kubeadms() {
    let root = tempfile::tempdir().expect("tmp");
    let cluster = Arc::new(MemoryCluster::new());
    let cfg = write_config(
        root.path(),
        "---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n\
         ipvs:\n  strictARP: true\n",
    );
    run(root.path(), &cfg, &cluster, "kube-proxy");
    let ours = objects(&cluster);
    let conf = find(&ours, "ConfigMap", "kube-proxy")["data"]["config.conf"]
        .as_str()
        .expect("config.conf")
        .to_string();
    assert!(conf.contains("\nmode: ipvs\n"), "{conf}");
    assert!(conf.contains("\n  strictARP: true\n"), "{conf}");
    assert!(
        conf.contains("\n  scheduler: \"\"\n"),
        "kubeadm's zero values stay: {conf}"
    );
    assert!(conf.starts_with("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nbindAddress: 0.0.0.0\n"));
}

/// The second configuration (`reference/extra-args`) with `--skip-phases addon/coredns`: only
/// kube-proxy is installed, and its ConfigMap, from the user's KubeProxyConfiguration, is what
/// kubeadm's `init --dry-run` printed: the user's values over kubeadm's, and no hash annotation
/// (kubeadm signs only a configuration it generated).
#[test]
fn user_kube_proxy_configuration_is_uploaded_unsigned_as_kubeadm_does() {
    let root = tempfile::tempdir().expect("tmp");
    let cluster = Arc::new(MemoryCluster::new());
    let pipeline = Pipeline::builtin_default().expect("default pipeline");
    let config = fixture("reference/extra-args/init-config.yaml");
    let mut run = Run::new(&pipeline, root.path());
    run.config = Some(&config);
    run.only = Some(("addon".into(), Some("all".into())));
    run.flags.skip_phases = vec!["addon/coredns".into()];
    run.cluster = Some(cluster.clone() as Arc<dyn Cluster>);
    let out = run.go();
    out.expect_ok();
    assert_eq!(out.stdout, ["[addons] Applied essential addon: kube-proxy"]);
    let ours = objects(&cluster);
    let want =
        wasmadm_tests::yaml_fixture("reference/extra-args/api-skip-coredns/kube-system.cm.kube-proxy.yaml");
    assert_eq!(find(&ours, "ConfigMap", "kube-proxy"), &want);
}

#[test]
fn a_deployed_coredns_keeps_its_replicas() {
    let root = tempfile::tempdir().expect("tmp");
    let cluster = Arc::new(MemoryCluster::new());
    let deployments = ty("apps", "Deployment", "deployments");
    let scaled =
        json!({"metadata": {"name": "coredns", "labels": {"k8s-app": "kube-dns"}}, "spec": {"replicas": 5}});
    cluster
        .create(deployments.collection(Some("kube-system")), scaled, false)
        .expect("pre-existing deployment");
    run(root.path(), &fixture("init-config.yaml"), &cluster, "coredns");
    let d = cluster
        .get(deployments.collection(Some("kube-system")), "coredns")
        .expect("coredns");
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(
        d["spec"]["template"]["spec"]["priorityClassName"],
        "system-cluster-critical"
    );
}

#[test]
fn an_ipv6_cluster_gets_ipv6_addresses() {
    let root = tempfile::tempdir().expect("tmp");
    let cfg = root.path().join("v6.yaml");
    std::fs::write(
        &cfg,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
         localAPIEndpoint: {advertiseAddress: \"fd00:10::2\", bindPort: 6443}\nnodeRegistration: {name: n1}\n---\n\
         apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.36.2\n\
         networking: {serviceSubnet: \"fd00:96::/108\", podSubnet: \"fd00:244::/56\"}\n",
    )
    .expect("write config");
    let cluster = Arc::new(MemoryCluster::new());
    run(root.path(), &cfg, &cluster, "all");
    let ours = objects(&cluster);
    let svc = &find(&ours, "Service", "kube-dns")["spec"];
    assert_eq!(svc["clusterIP"], "fd00:96::a");
    assert_eq!(svc["ipFamilies"], json!(["IPv6"]));
    let data = &find(&ours, "ConfigMap", "kube-proxy")["data"];
    let conf = data["config.conf"].as_str().expect("config.conf");
    // yaml.v2 quotes a string that ends in ':'.
    assert!(conf.contains("\nbindAddress: '::'\n"), "{conf}");
    assert!(conf.contains("\nclusterCIDR: fd00:244::/56\n"), "{conf}");
    let kubeconfig = data["kubeconfig.conf"].as_str().expect("kubeconfig.conf");
    assert!(
        kubeconfig.contains("server: https://[fd00:10::2]:6443\n"),
        "{kubeconfig}"
    );
}
