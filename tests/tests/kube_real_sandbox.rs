//! The `kube` capability's checks against a real API server (issue 9, items 1 and 2): etcd and
//! kube-apiserver started from the generated manifests, with an audit log of every request. The
//! hostile probe's refused calls must never reach the server; the granted ones must arrive exactly
//! as authorized.
//!
//! Needs `KUBEBUILDER_ASSETS` with `etcd` and `kube-apiserver` when the tests are built (see
//! `e2e_control_plane.rs`); without it the test is reported as `ignored`.
#![cfg_attr(not(kubebuilder_assets), allow(dead_code, unused_imports))]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmadm::cluster::real::RealCluster;
use wasmadm::cluster::{Cluster, ResourceType};
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::cluster::{asset, assets_dir, kubernetes_version};
use wasmadm_tests::static_pod::{Process, Rewrites, StaticPod, etcd_rewrites, free_port, http_status};
use wasmadm_tests::{PROBE_WASM, Run, node, run_phases, sha256_file};

/// etcd and kube-apiserver of a generated node, the API server writing an audit log of every
/// request (level Metadata: who, verb, URI) to `<root>/audit.log`.
struct ApiServer {
    root: tempfile::TempDir,
    _processes: Vec<Process>,
}

impl ApiServer {
    fn start() -> Self {
        let apiserver_bin = asset("kube-apiserver");
        let version = kubernetes_version(&assets_dir());
        let root = node("healthy");
        let port = free_port();
        let config = root.path().join("kubeadm.yaml");
        std::fs::write(
            &config,
            format!(
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
                 localAPIEndpoint: {{advertiseAddress: 127.0.0.1, bindPort: {port}}}\n\
                 nodeRegistration: {{name: n1}}\n---\n\
                 apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
                 kubernetesVersion: {version}\n"
            ),
        )
        .expect("config");
        run_phases(
            root.path(),
            &config,
            &["certs", "kubeconfig", "etcd", "control-plane"],
        );

        let etcd_bin = asset("etcd");
        let (rewrites, ports) = etcd_rewrites(&etcd_bin, "127.0.0.1");
        let etcd = StaticPod::load(root.path(), "etcd");
        let mut etcd_process = etcd.start(&etcd_bin, &etcd.command_line(root.path(), &rewrites), root.path());
        etcd_process.wait_until(Duration::from_secs(30), || {
            http_status(ports.metrics, "/health") == Some(200)
        });

        let policy = root.path().join("audit-policy.yaml");
        std::fs::write(
            &policy,
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
        )
        .expect("audit policy");
        let to_etcd = Rewrites {
            addresses: vec![(":2379".into(), format!(":{}", ports.client))],
            ..Rewrites::default()
        };
        let apiserver = StaticPod::load(root.path(), "kube-apiserver");
        let mut args = apiserver.command_line(root.path(), &to_etcd);
        args.push(format!("--audit-policy-file={}", policy.display()));
        args.push(format!(
            "--audit-log-path={}",
            root.path().join("audit.log").display()
        ));
        let mut apiserver_process = apiserver.start(&apiserver_bin, &args, root.path());
        let probe = RealCluster::new(root.path().join("etc/kubernetes/super-admin.conf")).expect("client");
        let namespaces = ResourceType::v1("", "Namespace", "namespaces", false);
        apiserver_process.wait_until(Duration::from_secs(90), || {
            probe.get(namespaces.collection(None), "default").is_ok()
        });
        Self {
            root,
            _processes: vec![etcd_process, apiserver_process],
        }
    }

    /// The request URIs the audit log holds for `user`, in order.
    fn requests_of(&self, user: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.root.path().join("audit.log")).expect("audit log");
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["stage"] == "ResponseComplete" && e["user"]["username"] == user)
            .filter_map(|e| e["requestURI"].as_str().map(String::from))
            .collect()
    }
}

