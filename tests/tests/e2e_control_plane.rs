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
use wasmadm_tests::cluster::{Node, Ran, ca_pin, join_args, kubernetes_version};
use wasmadm_tests::differential::{Side, compare};
use wasmadm_tests::netns::Network;

/// The CLI under test, built from this workspace.
const WASMADM: &str = env!("CARGO_BIN_EXE_wasmadm-under-test");

/// One pair of control planes at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const TOKEN: &str = "abcdef.0123456789abcdef";

/// A `#[test]` `NAME` running `scenario(version)` with the Kubernetes version of the real
/// binaries, one at a time (two cores run four API servers badly). Ignored with the reason when
/// `KUBEBUILDER_ASSETS` was not set at build time (a CI build fails instead).
macro_rules! e2e_test {
    ($name:ident => $scenario:ident) => {
        #[test]
        #[cfg_attr(
            not(kubebuilder_assets),
            ignore = "skipped: needs KUBEBUILDER_ASSETS with etcd, kube-apiserver, kube-controller-manager, \
                      kube-scheduler, kubeadm and kubectl when the tests are built (README, \"End-to-end tests\")"
        )]
        fn $name() {
            let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
            $scenario(&kubernetes_version(&wasmadm_tests::cluster::assets()));
        }
    };
}

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

