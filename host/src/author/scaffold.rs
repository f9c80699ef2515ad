//! `wasmadm plugin new`: a plugin crate that builds and whose tests pass as created.
//!
//! The SDK comes with it: its sources, the WIT contract, the configuration crate it uses and the
//! test harness (`wasmadm-plugin-test`) are
//! embedded in this binary and written under `vendor/wasmadm/` in the repository's own layout
//! (so the SDK's relative paths hold), with manifests whose workspace-inherited fields are
//! filled in from this workspace's. The crate then resolves without this repository, without a
//! published SDK, and exactly against the contract of the host that made it. The workspace's
//! `Cargo.lock` goes with it, so the versions are the ones wasmadm was tested with, and a warm
//! cargo cache needs no network.

use std::path::{Path, PathBuf};

/// What kind of plugin to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A preflight-style check: reads a node file, reports findings.
    Check,
    /// A phase that changes the node: writes a file.
    Phase,
}

/// Why no crate was made. Nothing is left behind in either case.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "plugin name {0:?} is invalid: use lower-case letters, digits and '-', starting with a \
         letter (e.g. vendor-checks); it is the crate's and the phase's name"
    )]
    Name(String),
    #[error("{} already exists: give another name or --dir to a new directory", .0.display())]
    Exists(PathBuf),
    #[error("cannot write the plugin crate under {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../", $path)))),*]
    };
}

/// The sources the SDK needs, by path in this repository. `vendored_files_are_complete` checks
/// that nothing in these directories is missing here.
const VENDORED: &[(&str, &str)] = embed![
    "wit/etcd.wit",
    "wit/exec.wit",
    "wit/files.wit",
    "wit/health.wit",
    "wit/keys.wit",
    "wit/kube.wit",
    "wit/log.wit",
    "wit/types.wit",
    "wit/world.wit",
    "plugins/sdk/src/apply.rs",
    "plugins/sdk/src/context.rs",
    "plugins/sdk/src/findings.rs",
    "plugins/sdk/src/fs.rs",
    "plugins/sdk/src/keys.rs",
    "plugins/sdk/src/lib.rs",
    "plugins/sdk/src/rules.rs",
    "plugins/sdk/src/systemd.rs",
    "crates/kubeadm-config/src/defaults.rs",
    "crates/kubeadm-config/src/endpoint.rs",
    "crates/kubeadm-config/src/kubelet.rs",
    "crates/kubeadm-config/src/lib.rs",
    "crates/kubeadm-config/src/types.rs",
    "crates/kubeadm-config/src/upload.rs",
    "crates/kubeadm-config/src/validate.rs",
    "crates/kubeadm-config/src/yaml.rs",
    "crates/kubeadm-pki/src/cert.rs",
    "crates/kubeadm-pki/src/key.rs",
    "crates/kubeadm-pki/src/kubeadm.rs",
    "crates/kubeadm-pki/src/lib.rs",
    "crates/kubeadm-pki/src/prime.rs",
    "crates/kubeadm-pki/src/rng.rs",
    "crates/wasmadm-plugin-test/src/lib.rs",
];

/// The vendored crates' manifests, rewritten by [`standalone_manifest`].
const MANIFESTS: &[(&str, &str)] = embed![
    "plugins/sdk/Cargo.toml",
    "crates/kubeadm-config/Cargo.toml",
    // The SDK's optional `keys` feature (host-made private keys) brings it.
    "crates/kubeadm-pki/Cargo.toml",
    "crates/wasmadm-plugin-test/Cargo.toml",
];

const WORKSPACE_MANIFEST: &str = include_str!("../../../Cargo.toml");
const WORKSPACE_LOCK: &str = include_str!("../../../Cargo.lock");
const TOOLCHAIN: &str = include_str!("../../../rust-toolchain.toml");

/// Where the SDK goes in a new crate.
pub const VENDOR_DIR: &str = "vendor/wasmadm";

