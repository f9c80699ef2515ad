//! Builds the default plugins (`plugins/*`) to components and embeds them: a plain `cargo build`
//! produces a single `wasmadm` binary that needs nothing else, with each plugin's sha256.

use sha2::{Digest, Sha256};

fn main() {
    let built = wasm_build::build_components(&[
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
    // Each component's digest, computed once here rather than hashing megabytes on every run.
    for (package, path) in built {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let var = package.to_uppercase().replace('-', "_");
        println!(
            "cargo:rustc-env={var}_SHA256={}",
            hex::encode(Sha256::digest(&bytes))
        );
    }
}
