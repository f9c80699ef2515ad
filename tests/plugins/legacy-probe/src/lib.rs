//! A plugin built against a frozen copy of the `wasmadm:plugin@0.1.0` contract (`wit/` here, as
//! it was before `0.1.1` added `health`). The compatibility test runs it on the current host:
//! wasmtime must link its `@0.1.0` imports and export to the host's `@0.1.x` ones.

wit_bindgen::generate!({
    world: "phase",
    path: "wit",
});

use exports::wasmadm::plugin::plugin::Guest;
use wasmadm::plugin::types::{CapabilityRequest, PhaseContext, PhaseError, PhaseReport, PluginInfo};
use wasmadm::plugin::{files, log};

struct Legacy;

impl Guest for Legacy {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy-probe".into(),
            version: "0.1.0".into(),
            summary: "Built against wasmadm:plugin@0.1.0".into(),
            sub_phases: Vec::new(),
            needs: CapabilityRequest {
                files_read: vec!["/etc/hosts".into()],
                files_write: Vec::new(),
                exec: Vec::new(),
                kube: Vec::new(),
                env: Vec::new(),
            },
            settings_example: String::new(),
        }
    }

    fn run(_context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        log::print("[legacy-probe] running on a newer 0.1.x host");
        let hosts = files::read("/etc/hosts").map_err(|e| PhaseError::Failed(e.message))?;
        Ok(PhaseReport {
            findings: Vec::new(),
            outputs: vec![("hosts-bytes".into(), hosts.len().to_string())],
        })
    }
}

export!(Legacy);
