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
use wasmadm_plugin_sdk::{Context, Findings, Plugin, export_plugin, print};

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
            Command::Init => checks.init()?,
            Command::Join => checks.join()?,
            Command::Reset => {}
        }
        if !checks.findings.has_errors() && ctx.command() == Command::Init {
            checks.image_pull()?;
        }
        Ok(checks.findings.into_report())
    }
}

export_plugin!(Preflight);
