//! End to end: the control plane started from the generated manifests with real binaries.
//!
//! Needs `KUBEBUILDER_ASSETS` (controller-runtime envtest's layout) naming a directory with `etcd`,
//! `kube-apiserver`, `kube-controller-manager` and `kube-scheduler` of the Kubernetes version
//! wasmadm targets, when the tests are built:
//!
//! ```text
//! KUBEBUILDER_ASSETS=/opt/k8s/bin cargo test -p wasmadm-tests --test e2e_control_plane
//! ```
//!
//! Without it the test is reported as `ignored` with the reason (never as passed); run with
//! `-- --ignored` anyway and it fails saying what is missing. The test plays the kubelet: it starts
//! each static pod's command as a process (see `wasmadm_tests::static_pod`).
#![cfg_attr(not(kubebuilder_assets), allow(dead_code, unused_imports))]

use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::static_pod::{Process, Rewrites, StaticPod, etcd_rewrites, free_port, http_status};
use wasmadm_tests::{Run, node, run_phases};

/// The directory of real binaries, or a panic that says how to provide it.
fn assets() -> PathBuf {
    let dir = std::env::var_os("KUBEBUILDER_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "KUBEBUILDER_ASSETS is not set: point it at a directory with etcd, kube-apiserver, \
             kube-controller-manager and kube-scheduler (e.g. `setup-envtest use -p path` plus the two \
             binaries envtest omits) and rebuild the tests"
            )
        });
    for b in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        assert!(
            dir.join(b).is_file(),
            "KUBEBUILDER_ASSETS={} has no `{b}`",
            dir.display()
        );
    }
    dir
}

/// `v1.x.y` of the API server binary: the configuration asks for exactly that version.
fn apiserver_version(assets: &Path) -> String {
    let out = std::process::Command::new(assets.join("kube-apiserver"))
        .arg("--version")
        .output()
        .expect("kube-apiserver --version");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.starts_with('v'))
        .unwrap_or_else(|| panic!("unexpected `kube-apiserver --version` output: {text}"))
        .to_string()
}

