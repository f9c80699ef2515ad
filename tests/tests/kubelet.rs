//! The `kubelet-start` and `kubelet-finalize` phases against real kubeadm's output: the kubelet
//! files byte for byte as kubeadm v1.36 wrote them for the reference configuration
//! (`tests/fixtures/reference/kubelet`), kubeadm's console lines with and without an init
//! system, the systemctl calls, dry-run, and the rewrite of `kubelet.conf`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use wasmadm::caps::plan::PlanEntry;
use wasmadm::config::pipeline::Pipeline;
use wasmadm_tests::{Outcome, Run, fixture, node};

const FILES: [&str; 3] = ["config.yaml", "kubeadm-flags.env", "instance-config.yaml"];

/// A systemctl that logs every call to `<root>/systemctl.log` and answers like the fixture's.
const LOGGING_SYSTEMCTL: &str = "#!/bin/sh\necho \"$*\" >> \"$PWD/systemctl.log\"\n\
    case \"$1 $2\" in\n  \"status kubelet\") echo 'Loaded: loaded (/lib/systemd/system/kubelet.service; enabled)'; exit 3 ;;\n\
    \"is-active systemd-resolved\") echo ${RESOLVED:-inactive}; exit 3 ;;\nesac\nexit 0\n";

/// The node of the reference run: its host name was not the node name `n1` (kubeadm wrote
/// `--hostname-override=n1`).
fn reference_node() -> tempfile::TempDir {
    let root = node("healthy");
    std::fs::write(
        root.path().join("proc/sys/kernel/hostname"),
        "kubeadm-reference\n",
    )
    .expect("hostname");
    root
}