e2e_test!(init_matches_kubeadm_and_kubeadm_joins_the_cluster => default_init_then_joins);
fn default_init_then_joins(version: &str) {
    let config = configuration(version, "", "");
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
    let join_args = |name: &str| join_args("10.200.0.2:6443", TOKEN, &pin, name, None);
    let mut k_worker = Node::new(&w_net, "n2", "10.200.0.3");
    k_worker.start_kubelet();
    let k_args = join_args("n2");
    let k_args: Vec<&str> = k_args.iter().map(String::as_str).collect();
    let k_join = k_worker.run_ok("kubeadm", WASMADM, &k_args);
    w_node.wait_for("Node n2", Duration::from_secs(60), || {
        let nodes = w_node.kubectl(&["get", "nodes", "-o", "name"]);
        (nodes.contains("node/n1") && nodes.contains("node/n2")).then_some(())
    });

    // A dry run reads the cluster (discovery is real) and changes nothing: it lists every file it
    // would write and every command it would run.
    let dry = Node::new(&w_net, "n4", "10.200.0.9");
    let mut dry_args = join_args("n4");
    dry_args.push("--dry-run".into());
    let dry_args: Vec<&str> = dry_args.iter().map(String::as_str).collect();
    let dry_run = dry.run_ok("wasmadm", WASMADM, &dry_args);
    for effect in [
        "/etc/kubernetes/bootstrap-kubelet.conf",
        "/etc/kubernetes/pki/ca.crt",
        "/var/lib/kubelet/config.yaml",
        "/var/lib/kubelet/kubeadm-flags.env",
        "/var/lib/kubelet/instance-config.yaml",
        "[kubelet-wait] Would wait for the kubelet to be bootstrapped",
    ] {
        assert!(
            dry_run.stdout.contains(effect),
            "the dry run does not list {effect}:\n{}",
            dry_run.stdout
        );
    }
    assert!(
        !dry.path("/etc/kubernetes").exists() && !dry.path("/var/lib/kubelet").exists(),
        "the dry run wrote files"
    );

    // wasmadm joins a worker with the same inputs: discovery through kube.connect, the kubelet's
    // TLS bootstrap (signed by the real controller-manager), the same files and console.
    let mut w_worker = Node::new(&w_net, "n3", "10.200.0.4");
    w_worker.start_kubelet();
    let w_args = join_args("n3");
    let w_args: Vec<&str> = w_args.iter().map(String::as_str).collect();
    let w_join = w_worker.run_ok("wasmadm", WASMADM, &w_args);
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

    // File discovery: a kubeconfig naming the cluster, its CA and a token (kubeadm refreshes the
    // cluster from cluster-info through it); both tools alike.
    {
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD.encode(&ca);
        let file = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    \
             server: https://10.200.0.2:6443\n  name: kubernetes\ncontexts:\n- context: {{cluster: kubernetes, \
             user: joiner}}\n  name: joiner@kubernetes\ncurrent-context: joiner@kubernetes\nusers:\n- name: \
             joiner\n  user: {{token: {TOKEN}}}\n"
        );
        // `tool` joins node `name` with the file at a node path, or (`served`: the trust store's CA)
        // at an https:// URL served on the node's own loopback by a server whose CA is `pki`'s, the
        // node's trust store ($SSL_CERT_FILE, read under the node root by both tools) `served`'s.
        use wasmadm_tests::http::{Reply, TestPki, serve_in};
        let (pki, other) = (TestPki::new("discovery-server-ca"), TestPki::new("another-ca"));
        let joined = |tool: &str, name: &str, address: &str, served: Option<&TestPki>| {
            let mut node = Node::new(&w_net, name, address);
            std::fs::create_dir_all(node.path("/etc/joining")).expect("dir");
            let (location, server) = match served {
                None => {
                    std::fs::write(node.path("/etc/joining/discovery.conf"), &file).expect("discovery file");
                    ("/etc/joining/discovery.conf".to_string(), None)
                }
                Some(trusted) => {
                    std::fs::write(node.path("/etc/joining/trusted.pem"), &trusted.ca_pem)
                        .expect("trust store");
                    let reply = Reply::Status(200, file.clone());
                    let server = serve_in(&node.ns.name, reply, Some(pki.server_config()));
                    (server.url("https", "/cluster-info.yaml"), Some(server))
                }
            };
            node.start_kubelet();
            let args = [
                "join",
                "--discovery-file",
                &location,
                "--node-name",
                name,
                "--skip-phases",
                "preflight",
            ];
            let mut cmd = node.tool(tool, WASMADM, &args, &[]);
            cmd.env("SSL_CERT_FILE", "/etc/joining/trusted.pem")
                .env_remove("SSL_CERT_DIR");
            let ran = node.run(
                &format!("{tool} join --discovery-file {location}"),
                &mut cmd,
                Duration::from_secs(300),
            );
            if let Some(server) = server {
                assert!(server.hits() >= 1, "{tool} did not fetch {location}");
            }
            std::fs::remove_dir_all(node.path("/etc/joining")).expect("remove the discovery file");
            (node, ran)
        };
        let (k_file, k_file_ran) = joined("kubeadm", "n5", "10.200.0.5", None);
        let (w_file, w_file_ran) = joined("wasmadm", "n6", "10.200.0.6", None);
        let (k_file_ran, w_file_ran) = (
            k_file_ran.expect_ok("kubeadm join --discovery-file"),
            w_file_ran.expect_ok("wasmadm join --discovery-file"),
        );
        assert_same_join(&k_file, &k_file_ran, &w_file, &w_file_ran, ("n5", "n6"));
        drop((k_file, w_file));

        // The same file at an https:// URL; with another CA in the trust store, both tools refuse
        // the server and write nothing.
        let (k_url, k_url_ran) = joined("kubeadm", "n11", "10.200.0.11", Some(&pki));
        let (w_url, w_url_ran) = joined("wasmadm", "n12", "10.200.0.12", Some(&pki));
        let (k_url_ran, w_url_ran) = (
            k_url_ran.expect_ok("kubeadm join --discovery-file https://"),
            w_url_ran.expect_ok("wasmadm join --discovery-file https://"),
        );
        assert_same_join(&k_url, &k_url_ran, &w_url, &w_url_ran, ("n11", "n12"));
        drop((k_url, w_url));
        for (tool, says) in [
            ("kubeadm", "certificate signed by unknown authority"),
            (
                "wasmadm",
                "the server's certificate must chain to a CA of the node's trust store",
            ),
        ] {
            let (node, ran) = joined(tool, "n13", "10.200.0.13", Some(&other));
            assert!(
                !ran.status.success() && ran.stderr.contains(says),
                "{tool} with an untrusted discovery server: {:?}\n{}",
                ran.status,
                ran.stderr
            );
            assert_eq!(
                wasmadm_tests::differential::files(&node.path("/etc/kubernetes")),
                Default::default(),
                "{tool} wrote files after refusing the discovery server"
            );
        }
    }

    // Refusals: kubeadm and wasmadm on the same inputs say the same, and write nothing under
    // /etc/kubernetes.
    let wrong_pin = format!("sha256:{}", "0".repeat(64));
    // (The preflight checks run, their errors ignored: kubeadm checks a control plane's cluster there.)
    let control_plane = format!("controlPlane:\n  certificateKey: {CERTIFICATE_KEY}\n");
    let cases = [
        (
            "a wrong CA pin",
            "10.200.0.2:6443",
            TOKEN,
            wrong_pin.as_str(),
            "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys",
            "",
        ),
        (
            "a cluster-info signed for another token secret",
            "10.200.0.2:6443",
            "abcdef.0123456789abcdee",
            pin.as_str(),
            "failed to verify JWS signature of received cluster info object, can't trust this API Server",
            "",
        ),
        (
            "an unknown token",
            "10.200.0.2:6443",
            "zzzzzz.0123456789abcdef",
            pin.as_str(),
            "could not find a JWS signature in the cluster-info ConfigMap for token ID \"zzzzzz\"",
            "",
        ),
        (
            "an API server that does not answer within timeouts.discovery",
            "10.200.0.99:6443",
            TOKEN,
            pin.as_str(),
            "failed to request the cluster-info ConfigMap",
            "",
        ),
        (
            "a control plane joining a cluster without a controlPlaneEndpoint",
            "10.200.0.2:6443",
            TOKEN,
            pin.as_str(),
            "One or more conditions for hosting a new control plane instance is not satisfied.\n\n\
             unable to add a new control plane instance to a cluster that doesn't have a stable \
             controlPlaneEndpoint address\n\nPlease ensure that:\n\
             * The cluster has a stable controlPlaneEndpoint address.\n\
             * The certificates that must be shared among control plane instances are provided.\n",
            &control_plane,
        ),
    ];
    for (i, (what, endpoint, token, pin, message, extra)) in cases.into_iter().enumerate() {
        let config = format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    \
             token: {token}\n    apiServerEndpoint: {endpoint}\n    caCertHashes: [{pin}]\ntimeouts:\n  \
             discovery: 3s\nnodeRegistration:\n  name: r{i}\n{extra}"
        );
        for tool in ["kubeadm", "wasmadm"] {
            let node = Node::new(&w_net, &format!("r{i}"), &format!("10.200.0.{}", 10 + i));
            std::fs::write(node.path("/join.yaml"), &config).expect("config");
            let host_config = node.path("/join.yaml").display().to_string();
            let mut cmd = match tool {
                "kubeadm" => node.kubeadm(&[
                    "join",
                    "--config",
                    "/join.yaml",
                    "--ignore-preflight-errors",
                    "all",
                ]),
                _ => node.wasmadm(
                    WASMADM,
                    &[
                        "join",
                        "--config",
                        &host_config,
                        "--ignore-preflight-errors",
                        "all",
                    ],
                ),
            };
            let ran = node.run(
                &format!("{tool} join with {what}"),
                &mut cmd,
                Duration::from_secs(120),
            );
            assert!(
                !ran.status.success() && ran.stderr.contains(message),
                "{tool} join with {what}: expected a failure saying {message:?}, got {:?}:\n{}",
                ran.status,
                ran.stderr
            );
            let written: Vec<_> = std::fs::read_dir(node.path("/etc/kubernetes"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert!(
                written.is_empty(),
                "{tool} join with {what} wrote {written:?} under /etc/kubernetes"
            );
        }
    }
}

