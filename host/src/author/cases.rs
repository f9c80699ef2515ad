//! `wasmadm plugin test CASES.yaml`: table-driven tests of one plugin. Each case runs the
//! component alone (as `plugin run`) on a fresh copy of a node directory, with inline files,
//! settings, grants, configuration and in-memory API objects, and compares what it did with what
//! the case expects: exit code, findings, error, files and API objects.
//!
//! ```yaml
//! component: target/wasm32-wasip2/release/vendor_checks.wasm   # relative to this file
//! node: fixtures/node                                          # each case gets a copy
//! cases:
//!   - name: an old kernel fails
//!     files: { /proc/sys/kernel/osrelease: "4.19.0\n" }
//!     settings: { minKernelMajor: 5 }
//!     expect:
//!       exitCode: 2
//!       findings:
//!         - { check: VendorChecks, severity: error, message: "kernel 4.19.0 is older than 5.x (minKernelMajor)" }
//! ```

use super::single::{self, GrantChoice, SingleRun};
use crate::caps::log::Console;
use crate::cluster::memory::MemoryCluster;
use crate::cluster::{Cluster, ResourceType, resources};
use crate::command::{Command, Role};
use crate::config::kubeadm::{self, Flags};
use crate::config::pipeline::Grants;
use crate::runtime::Runtime;
use crate::values::NodePath;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A cases file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CasesFile {
    /// The component, relative to the cases file.
    pub component: PathBuf,
    /// The node directory every case starts from (relative to the cases file); empty if none.
    #[serde(default)]
    pub node: Option<PathBuf>,
    pub cases: Vec<Case>,
}

/// One case.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// This case's node directory instead of the file's.
    #[serde(default)]
    pub node: Option<PathBuf>,
    /// Files written over the node copy before the run, by node path; `null` removes one.
    #[serde(default)]
    pub files: BTreeMap<String, Option<String>>,
    /// The plugin's settings (as a pipeline's `settings:`).
    #[serde(default)]
    pub settings: Value,
    /// A pipeline `grants:` block; what the plugin asks for when absent.
    #[serde(default)]
    pub grants: Option<Grants>,
    /// A kubeadm configuration file, relative to the cases file.
    #[serde(default)]
    pub config: Option<PathBuf>,
    #[serde(default)]
    pub ignore_preflight_errors: Vec<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// API objects to create in an in-memory cluster before the run. Without them the plugin has
    /// no cluster, unless `cluster: memory`.
    #[serde(default)]
    pub objects: Vec<Value>,
    #[serde(default)]
    pub cluster: Option<CaseCluster>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseCluster {
    None,
    Memory,
}

/// What a case expects. Only what is written is checked, except `exitCode` (0 by default).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub exit_code: i32,
    /// Every finding, in order; a `message` is compared when given.
    #[serde(default)]
    pub findings: Option<Vec<ExpectedFinding>>,
    /// Text the run's error must contain.
    #[serde(default)]
    pub error: Option<String>,
    /// Node files after the run, by node path, with their content; `null`: must not exist.
    #[serde(default)]
    pub files: BTreeMap<String, Option<String>>,
    /// API objects that must exist afterwards; each matches an object holding all its fields.
    #[serde(default)]
    pub objects: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFinding {
    pub check: String,
    pub severity: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// A cases file that cannot be used; the message names the file, the line and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CasesError(pub String);

/// One case's result: empty `failures` when it passed.
pub struct CaseResult {
    pub name: String,
    pub failures: Vec<String>,
}

/// Reads a cases file; relative paths in it become relative to its directory.
pub fn load(path: &Path) -> Result<CasesFile, CasesError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CasesError(format!("cannot read cases file {}: {e}", path.display())))?;
    let mut file: CasesFile =
        serde_yaml::from_str(&text).map_err(|e| CasesError(crate::config::yaml_error(path, &e, 0)))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let rebase = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    rebase(&mut file.component);
    if let Some(n) = &mut file.node {
        rebase(n);
    }
    for case in &mut file.cases {
        if let Some(n) = &mut case.node {
            rebase(n);
        }
        if let Some(c) = &mut case.config {
            rebase(c);
        }
    }
    if file.cases.is_empty() {
        return Err(CasesError(format!(
            "{}: `cases:` is empty: add at least one case with a name and `expect:`",
            path.display()
        )));
    }
    Ok(file)
}

/// Runs every case in order.
pub fn run_all(runtime: &Runtime, file: &CasesFile) -> Vec<CaseResult> {
    file.cases
        .iter()
        .enumerate()
        .map(|(i, case)| CaseResult {
            name: case.name.clone(),
            failures: match run_case(runtime, file, case, i) {
                Ok(failures) => failures,
                Err(e) => vec![e],
            },
        })
        .collect()
}

/// A host path under `root` for a node path of the cases file.
fn host_path(root: &Path, node_path: &str) -> Result<PathBuf, String> {
    let parsed = NodePath::parse(node_path).map_err(|e| format!("file {node_path:?}: {e}"))?;
    Ok(crate::caps::path::host_path(root, &parsed))
}

/// A scratch node directory, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A seed object's type, from its `apiVersion` and `kind` (built-in types only).
fn seed_type(object: &Value) -> Result<ResourceType, String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    resources::KNOWN
        .iter()
        .find(|k| k.group == group && k.kind == kind && k.versions.contains(&version))
        .map(|k| ResourceType {
            group: k.group.into(),
            version: version.into(),
            kind: k.kind.into(),
            plural: k.plural.into(),
            namespaced: k.namespaced,
        })
        .ok_or_else(|| {
            format!(
                "object {api_version}/{kind} to seed: not a built-in type of the in-memory cluster; \
                 give `apiVersion` and `kind` as Kubernetes names them (e.g. v1 ConfigMap)"
            )
        })
}