fn logging_systemctl(root: &Path, resolved: &str) {
    let path = root.join("usr/bin/systemctl");
    std::fs::write(
        &path,
        LOGGING_SYSTEMCTL.replace("${RESOLVED:-inactive}", resolved),
    )
    .expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn systemctl_calls(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("systemctl.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn run_phase(root: &Path, phase: &str, config: Option<&Path>, dry_run: bool) -> Outcome {
    let pipeline = Pipeline::builtin_default().expect("pipeline");
    let reference = fixture("init-config.yaml");
    let mut run = Run::new(&pipeline, root);
    run.config = Some(config.unwrap_or(&reference));
    run.only = Some((phase.into(), None));
    if phase == "kubelet-finalize" {
        run.only = Some((phase.into(), Some("all".into())));
    }
    run.dry_run = dry_run;
    run.go()
}

fn kubelet_file(root: &Path, name: &str) -> String {
    std::fs::read_to_string(root.join("var/lib/kubelet").join(name)).expect("kubelet file")
}

/// Lines `from..=to` of real kubeadm's `init-output.txt` (1-based), without klog lines.
fn kubeadm_lines(from: usize, to: usize) -> Vec<String> {
    let text = std::fs::read_to_string(fixture("reference/init-output.txt")).expect("init output");
    text.lines()
        .skip(from - 1)
        .take(to + 1 - from)
        .filter(|l| l.starts_with('['))
        .map(String::from)
        .collect()
}

#[test]
fn files_match_real_kubeadm_byte_for_byte_with_its_lines_and_no_init_system() {
    let root = reference_node();
    std::fs::remove_file(root.path().join("usr/bin/systemctl")).expect("no init system");
    let out = run_phase(root.path(), "kubelet-start", None, false);
    out.expect_ok();
    for name in FILES {
        let golden = std::fs::read_to_string(fixture("reference/kubelet").join(name)).expect("golden");
        assert_eq!(
            kubelet_file(root.path(), name),
            golden,
            "{name} differs from kubeadm's"
        );
        let mode = std::fs::metadata(root.path().join("var/lib/kubelet").join(name))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{name}");
    }
    // Lines 45-52 of kubeadm's output; line 48 is a klog warning, which wasmadm logs.
    assert_eq!(out.stdout, kubeadm_lines(45, 52));
}

#[test]
fn kubelet_is_stopped_then_restarted_through_systemctl_and_second_run_changes_nothing() {
    let root = reference_node();
    logging_systemctl(root.path(), "inactive");
    let out = run_phase(root.path(), "kubelet-start", None, false);
    out.expect_ok();
    assert_eq!(
        systemctl_calls(root.path()),
        [
            "is-active systemd-resolved",
            "status kubelet",
            "stop kubelet",
            "status kubelet",
            "daemon-reload",
            "restart kubelet"
        ]
    );
    assert!(
        !out.stdout.iter().any(|l| l.contains("No supported init system")),
        "{:?}",
        out.stdout
    );
    assert_eq!(
        out.stdout.last().map(String::as_str),
        Some("[kubelet-start] Starting the kubelet")
    );
    let first: Vec<String> = FILES.iter().map(|f| kubelet_file(root.path(), f)).collect();
    run_phase(root.path(), "kubelet-start", None, false).expect_ok();
    let second: Vec<String> = FILES.iter().map(|f| kubelet_file(root.path(), f)).collect();
    assert_eq!(first, second);
}

/// The commands and file writes a dry-run recorded.
fn planned(out: &Outcome) -> (Vec<String>, Vec<String>) {
    let (mut execs, mut written) = (Vec::new(), Vec::new());
    for entry in out.result.as_ref().expect("report").plan.entries() {
        match entry {
            PlanEntry::Exec { command, .. } => execs.push(command),
            PlanEntry::WriteFile { path, .. } => written.push(path),
            _ => {}
        }
    }
    (execs, written)
}

#[test]
fn dry_run_records_the_systemctl_calls_and_writes_nothing() {
    let root = reference_node();
    logging_systemctl(root.path(), "inactive");
    let out = run_phase(root.path(), "kubelet-start", None, true);
    out.expect_ok();
    assert!(
        !root.path().join("var/lib/kubelet").exists(),
        "dry-run wrote files"
    );
    // Only the read-only probes ran.
    assert_eq!(
        systemctl_calls(root.path()),
        ["is-active systemd-resolved", "status kubelet", "status kubelet"]
    );
    let (execs, written) = planned(&out);
    assert_eq!(
        execs,
        [
            "systemctl stop kubelet",
            "systemctl daemon-reload",
            "systemctl restart kubelet"
        ]
    );
    assert_eq!(
        written,
        [
            "/var/lib/kubelet/kubeadm-flags.env",
            "/var/lib/kubelet/instance-config.yaml",
            "/var/lib/kubelet/config.yaml"
        ]
    );
    assert!(
        out.stdout
            .iter()
            .any(|l| l == "[dryrun] Would run command \"systemctl restart kubelet\"")
    );
}

#[test]
fn configuration_reaches_the_kubelet_files() {
    let root = node("healthy");
    logging_systemctl(root.path(), "active");
    let config = root.path().join("config.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:\n  name: n1\n  \
         criSocket: unix:///run/crio/crio.sock\n  kubeletExtraArgs: [{name: node-ip, value: 10.0.0.7}]\n---\n\
         apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking: {serviceSubnet: 10.100.0.0/16, dnsDomain: corp.local}\n\
         featureGates: {NodeLocalCRISocket: false}\n---\n\
         apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 50\ncgroupDriver: cgroupfs\n",
    )
    .expect("config");
    let out = run_phase(root.path(), "kubelet-start", Some(&config), false);
    out.expect_ok();
    // The fixture's host name is n1: no --hostname-override; the CRI socket is a flag without
    // NodeLocalCRISocket, and there is no instance configuration.
    assert_eq!(
        kubelet_file(root.path(), "kubeadm-flags.env"),
        "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/crio/crio.sock --node-ip=10.0.0.7\"\n"
    );
    assert!(!root.path().join("var/lib/kubelet/instance-config.yaml").exists());
    let kubelet = kubelet_file(root.path(), "config.yaml");
    for expected in [
        "clusterDNS:\n- 10.100.0.10\n",
        "clusterDomain: corp.local\n",
        "maxPods: 50\n",
        "cgroupDriver: cgroupfs\n",
        "containerRuntimeEndpoint: \"\"\n",
        "resolvConf: /run/systemd/resolve/resolv.conf\n",
        "rotateCertificates: true\n",
    ] {
        assert!(kubelet.contains(expected), "{expected:?} missing from\n{kubelet}");
    }
}

#[test]
fn finalize_points_kubelet_conf_at_the_rotating_certificate_only_when_it_exists() {
    let root = reference_node();
    std::fs::remove_file(root.path().join("usr/bin/systemctl")).expect("no init system");
    let rotated = std::fs::read_to_string(fixture("reference/kubeconfig/kubelet.conf")).expect("reference");
    // What the kubeconfig phase wrote: the certificate and key embedded.
    let embedded = rotated
        .replace(
            "client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem",
            "client-certificate-data: Q0VSVA==",
        )
        .replace(
            "client-key: /var/lib/kubelet/pki/kubelet-client-current.pem",
            "client-key-data: S0VZ",
        );
    assert_ne!(embedded, rotated);
    let conf = root.path().join("etc/kubernetes/kubelet.conf");
    std::fs::write(&conf, &embedded).expect("kubelet.conf");

    // No rotating certificate yet: nothing to do, as kubeadm.
    let out = run_phase(root.path(), "kubelet-finalize", None, false);
    out.expect_ok();
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    assert_eq!(std::fs::read_to_string(&conf).expect("read"), embedded);

    let pki = root.path().join("var/lib/kubelet/pki");
    std::fs::create_dir_all(&pki).expect("mkdir");
    std::fs::write(pki.join("kubelet-client-current.pem"), "PEM").expect("pem");
    let out = run_phase(root.path(), "kubelet-finalize", None, false);
    out.expect_ok();
    assert_eq!(std::fs::read_to_string(&conf).expect("read"), rotated);
    assert_eq!(
        std::fs::metadata(&conf).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(out.stdout, kubeadm_lines(76, 77));

    // Idempotent, and with an init system the kubelet is restarted.
    logging_systemctl(root.path(), "inactive");
    run_phase(root.path(), "kubelet-finalize", None, false).expect_ok();
    assert_eq!(std::fs::read_to_string(&conf).expect("read"), rotated);
    assert_eq!(
        systemctl_calls(root.path()),
        ["status kubelet", "daemon-reload", "restart kubelet"]
    );
}

#[test]
fn finalize_refuses_a_kubelet_conf_without_the_nodes_user() {
    let root = reference_node();
    let pki = root.path().join("var/lib/kubelet/pki");
    std::fs::create_dir_all(&pki).expect("mkdir");
    std::fs::write(pki.join("kubelet-client-current.pem"), "PEM").expect("pem");
    std::fs::write(
        root.path().join("etc/kubernetes/kubelet.conf"),
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: system:node:n1}\nusers: []\n",
    )
    .expect("conf");
    let out = run_phase(root.path(), "kubelet-finalize", None, false);
    let err = out.error();
    assert!(
        err.contains(
            "\"/etc/kubernetes/kubelet.conf\" does not contain authentication for user \"system:node:n1\""
        ),
        "{err}"
    );
}

#[test]
fn missing_kubelet_unit_and_failed_restart_are_reported_as_kubeadm_does() {
    let root = reference_node();
    let path = root.path().join("usr/bin/systemctl");
    std::fs::write(
        &path,
        "#!/bin/sh\ncase \"$1\" in\n  status) echo 'Unit kubelet.service could not be found.'; echo 'Loaded: not-found'; exit 4 ;;\n  \
         is-active) echo inactive; exit 3 ;;\n  restart) exit 5 ;;\nesac\nexit 0\n",
    )
    .expect("systemctl");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = run_phase(root.path(), "kubelet-start", None, false);
    out.expect_ok();
    assert_eq!(
        out.stdout.first().map(String::as_str),
        Some(
            "[kubelet-start] Couldn't detect a kubelet service, can't make sure the kubelet not running for a short period of time while setting up configuration for it."
        )
    );
    assert_eq!(
        out.stdout[out.stdout.len() - 3..],
        [
            "[kubelet-start] Starting the kubelet",
            "[kubelet-start] Couldn't detect a kubelet service, can't make sure the kubelet is running properly.",
            "[kubelet-start] Please ensure kubelet is reloaded and running manually.",
        ]
    );
}
