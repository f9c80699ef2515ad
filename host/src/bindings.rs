//! Host-side bindings generated from the WIT package in `wit/`.

wasmtime::component::bindgen!({
    world: "phase",
    path: "../wit",
    with: {
        "wasmadm:plugin/kube.client": crate::caps::kube::ClientHandle,
    },
    // Every host call may trap: a replay stops the plugin at the first call that differs from
    // the recording (see `runtime::trace`).
    imports: { default: trappable },
    // Calls and their results are written to and read from traces as JSON.
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use self::exports::wasmadm::plugin::plugin::{PhaseContext, PhaseError, PhaseReport, PluginInfo};
pub use self::wasmadm::plugin::types;
