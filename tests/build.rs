//! Builds the test-only plugins (`tests/plugins/*`) and tells the tests where they are.

fn main() {
    for (package, path) in wasm_build::build_components(&["sandbox-probe", "legacy-probe"]) {
        let var = package.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env={var}_WASM={}", path.display());
    }
}
