//! The `certs` phase: kubeadm's PKI under `certificatesDir`, one sub-phase per certificate, in
//! kubeadm's order, with kubeadm's console lines.
//!
//! Existing files are reused when they are valid (a CA: parses, is a CA, its key matches; a
//! leaf: also signed by its CA, not expired, covers the SANs this node needs), so running the
//! phase twice changes nothing. Anything on disk that is not valid is an error naming the file:
//! kubeadm never overwrites a certificate it did not just decide to create. A CA certificate
//! without its key is an external CA: its leaves must already exist and validate.
//!
//! All crypto is `kubeadm-pki` (pure Rust); all file access goes through the `files` capability,
//! whose writes are atomic.
//!
//! On a control-plane `join` (kubeadm's `control-plane-prepare/certs`) it makes this node's
//! certificates with the cluster's CAs (downloaded, or copied by the operator), from the cluster's
//! configuration read as the bootstrap token (`kube.connect`, rules the pipeline grants).

mod phase;

use kubeadm_discovery::SharedPhase;
use kubeadm_pki::kubeadm::{CERTS, SA_SUMMARY};
use wasmadm_plugin_sdk::types::{PhaseContext, PhaseError, PhaseReport, PluginInfo, SubPhase};
use wasmadm_plugin_sdk::{Context, Plugin, done, export_plugin};

/// The node directory the phase reads and writes by default (`certificatesDir` may move it; the
/// pipeline's grant must then follow).
pub const DEFAULT_PKI_DIR: &str = "/etc/kubernetes/pki";

/// Sub-phase names in the order they run.
pub fn sub_phase_names() -> Vec<&'static str> {
    CERTS.iter().map(|d| d.name).chain(["sa"]).collect()
}

struct Certs;

impl Plugin for Certs {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info("certs", "Certificate generation");
        info.sub_phases = CERTS
            .iter()
            .map(|d| SubPhase {
                name: d.name.into(),
                summary: d.summary.into(),
            })
            .chain([SubPhase {
                name: "sa".into(),
                summary: SA_SUMMARY.into(),
            }])
            .collect();
        info.needs.files_read = vec![DEFAULT_PKI_DIR.into()];
        info.needs.files_write = vec![DEFAULT_PKI_DIR.into()];
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let mut ctx = Context::new(&context)?;
        let (joining, outputs) = match kubeadm_discovery::prepare_shared_phase(&mut ctx)? {
            SharedPhase::Worker => return Ok(done()),
            SharedPhase::JoiningControlPlane(outputs) => (true, outputs),
            SharedPhase::Init => (false, Vec::new()),
        };
        let mut report = phase::run(&ctx, joining)?;
        report.outputs.extend(outputs);
        Ok(report)
    }
}

export_plugin!(Certs);
