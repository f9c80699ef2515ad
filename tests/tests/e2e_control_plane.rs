//! End to end, against real control planes: `wasmadm init` and real `kubeadm init` with the same
//! configuration, each node in its own network namespace with the test playing its kubelet
//! (`wasmadm_tests::cluster`), compared with `wasmadm_tests::differential`; then real kubeadm joins
//! the cluster wasmadm made.
//!
//! Needs `KUBEBUILDER_ASSETS` (controller-runtime envtest's layout: etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kubeadm, kubectl of the Kubernetes version wasmadm
//! targets) when the tests are built, and root for the network namespaces:
//!
//! ```text
//! KUBEBUILDER_ASSETS=/opt/k8s/bin cargo test -p wasmadm-tests --test e2e_control_plane
//! ```
//!
//! Without it the tests are reported as `ignored` with the reason (never as passed); in CI
//! (`CI=true`) the build fails instead. Run with `-- --ignored` anyway and they fail saying what is
//! missing.
#![cfg_attr(not(kubebuilder_assets), allow(dead_code, unused_imports))]

use std::sync::Mutex;
use std::time::Duration;
use wasmadm_tests::cluster::{Node, Ran, kubernetes_version};
use wasmadm_tests::differential::{Side, compare};
use wasmadm_tests::netns::Network;

/// The CLI under test, built from this workspace.
const WASMADM: &str = env!("CARGO_BIN_EXE_wasmadm-under-test");

/// One pair of control planes at a time: two cores run four API servers badly.
static SERIAL: Mutex<()> = Mutex::new(());

const TOKEN: &str = "abcdef.0123456789abcdef";

/// The configuration both tools get, with `node_extra` in its nodeRegistration and
/// `cluster_extra` in the ClusterConfiguration.
fn configuration(version: &str, node_extra: &str, cluster_extra: &str) -> String {
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
         localAPIEndpoint: {{advertiseAddress: 10.200.0.2, bindPort: 6443}}\n\
         nodeRegistration:\n  name: n1\n  criSocket: unix:///var/run/containerd/containerd.sock\n\
         {node_extra}bootstrapTokens:\n- token: {TOKEN}\n---\n\
         apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {version}\n\
         {cluster_extra}"
    )
}

/// Runs `kubeadm init` and `wasmadm init` with `config` and `flags`, each on its own new control
/// plane, at the same time; returns (kubeadm's node, its run, wasmadm's node, its run, wasmadm's
/// network, which later nodes can join).
fn init_both(config: &str, flags: &[&str]) -> (Node, Ran, Node, Ran, Network) {
    init_both_with(config, flags, "preflight", None)
}

/// [`init_both`] with `--skip-phases skip` (which replaces the file's `skipPhases`, in both tools),
/// and wasmadm with `pipeline` (the text of a pipeline file) instead of the default.
fn init_both_with(
    config: &str,
    flags: &[&str],
    skip: &str,
    pipeline: Option<&str>,
) -> (Node, Ran, Node, Ran, Network) {
    let (k_net, w_net) = (Network::new(), Network::new());
    let (mut k_node, mut w_node) = (
        Node::new(&k_net, "n1", "10.200.0.2"),
        Node::new(&w_net, "n1", "10.200.0.2"),
    );
    for node in [&mut k_node, &mut w_node] {
        std::fs::write(node.path("/kubeadm.yaml"), config).expect("config");
        node.start_kubelet();
    }
    // The preflight checks are about the test machine, not the control plane.
    let mut k_args = vec!["init", "--config", "/kubeadm.yaml", "--skip-phases", skip];
    k_args.extend_from_slice(flags);
    let w_config = w_node.path("/kubeadm.yaml").display().to_string();
    let mut w_args = vec!["init", "--config", &w_config, "--skip-phases", skip];
    w_args.extend_from_slice(flags);
    let pipeline_file = w_node.logs.path().join("pipeline.yaml");
    let pipeline_arg = pipeline_file.display().to_string();
    if let Some(text) = pipeline {
        std::fs::write(&pipeline_file, text).expect("pipeline");
        w_args.extend_from_slice(&["--pipeline", &pipeline_arg]);
    }
    let timeout = Duration::from_secs(300);
    let (k_ran, w_ran) = std::thread::scope(|s| {
        let k = s.spawn(|| k_node.run("kubeadm init", &mut k_node.kubeadm(&k_args), timeout));
        let w = s.spawn(|| w_node.run("wasmadm init", &mut w_node.wasmadm(WASMADM, &w_args), timeout));
        (
            k.join().expect("kubeadm thread"),
            w.join().expect("wasmadm thread"),
        )
    });
    let k_ran = k_ran.expect_ok("kubeadm init");
    let w_ran = w_ran.expect_ok(&format!("wasmadm init (kubeadm printed:\n{})", k_ran.stdout));
    // The Node is the kubelet's; both tools wait for it, so it exists once they finished.
    assert!(k_node.registered() && w_node.registered());
    drop(k_net);
    (k_node, k_ran, w_node, w_ran, w_net)
}

