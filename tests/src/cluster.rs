//! Nodes of real clusters for the end-to-end tests: a node directory, its own network namespace
//! ([`crate::netns`]), and the test's kubelet ([`crate::kubelet`]) running the real control-plane
//! binaries of `KUBEBUILDER_ASSETS`. Real kubeadm and the wasmadm command line run on a node as
//! processes inside its namespace; a component that dies fails the waiting test at once, naming
//! the component and the last lines of its log.

use crate::kubelet::{Kubelet, KubeletSpec};
use crate::netns::{NetNs, Network};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

include!("binaries.rs");

/// `KUBEBUILDER_ASSETS`, or a panic that says how to set it.
pub fn assets_dir() -> PathBuf {
    std::env::var_os("KUBEBUILDER_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "KUBEBUILDER_ASSETS is not set: point it at a directory with {} of the Kubernetes \
                 version wasmadm targets (controller-runtime envtest's layout) and rebuild the tests",
                BINARIES.join(", ")
            )
        })
}

/// `$KUBEBUILDER_ASSETS/<binary>`, or a panic that says what is missing.
pub fn asset(binary: &str) -> PathBuf {
    let dir = assets_dir();
    let path = dir.join(binary);
    assert!(
        path.is_file(),
        "KUBEBUILDER_ASSETS={} has no `{binary}`",
        dir.display()
    );
    path
}

/// `KUBEBUILDER_ASSETS` with every binary of [`BINARIES`], on a host where nodes can have network
/// namespaces, or a panic that says what is missing.
pub fn assets() -> PathBuf {
    for b in BINARIES {
        asset(b);
    }
    if let Some(why) = crate::netns::unavailable() {
        panic!("the end-to-end tests give each node its own network namespace, but {why}");
    }
    assets_dir()
}

/// `v1.x.y` of the API server binary: configurations ask for exactly that version.
pub fn kubernetes_version(assets: &Path) -> String {
    let out = Command::new(assets.join("kube-apiserver"))
        .arg("--version")
        .output()
        .expect("kube-apiserver --version");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.starts_with('v'))
        .unwrap_or_else(|| panic!("unexpected `kube-apiserver --version` output: {text}"))
        .to_string()
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Ran {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Wall time.
    pub took: Duration,
    /// CPU time (user + system) of the process (`ip netns exec` execs the command itself).
    pub cpu: Duration,
}