/// The value of `key` in `[section]` of a manifest (the text after `key = `).
fn manifest_value<'a>(manifest: &'a str, section: &str, key: &str) -> Option<&'a str> {
    let header = format!("[{section}]");
    let mut in_section = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == header;
        } else if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim());
        }
    }
    None
}

/// A member's manifest as a standalone one: each `x.workspace = true` replaced by the
/// workspace's value of `x` (from `[workspace.package]` or `[workspace.dependencies]`).
fn standalone_manifest(member: &str) -> String {
    let mut section = String::new();
    member
        .lines()
        .map(|line| {
            let trimmed = line.trim();
            if trimmed.starts_with('[') {
                section = trimmed.to_string();
            }
            let Some(key) = trimmed.strip_suffix(".workspace = true") else {
                return line.to_string();
            };
            let from = if section == "[package]" {
                "workspace.package"
            } else {
                "workspace.dependencies"
            };
            match manifest_value(WORKSPACE_MANIFEST, from, key) {
                Some(value) => format!("{key} = {value}"),
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-')
        && name != "node"
}

/// `vendor-checks` -> `VendorChecks`: kubeadm's style of check names.
fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The files of a new plugin crate, by relative path.
pub fn files(name: &str, kind: Kind) -> Result<Vec<(String, String)>, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::Name(name.to_string()));
    }
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{Name}}", &camel(name))
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace(
                "{{serde}}",
                manifest_value(WORKSPACE_MANIFEST, "workspace.dependencies", "serde").unwrap_or("\"1\""),
            )
            .replace(
                "{{serde_json}}",
                manifest_value(WORKSPACE_MANIFEST, "workspace.dependencies", "serde_json").unwrap_or("\"1\""),
            )
    };
    let mut out = vec![
        ("Cargo.toml".to_string(), fill(CARGO_TOML)),
        ("Cargo.lock".to_string(), WORKSPACE_LOCK.to_string()),
        ("rust-toolchain.toml".to_string(), TOOLCHAIN.to_string()),
        (".gitignore".to_string(), "/target\n".to_string()),
        ("README.md".to_string(), fill(README)),
    ];
    match kind {
        Kind::Check => {
            out.push(("src/lib.rs".into(), fill(CHECK_LIB)));
            out.push(("tests/check.rs".into(), fill(CHECK_TEST)));
            out.push(("cases.yaml".into(), fill(CHECK_CASES)));
            out.push((
                "fixtures/node/proc/sys/kernel/osrelease".into(),
                "6.8.0-45-generic\n".into(),
            ));
        }
        Kind::Phase => {
            out.push(("src/lib.rs".into(), fill(PHASE_LIB)));
            out.push(("tests/phase.rs".into(), fill(PHASE_TEST)));
            out.push(("cases.yaml".into(), fill(PHASE_CASES)));
            out.push(("fixtures/node/proc/sys/kernel/hostname".into(), "node-1\n".into()));
        }
    }
    for (path, text) in VENDORED {
        out.push((format!("{VENDOR_DIR}/{path}"), text.to_string()));
    }
    for (path, text) in MANIFESTS {
        out.push((format!("{VENDOR_DIR}/{path}"), standalone_manifest(text)));
    }
    Ok(out)
}