/// Compares the two runs; panics listing every difference, or when too little was compared
/// (`at_least`: files, certificates, objects, console lines) for the comparison to mean anything.
fn assert_same(k_node: &Node, k_ran: &Ran, w_node: &Node, w_ran: &Ran, at_least: [usize; 4]) {
    // The controller-manager signs cluster-info some time after init ended (its bootstrap signer
    // runs on its own schedule): compare both sides once each carries its signature.
    for node in [k_node, w_node] {
        node.wait_for("cluster-info signed", Duration::from_secs(120), || {
            let cm = node.get_json(&["configmap", "cluster-info", "-n", "kube-public"]);
            cm["data"]
                .as_object()?
                .keys()
                .any(|k| k.starts_with("jws-kubeconfig-"))
                .then_some(())
        });
    }
    let c = compare(
        &Side {
            node: k_node,
            stdout: &k_ran.stdout,
            manager: "kubeadm",
        },
        &Side {
            node: w_node,
            stdout: &w_ran.stdout,
            manager: "wasmadm",
        },
    );
    assert!(
        c.differences.is_empty(),
        "wasmadm init differs from kubeadm init:\n{}",
        c.differences.join("\n")
    );
    let compared = [c.files, c.certificates, c.objects.len(), c.console_lines];
    assert!(
        compared.iter().zip(at_least).all(|(n, min)| *n >= min),
        "too little compared: {c:?}, expected at least {at_least:?} (files, certificates, objects, console lines)"
    );
    eprintln!("same as kubeadm: {c:?}");
}

/// `--discovery-token-ca-cert-hash sha256:...` from a printed join command.
fn ca_pin(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .skip_while(|w| *w != "--discovery-token-ca-cert-hash")
        .nth(1)
        .unwrap_or_else(|| panic!("no CA pin in the join command:\n{stdout}"))
        .to_string()
}

