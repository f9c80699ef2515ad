//! The `kubeconfig` phase: kubeadm's five kubeconfig files under `/etc/kubernetes`, one
//! sub-phase per file, in kubeadm's order, with kubeadm's console lines.
//!
//! Each file embeds the cluster CA and a client certificate signed by it (same key algorithm and
//! leaf validity as the `certs` phase). A file already on disk is reused when it names the same
//! CA and API server and its embedded client certificate is still valid, so a second run
//! changes nothing; anything else on disk is an error naming the file, because silently
//! replacing a credential someone placed there is worse than stopping. With an external CA
//! (`ca.crt` without `ca.key`) nothing can be signed: the files must already be there and valid.
//!
//! All crypto is `kubeadm-pki`; all file access goes through the `files` capability.

pub mod file;
mod phase;

use kubeadm_discovery::SharedPhase;
use wasmadm_plugin_sdk::types::{PhaseContext, PhaseError, PhaseReport, PluginInfo, SubPhase};
use wasmadm_plugin_sdk::{Context, Plugin, export_plugin};

/// Where kubeadm writes kubeconfig files (not configurable in kubeadm either).
pub const KUBECONFIG_DIR: &str = "/etc/kubernetes";

/// The certificates dir the phase reads the CA from by default (`certificatesDir` may move it;
/// the pipeline's grant must then follow).
pub const DEFAULT_PKI_DIR: &str = "/etc/kubernetes/pki";

/// Which API endpoint a file points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `controlPlaneEndpoint`, or the local endpoint when there is none: clients that may run
    /// anywhere (admins, the kubelet).
    ControlPlane,
    /// This node's API server (`advertiseAddress:bindPort`): the control-plane components that
    /// run beside it.
    Local,
}

/// One kubeconfig file of the phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileDef {
    /// The sub-phase name.
    pub name: &'static str,
    /// The file name under [`KUBECONFIG_DIR`].
    pub file: &'static str,
    /// The client certificate's CN; `None` for the kubelet (`system:node:<nodeName>`).
    pub common_name: Option<&'static str>,
    /// The client certificate's organizations (Kubernetes groups).
    pub organizations: &'static [&'static str],
    pub endpoint: Endpoint,
    /// One line for `phase list`, kubeadm's wording.
    pub summary: &'static str,
}

/// The files, in kubeadm's order.
pub const FILES: &[FileDef] = &[
    FileDef {
        name: "admin",
        file: "admin.conf",
        common_name: Some("kubernetes-admin"),
        organizations: &["kubeadm:cluster-admins"],
        endpoint: Endpoint::ControlPlane,
        summary: "Generate a kubeconfig file for the admin to use and for kubeadm itself",
    },
    FileDef {
        name: "super-admin",
        file: "super-admin.conf",
        common_name: Some("kubernetes-super-admin"),
        organizations: &["system:masters"],
        endpoint: Endpoint::ControlPlane,
        summary: "Generate a kubeconfig file for the super-admin",
    },
    FileDef {
        name: "kubelet",
        file: "kubelet.conf",
        common_name: None,
        organizations: &["system:nodes"],
        endpoint: Endpoint::ControlPlane,
        summary: "Generate a kubeconfig file for the kubelet to use *only* for cluster bootstrapping purposes",
    },
    FileDef {
        name: "controller-manager",
        file: "controller-manager.conf",
        common_name: Some("system:kube-controller-manager"),
        organizations: &[],
        endpoint: Endpoint::Local,
        summary: "Generate a kubeconfig file for the controller manager to use",
    },
    FileDef {
        name: "scheduler",
        file: "scheduler.conf",
        common_name: Some("system:kube-scheduler"),
        organizations: &[],
        endpoint: Endpoint::Local,
        summary: "Generate a kubeconfig file for the scheduler to use",
    },
];

/// Sub-phase names in the order they run.
pub fn sub_phase_names() -> Vec<&'static str> {
    FILES.iter().map(|f| f.name).collect()
}

/// The node path of a file.
pub fn path(def: &FileDef) -> String {
    format!("{KUBECONFIG_DIR}/{}", def.file)
}

struct Kubeconfig;

impl Plugin for Kubeconfig {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info(
            "kubeconfig",
            "Generate all kubeconfig files necessary to establish the control plane and the admin kubeconfig file",
        );
        info.sub_phases = FILES
            .iter()
            .map(|f| SubPhase {
                name: f.name.into(),
                summary: f.summary.into(),
            })
            .collect();
        info.needs.files_read = vec![DEFAULT_PKI_DIR.into()];
        // The exact files, not all of /etc/kubernetes: the manifests and the PKI are not ours.
        info.needs.files_write = FILES.iter().map(path).collect();
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let mut ctx = Context::new(&context)?;
        let (joining, outputs) = match kubeadm_discovery::prepare_shared_phase(&mut ctx)? {
            SharedPhase::Worker => return Ok(wasmadm_plugin_sdk::done()),
            SharedPhase::JoiningControlPlane(outputs) => (true, outputs),
            SharedPhase::Init => (false, Vec::new()),
        };
        let mut report = phase::run(&ctx, joining)?;
        report.outputs.extend(outputs);
        Ok(report)
    }
}

export_plugin!(Kubeconfig);
