//! From a command's flags to a [`RunSpec`]: which cluster the phases talk to, which role the node
//! has, which phases are skipped. Each decision is made once, here, for the `wasmadm` command line
//! and for the tests that run pipelines through the library (ripgrep's parsed flags → decisions).

use crate::caps::log::Console;
use crate::cluster::memory::{MemoryCluster, StateError};
use crate::cluster::real::RealCluster;
use crate::cluster::{ApiError, Cluster, simulate};
use crate::command::{Command, Role};
use crate::config::kubeadm::{self, Flags};
use crate::runtime::RunSpec;
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
pub const MEMORY_STATE: &str = "var/lib/wasmadm/in-memory-cluster.json";

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

/// The Node a run's kubelet registers: this node's, except on `reset`, which registers nothing.
pub fn kubelet_node(command: Command, config: &ResolvedConfig) -> Option<&str> {
    match command {
        Command::Reset => None,
        _ => config.node_registration().map(|n| n.name.as_str()),
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