#[test]
#[cfg_attr(
    not(kubebuilder_assets),
    ignore = "skipped: needs KUBEBUILDER_ASSETS with etcd, kube-apiserver, kube-controller-manager, \
              kube-scheduler, kubeadm and kubectl when the tests are built (README, \"End-to-end tests\")"
)]
fn init_matches_kubeadm_and_kubeadm_joins_the_cluster() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let version = kubernetes_version(&wasmadm_tests::cluster::assets());
    let config = configuration(&version, "", "");
    let (k_node, k_ran, w_node, w_ran, w_net) = init_both(&config, &[]);

    assert_same(&k_node, &k_ran, &w_node, &w_ran, [40, 10, 28, 75]);
    // ServiceAccounts carry no field beyond their name, so no field manager names their creator.
    for node in [&k_node, &w_node] {
        node.kubectl(&[
            "get",
            "serviceaccount",
            "coredns",
            "kube-proxy",
            "-n",
            "kube-system",
        ]);
    }
    drop(k_node);

    // The control plane wasmadm made is whole: both leader leases, ready, the admin binding.
    for name in ["kube-controller-manager", "kube-scheduler"] {
        w_node.wait_for(&format!("lease {name}"), Duration::from_secs(90), || {
            let leases = w_node.get_json(&["leases", "-n", "kube-system"]);
            leases["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|l| l["metadata"]["name"] == name && l["spec"]["holderIdentity"].is_string())
                .then_some(())
        });
    }
    assert_eq!(w_node.kubectl(&["get", "--raw", "/readyz"]), "ok");

    // The real controller-manager signs cluster-info with the token; wasmadm's join helper agrees.
    let token = kubeadm_bootstrap_token::Token::parse(TOKEN).expect("token");
    let (kubeconfig, jws) = w_node.wait_for("cluster-info signed", Duration::from_secs(120), || {
        let cm = w_node.get_json(&["configmap", "cluster-info", "-n", "kube-public"]);
        Some((
            cm["data"]["kubeconfig"].as_str()?.to_string(),
            cm["data"]["jws-kubeconfig-abcdef"].as_str()?.to_string(),
        ))
    });
    assert!(
        kubeadm_bootstrap_token::cluster_info::verify_detached_jws(&kubeconfig, &token, &jws),
        "the controller-manager's signature {jws} does not verify with wasmadm's helper"
    );

    // Real kubeadm joins a worker with the printed token and CA pin: discovery, the JWS, the
    // bootstrap RBAC, kubelet-config, and the TLS bootstrap (signed by the real controller-manager).
    // The preflight checks are about the test machine; discovery and the rest run in both.
    let pin = ca_pin(&w_ran.stdout);
    let join_args = |name: &'static str| {
        vec![
            "join".to_string(),
            "10.200.0.2:6443".into(),
            "--token".into(),
            TOKEN.into(),
            "--discovery-token-ca-cert-hash".into(),
            pin.clone(),
            "--node-name".into(),
            name.into(),
            "--skip-phases".into(),
            "preflight".into(),
        ]
    };
    let mut k_worker = Node::new(&w_net, "n2", "10.200.0.3");
    k_worker.start_kubelet();
    let k_args = join_args("n2");
    let k_args: Vec<&str> = k_args.iter().map(String::as_str).collect();
    let k_join = k_worker
        .run(
            "kubeadm join",
            &mut k_worker.kubeadm(&k_args),
            Duration::from_secs(300),
        )
        .expect_ok("kubeadm join");
    w_node.wait_for("Node n2", Duration::from_secs(60), || {
        let nodes = w_node.kubectl(&["get", "nodes", "-o", "name"]);
        (nodes.contains("node/n1") && nodes.contains("node/n2")).then_some(())
    });

    // wasmadm joins a worker with the same inputs: discovery through kube.connect, the kubelet's
    // TLS bootstrap (signed by the real controller-manager), the same files and console.
    let mut w_worker = Node::new(&w_net, "n3", "10.200.0.4");
    w_worker.start_kubelet();
    let w_args = join_args("n3");
    let w_args: Vec<&str> = w_args.iter().map(String::as_str).collect();
    let w_join = w_worker
        .run(
            "wasmadm join",
            &mut w_worker.wasmadm(WASMADM, &w_args),
            Duration::from_secs(300),
        )
        .expect_ok("wasmadm join");
    w_node.wait_for("Node n3", Duration::from_secs(60), || {
        let nodes = w_node.kubectl(&["get", "nodes", "-o", "name"]);
        nodes.contains("node/n3").then_some(())
    });
    assert_same_join(&k_worker, &k_join, &w_worker, &w_join, ("n2", "n3"));
    // The kubelet's client certificate is the cluster's: signed by n1's CA, which n3 now trusts.
    let ca = std::fs::read(w_node.path("/etc/kubernetes/pki/ca.crt")).expect("n1 CA");
    assert_eq!(
        std::fs::read(w_worker.path("/etc/kubernetes/pki/ca.crt")).expect("n3 CA"),
        ca,
        "the joined node trusts another CA than the cluster's"
    );
    let client = std::fs::read(w_worker.path("/var/lib/kubelet/pki/kubelet-client-current.pem"))
        .expect("the kubelet's client certificate");
    let verified = w_worker
        .command("openssl")
        .args(["verify", "-CAfile"])
        .arg(w_node.path("/etc/kubernetes/pki/ca.crt"))
        .arg(w_worker.path("/var/lib/kubelet/pki/kubelet-client-current.pem"))
        .output()
        .expect("openssl");
    assert!(
        verified.status.success() && !client.is_empty(),
        "the kubelet's certificate is not signed by the cluster CA: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// Compares a worker joined by kubeadm with one joined by wasmadm (names `k_name`, `w_name`):
/// files and modes, the kubelet's files byte for byte, the console.
fn assert_same_join(k: &Node, k_ran: &Ran, w: &Node, w_ran: &Ran, (k_name, w_name): (&str, &str)) {
    use wasmadm_tests::differential::{allowed, diff_lines, files, mask_console};
    let mut differences = Vec::new();
    let (k_files, w_files) = (files(k.root.path()), files(w.root.path()));
    if k_files != w_files {
        differences.push(format!(
            "files and modes:
  kubeadm: {k_files:?}
  wasmadm: {w_files:?}"
        ));
    }
    for path in [
        "/var/lib/kubelet/config.yaml",
        "/var/lib/kubelet/instance-config.yaml",
        "/var/lib/kubelet/kubeadm-flags.env",
    ] {
        let read = |n: &Node| std::fs::read_to_string(n.path(path)).unwrap_or_else(|e| format!("<{e}>"));
        let (kt, wt) = (read(k), read(w).replace(w_name, k_name));
        if kt != wt {
            differences.push(format!(
                "{path}:
--- kubeadm
{kt}
--- wasmadm
{wt}"
            ));
        }
    }
    let console = |text: &str| mask_console(text);
    let w_console = allowed("console", &w_ran.stdout).replace(w_name, k_name);
    if let Some(d) = diff_lines(&console(&k_ran.stdout), &console(&w_console)) {
        differences.push(format!(
            "console:
{d}"
        ));
    }
    assert!(
        differences.is_empty(),
        "wasmadm join differs from kubeadm join:\n{}",
        differences.join("\n")
    );
    assert!(k_files.len() >= 8, "too little compared: {} files", k_files.len());
    eprintln!(
        "join same as kubeadm: {} files, {} console lines; kubeadm {:?}, wasmadm {:?}",
        k_files.len(),
        k_ran.stdout.lines().count(),
        k_ran.took,
        w_ran.took
    );
}

/// A fixed certificate key, so that kubeadm can download what wasmadm uploaded.
const CERTIFICATE_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
#[cfg_attr(
    not(kubebuilder_assets),
    ignore = "skipped: needs KUBEBUILDER_ASSETS with etcd, kube-apiserver, kube-controller-manager, \
              kube-scheduler, kubeadm and kubectl when the tests are built (README, \"End-to-end tests\")"
)]
fn ecdsa_endpoint_sans_subnets_and_uploaded_certs_match_kubeadm() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let version = kubernetes_version(&wasmadm_tests::cluster::assets());
    let config = configuration(
        &version,
        "  taints: []\n",
        "encryptionAlgorithm: ECDSA-P256\ncontrolPlaneEndpoint: 10.200.0.2:6443\n\
         apiServer:\n  certSANs: [extra.example.com, 10.200.0.100]\n\
         networking: {serviceSubnet: 10.97.0.0/16, dnsDomain: cluster.test}\n",
    );
    // kubeadm takes the key from the file only: `--certificate-key` is refused with `--config`.
    let config = config.replace(
        "bootstrapTokens:",
        &format!("certificateKey: {CERTIFICATE_KEY}\nbootstrapTokens:"),
    );
    let flags = ["--upload-certs"];
    let (k_node, k_ran, w_node, w_ran, w_net) = init_both(&config, &flags);
    assert_same(&k_node, &k_ran, &w_node, &w_ran, [40, 10, 29, 75]);
    drop(k_node);

    // kubeadm's own download-certs decrypts what wasmadm uploaded: the CA keys and sa.key.
    let joining = Node::new(&w_net, "n3", "10.200.0.4");
    let pin = ca_pin(&w_ran.stdout);
    joining
        .run(
            "kubeadm join phase control-plane-prepare download-certs",
            &mut joining.kubeadm(&[
                "join",
                "phase",
                "control-plane-prepare",
                "download-certs",
                "10.200.0.2:6443",
                "--control-plane",
                "--certificate-key",
                CERTIFICATE_KEY,
                "--token",
                TOKEN,
                "--discovery-token-ca-cert-hash",
                &pin,
            ]),
            Duration::from_secs(120),
        )
        .expect_ok("kubeadm download-certs");
    for file in [
        "ca.crt",
        "ca.key",
        "sa.key",
        "sa.pub",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "etcd/ca.crt",
        "etcd/ca.key",
    ] {
        let path = format!("/etc/kubernetes/pki/{file}");
        let (theirs, ours) = (
            std::fs::read(joining.path(&path)),
            std::fs::read(w_node.path(&path)),
        );
        assert!(
            matches!((&theirs, &ours), (Ok(a), Ok(b)) if a == b),
            "{file}: kubeadm downloaded {theirs:?}, wasmadm uploaded {ours:?}"
        );
    }
}

