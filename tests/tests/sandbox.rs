//! The sandbox against a hostile plugin (`tests/plugins/sandbox-probe`): every escape and every
//! call outside the grants is refused with a message naming what is missing; loops and memory
//! bombs are stopped; the host survives all of it.

use std::path::Path;
use std::sync::Arc;
use wasmadm::cluster::memory::MemoryCluster;
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::{PROBE_WASM, Run, node, sha256_file};

/// A one-phase init pipeline running the probe with `settings` and `grants` (YAML flow maps).
fn probe(settings: &str, grants: &str, limits: &str) -> Pipeline {
    let yaml = format!(
        "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: probe\n    component: {PROBE_WASM}\n    \
         digest: sha256:{}\n    settings: {settings}\n    grants: {grants}\n    limits: {limits}\n",
        sha256_file(PROBE_WASM)
    );
    Pipeline::parse(&yaml, Path::new("probe-pipeline.yaml")).expect("pipeline")
}

fn run(pipeline: &Pipeline, root: &Path) -> wasmadm_tests::Outcome {
    Run::new(pipeline, root).go()
}

const READ_KUBERNETES: &str = "{files: {read: [/etc/kubernetes]}}";

#[test]
fn dotdot_traversal_is_refused() {
    let root = node("healthy");
    std::fs::write(root.path().join("etc/shadow"), "secret").expect("write");
    let p = probe(
        "{action: read, path: /etc/kubernetes/../shadow}",
        READ_KUBERNETES,
        "{}",
    );
    let err = run(&p, root.path()).error();
    assert!(
        err.contains("has no read grant for /etc/kubernetes/../shadow"),
        "{err}"
    );
    assert!(err.contains("/etc/kubernetes"), "names the grants: {err}");
    assert!(!err.contains("secret"));
}

#[test]
fn absolute_symlink_out_of_a_grant_is_refused() {
    let root = node("healthy");
    std::fs::write(root.path().join("etc/shadow"), "secret").expect("write");
    std::os::unix::fs::symlink("/etc/shadow", root.path().join("etc/kubernetes/evil")).expect("ln");
    let p = probe(
        "{action: read, path: /etc/kubernetes/evil}",
        READ_KUBERNETES,
        "{}",
    );
    let err = run(&p, root.path()).error();
    assert!(err.contains("resolves to /etc/shadow"), "{err}");
}

#[test]
fn relative_symlink_cannot_leave_the_root() {
    let root = node("healthy");
    // Climbs far above the root: resolution stops at the node's `/`, so it lands on /etc/hosts of
    // the node, which is outside the grant.
    std::os::unix::fs::symlink(
        "../../../../../../../../etc/hosts",
        root.path().join("etc/kubernetes/up"),
    )
    .expect("ln");
    let p = probe("{action: read, path: /etc/kubernetes/up}", READ_KUBERNETES, "{}");
    let err = run(&p, root.path()).error();
    assert!(err.contains("resolves to /etc/hosts"), "{err}");
}

#[test]
fn symlink_inside_the_grant_is_followed() {
    let root = node("healthy");
    std::fs::write(root.path().join("etc/kubernetes/real.conf"), "data").expect("write");
    std::os::unix::fs::symlink(
        "/etc/kubernetes/real.conf",
        root.path().join("etc/kubernetes/link"),
    )
    .expect("ln");
    let p = probe(
        "{action: read, path: /etc/kubernetes/link}",
        READ_KUBERNETES,
        "{}",
    );
    let out = run(&p, root.path());
    assert_eq!(out.output("probe.content").as_deref(), Some("data"));
}

#[test]
fn write_to_a_read_only_grant_is_refused_and_leaves_nothing() {
    let root = node("healthy");
    let p = probe(
        "{action: write, path: /etc/kubernetes/x.conf, content: hi}",
        READ_KUBERNETES,
        "{}",
    );
    let err = run(&p, root.path()).error();
    assert!(
        err.contains("has no write grant for /etc/kubernetes/x.conf"),
        "{err}"
    );
    assert!(!root.path().join("etc/kubernetes/x.conf").exists());
}