/// A fresh node root with a kubeadm configuration (`kubeadm.yaml`) for a control plane on
/// 127.0.0.1:`port`; `init_extra` is appended to the InitConfiguration.
fn configured_node(version: &str, port: u16, init_extra: &str) -> (tempfile::TempDir, PathBuf) {
    let root = node("healthy");
    let config = root.path().join("kubeadm.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
             localAPIEndpoint: {{advertiseAddress: 127.0.0.1, bindPort: {port}}}\n\
             nodeRegistration: {{name: n1, criSocket: unix:///var/run/containerd/containerd.sock}}\n\
             {init_extra}---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
             kubernetesVersion: {version}\n"
        ),
    )
    .expect("config");
    (root, config)
}

/// A node root holding the PKI, kubeconfigs and manifests for a control plane on 127.0.0.1.
fn generated_node(version: &str, port: u16) -> tempfile::TempDir {
    let (root, config) = configured_node(version, port, "");
    run_phases(
        root.path(),
        &config,
        &["certs", "kubeconfig", "etcd", "control-plane"],
    );
    root
}

/// A GET through `kubeconfig`'s credentials; the response body.
fn get(runtime: &tokio::runtime::Runtime, kubeconfig: &Path, path: &str) -> Result<String, String> {
    send(runtime, kubeconfig, http::Method::GET, path, None)
}

/// etcd, kube-apiserver, kube-controller-manager and kube-scheduler of one generated node.
struct ControlPlane {
    processes: Vec<Process>,
    root: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl ControlPlane {
    fn start() -> Self {
        let assets = assets();
        let port = free_port();
        let root = generated_node(&apiserver_version(&assets), port);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        let (etcd_rewrites, etcd_ports) = etcd_rewrites(&assets.join("etcd"), "127.0.0.1");
        let mut processes = Vec::new();

        let etcd = StaticPod::load(root.path(), "etcd");
        let mut process = etcd.start(
            &assets.join("etcd"),
            &etcd.command_line(root.path(), &etcd_rewrites),
            root.path(),
        );
        process.wait_until(Duration::from_secs(30), || {
            http_status(etcd_ports.metrics, "/health") == Some(200)
        });
        processes.push(process);

        // The API server reaches etcd at the rewritten client port; everything else as generated.
        let to_etcd = Rewrites {
            addresses: vec![(":2379".into(), format!(":{}", etcd_ports.client))],
            ..Rewrites::default()
        };
        let admin = root.path().join("etc/kubernetes/admin.conf");
        let apiserver = StaticPod::load(root.path(), "kube-apiserver");
        let mut process = apiserver.start(
            &assets.join("kube-apiserver"),
            &apiserver.command_line(root.path(), &to_etcd),
            root.path(),
        );
        process.wait_until(Duration::from_secs(90), || {
            get(&runtime, &admin, "/livez").is_ok_and(|body| body == "ok")
        });
        processes.push(process);

        for name in ["kube-controller-manager", "kube-scheduler"] {
            let pod = StaticPod::load(root.path(), name);
            let args = pod.command_line(root.path(), &Rewrites::default());
            processes.push(pod.start(&assets.join(name), &args, root.path()));
        }
        Self {
            processes,
            root,
            runtime,
        }
    }

    fn admin(&self) -> PathBuf {
        self.root.path().join("etc/kubernetes/admin.conf")
    }

    /// Waits until `path` answers through `admin.conf`, checking that no component died.
    fn wait_for(&mut self, path: &str, timeout: Duration) -> String {
        let start = std::time::Instant::now();
        loop {
            for p in &mut self.processes {
                p.assert_running();
            }
            match get(&self.runtime, &self.admin(), path) {
                Ok(body) => return body,
                Err(e) if start.elapsed() > timeout => panic!("GET {path} after {timeout:?}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }
}

#[test]
#[cfg_attr(
    not(kubebuilder_assets),
    ignore = "skipped: needs KUBEBUILDER_ASSETS with etcd, kube-apiserver, kube-controller-manager and \
              kube-scheduler when the tests are built (README, \"End-to-end tests\")"
)]
fn control_plane_from_generated_manifests_is_live() {
    let mut cp = ControlPlane::start();
    assert_eq!(cp.wait_for("/livez", Duration::from_secs(30)), "ok");
    // The controller-manager and the scheduler run with their generated kubeconfigs: each takes its
    // leader-election lease through the API server.
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        let body = cp.wait_for(
            &format!("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{lease}"),
            Duration::from_secs(90),
        );
        assert!(body.contains("holderIdentity"), "lease {lease}: {body}");
    }
    assert_eq!(cp.wait_for("/readyz", Duration::from_secs(30)), "ok");
}
/// The test's stand-in for the kubelet during a full `init`: starts each static pod once its
/// manifest exists, answers the kubelet's healthz, and registers the Node with `kubelet.conf`.
struct Kubelet {
    assets: PathBuf,
    started: Vec<String>,
    processes: Vec<Process>,
    etcd: Option<(Rewrites, u16)>,
    registered: bool,
}

impl Kubelet {
    /// One pass over the manifests directory; cheap to call in a loop.
    fn sync(&mut self, root: &Path, runtime: &tokio::runtime::Runtime) {
        for p in &mut self.processes {
            p.assert_running();
        }
        let manifests = root.join("etc/kubernetes/manifests");
        for name in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            if self.started.iter().any(|s| s == name) || !manifests.join(format!("{name}.yaml")).is_file() {
                continue;
            }
            let pod = StaticPod::load(root, name);
            let args = if name == "etcd" {
                let (rewrites, ports) = etcd_rewrites(&self.assets.join("etcd"), "127.0.0.1");
                let args = pod.command_line(root, &rewrites);
                self.etcd = Some((rewrites, ports.metrics));
                args
            } else {
                let Some((rewrites, metrics)) = &self.etcd else {
                    continue;
                };
                if name == "kube-apiserver" {
                    // Only once etcd answers: the API server exits when it cannot reach it.
                    if http_status(*metrics, "/health") != Some(200) {
                        continue;
                    }
                    let to_etcd = Rewrites {
                        addresses: rewrites
                            .addresses
                            .iter()
                            .filter(|(f, _)| f == ":2379")
                            .cloned()
                            .collect(),
                        ..Rewrites::default()
                    };
                    pod.command_line(root, &to_etcd)
                } else {
                    pod.command_line(root, &Rewrites::default())
                }
            };
            self.processes
                .push(pod.start(&self.assets.join(name), &args, root));
            self.started.push(name.to_string());
        }
        // A kubelet registers its Node as soon as the API server takes it.
        let kubelet_conf = root.join("etc/kubernetes/kubelet.conf");
        if !self.registered && self.started.iter().any(|s| s == "kube-apiserver") {
            let node = serde_json::json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "n1", "labels": {
                    "kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"
                }},
            });
            self.registered = send(
                runtime,
                &kubelet_conf,
                http::Method::POST,
                "/api/v1/nodes",
                Some(node),
            )
            .is_ok();
        }
    }
}

/// A request through `kubeconfig`'s credentials; the response body.
fn send(
    runtime: &tokio::runtime::Runtime,
    kubeconfig: &Path,
    method: http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<String, String> {
    runtime.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
        let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("Content-Type", "application/json")
            .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        client.request_text(request).await.map_err(|e| e.to_string())
    })
}

/// A minimal HTTP server answering `ok` to everything: the kubelet's healthz on 127.0.0.1:10248.
fn serve_kubelet_healthz() {
    let listener = std::net::TcpListener::bind("127.0.0.1:10248")
        .expect("127.0.0.1:10248 (the kubelet's healthz port) must be free for the end-to-end test");
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
}