/// Writes a new plugin crate to `dir`, which must not exist. The crate is written beside it and
/// renamed into place, so a failure leaves nothing.
pub fn create(dir: &Path, name: &str, kind: Kind) -> Result<(), ScaffoldError> {
    let files = files(name, kind)?;
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir.to_path_buf()));
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Write { path, source }
    };
    std::fs::create_dir_all(&parent).map_err(write_err(&parent))?;
    let staged = parent.join(format!(".{name}.wasmadm-plugin-new.{}", std::process::id()));
    std::fs::create_dir(&staged).map_err(write_err(&staged))?;
    let written = files.iter().try_for_each(|(rel, text)| {
        let path = staged.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(write_err(p))?;
        }
        std::fs::write(&path, text).map_err(write_err(&path))
    });
    let result = written.and_then(|()| {
        std::fs::rename(&staged, dir).map_err(|source| ScaffoldError::Write {
            path: dir.to_path_buf(),
            source,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    result
}

const CARGO_TOML: &str = r###"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
publish = false

# A plain library: `cargo test` runs natively, and `wasmadm plugin build` makes the component
# (`cargo rustc --crate-type cdylib --target wasm32-wasip2`). Declaring `crate-type = ["cdylib"]`
# here would make native test binaries fail to link.
[lib]

[dependencies]
# The SDK as the wasmadm that created this crate ships it (see vendor/wasmadm).
wasmadm-plugin-sdk = { path = "vendor/wasmadm/plugins/sdk" }
serde = {{serde}}
serde_json = {{serde_json}}

# A workspace of its own, also when created inside another one.
[workspace]
"###;

const README: &str = r###"# {{name}}

A wasmadm plugin, created by `wasmadm plugin new`.

```sh
cargo test                                   # the logic, natively (no WebAssembly)
wasmadm plugin build                         # the component, its digest and a pipeline entry
wasmadm --root fixtures/node plugin run target/wasm32-wasip2/release/{{crate}}.wasm
wasmadm plugin test cases.yaml               # the component against its table of cases
```

`fixtures/node` is a node directory: the files the plugin reads, at their node paths. The SDK is
in `vendor/wasmadm` (its sources, the WIT contract it implements); `docs/plugins.md` of wasmadm
describes every item.
"###;

const CHECK_CASES: &str = r###"# Table tests of the built component: `wasmadm plugin test cases.yaml`, after
# `wasmadm plugin build`. Each case runs on a fresh copy of `node`; `files` change that copy.
component: target/wasm32-wasip2/release/{{crate}}.wasm
node: fixtures/node
cases:
  - name: the fixture node passes
    expect:
      exitCode: 0
      findings:
        - { check: {{Name}}, severity: info, message: "kernel 6.8.0-45-generic" }
  - name: an old kernel fails the check
    files: { /proc/sys/kernel/osrelease: "4.19.0\n" }
    expect:
      exitCode: 2
      findings:
        - { check: {{Name}}, severity: error, message: "kernel 4.19.0 is older than 5.x (minKernelMajor)" }
  - name: --ignore-preflight-errors makes it a warning
    files: { /proc/sys/kernel/osrelease: "4.19.0\n" }
    ignorePreflightErrors: [{{Name}}]
    expect:
      exitCode: 0
      findings:
        - { check: {{Name}}, severity: warning }
  - name: the setting raises the bar
    settings: { minKernelMajor: 7 }
    expect:
      exitCode: 2
  - name: an unknown setting is refused with its name
    settings: { min_kernel_major: 7 }
    expect:
      exitCode: 3
      error: "unknown field `min_kernel_major`"
"###;

const PHASE_CASES: &str = r###"# Table tests of the built component: `wasmadm plugin test cases.yaml`, after
# `wasmadm plugin build`. Each case runs on a fresh copy of `node`.
component: target/wasm32-wasip2/release/{{crate}}.wasm
node: fixtures/node
cases:
  - name: writes the file for the node
    settings: { greeting: hi }
    expect:
      files:
        /etc/{{name}}/{{name}}.conf: "# written by {{name}}\nnode: node-1\ngreeting: hi\n"
  - name: a dry run writes nothing
    dryRun: true
    expect:
      files: { /etc/{{name}}/{{name}}.conf: null }
  - name: without the write grant the phase is denied
    grants: { files: { read: [/etc] } }
    expect:
      exitCode: 1
      error: "/etc/{{name}}"
"###;

const CHECK_LIB: &str = r###"//! {{name}}: a wasmadm check plugin. It reads the node's kernel release and reports a finding
//! when it is older than the `minKernelMajor` setting.
//!
//! The check is a pure function ([`check`]) over what the plugin read, so `cargo test` tests it
//! natively; [`run`](Plugin::run) only reads the file, calls it and reports.

use wasmadm_plugin_sdk::{Context, Findings, Plugin, export_plugin, fs, types::*};

/// The node file the check reads (also its capability request).
pub const OSRELEASE: &str = "/proc/sys/kernel/osrelease";

/// The check's name, as `[ERROR {{Name}}]` and in `--ignore-preflight-errors`.
pub const CHECK: &str = "{{Name}}";

/// The plugin's settings, from the pipeline's `settings:`. Keys are camelCase, as in kubeadm's
/// files (`minKernelMajor`); an unknown key is an error that names it.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    /// The oldest kernel major version accepted.
    pub min_kernel_major: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self { min_kernel_major: 5 }
    }
}

/// The check: `Some(message)` when the kernel `release` (e.g. `6.8.0-45-generic`) is too old
/// or cannot be read as a version.
pub fn check(release: &str, settings: &Settings) -> Option<String> {
    let release = release.trim();
    let major = release.split('.').next().and_then(|m| m.parse::<u32>().ok());
    match major {
        None => Some(format!("cannot read the kernel version from {release:?}")),
        Some(m) if m < settings.min_kernel_major => Some(format!(
            "kernel {release} is older than {}.x (minKernelMajor)",
            settings.min_kernel_major
        )),
        Some(_) => None,
    }
}

struct {{Name}};

impl Plugin for {{Name}} {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info("{{name}}", "Checks the node's kernel version");
        info.version = env!("CARGO_PKG_VERSION").into();
        info.needs.files_read = vec![OSRELEASE.into()];
        info.settings_example = "# The oldest kernel major version accepted.\nminKernelMajor: 5\n".into();
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        let settings: Settings = ctx.settings()?;
        // Errors of the checks named in --ignore-preflight-errors become warnings.
        let mut findings = Findings::ignoring(&ctx.node_registration().ignore_preflight_errors);
        let release = fs::read_string(OSRELEASE)?;
        match check(&release, &settings) {
            Some(message) => findings.error(CHECK, message),
            None => findings.info(CHECK, format!("kernel {}", release.trim())),
        }
        Ok(findings.into_report())
    }
}

