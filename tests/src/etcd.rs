//! Real etcd for the tests (Debian's `etcd-server`, installed by `.ci/run`): a node root with the
//! PKI and etcd manifest wasmadm generates, etcd started from that manifest (see [`crate::static_pod`]
//! for the rewrites a test host needs), more members joined to it, and `etcdctl` to check it
//! independently of wasmadm.

use crate::static_pod::{Process, StaticPod, etcd_rewrites};
use crate::{fixture, node, openssl, run_phases};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// The reference configuration's advertise address, mapped to 127.0.0.1 by the rewrites.
pub const ADVERTISE: &str = "10.200.0.2";

/// `program` from PATH; a missing binary fails the test with the fix.
pub fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is not installed: these tests need a real etcd. Install Debian's \
                 packages: `apt-get install etcd-server etcd-client` (.ci/run does)"
            )
        })
}

/// A node root with the PKI and the etcd manifest of the reference configuration.
pub fn generated_node() -> tempfile::TempDir {
    let root = node("healthy");
    run_phases(root.path(), &fixture("init-config.yaml"), &["certs", "etcd"]);
    root
}

/// An etcd member started from the generated manifest.
pub struct Etcd {
    pub process: Process,
    /// `--name`.
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    /// `<root>/etc/kubernetes/pki`.
    pub pki: PathBuf,
    /// The node root (shared by the members started with [`Etcd::start_member`]).
    pub root: PathBuf,
    /// The first member owns the temporary node root.
    _dir: Option<tempfile::TempDir>,
}

/// Starts etcd from the generated manifest and waits until the healthcheck client sees it healthy.
pub fn start() -> Etcd {
    let dir = generated_node();
    let root = dir.path().to_path_buf();
    let (process, name, args, ports) = launch(&root, "etcd", &|args| args);
    let data_dir = format!("--data-dir={}", root.join("var/lib/etcd").display());
    assert!(
        args.contains(&data_dir),
        "the data dir is mapped into the root: {args:?}"
    );
    let mut etcd = Etcd {
        process,
        name,
        client_url: format!("https://127.0.0.1:{}", ports.client),
        peer_url: format!("https://127.0.0.1:{}", ports.peer),
        pki: root.join("etc/kubernetes/pki"),
        root,
        _dir: Some(dir),
    };
    etcd.wait_healthy();
    etcd
}

/// Starts the manifest's etcd on free ports, its arguments passed through `adapt` first; logs to
/// `<root>/<log>.log`. Returns the process, its `--name`, its arguments and its ports.
fn launch(
    root: &Path,
    log: &str,
    adapt: &dyn Fn(Vec<String>) -> Vec<String>,
) -> (Process, String, Vec<String>, crate::static_pod::EtcdPorts) {
    let etcd = which("etcd");
    which("etcdctl");
    let mut pod = StaticPod::load(root, "etcd");
    pod.name = log.to_string();
    let (rewrites, ports) = etcd_rewrites(&etcd, ADVERTISE);
    let args = adapt(pod.command_line(root, &rewrites));
    let name = args
        .iter()
        .find_map(|a| a.strip_prefix("--name="))
        .expect("the manifest names the member")
        .to_string();
    let process = pod.start(&etcd, &args, root);
    (process, name, args, ports)
}

impl Etcd {
    /// The CA etcd's certificates chain to.
    pub fn ca(&self) -> PathBuf {
        self.pki.join("etcd/ca.crt")
    }

    /// Waits until `etcdctl endpoint health` with the healthcheck client says healthy.
    pub fn wait_healthy(&mut self) {
        let (url, ca, client) = (self.client_url.clone(), self.ca(), healthcheck_client(&self.pki));
        self.process.wait_until(Duration::from_secs(30), || {
            etcdctl(&url, &ca, &client, &["endpoint", "health"])
                .status
                .success()
        });
    }

