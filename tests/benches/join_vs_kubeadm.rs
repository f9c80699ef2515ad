//! `wasmadm join` against real `kubeadm join`, of a worker and of a control plane, same inputs, same
//! machine, in one run: one control plane (`wasmadm init --upload-certs`, the test playing its
//! kubelet), then each run joins a fresh node in its own network namespace with each tool in turn,
//! never at once. Wall time is from start to exit (the kubelet's TLS bootstrap, signed by the real
//! controller-manager, and for a control plane its etcd member and API server starting, included:
//! the same for both); CPU time is the tool's own process (user + system). A joined control plane
//! is taken out again (etcd member removed, Node deleted) before the next run, so that each joins
//! a cluster of one.
//!
//! ```text
//! JOIN_BENCH_RUNS=5 KUBEBUILDER_ASSETS=DIR cargo bench -p wasmadm-tests --bench join_vs_kubeadm --profile dev
//! ```
//!
//! Needs root (network namespaces) and the real binaries; docs/benchmarks.md records the figures.

use std::time::Duration;
use wasmadm_tests::bench::{SideBySide, header, runs};
use wasmadm_tests::cluster::{Node, ca_pin, join_args, kubernetes_version};
use wasmadm_tests::netns::Network;

const WASMADM: &str = env!("CARGO_BIN_EXE_wasmadm-under-test");
const TOKEN: &str = "abcdef.0123456789abcdef";
const CERTIFICATE_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn main() {
    let runs = runs("JOIN_BENCH_RUNS");
    let version = kubernetes_version(&wasmadm_tests::cluster::assets());
    let network = Network::new();
    let mut cp = Node::new(&network, "n1", "10.200.0.2");
    std::fs::write(
        cp.path("/kubeadm.yaml"),
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
             localAPIEndpoint: {{advertiseAddress: 10.200.0.2, bindPort: 6443}}\n\
             nodeRegistration: {{name: n1, criSocket: unix:///var/run/containerd/containerd.sock}}\n\
             certificateKey: {CERTIFICATE_KEY}\nbootstrapTokens:\n- token: {TOKEN}\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {version}\n\
             encryptionAlgorithm: ECDSA-P256\ncontrolPlaneEndpoint: 10.200.0.2:6443\n"
        ),
    )
    .expect("config");
    cp.start_kubelet();
    let config = cp.path("/kubeadm.yaml").display().to_string();
    let init = cp
        .run(
            "wasmadm init",
            &mut cp.wasmadm(
                WASMADM,
                &[
                    "init",
                    "--config",
                    &config,
                    "--skip-phases",
                    "preflight",
                    "--upload-certs",
                ],
            ),
            Duration::from_secs(600),
        )
        .expect_ok("wasmadm init");
    let pin = ca_pin(&init.stdout);
    // Both tools need the controller-manager's signature on cluster-info first.
    cp.wait_for("cluster-info signed", Duration::from_secs(120), || {
        let cm = cp.get_json(&["configmap", "cluster-info", "-n", "kube-public"]);
        cm["data"]["jws-kubeconfig-abcdef"].as_str().map(|_| ())
    });
    // A worker, or a control plane (`control_plane`), joined by `tool` as node `i`.
    let join = |tool: &str, i: usize, control_plane: bool| {
        let name = format!("{}{}{i}", &tool[..1], if control_plane { "c" } else { "w" });
        let address = format!(
            "10.200.0.{}",
            10 + 90 * usize::from(control_plane) + 2 * i + usize::from(tool == "wasmadm")
        );
        let mut node = Node::new(&network, &name, &address);
        node.start_kubelet();
        let key_and_address = control_plane.then_some((CERTIFICATE_KEY, address.as_str()));
        let args = join_args("10.200.0.2:6443", TOKEN, &pin, &name, key_and_address);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = node.run_ok(tool, WASMADM, &args);
        (node, ran)
    };
    // Compiles the plugins into the cache: every measured run is a warm start, as on a node.
    join("wasmadm", 0, false);
    println!("{runs} runs each, median (wall / CPU of the tool's process):\n");
    println!("{}", header("join"));
    for control_plane in [false, true] {
        let mut figures = SideBySide::default();
        for i in 1..=runs {
            for tool in ["kubeadm", "wasmadm"] {
                let (node, ran) = join(tool, i, control_plane);
                figures.add(tool, &ran);
                if control_plane {
                    cp.remove_control_plane(node);
                }
            }
        }
        println!(
            "{}",
            figures.row(if control_plane { "control plane" } else { "worker" })
        );
    }
}
