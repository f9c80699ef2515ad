//! Builds the test-only plugins (`tests/plugins/*`) and tells the tests where they are; enables the
//! end-to-end control-plane tests when real binaries are available.

use std::path::Path;

include!("src/binaries.rs");

fn main() {
    for (package, path) in wasm_build::build_components(&["sandbox-probe", "legacy-probe"]) {
        let var = package.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env={var}_WASM={}", path.display());
    }

    println!("cargo::rustc-check-cfg=cfg(kubebuilder_assets)");
    println!("cargo:rerun-if-changed=src/binaries.rs");
    println!("cargo:rerun-if-env-changed=KUBEBUILDER_ASSETS");
    println!("cargo:rerun-if-env-changed=CI");
    // In CI the end-to-end tests must run: a missing binary fails the build instead of skipping.
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let missing: Vec<&str> = match std::env::var("KUBEBUILDER_ASSETS") {
        Ok(dir) => BINARIES
            .into_iter()
            .filter(|b| !Path::new(&dir).join(b).is_file())
            .collect(),
        Err(_) => BINARIES.to_vec(),
    };
    let dir = std::env::var("KUBEBUILDER_ASSETS").unwrap_or_else(|_| "(not set)".into());
    if missing.is_empty() {
        println!("cargo:rustc-cfg=kubebuilder_assets");
        for b in BINARIES {
            println!("cargo:rerun-if-changed={dir}/{b}");
        }
    } else if ci {
        panic!(
            "CI=true: the end-to-end tests must run, but KUBEBUILDER_ASSETS={dir} lacks {} \
             (.ci/run installs them with ../shared/k8s/install.sh)",
            missing.join(", ")
        );
    } else if std::env::var_os("KUBEBUILDER_ASSETS").is_some() {
        // Not set at all: the tests say why they are ignored in `cargo test`'s own output.
        println!(
            "cargo:warning=end-to-end tests skipped: KUBEBUILDER_ASSETS={dir} lacks {}",
            missing.join(", ")
        );
    }
}
