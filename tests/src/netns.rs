//! Test hosts on one machine: each node in its own network namespace, attached to a bridge that has
//! no address, so the nodes of one [`Network`] reach each other and nothing else (not the machine,
//! not any other network). Needs root (`ip netns`), as CI has.
//!
//! Every name is unique to the test process, and everything is removed on drop, processes in the
//! namespaces included, whether the test passed or panicked.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Runs `ip ARGS`; panics with its output when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (Debian package iproute2): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why network namespaces cannot be made here, if they cannot (not root, no `ip`).
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network namespaces need root (`ip netns add`)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("`ip` is missing: install Debian's iproute2".into()),
    }
}

/// A layer-2 segment: a bridge in the machine's namespace, without an address.
pub struct Network {
    bridge: String,
    id: String,
    nodes: AtomicUsize,
}

impl Network {
    pub fn new() -> Self {
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let bridge = format!("wab{id}");
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["link", "set", &bridge, "up"]);
        Self {
            bridge,
            id,
            nodes: AtomicUsize::new(0),
        }
    }

    /// A new namespace on this network with `address` (prefix /24) on its `eth0`, a default
    /// route through it, and its own loopback.
    pub fn namespace(&self, address: &str) -> NetNs {
        let n = self.nodes.fetch_add(1, Ordering::SeqCst);
        let name = format!("wasmadm-e2e-{}-{n}", self.id);
        let (outer, inner) = (format!("wa{}h{n}", self.id), format!("wa{}n{n}", self.id));
        ip(&["netns", "add", &name]);
        let ns = NetNs {
            name: name.clone(),
            address: address.to_string(),
        };
        ip(&["link", "add", &outer, "type", "veth", "peer", "name", &inner]);
        ip(&["link", "set", &outer, "master", &self.bridge]);
        ip(&["link", "set", &outer, "up"]);
        ip(&["link", "set", &inner, "netns", &name]);
        ip(&["-n", &name, "link", "set", &inner, "name", "eth0"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &name, "link", "set", "eth0", "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        // kubeadm and wasmadm look for the default route's interface; it leads nowhere else.
        ip(&["-n", &name, "route", "add", "default", "dev", "eth0"]);
        ns
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
    }
}

/// Moves the calling thread into the namespace `name`: its sockets, and the processes it starts,
/// live there from now on (a network namespace is per thread).
pub fn enter(name: &str) {
    let path = Path::new("/run/netns").join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    use std::os::fd::AsRawFd;
    // SAFETY: a valid namespace file descriptor, and CLONE_NEWNET is what it refers to.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {name}: {}", std::io::Error::last_os_error());
}

/// One node's network namespace.
pub struct NetNs {
    pub name: String,
    /// The node's address on its network.
    pub address: String,
}

impl NetNs {
    /// `program` to be run inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Moves the calling thread into the namespace (see [`enter`]).
    pub fn enter(&self) {
        enter(&self.name);
    }

    /// Kills every process still running in the namespace.
    pub fn kill_all(&self) {
        let Ok(out) = Command::new("ip").args(["netns", "pids", &self.name]).output() else {
            return;
        };
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.kill_all();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}
