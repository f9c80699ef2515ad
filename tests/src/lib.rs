//! Helpers for wasmadm's integration tests: fixture node roots, pipelines around test plugins,
//! and runs whose console output is captured.

pub mod bench;
pub mod cluster;
pub mod differential;
pub mod etcd;
pub mod http;
pub mod kubelet;
pub mod netns;
pub mod static_pod;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmadm::caps::log::{Console, Stream};
use wasmadm::cluster::memory::MemoryCluster;
use wasmadm::cluster::{Cluster, ResourceType};
use wasmadm::config::kubeadm::{self, Flags};
use wasmadm::config::pipeline::Pipeline;
use wasmadm::invocation::{self, Backend, Invocation};
use wasmadm::runtime::{Command, RunError, RunReport, Runtime};

/// The sandbox-probe component built for these tests.
pub const PROBE_WASM: &str = env!("SANDBOX_PROBE_WASM");

/// The legacy-probe component, built against the frozen `wasmadm:plugin@0.1.0` contract.
pub const LEGACY_PROBE_WASM: &str = env!("LEGACY_PROBE_WASM");

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// A fresh copy of a fixture node root (`tests/fixtures/nodes/<name>`) in a temporary directory.
pub fn node(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    wasmadm::util::copy_tree(&fixture("nodes").join(name), dir.path()).expect("copy the fixture node");
    dir
}

/// The reference configuration (`tests/fixtures/init-config.yaml`, whose last document is the
/// ClusterConfiguration) with `extra_cluster` appended (fields of that document, or further
/// documents after a `---`), written to `<dir>/config.yaml`.
pub fn write_config(dir: &Path, extra_cluster: &str) -> PathBuf {
    let base = std::fs::read_to_string(fixture("init-config.yaml")).expect("fixture");
    let path = dir.join("config.yaml");
    std::fs::write(&path, format!("{base}{extra_cluster}")).expect("write config");
    path
}

/// The pipeline built into wasmadm.
pub fn default_pipeline() -> Pipeline {
    Pipeline::builtin_default().expect("default pipeline")
}

/// A namespaced resource type of API version `v1` of `group`.
pub fn ty(group: &str, kind: &str, plural: &str) -> ResourceType {
    ResourceType::v1(group, kind, plural, true)
}

/// `pipeline` with only the named `init` phases, in its order: a test of some phases then does not
/// depend on the phases the pipeline gains later.
pub fn with_init_phases(mut pipeline: Pipeline, phases: &[&str]) -> Pipeline {
    pipeline.init.0.retain(|p| phases.contains(&p.name.0.as_str()));
    assert_eq!(pipeline.init.0.len(), phases.len(), "phases {phases:?}");
    pipeline
}

/// The default pipeline with only the named `init` phases (see [`with_init_phases`]).
pub fn default_pipeline_of(phases: &[&str]) -> Pipeline {
    with_init_phases(default_pipeline(), phases)
}

/// An object real kubeadm created for the reference configuration
/// (`tests/fixtures/reference/api/<file>`), as JSON.
pub fn reference_object(file: &str) -> serde_json::Value {
    yaml_fixture(&format!("reference/api/{file}"))
}

