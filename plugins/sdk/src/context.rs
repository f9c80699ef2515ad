//! Typed access to the [`PhaseContext`] the host passes to `run`.

use crate::config::{ClusterConfiguration, NodeRegistration, ResolvedConfig};
use crate::types::{Command, NodeRole, PhaseContext, PhaseError};
use serde::de::DeserializeOwned;

/// The phase context with its JSON parts parsed.
///
/// ```
/// use wasmadm_plugin_sdk::Context;
/// use wasmadm_plugin_sdk::types::{Command, NodeRole, PhaseContext};
/// let raw = PhaseContext {
///     command: Command::Init,
///     phase: "vendor-checks".into(),
///     sub_phases: vec![],
///     role: NodeRole::ControlPlane,
///     dry_run: false,
///     config: r#"{"init": {"nodeRegistration": {"name": "n1"}}}"#.into(),
///     settings: "null".into(),
///     inputs: vec![("node.hostname".into(), "n1".into())],
/// };
/// let ctx = Context::new(&raw)?;
/// assert_eq!(ctx.raw.phase, "vendor-checks");
/// assert!(ctx.config.init.is_some());
/// # Ok::<(), wasmadm_plugin_sdk::types::PhaseError>(())
/// ```
pub struct Context<'a> {
    /// The context as the host passed it.
    pub raw: &'a PhaseContext,
    /// The resolved kubeadm configuration (`phase-context.config`, parsed).
    pub config: ResolvedConfig,
}

impl<'a> Context<'a> {
    /// Parses the resolved configuration; a malformed one is the host's bug, reported as such.
    ///
    /// ```
    /// # use wasmadm_plugin_sdk::{Context, types::*};
    /// # let mut raw = PhaseContext { command: Command::Init, phase: "p".into(), sub_phases: vec![], role: NodeRole::Worker, dry_run: false, config: "{}".into(), settings: "null".into(), inputs: vec![] };
    /// assert!(Context::new(&raw).is_ok());
    /// raw.config = "not JSON".into();
    /// assert!(matches!(Context::new(&raw), Err(PhaseError::Failed(_))));
    /// ```
    pub fn new(raw: &'a PhaseContext) -> Result<Self, PhaseError> {
        let config = serde_json::from_str(&raw.config).map_err(|e| {
            PhaseError::Failed(format!(
                "the host passed a configuration this plugin cannot read: {e}"
            ))
        })?;
        Ok(Self { raw, config })
    }

    /// The plugin's settings as `T`; `null` (no settings) gives `T::default()`.
    ///
    /// ```
    /// # use wasmadm_plugin_sdk::{Context, types::*};
    /// #[derive(Default, serde::Deserialize)]
    /// struct Settings { strict: bool }
    /// # let mut raw = PhaseContext { command: Command::Init, phase: "p".into(), sub_phases: vec![], role: NodeRole::Worker, dry_run: false, config: "{}".into(), settings: "null".into(), inputs: vec![] };
    /// raw.settings = r#"{"strict": true}"#.into();
    /// let settings: Settings = Context::new(&raw)?.settings()?;
    /// assert!(settings.strict);
    /// raw.settings = r#"{"strict": "yes"}"#.into();
    /// let refused = Context::new(&raw)?.settings::<Settings>();
    /// assert!(matches!(refused, Err(PhaseError::InvalidConfig(_))));
    /// # Ok::<(), PhaseError>(())
    /// ```
    pub fn settings<T: DeserializeOwned + Default>(&self) -> Result<T, PhaseError> {
        if self.raw.settings.trim() == "null" || self.raw.settings.trim().is_empty() {
            return Ok(T::default());
        }
        serde_json::from_str(&self.raw.settings)
            .map_err(|e| PhaseError::InvalidConfig(format!("settings of phase {:?}: {e}", self.raw.phase)))
    }

    /// The command being run.
    ///
    /// ```
    /// # use wasmadm_plugin_sdk::{Context, types::*};
    /// # let raw = PhaseContext { command: Command::Reset, phase: "p".into(), sub_phases: vec![], role: NodeRole::Worker, dry_run: false, config: "{}".into(), settings: "null".into(), inputs: vec![] };
    /// let ctx = Context::new(&raw)?;
    /// assert!(matches!(ctx.command(), Command::Reset));
    /// # Ok::<(), PhaseError>(())
    /// ```
    pub fn command(&self) -> Command {
        self.raw.command
    }

