//! Builds the default plugins (`plugins/*`) to components and embeds them: a plain `cargo build`
//! produces a single `wasmadm` binary that needs nothing else.

fn main() {
    wasm_build::build_components(&[
        "wasmadm-preflight",
        "wasmadm-certs",
        "wasmadm-kubeconfig",
        "wasmadm-etcd",
        "wasmadm-control-plane",
        "wasmadm-kubelet-start",
        "wasmadm-upload-config",
        "wasmadm-mark-control-plane",
        "wasmadm-kubelet-finalize",
        "wasmadm-bootstrap-token",
        "wasmadm-show-join-command",
        "wasmadm-upload-certs",
        "wasmadm-addon",
        "wasmadm-wait-control-plane",
    ]);
}
