//! Host-side bindings generated from the WIT package in `wit/`.

wasmtime::component::bindgen!({
    world: "phase",
    path: "../wit",
    with: {
        "wasmadm:plugin/kube.client": crate::caps::kube::ClientHandle,
    },
});

pub use self::exports::wasmadm::plugin::plugin::{PhaseContext, PhaseError, PhaseReport, PluginInfo};
pub use self::wasmadm::plugin::types;