#[test]
fn granted_write_is_atomic_with_the_mode_asked_for() {
    let root = node("healthy");
    let p = probe(
        "{action: write, path: /etc/kubernetes/pki/new.key, content: key, mode: 384}",
        "{files: {write: [/etc/kubernetes/pki]}}",
        "{}",
    );
    let out = run(&p, root.path());
    assert!(out.result.is_ok(), "{}", out.error());
    let file = root.path().join("etc/kubernetes/pki/new.key");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    let leftovers: Vec<_> = std::fs::read_dir(root.path().join("etc/kubernetes/pki"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "new.key")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn dry_run_records_writes_and_touches_nothing() {
    let root = node("healthy");
    let p = probe(
        "{action: write, path: /etc/kubernetes/pki/new.key, content: key}",
        "{files: {write: [/etc/kubernetes/pki]}}",
        "{}",
    );
    let mut r = Run::new(&p, root.path());
    r.dry_run = true;
    let out = r.go();
    assert!(out.result.is_ok(), "{}", out.error());
    assert!(!root.path().join("etc/kubernetes/pki/new.key").exists());
    assert!(
        out.stdout
            .iter()
            .any(|l| l.contains("[dryrun] Would write file \"/etc/kubernetes/pki/new.key\" with mode 0600")),
        "{:?}",
        out.stdout
    );
}

#[test]
fn exec_off_the_allow_list_is_refused() {
    let root = node("healthy");
    let p = probe(
        "{action: exec, program: kubelet, args: [--version]}",
        "{exec: [{command: systemctl, args: [[is-enabled, kubelet]]}]}",
        "{}",
    );
    let err = run(&p, root.path()).error();
    assert!(
        err.contains("\"kubelet\" is not on its allow-list (systemctl)"),
        "{err}"
    );
}

#[test]
fn exec_with_arguments_outside_the_rule_is_refused() {
    let root = node("healthy");
    let p = probe(
        "{action: exec, program: systemctl, args: [stop, kubelet]}",
        "{exec: [{command: systemctl, args: [[is-enabled, kubelet]]}]}",
        "{}",
    );
    let err = run(&p, root.path()).error();
    assert!(err.contains("may run \"systemctl\" only with arguments"), "{err}");
}

#[test]
fn allowed_exec_runs_the_command_under_the_root() {
    let root = node("healthy");
    let p = probe(
        "{action: exec, program: kubelet, args: [--version]}",
        "{exec: [{command: kubelet, args: [[--version]], readOnly: true}]}",
        "{}",
    );
    let out = run(&p, root.path());
    assert_eq!(
        out.output("probe.stdout").as_deref(),
        Some("Kubernetes v1.36.2\n"),
        "{:?}",
        out.stderr
    );
}

#[test]
fn mutating_exec_is_recorded_in_dry_run() {
    let root = node("healthy");
    let p = probe(
        "{action: exec, program: systemctl, args: [restart, kubelet]}",
        "{exec: [{command: systemctl, args: [[restart, kubelet]]}]}",
        "{}",
    );
    let mut r = Run::new(&p, root.path());
    r.dry_run = true;
    let out = r.go();
    assert_eq!(out.output("probe.recorded").as_deref(), Some("true"));
    assert!(
        out.stdout
            .iter()
            .any(|l| l == "[dryrun] Would run command \"systemctl restart kubelet\""),
        "{:?}",
        out.stdout
    );
}

#[test]
fn kube_call_outside_the_rules_is_refused() {
    let root = node("healthy");
    let p = probe(
        "{action: kube-get, kind: Secret, plural: secrets, namespace: kube-system, name: s}",
        "{kube: [{verbs: [get, create], resources: [configmaps], namespaces: [kube-system]}]}",
        "{}",
    );
    let mut r = Run::new(&p, root.path());
    r.cluster = Some(Arc::new(MemoryCluster::new()));
    let err = r.go().error();
    assert!(
        err.contains("may not get secrets \"s\" in namespace \"kube-system\""),
        "{err}"
    );
}

#[test]
fn kube_without_any_rule_is_refused() {
    let root = node("healthy");
    let p = probe(
        "{action: kube-get, kind: ConfigMap, plural: configmaps, namespace: default, name: x}",
        "{}",
        "{}",
    );
    let mut r = Run::new(&p, root.path());
    r.cluster = Some(Arc::new(MemoryCluster::new()));
    let err = r.go().error();
    assert!(err.contains("has no Kubernetes API grant"), "{err}");
}

#[test]
fn kube_call_inside_the_rules_reaches_the_cluster() {
    let root = node("healthy");
    let p = probe(
        "{action: kube-create, kind: ConfigMap, plural: configmaps, namespace: kube-system, name: made}",
        "{kube: [{verbs: [create], resources: [configmaps], namespaces: [kube-system]}]}",
        "{}",
    );
    let cluster = Arc::new(MemoryCluster::new());
    let mut r = Run::new(&p, root.path());
    r.cluster = Some(cluster.clone());
    let out = r.go();
    assert!(out.result.is_ok(), "{}", out.error());
    let objects = cluster.objects();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["metadata"]["name"], "made");
    assert_eq!(objects[0]["metadata"]["namespace"], "kube-system");
}

#[test]
fn environment_is_only_what_is_granted() {
    let root = node("healthy");
    let p = probe("{action: env}", "{env: [HOME]}", "{}");
    let out = run(&p, root.path());
    let env = out.output("probe.env").expect("env");
    assert!(env.starts_with("HOME="), "{env}");
    assert!(!env.contains("PATH="), "{env}");
}

#[test]
fn infinite_loop_is_stopped_at_its_timeout() {
    let root = node("healthy");
    let p = probe("{action: loop}", "{}", "{timeout: 300ms}");
    let started = std::time::Instant::now();
    let err = run(&p, root.path()).error();
    assert!(
        err.contains("did not finish within its timeout of 300ms and was stopped"),
        "{err}"
    );
    assert_within(started, Duration::from_millis(300));
}

#[test]
fn memory_bomb_is_stopped_at_its_cap() {
    let root = node("healthy");
    let p = probe("{action: memory}", "{}", "{memory: 32Mi}");
    let err = run(&p, root.path()).error();
    assert!(err.contains("exceeded its memory limit of 32 MiB"), "{err}");
}

#[test]
fn panicking_plugin_fails_its_phase_only() {
    let root = node("healthy");
    let err = run(&probe("{action: panic}", "{}", "{}"), root.path()).error();
    assert!(
        err.contains("error execution phase probe: the plugin crashed"),
        "{err}"
    );
}

#[test]
fn output_flood_is_capped() {
    let root = node("healthy");
    let p = probe("{action: flood}", "{}", "{output: 64Ki}");
    let out = run(&p, root.path());
    assert_eq!(out.output("probe.flooded").as_deref(), Some("yes"));
    let printed: usize = out.stdout.iter().map(|l| l.len() + 1).sum();
    assert!(printed <= 64 * 1024, "printed {printed} bytes");
    assert!(printed > 0);
}

#[test]
fn check_findings_are_printed_like_kubeadm_and_fail_the_run() {
    let root = node("healthy");
    let out = run(&probe("{action: warn}", "{}", "{}"), root.path());
    assert_eq!(out.stderr[0], "\t[WARNING ProbeWarning]: a warning");
    assert_eq!(out.stderr[1], "[probe] Some fatal errors occurred:");
    assert_eq!(out.stderr[2], "\t[ERROR ProbeError]: an error");
    assert!(matches!(
        out.result,
        Err(wasmadm::runtime::RunError::ChecksFailed { .. })
    ));
}

#[test]
fn host_survives_hostile_plugins() {
    let root = node("healthy");
    for action in ["loop", "memory", "panic"] {
        let p = probe(
            &format!("{{action: {action}}}"),
            "{}",
            "{timeout: 200ms, memory: 16Mi}",
        );
        assert!(run(&p, root.path()).result.is_err());
    }
    std::fs::write(root.path().join("etc/kubernetes/ok"), "fine").expect("write");
    let p = probe("{action: read, path: /etc/kubernetes/ok}", READ_KUBERNETES, "{}");
    assert_eq!(
        run(&p, root.path()).output("probe.content").as_deref(),
        Some("fine")
    );
}

#[test]
fn tampered_component_is_refused_before_loading() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut bytes = std::fs::read(PROBE_WASM).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let tampered = dir.path().join("probe.wasm");
    std::fs::write(&tampered, &bytes).expect("write");
    let yaml = format!(
        "apiVersion: wasmadm.io/v1alpha1\nkind: Pipeline\ninit:\n  - name: probe\n    component: {}\n    digest: sha256:{}\n",
        tampered.display(),
        sha256_file(PROBE_WASM)
    );
    let p = Pipeline::parse(&yaml, Path::new("p.yaml")).expect("pipeline");
    let root = node("healthy");
    let err = run(&p, root.path()).error();
    assert!(err.contains("but the pipeline pins sha256:"), "{err}");
    assert!(err.contains("it was not loaded"), "{err}");
}