/// A one-phase pipeline running the probe with `settings` and `grants`.
fn probe(settings: &str, grants: &str) -> Pipeline {
    let yaml = format!(
        "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: probe\n    component: {PROBE_WASM}\n    \
         digest: sha256:{}\n    settings: {settings}\n    grants: {grants}\n    limits: {{timeout: 20s}}\n",
        sha256_file(PROBE_WASM)
    );
    Pipeline::parse(&yaml, Path::new("probe-pipeline.yaml")).expect("pipeline")
}

#[test]
#[cfg_attr(
    not(kubebuilder_assets),
    ignore = "skipped: needs KUBEBUILDER_ASSETS with etcd and kube-apiserver when the tests are built \
              (README, \"End-to-end tests\")"
)]
fn refused_kube_calls_never_reach_a_real_api_server() {
    let server = ApiServer::start();
    let cluster: Arc<dyn Cluster> = Arc::new(
        RealCluster::new(server.root.path().join("etc/kubernetes/super-admin.conf")).expect("client"),
    );
    let user = "kubernetes-super-admin";
    let before = server.requests_of(user).len();
    let run = |settings: &str, grants: &str| {
        let p = probe(settings, grants);
        let mut r = Run::new(&p, server.root.path());
        r.cluster = Some(cluster.clone());
        r.go()
    };
    let kube_system = "{kube: [{verbs: [get, list], resources: [configmaps], namespaces: [kube-system]}, \
                       {verbs: [get, patch], resources: [nodes]}]}";
    let cm = "kind: ConfigMap, plural: configmaps, namespace: kube-system";
    let node_ty = "kind: Node, plural: nodes, namespaced: false";
    let attacks = [
        (format!("{{action: kube-get, {cm}, name: 'admin-token?x=/namespaces/kube-system/configmaps/y'}}"), kube_system),
        (format!("{{action: kube-get, {cm}, name: 'x/../../secrets/admin-token'}}"), kube_system),
        (format!("{{action: kube-get, {cm}, name: 'kubeadm-config?watch=true'}}"), kube_system),
        (format!("{{action: kube-get, {node_ty}, name: 'n1/proxy/configz'}}"), kube_system),
        (format!("{{action: kube-patch, {node_ty}, name: 'n1/status'}}"), kube_system),
        (format!("{{action: kube-list, {cm}, selector: 'a=b&watch=true'}}"), kube_system),
        // Item 1: Secrets called cluster-scoped under a broad cluster-scoped rule.
        (
            "{action: kube-list, kind: Secret, plural: secrets, namespaced: false}".to_string(),
            "{kube: [{verbs: [list], apiGroups: ['*'], resources: ['*']}]}",
        ),
        // A type the host's table does not have, with a wrong scope: discovery decides.
        (
            "{action: kube-list, group: apiregistration.k8s.io, kind: APIService, plural: apiservices, namespace: kube-system}"
                .to_string(),
            "{kube: [{verbs: [list], apiGroups: [apiregistration.k8s.io], resources: [apiservices], namespaces: ['*']}]}",
        ),
    ];
    for (settings, grants) in &attacks {
        let out = run(settings, grants);
        assert!(out.result.is_err(), "{settings} must be refused");
    }
    // Granted calls, sent exactly as authorized: a list in kube-system, and the type the table
    // does not have, with its true scope (discovery first).
    run(&format!("{{action: kube-list, {cm}}}"), kube_system).expect_ok();
    let out = run(
        "{action: kube-list, group: apiregistration.k8s.io, kind: APIService, plural: apiservices, namespaced: false}",
        "{kube: [{verbs: [list], apiGroups: [apiregistration.k8s.io], resources: [apiservices]}]}",
    );
    out.expect_ok();
    assert!(
        out.output("probe.object")
            .is_some_and(|o| o.contains("APIServiceList"))
    );

    let sent: BTreeSet<String> = server.requests_of(user).split_off(before).into_iter().collect();
    // (A list with no parameters ends in `?`, as the `kube` crate builds it.)
    let expected: BTreeSet<String> = [
        "/apis/apiregistration.k8s.io/v1",
        "/api/v1/namespaces/kube-system/configmaps?",
        "/apis/apiregistration.k8s.io/v1/apiservices?",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        sent, expected,
        "the API server received exactly the granted requests"
    );
}