#[test]
#[cfg_attr(
    not(kubebuilder_assets),
    ignore = "skipped: needs KUBEBUILDER_ASSETS with etcd, kube-apiserver, kube-controller-manager and \
              kube-scheduler when the tests are built (README, \"End-to-end tests\")"
)]
fn full_init_against_a_real_control_plane() {
    let assets = assets();
    let port = free_port();
    let version = apiserver_version(&assets);
    let (root, config) = configured_node(
        &version,
        port,
        "bootstrapTokens:\n- token: abcdef.0123456789abcdef\n",
    );
    serve_kubelet_healthz();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let admin = root.path().join("etc/kubernetes/admin.conf");
    let pipeline = Pipeline::builtin_default().expect("pipeline");
    let cluster: std::sync::Arc<dyn wasmadm::cluster::Cluster> =
        std::sync::Arc::new(wasmadm::cluster::real::RealCluster::new(admin.clone()).expect("cluster"));
    let mut kubelet = Kubelet {
        assets: assets.clone(),
        started: Vec::new(),
        processes: Vec::new(),
        etcd: None,
        registered: false,
    };

    // `init` runs on its own thread; this one plays the kubelet until it ends.
    let outcome = std::thread::scope(|s| {
        let init = s.spawn(|| {
            let mut run = Run::new(&pipeline, root.path());
            run.config = Some(&config);
            // The preflight checks are about the test machine, not about the control plane.
            run.flags.skip_phases = vec!["preflight".into()];
            run.cluster = Some(cluster.clone());
            run.go()
        });
        while !init.is_finished() {
            kubelet.sync(root.path(), &runtime);
            std::thread::sleep(Duration::from_millis(200));
        }
        init.join().expect("init thread")
    });
    assert!(
        outcome.result.is_ok(),
        "init failed: {}\nstdout: {:#?}\nstderr: {:#?}",
        outcome.error(),
        outcome.stdout,
        outcome.stderr
    );
    assert!(kubelet.registered, "the Node was never registered");

    let get_json = |path: &str| -> serde_json::Value {
        let body = send(&runtime, &admin, http::Method::GET, path, None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        serde_json::from_str(&body).expect("JSON")
    };

    // The real controller-manager's bootstrap signer signs cluster-info with the token; the helper
    // join uses to verify it must agree.
    let token = kubeadm_bootstrap_token::Token::parse("abcdef.0123456789abcdef").expect("token");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let (kubeconfig, jws) = loop {
        let cm = get_json("/api/v1/namespaces/kube-public/configmaps/cluster-info");
        if let (Some(k), Some(j)) = (
            cm["data"]["kubeconfig"].as_str(),
            cm["data"]["jws-kubeconfig-abcdef"].as_str(),
        ) {
            break (k.to_string(), j.to_string());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no jws-kubeconfig-abcdef in cluster-info: {cm}"
        );
        kubelet.sync(root.path(), &runtime);
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        kubeadm_bootstrap_token::cluster_info::verify_detached_jws(&kubeconfig, &token, &jws),
        "the controller-manager's signature {jws} does not verify with wasmadm's helper"
    );

    // A CSR made with the bootstrap token is approved and signed: the RBAC objects are right.
    let dir = tempfile::tempdir().expect("tempdir");
    let csr_path = dir.path().join("n2.csr");
    wasmadm_tests::openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &dir.path().join("n2.key").display().to_string(),
        "-out",
        &csr_path.display().to_string(),
        "-subj",
        "/O=system:nodes/CN=system:node:n2",
    ]);
    let csr_pem = std::fs::read(&csr_path).expect("csr");
    let ca = kube::config::Kubeconfig::read_from(&admin)
        .expect("admin.conf")
        .clusters[0]
        .cluster
        .as_ref()
        .and_then(|c| c.certificate_authority_data.clone())
        .expect("CA data");
    let bootstrap = dir.path().join("bootstrap.conf");
    std::fs::write(
        &bootstrap,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    \
             certificate-authority-data: {ca}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\n\
             current-context: c\nusers:\n- name: u\n  user: {{token: abcdef.0123456789abcdef}}\n"
        ),
    )
    .expect("bootstrap kubeconfig");
    use base64::Engine as _;
    let csr = serde_json::json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "wasmadm-e2e-n2"},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(&csr_pem),
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
        },
    });
    send(
        &runtime,
        &bootstrap,
        http::Method::POST,
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        Some(csr),
    )
    .expect("the bootstrap token may create a CSR");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let csr = get_json("/apis/certificates.k8s.io/v1/certificatesigningrequests/wasmadm-e2e-n2");
        let approved = csr["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Approved"));
        if approved
            && csr["status"]["certificate"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the CSR was not approved and signed: {csr}"
        );
        kubelet.sync(root.path(), &runtime);
        std::thread::sleep(Duration::from_millis(500));
    }
}