// --- Issue 9: holes found by an independent hostile-plugin suite. Each test does the attack
// and checks the refusal or the bound, the time the host took, and what changed.

use serde_json::json;
use std::time::{Duration, Instant};
use wasmadm::cluster::{Cluster, ResourceType};

/// An in-memory cluster holding Secrets in two namespaces.
fn cluster_with_secrets() -> Arc<MemoryCluster> {
    let cluster = MemoryCluster::new();
    let secrets = ResourceType::v1("", "Secret", "secrets", true);
    for (ns, name) in [
        ("default", "app-secret"),
        ("kube-system", "bootstrap-token-abcdef"),
    ] {
        cluster
            .create(
                secrets.collection(Some(ns)),
                json!({"metadata": {"name": name}}),
                false,
            )
            .expect("secret");
    }
    Arc::new(cluster)
}

#[test]
fn kube_scope_comes_from_the_host_not_the_plugin() {
    let root = node("healthy");
    // A rule meant for cluster-scoped objects, and a broad cluster-scoped rule: neither lets a
    // plugin list Secrets by calling them cluster-scoped.
    for grant in [
        "{kube: [{verbs: [list], resources: [secrets]}]}",
        "{kube: [{verbs: [list], apiGroups: ['*'], resources: ['*']}]}",
    ] {
        let p = probe(
            "{action: kube-list, kind: Secret, plural: secrets, namespaced: false}",
            grant,
            "{}",
        );
        let mut r = Run::new(&p, root.path());
        r.cluster = Some(cluster_with_secrets());
        let out = r.go();
        let err = out.error();
        assert!(
            err.contains("secrets is namespaced, not cluster-scoped as the plugin's resource-type says"),
            "{grant}: {err}"
        );
        assert!(!err.contains("app-secret") && !err.contains("bootstrap-token-abcdef"));
    }
    // Kind and plural must agree too: a "ConfigMap" named by the plural "secrets" is refused.
    let p = probe(
        "{action: kube-list, kind: ConfigMap, plural: secrets, namespace: default}",
        "{kube: [{verbs: [list], resources: ['*'], namespaces: ['*']}]}",
        "{}",
    );
    let mut r = Run::new(&p, root.path());
    r.cluster = Some(cluster_with_secrets());
    let err = r.go().error();
    assert!(
        err.contains("the kind of secrets is \"Secret\", not \"ConfigMap\""),
        "{err}"
    );
}

