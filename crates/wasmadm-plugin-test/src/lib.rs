//! A test harness for wasmadm plugins written in Rust: a built component, a node directory,
//! settings and grants in; the exit code, findings, effects and API objects out, as data.
//!
//! It runs the `wasmadm` binary (`plugin run -o json`), so a plugin's tests compile neither
//! Wasmtime nor wasmadm's default plugins: only this crate, serde and serde_json.
//!
//! ```no_run
//! use wasmadm_plugin_test::{Harness, Severity};
//!
//! let outcome = Harness::new("target/wasm32-wasip2/release/vendor_checks.wasm")
//!     .node("fixtures/node")
//!     .settings(serde_json::json!({"minKernelMajor": 7}))
//!     .run()
//!     .expect("wasmadm ran");
//! assert_eq!(outcome.exit_code, 2);
//! assert_eq!(outcome.finding("VendorChecks").map(|f| f.severity), Some(Severity::Error));
//! ```

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One check result.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Finding {
    pub check: String,
    pub severity: Severity,
    pub message: String,
}

/// The plugin as it described itself, and the digest wasmadm computed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Plugin {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub digest: String,
}

/// A console line, on `stdout` or `stderr`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConsoleLine {
    pub stream: String,
    pub line: String,
}

/// What a run did.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub plugin: Plugin,
    /// kubeadm's exit code: 0, 2 (a check failed), 3 (invalid configuration or settings), 1.
    pub exit_code: i32,
    /// Why the run failed.
    pub error: Option<String>,
    pub findings: Vec<Finding>,
    /// The dry-run plan (with [`Harness::dry_run`]): `{kind, path, text, ...}` per effect.
    pub effects: Vec<Value>,
    /// Values published for later phases.
    pub outputs: BTreeMap<String, String>,
    /// The in-memory cluster's objects after the run (with [`Harness::memory_cluster`]).
    pub objects: Option<Vec<Value>>,
    pub console: Vec<ConsoleLine>,
}

impl Outcome {
    /// The first finding of `check`.
    pub fn finding(&self, check: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.check == check)
    }

    /// The error findings.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Error)
    }
}

/// Why a run gave no outcome.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "cannot run {binary}: {source}; put wasmadm on PATH or set WASMADM to its path \
         (or call Harness::binary)"
    )]
    Spawn { binary: String, source: std::io::Error },
    #[error("cannot write the {what} file {}: {source}", path.display())]
    Write {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// wasmadm refused the run before the plugin ran (its message says why and what to do).
    #[error("wasmadm plugin run failed (exit code {code:?}): {stderr}")]
    Refused { code: Option<i32>, stderr: String },
}

/// One run of a component, built up then [`run`](Harness::run).
#[derive(Debug, Clone)]
pub struct Harness {
    binary: PathBuf,
    component: PathBuf,
    node: Option<PathBuf>,
    settings: Option<Value>,
    grants: Option<Value>,
    config: Option<PathBuf>,
    ignore_preflight_errors: Vec<String>,
    command: String,
    dry_run: bool,
    memory_cluster: bool,
}

impl Harness {
    /// A run of `component` with the grants it asks for, no settings, kubeadm's default
    /// configuration for `init`, and an empty node directory. The binary is `$WASMADM`, else
    /// `wasmadm` on PATH.
    pub fn new(component: impl Into<PathBuf>) -> Self {
        Self {
            binary: std::env::var_os("WASMADM")
                .map(PathBuf::from)
                .unwrap_or_else(|| "wasmadm".into()),
            component: component.into(),
            node: None,
            settings: None,
            grants: None,
            config: None,
            ignore_preflight_errors: Vec::new(),
            command: "init".into(),
            dry_run: false,
            memory_cluster: false,
        }
    }

    /// The `wasmadm` binary to run.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = path.into();
        self
    }

    /// The node directory (`--root`). The plugin may write to it: give it a copy.
    pub fn node(mut self, dir: impl Into<PathBuf>) -> Self {
        self.node = Some(dir.into());
        self
    }

    /// The plugin's settings, as a pipeline's `settings:` would give them.
    pub fn settings(mut self, settings: Value) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Grants instead of what the plugin asks for: a pipeline `grants:` block as JSON, e.g.
    /// `json!({"files": {"read": ["/proc"]}})`.
    pub fn grants(mut self, grants: Value) -> Self {
        self.grants = Some(grants);
        self
    }

    /// A kubeadm configuration file.
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// Checks whose errors become warnings.
    pub fn ignore_preflight_errors(mut self, checks: &[&str]) -> Self {
        self.ignore_preflight_errors = checks.iter().map(|c| c.to_string()).collect();
        self
    }

    /// `init` (the default), `join` or `reset`.
    pub fn command(mut self, command: &str) -> Self {
        self.command = command.into();
        self
    }

    /// Record effects instead of performing them ([`Outcome::effects`]).
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// Give the plugin a fresh in-memory cluster ([`Outcome::objects`]).
    pub fn memory_cluster(mut self) -> Self {
        self.memory_cluster = true;
        self
    }

    /// Runs the plugin once.
    pub fn run(&self) -> Result<Outcome, HarnessError> {
        let scratch = Scratch::new()?;
        let node = match &self.node {
            Some(n) => n.clone(),
            None => scratch.file("node", "node", None)?,
        };
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&node);
        if self.memory_cluster {
            cmd.args(["--cluster", "memory"]);
        }
        cmd.args(["plugin", "run", "-o", "json", "--command", &self.command])
            .arg(&self.component);
        if let Some(settings) = &self.settings {
            cmd.arg("--settings")
                .arg(scratch.file("settings", "settings.json", Some(settings))?);
        }
        if let Some(grants) = &self.grants {
            cmd.arg("--grants")
                .arg(scratch.file("grants", "grants.json", Some(grants))?);
        }
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        if !self.ignore_preflight_errors.is_empty() {
            cmd.arg("--ignore-preflight-errors")
                .arg(self.ignore_preflight_errors.join(","));
        }
        if self.dry_run {
            cmd.arg("--dry-run");
        }
        let out = cmd.output().map_err(|source| HarnessError::Spawn {
            binary: self.binary.display().to_string(),
            source,
        })?;
        // A run that started prints its outcome, whatever its exit code.
        serde_json::from_slice(&out.stdout).map_err(|_| HarnessError::Refused {
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// A directory of one run's inputs, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, HarnessError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wasmadm-plugin-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|source| HarnessError::Write {
            what: "scratch",
            path: dir.clone(),
            source,
        })?;
        Ok(Self(dir))
    }

    /// A JSON file (YAML reads it) in the scratch directory, or a directory when `value` is none.
    fn file(&self, what: &'static str, name: &str, value: Option<&Value>) -> Result<PathBuf, HarnessError> {
        let path = self.0.join(name);
        let written = match value {
            Some(v) => std::fs::write(&path, v.to_string()),
            None => std::fs::create_dir_all(&path),
        };
        written.map_err(|source| HarnessError::Write {
            what,
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path a crate's component is built to by `wasmadm plugin build`, for `Harness::new`:
/// `<crate>/target/wasm32-wasip2/release/<lib name>.wasm`.
pub fn component_of(crate_dir: &Path, package: &str) -> PathBuf {
    crate_dir
        .join("target/wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}
