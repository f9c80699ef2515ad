//! Builds the default plugins (`plugins/*`) to components and embeds them: a plain `cargo build`
//! produces a single `wasmadm` binary that needs nothing else.

fn main() {
    wasm_build::build_components(&[
        "wasmadm-preflight",
        "wasmadm-certs",
        "wasmadm-kubeconfig",
        "wasmadm-etcd",
        "wasmadm-control-plane",
        "wasmadm-wait-control-plane",
    ]);
}