/// A kubeconfig for a (fake) API server at `url`, with a token the host would send.
fn kubeconfig(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("fake.conf");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
         current-context: fake\nusers:\n- name: fake\n  user:\n    token: host-credential\n"
    );
    std::fs::write(&path, text).expect("kubeconfig");
    path
}

#[test]
fn kube_strings_that_would_change_the_url_never_reach_the_api_server() {
    use wasmadm::cluster::real::RealCluster;
    use wasmadm_tests::http::{Reply, serve};
    let root = node("healthy");
    let server = serve(Reply::Status(404, "{}".into()), None);
    let config = kubeconfig(root.path(), &server.url("http", ""));
    let cluster: Arc<dyn Cluster> = Arc::new(RealCluster::new(config).expect("backend"));
    let grant = "{kube: [{verbs: [get, list], resources: [configmaps], namespaces: [kube-system]}, \
                 {verbs: [get, patch], resources: [nodes]}]}";
    let cm = "kind: ConfigMap, plural: configmaps, namespace: kube-system";
    let node_ty = "kind: Node, plural: nodes, namespaced: false";
    let attacks = [
        (format!("{{action: kube-get, {cm}, name: 'admin-token?x=/namespaces/kube-system/configmaps/y'}}"), "is not a valid name"),
        (format!("{{action: kube-get, {cm}, name: 'x/../../secrets/admin-token'}}"), "is not a valid name"),
        (format!("{{action: kube-get, {cm}, name: 'kubeadm-config?watch=true'}}"), "is not a valid name"),
        (format!("{{action: kube-get, {cm}, name: 'a#b'}}"), "is not a valid name"),
        (format!("{{action: kube-get, {cm}, name: 'a%2F..%2Fb'}}"), "is not a valid name"),
        (format!("{{action: kube-get, {node_ty}, name: 'node1/proxy/configz'}}"), "is not a valid name"),
        (format!("{{action: kube-patch, {node_ty}, name: 'node1/status'}}"), "is not a valid name"),
        ("{action: kube-get, kind: ConfigMap, plural: configmaps, namespace: 'kube-system/secrets', name: x}".into(), "is not a valid namespace name"),
        ("{action: kube-get, kind: Node, plural: 'nodes/status', namespaced: false, name: node1}".into(), "is not a plural resource name"),
        (format!("{{action: kube-get, {cm}, version: 'v1/../../v1/namespaces/kube-system/secrets', name: x}}"), "is not a Kubernetes version"),
        (format!("{{action: kube-list, {cm}, selector: 'a=b&watch=true'}}"), "label selector"),
    ];
    for (settings, expected) in &attacks {
        let p = probe(settings, grant, "{timeout: 10s}");
        let mut r = Run::new(&p, root.path());
        r.cluster = Some(cluster.clone());
        let err = r.go().error();
        assert!(err.contains(expected), "{settings}: {err}");
    }
    assert_eq!(
        server.requests.lock().expect("requests").clone(),
        Vec::<String>::new(),
        "no refused request may reach the API server"
    );
    // A granted call goes out exactly as authorized.
    let p = probe(
        &format!("{{action: kube-get, {cm}, name: kubeadm-config}}"),
        grant,
        "{timeout: 10s}",
    );
    let mut r = Run::new(&p, root.path());
    r.cluster = Some(cluster);
    let _ = r.go();
    assert_eq!(
        server.requests.lock().expect("requests").clone(),
        vec!["GET /api/v1/namespaces/kube-system/configmaps/kubeadm-config HTTP/1.1".to_string()]
    );
}