fn run_case(runtime: &Runtime, file: &CasesFile, case: &Case, index: usize) -> Result<Vec<String>, String> {
    let scratch = Scratch(std::env::temp_dir().join(format!("wasmadm-case-{}-{index}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    let root = &scratch.0;
    match case.node.as_ref().or(file.node.as_ref()) {
        Some(node) => crate::util::copy_tree(node, root)
            .map_err(|e| format!("cannot copy node directory {}: {e}", node.display()))?,
        None => std::fs::create_dir_all(root).map_err(|e| format!("cannot make a node directory: {e}"))?,
    }
    for (node_path, content) in &case.files {
        let path = host_path(root, node_path)?;
        let written = match content {
            Some(text) => path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, text)),
            None => std::fs::remove_file(&path).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            }),
        };
        written.map_err(|e| format!("cannot prepare file {node_path}: {e}"))?;
    }

    let memory = match case.cluster {
        Some(CaseCluster::Memory) => true,
        Some(CaseCluster::None) if !case.objects.is_empty() => {
            return Err("`objects` need a cluster: remove `cluster: none`".into());
        }
        Some(CaseCluster::None) => false,
        None => !case.objects.is_empty(),
    };
    let memory = memory.then(|| Arc::new(MemoryCluster::new()));
    if let Some(cluster) = &memory {
        for object in &case.objects {
            let ty = seed_type(object)?;
            let namespace = object["metadata"]["namespace"].as_str();
            cluster
                .create(ty.collection(namespace), object.clone(), false)
                .map_err(|e| format!("cannot seed object {}: {}", ty.kind, e.message))?;
        }
    }
    let mut config = kubeadm::resolve(
        case.config.as_deref(),
        Command::Init,
        &Flags {
            ignore_preflight_errors: case.ignore_preflight_errors.clone(),
            ..Flags::default()
        },
        &crate::facts::hostname(root),
    )
    .map_err(|e| e.to_string())?;
    kubeadm::detect_advertise_address(&mut config).map_err(|e| e.to_string())?;
    let outcome = single::run(
        runtime,
        SingleRun {
            component: file.component.clone(),
            root: root.clone(),
            command: Command::Init,
            role: Role::ControlPlane,
            config,
            settings: case.settings.clone(),
            settings_file: None,
            grants: match &case.grants {
                Some(g) => GrantChoice::Given(g.clone()),
                None => GrantChoice::Requested,
            },
            dry_run: case.dry_run,
            cluster: memory.clone().map(|m| m as Arc<dyn Cluster>),
            console: Console::buffer().0,
            trace: None,
        },
    )
    .map_err(|e| e.to_string())?;

    let mut failures = Vec::new();
    let error = outcome.error.as_ref().map(|e| e.to_string());
    if outcome.exit_code() != case.expect.exit_code {
        failures.push(format!(
            "exit code: expected {}, got {}{}",
            case.expect.exit_code,
            outcome.exit_code(),
            error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        ));
    }
    if let Some(want) = &case.expect.error {
        match &error {
            Some(got) if got.contains(want.as_str()) => {}
            Some(got) => failures.push(format!("error: expected it to contain {want:?}, got {got:?}")),
            None => failures.push(format!(
                "error: expected one containing {want:?}, the run succeeded"
            )),
        }
    }
    if let Some(want) = &case.expect.findings {
        let got: Vec<String> = outcome
            .findings()
            .map(|f| format!("{} {}: {}", single::severity_name(f.severity), f.check, f.message))
            .collect();
        let matches = |w: &ExpectedFinding, g: &crate::bindings::types::Finding| {
            w.check == g.check
                && w.severity == single::severity_name(g.severity)
                && w.message.as_ref().is_none_or(|m| *m == g.message)
        };
        let same = want.len() == got.len() && want.iter().zip(outcome.findings()).all(|(w, g)| matches(w, g));
        if !same {
            let mut diff = String::from("findings differ (- expected, + got):");
            for w in want {
                diff.push_str(&format!(
                    "\n    - {} {}{}",
                    w.severity,
                    w.check,
                    w.message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
                ));
            }
            for g in &got {
                diff.push_str(&format!("\n    + {g}"));
            }
            failures.push(diff);
        }
    }
    for (node_path, want) in &case.expect.files {
        let path = host_path(root, node_path)?;
        let got = std::fs::read(&path)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if got != *want {
            failures.push(format!(
                "file {node_path}: expected {}, got {}",
                want.as_deref().map_or("no file".into(), |t| format!("{t:?}")),
                got.as_deref().map_or("no file".into(), |t| format!("{t:?}")),
            ));
        }
    }
    if !case.expect.objects.is_empty() {
        let stored = memory.as_ref().map(|m| m.objects()).unwrap_or_default();
        for want in &case.expect.objects {
            if !stored.iter().any(|have| is_subset(want, have)) {
                failures.push(format!(
                    "object {} not found among the {} objects of the in-memory cluster",
                    want,
                    stored.len()
                ));
            }
        }
    }
    Ok(failures)
}

/// True when every field of `want` is in `have` with the same value.
fn is_subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| is_subset(v, hv)))
        }
        (w, h) => w == h,
    }
}
