//! Guest-side SDK for wasmadm phase plugins.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2` that implements [`Plugin`] and calls
//! [`export_plugin!`]. Everything the host offers is in the generated bindings ([`files`],
//! [`exec`], [`kube`], [`log`], [`health`], [`etcd`]); this crate adds typed access to the context
//! ([`Context`]), a findings collector ([`Findings`]) and small file helpers.
//!
//! ```no_run
//! use wasmadm_plugin_sdk::{export_plugin, types::*, Context, Plugin};
//!
//! struct Hello;
//! impl Plugin for Hello {
//!     fn describe() -> PluginInfo { wasmadm_plugin_sdk::info("hello", "Says hello") }
//!     fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
//!         let ctx = Context::new(&context)?;
//!         wasmadm_plugin_sdk::print(&format!("[hello] node {}", ctx.node_name()));
//!         Ok(wasmadm_plugin_sdk::done())
//!     }
//! }
//! export_plugin!(Hello);
//! ```

pub mod bindings {
    //! Bindings generated from the `wasmadm:plugin` WIT package (`wit/` at the repository root).
    //! The interfaces are re-exported at the crate's root ([`files`](crate::files),
    //! [`kube`](crate::kube), ...).
    //!
    //! ```no_run
    //! let release = wasmadm_plugin_sdk::bindings::wasmadm::plugin::files::read("/proc/sys/kernel/osrelease");
    //! # let _ = release;
    //! ```
    wit_bindgen::generate!({
        world: "phase",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "wasmadm_plugin_sdk::bindings",
    });
}

pub mod apply;
mod context;
mod findings;
pub mod fs;
#[cfg(feature = "keys")]
pub mod keys;
mod rules;
pub mod systemd;

pub use bindings::export_plugin;
pub use bindings::exports::wasmadm::plugin::plugin::Guest as Plugin;
pub use bindings::wasmadm::plugin::{etcd, exec, files, health, kube, log, types};
pub use context::Context;
pub use findings::Findings;
pub use kubeadm_config as config;

use types::{CapabilityRequest, PhaseError, PluginInfo};

/// The result of a phase's steps.
///
/// ```
/// use wasmadm_plugin_sdk::{Result, failed};
/// fn check(ok: bool) -> Result {
///     if ok { Ok(()) } else { Err(failed("the check failed")) }
/// }
/// assert!(check(true).is_ok());
/// ```
pub type Result<T = (), E = PhaseError> = std::result::Result<T, E>;

/// A phase failure with this message (`phase-error.failed`: exit code 1).
///
/// ```
/// use wasmadm_plugin_sdk::{failed, types::PhaseError};
/// assert!(matches!(failed("no CA"), PhaseError::Failed(m) if m == "no CA"));
/// ```
pub fn failed(message: impl Into<String>) -> PhaseError {
    PhaseError::Failed(message.into())
}

/// Several errors as one message, as kubeadm's (Go's `utilerrors.NewAggregate`) reads: `None`
/// for none, one as it is, several in brackets.
///
/// ```
/// use wasmadm_plugin_sdk::aggregate;
/// assert_eq!(aggregate(vec![]), None);
/// assert_eq!(aggregate(vec!["a".into()]).as_deref(), Some("a"));
/// assert_eq!(aggregate(vec!["a".into(), "b".into()]).as_deref(), Some("[a, b]"));
/// ```
pub fn aggregate(mut errors: Vec<String>) -> Option<String> {
    match errors.len() {
        0 => None,
        1 => errors.pop(),
        _ => Some(format!("[{}]", errors.join(", "))),
    }
}

/// The report of a phase that checks nothing and publishes nothing: how its `run` ends. A phase
/// with check results or outputs collects them in [`Findings`] instead.
///
/// ```
/// use wasmadm_plugin_sdk::{done, types::{PhaseError, PhaseReport}};
/// fn run() -> Result<PhaseReport, PhaseError> {
///     // ... the phase's work ...
///     Ok(done())
/// }
/// assert!(run().is_ok_and(|r| r.findings.is_empty() && r.outputs.is_empty()));
/// ```
pub fn done() -> types::PhaseReport {
    types::PhaseReport {
        findings: Vec::new(),
        outputs: Vec::new(),
    }
}

/// Prints a console line as kubeadm would (e.g. `[preflight] Running pre-flight checks`).
///
/// ```no_run
/// wasmadm_plugin_sdk::print("[vendor] Writing the vendor agent's configuration");
/// ```
pub fn print(line: &str) {
    log::print(line);
}

