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
use wasmadm_tests::{Run, node};

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

/// A node root holding the PKI, kubeconfigs and manifests for a control plane on 127.0.0.1.
fn generated_node(version: &str, port: u16) -> tempfile::TempDir {
    let root = node("healthy");
    let config = root.path().join("kubeadm.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
             localAPIEndpoint: {{advertiseAddress: 127.0.0.1, bindPort: {port}}}\n\
             nodeRegistration: {{name: n1, criSocket: unix:///var/run/containerd/containerd.sock}}\n\
             ---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
             kubernetesVersion: {version}\n"
        ),
    )
    .expect("config");
    let pipeline = Pipeline::builtin_default().expect("pipeline");
    for phase in ["certs", "kubeconfig", "etcd", "control-plane"] {
        let mut run = Run::new(&pipeline, root.path());
        run.config = Some(&config);
        run.only = Some((phase.into(), Some("all".into())));
        let out = run.go();
        assert!(out.result.is_ok(), "{phase}: {} {:?}", out.error(), out.stderr);
    }
    root
}

/// A client authenticated as `kubeconfig` says; GETs `path` and returns the body.
fn get(runtime: &tokio::runtime::Runtime, kubeconfig: &Path, path: &str) -> Result<String, String> {
    runtime.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
        let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
        let request = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        client.request_text(request).await.map_err(|e| e.to_string())
    })
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