#[test]
fn in_memory_cluster_refuses_what_an_api_server_refuses() {
    let root = node("healthy");
    let cluster = Arc::new(MemoryCluster::new());
    let grant = "{kube: [{verbs: [create], resources: [configmaps], namespaces: [kube-system]}]}";
    for (settings, expected) in [
        (
            "{action: kube-create, kind: ConfigMap, plural: configmaps, namespace: kube-system, name: big, size: 4194304}",
            "limit of 3145728 bytes",
        ),
        (
            "{action: kube-create, kind: ConfigMap, plural: configmaps, namespace: kube-system, name: 'system:evil'}",
            "is not a valid name for configmaps",
        ),
    ] {
        let p = probe(settings, grant, "{}");
        let mut r = Run::new(&p, root.path());
        r.cluster = Some(cluster.clone());
        let err = r.go().error();
        assert!(err.contains(expected), "{settings}: {err}");
    }
    assert!(cluster.objects().is_empty(), "nothing was stored");
}

/// Asserts that a run stopped within its timeout (plus scheduling slack on a busy machine).
fn assert_within(started: Instant, timeout: Duration) {
    let took = started.elapsed();
    assert!(
        took < timeout + Duration::from_secs(2),
        "the host took {took:?} with a timeout of {timeout:?}"
    );
}

#[test]
fn reading_a_fifo_is_refused_without_blocking() {
    let root = node("healthy");
    let fifo = root.path().join("etc/kubernetes/fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let p = probe(
        "{action: read, path: /etc/kubernetes/fifo}",
        READ_KUBERNETES,
        "{timeout: 2s}",
    );
    let started = Instant::now();
    let err = run(&p, root.path()).error();
    assert_within(started, Duration::from_secs(2));
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn sleeping_forever_in_wasi_ends_at_the_timeout() {
    let root = node("healthy");
    let p = probe("{action: sleep}", "{}", "{timeout: 2s}");
    let started = Instant::now();
    let err = run(&p, root.path()).error();
    assert_within(started, Duration::from_secs(2));
    assert!(err.contains("did not finish within its timeout of 2s"), "{err}");
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            std::fs::read(e.path().join("cmdline"))
                .ok()
                .map(|c| (e.file_name(), c))
        })
        .filter(|(_, c)| String::from_utf8_lossy(c).contains(marker))
        .map(|(pid, _)| pid.to_string_lossy().into_owned())
        .collect()
}

/// Runs `script` with the host's `sh` as the granted command `/usr/bin/<name>` of a fresh node
/// (the command's PATH is the node's, so the script names host programs by absolute path;
/// `{marker}` in it becomes a string unique to this test), with a phase timeout of `secs`, and
/// checks that the host finished within it. Returns the outcome and the processes still running
/// with the marker in their command line.
fn run_script(name: &str, script: &str, secs: u64) -> (wasmadm_tests::Outcome, Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    let root = node("healthy");
    let marker = format!("wasmadm-{name}-{}", std::process::id());
    let path = root.path().join("usr/bin").join(name);
    std::fs::write(
        &path,
        format!("#!/bin/sh\n{}\n", script.replace("{marker}", &marker)),
    )
    .expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let p = probe(
        &format!("{{action: exec, program: {name}}}"),
        &format!("{{exec: [{{command: {name}, readOnly: true}}]}}"),
        &format!("{{timeout: {secs}s}}"),
    );
    let started = Instant::now();
    let out = run(&p, root.path());
    assert_within(started, Duration::from_secs(secs));
    std::thread::sleep(Duration::from_millis(100));
    (out, processes_with(&marker))
}

#[test]
fn a_commands_background_children_die_with_it() {
    let (out, left) = run_script(
        "spawner",
        "/bin/sh -c '/usr/bin/sleep 300; : {marker}' &\necho started",
        3,
    );
    assert_eq!(
        out.output("probe.stdout").as_deref(),
        Some("started\n"),
        "{:?}",
        out.result.as_ref().err()
    );
    assert_eq!(left, Vec::<String>::new(), "the background child was killed");
}

