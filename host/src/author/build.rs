//! `wasmadm plugin build`: a plugin crate to its component, as the host's own plugins are built
//! (a plain library compiled with `--crate-type cdylib` for `wasm32-wasip2`), and the pipeline
//! entry that runs it.

use crate::bindings::PluginInfo;
use crate::config::pipeline::{Digest, Grants};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wasm_build::TARGET;

/// Why no component was built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "{} has no Cargo.toml: give the plugin crate's directory (one made by `wasmadm plugin new`)",
        .0.display()
    )]
    NoManifest(PathBuf),
    #[error("cannot run cargo: {0} (install Rust with rustup: https://rustup.rs)")]
    Spawn(std::io::Error),
    #[error(
        "cargo failed to build the component ({0}); its messages are above. If they say the \
         {TARGET} target may not be installed, run `rustup target add {TARGET}`"
    )]
    Cargo(std::process::ExitStatus),
    #[error(
        "cargo built no .wasm file in {}: is the crate a library (`[lib]`, src/lib.rs)?",
        .0.display()
    )]
    NoArtifact(PathBuf),
}

/// Builds the crate in `dir` and returns the component's path. Cargo's progress and diagnostics
/// go to stderr.
pub fn build(dir: &Path) -> Result<PathBuf, BuildError> {
    if !dir.join("Cargo.toml").is_file() {
        return Err(BuildError::NoManifest(dir.to_path_buf()));
    }
    let output = Command::new("cargo")
        .current_dir(dir)
        .args(wasm_build::COMPONENT_ARGS)
        .args(["--message-format", "json-render-diagnostics"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(BuildError::Spawn)?;
    if !output.status.success() {
        return Err(BuildError::Cargo(output.status));
    }
    // cargo's JSON messages name each artifact it produced.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| BuildError::NoArtifact(dir.to_path_buf()))
}

/// A pipeline entry for a component: its file, digest, the grants it asks for, and its settings
/// example.
#[derive(Serialize)]
struct Entry {
    name: String,
    component: String,
    digest: Digest,
    #[serde(skip_serializing_if = "grants_empty")]
    grants: Grants,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    settings: serde_json::Value,
}

fn grants_empty(g: &Grants) -> bool {
    *g == Grants::default()
}

/// The pipeline entry to paste (a one-item YAML list, under `init:`, `join:` or `reset:`).
pub fn pipeline_entry(info: &PluginInfo, component: &Path, digest: &str) -> Result<String, String> {
    let entry = Entry {
        name: info.name.clone(),
        component: component.display().to_string(),
        digest: Digest(digest.to_string()),
        grants: Grants::from_request(&info.needs)
            .map_err(|e| format!("plugin {} asks for grants wasmadm cannot give: {e}", info.name))?,
        settings: serde_yaml::from_str(&info.settings_example).unwrap_or(serde_json::Value::Null),
    };
    serde_yaml::to_string(&[entry]).map_err(|e| e.to_string())
}
