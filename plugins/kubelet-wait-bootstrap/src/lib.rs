//! The `kubelet-wait-bootstrap` join phase, as kubeadm v1.36 runs it: wait for the kubelet's
//! healthz (`timeouts.kubeletHealthCheck`), then for the kubelet to finish its TLS bootstrap
//! (`/etc/kubernetes/kubelet.conf` usable: it exists and the client certificate and key it names
//! can be read; `timeouts.tlsBootstrap`), then remove `bootstrap-kubelet.conf`, which holds the
//! bootstrap token. kubeadm removes it when the phase ends, waited or failed; so does this phase.
//!
//! The kubelet itself makes the key, sends the CSR with the bootstrap token and writes
//! `kubelet.conf`: this phase only watches.

use kubeadm_wait::duration;
use kubeadm_wait::wait::Progress;
use kubeadm_wait::{KUBELET_HELP, Simulated, print_block, timeout, wait_kubelet};
use std::time::{Duration, Instant};
use wasmadm_plugin_sdk::types::{PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{Context, Plugin, done, export_plugin, files, print};

const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";
const BOOTSTRAP_KUBELET_CONF: &str = "/etc/kubernetes/bootstrap-kubelet.conf";
/// Where the kubelet keeps the client certificate and key `kubelet.conf` names.
const KUBELET_PKI: &str = "/var/lib/kubelet/pki";
/// kubeadm looks for `kubelet.conf` every second; this phase starts at 50 ms and backs off to a
/// second (a file read through the host costs microseconds), so it sees the end of the bootstrap
/// soon after the kubelet wrote the file.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);

struct KubeletWaitBootstrap;

impl Plugin for KubeletWaitBootstrap {
    fn describe() -> PluginInfo {
        // The kubelet's healthz URL (not expressible in the 0.1 capability request) is the
        // default pipeline's `grants.health`: http://127.0.0.1:10248/healthz.
        let mut info = wasmadm_plugin_sdk::info(
            "kubelet-wait-bootstrap",
            "Wait for the kubelet to bootstrap itself",
        );
        info.needs.files_read = vec![KUBELET_CONF.into(), KUBELET_PKI.into()];
        info.needs.files_write = vec![BOOTSTRAP_KUBELET_CONF.into()];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        let join = ctx.config.join.clone().unwrap_or_default();
        let kubelet_limit = timeout(&join.timeouts.kubelet_health_check, "kubeletHealthCheck")?;
        let bootstrap_limit = match &join.timeouts.tls_bootstrap {
            Some(_) => timeout(&join.timeouts.tls_bootstrap, "tlsBootstrap")?,
            None => Duration::from_secs(300),
        };
        if context.dry_run {
            print("[kubelet-wait] Would wait for the kubelet to be bootstrapped");
            return Ok(done());
        }
        let waited = wait(&ctx, kubelet_limit, bootstrap_limit);
        // As kubeadm's deferred removal: the token leaves the node whether or not the kubelet made it.
        let removed = match files::remove(BOOTSTRAP_KUBELET_CONF, false) {
            Err(e) if e.code == files::ErrorCode::NotFound => Ok(()),
            other => other,
        };
        waited?;
        removed.map_err(|e| {
            PhaseError::Failed(format!(
                "the kubelet bootstrapped, but {BOOTSTRAP_KUBELET_CONF} (which holds the bootstrap \
                 token) could not be removed: {}; remove it by hand",
                e.message
            ))
        })?;
        Ok(done())
    }
}

fn wait(ctx: &Context, kubelet_limit: Duration, bootstrap_limit: Duration) -> Result<(), PhaseError> {
    let simulated = match kubeadm_wait::kubelet_url(ctx.config.components.get("KubeletConfiguration")) {
        Some(url) => wait_kubelet(&url, kubelet_limit)?,
        None => {
            print("[kubelet-check] Skipping the kubelet health check because the healthz port is set to 0");
            Simulated(false)
        }
    };
    print("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap");
    if simulated.0 {
        // The in-memory cluster's node has no kubelet: nothing will ever write kubelet.conf.
        print(&format!(
            "[kubelet-start] Not waited for: simulated node of the in-memory cluster (no kubelet runs, \
             {KUBELET_CONF} is not written)"
        ));
        return Ok(());
    }
    let start = Instant::now();
    let deadline = start + bootstrap_limit;
    let mut progress = Progress::new(start);
    let mut pause = FIRST_PAUSE;
    loop {
        let last = match usable_kubeconfig() {
            Ok(()) => {
                wasmadm_plugin_sdk::debug(&format!(
                    "[kubelet-start] the kubelet wrote {KUBELET_CONF} after {}",
                    duration::go(start.elapsed())
                ));
                return Ok(());
            }
            Err(why) => why,
        };
        progress.tick(|t| format!("[kubelet-start] Still waiting for the TLS Bootstrap after {t}: {last}"));
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            print_block(KUBELET_HELP);
            return Err(PhaseError::Failed(format!(
                "failed while waiting for TLS bootstrap: context deadline exceeded ({last})"
            )));
        }
        std::thread::sleep(left.min(pause));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// kubeadm's `ClientSetFromFile` test: `kubelet.conf` parses as a kubeconfig and the client
/// certificate and key it names (or embeds) are there.
fn usable_kubeconfig() -> Result<(), String> {
    let text = match files::read(KUBELET_CONF) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| format!("{KUBELET_CONF} is not text"))?,
        Err(e) if e.code == files::ErrorCode::NotFound => {
            return Err(format!("{KUBELET_CONF} does not exist yet"));
        }
        Err(e) if e.code == files::ErrorCode::Denied => return Err(e.message),
        Err(e) => return Err(format!("{KUBELET_CONF}: {}", e.message)),
    };
    if !text.contains("server:") {
        return Err(format!("{KUBELET_CONF} names no API server"));
    }
    for key in ["client-certificate", "client-key"] {
        let Some(path) = field(&text, key) else {
            if field(&text, &format!("{key}-data")).is_some() {
                continue;
            }
            return Err(format!("{KUBELET_CONF} has no {key}"));
        };
        match files::read(&path) {
            Ok(bytes) if !bytes.is_empty() => {}
            Ok(_) => return Err(format!("{path} ({key} of {KUBELET_CONF}) is empty")),
            Err(e) => return Err(format!("{path} ({key} of {KUBELET_CONF}): {}", e.message)),
        }
    }
    Ok(())
}

/// The value of `key: value` on a line of a kubeconfig (the files the kubelet writes are flat
/// enough for this: one user, paths or data on their own lines).
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.trim().split_once(':')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

export_plugin!(KubeletWaitBootstrap);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_client_files_of_a_kubelet_kubeconfig() {
        let text = "users:\n- name: system:node:n2\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    client-key: \"/var/lib/kubelet/pki/kubelet-client-current.pem\"\n";
        assert_eq!(
            field(text, "client-certificate").as_deref(),
            Some("/var/lib/kubelet/pki/kubelet-client-current.pem")
        );
        assert_eq!(
            field(text, "client-key").as_deref(),
            Some("/var/lib/kubelet/pki/kubelet-client-current.pem")
        );
        assert_eq!(field(text, "client-key-data"), None);
    }
}