#[test]
fn a_command_past_the_deadline_is_killed_with_its_group() {
    let (out, left) = run_script("hang", "/bin/sh -c '/usr/bin/sleep 300; : {marker}'", 2);
    // The command's own timeout or the phase's, whichever the host reports first.
    let err = out.error();
    assert!(err.contains("did not finish within"), "{err}");
    assert_eq!(left, Vec::<String>::new());
}

#[test]
fn a_child_that_leaves_the_group_cannot_hold_the_host_past_the_deadline() {
    // setsid: a new session and group, out of the host's reach, holding stdout open.
    let (out, left) = run_script(
        "escape",
        "/usr/bin/setsid /bin/sh -c '/usr/bin/sleep 300; : {marker}' &\n/usr/bin/sleep 0.5\necho started",
        2,
    );
    let err = out.error();
    assert!(err.contains("did not finish within"), "{err}");
    // What left the group outlives the command (docs/security.md): clean it up.
    for pid in left {
        let _ = std::process::Command::new("kill").arg(&pid).status();
    }
}

#[test]
fn findings_and_errors_are_bounded_by_the_output_limit() {
    let root = node("healthy");
    // 2,000 warnings of 64 KiB with an output limit of 64 KiB.
    let p = probe(
        "{action: findings, count: 2000, size: 65536}",
        "{}",
        "{output: 64Ki, timeout: 60s}",
    );
    let out = run(&p, root.path());
    out.expect_ok();
    let printed: usize = out.stderr.iter().map(|l| l.len() + 1).sum();
    assert!(printed <= 64 * 1024 + 100, "printed {printed} bytes");

    // 1,500 errors of 64 KiB: the phase fails, listing what was kept, bounded, and counting the
    // rest.
    let p = probe(
        "{action: findings, count: 1500, size: 65536, severity: error}",
        "{}",
        "{output: 64Ki, timeout: 60s}",
    );
    let out = run(&p, root.path());
    let Err(wasmadm::runtime::RunError::ChecksFailed { failures, .. }) = &out.result else {
        panic!("checks must fail: {:?}", out.result.as_ref().err());
    };
    assert_eq!(failures.len(), 1001);
    assert!(
        failures[1000].1.contains("500 more error findings were not kept"),
        "{:?}",
        failures[1000]
    );
    let printed: usize = out.stderr.iter().map(|l| l.len() + 1).sum();
    assert!(printed < 256 * 1024, "printed {printed} bytes");

    // One 20 MiB phase-error message.
    let p = probe(
        "{action: fail, text: boom, size: 20971520}",
        "{}",
        "{output: 64Ki}",
    );
    let err = run(&p, root.path()).error();
    assert!(err.len() <= 16 * 1024 + 200, "{} bytes", err.len());
    assert!(err.contains("boom") && err.contains("more bytes cut"));
}

#[test]
fn plugin_text_reaches_the_terminal_escaped() {
    let root = node("healthy");
    // Clear the screen, set the clipboard (OSC 52), return and overwrite the line.
    let p = probe(
        "{action: print, text: \"\\e[2J\\e]52;c;cm0gLXJmIC8=\\a\\rok\"}",
        "{}",
        "{}",
    );
    let out = run(&p, root.path());
    out.expect_ok();
    assert_eq!(
        out.stdout,
        vec!["\\x1b[2J\\x1b]52;c;cm0gLXJmIC8=\\x07\\rok".to_string()]
    );
    let p = probe("{action: findings, text: \"fine\\e[8m\\rforged\"}", "{}", "{}");
    let out = run(&p, root.path());
    assert_eq!(
        out.stderr,
        vec!["\t[WARNING Probe0]: fine\\x1b[8m\\rforged".to_string()]
    );
    let p = probe("{action: fail, text: \"\\e[1A\\e[2Kall good\"}", "{}", "{}");
    let err = run(&p, root.path()).error();
    assert!(!err.contains('\u{1b}'), "{err:?}");
    // An error may span lines, as kubeadm's do; a carriage return is still shown, not sent.
    let p = probe("{action: fail, text: \"first\\nsecond\\rforged\"}", "{}", "{}");
    let err = run(&p, root.path()).error();
    assert!(err.contains("first\nsecond\\rforged"), "{err:?}");
}

