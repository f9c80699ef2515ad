//! Typed access to the [`PhaseContext`] the host passes to `run`.

use crate::config::{ClusterConfiguration, NodeRegistration, ResolvedConfig};
use crate::types::{Command, NodeRole, PhaseContext, PhaseError};
use serde::de::DeserializeOwned;

/// The phase context with its JSON parts parsed.
pub struct Context<'a> {
    pub raw: &'a PhaseContext,
    pub config: ResolvedConfig,
}

impl<'a> Context<'a> {
    /// Parses the resolved configuration; a malformed one is the host's bug, reported as such.
    pub fn new(raw: &'a PhaseContext) -> Result<Self, PhaseError> {
        let config = serde_json::from_str(&raw.config).map_err(|e| {
            PhaseError::Failed(format!(
                "the host passed a configuration this plugin cannot read: {e}"
            ))
        })?;
        Ok(Self { raw, config })
    }

    /// The plugin's settings as `T`; `null` (no settings) gives `T::default()`.
    pub fn settings<T: DeserializeOwned + Default>(&self) -> Result<T, PhaseError> {
        if self.raw.settings.trim() == "null" || self.raw.settings.trim().is_empty() {
            return Ok(T::default());
        }
        serde_json::from_str(&self.raw.settings)
            .map_err(|e| PhaseError::InvalidConfig(format!("settings of phase {:?}: {e}", self.raw.phase)))
    }

    pub fn command(&self) -> Command {
        self.raw.command
    }

    pub fn is_control_plane(&self) -> bool {
        matches!(self.raw.role, NodeRole::ControlPlane)
    }

    /// The node registration of the running command.
    pub fn node_registration(&self) -> NodeRegistration {
        self.config.node_registration().cloned().unwrap_or_default()
    }

    pub fn node_name(&self) -> String {
        self.node_registration().name
    }

    /// The cluster configuration (defaulted), or kubeadm's defaults when the command has none.
    pub fn cluster(&self) -> ClusterConfiguration {
        self.config.cluster.clone().unwrap_or_else(|| {
            let mut c = ClusterConfiguration::default();
            crate::config::defaults::cluster_configuration(&mut c);
            c
        })
    }

    /// Whether a sub-phase is selected for this run.
    pub fn runs(&self, sub_phase: &str) -> bool {
        self.raw.sub_phases.iter().any(|s| s == sub_phase)
    }

    /// A value an earlier phase published, by `<phase>.<key>`, or a fact about the node the host
    /// hands every phase (`node.hostname`).
    pub fn input(&self, key: &str) -> Option<&str> {
        self.raw
            .inputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
