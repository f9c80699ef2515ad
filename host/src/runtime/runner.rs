//! The phase runner: kubeadm's workflow semantics over the pipeline's components.
//!
//! Phases run in pipeline order, each in a fresh sandbox with its own grants. `--skip-phases`
//! takes `phase` or `phase/sub-phase` (skipping a parent skips its children); unknown names are
//! an error, as in kubeadm. Check findings are printed kubeadm-style; any error finding stops the
//! run after the phase, with every failure listed.

use super::engine::{LoadError, LoadedPlugin, Runtime, explain_trap};
use super::sandbox::{Limiter, State};
use crate::bindings::types::{Command as WitCommand, NodeRole, Severity};
use crate::bindings::{PhaseContext, PhaseError, PluginInfo};
use crate::builtin;
use crate::caps::etcd::EtcdCap;
use crate::caps::exec::{ExecCap, ExecEnv};
use crate::caps::fs::{FsCap, Overlay, WriteQuota};
use crate::caps::health::{self, HealthCap};
use crate::caps::keys::KeysCap;
use crate::caps::kube::KubeCap;
use crate::caps::log::{Budget, Console, LogCap, MAX_FINDINGS, MAX_LINE, PluginOutput, terminal_safe};
use crate::caps::plan::Plan;
use crate::cluster::Cluster;
use crate::config::pipeline::{ComponentRef, Grants, PhaseSpec, Pipeline, Role};
use cap_std::fs::Dir;
use kubeadm_config::ResolvedConfig;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi::WasiCtxBuilder;

pub use crate::command::Command;

/// Why a run stopped. [`RunError::exit_code`] maps it to kubeadm's exit codes.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Checks reported errors (already printed, kubeadm-style).
    #[error("error execution phase {phase}: {phase} checks failed")]
    ChecksFailed {
        phase: String,
        failures: Vec<(String, String)>,
    },
    /// The configuration was refused by a phase.
    #[error("error execution phase {phase}: invalid configuration: {message}")]
    InvalidConfig { phase: String, message: String },
    /// A phase failed, was denied a capability it needed, or broke a limit.
    #[error("error execution phase {phase}: {message}")]
    PhaseFailed { phase: String, message: String },
    /// A name in `--skip-phases` or `phase <name>` that the pipeline does not have.
    #[error("invalid phase name {name:?}: {hint}")]
    InvalidPhaseName { name: String, hint: String },
    #[error("phase {phase}: {source}")]
    Load {
        phase: String,
        #[source]
        source: LoadError,
    },
    #[error("root directory {path}: {message}")]
    Root { path: PathBuf, message: String },
}

impl RunError {
    /// kubeadm's convention: 2 for failed preflight checks, 3 for invalid configuration, 1 else.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::ChecksFailed { .. } => 2,
            RunError::InvalidConfig { .. } | RunError::InvalidPhaseName { .. } => 3,
            _ => 1,
        }
    }
}

/// What to run and against what.
pub struct RunSpec {
    pub command: Command,
    pub role: Role,
    /// The node's root directory (`/` on a real node).
    pub root: PathBuf,
    pub dry_run: bool,
    /// `--skip-phases` (already merged with the configuration's `skipPhases`).
    pub skip_phases: Vec<String>,
    /// Skips implied by the configuration (`dns.disabled`); ignored when the phase is absent.
    pub implied_skips: Vec<String>,
    /// `wasmadm init phase <name> [<sub>]`: run only this phase (and sub-phase, or `all`).
    pub only: Option<(String, Option<String>)>,
    pub config: ResolvedConfig,
    pub cluster: Option<Arc<dyn Cluster>>,
    pub console: Console,
    /// Facts about the node every phase gets as inputs (`node.hostname`, see [`crate::facts`]).
    pub facts: Vec<(String, String)>,
}

/// A phase of the run with its plugin loaded and described.
pub struct PlannedPhase {
    pub spec: PhaseSpec,
    pub plugin: LoadedPlugin,
    pub info: PluginInfo,
}

/// What a finished run leaves: the dry-run plan and every phase's outputs.
#[derive(Default)]
pub struct RunReport {
    pub phases_run: Vec<String>,
    /// How long each phase that ran took (instantiation and the plugin's `run`), in order.
    pub timings: Vec<(String, std::time::Duration)>,
    pub plan: Plan,
    pub outputs: Vec<(String, String)>,
    /// Every finding of the phases that ran, with its phase, in order (as kept by `log`).
    pub findings: Vec<(String, crate::bindings::types::Finding)>,
}