/// A YAML file of `tests/fixtures` (e.g. `reference/extra-args/api/<file>`), as JSON.
pub fn yaml_fixture(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(path)).unwrap_or_else(|e| panic!("fixture {path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A fresh in-memory cluster in which the kubelet of node `name` has registered its Node (the
/// host's simulation, as `wasmadm init --cluster memory` sets it up).
pub fn memory_cluster_with_node(name: &str) -> Arc<MemoryCluster> {
    let cluster = MemoryCluster::new();
    wasmadm::cluster::simulate::kubelet_registration(&cluster, name).expect("simulated Node registration");
    Arc::new(cluster)
}

/// Runs the real `openssl` CLI and returns its stdout; panics with its output when it fails.
pub fn openssl(args: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `openssl` ({e}): these tests check certificates with the real openssl CLI; \
                 install it (`apt-get install openssl`, README \"Try it\")"
            )
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fields of certificate file `crt` that `args` ask for (`-subject`, `-ext ...`, `-dates`), as
/// `openssl x509` prints them with RFC 2253 names.
pub fn x509_fields(crt: &str, args: &[&str]) -> String {
    openssl(&[&["x509", "-in", crt, "-noout", "-nameopt", "RFC2253"], args].concat())
}

/// Checks a certificate and its key with the real openssl: the certificate verifies against
/// `ca_crt` (strict X.509) and the key is the certificate's, in kubeadm's PEM format for its type.
/// Returns the certificate as `openssl x509 -text` prints it.
pub fn verify_cert_and_key(ca_crt: &str, crt: &str, key: &str, ecdsa: bool) -> String {
    let verified = openssl(&["verify", "-x509_strict", "-CAfile", ca_crt, crt]);
    assert_eq!(verified.trim(), format!("{crt}: OK"));
    let cert_pub = openssl(&["x509", "-in", crt, "-noout", "-pubkey"]);
    let key_pub = openssl(&["pkey", "-in", key, "-pubout"]);
    assert_eq!(cert_pub, key_pub, "{crt}: key does not match");
    let key_pem = std::fs::read_to_string(key).expect("key");
    let header = if ecdsa { "EC" } else { "RSA" };
    assert!(
        key_pem.starts_with(&format!("-----BEGIN {header} PRIVATE KEY-----\n")),
        "{key}"
    );
    let full = openssl(&["x509", "-in", crt, "-noout", "-text"]);
    let size = if ecdsa {
        "NIST CURVE: P-256"
    } else {
        "Public-Key: (2048 bit)"
    };
    assert!(full.contains(size), "{crt}: {full}");
    full
}

/// Asserts kubeadm's extensions of a leaf certificate (not a CA), from [`x509_fields`] with
/// `-ext keyUsage,extendedKeyUsage,basicConstraints`.
pub fn assert_leaf_extensions(text: &str, extended_key_usage: &str, what: &str) {
    assert!(
        text.contains("X509v3 Key Usage: critical\n    Digital Signature, Key Encipherment\n"),
        "{what}: {text}"
    );
    assert!(
        text.contains("X509v3 Basic Constraints: critical\n    CA:FALSE\n"),
        "{what}: {text}"
    );
    assert!(
        text.contains(&format!(
            "X509v3 Extended Key Usage: \n    {extended_key_usage}\n"
        )),
        "{what}: {text}"
    );
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &str) -> String {
    wasmadm::runtime::engine::sha256_hex(&std::fs::read(path).expect("read wasm"))
}

/// One runtime for a whole test binary: engines are meant to be shared, and the pooling
/// allocator reserves address space per engine.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        let cache = std::env::temp_dir().join("wasmadm-test-cache");
        Runtime::new(Some(cache)).expect("runtime")
    })
}

