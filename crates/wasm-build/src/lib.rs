//! Build-script helper: compiles guest crates of this workspace to `wasm32-wasip2` components.
//!
//! `cargo build` of the host must produce everything, plugins included, with no manual step. A
//! build script therefore runs a nested `cargo build --target wasm32-wasip2 --release` for the
//! guest packages, in a target directory of its own beside the outer one (so the two cargo
//! processes never wait on each other's lock), and copies the resulting `.wasm` files to
//! `OUT_DIR`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Rust target every plugin is built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The `cargo` arguments that build a plain library crate as a component: plugin crates stay
/// libraries (so they build and test natively), and the component is made with `--crate-type
/// cdylib`. Shared with `wasmadm plugin build`, which builds authors' crates the same way.
pub const COMPONENT_ARGS: [&str; 7] = [
    "rustc",
    "--release",
    "--lib",
    "--crate-type",
    "cdylib",
    "--target",
    TARGET,
];

/// Builds `packages` (cargo package names) as components and returns, per package, the path of its
/// `.wasm` file in `OUT_DIR` (named `<package>.wasm`).
///
/// Panics with a message that says what to do: build scripts report failure by panicking.
pub fn build_components(packages: &[&str]) -> Vec<(String, PathBuf)> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo"));
    let workspace = workspace_root(&manifest_dir);
    let target_dir = guest_target_dir(&out_dir);

    for dir in ["wit", "plugins", "crates", "tests/plugins"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    // Plugin crates are plain libraries (so the workspace builds and tests them natively); the
    // component is made here with `cargo rustc --crate-type cdylib`, one package per call.
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    const TARGET_RUSTFLAGS: &str = "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS";
    for package in packages {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&workspace)
            .args(COMPONENT_ARGS)
            .args(["-p", package, "--target-dir"])
            .arg(&target_dir)
            // 64x64->128-bit multiplies as one instruction (`i64.mul_wide_u`) instead of a
            // libcall: the big-integer arithmetic of RSA and ECDSA is several times faster. The
            // host enables the proposal (`Config::wasm_wide_arithmetic`).
            .env(TARGET_RUSTFLAGS, "-Ctarget-feature=+wide-arithmetic")
            .env("CARGO_PROFILE_RELEASE_LTO", "fat")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
        // The outer cargo's settings are for the host target: flags, wrappers (clippy-driver)
        // and profile choices must not leak into the guest build.
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            cmd.env_remove(var);
        }
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo for plugin {package}: {e}"));
        if !status.success() {
            panic!(
                "building plugin {package} failed ({status}). If the message above says the target is \
                 missing, run `rustup target add {TARGET}`."
            );
        }
    }

    packages
        .iter()
        .map(|package| {
            let artifact = package.replace('-', "_");
            let built = target_dir
                .join(TARGET)
                .join("release")
                .join(format!("{artifact}.wasm"));
            let dest = out_dir.join(format!("{package}.wasm"));
            std::fs::copy(&built, &dest)
                .unwrap_or_else(|e| panic!("plugin {package}: cannot copy {}: {e}", built.display()));
            (package.to_string(), dest)
        })
        .collect()
}

/// The workspace root: the nearest ancestor of `start` holding a `Cargo.lock` or a `[workspace]`.
fn workspace_root(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .map(|text| text.contains("[workspace]"))
                .unwrap_or(false)
        })
        .unwrap_or(start)
        .to_path_buf()
}

/// `<outer target dir>/wasm-plugins`: shared by every build script and every profile, so the
/// guests are compiled once, not once per host build configuration.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    // OUT_DIR = <target>/<profile>/build/<pkg>-<hash>/out (or <target>/<triple>/<profile>/...).
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map(|target| target.join("wasm-plugins"))
        .unwrap_or_else(|| out_dir.join("wasm-plugins"))
}
