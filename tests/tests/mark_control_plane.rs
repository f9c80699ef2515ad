//! The `mark-control-plane` phase against the in-memory cluster (with the host's simulated
//! kubelet registration), compared with the Node real kubeadm v1.36 marked
//! (`tests/fixtures/reference/api/node.n1.yaml`); custom and empty `nodeRegistration.taints`;
//! idempotency; a Node that never appears. Then the whole kubelet part of `init` in order.

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use wasmadm::cluster::memory::MemoryCluster;
use wasmadm::cluster::{Cluster, ResourceType};
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::{
    Outcome, Run, default_pipeline, fixture, memory_cluster_with_node, node, reference_object,
};

fn nodes() -> ResourceType {
    ResourceType {
        group: String::new(),
        version: "v1".into(),
        kind: "Node".into(),
        plural: "nodes".into(),
        namespaced: false,
    }
}

fn mark(pipeline: &Pipeline, root: &Path, cluster: &Arc<MemoryCluster>, config: Option<&Path>) -> Outcome {
    let reference = fixture("init-config.yaml");
    let mut run = Run::new(pipeline, root);
    run.config = Some(config.unwrap_or(&reference));
    run.only = Some(("mark-control-plane".into(), None));
    run.cluster = Some(cluster.clone());
    run.go()
}

fn node_n1(cluster: &MemoryCluster) -> Value {
    cluster.get(nodes().collection(None), "n1").expect("node n1")
}

fn config_with_taints(dir: &Path, taints: &str) -> std::path::PathBuf {
    let base = std::fs::read_to_string(fixture("init-config.yaml")).expect("fixture");
    let path = dir.join("config.yaml");
    let text = base.replace("  name: n1\n", &format!("  name: n1\n  taints: {taints}\n"));
    assert_ne!(text, base);
    std::fs::write(&path, text).expect("config");
    path
}

#[test]
fn node_is_labelled_and_tainted_as_kubeadm_did_and_second_run_changes_nothing() {
    let root = node("healthy");
    let cluster = memory_cluster_with_node("n1");
    let out = mark(&default_pipeline(), root.path(), &cluster, None);
    out.expect_ok();
    assert_eq!(
        out.stdout,
        [
            "[mark-control-plane] Marking the node n1 as control-plane by adding the labels: [node-role.kubernetes.io/control-plane node.kubernetes.io/exclude-from-external-load-balancers]",
            "[mark-control-plane] Marking the node n1 as control-plane by adding the taints [node-role.kubernetes.io/control-plane:NoSchedule]",
        ]
    );
    let ours = node_n1(&cluster);
    let reference = reference_object("node.n1.yaml");
    assert_eq!(ours["metadata"]["labels"], reference["metadata"]["labels"]);
    assert_eq!(ours["spec"]["taints"], reference["spec"]["taints"]);

    let version = ours["metadata"]["resourceVersion"].clone();
    mark(&default_pipeline(), root.path(), &cluster, None).expect_ok();
    assert_eq!(node_n1(&cluster)["metadata"]["resourceVersion"], version);
}

#[test]
fn custom_taints_replace_the_default_and_keep_other_taints() {
    let root = node("healthy");
    let cluster = memory_cluster_with_node("n1");
    cluster
        .patch(
            nodes().collection(None),
            "n1",
            wasmadm::cluster::Patch::Merge(
                json!({"spec": {"taints": [{"key": "example.com/other", "effect": "PreferNoSchedule"}]}}),
            ),
            false,
        )
        .expect("existing taint");
    let config = config_with_taints(root.path(), "[{key: dedicated, value: infra, effect: NoExecute}]");
    let out = mark(&default_pipeline(), root.path(), &cluster, Some(&config));
    out.expect_ok();
    assert_eq!(
        out.stdout[1],
        "[mark-control-plane] Marking the node n1 as control-plane by adding the taints [dedicated=infra:NoExecute]"
    );
    assert_eq!(
        node_n1(&cluster)["spec"]["taints"],
        json!([
            {"key": "dedicated", "value": "infra", "effect": "NoExecute"},
            {"key": "example.com/other", "effect": "PreferNoSchedule"}
        ])
    );
}

#[test]
fn empty_taints_mean_no_taint() {
    let root = node("healthy");
    let cluster = memory_cluster_with_node("n1");
    let config = config_with_taints(root.path(), "[]");
    let out = mark(&default_pipeline(), root.path(), &cluster, Some(&config));
    out.expect_ok();
    assert_eq!(out.stdout.len(), 1, "no taints line: {:?}", out.stdout);
    let n1 = node_n1(&cluster);
    assert!(n1["spec"]["taints"].is_null(), "{n1}");
    assert_eq!(
        n1["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        ""
    );
}

#[test]
fn a_node_that_never_registers_times_out_with_a_clear_error() {
    let root = node("healthy");
    let yaml = Pipeline::DEFAULT_YAML.replace(
        "    component: builtin:mark-control-plane\n",
        "    component: builtin:mark-control-plane\n    settings: {nodeWaitTimeout: 1s}\n",
    );
    assert_ne!(yaml, Pipeline::DEFAULT_YAML);
    let pipeline = Pipeline::parse(&yaml, Path::new("p.yaml")).expect("pipeline");
    let cluster = Arc::new(MemoryCluster::new());
    let started = std::time::Instant::now();
    let err = mark(&pipeline, root.path(), &cluster, None).error();
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        err.contains("timed out after 1s waiting for the kubelet to register the Node \"n1\""),
        "{err}"
    );
    assert!(err.contains("nodes \"n1\" not found"), "{err}");
    assert!(err.contains("systemctl status kubelet"), "{err}");
}

#[test]
fn kubelet_phases_of_init_print_kubeadms_lines_in_order() {
    let root = node("healthy");
    std::fs::write(
        root.path().join("proc/sys/kernel/hostname"),
        "kubeadm-reference\n",
    )
    .expect("hostname");
    std::fs::remove_file(root.path().join("usr/bin/systemctl")).expect("no init system, as the reference");
    let pki = root.path().join("var/lib/kubelet/pki");
    std::fs::create_dir_all(&pki).expect("mkdir");
    std::fs::write(pki.join("kubelet-client-current.pem"), "PEM").expect("pem");
    std::fs::copy(
        fixture("reference/kubeconfig/kubelet.conf"),
        root.path().join("etc/kubernetes/kubelet.conf"),
    )
    .expect("kubelet.conf");
    // The default pipeline's phases of this part of init, in its order (other phases need
    // what earlier phases write).
    let pipeline = wasmadm_tests::default_pipeline_of(&[
        "kubelet-start",
        "upload-config",
        "mark-control-plane",
        "kubelet-finalize",
    ]);
    let mut run = Run::new(&pipeline, root.path());
    let config = fixture("init-config.yaml");
    run.config = Some(&config);
    let cluster = memory_cluster_with_node("n1");
    run.cluster = Some(cluster.clone());
    let out = run.go();
    out.expect_ok();
    let text = std::fs::read_to_string(fixture("reference/init-output.txt")).expect("output");
    let kubeadm: Vec<&str> = text
        .lines()
        .filter(|l| {
            [
                "[kubelet-start]",
                "[patches]",
                "[upload-config]",
                "[kubelet]",
                "[mark-control-plane]",
                "[kubelet-finalize]",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect();
    assert_eq!(out.stdout, kubeadm);
    assert_eq!(
        node_n1(&cluster)["spec"]["taints"],
        reference_object("node.n1.yaml")["spec"]["taints"]
    );
}