#[test]
#[cfg_attr(
    not(kubebuilder_assets),
    ignore = "skipped: needs KUBEBUILDER_ASSETS with etcd, kube-apiserver, kube-controller-manager, \
              kube-scheduler, kubeadm and kubectl when the tests are built (README, \"End-to-end tests\")"
)]
fn extra_args_volumes_component_configs_and_a_skipped_addon_match_kubeadm() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let version = kubernetes_version(&wasmadm_tests::cluster::assets());
    let fixture = wasmadm_tests::fixture("reference/extra-args/init-config.yaml");
    let config = std::fs::read_to_string(&fixture).expect("fixture").replace(
        "kubernetesVersion: v1.36.2",
        &format!("kubernetesVersion: {version}"),
    );
    // The controller-manager binds 0.0.0.0 (extraArgs): kubeadm then checks
    // https://0.0.0.0:10257/healthz, and wasmadm's pipeline must grant that URL (grants are exact).
    let pipeline = wasmadm::config::pipeline::Pipeline::DEFAULT_YAML.replace(
        "        - url: https://127.0.0.1:10257/healthz\n          tls: insecure\n",
        "        - url: https://0.0.0.0:10257/healthz\n          tls: insecure\n",
    );
    assert_ne!(pipeline, wasmadm::config::pipeline::Pipeline::DEFAULT_YAML);
    let (k_node, k_ran, w_node, w_ran, _net) =
        init_both_with(&config, &[], "preflight,addon/kube-proxy", Some(&pipeline));
    // No kube-proxy: 6 objects fewer than the default configuration.
    assert_same(&k_node, &k_ran, &w_node, &w_ran, [40, 10, 22, 70]);
}
