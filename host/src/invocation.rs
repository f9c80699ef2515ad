//! From a command's flags to a [`RunSpec`]: which cluster the phases talk to, which role the node
//! has, which phases are skipped. Each decision is made once, here, for the `wasmadm` command line
//! and for the tests that run pipelines through the library (ripgrep's parsed flags → decisions).
//! The pipeline file's phases become the runner's here too ([`runner`]): the runtime knows nothing
//! of the file's shape.

use crate::caps::log::Console;
use crate::cluster::memory::{MemoryCluster, StateError};
use crate::cluster::real::RealCluster;
use crate::cluster::{ApiError, Cluster, simulate};
use crate::command::{Command, Role};
use crate::config::kubeadm::{self, Flags};
use crate::config::pipeline::{ComponentRef, PhaseSpec, Pipeline};
use crate::grants::PhaseGrants;
use crate::runtime::runner::{Described, load_and_describe};
use crate::runtime::{Component, Limits, Phase, RunError, RunReport, RunSpec, Runner, Runtime};
use cap_std::fs::Dir;
use kubeadm_config::ResolvedConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `--cluster`: which Kubernetes API the phases talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterKind {
    /// A real API server when `--root` is `/`, else the in-memory cluster.
    Auto,
    Memory,
    Kubeconfig,
    /// No cluster: the phases' Kubernetes API calls answer `unavailable`.
    None,
}

/// Where the in-memory cluster of a node root keeps its objects between runs.
pub const MEMORY_STATE: &str = crate::cluster::memory::STATE_FILE;

/// The cluster a run talks to, decided from `--cluster`, `--root`, `--kubeconfig` and `--dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A real API server, reached with this kubeconfig (a host path).
    Real { kubeconfig: PathBuf },
    /// wasmadm's in-memory cluster, kept in `state` between runs, or nowhere (a dry run, a test).
    Memory { state: Option<PathBuf> },
}

/// A cluster backend that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The real backend's I/O runtime could not start.
    #[error(transparent)]
    Runtime(#[from] std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
    /// The simulated kubelet could not register its Node.
    #[error(transparent)]
    Node(#[from] ApiError),
}

impl Backend {
    /// `kubeconfig` is a node path (resolved under `root`); a dry run never keeps in-memory state.
    ///
    /// ```
    /// use std::path::{Path, PathBuf};
    /// use wasmadm::invocation::{Backend, ClusterKind};
    /// let node = Path::new("/tmp/node");
    /// assert_eq!(
    ///     Backend::choose(ClusterKind::Auto, Path::new("/"), "/etc/kubernetes/admin.conf", false),
    ///     Backend::Real { kubeconfig: PathBuf::from("/etc/kubernetes/admin.conf") },
    /// );
    /// assert_eq!(
    ///     Backend::choose(ClusterKind::Auto, node, "/etc/kubernetes/admin.conf", true),
    ///     Backend::Memory { state: None },
    /// );
    /// ```
    pub fn choose(kind: ClusterKind, root: &Path, kubeconfig: &str, dry_run: bool) -> Self {
        let real = match kind {
            ClusterKind::Auto => root == Path::new("/"),
            // `None` means no backend; a caller that chooses one anyway gets a memory cluster.
            ClusterKind::Memory | ClusterKind::None => false,
            ClusterKind::Kubeconfig => true,
        };
        if real {
            Self::Real {
                kubeconfig: root.join(kubeconfig.trim_start_matches('/')),
            }
        } else {
            Self::Memory {
                state: (!dry_run).then(|| root.join(MEMORY_STATE)),
            }
        }
    }

    /// Sets up the backend. With the in-memory cluster, `kubelet_node` is the Node whose
    /// registration the host simulates, since no kubelet runs (see
    /// [`simulate::kubelet_registration`] and [`kubelet_node`]).
    pub fn connect(&self, kubelet_node: Option<&str>) -> Result<Arc<dyn Cluster>, BackendError> {
        let memory = match self {
            Self::Real { kubeconfig } => {
                tracing::info!(kubeconfig = %kubeconfig.display(), "using a real API server");
                return Ok(Arc::new(RealCluster::new(kubeconfig.clone())?));
            }
            Self::Memory { state: None } => MemoryCluster::new(),
            Self::Memory { state: Some(state) } => {
                tracing::info!(state = %state.display(), "using the in-memory cluster");
                MemoryCluster::open(state)?
            }
        };
        if let Some(name) = kubelet_node.filter(|n| !n.is_empty()) {
            tracing::info!(
                node = name,
                "in-memory cluster: simulating the kubelet's Node registration"
            );
            simulate::kubelet_registration(&memory, name)?;
        }
        Ok(Arc::new(memory))
    }
}

/// The Node a run's kubelet registers before a phase needs it: this node's on `init`
/// (mark-control-plane waits for it). A joining node's kubelet registers with the cluster it
/// joins, never with this node's in-memory state, and `reset` registers nothing.
pub fn kubelet_node(command: Command, config: &ResolvedConfig) -> Option<&str> {
    match command {
        Command::Init => config.node_registration().map(|n| n.name.as_str()),
        Command::Join | Command::Reset => None,
    }
}

/// The node's role: `init` makes a control-plane node, and so does `join` with `--control-plane`
/// or a `JoinConfiguration` with `controlPlane`, as in kubeadm; any other node is a worker.
pub fn role(command: Command, flags: &Flags, config: &ResolvedConfig) -> Role {
    let joins_control_plane = config.join.as_ref().is_some_and(|j| j.control_plane.is_some());
    match command {
        Command::Init => Role::ControlPlane,
        _ if flags.control_plane || joins_control_plane => Role::ControlPlane,
        _ => Role::Worker,
    }
}

/// What a run needs besides its resolved configuration.
pub struct Invocation<'a> {
    pub command: Command,
    /// The node's root directory (`/` on a real node).
    pub root: &'a Path,
    pub flags: &'a Flags,
    pub dry_run: bool,
    /// `<command> phase <name> [<sub>]`: run only this phase.
    pub only: Option<(String, Option<String>)>,
}