/// Logs a warning (kubeadm's `klog.Warning` lines, which are not console output).
///
/// ```no_run
/// wasmadm_plugin_sdk::warn("the vendor agent is older than 2.0; some checks are skipped");
/// ```
pub fn warn(message: &str) {
    log::log(log::Level::Warn, message);
}

/// Logs a diagnostic line at `debug` level (shown with `-v 5`).
///
/// ```no_run
/// wasmadm_plugin_sdk::debug(&format!("ConfigMap vendor: {:?}", "Unchanged"));
/// ```
pub fn debug(message: &str) {
    log::log(log::Level::Debug, message);
}

/// A [`PluginInfo`] with no sub-phases, no capability needs and no settings: fill in the rest.
///
/// ```
/// let mut info = wasmadm_plugin_sdk::info("vendor-checks", "Checks the vendor agent");
/// info.needs.files_read.push("/etc/vendor".into());
/// assert_eq!(info.name, "vendor-checks");
/// assert!(info.sub_phases.is_empty());
/// ```
pub fn info(name: &str, summary: &str) -> PluginInfo {
    PluginInfo {
        name: name.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        summary: summary.to_string(),
        sub_phases: Vec::new(),
        needs: CapabilityRequest {
            files_read: Vec::new(),
            files_write: Vec::new(),
            exec: Vec::new(),
            kube: Vec::new(),
            env: Vec::new(),
        },
        settings_example: String::new(),
    }
}

impl From<files::FileError> for PhaseError {
    fn from(e: files::FileError) -> Self {
        match e.code {
            files::ErrorCode::Denied => PhaseError::Denied(e.message),
            _ => PhaseError::Failed(format!("{}: {}", e.path, e.message)),
        }
    }
}

impl From<exec::ExecError> for PhaseError {
    fn from(e: exec::ExecError) -> Self {
        match e {
            exec::ExecError::Denied(m) => PhaseError::Denied(m),
            exec::ExecError::NotFound(m) | exec::ExecError::TimedOut(m) | exec::ExecError::Failed(m) => {
                PhaseError::Failed(m)
            }
        }
    }
}

impl From<kube::ApiError> for PhaseError {
    fn from(e: kube::ApiError) -> Self {
        match e.code {
            kube::ErrorCode::Denied => PhaseError::Denied(e.message),
            _ => PhaseError::Failed(e.message),
        }
    }
}

impl From<health::HealthError> for PhaseError {
    fn from(e: health::HealthError) -> Self {
        match e {
            health::HealthError::Denied(m) => PhaseError::Denied(m),
            other => PhaseError::Failed(other.text()),
        }
    }
}

/// The human message of a capability error (the generated `Display` is `Debug`-shaped).
///
/// ```no_run
/// use wasmadm_plugin_sdk::{ErrorText, files};
/// if let Err(e) = files::read("/etc/vendor/agent.conf") {
///     wasmadm_plugin_sdk::warn(&format!("no vendor configuration: {}", e.text()));
/// }
/// ```
pub trait ErrorText {
    /// The error's message, without its variant or code.
    fn text(&self) -> String;
}

impl ErrorText for files::FileError {
    fn text(&self) -> String {
        self.message.clone()
    }
}

impl ErrorText for exec::ExecError {
    fn text(&self) -> String {
        match self {
            exec::ExecError::Denied(m)
            | exec::ExecError::NotFound(m)
            | exec::ExecError::TimedOut(m)
            | exec::ExecError::Failed(m) => m.clone(),
        }
    }
}

impl ErrorText for kube::ApiError {
    fn text(&self) -> String {
        self.message.clone()
    }
}

impl ErrorText for etcd::EtcdError {
    fn text(&self) -> String {
        match self {
            etcd::EtcdError::Denied(m)
            | etcd::EtcdError::Invalid(m)
            | etcd::EtcdError::Tls(m)
            | etcd::EtcdError::Unavailable(m)
            | etcd::EtcdError::TimedOut(m)
            | etcd::EtcdError::Rejected(m)
            | etcd::EtcdError::Unhealthy(m) => m.clone(),
        }
    }
}

impl ErrorText for health::HealthError {
    fn text(&self) -> String {
        match self {
            health::HealthError::Denied(m)
            | health::HealthError::Refused(m)
            | health::HealthError::Unreachable(m)
            | health::HealthError::TimedOut(m)
            | health::HealthError::Tls(m)
            | health::HealthError::Other(m) => m.clone(),
        }
    }
}
