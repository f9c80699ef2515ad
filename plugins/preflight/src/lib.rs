//! The `preflight` phase: kubeadm's pre-flight checks for `init`, `join` and `reset`, with
//! kubeadm's check names, severities and messages, read through the host's capabilities (node
//! files under `--root`, `kubelet --version` and `systemctl` through `exec`).
//!
//! Every check runs and reports; the phase fails at the end if errors remain after
//! `--ignore-preflight-errors` / `nodeRegistration.ignorePreflightErrors` demoted them. The root
//! check runs first and alone, as in kubeadm.

mod checks;
mod netutil;

use checks::Checks;
use serde::Deserialize;
use wasmadm_plugin_sdk::types::{Command, ExecRule, PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm_plugin_sdk::{Context, ErrorText, Findings, Plugin, export_plugin, print};

/// The kubeadm release whose checks this plugin reproduces.
pub const KUBEADM_VERSION: &str = "v1.36.2";

/// The plugin's settings (`settings:` in the pipeline).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Directories searched for required binaries (`FileExisting-<binary>`), like `$PATH`.
    #[serde(default = "wasmadm_plugin_sdk::config::defaults::system_path")]
    pub path: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            path: wasmadm_plugin_sdk::config::defaults::system_path(),
        }
    }
}

const SETTINGS_EXAMPLE: &str = "\
# Directories searched for the binaries kubeadm requires (losetup, mount, cp), like $PATH.
path: [/usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin, /sbin, /bin]
";

struct Preflight;

impl Plugin for Preflight {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info("preflight", "Run pre-flight checks");
        let read = [
            "/proc",
            // wasmadm's own uid and CPU affinity: `/proc` does not cover its own process.
            "/proc/self/status",
            "/sys/fs/cgroup",
            "/etc/kubernetes",
            "/etc/hosts",
            "/var/lib/etcd",
            "/run",
            "/var/run",
        ];
        // The binaries it looks for are searched on the default PATH.
        info.needs.files_read = read
            .iter()
            .chain(wasmadm_plugin_sdk::config::defaults::SYSTEM_PATH.iter())
            .map(|p| p.to_string())
            .collect();
        info.needs.exec = vec![
            ExecRule {
                command: "kubelet".into(),
                args: vec![vec!["--version".into()]],
                read_only: true,
            },
            ExecRule {
                command: "systemctl".into(),
                args: [
                    ["status", "kubelet"],
                    ["is-enabled", "kubelet"],
                    ["status", "firewalld"],
                    ["is-active", "firewalld"],
                ]
                .iter()
                .map(|a| a.iter().map(|s| s.to_string()).collect())
                .collect(),
                read_only: true,
            },
        ];
        info.needs.env = [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "NO_PROXY",
            "no_proxy",
        ]
        .map(String::from)
        .to_vec();
        info.settings_example = SETTINGS_EXAMPLE.into();
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        let settings: Settings = ctx.settings()?;
        let ignored = ctx.node_registration().ignore_preflight_errors;
        let mut checks = Checks {
            ctx: &ctx,
            settings: &settings,
            findings: Findings::ignoring(&ignored),
        };

        print("[preflight] Running pre-flight checks");
        // The root check runs alone: nothing else is meaningful without root.
        checks.is_privileged_user()?;
        if checks.findings.has_errors() || ctx.command() == Command::Reset {
            return Ok(checks.findings.into_report());
        }
        match ctx.command() {
            Command::Init => {
                checks.init()?;
                if !checks.findings.has_errors() {
                    checks.image_pull()?;
                }
                Ok(checks.findings.into_report())
            }
            Command::Join => join(&context, checks),
            Command::Reset => Ok(checks.findings.into_report()),
        }
    }
}

/// kubeadm's join preflight: the node's checks; then (once they passed) the cluster's
/// configuration, read as the bootstrap token; on a control plane, whether the cluster can take
/// another (a stable controlPlaneEndpoint, the shared certificates or the key to download them),
/// then init's checks on the joining configuration and the image pull.
fn join(context: &PhaseContext, mut checks: Checks<'_>) -> Result<PhaseReport, PhaseError> {
    checks.join()?;
    if checks.findings.has_errors() {
        return Ok(checks.findings.into_report());
    }
    let ctx = checks.ctx;
    let (cluster, outputs) = kubeadm_discovery::read_cluster(ctx)?;
    let mut findings = checks.findings;
    if ctx.is_control_plane() {
        let has_key = ctx
            .config
            .join
            .as_ref()
            .and_then(|j| j.control_plane.as_ref())
            .is_some_and(|cp| !cp.certificate_key.is_empty());
        if let Err(reason) = ready_for_another_control_plane(&cluster, has_key) {
            return Err(PhaseError::Failed(format!(
                "\nOne or more conditions for hosting a new control plane instance is not satisfied.\n\n\
                 {reason}\n\nPlease ensure that:\n\
                 * The cluster has a stable controlPlaneEndpoint address.\n\
                 * The certificates that must be shared among control plane instances are provided.\n\n"
            )));
        }
        print("[preflight] Running pre-flight checks before initializing the new control plane instance");
        let mut joining = Context::new(context)?;
        joining.config = kubeadm_discovery::control_plane_config(&ctx.config, cluster);
        let mut cp_checks = Checks {
            ctx: &joining,
            settings: checks.settings,
            findings,
        };
        cp_checks.joining_control_plane(has_key)?;
        if !cp_checks.findings.has_errors() {
            cp_checks.image_pull()?;
        }
        findings = cp_checks.findings;
    }
    let mut report = findings.into_report();
    report.outputs.extend(outputs);
    Ok(report)
}

/// kubeadm's `checkIfReadyForAdditionalControlPlane`: the cluster has a controlPlaneEndpoint, and
/// without a certificate key the shared certificates are on the node already.
fn ready_for_another_control_plane(
    cluster: &wasmadm_plugin_sdk::config::ClusterConfiguration,
    has_key: bool,
) -> Result<(), String> {
    if cluster.control_plane_endpoint.is_empty() {
        return Err(
            "unable to add a new control plane instance to a cluster that doesn't have a stable \
                    controlPlaneEndpoint address"
                .into(),
        );
    }
    if has_key {
        return Ok(());
    }
    let dir = &cluster.certificates_dir;
    // kubeadm's SharedCertificateExists: the CAs' certificates and the service-account key.
    let mut shared = vec![
        ("certificate", "CA", format!("{dir}/ca.crt")),
        ("key", "service account", format!("{dir}/sa.key")),
        (
            "certificate",
            "front-proxy CA",
            format!("{dir}/front-proxy-ca.crt"),
        ),
    ];
    if cluster.etcd.external.is_none() {
        shared.push(("certificate", "etcd CA", format!("{dir}/etcd/ca.crt")));
    }
    let mut missing = Vec::new();
    for (what, name, file) in shared {
        let file_kind = if what == "key" {
            "private key"
        } else {
            "certificate"
        };
        match wasmadm_plugin_sdk::fs::exists(&file) {
            Ok(true) => {}
            Ok(false) => missing.push(format!(
                "failure loading {what} for {name}: couldn't load the {file_kind} file {file}: open {file}: \
                 no such file or directory"
            )),
            Err(e) => missing.push(format!("failure loading {what} for {name}: {}", e.text())),
        }
    }
    wasmadm_plugin_sdk::aggregate(missing).map_or(Ok(()), Err)
}

export_plugin!(Preflight);