#[test]
fn plugin_inspect_shows_the_hosts_digest_only() {
    use wasmadm::grants::describe_plugin;
    let root = node("healthy");
    let p = probe("{action: noop}", "{}", "{}");
    let dir = cap_std::fs::Dir::open_ambient_dir(root.path(), cap_std::ambient_authority()).expect("root");
    let planned = wasmadm::invocation::describe(wasmadm_tests::runtime(), Arc::new(dir), &p.init.0[0])
        .expect("describe");
    let text = describe_plugin(&planned.info, &planned.plugin.digest);
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
    let digests: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("digest:"))
        .collect();
    assert_eq!(digests.len(), 1, "{text}");
    assert!(digests[0].contains(&sha256_file(PROBE_WASM)), "{text}");
    assert!(
        text.contains("\\x1b]52;c;"),
        "the clipboard sequence is shown, not sent: {text}"
    );
}

#[test]
fn wasmadms_own_process_is_not_readable_under_any_grant() {
    // The real /proc, as with `--root /` and the README's vendor example granting /proc.
    let pid = std::process::id();
    for path in [
        "/proc/self/environ".to_string(),
        "/proc/thread-self/environ".to_string(),
        format!("/proc/{pid}/cmdline"),
        "/proc/self/../self/environ".to_string(),
    ] {
        let p = probe(
            &format!("{{action: read, path: '{path}'}}"),
            "{files: {read: [/proc]}}",
            "{}",
        );
        let err = run(&p, Path::new("/")).error();
        assert!(err.contains("is wasmadm's own process"), "{path}: {err}");
    }
    // Its status (uid, CPU affinity: preflight's IsPrivilegedUser and NumCPU) only when a grant
    // names exactly that file.
    let status = "{action: read, path: /proc/self/status}";
    let err = run(&probe(status, "{files: {read: [/proc]}}", "{}"), Path::new("/")).error();
    assert!(err.contains("only /proc/self/status can be granted"), "{err}");
    let out = run(
        &probe(status, "{files: {read: [/proc/self/status]}}", "{}"),
        Path::new("/"),
    );
    assert!(
        out.output("probe.content")
            .is_some_and(|c| c.contains(&format!("Pid:\t{pid}")))
    );
    // The rest of /proc stays readable under the grant.
    let p = probe(
        "{action: read, path: /proc/sys/kernel/ostype}",
        "{files: {read: [/proc]}}",
        "{}",
    );
    assert_eq!(
        run(&p, Path::new("/")).output("probe.content").as_deref(),
        Some("Linux\n")
    );
}

#[test]
fn setuid_setgid_and_sticky_bits_are_dropped() {
    use std::os::unix::fs::PermissionsExt;
    let root = node("healthy");
    let p = probe(
        &format!(
            "{{action: write, path: /etc/kubernetes/pki/tool, content: x, mode: {}}}",
            0o6755
        ),
        "{files: {write: [/etc/kubernetes/pki]}}",
        "{}",
    );
    run(&p, root.path()).expect_ok();
    let mode = std::fs::metadata(root.path().join("etc/kubernetes/pki/tool"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[test]
fn a_swapped_cache_entry_never_runs() {
    use wasmadm::runtime::Runtime;
    let cache = tempfile::tempdir().expect("cache");
    let load = |rt: &Runtime, wasm: &str| {
        rt.load_file(Path::new(wasm), Some(&sha256_file(wasm)))
            .expect("load")
    };
    let name_of = |rt: &Runtime| {
        let root = node("healthy");
        let dir =
            cap_std::fs::Dir::open_ambient_dir(root.path(), cap_std::ambient_authority()).expect("root");
        let plugin = load(rt, PROBE_WASM);
        rt.describe(&plugin, wasmadm::runtime::runner::bare_state(Arc::new(dir)))
            .expect("describe")
            .name
    };
    {
        let rt = Runtime::new(Some(cache.path().to_path_buf())).expect("runtime");
        load(&rt, PROBE_WASM);
        load(&rt, wasmadm_tests::LEGACY_PROBE_WASM);
    }
    let entry = |wasm: &str| {
        let digest = sha256_file(wasm);
        std::fs::read_dir(cache.path())
            .expect("cache")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&digest))
            })
            .expect("cache entry")
    };
    let (probe_entry, legacy_entry) = (entry(PROBE_WASM), entry(wasmadm_tests::LEGACY_PROBE_WASM));
    // Another component's compiled code in the pinned component's entry.
    std::fs::copy(&legacy_entry, &probe_entry).expect("swap");
    let rt = Runtime::new(Some(cache.path().to_path_buf())).expect("runtime");
    assert_eq!(name_of(&rt), "sandbox-probe");
    // The entry was rebuilt; now patch one byte of it.
    let mut bytes = std::fs::read(&probe_entry).expect("entry");
    assert_ne!(bytes, std::fs::read(&legacy_entry).expect("legacy"), "rebuilt");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&probe_entry, &bytes).expect("patch");
    drop(rt);
    let rt = Runtime::new(Some(cache.path().to_path_buf())).expect("runtime");
    assert_eq!(name_of(&rt), "sandbox-probe");
}