/// Runs pipelines on a [`Runtime`].
pub struct Runner<'a> {
    pub runtime: &'a Runtime,
    pub pipeline: &'a Pipeline,
}

/// A sandbox with no grants and no output, for `describe` (and for benchmarks).
pub fn bare_state(root: Arc<Dir>) -> State {
    let budget = Budget::new("describe", 64 << 10);
    let plan = Plan::default();
    State {
        wasi: WasiCtxBuilder::new().allow_tcp(false).allow_udp(false).build(),
        table: Default::default(),
        limiter: Limiter {
            memory_bytes: 64 << 20,
            memory_exceeded: false,
        },
        files: FsCap::new(
            "describe",
            root.clone(),
            vec![],
            vec![],
            None,
            plan.clone(),
            WriteQuota::new(0, 0),
        ),
        exec: ExecCap::new(
            "describe",
            ExecEnv {
                root: root.clone(),
                root_path: PathBuf::from("/nonexistent"),
                exec_path: vec![],
                dry_run: true,
                plan: plan.clone(),
            },
            vec![],
            Duration::from_secs(1),
            0,
        ),
        kube: KubeCap::new("describe", vec![], None, PathBuf::new(), true, plan.clone()),
        health: HealthCap::new(
            "describe",
            vec![],
            root.clone(),
            health::Mode::DryRun,
            plan.clone(),
        ),
        keys: KeysCap::new("describe", 0),
        etcd: EtcdCap::new("describe", None, root.clone(), true, plan),
        log: LogCap::new("describe", Console::buffer().0, budget.clone()),
        stdout: PluginOutput::new("describe", budget.clone(), false),
        stderr: PluginOutput::new("describe", budget, true),
    }
}

/// Loads a plugin and asks it to describe itself, with no grants.
pub fn load_and_describe(
    runtime: &Runtime,
    root: Arc<Dir>,
    spec: &PhaseSpec,
) -> Result<PlannedPhase, RunError> {
    let load_err = |source| RunError::Load {
        phase: spec.name.0.clone(),
        source,
    };
    let plugin = match &spec.component {
        ComponentRef::Builtin(name) => {
            let b = builtin::get(name).ok_or_else(|| {
                load_err(LoadError::Invalid {
                    name: format!("builtin:{name}"),
                    message: "no such built-in plugin".into(),
                })
            })?;
            runtime.load_bytes(&format!("builtin:{name}"), b.wasm, b.digest())
        }
        ComponentRef::File(path) => runtime.load_file(path, spec.digest.as_ref().map(|d| d.0.as_str())),
    }
    .map_err(load_err)?;
    let info = runtime
        .describe(&plugin, bare_state(root))
        .map(safe_info)
        .map_err(|message| RunError::PhaseFailed {
            phase: spec.name.0.clone(),
            message: format!(
                "{} failed to describe itself: {}",
                plugin.source,
                terminal_safe(&message, MAX_LINE)
            ),
        })?;
    Ok(PlannedPhase {
        spec: spec.clone(),
        plugin,
        info,
    })
}

fn open_root(root: &std::path::Path) -> Result<Arc<Dir>, RunError> {
    Dir::open_ambient_dir(root, cap_std::ambient_authority())
        .map(Arc::new)
        .map_err(|e| RunError::Root {
            path: root.to_path_buf(),
            message: format!("{e} (give an existing directory with --root)"),
        })
}

