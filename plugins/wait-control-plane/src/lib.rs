//! The `wait-control-plane` phase: waits for the kubelet's healthz (on `init`; a joining control
//! plane's kubelet was waited for by kubelet-wait-bootstrap), then for kube-apiserver,
//! kube-controller-manager and kube-scheduler to answer their health endpoints (kubeadm 1.33+
//! with `WaitForAllControlPlaneComponents`), printing kubeadm's `[kubelet-check]` and
//! `[control-plane-check]` lines. It talks to the endpoints only through the `health` capability,
//! which allows exactly the URLs the pipeline grants.
//!
//! With `--dry-run` it prints what it would wait for and does not wait (kubeadm's dry-run
//! waiter). With the in-memory cluster there is no kubelet: the host answers for the simulated
//! node, and every "is healthy" line says so.

mod endpoints;

use kubeadm_wait::wait::{Failure, Probe, Progress, pause, probe, simulated_note};
use kubeadm_wait::{duration, print_block, timeout, wait_kubelet};
use static_pod::MANIFESTS_DIR;
use std::time::{Duration, Instant};
use wasmadm_plugin_sdk::types::{Command, PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{Context, Plugin, done, export_plugin, print};

/// kubeadm's help after a control-plane component that never became healthy
/// (`controlPlaneFailTempl`); `{socket}` is the CRI socket.
const CONTROL_PLANE_HELP: &str = "
A control plane component may have crashed or exited when started by the container runtime.
To troubleshoot, list all containers using your preferred container runtimes CLI.
Here is one example how you may list all running Kubernetes containers by using crictl:
\t- 'crictl --runtime-endpoint {socket} ps -a | grep kube | grep -v pause'
\tOnce you have found the failing container, you can inspect its logs with:
\t- 'crictl --runtime-endpoint {socket} logs CONTAINERID'
";

/// Waits for every component at once (kubeadm's `WaitForControlPlaneComponents`, which checks
/// them in parallel: here in turns, each measured from the common start). On timeout prints
/// kubeadm's help with the CRI socket and fails with every component's last error.
fn wait_components(
    components: &[endpoints::Component],
    limit: Duration,
    cri_socket: &str,
) -> Result<(), PhaseError> {
    print(&format!(
        "[control-plane-check] Waiting for healthy control plane components. This can take up to {}",
        duration::go(limit)
    ));
    for c in components {
        print(&format!("[control-plane-check] Checking {} at {}", c.name, c.url));
    }
    let start = Instant::now();
    let deadline = start + limit;
    let mut progress = Progress::new(start);
    let mut pending: Vec<&endpoints::Component> = components.iter().collect();
    loop {
        let mut still = Vec::new();
        for c in pending {
            let describe = |f: Failure| match f {
                Failure::Status(code) => format!("{} check failed at {} with status: {code}", c.name, c.url),
                Failure::Error(e) => format!("{} check failed at {}: {e}", c.name, c.url),
            };
            match probe(&c.url, deadline, describe)? {
                Probe::Healthy { simulated } => print(&format!(
                    "[control-plane-check] {} is healthy after {}{}",
                    c.name,
                    duration::go(start.elapsed()),
                    simulated_note(simulated)
                )),
                Probe::Unhealthy(message) => still.push((c, message)),
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = still.iter().map(|(c, _)| c.name).collect();
        progress.tick(|t| {
            format!(
                "[control-plane-check] Still waiting for {} after {t}",
                names.join(", ")
            )
        });
        if !pause(deadline) {
            for (c, _) in &still {
                print(&format!(
                    "[control-plane-check] {} is not healthy after {}",
                    c.name,
                    duration::go(start.elapsed())
                ));
            }
            print_block(&CONTROL_PLANE_HELP.replace("{socket}", cri_socket));
            let errors: Vec<String> = still.into_iter().map(|(_, m)| m).collect();
            let joined = wasmadm_plugin_sdk::aggregate(errors).unwrap_or_default();
            return Err(PhaseError::Failed(format!(
                "failed while waiting for the control plane to start: {joined}"
            )));
        }
        pending = still.into_iter().map(|(c, _)| c).collect();
    }
}

struct WaitControlPlane;

impl Plugin for WaitControlPlane {
    fn describe() -> PluginInfo {
        // kubeadm's summary. The health URLs it checks (not expressible in the 0.1 capability
        // request) are those of the default pipeline's `grants.health`: the kubelet's healthz
        // (KubeletConfiguration healthzBindAddress:healthzPort), kube-apiserver
        // https://{advertiseAddress}:{bindPort}/livez, kube-controller-manager
        // https://127.0.0.1:10257/healthz, kube-scheduler https://127.0.0.1:10259/livez (addresses
        // and ports from the manifests' flags).
        let mut info = wasmadm_plugin_sdk::info("wait-control-plane", "Wait for the control plane to start");
        // The manifests give the components' addresses and ports; the CA verifies the API
        // server's certificate (the host reads it for the health grant, within the phase's grants).
        info.needs.files_read = vec![MANIFESTS_DIR.into(), "/etc/kubernetes/pki/ca.crt".into()];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        // On a control-plane join: the joining node's endpoint and the join's timeouts.
        let init = match (&ctx.config.init, &ctx.config.join) {
            (Some(init), _) => init.clone(),
            (None, Some(join)) => wasmadm_plugin_sdk::config::InitConfiguration {
                local_api_endpoint: ctx.config.local_api_endpoint(),
                node_registration: join.node_registration.clone(),
                timeouts: join.timeouts.clone(),
                ..Default::default()
            },
            (None, None) => Default::default(),
        };
        let kubelet_limit = timeout(&init.timeouts.kubelet_health_check, "kubeletHealthCheck")?;
        let components_limit = timeout(
            &init.timeouts.control_plane_component_health_check,
            "controlPlaneComponentHealthCheck",
        )?;
        // kubeadm's join waits for the components only: kubelet-wait-bootstrap already waited
        // for the kubelet.
        let joining = ctx.command() == Command::Join;
        let kubelet =
            kubeadm_wait::kubelet_url(ctx.config.components.get("KubeletConfiguration")).filter(|_| !joining);
        if !joining {
            print(&format!(
                "[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory {MANIFESTS_DIR:?}"
            ));
        }
        if context.dry_run {
            // kubeadm's dry-run waiter: say what would be waited for, wait for nothing.
            if let Some(url) = &kubelet {
                print(&format!(
                    "[dryrun] Would make sure the kubelet returns 'ok' at {url}"
                ));
            }
            for c in endpoints::control_plane(&init.local_api_endpoint.advertise_address).unwrap_or_default()
            {
                print(&format!(
                    "[dryrun] Would wait for {} to return 'ok' at {}",
                    c.name, c.url
                ));
            }
            return Ok(done());
        }
        match &kubelet {
            Some(url) => {
                wait_kubelet(url, kubelet_limit)?;
            }
            None if joining => {}
            None => print(
                "[kubelet-check] Skipping the kubelet health check because the healthz port is set to 0",
            ),
        }
        let components =
            endpoints::control_plane(&init.local_api_endpoint.advertise_address).map_err(|e| {
                PhaseError::Failed(format!(
                    "could not parse the address and port of all control plane components: {e}"
                ))
            })?;
        wait_components(&components, components_limit, &ctx.node_registration().cri_socket)?;
        Ok(done())
    }
}

export_plugin!(WaitControlPlane);
