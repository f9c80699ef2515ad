//! The phase runner: kubeadm's workflow semantics over the phases it is given ([`Phase`]), which
//! know nothing of the pipeline file.
//!
//! Phases run in the order given, each in a fresh sandbox with its own grants. `--skip-phases`
//! takes `phase` or `phase/sub-phase` (skipping a parent skips its children); unknown names are
//! an error, as in kubeadm. Check findings are printed kubeadm-style; any error finding stops the
//! run after the phase, with every failure listed.

use super::engine::{LoadError, LoadedPlugin, Runtime, explain_trap};
use super::phase::{Component, Phase};
use super::sandbox::{Limiter, State};
use super::trace::{Trace, TraceError};
use crate::bindings::types::{Command as WitCommand, NodeRole, Severity};
use crate::bindings::{PhaseContext, PhaseError, PluginInfo};
use crate::builtin;
use crate::caps::etcd::EtcdCap;
use crate::caps::exec::{ExecCap, ExecEnv};
use crate::caps::fs::{FsCap, Overlay, WriteQuota};
use crate::caps::health::{self, HealthCap};
use crate::caps::keys::KeysCap;
use crate::caps::kube::KubeCap;
use crate::caps::log::{Budget, Console, LogCap, MAX_FINDINGS, MAX_LINE, PluginOutput};
use crate::caps::plan::Plan;
use crate::cluster::Cluster;
use crate::command::Role;
use crate::util::{terminal_safe, terminal_safe_lines};
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
    /// The trace could not be written, or a replay diverged from the recording.
    #[error(transparent)]
    Trace(#[from] TraceError),
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
    /// `--record FILE`, or the recording a replay answers from.
    pub trace: Option<Trace>,
}

/// A plugin loaded and described.
pub struct Described {
    pub plugin: LoadedPlugin,
    pub info: PluginInfo,
}

/// A phase of the run with its plugin loaded and described.
struct PlannedPhase<'a> {
    phase: &'a Phase,
    plugin: LoadedPlugin,
    info: PluginInfo,
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

/// Runs one command's phases on a [`Runtime`].
pub struct Runner<'a> {
    pub runtime: &'a Runtime,
    /// The command's phases, in order.
    pub phases: Vec<Phase>,
    /// Directories (node view, under `--root`) where `exec` looks up commands, in order.
    pub exec_path: Vec<String>,
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
        files: FsCap {
            phase: "describe".into(),
            root: root.clone(),
            read: vec![],
            write: vec![],
            dry_run: None,
            plan: plan.clone(),
            quota: WriteQuota::new(0, 0),
        },
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
        tape: None,
    }
}