export_plugin!({{Name}});
"###;

const CHECK_TEST: &str = r###"//! The check against the fixture node, natively: no WebAssembly, no wasmadm.

use {{crate}}::{Settings, check};

fn fixture(path: &str) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node").join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

#[test]
fn the_fixture_node_passes() {
    assert_eq!(check(&fixture("proc/sys/kernel/osrelease"), &Settings::default()), None);
}

#[test]
fn an_old_kernel_fails_with_its_version() {
    let settings = Settings { min_kernel_major: 7 };
    let message = check(&fixture("proc/sys/kernel/osrelease"), &settings).expect("a finding");
    assert_eq!(message, "kernel 6.8.0-45-generic is older than 7.x (minKernelMajor)");
}

#[test]
fn settings_keys_are_camel_case_and_unknown_ones_are_refused() {
    let s: Settings = serde_json::from_str(r#"{"minKernelMajor": 6}"#).expect("settings");
    assert_eq!(s.min_kernel_major, 6);
    let e = serde_json::from_str::<Settings>(r#"{"min_kernel_major": 6}"#).expect_err("unknown key");
    assert!(e.to_string().contains("unknown field `min_kernel_major`"), "{e}");
}
"###;

const PHASE_LIB: &str = r###"//! {{name}}: a wasmadm phase plugin. It writes `/etc/{{name}}/{{name}}.conf` from its
//! settings; under `--dry-run` the host records the write in the plan instead.
//!
//! The content is a pure function ([`render`]), so `cargo test` tests it natively.

use wasmadm_plugin_sdk::{Context, Plugin, done, export_plugin, files, types::*};

/// The directory the plugin writes (also its capability request).
pub const DIR: &str = "/etc/{{name}}";
/// The file it writes.
pub const FILE: &str = "/etc/{{name}}/{{name}}.conf";

/// The plugin's settings, from the pipeline's `settings:`. Keys are camelCase; an unknown key is
/// an error that names it.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    /// The line written to the file.
    pub greeting: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self { greeting: "hello".into() }
    }
}

