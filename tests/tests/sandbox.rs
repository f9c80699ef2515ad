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
    // Not a benchmark: only proof that the loop was interrupted rather than left running.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
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
