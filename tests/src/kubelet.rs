//! The test's kubelet for a node in its own network namespace: what real kubeadm and wasmadm need
//! from a kubelet to complete `init` and `join` (see the README of the Kubernetes binaries).
//!
//! - runs each static Pod manifest under `/etc/kubernetes/manifests` as a process (real binaries
//!   from `KUBEBUILDER_ASSETS`, `hostPath`s mapped into the node directory, etcd 3.4 flag names),
//!   restarts it when the manifest changes and stops it when the manifest goes away;
//! - serves `http://127.0.0.1:10248/healthz`;
//! - does the TLS bootstrap once the kubelet's configuration is written, when
//!   `bootstrap-kubelet.conf` exists and `kubelet.conf` does not (a
//!   CSR for `system:node:<name>`, signed by the real controller-manager), then writes
//!   `kubelet.conf` and `/var/lib/kubelet/pki/kubelet-client-current.pem`;
//! - registers the Node with `kubelet.conf`'s credentials, then creates a mirror Pod for each
//!   static Pod.
//!
//! A component that exits is a failure the test sees at once ([`Kubelet::failure`]), with the
//! component's name and the last lines of its log. Everything stops when the kubelet is dropped.

use crate::static_pod::{Process, Rewrites, StaticPod};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the kubelet works on.
#[derive(Clone)]
pub struct KubeletSpec {
    /// The node directory.
    pub root: PathBuf,
    /// `KUBEBUILDER_ASSETS`.
    pub assets: PathBuf,
    /// The Node's name.
    pub node_name: String,
    /// The node's network namespace.
    pub netns: String,
    /// Where the components' logs go (not the node directory, whose files the tests compare).
    pub log_dir: PathBuf,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    failure: Mutex<Option<String>>,
    registered: AtomicBool,
}

/// A running played kubelet; stops (with every process it started) when dropped.
pub struct Kubelet {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Kubelet {
    pub fn start(spec: KubeletSpec) -> Self {
        let shared = Arc::new(Shared::default());
        let healthz = {
            let (shared, netns) = (shared.clone(), spec.netns.clone());
            std::thread::spawn(move || serve_healthz(&netns, &shared))
        };
        let sync = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                crate::netns::enter(&spec.netns);
                let mut state = State {
                    spec,
                    pods: BTreeMap::new(),
                    runtime: tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("tokio"),
                };
                while !shared.stop.load(Ordering::SeqCst) {
                    if let Err(failure) = state.sync(&shared) {
                        *shared.failure.lock().expect("lock") = Some(failure);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                // Dropping the processes stops them.
            })
        };
        Self {
            shared,
            threads: vec![healthz, sync],
        }
    }

