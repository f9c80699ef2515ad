//! `wasmadm join` against real `kubeadm join` of a worker, same inputs, same machine, in one run:
//! one control plane (`wasmadm init`, the test playing its kubelet), then each run joins a fresh
//! node in its own network namespace with each tool in turn, never at once. Wall time is from start
//! to exit (the kubelet's TLS bootstrap, signed by the real controller-manager, included: the same
//! for both); CPU time is the tool's own process (user + system).
//!
//! ```text
//! JOIN_BENCH_RUNS=5 KUBEBUILDER_ASSETS=DIR cargo bench -p wasmadm-tests --bench join_vs_kubeadm --profile dev
//! ```
//!
//! Needs root (network namespaces) and the real binaries; docs/benchmarks.md records the figures.

use std::time::Duration;
use wasmadm_tests::cluster::{Node, kubernetes_version};
use wasmadm_tests::netns::Network;

const WASMADM: &str = env!("CARGO_BIN_EXE_wasmadm-under-test");
const TOKEN: &str = "abcdef.0123456789abcdef";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("JOIN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let version = kubernetes_version(&wasmadm_tests::cluster::assets());
    let network = Network::new();
    let mut cp = Node::new(&network, "n1", "10.200.0.2");
    std::fs::write(
        cp.path("/kubeadm.yaml"),
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
             localAPIEndpoint: {{advertiseAddress: 10.200.0.2, bindPort: 6443}}\n\
             nodeRegistration: {{name: n1, criSocket: unix:///var/run/containerd/containerd.sock}}\n\
             bootstrapTokens:\n- token: {TOKEN}\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {version}\n\
             encryptionAlgorithm: ECDSA-P256\n"
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
                &["init", "--config", &config, "--skip-phases", "preflight"],
            ),
            Duration::from_secs(600),
        )
        .expect_ok("wasmadm init");
    let pin = init
        .stdout
        .split_whitespace()
        .skip_while(|w| *w != "--discovery-token-ca-cert-hash")
        .nth(1)
        .expect("CA pin")
        .to_string();
    // Both tools need the controller-manager's signature on cluster-info first.
    cp.wait_for("cluster-info signed", Duration::from_secs(120), || {
        let cm = cp.get_json(&["configmap", "cluster-info", "-n", "kube-public"]);
        cm["data"]["jws-kubeconfig-abcdef"].as_str().map(|_| ())
    });
    let join = |tool: &str, i: usize| {
        let name = format!("{}{i}", &tool[..1]);
        let address = format!("10.200.0.{}", 10 + 2 * i + usize::from(tool == "wasmadm"));
        let mut node = Node::new(&network, &name, &address);
        node.start_kubelet();
        let args = [
            "join",
            "10.200.0.2:6443",
            "--token",
            TOKEN,
            "--discovery-token-ca-cert-hash",
            &pin,
            "--node-name",
            &name,
            "--skip-phases",
            "preflight",
        ];
        let mut cmd = match tool {
            "kubeadm" => node.kubeadm(&args),
            _ => node.wasmadm(WASMADM, &args),
        };
        node.run(&format!("{tool} join"), &mut cmd, Duration::from_secs(600))
            .expect_ok(tool)
    };
    // Compiles the plugins into the cache: every measured run is a warm start, as on a node.
    join("wasmadm", 0);
    let (mut kw, mut kc, mut ww, mut wc) = (vec![], vec![], vec![], vec![]);
    for i in 1..=runs {
        let k = join("kubeadm", i);
        kw.push(k.took);
        kc.push(k.cpu);
        let w = join("wasmadm", i);
        ww.push(w.took);
        wc.push(w.cpu);
    }
    let (kw, kc, ww, wc) = (median(kw), median(kc), median(ww), median(wc));
    println!("worker join, {runs} runs each, median (wall / CPU of the tool's process):\n");
    println!("| kubeadm wall | wasmadm wall | wall ratio | kubeadm CPU | wasmadm CPU | CPU ratio |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {:.2} s | {:.2} s | {:.2}x | {:.2} s | {:.2} s | {:.2}x |",
        kw.as_secs_f64(),
        ww.as_secs_f64(),
        ww.as_secs_f64() / kw.as_secs_f64(),
        kc.as_secs_f64(),
        wc.as_secs_f64(),
        wc.as_secs_f64() / kc.as_secs_f64(),
    );
}