/// What a run printed and returned.
pub struct Outcome {
    pub result: Result<RunReport, RunError>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Outcome {
    /// The error's text (panics when the run succeeded).
    pub fn error(&self) -> String {
        match &self.result {
            Ok(_) => panic!(
                "the run succeeded; stdout: {:?}; stderr: {:?}",
                self.stdout, self.stderr
            ),
            Err(e) => e.to_string(),
        }
    }

    /// The error's text, which must contain each of `needles` (panics otherwise).
    pub fn expect_error(&self, needles: &[&str]) -> String {
        let err = self.error();
        for needle in needles {
            assert!(err.contains(needle), "{needle:?} not in: {err}");
        }
        err
    }

    /// Panics with the error and the console output when the run failed.
    pub fn expect_ok(&self) {
        if let Err(e) = &self.result {
            panic!(
                "run failed: {e}\nstdout: {:#?}\nstderr: {:#?}",
                self.stdout, self.stderr
            );
        }
    }

    /// An output value published by a phase (`<phase>.<key>`).
    pub fn output(&self, key: &str) -> Option<String> {
        let report = self.result.as_ref().ok()?;
        report
            .outputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

/// Options of a test run.
pub struct Run<'a> {
    pub pipeline: &'a Pipeline,
    pub command: Command,
    pub root: &'a Path,
    pub config: Option<&'a Path>,
    pub flags: Flags,
    pub dry_run: bool,
    pub only: Option<(String, Option<String>)>,
    pub cluster: Option<Arc<dyn Cluster>>,
    /// No cluster at all (instead of the in-memory one `go` sets up when `cluster` is `None`):
    /// the host's capabilities then act for real, e.g. health checks send their requests.
    pub no_cluster: bool,
}

impl<'a> Run<'a> {
    pub fn new(pipeline: &'a Pipeline, root: &'a Path) -> Self {
        Self {
            pipeline,
            command: Command::Init,
            root,
            config: None,
            flags: Flags::default(),
            dry_run: false,
            only: None,
            // None: `go` sets up what `wasmadm --cluster memory` would.
            cluster: None,
            no_cluster: false,
        }
    }

    pub fn go(self) -> Outcome {
        let config = kubeadm::resolve(self.config, self.command, &self.flags, "n1").expect("config");
        // Without a cluster of its own, a run gets what `wasmadm --cluster memory --dry-run` sets
        // up: the in-memory cluster, kept nowhere.
        let cluster = self.cluster.or_else(|| {
            if self.no_cluster {
                return None;
            }
            let backend = Backend::Memory { state: None };
            Some(
                backend
                    .connect(invocation::kubelet_node(self.command, &config))
                    .expect("in-memory cluster"),
            )
        });
        let (console, lines) = Console::buffer();
        let runner = invocation::runner(runtime(), self.pipeline, self.command, &config);
        let spec = Invocation {
            command: self.command,
            root: self.root,
            flags: &self.flags,
            dry_run: self.dry_run,
            only: self.only,
        }
        .run_spec(config, cluster, console);
        let result = invocation::run(&runner, self.pipeline, &spec);
        let lines = lines.lock().expect("lines").clone();
        let pick = |s: Stream| {
            lines
                .iter()
                .filter(|(t, _)| *t == s)
                .map(|(_, l)| l.clone())
                .collect()
        };
        Outcome {
            result,
            stdout: pick(Stream::Out),
            stderr: pick(Stream::Err),
        }
    }
}

/// Runs `phases` of the default pipeline, each whole (`init phase <name> all`), on `root` with
/// `config`; panics with the phase, error and console output when one fails.
pub fn run_phases(root: &Path, config: &Path, phases: &[&str]) {
    let pipeline = default_pipeline();
    for phase in phases {
        let mut run = Run::new(&pipeline, root);
        run.config = Some(config);
        run.only = Some((phase.to_string(), Some("all".into())));
        let out = run.go();
        assert!(out.result.is_ok(), "{phase}: {} {:?}", out.error(), out.stderr);
    }
}

/// Every permission of a grant, one by one, so that grants written in different groupings compare
/// (the default pipeline's against a plugin's `describe()`, in `tests/builtins.rs`).
pub fn permissions(g: &wasmadm::config::pipeline::Grants) -> std::collections::BTreeSet<String> {
    let mut set = std::collections::BTreeSet::new();
    // A write grant lets the phase read too (`caps::fs`): a read under one adds nothing.
    for path in &g.files.read {
        if !g.files.write.iter().any(|w| path.0.starts_with(&w.0)) {
            set.insert(format!("read {}", path.0.as_str()));
        }
    }
    for path in &g.files.write {
        set.insert(format!("write {}", path.0.as_str()));
    }
    for rule in &g.exec {
        let any = vec![vec!["<any>".to_string()]];
        for args in if rule.args.is_empty() { &any } else { &rule.args } {
            set.insert(format!(
                "exec {} {args:?} readOnly={}",
                rule.command, rule.read_only
            ));
        }
    }
    for r in &g.kube {
        let all = vec!["<all>".to_string()];
        let or_all = |v: &Vec<String>| if v.is_empty() { all.clone() } else { v.clone() };
        for verb in &r.verbs {
            for group in &r.api_groups {
                for resource in &r.resources {
                    for ns in or_all(&r.namespaces) {
                        for name in or_all(&r.resource_names) {
                            set.insert(format!("kube {verb} {group}/{resource} ns={ns} name={name}"));
                        }
                    }
                }
            }
        }
    }
    for var in &g.env {
        set.insert(format!("env {var}"));
    }
    set
}
