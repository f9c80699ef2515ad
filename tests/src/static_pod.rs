//! Static pods from the generated manifests, started as plain processes: the tests play the kubelet.
//!
//! A manifest's command line is kept as written, with three documented rewrites so it can run in a
//! test: paths under a `hostPath` volume are mapped into the node root, the node's addresses and
//! ports are mapped to loopback and free ports, and flags are renamed where the locally installed
//! binary is older than the one the manifest targets (see [`Rewrites::rename`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A static pod manifest (`/etc/kubernetes/manifests/<name>.yaml` under a node root).
pub struct StaticPod {
    pub name: String,
    pub command: Vec<String>,
    /// `mountPath` -> `hostPath`.
    pub mounts: Vec<(String, String)>,
}

impl StaticPod {
    pub fn load(root: &Path, name: &str) -> Self {
        let path = root.join(format!("etc/kubernetes/manifests/{name}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let pod: serde_yaml::Value = serde_yaml::from_str(&text).expect("manifest YAML");
        let spec = &pod["spec"];
        let container = &spec["containers"][0];
        let strings = |v: &serde_yaml::Value| -> Vec<String> {
            v.as_sequence()
                .map(|s| s.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        let mut host_paths = BTreeMap::new();
        for v in spec["volumes"].as_sequence().into_iter().flatten() {
            if let (Some(n), Some(p)) = (v["name"].as_str(), v["hostPath"]["path"].as_str()) {
                host_paths.insert(n.to_string(), p.to_string());
            }
        }
        let mut mounts: Vec<(String, String)> = container["volumeMounts"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let host = host_paths.get(m["name"].as_str()?)?;
                Some((m["mountPath"].as_str()?.to_string(), host.clone()))
            })
            .collect();
        // The longest mount wins, as in a container's mount table.
        mounts.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
        Self {
            name: name.to_string(),
            command: strings(&container["command"]),
            mounts,
        }
    }

    /// The command line with `rewrites` applied: program first.
    pub fn command_line(&self, root: &Path, rewrites: &Rewrites) -> Vec<String> {
        let mut out = Vec::new();
        for (i, arg) in self.command.iter().enumerate() {
            if i == 0 {
                out.push(arg.clone());
                continue;
            }
            let Some((flag, value)) = arg.split_once('=') else {
                out.push(arg.clone());
                continue;
            };
            let flag = rewrites
                .rename
                .iter()
                .find(|(from, _)| from == flag)
                .map_or(flag.to_string(), |(_, to)| to.clone());
            let mut items: Vec<String> = Vec::new();
            for item in value.split(',') {
                let item = self.map_path(root, &rewrites.address(item));
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            let arg = format!("{flag}={}", items.join(","));
            let arg = rewrites
                .replace_args
                .iter()
                .find(|(from, _)| *from == arg)
                .map_or(arg, |(_, to)| to.clone());
            out.push(arg);
        }
        out
    }

    fn map_path(&self, root: &Path, value: &str) -> String {
        for (mount, host) in &self.mounts {
            if let Some(rest) = value.strip_prefix(mount.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                let host = root.join(host.trim_start_matches('/'));
                return format!("{}{rest}", host.display());
            }
        }
        value.to_string()
    }

    /// Starts the command (`program` replaced by `binary`), its output going to
    /// `<log_dir>/<name>.log`.
    pub fn start(&self, binary: &Path, args: &[String], log_dir: &Path) -> Process {
        let log = log_dir.join(format!("{}.log", self.name));
        let file = std::fs::File::create(&log).expect("log file");
        let child = std::process::Command::new(binary)
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        Process {
            name: self.name.clone(),
            child,
            log,
        }
    }
}

/// How a manifest's command line is adapted to a test host.
#[derive(Default)]
pub struct Rewrites {
    /// `from` -> `to` in every address (`10.200.0.2` -> `127.0.0.1`, `:2379` -> `:41234`).
    pub addresses: Vec<(String, String)>,
    /// Flag renames for an older binary than the manifest targets.
    pub rename: Vec<(String, String)>,
    /// Whole-argument replacements (after the other rewrites).
    pub replace_args: Vec<(String, String)>,
}

impl Rewrites {
    fn address(&self, value: &str) -> String {
        self.addresses
            .iter()
            .fold(value.to_string(), |v, (from, to)| v.replace(from.as_str(), to))
    }
}

/// A running static pod; killed when dropped.
pub struct Process {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Process {
    /// The process's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log when the process has exited.
    /// The last `n` lines of the process's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `Some(description)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown state ({e})")),
        }
    }

    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}:\n{}", self.name, self.log_text());
        }
    }

    /// Polls `ready` every 200 ms until it returns true; panics with the log after `timeout`.
    pub fn wait_until(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        loop {
            self.assert_running();
            if ready() {
                return;
            }
            if start.elapsed() > timeout {
                panic!("{} not ready after {timeout:?}:\n{}", self.name, self.log_text());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The ports an etcd started by a test listens on.
pub struct EtcdPorts {
    pub client: u16,
    pub peer: u16,
    pub metrics: u16,
}

/// Rewrites for kubeadm's etcd manifest: `advertise` and kubeadm's ports mapped to loopback and
/// free ports, and, for an etcd older than 3.6 (Debian ships 3.4), the two flags 3.6 renamed given
/// their old names. Apply the same rewrites to the API server's `--etcd-servers`.
pub fn etcd_rewrites(etcd: &Path, advertise: &str) -> (Rewrites, EtcdPorts) {
    let ports = EtcdPorts {
        client: free_port(),
        peer: free_port(),
        metrics: free_port(),
    };
    let rewrites = Rewrites {
        addresses: vec![
            (advertise.into(), "127.0.0.1".into()),
            (":2379".into(), format!(":{}", ports.client)),
            (":2380".into(), format!(":{}", ports.peer)),
            (":2381".into(), format!(":{}", ports.metrics)),
        ],
        ..etcd_flag_renames(etcd)
    };
    (rewrites, ports)
}

/// Only the flag renames the installed etcd needs (see [`etcd_rewrites`]): for a node in its own
/// network namespace, whose addresses and ports are its own.
pub fn etcd_flag_renames(etcd: &Path) -> Rewrites {
    let mut rewrites = Rewrites::default();
    if etcd_version(etcd) < (3, 6) {
        rewrites.rename.push((
            "--watch-progress-notify-interval".into(),
            "--experimental-watch-progress-notify-interval".into(),
        ));
        rewrites.replace_args.push((
            "--feature-gates=InitialCorruptCheck=true".into(),
            "--experimental-initial-corrupt-check=true".into(),
        ));
    }
    rewrites
}

/// `(major, minor)` of an etcd binary.
pub fn etcd_version(etcd: &Path) -> (u32, u32) {
    let out = std::process::Command::new(etcd)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{} --version: {e}", etcd.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version: "))
        .unwrap_or_else(|| panic!("unexpected `etcd --version` output: {text}"));
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// A plain-HTTP GET on 127.0.0.1 (etcd's metrics port): the status code, or `None` when nothing
/// answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}