    /// Starts another member on this node's PKI (its certificates name 127.0.0.1) with its own
    /// name, ports and data directory, joining the cluster as `initial_cluster` (etcd's
    /// `--initial-cluster`, which must list it under `name`) with `--initial-cluster-state=existing`.
    /// Its peer URL must be `peer_url` (from [`free_peer_url`]): it was added under it first. Not
    /// waited for: a learner does not answer health checks (etcd serves it no linearizable read).
    pub fn start_member(&self, name: &str, peer_url: &str, initial_cluster: &str) -> Etcd {
        let root = &self.root;
        let data_dir = root.join(format!("var/lib/etcd-{name}"));
        let peer = peer_url.to_string();
        let adapt = |args: Vec<String>| -> Vec<String> {
            let mut out: Vec<String> = args
                .into_iter()
                .map(|a| match a.split_once('=') {
                    Some(("--name", _)) => format!("--name={name}"),
                    Some(("--data-dir", _)) => format!("--data-dir={}", data_dir.display()),
                    Some(("--initial-cluster", _)) => format!("--initial-cluster={initial_cluster}"),
                    Some(("--listen-peer-urls", _)) => format!("--listen-peer-urls={peer}"),
                    Some(("--initial-advertise-peer-urls", _)) => {
                        format!("--initial-advertise-peer-urls={peer}")
                    }
                    _ => a,
                })
                .collect();
            out.push("--initial-cluster-state=existing".into());
            out
        };
        let (process, name, _, ports) = launch(root, &format!("etcd-{name}"), &adapt);
        Etcd {
            process,
            name,
            client_url: format!("https://127.0.0.1:{}", ports.client),
            peer_url: peer_url.to_string(),
            pki: self.pki.clone(),
            root: root.clone(),
            _dir: None,
        }
    }
}

/// A peer URL on a free port of 127.0.0.1, for a member to be added before it starts.
pub fn free_peer_url() -> String {
    format!("https://127.0.0.1:{}", crate::static_pod::free_port())
}

/// kubeadm's healthcheck client certificate and key.
pub fn healthcheck_client(pki: &Path) -> (PathBuf, PathBuf) {
    (
        pki.join("etcd/healthcheck-client.crt"),
        pki.join("etcd/healthcheck-client.key"),
    )
}

/// `etcdctl` (API v3) against `url` with these files.
pub fn etcdctl(url: &str, ca: &Path, (cert, key): &(PathBuf, PathBuf), args: &[&str]) -> Output {
    std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={url}"))
        .arg(format!("--cacert={}", ca.display()))
        .arg(format!("--cert={}", cert.display()))
        .arg(format!("--key={}", key.display()))
        .args(["--dial-timeout=3s", "--command-timeout=5s"])
        .args(args)
        .output()
        .expect("run etcdctl")
}

/// A command's stdout and stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A CA and a client certificate from it, made with the openssl CLI (not wasmadm's code).
pub fn foreign_client(dir: &Path, cn: &str) -> (PathBuf, (PathBuf, PathBuf)) {
    let p = |n: &str| dir.join(n).display().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", &p("other-ca.key"), "-out", &p("other-ca.crt")],
        ]
        .concat()
        .into_iter()
        .chain(["-subj", "/CN=etcd-ca", "-days", "1"])
        .collect::<Vec<_>>(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-keyout", &p("client.key"), "-out", &p("client.csr")],
        ]
        .concat()
        .into_iter()
        .chain(["-subj", &format!("/CN={cn}")])
        .collect::<Vec<_>>(),
    );
    std::fs::write(dir.join("ext.cnf"), "extendedKeyUsage=clientAuth\n").expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("client.csr"),
        "-CA",
        &p("other-ca.crt"),
        "-CAkey",
        &p("other-ca.key"),
        "-CAcreateserial",
        "-out",
        &p("client.crt"),
        "-days",
        "1",
        "-extfile",
        &p("ext.cnf"),
    ]);
    (
        dir.join("other-ca.crt"),
        (dir.join("client.crt"), dir.join("client.key")),
    )
}