#[test]
fn a_granted_directory_swapped_for_a_link_never_leads_writes_outside_the_grant() {
    let root = node("healthy");
    let pki = root.path().join("etc/kubernetes/pki");
    let aside = root.path().join("etc/kubernetes/pki.real");
    let victim = root.path().join("victim");
    std::fs::create_dir_all(&victim).expect("victim");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (pki, aside, stop) = (pki.clone(), aside.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Each state held for a moment, so that some calls see the directory when
                // checked and the link when used.
                let hold = || {
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_micros(50) {
                        std::hint::spin_loop();
                    }
                };
                if std::fs::rename(&pki, &aside).is_ok() {
                    // Relative, so it stays inside the root: only the grant is at stake.
                    let _ = std::os::unix::fs::symlink("../../victim", &pki);
                    hold();
                    let _ = std::fs::remove_file(&pki);
                    let _ = std::fs::rename(&aside, &pki);
                    swaps += 1;
                }
                hold();
            }
            swaps
        })
    };
    let p = probe(
        "{action: write-many, path: /etc/kubernetes/pki, count: 5000}",
        "{files: {write: [/etc/kubernetes/pki]}}",
        "{timeout: 60s}",
    );
    let out = run(&p, root.path());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");
    out.expect_ok();
    assert!(swaps > 0, "the race ran");
    let escaped: Vec<_> = std::fs::read_dir(&victim)
        .expect("victim")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(
        escaped.is_empty(),
        "{} writes landed outside the grant: {escaped:?}",
        escaped.len()
    );
    let written: usize = out
        .output("probe.written")
        .expect("count")
        .parse()
        .expect("number");
    assert!(written > 0, "some writes went through between swaps");
}

#[test]
fn writes_are_bounded_by_the_phase_quota() {
    let root = node("healthy");
    let pki = root.path().join("etc/kubernetes/pki");
    std::fs::create_dir_all(&pki).expect("pki");
    let before = std::fs::read_dir(&pki).expect("pki").count();
    for (limits, allowed) in [("{writeFiles: 100}", 100), ("{writeBytes: 10}", 10)] {
        let p = probe(
            "{action: write-many, path: /etc/kubernetes/pki, count: 2000}",
            "{files: {write: [/etc/kubernetes/pki]}}",
            limits,
        );
        let out = run(&p, root.path());
        assert_eq!(
            out.output("probe.written").as_deref(),
            Some(allowed.to_string().as_str()),
            "{limits}"
        );
    }
    // f0..f99 from the first run; the second wrote f0..f9 again.
    assert_eq!(std::fs::read_dir(&pki).expect("pki").count(), before + 100);
}

#[test]
fn node_path_arguments_are_resolved_under_the_root_and_checked_against_the_file_grants() {
    use std::os::unix::fs::PermissionsExt;
    let root = node("healthy");
    let show = root.path().join("usr/bin/show");
    std::fs::write(&show, "#!/bin/sh\n/usr/bin/cat \"$1\"\n").expect("script");
    std::fs::set_permissions(&show, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(root.path().join("etc/kubernetes/node.conf"), "on the node").expect("write");
    let grants =
        "{exec: [{command: show, args: [['{path}']], readOnly: true}], files: {read: [/etc/kubernetes]}}";
    let show_arg = |arg: &str| {
        let p = probe(
            &format!("{{action: exec, program: show, args: ['{arg}']}}"),
            grants,
            "{}",
        );
        run(&p, root.path())
    };
    assert_eq!(
        show_arg("/etc/kubernetes/node.conf")
            .output("probe.stdout")
            .as_deref(),
        Some("on the node")
    );
    for outside in ["/etc/hostname", "/etc/kubernetes/../../../../etc/hostname"] {
        let err = show_arg(outside).error();
        assert!(err.contains("has no read grant for"), "{outside}: {err}");
        assert!(err.contains("grants.files.read"), "{err}");
    }
    let err = show_arg("etc/hostname").error();
    assert!(err.contains("may run \"show\" only with arguments"), "{err}");
}

#[test]
fn published_outputs_are_bounded_by_the_output_limit() {
    let root = node("healthy");
    std::fs::write(root.path().join("etc/kubernetes/big"), "b".repeat(100 << 10)).expect("write");
    let p = probe(
        "{action: read, path: /etc/kubernetes/big}",
        READ_KUBERNETES,
        "{output: 64Ki}",
    );
    let err = run(&p, root.path()).error();
    assert!(
        err.contains("published 102407 bytes of outputs, more than its output limit of 65536"),
        "{err}"
    );
}