    /// True on a control-plane node (`init`, `join --control-plane`).
    ///
    /// ```
    /// # use wasmadm_plugin_sdk::{Context, types::*};
    /// # let raw = PhaseContext { command: Command::Join, phase: "p".into(), sub_phases: vec![], role: NodeRole::Worker, dry_run: false, config: "{}".into(), settings: "null".into(), inputs: vec![] };
    /// assert!(!Context::new(&raw)?.is_control_plane());
    /// # Ok::<(), PhaseError>(())
    /// ```
    pub fn is_control_plane(&self) -> bool {
        matches!(self.raw.role, NodeRole::ControlPlane)
    }

    /// The node registration of the running command.
    ///
    /// ```
    /// # use wasmadm_plugin_sdk::{Context, types::*};
    /// # let mut raw = PhaseContext { command: Command::Join, phase: "p".into(), sub_phases: vec![], role: NodeRole::Worker, dry_run: false, config: "{}".into(), settings: "null".into(), inputs: vec![] };
    /// raw.config = r#"{"join": {"nodeRegistration": {"name": "worker-1"}}}"#.into();
    /// assert_eq!(Context::new(&raw)?.node_registration().name, "worker-1");
    /// # Ok::<(), PhaseError>(())
    /// ```
    pub fn node_registration(&self) -> NodeRegistration {
        self.config.node_registration().cloned().unwrap_or_default()
    }

    /// The node's name (`nodeRegistration.name`).
    ///
    /// ```
    /// # use wasmadm_plugin_sdk::{Context, types::*};
    /// # let mut raw = PhaseContext { command: Command::Init, phase: "p".into(), sub_phases: vec![], role: NodeRole::ControlPlane, dry_run: false, config: "{}".into(), settings: "null".into(), inputs: vec![] };
    /// raw.config = r#"{"init": {"nodeRegistration": {"name": "cp-1"}}}"#.into();
    /// assert_eq!(Context::new(&raw)?.node_name(), "cp-1");
    /// # Ok::<(), PhaseError>(())
    /// ```
    pub fn node_name(&self) -> String {
        self.node_registration().name
    }

    /// The cluster configuration (defaulted), or kubeadm's defaults when the command has none.
    /// (The cluster's API is [`crate::apply::cluster`].)
    ///
    /// ```
    /// # use wasmadm_plugin_sdk::{Context, types::*};
    /// # let raw = PhaseContext { command: Command::Join, phase: "p".into(), sub_phases: vec![], role: NodeRole::Worker, dry_run: false, config: "{}".into(), settings: "null".into(), inputs: vec![] };
    /// // A worker's join has no ClusterConfiguration: kubeadm's defaults stand in.
    /// let cluster = Context::new(&raw)?.cluster_configuration();
    /// assert_eq!(cluster.certificates_dir, "/etc/kubernetes/pki");
    /// # Ok::<(), PhaseError>(())
    /// ```
    pub fn cluster_configuration(&self) -> ClusterConfiguration {
        self.config.cluster.clone().unwrap_or_else(|| {
            let mut c = ClusterConfiguration::default();
            crate::config::defaults::cluster_configuration(&mut c);
            c
        })
    }

    /// Whether a sub-phase is selected for this run.
    ///
    /// ```
    /// # use wasmadm_plugin_sdk::{Context, types::*};
    /// # let mut raw = PhaseContext { command: Command::Init, phase: "certs".into(), sub_phases: vec![], role: NodeRole::ControlPlane, dry_run: false, config: "{}".into(), settings: "null".into(), inputs: vec![] };
    /// raw.sub_phases = vec!["ca".into()]; // `wasmadm init phase certs ca`
    /// let ctx = Context::new(&raw)?;
    /// assert!(ctx.runs("ca") && !ctx.runs("apiserver"));
    /// # Ok::<(), PhaseError>(())
    /// ```
    pub fn runs(&self, sub_phase: &str) -> bool {
        self.raw.sub_phases.iter().any(|s| s == sub_phase)
    }

    /// A value an earlier phase published, by `<phase>.<key>`, or a fact about the node the host
    /// hands every phase (`node.hostname`).
    ///
    /// ```
    /// # use wasmadm_plugin_sdk::{Context, types::*};
    /// # let mut raw = PhaseContext { command: Command::Init, phase: "p".into(), sub_phases: vec![], role: NodeRole::ControlPlane, dry_run: false, config: "{}".into(), settings: "null".into(), inputs: vec![] };
    /// raw.inputs = vec![("bootstrap-token.token".into(), "abcdef.0123456789abcdef".into())];
    /// let ctx = Context::new(&raw)?;
    /// assert_eq!(ctx.input("bootstrap-token.token"), Some("abcdef.0123456789abcdef"));
    /// assert_eq!(ctx.input("node.hostname"), None);
    /// # Ok::<(), PhaseError>(())
    /// ```
    pub fn input(&self, key: &str) -> Option<&str> {
        self.raw
            .inputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