    /// Why the node broke (a component exited, the kubelet could not do its part), if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().expect("lock").clone()
    }

    /// True once the Node object was registered with `kubelet.conf`.
    pub fn registered(&self) -> bool {
        self.shared.registered.load(Ordering::SeqCst)
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The kubelet's healthz, inside the node's namespace, until stopped.
fn serve_healthz(netns: &str, shared: &Shared) {
    use std::io::{Read, Write};
    crate::netns::enter(netns);
    let listener = match std::net::TcpListener::bind("127.0.0.1:10248") {
        Ok(l) => l,
        Err(e) => {
            *shared.failure.lock().expect("lock") = Some(format!("kubelet healthz 127.0.0.1:10248: {e}"));
            return;
        }
    };
    listener.set_nonblocking(true).expect("nonblocking");
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let _ =
                    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

struct RunningPod {
    manifest: String,
    process: Process,
    /// Whether the API server has this Pod's mirror.
    mirrored: bool,
}

struct State {
    spec: KubeletSpec,
    pods: BTreeMap<String, RunningPod>,
    runtime: tokio::runtime::Runtime,
}

const STATIC_PODS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

impl State {
    fn root(&self) -> &Path {
        &self.spec.root
    }

    fn sync(&mut self, shared: &Shared) -> Result<(), String> {
        for (name, pod) in &mut self.pods {
            if let Some(status) = pod.process.exited() {
                return Err(format!(
                    "{name} exited ({status}); the last lines of its log ({}):\n{}",
                    pod.process.log.display(),
                    pod.process.log_tail(25)
                ));
            }
        }
        self.sync_static_pods();
        self.tls_bootstrap()?;
        if !shared.registered.load(Ordering::SeqCst) && self.register_node() {
            shared.registered.store(true, Ordering::SeqCst);
        }
        if shared.registered.load(Ordering::SeqCst) {
            self.mirror_static_pods();
        }
        Ok(())
    }

    /// A mirror Pod for each running static Pod (`<name>-<node>` in kube-system, the kubelet's
    /// annotations, owned by the Node as NodeRestriction requires): kubeadm's control-plane join
    /// finds etcd's client URL in the etcd mirror Pod's annotations. Tried again on the next pass
    /// until the API server takes it.
    fn mirror_static_pods(&mut self) {
        if self.pods.values().all(|p| p.mirrored) {
            return;
        }
        let Ok(client) = self.client("/etc/kubernetes/kubelet.conf") else {
            return;
        };
        let node = &self.spec.node_name;
        let Ok(text) = send(
            &self.runtime,
            &client,
            http::Method::GET,
            &format!("/api/v1/nodes/{node}"),
            None,
        ) else {
            return;
        };
        let uid = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|n| n["metadata"]["uid"].as_str().map(str::to_string));
        let Some(uid) = uid else { return };
        for (name, pod) in self.pods.iter_mut().filter(|(_, p)| !p.mirrored) {
            let Ok(mut object) = serde_yaml::from_str::<serde_json::Value>(&pod.manifest) else {
                continue;
            };
            use std::hash::{Hash as _, Hasher as _};
            let mut hasher = std::hash::DefaultHasher::new();
            pod.manifest.hash(&mut hasher);
            let hash = format!("{:016x}", hasher.finish());
            object["metadata"]["name"] = format!("{name}-{node}").into();
            object["metadata"]["namespace"] = "kube-system".into();
            let annotations = &mut object["metadata"]["annotations"];
            if !annotations.is_object() {
                *annotations = serde_json::json!({});
            }
            annotations["kubernetes.io/config.mirror"] = hash.clone().into();
            annotations["kubernetes.io/config.hash"] = hash.into();
            annotations["kubernetes.io/config.source"] = "file".into();
            object["metadata"]["ownerReferences"] = serde_json::json!([{
                "apiVersion": "v1", "kind": "Node", "name": node, "uid": uid, "controller": true,
            }]);
            object["spec"]["nodeName"] = node.as_str().into();
            if let Some(status) = object.as_object_mut() {
                status.remove("status");
            }
            match send(
                &self.runtime,
                &client,
                http::Method::POST,
                "/api/v1/namespaces/kube-system/pods",
                Some(object),
            ) {
                Ok(_) => pod.mirrored = true,
                Err(e) if e.contains("already exists") => pod.mirrored = true,
                Err(_) => {}
            }
        }
    }

    fn sync_static_pods(&mut self) {
        let manifests = self.root().join("etc/kubernetes/manifests");
        for name in STATIC_PODS {
            let manifest = std::fs::read_to_string(manifests.join(format!("{name}.yaml"))).ok();
            let running = self.pods.get(name).map(|p| p.manifest.clone());
            match (manifest, running) {
                (None, Some(_)) => {
                    self.pods.remove(name);
                }
                (Some(m), Some(r)) if m == r => {}
                (Some(m), _) => {
                    // The API server exits when etcd does not answer: start it once etcd is up.
                    if name == "kube-apiserver" && !self.etcd_healthy() {
                        continue;
                    }
                    self.pods.remove(name);
                    let process = self.start_pod(name);
                    self.pods.insert(
                        name.to_string(),
                        RunningPod {
                            manifest: m,
                            process,
                            mirrored: false,
                        },
                    );
                }
                (None, None) => {}
            }
        }
    }

    /// Whether the API server's etcd can answer: an external one is taken as up; a stacked one
    /// (the API server's `--etcd-servers` is this node's loopback) once its health answers, also
    /// when its manifest comes later (a joining control plane writes the API server's first).
    fn etcd_healthy(&self) -> bool {
        let manifests = self.root().join("etc/kubernetes/manifests");
        let apiserver = std::fs::read_to_string(manifests.join("kube-apiserver.yaml")).unwrap_or_default();
        let stacked = manifests.join("etcd.yaml").exists()
            || apiserver.contains("--etcd-servers=https://127.0.0.1:2379")
            || apiserver.contains("--etcd-servers=https://[::1]:2379");
        !stacked || crate::static_pod::http_status(2381, "/health") == Some(200)
    }

    fn start_pod(&self, name: &str) -> Process {
        let root = self.root();
        let pod = StaticPod::load(root, name);
        let binary = self.spec.assets.join(name);
        let rewrites = if name == "etcd" {
            crate::static_pod::etcd_flag_renames(&binary)
        } else {
            Rewrites::default()
        };
        let args = pod.command_line(root, &rewrites);
        pod.start(&binary, &args, &self.spec.log_dir)
    }

    /// A client with the credentials of the kubeconfig at node path `kubeconfig`.
    fn client(&self, kubeconfig: &str) -> Result<kube::Client, String> {
        client(&self.runtime, self.root(), kubeconfig)
    }

    fn register_node(&self) -> bool {
        // Until the API server answers (on a control-plane node: until its static Pod runs),
        // registration fails and is tried again on the next pass.
        if !self.root().join("etc/kubernetes/kubelet.conf").exists() {
            return false;
        }
        let Ok(client) = self.client("/etc/kubernetes/kubelet.conf") else {
            return false;
        };
        let name = &self.spec.node_name;
        let node = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
            }},
        });
        match send(
            &self.runtime,
            &client,
            http::Method::POST,
            "/api/v1/nodes",
            Some(node),
        ) {
            Ok(_) => true,
            Err(e) => e.contains("already exists"),
        }
    }

    /// The kubelet's TLS bootstrap with `bootstrap-kubelet.conf`, when due.
    fn tls_bootstrap(&self) -> Result<(), String> {
        let root = self.root();
        let (bootstrap, kubelet_conf) = (
            root.join("etc/kubernetes/bootstrap-kubelet.conf"),
            root.join("etc/kubernetes/kubelet.conf"),
        );
        // A real kubelet cannot start before kubeadm wrote its configuration (systemd restarts it
        // until then): bootstrapping earlier would race the tool's own writes under /var/lib/kubelet.
        let configured = root.join("var/lib/kubelet/config.yaml").exists()
            && root.join("var/lib/kubelet/kubeadm-flags.env").exists();
        if !bootstrap.exists() || kubelet_conf.exists() || !configured {
            return Ok(());
        }
        let name = &self.spec.node_name;
        let pki = root.join("var/lib/kubelet/pki");
        std::fs::create_dir_all(&pki).map_err(|e| e.to_string())?;
        let (key, csr) = (
            pki.join("kubelet-client.key.tmp"),
            pki.join("kubelet-client.csr.tmp"),
        );
        crate::openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key.display().to_string(),
            "-out",
            &csr.display().to_string(),
            "-subj",
            &format!("/O=system:nodes/CN=system:node:{name}"),
        ]);
        use base64::Engine as _;
        let request =
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(&csr).map_err(|e| e.to_string())?);
        let csr_name = format!("node-csr-{name}-{}", std::process::id());
        let client = self.client("/etc/kubernetes/bootstrap-kubelet.conf")?;
        let body = serde_json::json!({
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": csr_name},
            "spec": {
                "request": request,
                "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                "usages": ["digital signature", "client auth"],
            },
        });
        let path = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
        match send(&self.runtime, &client, http::Method::POST, path, Some(body)) {
            Ok(_) => {}
            // A joining control plane's bootstrap kubeconfig names its own API server, which starts
            // only after its etcd joined, knows the bootstrap tokens only once it has read them
            // (401 until then) and their RBAC bindings a moment later (403): a real kubelet keeps
            // trying, and so does this one.
            Err(e)
                if e.contains("(Connect)")
                    || e.contains("onnection refused")
                    || e.contains("code: 401")
                    || e.contains("code: 403") =>
            {
                return Ok(());
            }
            Err(e) => {
                return Err(format!(
                    "kubelet TLS bootstrap: creating CSR {csr_name} with bootstrap-kubelet.conf: {e}"
                ));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let certificate = loop {
            let csr = send(
                &self.runtime,
                &client,
                http::Method::GET,
                &format!("{path}/{csr_name}"),
                None,
            )
            .map_err(|e| format!("kubelet TLS bootstrap: reading CSR {csr_name}: {e}"))?;
            let csr: serde_json::Value = serde_json::from_str(&csr).map_err(|e| e.to_string())?;
            if let Some(cert) = csr["status"]["certificate"].as_str().filter(|c| !c.is_empty()) {
                break base64::engine::general_purpose::STANDARD
                    .decode(cert)
                    .map_err(|e| e.to_string())?;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "kubelet TLS bootstrap: CSR {csr_name} was not approved and signed within 60s: {csr}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let mut pem = certificate;
        pem.extend(std::fs::read(&key).map_err(|e| e.to_string())?);
        let current = pki.join("kubelet-client-current.pem");
        std::fs::write(&current, pem).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(&csr);
        // The kubelet's own kubeconfig: bootstrap-kubelet.conf's cluster, the new certificate.
        let text = std::fs::read_to_string(&bootstrap).map_err(|e| e.to_string())?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
        let cluster = &doc["clusters"][0]["cluster"];
        let conf = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "default-cluster", "cluster": {
                "certificate-authority-data": cluster["certificate-authority-data"].as_str(),
                "server": cluster["server"].as_str(),
            }}],
            "contexts": [{"name": "default-context", "context": {
                "cluster": "default-cluster", "namespace": "default", "user": "default-auth",
            }}],
            "current-context": "default-context",
            "users": [{"name": "default-auth", "user": {
                "client-certificate": "/var/lib/kubelet/pki/kubelet-client-current.pem",
                "client-key": "/var/lib/kubelet/pki/kubelet-client-current.pem",
            }}],
        });
        let yaml = serde_yaml::to_string(&conf).map_err(|e| e.to_string())?;
        std::fs::write(&kubelet_conf, yaml).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// A client with the credentials of the kubeconfig at node path `kubeconfig` under `root`; file
/// references in it are node paths, mapped under `root`.
pub fn client(
    runtime: &tokio::runtime::Runtime,
    root: &Path,
    kubeconfig: &str,
) -> Result<kube::Client, String> {
    let path = root.join(kubeconfig.trim_start_matches('/'));
    let mut kc =
        kube::config::Kubeconfig::read_from(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let node_file = |p: &mut Option<String>| {
        if let Some(file) = p.as_mut() {
            *file = root.join(file.trim_start_matches('/')).display().to_string();
        }
    };
    for c in &mut kc.clusters {
        if let Some(cluster) = c.cluster.as_mut() {
            node_file(&mut cluster.certificate_authority);
        }
    }
    for u in &mut kc.auth_infos {
        if let Some(user) = u.auth_info.as_mut() {
            node_file(&mut user.client_certificate);
            node_file(&mut user.client_key);
        }
    }
    runtime.block_on(async {
        let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        kube::Client::try_from(config).map_err(|e| e.to_string())
    })
}

/// One request; the response body.
pub fn send(
    runtime: &tokio::runtime::Runtime,
    client: &kube::Client,
    method: http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<String, String> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", "application/json")
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(client.request_text(request))
        .map_err(|e| e.to_string())
}