/// Loads a phase's plugin and asks it to describe itself, with no grants.
pub fn load_and_describe(
    runtime: &Runtime,
    root: Arc<Dir>,
    phase: &str,
    component: &Component,
) -> Result<Described, RunError> {
    let load_err = |source| RunError::Load {
        phase: phase.to_string(),
        source,
    };
    let plugin = match component {
        Component::Builtin(name) => {
            let b = builtin::get(name).ok_or_else(|| {
                load_err(LoadError::Invalid {
                    name: format!("builtin:{name}"),
                    message: "no such built-in plugin".into(),
                })
            })?;
            runtime.load_bytes(&format!("builtin:{name}"), b.wasm, b.digest())
        }
        Component::File { path, digest } => runtime.load_file(path, digest.as_deref()),
    }
    .map_err(load_err)?;
    let info = runtime
        .describe(&plugin, bare_state(root))
        .map(safe_info)
        .map_err(|message| RunError::PhaseFailed {
            phase: phase.to_string(),
            message: format!(
                "{} failed to describe itself: {}",
                plugin.source,
                terminal_safe(&message, MAX_LINE)
            ),
        })?;
    Ok(Described { plugin, info })
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
    /// Loads and describes every phase for `role`.
    fn plan(&self, role: Role, root: Arc<Dir>) -> Result<Vec<PlannedPhase<'_>>, RunError> {
        self.phases
            .iter()
            .filter(|p| p.role.is_none_or(|r| r == role))
            .map(|phase| {
                let Described { plugin, info } =
                    load_and_describe(self.runtime, root.clone(), &phase.name, &phase.component)?;
                Ok(PlannedPhase { phase, plugin, info })
            })
            .collect()
    }

    /// Runs the phases for `spec`.
    pub fn run(&self, spec: &RunSpec) -> Result<RunReport, RunError> {
        let mut report = RunReport::default();
        self.run_into(spec, &mut report)?;
        Ok(report)
    }

    /// Runs the phases for `spec` into `report`, which keeps what the phases did
    /// (findings, plan, outputs) also when the run fails.
    pub fn run_into(&self, spec: &RunSpec, report: &mut RunReport) -> Result<(), RunError> {
        let root = open_root(&spec.root)?;
        let phases = self.plan(spec.role, root.clone())?;
        let known = |entry: &String| {
            let name = entry.split('/').next().unwrap_or_default();
            phases.iter().any(|p| {
                p.phase.name == *entry
                    || p.phase.name == name
                    || p.phase.name.starts_with(&format!("{name}/"))
            })
        };
        let mut skip = spec.skip_phases.clone();
        skip.extend(spec.implied_skips.iter().filter(|e| known(e)).cloned());
        let selection = select(&phases, &skip, spec.only.as_ref())?;

        let overlay = spec.dry_run.then(|| Arc::new(Mutex::new(Overlay::default())));
        for (phase, subs) in phases.iter().zip(selection) {
            let Some(sub_phases) = subs else {
                tracing::info!(phase = %phase.phase.name, "skipping phase");
                continue;
            };
            let started = std::time::Instant::now();
            self.run_phase(spec, phase, sub_phases, root.clone(), overlay.clone(), report)?;
            let took = started.elapsed();
            tracing::debug!(phase = %phase.phase.name, ?took, "phase finished");
            report.phases_run.push(phase.phase.name.clone());
            report.timings.push((phase.phase.name.clone(), took));
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
        phase: &PlannedPhase<'_>,
        sub_phases: Vec<String>,
        root: Arc<Dir>,
        overlay: Option<Arc<Mutex<Overlay>>>,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        let name = phase.phase.name.clone();
        // Whatever the plugin hands back is printed: made terminal-safe and bounded by its
        // output limit (at least a line, so the reason is never lost).
        let max_message = (limits_output(phase)).clamp(256, MAX_LINE);
        let failed = |message: String| RunError::PhaseFailed {
            phase: name.clone(),
            message: terminal_safe_lines(&message, max_message),
        };
        let config = serde_json::to_string(&spec.config).map_err(|e| failed(e.to_string()))?;
        let mut context = PhaseContext {
            command: spec.command.into(),
            phase: name.clone(),
            sub_phases,
            role: spec.role.into(),
            dry_run: spec.dry_run,
            config,
            settings: phase.phase.settings.to_string(),
            inputs: spec.facts.iter().chain(&report.outputs).cloned().collect(),
        };
        let tape = match &spec.trace {
            Some(trace) => {
                Some(trace.start(&name, &phase.plugin.source, &phase.plugin.digest, &mut context)?)
            }
            None => None,
        };
        let limits = &phase.phase.limits;
        let mut state = self.sandbox(spec, phase.phase, root, overlay, &report.plan);
        state.tape = tape;
        let (stdout, stderr) = (state.stdout.clone(), state.stderr.clone());
        let deadline = std::time::Instant::now() + limits.timeout;
        let mut store = self.runtime.store(state, limits.timeout);
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
        let result = result.map_err(|e| explain_trap(&e, &store.data().limiter, limits.timeout));
        if let Some(tape) = &mut store.data_mut().tape {
            let outcome = match &result {
                Ok(returned) => serde_json::json!({ "returned": returned }),
                Err(trapped) => serde_json::json!({ "trapped": trapped }),
            };
            tape.finish(outcome)?;
        }
        let outcome = result.map_err(failed)?;
        let phase_report = match outcome {
            Ok(r) => r,
            Err(PhaseError::InvalidConfig(message)) => {
                return Err(RunError::InvalidConfig {
                    phase: name,
                    message: terminal_safe_lines(&message, max_message),
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
        phase: &Phase,
        root: Arc<Dir>,
        overlay: Option<Arc<Mutex<Overlay>>>,
        plan: &Plan,
    ) -> State {
        let name = phase.name.as_str();
        let grants = phase.grants.clone();
        let budget = Budget::new(name, phase.limits.output as usize);
        let stdout = PluginOutput::new(name, budget.clone(), false);
        let stderr = PluginOutput::new(name, budget.clone(), true);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false);
        for (name, value) in grants.env {
            wasi.env(name, value);
        }
        State {
            wasi: wasi.build(),
            table: Default::default(),
            limiter: Limiter {
                memory_bytes: phase.limits.memory as usize,
                memory_exceeded: false,
            },
            keys: KeysCap::new(name, grants.keys),
            etcd: EtcdCap::new(name, grants.etcd, root.clone(), spec.dry_run, plan.clone()),
            health: HealthCap::new(
                name,
                grants.health,
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
            files: FsCap {
                phase: name.into(),
                root: root.clone(),
                read: grants.read,
                write: grants.write,
                dry_run: overlay,
                plan: plan.clone(),
                quota: WriteQuota::new(phase.limits.write_bytes, phase.limits.write_files),
            },
            exec: ExecCap::new(
                name,
                ExecEnv {
                    root,
                    root_path: spec.root.clone(),
                    exec_path: self.exec_path.clone(),
                    dry_run: spec.dry_run,
                    plan: plan.clone(),
                },
                grants.exec,
                phase.limits.timeout,
                phase.limits.output as usize,
            ),
            kube: KubeCap::new(
                name,
                grants.kube,
                spec.cluster.clone(),
                spec.root.clone(),
                spec.dry_run,
                plan.clone(),
            )
            .with_servers(grants.connect),
            log: LogCap::new(name, spec.console.clone(), budget),
            stdout,
            stderr,
            tape: None,
        }
    }
}

/// A phase's output limit, in bytes.
fn limits_output(phase: &PlannedPhase<'_>) -> usize {
    usize::try_from(phase.phase.limits.output).unwrap_or(usize::MAX)
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
    phases: &[PlannedPhase<'_>],
    skip: &[String],
    only: Option<&(String, Option<String>)>,
) -> Result<Vec<Option<Vec<String>>>, RunError> {
    let outline: Vec<(&str, Vec<&str>)> = phases
        .iter()
        .map(|p| {
            (
                p.phase.name.as_str(),
                p.info.sub_phases.iter().map(|s| s.name.as_str()).collect(),
            )
        })
        .collect();
    select_in(&outline, skip, only)
}

/// [`select`] over the phases' names and sub-phases. A phase named `group/name` is the sub-phase
/// `name` of phase `group` (kubeadm's `control-plane-prepare/certs`), run by a plugin of its own:
/// `phase group` runs every member, `phase group name` one member (all of its own sub-phases),
/// and `--skip-phases` takes `group` or `group/name`.
fn select_in(
    phases: &[(&str, Vec<&str>)],
    skip: &[String],
    only: Option<&(String, Option<String>)>,
) -> Result<Vec<Option<Vec<String>>>, RunError> {
    let group_of = |name: &str| name.split_once('/').map(|(g, _)| g.to_string());
    let all_names = || {
        let mut names: Vec<String> = Vec::new();
        for (name, subs) in phases {
            if let Some(group) = group_of(name).filter(|g| !names.contains(g)) {
                names.push(group);
            }
            names.push(name.to_string());
            if group_of(name).is_none() {
                names.extend(subs.iter().map(|s| format!("{name}/{s}")));
            }
        }
        names.join(", ")
    };
    let find = |name: &str| phases.iter().position(|(n, _)| *n == name);
    let members = |group: &str| -> Vec<usize> {
        (0..phases.len())
            .filter(|&i| group_of(phases[i].0).as_deref() == Some(group))
            .collect()
    };
    let has_sub = |i: usize, sub: &str| phases[i].1.contains(&sub);
    let every_sub = |i: usize| -> Vec<String> { phases[i].1.iter().map(|s| s.to_string()).collect() };

    let mut selection: Vec<Option<Vec<String>>> = (0..phases.len()).map(|i| Some(every_sub(i))).collect();

    if let Some((name, sub)) = only {
        let group = members(name);
        let chosen: Vec<(usize, Vec<String>)> = if !group.is_empty() && find(name).is_none() {
            match sub.as_deref() {
                None | Some("all") => group.iter().map(|&i| (i, every_sub(i))).collect(),
                Some(s) => {
                    let i = find(&format!("{name}/{s}")).ok_or_else(|| RunError::InvalidPhaseName {
                        name: format!("{name}/{s}"),
                        hint: format!(
                            "phase {name} has sub-phases: {}",
                            group
                                .iter()
                                .filter_map(|&i| phases[i].0.split_once('/').map(|(_, s)| s))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })?;
                    vec![(i, every_sub(i))]
                }
            }
        } else {
            let i = find(name).ok_or_else(|| RunError::InvalidPhaseName {
                name: name.clone(),
                hint: format!("this pipeline's phases are: {}", all_names()),
            })?;
            let subs = &phases[i].1;
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
                None | Some("all") => every_sub(i),
                Some(s) if has_sub(i, s) => vec![s.to_string()],
                Some(s) => {
                    return Err(RunError::InvalidPhaseName {
                        name: format!("{name}/{s}"),
                        hint: format!("phase {name} has sub-phases: {}", subs.join(", ")),
                    });
                }
            };
            vec![(i, chosen)]
        };
        for slot in selection.iter_mut() {
            *slot = None;
        }
        for (i, subs) in chosen {
            selection[i] = Some(subs);
        }
    }

    for entry in skip
        .iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
    {
        let invalid = || RunError::InvalidPhaseName {
            name: entry.clone(),
            hint: format!("--skip-phases takes names from: {}", all_names()),
        };
        // A group, or a member of one, by its full name.
        let group = members(&entry);
        if !group.is_empty() && find(&entry).is_none() {
            for i in group {
                selection[i] = None;
            }
            continue;
        }
        if let Some(i) = find(&entry).filter(|&i| group_of(phases[i].0).is_some()) {
            selection[i] = None;
            continue;
        }
        let (name, sub) = match entry.split_once('/') {
            Some((n, s)) => (n, Some(s)),
            None => (entry.as_str(), None),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// kubeadm's join as pipeline entries: plain phases, one with sub-phases, and a group whose
    /// members are plugins of their own.
    fn join() -> Vec<(&'static str, Vec<&'static str>)> {
        vec![
            ("preflight", vec![]),
            ("control-plane-prepare/download-certs", vec![]),
            ("control-plane-prepare/certs", vec!["apiserver", "etcd-peer"]),
            ("control-plane-prepare/kubeconfig", vec!["admin", "scheduler"]),
            ("kubelet-start", vec![]),
            ("control-plane-join/mark-control-plane", vec![]),
        ]
    }

    fn chosen(selection: &[Option<Vec<String>>]) -> Vec<(usize, Vec<String>)> {
        selection
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.clone().map(|s| (i, s)))
            .collect()
    }

    fn only(name: &str, sub: Option<&str>) -> (String, Option<String>) {
        (name.to_string(), sub.map(str::to_string))
    }

    #[test]
    fn a_group_runs_whole_or_one_member_at_a_time() {
        let phases = join();
        let whole = select_in(&phases, &[], Some(&only("control-plane-prepare", None))).expect("group");
        assert_eq!(
            chosen(&whole),
            [
                (1, vec![]),
                (2, vec!["apiserver".into(), "etcd-peer".into()]),
                (3, vec!["admin".into(), "scheduler".into()])
            ]
        );
        let all = select_in(&phases, &[], Some(&only("control-plane-prepare", Some("all")))).expect("all");
        assert_eq!(all, whole);
        let one =
            select_in(&phases, &[], Some(&only("control-plane-prepare", Some("certs")))).expect("member");
        assert_eq!(chosen(&one), [(2, vec!["apiserver".into(), "etcd-peer".into()])]);
        let err = select_in(&phases, &[], Some(&only("control-plane-prepare", Some("etcd"))))
            .expect_err("no such member");
        assert!(
            err.to_string().contains("download-certs, certs, kubeconfig"),
            "{err}"
        );
        // A plain phase keeps its own sub-phase selection.
        let plain = select_in(
            &[("certs", vec!["ca", "apiserver"])],
            &[],
            Some(&only("certs", Some("ca"))),
        )
        .expect("plain");
        assert_eq!(chosen(&plain), [(0, vec!["ca".into()])]);
    }

    #[test]
    fn skipping_takes_a_group_or_a_member() {
        let phases = join();
        let skip = |list: &[&str]| {
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            select_in(&phases, &list, None)
        };
        let no_group = skip(&["control-plane-prepare"]).expect("group");
        assert_eq!(
            chosen(&no_group).into_iter().map(|(i, _)| i).collect::<Vec<_>>(),
            [0, 4, 5]
        );
        let no_member = skip(&[
            "control-plane-prepare/certs",
            "control-plane-join/mark-control-plane",
        ])
        .expect("members");
        assert_eq!(
            chosen(&no_member).into_iter().map(|(i, _)| i).collect::<Vec<_>>(),
            [0, 1, 3, 4]
        );
        let err = skip(&["control-plane-prepare/etcd"]).expect_err("unknown");
        assert!(
            err.to_string()
                .contains("control-plane-prepare, control-plane-prepare/download-certs"),
            "{err}"
        );
    }
}