/// The file's content for a node.
pub fn render(node_name: &str, settings: &Settings) -> String {
    format!("# written by {{name}}\nnode: {node_name}\ngreeting: {}\n", settings.greeting)
}

struct {{Name}};

impl Plugin for {{Name}} {
    fn describe() -> PluginInfo {
        let mut info = wasmadm_plugin_sdk::info("{{name}}", "Writes the node's {{name}}.conf");
        info.version = env!("CARGO_PKG_VERSION").into();
        info.needs.files_write = vec![DIR.into()];
        info.settings_example = "# The line written to the file.\ngreeting: hello\n".into();
        info
    }

    fn run(context: PhaseContext) -> Result<PhaseReport, PhaseError> {
        let ctx = Context::new(&context)?;
        let settings: Settings = ctx.settings()?;
        let text = render(&ctx.node_name(), &settings);
        files::write(FILE, text.as_bytes(), 0o644)?;
        wasmadm_plugin_sdk::print(&format!("[{{name}}] Wrote {FILE}"));
        Ok(done())
    }
}

export_plugin!({{Name}});
"###;

const PHASE_TEST: &str = r###"//! The file's content, natively: no WebAssembly, no wasmadm.

use {{crate}}::{Settings, render};

#[test]
fn the_file_names_the_node_and_the_greeting() {
    let text = render("node-1", &Settings::default());
    assert_eq!(text, "# written by {{name}}\nnode: node-1\ngreeting: hello\n");
}

#[test]
fn settings_keys_are_camel_case_and_unknown_ones_are_refused() {
    let s: Settings = serde_json::from_str(r#"{"greeting": "hi"}"#).expect("settings");
    assert_eq!(s.greeting, "hi");
    assert!(serde_json::from_str::<Settings>(r#"{"Greeting": "hi"}"#).is_err());
}
"###;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_files_are_complete() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for dir in [
            "wit",
            "plugins/sdk/src",
            "crates/kubeadm-config/src",
            "crates/kubeadm-pki/src",
            "crates/wasmadm-plugin-test/src",
        ] {
            for entry in std::fs::read_dir(repo.join(dir)).expect("read dir") {
                let name = entry.expect("entry").file_name();
                let path = format!("{dir}/{}", name.to_string_lossy());
                assert!(
                    VENDORED.iter().any(|(p, _)| *p == path),
                    "{path} is not vendored by `plugin new`: add it to VENDORED in host/src/author/scaffold.rs"
                );
            }
        }
    }

    #[test]
    fn vendored_manifests_inherit_nothing_from_the_workspace() {
        for (path, text) in MANIFESTS {
            let standalone = standalone_manifest(text);
            assert!(!standalone.contains(".workspace"), "{path}:\n{standalone}");
            assert!(standalone.contains("edition = \"2024\""), "{path}:\n{standalone}");
        }
        let sdk = standalone_manifest(MANIFESTS[0].1);
        let wit_bindgen = manifest_value(WORKSPACE_MANIFEST, "workspace.dependencies", "wit-bindgen");
        assert_eq!(manifest_value(&sdk, "dependencies", "wit-bindgen"), wit_bindgen);
    }

    #[test]
    fn names_are_checked_and_check_names_are_camel_case() {
        assert!(files("vendor-checks", Kind::Check).is_ok());
        for bad in ["", "Vendor", "1st", "a_b", "a-", "node"] {
            assert!(
                matches!(files(bad, Kind::Check), Err(ScaffoldError::Name(_))),
                "{bad}"
            );
        }
        assert_eq!(camel("vendor-nic-speed"), "VendorNicSpeed");
    }
}
