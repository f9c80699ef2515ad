//! The `wasmadm` binary as a user runs it: exit codes, messages, the built-in pipeline, the
//! component cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A copy of the healthy fixture node.
fn node() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    wasmadm::util::copy_tree(&repo().join("tests/fixtures/nodes/healthy"), dir.path())
        .expect("copy the fixture node");
    dir
}

fn wasmadm(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmadm"))
        .args(args)
        .env("WASMADM_CACHE_DIR", cache)
        .output()
        .expect("run wasmadm")
}

/// `wasmadm --root <root> <args>`.
fn on_node(cache: &Path, root: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--root", root.to_str().expect("utf8")];
    all.extend_from_slice(args);
    wasmadm(cache, &all)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_of_a_healthy_sandbox_node_succeeds_and_warm_start_uses_the_cache() {
    let root = node();
    let cache = tempfile::tempdir().expect("cache");
    let config = repo().join("examples/init-config.yaml");
    let args = ["init", "--config", config.to_str().expect("utf8")];
    let out = on_node(cache.path(), root.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // kubeadm's first line of a whole init, then its preflight.
    assert!(
        text(&out.stdout)
            .starts_with("[init] Using Kubernetes version: v1.36.2\n[preflight] Running pre-flight checks\n"),
        "{}",
        text(&out.stdout)
    );
    // Logs reach the console only when asked for (-v), and never as colour codes into a file.
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains('\x1b')
            && !stderr
                .lines()
                .any(|l| l.contains(" WARN ") || l.contains(" INFO ")),
        "{stderr}"
    );
    let mut verbose_args = vec!["-v", "2"];
    verbose_args.extend_from_slice(&args);
    verbose_args.push("--dry-run");
    let verbose = text(&on_node(cache.path(), root.path(), &verbose_args).stderr);
    assert!(
        verbose.contains(" INFO ") && !verbose.contains('\x1b'),
        "{verbose}"
    );
    let cached: Vec<_> = std::fs::read_dir(cache.path())
        .expect("cache dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .collect();
    let init_plugins: std::collections::BTreeSet<_> = wasmadm::config::pipeline::Pipeline::builtin_default()
        .expect("default pipeline")
        .phases(wasmadm::command::Command::Init)
        .iter()
        .map(|p| p.component.to_string())
        .collect();
    assert_eq!(
        cached.len(),
        init_plugins.len(),
        "each plugin of the init pipeline compiled once and cached"
    );
    let modified = cached[0].metadata().expect("meta").modified().expect("mtime");
    // A second node (the first now fails preflight: its manifests exist, as with kubeadm).
    let second = node();
    let out = on_node(cache.path(), second.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = std::fs::metadata(cached[0].path())
        .expect("meta")
        .modified()
        .expect("mtime");
    assert_eq!(modified, again, "warm start must not recompile");
}

#[test]
fn keys_are_made_by_the_host_when_granted_else_by_the_plugin() {
    let cache = tempfile::tempdir().expect("cache");
    let config = repo().join("examples/init-config.yaml");
    let config = config.to_str().expect("utf8");
    let phases = |root: &Path, pipeline: Option<&Path>| {
        let root = root.to_str().expect("utf8").to_string();
        let mut args = vec!["-v", "5", "--root", &root];
        let pipeline = pipeline.map(|p| p.to_str().expect("utf8").to_string());
        if let Some(p) = &pipeline {
            args.extend(["--pipeline", p]);
        }
        let mut log = String::new();
        for phase in ["certs", "kubeconfig"] {
            let mut args = args.clone();
            args.extend(["init", "phase", phase, "all", "--config", config]);
            let out = wasmadm(cache.path(), &args);
            assert!(out.status.success(), "{phase}: {}", text(&out.stderr));
            log.push_str(&text(&out.stderr));
        }
        log
    };
    // The default pipeline grants the keys: the host makes them, one call per phase.
    let root = node();
    let log = phases(root.path(), None);
    assert!(
        log.contains(r#"keys for phase "certs""#) && log.contains("made 11 "),
        "{log}"
    );
    assert!(
        log.contains(r#"made 5 "#) && log.contains(r#"keys for phase "kubeconfig""#),
        "{log}"
    );
    assert!(!log.contains("making keys in the plugin"), "{log}");
    // Without the grant, the host refuses and the plugins make their keys themselves.
    let printed = text(&wasmadm(cache.path(), &["config", "print", "pipeline"]).stdout);
    let ungranted: String = printed
        .lines()
        .filter(|l| !l.trim_start().starts_with("keys:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(ungranted, printed, "the default pipeline grants keys");
    let dir = tempfile::tempdir().expect("tmp");
    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(&pipeline, ungranted).expect("write pipeline");
    let root = node();
    let log = phases(root.path(), Some(&pipeline));
    assert!(
        log.contains("making keys in the plugin") && log.contains("grants.keys: 0"),
        "{log}"
    );
    assert!(!log.contains("keys: made"), "{log}");
    for file in ["pki/ca.key", "pki/sa.key", "admin.conf"] {
        assert!(root.path().join("etc/kubernetes").join(file).is_file(), "{file}");
    }
}

#[test]
fn failed_preflight_exits_2() {
    let root = node();
    std::fs::write(root.path().join("proc/meminfo"), "MemTotal: 1000 kB\n").expect("write");
    let cache = tempfile::tempdir().expect("cache");
    let out = on_node(cache.path(), root.path(), &["init"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("\t[ERROR Mem]: the system RAM (0 MB) is less than the minimum 1700 MB"),
        "{err}"
    );
    assert!(
        err.contains("error: error execution phase preflight: preflight checks failed"),
        "{err}"
    );
}

#[test]
fn invalid_config_exits_3_with_file_and_line() {
    let root = node();
    let cache = tempfile::tempdir().expect("cache");
    let config = root.path().join("bad.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistrations: {}\n",
    )
    .expect("write");
    let out = on_node(
        cache.path(),
        root.path(),
        &["init", "--config", config.to_str().expect("utf8")],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.yaml:3:1: unknown field `nodeRegistrations`"),
        "{err}"
    );
}

#[test]
fn unknown_skip_phase_exits_3() {
    let root = node();
    let cache = tempfile::tempdir().expect("cache");
    let out = on_node(cache.path(), root.path(), &["init", "--skip-phases", "bogus"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("invalid phase name \"bogus\""));
}

#[test]
fn config_print_pipeline_is_the_pipeline_that_runs() {
    let cache = tempfile::tempdir().expect("cache");
    let out = wasmadm(cache.path(), &["config", "print", "pipeline"]);
    assert!(out.status.success());
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, &out.stdout).expect("write");
    let root = node();
    // The kubeconfig phase needs the node's address, which the sandbox cannot detect.
    let config = repo().join("examples/init-config.yaml");
    let out = on_node(
        cache.path(),
        root.path(),
        &[
            "--pipeline",
            file.to_str().expect("utf8"),
            "init",
            "--config",
            config.to_str().expect("utf8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn plugin_inspect_prints_what_a_plugin_asks_for() {
    let cache = tempfile::tempdir().expect("cache");
    let out = wasmadm(cache.path(), &["plugin", "inspect", "builtin:preflight"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("name: preflight"), "{shown}");
    assert!(shown.contains("digest: sha256:"), "{shown}");
    assert!(shown.contains("- command: kubelet"), "{shown}");
    assert!(shown.contains("- /etc/kubernetes"), "{shown}");
    assert!(shown.contains("settings:"), "{shown}");
}

#[test]
fn phase_list_names_each_phase_and_its_plugin() {
    let cache = tempfile::tempdir().expect("cache");
    let out = wasmadm(cache.path(), &["--root", "/", "phase", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("preflight"), "{shown}");
    assert!(shown.contains("Run pre-flight checks"), "{shown}");
    assert!(shown.contains("plugin builtin:preflight"), "{shown}");
}

#[test]
fn dry_run_init_phase_runs_one_phase() {
    let root = node();
    let cache = tempfile::tempdir().expect("cache");
    let out = on_node(
        cache.path(),
        root.path(),
        &["init", "phase", "preflight", "--dry-run"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("[preflight] Would pull the required images (like 'kubeadm config images pull')")
    );
}

#[test]
fn init_defaults_are_a_config_that_validates() {
    let cache = tempfile::tempdir().expect("cache");
    let out = wasmadm(cache.path(), &["config", "print", "init-defaults"]);
    assert!(out.status.success());
    let shown = text(&out.stdout);
    assert!(shown.contains("advertiseAddress: 1.2.3.4"), "{shown}");
    assert!(shown.contains("token: abcdef.0123456789abcdef"), "{shown}");
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("defaults.yaml");
    std::fs::write(&file, &out.stdout).expect("write");
    let out = wasmadm(
        cache.path(),
        &["config", "validate", "--config", file.to_str().expect("utf8")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(&file, shown.replace("10.96.0.0/12", "10.96.0.0/33")).expect("write");
    let out = wasmadm(
        cache.path(),
        &["config", "validate", "--config", file.to_str().expect("utf8")],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("networking.serviceSubnet: \"10.96.0.0/33\" is not a valid CIDR"));
}

#[test]
fn config_flags_cannot_be_mixed_with_config() {
    let root = node();
    let cache = tempfile::tempdir().expect("cache");
    let config = repo().join("examples/init-config.yaml");
    let out = on_node(
        cache.path(),
        root.path(),
        &[
            "init",
            "--config",
            config.to_str().expect("utf8"),
            "--service-cidr",
            "10.100.0.0/16",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("can not mix '--config' with arguments [service-cidr]"));
}

/// Every file under `dir` (relative paths), to show a refused run wrote nothing.
fn tree(dir: &Path) -> Vec<String> {
    let out = Command::new("find")
        .arg(".")
        .current_dir(dir)
        .output()
        .expect("find");
    let mut files: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    files.sort();
    files
}

/// A join by token of a server that is not there, without CA pinning.
const UNVERIFIED_JOIN: [&str; 5] = [
    "join",
    "192.0.2.1:6443",
    "--token",
    "abcdef.0123456789abcdef",
    "--discovery-token-unsafe-skip-ca-verification",
];

#[test]
fn join_refuses_a_node_that_already_has_a_kubelet_kubeconfig_and_writes_nothing() {
    let root = node();
    std::fs::create_dir_all(root.path().join("etc/kubernetes")).expect("dir");
    std::fs::write(root.path().join("etc/kubernetes/kubelet.conf"), "x").expect("write");
    let before = tree(root.path());
    let cache = tempfile::tempdir().expect("cache");
    let out = on_node(cache.path(), root.path(), &UNVERIFIED_JOIN);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "\t[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists"
        ),
        "{err}"
    );
    assert_eq!(tree(root.path()), before, "a refused join wrote files");
}

#[test]
fn join_flags_are_kubeadms() {
    let root = node();
    let cache = tempfile::tempdir().expect("cache");
    let config = repo().join("tests/fixtures/join-config.yaml");
    let config = config.to_str().expect("utf8");
    // kubeadm lists the refused flags sorted.
    let out = on_node(
        cache.path(),
        root.path(),
        &[
            "join",
            "--config",
            config,
            "--token",
            "abcdef.0123456789abcdef",
            "--discovery-token-ca-cert-hash",
            "sha256:00",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr)
            .contains("can not mix '--config' with arguments [discovery-token-ca-cert-hash token]"),
        "{}",
        text(&out.stderr)
    );
    let cases: [(&[&str], &str); 3] = [
        (&["join"], "discovery: bootstrapToken or file must be set"),
        (
            &["join", "192.0.2.1:6443", "--token", "abcdef.0123456789abcdef"],
            "discovery.bootstrapToken.caCertHashes",
        ),
        (
            &[
                "join",
                "192.0.2.1:6443",
                "--token",
                "abcdef",
                "--discovery-token-unsafe-skip-ca-verification",
            ],
            "discovery.bootstrapToken.token",
        ),
    ];
    for (args, message) in cases {
        let out = on_node(cache.path(), root.path(), args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn control_plane_join_refuses_a_malformed_certificate_key_and_writes_nothing() {
    let root = node();
    let before = tree(root.path());
    let cache = tempfile::tempdir().expect("cache");
    let args = [
        &UNVERIFIED_JOIN[..],
        &[
            "--control-plane",
            "--certificate-key",
            "0123abc",
            "--skip-phases",
            "preflight",
        ],
    ]
    .concat();
    let out = on_node(cache.path(), root.path(), &args);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("certificateKey")
            && text(&out.stderr).contains("64 hexadecimal characters"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("a new control plane instance was created"));
    assert_eq!(tree(root.path()), before, "a refused join wrote files");
}

#[test]
fn file_discovery_refuses_what_it_cannot_use_and_writes_nothing() {
    let root = node();
    let root_arg = root.path().to_str().expect("utf8");
    std::fs::write(
        root.path().join("etc/discovery.conf"),
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: \
         LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=\n    \
         server: https://192.0.2.1:6443\n  name: kubernetes\n",
    )
    .expect("discovery file");
    let before = tree(root.path());
    let cache = tempfile::tempdir().expect("cache");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--discovery-file", "http://127.0.0.1:9/cluster.conf"],
            "fetched from an https:// URL (its server verified by the node's trust store); use https://",
        ),
        (
            &["--discovery-file", "https://127.0.0.1:9/cluster.conf"],
            "the node has no trusted CA certificate: looked in the file $SSL_CERT_FILE or \
             /etc/ssl/certs/ca-certificates.crt",
        ),
        (&["--discovery-file", "/etc/missing.conf"], "missing.conf"),
        (
            &["--discovery-file", "/etc/discovery.conf"],
            "could not find authentication credentials for the TLS bootstrap process",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["--root", root_arg, "join", "--skip-phases", "preflight"];
        all.extend_from_slice(args);
        let out = wasmadm(cache.path(), &all);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(tree(root.path()), before, "{args:?}: a refused join wrote files");
    }
    // With a trust store under the node root, the URL is fetched: a port nothing listens on (this
    // machine's loopback) is refused, named, and nothing is written.
    let ca = kubeadm_pki::PrivateKey::generate(kubeadm_pki::KeyAlgorithm::EcdsaP256).expect("key");
    let ca = kubeadm_pki::Certificate::new_ca(
        "trusted",
        &ca,
        time::Duration::days(1),
        time::OffsetDateTime::now_utc(),
    )
    .expect("CA");
    std::fs::create_dir_all(root.path().join("etc/ssl/certs")).expect("dir");
    std::fs::write(root.path().join("etc/ssl/certs/ca-certificates.crt"), ca.to_pem()).expect("trust store");
    let before = tree(root.path());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("https://{}/cluster.conf", closed.local_addr().expect("address"));
    drop(closed);
    let out = on_node(
        cache.path(),
        root.path(),
        &["join", "--skip-phases", "preflight", "--discovery-file", &url],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let expected = format!("discovery.file.kubeConfigPath (--discovery-file): GET {url}");
    assert!(
        text(&out.stderr).contains(&expected) && text(&out.stderr).contains("refused"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(tree(root.path()), before, "a refused join wrote files");
}

#[test]
fn a_sandbox_node_joins_the_in_memory_cluster_another_sandbox_node_made() {
    // `init` of node A keeps its in-memory cluster in A; node B joins with a copy of it, as in a
    // demo. No kubelet runs: its TLS bootstrap is not waited for, and the run says so.
    let (a, b) = (node(), node());
    let cache = tempfile::tempdir().expect("cache");
    let config = repo().join("examples/init-config.yaml");
    let init = on_node(
        cache.path(),
        a.path(),
        &["init", "--config", config.to_str().expect("utf8")],
    );
    assert!(init.status.success(), "{}", text(&init.stderr));
    let state = wasmadm::invocation::MEMORY_STATE;
    let stdout = text(&init.stdout);
    let pin = stdout
        .split_whitespace()
        .skip_while(|w| *w != "--discovery-token-ca-cert-hash")
        .nth(1)
        .expect("a CA pin in the join command");
    let join_args = [
        "join",
        "10.200.0.2:6443",
        "--token",
        "abcdef.0123456789abcdef",
        "--discovery-token-ca-cert-hash",
        pin,
        "--node-name",
        "w1",
    ];
    // Before: B's own in-memory cluster is empty, which discovery says at once (not after its
    // 5-minute timeout), naming the file to copy; nothing is written.
    let before = tree(b.path());
    let empty = on_node(cache.path(), b.path(), &join_args);
    assert!(
        !empty.status.success()
            && text(&empty.stderr).contains(&format!(
                "is the in-memory cluster here, and it holds no kube-public/cluster-info (no `wasmadm \
                 init` made it): copy {state}"
            )),
        "{}",
        text(&empty.stderr)
    );
    assert_eq!(tree(b.path()), before, "a refused join wrote files");
    std::fs::create_dir_all(b.path().join(state).parent().expect("dir")).expect("mkdir");
    std::fs::copy(a.path().join(state), b.path().join(state)).expect("copy the cluster");
    let join = on_node(cache.path(), b.path(), &join_args);
    let out = text(&join.stdout);
    assert!(join.status.success(), "{out}\n{}", text(&join.stderr));
    assert!(
        out.contains("[kubelet-start] Not waited for: simulated node of the in-memory cluster")
            && out.contains("This node has joined the cluster:"),
        "{out}"
    );
    for file in [
        "var/lib/kubelet/config.yaml",
        "var/lib/kubelet/kubeadm-flags.env",
        "etc/kubernetes/pki/ca.crt",
    ] {
        assert!(b.path().join(file).is_file(), "{file} missing:\n{out}");
    }
    assert_eq!(
        std::fs::read(b.path().join("etc/kubernetes/pki/ca.crt")).ok(),
        std::fs::read(a.path().join("etc/kubernetes/pki/ca.crt")).ok(),
        "the joined node trusts another CA"
    );
    assert!(
        !b.path().join("etc/kubernetes/bootstrap-kubelet.conf").exists(),
        "the bootstrap token was left on the node"
    );
}