/// Compares a worker joined by kubeadm with one joined by wasmadm (names `k_name`, `w_name`), as
/// [`assert_same_node`] does.
fn assert_same_join(k: &Node, k_ran: &Ran, w: &Node, w_ran: &Ran, (k_name, w_name): (&str, &str)) {
    let compared = assert_same_node(
        "join",
        (k, k_ran),
        (w, w_ran),
        |text| text.replace(w_name, k_name),
        str::to_string,
    );
    assert!(compared >= 8, "too little compared: {compared} files");
}

/// A fixed certificate key, so that kubeadm can download what wasmadm uploaded.
const CERTIFICATE_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

e2e_test!(ecdsa_endpoint_sans_subnets_and_uploaded_certs_match_kubeadm => ecdsa_endpoint_init_then_control_plane_joins);
fn ecdsa_endpoint_init_then_control_plane_joins(version: &str) {
    let config = configuration(
        version,
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
    // `tool` runs `join phase control-plane-prepare SUB` on `node` with certificate key `key` and
    // `extra` arguments; how it ended.
    let prepare_phase = |tool: &str, node: &Node, sub: &str, key: &str, extra: &[&str]| {
        let mut args = vec![
            "join",
            "phase",
            "control-plane-prepare",
            sub,
            "10.200.0.2:6443",
            "--control-plane",
            "--certificate-key",
            key,
            "--token",
            TOKEN,
            "--discovery-token-ca-cert-hash",
            &pin,
        ];
        args.extend_from_slice(extra);
        let mut cmd = node.tool(tool, WASMADM, &args, &[]);
        node.run(
            &format!("{tool} {}", args.join(" ")),
            &mut cmd,
            Duration::from_secs(120),
        )
    };
    let download = |tool: &str, node: &Node, key: &str| prepare_phase(tool, node, "download-certs", key, &[]);
    download("kubeadm", &joining, CERTIFICATE_KEY).expect_ok("kubeadm download-certs");
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

    // wasmadm's download-certs writes the same files with the same modes; a wrong key is refused
    // by both tools, with nothing written.
    let ours = Node::new(&w_net, "n8", "10.200.0.8");
    download("wasmadm", &ours, CERTIFICATE_KEY).expect_ok("wasmadm download-certs");
    let (k_files, w_files) = (
        wasmadm_tests::differential::files(joining.root.path()),
        wasmadm_tests::differential::files(ours.root.path()),
    );
    assert_eq!(
        w_files, k_files,
        "files and modes of download-certs (left wasmadm, right kubeadm)"
    );
    assert!(w_files.len() >= 10, "{w_files:?}");
    for file in w_files
        .keys()
        .filter(|f| f.ends_with(".crt") || f.ends_with(".key") || f.ends_with(".pub"))
    {
        assert_eq!(
            std::fs::read(ours.root.path().join(file)).ok(),
            std::fs::read(joining.root.path().join(file)).ok(),
            "{file}"
        );
    }
    // The whole of control-plane-prepare (download-certs, certs, kubeconfig, control-plane) on a
    // node joining as a control plane, by both tools: the same files and modes, certificates
    // field by field, kubeconfigs by structure, manifests byte for byte, the same console (the
    // order of kubeadm's certificate lines is its map's, so those are compared sorted).
    let prepare = |tool: &str, name: &str, address: &str| {
        let node = Node::new(&w_net, name, address);
        let extra = ["--apiserver-advertise-address", address, "--node-name", name];
        let ran = prepare_phase(tool, &node, "all", CERTIFICATE_KEY, &extra)
            .expect_ok(&format!("{tool} control-plane-prepare"));
        (node, ran)
    };
    let (k_cp, k_cp_ran) = prepare("kubeadm", "n20", "10.200.0.20");
    let (w_cp, w_cp_ran) = prepare("wasmadm", "n21", "10.200.0.21");
    let same = |text: &str| {
        text.replace("10.200.0.21", "10.200.0.20")
            .replace("0a:c8:00:15", "0a:c8:00:14")
            .replace("n21", "n20")
    };
    let compared = assert_same_node(
        "control-plane-prepare",
        (&k_cp, &k_cp_ran),
        (&w_cp, &w_cp_ran),
        same,
        str::to_string,
    );
    assert!(compared >= 30, "too little compared: {compared} files");
    drop((k_cp, w_cp));

    let wrong_key = "f".repeat(64);
    for tool in ["kubeadm", "wasmadm"] {
        let node = Node::new(&w_net, "n9", "10.200.0.9");
        let ran = download(tool, &node, &wrong_key);
        assert!(
            !ran.status.success()
                && ran
                    .stderr
                    .contains("error decoding secret data with provided key"),
            "{tool} with a wrong certificate key: {:?}\n{}",
            ran.status,
            ran.stderr
        );
        assert!(
            !node.path("/etc/kubernetes/pki").exists()
                || std::fs::read_dir(node.path("/etc/kubernetes/pki"))
                    .expect("pki")
                    .next()
                    .is_none(),
            "{tool} with a wrong key wrote files"
        );
    }

    // Discovery at another address of the API server (a SAN of its certificate) than the
    // controlPlaneEndpoint cluster-info names: both tools bootstrap the kubelet against the
    // controlPlaneEndpoint, which wasmadm's pipeline does not grant by name (the host learns it
    // from the cluster-info read over verified TLS).
    let status = std::process::Command::new("ip")
        .args([
            "-n",
            &w_node.ns.name,
            "addr",
            "add",
            "10.200.0.100/24",
            "dev",
            "eth0",
        ])
        .status()
        .expect("ip");
    assert!(status.success(), "cannot add 10.200.0.100 to n1");
    // `tool` joins node `name` at `address` through `endpoint`, as a control plane when
    // `control_plane` (with the uploaded certificates).
    let joined = |tool: &str, name: &str, address: &str, endpoint: &str, control_plane: bool| {
        let mut node = Node::new(&w_net, name, address);
        node.start_kubelet();
        let key_and_address = control_plane.then_some((CERTIFICATE_KEY, address));
        let args = join_args(endpoint, TOKEN, &pin, name, key_and_address);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = node.run_ok(tool, WASMADM, &args);
        (node, ran)
    };
    let (k_worker, k_ran) = joined("kubeadm", "n5", "10.200.0.5", "10.200.0.100:6443", false);
    let (w_worker, w_ran) = joined("wasmadm", "n6", "10.200.0.6", "10.200.0.100:6443", false);
    assert_same_join(&k_worker, &k_ran, &w_worker, &w_ran, ("n5", "n6"));
    let bootstrap_server = |n: &Node| {
        let conf = std::fs::read_to_string(n.path("/etc/kubernetes/kubelet.conf")).expect("kubelet.conf");
        conf.lines()
            .find(|l| l.trim_start().starts_with("server:"))
            .map(|l| l.trim().to_string())
    };
    assert_eq!(
        bootstrap_server(&w_worker),
        Some("server: https://10.200.0.2:6443".into())
    );
    assert_eq!(bootstrap_server(&k_worker), bootstrap_server(&w_worker));
    drop((k_worker, w_worker));

    // Real kubeadm joins a second control-plane node to wasmadm's cluster, with the certificates
    // wasmadm uploaded: download-certs, its own etcd member (learner, then promoted), its API
    // server, the control-plane label and taint.
    let (cp2, cp2_ran) = joined("kubeadm", "n7", "10.200.0.7", "10.200.0.2:6443", true);
    assert_joined_control_plane(&w_node, &cp2, 2);

    // wasmadm joins a third control-plane node with its default pipeline: the same certificates,
    // its etcd member promoted, its API server ready, the label and taint, kubeadm's closing words.
    let (cp3, cp3_ran) = joined("wasmadm", "n22", "10.200.0.22", "10.200.0.2:6443", true);
    assert!(
        cp3_ran
            .stdout
            .contains("This node has joined the cluster and a new control plane instance was created:")
            && cp3_ran
                .stdout
                .contains("[check-etcd] Checking that the etcd cluster is healthy"),
        "{}",
        cp3_ran.stdout
    );
    assert_joined_control_plane(&w_node, &cp3, 3);
    eprintln!("wasmadm joined a control plane in {:?}", cp3_ran.took);

    // The control plane wasmadm joined (the third) is the one kubeadm joined (the second): files,
    // certificates, kubeconfigs, manifests, kubelet files and console; etcd's member list is the
    // one difference by design (kubeadm's has two members, wasmadm's three), so the
    // `--initial-cluster` flags are compared as sets with the third member's entry left out.
    let same_cp = |text: &str| {
        text.replace("n7=https://10.200.0.7:2380", "")
            .replace("10.200.0.22", "10.200.0.7")
            .replace("0a:c8:00:16", "0a:c8:00:07")
            .replace("n22", "n7")
    };
    let initial_cluster_as_set = |text: &str| {
        let lines = text
            .lines()
            .map(|line| match line.split_once("--initial-cluster=") {
                Some((head, members)) => {
                    let set: std::collections::BTreeSet<&str> =
                        members.split(',').filter(|m| !m.is_empty()).collect();
                    format!("{head}--initial-cluster={set:?}")
                }
                None => line.to_string(),
            });
        lines.collect::<Vec<_>>().join("\n")
    };
    let compared = assert_same_node(
        "join --control-plane",
        (&cp2, &cp2_ran),
        (&cp3, &cp3_ran),
        same_cp,
        initial_cluster_as_set,
    );
    assert!(compared >= 40, "too little compared: {compared} files");
    // Their Nodes (labels, annotations, taints) and etcd members (URLs) alike.
    let node_facts = |name: &str| {
        let node = w_node.get_json(&["node", name]);
        let mut taints = node["spec"]["taints"].clone();
        for taint in taints.as_array_mut().into_iter().flatten() {
            taint.as_object_mut().map(|t| t.remove("timeAdded"));
        }
        serde_json::json!({
            "labels": node["metadata"]["labels"],
            "annotations": node["metadata"]["annotations"],
            "taints": taints,
        })
        .to_string()
    };
    assert_eq!(
        same_cp(&node_facts("n22")),
        node_facts("n7"),
        "Node n22 (wasmadm) and n7 (kubeadm)"
    );
    let member = |name: &str| {
        let m = w_node
            .etcd_members()
            .into_iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no etcd member {name}"));
        serde_json::json!({"peerURLs": m["peerURLs"], "clientURLs": m["clientURLs"]}).to_string()
    };
    assert_eq!(
        same_cp(&member("n22")),
        member("n7"),
        "etcd members n22 (wasmadm) and n7 (kubeadm)"
    );

    // Once the kubeadm-certs Secret is gone (it expires with its token), both tools refuse a
    // control-plane join with kubeadm's hint to upload the certificates again, writing nothing.
    w_node.kubectl(&["-n", "kube-system", "delete", "secret", "kubeadm-certs"]);
    for tool in ["kubeadm", "wasmadm"] {
        let node = Node::new(&w_net, "n10", "10.200.0.10");
        let ran = download(tool, &node, CERTIFICATE_KEY);
        assert!(
            !ran.status.success()
                && ran.stderr.contains(
                    "Secret \"kubeadm-certs\" was not found in the \"kube-system\" Namespace. This Secret \
                     might have expired. Please, run `"
                )
                && ran
                    .stderr
                    .contains(" init phase upload-certs --upload-certs` on a control plane"),
            "{tool} without the kubeadm-certs Secret: {:?}\n{}",
            ran.status,
            ran.stderr
        );
        assert_eq!(
            wasmadm_tests::differential::files(&node.path("/etc/kubernetes")),
            Default::default(),
            "{tool} wrote files without the kubeadm-certs Secret"
        );
    }

    // Without a certificate key, a joining control plane must have the shared certificates
    // already: both tools refuse in preflight (its checks' errors ignored) with the same reasons.
    let mut reasons = Vec::new();
    for tool in ["kubeadm", "wasmadm"] {
        let node = Node::new(&w_net, "n11", "10.200.0.11");
        let args = [
            "join",
            "10.200.0.2:6443",
            "--token",
            TOKEN,
            "--discovery-token-ca-cert-hash",
            &pin,
            "--control-plane",
            "--ignore-preflight-errors",
            "all",
        ];
        let mut cmd = node.tool(tool, WASMADM, &args, &[]);
        let ran = node.run(
            &format!("{tool} join --control-plane"),
            &mut cmd,
            Duration::from_secs(120),
        );
        let reason = "failure loading certificate for CA: couldn't load the certificate file \
                      /etc/kubernetes/pki/ca.crt: open /etc/kubernetes/pki/ca.crt: no such file or directory";
        assert!(
            !ran.status.success()
                && ran.stderr.contains(
                    "One or more conditions for hosting a new control plane instance is not satisfied."
                )
                && ran.stderr.contains(reason),
            "{tool} joining a control plane without the shared certificates: {:?}\n{}",
            ran.status,
            ran.stderr
        );
        assert_eq!(
            wasmadm_tests::differential::files(&node.path("/etc/kubernetes")),
            Default::default(),
            "{tool} wrote files without the shared certificates"
        );
        let block = ran.stderr.split("not satisfied.").nth(1).unwrap_or_default();
        reasons.push(
            block
                .split("Please ensure")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        );
    }
    assert_eq!(
        reasons[0], reasons[1],
        "the reasons of kubeadm (left) and wasmadm (right)"
    );
}

/// Compares what kubeadm made on node `k` with what wasmadm made on node `w` (after `same` turned
/// wasmadm's node-specific names into kubeadm's): files and modes, certificates field by field,
/// kubeconfigs by structure, manifests, kubelet files and other YAML byte for byte (after `both` on
/// each side), the console line by line (a run of kubeadm's certificate lines is in its map's
/// order, so those runs are compared sorted). Returns how many files were compared.
fn assert_same_node(
    what: &str,
    (k, k_ran): (&Node, &Ran),
    (w, w_ran): (&Node, &Ran),
    same: impl Fn(&str) -> String,
    both: impl Fn(&str) -> String,
) -> usize {
    use wasmadm_tests::differential::{allowed, certificate_facts, diff_lines, files, kubeconfig_structure};
    let mut differences = Vec::new();
    let (k_files, w_files) = (files(k.root.path()), files(w.root.path()));
    if k_files != w_files {
        differences.push(format!(
            "files and modes:\n  kubeadm: {k_files:?}\n  wasmadm: {w_files:?}"
        ));
    }
    for file in k_files.keys() {
        let (k_path, w_path) = (k.root.path().join(file), w.root.path().join(file));
        let (Ok(k_text), Ok(w_text)) = (std::fs::read_to_string(&k_path), std::fs::read_to_string(&w_path))
        else {
            continue;
        };
        let (k_value, w_value) = if file.ends_with(".crt") {
            (
                format!("{:?}", certificate_facts(k_text.as_bytes())),
                same(&format!("{:?}", certificate_facts(w_text.as_bytes()))),
            )
        } else if file.ends_with(".conf") {
            (
                kubeconfig_structure(&k_text).to_string(),
                kubeconfig_structure(&same(&w_text)).to_string(),
            )
        } else if file.ends_with(".yaml") || file.ends_with(".env") {
            (both(&k_text), both(&same(&w_text)))
        } else {
            continue;
        };
        if k_value != w_value {
            differences.push(format!("{file}:\n--- kubeadm\n{k_value}\n--- wasmadm\n{w_value}"));
        }
    }
    let console = |text: &str| {
        let mut lines = wasmadm_tests::differential::mask_console(text);
        // kubeadm makes a joining control plane's certificates in its map's order.
        wasmadm_tests::differential::sort_runs(&mut lines, |l| l.starts_with("[certs] "));
        lines
    };
    let w_console = same(&allowed("console", &w_ran.stdout));
    if let Some(d) = diff_lines(&console(&k_ran.stdout), &console(&w_console)) {
        differences.push(format!(
            "console:\n{d}\n--- kubeadm's\n{}\n--- wasmadm's\n{}",
            k_ran.stdout, w_ran.stdout
        ));
    }
    assert!(
        differences.is_empty(),
        "wasmadm's {what} differs from kubeadm's:\n{}",
        differences.join("\n")
    );
    eprintln!(
        "{what} same as kubeadm: {} files, {} console lines; kubeadm {:?}, wasmadm {:?}",
        k_files.len(),
        k_ran.stdout.lines().count(),
        k_ran.took,
        w_ran.took
    );
    k_files.len()
}

/// A control plane `joined` to the cluster of `first` as both tools leave one: the cluster's CA
/// and service-account files, `members` started etcd voters, its own API server ready, the
/// control-plane label and taint on its Node.
fn assert_joined_control_plane(first: &Node, joined: &Node, members: usize) {
    for file in [
        "ca.crt",
        "ca.key",
        "sa.key",
        "front-proxy-ca.crt",
        "etcd/ca.crt",
        "etcd/ca.key",
    ] {
        let path = format!("/etc/kubernetes/pki/{file}");
        assert_eq!(
            std::fs::read(joined.path(&path)).ok(),
            std::fs::read(first.path(&path)).ok(),
            "{file} of the joined control plane {}",
            joined.name
        );
    }
    let listed = first.etcd_members();
    assert_eq!(listed.len(), members, "etcd members: {listed:?}");
    assert!(
        listed
            .iter()
            .all(|m| m["isLearner"] != true && m["name"].is_string()),
        "etcd members not all started voters: {listed:?}"
    );
    let server = format!("https://{}:6443", joined.ns.address);
    assert_eq!(
        joined.kubectl(&["--server", &server, "get", "--raw", "/readyz"]),
        "ok"
    );
    let node = first.get_json(&["node", &joined.name]);
    assert!(
        node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"].is_string()
            && node["spec"]["taints"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["key"] == "node-role.kubernetes.io/control-plane"),
        "{node}"
    );
}

e2e_test!(extra_args_volumes_component_configs_and_a_skipped_addon_match_kubeadm => extra_args_init_then_configured_joins);
fn extra_args_init_then_configured_joins(version: &str) {
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
    let (k_node, k_ran, w_node, w_ran, w_net) =
        init_both_with(&config, &[], "preflight,addon/kube-proxy", Some(&pipeline));
    // No kube-proxy: 6 objects fewer than the default configuration.
    assert_same(&k_node, &k_ran, &w_node, &w_ran, [40, 10, 22, 70]);
    drop(k_node);

    // Workers join from a JoinConfiguration with taints, kubelet extra args and another CRI
    // socket: the kubelet's flags and its configuration (the cluster's, with this configuration's
    // KubeletConfiguration in it) as kubeadm writes them.
    let pin = ca_pin(&w_ran.stdout);
    let join_config = |name: &str| {
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    \
             token: {TOKEN}\n    apiServerEndpoint: 10.200.0.2:6443\n    caCertHashes: [{pin}]\n\
             nodeRegistration:\n  name: {name}\n  criSocket: unix:///run/crio/crio.sock\n  taints:\n  \
             - {{key: dedicated, value: gpu, effect: NoSchedule}}\n  - {{key: spot, effect: PreferNoSchedule}}\n  \
             kubeletExtraArgs:\n  - {{name: node-labels, value: tier=gpu}}\n  - {{name: max-pods, value: \"50\"}}\n\
             skipPhases: [preflight]\n"
        )
    };
    let joined = |tool: &str, name: &str, address: &str| {
        let mut node = Node::new(&w_net, name, address);
        std::fs::write(node.path("/join.yaml"), join_config(name)).expect("config");
        node.start_kubelet();
        let host_config = node.path("/join.yaml").display().to_string();
        let mut cmd = match tool {
            "kubeadm" => node.kubeadm(&["join", "--config", "/join.yaml"]),
            _ => node.wasmadm(WASMADM, &["join", "--config", &host_config]),
        };
        let ran = node
            .run(&format!("{tool} join"), &mut cmd, Duration::from_secs(300))
            .expect_ok(&format!("{tool} join --config"));
        std::fs::remove_file(node.path("/join.yaml")).expect("remove the config");
        (node, ran)
    };
    let (k_worker, k_ran) = joined("kubeadm", "n2", "10.200.0.3");
    let (w_worker, w_ran) = joined("wasmadm", "n3", "10.200.0.4");
    assert_same_join(&k_worker, &k_ran, &w_worker, &w_ran, ("n2", "n3"));
    let flags = std::fs::read_to_string(w_worker.path("/var/lib/kubelet/kubeadm-flags.env")).expect("flags");
    assert!(
        flags.contains("--register-with-taints=dedicated=gpu:NoSchedule,spot:PreferNoSchedule")
            && flags.contains("--max-pods=50"),
        "{flags}"
    );
}