impl Runner<'_> {
    /// Loads and describes every enabled phase of `command` for `role`.
    pub fn plan(&self, command: Command, role: Role, root: Arc<Dir>) -> Result<Vec<PlannedPhase>, RunError> {
        self.pipeline
            .phases(command)
            .iter()
            .filter(|p| p.enabled && p.role.is_none_or(|r| r == role))
            .map(|spec| load_and_describe(self.runtime, root.clone(), spec))
            .collect()
    }

    /// Runs the pipeline of `spec.command`.
    pub fn run(&self, spec: &RunSpec) -> Result<RunReport, RunError> {
        let mut report = RunReport::default();
        self.run_into(spec, &mut report)?;
        Ok(report)
    }

    /// Runs the pipeline of `spec.command` into `report`, which keeps what the phases did
    /// (findings, plan, outputs) also when the run fails.
    pub fn run_into(&self, spec: &RunSpec, report: &mut RunReport) -> Result<(), RunError> {
        let root = open_root(&spec.root)?;
        let phases = self.plan(spec.command, spec.role, root.clone())?;
        let known = |entry: &String| {
            let name = entry.split('/').next().unwrap_or_default();
            phases.iter().any(|p| p.spec.name.0 == name)
        };
        let mut skip = spec.skip_phases.clone();
        skip.extend(spec.implied_skips.iter().filter(|e| known(e)).cloned());
        let selection = select(&phases, &skip, spec.only.as_ref())?;

        let overlay = spec.dry_run.then(|| Arc::new(Mutex::new(Overlay::default())));
        for (phase, subs) in phases.iter().zip(selection) {
            let Some(sub_phases) = subs else {
                tracing::info!(phase = %phase.spec.name, "skipping phase");
                continue;
            };
            let started = std::time::Instant::now();
            self.run_phase(spec, phase, sub_phases, root.clone(), overlay.clone(), report)?;
            let took = started.elapsed();
            tracing::debug!(phase = %phase.spec.name, ?took, "phase finished");
            report.phases_run.push(phase.spec.name.0.clone());
            report.timings.push((phase.spec.name.0.clone(), took));
        }
        if spec.dry_run {
            for entry in report.plan.entries() {
                spec.console.out(&entry.to_string());
            }
        }
        Ok(())
    }

    fn run_phase(
        &self,
        spec: &RunSpec,
        phase: &PlannedPhase,
        sub_phases: Vec<String>,
        root: Arc<Dir>,
        overlay: Option<Arc<Mutex<Overlay>>>,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        let name = phase.spec.name.0.clone();
        // Whatever the plugin hands back is printed: made terminal-safe and bounded by its
        // output limit (at least a line, so the reason is never lost).
        let max_message = (limits_output(phase)).clamp(256, MAX_LINE);
        let failed = |message: String| RunError::PhaseFailed {
            phase: name.clone(),
            message: terminal_safe(&message, max_message),
        };
        let config = serde_json::to_string(&spec.config).map_err(|e| failed(e.to_string()))?;
        let context = PhaseContext {
            command: spec.command.into(),
            phase: name.clone(),
            sub_phases,
            role: spec.role.into(),
            dry_run: spec.dry_run,
            config,
            settings: phase.spec.settings.to_string(),
            inputs: spec.facts.iter().chain(&report.outputs).cloned().collect(),
        };
        let limits = &phase.spec.limits;
        let state = self.sandbox(spec, &phase.spec, root, overlay, &report.plan);
        let (stdout, stderr) = (state.stdout.clone(), state.stderr.clone());
        let deadline = std::time::Instant::now() + limits.timeout.0;
        let mut store = self.runtime.store(state, limits.timeout.0);
        tracing::debug!(phase = %name, plugin = %phase.plugin.source, "running phase");
        let result = crate::deadline::scope(deadline, || {
            phase
                .plugin
                .pre
                .instantiate(&mut store)
                .and_then(|instance| instance.wasmadm_plugin_plugin().call_run(&mut store, &context))
        });
        stdout.finish();
        stderr.finish();
        // What was reported is kept in the report also when the phase then fails.
        let kept = store.data().log.findings.len();
        report.findings.extend(
            store
                .data()
                .log
                .findings
                .iter()
                .map(|f| (name.clone(), f.clone())),
        );
        let outcome =
            result.map_err(|e| failed(explain_trap(&e, &store.data().limiter, limits.timeout.0)))?;
        let phase_report = match outcome {
            Ok(r) => r,
            Err(PhaseError::InvalidConfig(message)) => {
                return Err(RunError::InvalidConfig {
                    phase: name,
                    message: terminal_safe(&message, max_message),
                });
            }
            Err(PhaseError::Denied(message) | PhaseError::Failed(message)) => return Err(failed(message)),
        };

        // Findings returned at the end are handled exactly like those reported during the call.
        let log = &mut store.data_mut().log;
        for f in phase_report.findings {
            log.report(f);
        }
        report
            .findings
            .extend(log.findings[kept..].iter().map(|f| (name.clone(), f.clone())));
        let mut failures: Vec<(String, String)> = log
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.check.clone(), f.message.clone()))
            .collect();
        if log.dropped_errors > 0 {
            failures.push((
                "TooManyFindings".into(),
                format!(
                    "{} more error findings were not kept: a phase keeps at most {MAX_FINDINGS} findings",
                    log.dropped_errors
                ),
            ));
        }
        if !failures.is_empty() {
            spec.console.err(&format!("[{name}] Some fatal errors occurred:"));
            for (check, message) in &failures {
                spec.console.err(&format!("\t[ERROR {check}]: {message}"));
            }
            spec.console.err(&format!(
                "[{name}] If you know what you are doing, you can make a check non-fatal with \
                 `--ignore-preflight-errors=...`"
            ));
            return Err(RunError::ChecksFailed {
                phase: name,
                failures,
            });
        }
        // Outputs are kept for the rest of the run: bounded by the phase's output limit too.
        let published: usize = phase_report.outputs.iter().map(|(k, v)| k.len() + v.len()).sum();
        if published > limits_output(phase) {
            return Err(failed(format!(
                "the phase published {published} bytes of outputs, more than its output limit of {} \
                 bytes (limits.output in the pipeline file)",
                limits_output(phase)
            )));
        }
        report.outputs.extend(
            phase_report
                .outputs
                .into_iter()
                .map(|(k, v)| (format!("{name}.{k}"), v)),
        );
        Ok(())
    }

    /// The sandbox of one phase: its grants, nothing else.
    fn sandbox(
        &self,
        spec: &RunSpec,
        phase: &PhaseSpec,
        root: Arc<Dir>,
        overlay: Option<Arc<Mutex<Overlay>>>,
        plan: &Plan,
    ) -> State {
        let name = phase.name.0.as_str();
        let Grants {
            files,
            exec,
            kube,
            env,
            health: health_rules,
            keys,
            connect,
            etcd,
        } = &phase.grants;
        let budget = Budget::new(name, phase.limits.output.0 as usize);
        let stdout = PluginOutput::new(name, budget.clone(), false);
        let stderr = PluginOutput::new(name, budget.clone(), true);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false);
        for (name, value) in crate::grants::granted_env(env) {
            wasi.env(name, value);
        }
        State {
            wasi: wasi.build(),
            table: Default::default(),
            limiter: Limiter {
                memory_bytes: phase.limits.memory.0 as usize,
                memory_exceeded: false,
            },
            keys: KeysCap::new(name, *keys),
            etcd: EtcdCap::new(
                name,
                etcd.as_deref().cloned(),
                root.clone(),
                spec.dry_run,
                plan.clone(),
            ),
            health: HealthCap::new(
                name,
                crate::grants::health_endpoints(name, health_rules, &spec.config),
                root.clone(),
                if spec.dry_run {
                    health::Mode::DryRun
                } else if spec.cluster.as_ref().is_some_and(|c| c.is_simulated()) {
                    health::Mode::Simulated
                } else {
                    health::Mode::Network
                },
                plan.clone(),
            ),
            files: FsCap::new(
                name,
                root.clone(),
                files.read.iter().map(|g| g.0.clone()).collect(),
                files.write.iter().map(|g| g.0.clone()).collect(),
                overlay,
                plan.clone(),
                WriteQuota::new(phase.limits.write_bytes.0, phase.limits.write_files),
            ),
            exec: ExecCap::new(
                name,
                ExecEnv {
                    root,
                    root_path: spec.root.clone(),
                    exec_path: self.pipeline.exec_path.clone(),
                    dry_run: spec.dry_run,
                    plan: plan.clone(),
                },
                exec.clone(),
                phase.limits.timeout.0,
                phase.limits.output.0 as usize,
            ),
            kube: KubeCap::new(
                name,
                kube.clone(),
                spec.cluster.clone(),
                spec.root.clone(),
                spec.dry_run,
                plan.clone(),
            )
            .with_servers(crate::grants::connect_servers(name, connect, &spec.config)),
            log: LogCap::new(name, spec.console.clone(), budget),
            stdout,
            stderr,
        }
    }
}

