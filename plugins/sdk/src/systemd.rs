//! The kubelet service through the node's init system, as kubeadm's `initsystem` package and
//! `phases/kubelet` helpers do it: `systemctl` run through the `exec` capability.
//!
//! kubeadm's "no supported init system" is `systemctl` missing from the exec PATH (kubeadm also
//! knows OpenRC; wasmadm does not). The probe `systemctl status <unit>` only reads, so it runs
//! in `--dry-run` too; `stop`, `daemon-reload` and `restart` are recorded in the dry-run plan.

use crate::exec::{self, Command, ExecError};
use crate::types::{ExecRule, PhaseError};

/// What `systemctl status <unit>` says about a unit.
///
/// ```no_run
/// use wasmadm_plugin_sdk::systemd::{self, Unit};
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// if systemd::unit("containerd")? == Unit::NotFound {
///     wasmadm_plugin_sdk::warn("containerd service does not exist");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `systemctl` is not on the exec PATH.
    NoInitSystem,
    /// systemd does not know the unit (`Loaded: not-found`).
    NotFound,
    /// systemd knows the unit.
    Exists,
}

/// Runs `systemctl <args>`; `Ok(None)` when systemctl is not installed.
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// if let Some(out) = wasmadm_plugin_sdk::systemd::systemctl(&["is-enabled", "kubelet"])? {
///     let enabled = out.status == Some(0);
/// #   let _ = enabled;
/// }
/// # Ok(()) }
/// ```
pub fn systemctl(args: &[&str]) -> Result<Option<exec::Output>, PhaseError> {
    let cmd = Command {
        program: "systemctl".into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: Vec::new(),
        stdin: None,
    };
    match exec::run(&cmd) {
        Ok(out) => Ok(Some(out)),
        Err(ExecError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The exec grant of one `systemctl` command line (`read_only` ones also run in dry-run), for a
/// plugin's `describe()`.
///
/// ```
/// let rule = wasmadm_plugin_sdk::systemd::rule(&["status", "kubelet"], true);
/// assert_eq!(rule.command, "systemctl");
/// assert_eq!(rule.args, [["status", "kubelet"]]);
/// ```
pub fn rule(args: &[&str], read_only: bool) -> ExecRule {
    ExecRule {
        command: "systemctl".into(),
        args: vec![args.iter().map(|a| a.to_string()).collect()],
        read_only,
    }
}

/// kubeadm's `GetInitSystem` + `ServiceExists`.
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// use wasmadm_plugin_sdk::systemd::{unit, Unit};
/// let has_init_system = unit("kubelet")? != Unit::NoInitSystem;
/// # let _ = has_init_system; Ok(()) }
/// ```
pub fn unit(name: &str) -> Result<Unit, PhaseError> {
    Ok(match systemctl(&["status", name])? {
        None => Unit::NoInitSystem,
        Some(out) if String::from_utf8_lossy(&out.stdout).contains("Loaded: not-found") => Unit::NotFound,
        Some(_) => Unit::Exists,
    })
}

/// kubeadm's `ServiceIsActive` (`active` or `activating`); `None` without an init system.
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// if wasmadm_plugin_sdk::systemd::is_active("firewalld")? == Some(true) {
///     wasmadm_plugin_sdk::warn("firewalld is active, please ensure ports [6443 10250] are open");
/// }
/// # Ok(()) }
/// ```
pub fn is_active(name: &str) -> Result<Option<bool>, PhaseError> {
    Ok(systemctl(&["is-active", name])?.map(|out| {
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        state == "active" || state == "activating"
    }))
}

/// Runs a mutating `systemctl` command; `Err` carries kubeadm's `exit status N` text.
fn change(args: &[&str]) -> Result<Result<(), String>, PhaseError> {
    Ok(match systemctl(args)? {
        Some(out) if out.status == Some(0) => Ok(()),
        Some(out) => Err(match out.status {
            Some(code) => format!("exit status {code}"),
            None => "signal: killed".into(),
        }),
        None => Err("executable file \"systemctl\" not found in $PATH".into()),
    })
}

/// `systemctl daemon-reload && systemctl restart <unit>` (kubeadm's `ServiceRestart`).
fn restart(name: &str) -> Result<Result<(), String>, PhaseError> {
    match change(&["daemon-reload"])? {
        Ok(()) => change(&["restart", name]),
        Err(e) => Ok(Err(format!("failed to reload systemd: {e}"))),
    }
}

const NO_INIT_STOPPED: &str = "[kubelet-start] No supported init system detected, won't make sure the kubelet not running for a short period of time while setting up configuration for it.";
const NO_UNIT_STOPPED: &str = "[kubelet-start] Couldn't detect a kubelet service, can't make sure the kubelet not running for a short period of time while setting up configuration for it.";

/// The kubelet unit check that starts kubeadm's `TryStopKubelet` and `TryRestartKubelet`: false
/// (after saying so) when there is no init system.
fn kubelet_unit_for_restart() -> Result<bool, PhaseError> {
    match unit("kubelet")? {
        Unit::NoInitSystem => {
            crate::print(NO_INIT_STOPPED);
            return Ok(false);
        }
        Unit::NotFound => crate::print(NO_UNIT_STOPPED),
        Unit::Exists => {}
    }
    Ok(true)
}

/// kubeadm's `TryStopKubelet`: stops the kubelet while its configuration is written.
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// wasmadm_plugin_sdk::systemd::try_stop_kubelet()?;
/// // ... write /var/lib/kubelet/config.yaml ...
/// wasmadm_plugin_sdk::systemd::try_start_kubelet()?;
/// # Ok(()) }
/// ```
pub fn try_stop_kubelet() -> Result<(), PhaseError> {
    if !kubelet_unit_for_restart()? {
        return Ok(());
    }
    if let Err(e) = change(&["stop", "kubelet"])? {
        crate::warn(&format!(
            "[kubelet-start] WARNING: unable to stop the kubelet service momentarily: [{e}]"
        ));
    }
    Ok(())
}

/// kubeadm's `TryStartKubelet`: (re)starts the kubelet so it reads its new configuration.
/// A failure is a warning, as in kubeadm.
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// wasmadm_plugin_sdk::print("[kubelet-start] Starting the kubelet");
/// wasmadm_plugin_sdk::systemd::try_start_kubelet()?;
/// # Ok(()) }
/// ```
pub fn try_start_kubelet() -> Result<(), PhaseError> {
    match unit("kubelet")? {
        Unit::NoInitSystem => {
            crate::print(
                "[kubelet-start] No supported init system detected, won't make sure the kubelet is running properly.",
            );
            return Ok(());
        }
        Unit::NotFound => crate::print(
            "[kubelet-start] Couldn't detect a kubelet service, can't make sure the kubelet is running properly.",
        ),
        Unit::Exists => {}
    }
    if let Err(e) = restart("kubelet")? {
        crate::warn(&format!(
            "[kubelet-start] WARNING: unable to start the kubelet service: [{e}]"
        ));
        crate::print("[kubelet-start] Please ensure kubelet is reloaded and running manually.");
    }
    Ok(())
}

/// kubeadm's `TryRestartKubelet` (after `kubelet-finalize` rewrote `kubelet.conf`).
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// // ... point kubelet.conf at the rotated client certificate ...
/// wasmadm_plugin_sdk::systemd::try_restart_kubelet()?;
/// # Ok(()) }
/// ```
pub fn try_restart_kubelet() -> Result<(), PhaseError> {
    if !kubelet_unit_for_restart()? {
        return Ok(());
    }
    if let Err(e) = restart("kubelet")? {
        crate::warn(&format!(
            "[kubelet-start] WARNING: unable to restart the kubelet service momentarily: [{e}]"
        ));
    }
    Ok(())
}

/// The `resolvConf` kubeadm gives the kubelet: systemd-resolved's file when that service is
/// active. Without an init system kubeadm warns and sets nothing.
///
/// ```no_run
/// # fn f() -> wasmadm_plugin_sdk::Result {
/// let resolv_conf = wasmadm_plugin_sdk::systemd::resolv_conf()?;
/// // Some("/run/systemd/resolve/resolv.conf") on a node with systemd-resolved
/// # let _ = resolv_conf; Ok(()) }
/// ```
pub fn resolv_conf() -> Result<Option<&'static str>, PhaseError> {
    Ok(match is_active("systemd-resolved")? {
        Some(true) => Some(crate::config::kubelet::SYSTEMD_RESOLV_CONF),
        Some(false) => None,
        None => {
            crate::warn(
                "cannot determine if systemd-resolved is active: no supported init system detected, \
                 skipping checking for services",
            );
            None
        }
    })
}
