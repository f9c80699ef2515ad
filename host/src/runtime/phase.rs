//! A phase as the runner sees it: where its component comes from, on which nodes it runs, what it
//! may do and how much it may use. The pipeline file is turned into these by
//! [`crate::invocation`]; the runner knows nothing of the file's shape.

use crate::command::Role;
use crate::grants::PhaseGrants;
use std::path::PathBuf;
use std::time::Duration;

/// One phase of a run.
#[derive(Debug, Clone)]
pub struct Phase {
    /// The phase's name, as in `wasmadm init phase <name>` and `--skip-phases`.
    pub name: String,
    pub component: Component,
    /// Runs only on nodes of this role; on both when `None`.
    pub role: Option<Role>,
    /// Passed to the plugin as JSON (`phase-context.settings`).
    pub settings: serde_json::Value,
    pub grants: PhaseGrants,
    pub limits: Limits,
}

/// Where a phase's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Component {
    /// One of the plugins embedded in the wasmadm binary.
    Builtin(String),
    /// A `.wasm` component file and, when pinned, the hex SHA-256 its bytes must have.
    File { path: PathBuf, digest: Option<String> },
}

/// What one call of a phase may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of linear memory.
    pub memory: u64,
    /// Wall-clock time for one call, host calls included.
    pub timeout: Duration,
    /// Bytes of console output, logs and captured command output kept (also bounds outputs).
    pub output: u64,
    /// Bytes the phase may write through `files.write` in one run.
    pub write_bytes: u64,
    /// Files and directories the phase may write or create in one run.
    pub write_files: u64,
}
