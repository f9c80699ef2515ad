//! One plugin, run alone: the author's own `.wasm` file against a node directory, with the grants
//! it asks for (or a grants file), its settings, and no pipeline file. The digest is computed,
//! not pinned (the file is the author's own), and no cluster state is written unless a cluster
//! is given. The result is data: findings, the dry-run plan, outputs, and kubeadm's exit code.

use crate::bindings::types::{Finding, Severity};
use crate::caps::log::Console;
use crate::caps::plan::PlanEntry;
use crate::cluster::Cluster;
use crate::command::{Command, Role};
use crate::config::pipeline::{
    ComponentRef, Grants, Limits, PhaseName, PhaseSpec, Phases, Pipeline, PipelineError,
};
use crate::config::settings_error::Source;
use crate::invocation;
use crate::runtime::runner::Described;
use crate::runtime::trace::Trace;
use crate::runtime::{RunError, RunReport, RunSpec, Runtime};
use kubeadm_config::ResolvedConfig;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which grants the plugin runs with.
#[derive(Debug, Clone)]
pub enum GrantChoice {
    /// Exactly what its `describe()` asks for (`--grants requested`).
    Requested,
    /// These (a grants file), as an operator would give them.
    Given(Grants),
}

/// What to run.
pub struct SingleRun {
    pub component: PathBuf,
    /// The node directory.
    pub root: PathBuf,
    pub command: Command,
    pub role: Role,
    pub config: ResolvedConfig,
    /// The plugin's settings (`null` for none).
    pub settings: serde_json::Value,
    /// The file they were written in (`--settings FILE`), so that an error names its line.
    pub settings_file: Option<Source>,
    pub grants: GrantChoice,
    pub dry_run: bool,
    /// `None`: the plugin's `kube.cluster()` answers `unavailable`.
    pub cluster: Option<Arc<dyn Cluster>>,
    pub console: Console,
    /// `--record FILE`, or the recording a replay answers from.
    pub trace: Option<Trace>,
}

/// The plugin as it described itself, and the digest wasmadm computed.
#[derive(Debug, Clone, Serialize)]
pub struct PluginSummary {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub digest: String,
}

/// What a run of one plugin did.
pub struct Outcome {
    pub plugin: PluginSummary,
    /// The phase name the plugin ran under (its own name when that is a valid phase name).
    pub phase: String,
    pub grants: Grants,
    pub report: RunReport,
    /// Why the run failed; `None` when it succeeded.
    pub error: Option<RunError>,
}

impl Outcome {
    /// kubeadm's exit code: 0, 2 for failed checks, 3 for invalid configuration, 1 else.
    pub fn exit_code(&self) -> i32 {
        self.error.as_ref().map_or(0, RunError::exit_code)
    }

    /// The findings, in order.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.report.findings.iter().map(|(_, f)| f)
    }

    /// Everything as JSON, for machines (`plugin run -o json`, `plugin test`).
    pub fn to_json(&self, cluster_objects: Option<Vec<serde_json::Value>>) -> serde_json::Value {
        serde_json::json!({
            "plugin": self.plugin,
            "phase": self.phase,
            "exitCode": self.exit_code(),
            "error": self.error.as_ref().map(|e| e.to_string()),
            "findings": self.findings().map(finding_json).collect::<Vec<_>>(),
            "effects": self.report.plan.entries().iter().map(effect_json).collect::<Vec<_>>(),
            "outputs": self.report.outputs.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect::<serde_json::Map<_, _>>(),
            "objects": cluster_objects,
        })
    }
}

/// A finding as JSON: `{check, severity, message}`, severity `info`, `warning` or `error`.
pub fn finding_json(f: &Finding) -> serde_json::Value {
    serde_json::json!({
        "check": f.check,
        "severity": severity_name(f.severity),
        "message": f.message,
    })
}

pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// A dry-run plan entry as JSON: its kind, its fields, and kubeadm's `[dryrun]` line.
pub fn effect_json(e: &PlanEntry) -> serde_json::Value {
    let mut v = match e {
        PlanEntry::WriteFile {
            path, mode, contents, ..
        } => serde_json::json!({
            "kind": "writeFile", "path": path, "mode": format!("{mode:04o}"),
            "bytes": contents.len(), "text": String::from_utf8_lossy(contents),
        }),
        PlanEntry::CreateDir { path, mode, .. } => {
            serde_json::json!({"kind": "createDir", "path": path, "mode": format!("{mode:04o}")})
        }
        PlanEntry::Remove { path, recursive, .. } => {
            serde_json::json!({"kind": "remove", "path": path, "recursive": recursive})
        }
        PlanEntry::Exec { command, .. } => serde_json::json!({"kind": "exec", "command": command}),
        PlanEntry::Health { url, .. } => serde_json::json!({"kind": "health", "url": url}),
        PlanEntry::Etcd { action, endpoint, .. } => {
            serde_json::json!({"kind": "etcd", "action": action, "endpoint": endpoint})
        }
        PlanEntry::Api {
            verb,
            resource,
            namespace,
            name,
            ..
        } => serde_json::json!({
            "kind": "api", "verb": verb, "resource": resource, "namespace": namespace, "name": name,
        }),
    };
    v["line"] = e.to_string().into();
    v
}

/// Why a single run could not start (a run that started and failed is an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum SingleError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(
        "plugin {name} asks for grants wasmadm cannot give: {message}; fix its describe() \
         (needs) or run it with --grants FILE"
    )]
    BadRequest { name: String, message: String },
    #[error(transparent)]
    Trace(#[from] crate::runtime::trace::TraceError),
    #[error("cannot make an empty node directory for the replay: {0}")]
    Scratch(std::io::Error),
}

/// The phase of a single run: the component file, no digest to pin, the chosen grants.
fn phase_spec(component: &Path, name: &str, settings: serde_json::Value, grants: Grants) -> PhaseSpec {
    PhaseSpec {
        name: PhaseName::try_from(name.to_string()).unwrap_or_else(|_| PhaseName("plugin".into())),
        component: ComponentRef::File(component.to_path_buf()),
        digest: None,
        enabled: true,
        role: None,
        settings,
        grants,
        limits: Limits::default(),
    }
}

/// A pipeline of this one phase, for `command`.
fn pipeline_of(command: Command, phase: PhaseSpec) -> Result<Pipeline, PipelineError> {
    let mut pipeline = Pipeline::parse(
        "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\n",
        Path::new("<single plugin>"),
    )?;
    let phases = Phases(vec![phase]);
    match command {
        Command::Init => pipeline.init = phases,
        Command::Join => pipeline.join = phases,
        Command::Reset => pipeline.reset = phases,
    }
    Ok(pipeline)
}

/// Loads a component file (no digest to match) and asks it to describe itself, with no grants.
pub fn describe(runtime: &Runtime, root: &Path, component: &Path) -> Result<Described, RunError> {
    let dir = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority()).map_err(|e| {
        RunError::Root {
            path: root.to_path_buf(),
            message: format!("{e} (give the plugin's node directory with --root)"),
        }
    })?;
    let spec = phase_spec(component, "plugin", serde_json::Value::Null, Grants::default());
    invocation::describe(runtime, Arc::new(dir), &spec)
}

/// Describes the plugin, then runs it once with the chosen grants.
pub fn run(runtime: &Runtime, run: SingleRun) -> Result<Outcome, SingleError> {
    let planned = describe(runtime, &run.root, &run.component)?;
    let info = &planned.info;
    let grants = match run.grants {
        GrantChoice::Requested => {
            Grants::from_request(&info.needs).map_err(|message| SingleError::BadRequest {
                name: info.name.clone(),
                message,
            })?
        }
        GrantChoice::Given(g) => g,
    };
    let spec = phase_spec(&run.component, &info.name, run.settings, grants.clone());
    let phase = spec.name.0.clone();
    let mut pipeline = pipeline_of(run.command, spec)?;
    pipeline.source = run.settings_file;
    let runner = invocation::runner(runtime, &pipeline, run.command, &run.config);
    let run_spec = RunSpec {
        command: run.command,
        role: run.role,
        root: run.root.clone(),
        dry_run: run.dry_run,
        skip_phases: Vec::new(),
        implied_skips: Vec::new(),
        only: None,
        config: run.config,
        cluster: run.cluster,
        console: run.console,
        facts: crate::facts::inputs(&run.root),
        trace: run.trace,
    };
    let mut report = RunReport::default();
    let error = invocation::run_into(&runner, &pipeline, &run_spec, &mut report).err();
    Ok(Outcome {
        plugin: PluginSummary {
            name: info.name.clone(),
            version: info.version.clone(),
            summary: info.summary.clone(),
            digest: planned.plugin.digest.clone(),
        },
        phase,
        grants,
        report,
        error,
    })
}
