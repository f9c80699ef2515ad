//! kubeadm's waiter, for plugins: polling health endpoints through the `health` capability
//! with kubeadm's console lines (`[kubelet-check] ...`), its retry interval, progress lines on
//! long waits and Go's duration format. Shared by `wait-control-plane` (init) and
//! `kubelet-wait-bootstrap` (join).

pub mod duration;
pub mod wait;

use std::time::{Duration, Instant};
use wait::{Failure, Probe, Progress, pause, probe, simulated_note};
use wasmadm_plugin_sdk::print;
use wasmadm_plugin_sdk::types::PhaseError;

/// kubeadm's help after a kubelet that never became healthy (`kubeletFailMsg`).
pub const KUBELET_HELP: &str = "
Unfortunately, an error has occurred, likely caused by:
\t- The kubelet is not running
\t- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups disabled)

If you are on a systemd-powered system, you can try to troubleshoot the error with the following commands:
\t- 'systemctl status kubelet'
\t- 'journalctl -xeu kubelet'
";

/// Prints a multi-line text line by line (each a console line).
pub fn print_block(text: &str) {
    for line in text.lines() {
        print(line);
    }
}

/// A `timeouts` field as a duration (kubeadm's 4m0s when unset), or an invalid-config error
/// naming it.
pub fn timeout(value: &Option<String>, field: &str) -> Result<Duration, PhaseError> {
    let text = value.as_deref().unwrap_or("4m0s");
    duration::parse(text).ok_or_else(|| {
        PhaseError::InvalidConfig(format!(
            "timeouts.{field}: {text:?} is not a duration; use Go syntax such as 4m0s or 30s"
        ))
    })
}

/// Whether an answer came from the in-memory cluster's simulated node (no kubelet runs there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Simulated(pub bool);

/// Waits for the kubelet's healthz (kubeadm's `WaitForKubelet`).
pub fn wait_kubelet(url: &str, limit: Duration) -> Result<Simulated, PhaseError> {
    print(&format!(
        "[kubelet-check] Waiting for a healthy kubelet at {url}. This can take up to {}",
        duration::go(limit)
    ));
    let start = Instant::now();
    let deadline = start + limit;
    let mut progress = Progress::new(start);
    let describe = |f: Failure| {
        let cause = match f {
            Failure::Status(code) => format!("status code: {code}"),
            Failure::Error(e) => format!("error: {e}"),
        };
        format!("The HTTP call equal to 'curl -sSL {url}' returned {cause}")
    };
    loop {
        let last = match probe(url, deadline, describe)? {
            Probe::Healthy { simulated } => {
                print(&format!(
                    "[kubelet-check] The kubelet is healthy after {}{}",
                    duration::go(start.elapsed()),
                    simulated_note(simulated)
                ));
                return Ok(Simulated(simulated));
            }
            Probe::Unhealthy(message) => message,
        };
        progress.tick(|t| format!("[kubelet-check] Still waiting for the kubelet after {t}: {last}"));
        if !pause(deadline) {
            print(&format!(
                "[kubelet-check] The kubelet is not healthy after {}",
                duration::go(start.elapsed())
            ));
            print_block(KUBELET_HELP);
            return Err(PhaseError::Failed(format!(
                "failed while waiting for the kubelet to start: {last}"
            )));
        }
    }
}

/// The kubelet's healthz URL from a KubeletConfiguration (`healthzBindAddress:healthzPort`,
/// kubeadm's defaults when unset), or `None` when `healthzPort` is 0 (kubeadm then skips the check).
pub fn kubelet_url(config: Option<&serde_json::Value>) -> Option<String> {
    let field = |name: &str| config.and_then(|c| c.get(name));
    let address = field("healthzBindAddress")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("127.0.0.1");
    let port = field("healthzPort")
        .and_then(|v| v.as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(10248);
    let host = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    };
    (port != 0).then(|| format!("http://{host}:{port}/healthz"))
}