impl Invocation<'_> {
    /// The run specification for `config` (already resolved from the same flags).
    pub fn run_spec(
        self,
        config: ResolvedConfig,
        cluster: Option<Arc<dyn Cluster>>,
        console: Console,
    ) -> RunSpec {
        RunSpec {
            command: self.command,
            role: role(self.command, self.flags, &config),
            root: self.root.to_path_buf(),
            dry_run: self.dry_run,
            skip_phases: kubeadm::skip_phases(&config, &self.flags.skip_phases),
            implied_skips: kubeadm::implied_skips(&config),
            only: self.only,
            config,
            cluster,
            console,
            facts: crate::facts::inputs(self.root),
            trace: None,
        }
    }
}

/// Runs `spec`; see [`run_into`].
pub fn run(runner: &Runner, pipeline: &Pipeline, spec: &RunSpec) -> Result<RunReport, RunError> {
    let mut report = RunReport::default();
    run_into(runner, pipeline, spec, &mut report)?;
    Ok(report)
}

/// Runs `spec` into `report`. When a phase's checks failed, the failure block ends with kubeadm's
/// hint: the runner only knows that checks failed, the command knows how to go on anyway.
pub fn run_into(
    runner: &Runner,
    pipeline: &Pipeline,
    spec: &RunSpec,
    report: &mut RunReport,
) -> Result<(), RunError> {
    let result = runner.run_into(spec, report).map_err(|e| match e {
        // A settings error names the pipeline file's line rather than the JSON's.
        RunError::InvalidConfig { phase, message } => RunError::InvalidConfig {
            message: pipeline
                .settings_error(spec.command, &phase, &message)
                .unwrap_or(message),
            phase,
        },
        other => other,
    });
    if let Err(RunError::ChecksFailed { phase, .. }) = &result {
        spec.console.err(&format!(
            "[{phase}] If you know what you are doing, you can make a check non-fatal with \
             `--ignore-preflight-errors=...`"
        ));
    }
    // kubeadm's closing words after a whole join (not after `join phase`).
    if result.is_ok() && spec.command == Command::Join && spec.only.is_none() {
        use kubeadm_bootstrap_token::join as text;
        let done = match spec.role {
            Role::Worker => text::WORKER_JOINED.to_string(),
            Role::ControlPlane => {
                let local_etcd = spec
                    .config
                    .cluster
                    .as_ref()
                    .is_none_or(|c| c.etcd.external.is_none());
                text::control_plane_joined("/etc/kubernetes/admin.conf", local_etcd)
            }
        };
        // The console ends each line itself.
        spec.console.out(done.strip_suffix('\n').unwrap_or(&done));
    }
    result
}

/// The runner of `command`'s enabled phases in `pipeline`, their grants resolved for `config`.
pub fn runner<'a>(
    runtime: &'a Runtime,
    pipeline: &Pipeline,
    command: Command,
    config: &ResolvedConfig,
) -> Runner<'a> {
    Runner {
        runtime,
        phases: pipeline
            .phases(command)
            .iter()
            .filter(|spec| spec.enabled)
            .map(|spec| phase(spec, config))
            .collect(),
        exec_path: pipeline.exec_path.clone(),
    }
}

/// A phase of the pipeline file as the runner takes it.
pub fn phase(spec: &PhaseSpec, config: &ResolvedConfig) -> Phase {
    let limits = &spec.limits;
    Phase {
        name: spec.name.0.clone(),
        component: component(spec),
        role: spec.role,
        settings: spec.settings.clone(),
        grants: PhaseGrants::resolve(&spec.name.0, &spec.grants, config),
        limits: Limits {
            memory: limits.memory.0,
            timeout: limits.timeout.0,
            output: limits.output.0,
            write_bytes: limits.write_bytes.0,
            write_files: limits.write_files,
        },
    }
}

/// Where a phase's component comes from, with the digest the pipeline pins.
pub fn component(spec: &PhaseSpec) -> Component {
    match &spec.component {
        ComponentRef::Builtin(name) => Component::Builtin(name.clone()),
        ComponentRef::File(path) => Component::File {
            path: path.clone(),
            digest: spec.digest.as_ref().map(|d| d.0.clone()),
        },
    }
}

/// Loads the component of a pipeline phase and asks it to describe itself, with no grants.
pub fn describe(runtime: &Runtime, root: Arc<Dir>, spec: &PhaseSpec) -> Result<Described, RunError> {
    load_and_describe(runtime, root, &spec.name.0, &component(spec))
}