/// A phase's output limit, in bytes.
fn limits_output(phase: &PlannedPhase) -> usize {
    usize::try_from(phase.spec.limits.output.0).unwrap_or(usize::MAX)
}

/// What a plugin says about itself, made terminal-safe and bounded: it is printed by
/// `phase list` and `plugin inspect`, where an operator decides what to grant.
fn safe_info(mut info: PluginInfo) -> PluginInfo {
    info.name = terminal_safe(&info.name, 64);
    info.version = terminal_safe(&info.version, 64);
    info.summary = terminal_safe(&info.summary, 256);
    info.sub_phases.truncate(64);
    for sub in &mut info.sub_phases {
        sub.name = terminal_safe(&sub.name, 64);
        sub.summary = terminal_safe(&sub.summary, 256);
    }
    info.settings_example = info
        .settings_example
        .lines()
        .take(200)
        .map(|line| terminal_safe(line, 256))
        .collect::<Vec<_>>()
        .join("\n");
    info
}

/// For each phase, `None` when skipped, else the sub-phases to run.
fn select(
    phases: &[PlannedPhase],
    skip: &[String],
    only: Option<&(String, Option<String>)>,
) -> Result<Vec<Option<Vec<String>>>, RunError> {
    let all_names = || {
        phases
            .iter()
            .flat_map(|p| {
                std::iter::once(p.spec.name.0.clone()).chain(
                    p.info
                        .sub_phases
                        .iter()
                        .map(move |s| format!("{}/{}", p.spec.name.0, s.name)),
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find = |name: &str| phases.iter().position(|p| p.spec.name.0 == name);
    let has_sub = |i: usize, sub: &str| phases[i].info.sub_phases.iter().any(|s| s.name == sub);

    let mut selection: Vec<Option<Vec<String>>> = phases
        .iter()
        .map(|p| Some(p.info.sub_phases.iter().map(|s| s.name.clone()).collect()))
        .collect();

    if let Some((name, sub)) = only {
        let i = find(name).ok_or_else(|| RunError::InvalidPhaseName {
            name: name.clone(),
            hint: format!("this pipeline's phases are: {}", all_names()),
        })?;
        let subs: Vec<&str> = phases[i]
            .info
            .sub_phases
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let chosen = match sub.as_deref() {
            None if !subs.is_empty() => {
                return Err(RunError::InvalidPhaseName {
                    name: name.clone(),
                    hint: format!(
                        "phase {name} has sub-phases: run one of {}, or all",
                        subs.join(", ")
                    ),
                });
            }
            None | Some("all") => subs.iter().map(|s| s.to_string()).collect(),
            Some(s) if has_sub(i, s) => vec![s.to_string()],
            Some(s) => {
                return Err(RunError::InvalidPhaseName {
                    name: format!("{name}/{s}"),
                    hint: format!("phase {name} has sub-phases: {}", subs.join(", ")),
                });
            }
        };
        for (j, slot) in selection.iter_mut().enumerate() {
            *slot = (j == i).then(|| chosen.clone());
        }
    }

    for entry in skip
        .iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
    {
        let (name, sub) = match entry.split_once('/') {
            Some((n, s)) => (n, Some(s)),
            None => (entry.as_str(), None),
        };
        let invalid = || RunError::InvalidPhaseName {
            name: entry.clone(),
            hint: format!("--skip-phases takes names from: {}", all_names()),
        };
        let i = find(name).ok_or_else(invalid)?;
        match sub {
            None => selection[i] = None,
            // kubeadm accepts `<phase>/all` here and then skips nothing: refused with the fix.
            Some("all") => {
                return Err(RunError::InvalidPhaseName {
                    name: entry.clone(),
                    hint: format!(
                        "`all` names no sub-phase to skip (kubeadm would skip nothing); give `{name}` \
                         to skip the whole phase"
                    ),
                });
            }
            Some(s) if has_sub(i, s) => {
                if let Some(list) = &mut selection[i] {
                    list.retain(|x| x != s);
                    if list.is_empty() {
                        selection[i] = None;
                    }
                }
            }
            Some(_) => return Err(invalid()),
        }
    }
    Ok(selection)
}

impl From<Command> for WitCommand {
    fn from(c: Command) -> Self {
        match c {
            Command::Init => WitCommand::Init,
            Command::Join => WitCommand::Join,
            Command::Reset => WitCommand::Reset,
        }
    }
}

impl From<Role> for NodeRole {
    fn from(r: Role) -> Self {
        match r {
            Role::ControlPlane => NodeRole::ControlPlane,
            Role::Worker => NodeRole::Worker,
        }
    }
}
