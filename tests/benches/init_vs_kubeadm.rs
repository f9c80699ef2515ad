//! `wasmadm init` against real `kubeadm init`, same configuration, same machine, in one run: each
//! on a fresh node in its own network namespace with its own real control plane (the test's kubelet
//! runs it, `wasmadm_tests::cluster`), one tool after the other, never at once. Wall time is from
//! start to exit (waiting for the control plane included, the same for both); CPU time is the
//! tool's own process (user + system).
//!
//! ```text
//! INIT_BENCH_RUNS=5 KUBEBUILDER_ASSETS=DIR cargo bench -p wasmadm-tests --bench init_vs_kubeadm --profile dev
//! ```
//!
//! Needs root (network namespaces) and the real binaries; docs/benchmarks.md records the figures.

use std::time::Duration;
use wasmadm_tests::bench::{SideBySide, header, runs};
use wasmadm_tests::cluster::{Node, Ran, kubernetes_version};
use wasmadm_tests::netns::Network;

const WASMADM: &str = env!("CARGO_BIN_EXE_wasmadm-under-test");

fn configuration(version: &str, algorithm: &str) -> String {
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
         localAPIEndpoint: {{advertiseAddress: 10.200.0.2, bindPort: 6443}}\n\
         nodeRegistration: {{name: n1, criSocket: unix:///var/run/containerd/containerd.sock}}\n\
         bootstrapTokens:\n- token: abcdef.0123456789abcdef\n---\n\
         apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {version}\n\
         encryptionAlgorithm: {algorithm}\n"
    )
}

/// One `init` by `tool` on a fresh node.
fn init(tool: &str, config: &str) -> Ran {
    let network = Network::new();
    let mut node = Node::new(&network, "n1", "10.200.0.2");
    std::fs::write(node.path("/kubeadm.yaml"), config).expect("config");
    node.start_kubelet();
    let host_config = node.path("/kubeadm.yaml").display().to_string();
    let mut cmd = match tool {
        "kubeadm" => node.kubeadm(&["init", "--config", "/kubeadm.yaml", "--skip-phases", "preflight"]),
        _ => node.wasmadm(
            WASMADM,
            &["init", "--config", &host_config, "--skip-phases", "preflight"],
        ),
    };
    node.run(&format!("{tool} init"), &mut cmd, Duration::from_secs(600))
        .expect_ok(tool)
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter this binary does not have.
    let runs = runs("INIT_BENCH_RUNS");
    let version = kubernetes_version(&wasmadm_tests::cluster::assets());
    // Compiles the plugins into the cache: every measured run is a warm start, as on a node.
    init("wasmadm", &configuration(&version, "ECDSA-P256"));
    println!("init, {runs} runs each, median (wall / CPU of the tool's process):\n");
    println!("{}", header("algorithm"));
    for algorithm in ["ECDSA-P256", "RSA-2048"] {
        let config = configuration(&version, algorithm);
        let mut figures = SideBySide::default();
        for _ in 0..runs {
            for tool in ["kubeadm", "wasmadm"] {
                figures.add(tool, &init(tool, &config));
            }
        }
        println!("{}", figures.row(algorithm));
    }
}
