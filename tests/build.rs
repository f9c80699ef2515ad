//! Builds the test-only plugins (`tests/plugins/*`) and tells the tests where they are; enables the
//! end-to-end control-plane tests when real binaries are available.

use std::path::Path;

/// The binaries the end-to-end tests start, in controller-runtime's envtest layout
/// (`$KUBEBUILDER_ASSETS/<binary>`), plus the two that envtest does not ship by default.
const CONTROL_PLANE_BINARIES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

fn main() {
    for (package, path) in wasm_build::build_components(&["sandbox-probe", "legacy-probe"]) {
        let var = package.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env={var}_WASM={}", path.display());
    }

    println!("cargo::rustc-check-cfg=cfg(kubebuilder_assets)");
    println!("cargo:rerun-if-env-changed=KUBEBUILDER_ASSETS");
    // Not set: the tests say why they are ignored in `cargo test`'s own output.
    let Ok(dir) = std::env::var("KUBEBUILDER_ASSETS") else {
        return;
    };
    let missing: Vec<&str> = CONTROL_PLANE_BINARIES
        .into_iter()
        .filter(|b| !Path::new(&dir).join(b).is_file())
        .collect();
    if missing.is_empty() {
        println!("cargo:rustc-cfg=kubebuilder_assets");
        for b in CONTROL_PLANE_BINARIES {
            println!("cargo:rerun-if-changed={dir}/{b}");
        }
    } else {
        println!(
            "cargo:warning=end-to-end control-plane tests skipped: KUBEBUILDER_ASSETS={dir} lacks {}",
            missing.join(", ")
        );
    }
}