impl Ran {
    /// Panics with the output unless the command succeeded.
    pub fn expect_ok(self, what: &str) -> Self {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// One node: directory, namespace, kubelet.
pub struct Node {
    pub name: String,
    pub root: tempfile::TempDir,
    pub logs: tempfile::TempDir,
    pub assets: PathBuf,
    kubelet: Option<Kubelet>,
    // Dropped last: its processes are killed with it.
    pub ns: NetNs,
}

impl Node {
    /// An empty node directory named `name` at `address` on `network`.
    pub fn new(network: &Network, name: &str, address: &str) -> Self {
        Self {
            name: name.to_string(),
            root: tempfile::tempdir().expect("node directory"),
            logs: tempfile::tempdir().expect("log directory"),
            assets: assets(),
            kubelet: None,
            ns: network.namespace(address),
        }
    }

    pub fn path(&self, node_path: &str) -> PathBuf {
        self.root.path().join(node_path.trim_start_matches('/'))
    }

    /// Starts the test's kubelet for this node.
    pub fn start_kubelet(&mut self) {
        self.kubelet = Some(Kubelet::start(KubeletSpec {
            root: self.root.path().to_path_buf(),
            assets: self.assets.clone(),
            node_name: self.name.clone(),
            netns: self.ns.name.clone(),
            log_dir: self.logs.path().to_path_buf(),
        }));
    }

    /// Panics if a component of this node died.
    pub fn check(&self) {
        if let Some(failure) = self.kubelet.as_ref().and_then(|k| k.failure()) {
            panic!("node {}: {failure}", self.name);
        }
    }

    /// True once the kubelet registered the Node.
    pub fn registered(&self) -> bool {
        self.kubelet.as_ref().is_some_and(|k| k.registered())
    }

    /// `program` inside this node's namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.ns.command(program)
    }

    /// Real kubeadm on this node (`--rootfs` is the node directory).
    pub fn kubeadm(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(self.assets.join("kubeadm"));
        cmd.args(args).arg("--rootfs").arg(self.root.path());
        cmd
    }

    /// `tool` on this node with `args`: real kubeadm (`"kubeadm"`), or wasmadm (`binary`) with
    /// `wasmadm_extra` after them (e.g. its `--pipeline`).
    pub fn tool(&self, tool: &str, binary: &str, args: &[&str], wasmadm_extra: &[&str]) -> Command {
        if tool == "kubeadm" {
            return self.kubeadm(args);
        }
        let mut all = args.to_vec();
        all.extend_from_slice(wasmadm_extra);
        self.wasmadm(binary, &all)
    }

    /// Runs `tool` on this node with `args` as [`Node::tool`] does (5 minutes at most); panics with
    /// its output unless it succeeded.
    pub fn run_ok(&self, tool: &str, binary: &str, args: &[&str]) -> Ran {
        let what = format!("{tool} {}", args.join(" "));
        let mut cmd = self.tool(tool, binary, args, &[]);
        self.run(&what, &mut cmd, Duration::from_secs(300))
            .expect_ok(&what)
    }

    /// The wasmadm command line `binary` on this node (`--root` is the node directory; the API
    /// server of `/etc/kubernetes/admin.conf`).
    pub fn wasmadm(&self, binary: &str, args: &[&str]) -> Command {
        let mut cmd = self.command(binary);
        cmd.arg("--root")
            .arg(self.root.path())
            .args(["--cluster", "kubeconfig"])
            .args(args)
            .env(
                "WASMADM_CACHE_DIR",
                std::env::temp_dir().join("wasmadm-test-cache"),
            );
        cmd
    }

    /// Runs `cmd` to its end (at most `timeout`), failing at once, with the component's name and
    /// log, when a component of this node dies meanwhile.
    // The child is reaped by `reap` (wait4, for its CPU time) or waited for after `kill`.
    #[allow(clippy::zombie_processes)]
    pub fn run(&self, what: &str, cmd: &mut Command, timeout: Duration) -> Ran {
        let out = tempfile::tempdir().expect("output directory");
        let (stdout, stderr) = (out.path().join("stdout"), out.path().join("stderr"));
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        loop {
            if let Some((status, cpu)) = reap(&child) {
                return Ran {
                    status,
                    stdout: read(&stdout),
                    stderr: read(&stderr),
                    took: started.elapsed(),
                    cpu,
                };
            }
            let failure = self.kubelet.as_ref().and_then(|k| k.failure());
            if failure.is_some() || started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what} on node {}: {}\nits stdout so far:\n{}\nits stderr so far:\n{}",
                    self.name,
                    failure.unwrap_or_else(|| format!("did not finish within {timeout:?}")),
                    read(&stdout),
                    read(&stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kubectl` with `admin.conf` (or `--kubeconfig` in `args`); its stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let mut cmd = self.command(self.assets.join("kubectl"));
        if !args.iter().any(|a| a.starts_with("--kubeconfig")) {
            cmd.arg("--kubeconfig")
                .arg(self.path("/etc/kubernetes/admin.conf"));
        }
        let what = format!("kubectl {}", args.join(" "));
        self.run(&what, cmd.args(args), Duration::from_secs(60))
            .expect_ok(&what)
            .stdout
    }

    /// `kubectl get ... -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl JSON")
    }

    /// `etcdctl ARGS` against this node's etcd, with its healthcheck client certificate; how it
    /// ended.
    fn etcdctl(&self, args: &[&str]) -> Ran {
        let pki = |f: &str| {
            self.path(&format!("/etc/kubernetes/pki/etcd/{f}"))
                .display()
                .to_string()
        };
        let mut cmd = self.command(self.assets.join("etcdctl"));
        cmd.env("ETCDCTL_API", "3").args([
            "--endpoints",
            &format!("https://{}:2379", self.ns.address),
            "--cacert",
            &pki("ca.crt"),
            "--cert",
            &pki("healthcheck-client.crt"),
            "--key",
            &pki("healthcheck-client.key"),
        ]);
        self.run(
            &format!("etcdctl {}", args.join(" ")),
            cmd.args(args),
            Duration::from_secs(30),
        )
    }

    /// etcd's members as `etcdctl member list -w json` gives them, asked of this node's etcd.
    pub fn etcd_members(&self) -> Vec<serde_json::Value> {
        let out = self
            .etcdctl(&["member", "list", "-w", "json"])
            .expect_ok("etcdctl member list");
        let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("etcdctl JSON");
        list["members"].as_array().cloned().unwrap_or_default()
    }

    /// Takes the control plane `node` joined to this node's cluster out again, as `kubeadm reset`
    /// does on it: its etcd member removed (while it still runs, so that quorum holds), the node's
    /// processes stopped, its Node and mirror Pods deleted.
    pub fn remove_control_plane(&self, node: Node) {
        let id = self
            .etcd_members()
            .iter()
            .find(|m| m["name"] == node.name.as_str())
            .and_then(|m| m["ID"].as_u64())
            .unwrap_or_else(|| panic!("no etcd member {}", node.name));
        // etcd refuses to remove a member that joined less than 5 s ago ("unhealthy cluster").
        let id = format!("{id:x}");
        self.wait_for("etcd lets the member go", Duration::from_secs(60), || {
            let ran = self.etcdctl(&["member", "remove", &id]);
            (ran.status.success() || !ran.stderr.contains("unhealthy cluster"))
                .then(|| ran.expect_ok("etcdctl member remove"))
        });
        let name = node.name.clone();
        drop(node);
        let selector = format!("spec.nodeName={name}");
        self.kubectl(&[
            "delete",
            "pods",
            "-n",
            "kube-system",
            "--field-selector",
            &selector,
            "--force",
            "--grace-period=0",
        ]);
        self.kubectl(&["delete", "node", &name]);
    }

    /// Polls `check` every 200 ms until it gives a value, for at most `timeout`, failing at once
    /// when a component dies.
    pub fn wait_for<T>(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            self.check();
            if let Some(v) = check() {
                return v;
            }
            assert!(
                started.elapsed() < timeout,
                "node {}: {what}: not after {timeout:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The child's exit status and CPU time once it has exited (`wait4`, which reports the resources
/// of that one process, unlike `RUSAGE_CHILDREN`).
fn reap(child: &std::process::Child) -> Option<(std::process::ExitStatus, Duration)> {
    use std::os::unix::process::ExitStatusExt as _;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own child's, and both pointers are valid for the call.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, libc::WNOHANG, &mut usage) };
    if pid <= 0 {
        return None;
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Some((
        std::process::ExitStatus::from_raw(status),
        time(usage.ru_utime) + time(usage.ru_stime),
    ))
}

/// `--discovery-token-ca-cert-hash sha256:...` from a join command `init` printed.
pub fn ca_pin(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .skip_while(|w| *w != "--discovery-token-ca-cert-hash")
        .nth(1)
        .unwrap_or_else(|| panic!("no CA pin in the join command:\n{stdout}"))
        .to_string()
}

/// `join ENDPOINT` with the bootstrap token `token`, the CA pin `pin`, node name `name` and
/// preflight skipped (it is about the test machine); for a control plane (`Some((key, address))`)
/// also `--control-plane --certificate-key KEY --apiserver-advertise-address ADDRESS`. The
/// arguments both tools get for a join in the tests and benchmarks.
pub fn join_args(
    endpoint: &str,
    token: &str,
    pin: &str,
    name: &str,
    control_plane: Option<(&str, &str)>,
) -> Vec<String> {
    let mut args = vec![
        "join",
        endpoint,
        "--token",
        token,
        "--discovery-token-ca-cert-hash",
        pin,
        "--node-name",
        name,
        "--skip-phases",
        "preflight",
    ];
    if let Some((key, address)) = control_plane {
        args.extend_from_slice(&[
            "--control-plane",
            "--certificate-key",
            key,
            "--apiserver-advertise-address",
            address,
        ]);
    }
    args.into_iter().map(str::to_string).collect()
}
